//! Differential testing of `keepalived -t`: configurations generated from keepalived's grammar
//! and by mutating real ones (values out of range, wrong types, misplaced and broken blocks,
//! includes, conditionals, scripts, quoting and escapes) are checked by our binary and by
//! Debian's keepalived 2.2.7 in the same network namespace (which has the interfaces they
//! name); the verdicts agree when the exit codes and the set of flagged lines (`(FILE: Line N)`)
//! are the same. Disagreements are grouped into classes by what differs. Deterministic for a
//! seed. Used by `tests/tests/keepalived_differential.rs` (a fixed-seed sample) and
//! `cargo xtask kadiff` (thousands).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use crate::netns::{Netns, run};

/// splitmix64: small, deterministic, good enough to pick mutations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
}

/// One generated configuration: the main file and the files it includes or runs.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    /// (file name relative to the case directory, content, mode).
    pub files: Vec<(String, String, u32)>,
}

/// Values that test ranges and types.
const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3",
    "5",
    "10",
    "100",
    "255",
    "256",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "99999999999",
    "1.5",
    "0.001",
    "-0.5",
    "1e3",
    "0x10",
    "abc",
    "on",
    "off",
    "yes",
    "no",
    "true",
    "198.18.0.1",
    "198.18.0.1/24",
    "198.18.0.1/33",
    "2001:db8::1",
    "2001:db8::1/64",
    "eth0",
    "eth9",
    "lo",
    "TCP",
    "UDP",
    "rr",
    "wlc",
    "NAT",
    "DR",
    "TUN",
    "\"quoted value\"",
    "\"a\\\"b\"",
    "\"\\x41\\x42\"",
    "'single'",
    "\"unterminated",
    "BACKUP",
    "MASTER",
    "1.0",
    "1.1",
    "200-299",
    "/",
    "/tmp/none",
];

/// Keywords, by the block they belong in, with a value shape.
const GLOBAL_KW: &[&str] = &[
    "router_id",
    "notification_email_from",
    "smtp_server",
    "smtp_helo_name",
    "smtp_connect_timeout",
    "smtp_alert",
    "smtp_alert_vrrp",
    "smtp_alert_checker",
    "enable_script_security",
    "script_user",
    "vrrp_version",
    "vrrp_strict",
    "vrrp_garp_master_delay",
    "vrrp_garp_master_repeat",
    "vrrp_garp_master_refresh",
    "vrrp_garp_interval",
    "vrrp_gna_interval",
    "vrrp_mcast_group4",
    "vrrp_mcast_group6",
    "vrrp_priority",
    "vrrp_rt_priority",
    "vrrp_no_swap",
    "checker_priority",
    "lvs_timeouts",
    "lvs_flush",
    "lvs_flush_on_stop",
    "lvs_sync_daemon",
    "max_auto_priority",
    "min_auto_priority_delay",
    "vrrp_startup_delay",
    "dynamic_interfaces",
    "default_interface",
    "notify_fifo",
    "vrrp_notify_fifo",
    "lvs_notify_fifo",
    "startup_script",
    "shutdown_script",
    "startup_script_timeout",
    "vrrp_lower_prio_no_advert",
    "vrrp_higher_prio_send_advert",
    "vrrp_check_unicast_src",
    "vrrp_skip_check_adv_addr",
    "no_email_faults",
    "no_checker_emails",
    "vrrp_garp_lower_prio_delay",
    "vrrp_garp_lower_prio_repeat",
    "vrrp_min_garp",
    "umask",
    "bfd_rt_priority",
];
const VRRP_KW: &[&str] = &[
    "state",
    "interface",
    "virtual_router_id",
    "priority",
    "advert_int",
    "version",
    "nopreempt",
    "preempt_delay",
    "garp_master_delay",
    "garp_master_repeat",
    "garp_master_refresh",
    "mcast_src_ip",
    "unicast_src_ip",
    "track_interface",
    "track_script",
    "authentication",
    "use_vmac",
    "vmac_xmit_base",
    "dont_track_primary",
    "accept",
    "no_accept",
    "strict_mode",
    "smtp_alert",
    "notify_master",
    "notify_backup",
    "notify_fault",
    "notify_stop",
    "notify",
    "lower_prio_no_advert",
    "higher_prio_send_advert",
    "debug",
    "unicast_ttl",
    "track_src_ip",
    "unicast_fault_no_peer",
    "promote_secondaries",
    "skip_check_adv_addr",
    "down_timer_adverts",
    "garp_lower_prio_repeat",
    "kernel_rx_buf_size",
    "mcast_dst_ip",
];
const VS_KW: &[&str] = &[
    "delay_loop",
    "lb_algo",
    "lb_kind",
    "protocol",
    "persistence_timeout",
    "persistence_granularity",
    "virtualhost",
    "sorry_server",
    "sorry_server_inhibit",
    "quorum",
    "hysteresis",
    "quorum_up",
    "quorum_down",
    "ha_suspend",
    "alpha",
    "omega",
    "retry",
    "delay_before_retry",
    "warmup",
    "inhibit_on_failure",
    "ip_family",
    "smtp_alert",
    "connect_timeout",
    "ops",
];
const RS_KW: &[&str] = &[
    "weight",
    "inhibit_on_failure",
    "notify_up",
    "notify_down",
    "alpha",
    "retry",
    "delay_before_retry",
    "delay_loop",
    "warmup",
    "connect_timeout",
    "smtp_alert",
    "uthreshold",
    "lthreshold",
    "lb_kind",
    "virtualhost",
];
const CHECKERS: &[&str] = &[
    "TCP_CHECK",
    "HTTP_GET",
    "SSL_GET",
    "MISC_CHECK",
    "SMTP_CHECK",
    "DNS_CHECK",
    "UDP_CHECK",
    "PING_CHECK",
    "FILE_CHECK",
    "BFD_CHECK",
];
const CHECKER_KW: &[&str] = &[
    "connect_timeout",
    "connect_port",
    "connect_ip",
    "bindto",
    "bind_port",
    "retry",
    "delay_before_retry",
    "warmup",
    "misc_path",
    "misc_timeout",
    "misc_dynamic",
    "user",
    "helo_name",
    "type",
    "name",
    "payload",
    "require_reply",
    "min_reply_length",
    "max_reply_length",
    "nb_get_retry",
    "alpha",
    "fwmark",
    "log_all_failures",
];

fn value(r: &mut Rng) -> String {
    (*r.pick(VALUES)).to_string()
}

fn kw_line(r: &mut Rng, kws: &[&str], indent: &str) -> String {
    let kw = r.pick(kws);
    match r.below(4) {
        0 => format!("{indent}{kw}\n"),
        1 | 2 => format!("{indent}{kw} {}\n", value(r)),
        _ => format!("{indent}{kw} {} {}\n", value(r), value(r)),
    }
}

/// A configuration from the grammar: blocks with random keywords and values.
fn grammar(r: &mut Rng) -> String {
    let mut s = String::new();
    if r.chance(70) {
        s.push_str("global_defs {\n");
        for _ in 0..r.below(5) + 1 {
            s.push_str(&kw_line(r, GLOBAL_KW, "  "));
        }
        s.push_str("}\n");
    }
    if r.chance(40) {
        s.push_str(&format!(
            "vrrp_script chk_{} {{\n  script \"{}\"\n  interval {}\n  weight {}\n}}\n",
            r.below(3),
            r.pick(&["/bin/true", "/bin/false x", "/nonexistent", "true"]),
            value(r),
            value(r)
        ));
    }
    for i in 0..r.below(3) {
        s.push_str(&format!(
            "vrrp_instance VI_{i} {{\n  state BACKUP\n  interface {}\n  virtual_router_id {}\n  priority {}\n",
            r.pick(&["eth0", "eth1", "eth9", "eth0.1"]),
            r.below(300),
            r.below(300)
        ));
        for _ in 0..r.below(5) {
            s.push_str(&kw_line(r, VRRP_KW, "  "));
        }
        if r.chance(85) {
            s.push_str(&format!(
                "  virtual_ipaddress {{\n    {}\n  }}\n",
                r.pick(&[
                    "198.18.10.1/32",
                    "198.18.10.2",
                    "2001:db8::10/64",
                    "198.18.10.300",
                    "198.18.10.3 dev eth1"
                ])
            ));
        }
        s.push_str("}\n");
    }
    for _ in 0..r.below(3) {
        s.push_str(&format!(
            "virtual_server {} {} {{\n",
            r.pick(&[
                "198.18.20.1",
                "2001:db8::20",
                "fwmark 3",
                "group G1",
                "198.18.20.999"
            ]),
            r.pick(&["80", "0", "65536", "http", ""])
        ));
        for _ in 0..r.below(5) {
            s.push_str(&kw_line(r, VS_KW, "  "));
        }
        for _ in 0..r.below(3) {
            s.push_str(&format!(
                "  real_server {} {} {{\n",
                r.pick(&["198.18.20.10", "198.18.20.11", "2001:db8::21", "bad"]),
                r.pick(&["80", "8080", "0", ""])
            ));
            for _ in 0..r.below(3) {
                s.push_str(&kw_line(r, RS_KW, "    "));
            }
            if r.chance(70) {
                s.push_str(&format!("    {} {{\n", r.pick(CHECKERS)));
                for _ in 0..r.below(4) {
                    s.push_str(&kw_line(r, CHECKER_KW, "      "));
                }
                if r.chance(30) {
                    s.push_str("      url {\n        path /\n        status_code 200\n      }\n");
                }
                s.push_str("    }\n");
            }
            s.push_str("  }\n");
        }
        s.push_str("}\n");
    }
    s
}

/// Start and end line of every block that opens on `lines[i]`.
fn blocks(lines: &[String]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut stack = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let code = l.split(['#', '!']).next().unwrap_or("");
        for c in code.chars() {
            match c {
                '{' => stack.push(i),
                '}' => {
                    if let Some(s) = stack.pop() {
                        out.push((s, i));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// One mutation of `lines` (and maybe extra files for the case).
fn mutate(r: &mut Rng, lines: &mut Vec<String>, extra: &mut Vec<(String, String, u32)>) {
    if lines.is_empty() {
        lines.push(grammar(r));
        return;
    }
    let i = r.below(lines.len());
    match r.below(12) {
        // A value out of range or of the wrong type.
        0..=2 => {
            let words: Vec<&str> = lines[i].split_whitespace().collect();
            if words.len() >= 2 && !words[0].starts_with('#') {
                let k = 1 + r.below(words.len() - 1);
                let mut w: Vec<String> = words.iter().map(|s| s.to_string()).collect();
                w[k] = value(r);
                lines[i] = format!("  {}", w.join(" "));
            } else {
                lines[i] = format!("{} {}", lines[i], value(r));
            }
        }
        3 => {
            lines.remove(i);
        }
        4 => {
            let l = lines[i].clone();
            lines.insert(i, l);
        }
        // A block moved elsewhere (misplaced).
        5 => {
            let b = blocks(lines);
            if !b.is_empty() {
                let (s, e) = *r.pick(&b);
                let cut: Vec<String> = lines.drain(s..=e).collect();
                let at = r.below(lines.len() + 1);
                for (k, l) in cut.into_iter().enumerate() {
                    lines.insert(at + k, l);
                }
            }
        }
        // A brace lost or added.
        6 => {
            if r.chance(50) {
                lines[i] = lines[i].replacen(['{', '}'], "", 1);
            } else {
                lines.insert(i, r.pick(&["}", "{", "foo {"]).to_string());
            }
        }
        // A keyword from another block, here.
        7 => {
            let all: Vec<&str> = GLOBAL_KW
                .iter()
                .chain(VRRP_KW)
                .chain(VS_KW)
                .chain(RS_KW)
                .chain(CHECKER_KW)
                .chain(CHECKERS)
                .copied()
                .collect();
            lines.insert(i, kw_line(r, &all, "  ").trim_end().to_string());
        }
        // Part of the file in an include (sometimes a glob, sometimes missing).
        8 => {
            let b: Vec<(usize, usize)> = blocks(lines)
                .into_iter()
                .filter(|(s, _)| !lines[*s].starts_with(' ') && !lines[*s].starts_with('\t'))
                .collect();
            let n = extra.len();
            let name = format!("inc{n}.conf");
            match (b.is_empty(), r.below(4)) {
                (false, 0..=1) => {
                    let (s, e) = *r.pick(&b);
                    let cut: Vec<String> = lines.drain(s..=e).collect();
                    lines.insert(s, format!("include {name}"));
                    extra.push((name, cut.join("\n") + "\n", 0o644));
                }
                (false, 2) => {
                    let (s, e) = *r.pick(&b);
                    let cut: Vec<String> = lines.drain(s..=e).collect();
                    lines.insert(s, "include inc*.conf".into());
                    extra.push((name, cut.join("\n") + "\n", 0o644));
                }
                _ => lines.insert(i, format!("include missing{n}.conf")),
            }
        }
        // Conditionals: @id lines, $VARIABLES, ~SEQ.
        9 => match r.below(4) {
            0 => lines[i] = format!("@other {}", lines[i].trim_start()),
            1 => lines[i] = format!("@^other {}", lines[i].trim_start()),
            2 => {
                let v = value(r);
                lines.insert(0, format!("$VAR_{i}={v}"));
                let words: Vec<&str> = lines[i + 1].split_whitespace().collect();
                if words.len() >= 2 {
                    lines[i + 1] = format!("  {} ${{VAR_{i}}}", words[0]);
                }
            }
            _ => lines.insert(i, "~SEQ(N, 1, 3) vrrp_garp_master_repeat $N".into()),
        },
        // Scripts outside vrrp_script/notify: quorum scripts, MISC_CHECK, notify lines, in
        // included files too; secure or not.
        10 => {
            let n = extra.len();
            let mode = if r.chance(50) { 0o755 } else { 0o777 };
            let script = format!("script{n}.sh");
            extra.push((script.clone(), "#!/bin/sh\nexit 0\n".into(), mode));
            let line = match r.below(6) {
                0 => "  quorum_up \"SCRIPT arg\"".to_string(),
                1 => "  quorum_down SCRIPT".to_string(),
                2 => "  notify_master \"SCRIPT a \\\"b c\\\"\"".to_string(),
                3 => "  notify_up SCRIPT".to_string(),
                4 => "  MISC_CHECK {\n    misc_path \"SCRIPT x\"\n  }".to_string(),
                _ => "enable_script_security".to_string(),
            };
            lines.insert(i, line.replace("SCRIPT", &format!("@DIR@/{script}")));
            if r.chance(30) {
                lines.insert(
                    0,
                    "global_defs {\n  enable_script_security\n  script_user root\n}".into(),
                );
            }
        }
        // Quoting and escapes.
        _ => {
            let words: Vec<&str> = lines[i].split_whitespace().collect();
            if words.len() >= 2 {
                let q = r.pick(&[
                    "\"a b\"",
                    "\"a\\\"b\"",
                    "\"\\\\x\"",
                    "\"\\x41\"",
                    "\"tab\\tx\"",
                    "\"unterminated",
                    "'single quoted'",
                    "\"\"",
                    "\"#notcomment\"",
                ]);
                lines[i] = format!("  {} {q}", words[0]);
            }
        }
    }
}

/// `count` cases from `seed`: about a third from the grammar, the rest mutated fixtures.
pub fn generate(seed: u64, count: usize, fixtures: &[(String, String)]) -> Vec<Case> {
    let mut r = Rng::new(seed);
    (0..count)
        .map(|n| {
            let mut extra = Vec::new();
            let (origin, mut lines): (String, Vec<String>) = if fixtures.is_empty() || r.chance(33)
            {
                (
                    "grammar".into(),
                    grammar(&mut r).lines().map(String::from).collect(),
                )
            } else {
                let (name, text) = r.pick(fixtures);
                (name.clone(), text.lines().map(String::from).collect())
            };
            for _ in 0..1 + r.below(3) {
                mutate(&mut r, &mut lines, &mut extra);
            }
            let mut files = vec![(
                "keepalived.conf".to_string(),
                lines.join("\n") + "\n",
                0o644,
            )];
            files.extend(extra);
            Case {
                name: format!("{seed}-{n}-{origin}"),
                files,
            }
        })
        .collect()
}

/// What `-t` said: exit code and the flagged (file, line) pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub rc: i32,
    pub lines: BTreeSet<(String, u32)>,
    pub text: String,
}

/// `(FILE: Line N)` / `(Line N)` prefixes: (file's base name, N); the main file is "".
pub fn flagged(out: &str) -> BTreeSet<(String, u32)> {
    let mut set = BTreeSet::new();
    for l in out.lines() {
        let Some(i) = l.find("Line ") else { continue };
        let digits: String = l[i + 5..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        let Ok(n) = digits.parse() else { continue };
        let file = l[..i]
            .rfind('(')
            .map(|o| l[o + 1..i].trim_end_matches([':', ' ']))
            .unwrap_or("");
        let base = Path::new(file)
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_string();
        let base = if base == "keepalived.conf" {
            String::new()
        } else {
            base
        };
        set.insert((base, n));
    }
    set
}

fn check(prog: &str, file: &Path) -> Verdict {
    let out = Command::new(prog)
        .arg("-t")
        .arg("-f")
        .arg(file)
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stderr).to_string()
                + &String::from_utf8_lossy(&o.stdout);
            Verdict {
                rc: o.status.code().unwrap_or(-1),
                lines: flagged(&text),
                text,
            }
        }
        Err(e) => Verdict {
            rc: -2,
            lines: BTreeSet::new(),
            text: e.to_string(),
        },
    }
}

/// A namespace with the interfaces the generated configurations name.
pub fn namespace(prefix: &str) -> Result<Netns> {
    let ns = Netns::new(&format!("{prefix}n"))?;
    for (a, b) in [
        ("eth0", "peth0"),
        ("eth1", "peth1"),
        ("eth2", "peth2"),
        ("eth3", "peth3"),
    ] {
        run(
            "ip",
            &[
                "-n", &ns.name, "link", "add", a, "type", "veth", "peer", "name", b,
            ],
        )?;
    }
    run(
        "ip",
        &[
            "-n", &ns.name, "link", "add", "link", "eth0", "name", "eth0.1", "type", "vlan", "id",
            "1",
        ],
    )
    .or_else(|_| {
        run(
            "ip",
            &[
                "-n", &ns.name, "link", "add", "eth0.1", "type", "veth", "peer", "name", "peth01",
            ],
        )
    })?;
    Ok(ns)
}

/// One case's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub case: Case,
    pub ours: Verdict,
    pub theirs: Verdict,
}

impl Outcome {
    pub fn agree(&self) -> bool {
        self.ours.rc == self.theirs.rc && self.ours.lines == self.theirs.lines
    }

    /// The kinds of disagreement in this case: for every line only one side flags, that
    /// side and its message there (numbers blanked); when the lines agree but the exit codes
    /// do not, the exit codes.
    pub fn classes(&self) -> Vec<String> {
        let msg = |v: &Verdict, line: &(String, u32)| -> String {
            let tag = if line.0.is_empty() {
                format!("Line {})", line.1)
            } else {
                format!("{}: Line {})", line.0, line.1)
            };
            let l = v.text.lines().find(|l| l.contains(&tag)).unwrap_or("");
            let l = l.split_once(") ").map_or(l, |(_, r)| r);
            let l: String = l
                .chars()
                .map(|c| if c.is_ascii_digit() { '#' } else { c })
                .take(100)
                .collect();
            l
        };
        if self.theirs.rc < 0 && self.ours.rc >= 0 {
            // Nothing to compare against: 2.2.7 died (a double free in its checker parser on
            // some broken virtual_server blocks) before its VRRP pass.
            return vec!["2.2.7 crashed (killed by a signal)".into()];
        }
        let mut out = Vec::new();
        for line in self.theirs.lines.difference(&self.ours.lines) {
            out.push(format!("only 2.2.7 flags: {}", msg(&self.theirs, line)));
        }
        for line in self.ours.lines.difference(&self.theirs.lines) {
            out.push(format!("only ours flags: {}", msg(&self.ours, line)));
        }
        if out.is_empty() && self.ours.rc != self.theirs.rc {
            out.push(format!(
                "exit code 2.2.7 {} / ours {}",
                self.theirs.rc, self.ours.rc
            ));
        }
        out
    }
}

/// Runs every case with both binaries in `ns`, `threads` at a time; the cases' files live
/// under `dir`.
pub fn run_cases(
    ns: &Netns,
    dir: &Path,
    ours: &Path,
    theirs: &Path,
    cases: Vec<Case>,
    threads: usize,
) -> Result<Vec<Outcome>> {
    let queue = Arc::new(Mutex::new(
        cases.into_iter().enumerate().collect::<Vec<_>>(),
    ));
    let results = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for _ in 0..threads.max(1) {
        let (q, res) = (queue.clone(), results.clone());
        let (dir, ours, theirs) = (dir.to_path_buf(), ours.to_path_buf(), theirs.to_path_buf());
        handles.push(ns.run_in(move || -> Result<()> {
            loop {
                let Some((n, case)) = q.lock().unwrap().pop() else {
                    return Ok(());
                };
                let cdir: PathBuf = dir.join(format!("c{n}"));
                std::fs::create_dir_all(&cdir)?;
                for (name, text, mode) in &case.files {
                    let p = cdir.join(name);
                    let text = text.replace("@DIR@", &cdir.display().to_string());
                    std::fs::write(&p, text)?;
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode))?;
                }
                let main = cdir.join("keepalived.conf");
                let t = check(theirs.to_str().context("path")?, &main);
                let o = check(ours.to_str().context("path")?, &main);
                let _ = std::fs::remove_dir_all(&cdir);
                res.lock().unwrap().push((
                    n,
                    Outcome {
                        case,
                        ours: o,
                        theirs: t,
                    },
                ));
            }
        }));
    }
    for h in handles {
        h.join()
            .map_err(|_| anyhow::anyhow!("worker panicked"))???;
    }
    let mut v = std::mem::take(&mut *results.lock().unwrap());
    v.sort_by_key(|(n, _)| *n);
    Ok(v.into_iter().map(|(_, o)| o).collect())
}

/// The fixtures the mutations start from: compat-fixtures/keepalived and alibaba-keepalived.
pub fn fixtures(repo: &Path) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for d in [
        "compat-fixtures/keepalived",
        "compat-fixtures/alibaba-keepalived",
    ] {
        let Ok(rd) = std::fs::read_dir(repo.join(d)) else {
            continue;
        };
        let mut names: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        names.sort();
        for p in names {
            if let Ok(t) = std::fs::read_to_string(&p) {
                v.push((p.file_name().unwrap().to_string_lossy().into_owned(), t));
            }
        }
    }
    v
}

/// Agreement and the disagreement classes (largest first), as a report.
pub fn report(outcomes: &[Outcome]) -> (f64, String) {
    let agree = outcomes.iter().filter(|o| o.agree()).count();
    let rate = if outcomes.is_empty() {
        1.0
    } else {
        agree as f64 / outcomes.len() as f64
    };
    let mut classes: BTreeMap<String, Vec<&Outcome>> = BTreeMap::new();
    for o in outcomes.iter().filter(|o| !o.agree()) {
        for c in o.classes() {
            classes.entry(c).or_default().push(o);
        }
    }
    let mut v: Vec<_> = classes.into_iter().collect();
    v.sort_by_key(|(_, os)| std::cmp::Reverse(os.len()));
    let crashed = outcomes
        .iter()
        .filter(|o| o.theirs.rc < 0 && o.ours.rc >= 0)
        .count();
    let judged = outcomes.len() - crashed;
    let mut text = format!(
        "{agree} of {} agree ({:.2} %); {agree} of the {judged} 2.2.7 completes ({:.2} %); {} classes of disagreement (a case may be in several)\n",
        outcomes.len(),
        rate * 100.0,
        if judged == 0 {
            100.0
        } else {
            agree as f64 * 100.0 / judged as f64
        },
        v.len()
    );
    for (c, os) in &v {
        text.push_str(&format!(
            "{:5}  {c}  e.g. {}\n         why: {}\n",
            os.len(),
            os[0].case.name,
            explain(c)
        ));
    }
    (rate, text)
}

/// Why a class of disagreement remains (what is known of it).
pub fn explain(class: &str) -> &'static str {
    const KNOWN: &[(&str, &str)] = &[
        (
            "crashed",
            "2.2.7 aborts (free(): invalid pointer) on some broken virtual servers: no verdict",
        ),
        (
            "default user",
            "the default script user is looked up by the first script 2.2.7 reads: its pass order with broken blocks",
        ),
        (
            "for vrrp_instance",
            "interface checks around a pass that stopped early or unbalanced braces, in included files",
        ),
        (
            "exit code 2.2.7 6",
            "script security verdict in configurations with broken blocks: which scripts 2.2.7 reads",
        ),
        (
            "/ ours 6",
            "script security verdict in configurations with broken blocks: which scripts 2.2.7 reads",
        ),
        ("igest", "per-url digest checks (duplicates) not reproduced"),
        (
            "track",
            "track_interface/track_script entries that 2.2.7 checks while parsing",
        ),
        (
            "quote",
            "recovery after an unterminated or escaped quote differs",
        ),
        (
            "Unknown keyword",
            "brace recovery after a quote or a block moved into another",
        ),
    ];
    KNOWN.iter().find(|(k, _)| class.contains(k)).map_or(
        "a per-keyword check of 2.2.7 not reproduced yet",
        |(_, why)| why,
    )
}
