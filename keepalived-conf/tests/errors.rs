//! Bad input: exact messages (as keepalived 2.2.7 prints them), locations,
//! and keepalived's tolerance (accept with a warning, keep defaults).

use keepalived_conf::validate::{self, Environment};
use keepalived_conf::{DiagKind, ParseOptions, Parsed, Severity, parse_str};
use std::path::PathBuf;

const BASE: &str = "vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        198.18.10.100/32 dev eth0
    }
}
";

/// An environment with eth0 only and no executables.
struct FakeEnv;

impl Environment for FakeEnv {
    fn interface_exists(&self, name: &str) -> bool {
        name == "eth0"
    }
    fn find_executable(&self, p: &str) -> Option<PathBuf> {
        (p == "/bin/true").then(|| PathBuf::from(p))
    }
}

fn check(text: &str) -> Parsed {
    let mut p = parse_str(text, "c.conf", &ParseOptions::with_config_id("h"));
    validate::check(&p.config, &FakeEnv, &mut p.diagnostics);
    p
}

fn msgs(p: &Parsed) -> Vec<String> {
    p.diagnostics
        .items
        .iter()
        .filter(|d| d.severity >= Severity::Warning)
        .map(|d| d.keepalived_format())
        .collect()
}

fn with(from: &str, to: &str) -> String {
    assert!(BASE.contains(from));
    BASE.replacen(from, to, 1)
}

#[test]
fn clean_config_has_no_messages() {
    let p = check(BASE);
    assert_eq!(msgs(&p), Vec::<String>::new());
    let v = &p.config.vrrp_instances[0];
    assert_eq!(
        (v.virtual_router_id, v.priority, v.advert_int),
        (Some(51), 150, 1.0)
    );
}

#[test]
fn vrid_out_of_range() {
    let p = check(&with("virtual_router_id 51", "virtual_router_id 300"));
    assert_eq!(
        msgs(&p),
        [
            "(c.conf: Line 4) number '300' outside range [1, 255]",
            "(c.conf: Line 4) (VI_1): VRID '300' not valid - must be between 1 & 255",
            "(VI_1) the virtual router id must be set",
        ]
    );
    let d = &p.diagnostics.items[0];
    assert_eq!(d.span.as_ref().map(|s| s.column), Some(23));
    assert_eq!(d.text.as_deref(), Some("virtual_router_id 300"));
}

#[test]
fn invalid_vip_is_skipped() {
    let p = check(&with("198.18.10.100/32", "198.18.10.300/32"));
    assert_eq!(
        msgs(&p),
        [
            "(c.conf: Line 8) VRRP parsed invalid IP 198.18.10.300/32. skipping IP...",
            "(VI_1) No VIP specified; at least one is sensible",
        ]
    );
}

#[test]
fn v2_fractional_advert_int() {
    let p = check(&with("advert_int 1", "advert_int 0.1"));
    assert_eq!(
        msgs(&p),
        ["(VI_1) VRRPv2 advertisement interval 0.100000s must be an integer. rounding"]
    );
    let p = check(&with("advert_int 1", "advert_int 0.1\n    version 3"));
    assert!(msgs(&p).is_empty());
}

#[test]
fn missing_parameter_is_fatal_and_stops() {
    let p = check(&with("priority 150", "priority\n    bogus_after"));
    assert_eq!(
        msgs(&p)[0],
        "(c.conf: Line 5) *** Configuration line starting `priority` is missing a parameter after keyword `priority` at word position 2"
    );
    assert!(p.diagnostics.has_fatal());
    // Nothing after the fatal line is read, as keepalived exits there.
    assert!(!msgs(&p).iter().any(|m| m.contains("bogus_after")));
}

#[test]
fn invalid_numbers() {
    let p = check(&with("priority 150", "priority abc"));
    assert_eq!(msgs(&p)[0], "(c.conf: Line 5) invalid number 'abc'");
    let p = check(&with("priority 150", "priority -1"));
    assert_eq!(msgs(&p)[0], "(c.conf: Line 5) negative number '-1'");
    let p = check("global_defs {\n vrrp_garp_interval 0\n}\n");
    assert_eq!(
        msgs(&p),
        [
            "(c.conf: Line 2) number '0' outside range [0.000001, 4294.967295]",
            "(c.conf: Line 2) vrrp_garp_interval '0' is invalid",
        ]
    );
}

#[test]
fn unknown_state_defaults_to_backup() {
    let p = check(&with("state BACKUP", "state FOO"));
    assert_eq!(
        msgs(&p),
        ["(c.conf: Line 2) (VI_1) unknown state 'FOO', defaulting to BACKUP"]
    );
}

#[test]
fn nonexistent_interface() {
    let p = check(&with("interface eth0", "interface nosuch0"));
    assert_eq!(
        msgs(&p),
        [
            "(c.conf: Line 3) WARNING - interface nosuch0 for vrrp_instance VI_1 doesn't exist",
            "Non-existent interface specified in configuration",
        ]
    );
}

#[test]
fn script_security() {
    let track = with("priority 150", "track_script {\n chk\n }\n    priority 150");
    let text = format!("vrrp_script chk {{\n script \"/bin/true\"\n interval 2\n}}\n{track}");
    let p = check(&text);
    assert_eq!(
        msgs(&p),
        ["SECURITY VIOLATION - scripts are being executed but script_security not enabled."]
    );
    assert!(
        p.diagnostics
            .items
            .iter()
            .any(|d| d.kind == DiagKind::Security)
    );
    let secure = format!("global_defs {{\n enable_script_security\n}}\n{text}");
    assert!(msgs(&check(&secure)).is_empty());
    // A script that cannot be found does not count.
    let missing = text.replace("/bin/true", "/nonexistent/x");
    assert!(msgs(&check(&missing)).is_empty());
}

/// FakeEnv on a system without the user `keepalived_script`.
struct NoScriptUser;

impl Environment for NoScriptUser {
    fn interface_exists(&self, name: &str) -> bool {
        FakeEnv.interface_exists(name)
    }
    fn find_executable(&self, p: &str) -> Option<PathBuf> {
        FakeEnv.find_executable(p)
    }
    fn user_exists(&self, _: &str) -> bool {
        false
    }
}

fn check_without_script_user(text: &str) -> Vec<String> {
    let mut p = parse_str(text, "c.conf", &ParseOptions::with_config_id("h"));
    validate::check(&p.config, &NoScriptUser, &mut p.diagnostics);
    let mut m = msgs(&p);
    m.sort();
    m
}

/// As keepalived 2.2.7 -t says it when `keepalived_script` does not exist: the lookup is
/// reported once, at the first script without a user in the order of the passes (the
/// checker's quorum_up before the VRRP script above it), and every vrrp_script and MISC_CHECK
/// without a user is removed at its '}' (its track_script entry then names nothing).
#[test]
fn default_script_user_missing() {
    let text = "global_defs {
  enable_script_security
}
vrrp_script chk_0 {
  script \"/bin/true\"
}
vrrp_script chk_1 {
  script \"/bin/true\"
  user root
}
virtual_server 198.18.0.1 80 {
  protocol TCP
  quorum_up /bin/true
  real_server 198.18.0.2 80 {
    weight 1
    MISC_CHECK {
      misc_path \"/bin/true\"
      user root
    }
    MISC_CHECK {
      misc_path \"/bin/true x\"
    }
  }
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 2
  track_script {
    chk_0
    chk_1
  }
  virtual_ipaddress {
    198.18.10.2
  }
}
";
    assert_eq!(
        check_without_script_user(text),
        [
            "(c.conf: Line 13) Unable to set default user keepalived_script for script",
            "(c.conf: Line 22) Unable to set default user for misc script '/bin/true' 'x' - removing",
            "(c.conf: Line 29) (VI_1) track script chk_0 not found, ignoring...",
            "(c.conf: Line 6) Unable to set default user for vrrp script chk_0 - removing",
            "Virtual server [198.18.0.1]:tcp:80: no forwarding method set, setting default NAT",
            "Virtual server [198.18.0.1]:tcp:80: no scheduler set, setting default 'wlc'",
        ]
    );
    // A script_user, or no script security, asks for no default user.
    let with_user = text.replace(
        "enable_script_security",
        "enable_script_security\n  script_user root",
    );
    assert!(
        !check_without_script_user(&with_user)
            .iter()
            .any(|m| m.contains("default user"))
    );
    // An unknown script_user: no lookup of keepalived_script, the same removals, and the
    // removed scripts are not counted as executed (exit code 5, not 6).
    let unknown = "global_defs {\n  script_user nosuchuser-x\n  startup_script /bin/true\n}\nvrrp_script chk_0 {\n  script \"/bin/true\"\n}\n";
    let mut p = parse_str(unknown, "c.conf", &ParseOptions::with_config_id("h"));
    validate::check(&p.config, &NoScriptUser, &mut p.diagnostics);
    assert!(
        !p.diagnostics
            .items
            .iter()
            .any(|d| d.kind == DiagKind::Security)
    );
    assert_eq!(
        check_without_script_user(unknown),
        [
            "(c.conf: Line 2) Error setting global script uid/gid",
            "(c.conf: Line 3) Invalid startup script",
            "(c.conf: Line 7) Unable to set default user for vrrp script chk_0 - removing",
        ]
    );
    // The user is looked up once, by the first script: one read before
    // enable_script_security runs as root, and so does everything after it.
    let before = "global_defs {\n  startup_script /bin/true\n  enable_script_security\n}\nvrrp_script chk_0 {\n  script \"/bin/true\"\n}\n";
    assert!(check_without_script_user(before).is_empty());
    // Startup and shutdown scripts without a user are invalid.
    let startup = "global_defs {\n  enable_script_security\n  startup_script /bin/true\n  shutdown_script /bin/true\n}\n";
    assert_eq!(
        check_without_script_user(startup),
        [
            "(c.conf: Line 3) Invalid startup script",
            "(c.conf: Line 3) Unable to set default user keepalived_script for script",
            "(c.conf: Line 4) Invalid shutdown script",
        ]
    );
}

/// quorum_up/quorum_down are checker scripts: without script security they are 2.2.7's
/// security violation (exit code 6).
#[test]
fn quorum_scripts_count_for_script_security() {
    let text = "virtual_server 198.18.0.1 80 {
  protocol TCP
  quorum_down /bin/true
  real_server 198.18.0.2 80 {
    weight 1
  }
}
";
    let p = check(text);
    assert!(
        p.diagnostics
            .items
            .iter()
            .any(|d| d.kind == DiagKind::Security),
        "{:?}",
        msgs(&p)
    );
}

/// Real server weights: 2.2.7 takes 0..=2147483647 (IPVS' int), beyond ipvsadm's 65535.
#[test]
fn real_server_weight_range() {
    let conf = |w: &str| {
        format!(
            "virtual_server 198.18.0.1 80 {{\n  protocol TCP\n  lb_algo rr\n  lb_kind DR\n  real_server 198.18.0.2 80 {{\n    weight {w}\n  }}\n}}\n"
        )
    };
    let p = check(&conf("2147483647"));
    assert_eq!(msgs(&p), Vec::<String>::new());
    assert_eq!(p.config.virtual_servers[0].real_servers[0].weight, i32::MAX);
    for (w, first) in [
        (
            "2147483648",
            "number '2147483648' outside range [0, 2147483647]",
        ),
        (
            "4294967296",
            "number '4294967296' outside unsigned integer range",
        ),
        ("-1", "negative number '-1'"),
        ("abc", "invalid number 'abc'"),
    ] {
        let p = check(&conf(w));
        assert_eq!(
            msgs(&p),
            [
                format!("(c.conf: Line 6) {first}"),
                format!("(c.conf: Line 6) Real server weight {w} is outside range 0-2147483647"),
            ]
        );
        assert_eq!(p.config.virtual_servers[0].real_servers[0].weight, 1);
    }
}

#[test]
fn lvs_bad_values() {
    let text = "virtual_server 198.18.1.1 80 {
 lb_algo rr
 lb_kind XX
 persistence_timeout
 protocol FOO
 real_server 198.18.2.1 80 {
  weight 1
  HTTP_GET {
   url {
    path /
    status_code 200-299 999
   }
   nb_get_retry 3
  }
 }
}
";
    let p = check(text);
    assert_eq!(
        msgs(&p),
        [
            "(c.conf: Line 3) PARSER : unknown [XX] routing method for virtual server.",
            "(c.conf: Line 5) Unknown protocol FOO - ignoring",
            "(c.conf: Line 11) Invalid HTTP_GET status code '999'",
            "(c.conf: Line 13) nb_get_retry is deprecated - please use 'retry'",
            "Virtual server [198.18.1.1]:none:80: no protocol set - defaulting to UDP",
            "Virtual server [198.18.1.1]:udp:80: no forwarding method set, setting default NAT",
        ]
    );
    let vs = &p.config.virtual_servers[0];
    assert_eq!(vs.persistence.as_ref().map(|p| p.timeout), Some(360));
    assert_eq!(
        vs.lvs_method.method,
        keepalived_conf::model::ForwardingMethod::Nat
    );
    assert_eq!(vs.real_servers[0].checkers[0].common.retry, 3);
    // HTTP_GET default delay_before_retry is 3 s.
    assert_eq!(
        vs.real_servers[0].checkers[0].common.delay_before_retry,
        3.0
    );
}

#[test]
fn fwmark_with_protocol() {
    let p = check(
        "virtual_server fwmark 7 {\n lb_algo rr\n lb_kind DR\n protocol TCP\n real_server 198.18.0.1 {\n }\n}\n",
    );
    assert_eq!(
        msgs(&p),
        ["Warning: Virtual server FWM 7: protocol specified for fwmark - protocol will be ignored"]
    );
    let p = check("virtual_server fwmark 7 {\n protocol TCP\n}\n");
    assert_eq!(
        msgs(&p),
        [
            "Virtual server FWM 7: no scheduler set, setting default 'wlc'",
            "Virtual server FWM 7: no forwarding method set, setting default NAT",
            "Virtual server FWM 7 has no real servers - ignoring",
        ]
    );
    // An address service without protocol/lb_algo/lb_kind: keepalived 2.2.7
    // defaults to UDP, wlc, NAT, each with a warning.
    let p = check("virtual_server 198.18.1.2 80 {\n real_server 198.18.2.1 80 {\n }\n}\n");
    assert_eq!(
        msgs(&p),
        [
            "Virtual server [198.18.1.2]:none:80: no protocol set - defaulting to UDP",
            "Virtual server [198.18.1.2]:udp:80: no scheduler set, setting default 'wlc'",
            "Virtual server [198.18.1.2]:udp:80: no forwarding method set, setting default NAT",
        ]
    );
    let vs = &p.config.virtual_servers[0];
    assert_eq!(vs.protocol, keepalived_conf::model::Protocol::Udp);
    assert_eq!(vs.scheduler, "wlc");
}

#[test]
fn static_rules_and_routes_messages() {
    let p = check("static_rules {\n from 198.18.0.0/24 table 1\n to 198.18.0./24 table 1\n}\n");
    assert_eq!(
        msgs(&p),
        [
            "(c.conf: Line 2) Rule has no preference specified - setting to 16384. This is probably not what you want.",
            "(c.conf: Line 3) Invalid rule to address 198.18.0./24",
            "(c.conf: Line 3) VRRP parsed invalid IP 198.18.0./24. skipping IP...",
        ]
    );
    let p = check(&with(
        "    priority 150",
        "    virtual_routes {\n 198.18.5.0/24 gw 198.18.0.1\n }\n    priority 150",
    ));
    assert_eq!(
        msgs(&p),
        [
            "(c.conf: Line 6) \"gw\" for routes is deprecated. Please use \"via\"",
            "(c.conf: Line 6) Warning - cannot track route 198.18.5.0/24 with no interface specified, not tracking",
        ]
    );
}

#[test]
fn forks_keywords_are_accepted() {
    let text = "local_address_group laddr_g1 {
 198.18.100.200 dpdk0
 198.18.100.201-205 dpdk0
}
deny_address_group deny1 {
 198.18.9.0/24
 ipset:bad
}
virtual_server 198.18.1.1 80 {
 lb_algo conhash
 hash_target sip
 lb_kind FNAT
 protocol tcp
 laddr_group_name laddr_g1
 daddr_group_name deny1
 syn_proxy
 est_timeout 60
 vip_bind_dev eth0
 proxy_protocol v2
 bps 1000
 real_server 198.18.2.1 80 {
  weight 3
  TCP_CHECK {
   connect_port 80
   nb_get_retry 2
   connect_timeout 4
  }
 }
}
virtual_server match SNAT1 {
 src-range 198.18.3.1-198.18.3.9
 oif dpdk1
 lb_kind SNAT
}
";
    let p = check(text);
    let m = msgs(&p);
    // TCP_CHECK has no nb_get_retry in 2.2 (unknown keyword, like keepalived).
    assert_eq!(m, ["(c.conf: Line 25) Unknown keyword 'nb_get_retry'"]);
    let c = &p.config;
    let g = c.local_address_group("laddr_g1").unwrap();
    assert_eq!(g.entries.len(), 2);
    assert_eq!(g.entries[1].last.to_string(), "198.18.100.205");
    assert_eq!(g.entries[0].interface.as_deref(), Some("dpdk0"));
    assert_eq!(
        c.deny_address_groups[0].entries[1].ipset.as_deref(),
        Some("bad")
    );
    let vs = &c.virtual_servers[0];
    assert_eq!(
        vs.lvs_method.method,
        keepalived_conf::model::ForwardingMethod::Fnat
    );
    assert_eq!(vs.laddr_group_name.as_deref(), Some("laddr_g1"));
    assert!(vs.syn_proxy);
    assert_eq!(vs.est_timeout, Some(60));
    assert_eq!(vs.vip_bind_dev.as_deref(), Some("eth0"));
    assert_eq!(vs.hash_target.as_deref(), Some("sip"));
    assert_eq!(vs.bps, Some(1000));
    let snat = &c.virtual_servers[1];
    assert_eq!(
        snat.snat_match.as_ref().unwrap().oif.as_deref(),
        Some("dpdk1")
    );
}

#[test]
fn master_defaults_priority_255() {
    let p = check(&with("state BACKUP", "state MASTER").replace("    priority 150\n", ""));
    let v = &p.config.vrrp_instances[0];
    assert_eq!(v.priority, 255);
    assert_eq!(v.state, keepalived_conf::model::VrrpState::Master);
}

/// Lines with a message (warning or worse).
fn flagged(p: &Parsed) -> Vec<u32> {
    let mut v: Vec<u32> = p
        .diagnostics
        .items
        .iter()
        .filter(|d| d.severity >= Severity::Warning)
        .filter_map(|d| d.span.as_ref().map(|s| s.line))
        .collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn an_unbraced_block_is_skipped_by_the_other_processes_counting_braces() {
    // keepalived 2.2.7: the real server lacks its '{'; the checker process reads it (its '}'
    // closes it), the parent and VRRP processes skip the virtual server by counting braces,
    // which ends it one '}' early: the lines after are top-level unknown keywords there.
    let p = check(
        "virtual_server 198.18.0.1 25 {\n    protocol TCP\n    real_server 198.18.1.11 25\n        weight 1\n    }\n    delay_loop 5\n}\n",
    );
    assert_eq!(flagged(&p), vec![4, 6, 7], "{:?}", msgs(&p));
}

#[test]
fn a_missing_parameter_ends_the_check_in_2_2_7s_process_order() {
    // The checker pass stops at `retry` (line 5): the VRRP pass (line 9's bad priority) never
    // runs, the parent's global_defs (line 2) was read before.
    let p = check(
        "global_defs {\n  vrrp_startup_delay 0\n}\nvirtual_server 198.18.0.1 80 {\n  retry\n}\nvrrp_instance V {\n  interface lo\n  priority 300\n  virtual_router_id 1\n}\n",
    );
    assert_eq!(flagged(&p), vec![2, 5], "{:?}", msgs(&p));
    assert!(p.diagnostics.has_fatal());
}
