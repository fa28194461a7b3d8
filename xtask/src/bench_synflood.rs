//! A SYN flood at the topology's packet ceiling against a SYNPROXY VIP, beside the same flood
//! against a plain listener defended by the kernel's own syncookies, in the same run (cases
//! interleaved, rotated per round; medians).
//!
//! The bed is the standard lab (client, director, two reals). trafgen floods from the client
//! namespace on one CPU (mmap TX ring, qdisc bypass), SYNs from spoofed sources in
//! 198.19.64.0/18 with random ports and sequence numbers, bounded by count and time. While it
//! floods, wrk opens a new connection per request from the client's own address (the
//! legitimate clients):
//! * `xlvs SYNPROXY`: the flood goes to the SYNPROXY VIP 198.18.100.5:80 (-> real 0, NAT); the
//!   director answers each SYN with a cookie in XDP, the real sees only completed handshakes.
//! * `kernel syncookies`: the flood goes to real 1's nginx directly (198.18.3.2:80, routed by
//!   the director, whose XDP program passes it), whose kernel answers with syncookies once its
//!   SYN queue overflows (net.ipv4.tcp_syncookies=1, the default).
//!
//! Printed per case: SYNs sent (pps), SYNs answered with a cookie (from XDP, or from the real's
//! kernel, pps), the legitimate clients' connections/s and the share of
//! their attempts that succeeded.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::{Context, Result};
use dataplane::Dataplane;
use dataplane::model::*;
use xlvs_tests::lab::Lab;
use xlvs_tests::netns::Netns;

use crate::bench_http::{client_server_lab, wrk_run};
use crate::nginx::Nginx;
use crate::stats::median;

const SECONDS: u32 = 5;
/// Upper bound on the flood's packets per run (the ceiling here is well below this per second).
const MAX_PACKETS: u64 = 20_000_000;
const SYNPROXY_VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 5);

#[derive(Clone, Copy, PartialEq)]
enum Defence {
    Synproxy,
    KernelSyncookies,
}

struct Case {
    name: &'static str,
    defence: Defence,
    /// Whether trafgen floods during the run (the other runs are the same without a flood).
    flood: bool,
}

const CASES: [Case; 4] = [
    Case {
        name: "xlvs SYNPROXY, no flood",
        defence: Defence::Synproxy,
        flood: false,
    },
    Case {
        name: "xlvs SYNPROXY, SYN flood",
        defence: Defence::Synproxy,
        flood: true,
    },
    Case {
        name: "kernel syncookies, no flood",
        defence: Defence::KernelSyncookies,
        flood: false,
    },
    Case {
        name: "kernel syncookies, SYN flood",
        defence: Defence::KernelSyncookies,
        flood: true,
    },
];

#[derive(Default, Clone)]
struct Sample {
    sent_pps: f64,
    answered_pps: f64,
    conns_per_s: f64,
    success: f64,
}

pub fn run(rounds: usize) -> Result<()> {
    let lab = client_server_lab("SYN-flood", &["trafgen", "wrk", "nginx"])?;
    lab.reals[1].sysctl("net.ipv4.tcp_syncookies", "1")?;
    let _n0 = Nginx::start(&lab.reals[0], lab.real_ip(0), "r0")?;
    let _n1 = Nginx::start(&lab.reals[1], lab.real_ip(1), "r1")?;
    let dp = Dataplane::open(&lab.opts)?;
    {
        let mut dp = Dataplane::open(&lab.opts)?;
        let svc = ServiceAddr::Inet {
            proto: Protocol::Tcp,
            addr: IpAddr::V4(SYNPROXY_VIP),
            port: 80,
        };
        let mut cfg = ServiceConfig::new(svc);
        cfg.scheduler = Scheduler::Rr;
        cfg.synproxy = true;
        dp.add_service(&cfg)?;
        let mut d = DestConfig::new(lab.real_ip(0), 80);
        d.forward = Forward::Masq;
        dp.add_dest(&svc, &d)?;
    }
    let conf = format!("/tmp/xlvs-bench-synflood-{}", std::process::id());
    let l0_mac = lab.director.mac("l0")?;
    let c0_mac = lab.client.mac("c0")?;
    println!(
        "\nSYN flood (trafgen, 1 CPU, spoofed sources, {SECONDS}s) with legitimate clients (wrk -t1 -c8, new connection per request) ({rounds} rounds, cases interleaved)"
    );
    let mut results: Vec<Vec<Sample>> = vec![Vec::new(); CASES.len()];
    for round in 0..rounds {
        for k in 0..CASES.len() {
            let i = (k + round) % CASES.len();
            let case = &CASES[i];
            let target = match case.defence {
                Defence::Synproxy => SYNPROXY_VIP,
                Defence::KernelSyncookies => xlvs_tests::lab::real_addr(1),
            };
            std::fs::write(&conf, trafgen_conf(&l0_mac, &c0_mac, target))?;
            results[i].push(run_case(&lab, &dp, case, target, &conf)?);
            // Let the half-open connections of the flood time out of the real's SYN queue.
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
    let _ = std::fs::remove_file(&conf);
    println!(
        "{:<32} {:>12} {:>14} {:>10} {:>10}",
        "case", "SYNs sent/s", "answered/s", "conn/s", "success"
    );
    for (case, samples) in CASES.iter().zip(&results) {
        let pick = |f: fn(&Sample) -> f64| median(&mut samples.iter().map(f).collect::<Vec<_>>());
        println!(
            "{:<32} {:>12.0} {:>14.0} {:>10.0} {:>9.1}%",
            case.name,
            pick(|s| s.sent_pps),
            pick(|s| s.answered_pps),
            pick(|s| s.conns_per_s),
            pick(|s| s.success * 100.0)
        );
    }
    Ok(())
}

/// One run: the flood (if any) and the legitimate clients over the same seconds.
fn run_case(
    lab: &Lab,
    dp: &Dataplane,
    case: &Case,
    target: Ipv4Addr,
    conf: &str,
) -> Result<Sample> {
    let sent_before = tx_packets(&lab.client, "c0")?;
    let answered_before = answered(lab, dp, case.defence)?;
    let flood = if case.flood {
        Some(
            lab.client
                .command("timeout")
                .args(["-s", "INT", &format!("{}", SECONDS + 1)])
                .args(["trafgen", "--no-sock-mem", "-Q", "-C", "--cpus", "1"])
                .args(["--dev", "c0", "--conf", conf])
                .args(["-n", &MAX_PACKETS.to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .context("starting trafgen")?,
        )
    } else {
        None
    };
    let url = format!("http://{target}/");
    let run = wrk_run(lab, &url, true, 8, SECONDS);
    if let Some(mut child) = flood {
        // trafgen stops by itself (timeout, packet count); wait for it.
        let _ = child.wait();
    }
    let run = run?;
    let sent = tx_packets(&lab.client, "c0")?.saturating_sub(sent_before);
    let answered_n = answered(lab, dp, case.defence)?.saturating_sub(answered_before);
    let attempts = run.requests + run.errors;
    Ok(Sample {
        sent_pps: if case.flood {
            sent as f64 / SECONDS as f64
        } else {
            0.0
        },
        answered_pps: answered_n as f64 / SECONDS as f64,
        conns_per_s: run.rps,
        success: if attempts == 0 {
            0.0
        } else {
            run.requests as f64 / attempts as f64
        },
    })
}

/// SYNs answered so far with a cookie: XDP's cookie SYN-ACKs, or the real's kernel's (the few
/// its SYN queue takes before it overflows are not counted).
fn answered(lab: &Lab, dp: &Dataplane, defence: Defence) -> Result<u64> {
    Ok(match defence {
        Defence::Synproxy => dp.counters()?[ebpf_common::counter::SYNPROXY_COOKIE_SENT as usize],
        Defence::KernelSyncookies => {
            let text = lab.reals[1].exec("cat", &["/proc/net/netstat"])?.stdout;
            let text = String::from_utf8_lossy(&text);
            netstat(&text, "TcpExt", "SyncookiesSent")
        }
    })
}

/// A counter of /proc/net/netstat (a header line of names, then one of values, per group).
fn netstat(text: &str, group: &str, name: &str) -> u64 {
    let prefix = format!("{group}:");
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(&prefix)).collect();
    if lines.len() < 2 {
        return 0;
    }
    lines[0]
        .split_whitespace()
        .zip(lines[1].split_whitespace())
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// Packets `dev` sent (`ip -s link`: the line after "TX:", second column). (`nsenter --net`
/// does not remount /sys, so sysfs would show the host's interfaces.)
fn tx_packets(ns: &Netns, dev: &str) -> Result<u64> {
    let out = ns.ip(&["-s", "link", "show", "dev", dev])?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    lines
        .find(|l| l.trim_start().starts_with("TX:"))
        .and_then(|_| lines.next())
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no TX packets for {dev} in: {text}"))
}

/// SYNs to `target`:80 from random sources in 198.19.64.0/18 (inside the test range; no host
/// there), random ports and sequence numbers; trafgen fills in the checksums.
fn trafgen_conf(dst_mac: &str, src_mac: &str, target: Ipv4Addr) -> String {
    let lo = u32::from(Ipv4Addr::new(198, 19, 64, 1));
    let hi = u32::from(Ipv4Addr::new(198, 19, 127, 254));
    format!(
        "{{\n  eth(da={dst_mac}, sa={src_mac}, type=0x0800),\n  ipv4(saddr=drnd({lo}, {hi}), daddr={target}, ttl=64, df),\n  tcp(sp=drnd(), dp=80, seq=drnd(), syn, win=64240),\n}}\n"
    )
}
