//! Alibaba / DPVS additions: address groups and tunnel groups.

use super::Parser;
use super::values::{parse_ip, parse_range};
use crate::diag::DiagKind;
use crate::lexer::Line;
use crate::model::{AddressGroup, AddressRange, TunnelEntry, TunnelGroup};

impl<'a> Parser<'a> {
    /// `local_address_group NAME { IP | IP-RANGE [IFNAME] | ipset:NAME }`
    /// (also deny_/allow_address_group).
    pub(crate) fn address_group(&mut self, l: &'a Line) -> Option<AddressGroup> {
        let Some(name) = self.read_string(l, 1) else {
            self.skip_block();
            return None;
        };
        let mut g = AddressGroup {
            name,
            entries: Vec::new(),
            span: l.span.clone(),
        };
        for it in self.value_block_after(l, 2) {
            let w = it.first();
            if let Some(set) = w.strip_prefix("ipset:") {
                g.entries.push(AddressRange {
                    first: std::net::IpAddr::from([0, 0, 0, 0]),
                    last: std::net::IpAddr::from([0, 0, 0, 0]),
                    prefix_len: None,
                    interface: None,
                    ipset: Some(set.to_string()),
                    span: it.span.clone(),
                });
                continue;
            }
            let (addr, prefix_len) = match w.split_once('/') {
                Some((a, p)) => (a, p.parse::<u8>().ok()),
                None => (w, None),
            };
            match parse_range(addr) {
                Some((first, last)) => g.entries.push(AddressRange {
                    first,
                    last,
                    prefix_len,
                    interface: it.word(1).map(str::to_string),
                    ipset: None,
                    span: it.span.clone(),
                }),
                None => {
                    let msg = match addr.rsplit_once('-') {
                        Some((_, n)) if parse_ip(addr).is_none() => {
                            format!("invalid: local IP address range {n}")
                        }
                        _ => format!("invalid address {w} in address group {}", g.name),
                    };
                    self.warn(DiagKind::InvalidValue, it, msg);
                }
            }
        }
        Some(g)
    }

    /// DPVS `tunnel_group NAME { tunnel_entry NAME { kind; remote; local; if } }`.
    pub(crate) fn tunnel_group(&mut self, l: &'a Line) {
        let Some(name) = self.read_string(l, 1) else {
            self.skip_block();
            return;
        };
        let mut g = TunnelGroup {
            name,
            entries: Vec::new(),
            span: l.span.clone(),
        };
        self.sub_block(&mut |p: &mut Parser<'a>, l: &'a Line| {
            if l.first() != "tunnel_entry" {
                return false;
            }
            let mut e = TunnelEntry {
                name: l.word(1).unwrap_or("").to_string(),
                kind: None,
                remote: None,
                local: None,
                interface: None,
                extra: Vec::new(),
                span: l.span.clone(),
            };
            p.sub_block(&mut |p: &mut Parser<'a>, l: &'a Line| {
                match l.first() {
                    "kind" => e.kind = p.read_string(l, 1),
                    "remote" => e.remote = p.read_ip(l, 1),
                    "local" => e.local = p.read_ip(l, 1),
                    "if" => e.interface = p.read_string(l, 1),
                    _ => {
                        let o = p.raw_option(l, false);
                        e.extra.push(o);
                    }
                }
                true
            });
            g.entries.push(e);
            true
        });
        self.config.tunnel_groups.push(g);
    }
}
