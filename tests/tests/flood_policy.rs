//! What the packet path does with traffic that belongs to no connection: TCP segments other
//! than a SYN are dropped and counted; fragments and ports without a service addressed to a VIP
//! go to the kernel unless the policy (`PathSettings`) says drop. TEST_RUN; needs root.

use std::net::Ipv4Addr;

use dataplane::model::*;
use ebpf_common::counter;
use xlvs_tests::addrs::{CIP, R1, VIP};
use xlvs_tests::packet::{ACK, FIN, Frame, RST, SYN, set_ipv4_checksum};
use xlvs_tests::services;
use xlvs_tests::testbed::{TestBed, XDP_DROP, XDP_PASS, XDP_TX};

const OTHER: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 2);

fn bed_with_service() -> Option<TestBed> {
    let mut b = TestBed::new(1024, false)?;
    let cfg = ServiceConfig::new(services::inet(Protocol::Tcp, VIP, 80));
    services::add(&mut b.dp, &cfg, &[services::real(R1, 80, Forward::Masq)]).unwrap();
    Some(b)
}

/// A first fragment (MF set) of a UDP datagram to `dst`.
fn fragment(dst: Ipv4Addr) -> Vec<u8> {
    let mut f = Frame::udp(CIP, 5000, dst, 53, &[0u8; 64]).build();
    f[20] = 0x20; // MF, offset 0 (the builder sets DF)
    set_ipv4_checksum(&mut f);
    f
}

#[test]
fn tcp_without_a_session_is_reset_or_dropped_unless_it_is_a_syn() {
    let Some(b) = bed_with_service() else { return };
    // Segments with an ACK get a RST back; RSTs are never answered.
    for (flags, want) in [
        (ACK, XDP_TX),
        (FIN | ACK, XDP_TX),
        (SYN | ACK, XDP_TX),
        (RST, XDP_DROP),
        (RST | ACK, XDP_DROP),
    ] {
        let (action, _) = b.run(&Frame::tcp(CIP, 40000, VIP, 80, flags).build());
        assert_eq!(action, want, "flags {flags:#x}");
    }
    assert_eq!(b.counter(counter::RST_SENT), 3);
    assert_eq!(b.counter(counter::DROP_NO_SESSION), 2);
    assert!(b.dp.connections().unwrap().is_empty());
}

#[test]
fn fragments_to_a_vip_are_dropped_only_when_the_policy_says_so() {
    let Some(mut b) = bed_with_service() else {
        return;
    };
    assert_eq!(b.dp.path_settings().unwrap(), PathSettings::default());
    let frag = fragment(VIP);
    let (action, out) = b.run(&frag);
    assert_eq!(
        (action, &out),
        (XDP_PASS, &frag),
        "default: the kernel reassembles"
    );
    assert_eq!(b.counter(counter::PASS_FRAGMENT), 1);

    let policy = PathSettings {
        frag_drop: true,
        ..PathSettings::default()
    };
    b.dp.set_path_settings(&policy).unwrap();
    assert_eq!(b.dp.path_settings().unwrap(), policy);
    assert_eq!(b.run(&frag).0, XDP_DROP);
    assert_eq!(b.counter(counter::DROP_FRAGMENT), 1);
    // Not a VIP: still the kernel's.
    let other = fragment(OTHER);
    assert_eq!(b.run(&other), (XDP_PASS, other.clone()));
    assert_eq!(b.counter(counter::PASS_FRAGMENT), 2);
}

#[test]
fn ports_without_a_service_on_a_vip_are_dropped_only_when_the_policy_says_so() {
    let Some(mut b) = bed_with_service() else {
        return;
    };
    let udp = Frame::udp(CIP, 5000, VIP, 9999, b"flood").build();
    let ssh = Frame::tcp(CIP, 40000, VIP, 22, SYN).build();
    for f in [&udp, &ssh] {
        assert_eq!(b.run(f), (XDP_PASS, f.clone()), "default: the kernel's");
    }
    b.dp.set_path_settings(&PathSettings {
        no_service_drop: true,
        ..PathSettings::default()
    })
    .unwrap();
    assert_eq!(b.run(&udp).0, XDP_DROP);
    assert_eq!(b.run(&ssh).0, XDP_DROP);
    assert_eq!(b.counter(counter::DROP_NO_SERVICE), 2);
    // Another address is not ours; the service itself still works.
    let other = Frame::udp(CIP, 5000, OTHER, 9999, b"x").build();
    assert_eq!(b.run(&other), (XDP_PASS, other.clone()));
    assert_eq!(
        b.run(&Frame::tcp(CIP, 40000, VIP, 80, SYN).build()).0,
        XDP_PASS
    );
    assert_eq!(b.dp.connections().unwrap().len(), 1);
    // Once the VIP's last service is gone, the address is not a VIP any more.
    b.dp.flush().unwrap();
    assert_eq!(b.run(&udp), (XDP_PASS, udp.clone()));
}
