//! VRRP: instances, sync groups, trackers, BFD.

use super::{IpAddressEntry, IpPrefix, RawOption, RouteEntry, RuleEntry, Script};
use crate::diag::Span;
use serde::Serialize;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum VrrpState {
    Master,
    Backup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AuthType {
    Pass,
    Ah,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Authentication {
    pub auth_type: Option<AuthType>,
    /// Only the first 8 characters are used (as keepalived does).
    pub auth_pass: Option<String>,
}

/// Notify scripts shared by instances and sync groups.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NotifyScripts {
    pub notify: Option<Script>,
    pub notify_master: Option<Script>,
    pub notify_backup: Option<Script>,
    pub notify_fault: Option<Script>,
    pub notify_stop: Option<Script>,
    pub notify_deleted: Option<Script>,
    /// `notify_deleted` was given (with or without a script): a deleted instance notifies
    /// DELETED instead of FAULT.
    pub notify_deleted_set: bool,
    pub notify_master_rx_lower_pri: Option<Script>,
}

impl NotifyScripts {
    pub fn all(&self) -> impl Iterator<Item = &Script> {
        [
            &self.notify,
            &self.notify_master,
            &self.notify_backup,
            &self.notify_fault,
            &self.notify_stop,
            &self.notify_deleted,
            &self.notify_master_rx_lower_pri,
        ]
        .into_iter()
        .flatten()
    }
}

/// A tracked object reference with optional weight (`NAME [weight W [reverse]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackRef {
    pub name: String,
    pub weight: Option<i32>,
    pub reverse: bool,
    pub span: Span,
}

/// `use_ipvlan`: an L2 ipvlan on the instance's interface carries the VIPs and adverts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UseIpvlan {
    pub name: Option<String>,
    /// The ipvlan's own address (required for IPv4: the adverts' source).
    pub address: Option<super::IpPrefix>,
    /// bridge (default), private or vepa.
    pub mode: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnicastPeer {
    pub address: IpAddr,
    pub min_ttl: Option<u8>,
    pub max_ttl: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VrrpInstance {
    pub name: String,
    pub span: Span,
    /// Initial state (default BACKUP; MASTER only when written).
    pub state: VrrpState,
    pub state_configured: bool,
    pub interface: Option<String>,
    /// Where `interface` was written (for "doesn't exist" reports).
    pub interface_span: Option<Span>,
    /// DPVS: the DPDK device behind the `.kni` interface.
    pub dpdk_interface: Option<String>,
    pub virtual_router_id: Option<u8>,
    /// 1..255; default 100, or 255 for `state MASTER` without priority.
    pub priority: u8,
    pub priority_configured: bool,
    /// Seconds (default 1).
    pub advert_int: f64,
    /// 2 or 3; from global vrrp_version, 3 for IPv6 instances.
    pub version: u8,
    pub preempt: bool,
    /// Seconds.
    pub preempt_delay: Option<f64>,
    /// `accept` / `no_accept`; unset: accept unless strict mode (keepalived's default).
    pub accept: Option<bool>,
    pub use_vmac: Option<String>,
    pub vmac_xmit_base: bool,
    /// `use_ipvlan [NAME] [IP[/LEN]] [bridge|private|vepa]`.
    pub use_ipvlan: Option<UseIpvlan>,
    pub native_ipv6: bool,
    pub dont_track_primary: bool,
    pub mcast_src_ip: Option<IpAddr>,
    pub unicast_src_ip: Option<IpAddr>,
    pub unicast_peers: Vec<UnicastPeer>,
    pub unicast_ttl: Option<u8>,
    pub unicast_fault_no_peer: bool,
    pub check_unicast_src: bool,
    pub virtual_ipaddresses: Vec<IpAddressEntry>,
    pub virtual_ipaddresses_excluded: Vec<IpAddressEntry>,
    pub virtual_routes: Vec<RouteEntry>,
    pub virtual_rules: Vec<RuleEntry>,
    pub track_interfaces: Vec<TrackRef>,
    pub track_scripts: Vec<TrackRef>,
    pub track_files: Vec<TrackRef>,
    pub track_processes: Vec<TrackRef>,
    pub track_bfds: Vec<TrackRef>,
    pub authentication: Option<Authentication>,
    pub notify: NotifyScripts,
    pub smtp_alert: Option<bool>,
    pub strict_mode: Option<bool>,
    pub skip_check_adv_addr: bool,
    pub garp_master_delay: Option<u32>,
    pub garp_master_repeat: Option<u32>,
    pub garp_master_refresh: Option<u32>,
    pub garp_master_refresh_repeat: Option<u32>,
    pub garp_lower_prio_delay: Option<u32>,
    pub garp_lower_prio_repeat: Option<u32>,
    /// Default 3.
    pub down_timer_adverts: u32,
    pub lower_prio_no_advert: Option<bool>,
    pub higher_prio_send_advert: Option<bool>,
    pub lvs_sync_daemon_interface: Option<String>,
    pub debug: Option<u8>,
    pub extra: Vec<RawOption>,
}

impl VrrpInstance {
    pub fn new(name: String, span: Span) -> Self {
        VrrpInstance {
            name,
            span,
            state: VrrpState::Backup,
            state_configured: false,
            interface: None,
            interface_span: None,
            dpdk_interface: None,
            virtual_router_id: None,
            priority: 100,
            priority_configured: false,
            advert_int: 1.0,
            version: 2,
            preempt: true,
            preempt_delay: None,
            accept: None,
            use_vmac: None,
            vmac_xmit_base: false,
            use_ipvlan: None,
            native_ipv6: false,
            dont_track_primary: false,
            mcast_src_ip: None,
            unicast_src_ip: None,
            unicast_peers: Vec::new(),
            unicast_ttl: None,
            unicast_fault_no_peer: false,
            check_unicast_src: false,
            virtual_ipaddresses: Vec::new(),
            virtual_ipaddresses_excluded: Vec::new(),
            virtual_routes: Vec::new(),
            virtual_rules: Vec::new(),
            track_interfaces: Vec::new(),
            track_scripts: Vec::new(),
            track_files: Vec::new(),
            track_processes: Vec::new(),
            track_bfds: Vec::new(),
            authentication: None,
            notify: NotifyScripts::default(),
            smtp_alert: None,
            strict_mode: None,
            skip_check_adv_addr: false,
            garp_master_delay: None,
            garp_master_repeat: None,
            garp_master_refresh: None,
            garp_master_refresh_repeat: None,
            garp_lower_prio_delay: None,
            garp_lower_prio_repeat: None,
            down_timer_adverts: 3,
            lower_prio_no_advert: None,
            higher_prio_send_advert: None,
            lvs_sync_daemon_interface: None,
            debug: None,
            extra: Vec::new(),
        }
    }

    pub fn is_ipv6(&self) -> bool {
        self.virtual_ipaddresses
            .first()
            .is_some_and(|a| a.address.addr.is_ipv6())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncGroup {
    pub name: String,
    pub span: Span,
    pub group: Vec<String>,
    pub track_interfaces: Vec<TrackRef>,
    pub track_scripts: Vec<TrackRef>,
    pub track_files: Vec<TrackRef>,
    pub track_processes: Vec<TrackRef>,
    pub track_bfds: Vec<TrackRef>,
    pub notify: NotifyScripts,
    pub smtp_alert: Option<bool>,
    pub global_tracking: bool,
    pub sync_group_tracking_weight: bool,
    pub extra: Vec<RawOption>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VrrpScript {
    pub name: String,
    pub span: Span,
    pub script: Option<Script>,
    /// Seconds (default 1).
    pub interval: f64,
    /// Seconds (default: interval).
    pub timeout: Option<f64>,
    pub weight: i32,
    pub weight_reverse: bool,
    /// Default 1.
    pub rise: u32,
    /// Default 1.
    pub fall: u32,
    pub user: Option<String>,
    pub group: Option<String>,
    pub init_fail: bool,
    /// The line of the block's `}`, where keepalived checks the script's user.
    #[serde(skip)]
    pub end_span: Option<Span>,
}

/// How a tracked process's parameters are compared (`param_match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamMatch {
    /// Exactly these parameters (also: parameters given, or `param_match` alone).
    Exact,
    /// The first parameters match exactly, more may follow.
    Partial,
    /// As partial, and the last given one may be a prefix of the process's.
    Initial,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackProcess {
    pub name: String,
    pub span: Span,
    /// The process name (`/proc/PID/comm`), or the program of the command line.
    pub process: Option<String>,
    /// Parameters to match (their presence means the command line is matched).
    pub params: Vec<String>,
    pub param_match: Option<ParamMatch>,
    /// Match `/proc/PID/cmdline` instead of the process name.
    pub full_command: bool,
    /// Default 0: FAULT while the quorum is not met.
    pub weight: i32,
    pub weight_reverse: bool,
    /// Default 1.
    pub quorum: u32,
    /// Default unlimited.
    pub quorum_max: Option<u32>,
    /// Seconds a gained quorum must hold before it counts (`fork_delay`, `delay`).
    pub fork_delay: Option<f64>,
    /// Seconds a lost quorum must stay lost (`terminate_delay`, `delay`).
    pub terminate_delay: Option<f64>,
    pub extra: Vec<RawOption>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackFile {
    pub name: String,
    pub span: Span,
    pub file: Option<String>,
    pub weight: i32,
    pub weight_reverse: bool,
    pub init_file: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GarpGroup {
    pub span: Span,
    pub garp_interval: Option<f64>,
    pub gna_interval: Option<f64>,
    pub interfaces: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackGroup {
    pub name: String,
    pub span: Span,
    pub group: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpDownDelay {
    pub interface: String,
    pub down: f64,
    pub up: f64,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BfdInstance {
    pub name: String,
    pub span: Span,
    pub source_ip: Option<IpAddr>,
    pub neighbor_ip: Option<IpAddr>,
    /// Milliseconds (default 10).
    pub min_rx: u32,
    /// Milliseconds (default 10).
    pub min_tx: u32,
    /// Milliseconds (default 1000).
    pub idle_tx: u32,
    /// Default 5.
    pub multiplier: u32,
    pub passive: bool,
    pub ttl: Option<u8>,
    pub max_hops: Option<u8>,
    pub multihop: bool,
    pub weight: Option<i32>,
    pub vrrp: bool,
    pub checker: bool,
    pub extra: Vec<RawOption>,
}

/// Helper for dumps: an instance's VIPs as text.
pub fn vip_list(v: &VrrpInstance) -> Vec<IpPrefix> {
    v.virtual_ipaddresses.iter().map(|e| e.address).collect()
}
