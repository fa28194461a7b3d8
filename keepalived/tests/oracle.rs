//! Oracle: Debian's keepalived 2.2.7 `-t` and ours on the same files, inside
//! a network namespace that has the interfaces the configurations name.
//! Compares exit codes and the set of flagged lines.
//!
//! Needs root (network namespaces). Skips with a printed reason otherwise;
//! as root a missing /usr/sbin/keepalived is a failure (scripts/setup.sh
//! installs it).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

const ORACLE: &str = "/usr/sbin/keepalived";
const OURS: &str = env!("CARGO_BIN_EXE_keepalived");

static NS_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A network namespace removed on drop (also when a test panics).
struct NetNs {
    name: String,
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

impl NetNs {
    fn new() -> NetNs {
        let n = NS_COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("xkc-{}-{n}", std::process::id());
        assert!(ip(&["netns", "add", &name]), "ip netns add {name}");
        let ns = NetNs { name };
        // Only links, no addresses: keepalived -t looks interfaces up by name.
        let links = [
            ("eth0", "peth0"),
            ("eth1", "peth1"),
            ("eth2", "peth2"),
            ("eth3", "peth3"),
            ("eth0.1", "peth01"),
        ];
        for (a, b) in links {
            assert!(ip(&[
                "-n", &ns.name, "link", "add", a, "type", "veth", "peer", "name", b
            ]));
        }
        ns
    }

    /// Runs `prog -t -f FILE extra…` in the namespace: (exit code, output).
    fn check(&self, prog: &str, file: &Path, extra: &[&str]) -> (i32, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, prog, "-t", "-f"])
            .arg(file)
            .args(extra)
            .output()
            .expect("run ip netns exec");
        let text = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        (out.status.code().unwrap_or(-1), text)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        ip(&["netns", "del", &self.name]);
    }
}

/// Line numbers in `(FILE: Line N)` / `(Line N)` prefixes.
fn flagged_lines(out: &str) -> BTreeSet<u32> {
    let mut set = BTreeSet::new();
    for l in out.lines() {
        if let Some(i) = l.find("Line ") {
            let digits: String = l[i + 5..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            if let Ok(n) = digits.parse() {
                set.insert(n);
            }
        }
    }
    set
}

fn skip_reason() -> Option<&'static str> {
    if !xlvs_tests::netns::is_root() {
        return Some("oracle tests need root (network namespaces)");
    }
    None
}

fn files_in(dir: &Path, suffix_ok: fn(&str) -> bool) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.is_file()
                        && p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(suffix_ok)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn compare(files: &[PathBuf], extra: &[&str]) -> Vec<String> {
    let ns = NetNs::new();
    let mut diffs = Vec::new();
    for f in files {
        let (orc, oout) = ns.check(ORACLE, f, extra);
        let (mrc, mout) = ns.check(OURS, f, extra);
        let (ol, ml) = (flagged_lines(&oout), flagged_lines(&mout));
        if orc != mrc || ol != ml {
            diffs.push(format!(
                "{} {extra:?}: oracle rc={orc} lines={ol:?} ours rc={mrc} lines={ml:?}\n--- oracle:\n{oout}--- ours:\n{mout}",
                f.display()
            ));
        }
    }
    diffs
}

fn run_oracle(files: Vec<PathBuf>, extra: &[&str]) {
    if let Some(r) = skip_reason() {
        xlvs_tests::skip(r);
        return;
    }
    assert!(
        Path::new(ORACLE).exists(),
        "{ORACLE} missing: apt-get install keepalived (scripts/setup.sh)"
    );
    assert!(!files.is_empty());
    let diffs = compare(&files, extra);
    assert!(
        diffs.is_empty(),
        "{} of {} files differ:\n{}",
        diffs.len(),
        files.len(),
        diffs.join("\n")
    );
    println!(
        "{} files: same exit codes and flagged lines as keepalived 2.2.7",
        files.len()
    );
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn oracle_upstream_fixtures() {
    run_oracle(
        files_in(&root().join("../compat-fixtures/keepalived"), |_| true),
        &[],
    );
}

#[test]
fn oracle_alibaba_fixtures() {
    run_oracle(
        files_in(
            &root().join("../compat-fixtures/alibaba-keepalived"),
            |_| true,
        ),
        &[],
    );
}

#[test]
fn oracle_hand_written_cases() {
    run_oracle(
        files_in(&root().join("tests/oracle-cases"), |n| n.ends_with(".conf")),
        &[],
    );
}

#[test]
fn oracle_missing_includes_with_all_config() {
    let dir = root().join("tests/oracle-cases");
    run_oracle(
        vec![
            dir.join("incp.conf"),
            dir.join("incr.conf"),
            dir.join("good.conf"),
        ],
        &["-e"],
    );
}

#[test]
fn oracle_missing_main_file() {
    if let Some(r) = skip_reason() {
        xlvs_tests::skip(r);
        return;
    }
    let ns = NetNs::new();
    let missing = Path::new("/nonexistent/xkc.conf");
    for extra in [&[][..], &["-e"][..]] {
        let (orc, oout) = ns.check(ORACLE, missing, extra);
        let (mrc, mout) = ns.check(OURS, missing, extra);
        assert_eq!(orc, mrc, "{extra:?}");
        assert_eq!(oout.trim(), mout.trim(), "{extra:?}");
    }
}
