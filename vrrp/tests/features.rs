//! Behaviour compared with keepalived 2.2.7 on the same configuration: VIP options (dev,
//! label, scope, brd), virtual_ipaddress_excluded, virtual_routes, notify scripts with their
//! arguments, notify_fifo lines, gratuitous ARPs; tracking (script, file, interface) and sync
//! groups moving the VIP to a keepalived peer.

mod common;

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;

fn sorted_lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}

/// The address lines of the VIPs and the virtual route, without lifetimes.
fn addresses(pair: &Pair) -> (Vec<String>, Vec<String>) {
    let out = pair
        .a
        .ns
        .ip(&["-o", "-4", "addr", "show", "dev", "va"])
        .unwrap();
    let addrs = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("198.18.76.1") && !l.contains("198.18.76.1/24"))
        .map(|l| {
            l.split("\\")
                .next()
                .unwrap()
                .split_whitespace()
                .skip(1)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>();
    let out = pair
        .a
        .ns
        .ip(&["-4", "route", "show", "table", "all"])
        .unwrap();
    let routes: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("198.18.77.") || l.contains("198.18.78."))
        .map(str::to_string)
        .collect();
    let out = pair.a.ns.ip(&["-4", "rule", "show"]).unwrap();
    let rules: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("lookup 100") || l.contains("lookup 101"))
        .map(str::to_string)
        .collect();
    (
        sorted_lines(&addrs.join("\n")),
        sorted_lines(&[routes, rules].concat().join("\n")),
    )
}

/// Counts gratuitous ARPs (sender = target = one of `vips`) seen in `ns` until stopped.
fn arp_sniffer(
    ns: &xlvs_tests::netns::Netns,
    vips: Vec<[u8; 4]>,
) -> (
    Arc<AtomicBool>,
    std::thread::JoinHandle<anyhow::Result<usize>>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let h = ns.run_in(move || {
        // SAFETY: AF_PACKET socket for ARP, a receive timeout, recv into a local buffer.
        unsafe {
            let fd = libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW,
                i32::from((libc::ETH_P_ARP as u16).to_be()),
            );
            assert!(fd >= 0);
            let tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 20_000,
            };
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            );
            tx.send(()).unwrap();
            let mut n = 0;
            let mut buf = [0u8; 128];
            while !s2.load(Ordering::Relaxed) {
                let r = libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0);
                if r >= 42 && vips.iter().any(|v| buf[28..32] == *v && buf[38..42] == *v) {
                    n += 1;
                }
            }
            libc::close(fd);
            n
        }
    });
    rx.recv().unwrap();
    (stop, h)
}

struct Observed {
    notify: Vec<String>,
    fifo: Vec<String>,
    addrs: Vec<String>,
    routes: Vec<String>,
    garps: usize,
    after_stop: (Vec<String>, Vec<String>),
}

fn observe(which: Impl, pair: &Pair, tag: &str, label_vip: &str) -> Observed {
    let dir = pair.dir.join(tag);
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("notify.sh");
    let out = dir.join("notify.out");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", out.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let fifo = dir.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let s = script.display();
    let conf = format!(
        "global_defs {{\n router_id t\n vrrp_garp_master_delay 0\n vrrp_garp_master_repeat 3\n \
         script_user root\n vrrp_notify_fifo {fifo}\n}}\n\
         vrrp_instance VI_T {{\n state BACKUP\n interface va\n virtual_router_id 51\n priority 150\n \
         advert_int 1\n\
         notify_master \"{s} master-arg\"\n notify_backup \"{s} backup-arg\"\n \
         notify_stop \"{s} stop-arg\"\n notify {s}\n\
         virtual_ipaddress {{\n  {label_vip}198.18.76.100/32 dev va scope link\n  \
         198.18.76.104/24 brd + dev va\n  \
         198.18.76.101/32\n }}\n\
         virtual_ipaddress_excluded {{\n  198.18.76.102/32\n }}\n\
         virtual_routes {{\n  198.18.77.0/24 via 198.18.76.2 dev va\n  \
         198.18.78.0/24 dev va table 100 metric 7\n }}\n\
         virtual_rules {{\n  from 198.18.76.100 table 100 priority 100\n  \
         to 198.18.88.0/24 table 101 priority 101\n }}\n}}\n",
        fifo = fifo.display(),
        label_vip = label_vip
    );
    let (stop_sniff, sniff) = arp_sniffer(
        &pair.b.ns,
        vec![[198, 18, 76, 100], [198, 18, 76, 101], [198, 18, 76, 102]],
    );
    let mut node = Node::start_text(which, pair, &pair.a, &conf, tag).unwrap();
    wait_until(Duration::from_secs(8), || {
        has_vip(&pair.a.ns, "198.18.76.102")
    })
    .unwrap_or_else(|e| panic!("{which:?} never master: {e}\n{}", node.log_text()));
    std::thread::sleep(Duration::from_millis(300));
    let (addrs, routes) = addresses(pair);
    stop_sniff.store(true, Ordering::Relaxed);
    let garps = sniff.join().unwrap().unwrap();
    node.stop().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let after_stop = addresses(pair);
    let mut buf = String::new();
    let _ = reader.read_to_string(&mut buf);
    Observed {
        notify: sorted_lines(&std::fs::read_to_string(&out).unwrap_or_default()),
        fifo: buf.lines().map(str::to_string).collect(),
        addrs,
        routes,
        garps,
        after_stop,
    }
}

#[test]
fn vips_routes_notify_fifo_like_keepalived() {
    skip_unless_ready!();
    let pair = Pair::new(76, false).expect("namespaces");
    let k = observe(Impl::Keepalived, &pair, "k", "");
    let o = observe(Impl::Ours, &pair, "o", "");
    eprintln!(
        "keepalived: addrs {:?}\nroutes {:?}\ngarps {}\nnotify {:?}\nfifo {:?}",
        k.addrs, k.routes, k.garps, k.notify, k.fifo
    );
    assert_eq!(
        k.addrs.len(),
        4,
        "keepalived added 4 addresses: {:?}",
        k.addrs
    );
    assert_eq!(o.addrs, k.addrs, "VIP lines");
    assert_eq!(k.routes.len(), 4, "{:?}", k.routes);
    assert_eq!(o.routes, k.routes, "virtual routes and rules");
    assert_eq!(
        k.after_stop,
        (vec![], vec![]),
        "keepalived removes everything"
    );
    assert_eq!(o.after_stop, (vec![], vec![]), "we remove everything");
    assert!(k.garps > 0);
    assert_eq!(o.garps, k.garps, "gratuitous ARPs (garp_master_repeat 3)");
    assert!(!k.notify.is_empty());
    assert_eq!(o.notify, k.notify, "notify script calls");
    assert!(!k.fifo.is_empty());
    assert_eq!(o.fifo, k.fifo, "notify fifo lines");
}

/// keepalived 2.2.7 fails to add a labelled VIP on this kernel (`Netlink: error: Invalid
/// argument` for RTM_NEWADDR), so labels are checked on ours alone, against `ip`'s rendering.
#[test]
fn vip_label() {
    skip_unless_ready!();
    let pair = Pair::new(79, false).expect("namespaces");
    let o = observe(
        Impl::Ours,
        &pair,
        "o",
        "198.18.76.103/32 dev va label va:vip\n  ",
    );
    assert!(
        o.addrs
            .iter()
            .any(|l| l == "va inet 198.18.76.103/32 scope global va:vip"),
        "{:?}",
        o.addrs
    );
}

/// Runs `which` alone on a configuration made by `conf(script, fifo)` until `vip` is up, stops
/// it; returns the notify script's lines and the FIFO's lines, both sorted.
fn notify_run(
    which: Impl,
    pair: &Pair,
    tag: &str,
    vips: &[&str],
    conf: impl Fn(&str, &str) -> String,
) -> (Vec<String>, Vec<String>) {
    let dir = pair.dir.join(tag);
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("notify.sh");
    let out = dir.join("notify.out");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", out.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let fifo = dir.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let text = conf(&script.display().to_string(), &fifo.display().to_string());
    let mut node = Node::start_text(which, pair, &pair.a, &text, tag).unwrap();
    for vip in vips {
        wait_until(Duration::from_secs(8), || has_vip(&pair.a.ns, vip))
            .unwrap_or_else(|e| panic!("{which:?}: {vip}: {e}\n{}", node.log_text()));
    }
    node.stop().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut buf = String::new();
    let _ = reader.read_to_string(&mut buf);
    (
        sorted_lines(&std::fs::read_to_string(&out).unwrap_or_default()),
        sorted_lines(&buf),
    )
}

/// Sync group notify scripts and FIFO lines (`GROUP NAME STATE 0`) as keepalived runs them,
/// beside the members' own. (Order in the FIFO differs at startup: keepalived writes the
/// group's BACKUP line before its members'; we write it once all members are BACKUP.)
#[test]
fn sync_group_notify_like_keepalived() {
    skip_unless_ready!();
    let pair = Pair::new(96, false).expect("namespaces");
    let conf = |s: &str, fifo: &str| {
        format!(
            "global_defs {{\n router_id t\n vrrp_garp_master_delay 0\n script_user root\n \
             vrrp_notify_fifo {fifo}\n}}\n\
             vrrp_sync_group G {{\n group {{\n  VI_1\n  VI_2\n }}\n notify_master \"{s} gmaster\"\n \
             notify_backup \"{s} gbackup\"\n notify_stop \"{s} gstop\"\n notify {s}\n}}\n\
             vrrp_instance VI_1 {{\n interface va\n virtual_router_id 51\n priority 150\n \
             notify_master \"{s} i1master\"\n notify {s}\n virtual_ipaddress {{\n  198.18.96.100/32\n }}\n}}\n\
             vrrp_instance VI_2 {{\n interface va\n virtual_router_id 52\n priority 150\n \
             notify_master \"{s} i2master\"\n virtual_ipaddress {{\n  198.18.96.101/32\n }}\n}}\n"
        )
    };
    let vips = ["198.18.96.100", "198.18.96.101"];
    let k = notify_run(Impl::Keepalived, &pair, "k", &vips, conf);
    let o = notify_run(Impl::Ours, &pair, "o", &vips, conf);
    eprintln!("keepalived: {k:?}");
    assert!(k.0.iter().any(|l| l == "GROUP G MASTER 0"), "{k:?}");
    assert_eq!(o.0, k.0, "notify script calls");
    assert_eq!(o.1, k.1, "fifo lines");
}

/// What use_vmac leaves on the host, for comparison.
#[derive(Debug, PartialEq)]
struct VmacView {
    link: Vec<String>,
    vip_on_vmac: bool,
    sysctls: Vec<String>,
    advert_src_mac: Option<[u8; 6]>,
    gone_after_stop: bool,
}

/// Source MAC of the first VRRP frame seen in `ns` (IPv4, proto 112) within 3 s.
fn first_vrrp_src_mac(
    ns: &xlvs_tests::netns::Netns,
) -> std::thread::JoinHandle<anyhow::Result<Option<[u8; 6]>>> {
    ns.run_in(|| {
        // SAFETY: AF_PACKET socket with a receive timeout, recv into a local buffer.
        unsafe {
            let fd = libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW,
                i32::from((libc::ETH_P_IP as u16).to_be()),
            );
            assert!(fd >= 0);
            let tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 50_000,
            };
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            );
            let t0 = std::time::Instant::now();
            let mut buf = [0u8; 256];
            let mut found = None;
            while t0.elapsed() < Duration::from_secs(6) && found.is_none() {
                let r = libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0);
                if r >= 34 && buf[23] == 112 {
                    found = Some(<[u8; 6]>::try_from(&buf[6..12]).unwrap());
                }
            }
            libc::close(fd);
            found
        }
    })
}

fn vmac_view(which: Impl, pair: &Pair, tag: &str) -> VmacView {
    let conf = "global_defs {\n router_id t\n vrrp_garp_master_delay 0\n}\n\
                vrrp_instance VI_T {\n interface va\n virtual_router_id 51\n use_vmac\n \
                priority 150\n advert_int 1\n virtual_ipaddress {\n  198.18.76.100/32\n }\n}\n";
    let sniff = first_vrrp_src_mac(&pair.b.ns);
    let mut node = Node::start_text(which, pair, &pair.a, conf, tag).unwrap();
    wait_until(Duration::from_secs(8), || {
        has_vip(&pair.a.ns, "198.18.76.100")
    })
    .unwrap_or_else(|e| panic!("{which:?}: {e}\n{}", node.log_text()));
    let out = pair
        .a
        .ns
        .ip(&["-d", "-o", "link", "show", "vrrp.51"])
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let link = [
        "link/ether 00:00:5e:00:01:33",
        "macvlan mode private",
        "addrgenmode none",
        "vrrp.51@va",
        "UP",
    ]
    .iter()
    .filter(|w| text.contains(*w))
    .map(|w| w.to_string())
    .collect();
    let addrs = pair
        .a
        .ns
        .ip(&["-o", "addr", "show", "dev", "vrrp.51"])
        .unwrap();
    let vip_on_vmac = String::from_utf8_lossy(&addrs.stdout).contains("198.18.76.100/32");
    let sysctls = [
        "vrrp.51/arp_ignore",
        "vrrp.51/accept_local",
        "vrrp.51/rp_filter",
        "va/arp_ignore",
        "va/arp_filter",
    ]
    .iter()
    .map(|k| {
        let o = pair
            .a
            .ns
            .exec("cat", &[&format!("/proc/sys/net/ipv4/conf/{k}")])
            .unwrap();
        format!("{k}={}", String::from_utf8_lossy(&o.stdout).trim())
    })
    .collect();
    let advert_src_mac = sniff.join().unwrap().unwrap();
    node.stop().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let gone_after_stop = pair.a.ns.ip(&["link", "show", "vrrp.51"]).is_err();
    // keepalived leaves the base interface's sysctls changed: reset them for the next run.
    for k in ["arp_ignore", "arp_filter"] {
        let _ = pair.a.ns.sysctl(&format!("net.ipv4.conf.va.{k}"), "0");
    }
    VmacView {
        link,
        vip_on_vmac,
        sysctls,
        advert_src_mac,
        gone_after_stop,
    }
}

#[test]
fn use_vmac_like_keepalived() {
    skip_unless_ready!();
    let pair = Pair::new(99, false).expect("namespaces");
    let k = vmac_view(Impl::Keepalived, &pair, "k");
    let o = vmac_view(Impl::Ours, &pair, "o");
    eprintln!("keepalived: {k:?}");
    assert_eq!(k.link.len(), 5, "{k:?}");
    assert!(k.vip_on_vmac && k.gone_after_stop, "{k:?}");
    assert_eq!(k.advert_src_mac, Some([0, 0, 0x5e, 0, 1, 51]));
    assert_eq!(o, k);
}
