//! Checker overhead: N TCP_CHECKs at delay_loop 1 (default 1000).
//!
//!     cargo run --release -p healthcheck --example bench_checkers [N] [SECONDS]
//!
//! Needs root (network namespaces; only 198.18.60.0/24 is used). Prints, in
//! the same run:
//! * ours: CPU time of the thread running the healthcheck `Supervisor`
//!   (tokio current-thread runtime, as in xlvs-healthcheck --threads 1);
//! * floor: the same connects done by the cheapest possible loop (blocking
//!   connect + close, one thread) — the cost of the work itself;
//! * keepalived 2.2.7 `-C` on the same config, if it can run: it needs
//!   kernel IPVS, and without it its checker process exits at start, which
//!   is then reported instead of a figure.
//!
//! CPU is per-thread (RUSAGE_THREAD), so the real servers' accept thread
//! and the measuring code are not counted.

use healthcheck::Supervisor;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use xlvs_tests::netns::{Netns, is_root, unique_prefix, veth};

const LB: &str = "198.18.60.1";
const RS: &str = "198.18.60.2";
const BASE_PORT: u16 = 20000;

fn thread_cpu() -> Duration {
    // SAFETY: rusage is plain integers: all zeroes is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: plain getrusage on the calling thread.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(us(ru.ru_utime) + us(ru.ru_stime))
}

fn config(n: usize) -> String {
    let mut s = String::from(
        "virtual_server 198.18.60.100 80 {\n delay_loop 1\n lb_algo rr\n lb_kind NAT\n protocol TCP\n",
    );
    for i in 0..n {
        s += &format!(
            " real_server {RS} {} {{ TCP_CHECK {{ connect_timeout 2 }} }}\n",
            BASE_PORT as usize + i
        );
    }
    s + "}\n"
}

struct Result {
    cpu: Duration,
    checks: u64,
    wall: Duration,
}

impl Result {
    fn pct(&self) -> f64 {
        100.0 * self.cpu.as_secs_f64() / self.wall.as_secs_f64()
    }
    fn us_per_check(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.checks.max(1) as f64
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let secs: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10);
    if !is_root() {
        eprintln!("bench_checkers needs root (network namespaces)");
        std::process::exit(1);
    }
    let p = unique_prefix("hcb");
    let lb = Netns::new(&format!("{p}lb")).expect("netns");
    let rs = Netns::new(&format!("{p}rs")).expect("netns");
    veth(&lb, "hc0", &rs, "hc1").expect("veth");
    lb.ip(&["addr", "add", &format!("{LB}/24"), "dev", "hc0"])
        .unwrap();
    rs.ip(&["addr", "add", &format!("{RS}/24"), "dev", "hc1"])
        .unwrap();

    // Real servers: N listening ports, accepted and closed by one thread.
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicU64::new(0));
    let (s2, a2) = (stop.clone(), accepted.clone());
    let _reals = rs.run_in(move || {
        let ls: Vec<TcpListener> = (0..n)
            .map(|i| {
                let l = TcpListener::bind((RS, BASE_PORT + i as u16)).expect("bind");
                l.set_nonblocking(true).unwrap();
                l
            })
            .collect();
        while !s2.load(Ordering::Relaxed) {
            for l in &ls {
                while let Ok((c, _)) = l.accept() {
                    drop(c);
                    a2.fetch_add(1, Ordering::Relaxed);
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    std::thread::sleep(Duration::from_millis(300));

    let dir = std::env::temp_dir().join(format!("hcb-{p}"));
    std::fs::create_dir_all(&dir).unwrap();
    let conf_path = dir.join("keepalived.conf");
    std::fs::write(&conf_path, config(n)).unwrap();
    let parsed =
        keepalived_conf::parse_file(&conf_path, &keepalived_conf::ParseOptions::default()).unwrap();

    // --- ours ---------------------------------------------------------------------------------
    let acc = accepted.clone();
    let ours = lb
        .run_in(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (tx, mut rx) = tokio::sync::mpsc::channel(65536);
                tokio::spawn(async move { while rx.recv().await.is_some() {} });
                let sup = Supervisor::spawn(&parsed.config, tx).await;
                // Past the warmup spread (delay_loop).
                tokio::time::sleep(Duration::from_secs(2)).await;
                let (c0, a0, t0) = (thread_cpu(), acc.load(Ordering::Relaxed), Instant::now());
                tokio::time::sleep(Duration::from_secs(secs)).await;
                let r = Result {
                    cpu: thread_cpu() - c0,
                    checks: acc.load(Ordering::Relaxed) - a0,
                    wall: t0.elapsed(),
                };
                let down = sup.snapshot().await.iter().filter(|r| !r.up).count();
                sup.shutdown().await;
                (r, down)
            })
        })
        .join()
        .unwrap()
        .unwrap();

    // --- floor: the same connects, cheapest loop ------------------------------------------------
    let acc = accepted.clone();
    let floor = lb
        .run_in(move || {
            let (c0, a0, t0) = (thread_cpu(), acc.load(Ordering::Relaxed), Instant::now());
            for s in 0..secs {
                let round = t0 + Duration::from_secs(s);
                for i in 0..n {
                    let a: SocketAddr = format!("{RS}:{}", BASE_PORT as usize + i).parse().unwrap();
                    let _ = TcpStream::connect_timeout(&a, Duration::from_secs(2));
                }
                let next = round + Duration::from_secs(1);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            Result {
                cpu: thread_cpu() - c0,
                checks: acc.load(Ordering::Relaxed) - a0,
                wall: t0.elapsed(),
            }
        })
        .join()
        .unwrap()
        .unwrap();

    // --- keepalived 2.2.7 -C -------------------------------------------------------------------
    let ka = keepalived(&lb, &conf_path, &dir, secs);

    stop.store(true, Ordering::Relaxed);
    let (ours, down) = ours;
    println!("checker overhead: {n} TCP_CHECKs, delay_loop 1, {secs} s measured (per-thread CPU)");
    println!(
        "  xlvs healthcheck : {:6.2} % CPU  {:6} checks  {:6.1} us CPU/check  ({down} reals down)",
        ours.pct(),
        ours.checks,
        ours.us_per_check()
    );
    println!(
        "  floor (blocking) : {:6.2} % CPU  {:6} checks  {:6.1} us CPU/check",
        floor.pct(),
        floor.checks,
        floor.us_per_check()
    );
    println!(
        "  ratio ours/floor : {:.2} (CPU per check)",
        ours.us_per_check() / floor.us_per_check().max(1e-9)
    );
    println!("  keepalived 2.2.7 : {ka}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `keepalived -C` on the same config; returns its CPU figure or why
/// there is none.
fn keepalived(lb: &Netns, conf: &std::path::Path, dir: &std::path::Path, secs: u64) -> String {
    if !std::path::Path::new("/usr/sbin/keepalived").exists() {
        return "not installed".into();
    }
    let pid = dir.join("ka.pid");
    let chk = dir.join("ka-chk.pid");
    let log = dir.join("ka.log");
    let child = lb
        .command("/usr/sbin/keepalived")
        .args(["-n", "-l", "-D", "-C", "-f"])
        .arg(conf)
        .arg("-p")
        .arg(&pid)
        .arg("-c")
        .arg(&chk)
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.join("ka.err")).unwrap())
        .spawn();
    let Ok(mut child) = child else {
        return "could not be started".into();
    };
    std::thread::sleep(Duration::from_secs(3));
    if let Ok(Some(st)) = child.try_wait() {
        let text = std::fs::read_to_string(&log).unwrap_or_default()
            + &std::fs::read_to_string(dir.join("ka.err")).unwrap_or_default();
        let why = text
            .lines()
            .find(|l| l.contains("Can't initialize ipvs"))
            .or_else(|| text.lines().find(|l| l.contains("IPVS")))
            .map(|l| l.split_once(": ").map(|x| x.1).unwrap_or(l))
            .unwrap_or("(no IPVS message)")
            .trim()
            .to_string();
        let code = st
            .code()
            .map(|c| c.to_string())
            .unwrap_or_else(|| "signal".into());
        return format!("no figure: its checker cannot run here (\"{why}\", exit code {code})");
    }
    // It runs: measure its checker process.
    let cpu = |p: &str| -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
        let f: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
        Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
    };
    let chk_pid = std::fs::read_to_string(&chk)
        .unwrap_or_default()
        .trim()
        .to_string();
    // SAFETY: sysconf takes no pointers.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let r = match cpu(&chk_pid) {
        Some(c0) => {
            let t0 = Instant::now();
            std::thread::sleep(Duration::from_secs(secs));
            let c1 = cpu(&chk_pid).unwrap_or(c0);
            format!(
                "{:6.2} % CPU (checker process, /proc ticks)",
                100.0 * (c1 - c0) as f64 / hz / t0.elapsed().as_secs_f64()
            )
        }
        None => "running, but its checker process was not found".into(),
    };
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    r
}
