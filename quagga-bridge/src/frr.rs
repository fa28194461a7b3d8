//! FRR (and quagga, which shares its vty syntax): the bridge's part of bgpd's (bfdd's, ospfd's)
//! configuration as sections of commands, changed through each daemon's vty socket (what
//! `vtysh` speaks: a command and a NUL, answered by its output, three NULs and a status byte),
//! and an own zebra + bgpd (+ bfdd, ospfd) when none runs.
//!
//! A VIP is announced by `network VIP/32 route-map XLVS-…` (the route-map holds its
//! attributes; bgpd's import check needs the VIP's connected route, which exists only while it
//! is an address of the liveness device), to neighbors the bridge configures with
//! `route-map XLVS-OUT out` (locally originated routes only) and `route-map XLVS-IN in`
//! (nothing learnt). OSPF: `network VIP/32 area A` and the liveness device passive.
//! Only the difference to what the daemon has is sent.

use crate::driver::{Announced, DaemonInfo, Driver, PeerView, RouteView};
use crate::process;
use crate::settings::Settings;
use anyhow::{Context, Result, bail};
use keepalived_conf::model::{AnnounceAttributes, RoutingDaemon};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Where FRR's vty sockets are unless `control_socket` says otherwise.
pub const DEFAULT_FRR_DIR: &str = "/var/run/frr";
/// Where quagga's vty sockets are unless `control_socket` says otherwise.
pub const DEFAULT_QUAGGA_DIR: &str = "/var/run/quagga";
const TIMEOUT: Duration = Duration::from_secs(5);
/// Marks the neighbors the bridge configured (so a restart knows them).
const DESCRIPTION: &str = "xlvs-route-bridge";
const BFD_PROFILE: &str = "xlvs";

/// The daemons whose vty we talk to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Daemon {
    /// BFD.
    Bfdd,
    /// BGP.
    Bgpd,
    /// OSPF.
    Ospfd,
}

impl Daemon {
    /// The daemon's name (its vty socket is `NAME.vty`).
    pub fn name(self) -> &'static str {
        match self {
            Daemon::Bfdd => "bfdd",
            Daemon::Bgpd => "bgpd",
            Daemon::Ospfd => "ospfd",
        }
    }
}

/// A session on one daemon's vty socket.
pub struct Vty {
    path: PathBuf,
    stream: UnixStream,
}

impl Vty {
    /// Connects to the vty socket at `path`.
    pub fn connect(path: &Path) -> Result<Vty> {
        let stream = process::connect_local(path, TIMEOUT)?;
        let mut v = Vty {
            path: path.to_path_buf(),
            stream,
        };
        v.command("enable")?;
        Ok(v)
    }

    /// Runs one command; its output, or an error with what the daemon said.
    pub fn command(&mut self, cmd: &str) -> Result<String> {
        let (status, out) = self.raw(cmd)?;
        if status != 0 {
            bail!(
                "{}: `{cmd}` failed ({status}): {}",
                self.path.display(),
                out.trim()
            );
        }
        Ok(out)
    }

    /// The status byte (0 = success) and output of one command.
    pub fn raw(&mut self, cmd: &str) -> Result<(u8, String)> {
        let mut msg = cmd.as_bytes().to_vec();
        msg.push(0);
        self.stream
            .write_all(&msg)
            .with_context(|| format!("vty {}", self.path.display()))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16384];
        loop {
            let n = self
                .stream
                .read(&mut chunk)
                .with_context(|| format!("vty {}: `{cmd}`", self.path.display()))?;
            if n == 0 {
                bail!("{} closed the vty session", self.path.display());
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() >= 4 && buf[buf.len() - 4..buf.len() - 1] == [0, 0, 0] {
                let status = buf[buf.len() - 1];
                buf.truncate(buf.len() - 4);
                return Ok((status, String::from_utf8_lossy(&buf).into_owned()));
            }
        }
    }
}

/// Whether the zebra whose vty socket is in `dir` sees interface `name` with index `ifindex`,
/// i.e. runs in our network namespace.
pub fn sees_interface(dir: &Path, name: &str, ifindex: u32) -> Result<bool> {
    let mut vty = Vty::connect(&dir.join("zebra.vty"))?;
    let (status, out) = vty.raw(&format!("show interface {name}"))?;
    Ok(status == 0
        && out.contains(&format!("Interface {name} "))
        && out.contains(&format!("index {ifindex} ")))
}

/// A configuration line and how to take it back.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stmt {
    text: String,
    undo: String,
}

/// A context (entered by `ctx`'s commands in turn) and the lines the bridge owns in it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Section {
    /// How to remove the whole context (run inside `ctx` minus its last command), if one can.
    remove: Option<String>,
    lines: BTreeMap<String, Stmt>,
}

/// (daemon, order, context) → section: what the bridge owns in each daemon.
type Sections = BTreeMap<(Daemon, u8, Vec<String>), Section>;

/// The part of a line that names what it sets (two lines with one key replace each other).
fn key_of(line: &str) -> String {
    let w: Vec<&str> = line.split_whitespace().collect();
    let n = match w.as_slice() {
        // FRR numbers entries itself: the sequence number is not part of what it says.
        [
            ip @ ("ip" | "ipv6"),
            "prefix-list",
            name,
            "seq",
            _,
            rest @ ..,
        ] => {
            return format!("{ip} prefix-list {name} {}", rest.join(" "));
        }
        ["ip" | "ipv6", "prefix-list", ..] => w.len(),
        ["neighbor", _, "timers", "connect", ..] => 4,
        ["neighbor", _, "route-map", _, dir] => {
            return format!("neighbor {} route-map {dir}", w[1]);
        }
        // The session itself: sorts before its settings, which need it.
        ["neighbor", _, "remote-as", ..] => 2,
        ["neighbor", ..] => 3,
        ["network", ..] => 2,
        ["set", "as-path", "prepend", ..] => 3,
        ["ip", "ospf", ..] => 3,
        ["passive-interface", ..] => 2,
        _ => w.len().min(2),
    };
    w[..n.min(w.len())].join(" ")
}

fn stmt(text: impl Into<String>) -> (String, Stmt) {
    let mut text = text.into();
    if text.starts_with("ip prefix-list ") || text.starts_with("ipv6 prefix-list ") {
        // What FRR prints carries its own sequence numbers.
        text = key_of(&text);
    }
    let key = key_of(&text);
    let w: Vec<&str> = text.split_whitespace().collect();
    let undo = match w.as_slice() {
        ["neighbor", n, "remote-as", ..] => format!("no neighbor {n}"),
        // These need the whole line to be taken back.
        ["neighbor", _, "route-map", ..] | ["network", _, "area", _] | ["passive-interface", _] => {
            format!("no {text}")
        }
        ["ip" | "ipv6", "prefix-list", ..] => format!("no {key}"),
        _ => format!("no {key}"),
    };
    (key, Stmt { text, undo })
}

fn net(addr: IpAddr) -> String {
    format!("{addr}/{}", if addr.is_ipv4() { 32 } else { 128 })
}

/// The route-map that gives `attrs` (named after its content, so it never changes).
pub fn route_map_name(attrs: &AnnounceAttributes) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in format!("{attrs:?}").bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    format!("XLVS-{h:08X}")
}

fn route_map_lines(attrs: &AnnounceAttributes, local_as: u32) -> BTreeMap<String, Stmt> {
    let mut v = Vec::new();
    if let Some(m) = attrs.med {
        v.push(stmt(format!("set metric {m}")));
    }
    if let Some(l) = attrs.local_pref {
        v.push(stmt(format!("set local-preference {l}")));
    }
    let (std, large): (Vec<&String>, Vec<&String>) = attrs
        .communities
        .iter()
        .partition(|c| c.matches(':').count() == 1);
    if !std.is_empty() {
        let list: Vec<&str> = std.iter().map(|s| s.as_str()).collect();
        v.push(stmt(format!("set community {} additive", list.join(" "))));
    }
    if !large.is_empty() {
        let list: Vec<&str> = large.iter().map(|s| s.as_str()).collect();
        v.push(stmt(format!(
            "set large-community {} additive",
            list.join(" ")
        )));
    }
    if attrs.prepend > 0 {
        let asns = vec![local_as.to_string(); attrs.prepend as usize].join(" ");
        v.push(stmt(format!("set as-path prepend {asns}")));
    }
    v.into_iter().collect()
}

/// IPv4 prefixes of an interface, for OSPF `network` statements.
fn interface_prefixes(name: &str) -> Vec<String> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return vec![];
    };
    addrs
        .filter(|a| a.interface_name == name)
        .filter_map(|a| {
            let ip = a.address?.as_sockaddr_in()?.ip();
            let mask = a.netmask?.as_sockaddr_in()?.ip();
            let len = u32::from(mask).count_ones();
            let netaddr = std::net::Ipv4Addr::from(u32::from(ip) & u32::from(mask));
            Some(format!("{netaddr}/{len}"))
        })
        .collect()
}

/// What the bridge owns in the daemons for `announced`. `own`: its own daemons (which also get
/// router-id, OSPF interfaces; an existing daemon keeps its own).
fn sections(s: &Settings, announced: &Announced, own: bool) -> Sections {
    let mut out = Sections::new();
    let local_as = s.local_as.unwrap_or(0);
    if s.wants_bfd() {
        let lines = [
            stmt(format!("transmit-interval {}", s.bfd_interval_ms)),
            stmt(format!("receive-interval {}", s.bfd_interval_ms)),
            stmt(format!("detect-multiplier {}", s.bfd_multiplier)),
        ];
        out.insert(
            (
                Daemon::Bfdd,
                0,
                vec!["bfd".into(), format!("profile {BFD_PROFILE}")],
            ),
            Section {
                remove: Some(format!("no profile {BFD_PROFILE}")),
                lines: lines.into_iter().collect(),
            },
        );
    }
    if !s.neighbors.is_empty() || !announced.is_empty() {
        // Our neighbors are sent the VIPs only (bgpd would pass on anything it has; `match peer
        // local` does not work in outbound route-maps).
        let mut lists = BTreeMap::new();
        for v in &s.vips {
            let (ip, list) = if v.address.is_ipv4() {
                ("ip", "XLVS-VIPS4")
            } else {
                ("ipv6", "XLVS-VIPS6")
            };
            lists.extend([stmt(format!(
                "{ip} prefix-list {list} permit {}",
                net(v.address)
            ))]);
        }
        out.insert(
            (Daemon::Bgpd, 0, vec![]),
            Section {
                remove: None,
                lines: lists,
            },
        );
        out.insert(
            (Daemon::Bgpd, 0, vec!["route-map XLVS-OUT permit 10".into()]),
            Section {
                remove: Some("no route-map XLVS-OUT".into()),
                lines: [stmt("match ip address prefix-list XLVS-VIPS4")]
                    .into_iter()
                    .collect(),
            },
        );
        out.insert(
            (Daemon::Bgpd, 0, vec!["route-map XLVS-OUT permit 20".into()]),
            Section {
                remove: Some("no route-map XLVS-OUT".into()),
                lines: [stmt("match ipv6 address prefix-list XLVS-VIPS6")]
                    .into_iter()
                    .collect(),
            },
        );
        out.insert(
            (Daemon::Bgpd, 0, vec!["route-map XLVS-IN deny 10".into()]),
            Section {
                remove: Some("no route-map XLVS-IN".into()),
                lines: BTreeMap::new(),
            },
        );
        for attrs in announced.values() {
            out.insert(
                (
                    Daemon::Bgpd,
                    1,
                    vec![format!("route-map {} permit 10", route_map_name(attrs))],
                ),
                Section {
                    remove: Some(format!("no route-map {}", route_map_name(attrs))),
                    lines: route_map_lines(attrs, local_as),
                },
            );
        }
        let router = format!("router bgp {local_as}");
        let mut bgp = BTreeMap::new();
        if own && let Some(id) = s.router_id {
            bgp.extend([stmt(format!("bgp router-id {id}"))]);
        }
        for n in &s.neighbors {
            let a = n.address;
            bgp.extend([
                stmt(format!("neighbor {a} remote-as {}", n.remote_as)),
                stmt(format!("neighbor {a} description {DESCRIPTION}")),
                stmt(format!(
                    "neighbor {a} timers {} {}",
                    s.keepalive, s.hold_time
                )),
                stmt(format!("neighbor {a} timers connect {}", s.connect_retry)),
            ]);
            if n.bfd {
                bgp.extend([stmt(format!("neighbor {a} bfd profile {BFD_PROFILE}"))]);
            }
            if let Some(p) = n.port {
                bgp.extend([stmt(format!("neighbor {a} port {p}"))]);
            }
            if let Some(m) = n.multihop {
                bgp.extend([stmt(format!("neighbor {a} ebgp-multihop {m}"))]);
            }
            if let Some(p) = &n.password {
                bgp.extend([stmt(format!("neighbor {a} password {p}"))]);
            }
            if let Some(src) = n.source {
                bgp.extend([stmt(format!("neighbor {a} update-source {src}"))]);
            }
        }
        out.insert(
            (Daemon::Bgpd, 2, vec![router.clone()]),
            Section {
                remove: None,
                lines: bgp,
            },
        );
        for (family, v4) in [("ipv4", true), ("ipv6", false)] {
            let mut lines = BTreeMap::new();
            for n in s.neighbors.iter().filter(|n| n.address.is_ipv4() == v4) {
                let a = n.address;
                if !v4 {
                    lines.extend([stmt(format!("neighbor {a} activate"))]);
                }
                lines.extend([
                    stmt(format!("neighbor {a} route-map XLVS-IN in")),
                    stmt(format!("neighbor {a} route-map XLVS-OUT out")),
                ]);
            }
            for (addr, attrs) in announced.iter().filter(|(a, _)| a.is_ipv4() == v4) {
                lines.extend([stmt(format!(
                    "network {} route-map {}",
                    net(*addr),
                    route_map_name(attrs)
                ))]);
            }
            out.insert(
                (
                    Daemon::Bgpd,
                    3,
                    vec![router.clone(), format!("address-family {family} unicast")],
                ),
                Section {
                    remove: None,
                    lines,
                },
            );
        }
    }
    if let Some(ospf) = &s.ospf {
        let mut lines = BTreeMap::new();
        if own {
            if let Some(id) = s.router_id {
                lines.extend([stmt(format!("ospf router-id {id}"))]);
            }
            for i in &ospf.interfaces {
                for p in interface_prefixes(&i.name) {
                    lines.extend([stmt(format!("network {p} area {}", ospf.area))]);
                }
            }
        }
        for addr in announced.keys().filter(|a| a.is_ipv4()) {
            lines.extend([stmt(format!("network {} area {}", net(*addr), ospf.area))]);
        }
        lines.extend([stmt(format!("passive-interface {}", s.device))]);
        out.insert(
            (Daemon::Ospfd, 1, vec!["router ospf".into()]),
            Section {
                remove: None,
                lines,
            },
        );
        if own {
            for i in &ospf.interfaces {
                let mut lines = BTreeMap::new();
                if i.point_to_point {
                    lines.extend([stmt("ip ospf network point-to-point")]);
                }
                if let Some(h) = i.hello {
                    lines.extend([stmt(format!("ip ospf hello-interval {h}"))]);
                }
                if let Some(d) = i.dead {
                    lines.extend([stmt(format!("ip ospf dead-interval {d}"))]);
                }
                if let Some(c) = i.cost {
                    lines.extend([stmt(format!("ip ospf cost {c}"))]);
                }
                if s.wants_bfd() {
                    lines.extend([stmt("ip ospf bfd")]);
                }
                out.insert(
                    (Daemon::Ospfd, 0, vec![format!("interface {}", i.name)]),
                    Section {
                        remove: None,
                        lines,
                    },
                );
            }
        }
    }
    out
}

fn find<'s>(secs: &'s Sections, d: Daemon, ctx: &[String]) -> Option<&'s Section> {
    secs.iter()
        .find(|((sd, _, sctx), _)| *sd == d && sctx.as_slice() == ctx)
        .map(|(_, s)| s)
}

/// The vty commands, per daemon, that turn `old` into `new`, in three passes: lines taken
/// back (later sections first: networks before the sessions), lines added (earlier sections
/// first: route-maps before the networks that name them), then whole contexts removed
/// (route-maps nothing names any more), so no announcement is ever without its route-map.
fn diff(old: &Sections, new: &Sections) -> Vec<(Daemon, Vec<String>)> {
    let mut out: Vec<(Daemon, Vec<String>)> = Vec::new();
    let mut push = |d: Daemon, ctx: &[String], cmds: Vec<String>| {
        if cmds.is_empty() {
            return;
        }
        let mut v = vec!["configure terminal".to_string()];
        v.extend(ctx.iter().cloned());
        v.extend(cmds);
        v.push("end".into());
        out.push((d, v));
    };
    for ((d, _, ctx), sec) in old.iter().rev() {
        let gone: Vec<String> = match find(new, *d, ctx) {
            Some(n) => sec
                .lines
                .iter()
                .filter(|(k, _)| !n.lines.contains_key(*k))
                .map(|(_, s)| s.undo.clone())
                .collect(),
            None if sec.remove.is_none() => sec.lines.values().map(|s| s.undo.clone()).collect(),
            None => vec![],
        };
        push(*d, ctx, gone);
    }
    for ((d, _, ctx), sec) in new {
        let before = find(old, *d, ctx);
        let added: Vec<String> = sec
            .lines
            .iter()
            .filter(|(k, s)| before.and_then(|b| b.lines.get(*k)) != Some(*s))
            .map(|(_, s)| s.text.clone())
            .collect();
        if before.is_none() && added.is_empty() && sec.remove.is_some() {
            // A context without lines (route-map XLVS-IN deny) exists once entered.
            push(*d, &ctx[..ctx.len() - 1], vec![ctx[ctx.len() - 1].clone()]);
        } else {
            push(*d, ctx, added);
        }
    }
    for ((d, _, ctx), sec) in old.iter().rev() {
        if find(new, *d, ctx).is_none()
            && let Some(r) = &sec.remove
        {
            push(*d, &ctx[..ctx.len() - 1], vec![r.clone()]);
        }
    }
    out
}

/// A daemon's configuration file text for `sections` (own daemons start from it).
fn render_file(hostname: &str, daemon: Daemon, all: &Sections) -> String {
    let mut o = format!("! Written by keepalived (xlvs route bridge).\nhostname {hostname}\n");
    for ((d, _, ctx), sec) in all {
        if *d != daemon {
            continue;
        }
        for (depth, c) in ctx.iter().enumerate() {
            o.push_str(&" ".repeat(depth));
            o.push_str(c);
            o.push('\n');
        }
        for s in sec.lines.values() {
            o.push_str(&" ".repeat(ctx.len()));
            o.push_str(&s.text);
            o.push('\n');
        }
        for depth in (0..ctx.len()).rev() {
            o.push_str(&" ".repeat(depth));
            o.push_str(if ctx[depth].starts_with("address-family") {
                "exit-address-family\n"
            } else {
                "exit\n"
            });
        }
    }
    o
}

/// Reads the sections the bridge owns from a daemon's running configuration, so an adopted or
/// existing daemon is changed by difference too.
fn owned_sections(daemon: Daemon, running: &str, ours: &Sections) -> Sections {
    let mut out = Sections::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut our_neighbors: BTreeSet<String> = BTreeSet::new();
    for l in running.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        if let ["neighbor", n, "description", d] = w.as_slice()
            && *d == DESCRIPTION
        {
            our_neighbors.insert(n.to_string());
        }
    }
    for ((d, _, _), sec) in ours.iter() {
        if *d == daemon {
            for k in sec.lines.keys() {
                if let Some(n) = k.strip_prefix("neighbor ") {
                    our_neighbors.insert(n.split(' ').next().unwrap_or("").to_string());
                }
            }
        }
    }
    for l in running.lines() {
        let indent = l.len() - l.trim_start().len();
        let t = l.trim();
        if t.is_empty() || t.starts_with('!') {
            continue;
        }
        if t == "exit" || t == "exit-address-family" || t == "exit-vrf" || t == "end" {
            while stack.last().is_some_and(|(i, _)| *i >= indent) {
                stack.pop();
            }
            continue;
        }
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        let is_ctx = [
            "router bgp",
            "address-family",
            "route-map",
            "bfd",
            "profile",
            "router ospf",
            "interface",
        ]
        .iter()
        .any(|p| t == *p || t.starts_with(&format!("{p} ")));
        if is_ctx {
            stack.push((indent, t.to_string()));
            let ctx: Vec<String> = stack.iter().map(|(_, c)| c.clone()).collect();
            // Contexts of ours appear even without lines (XLVS-IN).
            if let Some(((_, order, _), sec)) =
                ours.iter().find(|((d, _, c), _)| *d == daemon && *c == ctx)
            {
                out.entry((daemon, *order, ctx)).or_insert(Section {
                    remove: sec.remove.clone(),
                    lines: BTreeMap::new(),
                });
            } else if t.starts_with("route-map XLVS-") {
                let name = t.split_whitespace().nth(1).unwrap_or("").to_string();
                out.insert(
                    (daemon, 1, ctx),
                    Section {
                        remove: Some(format!("no route-map {name}")),
                        lines: BTreeMap::new(),
                    },
                );
            }
            continue;
        }
        let ctx: Vec<String> = stack.iter().map(|(_, c)| c.clone()).collect();
        let (key, s) = stmt(t);
        let in_route_map = ctx
            .first()
            .is_some_and(|c| c.starts_with("route-map XLVS-"));
        let our_list = ctx.is_empty()
            && (t.starts_with("ip prefix-list XLVS-") || t.starts_with("ipv6 prefix-list XLVS-"));
        if our_list {
            out.entry((daemon, 0, ctx))
                .or_insert(Section {
                    remove: None,
                    lines: BTreeMap::new(),
                })
                .lines
                .insert(key, s);
            continue;
        }
        let mine = in_route_map
            || ours
                .iter()
                .any(|((d, _, c), sec)| *d == daemon && *c == ctx && sec.lines.contains_key(&key))
            || t.split_whitespace()
                .nth(1)
                .is_some_and(|n| t.starts_with("neighbor ") && our_neighbors.contains(n))
            || (t.starts_with("network ") && t.contains(" route-map XLVS-"));
        if !mine || ctx.is_empty() {
            continue;
        }
        let order = ours
            .iter()
            .find(|((d, _, c), _)| *d == daemon && *c == ctx)
            .map(|((_, o, _), _)| *o)
            .unwrap_or(1);
        out.entry((daemon, order, ctx))
            .or_insert(Section {
                remove: None,
                lines: BTreeMap::new(),
            })
            .lines
            .insert(key, s);
    }
    out
}

/// The daemons' sockets and own processes.
struct Layout {
    dir: PathBuf,
    own: bool,
    quagga: bool,
}

impl Layout {
    fn vty(&self, d: Daemon) -> PathBuf {
        self.dir.join(format!("{}.vty", d.name()))
    }
    fn pid(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pid"))
    }
}

/// Announces through FRR or quagga: configures bgpd/ospfd/bfdd over their vty sockets.
pub struct FrrDriver {
    settings: Settings,
    layout: Layout,
    /// What the daemons hold of ours (None: read it from them first).
    applied: Option<Sections>,
    announced: Announced,
}

/// The daemons a configuration needs (besides zebra).
fn needed(s: &Settings) -> Vec<Daemon> {
    let mut v = Vec::new();
    if s.wants_bfd() {
        v.push(Daemon::Bfdd);
    }
    if !s.neighbors.is_empty() || s.ospf.is_none() {
        v.push(Daemon::Bgpd);
    }
    if s.ospf.is_some() {
        v.push(Daemon::Ospfd);
    }
    v
}

impl FrrDriver {
    /// Drives the daemons whose vty sockets are in `dir`.
    pub fn existing(settings: &Settings, dir: PathBuf) -> Result<FrrDriver> {
        let d = FrrDriver {
            settings: settings.clone(),
            layout: Layout {
                dir,
                own: false,
                quagga: settings.daemon == RoutingDaemon::Quagga,
            },
            applied: None,
            announced: Announced::new(),
        };
        for daemon in needed(settings) {
            Vty::connect(&d.layout.vty(daemon)).with_context(|| {
                format!(
                    "{} needs {} (its vty socket {})",
                    settings.daemon.name(),
                    daemon.name(),
                    d.layout.vty(daemon).display()
                )
            })?;
        }
        Ok(d)
    }

    /// Our own zebra and daemons under the run directory: adopted when they run, started
    /// otherwise.
    pub fn own(settings: &Settings) -> Result<FrrDriver> {
        let dir = settings.run_dir.join(settings.daemon.name());
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let mut d = FrrDriver {
            settings: settings.clone(),
            layout: Layout {
                dir,
                own: true,
                quagga: settings.daemon == RoutingDaemon::Quagga,
            },
            applied: None,
            announced: Announced::new(),
        };
        d.ensure_running()?;
        Ok(d)
    }

    fn binary(&self, name: &str) -> Result<PathBuf> {
        let dirs: &[&str] = if self.layout.quagga {
            &["/usr/lib/quagga", "/usr/sbin", "/usr/local/sbin"]
        } else {
            &["/usr/lib/frr", "/usr/local/lib/frr", "/usr/sbin"]
        };
        let candidates: Vec<String> = dirs.iter().map(|d| format!("{d}/{name}")).collect();
        let refs: Vec<&str> = candidates.iter().map(String::as_str).collect();
        process::find_binary(&refs).with_context(|| {
            format!(
                "{} is not installed (no {name} in {})",
                self.settings.daemon.name(),
                dirs.join(", ")
            )
        })
    }

    fn user(&self) -> &'static str {
        if self.layout.quagga { "quagga" } else { "frr" }
    }

    fn own_pid(&self, name: &str) -> Option<u32> {
        process::running(&self.layout.pid(name), &self.layout.dir.to_string_lossy())
    }

    fn process_names(&self) -> Vec<&'static str> {
        let mut v = vec!["zebra"];
        v.extend(needed(&self.settings).into_iter().map(Daemon::name));
        v
    }

    /// Starts our daemons that do not run (zebra first), from files with the current state.
    fn ensure_running(&mut self) -> Result<bool> {
        if !self.layout.own {
            return Ok(false);
        }
        let all = sections(&self.settings, &self.announced, true);
        let mut started = false;
        let user = self.user();
        // The daemons drop privileges: their directory must be theirs.
        if let Ok(u) = nix::unistd::User::from_name(user)
            && let Some(u) = u
        {
            let _ = nix::unistd::chown(&self.layout.dir, Some(u.uid), Some(u.gid));
        }
        for name in self.process_names() {
            if self.own_pid(name).is_some() {
                continue;
            }
            let bin = self.binary(name)?;
            let conf = self.layout.dir.join(format!("{name}.conf"));
            let daemon = match name {
                "bgpd" => Some(Daemon::Bgpd),
                "bfdd" => Some(Daemon::Bfdd),
                "ospfd" => Some(Daemon::Ospfd),
                _ => None,
            };
            let text = match daemon {
                Some(d) => render_file(&format!("xlvs-{name}"), d, &all),
                None => {
                    "! Written by keepalived (xlvs route bridge).\nhostname xlvs-zebra\n".into()
                }
            };
            dataplane::rundir::write_atomic(&conf, &text)?;
            if let Ok(Some(u)) = nix::unistd::User::from_name(user) {
                let _ = nix::unistd::chown(&conf, Some(u.uid), Some(u.gid));
            }
            let dir = &self.layout.dir;
            let vty = dir.join(format!("{name}.vty"));
            let _ = std::fs::remove_file(&vty);
            let mut cmd = Command::new(bin);
            cmd.arg("-d")
                .arg("-f")
                .arg(&conf)
                .arg("-i")
                .arg(self.layout.pid(name))
                .arg("-z")
                .arg(dir.join("zserv.api"))
                .arg("--vty_socket")
                .arg(dir)
                .args(["-P", "0", "-u", user, "-g", user])
                .arg("--log")
                .arg(format!(
                    "file:{}",
                    dir.join(format!("{name}.log")).display()
                ));
            if name == "bfdd" {
                cmd.arg("--bfdctl").arg(dir.join("bfdd.sock"));
            }
            process::start_daemonizing(&mut cmd)?;
            process::wait_socket(&vty, Duration::from_secs(10))?;
            log::info!(
                "route bridge: started own {name} (pid {}) in {}",
                self.own_pid(name).map_or("?".into(), |p| p.to_string()),
                dir.display()
            );
            started = true;
        }
        if started {
            // What the files held is what runs now (our own daemons were all started from them).
            self.applied = None;
        }
        Ok(started)
    }

    fn running_config(&self, d: Daemon) -> Result<String> {
        Vty::connect(&self.layout.vty(d))?.command("show running-config")
    }

    /// What the daemons hold of ours now.
    fn read_back(&self, ours: &Sections) -> Result<Sections> {
        let mut out = Sections::new();
        for d in needed(&self.settings) {
            let text = self.running_config(d)?;
            if d == Daemon::Bgpd {
                self.check_bgp_owner(&text)?;
            }
            out.extend(owned_sections(d, &text, ours));
        }
        Ok(out)
    }

    /// An existing bgpd must run our AS (there is one BGP instance per AS and VRF).
    fn check_bgp_owner(&self, running: &str) -> Result<()> {
        let ours = self.settings.local_as.unwrap_or(0);
        for l in running.lines() {
            if let Some(asn) = l.strip_prefix("router bgp ") {
                let asn = asn.split_whitespace().next().unwrap_or("");
                if l.split_whitespace().count() == 3 && asn != ours.to_string() {
                    bail!(
                        "bgpd at {} runs `router bgp {asn}`, but route_bridge ({}) says local_as {ours}: the bridge cannot own its part",
                        self.layout.vty(Daemon::Bgpd).display(),
                        self.settings.origin
                    );
                }
            }
        }
        Ok(())
    }
}

impl Driver for FrrDriver {
    fn info(&self) -> DaemonInfo {
        DaemonInfo {
            kind: self.settings.daemon.name().into(),
            own: self.layout.own,
            control: self.layout.dir.clone(),
            pids: if self.layout.own {
                self.process_names()
                    .into_iter()
                    .filter_map(|n| self.own_pid(n).map(|p| (n.to_string(), p)))
                    .collect()
            } else {
                vec![]
            },
        }
    }

    fn apply(&mut self, announced: &Announced) -> Result<()> {
        let new = sections(&self.settings, announced, self.layout.own);
        let old = match self.applied.take() {
            Some(o) => o,
            None => self.read_back(&new)?,
        };
        let mut sessions: BTreeMap<Daemon, Vty> = BTreeMap::new();
        let mut result = Ok(());
        for (d, cmds) in diff(&old, &new) {
            let vty = match sessions.entry(d) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(Vty::connect(&self.layout.vty(d))?)
                }
            };
            for c in &cmds {
                let (status, out) = vty.raw(c)?;
                if status != 0 {
                    if c.starts_with("no ") {
                        // Already gone (a neighbor removed with its settings).
                        log::debug!("route bridge: {}: `{c}`: {}", d.name(), out.trim());
                        continue;
                    }
                    let _ = vty.raw("end");
                    result = Err(anyhow::anyhow!(
                        "{} at {} refused `{c}`: {}",
                        d.name(),
                        self.layout.vty(d).display(),
                        out.trim()
                    ));
                    break;
                }
            }
            if result.is_err() {
                break;
            }
        }
        result?;
        self.applied = Some(new.clone());
        self.announced = announced.clone();
        if self.layout.own {
            // A supervised restart of one daemon starts from the present state.
            for d in needed(&self.settings) {
                let conf = self.layout.dir.join(format!("{}.conf", d.name()));
                let _ = dataplane::rundir::write_atomic(
                    &conf,
                    &render_file(&format!("xlvs-{}", d.name()), d, &new),
                );
            }
        }
        Ok(())
    }

    fn supervise(&mut self) -> Result<bool> {
        if self.layout.own {
            let restarted = self.ensure_running()?;
            if restarted {
                log::warn!(
                    "route bridge: an own {} daemon had stopped: restarted",
                    self.settings.daemon.name()
                );
            }
            return Ok(restarted);
        }
        for d in needed(&self.settings) {
            Vty::connect(&self.layout.vty(d))?;
        }
        Ok(false)
    }

    fn own_processes(&self) -> Vec<(PathBuf, String)> {
        if !self.layout.own {
            return vec![];
        }
        let marker = self.layout.dir.to_string_lossy().into_owned();
        self.process_names()
            .into_iter()
            .map(|n| (self.layout.pid(n), marker.clone()))
            .collect()
    }

    fn stop(&mut self) {
        if !self.layout.own {
            return;
        }
        for name in self.process_names().into_iter().rev() {
            if let Some(pid) = self.own_pid(name) {
                process::stop(pid, Duration::from_secs(3));
                log::info!("route bridge: stopped own {name} (pid {pid})");
            }
        }
    }
}

/// What each of our neighbors is sent, from bgpd itself.
pub fn peers(dir: &Path, neighbors: &[(IpAddr, u32)]) -> Result<Vec<PeerView>> {
    let mut vty = Vty::connect(&dir.join("bgpd.vty"))?;
    let mut out = Vec::new();
    for (addr, remote_as) in neighbors {
        let info: serde_json::Value =
            serde_json::from_str(&vty.command(&format!("show bgp neighbors {addr} json"))?)
                .unwrap_or_default();
        let n = &info[addr.to_string()];
        let family = if addr.is_ipv4() { "ip" } else { "ipv6" };
        let adv: serde_json::Value = serde_json::from_str(
            &vty.command(&format!(
                "show {family} bgp neighbors {addr} advertised-routes json"
            ))
            .unwrap_or_default(),
        )
        .unwrap_or_default();
        let mut routes = Vec::new();
        if let Some(m) = adv["advertisedRoutes"].as_object() {
            for (prefix, r) in m {
                let mut attrs = Vec::new();
                if let Some(med) = r["metric"].as_u64().or(r["med"].as_u64()) {
                    attrs.push(format!("med {med}"));
                }
                if let Some(p) = r["path"].as_str().filter(|p| !p.is_empty()) {
                    attrs.push(format!("as-path {p}"));
                }
                routes.push(RouteView {
                    prefix: prefix.clone(),
                    attributes: attrs.join(" "),
                });
            }
        }
        out.push(PeerView {
            address: addr.to_string(),
            remote_as: Some(*remote_as),
            state: n["bgpState"].as_str().unwrap_or("?").to_string(),
            since: n["bgpTimerUpString"].as_str().unwrap_or("").to_string(),
            routes,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::resolve;
    use keepalived_conf::{ParseOptions, parse_str};

    fn settings(rb: &str) -> Settings {
        let text = format!(
            "virtual_server 198.18.99.1 80 {{\n lb_kind DR\n protocol TCP\n real_server 198.18.30.21 80 {{ }}\n}}\nvirtual_server 198.18.99.2 80 {{\n lb_kind DR\n protocol TCP\n real_server 198.18.30.21 80 {{ }}\n}}\n{rb}"
        );
        let c = parse_str(&text, "k.conf", &ParseOptions::default()).config;
        resolve(&c, Path::new("/sys/fs/bpf/xlvs-t"))
            .unwrap()
            .unwrap()
    }

    const RB: &str = "route_bridge {\n daemon frr\n local_as 65101\n router_id 198.18.30.11\n neighbor 198.18.30.1 remote_as 65000 bfd on\n hold_time 3\n keepalive 1\n connect_retry 1\n healthy {\n med 100\n }\n degraded {\n med 900\n prepend 2\n community 65000:666\n }\n}";

    fn announced(s: &Settings, degraded: &[&str]) -> Announced {
        s.vips
            .iter()
            .map(|v| {
                let d = degraded.contains(&v.address.to_string().as_str());
                (
                    v.address,
                    if d {
                        v.degraded.clone().unwrap()
                    } else {
                        v.healthy.clone()
                    },
                )
            })
            .collect()
    }

    fn cmds(d: &[(Daemon, Vec<String>)]) -> Vec<String> {
        d.iter().flat_map(|(_, c)| c.iter().cloned()).collect()
    }

    #[test]
    fn changes_send_only_the_difference() {
        let s = settings(RB);
        let none = sections(&s, &Announced::new(), true);
        let both = sections(&s, &announced(&s, &[]), true);
        let healthy = route_map_name(&s.vips[0].healthy);
        let degraded = route_map_name(s.vips[0].degraded.as_ref().unwrap());
        // Announcing one VIP more: its network, nothing else.
        let mut one = announced(&s, &[]);
        one.remove(&"198.18.99.2".parse().unwrap());
        let c = cmds(&diff(&sections(&s, &one, true), &both));
        assert_eq!(
            c,
            [
                "configure terminal",
                "router bgp 65101",
                "address-family ipv4 unicast",
                &format!("network 198.18.99.2/32 route-map {healthy}"),
                "end"
            ]
        );
        // Withdrawing it.
        let c = cmds(&diff(&both, &sections(&s, &one, true)));
        assert_eq!(
            c,
            [
                "configure terminal",
                "router bgp 65101",
                "address-family ipv4 unicast",
                "no network 198.18.99.2/32",
                "end"
            ]
        );
        // Degrading one: its route-map appears first, the network is pointed at it.
        let c = cmds(&diff(
            &both,
            &sections(&s, &announced(&s, &["198.18.99.1"]), true),
        ));
        let rm = c
            .iter()
            .position(|l| *l == format!("route-map {degraded} permit 10"))
            .unwrap();
        let net = c
            .iter()
            .position(|l| *l == format!("network 198.18.99.1/32 route-map {degraded}"))
            .unwrap();
        assert!(rm < net, "{c:?}");
        assert!(c.contains(&"set as-path prepend 65101 65101".to_string()));
        assert!(c.contains(&"set community 65000:666 additive".to_string()));
        assert!(
            !c.iter().any(|l| l.starts_with("neighbor")),
            "sessions untouched: {c:?}"
        );
        // Nothing changed: nothing sent.
        assert!(diff(&both, &both).is_empty());
        // From nothing: the BFD profile, route-maps, the neighbor with its policies.
        let c = cmds(&diff(&Sections::new(), &none));
        for want in [
            "profile xlvs",
            "transmit-interval 300",
            "route-map XLVS-IN deny 10",
            "match ip address prefix-list XLVS-VIPS4",
            "ip prefix-list XLVS-VIPS4 permit 198.18.99.1/32",
            "neighbor 198.18.30.1 remote-as 65000",
            "neighbor 198.18.30.1 timers 1 3",
            "neighbor 198.18.30.1 bfd profile xlvs",
            "neighbor 198.18.30.1 route-map XLVS-OUT out",
        ] {
            assert!(c.contains(&want.to_string()), "{want} missing from {c:?}");
        }
    }

    #[test]
    fn a_running_configuration_reads_back_as_what_we_wrote() {
        let s = settings(RB);
        let want = sections(&s, &announced(&s, &["198.18.99.2"]), true);
        let text = render_file("x", Daemon::Bgpd, &want);
        // FRR adds its own lines around ours.
        let running = format!(
            "frr version 8.4.4\nfrr defaults traditional\n!\n{}\n!\nip prefix-list OTHER seq 5 permit 10.0.0.0/8\n!\nend\n",
            text.replace("router bgp 65101\n", "router bgp 65101\n no bgp ebgp-requires-policy\n neighbor 198.18.30.9 remote-as 1\n")
        );
        // FRR numbers prefix-list entries itself.
        let mut seq = 0;
        let running: String = running
            .lines()
            .map(
                |l| match l.strip_prefix("ip prefix-list XLVS-VIPS4 permit ") {
                    Some(p) => {
                        seq += 5;
                        format!("ip prefix-list XLVS-VIPS4 seq {seq} permit {p}\n")
                    }
                    None => format!("{l}\n"),
                },
            )
            .collect();
        assert_eq!(seq, 10, "{running}");
        let back = owned_sections(Daemon::Bgpd, &running, &want);
        let bgp_only: Sections = want
            .into_iter()
            .filter(|((d, _, _), _)| *d == Daemon::Bgpd)
            .collect();
        assert_eq!(diff(&back, &bgp_only), vec![], "{back:#?}");
        // A network of ours left over from an older configuration is taken back.
        let stale = format!(
            "{running}router bgp 65101\n address-family ipv4 unicast\n  network 198.18.99.77/32 route-map XLVS-00000000\n exit-address-family\nexit\n"
        );
        let back = owned_sections(Daemon::Bgpd, &stale, &bgp_only);
        assert!(cmds(&diff(&back, &bgp_only)).contains(&"no network 198.18.99.77/32".to_string()));
    }

    #[test]
    fn frr_accepts_the_files_we_render() {
        let Some(bgpd) = process::find_binary(&["/usr/lib/frr/bgpd"]) else {
            xlvs_tests::skip::skip("FRR is not installed");
            return;
        };
        let s = settings(RB);
        let all = sections(&s, &announced(&s, &["198.18.99.1"]), true);
        let dir = std::env::temp_dir().join(format!("qb-frr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("bgpd.conf");
        std::fs::write(&conf, render_file("x", Daemon::Bgpd, &all)).unwrap();
        let out = Command::new(bgpd)
            .arg("-C")
            .arg("-f")
            .arg(&conf)
            .arg("-Z")
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !err.contains("rror"),
            "bgpd -C: {err}"
        );
    }
}
