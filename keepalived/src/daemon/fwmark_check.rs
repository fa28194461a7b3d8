//! `virtual_server fwmark N` needs packets marked N, and with XDP no iptables rule marks them:
//! the xlvs classifier (`xlvs fwmark`) must. A fwmark virtual server no classifier rule feeds
//! would silently receive nothing, so the daemon warns about it (pure; see README "fwmark
//! services").

use dataplane::fwmark::FwmarkRule;
use dataplane::model::Family;
use keepalived_conf::model::{KeepalivedConfig, VirtualServer, VirtualServerAddress, VsgEntry};

/// One warning per fwmark virtual server (or `virtual_server_group` fwmark entry) whose mark
/// no rule of its family gives, naming its configuration line.
pub fn unfed(config: &KeepalivedConfig, rules: &[FwmarkRule]) -> Vec<String> {
    let fed =
        |mark: u32, family: Family| rules.iter().any(|r| r.mark == mark && r.family() == family);
    let mut out = Vec::new();
    for vs in &config.virtual_servers {
        let default = family_of(vs, None);
        let mut check = |mark: u32, family: Family, at: String, what: String| {
            if !fed(mark, family) {
                out.push(format!(
                    "{at}: {what}: no xlvs fwmark rule gives mark {mark} to {} packets, so \
                     this service receives none (add one: xlvs fwmark add --mark {mark} -p tcp \
                     -d VIP --dport PORTS, or xlvs fwmark import < iptables-save output)",
                    if family == Family::V6 { "IPv6" } else { "IPv4" }
                ));
            }
        };
        match &vs.address {
            VirtualServerAddress::Fwmark { mark } => check(
                *mark,
                default,
                vs.span.to_string(),
                format!("virtual_server fwmark {mark}"),
            ),
            VirtualServerAddress::Group { name } => {
                let Some(group) = config.virtual_server_group(name) else {
                    continue;
                };
                for e in &group.entries {
                    if let VsgEntry::Fwmark { mark, family, span } = e {
                        check(
                            *mark,
                            family_of(vs, family.as_deref()),
                            span.to_string(),
                            format!("virtual_server_group {name} fwmark {mark}"),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The family of a fwmark service as desired.rs programs it: the entry's, the virtual
/// server's `ip_family`, else its first real's.
fn family_of(vs: &VirtualServer, entry: Option<&str>) -> Family {
    match entry.or(vs.ip_family.as_deref()) {
        Some("inet6") => Family::V6,
        Some(_) => Family::V4,
        None => vs
            .real_servers
            .first()
            .map(|r| Family::of(&r.addr))
            .unwrap_or(Family::V4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::model::Protocol;

    fn config(text: &str) -> KeepalivedConfig {
        keepalived_conf::parse_str(text, "k.conf", &Default::default()).config
    }

    #[test]
    fn fwmark_services_without_a_rule_are_named_with_their_line() {
        let conf = config(
            "virtual_server fwmark 1 {\n  lb_kind NAT\n  real_server 198.18.2.2 0 {\n  }\n}\n\
             virtual_server fwmark 2 {\n  real_server 198.18.2.2 0 {\n  }\n}\n\
             virtual_server fwmark 3 {\n  ip_family inet6\n}\n\
             virtual_server 198.18.100.1 80 {\n}\n",
        );
        let rule = |mark, net: &str| {
            FwmarkRule::new(mark, Protocol::Tcp, net.parse().unwrap(), 32, (80, 80)).unwrap()
        };
        // Mark 1 is fed; 2 is not; 3 only has an IPv4 rule but is an IPv6 service.
        let w = unfed(&conf, &[rule(1, "198.18.100.1"), rule(3, "198.18.100.1")]);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].contains("k.conf:6:") && w[0].contains("virtual_server fwmark 2"),
            "{}",
            w[0]
        );
        assert!(
            w[1].contains("k.conf:10:") && w[1].contains("IPv6"),
            "{}",
            w[1]
        );
    }
}
