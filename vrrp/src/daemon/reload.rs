use super::*;

impl Engine {
    /// SIGHUP: instances kept by name keep their state; addresses of instances gone (or no
    /// longer master) are removed.
    pub(super) fn reload(&mut self, cfg: Arc<KeepalivedConfig>) {
        let prev: HashMap<String, (State, Vec<Vip>, Vec<Route>)> = self
            .insts
            .iter()
            .map(|i| {
                (
                    i.cfg.name.clone(),
                    (i.sm.state(), i.vips.clone(), i.routes.clone()),
                )
            })
            .collect();
        self.stop_tasks();
        let old = std::mem::take(&mut self.insts);
        if let Err(err) = self.load(cfg, &prev) {
            log::error!("reload: {err:#}");
        }
        for o in old {
            if !self.insts.iter().any(|i| i.cfg.name == o.cfg.name) {
                self.notify_deleted(&o);
            }
            if let Some((name, index)) = &o.vmac
                && !self
                    .insts
                    .iter()
                    .any(|i| i.vmac.as_ref().is_some_and(|v| &v.0 == name))
            {
                let _ = self.nl.delete_link(*index);
            }
            let keeps = self
                .insts
                .iter()
                .any(|i| i.cfg.name == o.cfg.name && i.sm.state() == State::Master);
            if o.sm.state() == State::Master && !keeps {
                self.remove_addresses(&o.vips, &o.routes);
                self.remove_rules(&o.rules);
            } else if o.sm.state() == State::Master {
                let new = self
                    .insts
                    .iter()
                    .find(|i| i.cfg.name == o.cfg.name)
                    .map(|i| i.vips.clone())
                    .unwrap_or_default();
                let gone: Vec<Vip> = o
                    .vips
                    .iter()
                    .filter(|v| !new.contains(v))
                    .cloned()
                    .collect();
                self.remove_addresses(&gone, &[]);
            }
        }
    }

    /// Builds every instance of `cfg`; instances named in `prev` that were MASTER resume as
    /// MASTER.
    pub(super) fn load(
        &mut self,
        cfg: Arc<KeepalivedConfig>,
        prev: &HashMap<String, (State, Vec<Vip>, Vec<Route>)>,
    ) -> Result<()> {
        self.generation += 1;
        self.config = cfg.clone();
        self.mailer = keepalived_scripts::smtp::Mailer::from_config(&cfg);
        self.effects.push(Effect::OpenFifos(
            [&cfg.global.notify_fifo, &cfg.global.vrrp_notify_fifo]
                .into_iter()
                .flatten()
                .cloned()
                .collect(),
        ));
        for v in &cfg.vrrp_instances {
            if let Some(why) = config::dropped(&cfg, v) {
                log::error!("{why}");
                continue;
            }
            let built = config::instance(&cfg, v)
                .map_err(|m| anyhow!(m))
                .and_then(|ic| self.build(ic));
            match built {
                Ok(inst) => self.insts.push(inst),
                // At startup the caller gets the error; on reload the others keep running.
                Err(e) if prev.is_empty() => {
                    self.stop_tasks();
                    return Err(e);
                }
                Err(e) => log::error!("{e:#}"),
            }
        }
        let polled: Vec<String> = self
            .insts
            .iter()
            .filter(|i| i.cfg.linkbeat_polling)
            .map(|i| i.cfg.interface.clone())
            .collect();
        self.links.configure(&cfg, &polled);
        self.garp_pacer = super::garp_pace::GarpPacer::new(&cfg);
        self.apply_statics(&cfg);
        self.start_process_tracking(&cfg);
        // Scripts referenced by instances or sync groups.
        self.scripts.clear();
        let mut used: Vec<String> = self
            .insts
            .iter()
            .flat_map(|i| i.cfg.track_scripts.iter().map(|t| t.name.clone()))
            .collect();
        for g in &cfg.sync_groups {
            used.extend(g.track_scripts.iter().map(|t| t.name.clone()));
        }
        used.sort();
        used.dedup();
        for name in used {
            let Some(s) = cfg.vrrp_script(&name) else {
                log::warn!("track_script {name} not found, ignoring");
                continue;
            };
            self.scripts
                .insert(name.clone(), ScriptStatus::new(s.rise, s.fall, s.init_fail));
            if let Some(script) = s.script.clone() {
                let interval = Duration::from_secs_f64(s.interval.max(0.01));
                let timeout = Duration::from_secs_f64(s.timeout.unwrap_or(s.interval).max(0.01));
                let tx = self.script_tx.clone();
                let generation = self.generation;
                self.script_tasks.push(tokio::spawn(async move {
                    loop {
                        let ok = notify::run_check(&script, timeout).await;
                        if tx.send((generation, name.clone(), ok)).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(interval).await;
                    }
                }));
            }
        }
        let now = self.now();
        if prev.is_empty()
            && self.generation == 1
            && let Some(d) = cfg.global.vrrp_startup_delay.filter(|d| *d > 0.0)
        {
            log::info!("Delaying startup for {d} seconds");
            self.delayed_start = Some(now + (d * 1e6) as Micros);
        }
        // A restart with -V shortly after the last advert: those resume MASTER.
        let resume = if prev.is_empty() && self.generation == 1 {
            self.resumable()
        } else {
            HashMap::new()
        };
        // Leftovers from a previous run (killed daemon) go first, as keepalived does.
        for idx in 0..self.insts.len() {
            let name = &self.insts[idx].cfg.name;
            if !prev.contains_key(name) && !resume.contains_key(name) {
                let (v, r) = (self.insts[idx].vips.clone(), self.insts[idx].routes.clone());
                self.remove_addresses(&v, &r);
                let rules = self.insts[idx].rules.clone();
                self.remove_rules(&rules);
            }
        }
        self.retrack_at(now, false);
        for idx in 0..self.insts.len() {
            match prev.get(&self.insts[idx].cfg.name) {
                // Still waiting for vrrp_startup_delay: stays in INIT.
                Some((State::Init, _, _)) if self.delayed_start.is_some() => {}
                // Kept across a reload: same state, no notify, no event.
                Some((state, _, _)) => {
                    let actions = self.insts[idx].sm.resume(now, *state);
                    if self.insts[idx].sm.state() == State::Master {
                        let (v, r) = (self.insts[idx].vips.clone(), self.insts[idx].routes.clone());
                        self.add_addresses(idx, &v, &r);
                    }
                    self.apply(idx, actions, now);
                }
                None if resume.contains_key(&self.insts[idx].cfg.name) => {
                    let r = resume[&self.insts[idx].cfg.name].clone();
                    self.resume_master(idx, now, &r);
                }
                // vrrp_startup_delay: new instances wait in INIT (at startup only).
                None if self.delayed_start.is_some() => {}
                None => {
                    let actions = self.insts[idx].sm.start(now);
                    self.apply(idx, actions, now);
                }
            }
        }
        Ok(())
    }

    pub(super) fn stop_tasks(&mut self) {
        for i in &mut self.insts {
            i.reader.abort();
            if let Some(g) = i.garp.take() {
                g.abort();
            }
        }
        for t in self.script_tasks.drain(..) {
            t.abort();
        }
    }

    /// An instance gone with a reload: its notifies say FAULT, or DELETED with
    /// `notify_deleted` (whose script runs too), as keepalived's do.
    fn notify_deleted(&mut self, o: &Inst) {
        let n = &o.cfg.notify;
        let (word, script) = if n.deleted.0 {
            ("DELETED", n.deleted.1.clone())
        } else {
            ("FAULT", n.fault.clone())
        };
        let prio = o.sm.effective_priority();
        log::info!("({}) removed by the reload - notifying {word}", o.cfg.name);
        if let Some(s) = script {
            self.effects.push(Effect::Spawn {
                script: s,
                args: Vec::new(),
            });
        }
        if let Some(s) = &n.notify {
            self.effects.push(Effect::Spawn {
                script: s.clone(),
                args: vec![
                    "INSTANCE".into(),
                    o.cfg.name.clone(),
                    word.into(),
                    prio.to_string(),
                ],
            });
        }
        self.effects.push(Effect::FifoLine(notify::fifo_line(
            "INSTANCE",
            &o.cfg.name,
            word,
            prio,
        )));
        self.mail_removed(o, word);
    }

    /// vrrp_startup_delay over: every instance leaves INIT.
    pub(super) fn delayed_start_due(&mut self, now: Micros) {
        if self.delayed_start.is_some_and(|t| now >= t) {
            self.delayed_start = None;
            for idx in 0..self.insts.len() {
                let actions = self.insts[idx].sm.start(now);
                self.apply(idx, actions, now);
            }
        }
    }

    pub(super) fn shutdown(&mut self) {
        let now = self.now();
        log::info!("Stopping");
        for idx in 0..self.insts.len() {
            let actions = self.insts[idx].sm.shutdown(now);
            self.apply(idx, actions, now);
            let i = &self.insts[idx];
            log::info!("{}", counters_line(&i.cfg.name, &i.stats));
            if let Some((_, index)) = self.insts[idx].vmac.clone() {
                let _ = self.nl.delete_link(index);
            }
        }
        self.remove_statics();
        for ifname in std::mem::take(&mut self.promoted) {
            super::instance::set_promote_secondaries(&ifname, false);
        }
        self.stop_tasks();
    }
}
