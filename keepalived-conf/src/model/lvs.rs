//! LVS: virtual servers, real servers and health checkers.

use super::{RawOption, Script};
use crate::diag::Span;
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
    /// DPVS only.
    Icmp,
    /// DPVS only.
    Icmpv6,
}

/// Forwarding method (`lb_kind` / `lvs_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ForwardingMethod {
    Nat,
    Dr,
    Tun,
    /// Alibaba / DPVS full NAT.
    Fnat,
    /// DPVS source NAT.
    Snat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelType {
    Ipip,
    Gue,
    Gre,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LvsMethod {
    pub method: ForwardingMethod,
    pub tunnel_type: Option<TunnelType>,
    pub tunnel_port: Option<u16>,
    /// nocsum / csum / remcsum.
    pub tunnel_checksum: Option<String>,
}

impl LvsMethod {
    pub fn nat() -> Self {
        LvsMethod {
            method: ForwardingMethod::Nat,
            tunnel_type: None,
            tunnel_port: None,
            tunnel_checksum: None,
        }
    }
}

/// How the virtual service is addressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VirtualServerAddress {
    Ip {
        addr: IpAddr,
        port: u16,
    },
    Fwmark {
        mark: u32,
    },
    Group {
        name: String,
    },
    /// DPVS `virtual_server match NAME` (SNAT service).
    Match {
        name: String,
    },
}

/// DPVS SNAT match criteria.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SnatMatch {
    pub src_range: Option<String>,
    pub dst_range: Option<String>,
    pub iif: Option<String>,
    pub oif: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SorryServer {
    pub addr: IpAddr,
    pub port: Option<u16>,
    pub lvs_method: Option<LvsMethod>,
}

/// `persistence_timeout [N]` and friends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Persistence {
    /// Seconds; `persistence_timeout` without value gives 360.
    pub timeout: u32,
    pub granularity: Option<String>,
    pub engine: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualServer {
    pub address: VirtualServerAddress,
    pub span: Span,
    pub ip_family: Option<String>,
    /// keepalived 2.2.7 defaults a service without `protocol` to UDP (with
    /// a warning); fwmark services ignore it.
    pub protocol: Protocol,
    pub protocol_configured: bool,
    /// `lb_algo` / `lvs_sched` (default `wlc`).
    pub scheduler: String,
    /// Scheduler flags (hashed, flag-1, sh-port, mh-fallback, ops …).
    pub scheduler_flags: Vec<String>,
    pub ops: bool,
    /// `lb_kind` / `lvs_method` (default NAT).
    pub lvs_method: LvsMethod,
    pub persistence: Option<Persistence>,
    /// Seconds (default 60).
    pub delay_loop: f64,
    /// Checker defaults inherited by real servers and their checkers.
    pub retry: Option<u32>,
    pub delay_before_retry: Option<f64>,
    pub warmup: Option<f64>,
    pub connect_timeout: Option<f64>,
    pub ha_suspend: bool,
    pub inhibit_on_failure: bool,
    pub alpha: bool,
    pub omega: bool,
    /// Default 1.
    pub quorum: u32,
    /// Default 0.
    pub hysteresis: u32,
    pub quorum_up: Option<Script>,
    pub quorum_down: Option<Script>,
    pub notify_up: Option<Script>,
    pub notify_down: Option<Script>,
    pub weight: Option<i32>,
    pub virtualhost: Option<String>,
    pub smtp_alert: Option<bool>,
    pub snmp_name: Option<String>,
    pub sorry_server: Option<SorryServer>,
    pub sorry_server_inhibit: bool,
    /// Alibaba / DPVS: local address group for FNAT.
    pub laddr_group_name: Option<String>,
    /// DPVS: deny / allow address groups.
    pub daddr_group_name: Option<String>,
    pub waddr_group_name: Option<String>,
    pub syn_proxy: bool,
    /// Alibaba `est_timeout` / DPVS `establish_timeout` (seconds).
    pub est_timeout: Option<u32>,
    pub vip_bind_dev: Option<String>,
    pub expire_quiescent_conn: bool,
    pub quic: bool,
    pub proxy_protocol: Option<String>,
    pub bps: Option<u64>,
    pub limit_proportion: Option<u32>,
    pub hash_target: Option<String>,
    pub snat_match: Option<SnatMatch>,
    pub real_servers: Vec<RealServer>,
    pub extra: Vec<RawOption>,
}

impl VirtualServer {
    pub fn new(address: VirtualServerAddress, span: Span) -> Self {
        VirtualServer {
            address,
            span,
            ip_family: None,
            protocol: Protocol::Tcp,
            protocol_configured: false,
            scheduler: "wlc".to_string(),
            scheduler_flags: Vec::new(),
            ops: false,
            lvs_method: LvsMethod::nat(),
            persistence: None,
            delay_loop: 60.0,
            retry: None,
            delay_before_retry: None,
            warmup: None,
            connect_timeout: None,
            ha_suspend: false,
            inhibit_on_failure: false,
            alpha: false,
            omega: false,
            quorum: 1,
            hysteresis: 0,
            quorum_up: None,
            quorum_down: None,
            notify_up: None,
            notify_down: None,
            weight: None,
            virtualhost: None,
            smtp_alert: None,
            snmp_name: None,
            sorry_server: None,
            sorry_server_inhibit: false,
            laddr_group_name: None,
            daddr_group_name: None,
            waddr_group_name: None,
            syn_proxy: false,
            est_timeout: None,
            vip_bind_dev: None,
            expire_quiescent_conn: false,
            quic: false,
            proxy_protocol: None,
            bps: None,
            limit_proportion: None,
            hash_target: None,
            snat_match: None,
            real_servers: Vec::new(),
            extra: Vec::new(),
        }
    }

    pub fn port(&self) -> Option<u16> {
        match self.address {
            VirtualServerAddress::Ip { port, .. } => Some(port),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RealServer {
    pub addr: IpAddr,
    /// Port as written; `effective_port` falls back to the service's.
    pub port: Option<u16>,
    pub effective_port: u16,
    pub span: Span,
    /// Default 1.
    pub weight: i32,
    pub lvs_method: Option<LvsMethod>,
    pub inhibit_on_failure: Option<bool>,
    pub notify_up: Option<Script>,
    pub notify_down: Option<Script>,
    pub uthreshold: Option<u32>,
    pub lthreshold: Option<u32>,
    pub alpha: Option<bool>,
    pub retry: Option<u32>,
    pub delay_before_retry: Option<f64>,
    pub warmup: Option<f64>,
    pub connect_timeout: Option<f64>,
    pub delay_loop: Option<f64>,
    pub virtualhost: Option<String>,
    pub smtp_alert: Option<bool>,
    pub checkers: Vec<Checker>,
    pub extra: Vec<RawOption>,
}

/// Settings every checker has; values here are resolved (own value, else
/// real server's, else virtual server's, else the checker's default).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckerCommon {
    pub connect_ip: Option<IpAddr>,
    pub connect_port: Option<u16>,
    pub bindto: Option<IpAddr>,
    pub bind_port: Option<u16>,
    pub bind_if: Option<String>,
    /// Seconds (default 5).
    pub connect_timeout: f64,
    pub fwmark: Option<u32>,
    pub retry: u32,
    /// Seconds.
    pub delay_before_retry: f64,
    /// Seconds.
    pub warmup: Option<f64>,
    /// Seconds.
    pub delay_loop: f64,
    pub alpha: Option<bool>,
    pub log_all_failures: Option<bool>,
    /// Whether each was set in the checker block itself.
    #[serde(skip)]
    pub set: CommonSet,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommonSet {
    pub connect_timeout: bool,
    pub retry: bool,
    pub delay_before_retry: bool,
    pub delay_loop: bool,
}

impl Default for CheckerCommon {
    fn default() -> Self {
        CheckerCommon {
            connect_ip: None,
            connect_port: None,
            bindto: None,
            bind_port: None,
            bind_if: None,
            connect_timeout: 5.0,
            fwmark: None,
            retry: 1,
            delay_before_retry: 1.0,
            warmup: None,
            delay_loop: 60.0,
            alpha: None,
            log_all_failures: None,
            set: CommonSet::default(),
        }
    }
}

/// A `status_code` entry: one code or a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StatusRange {
    pub first: u16,
    pub last: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpUrl {
    pub path: Option<String>,
    pub digest: Option<String>,
    /// Default 200-299 when empty.
    pub status_codes: Vec<StatusRange>,
    pub virtualhost: Option<String>,
    pub regex: Option<String>,
    pub regex_no_match: bool,
    pub regex_options: Vec<String>,
    pub span: Span,
    pub extra: Vec<RawOption>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HttpCheck {
    pub urls: Vec<HttpUrl>,
    pub virtualhost: Option<String>,
    pub http_protocol: Option<String>,
    pub enable_sni: bool,
    pub fast_recovery: bool,
    pub tls_compliant: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SmtpCheck {
    pub helo_name: Option<String>,
    /// Deprecated `host { … }` sub-blocks.
    pub hosts: Vec<CheckerCommon>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsCheck {
    /// Default SOA.
    pub query_type: String,
    /// Default ".".
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UdpCheck {
    pub payload: Option<String>,
    pub require_reply: Option<Option<String>>,
    pub min_reply_length: u32,
    pub max_reply_length: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MiscCheck {
    pub path: Option<Script>,
    /// Seconds.
    pub timeout: Option<f64>,
    pub dynamic: bool,
    pub user: Option<String>,
    /// The line of the block's `}`, where keepalived checks the script's user.
    #[serde(skip)]
    pub end_span: Option<Span>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FileCheck {
    pub track_file: Option<String>,
    pub weight: Option<i32>,
    pub reverse: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BfdCheck {
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CheckerKind {
    TcpCheck,
    HttpGet(HttpCheck),
    SslGet(HttpCheck),
    SmtpCheck(SmtpCheck),
    DnsCheck(DnsCheck),
    UdpCheck(UdpCheck),
    PingCheck,
    Misc(MiscCheck),
    FileCheck(FileCheck),
    BfdCheck(BfdCheck),
}

impl CheckerKind {
    /// keepalived's block keyword for this checker.
    pub fn keyword(&self) -> &'static str {
        match self {
            CheckerKind::TcpCheck => "TCP_CHECK",
            CheckerKind::HttpGet(_) => "HTTP_GET",
            CheckerKind::SslGet(_) => "SSL_GET",
            CheckerKind::SmtpCheck(_) => "SMTP_CHECK",
            CheckerKind::DnsCheck(_) => "DNS_CHECK",
            CheckerKind::UdpCheck(_) => "UDP_CHECK",
            CheckerKind::PingCheck => "PING_CHECK",
            CheckerKind::Misc(_) => "MISC_CHECK",
            CheckerKind::FileCheck(_) => "FILE_CHECK",
            CheckerKind::BfdCheck(_) => "BFD_CHECK",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checker {
    pub kind: CheckerKind,
    pub common: CheckerCommon,
    pub span: Span,
    pub extra: Vec<RawOption>,
}

/// One entry of a virtual_server_group.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VsgEntry {
    /// `IP[-LAST] PORT` (a range varies the last octet / hextet).
    Range {
        first: IpAddr,
        last: IpAddr,
        port: u16,
        span: Span,
    },
    Fwmark {
        mark: u32,
        family: Option<String>,
        span: Span,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualServerGroup {
    pub name: String,
    pub entries: Vec<VsgEntry>,
    pub span: Span,
}

/// keepalived's address ranges vary the last IPv4 octet or the last IPv6 hextet.
pub fn address_range(first: IpAddr, last: IpAddr) -> Result<Vec<IpAddr>, String> {
    const MAX: usize = 256 * 256;
    match (first, last) {
        (IpAddr::V4(a), IpAddr::V4(b)) if a.octets()[..3] == b.octets()[..3] => {
            let (lo, hi) = (a.octets()[3], b.octets()[3]);
            if lo > hi {
                return Err(format!("address range {a}-{} is reversed", hi));
            }
            Ok((lo..=hi)
                .map(|o| {
                    let mut b = a.octets();
                    b[3] = o;
                    IpAddr::V4(Ipv4Addr::from(b))
                })
                .collect())
        }
        (IpAddr::V6(a), IpAddr::V6(b)) if a.segments()[..7] == b.segments()[..7] => {
            let (lo, hi) = (a.segments()[7], b.segments()[7]);
            if lo > hi || usize::from(hi - lo) >= MAX {
                return Err(format!("address range {a}-{hi:x} is reversed or too large"));
            }
            Ok((lo..=hi)
                .map(|h| {
                    let mut s = a.segments();
                    s[7] = h;
                    IpAddr::V6(Ipv6Addr::from(s))
                })
                .collect())
        }
        _ => Err(format!("address range {first}-{last} is not a valid range")),
    }
}
