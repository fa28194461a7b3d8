//! Tunnel encapsulation byte by byte (BPF_PROG_TEST_RUN in a namespace whose FIB resolves the
//! reals, see `netns::fib_namespace`): IPIP, GUE and GRE with and without checksums, ip6ip6 and
//! the cross-family cases, and the ICMP "too big" answers. Needs root.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dataplane::model::*;
use ebpf_common::counter;
use xlvs_tests::addrs::{CIP, CIP6, R1, R6, VIP, VIP6};
use xlvs_tests::netns::run;
use xlvs_tests::packet::{ACK, Frame, Frame6, SYN};
use xlvs_tests::services;
use xlvs_tests::testbed::{TestBed, XDP_DROP, XDP_PASS, XDP_TX};

/// Our IPv6 address towards R6 (added on b0 by `bed`).
const SELF6: &str = "2001:db8:2::1";

fn bed() -> Option<TestBed> {
    let b = TestBed::new(1024, true)?;
    // An IPv6 source for the outer headers (no prefix route: fib_namespace has one).
    run(
        "ip",
        &[
            "-6",
            "addr",
            "add",
            &format!("{SELF6}/128"),
            "dev",
            "b0",
            "nodad",
        ],
    )
    .expect("ipv6 address");
    Some(b)
}

/// A TCP service on `vip`:80 with one tunnel real `rip`.
fn tunnel_service(b: &mut TestBed, vip: IpAddr, rip: IpAddr, tunnel: Tunnel) {
    let cfg = ServiceConfig::new(services::inet(Protocol::Tcp, vip, 80));
    let real = DestConfig {
        tunnel,
        ..services::real(rip, 80, Forward::Tunnel)
    };
    services::add(&mut b.dp, &cfg, &[real]).unwrap();
}

fn tun(kind: TunnelType, port: u16, flags: u8) -> Tunnel {
    Tunnel { kind, port, flags }
}

fn sum16(b: &[u8], mut sum: u32) -> u32 {
    for w in b.chunks(2) {
        sum += u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]) as u32;
    }
    sum
}

fn folds_to_ffff(mut sum: u32) -> bool {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

/// The inner packet as the real gets it: the client's, TTL (IPv4, checksum fixed) or hop
/// limit one lower.
fn decremented(ip: &[u8]) -> Vec<u8> {
    let mut p = ip.to_vec();
    if p[0] >> 4 == 4 {
        p[8] -= 1;
        p[10..12].copy_from_slice(&[0, 0]);
        let c = !(fold(sum16(&p[..20], 0)));
        p[10..12].copy_from_slice(&c.to_be_bytes());
    } else {
        p[7] -= 1;
    }
    p
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

fn pseudo4(src: &[u8], dst: &[u8], proto: u8, len: usize) -> u32 {
    let mut p = Vec::new();
    p.extend_from_slice(src);
    p.extend_from_slice(dst);
    p.extend_from_slice(&[0, proto]);
    p.extend_from_slice(&(len as u16).to_be_bytes());
    sum16(&p, 0)
}

fn pseudo6(src: &[u8], dst: &[u8], proto: u8, len: usize) -> u32 {
    let mut p = Vec::new();
    p.extend_from_slice(src);
    p.extend_from_slice(dst);
    p.extend_from_slice(&(len as u32).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, proto]);
    sum16(&p, 0)
}

/// Checks an outer IPv4 header from us to R1: (protocol, payload after it).
fn outer4(p: &[u8], inner_len: usize, extra: usize) -> (u8, &[u8]) {
    assert_eq!(&p[0..6], &[2, 0, 0, 0, 2, 2], "to the real's MAC");
    assert_eq!(&p[12..14], &[0x08, 0x00]);
    let ip = &p[14..34];
    assert_eq!(ip[0], 0x45);
    assert_eq!(
        &ip[12..16],
        &[198, 18, 2, 1],
        "our address towards the real"
    );
    assert_eq!(&ip[16..20], &R1.octets());
    assert_eq!(
        u16::from_be_bytes([ip[2], ip[3]]) as usize,
        20 + extra + inner_len,
        "outer length"
    );
    assert!(folds_to_ffff(sum16(ip, 0)), "outer IPv4 checksum");
    assert_eq!(p.len(), 34 + extra + inner_len);
    (ip[9], &p[34..])
}

#[test]
fn ipip_copies_df_and_the_decremented_ttl() {
    let Some(mut b) = bed() else { return };
    tunnel_service(&mut b, IpAddr::V4(VIP), IpAddr::V4(R1), Tunnel::default());
    let syn = Frame::tcp(CIP, 40000, VIP, 80, SYN).build();
    let (action, p) = b.run_on_b0(&syn);
    assert_eq!(action, XDP_TX, "{:?}", b.dp.counters().unwrap());
    let (proto, rest) = outer4(&p, syn.len() - 14, 0);
    assert_eq!(proto, 4);
    assert_eq!(
        (p[14 + 6] & 0x40, p[14 + 8]),
        (0x40, 63),
        "DF copied, TTL 64-1"
    );
    assert_eq!(rest, &decremented(&syn[14..])[..]);
}

#[test]
fn gue_with_checksum_carries_the_packet_to_the_tunnel_port() {
    let Some(mut b) = bed() else { return };
    tunnel_service(
        &mut b,
        IpAddr::V4(VIP),
        IpAddr::V4(R1),
        tun(TunnelType::Gue, 6080, tun_flags::CSUM),
    );
    let mut f = Frame::tcp(CIP, 40000, VIP, 80, SYN);
    f.payload = (0..301u32).map(|i| i as u8).collect(); // odd length: the sum's last byte
    let syn = f.build();
    let inner_len = syn.len() - 14;
    let (action, p) = b.run_on_b0(&syn);
    assert_eq!(action, XDP_TX);
    let (proto, rest) = outer4(&p, inner_len, 12);
    assert_eq!(proto, 17, "UDP");
    let udp = &rest[..8];
    let sport = u16::from_be_bytes([udp[0], udp[1]]);
    assert!((32768..=60999).contains(&sport), "source port {sport}");
    assert_eq!(u16::from_be_bytes([udp[2], udp[3]]), 6080);
    assert_eq!(
        u16::from_be_bytes([udp[4], udp[5]]) as usize,
        12 + inner_len
    );
    assert_eq!(&rest[8..12], &[0, 4, 0, 0], "GUE v0, no flags, IPv4 inside");
    assert_ne!(&udp[6..8], &[0, 0], "checksum computed");
    let segment = &rest[..12 + inner_len];
    let sum = sum16(
        segment,
        pseudo4(&[198, 18, 2, 1], &R1.octets(), 17, segment.len()),
    );
    assert!(folds_to_ffff(sum), "UDP checksum over the whole datagram");
    assert_eq!(&rest[12..], &decremented(&syn[14..])[..]);
    // The same flow hashes to the same source port (one UDP flow per connection).
    let ack = Frame::tcp(CIP, 40000, VIP, 80, ACK).build();
    let (_, p2) = b.run_on_b0(&ack);
    assert_eq!(&p2[34..36], &udp[0..2]);
}

#[test]
fn gue_without_checksum_and_remcsum_as_ipvs_sends_forwarded_packets() {
    let Some(mut b) = bed() else { return };
    tunnel_service(
        &mut b,
        IpAddr::V4(VIP),
        IpAddr::V4(R1),
        tun(TunnelType::Gue, 6080, tun_flags::NOCSUM),
    );
    let syn = Frame::tcp(CIP, 40000, VIP, 80, SYN).build();
    let (action, p) = b.run_on_b0(&syn);
    assert_eq!(action, XDP_TX);
    let (_, rest) = outer4(&p, syn.len() - 14, 12);
    assert_eq!(&rest[6..8], &[0, 0], "no UDP checksum");
    // remcsum: IPVS adds the option only to CHECKSUM_PARTIAL (locally sent) packets; a
    // forwarded one gets the plain header with a checksum.
    let vip2 = Ipv4Addr::new(198, 18, 100, 2);
    tunnel_service(
        &mut b,
        IpAddr::V4(vip2),
        IpAddr::V4(R1),
        tun(TunnelType::Gue, 6081, tun_flags::REMCSUM),
    );
    let syn = Frame::tcp(CIP, 40000, vip2, 80, SYN).build();
    let (_, p) = b.run_on_b0(&syn);
    let (_, rest) = outer4(&p, syn.len() - 14, 12);
    assert_eq!(&rest[8..12], &[0, 4, 0, 0], "no private option");
    let sum = sum16(
        rest,
        pseudo4(&[198, 18, 2, 1], &R1.octets(), 17, rest.len()),
    );
    assert!(folds_to_ffff(sum));
}

#[test]
fn gre_with_and_without_checksum() {
    let Some(mut b) = bed() else { return };
    tunnel_service(
        &mut b,
        IpAddr::V4(VIP),
        IpAddr::V4(R1),
        tun(TunnelType::Gre, 0, tun_flags::CSUM),
    );
    let mut f = Frame::tcp(CIP, 40000, VIP, 80, SYN);
    f.payload = vec![0xab; 77];
    let syn = f.build();
    let (action, p) = b.run_on_b0(&syn);
    assert_eq!(action, XDP_TX);
    let (proto, rest) = outer4(&p, syn.len() - 14, 8);
    assert_eq!(proto, 47, "GRE");
    assert_eq!(&rest[0..4], &[0x80, 0, 0x08, 0x00], "C bit, IPv4 inside");
    assert!(folds_to_ffff(sum16(rest, 0)), "GRE checksum");
    assert_eq!(&rest[8..], &decremented(&syn[14..])[..]);

    let vip2 = Ipv4Addr::new(198, 18, 100, 2);
    tunnel_service(
        &mut b,
        IpAddr::V4(vip2),
        IpAddr::V4(R1),
        tun(TunnelType::Gre, 0, 0),
    );
    let syn = Frame::tcp(CIP, 40000, vip2, 80, SYN).build();
    let (_, p) = b.run_on_b0(&syn);
    let (_, rest) = outer4(&p, syn.len() - 14, 4);
    assert_eq!(&rest[0..4], &[0, 0, 0x08, 0x00]);
}

/// Checks an outer IPv6 header from SELF6 to R6: (next header, payload after it).
fn outer6(p: &[u8], payload: usize) -> (u8, &[u8]) {
    assert_eq!(&p[0..6], &[2, 0, 0, 6, 2, 2], "to the real's MAC");
    assert_eq!(&p[12..14], &[0x86, 0xdd]);
    let ip = &p[14..54];
    assert_eq!(ip[0] >> 4, 6);
    assert_eq!(u16::from_be_bytes([ip[4], ip[5]]) as usize, payload);
    let src: Ipv6Addr = SELF6.parse().unwrap();
    let dst: Ipv6Addr = R6.parse().unwrap();
    assert_eq!(&ip[8..24], &src.octets());
    assert_eq!(&ip[24..40], &dst.octets());
    assert_eq!(p.len(), 54 + payload);
    (ip[6], &p[54..])
}

#[test]
fn ip6ip6_and_ipv4_in_ipv6() {
    let Some(mut b) = bed() else { return };
    let r6: IpAddr = R6.parse().unwrap();
    tunnel_service(&mut b, VIP6.parse().unwrap(), r6, Tunnel::default());
    let syn = Frame6::tcp(CIP6, 40000, VIP6, 80, SYN).build();
    let (action, p) = b.run_on_b0(&syn);
    assert_eq!(action, XDP_TX, "{:?}", b.dp.counters().unwrap());
    let (next, rest) = outer6(&p, syn.len() - 14);
    assert_eq!((next, p[14 + 7]), (41, 63), "IPv6 inside, hop limit 64-1");
    assert_eq!(rest, &decremented(&syn[14..])[..]);

    // IPv4 service, IPv6 tunnel real (IPVS allows other families for tunnels only).
    tunnel_service(
        &mut b,
        IpAddr::V4(VIP),
        r6,
        tun(TunnelType::Gre, 0, tun_flags::CSUM),
    );
    let syn = Frame::tcp(CIP, 40000, VIP, 80, SYN).build();
    let (action, p) = b.run_on_b0(&syn);
    assert_eq!(action, XDP_TX);
    let (next, rest) = outer6(&p, 8 + syn.len() - 14);
    assert_eq!(next, 47);
    assert_eq!(&rest[0..4], &[0x80, 0, 0x08, 0x00]);
    assert!(folds_to_ffff(sum16(rest, 0)), "GRE checksum");
    assert_eq!(&rest[8..], &decremented(&syn[14..])[..]);
    let c = b.dp.connections().unwrap();
    assert!(
        c.iter()
            .any(|c| c.dest.ip() == r6 && c.client.ip() == IpAddr::V4(CIP))
    );
}

#[test]
fn ipv6_in_ipv4_with_gue_checksum() {
    let Some(mut b) = bed() else { return };
    tunnel_service(
        &mut b,
        VIP6.parse().unwrap(),
        IpAddr::V4(R1),
        tun(TunnelType::Gue, 6080, tun_flags::CSUM),
    );
    let syn = Frame6::tcp(CIP6, 40000, VIP6, 80, SYN).build();
    let inner_len = syn.len() - 14;
    let (action, p) = b.run_on_b0(&syn);
    assert_eq!(action, XDP_TX);
    let (proto, rest) = outer4(&p, inner_len, 12);
    assert_eq!(proto, 17);
    assert_eq!(&rest[8..12], &[0, 41, 0, 0], "GUE, IPv6 inside");
    let sum = sum16(
        rest,
        pseudo4(&[198, 18, 2, 1], &R1.octets(), 17, rest.len()),
    );
    assert!(folds_to_ffff(sum), "UDP checksum");
    assert_eq!(&rest[12..], &decremented(&syn[14..])[..]);
}

#[test]
fn too_big_packets_get_fragmentation_needed_with_the_tunnel_mtu() {
    let Some(mut b) = bed() else { return };
    // The path to R1 is 1000 bytes (locked: the FIB lookup of forwarding honours only locked
    // route MTUs, PMTU exceptions and device MTUs): with IPIP, 980 are left for the client.
    run(
        "ip",
        &[
            "route",
            "add",
            "198.18.2.2/32",
            "dev",
            "b0",
            "mtu",
            "lock",
            "1000",
        ],
    )
    .unwrap();
    tunnel_service(&mut b, IpAddr::V4(VIP), IpAddr::V4(R1), Tunnel::default());
    let syn = Frame::tcp(CIP, 40000, VIP, 80, SYN).build();
    assert_eq!(b.run_on_b0(&syn).0, XDP_TX, "small packets go through");
    let mut f = Frame::tcp(CIP, 40000, VIP, 80, ACK);
    f.payload = vec![7; 1000 - 40]; // 1000 bytes of IP: 20 too many once encapsulated
    let big = f.build();
    let (action, p) = b.run_on_b0(&big);
    assert_eq!(action, XDP_TX);
    assert_eq!(
        p.len(),
        14 + 20 + 8 + 28,
        "IPv4 + ICMP + quoted header and 8 bytes"
    );
    assert_eq!(&p[0..6], &big[6..12], "back to the sender's MAC");
    assert_eq!(&p[6..12], &big[0..6]);
    let ip = &p[14..34];
    assert_eq!(
        (ip[9], &ip[12..16], &ip[16..20]),
        (1, &VIP.octets()[..], &CIP.octets()[..])
    );
    assert!(folds_to_ffff(sum16(ip, 0)));
    let icmp = &p[34..];
    assert_eq!((icmp[0], icmp[1]), (3, 4), "fragmentation needed");
    assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]), 980, "next-hop MTU");
    assert!(folds_to_ffff(sum16(icmp, 0)), "ICMP checksum");
    assert_eq!(&icmp[8..], &big[14..14 + 28], "quotes the client's header");
    // 980 bytes fit.
    f.payload = vec![7; 980 - 40];
    assert_eq!(b.run_on_b0(&f.build()).1.len(), 14 + 20 + 980);
    // Without DF IPVS fragments the outer packet: encapsulated here with the client as outer
    // source (not a martian to our own stack), without DF, the frame's own MACs, and passed to
    // the kernel, which forwards and fragments it.
    let mut nodf = big.clone();
    nodf[14 + 6] = 0;
    nodf[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
    let c = !fold(sum16(&nodf[14..34], 0));
    nodf[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
    let (action, p) = b.run_on_b0(&nodf);
    assert_eq!(action, XDP_PASS);
    assert_eq!(
        &p[..12],
        &nodf[..12],
        "addressed to us: the kernel forwards it"
    );
    let outer = &p[14..34];
    assert_eq!(outer[9], 4, "IPIP");
    assert_eq!(outer[6] & 0x40, 0, "no DF: the kernel may fragment it");
    assert_eq!(
        (&outer[12..16], &outer[16..20]),
        (&CIP.octets()[..], &R1.octets()[..])
    );
    assert_eq!(
        u16::from_be_bytes([outer[2], outer[3]]) as usize,
        20 + (nodf.len() - 14)
    );
    assert!(folds_to_ffff(sum16(outer, 0)), "outer header checksum");
    assert_eq!(
        &p[34..],
        &decremented(&nodf[14..])[..],
        "the client's packet inside, TTL one lower"
    );
    let c = b.dp.counters().unwrap();
    assert_eq!(c[counter::DROP_TOO_BIG as usize], 1);
    assert_eq!(c[counter::ICMP_TOO_BIG_SENT as usize], 1);
    assert_eq!(c[counter::TUN_KERNEL_FRAG as usize], 1);
}

#[test]
fn too_big_ipv6_gets_packet_too_big_with_the_gre_overhead_taken_off() {
    let Some(mut b) = bed() else { return };
    run(
        "ip",
        &[
            "-6",
            "route",
            "add",
            &format!("{R6}/128"),
            "dev",
            "b0",
            "mtu",
            "lock",
            "1400",
        ],
    )
    .unwrap();
    tunnel_service(
        &mut b,
        VIP6.parse().unwrap(),
        R6.parse().unwrap(),
        tun(TunnelType::Gre, 0, tun_flags::CSUM),
    );
    let mut f = Frame6::tcp(CIP6, 40000, VIP6, 80, ACK);
    f.payload = vec![1; 1400 - 60];
    let big = f.build();
    // A SYN first so the ACK belongs to a connection.
    let _ = b.run_on_b0(&Frame6::tcp(CIP6, 40000, VIP6, 80, SYN).build());
    let (action, p) = b.run_on_b0(&big);
    assert_eq!(action, XDP_TX);
    assert_eq!(p.len(), 14 + 40 + 8 + 48);
    let ip = &p[14..54];
    assert_eq!((ip[6], u16::from_be_bytes([ip[4], ip[5]])), (58, 56));
    assert_eq!(&ip[8..24], &big[14 + 24..14 + 40], "from the VIP");
    assert_eq!(&ip[24..40], &big[14 + 8..14 + 24], "to the client");
    let icmp = &p[54..];
    assert_eq!(icmp[0], 2, "packet too big");
    // 1400 - IPv6 40 - GRE with checksum 8.
    assert_eq!(
        u32::from_be_bytes([icmp[4], icmp[5], icmp[6], icmp[7]]),
        1352
    );
    let sum = sum16(icmp, pseudo6(&ip[8..24], &ip[24..40], 58, icmp.len()));
    assert!(folds_to_ffff(sum), "ICMPv6 checksum");
    assert_eq!(&icmp[8..], &big[14..14 + 48]);
}

/// `frame` with an 802.1Q tag (VLAN `vid`) after its MACs.
fn tagged(frame: &[u8], vid: u16) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&[0x81, 0x00]);
    f.extend_from_slice(&vid.to_be_bytes());
    f.extend_from_slice(&frame[12..]);
    f
}

#[test]
fn vlan_tags_stay_in_front_of_the_tunnel_and_of_the_icmp_answer() {
    let Some(mut b) = bed() else { return };
    run(
        "ip",
        &[
            "route",
            "add",
            "198.18.2.2/32",
            "dev",
            "b0",
            "src",
            "198.18.2.1",
            "mtu",
            "lock",
            "1000",
        ],
    )
    .unwrap();
    tunnel_service(
        &mut b,
        IpAddr::V4(VIP),
        IpAddr::V4(R1),
        tun(TunnelType::Gue, 6080, tun_flags::CSUM),
    );
    let syn = Frame::tcp(CIP, 40000, VIP, 80, SYN).build();
    let (action, p) = b.run_on_b0(&tagged(&syn, 100));
    assert_eq!(action, XDP_TX);
    assert_eq!(
        &p[12..18],
        &[0x81, 0x00, 0, 100, 0x08, 0x00],
        "tag, then IPv4"
    );
    // Without the tag it is the untagged encapsulation, byte for byte.
    let (_, untagged) = b.run_on_b0(&syn);
    assert_eq!(&p[..12], &untagged[..12]);
    assert_eq!(&p[18..], &untagged[14..]);
    let (_, rest) = outer4(&untagged, syn.len() - 14, 12);
    let sum = sum16(
        rest,
        pseudo4(&[198, 18, 2, 1], &R1.octets(), 17, rest.len()),
    );
    assert!(folds_to_ffff(sum));
    // Too big: the answer keeps the tag too.
    let mut f = Frame::tcp(CIP, 40000, VIP, 80, ACK);
    f.payload = vec![7; 1000 - 40];
    let big = tagged(&f.build(), 100);
    let (action, p) = b.run_on_b0(&big);
    assert_eq!(action, XDP_TX);
    assert_eq!(p.len(), 18 + 20 + 8 + 28);
    assert_eq!(&p[12..18], &[0x81, 0x00, 0, 100, 0x08, 0x00]);
    let icmp = &p[38..];
    // 1000 - IPv4 20 - UDP 8 - GUE 4.
    assert_eq!(
        (icmp[0], icmp[1], u16::from_be_bytes([icmp[6], icmp[7]])),
        (3, 4, 968)
    );
    assert!(folds_to_ffff(sum16(icmp, 0)));
}

#[test]
fn udp_without_checksum_and_ecn_ce() {
    let Some(mut b) = bed() else { return };
    let udp = |vip| ServiceAddr::Inet {
        proto: Protocol::Udp,
        addr: IpAddr::V4(vip),
        port: 53,
    };
    let (v1, v2) = (VIP, Ipv4Addr::new(198, 18, 100, 2));
    for (vip, tunnel) in [
        (v1, tun(TunnelType::Gue, 6080, tun_flags::CSUM)),
        (v2, tun(TunnelType::Gre, 0, tun_flags::CSUM)),
    ] {
        b.dp.add_service(&ServiceConfig::new(udp(vip))).unwrap();
        let mut d = DestConfig::new(IpAddr::V4(R1), 53);
        d.forward = Forward::Tunnel;
        d.tunnel = tunnel;
        b.dp.add_dest(&udp(vip), &d).unwrap();
    }
    // An IPv4 datagram without a UDP checksum, ECN CE: nothing stands for its payload's sum.
    let mut q = Frame::udp(CIP, 5353, v1, 53, b"query").build();
    q[14 + 1] = 0xb8 | 3; // DSCP EF, CE
    q[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
    let c = !fold(sum16(&q[14..34], 0));
    q[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
    q[34 + 6..34 + 8].copy_from_slice(&[0, 0]);
    let (action, p) = b.run_on_b0(&q);
    assert_eq!(action, XDP_TX);
    let (_, rest) = outer4(&p, q.len() - 14, 12);
    assert_eq!(
        &rest[6..8],
        &[0, 0],
        "GUE over IPv4 goes without a checksum too"
    );
    assert_eq!(p[14 + 1], 0xb8 | 2, "outer DS field: CE becomes ECT(0)");
    // GRE with checksum cannot be made for it: dropped, counted.
    let mut q2 = q.clone();
    q2[14 + 16..14 + 20].copy_from_slice(&v2.octets());
    q2[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
    let c = !fold(sum16(&q2[14..34], 0));
    q2[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
    assert_eq!(b.run_on_b0(&q2).0, XDP_DROP);
    let c = b.dp.counters().unwrap();
    assert_eq!(c[counter::DROP_UNSUPPORTED as usize], 1);
}
