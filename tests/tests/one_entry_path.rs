//! NAT connections with one connection-table entry (`ebpf_common::CONN_X_ONE_ENTRY`), through
//! BPF_PROG_TEST_RUN: the real server's replies find the CLIENT entry by the key its owner
//! (NAT_OWNERS) derives, every other reply and every connection that cannot be derived keeps
//! its REPLY entry, and a packet from a NAT real that belongs to no connection is left alone.
//! Needs root (BPF); each test has its own pins and namespace.

use std::net::Ipv4Addr;

use dataplane::model::*;
use ebpf_common::counter;
use xlvs_tests::addrs::{CIP, R1, VIP};
use xlvs_tests::packet::{ACK, FIN, Frame, SYN};
use xlvs_tests::services;
use xlvs_tests::testbed::{TestBed, XDP_PASS};

/// A second VIP on the same real server and port.
const VIP2: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 2);

fn nat_service(b: &mut TestBed, cfg: ServiceConfig, rport: u16) -> ServiceAddr {
    let real = services::real(R1, rport, Forward::Masq);
    services::add(&mut b.dp, &cfg, &[real]).unwrap()
}

fn rr(addr: ServiceAddr) -> ServiceConfig {
    ServiceConfig {
        scheduler: Scheduler::Rr,
        ..ServiceConfig::new(addr)
    }
}

/// Entries in the connection table (as the packet path counts them) and connections listed.
fn entries(b: &TestBed) -> (u64, usize) {
    let f = b.dp.fill().unwrap();
    (f.conn_entries, b.dp.connections().unwrap().len())
}

#[test]
fn a_nat_connection_has_one_entry_and_its_replies_come_from_the_vip() {
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    let svc = nat_service(&mut b, rr(services::inet(Protocol::Tcp, VIP, 80)), 8080);
    let (action, out) = b.run_frame(&Frame::tcp(CIP, 40000, VIP, 80, SYN));
    assert_eq!(action, XDP_PASS);
    assert_eq!((out.dst, out.dport), (R1, 8080));
    assert_eq!(entries(&b), (1, 1), "one CONNS entry for the connection");

    // The real's SYN-ACK: from the VIP, with valid checksums, and it moves the state.
    let (action, back) = b.run_frame(&Frame::tcp(R1, 8080, CIP, 40000, SYN | ACK));
    assert_eq!(action, XDP_PASS);
    assert_eq!((back.src, back.sport), (VIP, 80));
    assert_eq!((back.dst, back.dport), (CIP, 40000));
    assert!(back.ip_checksum_ok && back.l4_checksum_ok, "{back:?}");
    b.run_frame(&Frame::tcp(CIP, 40000, VIP, 80, ACK));
    assert_eq!(b.dp.connections().unwrap()[0].state, "ESTABLISHED");
    // The real closes first: its FIN is tracked on the one entry.
    let (_, fin) = b.run_frame(&Frame::tcp(R1, 8080, CIP, 40000, FIN | ACK));
    assert_eq!((fin.src, fin.sport), (VIP, 80));
    assert_eq!(b.dp.connections().unwrap()[0].state, "FIN_WAIT");
    assert_eq!(entries(&b), (1, 1), "replies add no entry");
    let e = b.dp.service(&svc).unwrap();
    assert_eq!((e.stats.inpkts, e.stats.outpkts), (2, 2));
    assert_eq!(b.dp.fill().unwrap().conns, 1);

    // Expiry and orphan sweeps leave a live one-entry connection alone.
    let tick = b.dp.run_timers().unwrap();
    assert_eq!((tick.orphans, tick.expired), (0, 0), "{tick:?}");
    let (_, back) = b.run_frame(&Frame::tcp(R1, 8080, CIP, 40000, ACK));
    assert_eq!(
        (back.src, back.sport),
        (VIP, 80),
        "still translated after a tick"
    );
}

#[test]
fn udp_and_ipv6_nat_connections_have_one_entry_too() {
    use xlvs_tests::addrs::{CIP6, R6, VIP6};
    use xlvs_tests::packet::Frame6;
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    nat_service(&mut b, rr(services::inet(Protocol::Udp, VIP, 53)), 5353);
    b.run_frame(&Frame::udp(CIP, 40000, VIP, 53, b"q"));
    let (_, back) = b.run_frame(&Frame::udp(R1, 5353, CIP, 40000, b"a"));
    assert_eq!((back.src, back.sport), (VIP, 53));
    assert!(back.ip_checksum_ok && back.l4_checksum_ok, "{back:?}");
    assert_eq!(entries(&b), (1, 1));

    let vip6: std::net::Ipv6Addr = VIP6.parse().unwrap();
    let cfg = rr(services::inet(Protocol::Tcp, vip6, 80));
    let r6: std::net::IpAddr = R6.parse().unwrap();
    services::add(&mut b.dp, &cfg, &[services::real(r6, 8080, Forward::Masq)]).unwrap();
    b.run(&Frame6::tcp(CIP6, 40000, VIP6, 80, SYN).build());
    let (action, out) = b.run(&Frame6::tcp(R6, 8080, CIP6, 40000, SYN | ACK).build());
    assert_eq!(action, XDP_PASS);
    let d = xlvs_tests::packet::decode6(&out).unwrap();
    assert_eq!((d.src, d.sport), (vip6, 80));
    assert!(d.l4_checksum_ok, "{d:?}");
    assert_eq!(entries(&b), (2, 2));
}

#[test]
fn a_real_shared_by_two_vips_on_one_port_answers_each_from_its_own_vip() {
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    // The first service owns R1:8080 (one entry); the second's connections keep a REPLY entry.
    nat_service(&mut b, rr(services::inet(Protocol::Tcp, VIP, 80)), 8080);
    nat_service(&mut b, rr(services::inet(Protocol::Tcp, VIP2, 80)), 8080);
    b.run_frame(&Frame::tcp(CIP, 40000, VIP, 80, SYN));
    assert_eq!(entries(&b), (1, 1));
    b.run_frame(&Frame::tcp(CIP, 40001, VIP2, 80, SYN));
    assert_eq!(
        entries(&b),
        (3, 2),
        "the second VIP's connection has two entries"
    );
    let (_, one) = b.run_frame(&Frame::tcp(R1, 8080, CIP, 40000, SYN | ACK));
    assert_eq!((one.src, one.sport), (VIP, 80));
    let (_, two) = b.run_frame(&Frame::tcp(R1, 8080, CIP, 40001, SYN | ACK));
    assert_eq!(
        (two.src, two.sport),
        (VIP2, 80),
        "each reply from its own VIP"
    );
    assert!(two.ip_checksum_ok && two.l4_checksum_ok);
    // The owner's connection to the same client port as the other's: both stay apart.
    b.run_frame(&Frame::tcp(CIP, 40002, VIP2, 80, SYN));
    b.run_frame(&Frame::tcp(CIP, 40003, VIP, 80, SYN));
    for (cport, vip) in [(40002, VIP2), (40003, VIP), (40000, VIP), (40001, VIP2)] {
        let (_, r) = b.run_frame(&Frame::tcp(R1, 8080, CIP, cport, ACK));
        assert_eq!((r.src, r.sport), (vip, 80), "client port {cport}");
    }

    // Removing the owner keeps its connections' replies (connections outlive services).
    b.dp.del_service(&services::inet(Protocol::Tcp, VIP, 80))
        .unwrap();
    let (_, r) = b.run_frame(&Frame::tcp(R1, 8080, CIP, 40000, ACK));
    assert_eq!((r.src, r.sport), (VIP, 80));
}

#[test]
fn port_zero_and_one_packet_connections_keep_their_reply_entry() {
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    // A port-zero service: the real keeps the client's destination port.
    let mut cfg = rr(services::inet(Protocol::Tcp, VIP, 0));
    cfg.persistent = Some(300);
    nat_service(&mut b, cfg, 0);
    let (_, out) = b.run_frame(&Frame::tcp(CIP, 40000, VIP, 443, SYN));
    assert_eq!((out.dst, out.dport), (R1, 443));
    let f = b.dp.fill().unwrap();
    assert_eq!(
        (f.conn_entries, f.conns),
        (2, 1),
        "CLIENT and REPLY entries"
    );
    let (_, back) = b.run_frame(&Frame::tcp(R1, 443, CIP, 40000, SYN | ACK));
    assert_eq!((back.src, back.sport), (VIP, 443));

    // One-packet UDP: no CLIENT entry, the REPLY entry brings the answer back from the VIP.
    let mut cfg = rr(services::inet(Protocol::Udp, VIP2, 53));
    cfg.one_packet = true;
    nat_service(&mut b, cfg, 5353);
    b.run_frame(&Frame::udp(CIP, 40000, VIP2, 53, b"q"));
    assert_eq!(b.dp.fill().unwrap().conn_entries, 3);
    let (_, back) = b.run_frame(&Frame::udp(R1, 5353, CIP, 40000, b"a"));
    assert_eq!((back.src, back.sport), (VIP2, 53));
}

#[test]
fn a_packet_from_a_nat_real_of_no_connection_passes_untouched() {
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    nat_service(&mut b, rr(services::inet(Protocol::Tcp, VIP, 80)), 8080);
    b.run_frame(&Frame::tcp(CIP, 40000, VIP, 80, SYN));
    let passes = b.counter(counter::PASS_NOT_VIP);
    for frame in [
        // Its service port, to a client port of no connection.
        Frame::tcp(R1, 8080, CIP, 40001, SYN | ACK).build(),
        // Another port of the real, to the connection's client port.
        Frame::tcp(R1, 22, CIP, 40000, ACK).build(),
        // The connection's client, from another address.
        Frame::tcp(Ipv4Addr::new(198, 18, 2, 9), 8080, CIP, 40000, ACK).build(),
        // The right ports, the other protocol.
        Frame::udp(R1, 8080, CIP, 40000, b"x").build(),
    ] {
        let (action, out) = b.run(&frame);
        assert_eq!(action, XDP_PASS);
        assert_eq!(out, frame, "not ours: unchanged");
    }
    assert_eq!(b.counter(counter::PASS_NOT_VIP), passes + 4);
    assert_eq!(entries(&b), (1, 1));
}

#[test]
fn one_entry_connections_fill_the_table_once_and_leave_no_orphan_when_evicted() {
    use dataplane::fill::TableFull;
    use xlvs_tests::testbed::XDP_DROP;
    let Some(mut b) = TestBed::new(64, false) else {
        return;
    };
    nat_service(&mut b, rr(services::inet(Protocol::Tcp, VIP, 80)), 8080);
    let mut s = b.dp.path_settings().unwrap();
    s.table_full = TableFull::Refuse;
    b.dp.set_path_settings(&s).unwrap();
    let actions: Vec<u32> = (0..200u16)
        .map(|i| b.run(&Frame::tcp(CIP, 10000 + i, VIP, 80, SYN).build()).0)
        .collect();
    // 128 entries, one each; the refuse policy keeps room for a connection of two.
    assert!(actions[..127].iter().all(|a| *a == XDP_PASS), "{actions:?}");
    assert!(actions[127..].iter().all(|a| *a == XDP_DROP), "{actions:?}");
    let f = b.dp.fill().unwrap();
    assert_eq!((f.conn_entries, f.conns), (127, 127));
    let (_, back) = b.run_frame(&Frame::tcp(R1, 8080, CIP, 10126, SYN | ACK));
    assert_eq!((back.src, back.sport), (VIP, 80));

    // The LRU takes a connection's only entry: nothing is left to orphan, and its real's next
    // segment is no connection's (the kernel gets it untouched).
    let path = b.opts.pin_dir.join(ebpf_common::maps::CONNS);
    let mut key: Vec<u8> = Vec::with_capacity(40);
    key.extend_from_slice(&CIP.octets());
    key.extend_from_slice(&[0; 12]);
    key.extend_from_slice(&VIP.octets());
    key.extend_from_slice(&[0; 12]);
    key.extend_from_slice(&10000u16.to_be_bytes());
    key.extend_from_slice(&80u16.to_be_bytes());
    key.extend_from_slice(&[6, ebpf_common::AF_INET, 0, 0]);
    let key: Vec<String> = key.iter().map(|b| b.to_string()).collect();
    let mut args = vec!["map", "delete", "pinned", path.to_str().unwrap(), "key"];
    args.extend(key.iter().map(String::as_str));
    let out = xlvs_tests::netns::run("bpftool", &args).expect("bpftool");
    assert!(out.status.success(), "{out:?}");
    let tick = b.dp.run_timers().unwrap();
    assert_eq!((tick.evicted, tick.orphans), (1, 0), "{tick:?}");
    let seg = Frame::tcp(R1, 8080, CIP, 10000, ACK).build();
    let (action, out) = b.run(&seg);
    assert_eq!((action, out), (XDP_PASS, seg));
}
