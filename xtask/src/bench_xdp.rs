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
use xlvs_tests::packet::{ACK, Frame, Frame6, SYN, decode};

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

/// How an established-flow case makes sure its flow exists before a round (the new-connection
/// cases may have evicted it from the LRU table) and which frame it then sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    /// Not an established flow.
    None,
    /// The NAT flow CIP:40000 -> VIP:80; `reply` sends the real's answer.
    Nat { reply: bool },
    /// The FULLNAT flow CIP:40001 -> VIP:90 (after its SYN-ACK), with `toa`: the handshake ACK,
    /// which gets the TOA option every time (tail call + packet growth).
    FullNat { reply: bool, toa: bool },
    /// SYNPROXY: every call is a new client's cookie ACK (its SYN is sent first, unmeasured).
    CookieAck,
    /// The fwmark flow CIP:40003 -> FWM_VIP:443 (fwmark service, classifier rule).
    Fwmark,
    /// SYNPROXY with timestamps, established (handshakes done once per round): a client ACK
    /// whose ack number and TSecr are translated (tail call into xlvs_seqadj).
    SynproxyEstablished,
    /// A tunnel flow CIP:40010 -> VIP:port (VIP6 with `v6`), client->real ACKs.
    Tun { port: u16, v6: bool },
    /// A source over its connection budget: its frame is sent once before the round
    /// (unmeasured) to spend the budget, since the new-source rows evict its bucket.
    OverBudget,
}

struct Case {
    name: &'static str,
    runner: usize,
    frame: Vec<u8>,
    /// Give every call a new flow (source address and port change).
    new_flow: bool,
    flow: Flow,
    expect_action: u32,
    /// Whether the fwmark service and classifier rules exist during this case (they do for
    /// every case but the "no fwmark rules" baselines).
    fwmark: bool,
}

impl Case {
    /// `frame` sent again and again on runner `runner`, expecting `expect_action`, with the
    /// fwmark rules in place.
    fn new(name: &'static str, runner: usize, frame: Vec<u8>, expect_action: u32) -> Case {
        Case {
            name,
            runner,
            frame,
            new_flow: false,
            flow: Flow::None,
            expect_action,
            fwmark: true,
        }
    }

    /// A new connection every call: a SYN from the client to `dst`:`port` (IPv4).
    fn syn(name: &'static str, runner: usize, dst: Ipv4Addr, port: u16) -> Case {
        Case::new(name, runner, Frame::tcp(CIP, 1, dst, port, SYN).build(), 3).new_flows()
    }

    /// The packet of an established flow of this kind instead of a fixed frame.
    fn flow(self, flow: Flow) -> Case {
        Case { flow, ..self }
    }

    /// Every call a new flow (a new connection each time).
    fn new_flows(self) -> Case {
        Case {
            new_flow: true,
            ..self
        }
    }

    /// Without the fwmark service and classifier rules (the baselines).
    fn without_fwmark(self) -> Case {
        Case {
            fwmark: false,
            ..self
        }
    }
}

pub fn run(rounds: usize) -> Result<()> {
    if !is_root() {
        bail!("the XDP benchmark needs root (BPF_PROG_TEST_RUN)");
    }
    let prefix = unique_prefix("xb");
    let (ns, dev) = fib_namespace(&prefix)?;
    // Our IPv6 source towards the ip6ip6 real (tunnels' outer header).
    ns.ip(&[
        "-6",
        "addr",
        "add",
        "2001:db8:2::1/128",
        "dev",
        "b0",
        "nodad",
    ])?;
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
    // A third, like the small one, whose firewall holds a million prefixes (bench_fw.rs): its
    // rows beside the small one's show what the rules cost.
    let with_fw = Options {
        pin_dir: PathBuf::from(format!("/sys/fs/bpf/xlvs-{prefix}f")),
        max_conns: SMALL_TABLE,
    };
    let _cleanup_fw = Cleanup(with_fw.clone());
    // A fourth, like the small one, with the firewall's rate limits set (so high that nothing
    // is dropped: the rows show what asking them costs).
    let with_limits = Options {
        pin_dir: PathBuf::from(format!("/sys/fs/bpf/xlvs-{prefix}l")),
        max_conns: SMALL_TABLE,
    };
    let _cleanup_limits = Cleanup(with_limits.clone());
    configure(&opts)?;
    configure(&small)?;
    configure(&with_fw)?;
    configure(&with_limits)?;
    crate::bench_fw::load(&with_fw)?;
    crate::bench_fw::set_limits(&with_limits, IpAddr::V4(VIP), VIP6.parse()?)?;
    let runners = [
        Runner::trivial(&opts)?,
        Runner::xlvs(&opts)?,
        Runner::xlvs(&small)?,
        Runner::xlvs(&with_fw)?,
        Runner::xlvs(&with_limits)?,
    ];

    // One established flow: SYN once, then its ACKs (and the real's replies) are hits.
    let syn = Frame::tcp(CIP, 40000, VIP, 80, SYN).build();
    let (action, _) = run_with_ctx(&runners[1], &syn, ifindex)?;
    if action != 3 {
        bail!("setup: expected XDP_TX for the first SYN, got {action}");
    }
    let mut cases = vec![
        Case::new(
            "trivial XDP_PASS (floor)",
            0,
            Frame::tcp(CIP, 40000, Ipv4Addr::new(198, 18, 1, 1), 22, SYN).build(),
            2,
        ),
        Case::new(
            "non-VIP packet (pass)",
            1,
            Frame::tcp(CIP, 40000, Ipv4Addr::new(198, 18, 1, 1), 22, SYN).build(),
            2,
        ),
        Case::new(
            "established NAT hit (client->real)",
            1,
            Frame::tcp(CIP, 40000, VIP, 80, ACK).build(),
            3,
        )
        .flow(Flow::Nat { reply: false }),
        Case::new(
            "established NAT reply (real->client)",
            1,
            Frame::tcp(RIP, 8080, CIP, 40000, ACK).build(),
            3,
        )
        .flow(Flow::Nat { reply: true }),
        Case::new("established FNAT hit (client->real)", 1, Vec::new(), 3).flow(Flow::FullNat {
            reply: false,
            toa: false,
        }),
        Case::new("established FNAT reply (real->client)", 1, Vec::new(), 3).flow(Flow::FullNat {
            reply: true,
            toa: false,
        }),
        Case::new("FNAT handshake ACK + TOA insert", 1, Vec::new(), 3).flow(Flow::FullNat {
            reply: false,
            toa: true,
        }),
        Case::syn("new FNAT connection (port alloc)", 1, VIP, FNAT_PORT),
        Case::new(
            "SYNPROXY SYN -> cookie SYN-ACK",
            1,
            {
                let mut f = Frame::tcp(CIP, 40002, VIP, SYNPROXY_PORT, SYN);
                f.tcp_options = vec![2, 4, 0x05, 0xb4];
                f.build()
            },
            3,
        ),
        Case::new("SYNPROXY IPv6 SYN -> cookie SYN-ACK", 1, synproxy_syn6(), 3),
        Case::new("SYNPROXY cookie ACK -> real SYN", 1, Vec::new(), 3).flow(Flow::CookieAck),
        Case::new("SYNPROXY established hit (seq+TS adj)", 1, Vec::new(), 3)
            .flow(Flow::SynproxyEstablished),
        Case::syn("new connection (schedule+insert)", 1, VIP, 80),
        Case::syn("new connection, 64K-conn table", 2, VIP, 80),
        Case::new(
            "non-VIP packet, 64K-conn table",
            2,
            Frame::tcp(CIP, 40000, Ipv4Addr::new(198, 18, 1, 1), 22, SYN).build(),
            2,
        ),
        Case::new(
            "fw: non-VIP packet, allow rule",
            3,
            Frame::tcp(CIP, 40000, Ipv4Addr::new(198, 18, 1, 1), 22, SYN).build(),
            2,
        ),
        Case::new(
            "fw: non-VIP packet, no rule matches",
            3,
            Frame::tcp(
                crate::bench_fw::FW_NO_MATCH_SRC,
                40000,
                Ipv4Addr::new(198, 18, 1, 1),
                22,
                SYN,
            )
            .build(),
            2,
        ),
        Case::new(
            "fw: denied source (drop)",
            3,
            Frame::tcp(
                crate::bench_fw::FW_DENIED_SRC,
                40000,
                Ipv4Addr::new(198, 18, 1, 1),
                22,
                SYN,
            )
            .build(),
            1,
        ),
        Case::syn("fw: new connection, 64K-conn table", 3, VIP, 80),
        Case::syn(
            "limit: new connection, per-source budget (new source)",
            4,
            VIP,
            80,
        ),
        Case::new(
            "limit: IPv6 SYNPROXY SYN over budget (drop)",
            4,
            synproxy_syn6(),
            1,
        )
        .flow(Flow::OverBudget),
        Case::new(
            "ICMP echo to this host, 64K-conn table",
            2,
            xlvs_tests::packet::icmp_error(CIP, Ipv4Addr::new(198, 18, 1, 1), 8, 0, &[]),
            2,
        ),
        Case::new(
            "limit: ICMP echo to this host, ICMP limit",
            4,
            xlvs_tests::packet::icmp_error(CIP, Ipv4Addr::new(198, 18, 1, 1), 8, 0, &[]),
            2,
        ),
        Case::syn("new connection, wrr", 1, VIP, 81),
        Case::syn("new connection, sh", 1, VIP, 82),
        Case::syn("new connection, mh", 1, VIP, 83),
        Case::syn("fwmark: new connection (classify)", 1, FWM_VIP, 443),
        Case::new("fwmark: established hit", 1, Vec::new(), 3).flow(Flow::Fwmark),
        Case::syn("new connection, no fwmark rules", 1, VIP, 80).without_fwmark(),
        Case::new(
            "non-VIP packet, no fwmark rules",
            1,
            Frame::tcp(CIP, 40000, Ipv4Addr::new(198, 18, 1, 1), 22, SYN).build(),
            2,
        )
        .without_fwmark(),
        // The service lookup alone: an ACK without a session is looked up, then answered with a RST.
        Case::new(
            "VIP ACK, no session (lookup+RST)",
            1,
            Frame::tcp(CIP, 50000, VIP, 80, ACK).build(),
            3,
        ),
        Case::new(
            "same, no fwmark rules",
            1,
            Frame::tcp(CIP, 50000, VIP, 80, ACK).build(),
            3,
        )
        .without_fwmark(),
        Case::new(
            "fwmark ACK, no session (classify+RST)",
            1,
            Frame::tcp(CIP, 50000, FWM_VIP, 443, ACK).build(),
            3,
        ),
        tun_case("established TUN ipip hit", TUN_PORTS[0], false),
        tun_case("established TUN GUE+csum hit", TUN_PORTS[1], false),
        tun_case("established TUN GRE+csum hit", TUN_PORTS[2], false),
        tun_case("established TUN ip6ip6 hit", TUN6_PORT, false),
        tun_case("new connection, TUN ipip", TUN_PORTS[0], true),
        tun_case("new connection, TUN GUE+csum", TUN_PORTS[1], true),
        tun_case("new connection, TUN GRE+csum", TUN_PORTS[2], true),
        tun_case("new connection, TUN ip6ip6", TUN6_PORT, true),
    ];
    // The scan schedulers (tail call into xlvs_sched, a walk over the reals' counts).
    cases.extend(SCAN_PORTS.iter().map(|(port, sched)| {
        let name = Box::leak(format!("new connection, {}", sched.name()).into_boxed_str());
        Case::syn(name, 1, VIP, *port)
    }));
    // XLVS_BENCH_CASES=a,b: only the cases whose names contain one of these (the floor always
    // runs), for quick measurements while working on one path.
    let filtered = std::env::var("XLVS_BENCH_CASES").is_ok();
    if let Ok(only) = std::env::var("XLVS_BENCH_CASES") {
        let wanted: Vec<&str> = only.split(',').filter(|w| !w.is_empty()).collect();
        let mut first = true;
        cases.retain(|c| {
            let keep = first || wanted.iter().any(|w| c.name.contains(w));
            first = false;
            keep
        });
    }
    let mut fwmark_on = true;
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    let mut flow_seq: u32 = 0;
    println!(
        "XDP ns/packet via BPF_PROG_TEST_RUN (repeat=1, {CALLS_PER_ROUND} calls per case per round, {rounds} rounds)"
    );
    for round in 0..rounds {
        for k in 0..cases.len() {
            let i = (k + round) % cases.len();
            let case = &mut cases[i];
            if case.fwmark != fwmark_on {
                set_fwmark(&opts, case.fwmark)?;
                fwmark_on = case.fwmark;
            }
            // The new-connection cases may have evicted the established flows (LRU): reopen
            // them, and aim replies at whichever real and local address they got this time.
            if case.flow == Flow::OverBudget {
                run_with_ctx(&runners[case.runner], &case.frame, ifindex)?;
            } else if case.flow == Flow::SynproxyEstablished {
                case.frame = synproxy_flow(&runners[1], 41000 + round as u16, ifindex)?;
            } else if case.flow != Flow::None && case.flow != Flow::CookieAck {
                case.frame = open_flow(&runners[1], case.flow, ifindex)?;
            }
            let mut total: u64 = 0;
            for _ in 0..CALLS_PER_ROUND {
                if case.new_flow && case.frame[12..14] == [0x86, 0xdd] {
                    // IPv6: the source's last two bytes and the source port.
                    flow_seq = flow_seq.wrapping_add(1);
                    let addr = (flow_seq >> 14) as u16;
                    case.frame[36..38].copy_from_slice(&addr.to_be_bytes());
                    let port = 1024 + (flow_seq & 0x3fff) as u16;
                    case.frame[54..56].copy_from_slice(&port.to_be_bytes());
                } else if case.new_flow {
                    flow_seq = flow_seq.wrapping_add(1);
                    // Source 198.18.(64+x).y:port, all different.
                    let addr = 0x40_0000 + (flow_seq >> 14);
                    case.frame[27] = 18 + ((addr >> 16) as u8 & 1);
                    case.frame[28] = (addr >> 8) as u8;
                    case.frame[29] = addr as u8;
                    let port = 1024 + (flow_seq & 0x3fff) as u16;
                    case.frame[34..36].copy_from_slice(&port.to_be_bytes());
                    // A wrong header checksum is dropped as invalid.
                    xlvs_tests::packet::set_ipv4_checksum(&mut case.frame);
                }
                if case.flow == Flow::CookieAck {
                    flow_seq = flow_seq.wrapping_add(1);
                    case.frame = cookie_ack(&runners[1], flow_seq, ifindex)?;
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
        "reference (Katran's XDP program, default options, 4M-entry per-CPU LRU tables, its new-flow rate limit raised so every new flow is inserted; measured here the same way): floor 78-79 ns; established hit +139..+155 ns; new flow +639..+714 ns; non-VIP +50..+60 ns"
    );
    // The verifier's budget each program of the packet path uses (limit: 1M per program).
    println!(
        "verified instructions per program (limit {}):",
        dataplane::loader::VERIFIER_LIMIT
    );
    for (name, st) in dataplane::programs_status(&opts.pin_dir)? {
        let insns = st.verified_insns.unwrap_or(0);
        println!(
            "  {:<16} {:>8} ({:>4.1}%)",
            name,
            insns,
            insns as f64 * 100.0 / dataplane::loader::VERIFIER_LIMIT as f64
        );
    }
    if filtered {
        return Ok(());
    }
    let rr_new = cases
        .iter()
        .position(|c| c.name == "new connection (schedule+insert)")
        .map(|i| medians[i]);
    if let Some(rr_new) = rr_new {
        println!("new connection per scheduler, cost above the floor vs rr's:");
        for (case, m) in cases.iter().zip(&medians) {
            if let Some(s) = case.name.strip_prefix("new connection, ")
                && !s.contains("table")
            {
                println!("  {s:<8} {:>8.2}x", (m - floor) / (rr_new - floor));
            }
        }
    }
    let established = medians[2];
    let fnat = medians[4];
    // By name: the case list grows with every feature.
    let above_of = |name: &str| {
        let i = cases
            .iter()
            .position(|c| c.name == name)
            .unwrap_or_else(|| panic!("no case {name}"));
        medians[i] - floor
    };
    println!(
        "fwmark service vs (vip, vport) service: new connection {:.2}x, established hit {:.2}x (above floor)",
        above_of("fwmark: new connection (classify)")
            / above_of("new connection (schedule+insert)"),
        above_of("fwmark: established hit") / above_of("established NAT hit (client->real)")
    );
    println!(
        "(vip, vport) new connection with fwmark rules present vs none: {:.2}x; non-VIP packet: {:.2}x (the classifier is asked on misses while fwmark services exist)",
        above_of("new connection (schedule+insert)") / above_of("new connection, no fwmark rules"),
        above_of("non-VIP packet (pass)") / above_of("non-VIP packet, no fwmark rules")
    );
    println!(
        "service lookup alone (ACK without session, answered with a RST): (vip, vport) with fwmark rules vs none {:.2}x; fwmark (classifier) vs (vip, vport) {:.2}x",
        above_of("VIP ACK, no session (lookup+RST)") / above_of("same, no fwmark rules"),
        above_of("fwmark ACK, no session (classify+RST)")
            / above_of("VIP ACK, no session (lookup+RST)")
    );
    let fw_rows = [
        (
            "non-VIP packet, allow rule",
            "non-VIP packet, 64K-conn table",
        ),
        (
            "non-VIP packet, no rule matches",
            "non-VIP packet, 64K-conn table",
        ),
        ("denied source (drop)", "non-VIP packet, 64K-conn table"),
        (
            "new connection, 64K-conn table",
            "new connection, 64K-conn table",
        ),
    ];
    println!(
        "firewall with {} prefixes vs the same path without rules (ns above it; target <= 20):",
        crate::bench_fw::prefixes()
    );
    for (with, without) in fw_rows {
        let d = above_of(&format!("fw: {with}")) - above_of(without);
        println!(
            "  {with:<36} {d:>+8.1} ns -> {}",
            if d <= 20.0 { "met" } else { "NOT met" }
        );
    }
    println!("firewall rate limits vs the same path without them (ns above it; nothing dropped):");
    for (with, without) in [
        (
            "new connection, per-source budget (new source)",
            "new connection, 64K-conn table",
        ),
        (
            "ICMP echo to this host, ICMP limit",
            "ICMP echo to this host, 64K-conn table",
        ),
    ] {
        let d = above_of(&format!("limit: {with}")) - above_of(without);
        println!("  {with:<48} {d:>+8.1} ns");
    }
    println!(
        "a single-source SYN flood over its budget: dropped at {:.1} ns above the floor, where a SYNPROXY cookie SYN-ACK costs {:.1}",
        above_of("limit: IPv6 SYNPROXY SYN over budget (drop)"),
        above_of("SYNPROXY IPv6 SYN -> cookie SYN-ACK")
    );
    println!(
        "SYNPROXY vs NAT established hit (above floor): cookie SYN-ACK {:.2}x, cookie ACK -> real SYN {:.2}x, established SYNPROXY hit {:.2}x",
        above_of("SYNPROXY SYN -> cookie SYN-ACK") / above_of("established NAT hit (client->real)"),
        above_of("SYNPROXY cookie ACK -> real SYN")
            / above_of("established NAT hit (client->real)"),
        above_of("SYNPROXY established hit (seq+TS adj)")
            / above_of("established NAT hit (client->real)")
    );
    println!(
        "SYNPROXY cookie SYN-ACK, IPv6 vs IPv4 (above floor): {:.2}x",
        above_of("SYNPROXY IPv6 SYN -> cookie SYN-ACK")
            / above_of("SYNPROXY SYN -> cookie SYN-ACK")
    );
    println!(
        "FULLNAT established hit vs NAT established hit: {:.2}x",
        (fnat - floor) / (established - floor)
    );
    // Tunnels (tail call to xlvs_tunnel, headers pushed) beside NAT, above the floor.
    let at = |name: &str| {
        cases
            .iter()
            .position(|c| c.name == name)
            .map(|i| medians[i] - floor)
    };
    let nat_new = at("new connection (schedule+insert)").unwrap_or(f64::NAN);
    for kind in ["ipip", "GUE+csum", "GRE+csum", "ip6ip6"] {
        if let (Some(hit), Some(new)) = (
            at(&format!("established TUN {kind} hit")),
            at(&format!("new connection, TUN {kind}")),
        ) {
            println!(
                "TUN {kind}: established hit {:.2}x NAT's, new connection {:.2}x NAT's (above floor)",
                hit / (established - floor),
                new / nat_new
            );
        }
    }
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
    for (port, sched) in [(80, Scheduler::Rr)]
        .into_iter()
        .chain(SCHED_PORTS)
        .chain(SCAN_PORTS)
    {
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
    configure_fullnat(&mut dp)?;
    configure_synproxy(&mut dp)?;
    configure_tunnels(&mut dp)?;
    drop(dp);
    set_fwmark(opts, true)
}

/// The fwmark service's VIP (not a (vip, vport) service anywhere): rules mark tcp 80 and 443.
const FWM_VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 2);

/// Adds (or removes) fwmark service 1 with four NAT reals and the classifier rules feeding it.
fn set_fwmark(opts: &Options, on: bool) -> Result<()> {
    let mut dp = Dataplane::open(opts)?;
    let svc = ServiceAddr::Fwmark {
        mark: 1,
        family: Family::V4,
    };
    if !on {
        dp.replace_fwmark_rules(&[])?;
        return Ok(dp.del_service(&svc)?);
    }
    dp.add_service(&ServiceConfig::new(svc))?;
    for last in 2..6 {
        let mut d = DestConfig::new(IpAddr::V4(Ipv4Addr::new(198, 18, 2, last)), 0);
        d.forward = Forward::Masq;
        dp.add_dest(&svc, &d)?;
    }
    let rules: Vec<_> = [(80, 80), (443, 443)]
        .into_iter()
        .map(|ports| {
            dataplane::fwmark::FwmarkRule::new(1, Protocol::Tcp, IpAddr::V4(FWM_VIP), 32, ports)
        })
        .collect::<std::result::Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    Ok(dp.replace_fwmark_rules(&rules)?)
}

/// Tunnel services, one real each (198.18.2.2, or 2001:db8:2::2 for ip6ip6): ipip, GUE to
/// port 6080 with checksum, GRE with checksum.
const TUN_PORTS: [u16; 3] = [96, 97, 98];
const TUN6_PORT: u16 = 95;
const VIP6: &str = "2001:db8:100::1";
const CIP6: &str = "2001:db8:1::2";

fn configure_tunnels(dp: &mut Dataplane) -> Result<()> {
    let tunnels = [
        (
            TUN_PORTS[0],
            Tunnel::default(),
            IpAddr::V4(VIP),
            IpAddr::V4(RIP),
        ),
        (
            TUN_PORTS[1],
            Tunnel {
                kind: TunnelType::Gue,
                port: 6080,
                flags: tun_flags::CSUM,
            },
            IpAddr::V4(VIP),
            IpAddr::V4(RIP),
        ),
        (
            TUN_PORTS[2],
            Tunnel {
                kind: TunnelType::Gre,
                port: 0,
                flags: tun_flags::CSUM,
            },
            IpAddr::V4(VIP),
            IpAddr::V4(RIP),
        ),
        (
            TUN6_PORT,
            Tunnel::default(),
            VIP6.parse()?,
            "2001:db8:2::2".parse()?,
        ),
    ];
    for (port, tunnel, vip, rip) in tunnels {
        let svc = ServiceAddr::Inet {
            proto: Protocol::Tcp,
            addr: vip,
            port,
        };
        dp.add_service(&ServiceConfig::new(svc))?;
        let mut d = DestConfig::new(rip, port);
        d.forward = Forward::Tunnel;
        d.tunnel = tunnel;
        dp.add_dest(&svc, &d)?;
    }
    Ok(())
}

/// A tunnel case on `port` (ip6ip6 when it is TUN6_PORT): new connections, or the hit of an
/// established flow.
fn tun_case(name: &'static str, port: u16, new_flow: bool) -> Case {
    let v6 = port == TUN6_PORT;
    let frame = match (new_flow, v6) {
        (true, false) => Frame::tcp(CIP, 1, VIP, port, SYN).build(),
        (true, true) => Frame6::tcp(CIP6, 1, VIP6, port, SYN).build(),
        (false, _) => Vec::new(),
    };
    let case = Case::new(name, 1, frame, 3);
    if new_flow {
        case.new_flows()
    } else {
        case.flow(Flow::Tun { port, v6 })
    }
}

/// The FULLNAT service's port: four reals, 32 local addresses (so the port pools of the new-
/// connection case never run dry over a whole run).
const FNAT_PORT: u16 = 90;
const FNAT_LADDRS: u8 = 32;

fn configure_fullnat(dp: &mut Dataplane) -> Result<()> {
    let svc = ServiceAddr::Inet {
        proto: Protocol::Tcp,
        addr: IpAddr::V4(VIP),
        port: FNAT_PORT,
    };
    dp.add_service(&ServiceConfig::new(svc))?;
    for last in 2..6 {
        let mut d = DestConfig::new(IpAddr::V4(Ipv4Addr::new(198, 18, 2, last)), 8080);
        d.forward = Forward::FullNat;
        dp.add_dest(&svc, &d)?;
    }
    for i in 1..=FNAT_LADDRS {
        let l = xlvs_tests::services::local_addr(Ipv4Addr::new(198, 18, 9, i));
        dp.add_laddr(&svc, &l)?;
    }
    Ok(())
}

/// The SYNPROXY service's port (NAT reals).
const SYNPROXY_PORT: u16 = 91;

/// An IPv6 client's SYN to the SYNPROXY service on VIP6.
fn synproxy_syn6() -> Vec<u8> {
    let mut f = Frame6::tcp(CIP6, 40002, VIP6, SYNPROXY_PORT, SYN);
    f.tcp_options = vec![2, 4, 0x05, 0xa0];
    f.build()
}

fn configure_synproxy(dp: &mut Dataplane) -> Result<()> {
    let svc = ServiceAddr::Inet {
        proto: Protocol::Tcp,
        addr: IpAddr::V4(VIP),
        port: SYNPROXY_PORT,
    };
    let mut cfg = ServiceConfig::new(svc);
    cfg.synproxy = true;
    dp.add_service(&cfg)?;
    for last in 2..6 {
        let mut d = DestConfig::new(IpAddr::V4(Ipv4Addr::new(198, 18, 2, last)), 8080);
        d.forward = Forward::Masq;
        dp.add_dest(&svc, &d)?;
    }
    // The same for IPv6 (xlvs_synproxy6), on the IPv6 VIP (VIP6).
    let svc6 = ServiceAddr::Inet {
        proto: Protocol::Tcp,
        addr: VIP6.parse()?,
        port: SYNPROXY_PORT,
    };
    let mut cfg6 = ServiceConfig::new(svc6);
    cfg6.synproxy = true;
    dp.add_service(&cfg6)?;
    let mut d = DestConfig::new("2001:db8:2::2".parse()?, 8080);
    d.forward = Forward::Masq;
    dp.add_dest(&svc6, &d)?;
    Ok(())
}

/// A new client's SYN to the SYNPROXY service (run here, unmeasured) and the ACK that
/// completes its handshake with the cookie it got back.
fn cookie_ack(r: &Runner, seq: u32, ifindex: u32) -> Result<Vec<u8>> {
    let src = Ipv4Addr::new(198, 19, (seq >> 8) as u8, seq as u8);
    let port = 1024 + (seq >> 16) as u16;
    let mut syn = Frame::tcp(src, port, VIP, SYNPROXY_PORT, SYN);
    syn.tcp_options = vec![2, 4, 0x05, 0xb4];
    let out = r.run_on(&syn.build(), ifindex)?;
    if out.packet.len() < 54 {
        bail!("setup: no cookie SYN-ACK ({})", out.action);
    }
    let c = &out.packet[38..42];
    let cookie = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
    let mut ack = Frame::tcp(src, port, VIP, SYNPROXY_PORT, ACK);
    ack.seq = 1001;
    ack.ack = cookie.wrapping_add(1);
    Ok(ack.build())
}

/// NOP,NOP,TS as Linux sends it.
fn ts_option(tsval: u32, tsecr: u32) -> Vec<u8> {
    let mut o = vec![1, 1, 8, 10];
    o.extend_from_slice(&tsval.to_be_bytes());
    o.extend_from_slice(&tsecr.to_be_bytes());
    o
}

/// A SYNPROXY connection with timestamps, SACK and window scaling from CIP:`port`: the
/// client's handshake with the cookie, the real's with our SYN; returns a client ACK of it.
fn synproxy_flow(r: &Runner, port: u16, ifindex: u32) -> Result<Vec<u8>> {
    let mut syn = Frame::tcp(CIP, port, VIP, SYNPROXY_PORT, SYN);
    syn.seq = 1000;
    syn.tcp_options = vec![
        2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 1, 0, 0, 0, 0, 0, 1, 3, 3, 7,
    ];
    let out = r.run_on(&syn.build(), ifindex)?;
    if out.packet.len() < 74 {
        bail!("setup: no cookie SYN-ACK with options ({})", out.action);
    }
    let p = &out.packet;
    let cookie = u32::from_be_bytes([p[38], p[39], p[40], p[41]]);
    let ours = u32::from_be_bytes([p[62], p[63], p[64], p[65]]);
    let mut ack = Frame::tcp(CIP, port, VIP, SYNPROXY_PORT, ACK);
    ack.seq = 1001;
    ack.ack = cookie.wrapping_add(1);
    ack.tcp_options = ts_option(257, ours);
    let to_real = r.run_on(&ack.build(), ifindex)?;
    let d = decode(&to_real.packet).context("the real's SYN")?;
    let mut synack = Frame::tcp(d.dst, d.dport, d.src, d.sport, SYN | ACK);
    synack.seq = 5000;
    synack.ack = 1001;
    synack.tcp_options = vec![
        2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 9, 0, 0, 0, 1, 1, 1, 3, 3, 9,
    ];
    let back = r.run_on(&synack.build(), ifindex)?;
    if back.action != 3 {
        bail!(
            "setup: the real's SYN-ACK was not answered: {}",
            back.action
        );
    }
    let mut data = Frame::tcp(CIP, port, VIP, SYNPROXY_PORT, ACK);
    data.seq = 1001;
    data.ack = cookie.wrapping_add(1);
    data.tcp_options = ts_option(258, ours);
    Ok(data.build())
}

/// (Re)opens an established flow and returns the frame its case sends.
fn open_flow(r: &Runner, flow: Flow, ifindex: u32) -> Result<Vec<u8>> {
    if let Flow::Tun { port, v6 } = flow {
        // Replies bypass the director: the client's SYN opens it, its ACKs are the hits.
        let (syn, ack) = if v6 {
            (
                Frame6::tcp(CIP6, 40010, VIP6, port, SYN).build(),
                Frame6::tcp(CIP6, 40010, VIP6, port, ACK).build(),
            )
        } else {
            (
                Frame::tcp(CIP, 40010, VIP, port, SYN).build(),
                Frame::tcp(CIP, 40010, VIP, port, ACK).build(),
            )
        };
        let out = r.run_on(&syn, ifindex)?;
        if out.action != 3 {
            bail!("setup: the SYN of {flow:?} was not sent: {}", out.action);
        }
        return Ok(ack);
    }
    let (cport, vip, vport) = match flow {
        Flow::Nat { .. } => (40000, VIP, 80),
        Flow::Fwmark => (40003, FWM_VIP, 443),
        _ => (40001, VIP, FNAT_PORT),
    };
    let syn = r.run_on(&Frame::tcp(CIP, cport, vip, vport, SYN).build(), ifindex)?;
    let out = decode(&syn.packet).context("the SYN's output")?;
    let mut synack = Frame::tcp(out.dst, out.dport, out.src, out.sport, SYN | ACK);
    synack.seq = 5000;
    // MSS option (clamped on the way when TOA is on), as real servers send it.
    synack.tcp_options = vec![2, 4, 0x05, 0xb4];
    let back = r.run_on(&synack.build(), ifindex)?;
    if back.action != 3 {
        bail!(
            "setup: the SYN-ACK of {flow:?} was not forwarded: {}",
            back.action
        );
    }
    Ok(match flow {
        Flow::Nat { reply: true } | Flow::FullNat { reply: true, .. } => {
            Frame::tcp(out.dst, out.dport, out.src, out.sport, ACK).build()
        }
        Flow::FullNat { toa: true, .. } => {
            let mut ack = Frame::tcp(CIP, cport, VIP, vport, ACK);
            ack.ack = 5001;
            ack.build()
        }
        _ => Frame::tcp(CIP, cport, vip, vport, ACK).build(),
    })
}

/// Schedulers measured for new connections beside rr, each on its own VIP port.
const SCHED_PORTS: [(u16, Scheduler); 3] = [
    (81, Scheduler::Wrr),
    (82, Scheduler::Sh),
    (83, Scheduler::Mh),
];

/// Ports of the other schedulers' services (same four reals).
const SCAN_PORTS: [(u16, Scheduler); 9] = [
    (84, Scheduler::Lc),
    (85, Scheduler::Wlc),
    (86, Scheduler::Sed),
    (87, Scheduler::Nq),
    (88, Scheduler::Ovf),
    (89, Scheduler::Lblc),
    (94, Scheduler::Lblcr),
    (92, Scheduler::Dh),
    (93, Scheduler::Fo),
];

struct Cleanup(Options);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = dataplane::unload(&self.0);
    }
}
