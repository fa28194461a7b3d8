//! Checks keepalived makes after parsing (its end-of-config validation):
//! missing VRIDs, interfaces that do not exist, strict-mode conflicts,
//! sync groups without members, and script security.

use crate::diag::{DiagKind, Diagnostics, Severity, Span};
use crate::model::{AuthType, KeepalivedConfig, Script, VirtualServerAddress, VrrpState};
use crate::parser::Process;
use std::path::{Path, PathBuf};

/// What the checks need to know about the machine.
pub trait Environment {
    /// Whether an interface of this name exists.
    fn interface_exists(&self, name: &str) -> bool;
    /// The executable a script command would run, if it can be found.
    fn find_executable(&self, program: &str) -> Option<PathBuf>;
    /// Whether the system knows this user (keepalived's default script user).
    fn user_exists(&self, _name: &str) -> bool {
        true
    }
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

    fn user_exists(&self, name: &str) -> bool {
        matches!(nix::unistd::User::from_name(name), Ok(Some(_)))
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
    check_default_script_user(config, env, diags);
}

/// The scripts keepalived removes when there is no default user: every vrrp_script,
/// MISC_CHECK and startup/shutdown script without a user of its own.
fn removed_without_user(config: &KeepalivedConfig) -> Vec<&Script> {
    let g = &config.global;
    let global = [&g.startup_script, &g.shutdown_script]
        .into_iter()
        .flatten()
        .filter(|s| s.user.is_none());
    let vrrp = config
        .vrrp_scripts
        .iter()
        .filter(|s| s.user.is_none())
        .filter_map(|s| s.script.as_ref());
    let misc = config
        .virtual_servers
        .iter()
        .flat_map(|vs| &vs.real_servers)
        .flat_map(|rs| &rs.checkers)
        .filter_map(|c| match &c.kind {
            crate::model::CheckerKind::Misc(m) if m.user.is_none() => m.path.as_ref(),
            _ => None,
        });
    global.chain(vrrp).chain(misc).collect()
}

/// The order of keepalived -t's passes over the file.
fn pass_order(p: Process) -> u8 {
    match p {
        Process::Parent => 0,
        Process::Checker => 1,
        Process::Vrrp => 2,
    }
}

/// keepalived's default script user when `enable_script_security` is on and `script_user`
/// is not set: the first script without a user of its own looks up `keepalived_script`
/// (once: the passes share the result; parent's scripts first, then the checker's, then
/// VRRP's), and when it does not exist every such `vrrp_script` and `MISC_CHECK` is removed
/// at its `}` (its `track_script` entries then name nothing), and startup/shutdown scripts
/// are invalid.
fn check_default_script_user(
    config: &KeepalivedConfig,
    env: &dyn Environment,
    diags: &mut Diagnostics,
) {
    const DEFAULT_USER: &str = "keepalived_script";
    let g = &config.global;
    // A script_user the system does not have leaves no default user either (its own error is
    // said where it is set).
    let no_default = match &g.script_user {
        Some(_) => g.script_user_unknown,
        None => g.enable_script_security && !env.user_exists(DEFAULT_USER),
    };
    if !no_default {
        return;
    }
    let lookup = g.script_user.is_none();

    // A pass that stopped at a missing parameter read nothing after it, nor did the later ones.
    let fatal = diags
        .items
        .iter()
        .find(|d| d.severity == Severity::Fatal)
        .and_then(|d| d.span.clone());
    let stopped = diags.stopped_in;
    let read = |process: Process, span: &Span| -> bool {
        match stopped {
            None => true,
            Some(s) if pass_order(process) < pass_order(s) => true,
            Some(s) if s == process => fatal
                .as_ref()
                .is_none_or(|f| f.file == span.file && span.line < f.line),
            Some(_) => false,
        }
    };
    let no_user = |s: &&Script| s.user.is_none();
    let mut uses: Vec<(Process, Span)> = Vec::new();
    // Parent: the FIFO scripts and startup/shutdown.
    let parent = [
        &g.notify_fifo_script,
        &g.vrrp_notify_fifo_script,
        &g.lvs_notify_fifo_script,
        &g.startup_script,
        &g.shutdown_script,
    ];
    for s in parent.into_iter().flatten().filter(no_user) {
        uses.push((Process::Parent, s.span.clone()));
    }
    let mut removed: Vec<(Span, String)> = Vec::new();
    for vs in &config.virtual_servers {
        let from = uses.len();
        let vs_scripts = [
            &vs.quorum_up,
            &vs.quorum_down,
            &vs.notify_up,
            &vs.notify_down,
        ];
        for s in vs_scripts.into_iter().flatten().filter(no_user) {
            uses.push((Process::Checker, s.span.clone()));
        }
        for rs in &vs.real_servers {
            for s in [&rs.notify_up, &rs.notify_down]
                .into_iter()
                .flatten()
                .filter(no_user)
            {
                uses.push((Process::Checker, s.span.clone()));
            }
            for c in &rs.checkers {
                if let crate::model::CheckerKind::Misc(m) = &c.kind
                    && m.user.is_none()
                    && let (Some(path), Some(end)) = (&m.path, &m.end_span)
                {
                    uses.push((Process::Checker, end.clone()));
                    removed.push((
                        end.clone(),
                        // keepalived's cmd_str: every word quoted.
                        format!(
                            "Unable to set default user for misc script '{}' - removing",
                            path.argv.join("' '")
                        ),
                    ));
                }
            }
        }
        // A virtual server's own lines and its real servers' in the order they are read.
        uses[from..].sort_by(|a, b| (&a.1.file, a.1.line).cmp(&(&b.1.file, b.1.line)));
    }
    let mut removed_vrrp = Vec::new();
    for s in &config.vrrp_scripts {
        if s.user.is_none()
            && let Some(end) = &s.end_span
        {
            uses.push((Process::Vrrp, end.clone()));
            removed.push((
                end.clone(),
                format!(
                    "Unable to set default user for vrrp script {} - removing",
                    s.name
                ),
            ));
            removed_vrrp.push(s.name.as_str());
        }
    }
    let notifies = config
        .vrrp_instances
        .iter()
        .flat_map(|v| v.notify.all())
        .chain(config.sync_groups.iter().flat_map(|g| g.notify.all()));
    for s in notifies.filter(no_user) {
        uses.push((Process::Vrrp, s.span.clone()));
    }
    uses.retain(|(p, s)| read(*p, s));
    uses.sort_by_key(|(p, _)| pass_order(*p));
    let Some((first_process, first)) = uses.first() else {
        return;
    };
    // The user is looked up once, by the first script: one of the parent's read before
    // enable_script_security gets root, and so does every script after it.
    if lookup
        && *first_process == Process::Parent
        && !g
            .script_security_span
            .as_ref()
            .is_some_and(|e| e.file != first.file || e.line <= first.line)
    {
        return;
    }
    let push = |diags: &mut Diagnostics, span: &Span, msg: String| {
        diags.push(Severity::Warning, DiagKind::Semantic, Some(span), msg, None);
    };
    if lookup {
        push(
            diags,
            first,
            format!("Unable to set default user {DEFAULT_USER} for script"),
        );
    }
    for (which, s) in [
        ("startup", &g.startup_script),
        ("shutdown", &g.shutdown_script),
    ] {
        if let Some(s) = s
            .as_ref()
            .filter(|s| s.user.is_none() && read(Process::Parent, &s.span))
        {
            push(diags, &s.span, format!("Invalid {which} script"));
        }
    }
    for (span, msg) in removed {
        push(diags, &span, msg);
    }
    for v in &config.vrrp_instances {
        for t in v
            .track_scripts
            .iter()
            .filter(|t| removed_vrrp.contains(&t.name.as_str()))
        {
            push(
                diags,
                &t.span,
                format!(
                    "({}) track script {} not found, ignoring...",
                    v.name, t.name
                ),
            );
        }
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
    // Scripts removed for want of a user (an unknown script_user) run nothing.
    let removed: Vec<&Script> = if config.global.script_user_unknown {
        removed_without_user(config)
    } else {
        Vec::new()
    };
    let runs_something = config
        .scripts_by_process()
        .into_iter()
        .filter(|(_, s)| !removed.iter().any(|r| std::ptr::eq(*r, *s)))
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
