//! `vrrp_track_process`: how many running processes match each tracked one, and whether that
//! meets its quorum, with keepalived's `fork_delay` / `terminate_delay`.
//!
//! keepalived learns about processes from the kernel's process-events connector, which only
//! works in the initial network namespace; here a thread of its own reads `/proc` every
//! [`SCAN_EVERY`] (any namespace, same results, zombies excluded as keepalived does) and
//! sends the counts when they change. The matching rules are keepalived's: the process name
//! (`/proc/PID/comm`, at most 15 bytes) unless parameters, `param_match` or `full_command`
//! ask for the command line (`/proc/PID/cmdline`).

use std::collections::HashMap;
use std::time::Duration;

use keepalived_conf::model::{ParamMatch, TrackProcess};

/// How often `/proc` is read.
pub const SCAN_EVERY: Duration = Duration::from_millis(100);
/// The kernel's TASK_COMM_LEN - 1.
const COMM_LEN: usize = 15;

/// What one process looks like to the matcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    /// `/proc/PID/comm`.
    pub comm: String,
    /// `/proc/PID/cmdline`, split at NULs.
    pub cmdline: Vec<String>,
}

/// Whether `p` is an instance of the tracked process `t` (keepalived's rules).
pub fn matches(t: &TrackProcess, p: &ProcInfo) -> bool {
    let Some(want) = t.process.as_deref() else {
        return false;
    };
    if !t.full_command {
        let w: String = want.chars().take(COMM_LEN).collect();
        return p.comm == w;
    }
    let Some((prog, args)) = p.cmdline.split_first() else {
        return false;
    };
    if prog != want {
        return false;
    }
    match t.param_match {
        // full_command alone: the program only.
        None => true,
        Some(ParamMatch::Exact) => args == t.params.as_slice(),
        Some(ParamMatch::Partial) => {
            args.len() >= t.params.len() && args[..t.params.len()] == t.params[..]
        }
        Some(ParamMatch::Initial) => {
            let n = t.params.len();
            if n == 0 {
                return true;
            }
            args.len() >= n
                && args[..n - 1] == t.params[..n - 1]
                && args[n - 1].starts_with(&t.params[n - 1])
        }
    }
}

/// Whether `count` running instances satisfy `t`'s quorum.
pub fn quorum_met(t: &TrackProcess, count: usize) -> bool {
    let c = count as u64;
    c >= u64::from(t.quorum) && t.quorum_max.is_none_or(|m| c <= u64::from(m))
}

/// Every live (not zombie) process, from `/proc`.
pub fn scan(need_cmdline: bool) -> Vec<ProcInfo> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let base = format!("/proc/{pid}");
        // stat: "PID (comm) S ..." — the comm may hold ") ", so look from the last one.
        let Ok(stat) = std::fs::read_to_string(format!("{base}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if stat[close + 1..].trim_start().starts_with('Z') {
            continue;
        }
        let comm = stat[open + 1..close].to_string();
        let cmdline = if need_cmdline {
            std::fs::read(format!("{base}/cmdline"))
                .map(|b| {
                    b.split(|&c| c == 0)
                        .filter(|w| !w.is_empty())
                        .map(|w| String::from_utf8_lossy(w).into_owned())
                        .collect()
                })
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        out.push(ProcInfo { comm, cmdline });
    }
    out
}

/// Counts of matching processes per tracked-process name.
pub fn counts(tracked: &[TrackProcess], procs: &[ProcInfo]) -> HashMap<String, usize> {
    tracked
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                procs.iter().filter(|p| matches(t, p)).count(),
            )
        })
        .collect()
}

/// Starts the scanner thread for `tracked`; every change of the counts arrives on the
/// returned channel (the first scan always does). The thread ends with the channel.
pub fn watch(tracked: Vec<TrackProcess>) -> tokio::sync::mpsc::Receiver<HashMap<String, usize>> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let need_cmdline = tracked.iter().any(|t| t.full_command);
    let spawned = std::thread::Builder::new()
        .name("vrrp-procs".into())
        .spawn(move || {
            let mut last: Option<HashMap<String, usize>> = None;
            loop {
                let now = counts(&tracked, &scan(need_cmdline));
                if last.as_ref() != Some(&now) {
                    if tx.blocking_send(now.clone()).is_err() {
                        return;
                    }
                    last = Some(now);
                } else if tx.is_closed() {
                    return;
                }
                std::thread::sleep(SCAN_EVERY);
            }
        });
    if let Err(e) = spawned {
        log::error!("track_process: cannot start the process scanner: {e}");
    }
    rx
}

/// The up/down state of one tracked process with keepalived's delays: a gained quorum counts
/// after `fork_delay`, a lost one after `terminate_delay` (a bounce shorter than the delay is
/// not seen).
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessStatus {
    /// The quorum is met (as last reported).
    pub up: bool,
    /// A change waiting for its delay: (new state, due in µs of the engine's clock).
    pending: Option<(bool, u64)>,
}

impl ProcessStatus {
    /// Down, as keepalived starts a tracked process until it has looked.
    pub fn new() -> ProcessStatus {
        // keepalived starts a tracked process as down until it has looked.
        ProcessStatus {
            up: false,
            pending: None,
        }
    }

    /// The raw quorum state at `now_us`; true when `up` changed.
    pub fn observe(&mut self, t: &TrackProcess, met: bool, now_us: u64, first: bool) -> bool {
        if met == self.up {
            self.pending = None;
            return false;
        }
        let delay = if met { t.fork_delay } else { t.terminate_delay };
        match delay.filter(|d| *d > 0.0 && !first) {
            None => {
                self.up = met;
                self.pending = None;
                true
            }
            Some(d) => {
                if self.pending.map(|p| p.0) != Some(met) {
                    self.pending = Some((met, now_us + (d * 1e6) as u64));
                }
                self.tick(now_us)
            }
        }
    }

    /// Applies a pending change whose delay has passed; true when `up` changed.
    pub fn tick(&mut self, now_us: u64) -> bool {
        match self.pending {
            Some((state, due)) if now_us >= due => {
                self.pending = None;
                self.up = state;
                true
            }
            _ => false,
        }
    }
}

impl Default for ProcessStatus {
    fn default() -> Self {
        ProcessStatus::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(process: &str, params: &[&str], pm: Option<ParamMatch>, full: bool) -> TrackProcess {
        TrackProcess {
            name: "t".into(),
            span: keepalived_conf::Span::new(std::sync::Arc::from("t"), 1, 1),
            process: Some(process.into()),
            params: params.iter().map(|s| s.to_string()).collect(),
            param_match: pm,
            full_command: full,
            weight: 0,
            weight_reverse: false,
            quorum: 1,
            quorum_max: None,
            fork_delay: None,
            terminate_delay: None,
            extra: Vec::new(),
        }
    }

    fn proc(comm: &str, cmd: &[&str]) -> ProcInfo {
        ProcInfo {
            comm: comm.into(),
            cmdline: cmd.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn name_and_command_line_matching_like_keepalived() {
        let p = proc("haproxy", &["/usr/sbin/haproxy", "-f", "/etc/h.cfg", "-D"]);
        // Name: exact, not a pattern (pgrep "^haproxy$").
        assert!(matches(&tp("haproxy", &[], None, false), &p));
        assert!(!matches(&tp("hap", &[], None, false), &p));
        // Names are compared on the kernel's 15 bytes.
        let long = proc("a_very_long_pro", &[]);
        assert!(matches(&tp("a_very_long_process", &[], None, false), &long));
        // Command line: program alone with full_command, parameters exact by default.
        assert!(matches(&tp("/usr/sbin/haproxy", &[], None, true), &p));
        let exact = tp(
            "/usr/sbin/haproxy",
            &["-f", "/etc/h.cfg"],
            Some(ParamMatch::Exact),
            true,
        );
        assert!(!matches(&exact, &p));
        let partial = tp(
            "/usr/sbin/haproxy",
            &["-f", "/etc/h.cfg"],
            Some(ParamMatch::Partial),
            true,
        );
        assert!(matches(&partial, &p));
        let initial = tp(
            "/usr/sbin/haproxy",
            &["-f", "/etc/h"],
            Some(ParamMatch::Initial),
            true,
        );
        assert!(matches(&initial, &p));
        // param_match alone: no parameters allowed.
        let none = tp("/usr/sbin/haproxy", &[], Some(ParamMatch::Exact), true);
        assert!(!matches(&none, &p));
    }

    #[test]
    fn quorum_and_delays() {
        let mut t = tp("x", &[], None, false);
        t.quorum = 2;
        t.quorum_max = Some(3);
        assert!(!quorum_met(&t, 1) && quorum_met(&t, 2) && !quorum_met(&t, 4));
        t.terminate_delay = Some(0.5);
        t.fork_delay = Some(0.2);
        let mut s = ProcessStatus::new();
        assert!(s.observe(&t, true, 0, true), "the first look is immediate");
        // Lost for less than terminate_delay: still up.
        assert!(!s.observe(&t, false, 1_000_000, false));
        assert!(!s.observe(&t, true, 1_200_000, false));
        assert!(s.up);
        // Lost for longer: down once the delay passed.
        assert!(!s.observe(&t, false, 2_000_000, false));
        assert!(!s.tick(2_400_000));
        assert!(s.tick(2_500_000));
        assert!(!s.up);
    }

    #[test]
    fn scan_sees_this_process() {
        let procs = scan(true);
        let me = std::process::id();
        let comm = std::fs::read_to_string(format!("/proc/{me}/comm")).unwrap();
        assert!(procs.iter().any(|p| p.comm == comm.trim()));
    }
}
