//! notify_* scripts, the generic `notify` script and notify_fifo, with keepalived's arguments:
//! `notify_master` etc. run as written; `notify` gets `INSTANCE|GROUP NAME STATE PRIORITY`
//! appended; the FIFO receives `INSTANCE "NAME" STATE PRIORITY` lines.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use keepalived_conf::model::Script;

/// Starts `script` with `extra` arguments appended; never waits for it (a task reaps it).
pub fn spawn(script: &Script, extra: &[String]) {
    let Some((prog, args)) = script.argv.split_first() else {
        return;
    };
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args).args(extra);
    match cmd.spawn() {
        Ok(mut child) => {
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
        }
        Err(e) => log::warn!("cannot run {}: {e}", script.command),
    }
}

/// Runs a vrrp_script once; success is exit status 0 within `timeout`.
pub async fn run_check(script: &Script, timeout: Duration) -> bool {
    let Some((prog, args)) = script.argv.split_first() else {
        return false;
    };
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args)
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let Ok(mut child) = cmd.spawn() else {
        return false;
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => status.success(),
        _ => false,
    }
}

/// A notify FIFO, created if missing and held open read-write so writes never block or fail
/// for want of a reader (as keepalived does).
pub struct Fifo {
    file: std::fs::File,
}

impl Fifo {
    pub fn open(path: &Path) -> std::io::Result<Fifo> {
        if !path.exists() {
            nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))?;
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)?;
        Ok(Fifo { file })
    }

    pub fn write_line(&mut self, kind: &str, name: &str, state: &str, priority: u8) {
        let line = format!("{kind} \"{name}\" {state} {priority}\n");
        if let Err(e) = self.file.write_all(line.as_bytes()) {
            log::warn!("notify fifo: {e}");
        }
    }
}

/// The line keepalived writes for an instance state (used by tests too).
pub fn fifo_line(kind: &str, name: &str, state: &str, priority: u8) -> String {
    format!("{kind} \"{name}\" {state} {priority}\n")
}
