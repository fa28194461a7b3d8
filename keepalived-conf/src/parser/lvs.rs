//! `virtual_server_group`, `virtual_server`, `real_server`, and the
//! resolution of inherited checker settings.

use super::Parser;
use super::values::{TIMER_MAXIMUM_SECS, inet_aton, parse_ip, parse_range};
use crate::diag::DiagKind;
use crate::lexer::Line;
use crate::model::{
    CheckerKind, ForwardingMethod, KeepalivedConfig, LvsMethod, Persistence, Protocol, RealServer,
    SnatMatch, SorryServer, TunnelType, VirtualServer, VirtualServerAddress, VirtualServerGroup,
    VsgEntry,
};

/// Scheduler flags written as their own keyword.
const SCHED_FLAGS: &[&str] = &[
    "hashed",
    "flag-1",
    "flag-2",
    "flag-3",
    "sh-port",
    "sh-fallback",
    "mh-port",
    "mh-fallback",
];

const LVS_MAX_TIMEOUT: u32 = 86400 * 31;

/// The schedulers keepalived accepts for lb_algo / lvs_sched: IPVS's, plus DPVS's conhash.
const IPVS_SCHEDULERS: [&str; 14] = [
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
    "conhash",
];

impl<'a> Parser<'a> {
    pub(crate) fn virtual_server_group(&mut self, l: &'a Line) {
        let Some(name) = self.read_string(l, 1) else {
            self.skip_block();
            return;
        };
        let mut g = VirtualServerGroup {
            name,
            entries: Vec::new(),
            span: l.span.clone(),
        };
        for it in self.value_block_after(l, 2) {
            if it.first() == "fwmark" {
                if let Some(mark) = self.read_u32(it, 1, 1, u32::MAX) {
                    g.entries.push(VsgEntry::Fwmark {
                        mark,
                        family: it.word(2).map(str::to_string),
                        span: it.span.clone(),
                    });
                }
                continue;
            }
            let Some((first, last)) = parse_range(it.first()) else {
                self.warn(
                    DiagKind::InvalidValue,
                    it,
                    format!("VS group {} - invalid address {}", g.name, it.first()),
                );
                continue;
            };
            let port = if it.len() > 1 {
                self.read_port(it, 1)
            } else {
                Some(0)
            };
            if let Some(port) = port {
                g.entries.push(VsgEntry::Range {
                    first,
                    last,
                    port,
                    span: it.span.clone(),
                });
            }
        }
        self.config.virtual_server_groups.push(g);
    }

    pub(crate) fn virtual_server(&mut self, l: &'a Line) {
        let Some(first) = self.arg(l, 1) else {
            self.skip_block();
            return;
        };
        let address = match first {
            "group" | "match" => match self.read_string(l, 2) {
                Some(name) if first == "group" => VirtualServerAddress::Group { name },
                Some(name) => VirtualServerAddress::Match { name },
                None => {
                    self.skip_block();
                    return;
                }
            },
            "fwmark" => match self.read_u32(l, 2, 1, u32::MAX) {
                Some(mark) => VirtualServerAddress::Fwmark { mark },
                None => {
                    self.skip_block();
                    return;
                }
            },
            ip => {
                let Some(addr) = parse_ip(ip) else {
                    self.warn(
                        DiagKind::InvalidValue,
                        l,
                        format!("Invalid virtual server IP address {ip} - skipping"),
                    );
                    self.skip_block();
                    return;
                };
                let port = if l.len() > 2 {
                    self.read_port(l, 2)
                } else {
                    Some(0)
                };
                let Some(port) = port else {
                    self.skip_block();
                    return;
                };
                VirtualServerAddress::Ip { addr, port }
            }
        };
        let mut vs = VirtualServer::new(address, l.span.clone());
        // (scheduler set, forwarding method set)
        let mut flags = (false, false);
        self.sub_block(&mut |p: &mut Parser<'a>, l: &'a Line| p.vs_keyword(&mut vs, &mut flags, l));
        self.vs_fixups(&mut vs, flags);
        if matches!(vs.address, VirtualServerAddress::Match { .. }) && vs.snat_match.is_none() {
            vs.snat_match = Some(SnatMatch::default());
        }
        self.config.virtual_servers.push(vs);
    }

    /// keepalived 2.2.7's end-of-block defaults, each with its warning:
    /// no protocol -> UDP, no scheduler -> wlc, no method -> NAT.
    fn vs_fixups(&mut self, vs: &mut VirtualServer, (scheduler_set, method_set): (bool, bool)) {
        let is_fwmark = matches!(vs.address, VirtualServerAddress::Fwmark { .. });
        if matches!(vs.address, VirtualServerAddress::Match { .. }) {
            return;
        }
        let report = |p: &mut Self, msg: String| {
            p.diags.push(
                crate::diag::Severity::Warning,
                DiagKind::Semantic,
                None,
                msg,
                None,
            )
        };
        if !vs.protocol_configured && !is_fwmark {
            let msg = format!(
                "Virtual server {}: no protocol set - defaulting to UDP",
                vs_name(vs, "none")
            );
            report(self, msg);
            vs.protocol = Protocol::Udp;
        }
        if !scheduler_set {
            let msg = format!(
                "Virtual server {}: no scheduler set, setting default 'wlc'",
                vs_name(vs, "")
            );
            report(self, msg);
        }
        if !method_set {
            let msg = format!(
                "Virtual server {}: no forwarding method set, setting default NAT",
                vs_name(vs, "")
            );
            report(self, msg);
        }
    }

    fn vs_keyword(
        &mut self,
        vs: &mut VirtualServer,
        flags: &mut (bool, bool),
        l: &'a Line,
    ) -> bool {
        let tmax = TIMER_MAXIMUM_SECS;
        match l.first() {
            "ip_family" => {
                vs.ip_family = self.read_string(l, 1);
                if let Some(f) = vs
                    .ip_family
                    .as_deref()
                    .filter(|f| !matches!(*f, "inet" | "inet6"))
                {
                    let msg = format!("unknown address family {f}");
                    self.warn(DiagKind::InvalidValue, l, msg);
                }
            }
            "retry" => vs.retry = self.read_u32(l, 1, 1, u32::MAX),
            "delay_before_retry" => vs.delay_before_retry = self.read_timer(l, 1, 0.0, tmax),
            "warmup" => vs.warmup = self.read_timer(l, 1, 0.0, tmax),
            "connect_timeout" => vs.connect_timeout = self.read_timer(l, 1, 0.000001, 4294.967295),
            "delay_loop" => {
                if let Some(d) = self.read_timer(l, 1, 0.000001, tmax) {
                    vs.delay_loop = d;
                }
            }
            "inhibit_on_failure" => vs.inhibit_on_failure = true,
            "lb_algo" | "lvs_sched" => {
                if let Some(s) = self.read_string(l, 1) {
                    if IPVS_SCHEDULERS.contains(&s.as_str()) {
                        vs.scheduler = s;
                        flags.0 = true;
                    } else {
                        // keepalived ignores it, then warns that no scheduler is set (wlc).
                        let msg = format!("Invalid lvs_scheduler '{s}' - ignoring");
                        self.warn(DiagKind::InvalidValue, l, msg);
                    }
                }
            }
            "ops" => vs.ops = true,
            kw if SCHED_FLAGS.contains(&kw) => vs.scheduler_flags.push(kw.to_string()),
            "lb_kind" | "lvs_method" => {
                if let Some(m) = self.lvs_method(l, "virtual server") {
                    vs.lvs_method = m;
                    flags.1 = true;
                }
            }
            "persistence_engine" => {
                let e = self.read_string(l, 1);
                vs.persistence
                    .get_or_insert_with(default_persistence)
                    .engine = e;
            }
            "persistence_timeout" => {
                let t = if l.len() > 1 {
                    self.read_u32(l, 1, 1, LVS_MAX_TIMEOUT)
                } else {
                    Some(360)
                };
                if let Some(t) = t {
                    vs.persistence
                        .get_or_insert_with(default_persistence)
                        .timeout = t;
                }
            }
            "persistence_granularity" => {
                let g = self.read_string(l, 1);
                if let Some(w) = g
                    .as_deref()
                    .filter(|w| !w.contains(':') && inet_aton(w).is_none())
                {
                    let msg = format!("Invalid IPv4 persistence_granularity specified - {w}");
                    self.warn(DiagKind::InvalidValue, l, msg);
                }
                vs.persistence
                    .get_or_insert_with(default_persistence)
                    .granularity = g;
            }
            "protocol" => {
                if let Some(p) = self.arg(l, 1) {
                    let proto = match p.to_ascii_uppercase().as_str() {
                        "TCP" => Some(Protocol::Tcp),
                        "UDP" => Some(Protocol::Udp),
                        "SCTP" => Some(Protocol::Sctp),
                        "ICMP" => Some(Protocol::Icmp),
                        "ICMPV6" => Some(Protocol::Icmpv6),
                        _ => None,
                    };
                    match proto {
                        Some(pr) => {
                            vs.protocol = pr;
                            vs.protocol_configured = true;
                        }
                        None => self.warn_at(
                            DiagKind::InvalidValue,
                            l,
                            1,
                            format!("Unknown protocol {p} - ignoring"),
                        ),
                    }
                }
            }
            "ha_suspend" => vs.ha_suspend = true,
            "smtp_alert" => vs.smtp_alert = self.read_flag(l, 1),
            "virtualhost" => {
                vs.virtualhost = self
                    .word_or(l, 1, "virtual server virtualhost missing")
                    .map(str::to_string)
            }
            "snmp_name" => vs.snmp_name = self.read_string(l, 1),
            "alpha" => vs.alpha = true,
            "omega" => vs.omega = true,
            "quorum_up" => vs.quorum_up = self.script(l, 1),
            "quorum_down" => vs.quorum_down = self.script(l, 1),
            "quorum" => {
                if let Some(q) = self.read_u32(l, 1, 1, u32::MAX) {
                    vs.quorum = q;
                }
            }
            "hysteresis" => {
                if let Some(h) = self.read_u32(l, 1, 0, u32::MAX) {
                    vs.hysteresis = h;
                }
            }
            "weight" => vs.weight = self.read_i32(l, 1, 0, 65535),
            "sorry_server" => {
                if let Some(addr) = self.read_ip(l, 1) {
                    let port = if l.len() > 2 {
                        self.read_port(l, 2)
                    } else {
                        None
                    };
                    let old = vs.sorry_server.take().and_then(|s| s.lvs_method);
                    vs.sorry_server = Some(SorryServer {
                        addr,
                        port,
                        lvs_method: old,
                    });
                }
            }
            "sorry_server_inhibit" => {
                if vs.sorry_server.is_none() {
                    self.warn(
                        DiagKind::Semantic,
                        l,
                        "Ignoring sorry_server inhibit used before or without sorry_server",
                    );
                } else {
                    vs.sorry_server_inhibit = self.read_flag(l, 1).unwrap_or(true)
                }
            }
            "sorry_server_lvs_method" => {
                let m = self.lvs_method(l, "sorry server");
                if let Some(s) = vs.sorry_server.as_mut() {
                    s.lvs_method = m;
                }
            }
            "real_server" => {
                let proto = if vs.protocol_configured {
                    format!("{:?}", vs.protocol).to_ascii_lowercase()
                } else {
                    "none".to_string()
                };
                if let Some(rs) = self.real_server(l, &proto) {
                    // The family is the virtual server's address's, else its ip_family's,
                    // else its first real server's; others are dropped at their '}'.
                    let family = match &vs.address {
                        VirtualServerAddress::Ip { addr, .. } => Some(addr.is_ipv4()),
                        _ => match vs.ip_family.as_deref() {
                            Some("inet") => Some(true),
                            Some("inet6") => Some(false),
                            _ => vs.real_servers.first().map(|r| r.addr.is_ipv4()),
                        },
                    };
                    if family.is_some_and(|v4| v4 != rs.addr.is_ipv4()) {
                        let msg = format!(
                            "Address family of virtual server and real server {} don't match - skipping real server.",
                            rs.addr
                        );
                        let end = self.last_line.unwrap_or(l);
                        self.warn(DiagKind::Semantic, end, msg);
                    } else {
                        vs.real_servers.push(rs);
                    }
                }
            }
            // Alibaba / DPVS additions.
            "laddr_group_name" => vs.laddr_group_name = self.read_string(l, 1),
            "daddr_group_name" => vs.daddr_group_name = self.read_string(l, 1),
            "waddr_group_name" => vs.waddr_group_name = self.read_string(l, 1),
            "syn_proxy" => vs.syn_proxy = true,
            "est_timeout" | "establish_timeout" => {
                vs.est_timeout = self.read_u32(l, 1, 1, LVS_MAX_TIMEOUT)
            }
            "vip_bind_dev" => vs.vip_bind_dev = self.read_string(l, 1),
            "expire_quiescent_conn" => vs.expire_quiescent_conn = true,
            "quic" => vs.quic = true,
            "proxy_protocol" => vs.proxy_protocol = self.read_string(l, 1),
            "bps" => vs.bps = self.read_unsigned(l, 1, 0, u64::from(u32::MAX)),
            "limit_proportion" => vs.limit_proportion = self.read_u32(l, 1, 0, 100),
            "hash_target" => vs.hash_target = self.read_string(l, 1),
            "src-range" | "dst-range" | "iif" | "oif" => {
                let v = self.read_string(l, 1);
                let m = vs.snat_match.get_or_insert_with(SnatMatch::default);
                match l.first() {
                    "src-range" => m.src_range = v,
                    "dst-range" => m.dst_range = v,
                    "iif" => m.iif = v,
                    _ => m.oif = v,
                }
            }
            "nat_mask" => {
                // keepalived 1.x LVS-NAT netmask: unknown to 2.2 (same
                // warning), kept verbatim.
                self.unknown(l);
                let o = self.raw_option(l, false);
                vs.extra.push(o);
            }
            _ => return false,
        }
        true
    }

    /// `NAT|DR|TUN|FNAT|SNAT [type ipip|gue port N|gre] [nocsum|csum|remcsum]`.
    pub(crate) fn lvs_method(&mut self, l: &'a Line, what: &str) -> Option<LvsMethod> {
        let kind = self.arg(l, 1)?;
        let method = match kind {
            "NAT" => ForwardingMethod::Nat,
            "DR" => ForwardingMethod::Dr,
            "TUN" => ForwardingMethod::Tun,
            "FNAT" => ForwardingMethod::Fnat,
            "SNAT" => ForwardingMethod::Snat,
            other => {
                self.warn_at(
                    DiagKind::InvalidValue,
                    l,
                    1,
                    format!("PARSER : unknown [{other}] routing method for {what}."),
                );
                return None;
            }
        };
        let mut m = LvsMethod {
            method,
            tunnel_type: None,
            tunnel_port: None,
            tunnel_checksum: None,
        };
        let mut i = 2;
        while i < l.len() {
            match l.word(i).unwrap_or("") {
                "type" => {
                    m.tunnel_type = match l.word(i + 1) {
                        Some("ipip") => Some(TunnelType::Ipip),
                        Some("gue") => Some(TunnelType::Gue),
                        Some("gre") => Some(TunnelType::Gre),
                        _ => {
                            self.warn_at(
                                DiagKind::InvalidValue,
                                l,
                                i + 1,
                                format!("Unknown tunnel type {}", l.word(i + 1).unwrap_or("")),
                            );
                            None
                        }
                    };
                    i += 2;
                }
                "port" => {
                    m.tunnel_port = self.read_port(l, i + 1);
                    i += 2;
                }
                c @ ("nocsum" | "csum" | "remcsum") => {
                    m.tunnel_checksum = Some(c.to_string());
                    i += 1;
                }
                other => {
                    self.warn_at(
                        DiagKind::InvalidValue,
                        l,
                        i,
                        format!("Unknown {} option {other}", l.first()),
                    );
                    i += 1;
                }
            }
        }
        Some(m)
    }

    fn real_server(&mut self, l: &'a Line, proto: &str) -> Option<RealServer> {
        let ip = self.arg(l, 1)?;
        let addr = parse_ip(ip);
        if addr.is_none() {
            self.warn(
                DiagKind::InvalidValue,
                l,
                format!("Invalid real server ip address/port {ip} - skipping"),
            );
        }
        let port: Result<Option<u16>, ()> = if l.len() > 2 {
            self.read_port(l, 2).map(Some).ok_or(())
        } else {
            Ok(None)
        };
        // keepalived skips the block of an invalid real server by counting braces, but when
        // its '{' is missing the lines that follow are read as the real server's keywords.
        let valid = addr.is_some() && port.is_ok();
        if !valid && self.peek_line().map(Line::first) == Some("{") {
            self.skip_block();
            return None;
        }
        let port = port.unwrap_or(None);
        let addr = addr.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let mut rs = RealServer {
            addr,
            port,
            effective_port: port.unwrap_or(0),
            span: l.span.clone(),
            weight: 1,
            lvs_method: None,
            inhibit_on_failure: None,
            notify_up: None,
            notify_down: None,
            uthreshold: None,
            lthreshold: None,
            alpha: None,
            retry: None,
            delay_before_retry: None,
            warmup: None,
            connect_timeout: None,
            delay_loop: None,
            virtualhost: None,
            smtp_alert: None,
            checkers: Vec::new(),
            extra: Vec::new(),
        };
        let tmax = TIMER_MAXIMUM_SECS;
        self.sub_block(&mut |p: &mut Parser<'a>, l: &'a Line| {
            match l.first() {
                // IPVS takes any int weight (ipvsadm's own limit is 65535).
                "weight" => match p.read_unsigned(l, 1, 0, i32::MAX as u64) {
                    Some(w) => rs.weight = w as i32,
                    None if l.len() > 1 => {
                        let msg = format!(
                            "Real server weight {} is outside range 0-{}",
                            l.word(1).unwrap_or(""),
                            i32::MAX
                        );
                        p.warn(DiagKind::InvalidValue, l, msg);
                    }
                    None => {}
                },
                "lvs_method" => rs.lvs_method = p.lvs_method(l, "real server"),
                "inhibit_on_failure" => rs.inhibit_on_failure = p.read_flag(l, 1),
                "notify_up" => rs.notify_up = p.script(l, 1),
                "notify_down" => rs.notify_down = p.script(l, 1),
                "uthreshold" => rs.uthreshold = p.read_u32(l, 1, 0, u32::MAX),
                "lthreshold" => rs.lthreshold = p.read_u32(l, 1, 0, u32::MAX),
                "alpha" => rs.alpha = p.read_flag(l, 1),
                "retry" => rs.retry = p.read_u32(l, 1, 1, u32::MAX),
                "delay_before_retry" => rs.delay_before_retry = p.read_timer(l, 1, 0.0, tmax),
                "warmup" => rs.warmup = p.read_timer(l, 1, 0.0, tmax),
                "connect_timeout" => {
                    rs.connect_timeout = p.read_timer(l, 1, 0.000001, 4294.967295)
                }
                "delay_loop" => rs.delay_loop = p.read_timer(l, 1, 0.000001, tmax),
                "virtualhost" => {
                    rs.virtualhost = p
                        .word_or(l, 1, "real server virtualhost missing")
                        .map(str::to_string)
                }
                "smtp_alert" => rs.smtp_alert = p.read_flag(l, 1),
                "snmp_name" => {
                    let o = p.raw_option(l, false);
                    rs.extra.push(o);
                }
                kw => match p.checker(kw, l) {
                    Some(mut c) => {
                        if matches!(&c.kind, CheckerKind::BfdCheck(b) if b.name.is_none()) {
                            let msg = format!(
                                "([{}]:{proto}:{}) No name has been specified for BFD_CHECKER - skipping",
                                rs.addr,
                                rs.port.unwrap_or(0)
                            );
                            let span = p.last_line.map(|l| l.span.clone());
                            p.diags.push(
                                crate::diag::Severity::Warning,
                                DiagKind::Semantic,
                                span.as_ref(),
                                msg,
                                None,
                            );
                        } else if let Some(msg) = super::checkers::incomplete(&c) {
                            // Dropped, at the line of the checker's '}'.
                            let end = p.last_line.unwrap_or(l);
                            p.warn(DiagKind::Semantic, end, msg);
                        } else {
                            if let CheckerKind::Misc(m) = &mut c.kind {
                                m.end_span = p.last_line.map(|l| l.span.clone());
                            }
                            rs.checkers.push(c);
                        }
                    }
                    None => return false,
                },
            }
            true
        });
        valid.then_some(rs)
    }
}

/// keepalived's FMT_VS: `[IP]:proto:PORT`, `FWM N`, `[group NAME]`.
pub(crate) fn vs_name(vs: &VirtualServer, proto_override: &str) -> String {
    let proto = if proto_override.is_empty() {
        format!("{:?}", vs.protocol).to_ascii_lowercase()
    } else {
        proto_override.to_string()
    };
    match &vs.address {
        VirtualServerAddress::Ip { addr, port } => format!("[{addr}]:{proto}:{port}"),
        VirtualServerAddress::Fwmark { mark } => format!("FWM {mark}"),
        VirtualServerAddress::Group { name } => format!("[{name}]:0"),
        VirtualServerAddress::Match { name } => format!("[match {name}]"),
    }
}

fn default_persistence() -> Persistence {
    Persistence {
        timeout: 360,
        granularity: None,
        engine: None,
    }
}

/// Applies inheritance: real server port from the service, checker
/// settings from real server, then virtual server, then checker defaults.
pub(crate) fn finalize(config: &mut KeepalivedConfig) {
    for vs in &mut config.virtual_servers {
        let vs_port = vs.port();
        for rs in &mut vs.real_servers {
            rs.effective_port = rs.port.or(vs_port).unwrap_or(0);
            for c in &mut rs.checkers {
                let (retry_default, dbr_default) = match &c.kind {
                    CheckerKind::HttpGet(_) | CheckerKind::SslGet(_) => (1, 3.0),
                    CheckerKind::DnsCheck(_) => (3, -1.0),
                    CheckerKind::Misc(_) => (0, 1.0),
                    _ => (1, 1.0),
                };
                let cm = &mut c.common;
                if !cm.set.delay_loop {
                    cm.delay_loop = rs.delay_loop.unwrap_or(vs.delay_loop);
                }
                if !cm.set.connect_timeout {
                    cm.connect_timeout = rs.connect_timeout.or(vs.connect_timeout).unwrap_or(5.0);
                }
                if !cm.set.retry {
                    cm.retry = rs.retry.or(vs.retry).unwrap_or(retry_default);
                }
                if !cm.set.delay_before_retry {
                    cm.delay_before_retry = rs
                        .delay_before_retry
                        .or(vs.delay_before_retry)
                        .unwrap_or(if dbr_default < 0.0 {
                            cm.delay_loop
                        } else {
                            dbr_default
                        });
                }
                if cm.warmup.is_none() {
                    cm.warmup = rs.warmup.or(vs.warmup);
                }
                if cm.alpha.is_none() {
                    cm.alpha = rs.alpha.or(Some(vs.alpha));
                }
            }
        }
    }
}
