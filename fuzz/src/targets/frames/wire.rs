//! A reference reading of a frame, written from the packet path's documented rules (Ethernet,
//! up to two VLAN tags, IPv4 with options or IPv6 with up to four walked extension headers,
//! TCP/UDP), independent of the XDP code: what is unparsable, what is invalid, where the
//! headers are and whether the checksums are right. Also the checksum fix-ups the mutator
//! uses to make mutated frames valid again.

use std::net::IpAddr;

pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
pub const ICMP: u8 = 1;
pub const ICMPV6: u8 = 58;
pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;
pub const RST: u8 = 0x04;
pub const FIN: u8 = 0x01;

/// Whether this is a fragment, and which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frag {
    No,
    /// Offset 0 with more to come: carries the upper-layer header.
    First,
    /// A later fragment: no upper-layer header.
    Later,
}

/// The IP layer of a frame.
#[derive(Clone, Debug)]
pub struct Ip {
    pub l3_off: usize,
    pub v6: bool,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The upper-layer protocol (after IPv6 extension headers).
    pub proto: u8,
    pub l4_off: usize,
    /// End of the IP packet (the frame may carry padding after it).
    pub end: usize,
    pub ttl: u8,
    pub frag: Frag,
    /// IPv4 options or IPv6 extension headers present.
    pub options: bool,
    /// The IPv4 header checksum is right (IPv6: true).
    pub header_ok: bool,
}

/// The transport layer of a TCP/UDP packet.
#[derive(Clone, Debug)]
pub struct L4 {
    pub sport: u16,
    pub dport: u16,
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    /// None when it cannot be told (a first fragment holds part of the datagram).
    pub checksum_ok: Option<bool>,
    /// UDP without a checksum (valid in IPv4, invalid in IPv6).
    pub udp_zero: bool,
    /// The TCP options are well-formed: each runs inside the header with a length of at least
    /// 2 (EOL ends them, NOP is one byte). Always true for UDP.
    pub options_ok: bool,
}

/// What a frame is, by the documented rules.
#[derive(Clone, Debug)]
pub enum Parsed {
    /// Not IPv4/IPv6 (after up to two VLAN tags).
    NotIp,
    /// Unparsable: truncated or inconsistent headers.
    Malformed(&'static str),
    /// IP, but not a TCP/UDP packet the path reads ports from: ICMP, other protocols, later
    /// fragments, extension headers that are not walked.
    Other(Ip),
    Transport(Ip, L4),
}

impl Parsed {
    pub fn ip(&self) -> Option<&Ip> {
        match self {
            Parsed::Other(ip) | Parsed::Transport(ip, _) => Some(ip),
            _ => None,
        }
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// One's-complement sum of `data` as big-endian words, added to `sum`.
pub fn sum16(data: &[u8], mut sum: u64) -> u64 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// The folded, complemented sum: 0 when a block with its checksum in it is right.
pub fn fold(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The pseudo-header sum for an upper-layer packet of `len` bytes.
pub fn pseudo(src: &IpAddr, dst: &IpAddr, proto: u8, len: usize) -> u64 {
    let mut b = Vec::with_capacity(40);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            b.extend_from_slice(&s.octets());
            b.extend_from_slice(&d.octets());
            b.extend_from_slice(&[0, proto]);
            b.extend_from_slice(&(len as u16).to_be_bytes());
        }
        (s, d) => {
            b.extend_from_slice(&v6_octets(s));
            b.extend_from_slice(&v6_octets(d));
            b.extend_from_slice(&(len as u32).to_be_bytes());
            b.extend_from_slice(&[0, 0, 0, proto]);
        }
    }
    sum16(&b, 0)
}

fn v6_octets(a: &IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
    }
}

/// Offset of the IP header and the ethertype after up to two VLAN tags.
pub fn l3(frame: &[u8]) -> Result<(usize, u16), &'static str> {
    let mut off = 14;
    let mut ethertype = be16(frame, 12).ok_or("truncated Ethernet header")?;
    for _ in 0..2 {
        if ethertype != 0x8100 && ethertype != 0x88a8 {
            break;
        }
        ethertype = be16(frame, off + 2).ok_or("truncated VLAN tag")?;
        off += 4;
    }
    Ok((off, ethertype))
}

pub fn parse(frame: &[u8]) -> Parsed {
    match parse_inner(frame) {
        Ok(p) => p,
        Err(why) => Parsed::Malformed(why),
    }
}

fn parse_inner(frame: &[u8]) -> Result<Parsed, &'static str> {
    let (l3_off, ethertype) = l3(frame)?;
    match ethertype {
        0x0800 => ipv4(frame, l3_off),
        0x86dd => ipv6(frame, l3_off),
        _ => Ok(Parsed::NotIp),
    }
}

fn ipv4(frame: &[u8], l3_off: usize) -> Result<Parsed, &'static str> {
    let h = frame
        .get(l3_off..l3_off + 20)
        .ok_or("truncated IPv4 header")?;
    if h[0] >> 4 != 4 {
        return Err("IPv4 version");
    }
    let ihl = usize::from(h[0] & 0x0f) * 4;
    if ihl < 20 {
        return Err("IPv4 header length below 20");
    }
    let tot = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if tot < ihl || l3_off + tot > frame.len() {
        return Err("IPv4 total length");
    }
    let frag_field = u16::from_be_bytes([h[6], h[7]]);
    let frag = match (frag_field & 0x1fff, frag_field & 0x2000) {
        (0, 0) => Frag::No,
        (0, _) => Frag::First,
        _ => Frag::Later,
    };
    let ip = Ip {
        l3_off,
        v6: false,
        src: IpAddr::from([h[12], h[13], h[14], h[15]]),
        dst: IpAddr::from([h[16], h[17], h[18], h[19]]),
        proto: h[9],
        l4_off: l3_off + ihl,
        end: l3_off + tot,
        ttl: h[8],
        frag,
        options: ihl > 20,
        header_ok: fold(sum16(&frame[l3_off..l3_off + ihl], 0)) == 0,
    };
    transport(frame, ip)
}

fn ipv6(frame: &[u8], l3_off: usize) -> Result<Parsed, &'static str> {
    let h = frame
        .get(l3_off..l3_off + 40)
        .ok_or("truncated IPv6 header")?;
    if h[0] >> 4 != 6 {
        return Err("IPv6 version");
    }
    let end = l3_off + 40 + usize::from(u16::from_be_bytes([h[4], h[5]]));
    if end > frame.len() {
        return Err("IPv6 payload length");
    }
    let addr = |at: usize| {
        let mut o = [0u8; 16];
        o.copy_from_slice(&h[at..at + 16]);
        IpAddr::from(o)
    };
    let mut ip = Ip {
        l3_off,
        v6: true,
        src: addr(8),
        dst: addr(24),
        proto: h[6],
        l4_off: l3_off + 40,
        end,
        ttl: h[7],
        frag: Frag::No,
        options: false,
        header_ok: true,
    };
    // Extension headers, as the path walks them: at most four, hop-by-hop only first.
    let mut first = true;
    for step in 0..=4 {
        match ip.proto {
            0 if first => {}
            0 | 51 | 135 | 139 | 140 | 253 | 254 => return Ok(Parsed::Other(ip)),
            43 | 44 | 60 => {}
            _ => break,
        }
        first = false;
        ip.options = true;
        let off = ip.l4_off;
        let w = frame
            .get(off..off + 4)
            .ok_or("truncated extension header")?;
        let len = match ip.proto {
            43 if w[3] != 0 => return Ok(Parsed::Other(ip)),
            44 if ip.frag != Frag::No => return Ok(Parsed::Other(ip)),
            44 => {
                if off + 8 > end {
                    return Err("fragment header past the payload");
                }
                if u16::from_be_bytes([w[2], w[3]]) & 0xfff8 != 0 {
                    ip.frag = Frag::Later;
                    ip.proto = w[0];
                    ip.l4_off = off + 8;
                    return Ok(Parsed::Other(ip));
                }
                ip.frag = Frag::First;
                8
            }
            _ => 8 * (usize::from(w[1]) + 1),
        };
        if step == 4 {
            // A fifth header: more than the path walks.
            return Ok(Parsed::Other(ip));
        }
        ip.l4_off = off + len;
        if ip.l4_off > end {
            return Err("extension header past the payload");
        }
        ip.proto = w[0];
    }
    transport(frame, ip)
}

fn transport(frame: &[u8], ip: Ip) -> Result<Parsed, &'static str> {
    if ip.frag == Frag::Later || (ip.proto != TCP && ip.proto != UDP) {
        return Ok(Parsed::Other(ip));
    }
    let l4_len = ip.end - ip.l4_off;
    let b = &frame[ip.l4_off..ip.end];
    let (flags, seq, ack, options_ok) = if ip.proto == TCP {
        let doff = usize::from(frame.get(ip.l4_off + 12).ok_or("truncated TCP header")? >> 4);
        if doff < 5 || l4_len < doff * 4 {
            return Err("TCP data offset");
        }
        let ok = tcp_options_ok(&b[20..doff * 4]);
        (b[13], be32(b, 4).unwrap_or(0), be32(b, 8).unwrap_or(0), ok)
    } else {
        if l4_len < 8 {
            return Err("UDP header");
        }
        (0, 0, 0, true)
    };
    let udp_zero = ip.proto == UDP && b[6..8] == [0, 0];
    let checksum_ok = (ip.frag == Frag::No).then(|| {
        (udp_zero && !ip.v6) || fold(sum16(b, pseudo(&ip.src, &ip.dst, ip.proto, l4_len))) == 0
    });
    let l4 = L4 {
        sport: u16::from_be_bytes([b[0], b[1]]),
        dport: u16::from_be_bytes([b[2], b[3]]),
        flags,
        seq,
        ack,
        checksum_ok,
        udp_zero,
        options_ok,
    };
    Ok(Parsed::Transport(ip, l4))
}

fn tcp_options_ok(opts: &[u8]) -> bool {
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => return true,
            1 => i += 1,
            _ => match opts.get(i + 1) {
                Some(&len) if len >= 2 && i + usize::from(len) <= opts.len() => {
                    i += usize::from(len)
                }
                _ => return false,
            },
        }
    }
    true
}

/// Whether an ICMP/ICMPv6 message's checksum is right.
pub fn icmp_checksum_ok(frame: &[u8], ip: &Ip) -> bool {
    let b = &frame[ip.l4_off..ip.end];
    let start = if ip.v6 {
        pseudo(&ip.src, &ip.dst, ICMPV6, b.len())
    } else {
        0
    };
    fold(sum16(b, start)) == 0
}

/// Makes a frame's lengths and checksums right again after a mutation: with `lengths`, the IP
/// lengths cover the frame; the IPv4 header checksum; the TCP/UDP checksum of a whole datagram.
pub fn fix(frame: &mut [u8], lengths: bool) {
    let Ok((l3_off, ethertype)) = l3(frame) else {
        return;
    };
    if lengths {
        let rest = frame.len().saturating_sub(l3_off);
        match ethertype {
            0x0800 if rest >= 20 => frame[l3_off + 2..l3_off + 4]
                .copy_from_slice(&(rest.min(0xffff) as u16).to_be_bytes()),
            0x86dd if rest >= 40 => frame[l3_off + 4..l3_off + 6]
                .copy_from_slice(&((rest - 40).min(0xffff) as u16).to_be_bytes()),
            _ => {}
        }
    }
    if ethertype == 0x0800 && frame.len() >= l3_off + 20 {
        let ihl = usize::from(frame[l3_off] & 0x0f) * 4;
        if ihl >= 20 && frame.len() >= l3_off + ihl {
            frame[l3_off + 10..l3_off + 12].copy_from_slice(&[0, 0]);
            let c = fold(sum16(&frame[l3_off..l3_off + ihl], 0));
            frame[l3_off + 10..l3_off + 12].copy_from_slice(&c.to_be_bytes());
        }
    }
    let Parsed::Transport(ip, l4) = parse(frame) else {
        return;
    };
    if ip.frag != Frag::No || (l4.udp_zero && !ip.v6) {
        return;
    }
    let at = ip.l4_off + if ip.proto == TCP { 16 } else { 6 };
    frame[at..at + 2].copy_from_slice(&[0, 0]);
    let len = ip.end - ip.l4_off;
    let mut c = fold(sum16(
        &frame[ip.l4_off..ip.end],
        pseudo(&ip.src, &ip.dst, ip.proto, len),
    ));
    if c == 0 && ip.proto == UDP {
        c = 0xffff;
    }
    frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use xlvs_tests::packet::{Frame, Frame6, SYN as PSYN};

    #[test]
    fn frames_of_the_test_builders_parse_with_valid_checksums() {
        let v4 = Frame::tcp(
            "198.18.1.2".parse().unwrap(),
            40000,
            "198.18.100.1".parse().unwrap(),
            80,
            PSYN,
        )
        .build();
        let Parsed::Transport(ip, l4) = parse(&v4) else {
            panic!("{:?}", parse(&v4))
        };
        assert!(ip.header_ok && l4.checksum_ok == Some(true) && l4.flags == SYN);
        let v6 = Frame6::tcp("2001:db8:1::2", 40000, "2001:db8:100::1", 80, PSYN).build();
        let Parsed::Transport(ip, l4) = parse(&v6) else {
            panic!()
        };
        assert!(ip.v6 && l4.checksum_ok == Some(true) && (l4.sport, l4.dport) == (40000, 80));
    }

    #[test]
    fn fix_repairs_what_a_mutation_broke() {
        let mut f = Frame::udp(
            "198.18.1.2".parse().unwrap(),
            5000,
            "198.18.100.1".parse().unwrap(),
            53,
            b"query",
        )
        .build();
        f[14 + 8] = 7; // TTL: the IPv4 checksum is now wrong
        f.push(0); // and the IP length does not cover the frame
        let Parsed::Transport(ip, _) = parse(&f) else {
            panic!()
        };
        assert!(!ip.header_ok);
        fix(&mut f, true);
        let Parsed::Transport(ip, l4) = parse(&f) else {
            panic!()
        };
        assert!(ip.header_ok && ip.end == f.len() && l4.checksum_ok == Some(true));
    }

    #[test]
    fn unparsable_frames_are_told_apart_from_other_ip() {
        assert!(matches!(parse(&[0; 10]), Parsed::Malformed(_)));
        let mut f = Frame::tcp(
            "198.18.1.2".parse().unwrap(),
            1,
            "198.18.100.1".parse().unwrap(),
            80,
            PSYN,
        )
        .build();
        f[14 + 20 + 12] = 0x40; // data offset 4
        assert!(matches!(parse(&f), Parsed::Malformed("TCP data offset")));
        f[14 + 9] = 47; // GRE
        assert!(matches!(parse(&f), Parsed::Other(_)));
        f[12] = 0x08;
        f[13] = 0x06; // ARP
        assert!(matches!(parse(&f), Parsed::NotIp));
    }
}
