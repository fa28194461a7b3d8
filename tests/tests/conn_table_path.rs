//! The connection table's limits and what the packet path does at them, on crafted frames
//! through BPF_PROG_TEST_RUN: packets the kernel would drop as invalid never open or use a
//! connection; a full table either evicts (counted, and each evicted connection's ends are
//! reset on their next segment) or refuses new connections (`table_full refuse`); an entry whose
//! other half was evicted is reset and removed. Needs root (BPF).

use std::net::{IpAddr, Ipv4Addr};

use dataplane::fill::TableFull;
use dataplane::model::*;
use ebpf_common::counter;
use xlvs_tests::addrs::{CIP, CIP6, R1, R6, VIP, VIP6};
use xlvs_tests::packet::{ACK, Frame, Frame6, SYN, UDP, decode};
use xlvs_tests::services;
use xlvs_tests::testbed::{TestBed, XDP_DROP, XDP_PASS, XDP_TX};

/// A NAT service whose connections keep two entries: another VIP owns its real first (see
/// `ebpf_common::CONN_X_ONE_ENTRY`; one_entry_path.rs has the one-entry cases).
fn bed(max_conns: u32) -> Option<TestBed> {
    let mut b = TestBed::new(max_conns, false)?;
    let owner = std::net::Ipv4Addr::new(198, 18, 100, 2);
    services::nat(&mut b.dp, Protocol::Tcp, owner, 80, &[R1.into()]).unwrap();
    services::nat(&mut b.dp, Protocol::Tcp, VIP, 80, &[R1.into()]).unwrap();
    Some(b)
}

/// A frame whose IPv4 header checksum is off by one.
fn bad_ip_checksum(f: &Frame) -> Vec<u8> {
    let mut bytes = f.build();
    bytes[14 + 10] ^= 0x01;
    bytes
}

#[test]
fn an_ipv4_header_with_a_bad_checksum_opens_nothing_and_is_never_forwarded() {
    let Some(b) = bed(1024) else { return };
    let syn = Frame::tcp(CIP, 40000, VIP, 80, SYN);
    let (action, _) = b.run(&bad_ip_checksum(&syn));
    assert_eq!(action, XDP_DROP);
    assert!(
        b.dp.connections().unwrap().is_empty(),
        "no connection opened"
    );
    assert_eq!(b.counter(counter::DROP_INVALID), 1);
    assert_eq!(b.counter(counter::CONN_NEW), 0);

    // The same SYN, correct, opens the connection; a corrupted segment of it is dropped too
    // and leaves its state alone.
    let (action, out) = b.run(&syn.build());
    assert_eq!(action, XDP_PASS, "forwarded (to the kernel: no route here)");
    assert_eq!(decode(&out).unwrap().dst, R1);
    let fin = Frame::tcp(CIP, 40000, VIP, 80, ACK | 0x01);
    assert_eq!(b.run(&bad_ip_checksum(&fin)).0, XDP_DROP);
    assert_eq!(b.dp.connections().unwrap()[0].state, "SYN_RECV");
    assert_eq!(b.counter(counter::DROP_INVALID), 2);

    // Not a VIP: the kernel judges it (and drops it) itself.
    let other = Frame::tcp(CIP, 40000, Ipv4Addr::new(198, 18, 1, 1), 22, SYN);
    assert_eq!(b.run(&bad_ip_checksum(&other)).0, XDP_PASS);
}

#[test]
fn an_ipv6_udp_datagram_without_checksum_opens_nothing_and_is_never_forwarded() {
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    let vip: IpAddr = VIP6.parse().unwrap();
    services::nat(&mut b.dp, Protocol::Udp, vip, 80, &[R6.parse().unwrap()]).unwrap();
    let mut f = Frame6::tcp(CIP6, 5000, VIP6, 80, 0);
    f.proto = UDP;
    f.payload = b"query".to_vec();
    let good = f.build();
    let mut zero = good.clone();
    zero[14 + 40 + 6] = 0;
    zero[14 + 40 + 7] = 0;
    assert_eq!(b.run(&zero).0, XDP_DROP);
    assert!(b.dp.connections().unwrap().is_empty());
    assert_eq!(b.counter(counter::DROP_INVALID), 1);
    assert_eq!(b.run(&good).0, XDP_PASS);
    assert_eq!(b.dp.connections().unwrap().len(), 1);
}

/// Opens `n` NAT connections (SYNs from ports 10000..) and returns the last action of each.
fn open(b: &TestBed, n: u16) -> Vec<u32> {
    (0..n)
        .map(|i| b.run(&Frame::tcp(CIP, 10000 + i, VIP, 80, SYN).build()).0)
        .collect()
}

#[test]
fn a_full_table_with_the_refuse_policy_keeps_its_connections_and_refuses_new_ones() {
    let Some(mut b) = bed(64) else { return };
    let mut s = b.dp.path_settings().unwrap();
    s.table_full = TableFull::Refuse;
    b.dp.set_path_settings(&s).unwrap();
    assert_eq!(b.dp.path_settings().unwrap().table_full, TableFull::Refuse);
    let actions = open(&b, 100);
    // Two entries each: 64 connections fit.
    assert!(actions[..64].iter().all(|a| *a == XDP_PASS), "{actions:?}");
    assert!(actions[64..].iter().all(|a| *a == XDP_DROP), "{actions:?}");
    assert_eq!(b.counter(counter::DROP_TABLE_FULL), 36);
    let f = b.dp.fill().unwrap();
    assert_eq!((f.conn_entries, f.conn_entries_max), (128, 128));
    // Every established connection still works, the first included.
    for port in [10000, 10031, 10063] {
        let (action, out) = b.run(&Frame::tcp(CIP, port, VIP, 80, ACK).build());
        assert_eq!(action, XDP_PASS, "port {port}");
        assert_eq!(decode(&out).unwrap().dst, R1);
    }
    b.dp.run_timers().unwrap();
    assert_eq!(b.dp.fill().unwrap().conn_evicted, 0, "nothing was evicted");
    // Back to evict: new connections come in again.
    s.table_full = TableFull::Evict;
    b.dp.set_path_settings(&s).unwrap();
    assert_eq!(open(&b, 1)[0], XDP_PASS);
}

#[test]
fn a_full_table_with_the_evict_policy_counts_evictions_and_resets_the_evicted() {
    let Some(mut b) = bed(64) else { return };
    // Far more than the table and its LRU headroom hold.
    let n = 3000;
    let actions = open(&b, n);
    assert!(
        actions.iter().all(|a| *a == XDP_PASS),
        "the newest always get in"
    );
    let tick = b.dp.run_timers().unwrap();
    let f = b.dp.fill().unwrap();
    assert!(
        tick.evicted > 0 && f.conn_evicted == tick.evicted,
        "{tick:?} {f:?}"
    );
    assert_eq!(
        f.conn_entries + f.conn_evicted,
        2 * n as u64,
        "every entry made is in the table or counted as evicted"
    );
    // The oldest connection is gone: its client's next segment is answered with a RST.
    let mut ack = Frame::tcp(CIP, 10000, VIP, 80, ACK);
    ack.ack = 77;
    let r = b.run(&ack.build());
    assert_eq!(r.0, XDP_TX);
    assert_eq!(r.1[14 + 20 + 13], xlvs_tests::packet::RST);
    // The newest one is still forwarded.
    let (action, out) = b.run(&Frame::tcp(CIP, 10000 + n - 1, VIP, 80, ACK).build());
    assert_eq!(action, XDP_PASS);
    assert_eq!(decode(&out).unwrap().dst, R1);
}

/// The bytes of a FlowKey (IPv4), as bpftool takes a key.
fn flow_key(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<String> {
    let mut k = Vec::with_capacity(40);
    k.extend_from_slice(&src.octets());
    k.extend_from_slice(&[0; 12]);
    k.extend_from_slice(&dst.octets());
    k.extend_from_slice(&[0; 12]);
    k.extend_from_slice(&sport.to_be_bytes());
    k.extend_from_slice(&dport.to_be_bytes());
    k.extend_from_slice(&[6, ebpf_common::AF_INET, 0, 0]);
    k.iter().map(|b| b.to_string()).collect()
}

#[test]
fn an_entry_whose_other_half_was_evicted_resets_its_end_and_goes() {
    let Some(mut b) = bed(1024) else { return };
    assert_eq!(open(&b, 1)[0], XDP_PASS);
    // The LRU takes the CLIENT entry (as a full table would).
    let path = b.opts.pin_dir.join(ebpf_common::maps::CONNS);
    let key = flow_key(CIP, 10000, VIP, 80);
    let mut args = vec!["map", "delete", "pinned", path.to_str().unwrap(), "key"];
    args.extend(key.iter().map(String::as_str));
    let out = xlvs_tests::netns::run("bpftool", &args).expect("bpftool");
    assert!(out.status.success(), "{out:?}");

    let tick = b.dp.run_timers().unwrap();
    assert_eq!((tick.evicted, tick.orphans), (1, 1), "{tick:?}");
    // The real server's next segment: a RST to it, from the client's address, at the number it
    // acknowledged; the orphaned entry is gone with it.
    let mut seg = Frame::tcp(R1, 8080, CIP, 10000, ACK);
    seg.ack = 4242;
    let (action, rst) = b.run(&seg.build());
    assert_eq!(action, XDP_TX);
    let d = decode(&rst).unwrap();
    assert_eq!((d.src, d.sport, d.dst, d.dport), (CIP, 10000, R1, 8080));
    assert!(d.ip_checksum_ok && d.l4_checksum_ok);
    assert_eq!(rst[14 + 20 + 13], xlvs_tests::packet::RST);
    assert_eq!(u32::from_be_bytes(rst[38..42].try_into().unwrap()), 4242);
    assert_eq!(b.dp.fill().unwrap().conn_entries, 0, "both halves gone");
    assert_eq!(b.counter(counter::RST_SENT), 1);
}
