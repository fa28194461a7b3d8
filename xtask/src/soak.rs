//! `cargo xtask soak [--duration 30m | --quick]`: fault injection under load (needs root, wrk
//! and nginx; not part of CI).
//!
//! A lab director (its own namespaces and pin directory) runs our keepalived (a NAT virtual
//! server of three nginx reals behind MISC_CHECKs the soak can fail, a VRRP instance holding the
//! VIP), `xlvs timers` and a sync master (`ipvsadm --start-daemon`, sending to the client's
//! address), with a small connection table (`--max-conns`, full within seconds under the
//! new-connection load: the LRU evicts). wrk drives the VIP from the client, keep-alive and one
//! connection per request, in windows; during each window faults are injected at random moments
//! (seeded): kill -9 of keepalived, of the timers or of the sync daemon (restarted a second
//! later, as a service manager would), SIGHUP storms, interface flaps, reals whose checker fails
//! for a few seconds then recovers. Every window reports the requests and failures (wrk's socket
//! errors and non-2xx answers), each daemon's RSS and the table's fill (`xlvs status --json`);
//! the end, totals and a verdict (no failed request, no RSS growth within a process' life).
//! Everything is removed at the end, also on Ctrl-C; processes are stopped by PID.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::Pid;
use xlvs_tests::keepalived::{Keepalived, Workdir, wait_listing};
use xlvs_tests::lab::{Lab, VIP, binary};
use xlvs_tests::netns::is_root;
use xlvs_tests::rng::Rng;

use crate::nginx::Nginx;

/// Set by SIGINT/SIGTERM: the soak stops at the next check and cleans up.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: i32) {
    STOP.store(true, Ordering::Relaxed);
}

fn stopped() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// What the soak runs.
pub struct Options {
    pub duration: Duration,
    /// One wrk run and one report line per window.
    pub window: Duration,
    pub seed: u64,
    pub max_conns: u32,
}

const REALS: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Daemon {
    Keepalived,
    Timers,
    Sync,
}

impl Daemon {
    const ALL: [Daemon; 3] = [Daemon::Keepalived, Daemon::Timers, Daemon::Sync];

    fn name(self) -> &'static str {
        match self {
            Daemon::Keepalived => "keepalived",
            Daemon::Timers => "xlvs timers",
            Daemon::Sync => "sync daemon",
        }
    }
}

#[derive(Clone, Debug)]
enum Fault {
    Kill(Daemon),
    Restart(Daemon),
    HupStorm,
    LinkDown(String),
    LinkUp(String),
    RealDown(usize),
    RealUp(usize),
}

impl Fault {
    fn describe(&self) -> String {
        match self {
            Fault::Kill(d) => format!("kill -9 {}", d.name()),
            Fault::Restart(d) => format!("restart {}", d.name()),
            Fault::HupStorm => "20 x SIGHUP keepalived".into(),
            Fault::LinkDown(l) => format!("{l} down"),
            Fault::LinkUp(l) => format!("{l} up"),
            Fault::RealDown(i) => format!("real {i} check fails"),
            Fault::RealUp(i) => format!("real {i} check passes"),
        }
    }
}

/// One life of a daemon: its pid and RSS (kB) samples.
struct Life {
    pid: u32,
    rss: Vec<u64>,
}

/// The daemons on the director, restarted after each kill, with their RSS over time.
struct Daemons<'a> {
    lab: &'a Lab,
    dir: &'a Workdir,
    conf: PathBuf,
    keepalived: Option<Keepalived>,
    timers: Option<Child>,
    lives: BTreeMap<Daemon, Vec<Life>>,
}

impl<'a> Daemons<'a> {
    fn start_all(lab: &'a Lab, dir: &'a Workdir, conf: PathBuf) -> Result<Daemons<'a>> {
        let mut d = Daemons {
            lab,
            dir,
            conf,
            keepalived: None,
            timers: None,
            lives: BTreeMap::new(),
        };
        for daemon in Daemon::ALL {
            d.start(daemon)?;
        }
        Ok(d)
    }

    fn pid(&self, daemon: Daemon) -> Option<u32> {
        match daemon {
            Daemon::Keepalived => self.keepalived.as_ref()?.pid().map(|p| p as u32),
            Daemon::Timers => self.timers.as_ref().map(Child::id),
            Daemon::Sync => syncd::control::list(&self.lab.opts.pin_dir)
                .first()
                .map(|r| r.pid),
        }
    }

    fn start(&mut self, daemon: Daemon) -> Result<()> {
        match daemon {
            Daemon::Keepalived => {
                self.keepalived = Some(Keepalived::start(self.lab, self.dir, &self.conf)?);
            }
            Daemon::Timers => {
                let bin = binary("xlvs")?;
                let pin = self.lab.opts.pin_dir.to_str().context("pin dir")?;
                let child = self
                    .lab
                    .director
                    .command(bin.to_str().context("path")?)
                    .args(["--pin-dir", pin, "timers", "--wait"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .context("starting xlvs timers")?;
                self.timers = Some(child);
            }
            Daemon::Sync => {
                let bin = binary("ipvsadm")?;
                let out = self
                    .lab
                    .director
                    .command(bin.to_str().context("path")?)
                    .args(["--start-daemon", "master", "--mcast-interface", "l0"])
                    .args(["--mcast-group", "198.18.1.2", "--syncid", "9"])
                    .env("XLVS_PIN_DIR", &self.lab.opts.pin_dir)
                    .output()
                    .context("ipvsadm --start-daemon")?;
                if !out.status.success() {
                    bail!(
                        "ipvsadm --start-daemon: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
        }
        // A new life (its pid may take a moment to be recorded).
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.pid(daemon).is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let pid = self.pid(daemon).context("no pid after start")?;
        self.lives.entry(daemon).or_default().push(Life {
            pid,
            rss: Vec::new(),
        });
        Ok(())
    }

    fn kill9(&mut self, daemon: Daemon) -> Result<()> {
        match daemon {
            Daemon::Keepalived => {
                if let Some(mut k) = self.keepalived.take() {
                    k.kill9()?;
                }
            }
            Daemon::Timers => {
                if let Some(mut c) = self.timers.take() {
                    c.kill()?;
                    c.wait()?;
                }
            }
            Daemon::Sync => {
                if let Some(pid) = self.pid(Daemon::Sync) {
                    signal::kill(Pid::from_raw(pid as i32), Signal::SIGKILL)?;
                    let deadline = Instant::now() + Duration::from_secs(5);
                    while self.pid(Daemon::Sync).is_some() && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
        }
        Ok(())
    }

    /// Records every running daemon's RSS.
    fn sample(&mut self) {
        for daemon in Daemon::ALL {
            let Some(pid) = self.pid(daemon) else {
                continue;
            };
            if let (Some(life), Some(kb)) = (
                self.lives.get_mut(&daemon).and_then(|l| l.last_mut()),
                rss_kb(pid),
            ) && life.pid == pid
            {
                life.rss.push(kb);
            }
        }
    }

    fn rss_now(&self, daemon: Daemon) -> String {
        let lives = self.lives.get(&daemon).map(Vec::as_slice).unwrap_or(&[]);
        match lives.last().and_then(|l| l.rss.last()) {
            Some(kb) => format!("{:.1}M/{}", *kb as f64 / 1024.0, lives.len()),
            None => "-".into(),
        }
    }
}

impl Drop for Daemons<'_> {
    fn drop(&mut self) {
        for daemon in Daemon::ALL {
            let _ = self.kill9(daemon);
        }
        let _ = std::fs::remove_dir_all(syncd::state::dir(&self.lab.opts.pin_dir));
    }
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// One wrk load of a window, killed by PID when dropped.
struct Wrk {
    child: Option<Child>,
}

/// What wrk said about a window.
#[derive(Default, Clone, Copy)]
struct Load {
    requests: u64,
    failed: u64,
}

impl Wrk {
    fn start(lab: &Lab, window: Duration, close: bool) -> Result<Wrk> {
        let secs = window.as_secs().max(1).to_string();
        let mut cmd = lab.client.command("wrk");
        cmd.args(["-t1", "-c", if close { "8" } else { "16" }, "-d"])
            .arg(format!("{secs}s"))
            .args(["--timeout", "5s"]);
        if close {
            cmd.args(["-H", "Connection: close"]);
        }
        let child = cmd
            .arg(format!("http://{VIP}/"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting wrk")?;
        Ok(Wrk { child: Some(child) })
    }

    fn finish(mut self) -> Result<Load> {
        let out = self.child.take().context("wrk ran")?.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        parse_wrk(&text).with_context(|| format!("wrk output: {text}"))
    }
}

impl Drop for Wrk {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Requests and failures (socket errors of every kind, non-2xx/3xx answers) in wrk's report.
fn parse_wrk(text: &str) -> Option<Load> {
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let mut failed = 0;
    for line in text.lines() {
        if let Some(rest) = line.trim().strip_prefix("Socket errors:") {
            failed += rest
                .split(',')
                .filter_map(|kv| kv.split_whitespace().last()?.parse::<u64>().ok())
                .sum::<u64>();
        }
        if let Some(n) = line.trim().strip_prefix("Non-2xx or 3xx responses:") {
            failed += n.trim().parse::<u64>().unwrap_or(0);
        }
    }
    Some(Load { requests, failed })
}

/// The connection table as `xlvs status --json` reports it: (entries, capacity, evicted).
fn table_fill(lab: &Lab) -> Result<(u64, u64, u64)> {
    let out = lab.xlvs(&["status", "--json"])?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("status --json")?;
    let t = &v["conn_table"];
    let n = |k: &str| t[k].as_u64().unwrap_or(0);
    Ok((n("entries"), n("capacity_entries"), n("evicted")))
}

fn keepalived_conf(dir: &Workdir) -> String {
    let mut s = String::from(
        "global_defs {\n    router_id soak\n    enable_script_security\n}\n\
         vrrp_instance VI_1 {\n    state MASTER\n    interface l0\n    virtual_router_id 51\n\
         \x20   priority 100\n    advert_int 1\n    virtual_ipaddress {\n        198.18.100.1/32 dev l0\n\
         \x20   }\n}\n",
    );
    s.push_str(&format!(
        "virtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n"
    ));
    for i in 0..REALS {
        let flag = real_flag(dir, i);
        s.push_str(&format!(
            "    real_server 198.18.{}.2 80 {{\n        weight 1\n        MISC_CHECK {{\n\
             \x20           misc_path \"/usr/bin/test ! -e {}\"\n            misc_timeout 2\n\
             \x20       }}\n    }}\n",
            2 + i,
            flag.display()
        ));
    }
    s.push_str("}\n");
    s
}

fn real_flag(dir: &Workdir, i: usize) -> PathBuf {
    dir.path(&format!("real{i}.down"))
}

/// A moment within `d`.
fn within(rng: &mut Rng, d: Duration) -> Duration {
    Duration::from_millis(rng.below(d.as_millis() as usize) as u64)
}

/// The faults of one window, at random moments (each kind once every few windows; in short runs
/// window `n` also gets kind `n`, so every kind happens).
fn plan(rng: &mut Rng, n: usize, window: Duration, reals_up: &[bool]) -> Vec<(Duration, Fault)> {
    let mut out = Vec::new();
    for kind in 0..6 {
        if n % 6 != kind && !rng.one_in(4) {
            continue;
        }
        let at = within(rng, window.mul_f64(0.8));
        match kind {
            0..=2 => {
                let d = Daemon::ALL[kind];
                out.push((at, Fault::Kill(d)));
                out.push((at + Duration::from_secs(1), Fault::Restart(d)));
            }
            3 => out.push((at, Fault::HupStorm)),
            4 => {
                let link = format!("l{}", rng.below(REALS + 1));
                out.push((at, Fault::LinkDown(link.clone())));
                out.push((at + Duration::from_secs(1), Fault::LinkUp(link)));
            }
            _ => {
                // Never all reals down at once: the service must stay up.
                let up: Vec<usize> = (0..REALS).filter(|&i| reals_up[i]).collect();
                if up.len() >= 2 {
                    let i = *rng.pick(&up);
                    let back = Duration::from_millis(2000 + rng.below(4000) as u64);
                    out.push((at, Fault::RealDown(i)));
                    out.push((at + back, Fault::RealUp(i)));
                }
            }
        }
    }
    out
}

pub fn run(o: &Options) -> Result<()> {
    if !is_root() {
        bail!("the soak needs root (network namespaces, XDP)");
    }
    for tool in ["wrk", "nginx"] {
        if Command::new("which").arg(tool).output()?.stdout.is_empty() {
            bail!("{tool} is not installed (scripts/setup.sh installs it)");
        }
    }
    let handler = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { signal::sigaction(sig, &handler) }?;
    }
    let lab = Lab::unattached_with(REALS, o.max_conns)?;
    for ns in std::iter::once(&lab.client)
        .chain(std::iter::once(&lab.director))
        .chain(&lab.reals)
    {
        for (k, v) in [
            ("net.ipv4.ip_local_port_range", "10000 65000"),
            ("net.ipv4.tcp_tw_reuse", "1"),
            ("net.core.somaxconn", "4096"),
        ] {
            ns.sysctl(k, v)?;
        }
    }
    let max = o.max_conns.to_string();
    let mut attach = vec!["attach", "--no-timers", "--max-conns", max.as_str()];
    let links = lab.director_links();
    attach.extend(links.iter().map(String::as_str));
    lab.xlvs(&attach)?;
    let _nginx: Vec<Nginx> = (0..REALS)
        .map(|i| Nginx::start(&lab.reals[i], lab.real_ip(i), &format!("r{i}")))
        .collect::<Result<_>>()?;
    let dir = Workdir::new(&lab.prefix)?;
    let conf = dir.path("keepalived.conf");
    std::fs::write(&conf, keepalived_conf(&dir))?;
    let mut daemons = Daemons::start_all(&lab, &dir, conf)?;
    wait_listing(&lab, Duration::from_secs(20), |t| {
        (0..REALS).all(|i| t.contains(&format!("-> 198.18.{}.2:80", 2 + i)))
    })
    .context("keepalived did not program the reals")?;
    println!(
        "soak: {:?}, windows of {:?}, seed {}, table of {} connections, director {} (pins {})",
        o.duration,
        o.window,
        o.seed,
        o.max_conns,
        lab.director.name,
        lab.opts.pin_dir.display()
    );
    println!(
        "{:>6} {:>17} {:>7} {:>11} {:>11} {:>11} {:>15} {:>9}  faults",
        "time",
        "requests ka/new",
        "failed",
        "keepalived",
        "timers",
        "syncd",
        "table used/cap",
        "evicted"
    );
    let mut rng = Rng::new(o.seed);
    let mut reals_up = [true; REALS];
    let mut pending: Vec<(Instant, Fault)> = Vec::new();
    let (mut total, mut counts) = (Load::default(), BTreeMap::<String, u32>::new());
    let mut max_used = 0;
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < o.duration && !stopped() {
        let t0 = Instant::now();
        let loads = [
            Wrk::start(&lab, o.window, false)?,
            Wrk::start(&lab, o.window, true)?,
        ];
        for (at, f) in plan(&mut rng, n, o.window, &reals_up) {
            pending.push((t0 + at, f));
        }
        pending.sort_by_key(|(t, _)| *t);
        let mut done = Vec::new();
        while t0.elapsed() < o.window && !stopped() {
            while pending.first().is_some_and(|(t, _)| *t <= Instant::now()) {
                let (_, f) = pending.remove(0);
                apply(&lab, &dir, &mut daemons, &mut reals_up, &f).with_context(|| f.describe())?;
                *counts.entry(kind_of(&f)).or_default() += 1;
                done.push(f.describe());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if stopped() {
            break;
        }
        let [ka, new] = loads;
        let (ka, new) = (ka.finish()?, new.finish()?);
        daemons.sample();
        let (used, cap, evicted) = table_fill(&lab)?;
        max_used = max_used.max(used);
        total.requests += ka.requests + new.requests;
        total.failed += ka.failed + new.failed;
        let secs = start.elapsed().as_secs();
        println!(
            "{:>3}:{:02} {:>8}/{:<8} {:>7} {:>11} {:>11} {:>11} {:>15} {:>9}  {}",
            secs / 60,
            secs % 60,
            ka.requests,
            new.requests,
            ka.failed + new.failed,
            daemons.rss_now(Daemon::Keepalived),
            daemons.rss_now(Daemon::Timers),
            daemons.rss_now(Daemon::Sync),
            format!("{used}/{cap}"),
            evicted,
            done.join(", ")
        );
        n += 1;
    }
    if stopped() {
        println!("soak: interrupted; cleaning up");
        return Ok(());
    }
    report(&daemons, total, &counts, max_used, o)
}

fn kind_of(f: &Fault) -> String {
    match f {
        Fault::Kill(d) => format!("kill -9 {}", d.name()),
        Fault::Restart(d) => format!("restart {}", d.name()),
        Fault::HupStorm => "SIGHUP storm".into(),
        Fault::LinkDown(_) | Fault::LinkUp(_) => "link flap (down+up)".into(),
        Fault::RealDown(_) | Fault::RealUp(_) => "real check fail+recover".into(),
    }
}

fn apply(
    lab: &Lab,
    dir: &Workdir,
    daemons: &mut Daemons,
    reals_up: &mut [bool],
    f: &Fault,
) -> Result<()> {
    match f {
        Fault::Kill(d) => daemons.kill9(*d),
        Fault::Restart(d) => daemons.start(*d),
        Fault::HupStorm => {
            for _ in 0..20 {
                if let Some(k) = &daemons.keepalived {
                    k.signal(libc::SIGHUP)?;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(())
        }
        Fault::LinkDown(l) => lab.director.ip(&["link", "set", l, "down"]).map(|_| ()),
        Fault::LinkUp(l) => lab.director.ip(&["link", "set", l, "up"]).map(|_| ()),
        Fault::RealDown(i) => {
            reals_up[*i] = false;
            std::fs::write(real_flag(dir, *i), b"").map_err(Into::into)
        }
        Fault::RealUp(i) => {
            reals_up[*i] = true;
            remove_if_there(&real_flag(dir, *i))
        }
    }
}

fn remove_if_there(p: &Path) -> Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// Totals, each daemon's RSS per life, and the verdict.
fn report(
    daemons: &Daemons,
    total: Load,
    counts: &BTreeMap<String, u32>,
    max_used: u64,
    o: &Options,
) -> Result<()> {
    println!(
        "\nrequests: {} (failed {}); faults: {}",
        total.requests,
        total.failed,
        counts
            .iter()
            .map(|(k, v)| format!("{v} x {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Growth within a life: the last sample against the first one taken a window in.
    let mut grew = Vec::new();
    for (daemon, lives) in &daemons.lives {
        let shown: Vec<String> = lives
            .iter()
            .filter(|l| !l.rss.is_empty())
            .map(|l| {
                let (first, last) = (l.rss[0], *l.rss.last().expect("sampled"));
                if l.rss.len() >= 3 && last > first + first / 10 + 2048 {
                    grew.push(format!("{} {first}->{last} kB", daemon.name()));
                }
                format!("{:.1}->{:.1}", first as f64 / 1024.0, last as f64 / 1024.0)
            })
            .collect();
        println!(
            "RSS MB per life, {} ({} lives): {}",
            daemon.name(),
            lives.len(),
            shown.join(" ")
        );
    }
    println!(
        "connection table: {} connections configured, up to {max_used} entries used",
        o.max_conns
    );
    if total.failed == 0 && grew.is_empty() && total.requests > 0 {
        println!("verdict: PASS (no failed request, no RSS growth within a life)");
        Ok(())
    } else {
        bail!(
            "verdict: FAIL ({} failed requests{}{})",
            total.failed,
            if grew.is_empty() { "" } else { "; RSS grew: " },
            grew.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_reports_are_read_with_their_failures() {
        let ok = "Running 10s test @ http://198.18.100.1/\n  1 threads and 16 connections\n\
                  \x20 151234 requests in 10.00s, 22.93MB read\nRequests/sec:  15123.40\n";
        let l = parse_wrk(ok).unwrap();
        assert_eq!((l.requests, l.failed), (151234, 0));
        let bad = "  812 requests in 10.01s, 122.93KB read\n  \
                   Socket errors: connect 3, read 2, write 0, timeout 7\n  \
                   Non-2xx or 3xx responses: 4\nRequests/sec: 81.1\n";
        let l = parse_wrk(bad).unwrap();
        assert_eq!((l.requests, l.failed), (812, 16));
        assert!(parse_wrk("wrk: connection refused").is_none());
    }

    #[test]
    fn every_fault_kind_happens_within_six_windows() {
        let mut rng = Rng::new(7);
        let mut kinds = std::collections::BTreeSet::new();
        for n in 0..6 {
            for (at, f) in plan(&mut rng, n, Duration::from_secs(10), &[true; REALS]) {
                assert!(at < Duration::from_secs(16));
                kinds.insert(kind_of(&f));
            }
        }
        assert!(kinds.len() >= 6 + 3, "{kinds:?}");
    }
}
