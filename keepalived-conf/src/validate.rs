//! Checks keepalived makes after parsing (its end-of-config validation):
//! missing VRIDs, interfaces that do not exist, strict-mode conflicts,
//! sync groups without members, and script security.

use crate::diag::{DiagKind, Diagnostics, Severity};
use crate::model::{AuthType, KeepalivedConfig, Script, VirtualServerAddress, VrrpState};
use crate::parser::Process;
use std::path::{Path, PathBuf};

/// What the checks need to know about the machine.
pub trait Environment {
    /// Whether an interface of this name exists.
    fn interface_exists(&self, name: &str) -> bool;
    /// The executable a script command would run, if it can be found.
    fn find_executable(&self, program: &str) -> Option<PathBuf>;
}

/// The running system (network namespace of the calling process).
pub struct SystemEnvironment;

impl Environment for SystemEnvironment {
    fn interface_exists(&self, name: &str) -> bool {
        // Asked of the kernel in the caller's network namespace (as keepalived does), not of
        // /sys, which shows the namespace sysfs was mounted in (`nsenter --net` keeps the
        // host's).
        !name.is_empty() && nix::net::if_::if_nametoindex(name).is_ok()
    }

    fn find_executable(&self, program: &str) -> Option<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let is_exec = |p: &Path| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        };
        if program.contains('/') {
            let p = PathBuf::from(program);
            return is_exec(&p).then_some(p);
        }
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into());
        path.split(':')
            .map(|d| Path::new(d).join(program))
            .find(|p| is_exec(p))
    }
}

/// An environment where everything exists (for pure parsing tests).
pub struct PermissiveEnvironment;

impl Environment for PermissiveEnvironment {
    fn interface_exists(&self, _: &str) -> bool {
        true
    }
    fn find_executable(&self, program: &str) -> Option<PathBuf> {
        Some(PathBuf::from(program))
    }
}

fn warn(d: &mut Diagnostics, kind: DiagKind, msg: String) {
    d.push(Severity::Warning, kind, None, msg, None);
}

/// Runs keepalived's post-parse checks, adding to `diags`.
/// A process whose pass stopped at a missing parameter never gets to these checks, nor do
/// the ones after it (keepalived -t reads as the parent, the checker, then VRRP).
pub fn check(config: &KeepalivedConfig, env: &dyn Environment, diags: &mut Diagnostics) {
    let stopped = diags.stopped_in;
    // keepalived runs the VRRP and checker processes only when they have something to do; the
    // VRRP one ends its check at a missing interface, before looking at its scripts.
    let mut vrrp_ran = false;
    if stopped.is_none() && !config.vrrp_instances.is_empty() {
        vrrp_ran = check_vrrp(config, env, diags);
        check_sync_groups(config, diags);
    } else if stopped == Some(Process::Vrrp) {
        let fatal = diags
            .items
            .iter()
            .find(|d| d.severity == Severity::Fatal)
            .and_then(|d| d.span.clone());
        missing_interfaces(config, env, fatal.as_ref(), diags);
    }
    let checker_ran =
        matches!(stopped, None | Some(Process::Vrrp)) && !config.virtual_servers.is_empty();
    if checker_ran {
        check_virtual_servers(config, diags);
    }
    if matches!(stopped, None | Some(Process::Vrrp)) {
        check_scripts(config, env, vrrp_ran, checker_ran, diags);
    }
}

/// keepalived checks a vrrp_instance's interface as it reads the line: with `before` (where
/// its VRRP pass stopped), only the ones read by then. Returns whether one is missing.
fn missing_interfaces(
    config: &KeepalivedConfig,
    env: &dyn Environment,
    before: Option<&crate::diag::Span>,
    diags: &mut Diagnostics,
) -> bool {
    let mut missing = false;
    for v in &config.vrrp_instances {
        let (Some(ifname), Some(span)) = (&v.interface, &v.interface_span) else {
            continue;
        };
        if before.is_some_and(|b| b.file != span.file || b.line < span.line) {
            continue;
        }
        if !env.interface_exists(ifname) {
            missing = true;
            let msg = format!(
                "WARNING - interface {ifname} for vrrp_instance {} doesn't exist",
                v.name
            );
            diags.push(
                Severity::Warning,
                DiagKind::Interface,
                Some(span),
                msg,
                None,
            );
        }
    }
    missing
}

/// Returns false when an interface is missing (keepalived's VRRP process stops there).
fn check_vrrp(config: &KeepalivedConfig, env: &dyn Environment, diags: &mut Diagnostics) -> bool {
    let mut missing_if = missing_interfaces(config, env, None, diags);
    for v in &config.vrrp_instances {
        let name = &v.name;
        for t in &v.track_interfaces {
            if !env.interface_exists(&t.name) {
                missing_if = true;
                diags.push(
                    Severity::Warning,
                    DiagKind::Interface,
                    Some(&t.span),
                    format!(
                        "WARNING - interface {} for track_interface doesn't exist",
                        t.name
                    ),
                    None,
                );
            }
        }
        if v.virtual_router_id.is_none() {
            warn(
                diags,
                DiagKind::Semantic,
                format!("({name}) the virtual router id must be set"),
            );
        }
        if v.virtual_ipaddresses.is_empty() {
            warn(
                diags,
                DiagKind::Semantic,
                format!("({name}) No VIP specified; at least one is sensible"),
            );
        }
        if v.version == 2 && v.advert_int.fract() != 0.0 {
            warn(
                diags,
                DiagKind::Semantic,
                format!(
                    "({name}) VRRPv2 advertisement interval {:.6}s must be an integer. rounding",
                    v.advert_int
                ),
            );
        }
        let strict = v.strict_mode.unwrap_or(config.global.vrrp_strict);
        if strict {
            if v.state_configured && v.state == VrrpState::Master && v.priority != 255 {
                warn(
                    diags,
                    DiagKind::Semantic,
                    format!("({name}) State MASTER must match being address owner"),
                );
            }
            if v.authentication.is_some() {
                warn(
                    diags,
                    DiagKind::Semantic,
                    format!("({name}) Strict mode does not support authentication. Ignoring."),
                );
            }
        } else if v.state == VrrpState::Master
            && v.authentication
                .as_ref()
                .is_some_and(|a| a.auth_type == Some(AuthType::Ah))
        {
            warn(
                diags,
                DiagKind::Semantic,
                format!(
                    "({name}) Initial state master is incompatible with AH authentication - clearing"
                ),
            );
        }
    }
    if missing_if {
        warn(
            diags,
            DiagKind::Interface,
            "Non-existent interface specified in configuration".to_string(),
        );
    }
    !missing_if
}

fn check_sync_groups(config: &KeepalivedConfig, diags: &mut Diagnostics) {
    for g in &config.sync_groups {
        let mut members = 0;
        for m in &g.group {
            if config.vrrp_instance(m).is_some() {
                members += 1;
            } else {
                warn(
                    diags,
                    DiagKind::Semantic,
                    format!(
                        "Virtual router {m} specified in sync group {} doesn't exist - ignoring",
                        g.name
                    ),
                );
            }
        }
        if members == 0 {
            warn(
                diags,
                DiagKind::Semantic,
                format!("Sync group {} has no virtual router(s). removing", g.name),
            );
        }
    }
}

fn check_virtual_servers(config: &KeepalivedConfig, diags: &mut Diagnostics) {
    for vs in &config.virtual_servers {
        // DPVS SNAT `match` services have no real servers by design.
        let is_match = matches!(vs.address, VirtualServerAddress::Match { .. });
        if vs.real_servers.is_empty() && vs.sorry_server.is_none() && !is_match {
            let name = match &vs.address {
                VirtualServerAddress::Fwmark { mark } => format!("FWM {mark}"),
                VirtualServerAddress::Ip { addr, port } => {
                    format!(
                        "[{addr}]:{}:{port}",
                        format!("{:?}", vs.protocol).to_ascii_lowercase()
                    )
                }
                VirtualServerAddress::Group { name } => format!("[{name}]"),
                VirtualServerAddress::Match { name } => format!("[match {name}]"),
            };
            warn(
                diags,
                DiagKind::Semantic,
                format!("Virtual server {name} has no real servers - ignoring"),
            );
            continue;
        }
        match &vs.address {
            VirtualServerAddress::Fwmark { mark } if vs.protocol_configured => warn(
                diags,
                DiagKind::Semantic,
                format!(
                    "Warning: Virtual server FWM {mark}: protocol specified for fwmark - protocol will be ignored"
                ),
            ),
            VirtualServerAddress::Group { name } if config.virtual_server_group(name).is_none() => {
                warn(
                    diags,
                    DiagKind::Semantic,
                    format!("Virtual server group {name} doesn't exist"),
                )
            }
            _ => {}
        }
        if let Some(g) = &vs.laddr_group_name {
            if config.local_address_group(g).is_none() {
                diags.push(
                    Severity::Warning,
                    DiagKind::Semantic,
                    Some(&vs.span),
                    format!("local_address_group {g} doesn't exist"),
                    None,
                );
            }
        }
    }
}

/// The program a script runs (first word of its command line).
pub fn script_program(s: &Script) -> Option<&str> {
    s.argv.first().map(String::as_str)
}

fn check_scripts(
    config: &KeepalivedConfig,
    env: &dyn Environment,
    vrrp_ran: bool,
    checker_ran: bool,
    diags: &mut Diagnostics,
) {
    if config.global.enable_script_security {
        return;
    }
    let runs_something = config
        .scripts_by_process()
        .into_iter()
        .filter(|(p, _)| match p {
            Process::Parent => true,
            Process::Vrrp => vrrp_ran,
            Process::Checker => checker_ran,
        })
        .map(|(_, s)| s)
        .filter_map(script_program)
        .any(|p| env.find_executable(p).is_some());
    if runs_something {
        diags.push(
            Severity::Warning,
            DiagKind::Security,
            None,
            "SECURITY VIOLATION - scripts are being executed but script_security not enabled.",
            None,
        );
    }
}
