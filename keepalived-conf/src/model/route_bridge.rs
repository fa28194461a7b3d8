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
    Bird,
    Frr,
    Quagga,
}

impl RoutingDaemon {
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
    Own,
    Existing,
}

/// `neighbor ADDR remote_as N [bfd on|off] [port N] [multihop TTL] [password S] [source ADDR]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BgpNeighbor {
    pub address: IpAddr,
    pub remote_as: Option<u32>,
    /// Overrides the block's `bfd` for this session.
    pub bfd: Option<bool>,
    pub port: Option<u16>,
    pub multihop: Option<u8>,
    pub password: Option<String>,
    pub source: Option<IpAddr>,
    pub span: Span,
}

/// BGP attributes of an announcement (`healthy`, `degraded`, `draining` blocks and their
/// per-VIP overrides).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AnnounceAttributes {
    pub med: Option<u32>,
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
    pub address: IpAddr,
    /// `announce off`: never announced.
    pub announce: bool,
    pub gate: VipGate,
    pub healthy: AnnounceAttributes,
    pub degraded: Option<AnnounceAttributes>,
    pub draining: Option<AnnounceAttributes>,
    pub span: Span,
}

/// `exclude ADDR PORT [TCP|UDP]` or `exclude group NAME`: a virtual server (or group) whose
/// VIPs it does not announce and whose quorum does not gate them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclude {
    Server {
        address: IpAddr,
        port: u16,
        protocol: Option<Protocol>,
        span: Span,
    },
    Group {
        name: String,
        span: Span,
    },
}

/// `interface NAME [cost N] [hello S] [dead S] [type ptp|broadcast]` of the `ospf` block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OspfInterface {
    pub name: String,
    pub cost: Option<u32>,
    pub hello: Option<u32>,
    pub dead: Option<u32>,
    pub point_to_point: bool,
    pub span: Span,
}

/// `ospf { area A; interface … }`: VIPs as stub /32 (/128) networks of the area (alibaba's
/// cluster mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OspfSettings {
    /// Dotted (`0.0.0.0`); a plain number is converted.
    pub area: Ipv4Addr,
    pub interfaces: Vec<OspfInterface>,
    pub span: Span,
}

/// The whole `route_bridge` block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteBridge {
    pub span: Span,
    /// None when the `daemon` line names no daemon we know (reported where it was parsed).
    pub daemon: Option<RoutingDaemon>,
    pub daemon_span: Option<Span>,
    pub instance: DaemonInstance,
    /// bird: the control socket; FRR/quagga: the directory of the daemons' `*.vty` sockets.
    pub control_socket: Option<String>,
    pub control_socket_span: Option<Span>,
    /// bird: the file the bridge writes its part of the configuration to (an existing bird
    /// must `include` it).
    pub config_file: Option<String>,
    pub local_as: Option<u32>,
    pub router_id: Option<Ipv4Addr>,
    pub neighbors: Vec<BgpNeighbor>,
    pub bfd: bool,
    /// Milliseconds (transmit and receive).
    pub bfd_interval: u32,
    pub bfd_multiplier: u8,
    /// BGP timers, seconds.
    pub hold_time: u16,
    pub keepalive: u16,
    pub connect_retry: u16,
    pub ospf: Option<OspfSettings>,
    /// The interface whose addresses are the announced VIPs (it lives as long as keepalived).
    pub device: Option<String>,
    pub rise: u32,
    pub fall: u32,
    /// Seconds between evaluations counted by rise/fall.
    pub interval: f64,
    /// Seconds after a withdrawal before the VIP may be announced again.
    pub debounce: f64,
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
    pub healthy: AnnounceAttributes,
    pub degraded: Option<AnnounceAttributes>,
    pub draining: Option<AnnounceAttributes>,
    pub vips: Vec<VipSettings>,
    pub excludes: Vec<Exclude>,
}

impl RouteBridge {
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

    pub fn vip(&self, addr: IpAddr) -> Option<&VipSettings> {
        self.vips.iter().find(|v| v.address == addr)
    }
}
