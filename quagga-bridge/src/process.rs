//! The processes of an own routing daemon: started detached (they daemonize), found again by
//! their pid files (a keepalived restart adopts them), checked to be ours and in our network
//! namespace, stopped by pid. Also who answers on a control socket (an existing daemon must
//! run in our namespace to be ours to drive).

use anyhow::{Context, Result, bail};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Whether process `pid` lives in the calling process' network namespace.
pub fn same_netns(pid: u32) -> bool {
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net"));
    let ours = std::fs::read_link("/proc/self/ns/net");
    matches!((theirs, ours), (Ok(a), Ok(b)) if a == b)
}

/// The pid of the process at the other end of a unix socket.
pub fn peer_pid(s: &UnixStream) -> Option<u32> {
    let cred = nix::sys::socket::getsockopt(&s.as_fd(), nix::sys::socket::sockopt::PeerCredentials)
        .ok()?;
    u32::try_from(cred.pid()).ok()
}

/// Connects to a control socket and checks that the daemon behind it runs in our network
/// namespace (a daemon of another director must never be driven).
pub fn connect_local(path: &Path, timeout: Duration) -> Result<UnixStream> {
    let s = UnixStream::connect(path)
        .with_context(|| format!("cannot connect to {}", path.display()))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    // The pid is the socket's creator; a daemon that forked after creating it (bird) has left
    // it: then the driver checks otherwise (bird: it must see our liveness device).
    if let Some(pid) = peer_pid(&s)
        && alive(pid)
        && !same_netns(pid)
    {
        bail!(
            "{} is answered by pid {pid}, which runs in another network namespace: not this director's daemon",
            path.display()
        );
    }
    Ok(s)
}

/// The pid recorded in `pid_file` if that process runs, in our namespace, with `marker` in its
/// command line (a stale file or a reused pid does not count).
pub fn running(pid_file: &Path, marker: &str) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    (cmdline.contains(marker) && same_netns(pid)).then_some(pid)
}

/// Runs a daemon that forks into the background (bird, FRR's `-d`): waits for the foreground
/// part to exit, failing with its output when it does not start.
pub fn start_daemonizing(cmd: &mut Command) -> Result<()> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        bail!("{program} did not start ({}): {}", out.status, text.trim());
    }
    Ok(())
}

/// Waits until `path` accepts connections.
pub fn wait_socket(path: &Path, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if UnixStream::connect(path).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{} did not appear within {timeout:?}", path.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// SIGTERM, then SIGKILL after `grace`; returns once the process is gone.
pub fn stop(pid: u32, grace: Duration) {
    let p = nix::unistd::Pid::from_raw(pid as i32);
    let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while alive(pid) {
        if Instant::now() > deadline {
            let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL);
            std::thread::sleep(Duration::from_millis(20));
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether `pid` runs (a zombie does not).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The first existing file of `candidates` (daemon binaries differ between distributions).
pub fn find_binary(candidates: &[&str]) -> Option<std::path::PathBuf> {
    candidates
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_counts_and_others_do_not() {
        let me = std::process::id();
        assert!(same_netns(me));
        assert!(alive(me));
        let dir = std::env::temp_dir().join(format!("qb-proc-{me}"));
        std::fs::create_dir_all(&dir).unwrap();
        let pid_file = dir.join("x.pid");
        std::fs::write(&pid_file, format!("{me}\n")).unwrap();
        let exe = std::env::current_exe().unwrap();
        let name = exe.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(running(&pid_file, &name), Some(me));
        assert_eq!(running(&pid_file, "no-such-marker-in-cmdline"), None);
        std::fs::write(&pid_file, "4294967\n").unwrap();
        assert_eq!(running(&pid_file, &name), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_daemon_that_fails_reports_its_output() {
        let e = start_daemonizing(Command::new("sh").args(["-c", "echo bad config >&2; exit 3"]))
            .unwrap_err();
        assert!(e.to_string().contains("bad config"), "{e}");
        start_daemonizing(&mut Command::new("true")).unwrap();
    }
}
