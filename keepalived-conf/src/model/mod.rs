//! The typed configuration: what the daemon, the VRRP engine and the data
//! plane consume. keepalived's defaults are already applied.

pub mod global;
pub mod lvs;
pub mod net;
pub mod route_bridge;
pub mod vrrp;

pub use global::*;
pub use lvs::*;
pub use net::*;
pub use route_bridge::*;
pub use vrrp::*;

use crate::diag::Span;
use serde::Serialize;

/// A keyword that is known (so not warned about) but kept as text rather
/// than typed, with its block if it has one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RawOption {
    /// The keyword as written.
    pub keyword: String,
    /// The words after it.
    pub args: Vec<String>,
    /// Where it is written, for diagnostics.
    pub span: Span,
    /// Its `{ … }` block, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block: Option<Vec<RawOption>>,
}

/// A script or program with its arguments (`script`, `notify_*`, `misc_path`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Script {
    /// The command line as written (quotes removed).
    pub command: String,
    /// The command split the way keepalived runs it (escapes applied).
    pub argv: Vec<String>,
    /// The same as bytes, when an escape made a word that is not UTF-8 (`\xff`): what is
    /// passed to exec then.
    #[serde(skip)]
    pub argv_bytes: Option<Vec<Vec<u8>>>,
    /// User the script runs as (default: `script_user`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Group the script runs as.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Where it is written, for diagnostics.
    pub span: Span,
}

/// Top-level single-line settings outside global_defs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TopLevel {
    /// `net_namespace`: the namespace keepalived runs in.
    pub net_namespace: Option<String>,
    /// `net_namespace_ipvs`: the namespace of the IPVS tables.
    pub net_namespace_ipvs: Option<String>,
    /// `namespace_with_ipsets`.
    pub namespace_with_ipsets: bool,
    /// `use_pid_dir`: pid files under /run/keepalived.
    pub use_pid_dir: bool,
    /// `instance`: names this keepalived among several on a host.
    pub instance: Option<String>,
    /// `child_wait_time`: seconds to wait for children at stop.
    pub child_wait_time: Option<u32>,
    /// `linkbeat_use_polling`: interfaces are polled, not followed by netlink.
    pub linkbeat_use_polling: bool,
}

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KeepalivedConfig {
    /// `global_defs`.
    pub global: GlobalDefs,
    /// Single-line settings outside every block.
    pub top_level: TopLevel,
    /// `static_ipaddress`: addresses held whatever VRRP says.
    pub static_ipaddresses: Vec<IpAddressEntry>,
    /// `static_routes`.
    pub static_routes: Vec<RouteEntry>,
    /// `static_rules`.
    pub static_rules: Vec<RuleEntry>,
    /// `linkbeat_interfaces`.
    pub linkbeat_interfaces: Vec<String>,
    /// `interface_up_down_delays` entries.
    pub interface_up_down_delays: Vec<UpDownDelay>,
    /// `track_group` blocks.
    pub track_groups: Vec<TrackGroup>,
    /// `vrrp_script` blocks.
    pub vrrp_scripts: Vec<VrrpScript>,
    /// `vrrp_track_process` blocks.
    pub track_processes: Vec<TrackProcess>,
    /// `vrrp_track_file` blocks.
    pub track_files: Vec<TrackFile>,
    /// `vrrp_sync_group` blocks.
    pub sync_groups: Vec<SyncGroup>,
    /// `garp_group` blocks.
    pub garp_groups: Vec<GarpGroup>,
    /// `vrrp_instance` blocks.
    pub vrrp_instances: Vec<VrrpInstance>,
    /// `bfd_instance` blocks.
    pub bfd_instances: Vec<BfdInstance>,
    /// The `SSL` block, when there is one.
    pub ssl: Option<SslConfig>,
    /// `virtual_server_group` blocks.
    pub virtual_server_groups: Vec<VirtualServerGroup>,
    /// `virtual_server` blocks.
    pub virtual_servers: Vec<VirtualServer>,
    /// Alibaba / DPVS `local_address_group` (FNAT source addresses).
    pub local_address_groups: Vec<AddressGroup>,
    /// DPVS `deny_address_group` (blacklist).
    pub deny_address_groups: Vec<AddressGroup>,
    /// DPVS `allow_address_group` (whitelist).
    pub allow_address_groups: Vec<AddressGroup>,
    /// DPVS `tunnel_group`.
    pub tunnel_groups: Vec<TunnelGroup>,
    /// xlvs extension: VIP announcement to routers (`route_bridge { … }`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_bridge: Option<RouteBridge>,
}

impl KeepalivedConfig {
    /// The instance of this name.
    pub fn vrrp_instance(&self, name: &str) -> Option<&VrrpInstance> {
        self.vrrp_instances.iter().find(|v| v.name == name)
    }

    /// The virtual-server group of this name.
    pub fn virtual_server_group(&self, name: &str) -> Option<&VirtualServerGroup> {
        self.virtual_server_groups.iter().find(|g| g.name == name)
    }

    /// The local-address group of this name.
    pub fn local_address_group(&self, name: &str) -> Option<&AddressGroup> {
        self.local_address_groups.iter().find(|g| g.name == name)
    }

    /// The `vrrp_script` of this name.
    pub fn vrrp_script(&self, name: &str) -> Option<&VrrpScript> {
        self.vrrp_scripts.iter().find(|s| s.name == name)
    }

    /// Every script the configuration would run (for script security checks).
    pub fn scripts(&self) -> Vec<&Script> {
        self.scripts_by_process()
            .into_iter()
            .map(|(_, s)| s)
            .collect()
    }

    /// Every script, with the keepalived process that runs it.
    pub fn scripts_by_process(&self) -> Vec<(crate::parser::Process, &Script)> {
        use crate::parser::Process::{Checker, Parent, Vrrp};
        let mut out: Vec<(crate::parser::Process, &Script)> = Vec::new();
        let g = &self.global;
        for s in [
            &g.startup_script,
            &g.shutdown_script,
            &g.notify_fifo_script,
            &g.vrrp_notify_fifo_script,
            &g.lvs_notify_fifo_script,
        ] {
            out.extend(s.iter().map(|s| (Parent, s)));
        }
        let vrrp = self
            .vrrp_scripts
            .iter()
            .filter_map(|s| s.script.as_ref())
            .chain(self.sync_groups.iter().flat_map(|g| g.notify.all()))
            .chain(self.vrrp_instances.iter().flat_map(|v| v.notify.all()));
        out.extend(vrrp.map(|s| (Vrrp, s)));
        for vs in &self.virtual_servers {
            let mut checker: Vec<&Script> =
                vs.notify_up.iter().chain(vs.notify_down.iter()).collect();
            for rs in &vs.real_servers {
                checker.extend(rs.notify_up.iter().chain(rs.notify_down.iter()));
                for c in &rs.checkers {
                    if let CheckerKind::Misc(m) = &c.kind {
                        checker.extend(m.path.iter());
                    }
                }
            }
            out.extend(checker.into_iter().map(|s| (Checker, s)));
        }
        out
    }
}
