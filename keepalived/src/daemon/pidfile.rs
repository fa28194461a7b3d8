//! keepalived's pid files: refuse to start twice, write ours, remove them on exit.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The pid recorded in `path` if that process still exists.
pub fn running(path: &Path) -> Option<i32> {
    let pid: i32 = fs::read_to_string(path).ok()?.trim().parse().ok()?;
    // Signal 0: does the process exist (and is it ours to signal)?
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
    (alive && pid != std::process::id() as i32).then_some(pid)
}

/// Pid files written by this process; removed on drop.
pub struct PidFiles(Vec<PathBuf>);

impl PidFiles {
    pub fn write(paths: &[PathBuf]) -> io::Result<PidFiles> {
        let pid = std::process::id();
        let mut written = PidFiles(Vec::new());
        for p in paths {
            if let Some(dir) = p.parent() {
                fs::create_dir_all(dir)?;
            }
            fs::write(p, format!("{pid}\n"))
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
            written.0.push(p.clone());
        }
        Ok(written)
    }
}

impl Drop for PidFiles {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = fs::remove_file(p);
        }
    }
}
