//! Scheduling of the VRRP thread, as keepalived sets up its VRRP child process:
//! `vrrp_priority` (nice), `vrrp_rt_priority` (SCHED_RR), `vrrp_cpu_affinity`,
//! `vrrp_no_swap` (mlockall: the whole process here), `vrrp_rlimit_rttime`, and
//! `max_auto_priority` / `min_auto_priority_delay`: when a timer fires more than the delay
//! late, the thread switches to SCHED_RR and then goes up one realtime priority each time,
//! up to the maximum ("A thread timer expired … seconds ago"). With neither `vrrp_priority`
//! nor `vrrp_rt_priority` the thread runs SCHED_RR at priority 1 (see `implicit_realtime`).

use std::time::Duration;

use keepalived_conf::model::KeepalivedConfig;

/// keepalived's default `min_auto_priority_delay` (1 s).
const DEFAULT_MIN_AUTO_DELAY_US: u64 = 1_000_000;
/// keepalived's default RLIMIT_RTTIME for a realtime process (µs of CPU between blocking).
const DEFAULT_RLIMIT_RTTIME_US: u64 = 10_000;

/// What the configuration asks for the VRRP thread.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ThreadPriority {
    /// `vrrp_priority`: nice value.
    pub nice: Option<i32>,
    /// `vrrp_rt_priority`: SCHED_RR priority.
    pub rt_priority: Option<i32>,
    /// `vrrp_cpu_affinity`.
    pub cpus: Vec<usize>,
    /// `vrrp_no_swap`: lock memory.
    pub no_swap: bool,
    /// `vrrp_rlimit_rttime`: RLIMIT_RTTIME.
    pub rlimit_rttime_us: Option<u64>,
    /// 0: no automatic increase.
    pub max_auto: i32,
    /// Least time between automatic increases.
    pub min_auto_delay_us: u64,
}

fn raw_args<'a>(cfg: &'a KeepalivedConfig, word: &str) -> Option<&'a [String]> {
    cfg.global
        .extra
        .iter()
        .rev()
        .find(|o| o.keyword == word)
        .map(|o| o.args.as_slice())
}

impl ThreadPriority {
    /// The settings global_defs asks for.
    pub fn from_config(cfg: &KeepalivedConfig) -> ThreadPriority {
        let g = &cfg.global;
        let first_num = |w: &str| {
            raw_args(cfg, w)
                .and_then(|a| a.first())
                .and_then(|v| v.parse::<i64>().ok())
        };
        ThreadPriority {
            nice: g.vrrp_priority,
            rt_priority: first_num("vrrp_rt_priority")
                .filter(|p| (1..=99).contains(p))
                .map(|p| p as i32),
            cpus: raw_args(cfg, "vrrp_cpu_affinity")
                .map(|a| a.iter().filter_map(|c| c.parse().ok()).collect())
                .unwrap_or_default(),
            no_swap: g.vrrp_no_swap,
            rlimit_rttime_us: first_num("vrrp_rlimit_rttime")
                .or(first_num("vrrp_rlimit_rtime"))
                .filter(|v| *v >= 2)
                .map(|v| v as u64),
            max_auto: g.max_auto_priority.unwrap_or(0).max(0),
            min_auto_delay_us: first_num("min_auto_priority_delay")
                .filter(|v| (1..=10_000_000).contains(v))
                .map_or(DEFAULT_MIN_AUTO_DELAY_US, |v| v as u64),
        }
    }

    /// Applies nice, realtime priority, CPU affinity and memory locking to the calling thread
    /// (failures are logged: an unprivileged test run keeps going).
    pub fn apply_to_current_thread(&self) {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::id_t;
        if let Some(n) = self.nice {
            // SAFETY: setpriority on our own thread id.
            if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, n) } != 0 {
                log::warn!(
                    "Unable to set vrrp priority {n}: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
        if !self.cpus.is_empty() {
            // SAFETY: a zeroed cpu_set_t is valid; CPU_SET stays within its bounds for ids
            // below CPU_SETSIZE, which the filter guarantees.
            unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                for &c in self
                    .cpus
                    .iter()
                    .filter(|c| **c < libc::CPU_SETSIZE as usize)
                {
                    libc::CPU_SET(c, &mut set);
                }
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                    log::warn!(
                        "Unable to set vrrp cpu affinity: {}",
                        std::io::Error::last_os_error()
                    );
                }
            }
        }
        if self.no_swap {
            // SAFETY: mlockall has no memory-safety preconditions.
            if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } != 0 {
                log::warn!(
                    "Unable to lock process in memory - {}",
                    std::io::Error::last_os_error()
                );
            }
        }
        if let Some(p) = self.rt_priority {
            set_realtime(p, self.rlimit_rttime_us);
        } else if self.nice.is_none() {
            implicit_realtime();
        }
    }
}

/// Without `vrrp_rt_priority` or `vrrp_priority` the VRRP thread still runs SCHED_RR at the
/// lowest realtime priority. keepalived's VRRP is a process of its own; here it shares the
/// process with the checkers and the table writer, and on a busy machine the fair scheduler
/// can keep a woken thread waiting for a tick or more (4 ms each at HZ=250) — too long for
/// 10 ms adverts. The thread only ever runs for short bursts, so no RLIMIT_RTTIME is set
/// (the kernel's realtime throttling still bounds it). Not permitted (no root): stays as is.
fn implicit_realtime() {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: sched_setscheduler(0) on the calling thread with a valid param.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_RR, &param) } != 0 {
        log::debug!(
            "VRRP thread stays SCHED_OTHER: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// SCHED_RR at `priority` for the calling thread, with RLIMIT_RTTIME so a runaway realtime
/// thread cannot starve the machine.
fn set_realtime(priority: i32, rttime_us: Option<u64>) -> bool {
    let limit = rttime_us.unwrap_or(DEFAULT_RLIMIT_RTTIME_US);
    let rl = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: setrlimit with a valid rlimit; sched_setscheduler(0) targets this thread.
    unsafe {
        libc::setrlimit(libc::RLIMIT_RTTIME, &rl);
        let param = libc::sched_param {
            sched_priority: priority,
        };
        if libc::sched_setscheduler(0, libc::SCHED_RR, &param) != 0 {
            log::warn!(
                "Unable to set vrrp realtime priority {priority}: {}",
                std::io::Error::last_os_error()
            );
            return false;
        }
    }
    true
}

/// `max_auto_priority`: raises the thread's realtime priority each time it ran late.
#[derive(Debug, Clone)]
pub struct AutoPriority {
    max: i32,
    min_delay: Duration,
    current: i32,
    rttime_us: Option<u64>,
}

impl AutoPriority {
    /// Automatic priority raising with these settings.
    pub fn new(p: &ThreadPriority) -> AutoPriority {
        AutoPriority {
            max: p.max_auto,
            min_delay: Duration::from_micros(p.min_auto_delay_us),
            current: p.rt_priority.unwrap_or(0),
            rttime_us: p.rlimit_rttime_us,
        }
    }

    /// A timer fired `late` after its deadline: raise the priority when that is too late.
    pub fn timer_late(&mut self, late: Duration) {
        if self.max <= 0 || late <= self.min_delay || self.current >= self.max {
            return;
        }
        log::info!(
            "A thread timer expired {}.{:06} seconds ago",
            late.as_secs(),
            late.subsec_micros()
        );
        let next = self.current + 1;
        if set_realtime(next, self.rttime_us) {
            log::info!("Set realtime priority {next}");
            self.current = next;
        } else {
            // Not permitted: stop trying.
            self.max = 0;
        }
    }
}
