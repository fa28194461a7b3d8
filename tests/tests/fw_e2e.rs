//! `xlvs fw` end to end in network namespaces: real TCP from the client to a service of the
//! director itself and to a VIP, through rules added, deleted, saved and restored with the
//! `xlvs` binary; an established connection outlives a rule that denies its client; a bad
//! rules file changes nothing; a per-source connection budget on real connections, listed,
//! exported by `xlvs metrics`, saved and restored. Needs root.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use xlvs_tests::lab::{CLIENT, Lab, VIP, binary};
use xlvs_tests::netns::is_root;
use xlvs_tests::servers;

/// A rule for the director's own service (port 2222), as added and as deleted.
const DENY_2222: &[&str] = &["deny", "198.18.1.0/24", "-p", "tcp", "--dport", "2222"];

/// The director's own address on the client's link.
const DIRECTOR: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);

fn xlvs(lab: &Lab, args: &[&str]) -> Result<String> {
    lab.xlvs_ok(args)
}

/// A connection from the client to `dst:port` that read its greeting (the server's name).
fn connect(lab: &Lab, dst: Ipv4Addr, port: u16) -> Result<(TcpStream, String)> {
    lab.client
        .run_in(move || -> Result<(TcpStream, String)> {
            let addr = SocketAddr::V4(SocketAddrV4::new(dst, port));
            let s = TcpStream::connect_timeout(&addr, Duration::from_millis(1500))
                .with_context(|| format!("connect {addr}"))?;
            s.set_read_timeout(Some(Duration::from_secs(3)))?;
            let mut greeting = String::new();
            BufReader::new(s.try_clone()?).read_line(&mut greeting)?;
            Ok((s, greeting.trim().to_string()))
        })
        .join()
        .map_err(|_| anyhow::anyhow!("client panicked"))??
}

/// One line echoed on an open connection.
fn echo(s: &mut TcpStream, name: &str) -> Result<()> {
    writeln!(s, "ping")?;
    let mut line = String::new();
    BufReader::new(s.try_clone()?).read_line(&mut line)?;
    ensure!(line.trim() == format!("{name} ping"), "echo: {line:?}");
    Ok(())
}

fn reaches(lab: &Lab, dst: Ipv4Addr, port: u16) -> bool {
    connect(lab, dst, port).is_ok()
}

#[test]
fn rules_policy_and_restore_on_real_traffic() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("network namespaces need root");
        return Ok(());
    }
    let lab = Lab::new(1)?;
    let (_dp, _reals) = lab.tcp_nat_service(80)?;
    let _own = servers::tcp(
        &lab.director,
        SocketAddr::new(IpAddr::V4(DIRECTOR), 2222),
        "director",
    )?;
    ensure!(
        reaches(&lab, DIRECTOR, 2222),
        "no rules: the director answers"
    );

    // An established connection through the VIP, then a rule denying its client.
    let (mut open, name) = connect(&lab, VIP, 80)?;
    echo(&mut open, &name)?;
    xlvs(&lab, &[&["fw"][..], DENY_2222].concat())?;
    ensure!(!reaches(&lab, DIRECTOR, 2222), "denied port still answers");
    ensure!(reaches(&lab, VIP, 80), "a rule for 2222 cut port 80");
    xlvs(&lab, &["fw", "deny", &CLIENT.to_string()])?;
    echo(&mut open, &name).context("the established connection was cut")?;
    ensure!(
        !reaches(&lab, VIP, 80),
        "a new connection from a denied client"
    );
    let listed = xlvs(&lab, &["fw", "list"])?;
    ensure!(
        listed.contains("deny 198.18.1.2\t# ") && listed.starts_with("policy accept\n"),
        "{listed}"
    );
    xlvs(&lab, &["fw", "del", "deny", &CLIENT.to_string()])?;
    xlvs(&lab, &[&["fw", "del"][..], DENY_2222].concat())?;
    ensure!(reaches(&lab, DIRECTOR, 2222), "rule deleted: answers again");

    // Default drop: this host's services need an allow rule; the VIP's do not.
    xlvs(&lab, &["fw", "policy", "drop"])?;
    ensure!(!reaches(&lab, DIRECTOR, 2222), "policy drop");
    ensure!(reaches(&lab, VIP, 80), "VIP traffic under policy drop");
    xlvs(
        &lab,
        &[
            "fw",
            "allow",
            "198.18.1.2-198.18.1.4",
            "-p",
            "tcp",
            "--dport",
            "2000:3000",
        ],
    )?;
    ensure!(reaches(&lab, DIRECTOR, 2222), "allowed by range");

    // Save, flush, restore: the same set runs again.
    let dir = tempdir(&lab)?;
    let file = format!("{dir}/rules.json");
    xlvs(&lab, &["fw", "save", &file])?;
    xlvs(&lab, &["fw", "flush"])?;
    ensure!(!reaches(&lab, DIRECTOR, 2222), "flushed: policy drop stays");
    let out = xlvs(&lab, &["fw", "restore", &file])?;
    ensure!(
        out.starts_with("restored 1 rules (2 prefixes), policy drop"),
        "{out}"
    );
    ensure!(reaches(&lab, DIRECTOR, 2222), "restored allow");

    // A file of another version, or cut short: refused by name, nothing changes.
    let before = xlvs(&lab, &["fw", "list", "--json"])?;
    let text = std::fs::read_to_string(&file)?;
    for (bad, says) in [
        (
            text.replace("\"version\":1", "\"version\":9"),
            "format version 9",
        ),
        (text[..text.len() / 2].to_string(), "EOF while parsing"),
        (
            text.replace("198.18.1.2-198.18.1.4", "198.18.1.4-198.18.1.2"),
            "rule 1: range `198.18.1.4-198.18.1.2` ends before it starts",
        ),
    ] {
        std::fs::write(&file, bad)?;
        // (Pins are not per namespace: a failing command runs from here, where its exit
        // status is ours to read.)
        let out = std::process::Command::new(binary("xlvs")?)
            .args(["--pin-dir", lab.opts.pin_dir.to_str().context("path")?])
            .args(["fw", "restore", &file])
            .output()?;
        let err = String::from_utf8_lossy(&out.stderr);
        ensure!(!out.status.success(), "accepted a bad file");
        ensure!(
            err.contains(&file) && err.contains(says) && err.contains("unchanged"),
            "{err}"
        );
        let now = xlvs(&lab, &["fw", "list", "--json"])?;
        ensure!(
            strip_counters(&now) == strip_counters(&before),
            "{now} / {before}"
        );
    }
    ensure!(reaches(&lab, DIRECTOR, 2222), "still allowed");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn a_connection_budget_on_real_traffic_listed_saved_and_exported() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("network namespaces need root");
        return Ok(());
    }
    let lab = Lab::new(1)?;
    let (_dp, _reals) = lab.tcp_nat_service(80)?;
    let vip = VIP.to_string();
    // Two connections per minute at most, both at once: the third is dropped (and so are
    // its SYN's retransmissions).
    xlvs(
        &lab,
        &["fw", "conn-limit", "--vip", &vip, "1/m", "--burst", "2"],
    )?;
    for i in 0..2 {
        let (mut s, name) = connect(&lab, VIP, 80).with_context(|| format!("connection {i}"))?;
        echo(&mut s, &name)?;
    }
    ensure!(
        !reaches(&lab, VIP, 80),
        "a third connection within the minute"
    );
    let listed = xlvs(&lab, &["fw", "list"])?;
    let line = listed
        .lines()
        .find(|l| l.starts_with(&format!("conn-limit --vip {vip} 1/m --burst 2\t# ")))
        .with_context(|| listed.clone())?;
    let dropped: u64 = line
        .rsplit("# ")
        .next()
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .with_context(|| line.to_string())?;
    ensure!(dropped >= 1, "{listed}");
    let json: serde_json::Value = serde_json::from_str(&xlvs(&lab, &["fw", "list", "--json"])?)?;
    ensure!(
        json["conn_limits"][0]["vip"] == vip.as_str()
            && json["conn_limits"][0]["dropped"].as_u64() == Some(dropped)
            && json["counters"]["fw_conn_limited"].as_u64() >= Some(dropped),
        "{json}"
    );

    // The exporter shows the budget's drops.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut metrics = std::process::Command::new(binary("xlvs")?)
        .args(["--pin-dir", lab.opts.pin_dir.to_str().context("path")?])
        .args(["metrics", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let want = format!("xlvs_fw_limit_dropped_total{{limit=\"conn\",vip=\"{vip}\"}} ");
    let mut scraped = String::new();
    for _ in 0..50 {
        let out = std::process::Command::new("curl")
            .args(["-s", &format!("http://127.0.0.1:{port}/metrics")])
            .output()?;
        scraped = String::from_utf8_lossy(&out.stdout).into_owned();
        if !scraped.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = metrics.kill();
    let _ = metrics.wait();
    let sample = scraped
        .lines()
        .find_map(|l| l.strip_prefix(&want))
        .with_context(|| format!("no {want} in:\n{scraped}"))?;
    ensure!(sample.trim().parse::<u64>()? >= dropped, "{sample}");

    // Saved with the rules; off lets the client in; restored, the budget is back (its bucket
    // remembered: still empty).
    let dir = tempdir(&lab)?;
    let file = format!("{dir}/rules.json");
    xlvs(&lab, &["fw", "save", &file])?;
    ensure!(
        std::fs::read_to_string(&file)?.contains(&format!(
            r#""conn_limits":[{{"vip":"{vip}","rate":"1/m","burst":2}}]"#
        )),
        "saved without the budget"
    );
    xlvs(&lab, &["fw", "conn-limit", "--vip", &vip, "off"])?;
    ensure!(reaches(&lab, VIP, 80), "budget off");
    xlvs(&lab, &["fw", "restore", &file])?;
    ensure!(!reaches(&lab, VIP, 80), "restored budget");

    // A bad rate is named and changes nothing.
    let out = std::process::Command::new(binary("xlvs")?)
        .args(["--pin-dir", lab.opts.pin_dir.to_str().context("path")?])
        .args(["fw", "conn-limit", "--vip", &vip, "10/h"])
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("rate `10/h`: `h` is no period"),
        "{err}"
    );
    ensure!(
        xlvs(&lab, &["fw", "list"])?.contains("1/m --burst 2"),
        "changed by a refused command"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The listing without packet counts (they grow with the probes).
fn strip_counters(json: &str) -> String {
    json.lines()
        .filter(|l| !l.contains("\"packets\"") && !l.contains("\"fw_"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn tempdir(lab: &Lab) -> Result<String> {
    let dir = std::env::temp_dir().join(format!("{}-fw", lab.prefix));
    std::fs::create_dir_all(&dir)?;
    Ok(dir.display().to_string())
}
