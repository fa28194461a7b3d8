//! End to end in network namespaces: a client, a director running xlvs (attached with the `xlvs`
//! binary), real servers; real TCP and UDP through the VIP in NAT mode. Needs root.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use anyhow::Result;
use dataplane::Dataplane;
use dataplane::model::*;
use xlvs_tests::lab::{Lab, VIP};
use xlvs_tests::netns::is_root;
use xlvs_tests::servers;

const PORT: u16 = 80;

fn vip(proto: Protocol, port: u16) -> ServiceAddr {
    ServiceAddr::Inet {
        proto,
        addr: IpAddr::V4(VIP),
        port,
    }
}

/// A lab with a TCP (or UDP) server named r<i> on every real, and a service with them as Masq reals.
fn lab_with_service(
    proto: Protocol,
    sched: Scheduler,
    weights: &[i32],
) -> Result<(Lab, Dataplane, Vec<servers::Server>)> {
    let lab = Lab::new(weights.len())?;
    let mut srv = Vec::new();
    for (i, ns) in lab.reals.iter().enumerate() {
        let addr = SocketAddr::new(lab.real_ip(i), PORT);
        srv.push(match proto {
            Protocol::Udp => servers::udp(ns, addr, &format!("r{i}"))?,
            _ => servers::tcp(ns, addr, &format!("r{i}"))?,
        });
    }
    let mut dp = Dataplane::open(&lab.opts)?;
    let mut cfg = ServiceConfig::new(vip(proto, PORT));
    cfg.scheduler = sched;
    dp.add_service(&cfg)?;
    for (i, w) in weights.iter().enumerate() {
        let mut d = DestConfig::new(lab.real_ip(i), PORT);
        d.forward = Forward::Masq;
        d.weight = *w;
        dp.add_dest(&cfg.addr, &d)?;
    }
    Ok((lab, dp, srv))
}

/// One TCP exchange through the VIP: connect, read the greeting, send a line, check the echo
/// comes from the same real. Returns the real's name.
fn tcp_once(stream: &mut TcpStream) -> Result<String> {
    let mut r = BufReader::new(stream.try_clone()?);
    let mut greeting = String::new();
    r.read_line(&mut greeting)?;
    let name = greeting.trim().to_string();
    writeln!(stream, "ping")?;
    let mut echo = String::new();
    r.read_line(&mut echo)?;
    anyhow::ensure!(
        echo.trim() == format!("{name} ping"),
        "session moved: {name} / {echo}"
    );
    Ok(name)
}

fn connect() -> Result<TcpStream> {
    let s = TcpStream::connect_timeout(
        &SocketAddr::new(IpAddr::V4(VIP), PORT),
        Duration::from_secs(3),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    anyhow::ensure!(s.peer_addr()?.ip() == IpAddr::V4(VIP));
    Ok(s)
}

/// `n` connections from the client namespace; counts per real.
fn tcp_distribution(lab: &Lab, n: usize) -> Result<HashMap<String, usize>> {
    lab.client
        .run_in(move || -> Result<HashMap<String, usize>> {
            let mut counts = HashMap::new();
            for _ in 0..n {
                let mut s = connect()?;
                *counts.entry(tcp_once(&mut s)?).or_default() += 1;
            }
            Ok(counts)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("client panicked"))??
}

#[test]
fn tcp_round_robin_through_the_vip() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let (lab, mut dp, _srv) = lab_with_service(Protocol::Tcp, Scheduler::Rr, &[1, 1])?;
    let counts = tcp_distribution(&lab, 120)?;
    let (a, b) = (counts["r0"], counts["r1"]);
    assert_eq!(a + b, 120);
    assert!(a.abs_diff(b) <= 6, "rr over 120 connections: {counts:?}");
    let e = dp.service(&vip(Protocol::Tcp, PORT))?;
    assert_eq!(e.stats.conns, 120);
    assert_eq!(e.dests[0].stats.conns as usize, a);
    assert_eq!(e.dests[1].stats.conns as usize, b);
    // Every packet in one direction has one in the other at least (handshake, data, fin).
    assert!(
        e.stats.inpkts >= 120 * 4 && e.stats.outpkts >= 120 * 3,
        "{:?}",
        e.stats
    );
    // The forwarding was done by XDP (not only by the kernel fallback).
    let c = dp.counters()?;
    let xdp_fwd =
        c[ebpf_common::counter::FWD_REDIRECT as usize] + c[ebpf_common::counter::FWD_TX as usize];
    assert!(
        xdp_fwd > 120 * 5,
        "XDP forwarded {xdp_fwd} packets; counters {c:?}"
    );
    // `xlvs status` sees the same.
    let status = String::from_utf8(lab.xlvs(&["status"])?.stdout)?;
    assert!(status.contains("interfaces  l0 l1 l2"), "{status}");
    assert!(
        status
            .lines()
            .any(|l| l.split_whitespace().eq(["conn_new", "120"])),
        "{status}"
    );
    Ok(())
}

#[test]
fn tcp_weighted_round_robin_and_quiescing() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let (lab, mut dp, _srv) = lab_with_service(Protocol::Tcp, Scheduler::Wrr, &[3, 1])?;
    let counts = tcp_distribution(&lab, 120)?;
    assert!(
        (84..=96).contains(&counts["r0"]),
        "wrr 3:1 over 120 connections: {counts:?}"
    );

    // Open a connection to each real, then quiesce r0 (weight 0) and remove r1 entirely: both
    // open connections must keep working, and new ones must go nowhere but r0... which is
    // quiesced, so they fail; with r0 back to weight 1 they all go to r0.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<Result<Vec<String>>>();
    let client = lab.client.run_in(move || {
        let run = || -> Result<Vec<String>> {
            let mut streams = Vec::new();
            let mut names = Vec::new();
            while names.len() < 2 || names[0] == names[1] {
                let mut s = connect()?;
                let n = tcp_once(&mut s)?;
                if !names.contains(&n) {
                    names.push(n);
                    streams.push(s);
                }
            }
            rx.recv()?; // the director changes its tables now
            let mut after = Vec::new();
            for s in streams.iter_mut() {
                writeln!(s, "again")?;
                let mut line = String::new();
                BufReader::new(s.try_clone()?).read_line(&mut line)?;
                after.push(line.trim().to_string());
            }
            Ok(after)
        };
        let _ = done_tx.send(run());
    });
    std::thread::sleep(Duration::from_millis(500));
    let svc = vip(Protocol::Tcp, PORT);
    let mut quiesced = DestConfig::new(lab.real_ip(0), PORT);
    quiesced.forward = Forward::Masq;
    quiesced.weight = 0;
    dp.edit_dest(&svc, &quiesced)?;
    dp.del_dest(&svc, lab.real_ip(1), PORT)?;
    tx.send(())?;
    let after = done_rx.recv_timeout(Duration::from_secs(10))??;
    let _ = client.join();
    let mut after_sorted = after.clone();
    after_sorted.sort();
    assert_eq!(
        after_sorted,
        vec!["r0 again", "r1 again"],
        "open connections survive"
    );

    // No real can take new connections now: a connect times out (SYN dropped, counted).
    let refused = lab
        .client
        .run_in(|| {
            TcpStream::connect_timeout(
                &SocketAddr::new(IpAddr::V4(VIP), PORT),
                Duration::from_millis(500),
            )
            .is_err()
        })
        .join()
        .map_err(|_| anyhow::anyhow!("client panicked"))??;
    assert!(
        refused,
        "no destination available: connection must not be established"
    );
    assert!(dp.counters()?[ebpf_common::counter::DROP_NO_DEST as usize] >= 1);

    quiesced.weight = 1;
    dp.edit_dest(&svc, &quiesced)?;
    let counts = tcp_distribution(&lab, 10)?;
    assert_eq!(counts.get("r0"), Some(&10), "{counts:?}");
    Ok(())
}

#[test]
fn udp_sessions_stick_replies_come_from_the_vip_and_counters_match() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let (lab, mut dp, _srv) = lab_with_service(Protocol::Udp, Scheduler::Rr, &[1, 1])?;
    const SOCKETS: usize = 10;
    const PER_SOCKET: usize = 5;
    const PAYLOAD: &[u8] = b"0123456789";
    let per_socket = lab
        .client
        .run_in(|| -> Result<Vec<Vec<String>>> {
            let vip = SocketAddr::new(IpAddr::V4(VIP), PORT);
            let mut all = Vec::new();
            for _ in 0..SOCKETS {
                let s = UdpSocket::bind("198.18.1.2:0")?;
                s.set_read_timeout(Some(Duration::from_secs(2)))?;
                let mut names = Vec::new();
                for _ in 0..PER_SOCKET {
                    s.send_to(PAYLOAD, vip)?;
                    let mut buf = [0u8; 64];
                    let (n, from) = s.recv_from(&mut buf)?;
                    anyhow::ensure!(from == vip, "reply from {from}, not the VIP");
                    names.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
                all.push(names);
            }
            Ok(all)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("client panicked"))???;
    for names in &per_socket {
        assert!(
            names.iter().all(|n| n == &names[0]),
            "a flow moved between reals: {names:?}"
        );
    }
    let to_r0 = per_socket.iter().filter(|n| n[0] == "r0").count();
    assert!((4..=6).contains(&to_r0), "rr over 10 flows: {to_r0}");

    let e = dp.service(&vip(Protocol::Udp, PORT))?;
    let sent = (SOCKETS * PER_SOCKET) as u64;
    assert_eq!(e.stats.conns, SOCKETS as u64);
    assert_eq!(e.stats.inpkts, sent);
    assert_eq!(e.stats.inbytes, sent * (20 + 8 + PAYLOAD.len() as u64));
    assert_eq!(e.stats.outpkts, sent);
    assert_eq!(e.stats.outbytes, sent * (20 + 8 + 2));
    let conns = dp.connections()?;
    assert_eq!(conns.len(), SOCKETS);
    assert!(conns.iter().all(|c| c.state == "UDP" && c.expires > 290));
    Ok(())
}

#[test]
fn traffic_not_for_a_vip_is_left_to_the_kernel() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let (lab, dp, _srv) = lab_with_service(Protocol::Tcp, Scheduler::Rr, &[1])?;
    // The client reaches a real server directly (routed by the director's kernel) and the
    // director's own address: both pass through XDP untouched.
    let _direct = servers::tcp(
        &lab.reals[0],
        SocketAddr::new(lab.real_ip(0), 8081),
        "direct",
    )?;
    let name = lab
        .client
        .run_in(|| -> Result<String> {
            let mut s =
                TcpStream::connect_timeout(&"198.18.2.2:8081".parse()?, Duration::from_secs(3))?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            tcp_once(&mut s)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("client panicked"))???;
    assert_eq!(name, "direct");
    let c = dp.counters()?;
    assert!(c[ebpf_common::counter::PASS_NOT_VIP as usize] >= 6, "{c:?}");
    assert_eq!(c[ebpf_common::counter::CONN_NEW as usize], 0);
    Ok(())
}

#[test]
fn attach_errors_are_clear_and_leave_nothing_attached() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let lab = Lab::new(1)?;
    lab.xlvs(&["detach"])?;
    let err = lab
        .xlvs(&["attach", "l0", "nosuchif"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("no such interface: nosuchif"), "{err}");
    let status = String::from_utf8(lab.xlvs(&["status"])?.stdout)?;
    assert!(
        status.contains("interfaces  (none)"),
        "nothing half-attached: {status}"
    );
    let out = String::from_utf8(lab.xlvs(&["attach", "l0"])?.stdout)?;
    assert_eq!(out, "l0: attached\n");
    let out = String::from_utf8(lab.xlvs(&["attach", "l0", "l1"])?.stdout)?;
    assert_eq!(out, "l0: already attached\nl1: attached\n");
    let link = String::from_utf8(lab.director.ip(&["link", "show", "l1"])?.stdout)?;
    assert!(link.contains("prog/xdp"), "{link}");
    Ok(())
}

fn program_id(lab: &Lab) -> Result<String> {
    let status = String::from_utf8(lab.xlvs(&["status"])?.stdout)?;
    Ok(status
        .lines()
        .find_map(|l| l.strip_prefix("program     id "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_default()
        .to_string())
}

#[test]
fn reload_swaps_the_program_and_keeps_connections() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let (lab, mut dp, _srv) = lab_with_service(Protocol::Tcp, Scheduler::Rr, &[1, 1])?;
    let before = program_id(&lab)?;
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let client = lab.client.run_in(move || -> Result<(String, Vec<String>)> {
        let mut s = connect()?;
        let name = tcp_once(&mut s)?;
        rx.recv()?; // the program is reloaded now
        let mut echoes = Vec::new();
        let mut r = BufReader::new(s.try_clone()?);
        for i in 0..5 {
            writeln!(s, "after{i}")?;
            let mut line = String::new();
            r.read_line(&mut line)?;
            echoes.push(line.trim().to_string());
        }
        Ok((name, echoes))
    });
    std::thread::sleep(Duration::from_millis(300));
    let out = String::from_utf8(lab.xlvs(&["reload"])?.stdout)?;
    assert_eq!(out, "l0: reloaded\nl1: reloaded\nl2: reloaded\n");
    tx.send(())?;
    let (name, echoes) = client
        .join()
        .map_err(|_| anyhow::anyhow!("client panicked"))???;
    let want: Vec<String> = (0..5).map(|i| format!("{name} after{i}")).collect();
    assert_eq!(
        echoes, want,
        "the open connection kept its real across the reload"
    );
    let after = program_id(&lab)?;
    assert_ne!(before, after, "a new program runs");
    let link = String::from_utf8(lab.director.ip(&["link", "show", "l0"])?.stdout)?;
    assert!(link.contains(&format!("prog/xdp id {after}")), "{link}");
    // Tables and counters survived.
    assert_eq!(dp.service(&vip(Protocol::Tcp, PORT))?.stats.conns, 1);
    Ok(())
}

#[test]
fn rules_set_with_ipvsadm_carry_real_traffic() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let lab = Lab::new(2)?;
    let mut srv = Vec::new();
    for (i, ns) in lab.reals.iter().enumerate() {
        srv.push(servers::tcp(
            ns,
            SocketAddr::new(lab.real_ip(i), PORT),
            &format!("r{i}"),
        )?);
    }
    let run = |args: &str| lab.ipvsadm(args);
    run("-A -t 198.18.100.1:80 -s rr")?;
    run("-a -t 198.18.100.1:80 -r 198.18.2.2:80 -m")?;
    run("-a -t 198.18.100.1:80 -r 198.18.3.2:80 -m")?;
    let counts = tcp_distribution(&lab, 10)?;
    assert_eq!(
        (counts["r0"], counts["r1"]),
        (5, 5),
        "strict rr through ipvsadm's rules"
    );
    let stats = run("-Ln --stats")?;
    assert!(
        stats.contains("TCP  198.18.100.1:80                    10"),
        "{stats}"
    );
    let conns = run("-Lnc")?;
    assert_eq!(
        conns
            .lines()
            .filter(|l| l.contains("198.18.100.1:80"))
            .count(),
        10,
        "{conns}"
    );
    Ok(())
}

#[test]
fn lc_sends_new_connections_to_the_real_with_fewest_and_the_timers_run() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let (lab, mut dp, _srv) = lab_with_service(Protocol::Tcp, Scheduler::Lc, &[1, 1])?;
    let status = String::from_utf8(lab.xlvs(&["status"])?.stdout)?;
    assert!(
        status.contains("timers      running"),
        "attach starts the timers: {status}"
    );
    let (close_tx, close_rx) = std::sync::mpsc::channel::<()>();
    let (names_tx, names_rx) = std::sync::mpsc::channel::<Result<(String, Vec<String>)>>();
    let client = lab.client.run_in(move || {
        let run = || -> Result<(String, Vec<String>)> {
            // One long connection: both reals idle, lc takes the first.
            let mut long = connect()?;
            let first = tcp_once(&mut long)?;
            // Short ones: the long one weighs 256 (active), each closed one 1 (inactive).
            let mut short = Vec::new();
            for _ in 0..20 {
                let mut s = connect()?;
                short.push(tcp_once(&mut s)?);
            }
            names_tx.send(Ok((first.clone(), short.clone())))?;
            close_rx.recv()?;
            drop(long);
            Ok((first, short))
        };
        if let Err(e) = run() {
            let _ = names_tx.send(Err(e));
        }
    });
    let (first, short) = names_rx.recv_timeout(Duration::from_secs(20))??;
    assert_eq!(first, "r0");
    assert!(short.iter().all(|n| n == "r1"), "{short:?}");
    // The listing agrees: r0 one active, r1 twenty inactive (TIME_WAIT).
    std::thread::sleep(Duration::from_millis(300));
    let e = dp.service(&vip(Protocol::Tcp, PORT))?;
    assert_eq!((e.dests[0].active_conns, e.dests[0].inact_conns), (1, 0));
    assert_eq!((e.dests[1].active_conns, e.dests[1].inact_conns), (0, 20));
    // Closing the long one makes r0 the least connected (1 inactive against 20).
    close_tx.send(())?;
    let _ = client.join();
    std::thread::sleep(Duration::from_millis(300));
    let next = tcp_distribution(&lab, 3)?;
    assert_eq!(next.get("r0"), Some(&3), "{next:?}");
    Ok(())
}
