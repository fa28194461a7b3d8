//! `lvs_sync_daemon` with a VRRP instance: our keepalived starts the connection-sync daemon
//! (the one `ipvsadm --start-daemon` starts) as backup while the instance is BACKUP, switches
//! it to master when the instance becomes MASTER, back on failover, and stops it with
//! keepalived. Two directors of ours on one link; `ipvsadm -L --daemon` shows what runs.
//! The sync group is a unicast address (our extension) so nothing is sent to a multicast
//! group. Needs root.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use xlvs_tests::keepalived::{Keepalived, Workdir};
use xlvs_tests::lab::{Pins, binary};
use xlvs_tests::netns::{Netns, is_root, unique_prefix, veth};
use xlvs_tests::poll::wait_every;

/// One director: namespace, pins, the directory of its daemon records.
struct Director {
    ns: Netns,
    pins: Pins,
    run_dir: PathBuf,
}

impl Director {
    fn daemons(&self) -> String {
        let out = binary("ipvsadm").and_then(|bin| {
            Ok(self
                .ns
                .command(bin.to_str().context("path")?)
                .args(["-L", "--daemon"])
                .env("XLVS_PIN_DIR", &self.pins.0.pin_dir)
                .env("XLVS_RUN_DIR", &self.run_dir)
                .output()?)
        });
        out.map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default()
    }

    fn roles(&self) -> Vec<&'static str> {
        let text = self.daemons();
        ["master", "backup"]
            .into_iter()
            .filter(|r| text.contains(&format!("{r} sync daemon (mcast=")))
            .collect()
    }
}

impl Drop for Director {
    /// Nothing may outlive the test, whatever happened: stop both daemons.
    fn drop(&mut self) {
        if let Ok(bin) = binary("ipvsadm") {
            for role in ["master", "backup"] {
                let _ = self
                    .ns
                    .command(bin.to_str().unwrap_or("ipvsadm"))
                    .args(["--stop-daemon", role])
                    .env("XLVS_PIN_DIR", &self.pins.0.pin_dir)
                    .env("XLVS_RUN_DIR", &self.run_dir)
                    .output();
            }
        }
    }
}

fn config(ifname: &str, priority: u8) -> String {
    format!(
        "global_defs {{\n lvs_sync_daemon {ifname} VI_S id 7 group 198.18.73.2\n}}\n\
         vrrp_instance VI_S {{\n state BACKUP\n interface {ifname}\n virtual_router_id 73\n \
         priority {priority}\n version 3\n advert_int 0.1\n virtual_ipaddress {{\n  198.18.73.100/32 dev {ifname}\n }}\n}}\n"
    )
}

fn start(d: &Director, dir: &Workdir, conf: &Path) -> Result<Keepalived> {
    Keepalived::start_with_env(
        &d.ns,
        &d.pins.0,
        dir,
        conf,
        &[("XLVS_RUN_DIR", d.run_dir.to_str().context("run dir")?)],
    )
}

#[test]
fn sync_daemon_follows_the_vrrp_instance() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let p = unique_prefix("ksd");
    let dir_a = Workdir::new(&format!("{p}a"))?;
    let dir_b = Workdir::new(&format!("{p}b"))?;
    let a = Director {
        ns: Netns::new(&format!("{p}a"))?,
        pins: Pins::scratch(&format!("{p}a"), 4096),
        run_dir: dir_a.path("run"),
    };
    let b = Director {
        ns: Netns::new(&format!("{p}b"))?,
        pins: Pins::scratch(&format!("{p}b"), 4096),
        run_dir: dir_b.path("run"),
    };
    veth(&a.ns, "va", &b.ns, "vb")?;
    a.ns.ip(&["addr", "add", "198.18.73.1/24", "dev", "va"])?;
    b.ns.ip(&["addr", "add", "198.18.73.2/24", "dev", "vb"])?;
    let (conf_a, conf_b) = (dir_a.path("a.conf"), dir_b.path("b.conf"));
    std::fs::write(&conf_a, config("va", 150))?;
    std::fs::write(&conf_b, config("vb", 100))?;

    let _kb = start(&b, &dir_b, &conf_b)?;
    // Alone, b becomes master after the master-down interval: master daemon only.
    wait_for("b master daemon", Duration::from_secs(20), || {
        b.roles() == ["master"]
    })
    .with_context(|| format!("{}\n{}", b.daemons(), _kb.log_text()))?;
    let mut ka = start(&a, &dir_a, &conf_a)?;
    // a preempts: a runs the master daemon, b is back to backup.
    wait_for("a master, b backup", Duration::from_secs(20), || {
        a.roles() == ["master"] && b.roles() == ["backup"]
    })
    .with_context(|| {
        format!(
            "a: {} b: {}\n{}\n{}",
            a.daemons(),
            b.daemons(),
            ka.log_text(),
            _kb.log_text()
        )
    })?;
    assert!(a.daemons().contains("syncid=7"), "{}", a.daemons());
    // Graceful stop of a: its daemon stops with it, b's becomes master.
    ka.signal(libc::SIGTERM)?;
    ka.wait(Duration::from_secs(10))?;
    assert!(a.roles().is_empty(), "a stopped: {}", a.daemons());
    wait_for("b master again", Duration::from_secs(10), || {
        b.roles() == ["master"]
    })
    .with_context(|| b.daemons())?;
    Ok(())
}

/// Polls every 50 ms (each check runs a command).
fn wait_for(what: &str, limit: Duration, f: impl Fn() -> bool) -> Result<Duration> {
    wait_every(what, limit, Duration::from_millis(50), f)
}
