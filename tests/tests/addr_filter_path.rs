//! The address filter the packet path asks before the connection table (`ADDR_FILTER`): a
//! connection's packets always get through it, also when its real is gone and the filter was
//! lost (tables of a build without it, rebuilt on reload from the connection table). Checked on
//! crafted frames through BPF_PROG_TEST_RUN. Needs root.

use std::net::{IpAddr, Ipv4Addr};

use dataplane::model::*;
use dataplane::testrun::Runner;
use ebpf_common::{ADDR_FILTER_READY, ADDR_FILTER_SRC, AF_INET, addr_filter_slot, counter};
use xlvs_tests::packet::{ACK, Frame, SYN, decode};
use xlvs_tests::testbed::{TestBed, XDP_PASS};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 1);
const CIP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const R1: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 2);
const OTHER: Ipv4Addr = Ipv4Addr::new(198, 18, 7, 7);

/// Writes `value` into entry `index` of ADDR_FILTER, as a build without the filter (or a lost
/// mark) would have left it.
fn set_filter(b: &TestBed, index: u32, value: u32) {
    b.set_u32_entry(ebpf_common::maps::ADDR_FILTER, index, value);
}

fn source_slot(ip: Ipv4Addr) -> u32 {
    ADDR_FILTER_SRC + addr_filter_slot(AF_INET, &[u32::from_ne_bytes(ip.octets()), 0, 0, 0])
}

/// The real's answer on the connection: (action, source it leaves with).
fn reply(runner: &Runner) -> (u32, Ipv4Addr) {
    let r = runner
        .run(&Frame::tcp(R1, 8080, CIP, 40000, ACK).build())
        .expect("test run");
    (r.action, decode(&r.packet).expect("decodable").src)
}

#[test]
fn replies_of_a_removed_real_pass_the_filter_also_after_it_was_lost() {
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    let svc = ServiceAddr::Inet {
        proto: Protocol::Tcp,
        addr: IpAddr::V4(VIP),
        port: 80,
    };
    b.dp.add_service(&ServiceConfig::new(svc)).unwrap();
    let mut d = DestConfig::new(IpAddr::V4(R1), 8080);
    d.forward = Forward::Masq;
    b.dp.add_dest(&svc, &d).unwrap();
    let (action, out) = b.run(&Frame::tcp(CIP, 40000, VIP, 80, SYN).build());
    assert_eq!((action, decode(&out).unwrap().dst), (XDP_PASS, R1));
    // The real removed: its connection continues, its replies still get the VIP back.
    b.dp.del_dest(&svc, IpAddr::V4(R1), 8080).unwrap();
    assert_eq!(reply(&b.runner), (XDP_PASS, VIP));

    // A host's other traffic passes untouched, counted as not ours.
    let before = b.dp.counters().unwrap()[counter::PASS_NOT_VIP as usize];
    let (action, out) = b.run(&Frame::tcp(OTHER, 5000, CIP, 6000, ACK).build());
    assert_eq!((action, decode(&out).unwrap().src), (XDP_PASS, OTHER));
    assert_eq!(
        b.dp.counters().unwrap()[counter::PASS_NOT_VIP as usize],
        before + 1
    );

    // The real's mark lost: the filter is asked first, so the reply passes untranslated (what
    // a missing mark would do)...
    set_filter(&b, source_slot(R1), 0);
    assert_eq!(reply(&b.runner), (XDP_PASS, R1));
    // ... and while the filter is not complete, every packet is looked up.
    set_filter(&b, ADDR_FILTER_READY, 0);
    assert_eq!(reply(&b.runner), (XDP_PASS, VIP));
    // A reload rebuilds it from the tables: the real is configured nowhere any more, but its
    // one-entry connection's owner (NAT_OWNERS) is kept.
    dataplane::reload(&b.opts).unwrap();
    let runner = Runner::xlvs(&b.opts).unwrap();
    assert_eq!(reply(&runner), (XDP_PASS, VIP));
    // The filter is on again: a lost mark shows.
    set_filter(&b, source_slot(R1), 0);
    assert_eq!(reply(&runner), (XDP_PASS, R1));
}
