//! Honest test accounting. A test that cannot run here (not root, a tool or kernel feature
//! missing) calls [`skip`] and returns: the reason goes to stderr and, when `XLVS_SKIP_LOG` names a
//! file, one line `TEST<TAB>REASON` is appended to it. `scripts/test.sh` sets that file, takes the
//! skipped tests off the passed ones, prints them with their reasons and, under `CI=true`, fails
//! when a test skipped that `tests/expected-skips` does not declare for that machine.

use std::io::Write;

/// Records that the calling test did not run, and why.
pub fn skip(reason: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("(unnamed thread)")
        .to_string();
    let binary = std::env::args()
        .next()
        .and_then(|p| {
            std::path::Path::new(&p)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .map(|n| n.rsplit_once('-').map_or(n.clone(), |(b, _)| b.to_string()))
        .unwrap_or_default();
    eprintln!("skipped: {reason}");
    if let Some(path) = std::env::var_os("XLVS_SKIP_LOG")
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = writeln!(f, "{binary}::{test}\t{reason}");
    }
}

/// True when running as root; otherwise records the skip and returns false.
pub fn require_root() -> bool {
    if crate::netns::is_root() {
        return true;
    }
    skip("needs root");
    false
}

/// True when `tool` is on PATH; otherwise records the skip and returns false.
pub fn require_tool(tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
    if !found {
        skip(&format!("{tool} is not installed"));
    }
    found
}
