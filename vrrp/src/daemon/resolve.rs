//! keepalived.conf address, route and rule lines → what netlink is asked for (interface
//! names to indexes, keepalived's defaults). Shared by instances and the static ones.

use keepalived_conf::model::{IpAddressEntry, RouteEntry, RuleEntry};

use crate::config;
use crate::netlink::{Route, Rule, Vip, scope_number};

/// An address line; without `dev` it goes on `default_if` (index `fallback_index` when the
/// name cannot be resolved yet).
pub(crate) fn vip(e: &IpAddressEntry, default_if: &str, fallback_index: u32) -> Vip {
    let ifname = e.dev.clone().unwrap_or_else(|| default_if.to_string());
    let ifindex = nix::net::if_::if_nametoindex(ifname.as_str()).unwrap_or(fallback_index);
    Vip {
        addr: e.address.addr,
        prefix_len: e.address.prefix_len,
        ifindex,
        ifname,
        broadcast: config::broadcast(e),
        scope: e.scope.as_deref().and_then(scope_number).unwrap_or(0),
        label: e.label.clone(),
        // keepalived adds IPv6 VIPs without duplicate address detection.
        nodad: e.address.addr.is_ipv6(),
    }
}

/// A rule line; one without addresses follows `v6_default`.
pub(crate) fn rule(r: &RuleEntry, v6_default: bool) -> Rule {
    Rule {
        v6: r.from.or(r.to).map_or(v6_default, |p| p.addr.is_ipv6()),
        from: r.from.map(|p| (p.addr, p.prefix_len)),
        to: r.to.map(|p| (p.addr, p.prefix_len)),
        table: config::table_number(r.table.as_deref()),
        preference: r.preference,
    }
}

/// A route line (None when it has no destination).
pub(crate) fn route(r: &RouteEntry) -> Option<Route> {
    let d = r.destination?;
    Some(Route {
        dst: d.addr,
        prefix_len: d.prefix_len,
        via: r.via,
        src: r.src,
        oif: r
            .dev
            .as_deref()
            .and_then(|n| nix::net::if_::if_nametoindex(n).ok()),
        table: config::table_number(r.table.as_deref()),
        metric: r.metric,
        scope: r.scope.as_deref().and_then(scope_number),
        kind: match r.route_type.as_deref() {
            Some("blackhole") => 6,
            Some("unreachable") => 7,
            Some("prohibit") => 8,
            _ => 1,
        },
    })
}
