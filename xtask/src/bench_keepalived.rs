//! The keepalived daemon's control path: programming N virtual servers x 4 reals at start, and a
//! SIGHUP reload (one weight changed, and nothing changed), beside `ipvsadm -R` of the same rules
//! and a single `ipvsadm -e` measured in the same run. No health checkers (no traffic at all).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use xlvs_tests::netns::{is_root, unique_prefix};

const SERVICES: u32 = 2000;
const REALS: u32 = 4;

fn vip(s: u32) -> String {
    format!("198.18.{}.{}", 100 + s / 250, s % 250 + 1)
}

fn rip(s: u32, r: u32) -> String {
    format!("198.19.{}.{}", r, s % 250 + 1)
}

fn config(first_weight: u32) -> String {
    let mut c = String::new();
    for s in 0..SERVICES {
        c.push_str(&format!(
            "virtual_server {} 80 {{\n  lb_algo wrr\n  lb_kind NAT\n  protocol TCP\n",
            vip(s)
        ));
        for r in 0..REALS {
            let w = if s == 0 && r == 0 {
                first_weight
            } else {
                r + 1
            };
            c.push_str(&format!(
                "  real_server {} 8080 {{\n    weight {w}\n  }}\n",
                rip(s, r)
            ));
        }
        c.push_str("}\n");
    }
    c
}

fn rules() -> String {
    let mut c = String::new();
    for s in 0..SERVICES {
        c.push_str(&format!("-A -t {}:80 -s wrr\n", vip(s)));
        for r in 0..REALS {
            c.push_str(&format!(
                "-a -t {}:80 -r {}:8080 -m -w {}\n",
                vip(s),
                rip(s, r),
                r + 1
            ));
        }
    }
    c
}

struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Daemon {
    /// Waits for a log line containing `what`; the line.
    fn wait_for(&self, what: &str) -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(100))
                && l.contains(what)
            {
                return Ok(l);
            }
        }
        bail!("keepalived never logged `{what}`")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// "... in 123 ms" → 123.
fn ms_of(line: &str) -> Result<f64> {
    let i = line.rfind(" in ").context("no timing")?;
    let v = line[i + 4..].trim_end_matches(" ms").trim();
    Ok(v.parse()?)
}

pub fn run() -> Result<()> {
    if !is_root() {
        bail!("the keepalived benchmark needs root (BPF)");
    }
    let ipvsadm = xlvs_tests::lab::binary("ipvsadm")?;
    let keepalived = xlvs_tests::lab::binary("keepalived")?;
    let prefix = unique_prefix("xk");
    let pin = format!("/sys/fs/bpf/xlvs-{prefix}");
    let opts = dataplane::Options {
        pin_dir: pin.clone().into(),
        max_conns: 65536,
    };
    let _cleanup = xlvs_tests::lab::Pins(opts);
    let dir = std::env::temp_dir().join(format!("xlvs-bench-{prefix}"));
    std::fs::create_dir_all(&dir)?;
    let conf = dir.join("keepalived.conf");

    let ipvsadm_run = |args: &[&str], input: &str| -> Result<f64> {
        Ok(crate::stats::time_ipvsadm(&ipvsadm, &pin, args, input)?.0 * 1000.0)
    };
    ipvsadm_run(&["-Ln"], "")?; // creates the tables: loading is not what we measure
    let restore_ms = ipvsadm_run(&["-R"], &rules())?;
    let edit_ms = ipvsadm_run(
        &[
            "-e",
            "-t",
            &format!("{}:80", vip(0)),
            "-r",
            &format!("{}:8080", rip(0, 0)),
            "-m",
            "-w",
            "9",
        ],
        "",
    )?;
    ipvsadm_run(&["-C"], "")?;

    std::fs::write(&conf, config(1))?;
    let t = Instant::now();
    let mut child = Command::new(&keepalived)
        .args(["-n", "-l", "-D", "-G", "-f"])
        .arg(&conf)
        .arg("-p")
        .arg(dir.join("k.pid"))
        .arg("-c")
        .arg(dir.join("kc.pid"))
        .env("XLVS_PIN_DIR", &pin)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let (tx, lines) = mpsc::channel();
    let stderr = child.stderr.take().context("stderr")?;
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let daemon = Daemon { child, lines };
    let start_line = daemon.wait_for("Programmed")?;
    let start_wall = t.elapsed().as_secs_f64() * 1000.0;
    let start_ms = ms_of(&start_line)?;

    std::fs::write(&conf, config(9))?;
    let signal = |d: &Daemon| {
        let pid = nix::unistd::Pid::from_raw(d.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP);
    };
    let t = Instant::now();
    signal(&daemon);
    let one = daemon.wait_for("Reload finished")?;
    let one_wall = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    signal(&daemon);
    let none = daemon.wait_for("Reload finished")?;
    let none_wall = t.elapsed().as_secs_f64() * 1000.0;
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "keepalived control path: {SERVICES} virtual servers x {REALS} reals (no checkers), release build"
    );
    println!("{:<52} {:>12} {:>12}", "case", "ms", "x baseline");
    println!(
        "{:<52} {:>12.1} {:>12}",
        "baseline: ipvsadm -R of the same rules", restore_ms, "1.00"
    );
    println!(
        "{:<52} {:>12.1} {:>12.2}",
        "keepalived start: program everything (daemon's figure)",
        start_ms,
        start_ms / restore_ms
    );
    println!(
        "{:<52} {:>12.1} {:>12.2}",
        "keepalived start: exec to programmed (wall, incl. parse)",
        start_wall,
        start_wall / restore_ms
    );
    println!(
        "{:<52} {:>12.1} {:>12}",
        "baseline: one ipvsadm -e (process incl.)", edit_ms, "1.00"
    );
    println!(
        "{:<52} {:>12.1} {:>12.2}   [{}]",
        "SIGHUP reload, one weight changed (wall)",
        one_wall,
        one_wall / edit_ms,
        one.trim()
    );
    println!(
        "{:<52} {:>12.1} {:>12.2}   [{}]",
        "SIGHUP reload, nothing changed (wall)",
        none_wall,
        none_wall / edit_ms,
        none.trim()
    );
    Ok(())
}
