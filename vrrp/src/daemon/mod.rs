//! The VRRP daemon: the state machines of every instance on real sockets, VIPs through
//! netlink, GARPs, notify scripts, tracking. One task owns everything; socket readers and
//! script checkers are small tasks feeding it through channels.
//!
//! Split along keepalived's own seams: `instance` (sockets, adverts in and out, as
//! vrrp.c), `transition` (state changes and what they trigger, vrrp_scheduler.c), `sync`
//! (sync groups, vrrp_sync.c), `addresses` (VIPs, routes, rules, GARPs: vrrp_ipaddress.c,
//! vrrp_iproute.c, vrrp_arp.c), `vmac` (vrrp_vmac.c), `track` (vrrp_track.c), `reload`
//! (start, reload, shutdown: vrrp_daemon.c).

mod addresses;
mod effects;
mod garp_pace;
mod instance;
mod links;
mod mail;
mod processes;
mod reload;
mod resolve;
mod restart;
mod statics;
mod sync;
mod track;
mod transition;
mod vmac;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use keepalived_conf::model::KeepalivedConfig;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::codec::ah::{self, IPPROTO_AH, SeqCounter};
use crate::codec::{
    self, Advert, Auth, Checksum, Family, IPPROTO_VRRP, IpInfo, RxError, RxExpect, RxStats,
};
use crate::config::{self, InstanceConfig};
use crate::link::{self, LinkInfo};
use crate::netlink::{Netlink, Route, Rule, Vip};
use crate::notify;
use crate::sock::{RxSocket, TxSocket};
use crate::state::{Action, Instance, Micros, Params, Reason, State};
use crate::track::{ScriptStatus, TrackKind, Tracked, effective_priority};
use effects::{Effect, Effects};

/// Commands from the embedding daemon.
#[derive(Debug)]
pub enum Control {
    /// Apply a new configuration: instances kept by name keep their state.
    Reload(Arc<KeepalivedConfig>),
    /// Stop: masters send priority 0, VIPs are removed, notify_stop scripts run.
    Shutdown,
    /// Stop as keepalived's `-V` (`--dont-release-vrrp`): no priority 0, VIPs, routes and
    /// rules left in place; a restart within the master-down interval resumes MASTER without
    /// an election (see `restart`).
    Detach,
    /// The BFD thread's session states, for `track_bfd` (sent once, after the start).
    Bfd(tokio::sync::watch::Receiver<bfd::States>),
    /// Current state and receive counters of every instance (for status dumps).
    Status(tokio::sync::oneshot::Sender<Vec<InstanceStatus>>),
}

/// One instance as [`Control::Status`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceStatus {
    /// Instance name.
    pub instance: String,
    /// Virtual router id.
    pub vrid: u8,
    /// Current state.
    pub state: State,
    /// Priority after tracking.
    pub effective_priority: u8,
    /// Accepted adverts and drops per reason ([`codec::RX_ERROR_NAMES`]).
    pub rx: RxStats,
    /// Adverts sent, priority-0 adverts, MASTER transitions (keepalived's SIGUSR2 counters).
    pub tx: TxStats,
    /// The vrrp_scripts this instance tracks, and whether each is good now.
    pub scripts: Vec<(String, bool)>,
}

/// The counters keepalived's `keepalived.stats` has beside the receive ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxStats {
    /// Adverts sent.
    pub adverts_sent: u64,
    /// Priority-0 adverts sent (leaving master).
    pub pri_zero_sent: u64,
    /// Priority-0 adverts received.
    pub pri_zero_rcvd: u64,
    /// Times it became MASTER.
    pub became_master: u64,
    /// Times it left MASTER.
    pub released_master: u64,
}

/// A state transition of one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateEvent {
    /// Instance name.
    pub instance: String,
    /// Virtual router id.
    pub vrid: u8,
    /// Its interface.
    pub interface: String,
    /// State before.
    pub from: State,
    /// State after.
    pub to: State,
    /// Why.
    pub reason: Reason,
    /// The instance's VIPs (virtual_ipaddress then virtual_ipaddress_excluded).
    pub vips: Vec<IpAddr>,
}

/// How long the stop waits for notify scripts (keepalived's `child_wait_time` default).
const SCRIPTS_AT_STOP: Duration = Duration::from_secs(5);

/// How often interface states and track files are polled.
const POLL: Duration = Duration::from_millis(100);

struct Inst {
    cfg: InstanceConfig,
    sm: Instance,
    link: LinkInfo,
    tx: TxSocket,
    src: IpAddr,
    vips: Vec<Vip>,
    routes: Vec<Route>,
    rules: Vec<Rule>,
    advert_vips: Vec<IpAddr>,
    reader: JoinHandle<()>,
    garp: Option<JoinHandle<()>>,
    stats: RxStats,
    tx_stats: TxStats,
    /// The peer uses the pre-2.x unicast v3 checksum (detected or configured).
    old_checksum: bool,
    /// use_vmac: the macvlan we created (name, index), deleted on stop.
    vmac: Option<(String, u32)>,
    /// `auth_type AH`: the anti-replay counter and the IP id of what we send.
    ah: SeqCounter,
    ip_id: u16,
    /// TTL of what we send (unicast_ttl, or 255).
    tx_ttl: u8,
    /// track_src_ip: the source address has been on the host.
    src_seen: bool,
    /// CLOCK_MONOTONIC µs of the last advert sent (restart records).
    last_advert_us: Option<u64>,
    /// The state of the last SMTP alert (keepalived's `last_email_state`).
    last_mail: Option<&'static str>,
}

type Packet = (u64, usize, Vec<u8>, Option<IpInfo>);

struct Engine {
    epoch: Instant,
    nl: Netlink,
    config: Arc<KeepalivedConfig>,
    insts: Vec<Inst>,
    generation: u64,
    pkt_tx: mpsc::Sender<Packet>,
    script_tx: mpsc::Sender<(u64, String, bool)>,
    scripts: HashMap<String, ScriptStatus>,
    script_tasks: Vec<JoinHandle<()>>,
    /// Netlink, firewall, scripts and FIFOs, off this thread.
    effects: Effects,
    /// Last state each sync group was notified in.
    group_state: HashMap<String, State>,
    /// static_ipaddress / static_routes / static_rules as installed.
    statics: statics::Statics,
    /// track_groups with a static address that could not be restored.
    failed_track_groups: std::collections::HashSet<String>,
    /// vrrp_track_process: the scanner's counts and each tracked process's state.
    proc_rx: Option<mpsc::Receiver<HashMap<String, usize>>>,
    processes: HashMap<String, crate::process_track::ProcessStatus>,
    proc_counts: Option<HashMap<String, usize>>,
    /// Link states with linkbeat polling and up/down delays.
    links: links::LinkWatch,
    /// Interfaces whose promote_secondaries we turned on (turned off again at stop).
    promoted: std::collections::HashSet<String>,
    /// vrrp_startup_delay: when the instances leave INIT.
    delayed_start: Option<Micros>,
    /// Spacing of GARPs/NAs per interface and garp_group.
    garp_pacer: garp_pace::SharedPacer,
    /// SMTP alerts: where they go (none without smtp_server and notification_email).
    mailer: Option<Arc<keepalived_scripts::smtp::Mailer>>,
    /// track_bfd: the BFD thread's states as last seen (unknown sessions count as down).
    bfd: Option<tokio::sync::watch::Receiver<bfd::States>>,
    bfd_up: bfd::States,
}

/// Whether `config` gives the VRRP side anything to do (keepalived starts its VRRP process
/// for instances and for static addresses, routes and rules).
pub fn needed(config: &KeepalivedConfig) -> bool {
    !config.vrrp_instances.is_empty()
        || !config.static_ipaddresses.is_empty()
        || !config.static_routes.is_empty()
        || !config.static_rules.is_empty()
}

/// Runs [`run`] on a thread of its own (named `vrrp`) with its own runtime and the
/// scheduling the configuration asks for (`vrrp_priority`, `vrrp_rt_priority`, …), so that
/// nothing else the process does — data-plane writes, the writer lock, checkers, a reload of
/// thousands of virtual servers — delays an advert or a state change. The thread ends with
/// [`run`]'s result.
pub fn spawn(
    config: Arc<KeepalivedConfig>,
    control: mpsc::Receiver<Control>,
    events: mpsc::Sender<StateEvent>,
) -> std::io::Result<std::thread::JoinHandle<RunResult>> {
    let prio = crate::priority::ThreadPriority::from_config(&config);
    std::thread::Builder::new()
        .name("vrrp".into())
        .spawn(move || {
            prio.apply_to_current_thread();
            let res = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(run(config, control, events)));
            if let Err(e) = &res {
                log::error!("VRRP: {e:#}");
            }
            res
        })
}

/// How the VRRP engine ended ([`run`]'s result).
pub type RunResult = Result<()>;

/// Runs every `vrrp_instance` of `config` until [`Control::Shutdown`] (or the control channel
/// closes). Must run inside a tokio runtime, as root (raw sockets, netlink).
pub async fn run(
    config: Arc<KeepalivedConfig>,
    mut control: mpsc::Receiver<Control>,
    events: mpsc::Sender<StateEvent>,
) -> Result<()> {
    let (pkt_tx, mut pkt_rx) = mpsc::channel::<Packet>(1024);
    let (script_tx, mut script_rx) = mpsc::channel(64);
    let mut e = Engine {
        epoch: Instant::now(),
        nl: Netlink::open().context("netlink")?,
        config: config.clone(),
        insts: Vec::new(),
        generation: 0,
        pkt_tx,
        script_tx,
        scripts: HashMap::new(),
        script_tasks: Vec::new(),
        effects: Effects::start(events).context("VRRP effects worker")?,
        group_state: HashMap::new(),
        statics: statics::Statics::default(),
        failed_track_groups: Default::default(),
        proc_rx: None,
        processes: HashMap::new(),
        proc_counts: None,
        links: links::LinkWatch::default(),
        promoted: Default::default(),
        delayed_start: None,
        garp_pacer: garp_pace::GarpPacer::new(&config),
        mailer: None,
        bfd: None,
        bfd_up: bfd::States::new(),
    };
    let mut auto_priority =
        crate::priority::AutoPriority::new(&crate::priority::ThreadPriority::from_config(&config));
    e.load(config, &HashMap::new())?;
    let timer = crate::timer::PreciseTimer::new().context("timerfd")?;
    let mut link_events = link::watch().context("netlink link events")?;
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let deadline = e
            .insts
            .iter()
            .filter_map(|i| i.sm.next_deadline())
            .chain(e.delayed_start)
            .min()
            .map(|us| e.epoch + Duration::from_micros(us))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            Some((generation, idx, pkt, info)) = pkt_rx.recv() => {
                if generation == e.generation {
                    e.packet(idx, &pkt, info);
                }
            }
            _ = timer.sleep_until(deadline.into_std()) => {
                auto_priority.timer_late(Instant::now().saturating_duration_since(deadline));
                let now = e.now();
                e.delayed_start_due(now);
                for idx in 0..e.insts.len() {
                    if e.insts[idx].sm.master_down_due(now) && e.group_holds_back(idx, now) {
                        e.insts[idx].sm.defer(now);
                        continue;
                    }
                    let actions = e.insts[idx].sm.on_timer(now);
                    e.apply(idx, actions, now);
                }
            }
            Some((generation, name, ok)) = script_rx.recv() => {
                if generation == e.generation
                    && let Some(s) = e.scripts.get_mut(&name)
                    && s.record(ok)
                {
                    log::info!("VRRP_Script({name}) {}", if ok { "succeeded" } else { "failed" });
                    e.retrack();
                }
            }
            Some(counts) = recv_opt(&mut e.proc_rx) => {
                if e.process_counts(counts) {
                    e.retrack();
                }
            }
            _ = poll.tick() => {
                if e.process_delays() {
                    e.retrack();
                }
                if let Some(present) = statics::addresses_by_index() {
                    e.check_statics(&present);
                }
                e.retrack();
            }
            Some(()) = link_events.recv() => e.retrack(),
            Some(states) = bfd_changed(&mut e.bfd) => {
                if e.bfd_states(states) {
                    e.retrack();
                }
            }
            c = control.recv() => match c {
                Some(Control::Reload(cfg)) => e.reload(cfg),
                Some(Control::Bfd(rx)) => {
                    let states = rx.borrow().clone();
                    e.bfd = Some(rx);
                    if e.bfd_states(states) {
                        e.retrack();
                    }
                }
                Some(Control::Status(reply)) => {
                    let _ = reply.send(
                        e.insts
                            .iter()
                            .map(|i| InstanceStatus {
                                instance: i.cfg.name.clone(),
                                vrid: i.cfg.vrid,
                                state: i.sm.state(),
                                effective_priority: i.sm.effective_priority(),
                                rx: i.stats.clone(),
                                tx: i.tx_stats,
                                scripts: i
                                    .cfg
                                    .track_scripts
                                    .iter()
                                    .map(|t| {
                                        let ok = e.scripts.get(&t.name).is_none_or(|s| s.ok());
                                        (t.name.clone(), ok)
                                    })
                                    .collect(),
                            })
                            .collect(),
                    );
                }
                Some(Control::Detach) => {
                    e.detach();
                    e.effects.finish(SCRIPTS_AT_STOP).await;
                    return Ok(());
                }
                Some(Control::Shutdown) | None => {
                    e.shutdown();
                    e.effects.finish(SCRIPTS_AT_STOP).await;
                    return Ok(());
                }
            },
        }
    }
}

/// The BFD states after their next change (never, without the BFD thread).
async fn bfd_changed(
    rx: &mut Option<tokio::sync::watch::Receiver<bfd::States>>,
) -> Option<bfd::States> {
    match rx {
        Some(r) => match r.changed().await {
            Ok(()) => Some(r.borrow_and_update().clone()),
            Err(_) => {
                // The BFD thread is gone: its sessions are down from now on.
                *rx = None;
                Some(bfd::States::new())
            }
        },
        None => std::future::pending().await,
    }
}

/// The next message of an optional channel (never, without one).
async fn recv_opt<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

/// Log once per power of two, so a flood of bad packets cannot flood the log.
fn log_drop(name: &str, stats: &RxStats, err: &RxError) {
    if matches!(err, RxError::OtherVrid(_)) {
        return;
    }
    let n = stats.total_dropped();
    if n.is_power_of_two() {
        log::warn!("({name}) {} (dropped {n} so far)", err.message());
    }
}

impl Engine {
    pub(super) fn now(&self) -> Micros {
        self.epoch.elapsed().as_micros() as Micros
    }
}

/// Per-instance receive counters (for status output and tests).
pub fn counters_line(name: &str, s: &RxStats) -> String {
    let mut out = format!("{name}: accepted {}", s.accepted);
    for (n, c) in codec::RX_ERROR_NAMES.iter().zip(s.dropped.iter()) {
        if *c > 0 {
            out.push_str(&format!(" {n} {c}"));
        }
    }
    out
}
