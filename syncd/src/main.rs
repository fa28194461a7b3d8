//! `xlvs-syncd`: the sync daemon in the foreground (for service managers and debugging).
//!
//! ```text
//! xlvs-syncd master|backup [--mcast-interface IF] [--syncid N] [--sync-maxlen N]
//!            [--mcast-group ADDR] [--mcast-port N] [--mcast-ttl N] [--pin-dir DIR]
//! ```
//! `ipvsadm --start-daemon` starts the same daemon detached (as `ipvsadm --xlvs-sync-daemon`).

use std::path::PathBuf;
use std::process::ExitCode;

use syncd::config::{Request, Role, Settings, mtu};
use syncd::state::DAEMON_ARG;
use syncd::{control, daemon};

fn usage() -> ExitCode {
    eprintln!(
        "usage: xlvs-syncd master|backup [--mcast-interface IF] [--syncid N] [--sync-maxlen N] \
         [--mcast-group ADDR] [--mcast-port N] [--mcast-ttl N] [--pin-dir DIR]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(DAEMON_ARG) {
        let code = control::child_main(args.get(1).map(String::as_str).unwrap_or(""));
        return ExitCode::from(code as u8);
    }
    let Some(role) = args.first().and_then(|s| Role::from_name(s)) else {
        return usage();
    };
    let mut req = Request::new(role);
    let mut pin_dir = dataplane::Options::from_env().pin_dir;
    let mut it = args[1..].iter();
    while let Some(opt) = it.next() {
        let Some(v) = it.next() else {
            return usage();
        };
        let num = |max: u32| v.parse::<u32>().ok().filter(|n| *n <= max);
        match (opt.as_str(), v) {
            ("--mcast-interface", _) => req.ifname = v.clone(),
            ("--syncid", _) => match num(255) {
                Some(n) => req.syncid = n as u8,
                None => return usage(),
            },
            ("--sync-maxlen", _) => match num(65507) {
                Some(n) => req.maxlen = n as u16,
                None => return usage(),
            },
            ("--mcast-port", _) => match num(65535) {
                Some(n) => req.port = n as u16,
                None => return usage(),
            },
            ("--mcast-ttl", _) => match num(255) {
                Some(n) => req.ttl = n as u8,
                None => return usage(),
            },
            ("--mcast-group", _) => match v.parse() {
                Ok(a) => req.group = Some(a),
                Err(_) => return usage(),
            },
            ("--pin-dir", _) => pin_dir = PathBuf::from(v),
            _ => return usage(),
        }
    }
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
