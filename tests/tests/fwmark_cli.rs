//! `xlvs fwmark` from the command line: bad arguments are refused naming the argument (before
//! any table is touched), and `import` refuses iptables rules it cannot represent with their
//! line number. The iptables texts come from the real iptables-save / ip6tables-save.

use std::process::{Command, Output};

use anyhow::{Context, Result, ensure};
use xlvs_tests::lab::binary;
use xlvs_tests::netns::{Netns, is_root, unique_prefix};

/// `xlvs --pin-dir <nowhere> ARGS`: argument errors come before the tables are opened.
fn xlvs(args: &[&str]) -> Result<Output> {
    Ok(Command::new(binary("xlvs")?)
        .args(["--pin-dir", "/nonexistent/xlvs-fwmark-cli"])
        .args(args)
        .output()?)
}

fn refused(args: &[&str]) -> Result<(i32, String)> {
    let out = xlvs(args)?;
    ensure!(!out.status.success(), "{args:?} was accepted");
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stderr)?,
    ))
}

#[test]
fn bad_arguments_are_refused_naming_the_argument() -> Result<()> {
    let add = |extra: &[&str]| {
        let mut a = vec!["fwmark", "add"];
        a.extend_from_slice(extra);
        refused(&a)
    };
    for (args, named, says) in [
        (&["--mark", "0", "-p", "tcp"][..], "--mark", "0 is no mark"),
        (&["--mark", "x1", "-p", "tcp"], "--mark", "is not a mark"),
        (&["--mark", "4294967296"], "--mark", "is not a mark"),
        (&["--mark", "1", "-p", "icmp"], "--proto", "tcp, udp or all"),
        (
            &["--mark", "1", "-d", "198.18.0.0/33"],
            "--dst",
            "prefix length over 32",
        ),
        (
            &["--mark", "1", "-d", "vip.example"],
            "--dst",
            "not an address",
        ),
        (
            &["--mark", "1", "-p", "tcp", "--dport", "70000"],
            "--dport",
            "not a port",
        ),
        (
            &["--mark", "1", "-p", "tcp", "--dport", "90:80"],
            "--dport",
            "empty",
        ),
        (
            &["--mark", "1", "-p", "tcp", "--dport", "80,"],
            "--dport",
            "empty port",
        ),
        (&["-p", "tcp"], "--mark", "required"),
    ] {
        let (code, err) = add(args)?;
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(named) && err.contains(says), "{args:?}: {err}");
    }
    // Combinations: checked before the tables are opened too (exit 1, `xlvs: ` prefix).
    let (code, err) = add(&["--mark", "1", "--dport", "80"])?;
    assert_eq!(
        (code, err.as_str()),
        (1, "xlvs: --dport needs -p tcp or -p udp\n")
    );
    let (code, err) = add(&["--mark", "1", "-6", "-d", "198.18.0.1"])?;
    assert_eq!(
        (code, err.trim_end()),
        (1, "xlvs: -d 198.18.0.1: an IPv4 address with -6")
    );
    Ok(())
}

/// Writes `text` to a scratch file and runs `xlvs fwmark import --dry-run --replace` on it
/// (which needs no tables): (success, stdout, stderr, file path).
fn dry_import(text: &str) -> Result<(bool, String, String, String)> {
    let path = std::env::temp_dir().join(format!("{}.save", unique_prefix("xfi")));
    std::fs::write(&path, text)?;
    let p = path.to_str().context("path")?.to_string();
    let out = xlvs(&["fwmark", "import", "--dry-run", "--replace", &p]);
    let _ = std::fs::remove_file(&path);
    let out = out?;
    Ok((
        out.status.success(),
        String::from_utf8(out.stdout)?,
        String::from_utf8(out.stderr)?,
        p,
    ))
}

/// Runs iptables (or ip6tables) with `rules` in a scratch namespace; the tool's save output.
fn saved(tool: &str, rules: &[&[&str]]) -> Result<String> {
    let ns = Netns::new(&unique_prefix("xfs"))?;
    for r in rules {
        let mut args = vec!["-t", "mangle"];
        args.extend_from_slice(r);
        let out = ns.exec(tool, &args)?;
        ensure!(
            out.status.success(),
            "{tool} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = ns.exec(&format!("{tool}-save"), &["-t", "mangle"])?;
    ensure!(out.status.success(), "{tool}-save failed");
    Ok(String::from_utf8(out.stdout)?)
}

#[test]
fn real_iptables_and_ip6tables_save_output_imports_and_refusals_name_the_line() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root (iptables in a namespace)");
        return Ok(());
    }
    let v4 = saved(
        "iptables",
        &[
            &[
                "-A",
                "PREROUTING",
                "-d",
                "198.18.100.0/24",
                "-p",
                "tcp",
                "--dport",
                "8000:8080",
                "-j",
                "MARK",
                "--set-mark",
                "0x10",
            ],
            &[
                "-A",
                "PREROUTING",
                "-d",
                "198.18.100.1",
                "-p",
                "udp",
                "-m",
                "multiport",
                "--dports",
                "53,5353",
                "-j",
                "MARK",
                "--set-xmark",
                "7/0xffffffff",
            ],
            &["-A", "PREROUTING", "-d", "198.18.100.2", "-j", "ACCEPT"],
            &["-A", "OUTPUT", "-j", "MARK", "--set-mark", "9"],
        ],
    )?;
    let v6 = saved(
        "ip6tables",
        &[&[
            "-A",
            "PREROUTING",
            "-d",
            "2001:db8:100::/64",
            "-p",
            "tcp",
            "--dport",
            "443",
            "-j",
            "MARK",
            "--set-mark",
            "6",
        ]],
    )?;
    let text = format!("{v4}{v6}");
    let (ok, out, err, file) = dry_import(&text)?;
    assert!(ok, "{err}\n{text}");
    let rules: Vec<&str> = out
        .lines()
        .map(|l| l.split('\t').next().unwrap_or(""))
        .collect();
    assert_eq!(
        rules,
        [
            "--mark 16 -p tcp -d 198.18.100.0/24 --dport 8000:8080",
            "--mark 7 -p udp -d 198.18.100.1/32 --dport 53",
            "--mark 7 -p udp -d 198.18.100.1/32 --dport 5353",
            "--mark 6 -p tcp -d 2001:db8:100::/64 --dport 443",
        ],
        "{text}"
    );
    // The OUTPUT rule is skipped with a note naming its line.
    let output_line = 1 + text
        .lines()
        .position(|l| l.starts_with("-A OUTPUT"))
        .context("OUTPUT")?;
    assert!(
        err.contains(&format!(
            "{file}:line {output_line}: skipped: MARK in OUTPUT"
        )),
        "{err}"
    );

    // A source match cannot be represented: refused with its line, nothing imported.
    let with_source = saved(
        "iptables",
        &[
            &[
                "-A",
                "PREROUTING",
                "-d",
                "198.18.100.1",
                "-p",
                "tcp",
                "--dport",
                "80",
                "-j",
                "MARK",
                "--set-mark",
                "1",
            ],
            &[
                "-A",
                "PREROUTING",
                "-s",
                "198.18.1.0/24",
                "-d",
                "198.18.100.1",
                "-j",
                "MARK",
                "--set-mark",
                "2",
            ],
        ],
    )?;
    let line = 1 + with_source
        .lines()
        .position(|l| l.contains("-s 198.18.1.0/24"))
        .context("-s")?;
    let (ok, out, err, file) = dry_import(&with_source)?;
    assert!(!ok && out.is_empty(), "{out}");
    assert!(
        err.starts_with(&format!(
            "xlvs: {file}:line {line}: `-s` cannot be represented"
        )),
        "{err}"
    );

    // Two rules marking the same packets differently (iptables: the last wins) are refused.
    let clash = saved(
        "iptables",
        &[
            &[
                "-A",
                "PREROUTING",
                "-d",
                "198.18.100.0/24",
                "-p",
                "tcp",
                "-j",
                "MARK",
                "--set-mark",
                "1",
            ],
            &[
                "-A",
                "PREROUTING",
                "-d",
                "198.18.100.1",
                "-p",
                "tcp",
                "--dport",
                "443",
                "-j",
                "MARK",
                "--set-mark",
                "2",
            ],
        ],
    )?;
    let line = 1 + clash
        .lines()
        .position(|l| l.contains("--dport 443"))
        .context("443")?;
    let (ok, _, err, file) = dry_import(&clash)?;
    assert!(!ok);
    assert!(err.contains(&format!("{file}:line {line}: --mark 2 -p tcp -d 198.18.100.1/32 --dport 443 overlaps `--mark 1 -p tcp -d 198.18.100.0/24`")), "{err}");
    assert!(err.trim_end().ends_with("nothing imported"), "{err}");
    Ok(())
}

#[test]
fn real_nft_list_ruleset_output_imports_its_mark_rules() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root (nft in a namespace)");
        return Ok(());
    }
    let ns = Netns::new(&unique_prefix("xfn"))?;
    let ruleset = "table inet lvs {
  chain pre {
    type filter hook prerouting priority mangle; policy accept;
    ip daddr 198.18.100.1 tcp dport { 80, 443 } counter meta mark set 0x1 comment \"web\"
    ip6 daddr 2001:db8:100::/64 udp dport 5000-5010 meta mark set 7
    ip daddr 198.18.100.9 accept
  }
  chain out {
    type route hook output priority mangle; policy accept;
    meta mark set 9
  }
}
";
    let file = std::env::temp_dir().join(format!("{}.nft", unique_prefix("xfn")));
    std::fs::write(&file, ruleset)?;
    let loaded = ns.exec("nft", &["-f", file.to_str().context("path")?]);
    let _ = std::fs::remove_file(&file);
    ensure!(loaded?.status.success(), "nft -f failed");
    let listed = String::from_utf8(ns.exec("nft", &["list", "ruleset"])?.stdout)?;
    let (ok, out, err, file) = dry_import(&listed)?;
    assert!(ok, "{err}\n{listed}");
    let rules: Vec<&str> = out
        .lines()
        .map(|l| l.split('\t').next().unwrap_or(""))
        .collect();
    assert_eq!(
        rules,
        [
            "--mark 1 -p tcp -d 198.18.100.1/32 --dport 80",
            "--mark 1 -p tcp -d 198.18.100.1/32 --dport 443",
            "--mark 7 -p udp -d 2001:db8:100::/64 --dport 5000:5010",
        ],
        "{listed}"
    );
    let out_line = 1 + listed
        .lines()
        .position(|l| l.trim() == "meta mark set 0x00000009")
        .context("out")?;
    assert!(
        err.contains(&format!("{file}:line {out_line}: skipped")),
        "{err}"
    );

    // A source match in a mark rule: refused with its line.
    let out = ns.exec(
        "nft",
        &[
            "add",
            "rule",
            "inet",
            "lvs",
            "pre",
            "ip",
            "saddr",
            "198.18.1.0/24",
            "meta",
            "mark",
            "set",
            "2",
        ],
    )?;
    ensure!(out.status.success(), "nft add rule failed");
    let listed = String::from_utf8(ns.exec("nft", &["list", "ruleset"])?.stdout)?;
    let line = 1 + listed
        .lines()
        .position(|l| l.contains("ip saddr"))
        .context("saddr")?;
    let (ok, _, err, file) = dry_import(&listed)?;
    assert!(!ok);
    assert!(
        err.starts_with(&format!(
            "xlvs: {file}:line {line}: `ip saddr` cannot be represented"
        )),
        "{err}"
    );
    Ok(())
}
