//! Rules -> the entries of `FW_TRIE`. Each rule's source becomes prefixes; each prefix's entry
//! lists the rules to try there, in order: its own (a rule naming a protocol before one for
//! any protocol, then the narrower port range, then deny before allow), then those of every
//! shorter prefix covering it (longest prefix first), so one longest-prefix lookup in the
//! packet path decides. Rules scoped to a destination (`--vip`) get entries of their own, which
//! the packet path asks before the global ones.

use std::fmt;

use ebpf_common::{
    FW_KEY_BASE, FW_SCOPED_KEY_BASE, FwEntry, FwKey, FwMatch, FwScopedKey, MAX_FW_MATCHES,
};

use super::rule::{Rule, from_bits, to_bits};
use crate::model::ip_to_words;

/// A rule with its id (its counter's index in FW_HITS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Numbered {
    /// The rule's counter index in FW_HITS.
    pub id: u32,
    /// The rule.
    pub rule: Rule,
}

/// Why a rule set cannot be compiled.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Two rules match the same packets with opposite verdicts.
    Contradiction(Rule, Rule),
    /// A rule given twice.
    Repeated(Rule),
    /// More rules apply at one prefix than an entry holds.
    TooMany {
        /// The source prefix, as text.
        prefix: String,
        /// The rules that apply there.
        rules: Vec<Rule>,
    },
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Refused::Contradiction(a, b) => write!(
                f,
                "`{b}` contradicts `{a}`: they match the same packets with opposite verdicts \
                 (delete one first)"
            ),
            Refused::Repeated(r) => write!(f, "`{r}` is given twice"),
            Refused::TooMany { prefix, rules } => {
                write!(
                    f,
                    "more than {MAX_FW_MATCHES} rules apply to sources in {prefix} (its own and \
                     those of prefixes covering it): "
                )?;
                let texts: Vec<String> = rules.iter().map(|r| format!("`{r}`")).collect();
                write!(f, "{}", texts.join(", "))
            }
        }
    }
}

/// Which map an entry goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    /// FW_HOSTS: a whole source address, global.
    Hosts,
    /// FW_TRIE: a shorter source prefix, global.
    Prefixes,
    /// FW_SCOPED: rules for one destination address.
    Scoped,
}

/// One entry of the firewall's maps (its generation is chosen when it is written).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrieEntry {
    /// Which map the entry goes to.
    pub table: Table,
    /// AF_INET or AF_INET6.
    pub af: u8,
    /// Destination the rules are scoped to (scoped entries only).
    pub vip: [u32; 4],
    /// Source prefix, network-order words.
    pub src: [u32; 4],
    /// Source prefix length.
    pub len: u8,
    /// The rules that apply at this prefix, in the order they are tried.
    pub value: FwEntry,
}

impl TrieEntry {
    /// The key in FW_HOSTS / FW_TRIE.
    pub fn key(&self, generation: u8) -> FwKey {
        FwKey {
            generation,
            af: self.af,
            _pad: [0; 2],
            src: self.src,
        }
    }

    /// The key in FW_SCOPED.
    pub fn scoped_key(&self, generation: u8) -> FwScopedKey {
        FwScopedKey {
            generation,
            af: self.af,
            _pad: [0; 2],
            vip: self.vip,
            src: self.src,
        }
    }

    /// The LPM trie's prefix length of its key.
    pub fn prefix_len(&self) -> u32 {
        match self.table {
            Table::Scoped => FW_SCOPED_KEY_BASE + self.len as u32,
            _ => FW_KEY_BASE + self.len as u32,
        }
    }
}

/// The entries of a rule set.
#[derive(Debug, Default)]
pub struct Compiled {
    /// One per prefix (and per destination for scoped rules).
    pub entries: Vec<TrieEntry>,
}

impl Compiled {
    /// Whether any entry goes to `table`.
    pub fn has(&self, table: Table) -> bool {
        self.entries.iter().any(|e| e.table == table)
    }
}

/// (scoped, vip, IPv6, network, length): sorts every prefix after those covering it.
type Group = (bool, u128, bool, u128, u8);

/// Turns rules into map entries: each prefix holds its own rules and those of every prefix covering it.
pub fn compile(rules: &[Numbered]) -> Result<Compiled, Refused> {
    let mut items: Vec<(Group, FwMatch)> = Vec::with_capacity(rules.len());
    // Rules by id, for the errors only.
    let by_id = |id: u32| -> Rule {
        rules
            .iter()
            .find(|n| n.id == id)
            .map(|n| n.rule)
            .expect("a compiled id")
    };
    for n in rules {
        let r = &n.rule;
        let v6 = r.src.is_v6();
        let (lo, hi) = r.dport.map(|p| (p.0, p.1)).unwrap_or((0, u16::MAX));
        let m = FwMatch {
            id: n.id,
            port_lo: lo,
            port_hi: hi,
            proto: r.proto.map(|p| p.number(v6)).unwrap_or(0),
            action: r.action.abi(),
            _pad: [0; 2],
        };
        let vip = r.vip.as_ref().map(to_bits).unwrap_or(0);
        for (net, len) in r.src.prefixes() {
            items.push(((r.vip.is_some(), vip, v6, net, len), m));
        }
    }
    items.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| order(&a.1).cmp(&order(&b.1))));

    let mut out = Compiled {
        entries: Vec::with_capacity(items.len()),
    };
    // Prefixes covering the current one, with their full lists (innermost last).
    let mut stack: Vec<(Group, Vec<FwMatch>)> = Vec::new();
    let mut i = 0;
    while i < items.len() {
        let group = items[i].0;
        let mut j = i;
        while j < items.len() && items[j].0 == group {
            j += 1;
        }
        let own = &items[i..j];
        for w in own.windows(2) {
            let (a, b) = (&w[0].1, &w[1].1);
            if a.proto != b.proto || a.port_lo != b.port_lo || a.port_hi != b.port_hi {
                continue;
            }
            // Named in the order they were given: the later one repeats or contradicts the
            // earlier. (The same packets written differently, e.g. as a range and as a
            // prefix, with the same verdict, are only redundant: the first counts them.)
            let (first, later) = if a.id < b.id { (a, b) } else { (b, a) };
            let (first, later) = (by_id(first.id), by_id(later.id));
            if a.action != b.action {
                return Err(Refused::Contradiction(first, later));
            }
            if first == later {
                return Err(Refused::Repeated(later));
            }
        }
        while let Some((outer, _)) = stack.last() {
            if covers(outer, &group) {
                break;
            }
            stack.pop();
        }
        let mut list: Vec<FwMatch> = own.iter().map(|(_, m)| *m).collect();
        if let Some((_, outer)) = stack.last() {
            list.extend_from_slice(outer);
        }
        if list.len() > MAX_FW_MATCHES as usize {
            let mut seen = Vec::new();
            for m in &list {
                let r = by_id(m.id);
                if !seen.contains(&r) {
                    seen.push(r);
                }
            }
            return Err(Refused::TooMany {
                prefix: format!("{}/{}", from_bits(group.3, group.2), group.4),
                rules: seen,
            });
        }
        out.entries.push(entry(&group, &list));
        stack.push((group, list));
        i = j;
    }
    Ok(out)
}

/// The order of a prefix's own rules: a named protocol first, then the narrower port range,
/// then deny before allow.
fn order(m: &FwMatch) -> (bool, u32, u16, bool) {
    (
        m.proto == 0,
        (m.port_hi - m.port_lo) as u32,
        m.port_lo,
        m.action != ebpf_common::fw::DENY,
    )
}

fn covers(outer: &Group, inner: &Group) -> bool {
    if (outer.0, outer.1, outer.2) != (inner.0, inner.1, inner.2) || outer.4 > inner.4 {
        return false;
    }
    let bits = if outer.2 { 128 } else { 32 };
    let host = bits - outer.4 as u32;
    host >= 128 || outer.3 >> host == inner.3 >> host
}

fn entry(group: &Group, list: &[FwMatch]) -> TrieEntry {
    let (scoped, vip, v6, net, len) = *group;
    let mut value = FwEntry {
        count: list.len() as u32,
        ..Default::default()
    };
    value.matches[..list.len()].copy_from_slice(list);
    let bits = if v6 { 128 } else { 32 };
    TrieEntry {
        table: if scoped {
            Table::Scoped
        } else if len == bits {
            Table::Hosts
        } else {
            Table::Prefixes
        },
        af: if v6 {
            ebpf_common::AF_INET6
        } else {
            ebpf_common::AF_INET
        },
        vip: if scoped {
            ip_to_words(&from_bits(vip, v6))
        } else {
            [0; 4]
        },
        src: ip_to_words(&from_bits(net, v6)),
        len,
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fw::rule::{Action, Ports, Proto};

    fn rule(text: &str) -> Rule {
        super::super::parse_rule(text).unwrap()
    }

    fn numbered(texts: &[&str]) -> Vec<Numbered> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| Numbered {
                id: i as u32,
                rule: rule(t),
            })
            .collect()
    }

    fn ids(e: &TrieEntry) -> Vec<u32> {
        e.value.matches[..e.value.count as usize]
            .iter()
            .map(|m| m.id)
            .collect()
    }

    #[test]
    fn covering_rules_follow_the_longer_prefixes_own() {
        let c = compile(&numbered(&[
            "deny 0.0.0.0/0",
            "allow 198.18.0.0/16",
            "deny 198.18.5.0/24 -p tcp --dport 22",
            "allow 198.18.5.0/24",
            "allow 2001:db8::/32",
            "deny 198.18.5.7",
        ]))
        .unwrap();
        let lens: Vec<(u32, Vec<u32>)> = c.entries.iter().map(|e| (e.len as u32, ids(e))).collect();
        assert_eq!(
            lens,
            [
                (0, vec![0]),
                (16, vec![1, 0]),
                // Own rules: the one naming a protocol first; then the covering ones.
                (24, vec![2, 3, 1, 0]),
                (32, vec![5, 2, 3, 1, 0]),
                (32, vec![4]),
            ]
        );
        assert!(!c.has(Table::Scoped));
        let tables: Vec<Table> = c.entries.iter().map(|e| e.table).collect();
        use Table::*;
        assert_eq!(tables, [Prefixes, Prefixes, Prefixes, Hosts, Prefixes]);
    }

    #[test]
    fn ranges_become_their_prefixes_and_siblings_do_not_inherit() {
        let c = compile(&numbered(&[
            "deny 198.18.0.1-198.18.0.6",
            "allow 198.18.0.0/30",
        ]))
        .unwrap();
        let got: Vec<(String, Vec<u32>)> = c
            .entries
            .iter()
            .map(|e| {
                (
                    format!(
                        "{}/{}",
                        std::net::Ipv4Addr::from(e.src[0].to_ne_bytes()),
                        e.len
                    ),
                    ids(e),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("198.18.0.0/30".into(), vec![1]),
                ("198.18.0.1/32".into(), vec![0, 1]),
                ("198.18.0.2/31".into(), vec![0, 1]),
                ("198.18.0.4/31".into(), vec![0]),
                ("198.18.0.6/32".into(), vec![0]),
            ]
        );
    }

    #[test]
    fn contradictions_are_refused_naming_both_rules() {
        let e = compile(&numbered(&[
            "allow 198.18.0.0/24 -p tcp --dport 80",
            "deny 198.18.0.0-198.18.0.255 -p tcp --dport 80",
        ]))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "`deny 198.18.0.0-198.18.0.255 -p tcp --dport 80` contradicts \
             `allow 198.18.0.0/24 -p tcp --dport 80`: they match the same packets with opposite \
             verdicts (delete one first)"
        );
        let e = compile(&numbered(&["deny 198.18.0.0/24", "deny 198.18.0.0/24"])).unwrap_err();
        assert_eq!(e.to_string(), "`deny 198.18.0.0/24` is given twice");
        // The same packets in other words, same verdict: redundant, accepted.
        compile(&numbered(&[
            "deny 198.18.0.0/24",
            "deny 198.18.0.0-198.18.0.255",
        ]))
        .unwrap();
        // Overlapping but not the same: the narrower one goes first, no refusal.
        let c = compile(&numbered(&[
            "allow 198.18.0.0/24 -p tcp --dport 80:90",
            "deny 198.18.0.0/24 -p tcp --dport 85",
        ]))
        .unwrap();
        assert_eq!(ids(&c.entries[0]), [1, 0]);
    }

    #[test]
    fn scoped_rules_have_their_own_entries() {
        let c = compile(&numbered(&[
            "deny 198.18.0.0/16",
            "allow 198.18.0.0/24 --vip 198.18.100.1",
        ]))
        .unwrap();
        assert!(c.has(Table::Scoped));
        assert_eq!(c.entries.len(), 2);
        let scoped = c.entries.iter().find(|e| e.table == Table::Scoped).unwrap();
        // The global /16 does not cover the scoped /24: scoped entries stand alone.
        assert_eq!(ids(scoped), [1]);
    }

    #[test]
    fn too_many_rules_at_one_prefix_are_refused() {
        let texts: Vec<String> = (0..9)
            .map(|i| format!("deny 198.18.0.0/24 -p tcp --dport {}", 1000 + i))
            .collect();
        let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
        let e = compile(&numbered(&refs)).unwrap_err().to_string();
        assert!(
            e.starts_with("more than 8 rules apply to sources in 198.18.0.0/24"),
            "{e}"
        );
        let _ = (Action::Deny, Ports(1, 1), Proto::Tcp);
    }
}
