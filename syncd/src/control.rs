//! `ipvsadm --start-daemon / --stop-daemon / -L --daemon`: like the kernel's, starting returns
//! once the daemon runs (here: a detached process that reported its socket ready), and the
//! errors are the kernel's errnos (ENODEV, EEXIST, ESRCH) for ipvsadm to word.

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::{self, Request, Role, Settings};
use crate::daemon;
use crate::state::{self, DAEMON_ARG, Running};

/// What the starting process hands the daemon process (one JSON argument).
#[derive(Serialize, Deserialize)]
struct ChildArgs {
    pin_dir: PathBuf,
    settings: Settings,
}

/// The exclusive lock of a data plane's daemon records (start/stop one at a time).
struct Lock {
    _file: nix::fcntl::Flock<fs::File>,
}

impl Lock {
    fn take(pin_dir: &Path) -> io::Result<Lock> {
        let dir = state::dir(pin_dir);
        fs::create_dir_all(&dir)?;
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))?;
        let f = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| io::Error::from(e))?;
        Ok(Lock { _file: f })
    }
}

/// Starts a daemon: `program` is run with [`DAEMON_ARG`] and a JSON argument (it must call
/// [`child_main`] then), in a new session, stderr to `<role>.log`. Errors: ENODEV (unknown
/// interface, checked first as the kernel does), EEXIST (one of that role runs already).
pub fn start(pin_dir: &Path, req: &Request, program: &Path) -> io::Result<()> {
    let _lock = Lock::take(pin_dir)?;
    let ifname: String = req.ifname.chars().take(config::IFNAME_MAX).collect();
    if config::ifindex(&ifname) == 0 {
        return Err(io::Error::from_raw_os_error(libc::ENODEV));
    }
    if state::running(pin_dir, req.role).is_some() {
        return Err(io::Error::from_raw_os_error(libc::EEXIST));
    }
    let mtu = config::mtu(&ifname).unwrap_or(1500);
    let settings = Settings::resolve(req, mtu);
    let args = serde_json::to_string(&ChildArgs {
        pin_dir: pin_dir.to_path_buf(),
        settings,
    })
    .map_err(io::Error::other)?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(state::file(pin_dir, req.role, "log"))?;
    let mut cmd = Command::new(program);
    cmd.arg(DAEMON_ARG)
        .arg(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log));
    // Detached like the kernel's thread: its own session, no controlling terminal.
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let out = child.stdout.take().expect("piped");
    let mut line = String::new();
    let _ = BufReader::new(out).read_line(&mut line);
    let line = line.trim();
    if line == "ok" {
        return Ok(());
    }
    let _ = child.wait();
    match line.strip_prefix("err ") {
        Some(rest) => {
            let (code, text) = rest.split_once(' ').unwrap_or((rest, ""));
            match code.parse::<i32>() {
                Ok(n) if n > 0 => Err(io::Error::from_raw_os_error(n)),
                _ => Err(io::Error::other(text.to_string())),
            }
        }
        None => Err(io::Error::other(
            "the sync daemon exited before it was ready",
        )),
    }
}

/// The daemon process's side of [`start`]: `arg` is the JSON argument. Returns the exit status.
pub fn child_main(arg: &str) -> i32 {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_secs()
        .try_init();
    let report = |text: &str| {
        let mut o = io::stdout().lock();
        let _ = writeln!(o, "{text}");
        let _ = o.flush();
    };
    let args: ChildArgs = match serde_json::from_str(arg) {
        Ok(a) => a,
        Err(e) => {
            report(&format!("err 0 bad daemon arguments: {e}"));
            return 2;
        }
    };
    let prepared = daemon::prepare(&args.pin_dir, &args.settings).and_then(|p| {
        daemon::record(&p)?;
        Ok(p)
    });
    match prepared {
        Ok(p) => {
            report("ok");
            // Nobody reads our stdout any more.
            if let Ok(null) = fs::File::open("/dev/null") {
                // SAFETY: both descriptors are open; dup2 replaces stdout atomically.
                unsafe { libc::dup2(null.as_raw_fd(), 1) };
            }
            daemon::run(p);
            0
        }
        Err(e) => {
            log::error!("sync daemon not started: {e}");
            report(&format!("err {} {e}", e.raw_os_error().unwrap_or(0)));
            1
        }
    }
}

/// Stops the daemon of `role` (ESRCH when none runs), waiting for it to exit.
pub fn stop(pin_dir: &Path, role: Role) -> io::Result<()> {
    if !state::dir(pin_dir).exists() {
        // Nothing was ever recorded (and nothing to create just to say so).
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    let _lock = Lock::take(pin_dir)?;
    let Some(r) = state::running(pin_dir, role) else {
        state::remove(pin_dir, role);
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    };
    let pid = nix::unistd::Pid::from_raw(r.pid as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let end = Instant::now() + Duration::from_secs(3);
    while state::alive(&r) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    if state::alive(&r) {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
    state::remove(pin_dir, role);
    Ok(())
}

/// The running daemons, master first (`ipvsadm -L --daemon`).
pub fn list(pin_dir: &Path) -> Vec<Running> {
    [Role::Master, Role::Backup]
        .into_iter()
        .filter_map(|r| state::running(pin_dir, r))
        .collect()
}

/// ipvsadm's words for a daemon error (ipvs_strerror: start_daemon EEXIST, stop_daemon ESRCH,
/// then strerror).
pub fn message(e: &io::Error, starting: bool) -> String {
    match e.raw_os_error() {
        Some(libc::EEXIST) if starting => "Daemon has already run".into(),
        Some(libc::ESRCH) if !starting => "No daemon is running".into(),
        Some(libc::EPERM) => "Permission denied (you must be root)".into(),
        // SAFETY: strerror returns a NUL-terminated static string, copied at once.
        Some(n) => unsafe { std::ffi::CStr::from_ptr(libc::strerror(n)) }
            .to_string_lossy()
            .into_owned(),
        None => e.to_string(),
    }
}
