//! IPVS' `sloppy_tcp` (`PathSettings::sloppy_tcp`, `xlvs set sloppy_tcp 1`): a TCP segment of a
//! flow this director has no connection for is scheduled like a SYN, so a flow that an ECMP
//! router moves here from a failed director continues. With `mh` or `sh` and the same services
//! on both directors the flow reaches the real that the first director picked. TEST_RUN in
//! routed namespaces (the reals' MACs resolve), one per director; needs root.

use std::net::Ipv4Addr;

use dataplane::model::*;
use ebpf_common::counter;
use xlvs_tests::addrs::VIP;
use xlvs_tests::packet::{ACK, FIN, Frame, RST, SYN};
use xlvs_tests::services;
use xlvs_tests::testbed::{TestBed, XDP_DROP, XDP_TX};

/// The reals of `netns::fib_namespace` with permanent neighbours (MAC 02:00:00:00:02:0N).
const REALS: [Ipv4Addr; 4] = [
    Ipv4Addr::new(198, 18, 2, 2),
    Ipv4Addr::new(198, 18, 2, 3),
    Ipv4Addr::new(198, 18, 2, 4),
    Ipv4Addr::new(198, 18, 2, 5),
];
const FLOWS: u16 = 48;

fn client(i: u16) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 1, 10 + i as u8)
}

/// The services every director has (the same configuration everywhere): VIP:port → `REALS`.
const SERVICES: [(u16, Scheduler, Forward); 3] = [
    (80, Scheduler::Mh, Forward::Route),
    (81, Scheduler::Sh, Forward::Route),
    (82, Scheduler::Mh, Forward::Tunnel),
];

/// A director: its own namespace and tables, with `SERVICES`.
fn director(sloppy: bool) -> Option<TestBed> {
    let mut b = TestBed::new(4096, true)?;
    for (port, sched, forward) in SERVICES {
        let cfg = ServiceConfig {
            scheduler: sched,
            ..ServiceConfig::new(services::inet(Protocol::Tcp, VIP, port))
        };
        let reals = REALS.map(|r| services::real(r, port, forward));
        services::add(&mut b.dp, &cfg, &reals).unwrap();
    }
    b.dp.set_path_settings(&PathSettings {
        sloppy_tcp: sloppy,
        ..PathSettings::default()
    })
    .unwrap();
    Some(b)
}

/// Which real a forwarded frame goes to: its destination MAC's last byte (DR, and the outer
/// header's MAC for tunnels) names the real of `fib_namespace`.
fn real_of(b: &TestBed, frame: &[u8]) -> Option<Ipv4Addr> {
    let (action, packet) = b.run_on_b0(frame);
    if action != XDP_TX {
        return None;
    }
    let mac = &packet[0..6];
    assert_eq!(&mac[..5], &[2, 0, 0, 0, 2], "a real's MAC: {mac:?}");
    Some(Ipv4Addr::new(198, 18, 2, mac[5]))
}

/// Runs `f` on a thread of its own: each director's bed enters its own namespace.
fn on_director<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().expect("director thread")
}

fn flows(port: u16, flags: u8) -> impl Iterator<Item = Vec<u8>> {
    (0..FLOWS).map(move |i| Frame::tcp(client(i), 40000 + i, VIP, port, flags).build())
}

/// Director A (sloppy_tcp off, the default) opens each flow with its SYN and answers a segment
/// without a connection with a RST; director B (sloppy_tcp on) sees the same flows only from their next
/// ACK on, as after an ECMP re-hash: it must send each to A's real (mh and sh, DR and TUN), list
/// them ESTABLISHED as IPVS does, and never open a connection on a reset.
#[test]
fn with_sloppy_tcp_another_director_continues_a_flow_on_the_same_real() {
    let picks_a = on_director(|| {
        let b = director(false)?;
        assert!(!b.dp.path_settings().unwrap().sloppy_tcp, "off by default");
        // No connection, no sloppy_tcp: not scheduled, its sender is reset.
        let stray = Frame::tcp(client(0), 39999, VIP, 80, ACK).build();
        let (_, out) = b.run_on_b0(&stray);
        assert_eq!(&out[0..6], &stray[6..12], "back to the client, a RST");
        assert_eq!(b.counter(counter::RST_SENT), 1);
        assert!(b.dp.connections().unwrap().is_empty());
        Some(SERVICES.map(|(port, ..)| {
            flows(port, SYN)
                .map(|f| real_of(&b, &f))
                .collect::<Vec<_>>()
        }))
    });
    let Some(picks_a) = picks_a else { return };
    let (picks_b, states, resets_dropped, fin_state) = on_director(|| {
        let b = director(true).unwrap();
        let picks = SERVICES.map(|(port, ..)| {
            flows(port, ACK)
                .map(|f| real_of(&b, &f))
                .collect::<Vec<_>>()
        });
        let states: Vec<_> =
            b.dp.connections()
                .unwrap()
                .iter()
                .map(|c| (c.virt.port(), c.state, c.forward))
                .collect();
        let resets_dropped = [RST, RST | ACK].iter().all(|&flags| {
            let f = Frame::tcp(client(0), 39000, VIP, 80, flags).build();
            b.run_on_b0(&f).0 == XDP_DROP
        });
        // A FIN opens too (as in IPVS), in CLOSE.
        let fin = Frame::tcp(client(0), 39001, VIP, 80, FIN | ACK).build();
        assert!(real_of(&b, &fin).is_some());
        let conns = b.dp.connections().unwrap();
        let fin_state = conns
            .iter()
            .find(|c| c.client.port() == 39001)
            .map(|c| c.state);
        assert!(
            conns.iter().all(|c| c.client.port() != 39000),
            "no reset opened one"
        );
        (picks, states, resets_dropped, fin_state)
    });
    for (i, (port, sched, forward)) in SERVICES.iter().enumerate() {
        assert!(
            picks_a[i].iter().all(Option::is_some),
            "A opened every flow"
        );
        assert_eq!(
            picks_a[i], picks_b[i],
            "{sched:?} {forward:?}: B continues on A's reals"
        );
        let used: std::collections::HashSet<_> = picks_a[i].iter().flatten().collect();
        assert!(used.len() >= 3, "the flows spread over the reals: {used:?}");
        let mine: Vec<_> = states.iter().filter(|s| s.0 == *port).collect();
        assert_eq!(mine.len(), FLOWS as usize);
        assert!(
            mine.iter().all(|s| (s.1, s.2) == ("ESTABLISHED", *forward)),
            "a connection opened mid-stream is ESTABLISHED, as IPVS lists it: {mine:?}"
        );
    }
    assert!(resets_dropped, "a reset opens nothing");
    assert_eq!(fin_state, Some("CLOSE"));
}
