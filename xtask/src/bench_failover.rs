//! `cargo xtask bench failover`: VRRP failover time, ours beside Debian's keepalived 2.2.7 in
//! the same run. Each implementation runs an HA pair of its own (master priority 150, backup
//! 100, one VIP, VRRPv3) in two namespaces on one link; the master is stopped gracefully
//! (SIGTERM: it sends priority 0) or crashes (SIGKILL of the process running VRRP: the
//! backup waits for the master-down interval), and the time from the signal to the VIP being
//! on the backup (its address event, seen by `ip monitor` in the backup's namespace) is
//! measured, at 1 s, 100 ms and 10 ms adverts, the two implementations' rounds alternating so
//! the machine's load falls on both alike. Rows print ours beside 2.2.7 with the ratio.
//!
//! The BFD row: the master's instance tracks (`bfd_instance` + `track_bfd`, 20 ms × 3) a
//! session with FRR's bfdd in a third namespace; the bfdd side of that link is taken down, and
//! the time from then to the VIP on the backup is measured (10 ms adverts: the master goes
//! FAULT when the session expires and resigns with priority 0).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use xlvs_tests::keepalived::{Keepalived, REAL_KEEPALIVED, RealKeepalived, Workdir};
use xlvs_tests::lab::Pins;
use xlvs_tests::netns::{Netns, is_root, unique_prefix, veth};
use xlvs_tests::routing::Frr;

const VIP: &str = "198.18.72.100";
const ADVERTS: [(&str, f64); 3] = [("1 s", 1.0), ("100 ms", 0.1), ("10 ms", 0.01)];
const BFDD: &str = "/usr/lib/frr/bfdd";

#[derive(Clone, Copy, PartialEq)]
enum Stop {
    Graceful,
    Crash,
}

#[derive(Clone, Copy, PartialEq)]
enum Impl {
    Ours,
    Theirs,
}

fn config(state: &str, ifname: &str, priority: u8, advert: f64) -> String {
    vrrp_config(state, ifname, priority, advert, "")
}

/// The VRRP instance of a pair's node; `extra` goes inside the instance (a `track_bfd`).
fn vrrp_config(state: &str, ifname: &str, priority: u8, advert: f64, extra: &str) -> String {
    format!(
        "vrrp_instance VI_1 {{\n  state {state}\n  interface {ifname}\n  virtual_router_id 62\n  \
         priority {priority}\n  advert_int {advert}\n  version 3\n  virtual_ipaddress {{\n    \
         {VIP}/32 dev {ifname}\n  }}\n{extra}}}\n"
    )
}

/// One node of a pair: ours (with its own pins) or 2.2.7.
enum Node {
    Ours(Keepalived),
    Theirs(RealKeepalived, PathBuf),
}

impl Node {
    fn start(which: Impl, ns: &Netns, dir: &Workdir, pins: &Pins, conf: &Path) -> Result<Node> {
        // -P: VRRP only; -R: a killed VRRP child stays dead (a crash, not a respawn).
        Node::start_with(which, ns, dir, pins, conf, &["-P", "-R"])
    }

    /// `theirs_args`: 2.2.7's options (which children it runs).
    fn start_with(
        which: Impl,
        ns: &Netns,
        dir: &Workdir,
        pins: &Pins,
        conf: &Path,
        theirs_args: &[&str],
    ) -> Result<Node> {
        Ok(match which {
            Impl::Ours => Node::Ours(Keepalived::start_in(ns, &pins.0, dir, conf)?),
            Impl::Theirs => Node::Theirs(
                RealKeepalived::start(ns, dir, "ka", conf, theirs_args)?,
                dir.path("ka-vrrp.pid"),
            ),
        })
    }

    /// The process that runs VRRP (2.2.7: its VRRP child).
    fn vrrp_pid(&self) -> Result<i32> {
        match self {
            Node::Ours(k) => k.pid().context("not running"),
            Node::Theirs(_, pid_file) => std::fs::read_to_string(pid_file)?
                .trim()
                .parse()
                .context("vrrp pid file"),
        }
    }

    /// Waits (a while) for a gracefully stopped node to be gone, so the next master starts
    /// alone.
    fn finish(&mut self) {
        match self {
            Node::Ours(k) => {
                let _ = k.wait(Duration::from_secs(5));
            }
            Node::Theirs(k, _) => {
                let pid = k.pid();
                // SAFETY: signal 0 only checks that the process we started still exists.
                wait_for(
                    Duration::from_secs(5),
                    || unsafe { libc::kill(pid, 0) } != 0,
                );
            }
        }
    }

    fn stop(&mut self, how: Stop) -> Result<()> {
        match (self, how) {
            (Node::Ours(k), Stop::Graceful) => k.signal(libc::SIGTERM),
            (Node::Theirs(k, _), Stop::Graceful) => kill(k.pid(), libc::SIGTERM),
            (n, Stop::Crash) => kill(n.vrrp_pid()?, libc::SIGKILL),
        }
    }
}

fn kill(pid: i32, sig: i32) -> Result<()> {
    // SAFETY: kill(2) on a process this benchmark started.
    if unsafe { libc::kill(pid, sig) } != 0 {
        bail!("kill {pid}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

fn has_vip(ns: &Netns, ifname: &str) -> bool {
    ns.ip(&["-o", "addr", "show", "dev", ifname])
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("{VIP}/32")))
        .unwrap_or(false)
}

fn wait_for(limit: Duration, f: impl Fn() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// `ip monitor address` in `ns`: the instant the VIP is added there, sent once.
fn watch_vip_added(ns: &Netns) -> Result<(std::process::Child, mpsc::Receiver<Instant>)> {
    let mut child = ns
        .command("ip")
        .args(["-o", "monitor", "address"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let out = child.stdout.take().context("stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.contains(&format!("{VIP}/32")) && !line.starts_with("Deleted") {
                let _ = tx.send(Instant::now());
                return;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(100));
    Ok((child, rx))
}

/// An HA pair of one implementation: the backup runs throughout, a master is started for
/// every failover.
struct Pair {
    // Kept running for all the rounds; fields drop in order: the backup stops first.
    _backup: Node,
    which: Impl,
    advert: f64,
    ca: PathBuf,
    da: Workdir,
    _db: Workdir,
    pa: Pins,
    _pb: Pins,
    a: Netns,
    b: Netns,
}

impl Pair {
    fn new(which: Impl, advert: f64) -> Result<Pair> {
        let p = unique_prefix("bfo");
        let a = Netns::new(&format!("{p}a"))?;
        let b = Netns::new(&format!("{p}b"))?;
        veth(&a, "va", &b, "vb")?;
        a.ip(&["addr", "add", "198.18.72.1/24", "dev", "va"])?;
        b.ip(&["addr", "add", "198.18.72.2/24", "dev", "vb"])?;
        let (da, db) = (
            Workdir::new(&format!("{p}a"))?,
            Workdir::new(&format!("{p}b"))?,
        );
        let (pa, pb) = (
            Pins::scratch(&format!("{p}a"), 4096),
            Pins::scratch(&format!("{p}b"), 4096),
        );
        let (ca, cb) = (da.path("a.conf"), db.path("b.conf"));
        std::fs::write(&ca, config("MASTER", "va", 150, advert))?;
        std::fs::write(&cb, config("BACKUP", "vb", 100, advert))?;
        let backup = Node::start(which, &b, &db, &pb, &cb)?;
        Ok(Pair {
            _backup: backup,
            which,
            advert,
            ca,
            da,
            _db: db,
            pa,
            _pb: pb,
            a,
            b,
        })
    }

    /// One failover: a master started and settled, then stopped `how`; the time from the
    /// signal to the VIP on the backup.
    fn failover(&self, how: Stop) -> Result<Duration> {
        let (a, b, advert) = (&self.a, &self.b, self.advert);
        let mut master = Node::start(self.which, a, &self.da, &self.pa, &self.ca)?;
        // The first start of ours loads the XDP program (seconds on a busy machine).
        if !wait_for(Duration::from_secs(60), || {
            has_vip(a, "va") && !has_vip(b, "vb")
        }) {
            bail!("the master never settled (advert {advert} s)");
        }
        std::thread::sleep(Duration::from_secs_f64((advert * 5.0).max(0.5)));
        let (mut mon, added) = watch_vip_added(b)?;
        let t0 = Instant::now();
        master.stop(how)?;
        let took = added
            .recv_timeout(Duration::from_secs(15))
            .map(|t| t.duration_since(t0));
        let _ = mon.kill();
        let _ = mon.wait();
        if how == Stop::Graceful {
            master.finish();
        }
        drop(master);
        // A crashed 2.2.7 parent (or ours) leaves the VIP on `a`: nobody removed it.
        let _ = a.ip(&["addr", "del", &format!("{VIP}/32"), "dev", "va"]);
        took.map_err(|_| anyhow::anyhow!("the backup never took over (advert {advert} s)"))
    }
}

/// Both implementations at `advert`, their rounds interleaved (ours, 2.2.7, 2.2.7, ours, ...)
/// so that the machine's load weighs on both alike: [implementation][graceful, SIGKILL].
fn measure(advert: f64, rounds: usize) -> Result<[[Vec<Duration>; 2]; 2]> {
    let pairs = [
        Pair::new(Impl::Ours, advert)?,
        Pair::new(Impl::Theirs, advert)?,
    ];
    let mut out: [[Vec<Duration>; 2]; 2] = Default::default();
    for round in 0..rounds * 2 {
        let how = if round % 2 == 0 {
            Stop::Graceful
        } else {
            Stop::Crash
        };
        let order: [usize; 2] = if (round / 2) % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            out[k][usize::from(how == Stop::Crash)].push(pairs[k].failover(how)?);
        }
    }
    Ok(out)
}

/// The BFD row: the master's instance tracks (`track_bfd`, no weight: FAULT when down) a
/// session with an FRR bfdd in a third namespace, on a link of its own; the peer's side of
/// that link is taken down.
const BFD_ADVERT: f64 = 0.01;
const BFD_INTERVAL_MS: u32 = 20;
const BFD_MULTIPLIER: u32 = 3;

/// A [`Pair`] whose master runs throughout, its instance tracking a BFD session with bfdd.
struct BfdPair {
    // Fields drop in order: the master stops before its BFD peer and the pair.
    master: Node,
    frr: Frr,
    pair: Pair,
    c: Netns,
}

impl BfdPair {
    fn new(which: Impl) -> Result<BfdPair> {
        let pair = Pair::new(which, BFD_ADVERT)?;
        let p = unique_prefix("bfc");
        let c = Netns::new(&format!("{p}c"))?;
        veth(&pair.a, "fa", &c, "fc")?;
        pair.a.ip(&["addr", "add", "198.18.73.1/24", "dev", "fa"])?;
        c.ip(&["addr", "add", "198.18.73.2/24", "dev", "fc"])?;
        let (i, m) = (BFD_INTERVAL_MS, BFD_MULTIPLIER);
        let frr = Frr::start_bfdd(
            &c,
            &format!("{p}-bfdd"),
            &format!(
                "hostname r\n!\nbfd\n peer 198.18.73.1 local-address 198.18.73.2\n  \
                 receive-interval {i}\n  transmit-interval {i}\n  detect-multiplier {m}\n !\n!\n"
            ),
        )?;
        let track = "  track_bfd {\n    B1\n  }\n";
        std::fs::write(
            &pair.ca,
            format!(
                "bfd_instance B1 {{\n  neighbor_ip 198.18.73.2\n  source_ip 198.18.73.1\n  \
                 min_rx {i}\n  min_tx {i}\n  multiplier {m}\n}}\n{}",
                vrrp_config("MASTER", "va", 150, BFD_ADVERT, track)
            ),
        )?;
        // 2.2.7 without -P: VRRP and BFD children (BFD runs in a process of its own).
        let master = Node::start_with(which, &pair.a, &pair.da, &pair.pa, &pair.ca, &["-R"])?;
        Ok(BfdPair {
            master,
            frr,
            pair,
            c,
        })
    }

    /// Master with the VIP, backup without, and the session up at bfdd.
    fn settled(&self) -> bool {
        has_vip(&self.pair.a, "va")
            && !has_vip(&self.pair.b, "vb")
            && self.frr.bfd_status("198.18.73.1") == "up"
    }

    /// One failover: the peer's link taken down; the time from then (the `ip` command done)
    /// to the VIP on the backup. The link comes back up afterwards, and the master with it.
    fn failover(&self) -> Result<Duration> {
        // The first start of ours loads the XDP program (seconds on a busy machine); a
        // session coming back up after a cut waits for the slow (1 s) Down-state packets.
        if !wait_for(Duration::from_secs(60), || self.settled()) {
            bail!(
                "the BFD-tracking master never settled (bfdd: {:?})",
                self.frr.bfd_status("198.18.73.1")
            );
        }
        std::thread::sleep(Duration::from_millis(500));
        let (mut mon, added) = watch_vip_added(&self.pair.b)?;
        self.c.ip(&["link", "set", "fc", "down"])?;
        let t0 = Instant::now();
        let took = added
            .recv_timeout(Duration::from_secs(15))
            .map(|t| t.saturating_duration_since(t0));
        let _ = mon.kill();
        let _ = mon.wait();
        self.c.ip(&["link", "set", "fc", "up"])?;
        took.map_err(|_| anyhow::anyhow!("the backup never took over after the BFD peer was cut"))
    }

    fn stop(mut self) {
        if self.master.stop(Stop::Graceful).is_ok() {
            self.master.finish();
        }
    }
}

/// The BFD row, ours and 2.2.7 alternating: [ours, 2.2.7].
fn measure_bfd(rounds: usize) -> Result<[Vec<Duration>; 2]> {
    let pairs = [BfdPair::new(Impl::Ours)?, BfdPair::new(Impl::Theirs)?];
    let mut out: [Vec<Duration>; 2] = Default::default();
    for round in 0..rounds {
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            out[k].push(pairs[k].failover()?);
        }
    }
    for p in pairs {
        p.stop();
    }
    Ok(out)
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn run(rounds: usize) -> Result<()> {
    if !is_root() || !std::path::Path::new(REAL_KEEPALIVED).exists() {
        bail!("the failover benchmark needs root and {REAL_KEEPALIVED}");
    }
    let rounds = rounds.max(1);
    println!(
        "VRRP failover: signal to the master -> VIP on the backup (median of {rounds}, {} at 10 ms; \
         ours and 2.2.7 alternate round by round; ms); BFD cut: the tracked session's \
         peer link down -> VIP on the backup (BFD {BFD_INTERVAL_MS} ms x {BFD_MULTIPLIER}, \
         {} rounds)",
        rounds * 3,
        rounds * 3
    );
    println!(
        "{:<8} {:<9} {:>10} {:>10} {:>7}",
        "advert", "stop", "ours", "2.2.7", "ratio"
    );
    for (label, advert) in ADVERTS {
        // Short rounds get more of them: the 10 ms rows are the noisiest.
        let n = if advert < 0.05 { rounds * 3 } else { rounds };
        let [mut ours, mut theirs] = measure(advert, n)?;
        for (k, how) in ["graceful", "SIGKILL"].iter().enumerate() {
            let (o, t) = (median(&mut ours[k]), median(&mut theirs[k]));
            println!(
                "{label:<8} {how:<9} {:>10.1} {:>10.1} {:>7.2}",
                ms(o),
                ms(t),
                ms(o) / ms(t).max(0.001)
            );
        }
    }
    bfd_row(rounds * 3)
}

/// The BFD row: it needs FRR's bfdd as the peer; without it the row says so.
fn bfd_row(rounds: usize) -> Result<()> {
    let how = "BFD cut";
    if !Path::new(BFDD).exists() {
        println!("10 ms    {how:<9} (no row: the BFD peer needs FRR's {BFDD})");
        return Ok(());
    }
    let [mut ours, mut theirs] = measure_bfd(rounds)?;
    let (o, t) = (median(&mut ours), median(&mut theirs));
    println!(
        "{:<8} {how:<9} {:>10.1} {:>10.1} {:>7.2}",
        "10 ms",
        ms(o),
        ms(t),
        ms(o) / ms(t).max(0.001)
    );
    Ok(())
}
