//! FULLNAT end to end in network namespaces: HTTP (curl) through the VIP to real servers that
//! have no route back to the client, only to the director's local addresses; rules set with
//! the `ipvsadm` binary (`-b`, `-P`, `-G`). Needs root.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;
use xlvs_tests::capture::capture;
use xlvs_tests::lab::{CLIENT, Lab};
use xlvs_tests::netns::is_root;
use xlvs_tests::packet::{Frame, SYN};
use xlvs_tests::rawsock::send_tcp_frames;
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
    lab.ipvsadm_with(args, &[("XLVS_IPVSADM_FLAVOR", "alibaba")])
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
        xlvs_tests::skip("needs root");
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

/// The TOA option (kind 254) of an untagged Ethernet/IPv4/TCP frame: (client port, client address).
fn toa_of(frame: &[u8]) -> Option<(u16, std::net::Ipv4Addr)> {
    if frame.len() < 54 || frame[12..14] != [8, 0] || frame[23] != 6 {
        return None;
    }
    let ihl = (frame[14] & 0x0f) as usize * 4;
    let tcp = 14 + ihl;
    let doff = (frame.get(tcp + 12)? >> 4) as usize * 4;
    let opts = frame.get(tcp + 20..tcp + doff)?;
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => break,
            1 => i += 1,
            254 if opts.get(i + 1) == Some(&8) => {
                let o = opts.get(i..i + 8)?;
                return Some((
                    u16::from_be_bytes([o[2], o[3]]),
                    std::net::Ipv4Addr::new(o[4], o[5], o[6], o[7]),
                ));
            }
            _ => i += (*opts.get(i + 1)? as usize).max(2),
        }
    }
    None
}

#[test]
fn the_real_server_receives_the_client_address_in_toa_and_full_segments_fit() -> Result<()> {
    use std::io::{Read, Write};
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let (lab, _srv) = fullnat_lab(1)?;
    ipvsadm(&lab, "-A -t 198.18.100.1:80 -s rr")?;
    ipvsadm(&lab, "-a -t 198.18.100.1:80 -r 198.18.2.2:80 -b")?;
    ipvsadm(&lab, "-P -t 198.18.100.1:80 -z 198.18.9.1")?;

    // A request of several full-size segments, all sent before the server answers: each
    // carries the option, so each must fit the MTU thanks to the lowered MSS.
    let request = format!("GET / HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "a".repeat(5000));
    let request_len = request.len();
    let ((client_port, mss, body), frames) =
        capture(&lab.reals[0], "r0", || -> Result<(u16, i32, String)> {
            lab.client
                .run_in(move || -> Result<(u16, i32, String)> {
                    let mut s = std::net::TcpStream::connect_timeout(
                        &"198.18.100.1:80".parse()?,
                        std::time::Duration::from_secs(3),
                    )?;
                    s.set_read_timeout(Some(std::time::Duration::from_secs(3)))?;
                    let mut mss: i32 = 0;
                    let mut len = std::mem::size_of::<i32>() as u32;
                    use std::os::fd::AsRawFd;
                    // SAFETY: `mss` and `len` are live locals; getsockopt writes at most `len` bytes.
                    unsafe {
                        libc::getsockopt(
                            s.as_raw_fd(),
                            libc::IPPROTO_TCP,
                            libc::TCP_MAXSEG,
                            &mut mss as *mut i32 as *mut libc::c_void,
                            &mut len,
                        );
                    }
                    s.write_all(request.as_bytes())?;
                    let mut body = String::new();
                    s.read_to_string(&mut body)?;
                    Ok((s.local_addr()?.port(), mss, body))
                })
                .join()
                .map_err(|_| anyhow::anyhow!("client panicked"))??
        })
        .and_then(|(r, f)| Ok((r?, f)))?;
    assert!(body.contains("200 OK"), "{body}");

    // MSS 1460 announced by the real, lowered by 8 on the way; minus 12 for timestamps.
    assert_eq!(
        mss,
        1460 - 8 - 12,
        "the client's segment size leaves room for TOA"
    );

    let peer = body
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .nth(1)
        .unwrap_or("");
    let peer: SocketAddr = peer
        .parse()
        .map_err(|_| anyhow::anyhow!("no peer in {body:?}"))?;
    let with_toa: Vec<&Vec<u8>> = frames.iter().filter(|f| toa_of(f).is_some()).collect();
    // The real's veth merges the data segments (GRO), so count the insertions at the director:
    // the handshake ACK and every full-size segment of the request.
    assert!(with_toa.len() >= 2, "the ACK and the data carry TOA");
    let dp = dataplane::Dataplane::open(&lab.opts)?;
    let added = dp.counters()?[ebpf_common::counter::TOA_ADDED as usize];
    let segments = request_len.div_ceil(mss as usize) as u64;
    assert_eq!(
        added,
        1 + segments,
        "TOA in the ACK and each of the {segments} data segments"
    );
    for f in &with_toa {
        let (port, addr) = toa_of(f).unwrap();
        assert_eq!(
            (addr, port),
            (CLIENT, client_port),
            "the true client address"
        );
        let d = xlvs_tests::packet::decode(f).expect("IPv4 TCP");
        // Segments merged by GRO keep the first one's checksum; the others were as sent.
        let merged = f.len() > 1514;
        assert!(d.ip_checksum_ok && (merged || d.l4_checksum_ok), "{d:?}");
        assert_eq!(
            SocketAddr::new(std::net::IpAddr::V4(d.src), d.sport),
            peer,
            "from the local address the server saw"
        );
    }
    Ok(())
}

/// Sends `n` bare SYNs (from ports 20000..) to VIP:80 from the client namespace through a raw
/// socket: half-open connections nobody completes, as in a SYN flood.
fn syn_flood(lab: &Lab, n: u16) -> Result<()> {
    let vip = std::net::Ipv4Addr::new(198, 18, 100, 1);
    let syns = (0..n).map(move |i| Frame::tcp(CLIENT, 20000 + i, vip, 80, SYN).build());
    lab.client
        .run_in(move || send_tcp_frames(syns, Duration::from_micros(200)))
        .join()
        .map_err(|_| anyhow::anyhow!("flood thread panicked"))??
}

#[test]
fn synproxy_answers_syns_itself_and_hands_real_clients_to_the_real() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let (lab, _srv) = fullnat_lab(1)?;
    ipvsadm(&lab, "-A -t 198.18.100.1:80 -s rr -j enable")?;
    ipvsadm(&lab, "-a -t 198.18.100.1:80 -r 198.18.2.2:80 -b")?;
    ipvsadm(&lab, "-P -t 198.18.100.1:80 -z 198.18.9.1")?;
    let dp = dataplane::Dataplane::open(&lab.opts)?;
    let count = |c: u32| -> Result<u64> { Ok(dp.counters()?[c as usize]) };

    // A real client first (it also has the client resolve its gateway: the neighbour queue
    // would drop most of a burst).
    assert!(curl(&lab)?.starts_with("r0 198.18.9.1:"));
    let before = dp.connections()?.len();

    // A flood of SYNs: answered with cookies, nothing reaches the real or the table.
    let (sent, frames) = capture(&lab.reals[0], "r0", || syn_flood(&lab, 200))?;
    sent?;
    assert_eq!(count(ebpf_common::counter::SYNPROXY_COOKIE_SENT)?, 1 + 200);
    assert_eq!(
        frames
            .iter()
            .filter(|f| f.len() > 47 && f[23] == 6 && f[47] & 0x02 != 0)
            .count(),
        0,
        "no SYN reached the real server"
    );
    assert_eq!(
        dp.connections()?.len(),
        before,
        "no connection state for half-open clients"
    );

    // Real clients complete the handshake and get their answer from the real server.
    const N: u64 = 5;
    for _ in 1..N {
        let body = curl(&lab)?;
        assert!(body.starts_with("r0 198.18.9.1:"), "{body:?}");
    }
    assert_eq!(count(ebpf_common::counter::SYNPROXY_OPENED)?, N);
    assert_eq!(count(ebpf_common::counter::SYNPROXY_ESTABLISHED)?, N);
    assert_eq!(count(ebpf_common::counter::SYNPROXY_BAD_COOKIE)?, 0);
    Ok(())
}

/// The same FULLNAT service from a DPVS/alibaba-style keepalived.conf: `lb_kind FNAT`,
/// `local_address_group` + `laddr_group_name`, `syn_proxy`, and TCP_CHECKs; our keepalived
/// programs it and HTTP flows through SYNPROXY and FULLNAT to reals that only know the
/// local addresses.
#[test]
fn keepalived_fnat_config_with_local_address_group_and_syn_proxy() -> Result<()> {
    use xlvs_tests::keepalived::{Keepalived, Workdir, wait_listing};
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let (lab, _srv) = fullnat_lab(2)?;
    let dir = Workdir::new(&lab.prefix)?;
    let conf = dir.path("keepalived.conf");
    std::fs::write(
        &conf,
        "local_address_group laddr_g1 {\n    198.18.9.1-2\n}\n\
         virtual_server 198.18.100.1 80 {\n    delay_loop 2\n    lb_algo rr\n    lb_kind FNAT\n    \
         protocol TCP\n    laddr_group_name laddr_g1\n    syn_proxy\n\
         real_server 198.18.2.2 80 {\n        weight 1\n        TCP_CHECK {\n            connect_timeout 1\n        }\n    }\n\
         real_server 198.18.3.2 80 {\n        weight 1\n        TCP_CHECK {\n            connect_timeout 1\n        }\n    }\n}\n",
    )?;
    let ka = Keepalived::start(&lab, &dir, &conf)?;
    wait_listing(&lab, std::time::Duration::from_secs(10), |t| {
        t.matches("FullNat").count() == 2
    })?;
    let g = ipvsadm(&lab, "-G")?;
    for l in LADDRS {
        assert!(g.contains(l), "local address {l} missing from -G:\n{g}");
    }
    let mut names = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let body = curl(&lab)?;
        let mut words = body.split_whitespace();
        let (name, peer) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let peer: SocketAddr = peer
            .parse()
            .map_err(|_| anyhow::anyhow!("unexpected answer {body:?}\n{}", ka.log_text()))?;
        assert!(LADDRS.contains(&peer.ip().to_string().as_str()), "{peer}");
        names.insert(name.to_string());
    }
    assert_eq!(names.len(), 2, "both reals served: {names:?}");
    // The connections went through SYNPROXY: the service has it, and every one of them was
    // answered with a cookie and opened towards its real only after the handshake.
    let listing = ipvsadm(&lab, "-Ln")?;
    assert!(listing.contains("synproxy"), "{listing}");
    let c = dataplane::Dataplane::open(&lab.opts)?.counters()?;
    let at = |i: u32| c[i as usize];
    use ebpf_common::counter::{SYNPROXY_COOKIE_SENT, SYNPROXY_ESTABLISHED, SYNPROXY_OPENED};
    assert!(
        at(SYNPROXY_COOKIE_SENT) >= 6,
        "cookies: {}",
        at(SYNPROXY_COOKIE_SENT)
    );
    assert!(
        at(SYNPROXY_OPENED) >= 6 && at(SYNPROXY_ESTABLISHED) >= 6,
        "{c:?}"
    );
    Ok(())
}
