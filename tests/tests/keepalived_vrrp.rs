//! An HA pair as operators run it during a migration: our `keepalived` (VRRP + a virtual
//! server) on one director, Debian's keepalived 2.2.7 on the other, one VIP. Ours is master;
//! stopping it hands the VIP over at once (priority 0), restarting it takes the VIP back
//! (preemption), and `kill -9` makes the backup take over after the master-down interval.
//! The VIP is on exactly one node once things settle. Needs root and /usr/sbin/keepalived.

use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use xlvs_tests::keepalived::{Keepalived, Workdir, ipvsadm_on, wait_listing_on};
use xlvs_tests::lab::Pins;
use xlvs_tests::netns::{Netns, is_root, unique_prefix, veth};
use xlvs_tests::poll::wait_for;

const REAL_KEEPALIVED: &str = "/usr/sbin/keepalived";
const VIP: &str = "198.18.71.100";

fn has_vip(ns: &Netns) -> bool {
    ns.ip(&[
        "-o",
        "addr",
        "show",
        "dev",
        if ns.name.ends_with('a') { "va" } else { "vb" },
    ])
    .map(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("{VIP}/32")))
    .unwrap_or(false)
}

fn instance(state: &str, ifname: &str, priority: u8) -> String {
    format!(
        "vrrp_instance VI_1 {{\n    state {state}\n    interface {ifname}\n    virtual_router_id 61\n    \
         priority {priority}\n    advert_int 1\n    virtual_ipaddress {{\n        {VIP}/32 dev {ifname}\n    }}\n}}\n"
    )
}

/// Debian's keepalived, VRRP only, stopped by PID on drop.
struct RealKeepalived(Child);

impl Drop for RealKeepalived {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Two directors `a` (va, 198.18.71.1) and `b` (vb, 198.18.71.2) on one link, and scratch pins
/// for ours: (prefix, a, b, pins).
fn pair(tag: &str) -> Result<(String, Netns, Netns, Pins)> {
    let p = unique_prefix(tag);
    let a = Netns::new(&format!("{p}a"))?;
    let b = Netns::new(&format!("{p}b"))?;
    veth(&a, "va", &b, "vb")?;
    a.ip(&["addr", "add", "198.18.71.1/24", "dev", "va"])?;
    b.ip(&["addr", "add", "198.18.71.2/24", "dev", "vb"])?;
    let pins = Pins::scratch(&p, 4096);
    Ok((p, a, b, pins))
}

#[test]
fn ha_pair_with_keepalived_2_2_7() -> Result<()> {
    if !is_root() || !std::path::Path::new(REAL_KEEPALIVED).exists() {
        xlvs_tests::skip("needs root and {REAL_KEEPALIVED}");
        return Ok(());
    }
    let (p, a, b, pins) = pair("xv")?;
    let dir = Workdir::new(&p)?;

    // Theirs: BACKUP, priority 100.
    let theirs_conf = dir.path("theirs.conf");
    std::fs::write(&theirs_conf, instance("BACKUP", "vb", 100))?;
    let log = std::fs::File::create(dir.path("theirs.log"))?;
    let _theirs = RealKeepalived(
        b.command(REAL_KEEPALIVED)
            .args(["-n", "-l", "-G", "-P", "-f"])
            .arg(&theirs_conf)
            .arg("-p")
            .arg(dir.path("theirs.pid"))
            .arg("-r")
            .arg(dir.path("theirs-vrrp.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start keepalived")?,
    );

    // Ours: MASTER, priority 150, and a virtual server on the VIP.
    let ours_conf = dir.path("keepalived.conf");
    std::fs::write(
        &ours_conf,
        format!(
            "{}virtual_server {VIP} 80 {{\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n    \
             real_server 198.18.71.50 80 {{\n        weight 1\n    }}\n}}\n",
            instance("MASTER", "va", 150)
        ),
    )?;
    let mut ours = Keepalived::start_in(&a, &pins.0, &dir, &ours_conf)?;
    // The first user of a pin directory loads the XDP program (seconds on a busy machine).
    wait_listing_on(&pins.0, Duration::from_secs(30), |t| {
        t.contains("198.18.71.50:80")
    })
    .with_context(|| ours.log_text())?;
    wait_for("ours becomes master", Duration::from_secs(10), || {
        has_vip(&a)
    })?;
    std::thread::sleep(Duration::from_secs(2));
    assert!(has_vip(&a) && !has_vip(&b), "one VIP holder: ours");

    // Graceful stop: priority 0 → theirs takes over at once; our services are released.
    ours.signal(libc::SIGTERM)?;
    ours.wait(Duration::from_secs(10))?;
    let took = wait_for("theirs takes over", Duration::from_secs(5), || has_vip(&b))?;
    assert!(!has_vip(&a), "ours released the VIP on stop");
    assert!(
        took < Duration::from_secs(2),
        "priority 0 takeover took {took:?}"
    );
    let listing = ipvsadm_on(&pins.0, &["-Ln"])?;
    assert!(!listing.contains("198.18.71.50"), "{listing}");

    // Restart: higher priority preempts.
    let mut ours = Keepalived::start_in(&a, &pins.0, &dir, &ours_conf)?;
    wait_for("ours preempts", Duration::from_secs(10), || has_vip(&a))?;
    wait_for("theirs releases", Duration::from_secs(5), || !has_vip(&b))?;

    // kill -9: no priority 0; theirs waits for the master-down interval (3 adverts + skew).
    ours.kill9()?;
    let took = wait_for(
        "theirs takes over after a crash",
        Duration::from_secs(10),
        || has_vip(&b),
    )?;
    assert!(
        took > Duration::from_millis(2500),
        "took over too early: {took:?}"
    );
    // The crashed node's address stays on its interface (nobody removed it) but it no longer
    // answers adverts; the data plane still has the service.
    let listing = ipvsadm_on(&pins.0, &["-Ln"])?;
    assert!(listing.contains("198.18.71.50"), "{listing}");
    Ok(())
}

/// `no_accept`: as master (not the address owner) our node holds the VIP but drops traffic
/// addressed to it; with the default `accept` the same master answers.
#[test]
fn no_accept_master_drops_traffic_to_its_vip() -> Result<()> {
    use std::net::{SocketAddr, TcpListener, TcpStream};
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let (p, a, b, pins) = pair("xa")?;
    // A server on every address of a, the VIP included once it is there.
    let _listener = a
        .run_in(|| TcpListener::bind("0.0.0.0:8081"))
        .join()
        .map_err(|_| anyhow::anyhow!("listener thread"))??;
    let reachable = || -> bool {
        b.run_in(|| {
            TcpStream::connect_timeout(
                &SocketAddr::new(VIP.parse().unwrap(), 8081),
                Duration::from_millis(500),
            )
            .is_ok()
        })
        .join()
        .unwrap_or(Ok(false))
        .unwrap_or(false)
    };
    for (mode, expect) in [("    no_accept\n", false), ("", true)] {
        let dir = Workdir::new(&format!("{p}{}", expect as u8))?;
        let conf = dir.path("keepalived.conf");
        std::fs::write(
            &conf,
            instance("BACKUP", "va", 150)
                .replace("    priority 150\n", &format!("    priority 150\n{mode}")),
        )?;
        let mut ours = Keepalived::start_in(&a, &pins.0, &dir, &conf)?;
        wait_for("ours becomes master", Duration::from_secs(10), || {
            has_vip(&a)
        })?;
        let rules = a.exec("nft", &["list", "ruleset"])?;
        assert_eq!(
            reachable(),
            expect,
            "mode {mode:?}:\n{}\n{}",
            ours.log_text(),
            String::from_utf8_lossy(&rules.stdout)
        );
        ours.signal(libc::SIGTERM)?;
        ours.wait(Duration::from_secs(10))?;
        assert!(!has_vip(&a));
    }
    // Nothing of ours is left in the firewall.
    let rules = a.exec("nft", &["list", "ruleset"])?;
    assert!(!String::from_utf8_lossy(&rules.stdout).contains("no_accept_VI_1"));
    Ok(())
}
