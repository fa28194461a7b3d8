//! The keepalived daemon: configuration → desired IPVS state → the xlvs data plane, kept in step
//! with health checks, reloaded on SIGHUP without touching what did not change.
//!
//! One process does what keepalived splits into parent, checker and VRRP children; the pid files
//! keepalived writes all hold this pid, so `kill -HUP $(cat /run/keepalived.pid)` and systemd
//! units keep working.
//!
//! # Modules
//!
//! * `fwmark_check.rs` (pure): fwmark virtual servers (and group entries) whose mark no `xlvs
//!   fwmark` rule of their family gives → warnings with the configuration line, logged at start and
//!   after each reload.
//! * `desired.rs` (pure): configuration + reals' health + quorum states → the IPVS services keepalived
//!   would ask for, as in keepalived's `ipwrapper.c`: a live real with its effective weight, a dead
//!   one removed or kept at weight 0 (`inhibit_on_failure`), `sorry_server` swapped in when quorum is
//!   lost; `virtual_server_group` ranges and fwmarks expanded; `laddr_group_name` → local addresses.
//! * `health.rs` (pure): verdicts per (virtual server, real) and quorum with hysteresis (starting
//!   state reported, `quorum_up`/`quorum_down` run on changes).
//! * `reconcile.rs`: `plan` diffs the current tables against the desired services and yields only
//!   the writes needed (edit in place, never delete-and-add, so sessions survive); `apply` runs them
//!   as one batch under the writer lock (scheduler tables rebuilt once). The daemon diffs against
//!   what it last applied (keepalived diffs old and new configuration the same way) and rereads the
//!   maps only at start or after a failed write. Services it never wrote (added with `ipvsadm`) are
//!   never touched.
//! * Health comes from `healthcheck::Supervisor` (events set a real's state and weight; starting
//!   states seed the table; events already queued are applied together and synced once); VRRP from
//!   `vrrp::daemon::spawn`, a thread with its own runtime (reload and shutdown through its control
//!   channel; its transitions move `ha_suspend` checkers). Nothing the daemon's runtime does —
//!   table writes, the writer lock, checkers, reloads — can delay an advert: netlink, nftables,
//!   notify scripts and FIFO lines go through the VRRP engine's effects worker thread, and the
//!   VRRP thread runs SCHED_RR (priority 1 unless `vrrp_rt_priority`/`vrrp_priority` say otherwise).
//!   `tests/tests/keepalived_isolation.rs` holds 10 ms adverts steady with a 2.2.7 peer through a
//!   reload of 10 000 virtual servers, an `ipvsadm -R` of 10 000 services and 500 failing checkers.
//! * `reload.rs`: SIGHUP loads the file; any error other than deprecations, unsafe scripts, missing
//!   interfaces or includes refuses the new configuration (logged with file:line) and keeps the
//!   running one. `lvs_timeouts` apply on (re)load.
//! * `signals.rs`: keepalived 2.2.7's signals and `--signum` numbers (JSON = SIGRTMIN+2 = 36,
//!   STATS_CLEAR = SIGRTMAX-1 = 63); every other asynchronous signal whose default would end the
//!   process is ignored (faults keep their default).
//! * `dumps/`: SIGUSR1 → `keepalived.data` (VRRP instances: resolved configuration from
//!   `vrrp::config::instance` plus the engine's live `Control::Status`), `keepalived_check.data`,
//!   `keepalived_parent.data`; SIGUSR2/STATS_CLEAR → `keepalived.stats`; SIGJSON →
//!   `keepalived.json`; keepalived 2.2.7's layouts, written whole by rename. STATS_CLEAR keeps a
//!   baseline and shows the difference (the engine's counters never reset). Transition times and
//!   counts come from the engine's `StateEvent`s.
//! * `logging.rs` + `loglines.rs`: the syslog ident follows the record's target (`vrrp` crate and
//!   target `vrrp` → Keepalived_vrrp, `healthcheck` and target `checker` → Keepalived_healthcheckers,
//!   the rest → Keepalived); the lines people alert on in 2.2.7's words (checker verdicts with
//!   retries, `Adding/Removing service [ip]:tcp:port to/from VS …` for health changes only,
//!   `Shutting down service …` for every configured real at stop; a checker's first success is
//!   logged; the real goes before the quorum is weighed).
//! * `dataplane_watch.rs`: programmed services on no attached interface → an error at start,
//!   reload and once a minute; no timer process → the timers run in a thread of the daemon.
//! * `runstate_writer.rs`: every 2 s, the state `xlvs metrics` exports (`runstate::Keepalived`).
//! * `scripts.rs`: notify scripts (through `healthcheck::run_script`).
//! * `process.rs`: what keepalived's `main.c` sets up first: umask (`-u`, global `umask`), core
//!   dumps (`-m`, `-M`), the network namespace (`-s`, `net_namespace`: setns plus a private mount
//!   namespace with `/run/keepalived/keepalived_NAME` on `/run/keepalived`, done while the process
//!   is single-threaded) and the pid file names (`instance`, `use_pid_dir`, `-p/-r/-c/-b`);
//!   `-a` logs address changes through `vrrp::addrmon`; `-T` is `keepalived/src/genhash.rs`.
//! * `alerts.rs`: the daemon's SMTP alerts (quorum changes, live reals removed by a reload); the
//!   checkers' own alerts leave from `healthcheck`'s supervisor, VRRP's from the VRRP engine
//!   (`vrrp/src/daemon/mail.rs`), all through `keepalived_scripts::smtp` (keepalived's `smtp.c`
//!   conversation and texts).
//! * `fifo.rs`: keepalived's LVS notify FIFO lines (`VS …`/`RS … UP|DOWN`) into `notify_fifo` and
//!   `lvs_notify_fifo`, and the `*_fifo_script` readers started with their FIFO's path.
//! * `route_bridge.rs`: the hook into the route bridge (crate `quagga-bridge`): settings from the
//!   configuration, a snapshot of quorum/health/VRRP sent to the bridge thread after every change
//!   (`Hook::update`, `vrrp`, `reload`), stopped before anything else at SIGTERM so routers move
//!   the traffic first; `Hook::status()` gives the bridge's `BridgeStatus` (for reports and
//!   metrics). Not run with `-P`.
//! * `sdnotify.rs`: systemd's READY/RELOADING/STOPPING (Debian's unit is `Type=notify`);
//!   `pidfile.rs`: keepalived's pid files (refuse a second start); `logging.rs`: syslog and `-l`.
//! * SIGTERM removes the daemon's services (all of them with `lvs_flush_on_stop`; none with
//!   `--dont-release-ipvs`); `kill -9` leaves the tables, the XDP program keeps forwarding and a
//!   restart adopts the tables without flushing anything.
//! * With `-V` the VRRP thread stops with `Control::Detach` (`vrrp/src/daemon/restart.rs`): no
//!   priority 0, addresses left, and each MASTER writes its last advert's CLOCK_MONOTONIC time and
//!   AH sequence to `$XLVS_RUN_DIR/vrrp/<netns>-<instance>.master`; a start that finds a record
//!   younger than the instance's master-down interval resumes MASTER at once (no election).

mod alerts;
mod bfd_link;
mod dataplane_watch;
mod desired;
mod dumps;
mod fifo;
mod fwmark_check;
mod health;
mod logging;
mod loglines;
mod lvs_syncd;
mod pidfile;
mod process;
mod reconcile;
mod reload;
mod route_bridge;
mod runstate_writer;
mod scripts;
mod sdnotify;
pub(crate) mod signals;

use crate::check::{self, Loaded};
use crate::cli::Cli;
use dataplane::Dataplane;
use dataplane::model::ServiceAddr;
use health::{HealthTable, Quorum, RealKey, VsKey};
use healthcheck::{RealEvent, Supervisor};
use keepalived_conf::validate::SystemEnvironment;
use keepalived_conf::{KeepalivedConfig, ParseOptions};
use log::{debug, error, info, warn};
use logging::CHECKER;
use signals::{Sig, Signals};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use vrrp::daemon::{Control as VrrpControl, StateEvent};

const EXIT_MISSING_CONFIG: i32 = 6;

/// Everything the running daemon holds.
struct Daemon {
    config: Arc<KeepalivedConfig>,
    cli: Cli,
    opts: ParseOptions,
    dp: Option<Dataplane>,
    health: HealthTable,
    quorum: Quorum,
    /// Services this daemon wrote (the only ones a reload may delete).
    owned: HashSet<ServiceAddr>,
    /// The health checkers (when there are virtual servers), reporting on `health_tx`.
    checkers: Option<Supervisor>,
    health_tx: mpsc::Sender<RealEvent>,
    /// The VRRP engine's control channel and thread (when there are vrrp_instances).
    vrrp: Option<(mpsc::Sender<VrrpControl>, VrrpThread)>,
    /// notify_fifo / lvs_notify_fifo.
    fifos: fifo::LvsFifos,
    /// `lvs_sync_daemon`.
    syncd: Option<lvs_syncd::SyncDaemon>,
    /// keepalived's BFD child (`bfd_instance`s).
    bfd: Option<bfd_link::BfdThread>,
    /// What the tables hold for our services after the last fully successful sync, so later
    /// syncs diff against memory (as keepalived diffs old and new config) instead of rereading
    /// every map; `None` after a failure or at start: read the tables.
    applied: Option<Vec<dataplane::model::ServiceEntry>>,
    /// The route bridge (VIP announcement), fed after every change of health, quorum or VRRP.
    bridge: route_bridge::Hook,
    /// Attachment and timers of the data plane we program.
    watch: dataplane_watch::Watch,
    /// VRRP transitions (times, counts) and the STATS_CLEAR baseline, for dumps and metrics.
    transitions: dumps::Transitions,
    baseline: dumps::Baseline,
}

pub fn run(cli: &Cli, opts: &ParseOptions) -> i32 {
    let parsed = match check::load(&cli.use_file, opts, &SystemEnvironment) {
        Loaded::Missing(msg) => {
            eprintln!("{msg}");
            // What keepalived 2.2.7 exits with when its configuration file is missing.
            return EXIT_MISSING_CONFIG;
        }
        Loaded::Parsed(p) => p,
    };
    for d in &parsed.diagnostics.items {
        eprintln!("{}", d.keepalived_format());
    }
    if parsed.diagnostics.has_fatal() {
        return check::exit_code(&parsed.diagnostics, cli.all_config);
    }
    process::apply_umask(cli, &parsed.config);
    // The namespace first (while single-threaded): pid files live in its mount namespace.
    if let Some(ns) = process::namespace(cli, &parsed.config)
        && let Err(e) = process::enter_namespace(&ns)
    {
        eprintln!("Unable to set network namespace {ns} - exiting ({e})");
        return 1;
    }
    let pid_files = process::pid_paths(cli, &parsed.config);
    for p in &pid_files {
        if let Some(pid) = pidfile::running(p) {
            eprintln!("daemon is already running (pid {pid} in {})", p.display());
            return 0;
        }
    }
    if !cli.dont_fork
        && let Err(e) = nix::unistd::daemon(false, false)
    {
        eprintln!("Unable to daemonize: {e}");
        return 1;
    }
    logging::init(
        cli.log_console,
        cli.no_syslog,
        cli.log_detail,
        cli.log_facility.as_deref(),
    );
    let _core = process::CoreDumps::set(cli);
    if cli.address_monitoring
        && let Err(e) = vrrp::addrmon::spawn()
    {
        error!("Unable to monitor addresses: {e}");
    }
    let _pids = match pidfile::PidFiles::write(&pid_files) {
        Ok(p) => p,
        Err(e) => {
            error!("Unable to write pid file: {e}");
            return 1;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!("Unable to start the runtime: {e}");
            return 1;
        }
    };
    rt.block_on(async_main(
        cli.clone(),
        opts.clone(),
        Arc::new(parsed.config),
    ))
}

async fn async_main(cli: Cli, opts: ParseOptions, config: Arc<KeepalivedConfig>) -> i32 {
    let mut signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => {
            error!("Unable to install signal handlers: {e}");
            return 1;
        }
    };
    info!("Starting {}", crate::FOLLOWS);
    info!("Configuration file {}", cli.use_file.display());
    // startup_script: once, before anything else runs (keepalived waits for it).
    run_global_script(&config, true).await;
    let lvs_wanted = !cli.vrrp && !config.virtual_servers.is_empty();
    let dp = if lvs_wanted {
        match Dataplane::open(&dataplane::Options::from_env()) {
            Ok(dp) => Some(dp),
            Err(e) => {
                error!("IPVS: Can't initialize the xlvs data plane: {e}");
                return 1;
            }
        }
    } else {
        None
    };
    let bfd = bfd_link::BfdThread::start(&config, cli.no_bfd);
    let (health_tx, mut health_rx) = mpsc::channel::<RealEvent>(1024);
    let checkers = if lvs_wanted {
        let states = bfd.as_ref().map(|b| b.states());
        Some(Supervisor::spawn_with_bfd(&config, health_tx.clone(), states).await)
    } else {
        None
    };
    fifo::start_fifo_scripts(&config);
    let config_for_fifos = config.clone();
    let (vrrp_tx, mut vrrp_events) = mpsc::channel::<StateEvent>(64);
    let vrrp =
        (!cli.check && vrrp::daemon::needed(&config)).then(|| start_vrrp(config.clone(), vrrp_tx));
    if let (Some((ctl, _)), Some(b)) = (&vrrp, &bfd) {
        let _ = ctl.send(VrrpControl::Bfd(b.states())).await;
    }
    let bridge = route_bridge::Hook::new(!cli.vrrp, !cli.check);
    let mut d = Daemon {
        config,
        cli,
        opts,
        dp,
        health: HealthTable::default(),
        quorum: Quorum::default(),
        owned: HashSet::new(),
        checkers,
        health_tx,
        vrrp,
        fifos: fifo::LvsFifos::open(&config_for_fifos),
        applied: None,
        bridge,
        watch: dataplane_watch::Watch::new(dataplane::Options::from_env()),
        transitions: dumps::Transitions::default(),
        baseline: dumps::Baseline::default(),
        syncd: lvs_syncd::SyncDaemon::from_config(&config_for_fifos),
        bfd,
    };
    if let Some(s) = &d.syncd {
        s.start().await;
    }
    d.seed_health().await;
    d.init_ha_suspend().await;
    d.start();
    d.bridge.start(&d.config, &d.health, &d.quorum);
    sdnotify::notify(&format!("READY=1\nMAINPID={}", std::process::id()));
    info!("Startup complete");
    let mut tick = tokio::time::interval(runstate_writer::PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            Some(ev) = health_rx.recv() => {
                // Every event already queued joins this one: one table sync for the batch
                // (500 checkers failing together cost one sync, not 500).
                let mut touched: Vec<_> = d.on_health(ev).into_iter().collect();
                while let Ok(ev) = health_rx.try_recv() {
                    if let Some(vs) = d.on_health(ev)
                        && !touched.iter().any(|t| VsKey::of(t) == VsKey::of(&vs))
                    {
                        touched.push(vs);
                    }
                }
                if !touched.is_empty() {
                    d.settle_health(&touched);
                }
            }
            Some(ev) = vrrp_events.recv() => d.on_vrrp(ev).await,
            _ = tick.tick() => d.on_tick().await,
            s = signals.next() => match s {
                Sig::Reload => d.reload().await,
                Sig::Stop => break,
                other => d.dump(other).await,
            },
        }
    }
    sdnotify::notify("STOPPING=1");
    info!("Stopping");
    // Withdraw before anything goes: routers move the traffic first.
    d.bridge.stop(d.cli.dont_release_ipvs).await;
    // Then VRRP resigns (priority 0) at once: the backup's takeover does not wait for the
    // checkers to stop (keepalived's VRRP child gets the signal beside the checker child).
    d.stop_vrrp().await;
    if let Some(c) = &d.checkers {
        c.shutdown().await;
    }
    if let Some(b) = d.bfd.take() {
        b.stop().await;
    }
    if let Some(s) = &d.syncd {
        s.stop().await;
    }
    d.stop().await;
    d.watch.stop();
    runstate_writer::remove();
    // shutdown_script: once everything else has stopped.
    run_global_script(&d.config, false).await;
    info!("Stopped {}", crate::FOLLOWS);
    0
}

/// `startup_script` / `shutdown_script`, waited for up to `startup_script_timeout` /
/// `shutdown_script_timeout` seconds (default 10, keepalived's range 1..1000); a script still
/// running then is killed with its process group.
async fn run_global_script(config: &KeepalivedConfig, startup: bool) {
    let g = &config.global;
    let (script, kw) = if startup {
        (&g.startup_script, "startup_script_timeout")
    } else {
        (&g.shutdown_script, "shutdown_script_timeout")
    };
    let Some(script) = script else { return };
    let secs = g
        .extra
        .iter()
        .rev()
        .find(|o| o.keyword == kw)
        .and_then(|o| o.args.first())
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|v| (1..=1000).contains(v))
        .unwrap_or(10);
    let what = if startup { "Startup" } else { "Shutdown" };
    info!("{what} script [{}] starting", script.command);
    match healthcheck::run_script(script, Some(std::time::Duration::from_secs(secs))).await {
        Ok(healthcheck::ScriptExit::Exited(0)) => {}
        Ok(healthcheck::ScriptExit::TimedOut) => {
            warn!(
                "{what} script [{}] timed out after {secs} s - killed",
                script.command
            )
        }
        Ok(exit) => warn!("{what} script [{}] {exit}", script.command),
        Err(e) => error!("Unable to run the {what} script [{}]: {e}", script.command),
    }
}

impl Daemon {
    /// The checkers' starting states (reals with an `alpha` checker start down) and the
    /// checkers they could not start.
    async fn seed_health(&mut self) {
        let Some(c) = &self.checkers else { return };
        for s in c.snapshot().await {
            self.health.set(&s.vs, s.real, s.up, Some(s.weight));
        }
        for w in c.take_warnings().await {
            warn!("{w}");
        }
    }

    /// `ha_suspend` services check only while their VIP is on this host (keepalived watches the
    /// addresses): tell the checkers what is true now; VRRP transitions update it later.
    async fn init_ha_suspend(&self) {
        let Some(c) = &self.checkers else { return };
        for vs in self.config.virtual_servers.iter().filter(|v| v.ha_suspend) {
            let key = VsKey::of(vs);
            if let healthcheck::VsAddr::Ip(sa) = key.addr {
                c.set_vip_present(&key, vip_is_local(sa.ip())).await;
            }
        }
    }

    /// A VRRP transition: logged by the engine; here it moves ha_suspend checkers.
    async fn on_vrrp(&mut self, ev: StateEvent) {
        debug!(
            target: logging::VRRP,
            "VRRP instance {} (vrid {}) {:?} -> {:?}",
            ev.instance, ev.vrid, ev.from, ev.to
        );
        self.bridge.vrrp(
            &ev.instance,
            ev.to,
            &self.config,
            &self.health,
            &self.quorum,
        );
        self.transitions.record(&ev.instance);
        let master = vrrp::state::State::Master;
        if let Some(s) = &self.syncd
            && s.instance() == Some(ev.instance.as_str())
            && (ev.to == master || ev.from == master)
        {
            s.follow(ev.to == master).await;
        }
        let Some(c) = &self.checkers else { return };
        let master = ev.to == vrrp::state::State::Master;
        for vs in self.config.virtual_servers.iter().filter(|v| v.ha_suspend) {
            let key = VsKey::of(vs);
            if let healthcheck::VsAddr::Ip(sa) = key.addr
                && ev.vips.contains(&sa.ip())
            {
                c.set_vip_present(&key, master).await;
            }
        }
    }

    /// Masters send priority 0 and VIPs go (keepalived's shutdown), within a bounded time.
    async fn stop_vrrp(&mut self) {
        let Some((ctl, task)) = self.vrrp.take() else {
            return;
        };
        // -V: no priority 0, VIPs left; a quick restart resumes MASTER without an election.
        let stop = if self.cli.dont_release_vrrp {
            VrrpControl::Detach
        } else {
            VrrpControl::Shutdown
        };
        let _ = ctl.send(stop).await;
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        while !task.is_finished() && Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        if !task.is_finished() {
            warn!("VRRP did not stop within 5 s");
        }
    }

    fn start(&mut self) {
        let global = self.config.global.clone();
        if let Some(dp) = &mut self.dp {
            if global.lvs_flush
                && let Err(e) = dp.flush()
            {
                error!("IPVS: flush failed: {e}");
            }
            reload::apply_timeouts(dp, &global.lvs_timeouts);
        }
        self.update_quorums();
        let started = Instant::now();
        let writes = self.sync(false);
        info!(
            target: CHECKER,
            "Programmed {} virtual services with {writes} writes in {} ms",
            self.owned.len(),
            started.elapsed().as_millis()
        );
        self.warn_unfed_fwmarks();
        self.watch_dataplane(true);
    }

    /// Warns when our services sit in tables no interface uses; runs the timers if nobody does.
    fn watch_dataplane(&mut self, force: bool) {
        if self.dp.is_some() {
            self.watch.check(!self.owned.is_empty(), force);
        }
    }

    /// fwmark virtual servers that no `xlvs fwmark` rule feeds receive nothing: say so.
    fn warn_unfed_fwmarks(&mut self) {
        let Some(dp) = &mut self.dp else { return };
        let has_fwmark = self.config.virtual_servers.iter().any(|vs| {
            !matches!(
                vs.address,
                keepalived_conf::model::VirtualServerAddress::Ip { .. }
            )
        });
        if !has_fwmark {
            return;
        }
        match dp.fwmark_rules() {
            Ok(rules) => {
                for w in fwmark_check::unfed(&self.config, &rules) {
                    warn!("{w}");
                }
            }
            Err(e) => error!("IPVS: cannot read the fwmark classifier: {e}"),
        }
    }

    /// Makes the data plane match the configuration and the current health; the number of
    /// writes it took. `health`: a checker's verdict caused it, and its writes are logged in
    /// keepalived's words (`Adding service … to VS …`); the writes of a start or reload are
    /// detail (keepalived logs none of them).
    fn sync(&mut self, health: bool) -> usize {
        let Some(dp) = &mut self.dp else { return 0 };
        let t = Instant::now();
        let quorum = &self.quorum;
        let (want, skipped) = desired::services(&self.config, &self.health, &|k| quorum.is_up(k));
        for s in skipped {
            error!("VS {}: {}", s.vs, s.reason);
        }
        let current = match self.applied.take() {
            Some(c) => c,
            None => match dp.services() {
                Ok(c) => c,
                Err(e) => {
                    error!("IPVS: cannot read the service table: {e}");
                    return 0;
                }
            },
        };
        let ops = reconcile::plan(&current, &self.owned, &want);
        debug!(
            "sync: desired + read + plan in {} ms",
            t.elapsed().as_millis()
        );
        for op in &ops {
            if health {
                info!(target: CHECKER, "{op}");
            } else {
                debug!(target: CHECKER, "{op}");
            }
        }
        let failed = reconcile::apply(dp, &ops);
        for (op, e) in &failed {
            error!(target: CHECKER, "IPVS: {op}: {e}");
        }
        if failed.is_empty() {
            self.applied = Some(reconcile::as_entries(&want));
        }
        self.owned = want.iter().map(|s| s.config.addr).collect();
        ops.len()
    }

    /// A checker's verdict: the health table updated; the virtual server whose reals changed
    /// (its tables and quorum are brought up to date by the caller, once per batch).
    fn on_health(&mut self, ev: RealEvent) -> Option<keepalived_conf::model::VirtualServer> {
        if ev.transition || (ev.first && ev.up) {
            info!(target: CHECKER, "{}", loglines::checker_verdict(&ev));
        }
        if ev.transition {
            self.fifos.rs(&ev.vs, &ev.real, ev.up);
        }
        if !self.health.set(&ev.vs, ev.real, ev.up, Some(ev.weight)) {
            return None;
        }
        self.config
            .virtual_servers
            .iter()
            .find(|v| VsKey::of(v) == ev.vs)
            .cloned()
    }

    /// After a batch of checker verdicts: the reals go (or come) first, then the quorums of
    /// their virtual servers are weighed (keepalived's order), and a changed quorum may bring or
    /// take away the sorry server; the route bridge re-evaluates its VIPs last.
    fn settle_health(&mut self, touched: &[keepalived_conf::model::VirtualServer]) {
        self.sync(true);
        let mut quorum_changed = false;
        for vs in touched {
            quorum_changed |= self.update_quorum(vs);
        }
        if quorum_changed {
            self.sync(true);
        }
        self.bridge.update(&self.config, &self.health, &self.quorum);
    }

    fn update_quorums(&mut self) {
        for vs in self.config.clone().virtual_servers.iter() {
            let _ = self.update_quorum(vs);
        }
    }

    /// Re-evaluates a virtual server's quorum; on a change, logs it and runs its script.
    /// Whether it changed.
    fn update_quorum(&mut self, vs: &keepalived_conf::model::VirtualServer) -> bool {
        let changed = self.quorum.update(vs, &self.health);
        let any = changed.is_some();
        if let Some(change) = changed {
            info!(target: CHECKER, "{}", change.message);
            alerts::quorum(&self.config, vs, &change);
            self.fifos.vs(&VsKey::of(vs), change.up);
            let script = if change.up {
                &vs.quorum_up
            } else {
                &vs.quorum_down
            };
            if let Some(s) = script {
                scripts::spawn_script(s);
            }
        }
        any
    }

    /// SIGHUP: a configuration that does not load cleanly is refused and the running one stays.
    async fn reload(&mut self) {
        info!("Reloading");
        sdnotify::notify("RELOADING=1");
        let started = Instant::now();
        let loaded = reload::load_for_reload(&self.cli.use_file, &self.opts);
        debug!("reload: parsed in {} ms", started.elapsed().as_millis());
        let new = match loaded {
            Ok(c) => Arc::new(c),
            Err(msgs) => {
                for m in msgs {
                    error!("{m}");
                }
                error!("Reload failed: keeping the running configuration");
                sdnotify::notify("READY=1");
                return;
            }
        };
        let keep: HashSet<(VsKey, RealKey)> = new
            .virtual_servers
            .iter()
            .flat_map(|vs| {
                let k = VsKey::of(vs);
                vs.real_servers
                    .iter()
                    .map(move |r| (k.clone(), RealKey::of(r)))
            })
            .collect();
        alerts::removed_reals(&self.config, &new, &self.health);
        self.health.retain(|v, r| keep.contains(&(v.clone(), *r)));
        let vs_keys: HashSet<VsKey> = new.virtual_servers.iter().map(VsKey::of).collect();
        self.quorum.retain(|k| vs_keys.contains(k));
        if self.dp.is_none() && !self.cli.vrrp && !new.virtual_servers.is_empty() {
            match Dataplane::open(&dataplane::Options::from_env()) {
                Ok(dp) => self.dp = Some(dp),
                Err(e) => error!("IPVS: Can't initialize the xlvs data plane: {e}"),
            }
        }
        if let Some(dp) = &mut self.dp {
            reload::apply_timeouts(dp, &new.global.lvs_timeouts);
        }
        if let Some(c) = &self.checkers {
            let report = c.reload(&new).await;
            for s in report.added {
                self.health.set(&s.vs, s.real, s.up, Some(s.weight));
            }
            for w in c.take_warnings().await {
                warn!("{w}");
            }
        } else if !self.cli.vrrp && !new.virtual_servers.is_empty() {
            // The first virtual servers arrive with this reload.
            self.checkers = Some(Supervisor::spawn(&new, self.health_tx.clone()).await);
            self.seed_health().await;
        }
        match &self.bfd {
            Some(b) => b.reload(&new).await,
            None => {
                // The first bfd_instances arrive with this reload.
                self.bfd = bfd_link::BfdThread::start(&new, self.cli.no_bfd);
                if let (Some((ctl, _)), Some(b)) = (&self.vrrp, &self.bfd) {
                    let _ = ctl.send(VrrpControl::Bfd(b.states())).await;
                }
            }
        }
        if let Some((ctl, _)) = &self.vrrp {
            let _ = ctl.send(VrrpControl::Reload(new.clone())).await;
        } else if !self.cli.check && vrrp::daemon::needed(&new) {
            // The first vrrp_instances arrive with this reload; their events are not watched
            // (ha_suspend follows VRRP only for instances known at start).
            let (tx, _rx) = mpsc::channel(64);
            let (ctl, thread) = start_vrrp(new.clone(), tx);
            if let Some(b) = &self.bfd {
                let _ = ctl.send(VrrpControl::Bfd(b.states())).await;
            }
            self.vrrp = Some((ctl, thread));
        }
        self.fifos = fifo::LvsFifos::open(&new);
        if !lvs_syncd::same(&self.config, &new) {
            if let Some(s) = &self.syncd {
                s.stop().await;
            }
            self.syncd = lvs_syncd::SyncDaemon::from_config(&new);
            if let Some(s) = &self.syncd {
                s.start().await;
            }
        }
        self.config = new;
        self.update_quorums();
        let writes = self.sync(false);
        self.bridge
            .reload(&self.config, &self.health, &self.quorum)
            .await;
        info!(
            "Reload finished: {writes} writes in {} ms",
            started.elapsed().as_millis()
        );
        self.warn_unfed_fwmarks();
        self.watch_dataplane(true);
        sdnotify::notify("READY=1");
    }

    /// SIGTERM/SIGINT: keepalived removes its virtual servers (all of IPVS with
    /// `lvs_flush_on_stop`) unless `--dont-release-ipvs`.
    async fn stop(&mut self) {
        if self.dp.is_some() && !self.cli.dont_release_ipvs {
            self.omega_notifies().await;
        }
        let Some(dp) = &mut self.dp else { return };
        if self.config.global.lvs_flush_on_stop {
            if let Err(e) = dp.flush() {
                error!("IPVS: flush failed: {e}");
            }
        } else if !self.cli.dont_release_ipvs {
            let ops: Vec<_> = {
                let mut v: Vec<_> = self.owned.iter().copied().collect();
                v.sort_by_key(|a| a.to_string());
                v.into_iter().map(reconcile::Op::DelService).collect()
            };
            // keepalived's words for what goes: every configured real, alive or not.
            for vs in &self.config.virtual_servers {
                let key = VsKey::of(vs);
                for rs in &vs.real_servers {
                    let line = loglines::shutting_down_real(&key, &RealKey::of(rs));
                    info!(target: CHECKER, "{line}");
                }
            }
            for op in &ops {
                debug!(target: CHECKER, "{op}");
            }
            for (op, e) in reconcile::apply(dp, &ops) {
                warn!("IPVS: {op}: {e}");
            }
        }
    }

    /// keepalived's `omega`: when the daemon takes a virtual server down on stop, the live
    /// reals' notify_down and the virtual server's quorum_down scripts run (one after the other, each
    /// given a second, as keepalived's shutdown does).
    async fn omega_notifies(&self) {
        let mut scripts = Vec::new();
        for vs in self.config.virtual_servers.iter().filter(|v| v.omega) {
            let key = VsKey::of(vs);
            for rs in &vs.real_servers {
                if self.health.real(&key, rs).alive
                    && let Some(s) = rs.notify_down.as_ref().or(vs.notify_down.as_ref())
                {
                    scripts.push(s.clone());
                }
            }
            if self.quorum.is_up(&key)
                && let Some(s) = &vs.quorum_down
            {
                scripts.push(s.clone());
            }
        }
        for s in &scripts {
            info!("Executing [{}]", s.command);
            if let Err(e) =
                healthcheck::run_script(s, Some(std::time::Duration::from_secs(1))).await
            {
                error!("Unable to run [{}]: {e}", s.command);
            }
        }
    }

    /// The live state of every VRRP instance, as the engine reports it now.
    async fn vrrp_views(&self) -> Vec<dumps::InstanceView> {
        let Some((ctl, _)) = &self.vrrp else {
            return Vec::new();
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        if ctl.send(VrrpControl::Status(tx)).await.is_err() {
            return Vec::new();
        }
        match tokio::time::timeout(std::time::Duration::from_secs(2), rx).await {
            Ok(Ok(live)) => dumps::views(&self.config, &live, &self.baseline, &self.transitions),
            _ => Vec::new(),
        }
    }

    /// SIGUSR1, SIGUSR2, STATS_CLEAR, SIGJSON: keepalived's files, as its processes write them
    /// (the VRRP ones when VRRP runs, the checker's when virtual servers do).
    async fn dump(&mut self, sig: Sig) {
        let dir = dumps::dir();
        let pid = std::process::id();
        let vrrp_runs = self.vrrp.is_some();
        let checkers_run = self.checkers.is_some() || self.dp.is_some();
        let views = self.vrrp_views().await;
        let mut files: Vec<(&str, String)> = Vec::new();
        match sig {
            Sig::Data => {
                info!("Printing parent data for process({pid}) on signal");
                files.push(("keepalived_parent.data", dumps::parent_data(&self.config)));
                if vrrp_runs {
                    info!(target: logging::VRRP, "Printing VRRP data for process({pid}) on signal");
                    files.push(("keepalived.data", dumps::vrrp_data(&self.config, &views)));
                }
                if checkers_run {
                    info!(target: CHECKER, "Printing checker data for process({pid}) on signal");
                    let text = dumps::check_data(&self.config, &self.health, &self.quorum);
                    files.push(("keepalived_check.data", text));
                }
            }
            Sig::Stats | Sig::StatsClear if vrrp_runs => {
                let clearing = sig == Sig::StatsClear;
                let how = if clearing {
                    "Printing and clearing"
                } else {
                    "Printing"
                };
                info!(target: logging::VRRP, "{how} VRRP stats for process({pid}) on signal");
                files.push(("keepalived.stats", dumps::vrrp_stats(&views)));
                if clearing {
                    self.baseline.clear(&views);
                }
            }
            Sig::Json if vrrp_runs => {
                info!(target: logging::VRRP, "Printing VRRP as json for process({pid}) on signal");
                files.push(("keepalived.json", dumps::vrrp_json(&views)));
            }
            // keepalived's checker process writes no stats or JSON: nothing to do.
            _ => {}
        }
        for (name, text) in files {
            if let Err(e) = dumps::write_file(&dir, name, &text) {
                error!("Unable to write {}/{name}: {e}", dir.display());
            }
        }
    }

    /// Every few seconds: the live state for `xlvs metrics`, and the data-plane checks.
    async fn on_tick(&mut self) {
        self.watch_dataplane(false);
        let views = self.vrrp_views().await;
        let probes = match &self.checkers {
            Some(c) => c.last_probes(),
            None => Vec::new(),
        };
        runstate_writer::write(&self.config, &views, &self.health, &self.quorum, &probes);
    }
}

/// The VRRP engine's thread (it logs its own failure).
type VrrpThread = std::thread::JoinHandle<vrrp::daemon::RunResult>;

/// Starts the VRRP engine on `config`, on its own thread (nothing this runtime does can delay
/// an advert); its transitions arrive on `events`.
fn start_vrrp(
    config: Arc<KeepalivedConfig>,
    events: mpsc::Sender<StateEvent>,
) -> (mpsc::Sender<VrrpControl>, VrrpThread) {
    let (ctl_tx, ctl_rx) = mpsc::channel(4);
    let thread = vrrp::daemon::spawn(config, ctl_rx, events).unwrap_or_else(|e| {
        error!("VRRP: cannot start its thread: {e}");
        std::thread::spawn(|| Ok(()))
    });
    (ctl_tx, thread)
}

/// Whether `ip` is an address of this host (binding to it works).
fn vip_is_local(ip: std::net::IpAddr) -> bool {
    std::net::UdpSocket::bind((ip, 0)).is_ok()
}
