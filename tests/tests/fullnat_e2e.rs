//! FULLNAT end to end in network namespaces: HTTP (curl) through the VIP to real servers that
//! have no route back to the client, only to the director's local addresses; rules set with
//! the `ipvsadm` binary (`-b`, `-P`, `-G`). Needs root.

use std::net::SocketAddr;

use anyhow::Result;
use xlvs_tests::lab::{CLIENT, Lab, binary};
use xlvs_tests::netns::is_root;
use xlvs_tests::servers;

const LADDRS: [&str; 2] = ["198.18.9.1", "198.18.9.2"];

/// A lab whose reals reach only the local-address network 198.18.9.0/24 (through the
/// director), each running an HTTP server that reports the peer it sees.
fn fullnat_lab(reals: usize) -> Result<(Lab, Vec<servers::Server>)> {
    let lab = Lab::new(reals)?;
    let mut srv = Vec::new();
    for (i, ns) in lab.reals.iter().enumerate() {
        ns.ip(&["route", "del", "default"])?;
        let gw = format!("198.18.{}.1", 2 + i);
        ns.ip(&["route", "add", "198.18.9.0/24", "via", &gw])?;
        // Precondition of the test: the client is unreachable from here.
        let route = ns
            .command("ip")
            .args(["route", "get", "198.18.1.2"])
            .output()?;
        anyhow::ensure!(
            !route.status.success(),
            "real {i} can still reach the client"
        );
        srv.push(servers::http(
            ns,
            SocketAddr::new(lab.real_ip(i), 80),
            &format!("r{i}"),
        )?);
    }
    for l in LADDRS {
        lab.director
            .ip(&["addr", "add", &format!("{l}/32"), "dev", "lo"])?;
    }
    Ok((lab, srv))
}

/// Runs the ipvsadm binary in the director with the lab's pin directory.
fn ipvsadm(lab: &Lab, args: &str) -> Result<String> {
    let bin = binary("ipvsadm")?;
    let out = lab
        .director
        .command(bin.to_str().unwrap_or("ipvsadm"))
        .args(args.split_whitespace())
        .env("XLVS_PIN_DIR", &lab.opts.pin_dir)
        .env("XLVS_IPVSADM_FLAVOR", "alibaba")
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "ipvsadm {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// One HTTP GET through the VIP from the client namespace (curl); the body.
fn curl(lab: &Lab) -> Result<String> {
    let out = lab
        .client
        .exec("curl", &["-s", "--max-time", "5", "http://198.18.100.1/"])?;
    Ok(String::from_utf8(out.stdout)?)
}

#[test]
fn http_through_the_vip_reaches_reals_that_only_know_the_local_addresses() -> Result<()> {
    if !is_root() {
        eprintln!("skipped: needs root");
        return Ok(());
    }
    let (lab, _srv) = fullnat_lab(2)?;
    ipvsadm(&lab, "-A -t 198.18.100.1:80 -s rr")?;
    ipvsadm(&lab, "-a -t 198.18.100.1:80 -r 198.18.2.2:80 -b")?;
    ipvsadm(&lab, "-a -t 198.18.100.1:80 -r 198.18.3.2:80 -b")?;
    for l in LADDRS {
        ipvsadm(&lab, &format!("-P -t 198.18.100.1:80 -z {l}"))?;
    }
    let listing = ipvsadm(&lab, "-Ln")?;
    assert!(
        listing.contains("  -> 198.18.2.2:80                FullNat 1"),
        "{listing}"
    );

    const N: usize = 20;
    let mut per_real = [0usize; 2];
    let mut per_laddr = std::collections::HashMap::<String, u64>::new();
    for _ in 0..N {
        let body = curl(&lab)?;
        let mut words = body.split_whitespace();
        let (name, peer) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let peer: SocketAddr = peer
            .parse()
            .map_err(|_| anyhow::anyhow!("unexpected answer {body:?}"))?;
        assert!(
            LADDRS.contains(&peer.ip().to_string().as_str()),
            "the real saw {peer}, not a local address"
        );
        assert_ne!(peer.ip(), std::net::IpAddr::V4(CLIENT));
        per_real[if name == "r0" { 0 } else { 1 }] += 1;
        *per_laddr.entry(peer.ip().to_string()).or_default() += 1;
    }
    assert_eq!(per_real, [N / 2, N / 2], "rr over both reals");

    // -G: both local addresses, the live connections each one carries, no conflicts.
    let g = ipvsadm(&lab, "-G")?;
    let mut lines = g.lines();
    assert_eq!(
        lines.next(),
        Some("VIP:VPORT            TOTAL    SNAT_IP              CONFLICTS  CONNS     ")
    );
    assert_eq!(lines.next(), Some("198.18.100.1:80      2        "));
    let mut shown = 0;
    for line in lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 3, "{line:?}");
        assert_eq!(f[1], "0", "no port conflicts: {g}");
        let conns: u64 = f[2].parse()?;
        assert_eq!(
            conns,
            per_laddr.get(f[0]).copied().unwrap_or(0),
            "-G counts the connections each address carried: {g}"
        );
        shown += conns;
    }
    assert_eq!(shown, N as u64, "{g}");

    // Forwarded by XDP, both ways, not by the kernel.
    let dp = dataplane::Dataplane::open(&lab.opts)?;
    let c = dp.counters()?;
    let xdp =
        c[ebpf_common::counter::FWD_TX as usize] + c[ebpf_common::counter::FWD_REDIRECT as usize];
    assert!(xdp >= (N * 6) as u64, "forwarded by XDP: {xdp}");
    Ok(())
}
