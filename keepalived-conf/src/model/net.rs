//! Addresses, routes and rules (static_* and virtual_* blocks) and the
//! address groups of the Alibaba / DPVS forks.

use super::RawOption;
use crate::diag::Span;
use serde::Serialize;
use std::net::IpAddr;

/// An address with prefix length (`IP[/MASK]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IpPrefix {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

impl std::fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// One line of virtual_ipaddress / static_ipaddress.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IpAddressEntry {
    pub address: IpPrefix,
    /// True when no `/MASK` was written (keepalived uses /32 or /128).
    pub implicit_prefix: bool,
    pub broadcast: Option<String>,
    pub dev: Option<String>,
    pub scope: Option<String>,
    pub label: Option<String>,
    pub peer: Option<IpPrefix>,
    pub use_vmac: bool,
    pub no_track: bool,
    /// Static addresses: the `track_group` whose instances go FAULT if it cannot be restored.
    pub track_group: Option<String>,
    /// Other flags (home, -nodad, noprefixroute, autojoin, preferred_lft …).
    pub flags: Vec<String>,
    pub span: Span,
}

/// One line of virtual_routes / static_routes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteEntry {
    /// `[src IP] [TYPE] DEST` destination (None for `default`-less oddities).
    pub destination: Option<IpPrefix>,
    pub route_type: Option<String>,
    pub src: Option<IpAddr>,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    pub table: Option<String>,
    pub metric: Option<u32>,
    pub scope: Option<String>,
    pub no_track: bool,
    /// Static routes: `track_group`.
    pub track_group: Option<String>,
    /// Every word after the destination, verbatim.
    pub options: Vec<String>,
    pub span: Span,
}

/// One line of virtual_rules / static_rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleEntry {
    pub from: Option<IpPrefix>,
    pub to: Option<IpPrefix>,
    pub table: Option<String>,
    pub preference: Option<u32>,
    /// Static rules: `track_group`.
    pub track_group: Option<String>,
    pub options: Vec<String>,
    pub span: Span,
}

/// Entry of an address group: a single address or a last-octet range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AddressRange {
    pub first: IpAddr,
    /// Last address (same as `first` for a single one).
    pub last: IpAddr,
    pub prefix_len: Option<u8>,
    /// DPVS: the DPDK device after the address (`192.168.100.200 dpdk0`).
    pub interface: Option<String>,
    /// DPVS deny/allow groups may name an ipset (`ipset:NAME`).
    pub ipset: Option<String>,
    pub span: Span,
}

/// local_address_group / deny_address_group / allow_address_group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AddressGroup {
    pub name: String,
    pub entries: Vec<AddressRange>,
    pub span: Span,
}

/// DPVS `tunnel_group NAME { tunnel_entry NAME { kind; remote; local; if } }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TunnelGroup {
    pub name: String,
    pub entries: Vec<TunnelEntry>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TunnelEntry {
    pub name: String,
    pub kind: Option<String>,
    pub remote: Option<IpAddr>,
    pub local: Option<IpAddr>,
    pub interface: Option<String>,
    pub extra: Vec<RawOption>,
    pub span: Span,
}
