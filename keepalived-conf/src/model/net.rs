//! Addresses, routes and rules (static_* and virtual_* blocks) and the
//! address groups of the Alibaba / DPVS forks.

use super::RawOption;
use crate::diag::Span;
use serde::Serialize;
use std::net::IpAddr;

/// An address with prefix length (`IP[/MASK]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IpPrefix {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length (32/128 when none was written).
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
    /// Address and prefix.
    pub address: IpPrefix,
    /// True when no `/MASK` was written (keepalived uses /32 or /128).
    pub implicit_prefix: bool,
    /// `brd`: the broadcast address.
    pub broadcast: Option<String>,
    /// `dev`: the interface (default: the instance's).
    pub dev: Option<String>,
    /// `scope`.
    pub scope: Option<String>,
    /// `label`.
    pub label: Option<String>,
    /// `peer`: the other end of a point-to-point address.
    pub peer: Option<IpPrefix>,
    /// `use_vmac`: put on the instance's VMAC interface.
    pub use_vmac: bool,
    /// `no_track`: its loss does not put the instance in FAULT.
    pub no_track: bool,
    /// Static addresses: the `track_group` whose instances go FAULT if it cannot be restored.
    pub track_group: Option<String>,
    /// Other flags (home, -nodad, noprefixroute, autojoin, preferred_lft …).
    pub flags: Vec<String>,
    /// Where it is written, for diagnostics.
    pub span: Span,
}

/// One line of virtual_routes / static_routes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteEntry {
    /// `[src IP] [TYPE] DEST` destination (None for `default`-less oddities).
    pub destination: Option<IpPrefix>,
    /// Route type (`unicast`, `blackhole`, `unreachable`, …) when written.
    pub route_type: Option<String>,
    /// `src`: preferred source address.
    pub src: Option<IpAddr>,
    /// `via`: the gateway.
    pub via: Option<IpAddr>,
    /// `dev`: the interface.
    pub dev: Option<String>,
    /// `table`.
    pub table: Option<String>,
    /// `metric`.
    pub metric: Option<u32>,
    /// `scope`.
    pub scope: Option<String>,
    /// `no_track`: its loss does not put the instance in FAULT.
    pub no_track: bool,
    /// Static routes: `track_group`.
    pub track_group: Option<String>,
    /// Every word after the destination, verbatim.
    pub options: Vec<String>,
    /// Where it is written, for diagnostics.
    pub span: Span,
}

/// One line of virtual_rules / static_rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleEntry {
    /// `from`: source prefix.
    pub from: Option<IpPrefix>,
    /// `to`: destination prefix.
    pub to: Option<IpPrefix>,
    /// `table` the rule looks up.
    pub table: Option<String>,
    /// `preference` (priority).
    pub preference: Option<u32>,
    /// Static rules: `track_group`.
    pub track_group: Option<String>,
    /// Every word, verbatim.
    pub options: Vec<String>,
    /// Where it is written, for diagnostics.
    pub span: Span,
}

/// Entry of an address group: a single address or a last-octet range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AddressRange {
    /// First address.
    pub first: IpAddr,
    /// Last address (same as `first` for a single one).
    pub last: IpAddr,
    /// Prefix length, when written.
    pub prefix_len: Option<u8>,
    /// DPVS: the DPDK device after the address (`192.168.100.200 dpdk0`).
    pub interface: Option<String>,
    /// DPVS deny/allow groups may name an ipset (`ipset:NAME`).
    pub ipset: Option<String>,
    /// Where it is written, for diagnostics.
    pub span: Span,
}

/// local_address_group / deny_address_group / allow_address_group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AddressGroup {
    /// The group's name, referred to by virtual servers.
    pub name: String,
    /// Its addresses and ranges, in file order.
    pub entries: Vec<AddressRange>,
    /// Where the block starts, for diagnostics.
    pub span: Span,
}

/// DPVS `tunnel_group NAME { tunnel_entry NAME { kind; remote; local; if } }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TunnelGroup {
    /// The group's name.
    pub name: String,
    /// Its `tunnel_entry` blocks.
    pub entries: Vec<TunnelEntry>,
    /// Where the block starts, for diagnostics.
    pub span: Span,
}

/// A DPVS `tunnel_entry`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TunnelEntry {
    /// The tunnel interface's name.
    pub name: String,
    /// `kind` (ipip, gre).
    pub kind: Option<String>,
    /// `remote` end.
    pub remote: Option<IpAddr>,
    /// `local` end.
    pub local: Option<IpAddr>,
    /// `if`: the underlying interface.
    pub interface: Option<String>,
    /// Keywords kept but not interpreted.
    pub extra: Vec<RawOption>,
    /// Where the block starts, for diagnostics.
    pub span: Span,
}
