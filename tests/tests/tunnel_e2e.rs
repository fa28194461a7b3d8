//! Tunnels end to end, and NAT/DR over IPv6: a dual-stack lab (client, director, one real), the
//! real decapsulating with the kernel's own tunnel devices (ipip, sit, ip6tnl, gre, ip6gre,
//! fou/GUE) and holding both VIPs on its loopback; rules through the `ipvsadm` binary; real
//! TCP through the VIP for every tunnel type × family pair IPVS accepts; a too-big upload
//! that only gets through after the client learns the tunnel's MTU from our ICMP. Needs root.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Result, bail};
use ebpf_common::counter;
use xlvs_tests::addrs::{R6 as REAL6, VIP6};
use xlvs_tests::lab::{Lab, Pins, binary};
use xlvs_tests::netns::{Netns, is_root};
use xlvs_tests::{decap, servers};

const VIP4: &str = "198.18.100.1";
const REAL4: &str = "198.18.2.2";

/// The lab with one real, IPv6 next to IPv4 (`Lab::add_ipv6`).
fn dual_stack_lab() -> Result<Lab> {
    let lab = Lab::new(1)?;
    lab.add_ipv6()?;
    Ok(lab)
}

/// Whether this kernel has the tunnel devices the real needs (ipip, sit, ip6tnl, gre, ip6gre,
/// fou); some minimal kernels have none of them.
fn kernel_has_tunnels(ns: &Netns) -> bool {
    let ok = ns.ip(&["link", "add", "probe", "type", "ipip"]).is_ok();
    let _ = ns.ip(&["link", "del", "probe"]);
    ok
}

/// The real as a tunnel endpoint for every type and family, both VIPs on its loopback: the
/// kernel's own devices when it has them, else the user-space endpoint (`decap`, through a TUN
/// device: the kernel still checks the inner packets and terminates TCP).
fn tunnel_endpoints(real: &Netns) -> Result<Option<(decap::Decap, Pins)>> {
    for key in ["all", "default"] {
        real.sysctl(&format!("net.ipv4.conf.{key}.rp_filter"), "0")?;
        // New tunnel devices get IPv6 (inner IPv6 needs it), without link-local addresses.
        real.sysctl(&format!("net.ipv6.conf.{key}.disable_ipv6"), "0")?;
    }
    real.ip(&["addr", "add", &format!("{VIP4}/32"), "dev", "lo"])?;
    real.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{VIP6}/128"),
        "dev",
        "lo",
        "nodad",
    ])?;
    if !kernel_has_tunnels(real) {
        eprintln!("this kernel has no ipip/sit/ip6tnl/gre/fou: user-space tunnel endpoint");
        // The endpoint must see the frames as sent, not merged by GRO; frames redirected to a
        // veth need a NAPI context, which an XDP program (ours, with empty tables: it passes
        // everything) gives it when GRO is off.
        let pins = Pins::scratch(&format!("{}x", real.name), 1024);
        let bin = binary("xlvs")?;
        let pin_dir = pins.0.pin_dir.to_str().unwrap_or_default().to_string();
        real.exec(
            bin.to_str().unwrap_or("xlvs"),
            &["--pin-dir", &pin_dir, "attach", "r0"],
        )?;
        real.exec("ethtool", &["-K", "r0", "gro", "off"])?;
        let d = decap::start(real, "r0", "dtun", REAL4.parse()?, REAL6.parse()?, 6080)?;
        return Ok(Some((d, pins)));
    }
    let dev = |args: &[&str]| -> Result<()> {
        real.ip(args)?;
        real.ip(&["link", "set", args[2], "up"])?;
        Ok(())
    };
    dev(&["link", "add", "t44", "type", "ipip", "local", REAL4])?;
    dev(&["link", "add", "t64", "type", "sit", "local", REAL4])?;
    dev(&[
        "link", "add", "t6", "type", "ip6tnl", "mode", "any", "local", REAL6,
    ])?;
    dev(&["link", "add", "g4", "type", "gre", "local", REAL4])?;
    dev(&["link", "add", "g6", "type", "ip6gre", "local", REAL6])?;
    real.ip(&["fou", "add", "port", "6080", "gue"])?;
    real.ip(&["fou", "add", "port", "6080", "gue", "-6"])?;
    Ok(None)
}

/// One TCP conversation through `vip` from the client: the greeting names the real, and a
/// line of `len` bytes comes back echoed.
fn talk(lab: &Lab, vip: SocketAddr, len: usize) -> Result<String> {
    lab.client
        .run_in(move || -> Result<String> {
            let mut s = TcpStream::connect_timeout(&vip, Duration::from_secs(3))
                .map_err(|e| anyhow::anyhow!("connect {vip}: {e}"))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            let mut r = BufReader::new(s.try_clone()?);
            let mut greeting = String::new();
            r.read_line(&mut greeting)?;
            let line = "x".repeat(len);
            writeln!(s, "{line}")?;
            let mut echo = String::new();
            r.read_line(&mut echo)?;
            if echo.trim_end() != format!("{} {line}", greeting.trim_end()) {
                bail!("echo through {vip}: {} bytes back", echo.len());
            }
            Ok(greeting.trim_end().to_string())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("client thread panicked"))??
}

/// A server that answers one connection, once the client has shut its side down, with the
/// number of bytes it received.
fn counting_server(ns: &Netns, at: SocketAddr) -> Result<()> {
    ns.run_in(move || -> Result<()> {
        let l = std::net::TcpListener::bind(at)?;
        std::thread::spawn(move || {
            if let Ok((mut c, _)) = l.accept() {
                let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
                let mut n = 0usize;
                let mut buf = [0u8; 65536];
                while let Ok(k) = std::io::Read::read(&mut c, &mut buf) {
                    if k == 0 {
                        break;
                    }
                    n += k;
                }
                let _ = writeln!(c, "{n}");
            }
        });
        Ok(())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("server thread panicked"))???;
    Ok(())
}

/// Sends `len` bytes through `vip` and returns what the server counted.
fn upload(lab: &Lab, vip: SocketAddr, len: usize) -> Result<usize> {
    lab.client
        .run_in(move || -> Result<usize> {
            let mut s = TcpStream::connect_timeout(&vip, Duration::from_secs(3))?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            s.write_all(&vec![b'u'; len])?;
            s.shutdown(std::net::Shutdown::Write)?;
            let mut line = String::new();
            BufReader::new(s).read_line(&mut line)?;
            Ok(line.trim().parse()?)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("client thread panicked"))??
}

fn addr(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse::<IpAddr>().unwrap(), port)
}

#[test]
fn every_tunnel_type_and_family_pair_carries_real_tcp() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let lab = dual_stack_lab()?;
    let real = &lab.reals[0];
    let decap = tunnel_endpoints(real)?;
    // (VIP, real, tunnel options): every pair IPVS accepts (other families: tunnels only).
    let cases: [(&str, &str, &str); 10] = [
        (VIP4, REAL4, "--tun-type ipip"),
        (VIP4, REAL4, "--tun-type gue --tun-port 6080 --tun-nocsum"),
        (VIP4, REAL4, "--tun-type gre --tun-csum"),
        (VIP6, REAL6, "--tun-type ipip"),
        (VIP6, REAL6, "--tun-type gue --tun-port 6080 --tun-csum"),
        (VIP6, REAL6, "--tun-type gre --tun-nocsum"),
        (VIP4, REAL6, "--tun-type ipip"),
        (VIP4, REAL6, "--tun-type gre --tun-csum"),
        (VIP6, REAL4, "--tun-type ipip"),
        (VIP6, REAL4, "--tun-type gue --tun-port 6080 --tun-remcsum"),
    ];
    let mut servers = Vec::new();
    for (i, (vip, rip, opts)) in cases.iter().enumerate() {
        let port = 8000 + i as u16;
        servers.push(
            servers::tcp(real, addr(vip, port), &format!("case{i}"))
                .map_err(|e| anyhow::anyhow!("server: {e}"))?,
        );
        let v = if vip.contains(':') {
            format!("[{vip}]:{port}")
        } else {
            format!("{vip}:{port}")
        };
        let r = if rip.contains(':') {
            format!("[{rip}]:{port}")
        } else {
            format!("{rip}:{port}")
        };
        lab.ipvsadm(&format!("-A -t {v} -s rr"))?;
        lab.ipvsadm(&format!("-a -t {v} -r {r} -i {opts}"))?;
    }
    let listing = lab.ipvsadm("-Ln")?;
    assert_eq!(listing.matches("Tunnel").count(), cases.len(), "{listing}");
    let saved = lab.ipvsadm("-Sn")?;
    for (i, (vip, rip, opts)) in cases.iter().enumerate() {
        let name = talk(&lab, addr(vip, 8000 + i as u16), 100)
            .map_err(|e| anyhow::anyhow!("{vip} -> {rip} {opts}: {e}"))?;
        assert_eq!(name, format!("case{i}"), "{vip} -> {rip} {opts}");
    }
    let c = dataplane::Dataplane::open(&lab.opts)?.counters()?;
    assert!(c[counter::FWD_TUNNEL as usize] >= 3 * cases.len() as u64);
    if let Some((d, _)) = &decap {
        assert_eq!(
            d.bad_checksums.load(std::sync::atomic::Ordering::Relaxed),
            0
        );
        assert!(d.delivered.load(std::sync::atomic::Ordering::Relaxed) >= 3 * cases.len() as u64);
    }
    // Families IPVS refuses for other methods are refused with its message, nothing added.
    let out = lab
        .director
        .command(binary("ipvsadm")?.to_str().unwrap())
        .args([
            "-a",
            "-t",
            "198.18.100.1:8000",
            "-r",
            "[2001:db8:2::9]:8000",
            "-g",
        ])
        .env("XLVS_PIN_DIR", &lab.opts.pin_dir)
        .output()?;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Different address family is allowed only for tunneling servers"
    );
    assert_eq!(lab.ipvsadm("-Sn")?, saved);
    Ok(())
}

#[test]
fn a_too_big_upload_gets_through_after_our_fragmentation_needed() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let lab = dual_stack_lab()?;
    let real = &lab.reals[0];
    let decap = tunnel_endpoints(real)?;
    counting_server(real, addr(VIP4, 80))?;
    counting_server(real, addr(VIP6, 80))?;
    lab.ipvsadm(&format!("-A -t {VIP4}:80 -s rr"))?;
    lab.ipvsadm(&format!(
        "-a -t {VIP4}:80 -r {REAL4}:80 -i --tun-type gre --tun-csum"
    ))?;
    lab.ipvsadm(&format!("-A -t [{VIP6}]:80 -s rr"))?;
    lab.ipvsadm(&format!("-a -t [{VIP6}]:80 -r [{REAL6}]:80 -i"))?;
    // Full-size segments (1500 bytes) no longer fit once encapsulated (1500 + 28 over GRE with
    // checksum, + 40 in IPv6): the client must learn 1472 / 1460 from our ICMP.
    assert_eq!(upload(&lab, addr(VIP4, 80), 200_000)?, 200_000);
    assert_eq!(upload(&lab, addr(VIP6, 80), 200_000)?, 200_000);
    let route4 = String::from_utf8(lab.client.ip(&["route", "get", VIP4])?.stdout)?;
    assert!(
        route4.contains("mtu 1472"),
        "client's PMTU to the VIP: {route4}"
    );
    let route6 = String::from_utf8(lab.client.ip(&["-6", "route", "get", VIP6])?.stdout)?;
    assert!(
        route6.contains("mtu 1460"),
        "client's PMTU to the VIP6: {route6}"
    );
    let c = dataplane::Dataplane::open(&lab.opts)?.counters()?;
    assert!(c[counter::ICMP_TOO_BIG_SENT as usize] >= 2, "{c:?}");
    if let Some((d, _)) = &decap {
        assert_eq!(
            d.bad_checksums.load(std::sync::atomic::Ordering::Relaxed),
            0
        );
    }
    Ok(())
}

#[test]
fn nat_and_dr_over_ipv6_carry_real_tcp() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let lab = dual_stack_lab()?;
    let real = &lab.reals[0];
    real.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{VIP6}/128"),
        "dev",
        "lo",
        "nodad",
    ])?;
    // NAT: the real listens on its own address; DR: on the VIP it holds.
    let _nat = servers::tcp(real, addr(REAL6, 8080), "nat6").map_err(|e| anyhow::anyhow!("{e}"))?;
    let _dr = servers::tcp(real, addr(VIP6, 81), "dr6").map_err(|e| anyhow::anyhow!("{e}"))?;
    lab.ipvsadm(&format!("-A -t [{VIP6}]:80 -s rr"))?;
    lab.ipvsadm(&format!("-a -t [{VIP6}]:80 -r [{REAL6}]:8080 -m"))?;
    lab.ipvsadm(&format!("-A -t [{VIP6}]:81 -s rr"))?;
    lab.ipvsadm(&format!("-a -t [{VIP6}]:81 -r [{REAL6}]:81 -g"))?;
    for _ in 0..3 {
        assert_eq!(talk(&lab, addr(VIP6, 80), 3000)?, "nat6");
        assert_eq!(talk(&lab, addr(VIP6, 81), 3000)?, "dr6");
    }
    let conns = lab.ipvsadm("-Lnc")?;
    assert!(conns.contains(&format!("[{REAL6}]:8080")), "{conns}");
    assert!(conns.contains(&format!("[{REAL6}]:81")), "{conns}");
    Ok(())
}

/// IPv4 without DF, too big once encapsulated: IPVS fragments the outer packet; XDP sends one
/// packet for one, so we hand it encapsulated (the client as outer source) to our kernel, which
/// forwards and fragments it. A 1472-byte UDP datagram sent without DF (1500 bytes of IP,
/// 1520 with IPIP, over 1500-byte links) reaches the real whole and its echo comes back.
#[test]
fn a_too_big_datagram_without_df_reaches_the_real_fragmented_by_our_kernel() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let lab = dual_stack_lab()?;
    let real = &lab.reals[0];
    let decap = tunnel_endpoints(real)?;
    let echo_at = addr(VIP4, 5353);
    let echo = real
        .run_in(move || -> Result<std::net::UdpSocket> {
            let s = std::net::UdpSocket::bind(echo_at)?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            Ok(s)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("echo thread panicked"))???;
    let echoing = std::thread::spawn(move || -> Result<usize> {
        let mut buf = [0u8; 2048];
        let (n, from) = echo.recv_from(&mut buf)?;
        echo.send_to(&buf[..n], from)?;
        Ok(n)
    });
    lab.ipvsadm(&format!("-A -u {VIP4}:5353 -s rr"))?;
    lab.ipvsadm(&format!("-a -u {VIP4}:5353 -r {REAL4}:5353 -i"))?;
    let datagram: Vec<u8> = (0..1472u32).map(|i| (i * 7 % 251) as u8).collect();
    let sent = datagram.clone();
    let answer = lab
        .client
        .run_in(move || -> Result<Vec<u8>> {
            use std::os::fd::AsRawFd;
            let s = std::net::UdpSocket::bind("0.0.0.0:0")?;
            // No DF (IP_PMTUDISC_DONT), as a sender that leaves fragmentation to the path.
            let dont: libc::c_int = libc::IP_PMTUDISC_DONT;
            // SAFETY: `dont` is a live c_int and the length given is its size.
            let rc = unsafe {
                libc::setsockopt(
                    s.as_raw_fd(),
                    libc::IPPROTO_IP,
                    libc::IP_MTU_DISCOVER,
                    &dont as *const _ as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as u32,
                )
            };
            anyhow::ensure!(
                rc == 0,
                "IP_MTU_DISCOVER: {}",
                std::io::Error::last_os_error()
            );
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.connect(echo_at)?;
            s.send(&sent)?;
            let mut buf = [0u8; 2048];
            let n = s.recv(&mut buf)?;
            Ok(buf[..n].to_vec())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("client thread panicked"))???;
    let received = echoing
        .join()
        .map_err(|_| anyhow::anyhow!("echo thread panicked"))??;
    assert_eq!(received, datagram.len(), "the real got the whole datagram");
    assert_eq!(answer, datagram, "byte for byte, there and back");
    let c = dataplane::Dataplane::open(&lab.opts)?.counters()?;
    assert_eq!(c[counter::TUN_KERNEL_FRAG as usize], 1, "{c:?}");
    if let Some((d, _)) = &decap {
        assert_eq!(
            d.bad_checksums.load(std::sync::atomic::Ordering::Relaxed),
            0
        );
    }
    Ok(())
}
