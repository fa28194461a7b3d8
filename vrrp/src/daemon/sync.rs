use super::*;

impl Engine {
    /// A sync group goes MASTER only when no member still hears a master.
    pub(super) fn group_holds_back(&self, idx: usize, now: Micros) -> bool {
        let Some(g) = self.insts[idx].cfg.sync_group.as_deref() else {
            return false;
        };
        self.insts.iter().enumerate().any(|(j, i)| {
            j != idx && i.cfg.sync_group.as_deref() == Some(g) && i.sm.hears_master(now)
        })
    }

    /// Once every member of the instance's sync group is in the same state, the group's
    /// notify scripts run (`notify` gets `GROUP NAME STATE 0`, as keepalived passes).
    pub(super) fn group_notify(&mut self, idx: usize) {
        let Some(g) = self.insts[idx].cfg.sync_group.clone() else {
            return;
        };
        let mut states = self
            .insts
            .iter()
            .filter(|i| i.cfg.sync_group.as_deref() == Some(&g))
            .map(|i| i.sm.state());
        let Some(first) = states.next() else { return };
        if states.any(|s| s != first) || self.group_state.get(&g) == Some(&first) {
            return;
        }
        self.group_state.insert(g.clone(), first);
        let word = if first == State::Init {
            "STOP"
        } else {
            first.keyword()
        };
        if let Some(def) = self.config.sync_groups.iter().find(|s| s.name == g) {
            let n = &def.notify;
            let specific = match first {
                State::Master => &n.notify_master,
                State::Backup => &n.notify_backup,
                State::Fault => &n.notify_fault,
                State::Init => &n.notify_stop,
            };
            self.effects.notify_scripts(
                specific.as_ref(),
                n.notify.as_ref(),
                vec!["GROUP".into(), g.clone(), word.into(), "0".into()],
            );
        }
        self.effects
            .push(Effect::FifoLine(notify::fifo_line("GROUP", &g, word, 0)));
        self.mail_group(&g, word);
    }
}
