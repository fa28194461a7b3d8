//! Runs every checker of a configuration as a tokio task, combines their
//! results per real server and reports the real servers' changes.

use crate::aggregate::{CheckerId, RealAgg};
use crate::build::{Built, CheckerSpec};
use crate::key::{RealKey, VsKey};
use crate::probe::{Outcome, Probe};
use crate::script::run_script;
use crate::timing::Fsm;
use keepalived_conf::model::{KeepalivedConfig, Script};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A real server's new state (its up/down or its weight changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealEvent {
    pub vs: VsKey,
    pub real: RealKey,
    /// All its checkers are up (a real without checkers is always up).
    pub up: bool,
    /// The weight to program: the configured one, or as set by
    /// `misc_dynamic` / FILE_CHECK.
    pub weight: i32,
    /// `up` changed (false: only the weight changed).
    pub transition: bool,
    /// The checker result that caused it, in keepalived's words.
    pub reason: String,
}

/// The current state of one real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealStatus {
    pub vs: VsKey,
    pub real: RealKey,
    pub up: bool,
    pub weight: i32,
    /// Checkers running for it.
    pub checkers: usize,
}

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Reals that did not exist before, with their initial state.
    pub added: Vec<RealStatus>,
    /// Reals that no longer exist (their checkers are stopped).
    pub removed: Vec<(VsKey, RealKey)>,
    /// Checkers kept running with their state.
    pub kept: usize,
    pub started: usize,
    pub stopped: usize,
}

/// How long a notify_up/notify_down script may run before its process
/// group is killed (keepalived has no limit; a hung script must not pile up).
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(60);
/// FILE_CHECK polling period (keepalived uses inotify).
pub const FILE_POLL: Duration = Duration::from_millis(200);

struct Running {
    id: CheckerId,
    spec: CheckerSpec,
    task: Option<JoinHandle<()>>,
}

struct RealEntry {
    agg: RealAgg,
    notify_up: Option<Script>,
    notify_down: Option<Script>,
    checkers: Vec<Running>,
}

#[derive(Default)]
struct State {
    reals: BTreeMap<(VsKey, RealKey), RealEntry>,
    next_id: CheckerId,
    warnings: Vec<String>,
}

struct Inner {
    tx: mpsc::Sender<RealEvent>,
    state: Mutex<State>,
}

/// The running health checkers of one configuration.
///
/// Must be created inside a tokio runtime. Dropping it does not stop the
/// checkers: call [`Supervisor::shutdown`].
pub struct Supervisor {
    inner: Arc<Inner>,
}

impl Supervisor {
    /// Starts one task per checker of every real server of every virtual
    /// server (sorry servers have no checkers). Changes of the reals'
    /// states are sent to `tx`; the initial states are in
    /// [`Supervisor::snapshot`] (up, unless a checker has `alpha`).
    pub async fn spawn(config: &KeepalivedConfig, tx: mpsc::Sender<RealEvent>) -> Supervisor {
        let sup = Supervisor {
            inner: Arc::new(Inner {
                tx,
                state: Mutex::new(State::default()),
            }),
        };
        sup.apply(config, false).await;
        sup
    }

    /// Applies a new configuration: checkers whose settings did not change
    /// keep running with their state (no flap), the others are stopped or
    /// started. Reals whose state changes (e.g. a new alpha checker, a new
    /// weight) are reported on the channel.
    pub async fn reload(&self, config: &KeepalivedConfig) -> ReloadReport {
        self.apply(config, true).await
    }

    /// Stops every checker (running scripts are killed).
    pub async fn shutdown(&self) {
        let mut st = self.inner.state.lock().await;
        for (_, e) in std::mem::take(&mut st.reals) {
            for r in e.checkers {
                if let Some(t) = r.task {
                    t.abort();
                }
            }
        }
    }

    /// The state of every real server now.
    pub async fn snapshot(&self) -> Vec<RealStatus> {
        let st = self.inner.state.lock().await;
        st.reals
            .iter()
            .map(|((vs, real), e)| {
                let (up, weight) = e.agg.published();
                RealStatus {
                    vs: vs.clone(),
                    real: *real,
                    up,
                    weight,
                    checkers: e.checkers.len(),
                }
            })
            .collect()
    }

    /// Messages about checkers that were not started (unsupported, script
    /// not found, invalid regex…), since the last call.
    pub async fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut self.inner.state.lock().await.warnings)
    }

    async fn apply(&self, config: &KeepalivedConfig, reload: bool) -> ReloadReport {
        let mut st = self.inner.state.lock().await;
        let mut old = std::mem::take(&mut st.reals);
        let mut events = Vec::new();
        let mut report = ReloadReport::default();
        for vs in &config.virtual_servers {
            let vkey = VsKey::of(vs);
            for rs in &vs.real_servers {
                let rkey = RealKey::of(rs);
                let k = (vkey.clone(), rkey);
                if st.reals.contains_key(&k) {
                    st.warnings.push(format!(
                        "real server {rkey} of {vkey} is configured twice - ignoring"
                    ));
                    continue;
                }
                let existed = old.contains_key(&k);
                let mut entry = old.remove(&k).unwrap_or_else(|| RealEntry {
                    agg: RealAgg::new(rs.weight),
                    notify_up: None,
                    notify_down: None,
                    checkers: Vec::new(),
                });
                entry.agg.set_base_weight(rs.weight);
                entry.notify_up = rs.notify_up.clone();
                entry.notify_down = rs.notify_down.clone();
                let mut previous = std::mem::take(&mut entry.checkers);
                for c in &rs.checkers {
                    let spec = CheckerSpec::new(config, vs, rs, c);
                    // Unchanged checker: keep it (and its state) running.
                    if let Some(i) = previous.iter().position(|r| r.spec == spec) {
                        entry.checkers.push(previous.swap_remove(i));
                        report.kept += 1;
                        continue;
                    }
                    report.started += 1;
                    let id = st.next_id;
                    st.next_id += 1;
                    match spec.build(&vkey, &rkey) {
                        Ok(built) => {
                            let task = self.start(&mut entry.agg, id, &k, built);
                            entry.checkers.push(Running {
                                id,
                                spec,
                                task: Some(task),
                            });
                        }
                        Err(w) => {
                            // Disabled like keepalived: it does not count.
                            st.warnings.push(w);
                            entry.checkers.push(Running {
                                id,
                                spec,
                                task: None,
                            });
                        }
                    }
                }
                report.stopped += previous.len();
                for r in previous {
                    stop(&mut entry.agg, r);
                }
                let change = entry.agg.publish();
                if !existed {
                    let (up, weight) = entry.agg.published();
                    report.added.push(RealStatus {
                        vs: vkey.clone(),
                        real: rkey,
                        up,
                        weight,
                        checkers: entry.checkers.len(),
                    });
                } else if reload {
                    if let Some(c) = change {
                        events.push(RealEvent {
                            vs: vkey.clone(),
                            real: rkey,
                            up: c.up,
                            weight: c.weight,
                            transition: c.transition,
                            reason: "configuration reloaded".into(),
                        });
                    }
                }
                st.reals.insert(k, entry);
            }
        }
        for (k, e) in old {
            report.stopped += e.checkers.len();
            report.removed.push(k);
            for r in e.checkers {
                if let Some(t) = r.task {
                    t.abort();
                }
            }
        }
        for ev in events {
            let _ = self.inner.tx.send(ev).await;
        }
        report
    }

    /// Registers the checker with its initial state and starts its task.
    fn start(
        &self,
        agg: &mut RealAgg,
        id: CheckerId,
        k: &(VsKey, RealKey),
        built: Built,
    ) -> JoinHandle<()> {
        let inner = self.inner.clone();
        let k = k.clone();
        match built.style {
            None => {
                // FILE_CHECK: its state is known at once (no alpha).
                let first = built.probe.run_sync();
                agg.add_checker(id, first.as_ref().map(|o| o.ok).unwrap_or(true));
                if let Some(d) = first.as_ref().and_then(|o| o.weight_delta) {
                    agg.set_weight_delta(id, d);
                }
                tokio::spawn(file_task(inner, k, id, built.probe, first))
            }
            Some(style) => {
                let fsm = Fsm::new(style, built.timing);
                agg.add_checker(id, fsm.is_up());
                tokio::spawn(checker_task(inner, k, id, built.probe, fsm, built.warmup))
            }
        }
    }
}

fn stop(agg: &mut RealAgg, r: Running) {
    if let Some(t) = r.task {
        t.abort();
    }
    agg.remove_checker(r.id);
}

impl Probe {
    /// FILE_CHECK's synchronous read (None for other probes).
    fn run_sync(&self) -> Option<Outcome> {
        match self {
            Probe::File(p) => Some(p.run()),
            _ => None,
        }
    }
}

async fn checker_task(
    inner: Arc<Inner>,
    k: (VsKey, RealKey),
    id: CheckerId,
    probe: Probe,
    mut fsm: Fsm,
    warmup: Duration,
) {
    // keepalived spreads the first checks over `warmup` (random).
    if !warmup.is_zero() {
        let w = warmup.mul_f64(rand::random::<f64>());
        tokio::time::sleep(w).await;
    }
    loop {
        let started = Instant::now();
        let outcome = probe.run(fsm.url()).await;
        let step = fsm.on_result(outcome.ok);
        inner.report(&k, id, &outcome, step.report).await;
        let next = if matches!(probe, Probe::Misc(_)) {
            // MISC_CHECK: the next run is timed from this run's start.
            started + step.next
        } else {
            Instant::now() + step.next
        };
        tokio::time::sleep_until(next).await;
    }
}

async fn file_task(
    inner: Arc<Inner>,
    k: (VsKey, RealKey),
    id: CheckerId,
    probe: Probe,
    first: Option<Outcome>,
) {
    let mut last = first;
    loop {
        tokio::time::sleep(FILE_POLL).await;
        let Some(now) = probe.run_sync() else { return };
        if last.as_ref() == Some(&now) {
            continue;
        }
        let report = Some(now.ok);
        inner.report(&k, id, &now, report).await;
        last = Some(now);
    }
}

impl Inner {
    async fn report(&self, k: &(VsKey, RealKey), id: CheckerId, o: &Outcome, state: Option<bool>) {
        let mut st = self.state.lock().await;
        let Some(e) = st.reals.get_mut(k) else { return };
        if !e.agg.has_checker(id) {
            return;
        }
        if let Some(w) = o.dynamic_weight {
            e.agg.set_dynamic_weight(w);
        }
        if let Some(d) = o.weight_delta {
            e.agg.set_weight_delta(id, d);
        }
        if let Some(up) = state {
            e.agg.set_checker(id, up);
        }
        let Some(c) = e.agg.publish() else { return };
        let script = match (c.transition, c.up) {
            (true, true) => e.notify_up.clone(),
            (true, false) => e.notify_down.clone(),
            _ => None,
        };
        if let Some(s) = script {
            tokio::spawn(async move {
                let _ = run_script(&s, Some(NOTIFY_TIMEOUT)).await;
            });
        }
        let ev = RealEvent {
            vs: k.0.clone(),
            real: k.1,
            up: c.up,
            weight: c.weight,
            transition: c.transition,
            reason: o.reason.clone(),
        };
        // Sent under the lock so that a real's events keep their order.
        let _ = self.tx.send(ev).await;
    }
}
