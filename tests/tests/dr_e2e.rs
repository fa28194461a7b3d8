//! Direct routing end to end: the director only changes MACs; each real holds the VIP on its
//! loopback and answers the client itself (here routed back by the director's kernel, untouched
//! by XDP since no reply entry exists). Needs root.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::Result;
use dataplane::Dataplane;
use dataplane::model::*;
use xlvs_tests::lab::{CLIENT, Lab, VIP};
use xlvs_tests::netns::is_root;
use xlvs_tests::servers;

#[test]
fn dr_reals_receive_the_vip_packet_and_answer_the_client_directly() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let lab = Lab::new(2)?;
    let vip = SocketAddr::new(IpAddr::V4(VIP), 80);
    let mut srv = Vec::new();
    for (i, ns) in lab.reals.iter().enumerate() {
        ns.ip(&["addr", "add", "198.18.100.1/32", "dev", "lo"])?;
        srv.push(
            servers::tcp(ns, vip, &format!("r{i}")).map_err(|e| anyhow::anyhow!("server: {e}"))?,
        );
    }
    let mut dp = Dataplane::open(&lab.opts)?;
    let svc = ServiceAddr::Inet {
        proto: Protocol::Tcp,
        addr: IpAddr::V4(VIP),
        port: 80,
    };
    let mut cfg = ServiceConfig::new(svc);
    cfg.scheduler = Scheduler::Rr;
    dp.add_service(&cfg)?;
    // Added from the director's namespace, as ipvsadm would be run there: the data plane then has
    // the kernel resolve the reals' MACs (DR packets stay addressed to the VIP, so the kernel
    // cannot forward an unresolved one for us).
    let (opts, reals) = (lab.opts.clone(), [lab.real_ip(0), lab.real_ip(1)]);
    lab.director
        .run_in(move || -> Result<()> {
            let mut dp = Dataplane::open(&opts)?;
            for ip in reals {
                dp.add_dest(&svc, &DestConfig::new(ip, 80))?; // ipvsadm's default: -g
            }
            Ok(())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("director thread panicked"))???;
    // Resolution was started for both reals, so even the first SYN is not dropped for want of a
    // MAC (a drop would cost the client a 1 s retransmission).
    std::thread::sleep(Duration::from_millis(200));
    let neigh = String::from_utf8(lab.director.ip(&["neigh", "show"])?.stdout)?;
    for i in 0..2 {
        let ip = lab.real_ip(i).to_string();
        assert!(
            neigh
                .lines()
                .any(|l| l.starts_with(&format!("{ip} ")) && l.contains("lladdr")),
            "director resolved {ip}: {neigh}"
        );
    }
    let started = std::time::Instant::now();
    let names = lab
        .client
        .run_in(move || -> Result<Vec<(String, String)>> {
            let mut out = Vec::new();
            for _ in 0..10 {
                let mut s = TcpStream::connect_timeout(&vip, Duration::from_secs(3))
                    .map_err(|e| anyhow::anyhow!("connect: {e}"))?;
                s.set_read_timeout(Some(Duration::from_secs(3)))?;
                let mut r = BufReader::new(s.try_clone()?);
                let mut greeting = String::new();
                r.read_line(&mut greeting)?;
                writeln!(s, "ping")?;
                let mut echo = String::new();
                r.read_line(&mut echo)?;
                out.push((greeting.trim().to_string(), echo.trim().to_string()));
            }
            Ok(out)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("client panicked"))???;
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "no SYN retransmission needed: {:?}",
        started.elapsed()
    );
    let to_r0 = names.iter().filter(|(g, _)| g == "r0").count();
    // rr positions are per CPU: the split is exact per CPU, close overall.
    assert!(
        (3..=7).contains(&to_r0),
        "rr over 10 connections: {names:?}"
    );
    assert!(names.iter().all(|(g, e)| e == &format!("{g} ping")));
    // The reals saw the client's own address (nothing was NATed).
    let conns = dp.connections()?;
    assert_eq!(conns.len(), 10);
    assert!(
        conns
            .iter()
            .all(|c| c.client.ip() == IpAddr::V4(CLIENT) && c.forward == Forward::Route)
    );
    let e = dp.service(&svc)?;
    assert_eq!(e.stats.conns, 10);
    assert_eq!(e.stats.outpkts, 0, "replies bypass the data plane in DR");
    assert!(e.stats.inpkts >= 10 * 4);
    Ok(())
}

/// A one-armed director (one interface on the LAN it shares with the router and the reals, as in
/// an ECMP cluster) sends every packet back out of the interface it came in on. On a veth that
/// must not be XDP_TX: its frames wait in the peer's queue until other traffic flushes them
/// (connections took 100-400 ms here, or never completed on an otherwise quiet link).
#[test]
fn a_one_armed_director_forwards_back_out_of_its_interface_without_delay() -> Result<()> {
    use std::net::Ipv4Addr;
    use xlvs_tests::cluster::{Cluster, director_addr, real_addr};
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let vip = Ipv4Addr::new(198, 18, 99, 1);
    let c = Cluster::new(1, 1, &[vip])?;
    let d = &c.directors[0];
    // Where the kernel does not forward, XDP cannot forward either, and `status` says so.
    d.ns.sysctl("net.ipv4.conf.e0.forwarding", "0")?;
    let status = |d: &xlvs_tests::cluster::Director| -> Result<String> {
        let out = d.xlvs(&["status"])?;
        Ok(String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let off = status(d)?;
    assert!(
        off.contains("forwarding is off on e0"),
        "status warns about forwarding: {off}"
    );
    d.ns.sysctl("net.ipv4.conf.e0.forwarding", "1")?;
    c.router.ip(&[
        "route",
        "add",
        &format!("{vip}/32"),
        "via",
        &director_addr(0).to_string(),
    ])?;
    let addr = SocketAddr::new(IpAddr::V4(vip), 80);
    let _server = servers::tcp(&c.reals[0], addr, "r0")?;
    let svc = ServiceAddr::Inet {
        proto: Protocol::Tcp,
        addr: IpAddr::V4(vip),
        port: 80,
    };
    let opts = d.opts.clone();
    d.ns.run_in(move || -> Result<()> {
        let mut dp = Dataplane::open(&opts)?;
        dp.add_service(&ServiceConfig::new(svc))?;
        dp.add_dest(&svc, &DestConfig::new(IpAddr::V4(real_addr(0)), 80))?;
        Ok(())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("director thread panicked"))???;
    std::thread::sleep(Duration::from_millis(200));
    let slowest = c
        .client
        .run_in(move || -> Result<Duration> {
            let mut slowest = Duration::ZERO;
            for i in 0..30 {
                let started = std::time::Instant::now();
                let s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
                    .map_err(|e| anyhow::anyhow!("connection {i}: connect: {e}"))?;
                s.set_read_timeout(Some(Duration::from_secs(3)))?;
                let mut greeting = String::new();
                BufReader::new(s)
                    .read_line(&mut greeting)
                    .map_err(|e| anyhow::anyhow!("connection {i}: greeting: {e}"))?;
                assert_eq!(greeting.trim(), "r0");
                slowest = slowest.max(started.elapsed());
            }
            Ok(slowest)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("client panicked"))???;
    // Each connection is two packets through the director; a wait for other traffic to flush
    // them shows as hundreds of milliseconds. (Generous for a loaded machine.)
    assert!(
        slowest < Duration::from_millis(500),
        "slowest connection through the one-armed director took {slowest:?}"
    );
    let on = status(d)?;
    assert!(
        !on.contains("forwarding is off"),
        "forwarding is on, no warning: {on}"
    );
    Ok(())
}
