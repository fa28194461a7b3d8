//! Routing daemons for tests: an FRR router (zebra, bgpd, and bfdd/ospfd when asked) or a bird,
//! each inside a test namespace with its configuration, sockets, pid files and logs in a
//! directory of its own, stopped by pid on drop (also when the test fails). And the router's
//! view: which next hops its kernel FIB has for a prefix.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::Signal;

use crate::netns::{Netns, run};

/// Whether FRR and bird are installed (tests that need them say they are skipped otherwise).
pub fn daemons_installed() -> bool {
    Path::new("/usr/lib/frr/bgpd").exists() && Path::new("/usr/sbin/bird").exists()
}

/// Processes started in the background, recorded by pid file, stopped on drop.
pub struct Processes {
    pid_files: Vec<PathBuf>,
}

impl Processes {
    fn pid(f: &Path) -> Option<i32> {
        std::fs::read_to_string(f).ok()?.trim().parse().ok()
    }

    pub fn pids(&self) -> Vec<i32> {
        self.pid_files.iter().filter_map(|f| Self::pid(f)).collect()
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for f in self.pid_files.iter().rev() {
            if let Some(pid) = Self::pid(f) {
                signal(pid, Signal::SIGTERM);
                let deadline = Instant::now() + Duration::from_secs(2);
                while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
                signal(pid, Signal::SIGKILL);
            }
        }
    }
}

/// A scratch directory removed on drop, owned by `frr` (FRR's daemons drop privileges).
pub struct Dir(pub PathBuf);

impl Dir {
    pub fn new(name: &str) -> Result<Dir> {
        let d = std::env::temp_dir().join(format!("xlvs-rt-{name}"));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d)?;
        if let Ok(Some(u)) = nix::unistd::User::from_name("frr") {
            nix::unistd::chown(&d, Some(u.uid), Some(u.gid))?;
        }
        Ok(Dir(d))
    }
    pub fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An FRR router: zebra and bgpd, plus `extra` daemons (`bfdd`, `ospfd`) with their
/// configurations.
pub struct Frr {
    // Stopped before their directory (with the pid files) goes.
    pub procs: Processes,
    pub dir: Dir,
    pub ns: String,
}

impl Frr {
    /// zebra and bgpd with `bgpd` as its configuration, then the `extra` daemons.
    pub fn start(ns: &Netns, name: &str, bgpd: &str, extra: &[(&str, &str)]) -> Result<Frr> {
        let mut daemons = vec![("zebra", "hostname r\n"), ("bgpd", bgpd)];
        daemons.extend_from_slice(extra);
        Frr::start_daemons(ns, name, &daemons)
    }

    /// Only the daemons listed (name, configuration), started in that order (zebra first:
    /// the others connect to it).
    pub fn start_daemons(ns: &Netns, name: &str, daemons: &[(&str, &str)]) -> Result<Frr> {
        let mut frr = Frr {
            procs: Processes { pid_files: vec![] },
            dir: Dir::new(name)?,
            ns: ns.name.clone(),
        };
        for (d, conf) in daemons {
            frr.add(ns, d, conf)?;
        }
        Ok(frr)
    }

    /// zebra and bfdd only (bfdd wants zebra), `bfdd` as bfdd's configuration: a BFD peer.
    pub fn start_bfdd(ns: &Netns, name: &str, bfdd: &str) -> Result<Frr> {
        Frr::start_daemons(ns, name, &[("zebra", "hostname r\n"), ("bfdd", bfdd)])
    }

    /// The status of bfdd's session with `peer` as `show bfd peers` gives it ("up", "down",
    /// …; empty when there is no such session).
    pub fn bfd_status(&self, peer: &str) -> String {
        let text = self.vtysh(&["show bfd peers json"]).unwrap_or_default();
        text.split('{')
            .find(|p| p.contains(&format!("\"peer\":\"{peer}\"")))
            .and_then(|p| p.split("\"status\":\"").nth(1))
            .and_then(|s| s.split('"').next())
            .unwrap_or("")
            .to_string()
    }

    /// The pid of daemon `d` (`bfdd`, …), from its pid file.
    pub fn pid(&self, d: &str) -> Option<i32> {
        Processes::pid(&self.dir.path(&format!("{d}.pid")))
    }

    /// Starts one more daemon (`ospfd`, `bfdd`) of this router.
    pub fn add(&mut self, ns: &Netns, d: &str, conf: &str) -> Result<()> {
        let dir = &self.dir;
        let procs = &mut self.procs;
        {
            let cf = dir.path(&format!("{d}.conf"));
            std::fs::write(&cf, conf)?;
            if let Ok(Some(u)) = nix::unistd::User::from_name("frr") {
                nix::unistd::chown(&cf, Some(u.uid), Some(u.gid))?;
            }
            let pid = dir.path(&format!("{d}.pid"));
            let mut args = vec![
                format!("/usr/lib/frr/{d}"),
                "-d".into(),
                "-f".into(),
                cf.display().to_string(),
                "-i".into(),
                pid.display().to_string(),
                "-z".into(),
                dir.path("zserv.api").display().to_string(),
                "--vty_socket".into(),
                dir.0.display().to_string(),
                "-P".into(),
                "0".into(),
                "-u".into(),
                "frr".into(),
                "-g".into(),
                "frr".into(),
                "--log".into(),
                format!("file:{}", dir.path(&format!("{d}.log")).display()),
            ];
            if d == "bfdd" {
                args.push("--bfdctl".into());
                args.push(dir.path("bfdd.sock").display().to_string());
            }
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            ns.exec(refs[0], &refs[1..])
                .with_context(|| format!("starting {d}"))?;
            procs.pid_files.push(pid);
            let vty = dir.path(&format!("{d}.vty"));
            wait_until(Duration::from_secs(10), || vty.exists())
                .with_context(|| format!("{d} did not open its vty"))?;
        }
        Ok(())
    }

    /// `vtysh -c CMD` against this router's daemons.
    pub fn vtysh(&self, cmds: &[&str]) -> Result<String> {
        let mut args = vec![format!("--net=/run/netns/{}", self.ns), "vtysh".into()];
        args.push("--vty_socket".into());
        args.push(self.dir.0.display().to_string());
        for c in cmds {
            args.push("-c".into());
            args.push(c.to_string());
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run("nsenter", &refs)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// A bird in a namespace: `conf` as its configuration, control socket `bird.ctl` in its dir.
pub struct Bird {
    pub procs: Processes,
    pub dir: Dir,
}

impl Bird {
    pub fn start(ns: &Netns, name: &str, conf: &str) -> Result<Bird> {
        let dir = Dir::new(name)?;
        let cf = dir.path("bird.conf");
        std::fs::write(&cf, conf)?;
        let pid = dir.path("bird.pid");
        ns.exec(
            "bird",
            &[
                "-c",
                &cf.display().to_string(),
                "-s",
                &dir.path("bird.ctl").display().to_string(),
                "-P",
                &pid.display().to_string(),
            ],
        )?;
        let b = Bird {
            dir,
            procs: Processes {
                pid_files: vec![pid],
            },
        };
        let ctl = b.socket();
        wait_until(Duration::from_secs(5), || ctl.exists())?;
        Ok(b)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path("bird.ctl")
    }

    pub fn birdc(&self, cmd: &str) -> Result<String> {
        let out = Command::new("birdc")
            .arg("-s")
            .arg(self.socket())
            .args(cmd.split_whitespace())
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// The route bridge's run directory of a test's pin directory: on drop, the daemons the bridge
/// started there (own bird/FRR, which outlive keepalived by design) and a lease holder are
/// stopped by pid, and the directory is removed.
pub struct BridgeRun(pub PathBuf);

impl BridgeRun {
    pub fn new(pin_dir: &Path) -> BridgeRun {
        BridgeRun(dataplane::rundir::dir(pin_dir, "bridge"))
    }

    /// Pids of processes started from this directory that still run.
    pub fn pids(&self) -> Vec<i32> {
        let marker = self.0.display().to_string();
        let mut files = Vec::new();
        for sub in ["", "bird", "frr", "quagga"] {
            if let Ok(rd) = std::fs::read_dir(self.0.join(sub)) {
                files.extend(
                    rd.flatten()
                        .map(|e| e.path())
                        .filter(|p| p.extension().is_some_and(|e| e == "pid")),
                );
            }
        }
        let mut pids: Vec<i32> = files
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok()?.trim().parse().ok())
            .filter(|pid: &i32| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).contains(&marker))
                    .unwrap_or(false)
            })
            .collect();
        if let Ok(text) = std::fs::read_to_string(self.0.join("lease.json"))
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
            && let Some(pid) = v["pid"].as_i64()
        {
            let ours = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains("--xlvs-route-lease"))
                .unwrap_or(false);
            if ours {
                pids.push(pid as i32);
            }
        }
        pids
    }
}

impl Drop for BridgeRun {
    fn drop(&mut self) {
        for pid in self.pids() {
            signal(pid, Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(2);
            while Path::new(&format!("/proc/{pid}/cmdline")).exists()
                && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            signal(pid, Signal::SIGKILL);
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `f` every 5 ms until it holds.
pub fn wait_until(timeout: Duration, f: impl FnMut() -> bool) -> Result<Duration> {
    crate::poll::wait_every("condition", timeout, Duration::from_millis(5), f)
}

/// The next hops (gateways) of `prefix` in the kernel FIB of `ns`, sorted (empty: no route).
/// FRR installs nexthop groups (`nhid`); they are resolved.
pub fn fib_nexthops(ns: &str, prefix: &str) -> Vec<String> {
    // A netlink dump that races a FIB change ends "interrupted" (non-zero exit, partial
    // JSON); reading that as "no route" would make a waiter see a withdrawal that never
    // happened, so a failed read is repeated.
    let json = |args: &[&str]| -> serde_json::Value {
        let mut a = vec!["-n", ns, "-j"];
        a.extend_from_slice(args);
        for _ in 0..20 {
            let read = Command::new("ip")
                .args(&a)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| serde_json::from_slice(&o.stdout).ok());
            if let Some(v) = read {
                return v;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        serde_json::Value::Null
    };
    let routes = json(&["route", "show", prefix]);
    let Some(r) = routes.as_array().and_then(|a| a.first()) else {
        return vec![];
    };
    let mut out = Vec::new();
    if let Some(g) = r["gateway"].as_str() {
        out.push(g.to_string());
    }
    for nh in r["nexthops"].as_array().into_iter().flatten() {
        if let Some(g) = nh["gateway"].as_str() {
            out.push(g.to_string());
        }
    }
    if let Some(id) = r["nhid"].as_u64() {
        let nh = json(&["nexthop", "show", "id", &id.to_string()]);
        let nh = &nh[0];
        if let Some(g) = nh["gateway"].as_str() {
            out.push(g.to_string());
        }
        for member in nh["group"].as_array().into_iter().flatten() {
            if let Some(mid) = member["id"].as_u64() {
                let m = json(&["nexthop", "show", "id", &mid.to_string()]);
                if let Some(g) = m[0]["gateway"].as_str() {
                    out.push(g.to_string());
                }
            }
        }
    }
    out.sort();
    out.dedup();
    if out.is_empty() {
        // A route without a gateway (blackhole, device route) still counts as present.
        out.push(r["dev"].as_str().unwrap_or("?").to_string());
    }
    out
}

/// Sends `sig` to `pid` (a process this test started), ignoring "no such process".
fn signal(pid: i32, sig: Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
}
