//! VRRP: instances, sync groups, trackers, BFD.

use super::{IpAddressEntry, IpPrefix, RawOption, RouteEntry, RuleEntry, Script};
use crate::diag::Span;
use serde::Serialize;
use std::net::IpAddr;

/// The `state` an instance starts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum VrrpState {
    /// Starts owning the VIPs (still yields to a higher priority).
    Master,
    /// Starts waiting for the master's adverts.
    Backup,
}

/// VRRPv2 `auth_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AuthType {
    /// Clear-text password in the advert.
    Pass,
    /// IPsec AH (HMAC-MD5-96) over the advert.
    Ah,
}

/// An `authentication` block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Authentication {
    /// PASS or AH.
    pub auth_type: Option<AuthType>,
    /// Only the first 8 characters are used (as keepalived does).
    pub auth_pass: Option<String>,
}

/// Notify scripts shared by instances and sync groups.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NotifyScripts {
    /// `notify`: called on every state change with the new state.
    pub notify: Option<Script>,
    /// `notify_master`: called on becoming master.
    pub notify_master: Option<Script>,
    /// `notify_backup`: called on becoming backup.
    pub notify_backup: Option<Script>,
    /// `notify_fault`: called on entering FAULT.
    pub notify_fault: Option<Script>,
    /// `notify_stop`: called when the daemon stops the instance.
    pub notify_stop: Option<Script>,
    /// `notify_deleted`: called when a reload removes the instance.
    pub notify_deleted: Option<Script>,
    /// `notify_deleted` was given (with or without a script): a deleted instance notifies
    /// DELETED instead of FAULT.
    pub notify_deleted_set: bool,
    /// `notify_master_rx_lower_pri`: called when the master hears a lower-priority advert.
    pub notify_master_rx_lower_pri: Option<Script>,
}

impl NotifyScripts {
    /// Every script given, for checks that apply to all (security, existence).
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
    /// The tracked object's name.
    pub name: String,
    /// Priority change this object makes (as its block's weight); none: its failure means FAULT.
    pub weight: Option<i32>,
    /// `reverse`: the weight applies while it is up.
    pub reverse: bool,
    /// Where it is written, for diagnostics.
    pub span: Span,
}

/// `use_ipvlan`: an L2 ipvlan on the instance's interface carries the VIPs and adverts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UseIpvlan {
    /// The ipvlan interface's name (default: generated).
    pub name: Option<String>,
    /// The ipvlan's own address (required for IPv4: the adverts' source).
    pub address: Option<super::IpPrefix>,
    /// bridge (default), private or vepa.
    pub mode: Option<String>,
}

/// A `unicast_peer` entry: adverts go to it instead of the multicast group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnicastPeer {
    /// The peer's address.
    pub address: IpAddr,
    /// `min_ttl`: adverts from it with a lower TTL are dropped.
    pub min_ttl: Option<u8>,
    /// `max_ttl`: adverts from it with a higher TTL are dropped.
    pub max_ttl: Option<u8>,
}

/// A `vrrp_instance` block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VrrpInstance {
    /// The instance's name.
    pub name: String,
    /// Where the block starts, for diagnostics.
    pub span: Span,
    /// Initial state (default BACKUP; MASTER only when written).
    pub state: VrrpState,
    /// Whether `state` was written.
    pub state_configured: bool,
    /// The interface adverts are sent on.
    pub interface: Option<String>,
    /// Where `interface` was written (for "doesn't exist" reports).
    pub interface_span: Option<Span>,
    /// DPVS: the DPDK device behind the `.kni` interface.
    pub dpdk_interface: Option<String>,
    /// VRID shared by the instance's peers (1-255).
    pub virtual_router_id: Option<u8>,
    /// 1..255; default 100, or 255 for `state MASTER` without priority.
    pub priority: u8,
    /// Whether `priority` was written.
    pub priority_configured: bool,
    /// Seconds (default 1).
    pub advert_int: f64,
    /// 2 or 3; from global vrrp_version, 3 for IPv6 instances.
    pub version: u8,
    /// Whether a higher priority takes over from a lower master (`nopreempt` clears it).
    pub preempt: bool,
    /// Seconds.
    pub preempt_delay: Option<f64>,
    /// `accept` / `no_accept`; unset: accept unless strict mode (keepalived's default).
    pub accept: Option<bool>,
    /// `use_vmac [NAME]`: adverts and VIPs on a macvlan with the VRRP MAC.
    pub use_vmac: Option<String>,
    /// `vmac_xmit_base`: adverts sent from the base interface, not the VMAC.
    pub vmac_xmit_base: bool,
    /// `use_ipvlan [NAME] [IP[/LEN]] [bridge|private|vepa]`.
    pub use_ipvlan: Option<UseIpvlan>,
    /// `native_ipv6`: an IPv6 instance keeps IPv6 behaviour on its interface.
    pub native_ipv6: bool,
    /// `dont_track_primary`: the interface going down does not mean FAULT.
    pub dont_track_primary: bool,
    /// Source address of multicast adverts.
    pub mcast_src_ip: Option<IpAddr>,
    /// Source address of unicast adverts.
    pub unicast_src_ip: Option<IpAddr>,
    /// `unicast_peer` block: adverts go to these instead of the group.
    pub unicast_peers: Vec<UnicastPeer>,
    /// `unicast_ttl` of the adverts sent.
    pub unicast_ttl: Option<u8>,
    /// `unicast_fault_no_peer`: FAULT while there is no unicast peer.
    pub unicast_fault_no_peer: bool,
    /// `check_unicast_src`: adverts only from listed peers are accepted.
    pub check_unicast_src: bool,
    /// `virtual_ipaddress`: the addresses the master holds.
    pub virtual_ipaddresses: Vec<IpAddressEntry>,
    /// `virtual_ipaddress_excluded`: held by the master, not in adverts.
    pub virtual_ipaddresses_excluded: Vec<IpAddressEntry>,
    /// `virtual_routes` the master installs.
    pub virtual_routes: Vec<RouteEntry>,
    /// `virtual_rules` the master installs.
    pub virtual_rules: Vec<RuleEntry>,
    /// `track_interface`: interfaces whose state changes priority or means FAULT.
    pub track_interfaces: Vec<TrackRef>,
    /// `track_script`: `vrrp_script`s followed.
    pub track_scripts: Vec<TrackRef>,
    /// `track_file`: `vrrp_track_file`s followed.
    pub track_files: Vec<TrackRef>,
    /// `track_process`: `vrrp_track_process`es followed.
    pub track_processes: Vec<TrackRef>,
    /// `track_bfd`: `bfd_instance`s followed.
    pub track_bfds: Vec<TrackRef>,
    /// Advert authentication (VRRPv2 only).
    pub authentication: Option<Authentication>,
    /// Scripts called on state changes.
    pub notify: NotifyScripts,
    /// `smtp_alert`: mail on state changes (default: the global setting).
    pub smtp_alert: Option<bool>,
    /// `strict_mode` (default: the global `vrrp_strict`).
    pub strict_mode: Option<bool>,
    /// `skip_check_adv_addr`: adverts with other address lists are accepted.
    pub skip_check_adv_addr: bool,
    /// `garp_master_delay`: seconds before the second round of gratuitous ARPs.
    pub garp_master_delay: Option<u32>,
    /// `garp_master_repeat`: gratuitous ARPs per round on becoming master.
    pub garp_master_repeat: Option<u32>,
    /// `garp_master_refresh`: seconds between refresh rounds while master.
    pub garp_master_refresh: Option<u32>,
    /// `garp_master_refresh_repeat`: gratuitous ARPs per refresh.
    pub garp_master_refresh_repeat: Option<u32>,
    /// `garp_lower_prio_delay`: seconds before the ARPs answering a lower-priority advert.
    pub garp_lower_prio_delay: Option<u32>,
    /// `garp_lower_prio_repeat`: gratuitous ARPs answering a lower-priority advert.
    pub garp_lower_prio_repeat: Option<u32>,
    /// Default 3.
    pub down_timer_adverts: u32,
    /// `lower_prio_no_advert`: a master does not answer a lower-priority advert.
    pub lower_prio_no_advert: Option<bool>,
    /// `higher_prio_send_advert`: a master yielding sends one advert first.
    pub higher_prio_send_advert: Option<bool>,
    /// `lvs_sync_daemon_interface` (deprecated; the global one is used).
    pub lvs_sync_daemon_interface: Option<String>,
    /// `debug` level.
    pub debug: Option<u8>,
    /// Keywords kept but not interpreted.
    pub extra: Vec<RawOption>,
}

impl VrrpInstance {
    /// An instance with keepalived's defaults (BACKUP, priority 100, advert_int 1, VRRPv2, preempt).
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

    /// Whether the instance runs VRRP over IPv6 (its first VIP is IPv6).
    pub fn is_ipv6(&self) -> bool {
        self.virtual_ipaddresses
            .first()
            .is_some_and(|a| a.address.addr.is_ipv6())
    }
}

/// A `vrrp_sync_group`: instances that change state together.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncGroup {
    /// The group's name.
    pub name: String,
    /// Where the block starts, for diagnostics.
    pub span: Span,
    /// Names of the member instances.
    pub group: Vec<String>,
    /// Interfaces whose failure puts the whole group in FAULT.
    pub track_interfaces: Vec<TrackRef>,
    /// Scripts whose failure puts the whole group in FAULT.
    pub track_scripts: Vec<TrackRef>,
    /// Files followed by the whole group.
    pub track_files: Vec<TrackRef>,
    /// Processes followed by the whole group.
    pub track_processes: Vec<TrackRef>,
    /// BFD sessions followed by the whole group.
    pub track_bfds: Vec<TrackRef>,
    /// Scripts called on the group's state changes.
    pub notify: NotifyScripts,
    /// `smtp_alert` for the group.
    pub smtp_alert: Option<bool>,
    /// `global_tracking` (deprecated): members share their tracking.
    pub global_tracking: bool,
    /// `sync_group_tracking_weight`: members' tracking weights apply to the group.
    pub sync_group_tracking_weight: bool,
    /// Keywords kept but not interpreted.
    pub extra: Vec<RawOption>,
}

/// A `vrrp_script`: a command run periodically whose exit status is tracked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VrrpScript {
    /// The name `track_script` refers to.
    pub name: String,
    /// Where the block starts, for diagnostics.
    pub span: Span,
    /// The command (`script`).
    pub script: Option<Script>,
    /// Seconds (default 1).
    pub interval: f64,
    /// Seconds (default: interval).
    pub timeout: Option<f64>,
    /// Priority change: added while succeeding when positive, while failing when negative; 0: failing means FAULT.
    pub weight: i32,
    /// `weight … reverse`: the weight applies while succeeding.
    pub weight_reverse: bool,
    /// Default 1.
    pub rise: u32,
    /// Default 1.
    pub fall: u32,
    /// `user` the script runs as.
    pub user: Option<String>,
    /// Group the script runs as.
    pub group: Option<String>,
    /// `init_fail`: the script counts as failing until it first succeeds.
    pub init_fail: bool,
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

/// A `vrrp_track_process` block: a process whose presence is tracked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackProcess {
    /// The name `track_process` refers to.
    pub name: String,
    /// Where the block starts, for diagnostics.
    pub span: Span,
    /// The process name (`/proc/PID/comm`), or the program of the command line.
    pub process: Option<String>,
    /// Parameters to match (their presence means the command line is matched).
    pub params: Vec<String>,
    /// How the parameters are compared, when `param_match` is given.
    pub param_match: Option<ParamMatch>,
    /// Match `/proc/PID/cmdline` instead of the process name.
    pub full_command: bool,
    /// Default 0: FAULT while the quorum is not met.
    pub weight: i32,
    /// `weight … reverse`: the weight applies while the quorum is met.
    pub weight_reverse: bool,
    /// Default 1.
    pub quorum: u32,
    /// Default unlimited.
    pub quorum_max: Option<u32>,
    /// Seconds a gained quorum must hold before it counts (`fork_delay`, `delay`).
    pub fork_delay: Option<f64>,
    /// Seconds a lost quorum must stay lost (`terminate_delay`, `delay`).
    pub terminate_delay: Option<f64>,
    /// Keywords kept but not interpreted.
    pub extra: Vec<RawOption>,
}

/// A `vrrp_track_file` block: a file whose number is tracked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackFile {
    /// The name `track_file` refers to.
    pub name: String,
    /// Where the block starts, for diagnostics.
    pub span: Span,
    /// The file's path.
    pub file: Option<String>,
    /// Multiplier of the file's number (0: non-zero means FAULT).
    pub weight: i32,
    /// `weight … reverse`: the multiplier is negated.
    pub weight_reverse: bool,
    /// `init_file [VALUE] [overwrite]`: create the file at start.
    pub init_file: Option<Vec<String>>,
}

/// A `garp_group` block: gratuitous ARP/NA pacing per interface.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GarpGroup {
    /// Where the block starts, for diagnostics.
    pub span: Span,
    /// Seconds between gratuitous ARPs on these interfaces.
    pub garp_interval: Option<f64>,
    /// Seconds between unsolicited neighbour advertisements.
    pub gna_interval: Option<f64>,
    /// The interfaces it applies to.
    pub interfaces: Vec<String>,
}

/// A `track_group` block: the instances an interface or script may affect.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackGroup {
    /// The group's name.
    pub name: String,
    /// Where the block starts, for diagnostics.
    pub span: Span,
    /// Names of the instances.
    pub group: Vec<String>,
}

/// `interface_up_down_delays` entry: how long an interface change waits before it counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpDownDelay {
    /// The interface.
    pub interface: String,
    /// Seconds a down must last.
    pub down: f64,
    /// Seconds an up must last.
    pub up: f64,
    /// Where it is written, for diagnostics.
    pub span: Span,
}

/// A `bfd_instance` block: one BFD session to a neighbour.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BfdInstance {
    /// The name `track_bfd` / `BFD_CHECK` refer to.
    pub name: String,
    /// Where the block starts, for diagnostics.
    pub span: Span,
    /// Local address of the session.
    pub source_ip: Option<IpAddr>,
    /// The neighbour's address.
    pub neighbor_ip: Option<IpAddr>,
    /// Milliseconds (default 10).
    pub min_rx: u32,
    /// Milliseconds (default 10).
    pub min_tx: u32,
    /// Milliseconds (default 1000).
    pub idle_tx: u32,
    /// Default 5.
    pub multiplier: u32,
    /// `passive`: wait for the neighbour to start the session.
    pub passive: bool,
    /// TTL (IPv4) / hop limit (IPv6) of the packets sent.
    pub ttl: Option<u8>,
    /// Most hops packets received may have come (multihop).
    pub max_hops: Option<u8>,
    /// Multihop session (RFC 5883, port 4784).
    pub multihop: bool,
    /// Priority change of tracking instances while the session is down.
    pub weight: Option<i32>,
    /// The session is used by VRRP instances (`track_bfd`).
    pub vrrp: bool,
    /// The session is used by checkers (`BFD_CHECK`).
    pub checker: bool,
    /// Keywords kept but not interpreted.
    pub extra: Vec<RawOption>,
}

/// Helper for dumps: an instance's VIPs as text.
pub fn vip_list(v: &VrrpInstance) -> Vec<IpPrefix> {
    v.virtual_ipaddresses.iter().map(|e| e.address).collect()
}
