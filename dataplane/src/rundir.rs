//! Where processes serving one data plane keep their files. The pin directory is on bpffs,
//! which holds no regular files, so each data plane gets directories under `/run/xlvs`
//! (`$XLVS_RUN_DIR`) named after its pin directory (`/sys/fs/bpf/xlvs` -> `sys_fs_bpf_xlvs`):
//! `sync/<key>/` (connection-sync daemons), `bridge/<key>/` (the route bridge).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// `/run/xlvs`, or `$XLVS_RUN_DIR`.
pub fn base() -> PathBuf {
    std::env::var_os("XLVS_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/xlvs"))
}

/// The name of `pin_dir` in file names: its path with `/` as `_`.
pub fn key(pin_dir: &Path) -> String {
    let key: String = pin_dir
        .to_string_lossy()
        .trim_matches('/')
        .chars()
        .map(|c| if c == '/' { '_' } else { c })
        .collect();
    if key.is_empty() { "root".into() } else { key }
}

/// `<base>/<what>/<key of pin_dir>`.
pub fn dir(pin_dir: &Path, what: &str) -> PathBuf {
    base().join(what).join(key(pin_dir))
}

/// Writes a file atomically (temporary file, then rename), so readers never see half of it.
pub fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    if let Some(d) = path.parent() {
        fs::create_dir_all(d)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, text)?;
    fs::rename(&tmp, path)
}

/// The start time (clock ticks since boot) of a process, from /proc/<pid>/stat: with the pid,
/// it names a process (a pid reused by another process has another start time).
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_pin_directories() {
        assert_eq!(key(Path::new("/sys/fs/bpf/xlvs")), "sys_fs_bpf_xlvs");
        assert_eq!(key(Path::new("/")), "root");
    }

    #[test]
    fn our_own_start_time_is_known_and_stable() {
        let me = std::process::id();
        assert!(start_time(me).is_some());
        assert_eq!(start_time(me), start_time(me));
        assert_eq!(start_time(u32::MAX), None);
    }
}
