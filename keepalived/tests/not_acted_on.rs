//! Nothing is silently accepted: every keyword the parser takes is either read by the daemon or
//! reported by `keepalived -t` as doing nothing, with its file and line. Checked against the
//! keywords operators migrating from keepalived 2.2.x use most (the list below) and against the
//! parser's own list of keywords it keeps without typing them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use keepalived::migration::READ_FROM_EXTRA;

const BIN: &str = env!("CARGO_BIN_EXE_keepalived");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The sources of everything that runs in the daemon (not the parser).
fn daemon_sources() -> String {
    fn walk(dir: &Path, out: &mut String) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
            }
        }
    }
    let mut s = String::new();
    for d in [
        "vrrp/src",
        "keepalived/src/daemon",
        "healthcheck/src",
        "bfd/src",
        "syncd/src",
    ] {
        walk(&repo().join(d), &mut s);
    }
    s
}

#[test]
fn the_kept_keywords_the_daemon_reads_are_exactly_the_listed_ones() {
    let src = daemon_sources();
    let mut wrong = Vec::new();
    for kw in keepalived_conf::parser::kept_verbatim() {
        let read = src.contains(&format!("\"{kw}\""));
        if read != READ_FROM_EXTRA.contains(&kw) {
            wrong.push(format!(
                "{kw}: read by the daemon = {read}, in READ_FROM_EXTRA = {}",
                !read
            ));
        }
    }
    for kw in READ_FROM_EXTRA {
        assert!(
            keepalived_conf::parser::kept_verbatim().any(|k| k == *kw),
            "{kw} is in READ_FROM_EXTRA but the parser does not keep it"
        );
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// (keyword, line) of the `-t` warnings "FILE:LINE: warning: KW is accepted but does nothing".
fn warned(stderr: &str, file: &Path) -> BTreeSet<(String, u32)> {
    let prefix = format!("{}:", file.display());
    stderr
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (line, rest) = rest.split_once(": warning: ")?;
            let kw = rest
                .strip_suffix(")")?
                .split_once(" is accepted but does nothing here")?;
            Some((kw.0.to_string(), line.parse().ok()?))
        })
        .collect()
}

#[test]
fn check_names_file_and_line_of_what_does_nothing() {
    let dir = std::env::temp_dir().join(format!("xlvs-not-acted-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Each keyword of the migration list once, on a known line; `~` marks the ones that must
    // be warned about, the others are acted on by the daemon.
    let body = [
        "global_defs {",
        "  router_id t1",
        "  smtp_server 198.18.0.9 25",
        "  smtp_helo_name ka.example",
        "  smtp_connect_timeout 5",
        "  smtp_alert",
        "  enable_script_security",
        "  script_user root",
        "  startup_script /bin/true",
        "  shutdown_script /bin/true",
        "  lvs_sync_daemon eth0 VI_1",
        "  vrrp_garp_extra_if 30",
        "  vrrp_higher_prio_send_advert",
        "  vrrp_startup_delay 5",
        "  max_auto_priority 10",
        "  linkbeat_use_polling",
        "~ vrrp_iptables",
        "~ enable_snmp_vrrp",
        "~ process_names",
        "}",
        "net_namespace ns1",
        "use_pid_dir",
        "static_ipaddress {",
        "  198.18.5.1/32 dev eth0",
        "}",
        "interface_up_down_delays {",
        "  eth0 1 2",
        "}",
        "include inc.conf",
        "vrrp_instance VI_1 {",
        "  state BACKUP",
        "  interface eth0",
        "  virtual_router_id 5",
        "  priority 100",
        "  unicast_fault_no_peer",
        "  use_ipvlan",
        "  vrf red",
        "  mcast_dst_ip 224.0.0.19",
        "  track_src_ip",
        "  higher_prio_send_advert",
        "  notify_deleted",
        "  promote_secondaries",
        "~ notify_priority_changes",
        "~ no_virtual_ipaddress",
        "  virtual_ipaddress {",
        "    198.18.10.1",
        "  }",
        "}",
    ];
    let mut expected = BTreeSet::new();
    let mut acted = Vec::new();
    let mut text = String::new();
    for (i, l) in body.iter().enumerate() {
        let line = i as u32 + 1;
        let kw = l
            .trim_start_matches('~')
            .split_whitespace()
            .next()
            .unwrap_or("");
        if l.starts_with('~') {
            expected.insert((kw.to_string(), line));
        } else if l.starts_with("  ") && !kw.is_empty() && !kw.starts_with('1') {
            acted.push((kw.to_string(), line));
        }
        text.push_str(&l.replacen('~', " ", 1));
        text.push('\n');
    }
    let main = dir.join("keepalived.conf");
    std::fs::write(&main, text).unwrap();
    // An included file: its own name and line.
    let inc = dir.join("inc.conf");
    std::fs::write(&inc, "\n\nglobal_defs {\n  nftables\n}\n").unwrap();
    let out = Command::new(BIN)
        .args(["-t", "-f"])
        .arg(&main)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let got = warned(&stderr, &main);
    let got_inc = warned(&stderr, &inc);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(got, expected, "-t said:\n{stderr}");
    assert_eq!(
        got_inc,
        BTreeSet::from([("nftables".to_string(), 4)]),
        "-t said:\n{stderr}"
    );
    for (kw, line) in acted {
        assert!(
            !got.contains(&(kw.clone(), line)),
            "{kw} (line {line}) is acted on but -t says it does nothing"
        );
    }
    // The warnings are ours: keepalived's verdict (flagged lines, exit code) is untouched.
    assert!(
        !stderr
            .lines()
            .any(|l| l.contains("does nothing") && l.contains("Line ")),
        "{stderr}"
    );
}
