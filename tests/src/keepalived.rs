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
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log_text().contains(what) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "no `{what}` in the log within {timeout:?}:\n{}",
            self.log_text()
        )
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
        let text = ipvsadm_on(opts, &["-Ln"])?;
        if pred(&text) {
            return Ok(text);
        }
        if Instant::now() > deadline {
            bail!("listing never matched within {timeout:?}:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
