//! The rule-set file (`xlvs fw save` / `restore`, and the record of the running set): JSON,
//! versioned.
//!
//! ```json
//! {"format": "xlvs-fw", "version": 1, "policy": "drop",
//!  "rules": [{"action": "allow", "src": "198.18.0.0/24", "proto": "tcp", "dport": "22"},
//!            {"action": "deny", "src": "198.18.7.1-198.18.7.9", "vip": "198.18.100.1"}],
//!  "icmp_limit": {"rate": "10/s", "burst": 20},
//!  "conn_limits": [{"vip": "198.18.100.1", "rate": "100/s", "burst": 200}]}
//! ```
//!
//! Every rule is checked as the command line checks it; the first bad one is named by its
//! number and text. A file of another format version, or cut short, is refused as a whole.

use serde::{Deserialize, Serialize};

use super::compile::Numbered;
use super::limit::{Limit, Limits};
use super::rule::{Action, Policy, Ports, Proto, Rule, Source};

/// The `format` field of a rule file.
pub const FORMAT: &str = "xlvs-fw";
/// The `version` field this build writes and reads.
pub const VERSION: u32 = 1;

/// A rule set: the default policy and the rules (ids: their counters; files written by `save`
/// carry none, the running set's record does).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleSet {
    /// Default policy for traffic no rule allows.
    pub policy: Policy,
    /// The rules, with their ids.
    pub rules: Vec<Numbered>,
    /// The rate limits (ICMP bucket, per-VIP connection budgets).
    pub limits: Limits,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    format: String,
    version: u32,
    #[serde(default)]
    policy: Policy,
    rules: Vec<RawRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    icmp_limit: Option<RawLimit>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    conn_limits: Vec<RawLimit>,
}

/// A rate limit: `vip` only (and always) for connection budgets.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    vip: Option<String>,
    rate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    burst: Option<u32>,
}

/// Only the header, to name the version of a file whose body we cannot read.
#[derive(Deserialize)]
struct Head {
    format: Option<String>,
    version: Option<u32>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<u32>,
    action: Action,
    src: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    proto: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dport: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    vip: Option<String>,
}

/// Reads a rule set; `what` names the file in errors. Ids are kept when `with_ids`.
pub fn parse(text: &str, what: &str, with_ids: bool) -> Result<RuleSet, String> {
    let doc: Doc = match serde_json::from_str(text) {
        Ok(d) => d,
        Err(e) => {
            if let Ok(h) = serde_json::from_str::<Head>(text) {
                check_head(h.format.as_deref(), h.version, what)?;
            }
            return Err(format!("{what}: not a rule set: {e}"));
        }
    };
    check_head(Some(&doc.format), Some(doc.version), what)?;
    let mut rules = Vec::with_capacity(doc.rules.len());
    for (i, raw) in doc.rules.into_iter().enumerate() {
        let rule = to_rule(&raw).map_err(|e| format!("{what}: rule {}: {e}", i + 1))?;
        let id = if with_ids {
            raw.id.unwrap_or(i as u32)
        } else {
            i as u32
        };
        rules.push(Numbered { id, rule });
    }
    let mut limits = Limits::default();
    if let Some(raw) = &doc.icmp_limit {
        if raw.vip.is_some() {
            return Err(format!(
                "{what}: icmp_limit: no \"vip\" (it is one limit for all ICMP)"
            ));
        }
        limits.icmp =
            Some(Limit::new(&raw.rate, raw.burst).map_err(|e| format!("{what}: icmp_limit: {e}"))?);
    }
    for (i, raw) in doc.conn_limits.iter().enumerate() {
        let at = |e: String| format!("{what}: conn_limits {}: {e}", i + 1);
        let vip = raw.vip.as_deref().ok_or_else(|| at("no \"vip\"".into()))?;
        let vip = vip
            .parse()
            .map_err(|_| at(format!("vip `{vip}` is no IPv4 or IPv6 address")))?;
        let limit = Limit::new(&raw.rate, raw.burst).map_err(at)?;
        if limits.conn.insert(vip, limit).is_some() {
            return Err(at(format!("vip {vip} has a budget already")));
        }
    }
    Ok(RuleSet {
        policy: doc.policy,
        rules,
        limits,
    })
}

fn check_head(format: Option<&str>, version: Option<u32>, what: &str) -> Result<(), String> {
    if format != Some(FORMAT) {
        return Err(format!(
            "{what}: not an xlvs firewall rule set (\"format\" is not \"{FORMAT}\")"
        ));
    }
    match version {
        Some(VERSION) => Ok(()),
        Some(v) => Err(format!(
            "{what}: format version {v} is not supported (this xlvs reads version {VERSION})"
        )),
        None => Err(format!("{what}: no format version")),
    }
}

/// Reads one rule given as a rule entry of the file (`{"action": "deny", "src": ...}`), as
/// the HTTP API takes it; `what` names it in errors. An `id` is ignored.
pub fn parse_rule(text: &str, what: &str) -> Result<Rule, String> {
    let raw: RawRule =
        serde_json::from_str(text).map_err(|e| format!("{what}: not a rule: {e}"))?;
    to_rule(&raw).map_err(|e| format!("{what}: {e}"))
}

fn to_rule(raw: &RawRule) -> Result<Rule, String> {
    let src: Source = raw.src.parse()?;
    let proto = raw.proto.as_deref().map(str::parse::<Proto>).transpose()?;
    let dport = raw.dport.as_deref().map(str::parse::<Ports>).transpose()?;
    let vip = raw
        .vip
        .as_deref()
        .map(|v| {
            v.parse()
                .map_err(|_| format!("--vip `{v}` is no IPv4 or IPv6 address"))
        })
        .transpose()?;
    Rule::new(raw.action, src, proto, dport, vip)
}

/// Writes a rule set (`with_ids`: the running set's record).
pub fn render(set: &RuleSet, with_ids: bool) -> String {
    let doc = Doc {
        format: FORMAT.into(),
        version: VERSION,
        policy: set.policy,
        rules: set
            .rules
            .iter()
            .map(|n| RawRule {
                id: with_ids.then_some(n.id),
                action: n.rule.action,
                src: n.rule.src.to_string(),
                proto: n.rule.proto.map(|p| p.name().to_string()),
                dport: n.rule.dport.map(|p| p.to_string()),
                vip: n.rule.vip.map(|v| v.to_string()),
            })
            .collect(),
        icmp_limit: set.limits.icmp.map(|l| raw_limit(None, &l)),
        conn_limits: set
            .limits
            .conn
            .iter()
            .map(|(vip, l)| raw_limit(Some(vip), l))
            .collect(),
    };
    let mut text = serde_json::to_string(&doc).expect("serialisable");
    text.push('\n');
    text
}

fn raw_limit(vip: Option<&std::net::IpAddr>, l: &Limit) -> RawLimit {
    RawLimit {
        vip: vip.map(|v| v.to_string()),
        rate: l.rate_text(),
        burst: Some(l.burst),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"format": "xlvs-fw", "version": 1, "policy": "drop",
        "rules": [{"action": "allow", "src": "198.18.0.0/24", "proto": "tcp", "dport": "22"},
                  {"action": "deny", "src": "198.18.7.1-198.18.7.9", "vip": "198.18.100.1"}]}"#;

    #[test]
    fn a_rule_set_reads_and_writes_back() {
        let set = parse(GOOD, "f.json", false).unwrap();
        assert_eq!(set.policy, Policy::Drop);
        assert_eq!(set.rules.len(), 2);
        assert_eq!(
            set.rules[1].rule.to_string(),
            "deny 198.18.7.1-198.18.7.9 --vip 198.18.100.1"
        );
        let again = parse(&render(&set, false), "again", false).unwrap();
        assert_eq!(again, set);
    }

    #[test]
    fn rate_limits_read_write_back_and_bad_ones_are_named() {
        let with = GOOD.replace(
            "\"rules\":",
            r#""icmp_limit": {"rate": "10/s", "burst": 20},
               "conn_limits": [{"vip": "198.18.100.1", "rate": "100/m"},
                               {"vip": "2001:db8::1", "rate": "5", "burst": 1}],
               "rules":"#,
        );
        let set = parse(&with, "f.json", false).unwrap();
        assert_eq!(set.limits.icmp.unwrap().to_string(), "10/s --burst 20");
        let vip: std::net::IpAddr = "198.18.100.1".parse().unwrap();
        assert_eq!(set.limits.conn[&vip].to_string(), "100/m --burst 100");
        assert_eq!(set.limits.conn.len(), 2);
        assert_eq!(parse(&render(&set, false), "again", false).unwrap(), set);

        let e = parse(&with.replace("100/m", "100/h"), "f.json", false).unwrap_err();
        assert_eq!(
            e,
            "f.json: conn_limits 1: rate `100/h`: `h` is no period (s or m: per second or minute)"
        );
        let e = parse(&with.replace("2001:db8::1", "198.18.100.1"), "f", false).unwrap_err();
        assert_eq!(e, "f: conn_limits 2: vip 198.18.100.1 has a budget already");
        let e = parse(&with.replace("\"burst\": 20", "\"burst\": 0"), "f", false).unwrap_err();
        assert!(e.starts_with("f: icmp_limit: burst 0:"), "{e}");
        let e = parse(&with.replace("icmp_limit", "icmp_limt"), "f", false).unwrap_err();
        assert!(e.contains("unknown field `icmp_limt`"), "{e}");
    }

    #[test]
    fn one_rule_entry_reads_and_bad_fields_are_named() {
        let r = parse_rule(
            r#"{"action": "deny", "src": "198.18.7.0/24", "proto": "udp", "dport": "53"}"#,
            "body",
        )
        .unwrap();
        assert_eq!(r.to_string(), "deny 198.18.7.0/24 -p udp --dport 53");
        let e = parse_rule(r#"{"action": "deny", "src": "198.18.7.0/33"}"#, "body").unwrap_err();
        assert!(
            e.starts_with("body: ") && e.contains("198.18.7.0/33"),
            "{e}"
        );
        let e = parse_rule(r#"{"action": "deny", "src": "x", "port": "1"}"#, "b").unwrap_err();
        assert!(e.contains("unknown field `port`"), "{e}");
        let e = parse_rule(r#"{"action": "drop", "src": "198.18.7.1"}"#, "b").unwrap_err();
        assert!(e.contains("unknown variant `drop`"), "{e}");
        let e = parse_rule(r#"{"action": "deny"}"#, "b").unwrap_err();
        assert!(e.contains("missing field `src`"), "{e}");
    }

    #[test]
    fn other_versions_truncation_and_bad_rules_are_named() {
        let e = parse(
            &GOOD.replace("\"version\": 1", "\"version\": 2"),
            "f.json",
            false,
        );
        assert_eq!(
            e.unwrap_err(),
            "f.json: format version 2 is not supported (this xlvs reads version 1)"
        );
        // Another version whose rules look different still says so.
        let v2 = r#"{"format": "xlvs-fw", "version": 2, "rules": {"v4": []}}"#;
        assert!(
            parse(v2, "f", false)
                .unwrap_err()
                .contains("format version 2")
        );
        let cut = &GOOD[..GOOD.len() - 20];
        let e = parse(cut, "f.json", false).unwrap_err();
        assert!(
            e.starts_with("f.json: not a rule set: EOF while parsing"),
            "{e}"
        );
        let e = parse(
            &GOOD.replace("198.18.7.1-198.18.7.9", "198.18.7.9-198.18.7.1"),
            "f.json",
            false,
        )
        .unwrap_err();
        assert_eq!(
            e,
            "f.json: rule 2: range `198.18.7.9-198.18.7.1` ends before it starts"
        );
        let e = parse(&GOOD.replace("\"22\"", "\"22:x\""), "f.json", false).unwrap_err();
        assert_eq!(e, "f.json: rule 1: `x` is no port (0-65535) in `22:x`");
        let e = parse(r#"{"version": 1, "rules": []}"#, "f", false).unwrap_err();
        assert!(e.contains("not an xlvs firewall rule set"), "{e}");
        let e = parse(&GOOD.replace("\"proto\"", "\"protocol\""), "f", false).unwrap_err();
        assert!(e.contains("unknown field `protocol`"), "{e}");
    }
}
