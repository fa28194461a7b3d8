//! The fwmark classifier (`xlvs fwmark`): XDP runs before netfilter, so packets carry no
//! iptables mark yet; these rules say which (protocol, destination prefix, destination-port
//! range) gets which mark, so fwmark services (`ipvsadm -A -f N`, keepalived
//! `virtual_server fwmark N`) can match.
//!
//! Rules are kept as configured in `FWMARK_RULES` (user space only) and compiled into
//! `FWMARK_CLASS`, an LPM trie keyed by (af, proto, prefix) whose entries list every port range
//! that applies to the prefix, those of shorter covering prefixes included, so the packet path
//! makes one longest-prefix lookup. Rules with different marks may not overlap (same protocol,
//! nested prefixes, intersecting port ranges): a packet has at most one mark, whatever the order.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;

use ebpf_common::{
    self as c, FWMARK_PREFIX_BASE, FwmarkPortRule, FwmarkPrefix, FwmarkRuleKey, FwmarkRules,
    MAX_FWMARK_PORT_RULES, MAX_FWMARK_RULES, Service, ServiceKey,
};

use crate::error::{Error, Result};
use crate::maps::{Maps, err};
use crate::model::{Family, Protocol, ip_to_words, words_to_ip};

/// One classifier rule: packets of `proto` to `net/plen`, destination port in
/// `port_lo..=port_hi`, get `mark`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FwmarkRule {
    /// The mark given.
    pub mark: u32,
    /// TCP or UDP.
    pub proto: Protocol,
    /// Destination network.
    pub net: IpAddr,
    /// Its prefix length.
    pub plen: u8,
    /// First destination port.
    pub port_lo: u16,
    /// Last destination port.
    pub port_hi: u16,
}

impl FwmarkRule {
    /// A rule, checked: mark 1.., TCP or UDP, prefix length within the family, lo <= hi.
    /// Host bits of `net` are cleared (as iptables does with `-d 198.18.0.10/24`).
    pub fn new(
        mark: u32,
        proto: Protocol,
        net: IpAddr,
        plen: u8,
        ports: (u16, u16),
    ) -> std::result::Result<FwmarkRule, String> {
        if mark == 0 {
            return Err("mark 0 is no mark: fwmark services have marks 1..4294967295".into());
        }
        if !matches!(proto, Protocol::Tcp | Protocol::Udp) {
            return Err(format!(
                "protocol {}: the classifier handles tcp and udp",
                proto.name().to_lowercase()
            ));
        }
        let max = max_plen(&net);
        if plen > max {
            return Err(format!("prefix length {plen} is longer than {max}"));
        }
        if ports.0 > ports.1 {
            return Err(format!(
                "port range {}:{} is empty (first > last)",
                ports.0, ports.1
            ));
        }
        Ok(FwmarkRule {
            mark,
            proto,
            net: mask(net, plen),
            plen,
            port_lo: ports.0,
            port_hi: ports.1,
        })
    }

    /// IPv4 or IPv6, from the network.
    pub fn family(&self) -> Family {
        Family::of(&self.net)
    }

    fn key(&self) -> FwmarkRuleKey {
        FwmarkRuleKey {
            mark: self.mark,
            af: self.family().raw(),
            proto: self.proto.number(),
            plen: self.plen,
            _pad: 0,
            addr: ip_to_words(&self.net),
            port_lo: self.port_lo,
            port_hi: self.port_hi,
        }
    }

    fn from_key(k: &FwmarkRuleKey) -> Option<FwmarkRule> {
        Some(FwmarkRule {
            mark: k.mark,
            proto: Protocol::from_number(k.proto)?,
            net: words_to_ip(&k.addr, Family::from_raw(k.af)),
            plen: k.plen,
            port_lo: k.port_lo,
            port_hi: k.port_hi,
        })
    }

    /// Whether `addr` is inside this rule's prefix.
    pub fn contains(&self, addr: &IpAddr) -> bool {
        Family::of(addr) == self.family() && mask(*addr, self.plen) == self.net
    }

    /// Same protocol, nested prefixes, intersecting port ranges: some packet matches both.
    pub fn overlaps(&self, o: &FwmarkRule) -> bool {
        self.proto == o.proto
            && self.family() == o.family()
            && (self.contains(&o.net) || o.contains(&self.net))
            && self.port_lo <= o.port_hi
            && o.port_lo <= self.port_hi
    }

    /// Whether this rule marks some packet to the (non-fwmark) service `key` (port 0: any port).
    fn covers_service(&self, key: &ServiceKey) -> bool {
        let port = u16::from_be(key.port);
        key.proto == self.proto.number()
            && key.af == self.family().raw()
            && self.contains(&words_to_ip(&key.addr, Family::from_raw(key.af)))
            && (port == 0 || (self.port_lo <= port && port <= self.port_hi))
    }
}

/// The stable listing format, which is also `xlvs fwmark add`'s syntax:
/// `--mark 1 -p tcp -d 198.18.0.10/32 --dport 80:443` (`--dport` left out for all ports).
impl fmt::Display for FwmarkRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "--mark {} -p {} -d {}/{}",
            self.mark,
            self.proto.name().to_lowercase(),
            self.net,
            self.plen
        )?;
        match (self.port_lo, self.port_hi) {
            (0, 65535) => Ok(()),
            (lo, hi) if lo == hi => write!(f, " --dport {lo}"),
            (lo, hi) => write!(f, " --dport {lo}:{hi}"),
        }
    }
}

fn max_plen(addr: &IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

/// `addr` with the bits after `plen` cleared.
fn mask(addr: IpAddr, plen: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = if plen == 0 {
                0
            } else {
                u32::MAX << (32 - plen.min(32) as u32)
            };
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = if plen == 0 {
                0
            } else {
                u128::MAX << (128 - plen.min(128) as u32)
            };
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

/// A rule that cannot be added: which one (index in the request) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Position of the rule in the request.
    pub index: usize,
    /// Why it was refused.
    pub message: String,
}

/// Checks `new` rules against `existing` ones and each other: no exact duplicate of an existing
/// rule, no overlap with another mark, at most [`MAX_FWMARK_PORT_RULES`] port ranges applying to
/// one prefix, at most [`MAX_FWMARK_RULES`] rules. Duplicates within `new` are allowed (they
/// collapse, as re-imported iptables rules would).
pub fn check(existing: &[FwmarkRule], new: &[FwmarkRule]) -> std::result::Result<(), Refused> {
    let refuse = |index, message| Err(Refused { index, message });
    for (i, r) in new.iter().enumerate() {
        if existing.contains(r) {
            return refuse(i, format!("rule exists already: {r}"));
        }
        let earlier = existing.iter().chain(new[..i].iter());
        if let Some(o) = earlier.filter(|o| o.mark != r.mark).find(|o| r.overlaps(o)) {
            return refuse(
                i,
                format!("{r} overlaps `{o}`, which gives another mark (rules may not overlap)"),
            );
        }
    }
    let all = merged(existing, new);
    if all.len() > MAX_FWMARK_RULES as usize {
        return refuse(
            new.len().saturating_sub(1),
            format!("more than {MAX_FWMARK_RULES} classifier rules"),
        );
    }
    if let Err((prefix, culprit)) = compile(&all) {
        let index = new.iter().rposition(|r| *r == culprit).unwrap_or(0);
        return refuse(
            index,
            format!(
                "more than {MAX_FWMARK_PORT_RULES} port ranges would apply to {prefix}: \
                 use fewer, wider ranges (or one prefix per range set)"
            ),
        );
    }
    Ok(())
}

/// The rule set after adding `new` to `existing`: sorted, without duplicates.
pub fn merged(existing: &[FwmarkRule], new: &[FwmarkRule]) -> Vec<FwmarkRule> {
    let mut all: Vec<FwmarkRule> = existing.iter().chain(new).copied().collect();
    all.sort();
    all.dedup();
    all
}

type Compiled = BTreeMap<(FwmarkPrefix, u32), FwmarkRules>;

/// The FWMARK_CLASS entries of a rule set: (prefix, prefix length) -> port ranges. Errors with
/// the prefix that would get too many ranges and one rule contributing to it.
fn compile(rules: &[FwmarkRule]) -> std::result::Result<Compiled, (String, FwmarkRule)> {
    let mut out = Compiled::new();
    for p in rules {
        let key = (prefix_of(p), FWMARK_PREFIX_BASE + p.plen as u32);
        if out.contains_key(&key) {
            continue;
        }
        let mut covering: Vec<&FwmarkRule> = rules
            .iter()
            .filter(|r| {
                r.proto == p.proto
                    && r.family() == p.family()
                    && r.plen <= p.plen
                    && r.contains(&p.net)
            })
            .collect();
        covering.sort_by_key(|r| (r.port_lo, r.port_hi, r.mark));
        covering.dedup_by_key(|r| (r.port_lo, r.port_hi, r.mark));
        if covering.len() > MAX_FWMARK_PORT_RULES as usize {
            let name = format!("{}/{} ({})", p.net, p.plen, p.proto.name().to_lowercase());
            return Err((name, **covering.last().expect("non-empty")));
        }
        let mut v = FwmarkRules::default();
        for (slot, r) in v.rules.iter_mut().zip(&covering) {
            *slot = FwmarkPortRule {
                port_lo: r.port_lo,
                port_hi: r.port_hi,
                mark: r.mark,
            };
        }
        v.count = covering.len() as u32;
        out.insert(key, v);
    }
    Ok(out)
}

fn prefix_of(r: &FwmarkRule) -> FwmarkPrefix {
    FwmarkPrefix {
        af: r.family().raw(),
        proto: r.proto.number(),
        _pad: [0; 2],
        addr: ip_to_words(&r.net),
    }
}

/// The configured rules, sorted (the listing order).
pub(crate) fn load(maps: &Maps) -> Result<Vec<FwmarkRule>> {
    let mut out = Vec::new();
    for item in maps.fwmark_rules.keys() {
        let k = item.map_err(|e| err("read FWMARK_RULES", e))?;
        out.extend(FwmarkRule::from_key(&k));
    }
    out.sort();
    Ok(out)
}

/// Whether some rule marks packets to the (non-fwmark) service `key`: the packet path then
/// asks the classifier before using the service (IPVS looks fwmark services up first).
pub(crate) fn covers(rules: &[FwmarkRule], key: &ServiceKey) -> bool {
    key.proto != c::PROTO_FWMARK && rules.iter().any(|r| r.covers_service(key))
}

/// `svc` with its SVC_F_FWMARK_FIRST flag as `rules` say.
pub(crate) fn with_flag(rules: &[FwmarkRule], key: &ServiceKey, mut svc: Service) -> Service {
    if covers(rules, key) {
        svc.flags |= c::SVC_F_FWMARK_FIRST;
    } else {
        svc.flags &= !c::SVC_F_FWMARK_FIRST;
    }
    svc
}

/// Replaces the rule set `old` by `new` (checked by the caller) in the maps, keeping the packet
/// path consistent: services that become covered are flagged before the classifier can mark
/// their packets, entries are written before stale ones go, and services no longer covered lose
/// their flag last (a flag without a matching rule only costs a lookup). Returns the services
/// whose value changed.
pub(crate) fn publish(
    maps: &mut Maps,
    services: &HashMap<ServiceKey, Service>,
    old: &[FwmarkRule],
    new: &[FwmarkRule],
) -> Result<Vec<(ServiceKey, Service)>> {
    let compiled = compile(new).map_err(|(prefix, _)| {
        Error::Fwmark(format!(
            "more than {MAX_FWMARK_PORT_RULES} port ranges apply to {prefix}"
        ))
    })?;
    let mut changed = Vec::new();
    let mut later = Vec::new();
    for (key, svc) in services {
        let updated = with_flag(new, key, *svc);
        if updated.flags == svc.flags {
            continue;
        }
        if updated.flags & c::SVC_F_FWMARK_FIRST != 0 {
            maps.services
                .insert(key, updated, 0)
                .map_err(|e| err("write SERVICES", e))?;
        } else {
            later.push((*key, updated));
        }
        changed.push((*key, updated));
    }
    for r in new.iter().filter(|r| !old.contains(r)) {
        maps.fwmark_rules
            .insert(r.key(), 0, 0)
            .map_err(|e| err("write FWMARK_RULES", e))?;
    }
    let stale: Vec<_> = maps
        .fwmark_class
        .keys()
        .filter_map(|k| k.ok())
        .filter(|k| !compiled.contains_key(&(k.data(), k.prefix_len())))
        .collect();
    // Ports newly covered lose their "free" bit before the classifier can mark their packets;
    // ports no longer covered get it back last.
    let (free_old, free_new) = (free_ports(old), free_ports(new));
    let both: Vec<_> = free_old
        .iter()
        .zip(&free_new)
        .map(|(a, b)| std::array::from_fn(|i| a[i] & b[i]))
        .collect();
    write_free_ports(maps, &free_old, &both)?;
    for ((prefix, plen), value) in &compiled {
        let key = aya::maps::lpm_trie::Key::new(*plen, *prefix);
        maps.fwmark_class
            .insert(&key, value, 0)
            .map_err(|e| err("write FWMARK_CLASS", e))?;
    }
    for key in stale {
        maps.fwmark_class
            .remove(&key)
            .map_err(|e| err("delete FWMARK_CLASS", e))?;
    }
    for r in old.iter().filter(|r| !new.contains(r)) {
        maps.fwmark_rules
            .remove(&r.key())
            .map_err(|e| err("delete FWMARK_RULES", e))?;
    }
    write_free_ports(maps, &both, &free_new)?;
    for (key, svc) in later {
        maps.services
            .insert(key, svc, 0)
            .map_err(|e| err("write SERVICES", e))?;
    }
    Ok(changed)
}

type PortWords = [u32; c::FWMARK_PORT_WORDS as usize];

/// FWMARK_PORTS_FREE of a rule set: a bit set for every (protocol, destination port) no rule
/// covers (see `ebpf_common::fwmark_port_bit`).
fn free_ports(rules: &[FwmarkRule]) -> Vec<PortWords> {
    let mut v = vec![[u32::MAX; c::FWMARK_PORT_WORDS as usize]; c::FWMARK_PORT_ENTRIES as usize];
    for r in rules {
        let udp = r.proto == Protocol::Udp;
        for port in r.port_lo..=r.port_hi {
            let (entry, word, bit) = c::fwmark_port_bit(udp, port);
            v[entry as usize][word as usize] &= !(1 << bit);
        }
    }
    v
}

/// Writes the entries of FWMARK_PORTS_FREE that differ between `from` and `to`. The map of a
/// program that has none written yet holds zeros (no port free), whatever `from` says: the
/// first publication writes every entry.
fn write_free_ports(maps: &mut Maps, from: &[PortWords], to: &[PortWords]) -> Result<()> {
    for (i, (a, b)) in from.iter().zip(to).enumerate() {
        let current = maps
            .fwmark_ports_free
            .get(&(i as u32), 0)
            .map_err(|e| err("read FWMARK_PORTS_FREE", e))?;
        if a == b && current == *b {
            continue;
        }
        maps.fwmark_ports_free
            .set(i as u32, b, 0)
            .map_err(|e| err("write FWMARK_PORTS_FREE", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(mark: u32, net: &str, plen: u8, ports: (u16, u16)) -> FwmarkRule {
        FwmarkRule::new(mark, Protocol::Tcp, net.parse().unwrap(), plen, ports).unwrap()
    }

    #[test]
    fn rules_are_checked_and_normalised() {
        let r = rule(1, "198.18.0.10", 24, (80, 443));
        assert_eq!(
            r.to_string(),
            "--mark 1 -p tcp -d 198.18.0.0/24 --dport 80:443"
        );
        assert_eq!(
            rule(2, "2001:db8::1", 128, (0, 65535)).to_string(),
            "--mark 2 -p tcp -d 2001:db8::1/128"
        );
        let bad = |m, p: Protocol, n: &str, l, ports| {
            FwmarkRule::new(m, p, n.parse().unwrap(), l, ports).unwrap_err()
        };
        assert!(bad(0, Protocol::Tcp, "198.18.0.1", 32, (1, 2)).contains("mark 0"));
        assert!(bad(1, Protocol::Sctp, "198.18.0.1", 32, (1, 2)).contains("sctp"));
        assert!(bad(1, Protocol::Tcp, "198.18.0.1", 33, (1, 2)).contains("33"));
        assert!(bad(1, Protocol::Tcp, "198.18.0.1", 32, (9, 2)).contains("9:2"));
    }

    #[test]
    fn overlapping_rules_with_other_marks_are_refused() {
        let existing = [rule(1, "198.18.0.0", 24, (80, 80))];
        // Nested prefix, same port, other mark: refused, naming both.
        let e = check(&existing, &[rule(2, "198.18.0.10", 32, (70, 90))]).unwrap_err();
        assert_eq!(e.index, 0);
        assert!(e.message.contains("overlaps `--mark 1"), "{}", e.message);
        // Same mark, other port, other protocol, disjoint prefix: fine.
        check(&existing, &[rule(1, "198.18.0.10", 32, (80, 80))]).unwrap();
        check(&existing, &[rule(2, "198.18.0.10", 32, (81, 443))]).unwrap();
        check(&existing, &[rule(2, "198.18.1.0", 24, (80, 80))]).unwrap();
        let udp = FwmarkRule::new(
            2,
            Protocol::Udp,
            "198.18.0.1".parse().unwrap(),
            32,
            (80, 80),
        );
        check(&existing, &[udp.unwrap()]).unwrap();
        // Exact duplicates of existing rules are refused; within a request they collapse.
        assert!(check(&existing, &existing).is_err());
        let r = rule(3, "198.18.5.0", 24, (1, 2));
        check(&existing, &[r, r]).unwrap();
        // Overlap between two new rules: the second is blamed.
        let e = check(&[], &[r, rule(4, "198.18.5.5", 32, (2, 3))]).unwrap_err();
        assert_eq!(e.index, 1);
    }

    #[test]
    fn entries_carry_the_ranges_of_covering_prefixes() {
        let rules = merged(
            &[],
            &[
                rule(1, "198.18.0.0", 16, (443, 443)),
                rule(2, "198.18.0.10", 32, (80, 80)),
                rule(3, "198.18.0.0", 24, (8000, 8080)),
            ],
        );
        let compiled = compile(&rules).unwrap();
        assert_eq!(compiled.len(), 3);
        let host = compiled
            .iter()
            .find(|((_, plen), _)| *plen == FWMARK_PREFIX_BASE + 32)
            .unwrap()
            .1;
        let got: Vec<_> = host.rules[..host.count as usize]
            .iter()
            .map(|r| (r.port_lo, r.port_hi, r.mark))
            .collect();
        assert_eq!(got, [(80, 80, 2), (443, 443, 1), (8000, 8080, 3)]);
        // Too many ranges under one prefix: refused, naming it.
        let many: Vec<_> = (0..17).map(|i| rule(1, "198.18.9.0", 24, (i, i))).collect();
        let e = check(&[], &many).unwrap_err();
        assert!(e.message.contains("198.18.9.0/24 (tcp)"), "{}", e.message);
    }

    #[test]
    fn ports_no_rule_covers_are_free_per_protocol() {
        let free = free_ports(&[
            rule(1, "198.18.0.0", 16, (80, 80)),
            rule(2, "198.18.5.0", 24, (8000, 8100)),
        ]);
        let is_free = |udp: bool, port: u16| {
            let (e, w, b) = c::fwmark_port_bit(udp, port);
            free[e as usize][w as usize] >> b & 1 != 0
        };
        for port in [80, 8000, 8050, 8100] {
            assert!(!is_free(false, port), "tcp {port}");
        }
        for port in [0, 22, 79, 81, 7999, 8101, 65535] {
            assert!(is_free(false, port), "tcp {port}");
        }
        // The rules are TCP ones: every UDP port is free.
        assert!((0..=65535u16).all(|p| is_free(true, p)));
        // No rule: everything is free.
        assert!(
            free_ports(&[])
                .iter()
                .all(|e| e.iter().all(|w| *w == u32::MAX))
        );
    }

    #[test]
    fn services_under_a_rule_are_flagged_for_fwmark_first() {
        let rules = [rule(1, "198.18.0.0", 24, (80, 443))];
        let key = |addr: &str, port: u16| ServiceKey {
            addr: ip_to_words(&addr.parse().unwrap()),
            port: port.to_be(),
            proto: c::IPPROTO_TCP,
            af: c::AF_INET,
        };
        assert!(covers(&rules, &key("198.18.0.10", 80)));
        assert!(
            covers(&rules, &key("198.18.0.10", 0)),
            "port zero: any port"
        );
        assert!(!covers(&rules, &key("198.18.0.10", 22)));
        assert!(!covers(&rules, &key("198.18.1.10", 80)));
        let fwm = ServiceKey {
            addr: [1, 0, 0, 0],
            port: 0,
            proto: c::PROTO_FWMARK,
            af: c::AF_INET,
        };
        assert!(!covers(&rules, &fwm));
    }
}
