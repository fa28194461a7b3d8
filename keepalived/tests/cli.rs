//! The command line and check mode, without root.

use std::path::PathBuf;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_keepalived");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run keepalived")
}

fn fixture(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../compat-fixtures")
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

fn case(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/oracle-cases")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn unknown_option_like_keepalived() {
    let o = run(&["--bogus"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "Unknown option --bogus\n");
}

#[test]
fn version_and_signum() {
    let o = run(&["-v"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).starts_with("Keepalived v2.2.7 (xlvs "));
    let o = run(&["--signum=STOP"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "15\n");
}

#[test]
fn help_documents_dump_flags() {
    let o = run(&["-h"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0));
    assert!(out.contains("--dump-json"), "{out}");
    assert!(out.contains("--config-test"), "{out}");
}

#[test]
fn check_clean_file_exits_0() {
    // No interfaces and no scripts: valid anywhere.
    let o = run(&["-t", "-f", &fixture("keepalived/keepalived.conf.quorum")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
}

#[test]
fn check_problems_exit_5_with_messages() {
    let o = run(&[
        "-t",
        "-f",
        &fixture("alibaba-keepalived/keepalived.conf.misc_check"),
    ]);
    assert_eq!(o.status.code(), Some(5));
    let e = stderr(&o);
    assert!(
        e.contains("keepalived.conf.misc_check: Line 17) Unknown keyword 'nat_mask'"),
        "{e}"
    );
}

#[test]
fn check_missing_parameter_exit_2() {
    let o = run(&["-t", "-f", &case("noparam.conf")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("is missing a parameter after keyword `priority` at word position 2")
    );
}

#[test]
fn check_missing_file() {
    let o = run(&["-t", "-f", "/nonexistent/x.conf"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stderr(&o), "Config files missing '/nonexistent/x.conf'.\n");
    let o = run(&["-t", "-e", "-f", "/nonexistent/x.conf"]);
    assert_eq!(o.status.code(), Some(4));
}

#[test]
fn check_output_to_log_file() {
    let log = std::env::temp_dir().join(format!("xkc-log-{}", std::process::id()));
    let arg = format!("--config-test={}", log.display());
    let o = run(&[&arg, "-f", &case("typo.conf")]);
    assert_eq!(o.status.code(), Some(5));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert!(text.contains("Unknown keyword 'priorty'"), "{text}");
}

#[test]
fn dump_text_and_json() {
    let f = fixture("keepalived/keepalived.conf.quorum");
    let o = run(&["-d", "-f", &f]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("Virtual server 10.0.1.1:80 Tcp"), "{out}");
    assert_eq!(out.matches("   Real server ").count(), 10);
    let o = run(&["--dump-json", "-f", &f]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(
        v["virtual_servers"][0]["real_servers"]
            .as_array()
            .map(Vec::len),
        Some(10)
    );
    assert_eq!(v["virtual_servers"][0]["scheduler"], "wrr");
}

#[test]
fn config_id_option() {
    let f = fixture("keepalived/keepalived.conf.conditional_conf");
    let o = run(&["--dump-json", "-i", "high", "-f", &f]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["vrrp_instances"][0]["priority"], 170);
    assert_eq!(v["top_level"]["net_namespace"], "high");
}

/// `keepalived -t` takes the xlvs `route_bridge` block: a good one passes (0), a bad one fails
/// (5) with the file and line of each problem, as keepalived reports its own.
#[test]
fn config_test_checks_the_route_bridge_block() {
    let dir = std::env::temp_dir().join(format!("ka-cli-rb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let vs = "virtual_server 198.18.99.1 80 {\n    lb_algo mh\n    lb_kind DR\n    protocol TCP\n    real_server 198.18.30.21 80 {\n        weight 1\n    }\n}\n";
    let good = dir.join("good.conf");
    std::fs::write(
        &good,
        format!("{vs}route_bridge {{\n    daemon bird\n    local_as 65101\n    router_id 198.18.30.11\n    neighbor 198.18.30.1 remote_as 65000\n    bfd on\n}}\n"),
    )
    .unwrap();
    let o = run(&["-t", "-f", good.to_str().unwrap()]);
    assert_eq!((o.status.code(), stderr(&o)), (Some(0), String::new()));
    let bad = dir.join("bad.conf");
    std::fs::write(
        &bad,
        format!("{vs}route_bridge {{\n    daemon openbgpd\n    neighbor 198.18.30.1\n}}\n"),
    )
    .unwrap();
    let o = run(&["-t", "-f", bad.to_str().unwrap()]);
    let err = stderr(&o);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(o.status.code(), Some(5), "{err}");
    assert!(
        err.contains(&format!(
            "({}: Line 10) route_bridge: unknown daemon 'openbgpd' - expected bird, frr or quagga",
            bad.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("Line 11) route_bridge: neighbor 198.18.30.1 has no remote_as"),
        "{err}"
    );
}

/// `--migration-check` lists what will do nothing, with file and line: directives the parser
/// keeps verbatim, and those of features xlvs lacks; acted-on ones are not listed.
#[test]
fn migration_check_lists_directives_not_acted_on() {
    let dir = std::env::temp_dir().join(format!("ka-migration-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("keepalived.conf");
    std::fs::write(
        &conf,
        "global_defs {\n    router_id lb1\n    enable_snmp_vrrp\n    process_names\n}\n\
         vrrp_instance VI_1 {\n    interface lo\n    virtual_router_id 1\n    priority 100\n    \
         lvs_sync_daemon_interface lo\n    smtp_alert\n    virtual_ipaddress {\n        \
         198.18.0.1/32\n    }\n}\n",
    )
    .unwrap();
    let o = run(&["--migration-check", "-f", conf.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<(u32, &str)> = out
        .lines()
        .map(|l| {
            let rest = l.strip_prefix(&format!("{}:", conf.display())).unwrap();
            let (n, r) = rest.split_once(": ").unwrap();
            (n.parse().unwrap(), r.split(' ').next().unwrap())
        })
        .collect();
    assert_eq!(
        lines,
        [(3, "enable_snmp_vrrp"), (4, "process_names"),],
        "{out}"
    );
    let clean = dir.join("clean.conf");
    std::fs::write(&clean, "global_defs {\n    router_id lb1\n}\n").unwrap();
    let o = run(&["--migration-check", "-f", clean.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stdout).ends_with("every directive is acted on\n"));
    std::fs::remove_dir_all(&dir).unwrap();
}
