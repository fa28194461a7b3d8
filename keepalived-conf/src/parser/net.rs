//! Address, route and rule lines (virtual_* and static_* blocks).

use super::Parser;
use super::values::{parse_ip, parse_prefix};
use crate::diag::DiagKind;
use crate::lexer::Line;
use crate::model::{IpAddressEntry, RouteEntry, RuleEntry};

const ROUTE_TYPES: &[&str] = &[
    "unicast",
    "blackhole",
    "unreachable",
    "prohibit",
    "local",
    "broadcast",
    "throw",
    "nat",
    "anycast",
    "multicast",
];

impl<'a> Parser<'a> {
    /// `IP[/MASK] [brd IP] [dev IF] [scope S] [label L] [peer IP] …`
    pub(crate) fn ip_address_entry(&mut self, l: &'a Line, _ctx: &str) -> Option<IpAddressEntry> {
        let w = l.first();
        let Some((address, implicit_prefix)) = parse_prefix(w) else {
            self.warn(
                DiagKind::InvalidValue,
                l,
                format!("VRRP parsed invalid IP {w}. skipping IP..."),
            );
            return None;
        };
        let mut e = IpAddressEntry {
            address,
            implicit_prefix,
            broadcast: None,
            dev: None,
            scope: None,
            label: None,
            peer: None,
            use_vmac: false,
            no_track: false,
            track_group: None,
            flags: Vec::new(),
            span: l.span.clone(),
        };
        let mut i = 1;
        while i < l.len() {
            let kw = l.word(i).unwrap_or("");
            let val = l.word(i + 1).map(str::to_string);
            let takes_value = matches!(
                kw,
                "brd"
                    | "broadcast"
                    | "dev"
                    | "scope"
                    | "label"
                    | "peer"
                    | "preferred_lft"
                    | "track_group"
            );
            if takes_value && val.is_none() {
                self.arg(l, i + 1);
                return None;
            }
            match kw {
                "brd" | "broadcast" => e.broadcast = val,
                "dev" => e.dev = val,
                "scope" => e.scope = val,
                "label" => e.label = val,
                "peer" => e.peer = val.as_deref().and_then(parse_prefix).map(|p| p.0),
                "preferred_lft" => e
                    .flags
                    .push(format!("preferred_lft {}", val.unwrap_or_default())),
                "track_group" => e.track_group = val,
                "use_vmac" => e.use_vmac = true,
                "no_track" => e.no_track = true,
                "home" | "-nodad" | "nodad" | "mngtmpaddr" | "noprefixroute" | "autojoin" => {
                    e.flags.push(kw.to_string())
                }
                _ => {
                    self.warn_at(
                        DiagKind::InvalidValue,
                        l,
                        i,
                        format!("Unknown configuration entry '{kw}' for ip address - ignoring"),
                    );
                }
            }
            i += if takes_value { 2 } else { 1 };
        }
        Some(e)
    }

    /// `[src IP] [TYPE] DEST [via IP] [dev IF] [table T] …`
    pub(crate) fn route_entry(&mut self, l: &'a Line) -> Option<RouteEntry> {
        self.route_entry_ctx(l, false)
    }

    pub(crate) fn route_entry_ctx(&mut self, l: &'a Line, track: bool) -> Option<RouteEntry> {
        let mut r = RouteEntry {
            destination: None,
            route_type: None,
            src: None,
            via: None,
            dev: None,
            table: None,
            metric: None,
            scope: None,
            no_track: false,
            track_group: None,
            options: Vec::new(),
            span: l.span.clone(),
        };
        let mut i = 0;
        if l.first() == "src" {
            r.src = l.word(1).and_then(parse_ip);
            i = 2;
        }
        if let Some(t) = l.word(i).filter(|t| ROUTE_TYPES.contains(t)) {
            r.route_type = Some(t.to_string());
            i += 1;
        }
        let dest = self.arg(l, i)?;
        let dest_prefix = if dest == "default" {
            parse_prefix("0.0.0.0/0")
        } else {
            parse_prefix(dest)
        };
        let Some((dp, _)) = dest_prefix else {
            self.warn(
                DiagKind::InvalidValue,
                l,
                format!("Invalid route destination {dest}"),
            );
            return None;
        };
        r.destination = Some(dp);
        i += 1;
        while i < l.len() {
            let kw = l.word(i).unwrap_or("");
            r.options.push(kw.to_string());
            let val = l.word(i + 1);
            match kw {
                "via" | "gw" | "or" => {
                    if kw == "gw" {
                        self.warn_at(
                            DiagKind::Deprecated,
                            l,
                            i,
                            "\"gw\" for routes is deprecated. Please use \"via\"",
                        );
                    } else if kw == "or" {
                        self.warn_at(
                            DiagKind::Deprecated,
                            l,
                            i,
                            "\"or\" for routes is deprecated. Please use \"nexthop\"",
                        );
                    }
                    if r.via.is_none() {
                        r.via = val.and_then(parse_ip);
                    }
                }
                "dev" => r.dev = val.map(str::to_string),
                "table" => r.table = val.map(str::to_string),
                "metric" | "priority" | "preference" => r.metric = val.and_then(|v| v.parse().ok()),
                "scope" => r.scope = val.map(str::to_string),
                "src" => r.src = val.and_then(parse_ip),
                "track_group" => r.track_group = val.map(str::to_string),
                "no_track" => {
                    r.no_track = true;
                    i += 1;
                    continue;
                }
                _ => {
                    i += 1;
                    continue;
                }
            }
            if let Some(v) = val {
                r.options.push(v.to_string());
            }
            i += 2;
        }
        if track && r.dev.is_none() && !r.no_track {
            self.warn(
                DiagKind::Semantic,
                l,
                format!(
                    "Warning - cannot track route {} with no interface specified, not tracking",
                    dp
                ),
            );
            r.no_track = true;
        }
        Some(r)
    }

    /// `from IP[/M] to IP[/M] table T [preference N] …`
    pub(crate) fn rule_entry(&mut self, l: &'a Line) -> Option<RuleEntry> {
        let mut r = RuleEntry {
            from: None,
            to: None,
            table: None,
            preference: None,
            track_group: None,
            options: Vec::new(),
            span: l.span.clone(),
        };
        let mut i = 0;
        while i < l.len() {
            let kw = l.word(i).unwrap_or("");
            let val = l.word(i + 1);
            r.options.push(kw.to_string());
            match kw {
                "from" | "to" => {
                    let v = val.unwrap_or("");
                    match parse_prefix(v)
                        .or_else(|| (v == "all").then(|| parse_prefix("0.0.0.0/0")).flatten())
                    {
                        Some((p, _)) => {
                            if kw == "from" {
                                r.from = Some(p)
                            } else {
                                r.to = Some(p)
                            }
                        }
                        None => {
                            self.warn(
                                DiagKind::InvalidValue,
                                l,
                                format!("Invalid rule {kw} address {v}"),
                            );
                            self.warn(
                                DiagKind::InvalidValue,
                                l,
                                format!("VRRP parsed invalid IP {v}. skipping IP..."),
                            );
                            return None;
                        }
                    }
                }
                "table" | "lookup" => r.table = val.map(str::to_string),
                "track_group" => r.track_group = val.map(str::to_string),
                "preference" | "prio" | "priority" | "pref" => {
                    r.preference = val.and_then(|v| v.parse().ok())
                }
                "no_track" | "not" | "l3mdev" => {
                    i += 1;
                    continue;
                }
                _ => {}
            }
            if let Some(v) = val {
                r.options.push(v.to_string());
            }
            i += 2;
        }
        if r.preference.is_none() {
            let pref = self.next_rule_preference;
            self.next_rule_preference = pref.saturating_sub(1);
            self.warn(
                DiagKind::Semantic,
                l,
                format!(
                    "Rule has no preference specified - setting to {pref}. This is probably not what you want."
                ),
            );
            r.preference = Some(pref);
        }
        Some(r)
    }
}
