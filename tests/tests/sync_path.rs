//! Connections written by a sync backup (`dataplane::sync`) behave as the XDP program's own:
//! checked on crafted frames through BPF_PROG_TEST_RUN. Needs root.

use std::net::{IpAddr, Ipv4Addr};

use dataplane::model::*;
use dataplane::sync::{ImportReport, SyncConn};
use xlvs_tests::addrs::{CIP, R1, R2, VIP};
use xlvs_tests::packet::{ACK, Frame, SYN, decode};
use xlvs_tests::services;
use xlvs_tests::testbed::{TestBed, XDP_PASS, XDP_TX};

fn service(b: &mut TestBed, persistent: Option<u32>) -> ServiceAddr {
    let cfg = ServiceConfig {
        scheduler: Scheduler::Rr,
        persistent,
        ..ServiceConfig::new(services::inet(Protocol::Tcp, VIP, 80))
    };
    let reals = [R1, R2].map(|r| services::real(r, 8080, Forward::Masq));
    services::add(&mut b.dp, &cfg, &reals).unwrap()
}

fn conn(cport: u16, real: Ipv4Addr, state: u16) -> SyncConn {
    SyncConn {
        proto: 6,
        caddr: IpAddr::V4(CIP),
        cport,
        vaddr: IpAddr::V4(VIP),
        vport: 80,
        daddr: IpAddr::V4(real),
        dport: 8080,
        fwmark: 0,
        state,
        forward: Forward::Masq,
        timeout: 900,
        template: false,
        last_seen: 0,
    }
}

/// Where the program sends a client segment (action, destination).
fn client_segment(b: &TestBed, cport: u16, flags: u8) -> (u32, Ipv4Addr, u16) {
    let (action, out) = b.run(&Frame::tcp(CIP, cport, VIP, 80, flags).build());
    let d = decode(&out).expect("decodable");
    assert!(d.ip_checksum_ok && d.l4_checksum_ok);
    (action, d.dst, d.dport)
}

#[test]
fn imported_connection_is_forwarded_as_an_established_one() {
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    service(&mut b, None);
    // Without an entry, a segment that is not a SYN is answered with a RST (no session).
    assert_eq!(client_segment(&b, 40001, ACK).0, XDP_TX);

    let r = b.dp.sync_import(&[conn(40000, R2, 1)]).unwrap();
    assert_eq!(
        r,
        ImportReport {
            inserted: 1,
            ..Default::default()
        }
    );
    // Client side: rewritten to the announced real (rr alone would have picked R1 first).
    assert_eq!(client_segment(&b, 40000, ACK), (XDP_PASS, R2, 8080));
    // Reply side: the VIP back as source, from the one entry the packet path would have made
    // (the service owns its reals: no REPLY entry).
    let (action, out) = b.run(&Frame::tcp(R2, 8080, CIP, 40000, ACK).build());
    let d = decode(&out).unwrap();
    assert_eq!((action, d.src, d.sport, d.dst), (XDP_PASS, VIP, 80, CIP));
    assert!(d.l4_checksum_ok);
    assert_eq!(b.dp.fill().unwrap().conn_entries, 1);

    let listed = b.dp.connections().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, "ESTABLISHED");
    assert!(listed[0].expires > 890, "{:?}", listed[0]);

    // Announced again: refreshed; a closing state is taken over.
    let r = b.dp.sync_import(&[conn(40000, R2, 4)]).unwrap();
    assert_eq!(r.refreshed, 1);
    assert_eq!(b.dp.connections().unwrap()[0].state, "FIN_WAIT");

    // Announced with another real: replaced, as IPVS does.
    let r = b.dp.sync_import(&[conn(40000, R1, 1)]).unwrap();
    assert_eq!(r.inserted, 1);
    // Learnt from a master and not seen here: not announced back (no ping-pong between two
    // directors running both daemons).
    assert!(b.dp.sync_export().unwrap().is_empty());
    assert_eq!(client_segment(&b, 40000, ACK), (XDP_PASS, R1, 8080));

    // Seen here since: what a master would announce of it (export), round trip.
    let out = b.dp.sync_export().unwrap();
    assert_eq!(out.len(), 1);
    let mut expect = conn(40000, R1, 1);
    expect.last_seen = out[0].last_seen;
    assert_eq!(out[0], expect);

    // Unknown service, unknown real, unknown protocol state: skipped, counted.
    let mut other_port = conn(40002, R1, 1);
    other_port.vport = 81;
    let unknown_real = conn(40003, Ipv4Addr::new(198, 18, 9, 9), 1);
    let mut bad_state = conn(40004, R1, 1);
    bad_state.state = 11;
    let r =
        b.dp.sync_import(&[other_port, unknown_real, bad_state])
            .unwrap();
    assert_eq!((r.no_service, r.unsupported, r.inserted), (2, 1, 0));
    assert_eq!(b.dp.connections().unwrap().len(), 1);
}

#[test]
fn imported_template_keeps_the_client_on_its_real() {
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    service(&mut b, Some(300));
    let mut t = conn(0, R2, 1);
    t.template = true;
    t.timeout = 300;
    assert_eq!(b.dp.sync_import(&[t]).unwrap().inserted, 1);
    // New connections of that client follow the template (rr would start with R1).
    for cport in [5000, 5001, 5002] {
        assert_eq!(client_segment(&b, cport, SYN), (XDP_PASS, R2, 8080));
    }
    // Another client is scheduled.
    let (_, out) = b.run(&Frame::tcp(Ipv4Addr::new(198, 18, 1, 3), 5000, VIP, 80, SYN).build());
    assert_eq!(decode(&out).unwrap().dst, R1);
    // Learnt templates are not announced back; the one made here for the other client is.
    let ex = b.dp.sync_export().unwrap();
    let templates: Vec<_> = ex.iter().filter(|c| c.template).collect();
    assert_eq!(templates.len(), 1, "{ex:?}");
    assert_eq!(
        (templates[0].caddr, templates[0].daddr, templates[0].cport),
        (IpAddr::V4(Ipv4Addr::new(198, 18, 1, 3)), IpAddr::V4(R1), 0)
    );
    assert_eq!(
        (templates[0].vport, templates[0].dport, templates[0].timeout),
        (80, 8080, 300)
    );
}

#[test]
fn imported_ipv6_connection_is_forwarded() {
    use xlvs_tests::packet::{Frame6, decode6};
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    let (vip, cip, real) = ("2001:db8:100::1", "2001:db8:1::2", "2001:db8:2::2");
    let addr = ServiceAddr::Inet {
        proto: Protocol::Tcp,
        addr: vip.parse().unwrap(),
        port: 80,
    };
    let mut cfg = ServiceConfig::new(addr);
    cfg.scheduler = Scheduler::Rr;
    b.dp.add_service(&cfg).unwrap();
    let mut d = DestConfig::new(real.parse().unwrap(), 8080);
    d.forward = Forward::Masq;
    b.dp.add_dest(&addr, &d).unwrap();
    assert_eq!(
        b.run(&Frame6::tcp(cip, 40000, vip, 80, ACK).build()).0,
        XDP_TX,
        "no session yet: reset"
    );
    let c = SyncConn {
        caddr: cip.parse().unwrap(),
        vaddr: vip.parse().unwrap(),
        daddr: real.parse().unwrap(),
        ..conn(40000, R1, 1)
    };
    assert_eq!(b.dp.sync_import(&[c]).unwrap().inserted, 1);
    let (action, out) = b.run(&Frame6::tcp(cip, 40000, vip, 80, ACK).build());
    let o = decode6(&out).unwrap();
    assert_eq!(action, XDP_PASS);
    assert_eq!((o.dst.to_string(), o.dport), (real.to_string(), 8080));
    assert!(o.l4_checksum_ok);
    let (_, out) = b.run(&Frame6::tcp(real, 8080, cip, 40000, ACK).build());
    let o = decode6(&out).unwrap();
    assert_eq!((o.src.to_string(), o.sport), (vip.to_string(), 80));
}

/// Cost of a sync scan and of importing, beside `ipvsadm -Lc`'s walk of the same table
/// (the baseline). `cargo test -p xlvs-tests --test sync_path -- --ignored --nocapture`.
#[test]
#[ignore = "measurement, run by hand"]
fn sync_scan_and_import_cost() {
    let Some(mut b) = TestBed::new(1 << 18, false) else {
        return;
    };
    service(&mut b, None);
    let n: u32 = 100_000;
    let conns: Vec<SyncConn> = (0..n)
        .map(|i| {
            let mut c = conn(
                (i % 60000) as u16 + 1024,
                if i % 2 == 0 { R1 } else { R2 },
                1,
            );
            c.caddr = IpAddr::V4(Ipv4Addr::from(u32::from(CIP) + i / 60000));
            c
        })
        .collect();
    let t = std::time::Instant::now();
    for chunk in conns.chunks(40) {
        b.dp.sync_import(chunk).unwrap();
    }
    let import = t.elapsed();
    // Seen locally, so they are exported (a master's view).
    let t = std::time::Instant::now();
    let listed = b.dp.connections().unwrap().len();
    let list = t.elapsed();
    let t = std::time::Instant::now();
    let exported = b.dp.sync_export().unwrap().len();
    let export = t.elapsed();
    assert_eq!(listed, n as usize);
    assert_eq!(exported, 0, "imported connections are not announced back");
    println!(
        "{n} connections: import {:.2} s ({:.1} µs/conn, in messages of 40), \
         sync scan {:.2} s, ipvsadm -Lc walk (baseline) {:.2} s, ratio {:.2}",
        import.as_secs_f64(),
        import.as_secs_f64() * 1e6 / n as f64,
        export.as_secs_f64(),
        list.as_secs_f64(),
        export.as_secs_f64() / list.as_secs_f64()
    );
}
