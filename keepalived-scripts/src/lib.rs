//! Running scripts the way keepalived does (`notify.c: system_call`): notify scripts, VRRP
//! track scripts, MISC_CHECK, quorum and startup/shutdown scripts all go through here.
//!
//! The child gets its own process group (so a timeout kills everything it
//! started), dies with us (`PR_SET_PDEATHSIG`), and runs as the configured
//! user/group. A program found as an executable file is exec'd directly
//! with its arguments; anything else goes through `/bin/sh -c` as
//! keepalived's `system()` fallback does.
//! On timeout: SIGTERM to the group, SIGKILL to the group 2 s later (as
//! keepalived's misc checker).
// Every public item says what it is for; CI's clippy (-D warnings) makes this an error.
#![warn(missing_docs)]

pub mod smtp;

use keepalived_conf::model::Script;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Gid, Group, Pid, Uid, User};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;
use tokio::process::Command;

/// How a script ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptExit {
    /// Exit code.
    Exited(i32),
    /// Killed by a signal we did not send.
    Signaled(i32),
    /// Did not finish in time; its process group was killed.
    TimedOut,
}

impl std::fmt::Display for ScriptExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScriptExit::Exited(c) => write!(f, "exited with status {c}"),
            ScriptExit::Signaled(s) => write!(f, "failed due to signal {s}"),
            ScriptExit::TimedOut => write!(f, "timed out"),
        }
    }
}

/// Finds `prog` the way execvp would; `None` when not an executable file.
pub fn resolve_program(prog: &str) -> Option<PathBuf> {
    let is_exec = |p: &Path| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if prog.contains('/') {
        let p = PathBuf::from(prog);
        return is_exec(&p).then_some(p);
    }
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin:/usr/sbin:/sbin".into());
    path.split(':')
        .map(|d| Path::new(d).join(prog))
        .find(|p| is_exec(p))
}

/// Builds the command for a script: direct exec when the program is an
/// executable file, `/bin/sh -c COMMAND` otherwise.
pub fn command_for(script: &Script, user: Option<&str>, group: Option<&str>) -> Command {
    let mut cmd = match script.argv.first().and_then(|p| resolve_program(p)) {
        Some(prog) => {
            let mut c = Command::new(prog);
            match &script.argv_bytes {
                // Words an escape made non-UTF-8 are passed as the bytes keepalived would pass.
                Some(raw) => {
                    use std::os::unix::ffi::OsStrExt;
                    c.arg0(std::ffi::OsStr::from_bytes(&raw[0]))
                        .args(raw[1..].iter().map(|w| std::ffi::OsStr::from_bytes(w)));
                }
                None => {
                    c.arg0(&script.argv[0]).args(&script.argv[1..]);
                }
            }
            c
        }
        None => {
            let mut c = Command::new("/bin/sh");
            c.arg("-c").arg(&script.command);
            c
        }
    };
    cmd.stdin(std::process::Stdio::null());
    cmd.process_group(0);
    let user = user.or(script.user.as_deref());
    let group = group.or(script.group.as_deref());
    let ids = user
        .and_then(|u| User::from_name(u).ok().flatten())
        .map(|u| (u.uid, u.gid));
    let gid = group
        .and_then(|g| Group::from_name(g).ok().flatten())
        .map(|g| g.gid)
        .or(ids.map(|i| i.1));
    let uid = ids.map(|i| i.0);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            if let Some(g) = gid {
                if libc::setgid(Gid::as_raw(g)) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if let Some(u) = uid {
                if libc::setuid(Uid::as_raw(u)) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd
}

/// Kills a process group when dropped (a cancelled checker task must not
/// leave its script running).
struct GroupGuard(Option<i32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

fn exit_of(st: ExitStatus) -> ScriptExit {
    match (st.code(), st.signal()) {
        (Some(c), _) => ScriptExit::Exited(c),
        (None, Some(s)) => ScriptExit::Signaled(s),
        _ => ScriptExit::Signaled(0),
    }
}

/// Runs a prepared command; at `timeout` its process group gets SIGTERM,
/// then SIGKILL 2 s later. Errors only when it cannot be started.
pub async fn run_command(
    mut cmd: Command,
    timeout: Option<Duration>,
) -> std::io::Result<ScriptExit> {
    let mut child = cmd.spawn()?;
    let mut guard = GroupGuard(child.id().map(|p| p as i32));
    let status = match timeout {
        None => child.wait().await?,
        Some(t) => match tokio::time::timeout(t, child.wait()).await {
            Ok(st) => st?,
            Err(_) => {
                if let Some(pid) = guard.0 {
                    let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
                }
                if tokio::time::timeout(Duration::from_secs(2), child.wait())
                    .await
                    .is_err()
                {
                    if let Some(pid) = guard.0 {
                        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                    }
                    let _ = child.wait().await;
                }
                // Whatever the script started in its group goes too.
                if let Some(pid) = guard.0.take() {
                    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                }
                return Ok(ScriptExit::TimedOut);
            }
        },
    };
    // The leader exited; its group may still hold children (keepalived
    // leaves those alone on a normal exit, so do we).
    guard.0 = None;
    Ok(exit_of(status))
}

/// Runs a script (notify_up/notify_down, misc_path, …) as keepalived does;
/// `timeout` kills its whole process group. For use by the daemon too.
pub async fn run_script(script: &Script, timeout: Option<Duration>) -> std::io::Result<ScriptExit> {
    run_command(command_for(script, None, None), timeout).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(cmd: &str) -> Script {
        Script {
            command: cmd.to_string(),
            argv: cmd.split_whitespace().map(str::to_string).collect(),
            argv_bytes: None,
            user: None,
            group: None,
            span: keepalived_conf::Span::new(std::sync::Arc::from("t"), 1, 1),
        }
    }

    #[tokio::test]
    async fn exit_codes_and_shell_fallback() {
        assert_eq!(
            run_script(&script("/bin/true"), None).await.unwrap(),
            ScriptExit::Exited(0)
        );
        assert_eq!(
            run_script(&script("/bin/false"), None).await.unwrap(),
            ScriptExit::Exited(1)
        );
        // Not an executable file → /bin/sh -c (shell syntax works).
        assert_eq!(
            run_script(&script("exit 7"), None).await.unwrap(),
            ScriptExit::Exited(7)
        );
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_process_group() {
        let dir = std::env::temp_dir().join(format!("hc-script-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("child.pid");
        // The script starts a grandchild that would outlive a plain kill.
        let path = dir.join("hang.sh");
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\nsleep 30 &\necho $! > {}\nwait\n",
                pidfile.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let s = script(path.to_str().unwrap());
        let t0 = std::time::Instant::now();
        let r = run_script(&s, Some(Duration::from_millis(300)))
            .await
            .unwrap();
        assert_eq!(r, ScriptExit::TimedOut);
        assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let alive = nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true);
        assert!(!alive, "grandchild {pid} survived the timeout");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
