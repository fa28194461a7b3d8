//! Running our `keepalived` binary inside a lab's director namespace: config files, start,
//! signals, logs, and the stop (by PID) on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::lab::{Lab, binary};
use crate::netns::Netns;
use dataplane::Options;

/// A scratch directory for one daemon: config, pid files, log, reports.
pub struct Workdir(pub PathBuf);

impl Workdir {
    pub fn new(prefix: &str) -> Result<Workdir> {
        let d = std::env::temp_dir().join(format!("xlvs-ka-{prefix}"));
        std::fs::create_dir_all(&d)?;
        Ok(Workdir(d))
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Our keepalived, started with `-n -l` in the director namespace; killed on drop if running.
pub struct Keepalived {
    child: Option<Child>,
    pub log: PathBuf,
    pub pid_file: PathBuf,
}

impl Keepalived {
    pub fn start(lab: &Lab, dir: &Workdir, conf: &Path) -> Result<Keepalived> {
        Keepalived::start_in(&lab.director, &lab.opts, dir, conf)
    }

    /// Starts in any namespace, on the data plane pinned at `opts`.
    pub fn start_in(ns: &Netns, opts: &Options, dir: &Workdir, conf: &Path) -> Result<Keepalived> {
        Keepalived::start_with_env(ns, opts, dir, conf, &[])
    }

    /// [`Keepalived::start_in`] with extra environment variables.
    pub fn start_with_env(
        ns: &Netns,
        opts: &Options,
        dir: &Workdir,
        conf: &Path,
        env: &[(&str, &str)],
    ) -> Result<Keepalived> {
        Keepalived::start_with_args(ns, opts, dir, conf, &[], env)
    }

    /// [`Keepalived::start_with_env`] with extra command-line options (`-V`, `-P`, ...).
    pub fn start_with_args(
        ns: &Netns,
        opts: &Options,
        dir: &Workdir,
        conf: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Keepalived> {
        let bin = binary("keepalived")?;
        let log = dir.path("keepalived.log");
        let pid_file = dir.path("keepalived.pid");
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let child = ns
            .command(bin.to_str().context("path")?)
            .args(["-n", "-l", "-G", "-f"])
            .arg(conf)
            .arg("-p")
            .arg(&pid_file)
            .arg("-c")
            .arg(dir.path("checkers.pid"))
            .arg("-r")
            .arg(dir.path("vrrp.pid"))
            .args(extra)
            .env("XLVS_PIN_DIR", &opts.pin_dir)
            .env("XLVS_MAX_CONNS", opts.max_conns.to_string())
            .env("TMPDIR", &dir.0)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(logf.try_clone()?)
            .stderr(logf)
            .spawn()?;
        Ok(Keepalived {
            child: Some(child),
            log,
            pid_file,
        })
    }

    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    pub fn signal(&self, sig: i32) -> Result<()> {
        let pid = self.pid().context("not running")?;
        // SAFETY: plain kill(2) on the child we started.
        if unsafe { libc::kill(pid, sig) } != 0 {
            bail!("kill {pid}: {}", std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits for the process to end; its exit code.
    pub fn wait(&mut self, timeout: Duration) -> Result<Option<i32>> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().context("not running")?;
        loop {
            if let Some(st) = child.try_wait()? {
                self.child = None;
                return Ok(st.code());
            }
            if Instant::now() > deadline {
                bail!("keepalived did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill9(&mut self) -> Result<()> {
        self.signal(libc::SIGKILL)?;
        self.wait(Duration::from_secs(5))?;
        Ok(())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `cond` holds on the log text.
    pub fn wait_log(&self, what: &str, timeout: Duration) -> Result<()> {
        wait_in_log(&self.log, what, timeout)
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `ipvsadm ARGS` (our binary) on the lab's tables.
pub fn ipvsadm(lab: &Lab, args: &[&str]) -> Result<String> {
    ipvsadm_on(&lab.opts, args)
}

/// `ipvsadm ARGS` (our binary) on the tables pinned at `opts`.
pub fn ipvsadm_on(opts: &Options, args: &[&str]) -> Result<String> {
    let out = Command::new(binary("ipvsadm")?)
        .args(args)
        .env("XLVS_PIN_DIR", &opts.pin_dir)
        .output()?;
    if !out.status.success() {
        bail!("ipvsadm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Polls `ipvsadm -Ln` until `pred` holds on it; the listing.
pub fn wait_listing(lab: &Lab, timeout: Duration, pred: impl Fn(&str) -> bool) -> Result<String> {
    wait_listing_on(&lab.opts, timeout, pred)
}

/// [`wait_listing`] on the tables pinned at `opts`.
pub fn wait_listing_on(
    opts: &Options,
    timeout: Duration,
    pred: impl Fn(&str) -> bool,
) -> Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        // Before the daemon has loaded the data plane there are no tables to list yet.
        let text = match ipvsadm_on(opts, &["-Ln"]) {
            Ok(t) => t,
            Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(e) => return Err(e),
        };
        if pred(&text) {
            return Ok(text);
        }
        if Instant::now() > deadline {
            bail!("listing never matched within {timeout:?}:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the file at `log` contains `what`; the error shows the log.
pub fn wait_in_log(log: &Path, what: &str, timeout: Duration) -> Result<()> {
    let text = || std::fs::read_to_string(log).unwrap_or_default();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if text().contains(what) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!(
        "no `{what}` in {} within {timeout:?}:\n{}",
        log.display(),
        text()
    )
}

/// Debian's keepalived 2.2.7, where the comparison tests expect it.
pub const REAL_KEEPALIVED: &str = "/usr/sbin/keepalived";

/// Debian's keepalived started in a namespace (`-n -l -G` plus `args`, pid files in `dir`,
/// log `dir/<name>.log`); stopped by PID on drop.
pub struct RealKeepalived {
    child: Child,
    pub log: PathBuf,
}

impl RealKeepalived {
    pub fn start(
        ns: &Netns,
        dir: &Workdir,
        name: &str,
        conf: &Path,
        args: &[&str],
    ) -> Result<RealKeepalived> {
        let log = dir.path(&format!("{name}.log"));
        let logf = std::fs::File::create(&log)?;
        let child = ns
            .command(REAL_KEEPALIVED)
            .args(["-n", "-l", "-G"])
            .args(args)
            .arg("-f")
            .arg(conf)
            .arg("-p")
            .arg(dir.path(&format!("{name}.pid")))
            .arg("-r")
            .arg(dir.path(&format!("{name}-vrrp.pid")))
            .arg("-c")
            .arg(dir.path(&format!("{name}-checkers.pid")))
            .arg("-b")
            .arg(dir.path(&format!("{name}-bfd.pid")))
            .stdin(Stdio::null())
            .stdout(logf.try_clone()?)
            .stderr(logf)
            .spawn()
            .context("start keepalived 2.2.7")?;
        Ok(RealKeepalived { child, log })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until its log contains `what`.
    pub fn wait_log(&self, what: &str, timeout: Duration) -> Result<()> {
        wait_in_log(&self.log, what, timeout)
    }
}

impl Drop for RealKeepalived {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Arrival times of the VRRP adverts (IP protocol 112) of one virtual router seen in a
/// namespace — the kernel's receive timestamps, so a busy test process does not distort them —
/// from a raw socket on a thread of its own, until [`AdvertWatch::finish`].
pub struct AdvertWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<Result<Result<Vec<Duration>>>>,
}

impl AdvertWatch {
    pub fn start(ns: &Netns, vrid: u8) -> AdvertWatch {
        use std::os::fd::AsRawFd;
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let handle = ns.run_in(move || -> Result<Vec<Duration>> {
            let sock = socket2::Socket::new(
                socket2::Domain::IPV4,
                socket2::Type::RAW,
                Some(socket2::Protocol::from(112)),
            )?;
            sock.set_read_timeout(Some(Duration::from_millis(50)))?;
            let fd = sock.as_raw_fd();
            let on: libc::c_int = 1;
            // SAFETY: setsockopt on our socket with an int option.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_TIMESTAMPNS,
                    (&on as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            let mut seen = Vec::new();
            let mut buf = [0u8; 2048];
            let mut cbuf = [0u64; 16];
            while !s.load(Ordering::Relaxed) {
                let mut iov = libc::iovec {
                    iov_base: buf.as_mut_ptr().cast(),
                    iov_len: buf.len(),
                };
                // SAFETY: a zeroed msghdr is valid; we point it at our buffers below.
                let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
                msg.msg_iov = &mut iov;
                msg.msg_iovlen = 1;
                msg.msg_control = cbuf.as_mut_ptr().cast();
                msg.msg_controllen = std::mem::size_of_val(&cbuf);
                // SAFETY: recvmsg into the buffers msg points at, all alive here.
                let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
                if n <= 0 {
                    continue;
                }
                let pkt = &buf[..n as usize];
                let ihl = usize::from(pkt[0] & 0x0f) * 4;
                if pkt.get(ihl + 1) != Some(&vrid) {
                    continue;
                }
                // SAFETY: walking the control messages recvmsg wrote into cbuf.
                unsafe {
                    let mut c = libc::CMSG_FIRSTHDR(&msg);
                    while !c.is_null() {
                        if (*c).cmsg_level == libc::SOL_SOCKET
                            && (*c).cmsg_type == libc::SO_TIMESTAMPNS
                        {
                            let ts = std::ptr::read_unaligned(
                                libc::CMSG_DATA(c).cast::<libc::timespec>(),
                            );
                            seen.push(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
                        }
                        c = libc::CMSG_NXTHDR(&msg, c);
                    }
                }
            }
            Ok(seen)
        });
        AdvertWatch { stop, handle }
    }

    /// The receive times seen (realtime clock, since the epoch).
    pub fn finish(self) -> Result<Vec<Duration>> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle
            .join()
            .map_err(|_| anyhow::anyhow!("advert watch thread"))??
    }

    /// The largest gap between consecutive adverts in `times`.
    pub fn max_gap(times: &[Duration]) -> Duration {
        times
            .windows(2)
            .map(|w| w[1].saturating_sub(w[0]))
            .max()
            .unwrap_or_default()
    }

    /// Gaps longer than `over`: (realtime of the advert ending the gap, gap).
    pub fn gaps_over(times: &[Duration], over: Duration) -> Vec<(Duration, Duration)> {
        times
            .windows(2)
            .filter(|w| w[1].saturating_sub(w[0]) > over)
            .map(|w| (w[1], w[1] - w[0]))
            .collect()
    }
}
