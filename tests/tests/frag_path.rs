//! IPv6 extension headers and IP fragments through BPF_PROG_TEST_RUN (needs root): packets with
//! up to four extension headers are forwarded with them intact and a valid L4 checksum, the rest
//! go to the kernel counted; fragments of a connection (IPv4 and IPv6, both directions) are
//! rewritten like their first fragment, so the real server reassembles a datagram whose checksum
//! is right; a later fragment whose first was not seen goes to the kernel (or is dropped by the
//! `frag_drop` policy).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dataplane::model::*;
use ebpf_common::counter;
use xlvs_tests::addrs::{CIP, CIP6, R1, R6 as R16, VIP, VIP6};
use xlvs_tests::packet::{Frame, Frame6, SYN, UDP, decode, decode6, set_ipv4_checksum};
use xlvs_tests::services;
use xlvs_tests::testbed::{TestBed, XDP_DROP, XDP_PASS, XDP_TX, ifindex_b0};

/// MACs the routed bed (`netns::fib_namespace`) resolves.
const MAC_R1: [u8; 6] = [2, 0, 0, 0, 2, 2];
const MAC_CIP: [u8; 6] = [2, 0, 0, 0, 1, 2];
const MAC_R16: [u8; 6] = [2, 0, 0, 6, 2, 2];
const MAC_CIP6: [u8; 6] = [2, 0, 0, 6, 1, 2];

const HOPOPTS: u8 = 0;
const ROUTING: u8 = 43;
const FRAGMENT: u8 = 44;
const DSTOPTS: u8 = 60;
const AH: u8 = 51;

/// NAT services on `vip`: TCP 80 and UDP 53 to `real`:8080.
fn nat_services(b: &mut TestBed, vip: IpAddr, real: IpAddr) {
    services::nat(&mut b.dp, Protocol::Tcp, vip, 80, &[real]).unwrap();
    services::nat(&mut b.dp, Protocol::Udp, vip, 53, &[real]).unwrap();
}

fn udp6(src: &str, sport: u16, dst: &str, dport: u16, payload: &[u8]) -> Frame6 {
    let mut f = Frame6::tcp(src, sport, dst, dport, 0);
    f.proto = UDP;
    f.payload = payload.to_vec();
    f
}

/// An extension header of `kind` (8 bytes; routing: 24, type 4, `segments_left`).
fn ext_header(kind: u8, segments_left: u8) -> Vec<u8> {
    match kind {
        ROUTING => {
            let mut h = vec![0, 2, 4, segments_left, 0, 0, 0, 0];
            h.extend_from_slice(&"2001:db8:9::9".parse::<Ipv6Addr>().unwrap().octets());
            h
        }
        // PadN option of 4 bytes: a valid options header.
        _ => vec![0, 0, 1, 4, 0, 0, 0, 0],
    }
}

/// Inserts extension headers (kinds, each as `ext_header` makes it, or given bytes) between the
/// IPv6 header and the upper-layer header of `frame`, chaining next headers. The L4 checksum
/// stays valid: its pseudo-header has the upper-layer length and the final destination.
fn with_ext(frame: &[u8], headers: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let upper = frame[20];
    let mut out = frame[..54].to_vec();
    let mut chain = Vec::new();
    for (i, (kind, bytes)) in headers.iter().enumerate() {
        let mut h = bytes.clone();
        h[0] = headers.get(i + 1).map(|(k, _)| *k).unwrap_or(upper);
        if i == 0 {
            out[20] = *kind;
        }
        chain.extend_from_slice(&h);
    }
    let plen = u16::from_be_bytes([frame[18], frame[19]]) as usize + chain.len();
    out[18..20].copy_from_slice(&(plen as u16).to_be_bytes());
    out.extend_from_slice(&chain);
    out.extend_from_slice(&frame[54..]);
    out
}

/// The frame without its extension headers (`len` bytes of them, last next header `upper`), so
/// `decode6` can check it.
fn strip_ext(frame: &[u8], len: usize, upper: u8) -> Vec<u8> {
    let mut out = frame[..54].to_vec();
    out[20] = upper;
    let plen = u16::from_be_bytes([frame[18], frame[19]]) as usize - len;
    out[18..20].copy_from_slice(&(plen as u16).to_be_bytes());
    out.extend_from_slice(&frame[54 + len..]);
    out
}

#[test]
fn ipv6_with_one_to_four_extension_headers_is_forwarded_with_them_intact() {
    let Some(mut b) = TestBed::new(1024, true) else {
        return;
    };
    nat_services(&mut b, VIP6.parse().unwrap(), R16.parse().unwrap());
    let kinds = [HOPOPTS, DSTOPTS, ROUTING, DSTOPTS];
    for n in 1..=4usize {
        let headers: Vec<(u8, Vec<u8>)> =
            kinds[..n].iter().map(|k| (*k, ext_header(*k, 0))).collect();
        let ext_len: usize = headers.iter().map(|(_, h)| h.len()).sum();
        for (i, plain) in [
            Frame6::tcp(CIP6, 41000 + n as u16, VIP6, 80, SYN).build(),
            udp6(
                CIP6,
                42000 + n as u16,
                VIP6,
                53,
                b"a question with some bytes",
            )
            .build(),
        ]
        .into_iter()
        .enumerate()
        {
            let upper = plain[20];
            let pkt = with_ext(&plain, &headers);
            let out = b.runner.run_on(&pkt, ifindex_b0()).unwrap();
            assert_eq!(out.action, XDP_TX, "{n} headers, packet {i}");
            assert_eq!(&out.packet[0..6], &MAC_R16);
            assert_eq!(out.packet.len(), pkt.len());
            assert_eq!(
                out.packet[54..54 + ext_len],
                pkt[54..54 + ext_len],
                "extension headers intact"
            );
            assert_eq!(out.packet[20], pkt[20], "first next header intact");
            let d = decode6(&strip_ext(&out.packet, ext_len, upper)).unwrap();
            assert_eq!(
                (d.dst, d.dport, d.hop_limit),
                (R16.parse().unwrap(), 8080, 63)
            );
            assert!(d.l4_checksum_ok, "{n} headers, packet {i}: L4 checksum");
            // The real's answer, with the same headers, leaves from the VIP.
            let answer = if i == 0 {
                Frame6::tcp(R16, 8080, CIP6, 41000 + n as u16, SYN | 0x10).build()
            } else {
                udp6(R16, 8080, CIP6, 42000 + n as u16, b"an answer").build()
            };
            let back = b
                .runner
                .run_on(&with_ext(&answer, &headers), ifindex_b0())
                .unwrap();
            assert_eq!(back.action, XDP_TX);
            assert_eq!(&back.packet[0..6], &MAC_CIP6);
            let d = decode6(&strip_ext(&back.packet, ext_len, answer[20])).unwrap();
            assert_eq!((d.src, d.sport), (VIP6.parse().unwrap(), [80, 53][i]));
            assert!(d.l4_checksum_ok);
        }
    }
    assert_eq!(b.dp.connections().unwrap().len(), 8);
    assert_eq!(b.counter(counter::PASS_IPV6_EXT), 0);
}

#[test]
fn ipv6_extension_headers_we_do_not_walk_go_to_the_kernel_counted() {
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    nat_services(&mut b, VIP6.parse().unwrap(), R16.parse().unwrap());
    let syn = Frame6::tcp(CIP6, 40000, VIP6, 80, SYN).build();
    let h = |k: u8| (k, ext_header(k, 0));
    let unsupported = [
        // Five headers.
        with_ext(
            &syn,
            &[h(HOPOPTS), h(DSTOPTS), h(DSTOPTS), h(DSTOPTS), h(DSTOPTS)],
        ),
        // Routing with segments left: we are not the final destination.
        with_ext(&syn, &[(ROUTING, ext_header(ROUTING, 1))]),
        // Hop-by-hop anywhere but first.
        with_ext(&syn, &[h(DSTOPTS), h(HOPOPTS)]),
        // AH: not walked.
        with_ext(
            &syn,
            &[
                h(DSTOPTS),
                (AH, vec![0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            ],
        ),
    ];
    for (i, pkt) in unsupported.iter().enumerate() {
        let out = b.runner.run(pkt).unwrap();
        assert_eq!((out.action, &out.packet), (XDP_PASS, pkt), "case {i}");
    }
    assert_eq!(b.counter(counter::PASS_IPV6_EXT), 4);
    // A header longer than the payload, and a frame cut inside a header.
    let mut long = with_ext(&syn, &[h(DSTOPTS)]);
    long[55] = 200;
    let cut = with_ext(&syn, &[h(DSTOPTS), h(DSTOPTS)])[..58].to_vec();
    for pkt in [&long, &cut] {
        let out = b.runner.run(pkt).unwrap();
        assert_eq!((out.action, &out.packet), (XDP_PASS, pkt));
    }
    assert_eq!(b.counter(counter::PASS_MALFORMED), 2);
    assert!(b.dp.connections().unwrap().is_empty());
    // Four headers are fine.
    let four = with_ext(&syn, &[h(HOPOPTS), h(DSTOPTS), h(DSTOPTS), h(DSTOPTS)]);
    assert_eq!(b.runner.run(&four).unwrap().action, XDP_PASS);
    assert_eq!(b.dp.connections().unwrap().len(), 1, "opened a connection");
}

/// IPv4 fragments of `frame`'s IP packet: payload pieces of `piece` bytes (a multiple of 8).
fn fragments4(frame: &[u8], id: u16, piece: usize) -> Vec<Vec<u8>> {
    let payload = &frame[34..];
    let mut out = Vec::new();
    for (i, chunk) in payload.chunks(piece).enumerate() {
        let off = i * piece;
        let more = off + chunk.len() < payload.len();
        let mut f = frame[..34].to_vec();
        f[16..18].copy_from_slice(&((20 + chunk.len()) as u16).to_be_bytes());
        f[18..20].copy_from_slice(&id.to_be_bytes());
        let field = (off / 8) as u16 | if more { 0x2000 } else { 0 };
        f[20..22].copy_from_slice(&field.to_be_bytes());
        set_ipv4_checksum(&mut f);
        f.extend_from_slice(chunk);
        out.push(f);
    }
    out
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Reassembles IPv4 fragments (as they left the program) into one frame; checks every
/// fragment's IP checksum, and that they agree on addresses and MACs.
fn reassemble4(frags: &[Vec<u8>]) -> Vec<u8> {
    let mut payload = Vec::new();
    for f in frags {
        assert_eq!(checksum(&f[14..34]), 0, "IP header checksum");
        assert_eq!(f[..12], frags[0][..12], "same MACs");
        assert_eq!(f[26..34], frags[0][26..34], "same addresses");
        let off = (u16::from_be_bytes([f[20], f[21]]) & 0x1fff) as usize * 8;
        assert_eq!(off, payload.len(), "in order");
        let tot = u16::from_be_bytes([f[16], f[17]]) as usize;
        payload.extend_from_slice(&f[34..14 + tot]);
    }
    let mut whole = frags[0][..34].to_vec();
    whole[16..18].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    whole[20..22].copy_from_slice(&[0, 0]);
    set_ipv4_checksum(&mut whole);
    whole.extend_from_slice(&payload);
    whole
}

/// IPv6 fragments of `frame`'s packet (no extension headers): `piece` bytes of upper-layer
/// data each (a multiple of 8).
fn fragments6(frame: &[u8], id: u32, piece: usize) -> Vec<Vec<u8>> {
    let upper = frame[20];
    let payload = &frame[54..];
    let mut out = Vec::new();
    for (i, chunk) in payload.chunks(piece).enumerate() {
        let off = i * piece;
        let more = off + chunk.len() < payload.len();
        let mut f = frame[..54].to_vec();
        f[18..20].copy_from_slice(&((8 + chunk.len()) as u16).to_be_bytes());
        f[20] = FRAGMENT;
        f.extend_from_slice(&[upper, 0]);
        f.extend_from_slice(&((off as u16) | more as u16).to_be_bytes());
        f.extend_from_slice(&id.to_be_bytes());
        f.extend_from_slice(chunk);
        out.push(f);
    }
    out
}

fn reassemble6(frags: &[Vec<u8>]) -> Vec<u8> {
    let mut payload = Vec::new();
    for f in frags {
        assert_eq!(f[..12], frags[0][..12], "same MACs");
        assert_eq!(f[22..54], frags[0][22..54], "same addresses");
        assert_eq!(f[20], FRAGMENT);
        let off = (u16::from_be_bytes([f[56], f[57]]) & 0xfff8) as usize;
        assert_eq!(off, payload.len(), "in order");
        let plen = u16::from_be_bytes([f[18], f[19]]) as usize;
        payload.extend_from_slice(&f[62..54 + plen]);
    }
    let mut whole = frags[0][..54].to_vec();
    whole[20] = frags[0][54];
    whole[18..20].copy_from_slice(&(payload.len() as u16).to_be_bytes());
    whole.extend_from_slice(&payload);
    whole
}

/// Runs every fragment; all must leave with XDP_TX.
fn run_all(b: &TestBed, frags: &[Vec<u8>]) -> Vec<Vec<u8>> {
    frags
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let out = b.runner.run_on(f, ifindex_b0()).unwrap();
            assert_eq!(
                out.action,
                XDP_TX,
                "fragment {i}: counters {:?}",
                b.dp.counters().unwrap()
            );
            out.packet
        })
        .collect()
}

#[test]
fn ipv4_fragments_of_a_nat_connection_follow_their_first_fragment_both_ways() {
    let Some(mut b) = TestBed::new(1024, true) else {
        return;
    };
    nat_services(&mut b, IpAddr::V4(VIP), IpAddr::V4(R1));
    let data: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    let mut whole = Frame::udp(CIP, 5000, VIP, 53, &data).build();
    whole[20] = 0; // no DF
    set_ipv4_checksum(&mut whole);
    let frags = fragments4(&whole, 0x4242, 1480);
    assert_eq!(frags.len(), 3);
    let out = run_all(&b, &frags);
    assert_eq!(&out[0][0..6], &MAC_R1);
    let got = reassemble4(&out);
    let d = decode(&got).unwrap();
    assert_eq!(
        (d.src, d.dst, d.sport, d.dport, d.ttl),
        (CIP, R1, 5000, 8080, 63)
    );
    assert!(d.l4_checksum_ok, "UDP checksum of the reassembled datagram");
    assert_eq!(&got[42..], &data[..], "payload untouched");
    assert_eq!(b.counter(counter::FRAG_FIRST), 1);
    assert_eq!(b.counter(counter::FRAG_FORWARDED), 2);

    // The real's answer, fragmented too, comes back from the VIP.
    let mut answer = Frame::udp(R1, 8080, CIP, 5000, &data[..2000]).build();
    answer[20] = 0;
    set_ipv4_checksum(&mut answer);
    let out = run_all(&b, &fragments4(&answer, 0x4243, 1480));
    assert_eq!(&out[0][0..6], &MAC_CIP);
    let d = decode(&reassemble4(&out)).unwrap();
    assert_eq!((d.src, d.dst, d.sport, d.dport), (VIP, CIP, 53, 5000));
    assert!(d.l4_checksum_ok);
    assert_eq!(b.counter(counter::FRAG_FORWARDED), 3);
    // One datagram each way: one packet each, the later fragments' bytes added.
    let svc =
        b.dp.service(&ServiceAddr::Inet {
            proto: Protocol::Udp,
            addr: IpAddr::V4(VIP),
            port: 53,
        })
        .unwrap();
    assert_eq!((svc.stats.inpkts, svc.stats.outpkts), (1, 1));
    assert_eq!(svc.stats.inbytes, 3028 + 2 * 20);
    assert_eq!(b.dp.connections().unwrap().len(), 1);
}

#[test]
fn ipv6_fragments_of_a_nat_connection_follow_their_first_fragment_both_ways() {
    let Some(mut b) = TestBed::new(1024, true) else {
        return;
    };
    nat_services(&mut b, VIP6.parse().unwrap(), R16.parse().unwrap());
    let data: Vec<u8> = (0..3000u32).map(|i| (i * 13) as u8).collect();
    let whole = udp6(CIP6, 5000, VIP6, 53, &data).build();
    let out = run_all(&b, &fragments6(&whole, 0xdead_beef, 1448));
    assert_eq!(out.len(), 3);
    assert_eq!(&out[0][0..6], &MAC_R16);
    let d = decode6(&reassemble6(&out)).unwrap();
    assert_eq!(
        (d.dst, d.dport, d.hop_limit),
        (R16.parse().unwrap(), 8080, 63)
    );
    assert!(d.l4_checksum_ok, "UDP checksum of the reassembled datagram");
    let answer = udp6(R16, 8080, CIP6, 5000, &data[..2000]).build();
    let out = run_all(&b, &fragments6(&answer, 7, 1448));
    assert_eq!(&out[0][0..6], &MAC_CIP6);
    let d = decode6(&reassemble6(&out)).unwrap();
    assert_eq!((d.src, d.sport), (VIP6.parse().unwrap(), 53));
    assert!(d.l4_checksum_ok);
    assert_eq!(b.counter(counter::FRAG_FIRST), 2);
    assert_eq!(b.counter(counter::FRAG_FORWARDED), 3);
    // A first fragment behind a destination-options header is recorded as well.
    let frags = fragments6(&udp6(CIP6, 5001, VIP6, 53, &data).build(), 99, 1448);
    let first = with_ext(&frags[0], &[(DSTOPTS, ext_header(DSTOPTS, 0))]);
    let second = with_ext(&frags[1], &[(DSTOPTS, ext_header(DSTOPTS, 0))]);
    for f in [&first, &second] {
        assert_eq!(b.runner.run_on(f, ifindex_b0()).unwrap().action, XDP_TX);
    }
    assert_eq!(b.counter(counter::FRAG_FORWARDED), 4);
}

#[test]
fn a_later_fragment_without_its_first_goes_to_the_kernel_or_is_dropped_by_policy() {
    let Some(mut b) = TestBed::new(1024, true) else {
        return;
    };
    nat_services(&mut b, IpAddr::V4(VIP), IpAddr::V4(R1));
    nat_services(&mut b, VIP6.parse().unwrap(), R16.parse().unwrap());
    let data = [7u8; 3000];
    let mut whole = Frame::udp(CIP, 5000, VIP, 53, &data).build();
    whole[20] = 0;
    set_ipv4_checksum(&mut whole);
    let frags = fragments4(&whole, 1, 1480);
    let frags6 = fragments6(&udp6(CIP6, 5000, VIP6, 53, &data).build(), 1, 1448);
    // Out of order: the second before the first.
    for f in [&frags[1], &frags6[1]] {
        let out = b.runner.run_on(f, ifindex_b0()).unwrap();
        assert_eq!(
            (out.action, &out.packet),
            (XDP_PASS, f),
            "to the kernel, unchanged"
        );
    }
    assert_eq!(b.counter(counter::FRAG_UNTRACKED), 2);
    // The first arrives: the following ones are forwarded (the kernel has the early one).
    run_all(&b, &frags[..1]);
    run_all(&b, &frags[2..]);
    run_all(&b, &frags6[..1]);
    run_all(&b, &frags6[2..]);
    assert_eq!(b.counter(counter::FRAG_FORWARDED), 2);
    // Another datagram's id: not ours to guess.
    let stray = fragments4(&whole, 2, 1480).remove(1);
    b.dp.set_path_settings(&PathSettings {
        frag_drop: true,
        ..PathSettings::default()
    })
    .unwrap();
    assert_eq!(
        b.runner.run_on(&stray, ifindex_b0()).unwrap().action,
        XDP_DROP
    );
    assert_eq!(b.counter(counter::DROP_FRAGMENT), 1);
    // Known datagrams still pass under the policy; the host's own fragments are not touched.
    let again = fragments4(&whole, 3, 1480);
    run_all(&b, &again);
    let mut other = Frame::udp(CIP, 5000, Ipv4Addr::new(198, 18, 2, 3), 53, &data).build();
    other[20] = 0;
    set_ipv4_checksum(&mut other);
    let theirs = fragments4(&other, 4, 1480);
    for f in &theirs {
        let out = b.runner.run_on(f, ifindex_b0()).unwrap();
        assert_eq!((out.action, &out.packet), (XDP_PASS, f));
    }
    assert_eq!(b.counter(counter::PASS_FRAGMENT), 3);
    assert_eq!(b.counter(counter::FRAG_UNTRACKED), 2);
}

#[test]
fn dr_fragments_keep_their_addresses_and_get_the_real_servers_mac() {
    let Some(mut b) = TestBed::new(1024, true) else {
        return;
    };
    let addr = ServiceAddr::Inet {
        proto: Protocol::Udp,
        addr: IpAddr::V4(VIP),
        port: 53,
    };
    b.dp.add_service(&ServiceConfig::new(addr)).unwrap();
    let mut d = DestConfig::new(IpAddr::V4(R1), 53);
    d.forward = Forward::Route;
    b.dp.add_dest(&addr, &d).unwrap();
    let mut whole = Frame::udp(CIP, 5000, VIP, 53, &[1u8; 2000]).build();
    whole[20] = 0;
    set_ipv4_checksum(&mut whole);
    let frags = fragments4(&whole, 9, 1480);
    let out = run_all(&b, &frags);
    for (o, f) in out.iter().zip(&frags) {
        assert_eq!(&o[0..6], &MAC_R1);
        assert_eq!(o[12..], f[12..], "IP packet untouched");
    }
}

#[test]
fn fullnat_fragments_get_both_ends_rewritten_both_ways() {
    // No route in this namespace: rewritten packets go to the kernel (XDP_PASS), rewritten.
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    let cfg = ServiceConfig::new(services::inet(Protocol::Udp, VIP, 53));
    let real = services::real(R1, 8080, Forward::FullNat);
    let lip = Ipv4Addr::new(198, 18, 9, 1);
    services::fullnat(&mut b.dp, &cfg, &[real], &[lip.into()]).unwrap();
    let run_all = |frags: &[Vec<u8>]| -> Vec<Vec<u8>> {
        frags
            .iter()
            .map(|f| {
                let (action, out) = b.run(f);
                assert_eq!(action, XDP_PASS);
                out
            })
            .collect()
    };
    let data: Vec<u8> = (0..3000u32).map(|i| (i * 3) as u8).collect();
    let mut whole = Frame::udp(CIP, 5000, VIP, 53, &data).build();
    whole[20] = 0;
    set_ipv4_checksum(&mut whole);
    let d = decode(&reassemble4(&run_all(&fragments4(&whole, 5, 1480)))).unwrap();
    assert_eq!((d.src, d.dst, d.dport), (lip, R1, 8080));
    assert!(d.sport >= 1024, "a local port: {d:?}");
    assert!(d.l4_checksum_ok);
    let mut answer = Frame::udp(R1, 8080, lip, d.sport, &data[..2000]).build();
    answer[20] = 0;
    set_ipv4_checksum(&mut answer);
    let back = decode(&reassemble4(&run_all(&fragments4(&answer, 6, 1480)))).unwrap();
    assert_eq!(
        (back.src, back.sport, back.dst, back.dport),
        (VIP, 53, CIP, 5000)
    );
    assert!(back.l4_checksum_ok);
    assert_eq!(b.counter(counter::FRAG_FORWARDED), 3);
}

#[test]
fn later_fragments_towards_tunnel_reals_are_refused() {
    let Some(mut b) = TestBed::new(1024, true) else {
        return;
    };
    let addr = ServiceAddr::Inet {
        proto: Protocol::Udp,
        addr: IpAddr::V4(VIP),
        port: 53,
    };
    b.dp.add_service(&ServiceConfig::new(addr)).unwrap();
    let mut d = DestConfig::new(IpAddr::V4(R1), 53);
    d.forward = Forward::Tunnel;
    b.dp.add_dest(&addr, &d).unwrap();
    let mut whole = Frame::udp(CIP, 5000, VIP, 53, &[9u8; 2500]).build();
    whole[20] = 0;
    set_ipv4_checksum(&mut whole);
    // Pieces small enough to fit the MTU with the outer header.
    let frags = fragments4(&whole, 11, 1000);
    // The first is encapsulated (xlvs_tunnel parses it like any packet).
    let out = run_all(&b, &frags[..1]).remove(0);
    assert_eq!(&out[0..6], &MAC_R1);
    assert_eq!((out.len(), out[23]), (frags[0].len() + 20, 4), "IPIP");
    assert_eq!(out[34 + 8], 63, "inner TTL decremented, as IPVS does");
    assert_eq!(
        &out[34 + 12..],
        &frags[0][26..],
        "the fragment otherwise untouched"
    );
    // The later ones are not: xlvs_tunnel needs a whole inner packet (to the kernel, counted).
    for f in &frags[1..] {
        let out = b.runner.run_on(f, ifindex_b0()).unwrap();
        assert_eq!((out.action, &out.packet), (XDP_PASS, f));
    }
    assert_eq!(b.counter(counter::FRAG_REFUSED), 2);
}

#[test]
fn a_fragmented_syn_to_a_synproxy_service_is_refused() {
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    let addr = ServiceAddr::Inet {
        proto: Protocol::Tcp,
        addr: IpAddr::V4(VIP),
        port: 80,
    };
    let mut cfg = ServiceConfig::new(addr);
    cfg.synproxy = true;
    b.dp.add_service(&cfg).unwrap();
    let mut d = DestConfig::new(IpAddr::V4(R1), 8080);
    d.forward = Forward::Masq;
    b.dp.add_dest(&addr, &d).unwrap();
    let mut syn = Frame::tcp(CIP, 40000, VIP, 80, SYN);
    syn.payload = vec![0; 40];
    let mut whole = syn.build();
    whole[20] = 0;
    set_ipv4_checksum(&mut whole);
    let first = fragments4(&whole, 3, 32).remove(0);
    let (action, out) = b.run(&first);
    assert_eq!(
        (action, &out),
        (XDP_PASS, &first),
        "no cookie for a fragment"
    );
    assert_eq!(b.counter(counter::FRAG_REFUSED), 1);
    assert_eq!(b.counter(counter::SYNPROXY_COOKIE_SENT), 0);
    b.dp.set_path_settings(&PathSettings {
        frag_drop: true,
        ..PathSettings::default()
    })
    .unwrap();
    assert_eq!(b.run(&first).0, XDP_DROP);
    assert_eq!(b.counter(counter::DROP_FRAGMENT), 1);
    assert!(b.dp.connections().unwrap().is_empty());
}
