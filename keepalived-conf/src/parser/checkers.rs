//! Health checker blocks inside `real_server`.

use super::Parser;
use super::values::{TIMER_MAXIMUM_SECS, parse_ip};
use crate::diag::DiagKind;
use crate::lexer::Line;
use crate::model::{
    BfdCheck, Checker, CheckerCommon, CheckerKind, DnsCheck, FileCheck, HttpCheck, HttpUrl,
    MiscCheck, SmtpCheck, StatusRange, UdpCheck,
};

const TMAX: f64 = 4294.967295;
const DNS_TYPES: &[&str] = &["A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA"];

fn empty_kind(kw: &str) -> Option<CheckerKind> {
    Some(match kw {
        "TCP_CHECK" => CheckerKind::TcpCheck,
        "HTTP_GET" => CheckerKind::HttpGet(HttpCheck::default()),
        "SSL_GET" => CheckerKind::SslGet(HttpCheck::default()),
        "SMTP_CHECK" => CheckerKind::SmtpCheck(SmtpCheck::default()),
        "DNS_CHECK" => CheckerKind::DnsCheck(DnsCheck {
            query_type: "SOA".into(),
            name: ".".into(),
        }),
        "UDP_CHECK" => CheckerKind::UdpCheck(UdpCheck {
            payload: None,
            require_reply: None,
            min_reply_length: 0,
            max_reply_length: 255,
        }),
        "PING_CHECK" | "ICMP_CHECK" => CheckerKind::PingCheck,
        "MISC_CHECK" => CheckerKind::Misc(MiscCheck::default()),
        "FILE_CHECK" => CheckerKind::FileCheck(FileCheck::default()),
        "BFD_CHECK" => CheckerKind::BfdCheck(BfdCheck::default()),
        _ => return None,
    })
}

impl<'a> Parser<'a> {
    /// Parses a checker block when `kw` names one.
    pub(crate) fn checker(&mut self, kw: &str, l: &'a Line) -> Option<Checker> {
        let kind = empty_kind(kw)?;
        let mut c = Checker {
            kind,
            common: CheckerCommon::default(),
            span: l.span.clone(),
            extra: Vec::new(),
        };
        self.sub_block(&mut |p: &mut Parser<'a>, l: &'a Line| p.checker_keyword(&mut c, l));
        Some(c)
    }

    fn checker_keyword(&mut self, c: &mut Checker, l: &'a Line) -> bool {
        let is_misc = matches!(c.kind, CheckerKind::Misc(_));
        let is_file = matches!(c.kind, CheckerKind::FileCheck(_));
        if !is_file && self.common_keyword(&mut c.common, l, !is_misc) {
            return true;
        }
        let kw = l.first();
        match &mut c.kind {
            CheckerKind::HttpGet(h) | CheckerKind::SslGet(h) => match kw {
                "nb_get_retry" => {
                    self.warn(
                        DiagKind::Deprecated,
                        l,
                        "nb_get_retry is deprecated - please use 'retry'",
                    );
                    if let Some(r) = self.read_u32(l, 1, 0, u32::MAX) {
                        c.common.retry = r;
                        c.common.set.retry = true;
                    }
                }
                "url" => {
                    let url = self.http_url(l);
                    if url.path.is_some() {
                        h.urls.push(url);
                    } else if let Some(end) = self.last_line {
                        self.warn(
                            DiagKind::Semantic,
                            end,
                            "HTTP/SSL_GET checker url has no path - ignoring",
                        );
                    }
                }
                "virtualhost" => h.virtualhost = self.read_string(l, 1),
                "http_protocol" => h.http_protocol = self.read_string(l, 1),
                "enable_sni" => h.enable_sni = self.read_flag(l, 1).unwrap_or(true),
                "fast_recovery" => h.fast_recovery = self.read_flag(l, 1).unwrap_or(true),
                "tls_compliant" => h.tls_compliant = self.read_flag(l, 1).unwrap_or(true),
                _ => return false,
            },
            CheckerKind::SmtpCheck(s) => match kw {
                "helo_name" => s.helo_name = self.read_string(l, 1),
                "host" => {
                    let mut host = CheckerCommon::default();
                    self.sub_block(&mut |p: &mut Parser<'a>, l: &'a Line| {
                        p.common_keyword(&mut host, l, true)
                    });
                    s.hosts.push(host);
                }
                _ => return false,
            },
            CheckerKind::DnsCheck(d) => match kw {
                "type" => {
                    if let Some(t) = self.arg(l, 1) {
                        let up = t.to_ascii_uppercase();
                        if DNS_TYPES.contains(&up.as_str()) {
                            d.query_type = up;
                        } else {
                            self.warn_at(
                                DiagKind::InvalidValue,
                                l,
                                1,
                                format!("DNS_CHECK: Unknown type '{t}'"),
                            );
                        }
                    }
                }
                "name" => {
                    if let Some(n) = self.read_string(l, 1) {
                        d.name = n;
                    }
                }
                _ => return false,
            },
            CheckerKind::UdpCheck(u) => match kw {
                "payload" => u.payload = self.read_string(l, 1),
                "require_reply" => u.require_reply = Some(l.word(1).map(str::to_string)),
                "min_reply_length" => {
                    u.min_reply_length = self.read_u32(l, 1, 0, 65515).unwrap_or(0)
                }
                "max_reply_length" => {
                    u.max_reply_length = self.read_u32(l, 1, 0, 65515).unwrap_or(255)
                }
                _ => return false,
            },
            CheckerKind::Misc(m) => match kw {
                "misc_path" => m.path = self.script_without_user(l, 1),
                "misc_timeout" => m.timeout = self.read_timer(l, 1, 0.000001, TMAX),
                "misc_dynamic" => m.dynamic = true,
                "user" => m.user = self.read_string(l, 1),
                _ => return false,
            },
            CheckerKind::FileCheck(f) => match kw {
                "track_file" => f.track_file = self.read_string(l, 1),
                "weight" => {
                    f.weight = self.read_i32(l, 1, -254, 254);
                    f.reverse = l.word(2) == Some("reverse");
                }
                _ => return false,
            },
            CheckerKind::BfdCheck(b) => match kw {
                "name" => b.name = self.read_string(l, 1),
                _ => return false,
            },
            CheckerKind::TcpCheck | CheckerKind::PingCheck => return false,
        }
        true
    }

    /// Settings shared by checkers; `connection` adds the socket ones.
    fn common_keyword(&mut self, cm: &mut CheckerCommon, l: &'a Line, connection: bool) -> bool {
        match (l.first(), connection) {
            ("retry", _) => {
                if let Some(r) = self.read_u32(l, 1, 0, u32::MAX) {
                    cm.retry = r;
                    cm.set.retry = true;
                }
            }
            ("delay_before_retry", _) => {
                if let Some(d) = self.read_timer(l, 1, 0.0, TIMER_MAXIMUM_SECS) {
                    cm.delay_before_retry = d;
                    cm.set.delay_before_retry = true;
                }
            }
            ("warmup", _) => cm.warmup = self.read_timer(l, 1, 0.0, TIMER_MAXIMUM_SECS),
            ("delay_loop", _) => {
                if let Some(d) = self.read_timer(l, 1, 0.000001, TMAX) {
                    cm.delay_loop = d;
                    cm.set.delay_loop = true;
                }
            }
            ("alpha", _) => cm.alpha = self.read_flag(l, 1),
            ("log_all_failures", _) => cm.log_all_failures = self.read_flag(l, 1),
            ("connect_ip", true) => cm.connect_ip = self.read_ip(l, 1),
            ("connect_port", true) => cm.connect_port = self.read_port(l, 1),
            ("bindto", true) => cm.bindto = self.read_ip(l, 1),
            ("bind_port", true) => cm.bind_port = self.read_port(l, 1),
            ("bind_if", true) => cm.bind_if = self.read_string(l, 1),
            ("fwmark", true) => cm.fwmark = self.read_u32(l, 1, 0, u32::MAX),
            ("connect_timeout", true) => {
                if let Some(t) = self.read_timer(l, 1, 0.000001, TMAX) {
                    cm.connect_timeout = t;
                    cm.set.connect_timeout = true;
                }
            }
            _ => return false,
        }
        let _ = parse_ip;
        true
    }

    fn http_url(&mut self, l: &'a Line) -> HttpUrl {
        let mut u = HttpUrl {
            path: None,
            digest: None,
            status_codes: Vec::new(),
            virtualhost: None,
            regex: None,
            regex_no_match: false,
            regex_options: Vec::new(),
            span: l.span.clone(),
            extra: Vec::new(),
        };
        self.sub_block(&mut |p: &mut Parser<'a>, l: &'a Line| {
            match l.first() {
                "path" => u.path = p.read_string(l, 1),
                "digest" => {
                    u.digest = p.read_string(l, 1);
                    if let Some(d) = u.digest.as_deref().filter(|d| d.len() != 32) {
                        let msg = format!(
                            "digest '{d}' character length should be 32 rather than {}",
                            d.len()
                        );
                        p.warn(DiagKind::InvalidValue, l, msg);
                    }
                }
                "status_code" => {
                    for i in 1..l.len().max(2) {
                        let Some(w) = p.arg(l, i) else { break };
                        match parse_status(w) {
                            Some(r) => u.status_codes.push(r),
                            None => p.warn_at(
                                DiagKind::InvalidValue,
                                l,
                                i,
                                format!("Invalid HTTP_GET status code '{w}'"),
                            ),
                        }
                    }
                }
                "virtualhost" => u.virtualhost = p.read_string(l, 1),
                "regex" => u.regex = p.read_string(l, 1),
                "regex_no_match" => u.regex_no_match = true,
                "regex_options" => u.regex_options = l.args().map(str::to_string).collect(),
                "regex_min_offset" | "regex_max_offset" | "regex_stack" | "tls_compliant" => {
                    let o = p.raw_option(l, false);
                    u.extra.push(o);
                }
                _ => return false,
            }
            true
        });
        u
    }
}

/// `200`, `200-299`.
fn parse_status(w: &str) -> Option<StatusRange> {
    let (a, b) = w.split_once('-').unwrap_or((w, w));
    let first: u16 = a.parse().ok()?;
    let last: u16 = b.parse().ok()?;
    ((100..=599).contains(&first) && (first..=599).contains(&last))
        .then_some(StatusRange { first, last })
}

/// keepalived's end-of-block check of a checker: why it is dropped, if it is.
pub(crate) fn incomplete(c: &Checker) -> Option<&'static str> {
    match &c.kind {
        CheckerKind::HttpGet(h) | CheckerKind::SslGet(h) if h.urls.is_empty() => {
            Some("HTTP/SSL_GET checker has no urls specified - ignoring")
        }
        CheckerKind::Misc(m) if m.path.is_none() => {
            Some("No script path has been specified for MISC_CHECKER - skipping")
        }
        CheckerKind::FileCheck(f) if f.track_file.is_none() => {
            Some("FILE_CHECK has no track_file specified - ignoring")
        }
        _ => None,
    }
}
