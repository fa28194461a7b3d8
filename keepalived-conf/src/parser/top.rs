//! Top-level keywords.

use super::Parser;
use crate::diag::{DiagKind, Diagnostics, Severity};
use crate::lexer::Line;
use crate::model::KeepalivedConfig;

/// The processes keepalived 2.2.7 reads the configuration in: each has the keywords of the
/// others installed but inactive, and skips their blocks by counting braces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    /// The parent (global settings, static addresses and routes).
    Parent,
    /// The VRRP process.
    Vrrp,
    /// The checker (LVS) process.
    Checker,
}

/// Top-level blocks only the VRRP process reads.
const VRRP_BLOCKS: &[&str] = &[
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "linkbeat_interfaces",
    "interface_up_down_delays",
    "track_group",
    "vrrp_script",
    "vrrp_track_process",
    "track_file",
    "vrrp_track_file",
    "vrrp_sync_group",
    "garp_group",
    "vrrp_instance",
    "bfd_instance",
];
/// Top-level blocks only the checker process reads.
const CHECKER_BLOCKS: &[&str] = &[
    "SSL",
    "track_file",
    "bfd_instance",
    "virtual_server_group",
    "virtual_server",
    "local_address_group",
    "deny_address_group",
    "blacklist_address_group",
    "allow_address_group",
    "whitelist_address_group",
    "tunnel_group",
];

/// Blocks every process but the parent skips (the children inherit what it read).
const PARENT_BLOCKS: &[&str] = &["global_defs"];

fn is_process_block(kw: &str) -> bool {
    VRRP_BLOCKS.contains(&kw) || CHECKER_BLOCKS.contains(&kw) || PARENT_BLOCKS.contains(&kw)
}

impl Process {
    /// Whether the top-level keyword `kw` is read (not skipped) by this process.
    fn reads(self, kw: &str) -> bool {
        let (own, other) = match self {
            Process::Parent => return !is_process_block(kw) || PARENT_BLOCKS.contains(&kw),
            _ if PARENT_BLOCKS.contains(&kw) => return false,
            Process::Vrrp => (VRRP_BLOCKS, CHECKER_BLOCKS),
            Process::Checker => (CHECKER_BLOCKS, VRRP_BLOCKS),
        };
        own.contains(&kw) || !other.contains(&kw)
    }
}

/// Parses logical lines into the typed configuration. When the braces are unbalanced or a
/// parameter is missing, keepalived's processes disagree about what they read (each skips the
/// others' blocks by counting braces, and one that stops at a missing parameter does not undo
/// the other passes before it): then what is reported is what the passes, one per process,
/// report.
pub fn parse_lines(lines: &[Line], diags: &mut Diagnostics) -> KeepalivedConfig {
    let before = diags.items.len();
    let mut p = Parser::new(lines, diags);
    p.run_block(false, &mut |p: &mut Parser<'_>, l: &Line| top_keyword(p, l));
    let mut config = std::mem::take(&mut p.config);
    super::lvs::finalize(&mut config);
    let diverges = diags.items[before..]
        .iter()
        .any(|d| d.kind == DiagKind::Braces || d.severity == Severity::Fatal);
    if diverges {
        diags.items.truncate(before);
        // keepalived -t reads as the parent, then the checker, then VRRP, in one process: a
        // missing parameter (exit) in one pass ends the check there.
        for process in [Process::Parent, Process::Checker, Process::Vrrp] {
            let mut seen = Diagnostics::default();
            let mut p = Parser::new(lines, &mut seen);
            p.process = Some(process);
            p.run_block(false, &mut |p: &mut Parser<'_>, l: &Line| top_keyword(p, l));
            for d in seen.items {
                if !diags.items[before..]
                    .iter()
                    .any(|o| o.span == d.span && o.message == d.message)
                {
                    diags.items.push(d);
                }
            }
            if diags.has_fatal() {
                diags.stopped_in = Some(process);
                drop_unread(lines, diags, before);
                break;
            }
        }
    }
    super::route_bridge::check(&config, diags);
    config
}

/// keepalived reads lines as it parses: what its reader would have said about the lines after
/// the one that ended the check (an extra '}', the count of missing ones at the end) is never
/// said. `before` is where the reader's own messages end.
fn drop_unread(lines: &[Line], diags: &mut Diagnostics, before: usize) {
    let Some(fatal) = diags
        .items
        .iter()
        .find(|d| d.severity == Severity::Fatal)
        .and_then(|d| d.span.clone())
    else {
        return;
    };
    let position = |file: &str, line: u32| {
        lines
            .iter()
            .position(|l| &*l.span.file == file && l.span.line >= line)
    };
    let Some(stop) = position(&fatal.file, fatal.line) else {
        return;
    };
    let mut i = 0;
    diags.items.retain(|d| {
        i += 1;
        if i > before || d.kind != DiagKind::Braces {
            return true;
        }
        match &d.span {
            Some(s) => position(&s.file, s.line).is_none_or(|p| p <= stop),
            None => false,
        }
    });
}

fn top_keyword<'a>(p: &mut Parser<'a>, l: &'a Line) -> bool {
    if let Some(process) = p.process
        && !process.reads(l.first())
        && is_process_block(l.first())
    {
        p.skip_inactive(l);
        return true;
    }
    match l.first() {
        "global_defs" => p.global_defs(l),
        "SSL" => p.ssl_block(l),
        "static_ipaddress" => {
            let items = p.value_block(l);
            for it in items {
                if let Some(a) = p.ip_address_entry(it, "static") {
                    p.config.static_ipaddresses.push(a);
                }
            }
        }
        "static_routes" => {
            let items = p.value_block(l);
            for it in items {
                if let Some(r) = p.route_entry(it) {
                    p.config.static_routes.push(r);
                }
            }
        }
        "static_rules" => {
            let items = p.value_block(l);
            for it in items {
                if let Some(r) = p.rule_entry(it) {
                    p.config.static_rules.push(r);
                }
            }
        }
        "linkbeat_interfaces" => {
            let words = p.value_words(l);
            p.config.linkbeat_interfaces.extend(words);
        }
        "interface_up_down_delays" => p.up_down_delays(l),
        "track_group" => p.track_group(l),
        "vrrp_script" => p.vrrp_script(l),
        "vrrp_track_process" => p.track_process(l),
        "track_file" | "vrrp_track_file" => p.track_file(l),
        "vrrp_sync_group" => p.sync_group(l),
        "garp_group" => p.garp_group(l),
        "vrrp_instance" => p.vrrp_instance(l),
        "bfd_instance" => p.bfd_instance(l),
        "virtual_server_group" => p.virtual_server_group(l),
        "virtual_server" => p.virtual_server(l),
        "local_address_group" => {
            if let Some(g) = p.address_group(l) {
                p.config.local_address_groups.push(g);
            }
        }
        "deny_address_group" | "blacklist_address_group" => {
            if let Some(g) = p.address_group(l) {
                p.config.deny_address_groups.push(g);
            }
        }
        "allow_address_group" | "whitelist_address_group" => {
            if let Some(g) = p.address_group(l) {
                p.config.allow_address_groups.push(g);
            }
        }
        "tunnel_group" => p.tunnel_group(l),
        // xlvs extension: VIP announcement through a routing daemon.
        "route_bridge" => p.route_bridge(l),
        "net_namespace" => p.config.top_level.net_namespace = p.read_string(l, 1),
        "net_namespace_ipvs" => p.config.top_level.net_namespace_ipvs = p.read_string(l, 1),
        "namespace_with_ipsets" => p.config.top_level.namespace_with_ipsets = true,
        "use_pid_dir" => p.config.top_level.use_pid_dir = true,
        "instance" => p.config.top_level.instance = p.read_string(l, 1),
        "child_wait_time" => {
            p.config.top_level.child_wait_time = p.read_u32(l, 1, 0, u32::MAX);
        }
        "linkbeat_use_polling" => p.config.top_level.linkbeat_use_polling = true,
        _ => return false,
    }
    true
}
