//! Announcements across a restart: when keepalived stops with `--dont-release-ipvs` (its
//! virtual servers stay in the data plane, which keeps forwarding), a small holder process
//! (keepalived's own binary in a hidden mode) keeps the liveness device open for
//! `restart_grace` seconds. A keepalived that starts meanwhile attaches to the device and
//! ends the holder: the VIPs were never withdrawn. Otherwise the holder exits when the grace
//! ends — the device and its announcements go — and stops the own routing daemons.
//! A holder that dies early (killed) withdraws too: nothing outlives its holder.

use crate::process;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// keepalived's hidden mode: `keepalived --xlvs-route-lease SECONDS [PIDFILE MARKER]…`, the
/// device's queue on descriptor 3.
pub const ARG: &str = "--xlvs-route-lease";
const QUEUE_FD: i32 = 3;

#[derive(Serialize, Deserialize)]
struct Record {
    pid: u32,
    start_time: u64,
}

fn record_path(run_dir: &Path) -> PathBuf {
    run_dir.join("lease.json")
}

/// Starts a holder of `queue` for `grace` seconds; when the grace ends it stops the processes
/// of `own` (pid file, command-line marker).
pub fn spawn(run_dir: &Path, queue: OwnedFd, grace: f64, own: &[(PathBuf, String)]) -> Result<u32> {
    let exe = std::env::current_exe().context("cannot find keepalived's executable")?;
    let mut cmd = Command::new(exe);
    cmd.arg(ARG).arg(format!("{grace}"));
    for (pid_file, marker) in own {
        cmd.arg(pid_file).arg(marker);
    }
    let raw = queue.as_raw_fd();
    // SAFETY: between fork and exec only async-signal-safe calls (dup2, setsid).
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, QUEUE_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::setsid();
            Ok(())
        });
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start the route lease holder")?;
    drop(queue);
    let pid = child.id();
    let rec = Record {
        pid,
        start_time: dataplane::rundir::start_time(pid).unwrap_or(0),
    };
    dataplane::rundir::write_atomic(&record_path(run_dir), &serde_json::to_string(&rec)?)?;
    Ok(pid)
}

/// Ends the holder of `run_dir`'s device (after this process attached to the device).
pub fn release(run_dir: &Path) {
    let path = record_path(run_dir);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    let _ = std::fs::remove_file(&path);
    let Ok(r) = serde_json::from_str::<Record>(&text) else {
        return;
    };
    let ours = dataplane::rundir::start_time(r.pid) == Some(r.start_time)
        && std::fs::read(format!("/proc/{}/cmdline", r.pid))
            .map(|c| c.split(|b| *b == 0).any(|a| a == ARG.as_bytes()))
            .unwrap_or(false);
    if ours {
        process::stop(r.pid, Duration::from_secs(1));
        log::info!(
            "route bridge: took the announcements over from the lease holder (pid {})",
            r.pid
        );
    }
}

/// The holder's main (`args` after ARG): returns the exit code.
pub fn hold(args: &[String]) -> i32 {
    let grace: f64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    std::thread::sleep(Duration::from_secs_f64(grace.max(0.0)));
    // Nobody took over: the device goes with our descriptor, and with it the announcements.
    // SAFETY: closing the descriptor we were given.
    unsafe { libc::close(QUEUE_FD) };
    std::thread::sleep(Duration::from_millis(500));
    for pair in args[1.min(args.len())..].chunks(2) {
        if let [pid_file, marker] = pair
            && let Some(pid) = process::running(Path::new(pid_file), marker)
        {
            process::stop(pid, Duration::from_secs(3));
        }
    }
    0
}
