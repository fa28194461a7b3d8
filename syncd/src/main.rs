//! `xlvs-syncd`: the sync daemon in the foreground (for service managers and debugging).
//! `ipvsadm --start-daemon` starts the same daemon detached (as `ipvsadm --xlvs-sync-daemon`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use syncd::config::{Request, Role, Settings, mtu};
use syncd::state::DAEMON_ARG;
use syncd::{control, daemon};

/// IPVS connection synchronisation in the foreground: the kernel's sync protocol, so xlvs and
/// kernel-IPVS directors back each other up. Defaults are ipvsadm's.
#[derive(Parser)]
#[command(name = "xlvs-syncd", version)]
struct Cli {
    /// Send this director's connections (master) or take another's (backup).
    role: RoleArg,
    /// Interface the sync traffic uses.
    #[arg(long, default_value = syncd::config::DEFAULT_IFNAME)]
    mcast_interface: String,
    /// Sync id (0: any).
    #[arg(long, default_value_t = 0)]
    syncid: u8,
    /// Largest sync datagram (0: from the interface's MTU).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=65507))]
    sync_maxlen: u16,
    /// Multicast group (224.0.0.81 by default); a unicast address makes the master send to it
    /// and the backup listen on it (xlvs extension).
    #[arg(long)]
    mcast_group: Option<IpAddr>,
    /// UDP port (0: 8848).
    #[arg(long, default_value_t = 0)]
    mcast_port: u16,
    /// Multicast TTL (0: 1).
    #[arg(long, default_value_t = 0)]
    mcast_ttl: u8,
    /// bpffs directory of the data plane [env: XLVS_PIN_DIR; default /sys/fs/bpf/xlvs]
    #[arg(long)]
    pin_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Master,
    Backup,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(DAEMON_ARG) {
        let code = control::child_main(args.get(1).map(String::as_str).unwrap_or(""));
        return ExitCode::from(code as u8);
    }
    let cli = Cli::parse();
    let mut req = Request::new(match cli.role {
        RoleArg::Master => Role::Master,
        RoleArg::Backup => Role::Backup,
    });
    req.ifname = cli.mcast_interface;
    req.syncid = cli.syncid;
    req.maxlen = cli.sync_maxlen;
    req.group = cli.mcast_group;
    req.port = cli.mcast_port;
    req.ttl = cli.mcast_ttl;
    let pin_dir = cli
        .pin_dir
        .unwrap_or_else(|| dataplane::Options::from_env().pin_dir);
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .try_init();
    let settings = Settings::resolve(&req, mtu(&req.ifname).unwrap_or(1500));
    match daemon::prepare(&pin_dir, &settings) {
        Ok(p) => {
            if let Err(e) = daemon::record(&p) {
                eprintln!("xlvs-syncd: cannot record the daemon: {e}");
                return ExitCode::FAILURE;
            }
            daemon::run(p);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xlvs-syncd: {}", control::message(&e, true));
            ExitCode::FAILURE
        }
    }
}
