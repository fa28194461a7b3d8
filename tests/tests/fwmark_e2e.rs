//! fwmark services end to end in network namespaces: the classic "sticky across 80 and 443"
//! setup of LVS operators. The mark rule is written with the real iptables in a scratch
//! namespace, saved with the real iptables-save and imported with `xlvs fwmark import`; the
//! service is made with our `ipvsadm` (`-A -f 1 -p`) or by our keepalived
//! (`virtual_server fwmark 1`); real TCP from the client through the VIP. Needs root.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, setsockopt, socket, sockopt,
};
use xlvs_tests::keepalived::{Keepalived, Workdir, ipvsadm, wait_listing};
use xlvs_tests::lab::{CLIENT, Lab, VIP};
use xlvs_tests::netns::{Netns, is_root};
use xlvs_tests::servers::{self, Server};

const CLIENT2: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 3);

/// A lab with two reals, each serving TCP on 80 and 443 (greeting `r<i>:<port>`), and a second
/// client address.
fn lab() -> Result<(Lab, Vec<Server>)> {
    let lab = Lab::new(2)?;
    lab.client
        .ip(&["addr", "add", "198.18.1.3/24", "dev", "c0"])?;
    let mut srv = Vec::new();
    for (i, ns) in lab.reals.iter().enumerate() {
        for port in [80, 443] {
            let addr = SocketAddr::new(lab.real_ip(i), port);
            srv.push(servers::tcp(ns, addr, &format!("r{i}:{port}"))?);
        }
    }
    Ok((lab, srv))
}

fn xlvs(lab: &Lab, args: &[&str]) -> Result<String> {
    lab.xlvs_ok(args)
}

/// The mark rule as LVS operators write it, made by the real iptables in a namespace of its own
/// and saved by the real iptables-save: the text `xlvs fwmark import` is fed.
fn iptables_save(lab: &Lab, rules: &[&[&str]]) -> Result<String> {
    let ns = Netns::new(&format!("{}i", lab.prefix))?;
    for r in rules {
        let mut args = vec!["-t", "mangle", "-A", "PREROUTING"];
        args.extend_from_slice(r);
        let out = ns.exec("iptables", &args)?;
        ensure!(
            out.status.success(),
            "iptables {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = ns.exec("iptables-save", &["-t", "mangle"])?;
    ensure!(out.status.success(), "iptables-save failed");
    Ok(String::from_utf8(out.stdout)?)
}

/// One TCP exchange from `src` to VIP:`port`: the greeting names the real and its port, the
/// echo must come from the same one.
fn exchange(src: Ipv4Addr, port: u16) -> Result<String> {
    let fd: OwnedFd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )?;
    let t = nix::sys::time::TimeVal::new(3, 0);
    setsockopt(&fd, sockopt::SendTimeout, &t)?;
    setsockopt(&fd, sockopt::ReceiveTimeout, &t)?;
    bind(fd.as_raw_fd(), &SockaddrIn::from(SocketAddrV4::new(src, 0)))?;
    connect(
        fd.as_raw_fd(),
        &SockaddrIn::from(SocketAddrV4::new(VIP, port)),
    )
    .with_context(|| format!("connect {src} -> {VIP}:{port}"))?;
    let mut s = TcpStream::from(fd);
    let mut r = BufReader::new(s.try_clone()?);
    let mut greeting = String::new();
    r.read_line(&mut greeting)?;
    let name = greeting.trim().to_string();
    writeln!(s, "ping")?;
    let mut echo = String::new();
    r.read_line(&mut echo)?;
    ensure!(echo.trim() == format!("{name} ping"), "{name} / {echo}");
    Ok(name)
}

/// Connections from `src` to the given ports in turn: the (real, port) names that answered.
fn session(lab: &Lab, src: Ipv4Addr, ports: &'static [u16]) -> Result<Vec<String>> {
    lab.client
        .run_in(move || {
            ports
                .iter()
                .map(|p| exchange(src, *p))
                .collect::<Result<Vec<_>>>()
        })
        .join()
        .map_err(|_| anyhow::anyhow!("client panicked"))??
}

fn real_of(name: &str) -> &str {
    name.split(':').next().unwrap_or("")
}

const PORTS: &[u16] = &[80, 443, 80, 443, 443, 80];

/// Every connection answered on the port it asked for; the reals that answered.
fn reals(names: &[String], ports: &[u16]) -> Vec<String> {
    for (n, p) in names.iter().zip(ports) {
        assert!(n.ends_with(&format!(":{p}")), "{names:?}");
    }
    names.iter().map(|n| real_of(n).to_string()).collect()
}

#[test]
fn one_fwmark_service_serves_80_and_443_and_persistence_sticks_across_them() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let (lab, _srv) = lab()?;
    let saved = iptables_save(
        &lab,
        &[&[
            "-d",
            "198.18.100.1/32",
            "-p",
            "tcp",
            "-m",
            "multiport",
            "--dports",
            "80,443",
            "-j",
            "MARK",
            "--set-mark",
            "1",
        ]],
    )?;
    assert!(saved.contains("--set-xmark 0x1/0xffffffff"), "{saved}");
    let file = std::env::temp_dir().join(format!("{}-mangle.save", lab.prefix));
    std::fs::write(&file, &saved)?;
    let imported = xlvs(&lab, &["fwmark", "import", file.to_str().context("path")?]);
    let _ = std::fs::remove_file(&file);
    assert_eq!(imported?, "imported 2 rules\n");
    assert_eq!(
        xlvs(&lab, &["fwmark", "list"])?,
        "--mark 1 -p tcp -d 198.18.100.1/32 --dport 80\n\
         --mark 1 -p tcp -d 198.18.100.1/32 --dport 443\n"
    );
    // Importing the same text again adds nothing and is no error.
    let mut again = lab
        .director
        .command(xlvs_tests::lab::binary("xlvs")?.to_str().context("path")?)
        .args([
            "--pin-dir",
            lab.opts.pin_dir.to_str().context("path")?,
            "fwmark",
            "import",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    again
        .stdin
        .take()
        .context("stdin")?
        .write_all(saved.as_bytes())?;
    let out = again.wait_with_output()?;
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout)?, "imported 0 rules\n");

    ipvsadm(&lab, &["-A", "-f", "1", "-s", "rr"])?;
    for r in ["198.18.2.2", "198.18.3.2"] {
        ipvsadm(&lab, &["-a", "-f", "1", "-r", r, "-m"])?;
    }
    // Without persistence: one service for both ports, rr over the reals whatever the port.
    let names = session(&lab, CLIENT, PORTS)?;
    let r = reals(&names, PORTS);
    assert!(
        r.iter().any(|x| x == "r0") && r.iter().any(|x| x == "r1"),
        "{names:?}"
    );

    // With persistence (-p): each client stays on one real across 80 and 443.
    ipvsadm(&lab, &["-E", "-f", "1", "-s", "rr", "-p", "300"])?;
    let first = reals(&session(&lab, CLIENT, PORTS)?, PORTS);
    assert!(first.iter().all(|x| *x == first[0]), "{first:?}");
    let second = reals(&session(&lab, CLIENT2, PORTS)?, PORTS);
    assert!(second.iter().all(|x| *x == second[0]), "{second:?}");
    assert_ne!(
        first[0], second[0],
        "rr places the second client on the other real"
    );

    // IPVS shows one template per client for the fwmark service.
    let listing = ipvsadm(&lab, &["-L", "-n", "-c"])?;
    let templates = listing.lines().filter(|l| l.starts_with("IP ")).count();
    assert_eq!(templates, 2, "{listing}");
    let stats = ipvsadm(&lab, &["-L", "-n", "--stats"])?;
    assert!(stats.contains("FWM  1"), "{stats}");
    Ok(())
}

#[test]
fn keepalived_virtual_server_fwmark_is_fed_by_the_classifier_and_warns_when_not() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let (lab, _srv) = lab()?;
    xlvs(
        &lab,
        &[
            "fwmark",
            "add",
            "--mark",
            "1",
            "-p",
            "tcp",
            "-d",
            "198.18.100.1",
            "--dport",
            "80,443",
        ],
    )?;
    let dir = Workdir::new(&lab.prefix)?;
    let conf = dir.path("keepalived.conf");
    let check = "        TCP_CHECK {\n            connect_port 80\n            connect_timeout 1\n        }\n";
    let mut text = String::from(
        "global_defs {\n    router_id test\n}\n\nvirtual_server fwmark 1 {\n    delay_loop 1\n    lb_algo rr\n    lb_kind NAT\n    persistence_timeout 300\n    protocol TCP\n",
    );
    for i in 0..2 {
        text.push_str(&format!(
            "    real_server 198.18.{}.2 0 {{\n{check}    }}\n",
            2 + i
        ));
    }
    // A fwmark virtual server no rule feeds.
    text.push_str("}\n\nvirtual_server fwmark 2 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    real_server 198.18.2.2 0 {\n    }\n}\n");
    let line = 1 + text
        .lines()
        .position(|l| l == "virtual_server fwmark 2 {")
        .context("line")?;
    std::fs::write(&conf, &text)?;
    let ka = Keepalived::start(&lab, &dir, &conf)?;
    let listing = wait_listing(&lab, Duration::from_secs(10), |t| {
        t.contains("FWM  1 rr persistent 300") && t.matches("Masq").count() >= 3
    })?;
    assert!(listing.contains("FWM  2 rr"), "{listing}");
    ka.wait_log(
        "virtual_server fwmark 2: no xlvs fwmark rule gives mark 2",
        Duration::from_secs(5),
    )?;
    let log = ka.log_text();
    assert!(log.contains(&format!("keepalived.conf:{line}:")), "{log}");
    assert!(!log.contains("virtual_server fwmark 1: no xlvs"), "{log}");

    let first = reals(&session(&lab, CLIENT, PORTS)?, PORTS);
    assert!(first.iter().all(|x| *x == first[0]), "{first:?}");
    let second = reals(&session(&lab, CLIENT2, PORTS)?, PORTS);
    assert!(second.iter().all(|x| *x == second[0]), "{second:?}");
    assert_ne!(first[0], second[0]);
    Ok(())
}
