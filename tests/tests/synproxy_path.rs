//! SYNPROXY in the XDP packet path (TEST_RUN): cookie SYN-ACKs sent back with XDP_TX, cookie
//! ACKs checked and turned into the SYN to the real server, the real's SYN-ACK answered with an
//! ACK (with TOA for FULLNAT), sequence numbers translated afterwards, RST during setup
//! translated, lost SYNs sent again. Needs root.

use std::net::Ipv4Addr;

use dataplane::model::*;
use ebpf_common::counter;
use xlvs_tests::addrs::{CIP, L1, R1, VIP};
use xlvs_tests::packet::{ACK, Frame, RST, SYN, decode};
use xlvs_tests::services;
use xlvs_tests::testbed::{TestBed, XDP_DROP, XDP_PASS, XDP_TX};

/// A SYNPROXY FULLNAT service VIP:80 -> R1:8080 with local address L1.
fn bed() -> Option<TestBed> {
    let mut b = TestBed::new(1024, false)?;
    let cfg = ServiceConfig {
        synproxy: true,
        ..ServiceConfig::new(services::inet(Protocol::Tcp, VIP, 80))
    };
    let real = services::real(R1, 8080, Forward::FullNat);
    services::fullnat(&mut b.dp, &cfg, &[real], &[L1.into()]).unwrap();
    Some(b)
}

/// TCP fields of an untagged IPv4 frame: (seq, ack, flags, options).
fn tcp(frame: &[u8]) -> (u32, u32, u8, Vec<u8>) {
    let t = &frame[34..];
    let doff = (t[12] >> 4) as usize * 4;
    (
        u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
        u32::from_be_bytes([t[8], t[9], t[10], t[11]]),
        t[13],
        t[20..doff].to_vec(),
    )
}

/// (window, payload) of an untagged IPv4/TCP frame.
fn window_and_payload(frame: &[u8]) -> (u16, Vec<u8>) {
    let t = &frame[34..];
    let doff = (t[12] >> 4) as usize * 4;
    let tot = u16::from_be_bytes([frame[16], frame[17]]) as usize;
    (
        u16::from_be_bytes([t[14], t[15]]),
        frame[34 + doff..14 + tot].to_vec(),
    )
}

fn segment(sport: u16, flags: u8, seq: u32, ack: u32) -> Frame {
    let mut f = Frame::tcp(CIP, sport, VIP, 80, flags);
    f.seq = seq;
    f.ack = ack;
    f
}

/// SYN from CIP:`sport` (ISN 1000, MSS 1460): the cookie of the SYN-ACK that comes back.
fn syn(b: &TestBed, sport: u16) -> u32 {
    let mut f = segment(sport, SYN, 1000, 0);
    f.tcp_options = vec![2, 4, 0x05, 0xb4];
    let (action, out) = b.run(&f.build());
    assert_eq!(action, XDP_TX, "answered here");
    tcp(&out).0
}

#[test]
fn a_syn_is_answered_with_a_cookie_and_nothing_is_stored() {
    let Some(b) = bed() else { return };
    let mut f = segment(40000, SYN, 1000, 0);
    f.tcp_options = vec![2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7];
    let frame = f.build();
    let (action, out) = b.run(&frame);
    assert_eq!(action, XDP_TX);
    let d = decode(&out).unwrap();
    assert_eq!((d.src, d.sport, d.dst, d.dport), (VIP, 80, CIP, 40000));
    assert!(d.ip_checksum_ok && d.l4_checksum_ok, "{d:?}");
    assert_eq!(
        (&out[..6], &out[6..12]),
        (&frame[6..12], &frame[..6]),
        "MACs swapped"
    );
    let (_, ack, flags, opts) = tcp(&out);
    assert_eq!((ack, flags), (1001, SYN | ACK));
    assert_eq!(opts, vec![2, 4, 0x05, 0xac], "only an MSS (1460 - TOA)");
    assert_eq!(
        window_and_payload(&out).0,
        0,
        "closed until the real's side is open"
    );
    assert!(b.dp.connections().unwrap().is_empty());
    assert_eq!(b.counter(counter::SYNPROXY_COOKIE_SENT), 1);
    // Two SYNs of the same flow get the same cookie (stateless).
    assert_eq!(tcp(&b.run(&frame).1).0, tcp(&out).0);
}

#[test]
fn the_whole_handshake_then_translated_sequence_numbers_and_toa() {
    let Some(b) = bed() else { return };
    let cookie = syn(&b, 40000);

    // A forged ACK does not open anything.
    let (action, _) = b.run(&segment(40001, ACK, 1001, cookie ^ 0xff00_0000).build());
    assert_eq!(action, XDP_DROP);
    assert_eq!(b.counter(counter::SYNPROXY_BAD_COOKIE), 1);

    // The client's ACK becomes the SYN to the real (the client's ISN, an MSS option).
    let (action, out) = b.run(&segment(40000, ACK, 1001, cookie.wrapping_add(1)).build());
    assert_eq!(
        action, XDP_PASS,
        "routed by the kernel in this empty namespace"
    );
    let d = decode(&out).unwrap();
    assert_eq!((d.src, d.dst, d.dport), (L1, R1, 8080));
    assert!(d.ip_checksum_ok && d.l4_checksum_ok, "{d:?}");
    let (seq, _, flags, opts) = tcp(&out);
    assert_eq!((seq, flags, opts), (1000, SYN, vec![2, 4, 0x05, 0xb4]));
    let lport = d.sport;
    assert_eq!(b.dp.connections().unwrap().len(), 1);

    // The real's SYN-ACK becomes, for the client, one byte it already has (at our cookie's
    // sequence number) with the real's window: the window our SYN-ACK closed opens, and the
    // client acknowledges at once.
    let mut synack = Frame::tcp(R1, 8080, L1, lport, SYN | ACK);
    synack.seq = 7000;
    synack.ack = 1001;
    synack.tcp_options = vec![2, 4, 0x05, 0xb4];
    let (action, out) = b.run(&synack.build());
    assert_eq!(action, XDP_PASS, "routed by the kernel");
    let d = decode(&out).unwrap();
    assert_eq!((d.src, d.sport, d.dst, d.dport), (VIP, 80, CIP, 40000));
    assert!(d.ip_checksum_ok && d.l4_checksum_ok, "{d:?}");
    let (seq, ack, flags, opts) = tcp(&out);
    assert_eq!((seq, ack, flags), (cookie, 1001, ACK));
    assert!(
        opts.is_empty(),
        "no SYN options on a later segment: {opts:?}"
    );
    assert_eq!(window_and_payload(&out), (64240, vec![0]));
    assert_eq!(b.counter(counter::SYNPROXY_ESTABLISHED), 1);
    let conns = b.dp.connections().unwrap();
    assert_eq!(conns[0].state, "ESTABLISHED");

    // The client's immediate acknowledgement completes the real's handshake, with TOA.
    let (_, out) = b.run(&segment(40000, ACK, 1001, cookie.wrapping_add(1)).build());
    let d = decode(&out).unwrap();
    assert_eq!((d.src, d.sport, d.dst, d.dport), (L1, lport, R1, 8080));
    assert!(d.ip_checksum_ok && d.l4_checksum_ok, "{d:?}");
    let (seq, ack, flags, opts) = tcp(&out);
    assert_eq!((seq, ack, flags), (1001, 7001, ACK));
    let mut toa = vec![254, 8];
    toa.extend_from_slice(&40000u16.to_be_bytes());
    toa.extend_from_slice(&CIP.octets());
    assert_eq!(opts, toa);

    // Client data: its acknowledgement moves into the real's space (and carries TOA).
    let mut data = segment(40000, ACK, 1001, cookie.wrapping_add(1));
    data.payload = b"GET /".to_vec();
    let (_, out) = b.run(&data.build());
    let d = decode(&out).unwrap();
    assert!(d.ip_checksum_ok && d.l4_checksum_ok, "{d:?}");
    let (seq, ack, _, opts) = tcp(&out);
    assert_eq!((seq, ack), (1001, 7001));
    assert_eq!(&opts[..8], &toa[..]);
    // The real's answer: its sequence numbers move into the cookie's space.
    let mut answer = Frame::tcp(R1, 8080, L1, lport, ACK);
    answer.seq = 7001;
    answer.ack = 1006;
    answer.payload = b"HTTP/1.1 200 OK".to_vec();
    let (_, out) = b.run(&answer.build());
    let d = decode(&out).unwrap();
    assert_eq!((d.src, d.sport, d.dst, d.dport), (VIP, 80, CIP, 40000));
    assert!(d.ip_checksum_ok && d.l4_checksum_ok, "{d:?}");
    assert_eq!(tcp(&out).0, cookie.wrapping_add(1));
    assert_eq!(tcp(&out).1, 1006);
}

#[test]
fn a_refusing_real_resets_the_client_and_a_lost_syn_is_sent_again() {
    let Some(b) = bed() else { return };
    let cookie = syn(&b, 40000);
    let (_, out) = b.run(&segment(40000, ACK, 1001, cookie.wrapping_add(1)).build());
    let lport = decode(&out).unwrap().sport;

    // The client sends data before the real answered: the SYN goes out again.
    let mut data = segment(40000, ACK, 1001, cookie.wrapping_add(1));
    data.payload = b"GET /".to_vec();
    let (action, out) = b.run(&data.build());
    assert_eq!(action, XDP_PASS);
    let d = decode(&out).unwrap();
    assert!(d.l4_checksum_ok);
    assert_eq!((tcp(&out).0, tcp(&out).2), (1000, SYN));
    assert_eq!(b.counter(counter::SYNPROXY_SYN_RESENT), 1);

    // The real refuses: the client gets a RST it accepts (our next sequence number).
    let mut rst = Frame::tcp(R1, 8080, L1, lport, RST | ACK);
    rst.seq = 0;
    rst.ack = 1001;
    let (action, out) = b.run(&rst.build());
    assert_eq!(action, XDP_PASS);
    let d = decode(&out).unwrap();
    assert_eq!((d.src, d.sport, d.dst, d.dport), (VIP, 80, CIP, 40000));
    assert!(d.ip_checksum_ok && d.l4_checksum_ok, "{d:?}");
    assert_eq!(tcp(&out).0, cookie.wrapping_add(1));
    assert_eq!(tcp(&out).2 & RST, RST);
    let conns = b.dp.connections().unwrap();
    assert_eq!(conns[0].state, "CLOSE");
}

#[test]
fn icmp_errors_quoting_our_replies_reach_the_real_in_its_own_sequence_space() {
    use xlvs_tests::packet::icmp_error;
    let Some(b) = bed() else { return };
    let cookie = syn(&b, 40000);
    let (_, out) = b.run(&segment(40000, ACK, 1001, cookie.wrapping_add(1)).build());
    let lport = decode(&out).unwrap().sport;
    let mut synack = Frame::tcp(R1, 8080, L1, lport, SYN | ACK);
    synack.seq = 7000;
    synack.ack = 1001;
    b.run(&synack.build());
    // A reply of the real (seq 7001) as the client side saw it (cookie space), quoted by a
    // router there: the real gets it back with its own sequence number.
    let mut answer = Frame::tcp(R1, 8080, L1, lport, ACK);
    answer.seq = 7001;
    answer.ack = 1001;
    let (_, sent) = b.run(&answer.build());
    assert_eq!(tcp(&sent).0, cookie.wrapping_add(1));
    let router = Ipv4Addr::new(198, 18, 1, 254);
    let (_, o) = b.run(&icmp_error(router, VIP, 3, 4, &sent[14..]));
    let d = xlvs_tests::packet::decode_icmp(&o).unwrap();
    assert!(d.checksums_ok, "{d:?}");
    assert_eq!((d.dst, d.quoted_src, d.quoted_dst), (R1, R1, L1));
    let quoted_seq = u32::from_be_bytes([
        o[34 + 8 + 24],
        o[34 + 8 + 25],
        o[34 + 8 + 26],
        o[34 + 8 + 27],
    ]);
    assert_eq!(quoted_seq, 7001);
}

#[test]
fn a_client_starting_over_gets_a_cookie_even_while_its_old_attempt_is_pending() {
    let Some(b) = bed() else { return };
    let cookie = syn(&b, 40000);
    b.run(&segment(40000, ACK, 1001, cookie.wrapping_add(1)).build());
    // The real never answers; the client gives up and connects again from the same port.
    assert_eq!(
        syn(&b, 40000),
        cookie,
        "answered with a cookie, not dropped"
    );
    assert_eq!(b.counter(counter::SYNPROXY_COOKIE_SENT), 2);
}

/// Sets the window of an untagged IPv4 TCP frame, fixing the checksum (RFC 1624).
fn set_window(frame: &mut [u8], w: u16) {
    let old = u16::from_be_bytes([frame[48], frame[49]]);
    let check = u16::from_be_bytes([frame[50], frame[51]]);
    let mut sum = (!check as u32) + (!old as u32) + w as u32;
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    frame[48..50].copy_from_slice(&w.to_be_bytes());
    frame[50..52].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

fn window(frame: &[u8]) -> u16 {
    u16::from_be_bytes([frame[48], frame[49]])
}

fn be(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

/// NOP,NOP,TS(tsval, tsecr) as Linux sends it in every segment.
fn ts_opt(tsval: u32, tsecr: u32) -> Vec<u8> {
    let mut o = vec![1, 1, 8, 10];
    o.extend_from_slice(&be(tsval));
    o.extend_from_slice(&be(tsecr));
    o
}

#[test]
fn timestamps_sack_and_window_scaling_are_negotiated_through_the_tsval_and_translated() {
    let Some(b) = bed() else { return };
    // Linux's SYN: MSS 1460, SACK-permitted, TS, window scale 9.
    let mut f = segment(40000, SYN, 1000, 0);
    f.tcp_options = vec![2, 4, 0x05, 0xb4, 4, 2, 8, 10];
    f.tcp_options.extend_from_slice(&be(0x1122_3344));
    f.tcp_options.extend_from_slice(&[0, 0, 0, 0, 1, 3, 3, 9]);
    let (action, out) = b.run(&f.build());
    assert_eq!(action, XDP_TX);
    assert!(decode(&out).unwrap().l4_checksum_ok);
    let (cookie, _, flags, opts) = tcp(&out);
    assert_eq!(flags, SYN | ACK);
    assert_eq!(opts.len(), 20, "{opts:?}");
    assert_eq!(
        &opts[..8],
        &[2, 4, 0x05, 0xac, 4, 2, 8, 10],
        "MSS, SACK-perm, TS"
    );
    let ours = u32::from_be_bytes([opts[8], opts[9], opts[10], opts[11]]);
    assert_eq!(&opts[12..16], &be(0x1122_3344), "TSecr echoes the client");
    assert_eq!(&opts[16..], &[1, 3, 3, 7], "we announce window scale 7");
    // The client's options in our TSval: scale 9, SACK, MSS index 3 (1460).
    assert_eq!(ours & 0xf, 9);
    assert_eq!(ours & 0x10, 0x10);
    assert_eq!((ours >> 6) & 3, 3);
    assert_eq!(b.counter(counter::SYNPROXY_OPTIONS), 1);

    // The ACK echoes our TSval: the SYN to the real offers the client's own options.
    let mut ack = segment(40000, ACK, 1001, cookie.wrapping_add(1));
    ack.tcp_options = ts_opt(0x1122_3350, ours);
    let (_, out) = b.run(&ack.build());
    let d = decode(&out).unwrap();
    assert!(d.l4_checksum_ok);
    let lport = d.sport;
    let (seq, _, flags, opts) = tcp(&out);
    assert_eq!((seq, flags), (1000, SYN));
    let mut want = vec![2, 4, 0x05, 0xb4, 4, 2, 8, 10];
    want.extend_from_slice(&be(0x1122_3350));
    want.extend_from_slice(&[0, 0, 0, 0, 1, 3, 3, 9]);
    assert_eq!(opts, want);

    // The real answers with scale 10 and its own clock: the client gets the window opening
    // segment with the real's TSval in our clock and the real's window in scale 7.
    let mut synack = Frame::tcp(R1, 8080, L1, lport, SYN | ACK);
    synack.seq = 7000;
    synack.ack = 1001;
    synack.tcp_options = vec![2, 4, 0x05, 0xb4, 4, 2, 8, 10];
    synack.tcp_options.extend_from_slice(&be(0x0a00_0000));
    synack.tcp_options.extend_from_slice(&be(0x1122_3350));
    synack.tcp_options.extend_from_slice(&[1, 3, 3, 10]);
    let (_, out) = b.run(&synack.build());
    let d = decode(&out).unwrap();
    assert_eq!((d.src, d.dst), (VIP, CIP));
    assert!(d.ip_checksum_ok && d.l4_checksum_ok, "{d:?}");
    let (seq, ack_no, _, opts) = tcp(&out);
    assert_eq!((seq, ack_no), (cookie, 1001));
    assert_eq!(opts, ts_opt(ours, 0x1122_3350));
    assert_eq!(
        window_and_payload(&out),
        ((64240 >> 10) << 3, vec![0]),
        "the real's window in scale 7"
    );
    // The client's acknowledgement completes the real's handshake: TOA and timestamps.
    let mut ack = segment(40000, ACK, 1001, cookie.wrapping_add(1));
    ack.tcp_options = ts_opt(0x1122_3355, ours);
    let (_, out) = b.run(&ack.build());
    assert!(decode(&out).unwrap().l4_checksum_ok);
    let (seq, ack_no, _, opts) = tcp(&out);
    assert_eq!((seq, ack_no), (1001, 7001));
    assert_eq!(&opts[..2], &[254, 8]);
    assert_eq!(&opts[8..], &ts_opt(0x1122_3355, 0x0a00_0000)[..]);

    // Client data (gets TOA first, so its timestamps are found by the walk): TSecr back to the
    // real's clock, SACK edges into the real's sequence space.
    let mut data = segment(40000, ACK, 1001, cookie.wrapping_add(1));
    data.tcp_options = ts_opt(0x1122_3360, ours.wrapping_add(5));
    data.tcp_options.extend_from_slice(&[1, 1, 5, 10]);
    data.tcp_options
        .extend_from_slice(&be(cookie.wrapping_add(101)));
    data.tcp_options
        .extend_from_slice(&be(cookie.wrapping_add(201)));
    data.payload = b"GET /".to_vec();
    let mut frame = data.build();
    set_window(&mut frame, 1000);
    let (_, out) = b.run(&frame);
    let d = decode(&out).unwrap();
    assert!(d.ip_checksum_ok && d.l4_checksum_ok, "{d:?}");
    let (_, ack_no, _, opts) = tcp(&out);
    assert_eq!(ack_no, 7001);
    assert_eq!(&opts[..2], &[254, 8], "TOA first");
    assert_eq!(&opts[8..20], &ts_opt(0x1122_3360, 0x0a00_0005)[..]);
    assert_eq!(&opts[20..24], &[1, 1, 5, 10]);
    assert_eq!(&opts[24..28], &be(7101));
    assert_eq!(&opts[28..32], &be(7201));
    assert_eq!(
        window(&out),
        1000,
        "the real reads the client's scale: unchanged"
    );

    // The real's data: seq and TSval into the client's view, window from scale 10 to 7.
    let mut answer = Frame::tcp(R1, 8080, L1, lport, ACK);
    answer.seq = 7001;
    answer.ack = 1006;
    answer.tcp_options = ts_opt(0x0a00_0010, 0x1122_3360);
    answer.payload = b"HTTP/1.1 200 OK".to_vec();
    let mut frame = answer.build();
    set_window(&mut frame, 100);
    let (_, out) = b.run(&frame);
    let d = decode(&out).unwrap();
    assert_eq!((d.src, d.dst), (VIP, CIP));
    assert!(d.ip_checksum_ok && d.l4_checksum_ok, "{d:?}");
    let (seq, _, _, opts) = tcp(&out);
    assert_eq!(seq, cookie.wrapping_add(1));
    assert_eq!(opts, ts_opt(ours.wrapping_add(0x10), 0x1122_3360));
    assert_eq!(window(&out), 800, "100 << (10 - 7)");

    // Another layout: one NOP, then TS at an odd offset (checksum over straddled words).
    let mut odd = segment(40000, ACK, 1006, cookie.wrapping_add(16));
    odd.tcp_options = vec![1, 8, 10];
    odd.tcp_options.extend_from_slice(&be(0x1122_3370));
    odd.tcp_options
        .extend_from_slice(&be(ours.wrapping_add(0x10)));
    odd.tcp_options.push(0);
    let (_, out) = b.run(&odd.build());
    let d = decode(&out).unwrap();
    assert!(d.l4_checksum_ok, "{d:?}");
    let (_, ack_no, _, opts) = tcp(&out);
    assert_eq!(ack_no, 7016);
    assert_eq!(&opts[3..7], &be(0x1122_3370));
    assert_eq!(&opts[7..11], &be(0x0a00_0010));

    // Malformed options (a length running past the header): dropped and counted.
    let mut bad = segment(40000, ACK, 1006, cookie.wrapping_add(16));
    bad.tcp_options = vec![8, 40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let (action, _) = b.run(&bad.build());
    assert_eq!(action, XDP_DROP);
    assert_eq!(b.counter(counter::SYNPROXY_BAD_OPTIONS), 1);
}

#[test]
fn a_real_without_window_scaling_gets_the_clients_windows_scaled_up() {
    let Some(b) = bed() else { return };
    let mut f = segment(40000, SYN, 1000, 0);
    f.tcp_options = vec![2, 4, 0x05, 0xb4, 1, 1, 8, 10];
    f.tcp_options.extend_from_slice(&be(500));
    f.tcp_options.extend_from_slice(&[0, 0, 0, 0, 1, 3, 3, 2]);
    let (_, out) = b.run(&f.build());
    let (cookie, _, _, opts) = tcp(&out);
    assert_eq!(
        &opts[4..6],
        &[1, 1],
        "no SACK-permitted: the client offered none"
    );
    let ours = u32::from_be_bytes([opts[8], opts[9], opts[10], opts[11]]);
    assert_eq!(ours & 0x1f, 2);
    let mut ack = segment(40000, ACK, 1001, cookie.wrapping_add(1));
    ack.tcp_options = ts_opt(501, ours);
    let (_, out) = b.run(&ack.build());
    let lport = decode(&out).unwrap().sport;
    assert_eq!(&tcp(&out).3[4..6], &[1, 1]);
    // The real answers without window scale (and without timestamps).
    let mut synack = Frame::tcp(R1, 8080, L1, lport, SYN | ACK);
    synack.seq = 7000;
    synack.ack = 1001;
    synack.tcp_options = vec![2, 4, 0x05, 0xb4];
    let (_, out) = b.run(&synack.build());
    assert!(tcp(&out).3.is_empty(), "the real refused timestamps");
    assert_eq!(
        window_and_payload(&out),
        (64240 >> 7, vec![0]),
        "the real's unscaled window in the client's scale 7"
    );
    let mut data = segment(40000, ACK, 1001, cookie.wrapping_add(2));
    data.tcp_options = ts_opt(502, ours);
    let mut frame = data.build();
    set_window(&mut frame, 300);
    let (_, out) = b.run(&frame);
    assert!(decode(&out).unwrap().l4_checksum_ok);
    assert_eq!(window(&out), 1200, "300 << 2: the real reads it unscaled");
    let mut answer = Frame::tcp(R1, 8080, L1, lport, ACK);
    answer.seq = 7001;
    answer.ack = 1001;
    let mut frame = answer.build();
    set_window(&mut frame, 6400);
    let (_, out) = b.run(&frame);
    assert!(decode(&out).unwrap().l4_checksum_ok);
    assert_eq!(window(&out), 50, "6400 >> 7: the client applies scale 7");
}

#[test]
fn defer_mode_opens_the_real_side_on_the_first_data_not_on_the_handshake_ack() {
    let Some(mut b) = bed() else { return };
    b.dp.set_path_settings(&PathSettings {
        synproxy_defer: true,
        ..PathSettings::default()
    })
    .unwrap();
    assert!(b.dp.path_settings().unwrap().synproxy_defer);
    let cookie = syn(&b, 40000);
    // The handshake's ACK: checked, but nothing is opened and nothing is sent.
    let (action, _) = b.run(&segment(40000, ACK, 1001, cookie.wrapping_add(1)).build());
    assert_eq!(action, XDP_DROP);
    assert_eq!(b.counter(counter::SYNPROXY_DEFERRED), 1);
    assert_eq!(b.counter(counter::SYNPROXY_OPENED), 0);
    assert!(b.dp.connections().unwrap().is_empty());
    // A forged ACK is still refused as such.
    let (action, _) = b.run(&segment(40001, ACK, 1001, cookie ^ 0x00ff_0000).build());
    assert_eq!(action, XDP_DROP);
    assert_eq!(b.counter(counter::SYNPROXY_BAD_COOKIE), 1);
    // The first data segment opens the real's side: it becomes the SYN to the real.
    let mut data = segment(40000, ACK, 1001, cookie.wrapping_add(1));
    data.payload = b"GET / HTTP/1.0\r\n\r\n".to_vec();
    let (action, out) = b.run(&data.build());
    assert_eq!(action, XDP_PASS);
    let d = decode(&out).unwrap();
    assert_eq!((d.src, d.dst, d.dport), (L1, R1, 8080));
    assert!(d.l4_checksum_ok);
    let (seq, _, flags, _) = tcp(&out);
    assert_eq!((seq, flags), (1000, SYN));
    assert_eq!(b.counter(counter::SYNPROXY_OPENED), 1);
    assert_eq!(b.dp.connections().unwrap().len(), 1);
}

/// CIP:40000's proxied connection (client ISN 1000, real ISN 7000), reset by the real: CLOSE.
/// Returns the cookie (our ISN towards the client).
fn closed_connection(b: &TestBed) -> u32 {
    let cookie = syn(b, 40000);
    let (_, out) = b.run(&segment(40000, ACK, 1001, cookie.wrapping_add(1)).build());
    let lport = decode(&out).unwrap().sport;
    let mut synack = Frame::tcp(R1, 8080, L1, lport, SYN | ACK);
    synack.seq = 7000;
    synack.ack = 1001;
    b.run(&synack.build());
    let mut rst = Frame::tcp(R1, 8080, L1, lport, RST | ACK);
    rst.seq = 7001;
    rst.ack = 1001;
    b.run(&rst.build());
    assert_eq!(b.dp.connections().unwrap()[0].state, "CLOSE");
    cookie
}

#[test]
fn a_new_handshake_reusing_a_closed_connections_port_opens_a_new_connection() {
    let Some(b) = bed() else { return };
    let cookie = closed_connection(&b);

    // A late segment of the old connection (no valid cookie): still translated and sent on.
    let (action, out) = b.run(&segment(40000, ACK, 1001, cookie.wrapping_add(50)).build());
    assert_ne!(action, XDP_DROP);
    assert_eq!(tcp(&out).1, 7050, "acknowledgement in the real's space");

    // The client connects again from the same port: cookie, then its ACK opens anew.
    let mut f = segment(40000, SYN, 5000, 0);
    f.tcp_options = vec![2, 4, 0x05, 0xb4];
    let (action, out) = b.run(&f.build());
    assert_eq!(action, XDP_TX);
    let cookie2 = tcp(&out).0;
    let (action, out) = b.run(&segment(40000, ACK, 5001, cookie2.wrapping_add(1)).build());
    assert_eq!(action, XDP_PASS);
    let (seq, _, flags, _) = tcp(&out);
    assert_eq!((seq, flags), (5000, SYN), "a new SYN to the real");
    assert_eq!(b.counter(counter::SYNPROXY_OPENED), 2);
    let conns = b.dp.connections().unwrap();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0].state, "SYN_RECV");
}

/// SYN cookies are linear in the sequence numbers: after both sides sent as many bytes (a
/// health check that connects and closes, an echo), the client's last ACK of a closed
/// connection checks as a cookie ACK. Without a new SYN from the client on that flow it is the
/// old connection's: translated and sent on, nothing opened.
#[test]
fn the_last_ack_of_a_closed_connection_is_not_taken_for_a_new_handshake() {
    let Some(b) = bed() else { return };
    let cookie = closed_connection(&b);
    // Both sides 6 further on: a valid cookie by the kernel's arithmetic.
    let (action, out) = b.run(&segment(40000, ACK, 1007, cookie.wrapping_add(7)).build());
    assert_ne!(action, XDP_DROP);
    let (seq, ack, flags, _) = tcp(&out);
    assert_eq!(
        (seq, ack, flags),
        (1007, 7007, ACK),
        "the old connection's ACK, in the real's space"
    );
    assert_eq!(b.counter(counter::SYNPROXY_OPENED), 1, "nothing reopened");
}

#[test]
fn a_real_answering_our_syn_from_time_wait_gets_a_reset_that_ends_it() {
    let Some(b) = bed() else { return };
    let cookie = syn(&b, 40000);
    let (_, out) = b.run(&segment(40000, ACK, 1001, cookie.wrapping_add(1)).build());
    let lport = decode(&out).unwrap().sport;
    // The real's TIME_WAIT answers the SYN with the ACK of its old connection.
    let mut tw_ack = Frame::tcp(R1, 8080, L1, lport, ACK);
    tw_ack.seq = 90_000;
    tw_ack.ack = 55_555;
    let (action, out) = b.run(&tw_ack.build());
    assert_eq!(action, XDP_TX);
    let d = decode(&out).unwrap();
    assert_eq!((d.src, d.sport, d.dst, d.dport), (L1, lport, R1, 8080));
    assert!(d.ip_checksum_ok && d.l4_checksum_ok, "{d:?}");
    let (seq, _, flags, _) = tcp(&out);
    assert_eq!(
        (seq, flags),
        (55_555, RST),
        "RST at the ACK's acknowledgement number"
    );
    assert_eq!(b.counter(counter::SYNPROXY_REAL_TW_RESET), 1);
    // Still pending: the client's next segment sends the SYN again.
    let (_, out) = b.run(&segment(40000, ACK, 1001, cookie.wrapping_add(1)).build());
    assert_eq!(tcp(&out).2, SYN);
}

// ---------------------------------------------------------------------------------------------
// IPv6: the same handshakes through `xlvs_synproxy6` (IPv6 cookies, the kernel's IPv6 MSS
// table, no IP checksum but a pseudo-header over both 128-bit addresses, TOA 253/20).
// ---------------------------------------------------------------------------------------------

mod v6 {
    use super::{be, counter, ts_opt};
    use std::net::{IpAddr, Ipv6Addr};

    use dataplane::model::*;
    use xlvs_tests::addrs::{CIP6 as CIP, R6 as R1, VIP6 as VIP};
    use xlvs_tests::packet::{ACK, Frame6, RST, SYN, decode6};
    use xlvs_tests::services;
    use xlvs_tests::testbed::{TestBed, XDP_DROP, XDP_PASS, XDP_TX};

    const L1: &str = "2001:db8:9::1";

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// A SYNPROXY service [VIP]:80 -> [R1]:8080, FULLNAT (local address L1) or NAT.
    fn bed(fullnat: bool) -> Option<TestBed> {
        let mut b = TestBed::new(1024, false)?;
        let cfg = ServiceConfig {
            synproxy: true,
            ..ServiceConfig::new(services::inet(Protocol::Tcp, ip(VIP), 80))
        };
        let (forward, laddrs) = match fullnat {
            true => (Forward::FullNat, vec![IpAddr::V6(ip(L1))]),
            false => (Forward::Masq, vec![]),
        };
        let real = services::real(ip(R1), 8080, forward);
        services::fullnat(&mut b.dp, &cfg, &[real], &laddrs).unwrap();
        Some(b)
    }

    /// TCP fields of an untagged IPv6 frame: (seq, ack, flags, options).
    fn tcp(frame: &[u8]) -> (u32, u32, u8, Vec<u8>) {
        let t = &frame[54..];
        let doff = (t[12] >> 4) as usize * 4;
        (
            u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
            u32::from_be_bytes([t[8], t[9], t[10], t[11]]),
            t[13],
            t[20..doff].to_vec(),
        )
    }

    fn window(frame: &[u8]) -> u16 {
        u16::from_be_bytes([frame[68], frame[69]])
    }

    /// The IPv6 payload length field and what the frame holds after the header.
    fn payload_len(frame: &[u8]) -> (usize, usize) {
        (
            u16::from_be_bytes([frame[18], frame[19]]) as usize,
            frame.len() - 54,
        )
    }

    fn segment(sport: u16, flags: u8, seq: u32, ack: u32) -> Frame6 {
        let mut f = Frame6::tcp(CIP, sport, VIP, 80, flags);
        f.seq = seq;
        f.ack = ack;
        f
    }

    fn from_real(dport: u16, flags: u8, seq: u32, ack: u32, dst: &str) -> Frame6 {
        let mut f = Frame6::tcp(R1, 8080, dst, dport, flags);
        f.seq = seq;
        f.ack = ack;
        f
    }

    /// Linux's SYN with MSS `mss`, SACK-permitted, TS (TSval 0x1122_3344) and window scale 9.
    fn linux_syn(sport: u16, mss: u16) -> Frame6 {
        let mut f = segment(sport, SYN, 1000, 0);
        let m = mss.to_be_bytes();
        f.tcp_options = vec![2, 4, m[0], m[1], 4, 2, 8, 10];
        f.tcp_options.extend_from_slice(&be(0x1122_3344));
        f.tcp_options.extend_from_slice(&[0, 0, 0, 0, 1, 3, 3, 9]);
        f
    }

    #[test]
    fn ipv6_syn_gets_a_cookie_syn_ack_with_the_ipv6_mss_table_and_valid_checksum() {
        let Some(b) = bed(true) else { return };
        // MSS 1300: index 0 (1220) in the kernel's IPv6 table; the IPv4 one would say 1 (1300).
        let frame = linux_syn(40000, 1300).build();
        let (action, out) = b.run(&frame);
        assert_eq!(action, XDP_TX, "answered here");
        let d = decode6(&out).unwrap();
        assert_eq!(
            (d.src, d.sport, d.dst, d.dport),
            (ip(VIP), 80, ip(CIP), 40000)
        );
        assert!(d.l4_checksum_ok, "{d:?}");
        assert_eq!(d.hop_limit, 64);
        assert_eq!(
            (&out[..6], &out[6..12]),
            (&frame[6..12], &frame[..6]),
            "MACs swapped"
        );
        assert_eq!(payload_len(&out), (40, 40), "TCP header only, no payload");
        let (cookie, ack, flags, opts) = tcp(&out);
        assert_eq!((ack, flags), (1001, SYN | ACK));
        // 1440 (IPv6 on Ethernet) - 20 (TOA 253 for IPv6), SACK-permitted, TS, window scale 7.
        assert_eq!(&opts[..8], &[2, 4, 0x05, 0x8c, 4, 2, 8, 10], "{opts:?}");
        assert_eq!(&opts[12..16], &be(0x1122_3344), "TSecr echoes the client");
        assert_eq!(&opts[16..], &[1, 3, 3, 7]);
        let ours = u32::from_be_bytes([opts[8], opts[9], opts[10], opts[11]]);
        assert_eq!(ours & 0xf, 9, "the client's window scale");
        assert_eq!(ours & 0x10, 0x10, "SACK");
        assert_eq!((ours >> 6) & 3, 0, "MSS index 0: 1220 in the IPv6 table");
        assert!(b.dp.connections().unwrap().is_empty(), "nothing stored");
        assert_eq!(b.counter(counter::SYNPROXY_COOKIE_SENT), 1);
        assert_eq!(b.counter(counter::SYNPROXY_OPTIONS), 1);
        // Stateless: the same SYN gets the same cookie.
        assert_eq!(tcp(&b.run(&frame).1).0, cookie);

        // Without timestamps: an MSS only.
        let mut plain = segment(40001, SYN, 5000, 0);
        plain.tcp_options = vec![2, 4, 0x05, 0xa0];
        let (action, out) = b.run(&plain.build());
        assert_eq!(action, XDP_TX);
        assert!(decode6(&out).unwrap().l4_checksum_ok);
        let (_, ack, _, opts) = tcp(&out);
        assert_eq!((ack, opts), (5001, vec![2, 4, 0x05, 0x8c]));
        assert_eq!(payload_len(&out), (24, 24));
    }

    #[test]
    fn ipv6_handshake_through_fullnat_with_toa_and_translation_both_ways() {
        let Some(b) = bed(true) else { return };
        // MSS 9000 (jumbo): index 3 of the IPv6 table, 8940.
        let (_, out) = b.run(&linux_syn(40000, 9000).build());
        let (cookie, _, _, opts) = tcp(&out);
        let ours = u32::from_be_bytes([opts[8], opts[9], opts[10], opts[11]]);
        assert_eq!((ours >> 6) & 3, 3);

        // A forged cookie opens nothing.
        let mut forged = segment(40000, ACK, 1001, cookie ^ 0x0100_0000);
        forged.tcp_options = ts_opt(0x1122_3350, ours);
        let (action, _) = b.run(&forged.build());
        assert_eq!(action, XDP_DROP);
        assert_eq!(b.counter(counter::SYNPROXY_BAD_COOKIE), 1);
        assert!(b.dp.connections().unwrap().is_empty());

        // The client's ACK becomes the SYN to the real: the client's ISN and options.
        let mut ack = segment(40000, ACK, 1001, cookie.wrapping_add(1));
        ack.tcp_options = ts_opt(0x1122_3350, ours);
        let (action, out) = b.run(&ack.build());
        assert_eq!(
            action, XDP_PASS,
            "routed by the kernel in this empty namespace"
        );
        let d = decode6(&out).unwrap();
        assert_eq!((d.src, d.dst, d.dport), (ip(L1), ip(R1), 8080));
        assert!(d.l4_checksum_ok, "{d:?}");
        assert_eq!(payload_len(&out), (40, 40));
        let lport = d.sport;
        let (seq, _, flags, opts) = tcp(&out);
        assert_eq!((seq, flags), (1000, SYN));
        let mut want = vec![2, 4, 0x22, 0xec, 4, 2, 8, 10]; // MSS 8940
        want.extend_from_slice(&be(0x1122_3350));
        want.extend_from_slice(&[0, 0, 0, 0, 1, 3, 3, 9]);
        assert_eq!(opts, want);
        assert_eq!(b.counter(counter::SYNPROXY_OPENED), 1);
        let conns = b.dp.connections().unwrap();
        assert_eq!(conns.len(), 1);
        assert_eq!(conns[0].state, "SYN_RECV");

        // The real's SYN-ACK (scale 10, its own clock) opens the client's window: one byte the
        // client already has, the real's TSval in our clock, its window in scale 7.
        let mut synack = from_real(lport, SYN | ACK, 7000, 1001, L1);
        synack.tcp_options = vec![2, 4, 0x05, 0xa0, 4, 2, 8, 10];
        synack.tcp_options.extend_from_slice(&be(0x0a00_0000));
        synack.tcp_options.extend_from_slice(&be(0x1122_3350));
        synack.tcp_options.extend_from_slice(&[1, 3, 3, 10]);
        let (_, out) = b.run(&synack.build());
        let d = decode6(&out).unwrap();
        assert_eq!(
            (d.src, d.sport, d.dst, d.dport),
            (ip(VIP), 80, ip(CIP), 40000)
        );
        assert!(d.l4_checksum_ok, "{d:?}");
        assert_eq!(payload_len(&out), (33, 33), "20 + TS 12 + one byte");
        let (seq, ack_no, flags, opts) = tcp(&out);
        assert_eq!((seq, ack_no, flags), (cookie, 1001, ACK));
        assert_eq!(opts, ts_opt(ours, 0x1122_3350));
        assert_eq!(out[out.len() - 1], 0);
        assert_eq!(
            window(&out),
            (64240 >> 10) << 3,
            "the real's window in scale 7"
        );
        assert_eq!(b.counter(counter::SYNPROXY_ESTABLISHED), 1);
        assert_eq!(b.dp.connections().unwrap()[0].state, "ESTABLISHED");
        let mut toa = vec![253, 20];
        toa.extend_from_slice(&40000u16.to_be_bytes());
        toa.extend_from_slice(&ip(CIP).octets());

        // The client's acknowledgement completes the real's handshake, with TOA 253.
        let mut ack = segment(40000, ACK, 1001, cookie.wrapping_add(1));
        ack.tcp_options = ts_opt(0x1122_3355, ours);
        let (_, out) = b.run(&ack.build());
        let d = decode6(&out).unwrap();
        assert_eq!(
            (d.src, d.sport, d.dst, d.dport),
            (ip(L1), lport, ip(R1), 8080)
        );
        assert!(d.l4_checksum_ok, "{d:?}");
        let (seq, ack_no, flags, opts) = tcp(&out);
        assert_eq!((seq, ack_no, flags), (1001, 7001, ACK));
        assert_eq!(
            &opts[..20],
            &toa[..],
            "TOA: the client's port and IPv6 address"
        );
        assert_eq!(&opts[20..], &ts_opt(0x1122_3355, 0x0a00_0000)[..]);

        // Client data: TOA first (xlvs_toa), then ack and TSecr into the real's space
        // (xlvs_seqadj), the window untouched (the real reads the client's scale).
        let mut data = segment(40000, ACK, 1001, cookie.wrapping_add(1));
        data.tcp_options = ts_opt(0x1122_3360, ours.wrapping_add(5));
        data.payload = b"GET /".to_vec();
        let (_, out) = b.run(&data.build());
        let d = decode6(&out).unwrap();
        assert_eq!((d.src, d.dst, d.dport), (ip(L1), ip(R1), 8080));
        assert!(d.l4_checksum_ok, "{d:?}");
        let (seq, ack_no, _, opts) = tcp(&out);
        assert_eq!((seq, ack_no), (1001, 7001));
        assert_eq!(&opts[..20], &toa[..], "TOA first");
        assert_eq!(&opts[20..], &ts_opt(0x1122_3360, 0x0a00_0005)[..]);
        assert_eq!(window(&out), 64240);
        assert_eq!(b.counter(counter::TOA_ADDED), 2, "in the ACK and the data");
        // With SACK blocks too there is no room for the 20 bytes of TOA (skipped, counted):
        // SACK edges move into the real's sequence space.
        let mut sack = segment(40000, ACK, 1006, cookie.wrapping_add(1));
        sack.tcp_options = ts_opt(0x1122_3361, ours.wrapping_add(6));
        sack.tcp_options.extend_from_slice(&[1, 1, 5, 10]);
        sack.tcp_options
            .extend_from_slice(&be(cookie.wrapping_add(101)));
        sack.tcp_options
            .extend_from_slice(&be(cookie.wrapping_add(201)));
        let (_, out) = b.run(&sack.build());
        let d = decode6(&out).unwrap();
        assert!(d.l4_checksum_ok, "{d:?}");
        let (_, ack_no, _, opts) = tcp(&out);
        assert_eq!(ack_no, 7001);
        assert_eq!(&opts[..12], &ts_opt(0x1122_3361, 0x0a00_0006)[..]);
        assert_eq!(&opts[12..16], &[1, 1, 5, 10]);
        assert_eq!(&opts[16..20], &be(7101));
        assert_eq!(&opts[20..24], &be(7201));
        assert_eq!(b.counter(counter::TOA_SKIPPED), 1);

        // The real's data: seq and TSval into the client's view, window from scale 10 to 7.
        let mut answer = from_real(lport, ACK, 7001, 1006, L1);
        answer.tcp_options = ts_opt(0x0a00_0010, 0x1122_3360);
        answer.payload = b"HTTP/1.1 200 OK".to_vec();
        let mut frame = answer.build();
        set_window6(&mut frame, 100);
        let (_, out) = b.run(&frame);
        let d = decode6(&out).unwrap();
        assert_eq!(
            (d.src, d.sport, d.dst, d.dport),
            (ip(VIP), 80, ip(CIP), 40000)
        );
        assert!(d.l4_checksum_ok, "{d:?}");
        let (seq, ack_no, _, opts) = tcp(&out);
        assert_eq!((seq, ack_no), (cookie.wrapping_add(1), 1006));
        assert_eq!(opts, ts_opt(ours.wrapping_add(0x10), 0x1122_3360));
        assert_eq!(window(&out), 800, "100 << (10 - 7)");
        assert_eq!(&out[out.len() - 15..], b"HTTP/1.1 200 OK");
    }

    /// Sets the window of an untagged IPv6 TCP frame, fixing the checksum (RFC 1624).
    fn set_window6(frame: &mut [u8], w: u16) {
        let old = u16::from_be_bytes([frame[68], frame[69]]);
        let check = u16::from_be_bytes([frame[70], frame[71]]);
        let mut sum = (!check as u32) + (!old as u32) + w as u32;
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        frame[68..70].copy_from_slice(&w.to_be_bytes());
        frame[70..72].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    }

    #[test]
    fn ipv6_nat_without_timestamps_translates_sequence_numbers_only() {
        let Some(b) = bed(false) else { return };
        let mut syn = segment(40000, SYN, 1000, 0);
        syn.tcp_options = vec![2, 4, 0x05, 0xa0];
        let (action, out) = b.run(&syn.build());
        assert_eq!(action, XDP_TX);
        let cookie = tcp(&out).0;
        // NAT: the real sees the client; our SYN offers the IPv6 default MSS (1440).
        let (action, out) = b.run(&segment(40000, ACK, 1001, cookie.wrapping_add(1)).build());
        assert_eq!(action, XDP_PASS);
        let d = decode6(&out).unwrap();
        assert_eq!(
            (d.src, d.sport, d.dst, d.dport),
            (ip(CIP), 40000, ip(R1), 8080)
        );
        assert!(d.l4_checksum_ok, "{d:?}");
        let (seq, _, flags, opts) = tcp(&out);
        assert_eq!((seq, flags, opts), (1000, SYN, vec![2, 4, 0x05, 0xa0]));

        let mut synack = from_real(40000, SYN | ACK, 7000, 1001, CIP);
        synack.tcp_options = vec![2, 4, 0x05, 0xa0];
        let (_, out) = b.run(&synack.build());
        let d = decode6(&out).unwrap();
        assert_eq!(
            (d.src, d.sport, d.dst, d.dport),
            (ip(VIP), 80, ip(CIP), 40000)
        );
        assert!(d.l4_checksum_ok, "{d:?}");
        let (seq, ack_no, flags, opts) = tcp(&out);
        assert_eq!((seq, ack_no, flags), (cookie, 1001, ACK));
        assert!(opts.is_empty(), "no timestamps: {opts:?}");
        assert_eq!(payload_len(&out), (21, 21), "one byte");
        assert_eq!(window(&out), 64240, "no window scaling on either side");
        // The client's acknowledgement completes the real's handshake.
        let (_, out) = b.run(&segment(40000, ACK, 1001, cookie.wrapping_add(1)).build());
        let d = decode6(&out).unwrap();
        assert_eq!((d.dst, d.dport), (ip(R1), 8080));
        assert!(d.l4_checksum_ok, "{d:?}");
        let (seq, ack_no, flags, opts) = tcp(&out);
        assert_eq!((seq, ack_no, flags), (1001, 7001, ACK));
        assert!(opts.is_empty(), "no TOA for NAT, no timestamps: {opts:?}");

        // Data both ways: only the sequence space moves.
        let mut data = segment(40000, ACK, 1001, cookie.wrapping_add(1));
        data.payload = b"GET /".to_vec();
        let (_, out) = b.run(&data.build());
        let d = decode6(&out).unwrap();
        assert!(d.l4_checksum_ok, "{d:?}");
        assert_eq!((d.dst, d.dport), (ip(R1), 8080));
        let (seq, ack_no, _, _) = tcp(&out);
        assert_eq!((seq, ack_no), (1001, 7001));
        let mut answer = from_real(40000, ACK, 7001, 1006, CIP);
        answer.payload = b"HTTP/1.1 200 OK".to_vec();
        let (_, out) = b.run(&answer.build());
        let d = decode6(&out).unwrap();
        assert_eq!((d.src, d.sport, d.dst), (ip(VIP), 80, ip(CIP)));
        assert!(d.l4_checksum_ok, "{d:?}");
        let (seq, ack_no, _, _) = tcp(&out);
        assert_eq!((seq, ack_no), (cookie.wrapping_add(1), 1006));
        assert_eq!(b.counter(counter::SYNPROXY_OPTIONS), 0);
    }

    #[test]
    fn ipv6_lost_syn_is_sent_again_and_a_refusing_real_resets_the_client() {
        let Some(b) = bed(true) else { return };
        let mut syn = segment(40000, SYN, 1000, 0);
        syn.tcp_options = vec![2, 4, 0x05, 0xa0];
        let cookie = tcp(&b.run(&syn.build()).1).0;
        let (_, out) = b.run(&segment(40000, ACK, 1001, cookie.wrapping_add(1)).build());
        let lport = decode6(&out).unwrap().sport;

        // Data before the real answered: the SYN goes out again (same local port).
        let mut data = segment(40000, ACK, 1001, cookie.wrapping_add(1));
        data.payload = b"GET /".to_vec();
        let (action, out) = b.run(&data.build());
        assert_eq!(action, XDP_PASS);
        let d = decode6(&out).unwrap();
        assert!(d.l4_checksum_ok, "{d:?}");
        assert_eq!((d.src, d.sport, d.dst), (ip(L1), lport, ip(R1)));
        assert_eq!(payload_len(&out), (24, 24), "the data is not sent with it");
        assert_eq!((tcp(&out).0, tcp(&out).2), (1000, SYN));
        assert_eq!(b.counter(counter::SYNPROXY_SYN_RESENT), 1);

        // The real refuses: the client gets a RST at the sequence number it expects.
        let (action, out) = b.run(&from_real(lport, RST | ACK, 0, 1001, L1).build());
        assert_eq!(action, XDP_PASS);
        let d = decode6(&out).unwrap();
        assert_eq!(
            (d.src, d.sport, d.dst, d.dport),
            (ip(VIP), 80, ip(CIP), 40000)
        );
        assert!(d.l4_checksum_ok, "{d:?}");
        assert_eq!(tcp(&out).0, cookie.wrapping_add(1));
        assert_eq!(tcp(&out).2 & RST, RST);
        assert_eq!(b.dp.connections().unwrap()[0].state, "CLOSE");

        // The client connects again from the same port: a new cookie, a new connection.
        let mut again = segment(40000, SYN, 9000, 0);
        again.tcp_options = vec![2, 4, 0x05, 0xa0];
        let (action, out) = b.run(&again.build());
        assert_eq!(action, XDP_TX);
        let cookie2 = tcp(&out).0;
        let (action, out) = b.run(&segment(40000, ACK, 9001, cookie2.wrapping_add(1)).build());
        assert_eq!(action, XDP_PASS);
        assert_eq!(
            (tcp(&out).0, tcp(&out).2),
            (9000, SYN),
            "a new SYN to the real"
        );
        assert_eq!(b.counter(counter::SYNPROXY_OPENED), 2);
        let conns = b.dp.connections().unwrap();
        assert_eq!(conns.len(), 1);
        assert_eq!(conns[0].state, "SYN_RECV");
    }

    #[test]
    fn ipv6_defer_mode_opens_the_real_side_on_the_first_data() {
        let Some(mut b) = bed(true) else { return };
        b.dp.set_path_settings(&PathSettings {
            synproxy_defer: true,
            ..PathSettings::default()
        })
        .unwrap();
        let mut syn = segment(40000, SYN, 1000, 0);
        syn.tcp_options = vec![2, 4, 0x05, 0xa0];
        let cookie = tcp(&b.run(&syn.build()).1).0;
        let (action, _) = b.run(&segment(40000, ACK, 1001, cookie.wrapping_add(1)).build());
        assert_eq!(action, XDP_DROP);
        assert_eq!(b.counter(counter::SYNPROXY_DEFERRED), 1);
        assert!(b.dp.connections().unwrap().is_empty());
        let mut data = segment(40000, ACK, 1001, cookie.wrapping_add(1));
        data.payload = b"GET / HTTP/1.0\r\n\r\n".to_vec();
        let (action, out) = b.run(&data.build());
        assert_eq!(action, XDP_PASS);
        let d = decode6(&out).unwrap();
        assert!(d.l4_checksum_ok);
        assert_eq!((d.src, d.dst, tcp(&out).2), (ip(L1), ip(R1), SYN));
        assert_eq!(b.counter(counter::SYNPROXY_OPENED), 1);
    }

    #[test]
    fn ipv6_icmp_errors_quoting_our_replies_reach_the_real_in_its_own_sequence_space() {
        use xlvs_tests::packet::{decode_icmp6, icmp6_error};
        let Some(b) = bed(true) else { return };
        let mut syn = segment(40000, SYN, 1000, 0);
        syn.tcp_options = vec![2, 4, 0x05, 0xa0];
        let cookie = tcp(&b.run(&syn.build()).1).0;
        let (_, out) = b.run(&segment(40000, ACK, 1001, cookie.wrapping_add(1)).build());
        let lport = decode6(&out).unwrap().sport;
        b.run(&from_real(lport, SYN | ACK, 7000, 1001, L1).build());
        // A reply of the real (seq 7001) as the client side saw it (cookie space), quoted by a
        // router there in a "packet too big": the real gets it in its own sequence space.
        let (_, sent) = b.run(&from_real(lport, ACK, 7001, 1001, L1).build());
        assert_eq!(tcp(&sent).0, cookie.wrapping_add(1));
        let router = ip("2001:db8:1::fe");
        let (_, o) = b.run(&icmp6_error(router, ip(VIP), 2, 0, &sent[14..]));
        let d = decode_icmp6(&o).unwrap();
        assert!(d.checksum_ok, "{d:?}");
        assert_eq!(
            (d.dst, d.quoted_src, d.quoted_dst),
            (ip(R1), ip(R1), ip(L1))
        );
        let quoted_seq = u32::from_be_bytes([o[106], o[107], o[108], o[109]]);
        assert_eq!(quoted_seq, 7001);
    }

    /// IPv6 with an extension header before TCP is not proxied (no cookie can be made for it)
    /// and not opened unproxied either (a flood would get past SYNPROXY): dropped, counted.
    #[test]
    fn ipv6_syn_with_an_extension_header_is_dropped_not_forwarded_unproxied() {
        let Some(b) = bed(true) else { return };
        let mut syn = segment(40000, SYN, 1000, 0);
        syn.tcp_options = vec![2, 4, 0x05, 0xa0];
        let mut frame = syn.build();
        // Hop-by-hop options (next header TCP, PadN) between the IPv6 header and TCP; the TCP
        // checksum stays valid (same pseudo-header).
        frame[20] = 0;
        let plen = u16::from_be_bytes([frame[18], frame[19]]) + 8;
        frame[18..20].copy_from_slice(&plen.to_be_bytes());
        frame.splice(54..54, [6, 0, 1, 4, 0, 0, 0, 0]);
        let (action, _) = b.run(&frame);
        assert_eq!(action, XDP_DROP);
        assert_eq!(b.counter(counter::DROP_UNSUPPORTED), 1);
        assert_eq!(b.counter(counter::SYNPROXY_COOKIE_SENT), 0);
        assert!(b.dp.connections().unwrap().is_empty(), "nothing opened");
    }
}
