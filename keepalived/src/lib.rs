//! keepalived drop-in: command line, `-t` check mode, dumps, and the daemon (`daemon`). The
//! binary is `main`; [`command`] is its command line for man pages and completions.
// Every public item says what it is for; CI's clippy (-D warnings) makes this an error.
#![warn(missing_docs)]

mod check;
mod cli;
mod daemon;
mod genhash;
pub mod migration;

use cli::{CliOutcome, parse_args};
use keepalived_conf::validate::SystemEnvironment;
use keepalived_conf::{LexOptions, ParseOptions};
use std::io::Write;

/// The keepalived release whose behaviour (options, configuration, signals, logs, dumps) this
/// drop-in follows, and what it is.
pub const FOLLOWS: &str = concat!("Keepalived v2.2.7 (xlvs ", env!("CARGO_PKG_VERSION"), ")");

/// `keepalived --version` (on stderr, as keepalived prints it). The first line keeps
/// keepalived's shape (`Keepalived vX.Y.Z …`: keepalived-exporter reads the version from its
/// second word); the rest says what this is, without another author's copyright line.
const VERSION_TEXT: &str = concat!(
    "Keepalived v2.2.7 (xlvs ",
    env!("CARGO_PKG_VERSION"),
    ")\n\n",
    "xlvs keepalived ",
    env!("CARGO_PKG_VERSION"),
    ": a drop-in for keepalived 2.2.7 on the xlvs XDP data plane.\n",
    "It reads keepalived 2.2.7 configurations and follows its options, signals, dumps and\n",
    "log lines; it is not keepalived's code. Licence: GPL-2.0-or-later.\n",
);

/// The `keepalived` program.
pub fn main() {
    // Printing modes (-t, -d, --signum, --help) end quietly on a closed pipe; the daemon puts
    // SIGPIPE back to ignored before it starts.
    dataplane::exit_quietly_on_closed_pipe();
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if args.get(1).map(String::as_str) == Some(quagga_bridge::lease::ARG) {
        // Hidden mode: the route bridge's lease holder across a --dont-release-ipvs restart.
        std::process::exit(quagga_bridge::lease::hold(&args[2..]));
    }
    // `lvs_sync_daemon`: this binary is also the sync daemon it starts (as ipvsadm is).
    if args.get(1).map(String::as_str) == Some(syncd::state::DAEMON_ARG) {
        std::process::exit(syncd::control::child_main(
            args.get(2).map(String::as_str).unwrap_or(""),
        ));
    }
    // -T / --genhash: the rest of the line is genhash's (its -s, -p, -u differ from ours).
    if let Some(i) = args.iter().position(|a| a == "-T" || a == "--genhash") {
        let mut rest = args.clone();
        let prog = rest.remove(0);
        rest.remove(i - 1);
        let code = genhash::main(&prog, &rest);
        let _ = std::io::stdout().flush();
        std::process::exit(code);
    }
    let code = match parse_args(args) {
        CliOutcome::Exit(text, code, to_stderr) => {
            if to_stderr {
                eprint!("{text}");
            } else {
                print!("{text}");
            }
            code
        }
        CliOutcome::Run(c) => run(&c),
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

fn parse_options(c: &cli::Cli) -> ParseOptions {
    let mut lex = LexOptions::default();
    if let Some(id) = &c.config_id {
        lex.config_id = id.clone();
    }
    ParseOptions { lex }
}

fn run(c: &cli::Cli) -> i32 {
    if c.version {
        eprint!("{VERSION_TEXT}");
        return 0;
    }
    if let Some(name) = &c.signum {
        return match cli::signum(name) {
            Some(n) => {
                println!("{n}");
                0
            }
            None => 1,
        };
    }
    if !c.extra.is_empty() {
        eprintln!("Unexpected argument(s): {} ", c.extra.join(" "));
    }
    let opts = parse_options(c);
    let env = SystemEnvironment;
    if c.migration_check {
        return migration_check(c, &opts);
    }
    let dump_requested = c.dump_conf || c.dump_json;
    if let Some(log_file) = &c.config_test {
        let (code, parsed) = check::run(&c.use_file, &opts, c.all_config, Some(log_file), &env);
        // What is accepted but not acted on is never silent: a warning with its file and line
        // (in our own format, so keepalived's verdict and exit code stay 2.2.7's).
        if let Some(p) = &parsed {
            for f in migration::check(&c.use_file, &p.config, &opts) {
                eprintln!(
                    "{}:{}: warning: {} is accepted but does nothing here ({})",
                    f.file, f.line, f.keyword, f.why
                );
            }
        }
        if let Some(p) = parsed.filter(|_| dump_requested) {
            dump(c, &p.config);
        }
        return code;
    }
    if dump_requested {
        return match check::load(&c.use_file, &opts, &env) {
            check::Loaded::Parsed(p) => {
                dump(c, &p.config);
                0
            }
            check::Loaded::Missing(msg) => {
                eprintln!("{msg}");
                if c.all_config {
                    check::EXIT_NO_CONFIG
                } else {
                    0
                }
            }
        };
    }
    run_daemon(c, &opts)
}

/// `--migration-check`: what this configuration has that will do nothing here.
fn migration_check(c: &cli::Cli, opts: &ParseOptions) -> i32 {
    let parsed = match keepalived_conf::parse_file(&c.use_file, opts) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{}: {e}", c.use_file.display());
            return check::EXIT_NO_CONFIG;
        }
    };
    let found = migration::check(&c.use_file, &parsed.config, opts);
    for f in &found {
        println!("{f}");
    }
    if found.is_empty() {
        println!("{}: every directive is acted on", c.use_file.display());
    }
    0
}

fn dump(c: &cli::Cli, config: &keepalived_conf::KeepalivedConfig) {
    if c.dump_json {
        println!("{}", keepalived_conf::dump::to_json(config));
    } else {
        print!("{}", keepalived_conf::dump::to_text(config));
    }
}

/// Daemon mode: load, program the data plane, run until SIGTERM.
fn run_daemon(c: &cli::Cli, opts: &ParseOptions) -> i32 {
    // SAFETY: setting a signal's disposition has no memory-safety concerns.
    unsafe {
        let _ = nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigIgn,
        );
    }
    daemon::run(c, opts)
}

/// keepalived's command line (for man pages and shell completions).
pub fn command() -> clap::Command {
    <cli::Cli as clap::CommandFactory>::command()
}
