//! keepalived 2.2.x command line.
//!
//! Options keep keepalived's names and short letters so existing unit files
//! and scripts work unchanged. `--dump-json` is ours (documented in --help).

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{ArgAction, Parser};
use std::path::PathBuf;

pub const DEFAULT_CONFIG: &str = "/etc/keepalived/keepalived.conf";

#[derive(Debug, Clone, Parser)]
#[command(
    name = "keepalived",
    disable_version_flag = true,
    disable_help_flag = true,
    about = "keepalived drop-in for the xlvs XDP data plane",
    after_help = "Configuration dumps: -d/--dump-conf prints the parsed configuration as \
                  readable text, --dump-json prints it as JSON (both on stdout, then exit; \
                  combined with -t the check runs first). -t/--config-test exits 0 when the \
                  configuration is clean, 4 on a fatal error, 5 when problems were reported, \
                  6 when scripts run without enable_script_security, 7 when -e is given and a \
                  configuration file is missing... like keepalived."
)]
pub struct Cli {
    /// Use the specified configuration file
    #[arg(short = 'f', long = "use-file", value_name = "FILE", default_value = DEFAULT_CONFIG)]
    pub use_file: PathBuf,
    /// Only run with VRRP subsystem
    #[arg(short = 'P', long = "vrrp")]
    pub vrrp: bool,
    /// Only run with Health-checker subsystem
    #[arg(short = 'C', long = "check")]
    pub check: bool,
    /// Don't run BFD subsystem
    #[arg(short = 'B', long = "no_bfd")]
    pub no_bfd: bool,
    /// Force all child processes to run, even if have no configuration
    #[arg(long = "all")]
    pub all: bool,
    /// Log messages to local console
    #[arg(short = 'l', long = "log-console")]
    pub log_console: bool,
    /// Detailed log messages
    #[arg(short = 'D', long = "log-detail")]
    pub log_detail: bool,
    /// Set syslog facility
    #[arg(short = 'S', long = "log-facility", value_name = "FACILITY")]
    pub log_facility: Option<String>,
    /// Don't log via syslog
    #[arg(short = 'G', long = "no-syslog")]
    pub no_syslog: bool,
    /// umask for file creation (in numeric form)
    #[arg(short = 'u', long = "umask", value_name = "MASK")]
    pub umask: Option<String>,
    /// Drop VIP on transition from signal
    #[arg(short = 'X', long = "release-vips")]
    pub release_vips: bool,
    /// Don't remove VRRP VIPs and VROUTEs on daemon stop
    #[arg(short = 'V', long = "dont-release-vrrp")]
    pub dont_release_vrrp: bool,
    /// Don't remove IPVS topology on daemon stop
    #[arg(short = 'I', long = "dont-release-ipvs")]
    pub dont_release_ipvs: bool,
    /// Don't respawn child processes
    #[arg(short = 'R', long = "dont-respawn")]
    pub dont_respawn: bool,
    /// Don't fork the daemon process
    #[arg(short = 'n', long = "dont-fork")]
    pub dont_fork: bool,
    /// Dump the configuration data (readable text on stdout)
    #[arg(short = 'd', long = "dump-conf")]
    pub dump_conf: bool,
    /// Dump the configuration data as JSON on stdout (xlvs extension)
    #[arg(long = "dump-json")]
    pub dump_json: bool,
    /// List the directives accepted but not acted on, with file and line (xlvs extension)
    #[arg(long = "migration-check")]
    pub migration_check: bool,
    /// Use specified pidfile for parent process
    #[arg(short = 'p', long = "pid", value_name = "FILE")]
    pub pid: Option<PathBuf>,
    /// Use specified pidfile for VRRP child process
    #[arg(short = 'r', long = "vrrp_pid", value_name = "FILE")]
    pub vrrp_pid: Option<PathBuf>,
    /// Use specified pidfile for checkers child process
    #[arg(short = 'c', long = "checkers_pid", value_name = "FILE")]
    pub checkers_pid: Option<PathBuf>,
    /// Use specified pidfile for BFD child process
    #[arg(short = 'b', long = "bfd_pid", value_name = "FILE")]
    pub bfd_pid: Option<PathBuf>,
    /// Enter into genhash utility mode
    #[arg(short = 'T', long = "genhash")]
    pub genhash: bool,
    /// Report all address additions/deletions notified via netlink
    #[arg(short = 'a', long = "address-monitoring")]
    pub address_monitoring: bool,
    /// Enable SNMP subsystem
    #[arg(short = 'x', long = "snmp")]
    pub snmp: bool,
    /// Use the specified socket for master agent
    #[arg(short = 'A', long = "snmp-agent-socket", value_name = "FILE")]
    pub snmp_agent_socket: Option<String>,
    /// Run in network namespace NAME (overrides config)
    #[arg(short = 's', long = "namespace", value_name = "NAME")]
    pub namespace: Option<String>,
    /// Produce core dump if terminate abnormally
    #[arg(short = 'm', long = "core-dump")]
    pub core_dump: bool,
    /// Also set /proc/sys/kernel/core_pattern to PATN
    #[arg(short = 'M', long = "core-dump-pattern", value_name = "PATN", num_args = 0..=1, require_equals = true, default_missing_value = "core")]
    pub core_dump_pattern: Option<String>,
    /// Error if any configuration file missing
    #[arg(short = 'e', long = "all-config")]
    pub all_config: bool,
    /// Skip any configuration lines beginning '@' that don't match id
    #[arg(short = 'i', long = "config-id", value_name = "id")]
    pub config_id: Option<String>,
    /// Return signal number for STOP, RELOAD, DATA, STATS, STATS_CLEAR, JSON
    #[arg(long = "signum", value_name = "SIGFUNC")]
    pub signum: Option<String>,
    /// Check the configuration for obvious errors, output to stderr by default
    #[arg(short = 't', long = "config-test", value_name = "LOG_FILE", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub config_test: Option<String>,
    /// Display the version number
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    /// Display this help message
    #[arg(short = 'h', long = "help", action = ArgAction::Help)]
    pub help: Option<bool>,
    /// keepalived reports extra arguments and goes on
    #[arg(hide = true, trailing_var_arg = false)]
    pub extra: Vec<String>,
}

/// What parsing the command line ended in.
pub enum CliOutcome {
    Run(Box<Cli>),
    /// Print this and exit with the code (help, errors).
    Exit(String, i32, bool),
}

pub fn parse_args(args: Vec<String>) -> CliOutcome {
    match Cli::try_parse_from(args) {
        Ok(c) => CliOutcome::Run(Box::new(c)),
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp => CliOutcome::Exit(e.render().to_string(), 0, false),
            ErrorKind::UnknownArgument => {
                let arg = match e.get(ContextKind::InvalidArg) {
                    Some(ContextValue::String(s)) => s.clone(),
                    _ => String::new(),
                };
                CliOutcome::Exit(format!("Unknown option {arg}\n"), 1, true)
            }
            _ => CliOutcome::Exit(e.render().to_string(), 1, true),
        },
    }
}

/// `--signum=NAME`: the signal keepalived uses for that function.
pub fn signum(name: &str) -> Option<i32> {
    crate::daemon::signals::signum(name)
}
