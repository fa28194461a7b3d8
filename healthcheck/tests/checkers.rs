//! Every checker type against real backends in network namespaces: a real
//! is marked down when its backend fails and up when it recovers, within
//! keepalived's bounds (delay_loop + retry × delay_before_retry, plus the
//! probe timeouts and some slack).

mod common;

use common::*;

/// delay_loop 1, retry 2, delay_before_retry 0.5 for these tests.
const LOOP: f64 = 1.0;
const DBR: f64 = 0.5;
const RETRY: f64 = 2.0;
/// Scheduling/process slack on a 2-CPU machine shared with builds.
const SLACK: f64 = 2.5;

fn vs(body: &str) -> String {
    format!(
        "virtual_server 198.18.60.100 80 {{\n delay_loop {LOOP}\n lb_algo rr\n lb_kind NAT\n protocol TCP\n retry {RETRY}\n delay_before_retry {DBR}\n{body}\n}}\n"
    )
}

#[test]
fn tcp_check_down_after_retries_up_on_first_success_and_alpha() {
    let Some(bed) = bed("hct") else { return };
    let www = bed.path("www");
    std::fs::create_dir_all(&www).unwrap();
    let server = bed.http_server(8080, &www);
    let notes = bed.path("notify.log");
    let notify = bed.script(
        "notify.sh",
        &format!("#!/bin/sh\necho \"$1\" >> {}\n", notes.display()),
    );
    let conf = vs(&format!(
        "real_server {} 8080 {{ weight 3\n notify_up \"{n} up\"\n notify_down \"{n} down\"\n TCP_CHECK {{ connect_timeout 1 }} }}\n\
         real_server {} 8080 {{ alpha\n TCP_CHECK {{ connect_timeout 1 }} }}\n\
         real_server {} 8080 {{ }}",
        RS[0],
        RS[1],
        RS[2],
        n = notify.display()
    ));
    let c = bed.checker(&conf);
    c.expect(
        0,
        &["INIT", "[198.18.60.2]:8080", "UP", "weight=3"],
        secs(5.0),
    );
    // alpha: starts down, up on its first successful check.
    c.expect(0, &["INIT", "[198.18.60.3]:8080", "DOWN"], secs(5.0));
    // A real without checkers is always up.
    c.expect(
        0,
        &["INIT", "[198.18.60.4]:8080", "UP", "checkers=0"],
        secs(5.0),
    );
    c.expect(0, &["UP", "[198.18.60.3]:8080"], secs(LOOP + SLACK));

    // Let the first check of .2 run (it starts within `warmup` = delay_loop):
    // before it, one failure would be enough (keepalived's initial state).
    std::thread::sleep(secs(LOOP + 0.3));
    let m = c.mark();
    drop(server);
    let t0 = std::time::Instant::now();
    let down = c.expect(
        m,
        &["DOWN", "[198.18.60.2]:8080"],
        secs(LOOP + RETRY * DBR + SLACK),
    );
    let took = down - t0;
    // Not before `retry` retries spaced by delay_before_retry.
    assert!(took >= secs(RETRY * DBR - 0.1), "down too early: {took:?}");
    assert!(
        c.since(m)
            .iter()
            .any(|l| l.contains("connection to [198.18.60.2]:tcp:8080"))
    );

    let m = c.mark();
    let t1 = std::time::Instant::now();
    let _server = bed.http_server(8080, &www);
    let up = c.expect(
        m,
        &["UP", "[198.18.60.2]:8080", "weight=3"],
        secs(LOOP + SLACK),
    );
    assert!(up - t1 <= secs(LOOP + SLACK));
    eprintln!(
        "TCP_CHECK (delay_loop {LOOP}, retry {RETRY}, delay_before_retry {DBR}): down {took:?} after the backend died, up {:?} after it came back",
        up - t1
    );
    // notify_down then notify_up ran, once each, in order.
    std::thread::sleep(secs(0.5));
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "down\nup\n");
}

#[test]
fn http_get_digest_status_regex() {
    let Some(bed) = bed("hch") else { return };
    let www = bed.path("www");
    std::fs::create_dir_all(&www).unwrap();
    let good = "hello healthy\n";
    std::fs::write(www.join("ok.html"), good).unwrap();
    let md5 = md5_hex(good.as_bytes());
    let _server = bed.http_server(8080, &www);
    let conf = vs(&format!(
        "real_server {a} 8080 {{ HTTP_GET {{ url {{ path /ok.html\n digest {md5} }} connect_timeout 1 }} }}\n\
         real_server {b} 8080 {{ HTTP_GET {{ url {{ path /missing\n status_code 404 }} url {{ path /ok.html\n status_code 200-299 }} connect_timeout 1 }} }}\n\
         real_server {c} 8080 {{ HTTP_GET {{ url {{ path /ok.html\n regex \"heal+thy\" }} connect_timeout 1 }} }}\n\
         real_server {d} 8080 {{ HTTP_GET {{ url {{ path /ok.html\n regex \"sick\"\n regex_no_match }} connect_timeout 1 }} }}\n\
         real_server {e} 8080 {{ HTTP_GET {{ url {{ path /ok.html\n status_code 500 }} connect_timeout 1 }} }}",
        a = RS[0],
        b = RS[1],
        c = RS[2],
        d = RS[3],
        e = RS[4]
    ));
    let c = bed.checker(&conf);
    // Wrong status code: down at its first check (one failure is enough initially).
    c.expect(
        0,
        &["DOWN", "[198.18.60.6]:8080", "status code error (200)"],
        secs(LOOP + SLACK),
    );
    // The others pass and stay up for two rounds (two urls: 2 × delay_loop).
    std::thread::sleep(secs(2.0 * LOOP + 0.5));
    let out = c.since(0);
    for r in &RS[..4] {
        assert!(
            !out.iter()
                .any(|l| l.starts_with("DOWN") && l.contains(&format!("[{r}]:8080"))),
            "{r} went down:\n{}",
            out.join("\n")
        );
    }

    // The body changes: digest and regex fail, status-only checks pass.
    let m = c.mark();
    std::fs::write(www.join("ok.html"), "hello sick\n").unwrap();
    let bound = secs(LOOP + RETRY * DBR + SLACK);
    c.expect(
        m,
        &["DOWN", "[198.18.60.2]:8080", "MD5 digest error"],
        bound,
    );
    c.expect(
        m,
        &["DOWN", "[198.18.60.4]:8080", "Regex match failed"],
        bound,
    );
    c.expect(
        m,
        &["DOWN", "[198.18.60.5]:8080", "Regex match failed"],
        bound,
    );
    std::thread::sleep(secs(1.0));
    assert!(
        !c.since(m).iter().any(|l| l.contains("[198.18.60.3]:8080")),
        "status-only real changed"
    );

    // Restored: up again (after the failed URL passes).
    let m = c.mark();
    std::fs::write(www.join("ok.html"), good).unwrap();
    for r in [RS[0], RS[2], RS[3]] {
        c.expect(m, &["UP", &format!("[{r}]:8080")], secs(2.0 * LOOP + SLACK));
    }
}

#[test]
fn ssl_get_without_certificate_verification() {
    let Some(bed) = bed("hcs") else { return };
    let www = bed.path("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "tls ok\n").unwrap();
    let (cert, key) = (bed.path("cert.pem"), bed.path("key.pem"));
    let st = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=selfsigned.test",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let args = |port: &str| {
        vec![
            "https".to_string(),
            "0.0.0.0".into(),
            port.into(),
            www.to_str().unwrap().into(),
            cert.to_str().unwrap().into(),
            key.to_str().unwrap().into(),
        ]
    };
    let a = args("8443");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let server = bed.backend(&a);
    bed.wait_tcp(RS[0], 8443);
    let md5 = md5_hex(b"tls ok\n");
    let conf = vs(&format!(
        "real_server {} 8443 {{ alpha\n SSL_GET {{ url {{ path /index.html\n digest {md5} }} connect_timeout 1 }} }}",
        RS[0]
    ));
    let c = bed.checker(&conf);
    c.expect(0, &["INIT", "[198.18.60.2]:8443", "DOWN"], secs(5.0));
    c.expect(
        0,
        &["UP", "[198.18.60.2]:8443", "MD5 digest success"],
        secs(LOOP + SLACK),
    );
    let m = c.mark();
    drop(server);
    c.expect(
        m,
        &["DOWN", "[198.18.60.2]:8443"],
        secs(LOOP + RETRY * DBR + SLACK),
    );
    let m = c.mark();
    let _server = bed.backend(&a);
    c.expect(m, &["UP", "[198.18.60.2]:8443"], secs(2.0 * LOOP + SLACK));
}

#[test]
fn misc_check_exit_codes_dynamic_weight_and_timeout_kill() {
    let Some(bed) = bed("hcm") else { return };
    let state = bed.write("state", "0");
    let dynst = bed.write("dyn", "12");
    let simple = bed.script(
        "simple.sh",
        &format!("#!/bin/sh\nexit $(cat {})\n", state.display()),
    );
    let dynamic = bed.script(
        "dyn.sh",
        &format!("#!/bin/sh\nexit $(cat {})\n", dynst.display()),
    );
    let child_pid = bed.path("hang.child");
    let hang = bed.script(
        "hang.sh",
        &format!(
            "#!/bin/sh\nsleep 60 &\necho $! >> {}\nwait\n",
            child_pid.display()
        ),
    );
    // Up only when run as `nobody` (MISC_CHECK `user`).
    let whoami = bed.script("whoami.sh", "#!/bin/sh\n[ \"$(id -un)\" = nobody ]\n");
    let conf = vs(&format!(
        "real_server {} 80 {{ MISC_CHECK {{ misc_path \"{}\"\n retry 0 }} }}\n\
         real_server {} 80 {{ weight 5\n MISC_CHECK {{ misc_path \"{}\"\n misc_dynamic }} }}\n\
         real_server {} 80 {{ MISC_CHECK {{ misc_path \"{}\"\n misc_timeout 1 }} }}\n\
         real_server {} 80 {{ MISC_CHECK {{ misc_path \"/nonexistent/script.sh\" }} }}\n\
         real_server {} 80 {{ alpha\n MISC_CHECK {{ misc_path \"{}\"\n user nobody }} }}",
        RS[0],
        simple.display(),
        RS[1],
        dynamic.display(),
        RS[2],
        hang.display(),
        RS[3],
        RS[4],
        whoami.display()
    ));
    let c = bed.checker(&conf);
    // A script that is not there disables its checker (keepalived does the same).
    c.expect(
        0,
        &["WARN", "Disabling misc script /nonexistent/script.sh"],
        secs(5.0),
    );
    // `user nobody`: the alpha real comes up only if the script ran as nobody.
    c.expect(0, &["UP", "[198.18.60.6]:80"], secs(LOOP + SLACK));
    // misc_dynamic: exit 12 → weight 10.
    c.expect(
        0,
        &["WEIGHT", "[198.18.60.3]:80", "weight=10"],
        secs(LOOP + SLACK),
    );
    // Hanging script: killed at misc_timeout, counted as a failure.
    c.expect(
        0,
        &["DOWN", "[198.18.60.4]:80", "timed out"],
        secs(LOOP + 1.0 + SLACK),
    );
    std::thread::sleep(secs(0.3));
    // The first run's child (later runs may be going on now).
    let pids = std::fs::read_to_string(&child_pid).unwrap();
    let pid: i32 = pids.lines().next().unwrap().trim().parse().unwrap();
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false);
    assert!(!alive, "the script's child {pid} survived the timeout");

    // Exit 1: down (retry 0: at once); exit 0: up.
    let m = c.mark();
    bed.write("state", "1");
    c.expect(
        m,
        &["DOWN", "[198.18.60.2]:80", "exited with status 1"],
        secs(LOOP + SLACK),
    );
    let m = c.mark();
    bed.write("state", "0");
    c.expect(m, &["UP", "[198.18.60.2]:80"], secs(LOOP + SLACK));

    // misc_dynamic: 0 restores the configured weight, 1 is down.
    let m = c.mark();
    bed.write("dyn", "0");
    c.expect(
        m,
        &["WEIGHT", "[198.18.60.3]:80", "weight=5"],
        secs(LOOP + SLACK),
    );
    let m = c.mark();
    bed.write("dyn", "1");
    c.expect(
        m,
        &["DOWN", "[198.18.60.3]:80"],
        secs(LOOP + RETRY * DBR + SLACK),
    );
}

#[test]
fn udp_dns_smtp_ping_file_checks() {
    let Some(bed) = bed("hco") else { return };
    // Every refused datagram gets its port unreachable (no ICMP rate limit).
    bed.rs.sysctl("net.ipv4.icmp_ratelimit", "0").unwrap();
    let udp = bed.backend(&["udp-echo", "0.0.0.0", "5353"]);
    let dns = bed.backend(&["dns", "0.0.0.0", "53"]);
    let smtp = bed.backend(&["smtp", "0.0.0.0", "25"]);
    bed.wait_tcp(RS[0], 25);
    std::thread::sleep(secs(0.3)); // UDP servers have no readiness probe
    let tf0 = bed.write("tf0", "0");
    let tfw = bed.write("tfw", "2");
    let conf = format!(
        "track_file tf0 {{ file {}\n weight 0 }}\ntrack_file tfw {{ file {} }}\n{}",
        tf0.display(),
        tfw.display(),
        vs(&format!(
            "real_server {a} 5353 {{ UDP_CHECK {{ connect_timeout 1\n payload 6869\n require_reply 4f4b6869 }} }}\n\
             real_server {a} 53 {{ DNS_CHECK {{ connect_timeout 1\n type A\n name example.test }} }}\n\
             real_server {a} 25 {{ SMTP_CHECK {{ connect_timeout 1\n helo_name lb.test }} }}\n\
             real_server {b} 80 {{ PING_CHECK {{ connect_timeout 1 }} }}\n\
             real_server {a} 9000 {{ FILE_CHECK {{ track_file tf0 }} }}\n\
             real_server {a} 9001 {{ weight 1\n FILE_CHECK {{ track_file tfw\n weight 5 }} }}",
            a = RS[0],
            b = RS[1]
        ))
    );
    let c = bed.checker(&conf);
    // FILE_CHECK state is known at start: 1 + 2 × 5.
    c.expect(
        0,
        &["INIT", "[198.18.60.2]:9001", "UP", "weight=11"],
        secs(5.0),
    );
    c.expect(0, &["INIT", "[198.18.60.2]:9000", "UP"], secs(5.0));
    std::thread::sleep(secs(2.0 * LOOP));
    assert!(
        !c.since(0).iter().any(|l| l.starts_with("DOWN")),
        "a healthy backend went down:\n{}",
        c.since(0).join("\n")
    );

    let m = c.mark();
    drop((udp, dns, smtp));
    bed.rs
        .ip(&["addr", "del", &format!("{}/24", RS[1]), "dev", "hc1"])
        .unwrap();
    bed.write("tf0", "1");
    bed.write("tfw", "-60");
    let bound = secs(LOOP + RETRY * DBR + SLACK);
    c.expect(m, &["DOWN", "[198.18.60.2]:5353"], bound);
    c.expect(m, &["DOWN", "[198.18.60.2]:53", "DNS_CHECK"], bound);
    c.expect(m, &["DOWN", "[198.18.60.2]:25", "SMTP_CHECK"], bound);
    // PING: each attempt waits connect_timeout for the echo reply.
    c.expect(m, &["DOWN", "[198.18.60.3]:80"], bound + secs(1.0 + RETRY));
    c.expect(m, &["DOWN", "[198.18.60.2]:9000", "FAULT"], secs(1.0));
    c.expect(m, &["DOWN", "[198.18.60.2]:9001", "FAULT"], secs(1.0));

    let m = c.mark();
    let _udp = bed.backend(&["udp-echo", "0.0.0.0", "5353"]);
    let _dns = bed.backend(&["dns", "0.0.0.0", "53"]);
    let _smtp = bed.backend(&["smtp", "0.0.0.0", "25"]);
    bed.rs
        .ip(&["addr", "add", &format!("{}/24", RS[1]), "dev", "hc1"])
        .unwrap();
    bed.write("tf0", "0");
    bed.write("tfw", "3");
    let bound = secs(LOOP + SLACK + 1.0);
    c.expect(m, &["UP", "[198.18.60.2]:5353"], bound);
    c.expect(m, &["UP", "[198.18.60.2]:53"], bound);
    c.expect(m, &["UP", "[198.18.60.2]:25"], bound);
    c.expect(m, &["UP", "[198.18.60.3]:80"], bound + secs(1.0));
    c.expect(m, &["UP", "[198.18.60.2]:9000"], secs(1.0));
    c.expect(m, &["UP", "[198.18.60.2]:9001", "weight=16"], secs(1.0));
}

#[test]
fn reload_keeps_unchanged_checkers_and_survives_a_bad_file() {
    let Some(bed) = bed("hcr") else { return };
    let www = bed.path("www");
    std::fs::create_dir_all(&www).unwrap();
    let _server = bed.http_server(8080, &www);
    let base = |extra: &str| {
        vs(&format!(
            "real_server {} 8080 {{ TCP_CHECK {{ connect_timeout 1 }} }}\n\
             real_server {} 8080 {{ TCP_CHECK {{ connect_timeout 1 }} }}\n{extra}",
            RS[0], RS[1]
        ))
    };
    let c = bed.checker(&base(""));
    c.expect(0, &["INIT", "[198.18.60.2]:8080", "UP"], secs(5.0));
    std::thread::sleep(secs(LOOP + 0.5));

    // Same checkers, a comment moves every line, a new alpha real appears.
    let m = c.mark();
    bed.write(
        "keepalived.conf",
        &format!(
            "# reloaded\n\n{}",
            base(&format!(
                "real_server {} 8080 {{ alpha\n TCP_CHECK {{ connect_timeout 1 }} }}",
                RS[2]
            ))
        ),
    );
    c.signal(nix::sys::signal::Signal::SIGHUP);
    c.expect(
        m,
        &["RELOAD ok", "kept=2", "started=1", "stopped=0", "added=1"],
        secs(5.0),
    );
    c.expect(m, &["INIT", "[198.18.60.4]:8080", "DOWN"], secs(2.0));
    c.expect(m, &["UP", "[198.18.60.4]:8080"], secs(LOOP + SLACK));
    std::thread::sleep(secs(LOOP));
    assert!(
        !c.since(m)
            .iter()
            .any(|l| l.contains("[198.18.60.2]") || l.contains("[198.18.60.3]")),
        "an unchanged real flapped:\n{}",
        c.since(m).join("\n")
    );

    // An unreadable file keeps the running checks.
    let m = c.mark();
    std::fs::remove_file(&c.conf).unwrap();
    c.signal(nix::sys::signal::Signal::SIGHUP);
    c.expect(m, &["RELOAD failed"], secs(5.0));
    let m = c.mark();
    drop(_server);
    c.expect(
        m,
        &["DOWN", "[198.18.60.2]:8080"],
        secs(LOOP + RETRY * DBR + SLACK),
    );
}

fn md5_hex(b: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

/// keepalived's `SSL { certificate; key; ca }`: SSL_GET presents the client certificate, so a
/// server that requires one (openssl s_server -Verify) answers; without the block the
/// handshake fails and the real stays down.
#[test]
fn ssl_get_presents_the_ssl_block_client_certificate() {
    let Some(bed) = bed("hcc") else { return };
    let openssl = |args: &[&str]| {
        let st = std::process::Command::new("openssl")
            .args(args)
            .current_dir(bed.path(""))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "openssl {args:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=ca.test",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=client.test",
        "-keyout",
        "client.key",
        "-out",
        "client.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        "client.pem",
    ]);
    let p = |f: &str| bed.path(f).display().to_string();
    let _server = bed.in_rs(
        "openssl",
        &[
            "s_server",
            "-accept",
            "8444",
            "-cert",
            &p("ca.pem"),
            "-key",
            &p("ca.key"),
            "-CAfile",
            &p("ca.pem"),
            "-Verify",
            "1",
            "-verify_return_error",
            "-www",
            "-quiet",
        ],
    );
    bed.wait_tcp(RS[0], 8444);
    let real = format!(
        "real_server {} 8444 {{ alpha\n SSL_GET {{ url {{ path /\n status_code 200 }} connect_timeout 1 }} }}",
        RS[0]
    );
    let with = format!(
        "SSL {{\n certificate {}\n key {}\n ca {}\n}}\n{}",
        p("client.pem"),
        p("client.key"),
        p("ca.pem"),
        vs(&real)
    );
    let c = bed.checker(&with);
    c.expect(0, &["UP", "[198.18.60.2]:8444"], secs(LOOP + SLACK));
    drop(c);
    let c = bed.checker(&vs(&real));
    c.expect(0, &["INIT", "[198.18.60.2]:8444", "DOWN"], secs(5.0));
    std::thread::sleep(secs(2.0 * LOOP + 1.0));
    assert!(
        !c.since(0).iter().any(|l| l.starts_with("UP")),
        "{:#?}",
        c.since(0)
    );
}
