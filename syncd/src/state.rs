//! Where a running sync daemon is recorded. The pin directory is on bpffs, which holds no
//! regular files, so each data plane gets a directory under `/run/xlvs/sync/` (or
//! `$XLVS_RUN_DIR/sync/`) named after its pin directory (`/sys/fs/bpf/xlvs` ->
//! `sys_fs_bpf_xlvs`), holding per role: `<role>.json` (settings, pid, process start time),
//! `<role>.stats` (counters, JSON), `<role>.log` (the daemon's stderr, appended to and kept
//! after it stops), and `lock`. Record and counters go when the daemon stops.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{Role, Settings};

/// The argument that marks a sync daemon process (hidden mode of `ipvsadm`, or `xlvs-syncd`).
pub const DAEMON_ARG: &str = "--xlvs-sync-daemon";

/// A running daemon as recorded by itself once its socket was set up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Running {
    /// What it runs with.
    pub settings: Settings,
    /// Its process id.
    pub pid: u32,
    /// /proc/<pid>/stat start time: a pid reused by another process does not match.
    pub start_time: u64,
    /// The data plane it syncs.
    pub pin_dir: PathBuf,
}

/// Counters a daemon keeps (written to `<role>.stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Master: datagrams and records sent, send failures.
    pub sent_messages: u64,
    /// Records sent.
    pub sent_conns: u64,
    /// Datagrams that could not be sent.
    pub send_errors: u64,
    /// Backup: datagrams received, dropped whole (malformed), of another sync id; records
    /// skipped one by one (protocol/state/parameters), imported new, refreshed, without a
    /// local service or destination, unsupported.
    pub received: u64,
    /// Datagrams dropped whole as malformed.
    pub malformed: u64,
    /// Datagrams of another sync id.
    pub other_syncid: u64,
    /// Records skipped one by one.
    pub skipped: u64,
    /// Records imported as new connections.
    pub inserted: u64,
    /// Records that refreshed known connections.
    pub refreshed: u64,
    /// Records with no local service or destination.
    pub no_service: u64,
    /// Records of protocols or methods not synced here.
    pub unsupported: u64,
    /// Records the data plane refused to write.
    pub import_errors: u64,
}

/// The state directory of the data plane pinned at `pin_dir`.
pub fn dir(pin_dir: &Path) -> PathBuf {
    dataplane::rundir::dir(pin_dir, "sync")
}

/// The file `ext` of the daemon of `role` under the run directory.
pub fn file(pin_dir: &Path, role: Role, ext: &str) -> PathBuf {
    dir(pin_dir).join(format!("{}.{ext}", role.name()))
}

pub use dataplane::rundir::{start_time, write_atomic};

/// Whether `r` is a live daemon of ours: the pid runs, started when recorded, with our marker.
pub fn alive(r: &Running) -> bool {
    if start_time(r.pid) != Some(r.start_time) {
        return false;
    }
    fs::read(format!("/proc/{}/cmdline", r.pid))
        .map(|c| {
            let mut args = c.split(|b| *b == 0);
            // `xlvs-syncd` in the foreground, or any binary in the hidden daemon mode.
            let name = args.next().unwrap_or_default();
            name.rsplit(|b| *b == b'/').next() == Some(b"xlvs-syncd".as_slice())
                || args.any(|a| a == DAEMON_ARG.as_bytes())
        })
        .unwrap_or(false)
}

/// The recorded daemon of `role`, if any and alive (a stale record is removed).
pub fn running(pin_dir: &Path, role: Role) -> Option<Running> {
    let path = file(pin_dir, role, "json");
    let text = fs::read_to_string(&path).ok()?;
    match serde_json::from_str::<Running>(&text) {
        Ok(r) if alive(&r) => Some(r),
        _ => {
            let _ = fs::remove_file(&path);
            None
        }
    }
}

/// Counters last written by the daemon of `role`.
pub fn stats(pin_dir: &Path, role: Role) -> Option<Stats> {
    let text = fs::read_to_string(file(pin_dir, role, "stats")).ok()?;
    serde_json::from_str(&text).ok()
}

/// Removes a daemon's record and counters (its log stays, for what happened).
pub fn remove(pin_dir: &Path, role: Role) {
    for ext in ["json", "stats"] {
        let _ = fs::remove_file(file(pin_dir, role, ext));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_directory_per_pin_directory() {
        let d = dir(Path::new("/sys/fs/bpf/xlvs"));
        assert!(d.ends_with("sync/sys_fs_bpf_xlvs"), "{}", d.display());
        assert_ne!(dir(Path::new("/sys/fs/bpf/xlvs-a")), d);
    }

    #[test]
    fn our_own_process_is_alive_only_with_the_marker() {
        let me = std::process::id();
        let r = Running {
            settings: crate::config::Settings::resolve(
                &crate::config::Request::new(Role::Master),
                1500,
            ),
            pid: me,
            start_time: start_time(me).unwrap(),
            pin_dir: "/x".into(),
        };
        // The test binary has no DAEMON_ARG in its command line.
        assert!(!alive(&r));
        let mut stale = r.clone();
        stale.start_time += 1;
        assert!(!alive(&stale));
    }
}
