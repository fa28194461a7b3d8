//! FULLNAT in the XDP packet path, on crafted frames through BPF_PROG_TEST_RUN: both ends
//! rewritten with valid checksums, the local-address pool and its port allocation (collisions,
//! exhaustion, reuse), `-G` counts, IPv6, ICMP errors. Needs root; each test has its own pins
//! and empty namespace (no route: rewritten packets are handed to the kernel, XDP_PASS).

use std::net::{IpAddr, Ipv4Addr};

use dataplane::Dataplane;
use dataplane::model::*;
use ebpf_common::{config, counter};
use xlvs_tests::addrs::{CIP, L1, L2, R1, R6, VIP, VIP6};
use xlvs_tests::packet::{ACK, Frame, RST, SYN, decode};
use xlvs_tests::services;
use xlvs_tests::testbed::{TestBed, XDP_DROP, XDP_PASS};

fn svc_addr(port: u16) -> ServiceAddr {
    services::inet(Protocol::Tcp, VIP, port)
}

/// A FULLNAT TCP service VIP:`port` -> R1:8080 with local addresses `laddrs`.
fn fnat_service(dp: &mut Dataplane, port: u16, laddrs: &[Ipv4Addr]) -> ServiceAddr {
    let cfg = ServiceConfig::new(svc_addr(port));
    let real = services::real(R1, 8080, Forward::FullNat);
    let laddrs: Vec<IpAddr> = laddrs.iter().map(|l| IpAddr::V4(*l)).collect();
    services::fullnat(dp, &cfg, &[real], &laddrs).unwrap()
}

/// A FULLNAT TCP service [2001:db8:100::1]:80 -> [2001:db8:2::2]:8080; its local address.
fn fullnat6(b: &mut TestBed) -> IpAddr {
    let cfg = ServiceConfig::new(services::inet(
        Protocol::Tcp,
        VIP6.parse::<IpAddr>().unwrap(),
        80,
    ));
    let real = services::real(R6.parse::<IpAddr>().unwrap(), 8080, Forward::FullNat);
    let l6: IpAddr = "2001:db8:9::1".parse().unwrap();
    services::fullnat(&mut b.dp, &cfg, &[real], &[l6]).unwrap();
    l6
}

#[test]
fn both_ends_are_rewritten_and_replies_come_back_from_the_vip_to_the_client() {
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    let svc = fnat_service(&mut b.dp, 80, &[L1, L2]);

    let (action, out) = b.run_frame(&Frame::tcp(CIP, 40000, VIP, 80, SYN));
    assert_eq!(action, XDP_PASS, "no route here: handed to the kernel");
    assert!(
        out.src == L1 || out.src == L2,
        "source is a local address: {out:?}"
    );
    assert!(
        out.sport >= 1024,
        "source port from the FULLNAT range: {out:?}"
    );
    assert_eq!((out.dst, out.dport), (R1, 8080));
    assert!(out.ip_checksum_ok && out.l4_checksum_ok, "{out:?}");
    let (lip, lport) = (out.src, out.sport);

    // The real server answers the local address; the client gets it from the VIP.
    let (action, back) = b.run_frame(&Frame::tcp(R1, 8080, lip, lport, SYN | ACK));
    assert_eq!(action, XDP_PASS);
    assert_eq!((back.src, back.sport), (VIP, 80));
    assert_eq!((back.dst, back.dport), (CIP, 40000));
    assert!(back.ip_checksum_ok && back.l4_checksum_ok, "{back:?}");

    // The rest of the flow keeps its local address and port.
    let (_, out) = b.run_frame(&Frame::tcp(CIP, 40000, VIP, 80, ACK));
    assert_eq!(
        (out.src, out.sport, out.dst, out.dport),
        (lip, lport, R1, 8080)
    );
    let conns = b.dp.connections().unwrap();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0].state, "ESTABLISHED");
    assert_eq!(
        conns[0].local,
        Some(std::net::SocketAddr::new(IpAddr::V4(lip), lport))
    );

    // More clients: every connection gets its own (local address, port); the pool is shared.
    let mut pairs = std::collections::HashSet::new();
    pairs.insert((lip, lport));
    for port in 40001..40021 {
        let (_, out) = b.run_frame(&Frame::tcp(CIP, port, VIP, 80, SYN));
        assert!(out.ip_checksum_ok && out.l4_checksum_ok);
        assert!(pairs.insert((out.src, out.sport)), "pair reused: {out:?}");
    }
    let e = b.dp.service(&svc).unwrap();
    assert_eq!(e.stats.conns, 21);
    let per_laddr: Vec<(IpAddr, u64)> = e.local_addrs.iter().map(|l| (l.addr, l.conns)).collect();
    assert_eq!(
        per_laddr.iter().map(|(_, n)| n).sum::<u64>(),
        21,
        "{per_laddr:?}"
    );
    assert!(
        per_laddr.iter().all(|(_, n)| *n >= 10),
        "both local addresses are used: {per_laddr:?}"
    );
    for (ip, n) in &per_laddr {
        let used = pairs.iter().filter(|(l, _)| IpAddr::V4(*l) == *ip).count() as u64;
        assert_eq!(*n, used, "-G counts what the packets show for {ip}");
    }
}

#[test]
fn a_service_without_local_addresses_drops_and_counts() {
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    let svc = fnat_service(&mut b.dp, 80, &[]);
    assert_eq!(
        b.run_frame(&Frame::tcp(CIP, 40000, VIP, 80, SYN)).0,
        XDP_DROP
    );
    assert_eq!(b.counter(counter::DROP_NO_LADDR), 1);
    assert!(b.dp.connections().unwrap().is_empty());
    // Adding one makes the service work; removing it stops new connections again.
    b.dp.add_laddr(&svc, &services::local_addr(L1)).unwrap();
    let (_, out) = b.run_frame(&Frame::tcp(CIP, 40001, VIP, 80, SYN));
    assert_eq!(out.src, L1);
    b.dp.del_laddr(&svc, IpAddr::V4(L1)).unwrap();
    assert_eq!(
        b.run_frame(&Frame::tcp(CIP, 40002, VIP, 80, SYN)).0,
        XDP_DROP
    );
    assert_eq!(b.counter(counter::DROP_NO_LADDR), 2);
    // The connection already open keeps going.
    let (action, out) = b.run_frame(&Frame::tcp(CIP, 40001, VIP, 80, ACK));
    assert_eq!((action, out.src), (XDP_PASS, L1));
}

#[test]
fn an_exhausted_pool_counts_conflicts_and_drops_and_a_closed_connection_gives_its_port_back() {
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    let svc = fnat_service(&mut b.dp, 80, &[L1]);
    // So many CPUs that each has exactly one port: one connection fills this CPU's pool. The
    // test thread stays on one CPU (test runs execute on the caller's).
    b.set_config(config::NR_CPUS, 64512);
    let mut one = nix::sched::CpuSet::new();
    one.set(0).unwrap();
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &one).unwrap();
    let (_, first) = b.run_frame(&Frame::tcp(CIP, 40000, VIP, 80, SYN));
    let (action, _) = b.run_frame(&Frame::tcp(CIP, 40001, VIP, 80, SYN));
    assert_eq!(
        action, XDP_DROP,
        "the only port is taken by a live connection"
    );
    assert_eq!(b.counter(counter::DROP_LADDR_EXHAUSTED), 1);
    let e = b.dp.service(&svc).unwrap();
    assert_eq!(
        e.local_addrs[0].port_conflicts,
        u64::from(ebpf_common::FNAT_PORT_TRIES),
        "every candidate tried was a conflict"
    );
    assert_eq!(e.local_addrs[0].conns, 1);

    // The first connection completes and is reset: a SYN from the same client reopens it on the
    // same (only) port; the old pair is reclaimed, not counted as a conflict.
    b.run_frame(&Frame::tcp(R1, 8080, first.src, first.sport, SYN | ACK));
    b.run_frame(&Frame::tcp(CIP, 40000, VIP, 80, ACK));
    b.run_frame(&Frame::tcp(CIP, 40000, VIP, 80, RST));
    let (action, again) = b.run_frame(&Frame::tcp(CIP, 40000, VIP, 80, SYN));
    assert_eq!(action, XDP_PASS);
    assert_eq!((again.src, again.sport), (first.src, first.sport));
    assert_eq!(b.counter(counter::DROP_LADDR_EXHAUSTED), 1);
    let conns = b.dp.connections().unwrap();
    assert_eq!(conns.len(), 1, "{conns:?}");
    assert_eq!(conns[0].state, "SYN_RECV");
}

#[test]
fn ipv6_fullnat_rewrites_both_ends_with_valid_checksums() {
    use xlvs_tests::packet::{Frame6, decode6};
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    let l6 = fullnat6(&mut b);
    let syn = Frame6::tcp("2001:db8:1::2", 40000, "2001:db8:100::1", 80, SYN).build();
    let (action, out) = b.run(&syn);
    assert_eq!(action, XDP_PASS);
    let o = decode6(&out).unwrap();
    assert_eq!(IpAddr::V6(o.src), l6);
    assert_eq!(
        (o.dst.to_string().as_str(), o.dport),
        ("2001:db8:2::2", 8080)
    );
    assert!(o.l4_checksum_ok, "{o:?}");
    let reply = Frame6::tcp("2001:db8:2::2", 8080, &l6.to_string(), o.sport, SYN | ACK).build();
    let (_, back) = b.run(&reply);
    let back = decode6(&back).unwrap();
    assert_eq!(
        (back.src.to_string().as_str(), back.sport),
        ("2001:db8:100::1", 80)
    );
    assert_eq!(
        (back.dst.to_string().as_str(), back.dport),
        ("2001:db8:1::2", 40000)
    );
    assert!(back.l4_checksum_ok);
}

#[test]
fn icmp_errors_about_fullnat_connections_are_translated_both_ways() {
    use xlvs_tests::packet::{decode_icmp, icmp_error};
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    fnat_service(&mut b.dp, 80, &[L1]);
    let (_, fwd) = b.run(&Frame::tcp(CIP, 40000, VIP, 80, SYN).build());
    let out = decode(&fwd).unwrap();
    let lport = out.sport;

    // The real server (or a router on its side) reports our forwarded packet: to the client.
    let unreachable = icmp_error(R1, L1, 3, 4, &fwd[14..]);
    let (_, o) = b.run(&unreachable);
    let d = decode_icmp(&o).unwrap();
    assert_eq!((d.src, d.dst), (VIP, CIP));
    assert_eq!((d.quoted_src, d.quoted_sport), (CIP, 40000));
    assert_eq!((d.quoted_dst, d.quoted_dport), (VIP, 80));
    assert!(d.checksums_ok, "{d:?}");

    // A router on the client's side reports a reply we sent: to the real server, about its own
    // packet (rip:rport -> lip:lport).
    let (_, reply) = b.run(&Frame::tcp(R1, 8080, L1, lport, SYN | ACK).build());
    let router = Ipv4Addr::new(198, 18, 1, 254);
    let (_, o) = b.run(&icmp_error(router, VIP, 3, 4, &reply[14..]));
    let d = decode_icmp(&o).unwrap();
    assert_eq!(d.dst, R1);
    assert_eq!((d.quoted_src, d.quoted_sport), (R1, 8080));
    assert_eq!((d.quoted_dst, d.quoted_dport), (L1, lport));
    assert!(d.checksums_ok, "{d:?}");
    assert_eq!(b.counter(counter::ICMP_TRANSLATED), 2);
}

/// The TCP header's options of an untagged IPv4 frame, and its payload.
fn tcp_options_and_payload(frame: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let tot = u16::from_be_bytes([frame[16], frame[17]]) as usize;
    let doff = (frame[34 + 12] >> 4) as usize * 4;
    (
        frame[34 + 20..34 + doff].to_vec(),
        frame[34 + doff..14 + tot].to_vec(),
    )
}

/// MSS option 1460, then NOP NOP and a timestamp option: what Linux puts in a SYN-ACK (no SACK).
const SYNACK_OPTIONS: [u8; 16] = [2, 4, 0x05, 0xb4, 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
/// NOP NOP timestamp: a Linux ACK's options.
const ACK_OPTIONS: [u8; 12] = [1, 1, 8, 10, 0, 0, 0, 3, 0, 0, 0, 1];

/// Opens a FULLNAT connection CIP:40000 -> VIP:80 and answers it with a SYN-ACK whose ISN is
/// 5000: (local address, local port, the SYN-ACK as the client got it).
fn handshake(b: &TestBed) -> (Ipv4Addr, u16, Vec<u8>) {
    let (_, out) = b.run_frame(&Frame::tcp(CIP, 40000, VIP, 80, SYN));
    let mut synack = Frame::tcp(R1, 8080, out.src, out.sport, SYN | ACK);
    synack.seq = 5000;
    synack.ack = 1001;
    synack.tcp_options = SYNACK_OPTIONS.to_vec();
    let (_, back) = b.run(&synack.build());
    (out.src, out.sport, back)
}

fn client_segment(ack: u32, payload: &[u8]) -> Frame {
    let mut f = Frame::tcp(CIP, 40000, VIP, 80, ACK);
    f.seq = 1001;
    f.ack = ack;
    f.tcp_options = ACK_OPTIONS.to_vec();
    f.payload = payload.to_vec();
    f
}

#[test]
fn toa_carries_the_client_address_in_the_handshake_ack_and_first_data() {
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    fnat_service(&mut b.dp, 80, &[L1]);
    let (lip, lport, synack) = handshake(&b);

    // The MSS the client learns leaves room for the option.
    let d = decode(&synack).unwrap();
    assert!(d.l4_checksum_ok && d.ip_checksum_ok);
    let (opts, _) = tcp_options_and_payload(&synack);
    assert_eq!(&opts[..4], &[2, 4, 0x05, 0xac], "MSS 1460 - 8 = 1452");

    // The ACK completing the handshake grows by the 8-byte option, first among the options.
    let ack = client_segment(5001, b"").build();
    let (action, out) = b.run(&ack);
    assert_eq!(action, XDP_PASS);
    assert_eq!(out.len(), ack.len() + 8);
    let d = decode(&out).unwrap();
    assert_eq!((d.src, d.sport, d.dst, d.dport), (lip, lport, R1, 8080));
    assert!(d.ip_checksum_ok && d.l4_checksum_ok, "{d:?}");
    let (opts, payload) = tcp_options_and_payload(&out);
    let mut toa = vec![254, 8];
    toa.extend_from_slice(&40000u16.to_be_bytes());
    toa.extend_from_slice(&CIP.octets());
    assert_eq!(
        &opts[..8],
        &toa[..],
        "TOA: kind 254, len 8, client port, client address"
    );
    assert_eq!(&opts[8..], &ACK_OPTIONS, "the segment's own options follow");
    assert!(payload.is_empty());
    assert_eq!(&out[..12], &ack[..12], "MACs moved with the headers");

    // Data before the server sent any: option too, payload intact.
    let (_, out) = b.run(&client_segment(5001, b"GET / HTTP/1.1\r\n\r\n").build());
    let d = decode(&out).unwrap();
    assert!(d.ip_checksum_ok && d.l4_checksum_ok, "{d:?}");
    let (opts, payload) = tcp_options_and_payload(&out);
    assert_eq!(&opts[..8], &toa[..]);
    assert_eq!(payload, b"GET / HTTP/1.1\r\n\r\n");

    // Once the client acknowledges server data, segments go unchanged in size.
    let seg = client_segment(6001, b"more").build();
    let (_, out) = b.run(&seg);
    assert_eq!(out.len(), seg.len());
    assert!(decode(&out).unwrap().l4_checksum_ok);
    assert_eq!(b.counter(counter::TOA_ADDED), 2);
}

#[test]
fn toa_is_skipped_without_room_and_off_when_configured() {
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    fnat_service(&mut b.dp, 80, &[L1]);
    handshake(&b);
    // 40 bytes of options already: no room for 8 more. Forwarded unchanged in size.
    let mut full = client_segment(5001, b"x");
    full.tcp_options = [1u8; 40].to_vec();
    let f = full.build();
    let (action, out) = b.run(&f);
    assert_eq!((action, out.len()), (XDP_PASS, f.len()));
    let d = decode(&out).unwrap();
    assert!(d.l4_checksum_ok && d.dst == R1);
    assert_eq!(b.counter(counter::TOA_SKIPPED), 1);

    // TOA off: the SYN-ACK keeps its MSS and no option is added.
    b.set_config(config::TOA_OFF, 1);
    let (_, out) = b.run_frame(&Frame::tcp(CIP, 40001, VIP, 80, SYN));
    let mut synack = Frame::tcp(R1, 8080, out.src, out.sport, SYN | ACK);
    synack.seq = 7000;
    synack.tcp_options = SYNACK_OPTIONS.to_vec();
    let (_, back) = b.run(&synack.build());
    assert_eq!(&tcp_options_and_payload(&back).0[..4], &SYNACK_OPTIONS[..4]);
    let mut ack = client_segment(7001, b"");
    ack.sport = 40001;
    let f = ack.build();
    assert_eq!(b.run(&f).1.len(), f.len());
    assert_eq!(b.counter(counter::TOA_ADDED), 0);
}

#[test]
fn ipv6_toa_is_kind_253_with_the_full_client_address() {
    use xlvs_tests::packet::{Frame6, decode6};
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    let l6 = fullnat6(&mut b);
    let (cip6, vip6) = ("2001:db8:1::2", "2001:db8:100::1");
    let (_, out) = b.run(&Frame6::tcp(cip6, 40000, vip6, 80, SYN).build());
    let lport = decode6(&out).unwrap().sport;
    let mut synack = Frame6::tcp("2001:db8:2::2", 8080, &l6.to_string(), lport, SYN | ACK);
    synack.seq = 9000;
    synack.tcp_options = SYNACK_OPTIONS.to_vec();
    let (_, back) = b.run(&synack.build());
    assert_eq!(&back[74..78], &[2, 4, 0x05, 0xa0], "MSS 1460 - 20 = 1440");
    assert!(decode6(&back).unwrap().l4_checksum_ok);

    let mut ack = Frame6::tcp(cip6, 40000, vip6, 80, ACK);
    ack.ack = 9001;
    ack.tcp_options = ACK_OPTIONS.to_vec();
    let f = ack.build();
    let (_, out) = b.run(&f);
    assert_eq!(out.len(), f.len() + 20);
    let d = decode6(&out).unwrap();
    assert!(d.l4_checksum_ok, "{d:?}");
    assert_eq!(IpAddr::V6(d.src), l6);
    let opt = &out[54 + 20..54 + 40];
    assert_eq!(&opt[..4], &[253, 20, 0x9c, 0x40]);
    let client: std::net::Ipv6Addr = cip6.parse().unwrap();
    assert_eq!(&opt[4..], &client.octets());
}

#[test]
fn udp_fullnat_rewrites_both_ends_and_keeps_a_zero_checksum() {
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    let cfg = ServiceConfig::new(services::inet(Protocol::Udp, VIP, 53));
    let real = services::real(R1, 5353, Forward::FullNat);
    services::fullnat(&mut b.dp, &cfg, &[real], &[L1.into()]).unwrap();
    let (action, out) = b.run_frame(&Frame::udp(CIP, 5000, VIP, 53, b"query"));
    assert_eq!(action, XDP_PASS);
    assert_eq!((out.src, out.dst, out.dport), (L1, R1, 5353));
    assert!(out.ip_checksum_ok && out.l4_checksum_ok, "{out:?}");
    let (_, back) = b.run_frame(&Frame::udp(R1, 5353, L1, out.sport, b"answer"));
    assert_eq!(
        (back.src, back.sport, back.dst, back.dport),
        (VIP, 53, CIP, 5000)
    );
    assert!(back.ip_checksum_ok && back.l4_checksum_ok, "{back:?}");
    // No checksum (IPv4 UDP allows it): stays none.
    let mut f = Frame::udp(CIP, 5001, VIP, 53, b"q").build();
    f[40] = 0;
    f[41] = 0;
    let (_, o) = b.run(&f);
    assert_eq!(&o[40..42], &[0, 0]);
    assert_eq!(decode(&o).unwrap().src, L1);
}
