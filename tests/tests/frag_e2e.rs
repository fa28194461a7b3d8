//! End to end in network namespaces: UDP datagrams larger than the MTU through a NAT service,
//! fragmented by the client's kernel, reach the real server reassembled and byte-exact, and its
//! echo (fragmented by the real's kernel) comes back from the VIP; IPv4 and IPv6. Needs root.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Result, ensure};
use dataplane::Dataplane;
use dataplane::model::*;
use ebpf_common::counter;
use xlvs_tests::addrs::{CIP6 as CLIENT6, R6 as REAL6, VIP6};
use xlvs_tests::lab::{CLIENT, Lab, VIP};
use xlvs_tests::netns::{Netns, is_root};

const PORT: u16 = 5353;
const DATAGRAMS: usize = 5;
const SIZE: usize = 3000;

/// A UDP echo server (whole datagrams, up to 64 KiB) on `addr`, stopped on drop.
struct Echo(Arc<AtomicBool>);

impl Drop for Echo {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn echo(ns: &Netns, addr: SocketAddr) -> Result<Echo> {
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    ns.run_in(move || -> Result<()> {
        let sock = UdpSocket::bind(addr)?;
        sock.set_read_timeout(Some(Duration::from_millis(50)))?;
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !stop2.load(Ordering::Relaxed) {
                if let Ok((n, from)) = sock.recv_from(&mut buf) {
                    let _ = sock.send_to(&buf[..n], from);
                }
            }
        });
        Ok(())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("server thread panicked"))???;
    Ok(Echo(stop))
}

/// Sends `DATAGRAMS` datagrams of `SIZE` bytes from `bind` to `vip` and checks each echo is
/// byte-exact and comes from the VIP.
fn exchange(lab: &Lab, bind: SocketAddr, vip: SocketAddr) -> Result<()> {
    lab.client
        .run_in(move || -> Result<()> {
            let s = UdpSocket::bind(bind)?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            let mut buf = vec![0u8; 65536];
            for k in 0..DATAGRAMS {
                let data: Vec<u8> = (0..SIZE).map(|i| (i * 31 + k * 7) as u8).collect();
                s.send_to(&data, vip)?;
                let (n, from) = s.recv_from(&mut buf)?;
                ensure!(from == vip, "echo from {from}, not the VIP");
                ensure!(
                    buf[..n] == data[..],
                    "datagram {k}: {n} bytes came back, not the same"
                );
            }
            Ok(())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("client panicked"))??
}

#[test]
fn udp_datagrams_larger_than_the_mtu_cross_a_nat_service_both_ways() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let lab = Lab::new(1)?;
    lab.add_ipv6()?;
    let mut dp = Dataplane::open(&lab.opts)?;
    let real4 = lab.real_ip(0);
    let real6: IpAddr = REAL6.parse()?;
    let vip6: IpAddr = VIP6.parse()?;
    let mut servers = Vec::new();
    for (vip, real) in [(IpAddr::V4(VIP), real4), (vip6, real6)] {
        let addr = ServiceAddr::Inet {
            proto: Protocol::Udp,
            addr: vip,
            port: PORT,
        };
        dp.add_service(&ServiceConfig::new(addr))?;
        let mut d = DestConfig::new(real, PORT);
        d.forward = Forward::Masq;
        dp.add_dest(&addr, &d)?;
        servers.push(echo(&lab.reals[0], SocketAddr::new(real, PORT))?);
    }

    exchange(
        &lab,
        SocketAddr::new(IpAddr::V4(CLIENT), 0),
        SocketAddr::new(IpAddr::V4(VIP), PORT),
    )?;
    let c = dp.counters()?;
    // 3008 bytes of UDP in 1480-byte pieces: 3 fragments, 2 of them later ones, each way.
    assert_eq!(
        c[counter::FRAG_FIRST as usize],
        2 * DATAGRAMS as u64,
        "{c:?}"
    );
    assert_eq!(
        c[counter::FRAG_FORWARDED as usize],
        4 * DATAGRAMS as u64,
        "{c:?}"
    );

    exchange(
        &lab,
        SocketAddr::new(CLIENT6.parse()?, 0),
        SocketAddr::new(vip6, PORT),
    )?;
    let c = dp.counters()?;
    assert_eq!(
        c[counter::FRAG_FIRST as usize],
        4 * DATAGRAMS as u64,
        "{c:?}"
    );
    assert_eq!(
        c[counter::FRAG_FORWARDED as usize],
        8 * DATAGRAMS as u64,
        "{c:?}"
    );
    assert_eq!(c[counter::FRAG_UNTRACKED as usize], 0);
    // One connection per family, and the service saw one packet per datagram.
    assert_eq!(dp.connections()?.len(), 2);
    let e = dp.service(&ServiceAddr::Inet {
        proto: Protocol::Udp,
        addr: IpAddr::V4(VIP),
        port: PORT,
    })?;
    assert_eq!(
        (e.stats.inpkts, e.stats.outpkts),
        (DATAGRAMS as u64, DATAGRAMS as u64)
    );
    assert_eq!(
        e.stats.inbytes,
        DATAGRAMS as u64 * (SIZE as u64 + 8 + 3 * 20)
    );
    Ok(())
}
