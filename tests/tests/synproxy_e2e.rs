//! SYNPROXY end to end with real Linux TCP on both sides, over a lossy path: a large transfer
//! in both directions through a SYNPROXY service (NAT and FULLNAT) with every 25th data packet
//! (after GRO) dropped as the client and the real server receive them. The payloads must arrive byte for byte; `ss -ti`
//! must show window scaling, SACK and timestamps negotiated on both ends (the real server with
//! a window scale other than the 7 the client is promised, so windows are rescaled); the
//! kernels' counters must show SACK recovery on the real server, no SACK block discarded as
//! invalid and no segment dropped by PAWS (timestamps translated right). Needs root.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use dataplane::Dataplane;
use dataplane::model::*;
use xlvs_tests::capture::capture;
use xlvs_tests::lab::{Lab, VIP};
use xlvs_tests::netns::{Netns, is_root};
use xlvs_tests::services;

const UP: usize = 1 << 20;
const DOWN: usize = 4 << 20;
const PORT: u16 = 80;
const LADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 9, 1);
const LOSSY: &str = "table inet xlvs_lossy {
  chain lossy {
    type filter hook prerouting priority -300; policy accept;
    meta l4proto tcp tcp flags & (syn | rst | fin) == 0 meta length > 200 numgen inc mod 25 == 7 counter drop
  }
}
";

/// Deterministic pseudo-random bytes (xorshift), different per `seed`.
fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The kernel's TCP counters in a namespace (/proc/net/snmp and /proc/net/netstat, read
/// there), named as nstat names them (`TcpRetransSegs`, `TcpExtTCPSackRecovery`, ...).
fn nstat(ns: &Netns) -> Result<std::collections::HashMap<String, u64>> {
    let mut m = std::collections::HashMap::new();
    for file in ["/proc/net/snmp", "/proc/net/netstat"] {
        let out = ns.exec("cat", &[file])?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let lines: Vec<&str> = text.lines().collect();
        for pair in lines.chunks(2) {
            let [names, values] = pair else { continue };
            let mut n = names.split_whitespace();
            let prefix = n.next().unwrap_or("").trim_end_matches(':').to_string();
            for (k, v) in n.zip(values.split_whitespace().skip(1)) {
                if let Ok(v) = v.parse() {
                    m.insert(format!("{prefix}{k}"), v);
                }
            }
        }
    }
    Ok(m)
}

/// `ss -tiena` (socket and info lines) in the namespace named `ns` (its only TCP sockets are
/// the test's: `-e` too, as ss prints the ts/sack flags only then).
fn ss_info(ns: &str) -> Result<String> {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "ss", "-tiena"])
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn configure(opts: &dataplane::Options, real: IpAddr, fullnat: bool) -> Result<()> {
    let (vip, laddr) = match real {
        IpAddr::V4(_) => (IpAddr::V4(VIP), IpAddr::V4(LADDR)),
        IpAddr::V6(_) => (IpAddr::V6(VIP6), IpAddr::V6(LADDR6)),
    };
    let mut dp = Dataplane::open(opts)?;
    let cfg = ServiceConfig {
        synproxy: true,
        ..ServiceConfig::new(services::inet(Protocol::Tcp, vip, PORT))
    };
    let (forward, laddrs) = match fullnat {
        true => (Forward::FullNat, vec![laddr]),
        false => (Forward::Masq, vec![]),
    };
    services::fullnat(
        &mut dp,
        &cfg,
        &[services::real(real, PORT, forward)],
        &laddrs,
    )?;
    Ok(())
}

fn transfer(fullnat: bool, v6: bool) -> Result<()> {
    let lab = Lab::new(1)?;
    let real = &lab.reals[0];
    if v6 {
        ipv6_lab(&lab, fullnat)?;
    } else if fullnat {
        // The real knows only the local-address network.
        real.ip(&["route", "del", "default"])?;
        real.ip(&["route", "add", "198.18.9.0/24", "via", "198.18.2.1"])?;
        lab.director
            .ip(&["addr", "add", &format!("{LADDR}/32"), "dev", "lo"])?;
    }
    let (vip, real_ip) = if v6 {
        (IpAddr::V6(VIP6), real6(0))
    } else {
        (IpAddr::V4(VIP), lab.real_ip(0))
    };
    // Window scale 9 or more on the real (16 MB buffers, or net.core.rmem_max if the host
    // set it higher: that one is not per namespace), 7 promised to the client: rescaled windows.
    real.sysctl("net.ipv4.tcp_rmem", "4096 131072 16777216")?;
    // Loss: every 25th data packet, dropped as the client and the real server receive it (tc netem would do, but this kernel is built without it; a drop on the
    // sender's own output is not a loss: TCP sees the error and sends again, unretransmitted).
    // (GRO stays on: the veth ends need it to receive what XDP sends them; a drop may then
    // take a few segments at once.)
    for ns in [&lab.client, real] {
        let file = format!("/tmp/{}-lossy.nft", lab.prefix);
        std::fs::write(&file, LOSSY)?;
        let out = ns.exec("nft", &["-f", &file]);
        let _ = std::fs::remove_file(&file);
        out?;
    }
    // Configured from the director's namespace: adding a FULLNAT real resolves its next hop
    // there (the kernel refuses to forward packets from our local address itself).
    let opts = lab.opts.clone();
    lab.director
        .run_in(move || configure(&opts, real_ip, fullnat))
        .join()
        .map_err(|_| anyhow::anyhow!("configure thread panicked"))???;
    let dp = Dataplane::open(&lab.opts)?;
    let up = payload(UP, 1);
    let down = payload(DOWN, 2);
    let real_addr = SocketAddr::new(real_ip, PORT);
    let listener = real
        .run_in(move || TcpListener::bind(real_addr))
        .join()
        .map_err(|_| anyhow::anyhow!("bind thread panicked"))???;
    let down2 = down.clone();
    let (real_ns, client_ns) = (format!("{}r0", lab.prefix), format!("{}c", lab.prefix));
    let server = std::thread::spawn(move || -> Result<(Vec<u8>, String)> {
        let (mut c, _) = listener.accept()?;
        // What the real's kernel agreed with our SYN, right after the handshake.
        let negotiated = ss_info(&real_ns)?;
        c.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut got = vec![0u8; UP];
        c.read_exact(&mut got)?;
        c.write_all(&down2)?;
        c.shutdown(Shutdown::Write)?;
        // Wait for the client's FIN so nothing is cut short.
        let mut rest = Vec::new();
        c.read_to_end(&mut rest)?;
        Ok((got, negotiated))
    });
    let up2 = up.clone();
    let client = std::thread::spawn(move || -> Result<(Vec<u8>, String)> {
        xlvs_tests::netns::enter(&format!("/run/netns/{client_ns}"))?;
        let vip = SocketAddr::new(vip, PORT);
        let mut c = TcpStream::connect_timeout(&vip, Duration::from_secs(10))?;
        // What the client's kernel agreed with our cookie SYN-ACK.
        let negotiated = ss_info(&client_ns)?;
        c.set_read_timeout(Some(Duration::from_secs(60)))?;
        c.write_all(&up2)?;
        let mut got = Vec::with_capacity(DOWN);
        let mut buf = [0u8; 65536];
        while got.len() < DOWN {
            let n = c.read(&mut buf)?;
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        c.shutdown(Shutdown::Write)?;
        Ok((got, negotiated))
    });
    let (got, client_ss) = client
        .join()
        .map_err(|_| anyhow::anyhow!("client thread panicked"))?
        .context("client")?;
    let (uploaded, real_ss) = server
        .join()
        .map_err(|_| anyhow::anyhow!("server thread panicked"))?
        .context("server")?;
    if got.len() != DOWN || got != down {
        bail!(
            "download differs: {} of {DOWN} bytes, first difference at {:?}",
            got.len(),
            got.iter().zip(&down).position(|(a, b)| a != b)
        );
    }
    assert!(uploaded == up, "upload differs");

    eprintln!("client: {client_ss}\nreal: {real_ss}");
    for (who, ss) in [("client", &client_ss), ("real", &real_ss)] {
        for flag in [" ts ", " sack "] {
            assert!(ss.contains(flag), "{who}: no{flag}in {ss}");
        }
    }
    // ss prints wscale:<send scale>,<receive scale>: the client sends with our 7, the real
    // receives with its own.
    assert!(client_ss.contains("wscale:7,"), "{client_ss}");
    let real_scale = receive_window_scale(16 << 20);
    assert!(real_scale > 7, "the real's scale must differ from ours");
    assert!(
        real_ss.contains(&format!(",{real_scale} ")),
        "{real_scale}: {real_ss}"
    );

    let c = nstat(&lab.client)?;
    let r = nstat(real)?;
    let get = |m: &std::collections::HashMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
    eprintln!(
        "real: retrans {} sack recoveries {} sack discards {}; client retrans {}; PAWS drops client {} real {}",
        get(&r, "TcpRetransSegs"),
        get(&r, "TcpExtTCPSackRecovery"),
        get(&r, "TcpExtTCPSACKDiscard"),
        get(&c, "TcpRetransSegs"),
        get(&c, "TcpExtPAWSEstab"),
        get(&r, "TcpExtPAWSEstab"),
    );
    assert!(get(&r, "TcpRetransSegs") > 0, "the loss was induced");
    assert!(
        get(&r, "TcpExtTCPSackRecovery") > 0,
        "the real recovered with the client's (translated) SACK blocks"
    );
    assert_eq!(
        get(&r, "TcpExtTCPSACKDiscard"),
        0,
        "no SACK block out of window"
    );
    assert_eq!(get(&c, "TcpExtPAWSEstab"), 0, "client: no PAWS drop");
    assert_eq!(get(&r, "TcpExtPAWSEstab"), 0, "real: no PAWS drop");
    let counters = dp.counters()?;
    assert!(counters[ebpf_common::counter::SYNPROXY_OPTIONS as usize] >= 1);
    assert!(counters[ebpf_common::counter::SYNPROXY_ESTABLISHED as usize] >= 1);
    assert_eq!(
        counters[ebpf_common::counter::SYNPROXY_BAD_OPTIONS as usize],
        0
    );
    Ok(())
}

#[test]
fn large_transfer_through_synproxy_nat_with_loss_uses_sack_and_window_scaling() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    transfer(false, false)
}

#[test]
fn large_transfer_through_synproxy_fullnat_with_loss_uses_sack_and_window_scaling() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    transfer(true, false)
}

/// Defer mode, set with `xlvs set synproxy_defer 1`: the handshake's ACK opens nothing; the
/// request (the client's first data) opens the real's side and is dropped, so the client's
/// kernel sends it again after its retransmission timeout (>= 200 ms): the documented price.
#[test]
fn defer_mode_opens_the_real_side_with_the_first_data_and_the_client_resends_it() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let lab = Lab::new(1)?;
    let (opts, real_ip) = (lab.opts.clone(), lab.real_ip(0));
    lab.director
        .run_in(move || configure(&opts, real_ip, false))
        .join()
        .map_err(|_| anyhow::anyhow!("configure thread panicked"))???;
    let bad = lab.xlvs(&["set", "synproxy_defer", "yes"]);
    let msg = format!("{:#}", bad.err().context("a bad value must be refused")?);
    assert!(
        msg.contains("synproxy_defer: value must be 0 or 1"),
        "{msg}"
    );
    lab.xlvs(&["set", "synproxy_defer", "1"])?;
    let dp = Dataplane::open(&lab.opts)?;
    assert!(dp.path_settings()?.synproxy_defer);

    let real_addr = SocketAddr::new(lab.real_ip(0), PORT);
    let listener = lab.reals[0]
        .run_in(move || TcpListener::bind(real_addr))
        .join()
        .map_err(|_| anyhow::anyhow!("bind thread panicked"))???;
    let server = std::thread::spawn(move || -> Result<Vec<u8>> {
        let (mut c, _) = listener.accept()?;
        c.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut req = [0u8; 5];
        c.read_exact(&mut req)?;
        c.write_all(b"pong\n")?;
        Ok(req.to_vec())
    });
    let opts = lab.opts.clone();
    let client = lab.client.run_in(move || -> Result<(Vec<u8>, Duration)> {
        let vip = SocketAddr::new(IpAddr::V4(VIP), PORT);
        let mut c = TcpStream::connect_timeout(&vip, Duration::from_secs(5))?;
        c.set_read_timeout(Some(Duration::from_secs(10)))?;
        // Connected (the cookie handshake), yet nothing was opened towards the real server.
        std::thread::sleep(Duration::from_millis(50));
        let counters = Dataplane::open(&opts)?.counters()?;
        anyhow::ensure!(
            counters[ebpf_common::counter::SYNPROXY_DEFERRED as usize] == 1
                && counters[ebpf_common::counter::SYNPROXY_OPENED as usize] == 0,
            "the handshake's ACK must open nothing in defer mode"
        );
        let t = std::time::Instant::now();
        c.write_all(b"ping\n")?;
        let mut resp = [0u8; 5];
        c.read_exact(&mut resp)?;
        Ok((resp.to_vec(), t.elapsed()))
    });
    let (resp, took) = client
        .join()
        .map_err(|_| anyhow::anyhow!("client thread panicked"))??
        .context("client")?;
    let req = server
        .join()
        .map_err(|_| anyhow::anyhow!("server thread panicked"))?
        .context("server")?;
    assert_eq!(req, b"ping\n");
    assert_eq!(resp, b"pong\n");
    let counters = dp.counters()?;
    // Under load the client may send its handshake ACK's segment twice; each is deferred, and
    // exactly one connection is opened towards the real.
    assert!(counters[ebpf_common::counter::SYNPROXY_DEFERRED as usize] >= 1);
    assert_eq!(counters[ebpf_common::counter::SYNPROXY_OPENED as usize], 1);
    assert!(
        took >= Duration::from_millis(200),
        "the request was resent after the client's RTO: {took:?}"
    );
    Ok(())
}

/// Short connections one after the other (request, response, the real closes first, as nginx
/// does for wrk's `Connection: close`), from four client ports, so every port is reused
/// while the director's entry for it is closed (session reuse): each completes quickly.
#[test]
fn short_connections_through_synproxy_complete_without_waiting() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let lab = Lab::new(1)?;
    let (opts, real_ip) = (lab.opts.clone(), lab.real_ip(0));
    lab.director
        .run_in(move || configure(&opts, real_ip, false))
        .join()
        .map_err(|_| anyhow::anyhow!("configure thread panicked"))???;
    let real_addr = SocketAddr::new(lab.real_ip(0), PORT);
    let listener = lab.reals[0]
        .run_in(move || TcpListener::bind(real_addr))
        .join()
        .map_err(|_| anyhow::anyhow!("bind thread panicked"))???;
    // Few ports, so they are reused (the real keeps TIME_WAIT: it closes first, as nginx with
    // `Connection: close` does for wrk).
    lab.client
        .sysctl("net.ipv4.ip_local_port_range", "20000 20003")?;
    const N: usize = 40;
    let server = std::thread::spawn(move || -> Result<()> {
        for _ in 0..N {
            let (mut c, _) = listener.accept()?;
            c.set_read_timeout(Some(Duration::from_secs(10)))?;
            let mut req = [0u8; 5];
            c.read_exact(&mut req)?;
            c.write_all(b"pong\n")?;
            c.shutdown(Shutdown::Both)?;
        }
        Ok(())
    });
    let client = lab.client.run_in(move || -> Result<Vec<Duration>> {
        let vip = SocketAddr::new(IpAddr::V4(VIP), PORT);
        let mut times = Vec::new();
        for _ in 0..N {
            let t = std::time::Instant::now();
            let mut c = TcpStream::connect_timeout(&vip, Duration::from_secs(5))?;
            c.set_read_timeout(Some(Duration::from_secs(10)))?;
            c.write_all(b"ping\n")?;
            let mut resp = [0u8; 5];
            c.read_exact(&mut resp)?;
            anyhow::ensure!(&resp == b"pong\n");
            let mut rest = Vec::new();
            c.read_to_end(&mut rest)?;
            times.push(t.elapsed());
        }
        Ok(times)
    });
    let times = client
        .join()
        .map_err(|_| anyhow::anyhow!("client thread panicked"))??;
    server
        .join()
        .map_err(|_| anyhow::anyhow!("server thread panicked"))??;
    let dp = Dataplane::open(&lab.opts)?;
    let c = dp.counters()?;
    eprintln!(
        "{times:?}\nopened {} established {} resent {}",
        c[ebpf_common::counter::SYNPROXY_OPENED as usize],
        c[ebpf_common::counter::SYNPROXY_ESTABLISHED as usize],
        c[ebpf_common::counter::SYNPROXY_SYN_RESENT as usize],
    );
    let times = times?;
    assert_eq!(times.len(), N);
    assert_eq!(
        c[ebpf_common::counter::SYNPROXY_ESTABLISHED as usize],
        N as u64
    );
    assert_eq!(c[ebpf_common::counter::SYNPROXY_BAD_COOKIE as usize], 0);
    let total: Duration = times.iter().sum();
    assert!(
        total < Duration::from_secs(5),
        "{total:?}: some waited for retransmissions"
    );
    Ok(())
}

/// A server-first protocol (SMTP, SSH: the real speaks first, the client sends nothing): the
/// client's acknowledgement of the window-opening segment completes the real's handshake, so
/// the banner arrives at once, not after the real's SYN-ACK retransmission (1 s).
#[test]
fn a_server_first_banner_arrives_without_waiting() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let lab = Lab::new(1)?;
    let (opts, real_ip) = (lab.opts.clone(), lab.real_ip(0));
    lab.director
        .run_in(move || configure(&opts, real_ip, false))
        .join()
        .map_err(|_| anyhow::anyhow!("configure thread panicked"))???;
    let real_addr = SocketAddr::new(lab.real_ip(0), PORT);
    let listener = lab.reals[0]
        .run_in(move || TcpListener::bind(real_addr))
        .join()
        .map_err(|_| anyhow::anyhow!("bind thread panicked"))???;
    const N: usize = 10;
    let server = std::thread::spawn(move || -> Result<()> {
        for _ in 0..N {
            let (mut c, _) = listener.accept()?;
            c.write_all(b"220 real ESMTP\n")?;
            c.set_read_timeout(Some(Duration::from_secs(10)))?;
            let mut quit = [0u8; 5];
            c.read_exact(&mut quit)?;
            anyhow::ensure!(&quit == b"QUIT\n");
        }
        Ok(())
    });
    let client = lab.client.run_in(move || -> Result<Vec<Duration>> {
        let vip = SocketAddr::new(IpAddr::V4(VIP), PORT);
        let mut times = Vec::new();
        for _ in 0..N {
            let t = std::time::Instant::now();
            let mut c = TcpStream::connect_timeout(&vip, Duration::from_secs(5))?;
            c.set_read_timeout(Some(Duration::from_secs(10)))?;
            let mut banner = [0u8; 15];
            c.read_exact(&mut banner)?;
            times.push(t.elapsed());
            anyhow::ensure!(&banner == b"220 real ESMTP\n", "{banner:?}");
            c.write_all(b"QUIT\n")?;
        }
        Ok(times)
    });
    let times = client
        .join()
        .map_err(|_| anyhow::anyhow!("client thread panicked"))??;
    server
        .join()
        .map_err(|_| anyhow::anyhow!("server thread panicked"))??;
    eprintln!("banner after {times:?}");
    let times = times?;
    let slowest = times.iter().max().copied().unwrap_or_default();
    assert!(
        slowest < Duration::from_millis(500),
        "{slowest:?}: a banner waited for the real's SYN-ACK retransmission"
    );
    Ok(())
}

/// Many short connections at once (as wrk -c32 with a new connection per request).
#[test]
fn concurrent_short_connections_through_synproxy() -> Result<()> {
    concurrent_short_connections(false)
}

#[test]
fn ipv6_concurrent_short_connections_through_synproxy() -> Result<()> {
    concurrent_short_connections(true)
}

fn concurrent_short_connections(v6: bool) -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let lab = Lab::new(1)?;
    if v6 {
        ipv6_lab(&lab, false)?;
    }
    let real_ip = if v6 { real6(0) } else { lab.real_ip(0) };
    let vip_ip = if v6 {
        IpAddr::V6(VIP6)
    } else {
        IpAddr::V4(VIP)
    };
    let opts = lab.opts.clone();
    lab.director
        .run_in(move || configure(&opts, real_ip, false))
        .join()
        .map_err(|_| anyhow::anyhow!("configure thread panicked"))???;
    let real_addr = SocketAddr::new(real_ip, PORT);
    let listener = lab.reals[0]
        .run_in(move || TcpListener::bind(real_addr))
        .join()
        .map_err(|_| anyhow::anyhow!("bind thread panicked"))???;
    const THREADS: usize = 16;
    const PER: usize = 20;
    std::thread::spawn(move || {
        for c in listener.incoming().take(THREADS * PER) {
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
                let mut req = [0u8; 5];
                if c.read_exact(&mut req).is_ok() {
                    let _ = c.write_all(b"pong\n");
                }
                let _ = c.shutdown(Shutdown::Both);
            });
        }
    });
    let mut clients = Vec::new();
    for _ in 0..THREADS {
        clients.push(
            lab.client
                .run_in(move || -> Vec<std::io::Result<Duration>> {
                    let vip = SocketAddr::new(vip_ip, PORT);
                    (0..PER)
                        .map(|_| {
                            let t = std::time::Instant::now();
                            let mut c = TcpStream::connect_timeout(&vip, Duration::from_secs(5))?;
                            c.set_read_timeout(Some(Duration::from_secs(10)))?;
                            c.write_all(b"ping\n")?;
                            let mut resp = [0u8; 5];
                            c.read_exact(&mut resp)?;
                            Ok(t.elapsed())
                        })
                        .collect()
                }),
        );
    }
    let t0 = std::time::Instant::now();
    let (mut all, mut failed) = (Vec::new(), Vec::new());
    for c in clients {
        for r in c
            .join()
            .map_err(|_| anyhow::anyhow!("client thread panicked"))??
        {
            match r {
                Ok(t) => all.push(t),
                Err(e) => failed.push(e.to_string()),
            }
        }
    }
    let took = t0.elapsed();
    let dp = Dataplane::open(&lab.opts)?;
    let c = dp.counters()?;
    let slow = all
        .iter()
        .filter(|t| **t >= Duration::from_millis(150))
        .count();
    eprintln!(
        "{} connections in {took:?}, {slow} slow; opened {} established {} resent {} bad cookies {}",
        all.len(),
        c[ebpf_common::counter::SYNPROXY_OPENED as usize],
        c[ebpf_common::counter::SYNPROXY_ESTABLISHED as usize],
        c[ebpf_common::counter::SYNPROXY_SYN_RESENT as usize],
        c[ebpf_common::counter::SYNPROXY_BAD_COOKIE as usize],
    );
    // Our SYN-ACK closes the client's window until the real's side is open, so no request
    // overtakes the real's SYN-ACK: none makes us send the SYN again (each did before, and
    // waited for the client's retransmission). Under heavy load (tests in parallel) a rare
    // connection was seen reset (1 in 320, before the reuse fix below); tolerated up to 5 %.
    eprintln!("failed: {failed:?}");
    assert!(failed.len() * 20 <= THREADS * PER, "{failed:?}");
    assert!(
        c[ebpf_common::counter::SYNPROXY_SYN_RESENT as usize] * 50 <= (THREADS * PER) as u64,
        "requests raced the real's handshake: {c:?}"
    );
    // Each connection opened the real's side once: the last ACK of a closed connection (a
    // valid cookie when both sides sent as much, as here) reopens nothing (it did, for ~12 %).
    let opened = c[ebpf_common::counter::SYNPROXY_OPENED as usize];
    assert!(
        opened.saturating_sub(all.len() as u64) * 50 <= (THREADS * PER) as u64,
        "opened {opened} for {} connections: {c:?}",
        all.len()
    );
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert!(c[ebpf_common::counter::SYNPROXY_ESTABLISHED as usize] >= all.len() as u64);
    // A cookie is refused only for a connection that failed (an ACK that came too late).
    assert!(
        c[ebpf_common::counter::SYNPROXY_BAD_COOKIE as usize] <= failed.len() as u64,
        "{c:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// IPv6 (xlvs_synproxy6): the lab's links get 2001:db8:N::/64 addresses (no link-local ones, no
// DAD), the VIP is 2001:db8:100::1, FULLNAT's local address 2001:db8:9::1.
// ---------------------------------------------------------------------------------------------

const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 1);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);
const LADDR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, 1);
/// The second client (SYN flood) namespace's address.
const FLOODER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x50, 0, 0, 0, 0, 2);

/// Address of real server `i` in the IPv6 lab.
fn real6(i: usize) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 2 + i as u16, 0, 0, 0, 0, 2))
}

/// IPv6 on `ifname` in `ns` (`Netns::enable_ipv6`), with `addr` (no DAD).
fn add6(ns: &Netns, ifname: &str, addr: &str) -> Result<()> {
    ns.enable_ipv6(&[ifname])?;
    ns.ip(&["-6", "addr", "add", addr, "dev", ifname, "nodad"])?;
    Ok(())
}

/// IPv6 on the lab's links (`Lab::add_ipv6`). With `fullnat`, the reals know only the
/// local-address network (2001:db8:9::/64, through the director).
fn ipv6_lab(lab: &Lab, fullnat: bool) -> Result<()> {
    lab.add_ipv6()?;
    if !fullnat {
        return Ok(());
    }
    add6(&lab.director, "lo", &format!("{LADDR6}/128"))?;
    for (i, real) in lab.reals.iter().enumerate() {
        let gw = format!("2001:db8:{}::1", 2 + i);
        real.ip(&["-6", "route", "del", "default"])?;
        real.ip(&["-6", "route", "add", "2001:db8:9::/64", "via", &gw])?;
        let route = real
            .command("ip")
            .args(["-6", "route", "get", &CLIENT6.to_string()])
            .output()?;
        anyhow::ensure!(!route.status.success(), "real {i} can reach the client");
    }
    Ok(())
}

/// A second client namespace on its own director link (`lf`, attached too), 2001:db8:50::/64.
fn flood_client(lab: &Lab) -> Result<Netns> {
    let ns = Netns::new(&format!("{}f", lab.prefix))?;
    xlvs_tests::netns::veth(&ns, "f0", &lab.director, "lf")?;
    xlvs_tests::netns::prepare_endpoint(&ns, "f0")?;
    add6(&ns, "f0", &format!("{FLOODER6}/64"))?;
    ns.ip(&["-6", "route", "add", "default", "via", "2001:db8:50::1"])?;
    add6(&lab.director, "lf", "2001:db8:50::1/64")?;
    ns.neighbour6("f0", "2001:db8:50::1", &lab.director, "lf")?;
    lab.director
        .neighbour6("lf", &FLOODER6.to_string(), &ns, "f0")?;
    lab.xlvs(&["attach", "lf"])?;
    Ok(ns)
}

/// Sends `n` bare SYNs (with an MSS option) to [VIP6]:80 from the namespace `ns` through a raw
/// IPv6 socket (ports 20000.., checksums computed here), paced: a bounded flood of half-open
/// connections.
fn syn_flood6(ns: String, n: u16) -> Result<()> {
    std::thread::spawn(move || -> Result<()> {
        xlvs_tests::netns::enter(&format!("/run/netns/{ns}"))?;
        let (src, dst) = (FLOODER6.to_string(), VIP6.to_string());
        let syns = (0..n).map(|i| {
            let mut f = xlvs_tests::packet::Frame6::tcp(&src, 20000 + i, &dst, PORT, 0x02);
            f.tcp_options = vec![2, 4, 0x05, 0xa0];
            f.build()
        });
        xlvs_tests::rawsock::send_tcp_frames(syns, Duration::from_micros(300))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("flood thread panicked"))?
}

/// An untagged Ethernet/IPv6/TCP frame's source address and TCP flags.
fn tcp6_of(frame: &[u8]) -> Option<(Ipv6Addr, u8)> {
    if frame.len() < 74 || frame[12..14] != [0x86, 0xdd] || frame[20] != 6 {
        return None;
    }
    let src: [u8; 16] = frame[22..38].try_into().ok()?;
    Some((src.into(), frame[54 + 13]))
}

/// The TOA option for IPv6 (kind 253, length 20) of an untagged Ethernet/IPv6/TCP frame:
/// (client port, client address).
fn toa6_of(frame: &[u8]) -> Option<(u16, Ipv6Addr)> {
    tcp6_of(frame)?;
    let doff = (frame[54 + 12] >> 4) as usize * 4;
    let opts = frame.get(74..54 + doff)?;
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => break,
            1 => i += 1,
            253 if opts.get(i + 1) == Some(&20) => {
                let o = opts.get(i..i + 20)?;
                let a: [u8; 16] = o[4..20].try_into().ok()?;
                return Some((u16::from_be_bytes([o[2], o[3]]), a.into()));
            }
            _ => i += (*opts.get(i + 1)? as usize).max(2),
        }
    }
    None
}

/// One HTTP GET through [VIP6]:80 from the client namespace with curl -6: the body.
fn curl6(lab: &Lab) -> Result<String> {
    let out = lab.client.exec(
        "curl",
        &[
            "-6",
            "-s",
            "--max-time",
            "5",
            &format!("http://[{VIP6}]:{PORT}/"),
        ],
    )?;
    Ok(String::from_utf8(out.stdout)?)
}

/// IPv6 NAT through SYNPROXY with curl, while a second client floods SYNs: the flood is
/// answered with cookies by the director and none of its SYNs reaches the real server, the
/// normal client keeps getting its answers from the real.
#[test]
fn ipv6_nat_http_through_synproxy_while_another_client_floods_syns() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let lab = Lab::new(1)?;
    ipv6_lab(&lab, false)?;
    let flooder = flood_client(&lab)?;
    let (opts, real_ip) = (lab.opts.clone(), real6(0));
    lab.director
        .run_in(move || configure(&opts, real_ip, false))
        .join()
        .map_err(|_| anyhow::anyhow!("configure thread panicked"))???;
    let _srv = xlvs_tests::servers::http(&lab.reals[0], SocketAddr::new(real6(0), PORT), "r0")?;
    let dp = Dataplane::open(&lab.opts)?;
    let count = |c: u32| -> Result<u64> { Ok(dp.counters()?[c as usize]) };

    // NAT: the real sees the client's own address.
    let body = curl6(&lab)?;
    assert!(body.starts_with(&format!("r0 [{CLIENT6}]:")), "{body:?}");
    assert_eq!(count(ebpf_common::counter::SYNPROXY_ESTABLISHED)?, 1);

    // The flood (600 SYNs, paced, from another namespace) while the client keeps fetching.
    const FLOOD: u16 = 600;
    let (answers, frames) = capture(&lab.reals[0], "r0", || -> Result<Vec<String>> {
        let name = flooder.name.clone();
        let flood = std::thread::spawn(move || syn_flood6(name, FLOOD));
        let mut answers = Vec::new();
        for _ in 0..5 {
            answers.push(curl6(&lab)?);
        }
        flood
            .join()
            .map_err(|_| anyhow::anyhow!("flood panicked"))??;
        Ok(answers)
    })?;
    let answers = answers?;
    for a in &answers {
        assert!(a.starts_with(&format!("r0 [{CLIENT6}]:")), "{answers:?}");
    }
    let syns: Vec<Ipv6Addr> = frames
        .iter()
        .filter_map(|f| tcp6_of(f))
        .filter(|(_, flags)| flags & 0x02 != 0)
        .map(|(src, _)| src)
        .collect();
    assert_eq!(
        syns.iter().filter(|s| **s == FLOODER6).count(),
        0,
        "no SYN of the flood reached the real server"
    );
    assert!(
        syns.iter().filter(|s| **s == CLIENT6).count() >= 5,
        "the capture saw the normal client's SYNs: {syns:?}"
    );
    assert!(count(ebpf_common::counter::SYNPROXY_COOKIE_SENT)? >= FLOOD as u64 + 6);
    assert_eq!(count(ebpf_common::counter::SYNPROXY_OPENED)?, 6);
    assert_eq!(count(ebpf_common::counter::SYNPROXY_ESTABLISHED)?, 6);
    assert_eq!(count(ebpf_common::counter::SYNPROXY_BAD_COOKIE)?, 0);
    // Half-open flood clients hold nothing (the client's connections, closed, may remain).
    let conns = dp.connections()?;
    assert!(
        conns.iter().all(|c| c.client.ip() == IpAddr::V6(CLIENT6)),
        "{conns:?}"
    );
    drop(flooder);
    Ok(())
}

/// IPv6 FULLNAT through SYNPROXY: the real (which knows only the local-address network) sees
/// the local address, and the client's address and port in TOA (253) on its capture.
#[test]
fn ipv6_fullnat_through_synproxy_carries_the_client_in_toa_253() -> Result<()> {
    use std::io::{Read, Write};
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let lab = Lab::new(1)?;
    ipv6_lab(&lab, true)?;
    let (opts, real_ip) = (lab.opts.clone(), real6(0));
    lab.director
        .run_in(move || configure(&opts, real_ip, true))
        .join()
        .map_err(|_| anyhow::anyhow!("configure thread panicked"))???;
    let _srv = xlvs_tests::servers::http(&lab.reals[0], SocketAddr::new(real6(0), PORT), "r0")?;
    // curl -6 first (the real must answer a local address).
    let body = curl6(&lab)?;
    assert!(body.starts_with(&format!("r0 [{LADDR6}]:")), "{body:?}");

    let ((port, body), frames) = capture(&lab.reals[0], "r0", || -> Result<(u16, String)> {
        lab.client
            .run_in(|| -> Result<(u16, String)> {
                let vip = SocketAddr::new(IpAddr::V6(VIP6), PORT);
                let mut s = TcpStream::connect_timeout(&vip, Duration::from_secs(3))?;
                s.set_read_timeout(Some(Duration::from_secs(3)))?;
                s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")?;
                let mut body = String::new();
                s.read_to_string(&mut body)?;
                Ok((s.local_addr()?.port(), body))
            })
            .join()
            .map_err(|_| anyhow::anyhow!("client panicked"))??
    })
    .and_then(|(r, f)| Ok((r?, f)))?;
    assert!(body.contains("200 OK"), "{body}");
    let peer = body.lines().last().unwrap_or("").split_whitespace().nth(1);
    let peer: SocketAddr = peer.unwrap_or("").parse().context("peer in the answer")?;
    assert_eq!(
        peer.ip(),
        IpAddr::V6(LADDR6),
        "the real saw the local address"
    );
    let toa: Vec<(u16, Ipv6Addr)> = frames.iter().filter_map(|f| toa6_of(f)).collect();
    assert!(
        !toa.is_empty(),
        "the handshake's ACK towards the real carries TOA"
    );
    for t in &toa {
        assert_eq!(*t, (port, CLIENT6), "the true client address and port");
    }
    // Every frame the real received from us has a valid checksum.
    for f in frames.iter().filter(|f| tcp6_of(f).is_some()) {
        let d = xlvs_tests::packet::decode6(f).context("IPv6 TCP")?;
        if d.dst == real6(0) && f.len() <= 1514 {
            assert!(d.l4_checksum_ok, "{d:?}");
        }
    }
    let dp = Dataplane::open(&lab.opts)?;
    let c = dp.counters()?;
    assert_eq!(c[ebpf_common::counter::SYNPROXY_ESTABLISHED as usize], 2);
    Ok(())
}

#[test]
fn ipv6_large_transfer_through_synproxy_nat_with_loss_uses_sack_and_window_scaling() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    transfer(false, true)
}

#[test]
fn ipv6_large_transfer_through_synproxy_fullnat_with_loss_uses_sack_and_window_scaling()
-> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    transfer(true, true)
}

/// The window scale Linux offers for a receive buffer limit of `tcp_rmem_max`: the larger of it
/// and the host-wide `net.core.rmem_max` decides (tcp_select_initial_window).
fn receive_window_scale(tcp_rmem_max: u64) -> u32 {
    let core_max = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let space = tcp_rmem_max.max(core_max).min(u32::MAX as u64);
    (space.ilog2().saturating_sub(15)).min(14)
}
