//! keepalived's operational surface against the real keepalived 2.2.7
//! (`keepalived/tests/golden/keepalived-2.2.7/`, recorded from Debian's package):
//! `--signum` numbers, `--version`, the syslog idents and the lines people alert on, the
//! SIGUSR1/SIGUSR2/SIGJSON/STATS_CLEAR dumps as keepalived-exporter reads them, and signal
//! storms that must neither kill the daemon nor lose traffic. Needs root.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use xlvs_tests::ka_exporter;
use xlvs_tests::keepalived::{Keepalived, Workdir, wait_listing};
use xlvs_tests::lab::{Lab, VIP, binary};
use xlvs_tests::netns::{Netns, is_root, unique_prefix, veth};
use xlvs_tests::poll::wait_for;
use xlvs_tests::servers;

const REAL_KEEPALIVED: &str = "/usr/sbin/keepalived";

fn golden(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../keepalived/tests/golden/keepalived-2.2.7")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn signum_and_version_are_keepalived_2_2_7s() -> Result<()> {
    let ours = binary("keepalived")?;
    let real = Path::new(REAL_KEEPALIVED).exists();
    for name in [
        "STOP",
        "RELOAD",
        "DATA",
        "STATS",
        "STATS_CLEAR",
        "JSON",
        "NOPE",
    ] {
        let arg = format!("--signum={name}");
        let o = Command::new(&ours).arg(&arg).output()?;
        let want: &[u8] = match name {
            "STOP" => b"15\n",
            "RELOAD" => b"1\n",
            "DATA" => b"10\n",
            "STATS" => b"12\n",
            "STATS_CLEAR" => b"63\n",
            "JSON" => b"36\n",
            _ => b"",
        };
        assert_eq!(o.stdout, want, "{name}");
        if real {
            let r = Command::new(REAL_KEEPALIVED).arg(&arg).output()?;
            assert_eq!(o.stdout, r.stdout, "{name} against keepalived 2.2.7");
            assert_eq!(o.status.code(), r.status.code(), "{name} exit code");
        }
    }
    let v = Command::new(&ours).arg("--version").output()?;
    let text = String::from_utf8(v.stderr)?;
    let first = text.lines().next().unwrap_or("");
    // keepalived-exporter takes the version from the second word of the first line.
    assert_eq!(first.split(' ').nth(1), Some("v2.2.7"), "{text}");
    assert!(text.contains("xlvs"), "{text}");
    assert!(
        !text.contains("Copyright"),
        "no other author's copyright line: {text}"
    );
    Ok(())
}

/// One syslog line: (ident, pid, message).
fn syslog_lines(text: &str) -> Vec<(String, u32, String)> {
    text.lines()
        .filter_map(|l| {
            // <30>Dec  6 21:32:07 Keepalived_vrrp[5807]: message
            let rest = l.split_once('>')?.1;
            let after_time = rest.get(16..)?;
            let (who, msg) = after_time.split_once(": ")?;
            let (ident, pid) = who.split_once('[')?;
            Some((
                ident.to_string(),
                pid.trim_end_matches(']').parse().ok()?,
                msg.to_string(),
            ))
        })
        .collect()
}

/// The lines of one daemon people alert on, per ident, normalised where ours must differ
/// (the build in "Starting/Stopped Keepalived v2.2.7 (…)").
fn alert_lines(lines: &[(String, u32, String)], pids: &[u32]) -> Vec<String> {
    lines
        .iter()
        .filter(|(_, pid, _)| pids.contains(pid))
        .filter_map(|(ident, _, msg)| {
            let keep = msg.contains(" STATE")
                || (ident == "Keepalived"
                    && (msg == "Stopping"
                        || msg.starts_with("Starting Keepalived v")
                        || msg.starts_with("Stopped Keepalived v")));
            if !keep {
                return None;
            }
            let msg = match msg.split_once(" (") {
                Some((head, _)) if head.contains("Keepalived v2.2.7") => head.to_string(),
                _ => msg.clone(),
            };
            Some(format!("{ident}: {msg}"))
        })
        .collect()
}

/// The pids of each daemon in a syslog, in start order (a parent and the children it names).
fn daemons(lines: &[(String, u32, String)]) -> Vec<Vec<u32>> {
    let mut out: Vec<Vec<u32>> = Vec::new();
    for (_, pid, msg) in lines {
        if msg.starts_with("Starting Keepalived v") {
            out.push(vec![*pid]);
        } else if let Some(child) = msg.strip_prefix("Starting VRRP child process, pid=")
            && let (Some(d), Ok(c)) = (out.last_mut(), child.parse())
        {
            d.push(c);
        }
    }
    out
}

/// Runs a shell script in a private mount namespace whose /dev/log is a socket read by a
/// python sink writing `syslog.txt` (glibc's syslog always writes to /dev/log).
struct SyslogScenario {
    child: Option<Child>,
    dir: PathBuf,
}

impl SyslogScenario {
    fn start(dir: &Path, body: &str) -> Result<SyslogScenario> {
        let sink = dir.join("sink.py");
        std::fs::write(
            &sink,
            "import socket, sys, os\nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n\
             sock.bind(sys.argv[1])\nwith open(sys.argv[2], 'ab', buffering=0) as f:\n    \
             while True:\n        f.write(sock.recv(65536) + b'\\n')\n",
        )?;
        let d = dir.display();
        let script = format!(
            "set -e\nmkdir -p {d}/newdev\nmount -t tmpfs tmpfs {d}/newdev\n\
             for n in null zero urandom random tty; do touch {d}/newdev/$n; \
             mount --bind /dev/$n {d}/newdev/$n; done\n\
             mount --bind {d}/newdev /dev\n\
             python3 {d}/sink.py /dev/log {d}/syslog.txt & echo $! > {d}/sink.pid\n\
             while [ ! -S /dev/log ]; do sleep 0.05; done\n{body}\nwait\n"
        );
        std::fs::write(dir.join("scenario.sh"), script)?;
        let child = Command::new("unshare")
            .args(["-m", "bash"])
            .arg(dir.join("scenario.sh"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("scenario.err"))?)
            .spawn()?;
        Ok(SyslogScenario {
            child: Some(child),
            dir: dir.to_path_buf(),
        })
    }

    fn syslog(&self) -> String {
        std::fs::read_to_string(self.dir.join("syslog.txt")).unwrap_or_default()
    }

    fn pid(&self, file: &str) -> Option<i32> {
        std::fs::read_to_string(self.dir.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for SyslogScenario {
    fn drop(&mut self) {
        for f in ["a.pid", "b.pid", "sink.pid"] {
            if let Some(pid) = self.pid(f) {
                // SAFETY: kill(2) on processes this scenario started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn kill(pid: i32, sig: i32) -> Result<()> {
    // SAFETY: kill(2) on a daemon this test started.
    ensure!(unsafe { libc::kill(pid, sig) } == 0, "kill {pid} {sig}");
    Ok(())
}

/// The recorded VRRP scenario, replayed with our keepalived: b (priority 100) starts, a (150)
/// a second later and takes over, a stops, b takes over, b stops. While a is MASTER its dumps
/// are read as keepalived-exporter reads them. Compared with keepalived 2.2.7's syslog.
#[test]
fn vrrp_logs_and_dumps_are_keepalived_2_2_7s() -> Result<()> {
    if !is_root() || !Path::new("/usr/bin/python3").exists() {
        xlvs_tests::skip("needs root and python3");
        return Ok(());
    }
    let p = unique_prefix("ko");
    let a = Netns::new(&format!("{p}a"))?;
    let b = Netns::new(&format!("{p}b"))?;
    veth(&a, "va", &b, "vb")?;
    a.ip(&["addr", "add", "198.18.10.1/24", "dev", "va"])?;
    b.ip(&["addr", "add", "198.18.10.2/24", "dev", "vb"])?;
    let dir = Workdir::new(&p)?;
    let conf_a = golden("scenario/a.conf");
    std::fs::write(dir.path("a.conf"), &conf_a)?;
    std::fs::write(
        dir.path("b.conf"),
        conf_a
            .replace("peer_a", "peer_b")
            .replace("interface va", "interface vb")
            .replace("priority 150", "priority 100")
            .replace("dev va", "dev vb"),
    )?;
    let bin = binary("keepalived")?;
    let d = dir.0.display();
    let start = |who: &str, ns: &Netns| {
        format!(
            "TMPDIR={d}/tmp{who} ip netns exec {} {} -n -P -f {d}/{who}.conf -p {d}/{who}.pid \
             -r {d}/{who}-vrrp.pid -c {d}/{who}-chk.pid &",
            ns.name,
            bin.display()
        )
    };
    std::fs::create_dir_all(dir.path("tmpa"))?;
    std::fs::create_dir_all(dir.path("tmpb"))?;
    let sc = SyslogScenario::start(
        &dir.0,
        &format!("{}\nsleep 1\n{}", start("b", &b), start("a", &a)),
    )?;
    let has_vip = |ns: &Netns, dev: &str| {
        ns.ip(&["-o", "addr", "show", "dev", dev])
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("198.18.10.100/32"))
            .unwrap_or(false)
    };
    wait_for("a becomes MASTER", Duration::from_secs(15), || {
        has_vip(&a, "va") && !has_vip(&b, "vb")
    })?;
    std::thread::sleep(Duration::from_millis(1500));
    let pid_a = sc.pid("a.pid").context("a.pid")?;

    // The dumps, read as keepalived-exporter reads them.
    let tmpa = dir.path("tmpa");
    let read_after = |sig: i32, file: &str| -> Result<String> {
        let _ = std::fs::remove_file(tmpa.join(file));
        kill(pid_a, sig)?;
        wait_for(file, Duration::from_secs(3), || tmpa.join(file).exists())?;
        Ok(std::fs::read_to_string(tmpa.join(file))?)
    };
    let data = read_after(libc::SIGUSR1, "keepalived.data")?;
    let parsed = ka_exporter::parse_data(&data)?;
    let theirs = ka_exporter::parse_data(&golden("vrrp.keepalived.data"))?;
    let vi = &parsed["VI_51"];
    assert_eq!(
        (vi.state, vi.wantstate, vi.interface.as_str(), vi.vrid),
        (2, 2, "va", 51),
        "{data}"
    );
    assert_eq!(vi.vips, theirs["VI_51"].vips, "VIP lines as keepalived's");
    assert_eq!(
        ka_exporter::vip(&vi.vips[0]),
        Some(("198.18.10.100".into(), "va".into()))
    );
    assert_eq!(
        ka_exporter::parse_scripts(&data),
        ka_exporter::parse_scripts(&golden("vrrp.keepalived.data"))
    );
    assert_key_order_follows(&data, &golden("vrrp.keepalived.data"), "   ");

    let stats = read_after(libc::SIGUSR2, "keepalived.stats")?;
    let s = &ka_exporter::parse_stats(&stats)?["VI_51"];
    let g = &ka_exporter::parse_stats(&golden("vrrp.keepalived.stats"))?["VI_51"];
    assert_eq!(
        s.keys().collect::<Vec<_>>(),
        g.keys().collect::<Vec<_>>(),
        "the counters keepalived has"
    );
    assert_eq!(s["Became master"], 1, "{stats}");
    assert!(s["Advertisements/Sent"] >= 1, "{stats}");
    assert!(
        s["Advertisements/Received"] >= 1,
        "b's adverts before a took over: {stats}"
    );
    assert_eq!(
        stats.lines().map(shape).collect::<Vec<_>>(),
        golden("vrrp.keepalived.stats")
            .lines()
            .map(shape)
            .collect::<Vec<_>>(),
        "layout"
    );

    let json = read_after(36, "keepalived.json")?;
    let j = ka_exporter::parse_json(&json)?;
    assert_eq!(j.len(), 1);
    assert_eq!(
        (j[0].data.iname.as_str(), j[0].data.state, j[0].data.vrid),
        ("VI_51", 2, 51)
    );
    assert_eq!(j[0].data.ifp_ifname, "va");
    assert_eq!(j[0].data.vips, theirs["VI_51"].vips);
    assert_eq!(j[0].stats.become_master, 1);
    assert_json_keys_follow(&json, &golden("vrrp.keepalived.json"))?;

    // STATS_CLEAR writes the counters, then they restart from zero.
    let before = read_after(63, "keepalived.stats")?;
    assert_eq!(
        ka_exporter::parse_stats(&before)?["VI_51"]["Became master"],
        1
    );
    let after = read_after(libc::SIGUSR2, "keepalived.stats")?;
    let after = &ka_exporter::parse_stats(&after)?["VI_51"];
    assert_eq!(after["Became master"], 0, "cleared");
    assert!(after["Advertisements/Sent"] <= 3, "cleared: {after:?}");

    // a stops: b takes over; then b stops.
    kill(pid_a, libc::SIGTERM)?;
    wait_for("b becomes MASTER", Duration::from_secs(10), || {
        has_vip(&b, "vb")
    })?;
    std::thread::sleep(Duration::from_millis(1500));
    kill(sc.pid("b.pid").context("b.pid")?, libc::SIGTERM)?;
    wait_for("b logs its stop", Duration::from_secs(10), || {
        sc.syslog().matches("Stopped Keepalived v2.2.7").count() == 2
    })?;

    let ours = syslog_lines(&sc.syslog());
    let real = syslog_lines(&golden("vrrp-syslog.txt"));
    let (our_daemons, real_daemons) = (daemons(&ours), daemons(&real));
    assert_eq!(our_daemons.len(), 2, "{}", sc.syslog());
    for (o, r) in our_daemons.iter().zip(&real_daemons) {
        assert_eq!(
            alert_lines(&ours, o),
            alert_lines(&real, r),
            "our syslog:\n{}",
            sc.syslog()
        );
    }
    Ok(())
}

/// A line with its numbers replaced, for layout comparisons.
fn shape(line: &str) -> String {
    line.chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect::<String>()
        .replace("99", "9")
}

/// The `KEY = …` keys of ours (at `indent`) appear in keepalived's file in the same order.
fn assert_key_order_follows(ours: &str, theirs: &str, indent: &str) {
    let keys = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with(indent) && !l.starts_with(&format!("{indent} ")))
            .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim().to_string()))
            .collect()
    };
    let theirs = keys(theirs);
    let mut at = 0;
    for k in keys(ours) {
        match theirs[at..].iter().position(|t| *t == k) {
            Some(i) => at += i + 1,
            None => {
                // Keys of later sections (another instance) restart the search.
                let i = theirs.iter().position(|t| *t == k);
                assert!(i.is_some(), "key {k:?} is not keepalived's");
                at = i.unwrap_or(0) + 1;
            }
        }
    }
}

/// Our JSON objects' keys are keepalived's, in its order (ours may leave some out).
fn assert_json_keys_follow(ours: &str, theirs: &str) -> Result<()> {
    let o: serde_json::Value = serde_json::from_str(ours)?;
    let t: serde_json::Value = serde_json::from_str(theirs)?;
    for part in ["data", "stats"] {
        let keys = |v: &serde_json::Value| -> Vec<String> {
            v[0][part]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default()
        };
        let (ok, tk) = (keys(&o), keys(&t));
        let positions: Vec<Option<usize>> =
            ok.iter().map(|k| tk.iter().position(|x| x == k)).collect();
        ensure!(
            positions.iter().all(|p| p.is_some()),
            "{part}: keys not keepalived's: {ok:?}"
        );
        ensure!(positions.is_sorted(), "{part}: order differs: {ok:?}");
        if part == "stats" {
            ensure!(ok == tk, "stats keys: {ok:?} vs {tk:?}");
        }
    }
    Ok(())
}

/// keepalived 2.2.7's checker scenario (recorded on a kernel with IPVS) replayed on xlvs: two
/// TCP_CHECK reals, one listening; the other starts listening; the first stops; a reload drops
/// it and adds a virtual server; the last listener goes; SIGTERM. The checker and real-server
/// lines come out as 2.2.7's, addresses aside.
#[test]
fn checker_lines_are_keepalived_2_2_7s() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let lab = Lab::new(2)?;
    let dir = Workdir::new(&lab.prefix)?;
    let (r1, r2) = (lab.real_ip(0), lab.real_ip(1));
    let remap = |t: &str| {
        t.replace("198.18.2.2", &r1.to_string())
            .replace("198.18.2.3", &r2.to_string())
            .replace("198.18.100.1", &VIP.to_string())
    };
    let conf = dir.path("keepalived.conf");
    std::fs::write(&conf, remap(&golden("scenario/chk.conf")))?;
    let l1 = servers::tcp(&lab.reals[0], SocketAddr::new(r1, 80), "r1")?;
    let mut ka = Keepalived::start(&lab, &dir, &conf)?;
    std::thread::sleep(Duration::from_secs(5));
    let l2 = servers::tcp(&lab.reals[1], SocketAddr::new(r2, 80), "r2")?;
    std::thread::sleep(Duration::from_secs(4));
    drop(l1);
    std::thread::sleep(Duration::from_secs(5));
    std::fs::write(&conf, remap(&golden("scenario/chk2.conf")))?;
    ka.signal(libc::SIGHUP)?;
    std::thread::sleep(Duration::from_secs(3));
    drop(l2);
    std::thread::sleep(Duration::from_secs(5));
    ka.signal(libc::SIGTERM)?;
    ka.wait(Duration::from_secs(10))?;

    let wanted = |m: &str| {
        m.starts_with("TCP connection to")
            || m.starts_with("TCP_CHECK on service")
            || m.starts_with("Adding service")
            || m.starts_with("Removing service")
            || m.starts_with("Shutting down service")
            || m.starts_with("Lost quorum")
            || m.starts_with("Gained quorum")
    };
    let ours: Vec<String> = ka
        .log_text()
        .lines()
        .filter(|l| wanted(l))
        .map(String::from)
        .collect();
    let theirs: Vec<String> = syslog_lines(&golden("checker-syslog.txt"))
        .into_iter()
        .filter(|(_, _, m)| wanted(m))
        .map(|(_, _, m)| remap(&m))
        .collect();
    // Per real (and for the quorum lines): the same lines in the same order. Between reals
    // the order of the first checks is random in both (keepalived's random warmup).
    let about = |lines: &[String], who: &str| -> Vec<String> {
        lines.iter().filter(|l| l.contains(who)).cloned().collect()
    };
    for who in [
        format!("[{r1}]:tcp:80"),
        format!("[{r2}]:tcp:80"),
        format!("[{r2}]:tcp:443"),
        "quorum".to_string(),
    ] {
        assert_eq!(
            about(&ours, &who),
            about(&theirs, &who),
            "{who}; our log:\n{}",
            ka.log_text()
        );
    }
    assert_eq!(ours.len(), theirs.len(), "{ours:#?}");
    Ok(())
}

/// A signal storm under traffic: hundreds of SIGHUP, SIGUSR1 and SIGJSON per second while a
/// client opens connection after connection through the VIP. Every connection is served, the
/// daemon survives, and afterwards the tables and the dumps are right.
#[test]
fn signal_storm_under_traffic_loses_nothing() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let lab = Lab::new(2)?;
    let _srv = lab.tcp_servers(80)?;
    let dir = Workdir::new(&lab.prefix)?;
    let conf = dir.path("keepalived.conf");
    std::fs::write(
        &conf,
        format!(
            "virtual_server {VIP} 80 {{\n delay_loop 1\n lb_algo rr\n lb_kind NAT\n protocol TCP\n\
             real_server {} 80 {{ weight 1\n TCP_CHECK {{ connect_timeout 1 }} }}\n\
             real_server {} 80 {{ weight 1\n TCP_CHECK {{ connect_timeout 1 }} }}\n}}\n",
            lab.real_ip(0),
            lab.real_ip(1)
        ),
    )?;
    let mut ka = Keepalived::start(&lab, &dir, &conf)?;
    let before = wait_listing(&lab, Duration::from_secs(10), |t| {
        t.matches("Masq").count() == 2
    })?;
    let pid = ka.pid().context("pid")?;

    let storm = std::thread::spawn(move || -> Result<u32> {
        let mut sent = 0;
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(4) {
            for sig in [libc::SIGHUP, libc::SIGUSR1, 36, libc::SIGUSR2, 63] {
                kill(pid, sig)?;
                sent += 1;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(sent)
    });
    let client = lab
        .client
        .run_in(|| -> Result<(u32, BTreeMap<String, u32>)> {
            let mut served = 0;
            let mut by_real = BTreeMap::new();
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(4) {
                let (name, _) = servers::exchange(SocketAddr::new(IpAddr::V4(VIP), 80))?;
                *by_real.entry(name).or_insert(0) += 1;
                served += 1;
            }
            Ok((served, by_real))
        });
    let sent = storm
        .join()
        .map_err(|_| anyhow::anyhow!("storm panicked"))??;
    let (served, by_real) = client
        .join()
        .map_err(|_| anyhow::anyhow!("client panicked"))???;
    eprintln!("{sent} signals, {served} connections served: {by_real:?}");
    assert!(sent >= 600, "a storm: {sent} signals");
    assert!(served >= 20 && by_real.len() == 2, "{served} {by_real:?}");
    // SAFETY: signal 0 only checks the daemon still exists.
    assert_eq!(unsafe { libc::kill(pid, 0) }, 0, "the daemon survived");
    std::thread::sleep(Duration::from_millis(500));
    let after = wait_listing(&lab, Duration::from_secs(5), |t| {
        t.matches("Masq").count() == 2
    })?;
    let strip = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
            .collect()
    };
    assert_eq!(strip(&before), strip(&after), "the tables are as before");
    let data = std::fs::read_to_string(dir.path("keepalived_check.data"))?;
    assert_eq!(data.matches("alive = 1").count(), 2, "{data}");
    ka.signal(libc::SIGTERM)?;
    assert_eq!(ka.wait(Duration::from_secs(10))?, Some(0));
    Ok(())
}
