//! keepalived 2.2.7's signal dumps, in its layouts (recorded from the real daemon:
//! `keepalived/tests/golden/keepalived-2.2.7/`), with the live state:
//!
//! * SIGUSR1 → `$TMPDIR/keepalived.data` (VRRP: instances with their current state, scripts),
//!   `keepalived_check.data` (virtual and real servers with the checkers' verdicts) and
//!   `keepalived_parent.data` (global definitions), each only when that part runs, as
//!   keepalived's three processes do;
//! * SIGUSR2 → `keepalived.stats` (VRRP counters); STATS_CLEAR writes it and restarts the
//!   counters from zero;
//! * SIGJSON → `keepalived.json` (VRRP instances: `[{"data":{…},"stats":{…}}]`).
//!
//! keepalived-exporter reads keepalived.data/keepalived.stats (text mode) or keepalived.json
//! (`--ka.json`) right after signalling: files are written whole under a temporary name and
//! renamed, so a reader never sees half of one. Mode 0600, as keepalived's umask 0177 gives.

mod data;
mod json;
mod stats;
mod view;

pub use view::{Baseline, InstanceView, Transitions, views};

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The directory keepalived writes its dumps to: `$TMPDIR`, else /tmp.
pub fn dir() -> PathBuf {
    std::env::var_os("TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"))
}

pub use data::{check_data, parent_data, vrrp_data};
pub use json::vrrp_json;
pub use stats::vrrp_stats;

/// Writes `text` to `dir/name` atomically (temporary file, then rename), mode 0600.
pub fn write_file(dir: &Path, name: &str, text: &str) -> std::io::Result<PathBuf> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    drop(f);
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}
