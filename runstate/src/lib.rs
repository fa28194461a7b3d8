//! The live state that xlvs' daemons publish for `xlvs metrics` (and anyone else): small JSON
//! files in the run directory of their data plane (`/run/xlvs/state/<pin directory's key>`, under
//! `$XLVS_RUN_DIR` if set; one per data plane, so several directors on one machine keep their
//! own), each replaced whole (written
//! under a temporary name, then renamed), each naming the pid that wrote it so a reader can tell
//! a dead writer's file from a live one.
//!
//! * `keepalived-state.json` ([`Keepalived`]): written by keepalived every
//!   [`KEEPALIVED_PERIOD`] — VRRP instances, virtual servers' quorum, reals' checker verdicts
//!   and last probe latency.
//! * `bridge-state.json` ([`Bridge`]): for the route-announcement bridge (quagga-bridge) to
//!   write its announcements; `xlvs metrics` exports them when the file is there.
// Every public item says what it is for; CI's clippy (-D warnings) makes this an error.
#![warn(missing_docs)]

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often keepalived rewrites its state.
pub const KEEPALIVED_PERIOD: Duration = Duration::from_secs(2);
/// File name of keepalived's state under the run directory.
pub const KEEPALIVED_FILE: &str = "keepalived-state.json";
/// File name of the route bridge's state under the run directory.
pub const BRIDGE_FILE: &str = "bridge-state.json";

/// The state directory of the data plane pinned at `pin_dir`.
pub fn dir(pin_dir: &Path) -> PathBuf {
    dataplane::rundir::dir(pin_dir, "state")
}

/// keepalived's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Keepalived {
    /// Process that wrote it (a dead writer makes the file stale).
    pub pid: u32,
    /// Seconds since the epoch when written.
    pub written: f64,
    /// Its VRRP instances.
    pub vrrp: Vec<VrrpInstance>,
    /// Its virtual servers.
    pub virtual_servers: Vec<VirtualServer>,
}

/// One VRRP instance's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VrrpInstance {
    /// Instance name.
    pub name: String,
    /// Virtual router id.
    pub vrid: u8,
    /// Interface it runs on.
    pub interface: String,
    /// INIT, BACKUP, MASTER, FAULT.
    pub state: String,
    /// Configured priority.
    pub base_priority: u8,
    /// Priority after tracking.
    pub effective_priority: u8,
    /// State changes since keepalived started.
    pub transitions: u64,
    /// Times it became MASTER.
    pub became_master: u64,
    /// Times it left MASTER.
    pub released_master: u64,
    /// Adverts sent.
    pub adverts_sent: u64,
    /// Adverts received.
    pub adverts_received: u64,
}

/// One virtual server's health.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VirtualServer {
    /// keepalived's name for it: `[198.18.100.1]:tcp:80`, `FWM 1`.
    pub name: String,
    /// Enough live weight to meet its quorum.
    pub quorum_up: bool,
    /// Its real servers.
    pub reals: Vec<Real>,
}

/// One real server's health.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Real {
    /// Its address, as text.
    pub address: String,
    /// Its port.
    pub port: u16,
    /// Every checker says up.
    pub up: bool,
    /// Weight it has in the table now.
    pub weight: i32,
    /// The last probe (of any of its checkers): which, its result and how long it took.
    pub last_checker: Option<String>,
    /// Whether that probe passed.
    pub last_check_ok: Option<bool>,
    /// How long that probe took.
    pub last_check_seconds: Option<f64>,
}

/// The route-announcement bridge's state (written by the bridge).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bridge {
    /// Process that wrote it.
    pub pid: u32,
    /// Seconds since the epoch when written.
    pub written: f64,
    /// One entry per VIP prefix.
    pub announcements: Vec<Announcement>,
}

/// One VIP's announcement.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Announcement {
    /// The announced prefix (`198.18.100.1/32`).
    pub prefix: String,
    /// The routing daemon it goes through (`frr`, `bird`, `quagga`…).
    pub via: String,
    /// Announced now (false: withdrawn, e.g. the VIP's checks failed or VRRP is BACKUP).
    pub announced: bool,
    /// Announce/withdraw changes since the bridge started.
    pub changes: u64,
}

/// Writes `value` as `dir/name`, replacing the old file at once.
pub fn write<T: Serialize>(dir: &Path, name: &str, value: &T) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(value).map_err(std::io::Error::other)?)?;
    drop(f);
    std::fs::rename(&tmp, dir.join(name))
}

/// Reads `dir/name`; `None` when it is missing, unreadable, or its writer (`pid`) is gone.
pub fn read_live<T: DeserializeOwned + HasPid>(dir: &Path, name: &str) -> Option<T> {
    let text = std::fs::read(dir.join(name)).ok()?;
    let v: T = serde_json::from_slice(&text).ok()?;
    // SAFETY: kill with signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(v.pid() as libc::pid_t, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    alive.then_some(v)
}

/// A state file's writer.
pub trait HasPid {
    /// The writer's pid, to tell a live file from a stale one.
    fn pid(&self) -> u32;
}

impl HasPid for Keepalived {
    fn pid(&self) -> u32 {
        self.pid
    }
}

impl HasPid for Bridge {
    fn pid(&self) -> u32 {
        self.pid
    }
}

/// Seconds since the epoch now.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_writers_file_is_not_read() {
        let dir = std::env::temp_dir().join(format!("runstate-test-{}", std::process::id()));
        let mine = Keepalived {
            pid: std::process::id(),
            // A time JSON carries exactly (serde_json's default float parsing may differ from
            // the written value in the last digit).
            written: 1_796_613_893.5,
            ..Default::default()
        };
        write(&dir, KEEPALIVED_FILE, &mine).unwrap();
        assert_eq!(read_live::<Keepalived>(&dir, KEEPALIVED_FILE), Some(mine));
        // pid_max is at most 2^22: this pid cannot exist.
        let dead = Keepalived {
            pid: 1 << 23,
            ..Default::default()
        };
        write(&dir, KEEPALIVED_FILE, &dead).unwrap();
        assert_eq!(read_live::<Keepalived>(&dir, KEEPALIVED_FILE), None);
        assert_eq!(read_live::<Keepalived>(&dir, "missing.json"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
