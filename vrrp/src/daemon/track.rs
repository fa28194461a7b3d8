use super::*;

impl Engine {
    pub(super) fn retrack(&mut self) {
        let now = self.now();
        self.retrack_at(now, true);
    }

    /// Recomputes every instance's effective priority and fault from interfaces, scripts and
    /// files; `apply` feeds changes to the state machines.
    pub(super) fn retrack_at(&mut self, now: Micros, apply: bool) {
        let cfg = self.config.clone();
        let Some(links) = link::states() else {
            log::warn!("cannot read interface states; tracking unchanged");
            return;
        };
        let addresses = self
            .insts
            .iter()
            .any(|i| i.cfg.track_src_ip)
            .then(super::statics::addresses_by_index)
            .flatten();
        for idx in 0..self.insts.len() {
            let inst = &mut self.insts[idx];
            let flags = links.get(&inst.cfg.interface).map(|(up, mac)| {
                inst.link.mac = *mac;
                *up
            });
            inst.link.up = self.links.up(&inst.cfg.interface, flags, now);
            let mut tracked = Vec::new();
            if !inst.cfg.dont_track_primary {
                tracked.push(Tracked {
                    weight: 0,
                    reverse: false,
                    kind: TrackKind::Up(inst.link.up),
                });
            }
            // unicast_fault_no_peer without peers, ipvlan without address; track_src_ip without it.
            if inst.cfg.track_src_ip
                && !inst.src_seen
                && addresses
                    .as_ref()
                    .is_some_and(|a| a.values().any(|v| v.contains(&inst.src)))
            {
                inst.src_seen = true;
            }
            let src_missing = inst.cfg.track_src_ip && !inst.src_seen;
            if inst.cfg.config_fault || src_missing {
                tracked.push(Tracked {
                    weight: 0,
                    reverse: false,
                    kind: TrackKind::Up(false),
                });
            }
            // A static address of one of its track groups could not be restored.
            let group_failed = cfg.track_groups.iter().any(|g| {
                self.failed_track_groups.contains(&g.name) && g.group.contains(&inst.cfg.name)
            });
            if group_failed {
                tracked.push(Tracked {
                    weight: 0,
                    reverse: false,
                    kind: TrackKind::Up(false),
                });
            }
            let group = inst
                .cfg
                .sync_group
                .as_deref()
                .and_then(|g| cfg.sync_groups.iter().find(|s| s.name == g));
            let ifaces = inst
                .cfg
                .track_interfaces
                .iter()
                .chain(group.into_iter().flat_map(|g| g.track_interfaces.iter()));
            for t in ifaces {
                let flags = links.get(&t.name).map(|l| l.0);
                tracked.push(Tracked {
                    weight: t.weight.unwrap_or(0),
                    reverse: t.reverse,
                    kind: TrackKind::Up(self.links.up(&t.name, flags, now)),
                });
            }
            let scripts = inst
                .cfg
                .track_scripts
                .iter()
                .chain(group.into_iter().flat_map(|g| g.track_scripts.iter()));
            for t in scripts {
                let Some(def) = cfg.vrrp_script(&t.name) else {
                    continue;
                };
                let ok = self.scripts.get(&t.name).is_none_or(|s| s.ok());
                tracked.push(Tracked {
                    weight: t.weight.unwrap_or(def.weight),
                    reverse: t.reverse || def.weight_reverse,
                    kind: TrackKind::Up(ok),
                });
            }
            let files = inst
                .cfg
                .track_files
                .iter()
                .chain(group.into_iter().flat_map(|g| g.track_files.iter()));
            for t in files {
                let Some(def) = cfg.track_files.iter().find(|f| f.name == t.name) else {
                    continue;
                };
                let value = def
                    .file
                    .as_deref()
                    .and_then(|p| std::fs::read_to_string(p).ok())
                    .and_then(|s| s.split_whitespace().next()?.parse::<i64>().ok())
                    .unwrap_or(0);
                tracked.push(Tracked {
                    weight: t.weight.unwrap_or(def.weight),
                    reverse: t.reverse || def.weight_reverse,
                    kind: TrackKind::File(value),
                });
            }
            let procs = inst
                .cfg
                .track_processes
                .iter()
                .chain(group.into_iter().flat_map(|g| g.track_processes.iter()));
            for t in procs {
                let Some(def) = cfg.track_processes.iter().find(|p| p.name == t.name) else {
                    continue;
                };
                tracked.push(Tracked {
                    weight: t.weight.unwrap_or(def.weight),
                    reverse: t.reverse || def.weight_reverse,
                    kind: TrackKind::Up(self.processes.get(&t.name).is_none_or(|s| s.up)),
                });
            }
            let bfds = inst
                .cfg
                .track_bfds
                .iter()
                .chain(group.into_iter().flat_map(|g| g.track_bfds.iter()));
            for t in bfds {
                let Some(def) = cfg.bfd_instances.iter().find(|b| b.name == t.name) else {
                    continue;
                };
                tracked.push(Tracked {
                    weight: t.weight.or(def.weight).unwrap_or(0),
                    reverse: t.reverse,
                    kind: TrackKind::Up(self.bfd_up.get(&t.name) == Some(&true)),
                });
            }
            let (prio, fault) = effective_priority(inst.cfg.priority, &tracked);
            if prio != inst.sm.effective_priority() || fault != (inst.sm.state() == State::Fault) {
                let actions = inst.sm.set_tracking(now, prio, fault);
                if apply {
                    self.apply(idx, actions, now);
                }
            }
        }
    }
}

impl Engine {
    /// New BFD session states; true when one an instance or sync group tracks changed (each
    /// tracking instance logs it, as keepalived's VRRP process does).
    pub(super) fn bfd_states(&mut self, states: bfd::States) -> bool {
        let mut changed = false;
        for (name, &up) in &states {
            if self.bfd_up.get(name).copied().unwrap_or(false) == up {
                continue;
            }
            for inst in &self.insts {
                let group = inst
                    .cfg
                    .sync_group
                    .as_deref()
                    .and_then(|g| self.config.sync_groups.iter().find(|s| s.name == g));
                let tracks = inst.cfg.track_bfds.iter().any(|t| &t.name == name)
                    || group.is_some_and(|g| g.track_bfds.iter().any(|t| &t.name == name));
                if tracks {
                    changed = true;
                    log::info!(
                        "VRRP_Instance({}) Tracked BFD instance {name} is {}",
                        inst.cfg.name,
                        if up { "UP" } else { "DOWN" }
                    );
                }
            }
        }
        // Sessions no longer reported are down.
        changed |= self
            .bfd_up
            .iter()
            .any(|(n, up)| *up && !states.contains_key(n));
        self.bfd_up = states;
        changed
    }
}
