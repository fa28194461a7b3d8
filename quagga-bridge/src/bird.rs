//! bird 2: the bridge's part of the configuration (a file bird includes), applied with
//! `configure` on bird's control socket (what `birdc` speaks), and an own bird when none runs.
//!
//! The part announces the addresses of the liveness device (`protocol direct xlvs_vips`)
//! through `filter xlvs_export`, which accepts exactly the VIPs to announce and sets their
//! attributes; each neighbor is `protocol bgp xlvs_<address>`. An existing bird must
//! `include` the part (the bridge checks that it did).

use crate::driver::{Announced, DaemonInfo, Driver, PeerView, RouteView};
use crate::process;
use crate::settings::{Neighbor, Settings};
use anyhow::{Context, Result, bail};
use keepalived_conf::model::AnnounceAttributes;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Debian's control socket of the system bird.
pub const DEFAULT_SOCKET: &str = "/run/bird/bird.ctl";
const TIMEOUT: Duration = Duration::from_secs(5);

/// A reply: its final code (0xxx fine, 8xxx/9xxx errors) and its text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The reply's final code.
    pub code: u16,
    /// Its text lines.
    pub lines: Vec<String>,
}

impl Reply {
    /// Whether bird accepted the command.
    pub fn ok(&self) -> bool {
        self.code < 8000
    }
    /// The text lines joined, for messages.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

/// A session on bird's control socket.
pub struct Control {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Control {
    /// Connects (the daemon must run in our network namespace) and reads the greeting.
    pub fn connect(path: &Path) -> Result<Control> {
        let s = process::connect_local(path, TIMEOUT)?;
        let writer = s.try_clone()?;
        let mut c = Control {
            path: path.to_path_buf(),
            reader: BufReader::new(s),
            writer,
        };
        let hello = c.read_reply()?;
        if hello.code != 1 {
            bail!(
                "{} is not a bird control socket: {:?}",
                path.display(),
                hello.text()
            );
        }
        Ok(c)
    }

    /// Sends one command and reads its whole reply.
    pub fn command(&mut self, cmd: &str) -> Result<Reply> {
        self.writer
            .write_all(format!("{cmd}\n").as_bytes())
            .with_context(|| format!("bird control socket {}", self.path.display()))?;
        self.read_reply()
            .with_context(|| format!("bird control socket {}: `{cmd}`", self.path.display()))
    }

    fn read_reply(&mut self) -> Result<Reply> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                bail!("bird closed the control socket");
            }
            let line = line.trim_end_matches('\n');
            let b = line.as_bytes();
            if b.len() >= 5
                && b[..4].iter().all(u8::is_ascii_digit)
                && (b[4] == b' ' || b[4] == b'-')
            {
                lines.push(line[5..].to_string());
                if b[4] == b' ' {
                    let code = line[..4].parse().unwrap_or(9999);
                    return Ok(Reply { code, lines });
                }
            } else {
                // A continuation line of the previous code (starts with a space).
                lines.push(line.trim_start_matches(' ').to_string());
            }
        }
    }
}

/// Whether the bird behind `socket` sees interface `name` with index `ifindex`, i.e. runs in
/// our network namespace (the socket's creator pid says nothing: bird forks after creating it).
pub fn sees_interface(socket: &Path, name: &str, ifindex: u32) -> Result<bool> {
    let mut ctl = Control::connect(socket)?;
    let r = ctl.command("show interfaces")?;
    let want = format!("{name} ");
    let index = format!("(index={ifindex})");
    Ok(r.lines
        .iter()
        .any(|l| l.starts_with(&want) && l.contains(&index)))
}

/// bird's protocol name of a neighbor.
pub fn protocol_name(addr: IpAddr) -> String {
    let a: String = addr
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("xlvs_{a}")
}

fn net(addr: IpAddr) -> String {
    format!("{addr}/{}", if addr.is_ipv4() { 32 } else { 128 })
}

/// Filter statements that give a route `attrs`.
fn attribute_statements(attrs: &AnnounceAttributes, local_as: Option<u32>) -> String {
    let mut s = String::new();
    if let Some(m) = attrs.med {
        let _ = write!(s, " bgp_med = {m};");
    }
    if let Some(l) = attrs.local_pref {
        let _ = write!(s, " bgp_local_pref = {l};");
    }
    for c in &attrs.communities {
        let parts: Vec<&str> = c.split(':').collect();
        if parts.len() == 2 {
            let _ = write!(s, " bgp_community.add(({},{}));", parts[0], parts[1]);
        } else {
            let _ = write!(
                s,
                " bgp_large_community.add(({},{},{}));",
                parts[0], parts[1], parts[2]
            );
        }
    }
    if let Some(asn) = local_as {
        for _ in 0..attrs.prepend {
            let _ = write!(s, " bgp_path.prepend({asn});");
        }
    }
    s
}

/// The bridge's part of bird's configuration. `own`: it runs in our own bird (which also gets
/// our BFD and OSPF protocols; an existing bird keeps its own).
pub fn render_part(s: &Settings, announced: &Announced, own: bool) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# xlvs route_bridge ({}): written by keepalived, rewritten on every change.\n\
         # The announced VIPs are the addresses of interface \"{}\".",
        s.origin, s.device
    );
    let _ = writeln!(
        o,
        "protocol direct xlvs_vips {{\n    ipv4;\n    ipv6;\n    interface \"{}\";\n}}",
        s.device
    );
    let _ = writeln!(
        o,
        "function xlvs_announce()\n{{\n    if proto != \"xlvs_vips\" then return false;"
    );
    for (addr, attrs) in announced {
        let _ = writeln!(
            o,
            "    if net = {} then {{{} return true; }}",
            net(*addr),
            attribute_statements(attrs, s.local_as)
        );
    }
    let _ = writeln!(o, "    return false;\n}}");
    let _ = writeln!(
        o,
        "filter xlvs_export\n{{\n    if xlvs_announce() then accept;\n    reject;\n}}"
    );
    if own && s.wants_bfd() {
        let _ = writeln!(
            o,
            "protocol bfd xlvs_bfd {{\n    interface \"*\" {{\n        min rx interval {i} ms;\n        min tx interval {i} ms;\n        multiplier {m};\n    }};\n    multihop {{\n        min rx interval {i} ms;\n        min tx interval {i} ms;\n        multiplier {m};\n    }};\n}}",
            i = s.bfd_interval_ms,
            m = s.bfd_multiplier
        );
    }
    for n in &s.neighbors {
        render_neighbor(&mut o, s, n);
    }
    if own && let Some(ospf) = &s.ospf {
        let _ = writeln!(
            o,
            "protocol ospf v2 xlvs_ospf {{\n    ipv4 {{ import none; export none; }};\n    area {} {{",
            ospf.area
        );
        for i in &ospf.interfaces {
            let mut opts = String::new();
            if let Some(c) = i.cost {
                let _ = write!(opts, " cost {c};");
            }
            if let Some(h) = i.hello {
                let _ = write!(opts, " hello {h};");
            }
            if let Some(d) = i.dead {
                let _ = write!(opts, " dead {d};");
            }
            if i.point_to_point {
                opts.push_str(" type ptp;");
            }
            if s.wants_bfd() {
                opts.push_str(" bfd yes;");
            }
            let _ = writeln!(o, "        interface \"{}\" {{{opts} }};", i.name);
        }
        let _ = writeln!(
            o,
            "        interface \"{}\" {{ stub yes; }};\n    }};\n}}",
            s.device
        );
    }
    o
}

fn render_neighbor(o: &mut String, s: &Settings, n: &Neighbor) {
    let local = match n.source {
        Some(a) => format!("local {a} as {}", s.local_as.unwrap_or(0)),
        None => format!("local as {}", s.local_as.unwrap_or(0)),
    };
    let port = n.port.map(|p| format!(" port {p}")).unwrap_or_default();
    let _ = writeln!(
        o,
        "protocol bgp {} {{\n    {local};\n    neighbor {}{port} as {};\n    hold time {};\n    keepalive time {};\n    connect retry time {};\n    connect delay time {};\n    error wait time {},{};",
        protocol_name(n.address),
        n.address,
        n.remote_as,
        s.hold_time,
        s.keepalive,
        s.connect_retry,
        s.connect_retry,
        // bird waits 60-300 s after a session error (a BFD flap) by default: as long as a
        // director stays out of the ECMP set.
        s.connect_retry,
        u32::from(s.connect_retry) * 30
    );
    if let Some(m) = n.multihop {
        let _ = writeln!(o, "    multihop {m};");
    }
    if let Some(p) = &n.password {
        let _ = writeln!(o, "    password \"{}\";", p.replace('"', ""));
    }
    if n.bfd {
        let _ = writeln!(o, "    bfd on;");
    }
    let channel = if n.address.is_ipv4() { "ipv4" } else { "ipv6" };
    let _ = writeln!(
        o,
        "    {channel} {{ import none; export filter xlvs_export; }};\n}}"
    );
}

/// Our own bird's main configuration: router id, device scan, log, and the part.
pub fn render_main(s: &Settings, part: &Path, log: &Path) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# Own bird of the xlvs route bridge ({}): written by keepalived.",
        s.origin
    );
    if let Some(id) = s.router_id {
        let _ = writeln!(o, "router id {id};");
    }
    let _ = writeln!(
        o,
        "log \"{}\" {{ info, warning, error, fatal }};\nprotocol device {{ scan time 10; }}\ninclude \"{}\";",
        log.display(),
        part.display()
    );
    o
}

/// Files of our own bird.
struct OwnFiles {
    dir: PathBuf,
}

impl OwnFiles {
    fn main(&self) -> PathBuf {
        self.dir.join("bird.conf")
    }
    fn socket(&self) -> PathBuf {
        self.dir.join("bird.ctl")
    }
    fn pid(&self) -> PathBuf {
        self.dir.join("bird.pid")
    }
    fn log(&self) -> PathBuf {
        self.dir.join("bird.log")
    }
}

/// Announces through bird 2: writes the bridge's part of its configuration and reloads it.
pub struct BirdDriver {
    settings: Settings,
    own: Option<OwnFiles>,
    socket: PathBuf,
    part: PathBuf,
    /// The part as bird last accepted it.
    applied: Option<String>,
    announced: Announced,
}

impl BirdDriver {
    /// Drives the bird behind `socket` (it must include `part`).
    pub fn existing(settings: &Settings, socket: PathBuf) -> Result<BirdDriver> {
        let part = settings
            .config_file
            .clone()
            .unwrap_or_else(|| settings.run_dir.join("bird-xlvs.conf"));
        Control::connect(&socket)?;
        Ok(BirdDriver {
            settings: settings.clone(),
            own: None,
            socket,
            part,
            applied: None,
            announced: Announced::new(),
        })
    }

    /// Our own bird under the run directory: adopted when it runs (a keepalived restart),
    /// started otherwise.
    pub fn own(settings: &Settings) -> Result<BirdDriver> {
        let files = OwnFiles {
            dir: settings.run_dir.join("bird"),
        };
        std::fs::create_dir_all(&files.dir)
            .with_context(|| format!("cannot create {}", files.dir.display()))?;
        let mut d = BirdDriver {
            settings: settings.clone(),
            socket: files.socket(),
            part: files.dir.join("xlvs.conf"),
            own: Some(files),
            applied: None,
            announced: Announced::new(),
        };
        d.ensure_running()?;
        Ok(d)
    }

    fn own_pid(&self) -> Option<u32> {
        let f = self.own.as_ref()?;
        process::running(&f.pid(), &f.socket().to_string_lossy())
    }

    /// Starts our bird unless it runs (with the current announcements in its files).
    fn ensure_running(&mut self) -> Result<bool> {
        let Some(f) = &self.own else { return Ok(false) };
        if self.own_pid().is_some() {
            return Ok(false);
        }
        let bin = process::find_binary(&["/usr/sbin/bird", "/usr/local/sbin/bird", "/sbin/bird"])
            .context(
            "bird is not installed (no /usr/sbin/bird): install bird2 or set `daemon`",
        )?;
        let part = render_part(&self.settings, &self.announced, true);
        dataplane::rundir::write_atomic(&self.part, &part)?;
        dataplane::rundir::write_atomic(
            &f.main(),
            &render_main(&self.settings, &self.part, &f.log()),
        )?;
        let _ = std::fs::remove_file(f.socket());
        process::start_daemonizing(
            Command::new(bin)
                .arg("-c")
                .arg(f.main())
                .arg("-s")
                .arg(f.socket())
                .arg("-P")
                .arg(f.pid()),
        )?;
        process::wait_socket(&f.socket(), Duration::from_secs(5))?;
        self.applied = Some(part);
        log::info!(
            "route bridge: started own bird (pid {}), control socket {}",
            self.own_pid().map_or("?".into(), |p| p.to_string()),
            f.socket().display()
        );
        Ok(true)
    }
}

impl Driver for BirdDriver {
    fn info(&self) -> DaemonInfo {
        DaemonInfo {
            kind: "bird".into(),
            own: self.own.is_some(),
            control: self.socket.clone(),
            pids: self
                .own_pid()
                .map(|p| ("bird".to_string(), p))
                .into_iter()
                .collect(),
        }
    }

    fn apply(&mut self, announced: &Announced) -> Result<()> {
        let text = render_part(&self.settings, announced, self.own.is_some());
        if self.applied.as_ref() == Some(&text) {
            self.announced = announced.clone();
            return Ok(());
        }
        let previous = std::fs::read_to_string(&self.part).ok();
        dataplane::rundir::write_atomic(&self.part, &text)
            .with_context(|| format!("cannot write {}", self.part.display()))?;
        let mut ctl = Control::connect(&self.socket)?;
        let reply = ctl.command("configure")?;
        if !reply.ok() {
            // bird keeps running its previous configuration: so does the file.
            match &previous {
                Some(p) => dataplane::rundir::write_atomic(&self.part, p)?,
                None => {
                    let _ = std::fs::remove_file(&self.part);
                }
            }
            bail!(
                "bird at {} refused the configuration: {}",
                self.socket.display(),
                reply.text()
            );
        }
        if self.applied.is_none() {
            let shown = ctl.command("show protocols xlvs_vips")?;
            if !shown.ok() {
                bail!(
                    "bird at {} does not read {}: add `include \"{}\";` to its configuration",
                    self.socket.display(),
                    self.part.display(),
                    self.part.display()
                );
            }
        }
        self.applied = Some(text);
        self.announced = announced.clone();
        Ok(())
    }

    fn supervise(&mut self) -> Result<bool> {
        if self.own.is_some() {
            let restarted = self.ensure_running()?;
            if restarted {
                log::warn!("route bridge: own bird had stopped: restarted");
            }
            return Ok(restarted);
        }
        Control::connect(&self.socket).map(|_| false)
    }

    fn own_processes(&self) -> Vec<(PathBuf, String)> {
        self.own
            .iter()
            .map(|f| (f.pid(), f.socket().to_string_lossy().into_owned()))
            .collect()
    }

    fn stop(&mut self) {
        if let Some(pid) = self.own_pid() {
            process::stop(pid, Duration::from_secs(3));
            log::info!("route bridge: stopped own bird (pid {pid})");
        }
    }
}

/// What each of our neighbors is sent, from bird itself.
pub fn peers(socket: &Path, neighbors: &[(IpAddr, u32)]) -> Result<Vec<PeerView>> {
    let mut ctl = Control::connect(socket)?;
    let mut out = Vec::new();
    for (addr, remote_as) in neighbors {
        let name = protocol_name(*addr);
        let p = ctl.command(&format!("show protocols {name}"))?;
        // "Name Proto Table State Since Info" then our row.
        let row = p
            .lines
            .iter()
            .find(|l| l.starts_with(&name))
            .cloned()
            .unwrap_or_default();
        let cols: Vec<&str> = row.split_whitespace().collect();
        let state = cols
            .get(5)
            .copied()
            .unwrap_or(cols.get(3).copied().unwrap_or("?"));
        let since = cols.get(4).copied().unwrap_or("").to_string();
        let r = ctl.command(&format!("show route export {name} all"))?;
        out.push(PeerView {
            address: addr.to_string(),
            remote_as: Some(*remote_as),
            state: state.to_string(),
            since,
            routes: export_routes(&r.lines),
        });
    }
    Ok(out)
}

/// Routes and their BGP attributes from `show route export P all`.
fn export_routes(lines: &[String]) -> Vec<RouteView> {
    let mut out: Vec<RouteView> = Vec::new();
    for l in lines {
        let t = l.trim();
        let first = t.split_whitespace().next().unwrap_or("");
        // A route line starts at the margin with its prefix; attribute lines are indented.
        let is_prefix = first
            .split_once('/')
            .is_some_and(|(a, _)| a.parse::<IpAddr>().is_ok());
        if is_prefix && !l.starts_with(' ') && !l.starts_with('\t') {
            out.push(RouteView {
                prefix: first.to_string(),
                attributes: String::new(),
            });
            continue;
        }
        let Some(last) = out.last_mut() else { continue };
        for (key, label) in [
            ("BGP.med:", "med"),
            ("BGP.local_pref:", "local-pref"),
            ("BGP.community:", "community"),
            ("BGP.large_community:", "large-community"),
            ("BGP.as_path:", "as-path"),
        ] {
            if let Some(v) = t.strip_prefix(key) {
                let v = v.trim();
                if v.is_empty() {
                    continue;
                }
                if !last.attributes.is_empty() {
                    last.attributes.push(' ');
                }
                let _ = write!(last.attributes, "{label} {v}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::resolve;
    use keepalived_conf::{ParseOptions, parse_str};

    fn settings(rb: &str) -> Settings {
        let text = format!(
            "virtual_server 198.18.99.1 80 {{\n lb_kind DR\n protocol TCP\n real_server 198.18.30.21 80 {{ }}\n}}\n{rb}"
        );
        let c = parse_str(&text, "k.conf", &ParseOptions::default()).config;
        resolve(&c, Path::new("/sys/fs/bpf/xlvs-t"))
            .unwrap()
            .unwrap()
    }

    #[test]
    fn the_part_announces_only_the_given_vips_with_their_attributes() {
        let s = settings(
            "route_bridge {\n local_as 65101\n neighbor 198.18.30.1 remote_as 65000 bfd on\n neighbor 2001:db8::1 remote_as 65000 port 1179\n hold_time 3\n keepalive 1\n connect_retry 1\n}",
        );
        let mut a = Announced::new();
        a.insert(
            "198.18.99.1".parse().unwrap(),
            AnnounceAttributes {
                med: Some(200),
                local_pref: None,
                communities: vec!["65000:666".into(), "65000:1:2".into()],
                prepend: 2,
            },
        );
        let part = render_part(&s, &a, true);
        assert!(part.contains(&format!("interface \"{}\";", s.device)));
        assert!(part.contains(
            "    if net = 198.18.99.1/32 then { bgp_med = 200; bgp_community.add((65000,666)); bgp_large_community.add((65000,1,2)); bgp_path.prepend(65101); bgp_path.prepend(65101); return true; }"
        ), "{part}");
        assert!(part.contains("protocol bgp xlvs_198_18_30_1 {\n    local as 65101;\n    neighbor 198.18.30.1 as 65000;\n    hold time 3;\n    keepalive time 1;\n    connect retry time 1;\n    connect delay time 1;\n    error wait time 1,30;\n    bfd on;\n    ipv4 { import none; export filter xlvs_export; };\n}"), "{part}");
        assert!(part.contains("neighbor 2001:db8::1 port 1179 as 65000;"));
        assert!(part.contains("    ipv6 { import none; export filter xlvs_export; };"));
        assert!(part.contains("protocol bfd xlvs_bfd"));
        assert!(
            !render_part(&s, &a, false).contains("protocol bfd"),
            "an existing bird keeps its own"
        );
        let none = render_part(&s, &Announced::new(), true);
        assert!(
            !none.contains("if net ="),
            "nothing announced, nothing accepted"
        );
    }

    #[test]
    fn bird_accepts_what_we_render() {
        // bird -p parses a configuration without running it.
        let Some(bin) = process::find_binary(&["/usr/sbin/bird"]) else {
            xlvs_tests::skip::skip("bird is not installed");
            return;
        };
        let s = settings(
            "route_bridge {\n local_as 65101\n router_id 198.18.30.11\n neighbor 198.18.30.1 remote_as 65000 bfd on multihop 2 password x source 198.18.30.11\n ospf {\n area 0\n interface eth0 cost 10 hello 1 dead 4 type ptp\n }\n healthy {\n med 100\n community 65000:100\n }\n}",
        );
        let dir = std::env::temp_dir().join(format!("qb-bird-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let part = dir.join("xlvs.conf");
        let mut a = Announced::new();
        a.insert("198.18.99.1".parse().unwrap(), s.vips[0].healthy.clone());
        std::fs::write(&part, render_part(&s, &a, true)).unwrap();
        let main = dir.join("bird.conf");
        std::fs::write(&main, render_main(&s, &part, &dir.join("bird.log"))).unwrap();
        let out = Command::new(bin)
            .arg("-p")
            .arg("-c")
            .arg(&main)
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            out.status.success(),
            "bird -p: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn exported_routes_and_their_attributes_are_read_from_birds_listing() {
        let lines: Vec<String> = [
            "Table master4:",
            "198.18.99.1/32       unicast [xlvs_vips 12:00:01.000] * (240)",
            "\tdev xlvs",
            "\tType: device univ",
            "\tBGP.origin: IGP",
            "\tBGP.as_path: 65101 65101",
            "\tBGP.next_hop: 198.18.30.11",
            "\tBGP.med: 200",
            "\tBGP.community: (65000,666)",
            "198.18.99.2/32       unicast [xlvs_vips 12:00:01.000] * (240)",
            "\tdev xlvs",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = export_routes(&lines);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].prefix, "198.18.99.1/32");
        assert_eq!(
            r[0].attributes,
            "as-path 65101 65101 med 200 community (65000,666)"
        );
        assert_eq!(r[1].attributes, "");
    }
}
