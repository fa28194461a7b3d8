use super::garp_pace::{SharedPacer, wait_turn};
use super::*;

impl Engine {
    pub(super) fn add_addresses(&mut self, idx: usize, vips: &[Vip], routes: &[Route]) {
        self.effects.push(Effect::AddAddresses {
            instance: self.insts[idx].cfg.name.clone(),
            rules: self.insts[idx].rules.clone(),
            vips: vips.to_vec(),
            routes: routes.to_vec(),
        });
    }

    pub(super) fn remove_rules(&mut self, rules: &[Rule]) {
        self.effects.push(Effect::RemoveAddresses {
            vips: Vec::new(),
            routes: Vec::new(),
            rules: rules.to_vec(),
        });
    }

    pub(super) fn remove_addresses(&mut self, vips: &[Vip], routes: &[Route]) {
        self.effects.push(Effect::RemoveAddresses {
            vips: vips.to_vec(),
            routes: routes.to_vec(),
            rules: Vec::new(),
        });
    }

    /// Interface, MAC and address of every VIP, for GARPs / NAs.
    pub(super) fn garp_targets(&self, idx: usize) -> Vec<GarpTarget> {
        let inst = &self.insts[idx];
        inst.vips
            .iter()
            .map(|v| {
                let mac = if v.ifindex == inst.link.index {
                    inst.link.mac
                } else {
                    link::link(&v.ifname).map_or(inst.link.mac, |l| l.mac)
                };
                GarpTarget {
                    ifindex: v.ifindex,
                    ifname: v.ifname.clone(),
                    mac,
                    addr: v.addr,
                }
            })
            .collect()
    }

    /// Gratuitous ARPs / NAs: a burst now, another after garp_master_delay, then refreshes;
    /// with `garp_extra_if`, also periodic ones on the VIPs' other interfaces.
    pub(super) fn start_garp(&mut self, idx: usize) {
        let targets = self.garp_targets(idx);
        let pacer = self.garp_pacer.clone();
        let inst = &mut self.insts[idx];
        let g = inst.cfg.garp;
        let own = inst.link.index;
        let vmac = inst.vmac.as_ref().map(|v| v.1);
        let extra: Option<(Duration, Vec<GarpTarget>)> =
            inst.cfg.garp_extra_if.map(|(secs, all)| {
                let others = targets
                    .iter()
                    .filter(|t| t.ifindex != own && (all || Some(t.ifindex) == vmac))
                    .cloned()
                    .collect();
                (Duration::from_secs(u64::from(secs)), others)
            });
        if let Some(t) = inst.garp.take() {
            t.abort();
        }
        inst.garp = Some(tokio::spawn(async move {
            let extra_task = extra.filter(|(_, t)| !t.is_empty()).map(|(every, others)| {
                let pacer = pacer.clone();
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(every).await;
                        garp_burst(1, &others, &pacer).await;
                    }
                })
            });
            let _stop_extra = AbortOnDrop(extra_task);
            garp_burst(g.master_repeat, &targets, &pacer).await;
            if g.master_delay > 0 {
                tokio::time::sleep(Duration::from_secs(u64::from(g.master_delay))).await;
                garp_burst(g.master_repeat, &targets, &pacer).await;
            }
            if g.master_refresh > 0 {
                loop {
                    tokio::time::sleep(Duration::from_secs(u64::from(g.master_refresh))).await;
                    garp_burst(g.master_refresh_repeat, &targets, &pacer).await;
                }
            }
            std::future::pending::<()>().await;
        }));
    }
}

/// One VIP to announce.
#[derive(Debug, Clone)]
pub(super) struct GarpTarget {
    pub ifindex: u32,
    pub ifname: String,
    pub mac: [u8; 6],
    pub addr: IpAddr,
}

/// Aborts a task when dropped (the GARP task's periodic helper ends with it).
struct AbortOnDrop(Option<JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            t.abort();
        }
    }
}

/// `count` rounds of one GARP / NA per VIP, each packet waiting for its interface's turn
/// (`vrrp_garp_interval`, `vrrp_gna_interval`, `garp_group`).
pub(super) async fn garp_burst(count: u32, targets: &[GarpTarget], pacer: &SharedPacer) {
    for _ in 0..count {
        for t in targets {
            wait_turn(pacer, &t.ifname, t.addr.is_ipv6()).await;
            if let Err(e) = crate::garp::announce(t.ifindex, t.mac, t.addr) {
                log::warn!("gratuitous ARP/NA for {}: {e}", t.addr);
            }
        }
    }
}
