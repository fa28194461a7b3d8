//! The XDP packet path on crafted frames through BPF_PROG_TEST_RUN: what comes out (action,
//! rewritten addresses, checksums) and what the tables say afterwards. Needs root (BPF); each test
//! has its own pin directory and runs inside its own empty namespace (so the FIB finds no route
//! and rewritten packets are handed to the kernel: XDP_PASS).

use std::net::{IpAddr, Ipv4Addr};

use dataplane::Dataplane;
use dataplane::model::*;
use xlvs_tests::addrs::{CIP, R1, R2, VIP};
use xlvs_tests::packet::{ACK, Decoded, FIN, Frame, RST, SYN, decode};
use xlvs_tests::services;
use xlvs_tests::testbed::{TestBed, XDP_DROP, XDP_PASS, XDP_TX, ifindex_b0};

fn setup(max_conns: u32) -> Option<TestBed> {
    TestBed::new(max_conns, false)
}

/// With `routed`, the namespace's FIB resolves 198.18.1.2, 198.18.2.2-5 and 198.18.3.2 on `b0`
/// (see `fib_namespace`): run with `run_on` to see XDP_TX and the MACs.
fn setup_in(max_conns: u32, routed: bool) -> Option<TestBed> {
    TestBed::new(max_conns, routed)
}

fn run(b: &TestBed, f: &Frame) -> (u32, Decoded) {
    b.run_frame(f)
}

fn tcp_service(dp: &mut Dataplane, sched: Scheduler, reals: &[(Ipv4Addr, i32)]) -> ServiceAddr {
    service(dp, Protocol::Tcp, 80, sched, reals)
}

fn service(
    dp: &mut Dataplane,
    proto: Protocol,
    port: u16,
    sched: Scheduler,
    reals: &[(Ipv4Addr, i32)],
) -> ServiceAddr {
    service_fwd(dp, proto, port, sched, Forward::Masq, reals)
}

fn service_fwd(
    dp: &mut Dataplane,
    proto: Protocol,
    port: u16,
    sched: Scheduler,
    forward: Forward,
    reals: &[(Ipv4Addr, i32)],
) -> ServiceAddr {
    let cfg = ServiceConfig {
        scheduler: sched,
        ..ServiceConfig::new(services::inet(proto, VIP, port))
    };
    // DR keeps the port: IPVS forces dport = vport for -g.
    let rport = if forward == Forward::Masq { 8080 } else { port };
    let reals: Vec<DestConfig> = reals
        .iter()
        .map(|(ip, weight)| DestConfig {
            weight: *weight,
            ..services::real(*ip, rport, forward)
        })
        .collect();
    services::add(dp, &cfg, &reals).unwrap()
}

#[test]
fn non_vip_traffic_passes_untouched() {
    let Some(mut b) = setup(1024) else { return };
    tcp_service(&mut b.dp, Scheduler::Rr, &[(R1, 1)]);
    let frame = Frame::tcp(CIP, 40000, Ipv4Addr::new(198, 18, 1, 1), 22, SYN).build();
    let r = b.runner.run(&frame).unwrap();
    assert_eq!(r.action, XDP_PASS);
    assert_eq!(
        r.packet, frame,
        "a packet not for a VIP must not be modified"
    );
    // Same VIP, another port: not a service either.
    let frame = Frame::tcp(CIP, 40000, VIP, 443, SYN).build();
    assert_eq!(b.runner.run(&frame).unwrap().packet, frame);
    assert!(b.dp.connections().unwrap().is_empty());
}

#[test]
fn syn_is_scheduled_rewritten_with_valid_checksums_and_replies_come_from_the_vip() {
    let Some(mut b) = setup(1024) else { return };
    let svc = tcp_service(&mut b.dp, Scheduler::Rr, &[(R1, 1), (R2, 1)]);

    let (action, out) = run(&b, &Frame::tcp(CIP, 40000, VIP, 80, SYN));
    assert_eq!(
        action, XDP_PASS,
        "no route in the test namespace: handed to the kernel"
    );
    assert_eq!((out.src, out.sport), (CIP, 40000));
    assert_eq!((out.dst, out.dport), (R1, 8080));
    assert!(out.ip_checksum_ok && out.l4_checksum_ok, "{out:?}");
    assert_eq!(
        out.ttl, 64,
        "TTL is only decremented when we route the packet ourselves"
    );

    // The rest of the flow sticks to R1.
    let (_, out) = run(&b, &Frame::tcp(CIP, 40000, VIP, 80, ACK));
    assert_eq!((out.dst, out.dport), (R1, 8080));
    // A second flow goes to R2 (rr).
    let (_, out2) = run(&b, &Frame::tcp(CIP, 40001, VIP, 80, SYN));
    assert_eq!(out2.dst, R2);

    // The real server's answer leaves with the VIP as source.
    let (action, back) = run(&b, &Frame::tcp(R1, 8080, CIP, 40000, SYN | ACK));
    assert_eq!(action, XDP_PASS);
    assert_eq!((back.src, back.sport), (VIP, 80));
    assert_eq!((back.dst, back.dport), (CIP, 40000));
    assert!(back.ip_checksum_ok && back.l4_checksum_ok);

    let e = b.dp.service(&svc).unwrap();
    assert_eq!(e.stats.conns, 2);
    assert_eq!(e.stats.inpkts, 3);
    assert_eq!(e.stats.outpkts, 1);
    assert_eq!(e.stats.inbytes, 3 * 40);
    assert_eq!(e.dests[0].stats.conns, 1);
    assert_eq!(e.dests[1].stats.conns, 1);
}

#[test]
fn tcp_states_follow_ipvs() {
    let Some(mut b) = setup(1024) else { return };
    tcp_service(&mut b.dp, Scheduler::Rr, &[(R1, 1)]);
    let state = |b: &TestBed| {
        let c = b.dp.connections().unwrap();
        assert_eq!(c.len(), 1);
        (c[0].state, c[0].expires, c[0].active)
    };
    run(&b, &Frame::tcp(CIP, 40000, VIP, 80, SYN));
    assert_eq!(state(&b).0, "SYN_RECV");
    assert!(state(&b).1 <= 60);
    run(&b, &Frame::tcp(R1, 8080, CIP, 40000, SYN | ACK));
    run(&b, &Frame::tcp(CIP, 40000, VIP, 80, ACK));
    let (s, expires, active) = state(&b);
    assert_eq!(s, "ESTABLISHED");
    assert!(
        active && expires > 800 && expires <= 900,
        "tcp timeout 900: {expires}"
    );
    let e = &b.dp.services().unwrap()[0];
    assert_eq!((e.dests[0].active_conns, e.dests[0].inact_conns), (1, 0));
    run(&b, &Frame::tcp(CIP, 40000, VIP, 80, FIN | ACK));
    assert_eq!(state(&b).0, "CLOSE_WAIT");
    run(&b, &Frame::tcp(R1, 8080, CIP, 40000, FIN | ACK));
    assert_eq!(state(&b).0, "TIME_WAIT");
    let e = &b.dp.services().unwrap()[0];
    assert_eq!((e.dests[0].active_conns, e.dests[0].inact_conns), (0, 1));
    run(&b, &Frame::tcp(CIP, 40000, VIP, 80, RST));
    assert_eq!(state(&b).0, "CLOSE");
}

#[test]
fn non_syn_without_session_is_reset_and_services_without_reals_drop() {
    let Some(mut b) = setup(1024) else { return };
    tcp_service(&mut b.dp, Scheduler::Wrr, &[(R1, 0)]);
    // A segment of a connection we do not know: its sender gets a RST at the sequence number it
    // acknowledged, from the address it wrote to.
    for flags in [ACK, SYN | ACK] {
        let mut f = Frame::tcp(CIP, 40000, VIP, 80, flags);
        f.ack = 0x1234_5678;
        let r = b.runner.run(&f.build()).unwrap();
        assert_eq!(r.action, XDP_TX, "flags {flags:#x}");
        let out = decode(&r.packet).unwrap();
        assert_eq!(
            (out.src, out.sport, out.dst, out.dport),
            (VIP, 80, CIP, 40000)
        );
        assert!(out.ip_checksum_ok && out.l4_checksum_ok, "{out:?}");
        let tcp = &r.packet[34..];
        assert_eq!(tcp[13], RST, "a bare RST");
        assert_eq!(
            u32::from_be_bytes(tcp[4..8].try_into().unwrap()),
            0x1234_5678
        );
        assert_eq!(r.packet.len(), 14 + 20 + 20, "no payload, no options");
    }
    // Never a RST for a RST.
    assert_eq!(
        run(&b, &Frame::tcp(CIP, 40000, VIP, 80, RST | ACK)).0,
        XDP_DROP
    );
    // weight 0 only: quiesced, no new connection.
    assert_eq!(run(&b, &Frame::tcp(CIP, 40000, VIP, 80, SYN)).0, XDP_DROP);
    let c = b.dp.counters().unwrap();
    assert_eq!(c[ebpf_common::counter::RST_SENT as usize], 2);
    assert_eq!(c[ebpf_common::counter::DROP_NO_SESSION as usize], 1);
    assert_eq!(c[ebpf_common::counter::DROP_NO_DEST as usize], 1);
    assert!(b.dp.connections().unwrap().is_empty());
}

#[test]
fn quiesced_and_removed_reals_keep_their_established_connections() {
    let Some(mut b) = setup(1024) else { return };
    let svc = tcp_service(&mut b.dp, Scheduler::Rr, &[(R1, 1), (R2, 1)]);
    assert_eq!(run(&b, &Frame::tcp(CIP, 1, VIP, 80, SYN)).1.dst, R1);
    assert_eq!(run(&b, &Frame::tcp(CIP, 2, VIP, 80, SYN)).1.dst, R2);
    // Weight 0 on R1: its flow continues, new flows avoid it.
    let mut d = DestConfig::new(IpAddr::V4(R1), 8080);
    d.forward = Forward::Masq;
    d.weight = 0;
    b.dp.edit_dest(&svc, &d).unwrap();
    assert_eq!(run(&b, &Frame::tcp(CIP, 1, VIP, 80, ACK)).1.dst, R1);
    for port in 3..7 {
        assert_eq!(run(&b, &Frame::tcp(CIP, port, VIP, 80, SYN)).1.dst, R2);
    }
    // R2 removed: its flows still reach it, in both directions.
    b.dp.del_dest(&svc, IpAddr::V4(R2), 8080).unwrap();
    assert_eq!(run(&b, &Frame::tcp(CIP, 2, VIP, 80, ACK)).1.dst, R2);
    assert_eq!(run(&b, &Frame::tcp(R2, 8080, CIP, 2, ACK)).1.src, VIP);
    // ... and no new flow can be scheduled (R1 quiesced, R2 gone).
    assert_eq!(run(&b, &Frame::tcp(CIP, 9, VIP, 80, SYN)).0, XDP_DROP);
}

#[test]
fn udp_checksum_zero_stays_zero_and_udp_expires_with_its_timeout() {
    let Some(mut b) = setup(1024) else { return };
    service(
        &mut b.dp,
        Protocol::Udp,
        53,
        Scheduler::Rr,
        &[(R1, 1), (R2, 1)],
    );
    let mut frame = Frame::udp(CIP, 5353, VIP, 53, b"query").build();
    frame[14 + 20 + 6] = 0;
    frame[14 + 20 + 7] = 0;
    let out = b.runner.run(&frame).unwrap();
    assert_eq!(&out.packet[14 + 20 + 6..14 + 20 + 8], &[0, 0]);
    assert_eq!(decode(&out.packet).unwrap().dst, R1);

    b.dp.set_timeouts(&Timeouts {
        tcp: 0,
        tcp_fin: 0,
        udp: 1,
    })
    .unwrap();
    assert_eq!(b.dp.timeouts().unwrap().udp, 1);
    assert_eq!(
        b.dp.timeouts().unwrap().tcp,
        900,
        "0 leaves a timeout unchanged"
    );
    // The existing entry still has the 300 s it was created with; a new flow gets 1 s.
    let (_, out) = run(&b, &Frame::udp(CIP, 6000, VIP, 53, b"q"));
    assert_eq!(out.dst, R2);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let left: Vec<_> = b.dp.connections().unwrap();
    assert_eq!(left.len(), 1, "the 1 s entry expired: {left:?}");
    // Expired: the same flow is scheduled afresh (rr moves on to R1).
    let (_, out) = run(&b, &Frame::udp(CIP, 6000, VIP, 53, b"q"));
    assert_eq!(out.dst, R1);
}

#[test]
fn wrr_follows_weights_exactly_on_one_cpu() {
    let Some(mut b) = setup(4096) else { return };
    let svc = tcp_service(&mut b.dp, Scheduler::Wrr, &[(R1, 3), (R2, 1)]);
    let mut to_r1 = 0;
    for port in 0..400u16 {
        if run(&b, &Frame::tcp(CIP, 10000 + port, VIP, 80, SYN)).1.dst == R1 {
            to_r1 += 1;
        }
    }
    // Test runs execute on the calling CPU; allow for a migration between CPUs mid-test.
    assert!(
        (290..=310).contains(&to_r1),
        "3:1 over 400 connections: {to_r1}"
    );
    let e = b.dp.service(&svc).unwrap();
    assert_eq!(e.dests[0].stats.conns + e.dests[1].stats.conns, 400);
}

#[test]
fn malformed_and_fragmented_packets_go_to_the_kernel_unchanged() {
    let Some(mut b) = setup(1024) else { return };
    tcp_service(&mut b.dp, Scheduler::Rr, &[(R1, 1)]);
    let good = Frame::tcp(CIP, 40000, VIP, 80, SYN).build();
    // Truncated TCP header.
    let short = &good[..14 + 20 + 10];
    let r = b.runner.run(short).unwrap();
    assert_eq!((r.action, r.packet.as_slice()), (XDP_PASS, short));
    // IP total length beyond the frame.
    let mut long = good.clone();
    long[16] = 0x05;
    assert_eq!(b.runner.run(&long).unwrap().packet, long);
    // A later fragment (offset 8, MF) whose first fragment was not seen (frag_path.rs has
    // the fragments that are forwarded).
    let mut frag = good.clone();
    frag[20] = 0x20;
    frag[21] = 1;
    xlvs_tests::packet::set_ipv4_checksum(&mut frag);
    assert_eq!(b.runner.run(&frag).unwrap().packet, frag);
    let c = b.dp.counters().unwrap();
    assert_eq!(c[ebpf_common::counter::PASS_MALFORMED as usize], 2);
    assert_eq!(c[ebpf_common::counter::FRAG_UNTRACKED as usize], 1);
    assert!(b.dp.connections().unwrap().is_empty());
}

#[test]
fn a_full_connection_table_evicts_instead_of_failing() {
    let Some(mut b) = setup(64) else { return };
    tcp_service(&mut b.dp, Scheduler::Rr, &[(R1, 1)]);
    for port in 0..2000u16 {
        let (action, out) = run(&b, &Frame::tcp(CIP, 20000 + port, VIP, 80, SYN));
        assert_eq!((action, out.dst), (XDP_PASS, R1));
    }
    let c = b.dp.counters().unwrap();
    assert_eq!(c[ebpf_common::counter::CONN_NEW as usize], 2000);
    assert_eq!(c[ebpf_common::counter::CONN_INSERT_FAIL as usize], 0);
    // The LRU keeps some headroom beyond the capacity (see dataplane::fill); these NAT
    // connections take one entry each (the capacity counts two), so up to twice as many fit.
    let most = 2 * 64 + dataplane::fill::lru_headroom() as usize;
    assert!(b.dp.connections().unwrap().len() <= most);
    assert_eq!(b.dp.conn_table_size(), 64);
}

#[test]
fn table_operations_report_ipvs_errors_and_change_nothing_on_failure() {
    let Some(mut b) = setup(1024) else { return };
    let svc = tcp_service(&mut b.dp, Scheduler::Rr, &[(R1, 1)]);
    let cfg = ServiceConfig::new(svc);
    assert_eq!(
        b.dp.add_service(&cfg).unwrap_err().to_string(),
        "Service already exists"
    );
    let other = ServiceAddr::Inet {
        proto: Protocol::Udp,
        addr: IpAddr::V4(VIP),
        port: 80,
    };
    assert_eq!(
        b.dp.del_service(&other).unwrap_err().to_string(),
        "No such service"
    );
    assert_eq!(
        b.dp.edit_service(&ServiceConfig::new(other))
            .unwrap_err()
            .to_string(),
        "No such service"
    );
    let d = DestConfig::new(IpAddr::V4(R1), 8080);
    assert_eq!(
        b.dp.add_dest(&other, &d).unwrap_err().to_string(),
        "Service not defined"
    );
    assert_eq!(
        b.dp.add_dest(&svc, &d).unwrap_err().to_string(),
        "Destination already exists"
    );
    let d2 = DestConfig::new(IpAddr::V4(R2), 8080);
    assert_eq!(
        b.dp.edit_dest(&svc, &d2).unwrap_err().to_string(),
        "No such destination"
    );
    assert_eq!(
        b.dp.del_dest(&svc, IpAddr::V4(R2), 8080)
            .unwrap_err()
            .to_string(),
        "No such destination"
    );
    let mut pe = ServiceConfig::new(svc);
    pe.pe = Some("nope".into());
    assert_eq!(
        b.dp.edit_service(&pe).unwrap_err().to_string(),
        "Scheduler or persistence engine not found"
    );
    let all = b.dp.services().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].config.scheduler, Scheduler::Rr);
    assert_eq!(all[0].dests.len(), 1);

    // A second handle (as another process would) sees the same tables and may flush them.
    let mut other_handle = Dataplane::open(&b.opts).unwrap();
    assert_eq!(other_handle.services().unwrap(), all);
    other_handle.flush().unwrap();
    assert!(b.dp.services().unwrap().is_empty());
}

#[test]
fn rates_are_estimated_from_the_counters_over_time() {
    let Some(mut b) = setup(1024) else { return };
    let svc = service(&mut b.dp, Protocol::Udp, 53, Scheduler::Rr, &[(R1, 1)]);
    // First listing: the estimator's first sample, no rate yet (as IPVS right after a change).
    assert_eq!(b.dp.service(&svc).unwrap().rates, Stats::default());
    for port in 0..200u16 {
        run(&b, &Frame::udp(CIP, 1000 + port, VIP, 53, b"q"));
    }
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let e = b.dp.service(&svc).unwrap();
    // 200 conns (and packets) in ~2.1 s = ~95/s; the first EWMA step publishes a quarter of it.
    assert!((20..=26).contains(&e.rates.conns), "{:?}", e.rates);
    assert_eq!(e.rates.conns, e.rates.inpkts);
    assert!(
        e.rates.inbytes.abs_diff(e.rates.inpkts * 29) <= 29,
        "29-byte packets: {:?}",
        e.rates
    );
    assert_eq!(e.dests[0].rates, e.rates);
    // A second process continues the same estimate (the state is pinned).
    let mut other = Dataplane::open(&b.opts).unwrap();
    assert_eq!(other.service(&svc).unwrap().rates, e.rates);
}

#[test]
fn nat_forwarding_sets_next_hop_macs_and_decrements_ttl() {
    let Some(mut b) = setup_in(1024, true) else {
        return;
    };
    tcp_service(&mut b.dp, Scheduler::Rr, &[(R1, 1)]);
    let out = b
        .runner
        .run_on(&Frame::tcp(CIP, 40000, VIP, 80, SYN).build(), ifindex_b0())
        .unwrap();
    assert_eq!(
        out.action, XDP_TX,
        "next hop resolved on the ingress interface: XDP_TX"
    );
    assert_eq!(
        &out.packet[0..6],
        &[2, 0, 0, 0, 2, 2],
        "destination MAC of 198.18.2.2"
    );
    let d = decode(&out.packet).unwrap();
    assert_eq!((d.dst, d.dport, d.ttl), (R1, 8080, 63));
    assert!(d.ip_checksum_ok && d.l4_checksum_ok);
    let back = b
        .runner
        .run_on(
            &Frame::tcp(R1, 8080, CIP, 40000, SYN | ACK).build(),
            ifindex_b0(),
        )
        .unwrap();
    assert_eq!(back.action, XDP_TX);
    assert_eq!(
        &back.packet[0..6],
        &[2, 0, 0, 0, 1, 2],
        "destination MAC of the client"
    );
    let d = decode(&back.packet).unwrap();
    assert_eq!((d.src, d.sport, d.ttl), (VIP, 80, 63));
    // The next hops are cached: two lookups, then none for more packets.
    for _ in 0..5 {
        b.runner
            .run_on(&Frame::tcp(CIP, 40000, VIP, 80, ACK).build(), ifindex_b0())
            .unwrap();
        b.runner
            .run_on(&Frame::tcp(R1, 8080, CIP, 40000, ACK).build(), ifindex_b0())
            .unwrap();
    }
    assert_eq!(b.counter(ebpf_common::counter::FIB_LOOKUP), 2);
}

#[test]
fn direct_routing_changes_only_the_macs() {
    let Some(mut b) = setup_in(1024, true) else {
        return;
    };
    let svc = service_fwd(
        &mut b.dp,
        Protocol::Tcp,
        80,
        Scheduler::Rr,
        Forward::Route,
        &[(R1, 1), (R2, 1)],
    );
    let syn = Frame::tcp(CIP, 40000, VIP, 80, SYN).build();
    let out = b.runner.run_on(&syn, ifindex_b0()).unwrap();
    assert_eq!(out.action, XDP_TX);
    assert_eq!(
        &out.packet[0..6],
        &[2, 0, 0, 0, 2, 2],
        "to the first real's MAC"
    );
    assert_eq!(
        &out.packet[12..],
        &syn[12..],
        "IP packet untouched (VIP, ports, TTL, checksums)"
    );
    let out = b
        .runner
        .run_on(&Frame::tcp(CIP, 40001, VIP, 80, SYN).build(), ifindex_b0())
        .unwrap();
    assert_eq!(
        &out.packet[0..6],
        &[2, 0, 0, 0, 3, 2],
        "rr: the second real"
    );
    // Replies do not come back through the director: INPUT-ONLY states, no reply entry.
    b.runner
        .run_on(&Frame::tcp(CIP, 40000, VIP, 80, ACK).build(), ifindex_b0())
        .unwrap();
    let conns = b.dp.connections().unwrap();
    let c = conns.iter().find(|c| c.client.port() == 40000).unwrap();
    assert_eq!((c.state, c.forward), ("ESTABLISHED", Forward::Route));
    assert_eq!(c.dest, "198.18.2.2:80".parse().unwrap());
    b.runner
        .run_on(
            &Frame::tcp(CIP, 40000, VIP, 80, FIN | ACK).build(),
            ifindex_b0(),
        )
        .unwrap();
    let conns = b.dp.connections().unwrap();
    assert_eq!(
        conns
            .iter()
            .find(|c| c.client.port() == 40000)
            .unwrap()
            .state,
        "FIN_WAIT"
    );
    assert_eq!(b.dp.service(&svc).unwrap().stats.inpkts, 4);
}

#[test]
fn destinations_of_methods_not_built_yet_are_not_misforwarded() {
    let Some(mut b) = setup(1024) else { return };
    // FULLNAT without local addresses cannot work; a GUE tunnel without a route to its real
    // is not sent (no next hop).
    service_fwd(
        &mut b.dp,
        Protocol::Tcp,
        80,
        Scheduler::Rr,
        Forward::FullNat,
        &[(R1, 1)],
    );
    let gue = ServiceAddr::Inet {
        proto: Protocol::Tcp,
        addr: IpAddr::V4(VIP),
        port: 81,
    };
    b.dp.add_service(&ServiceConfig::new(gue)).unwrap();
    let mut d = DestConfig::new(IpAddr::V4(R1), 81);
    d.forward = Forward::Tunnel;
    d.tunnel.kind = TunnelType::Gue;
    d.tunnel.port = 6080;
    b.dp.add_dest(&gue, &d).unwrap();
    assert_eq!(run(&b, &Frame::tcp(CIP, 40000, VIP, 80, SYN)).0, XDP_DROP);
    assert_eq!(run(&b, &Frame::tcp(CIP, 40000, VIP, 81, SYN)).0, XDP_DROP);
    let c = b.dp.counters().unwrap();
    assert_eq!(c[ebpf_common::counter::DROP_NO_NEIGH as usize], 1);
    assert_eq!(c[ebpf_common::counter::DROP_NO_LADDR as usize], 1);
    assert_eq!(c[ebpf_common::counter::FWD_TUNNEL as usize], 0);
}

/// The real a new TCP connection from `client` is sent to (a fresh source port each call).
fn real_for(b: &TestBed, client: Ipv4Addr, port: u16) -> Option<Ipv4Addr> {
    let (action, out) = run(b, &Frame::tcp(client, port, VIP, 80, SYN));
    (action == XDP_PASS).then_some(out.dst)
}

fn client(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(198, 19, (i >> 8) as u8, i as u8)
}

#[test]
fn sh_hashes_the_client_address_like_ipvs() {
    let Some(mut b) = setup(4096) else { return };
    let reals = [R1, R2, Ipv4Addr::new(198, 18, 2, 3)];
    let svc = service(
        &mut b.dp,
        Protocol::Tcp,
        80,
        Scheduler::Sh,
        &[(reals[0], 1), (reals[1], 2), (reals[2], 1)],
    );
    // IPVS' bucket layout for weights 1,2,1 and its hash of the client address.
    let layout: Vec<usize> = dataplane::sched::build_table(
        Scheduler::Sh,
        &[1, 2, 1]
            .iter()
            .enumerate()
            .map(|(i, w)| dataplane::sched::Member {
                id: i as u32,
                weight: *w,
                seed: 0,
            })
            .collect::<Vec<_>>(),
        false,
        false,
    )
    .into_iter()
    .map(|i| i as usize)
    .collect();
    let mut seen = [0usize; 3];
    for i in 0..300u32 {
        let c = client(i);
        let bucket = ebpf_common::sh_bucket(u32::from(c), 0, 0) as usize;
        let want = reals[layout[bucket]];
        let got = real_for(&b, c, 1000 + i as u16).unwrap();
        assert_eq!(got, want, "client {c}");
        // The same client on another port: the same real.
        assert_eq!(real_for(&b, c, 30000 + i as u16), Some(want));
        seen[layout[bucket]] += 1;
    }
    assert!(seen.iter().all(|n| *n > 30), "{seen:?}");

    // Quiesce the first real: without sh-fallback its clients get nothing; with it they move.
    let mut d = DestConfig::new(IpAddr::V4(reals[0]), 8080);
    d.forward = Forward::Masq;
    d.weight = 0;
    b.dp.edit_dest(&svc, &d).unwrap();
    let victim = (0..300u32)
        .map(client)
        .find(|c| layout[ebpf_common::sh_bucket(u32::from(*c), 0, 0) as usize] == 0)
        .unwrap();
    assert_eq!(
        real_for(&b, victim, 50000),
        None,
        "quiesced, no fallback: dropped"
    );
    let mut cfg = b.dp.service(&svc).unwrap().config;
    cfg.sched_flags = ebpf_common::SVC_F_SCHED1;
    b.dp.edit_service(&cfg).unwrap();
    let moved = real_for(&b, victim, 50001).unwrap();
    assert_ne!(moved, reals[0]);
}

#[test]
fn mh_keeps_clients_in_place_when_another_real_goes() {
    let Some(mut b) = setup(1 << 16) else { return };
    let reals: Vec<Ipv4Addr> = (2..6).map(|h| Ipv4Addr::new(198, 18, 2, h)).collect();
    let weights: Vec<(Ipv4Addr, i32)> = reals.iter().map(|r| (*r, 1)).collect();
    let svc = service(&mut b.dp, Protocol::Tcp, 80, Scheduler::Mh, &weights);
    let before: Vec<Ipv4Addr> = (0..1000u32)
        .map(|i| real_for(&b, client(i), 1000).unwrap())
        .collect();
    for r in &reals {
        let n = before.iter().filter(|x| *x == r).count();
        assert!((180..=320).contains(&n), "{r}: {n} of 1000 clients");
    }
    b.dp.del_dest(&svc, IpAddr::V4(reals[1]), 8080).unwrap();
    let after: Vec<Ipv4Addr> = (0..1000u32)
        .map(|i| real_for(&b, client(i), 2000).unwrap())
        .collect();
    let moved_elsewhere = before
        .iter()
        .zip(&after)
        .filter(|(a, b)| **a != reals[1] && a != b)
        .count();
    assert!(
        moved_elsewhere <= 1000 / 4 / 4,
        "{moved_elsewhere} clients of kept reals moved"
    );
    assert!(after.iter().all(|r| *r != reals[1]));
}

fn persistent_service(
    b: &mut TestBed,
    port: u16,
    timeout: u32,
    netmask: u8,
    reals: &[Ipv4Addr],
) -> ServiceAddr {
    let cfg = ServiceConfig {
        scheduler: Scheduler::Rr,
        persistent: Some(timeout),
        netmask,
        ..ServiceConfig::new(services::inet(Protocol::Tcp, VIP, port))
    };
    // Port 0 for a port-zero service: the real keeps the client's destination port.
    let rport = if port == 0 { 0 } else { 8080 };
    let reals: Vec<DestConfig> = reals
        .iter()
        .map(|r| services::real(*r, rport, Forward::Masq))
        .collect();
    services::add(&mut b.dp, &cfg, &reals).unwrap()
}

#[test]
fn persistence_keeps_a_client_network_on_one_real_like_ipvs_templates() {
    let Some(mut b) = setup(4096) else { return };
    let svc = persistent_service(&mut b, 80, 300, 24, &[R1, R2]);
    let first = real_for(&b, Ipv4Addr::new(198, 19, 1, 10), 1000).unwrap();
    for port in 1001..1011 {
        // Same client, and its /24 neighbours: all on the same real (rr would alternate).
        assert_eq!(
            real_for(&b, Ipv4Addr::new(198, 19, 1, 10), port),
            Some(first)
        );
        assert_eq!(
            real_for(&b, Ipv4Addr::new(198, 19, 1, port as u8), port),
            Some(first)
        );
    }
    let other = real_for(&b, Ipv4Addr::new(198, 19, 2, 10), 1000).unwrap();
    assert_ne!(
        other, first,
        "a new client network is scheduled (rr: the other real)"
    );

    // Templates are listed as IPVS shows them, and counted per real.
    let templates: Vec<_> =
        b.dp.connections()
            .unwrap()
            .into_iter()
            .filter(|c| c.proto == 0)
            .collect();
    assert_eq!(templates.len(), 2);
    let t = templates
        .iter()
        .find(|t| t.client.ip() == IpAddr::V4(Ipv4Addr::new(198, 19, 1, 0)))
        .unwrap();
    assert_eq!(
        (t.state, t.virt, t.dest.ip()),
        (
            "NONE",
            "198.18.100.1:80".parse().unwrap(),
            IpAddr::V4(first)
        )
    );
    assert!(t.expires > 290 && t.expires <= 300);
    let e = b.dp.service(&svc).unwrap();
    assert_eq!(e.dests.iter().map(|d| d.persist_conns).sum::<u32>(), 2);

    // A quiesced real keeps its persistent clients (IPVS default); a removed one loses them.
    let mut d = DestConfig::new(IpAddr::V4(first), 8080);
    d.forward = Forward::Masq;
    d.weight = 0;
    b.dp.edit_dest(&svc, &d).unwrap();
    assert_eq!(
        real_for(&b, Ipv4Addr::new(198, 19, 1, 99), 2000),
        Some(first)
    );
    b.dp.del_dest(&svc, IpAddr::V4(first), 8080).unwrap();
    assert_eq!(
        real_for(&b, Ipv4Addr::new(198, 19, 1, 99), 2001),
        Some(other)
    );
}

#[test]
fn persistence_templates_expire_after_their_timeout() {
    let Some(mut b) = setup(4096) else { return };
    persistent_service(&mut b, 80, 1, 32, &[R1, R2]);
    let c = Ipv4Addr::new(198, 19, 1, 10);
    let first = real_for(&b, c, 1000).unwrap();
    assert_eq!(real_for(&b, c, 1001), Some(first));
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert!(
        b.dp.connections().unwrap().iter().all(|c| c.proto != 0),
        "template expired"
    );
    // Rescheduled: rr moves on to the other real.
    assert_ne!(real_for(&b, c, 1002), Some(first));
}

#[test]
fn port_zero_persistent_services_take_every_port_and_keep_it() {
    let Some(mut b) = setup(4096) else { return };
    persistent_service(&mut b, 0, 300, 32, &[R1, R2]);
    let c = Ipv4Addr::new(198, 19, 1, 10);
    let mut reals = Vec::new();
    for vport in [80u16, 443, 8443] {
        let (action, out) = run(&b, &Frame::tcp(c, 5000 + vport, VIP, vport, SYN));
        assert_eq!(action, XDP_PASS);
        assert_eq!(out.dport, vport, "the real keeps the destination port");
        reals.push(out.dst);
    }
    assert!(reals.iter().all(|r| *r == reals[0]), "{reals:?}");
    // A port-zero service does not capture other VIPs.
    let other = Frame::tcp(c, 6000, Ipv4Addr::new(198, 18, 100, 2), 80, SYN).build();
    assert_eq!(b.runner.run(&other).unwrap().packet, other);
}

#[test]
fn ipv6_nat_and_dr_rewrite_with_valid_checksums() {
    use xlvs_tests::packet::{Frame6, decode6};
    let Some(mut b) = setup(1024) else { return };
    let vip6: IpAddr = "2001:db8:100::1".parse().unwrap();
    for (port, forward) in [(80u16, Forward::Masq), (443, Forward::Route)] {
        let addr = ServiceAddr::Inet {
            proto: Protocol::Tcp,
            addr: vip6,
            port,
        };
        let mut cfg = ServiceConfig::new(addr);
        cfg.scheduler = Scheduler::Rr;
        b.dp.add_service(&cfg).unwrap();
        let mut d = DestConfig::new(
            "2001:db8:2::2".parse().unwrap(),
            if forward == Forward::Masq { 8080 } else { port },
        );
        d.forward = forward;
        b.dp.add_dest(&addr, &d).unwrap();
    }
    // NAT: destination rewritten, checksum still right; the reply leaves from the VIP.
    let syn = Frame6::tcp("2001:db8:1::2", 40000, "2001:db8:100::1", 80, SYN).build();
    let out = b.runner.run(&syn).unwrap();
    assert_eq!(out.action, XDP_PASS);
    let d = decode6(&out.packet).unwrap();
    assert_eq!(
        (d.dst.to_string().as_str(), d.dport),
        ("2001:db8:2::2", 8080)
    );
    assert!(d.l4_checksum_ok);
    let reply = Frame6::tcp("2001:db8:2::2", 8080, "2001:db8:1::2", 40000, SYN | ACK).build();
    let d = decode6(&b.runner.run(&reply).unwrap().packet).unwrap();
    assert_eq!(
        (d.src.to_string().as_str(), d.sport),
        ("2001:db8:100::1", 80)
    );
    assert!(d.l4_checksum_ok);
    // DR: untouched (no neighbour in this namespace: dropped rather than misdelivered).
    let syn = Frame6::tcp("2001:db8:1::2", 40001, "2001:db8:100::1", 443, SYN).build();
    assert_eq!(b.runner.run(&syn).unwrap().action, XDP_DROP);
    let conns = b.dp.connections().unwrap();
    assert_eq!(conns.len(), 2);
    let c = conns.iter().find(|c| c.virt.port() == 80).unwrap();
    assert_eq!(c.client, "[2001:db8:1::2]:40000".parse().unwrap());
    assert_eq!(c.dest, "[2001:db8:2::2]:8080".parse().unwrap());
    assert_eq!(c.state, "SYN_RECV");
    // Neighbour discovery and other ICMPv6 always reach the kernel untouched.
    let mut icmp6 = Frame6::tcp("2001:db8:1::2", 1, "2001:db8:100::1", 80, SYN).build();
    icmp6[20] = 58;
    assert_eq!(b.runner.run(&icmp6).unwrap().packet, icmp6);
}

#[test]
fn ipv6_forwarding_uses_the_v6_fib_and_decrements_the_hop_limit() {
    use xlvs_tests::packet::{Frame6, decode6};
    let Some(mut b) = setup_in(1024, true) else {
        return;
    };
    let addr = ServiceAddr::Inet {
        proto: Protocol::Tcp,
        addr: "2001:db8:100::1".parse().unwrap(),
        port: 80,
    };
    let mut cfg = ServiceConfig::new(addr);
    cfg.scheduler = Scheduler::Rr;
    b.dp.add_service(&cfg).unwrap();
    let mut d = DestConfig::new("2001:db8:2::2".parse().unwrap(), 8080);
    d.forward = Forward::Masq;
    b.dp.add_dest(&addr, &d).unwrap();
    let syn = Frame6::tcp("2001:db8:1::2", 40000, "2001:db8:100::1", 80, SYN).build();
    let out = b.runner.run_on(&syn, ifindex_b0()).unwrap();
    assert_eq!(
        out.action,
        XDP_TX,
        "counters {:?}",
        b.dp.counters().unwrap()
    );
    assert_eq!(
        &out.packet[0..6],
        &[2, 0, 0, 6, 2, 2],
        "MAC of 2001:db8:2::2"
    );
    let d = decode6(&out.packet).unwrap();
    assert_eq!((d.hop_limit, d.dport), (63, 8080));
    assert!(d.l4_checksum_ok);
    let reply = Frame6::tcp("2001:db8:2::2", 8080, "2001:db8:1::2", 40000, SYN | ACK).build();
    let back = b.runner.run_on(&reply, ifindex_b0()).unwrap();
    assert_eq!(back.action, XDP_TX);
    assert_eq!(&back.packet[0..6], &[2, 0, 0, 6, 1, 2], "MAC of the client");
    assert_eq!(decode6(&back.packet).unwrap().sport, 80);
}

#[test]
fn icmp_errors_about_a_connection_reach_the_other_side_translated() {
    use xlvs_tests::packet::{decode_icmp, icmp_error};
    let Some(mut b) = setup(1024) else { return };
    tcp_service(&mut b.dp, Scheduler::Rr, &[(R1, 1)]);
    run(&b, &Frame::tcp(CIP, 40000, VIP, 80, SYN));
    // What the client saw from us (after the reply rewrite), quoted by a router on its side.
    let reply = b
        .runner
        .run(&Frame::tcp(R1, 8080, CIP, 40000, SYN | ACK).build())
        .unwrap()
        .packet;
    let router = Ipv4Addr::new(198, 18, 1, 254);
    let frag_needed = icmp_error(router, VIP, 3, 4, &reply[14..]);
    let out = b.runner.run(&frag_needed).unwrap();
    let d = decode_icmp(&out.packet).unwrap();
    assert_eq!((d.src, d.dst), (router, R1), "to the real server");
    assert_eq!(
        (d.quoted_src, d.quoted_sport),
        (R1, 8080),
        "it recognises its own packet"
    );
    assert_eq!((d.quoted_dst, d.quoted_dport), (CIP, 40000));
    assert!(d.checksums_ok, "{d:?}");

    // The real server refuses a datagram of the client's: the error reaches the client from the VIP.
    let forwarded = b
        .runner
        .run(&Frame::tcp(CIP, 40000, VIP, 80, ACK).build())
        .unwrap()
        .packet;
    let unreachable = icmp_error(R1, CIP, 3, 3, &forwarded[14..]);
    let d = decode_icmp(&b.runner.run(&unreachable).unwrap().packet).unwrap();
    assert_eq!((d.src, d.dst), (VIP, CIP));
    assert_eq!((d.quoted_src, d.quoted_sport), (CIP, 40000));
    assert_eq!(
        (d.quoted_dst, d.quoted_dport),
        (VIP, 80),
        "the client's own packet, as it sent it"
    );
    assert!(d.checksums_ok, "{d:?}");
    assert_eq!(b.counter(ebpf_common::counter::ICMP_TRANSLATED), 2);

    // An error about no connection of ours, and an echo request: untouched.
    let stranger = Frame::tcp(CIP, 1, Ipv4Addr::new(198, 18, 9, 9), 80, SYN).build();
    let other = icmp_error(router, CIP, 3, 1, &stranger[14..]);
    assert_eq!(b.runner.run(&other).unwrap().packet, other);
    let mut echo = icmp_error(router, VIP, 8, 0, &stranger[14..]);
    echo[34] = 8;
    assert_eq!(b.runner.run(&echo).unwrap().packet, echo);
}

#[test]
fn a_batch_publishes_its_scheduler_tables_when_it_ends() {
    let Some(mut b) = setup(1024) else { return };
    b.dp.hold_lock().unwrap();
    let svc = tcp_service(&mut b.dp, Scheduler::Rr, &[(R1, 1), (R2, 1)]);
    // During the batch the service exists but its table is not built yet: no real to pick.
    assert_eq!(run(&b, &Frame::tcp(CIP, 1, VIP, 80, SYN)).0, XDP_DROP);
    b.dp.release_lock().unwrap();
    assert_eq!(run(&b, &Frame::tcp(CIP, 2, VIP, 80, SYN)).1.dst, R1);
    assert_eq!(run(&b, &Frame::tcp(CIP, 3, VIP, 80, SYN)).1.dst, R2);
    assert_eq!(b.dp.service(&svc).unwrap().dests.len(), 2);
}

#[test]
fn ipip_tunnel_reals_get_the_original_packet_inside_an_outer_header_from_us() {
    let Some(mut b) = setup_in(1024, true) else {
        return;
    };
    service_fwd(
        &mut b.dp,
        Protocol::Tcp,
        80,
        Scheduler::Rr,
        Forward::Tunnel,
        &[(R1, 1)],
    );
    let syn = Frame::tcp(CIP, 40000, VIP, 80, SYN).build();
    let out = b.runner.run_on(&syn, ifindex_b0()).unwrap();
    assert_eq!(
        out.action,
        XDP_TX,
        "counters {:?}",
        b.dp.counters().unwrap()
    );
    let p = &out.packet;
    assert_eq!(p.len(), syn.len() + 20);
    assert_eq!(&p[0..6], &[2, 0, 0, 0, 2, 2], "to the real's MAC");
    assert_eq!(&p[12..14], &[0x08, 0x00]);
    let outer = &p[14..34];
    assert_eq!((outer[0], outer[9]), (0x45, 4), "IPv4 carrying IPIP");
    assert_eq!(
        &outer[12..16],
        &[198, 18, 2, 1],
        "our address towards the real"
    );
    assert_eq!(&outer[16..20], &[198, 18, 2, 2]);
    assert_eq!(
        u16::from_be_bytes([outer[2], outer[3]]) as usize,
        syn.len() - 14 + 20
    );
    let sum: u32 = outer
        .chunks(2)
        .map(|w| u16::from_be_bytes([w[0], w[1]]) as u32)
        .sum();
    assert_eq!((sum & 0xffff) + (sum >> 16), 0xffff, "outer checksum");
    // The client's packet, its TTL one lower as IPVS sends it (checksum updated).
    let mut inner = syn[14..].to_vec();
    inner[8] -= 1;
    let check = u16::from_be_bytes([inner[10], inner[11]]) + 0x100; // TTL is the high byte
    inner[10..12].copy_from_slice(&check.to_be_bytes());
    assert_eq!(&p[34..], &inner[..], "the client's packet inside");
    assert_eq!(outer[8], 63, "outer TTL = inner TTL");
    // The rest of the flow follows (INPUT-ONLY states: replies go straight to the client).
    let ack = b
        .runner
        .run_on(&Frame::tcp(CIP, 40000, VIP, 80, ACK).build(), ifindex_b0())
        .unwrap();
    assert_eq!(ack.action, XDP_TX);
    let c = b.dp.connections().unwrap();
    assert_eq!((c[0].state, c[0].forward), ("ESTABLISHED", Forward::Tunnel));
}

#[test]
fn icmpv6_errors_about_a_connection_reach_the_other_side_translated() {
    use std::net::Ipv6Addr;
    use xlvs_tests::packet::{Frame6, decode_icmp6, icmp6_error};
    let Some(mut b) = setup(1024) else { return };
    let (vip6, cip6, rip6): (Ipv6Addr, Ipv6Addr, Ipv6Addr) = (
        "2001:db8:100::1".parse().unwrap(),
        "2001:db8:1::2".parse().unwrap(),
        "2001:db8:2::2".parse().unwrap(),
    );
    let addr = ServiceAddr::Inet {
        proto: Protocol::Tcp,
        addr: IpAddr::V6(vip6),
        port: 80,
    };
    let mut cfg = ServiceConfig::new(addr);
    cfg.scheduler = Scheduler::Rr;
    b.dp.add_service(&cfg).unwrap();
    let mut d = DestConfig::new(IpAddr::V6(rip6), 8080);
    d.forward = Forward::Masq;
    b.dp.add_dest(&addr, &d).unwrap();
    let s = |a: &Ipv6Addr| a.to_string();
    b.runner
        .run(&Frame6::tcp(&s(&cip6), 40000, &s(&vip6), 80, SYN).build())
        .unwrap();
    // The reply as the client saw it (from the VIP), quoted in a router's "packet too big".
    let reply = b
        .runner
        .run(&Frame6::tcp(&s(&rip6), 8080, &s(&cip6), 40000, SYN | ACK).build())
        .unwrap()
        .packet;
    let router: Ipv6Addr = "2001:db8:1::fe".parse().unwrap();
    let too_big = icmp6_error(router, vip6, 2, 0, &reply[14..]);
    let d = decode_icmp6(&b.runner.run(&too_big).unwrap().packet).unwrap();
    assert_eq!((d.src, d.dst), (router, rip6), "to the real server");
    assert_eq!((d.quoted_src, d.quoted_sport), (rip6, 8080));
    assert_eq!((d.quoted_dst, d.quoted_dport), (cip6, 40000));
    assert!(d.checksum_ok, "{d:?}");
    // The real refuses a segment of the client's: the error reaches the client from the VIP.
    let forwarded = b
        .runner
        .run(&Frame6::tcp(&s(&cip6), 40000, &s(&vip6), 80, ACK).build())
        .unwrap()
        .packet;
    let unreachable = icmp6_error(rip6, cip6, 1, 4, &forwarded[14..]);
    let d = decode_icmp6(&b.runner.run(&unreachable).unwrap().packet).unwrap();
    assert_eq!((d.src, d.dst), (vip6, cip6));
    assert_eq!((d.quoted_src, d.quoted_sport), (cip6, 40000));
    assert_eq!((d.quoted_dst, d.quoted_dport), (vip6, 80));
    assert!(d.checksum_ok, "{d:?}");
    assert_eq!(b.counter(ebpf_common::counter::ICMP_TRANSLATED), 2);
    // About no connection of ours, or not an error (an echo request): untouched.
    let stranger = Frame6::tcp(&s(&cip6), 1, "2001:db8:9::9", 80, SYN).build();
    let other = icmp6_error(router, cip6, 1, 0, &stranger[14..]);
    assert_eq!(b.runner.run(&other).unwrap().packet, other);
    let echo = icmp6_error(router, vip6, 128, 0, &stranger[14..]);
    assert_eq!(b.runner.run(&echo).unwrap().packet, echo);
}

#[test]
fn a_missed_tail_call_is_counted_and_the_packet_dropped() {
    let Some(mut b) = setup(1024) else { return };
    tcp_service(&mut b.dp, Scheduler::Rr, &[(R1, 1)]);
    // An empty slot (a loader fault, or a reload in progress): the new-connection stage is
    // missing, so the jump to it fails.
    let pin = dataplane::loader::running_jump_pin(&b.opts.pin_dir).expect("running version");
    let jump = aya::maps::MapData::from_pin(pin).expect("pinned JUMP");
    let mut jump = aya::maps::ProgramArray::try_from(aya::maps::Map::ProgramArray(jump))
        .expect("a program array");
    jump.clear_index(&ebpf_common::Stage::New.slot())
        .expect("clear the slot");
    let before = b.dp.counters().unwrap();
    assert_eq!(run(&b, &Frame::tcp(CIP, 40000, VIP, 80, SYN)).0, XDP_DROP);
    let after = b.dp.counters().unwrap();
    let delta = |i: u32| after[i as usize] - before[i as usize];
    assert_eq!(delta(ebpf_common::counter::DROP_MISSED_TAIL_CALL), 1);
    // Counted as that alone: not as a pass, a new connection or another drop.
    for (i, name) in ebpf_common::counter::NAMES {
        if i != ebpf_common::counter::DROP_MISSED_TAIL_CALL {
            assert_eq!(delta(i), 0, "{name}");
        }
    }
    assert!(b.dp.connections().unwrap().is_empty());
}
