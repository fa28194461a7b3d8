//! From the configuration's checker blocks to runnable checkers.

use crate::conn::{Conn, secs};
use crate::key::{RealKey, VsKey};
use crate::probe::{self, Probe};
use crate::script::resolve_program;
use crate::timing::{Style, Timing};
use keepalived_conf::Span;
use keepalived_conf::model::{Checker, CheckerKind, KeepalivedConfig, RealServer, VirtualServer};
use std::sync::Arc;
use std::time::Duration;

/// Everything that defines a running checker. Two equal specs are the same
/// checker across a reload (its state is kept); spans are blanked so that
/// moving a block in the file does not restart it.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckerSpec {
    /// The checker block, settings resolved.
    pub checker: Checker,
    /// Settings outside the checker block that its probe uses.
    pub vs_delay_loop: f64,
    /// Host header of HTTP checks (the real's, else the service's).
    pub virtualhost: Option<String>,
    /// FILE_CHECK: the tracked file's path, weight, reverse.
    pub track_file: Option<(String, i32, bool)>,
    /// BFD_CHECK: its bfd_instance exists.
    pub bfd_configured: bool,
    /// SSL_GET: the `SSL { }` block (client certificate).
    pub ssl: Option<keepalived_conf::model::SslConfig>,
}

/// The checkers a checker block stands for: an SMTP_CHECK with the
/// deprecated `host { }` sub-blocks is one checker per host (and only
/// those, as keepalived: the real's own address is checked only when a
/// host names it), each with the block's settings and the host's
/// connection options.
pub fn expand(c: &Checker) -> Vec<Checker> {
    let CheckerKind::SmtpCheck(s) = &c.kind else {
        return vec![c.clone()];
    };
    if s.hosts.is_empty() {
        return vec![c.clone()];
    }
    s.hosts
        .iter()
        .map(|h| {
            let mut one = c.clone();
            if let CheckerKind::SmtpCheck(s1) = &mut one.kind {
                s1.hosts.clear();
            }
            let cm = &mut one.common;
            cm.connect_ip = h.connect_ip.or(cm.connect_ip);
            cm.connect_port = h.connect_port.or(cm.connect_port);
            cm.bindto = h.bindto.or(cm.bindto);
            cm.bind_port = h.bind_port.or(cm.bind_port);
            cm.bind_if = h.bind_if.clone().or(cm.bind_if.take());
            cm.fwmark = h.fwmark.or(cm.fwmark);
            if h.set.connect_timeout {
                cm.connect_timeout = h.connect_timeout;
            }
            one
        })
        .collect()
}

/// A checker ready to start.
pub struct Built {
    /// What one attempt does.
    pub probe: Probe,
    /// How results are timed; None for checkers that are never probed (BFD_CHECK).
    pub style: Option<Style>,
    /// delay_loop, retry and their companions.
    pub timing: Timing,
    /// Wait before the first probe counts.
    pub warmup: Duration,
}

fn blank() -> Span {
    Span::new(Arc::from(""), 0, 0)
}

impl CheckerSpec {
    /// The spec of checker `c` of real `rs` of service `vs`.
    pub fn new(cfg: &KeepalivedConfig, vs: &VirtualServer, rs: &RealServer, c: &Checker) -> Self {
        let mut checker = c.clone();
        checker.span = blank();
        checker.extra.clear();
        match &mut checker.kind {
            CheckerKind::HttpGet(h) | CheckerKind::SslGet(h) => {
                for u in &mut h.urls {
                    u.span = blank();
                    u.extra.clear();
                }
            }
            CheckerKind::Misc(m) => {
                if let Some(p) = &mut m.path {
                    p.span = blank();
                }
            }
            _ => {}
        }
        let track_file = match &c.kind {
            CheckerKind::FileCheck(f) => f.track_file.as_ref().and_then(|name| {
                let tf = cfg.track_files.iter().find(|t| &t.name == name)?;
                let (w, rev) = match f.weight {
                    Some(w) => (w, f.reverse),
                    None => (tf.weight, tf.weight_reverse),
                };
                Some((tf.file.clone()?, w, rev))
            }),
            _ => None,
        };
        CheckerSpec {
            checker,
            vs_delay_loop: vs.delay_loop,
            virtualhost: rs.virtualhost.clone().or_else(|| vs.virtualhost.clone()),
            track_file,
            ssl: matches!(c.kind, CheckerKind::SslGet(_))
                .then(|| {
                    cfg.ssl.clone().map(|mut s| {
                        s.span = None;
                        s
                    })
                })
                .flatten(),
            bfd_configured: match &c.kind {
                CheckerKind::BfdCheck(b) => b
                    .name
                    .as_ref()
                    .is_some_and(|n| cfg.bfd_instances.iter().any(|i| &i.name == n)),
                _ => false,
            },
        }
    }

    /// Same checker apart from its timing (delay_loop, retry,
    /// delay_before_retry, warmup, alpha): on reload it is restarted with
    /// the new timing but keeps its state.
    pub fn same_probe(&self, other: &CheckerSpec) -> bool {
        fn untimed(s: &CheckerSpec) -> CheckerSpec {
            let mut s = s.clone();
            let c = &mut s.checker.common;
            let d = keepalived_conf::model::CheckerCommon::default();
            c.delay_loop = d.delay_loop;
            c.delay_before_retry = d.delay_before_retry;
            c.retry = d.retry;
            c.warmup = None;
            c.alpha = None;
            c.log_all_failures = None;
            c.set = d.set;
            s.vs_delay_loop = 0.0;
            s
        }
        untimed(self) == untimed(other)
    }

    /// Builds the probe; `Err` is a reason the checker is disabled (as
    /// keepalived drops such checkers with a message).
    pub fn build(&self, vs: &VsKey, real: &RealKey) -> Result<Built, String> {
        let c = &self.checker;
        let cm = &c.common;
        let conn = |default_port| Conn::resolve(real.socket_addr(), cm, default_port);
        let timing = Timing {
            delay_loop: secs(cm.delay_loop),
            delay_before_retry: secs(cm.delay_before_retry),
            retry: cm.retry,
            alpha: cm.alpha.unwrap_or(false),
        };
        // keepalived: warmup defaults to delay_loop.
        let warmup = secs(cm.warmup.unwrap_or(cm.delay_loop));
        let (probe, style) = match &c.kind {
            CheckerKind::TcpCheck => (
                Probe::Tcp(probe::tcp::TcpProbe { conn: conn(None) }),
                Style::Tcp,
            ),
            CheckerKind::HttpGet(h) | CheckerKind::SslGet(h) => {
                let tls = if matches!(c.kind, CheckerKind::SslGet(_)) {
                    Some(
                        probe::http::tls_client(self.ssl.as_ref())
                            .map_err(|e| format!("SSL_GET {real} of {vs}: {e} - disabled"))?,
                    )
                } else {
                    None
                };
                let p =
                    probe::http::HttpProbe::new(conn(None), h, tls, self.virtualhost.as_deref())
                        .map_err(|e| {
                            format!("{} {real} of {vs}: {e} - disabled", c.kind.keyword())
                        })?;
                let style = Style::Http {
                    urls: p.urls.len(),
                    fast_recovery: h.fast_recovery,
                };
                (Probe::Http(p), style)
            }
            CheckerKind::Misc(m) => {
                let Some(script) = m.path.clone() else {
                    return Err(format!(
                        "MISC_CHECK {real} of {vs}: no misc_path - disabled"
                    ));
                };
                let prog = script.argv.first().cloned().unwrap_or_default();
                if resolve_program(&prog).is_none() {
                    return Err(format!(
                        "Disabling misc script {} since not found/accessible",
                        script.command
                    ));
                }
                let timeout = secs(m.timeout.unwrap_or(self.vs_delay_loop));
                (
                    Probe::Misc(probe::misc::MiscProbe {
                        script,
                        timeout,
                        dynamic: m.dynamic,
                        user: m.user.clone(),
                        label: format!("{real} VS {vs}"),
                    }),
                    Style::Misc,
                )
            }
            CheckerKind::UdpCheck(u) => {
                let payload = match &u.payload {
                    Some(p) => probe::udp::parse_hex(p).map(|h| h.data).ok_or_else(|| {
                        format!("UDP_CHECK {real}: invalid hex payload '{p}' - disabled")
                    })?,
                    None => Vec::new(),
                };
                let require_reply = match &u.require_reply {
                    None => None,
                    Some(None) => Some(Default::default()),
                    Some(Some(p)) => Some(probe::udp::parse_hex(p).ok_or_else(|| {
                        format!("UDP_CHECK {real}: invalid hex reply '{p}' - disabled")
                    })?),
                };
                (
                    Probe::Udp(probe::udp::UdpProbe {
                        conn: conn(None),
                        payload,
                        require_reply,
                        min_reply_length: u.min_reply_length as usize,
                        max_reply_length: u.max_reply_length as usize,
                    }),
                    Style::Standard,
                )
            }
            CheckerKind::PingCheck => (
                Probe::Ping(probe::ping::PingProbe { conn: conn(None) }),
                Style::Standard,
            ),
            CheckerKind::DnsCheck(d) => (
                Probe::Dns(
                    probe::dns::DnsProbe::new(conn(Some(53)), &d.name, &d.query_type)
                        .map_err(|e| format!("DNS_CHECK {real}: {e} - disabled"))?,
                ),
                Style::Standard,
            ),
            CheckerKind::SmtpCheck(s) => (
                Probe::Smtp(probe::smtp::SmtpProbe {
                    conn: conn(Some(25)),
                    helo_name: s
                        .helo_name
                        .clone()
                        .unwrap_or_else(|| probe::smtp::DEFAULT_HELO.into()),
                }),
                Style::Standard,
            ),
            CheckerKind::FileCheck(f) => {
                let Some((path, weight, reverse)) = &self.track_file else {
                    return Err(match &f.track_file {
                        None => "FILE_CHECK has no track_file specified - ignoring".into(),
                        Some(n) => format!("track_file {n} not found"),
                    });
                };
                return Ok(Built {
                    probe: Probe::File(probe::file::FileProbe {
                        path: path.into(),
                        weight: *weight,
                        reverse: *reverse,
                    }),
                    style: None,
                    timing: Timing {
                        alpha: false,
                        ..timing
                    },
                    warmup: Duration::ZERO,
                });
            }
            CheckerKind::BfdCheck(b) => {
                let name = b.name.clone().unwrap_or_default();
                if !self.bfd_configured {
                    return Err(format!(
                        "({}) BFD_CHECK - BFD {name} not configured",
                        real.trio(vs)
                    ));
                }
                return Ok(Built {
                    probe: Probe::Bfd(name),
                    style: None,
                    timing,
                    warmup: Duration::ZERO,
                });
            }
        };
        Ok(Built {
            probe,
            style: Some(style),
            timing,
            warmup,
        })
    }
}
