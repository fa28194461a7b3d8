//! keepalived drop-in: command line, `-t` check mode, dumps, and the daemon (`daemon`).

mod check;
mod cli;
mod daemon;

use cli::{CliOutcome, parse_args};
use keepalived_conf::validate::SystemEnvironment;
use keepalived_conf::{LexOptions, ParseOptions};
use std::io::Write;

const VERSION_TEXT: &str = "Keepalived v2.2.8 (xlvs keepalived-conf)\n\nCopyright(C) 2001-2022 Alexandre Cassen, <acassen@gmail.com>\n";

fn main() {
    // Printing modes (-t, -d, --signum, --help) end quietly on a closed pipe; the daemon puts
    // SIGPIPE back to ignored before it starts.
    dataplane::exit_quietly_on_closed_pipe();
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
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
    // SAFETY: setting a signal's disposition has no memory-safety concerns.
    unsafe {
        let _ = nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigIgn,
        );
    }
    daemon::run(c, opts)
}
