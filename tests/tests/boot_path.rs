//! The boot path from nothing: the units of `packaging/systemd/` are ordered as systemd orders
//! them and their own commands run in that order on a fresh director (nothing loaded, nothing
//! attached): xlvs.service attaches from its configuration file, the timers start, ipvsadm.service
//! restores /etc/ipvsadm.rules as Debian's init script does, keepalived.service (Type=notify)
//! programs its virtual servers, xlvs-metrics.service serves. Then traffic through both VIPs
//! is balanced over both reals. A configuration naming a missing interface fails with one
//! line naming it and attaches nothing. Needs root.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use xlvs_tests::keepalived::{Workdir, ipvsadm};
use xlvs_tests::lab::{Lab, VIP, binary};
use xlvs_tests::netns::is_root;
use xlvs_tests::servers;
use xlvs_tests::units::{Unit, environment_file, exec_argv, load_all, start_order, unit_dir};

const UNITS: [&str; 5] = [
    "keepalived.service",
    "ipvsadm.service",
    "xlvs-metrics.service",
    "xlvs-timers.service",
    "xlvs.service",
];

/// Background processes of Type=simple/notify units, killed (by pid) on drop.
struct Running(Vec<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn served_by(port: u16, n: usize, lab: &Lab) -> Result<BTreeMap<String, usize>> {
    let t = lab
        .client
        .run_in(move || -> Result<BTreeMap<String, usize>> {
            let mut by = BTreeMap::new();
            for _ in 0..n {
                let (name, _) = servers::exchange(SocketAddr::new(IpAddr::V4(VIP), port))?;
                *by.entry(name).or_default() += 1;
            }
            Ok(by)
        });
    t.join().map_err(|_| anyhow::anyhow!("client panicked"))??
}

#[test]
fn units_boot_a_director_from_nothing() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let units = load_all(&unit_dir(), &UNITS)?;
    let order = start_order(&units)?;
    let at = |n: &str| order.iter().position(|u| u == n).unwrap();
    for later in [
        "xlvs-timers.service",
        "ipvsadm.service",
        "keepalived.service",
    ] {
        assert!(
            at("xlvs.service") < at(later),
            "xlvs.service before {later}: {order:?}"
        );
    }
    let unit = |n: &str| units.iter().find(|u| u.name == n).unwrap();
    for programs_tables in ["ipvsadm.service", "keepalived.service"] {
        assert!(
            unit(programs_tables)
                .list("Requires")
                .contains(&"xlvs.service".to_string()),
            "{programs_tables} requires xlvs.service: tables are never programmed unattached"
        );
    }

    let lab = Lab::unattached(2)?;
    let _srv = lab.tcp_servers(80)?;
    let dir = Workdir::new(&lab.prefix)?;
    let (r0, r1) = (lab.real_ip(0), lab.real_ip(1));
    let files: BTreeMap<&str, PathBuf> = [
        "/etc/xlvs/xlvs.conf",
        "/etc/default/ipvsadm",
        "/etc/ipvsadm.rules",
        "/etc/keepalived/keepalived.conf",
        "/etc/default/keepalived",
        "/etc/default/xlvs-metrics",
    ]
    .into_iter()
    .map(|f| (f, dir.path(&f.replace('/', "_"))))
    .collect();
    let write = |f: &str, text: String| std::fs::write(&files[f], text);

    // A missing interface: one line naming it, nothing attached.
    write("/etc/xlvs/xlvs.conf", "interfaces = l0 nosuch0\n".into())?;
    let bad = lab
        .director
        .command(binary("xlvs")?.to_str().context("path")?)
        .args(["--pin-dir"])
        .arg(&lab.opts.pin_dir)
        .args(["boot", "--config"])
        .arg(&files["/etc/xlvs/xlvs.conf"])
        .output()?;
    assert!(!bad.status.success());
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr),
        "xlvs: no such interface: nosuch0\n"
    );
    assert!(
        dataplane::attached(&lab.opts.pin_dir).is_empty(),
        "nothing attached"
    );

    write(
        "/etc/xlvs/xlvs.conf",
        "interfaces = l0 l1 l2\nmode = auto\n".into(),
    )?;
    write(
        "/etc/default/ipvsadm",
        "AUTO=\"true\"\nDAEMON=\"none\"\n".into(),
    )?;
    write(
        "/etc/ipvsadm.rules",
        format!(
            "# ipvsadm.rules\n-A -t {VIP}:80 -s rr\n-a -t {VIP}:80 -r {r0}:80 -m -w 1\n\
             -a -t {VIP}:80 -r {r1}:80 -m -w 1\n"
        ),
    )?;
    write(
        "/etc/keepalived/keepalived.conf",
        format!(
            "virtual_server {VIP} 81 {{\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n  \
             real_server {r0} 80 {{ weight 1 }}\n  real_server {r1} 80 {{ weight 1 }}\n}}\n"
        ),
    )?;
    write(
        "/etc/default/keepalived",
        format!(
            "DAEMON_ARGS=\"-l -G -f {} -p {} -c {} -r {}\"\n",
            files["/etc/keepalived/keepalived.conf"].display(),
            dir.path("k.pid").display(),
            dir.path("kc.pid").display(),
            dir.path("kr.pid").display()
        ),
    )?;
    write(
        "/etc/default/xlvs-metrics",
        "LISTEN=127.0.0.1:9587\n".into(),
    )?;

    let bins: BTreeMap<&str, PathBuf> = [
        ("/usr/sbin/xlvs", binary("xlvs")?),
        ("/usr/sbin/keepalived", binary("keepalived")?),
        ("/sbin/ipvsadm", binary("ipvsadm")?),
        (
            "/usr/lib/xlvs/ipvsadm-service",
            unit_dir().join("../lib/ipvsadm-service"),
        ),
    ]
    .into_iter()
    .collect();
    let rewrite = |w: &str| -> String {
        if let Some(b) = bins.get(w) {
            return b.display().to_string();
        }
        match files.get(w) {
            Some(f) => f.display().to_string(),
            None => w.to_string(),
        }
    };
    let run_dir = dir.path("run");
    let mut running = Running(Vec::new());
    for name in &order {
        let u = unit(name);
        if !conditions_hold(u, &rewrite) {
            eprintln!("{name}: condition not met, skipped");
            continue;
        }
        let mut env = BTreeMap::new();
        for f in u.all("EnvironmentFile") {
            let path = rewrite(f.trim_start_matches('-'));
            if Path::new(&path).exists() {
                env.extend(environment_file(Path::new(&path))?);
            }
        }
        for line in u.all("ExecStart") {
            let argv = exec_argv(line, &env, &rewrite);
            let mut cmd = lab.director.command(&argv[0]);
            cmd.args(&argv[1..])
                .env("XLVS_PIN_DIR", &lab.opts.pin_dir)
                .env("XLVS_RUN_DIR", &run_dir)
                .env("TMPDIR", &dir.0)
                .env("IPVSADM", &bins["/sbin/ipvsadm"])
                .env("IPVSADM_RULES", &files["/etc/ipvsadm.rules"])
                .env("IPVSADM_CONFIG", &files["/etc/default/ipvsadm"])
                .stdin(Stdio::null());
            match u.get("Type").unwrap_or("simple") {
                "oneshot" => {
                    let out = cmd.output()?;
                    ensure!(
                        out.status.success(),
                        "{name}: {argv:?}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                "notify" => {
                    // As systemd: the unit is started once it says READY=1.
                    let sock_path = dir.path(&format!("{name}.notify"));
                    let sock = UnixDatagram::bind(&sock_path)?;
                    sock.set_read_timeout(Some(Duration::from_secs(60)))?;
                    let log = std::fs::File::create(dir.path(&format!("{name}.log")))?;
                    cmd.env("NOTIFY_SOCKET", &sock_path)
                        .stdout(log.try_clone()?)
                        .stderr(log);
                    running.0.push(cmd.spawn()?);
                    let mut buf = [0u8; 256];
                    let n = sock
                        .recv(&mut buf)
                        .with_context(|| format!("{name}: no READY=1"))?;
                    ensure!(buf[..n].starts_with(b"READY=1"), "{name}: {:?}", &buf[..n]);
                }
                "simple" => {
                    let log = std::fs::File::create(dir.path(&format!("{name}.log")))?;
                    cmd.stdout(log.try_clone()?).stderr(log);
                    running.0.push(cmd.spawn()?);
                }
                t => bail!("{name}: Type={t} not handled here"),
            }
        }
    }

    assert_eq!(dataplane::attached(&lab.opts.pin_dir), ["l0", "l1", "l2"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !dataplane::timers::running(&lab.opts.pin_dir) {
        ensure!(
            std::time::Instant::now() < deadline,
            "xlvs-timers.service runs the timers"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let listing = ipvsadm(&lab, &["-Ln"])?;
    assert_eq!(listing.matches("Masq").count(), 4, "{listing}");
    for port in [80, 81] {
        let by = served_by(port, 8, &lab)?;
        assert_eq!(
            by.values().copied().collect::<Vec<_>>(),
            [4, 4],
            "VIP:{port} balanced over both reals: {by:?}"
        );
    }
    // xlvs-metrics.service answers with node_exporter's series for the four backends.
    let mut scraped = String::new();
    for _ in 0..50 {
        let out = lab
            .director
            .exec("curl", &["-s", "http://127.0.0.1:9587/metrics"])?;
        scraped = String::from_utf8_lossy(&out.stdout).into_owned();
        if scraped.contains("node_ipvs_backend_weight{") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        scraped.matches("node_ipvs_backend_weight{").count(),
        4,
        "{scraped}"
    );
    // ... and keepalived's published state (reals' verdicts, quorum) once it has written it.
    for _ in 0..60 {
        if scraped.contains("xlvs_keepalived_up 1") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        let out = lab
            .director
            .exec("curl", &["-s", "http://127.0.0.1:9587/metrics"])?;
        scraped = String::from_utf8_lossy(&out.stdout).into_owned();
    }
    assert!(scraped.contains("xlvs_keepalived_up 1"), "{scraped}");
    assert_eq!(
        scraped.matches("xlvs_keepalived_real_up{").count(),
        2,
        "{scraped}"
    );
    assert!(
        scraped.contains("xlvs_keepalived_quorum_up{virtual_server=\"[198.18.100.1]:tcp:81\"} 1"),
        "{scraped}"
    );
    let status = String::from_utf8(lab.xlvs(&["status"])?.stderr)?;
    assert!(status.is_empty(), "no warning once booted: {status}");
    Ok(())
}

/// ConditionPathExists= / ConditionFileNotEmpty= on the rewritten paths.
fn conditions_hold(u: &Unit, rewrite: &dyn Fn(&str) -> String) -> bool {
    u.all("ConditionPathExists")
        .iter()
        .all(|p| Path::new(&rewrite(p)).exists())
        && u.all("ConditionFileNotEmpty").iter().all(|p| {
            std::fs::metadata(rewrite(p))
                .map(|m| m.len() > 0)
                .unwrap_or(false)
        })
}
