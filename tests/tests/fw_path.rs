//! The firewall (`xlvs fw`) through BPF_PROG_TEST_RUN: rules by source prefix and range,
//! protocol and destination port, global and per VIP, IPv4 and IPv6, ICMP; the default policy
//! for traffic to this host; established connections passing whatever the rules say; refused
//! changes leaving the running set and its counters as they were; the rate limits (ICMP, a
//! per-source connection budget per VIP, SYNPROXY's cookies included) with their counters. Needs root; each test has
//! its own pins and namespace.

use std::net::{IpAddr, Ipv4Addr};

use dataplane::fw::{Firewall, FwError, Limit, Policy, RuleSet, file, parse_rule};
use dataplane::model::*;
use xlvs_tests::addrs::{R6, VIP6};
use xlvs_tests::packet::{ACK, Frame, Frame6, SYN, decode, icmp_error, icmp6_error};
use xlvs_tests::services;
use xlvs_tests::testbed::{TestBed, XDP_DROP, XDP_PASS, XDP_TX};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 1);
const VIP2: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 2);
const HOST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const REAL: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 2);

fn ip(a: u8, b: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, a, b)
}

fn fw(b: &TestBed) -> Firewall {
    Firewall::open(&b.opts).expect("firewall")
}

fn add(f: &mut Firewall, text: &str) {
    f.add(parse_rule(text).unwrap())
        .unwrap_or_else(|e| panic!("{text}: {e}"));
}

/// A NAT service VIP:80 -> REAL:80.
fn service(b: &mut TestBed, vip: Ipv4Addr) {
    let addr = ServiceAddr::Inet {
        proto: Protocol::Tcp,
        addr: IpAddr::V4(vip),
        port: 80,
    };
    let mut cfg = ServiceConfig::new(addr);
    cfg.scheduler = Scheduler::Rr;
    b.dp.add_service(&cfg).unwrap();
    let mut d = DestConfig::new(IpAddr::V4(REAL), 80);
    d.forward = Forward::Masq;
    b.dp.add_dest(&addr, &d).unwrap();
}

fn tcp(b: &TestBed, src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> u32 {
    b.run(&Frame::tcp(src, sport, dst, dport, SYN).build()).0
}

fn udp(b: &TestBed, src: Ipv4Addr, dst: Ipv4Addr, dport: u16) -> u32 {
    b.run(&Frame::udp(src, 5000, dst, dport, b"x").build()).0
}

/// An IPv6 neighbour solicitation (always passes).
fn neighbour_solicitation() -> Vec<u8> {
    icmp6_error(
        "2001:db8::9".parse().unwrap(),
        "ff02::1:ff00:1".parse().unwrap(),
        135,
        0,
        &[0; 20],
    )
}

/// An ICMPv6 echo request to this host.
fn ping6() -> Vec<u8> {
    icmp6_error(
        "2001:db8::9".parse().unwrap(),
        "2001:db8::1".parse().unwrap(),
        128,
        0,
        &[],
    )
}

fn hits(f: &Firewall, text: &str) -> u64 {
    let rule = parse_rule(text).unwrap();
    let set = f.current().unwrap();
    let n = set.rules.iter().find(|n| n.rule == rule).expect(text);
    f.hits(n.id)
}

#[test]
fn rules_match_by_prefix_range_protocol_and_port_longest_prefix_first() {
    let Some(b) = TestBed::new(4096, false) else {
        return;
    };
    let mut f = fw(&b);
    // Without rules everything to this host passes.
    assert_eq!(tcp(&b, ip(1, 1), 1000, HOST, 22), XDP_PASS);
    add(&mut f, "deny 198.18.1.0/24");
    add(&mut f, "allow 198.18.1.0/26 -p tcp --dport 22");
    add(&mut f, "deny 198.18.3.5-198.18.3.9 -p udp --dport 53:60");
    add(&mut f, "deny 198.18.4.0/24 -p icmp");
    add(&mut f, "allow 198.18.1.9 -p udp");

    assert_eq!(tcp(&b, ip(1, 200), 1000, HOST, 22), XDP_DROP, "/24 deny");
    assert_eq!(tcp(&b, ip(1, 7), 1000, HOST, 22), XDP_PASS, "/26 allow ssh");
    assert_eq!(
        tcp(&b, ip(1, 7), 1000, HOST, 23),
        XDP_DROP,
        "/26: not 22 -> /24"
    );
    assert_eq!(udp(&b, ip(1, 7), HOST, 22), XDP_DROP, "/26 is tcp only");
    // A whole address (its own table) carries the rules of the prefixes covering it.
    assert_eq!(udp(&b, ip(1, 9), HOST, 22), XDP_PASS, "/32 allow udp");
    assert_eq!(
        tcp(&b, ip(1, 9), 1000, HOST, 23),
        XDP_DROP,
        "/32: tcp -> /24"
    );
    assert_eq!(tcp(&b, ip(2, 1), 1000, HOST, 22), XDP_PASS, "no rule");
    // The range: both ends and inside, on the ports and protocol named; not outside them.
    for host in [5, 6, 7, 8, 9] {
        assert_eq!(udp(&b, ip(3, host), HOST, 53), XDP_DROP, "198.18.3.{host}");
        assert_eq!(
            udp(&b, ip(3, host), HOST, 60),
            XDP_DROP,
            "198.18.3.{host}:60"
        );
    }
    assert_eq!(udp(&b, ip(3, 4), HOST, 53), XDP_PASS);
    assert_eq!(udp(&b, ip(3, 10), HOST, 53), XDP_PASS);
    assert_eq!(udp(&b, ip(3, 7), HOST, 61), XDP_PASS);
    assert_eq!(tcp(&b, ip(3, 7), 1000, HOST, 53), XDP_PASS);
    // ICMP: an echo request from the denied prefix is dropped; errors always pass.
    let echo = icmp_error(ip(4, 1), HOST, 8, 0, &[]);
    assert_eq!(b.run(&echo).0, XDP_DROP);
    let unreach = icmp_error(ip(4, 1), HOST, 3, 1, &[0x45; 28]);
    assert_eq!(b.run(&unreach).0, XDP_PASS);
    assert_eq!(b.run(&icmp_error(ip(5, 1), HOST, 8, 0, &[])).0, XDP_PASS);

    assert_eq!(hits(&f, "deny 198.18.1.0/24"), 4);
    assert_eq!(hits(&f, "allow 198.18.1.9 -p udp"), 1);
    assert_eq!(hits(&f, "allow 198.18.1.0/26 -p tcp --dport 22"), 1);
    assert_eq!(
        hits(&f, "deny 198.18.3.5-198.18.3.9 -p udp --dport 53:60"),
        10
    );
    assert_eq!(hits(&f, "deny 198.18.4.0/24 -p icmp"), 1);
    let c = b.dp.counters().unwrap();
    assert_eq!(c[ebpf_common::counter::FW_DENIED as usize], 15);
    assert_eq!(c[ebpf_common::counter::FW_ALLOWED as usize], 2);
}

#[test]
fn default_drop_spares_vip_services_allowed_sources_and_established_connections() {
    let Some(mut b) = TestBed::new(4096, false) else {
        return;
    };
    service(&mut b, VIP);
    let mut f = fw(&b);
    let client = ip(1, 2);
    // A connection opened before any rule.
    let (action, out) = b.run(&Frame::tcp(client, 4000, VIP, 80, SYN).build());
    assert_eq!((action, decode(&out).unwrap().dst), (XDP_PASS, REAL));

    f.set_policy(Policy::Drop).unwrap();
    add(&mut f, "allow 198.18.9.0/24 -p tcp --dport 22");
    add(&mut f, "deny 198.18.1.0/24");
    assert_eq!(tcp(&b, ip(7, 7), 1000, HOST, 22), XDP_DROP, "policy drop");
    assert_eq!(udp(&b, ip(7, 7), HOST, 53), XDP_DROP, "policy drop");
    assert_eq!(b.run(&icmp_error(ip(7, 7), HOST, 8, 0, &[])).0, XDP_DROP);
    assert_eq!(tcp(&b, ip(9, 9), 1000, HOST, 22), XDP_PASS, "allowed");
    // Traffic to a VIP is the balancer's: the policy is for this host's own traffic.
    let (action, out) = b.run(&Frame::tcp(ip(7, 7), 1000, VIP, 80, SYN).build());
    assert_eq!((action, decode(&out).unwrap().dst), (XDP_PASS, REAL));
    // The denied client's established connection goes on; a new one from it does not.
    let (action, out) = b.run(&Frame::tcp(client, 4000, VIP, 80, ACK).build());
    assert_eq!((action, decode(&out).unwrap().dst), (XDP_PASS, REAL));
    assert_eq!(tcp(&b, client, 4001, VIP, 80), XDP_DROP);
    // Neighbour solicitation passes under default drop (IPv6 needs it).
    let ns = neighbour_solicitation();
    assert_eq!(b.run(&ns).0, XDP_PASS);
    let ping6 = ping6();
    assert_eq!(b.run(&ping6).0, XDP_DROP);
    let c = b.dp.counters().unwrap();
    assert_eq!(c[ebpf_common::counter::FW_POLICY_DROP as usize], 4);

    f.set_policy(Policy::Accept).unwrap();
    assert_eq!(tcp(&b, ip(7, 7), 1000, HOST, 22), XDP_PASS);
    assert_eq!(tcp(&b, client, 4002, VIP, 80), XDP_DROP, "rules stay");
}

#[test]
fn per_vip_rules_apply_to_their_destination_and_come_before_global_ones() {
    let Some(mut b) = TestBed::new(4096, false) else {
        return;
    };
    service(&mut b, VIP);
    service(&mut b, VIP2);
    let mut f = fw(&b);
    add(&mut f, "deny 198.18.1.0/24");
    add(&mut f, "allow 198.18.1.0/24 --vip 198.18.100.1");
    add(
        &mut f,
        "deny 198.18.2.0/24 -p tcp --dport 80 --vip 198.18.100.2",
    );
    assert_ne!(
        tcp(&b, ip(1, 1), 1000, VIP, 80),
        XDP_DROP,
        "scoped allow wins"
    );
    assert_eq!(tcp(&b, ip(1, 1), 1000, VIP2, 80), XDP_DROP, "global deny");
    assert_eq!(tcp(&b, ip(2, 1), 1000, VIP2, 80), XDP_DROP, "scoped deny");
    assert_ne!(tcp(&b, ip(2, 1), 1001, VIP, 80), XDP_DROP, "other VIP");
    assert_eq!(hits(&f, "allow 198.18.1.0/24 --vip 198.18.100.1"), 1);
}

#[test]
fn ipv6_rules_by_prefix_and_range() {
    let Some(b) = TestBed::new(4096, false) else {
        return;
    };
    let mut f = fw(&b);
    add(&mut f, "deny 2001:db8:1::/48");
    add(&mut f, "allow 2001:db8:1::10-2001:db8:1::1f -p tcp");
    let syn = |src: &str| {
        b.run(&Frame6::tcp(src, 1000, "2001:db8::1", 22, SYN).build())
            .0
    };
    assert_eq!(syn("2001:db8:1::1"), XDP_DROP);
    assert_eq!(syn("2001:db8:1:ffff::1"), XDP_DROP);
    assert_eq!(syn("2001:db8:1::10"), XDP_PASS);
    assert_eq!(syn("2001:db8:1::1f"), XDP_PASS);
    assert_eq!(syn("2001:db8:1::20"), XDP_DROP);
    assert_eq!(syn("2001:db8:2::1"), XDP_PASS);
    // An IPv4 rule never matches IPv6 (and the other way round).
    add(&mut f, "deny 0.0.0.0/0 -p tcp --dport 23");
    assert_eq!(
        b.run(&Frame6::tcp("2001:db8:2::1", 1000, "2001:db8::1", 23, SYN).build())
            .0,
        XDP_PASS
    );
}

#[test]
fn refused_changes_leave_the_running_set_and_swaps_keep_counters() {
    let Some(b) = TestBed::new(4096, false) else {
        return;
    };
    let mut f = fw(&b);
    add(&mut f, "deny 198.18.1.0/24 -p tcp --dport 80");
    assert_eq!(tcp(&b, ip(1, 1), 1000, HOST, 80), XDP_DROP);
    let before = f.current().unwrap();
    for bad in [
        "allow 198.18.1.0/24 -p tcp --dport 80",
        "deny 198.18.1.0/24 -p tcp --dport 80",
    ] {
        match f.add(parse_rule(bad).unwrap()) {
            Err(FwError::Refused(m)) => assert!(
                m.contains("contradicts") || m.contains("exists already"),
                "{m}"
            ),
            other => panic!("{bad}: {other:?}"),
        }
    }
    // The same packets through a range: a contradiction the compiler finds.
    let err = f
        .add(parse_rule("allow 198.18.1.0-198.18.1.255 -p tcp --dport 80").unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("contradicts"), "{err}");
    // Nine rules at one prefix do not fit an entry.
    let mut many = before.clone();
    for p in 0..9u16 {
        many.rules.push(dataplane::fw::Numbered {
            id: 0,
            rule: parse_rule(&format!("deny 198.18.1.0/24 -p udp --dport {}", 100 + p)).unwrap(),
        });
    }
    let err = f.replace(&many).unwrap_err();
    assert!(err.to_string().contains("more than 8 rules"), "{err}");
    assert_eq!(f.current().unwrap(), before);
    assert_eq!(tcp(&b, ip(1, 1), 1001, HOST, 80), XDP_DROP);
    assert_eq!(hits(&f, "deny 198.18.1.0/24 -p tcp --dport 80"), 2);

    // Swaps (add, policy, restore of the same rules) keep a running rule's counter.
    add(&mut f, "deny 198.18.2.0/24");
    f.set_policy(Policy::Drop).unwrap();
    let mut same = f.current().unwrap();
    same.rules.reverse();
    f.replace(&same).unwrap();
    assert_eq!(hits(&f, "deny 198.18.1.0/24 -p tcp --dport 80"), 2);
    assert_eq!(tcp(&b, ip(1, 1), 1002, HOST, 80), XDP_DROP);
    assert_eq!(hits(&f, "deny 198.18.1.0/24 -p tcp --dport 80"), 3);
    // A deleted rule's id taken by a new rule starts from zero.
    f.del(parse_rule("deny 198.18.1.0/24 -p tcp --dport 80").unwrap())
        .unwrap();
    f.flush().unwrap();
    add(&mut f, "deny 198.18.5.0/24");
    assert_eq!(hits(&f, "deny 198.18.5.0/24"), 0);
    assert_eq!(tcp(&b, ip(1, 1), 1003, HOST, 80), XDP_DROP, "policy drop");
    f.replace(&RuleSet::default()).unwrap();
    assert_eq!(tcp(&b, ip(1, 1), 1004, HOST, 80), XDP_PASS);
    assert_eq!(
        b.dp.counters().unwrap()[ebpf_common::counter::FW_POLICY_DROP as usize],
        1
    );
}

#[test]
fn concurrent_writers_lose_no_rule() {
    let Some(b) = TestBed::new(4096, false) else {
        return;
    };
    let opts = b.opts.clone();
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let opts = opts.clone();
            std::thread::spawn(move || {
                let mut f = Firewall::open(&opts).unwrap();
                for i in 0..10u8 {
                    f.add(parse_rule(&format!("deny 198.18.{}.{i}", 10 + t)).unwrap())
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let f = fw(&b);
    assert_eq!(f.current().unwrap().rules.len(), 40);
    for t in 0..4 {
        assert_eq!(tcp(&b, ip(10 + t, 9), 1000, HOST, 80), XDP_DROP);
    }
    let mut ids: Vec<u32> = f.current().unwrap().rules.iter().map(|n| n.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40, "ids are unique");
}

/// A limit of `rate` per minute: no token comes back while a test runs (one per 60/rate s).
fn per_minute(rate: &str, burst: u32) -> Limit {
    Limit::new(rate, Some(burst)).unwrap()
}

#[test]
fn conn_limit_drops_a_source_over_its_budget_towards_that_vip_only() {
    let Some(mut b) = TestBed::new(4096, false) else {
        return;
    };
    service(&mut b, VIP);
    service(&mut b, VIP2);
    let v6 = services::inet(Protocol::Tcp, VIP6.parse::<IpAddr>().unwrap(), 80);
    services::add(
        &mut b.dp,
        &ServiceConfig::new(v6),
        &[services::real(
            R6.parse::<IpAddr>().unwrap(),
            80,
            Forward::Masq,
        )],
    )
    .unwrap();
    let mut f = fw(&b);
    f.set_conn_limit(IpAddr::V4(VIP), Some(per_minute("1/m", 3)))
        .unwrap();
    f.set_conn_limit(VIP6.parse().unwrap(), Some(per_minute("1/m", 2)))
        .unwrap();
    let (a, c) = (ip(1, 1), ip(1, 2));
    for sport in 1000..1003 {
        let (action, out) = b.run(&Frame::tcp(a, sport, VIP, 80, SYN).build());
        assert_eq!(
            (action, decode(&out).unwrap().dst),
            (XDP_PASS, REAL),
            "{sport}"
        );
    }
    assert_eq!(tcp(&b, a, 1003, VIP, 80), XDP_DROP, "over the budget");
    assert_eq!(tcp(&b, a, 1004, VIP, 80), XDP_DROP, "still over");
    // Another source has its own budget; another VIP has none.
    for sport in 1000..1003 {
        assert_eq!(tcp(&b, c, sport, VIP, 80), XDP_PASS, "other source");
    }
    for sport in 2000..2010 {
        assert_eq!(tcp(&b, a, sport, VIP2, 80), XDP_PASS, "other VIP");
    }
    // The connections it opened go on: only opening packets are budgeted.
    let (action, out) = b.run(&Frame::tcp(a, 1000, VIP, 80, ACK).build());
    assert_eq!((action, decode(&out).unwrap().dst), (XDP_PASS, REAL));
    // IPv6: one budget per /64.
    let syn6 = |src: &str, sport: u16| b.run(&Frame6::tcp(src, sport, VIP6, 80, SYN).build()).0;
    assert_eq!(syn6("2001:db8:1::1", 1000), XDP_PASS);
    assert_eq!(syn6("2001:db8:1::2", 1000), XDP_PASS, "same /64");
    assert_eq!(syn6("2001:db8:1::3", 1000), XDP_DROP, "the /64 is over");
    assert_eq!(syn6("2001:db8:1:1::1", 1000), XDP_PASS, "another /64");

    assert_eq!(f.conn_dropped(IpAddr::V4(VIP)), 2);
    assert_eq!(f.conn_dropped(VIP6.parse().unwrap()), 1);
    assert_eq!(f.conn_dropped(IpAddr::V4(VIP2)), 0);
    let c_ = b.dp.counters().unwrap();
    assert_eq!(c_[ebpf_common::counter::FW_CONN_LIMITED as usize], 3);
    assert_eq!(c_[ebpf_common::counter::FW_DENIED as usize], 0);

    // Rule changes keep the budget and its counter; a deny rule drops before it is spent.
    add(&mut f, "deny 198.18.7.0/24");
    assert_eq!(tcp(&b, a, 1005, VIP, 80), XDP_DROP);
    assert_eq!(f.conn_dropped(IpAddr::V4(VIP)), 3);
    for sport in 1000..1003 {
        assert_eq!(tcp(&b, ip(7, 1), sport, VIP, 80), XDP_DROP);
    }
    assert_eq!(f.conn_dropped(IpAddr::V4(VIP)), 3, "denied, not budgeted");
    // Off: the source opens again.
    f.set_conn_limit(IpAddr::V4(VIP), None).unwrap();
    assert_eq!(tcp(&b, a, 1006, VIP, 80), XDP_PASS);
    assert!(matches!(
        f.set_conn_limit(IpAddr::V4(VIP), None),
        Err(FwError::Refused(_))
    ));
}

#[test]
fn a_synproxy_service_pays_no_cookie_for_a_source_over_its_budget() {
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    let cfg = ServiceConfig {
        synproxy: true,
        ..ServiceConfig::new(services::inet(Protocol::Tcp, VIP, 80))
    };
    let real = services::real(REAL, 8080, Forward::FullNat);
    services::fullnat(&mut b.dp, &cfg, &[real], &[ip(9, 1).into()]).unwrap();
    fw(&b)
        .set_conn_limit(IpAddr::V4(VIP), Some(per_minute("1/m", 2)))
        .unwrap();
    let flood = ip(1, 1);
    let mut actions = Vec::new();
    for sport in 40000..40010 {
        actions.push(tcp(&b, flood, sport, VIP, 80));
    }
    assert_eq!(&actions[..2], &[XDP_TX, XDP_TX], "the burst gets cookies");
    assert!(actions[2..].iter().all(|a| *a == XDP_DROP), "{actions:?}");
    // Another client still gets its cookie.
    assert_eq!(tcp(&b, ip(1, 2), 40000, VIP, 80), XDP_TX);
    let c = b.dp.counters().unwrap();
    assert_eq!(c[ebpf_common::counter::SYNPROXY_COOKIE_SENT as usize], 3);
    assert_eq!(c[ebpf_common::counter::FW_CONN_LIMITED as usize], 8);
}

#[test]
fn icmp_limit_lets_its_burst_through_and_spares_errors_and_neighbour_discovery() {
    let Some(b) = TestBed::new(4096, false) else {
        return;
    };
    let mut f = fw(&b);
    f.set_icmp_limit(Some(per_minute("1/m", 2))).unwrap();
    let echo = |src| b.run(&icmp_error(src, HOST, 8, 0, &[])).0;
    assert_eq!(echo(ip(4, 1)), XDP_PASS);
    assert_eq!(echo(ip(4, 2)), XDP_PASS, "all sources share the bucket");
    assert_eq!(echo(ip(4, 1)), XDP_DROP);
    let ping6 = ping6();
    assert_eq!(b.run(&ping6).0, XDP_DROP, "ICMPv6 too");
    // Errors and neighbour discovery never meet the limit; TCP neither.
    let unreach = icmp_error(ip(4, 1), HOST, 3, 1, &[0x45; 28]);
    assert_eq!(b.run(&unreach).0, XDP_PASS);
    let ns = neighbour_solicitation();
    assert_eq!(b.run(&ns).0, XDP_PASS);
    assert_eq!(tcp(&b, ip(4, 1), 1000, HOST, 22), XDP_PASS);
    // A deny rule drops first (its counter, not the limit's).
    add(&mut f, "deny 198.18.5.0/24 -p icmp");
    assert_eq!(echo(ip(5, 1)), XDP_DROP);
    assert_eq!(f.icmp_dropped(), 2, "kept across the rule change");
    let c = b.dp.counters().unwrap();
    assert_eq!(c[ebpf_common::counter::FW_ICMP_LIMITED as usize], 2);
    assert_eq!(c[ebpf_common::counter::FW_DENIED as usize], 1);

    // Saved and restored with the rules; a higher burst lets more through at once.
    let saved = file::render(&f.current().unwrap(), false);
    f.replace(&RuleSet::default()).unwrap();
    assert_eq!(echo(ip(4, 1)), XDP_PASS, "no limit");
    let mut set = file::parse(&saved, "saved", false).unwrap();
    assert_eq!(set.limits.icmp, Some(per_minute("1/m", 2)));
    set.limits.icmp = Some(per_minute("1/m", 5));
    f.replace(&set).unwrap();
    let passed = (0..8).filter(|i| echo(ip(4, *i)) == XDP_PASS).count();
    assert_eq!(passed, 5);
    assert_eq!(echo(ip(5, 1)), XDP_DROP, "the rule came back too");
}
