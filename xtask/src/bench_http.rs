//! Requests/s through the VIP in the netns bed, beside direct routing and nftables DNAT measured
//! in the same run (cases interleaved, rotated per round; medians). wrk drives nginx backends,
//! as in shared/reference/peers.md §4, so figures compare with the baselines there.
//!
//! Cases (keep-alive HTTP/1.1, wrk -t1 -c32):
//! * direct      client -> real 0, routed by the director's kernel, XDP detached
//! * xlvs x1     VIP 198.18.100.1 -> real 0 (XDP NAT)
//! * nft x1      VIP 198.18.100.3 -> real 0 (nftables DNAT, XDP detached)
//! * xlvs x2     VIP 198.18.100.2 -> reals 0,1 rr
//! * nft x2      VIP 198.18.100.4 -> reals 0,1 (numgen inc mod 2)
//!
//! Also a new-connection-per-request variant of direct / xlvs x1 / nft x1, and of a SYNPROXY
//! VIP (198.18.100.5 -> real 0, `-j enable`): with a new connection per request, req/s is
//! connections/s, so the last two rows compare connections/s with and without SYNPROXY.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

use anyhow::{Context, Result, bail};
use dataplane::Dataplane;
use dataplane::model::*;
use xlvs_tests::lab::Lab;
use xlvs_tests::netns::is_root;

use crate::nginx::Nginx;
use crate::stats::median;

const SECONDS: u32 = 5;

#[derive(Clone, Copy, PartialEq)]
enum Path {
    Direct,
    Xlvs,
    Nft,
}

struct Case {
    name: &'static str,
    path: Path,
    url: &'static str,
    close: bool,
}

const CASES: [Case; 9] = [
    Case {
        name: "direct (routed, no XDP)",
        path: Path::Direct,
        url: "http://198.18.2.2/",
        close: false,
    },
    Case {
        name: "xlvs VIP -> 1 real",
        path: Path::Xlvs,
        url: "http://198.18.100.1/",
        close: false,
    },
    Case {
        name: "nft DNAT -> 1 real",
        path: Path::Nft,
        url: "http://198.18.100.3/",
        close: false,
    },
    Case {
        name: "xlvs VIP rr -> 2 reals",
        path: Path::Xlvs,
        url: "http://198.18.100.2/",
        close: false,
    },
    Case {
        name: "nft DNAT numgen -> 2 reals",
        path: Path::Nft,
        url: "http://198.18.100.4/",
        close: false,
    },
    Case {
        name: "direct, new conn/request",
        path: Path::Direct,
        url: "http://198.18.2.2/",
        close: true,
    },
    Case {
        name: "xlvs VIP, new conn/request",
        path: Path::Xlvs,
        url: "http://198.18.100.1/",
        close: true,
    },
    Case {
        name: "nft DNAT, new conn/request",
        path: Path::Nft,
        url: "http://198.18.100.3/",
        close: true,
    },
    Case {
        name: "xlvs SYNPROXY VIP, new conn/req",
        path: Path::Xlvs,
        url: "http://198.18.100.5/",
        close: true,
    },
];

const NFT_RULES: &str = "table ip xlvsbench {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr 198.18.100.3 tcp dport 80 dnat to 198.18.2.2
    ip daddr 198.18.100.4 tcp dport 80 dnat to numgen inc mod 2 map { 0 : 198.18.2.2, 1 : 198.18.3.2 }
  }
}
";

pub fn run(rounds: usize) -> Result<()> {
    let lab = client_server_lab("HTTP", &["wrk", "nginx", "nft"])?;
    let _n0 = Nginx::start(&lab.reals[0], lab.real_ip(0), "r0")?;
    let _n1 = Nginx::start(&lab.reals[1], lab.real_ip(1), "r1")?;
    let mut dp = Dataplane::open(&lab.opts)?;
    // The SYNPROXY VIP has real 1 to itself for new connections: real 0 holds the TIME_WAITs
    // of the direct and plain-VIP cases' connections from the same client ports, with the
    // client's timestamps of another destination (Linux offsets them per address pair), so
    // PAWS refuses a SYN that reuses such a port (the real answers with the old connection's
    // ACK) — IPVS NAT with shared reals has the same problem. Which VIP gets the older offset
    // is chance; for SYNPROXY each such refusal costs the client's zero-window probe (≥ 200 ms).
    for (vip, reals, synproxy) in [
        (Ipv4Addr::new(198, 18, 100, 1), 0..1, false),
        (Ipv4Addr::new(198, 18, 100, 2), 0..2, false),
        (Ipv4Addr::new(198, 18, 100, 5), 1..2, true),
    ] {
        let svc = ServiceAddr::Inet {
            proto: Protocol::Tcp,
            addr: IpAddr::V4(vip),
            port: 80,
        };
        let mut cfg = ServiceConfig::new(svc);
        cfg.scheduler = Scheduler::Rr;
        cfg.synproxy = synproxy;
        dp.add_service(&cfg)?;
        for i in reals {
            let mut d = DestConfig::new(lab.real_ip(i), 80);
            d.forward = Forward::Masq;
            dp.add_dest(&svc, &d)?;
        }
    }
    let nft_file = format!("/tmp/xlvs-bench-{}.nft", std::process::id());
    std::fs::write(&nft_file, NFT_RULES)?;

    println!(
        "\nHTTP through the director, wrk -t1 -c32 -d{SECONDS}s, nginx reals ({rounds} rounds, cases interleaved)"
    );
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); CASES.len()];
    let mut current = Path::Xlvs; // the lab starts attached, no nft table
    for round in 0..rounds {
        for k in 0..CASES.len() {
            let i = (k + round) % CASES.len();
            let case = &CASES[i];
            switch(&lab, &mut current, case.path, &nft_file)?;
            let rps = wrk(&lab, case.url, case.close)?;
            results[i].push(rps);
        }
    }
    switch(&lab, &mut current, Path::Xlvs, &nft_file)?;
    let _ = std::fs::remove_file(&nft_file);

    let medians: Vec<f64> = results.iter_mut().map(|r| median(r)).collect();
    println!("{:<32} {:>12} {:>12}", "case", "req/s", "ratio");
    for (i, (case, m)) in CASES.iter().zip(&medians).enumerate() {
        let base = if case.close { medians[5] } else { medians[0] };
        let _ = i;
        println!("{:<32} {:>12.0} {:>12.2}", case.name, m, m / base);
    }
    println!(
        "connections/s through the VIP (new conn/request): SYNPROXY {:.0} vs plain {:.0}: {:.2}x",
        medians[8],
        medians[6],
        medians[8] / medians[6]
    );
    let (direct, x1, n1) = (medians[0], medians[1], medians[2]);
    println!(
        "targets: xlvs >= 0.95x direct: {:.2}x -> {}; xlvs above nftables: {:.2}x nft -> {}",
        x1 / direct,
        if x1 >= 0.95 * direct {
            "met"
        } else {
            "NOT met"
        },
        x1 / n1,
        if x1 > n1 { "met" } else { "NOT met" }
    );
    Ok(())
}

/// The lab with two reals, set up for many short connections (wide port range, TIME_WAIT reuse,
/// deep listen queues), after checking root and the `tools` a benchmark drives.
pub(crate) fn client_server_lab(bench: &str, tools: &[&str]) -> Result<Lab> {
    if !is_root() {
        bail!("the {bench} benchmark needs root (network namespaces)");
    }
    for tool in tools {
        if Command::new("which").arg(tool).output()?.stdout.is_empty() {
            bail!("{tool} is not installed (scripts/setup.sh installs it)");
        }
    }
    let lab = Lab::new(2)?;
    for ns in [&lab.client, &lab.director, &lab.reals[0], &lab.reals[1]] {
        for (k, v) in [
            ("net.ipv4.ip_local_port_range", "10000 65000"),
            ("net.ipv4.tcp_tw_reuse", "1"),
            ("net.core.somaxconn", "4096"),
        ] {
            ns.sysctl(k, v)?;
        }
    }
    Ok(lab)
}

/// Puts the director in the state a path needs: XDP attached (xlvs) or not, nft table or not.
fn switch(lab: &Lab, current: &mut Path, want: Path, nft_file: &str) -> Result<()> {
    if *current == want {
        return Ok(());
    }
    if *current == Path::Xlvs {
        lab.xlvs(&["detach"])?;
    }
    if *current == Path::Nft {
        lab.director
            .exec("nft", &["delete", "table", "ip", "xlvsbench"])?;
        lab.director.exec("conntrack", &["-F"]).ok();
    }
    match want {
        Path::Xlvs => {
            let links = lab.director_links();
            let mut args = vec!["attach"];
            args.extend(links.iter().map(|s| s.as_str()));
            lab.xlvs(&args)?;
        }
        Path::Nft => {
            lab.director.exec("nft", &["-f", nft_file])?;
        }
        Path::Direct => {}
    }
    *current = want;
    std::thread::sleep(std::time::Duration::from_millis(300));
    Ok(())
}

/// Runs wrk from the client namespace; requests per second.
fn wrk(lab: &Lab, url: &str, close: bool) -> Result<f64> {
    let run = wrk_run(lab, url, close, 32, SECONDS)?;
    if run.non_2xx {
        bail!("{url}: errors in wrk output: {}", run.text);
    }
    Ok(run.rps)
}

/// What one wrk run reports.
pub(crate) struct WrkRun {
    pub rps: f64,
    /// Requests completed.
    pub requests: u64,
    /// Socket errors (connect, read, write, timeout) added up.
    pub errors: u64,
    pub non_2xx: bool,
    pub text: String,
}

/// wrk -t1 -c`conns` for `seconds` from the client namespace (`close`: a new connection per
/// request), with a 1 s timeout per request.
pub(crate) fn wrk_run(
    lab: &Lab,
    url: &str,
    close: bool,
    conns: u32,
    seconds: u32,
) -> Result<WrkRun> {
    let d = format!("{seconds}s");
    let c = format!("-c{conns}");
    let mut args = vec!["-t1", c.as_str(), "-d", d.as_str(), "--timeout", "2s"];
    if close {
        args.extend(["-H", "Connection: close"]);
    }
    args.push(url);
    let out = lab
        .client
        .command("timeout")
        .arg(format!("{}", seconds + 20))
        .arg("wrk")
        .args(&args)
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .with_context(|| format!("no Requests/sec in wrk output for {url}: {text}"))?;
    // "  12345 requests in 5.00s, ..." and "  Socket errors: connect 0, read 0, write 0, timeout 3"
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.trim().parse().ok())
        .unwrap_or(0);
    let errors = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .map(|l| {
            l.split(',')
                .filter_map(|kv| kv.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Ok(WrkRun {
        rps,
        requests,
        errors,
        non_2xx: text.contains("Non-2xx"),
        text,
    })
}
