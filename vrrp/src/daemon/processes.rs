//! `track_process` in the engine: the scanner thread's counts become each tracked process's
//! up/down state (with its delays), which tracking turns into priority or FAULT.

use super::*;
use crate::process_track;

impl Engine {
    /// (Re)starts the scanner for the processes instances and sync groups track; stops it when
    /// none are (dropping the receiver ends the thread).
    pub(super) fn start_process_tracking(&mut self, cfg: &KeepalivedConfig) {
        let mut used: Vec<String> = self
            .insts
            .iter()
            .flat_map(|i| i.cfg.track_processes.iter().map(|t| t.name.clone()))
            .collect();
        for g in &cfg.sync_groups {
            used.extend(g.track_processes.iter().map(|t| t.name.clone()));
        }
        let tracked: Vec<_> = cfg
            .track_processes
            .iter()
            .filter(|t| used.contains(&t.name) && t.process.is_some())
            .cloned()
            .collect();
        self.processes
            .retain(|name, _| tracked.iter().any(|t| &t.name == name));
        for t in &tracked {
            self.processes.entry(t.name.clone()).or_default();
        }
        self.proc_counts = None;
        if tracked.is_empty() {
            self.proc_rx = None;
            return;
        }
        // The first look is synchronous (keepalived reads /proc at start too), so instances
        // do not start in FAULT for want of it.
        let need_cmdline = tracked.iter().any(|t| t.full_command);
        let first = process_track::counts(&tracked, &process_track::scan(need_cmdline));
        self.process_counts(first);
        self.proc_rx = Some(process_track::watch(tracked));
    }

    /// New counts from the scanner; true when a tracked process went up or down.
    pub(super) fn process_counts(&mut self, counts: HashMap<String, usize>) -> bool {
        let now = self.now();
        let first = self.proc_counts.is_none();
        let mut changed = false;
        for t in &self.config.track_processes {
            let (Some(st), Some(&n)) = (self.processes.get_mut(&t.name), counts.get(&t.name))
            else {
                continue;
            };
            if st.observe(t, process_track::quorum_met(t, n), now, first) {
                log::info!(
                    "Quorum {} for tracked process {}",
                    if st.up { "gained" } else { "lost" },
                    t.name
                );
                changed = true;
            }
        }
        self.proc_counts = Some(counts);
        changed
    }

    /// Delayed changes that are now due; true when one applied.
    pub(super) fn process_delays(&mut self) -> bool {
        let now = self.now();
        let mut changed = false;
        for (name, st) in self.processes.iter_mut() {
            if st.tick(now) {
                log::info!(
                    "Quorum {} for tracked process {name}",
                    if st.up { "gained" } else { "lost" }
                );
                changed = true;
            }
        }
        changed
    }
}
