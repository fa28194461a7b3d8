//! `xlvs-healthcheck -f FILE`: runs the health checkers of a keepalived.conf
//! and prints every real server's state change as one line on stdout — a
//! dry run of a configuration's checks, without touching any data plane.
//!
//! Lines (fields separated by one space, reason last):
//!   `<unix-secs.millis> INIT <vs> <real> UP|DOWN weight=<w> checkers=<n>`
//!   `<unix-secs.millis> UP|DOWN|WEIGHT <vs> <real> weight=<w> <reason>`
//!   `<unix-secs.millis> WARN <message>`
//!   `<unix-secs.millis> PROBE ok|fail <vs> <real> <reason>` (with -v)
//! SIGHUP reloads the file (an invalid file keeps the running checks);
//! SIGTERM/SIGINT stop.

use clap::Parser;
use healthcheck::Supervisor;
use keepalived_conf::{ParseOptions, Parsed};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser)]
#[command(
    name = "xlvs-healthcheck",
    version,
    about = "Run the health checkers of a keepalived.conf and print real server state changes"
)]
struct Args {
    /// keepalived configuration file.
    #[arg(
        short = 'f',
        long = "use-file",
        default_value = "/etc/keepalived/keepalived.conf"
    )]
    file: PathBuf,
    /// Also print every probe's result (`PROBE ok|fail <vs> <real> <reason>`).
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Worker threads (default: 1, like keepalived's single checker process).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn stamp() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

fn line(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{} {s}", stamp());
    let _ = out.flush();
}

fn load(path: &Path) -> Result<Parsed, String> {
    let parsed = keepalived_conf::parse_file(path, &ParseOptions::default())
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    for d in &parsed.diagnostics.items {
        eprintln!("{}", d.keepalived_format());
    }
    if parsed.diagnostics.has_fatal() {
        return Err(format!(
            "{}: configuration has fatal errors",
            path.display()
        ));
    }
    Ok(parsed)
}

/// ha_suspend: checkers run while the VIP is on this host (as far as this
/// tool can tell: the address can be bound). Groups and fwmarks: always.
async fn vip_presence(sup: &Supervisor, config: &keepalived_conf::KeepalivedConfig) {
    use keepalived_conf::model::VirtualServerAddress;
    for vs in config.virtual_servers.iter().filter(|v| v.ha_suspend) {
        let present = match &vs.address {
            VirtualServerAddress::Ip { addr, .. } => {
                std::net::UdpSocket::bind(std::net::SocketAddr::new(*addr, 0)).is_ok()
            }
            _ => true,
        };
        let key = healthcheck::VsKey::of(vs);
        sup.set_vip_present(&key, present).await;
        if !present {
            line(&format!(
                "WARN {key}: ha_suspend and the VIP is not on this host: checkers suspended"
            ));
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let parsed = match load(&args.file) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(4);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(run(args, parsed))
}

async fn run(args: Args, parsed: Parsed) -> ExitCode {
    let (tx, mut rx) = tokio::sync::mpsc::channel(4096);
    let (mut hup, mut term, mut int) = match (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        _ => {
            eprintln!("cannot install signal handlers");
            return ExitCode::from(1);
        }
    };
    let (log_tx, mut log_rx) = tokio::sync::mpsc::unbounded_channel();
    let sup =
        Supervisor::spawn_with_probe_log(&parsed.config, tx, args.verbose.then_some(log_tx)).await;
    for w in sup.take_warnings().await {
        line(&format!("WARN {w}"));
    }
    vip_presence(&sup, &parsed.config).await;
    for r in sup.snapshot().await {
        line(&format!(
            "INIT {} {} {} weight={} checkers={}",
            r.vs,
            r.real,
            if r.up { "UP" } else { "DOWN" },
            r.weight,
            r.checkers
        ));
    }
    loop {
        tokio::select! {
            Some(ev) = rx.recv() => {
                if ev.first && !ev.transition {
                    // A checker's first success on a real already up: nothing changed.
                    continue;
                }
                let what = match (ev.transition, ev.up) {
                    (false, _) => "WEIGHT",
                    (true, true) => "UP",
                    (true, false) => "DOWN",
                };
                line(&format!("{what} {} {} weight={} {}", ev.vs, ev.real, ev.weight, ev.reason));
            }
            Some(p) = log_rx.recv() => {
                let ok = if p.ok { "ok" } else { "fail" };
                line(&format!("PROBE {ok} {} {} {}", p.vs, p.real, p.reason));
            }
            _ = hup.recv() => {
                match load(&args.file) {
                    Ok(p) => {
                        let r = sup.reload(&p.config).await;
                        vip_presence(&sup, &p.config).await;
                        line(&format!(
                            "RELOAD ok kept={} retimed={} started={} stopped={} added={} removed={}",
                            r.kept, r.retimed, r.started, r.stopped, r.added.len(), r.removed.len()
                        ));
                        for a in r.added {
                            line(&format!(
                                "INIT {} {} {} weight={} checkers={}",
                                a.vs, a.real, if a.up { "UP" } else { "DOWN" }, a.weight, a.checkers
                            ));
                        }
                        for w in sup.take_warnings().await {
                            line(&format!("WARN {w}"));
                        }
                    }
                    Err(e) => line(&format!("RELOAD failed, keeping the running configuration: {e}")),
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    sup.shutdown().await;
    ExitCode::SUCCESS
}
