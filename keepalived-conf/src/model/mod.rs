//! The typed configuration: what the daemon, the VRRP engine and the data
//! plane consume. keepalived's defaults are already applied.

pub mod global;
pub mod lvs;
pub mod net;
pub mod vrrp;

pub use global::*;
pub use lvs::*;
pub use net::*;
pub use vrrp::*;

use crate::diag::Span;
use serde::Serialize;

/// A keyword that is known (so not warned about) but kept as text rather
/// than typed, with its block if it has one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RawOption {
    pub keyword: String,
    pub args: Vec<String>,
    pub span: Span,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub span: Span,
}

/// Top-level single-line settings outside global_defs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TopLevel {
    pub net_namespace: Option<String>,
    pub net_namespace_ipvs: Option<String>,
    pub namespace_with_ipsets: bool,
    pub use_pid_dir: bool,
    pub instance: Option<String>,
    pub child_wait_time: Option<u32>,
    pub linkbeat_use_polling: bool,
}

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KeepalivedConfig {
    pub global: GlobalDefs,
    pub top_level: TopLevel,
    pub static_ipaddresses: Vec<IpAddressEntry>,
    pub static_routes: Vec<RouteEntry>,
    pub static_rules: Vec<RuleEntry>,
    pub linkbeat_interfaces: Vec<String>,
    pub interface_up_down_delays: Vec<UpDownDelay>,
    pub track_groups: Vec<TrackGroup>,
    pub vrrp_scripts: Vec<VrrpScript>,
    pub track_processes: Vec<TrackProcess>,
    pub track_files: Vec<TrackFile>,
    pub sync_groups: Vec<SyncGroup>,
    pub garp_groups: Vec<GarpGroup>,
    pub vrrp_instances: Vec<VrrpInstance>,
    pub bfd_instances: Vec<BfdInstance>,
    pub ssl: Option<SslConfig>,
    pub virtual_server_groups: Vec<VirtualServerGroup>,
    pub virtual_servers: Vec<VirtualServer>,
    /// Alibaba / DPVS `local_address_group` (FNAT source addresses).
    pub local_address_groups: Vec<AddressGroup>,
    /// DPVS `deny_address_group` (blacklist).
    pub deny_address_groups: Vec<AddressGroup>,
    /// DPVS `allow_address_group` (whitelist).
    pub allow_address_groups: Vec<AddressGroup>,
    /// DPVS `tunnel_group`.
    pub tunnel_groups: Vec<TunnelGroup>,
}

impl KeepalivedConfig {
    pub fn vrrp_instance(&self, name: &str) -> Option<&VrrpInstance> {
        self.vrrp_instances.iter().find(|v| v.name == name)
    }

    pub fn virtual_server_group(&self, name: &str) -> Option<&VirtualServerGroup> {
        self.virtual_server_groups.iter().find(|g| g.name == name)
    }

    pub fn local_address_group(&self, name: &str) -> Option<&AddressGroup> {
        self.local_address_groups.iter().find(|g| g.name == name)
    }

    pub fn vrrp_script(&self, name: &str) -> Option<&VrrpScript> {
        self.vrrp_scripts.iter().find(|s| s.name == name)
    }

    /// Every script the configuration would run (for script security checks).
    pub fn scripts(&self) -> Vec<&Script> {
        let mut out: Vec<&Script> = Vec::new();
        out.extend(self.global.startup_script.iter());
        out.extend(self.global.shutdown_script.iter());
        out.extend(self.global.notify_fifo_script.iter());
        out.extend(self.global.vrrp_notify_fifo_script.iter());
        out.extend(self.global.lvs_notify_fifo_script.iter());
        out.extend(self.vrrp_scripts.iter().filter_map(|s| s.script.as_ref()));
        for g in &self.sync_groups {
            out.extend(g.notify.all());
        }
        for v in &self.vrrp_instances {
            out.extend(v.notify.all());
        }
        for vs in &self.virtual_servers {
            out.extend(vs.notify_up.iter());
            out.extend(vs.notify_down.iter());
            for rs in &vs.real_servers {
                out.extend(rs.notify_up.iter());
                out.extend(rs.notify_down.iter());
                for c in &rs.checkers {
                    if let CheckerKind::Misc(m) = &c.kind {
                        out.extend(m.path.iter());
                    }
                }
            }
        }
        out
    }
}
