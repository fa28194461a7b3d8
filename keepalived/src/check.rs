//! `keepalived -t`: parse, validate, report like keepalived, exit with its
//! codes (enum exit_code in keepalived's main.h).

use keepalived_conf::validate::{self, Environment};
use keepalived_conf::{DiagKind, Diagnostics, ParseOptions, Parsed, Severity};
use std::io::Write;
use std::path::Path;

pub const EXIT_OK: i32 = 0;
/// keepalived -t ends with this when a keyword lacks its parameter.
pub const EXIT_PROGRAM_ERROR: i32 = 2;
pub const EXIT_CONFIG: i32 = 4;
pub const EXIT_CONFIG_TEST: i32 = 5;
pub const EXIT_CONFIG_TEST_SECURITY: i32 = 6;
pub const EXIT_NO_CONFIG: i32 = 7;

/// Result of loading a configuration for the check or the daemon.
pub enum Loaded {
    Parsed(Box<Parsed>),
    /// The main file does not exist / cannot be read.
    Missing(String),
}

pub fn load(path: &Path, opts: &ParseOptions, env: &dyn Environment) -> Loaded {
    if path.is_dir() {
        return Loaded::Missing(format!(
            "Configuration file '{}/' is a directory - skipping",
            path.display()
        ));
    }
    match keepalived_conf::parse_file(path, opts) {
        Ok(mut parsed) => {
            validate::check(&parsed.config, env, &mut parsed.diagnostics);
            Loaded::Parsed(Box::new(parsed))
        }
        Err(_) => Loaded::Missing(format!("Config files missing '{}'.", path.display())),
    }
}

/// keepalived's exit code for a set of diagnostics; `all_config` is `-e`.
pub fn exit_code(diags: &Diagnostics, all_config: bool) -> i32 {
    let items = &diags.items;
    if items.iter().any(|d| d.severity == Severity::Fatal) {
        EXIT_PROGRAM_ERROR
    } else if items
        .iter()
        .any(|d| d.kind == DiagKind::Security || (all_config && d.kind == DiagKind::MissingInclude))
    {
        EXIT_CONFIG_TEST_SECURITY
    } else if items.iter().any(|d| d.severity == Severity::Warning) {
        EXIT_CONFIG_TEST
    } else {
        EXIT_OK
    }
}

/// Writes the messages of a check in keepalived's format.
pub fn report(diags: &Diagnostics, out: &mut dyn Write) {
    for d in &diags.items {
        if d.severity >= Severity::Warning || d.kind == DiagKind::MissingInclude {
            let _ = writeln!(out, "{}", d.keepalived_format());
        }
    }
}

/// Runs the check mode; returns the exit code.
pub fn run(
    path: &Path,
    opts: &ParseOptions,
    all_config: bool,
    log_file: Option<&str>,
    env: &dyn Environment,
) -> (i32, Option<Box<Parsed>>) {
    let mut out: Box<dyn Write> = match log_file.filter(|f| !f.is_empty()) {
        Some(f) => match std::fs::File::create(f) {
            Ok(file) => Box::new(file),
            Err(_) => Box::new(std::io::stderr()),
        },
        None => Box::new(std::io::stderr()),
    };
    match load(path, opts, env) {
        Loaded::Missing(msg) => {
            let _ = writeln!(out, "{msg}");
            // keepalived only fails on a missing file with -e.
            (if all_config { EXIT_CONFIG } else { EXIT_OK }, None)
        }
        Loaded::Parsed(p) => {
            report(&p.diagnostics, &mut out);
            (exit_code(&p.diagnostics, all_config), Some(p))
        }
    }
}
