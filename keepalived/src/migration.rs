//! `keepalived --migration-check` (xlvs extension): every directive of a configuration that
//! this keepalived accepts but does not act on, with its file and line, so an operator moving a
//! director from keepalived + IPVS knows what will silently do nothing.
//!
//! Two sources: the directives the parser keeps verbatim (its `extra` lists: accepted, read by
//! nothing; those the daemon does read from there are left out), and the typed directives of
//! features xlvs does not have (SNMP, D-Bus, process priorities), found by a walk over the
//! lexed lines with their block.

use keepalived_conf::diag::Diagnostics;
use keepalived_conf::lexer::Lexer;
use keepalived_conf::{KeepalivedConfig, ParseOptions, Span};
use std::collections::BTreeSet;
use std::path::Path;

/// Kept verbatim by the parser but read by the daemon (VRRP engine, checkers, BFD, process
/// setup) from the raw options. `tests/not_acted_on.rs` keeps this list true to the sources.
pub const READ_FROM_EXTRA: &[&str] = &[
    "bfd_priority",
    "bfd_rt_priority",
    "garp_extra_if",
    "linkbeat_use_polling",
    "mcast_dst_ip",
    "min_auto_priority_delay",
    "no_checker_emails",
    "no_email_faults",
    "old_unicast_checksum",
    "promote_secondaries",
    "shutdown_script_timeout",
    "startup_script_timeout",
    "track_src_ip",
    "umask",
    "v3_checksum_as_v2",
    "vmac_garp_intvl",
    "vrf",
    "vrrp_cpu_affinity",
    "vrrp_garp_extra_if",
    "vrrp_rlimit_rtime",
    "vrrp_rlimit_rttime",
    "vrrp_rt_priority",
    "vrrp_vmac_garp_intvl",
];

/// (block, keyword) of typed directives whose feature xlvs does not have; `*` is any block.
const NOT_ACTED_ON: &[(&str, &str, &str)] = &[
    ("global_defs", "enable_snmp_vrrp", "no SNMP agent"),
    ("global_defs", "enable_snmp_checker", "no SNMP agent"),
    ("global_defs", "enable_snmp_rfc", "no SNMP agent"),
    ("global_defs", "enable_snmp_rfcv2", "no SNMP agent"),
    ("global_defs", "enable_snmp_rfcv3", "no SNMP agent"),
    ("global_defs", "enable_traps", "no SNMP agent"),
    ("global_defs", "snmp_socket", "no SNMP agent"),
    ("global_defs", "enable_dbus", "no D-Bus interface"),
    ("global_defs", "enable_dbus_instance", "no D-Bus interface"),
    ("global_defs", "dbus_service_name", "no D-Bus interface"),
    (
        "global_defs",
        "vrrp_priority",
        "no process priorities (one process)",
    ),
    (
        "global_defs",
        "checker_priority",
        "no process priorities (one process)",
    ),
    (
        "global_defs",
        "vrrp_no_swap",
        "no process priorities (one process)",
    ),
    (
        "global_defs",
        "checker_no_swap",
        "no process priorities (one process)",
    ),
];

/// One directive that will do nothing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// File the directive is in.
    pub file: String,
    /// Its line.
    pub line: u32,
    /// The keyword.
    pub keyword: String,
    /// Why it does nothing here.
    pub why: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {} is accepted but does nothing here ({})",
            self.file, self.line, self.keyword, self.why
        )
    }
}

fn finding(span: &Span, keyword: &str, why: &str) -> Finding {
    Finding {
        file: span.file.to_string(),
        line: span.line,
        keyword: keyword.to_string(),
        why: why.to_string(),
    }
}

/// The findings for the configuration at `path` (already parsed into `config`).
pub fn check(path: &Path, config: &KeepalivedConfig, opts: &ParseOptions) -> Vec<Finding> {
    let mut out: BTreeSet<Finding> = BTreeSet::new();
    let json = serde_json::to_value(config).unwrap_or_default();
    let mut extras = Vec::new();
    collect_extras(&json, &mut extras);
    for (keyword, file, line) in extras {
        if !READ_FROM_EXTRA.contains(&keyword.as_str()) {
            out.insert(Finding {
                file,
                line,
                keyword,
                why: "kept, not implemented".into(),
            });
        }
    }
    let mut diags = Diagnostics::default();
    let mut lexer = Lexer::new(opts.lex.clone(), &mut diags);
    if lexer.read_main_file(path).is_ok() {
        let mut blocks: Vec<String> = Vec::new();
        let mut last = String::new();
        for l in lexer.finish() {
            match l.first() {
                "{" => blocks.push(std::mem::take(&mut last)),
                "}" => {
                    blocks.pop();
                }
                kw => {
                    let block = blocks.last().map(String::as_str).unwrap_or("");
                    if let Some((_, _, why)) = NOT_ACTED_ON
                        .iter()
                        .find(|(b, k, _)| *k == kw && (*b == "*" || *b == block))
                    {
                        out.insert(finding(&l.span, kw, why));
                    }
                    last = kw.to_string();
                }
            }
        }
    }
    out.into_iter().collect()
}

/// (keyword, file, line) of every `extra` list of the model (serialised, so nested structures
/// need no walk of their own).
fn collect_extras(v: &serde_json::Value, out: &mut Vec<(String, String, u32)>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if k == "extra"
                    && let Some(list) = x.as_array()
                {
                    for o in list {
                        let kw = o["keyword"].as_str().unwrap_or_default().to_string();
                        let file = o["span"]["file"].as_str().unwrap_or_default().to_string();
                        let line = o["span"]["line"].as_u64().unwrap_or(0) as u32;
                        out.push((kw, file, line));
                    }
                } else {
                    collect_extras(x, out);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_extras(x, out)),
        _ => {}
    }
}
