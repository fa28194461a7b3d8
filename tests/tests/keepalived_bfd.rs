//! keepalived's own BFD (`bfd_instance`) against real peers: FRR's bfdd and Debian's
//! keepalived 2.2.7.
//!
//! * With FRR bfdd as the BFD neighbour and 2.2.7 as the VRRP peer (priority 120): our
//!   instance (priority 100, `track_bfd { B1 weight 50 }`) is MASTER while the session is
//!   up; killing bfdd makes the session expire after 3 × 50 ms, our priority falls back to
//!   100 and 2.2.7 takes over; the real server with `BFD_CHECK` leaves the table and comes
//!   back with the session. Hostile packets (wrong TTL, authentication, unknown
//!   discriminator, bad length) sent meanwhile change nothing and are counted.
//! * With 2.2.7's BFD as the neighbour: the session comes Up again, VRRP and the real follow.
//!
//! Needs root, /usr/sbin/keepalived and FRR (/usr/lib/frr/bfdd).

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use xlvs_tests::keepalived::{
    Keepalived, REAL_KEEPALIVED, RealKeepalived, Workdir, ipvsadm_on, wait_listing_on,
};
use xlvs_tests::lab::Pins;
use xlvs_tests::netns::{Netns, is_root, unique_prefix, veth};
use xlvs_tests::poll::wait_every;
use xlvs_tests::routing::Frr;

const BFDD: &str = "/usr/lib/frr/bfdd";

fn has_vip(ns: &Netns, dev: &str) -> bool {
    ns.ip(&["-o", "addr", "show", "dev", dev])
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("198.18.79.100/32"))
        .unwrap_or(false)
}

fn pair(tag: &str) -> Result<(String, Netns, Netns)> {
    let p = unique_prefix(tag);
    let a = Netns::new(&format!("{p}a"))?;
    let b = Netns::new(&format!("{p}b"))?;
    veth(&a, "va", &b, "vb")?;
    a.ip(&["addr", "add", "198.18.79.1/24", "dev", "va"])?;
    b.ip(&["addr", "add", "198.18.79.2/24", "dev", "vb"])?;
    Ok((p, a, b))
}

/// A BFD control packet from 198.18.79.2 (`mutate` edits the 24 bytes), sent with `ttl`.
fn hostile(b: &Netns, ttl: u32, mutate: impl Fn(&mut Vec<u8>) + Send + 'static) -> Result<()> {
    b.run_in(move || -> Result<()> {
        let s = UdpSocket::bind("198.18.79.2:0")?;
        s.set_ttl(ttl)?;
        let mut p = vec![
            0x20, 0xc0, 3, 24, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0, 0, 0xc3, 0x50, 0,
            0, 0xc3, 0x50, 0, 0, 0, 0,
        ];
        mutate(&mut p);
        s.send_to(&p, "198.18.79.1:3784".parse::<SocketAddr>()?)?;
        Ok(())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("sender thread"))??
}

#[test]
fn track_bfd_and_bfd_check_with_frr_bfdd_and_a_2_2_7_vrrp_peer() -> Result<()> {
    if !is_root() || !Path::new(REAL_KEEPALIVED).exists() || !Path::new(BFDD).exists() {
        xlvs_tests::skip(&format!("needs root, {REAL_KEEPALIVED} and {BFDD}"));
        return Ok(());
    }
    let (p, a, b) = pair("kbf")?;
    let dir = Workdir::new(&p)?;
    let frr = Frr::start_bfdd(
        &b,
        &format!("{p}-bfdd"),
        "hostname r\n!\nbfd\n peer 198.18.79.1 local-address 198.18.79.2\n  \
         receive-interval 50\n  transmit-interval 50\n  detect-multiplier 3\n !\n!\n",
    )?;
    // 2.2.7: VRRP peer at 120, no BFD of its own.
    let theirs_conf = dir.path("theirs.conf");
    std::fs::write(
        &theirs_conf,
        "vrrp_instance VI_B {\n state BACKUP\n interface vb\n virtual_router_id 79\n \
         priority 120\n version 3\n advert_int 0.1\n virtual_ipaddress {\n  198.18.79.100/32 dev vb\n }\n}\n",
    )?;
    let theirs = RealKeepalived::start(&b, &dir, "theirs", &theirs_conf, &["-P"])?;
    let pins = Pins::scratch(&p, 4096);
    let conf = dir.path("ours.conf");
    std::fs::write(
        &conf,
        "bfd_instance B1 {\n neighbor_ip 198.18.79.2\n source_ip 198.18.79.1\n min_rx 50\n \
         min_tx 50\n multiplier 3\n}\n\
         vrrp_instance VI_B {\n state BACKUP\n interface va\n virtual_router_id 79\n \
         priority 100\n version 3\n advert_int 0.1\n virtual_ipaddress {\n  198.18.79.100/32 dev va\n }\n \
         track_bfd {\n  B1 weight 50\n }\n}\n\
         virtual_server 198.18.79.100 80 {\n lb_algo rr\n lb_kind DR\n protocol TCP\n \
         real_server 198.18.79.2 80 {\n  BFD_CHECK {\n   name B1\n  }\n }\n \
         real_server 198.18.79.3 80 {\n  weight 1\n }\n}\n",
    )?;
    let ours = Keepalived::start_with_args(&a, &pins.0, &dir, &conf, &["-D"], &[])?;
    let listing = || ipvsadm_on(&pins.0, &["-Ln"]).unwrap_or_default();
    wait_listing_on(&pins.0, Duration::from_secs(30), |t| {
        t.contains("198.18.79.3:80")
    })
    .with_context(|| ours.log_text())?;
    wait_for("BFD up at FRR", Duration::from_secs(10), || {
        frr.bfd_status("198.18.79.1") == "up"
    })
    .with_context(|| ours.log_text())?;
    ours.wait_log("BFD_Instance(B1) Entering Up state", Duration::from_secs(5))?;
    wait_for(
        "ours MASTER with BFD up (150 > 120)",
        Duration::from_secs(10),
        || has_vip(&a, "va") && !has_vip(&b, "vb"),
    )
    .with_context(|| format!("{}\n{}", ours.log_text(), theirs.log_text()))?;
    wait_for(
        "BFD_CHECK real in the table",
        Duration::from_secs(5),
        || listing().contains("198.18.79.2:80"),
    )?;

    // Hostile packets while the session is up: none of them changes anything.
    hostile(&b, 64, |_| {})?; // TTL below 255 (GTSM)
    hostile(&b, 255, |p| p[1] |= 0x04)?; // authentication
    hostile(&b, 255, |p| p[8..12].copy_from_slice(&[9, 9, 9, 9]))?; // unknown discriminator
    hostile(&b, 255, |p| p[3] = 30)?; // length field wrong
    hostile(&b, 255, |p| p.truncate(10))?; // too short
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(frr.bfd_status("198.18.79.1"), "up");
    assert!(has_vip(&a, "va"));

    // bfdd dies: the session expires after 3 × 50 ms; 2.2.7 (120) takes over from our 100.
    let bfdd = frr.pid("bfdd").context("bfdd's pid")?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(bfdd),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    let t = wait_for(
        "2.2.7 takes over after BFD loss",
        Duration::from_secs(5),
        || has_vip(&b, "vb"),
    )
    .with_context(|| ours.log_text())?;
    eprintln!("VIP moved {t:?} after bfdd was killed");
    ours.wait_log("BFD_Instance(B1) Expired after", Duration::from_secs(2))?;
    ours.wait_log("Tracked BFD instance B1 is DOWN", Duration::from_secs(2))?;
    wait_for("BFD_CHECK real removed", Duration::from_secs(5), || {
        !listing().contains("198.18.79.2:80")
    })?;
    assert!(listing().contains("198.18.79.3:80"));
    drop(frr);

    // 2.2.7's own BFD as the neighbour (port 3784 is free again in b).
    let theirs_bfd_conf = dir.path("theirs-bfd.conf");
    std::fs::write(
        &theirs_bfd_conf,
        "bfd_instance B1 {\n neighbor_ip 198.18.79.1\n source_ip 198.18.79.2\n min_rx 50\n \
         min_tx 50\n multiplier 3\n}\n",
    )?;
    let theirs_bfd = RealKeepalived::start(&b, &dir, "theirs-bfd", &theirs_bfd_conf, &["-D"])?;
    // Ours reaches Up only through 2.2.7's Init/Up packets naming our discriminator (2.2.7
    // logs no session states).
    wait_for("up again with 2.2.7", Duration::from_secs(10), || {
        ours.log_text()
            .matches("BFD_Instance(B1) Entering Up state")
            .count()
            >= 2
    })
    .with_context(|| format!("{}\n{}", theirs_bfd.log_text(), ours.log_text()))?;
    ours.wait_log("Tracked BFD instance B1 is UP", Duration::from_secs(5))?;
    wait_for("ours MASTER again (150)", Duration::from_secs(10), || {
        has_vip(&a, "va") && !has_vip(&b, "vb")
    })?;
    wait_for("BFD_CHECK real back", Duration::from_secs(5), || {
        listing().contains("198.18.79.2:80")
    })?;
    drop(theirs_bfd);
    drop(theirs);

    // Every hostile packet was refused and counted (logged at stop).
    let mut ours = ours;
    ours.signal(libc::SIGTERM)?;
    ours.wait(Duration::from_secs(10))?;
    let log = ours.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("BFD: packets discarded:"))
        .with_context(|| log.clone())?;
    for reason in [
        "bad ttl 1",
        "authentication 1",
        "no session 1",
        "length mismatch 1",
        "too short 1",
    ] {
        assert!(line.contains(reason), "{line}");
    }
    Ok(())
}

/// Polls every 10 ms: the times measured are BFD's detection times.
fn wait_for(what: &str, limit: Duration, f: impl Fn() -> bool) -> Result<Duration> {
    wait_every(what, limit, Duration::from_millis(10), f)
}
