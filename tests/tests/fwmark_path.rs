//! fwmark services through BPF_PROG_TEST_RUN: the classifier (`xlvs fwmark` rules) gives the
//! mark, the fwmark service schedules, connections are keyed by the real 5-tuple, persistence
//! groups every port of a client, and IPVS' lookup order holds (fwmark service first, then
//! (vip, vport), then port zero). Needs root; each test has its own pins and namespace.

use std::net::{IpAddr, Ipv4Addr};

use dataplane::FwmarkError;
use dataplane::fwmark::FwmarkRule;
use dataplane::model::*;
use xlvs_tests::addrs::{CIP, R1, R2, VIP};
use xlvs_tests::packet::{ACK, Frame, Frame6, SYN, decode, decode6};
use xlvs_tests::services;
use xlvs_tests::testbed::{TestBed, XDP_PASS, XDP_TX};

const R3: Ipv4Addr = Ipv4Addr::new(198, 18, 4, 2);

fn rule(mark: u32, proto: Protocol, net: &str, plen: u8, ports: (u16, u16)) -> FwmarkRule {
    FwmarkRule::new(mark, proto, net.parse().unwrap(), plen, ports).unwrap()
}

/// A NAT fwmark service with reals on port 0 (they keep the client's destination port).
fn fwmark_service(
    b: &mut TestBed,
    mark: u32,
    family: Family,
    persistent: Option<u32>,
    reals: &[IpAddr],
) -> ServiceAddr {
    let mut cfg = ServiceConfig::new(ServiceAddr::Fwmark { mark, family });
    cfg.scheduler = Scheduler::Rr;
    cfg.persistent = persistent;
    if family == Family::V6 {
        cfg.netmask = 128;
    }
    let reals: Vec<_> = reals
        .iter()
        .map(|r| services::real(*r, 0, Forward::Masq))
        .collect();
    services::add(&mut b.dp, &cfg, &reals).unwrap()
}

fn inet_service(
    b: &mut TestBed,
    proto: Protocol,
    port: u16,
    real: Ipv4Addr,
    rport: u16,
) -> ServiceAddr {
    let mut cfg = ServiceConfig::new(services::inet(proto, VIP, port));
    cfg.scheduler = Scheduler::Rr;
    if port == 0 {
        cfg.persistent = Some(300);
    }
    let real = services::real(real, rport, Forward::Masq);
    services::add(&mut b.dp, &cfg, &[real]).unwrap()
}

/// Where a SYN goes: (action, destination address, destination port) of the output.
fn syn_to(
    b: &TestBed,
    client: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
) -> (u32, Ipv4Addr, u16) {
    let (action, out) = b.run(&Frame::tcp(client, sport, dst, dport, SYN).build());
    let d = decode(&out).expect("decodable");
    (action, d.dst, d.dport)
}

#[test]
fn the_classifier_matches_prefix_port_range_and_protocol() {
    let Some(mut b) = TestBed::new(4096, false) else {
        return;
    };
    fwmark_service(&mut b, 1, Family::V4, None, &[IpAddr::V4(R1)]);
    b.dp.add_fwmark_rules(&[
        rule(1, Protocol::Tcp, "198.18.100.0", 24, (80, 443)),
        rule(1, Protocol::Udp, "198.18.100.1", 32, (53, 53)),
    ])
    .unwrap();
    // Inside the prefix and the range: scheduled to the real, destination port kept.
    for (dst, port) in [
        (VIP, 80),
        (VIP, 443),
        (Ipv4Addr::new(198, 18, 100, 77), 200),
    ] {
        assert_eq!(
            syn_to(&b, CIP, 1000 + port, dst, port),
            (XDP_PASS, R1, port),
            "{dst}:{port}"
        );
    }
    // Outside the range, outside the prefix, another protocol: not ours, untouched.
    for (dst, port) in [(VIP, 79), (VIP, 444), (Ipv4Addr::new(198, 18, 101, 1), 80)] {
        let f = Frame::tcp(CIP, 2000, dst, port, SYN).build();
        assert_eq!(b.run(&f), (XDP_PASS, f.clone()), "{dst}:{port}");
    }
    let udp53 = Frame::udp(CIP, 3000, VIP, 53, b"q").build();
    let (action, out) = b.run(&udp53);
    assert_eq!((action, decode(&out).unwrap().dst), (XDP_PASS, R1));
    let udp80 = Frame::udp(CIP, 3001, VIP, 80, b"q").build();
    assert_eq!(
        b.run(&udp80),
        (XDP_PASS, udp80.clone()),
        "tcp rule, udp packet"
    );

    // Connections are keyed by the real 5-tuple; replies come back from vip:vport.
    let conns = b.dp.connections().unwrap();
    let c = conns.iter().find(|c| c.client.port() == 1443).unwrap();
    assert_eq!(c.virt, "198.18.100.1:443".parse().unwrap());
    assert_eq!(c.dest, "198.18.2.2:443".parse().unwrap());
    let reply = Frame::tcp(R1, 443, CIP, 1443, SYN | ACK).build();
    let (action, out) = b.run(&reply);
    let d = decode(&out).unwrap();
    assert_eq!(
        (action, d.src, d.sport, d.l4_checksum_ok),
        (XDP_PASS, VIP, 443, true)
    );
    // Established: the client's ACK follows the connection.
    assert_eq!(
        b.run(&Frame::tcp(CIP, 1443, VIP, 443, ACK).build()).0,
        XDP_PASS
    );
    assert_eq!(
        b.dp.service(&ServiceAddr::Fwmark {
            mark: 1,
            family: Family::V4
        })
        .unwrap()
        .stats
        .conns,
        4
    );

    // Rules removed: nothing matches any more (no connection was open for port 80's SYN again).
    b.dp.replace_fwmark_rules(&[]).unwrap();
    let f = Frame::tcp(CIP, 4000, VIP, 80, SYN).build();
    assert_eq!(b.run(&f), (XDP_PASS, f.clone()));
}

#[test]
fn ports_of_rules_added_or_removed_later_are_classified_or_passed_accordingly() {
    // Traffic to addresses that are no VIP is asked to the classifier only on ports some rule
    // covers (the main program passes the rest at once): that set follows every rule change.
    let Some(mut b) = TestBed::new(4096, false) else {
        return;
    };
    fwmark_service(&mut b, 1, Family::V4, None, &[IpAddr::V4(R1)]);
    let other = Ipv4Addr::new(198, 18, 100, 77);
    b.dp.add_fwmark_rules(&[rule(1, Protocol::Tcp, "198.18.100.0", 24, (80, 80))])
        .unwrap();
    let f = Frame::tcp(CIP, 5000, other, 8080, SYN).build();
    assert_eq!(b.run(&f), (XDP_PASS, f.clone()), "no rule covers 8080 yet");
    b.dp.add_fwmark_rules(&[rule(2, Protocol::Tcp, "198.18.100.0", 24, (8000, 8100))])
        .unwrap();
    fwmark_service(&mut b, 2, Family::V4, None, &[IpAddr::V4(R2)]);
    assert_eq!(syn_to(&b, CIP, 5001, other, 8080), (XDP_PASS, R2, 8080));
    assert_eq!(syn_to(&b, CIP, 5002, other, 80), (XDP_PASS, R1, 80));
    // Port 80's rule gone: its port is free again; 8000-8100 still classified.
    b.dp.replace_fwmark_rules(&[rule(2, Protocol::Tcp, "198.18.100.0", 24, (8000, 8100))])
        .unwrap();
    let f = Frame::tcp(CIP, 5003, other, 80, SYN).build();
    assert_eq!(b.run(&f), (XDP_PASS, f.clone()), "80 is no rule's any more");
    assert_eq!(syn_to(&b, CIP, 5004, other, 8100), (XDP_PASS, R2, 8100));
    // The same port over UDP was never covered.
    let udp = Frame::udp(CIP, 5005, other, 8080, b"q").build();
    assert_eq!(b.run(&udp), (XDP_PASS, udp.clone()));
}

#[test]
fn a_mark_without_a_service_or_of_the_other_family_matches_nothing() {
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    // FWM 2 exists for IPv6 only; the IPv4 rule gives mark 2 (and mark 3 has no service).
    fwmark_service(
        &mut b,
        2,
        Family::V6,
        None,
        &["2001:db8:2::2".parse().unwrap()],
    );
    b.dp.add_fwmark_rules(&[
        rule(2, Protocol::Tcp, "198.18.100.1", 32, (80, 80)),
        rule(3, Protocol::Tcp, "198.18.100.1", 32, (81, 81)),
    ])
    .unwrap();
    for port in [80, 81] {
        let f = Frame::tcp(CIP, 5000, VIP, port, SYN).build();
        assert_eq!(b.run(&f), (XDP_PASS, f.clone()));
    }
    assert!(b.dp.connections().unwrap().is_empty());
}

#[test]
fn ipv6_fwmark_services_take_their_marked_packets() {
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    fwmark_service(
        &mut b,
        6,
        Family::V6,
        None,
        &["2001:db8:2::2".parse().unwrap()],
    );
    b.dp.add_fwmark_rules(&[rule(6, Protocol::Tcp, "2001:db8:100::", 64, (443, 443))])
        .unwrap();
    let syn = Frame6::tcp("2001:db8:1::2", 40000, "2001:db8:100::9", 443, SYN).build();
    let (action, out) = b.run(&syn);
    let d = decode6(&out).unwrap();
    assert_eq!(action, XDP_PASS);
    assert_eq!(
        (d.dst.to_string().as_str(), d.dport),
        ("2001:db8:2::2", 443)
    );
    assert!(d.l4_checksum_ok);
    let other = Frame6::tcp("2001:db8:1::2", 40000, "2001:db8:101::9", 443, SYN).build();
    assert_eq!(b.run(&other), (XDP_PASS, other.clone()));
    let reply = Frame6::tcp("2001:db8:2::2", 443, "2001:db8:1::2", 40000, SYN | ACK).build();
    let d = decode6(&b.run(&reply).1).unwrap();
    assert_eq!(
        (d.src.to_string().as_str(), d.sport),
        ("2001:db8:100::9", 443)
    );
}

#[test]
fn persistence_on_a_fwmark_service_keeps_a_client_on_one_real_across_ports() {
    let Some(mut b) = TestBed::new(4096, false) else {
        return;
    };
    fwmark_service(
        &mut b,
        1,
        Family::V4,
        Some(300),
        &[IpAddr::V4(R1), IpAddr::V4(R2)],
    );
    b.dp.add_fwmark_rules(&[
        rule(1, Protocol::Tcp, "198.18.100.1", 32, (80, 80)),
        rule(1, Protocol::Tcp, "198.18.100.1", 32, (443, 443)),
    ])
    .unwrap();
    let mut per_client = Vec::new();
    for i in 0..4u8 {
        let client = Ipv4Addr::new(198, 19, 1, 10 + i);
        let reals: Vec<Ipv4Addr> = [80u16, 443, 80, 443]
            .iter()
            .enumerate()
            .map(|(n, port)| syn_to(&b, client, 1000 + n as u16, VIP, *port).1)
            .collect();
        assert!(
            reals.iter().all(|r| *r == reals[0]),
            "client {client}: {reals:?}"
        );
        per_client.push(reals[0]);
    }
    // rr between clients (each new client network gets the next real), so both reals serve.
    assert!(
        per_client.contains(&R1) && per_client.contains(&R2),
        "{per_client:?}"
    );
    // One template per client, shown as IPVS shows fwmark templates (vaddr 0.0.0.0:0).
    let templates: Vec<_> =
        b.dp.connections()
            .unwrap()
            .into_iter()
            .filter(|c| c.proto == 0)
            .collect();
    assert_eq!(templates.len(), 4);
    assert!(
        templates
            .iter()
            .all(|t| t.virt == "0.0.0.0:0".parse().unwrap())
    );
}

#[test]
fn fwmark_services_come_first_as_in_ipvs_then_vip_port_then_port_zero() {
    let Some(mut b) = TestBed::new(4096, false) else {
        return;
    };
    // Before any rule: (vip, 80) and the port-zero service take their packets.
    inet_service(&mut b, Protocol::Tcp, 80, R2, 8080);
    inet_service(&mut b, Protocol::Tcp, 0, R3, 0);
    assert_eq!(syn_to(&b, CIP, 1000, VIP, 80), (XDP_PASS, R2, 8080));
    assert_eq!(syn_to(&b, CIP, 1001, VIP, 443).1, R3);
    // A fwmark service and a rule covering VIP:80 and VIP:443: it wins over both (IPVS'
    // ip_vs_service_find: fwmark first). Port 22 stays with the port-zero service.
    fwmark_service(&mut b, 1, Family::V4, None, &[IpAddr::V4(R1)]);
    b.dp.add_fwmark_rules(&[rule(1, Protocol::Tcp, "198.18.100.0", 24, (80, 443))])
        .unwrap();
    assert_eq!(syn_to(&b, CIP, 1002, VIP, 80), (XDP_PASS, R1, 80));
    assert_eq!(syn_to(&b, CIP, 1003, VIP, 443), (XDP_PASS, R1, 443));
    assert_eq!(syn_to(&b, CIP, 1004, VIP, 22).1, R3);
    // A service added after the rule is covered too (its flag is set when it is written).
    b.dp.del_service(&ServiceAddr::Inet {
        proto: Protocol::Tcp,
        addr: IpAddr::V4(VIP),
        port: 80,
    })
    .unwrap();
    inet_service(&mut b, Protocol::Tcp, 80, R2, 8080);
    assert_eq!(syn_to(&b, CIP, 1005, VIP, 80), (XDP_PASS, R1, 80));
    // Established connections keep their real whatever changes (keyed by the 5-tuple).
    assert_eq!(
        decode(&b.run(&Frame::tcp(CIP, 1000, VIP, 80, ACK).build()).1)
            .unwrap()
            .dst,
        R2
    );
    // Without the fwmark service the rule gives a mark nobody serves: (vip, vport) again.
    b.dp.del_service(&ServiceAddr::Fwmark {
        mark: 1,
        family: Family::V4,
    })
    .unwrap();
    assert_eq!(syn_to(&b, CIP, 1006, VIP, 80), (XDP_PASS, R2, 8080));
    // And rules removed: the (vip, vport) service as before.
    fwmark_service(&mut b, 1, Family::V4, None, &[IpAddr::V4(R1)]);
    assert_eq!(syn_to(&b, CIP, 1007, VIP, 80).1, R1);
    b.dp.replace_fwmark_rules(&[]).unwrap();
    assert_eq!(syn_to(&b, CIP, 1008, VIP, 80), (XDP_PASS, R2, 8080));
    // Listings never show the internal flag.
    let e =
        b.dp.service(&ServiceAddr::Inet {
            proto: Protocol::Tcp,
            addr: IpAddr::V4(VIP),
            port: 80,
        })
        .unwrap();
    assert_eq!(e.config.sched_flags, 0);
}

#[test]
fn non_syn_to_a_marked_destination_without_session_is_reset_not_forwarded() {
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    fwmark_service(&mut b, 1, Family::V4, None, &[IpAddr::V4(R1)]);
    b.dp.add_fwmark_rules(&[rule(1, Protocol::Tcp, "198.18.100.1", 32, (80, 80))])
        .unwrap();
    let ack = Frame::tcp(CIP, 1000, VIP, 80, ACK).build();
    let (action, out) = b.run(&ack);
    assert_eq!(action, XDP_TX, "answered with a RST");
    assert_eq!(out[14 + 20 + 13], xlvs_tests::packet::RST);
    assert!(b.dp.connections().unwrap().is_empty());
}

#[test]
fn classifier_changes_are_all_or_nothing_and_listed_sorted() {
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    let a = rule(2, Protocol::Udp, "198.18.100.0", 24, (53, 53));
    let c = rule(1, Protocol::Tcp, "198.18.100.1", 32, (80, 443));
    b.dp.add_fwmark_rules(&[a, c]).unwrap();
    // The second rule overlaps `c` with another mark: refused, and the first is not added either.
    let fine = rule(3, Protocol::Tcp, "198.18.7.0", 24, (1, 2));
    let clash = rule(4, Protocol::Tcp, "198.18.100.0", 24, (443, 443));
    match b.dp.add_fwmark_rules(&[fine, clash]) {
        Err(FwmarkError::Refused(r)) => {
            assert_eq!(r.index, 1);
            assert!(r.message.contains("overlaps"), "{}", r.message);
        }
        other => panic!("{other:?}"),
    }
    let listed: Vec<String> =
        b.dp.fwmark_rules()
            .unwrap()
            .iter()
            .map(|r| r.to_string())
            .collect();
    assert_eq!(
        listed,
        [
            "--mark 1 -p tcp -d 198.18.100.1/32 --dport 80:443",
            "--mark 2 -p udp -d 198.18.100.0/24 --dport 53",
        ]
    );
    assert!(b.dp.del_fwmark_rule(&fine).is_err());
    b.dp.del_fwmark_rule(&c).unwrap();
    assert_eq!(b.dp.fwmark_rules().unwrap(), [a]);
}
