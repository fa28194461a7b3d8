//! Crafting and checking Ethernet/IPv4/TCP/UDP frames for BPF_PROG_TEST_RUN tests and benchmarks:
//! frames are built with correct checksums, and decoded frames report whether theirs still are.

use std::net::Ipv4Addr;

pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;
pub const FIN: u8 = 0x01;
pub const RST: u8 = 0x04;

/// One's-complement sum of `data` (as big-endian 16-bit words) added to `sum`.
fn sum16(data: &[u8], mut sum: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    if let [last] = chunks.remainder() {
        sum += (*last as u32) << 8;
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn l4_checksum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: &[u8]) -> u16 {
    let mut pseudo = Vec::with_capacity(12);
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, proto]);
    pseudo.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    fold(sum16(l4, sum16(&pseudo, 0)))
}

/// Recomputes the IPv4 header checksum of an untagged Ethernet frame after a test changed the
/// header (the packet path drops IPv4 headers whose checksum is wrong, as the kernel does).
pub fn set_ipv4_checksum(frame: &mut [u8]) {
    let ihl = (frame[14] & 0x0f) as usize * 4;
    frame[24..26].copy_from_slice(&[0, 0]);
    let c = fold(sum16(&frame[14..14 + ihl], 0));
    frame[24..26].copy_from_slice(&c.to_be_bytes());
}

/// A frame to build.
#[derive(Clone, Debug)]
pub struct Frame {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub tcp_flags: u8,
    pub ttl: u8,
    pub payload: Vec<u8>,
    /// TCP sequence and acknowledgement numbers (1000 and 0 unless set).
    pub seq: u32,
    pub ack: u32,
    /// TCP options (padded to 4 bytes by the caller).
    pub tcp_options: Vec<u8>,
}

impl Frame {
    pub fn tcp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, flags: u8) -> Frame {
        Frame {
            src,
            dst,
            sport,
            dport,
            proto: TCP,
            tcp_flags: flags,
            ttl: 64,
            payload: Vec::new(),
            seq: 1000,
            ack: 0,
            tcp_options: Vec::new(),
        }
    }

    pub fn udp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Frame {
        Frame {
            src,
            dst,
            sport,
            dport,
            proto: UDP,
            tcp_flags: 0,
            ttl: 64,
            payload: payload.to_vec(),
            seq: 0,
            ack: 0,
            tcp_options: Vec::new(),
        }
    }

    /// Ethernet + IPv4 + TCP/UDP bytes with valid checksums.
    pub fn build(&self) -> Vec<u8> {
        let mut l4 = Vec::new();
        l4.extend_from_slice(&self.sport.to_be_bytes());
        l4.extend_from_slice(&self.dport.to_be_bytes());
        if self.proto == TCP {
            l4.extend_from_slice(&self.seq.to_be_bytes());
            l4.extend_from_slice(&self.ack.to_be_bytes());
            let doff = (5 + self.tcp_options.len() / 4) as u8;
            l4.extend_from_slice(&[doff << 4, self.tcp_flags]);
            l4.extend_from_slice(&64240u16.to_be_bytes()); // window
            l4.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent
            l4.extend_from_slice(&self.tcp_options);
        } else {
            l4.extend_from_slice(&((8 + self.payload.len()) as u16).to_be_bytes());
            l4.extend_from_slice(&[0, 0]);
        }
        l4.extend_from_slice(&self.payload);
        let csum = l4_checksum(self.src, self.dst, self.proto, &l4);
        let at = if self.proto == TCP { 16 } else { 6 };
        l4[at..at + 2].copy_from_slice(&csum.to_be_bytes());

        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
        ip.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, self.ttl, self.proto, 0, 0]);
        ip.extend_from_slice(&self.src.octets());
        ip.extend_from_slice(&self.dst.octets());
        let csum = fold(sum16(&ip, 0));
        ip[10..12].copy_from_slice(&csum.to_be_bytes());

        let mut frame = vec![0x02, 0, 0, 0, 0, 0xd1, 0x02, 0, 0, 0, 0, 0xc1, 0x08, 0x00];
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&l4);
        frame
    }
}

/// What a frame says, and whether its checksums are right.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
    pub ttl: u8,
    pub ip_checksum_ok: bool,
    pub l4_checksum_ok: bool,
}

/// Decodes an untagged Ethernet/IPv4/TCP-or-UDP frame (IHL 5).
pub fn decode(frame: &[u8]) -> Option<Decoded> {
    if frame.len() < 14 + 20 + 8 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..34];
    let tot = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    let l4 = frame.get(34..14 + tot)?;
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let proto = ip[9];
    let udp_no_csum = proto == UDP && l4[6..8] == [0, 0];
    Some(Decoded {
        src,
        dst,
        sport: u16::from_be_bytes([l4[0], l4[1]]),
        dport: u16::from_be_bytes([l4[2], l4[3]]),
        ttl: ip[8],
        ip_checksum_ok: fold(sum16(ip, 0)) == 0,
        l4_checksum_ok: udp_no_csum || l4_checksum(src, dst, proto, l4) == 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_frames_have_valid_checksums() {
        let a = Ipv4Addr::new(198, 18, 1, 2);
        let b = Ipv4Addr::new(198, 18, 100, 1);
        for f in [
            Frame::tcp(a, 1234, b, 80, SYN),
            Frame::udp(a, 5, b, 53, b"hello"),
        ] {
            let d = decode(&f.build()).unwrap();
            assert!(d.ip_checksum_ok && d.l4_checksum_ok);
            assert_eq!((d.src, d.dst), (a, b));
        }
        let mut bad = Frame::udp(a, 5, b, 53, b"x").build();
        bad[30] ^= 1;
        assert!(!decode(&bad).unwrap().ip_checksum_ok);
    }
}

/// An IPv6 frame to build (TCP or UDP, no extension headers).
#[derive(Clone, Debug)]
pub struct Frame6 {
    pub src: std::net::Ipv6Addr,
    pub dst: std::net::Ipv6Addr,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub tcp_flags: u8,
    pub hop_limit: u8,
    pub payload: Vec<u8>,
    pub seq: u32,
    pub ack: u32,
    pub tcp_options: Vec<u8>,
}

fn l4_checksum6(src: std::net::Ipv6Addr, dst: std::net::Ipv6Addr, proto: u8, l4: &[u8]) -> u16 {
    let mut pseudo = Vec::with_capacity(40);
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&(l4.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, proto]);
    fold(sum16(l4, sum16(&pseudo, 0)))
}

impl Frame6 {
    pub fn tcp(src: &str, sport: u16, dst: &str, dport: u16, flags: u8) -> Frame6 {
        Frame6 {
            src: src.parse().expect("IPv6 address"),
            dst: dst.parse().expect("IPv6 address"),
            sport,
            dport,
            proto: TCP,
            tcp_flags: flags,
            hop_limit: 64,
            payload: Vec::new(),
            seq: 1000,
            ack: 0,
            tcp_options: Vec::new(),
        }
    }

    /// Ethernet + IPv6 + TCP/UDP bytes with valid checksums.
    pub fn build(&self) -> Vec<u8> {
        let v4 = Frame {
            src: Ipv4Addr::UNSPECIFIED,
            dst: Ipv4Addr::UNSPECIFIED,
            sport: self.sport,
            dport: self.dport,
            proto: self.proto,
            tcp_flags: self.tcp_flags,
            ttl: 0,
            payload: self.payload.clone(),
            seq: self.seq,
            ack: self.ack,
            tcp_options: self.tcp_options.clone(),
        }
        .build();
        // Reuse the v4 builder's L4 bytes, then checksum them for IPv6.
        let mut l4 = v4[34..].to_vec();
        let at = if self.proto == TCP { 16 } else { 6 };
        l4[at..at + 2].copy_from_slice(&[0, 0]);
        let csum = l4_checksum6(self.src, self.dst, self.proto, &l4);
        l4[at..at + 2].copy_from_slice(&csum.to_be_bytes());
        let mut frame = vec![0x02, 0, 0, 0, 0, 0xd1, 0x02, 0, 0, 0, 0, 0xc1, 0x86, 0xdd];
        frame.extend_from_slice(&[0x60, 0, 0, 0]);
        frame.extend_from_slice(&(l4.len() as u16).to_be_bytes());
        frame.extend_from_slice(&[self.proto, self.hop_limit]);
        frame.extend_from_slice(&self.src.octets());
        frame.extend_from_slice(&self.dst.octets());
        frame.extend_from_slice(&l4);
        frame
    }
}

/// What an IPv6 frame says, and whether its L4 checksum is right.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded6 {
    pub src: std::net::Ipv6Addr,
    pub dst: std::net::Ipv6Addr,
    pub sport: u16,
    pub dport: u16,
    pub hop_limit: u8,
    pub l4_checksum_ok: bool,
}

/// Decodes an untagged Ethernet/IPv6/TCP-or-UDP frame without extension headers.
pub fn decode6(frame: &[u8]) -> Option<Decoded6> {
    if frame.len() < 14 + 40 + 8 || frame[12..14] != [0x86, 0xdd] {
        return None;
    }
    let ip = &frame[14..54];
    let plen = u16::from_be_bytes([ip[4], ip[5]]) as usize;
    let l4 = frame.get(54..54 + plen)?;
    let octets = |b: &[u8]| -> std::net::Ipv6Addr {
        let mut o = [0u8; 16];
        o.copy_from_slice(b);
        o.into()
    };
    let (src, dst) = (octets(&ip[8..24]), octets(&ip[24..40]));
    Some(Decoded6 {
        src,
        dst,
        sport: u16::from_be_bytes([l4[0], l4[1]]),
        dport: u16::from_be_bytes([l4[2], l4[3]]),
        hop_limit: ip[7],
        l4_checksum_ok: l4_checksum6(src, dst, ip[6], l4) == 0,
    })
}

/// An Ethernet/IPv4/ICMP error (`kind`, `code`) from `src` to `dst` quoting `quoted` (an IP packet,
/// cut to its IP header + 8 bytes as routers do), checksums valid.
pub fn icmp_error(src: Ipv4Addr, dst: Ipv4Addr, kind: u8, code: u8, quoted: &[u8]) -> Vec<u8> {
    let cut = &quoted[..quoted.len().min(28)];
    let mut icmp = vec![kind, code, 0, 0, 0, 0, 0x05, 0xdc]; // next-hop MTU 1500 for frag-needed
    icmp.extend_from_slice(cut);
    let csum = fold(sum16(&icmp, 0));
    icmp[2..4].copy_from_slice(&csum.to_be_bytes());
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&((20 + icmp.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0, 0, 64, 1, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let csum = fold(sum16(&ip, 0));
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
    let mut frame = vec![0x02, 0, 0, 0, 0, 0xd1, 0x02, 0, 0, 0, 0, 0xc1, 0x08, 0x00];
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(&icmp);
    frame
}

/// What an ICMP error frame says: outer addresses, the quoted packet's addresses and ports, and
/// whether the outer IP, ICMP and quoted IP checksums are right.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedIcmp {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub quoted_src: Ipv4Addr,
    pub quoted_dst: Ipv4Addr,
    pub quoted_sport: u16,
    pub quoted_dport: u16,
    pub checksums_ok: bool,
}

pub fn decode_icmp(frame: &[u8]) -> Option<DecodedIcmp> {
    let ip = frame.get(14..34)?;
    let tot = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    let icmp = frame.get(34..14 + tot)?;
    let q = icmp.get(8..36)?;
    let addr = |b: &[u8]| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
    Some(DecodedIcmp {
        src: addr(&ip[12..16]),
        dst: addr(&ip[16..20]),
        quoted_src: addr(&q[12..16]),
        quoted_dst: addr(&q[16..20]),
        quoted_sport: u16::from_be_bytes([q[20], q[21]]),
        quoted_dport: u16::from_be_bytes([q[22], q[23]]),
        checksums_ok: fold(sum16(ip, 0)) == 0
            && fold(sum16(icmp, 0)) == 0
            && fold(sum16(&q[..20], 0)) == 0,
    })
}

/// An Ethernet/IPv6/ICMPv6 error (`kind`, `code`) from `src` to `dst` quoting `quoted` (an IPv6
/// packet, cut to its header + 8 bytes), checksum valid.
pub fn icmp6_error(
    src: std::net::Ipv6Addr,
    dst: std::net::Ipv6Addr,
    kind: u8,
    code: u8,
    quoted: &[u8],
) -> Vec<u8> {
    let cut = &quoted[..quoted.len().min(48)];
    let mut icmp = vec![kind, code, 0, 0, 0, 0, 0x05, 0x00]; // MTU 1280 for packet-too-big
    icmp.extend_from_slice(cut);
    let csum = l4_checksum6(src, dst, 58, &icmp);
    icmp[2..4].copy_from_slice(&csum.to_be_bytes());
    let mut frame = vec![0x02, 0, 0, 0, 0, 0xd1, 0x02, 0, 0, 0, 0, 0xc1, 0x86, 0xdd];
    frame.extend_from_slice(&[0x60, 0, 0, 0]);
    frame.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    frame.extend_from_slice(&[58, 64]);
    frame.extend_from_slice(&src.octets());
    frame.extend_from_slice(&dst.octets());
    frame.extend_from_slice(&icmp);
    frame
}

/// What an ICMPv6 error frame says, and whether its checksum (pseudo-header included) is right.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedIcmp6 {
    pub src: std::net::Ipv6Addr,
    pub dst: std::net::Ipv6Addr,
    pub quoted_src: std::net::Ipv6Addr,
    pub quoted_dst: std::net::Ipv6Addr,
    pub quoted_sport: u16,
    pub quoted_dport: u16,
    pub checksum_ok: bool,
}

pub fn decode_icmp6(frame: &[u8]) -> Option<DecodedIcmp6> {
    if frame.get(12..14)? != [0x86, 0xdd] || *frame.get(20)? != 58 {
        return None;
    }
    let ip = frame.get(14..54)?;
    let plen = u16::from_be_bytes([ip[4], ip[5]]) as usize;
    let icmp = frame.get(54..54 + plen)?;
    let q = icmp.get(8..52)?;
    let addr = |b: &[u8]| -> std::net::Ipv6Addr {
        let mut o = [0u8; 16];
        o.copy_from_slice(&b[..16]);
        o.into()
    };
    let (src, dst) = (addr(&ip[8..24]), addr(&ip[24..40]));
    Some(DecodedIcmp6 {
        src,
        dst,
        quoted_src: addr(&q[8..24]),
        quoted_dst: addr(&q[24..40]),
        quoted_sport: u16::from_be_bytes([q[40], q[41]]),
        quoted_dport: u16::from_be_bytes([q[42], q[43]]),
        checksum_ok: l4_checksum6(src, dst, 58, icmp) == 0,
    })
}
