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
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A real server's new state (its up/down or its weight changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealEvent {
    /// Its virtual server.
    pub vs: VsKey,
    /// The real server.
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
    /// The keyword of the checker that caused it (`TCP_CHECK`…; empty for a reload).
    pub checker: &'static str,
    /// Retries that checker made before this verdict.
    pub retries: u32,
    /// Only this: a checker's first success on a real already up (nothing changed; keepalived
    /// logs the success all the same).
    pub first: bool,
}

/// The last probe of one real server's checkers (for metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastProbe {
    /// Its virtual server.
    pub vs: VsKey,
    /// The real server.
    pub real: RealKey,
    /// Which checker probed (its keyword).
    pub checker: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// How long it took.
    pub latency: Duration,
}

/// One probe's result (for [`Supervisor::spawn_with_probe_log`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeLog {
    /// Its virtual server.
    pub vs: VsKey,
    /// The real server.
    pub real: RealKey,
    /// Whether it passed.
    pub ok: bool,
    /// Why, as keepalived would log it.
    pub reason: String,
}

/// The current state of one real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealStatus {
    /// Its virtual server.
    pub vs: VsKey,
    /// The real server.
    pub real: RealKey,
    /// Every checker is up.
    pub up: bool,
    /// Its weight now.
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
    /// Checkers restarted with new timing, keeping their state.
    pub retimed: usize,
    /// Checkers started (new in the configuration).
    pub started: usize,
    /// Checkers stopped (gone from the configuration).
    pub stopped: usize,
}

/// How long a notify_up/notify_down script may run before its process
/// group is killed (keepalived has no limit; a hung script must not pile up).
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(60);
/// keepalived's BOOTSTRAP_DELAY: time from a checker's start to its first probe (besides
/// the random warmup).
pub const BOOTSTRAP_DELAY: Duration = Duration::from_secs(1);
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
    /// SMTP alerts for this real (its `smtp_alert`, else its virtual server's, else the
    /// global `smtp_alert_checker` / `smtp_alert`), and the names keepalived puts in the
    /// subject.
    alert: Option<RealAlert>,
}

struct RealAlert {
    mailer: Arc<keepalived_scripts::smtp::Mailer>,
    rs: String,
    vs: String,
    /// `no_checker_emails`: only when the real itself changes state.
    only_real_changes: bool,
}

#[derive(Default)]
struct State {
    reals: BTreeMap<(VsKey, RealKey), RealEntry>,
    /// `ha_suspend` services: their checkers run only while this is set
    /// (the VIP is on this host).
    active: BTreeMap<VsKey, Arc<AtomicBool>>,
    next_id: CheckerId,
    warnings: Vec<String>,
}

struct Inner {
    /// Events in the order the state changed; a forwarder task moves them
    /// to the caller's channel, so no lock is held while that one is full
    /// (the caller may call `reload` while not reading events).
    events: mpsc::UnboundedSender<RealEvent>,
    probe_log: Option<mpsc::UnboundedSender<ProbeLog>>,
    state: Mutex<State>,
    /// Every real's last probe; a plain mutex held for one insert, never across an await.
    last_probes: std::sync::Mutex<BTreeMap<(VsKey, RealKey), LastProbe>>,
    /// The BFD thread's session states (name → up), for BFD_CHECK.
    bfd: Option<watch::Receiver<BfdStates>>,
}

/// BFD session states as the BFD thread publishes them.
pub type BfdStates = std::collections::BTreeMap<String, bool>;

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
        Self::spawn_with_probe_log(config, tx, None).await
    }

    /// Like [`Supervisor::spawn`], and every probe's result is also sent
    /// to `probe_log` (keepalived's `log_all_failures`, for every checker).
    pub async fn spawn_with_probe_log(
        config: &KeepalivedConfig,
        tx: mpsc::Sender<RealEvent>,
        probe_log: Option<mpsc::UnboundedSender<ProbeLog>>,
    ) -> Supervisor {
        Self::spawn_full(config, tx, probe_log, None).await
    }

    /// Like [`Supervisor::spawn`]; BFD_CHECK checkers follow the sessions in `bfd` (without
    /// it they keep their starting state).
    pub async fn spawn_with_bfd(
        config: &KeepalivedConfig,
        tx: mpsc::Sender<RealEvent>,
        bfd: Option<watch::Receiver<BfdStates>>,
    ) -> Supervisor {
        Self::spawn_full(config, tx, None, bfd).await
    }

    async fn spawn_full(
        config: &KeepalivedConfig,
        tx: mpsc::Sender<RealEvent>,
        probe_log: Option<mpsc::UnboundedSender<ProbeLog>>,
        bfd: Option<watch::Receiver<BfdStates>>,
    ) -> Supervisor {
        let (events, mut queue) = mpsc::unbounded_channel::<RealEvent>();
        tokio::spawn(async move {
            while let Some(ev) = queue.recv().await {
                if tx.send(ev).await.is_err() {
                    break;
                }
            }
        });
        let sup = Supervisor {
            inner: Arc::new(Inner {
                events,
                probe_log,
                state: Mutex::new(State::default()),
                last_probes: Default::default(),
                bfd,
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

    /// `ha_suspend`: tells whether the service's VIP is present on this
    /// host. Checkers of an ha_suspend service start suspended (keeping
    /// their state, probing nothing) until this says the VIP is here, as
    /// keepalived does from its netlink view of the addresses. Returns
    /// false when `vs` has no ha_suspend.
    pub async fn set_vip_present(&self, vs: &VsKey, present: bool) -> bool {
        let st = self.inner.state.lock().await;
        match st.active.get(vs) {
            Some(flag) => {
                flag.store(present, Ordering::Relaxed);
                true
            }
            None => false,
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

    /// The last probe of every real server that has been probed (latency, result).
    pub fn last_probes(&self) -> Vec<LastProbe> {
        let known = self
            .inner
            .last_probes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        known.values().cloned().collect()
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
        let mut old_active = std::mem::take(&mut st.active);
        let mailer = keepalived_scripts::smtp::Mailer::from_config(config);
        for vs in &config.virtual_servers {
            let vkey = VsKey::of(vs);
            let active = vs.ha_suspend.then(|| {
                let flag = old_active
                    .remove(&vkey)
                    .unwrap_or_else(|| Arc::new(AtomicBool::new(false)));
                st.active.insert(vkey.clone(), flag.clone());
                flag
            });
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
                    alert: None,
                });
                entry.agg.set_base_weight(rs.weight);
                entry.alert = mailer
                    .as_ref()
                    .filter(|_| {
                        keepalived_scripts::smtp::checker_alert(
                            config,
                            vs.smtp_alert,
                            rs.smtp_alert,
                        )
                    })
                    .map(|m| RealAlert {
                        mailer: m.clone(),
                        rs: rkey.trio(&vkey),
                        vs: vkey.to_string(),
                        only_real_changes: config.global.extra_flag("no_checker_emails"),
                    });
                entry.notify_up = rs.notify_up.clone();
                entry.notify_down = rs.notify_down.clone();
                let mut previous = std::mem::take(&mut entry.checkers);
                for c in rs.checkers.iter().flat_map(crate::build::expand) {
                    let spec = CheckerSpec::new(config, vs, rs, &c);
                    // Unchanged checker: keep it (and its state) running.
                    if let Some(i) = previous.iter().position(|r| r.spec == spec) {
                        entry.checkers.push(previous.swap_remove(i));
                        report.kept += 1;
                        continue;
                    }
                    // Only its timing changed: restart it in its current state.
                    if let Some(i) = previous
                        .iter()
                        .position(|r| r.task.is_some() && r.spec.same_probe(&spec))
                    {
                        let old = previous.swap_remove(i);
                        if let Some(t) = old.task {
                            t.abort();
                        }
                        let up = entry.agg.checker_up(old.id);
                        match spec.build(&vkey, &rkey) {
                            Ok(built) => {
                                let task = self.start(
                                    &mut entry.agg,
                                    old.id,
                                    &k,
                                    built,
                                    up,
                                    active.clone(),
                                );
                                entry.checkers.push(Running {
                                    id: old.id,
                                    spec,
                                    task: Some(task),
                                });
                                report.retimed += 1;
                            }
                            Err(w) => {
                                st.warnings.push(w);
                                entry.agg.remove_checker(old.id);
                                entry.checkers.push(Running {
                                    id: old.id,
                                    spec,
                                    task: None,
                                });
                            }
                        }
                        continue;
                    }
                    report.started += 1;
                    let id = st.next_id;
                    st.next_id += 1;
                    match spec.build(&vkey, &rkey) {
                        Ok(built) => {
                            let task =
                                self.start(&mut entry.agg, id, &k, built, None, active.clone());
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
                            checker: "",
                            retries: 0,
                            first: false,
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
            let _ = self.inner.events.send(ev);
        }
        let mut known = self
            .inner
            .last_probes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        known.retain(|k, _| st.reals.contains_key(k));
        report
    }

    /// Registers the checker with its initial state and starts its task.
    /// `resume`: the state of the checker this one replaces (reload).
    fn start(
        &self,
        agg: &mut RealAgg,
        id: CheckerId,
        k: &(VsKey, RealKey),
        built: Built,
        resume: Option<bool>,
        active: Option<Arc<AtomicBool>>,
    ) -> JoinHandle<()> {
        let inner = self.inner.clone();
        let k = k.clone();
        if let Probe::Bfd(name) = built.probe {
            // BFD_CHECK: up unless alpha, then as its session goes.
            let up = resume.unwrap_or(!built.timing.alpha);
            agg.add_checker(id, up);
            return tokio::spawn(bfd_task(inner, k, id, name));
        }
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
                let fsm = match resume {
                    Some(up) => Fsm::resume(style, built.timing, up),
                    None => Fsm::new(style, built.timing),
                };
                agg.add_checker(id, fsm.is_up());
                tokio::spawn(checker_task(
                    inner,
                    k,
                    id,
                    built.probe,
                    fsm,
                    built.warmup,
                    active.map(|a| (a, built.timing.delay_loop)),
                ))
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
    /// The SMTP alert body keepalived's checker of this kind sends when it reports `up`,
    /// and whether it sends one on every report (MISC_CHECK) rather than on changes only.
    fn alert_body(&self, up: bool, o: &Outcome) -> Option<(bool, String)> {
        use keepalived_scripts::smtp::bodies as b;
        let pick = |u: &str, d: &str| if up { u.to_string() } else { d.to_string() };
        Some(match self {
            Probe::Tcp(_) => (false, pick(b::TCP_UP, b::TCP_DOWN)),
            Probe::Http(_) => (false, pick(b::HTTP_UP, b::HTTP_DOWN)),
            Probe::Misc(_) => (true, pick(b::MISC_UP, b::MISC_DOWN)),
            Probe::Udp(_) => (false, pick(b::UDP_UP, b::UDP_DOWN)),
            Probe::Ping(_) => (false, pick(b::PING_UP, b::PING_DOWN)),
            Probe::Dns(_) => (false, pick(b::DNS_UP, b::DNS_DOWN)),
            Probe::Smtp(_) => (
                false,
                if up {
                    b::SMTP_UP.to_string()
                } else {
                    b::smtp_down(&o.reason)
                },
            ),
            Probe::File(_) | Probe::Bfd(_) => return None,
        })
    }

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
    suspend: Option<(Arc<AtomicBool>, Duration)>,
) {
    // keepalived starts a checker BOOTSTRAP_DELAY (1 s) plus a random part of `warmup` after
    // it is registered: the reals are programmed first, and checks are spread out.
    let w = warmup.mul_f64(rand::random::<f64>());
    tokio::time::sleep(BOOTSTRAP_DELAY + w).await;
    loop {
        // ha_suspend without the VIP: no probe, state kept, look again
        // after delay_loop (keepalived's disabled checker).
        if let Some((active, delay_loop)) = &suspend {
            if !active.load(Ordering::Relaxed) {
                tokio::time::sleep((*delay_loop).max(Duration::from_millis(1))).await;
                continue;
            }
        }
        let started = Instant::now();
        let first = !fsm.has_run();
        let outcome = probe.run(fsm.url()).await;
        inner.record_probe(&k, probe.keyword(), outcome.ok, started.elapsed());
        let step = fsm.on_result(outcome.ok);
        if let Some(log) = &inner.probe_log {
            let _ = log.send(ProbeLog {
                vs: k.0.clone(),
                real: k.1,
                ok: outcome.ok,
                reason: outcome.reason.clone(),
            });
        }
        // Most probes change nothing: only lock the shared state when the
        // checker's state or a weight may change.
        if step.report.is_some() || outcome.dynamic_weight.is_some() {
            let why = Why {
                checker: probe.keyword(),
                retries: step.retries,
                first: first && step.report.is_some(),
            };
            let body = step.report.and_then(|up| probe.alert_body(up, &outcome));
            inner.report(&k, id, &outcome, step.report, why, body).await;
        }
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
        let why = Why {
            checker: probe.keyword(),
            retries: 0,
            first: false,
        };
        inner.report(&k, id, &now, report, why, None).await;
        last = Some(now);
    }
}

/// Which checker reported, and after how many retries.
struct Why {
    checker: &'static str,
    retries: u32,
    first: bool,
}

/// BFD_CHECK: the checker follows its BFD session's state (keepalived's
/// `bfd_check_handle_event`), from the first state the BFD thread publishes on; the BFD
/// thread gone means down.
async fn bfd_task(inner: Arc<Inner>, k: (VsKey, RealKey), id: CheckerId, name: String) {
    let Some(mut rx) = inner.bfd.clone() else {
        return std::future::pending().await;
    };
    loop {
        let up = rx.borrow_and_update().get(&name).copied().unwrap_or(false);
        inner.bfd_event(&k, id, &name, up).await;
        if rx.changed().await.is_err() {
            inner.bfd_event(&k, id, &name, false).await;
            return;
        }
    }
}

impl Inner {
    fn record_probe(
        &self,
        k: &(VsKey, RealKey),
        checker: &'static str,
        ok: bool,
        latency: Duration,
    ) {
        let mut known = self.last_probes.lock().unwrap_or_else(|e| e.into_inner());
        known.insert(
            k.clone(),
            LastProbe {
                vs: k.0.clone(),
                real: k.1,
                checker,
                ok,
                latency,
            },
        );
    }

    async fn bfd_event(&self, k: &(VsKey, RealKey), id: CheckerId, name: &str, up: bool) {
        {
            let st = self.state.lock().await;
            let Some(e) = st.reals.get(k) else { return };
            if e.agg.checker_up(id) == Some(up) {
                return;
            }
        }
        // keepalived's log line; the daemon logs it when the real changes.
        let o = Outcome {
            ok: up,
            reason: format!(
                "BFD check of [{name}] RS({}) is {}",
                k.1.trio(&k.0),
                if up { "UP" } else { "DOWN" }
            ),
            dynamic_weight: None,
            weight_delta: None,
        };
        let body = keepalived_scripts::smtp::bodies::bfd(name, up);
        let why = Why {
            checker: "BFD_CHECK",
            retries: 0,
            first: false,
        };
        self.report(k, id, &o, Some(up), why, Some((false, body)))
            .await;
    }

    /// A checker's result: `state` when its FSM reports one, `alert` the body of the SMTP
    /// alert keepalived's checker of that kind sends for it (`(misc, body)`: MISC_CHECK
    /// alerts on every report, the others only when the checker's state changes).
    async fn report(
        &self,
        k: &(VsKey, RealKey),
        id: CheckerId,
        o: &Outcome,
        state: Option<bool>,
        why: Why,
        alert: Option<(bool, String)>,
    ) {
        let mut st = self.state.lock().await;
        let Some(e) = st.reals.get_mut(k) else { return };
        if !e.agg.has_checker(id) {
            return;
        }
        let was_up = e.agg.checker_up(id);
        let was_alive = e.agg.published().0;
        if let Some(w) = o.dynamic_weight {
            e.agg.set_dynamic_weight(w);
        }
        if let Some(d) = o.weight_delta {
            e.agg.set_weight_delta(id, d);
        }
        if let Some(up) = state {
            e.agg.set_checker(id, up);
        }
        let published = e.agg.publish();
        if let (Some(up), Some((misc, body)), Some(a)) = (state, alert, &e.alert) {
            let alive = e.agg.published().0;
            if (misc || was_up != Some(up)) && (alive != was_alive || !a.only_real_changes) {
                let about = keepalived_scripts::smtp::About::Real {
                    rs: &a.rs,
                    vs: &a.vs,
                };
                a.mailer
                    .send(&about, if alive { "UP" } else { "DOWN" }, &body);
            }
        }
        if published.is_none() && why.first && state == Some(true) {
            // Nothing changed for the real, but keepalived logs a checker's first success.
            let (up, weight) = e.agg.published();
            let _ = self.events.send(RealEvent {
                vs: k.0.clone(),
                real: k.1,
                up,
                weight,
                transition: false,
                reason: o.reason.clone(),
                checker: why.checker,
                retries: why.retries,
                first: true,
            });
            return;
        }
        let Some(c) = published else { return };
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
            checker: why.checker,
            retries: why.retries,
            first: false,
        };
        // Queued under the lock so that a real's events keep their order.
        let _ = self.events.send(ev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// MISC_CHECK-only configurations: no packet is sent.
    fn conf(dir: &std::path::Path, delay: f64, extra: &str) -> KeepalivedConfig {
        let text = format!(
            "virtual_server 198.18.0.1 80 {{\n protocol TCP\n delay_loop {delay}\n\
             real_server 198.18.0.2 80 {{ MISC_CHECK {{ misc_path {d}/fail.sh\n warmup 0 }} }}\n\
             real_server 198.18.0.3 80 {{ weight 4\n MISC_CHECK {{ misc_path {d}/dyn.sh\n misc_dynamic\n alpha\n warmup 0 }} }}\n\
             {extra}}}\n",
            d = dir.display()
        );
        keepalived_conf::parse_str(&text, "t", &Default::default()).config
    }

    fn script(dir: &std::path::Path, name: &str, body: &str) {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    async fn next(rx: &mut mpsc::Receiver<RealEvent>) -> RealEvent {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("no event within 5 s")
            .unwrap()
    }

    #[tokio::test]
    async fn reload_keeps_state_of_kept_and_retimed_checkers() {
        let dir = std::env::temp_dir().join(format!("hc-sup-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        script(&dir, "fail.sh", "exit 1");
        script(&dir, "dyn.sh", "exit 9");
        let (tx, mut rx) = mpsc::channel(64);
        let sup = Supervisor::spawn(&conf(&dir, 0.2, ""), tx).await;
        let init = sup.snapshot().await;
        assert_eq!(init.len(), 2);
        assert!(init[0].up, "no alpha: starts up");
        assert!(!init[1].up, "alpha: starts down");

        let mut seen = Vec::new();
        while seen.len() < 2 {
            let ev = next(&mut rx).await;
            seen.push((ev.real.addr.to_string(), ev.up, ev.weight, ev.transition));
        }
        seen.sort();
        assert_eq!(
            seen,
            vec![
                ("198.18.0.2".into(), false, 1, true),
                // misc_dynamic exit 9 → up with weight 7.
                ("198.18.0.3".into(), true, 7, true),
            ]
        );

        // Same checkers: kept. New delay_loop: restarted in their state.
        let r = sup.reload(&conf(&dir, 0.2, "")).await;
        assert_eq!((r.kept, r.retimed, r.started, r.stopped), (2, 0, 0, 0));
        let r = sup.reload(&conf(&dir, 0.3, "")).await;
        assert_eq!((r.kept, r.retimed, r.started, r.stopped), (0, 2, 0, 0));
        let s = sup.snapshot().await;
        assert!(!s[0].up && s[1].up && s[1].weight == 7, "{s:?}");
        // Nothing flaps after the reload.
        assert!(
            tokio::time::timeout(Duration::from_millis(800), rx.recv())
                .await
                .is_err()
        );

        // A new real is reported in the reload report; a removed one too.
        let r = sup
            .reload(&conf(&dir, 0.3, "real_server 198.18.0.4 80 { }\n"))
            .await;
        assert_eq!(r.added.len(), 1);
        assert!(r.added[0].up);
        let r = sup.reload(&conf(&dir, 0.3, "")).await;
        assert_eq!(r.removed.len(), 1);

        // The dynamic weight follows the exit code; 1 is down.
        script(&dir, "dyn.sh", "exit 1");
        let ev = next(&mut rx).await;
        assert_eq!((ev.up, ev.transition), (false, true));
        sup.shutdown().await;
        assert!(sup.snapshot().await.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn ha_suspend_checks_only_while_the_vip_is_present() {
        let dir = std::env::temp_dir().join(format!("hc-sus-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        script(&dir, "fail.sh", "exit 1");
        let text = format!(
            "virtual_server 198.18.0.1 80 {{ protocol TCP\n delay_loop 0.1\n ha_suspend\n\
             real_server 198.18.0.2 80 {{ MISC_CHECK {{ misc_path {}/fail.sh\n warmup 0 }} }} }}\n",
            dir.display()
        );
        let cfg = keepalived_conf::parse_str(&text, "t", &Default::default()).config;
        let (tx, mut rx) = mpsc::channel(8);
        let sup = Supervisor::spawn(&cfg, tx).await;
        let vs = VsKey::of(&cfg.virtual_servers[0]);
        // Suspended: the failing script is not run, the real stays up.
        assert!(
            tokio::time::timeout(Duration::from_millis(600), rx.recv())
                .await
                .is_err()
        );
        assert!(sup.set_vip_present(&vs, true).await);
        let ev = next(&mut rx).await;
        assert!(!ev.up);
        let other = VsKey {
            protocol: "UDP",
            ..vs.clone()
        };
        assert!(!sup.set_vip_present(&other, true).await);
        sup.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn reload_does_not_wait_for_a_reader_of_events() {
        let dir = std::env::temp_dir().join(format!("hc-full-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        script(&dir, "fail.sh", "exit 1");
        let reals: String = (2..6)
            .map(|i| {
                format!(
                    "real_server 198.18.0.{i} 80 {{ MISC_CHECK {{ misc_path {}/fail.sh\n warmup 0 }} }}\n",
                    dir.display()
                )
            })
            .collect();
        let text =
            format!("virtual_server 198.18.0.1 80 {{ protocol TCP\n delay_loop 0.1\n{reals}}}\n");
        let cfg = keepalived_conf::parse_str(&text, "t", &Default::default()).config;
        // Room for one event; four reals go down; nobody reads yet.
        let (tx, mut rx) = mpsc::channel(1);
        let sup = Supervisor::spawn(&cfg, tx).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let r = tokio::time::timeout(Duration::from_secs(2), sup.reload(&cfg))
            .await
            .expect("reload blocked by a full event channel");
        assert_eq!(r.kept, 4);
        let mut down = 0;
        while down < 4 {
            assert!(!next(&mut rx).await.up);
            down += 1;
        }
        sup.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
