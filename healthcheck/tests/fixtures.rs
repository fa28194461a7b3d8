//! Real configurations (compat-fixtures/): every checker is either built
//! or disabled with a message — never a panic — also when lines are cut
//! out of the file. No probe is run (no traffic).

use healthcheck::build::CheckerSpec;
use healthcheck::probe::Probe;
use healthcheck::{RealKey, VsKey};
use keepalived_conf::ParseOptions;
use keepalived_conf::model::KeepalivedConfig;
use std::path::PathBuf;

fn fixtures() -> Vec<PathBuf> {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../compat-fixtures"));
    let mut out = Vec::new();
    for dir in ["keepalived", "alibaba-keepalived"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            out.push(e.unwrap().path());
        }
    }
    out.sort();
    assert!(out.len() > 20);
    out
}

/// (built, disabled) per checker keyword.
fn build_all(cfg: &KeepalivedConfig) -> Vec<(String, Result<Probe, String>)> {
    let mut out = Vec::new();
    for vs in &cfg.virtual_servers {
        for rs in &vs.real_servers {
            for c in rs.checkers.iter().flat_map(healthcheck::build::expand) {
                let spec = CheckerSpec::new(cfg, vs, rs, &c);
                let r = spec
                    .build(&VsKey::of(vs), &RealKey::of(rs))
                    .map(|b| b.probe);
                out.push((c.kind.keyword().to_string(), r));
            }
        }
    }
    out
}

#[test]
fn every_fixture_checker_builds_or_is_disabled_with_a_reason() {
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for f in fixtures() {
        let p = keepalived_conf::parse_file(&f, &ParseOptions::default()).unwrap();
        for (kw, r) in build_all(&p.config) {
            match r {
                Ok(probe) => {
                    let ok = matches!(
                        (kw.as_str(), &probe),
                        ("TCP_CHECK", Probe::Tcp(_))
                            | ("HTTP_GET", Probe::Http(_))
                            | ("SSL_GET", Probe::Http(_))
                            | ("SMTP_CHECK", Probe::Smtp(_))
                            | ("UDP_CHECK", Probe::Udp(_))
                            | ("PING_CHECK", Probe::Ping(_))
                            | ("DNS_CHECK", Probe::Dns(_))
                    );
                    assert!(ok, "{}: {kw} built as {probe:?}", f.display());
                    if let (true, Probe::Http(h)) = (kw == "SSL_GET", &probe) {
                        assert!(h.tls.is_some(), "{}: SSL_GET without TLS", f.display());
                    }
                    *kinds.entry(kw).or_default() += 1;
                }
                // The fixtures' misc scripts are not on this machine.
                Err(w) => assert!(
                    kw == "MISC_CHECK" && w.contains("Disabling misc script") || kw == "BFD_CHECK",
                    "{}: {kw} disabled: {w}",
                    f.display()
                ),
            }
        }
    }
    for kw in ["TCP_CHECK", "HTTP_GET", "SSL_GET", "SMTP_CHECK"] {
        assert!(
            kinds.get(kw).copied().unwrap_or(0) > 0,
            "no {kw} in fixtures: {kinds:?}"
        );
    }
}

#[test]
fn status_code_ranges_and_digests_from_the_fixture() {
    let f = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../compat-fixtures/keepalived/keepalived.conf.status_code"
    ));
    let p = keepalived_conf::parse_file(&f, &ParseOptions::default()).unwrap();
    let http: Vec<_> = build_all(&p.config)
        .into_iter()
        .filter_map(|(_, r)| match r {
            Ok(Probe::Http(h)) => Some(h),
            _ => None,
        })
        .collect();
    assert!(!http.is_empty());
    // Every URL has a status set; an unset one is 200-299.
    for h in &http {
        for u in &h.urls {
            assert!(!u.status.is_empty());
            assert!(u.status.iter().all(|r| r.first <= r.last));
        }
    }
}

#[test]
fn smtp_host_blocks_are_one_checker_each() {
    let f = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../compat-fixtures/keepalived/keepalived.conf.SMTP_CHECK"
    ));
    let p = keepalived_conf::parse_file(&f, &ParseOptions::default()).unwrap();
    let dsts: Vec<String> = build_all(&p.config)
        .into_iter()
        .filter_map(|(_, r)| match r {
            Ok(Probe::Smtp(s)) => Some(s.conn.dst.to_string()),
            _ => None,
        })
        .collect();
    // 1 plain checker + 3 hosts + 3 hosts (the last on port 587).
    assert_eq!(dsts.len(), 7, "{dsts:?}");
    assert!(dsts.contains(&"192.168.155.10:25".to_string()), "{dsts:?}");
    assert!(dsts.contains(&"64.233.167.100:587".to_string()), "{dsts:?}");
}

#[test]
fn cut_configs_never_panic() {
    for f in fixtures() {
        let text = std::fs::read_to_string(&f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for skip in 0..lines.len() {
            let cut: String = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, l)| format!("{l}\n"))
                .collect();
            let p = keepalived_conf::parse_str(&cut, "cut", &ParseOptions::default());
            let _ = build_all(&p.config);
        }
    }
}

#[test]
fn odd_values_are_refused_not_panicked_on() {
    let conf = r#"
virtual_server 198.18.0.1 80 {
  delay_loop 4294
  protocol TCP
  real_server 198.18.0.2 80 {
    HTTP_GET { url { path /x
      regex "([unclosed" } }
    HTTP_GET { }
    UDP_CHECK { payload zz }
    DNS_CHECK { name bad..name }
    MISC_CHECK { }
    FILE_CHECK { track_file nothere }
    BFD_CHECK { name b }
    TCP_CHECK { connect_timeout 0.000001 retry 4294967295 }
  }
}
"#;
    let p = keepalived_conf::parse_str(conf, "odd", &ParseOptions::default());
    let r = build_all(&p.config);
    let disabled: Vec<_> = r
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(k, _)| k.as_str())
        .collect();
    // MISC_CHECK without a path and HTTP_GET without a url never reach the checkers: the
    // parser drops them at their '}' with 2.2.7's message, as keepalived does.
    assert!(!r.iter().any(|(k, _)| k == "MISC_CHECK"), "{disabled:?}");
    assert!(disabled.contains(&"FILE_CHECK"), "{disabled:?}");
    assert!(disabled.contains(&"BFD_CHECK"), "{disabled:?}");
    assert!(disabled.contains(&"UDP_CHECK"), "{disabled:?}");
    assert_eq!(
        r.iter().filter(|(k, _)| k == "HTTP_GET").count(),
        1,
        "{disabled:?}"
    );
    assert!(disabled.contains(&"HTTP_GET"), "{disabled:?}");
    assert!(r.iter().any(|(k, r)| k == "TCP_CHECK" && r.is_ok()));
}

#[test]
fn keys_print_like_keepalived() {
    let p = keepalived_conf::parse_str(
        "virtual_server 198.18.0.1 80 { protocol TCP\n real_server 198.18.0.2 { TCP_CHECK { } } }\n\
         virtual_server fwmark 7 { protocol UDP\n real_server 198.18.0.3 53 { } }",
        "k",
        &ParseOptions::default(),
    );
    let vs = &p.config.virtual_servers;
    assert_eq!(VsKey::of(&vs[0]).to_string(), "[198.18.0.1]:tcp:80");
    assert_eq!(VsKey::of(&vs[1]).to_string(), "FWM 7");
    // A real without a port takes the service's.
    assert_eq!(
        RealKey::of(&vs[0].real_servers[0]).to_string(),
        "[198.18.0.2]:80"
    );
}
