//! `ipvsadm`: ipvsadm 1.31's command line, output and exit codes, driving the xlvs data plane.
//! `ipvsadm-save` / `ipvsadm-restore` are this binary under those names (argv[0]).

use std::process::ExitCode;

use ipvsadm_rs::{Flavor, exec, flavor};

fn main() -> ExitCode {
    // ipvsadm takes bytes: an argument that is not UTF-8 is refused by the option checks, never
    // by a panic.
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if argv.get(1).map(String::as_str) == Some(syncd::state::DAEMON_ARG) {
        // Hidden mode: the sync daemon `ipvsadm --start-daemon` started (see syncd::control).
        let code = syncd::control::child_main(argv.get(2).map(String::as_str).unwrap_or(""));
        return ExitCode::from(code as u8);
    }
    dataplane::exit_quietly_on_closed_pipe();
    if dataplane::loader::has_privileges() == Some(false) {
        // ipvsadm 1.31 opens IPVS before it reads its arguments: every command, --help and
        // --version included, fails this way without privileges.
        eprintln!(
            "Can't initialize ipvs: Permission denied (you must be root)\n\
             Are you sure that IP Virtual Server is built in the kernel or as module?"
        );
        return ExitCode::from(2);
    }
    let argv0 = argv.first().cloned().unwrap_or_else(|| "ipvsadm".into());
    let name = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let flavor = flavor(&argv0);
    let code = if name.starts_with("ipvsadm-save") {
        save_script(&argv[1..], flavor)
    } else if name.starts_with("ipvsadm-restore") {
        restore_script(flavor)
    } else {
        exec::run(&argv[1..], flavor)
    };
    ExitCode::from((code & 0xff) as u8)
}

/// `ipvsadm-save [-n]`: `ipvsadm -S [-n]`; any other argument: usage on stderr, exit 1.
fn save_script(args: &[String], flavor: Flavor) -> i32 {
    let mut a = vec!["-S".to_string()];
    for x in args {
        if x == "-n" {
            a.push(x.clone());
        } else {
            eprintln!("Usage: ipvsadm-save [-n]");
            return 1;
        }
    }
    exec::run(&a, flavor)
}

/// `ipvsadm-restore`: drop comment lines, flush, then `ipvsadm -R` with the rest.
fn restore_script(flavor: Flavor) -> i32 {
    let Some(input) = exec::read_stdin() else {
        eprintln!("ipvsadm-restore: cannot read standard input");
        return 1;
    };
    let rules: String = input
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let code = exec::run(&["-C".to_string()], flavor);
    if code != 0 {
        return code;
    }
    exec::restore_from(&rules, flavor)
}
