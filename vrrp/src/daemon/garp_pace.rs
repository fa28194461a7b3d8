//! Spacing of gratuitous ARPs and unsolicited NAs per interface, as keepalived's garp delays
//! do: `vrrp_garp_interval` / `vrrp_gna_interval` between two packets sent on one interface
//! (whatever instance sends them), or a `garp_group`'s intervals for its interfaces —
//! shared by all of them when the group lists several (`interfaces { … }`: one switch).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keepalived_conf::model::KeepalivedConfig;
use tokio::time::Instant;

#[derive(Debug)]
struct Slot {
    garp: Duration,
    gna: Duration,
    /// Next time a GARP / an NA may leave.
    next: [Instant; 2],
}

/// Who waits for whom, by interface name.
#[derive(Debug)]
pub(super) struct GarpPacer {
    /// Interface → its slot (interfaces of one group share one); interfaces outside any
    /// group get theirs on first use.
    slots: Mutex<HashMap<String, Arc<Mutex<Slot>>>>,
    default: (Duration, Duration),
}

pub(super) type SharedPacer = Arc<GarpPacer>;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

impl GarpPacer {
    pub(super) fn new(cfg: &KeepalivedConfig) -> SharedPacer {
        let default = (
            secs(cfg.global.vrrp_garp_interval),
            secs(cfg.global.vrrp_gna_interval),
        );
        let mut slots = HashMap::new();
        for g in &cfg.garp_groups {
            if g.garp_interval.is_none() && g.gna_interval.is_none() {
                continue; // keepalived removes a group without delays
            }
            let slot = Arc::new(Mutex::new(Slot {
                garp: secs(g.garp_interval.unwrap_or(cfg.global.vrrp_garp_interval)),
                gna: secs(g.gna_interval.unwrap_or(cfg.global.vrrp_gna_interval)),
                next: [Instant::now(); 2],
            }));
            for ifname in &g.interfaces {
                slots.entry(ifname.clone()).or_insert_with(|| slot.clone());
            }
        }
        Arc::new(GarpPacer {
            slots: Mutex::new(slots),
            default,
        })
    }
}

/// Waits until a GARP (`v6`: an NA) may leave on `ifname`, and books the slot.
pub(super) async fn wait_turn(p: &GarpPacer, ifname: &str, v6: bool) {
    let slot = {
        let mut m = p.slots.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(ifname.to_string())
            .or_insert_with(|| {
                Arc::new(Mutex::new(Slot {
                    garp: p.default.0,
                    gna: p.default.1,
                    next: [Instant::now(); 2],
                }))
            })
            .clone()
    };
    let at = {
        let mut s = slot.lock().unwrap_or_else(|e| e.into_inner());
        let i = usize::from(v6);
        let gap = if v6 { s.gna } else { s.garp };
        let at = s.next[i].max(Instant::now());
        s.next[i] = at + gap;
        at
    };
    tokio::time::sleep_until(at).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn groups_share_one_pace_others_their_own() {
        let cfg = keepalived_conf::parse_str(
            "global_defs {\n vrrp_garp_interval 0.01\n}\n\
             garp_group {\n garp_interval 0.5\n interfaces {\n  eth1\n  eth2\n }\n}\n",
            "t",
            &keepalived_conf::ParseOptions::default(),
        )
        .config;
        let p = GarpPacer::new(&cfg);
        let t0 = Instant::now();
        // eth1 and eth2 share 0.5 s between packets.
        wait_turn(&p, "eth1", false).await;
        wait_turn(&p, "eth2", false).await;
        wait_turn(&p, "eth1", false).await;
        assert_eq!(t0.elapsed(), Duration::from_millis(1000));
        // eth0 (no group) uses the global 10 ms, independently.
        let t1 = Instant::now();
        wait_turn(&p, "eth0", false).await;
        wait_turn(&p, "eth0", false).await;
        assert_eq!(t1.elapsed(), Duration::from_millis(10));
        // NAs are paced apart from ARPs (gna_interval 0 here).
        let t2 = Instant::now();
        wait_turn(&p, "eth1", true).await;
        wait_turn(&p, "eth1", true).await;
        assert_eq!(t2.elapsed(), Duration::ZERO);
    }
}
