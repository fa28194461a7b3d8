//! Connection synchronisation end to end (`ipvsadm --start-daemon`, crate `syncd`). Needs root.
//!
//! * `established_connection_survives_failover`: two directors with the same rules (set with
//!   the `ipvsadm` binary), sync daemons on their own link using the unicast-group extension
//!   (no multicast leaves anything); a TCP connection through the master keeps working after
//!   the client and the real server are switched to the backup, while a connection opened after
//!   the master daemon stopped does not. The backup shrugs off garbage datagrams.
//! * `kernel_master_messages_fill_our_backup`: datagrams captured from Linux's own master.
//! * `daemon_commands_match_ipvsadm_1_31`: the oracle's transcript
//!   (`syncd/tests/golden/ipvsadm-daemon.txt`) replayed against our binary.
//!
//! ```text
//!   client (198.18.1.2 on lo) c0 ── l0 master  lr ── r0 real (198.18.2.2 on lo)
//!                             c1 ── l0 backup  lr ── r1
//!                     master s0 198.18.30.1 ── s0 backup 198.18.30.2   (sync link)
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use dataplane::Options;
use syncd::config::Role;
use xlvs_tests::lab::{Pins, binary};
use xlvs_tests::netns::{Netns, is_root, prepare_endpoint, unique_prefix, veth};
use xlvs_tests::poll::wait_every;
use xlvs_tests::servers;

const VIP: &str = "198.18.100.1";
const REAL: &str = "198.18.2.2";
const CLIENT: &str = "198.18.1.2";
const SYNC_ADDR: &str = "198.18.30.2";

/// One director: its namespace, pins and state directory.
struct Director {
    ns: Netns,
    pins: Pins,
    run_dir: PathBuf,
}

impl Director {
    fn new(name: &str, run_dir: &std::path::Path) -> Result<Director> {
        Ok(Director {
            ns: Netns::new(name)?,
            pins: Pins::scratch(name, 4096),
            run_dir: run_dir.to_path_buf(),
        })
    }

    fn opts(&self) -> &Options {
        &self.pins.0
    }

    fn ipvsadm_raw(&self, args: &[&str]) -> Result<Output> {
        let bin = binary("ipvsadm")?;
        Ok(self
            .ns
            .command(bin.to_str().context("path")?)
            .args(args)
            .env("XLVS_PIN_DIR", &self.opts().pin_dir)
            .env("XLVS_RUN_DIR", &self.run_dir)
            .env("XLVS_SYNC_INTERVAL_MS", "200")
            .output()?)
    }

    fn ipvsadm(&self, args: &str) -> Result<String> {
        let out = self.ipvsadm_raw(&args.split_whitespace().collect::<Vec<_>>())?;
        ensure!(
            out.status.success(),
            "ipvsadm {args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?)
    }

    fn stats(&self, role: Role) -> syncd::state::Stats {
        // The environment is shared: tests in this file run one at a time (see `serial`).
        temp_env(&self.run_dir, || {
            syncd::state::stats(&self.opts().pin_dir, role).unwrap_or_default()
        })
    }
}

impl Drop for Director {
    fn drop(&mut self) {
        // Daemons are detached processes: stop them by their recorded pid (ours only).
        for role in ["master", "backup"] {
            let _ = self.ipvsadm_raw(&["--stop-daemon", role]);
        }
    }
}

/// Runs `f` with XLVS_RUN_DIR set to `dir` (the state records' location).
fn temp_env<T>(dir: &std::path::Path, f: impl FnOnce() -> T) -> T {
    // SAFETY: this test binary reads and writes XLVS_RUN_DIR from this thread only.
    unsafe { std::env::set_var("XLVS_RUN_DIR", dir) };
    let r = f();
    // SAFETY: as above.
    unsafe { std::env::remove_var("XLVS_RUN_DIR") };
    r
}

/// The tests here share the process environment: one at a time.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static M: std::sync::Mutex<()> = std::sync::Mutex::new(());
    M.lock().unwrap_or_else(|e| e.into_inner())
}

struct Bed {
    client: Netns,
    real: Netns,
    master: Director,
    backup: Director,
    _srv: servers::Server,
    run_dir: PathBuf,
}

impl Drop for Bed {
    fn drop(&mut self) {
        // Before the records go (the directors' own drop would find none).
        for d in [&self.master, &self.backup] {
            for role in ["master", "backup"] {
                let _ = d.ipvsadm_raw(&["--stop-daemon", role]);
            }
        }
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

fn bed() -> Result<Bed> {
    let prefix = unique_prefix("sy");
    let run_dir = std::env::temp_dir().join(format!("xlvs-run-{prefix}"));
    let client = Netns::new(&format!("{prefix}c"))?;
    let real = Netns::new(&format!("{prefix}r"))?;
    let master = Director::new(&format!("{prefix}m"), &run_dir)?;
    let backup = Director::new(&format!("{prefix}b"), &run_dir)?;
    client.ip(&["addr", "add", &format!("{CLIENT}/32"), "dev", "lo"])?;
    real.ip(&["addr", "add", &format!("{REAL}/32"), "dev", "lo"])?;
    for (i, d) in [&master, &backup].into_iter().enumerate() {
        let (cif, rif) = (format!("c{i}"), format!("r{i}"));
        veth(&client, &cif, &d.ns, "l0")?;
        veth(&real, &rif, &d.ns, "lr")?;
        let cnet = format!("198.18.{}", 10 + i);
        let rnet = format!("198.18.{}", 20 + i);
        client.ip(&["addr", "add", &format!("{cnet}.2/24"), "dev", &cif])?;
        d.ns.ip(&["addr", "add", &format!("{cnet}.1/24"), "dev", "l0"])?;
        real.ip(&["addr", "add", &format!("{rnet}.2/24"), "dev", &rif])?;
        d.ns.ip(&["addr", "add", &format!("{rnet}.1/24"), "dev", "lr"])?;
        d.ns.ip(&["route", "add", CLIENT, "via", &format!("{cnet}.2")])?;
        d.ns.ip(&["route", "add", REAL, "via", &format!("{rnet}.2")])?;
        prepare_endpoint(&client, &cif)?;
        prepare_endpoint(&real, &rif)?;
        let xlvs = binary("xlvs")?;
        let pin = d.opts().pin_dir.to_str().context("path")?.to_string();
        let out = d.ns.exec(
            xlvs.to_str().context("path")?,
            &["--pin-dir", &pin, "attach", "l0", "lr"],
        )?;
        ensure!(out.status.success(), "attach: {out:?}");
        d.ipvsadm(&format!("-A -t {VIP}:80 -s rr"))?;
        d.ipvsadm(&format!("-a -t {VIP}:80 -r {REAL}:80 -m"))?;
    }
    // Traffic goes through the master first.
    client.ip(&["route", "add", VIP, "via", "198.18.10.1", "src", CLIENT])?;
    real.ip(&["route", "add", CLIENT, "via", "198.18.20.1"])?;
    // The sync link.
    veth(&master.ns, "s0", &backup.ns, "s0")?;
    master
        .ns
        .ip(&["addr", "add", "198.18.30.1/24", "dev", "s0"])?;
    backup
        .ns
        .ip(&["addr", "add", &format!("{SYNC_ADDR}/24"), "dev", "s0"])?;
    let srv = servers::tcp(&real, SocketAddr::new(REAL.parse()?, 80), "r0")?;
    Ok(Bed {
        client,
        real,
        master,
        backup,
        _srv: srv,
        run_dir,
    })
}

/// Opens a connection to the VIP from the client namespace and makes one exchange.
fn open_conn(client: &Netns) -> Result<TcpStream> {
    client
        .run_in(|| -> Result<TcpStream> {
            let s = TcpStream::connect_timeout(
                &SocketAddr::new(VIP.parse()?, 80),
                Duration::from_secs(3),
            )?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            let mut s2 = s.try_clone()?;
            let mut r = BufReader::new(s.try_clone()?);
            let mut greeting = String::new();
            r.read_line(&mut greeting)?;
            ensure!(greeting.trim() == "r0", "greeting {greeting:?}");
            exchange(&mut s2, "first")?;
            Ok(s)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("client thread panicked"))??
}

/// Sends a line on an open connection and expects the real's echo.
fn exchange(s: &mut TcpStream, word: &str) -> Result<()> {
    writeln!(s, "{word}")?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut echo = String::new();
    r.read_line(&mut echo)?;
    ensure!(echo.trim() == format!("r0 {word}"), "echo {echo:?}");
    Ok(())
}

#[test]
fn established_connection_survives_failover() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let _serial = serial();
    let b = bed()?;
    let group = format!("--mcast-interface s0 --mcast-group {SYNC_ADDR} --syncid 9");
    b.backup
        .ipvsadm(&format!("--start-daemon backup {group}"))?;
    b.master
        .ipvsadm(&format!("--start-daemon master {group}"))?;
    assert_eq!(
        b.master.ipvsadm("-L --daemon")?,
        format!(
            "master sync daemon (mcast=s0, syncid=9, maxlen=1472, group={SYNC_ADDR}, port=8848, ttl=1)\n"
        )
    );
    let line = b.backup.ipvsadm("-L --daemon")?;
    assert!(
        line.starts_with("backup sync daemon (mcast=s0, syncid=9, maxlen=1472,"),
        "{line}"
    );

    // Garbage and foreign sync ids first: counted, ignored, the backup keeps working.
    b.master.run_in_ns(|| -> Result<()> {
        let u = UdpSocket::bind("198.18.30.1:0")?;
        let to = (SYNC_ADDR.parse::<Ipv4Addr>()?, 8848);
        u.send_to(b"", to)?;
        u.send_to(b"\x00\x09\x00\x05\x01", to)?; // size 5, version byte missing
        u.send_to(&[0, 9, 0, 8, 1, 1, 0, 0], to)?; // one record announced, none present
        u.send_to(&[0, 3, 0, 8, 0, 1, 0, 0], to)?; // syncid 3: not ours
        Ok(())
    })?;
    wait_for("the backup to count the garbage", 5, || {
        let s = b.backup.stats(Role::Backup);
        s.malformed == 3 && s.other_syncid == 1
    })?;

    // A connection through the master, announced to the backup.
    let mut synced = open_conn(&b.client)?;
    wait_for("the backup to insert the connection", 10, || {
        b.backup.stats(Role::Backup).inserted >= 1
    })?;
    let conns = b.backup.ipvsadm("-Lcn")?;
    assert!(
        conns.lines().any(|l| l.starts_with("TCP")
            && l.contains("ESTABLISHED")
            && l.contains(&format!("{CLIENT}:"))
            && l.contains(&format!("{VIP}:80"))
            && l.contains(&format!("{REAL}:80"))),
        "backup's table:\n{conns}"
    );
    assert!(b.master.stats(Role::Master).sent_conns >= 1);

    // A connection the backup never hears of.
    b.master.ipvsadm("--stop-daemon master")?;
    assert_eq!(b.master.ipvsadm("-L --daemon")?, "");
    let mut unsynced = open_conn(&b.client)?;

    // Failover: the master's links go down, client and real route through the backup.
    b.master.ns.ip(&["link", "set", "l0", "down"])?;
    b.master.ns.ip(&["link", "set", "lr", "down"])?;
    b.client.ip(&[
        "route",
        "replace",
        VIP,
        "via",
        "198.18.11.1",
        "dev",
        "c1",
        "src",
        CLIENT,
    ])?;
    b.real.ip(&[
        "route",
        "replace",
        CLIENT,
        "via",
        "198.18.21.1",
        "dev",
        "r1",
    ])?;

    exchange(&mut synced, "after-failover").context("the synced connection")?;
    exchange(&mut synced, "still-there").context("the synced connection")?;
    // Without the backup's entry, its packets are not a new connection (no SYN): reset.
    unsynced.set_read_timeout(Some(Duration::from_millis(1500)))?;
    assert!(
        exchange(&mut unsynced, "lost").is_err(),
        "an unsynced connection should not survive"
    );
    let c = dataplane::Dataplane::open(b.backup.opts())?.counters()?;
    assert!(
        c[ebpf_common::counter::RST_SENT as usize]
            + c[ebpf_common::counter::DROP_NO_SESSION as usize]
            > 0
    );
    drop(synced);
    Ok(())
}

impl Director {
    /// Runs `f` on a thread inside this director's namespace.
    fn run_in_ns<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.ns
            .run_in(f)
            .join()
            .map_err(|_| anyhow::anyhow!("thread panicked"))??
    }
}

/// One command of the oracle transcript: its arguments, expected output and exit status.
struct Step {
    args: Vec<String>,
    output: String,
    rc: i32,
}

fn transcript() -> Vec<Step> {
    let text = include_str!("../../syncd/tests/golden/ipvsadm-daemon.txt");
    let mut steps: Vec<Step> = Vec::new();
    for line in text.lines() {
        if line.starts_with("## ") {
            continue;
        }
        if let Some(cmd) = line.strip_prefix("# ipvsadm") {
            steps.push(Step {
                args: cmd.split_whitespace().map(String::from).collect(),
                output: String::new(),
                rc: -1,
            });
        } else if let Some(rc) = line.strip_prefix("rc=") {
            steps.last_mut().expect("a command").rc = rc.parse().expect("rc");
        } else {
            let s = steps.last_mut().expect("a command");
            s.output.push_str(line);
            s.output.push('\n');
        }
    }
    steps
}

/// Our tests may not use multicast: starts get a unicast group in 198.18.0.0/15 (or
/// 2001:db8::/32) instead of the default or given multicast one, and the expected listing
/// says that group. The two starts 1.31 refuses for their unicast group are our extension:
/// they succeed here (and are stopped again to keep the transcript in step).
fn replay_group(args: &[String]) -> Option<(String, String)> {
    let given = args
        .iter()
        .position(|a| a == "--mcast-group")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    match given {
        None => Some(("224.0.0.81".into(), "198.18.0.81".into())),
        Some("224.0.0.99") => Some(("224.0.0.99".into(), "198.18.0.99".into())),
        Some("ff02::99") => Some(("ff02::99".into(), "2001:db8::99".into())),
        _ => None,
    }
}

#[test]
fn daemon_commands_match_ipvsadm_1_31() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let _serial = serial();
    let prefix = unique_prefix("sg");
    let run_dir = std::env::temp_dir().join(format!("xlvs-run-{prefix}"));
    let d = Director::new(&format!("{prefix}d"), &run_dir)?;
    d.ns.sysctl("net.ipv6.conf.all.disable_ipv6", "0")?;
    d.ns.sysctl("net.ipv6.conf.lo.disable_ipv6", "0")?;
    // Unicast groups need a route: 198.18.0.0/16 and 2001:db8::/64 on lo, inside the namespace.
    d.ns.ip(&["addr", "add", "198.18.0.1/16", "dev", "lo"])?;
    d.ns.ip(&["-6", "addr", "add", "2001:db8::1/64", "dev", "lo", "nodad"])?;
    let _cleanup = RemoveOnDrop(run_dir.clone());
    let mut groups: Vec<(String, String)> = Vec::new();
    let mut failures = Vec::new();
    for step in transcript() {
        let mut args = step.args.clone();
        let starting = args.iter().any(|a| a.starts_with("--start-daemon"));
        let extension = starting
            && args.windows(2).any(|w| {
                w[0] == "--mcast-group" && (w[1] == "198.18.0.9" || w[1] == "2001:db8::1")
            });
        if starting && step.rc == 0 {
            let (from, to) = replay_group(&args).context("a start with a multicast group")?;
            match args.iter().position(|a| a == "--mcast-group") {
                Some(i) => args[i + 1] = to.clone(),
                None => args.extend(["--mcast-group".to_string(), to.clone()]),
            }
            groups.push((from, to));
        }
        let out = d.ipvsadm_raw(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        for (from, to) in &groups {
            text = text.replace(&format!("group={to},"), &format!("group={from},"));
        }
        let rc = out.status.code().unwrap_or(-1);
        if extension {
            // Documented difference: accepted, started; stop it again.
            if rc != 0 || !text.is_empty() {
                failures.push(format!(
                    "{:?}: extension start gave {rc} {text:?}",
                    step.args
                ));
                continue;
            }
            let stop = d.ipvsadm_raw(&["--stop-daemon", "master"])?;
            if !stop.status.success() {
                failures.push(format!("{:?}: stop after the extension start", step.args));
            }
            continue;
        }
        if rc != step.rc || text != step.output {
            failures.push(format!(
                "ipvsadm {}: expected rc={} {:?}, got rc={rc} {text:?}",
                step.args.join(" "),
                step.rc,
                step.output
            ));
        }
    }
    ensure!(failures.is_empty(), "differences:\n{}", failures.join("\n"));
    // Nothing left running or recorded.
    assert_eq!(d.ipvsadm("-L --daemon")?, "");
    let dir = temp_env(&run_dir, || syncd::state::dir(&d.opts().pin_dir));
    for role in ["master", "backup"] {
        for ext in ["json", "stats"] {
            let f = dir.join(format!("{role}.{ext}"));
            assert!(!f.exists(), "{} left behind", f.display());
        }
    }
    Ok(())
}

/// Removes a directory when dropped (after the director declared later, which stops its daemons).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The datagrams Linux 6.1's own master sent (`syncd/tests/golden/kernel-capture.txt`), given to
/// our backup: the kernel's connections and template appear in our table.
#[test]
fn kernel_master_messages_fill_our_backup() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let _serial = serial();
    let prefix = unique_prefix("sk");
    let run_dir = std::env::temp_dir().join(format!("xlvs-run-{prefix}"));
    let _cleanup = RemoveOnDrop(run_dir.clone());
    let d = Director::new(&format!("{prefix}d"), &run_dir)?;
    // The guest's rules (see the capture's header).
    for rule in [
        "-A -t 198.18.0.1:80 -s rr",
        "-a -t 198.18.0.1:80 -r 198.18.1.2:8080 -m",
        "-A -u 198.18.0.1:53 -s rr",
        "-a -u 198.18.0.1:53 -r 198.18.1.2:5353 -m",
        "-A -t 198.18.0.1:82 -s rr -p 300",
        "-a -t 198.18.0.1:82 -r 198.18.1.2:8080 -m",
    ] {
        d.ipvsadm(rule)?;
    }
    d.ns.ip(&["addr", "add", "198.18.0.5/32", "dev", "lo"])?;
    d.ipvsadm("--start-daemon backup --mcast-interface lo --mcast-group 198.18.0.5 --syncid 7")?;
    let datagrams: Vec<Vec<u8>> = include_str!("../../syncd/tests/golden/kernel-capture.txt")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().nth(2))
        .map(|hex| {
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect()
        })
        .collect();
    assert_eq!(datagrams.len(), 2);
    d.run_in_ns(move || -> Result<()> {
        let u = UdpSocket::bind("198.18.0.5:0")?;
        for m in &datagrams {
            u.send_to(m, ("198.18.0.5", 8848))?;
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    })?;
    wait_for("the backup to take both messages", 10, || {
        d.stats(Role::Backup).received == 2
    })?;
    let s = d.stats(Role::Backup);
    assert_eq!((s.malformed, s.skipped, s.no_service), (0, 0, 0), "{s:?}");
    // 4 connections/templates, announced 16 times in all.
    assert_eq!(s.inserted + s.refreshed, 16, "{s:?}");
    let table = d.ipvsadm("-Lcn")?;
    for (proto, state, client, virt, dest) in [
        (
            "TCP",
            "TIME_WAIT",
            "198.18.1.1:40001",
            "198.18.0.1:80",
            "198.18.1.2:8080",
        ),
        (
            "UDP",
            "UDP",
            "198.18.1.1:40002",
            "198.18.0.1:53",
            "198.18.1.2:5353",
        ),
        (
            "TCP",
            "TIME_WAIT",
            "198.18.1.1:40003",
            "198.18.0.1:82",
            "198.18.1.2:8080",
        ),
        (
            "IP",
            "NONE",
            "198.18.1.1:0",
            "198.18.0.1:82",
            "198.18.1.2:8080",
        ),
    ] {
        assert!(
            table.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() == 6 && (f[0], f[2], f[3], f[4], f[5]) == (proto, state, client, virt, dest)
            }),
            "{proto} {state} {client} missing from\n{table}"
        );
    }
    d.ipvsadm("--stop-daemon backup")?;
    Ok(())
}

/// Polls every 50 ms for up to `secs` seconds.
fn wait_for(what: &str, secs: u64, ok: impl FnMut() -> bool) -> Result<Duration> {
    wait_every(
        what,
        Duration::from_secs(secs),
        Duration::from_millis(50),
        ok,
    )
}
