//! Failover time, ours vs keepalived 2.2.7 with the same settings in the same run.
//!
//! For each variant (v2 advert_int 1, v3 0.1, v3 0.01) and each implementation, a pair of
//! nodes of that implementation (master prio 150, backup prio 100) in two namespaces: the
//! master is stopped (SIGTERM: graceful, priority 0 advert) or crashed (SIGKILL, keepalived's
//! VRRP child too), and a thread in the backup's namespace polls its addresses every 2 ms until
//! the VIP shows. Prints each run, the medians and ours/keepalived.
//!
//! Run: `cargo bench -p vrrp --bench failover` (root; `VRRP_BENCH_ROUNDS=N` to change rounds,
//! `VRRP_BENCH_ONLY=0.1` for one advert_int).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;

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

/// One round: returns the failover time in ms.
fn round(which: Impl, pair: &Pair, conf_m: &NodeConf, sig: Sig, n: usize) -> anyhow::Result<f64> {
    let vip = pair.vip();
    let limit = Duration::from_secs(12);
    let mut master = Node::start(which, pair, &pair.a, &pair.b, conf_m, &format!("m{n}"))?;
    converge_on(pair, &pair.a, &pair.b, limit, Duration::from_millis(300))?;
    // Let the backup hear a steady stream of adverts; vary where in the advert interval the
    // kill lands (same sequence for both implementations), else a fixed sleep after the
    // convergence poll puts it at the same phase every round.
    std::thread::sleep(Duration::from_millis(700 + (n as u64 * 37) % 100));
    let watch = VipWatch::start(&pair.b.ns, &vip, Duration::from_millis(2));
    let t0 = Instant::now();
    match sig {
        Sig::Term => master.stop()?,
        Sig::Kill => master.kill()?,
    }
    let seen = watch
        .wait(limit)
        .ok_or_else(|| anyhow::anyhow!("VIP never reached the backup"))?;
    let ms = seen.duration_since(t0).as_secs_f64() * 1000.0;
    // A crashed master leaves its VIP behind (both implementations): clean up by hand.
    let _ = pair
        .a
        .ns
        .ip(&["addr", "del", &format!("{vip}/32"), "dev", "va"]);
    Ok(ms)
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
            for n in 0..rounds {
                for (k, which) in impls.iter().enumerate() {
                    match round(*which, &pairs[k], &conf_m, sig, n) {
                        Ok(ms) => {
                            println!(
                                "v{version} advert_int {int:>4} {sig:?} {which:?}: {ms:.1} ms"
                            );
                            times[k].push(ms);
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
            summary.push(format!(
                "v{version} advert_int {int:>4} {:>5}: keepalived {k:8.1} ms  ours {o:8.1} ms  ours/keepalived {:.2}",
                format!("{sig:?}"),
                o / k
            ));
        }
    }
    println!(
        "\nfailover (master stopped → VIP on the backup, median of {rounds}, polled every 2 ms)"
    );
    for s in summary {
        println!("{s}");
    }
}
