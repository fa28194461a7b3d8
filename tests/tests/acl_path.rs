//! DPVS deny/allow lists (`ipvsadm -U/-O`, keepalived daddr/waddr groups) in the packet path: a
//! new connection from a denied client, or from one missing from a non-empty allow list, is
//! dropped and counted; everyone else is scheduled; lists go with their service. TEST_RUN;
//! needs root.

use std::net::{IpAddr, Ipv4Addr};

use dataplane::Error;
use dataplane::model::*;
use ebpf_common::counter;
use xlvs_tests::addrs::{R1, VIP};
use xlvs_tests::packet::{Frame, SYN};
use xlvs_tests::services;
use xlvs_tests::testbed::{TestBed, XDP_DROP};

const A: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const B: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 3);

fn svc() -> ServiceAddr {
    services::inet(Protocol::Tcp, VIP, 80)
}

fn add_service(b: &mut TestBed) {
    let real = services::real(R1, 80, Forward::Masq);
    services::add(&mut b.dp, &ServiceConfig::new(svc()), &[real]).unwrap();
}

/// Whether a SYN from `client` (a fresh port each time) opens a connection.
fn opens(b: &TestBed, client: Ipv4Addr, port: u16) -> bool {
    let before = b.dp.connections().unwrap().len();
    let (action, _) = b.run(&Frame::tcp(client, port, VIP, 80, SYN).build());
    let opened = b.dp.connections().unwrap().len() > before;
    assert_eq!(
        action == XDP_DROP,
        !opened,
        "dropped exactly when not opened"
    );
    opened
}

fn denied(b: &TestBed) -> u64 {
    b.counter(counter::DROP_DENIED)
}

#[test]
fn deny_and_allow_lists_filter_new_connections() {
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    add_service(&mut b);
    assert!(opens(&b, A, 1000) && opens(&b, B, 1000));

    // Deny list: A is refused, B still served.
    b.dp.add_acl(&svc(), AclKind::Deny, IpAddr::V4(A)).unwrap();
    assert!(matches!(
        b.dp.add_acl(&svc(), AclKind::Deny, IpAddr::V4(A)),
        Err(Error::AclExists(AclKind::Deny))
    ));
    assert!(!opens(&b, A, 1001));
    assert!(opens(&b, B, 1001));
    assert_eq!(denied(&b), 1);

    // Allow list with B only: A (denied anyway) and everyone else but B are refused.
    b.dp.del_acl(&svc(), AclKind::Deny, IpAddr::V4(A)).unwrap();
    b.dp.add_acl(&svc(), AclKind::Allow, IpAddr::V4(B)).unwrap();
    assert!(!opens(&b, A, 1002));
    assert!(!opens(&b, Ipv4Addr::new(198, 18, 1, 9), 1002));
    assert!(opens(&b, B, 1002));
    assert_eq!(denied(&b), 3);
    let e = b.dp.service(&svc()).unwrap();
    assert_eq!((e.deny.len(), e.allow), (0, vec![IpAddr::V4(B)]));

    // Emptying the allow list opens the service to all again.
    b.dp.del_acl(&svc(), AclKind::Allow, IpAddr::V4(B)).unwrap();
    assert!(matches!(
        b.dp.del_acl(&svc(), AclKind::Allow, IpAddr::V4(B)),
        Err(Error::NoSuchAclAddr)
    ));
    assert!(opens(&b, A, 1003));
}

#[test]
fn lists_go_with_their_service() {
    let Some(mut b) = TestBed::new(1024, false) else {
        return;
    };
    assert!(matches!(
        b.dp.add_acl(&svc(), AclKind::Deny, IpAddr::V4(A)),
        Err(Error::ServiceNotDefined)
    ));
    add_service(&mut b);
    b.dp.add_acl(&svc(), AclKind::Deny, IpAddr::V4(A)).unwrap();
    b.dp.del_service(&svc()).unwrap();
    add_service(&mut b);
    assert!(b.dp.service(&svc()).unwrap().deny.is_empty());
    assert!(
        opens(&b, A, 2000),
        "a re-added service starts without lists"
    );
}
