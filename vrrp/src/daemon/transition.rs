use super::addresses::garp_burst;
use super::*;

impl Engine {
    pub(super) fn apply(&mut self, idx: usize, actions: Vec<Action>, now: Micros) {
        for a in actions {
            match a {
                Action::SendAdvert { priority } => self.send_advert(idx, priority),
                Action::LowerPriorityMaster { from } => {
                    let inst = &self.insts[idx];
                    log::info!(
                        "({}) Received advert from {from} with lower priority, ours {}, forcing new election",
                        inst.cfg.name,
                        inst.sm.effective_priority()
                    );
                    if let Some(s) = &inst.cfg.notify.master_rx_lower_pri {
                        self.effects.push(Effect::Spawn {
                            script: s.clone(),
                            args: Vec::new(),
                        });
                    }
                    let g = inst.cfg.garp;
                    if g.lower_prio_repeat > 0 {
                        let targets = self.garp_targets(idx);
                        let pacer = self.garp_pacer.clone();
                        tokio::spawn(async move {
                            if g.lower_prio_delay > 0 {
                                tokio::time::sleep(Duration::from_secs(u64::from(
                                    g.lower_prio_delay,
                                )))
                                .await;
                            }
                            garp_burst(g.lower_prio_repeat, &targets, &pacer).await;
                        });
                    }
                }
                Action::Transition { from, to, reason } => {
                    self.transition(idx, from, to, reason);
                    // Sync group: the other members follow (not for shutdown/INIT).
                    if reason != Reason::SyncGroup
                        && to != State::Init
                        && let Some(g) = self.insts[idx].cfg.sync_group.clone()
                    {
                        for j in 0..self.insts.len() {
                            if j != idx && self.insts[j].cfg.sync_group.as_deref() == Some(&g) {
                                let acts = self.insts[j].sm.force(now, to);
                                self.apply(j, acts, now);
                            }
                        }
                    }
                    if reason != Reason::SyncGroup {
                        self.group_notify(idx);
                    }
                }
            }
        }
    }

    pub(super) fn transition(&mut self, idx: usize, from: State, to: State, reason: Reason) {
        let name = self.insts[idx].cfg.name.clone();
        // keepalived 2.2.7's line, which people alert on; the reason is detail.
        if to == State::Init {
            // Stopping: keepalived 2.2.7 logs no transition for it.
            log::debug!("({name}) Entering {} STATE", to.keyword());
        } else {
            log::info!("({name}) Entering {} STATE", to.keyword());
        }
        log::debug!("({name}) transition reason: {reason:?}");
        if to == State::Master {
            self.insts[idx].tx_stats.became_master += 1;
        } else if from == State::Master {
            self.insts[idx].tx_stats.released_master += 1;
        }
        if to == State::Master {
            self.insts[idx].ah.reset_if_cycled();
            let (v, r) = (self.insts[idx].vips.clone(), self.insts[idx].routes.clone());
            // no_accept: the drop rules go in before the addresses, so no packet slips through.
            let cfg = &self.insts[idx].cfg;
            if !cfg.accept && cfg.priority != 255 {
                let addrs: Vec<IpAddr> = v.iter().map(|x| x.addr).collect();
                self.effects.push(Effect::Block {
                    instance: name.clone(),
                    addrs,
                });
            }
            log::info!("({name}) setting VIPs.");
            self.add_addresses(idx, &v, &r);
            self.start_garp(idx);
        } else if from == State::Master {
            if !self.insts[idx].cfg.accept {
                self.effects.push(Effect::Unblock {
                    instance: name.clone(),
                });
            }
            if let Some(t) = self.insts[idx].garp.take() {
                t.abort();
            }
            log::info!("({name}) removing VIPs.");
            let (v, r) = (self.insts[idx].vips.clone(), self.insts[idx].routes.clone());
            self.remove_addresses(&v, &r);
            let rules = self.insts[idx].rules.clone();
            self.remove_rules(&rules);
        }
        let inst = &self.insts[idx];
        let prio = inst.sm.effective_priority();
        let word = if to == State::Init {
            "STOP"
        } else {
            to.keyword()
        };
        let n = &inst.cfg.notify;
        let specific = match to {
            State::Master => &n.master,
            State::Backup => &n.backup,
            State::Fault => &n.fault,
            State::Init => &n.stop,
        };
        self.effects.notify_scripts(
            specific.as_ref(),
            n.notify.as_ref(),
            vec![
                "INSTANCE".into(),
                name.clone(),
                word.into(),
                prio.to_string(),
            ],
        );
        self.effects.push(Effect::FifoLine(notify::fifo_line(
            "INSTANCE", &name, word, prio,
        )));
        self.mail_instance(idx, word);
        let inst = &self.insts[idx];
        // Sent by the effects worker once the addresses queued before are in place.
        self.effects.push(Effect::Event(StateEvent {
            instance: name,
            vrid: inst.cfg.vrid,
            interface: inst.cfg.interface.clone(),
            from,
            to,
            reason,
            vips: inst.vips.iter().map(|v| v.addr).collect(),
        }));
    }
}
