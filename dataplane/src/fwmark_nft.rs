//! `xlvs fwmark import` of nftables rules: `nft list ruleset` output, where the marks fwmark
//! services match are set with `meta mark set N` in a chain hooked at prerouting (or input).
//! The subset the classifier can represent: `ip daddr` / `ip6 daddr` (address, prefix or set),
//! `tcp dport` / `udp dport` (port, range or set), `meta l4proto` / `ip protocol` /
//! `ip6 nexthdr` tcp or udp, `counter`, `comment`, and a final accept/continue/return. Any other
//! expression in a mark rule refuses the import with its line number (pure; no maps).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::fwmark::FwmarkRule;
use crate::fwmark_import::{Import, Imported, LineNote, port_range, prefix};
use crate::model::Protocol;

/// Whether `text` looks like `nft list ruleset` output (a `table` block first).
pub fn is_nft(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .is_some_and(|l| l.starts_with("table "))
}

/// Parses `nft list ruleset` output.
pub fn parse(text: &str) -> Result<Import, LineNote> {
    let mut out = Import::default();
    // (table family, hook of the current chain; None = a regular chain)
    let mut family = String::new();
    let mut hook: Option<String> = None;
    let mut chain = String::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let s = raw.trim();
        let words: Vec<&str> = s.split_whitespace().collect();
        match words.as_slice() {
            ["table", fam, _, "{"] => {
                family = fam.to_string();
                continue;
            }
            ["chain", name, "{"] => {
                chain = name.to_string();
                hook = None;
                continue;
            }
            ["type", _, "hook", h, ..] => {
                hook = Some(h.to_string());
                continue;
            }
            _ => {}
        }
        if !s.contains("mark set") {
            continue;
        }
        let refuse = |message: String| LineNote { line, message };
        match hook.as_deref() {
            Some("prerouting") | Some("input") => {}
            Some(h) => {
                out.skipped.push(LineNote {
                    line,
                    message: format!("skipped: mark set in a chain hooked at {h} does not mark packets arriving for IPVS"),
                });
                continue;
            }
            None => {
                return Err(refuse(format!(
                    "mark set in regular chain {chain}: jumps are not followed; write the rule in a prerouting chain"
                )));
            }
        }
        let families: &[bool] = match family.as_str() {
            "ip" => &[false],
            "ip6" => &[true],
            "inet" => &[false, true],
            other => {
                return Err(refuse(format!(
                    "mark set in a table of family {other}: only ip, ip6 and inet tables are imported"
                )));
            }
        };
        let rules = rule(s, families).map_err(refuse)?;
        out.imported.push(Imported { line, rules });
    }
    Ok(out)
}

/// Words of a rule with braces and commas as their own words, quoted strings as one.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for ch in s.chars() {
        match ch {
            '"' => {
                quoted = !quoted;
                cur.push(ch);
            }
            c if quoted => cur.push(c),
            '{' | '}' | ',' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                out.push(ch.to_string());
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// One value or `{ a, b, ... }`.
fn values<'a>(it: &mut impl Iterator<Item = &'a str>, what: &str) -> Result<Vec<&'a str>, String> {
    match it.next() {
        Some("{") => {
            let mut v = Vec::new();
            for w in it.by_ref() {
                match w {
                    "}" => return Ok(v),
                    "," => {}
                    w => v.push(w),
                }
            }
            Err(format!("unterminated set of {what}"))
        }
        Some(w) => Ok(vec![w]),
        None => Err(format!("{what} missing")),
    }
}

fn proto(name: &str) -> Result<Protocol, String> {
    match name {
        "tcp" | "6" => Ok(Protocol::Tcp),
        "udp" | "17" => Ok(Protocol::Udp),
        other => Err(format!(
            "protocol `{other}`: the classifier handles tcp and udp"
        )),
    }
}

fn rule(s: &str, families: &[bool]) -> Result<Vec<FwmarkRule>, String> {
    let words = words(s);
    let mut it = words.iter().map(String::as_str);
    let mut dests: Vec<(IpAddr, u8)> = Vec::new();
    let mut protos: Vec<Protocol> = Vec::new();
    let mut ports: Vec<(u16, u16)> = Vec::new();
    let mut mark = None;
    let set_proto = |p: Protocol, protos: &mut Vec<Protocol>| -> Result<(), String> {
        if !protos.is_empty() && !protos.contains(&p) {
            return Err("two different protocols in one rule".into());
        }
        protos.retain(|x| *x == p);
        if protos.is_empty() {
            protos.push(p);
        }
        Ok(())
    };
    while let Some(w) = it.next() {
        match (w, it.clone().next()) {
            ("ip", Some("daddr")) | ("ip6", Some("daddr")) => {
                it.next();
                for v in values(&mut it, "addresses")? {
                    if v == "!=" {
                        return Err("negated match `daddr !=` cannot be represented".into());
                    }
                    dests.push(prefix(v)?);
                }
            }
            ("ip", Some("protocol")) | ("ip6", Some("nexthdr")) | ("meta", Some("l4proto")) => {
                it.next();
                let v = values(&mut it, "protocols")?;
                if v.len() != 1 {
                    return Err(
                        "a set of protocols cannot be represented: one rule per protocol".into(),
                    );
                }
                set_proto(proto(v[0])?, &mut protos)?;
            }
            ("tcp", Some("dport")) | ("udp", Some("dport")) => {
                it.next();
                set_proto(proto(w)?, &mut protos)?;
                for v in values(&mut it, "ports")? {
                    if v == "!=" {
                        return Err("negated match `dport !=` cannot be represented".into());
                    }
                    ports.push(port_range(&v.replace('-', ":"))?);
                }
            }
            ("counter", _) => {
                if it.clone().next() == Some("packets") {
                    for _ in 0..4 {
                        it.next();
                    }
                }
            }
            ("comment", _) => {
                it.next();
            }
            ("meta", Some("mark")) | ("mark", Some("set")) => {
                if w == "meta" {
                    it.next();
                }
                if it.next() != Some("set") {
                    return Err("a mark match (`meta mark`) cannot be represented".into());
                }
                let v = it.next().ok_or("mark set without a value")?;
                let value = match v.strip_prefix("0x") {
                    Some(h) => u32::from_str_radix(h, 16),
                    None => v.parse(),
                }
                .map_err(|_| format!("mark set `{v}`: only a constant mark can be represented"))?;
                if matches!(
                    it.clone().next(),
                    Some("|" | "&" | "^" | "or" | "and" | "xor")
                ) {
                    return Err(format!(
                        "mark set {v} {}...: only a constant mark can be represented",
                        it.clone().next().unwrap_or("")
                    ));
                }
                if value == 0 {
                    return Err("mark 0 clears the mark: it cannot select a fwmark service".into());
                }
                mark = Some(value);
            }
            ("accept" | "continue" | "return", None) => {}
            (other, next) => {
                let what = match next {
                    Some(n) => format!("{other} {n}"),
                    None => other.to_string(),
                };
                return Err(format!(
                    "`{what}` cannot be represented (the classifier matches protocol, destination and destination ports)"
                ));
            }
        }
    }
    let mark = mark.ok_or("no constant `meta mark set`")?;
    if protos.is_empty() {
        if !ports.is_empty() {
            return Err("destination ports without a protocol".into());
        }
        protos = vec![Protocol::Tcp, Protocol::Udp];
    }
    if ports.is_empty() {
        ports.push((0, 65535));
    }
    if dests.is_empty() {
        for v6 in families {
            dests.push(if *v6 {
                (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)
            } else {
                (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
            });
        }
    }
    let mut out = Vec::new();
    for (net, plen) in &dests {
        for p in &protos {
            for range in &ports {
                out.push(FwmarkRule::new(mark, *p, *net, *plen, *range)?);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `nft list ruleset` output (nft 1.0.6) of a ruleset with mark rules.
    const RULESET: &str = "table inet lvs {
\tchain pre {
\t\ttype filter hook prerouting priority mangle; policy accept;
\t\tip daddr 198.18.100.1 tcp dport { 80, 443 } counter packets 0 bytes 0 meta mark set 0x00000001 comment \"web sticky\"
\t\tip6 daddr 2001:db8:100::/64 udp dport 5000-5010 meta mark set 0x00000007
\t\tmeta l4proto tcp ip daddr { 198.18.100.5, 198.18.101.0/24 } meta mark set 0x00000003 accept
\t\tip daddr 198.18.100.9 accept
\t}

\tchain out {
\t\ttype route hook output priority mangle; policy accept;
\t\tmeta mark set 0x00000009
\t}
}
";

    #[test]
    fn nft_mark_rules_become_classifier_rules() {
        assert!(is_nft(RULESET));
        assert!(!is_nft("*mangle\n"));
        let imp = parse(RULESET).unwrap();
        let got: Vec<String> = imp
            .rules()
            .iter()
            .map(|(l, r)| format!("{l}: {r}"))
            .collect();
        assert_eq!(
            got,
            [
                "4: --mark 1 -p tcp -d 198.18.100.1/32 --dport 80",
                "4: --mark 1 -p tcp -d 198.18.100.1/32 --dport 443",
                "5: --mark 7 -p udp -d 2001:db8:100::/64 --dport 5000:5010",
                "6: --mark 3 -p tcp -d 198.18.100.5/32",
                "6: --mark 3 -p tcp -d 198.18.101.0/24",
            ]
        );
        assert_eq!(imp.skipped.len(), 1);
        assert_eq!(imp.skipped[0].line, 12);
    }

    #[test]
    fn nft_rules_that_cannot_be_represented_are_refused_with_their_line() {
        let refused = |rule: &str| {
            let text = format!(
                "table ip t {{\n\tchain c {{\n\t\ttype filter hook prerouting priority mangle; policy accept;\n\t\t{rule}\n\t}}\n}}\n"
            );
            let e = parse(&text).unwrap_err();
            assert_eq!(e.line, 4, "{rule}");
            e.message
        };
        assert!(refused("ip saddr 198.18.1.0/24 meta mark set 0x1").contains("`ip saddr`"));
        assert!(refused("iifname \"eth0\" meta mark set 0x1").contains("`iifname \"eth0\"`"));
        assert!(refused("ip daddr != 198.18.0.1 meta mark set 0x1").contains("negated"));
        assert!(refused("meta mark set meta mark | 0x1").contains("constant"));
        assert!(refused("tcp dport 80 udp dport 53 meta mark set 0x1").contains("two different"));
        assert!(refused("meta l4proto icmp meta mark set 0x1").contains("icmp"));
        let regular = "table ip t {\n\tchain c {\n\t\tmeta mark set 0x1\n\t}\n}\n";
        assert!(
            parse(regular)
                .unwrap_err()
                .message
                .contains("regular chain c")
        );
    }
}
