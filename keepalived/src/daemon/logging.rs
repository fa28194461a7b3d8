//! keepalived's log destinations: syslog (default), and the console with `-l`/`--log-console`.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::ffi::CString;
use std::io::Write;

struct Logger {
    console: bool,
    syslog: bool,
    detail: bool,
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
            // SAFETY: both pointers are valid NUL-terminated strings for the call's duration.
            unsafe { libc::syslog(prio, c"%s".as_ptr(), c.as_ptr()) };
        }
    }

    fn flush(&self) {}
}

/// keepalived's `-S` facility number (0..7 → local0..local7).
fn facility(n: Option<&str>) -> libc::c_int {
    match n.and_then(|s| s.parse::<u8>().ok()) {
        Some(0) => libc::LOG_LOCAL0,
        Some(1) => libc::LOG_LOCAL1,
        Some(2) => libc::LOG_LOCAL2,
        Some(3) => libc::LOG_LOCAL3,
        Some(4) => libc::LOG_LOCAL4,
        Some(5) => libc::LOG_LOCAL5,
        Some(6) => libc::LOG_LOCAL6,
        Some(7) => libc::LOG_LOCAL7,
        _ => libc::LOG_DAEMON,
    }
}

pub fn init(console: bool, no_syslog: bool, detail: bool, facility_arg: Option<&str>) {
    let syslog = !no_syslog;
    if syslog {
        // SAFETY: the identity is a static C string, as openlog keeps the pointer.
        unsafe {
            libc::openlog(
                c"Keepalived".as_ptr(),
                libc::LOG_PID,
                facility(facility_arg),
            )
        };
    }
    let logger = Logger {
        console,
        syslog,
        detail,
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(if detail {
            LevelFilter::Debug
        } else {
            LevelFilter::Info
        });
    }
}
