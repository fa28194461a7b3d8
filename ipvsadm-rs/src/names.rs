//! Addresses, ports and their names, as ipvsadm's parse_service / addrport_to_anyname handle them.
//! Names come from /etc/hosts and /etc/services only: xlvs never sends a DNS query on its own
//! (documented difference; `-n` output is byte-identical either way).

use std::fs;
use std::net::{IpAddr, Ipv4Addr};

use dataplane::model::Protocol;

/// `host[:port]`, `[v6]:port` or a bare IPv6 address (then no port), as parse_service does.
/// Returns (address, port if given).
pub fn parse_addr_port(s: &str, proto: Protocol) -> Option<(IpAddr, Option<u16>)> {
    if s.is_empty() || s.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        let addr: IpAddr = host.parse().ok()?;
        return Some((addr, Some(parse_port(port, proto)?)));
    }
    if let Ok(v6) = s.parse::<std::net::Ipv6Addr>() {
        return Some((IpAddr::V6(v6), None));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(parse_port(p, proto)?)),
        None => (s, None),
    };
    Some((host_addr(host)?, port))
}

/// A port number 0..65535 or a service name.
pub fn parse_port(s: &str, proto: Protocol) -> Option<u16> {
    if let Ok(n) = s.parse::<u32>() {
        return u16::try_from(n).ok();
    }
    service_port(s, proto)
}

/// IPv4 like inet_aton (a.b.c.d, a.b.c, a.b, a; decimal, octal, hex parts), IPv6, or a name
/// from /etc/hosts.
fn host_addr(s: &str) -> Option<IpAddr> {
    if let Some(v4) = inet_aton(s) {
        return Some(IpAddr::V4(v4));
    }
    if let Ok(a) = s.parse::<IpAddr>() {
        return Some(a);
    }
    hosts()
        .into_iter()
        .find(|(_, names)| names.iter().any(|n| n == s))
        .map(|(a, _)| a)
}

fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<u32> = s
        .split('.')
        .map(|p| {
            if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
                u32::from_str_radix(h, 16).ok()
            } else if p.len() > 1 && p.starts_with('0') {
                u32::from_str_radix(&p[1..], 8).ok()
            } else {
                p.parse().ok()
            }
        })
        .collect::<Option<_>>()?;
    let v = match parts.as_slice() {
        [a] => *a,
        [a, b] if *a < 256 && *b < (1 << 24) => a << 24 | b,
        [a, b, c] if *a < 256 && *b < 256 && *c < (1 << 16) => a << 24 | b << 16 | c,
        [a, b, c, d] if [a, b, c, d].iter().all(|x| **x < 256) => a << 24 | b << 16 | c << 8 | d,
        _ => return None,
    };
    Some(Ipv4Addr::from(v))
}

fn hosts() -> Vec<(IpAddr, Vec<String>)> {
    fs::read_to_string("/etc/hosts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let l = l.split('#').next()?;
            let mut it = l.split_whitespace();
            let addr: IpAddr = it.next()?.parse().ok()?;
            Some((addr, it.map(String::from).collect()))
        })
        .collect()
}

fn services() -> Vec<(String, u16, String)> {
    fs::read_to_string("/etc/services")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let l = l.split('#').next()?;
            let mut it = l.split_whitespace();
            let name = it.next()?.to_string();
            let (port, proto) = it.next()?.split_once('/')?;
            Some((name, port.parse().ok()?, proto.to_string()))
        })
        .collect()
}

fn proto_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

fn service_port(name: &str, proto: Protocol) -> Option<u16> {
    services()
        .into_iter()
        .find(|(n, _, p)| n == name && p == proto_name(proto))
        .map(|(_, port, _)| port)
}

/// The host name of `addr` (first /etc/hosts name), or the numeric form.
pub fn host_name(addr: IpAddr) -> String {
    hosts()
        .into_iter()
        .find(|(a, _)| *a == addr)
        .and_then(|(_, n)| n.into_iter().next())
        .unwrap_or_else(|| addr.to_string())
}

/// The service name of `port` for `proto`, or the number.
pub fn port_name(port: u16, proto: Protocol) -> String {
    services()
        .into_iter()
        .find(|(_, p, pr)| *p == port && pr == proto_name(proto))
        .map(|(n, _, _)| n)
        .unwrap_or_else(|| port.to_string())
}

/// `addr:port` as ipvsadm prints it: `[v6]:port` for IPv6, names unless numeric.
pub fn addr_port(addr: IpAddr, port: u16, proto: Protocol, numeric: bool) -> String {
    let (h, p) = if numeric {
        (addr.to_string(), port.to_string())
    } else {
        (host_name(addr), port_name(port, proto))
    };
    match addr {
        IpAddr::V6(_) if h.contains(':') => format!("[{h}]:{p}"),
        _ => format!("{h}:{p}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_service_rules() {
        let tcp = Protocol::Tcp;
        assert_eq!(
            parse_addr_port("198.18.0.1:80", tcp),
            Some(("198.18.0.1".parse().unwrap(), Some(80)))
        );
        assert_eq!(
            parse_addr_port("[2001:db8::1]:443", tcp),
            Some(("2001:db8::1".parse().unwrap(), Some(443)))
        );
        assert_eq!(
            parse_addr_port("2001:db8::1", tcp),
            Some(("2001:db8::1".parse().unwrap(), None))
        );
        assert_eq!(
            parse_addr_port("10.1", tcp),
            Some(("10.0.0.1".parse().unwrap(), None)),
            "inet_aton forms"
        );
        assert_eq!(parse_addr_port("1234", tcp), None, "all digits is refused");
        assert_eq!(parse_addr_port("198.18.0.1:70000", tcp), None);
    }
}
