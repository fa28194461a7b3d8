//! Malformed and hostile VRRP packets sent at our master from the peer namespace: each kind is
//! counted and dropped and the master keeps its VIP; then one valid higher-priority advert
//! proves the injection path works (the master steps down).

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use common::*;
use vrrp::codec::{self, Advert, Checksum, Family};

fn ip_checksum(h: &[u8]) -> u16 {
    let mut s: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Ethernet + IPv4 frame to 224.0.0.18 carrying `payload` as protocol 112.
fn frame(src: Ipv4Addr, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![
        0x01, 0x00, 0x5e, 0x00, 0x00, 0x12, 0x02, 0, 0, 0, 0, 0x99, 0x08, 0x00,
    ];
    let total = (20 + payload.len()) as u16;
    let mut ip = vec![0x45, 0xc0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0, 0, ttl, 112, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&[224, 0, 0, 18]);
    let c = ip_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(payload);
    f
}

fn send_frames(ns: &xlvs_tests::netns::Netns, ifname: &str, frames: Vec<Vec<u8>>) {
    let ifname = ifname.to_string();
    ns.run_in(move || {
        let idx = nix::net::if_::if_nametoindex(ifname.as_str()).expect("ifindex");
        // SAFETY: plain AF_PACKET socket and sendto with an initialised sockaddr_ll.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            assert!(fd >= 0, "packet socket");
            for f in &frames {
                let mut sll: libc::sockaddr_ll = std::mem::zeroed();
                sll.sll_family = libc::AF_PACKET as u16;
                sll.sll_ifindex = idx as i32;
                sll.sll_halen = 6;
                let n = libc::sendto(
                    fd,
                    f.as_ptr().cast(),
                    f.len(),
                    0,
                    (&sll as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                );
                assert!(n > 0, "sendto");
            }
            libc::close(fd);
        }
    })
    .join()
    .unwrap()
    .unwrap();
}

#[test]
fn hostile_packets_are_counted_and_dropped() {
    skip_unless_ready!();
    let pair = Pair::new(75, false).expect("namespaces");
    let conf = NodeConf::new(100, 2, "1");
    let mut ours = Node::start(Impl::Ours, &pair, &pair.a, &pair.b, &conf, "ours").expect("start");
    converge_on(
        &pair,
        &pair.a,
        &pair.b,
        Duration::from_secs(6),
        Duration::from_millis(200),
    )
    .expect("master alone");
    let vip: IpAddr = pair.vip().parse().unwrap();
    let src = Ipv4Addr::new(198, 18, 75, 2);
    let good = Advert {
        version: 2,
        vrid: 51,
        priority: 254,
        adver_int: 1,
        auth_type: 0,
        auth_data: [0; 8],
        addresses: vec![vip],
    };
    let enc = |a: &Advert| codec::encode(a, Family::V4, Checksum::MessageOnly);
    let mut frames = Vec::new();
    let mut expect: Vec<(&str, u64)> = Vec::new();
    let mut add = |name: &'static str, payload: Vec<u8>, ttl: u8| {
        for _ in 0..3 {
            frames.push(frame(src, ttl, &payload));
        }
        expect.push((name, 3));
    };
    let mut p = enc(&good);
    p[7] ^= 0x55;
    add("bad_checksum", p, 255);
    add("bad_ttl", enc(&good), 64);
    let mut v3 = good.clone();
    v3.version = 3;
    add(
        "bad_version",
        codec::encode(
            &v3,
            Family::V4,
            Checksum::Pseudo {
                src: src.into(),
                dst: [224, 0, 0, 18].into(),
            },
        ),
        255,
    );
    let mut p = enc(&good);
    p.truncate(14);
    add("bad_length", p, 255);
    let mut two = good.clone();
    two.addresses.push(IpAddr::from([198, 18, 75, 101]));
    add("address_count", enc(&two), 255);
    let mut wrong = good.clone();
    wrong.addresses = vec![IpAddr::from([198, 18, 75, 7])];
    add("address_mismatch", enc(&wrong), 255);
    let mut auth = good.clone();
    auth.auth_type = 1;
    auth.auth_data = *b"password";
    add("auth_type", enc(&auth), 255);
    let mut int = good.clone();
    int.adver_int = 2;
    add("interval_mismatch", enc(&int), 255);
    let mut ty = enc(&good);
    ty[0] = 0x22;
    let c = codec::checksum(
        &{
            let mut t = ty.clone();
            t[6] = 0;
            t[7] = 0;
            t
        },
        None,
    );
    ty[6..8].copy_from_slice(&c.to_be_bytes());
    add("bad_type", ty, 255);
    add("too_short", vec![0x21, 51], 255);

    let t0 = Instant::now();
    send_frames(&pair.b.ns, "vb", frames);
    // Through several advert intervals the master keeps the VIP.
    while t0.elapsed() < Duration::from_millis(2500) {
        assert!(
            has_vip(&pair.a.ns, &pair.vip()),
            "hostile packets flipped the master"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // One valid higher-priority advert: the master steps down (so the path above was live).
    send_frames(&pair.b.ns, "vb", vec![frame(src, 255, &enc(&good))]);
    wait_until(Duration::from_secs(1), || !has_vip(&pair.a.ns, &pair.vip()))
        .expect("a valid higher-priority advert is obeyed");
    ours.stop().expect("stop");
    let log = ours.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("VI_T: accepted"))
        .unwrap_or_else(|| panic!("no counters line in\n{log}"));
    assert!(line.contains("accepted 1"), "{line}");
    for (name, n) in expect {
        assert!(
            line.contains(&format!(" {name} {n}")),
            "{name} {n} missing in: {line}"
        );
    }
}

/// Counts ARP frames whose sender and target are `vip`, seen in `ns` within `window`, after
/// `f` ran.
fn garps_after(
    ns: &xlvs_tests::netns::Netns,
    vip: [u8; 4],
    window: Duration,
    f: impl FnOnce(),
) -> usize {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let h = ns.run_in(move || {
        // SAFETY: AF_PACKET socket for ARP with a receive timeout; recv into a local buffer.
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
            ready_tx.send(()).unwrap();
            let t0 = Instant::now();
            let mut n = 0;
            let mut buf = [0u8; 128];
            while t0.elapsed() < window {
                let r = libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0);
                if r >= 42 && buf[28..32] == vip && buf[38..42] == vip {
                    n += 1;
                }
            }
            libc::close(fd);
            n
        }
    });
    ready_rx.recv().unwrap();
    f();
    h.join().unwrap().unwrap()
}

/// A MASTER hearing another master with a lower priority sends garp_lower_prio_repeat GARPs
/// and runs notify_master_rx_lower_pri, as keepalived does.
#[test]
fn lower_priority_master_like_keepalived() {
    skip_unless_ready!();
    let pair = Pair::new(103, false).expect("namespaces");
    let vip: IpAddr = pair.vip().parse().unwrap();
    let src = Ipv4Addr::new(198, 18, 103, 2);
    let lower = Advert {
        version: 2,
        vrid: 51,
        priority: 50,
        adver_int: 1,
        auth_type: 0,
        auth_data: [0; 8],
        addresses: vec![vip],
    };
    let frame_low = frame(
        src,
        255,
        &codec::encode(&lower, Family::V4, Checksum::MessageOnly),
    );
    let mut results = Vec::new();
    for which in [Impl::Keepalived, Impl::Ours] {
        let out = pair.dir.join(format!("{which:?}.out"));
        let script = pair.dir.join(format!("{which:?}.sh"));
        std::fs::write(
            &script,
            format!("#!/bin/sh\necho rx-lower \"$@\" >> {}\n", out.display()),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let conf = format!(
            "global_defs {{\n router_id t\n vrrp_garp_master_delay 0\n vrrp_garp_master_repeat 1\n \
             script_user root\n}}\n\
             vrrp_instance VI_T {{\n interface va\n virtual_router_id 51\n priority 150\n advert_int 1\n \
             garp_lower_prio_repeat 3\n notify_master_rx_lower_pri {}\n \
             virtual_ipaddress {{\n  {}/32\n }}\n}}\n",
            script.display(),
            pair.vip()
        );
        let mut node =
            Node::start_text(which, &pair, &pair.a, &conf, &format!("{which:?}")).unwrap();
        wait_until(Duration::from_secs(6), || has_vip(&pair.a.ns, &pair.vip())).expect("master");
        std::thread::sleep(Duration::from_millis(300));
        let f = frame_low.clone();
        let n = garps_after(
            &pair.b.ns,
            [198, 18, 103, 100],
            Duration::from_millis(800),
            || {
                send_frames(&pair.b.ns, "vb", vec![f]);
            },
        );
        std::thread::sleep(Duration::from_millis(200));
        node.stop().unwrap();
        let script_out = std::fs::read_to_string(&out).unwrap_or_default();
        assert!(
            !has_vip(&pair.a.ns, &pair.vip()),
            "{which:?} removed its VIP"
        );
        results.push((n, script_out));
    }
    eprintln!("keepalived: {:?}", results[0]);
    assert_eq!(
        results[0].0, 3,
        "keepalived sends garp_lower_prio_repeat GARPs"
    );
    assert_eq!(results[1], results[0]);
}
