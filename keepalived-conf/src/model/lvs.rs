//! LVS: virtual servers, real servers and health checkers.

use super::{RawOption, Script};
use crate::diag::Span;
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Transport protocol of a virtual server (`protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    /// `protocol TCP`.
    Tcp,
    /// `protocol UDP` (keepalived's default when none is given).
    Udp,
    /// `protocol SCTP`.
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
    /// Masquerading: the director rewrites the destination (and the replies' source).
    Nat,
    /// Direct routing: the real server answers the client itself.
    Dr,
    /// IP tunnelling to the real server.
    Tun,
    /// Alibaba / DPVS full NAT.
    Fnat,
    /// DPVS source NAT.
    Snat,
}

/// Encapsulation of `lvs_method TUN` (`type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelType {
    /// IP-in-IP (the default).
    Ipip,
    /// Generic UDP Encapsulation, with `port`.
    Gue,
    /// GRE.
    Gre,
}

/// A forwarding method with its tunnel settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LvsMethod {
    /// NAT, DR, TUN, FNAT or SNAT.
    pub method: ForwardingMethod,
    /// TUN only: the encapsulation.
    pub tunnel_type: Option<TunnelType>,
    /// TUN with GUE: the destination UDP port.
    pub tunnel_port: Option<u16>,
    /// nocsum / csum / remcsum.
    pub tunnel_checksum: Option<String>,
}

impl LvsMethod {
    /// keepalived's default method, NAT without tunnel settings.
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
    /// `virtual_server IP PORT`.
    Ip {
        /// The VIP.
        addr: IpAddr,
        /// The virtual port (0: every port).
        port: u16,
    },
    /// `virtual_server fwmark MARK`.
    Fwmark {
        /// The firewall mark that selects the packets.
        mark: u32,
    },
    /// `virtual_server group NAME`: one service per group entry.
    Group {
        /// The `virtual_server_group` it refers to.
        name: String,
    },
    /// DPVS `virtual_server match NAME` (SNAT service).
    Match {
        /// The SNAT match block's name.
        name: String,
    },
}

/// DPVS SNAT match criteria.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SnatMatch {
    /// Source address range matched.
    pub src_range: Option<String>,
    /// Destination address range matched.
    pub dst_range: Option<String>,
    /// Input interface matched.
    pub iif: Option<String>,
    /// Output interface matched.
    pub oif: Option<String>,
}

/// `sorry_server`: where traffic goes while no real server is up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SorryServer {
    /// Its address.
    pub addr: IpAddr,
    /// Its port (default: the service's).
    pub port: Option<u16>,
    /// `sorry_server_lvs_method`, when given.
    pub lvs_method: Option<LvsMethod>,
}

/// `persistence_timeout [N]` and friends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Persistence {
    /// Seconds; `persistence_timeout` without value gives 360.
    pub timeout: u32,
    /// `persistence_granularity`: the netmask (or IPv6 prefix length) clients are grouped by.
    pub granularity: Option<String>,
    /// `persistence_engine` (e.g. `sip`).
    pub engine: Option<String>,
}

/// A `virtual_server` block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualServer {
    /// What the service is addressed by.
    pub address: VirtualServerAddress,
    /// Where the block starts, for diagnostics.
    pub span: Span,
    /// `ip_family inet|inet6` (fwmark and group services).
    pub ip_family: Option<String>,
    /// keepalived 2.2.7 defaults a service without `protocol` to UDP (with
    /// a warning); fwmark services ignore it.
    pub protocol: Protocol,
    /// Whether `protocol` was written (the default comes with a warning).
    pub protocol_configured: bool,
    /// `lb_algo` / `lvs_sched` (default `wlc`).
    pub scheduler: String,
    /// Scheduler flags (hashed, flag-1, sh-port, mh-fallback, ops …).
    pub scheduler_flags: Vec<String>,
    /// `ops`: one-packet scheduling (UDP).
    pub ops: bool,
    /// `lb_kind` / `lvs_method` (default NAT).
    pub lvs_method: LvsMethod,
    /// `persistence_timeout` and its companions, when set.
    pub persistence: Option<Persistence>,
    /// Seconds (default 60).
    pub delay_loop: f64,
    /// Checker defaults inherited by real servers and their checkers.
    pub retry: Option<u32>,
    /// Seconds between retries of a failed check.
    pub delay_before_retry: Option<f64>,
    /// Seconds a recovered real server waits before its first check counts.
    pub warmup: Option<f64>,
    /// Seconds a checker's connection may take.
    pub connect_timeout: Option<f64>,
    /// `ha_suspend`: checkers run only while a VRRP instance owns the VIP.
    pub ha_suspend: bool,
    /// `inhibit_on_failure`: a failed real server stays with weight 0 instead of being removed.
    pub inhibit_on_failure: bool,
    /// `alpha`: real servers start down until a check passes.
    pub alpha: bool,
    /// `omega`: quorum scripts also run when the service is removed.
    pub omega: bool,
    /// Default 1.
    pub quorum: u32,
    /// Default 0.
    pub hysteresis: u32,
    /// `quorum_up`: runs when the live weight reaches the quorum.
    pub quorum_up: Option<Script>,
    /// `quorum_down`: runs when the live weight falls below the quorum.
    pub quorum_down: Option<Script>,
    /// `notify_up` default for the real servers.
    pub notify_up: Option<Script>,
    /// `notify_down` default for the real servers.
    pub notify_down: Option<Script>,
    /// `weight` default for the real servers.
    pub weight: Option<i32>,
    /// `virtualhost`: the Host header of HTTP checks.
    pub virtualhost: Option<String>,
    /// `smtp_alert`: mail on real-server state changes.
    pub smtp_alert: Option<bool>,
    /// `snmp_name`: the name SNMP reports.
    pub snmp_name: Option<String>,
    /// `sorry_server`, when set.
    pub sorry_server: Option<SorryServer>,
    /// `sorry_server_inhibit`: the sorry server stays in with weight 0.
    pub sorry_server_inhibit: bool,
    /// Alibaba / DPVS: local address group for FNAT.
    pub laddr_group_name: Option<String>,
    /// DPVS: deny / allow address groups.
    pub daddr_group_name: Option<String>,
    /// DPVS `whtlst_address_group`: the allow list.
    pub waddr_group_name: Option<String>,
    /// `syn_proxy`: SYNs answered with cookies before a real server is chosen.
    pub syn_proxy: bool,
    /// Alibaba `est_timeout` / DPVS `establish_timeout` (seconds).
    pub est_timeout: Option<u32>,
    /// DPVS `vip_bind_dev`: the interface the VIP is bound to.
    pub vip_bind_dev: Option<String>,
    /// DPVS `expire_quiescent_conn`: connections to a weight-0 real server expire at once.
    pub expire_quiescent_conn: bool,
    /// DPVS `quic`: connections follow QUIC connection ids.
    pub quic: bool,
    /// DPVS `proxy_protocol` version (v1, v2).
    pub proxy_protocol: Option<String>,
    /// DPVS `bps`: bandwidth limit.
    pub bps: Option<u64>,
    /// DPVS `limit_proportion`: share of the limit per real server.
    pub limit_proportion: Option<u32>,
    /// DPVS `hash_target` of the consistent-hash scheduler.
    pub hash_target: Option<String>,
    /// DPVS `virtual_server match`: the SNAT criteria.
    pub snat_match: Option<SnatMatch>,
    /// The `real_server` blocks, in file order.
    pub real_servers: Vec<RealServer>,
    /// Keywords kept but not interpreted.
    pub extra: Vec<RawOption>,
}

impl VirtualServer {
    /// A service with keepalived's defaults (TCP, wlc, NAT, delay_loop 60, quorum 1).
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

    /// The virtual port, for an IP-addressed service.
    pub fn port(&self) -> Option<u16> {
        match self.address {
            VirtualServerAddress::Ip { port, .. } => Some(port),
            _ => None,
        }
    }
}

/// A `real_server` block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RealServer {
    /// Its address.
    pub addr: IpAddr,
    /// Port as written; `effective_port` falls back to the service's.
    pub port: Option<u16>,
    /// The port traffic goes to.
    pub effective_port: u16,
    /// Where the block starts, for diagnostics.
    pub span: Span,
    /// Default 1.
    pub weight: i32,
    /// `lvs_method` of this server only (default: the service's).
    pub lvs_method: Option<LvsMethod>,
    /// `inhibit_on_failure` of this server (default: the service's).
    pub inhibit_on_failure: Option<bool>,
    /// `notify_up` script: runs when the server comes up.
    pub notify_up: Option<Script>,
    /// `notify_down` script: runs when the server goes down.
    pub notify_down: Option<Script>,
    /// `uthreshold`: the most connections before it is overloaded.
    pub uthreshold: Option<u32>,
    /// `lthreshold`: connections below which it takes new ones again.
    pub lthreshold: Option<u32>,
    /// `alpha` of this server (default: the service's).
    pub alpha: Option<bool>,
    /// Checker default: failed attempts before the server is down.
    pub retry: Option<u32>,
    /// Checker default: seconds between retries.
    pub delay_before_retry: Option<f64>,
    /// Checker default: seconds before a recovered server's first check counts.
    pub warmup: Option<f64>,
    /// Checker default: seconds a connection may take.
    pub connect_timeout: Option<f64>,
    /// Checker default: seconds between checks.
    pub delay_loop: Option<f64>,
    /// Host header of this server's HTTP checks.
    pub virtualhost: Option<String>,
    /// `smtp_alert` of this server (default: the service's).
    pub smtp_alert: Option<bool>,
    /// Its health checkers; the server is up while all pass.
    pub checkers: Vec<Checker>,
    /// Keywords kept but not interpreted.
    pub extra: Vec<RawOption>,
}

/// Settings every checker has; values here are resolved (own value, else
/// real server's, else virtual server's, else the checker's default).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckerCommon {
    /// `connect_ip`: address checked instead of the real server's.
    pub connect_ip: Option<IpAddr>,
    /// `connect_port`: port checked instead of the real server's.
    pub connect_port: Option<u16>,
    /// `bindto`: source address of the check.
    pub bindto: Option<IpAddr>,
    /// `bind_port`: source port of the check.
    pub bind_port: Option<u16>,
    /// `bind_if`: interface of a link-local source.
    pub bind_if: Option<String>,
    /// Seconds (default 5).
    pub connect_timeout: f64,
    /// `fwmark` put on the checker's packets.
    pub fwmark: Option<u32>,
    /// Failed attempts before the real server is down.
    pub retry: u32,
    /// Seconds.
    pub delay_before_retry: f64,
    /// Seconds.
    pub warmup: Option<f64>,
    /// Seconds.
    pub delay_loop: f64,
    /// `alpha`: the server starts down until this checker passes.
    pub alpha: Option<bool>,
    /// `log_all_failures`: log every failed attempt, not only state changes.
    pub log_all_failures: Option<bool>,
    /// Whether each was set in the checker block itself.
    #[serde(skip)]
    pub set: CommonSet,
}

/// Which inheritable checker settings the checker block wrote itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommonSet {
    /// `connect_timeout` was written in the checker.
    pub connect_timeout: bool,
    /// `retry` was written in the checker.
    pub retry: bool,
    /// `delay_before_retry` was written in the checker.
    pub delay_before_retry: bool,
    /// `delay_loop` was written in the checker.
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
    /// First code of the range.
    pub first: u16,
    /// Last code of the range (equal to `first` for one code).
    pub last: u16,
}

/// A `url` block of HTTP_GET / SSL_GET: one request and what its answer must be.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpUrl {
    /// Path requested.
    pub path: Option<String>,
    /// MD5 the body must have (`digest`).
    pub digest: Option<String>,
    /// Default 200-299 when empty.
    pub status_codes: Vec<StatusRange>,
    /// Host header of this URL (default: the checker's).
    pub virtualhost: Option<String>,
    /// `regex` the body must match.
    pub regex: Option<String>,
    /// `regex_no_match`: the body must not match instead.
    pub regex_no_match: bool,
    /// `regex_options` (PCRE2 flags).
    pub regex_options: Vec<String>,
    /// Where the block starts, for diagnostics.
    pub span: Span,
    /// Keywords kept but not interpreted.
    pub extra: Vec<RawOption>,
}

/// HTTP_GET / SSL_GET settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HttpCheck {
    /// The `url` blocks; each must pass.
    pub urls: Vec<HttpUrl>,
    /// Host header (default: the real server's).
    pub virtualhost: Option<String>,
    /// `http_protocol` (1.0, 1.0C, 1.0K, 1.1).
    pub http_protocol: Option<String>,
    /// `enable_sni`: send the virtualhost as TLS SNI.
    pub enable_sni: bool,
    /// `fast_recovery`: while down (and at start) the URLs are checked back to back.
    pub fast_recovery: bool,
    /// `tls_compliant`: close TLS with a proper close_notify.
    pub tls_compliant: bool,
}

/// SMTP_CHECK settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SmtpCheck {
    /// `helo_name` sent in HELO.
    pub helo_name: Option<String>,
    /// Deprecated `host { … }` sub-blocks.
    pub hosts: Vec<CheckerCommon>,
}

/// DNS_CHECK settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsCheck {
    /// Default SOA.
    pub query_type: String,
    /// Default ".".
    pub name: String,
}

/// UDP_CHECK settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UdpCheck {
    /// `payload` sent (hex).
    pub payload: Option<String>,
    /// `require_reply`: an answer is needed, optionally starting with these bytes (hex).
    pub require_reply: Option<Option<String>>,
    /// Shortest acceptable reply.
    pub min_reply_length: u32,
    /// Longest acceptable reply.
    pub max_reply_length: u32,
}

/// MISC_CHECK settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MiscCheck {
    /// `misc_path`: the script; exit 0 means up.
    pub path: Option<Script>,
    /// Seconds.
    pub timeout: Option<f64>,
    /// `misc_dynamic`: exit codes 2-255 set the weight to code - 2.
    pub dynamic: bool,
    /// `user` the script runs as.
    pub user: Option<String>,
}

/// FILE_CHECK settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FileCheck {
    /// The `track_file` whose value is read.
    pub track_file: Option<String>,
    /// Multiplier of the file's value (0: up/down only).
    pub weight: Option<i32>,
    /// `reverse`: a non-zero value means up.
    pub reverse: bool,
}

/// BFD_CHECK settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BfdCheck {
    /// The `bfd_instance` followed.
    pub name: Option<String>,
}

/// Which checker a block is, with its own settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CheckerKind {
    /// TCP_CHECK: the connection opens.
    TcpCheck,
    /// HTTP_GET.
    HttpGet(HttpCheck),
    /// SSL_GET (HTTP over TLS).
    SslGet(HttpCheck),
    /// SMTP_CHECK.
    SmtpCheck(SmtpCheck),
    /// DNS_CHECK.
    DnsCheck(DnsCheck),
    /// UDP_CHECK.
    UdpCheck(UdpCheck),
    /// PING_CHECK: an ICMP echo is answered.
    PingCheck,
    /// MISC_CHECK: a script decides.
    Misc(MiscCheck),
    /// FILE_CHECK: a file's value decides.
    FileCheck(FileCheck),
    /// BFD_CHECK: a BFD session decides.
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

/// One checker block of a real server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checker {
    /// Which checker, with its own settings.
    pub kind: CheckerKind,
    /// Settings all checkers share, resolved.
    pub common: CheckerCommon,
    /// Where the block starts, for diagnostics.
    pub span: Span,
    /// Keywords kept but not interpreted.
    pub extra: Vec<RawOption>,
}

/// One entry of a virtual_server_group.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VsgEntry {
    /// `IP[-LAST] PORT` (a range varies the last octet / hextet).
    Range {
        /// First address.
        first: IpAddr,
        /// Last address (equal to `first` for one address).
        last: IpAddr,
        /// The virtual port.
        port: u16,
        /// Where the entry is, for diagnostics.
        span: Span,
    },
    /// `fwmark MARK [inet|inet6]`.
    Fwmark {
        /// The firewall mark.
        mark: u32,
        /// `inet` or `inet6`, when given.
        family: Option<String>,
        /// Where the entry is, for diagnostics.
        span: Span,
    },
}

/// A `virtual_server_group` block: several addresses served as one service definition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualServerGroup {
    /// The group's name, referred to by `virtual_server group NAME`.
    pub name: String,
    /// Its entries, in file order.
    pub entries: Vec<VsgEntry>,
    /// Where the block starts, for diagnostics.
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
