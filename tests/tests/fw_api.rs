//! The firewall's HTTP API on `xlvs metrics`, driven with curl inside the director's
//! namespace (its own localhost, its own pin directory): GET answers what `xlvs fw list --json`
//! prints after CLI changes; POST, DELETE and PUT change what the CLI lists; a bad rule, a bad
//! field or a rule set refused part-way is 400 naming it and changes nothing; a wrong method is
//! 405; CLI and API writers running at once lose nothing. Needs root.

use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use xlvs_tests::lab::{Lab, binary};
use xlvs_tests::netns::is_root;

/// Listens on the director namespace's own localhost (a fresh namespace: the port is free).
const BASE: &str = "http://127.0.0.1:9587";

/// The metrics server, killed when the test ends (also on failure).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An HTTP answer: status, body, headers.
struct Answer {
    status: u16,
    body: String,
    headers: String,
}

/// One request with curl in the director's namespace. `body`: `@FILE` or the text itself.
fn http(lab: &Lab, method: &str, path: &str, body: Option<&str>) -> Result<Answer> {
    let url = format!("{BASE}{path}");
    let mut cmd = lab.director.command("curl");
    cmd.args(["-s", "-S", "-D", "-", "-X", method, "--max-time", "20"]);
    if let Some(b) = body {
        cmd.args(["-H", "content-type: application/json", "--data-binary", b]);
    }
    cmd.args(["-w", "\n%{http_code}", &url]);
    let out = cmd.output().context("curl")?;
    ensure!(
        out.status.success(),
        "curl {method} {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout)?;
    let (rest, code) = text.rsplit_once('\n').context("no status")?;
    let (headers, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
    Ok(Answer {
        status: code.trim().parse()?,
        body: body.to_string(),
        headers: headers.to_ascii_lowercase(),
    })
}

fn list_json(lab: &Lab) -> Result<Value> {
    Ok(serde_json::from_str(
        &lab.xlvs_ok(&["fw", "list", "--json"])?,
    )?)
}

/// The rules as listed (`deny 198.18.5.0/24 -p tcp --dport 2222`), in order.
fn rules(lab: &Lab) -> Result<Vec<String>> {
    Ok(list_json(lab)?["rules"]
        .as_array()
        .context("rules")?
        .iter()
        .filter_map(|r| r["rule"].as_str().map(String::from))
        .collect())
}

fn start(lab: &Lab) -> Result<Server> {
    let child = lab
        .director
        .command(binary("xlvs")?.to_str().context("path")?)
        .args(["--pin-dir", lab.opts.pin_dir.to_str().context("path")?])
        .args(["metrics", "--listen", "127.0.0.1:9587"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let server = Server(child);
    for _ in 0..100 {
        if http(lab, "GET", "/fw", None).is_ok_and(|a| a.status == 200) {
            return Ok(server);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    anyhow::bail!("the metrics server did not answer GET /fw")
}

/// Asserts a 400 whose one-line body contains `needle`, and that the rules did not change.
fn refused(lab: &Lab, a: &Answer, needle: &str, before: &Value) -> Result<()> {
    ensure!(a.status == 400, "status {}: {}", a.status, a.body);
    ensure!(
        a.body.trim_end().lines().count() == 1 && a.body.contains(needle),
        "error without `{needle}`: {}",
        a.body
    );
    ensure!(
        a.body.contains("the rules are unchanged"),
        "error does not say the rules are unchanged: {}",
        a.body
    );
    let after = list_json(lab)?;
    ensure!(
        after["rules"] == before["rules"]
            && after["policy"] == before["policy"]
            && after["icmp_limit"] == before["icmp_limit"],
        "changed by a refused request ({needle}): {after}"
    );
    Ok(())
}

#[test]
fn get_post_delete_put_match_the_cli_and_bad_requests_change_nothing() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("network namespaces need root");
        return Ok(());
    }
    let lab = Lab::unattached(0)?;
    lab.xlvs_ok(&[
        "fw",
        "deny",
        "198.18.5.0/24",
        "-p",
        "tcp",
        "--dport",
        "2222",
    ])?;
    lab.xlvs_ok(&["fw", "icmp-limit", "10/s", "--burst", "20"])?;
    let _server = start(&lab)?;

    // GET: the CLI's listing.
    let got = http(&lab, "GET", "/fw", None)?;
    ensure!(got.headers.contains("content-type: application/json"));
    let got: Value = serde_json::from_str(&got.body)?;
    ensure!(got == list_json(&lab)?, "GET /fw: {got}");
    ensure!(
        got["rules"][0]["rule"] == "deny 198.18.5.0/24 -p tcp --dport 2222"
            && got["icmp_limit"]["rate"] == "10/s",
        "{got}"
    );

    // POST: added, 201 with the rule as listed.
    let udp =
        r#"{"action": "allow", "src": "198.18.6.1-198.18.6.9", "proto": "udp", "dport": "53"}"#;
    let a = http(&lab, "POST", "/fw/rules", Some(udp))?;
    ensure!(a.status == 201, "POST: {} {}", a.status, a.body);
    let added: Value = serde_json::from_str(&a.body)?;
    ensure!(
        added["rule"] == "allow 198.18.6.1-198.18.6.9 -p udp --dport 53" && added["id"].is_u64(),
        "{added}"
    );
    ensure!(
        rules(&lab)?
            == [
                "deny 198.18.5.0/24 -p tcp --dport 2222",
                "allow 198.18.6.1-198.18.6.9 -p udp --dport 53"
            ],
        "after POST"
    );

    // Bad requests: 400 naming the rule or field, nothing changed.
    let before = list_json(&lab)?;
    for (body, needle) in [
        (udp, "exists already"),
        (
            r#"{"action": "deny", "src": "198.18.7.0/33"}"#,
            "198.18.7.0/33",
        ),
        (
            r#"{"action": "deny", "src": "198.18.7.0/24", "proto": "tcp", "dport": "99999"}"#,
            "99999",
        ),
        (
            r#"{"action": "deny", "src": "198.18.7.0/24", "port": "80"}"#,
            "unknown field `port`",
        ),
        (r#"{"action": "drop", "src": "198.18.7.0/24"}"#, "`drop`"),
        (r#"{"action": "deny", "src": "198.18.7.0/24""#, "not a rule"),
        (
            r#"{"action": "deny", "src": "198.18.6.1-198.18.6.9", "proto": "udp", "dport": "53"}"#,
            "contradicts",
        ),
    ] {
        let a = http(&lab, "POST", "/fw/rules", Some(body))?;
        refused(&lab, &a, needle, &before).with_context(|| body.to_string())?;
    }
    let a = http(
        &lab,
        "DELETE",
        "/fw/rules",
        Some(r#"{"action": "deny", "src": "198.18.99.0/24"}"#),
    )?;
    refused(&lab, &a, "no rule `deny 198.18.99.0/24`", &before)?;

    // Wrong methods: 405 with the allowed ones.
    for (method, path, allow) in [
        ("PATCH", "/fw", "allow: get, put"),
        ("POST", "/fw", "allow: get, put"),
        ("GET", "/fw/rules", "allow: post, delete"),
    ] {
        let a = http(&lab, method, path, None)?;
        ensure!(
            a.status == 405 && a.headers.contains(allow),
            "{method} {path}: {} {}",
            a.status,
            a.headers
        );
    }

    // DELETE: the CLI's rule, given as a rule entry.
    let a = http(
        &lab,
        "DELETE",
        "/fw/rules",
        Some(r#"{"action": "deny", "src": "198.18.5.0/24", "proto": "tcp", "dport": "2222"}"#),
    )?;
    ensure!(a.status == 204, "DELETE: {} {}", a.status, a.body);
    ensure!(
        rules(&lab)? == ["allow 198.18.6.1-198.18.6.9 -p udp --dport 53"],
        "after DELETE"
    );

    // PUT: a whole file, as `restore` takes it.
    let dir = std::env::temp_dir().join(format!("{}-fwapi", lab.prefix));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("set.json");
    let set = r#"{"format": "xlvs-fw", "version": 1, "policy": "drop",
        "rules": [{"action": "allow", "src": "198.18.6.1-198.18.6.9", "proto": "udp", "dport": "53"},
                  {"action": "allow", "src": "198.18.1.0/24", "proto": "tcp", "dport": "22"},
                  {"action": "deny", "src": "2001:db8:7::/48", "vip": "2001:db8::1"}],
        "conn_limits": [{"vip": "198.18.100.1", "rate": "100/s", "burst": 200}]}"#;
    std::fs::write(&file, set)?;
    let a = http(&lab, "PUT", "/fw", Some(&format!("@{}", file.display())))?;
    ensure!(a.status == 200, "PUT: {} {}", a.status, a.body);
    let listed = list_json(&lab)?;
    ensure!(
        listed["policy"] == "drop"
            && listed["icmp_limit"].is_null()
            && listed["conn_limits"][0]["rate"] == "100/s"
            && rules(&lab)?
                == [
                    "allow 198.18.6.1-198.18.6.9 -p udp --dport 53",
                    "allow 198.18.1.0/24 -p tcp --dport 22",
                    "deny 2001:db8:7::/48 --vip 2001:db8::1"
                ],
        "after PUT: {listed}"
    );
    // The rule that was running kept its id (and counter).
    ensure!(listed["rules"][0]["id"] == added["id"], "{listed}");

    // PUTs refused part-way (a bad rule after good ones, a contradiction found compiling, a
    // file of another version or cut short): 400 naming it, the running set unchanged.
    let before = list_json(&lab)?;
    let good_then = |last: &str| {
        format!(
            r#"{{"format": "xlvs-fw", "version": 1, "policy": "accept",
            "rules": [{{"action": "deny", "src": "198.18.20.0/24"}},
                      {{"action": "deny", "src": "198.18.21.0/24"}},
                      {last}]}}"#
        )
    };
    for (body, needle) in [
        (
            good_then(r#"{"action": "deny", "src": "198.18.22.9-198.18.22.1"}"#),
            "request body: rule 3: range `198.18.22.9-198.18.22.1` ends before it starts",
        ),
        (
            good_then(r#"{"action": "allow", "src": "198.18.20.0-198.18.20.255"}"#),
            "contradicts",
        ),
        (
            set.replace("\"version\": 1", "\"version\": 2"),
            "format version 2 is not supported",
        ),
        (set[..set.len() - 30].to_string(), "not a rule set"),
    ] {
        std::fs::write(&file, &body)?;
        let a = http(&lab, "PUT", "/fw", Some(&format!("@{}", file.display())))?;
        refused(&lab, &a, needle, &before)?;
    }
    let _ = std::fs::remove_dir_all(&dir);

    // GET after CLI changes again.
    lab.xlvs_ok(&["fw", "policy", "accept"])?;
    let got: Value = serde_json::from_str(&http(&lab, "GET", "/fw", None)?.body)?;
    ensure!(
        got["policy"] == "accept" && got == list_json(&lab)?,
        "{got}"
    );
    Ok(())
}

#[test]
fn cli_and_api_writers_at_once_lose_nothing() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("network namespaces need root");
        return Ok(());
    }
    let lab = std::sync::Arc::new(Lab::unattached(0)?);
    let _server = start(&lab)?;
    const N: usize = 8;
    let cli = {
        let lab = lab.clone();
        std::thread::spawn(move || -> Result<()> {
            for i in 0..N {
                lab.xlvs_ok(&["fw", "deny", &format!("198.18.30.{i}")])?;
            }
            Ok(())
        })
    };
    for i in 0..N {
        let body = format!(r#"{{"action": "deny", "src": "198.18.31.{i}"}}"#);
        let a = http(&lab, "POST", "/fw/rules", Some(&body))?;
        ensure!(a.status == 201, "POST {i}: {} {}", a.status, a.body);
    }
    cli.join()
        .map_err(|_| anyhow::anyhow!("CLI writer panicked"))??;
    let mut listed = rules(&lab)?;
    listed.sort();
    let mut want: Vec<String> = (0..N)
        .flat_map(|i| [format!("deny 198.18.30.{i}"), format!("deny 198.18.31.{i}")])
        .collect();
    want.sort();
    ensure!(listed == want, "{listed:?}");
    // Each rule has an id of its own.
    let ids: std::collections::BTreeSet<u64> = list_json(&lab)?["rules"]
        .as_array()
        .context("rules")?
        .iter()
        .filter_map(|r| r["id"].as_u64())
        .collect();
    ensure!(ids.len() == 2 * N, "{ids:?}");
    Ok(())
}
