//! The route bridge: time from an event to the VIP leaving (and returning to) a real FRR 8.4
//! router's kernel FIB, beside a hand-driven change of the same daemon measured in the same run
//! (`birdc disable/enable` of a static protocol; `vtysh … [no] network`, vtysh's start
//! included, as an operator types it). Events: a quorum loss / regain and a VRRP FAULT / MASTER
//! transition (timed from the keepalived log line that reports them), keepalived SIGKILL /
//! restart (from the signal / the exec), and a director that dies silently (link down; the
//! router's BFD at 50 ms x 3). The router's FIB is watched with `ip monitor route`.

use std::io::{BufRead, BufReader, Read};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use xlvs_tests::cluster::{Cluster, real_addr};
use xlvs_tests::keepalived::Workdir;
use xlvs_tests::netns::{Netns, is_root};
use xlvs_tests::routing::{Bird, BridgeRun, Frr, daemons_installed, wait_until};

const VIP: &str = "198.18.99.1";
const VRRP_VIP: &str = "198.18.99.2";
const HAND_VIP: &str = "198.18.99.9";
const HAND: Ipv4Addr = Ipv4Addr::new(198, 18, 30, 31);

/// A process whose output lines are timestamped on arrival; killed on drop.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
}

impl Proc {
    fn spawn(mut cmd: Command, stderr: bool) -> Result<Proc> {
        if stderr {
            cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        } else {
            cmd.stdout(Stdio::piped()).stderr(Stdio::null());
        }
        let mut child = cmd.stdin(Stdio::null()).spawn()?;
        let out: Box<dyn Read + Send> = if stderr {
            Box::new(child.stderr.take().context("stderr")?)
        } else {
            Box::new(child.stdout.take().context("stdout")?)
        };
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), l)).is_err() {
                    return;
                }
            }
        });
        Ok(Proc { child, lines })
    }

    fn drain(&self) {
        while self.lines.try_recv().is_ok() {}
    }

    /// When a line satisfying `pred` arrived (waiting at most `timeout`).
    fn wait(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((t, l)) if pred(&l) => return Ok(t),
                Ok(_) => {}
                Err(_) => bail!("no such line within {timeout:?}"),
            }
        }
    }

    fn kill(&mut self, sig: i32) {
        // SAFETY: kill(2) on our child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ip monitor route` in the router's namespace: when `vip` appears or goes.
struct Fib(Proc);

impl Fib {
    fn watch(router: &Netns) -> Result<Fib> {
        let mut cmd = Command::new("ip");
        cmd.args(["-n", &router.name, "monitor", "route"]);
        let p = Proc::spawn(cmd, false)?;
        std::thread::sleep(Duration::from_millis(200));
        Ok(Fib(p))
    }

    fn change(&self, vip: &str, present: bool) -> Result<Instant> {
        let add = format!("{vip} ");
        let del = format!("Deleted {vip} ");
        self.0
            .wait(Duration::from_secs(20), |l| {
                if present {
                    l.starts_with(&add)
                } else {
                    l.starts_with(&del)
                }
            })
            .with_context(|| {
                format!(
                    "{vip} {} the router's FIB",
                    if present {
                        "never reached"
                    } else {
                        "never left"
                    }
                )
            })
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Case {
    name: String,
    withdraw: Vec<f64>,
    announce: Vec<f64>,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[s.len() / 2]
}

fn cell(v: &[f64]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    let min = v.iter().copied().fold(f64::MAX, f64::min);
    let max = v.iter().copied().fold(0.0, f64::max);
    format!("{:.0} ({:.0}-{:.0})", median(v), min, max)
}

fn keepalived_conf(dir: &Workdir, daemon: &str) -> String {
    format!(
        "global_defs {{\n    router_id d0\n    vrrp_version 3\n}}\nvrrp_track_file vf {{\n    file {fault}\n    weight 0\n}}\nvrrp_instance VI_1 {{\n    state BACKUP\n    interface e0\n    virtual_router_id 51\n    priority 100\n    advert_int 0.1\n    track_file {{\n        vf\n    }}\n    virtual_ipaddress {{\n        {VRRP_VIP}/32 dev e0\n    }}\n}}\nvirtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_algo mh\n    lb_kind DR\n    protocol TCP\n    real_server {real} 80 {{\n        weight 1\n        MISC_CHECK {{\n            misc_path \"/bin/sh -c '! test -e {fail}'\"\n            misc_timeout 1\n            retry 0\n        }}\n    }}\n}}\nvirtual_server {VRRP_VIP} 80 {{\n    lb_algo mh\n    lb_kind DR\n    protocol TCP\n    real_server {real} 80 {{\n        weight 1\n    }}\n}}\nroute_bridge {{\n    daemon {daemon}\n    local_as 65101\n    router_id 198.18.30.11\n    neighbor 198.18.30.1 remote_as 65000\n    hold_time 3\n    keepalive 1\n    connect_retry 1\n    bfd on\n    bfd_interval 50\n    bfd_multiplier 3\n    withdraw_delay 0\n}}\n",
        fault = dir.path("vrrp_fault").display(),
        fail = dir.path("fail").display(),
        real = real_addr(0)
    )
}

fn start_keepalived(c: &Cluster, dir: &Workdir, conf: &Path) -> Result<Proc> {
    let d = &c.directors[0];
    let bin = xlvs_tests::lab::binary("keepalived")?;
    for f in ["k.pid", "c.pid", "v.pid"] {
        let _ = std::fs::remove_file(dir.path(f));
    }
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net=/run/netns/{}", d.ns.name))
        .arg(bin)
        .args(["-n", "-l", "-G", "-f"])
        .arg(conf)
        .arg("-p")
        .arg(dir.path("k.pid"))
        .arg("-c")
        .arg(dir.path("c.pid"))
        .arg("-r")
        .arg(dir.path("v.pid"))
        .env("XLVS_PIN_DIR", &d.opts.pin_dir)
        .env("TMPDIR", &dir.0);
    Proc::spawn(cmd, true)
}

fn router_conf() -> (String, String) {
    let bgp = format!(
        "hostname r\nrouter bgp 65000\n bgp router-id 198.18.30.1\n no bgp ebgp-requires-policy\n neighbor 198.18.30.11 remote-as 65101\n neighbor 198.18.30.11 timers 1 3\n neighbor 198.18.30.11 timers connect 1\n neighbor 198.18.30.11 bfd profile fast\n neighbor {HAND} remote-as 65201\n neighbor {HAND} timers 1 3\n neighbor {HAND} timers connect 1\n"
    );
    let bfd = "hostname r\nbfd\n profile fast\n  transmit-interval 50\n  receive-interval 50\n  detect-multiplier 3\n exit\nexit\n";
    (bgp, bfd.to_string())
}

/// Runs `rounds` of (withdraw, announce), each returning the instant its event happened; the
/// times until the FIB followed.
fn rounds(
    fib: &Fib,
    vip: &str,
    n: usize,
    mut withdraw: impl FnMut() -> Result<Instant>,
    mut announce: impl FnMut() -> Result<Instant>,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let (mut w, mut a) = (Vec::new(), Vec::new());
    for _ in 0..n {
        std::thread::sleep(Duration::from_millis(600));
        fib.0.drain();
        let t = withdraw()?;
        w.push(ms(fib.change(vip, false)?.saturating_duration_since(t)));
        std::thread::sleep(Duration::from_millis(600));
        fib.0.drain();
        let t = announce()?;
        a.push(ms(fib.change(vip, true)?.saturating_duration_since(t)));
    }
    Ok((w, a))
}

fn write(p: PathBuf, s: &str) -> Result<()> {
    std::fs::write(p, s)?;
    Ok(())
}

pub fn run(n: usize) -> Result<()> {
    if !is_root() || !daemons_installed() {
        bail!("the route bridge benchmark needs root, FRR and bird");
    }
    let c = Cluster::new(1, 1, &[])?;
    let _run = BridgeRun::new(&c.directors[0].opts.pin_dir);
    let hand = c.add_host("h", HAND)?;
    let (bgp, bfd) = router_conf();
    let _router = Frr::start(
        &c.router,
        &format!("{}rt", c.prefix),
        &bgp,
        &[("bfdd", &bfd)],
    )?;
    let fib = Fib::watch(&c.router)?;
    let dir = Workdir::new(&format!("{}bench", c.prefix))?;
    let conf = dir.path("keepalived.conf");
    write(dir.path("vrrp_fault"), "0\n")?;
    let mut cases = Vec::new();

    // --- bird ------------------------------------------------------------------------------------
    let hand_bird = Bird::start(
        &hand,
        &format!("{}hb", c.prefix),
        &format!(
            "router id {HAND};\nprotocol device {{ }}\nprotocol static hand {{ ipv4; route {HAND_VIP}/32 blackhole; }}\nprotocol bgp r {{\n local as 65201;\n neighbor 198.18.30.1 as 65000;\n hold time 3; keepalive time 1; connect retry time 1;\n ipv4 {{ import none; export where proto = \"hand\"; }};\n}}\n"
        ),
    )?;
    fib.change(HAND_VIP, true)?;
    let (w, a) = rounds(
        &fib,
        HAND_VIP,
        n,
        || {
            let t = Instant::now();
            hand_bird.birdc("disable hand")?;
            Ok(t)
        },
        || {
            let t = Instant::now();
            hand_bird.birdc("enable hand")?;
            Ok(t)
        },
    )?;
    cases.push(Case {
        name: "hand-driven: birdc disable/enable a static protocol".into(),
        withdraw: w,
        announce: a,
    });
    drop(hand_bird);

    write(conf.clone(), &keepalived_conf(&dir, "bird"))?;
    let mut ka = start_keepalived(&c, &dir, &conf)?;
    fib.change(VIP, true)?;
    wait_until(Duration::from_secs(10), || {
        xlvs_tests::routing::fib_nexthops(&c.router.name, VRRP_VIP).len() == 1
    })?;
    bridge_cases(&mut cases, "bird", n, &c, &dir, &conf, &fib, &mut ka)?;
    // A director that dies silently: only the router's BFD can tell.
    let d = &c.directors[0];
    let (w, a) = rounds(
        &fib,
        VIP,
        n,
        || {
            let t = Instant::now();
            d.ns.ip(&["link", "set", "e0", "down"])?;
            Ok(t)
        },
        || {
            let t = Instant::now();
            d.ns.ip(&["link", "set", "e0", "up"])?;
            Ok(t)
        },
    )?;
    cases.push(Case {
        name: "bridge+bird: director link down/up (BFD 50 ms x 3)".into(),
        withdraw: w,
        announce: a,
    });
    ka.kill(libc::SIGTERM);
    fib.change(VIP, false).ok();

    // --- FRR -------------------------------------------------------------------------------------
    hand.ip(&["route", "add", "blackhole", &format!("{HAND_VIP}/32")])?;
    let hand_frr = Frr::start(
        &hand,
        &format!("{}hf", c.prefix),
        &format!(
            "hostname h\nrouter bgp 65201\n bgp router-id {HAND}\n no bgp ebgp-requires-policy\n neighbor 198.18.30.1 remote-as 65000\n neighbor 198.18.30.1 timers 1 3\n neighbor 198.18.30.1 timers connect 1\n address-family ipv4 unicast\n  network {HAND_VIP}/32\n exit-address-family\n"
        ),
        &[],
    )?;
    fib.change(HAND_VIP, true)?;
    let vtysh = |no: &str| -> Result<Instant> {
        let t = Instant::now();
        hand_frr.vtysh(&[
            "configure terminal",
            "router bgp 65201",
            "address-family ipv4 unicast",
            &format!("{no}network {HAND_VIP}/32"),
        ])?;
        Ok(t)
    };
    let (w, a) = rounds(&fib, HAND_VIP, n, || vtysh("no "), || vtysh(""))?;
    cases.push(Case {
        name: "hand-driven: vtysh [no] network (FRR, vtysh's start incl.)".into(),
        withdraw: w,
        announce: a,
    });
    drop(hand_frr);

    write(conf.clone(), &keepalived_conf(&dir, "frr"))?;
    let mut ka = start_keepalived(&c, &dir, &conf)?;
    fib.change(VIP, true)?;
    bridge_cases(&mut cases, "frr", n, &c, &dir, &conf, &fib, &mut ka)?;
    ka.kill(libc::SIGTERM);

    println!(
        "route bridge: time until a FRR 8.4 router's FIB follows (ms: median (min-max) of {n} rounds)"
    );
    println!(
        "{:<62} {:>18} {:>18} {:>10}",
        "case", "withdraw", "announce", "w x hand"
    );
    let mut hand_bird_ms = 0.0;
    let mut hand_frr_ms = 0.0;
    for case in &cases {
        let m = median(&case.withdraw);
        if case.name.starts_with("hand-driven: birdc") {
            hand_bird_ms = m;
        } else if case.name.starts_with("hand-driven: vtysh") {
            hand_frr_ms = m;
        }
        let base = if case.name.contains("frr") || case.name.contains("FRR") {
            hand_frr_ms
        } else {
            hand_bird_ms
        };
        println!(
            "{:<62} {:>18} {:>18} {:>10.2}",
            case.name,
            cell(&case.withdraw),
            cell(&case.announce),
            m / base
        );
    }
    println!(
        "(quorum and VRRP timed from keepalived's log line of the event; SIGKILL from the signal, its announce from the restart's exec; link down/up from the command)"
    );
    Ok(())
}

/// Quorum loss/regain, VRRP FAULT/MASTER and SIGKILL/restart through the running keepalived.
#[allow(clippy::too_many_arguments)]
fn bridge_cases(
    cases: &mut Vec<Case>,
    daemon: &str,
    n: usize,
    c: &Cluster,
    dir: &Workdir,
    conf: &Path,
    fib: &Fib,
    ka: &mut Proc,
) -> Result<()> {
    let log = |ka: &Proc, what: &str| ka.wait(Duration::from_secs(10), |l| l.contains(what));
    let fail = dir.path("fail");
    let (w, a) = {
        let ka = &*ka;
        rounds(
            fib,
            VIP,
            n,
            || {
                ka.drain();
                write(fail.clone(), "")?;
                log(ka, "Lost quorum")
            },
            || {
                ka.drain();
                std::fs::remove_file(&fail)?;
                log(ka, "Gained quorum")
            },
        )?
    };
    cases.push(Case {
        name: format!("bridge+{daemon}: quorum lost / regained"),
        withdraw: w,
        announce: a,
    });
    let fault = dir.path("vrrp_fault");
    let (w, a) = {
        let ka = &*ka;
        rounds(
            fib,
            VRRP_VIP,
            n,
            || {
                ka.drain();
                write(fault.clone(), "1\n")?;
                log(ka, "Entering FAULT STATE")
            },
            || {
                ka.drain();
                write(fault.clone(), "0\n")?;
                log(ka, "Entering MASTER STATE")
            },
        )?
    };
    cases.push(Case {
        name: format!("bridge+{daemon}: VRRP FAULT / MASTER"),
        withdraw: w,
        announce: a,
    });
    let mut w = Vec::new();
    let mut a = Vec::new();
    for _ in 0..n {
        std::thread::sleep(Duration::from_millis(600));
        fib.0.drain();
        let t = Instant::now();
        ka.kill(libc::SIGKILL);
        w.push(ms(fib.change(VIP, false)?.saturating_duration_since(t)));
        std::thread::sleep(Duration::from_millis(300));
        fib.0.drain();
        let t = Instant::now();
        *ka = start_keepalived(c, dir, conf)?;
        a.push(ms(fib.change(VIP, true)?.saturating_duration_since(t)));
    }
    cases.push(Case {
        name: format!("bridge+{daemon}: keepalived SIGKILL / restart"),
        withdraw: w,
        announce: a,
    });
    Ok(())
}
