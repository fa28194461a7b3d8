//! Live migration from a kernel-IPVS director to an xlvs director without losing established
//! connections. On one LAN (a bridge): a client, the old director, the new one and a DR real
//! holding the VIP on its loopback.
//!
//! * The old director stands in for kernel IPVS in direct-routing mode: Debian's keepalived
//!   2.2.7 holds the VIP by VRRP (priority 200), and an nftables netdev rule sends VIP:80
//!   packets to the real's MAC untouched, which is what IPVS DR does. Its sync master is
//!   played by datagrams in the kernel's sync protocol v1 for the connections it carries
//!   (syncd's encoder, which reproduces the datagrams captured from Linux 6.1's own master
//!   byte for byte: `syncd/tests/kernel_wire.rs`), sent to the new director's backup daemon.
//! * The new director: xlvs attached, the same service (`ipvsadm -g`), `ipvsadm
//!   --start-daemon backup`, and our keepalived as VRRP backup (priority 100).
//!
//! The old keepalived stops (priority 0): ours takes the VIP. The connections the master
//! announced go on through xlvs; one it did not announce is lost (a packet without a session
//! is dropped), which shows what the sync carried. Needs root and /usr/sbin/keepalived.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use std::io::{BufRead, BufReader, Write};
use syncd::codec::{self, Record, flags};
use xlvs_tests::keepalived::{Keepalived, Workdir};
use xlvs_tests::lab::{Pins, binary};
use xlvs_tests::netns::{Netns, is_root, prepare_endpoint, unique_prefix, veth};
use xlvs_tests::poll::wait_for;
use xlvs_tests::servers;

const REAL_KEEPALIVED: &str = "/usr/sbin/keepalived";
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 60, 100);
const REAL: Ipv4Addr = Ipv4Addr::new(198, 18, 60, 20);
const NEW: &str = "198.18.60.3";
const SYNCID: u8 = 9;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn vrrp(ifname: &str, state: &str, priority: u8) -> String {
    format!(
        "vrrp_instance VI_60 {{\n  state {state}\n  interface {ifname}\n  virtual_router_id 60\n  \
         priority {priority}\n  advert_int 1\n  virtual_ipaddress {{\n    {VIP}/32 dev {ifname}\n  }}\n}}\n"
    )
}

/// One more request on an established connection: the echo must come back.
fn again(s: &mut TcpStream, name: &str) -> Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    writeln!(s, "again")?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut echo = String::new();
    r.read_line(&mut echo)?;
    ensure!(echo.trim() == format!("{name} again"), "echo {echo:?}");
    Ok(())
}

#[test]
fn kernel_director_hands_its_connections_to_xlvs() -> Result<()> {
    if !is_root() || !Path::new(REAL_KEEPALIVED).exists() {
        xlvs_tests::skip(&format!("needs root and {REAL_KEEPALIVED}"));
        return Ok(());
    }
    let p = unique_prefix("lm");
    let sw = Netns::new(&format!("{p}s"))?;
    let (c, o, n, r) = (
        Netns::new(&format!("{p}c"))?,
        Netns::new(&format!("{p}o"))?,
        Netns::new(&format!("{p}n"))?,
        Netns::new(&format!("{p}r"))?,
    );
    sw.ip(&["link", "add", "br0", "type", "bridge"])?;
    sw.ip(&["link", "set", "br0", "up"])?;
    for (ns, ifname, port, addr) in [
        (&c, "c0", "pc", "198.18.60.10/24"),
        (&o, "eo", "po", "198.18.60.2/24"),
        (&n, "en", "pn", "198.18.60.3/24"),
        (&r, "er", "pr", "198.18.60.20/24"),
    ] {
        veth(ns, ifname, &sw, port)?;
        sw.ip(&["link", "set", port, "master", "br0"])?;
        ns.ip(&["addr", "add", addr, "dev", ifname])?;
        ns.exec("ethtool", &["-K", ifname, "tx", "off"])?;
    }
    // XDP_TX from en arrives on pn: it needs a NAPI context.
    prepare_endpoint(&sw, "pn")?;
    c.sysctl("net.ipv4.conf.all.accept_redirects", "0")?;
    // The real: the VIP on its loopback, never answering ARP for it.
    r.ip(&["addr", "add", &format!("{VIP}/32"), "dev", "lo"])?;
    r.sysctl("net.ipv4.conf.all.arp_ignore", "1")?;
    r.sysctl("net.ipv4.conf.all.arp_announce", "2")?;
    let _srv = servers::tcp(&r, SocketAddr::new(IpAddr::V4(VIP), 80), "real")?;

    // The old director: DR by an nftables netdev rule, the VIP by keepalived 2.2.7.
    o.sysctl("net.ipv4.conf.all.send_redirects", "0")?;
    let dir = Workdir::new(&p)?;
    std::fs::write(
        dir.path("dr.nft"),
        format!(
            "table netdev ipvs_dr {{\n  chain in {{\n    type filter hook ingress device \"eo\" priority 0;\n    \
             ip daddr {VIP} tcp dport 80 fwd ip to {REAL} device \"eo\"\n  }}\n}}\n"
        ),
    )?;
    o.exec("nft", &["-f", dir.path("dr.nft").to_str().context("path")?])?;
    std::fs::write(dir.path("old.conf"), vrrp("eo", "MASTER", 200))?;
    let log = std::fs::File::create(dir.path("old.log"))?;
    let old = Killed(
        o.command(REAL_KEEPALIVED)
            .args(["-n", "-l", "-G", "-P", "-f"])
            .arg(dir.path("old.conf"))
            .arg("-p")
            .arg(dir.path("old.pid"))
            .arg("-r")
            .arg(dir.path("old-vrrp.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?,
    );
    let has_vip = |ns: &Netns, dev: &str| {
        ns.ip(&["-o", "addr", "show", "dev", dev])
            .map(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("{VIP}/32")))
            .unwrap_or(false)
    };
    wait_for(
        "the old director holds the VIP",
        Duration::from_secs(15),
        || has_vip(&o, "eo"),
    )?;

    // The new director: xlvs, the same service, the sync backup, our keepalived as backup.
    let pins = Pins::scratch(&p, 4096);
    let run_dir = dir.path("run");
    let xlvs = |args: &[&str]| -> Result<String> {
        let out = n
            .command(binary("xlvs")?.to_str().context("path")?)
            .arg("--pin-dir")
            .arg(&pins.0.pin_dir)
            .args(args)
            .output()?;
        ensure!(
            out.status.success(),
            "xlvs {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?)
    };
    let ipvsadm = |args: &[&str]| -> Result<String> {
        let out = n
            .command(binary("ipvsadm")?.to_str().context("path")?)
            .args(args)
            .env("XLVS_PIN_DIR", &pins.0.pin_dir)
            .env("XLVS_RUN_DIR", &run_dir)
            .output()?;
        ensure!(
            out.status.success(),
            "ipvsadm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?)
    };
    xlvs(&["attach", "en"])?;
    ipvsadm(&["-A", "-t", &format!("{VIP}:80"), "-s", "rr"])?;
    ipvsadm(&[
        "-a",
        "-t",
        &format!("{VIP}:80"),
        "-r",
        &format!("{REAL}:80"),
        "-g",
    ])?;
    ipvsadm(&[
        "--start-daemon",
        "backup",
        "--mcast-interface",
        "en",
        "--mcast-group",
        NEW,
        "--syncid",
        &SYNCID.to_string(),
    ])?;
    std::fs::write(dir.path("new.conf"), vrrp("en", "BACKUP", 100))?;
    let _new = Keepalived::start_in(&n, &pins.0, &dir, &dir.path("new.conf"))?;

    // Three connections through the old director.
    let streams = c
        .run_in(|| -> Result<Vec<TcpStream>> {
            (0..3)
                .map(|_| Ok(servers::exchange(SocketAddr::new(IpAddr::V4(VIP), 80))?.1))
                .collect()
        })
        .join()
        .map_err(|_| anyhow::anyhow!("client panicked"))???;
    let mut streams = streams;
    // The old master announces the first two, as the kernel does (DR, ESTABLISHED).
    let records: Vec<Record> = streams[..2]
        .iter()
        .map(|s| -> Result<Record> {
            let local = s.local_addr()?;
            Ok(Record {
                protocol: codec::IPPROTO_TCP,
                flags: flags::DROUTE | flags::NOOUTPUT,
                state: 1, // IP_VS_TCP_S_ESTABLISHED
                caddr: local.ip(),
                cport: local.port(),
                vaddr: IpAddr::V4(VIP),
                vport: 80,
                daddr: IpAddr::V4(REAL),
                dport: 80,
                fwmark: 0,
                timeout: 900,
                seq: None,
                pe_data: None,
                pe_name: None,
            })
        })
        .collect::<Result<_>>()?;
    let datagrams = codec::encode(SYNCID, &records, 1472);
    o.run_in(move || -> Result<()> {
        let u = UdpSocket::bind("198.18.60.2:0")?;
        for d in &datagrams {
            u.send_to(d, (NEW, 8848))?;
        }
        Ok(())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("master panicked"))???;
    wait_for(
        "the backup holds both connections",
        Duration::from_secs(10),
        || ipvsadm(&["-Lcn"]).is_ok_and(|t| t.matches("ESTABLISHED").count() == 2),
    )?;

    // The old director goes away: our keepalived takes the VIP.
    drop(old);
    wait_for(
        "the new director takes the VIP",
        Duration::from_secs(10),
        || has_vip(&n, "en") && !has_vip(&o, "eo"),
    )?;
    std::thread::sleep(Duration::from_millis(300));

    let (announced, lost) = streams.split_at_mut(2);
    let results = c
        .run_in({
            let mut announced: Vec<TcpStream> = announced
                .iter()
                .map(|s| s.try_clone())
                .collect::<std::io::Result<_>>()?;
            let mut lost = lost[0].try_clone()?;
            move || -> (Vec<Result<()>>, Result<()>) {
                let kept = announced.iter_mut().map(|s| again(s, "real")).collect();
                (kept, again(&mut lost, "real"))
            }
        })
        .join()
        .map_err(|_| anyhow::anyhow!("client panicked"))??;
    for (i, r) in results.0.into_iter().enumerate() {
        r.with_context(|| format!("announced connection {i} after the switch"))?;
    }
    assert!(
        results.1.is_err(),
        "a connection the master did not announce has no session on the new director"
    );
    // New connections go through xlvs too.
    c.run_in(|| servers::exchange(SocketAddr::new(IpAddr::V4(VIP), 80)).map(|_| ()))
        .join()
        .map_err(|_| anyhow::anyhow!("client panicked"))???;
    let status = xlvs(&["status"])?;
    let counter = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| {
                let mut w = l.split_whitespace();
                (w.next() == Some(name)).then(|| w.next().and_then(|v| v.parse().ok()))?
            })
            .unwrap_or(0)
    };
    // Its next segment found no session: answered with a RST.
    assert!(counter("rst_sent") >= 1, "{status}");
    ipvsadm(&["--stop-daemon", "backup"])?;
    Ok(())
}
