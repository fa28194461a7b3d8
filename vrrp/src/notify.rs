//! notify_* scripts, the generic `notify` script and notify_fifo, with keepalived's arguments:
//! `notify_master` etc. run as written; `notify` gets `INSTANCE|GROUP NAME STATE PRIORITY`
//! appended; the FIFO receives `INSTANCE "NAME" STATE PRIORITY` lines.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use keepalived_conf::model::Script;

/// Starts `script` with `extra` arguments appended (as keepalived runs it: direct exec or
/// `/bin/sh -c`, its own process group, its user/group); never waits for it: the returned
/// task reaps it.
pub fn spawn(script: &Script, extra: &[String]) -> Option<tokio::task::JoinHandle<()>> {
    let with_extra;
    let script = if extra.is_empty() {
        script
    } else {
        let mut s = script.clone();
        s.argv.extend(extra.iter().cloned());
        if let Some(raw) = &mut s.argv_bytes {
            raw.extend(extra.iter().map(|e| e.as_bytes().to_vec()));
        }
        s.command = format!("{} {}", s.command, extra.join(" "));
        with_extra = s;
        &with_extra
    };
    match keepalived_scripts::command_for(script, None, None).spawn() {
        Ok(mut child) => Some(tokio::spawn(async move {
            let _ = child.wait().await;
        })),
        Err(e) => {
            log::warn!("cannot run {}: {e}", script.command);
            None
        }
    }
}

/// Runs a vrrp_script once; success is exit status 0 within `timeout` (its process group is
/// killed at the timeout).
pub async fn run_check(script: &Script, timeout: Duration) -> bool {
    let mut cmd = keepalived_scripts::command_for(script, None, None);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    matches!(
        keepalived_scripts::run_command(cmd, Some(timeout)).await,
        Ok(keepalived_scripts::ScriptExit::Exited(0))
    )
}

/// A notify FIFO, created if missing and held open read-write so writes never block or fail
/// for want of a reader (as keepalived does).
pub struct Fifo {
    file: std::fs::File,
}

impl Fifo {
    /// Opens (creating if missing) the FIFO at `path`.
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

    /// Writes keepalived's `KIND "NAME" STATE PRIORITY` line.
    pub fn write_line(&mut self, kind: &str, name: &str, state: &str, priority: u8) {
        self.write_raw(&fifo_line(kind, name, state, priority));
    }

    /// Writes a line as given (the LVS side's `VS …` / `RS …` lines share the FIFOs).
    pub fn write_raw(&mut self, line: &str) {
        if let Err(e) = self.file.write_all(line.as_bytes()) {
            log::warn!("notify fifo: {e}");
        }
    }
}

/// The line keepalived writes for an instance state (used by tests too).
pub fn fifo_line(kind: &str, name: &str, state: &str, priority: u8) -> String {
    format!("{kind} \"{name}\" {state} {priority}\n")
}
