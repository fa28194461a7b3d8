//! An ECMP director cluster end to end: three directors (own bird, own bird, own FRR) announce
//! the same VIPs through their route bridges to a real FRR 8.4 router doing ECMP
//! (`maximum-paths`, L4 multipath hash, BFD 150 ms × 3: faster timers flap on a loaded test
//! machine; the benchmark measures 50 ms × 3), clients behind the router, two reals on the
//! directors' LAN. The same keepalived.conf everywhere (mh, sloppy_tcp on), except
//! each director's FULLNAT local address:
//! * new connections spread over the three directors (DR, TUN and FULLNAT VIPs);
//! * a director whose reals fail (its health checks) withdraws and no client request is lost;
//! * DR and TUN connections survive the loss of the director they used (the router re-hashes
//!   them, the next director schedules their next segment to the same real: sloppy_tcp + mh);
//! * a director that dies silently is routed around once BFD notices, and the FULLNAT
//!   connections it carried end (their replies go to its local address) while the others run;
//! * SIGKILL of keepalived withdraws its VIPs within 1.5 s.
//!
//! Needs root, FRR and bird.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use dataplane::Dataplane;
use xlvs_tests::cluster::{CLIENT, Cluster, real_addr};
use xlvs_tests::decap;
use xlvs_tests::keepalived::{Keepalived, Workdir};
use xlvs_tests::routing::{BridgeRun, Frr, daemons_installed, fib_nexthops, wait_until};
use xlvs_tests::servers;

const DR: Ipv4Addr = Ipv4Addr::new(198, 18, 99, 1);
const TUN: Ipv4Addr = Ipv4Addr::new(198, 18, 99, 2);
const FNAT: Ipv4Addr = Ipv4Addr::new(198, 18, 99, 3);
const DIRECTORS: usize = 3;
const REALS: usize = 2;

/// Director i's FULLNAT local address (the reals route it back to director i).
fn laddr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 31, 11 + i as u8)
}

fn router_conf() -> (String, String) {
    let mut bgp = String::from(
        "hostname r\nrouter bgp 65000\n bgp router-id 198.18.30.1\n no bgp ebgp-requires-policy\n",
    );
    for i in 0..DIRECTORS {
        let a = xlvs_tests::cluster::director_addr(i);
        bgp.push_str(&format!(
            " neighbor {a} remote-as 65101\n neighbor {a} timers 1 3\n neighbor {a} timers connect 1\n neighbor {a} bfd profile fast\n"
        ));
    }
    bgp.push_str(" address-family ipv4 unicast\n  maximum-paths 8\n exit-address-family\n");
    let bfd = "hostname r\nbfd\n profile fast\n  transmit-interval 150\n  receive-interval 150\n  detect-multiplier 3\n exit\nexit\n".to_string();
    (bgp, bfd)
}

fn keepalived_conf(i: usize, dir: &Workdir) -> String {
    let daemon = if i == 2 { "frr" } else { "bird" };
    let mut s = format!(
        "global_defs {{\n    router_id d{i}\n}}\nlocal_address_group laddrs {{\n    {}\n}}\n",
        laddr(i)
    );
    for (vip, kind) in [(DR, "DR"), (TUN, "TUN"), (FNAT, "FNAT")] {
        s.push_str(&format!(
            "virtual_server {vip} 80 {{\n    delay_loop 1\n    lb_algo mh\n    mh-port\n    lb_kind {kind}\n    protocol TCP\n"
        ));
        if kind == "FNAT" {
            s.push_str("    laddr_group_name laddrs\n");
        }
        for j in 0..REALS {
            s.push_str(&format!(
                "    real_server {} 80 {{\n        weight 1\n        MISC_CHECK {{\n            misc_path \"/bin/sh -c '! test -e {}'\"\n            misc_timeout 1\n            retry 0\n        }}\n    }}\n",
                real_addr(j),
                dir.path("reals-fail").display()
            ));
        }
        s.push_str("}\n");
    }
    s.push_str(&format!(
        "route_bridge {{\n    daemon {daemon}\n    local_as 65101\n    router_id {}\n    neighbor 198.18.30.1 remote_as 65000\n    hold_time 3\n    keepalive 1\n    connect_retry 1\n    bfd on\n    bfd_interval 150\n    bfd_multiplier 3\n}}\n",
        xlvs_tests::cluster::director_addr(i)
    ));
    s
}

/// A client connection: the real it reached (from the greeting) and the stream.
struct Conn {
    stream: BufReader<TcpStream>,
    real: String,
    port: u16,
}

impl Conn {
    /// One request/answer on the connection.
    fn ask(&mut self, what: &str) -> Result<()> {
        self.stream
            .get_mut()
            .write_all(format!("{what}\n").as_bytes())?;
        let mut line = String::new();
        self.stream.read_line(&mut line)?;
        if line.trim() != format!("{} {what}", self.real) {
            bail!("port {}: asked {what:?}, got {line:?}", self.port);
        }
        Ok(())
    }
}

/// Opens `n` connections to `vip:80` from the client namespace (several at a time: each
/// waits for its greeting).
fn open(c: &Cluster, vip: Ipv4Addr, n: usize) -> Result<Vec<Conn>> {
    const AT_ONCE: usize = 6;
    let workers: Vec<_> = (0..AT_ONCE)
        .map(|w| {
            let count = n / AT_ONCE + usize::from(w < n % AT_ONCE);
            c.client.run_in(move || -> Result<Vec<Conn>> {
                (0..count)
                    .map(|_| {
                        let s = TcpStream::connect_timeout(
                            &SocketAddr::from((vip, 80)),
                            Duration::from_secs(5),
                        )?;
                        s.set_read_timeout(Some(Duration::from_secs(6)))?;
                        let port = s.local_addr()?.port();
                        let mut r = BufReader::new(s);
                        let mut greeting = String::new();
                        r.read_line(&mut greeting)?;
                        Ok(Conn {
                            stream: r,
                            real: greeting.trim().to_string(),
                            port,
                        })
                    })
                    .collect()
            })
        })
        .collect();
    let mut out = Vec::new();
    for w in workers {
        out.extend(
            w.join()
                .map_err(|_| anyhow::anyhow!("client thread panicked"))???,
        );
    }
    Ok(out)
}

/// Which director holds each client port's connection to `vip`.
fn holders(c: &Cluster, vip: Ipv4Addr) -> Result<BTreeMap<u16, usize>> {
    let mut out = BTreeMap::new();
    for (i, d) in c.directors.iter().enumerate() {
        for conn in Dataplane::open(&d.opts)?.connections()? {
            if conn.virt.ip() == std::net::IpAddr::V4(vip)
                && conn.client.ip() == std::net::IpAddr::V4(CLIENT)
            {
                out.insert(conn.client.port(), i);
            }
        }
    }
    Ok(out)
}

/// Each director's non-zero packet-path counters, for failure messages.
fn counters(c: &Cluster) -> String {
    c.directors
        .iter()
        .map(|d| {
            let v = Dataplane::open(&d.opts)
                .and_then(|dp| dp.counters())
                .unwrap_or_default();
            dataplane::stats::COUNTER_NAMES
                .iter()
                .filter_map(|(i, n)| {
                    v.get(*i as usize)
                        .filter(|x| **x > 0)
                        .map(|x| format!("{n}={x}"))
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

fn paths(c: &Cluster, vip: Ipv4Addr) -> usize {
    fib_nexthops(&c.router.name, &vip.to_string())
        .iter()
        .filter(|h| h.starts_with("198.18.30."))
        .count()
}

/// Waits until every VIP has `n` paths at the router, unchanged for a second: a change of the
/// ECMP set moves flows (hash-threshold), which FULLNAT connections do not survive.
fn settled(c: &Cluster, n: usize, timeout: Duration) -> Result<()> {
    let mut since: Option<Instant> = None;
    wait_until(timeout, || {
        if [DR, TUN, FNAT].iter().all(|v| paths(c, *v) == n) {
            since.get_or_insert_with(Instant::now).elapsed() >= Duration::from_secs(1)
        } else {
            since = None;
            false
        }
    })
    .map(|_| ())
}

#[test]
fn ecmp_cluster_spreads_withdraws_and_survives_director_loss() -> Result<()> {
    if !xlvs_tests::skip::require_root() {
        return Ok(());
    }
    if !daemons_installed() {
        xlvs_tests::skip::skip("FRR and bird are not installed");
        return Ok(());
    }
    let c = Cluster::new(DIRECTORS, REALS, &[DR, TUN])?;
    let _runs: Vec<BridgeRun> = c
        .directors
        .iter()
        .map(|d| BridgeRun::new(&d.opts.pin_dir))
        .collect();
    let (bgp, bfd) = router_conf();
    let router = Frr::start(
        &c.router,
        &format!("{}rt", c.prefix),
        &bgp,
        &[("bfdd", &bfd)],
    )?;
    let mut servers = Vec::new();
    let mut tunnels = Vec::new();
    for (j, real) in c.reals.iter().enumerate() {
        servers.push(servers::tcp(real, "0.0.0.0:80".parse()?, &format!("r{j}"))?);
        tunnels.push(decap::start(
            real,
            "e0",
            "dtun",
            real_addr(j),
            "2001:db8::2".parse()?,
            6080,
        )?);
        for i in 0..DIRECTORS {
            let via = xlvs_tests::cluster::director_addr(i).to_string();
            real.ip(&["route", "add", &format!("{}/32", laddr(i)), "via", &via])?;
        }
    }
    let mut dirs = Vec::new();
    let mut kas = Vec::new();
    for (i, d) in c.directors.iter().enumerate() {
        d.xlvs(&["set", "sloppy_tcp", "1"])?;
        let dir = Workdir::new(&format!("{}d{i}", c.prefix))?;
        let conf = dir.path("keepalived.conf");
        std::fs::write(&conf, keepalived_conf(i, &dir))?;
        kas.push(Keepalived::start_in(&d.ns, &d.opts, &dir, &conf)?);
        dirs.push(dir);
    }
    let logs = |kas: &[Keepalived]| {
        kas.iter()
            .map(|k| k.log_text())
            .collect::<Vec<_>>()
            .join("\n=====\n")
    };
    settled(&c, DIRECTORS, Duration::from_secs(40)).with_context(|| {
        format!(
            "{:?}\n{}\n{}",
            [DR, TUN, FNAT].map(|v| fib_nexthops(&c.router.name, &v.to_string())),
            router
                .vtysh(&["show bgp summary", "show bfd peers brief"])
                .unwrap_or_default(),
            logs(&kas)
        )
    })?;

    // New connections spread over the directors, for every forwarding method.
    for vip in [DR, TUN, FNAT] {
        let conns = open(&c, vip, 24).with_context(|| format!("connections to {vip}"))?;
        let held = holders(&c, vip)?;
        let per: Vec<usize> = (0..DIRECTORS)
            .map(|i| held.values().filter(|h| **h == i).count())
            .collect();
        assert!(
            per.iter().all(|n| *n > 0),
            "{vip}: connections per director {per:?}"
        );
        let reals: std::collections::BTreeSet<_> = conns.iter().map(|c| c.real.clone()).collect();
        assert_eq!(reals.len(), REALS, "{vip}: both reals serve");
        drop(conns);
    }

    // Long-lived connections, to see which survive what.
    let mut dr = open(&c, DR, 24).context("DR connections")?;
    let mut tun = open(&c, TUN, 24).context("TUN connections")?;
    for conn in dr.iter_mut().chain(tun.iter_mut()) {
        conn.ask("hello").context("hello")?;
    }
    let held_dr = holders(&c, DR)?;
    let held_tun = holders(&c, TUN)?;

    // Director 0's reals fail (its checks): it withdraws; a client making new connections all
    // along loses none; the DR/TUN connections it carried continue through the others.
    // The client keeps connecting from before director 0's checks fail until at least 20 more
    // attempts were made after the router dropped it (counted, not timed: a loaded machine
    // makes each attempt slower).
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let attempts = std::sync::Arc::new(AtomicUsize::new(0));
    let (stop_load, attempts_load) = (stop.clone(), attempts.clone());
    let load = c.client.run_in(move || {
        let (mut ok, mut failed) = (0, 0);
        while !stop_load.load(Ordering::Relaxed) {
            let done =
                TcpStream::connect_timeout(&SocketAddr::from((DR, 80)), Duration::from_secs(5))
                    .and_then(|s| {
                        s.set_read_timeout(Some(Duration::from_secs(5)))?;
                        let mut greeting = String::new();
                        BufReader::new(s).read_line(&mut greeting)?;
                        Ok(greeting)
                    });
            match done {
                Ok(g) if g.starts_with('r') => ok += 1,
                _ => failed += 1,
            }
            attempts_load.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(20));
        }
        (ok, failed)
    });
    let attempted = |n: usize| {
        wait_until(Duration::from_secs(60), || {
            attempts.load(Ordering::Relaxed) >= n
        })
    };
    let warm = attempted(10);
    let before = attempts.load(Ordering::Relaxed);
    std::fs::write(dirs[0].path("reals-fail"), "")?;
    let withdrawn = wait_until(Duration::from_secs(20), || paths(&c, DR) == DIRECTORS - 1);
    let after = attempted(attempts.load(Ordering::Relaxed) + 20);
    stop.store(true, Ordering::Relaxed);
    let warm = warm.context("the load made 10 attempts before the checks failed")?;
    withdrawn.with_context(|| {
        format!(
            "director 0 did not withdraw: {:?}\n{}\n{}\n{}",
            fib_nexthops(&c.router.name, &DR.to_string()),
            router.vtysh(&["show bgp summary"]).unwrap_or_default(),
            c.directors[0]
                .xlvs(&["routes"])
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default(),
            kas[0].log_text()
        )
    })?;
    let after = after.context("the load made 20 attempts after the withdrawal")?;
    eprintln!("load: warm {warm:?}, 20 attempts after the withdrawal in {after:?}");
    let (ok, failed) = load.join().map_err(|_| anyhow::anyhow!("load"))??;
    assert_eq!(
        failed, 0,
        "requests lost while director 0 withdrew ({ok} succeeded)"
    );
    assert!(
        ok >= before + 20,
        "the load spanned the withdrawal ({ok} requests)"
    );
    for (name, conns, held) in [("DR", &mut dr, &held_dr), ("TUN", &mut tun, &held_tun)] {
        let moved = conns
            .iter()
            .filter(|c| held.get(&c.port) == Some(&0))
            .count();
        assert!(
            moved > 0,
            "{name}: some connections went through director 0"
        );
        for conn in conns.iter_mut() {
            conn.ask("after-withdrawal")
                .with_context(|| format!("{name} connection"))?;
        }
    }
    std::fs::remove_file(dirs[0].path("reals-fail"))?;
    settled(&c, DIRECTORS, Duration::from_secs(15))?;

    // FULLNAT connections, opened now that the router's ECMP set is whole again: a change of
    // the set may move any flow (hash-threshold), and a FULLNAT flow lives on one director.
    let mut fnat = open(&c, FNAT, 24).context("FULLNAT connections")?;
    for conn in fnat.iter_mut() {
        let port = conn.port;
        conn.ask("hello").with_context(|| {
            format!(
                "FULLNAT hello from port {port} (held by director {:?}; counters {})",
                holders(&c, FNAT).ok().and_then(|h| h.get(&port).copied()),
                counters(&c)
            )
        })?;
    }
    let held_fnat = holders(&c, FNAT)?;

    // Director 1 dies silently (its link goes down): BFD at the router routes around it.
    let t = Instant::now();
    c.directors[1].ns.ip(&["link", "set", "e0", "down"])?;
    wait_until(Duration::from_secs(10), || paths(&c, DR) == DIRECTORS - 1)?;
    let took = t.elapsed();
    eprintln!("silent director death routed around after {took:?} (BFD 150 ms x 3)");
    assert!(
        took <= Duration::from_millis(1500),
        "routed around after {took:?}"
    );
    for (name, conns) in [("DR", &mut dr), ("TUN", &mut tun)] {
        for conn in conns.iter_mut() {
            conn.ask("after-crash")
                .with_context(|| format!("{name} connection"))?;
        }
    }
    // FULLNAT: the connections of the dead director end (their real answers its local
    // address). The router's hash-threshold ECMP may also move some flows between the live
    // directors when the set shrinks: those end too (a new local address towards the real,
    // which resets them); the others go on.
    let (mut ended, mut survived, mut moved_and_ended) = (0, 0, 0);
    for conn in fnat.iter_mut() {
        let on_dead = held_fnat.get(&conn.port) == Some(&1);
        match conn.ask("after-crash") {
            Ok(()) => {
                assert!(
                    !on_dead,
                    "a FULLNAT connection of the dead director answered"
                );
                survived += 1;
            }
            Err(_) if on_dead => ended += 1,
            Err(_) => moved_and_ended += 1,
        }
    }
    eprintln!(
        "FULLNAT after a director died: {ended} of its connections ended, {survived} of the others went on, {moved_and_ended} moved by the router and ended"
    );
    assert!(
        ended > 0,
        "some FULLNAT connections went through director 1"
    );
    assert!(
        survived > 0,
        "FULLNAT connections of the live directors went on"
    );
    c.directors[1].ns.ip(&["link", "set", "e0", "up"])?;
    settled(&c, DIRECTORS, Duration::from_secs(20))?;

    // keepalived of director 2 (own FRR) is killed: its VIPs leave the router within 1.5 s.
    let t = Instant::now();
    kas[2].kill9()?;
    wait_until(Duration::from_secs(5), || paths(&c, DR) == DIRECTORS - 1)?;
    let took = t.elapsed();
    eprintln!("keepalived SIGKILL on an FRR director withdrawn after {took:?}");
    assert!(
        took <= Duration::from_millis(1500),
        "withdrawn {took:?} after SIGKILL"
    );
    for conn in dr.iter_mut() {
        conn.ask("after-kill").with_context(|| {
            let no_neigh: Vec<u64> = c
                .directors
                .iter()
                .map(|d| {
                    Dataplane::open(&d.opts)
                        .and_then(|dp| dp.counters())
                        .map(|v| v[ebpf_common::counter::DROP_NO_NEIGH as usize])
                        .unwrap_or(0)
                })
                .collect();
            format!("DR connection after the kill (drop_no_neigh per director {no_neigh:?})")
        })?;
    }
    drop((tunnels, servers));
    Ok(())
}
