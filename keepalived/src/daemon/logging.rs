//! keepalived's log destinations: syslog (default), and the console with `-l`/`--log-console`.
//!
//! keepalived 2.2.7 logs from three processes with three syslog idents: `Keepalived` (parent),
//! `Keepalived_vrrp` and `Keepalived_healthcheckers`; log filters and alerts match on them.
//! We are one process, so the ident follows the log record's target: the `vrrp` crate and
//! records with target [`VRRP`] go out as `Keepalived_vrrp`, the `healthcheck` crate and target
//! [`CHECKER`] as `Keepalived_healthcheckers`, the rest as `Keepalived`.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::ffi::CString;
use std::io::Write;
use std::sync::Mutex;

/// Log target of the daemon's VRRP lines.
pub const VRRP: &str = "vrrp";
/// Log target of the daemon's checker and virtual-server lines.
pub const CHECKER: &str = "checker";

/// syslog ident for a log record's target.
pub fn ident(target: &str) -> &'static std::ffi::CStr {
    let first = target.split("::").next().unwrap_or(target);
    match first {
        VRRP => c"Keepalived_vrrp",
        CHECKER | "healthcheck" => c"Keepalived_healthcheckers",
        _ => c"Keepalived",
    }
}

/// openlog/syslog pairs must not interleave between threads (the ident is process-wide).
static SYSLOG: Mutex<()> = Mutex::new(());

struct Logger {
    console: bool,
    syslog: bool,
    detail: bool,
    facility: libc::c_int,
}

impl Log for Logger {
    fn enabled(&self, m: &Metadata) -> bool {
        self.detail || m.level() <= Level::Info
    }

    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let msg = r.args().to_string();
        if self.console {
            let _ = writeln!(std::io::stderr(), "{msg}");
        }
        if self.syslog
            && let Ok(c) = CString::new(msg.replace('\0', " "))
        {
            let prio = match r.level() {
                Level::Error => libc::LOG_ERR,
                Level::Warn => libc::LOG_WARNING,
                Level::Info => libc::LOG_INFO,
                _ => libc::LOG_DEBUG,
            };
            let _one_at_a_time = SYSLOG.lock().unwrap_or_else(|e| e.into_inner());
            // SAFETY: the ident is a static C string (openlog keeps the pointer); the format
            // and message are valid NUL-terminated strings for the call's duration.
            unsafe {
                libc::openlog(ident(r.target()).as_ptr(), libc::LOG_PID, self.facility);
                libc::syslog(prio, c"%s".as_ptr(), c.as_ptr());
            }
        }
    }

    fn flush(&self) {}
}

/// keepalived's `-S` facility: 0..7 or local0..local7, user, daemon (the default).
fn facility(arg: Option<&str>) -> libc::c_int {
    const LOCAL: [libc::c_int; 8] = [
        libc::LOG_LOCAL0,
        libc::LOG_LOCAL1,
        libc::LOG_LOCAL2,
        libc::LOG_LOCAL3,
        libc::LOG_LOCAL4,
        libc::LOG_LOCAL5,
        libc::LOG_LOCAL6,
        libc::LOG_LOCAL7,
    ];
    let Some(a) = arg else {
        return libc::LOG_DAEMON;
    };
    let n = a.strip_prefix("local").unwrap_or(a);
    match (a, n.parse::<usize>()) {
        ("user", _) => libc::LOG_USER,
        (_, Ok(i)) if i < 8 => LOCAL[i],
        _ => libc::LOG_DAEMON,
    }
}

pub fn init(console: bool, no_syslog: bool, detail: bool, facility_arg: Option<&str>) {
    let logger = Logger {
        console,
        syslog: !no_syslog,
        detail,
        facility: facility(facility_arg),
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(if detail {
            LevelFilter::Debug
        } else {
            LevelFilter::Info
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idents_follow_keepalived_2_2_7s_processes() {
        assert_eq!(ident("vrrp::daemon"), c"Keepalived_vrrp");
        assert_eq!(ident(VRRP), c"Keepalived_vrrp");
        assert_eq!(
            ident("healthcheck::supervisor"),
            c"Keepalived_healthcheckers"
        );
        assert_eq!(ident(CHECKER), c"Keepalived_healthcheckers");
        assert_eq!(ident("keepalived::daemon"), c"Keepalived");
        // A crate whose name merely starts like one of them is not it.
        assert_eq!(ident("vrrpish"), c"Keepalived");
    }

    #[test]
    fn facilities_as_keepalived_2_2_7_takes_them() {
        assert_eq!(facility(Some("3")), libc::LOG_LOCAL3);
        assert_eq!(facility(Some("local7")), libc::LOG_LOCAL7);
        assert_eq!(facility(Some("user")), libc::LOG_USER);
        assert_eq!(facility(Some("daemon")), libc::LOG_DAEMON);
        assert_eq!(facility(None), libc::LOG_DAEMON);
    }
}
