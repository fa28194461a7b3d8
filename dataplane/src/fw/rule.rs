//! A firewall rule as the user writes it: verdict, source (prefix or range START-END),
//! optionally protocol, destination ports and the destination address it is scoped to. Parsing
//! of each part with errors that say what is wrong; `Display` gives the command-line form back.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::range;

/// What a rule does with the packets it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Let them through.
    Allow,
    /// Drop them.
    Deny,
}

impl Action {
    /// The action's word in `xlvs fw` commands and listings.
    pub fn name(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
        }
    }

    pub(crate) fn abi(self) -> u8 {
        match self {
            Action::Allow => ebpf_common::fw::ALLOW,
            Action::Deny => ebpf_common::fw::DENY,
        }
    }
}

/// The default verdict for traffic to this host (not to a VIP) that no rule matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// No rule needed: what matches no rule passes.
    #[default]
    Accept,
    /// Traffic to this host that no rule allows is dropped.
    Drop,
}

impl Policy {
    /// The policy's word in `xlvs fw` commands and listings.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Accept => "accept",
            Policy::Drop => "drop",
        }
    }
}

impl std::str::FromStr for Policy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "accept" => Ok(Policy::Accept),
            "drop" => Ok(Policy::Drop),
            _ => Err(format!("`{s}` is no policy (accept or drop)")),
        }
    }
}

/// Protocols a rule can name. `Icmp` is ICMP for IPv4 sources and ICMPv6 for IPv6 ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP / ICMPv6.
    Icmp,
}

impl Proto {
    /// The protocol's word in `xlvs fw` commands and listings.
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
        }
    }

    /// The IP protocol number for a source of this family.
    pub(crate) fn number(self, v6: bool) -> u8 {
        match self {
            Proto::Tcp => ebpf_common::IPPROTO_TCP,
            Proto::Udp => ebpf_common::IPPROTO_UDP,
            Proto::Icmp if v6 => 58,
            Proto::Icmp => ebpf_common::IPPROTO_ICMP,
        }
    }
}

impl std::str::FromStr for Proto {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            "icmp" | "icmpv6" | "icmp6" => Ok(Proto::Icmp),
            _ => Err(format!("`{s}` is no protocol (tcp, udp or icmp)")),
        }
    }
}

/// Where a rule's packets come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// Network address (host bits zero) and prefix length.
    Prefix(IpAddr, u8),
    /// First and last address, same family, first <= last.
    Range(IpAddr, IpAddr),
}

impl Source {
    /// Whether the source is an IPv6 address or prefix.
    pub fn is_v6(&self) -> bool {
        match self {
            Source::Prefix(a, _) | Source::Range(a, _) => a.is_ipv6(),
        }
    }

    /// The prefixes that make it up (one for a prefix; the fewest for a range), as
    /// (network in the family's bit space, length).
    pub fn prefixes(&self) -> Vec<(u128, u8)> {
        match *self {
            Source::Prefix(a, len) => vec![(to_bits(&a), len)],
            Source::Range(a, b) => {
                range::prefixes(to_bits(&a), to_bits(&b), if a.is_ipv6() { 128 } else { 32 })
            }
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Source::Prefix(a, len) if *len == bits_of(a) => write!(f, "{a}"),
            Source::Prefix(a, len) => write!(f, "{a}/{len}"),
            Source::Range(a, b) => write!(f, "{a}-{b}"),
        }
    }
}

impl std::str::FromStr for Source {
    type Err = String;
    /// `ADDR`, `ADDR/LEN` (host bits must be zero) or `START-END`.
    fn from_str(s: &str) -> Result<Self, String> {
        let addr = |t: &str| -> Result<IpAddr, String> {
            t.trim()
                .parse()
                .map_err(|_| format!("`{t}` is no IPv4 or IPv6 address (in source `{s}`)"))
        };
        if let Some((a, b)) = s.split_once('-') {
            let (a, b) = (addr(a)?, addr(b)?);
            if a.is_ipv6() != b.is_ipv6() {
                return Err(format!("range `{s}` mixes IPv4 and IPv6"));
            }
            if to_bits(&a) > to_bits(&b) {
                return Err(format!("range `{s}` ends before it starts"));
            }
            return Ok(Source::Range(a, b));
        }
        let (a, len) = match s.split_once('/') {
            Some((a, l)) => {
                let a = addr(a)?;
                let len: u8 = l
                    .parse()
                    .ok()
                    .filter(|n| *n <= bits_of(&a))
                    .ok_or_else(|| {
                        format!(
                            "`{l}` is no prefix length for {} (0-{}) in `{s}`",
                            if a.is_ipv6() { "IPv6" } else { "IPv4" },
                            bits_of(&a)
                        )
                    })?;
                (a, len)
            }
            None => {
                let a = addr(s)?;
                (a, bits_of(&a))
            }
        };
        let net = network(&a, len);
        if net != a {
            return Err(format!(
                "`{s}` has host bits set (the network is {net}/{len})"
            ));
        }
        Ok(Source::Prefix(a, len))
    }
}

/// Destination ports, inclusive, host order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ports(pub u16, pub u16);

impl fmt::Display for Ports {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.0 == self.1 {
            write!(f, "{}", self.0)
        } else {
            write!(f, "{}:{}", self.0, self.1)
        }
    }
}

impl std::str::FromStr for Ports {
    type Err = String;
    /// `N` or `N:M` (N <= M), 0-65535.
    fn from_str(s: &str) -> Result<Self, String> {
        let port = |t: &str| -> Result<u16, String> {
            t.parse()
                .map_err(|_| format!("`{t}` is no port (0-65535) in `{s}`"))
        };
        let (lo, hi) = match s.split_once(':') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => {
                let p = port(s)?;
                (p, p)
            }
        };
        if lo > hi {
            return Err(format!("port range `{s}` ends before it starts"));
        }
        Ok(Ports(lo, hi))
    }
}

/// One rule. Two rules with the same `matcher()` match the same packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rule {
    /// Allow or deny.
    pub action: Action,
    /// Source address or prefix matched.
    pub src: Source,
    /// Protocol matched; none: any.
    pub proto: Option<Proto>,
    /// Destination ports matched (TCP/UDP); none: any.
    pub dport: Option<Ports>,
    /// Only packets to this destination address (`--vip`); global otherwise.
    pub vip: Option<IpAddr>,
}

impl Rule {
    /// Checks what the parts cannot check alone.
    pub fn new(
        action: Action,
        src: Source,
        proto: Option<Proto>,
        dport: Option<Ports>,
        vip: Option<IpAddr>,
    ) -> Result<Rule, String> {
        let rule = Rule {
            action,
            src,
            proto,
            dport,
            vip,
        };
        if dport.is_some() && !matches!(proto, Some(Proto::Tcp | Proto::Udp)) {
            return Err(format!("`{rule}`: --dport needs -p tcp or -p udp"));
        }
        if let Some(v) = vip
            && v.is_ipv6() != src.is_v6()
        {
            return Err(format!(
                "`{rule}`: the source and --vip are of different families"
            ));
        }
        Ok(rule)
    }

    /// What the rule matches, without its verdict.
    pub fn matcher(&self) -> (Source, Option<Proto>, Option<Ports>, Option<IpAddr>) {
        (self.src, self.proto, self.dport, self.vip)
    }
}

impl fmt::Display for Rule {
    /// The command-line form: `deny 198.18.0.0/24 -p tcp --dport 80 --vip 198.18.100.1`.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} {}", self.action.name(), self.src)?;
        if let Some(p) = self.proto {
            write!(f, " -p {}", p.name())?;
        }
        if let Some(p) = self.dport {
            write!(f, " --dport {p}")?;
        }
        if let Some(v) = self.vip {
            write!(f, " --vip {v}")?;
        }
        Ok(())
    }
}

pub(crate) fn bits_of(a: &IpAddr) -> u8 {
    if a.is_ipv6() { 128 } else { 32 }
}

/// The address as a number in its family's bit space.
pub(crate) fn to_bits(a: &IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u32::from(*a) as u128,
        IpAddr::V6(a) => u128::from(*a),
    }
}

pub(crate) fn from_bits(v: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(v.into())
    } else {
        IpAddr::V4((v as u32).into())
    }
}

fn network(a: &IpAddr, len: u8) -> IpAddr {
    let bits = bits_of(a) as u32;
    let host = bits - len as u32;
    let v = to_bits(a);
    let net = if host >= 128 { 0 } else { v >> host << host };
    from_bits(net, a.is_ipv6())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(s: &str) -> Result<Source, String> {
        s.parse()
    }

    #[test]
    fn sources_parse_and_print_back() {
        for s in [
            "198.18.0.0/24",
            "198.18.0.7",
            "0.0.0.0/0",
            "2001:db8::/32",
            "2001:db8::1",
            "198.18.0.1-198.18.0.10",
            "2001:db8::1-2001:db8::ff",
        ] {
            assert_eq!(src(s).unwrap().to_string(), s);
        }
        assert_eq!(src("198.18.0.7/32").unwrap().to_string(), "198.18.0.7");
    }

    #[test]
    fn malformed_sources_say_what_is_wrong() {
        let err = |s: &str| src(s).unwrap_err();
        assert!(err("198.18.0.1/24").contains("host bits set (the network is 198.18.0.0/24)"));
        assert!(
            err("198.18.0.0/33").contains("no prefix length for IPv4 (0-32) in `198.18.0.0/33`")
        );
        assert!(err("2001:db8::/129").contains("(0-128)"));
        assert!(err("198.18.0.300").contains("`198.18.0.300` is no IPv4 or IPv6 address"));
        assert!(err("198.18.0.9-198.18.0.1").contains("ends before it starts"));
        assert!(err("198.18.0.1-2001:db8::1").contains("mixes IPv4 and IPv6"));
        assert!(err("").contains("no IPv4 or IPv6 address"));
        assert!(err("198.18.0.0/").contains("no prefix length"));
    }

    #[test]
    fn ports_parse() {
        assert_eq!("80".parse::<Ports>(), Ok(Ports(80, 80)));
        assert_eq!("1024:65535".parse::<Ports>(), Ok(Ports(1024, 65535)));
        assert!(
            "90:80"
                .parse::<Ports>()
                .unwrap_err()
                .contains("ends before")
        );
        assert!("65536".parse::<Ports>().unwrap_err().contains("no port"));
        assert!("x".parse::<Ports>().unwrap_err().contains("no port"));
        assert!("1:".parse::<Ports>().unwrap_err().contains("no port"));
    }

    #[test]
    fn rules_refuse_ports_without_tcp_or_udp_and_mixed_families() {
        let s = src("198.18.0.0/24").unwrap();
        let e = Rule::new(Action::Deny, s, None, Some(Ports(80, 80)), None).unwrap_err();
        assert!(e.contains("--dport needs -p tcp or -p udp"), "{e}");
        let e = Rule::new(
            Action::Deny,
            s,
            Some(Proto::Icmp),
            Some(Ports(80, 80)),
            None,
        )
        .unwrap_err();
        assert!(e.contains("--dport needs"), "{e}");
        let e = Rule::new(
            Action::Deny,
            s,
            None,
            None,
            Some("2001:db8::1".parse().unwrap()),
        )
        .unwrap_err();
        assert!(e.contains("different families"), "{e}");
        let r = Rule::new(
            Action::Allow,
            s,
            Some(Proto::Tcp),
            Some(Ports(80, 90)),
            Some("198.18.100.1".parse().unwrap()),
        )
        .unwrap();
        assert_eq!(
            r.to_string(),
            "allow 198.18.0.0/24 -p tcp --dport 80:90 --vip 198.18.100.1"
        );
    }
}
