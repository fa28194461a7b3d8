//! `xlvs-vrrpd`: the VRRP engine alone, on a keepalived.conf (what `keepalived -P` runs).
//!
//! Accepts keepalived's switches that matter for a VRRP-only process; logs to stderr.
//! SIGTERM/SIGINT stop (priority 0 sent, VIPs removed), SIGHUP reloads the file.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use keepalived_conf::{ParseOptions, Severity, parse_file};
use tokio::signal::unix::{SignalKind, signal};
use vrrp::daemon::{self, Control};

#[derive(Parser, Debug)]
#[command(name = "xlvs-vrrpd", about = "VRRP v2/v3 daemon for keepalived.conf")]
struct Args {
    /// Configuration file.
    #[arg(
        short = 'f',
        long = "use-file",
        default_value = "/etc/keepalived/keepalived.conf"
    )]
    file: PathBuf,
    /// Stay in the foreground.
    #[arg(short = 'n', long = "dont-fork")]
    foreground: bool,
    /// Log to the console (always done; accepted for keepalived compatibility).
    #[arg(short = 'l', long = "log-console")]
    _log_console: bool,
    /// Detailed log (accepted; use RUST_LOG=debug for more).
    #[arg(short = 'D', long = "log-detail")]
    _log_detail: bool,
    /// No syslog (accepted).
    #[arg(short = 'G', long = "no-syslog")]
    _no_syslog: bool,
    /// VRRP only (accepted: this is all we do).
    #[arg(short = 'P', long = "vrrp")]
    _vrrp: bool,
    /// Main pid file.
    #[arg(short = 'p', long = "pid")]
    pid: Option<PathBuf>,
    /// VRRP pid file.
    #[arg(short = 'r', long = "vrrp_pid")]
    vrrp_pid: Option<PathBuf>,
    /// Checkers pid file (accepted, unused).
    #[arg(short = 'c', long = "checkers_pid")]
    _checkers_pid: Option<PathBuf>,
    /// Don't remove VIPs on stop and send no priority 0 (keepalived's -V): a restart within
    /// the master-down interval resumes MASTER without an election.
    #[arg(short = 'V', long = "dont-release-vrrp")]
    dont_release: bool,
}

fn load(path: &std::path::Path) -> Result<keepalived_conf::KeepalivedConfig> {
    let parsed = parse_file(path, &ParseOptions::default())
        .with_context(|| format!("cannot read {}", path.display()))?;
    for d in &parsed.diagnostics.items {
        if d.severity >= Severity::Warning {
            log::warn!("{d}");
        }
    }
    Ok(parsed.config)
}

fn main() -> Result<()> {
    let args = Args::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let config = load(&args.file)?;
    if !args.foreground {
        nix::unistd::daemon(false, true).context("daemon")?;
    }
    for p in [&args.pid, &args.vrrp_pid].into_iter().flatten() {
        std::fs::write(p, format!("{}\n", std::process::id()))
            .with_context(|| format!("pid file {}", p.display()))?;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let res = rt.block_on(async {
        let (ctl_tx, ctl_rx) = tokio::sync::mpsc::channel(4);
        let (ev_tx, mut ev_rx) = tokio::sync::mpsc::channel(64);
        let file = args.file.clone();
        let dont_release = args.dont_release;
        tokio::spawn(async move {
            let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
            let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
            let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
            loop {
                tokio::select! {
                    _ = term.recv() => break,
                    _ = int.recv() => break,
                    _ = hup.recv() => match load(&file) {
                        Ok(c) => { let _ = ctl_tx.send(Control::Reload(Arc::new(c))).await; }
                        Err(e) => log::error!("reload: {e:#}"),
                    },
                }
            }
            let stop = if dont_release {
                Control::Detach
            } else {
                Control::Shutdown
            };
            let _ = ctl_tx.send(stop).await;
        });
        // Nobody else consumes the events here: drain them.
        tokio::spawn(async move { while ev_rx.recv().await.is_some() {} });
        // The engine runs on its own thread, as in the keepalived daemon.
        let engine = daemon::spawn(Arc::new(config), ctl_rx, ev_tx)?;
        tokio::task::spawn_blocking(move || engine.join())
            .await?
            .map_err(|_| anyhow::anyhow!("VRRP thread panicked"))?
    });
    for p in [&args.pid, &args.vrrp_pid].into_iter().flatten() {
        let _ = std::fs::remove_file(p);
    }
    res
}
