//! `xlvs`: what the kernel did implicitly for IPVS — put the data plane on interfaces, take it
//! off, and show its state; and the fwmark classifier (`xlvs fwmark`), which does what iptables
//! mangle rules did for fwmark services. Services themselves are managed with `ipvsadm` or
//! keepalived.
// Every public item says what it is for; CI's clippy (-D warnings) makes this an error.
#![warn(missing_docs)]

mod boot;
mod fw;
mod fw_api;
mod fwmark;
mod metrics;
mod report;
mod routes;

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use dataplane::{Dataplane, Options, XdpMode, stats::COUNTER_NAMES};

#[derive(Parser)]
#[command(
    name = "xlvs",
    version,
    about = "Manage the xlvs XDP load-balancer data plane"
)]
struct Cli {
    /// bpffs directory of the pinned program and tables [env: XLVS_PIN_DIR; default /sys/fs/bpf/xlvs]
    #[arg(long, global = true)]
    pin_dir: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load the data plane (once) and attach it to interfaces; already attached ones are kept.
    /// The attachment outlives this command.
    Attach {
        /// Interfaces to attach to.
        #[arg(required = true)]
        interfaces: Vec<String>,
        /// XDP mode: native (driver), generic (skb) or let the kernel pick.
        #[arg(long, value_enum, default_value_t = Mode::Auto)]
        mode: Mode,
        /// Connection-table capacity when the tables are first created [env: XLVS_MAX_CONNS]
        #[arg(long)]
        max_conns: Option<u32>,
        /// Do not start the timer process (connection expiry, connection counts, rates); run
        /// `xlvs timers` yourself, e.g. from a service manager.
        #[arg(long)]
        no_timers: bool,
    },
    /// Attach as the boot configuration says (xlvs.service): `interfaces = …`, `mode = …`,
    /// `max_conns = …` lines. The timers are not started (xlvs-timers.service runs them).
    Boot {
        /// The boot configuration.
        #[arg(long, default_value = boot::DEFAULT_CONFIG)]
        config: std::path::PathBuf,
    },
    /// Run IPVS' timers in the foreground: expire idle connections, keep the connection counts
    /// of the lc/wlc/... schedulers and thresholds exact, sample rates every 2 s. `attach` starts
    /// one in the background; it ends by itself when the tables are unloaded.
    Timers {
        /// When another process runs them (keepalived does when nobody else does), wait and
        /// take over when it stops, instead of exiting (for a service manager).
        #[arg(long)]
        wait: bool,
    },
    /// Serve Prometheus metrics: node_exporter's IPVS series (same names and labels), xlvs'
    /// counters and tables, keepalived's VRRP and checker state; and the firewall's HTTP API
    /// (`GET`/`PUT /fw`, `POST`/`DELETE /fw/rules`: see `xlvs fw`).
    Metrics {
        /// Address and port to listen on, e.g. 127.0.0.1:9587 or [::]:9587.
        #[arg(long, value_name = "ADDR:PORT")]
        listen: std::net::SocketAddr,
    },
    /// Every service with its reals, counters and rates as JSON (`ipvsadm -Ln` for programs).
    Services {
        /// JSON (the only format; accepted for symmetry with `status --json`).
        #[arg(long)]
        json: bool,
    },
    /// Detach from interfaces (all attached ones if none is named). Tables are kept.
    Detach { interfaces: Vec<String> },
    /// Replace the running program by this build's (after an upgrade), atomically on every
    /// attached interface, keeping all tables and connections.
    Reload,
    /// Show interfaces, programs, table fill levels and counters, and warn when programmed
    /// tables balance nothing (no interface attached, no timers).
    Status {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Detach everywhere and remove the program and every table (all services and connections).
    Unload,
    /// The fwmark classifier: which (protocol, destination, port) gets which mark, for fwmark
    /// services (`ipvsadm -A -f MARK`, keepalived `virtual_server fwmark MARK`).
    Fwmark {
        #[command(subcommand)]
        command: fwmark::FwmarkCommand,
    },
    /// The firewall in front of the balancer: allow/deny rules by source prefix or range,
    /// protocol and destination port, globally or per VIP, and the default policy for traffic
    /// to this host; checked for packets of no connection, before the service lookup.
    Fw {
        #[command(subcommand)]
        command: fw::FwCommand,
    },
    /// Set a packet-path switch (alibaba LVS has them as sysctls): synproxy_defer (SYNPROXY
    /// opens the real server's side on the client's first data, not on its handshake ACK),
    /// toa (FULLNAT inserts the client's address), frag_drop (fragments to a VIP that are not
    /// forwarded, e.g. out of order, are dropped),
    /// no_service_drop (traffic to a VIP port without a service is dropped), sloppy_tcp (IPVS'
    /// sysctl: a TCP segment without a connection, other than a RST, is scheduled like a SYN;
    /// for ECMP director clusters): VALUE 0 or 1;
    /// table_full (what a full connection table does with a new connection): VALUE evict (the
    /// least recently used entry makes room; default) or refuse (the new connection is dropped,
    /// established ones stay).
    Set { name: String, value: String },
    /// The route bridge of keepalived (route_bridge block) for this pin directory: each VIP's
    /// eligibility, why, since when, and what the routing daemon sends to each neighbor;
    /// `drain`/`undrain` switch this director's maintenance.
    Routes {
        #[command(subcommand)]
        command: Option<routes::RoutesCommand>,
        /// Print JSON (the bridge's status and the daemon's view of each neighbor).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Auto,
    Native,
    Generic,
}

/// The `xlvs` program.
pub fn main() -> ExitCode {
    env_logger::init();
    let cli = Cli::parse();
    if !matches!(
        cli.command,
        Command::Timers { .. } | Command::Metrics { .. }
    ) {
        dataplane::exit_quietly_on_closed_pipe();
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xlvs: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let mut opts = Options::from_env();
    if let Some(dir) = cli.pin_dir {
        opts.pin_dir = dir;
    }
    let needs_tables = !matches!(
        cli.command,
        Command::Fwmark {
            command: fwmark::FwmarkCommand::Import { dry_run: true, .. }
        }
    );
    if needs_tables && dataplane::loader::has_privileges() == Some(false) {
        anyhow::bail!("Permission denied: the data plane's tables need root");
    }
    match cli.command {
        Command::Attach {
            interfaces,
            mode,
            max_conns,
            no_timers,
        } => {
            if let Some(n) = max_conns {
                opts.max_conns = n;
            }
            let mode = match mode {
                Mode::Auto => XdpMode::Default,
                Mode::Native => XdpMode::Driver,
                Mode::Generic => XdpMode::Skb,
            };
            let done = dataplane::attach(&opts, &interfaces, mode)?;
            for i in &interfaces {
                let what = if done.contains(i) {
                    "attached"
                } else {
                    "already attached"
                };
                println!("{i}: {what}");
            }
            for w in report::forwarding_warnings(&interfaces) {
                eprintln!("xlvs: warning: {w}");
            }
            if !no_timers && !dataplane::timers::running(&opts.pin_dir) {
                spawn_timers(&opts)?;
            }
        }
        Command::Boot { config } => {
            let c = boot::load(&config)?;
            if let Some(n) = c.max_conns {
                opts.max_conns = n;
            }
            let done = dataplane::attach(&opts, &c.interfaces, c.mode)?;
            for i in &c.interfaces {
                let what = if done.contains(i) {
                    "attached"
                } else {
                    "already attached"
                };
                println!("{i}: {what}");
            }
            for w in report::forwarding_warnings(&c.interfaces) {
                eprintln!("xlvs: warning: {w}");
            }
        }
        Command::Timers { wait } => timers(&opts, wait)?,
        Command::Metrics { listen } => metrics::serve(&opts, listen)?,
        Command::Services { json: _ } => {
            let mut dp = Dataplane::open(&opts)?;
            let list: Vec<_> = dp.services()?.iter().map(report::service_json).collect();
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
        Command::Detach { interfaces } => {
            for i in dataplane::detach(&opts, &interfaces)? {
                println!("{i}: detached");
            }
        }
        Command::Reload => {
            for i in dataplane::reload(&opts)? {
                println!("{i}: reloaded");
            }
        }
        Command::Status { json } => status(&opts, json)?,
        Command::Fwmark { command } => fwmark::run(&opts, command)?,
        Command::Fw { command } => fw::run(&opts, command)?,
        Command::Routes { command, json } => routes::run(&opts, command, json)?,
        Command::Unload => {
            dataplane::unload(&opts)?;
            println!("unloaded {}", opts.pin_dir.display());
        }
        Command::Set { name, value } => {
            let mut dp = Dataplane::open(&opts)?;
            let mut s = dp.path_settings()?;
            apply_setting(&mut s, &name, &value)?;
            dp.set_path_settings(&s)?;
            println!("{name} = {value}");
        }
    }
    Ok(())
}

/// `xlvs set NAME VALUE` on the settings read from the tables; nothing is written on an error.
fn apply_setting(s: &mut dataplane::model::PathSettings, name: &str, value: &str) -> Result<()> {
    if name == "table_full" {
        s.table_full = dataplane::fill::TableFull::from_name(value).ok_or_else(|| {
            anyhow::anyhow!("table_full: value must be evict or refuse, not {value:?}")
        })?;
        return Ok(());
    }
    let on = match value {
        "0" => false,
        "1" => true,
        _ => anyhow::bail!("{name}: value must be 0 or 1, not {value:?}"),
    };
    match name {
        "synproxy_defer" => s.synproxy_defer = on,
        "toa" => s.toa = on,
        "frag_drop" => s.frag_drop = on,
        "no_service_drop" => s.no_service_drop = on,
        "sloppy_tcp" => s.sloppy_tcp = on,
        _ => anyhow::bail!(
            "unknown setting {name:?} (synproxy_defer, toa, frag_drop, no_service_drop, sloppy_tcp, table_full)"
        ),
    }
    Ok(())
}

/// Starts `xlvs timers` for this pin directory in the background, detached from this process
/// (own session, no inherited output), so it outlives `attach`.
fn spawn_timers(opts: &Options) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("finding the xlvs executable")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--pin-dir")
        .arg(&opts.pin_dir)
        .arg("timers")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let _ = nix::unistd::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("starting xlvs timers")?;
    // Return once they run (their lock is taken), so a `status` right after `attach` says so;
    // an early exit is reported instead of passing unnoticed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !dataplane::timers::running(&opts.pin_dir) {
        if let Some(code) = child.try_wait().context("waiting for xlvs timers")? {
            anyhow::bail!("xlvs timers exited at once ({code}); run `xlvs timers` to see why");
        }
        if std::time::Instant::now() > deadline {
            eprintln!("xlvs: warning: the timers have not started within 5 s");
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(())
}

/// `xlvs timers`: run them; with `wait`, keep trying while another process holds them, until
/// the tables are unloaded.
fn timers(opts: &Options, wait: bool) -> Result<()> {
    loop {
        dataplane::timers::run(opts, &|| false)?;
        if !wait || !dataplane::loader::is_loaded(&opts.pin_dir) {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}

fn status(opts: &Options, json: bool) -> Result<()> {
    let mut dp = report::open_if_loaded(opts)?;
    let st = report::status(opts, dp.as_mut())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&st)?);
        return Ok(());
    }
    if !st.loaded {
        println!(
            "not loaded ({} has no xlvs program)",
            opts.pin_dir.display()
        );
        return Ok(());
    }
    for w in &st.warnings {
        eprintln!("xlvs: WARNING: {w}");
    }
    println!("pin dir     {}", st.pin_dir);
    // The main program, then each tail-call stage.
    for (i, p) in st.programs.iter().enumerate() {
        let figures = format!(
            "id {} ({} verified insns, {} bytes jited)",
            p.id,
            p.verified_insns
                .map(|n| n.to_string())
                .unwrap_or_else(|| "?".into()),
            p.jited_bytes
        );
        if i == 0 {
            println!("program     {figures}");
        } else {
            println!("  stage     {:<15} {figures}", p.name);
        }
    }
    println!(
        "timers      {}",
        if st.timers_running {
            "running"
        } else {
            "NOT RUNNING (connections expire only when reused; run `xlvs timers`)"
        }
    );
    println!(
        "interfaces  {}",
        if st.interfaces.is_empty() {
            "(none)".to_string()
        } else {
            st.interfaces.join(" ")
        }
    );
    for name in ["services", "dests", "conns"] {
        if let Some(f) = st.tables.get(name) {
            println!("{name:<12}{}/{}", f.used, f.capacity);
        }
    }
    if let Some(t) = &st.conn_table {
        println!(
            "conn table  {}/{} entries, {} evicted, when full: {}",
            t.entries, t.capacity_entries, t.evicted, t.when_full
        );
    }
    println!("counters");
    let width = COUNTER_NAMES
        .iter()
        .map(|(_, n)| n.len())
        .max()
        .unwrap_or(0)
        + 1;
    for (_, name) in COUNTER_NAMES {
        println!(
            "  {name:<width$}{}",
            st.counters.get(name).copied().unwrap_or(0)
        );
    }
    Ok(())
}

/// xlvs' command line (for man pages and shell completions).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
