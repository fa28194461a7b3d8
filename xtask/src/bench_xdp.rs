//! ns/packet of the XDP program through BPF_PROG_TEST_RUN, measured as DESIGN.md §8 (and Katran's
//! perf harness) does: repeat=1, many calls per case, cases interleaved and rotated over rounds,
//! the trivial XDP_PASS program measured in the same rounds; medians over rounds, and the cost
//! above that floor.
//!
//! The runs happen in a scratch namespace whose FIB knows the next hops (static neighbours), with
//! the test-run context saying the packet arrived on its veth, so the established and new-flow
//! cases go the whole way: rewrite, FIB lookup, MAC rewrite, XDP_TX.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use dataplane::model::*;
use dataplane::testrun::Runner;
use dataplane::{Dataplane, Options};
use xlvs_tests::netns::{enter, fib_namespace, is_root, unique_prefix};
use xlvs_tests::packet::{ACK, Frame, SYN};

use crate::stats::median;

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 1);
const CIP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const RIP: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 2);
const CALLS_PER_ROUND: usize = 150_000;

/// Runs with an xdp_md context naming the ingress interface; (action, kernel ns).
fn run_with_ctx(r: &Runner, pkt: &[u8], ifindex: u32) -> Result<(u32, u64)> {
    let res = r.run_on(pkt, ifindex)?;
    Ok((res.action, res.duration.as_nanos() as u64))
}

/// Index of the "established NAT reply" case in `cases`.
const REPLY_CASE: usize = 3;

struct Case {
    name: &'static str,
    runner: usize,
    frame: Vec<u8>,
    /// Give every call a new flow (source address and port change).
    new_flow: bool,
    expect_action: u32,
}

pub fn run(rounds: usize) -> Result<()> {
    if !is_root() {
        bail!("the XDP benchmark needs root (BPF_PROG_TEST_RUN)");
    }
    let prefix = unique_prefix("xb");
    let (ns, dev) = fib_namespace(&prefix)?;
    enter(&format!("/run/netns/{prefix}"))?;
    let ifindex = dataplane::loader::ifindex(&dev).context("fib namespace device")?;
    let opts = Options {
        pin_dir: PathBuf::from(format!("/sys/fs/bpf/xlvs-{prefix}")),
        max_conns: std::env::var("XLVS_BENCH_CONNS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1 << 20),
    };
    let _cleanup = Cleanup(opts.clone());
    // A second data plane with a small table: a new connection's cost is mostly cache and TLB
    // misses in the big table, which this one shows.
    let small = Options {
        pin_dir: PathBuf::from(format!("/sys/fs/bpf/xlvs-{prefix}s")),
        max_conns: SMALL_TABLE,
    };
    let _cleanup_small = Cleanup(small.clone());
    configure(&opts)?;
    configure(&small)?;
    let runners = [
        Runner::trivial(&opts)?,
        Runner::xlvs(&opts)?,
        Runner::xlvs(&small)?,
    ];

    // One established flow: SYN once, then its ACKs (and the real's replies) are hits.
    let syn = Frame::tcp(CIP, 40000, VIP, 80, SYN).build();
    let (action, _) = run_with_ctx(&runners[1], &syn, ifindex)?;
    if action != 3 {
        bail!("setup: expected XDP_TX for the first SYN, got {action}");
    }
    let mut cases = [
        Case {
            name: "trivial XDP_PASS (floor)",
            runner: 0,
            frame: Frame::tcp(CIP, 40000, Ipv4Addr::new(198, 18, 1, 1), 22, SYN).build(),
            new_flow: false,
            expect_action: 2,
        },
        Case {
            name: "non-VIP packet (pass)",
            runner: 1,
            frame: Frame::tcp(CIP, 40000, Ipv4Addr::new(198, 18, 1, 1), 22, SYN).build(),
            new_flow: false,
            expect_action: 2,
        },
        Case {
            name: "established NAT hit (client->real)",
            runner: 1,
            frame: Frame::tcp(CIP, 40000, VIP, 80, ACK).build(),
            new_flow: false,
            expect_action: 3,
        },
        Case {
            name: "established NAT reply (real->client)",
            runner: 1,
            frame: Frame::tcp(RIP, 8080, CIP, 40000, ACK).build(),
            new_flow: false,
            expect_action: 3,
        },
        Case {
            name: "new connection (schedule+insert)",
            runner: 1,
            frame: Frame::tcp(CIP, 1, VIP, 80, SYN).build(),
            new_flow: true,
            expect_action: 3,
        },
        Case {
            name: "new connection, 64K-conn table",
            runner: 2,
            frame: Frame::tcp(CIP, 1, VIP, 80, SYN).build(),
            new_flow: true,
            expect_action: 3,
        },
        Case {
            name: "new connection, wrr",
            runner: 1,
            frame: Frame::tcp(CIP, 1, VIP, 81, SYN).build(),
            new_flow: true,
            expect_action: 3,
        },
        Case {
            name: "new connection, sh",
            runner: 1,
            frame: Frame::tcp(CIP, 1, VIP, 82, SYN).build(),
            new_flow: true,
            expect_action: 3,
        },
        Case {
            name: "new connection, mh",
            runner: 1,
            frame: Frame::tcp(CIP, 1, VIP, 83, SYN).build(),
            new_flow: true,
            expect_action: 3,
        },
    ];
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let mut flow_seq: u32 = 0;
    println!(
        "XDP ns/packet via BPF_PROG_TEST_RUN (repeat=1, {CALLS_PER_ROUND} calls per case per round, {rounds} rounds)"
    );
    for round in 0..rounds {
        for k in 0..cases.len() {
            let i = (k + round) % cases.len();
            let case = &mut cases[i];
            if !case.new_flow && case.expect_action == 3 {
                // The new-connection cases may have evicted the established flow (LRU): reopen
                // it, and aim the reply at whichever real the scheduler picked this time.
                let opened = runners[1].run_on(&syn, ifindex)?;
                if i == REPLY_CASE && opened.packet.len() >= 34 {
                    let o = &opened.packet;
                    let real = Ipv4Addr::new(o[30], o[31], o[32], o[33]);
                    case.frame = Frame::tcp(real, 8080, CIP, 40000, ACK).build();
                }
            }
            let mut total: u64 = 0;
            for _ in 0..CALLS_PER_ROUND {
                if case.new_flow {
                    flow_seq = flow_seq.wrapping_add(1);
                    // Source 198.18.(64+x).y:port, all different.
                    let addr = 0x40_0000 + (flow_seq >> 14);
                    case.frame[27] = 18 + ((addr >> 16) as u8 & 1);
                    case.frame[28] = (addr >> 8) as u8;
                    case.frame[29] = addr as u8;
                    let port = 1024 + (flow_seq & 0x3fff) as u16;
                    case.frame[34..36].copy_from_slice(&port.to_be_bytes());
                }
                let (action, ns) = run_with_ctx(&runners[case.runner], &case.frame, ifindex)?;
                if action != case.expect_action {
                    bail!(
                        "{}: action {action}, expected {}",
                        case.name,
                        case.expect_action
                    );
                }
                total += ns;
            }
            results[i].push(total as f64 / CALLS_PER_ROUND as f64);
        }
    }
    let medians: Vec<f64> = results.iter_mut().map(|r| median(r)).collect();
    let floor = medians[0];
    println!(
        "{:<40} {:>10} {:>14} {:>10}",
        "case", "median ns", "above floor", "x floor"
    );
    for (case, m) in cases.iter().zip(&medians) {
        println!(
            "{:<40} {:>10.1} {:>14.1} {:>10.2}",
            case.name,
            m,
            m - floor,
            m / floor
        );
    }
    println!(
        "reference (Katran, measured here the same way, DESIGN.md §8): floor 82 ns; established +153 ns; new flow +350 ns; non-VIP +58 ns"
    );
    let established = medians[2];
    println!(
        "target: established hit <= 3x the trivial program: {:.2}x -> {}",
        established / floor,
        if established <= 3.0 * floor {
            "met"
        } else {
            "NOT met"
        }
    );
    drop(runners);
    drop(ns);
    Ok(())
}

/// Connections of the small-table data plane.
const SMALL_TABLE: u32 = 65536;

/// A TCP service on the VIP with four NAT reals, rr.
/// TCP services on the VIP with four NAT reals: rr on port 80, and one port per other scheduler
/// measured (see SCHED_PORTS).
fn configure(opts: &Options) -> Result<()> {
    let mut dp = Dataplane::open(opts)?;
    for (port, sched) in [(80, Scheduler::Rr)].into_iter().chain(SCHED_PORTS) {
        let svc = ServiceAddr::Inet {
            proto: Protocol::Tcp,
            addr: IpAddr::V4(VIP),
            port,
        };
        let mut cfg = ServiceConfig::new(svc);
        cfg.scheduler = sched;
        dp.add_service(&cfg)?;
        for last in 2..6 {
            let mut d = DestConfig::new(IpAddr::V4(Ipv4Addr::new(198, 18, 2, last)), 8080);
            d.forward = Forward::Masq;
            d.weight = last as i32;
            dp.add_dest(&svc, &d)?;
        }
    }
    Ok(())
}

/// Schedulers measured for new connections beside rr, each on its own VIP port.
const SCHED_PORTS: [(u16, Scheduler); 3] = [
    (81, Scheduler::Wrr),
    (82, Scheduler::Sh),
    (83, Scheduler::Mh),
];

struct Cleanup(Options);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = dataplane::unload(&self.0);
    }
}
