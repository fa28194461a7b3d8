//! The control path: concurrent writers, tables seen from several handles, and the `xlvs` tool's
//! refusals. Needs root (BPF).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

use dataplane::Dataplane;
use dataplane::model::*;
use xlvs_tests::lab::Pins;
use xlvs_tests::lab::binary;
use xlvs_tests::netns::{is_root, unique_prefix};

fn pins() -> Option<Pins> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return None;
    }
    Some(Pins::scratch(&unique_prefix("xc"), 1024))
}

#[test]
fn concurrent_writers_never_corrupt_the_tables() {
    let Some(p) = pins() else { return };
    Dataplane::open(&p.0).unwrap();
    const WRITERS: u8 = 4;
    const SERVICES: u16 = 25;
    let threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let opts = p.0.clone();
            std::thread::spawn(move || {
                let mut dp = Dataplane::open(&opts).unwrap();
                for s in 0..SERVICES {
                    let addr = ServiceAddr::Inet {
                        proto: Protocol::Tcp,
                        addr: IpAddr::V4(Ipv4Addr::new(198, 18, 100 + w, 1)),
                        port: 1000 + s,
                    };
                    let mut cfg = ServiceConfig::new(addr);
                    cfg.scheduler = Scheduler::Wrr;
                    dp.add_service(&cfg).unwrap();
                    for r in 1..=3u8 {
                        let mut d = DestConfig::new(IpAddr::V4(Ipv4Addr::new(198, 18, 2, r)), 80);
                        d.weight = r as i32;
                        dp.add_dest(&addr, &d).unwrap();
                    }
                    // Every writer also edits a shared service's weights (a read-modify-write).
                    let shared = ServiceAddr::Inet {
                        proto: Protocol::Udp,
                        addr: IpAddr::V4(Ipv4Addr::new(198, 18, 99, 1)),
                        port: 53,
                    };
                    let _ = dp.add_service(&ServiceConfig::new(shared));
                    let d = DestConfig::new(IpAddr::V4(Ipv4Addr::new(198, 18, 3, w)), 53 + s);
                    dp.add_dest(&shared, &d).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut dp = Dataplane::open(&p.0).unwrap();
    let all = dp.services().unwrap();
    assert_eq!(all.len(), WRITERS as usize * SERVICES as usize + 1);
    let keys: HashSet<_> = all.iter().map(|s| s.config.addr).collect();
    assert_eq!(keys.len(), all.len(), "no duplicate services");
    for s in &all {
        let want = if matches!(
            s.config.addr,
            ServiceAddr::Inet {
                proto: Protocol::Udp,
                ..
            }
        ) {
            WRITERS as usize * SERVICES as usize
        } else {
            3
        };
        assert_eq!(s.dests.len(), want, "{:?}", s.config.addr);
        let dests: HashSet<_> = s.dests.iter().map(|d| d.config.socket_addr()).collect();
        assert_eq!(dests.len(), s.dests.len(), "no duplicate destinations");
    }
    // The wrr tables (3 slots per 1:2:3 service = 6, the shared one 100) all fit without overlap:
    // a packet-level check is in packet_path.rs; here the weights must have survived.
    let w: Vec<i32> = all[0].dests.iter().map(|d| d.config.weight).collect();
    assert!(w == vec![1, 2, 3] || all[0].dests.len() == 100, "{w:?}");
}

#[test]
fn services_list_in_insertion_order_with_their_settings() {
    let Some(p) = pins() else { return };
    let mut dp = Dataplane::open(&p.0).unwrap();
    let mut expect = Vec::new();
    for (i, port) in [80u16, 22, 443, 8080].iter().enumerate() {
        let addr = ServiceAddr::Inet {
            proto: Protocol::Tcp,
            addr: IpAddr::V4(Ipv4Addr::new(198, 18, 100, 1)),
            port: *port,
        };
        let mut cfg = ServiceConfig::new(addr);
        cfg.scheduler = Scheduler::ALL[i];
        cfg.persistent = (i % 2 == 1).then_some(300);
        cfg.netmask = 24;
        cfg.pe = (i == 3).then(|| "sip".to_string());
        cfg.one_packet = i == 2;
        cfg.synproxy = i == 1;
        cfg.est_timeout = (i == 1).then_some(60);
        dp.add_service(&cfg).unwrap();
        expect.push(cfg);
    }
    let fw = ServiceConfig::new(ServiceAddr::Fwmark {
        mark: 7,
        family: Family::V4,
    });
    dp.add_service(&fw).unwrap();
    expect.push(fw);
    let got: Vec<ServiceConfig> = dp
        .services()
        .unwrap()
        .into_iter()
        .map(|s| s.config)
        .collect();
    assert_eq!(got, expect);
    let t = Timeouts {
        tcp: 1000,
        tcp_fin: 10,
        udp: 20,
    };
    dp.set_timeouts(&t).unwrap();
    assert_eq!(Dataplane::open(&p.0).unwrap().timeouts().unwrap(), t);
}

#[test]
fn xlvs_refuses_clearly_without_root_or_interface() {
    let Some(p) = pins() else { return };
    let xlvs = binary("xlvs").unwrap();
    let dir = p.0.pin_dir.to_str().unwrap();
    // Not root: one line, non-zero exit, nothing created.
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(&xlvs)
        .args(["--pin-dir", dir, "attach", "lo"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("xlvs: "), "{err}");
    assert!(
        err.contains("root") || err.contains("Permission denied") || err.contains("not permitted"),
        "{err}"
    );
    assert!(!p.0.pin_dir.exists(), "nothing half-made");
    // Unknown interface.
    let out = Command::new(&xlvs)
        .args(["--pin-dir", dir, "attach", "nosuch0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "xlvs: no such interface: nosuch0\n"
    );
    // Status before anything exists.
    let out = Command::new(&xlvs)
        .args(["--pin-dir", dir, "status"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("not loaded"));
}

#[test]
fn local_addresses_are_stored_listed_in_order_and_go_with_their_service() {
    let Some(p) = pins() else { return };
    let mut dp = Dataplane::open(&p.0).unwrap();
    let svc = ServiceAddr::Inet {
        proto: Protocol::Tcp,
        addr: IpAddr::V4(Ipv4Addr::new(198, 18, 100, 1)),
        port: 80,
    };
    let laddr = |a: &str, ifname: Option<&str>| LocalAddr {
        addr: a.parse().unwrap(),
        ifname: ifname.map(str::to_string),
        conns: 0,
        port_conflicts: 0,
    };
    let l1 = laddr("198.18.5.9", Some("dpdk0.kni"));
    assert_eq!(
        dp.add_laddr(&svc, &l1).unwrap_err().to_string(),
        "Service not defined"
    );
    dp.add_service(&ServiceConfig::new(svc)).unwrap();
    for l in [&l1, &laddr("198.18.5.1", None), &laddr("2001:db8::5", None)] {
        dp.add_laddr(&svc, l).unwrap();
    }
    assert_eq!(
        dp.add_laddr(&svc, &l1).unwrap_err().to_string(),
        "Local address already exists"
    );
    let got = dp.service(&svc).unwrap().local_addrs;
    let addrs: Vec<String> = got.iter().map(|l| l.addr.to_string()).collect();
    assert_eq!(addrs, ["198.18.5.9", "198.18.5.1", "2001:db8::5"]);
    assert_eq!(got[0].ifname.as_deref(), Some("dpdk0.kni"));
    dp.del_laddr(&svc, "198.18.5.1".parse().unwrap()).unwrap();
    assert_eq!(
        dp.del_laddr(&svc, "198.18.5.1".parse().unwrap())
            .unwrap_err()
            .to_string(),
        "No such Local address"
    );
    assert_eq!(dp.service(&svc).unwrap().local_addrs.len(), 2);
    dp.del_service(&svc).unwrap();
    dp.add_service(&ServiceConfig::new(svc)).unwrap();
    assert!(
        dp.service(&svc).unwrap().local_addrs.is_empty(),
        "gone with the service"
    );
}

/// Pins left by an earlier build with fewer counters, settings and tail-call slots (as after an
/// upgrade): the arrays are made anew at their new size, the settings carried over; nothing
/// reads past an old array's end; the old tail-call array is not adopted (each loaded version
/// has its own) and its pin goes.
#[test]
fn pins_of_an_older_build_with_smaller_arrays_are_resized_keeping_the_settings() {
    let Some(p) = pins() else { return };
    let dir = &p.0.pin_dir;
    std::fs::create_dir_all(dir).unwrap();
    let bpftool = |args: &[&str]| {
        let out = Command::new("bpftool").args(args).output().unwrap();
        assert!(out.status.success(), "bpftool {args:?}: {out:?}");
    };
    let pin = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let (counters, config, jump) = (pin("COUNTERS"), pin("CONFIG"), pin("JUMP"));
    bpftool(&[
        "map",
        "create",
        &counters,
        "type",
        "percpu_array",
        "key",
        "4",
        "value",
        "8",
        "entries",
        "37",
        "name",
        "COUNTERS",
    ]);
    bpftool(&[
        "map", "create", &config, "type", "array", "key", "4", "value", "4", "entries", "5",
        "name", "CONFIG",
    ]);
    bpftool(&[
        "map",
        "create",
        &jump,
        "type",
        "prog_array",
        "key",
        "4",
        "value",
        "4",
        "entries",
        "8",
        "name",
        "JUMP",
    ]);
    // TOA off (CONFIG[TOA_OFF] = 1) in the old settings.
    let toa_off = ebpf_common::config::TOA_OFF
        .to_le_bytes()
        .map(|b| b.to_string());
    let mut args = vec!["map", "update", "pinned", config.as_str(), "key"];
    args.extend(toa_off.iter().map(|s| s.as_str()));
    args.extend(["value", "1", "0", "0", "0"]);
    bpftool(&args);

    let dp = Dataplane::open(&p.0).unwrap();
    assert_eq!(
        dp.counters().unwrap().len(),
        ebpf_common::counter::COUNT as usize,
        "every counter readable"
    );
    assert!(
        !dp.path_settings().unwrap().toa,
        "the old settings carried over"
    );
    assert!(
        !dir.join("JUMP").exists(),
        "the old tail-call array's pin is gone"
    );
}
