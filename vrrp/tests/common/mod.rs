//! Test bed for VRRP interop: two namespaces joined by a veth, one VRRP node in each (ours or
//! Debian's keepalived 2.2.7), VIP polling. Shared by the interop tests and the failover bench.
#![allow(dead_code)]

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use xlvs_tests::netns::{Netns, is_root, unique_prefix, veth};

pub const KEEPALIVED: &str = "/usr/sbin/keepalived";

/// Why a test cannot run here, or None.
pub fn skip_reason() -> Option<String> {
    if !is_root() {
        return Some("needs root (network namespaces, raw sockets)".into());
    }
    if !std::path::Path::new(KEEPALIVED).exists() {
        return Some(format!(
            "{KEEPALIVED} not installed (scripts/setup.sh installs it)"
        ));
    }
    None
}

#[macro_export]
macro_rules! skip_unless_ready {
    () => {
        if let Some(r) = common::skip_reason() {
            xlvs_tests::skip(&r);
            return;
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    Ours,
    Keepalived,
}

/// One side of the pair.
pub struct Side {
    pub ns: Netns,
    pub ifname: String,
    pub addr: IpAddr,
}

/// Two namespaces `<p>a` / `<p>b` joined by veth `va`/`vb`, 198.18.<net>.1 and .2 (and
/// 2001:db8:<net>::1/2 with IPv6 on when asked).
pub struct Pair {
    pub a: Side,
    pub b: Side,
    pub dir: PathBuf,
    pub net: u8,
    pub v6: bool,
}

impl Pair {
    pub fn new(net: u8, v6: bool) -> Result<Pair> {
        let p = unique_prefix("vr");
        let na = Netns::new(&format!("{p}a"))?;
        let nb = Netns::new(&format!("{p}b"))?;
        if v6 {
            for ns in [&na, &nb] {
                for (k, v) in [
                    ("net.ipv6.conf.default.accept_dad", "0"),
                    ("net.ipv6.conf.all.accept_dad", "0"),
                    ("net.ipv6.conf.default.router_solicitations", "0"),
                    ("net.ipv6.conf.all.disable_ipv6", "0"),
                    ("net.ipv6.conf.default.disable_ipv6", "0"),
                ] {
                    ns.sysctl(k, v)?;
                }
            }
        }
        veth(&na, "va", &nb, "vb")?;
        let a4 = format!("198.18.{net}.1/24");
        let b4 = format!("198.18.{net}.2/24");
        na.ip(&["addr", "add", &a4, "dev", "va"])?;
        nb.ip(&["addr", "add", &b4, "dev", "vb"])?;
        let (aa, ba): (IpAddr, IpAddr) = if v6 {
            na.ip(&[
                "addr",
                "add",
                &format!("2001:db8:{net}::1/64"),
                "dev",
                "va",
                "nodad",
            ])?;
            nb.ip(&[
                "addr",
                "add",
                &format!("2001:db8:{net}::2/64"),
                "dev",
                "vb",
                "nodad",
            ])?;
            (
                format!("2001:db8:{net}::1").parse()?,
                format!("2001:db8:{net}::2").parse()?,
            )
        } else {
            (
                format!("198.18.{net}.1").parse()?,
                format!("198.18.{net}.2").parse()?,
            )
        };
        let dir = std::env::temp_dir().join(&p);
        std::fs::create_dir_all(&dir)?;
        // Link-local addresses need a moment even without DAD.
        if v6 {
            wait_until(Duration::from_secs(5), || {
                has_linklocal(&na) && has_linklocal(&nb)
            })?;
        }
        Ok(Pair {
            a: Side {
                ns: na,
                ifname: "va".into(),
                addr: aa,
            },
            b: Side {
                ns: nb,
                ifname: "vb".into(),
                addr: ba,
            },
            dir,
            net,
            v6,
        })
    }

    pub fn vip(&self) -> String {
        if self.v6 {
            format!("2001:db8:{}::100", self.net)
        } else {
            format!("198.18.{}.100", self.net)
        }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn has_linklocal(ns: &Netns) -> bool {
    ns.ip(&["-6", "-o", "addr", "show", "scope", "link"])
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("fe80"))
        .unwrap_or(false)
}

/// What to put in a node's configuration.
#[derive(Debug, Clone)]
pub struct NodeConf {
    pub priority: u8,
    pub version: u8,
    /// keepalived syntax: "1", "0.1", "0.01".
    pub advert_int: String,
    pub unicast: bool,
    pub nopreempt: bool,
    /// `authentication { auth_type TYPE auth_pass PASS }`.
    pub auth: Option<(&'static str, String)>,
    /// `use_vmac` (the VIP then goes on the vmac, not on the base interface).
    pub vmac: bool,
}

impl NodeConf {
    pub fn new(priority: u8, version: u8, advert_int: &str) -> NodeConf {
        NodeConf {
            priority,
            version,
            advert_int: advert_int.into(),
            unicast: false,
            nopreempt: false,
            auth: None,
            vmac: false,
        }
    }
}

pub fn config_text(pair: &Pair, me: &Side, peer: &Side, c: &NodeConf) -> String {
    let mut s = format!(
        "global_defs {{\n router_id {}\n vrrp_version {}\n vrrp_garp_master_delay 0\n \
         vrrp_garp_master_repeat 1\n script_user root\n}}\n\
         vrrp_instance VI_T {{\n state BACKUP\n interface {}\n virtual_router_id 51\n \
         priority {}\n advert_int {}\n",
        me.ifname, c.version, me.ifname, c.priority, c.advert_int
    );
    if c.nopreempt {
        s.push_str(" nopreempt\n");
    }
    if c.vmac {
        s.push_str(" use_vmac\n");
    }
    if c.unicast {
        s.push_str(&format!(
            " unicast_src_ip {}\n unicast_peer {{\n  {}\n }}\n",
            me.addr, peer.addr
        ));
    }
    if let Some((t, p)) = &c.auth {
        s.push_str(&format!(
            " authentication {{\n  auth_type {t}\n  auth_pass {p}\n }}\n"
        ));
    }
    let plen = if pair.v6 { 128 } else { 32 };
    let dev = if c.vmac {
        String::new()
    } else {
        format!(" dev {}", me.ifname)
    };
    s.push_str(&format!(
        " virtual_ipaddress {{\n  {}/{plen}{dev}\n }}\n}}\n",
        pair.vip()
    ));
    s
}

/// A running VRRP node; killed (SIGKILL) and reaped on drop.
pub struct Node {
    pub which: Impl,
    child: Option<Child>,
    pub pid: i32,
    vrrp_pidfile: PathBuf,
    pub log: PathBuf,
    /// The configuration file it runs (rewrite it, then [`Node::reload`]).
    pub conf: PathBuf,
}

impl Node {
    pub fn start(
        which: Impl,
        pair: &Pair,
        me: &Side,
        peer: &Side,
        c: &NodeConf,
        tag: &str,
    ) -> Result<Node> {
        Node::start_text(which, pair, me, &config_text(pair, me, peer, c), tag)
    }

    /// Starts a node on a configuration written out in full.
    pub fn start_text(which: Impl, pair: &Pair, me: &Side, text: &str, tag: &str) -> Result<Node> {
        let conf = pair.dir.join(format!("{tag}.conf"));
        std::fs::write(&conf, text)?;
        let log = pair.dir.join(format!("{tag}.log"));
        let pidf = pair.dir.join(format!("{tag}.pid"));
        let vpidf = pair.dir.join(format!("{tag}-vrrp.pid"));
        let _ = std::fs::remove_file(&vpidf);
        let logf = std::fs::File::create(&log)?;
        let mut cmd = match which {
            Impl::Ours => me.ns.command(env!("CARGO_BIN_EXE_xlvs-vrrpd")),
            Impl::Keepalived => me.ns.command(KEEPALIVED),
        };
        let conf_s = conf.display().to_string();
        let pid_s = pidf.display().to_string();
        let vpid_s = vpidf.display().to_string();
        let chk_s = pair
            .dir
            .join(format!("{tag}-chk.pid"))
            .display()
            .to_string();
        cmd.args([
            "-n", "-l", "-D", "-G", "-P", "-f", &conf_s, "-p", &pid_s, "-r", &vpid_s, "-c", &chk_s,
        ]);
        cmd.stdin(Stdio::null())
            .stdout(logf.try_clone()?)
            .stderr(logf);
        let child = cmd.spawn().with_context(|| format!("start {which:?}"))?;
        let pid = child.id() as i32;
        Ok(Node {
            which,
            child: Some(child),
            pid,
            vrrp_pidfile: vpidf,
            log,
            conf,
        })
    }

    /// Reload (SIGHUP to the main process) after writing `text` as its configuration.
    pub fn reload(&self, text: &str) -> Result<()> {
        std::fs::write(&self.conf, text)?;
        self.signal(nix::sys::signal::Signal::SIGHUP);
        Ok(())
    }

    /// Graceful stop (SIGTERM to the main process), waits for exit.
    pub fn stop(&mut self) -> Result<()> {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        self.wait(Duration::from_secs(10))
    }

    /// Crash: SIGKILL to the main process and keepalived's VRRP child.
    pub fn kill(&mut self) -> Result<()> {
        if self.which == Impl::Keepalived
            && let Some(child) = self.vrrp_child()
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        self.signal(nix::sys::signal::Signal::SIGKILL);
        self.wait(Duration::from_secs(10))
    }

    fn vrrp_child(&self) -> Option<i32> {
        std::fs::read_to_string(&self.vrrp_pidfile)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn signal(&self, s: nix::sys::signal::Signal) {
        if self.child.is_some() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), s);
        }
    }

    fn wait(&mut self, limit: Duration) -> Result<()> {
        let Some(mut c) = self.child.take() else {
            return Ok(());
        };
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            if c.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = c.kill();
        let _ = c.wait();
        bail!("{:?} did not exit", self.which)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.kill();
        }
    }
}

/// Whether `ns` has `vip` on any interface (netlink dump through getifaddrs on a thread inside
/// the namespace: cheap enough to poll every few ms).
pub fn has_vip(ns: &Netns, vip: &str) -> bool {
    let vip: IpAddr = vip.parse().unwrap();
    ns.run_in(move || {
        nix::ifaddrs::getifaddrs()
            .map(|it| {
                it.filter_map(|i| i.address).any(|a| {
                    a.as_sockaddr_in()
                        .is_some_and(|s| IpAddr::V4(s.ip()) == vip)
                        || a.as_sockaddr_in6()
                            .is_some_and(|s| IpAddr::V6(s.ip()) == vip)
                })
            })
            .unwrap_or(false)
    })
    .join()
    .ok()
    .and_then(|r| r.ok())
    .unwrap_or(false)
}

/// A thread inside `ns` that polls for `vip` every `every` and records when it first shows.
pub struct VipWatch {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<Result<Option<Instant>>>>,
}

impl VipWatch {
    pub fn start(ns: &Netns, vip: &str, every: Duration) -> VipWatch {
        let vip: IpAddr = vip.parse().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let h = ns.run_in(move || {
            while !s2.load(Ordering::Relaxed) {
                let seen = nix::ifaddrs::getifaddrs()
                    .map(|it| {
                        it.filter_map(|i| i.address).any(|a| {
                            a.as_sockaddr_in()
                                .is_some_and(|s| IpAddr::V4(s.ip()) == vip)
                                || a.as_sockaddr_in6()
                                    .is_some_and(|s| IpAddr::V6(s.ip()) == vip)
                        })
                    })
                    .unwrap_or(false);
                if seen {
                    return Some(Instant::now());
                }
                std::thread::sleep(every);
            }
            None
        });
        VipWatch {
            stop,
            handle: Some(h),
        }
    }

    /// Waits up to `limit` for the VIP; its arrival time.
    pub fn wait(mut self, limit: Duration) -> Option<Instant> {
        let t0 = Instant::now();
        let h = self.handle.take()?;
        while !h.is_finished() && t0.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.stop.store(true, Ordering::Relaxed);
        h.join().ok()?.ok()?
    }
}

pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> Result<()> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    bail!("condition not met within {limit:?}")
}

/// Waits until the VIP is on `on` and not on `off`, then checks it stays so at every poll for
/// `hold` (no dual master after convergence).
pub fn converge_on(
    pair: &Pair,
    on: &Side,
    off: &Side,
    limit: Duration,
    hold: Duration,
) -> Result<()> {
    let vip = pair.vip();
    wait_until(limit, || has_vip(&on.ns, &vip) && !has_vip(&off.ns, &vip))
        .with_context(|| format!("VIP {vip} did not converge on {}", on.ns.name))?;
    let t0 = Instant::now();
    let mut polls = 0;
    while t0.elapsed() < hold {
        let (x, y) = (has_vip(&on.ns, &vip), has_vip(&off.ns, &vip));
        if !x || y {
            bail!(
                "after convergence, poll {polls}: VIP on {}: {x}, on {}: {y}",
                on.ns.name,
                off.ns.name
            );
        }
        polls += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}
