//! The sample configurations of keepalived (compat-fixtures/keepalived) that define virtual
//! servers start under our daemon and `ipvsadm -Ln` shows what keepalived 2.2.7 on a kernel with
//! IPVS showed right after its start (tests/golden/keepalived-fixtures.ipvs-1.31.out, recorded
//! with tests/golden/keepalived-fixtures.sh on the ipvs-oracle guest).
//!
//! The daemon runs in an empty namespace (loopback only): nothing it might try to reach exists.
//! Needs root.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use xlvs_tests::keepalived::{Keepalived, Workdir, wait_listing_on};
use xlvs_tests::lab::Pins;
use xlvs_tests::netns::{Netns, is_root, unique_prefix};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Fixture name → expected listing.
fn golden() -> Result<Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(repo().join("tests/golden/keepalived-fixtures.ipvs-1.31.out"))?;
    Ok(text
        .split("=== ")
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (name, body) = s.split_once('\n').unwrap_or((s, ""));
            (name.to_string(), body.to_string())
        })
        .collect())
}

/// Our header prints our connection-table size; IPVS prints its hash-table size.
fn normalise(listing: &str) -> String {
    let mut lines: Vec<String> = listing.lines().map(str::to_string).collect();
    if let Some(first) = lines.first_mut()
        && let Some(i) = first.find("(size=")
    {
        first.truncate(i);
    }
    lines.join("\n")
}

#[test]
fn fixtures_start_as_keepalived_2_2_7_does() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let cases = golden()?;
    assert!(cases.len() >= 15, "golden file lost its cases");
    let mut failures = Vec::new();
    for (name, want) in &cases {
        let prefix = unique_prefix("xf");
        let ns = Netns::new(&format!("{prefix}n"))?;
        let pins = Pins::scratch(&prefix, 4096);
        let dir = Workdir::new(&prefix)?;
        let conf = repo().join("compat-fixtures/keepalived").join(name);
        let mut ka = Keepalived::start_in(&ns, &pins.0, &dir, &conf)?;
        let services = want.lines().filter(|l| !l.starts_with(' ')).count() - 2;
        // Fresh pins: the daemon first loads the XDP program (tens of seconds under load).
        let got = wait_listing_on(&pins.0, Duration::from_secs(60), |t| {
            t.lines().filter(|l| !l.starts_with(' ')).count() - 2 >= services
        })
        .with_context(|| format!("{name}: {}", ka.log_text()))?;
        if normalise(&got) != normalise(want) {
            failures.push(format!(
                "{name}:\n--- keepalived 2.2.7 + IPVS\n{want}--- ours\n{got}--- log\n{}",
                ka.log_text()
            ));
        }
        ka.signal(libc::SIGTERM)?;
        ka.wait(Duration::from_secs(10))?;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}
