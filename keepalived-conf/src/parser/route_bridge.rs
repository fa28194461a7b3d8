//! xlvs extension: the `route_bridge` block (VIP announcement through bird/FRR/quagga), and
//! its checks against the rest of the configuration.

use super::Parser;
use super::values::check_true_false;
use crate::diag::{DiagKind, Diagnostics, Severity, Span};
use crate::lexer::Line;
use crate::model::{
    AnnounceAttributes, BgpNeighbor, DaemonInstance, Exclude, KeepalivedConfig, OspfInterface,
    OspfSettings, Protocol, RouteBridge, RoutingDaemon, VipGate, VipSettings, VirtualServerAddress,
    VsgEntry, address_range,
};
use std::net::{IpAddr, Ipv4Addr};

/// Linux interface names: at most 15 bytes.
const IFNAMSIZ_MAX: usize = 15;

impl<'a> Parser<'a> {
    pub(crate) fn route_bridge(&mut self, l: &'a Line) {
        if self.config.route_bridge.is_some() {
            self.warn(
                DiagKind::Semantic,
                l,
                "route_bridge: only one route_bridge block is allowed - ignoring this one",
            );
            self.skip_block();
            return;
        }
        let mut rb = RouteBridge::new(l.span.clone());
        self.sub_block(&mut |p: &mut Parser<'a>, l: &'a Line| p.route_bridge_keyword(&mut rb, l));
        self.config.route_bridge = Some(rb);
    }

    fn route_bridge_keyword(&mut self, rb: &mut RouteBridge, l: &'a Line) -> bool {
        match l.first() {
            "daemon" => {
                let Some(w) = self.arg(l, 1) else { return true };
                rb.daemon_span = Some(l.span.clone());
                rb.daemon = match w {
                    "bird" | "bird2" => Some(RoutingDaemon::Bird),
                    "frr" => Some(RoutingDaemon::Frr),
                    "quagga" => Some(RoutingDaemon::Quagga),
                    _ => {
                        self.warn_at(
                            DiagKind::InvalidValue,
                            l,
                            1,
                            format!(
                                "route_bridge: unknown daemon '{w}' - expected bird, frr or quagga"
                            ),
                        );
                        None
                    }
                };
            }
            "instance" => {
                let Some(w) = self.arg(l, 1) else { return true };
                match w {
                    "auto" => rb.instance = DaemonInstance::Auto,
                    "own" => rb.instance = DaemonInstance::Own,
                    "existing" => rb.instance = DaemonInstance::Existing,
                    _ => self.warn_at(
                        DiagKind::InvalidValue,
                        l,
                        1,
                        format!(
                            "route_bridge: unknown instance '{w}' - expected auto, own or existing"
                        ),
                    ),
                }
            }
            "control_socket" => {
                rb.control_socket = self.read_string(l, 1);
                rb.control_socket_span = Some(l.span.clone());
            }
            "config_file" => rb.config_file = self.read_string(l, 1),
            "local_as" => {
                if let Some(v) = self.read_unsigned(l, 1, 1, u64::from(u32::MAX)) {
                    rb.local_as = Some(v as u32);
                }
            }
            "router_id" => {
                if let Some(a) = self.read_ipv4(l, 1) {
                    rb.router_id = Some(a);
                }
            }
            "neighbor" | "neighbour" => {
                if let Some(n) = self.bgp_neighbor(l) {
                    if rb.neighbors.iter().any(|o| o.address == n.address) {
                        self.warn_at(
                            DiagKind::Semantic,
                            l,
                            1,
                            format!(
                                "route_bridge: neighbor {} given twice - ignoring",
                                n.address
                            ),
                        );
                    } else {
                        rb.neighbors.push(n);
                    }
                }
            }
            "bfd" => {
                if let Some(b) = self.read_flag(l, 1) {
                    rb.bfd = b;
                }
            }
            "bfd_interval" => {
                if let Some(v) = self.read_u32(l, 1, 10, 60_000) {
                    rb.bfd_interval = v;
                }
            }
            "bfd_multiplier" => {
                if let Some(v) = self.read_u32(l, 1, 1, 255) {
                    rb.bfd_multiplier = v as u8;
                }
            }
            "hold_time" => {
                if let Some(v) = self.read_u32(l, 1, 3, 65535) {
                    rb.hold_time = v as u16;
                }
            }
            "keepalive" => {
                if let Some(v) = self.read_u32(l, 1, 1, 21845) {
                    rb.keepalive = v as u16;
                }
            }
            "connect_retry" => {
                if let Some(v) = self.read_u32(l, 1, 1, 65535) {
                    rb.connect_retry = v as u16;
                }
            }
            "ospf" => rb.ospf = self.ospf_block(l),
            "device" => {
                if let Some(name) = self.read_string(l, 1) {
                    if name.len() > IFNAMSIZ_MAX || name.contains('/') || name.contains(' ') {
                        self.warn_at(
                            DiagKind::InvalidValue,
                            l,
                            1,
                            format!(
                                "route_bridge: device name '{name}' is not a valid interface name (at most 15 characters)"
                            ),
                        );
                    } else {
                        rb.device = Some(name);
                    }
                }
            }
            "rise" => {
                if let Some(v) = self.read_u32(l, 1, 1, 1000) {
                    rb.rise = v;
                }
            }
            "fall" => {
                if let Some(v) = self.read_u32(l, 1, 1, 1000) {
                    rb.fall = v;
                }
            }
            "interval" => {
                if let Some(v) = self.read_timer(l, 1, 0.1, 3600.0) {
                    rb.interval = v;
                }
            }
            "debounce" => {
                if let Some(v) = self.read_timer(l, 1, 0.0, 3600.0) {
                    rb.debounce = v;
                }
            }
            "maintenance_file" => rb.maintenance_file = self.read_string(l, 1),
            "drain_timeout" => {
                if let Some(v) = self.read_timer(l, 1, 0.0, 86400.0) {
                    rb.drain_timeout = v;
                }
            }
            "restart_grace" => {
                if let Some(v) = self.read_timer(l, 1, 0.0, 3600.0) {
                    rb.restart_grace = v;
                }
            }
            "withdraw_delay" => {
                if let Some(v) = self.read_timer(l, 1, 0.0, 10.0) {
                    rb.withdraw_delay = v;
                }
            }
            "degraded_below" => {
                if let Some(v) = self.read_u32(l, 1, 1, 100) {
                    rb.degraded_below = Some(v);
                }
            }
            "healthy" => rb.healthy = self.attributes_block(l),
            "degraded" => rb.degraded = Some(self.attributes_block(l)),
            "draining" => rb.draining = Some(self.attributes_block(l)),
            "vip" => {
                if let Some(v) = self.vip_settings(l) {
                    if rb.vips.iter().any(|o| o.address == v.address) {
                        self.warn_at(
                            DiagKind::Semantic,
                            l,
                            1,
                            format!("route_bridge: vip {} given twice - ignoring", v.address),
                        );
                    } else {
                        rb.vips.push(v);
                    }
                }
            }
            "exclude" => {
                if let Some(e) = self.exclude(l) {
                    rb.excludes.push(e);
                }
            }
            _ => return false,
        }
        true
    }

    fn read_ipv4(&mut self, l: &'a Line, i: usize) -> Option<Ipv4Addr> {
        match self.read_ip(l, i)? {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(a) => {
                self.warn_at(
                    DiagKind::InvalidValue,
                    l,
                    i,
                    format!(
                        "route_bridge: {} must be an IPv4 address, not {a}",
                        l.first()
                    ),
                );
                None
            }
        }
    }

    /// `neighbor ADDR remote_as N [bfd on|off] [port N] [multihop TTL] [password S] [source A]`
    fn bgp_neighbor(&mut self, l: &'a Line) -> Option<BgpNeighbor> {
        let address = self.read_ip(l, 1)?;
        let mut n = BgpNeighbor {
            address,
            remote_as: None,
            bfd: None,
            port: None,
            multihop: None,
            password: None,
            source: None,
            span: l.span.clone(),
        };
        let mut i = 2;
        while let Some(opt) = l.word(i) {
            match opt {
                "remote_as" | "as" => {
                    n.remote_as = self
                        .read_unsigned(l, i + 1, 1, u64::from(u32::MAX))
                        .map(|v| v as u32);
                }
                "bfd" => {
                    let w = self.arg(l, i + 1)?;
                    n.bfd = check_true_false(w);
                    if n.bfd.is_none() {
                        self.warn_at(
                            DiagKind::InvalidValue,
                            l,
                            i + 1,
                            format!("route_bridge: neighbor bfd '{w}' - expected on or off"),
                        );
                    }
                }
                "port" => n.port = self.read_u32(l, i + 1, 1, 65535).map(|v| v as u16),
                "multihop" => n.multihop = self.read_u32(l, i + 1, 1, 255).map(|v| v as u8),
                "password" => n.password = self.read_string(l, i + 1),
                "source" => n.source = self.read_ip(l, i + 1),
                other => {
                    self.warn_at(
                        DiagKind::InvalidValue,
                        l,
                        i,
                        format!(
                            "route_bridge: unknown neighbor option '{other}' (remote_as, bfd, port, multihop, password, source)"
                        ),
                    );
                    return None;
                }
            }
            i += 2;
        }
        if n.remote_as.is_none() {
            self.warn(
                DiagKind::MissingParameter,
                l,
                format!("route_bridge: neighbor {address} has no remote_as - ignoring it"),
            );
            return None;
        }
        Some(n)
    }

    /// `healthy|degraded|draining { med N; local_pref N; community A:B …; prepend N }`
    fn attributes_block(&mut self, _l: &'a Line) -> AnnounceAttributes {
        let mut a = AnnounceAttributes::default();
        self.sub_block(&mut |p: &mut Parser<'a>, l: &'a Line| p.attribute_keyword(&mut a, l));
        a
    }

    fn attribute_keyword(&mut self, a: &mut AnnounceAttributes, l: &'a Line) -> bool {
        match l.first() {
            "med" | "metric" => {
                a.med = self
                    .read_unsigned(l, 1, 0, u64::from(u32::MAX))
                    .map(|v| v as u32)
            }
            "local_pref" => {
                a.local_pref = self
                    .read_unsigned(l, 1, 0, u64::from(u32::MAX))
                    .map(|v| v as u32)
            }
            "prepend" => a.prepend = self.read_u32(l, 1, 0, 16).unwrap_or(0) as u8,
            "community" | "communities" => {
                self.arg(l, 1);
                for (i, w) in l.args().enumerate() {
                    if valid_community(w) {
                        a.communities.push(w.to_string());
                    } else {
                        self.warn_at(
                            DiagKind::InvalidValue,
                            l,
                            i + 1,
                            format!(
                                "route_bridge: community '{w}' is not ASN:VALUE (16 bits each) or a large community A:B:C"
                            ),
                        );
                    }
                }
            }
            _ => return false,
        }
        true
    }

    /// `vip ADDR { announce on|off; ecmp; vrrp NAME; med …; degraded { … }; draining { … } }`
    fn vip_settings(&mut self, l: &'a Line) -> Option<VipSettings> {
        let Some(address) = self.read_ip(l, 1) else {
            self.skip_block();
            return None;
        };
        let mut v = VipSettings {
            address,
            announce: true,
            gate: VipGate::Auto,
            healthy: AnnounceAttributes::default(),
            degraded: None,
            draining: None,
            span: l.span.clone(),
        };
        self.sub_block(&mut |p: &mut Parser<'a>, l: &'a Line| {
            match l.first() {
                "announce" => {
                    if let Some(b) = p.read_flag(l, 1) {
                        v.announce = b;
                    }
                }
                "ecmp" => v.gate = VipGate::Ecmp,
                "vrrp" | "vrrp_instance" => {
                    if let Some(n) = p.read_string(l, 1) {
                        v.gate = VipGate::Vrrp(n);
                    }
                }
                "degraded" => v.degraded = Some(p.attributes_block(l)),
                "draining" => v.draining = Some(p.attributes_block(l)),
                _ => return p.attribute_keyword(&mut v.healthy, l),
            }
            true
        });
        Some(v)
    }

    /// `exclude ADDR PORT [TCP|UDP]` or `exclude group NAME`.
    fn exclude(&mut self, l: &'a Line) -> Option<Exclude> {
        let first = self.arg(l, 1)?;
        if first == "group" {
            let name = self.read_string(l, 2)?;
            return Some(Exclude::Group {
                name,
                span: l.span.clone(),
            });
        }
        let address = self.read_ip(l, 1)?;
        let port = self.read_port(l, 2)?;
        let protocol = match l.word(3) {
            None => None,
            Some(w) => match w.to_ascii_uppercase().as_str() {
                "TCP" => Some(Protocol::Tcp),
                "UDP" => Some(Protocol::Udp),
                "SCTP" => Some(Protocol::Sctp),
                _ => {
                    self.warn_at(
                        DiagKind::InvalidValue,
                        l,
                        3,
                        format!("route_bridge: exclude protocol '{w}' - expected TCP, UDP or SCTP"),
                    );
                    return None;
                }
            },
        };
        Some(Exclude::Server {
            address,
            port,
            protocol,
            span: l.span.clone(),
        })
    }

    /// `ospf { area A; interface NAME [cost N] [hello S] [dead S] [type ptp|broadcast] }`
    fn ospf_block(&mut self, l: &'a Line) -> Option<OspfSettings> {
        let mut o = OspfSettings {
            area: Ipv4Addr::UNSPECIFIED,
            interfaces: Vec::new(),
            span: l.span.clone(),
        };
        self.sub_block(&mut |p: &mut Parser<'a>, l: &'a Line| {
            match l.first() {
                "area" => {
                    let Some(w) = p.arg(l, 1) else { return true };
                    match parse_area(w) {
                        Some(a) => o.area = a,
                        None => p.warn_at(
                            DiagKind::InvalidValue,
                            l,
                            1,
                            format!("route_bridge: ospf area '{w}' is not a number or A.B.C.D"),
                        ),
                    }
                }
                "interface" => {
                    if let Some(i) = p.ospf_interface(l) {
                        o.interfaces.push(i);
                    }
                }
                _ => return false,
            }
            true
        });
        Some(o)
    }

    fn ospf_interface(&mut self, l: &'a Line) -> Option<OspfInterface> {
        let name = self.read_string(l, 1)?;
        let mut i = OspfInterface {
            name,
            cost: None,
            hello: None,
            dead: None,
            point_to_point: false,
            span: l.span.clone(),
        };
        let mut w = 2;
        while let Some(opt) = l.word(w) {
            match opt {
                "cost" => i.cost = self.read_u32(l, w + 1, 1, 65535),
                "hello" => i.hello = self.read_u32(l, w + 1, 1, 65535),
                "dead" => i.dead = self.read_u32(l, w + 1, 1, 65535),
                "type" => match self.arg(l, w + 1)? {
                    "ptp" | "point-to-point" | "pointopoint" => i.point_to_point = true,
                    "broadcast" => i.point_to_point = false,
                    t => {
                        self.warn_at(
                            DiagKind::InvalidValue,
                            l,
                            w + 1,
                            format!("route_bridge: ospf interface type '{t}' - expected ptp or broadcast"),
                        );
                        return None;
                    }
                },
                other => {
                    self.warn_at(
                        DiagKind::InvalidValue,
                        l,
                        w,
                        format!(
                            "route_bridge: unknown ospf interface option '{other}' (cost, hello, dead, type)"
                        ),
                    );
                    return None;
                }
            }
            w += 2;
        }
        Some(i)
    }
}

/// `A:B` with 16-bit parts, or `A:B:C` with 32-bit parts (large community).
pub fn valid_community(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    match parts.len() {
        2 => parts.iter().all(|p| p.parse::<u16>().is_ok()),
        3 => parts.iter().all(|p| p.parse::<u32>().is_ok()),
        _ => false,
    }
}

/// An OSPF area: dotted quad or a number.
fn parse_area(s: &str) -> Option<Ipv4Addr> {
    s.parse::<Ipv4Addr>()
        .ok()
        .or_else(|| s.parse::<u32>().ok().map(Ipv4Addr::from))
}

/// Every address a virtual server (or the ranges of its group) answers on, for the checks.
fn server_addresses(config: &KeepalivedConfig) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for vs in &config.virtual_servers {
        match &vs.address {
            VirtualServerAddress::Ip { addr, .. } => out.push(*addr),
            VirtualServerAddress::Group { name } => {
                if let Some(g) = config.virtual_server_group(name) {
                    for e in &g.entries {
                        if let VsgEntry::Range { first, last, .. } = e {
                            out.extend(address_range(*first, *last).unwrap_or_default());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn warn(diags: &mut Diagnostics, span: &Span, msg: String) {
    diags.push(Severity::Warning, DiagKind::Semantic, Some(span), msg, None);
}

/// Checks of the block against the rest of the configuration (after the whole file is read).
pub(crate) fn check(config: &KeepalivedConfig, diags: &mut Diagnostics) {
    let Some(rb) = &config.route_bridge else {
        return;
    };
    let vips = server_addresses(config);
    if !rb.neighbors.is_empty() && rb.local_as.is_none() {
        warn(
            diags,
            &rb.span,
            "route_bridge: neighbors are given but no local_as".to_string(),
        );
    }
    if rb.neighbors.is_empty() && rb.ospf.is_none() && rb.instance == DaemonInstance::Own {
        warn(
            diags,
            &rb.span,
            "route_bridge: an own daemon with no neighbor and no ospf announces nothing"
                .to_string(),
        );
    }
    if rb.bfd && rb.daemon == Some(RoutingDaemon::Quagga) {
        warn(
            diags,
            &rb.span,
            "route_bridge: quagga has no BFD daemon - bfd is ignored".to_string(),
        );
    }
    if vips.iter().any(IpAddr::is_ipv6)
        && !rb.neighbors.iter().any(|n| n.address.is_ipv6())
        && !rb.neighbors.is_empty()
    {
        warn(
            diags,
            &rb.span,
            "route_bridge: IPv6 VIPs are announced to IPv6 neighbors only, and none is given"
                .to_string(),
        );
    }
    for n in &rb.neighbors {
        if n.multihop.is_some() && n.bfd.unwrap_or(rb.bfd) && n.source.is_none() {
            warn(
                diags,
                &n.span,
                format!(
                    "route_bridge: neighbor {} is multihop with BFD: it needs a source address",
                    n.address
                ),
            );
        }
    }
    if let Some(o) = &rb.ospf
        && o.interfaces.is_empty()
    {
        warn(
            diags,
            &o.span,
            "route_bridge: ospf has no interface towards the routers".to_string(),
        );
    }
    for v in &rb.vips {
        if !vips.contains(&v.address) {
            warn(
                diags,
                &v.span,
                format!(
                    "route_bridge: vip {} is the address of no virtual_server",
                    v.address
                ),
            );
        }
        if let VipGate::Vrrp(name) = &v.gate
            && config.vrrp_instance(name).is_none()
        {
            warn(
                diags,
                &v.span,
                format!(
                    "route_bridge: vip {} names vrrp_instance {name}, which does not exist",
                    v.address
                ),
            );
        }
    }
    for e in &rb.excludes {
        match e {
            Exclude::Server {
                address,
                port,
                protocol,
                span,
            } => {
                let found = config.virtual_servers.iter().any(|vs| {
                    matches!(vs.address, VirtualServerAddress::Ip { addr, port: p } if addr == *address && p == *port)
                        && protocol.is_none_or(|pr| pr == vs.protocol)
                });
                if !found {
                    warn(
                        diags,
                        span,
                        format!("route_bridge: exclude {address} {port}: no such virtual_server"),
                    );
                }
            }
            Exclude::Group { name, span } => {
                if config.virtual_server_group(name).is_none() {
                    warn(
                        diags,
                        span,
                        format!("route_bridge: exclude group {name}: no such virtual_server_group"),
                    );
                }
            }
        }
    }
}
