//! SMTP alerts (smtp_alert, notification_email, smtp_server …) as keepalived 2.2.7 sends them,
//! to an SMTP sink in the test's namespace.
//!
//! VRRP: Debian's keepalived 2.2.7 and ours run the same configuration one after the other on
//! the same host name (so router_id, HELO name and sender take the same defaults); the
//! conversations for the instance's and the sync group's MASTER transition are compared byte
//! for byte, Date header aside. Checkers: kernel IPVS is not available here, so 2.2.7's
//! alerts for the same checker set were recorded on a Debian 12 guest with IPVS (2.2.7,
//! loopback addresses 127.0.0.x in place of 198.18.78.x) and are compared with ours.
//! Needs root and /usr/sbin/keepalived.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Result, bail};
use xlvs_tests::keepalived::{Keepalived, REAL_KEEPALIVED, RealKeepalived, Workdir};
use xlvs_tests::lab::Pins;
use xlvs_tests::netns::{Netns, is_root, unique_prefix, veth};
use xlvs_tests::poll::wait_every;
use xlvs_tests::smtp_sink::{SmtpSink, subject_and_body, without_date};

const SINK: &str = "198.18.78.2:25";

fn global(extra: &str) -> String {
    format!(
        "global_defs {{\n notification_email {{\n  ops@example.com\n  oncall@example.com\n }}\n \
         smtp_server 198.18.78.2 25\n smtp_connect_timeout 5\n smtp_alert\n{extra}}}\n"
    )
}

fn pair(tag: &str) -> Result<(String, Netns, Netns)> {
    let p = unique_prefix(tag);
    let a = Netns::new(&format!("{p}a"))?;
    let b = Netns::new(&format!("{p}b"))?;
    veth(&a, "va", &b, "vb")?;
    a.ip(&["addr", "add", "198.18.78.1/24", "dev", "va"])?;
    b.ip(&["addr", "add", "198.18.78.2/24", "dev", "vb"])?;
    Ok((p, a, b))
}

#[test]
fn vrrp_alerts_as_keepalived_2_2_7() -> Result<()> {
    if !is_root() || !std::path::Path::new(REAL_KEEPALIVED).exists() {
        xlvs_tests::skip(&format!("needs root and {REAL_KEEPALIVED}"));
        return Ok(());
    }
    let (p, a, b) = pair("ksm")?;
    let dir = Workdir::new(&p)?;
    let conf = dir.path("k.conf");
    std::fs::write(
        &conf,
        global("")
            + "vrrp_instance VI_M {\n state BACKUP\n interface va\n virtual_router_id 78\n \
               priority 100\n version 3\n advert_int 0.1\n virtual_ipaddress {\n  198.18.78.100/32\n }\n}\n\
               vrrp_sync_group G_M {\n group {\n  VI_M\n }\n}\n",
    )?;
    let master = |s: &SmtpSink| {
        s.with_subject("VRRP Instance VI_M - Entering MASTER state")
            .len()
            == 1
            && s.with_subject("VRRP Group G_M - Entering MASTER state")
                .len()
                == 1
    };

    let master_mails = |s: &SmtpSink| -> BTreeSet<String> {
        s.mails()
            .iter()
            .filter(|m| m.contains("Entering MASTER state"))
            .map(|m| without_date(m))
            .collect()
    };

    let sink = SmtpSink::start(&b, SINK.parse::<SocketAddr>()?)?;
    let theirs = RealKeepalived::start(&a, &dir, "theirs", &conf, &["-P"])?;
    if !wait_until(Duration::from_secs(10), || master(&sink)) {
        bail!(
            "2.2.7 sent no MASTER alerts:\n{:#?}\n{}",
            sink.mails(),
            theirs.log_text()
        );
    }
    let theirs_master = master_mails(&sink);
    drop(theirs);
    std::thread::sleep(Duration::from_millis(300));
    sink.clear();

    let pins = Pins::scratch(&p, 4096);
    let mut ours = Keepalived::start_in(&a, &pins.0, &dir, &conf)?;
    if !wait_until(Duration::from_secs(10), || master(&sink)) {
        bail!(
            "ours sent no MASTER alerts:\n{:#?}\n{}",
            sink.mails(),
            ours.log_text()
        );
    }
    assert_eq!(master_mails(&sink), theirs_master);
    // The starting BACKUP state is mailed too (2.2.7 does, when its first connection works).
    assert_eq!(sink.with_subject("VI_M - Entering BACKUP state").len(), 1);
    ours.signal(libc::SIGTERM)?;
    ours.wait(Duration::from_secs(10))?;
    // keepalived means to send "Stopping" alerts; 2.2.7 exits before they leave (it opens
    // the connections only). Ours sends them.
    assert!(
        wait_until(Duration::from_secs(3), || {
            sink.with_subject("VRRP Instance VI_M - Stopping").len() == 1
                && sink.with_subject("VRRP Group G_M - Stopping").len() == 1
        }),
        "{:#?}",
        sink.mails()
    );
    Ok(())
}

/// What keepalived 2.2.7 sent for this checker set on the IPVS guest (Subject, body), its
/// 127.0.0.x addresses written as the 198.18.78.x used here. The reals that pass from the
/// start (TCP and HTTP) send nothing; MISC_CHECK mails its first success too.
const CHECKER_ALERTS_2_2_7: &[(&str, &str)] = &[
    (
        "[R1] Virtualserver [198.18.78.100]:tcp:80 - UP",
        "=> Starting with quorum up 2+0=2 <= 6 <=",
    ),
    (
        "[R1] Realserver [198.18.78.3]:tcp:80 of virtual server [198.18.78.100]:tcp:80 - DOWN",
        "=> TCP CHECK failed on service <=",
    ),
    (
        "[R1] Realserver [198.18.78.6]:tcp:80 of virtual server [198.18.78.100]:tcp:80 - DOWN",
        "=> CHECK failed on service : HTTP request failed <=",
    ),
    (
        "[R1] Realserver [198.18.78.4]:tcp:80 of virtual server [198.18.78.100]:tcp:80 - DOWN",
        "=> MISC CHECK failed on service <=",
    ),
    (
        "[R1] Realserver [198.18.78.7]:tcp:80 of virtual server [198.18.78.100]:tcp:80 - UP",
        "=> MISC CHECK succeeded on service <=",
    ),
];

#[test]
fn checker_alerts_as_keepalived_2_2_7() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let (p, a, b) = pair("ksc")?;
    let dir = Workdir::new(&p)?;
    let pins = Pins::scratch(&p, 4096);
    let sink = SmtpSink::start(&b, SINK.parse::<SocketAddr>()?)?;
    let _web = xlvs_tests::servers::http(&b, "198.18.78.2:80".parse()?, "web")?;
    let http = |ip: &str, connect_ip: &str| {
        format!(
            " real_server {ip} 80 {{\n  HTTP_GET {{\n   url {{\n    path /\n    status_code 200\n   }}\n   \
             {connect_ip}connect_timeout 1\n   retry 0\n  }}\n }}\n"
        )
    };
    let conf = dir.path("k.conf");
    std::fs::write(
        &conf,
        global(" router_id R1\n")
            + "virtual_server 198.18.78.100 80 {\n lb_algo rr\n lb_kind NAT\n protocol TCP\n \
               delay_loop 1\n quorum 2\n quorum_up \"/bin/true up\"\n \
               real_server 198.18.78.2 80 {\n  TCP_CHECK {\n   connect_timeout 1\n  }\n }\n \
               real_server 198.18.78.3 80 {\n  TCP_CHECK {\n   connect_timeout 1\n   retry 0\n  }\n }\n \
               real_server 198.18.78.4 80 {\n  MISC_CHECK {\n   misc_path \"/bin/false\"\n  }\n }\n"
            + &http("198.18.78.5", "connect_ip 198.18.78.2\n   ")
            + &http("198.18.78.6", "")
            + " real_server 198.18.78.7 80 {\n  MISC_CHECK {\n   misc_path \"/bin/true\"\n  }\n }\n}\n",
    )?;
    let expected: BTreeSet<(String, String)> = CHECKER_ALERTS_2_2_7
        .iter()
        .map(|(s, b)| (s.to_string(), b.to_string()))
        .collect();
    let got = || -> BTreeSet<(String, String)> {
        sink.mails().iter().map(|m| subject_and_body(m)).collect()
    };
    let mut ours = Keepalived::start_in(&a, &pins.0, &dir, &conf)?;
    // The checkers start once the XDP program is loaded into these fresh pins (slow under load).
    let complete = wait_until(Duration::from_secs(60), || got().len() >= expected.len());
    // A little longer: nothing else may come (the passing reals stay silent).
    std::thread::sleep(Duration::from_millis(1500));
    assert!(complete, "{:#?}\n{}", sink.mails(), ours.log_text());
    assert_eq!(got(), expected, "{}", ours.log_text());
    assert_eq!(sink.mails().len(), expected.len());
    // Every conversation is keepalived's: HELO host, MAIL FROM, one RCPT per address, DATA.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")?;
    for m in sink.mails() {
        assert!(
            m.starts_with(&format!("HELO {}\r\nMAIL FROM:<", host.trim())),
            "{m}"
        );
        assert!(
            m.contains("RCPT TO:<ops@example.com>\r\nRCPT TO:<oncall@example.com>\r\nDATA\r\n")
        );
        assert!(m.ends_with("\r\n.\r\nQUIT\r\n"), "{m}");
    }
    // No alerts at stop without omega, as keepalived.
    ours.signal(libc::SIGTERM)?;
    ours.wait(Duration::from_secs(10))?;
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sink.mails().len(), expected.len(), "{:#?}", sink.mails());
    Ok(())
}

/// Whether `f` holds within `limit` (polled every 50 ms).
fn wait_until(limit: Duration, f: impl Fn() -> bool) -> bool {
    wait_every("condition", limit, Duration::from_millis(50), f).is_ok()
}
