//! Every IPVS scheduler's defining property, on the real XDP program through BPF_PROG_TEST_RUN
//! (root; each test in its own namespace and pin directory):
//!
//! * lc, wlc, sed, nq, ovf, fo: on a random script of opens, handshakes completed and resets, each
//!   new connection goes exactly where IPVS' algorithm (written out below from ip_vs_lc.c,
//!   ip_vs_wlc.c, ...) sends it given the connection counts the test itself keeps;
//! * rr, wrr: order and proportions over 10 000 connections; dh: one destination address, one real;
//! * lblc, lblcr: a destination address stays on its real until that real is overloaded;
//! * thresholds (-x/-y): an overloaded real takes nothing new until its connections expire below
//!   the lower threshold (expiry by the timers, as IPVS' connection timers).

use std::net::Ipv4Addr;

use dataplane::model::*;
use xlvs_tests::addrs::{CIP, VIP};
use xlvs_tests::packet::{ACK, FIN, Frame, RST, SYN, decode};
use xlvs_tests::services;
use xlvs_tests::testbed::{TestBed, XDP_DROP, XDP_PASS};

const RPORT: u16 = 8080;

fn real(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 2, 2 + i as u8)
}

struct Real {
    weight: i32,
    u_threshold: u32,
    l_threshold: u32,
}

fn w(weight: i32) -> Real {
    Real {
        weight,
        u_threshold: 0,
        l_threshold: 0,
    }
}

fn service(b: &mut TestBed, proto: Protocol, sched: Scheduler, reals: &[Real]) -> ServiceAddr {
    let cfg = ServiceConfig {
        scheduler: sched,
        ..ServiceConfig::new(services::inet(proto, VIP, 80))
    };
    let reals: Vec<DestConfig> = reals
        .iter()
        .enumerate()
        .map(|(i, r)| DestConfig {
            weight: r.weight,
            u_threshold: r.u_threshold,
            l_threshold: r.l_threshold,
            ..services::real(real(i), RPORT, Forward::Masq)
        })
        .collect();
    services::add(&mut b.dp, &cfg, &reals).unwrap()
}

/// The real index a new TCP connection from CIP:`port` is sent to (None: dropped).
fn open(b: &TestBed, port: u16) -> Option<usize> {
    let (action, out) = b.run(&Frame::tcp(CIP, port, VIP, 80, SYN).build());
    if action == XDP_DROP {
        return None;
    }
    assert_eq!(action, XDP_PASS);
    let d = decode(&out).expect("decodable");
    Some((d.dst.octets()[3] - 2) as usize)
}

/// The real index a UDP datagram from CIP:`port` is sent to.
fn send(b: &TestBed, port: u16) -> usize {
    let (action, out) = b.run(&Frame::udp(CIP, port, VIP, 80, b"x").build());
    assert_eq!(action, XDP_PASS);
    (decode(&out).unwrap().dst.octets()[3] - 2) as usize
}

/// Completes the handshake of CIP:`port` with real `r` (ESTABLISHED: active).
fn establish(b: &TestBed, port: u16, r: usize) {
    b.run(&Frame::tcp(real(r), RPORT, CIP, port, SYN | ACK).build());
    b.run(&Frame::tcp(CIP, port, VIP, 80, ACK).build());
}

/// Resets CIP:`port` from the client side (CLOSE: inactive).
fn reset(b: &TestBed, port: u16) {
    b.run(&Frame::tcp(CIP, port, VIP, 80, RST | ACK).build());
}

#[derive(Clone, Copy, Default, Debug)]
struct Load {
    weight: u64,
    active: u64,
    inactive: u64,
}

impl Load {
    fn conn_overhead(&self) -> u64 {
        (self.active << 8) + self.inactive
    }
}

/// IPVS' choice, from the kernel's ip_vs_<sched>_schedule functions.
fn ipvs_pick(sched: Scheduler, reals: &[Load]) -> Option<usize> {
    let live = || reals.iter().enumerate().filter(|(_, r)| r.weight > 0);
    match sched {
        Scheduler::Lc => {
            let mut best: Option<(usize, u64)> = None;
            for (i, r) in live() {
                if best.is_none_or(|(_, oh)| r.conn_overhead() < oh) {
                    best = Some((i, r.conn_overhead()));
                }
            }
            best.map(|(i, _)| i)
        }
        Scheduler::Wlc | Scheduler::Sed | Scheduler::Nq => {
            let oh = |r: &Load| match sched {
                Scheduler::Wlc => r.conn_overhead(),
                _ => r.active + 1,
            };
            let mut best: Option<usize> = None;
            for (i, r) in live() {
                if sched == Scheduler::Nq && r.active == 0 {
                    return Some(i);
                }
                match best {
                    None => best = Some(i),
                    Some(l) => {
                        let least = &reals[l];
                        if oh(least) * r.weight > oh(r) * least.weight {
                            best = Some(i);
                        }
                    }
                }
            }
            best
        }
        Scheduler::Ovf | Scheduler::Fo => {
            let mut best: Option<usize> = None;
            for (i, r) in live() {
                if sched == Scheduler::Ovf && r.active > r.weight {
                    continue;
                }
                if best.is_none_or(|h| r.weight > reals[h].weight) {
                    best = Some(i);
                }
            }
            best
        }
        other => panic!("no reference for {other:?}"),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum St {
    SynRecv,
    Established,
    Closed,
}

/// Runs a seeded random script of opens, handshakes and resets; every pick must be IPVS'.
fn follows_ipvs(sched: Scheduler, weights: &[i32], steps: usize, seed: u64) {
    let Some(mut b) = TestBed::new(4096, false) else {
        return;
    };
    let reals: Vec<Real> = weights.iter().map(|x| w(*x)).collect();
    service(&mut b, Protocol::Tcp, sched, &reals);
    let mut loads: Vec<Load> = weights
        .iter()
        .map(|x| Load {
            weight: *x as u64,
            ..Default::default()
        })
        .collect();
    let mut conns: Vec<(u16, usize, St)> = Vec::new();
    let mut rng = seed;
    let mut next = || {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (rng >> 33) as usize
    };
    let mut port = 20000u16;
    let (mut opened, mut tried) = (0, 0);
    for step in 0..steps {
        let roll = next() % 100;
        let pick_of = |st: St, n: usize, conns: &[(u16, usize, St)]| {
            let idx: Vec<usize> = (0..conns.len()).filter(|i| conns[*i].2 == st).collect();
            (!idx.is_empty()).then(|| idx[n % idx.len()])
        };
        if roll < 45 {
            let want = ipvs_pick(sched, &loads);
            let got = open(&b, port);
            tried += 1;
            assert_eq!(
                got, want,
                "{sched:?} step {step}: loads {loads:?} (IPVS picks {want:?})"
            );
            if let Some(r) = got {
                loads[r].inactive += 1;
                conns.push((port, r, St::SynRecv));
                opened += 1;
            }
            port += 1;
        } else if roll < 80 {
            if let Some(i) = pick_of(St::SynRecv, next(), &conns) {
                let (p, r, _) = conns[i];
                establish(&b, p, r);
                loads[r].inactive -= 1;
                loads[r].active += 1;
                conns[i].2 = St::Established;
            }
        } else if let Some(i) = pick_of(St::Established, next(), &conns) {
            let (p, r, _) = conns[i];
            reset(&b, p);
            loads[r].active -= 1;
            loads[r].inactive += 1;
            conns[i].2 = St::Closed;
        }
    }
    assert!(
        tried > steps / 4 && opened > steps / 8,
        "the script opened {opened} connections in {tried} tries"
    );
    // The listing (counted from the connection table) agrees with the packet path's counts.
    let e = &b.dp.services().unwrap()[0];
    for (i, d) in e.dests.iter().enumerate() {
        assert_eq!(
            (d.active_conns as u64, d.inact_conns as u64),
            (loads[i].active, loads[i].inactive),
            "real {i}"
        );
    }
}

#[test]
fn lc_sends_each_connection_to_the_least_connected_real() {
    follows_ipvs(Scheduler::Lc, &[1, 3, 2], 400, 1);
}

#[test]
fn wlc_weighs_the_connection_overhead() {
    follows_ipvs(Scheduler::Wlc, &[1, 3, 2], 400, 2);
}

#[test]
fn sed_counts_active_connections_plus_one() {
    follows_ipvs(Scheduler::Sed, &[1, 3, 2], 400, 3);
}

#[test]
fn nq_prefers_an_idle_real() {
    follows_ipvs(Scheduler::Nq, &[1, 3, 2], 400, 4);
}

#[test]
fn ovf_fills_the_heaviest_real_up_to_its_weight_then_overflows() {
    follows_ipvs(Scheduler::Ovf, &[2, 3, 1], 400, 5);
}

#[test]
fn fo_sends_everything_to_the_heaviest_real() {
    follows_ipvs(Scheduler::Fo, &[2, 3, 3, 1], 200, 6);
}

#[test]
fn rr_cycles_in_order_and_wrr_keeps_proportions_over_10000_connections() {
    let Some(mut b) = TestBed::new(1 << 15, false) else {
        return;
    };
    service(&mut b, Protocol::Tcp, Scheduler::Rr, &[w(1), w(1), w(1)]);
    let picks: Vec<usize> = (0..300).map(|i| open(&b, 1000 + i).unwrap()).collect();
    for (i, p) in picks.iter().enumerate() {
        assert_eq!(*p, (picks[0] + i) % 3, "rr order at {i}");
    }
    let Some(mut b) = TestBed::new(1 << 15, false) else {
        return;
    };
    service(&mut b, Protocol::Tcp, Scheduler::Wrr, &[w(5), w(3), w(2)]);
    let mut n = [0f64; 3];
    for i in 0..10_000u32 {
        let port = 10_000 + (i % 50_000) as u16;
        let src = Ipv4Addr::new(198, 19, (i >> 8) as u8, i as u8);
        let (action, out) = b.run(&Frame::tcp(src, port, VIP, 80, SYN).build());
        assert_eq!(action, XDP_PASS);
        n[(decode(&out).unwrap().dst.octets()[3] - 2) as usize] += 1.0;
    }
    for (i, share) in [0.5, 0.3, 0.2].iter().enumerate() {
        let got = n[i] / 10_000.0;
        assert!(
            (got - share).abs() <= share * 0.05,
            "wrr real {i}: {got} of the connections, want {share} ± 5%"
        );
    }
}

#[test]
fn dh_sends_one_destination_address_to_one_real() {
    let Some(mut b) = TestBed::new(4096, false) else {
        return;
    };
    service(&mut b, Protocol::Tcp, Scheduler::Dh, &[w(1), w(1), w(1)]);
    let layout = dataplane::sched::build_table(
        Scheduler::Dh,
        &(0..3)
            .map(|i| dataplane::sched::Member {
                id: i,
                weight: 1,
                seed: 0,
            })
            .collect::<Vec<_>>(),
        false,
        false,
    );
    let want = layout[ebpf_common::sh_bucket(u32::from(VIP), 0, 0) as usize] as usize;
    for i in 0..100u32 {
        let src = Ipv4Addr::new(198, 19, 0, i as u8);
        let (_, out) = b.run(&Frame::tcp(src, 3000 + i as u16, VIP, 80, SYN).build());
        assert_eq!(decode(&out).unwrap().dst, real(want), "client {src}");
    }
}

#[test]
fn lblc_keeps_a_destination_on_its_real_until_that_real_is_overloaded() {
    let Some(mut b) = TestBed::new(4096, false) else {
        return;
    };
    service(&mut b, Protocol::Tcp, Scheduler::Lblc, &[w(1), w(1)]);
    // Both idle: wlc's first pick, remembered for the VIP.
    assert_eq!(open(&b, 100), Some(0));
    establish(&b, 100, 0);
    // One active on a weight-1 real is not "overloaded" (active > weight): same real.
    assert_eq!(open(&b, 101), Some(0));
    establish(&b, 101, 0);
    // Two active > weight 1, and real 1 is below half its weight: scheduled anew (wlc).
    assert_eq!(open(&b, 102), Some(1));
    // And remembered: the next one stays on real 1 (not overloaded).
    assert_eq!(open(&b, 103), Some(1));
}

#[test]
fn lblcr_grows_the_set_of_an_overloaded_destination_and_uses_its_least_loaded_member() {
    let Some(mut b) = TestBed::new(4096, false) else {
        return;
    };
    service(&mut b, Protocol::Tcp, Scheduler::Lblcr, &[w(1), w(1), w(1)]);
    assert_eq!(open(&b, 100), Some(0));
    establish(&b, 100, 0);
    assert_eq!(open(&b, 101), Some(0));
    establish(&b, 101, 0);
    // Real 0 overloaded: wlc over all picks real 1, which joins the set {1, 0}.
    assert_eq!(open(&b, 102), Some(1));
    establish(&b, 102, 1);
    // The set's least loaded member: real 1 (256) before real 0 (512); real 2 is not a member.
    assert_eq!(open(&b, 103), Some(1));
    establish(&b, 103, 1);
    // Both members now overloaded (2 active > weight 1) while real 2 is idle: real 2 joins.
    assert_eq!(open(&b, 104), Some(2));
}

#[test]
fn thresholds_stop_new_connections_above_x_and_resume_below_y_after_expiry() {
    let Some(mut b) = TestBed::new(4096, false) else {
        return;
    };
    b.dp.set_timeouts(&Timeouts {
        tcp: 0,
        tcp_fin: 0,
        udp: 1,
    })
    .unwrap();
    let reals = [
        Real {
            weight: 1,
            u_threshold: 2,
            l_threshold: 1,
        },
        w(1),
    ];
    service(&mut b, Protocol::Udp, Scheduler::Rr, &reals);
    let first: Vec<usize> = (0..6).map(|i| send(&b, 5000 + i)).collect();
    // rr alternates until real 0 holds 2 connections (its upper threshold): then only real 1.
    assert_eq!(first, vec![0, 1, 0, 1, 1, 1]);
    // The flows themselves keep going to their reals.
    assert_eq!(send(&b, 5000), 0);
    let e = &b.dp.services().unwrap()[0];
    assert_eq!((e.dests[0].inact_conns, e.dests[1].inact_conns), (2, 4));
    // UDP timeout 1 s: after it, the timers free them and lift the overload (0 < y = 1).
    std::thread::sleep(std::time::Duration::from_millis(2300));
    let tick = b.dp.run_timers().unwrap();
    assert_eq!(tick.expired, 6, "{tick:?}");
    assert!(b.dp.connections().unwrap().is_empty());
    let picks: Vec<usize> = (0..4).map(|i| send(&b, 6000 + i)).collect();
    assert_eq!(picks.iter().filter(|r| **r == 0).count(), 2, "{picks:?}");
}

#[test]
fn timers_free_expired_connections_and_their_counts() {
    let Some(mut b) = TestBed::new(4096, false) else {
        return;
    };
    b.dp.set_timeouts(&Timeouts {
        tcp: 0,
        tcp_fin: 0,
        udp: 1,
    })
    .unwrap();
    service(&mut b, Protocol::Udp, Scheduler::Lc, &[w(1), w(1)]);
    // lc alternates (each UDP flow is one inactive connection).
    let picks: Vec<usize> = (0..4).map(|i| send(&b, 7000 + i)).collect();
    assert_eq!(picks, vec![0, 1, 0, 1]);
    let t = b.dp.run_timers().unwrap();
    assert_eq!((t.expired, t.live, t.corrected), (0, 4, 0), "{t:?}");
    std::thread::sleep(std::time::Duration::from_millis(2300));
    // Only real 1's flows are refreshed: real 0's expire.
    send(&b, 7001);
    send(&b, 7003);
    let t = b.dp.run_timers().unwrap();
    assert_eq!((t.expired, t.live), (2, 2), "{t:?}");
    // Real 0 now has 0 connections, real 1 two: lc sends the next two to real 0.
    assert_eq!(send(&b, 7100), 0);
    assert_eq!(send(&b, 7101), 0);
    assert_eq!(send(&b, 7102), 0);
}

#[test]
fn one_packet_scheduling_schedules_every_udp_datagram_and_still_translates_replies() {
    let Some(mut b) = TestBed::new(4096, false) else {
        return;
    };
    let addr = service(&mut b, Protocol::Udp, Scheduler::Rr, &[w(1), w(1)]);
    let mut cfg = b.dp.service(&addr).unwrap().config;
    cfg.one_packet = true;
    b.dp.edit_service(&cfg).unwrap();
    // The same flow, datagram after datagram: rr goes on as if each were a new connection.
    let picks: Vec<usize> = (0..4).map(|_| send(&b, 5353)).collect();
    assert!(picks == [0, 1, 0, 1] || picks == [1, 0, 1, 0], "{picks:?}");
    // No connection is kept for the client side...
    assert!(b.dp.connections().unwrap().is_empty());
    // ...but a real's answer still leaves from the VIP.
    let (action, out) = b.run(&Frame::udp(real(1), RPORT, CIP, 5353, b"answer").build());
    assert_eq!(action, XDP_PASS);
    let d = decode(&out).unwrap();
    assert_eq!((d.src, d.sport), (VIP, 80));
    // Without -o the flow sticks to its real.
    cfg.one_packet = false;
    b.dp.edit_service(&cfg).unwrap();
    let first = send(&b, 6000);
    assert!((0..3).all(|_| send(&b, 6000) == first));
}

/// Pins the calling thread to `cpu` (BPF_PROG_TEST_RUN runs the program on the caller's CPU).
fn pin_to_cpu(cpu: usize) {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu).expect("cpu index");
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).expect("sched_setaffinity");
}

/// The client's and the real's FIN of one connection, handled at the same moment on two CPUs
/// (two interfaces, two NAPI contexts), both see it leave ESTABLISHED: only one may move it
/// from its real's active count to the inactive one (the other saw a lost race), or the active
/// count goes below zero and wraps — lc then sees that real as endlessly loaded.
#[test]
fn concurrent_fins_of_one_connection_move_its_count_once() {
    let Some(mut b) = TestBed::new(1 << 16, true) else {
        return;
    };
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        xlvs_tests::skip("needs two CPUs");
        return;
    }
    service(&mut b, Protocol::Tcp, Scheduler::Lc, &[w(1)]);
    const N: u16 = 4000;
    for i in 0..N {
        let port = 20000 + i;
        assert_eq!(open(&b, port), Some(0));
        establish(&b, port, 0);
    }
    let counts = dataplane::conncount::DestConnsMap::open(&b.opts.pin_dir).unwrap();
    let total = |c: &dataplane::conncount::DestConnsMap| {
        (0..ebpf_common::MAX_DESTS)
            .map(|id| c.raw(id))
            .fold((0u64, 0u64), |(a, i), (x, y)| {
                (a.wrapping_add(x), i.wrapping_add(y))
            })
    };
    assert_eq!(total(&counts), (N as u64, 0), "all established");
    let client_fins: Vec<Vec<u8>> = (0..N)
        .map(|i| Frame::tcp(CIP, 20000 + i, VIP, 80, FIN | ACK).build())
        .collect();
    let real_fins: Vec<Vec<u8>> = (0..N)
        .map(|i| Frame::tcp(real(0), RPORT, CIP, 20000 + i, FIN | ACK).build())
        .collect();
    let barrier = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        for (cpu, frames) in [(0, &client_fins), (1, &real_fins)] {
            let (b, barrier) = (&b, &barrier);
            s.spawn(move || {
                pin_to_cpu(cpu);
                barrier.wait();
                for f in frames {
                    b.run(f);
                }
            });
        }
    });
    assert_eq!(
        total(&counts),
        (0, N as u64),
        "each connection moved once from active to inactive"
    );
}
