//! keepalived.conf + the health of the reals → the IPVS state keepalived would ask for (pure).
//!
//! This mirrors keepalived's check/ipwrapper.c: a live real is in its service with its effective
//! weight; a dead one is removed, or kept with weight 0 under `inhibit_on_failure`; when a service
//! loses quorum and has a `sorry_server`, the live reals leave and the sorry server comes in.

use super::health::{HealthTable, VsKey};
use dataplane::model::{
    DestConfig, Family, Forward, LocalAddr, Protocol, Scheduler, ServiceAddr, ServiceConfig,
    Tunnel, TunnelType, sched_flag, tun_flags,
};
use keepalived_conf::model::{
    self as kc, AddressGroup, ForwardingMethod, KeepalivedConfig, LvsMethod, VirtualServer,
    VirtualServerAddress, VsgEntry,
};
use std::net::{IpAddr, Ipv4Addr};

/// One IPVS service as keepalived wants it.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredService {
    pub config: ServiceConfig,
    pub dests: Vec<DestConfig>,
    pub laddrs: Vec<LocalAddr>,
    /// DPVS `daddr_group_name` (deny) and `waddr_group_name` (allow) client addresses.
    pub deny: Vec<IpAddr>,
    pub allow: Vec<IpAddr>,
}

/// A virtual server that cannot be programmed, and why (logged, the others go on).
#[derive(Clone, Debug, PartialEq)]
pub struct Skipped {
    pub vs: String,
    pub reason: String,
}

/// The services of every virtual server, given the reals' health and each service's quorum
/// state (`quorum_up(vs)`).
pub fn services(
    config: &KeepalivedConfig,
    health: &HealthTable,
    quorum_up: &dyn Fn(&VsKey) -> bool,
) -> (Vec<DesiredService>, Vec<Skipped>) {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for vs in &config.virtual_servers {
        let key = VsKey::of(vs);
        match service_template(config, vs) {
            Ok((addrs, template, laddrs, (deny, allow))) => {
                let dests = dests(vs, &key, health, quorum_up(&key));
                for addr in addrs {
                    let mut cfg = template.clone();
                    cfg.addr = addr;
                    if let Family::V6 = addr.family() {
                        cfg.netmask = v6_netmask(vs).unwrap_or(128);
                    }
                    out.push(DesiredService {
                        config: cfg,
                        dests: dests
                            .iter()
                            .filter(|d| family_ok(&addr, d))
                            .copied()
                            .collect(),
                        laddrs: laddrs.clone(),
                        deny: deny.clone(),
                        allow: allow.clone(),
                    });
                }
            }
            Err(reason) => skipped.push(Skipped {
                vs: key.to_string(),
                reason,
            }),
        }
    }
    (out, skipped)
}

/// IPVS accepts a destination of the other family only for tunnelling.
fn family_ok(svc: &ServiceAddr, d: &DestConfig) -> bool {
    matches!(svc, ServiceAddr::Fwmark { .. })
        || Family::of(&d.addr) == svc.family()
        || d.forward == Forward::Tunnel
}

/// The destinations of one virtual server (keepalived's view of which reals are in the pool).
pub fn dests(
    vs: &VirtualServer,
    key: &VsKey,
    health: &HealthTable,
    quorum_up: bool,
) -> Vec<DestConfig> {
    let sorry_in = !quorum_up && vs.sorry_server.is_some();
    let mut out = Vec::new();
    for rs in &vs.real_servers {
        let state = health.real(key, rs);
        let inhibit = rs.inhibit_on_failure.unwrap_or(vs.inhibit_on_failure);
        let weight = if state.alive && !sorry_in {
            state.weight
        } else if !state.alive && inhibit {
            0
        } else {
            continue;
        };
        let method = rs.lvs_method.as_ref().unwrap_or(&vs.lvs_method);
        let (forward, tunnel) = forward(method);
        out.push(DestConfig {
            addr: rs.addr,
            port: rs.effective_port,
            forward,
            weight,
            u_threshold: rs.uthreshold.unwrap_or(0),
            l_threshold: rs.lthreshold.unwrap_or(0),
            tunnel,
        });
    }
    if let Some(sorry) = &vs.sorry_server {
        let weight = if sorry_in {
            1
        } else if vs.sorry_server_inhibit {
            0
        } else {
            return out;
        };
        let method = sorry.lvs_method.as_ref().unwrap_or(&vs.lvs_method);
        let (forward, tunnel) = forward(method);
        let port = sorry.port.or(vs.port()).unwrap_or(0);
        // A sorry server that is also a real: keepalived reuses the real's entry.
        if let Some(d) = out
            .iter_mut()
            .find(|d| d.addr == sorry.addr && d.port == port)
        {
            d.weight = d.weight.max(weight);
        } else {
            out.push(DestConfig {
                addr: sorry.addr,
                port,
                forward,
                weight,
                u_threshold: 0,
                l_threshold: 0,
                tunnel,
            });
        }
    }
    out
}

fn forward(m: &LvsMethod) -> (Forward, Tunnel) {
    let forward = match m.method {
        ForwardingMethod::Nat | ForwardingMethod::Snat => Forward::Masq,
        ForwardingMethod::Dr => Forward::Route,
        ForwardingMethod::Tun => Forward::Tunnel,
        ForwardingMethod::Fnat => Forward::FullNat,
    };
    let mut tunnel = Tunnel::default();
    if forward == Forward::Tunnel {
        tunnel.kind = match m.tunnel_type {
            Some(kc::TunnelType::Gue) => TunnelType::Gue,
            Some(kc::TunnelType::Gre) => TunnelType::Gre,
            _ => TunnelType::Ipip,
        };
        tunnel.port = m.tunnel_port.unwrap_or(0);
        tunnel.flags = match m.tunnel_checksum.as_deref() {
            Some("csum") => tun_flags::CSUM,
            Some("remcsum") => tun_flags::REMCSUM,
            _ => tun_flags::NOCSUM,
        };
    }
    (forward, tunnel)
}

type Template = (
    Vec<ServiceAddr>,
    ServiceConfig,
    Vec<LocalAddr>,
    (Vec<IpAddr>, Vec<IpAddr>),
);

/// The service addresses of a virtual server and the settings they share.
fn service_template(config: &KeepalivedConfig, vs: &VirtualServer) -> Result<Template, String> {
    let proto = match vs.protocol {
        kc::Protocol::Tcp => Protocol::Tcp,
        kc::Protocol::Udp => Protocol::Udp,
        kc::Protocol::Sctp => Protocol::Sctp,
        other => return Err(format!("protocol {other:?} is not supported by IPVS")),
    };
    let family = |fallback: Option<&IpAddr>| match vs.ip_family.as_deref() {
        Some("inet6") => Family::V6,
        Some(_) => Family::V4,
        None => fallback.map(Family::of).unwrap_or(Family::V4),
    };
    let first_real = vs.real_servers.first().map(|r| &r.addr);
    let addrs = match &vs.address {
        VirtualServerAddress::Ip { addr, port } => vec![ServiceAddr::Inet {
            proto,
            addr: *addr,
            port: *port,
        }],
        VirtualServerAddress::Fwmark { mark } => vec![ServiceAddr::Fwmark {
            mark: *mark,
            family: family(first_real),
        }],
        VirtualServerAddress::Group { name } => {
            let group = config
                .virtual_server_group(name)
                .ok_or_else(|| format!("virtual_server_group {name} is not defined"))?;
            let mut addrs = Vec::new();
            for entry in &group.entries {
                match entry {
                    VsgEntry::Range {
                        first, last, port, ..
                    } => {
                        for addr in address_range(*first, *last)? {
                            addrs.push(ServiceAddr::Inet {
                                proto,
                                addr,
                                port: *port,
                            });
                        }
                    }
                    VsgEntry::Fwmark {
                        mark, family: f, ..
                    } => addrs.push(ServiceAddr::Fwmark {
                        mark: *mark,
                        family: match f.as_deref() {
                            Some("inet6") => Family::V6,
                            Some(_) => Family::V4,
                            None => family(first_real),
                        },
                    }),
                }
            }
            addrs
        }
        VirtualServerAddress::Match { name } => {
            return Err(format!(
                "`virtual_server match {name}` (DPVS SNAT) has no IPVS equivalent here"
            ));
        }
    };
    let scheduler = Scheduler::from_name(&vs.scheduler)
        .ok_or_else(|| format!("scheduler `{}' not found", vs.scheduler))?;
    let placeholder = addrs.first().copied().ok_or("no service address")?;
    let mut cfg = ServiceConfig::new(placeholder);
    cfg.scheduler = scheduler;
    for f in &vs.scheduler_flags {
        let (bit, only) = sched_flag(f).ok_or_else(|| format!("invalid scheduler flag `{f}'"))?;
        if only.is_some_and(|s| s != scheduler) {
            return Err(format!("incompatible scheduler flag `{f}'"));
        }
        cfg.sched_flags |= bit;
    }
    if let Some(p) = &vs.persistence {
        cfg.persistent = Some(p.timeout);
        cfg.pe = p.engine.clone();
        if let Some(g) = p.granularity.as_deref()
            && let Ok(mask) = g.parse::<Ipv4Addr>()
        {
            let bits = u32::from(mask);
            if bits.leading_ones() + bits.trailing_zeros() != 32 {
                return Err(format!(
                    "persistence_granularity {g} is not a contiguous mask"
                ));
            }
            cfg.netmask = bits.leading_ones() as u8;
        }
    }
    cfg.one_packet = vs.ops;
    cfg.synproxy = vs.syn_proxy;
    cfg.est_timeout = vs.est_timeout;
    let laddrs = match &vs.laddr_group_name {
        None => Vec::new(),
        Some(name) => {
            let group = config
                .local_address_groups
                .iter()
                .find(|g| &g.name == name)
                .ok_or_else(|| format!("local_address_group {name} is not defined"))?;
            let mut out = Vec::new();
            for e in &group.entries {
                for addr in address_range(e.first, e.last)? {
                    out.push(LocalAddr {
                        addr,
                        ifname: e.interface.clone(),
                        conns: 0,
                        port_conflicts: 0,
                    });
                }
            }
            out
        }
    };
    let deny = client_list(&config.deny_address_groups, vs.daddr_group_name.as_deref())?;
    let allow = client_list(&config.allow_address_groups, vs.waddr_group_name.as_deref())?;
    Ok((addrs, cfg, laddrs, (deny, allow)))
}

/// Most addresses one deny/allow group may expand to (its entries are exact client addresses
/// in the data plane).
const MAX_LIST_ADDRS: usize = 4096;

/// The client addresses of a DPVS deny/allow group: single addresses, ranges, or prefixes.
fn client_list(groups: &[AddressGroup], name: Option<&str>) -> Result<Vec<IpAddr>, String> {
    let Some(name) = name else {
        return Ok(Vec::new());
    };
    let group = groups
        .iter()
        .find(|g| g.name == name)
        .ok_or_else(|| format!("address group {name} is not defined"))?;
    let mut out = Vec::new();
    for e in &group.entries {
        if let Some(set) = &e.ipset {
            return Err(format!(
                "address group {name}: ipset:{set} is not supported by xlvs"
            ));
        }
        match (e.first, e.prefix_len) {
            (IpAddr::V4(a), Some(len)) if len < 32 => {
                let size = 1usize << (32 - len);
                if out.len() + size > MAX_LIST_ADDRS {
                    return Err(format!(
                        "address group {name} is larger than {MAX_LIST_ADDRS} addresses"
                    ));
                }
                let base = u32::from(a) & (u32::MAX << (32 - len));
                out.extend((0..size as u32).map(|i| IpAddr::V4(Ipv4Addr::from(base + i))));
            }
            _ => out.extend(address_range(e.first, e.last)?),
        }
        if out.len() > MAX_LIST_ADDRS {
            return Err(format!(
                "address group {name} is larger than {MAX_LIST_ADDRS} addresses"
            ));
        }
    }
    Ok(out)
}

/// `persistence_granularity` of an IPv6 service is a prefix length.
fn v6_netmask(vs: &VirtualServer) -> Option<u8> {
    vs.persistence
        .as_ref()?
        .granularity
        .as_deref()?
        .parse::<u8>()
        .ok()
        .filter(|n| (1..=128).contains(n))
}

pub use keepalived_conf::model::address_range;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::health::RealKey;
    use keepalived_conf::{ParseOptions, parse_str};

    fn config(text: &str) -> KeepalivedConfig {
        parse_str(text, "test.conf", &ParseOptions::default()).config
    }

    const TWO_REALS: &str = r#"
virtual_server 198.18.0.10 80 {
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    persistence_timeout 60
    persistence_granularity 255.255.255.0
    sorry_server 198.18.9.9 8080
    real_server 198.18.1.1 8080 {
        weight 3
        TCP_CHECK { connect_timeout 2 }
    }
    real_server 198.18.1.2 8080 {
        weight 2
        inhibit_on_failure
        TCP_CHECK { connect_timeout 2 }
    }
}
"#;

    fn rs(i: u8) -> RealKey {
        RealKey {
            addr: IpAddr::V4(Ipv4Addr::new(198, 18, 1, i)),
            port: 8080,
        }
    }

    #[test]
    fn all_alive_gives_every_real_with_its_weight() {
        let c = config(TWO_REALS);
        let (svcs, skipped) = services(&c, &HealthTable::default(), &|_| true);
        assert!(skipped.is_empty());
        assert_eq!(svcs.len(), 1);
        let s = &svcs[0];
        assert_eq!(s.config.scheduler, Scheduler::Wrr);
        assert_eq!(s.config.persistent, Some(60));
        assert_eq!(s.config.netmask, 24);
        let w: Vec<_> = s
            .dests
            .iter()
            .map(|d| (d.addr.to_string(), d.weight))
            .collect();
        assert_eq!(w, [("198.18.1.1".into(), 3), ("198.18.1.2".into(), 2)]);
        assert!(s.dests.iter().all(|d| d.forward == Forward::Masq));
    }

    #[test]
    fn dead_real_leaves_or_is_inhibited() {
        let c = config(TWO_REALS);
        let key = VsKey::of(&c.virtual_servers[0]);
        let mut h = HealthTable::default();
        h.set(&key, rs(1), false, None);
        h.set(&key, rs(2), false, None);
        let (svcs, _) = services(&c, &h, &|_| true);
        let w: Vec<_> = svcs[0]
            .dests
            .iter()
            .map(|d| (d.addr.to_string(), d.weight))
            .collect();
        // 198.18.1.1 removed; 198.18.1.2 inhibited (weight 0); quorum still "up" per caller.
        assert_eq!(w, [("198.18.1.2".into(), 0)]);
    }

    #[test]
    fn quorum_down_swaps_in_the_sorry_server() {
        let c = config(TWO_REALS);
        let key = VsKey::of(&c.virtual_servers[0]);
        let mut h = HealthTable::default();
        h.set(&key, rs(2), false, None);
        let (svcs, _) = services(&c, &h, &|_| false);
        let w: Vec<_> = svcs[0]
            .dests
            .iter()
            .map(|d| (d.addr.to_string(), d.weight))
            .collect();
        // The live real leaves, the inhibited one stays at 0, the sorry server comes in.
        assert_eq!(w, [("198.18.1.2".into(), 0), ("198.18.9.9".into(), 1)]);
    }

    #[test]
    fn dynamic_weight_is_used() {
        let c = config(TWO_REALS);
        let key = VsKey::of(&c.virtual_servers[0]);
        let mut h = HealthTable::default();
        h.set(&key, rs(1), true, Some(7));
        let (svcs, _) = services(&c, &h, &|_| true);
        assert_eq!(svcs[0].dests[0].weight, 7);
    }

    #[test]
    fn groups_expand_ranges_and_fwmarks() {
        let c = config(
            r#"
virtual_server_group G {
    198.18.0.10-12 80
    fwmark 7
}
local_address_group L {
    198.18.5.1-3
}
virtual_server group G {
    lb_algo rr
    lb_kind FNAT
    protocol TCP
    laddr_group_name L
    real_server 198.18.1.1 80 { weight 1 }
}
"#,
        );
        let (svcs, skipped) = services(&c, &HealthTable::default(), &|_| true);
        assert!(skipped.is_empty(), "{skipped:?}");
        let names: Vec<_> = svcs.iter().map(|s| s.config.addr.to_string()).collect();
        assert_eq!(
            names,
            [
                "TCP 198.18.0.10:80",
                "TCP 198.18.0.11:80",
                "TCP 198.18.0.12:80",
                "FWM 7"
            ]
        );
        assert_eq!(svcs[0].laddrs.len(), 3);
        assert_eq!(svcs[0].dests[0].forward, Forward::FullNat);
    }

    #[test]
    fn unsupported_virtual_server_is_skipped_with_a_reason() {
        let c = config(
            "virtual_server 198.18.0.10 80 {\n lb_algo sh\n sh-port\n lb_kind DR\n protocol TCP\n}\n\
             virtual_server 198.18.0.11 80 {\n lb_algo rr\n sh-port\n lb_kind DR\n protocol TCP\n}\n",
        );
        let (svcs, skipped) = services(&c, &HealthTable::default(), &|_| true);
        assert_eq!(svcs.len(), 1);
        assert_eq!(
            svcs[0].config.sched_flags,
            dataplane::model::sched_flag("sh-port").unwrap().0
        );
        assert_eq!(skipped[0].vs, "[198.18.0.11]:tcp:80");
        assert_eq!(skipped[0].reason, "incompatible scheduler flag `sh-port'");
    }

    #[test]
    fn dpvs_deny_and_allow_groups_become_client_lists() {
        let c = config(
            r#"
deny_address_group D {
    198.18.9.0/30
    198.18.8.1-2
}
allow_address_group W {
    198.18.7.7
}
deny_address_group S {
    ipset:bad
}
virtual_server 198.18.0.10 80 {
    lb_algo rr
    lb_kind FNAT
    protocol TCP
    daddr_group_name D
    waddr_group_name W
}
virtual_server 198.18.0.11 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    daddr_group_name S
}
"#,
        );
        let (svcs, skipped) = services(&c, &HealthTable::default(), &|_| true);
        let s = |v: &[IpAddr]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert_eq!(
            s(&svcs[0].deny),
            [
                "198.18.9.0",
                "198.18.9.1",
                "198.18.9.2",
                "198.18.9.3",
                "198.18.8.1",
                "198.18.8.2"
            ]
        );
        assert_eq!(s(&svcs[0].allow), ["198.18.7.7"]);
        assert_eq!(skipped.len(), 1);
        assert_eq!(
            skipped[0].reason,
            "address group S: ipset:bad is not supported by xlvs"
        );
    }

    #[test]
    fn ranges() {
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            address_range(a("198.18.0.1"), a("198.18.0.3"))
                .unwrap()
                .len(),
            3
        );
        assert!(address_range(a("198.18.0.3"), a("198.18.0.1")).is_err());
        assert!(address_range(a("198.18.0.1"), a("198.18.1.1")).is_err());
        assert_eq!(
            address_range(a("2001:db8::1"), a("2001:db8::a"))
                .unwrap()
                .len(),
            10
        );
    }
}
