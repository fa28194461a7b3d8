use super::*;

impl Engine {
    pub(super) fn build(&mut self, mut cfg: InstanceConfig) -> Result<Inst> {
        let v6 = cfg.family == Family::V6;
        let link = link::link(&cfg.interface)
            .ok_or_else(|| anyhow!("({}) interface {} doesn't exist", cfg.name, cfg.interface))?;
        let src = if cfg.is_unicast() {
            cfg.unicast_src_ip
        } else {
            cfg.mcast_src_ip
        }
        .or_else(|| link.primary(v6))
        .ok_or_else(|| anyhow!("({}) no source address on {}", cfg.name, cfg.interface))?;
        let ttl = if cfg.is_unicast() {
            cfg.unicast_ttl
        } else {
            255
        };
        let vmac = match &cfg.use_vmac {
            Some(name) => Some(self.create_vmac(&cfg, name, link.index)?),
            // An ipvlan the kernel cannot make (no ipvlan support) leaves the instance in
            // FAULT, as keepalived's does; the others run.
            None => self.create_ipvlan(&cfg, link.index).unwrap_or_else(|e| {
                log::error!("{e:#} - setting instance to fault state");
                cfg.config_fault = true;
                None
            }),
        };
        // The ipvlan's own address is the adverts' source.
        let src = cfg
            .use_ipvlan
            .as_ref()
            .and_then(|i| i.1)
            .map_or(src, |(a, _)| a);
        // Adverts leave through the vmac (virtual source MAC) unless vmac_xmit_base; IPv6
        // keeps the base interface, which holds the link-local source.
        let (tx_if, tx_index) = match &vmac {
            Some((n, i)) if !cfg.vmac_xmit_base && !v6 => (n.clone(), *i),
            _ => (cfg.interface.clone(), link.index),
        };
        let ah = matches!(cfg.auth, Auth::Ah(_));
        // vrf: the sockets live in the VRF (bound to its device).
        let tx_if = cfg.vrf.clone().unwrap_or(tx_if);
        let tx = TxSocket::open(src, &tx_if, tx_index, ttl, ah)
            .with_context(|| format!("({}) send socket", cfg.name))?;
        // With a vmac, multicast from a peer using the same virtual MAC is handed by the
        // macvlan driver to the vmac, not to the base interface; the vmac also sees every
        // other multicast frame. Unicast adverts arrive on the base interface.
        let (rx_if, rx_index) = match &vmac {
            Some((n, i)) if !cfg.is_unicast() && !v6 => (n.clone(), *i),
            _ => (cfg.interface.clone(), link.index),
        };
        let proto = if ah { IPPROTO_AH } else { IPPROTO_VRRP };
        let rx_group = (!cfg.is_unicast()).then_some(cfg.mcast_group);
        let rx_if = cfg.vrf.clone().unwrap_or(rx_if);
        let rx = RxSocket::open(v6, &rx_if, rx_index, rx_group, proto)
            .with_context(|| format!("({}) receive socket", cfg.name))?;
        let idx = self.insts.len();
        let pkt_tx = self.pkt_tx.clone();
        let generation = self.generation;
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 9000];
            loop {
                match rx.recv(&mut buf).await {
                    Ok((n, info)) => {
                        let pkt = buf[..n.min(buf.len())].to_vec();
                        if pkt_tx.send((generation, idx, pkt, info)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        log::warn!("vrrp receive: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        // promote_secondaries: removing one VIP must not take the others of its subnet.
        if cfg.promote_secondaries && set_promote_secondaries(&cfg.interface, true) {
            self.promoted.insert(cfg.interface.clone());
        }
        let default_if = vmac.as_ref().map_or(&cfg.interface, |v| &v.0).clone();
        let vips: Vec<Vip> = cfg
            .vips
            .iter()
            .chain(cfg.vips_excluded.iter())
            .map(|e| resolve::vip(e, &default_if, link.index))
            .collect();
        let rules = cfg
            .rules
            .iter()
            .map(|r| resolve::rule(r, cfg.family == Family::V6))
            .collect();
        let routes = cfg.routes.iter().filter_map(resolve::route).collect();
        let params = Params {
            version: cfg.version,
            base_priority: cfg.priority,
            adver_int_cs: if cfg.version == 2 {
                u32::from(cfg.adver_int) * 100
            } else {
                u32::from(cfg.adver_int)
            },
            preempt: cfg.preempt,
            preempt_delay_us: cfg.preempt_delay_us,
            down_timer_adverts: cfg.down_timer_adverts,
            own_addr: src,
            lower_prio_no_advert: cfg.lower_prio_no_advert,
            higher_prio_send_advert: cfg.higher_prio_send_advert,
        };
        Ok(Inst {
            advert_vips: cfg.vip_addrs(),
            old_checksum: cfg.old_unicast_checksum,
            sm: Instance::new(params),
            cfg,
            link,
            tx,
            src,
            vips,
            routes,
            rules,
            reader,
            garp: None,
            stats: RxStats::default(),
            tx_stats: super::TxStats::default(),
            vmac,
            ah: SeqCounter::default(),
            ip_id: 0,
            tx_ttl: ttl,
            src_seen: false,
            last_advert_us: None,
            last_mail: None,
        })
    }

    pub(super) fn packet(&mut self, idx: usize, pkt: &[u8], info: Option<IpInfo>) {
        let now = self.now();
        let Some(inst) = self.insts.get_mut(idx) else {
            return;
        };
        let unicast = inst.cfg.is_unicast();
        let parsed = match (info, inst.cfg.auth) {
            (Some(ip), _) => Ok((ip, pkt)),
            (None, Auth::Ah(key)) => ah::check(pkt, &key, unicast).and_then(|r| {
                if r.ip.src == inst.src {
                    return Ok((r.ip, r.msg));
                }
                inst.ah.accept_rx(r.seq).map(|()| (r.ip, r.msg))
            }),
            (None, _) => codec::parse_ipv4(pkt),
        };
        let (ip, msg) = match parsed {
            Ok(x) => x,
            Err(err) => {
                inst.stats.record::<()>(&Err(err));
                log_drop(&inst.cfg.name, &inst.stats, &err);
                return;
            }
        };
        if ip.src == inst.src {
            return; // our own advert (unicast to ourselves or a looped multicast)
        }
        let exp = RxExpect {
            version: inst.cfg.version,
            family: inst.cfg.family,
            vrid: inst.cfg.vrid,
            adver_int: inst.cfg.adver_int,
            auth: inst.cfg.auth,
            unicast: inst.cfg.is_unicast(),
            vips: (!inst.cfg.skip_check_adv_addr).then_some(&inst.advert_vips[..]),
            v3_checksum_as_v2: inst.cfg.v3_checksum_as_v2,
            // keepalived detects the old checksum by itself in unicast mode.
            old_unicast_checksum: true,
        };
        let mut res = codec::check(msg, &ip, &exp);
        if let Ok(c) = &res
            && inst.cfg.is_unicast()
        {
            let peer = inst.cfg.unicast_peers.iter().find(|p| p.0 == ip.src);
            let ttl_ok = peer.is_none_or(|p| {
                p.1.is_none_or(|min| ip.ttl >= min) && p.2.is_none_or(|max| ip.ttl <= max)
            });
            if (inst.cfg.check_unicast_src && peer.is_none()) || !ttl_ok {
                res = Err(RxError::UnknownSource);
            } else if c.old_checksum && !inst.old_checksum {
                log::info!(
                    "({}) Setting unicast VRRPv3 checksum to old version",
                    inst.cfg.name
                );
                inst.old_checksum = true;
            }
        }
        inst.stats.record(&res);
        match res {
            Ok(c) => {
                if c.advert.priority == 0 {
                    inst.tx_stats.pri_zero_rcvd += 1;
                }
                let actions = inst.sm.on_advert(now, ip.src, &c.advert);
                self.apply(idx, actions, now);
            }
            Err(err) => log_drop(&inst.cfg.name, &inst.stats, &err),
        }
    }

    pub(super) fn send_advert(&mut self, idx: usize, priority: u8) {
        let inst = &mut self.insts[idx];
        inst.tx_stats.adverts_sent += 1;
        if priority == 0 {
            inst.tx_stats.pri_zero_sent += 1;
        }
        if priority != 0 {
            inst.last_advert_us = Some(super::restart::monotonic_us());
        }
        let adv = Advert {
            version: inst.cfg.version,
            vrid: inst.cfg.vrid,
            priority,
            adver_int: inst.cfg.adver_int,
            auth_type: inst.cfg.auth.type_code(),
            auth_data: match inst.cfg.auth {
                Auth::Pass(p) => p,
                _ => [0; 8],
            },
            addresses: inst.advert_vips.clone(),
        };
        let dsts: Vec<IpAddr> = if inst.cfg.is_unicast() {
            inst.cfg.unicast_peers.iter().map(|p| p.0).collect()
        } else {
            vec![inst.cfg.mcast_group]
        };
        // AH: one sequence number and IP id per advert, whatever the number of peers.
        let ah_seq = matches!(inst.cfg.auth, Auth::Ah(_)).then(|| {
            inst.ip_id = inst.ip_id.checked_add(1).unwrap_or(1);
            inst.ah.next_tx()
        });
        for dst in dsts {
            let csum = if inst.cfg.v3_checksum_as_v2 {
                Checksum::MessageOnly
            } else if inst.old_checksum && inst.cfg.is_unicast() && dst.is_ipv4() {
                Checksum::Pseudo {
                    src: inst.src,
                    dst: inst.cfg.mcast_group4,
                }
            } else {
                Checksum::Pseudo { src: inst.src, dst }
            };
            let msg = codec::encode(&adv, inst.cfg.family, csum);
            let sent = match (inst.cfg.auth, ah_seq, inst.src, dst) {
                (Auth::Ah(key), Some(seq), IpAddr::V4(src), IpAddr::V4(dst4)) => {
                    let pkt = ah::encode(
                        &ah::AhSend {
                            src,
                            dst: dst4,
                            ip_id: inst.ip_id,
                            ttl: inst.tx_ttl,
                            seq,
                            key: &key,
                            unicast: inst.cfg.is_unicast(),
                        },
                        &msg,
                    );
                    inst.tx.send(&pkt, dst)
                }
                _ => inst.tx.send(&msg, dst),
            };
            if let Err(e) = sent {
                log::warn!("({}) cannot send advert to {dst}: {e}", inst.cfg.name);
            }
        }
    }
}

/// Sets the interface's `promote_secondaries`; true when it was off and is now on.
pub(super) fn set_promote_secondaries(ifname: &str, on: bool) -> bool {
    let path = format!("/proc/sys/net/ipv4/conf/{ifname}/promote_secondaries");
    let was_on = std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == "1");
    if was_on == on {
        return false;
    }
    std::fs::write(&path, if on { "1" } else { "0" }).is_ok()
}
