//! The bridge at run time: a thread of its own (control sockets and process starts block;
//! keepalived's event loop never waits for them), fed snapshots of health, quorum and VRRP
//! state by the keepalived daemon, observing the data plane and the maintenance switch itself
//! every 200 ms.
//!
//! Order of changes: a withdrawal removes the VIP's address from the liveness device first
//! (the daemon withdraws at once) and then the daemon's configuration; an announcement
//! configures the daemon first and adds the address last. A failed change leaves nothing
//! announced that is not eligible, and is retried.

use crate::bird::{self, BirdDriver};
use crate::driver::{Announced, Driver};
use crate::eligibility::{Inputs, Local, Profile, Tracker, evaluate};
use crate::frr::{self, FrrDriver};
use crate::lease;
use crate::liveness::Device;
use crate::process;
use crate::settings::Settings;
use crate::status::{self, BridgeStatus, VipStatus};
use anyhow::{Result, bail};
use keepalived_conf::model::{DaemonInstance, RoutingDaemon};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the bridge looks at the data plane, the maintenance file and rise/fall timers.
const TICK: Duration = Duration::from_millis(200);
/// How often own daemons are checked (and a failed setup retried).
const SUPERVISE: Duration = Duration::from_secs(1);

/// How the bridge ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopMode {
    /// Withdraw everything, wait `withdraw_delay`, stop own daemons.
    Withdraw,
    /// `--dont-release-ipvs`: hand the announcements to a lease holder for `restart_grace`
    /// (withdraw when the grace is 0).
    KeepForRestart,
}

enum Msg {
    Inputs(Inputs),
    Reload(Box<Settings>),
    Stop(StopMode, mpsc::Sender<()>),
}

/// The running bridge (its thread), as the keepalived daemon holds it.
pub struct Bridge {
    tx: mpsc::Sender<Msg>,
    status: Arc<Mutex<BridgeStatus>>,
    thread: Option<JoinHandle<()>>,
}

impl Bridge {
    /// Starts the bridge with the daemon's first snapshot.
    pub fn start(settings: Settings, inputs: Inputs) -> Bridge {
        let (tx, rx) = mpsc::channel();
        let status = Arc::new(Mutex::new(BridgeStatus::default()));
        let shared = status.clone();
        let thread = std::thread::Builder::new()
            .name("route-bridge".into())
            .spawn(move || Runner::new(settings, inputs, shared).run(rx))
            .expect("spawn the route bridge thread");
        Bridge {
            tx,
            status,
            thread: Some(thread),
        }
    }

    /// A new snapshot of health, quorum and VRRP state.
    pub fn update(&self, inputs: Inputs) {
        let _ = self.tx.send(Msg::Inputs(inputs));
    }

    /// New settings (SIGHUP): only the difference is applied.
    pub fn reload(&self, settings: Settings) {
        let _ = self.tx.send(Msg::Reload(Box::new(settings)));
    }

    /// What the bridge announces now, why and since when (for status pages and metrics).
    pub fn status(&self) -> BridgeStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Stops the bridge and waits (at most `timeout`) until it is done. Blocking: call it from
    /// a blocking context.
    pub fn stop(mut self, mode: StopMode, timeout: Duration) {
        let (done_tx, done_rx) = mpsc::channel();
        if self.tx.send(Msg::Stop(mode, done_tx)).is_ok() && done_rx.recv_timeout(timeout).is_err()
        {
            log::warn!("route bridge: did not stop within {timeout:?}");
            return;
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Runner {
    settings: Settings,
    inputs: Inputs,
    device: Option<Device>,
    driver: Option<Box<dyn Driver>>,
    trackers: BTreeMap<IpAddr, Tracker>,
    eligible: BTreeSet<IpAddr>,
    /// What the device and the daemon hold (None: unknown, apply in full).
    applied: Option<Announced>,
    error: Option<String>,
    next_setup: Instant,
    next_supervise: Instant,
    maintenance_since: Option<Instant>,
    /// Since when each neighbor's session has not been established, and whether that was said.
    down_since: BTreeMap<IpAddr, (Instant, bool)>,
    local: Local,
    shared: Arc<Mutex<BridgeStatus>>,
    written: Option<BridgeStatus>,
    /// Announce/withdraw changes per VIP since the bridge started (for `xlvs metrics`).
    changes: std::collections::BTreeMap<std::net::IpAddr, u64>,
    /// Wall clock and monotonic clock at the same moment (status times are wall clock).
    epoch: (u64, Instant),
}

impl Runner {
    fn new(settings: Settings, inputs: Inputs, shared: Arc<Mutex<BridgeStatus>>) -> Runner {
        let now = Instant::now();
        Runner {
            settings,
            inputs,
            device: None,
            driver: None,
            trackers: BTreeMap::new(),
            eligible: BTreeSet::new(),
            applied: None,
            error: None,
            next_setup: now,
            next_supervise: now + SUPERVISE,
            maintenance_since: None,
            down_since: BTreeMap::new(),
            local: Local::default(),
            shared,
            written: None,
            changes: Default::default(),
            epoch: (status::now_ms(), now),
        }
    }

    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        log::info!(
            "route bridge ({}): {} through device {}",
            self.settings.origin,
            self.settings.daemon.name(),
            self.settings.device
        );
        loop {
            let first = match rx.recv_timeout(TICK) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    Some(Msg::Stop(StopMode::Withdraw, mpsc::channel().0))
                }
            };
            // Several snapshots may be queued: the last one is what is true now.
            for msg in first
                .into_iter()
                .chain(std::iter::from_fn(|| rx.try_recv().ok()))
            {
                match msg {
                    Msg::Inputs(i) => self.inputs = i,
                    Msg::Reload(s) => self.reload(*s),
                    Msg::Stop(mode, done) => {
                        self.stop(mode);
                        let _ = done.send(());
                        return;
                    }
                }
            }
            self.step();
        }
    }

    /// One round: set up what is missing, supervise, evaluate, apply, publish.
    fn step(&mut self) {
        let now = Instant::now();
        if (self.device.is_none() || self.driver.is_none()) && now >= self.next_setup {
            self.setup(now);
        }
        if now >= self.next_supervise {
            self.next_supervise = now + SUPERVISE;
            self.supervise();
            self.check_neighbors(now);
        }
        self.evaluate(now);
        self.apply();
        self.publish(now);
    }

    fn fail(&mut self, what: String) {
        if self.error.as_ref() != Some(&what) {
            log::error!("route bridge: {what}");
        }
        self.error = Some(what);
    }

    fn setup(&mut self, now: Instant) {
        self.next_setup = now + SUPERVISE * 2;
        if self.device.is_none() {
            match Device::open(&self.settings.device) {
                Ok(d) => {
                    // Addresses present: a lease holder kept them for us; take them over.
                    lease::release(&self.settings.run_dir);
                    for a in d.addresses() {
                        self.trackers
                            .insert(*a, Tracker::adopted(Some(Profile::Healthy), now));
                    }
                    if !d.addresses().is_empty() {
                        log::info!(
                            "route bridge: adopted {} announced VIPs on {}",
                            d.addresses().len(),
                            d.name
                        );
                    }
                    self.device = Some(d);
                }
                Err(e) => return self.fail(format!("{e:#}")),
            }
        }
        if self.driver.is_none() {
            match make_driver(&self.settings) {
                Ok(d) => {
                    let info = d.info();
                    log::info!(
                        "route bridge: driving {} {} at {}",
                        if info.own { "own" } else { "existing" },
                        info.kind,
                        info.control.display()
                    );
                    self.driver = Some(d);
                    self.applied = None;
                    self.error = None;
                }
                Err(e) => self.fail(format!("{e:#}")),
            }
        }
    }

    fn supervise(&mut self) {
        let Some(d) = &mut self.driver else { return };
        match d.supervise() {
            Ok(true) => self.applied = None,
            Ok(false) => {}
            Err(e) => {
                // The control socket went away: find the daemon again.
                self.driver = None;
                self.applied = None;
                self.fail(format!("{e:#}"));
            }
        }
    }

    /// Reports a neighbor whose session has not come up for two hold times, with its line.
    fn check_neighbors(&mut self, now: Instant) {
        let Some(d) = &self.driver else { return };
        if self.settings.neighbors.is_empty() {
            return;
        }
        let info = d.info();
        let list: Vec<(IpAddr, u32)> = self
            .settings
            .neighbors
            .iter()
            .map(|n| (n.address, n.remote_as))
            .collect();
        let views = match info.kind.as_str() {
            "bird" => bird::peers(&info.control, &list),
            _ => frr::peers(&info.control, &list),
        };
        let Ok(views) = views else { return };
        for (n, v) in self.settings.neighbors.iter().zip(&views) {
            if v.state == "Established" {
                if let Some((_, true)) = self.down_since.remove(&n.address) {
                    log::info!("route bridge: neighbor {} ({}) is up", n.address, n.origin);
                }
                continue;
            }
            // Reported (once, until it comes up) when down for two hold times (10 s at least).
            let patience = Duration::from_secs(u64::from(self.settings.hold_time).max(5) * 2);
            let (since, said) = self.down_since.entry(n.address).or_insert((now, false));
            if !*said && now.duration_since(*since) >= patience {
                *said = true;
                let msg = format!(
                    "({}) route_bridge: neighbor {} (AS {}) has not come up for {} s (state {})",
                    n.origin,
                    n.address,
                    n.remote_as,
                    patience.as_secs(),
                    v.state
                );
                log::error!("{msg}");
                self.error.get_or_insert(msg);
            }
        }
    }

    fn observe(&mut self, now: Instant) -> Local {
        let pin = &self.settings.pin_dir;
        let maintenance = self.settings.maintenance_file.exists();
        if !maintenance {
            self.maintenance_since = None;
        } else if self.maintenance_since.is_none() {
            self.maintenance_since = Some(now);
        }
        let drain = self.settings.policy.drain_timeout;
        Local {
            attached: dataplane::loader::attached(pin),
            timers: dataplane::timers::running(pin),
            maintenance,
            drain_expired: drain > 0.0
                && self
                    .maintenance_since
                    .is_some_and(|t| now.duration_since(t) >= Duration::from_secs_f64(drain)),
        }
    }

    fn evaluate(&mut self, now: Instant) {
        self.local = self.observe(now);
        let configured: BTreeSet<IpAddr> = self.settings.vips.iter().map(|v| v.address).collect();
        self.trackers.retain(|a, _| configured.contains(a));
        self.eligible.clear();
        for vip in &self.settings.vips {
            let v = evaluate(vip, &self.inputs, &self.local, &self.settings.policy);
            if v.profile.is_some() {
                self.eligible.insert(vip.address);
            }
            let t = self.trackers.entry(vip.address).or_default();
            if t.step(&v, now, &self.settings.policy) {
                match t.announced {
                    Some(p) => log::info!(
                        "route bridge: {} announced ({}): {}",
                        vip.address,
                        p.name(),
                        v.reason
                    ),
                    None => log::info!("route bridge: {} withdrawn: {}", vip.address, v.reason),
                }
            }
        }
    }

    /// The VIPs to announce now, with their attributes.
    fn desired(&self) -> Announced {
        self.settings
            .vips
            .iter()
            .filter_map(|v| {
                let p = self.trackers.get(&v.address)?.announced?;
                let attrs = match p {
                    Profile::Healthy => Some(&v.healthy),
                    Profile::Degraded => v.degraded.as_ref(),
                    Profile::Draining => v.draining.as_ref(),
                }
                .unwrap_or(&v.healthy);
                Some((v.address, attrs.clone()))
            })
            .collect()
    }

    fn apply(&mut self) {
        let want = self.desired();
        if self.applied.as_ref() == Some(&want) {
            return;
        }
        let Some(device) = &mut self.device else {
            return;
        };
        // Withdrawals first: only what stays wanted stays on the device.
        let keep: BTreeSet<IpAddr> = device
            .addresses()
            .iter()
            .filter(|a| want.contains_key(a))
            .copied()
            .collect();
        let Some(driver) = &mut self.driver else {
            // No daemon to drive: at least nothing stays announced that is not eligible.
            if let Err(e) = device.set(&keep) {
                log::error!("route bridge: {e:#}");
            }
            return;
        };
        let result = device
            .set(&keep)
            .and_then(|_| driver.apply(&want))
            .and_then(|_| device.set(&want.keys().copied().collect()));
        match result {
            Ok(()) => {
                self.applied = Some(want);
                self.error = None;
            }
            Err(e) => {
                self.applied = None;
                self.fail(format!("{e:#}"));
            }
        }
    }

    fn publish(&mut self, now: Instant) {
        let wall = |t: Option<Instant>| {
            t.map_or(0, |t| {
                let (ms, at) = self.epoch;
                if t >= at {
                    ms + t.duration_since(at).as_millis() as u64
                } else {
                    ms.saturating_sub(at.duration_since(t).as_millis() as u64)
                }
            })
        };
        let vips = self
            .settings
            .vips
            .iter()
            .map(|v| {
                let t = self.trackers.get(&v.address);
                let announced = t.and_then(|t| t.announced);
                let attrs = match announced {
                    Some(Profile::Degraded) => v.degraded.as_ref().unwrap_or(&v.healthy),
                    Some(Profile::Draining) => v.draining.as_ref().unwrap_or(&v.healthy),
                    _ => &v.healthy,
                };
                VipStatus {
                    address: v.address,
                    eligible: self.eligible.contains(&v.address),
                    announced,
                    reason: t.map(|t| t.reason.clone()).unwrap_or_default(),
                    since_ms: wall(t.and_then(|t| t.changed_at)),
                    attributes: status::describe(attrs),
                    vrrp: v.vrrp.clone(),
                    servers: v
                        .servers
                        .iter()
                        .filter_map(|i| self.inputs.servers.get(*i).map(|s| s.name.clone()))
                        .collect(),
                }
            })
            .collect();
        let mut s = BridgeStatus {
            pid: std::process::id(),
            origin: self.settings.origin.clone(),
            daemon: self.driver.as_ref().map(|d| d.info()),
            device: self.settings.device.clone(),
            neighbors: self
                .settings
                .neighbors
                .iter()
                .map(|n| (n.address, n.remote_as))
                .collect(),
            ospf_area: self.settings.ospf.as_ref().map(|o| o.area.to_string()),
            error: self.error.clone(),
            maintenance: self.local.maintenance,
            maintenance_file: self.settings.maintenance_file.clone(),
            attached: self.local.attached.clone(),
            timers: self.local.timers,
            vips,
            updated_ms: 0,
        };
        let _ = now;
        if self.written.as_ref() != Some(&s) {
            for v in &s.vips {
                let before = self.written.as_ref().and_then(|w| {
                    w.vips
                        .iter()
                        .find(|o| o.address == v.address)
                        .map(|o| o.announced.is_some())
                });
                if before.unwrap_or(false) != v.announced.is_some() {
                    *self.changes.entry(v.address).or_default() += 1;
                }
            }
            self.written = Some(s.clone());
            s.updated_ms = status::now_ms();
            if let Err(e) = status::write(&self.settings.run_dir, &s) {
                log::warn!("route bridge: {e:#}");
            }
            let published = status::for_metrics(&s, &self.changes);
            if let Err(e) = runstate::write(
                &runstate::dir(&self.settings.pin_dir),
                runstate::BRIDGE_FILE,
                &published,
            ) {
                log::debug!("route bridge: cannot publish its state for metrics: {e}");
            }
            if let Ok(mut shared) = self.shared.lock() {
                *shared = s;
            }
        }
    }

    fn reload(&mut self, new: Settings) {
        let old = self.settings.clone();
        let same_daemon = old.daemon == new.daemon
            && old.instance == new.instance
            && old.control == new.control
            && old.config_file == new.config_file
            && old.device == new.device;
        if same_daemon {
            self.settings = new;
            // A driver made anew adopts the running daemon and sends it only the difference.
            self.driver = None;
            self.applied = None;
            self.next_setup = Instant::now();
            return;
        }
        log::info!("route bridge: the daemon or device changes: withdrawing through the old one");
        let mut stopping = self.inputs.clone();
        stopping.stopping = true;
        let inputs = std::mem::replace(&mut self.inputs, stopping);
        self.evaluate(Instant::now());
        self.apply();
        self.inputs = inputs;
        if let Some(d) = &mut self.driver {
            d.stop();
        }
        self.driver = None;
        if old.device != new.device {
            self.device = None;
        }
        self.trackers.clear();
        self.applied = None;
        self.settings = new;
        self.next_setup = Instant::now();
    }

    fn stop(&mut self, mode: StopMode) {
        if mode == StopMode::KeepForRestart
            && self.settings.restart_grace > 0.0
            && let Some(device) = &self.device
            && !device.addresses().is_empty()
        {
            let own = self
                .driver
                .as_ref()
                .map(|d| d.own_processes())
                .unwrap_or_default();
            match device.queue_fd().and_then(|fd| {
                lease::spawn(
                    &self.settings.run_dir,
                    fd,
                    self.settings.restart_grace,
                    &own,
                )
            }) {
                Ok(pid) => {
                    log::info!(
                        "route bridge: announcements kept for {} s by pid {pid}, for a restart to take over",
                        self.settings.restart_grace
                    );
                    return;
                }
                Err(e) => log::error!("route bridge: {e:#}: withdrawing instead"),
            }
        }
        let had = self.applied.as_ref().is_some_and(|a| !a.is_empty());
        self.inputs.stopping = true;
        let now = Instant::now();
        self.evaluate(now);
        self.apply();
        self.publish(now);
        if had && self.settings.withdraw_delay > 0.0 {
            // The routers move the traffic away before the services go.
            std::thread::sleep(Duration::from_secs_f64(self.settings.withdraw_delay));
        }
        if let Some(d) = &mut self.driver {
            d.stop();
        }
        self.device = None;
    }
}

/// bird's or FRR's socket/directory that answers in our network namespace, when the
/// configuration asks for an existing daemon (or leaves it to us to find one).
fn existing_control(s: &Settings) -> Result<Option<PathBuf>> {
    let (default, probe) = match s.daemon {
        RoutingDaemon::Bird => (PathBuf::from(bird::DEFAULT_SOCKET), None),
        RoutingDaemon::Frr => (PathBuf::from(frr::DEFAULT_FRR_DIR), Some("bgpd.vty")),
        RoutingDaemon::Quagga => (PathBuf::from(frr::DEFAULT_QUAGGA_DIR), Some("bgpd.vty")),
    };
    let socket_of = |p: &PathBuf| match probe {
        Some(f) => p.join(f),
        None => p.clone(),
    };
    Ok(match (s.instance, &s.control) {
        (DaemonInstance::Own, _) => None,
        (DaemonInstance::Existing, c) | (DaemonInstance::Auto, c @ Some(_)) => {
            let c = c.clone().unwrap_or(default);
            if let Err(e) = process::connect_local(&socket_of(&c), Duration::from_secs(2)) {
                bail!(
                    "{} control socket ({}): {e:#}; nothing is announced until it answers",
                    s.daemon.name(),
                    s.origin
                );
            }
            Some(c)
        }
        (DaemonInstance::Auto, None) => {
            process::connect_local(&socket_of(&default), Duration::from_secs(2))
                .ok()
                .map(|_| default)
        }
    })
}

/// An existing daemon must see our liveness device (bird through its control socket, FRR and
/// quagga through zebra): otherwise it runs in another network namespace.
fn daemon_is_local(s: &Settings, control: &Path) -> Result<bool> {
    let Some(ifindex) = dataplane::loader::ifindex(&s.device) else {
        return Ok(false);
    };
    match s.daemon {
        RoutingDaemon::Bird => bird::sees_interface(control, &s.device, ifindex),
        _ => frr::sees_interface(control, &s.device, ifindex),
    }
}

fn make_driver(s: &Settings) -> Result<Box<dyn Driver>> {
    let mut existing = existing_control(s)?;
    if let Some(sock) = &existing
        && !daemon_is_local(s, sock)?
    {
        if s.instance == DaemonInstance::Auto && s.control.is_none() {
            existing = None;
        } else {
            bail!(
                "the {} at {} does not see interface {}: it runs in another network namespace, not this director's ({})",
                s.daemon.name(),
                sock.display(),
                s.device,
                s.origin
            );
        }
    }
    Ok(match (s.daemon, existing) {
        (RoutingDaemon::Bird, Some(sock)) => Box::new(BirdDriver::existing(s, sock)?),
        (RoutingDaemon::Bird, None) => Box::new(BirdDriver::own(s)?),
        (_, Some(dir)) => Box::new(FrrDriver::existing(s, dir)?),
        (_, None) => Box::new(FrrDriver::own(s)?),
    })
}
