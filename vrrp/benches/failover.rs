//! Failover time, ours vs keepalived 2.2.7 with the same settings in the same run.
//!
//! For each variant (v2 advert_int 1, v3 0.1, v3 0.01) and each implementation, a pair of
//! nodes of that implementation (master prio 150, backup prio 100) in two namespaces: the
//! master is stopped (SIGTERM: graceful, priority 0 advert) or crashed (SIGKILL, keepalived's
//! VRRP child too), and a thread in the backup's namespace polls its addresses every 0.5 ms until
//! the VIP shows. Prints each run, the medians and ours/keepalived.
//!
//! Run: `cargo bench -p vrrp --bench failover` (root; `VRRP_BENCH_ROUNDS=N` to change rounds,
//! `VRRP_BENCH_ONLY=0.1` for one advert_int, `fault` for the tracked-interface case).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;

/// How often the backup's addresses are read (finer than the 6 ms skew of the 0.01 case).
const POLL: Duration = Duration::from_micros(500);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Sig {
    Term,
    Kill,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

/// A thread in `ns` noting when the last VRRP packet from `src` arrived.
struct AdvertWatch {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<anyhow::Result<Option<Instant>>>,
}

impl AdvertWatch {
    fn start(ns: &xlvs_tests::netns::Netns, src: [u8; 4]) -> AdvertWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let handle = ns.run_in(move || {
            // SAFETY: AF_PACKET socket with a receive timeout, recv into a local buffer.
            unsafe {
                let fd = libc::socket(
                    libc::AF_PACKET,
                    libc::SOCK_RAW,
                    i32::from((libc::ETH_P_IP as u16).to_be()),
                );
                assert!(fd >= 0, "packet socket");
                let tv = libc::timeval {
                    tv_sec: 0,
                    tv_usec: 5_000,
                };
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&tv as *const libc::timeval).cast(),
                    std::mem::size_of::<libc::timeval>() as u32,
                );
                let mut last = None;
                let mut buf = [0u8; 128];
                while !s2.load(Ordering::Relaxed) {
                    let r = libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0);
                    if r >= 34 && buf[23] == 112 && buf[26..30] == src {
                        last = Some(Instant::now());
                    }
                }
                libc::close(fd);
                last
            }
        });
        AdvertWatch { stop, handle }
    }

    fn last(self) -> Option<Instant> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().ok()?.ok()?
    }
}

/// One round: (ms from the signal to the VIP on the backup, ms from the master's last advert
/// heard by the backup to the VIP).
fn round(
    which: Impl,
    pair: &Pair,
    conf_m: &NodeConf,
    sig: Sig,
    n: usize,
) -> anyhow::Result<(f64, f64)> {
    let vip = pair.vip();
    let limit = Duration::from_secs(12);
    let mut master = Node::start(which, pair, &pair.a, &pair.b, conf_m, &format!("m{n}"))?;
    converge_on(pair, &pair.a, &pair.b, limit, Duration::from_millis(300))?;
    let adverts = AdvertWatch::start(&pair.b.ns, [198, 18, pair.net, 1]);
    // Let the backup hear a steady stream of adverts; vary where in the advert interval the
    // kill lands (same sequence for both implementations).
    std::thread::sleep(Duration::from_millis(700 + (n as u64 * 37) % 100));
    let watch = VipWatch::start(&pair.b.ns, &vip, POLL);
    let t0 = Instant::now();
    match sig {
        Sig::Term => master.stop()?,
        Sig::Kill => master.kill()?,
    }
    let seen = watch
        .wait(limit)
        .ok_or_else(|| anyhow::anyhow!("VIP never reached the backup"))?;
    let last = adverts
        .last()
        .ok_or_else(|| anyhow::anyhow!("no advert seen"))?;
    let ms = seen.duration_since(t0).as_secs_f64() * 1000.0;
    let after_last = seen.saturating_duration_since(last).as_secs_f64() * 1000.0;
    // A crashed master leaves its VIP behind (both implementations): clean up by hand.
    let _ = pair
        .a
        .ns
        .ip(&["addr", "del", &format!("{vip}/32"), "dev", "va"]);
    Ok((ms, after_last))
}

/// Fault: the master's tracked interface loses its carrier (`ip link set t1 down` on the
/// other end of a veth in the master's namespace) → VIP on the backup; v3 advert_int 0.1.
fn fault_case(rounds: usize, net: &mut u8) -> String {
    let impls = [Impl::Keepalived, Impl::Ours];
    let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut pairs = Vec::new();
    let mut nodes = Vec::new();
    for which in impls {
        *net += 1;
        let pair = Pair::new(*net, false).expect("namespaces");
        pair.a
            .ns
            .ip(&["link", "add", "t0", "type", "veth", "peer", "name", "t1"])
            .unwrap();
        pair.a.ns.ip(&["link", "set", "t0", "up"]).unwrap();
        pair.a.ns.ip(&["link", "set", "t1", "up"]).unwrap();
        let b = Node::start(
            which,
            &pair,
            &pair.b,
            &pair.a,
            &NodeConf::new(100, 3, "0.1"),
            "b",
        )
        .expect("backup");
        let text = config_text(&pair, &pair.a, &pair.b, &NodeConf::new(150, 3, "0.1")).replace(
            " advert_int 0.1\n",
            " advert_int 0.1\n track_interface {\n  t0\n }\n",
        );
        let m = Node::start_text(which, &pair, &pair.a, &text, "m").expect("master");
        nodes.push((b, m));
        pairs.push(pair);
    }
    for _ in 0..rounds {
        for (k, which) in impls.iter().enumerate() {
            let pair = &pairs[k];
            if converge_on(
                pair,
                &pair.a,
                &pair.b,
                Duration::from_secs(5),
                Duration::from_millis(700),
            )
            .is_err()
            {
                println!("fault {which:?}: master did not converge");
                continue;
            }
            let watch = VipWatch::start(&pair.b.ns, &pair.vip(), POLL);
            let t0 = Instant::now();
            pair.a.ns.ip(&["link", "set", "t1", "down"]).unwrap();
            match watch.wait(Duration::from_secs(5)) {
                Some(t) => {
                    let ms = t.duration_since(t0).as_secs_f64() * 1000.0;
                    println!("fault v3 advert_int 0.1 {which:?}: {ms:.1} ms");
                    times[k].push(ms);
                }
                None => println!("fault {which:?}: VIP never reached the backup"),
            }
            pair.a.ns.ip(&["link", "set", "t1", "up"]).unwrap();
        }
    }
    drop(nodes);
    let k = median(&mut times[0]);
    let o = median(&mut times[1]);
    format!(
        "v3 advert_int  0.1 Fault: from link down: keepalived {k:8.1} ms  ours {o:8.1} ms  ratio {:.2}",
        o / k
    )
}

fn main() {
    if let Some(r) = skip_reason() {
        println!("SKIPPED: {r}");
        return;
    }
    let rounds: usize = std::env::var("VRRP_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    // VRRP_BENCH_ONLY=0.01 runs only the variants with that advert_int.
    let only = std::env::var("VRRP_BENCH_ONLY").ok();
    let variants: Vec<(u8, &str)> = [(2u8, "1"), (3, "0.1"), (3, "0.01")]
        .into_iter()
        .filter(|(_, i)| only.as_deref().is_none_or(|o| o == *i))
        .collect();
    let mut net = 80u8;
    let mut summary = Vec::new();
    for (version, int) in variants {
        for sig in [Sig::Term, Sig::Kill] {
            // Both implementations side by side, rounds interleaved, so a change in the
            // machine's load hits both alike.
            let impls = [Impl::Keepalived, Impl::Ours];
            let mut pairs = Vec::new();
            let mut backups = Vec::new();
            for which in impls {
                net += 1;
                let pair = Pair::new(net, false).expect("namespaces");
                let conf_b = NodeConf::new(100, version, int);
                backups.push(
                    Node::start(which, &pair, &pair.b, &pair.a, &conf_b, "b").expect("backup"),
                );
                pairs.push(pair);
            }
            let conf_m = NodeConf::new(150, version, int);
            let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
            let mut after: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
            for n in 0..rounds {
                for (k, which) in impls.iter().enumerate() {
                    match round(*which, &pairs[k], &conf_m, sig, n) {
                        Ok((ms, a)) => {
                            println!(
                                "v{version} advert_int {int:>4} {sig:?} {which:?}: {ms:.1} ms \
                                 ({a:.1} ms after the last advert)"
                            );
                            times[k].push(ms);
                            after[k].push(a);
                        }
                        Err(e) => {
                            println!("v{version} advert_int {int} {sig:?} {which:?}: failed: {e:#}")
                        }
                    }
                }
            }
            // Unexpected transitions of the backups would distort the figures: show them.
            for (b, which) in backups.iter().zip(impls) {
                let faults = b.log_text().matches("FAULT STATE").count();
                if faults > 0 {
                    println!("note: {which:?} backup entered FAULT {faults} time(s)");
                }
            }
            drop(backups);
            let k = median(&mut times[0]);
            let o = median(&mut times[1]);
            let ka = median(&mut after[0]);
            let oa = median(&mut after[1]);
            summary.push(format!(
                "v{version} advert_int {int:>4} {:>4}: from signal: keepalived {k:8.1} ms  ours {o:8.1} ms  \
                 ratio {:.2} | from last advert: keepalived {ka:8.1} ms  ours {oa:8.1} ms  ratio {:.2}",
                format!("{sig:?}"),
                o / k,
                oa / ka
            ));
        }
    }
    if only.as_deref().is_none_or(|o| o == "fault") {
        summary.push(fault_case(rounds, &mut net));
    }
    println!(
        "\nfailover: master stopped (Term) or crashed (Kill) → VIP on the backup; median of \
         {rounds}, polled every 0.5 ms; ratio = ours/keepalived. A crash is detected a master \
         down interval after the last advert, so 'from last advert' compares the backups alone."
    );
    for s in summary {
        println!("{s}");
    }
}
