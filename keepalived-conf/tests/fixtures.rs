//! Every fixture file parses into the expected model.

use keepalived_conf::model::{
    CheckerKind, ForwardingMethod, KeepalivedConfig, Protocol, VirtualServerAddress, VrrpState,
    VsgEntry,
};
use keepalived_conf::{DiagKind, ParseOptions, Parsed, parse_file};
use std::path::PathBuf;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../compat-fixtures")
}

fn parse(rel: &str) -> Parsed {
    let path = fixture_dir().join(rel);
    parse_file(&path, &ParseOptions::with_config_id("testhost"))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn rs_counts(c: &KeepalivedConfig) -> Vec<usize> {
    c.virtual_servers
        .iter()
        .map(|v| v.real_servers.len())
        .collect()
}

fn checker_kinds(c: &KeepalivedConfig) -> Vec<&'static str> {
    c.virtual_servers
        .iter()
        .flat_map(|v| &v.real_servers)
        .flat_map(|r| &r.checkers)
        .map(|k| k.kind.keyword())
        .collect()
}

fn vips(c: &KeepalivedConfig) -> Vec<(String, usize)> {
    c.vrrp_instances
        .iter()
        .map(|v| (v.name.clone(), v.virtual_ipaddresses.len()))
        .collect()
}

fn unknown_keywords(p: &Parsed) -> Vec<(u32, String)> {
    p.diagnostics
        .items
        .iter()
        .filter(|d| d.kind == DiagKind::UnknownKeyword)
        .map(|d| {
            (
                d.span.as_ref().map(|s| s.line).unwrap_or(0),
                d.message.clone(),
            )
        })
        .collect()
}

/// (file, virtual servers' real server counts, checker kinds, VIPs per instance)
type Expect = (
    &'static str,
    &'static [usize],
    &'static [&'static str],
    &'static [(&'static str, usize)],
);

const EXPECTED: &[Expect] = &[
    ("docker-keepalived.conf", &[], &[], &[("VI_1", 1)]),
    (
        "etc-keepalived.conf",
        &[1, 2, 2],
        &["SSL_GET", "HTTP_GET", "HTTP_GET", "HTTP_GET", "HTTP_GET"],
        &[("VI_1", 3)],
    ),
    ("keepalived.conf.HTTP_GET.port", &[1], &["SSL_GET"], &[]),
    ("keepalived.conf.IPv6", &[1], &["SMTP_CHECK"], &[]),
    ("keepalived.conf.PING_CHECK", &[1], &["PING_CHECK"], &[]),
    (
        "keepalived.conf.SMTP_CHECK",
        &[3],
        &["SMTP_CHECK", "SMTP_CHECK", "SMTP_CHECK"],
        &[],
    ),
    (
        "keepalived.conf.SSL_GET",
        &[1, 1],
        &["SSL_GET", "HTTP_GET"],
        &[("VI_1", 3)],
    ),
    ("keepalived.conf.UDP_CHECK", &[1], &["UDP_CHECK"], &[]),
    ("keepalived.conf.conditional_conf", &[], &[], &[("VI_0", 1)]),
    (
        "keepalived.conf.fwmark",
        &[2],
        &["TCP_CHECK", "TCP_CHECK"],
        &[],
    ),
    ("keepalived.conf.inhibit", &[1], &["HTTP_GET"], &[]),
    ("keepalived.conf.misc_check", &[1], &["MISC_CHECK"], &[]),
    ("keepalived.conf.misc_check_arg", &[1], &["MISC_CHECK"], &[]),
    ("keepalived.conf.quorum", &[10], &["TCP_CHECK"; 10], &[]),
    (
        "keepalived.conf.sample",
        &[1],
        &["HTTP_GET"],
        &[("VI_1", 3)],
    ),
    ("keepalived.conf.status_code", &[1], &["SSL_GET"], &[]),
    ("keepalived.conf.track_interface", &[], &[], &[("VI_1", 3)]),
    (
        "keepalived.conf.virtual_server_group",
        &[2],
        &["HTTP_GET", "HTTP_GET"],
        &[],
    ),
    ("keepalived.conf.virtualhost", &[1], &["SSL_GET"], &[]),
    (
        "keepalived.conf.vrrp",
        &[],
        &[],
        &[("VI_1", 4), ("VI_2", 3), ("VI_3", 3), ("VI_4", 3)],
    ),
    (
        "keepalived.conf.vrrp.lvs_syncd",
        &[1],
        &["TCP_CHECK"],
        &[("VI_1", 3), ("VI_2", 3), ("VI_3", 3)],
    ),
    ("keepalived.conf.vrrp.routes", &[], &[], &[("VI_1", 3)]),
    ("keepalived.conf.vrrp.rules", &[], &[], &[("VI_1", 3)]),
    (
        "keepalived.conf.vrrp.scripts",
        &[],
        &[],
        &[("VI_1", 3), ("VI_2", 1), ("VI_3", 1)],
    ),
    (
        "keepalived.conf.vrrp.static_ipaddress",
        &[],
        &[],
        &[("VI_1", 1)],
    ),
];

#[test]
fn every_fixture_has_expected_counts() {
    for dir in ["keepalived", "alibaba-keepalived"] {
        for (file, rs, checkers, vip) in EXPECTED {
            let rel = format!("{dir}/{file}");
            if !fixture_dir().join(&rel).exists() {
                continue;
            }
            let p = parse(&rel);
            let c = &p.config;
            assert_eq!(rs_counts(c), rs.to_vec(), "{rel}: real servers");
            assert_eq!(checker_kinds(c), checkers.to_vec(), "{rel}: checkers");
            let want: Vec<(String, usize)> = vip.iter().map(|(n, k)| (n.to_string(), *k)).collect();
            assert_eq!(vips(c), want, "{rel}: VIPs per instance");
        }
    }
}

#[test]
fn every_fixture_file_parses_without_fatal_errors() {
    let mut n = 0;
    for dir in ["keepalived", "alibaba-keepalived"] {
        let Ok(entries) = std::fs::read_dir(fixture_dir().join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let p = parse_file(&e.path(), &ParseOptions::with_config_id("testhost")).unwrap();
            assert!(
                !p.diagnostics.has_fatal(),
                "{:?}: {:?}",
                e.path(),
                p.diagnostics
            );
            n += 1;
        }
    }
    assert!(n >= 49, "only {n} fixture files found");
}

#[test]
fn vrrp_sample_fields() {
    let p = parse("keepalived/keepalived.conf.vrrp");
    let c = &p.config;
    assert_eq!(c.global.router_id.as_deref(), Some("LVS_DEVEL"));
    assert_eq!(c.global.notification_email, ["acassen"]);
    assert_eq!(
        c.global.smtp_server.as_ref().map(|s| s.host.as_str()),
        Some("192.168.200.1")
    );
    let v = &c.vrrp_instances[0];
    assert_eq!(v.state, VrrpState::Master);
    assert_eq!(v.interface.as_deref(), Some("eth0"));
    assert_eq!(v.virtual_router_id, Some(51));
    assert_eq!(v.priority, 100);
    assert_eq!(v.garp_master_delay, Some(10));
    assert_eq!(v.smtp_alert, Some(true));
    let auth = v.authentication.as_ref().unwrap();
    assert_eq!(auth.auth_pass.as_deref(), Some("1111"));
    assert_eq!(v.virtual_ipaddresses[3].label.as_deref(), Some("eth0:1"));
    assert_eq!(v.virtual_ipaddresses[0].address.prefix_len, 32);
    assert!(v.virtual_ipaddresses[0].implicit_prefix);
    assert_eq!(v.version, 2);
    assert!(v.preempt);
}

#[test]
fn quorum_sample_fields() {
    let p = parse("keepalived/keepalived.conf.quorum");
    let vs = &p.config.virtual_servers[0];
    assert_eq!(
        vs.address,
        VirtualServerAddress::Ip {
            addr: "10.0.1.1".parse().unwrap(),
            port: 80
        }
    );
    assert_eq!(vs.scheduler, "wrr");
    assert_eq!(vs.lvs_method.method, ForwardingMethod::Nat);
    assert_eq!(vs.persistence.as_ref().map(|p| p.timeout), Some(900));
    assert_eq!(vs.protocol, Protocol::Tcp);
    assert!(vs.alpha && vs.omega);
    assert_eq!((vs.quorum, vs.hysteresis), (7, 2));
    assert_eq!(
        vs.quorum_up.as_ref().map(|s| s.command.as_str()),
        Some("/usr/local/sbin/quorum-up.sh")
    );
    let rs = &vs.real_servers[0];
    assert_eq!(rs.effective_port, 8080);
    assert_eq!(rs.weight, 1);
    let chk = &rs.checkers[0];
    assert_eq!(chk.kind, CheckerKind::TcpCheck);
    assert_eq!(chk.common.connect_port, Some(80));
    assert_eq!(chk.common.connect_timeout, 3.0);
    // Inherited defaults: delay_loop from the virtual server, retry 1.
    assert_eq!(chk.common.delay_loop, 6.0);
    assert_eq!(chk.common.retry, 1);
    assert_eq!(chk.common.delay_before_retry, 1.0);
}

#[test]
fn http_checker_fields_and_status_ranges() {
    let p = parse("keepalived/keepalived.conf.status_code");
    let CheckerKind::SslGet(h) = &p.config.virtual_servers[0].real_servers[0].checkers[0].kind
    else {
        panic!("not SSL_GET");
    };
    assert_eq!(h.urls.len(), 2);
    assert_eq!(h.urls[0].path.as_deref(), Some("/"));
    let ranges: Vec<(u16, u16)> = h.urls[0]
        .status_codes
        .iter()
        .map(|r| (r.first, r.last))
        .collect();
    assert_eq!(ranges, [(200, 299), (400, 499), (503, 503), (505, 505)]);
    assert_eq!(
        h.urls[1].digest.as_deref(),
        Some("9b3a0c85a887a256d6939da88aabd8cd")
    );

    let p = parse("keepalived/keepalived.conf.virtualhost");
    let vs = &p.config.virtual_servers[0];
    assert_eq!(vs.virtualhost.as_deref(), Some("www.firewall.loc"));
}

#[test]
fn udp_and_misc_checkers() {
    let p = parse("keepalived/keepalived.conf.UDP_CHECK");
    let vs = &p.config.virtual_servers[0];
    assert_eq!(vs.protocol, Protocol::Udp);
    let c = &vs.real_servers[0].checkers[0];
    assert_eq!((c.common.retry, c.common.delay_before_retry), (3, 3.0));
    let CheckerKind::UdpCheck(u) = &c.kind else {
        panic!()
    };
    assert_eq!((u.min_reply_length, u.max_reply_length), (0, 255));
    assert!(u.require_reply.is_none());

    let p = parse("keepalived/keepalived.conf.misc_check_arg");
    let CheckerKind::Misc(m) = &p.config.virtual_servers[0].real_servers[0].checkers[0].kind else {
        panic!()
    };
    let path = m.path.as_ref().unwrap();
    assert_eq!(path.argv, ["/usr/local/bin/script.sh", "arg1", "arg2"]);
}

#[test]
fn virtual_server_group_entries() {
    let p = parse("keepalived/keepalived.conf.virtual_server_group");
    let g = &p.config.virtual_server_groups[0];
    assert_eq!(g.name, "VSG_1");
    assert_eq!(g.entries.len(), 6);
    match &g.entries[3] {
        VsgEntry::Range {
            first, last, port, ..
        } => {
            assert_eq!(first.to_string(), "192.168.200.3");
            assert_eq!(last.to_string(), "192.168.200.10");
            assert_eq!(*port, 80);
        }
        e => panic!("{e:?}"),
    }
    assert!(matches!(g.entries[4], VsgEntry::Fwmark { mark: 1, .. }));
    assert_eq!(
        p.config.virtual_servers[0].address,
        VirtualServerAddress::Group {
            name: "VSG_1".into()
        }
    );
}

#[test]
fn fwmark_and_sync_groups() {
    let p = parse("keepalived/keepalived.conf.fwmark");
    assert_eq!(
        p.config.virtual_servers[0].address,
        VirtualServerAddress::Fwmark { mark: 1 }
    );
    let p = parse("keepalived/keepalived.conf.vrrp.sync");
    assert_eq!(p.config.sync_groups.len(), 2);
    assert!(!p.config.sync_groups[0].group.is_empty());
    let p = parse("keepalived/keepalived.conf.vrrp.scripts");
    let g = &p.config.sync_groups[0];
    assert_eq!(g.group, ["VI_2", "VI_3"]);
    assert_eq!(
        g.notify.notify_master.as_ref().map(|s| s.argv.clone()),
        Some(vec![
            "/usr/local/bin/vrrp.mast".into(),
            "arg1".into(),
            "arg2".into()
        ])
    );
}

#[test]
fn routes_rules_and_tracking() {
    let p = parse("keepalived/keepalived.conf.vrrp.routes");
    assert_eq!(p.config.static_routes.len(), 5);
    let r = &p.config.static_routes[0];
    assert_eq!(
        r.src.map(|a| a.to_string()).as_deref(),
        Some("192.168.100.1")
    );
    assert_eq!(
        r.destination.map(|d| d.to_string()).as_deref(),
        Some("192.168.209.0/24")
    );
    assert_eq!(
        r.via.map(|a| a.to_string()).as_deref(),
        Some("192.168.200.254")
    );
    assert_eq!(r.dev.as_deref(), Some("eth0"));
    let v = &p.config.vrrp_instances[0];
    assert_eq!(v.virtual_routes.len(), 7);
    assert_eq!(v.virtual_routes[5].route_type.as_deref(), Some("blackhole"));
    assert_eq!(v.virtual_routes[6].table.as_deref(), Some("100"));

    let p = parse("keepalived/keepalived.conf.vrrp.rules");
    assert_eq!(p.config.static_rules[0].preference, Some(16384));
    assert_eq!(
        p.config.vrrp_instances[0].virtual_rules[0].preference,
        Some(16383)
    );

    let p = parse("keepalived/keepalived.conf.track_interface");
    let t = &p.config.vrrp_instances[0].track_interfaces;
    assert_eq!(
        t.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["eth0", "eth1"]
    );
}

#[test]
fn localcheck_scripts_and_weights() {
    let p = parse("keepalived/keepalived.conf.vrrp.localcheck");
    let c = &p.config;
    assert_eq!(c.vrrp_scripts.len(), 5);
    let s = c.vrrp_script("chk_sshd").unwrap();
    assert_eq!(s.script.as_ref().unwrap().argv, ["killall", "-0", "sshd"]);
    assert!(
        c.vrrp_instances[0]
            .track_scripts
            .iter()
            .any(|t| t.name == "chk_sshd")
    );
    assert!(!c.scripts().is_empty());
}

#[test]
fn conditional_config_id_selects_lines() {
    let dir = fixture_dir().join("keepalived/keepalived.conf.conditional_conf");
    let high = parse_file(&dir, &ParseOptions::with_config_id("high")).unwrap();
    assert_eq!(high.config.top_level.net_namespace.as_deref(), Some("high"));
    assert_eq!(high.config.vrrp_instances[0].priority, 170);
    let s = &high.config.vrrp_scripts[0];
    assert_eq!(
        s.script.as_ref().unwrap().command,
        "/etc/keepalived/scripts/check_high_VI_0.sh"
    );
    assert_eq!(high.config.vrrp_instances[0].track_scripts.len(), 1);

    let low = parse_file(&dir, &ParseOptions::with_config_id("low")).unwrap();
    assert_eq!(low.config.vrrp_instances[0].priority, 85);
    assert_eq!(low.config.vrrp_instances[0].version, 3);

    // Neither id: no script, so the script is removed and the track fails.
    let none = parse("keepalived/keepalived.conf.conditional_conf");
    assert!(none.config.vrrp_scripts.is_empty());
    let msgs: Vec<String> = none
        .diagnostics
        .items
        .iter()
        .map(|d| d.keepalived_format())
        .collect();
    assert!(
        msgs.iter()
            .any(|m| m.ends_with("Line 13) No script set for vrrp_script check_VI_0 - removing")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.ends_with("Line 25) (VI_0) track script check_VI_0 not found, ignoring...")),
        "{msgs:?}"
    );
}

#[test]
fn alibaba_old_spellings_map_to_same_model() {
    let p = parse("alibaba-keepalived/keepalived.conf.sample");
    let chk = &p.config.virtual_servers[0].real_servers[0].checkers[0];
    // nb_get_retry 3 is retry 3 (with keepalived's deprecation warning).
    assert_eq!(chk.common.retry, 3);
    assert!(
        p.diagnostics
            .items
            .iter()
            .any(|d| d.message == "nb_get_retry is deprecated - please use 'retry'")
    );
    // 1.x `lvs_id` is unknown to keepalived 2.2 (reported the same) but
    // still gives the router id.
    let p = parse("alibaba-keepalived/keepalived.conf.SMTP_CHECK");
    assert_eq!(p.config.global.router_id.as_deref(), Some("LVS_DEVEL"));
    assert_eq!(
        unknown_keywords(&p),
        [(22, "Unknown keyword 'lvs_id'".to_string())]
    );
    let p = parse("alibaba-keepalived/etc-keepalived.conf");
    // nat_mask is unknown to keepalived 2.2 too.
    let unknown = unknown_keywords(&p);
    assert_eq!(
        unknown,
        [
            (36, "Unknown keyword 'nat_mask'".to_string()),
            (110, "Unknown keyword 'nat_mask'".to_string())
        ]
    );
}

#[test]
fn alibaba_track_interface_unknown_block_is_not_skipped() {
    // `static_route` (a typo) with its `{` on the next line: keepalived reads
    // the block's lines at top level, each one an unknown keyword.
    let p = parse("alibaba-keepalived/keepalived.conf.track_interface");
    let lines: Vec<u32> = unknown_keywords(&p).iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, [7, 8, 9, 10, 11, 12]);
    assert!(
        p.diagnostics
            .items
            .iter()
            .any(|d| d.message == "Unexpected '{' - ignoring")
    );
}

#[test]
fn json_dump_is_valid_and_complete() {
    let p = parse("keepalived/etc-keepalived.conf");
    let json = keepalived_conf::dump::to_json(&p.config);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["virtual_servers"].as_array().unwrap().len(), 3);
    assert_eq!(v["vrrp_instances"][0]["name"], "VI_1");
    let text = keepalived_conf::dump::to_text(&p.config);
    assert!(text.contains("VRRP instance VI_1"));
    assert!(text.contains("Real server"));
}
