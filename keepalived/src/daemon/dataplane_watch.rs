//! The two ways a programmed data plane balances nothing, said out loud: virtual servers in the
//! tables while no interface is attached (after a reboot, keepalived can come up before
//! `xlvs attach`), and nobody running IPVS' timers (connections never expire, lc/wlc counts
//! drift). The first is logged as an error at start, after every reload and then once a minute
//! while it lasts; for the second keepalived runs the timers itself, in a thread, as long as no
//! other process (`xlvs timers`, `xlvs attach`) does.

use super::logging::CHECKER;
use log::{error, info, warn};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often an unattached data plane is complained about while it lasts.
const REPEAT: Duration = Duration::from_secs(60);

pub struct Watch {
    opts: dataplane::Options,
    last_warning: Option<Instant>,
    timers: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
}

/// The error line for programmed tables on no interface.
pub fn unattached_message(pin_dir: &std::path::Path) -> String {
    format!(
        "IPVS: virtual servers are programmed in {} but the xlvs data plane is attached to no \
         interface: no packet is balanced (run `xlvs attach IFACE…` or start xlvs.service)",
        pin_dir.display()
    )
}

impl Watch {
    pub fn new(opts: dataplane::Options) -> Watch {
        Watch {
            opts,
            last_warning: None,
            timers: None,
        }
    }

    /// Checks both; `programmed`: this daemon's virtual servers are in the tables. `force`
    /// logs the attachment error even if it was logged less than a minute ago (start, reload).
    pub fn check(&mut self, programmed: bool, force: bool) {
        if !programmed {
            return;
        }
        if dataplane::attached(&self.opts.pin_dir).is_empty() {
            let due = self.last_warning.is_none_or(|t| t.elapsed() >= REPEAT);
            if force || due {
                error!(target: CHECKER, "{}", unattached_message(&self.opts.pin_dir));
                self.last_warning = Some(Instant::now());
            }
        } else if self.last_warning.take().is_some() {
            info!(target: CHECKER, "IPVS: the xlvs data plane is attached again");
        }
        self.ensure_timers();
    }

    fn ensure_timers(&mut self) {
        if let Some((_, t)) = &self.timers
            && t.is_finished()
        {
            self.timers = None;
        }
        if self.timers.is_some() || dataplane::timers::running(&self.opts.pin_dir) {
            return;
        }
        warn!(
            target: CHECKER,
            "IPVS: no process runs the xlvs timers of {} (connection expiry, connection counts): \
             keepalived runs them",
            self.opts.pin_dir.display()
        );
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let opts = self.opts.clone();
        let spawned = std::thread::Builder::new()
            .name("xlvs-timers".into())
            .spawn(move || {
                if let Err(e) = dataplane::timers::run(&opts, &|| flag.load(Ordering::Relaxed)) {
                    error!(target: CHECKER, "IPVS: timers: {e}");
                }
            });
        match spawned {
            Ok(t) => self.timers = Some((stop, t)),
            Err(e) => error!(target: CHECKER, "IPVS: cannot start the timers: {e}"),
        }
    }

    /// Stops our timer thread (at shutdown).
    pub fn stop(&mut self) {
        if let Some((stop, t)) = self.timers.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = t.join();
        }
    }
}
