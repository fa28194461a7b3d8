//! xlvs extension: `route_bridge { … }` — the VIPs of the virtual servers announced to routers
//! through a routing daemon (bird 2, FRR, quagga), gated by health, VRRP and the data plane.
//! Defaults here are the documented ones; the `quagga-bridge` crate resolves and runs them.

use crate::diag::Span;
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr};

use super::Protocol;

/// The routing daemon that speaks to the routers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RoutingDaemon {
    /// bird 2, driven through its control socket.
    Bird,
    /// FRR, driven through vtysh.
    Frr,
    /// quagga, driven through vtysh.
    Quagga,
}

impl RoutingDaemon {
    /// The name used in `daemon` lines and messages.
    pub fn name(self) -> &'static str {
        match self {
            RoutingDaemon::Bird => "bird",
            RoutingDaemon::Frr => "frr",
            RoutingDaemon::Quagga => "quagga",
        }
    }
}

/// Whether the bridge starts its own daemon or drives one that runs already.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DaemonInstance {
    /// Drive the daemon behind the control socket when one answers in this network
    /// namespace; otherwise start and supervise an own one.
    #[default]
    Auto,
    /// Always start and supervise an own daemon.
    Own,
    /// Always drive the daemon behind the control socket.
    Existing,
}

/// `neighbor ADDR remote_as N [bfd on|off] [port N] [multihop TTL] [password S] [source ADDR]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BgpNeighbor {
    /// The peer's address.
    pub address: IpAddr,
    /// The peer's AS (required).
    pub remote_as: Option<u32>,
    /// Overrides the block's `bfd` for this session.
    pub bfd: Option<bool>,
    /// TCP port of the session (default 179).
    pub port: Option<u16>,
    /// eBGP multihop TTL.
    pub multihop: Option<u8>,
    /// TCP MD5 password.
    pub password: Option<String>,
    /// Local address of the session.
    pub source: Option<IpAddr>,
    /// Where it is written, for diagnostics.
    pub span: Span,
}

/// BGP attributes of an announcement (`healthy`, `degraded`, `draining` blocks and their
/// per-VIP overrides).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AnnounceAttributes {
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// LOCAL_PREF (iBGP).
    pub local_pref: Option<u32>,
    /// `A:B` (standard) or `A:B:C` (large), checked when parsed.
    pub communities: Vec<String>,
    /// How many times the local AS is prepended.
    pub prepend: u8,
}

impl AnnounceAttributes {
    /// `self` with the values `over` sets.
    pub fn overridden_by(&self, over: &AnnounceAttributes) -> AnnounceAttributes {
        AnnounceAttributes {
            med: over.med.or(self.med),
            local_pref: over.local_pref.or(self.local_pref),
            communities: if over.communities.is_empty() {
                self.communities.clone()
            } else {
                over.communities.clone()
            },
            prepend: if over.prepend > 0 {
                over.prepend
            } else {
                self.prepend
            },
        }
    }
}

/// Which VRRP state gates a VIP.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VipGate {
    /// The vrrp_instance whose virtual_ipaddress holds the VIP, if any (announced only while
    /// MASTER); active-active ECMP when none does.
    #[default]
    Auto,
    /// Active-active: announced whatever VRRP says.
    Ecmp,
    /// Announced only while this node is MASTER of the named instance.
    Vrrp(String),
}

/// `vip ADDR { … }`: settings of one VIP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VipSettings {
    /// The VIP.
    pub address: IpAddr,
    /// `announce off`: never announced.
    pub announce: bool,
    /// Which VRRP state allows announcing it.
    pub gate: VipGate,
    /// Attributes while every virtual server of it is healthy.
    pub healthy: AnnounceAttributes,
    /// Attributes while degraded (default: the block's).
    pub degraded: Option<AnnounceAttributes>,
    /// Attributes while draining (default: the block's).
    pub draining: Option<AnnounceAttributes>,
    /// Where the block starts, for diagnostics.
    pub span: Span,
}

/// `exclude ADDR PORT [TCP|UDP]` or `exclude group NAME`: a virtual server (or group) whose
/// VIPs it does not announce and whose quorum does not gate them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclude {
    /// One virtual server.
    Server {
        /// Its VIP.
        address: IpAddr,
        /// Its port.
        port: u16,
        /// Its protocol (default: any).
        protocol: Option<Protocol>,
        /// Where it is written, for diagnostics.
        span: Span,
    },
    /// Every virtual server of a `virtual_server_group`.
    Group {
        /// The group's name.
        name: String,
        /// Where it is written, for diagnostics.
        span: Span,
    },
}

/// `interface NAME [cost N] [hello S] [dead S] [type ptp|broadcast]` of the `ospf` block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OspfInterface {
    /// The interface.
    pub name: String,
    /// OSPF cost.
    pub cost: Option<u32>,
    /// Hello interval, seconds.
    pub hello: Option<u32>,
    /// Dead interval, seconds.
    pub dead: Option<u32>,
    /// `type ptp`: a point-to-point network.
    pub point_to_point: bool,
    /// Where it is written, for diagnostics.
    pub span: Span,
}

/// `ospf { area A; interface … }`: VIPs as stub /32 (/128) networks of the area (alibaba's
/// cluster mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OspfSettings {
    /// Dotted (`0.0.0.0`); a plain number is converted.
    pub area: Ipv4Addr,
    /// Interfaces OSPF runs on.
    pub interfaces: Vec<OspfInterface>,
    /// Where the block starts, for diagnostics.
    pub span: Span,
}

/// The whole `route_bridge` block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteBridge {
    /// Where the block starts, for diagnostics.
    pub span: Span,
    /// None when the `daemon` line names no daemon we know (reported where it was parsed).
    pub daemon: Option<RoutingDaemon>,
    /// Where the `daemon` line is, for diagnostics.
    pub daemon_span: Option<Span>,
    /// Own daemon or an existing one.
    pub instance: DaemonInstance,
    /// bird: the control socket; FRR/quagga: the directory of the daemons' `*.vty` sockets.
    pub control_socket: Option<String>,
    /// Where `control_socket` is written, for diagnostics.
    pub control_socket_span: Option<Span>,
    /// bird: the file the bridge writes its part of the configuration to (an existing bird
    /// must `include` it).
    pub config_file: Option<String>,
    /// Our AS number for BGP.
    pub local_as: Option<u32>,
    /// BGP / OSPF router id.
    pub router_id: Option<Ipv4Addr>,
    /// BGP peers.
    pub neighbors: Vec<BgpNeighbor>,
    /// BFD on the BGP sessions by default.
    pub bfd: bool,
    /// Milliseconds (transmit and receive).
    pub bfd_interval: u32,
    /// Missed BFD packets before the session is down.
    pub bfd_multiplier: u8,
    /// BGP timers, seconds.
    pub hold_time: u16,
    /// BGP keepalive interval, seconds.
    pub keepalive: u16,
    /// Seconds between attempts to open a BGP session.
    pub connect_retry: u16,
    /// Announce over OSPF instead of (or beside) BGP.
    pub ospf: Option<OspfSettings>,
    /// The interface whose addresses are the announced VIPs (it lives as long as keepalived).
    pub device: Option<String>,
    /// Good evaluations in a row before a VIP is announced.
    pub rise: u32,
    /// Bad evaluations in a row before a VIP is withdrawn.
    pub fall: u32,
    /// Seconds between evaluations counted by rise/fall.
    pub interval: f64,
    /// Seconds after a withdrawal before the VIP may be announced again.
    pub debounce: f64,
    /// While this file exists, every VIP drains (maintenance).
    pub maintenance_file: Option<String>,
    /// Seconds a draining VIP stays announced with the `draining` attributes (0: until the
    /// maintenance ends).
    pub drain_timeout: f64,
    /// Seconds announcements outlive a `--dont-release-ipvs` stop, for a restart to adopt.
    pub restart_grace: f64,
    /// Seconds between withdrawing at stop and removing the virtual servers.
    pub withdraw_delay: f64,
    /// A VIP is degraded while a virtual server of it has less than this percentage of its
    /// reals' weight alive.
    pub degraded_below: Option<u32>,
    /// Attributes of healthy VIPs.
    pub healthy: AnnounceAttributes,
    /// Attributes of degraded VIPs (default: `healthy`).
    pub degraded: Option<AnnounceAttributes>,
    /// Attributes of draining VIPs (default: `healthy`).
    pub draining: Option<AnnounceAttributes>,
    /// Per-VIP settings.
    pub vips: Vec<VipSettings>,
    /// Virtual servers left out of the announcements.
    pub excludes: Vec<Exclude>,
}

impl RouteBridge {
    /// A block with the documented defaults (bird, BFD 300 ms x 3, BGP 90/30/5 s, rise/fall 1).
    pub fn new(span: Span) -> Self {
        RouteBridge {
            span,
            daemon: Some(RoutingDaemon::Bird),
            daemon_span: None,
            instance: DaemonInstance::Auto,
            control_socket: None,
            control_socket_span: None,
            config_file: None,
            local_as: None,
            router_id: None,
            neighbors: Vec::new(),
            bfd: false,
            bfd_interval: 300,
            bfd_multiplier: 3,
            hold_time: 90,
            keepalive: 30,
            connect_retry: 5,
            ospf: None,
            device: None,
            rise: 1,
            fall: 1,
            interval: 1.0,
            debounce: 0.0,
            maintenance_file: None,
            drain_timeout: 0.0,
            restart_grace: 5.0,
            withdraw_delay: 0.3,
            degraded_below: None,
            healthy: AnnounceAttributes::default(),
            degraded: None,
            draining: None,
            vips: Vec::new(),
            excludes: Vec::new(),
        }
    }

    /// The settings of this VIP, if it has a `vip` block.
    pub fn vip(&self, addr: IpAddr) -> Option<&VipSettings> {
        self.vips.iter().find(|v| v.address == addr)
    }
}
