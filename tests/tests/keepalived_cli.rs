//! keepalived's process options on our binary: `-T` (genhash, compared with 2.2.7's output on
//! the same server), `-s NAME` (run in a network namespace, pid files in its private
//! `/run/keepalived`), `instance`, `-u`, `-m`, `-a`, `-b`. Debian's 2.2.7 is built without
//! namespace support (`net_namespace`, `instance`, `use_pid_dir` are unknown keywords to it),
//! so those follow keepalived 2.2's documented behaviour. Needs root (and /usr/sbin/keepalived
//! for the genhash comparison).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use xlvs_tests::keepalived::{REAL_KEEPALIVED, Workdir};
use xlvs_tests::lab::binary;
use xlvs_tests::netns::{Netns, is_root, unique_prefix, veth};

fn run(ns: &Netns, bin: &str, args: &[&str]) -> Result<(String, i32)> {
    let out = ns.command(bin).args(args).output()?;
    Ok((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(-1),
    ))
}

/// The verbose output without what changes run to run (dates, the response time).
fn stable(s: &str) -> String {
    s.lines()
        .filter(|l| !l.starts_with("Global response time") && !l.contains("Date:"))
        .filter(|l| !l.contains(" 44 61 74 65 ") && !l.contains("Date"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn genhash_as_keepalived_2_2_7() -> Result<()> {
    if !is_root() || !Path::new(REAL_KEEPALIVED).exists() {
        xlvs_tests::skip(&format!("needs root and {REAL_KEEPALIVED}"));
        return Ok(());
    }
    let p = unique_prefix("kgh");
    let ns = Netns::new(&format!("{p}n"))?;
    ns.ip(&["addr", "add", "198.18.81.1/32", "dev", "lo"])?;
    let dir = Workdir::new(&p)?;
    // A server whose answer does not change: fixed headers, a body with binary bytes.
    let body: Vec<u8> = (0u8..=255).chain(b"tail\n".iter().copied()).collect();
    let l = ns
        .run_in(|| std::net::TcpListener::bind("198.18.81.1:8080"))
        .join()
        .map_err(|_| anyhow::anyhow!("listener"))???;
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for c in l.incoming().flatten() {
            let mut c = c;
            let mut req = [0u8; 1024];
            let _ = c.read(&mut req);
            let mut resp =
                b"HTTP/1.0 200 OK\r\nServer: fixed\r\nContent-Length: 261\r\n\r\n".to_vec();
            resp.extend_from_slice(&body);
            let _ = c.write_all(&resp);
        }
    });
    let ours = binary("keepalived")?;
    let ours = ours.to_str().context("path")?;
    let base = ["-s", "198.18.81.1", "-p", "8080", "-u", "/page"];
    for extra in [
        &[][..],
        &["-v"],
        &["-P", "1.1"],
        &["-V", "vh.example", "-P", "1.0c"],
    ] {
        let mut args = vec!["-T"];
        args.extend_from_slice(&base);
        args.extend_from_slice(extra);
        let theirs = run(&ns, REAL_KEEPALIVED, &args)?;
        let mine = run(&ns, ours, &args)?;
        assert_eq!(stable(&mine.0), stable(&theirs.0), "genhash {extra:?}");
        assert_eq!(mine.1, theirs.1);
    }
    // Nobody listening: "Connection failed", exit 0; missing port: usage, exit 1.
    for args in [
        &["-T", "-s", "198.18.81.1", "-p", "8099", "-u", "/"][..],
        &["-T", "-s", "198.18.81.1", "-u", "/"],
    ] {
        let theirs = run(&ns, REAL_KEEPALIVED, args)?;
        let mine = run(&ns, ours, args)?;
        assert_eq!(mine, theirs, "{args:?}");
    }
    drop(dir);
    Ok(())
}

/// Our daemon started from the host's namespace with `args`, its log in `log`.
fn start(args: &[&str], root: &Path, log: &Path) -> Result<Child> {
    let f = std::fs::File::create(log)?;
    Ok(Command::new(binary("keepalived")?)
        .args(["-n", "-l", "-G"])
        .args(args)
        .env("XLVS_KEEPALIVED_RUN_ROOT", root)
        .stdin(Stdio::null())
        .stdout(f.try_clone()?)
        .stderr(f)
        .spawn()?)
}

fn wait_file(p: &Path, limit: Duration) -> Result<String> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if let Ok(s) = std::fs::read_to_string(p)
            && !s.is_empty()
        {
            return Ok(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("{} not written within {limit:?}", p.display())
}

fn stop(mut c: Child) -> Result<()> {
    // SAFETY: kill(2) on the child we started.
    unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        if c.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = c.kill();
    bail!("did not stop")
}

#[test]
fn namespace_pid_files_umask_core_dumps_and_address_monitoring() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let p = unique_prefix("kns");
    let a = Netns::new(&format!("{p}a"))?;
    let b = Netns::new(&format!("{p}b"))?;
    veth(&a, "va", &b, "vb")?;
    a.ip(&["addr", "add", "198.18.82.1/24", "dev", "va"])?;
    let dir = Workdir::new(&p)?;
    let root = dir.path("run");
    let conf = dir.path("k.conf");
    std::fs::write(
        &conf,
        "vrrp_instance V {\n state MASTER\n interface va\n virtual_router_id 82\n priority 100\n \
         version 3\n advert_int 0.1\n virtual_ipaddress {\n  198.18.82.100/32\n }\n}\n\
         bfd_instance B {\n neighbor_ip 198.18.82.2\n}\n",
    )?;
    // -s: from the host's namespace into a's; pid files under <run>/keepalived/keepalived_NS;
    // -u 077 makes them 0600; -m lifts the core size limit; -a logs address changes; -b names
    // the BFD pid file.
    let bfd_pid = dir.path("bfd.pid");
    let log = dir.path("ns.log");
    let c = start(
        &[
            "-f",
            conf.to_str().context("path")?,
            "-s",
            &a.name,
            "-u",
            "077",
            "-m",
            "-a",
            "-b",
            bfd_pid.to_str().context("path")?,
        ],
        &root,
        &log,
    )?;
    let pid = c.id().to_string();
    let own = root
        .join("keepalived")
        .join(format!("keepalived_{}", a.name));
    let main = wait_file(&own.join("keepalived.pid"), Duration::from_secs(10))
        .with_context(|| std::fs::read_to_string(&log).unwrap_or_default())?;
    assert_eq!(main.trim(), pid);
    assert_eq!(
        wait_file(&own.join("vrrp.pid"), Duration::from_secs(2))?.trim(),
        pid
    );
    assert_eq!(wait_file(&bfd_pid, Duration::from_secs(2))?.trim(), pid);
    let mode = std::fs::metadata(own.join("keepalived.pid"))?
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "umask 077");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits"))?;
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max core file size") && l.contains("unlimited")),
        "{limits}"
    );
    // It runs in a: the VIP appears there.
    let t0 = Instant::now();
    let has_vip = || {
        a.ip(&["-o", "addr", "show", "dev", "va"])
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("198.18.82.100"))
            .unwrap_or(false)
    };
    while !has_vip() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(has_vip(), "{}", std::fs::read_to_string(&log)?);
    a.ip(&["addr", "add", "198.18.82.7/24", "dev", "va"])?;
    std::thread::sleep(Duration::from_millis(300));
    let text = std::fs::read_to_string(&log)?;
    for want in [
        "Netlink reflector reports IP 198.18.82.1 added to va",
        "Netlink reflector reports IP 198.18.82.100 added to va",
        "Netlink reflector reports IP 198.18.82.7 added to va",
    ] {
        assert!(text.contains(want), "{want}:\n{text}");
    }
    stop(c)?;
    assert!(
        !own.join("keepalived.pid").exists(),
        "pid file removed at exit"
    );

    // instance NAME: <run>/keepalived/keepalived_NAME.pid, vrrp_NAME.pid (in a, run from a).
    std::fs::write(
        &conf,
        format!(
            "instance I7\n{}",
            std::fs::read_to_string(&conf)?
                .replace("bfd_instance B {\n neighbor_ip 198.18.82.2\n}\n", "")
        ),
    )?;
    let log = dir.path("inst.log");
    let f = std::fs::File::create(&log)?;
    let c = a
        .command(binary("keepalived")?.to_str().context("path")?)
        .args(["-n", "-l", "-G", "-f"])
        .arg(&conf)
        .env("XLVS_KEEPALIVED_RUN_ROOT", &root)
        .stdin(Stdio::null())
        .stdout(f.try_clone()?)
        .stderr(f)
        .spawn()?;
    let pid = c.id().to_string();
    let kd = root.join("keepalived");
    assert_eq!(
        wait_file(&kd.join("keepalived_I7.pid"), Duration::from_secs(10))
            .with_context(|| std::fs::read_to_string(&log).unwrap_or_default())?
            .trim(),
        pid
    );
    assert_eq!(
        wait_file(&kd.join("vrrp_I7.pid"), Duration::from_secs(2))?.trim(),
        pid
    );
    stop(c)?;
    drop(b);
    Ok(())
}
