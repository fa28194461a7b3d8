//! keepalived drop-in: command line, `-t` check mode, dumps, and the daemon (`daemon`).

mod check;
mod cli;
mod daemon;
mod genhash;

use cli::{CliOutcome, parse_args};
use keepalived_conf::validate::SystemEnvironment;
use keepalived_conf::{LexOptions, ParseOptions};
use std::io::Write;

const VERSION_TEXT: &str = "Keepalived v2.2.8 (xlvs keepalived-conf)\n\nCopyright(C) 2001-2022 Alexandre Cassen, <acassen@gmail.com>\n";

fn main() {
    let args: Vec<String> = std::env::args().collect();
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
    let dump_requested = c.dump_conf || c.dump_json;
    if let Some(log_file) = &c.config_test {
        let (code, parsed) = check::run(&c.use_file, &opts, c.all_config, Some(log_file), &env);
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

fn dump(c: &cli::Cli, config: &keepalived_conf::KeepalivedConfig) {
    if c.dump_json {
        println!("{}", keepalived_conf::dump::to_json(config));
    } else {
        print!("{}", keepalived_conf::dump::to_text(config));
    }
}

/// Daemon mode: load, program the data plane, run until SIGTERM.
fn run_daemon(c: &cli::Cli, opts: &ParseOptions) -> i32 {
    daemon::run(c, opts)
}
