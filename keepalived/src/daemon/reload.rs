//! Loading a configuration for SIGHUP, and the global LVS settings a (re)load applies.

use crate::check::{self, Loaded};
use dataplane::Dataplane;
use keepalived_conf::diag::{DiagKind, Severity};
use keepalived_conf::model::LvsTimeouts;
use keepalived_conf::validate::SystemEnvironment;
use keepalived_conf::{KeepalivedConfig, ParseOptions};
use log::{error, warn};
use std::path::Path;

/// Diagnostics that do not make a configuration unsafe to switch to: keepalived's deprecation
/// notes, scripts it would refuse to run, interfaces that may appear later.
fn harmless(kind: DiagKind) -> bool {
    matches!(
        kind,
        DiagKind::Deprecated | DiagKind::Security | DiagKind::Interface | DiagKind::MissingInclude
    )
}

/// The new configuration, or the messages (with file and line) that make it unfit: a reload
/// switches only to a configuration that parses without errors, so a typo never takes
/// services away.
pub fn load_for_reload(path: &Path, opts: &ParseOptions) -> Result<KeepalivedConfig, Vec<String>> {
    let parsed = match check::load(path, opts, &SystemEnvironment) {
        Loaded::Missing(msg) => return Err(vec![msg]),
        Loaded::Parsed(p) => p,
    };
    let mut blocking = Vec::new();
    for d in &parsed.diagnostics.items {
        if d.severity == Severity::Fatal || (d.severity == Severity::Warning && !harmless(d.kind)) {
            blocking.push(d.keepalived_format());
        } else if d.severity == Severity::Warning {
            warn!("{}", d.keepalived_format());
        }
    }
    if blocking.is_empty() {
        Ok(parsed.config)
    } else {
        Err(blocking)
    }
}

/// `lvs_timeouts` from global_defs (only the ones given; the others keep their value).
pub fn apply_timeouts(dp: &mut Dataplane, t: &LvsTimeouts) {
    if t.tcp.is_none() && t.tcpfin.is_none() && t.udp.is_none() {
        return;
    }
    let result = dp.timeouts().and_then(|mut cur| {
        cur.tcp = t.tcp.unwrap_or(cur.tcp);
        cur.tcp_fin = t.tcpfin.unwrap_or(cur.tcp_fin);
        cur.udp = t.udp.unwrap_or(cur.udp);
        dp.set_timeouts(&cur)
    });
    if let Err(e) = result {
        error!("IPVS: cannot set lvs_timeouts: {e}");
    }
}
