//! VRRP isolated from everything else in the process: our keepalived MASTER with 10 ms VRRPv3
//! adverts, Debian's keepalived 2.2.7 BACKUP beside it. While ours reloads 10 000 virtual
//! servers, runs 500 failing checkers and `ipvsadm -R` writes 10 000 more services into the
//! same tables, the adverts keep their pace (the largest gap is printed) and the 2.2.7 peer
//! sees no transition. Needs root and /usr/sbin/keepalived.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use xlvs_tests::keepalived::{
    AdvertWatch, Keepalived, REAL_KEEPALIVED, RealKeepalived, Workdir, ipvsadm_on, wait_listing_on,
};
use xlvs_tests::lab::{Pins, binary};
use xlvs_tests::netns::{Netns, is_root, unique_prefix, veth};

const VIP: &str = "198.18.76.100";
const VRID: u8 = 76;

fn instance(ifname: &str, priority: u8) -> String {
    format!(
        "vrrp_instance VI_I {{\n state BACKUP\n interface {ifname}\n virtual_router_id {VRID}\n \
         priority {priority}\n version 3\n advert_int 0.01\n \
         virtual_ipaddress {{\n  {VIP}/32 dev {ifname}\n }}\n}}\n"
    )
}

/// Our configuration: the instance, `services` virtual servers (198.19.0.0/17, port 80) of
/// which the first `failing` have a TCP_CHECK on a refused port (every second).
fn ours(services: usize, failing: usize) -> String {
    let mut s = String::from("global_defs {\n vrrp_garp_master_delay 0\n}\n");
    s.push_str(&instance("va", 200));
    for i in 0..services {
        let addr = format!("198.19.{}.{}", i / 200, i % 200 + 1);
        s.push_str(&format!(
            "virtual_server {addr} 80 {{\n lb_algo rr\n lb_kind DR\n protocol TCP\n delay_loop 1\n"
        ));
        if i < failing {
            s.push_str(
                " real_server 198.18.76.2 80 {\n  TCP_CHECK {\n   connect_port 9\n   \
                 connect_timeout 1\n   retry 0\n  }\n }\n}\n",
            );
        } else {
            s.push_str(" real_server 198.18.76.50 80 {\n  weight 1\n }\n}\n");
        }
    }
    s
}

/// `ipvsadm -R` input: `n` services in 198.19.128.0/17, one real each.
fn restore(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        let addr = format!("198.19.{}.{}", 128 + i / 200, i % 200 + 1);
        s.push_str(&format!(
            "-A -t {addr}:80 -s rr\n-a -t {addr}:80 -r 198.18.76.51:80 -g -w 1\n"
        ));
    }
    s
}

fn count_services(listing: &str) -> usize {
    listing.lines().filter(|l| l.starts_with("TCP ")).count()
}

#[test]
fn adverts_keep_pace_through_reload_restore_and_failing_checkers() -> Result<()> {
    if !is_root() || !std::path::Path::new(REAL_KEEPALIVED).exists() {
        xlvs_tests::skip(&format!("needs root and {REAL_KEEPALIVED}"));
        return Ok(());
    }
    let p = unique_prefix("kis");
    let a = Netns::new(&format!("{p}a"))?;
    let b = Netns::new(&format!("{p}b"))?;
    veth(&a, "va", &b, "vb")?;
    a.ip(&["addr", "add", "198.18.76.1/24", "dev", "va"])?;
    b.ip(&["addr", "add", "198.18.76.2/24", "dev", "vb"])?;
    let pins = Pins::scratch(&p, 4096);
    let dir = Workdir::new(&p)?;

    let theirs_conf = dir.path("theirs.conf");
    std::fs::write(&theirs_conf, instance("vb", 100))?;
    let theirs = RealKeepalived::start(&b, &dir, "theirs", &theirs_conf, &["-P"])?;
    let conf = dir.path("keepalived.conf");
    std::fs::write(&conf, ours(1, 0))?;
    let ka = Keepalived::start_with_args(&a, &pins.0, &dir, &conf, &[], &[])?;
    wait_listing_on(&pins.0, Duration::from_secs(30), |t| {
        t.contains("198.19.0.1:80")
    })
    .with_context(|| ka.log_text())?;
    ka.wait_log("Entering MASTER STATE", Duration::from_secs(10))?;
    theirs.wait_log("Entering BACKUP STATE", Duration::from_secs(10))?;
    std::thread::sleep(Duration::from_millis(500));
    let transitions_before = theirs.log_text().matches("Entering").count();

    let watch = AdvertWatch::start(&b, VRID);
    std::thread::sleep(Duration::from_millis(300));
    // 10 000 virtual servers, 500 of them with a failing checker, by reload.
    const N: usize = 10_000;
    std::fs::write(&conf, ours(N, 500))?;
    let t0 = Instant::now();
    ka.signal(libc::SIGHUP)?;
    // ipvsadm -R of 10 000 more services into the same tables, at the same time.
    let mut r = std::process::Command::new(binary("ipvsadm")?)
        .arg("-R")
        .env("XLVS_PIN_DIR", &pins.0.pin_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    r.stdin
        .take()
        .context("stdin")?
        .write_all(restore(N).as_bytes())?;
    let st = r.wait()?;
    if !st.success() {
        bail!("ipvsadm -R failed: {st}");
    }
    let restored = t0.elapsed();
    ka.wait_log("Reload finished", Duration::from_secs(120))?;
    let loaded = t0.elapsed();
    let listing = ipvsadm_on(&pins.0, &["-Ln"])?;
    // The failing checkers keep failing (and writing weights/removals) for a while.
    std::thread::sleep(Duration::from_secs(3));
    let times = watch.finish()?;
    let gap = AdvertWatch::max_gap(&times);
    for (at, g) in AdvertWatch::gaps_over(&times, Duration::from_millis(15)) {
        eprintln!("gap {g:?} ending at {:.3}", at.as_secs_f64() % 1000.0);
    }
    eprintln!(
        "ipvsadm -R {restored:?}, reload done {loaded:?} ({} services); {} adverts, largest gap {gap:?}",
        count_services(&listing),
        times.len()
    );
    for l in ka
        .log_text()
        .lines()
        .filter(|l| l.contains("Reload finished"))
    {
        eprintln!("ours: {l}");
    }
    let log = theirs.log_text();
    assert_eq!(
        log.matches("Entering").count(),
        transitions_before,
        "the 2.2.7 peer saw a transition:\n{log}"
    );
    let ours_log = ka.log_text();
    assert_eq!(
        ours_log.matches("Entering MASTER STATE").count(),
        1,
        "ours left MASTER:\n{ours_log}"
    );
    // 3 adverts + skew is the peer's master-down interval (~36 ms): stay well inside it.
    assert!(
        gap < Duration::from_millis(30),
        "largest advert gap {gap:?}"
    );
    Ok(())
}
