//! Stage 1: parse Ethernet (+ up to two VLAN tags), IPv4 or IPv6 (with up to four extension
//! headers) and the TCP/UDP ports, with a bounds check before every access. Anything we cannot
//! read precisely is handed to the kernel, never forwarded; so are fragments and ICMP/ICMPv6
//! (neighbour discovery always reaches the kernel).

use aya_ebpf::programs::XdpContext;
use core::mem::size_of;
use ebpf_common::{AF_INET, AF_INET6, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, counter};

pub const ETH_HLEN: usize = 14;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86DD;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88A8;

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;

/// Where the headers of a parsed packet are and what they say. Addresses and ports keep network
/// byte order (as raw words), exactly as they are compared with map keys.
pub struct Packet {
    pub l3_off: usize,
    pub l4_off: usize,
    pub af: u8,
    pub proto: u8,
    /// IPv4 in word 0, IPv6 in all four (network order).
    pub src: [u32; 4],
    pub dst: [u32; 4],
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
    /// TTL (IPv4) or hop limit (IPv6).
    pub ttl: u8,
    /// TOS (IPv4) or traffic class (IPv6).
    pub tos: u8,
    /// Length of the whole IP packet (host order): what IPVS counts as bytes.
    pub tot_len: u16,
    /// TCP header length with options (doff * 4); 0 for UDP.
    pub tcp_hdr_len: u8,
}

impl Packet {
    pub fn is_v6(&self) -> bool {
        self.af == AF_INET6
    }
}

/// Why a packet is handed to the kernel untouched (a counter index).
pub type PassReason = u32;

/// A pointer to a `T` at `off`, if the whole `T` lies inside the packet.
///
/// data/data_end are read with volatile loads so LLVM cannot drop this check as "implied" by
/// another one: the verifier proves each access from its own check, and cannot follow that
/// arithmetic between different variable offsets.
#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, off: usize) -> Option<*mut T> {
    let md = ctx.ctx;
    let start = unsafe { core::ptr::read_volatile(&(*md).data) } as usize;
    let end = unsafe { core::ptr::read_volatile(&(*md).data_end) } as usize;
    if start + off + size_of::<T>() > end {
        return None;
    }
    Some((start + off) as *mut T)
}

#[inline(always)]
fn read<T: Copy>(ctx: &XdpContext, off: usize) -> Result<T, PassReason> {
    match ptr_at::<T>(ctx, off) {
        Some(p) => Ok(unsafe { p.read_unaligned() }),
        None => Err(counter::PASS_MALFORMED),
    }
}

/// Offset of the IP header and the ethertype after up to two VLAN tags.
#[inline(always)]
pub fn l3(ctx: &XdpContext) -> Result<(usize, u16), PassReason> {
    let mut l3_off = ETH_HLEN;
    let mut ethertype = u16::from_be(read::<u16>(ctx, 12)?);
    // Up to two VLAN tags (802.1ad outer + 802.1Q inner).
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        ethertype = u16::from_be(read::<u16>(ctx, l3_off + 2)?);
        l3_off += 4;
        if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
            ethertype = u16::from_be(read::<u16>(ctx, l3_off + 2)?);
            l3_off += 4;
        }
    }
    Ok((l3_off, ethertype))
}

#[inline(always)]
pub fn parse(ctx: &XdpContext) -> Result<Packet, PassReason> {
    let (l3_off, ethertype) = l3(ctx)?;
    match ethertype {
        ETH_P_IP => parse_ipv4(ctx, l3_off),
        ETH_P_IPV6 => parse_ipv6(ctx, l3_off),
        _ => Err(counter::PASS_NOT_VIP),
    }
}

/// (af, destination) of an IPv4 or IPv6 packet, for policies on packets `parse` refused
/// (fragments).
#[inline(always)]
pub fn l3_destination(ctx: &XdpContext) -> Option<(u8, [u32; 4])> {
    let (l3_off, ethertype) = l3(ctx).ok()?;
    match ethertype {
        ETH_P_IP => Some((AF_INET, [read::<u32>(ctx, l3_off + 16).ok()?, 0, 0, 0])),
        ETH_P_IPV6 => Some((AF_INET6, read::<[u32; 4]>(ctx, l3_off + 24).ok()?)),
        _ => None,
    }
}

#[inline(always)]
fn parse_ipv4(ctx: &XdpContext, l3_off: usize) -> Result<Packet, PassReason> {
    // Fixed part of the IPv4 header: version/ihl, tos, tot_len, id, frag, ttl, proto, csum, src, dst.
    let vihl = read::<u8>(ctx, l3_off)?;
    if vihl >> 4 != 4 {
        return Err(counter::PASS_MALFORMED);
    }
    let ihl = ((vihl & 0x0f) as usize) * 4;
    if ihl < 20 {
        return Err(counter::PASS_MALFORMED);
    }
    let tos = read::<u8>(ctx, l3_off + 1)?;
    let tot_len = u16::from_be(read::<u16>(ctx, l3_off + 2)?);
    let frag = u16::from_be(read::<u16>(ctx, l3_off + 6)?);
    let ttl = read::<u8>(ctx, l3_off + 8)?;
    let proto = read::<u8>(ctx, l3_off + 9)?;
    let src = read::<u32>(ctx, l3_off + 12)?;
    let dst = read::<u32>(ctx, l3_off + 16)?;
    // The IP datagram must fit in the frame (padding after it is allowed).
    if (tot_len as usize) < ihl || l3_off + tot_len as usize > ctx.data_end() - ctx.data() {
        return Err(counter::PASS_MALFORMED);
    }
    if proto == IPPROTO_ICMP && frag & 0x3fff == 0 {
        // Maybe an error about one of our connections: icmp.rs decides.
        return Err(counter::ICMP_CANDIDATE);
    }
    if proto != IPPROTO_TCP && proto != IPPROTO_UDP {
        return Err(counter::PASS_NOT_VIP);
    }
    // MF set or a non-zero offset: only the kernel can reassemble.
    if frag & 0x3fff != 0 {
        return Err(counter::PASS_FRAGMENT);
    }
    let l4_off = l3_off + (ihl & 0x3c);
    let (sport, dport, tcp_flags, tcp_hdr_len) =
        parse_l4(ctx, proto, l4_off, tot_len as usize - ihl)?;
    Ok(Packet {
        l3_off,
        l4_off,
        af: AF_INET,
        proto,
        src: [src, 0, 0, 0],
        dst: [dst, 0, 0, 0],
        sport,
        dport,
        tcp_flags,
        ttl,
        tos,
        tot_len,
        tcp_hdr_len,
    })
}

/// Ports and TCP flags; `l4_len` is what the IP header says follows it.
#[inline(always)]
fn parse_l4(
    ctx: &XdpContext,
    proto: u8,
    l4_off: usize,
    l4_len: usize,
) -> Result<(u16, u16, u8, u8), PassReason> {
    let sport = read::<u16>(ctx, l4_off)?;
    let dport = read::<u16>(ctx, l4_off + 2)?;
    let mut tcp_flags = 0;
    let mut hdr_len = 0;
    if proto == IPPROTO_TCP {
        // The whole 20-byte TCP header must be there (the checksum at +16 is rewritten later).
        let doff = read::<u8>(ctx, l4_off + 12)? >> 4;
        if doff < 5 || l4_len < (doff as usize) * 4 {
            return Err(counter::PASS_MALFORMED);
        }
        tcp_flags = read::<u8>(ctx, l4_off + 13)?;
        hdr_len = doff * 4;
        read::<[u8; 20]>(ctx, l4_off)?;
    } else {
        if l4_len < 8 {
            return Err(counter::PASS_MALFORMED);
        }
        read::<[u8; 8]>(ctx, l4_off)?;
    }
    Ok((sport, dport, tcp_flags, hdr_len))
}

const IPPROTO_HOPOPTS: u8 = 0;
const IPPROTO_ROUTING: u8 = 43;
const IPPROTO_FRAGMENT: u8 = 44;
const IPPROTO_DSTOPTS: u8 = 60;

#[inline(always)]
fn parse_ipv6(ctx: &XdpContext, l3_off: usize) -> Result<Packet, PassReason> {
    let first = u32::from_be(read::<u32>(ctx, l3_off)?);
    if first >> 28 != 6 {
        return Err(counter::PASS_MALFORMED);
    }
    let tos = (first >> 20) as u8;
    let payload_len = u16::from_be(read::<u16>(ctx, l3_off + 4)?) as usize;
    let mut next = read::<u8>(ctx, l3_off + 6)?;
    let ttl = read::<u8>(ctx, l3_off + 7)?;
    let src = read::<[u32; 4]>(ctx, l3_off + 8)?;
    let dst = read::<[u32; 4]>(ctx, l3_off + 24)?;
    if l3_off + 40 + payload_len > ctx.data_end() - ctx.data() || payload_len > 0xffff - 40 {
        return Err(counter::PASS_MALFORMED);
    }
    // Extension headers (rare on TCP/UDP) go to the kernel: a variable-length walk would need
    // packet offsets the verifier cannot bound. Fragments are counted as such.
    match next {
        IPPROTO_TCP | IPPROTO_UDP => {}
        IPPROTO_FRAGMENT => return Err(counter::PASS_FRAGMENT),
        IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS => return Err(counter::PASS_IPV6_EXT),
        // ICMPv6 errors may be about a connection (icmp6.rs decides; neighbour discovery and
        // the rest go to the kernel from there).
        crate::icmp6::IPPROTO_ICMPV6 => return Err(counter::ICMP_CANDIDATE),
        _ => return Err(counter::PASS_NOT_VIP),
    }
    let l4_off = l3_off + 40;
    let (sport, dport, tcp_flags, tcp_hdr_len) = parse_l4(ctx, next, l4_off, payload_len)?;
    Ok(Packet {
        l3_off,
        l4_off,
        af: AF_INET6,
        proto: next,
        src,
        dst,
        sport,
        dport,
        tcp_flags,
        ttl,
        tos,
        tot_len: (40 + payload_len) as u16,
        tcp_hdr_len,
    })
}
