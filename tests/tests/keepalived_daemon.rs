//! Our `keepalived` daemon end to end in the netns lab: it programs the data plane from
//! keepalived.conf, reloads on SIGHUP without breaking a live TCP stream, refuses a broken
//! configuration (keeping the running one), survives `kill -9` (the data plane keeps forwarding
//! and a restart adopts the tables) and removes its services on SIGTERM. Needs root.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::Result;
use xlvs_tests::keepalived::{Keepalived, Workdir, ipvsadm, wait_listing};
use xlvs_tests::lab::{Lab, Pins, VIP};
use xlvs_tests::netns::is_root;
use xlvs_tests::servers;

const SECS: Duration = Duration::from_secs(10);

fn config(reals: &[(usize, i32)]) -> String {
    let mut s = format!(
        "global_defs {{\n    router_id test\n}}\n\nvirtual_server {VIP} 80 {{\n    delay_loop 5\n    lb_algo wrr\n    lb_kind NAT\n    protocol TCP\n"
    );
    for (i, w) in reals {
        s.push_str(&format!(
            "    real_server 198.18.{}.2 80 {{\n        weight {w}\n    }}\n",
            2 + i
        ));
    }
    s.push_str("}\n");
    s
}

/// A stream through the VIP that stays open: each `ping` must come back from the same real.
struct Stream {
    w: TcpStream,
    r: BufReader<TcpStream>,
    real: String,
}

impl Stream {
    fn open() -> Result<Stream> {
        let w = TcpStream::connect_timeout(&SocketAddr::new(IpAddr::V4(VIP), 80), SECS)?;
        w.set_read_timeout(Some(Duration::from_secs(3)))?;
        let mut r = BufReader::new(w.try_clone()?);
        let mut greeting = String::new();
        r.read_line(&mut greeting)?;
        Ok(Stream {
            w,
            r,
            real: greeting.trim().to_string(),
        })
    }
    fn ping(&mut self, n: usize) -> Result<()> {
        writeln!(self.w, "ping{n}")?;
        let mut echo = String::new();
        self.r.read_line(&mut echo)?;
        anyhow::ensure!(
            echo.trim() == format!("{} ping{n}", self.real),
            "stream broken: got {echo:?} from {}",
            self.real
        );
        Ok(())
    }
}

/// One fresh connection through the VIP; the real's name.
fn new_connection() -> Result<String> {
    Ok(Stream::open()?.real)
}

#[test]
fn keepalived_programs_reloads_and_survives_kill9() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let lab = Lab::new(3)?;
    let _srv: Vec<_> = lab
        .reals
        .iter()
        .enumerate()
        .map(|(i, ns)| servers::tcp(ns, SocketAddr::new(lab.real_ip(i), 80), &format!("r{i}")))
        .collect::<Result<_>>()?;
    let dir = Workdir::new(&lab.prefix)?;
    let conf = dir.path("keepalived.conf");
    std::fs::write(&conf, config(&[(0, 1), (1, 1)]))?;

    // Start: the virtual server appears as keepalived would set it up.
    let mut ka = Keepalived::start(&lab, &dir, &conf)?;
    let listing = wait_listing(&lab, SECS, |t| t.matches("Masq").count() == 2)?;
    assert!(listing.contains(&format!("TCP  {VIP}:80 wrr")), "{listing}");
    assert!(
        listing.contains("  -> 198.18.2.2:80                Masq    1      0          0"),
        "{listing}"
    );
    assert!(std::fs::read_to_string(&ka.pid_file)?.trim() == ka.pid().unwrap().to_string());

    // A long-lived stream through the VIP.
    let mut stream = lab
        .client
        .run_in(Stream::open)
        .join()
        .map_err(|_| anyhow::anyhow!("client thread panicked"))???;
    let owner = stream.real.clone();
    let client = |f: fn() -> Result<String>| {
        lab.client
            .run_in(f)
            .join()
            .map_err(|_| anyhow::anyhow!("client thread panicked"))
    };

    // Reload: a third real, new weights. Only the difference is written; the stream goes on.
    std::fs::write(&conf, config(&[(0, 3), (1, 1), (2, 2)]))?;
    ka.signal(libc::SIGHUP)?;
    // Until the whole difference is applied (the new real may show before the weights).
    let listing = wait_listing(&lab, SECS, |t| {
        t.matches("Masq").count() == 3 && t.contains("  -> 198.18.2.2:80                Masq    3")
    })?;
    assert!(
        listing.contains("  -> 198.18.2.2:80                Masq    3"),
        "{listing}"
    );
    assert!(
        listing.contains("  -> 198.18.4.2:80                Masq    2"),
        "{listing}"
    );
    ka.wait_log("Reload finished", SECS)?;
    assert!(
        !ka.log_text().contains("Removing virtual server"),
        "a reload must not recreate the service"
    );
    for n in 0..5 {
        stream.ping(n)?;
    }

    // SIGUSR1: keepalived's checker data (keepalived_check.data, its layout), with the live
    // verdicts and weights; SIGUSR2 writes nothing without VRRP, as keepalived's checker.
    ka.signal(libc::SIGUSR1)?;
    ka.wait_log("Printing checker data", SECS)?;
    let data = std::fs::read_to_string(dir.path("keepalived_check.data"))?;
    assert!(
        data.contains(&format!(" VS VIP = {VIP}, VPORT = 80")),
        "{data}"
    );
    assert!(
        data.contains("   RIP = 198.18.4.2, RPORT = 80, WEIGHT = 2 EFF WEIGHT = 2\n"),
        "{data}"
    );
    assert!(data.contains("   quorum_state_up = 1\n"), "{data}");
    ka.signal(libc::SIGUSR2)?;
    std::thread::sleep(Duration::from_millis(300));
    assert!(!dir.path("keepalived.stats").exists());

    // A broken configuration is refused with file:line, and nothing changes.
    std::fs::write(
        &conf,
        config(&[(0, 3)]).replace("    weight 3\n", "    weight\n"),
    )?;
    ka.signal(libc::SIGHUP)?;
    ka.wait_log("Reload failed", SECS)?;
    let log = ka.log_text();
    assert!(
        log.contains("keepalived.conf: Line 11)"),
        "location missing:\n{log}"
    );
    assert_eq!(
        ipvsadm(&lab, &["-Ln"])?,
        listing,
        "a failed reload changed the tables"
    );
    stream.ping(10)?;

    // kill -9: the data plane keeps forwarding, old and new connections alike.
    ka.kill9()?;
    stream.ping(11)?;
    let name = client(new_connection)???;
    assert!(name.starts_with('r'), "{name}");

    // A restart adopts the tables as they are: nothing is flushed, nothing duplicated.
    std::fs::write(&conf, config(&[(0, 3), (1, 1), (2, 2)]))?;
    let _ = std::fs::remove_file(&ka.log);
    let mut ka = Keepalived::start(&lab, &dir, &conf)?;
    std::thread::sleep(Duration::from_millis(300));
    ka.wait_log("Starting Keepalived", SECS)?;
    let after = wait_listing(&lab, SECS, |t| t.matches("Masq").count() == 3)?;
    let strip = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
            .collect()
    };
    assert_eq!(strip(&after), strip(&listing));
    stream.ping(12)?;
    assert_eq!(stream.real, owner);

    // SIGTERM: keepalived removes its virtual servers and its pid file.
    ka.signal(libc::SIGTERM)?;
    assert_eq!(ka.wait(SECS)?, Some(0));
    assert!(!ka.pid_file.exists(), "pid file left behind");
    let empty = ipvsadm(&lab, &["-Ln"])?;
    assert_eq!(
        empty.lines().count(),
        3,
        "services left after stop:\n{empty}"
    );
    Ok(())
}

/// Debian's keepalived.service is `Type=notify --dont-fork`: READY=1 after the first
/// programming, RELOADING=1 then READY=1 around a reload, STOPPING=1 on SIGTERM.
#[test]
fn keepalived_speaks_systemd_notify_and_honours_omega() -> Result<()> {
    use std::os::unix::net::UnixDatagram;
    use xlvs_tests::netns::{Netns, unique_prefix};
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let prefix = unique_prefix("xn");
    let ns = Netns::new(&format!("{prefix}n"))?;
    let pins = Pins::scratch(&prefix, 4096);
    let opts = pins.0.clone();
    let dir = Workdir::new(&prefix)?;
    let conf = dir.path("keepalived.conf");
    // omega: stopping runs the quorum_down script of a virtual server that had quorum.
    let flag = dir.path("quorum-down-ran");
    std::fs::write(
        &conf,
        config(&[(0, 1)]).replace(
            "    protocol TCP\n",
            &format!(
                "    protocol TCP\n    omega\n    quorum_down \"/bin/touch {}\"\n",
                flag.display()
            ),
        ),
    )?;
    let sock_path = dir.path("notify.sock");
    let sock = UnixDatagram::bind(&sock_path)?;
    let recv = || -> Result<String> {
        let mut buf = [0u8; 512];
        loop {
            match sock.recv(&mut buf) {
                Ok(n) => return Ok(String::from_utf8_lossy(&buf[..n]).into_owned()),
                // Another test's child ending may interrupt the wait.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
    };
    let sock_env = sock_path.to_string_lossy().into_owned();
    let mut ka =
        Keepalived::start_with_env(&ns, &opts, &dir, &conf, &[("NOTIFY_SOCKET", &sock_env)])?;
    // READY=1 comes after the first load of the XDP program into these pins (the verifier
    // takes seconds on a busy machine).
    sock.set_read_timeout(Some(Duration::from_secs(60)))?;
    let ready = recv().map_err(|e| anyhow::anyhow!("no READY=1 ({e}):\n{}", ka.log_text()))?;
    sock.set_read_timeout(Some(SECS))?;
    assert!(ready.starts_with("READY=1"), "{ready}");
    assert!(
        ready.contains(&format!("MAINPID={}", ka.pid().unwrap())),
        "{ready}"
    );
    // By READY=1 the virtual server is programmed.
    let listing = xlvs_tests::keepalived::ipvsadm_on(&opts, &["-Ln"])?;
    assert!(listing.contains("198.18.2.2:80"), "{listing}");
    ka.signal(libc::SIGHUP)?;
    assert_eq!(recv()?, "RELOADING=1");
    assert_eq!(recv()?, "READY=1");
    ka.signal(libc::SIGTERM)?;
    assert_eq!(recv()?, "STOPPING=1");
    assert_eq!(ka.wait(SECS)?, Some(0));
    let deadline = std::time::Instant::now() + SECS;
    while !flag.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        flag.exists(),
        "omega: quorum_down did not run:\n{}",
        ka.log_text()
    );
    Ok(())
}

/// TCP_CHECK verdicts drive the tables as keepalived + IPVS would: a real whose server dies
/// leaves; below quorum the sorry server takes over; when the server is back, so are the reals.
#[test]
fn health_checks_quorum_and_sorry_server() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let lab = Lab::new(3)?;
    let serve = |i: usize| {
        servers::tcp(
            &lab.reals[i],
            SocketAddr::new(lab.real_ip(i), 80),
            &format!("r{i}"),
        )
    };
    let mut r0 = Some(serve(0)?);
    let _r1 = serve(1)?;
    let _sorry = serve(2)?;
    let dir = Workdir::new(&lab.prefix)?;
    let conf = dir.path("keepalived.conf");
    let check = "        TCP_CHECK {\n            connect_timeout 1\n            retry 1\n            delay_before_retry 1\n        }\n";
    // keepalived's LVS notify FIFO, read by its lvs_notify_fifo_script.
    let fifo = dir.path("lvs.fifo");
    let fifo_out = dir.path("fifo.out");
    let reader = dir.path("reader.sh");
    std::fs::write(
        &reader,
        format!("#!/bin/sh\nexec cat \"$1\" >> {}\n", fifo_out.display()),
    )?;
    std::fs::set_permissions(&reader, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let mut text = format!(
        "global_defs {{\n    lvs_notify_fifo {}\n    lvs_notify_fifo_script {}\n}}\n",
        fifo.display(),
        reader.display()
    );
    text.push_str(&format!(
        "virtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    quorum 2\n    sorry_server 198.18.4.2 80\n"
    ));
    for i in 0..2 {
        text.push_str(&format!(
            "    real_server 198.18.{}.2 80 {{\n        weight 1\n{check}    }}\n",
            2 + i
        ));
    }
    text.push_str("}\n");
    std::fs::write(&conf, text)?;
    let ka = Keepalived::start(&lab, &dir, &conf)?;
    let has = |t: &str, ip: &str| t.contains(&format!("  -> {ip}:80 "));
    wait_listing(&lab, SECS, |t| {
        has(t, "198.18.2.2") && has(t, "198.18.3.2") && !has(t, "198.18.4.2")
    })?;

    // r0's server dies: r0 leaves, quorum (2) is lost, the sorry server replaces the live r1.
    r0.take();
    let listing = wait_listing(&lab, Duration::from_secs(15), |t| has(t, "198.18.4.2"))?;
    assert!(
        !has(&listing, "198.18.2.2") && !has(&listing, "198.18.3.2"),
        "{listing}"
    );
    let name = lab
        .client
        .run_in(new_connection)
        .join()
        .map_err(|_| anyhow::anyhow!("client thread panicked"))???;
    assert_eq!(name, "r2", "new connections go to the sorry server");
    let log = ka.log_text();
    assert!(
        log.contains(&format!("Lost quorum 2-0=2 > 1 for VS [{VIP}]:tcp:80")),
        "{log}"
    );

    // r0 is back: quorum regained, both reals in, the sorry server out.
    r0 = Some(serve(0)?);
    let listing = wait_listing(&lab, Duration::from_secs(15), |t| {
        has(t, "198.18.2.2") && has(t, "198.18.3.2")
    })?;
    assert!(!has(&listing, "198.18.4.2"), "{listing}");
    assert!(
        ka.log_text().contains("Gained quorum 2+0=2 <= 2"),
        "{}",
        ka.log_text()
    );
    let fifo_lines = std::fs::read_to_string(&fifo_out)?;
    let want = [
        format!("VS [{VIP}]:tcp:80 UP"),
        format!("RS [198.18.2.2]:tcp:80 [{VIP}]:tcp:80 DOWN"),
        format!("VS [{VIP}]:tcp:80 DOWN"),
        format!("RS [198.18.2.2]:tcp:80 [{VIP}]:tcp:80 UP"),
        format!("VS [{VIP}]:tcp:80 UP"),
    ];
    let got: Vec<&str> = fifo_lines.lines().collect();
    assert_eq!(got, want, "notify FIFO lines");
    drop(r0);
    Ok(())
}

/// A configuration keepalived 2.2.7 refuses at start (checked on the IPVS oracle: a missing
/// parameter exits 2, a missing file exits 6) is refused the same way, with file and line, and
/// nothing is programmed.
#[test]
fn keepalived_refuses_a_broken_start_like_2_2_7() -> Result<()> {
    use xlvs_tests::netns::{Netns, unique_prefix};
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let prefix = unique_prefix("xb");
    let ns = Netns::new(&format!("{prefix}n"))?;
    let opts = dataplane::Options {
        pin_dir: format!("/sys/fs/bpf/xlvs-{prefix}").into(),
        max_conns: 4096,
    };
    let dir = Workdir::new(&prefix)?;
    let conf = dir.path("keepalived.conf");
    std::fs::write(
        &conf,
        config(&[(0, 1)]).replace("        weight 1\n", "        weight\n"),
    )?;
    let mut ka = Keepalived::start_in(&ns, &opts, &dir, &conf)?;
    assert_eq!(ka.wait(SECS)?, Some(2));
    let log = ka.log_text();
    assert!(
        log.contains("keepalived.conf: Line 11) *** Configuration line starting `weight` is missing a parameter"),
        "{log}"
    );
    assert!(
        !opts.pin_dir.exists(),
        "nothing may be loaded for a refused configuration"
    );
    let mut ka = Keepalived::start_in(&ns, &opts, &dir, &dir.path("missing.conf"))?;
    assert_eq!(ka.wait(SECS)?, Some(6));
    assert!(
        ka.log_text().contains("Config files missing"),
        "{}",
        ka.log_text()
    );
    Ok(())
}
