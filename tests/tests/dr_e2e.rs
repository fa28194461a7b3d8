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
