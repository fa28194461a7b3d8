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

    /// Interface index, MAC and address of every VIP, for GARPs / NAs.
    pub(super) fn garp_targets(&self, idx: usize) -> Vec<(u32, [u8; 6], IpAddr)> {
        let inst = &self.insts[idx];
        inst.vips
            .iter()
            .map(|v| {
                let mac = if v.ifindex == inst.link.index {
                    inst.link.mac
                } else {
                    link::link(&v.ifname).map_or(inst.link.mac, |l| l.mac)
                };
                (v.ifindex, mac, v.addr)
            })
            .collect()
    }

    /// Gratuitous ARPs / NAs: a burst now, another after garp_master_delay, then refreshes.
    pub(super) fn start_garp(&mut self, idx: usize) {
        let targets = self.garp_targets(idx);
        let inst = &mut self.insts[idx];
        let g = inst.cfg.garp;
        if let Some(t) = inst.garp.take() {
            t.abort();
        }
        inst.garp = Some(tokio::spawn(async move {
            garp_burst(g.master_repeat, g.interval, &targets).await;
            if g.master_delay > 0 {
                tokio::time::sleep(Duration::from_secs(u64::from(g.master_delay))).await;
                garp_burst(g.master_repeat, g.interval, &targets).await;
            }
            if g.master_refresh > 0 {
                loop {
                    tokio::time::sleep(Duration::from_secs(u64::from(g.master_refresh))).await;
                    garp_burst(g.master_refresh_repeat, g.interval, &targets).await;
                }
            }
        }));
    }
}

/// `count` rounds of one GARP / NA per VIP, `interval` seconds apart.
pub(super) async fn garp_burst(count: u32, interval: f64, targets: &[(u32, [u8; 6], IpAddr)]) {
    for n in 0..count {
        if n > 0 && interval > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(interval)).await;
        }
        for (ifindex, mac, addr) in targets {
            if let Err(e) = crate::garp::announce(*ifindex, *mac, *addr) {
                log::warn!("gratuitous ARP/NA for {addr}: {e}");
            }
        }
    }
}
