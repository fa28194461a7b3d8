//! keepalived 2.2.7's signals: what each one does, their numbers (`--signum`), and the rule
//! that no asynchronous signal kills the daemon unless it means "stop".
//!
//! keepalived 2.2.7 (`keepalived --signum=NAME`): STOP 15, RELOAD 1, DATA 10, STATS 12,
//! STATS_CLEAR 63 (SIGRTMAX - 1), JSON 36 (SIGRTMIN + 2) with glibc's SIGRTMIN of 34.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// SIGJSON: write keepalived.json.
pub fn sig_json() -> i32 {
    libc::SIGRTMIN() + 2
}

/// SIGSTATS_CLEAR: write keepalived.stats, then clear the counters.
pub fn sig_stats_clear() -> i32 {
    libc::SIGRTMAX() - 1
}

/// `--signum=NAME`: the signal keepalived uses for that function.
pub fn signum(name: &str) -> Option<i32> {
    Some(match name {
        "STOP" => libc::SIGTERM,
        "RELOAD" => libc::SIGHUP,
        "DATA" => libc::SIGUSR1,
        "STATS" => libc::SIGUSR2,
        "STATS_CLEAR" => sig_stats_clear(),
        "JSON" => sig_json(),
        _ => return None,
    })
}

/// What a received signal asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sig {
    Reload,
    Stop,
    /// SIGUSR1: keepalived.data.
    Data,
    /// SIGUSR2: keepalived.stats.
    Stats,
    /// STATS_CLEAR: keepalived.stats, then the counters restart from zero.
    StatsClear,
    /// SIGJSON: keepalived.json.
    Json,
}

/// Asynchronous signals whose default action would end (or stop) the process and that
/// keepalived does not use: ignored, so a stray `kill -ALRM` or a terminal hangup of a
/// foreground run never takes the load balancer down. Faults (SEGV, BUS, FPE, ILL, ABRT, TRAP,
/// SYS) keep their default: they are the program's own errors.
const IGNORED: &[libc::c_int] = &[
    libc::SIGPIPE,
    libc::SIGALRM,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGIO,
    libc::SIGPWR,
    libc::SIGQUIT,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGSTKFLT,
];

/// The daemon's signal streams. Created before anything else runs, so a signal that arrives
/// during start-up is queued, not fatal.
pub struct Signals {
    hup: Signal,
    term: Signal,
    int: Signal,
    usr1: Signal,
    usr2: Signal,
    json: Signal,
    stats_clear: Signal,
}

impl Signals {
    pub fn new() -> std::io::Result<Signals> {
        let s = Signals {
            hup: signal(SignalKind::hangup())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            usr1: signal(SignalKind::user_defined1())?,
            usr2: signal(SignalKind::user_defined2())?,
            json: signal(SignalKind::from_raw(sig_json()))?,
            stats_clear: signal(SignalKind::from_raw(sig_stats_clear()))?,
        };
        ignore_the_rest();
        Ok(s)
    }

    /// The next signal (several of one kind received while busy count once, as in keepalived).
    pub async fn next(&mut self) -> Sig {
        tokio::select! {
            _ = self.hup.recv() => Sig::Reload,
            _ = self.term.recv() => Sig::Stop,
            _ = self.int.recv() => Sig::Stop,
            _ = self.usr1.recv() => Sig::Data,
            _ = self.usr2.recv() => Sig::Stats,
            _ = self.json.recv() => Sig::Json,
            _ = self.stats_clear.recv() => Sig::StatsClear,
        }
    }
}

/// Ignores [`IGNORED`] and every real-time signal we do not handle (their default is to
/// terminate).
fn ignore_the_rest() {
    let handled = [sig_json(), sig_stats_clear()];
    let realtime = libc::SIGRTMIN()..=libc::SIGRTMAX();
    for sig in IGNORED
        .iter()
        .copied()
        .chain(realtime.filter(|s| !handled.contains(s)))
    {
        // SAFETY: SIG_IGN for an asynchronous signal has no memory-safety implications.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers `keepalived --signum` prints in 2.2.7 (glibc, x86-64/arm64).
    #[test]
    fn signal_numbers_are_keepalived_2_2_7s() {
        let want = [
            ("STOP", 15),
            ("RELOAD", 1),
            ("DATA", 10),
            ("STATS", 12),
            ("STATS_CLEAR", 63),
            ("JSON", 36),
        ];
        for (name, n) in want {
            assert_eq!(signum(name), Some(n), "{name}");
        }
        assert_eq!(signum("TDATA"), None);
    }
}
