//! Conversions between the object model (`crate::model`) and the map values of `ebpf-common`:
//! pure functions, no map access, so each round trip is unit-tested on the host.

use std::net::IpAddr;

use ebpf_common::{self as c, Dest, Service, ServiceKey, ServiceMeta};

use crate::model::*;

/// The VIPS key of a service's address.
pub(super) fn vip_key(key: &ServiceKey) -> ServiceKey {
    ServiceKey {
        addr: key.addr,
        port: 0,
        proto: 0,
        af: key.af,
    }
}

pub(super) fn laddr_key(svc_id: u32, addr: &IpAddr) -> c::LaddrKey {
    c::LaddrKey {
        addr: ip_to_words(addr),
        svc_id,
        af: Family::of(addr).raw(),
        _pad: [0; 3],
    }
}

/// The SERVICES key of a service address.
pub(super) fn service_key(addr: &ServiceAddr) -> ServiceKey {
    match addr {
        ServiceAddr::Inet { proto, addr, port } => ServiceKey {
            addr: ip_to_words(addr),
            port: port.to_be(),
            proto: proto.number(),
            af: Family::of(addr).raw(),
        },
        ServiceAddr::Fwmark { mark, family } => ServiceKey {
            addr: [*mark, 0, 0, 0],
            port: 0,
            proto: c::PROTO_FWMARK,
            af: family.raw(),
        },
    }
}

pub(super) fn service_addr(key: &ServiceKey) -> ServiceAddr {
    let family = Family::from_raw(key.af);
    match Protocol::from_number(key.proto) {
        Some(proto) => ServiceAddr::Inet {
            proto,
            addr: words_to_ip(&key.addr, family),
            port: u16::from_be(key.port),
        },
        None => ServiceAddr::Fwmark {
            mark: key.addr[0],
            family,
        },
    }
}

pub(super) fn service_value(cfg: &ServiceConfig) -> Service {
    let mut flags = cfg.sched_flags & (c::SVC_F_SCHED1 | c::SVC_F_SCHED2 | c::SVC_F_SCHED3);
    if cfg.persistent.is_some() {
        flags |= c::SVC_F_PERSISTENT;
    }
    if cfg.one_packet {
        flags |= c::SVC_F_ONEPACKET;
    }
    if cfg.synproxy {
        flags |= c::SVC_F_SYNPROXY;
    }
    let netmask = match cfg.addr.family() {
        // IPv4: the mask itself, in network order, ready for the packet path.
        Family::V4 => {
            let bits = cfg.netmask.min(32) as u32;
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            mask.to_be()
        }
        Family::V6 => cfg.netmask.min(128) as u32,
    };
    Service {
        id: 0,
        flags,
        sched: cfg.scheduler.raw(),
        persist_timeout: cfg.persistent.unwrap_or(0),
        netmask,
        table_base: 0,
        table_len: 0,
        dest_count: 0,
    }
}

pub(super) fn service_meta(cfg: &ServiceConfig) -> ServiceMeta {
    ServiceMeta {
        pe_name: name_field(cfg.pe.as_deref()),
        est_timeout: cfg.est_timeout.unwrap_or(0),
        _pad: 0,
    }
}

pub(super) fn service_config(
    key: &ServiceKey,
    svc: &Service,
    meta: Option<ServiceMeta>,
) -> ServiceConfig {
    let addr = service_addr(key);
    let netmask = match addr.family() {
        Family::V4 => u32::from_be(svc.netmask).count_ones() as u8,
        Family::V6 => svc.netmask as u8,
    };
    let pe = meta.and_then(|m| name_from_field(&m.pe_name));
    ServiceConfig {
        addr,
        scheduler: Scheduler::from_raw(svc.sched),
        persistent: (svc.flags & c::SVC_F_PERSISTENT != 0).then_some(svc.persist_timeout),
        netmask,
        pe,
        one_packet: svc.flags & c::SVC_F_ONEPACKET != 0,
        sched_flags: svc.flags & (c::SVC_F_SCHED1 | c::SVC_F_SCHED2 | c::SVC_F_SCHED3),
        synproxy: svc.flags & c::SVC_F_SYNPROXY != 0,
        est_timeout: meta.map(|m| m.est_timeout).filter(|t| *t != 0),
    }
}

pub(super) fn dest_value(svc_id: u32, d: &DestConfig) -> Dest {
    Dest {
        addr: ip_to_words(&d.addr),
        port: d.port.to_be(),
        af: Family::of(&d.addr).raw(),
        fwd: d.forward.raw(),
        svc_id,
        weight: d.weight,
        u_threshold: d.u_threshold,
        l_threshold: d.l_threshold,
        tun_type: match d.tunnel.kind {
            TunnelType::Ipip => 0,
            TunnelType::Gue => 1,
            TunnelType::Gre => 2,
        },
        tun_flags: d.tunnel.flags,
        tun_port: d.tunnel.port,
    }
}

pub(super) fn dest_config(d: &Dest) -> DestConfig {
    DestConfig {
        addr: words_to_ip(&d.addr, Family::from_raw(d.af)),
        port: u16::from_be(d.port),
        forward: Forward::from_raw(d.fwd),
        weight: d.weight,
        u_threshold: d.u_threshold,
        l_threshold: d.l_threshold,
        tunnel: Tunnel {
            kind: match d.tun_type {
                1 => TunnelType::Gue,
                2 => TunnelType::Gre,
                _ => TunnelType::Ipip,
            },
            port: d.tun_port,
            flags: d.tun_flags,
        },
    }
}

/// A NUL-padded 16-byte name field (interface, persistence engine), as the kernel stores them:
/// at most 15 bytes of the name, always NUL-terminated.
pub(super) fn name_field(name: Option<&str>) -> [u8; 16] {
    let mut field = [0u8; 16];
    if let Some(name) = name {
        let b = name.as_bytes();
        let n = b.len().min(15);
        field[..n].copy_from_slice(&b[..n]);
    }
    field
}

/// The name in a [`name_field`], `None` when empty.
pub(super) fn name_from_field(field: &[u8; 16]) -> Option<String> {
    let end = field.iter().position(|b| *b == 0).unwrap_or(16);
    (end > 0).then(|| String::from_utf8_lossy(&field[..end]).into_owned())
}

/// The LADDRS value of a new local address, `seq` its insertion order.
pub(super) fn laddr_value(l: &LocalAddr, seq: u64) -> c::Laddr {
    c::Laddr {
        ifname: name_field(l.ifname.as_deref()),
        seq,
        conns: 0,
        port_conflicts: 0,
    }
}

/// A local address as listed, with `conns` connections using it.
pub(super) fn local_addr(key: &c::LaddrKey, l: &c::Laddr, conns: u64) -> LocalAddr {
    LocalAddr {
        addr: words_to_ip(&key.addr, Family::from_raw(key.af)),
        ifname: name_from_field(&l.ifname),
        conns,
        port_conflicts: l.port_conflicts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inet(proto: Protocol, addr: &str, port: u16) -> ServiceAddr {
        ServiceAddr::Inet {
            proto,
            addr: addr.parse().unwrap(),
            port,
        }
    }

    /// What the listing gives back for a service written with `cfg`.
    fn round_trip(cfg: &ServiceConfig) -> ServiceConfig {
        let key = service_key(&cfg.addr);
        service_config(&key, &service_value(cfg), Some(service_meta(cfg)))
    }

    #[test]
    fn services_round_trip_in_every_family_and_kind() {
        let addrs = [
            inet(Protocol::Tcp, "198.18.0.1", 80),
            inet(Protocol::Udp, "2001:db8::1", 53),
            inet(Protocol::Sctp, "198.18.0.2", 0),
            ServiceAddr::Fwmark {
                mark: 7,
                family: Family::V4,
            },
            ServiceAddr::Fwmark {
                mark: u32::MAX,
                family: Family::V6,
            },
        ];
        for addr in addrs {
            let plain = ServiceConfig::new(addr);
            assert_eq!(round_trip(&plain), plain, "{addr}");
            for scheduler in Scheduler::ALL {
                let cfg = ServiceConfig {
                    scheduler,
                    persistent: Some(360),
                    netmask: 24,
                    pe: Some("sip".into()),
                    one_packet: true,
                    sched_flags: c::SVC_F_SCHED1 | c::SVC_F_SCHED3,
                    synproxy: true,
                    est_timeout: Some(90),
                    ..ServiceConfig::new(addr)
                };
                assert_eq!(round_trip(&cfg), cfg, "{addr} {scheduler:?}");
            }
        }
    }

    #[test]
    fn service_keys_are_in_network_order() {
        let key = service_key(&inet(Protocol::Tcp, "198.18.0.1", 80));
        assert_eq!(key.port, 80u16.to_be());
        assert_eq!(key.proto, c::IPPROTO_TCP);
        assert_eq!(key.af, c::AF_INET);
        let mark = service_key(&ServiceAddr::Fwmark {
            mark: 9,
            family: Family::V6,
        });
        assert_eq!((mark.addr, mark.port), ([9, 0, 0, 0], 0));
        assert_eq!((mark.proto, mark.af), (c::PROTO_FWMARK, c::AF_INET6));
        let vip = vip_key(&key);
        assert_eq!((vip.addr, vip.af), (key.addr, key.af));
        assert_eq!((vip.port, vip.proto), (0, 0));
    }

    #[test]
    fn ipv4_netmask_is_the_mask_in_network_order_ipv6_the_prefix_length() {
        let v4 = |netmask| {
            service_value(&ServiceConfig {
                netmask,
                ..ServiceConfig::new(inet(Protocol::Tcp, "198.18.0.1", 80))
            })
            .netmask
        };
        assert_eq!(v4(24), 0xffff_ff00u32.to_be());
        assert_eq!(v4(32), u32::MAX);
        assert_eq!(v4(0), 0);
        assert_eq!(v4(40), u32::MAX, "clamped to 32");
        let v6 = service_value(&ServiceConfig {
            netmask: 200,
            ..ServiceConfig::new(inet(Protocol::Tcp, "2001:db8::1", 80))
        });
        assert_eq!(v6.netmask, 128, "clamped to 128");
    }

    #[test]
    fn only_scheduler_flags_and_settings_reach_the_service_flags() {
        let plain = ServiceConfig::new(inet(Protocol::Tcp, "198.18.0.1", 80));
        assert_eq!(service_value(&plain).flags, 0);
        let svc = service_value(&ServiceConfig {
            sched_flags: u32::MAX,
            ..plain.clone()
        });
        assert_eq!(
            svc.flags,
            c::SVC_F_SCHED1 | c::SVC_F_SCHED2 | c::SVC_F_SCHED3
        );
        let persistent = service_value(&ServiceConfig {
            persistent: Some(0),
            ..plain.clone()
        });
        assert_eq!(persistent.flags, c::SVC_F_PERSISTENT);
        // Without SVC_META (never written) the listing has neither engine nor timeout.
        let back = service_config(&service_key(&plain.addr), &persistent, None);
        assert_eq!((back.pe, back.est_timeout), (None, None));
        assert_eq!(back.persistent, Some(0));
    }

    #[test]
    fn destinations_round_trip_with_every_method_and_tunnel() {
        let forwards = [
            Forward::Route,
            Forward::Masq,
            Forward::Local,
            Forward::Tunnel,
            Forward::FullNat,
        ];
        let kinds = [TunnelType::Ipip, TunnelType::Gue, TunnelType::Gre];
        for addr in ["198.18.2.2", "2001:db8::2"] {
            for forward in forwards {
                for kind in kinds {
                    let d = DestConfig {
                        forward,
                        weight: 5,
                        u_threshold: 100,
                        l_threshold: 10,
                        tunnel: Tunnel {
                            kind,
                            port: 6080,
                            flags: tun_flags::REMCSUM,
                        },
                        ..DestConfig::new(addr.parse().unwrap(), 8080)
                    };
                    let value = dest_value(42, &d);
                    assert_eq!((value.svc_id, value.port), (42, 8080u16.to_be()));
                    assert_eq!(dest_config(&value), d, "{addr} {forward:?} {kind:?}");
                }
            }
        }
    }

    #[test]
    fn name_fields_keep_fifteen_bytes_and_a_nul() {
        assert_eq!(name_field(None), [0; 16]);
        assert_eq!(name_from_field(&name_field(None)), None);
        assert_eq!(name_from_field(&name_field(Some(""))), None);
        let eth = name_field(Some("eth0"));
        assert_eq!(&eth[..5], b"eth0\0");
        assert_eq!(name_from_field(&eth).as_deref(), Some("eth0"));
        let long = name_field(Some("a-name-longer-than-sixteen"));
        assert_eq!(long[15], 0);
        assert_eq!(name_from_field(&long).as_deref(), Some("a-name-longer-t"));
        // A field written by someone else without its NUL reads whole.
        assert_eq!(name_from_field(&[b'x'; 16]).unwrap().len(), 16);
    }

    #[test]
    fn local_addresses_round_trip() {
        for (addr, ifname) in [("198.18.5.1", Some("veth0")), ("2001:db8::5", None)] {
            let l = LocalAddr {
                addr: addr.parse().unwrap(),
                ifname: ifname.map(String::from),
                conns: 0,
                port_conflicts: 0,
            };
            let key = laddr_key(3, &l.addr);
            assert_eq!(key.svc_id, 3);
            let mut value = laddr_value(&l, 11);
            assert_eq!((value.seq, value.conns), (11, 0));
            value.port_conflicts = 4;
            let listed = local_addr(&key, &value, 7);
            assert_eq!(
                listed,
                LocalAddr {
                    conns: 7,
                    port_conflicts: 4,
                    ..l
                }
            );
        }
    }
}
