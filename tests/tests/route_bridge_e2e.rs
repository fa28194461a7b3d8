//! The route bridge end to end, one director behind a real FRR 8.4 router, in phases that share
//! one data plane (its load is the expensive part):
//! 1. own bird: the ECMP VIP announced, withdrawn on quorum loss, drained with a worse MED by
//!    `xlvs routes drain`, a VIP held by a vrrp_instance withdrawn when it leaves MASTER
//!    (track_file → FAULT); a reload changes the attributes without resetting the session, a
//!    broken reload changes nothing; `xlvs routes` shows it all;
//! 2. SIGKILL of keepalived: withdrawn at the router within 1.5 s (the liveness device), bird
//!    left running; the restart adopts it (same pid) and announces again;
//! 3. `--dont-release-ipvs` stop and restart: the VIP never leaves the router's FIB; without a
//!    restart it leaves when `restart_grace` ends, and the own bird stops;
//! 4. SIGTERM: withdrawn before keepalived exits, own bird stopped;
//! 5. an existing bird driven through its socket (and refused when it does not include the
//!    part, when its socket does not answer, when it runs in another namespace);
//! 6. own FRR (zebra + bgpd): announce, SIGKILL withdraw within 1.5 s, SIGTERM; an existing
//!    FRR gets the bridge's part beside the user's own (and one of another AS is refused);
//! 7. OSPF: the VIP as a stub /32 of the area at the router (own bird).
//!
//! Needs root, FRR and bird.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use xlvs_tests::cluster::{Cluster, real_addr};
use xlvs_tests::keepalived::{Keepalived, Workdir, ipvsadm_on};
use xlvs_tests::routing::{Bird, BridgeRun, Frr, daemons_installed, fib_nexthops, wait_until};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 99, 1);
const VIP_S: &str = "198.18.99.1";
/// Held by vrrp_instance VI_1.
const VRRP_VIP_S: &str = "198.18.99.2";
/// The crash bound of the issue: withdrawn at the peer within 1.5 s.
const CRASH_BOUND: Duration = Duration::from_millis(1500);

fn router_bgp(a: Ipv4Addr, asn: u32) -> String {
    format!(
        "hostname r\nrouter bgp 65000\n bgp router-id 198.18.30.1\n no bgp ebgp-requires-policy\n neighbor {a} remote-as {asn}\n neighbor {a} timers 1 3\n neighbor {a} timers connect 1\n address-family ipv4 unicast\n  maximum-paths 8\n exit-address-family\n"
    )
}

const ROUTER_OSPF: &str = "hostname r\ninterface br0\n ip ospf network point-to-point\n ip ospf hello-interval 1\n ip ospf dead-interval 4\nrouter ospf\n ospf router-id 198.18.30.1\n network 198.18.30.0/24 area 0.0.0.0\n timers throttle spf 0 50 500\n timers lsa min-arrival 0\n";

/// keepalived.conf of the director: a DR service on each VIP whose real's health is a file
/// (`fail` present: down), VIP 2 held by vrrp_instance VI_1 (FAULT while `vrrp_fault` holds 1),
/// and `bridge` as the route_bridge block.
fn conf(dir: &Workdir, bridge: &str) -> String {
    let mut s = format!(
        "global_defs {{\n    router_id d0\n    vrrp_version 3\n}}\nvrrp_track_file vf {{\n    file {}\n    weight 0\n}}\nvrrp_instance VI_1 {{\n    state BACKUP\n    interface e0\n    virtual_router_id 51\n    priority 100\n    advert_int 0.1\n    track_file {{\n        vf\n    }}\n    virtual_ipaddress {{\n        {VRRP_VIP_S}/32 dev e0\n    }}\n}}\n",
        dir.path("vrrp_fault").display()
    );
    for vip in [VIP_S, VRRP_VIP_S] {
        s.push_str(&format!(
            "virtual_server {vip} 80 {{\n    delay_loop 1\n    lb_algo mh\n    lb_kind DR\n    protocol TCP\n    real_server {} 80 {{\n        weight 1\n        MISC_CHECK {{\n            misc_path \"/bin/sh -c '! test -e {}'\"\n            misc_timeout 1\n            retry 0\n        }}\n    }}\n}}\n",
            real_addr(0),
            dir.path("fail").display()
        ));
    }
    s.push_str(bridge);
    s.push('\n');
    s
}

fn bird_bridge(extra: &str) -> String {
    format!(
        "route_bridge {{\n    daemon bird\n    local_as 65101\n    router_id 198.18.30.11\n    neighbor 198.18.30.1 remote_as 65000\n    hold_time 3\n    keepalive 1\n    connect_retry 1\n    withdraw_delay 0.1\n    restart_grace 10\n    draining {{\n        med 500\n    }}\n{extra}}}"
    )
}

struct Bed {
    c: Cluster,
    router: Frr,
    dir: Workdir,
    run: BridgeRun,
}

impl Bed {
    fn routed(&self, vip: &str) -> bool {
        !fib_nexthops(&self.c.router.name, vip).is_empty()
    }

    fn wait(
        &self,
        vip: &str,
        present: bool,
        ka: &Keepalived,
        within: Duration,
    ) -> Result<Duration> {
        // Absence must hold on a second look: one empty read is not yet a withdrawal.
        let settled = || {
            self.routed(vip) == present
                && (present || {
                    std::thread::sleep(Duration::from_millis(50));
                    !self.routed(vip)
                })
        };
        wait_until(within, settled).with_context(|| {
            format!(
                "{vip} {} the router's FIB within {within:?}\n--- keepalived log:\n{}\n--- router:\n{}\n--- xlvs routes:\n{}",
                if present { "never reached" } else { "never left" },
                ka.log_text(),
                self.router.vtysh(&["show bgp summary", "show ip route"]).unwrap_or_default(),
                self.routes()
            )
        })
    }

    fn write(&self, bridge: &str) -> PathBuf {
        let p = self.dir.path("keepalived.conf");
        std::fs::write(&p, conf(&self.dir, bridge)).expect("write keepalived.conf");
        p
    }

    fn start(&self, bridge: &str, args: &[&str]) -> Result<Keepalived> {
        let conf = self.write(bridge);
        let d = &self.c.directors[0];
        for f in ["keepalived.pid", "checkers.pid", "vrrp.pid"] {
            let _ = std::fs::remove_file(self.dir.path(f));
        }
        Keepalived::start_with_args(&d.ns, &d.opts, &self.dir, &conf, args, &[])
    }

    /// One scrape of `xlvs metrics` reading the state keepalived publishes (in the default run
    /// directory, where the route bridge keeps its own files too).
    fn scrape_metrics(&self) -> Result<String> {
        use std::io::{Read, Write};
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let d = &self.c.directors[0];
        let mut child = std::process::Command::new(xlvs_tests::lab::binary("xlvs")?)
            .arg("--pin-dir")
            .arg(&d.opts.pin_dir)
            .args(["metrics", "--listen", &format!("127.0.0.1:{port}")])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let got = (|| -> Result<String> {
            let t0 = Instant::now();
            loop {
                if let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                    c.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")?;
                    let mut text = String::new();
                    c.read_to_string(&mut text)?;
                    return Ok(text);
                }
                ensure!(
                    t0.elapsed() < Duration::from_secs(10),
                    "xlvs metrics never listened"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        })();
        let _ = child.kill();
        let _ = child.wait();
        got
    }

    fn routes(&self) -> String {
        match self.c.directors[0].xlvs(&["routes"]) {
            Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
            Err(e) => format!("{e:#}"),
        }
    }

    /// The router's MED for `vip` (None: no path).
    fn med(&self, vip: &str) -> Option<u64> {
        let j = self
            .router
            .vtysh(&[&format!("show ip bgp {vip}/32 json")])
            .ok()?;
        let v: serde_json::Value = serde_json::from_str(&j).ok()?;
        let p = v["paths"].as_array()?.first()?;
        Some(p["metric"].as_u64().unwrap_or(0))
    }

    /// When the router's session with the director was established (changes on a reset).
    /// How many times the router's session with us came up (FRR's establishment time is
    /// derived from the uptime and may differ by a second between two reads).
    fn sessions_established(&self) -> Option<u64> {
        let j = self
            .router
            .vtysh(&["show bgp neighbors 198.18.30.11 json"])
            .ok()?;
        let v: serde_json::Value = serde_json::from_str(&j).ok()?;
        v["198.18.30.11"]["connectionsEstablished"].as_u64()
    }

    fn bird_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.run.0.join("bird/bird.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

fn alive(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
}

/// `kill -9` of keepalived: the VIP must leave the router's FIB within the crash bound.
fn crash_withdraw(b: &Bed, ka: &mut Keepalived, what: &str) -> Result<()> {
    let t = Instant::now();
    ka.signal(libc::SIGKILL)?;
    wait_until(Duration::from_secs(5), || !b.routed(VIP_S))?;
    let took = t.elapsed();
    ka.wait(Duration::from_secs(5))?;
    eprintln!("{what}: withdrawn {took:?} after SIGKILL");
    ensure!(
        took <= CRASH_BOUND,
        "{what}: withdrawn {took:?} after SIGKILL"
    );
    Ok(())
}

#[test]
fn one_director_announces_through_bird_and_frr() -> Result<()> {
    if !xlvs_tests::skip::require_root() {
        return Ok(());
    }
    if !daemons_installed() {
        xlvs_tests::skip::skip("FRR and bird are not installed");
        return Ok(());
    }
    let c = Cluster::new(1, 1, &[VIP])?;
    let run = BridgeRun::new(&c.directors[0].opts.pin_dir);
    let router = Frr::start(
        &c.router,
        &format!("{}rt", c.prefix),
        &router_bgp(c.directors[0].addr, 65101),
        &[],
    )?;
    let dir = Workdir::new(&format!("{}d0", c.prefix))?;
    std::fs::write(dir.path("vrrp_fault"), "0\n")?;
    let b = Bed {
        c,
        router,
        dir,
        run,
    };
    let d = &b.c.directors[0];

    // --- 1. own bird (and a neighbor that never answers) ------------------------------------
    let mut ka = b.start(
        &bird_bridge("    neighbor 198.18.30.99 remote_as 65000\n"),
        &[],
    )?;
    b.wait(VIP_S, true, &ka, Duration::from_secs(20))?;
    b.wait(VRRP_VIP_S, true, &ka, Duration::from_secs(10))?;
    assert_eq!(fib_nexthops(&b.c.router.name, VIP_S), ["198.18.30.11"]);
    let view = b.routes();
    for want in [
        "daemon own bird".to_string(),
        format!("{VIP_S:<24} yes      announced  healthy"),
        format!("{VRRP_VIP_S:<24} yes      announced  healthy"),
        "neighbor 198.18.30.1 AS 65000: Established".to_string(),
        format!("    sent {VIP_S}/32"),
    ] {
        assert!(view.contains(&want), "{want:?} not in\n{view}");
    }
    // `xlvs metrics` exports what the bridge announces.
    let metrics = b.scrape_metrics()?;
    for want in [
        format!("xlvs_bridge_announced{{prefix=\"{VIP_S}/32\",via=\"bird\"}} 1"),
        format!("xlvs_bridge_changes_total{{prefix=\"{VIP_S}/32\",via=\"bird\"}} 1"),
    ] {
        assert!(metrics.contains(&want), "{want:?} not in\n{metrics}");
    }
    let bird = b.bird_pid().context("own bird's pid file")?;
    let sessions = Some(
        b.sessions_established()
            .context("the router's session count")?,
    );

    // Quorum loss withdraws (both VIPs' real is the same), recovery announces.
    std::fs::write(b.dir.path("fail"), "")?;
    b.wait(VIP_S, false, &ka, Duration::from_secs(10))?;
    let view = b.routes();
    assert!(
        view.contains(&format!("{VIP_S:<24} no       withdrawn  -"))
            && view.contains("lost quorum"),
        "{view}"
    );
    std::fs::remove_file(b.dir.path("fail"))?;
    b.wait(VIP_S, true, &ka, Duration::from_secs(10))?;

    // VRRP: FAULT withdraws the VIP it holds, not the ECMP one.
    std::fs::write(b.dir.path("vrrp_fault"), "1\n")?;
    b.wait(VRRP_VIP_S, false, &ka, Duration::from_secs(5))?;
    assert!(b.routed(VIP_S));
    assert!(
        b.routes().contains("vrrp_instance VI_1 is FAULT"),
        "{}",
        b.routes()
    );
    std::fs::write(b.dir.path("vrrp_fault"), "0\n")?;
    b.wait(VRRP_VIP_S, true, &ka, Duration::from_secs(5))?;

    // Maintenance: announced with the draining MED, then back.
    assert_eq!(b.med(VIP_S), Some(0));
    d.xlvs(&["routes", "drain"])?;
    wait_until(Duration::from_secs(5), || b.med(VIP_S) == Some(500)).with_context(|| b.routes())?;
    assert!(b.routes().contains("announced  draining"), "{}", b.routes());
    d.xlvs(&["routes", "undrain"])?;
    wait_until(Duration::from_secs(5), || b.med(VIP_S) == Some(0))?;

    // The dead neighbor is reported with its line; the next reload drops it.
    ka.wait_log(
        "route_bridge: neighbor 198.18.30.99 (AS 65000) has not come up for 10 s",
        Duration::from_secs(20),
    )?;
    assert!(
        b.routes().contains("neighbor 198.18.30.99 AS 65000: "),
        "{}",
        b.routes()
    );

    // Reload: new attributes, the same session; a broken block is refused as a whole.
    b.write(&bird_bridge("    healthy {\n        med 70\n    }\n"));
    ka.signal(libc::SIGHUP)?;
    wait_until(Duration::from_secs(5), || b.med(VIP_S) == Some(70))
        .with_context(|| ka.log_text())?;
    b.write(&bird_bridge("    daemon zebra\n"));
    ka.signal(libc::SIGHUP)?;
    ka.wait_log(
        "Reload failed: keeping the running configuration",
        Duration::from_secs(5),
    )?;
    ensure!(
        b.med(VIP_S) == Some(70),
        "a refused reload changed the announcement"
    );
    assert_eq!(
        b.sessions_established(),
        sessions,
        "no session reset for attribute changes"
    );
    assert_eq!(b.bird_pid(), Some(bird));

    // --- 2. SIGKILL: withdrawn within the bound, bird left for the restart to adopt ----------
    crash_withdraw(&b, &mut ka, "own bird")?;
    assert!(alive(bird), "own bird outlives keepalived");
    let mut ka = b.start(&bird_bridge(""), &[])?;
    b.wait(VIP_S, true, &ka, Duration::from_secs(10))?;
    assert_eq!(
        b.bird_pid(),
        Some(bird),
        "the restart adopted the running bird"
    );
    assert!(ka.log_text().contains("driving own bird"));

    // --- 3. --dont-release-ipvs stop and restart: never withdrawn -----------------------------
    ka.signal(libc::SIGTERM)?;
    ka.wait(Duration::from_secs(10))?;
    let mut ka = b.start(&bird_bridge(""), &["--dont-release-ipvs"])?;
    b.wait(VIP_S, true, &ka, Duration::from_secs(10))?;
    ka.signal(libc::SIGTERM)?;
    let mut gaps = 0;
    let t = Instant::now();
    while ka.wait(Duration::from_millis(1)).is_err() {
        gaps += usize::from(!b.routed(VIP_S));
    }
    let mut ka2 = b.start(&bird_bridge(""), &[])?;
    let bird = b.bird_pid().context("own bird")?;
    while t.elapsed() < Duration::from_secs(3) {
        gaps += usize::from(!b.routed(VIP_S));
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        gaps,
        0,
        "the VIP left the FIB during the restart:\n{}",
        ka2.log_text()
    );
    assert!(
        ka2.log_text()
            .contains("took the announcements over from the lease holder"),
        "{}",
        ka2.log_text()
    );
    drop(ka);

    // --- 4. SIGTERM: withdrawn before keepalived is gone, own bird stopped -------------------
    ka2.signal(libc::SIGTERM)?;
    ka2.wait(Duration::from_secs(10))?;
    assert!(
        !b.routed(VIP_S),
        "SIGTERM withdraws before keepalived exits"
    );
    wait_until(Duration::from_secs(3), || !alive(bird))?;

    // --- 4b. --dont-release-ipvs and no restart: the holder keeps the VIP for restart_grace,
    // then the VIP goes with it and so does the own bird ------------------------------------
    let short = bird_bridge("").replace("restart_grace 10", "restart_grace 2");
    let mut ka = b.start(&short, &["--dont-release-ipvs"])?;
    b.wait(VIP_S, true, &ka, Duration::from_secs(10))?;
    let bird = b.bird_pid().context("own bird")?;
    ka.signal(libc::SIGTERM)?;
    ka.wait(Duration::from_secs(10))?;
    std::thread::sleep(Duration::from_millis(1000));
    assert!(b.routed(VIP_S), "kept during the grace");
    b.wait(VIP_S, false, &ka, Duration::from_secs(5))?;
    wait_until(Duration::from_secs(5), || !alive(bird))
        .context("own bird stopped by the holder")?;

    // --- 5. an existing bird -----------------------------------------------------------------
    let part = b.dir.path("xlvs-part.conf");
    let main = format!(
        "router id 198.18.30.11;\nprotocol device {{ scan time 10; }}\ninclude \"{}\";\n",
        part.display()
    );
    std::fs::write(&part, "")?;
    let existing = Bird::start(&d.ns, &format!("{}eb", b.c.prefix), &main)?;
    let block = format!(
        "    instance existing\n    control_socket {}\n    config_file {}\n",
        existing.socket().display(),
        part.display()
    );
    let mut ka = b.start(&bird_bridge(&block), &[])?;
    b.wait(VIP_S, true, &ka, Duration::from_secs(20))?;
    assert!(
        b.routes().contains("daemon existing bird"),
        "{}",
        b.routes()
    );
    assert!(
        existing
            .birdc("show protocols")?
            .contains("xlvs_198_18_30_1")
    );
    crash_withdraw(&b, &mut ka, "existing bird")?;
    drop(existing);
    // A bird that does not include the part.
    let lone = Bird::start(
        &d.ns,
        &format!("{}lb", b.c.prefix),
        "router id 198.18.30.11;\nprotocol device { }\n",
    )?;
    let block = format!(
        "    instance existing\n    control_socket {}\n    config_file {}\n",
        lone.socket().display(),
        part.display()
    );
    let mut ka = b.start(&bird_bridge(&block), &[])?;
    ka.wait_log("does not read", Duration::from_secs(10))?;
    let view = b.routes();
    assert!(
        view.contains(&format!("add `include \"{}\";`", part.display())),
        "{view}"
    );
    assert!(!b.routed(VIP_S));
    ka.signal(libc::SIGTERM)?;
    ka.wait(Duration::from_secs(10))?;
    drop(lone);
    // A socket nobody answers; a bird of another namespace (the router's).
    let foreign = Bird::start(
        &b.c.router,
        &format!("{}fb", b.c.prefix),
        "router id 198.18.30.1;\nprotocol device { }\n",
    )?;
    for (socket, expected) in [
        (b.dir.path("nobody.ctl"), "cannot connect to".to_string()),
        (
            foreign.socket(),
            "runs in another network namespace".to_string(),
        ),
    ] {
        let block = format!("    control_socket {}\n", socket.display());
        let mut ka = b.start(&bird_bridge(&block), &[])?;
        ka.wait_log(&expected, Duration::from_secs(10))?;
        assert!(ka.log_text().contains(&socket.display().to_string()));
        // keepalived itself runs on: its service is programmed.
        let listing = ipvsadm_on(&d.opts, &["-Ln"])?;
        assert!(listing.contains(&format!("{VIP_S}:80")), "{listing}");
        assert!(!b.routed(VIP_S));
        ka.signal(libc::SIGTERM)?;
        ka.wait(Duration::from_secs(10))?;
    }
    drop(foreign);

    // --- 6. own FRR ----------------------------------------------------------------------------
    let frr = bird_bridge("").replace("daemon bird", "daemon frr");
    let mut ka = b.start(&frr, &[])?;
    b.wait(VIP_S, true, &ka, Duration::from_secs(30))
        .with_context(|| {
            let out = d.ns.exec(
                "vtysh",
                &[
                    "--vty_socket",
                    &b.run.0.join("frr").display().to_string(),
                    "-c",
                    "show running-config",
                    "-c",
                    "show ip bgp",
                    "-c",
                    "show ip route",
                ],
            );
            let logs = ["bgpd.log", "bgpd.conf"]
                .map(|f| std::fs::read_to_string(b.run.0.join("frr").join(f)).unwrap_or_default())
                .join("\n----\n");
            out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_else(|e| e.to_string())
                + &logs
                + &ka.log_text()
        })?;
    let view = b.routes();
    assert!(
        view.contains("daemon own frr") && view.contains("bgpd pid"),
        "{view}"
    );
    assert!(view.contains(&format!("    sent {VIP_S}/32")), "{view}");
    d.xlvs(&["routes", "drain"])?;
    wait_until(Duration::from_secs(5), || b.med(VIP_S) == Some(500)).with_context(|| b.routes())?;
    d.xlvs(&["routes", "undrain"])?;
    crash_withdraw(&b, &mut ka, "own FRR")?;
    let mut ka = b.start(&frr, &[])?;
    b.wait(VIP_S, true, &ka, Duration::from_secs(10))?;
    let pids = b.run.pids();
    ka.signal(libc::SIGTERM)?;
    ka.wait(Duration::from_secs(10))?;
    assert!(!b.routed(VIP_S));
    wait_until(Duration::from_secs(5), || pids.iter().all(|p| !alive(*p)))
        .context("own zebra/bgpd stopped with keepalived")?;

    // --- 6b. an existing FRR: the bridge adds its part beside the user's, only that ------------
    let user_bgp = "hostname mine\nrouter bgp 65101\n bgp router-id 198.18.30.11\n neighbor 198.18.30.250 remote-as 65999\n";
    let existing = Frr::start(&d.ns, &format!("{}ef", b.c.prefix), user_bgp, &[])?;
    let block = format!("    control_socket {}\n", existing.dir.0.display());
    let mut ka = b.start(
        &frr.replace("route_bridge {\n", &format!("route_bridge {{\n{block}")),
        &[],
    )?;
    b.wait(VIP_S, true, &ka, Duration::from_secs(30))?;
    assert!(b.routes().contains("daemon existing frr"), "{}", b.routes());
    let running = existing.vtysh(&["show running-config"])?;
    for want in [
        "neighbor 198.18.30.250 remote-as 65999",
        "neighbor 198.18.30.1 description xlvs-route-bridge",
        &format!("network {VIP_S}/32 route-map XLVS-"),
    ] {
        assert!(running.contains(want), "{want:?} not in\n{running}");
    }
    crash_withdraw(&b, &mut ka, "existing FRR")?;
    drop(existing);
    let other_as = Frr::start(
        &d.ns,
        &format!("{}oa", b.c.prefix),
        "hostname mine\nrouter bgp 65555\n",
        &[],
    )?;
    let block = format!("    control_socket {}\n", other_as.dir.0.display());
    let mut ka = b.start(
        &frr.replace("route_bridge {\n", &format!("route_bridge {{\n{block}")),
        &[],
    )?;
    ka.wait_log(
        "runs `router bgp 65555`, but route_bridge",
        Duration::from_secs(10),
    )?;
    assert!(!b.routed(VIP_S));
    ka.signal(libc::SIGTERM)?;
    ka.wait(Duration::from_secs(10))?;
    drop(other_as);

    // --- 7. OSPF (own bird): the VIP as a stub /32 of area 0 ------------------------------------
    let mut b = b;
    b.router.add(&b.c.router, "ospfd", ROUTER_OSPF)?;
    let ospf_router = &b.router;
    let ospf = "route_bridge {\n    daemon bird\n    router_id 198.18.30.11\n    ospf {\n        area 0\n        interface e0 hello 1 dead 4 type ptp\n    }\n}";
    let ka = b.start(ospf, &[])?;
    let routed = || !fib_nexthops(&b.c.router.name, VIP_S).is_empty();
    wait_until(Duration::from_secs(30), routed).with_context(|| {
        format!(
            "{}\n{}",
            ka.log_text(),
            ospf_router
                .vtysh(&["show ip ospf neighbor", "show ip ospf route"])
                .unwrap_or_default()
        )
    })?;
    let r = ospf_router.vtysh(&["show ip route 198.18.99.1/32"])?;
    assert!(r.contains("Known via \"ospf\""), "{r}");
    std::fs::write(b.dir.path("fail"), "")?;
    // OSPF moves no faster than bird's 5 s MinLSInterval between two router LSAs.
    wait_until(Duration::from_secs(15), || !routed()).context("OSPF withdrawal")?;
    Ok(())
}
