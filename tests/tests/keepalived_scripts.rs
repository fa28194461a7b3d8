//! Scripts as keepalived 2.2.7 runs them, side by side in the same namespace setup:
//! `startup_script` before anything else (a slow one is killed at `startup_script_timeout`),
//! `shutdown_script` after everything stopped, and the arguments notify scripts receive
//! (quotes, escapes, `\xHH` bytes, user/group words) byte for byte. Needs root and
//! /usr/sbin/keepalived.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use xlvs_tests::keepalived::Workdir;
use xlvs_tests::lab::binary;
use xlvs_tests::netns::{Netns, is_root, unique_prefix};

const REAL_KEEPALIVED: &str = "/usr/sbin/keepalived";

/// A script that appends its tag, then each argument in brackets, to `DIR/log` in one
/// write: the stop and notify scripts run at the same time, so lines must not interleave.
fn dump_script(dir: &Path) -> Result<PathBuf> {
    let p = dir.join("dump.sh");
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\nline=$(printf '%s' \"$1\"; shift; for a in \"$@\"; do printf ' [%s]' \"$a\"; done)\nprintf '%s\\n' \"$line\" >> {}/log\n",
            dir.display()
        ),
    )?;
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    Ok(p)
}

fn config(dump: &Path, slow: bool) -> String {
    let d = dump.display();
    let startup = if slow {
        "startup_script \"/bin/sleep 30\"\n startup_script_timeout 1\n".to_string()
    } else {
        format!("startup_script \"{d} startup\"\n")
    };
    format!(
        "global_defs {{\n script_user root\n enable_script_security\n {startup} \
         shutdown_script \"{d} shutdown\"\n}}\n\
         vrrp_instance VI_1 {{\n interface va\n virtual_router_id 51\n priority 255\n advert_int 1\n \
         virtual_ipaddress {{\n  198.18.74.100/32\n }}\n \
         notify_master \"{d} master a 'b c' d\\x41e \\\\\\\\ \\t| \\\"q\\\"\" root\n \
         notify \"{d} notify x\\\"y z\\\"w \\xff\"\n \
         notify_stop '{d} stop \"q r\" \\'t\\'' root\n}}\n"
    )
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `prog` -P with `conf` until the VIP is up, then stops it; the log lines.
fn scenario(ns: &Netns, prog: &str, dir: &Path, conf: &str) -> Result<(Vec<String>, Duration)> {
    let log = dir.join("log");
    let _ = std::fs::remove_file(&log);
    let conf_path = dir.join("k.conf");
    std::fs::write(&conf_path, conf)?;
    let out = std::fs::File::create(dir.join("daemon.log"))?;
    let t0 = Instant::now();
    let mut child = Running(
        ns.command(prog)
            .args(["-n", "-l", "-G", "-P", "-f"])
            .arg(&conf_path)
            .arg("-p")
            .arg(dir.join("p"))
            .arg("-r")
            .arg(dir.join("r"))
            .arg("-c")
            .arg(dir.join("c"))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("start")?,
    );
    let has_vip = || {
        ns.ip(&["-o", "addr", "show", "dev", "va"])
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("198.18.74.100"))
            .unwrap_or(false)
    };
    while !has_vip() {
        if t0.elapsed() > Duration::from_secs(15) {
            bail!(
                "{prog}: no VIP\n{}",
                std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let up = t0.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let pid = nix::unistd::Pid::from_raw(child.0.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let end = Instant::now() + Duration::from_secs(10);
    while child.0.try_wait()?.is_none() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let text = std::fs::read(&log).unwrap_or_default();
    let lines = String::from_utf8_lossy(&text)
        .lines()
        .map(str::to_string)
        .collect();
    Ok((lines, up))
}

#[test]
fn scripts_run_and_get_their_arguments_like_keepalived() -> Result<()> {
    if !is_root() || !Path::new(REAL_KEEPALIVED).exists() {
        xlvs_tests::skip(&format!("needs root and {REAL_KEEPALIVED}"));
        return Ok(());
    }
    let p = unique_prefix("ksc");
    let ns = Netns::new(&p)?;
    ns.ip(&["link", "add", "va", "type", "veth", "peer", "name", "vb"])?;
    for i in ["va", "vb"] {
        ns.ip(&["link", "set", i, "up"])?;
    }
    ns.ip(&["addr", "add", "198.18.74.1/24", "dev", "va"])?;
    let dir = Workdir::new(&p)?;
    let dump = dump_script(&dir.0)?;
    let ours = binary("keepalived")?;
    let (theirs_lines, _) = scenario(&ns, REAL_KEEPALIVED, &dir.0, &config(&dump, false))?;
    let (our_lines, _) = scenario(
        &ns,
        ours.to_str().context("path")?,
        &dir.0,
        &config(&dump, false),
    )?;
    // startup first, shutdown last, the notify arguments as 2.2.7 passes them.
    assert_eq!(theirs_lines.first().map(String::as_str), Some("startup"));
    assert_eq!(theirs_lines.last().map(String::as_str), Some("shutdown"));
    assert!(
        theirs_lines
            .iter()
            .any(|l| l == "master [a] [b c] [d\u{1e}] [\\] [|] [q]"),
        "{theirs_lines:?}"
    );
    // The stop and notify scripts of one transition run concurrently in both daemons: the
    // same lines, in an order only the scheduler decides.
    let sorted = |l: &[String]| {
        let mut v = l.to_vec();
        v.sort();
        v
    };
    assert_eq!(our_lines.first(), theirs_lines.first());
    assert_eq!(our_lines.last(), theirs_lines.last());
    assert_eq!(sorted(&our_lines), sorted(&theirs_lines));

    // A startup script that hangs is killed at startup_script_timeout; the daemon goes on.
    let (_, theirs_up) = scenario(&ns, REAL_KEEPALIVED, &dir.0, &config(&dump, true))?;
    let (_, ours_up) = scenario(
        &ns,
        ours.to_str().context("path")?,
        &dir.0,
        &config(&dump, true),
    )?;
    for (who, up) in [("keepalived", theirs_up), ("ours", ours_up)] {
        assert!(
            up > Duration::from_millis(900) && up < Duration::from_secs(5),
            "{who}: VIP after {up:?}"
        );
    }
    Ok(())
}
