//! Restart without re-election: our keepalived MASTER, Debian's keepalived 2.2.7 BACKUP. A
//! restart with `-V` (what a unit passes for restarts and binary upgrades: no priority 0, VIPs
//! left) that is back within the peer's master-down interval keeps the VIP and the MASTER
//! role: a client hitting the VIP every 10 ms sees no failure and the peer's log shows no
//! transition. A stop without `-V` hands over to the peer at once.
//! Needs root and /usr/sbin/keepalived.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use xlvs_tests::keepalived::{Keepalived, Workdir};
use xlvs_tests::lab::Pins;
use xlvs_tests::netns::{Netns, is_root, unique_prefix, veth};
use xlvs_tests::poll::wait_for;

const REAL_KEEPALIVED: &str = "/usr/sbin/keepalived";
const VIP: &str = "198.18.75.100";

fn conf(ifname: &str, priority: u8) -> String {
    format!(
        "global_defs {{\n vrrp_garp_master_delay 0\n}}\n\
         vrrp_instance VI_R {{\n state BACKUP\n interface {ifname}\n virtual_router_id 75\n \
         priority {priority}\n version 3\n advert_int 0.5\n \
         virtual_ipaddress {{\n  {VIP}/32 dev {ifname}\n }}\n}}\n"
    )
}

fn has_vip(ns: &Netns, ifname: &str) -> bool {
    ns.ip(&["-o", "addr", "show", "dev", ifname])
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("{VIP}/32")))
        .unwrap_or(false)
}

struct Real(Child);

impl Drop for Real {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A client in `ns` connecting to VIP:7070 every 10 ms (request, echo): (ok, failed).
struct Client {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    handle: std::thread::JoinHandle<()>,
}

impl Client {
    fn start(ns: &Netns) -> Client {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let (s, o, f) = (stop.clone(), ok.clone(), failed.clone());
        let handle = ns.run_in(move || {
            let addr = SocketAddr::new(VIP.parse().unwrap(), 7070);
            while !s.load(Ordering::Relaxed) {
                let good = TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                    .and_then(|mut c| {
                        c.set_read_timeout(Some(Duration::from_millis(500)))?;
                        c.write_all(b"ping")?;
                        let mut b = [0u8; 4];
                        c.read_exact(&mut b)?;
                        Ok(&b == b"ping")
                    })
                    .unwrap_or(false);
                if good { &o } else { &f }.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Client {
            stop,
            ok,
            failed,
            handle: std::thread::spawn(move || {
                let _ = handle.join();
            }),
        }
    }

    fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.handle.join();
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// An echo server on every address of `ns` (the VIP included while it is there).
fn echo_server(ns: &Netns) -> Result<()> {
    let l = ns
        .run_in(|| TcpListener::bind("0.0.0.0:7070"))
        .join()
        .map_err(|_| anyhow::anyhow!("listener thread"))???;
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut c = c;
                let mut b = [0u8; 4];
                if c.read_exact(&mut b).is_ok() {
                    let _ = c.write_all(&b);
                }
            });
        }
    });
    Ok(())
}

fn peer_took_over(log: &Path) -> bool {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .contains("Entering MASTER STATE")
}

#[test]
fn restart_with_dont_release_vrrp_keeps_master_and_the_vip() -> Result<()> {
    if !is_root() || !Path::new(REAL_KEEPALIVED).exists() {
        xlvs_tests::skip(&format!("needs root and {REAL_KEEPALIVED}"));
        return Ok(());
    }
    let p = unique_prefix("krs");
    let a = Netns::new(&format!("{p}a"))?;
    let b = Netns::new(&format!("{p}b"))?;
    veth(&a, "va", &b, "vb")?;
    a.ip(&["addr", "add", "198.18.75.1/24", "dev", "va"])?;
    b.ip(&["addr", "add", "198.18.75.2/24", "dev", "vb"])?;
    let pins = Pins::scratch(&p, 4096);
    let dir = Workdir::new(&p)?;
    let run_dir = dir.path("run");
    let run_env = [("XLVS_RUN_DIR", run_dir.to_str().context("path")?)];
    echo_server(&a)?;

    let theirs_conf = dir.path("theirs.conf");
    std::fs::write(&theirs_conf, conf("vb", 100))?;
    let theirs_log = dir.path("theirs.log");
    let log = std::fs::File::create(&theirs_log)?;
    let _theirs = Real(
        b.command(REAL_KEEPALIVED)
            .args(["-n", "-l", "-G", "-P", "-f"])
            .arg(&theirs_conf)
            .args(["-p"])
            .arg(dir.path("t.pid"))
            .args(["-r"])
            .arg(dir.path("t-vrrp.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?,
    );
    let ours_conf = dir.path("ours.conf");
    std::fs::write(&ours_conf, conf("va", 150))?;
    let with_v = |extra: &[&str]| -> Result<Keepalived> {
        Keepalived::start_with_args(&a, &pins.0, &dir, &ours_conf, extra, &run_env)
    };
    let mut ours = with_v(&["-V", "-P"])?;
    wait_for("ours is master", Duration::from_secs(10), || {
        has_vip(&a, "va")
    })?;
    std::thread::sleep(Duration::from_secs(1));
    assert!(!peer_took_over(&theirs_log), "peer master before the test");

    // Traffic through the VIP while ours restarts with -V.
    let client = Client::start(&b);
    std::thread::sleep(Duration::from_millis(500));
    ours.signal(libc::SIGTERM)?;
    ours.wait(Duration::from_secs(5))?;
    assert!(has_vip(&a, "va"), "-V leaves the VIP in place");
    // The new process may itself run without -V: the record is what counts.
    let mut ours = with_v(&["-P"])?;
    ours.wait_log("resuming MASTER", Duration::from_secs(5))?;
    std::thread::sleep(Duration::from_secs(2));
    let (ok, failed) = client.finish();
    assert!(
        !peer_took_over(&theirs_log),
        "the 2.2.7 peer saw a transition:\n{}",
        std::fs::read_to_string(&theirs_log)?
    );
    assert!(
        ok > 50 && failed == 0,
        "VIP traffic: {ok} ok, {failed} failed"
    );
    assert!(has_vip(&a, "va") && !has_vip(&b, "vb"));

    // A stop without -V: priority 0, VIP released, the peer takes over at once.
    ours.signal(libc::SIGTERM)?;
    ours.wait(Duration::from_secs(5))?;
    assert!(!has_vip(&a, "va"), "VIP released");
    wait_for("peer takes over", Duration::from_secs(5), || {
        peer_took_over(&theirs_log)
    })?;
    Ok(())
}
