//! Stage 1: parse Ethernet (+ up to two VLAN tags), IPv4 and the TCP/UDP ports, with a bounds check
//! before every access. Anything we cannot read precisely is handed to the kernel, never forwarded.

use aya_ebpf::programs::XdpContext;
use core::mem::size_of;
use ebpf_common::{AF_INET, IPPROTO_TCP, IPPROTO_UDP, counter};

pub const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
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
    pub src: u32,
    pub dst: u32,
    pub sport: u16,
    pub dport: u16,
    pub tcp_flags: u8,
    pub ttl: u8,
    pub tos: u8,
    /// IPv4 total length (host order): what IPVS counts as bytes.
    pub tot_len: u16,
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

#[inline(always)]
pub fn parse(ctx: &XdpContext) -> Result<Packet, PassReason> {
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
    match ethertype {
        ETH_P_IP => parse_ipv4(ctx, l3_off),
        ETH_P_IPV6 => Err(counter::PASS_IPV6),
        _ => Err(counter::PASS_NOT_VIP),
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
    if proto != IPPROTO_TCP && proto != IPPROTO_UDP {
        return Err(counter::PASS_NOT_VIP);
    }
    // MF set or a non-zero offset: only the kernel can reassemble.
    if frag & 0x3fff != 0 {
        return Err(counter::PASS_FRAGMENT);
    }
    let l4_off = l3_off + (ihl & 0x3c);
    let sport = read::<u16>(ctx, l4_off)?;
    let dport = read::<u16>(ctx, l4_off + 2)?;
    let mut tcp_flags = 0;
    if proto == IPPROTO_TCP {
        // The whole 20-byte TCP header must be there (the checksum at +16 is rewritten later).
        let doff = read::<u8>(ctx, l4_off + 12)? >> 4;
        if doff < 5 || (tot_len as usize) < ihl + (doff as usize) * 4 {
            return Err(counter::PASS_MALFORMED);
        }
        tcp_flags = read::<u8>(ctx, l4_off + 13)?;
        read::<[u8; 20]>(ctx, l4_off)?;
    } else {
        read::<[u8; 8]>(ctx, l4_off)?;
    }
    Ok(Packet {
        l3_off,
        l4_off,
        af: AF_INET,
        proto,
        src,
        dst,
        sport,
        dport,
        tcp_flags,
        ttl,
        tos,
        tot_len,
    })
}
