//! Stage 1: parse Ethernet (+ up to two VLAN tags), IPv4 or IPv6 (with up to four extension
//! headers: hop-by-hop, destination options, routing with no segments left, fragment) and the
//! TCP/UDP ports, with a bounds check before every access. Anything we cannot read precisely is
//! handed to the kernel, never forwarded; so is ICMP/ICMPv6 (neighbour discovery always reaches
//! the kernel). A first fragment (offset 0, it carries the ports) parses like any packet, marked
//! `frag`; later fragments are refused here (`PASS_FRAGMENT`) and handled by `frag.rs`.

use aya_ebpf::{macros::map, programs::XdpContext};
use core::mem::size_of;
use ebpf_common::{FlowKey, counter};

use crate::proto::*;
use crate::stage::{Handoff, Scratch, jump};

/// The IPv6 extension-header walk's result, stored and read back so the verifier sees one
/// unknown value instead of one exact value per way the walk can end (see `ipv6_ext`).
#[map]
static SCRATCH_WALK: Scratch<u64> = Scratch::new();

/// The parsed packet, handed to the stage jumped to (see [`jump_parsed`], [`handed_or`]): a
/// packet is parsed once on its way through the stages, not once per stage.
#[map]
static PARSED: Handoff<Packet> = Handoff::new();

/// Continues in `stage` with `pkt` (the packet as it is now, unchanged since it was parsed)
/// handed over; returns only if the tail call failed, the hand-over then withdrawn so no
/// other packet finds it.
#[inline(always)]
pub fn jump_parsed(ctx: &XdpContext, stage: ebpf_common::Stage, pkt: &Packet) -> u32 {
    if let Some(slot) = PARSED.put() {
        *slot = *pkt;
    }
    let verdict = jump(ctx, stage);
    PARSED.cancel();
    verdict
}

/// The packet handed over by the stage that jumped here, or `parse` of it.
#[inline(always)]
pub fn handed_or(
    ctx: &XdpContext,
    parse: fn(&XdpContext) -> Result<Packet, PassReason>,
) -> Result<Packet, PassReason> {
    match PARSED.take() {
        Some(pkt) => {
            let mut pkt = *pkt;
            // No-ops on what `parse` produced (see `ipv6_ext` for the bounds) that tell the
            // verifier the offsets read back from the map are bounded.
            pkt.l3_off &= 0x1f;
            pkt.l4_off &= 0x3fff;
            Ok(pkt)
        }
        None => parse(ctx),
    }
}

/// The parser's verdict for an ICMP/ICMPv6 message (maybe an error about one of our
/// connections: the ICMP stage decides). Not a counter.
pub const ICMP_CANDIDATE: u32 = u32::MAX;

/// Where the headers of a parsed packet are and what they say. Addresses and ports keep network
/// byte order (as raw words), exactly as they are compared with map keys.
#[derive(Clone, Copy)]
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
    /// Non-zero for the first fragment of a fragmented datagram (frag.rs records it).
    pub frag: u8,
}

impl Packet {
    pub fn is_v6(&self) -> bool {
        self.af == AF_INET6
    }

    /// The connection-table key of the packet: its flow as seen on the wire.
    #[inline(always)]
    pub fn flow(&self) -> FlowKey {
        FlowKey {
            src: self.src,
            dst: self.dst,
            sport: self.sport,
            dport: self.dport,
            proto: self.proto,
            af: self.af,
            _pad: [0; 2],
        }
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
    // SAFETY: `md` is the xdp_md the kernel passed to this program, valid for the whole run.
    let start = unsafe { core::ptr::read_volatile(&(*md).data) } as usize;
    // SAFETY: `md` is the xdp_md the kernel passed to this program, valid for the whole run.
    let end = unsafe { core::ptr::read_volatile(&(*md).data_end) } as usize;
    if start + off + size_of::<T>() > end {
        return None;
    }
    Some((start + off) as *mut T)
}

#[inline(always)]
fn read<T: Copy>(ctx: &XdpContext, off: usize) -> Result<T, PassReason> {
    match ptr_at::<T>(ctx, off) {
        // SAFETY: `p` comes from ptr_at, which checked that all its bytes lie before data_end; an
        // unaligned read needs no alignment.
        Some(p) => Ok(unsafe { p.read_unaligned() }),
        None => Err(counter::PASS_MALFORMED),
    }
}

/// Offset of the IP header and the ethertype after up to two VLAN tags.
#[inline(always)]
pub fn l3(ctx: &XdpContext) -> Result<(usize, u16), PassReason> {
    let mut l3_off = ETH_HLEN;
    let mut ethertype = u16::from_be(read::<u16>(ctx, ETH_TYPE)?);
    // Up to two VLAN tags (802.1ad outer + 802.1Q inner).
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        ethertype = u16::from_be(read::<u16>(ctx, l3_off + VLAN_TYPE)?);
        l3_off += VLAN_HLEN;
        if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
            ethertype = u16::from_be(read::<u16>(ctx, l3_off + VLAN_TYPE)?);
            l3_off += VLAN_HLEN;
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

/// `parse` for IPv4 only (IPv6 → `PASS_NOT_VIP`), for stages that handle IPv4 only
/// (SYNPROXY): they do not carry the extension-header walk, whose call frame their full stack
/// has no room for.
#[inline(always)]
pub fn parse_ipv4_only(ctx: &XdpContext) -> Result<Packet, PassReason> {
    match l3(ctx)? {
        (l3_off, ETH_P_IP) => parse_ipv4(ctx, l3_off),
        _ => Err(counter::PASS_NOT_VIP),
    }
}

/// What `frag.rs` needs of a fragment (a later fragment carries no ports).
pub struct Fragment {
    pub l3_off: usize,
    pub af: u8,
    /// IPv4: the protocol; IPv6: the fragment header's next header (a later fragment's
    /// fragmentable part may start with an extension header).
    pub proto: u8,
    /// Offset 0: it carries the upper-layer header.
    pub first: bool,
    pub ttl: u8,
    pub tos: u8,
    pub tot_len: u16,
    /// IP identification, raw (IPv4: 16 bits in the low bytes).
    pub id: u32,
    pub src: [u32; 4],
    pub dst: [u32; 4],
}

/// The fragment fields of an IPv4 or IPv6 fragment; an error for anything else.
#[inline(always)]
pub fn fragment(ctx: &XdpContext) -> Result<Fragment, PassReason> {
    let (l3_off, ethertype) = l3(ctx)?;
    let frame_len = ctx.data_end() - ctx.data();
    if ethertype == ETH_P_IP {
        let vihl = read::<u8>(ctx, l3_off)?;
        let tot_len = u16::from_be(read::<u16>(ctx, l3_off + IP4_TOT_LEN)?);
        if vihl >> 4 != 4 || vihl & 0x0f < 5 || tot_len < 20 {
            return Err(counter::PASS_MALFORMED);
        }
        if l3_off + tot_len as usize > frame_len {
            return Err(counter::PASS_MALFORMED);
        }
        let frag = u16::from_be(read::<u16>(ctx, l3_off + IP4_FRAG)?);
        if frag & IP4_MF_OFFSET == 0 {
            return Err(counter::PASS_NOT_VIP);
        }
        if !ipv4_header_sums_right(ctx, l3_off, ((vihl & 0x0f) as usize) * 4) {
            // The kernel drops it; it must not follow a connection's rewrite.
            return Err(counter::PASS_MALFORMED);
        }
        return Ok(Fragment {
            l3_off,
            af: AF_INET,
            proto: read::<u8>(ctx, l3_off + IP4_PROTO)?,
            first: frag & IP4_OFFSET == 0,
            ttl: read::<u8>(ctx, l3_off + IP4_TTL)?,
            tos: read::<u8>(ctx, l3_off + IP4_TOS)?,
            tot_len,
            id: read::<u16>(ctx, l3_off + IP4_ID)? as u32,
            src: [read::<u32>(ctx, l3_off + IP4_SADDR)?, 0, 0, 0],
            dst: [read::<u32>(ctx, l3_off + IP4_DADDR)?, 0, 0, 0],
        });
    }
    if ethertype != ETH_P_IPV6 {
        return Err(counter::PASS_NOT_VIP);
    }
    let first_word = u32::from_be(read::<u32>(ctx, l3_off)?);
    let payload_len = u16::from_be(read::<u16>(ctx, l3_off + IP6_PLEN)?) as usize;
    if first_word >> 28 != 6 || l3_off + IP6_HLEN + payload_len > frame_len {
        return Err(counter::PASS_MALFORMED);
    }
    let ext = ipv6_ext(
        ctx,
        l3_off,
        read::<u8>(ctx, l3_off + IP6_NEXT)?,
        payload_len,
    )?;
    if ext.frag == 0 {
        return Err(counter::PASS_NOT_VIP);
    }
    Ok(Fragment {
        l3_off,
        af: AF_INET6,
        proto: ext.next,
        first: ext.frag == 1,
        ttl: read::<u8>(ctx, l3_off + IP6_HOPS)?,
        tos: (first_word >> 20) as u8,
        tot_len: (40 + payload_len) as u16,
        id: read::<u32>(ctx, ext.frag_off + 4)?,
        src: read::<[u32; 4]>(ctx, l3_off + IP6_SADDR)?,
        dst: read::<[u32; 4]>(ctx, l3_off + IP6_DADDR)?,
    })
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
    let tos = read::<u8>(ctx, l3_off + IP4_TOS)?;
    let tot_len = u16::from_be(read::<u16>(ctx, l3_off + IP4_TOT_LEN)?);
    let frag = u16::from_be(read::<u16>(ctx, l3_off + IP4_FRAG)?);
    let ttl = read::<u8>(ctx, l3_off + IP4_TTL)?;
    let proto = read::<u8>(ctx, l3_off + IP4_PROTO)?;
    let src = read::<u32>(ctx, l3_off + IP4_SADDR)?;
    let dst = read::<u32>(ctx, l3_off + IP4_DADDR)?;
    // The IP datagram must fit in the frame (padding after it is allowed).
    if (tot_len as usize) < ihl || l3_off + tot_len as usize > ctx.data_end() - ctx.data() {
        return Err(counter::PASS_MALFORMED);
    }
    if proto == IPPROTO_ICMP && frag & IP4_MF_OFFSET == 0 {
        // Maybe an error about one of our connections: icmp.rs decides.
        return Err(ICMP_CANDIDATE);
    }
    if proto != IPPROTO_TCP && proto != IPPROTO_UDP {
        return Err(counter::PASS_NOT_VIP);
    }
    // A later fragment (non-zero offset) has no ports: frag.rs follows its first fragment.
    if frag & IP4_OFFSET != 0 {
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
        // MF with offset 0: the first fragment.
        frag: (frag >> 13) as u8 & 1,
    })
}

/// Whether the kernel would drop this packet as invalid, so it must not be forwarded nor open
/// anything: an IPv4 header whose checksum is wrong (ip_rcv checks it, and our incremental
/// rewrites would carry the error to the real server), an IPv6 UDP datagram with checksum 0
/// (mandatory in IPv6; rewritten, it would reach the real with a wrong non-zero one).
/// Asked only of packets that are ours (a connection's, or to a VIP): others go to the kernel,
/// which judges them itself.
#[inline(always)]
pub fn invalid(ctx: &XdpContext, pkt: &Packet) -> bool {
    if pkt.is_v6() {
        return pkt.proto == IPPROTO_UDP
            && matches!(read::<u16>(ctx, pkt.l4_off + UDP_CHECK), Ok(0));
    }
    !ipv4_header_sums_right(ctx, pkt.l3_off, pkt.l4_off - pkt.l3_off)
}

/// The one's-complement sum of an IPv4 header of `ihl` bytes (its checksum included) is 0xffff.
/// A BPF subprogram returning an opaque word: the verifier then continues with one state,
/// whatever the header's length (inlined, each length's bounds check multiplied the paths of
/// everything after it).
#[inline(never)]
fn ipv4_header_sums_right(ctx: &XdpContext, l3_off: usize, ihl: usize) -> bool {
    let sum = match ihl {
        20 => sum_words::<5>(ctx, l3_off),
        24 => sum_words::<6>(ctx, l3_off),
        28 => sum_words::<7>(ctx, l3_off),
        32 => sum_words::<8>(ctx, l3_off),
        36 => sum_words::<9>(ctx, l3_off),
        40 => sum_words::<10>(ctx, l3_off),
        44 => sum_words::<11>(ctx, l3_off),
        48 => sum_words::<12>(ctx, l3_off),
        52 => sum_words::<13>(ctx, l3_off),
        56 => sum_words::<14>(ctx, l3_off),
        60 => sum_words::<15>(ctx, l3_off),
        _ => None,
    };
    let Some(mut sum) = sum else {
        return false;
    };
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum == 0xffff
}

/// The sum of `N` 32-bit words at `off` (one bounds check for all of them).
#[inline(always)]
fn sum_words<const N: usize>(ctx: &XdpContext, off: usize) -> Option<u64> {
    let words = read::<[u32; N]>(ctx, off).ok()?;
    let mut sum = 0u64;
    for w in words {
        sum += w as u64;
    }
    Some(sum)
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
    let dport = read::<u16>(ctx, l4_off + TCP_DPORT)?;
    let mut tcp_flags = 0;
    let mut hdr_len = 0;
    if proto == IPPROTO_TCP {
        // The whole 20-byte TCP header must be there (the checksum at +16 is rewritten later).
        let doff = read::<u8>(ctx, l4_off + TCP_DOFF)? >> 4;
        if doff < 5 || l4_len < (doff as usize) * 4 {
            return Err(counter::PASS_MALFORMED);
        }
        tcp_flags = read::<u8>(ctx, l4_off + TCP_FLAGS)?;
        hdr_len = doff * 4;
        read::<[u8; TCP_HLEN]>(ctx, l4_off)?;
    } else {
        if l4_len < 8 {
            return Err(counter::PASS_MALFORMED);
        }
        read::<[u8; UDP_HLEN]>(ctx, l4_off)?;
    }
    Ok((sport, dport, tcp_flags, hdr_len))
}

/// Extension headers walked before the upper-layer header; more go to the kernel.
pub const MAX_IPV6_EXT: usize = 4;
/// Bytes the walked extension headers may take (4 x the largest, 2 KiB): a constant bound the
/// verifier can use for every offset behind them.
const MAX_IPV6_EXT_BYTES: usize = MAX_IPV6_EXT * 2048;

/// What follows the IPv6 header's extension headers.
pub struct Ipv6Ext {
    /// Offset of the upper-layer header (from the start of the frame).
    pub l4_off: usize,
    /// Its protocol; for a later fragment, the fragment header's next header.
    pub next: u8,
    /// 0: not fragmented; 1: first fragment (offset 0); 2: a later fragment (the walk stopped
    /// at its fragment header).
    pub frag: u8,
    /// Offset of the fragment header (0 when not fragmented).
    pub frag_off: usize,
}

/// Walks at most `MAX_IPV6_EXT` extension headers (hop-by-hop only first, destination options,
/// routing with segments left 0 — with segments left, this node is not the final destination —
/// and fragment), each length-checked against the payload. More headers, other extension
/// headers (AH, mobility, HIP, shim6, experimental) or routing with segments left → kernel
/// (`PASS_IPV6_EXT`); a header past the payload → `PASS_MALFORMED`. Stops at a later fragment's
/// header (no upper-layer header behind it).
#[inline(always)]
pub fn ipv6_ext(
    ctx: &XdpContext,
    l3_off: usize,
    first_next: u8,
    payload_len: usize,
) -> Result<Ipv6Ext, PassReason> {
    let packed = ipv6_walk(ctx, l3_off, first_next, payload_len);
    // Through per-CPU memory: the verifier then continues with one unknown result instead of
    // one exact value per way the walk ends (which verified the rest of every program once
    // per way: 2.7 times the main program's instructions).
    let Some(slot) = SCRATCH_WALK.get() else {
        return Err(counter::PASS_MALFORMED);
    };
    *slot = packed;
    // SAFETY: `slot` is a live `&mut u32` (this CPU's scratch map value).
    let packed = unsafe { core::ptr::read_volatile(slot) };
    let l4_off = (packed & 0xffff) as usize;
    if l4_off == 0 {
        return Err((packed >> 16) as u32);
    }
    Ok(Ipv6Ext {
        // The masks are no-ops (offsets < 22 + 40 + MAX_IPV6_EXT_BYTES) that tell the verifier
        // so: packet offsets must stay below 64 KiB for it.
        l4_off: l4_off & 0x3fff,
        next: (packed >> 16) as u8,
        frag: ((packed >> 24) & 3) as u8,
        frag_off: ((packed >> 32) & 0x3fff) as usize,
    })
}

/// Walk state between headers: next header | first-fragment flag << 8 | fragment header
/// offset << 32.
type WalkState = u64;

/// The walk, as a BPF subprogram (its frame is not added to every caller's, which are full;
/// written so it needs no stack) returning one packed word: l4_off | next << 16 | frag << 24 |
/// fragment header offset << 32, or reason << 16 (l4_off 0) on refusal.
#[inline(never)]
fn ipv6_walk(ctx: &XdpContext, l3_off: usize, first_next: u8, payload_len: usize) -> u64 {
    if l3_off > 22 {
        return (counter::PASS_MALFORMED as u64) << 16;
    }
    let end = l3_off + IP6_HLEN + payload_len;
    let mut off = l3_off + IP6_HLEN;
    let mut state: WalkState = first_next as u64;
    // Unrolled: one step per header, then one to see what follows the last.
    macro_rules! step {
        ($last:expr) => {
            if let Some(done) = ipv6_step(ctx, &mut off, end, &mut state, $last) {
                return done;
            }
        };
    }
    step!(false);
    step!(false);
    step!(false);
    step!(false);
    step!(true);
    (counter::PASS_IPV6_EXT as u64) << 16
}

/// One extension header at `off`: Some(result) when the walk ends here, else `off` and `state`
/// move past it. `last`: no more headers may follow (the limit is reached).
#[inline(always)]
fn ipv6_step(
    ctx: &XdpContext,
    off: &mut usize,
    end: usize,
    state: &mut WalkState,
    last: bool,
) -> Option<u64> {
    let refuse = |reason: u32| Some((reason as u64) << 16);
    let next = *state as u8;
    match next {
        IPPROTO_HOPOPTS | IPPROTO_DSTOPTS | IPPROTO_ROUTING | IPPROTO_FRAGMENT => {}
        // AH, mobility, HIP, shim6, experimental: not walked.
        51 | 135 | 139 | 140 | 253 | 254 => return refuse(counter::PASS_IPV6_EXT),
        // The upper-layer header (or something the caller refuses).
        _ => {
            return Some(
                *off as u64
                    | (next as u64) << 16
                    | (*state & 0x100) << 16
                    | (*state & !0xffff_ffff),
            );
        }
    }
    // Reads are whole words from `off`: a 1-byte read at a variable offset becomes a
    // `p >= end` check, from which the verifier learns no range.
    let Ok(h) = read::<[u8; 4]>(ctx, *off) else {
        return refuse(counter::PASS_MALFORMED);
    };
    let len = match next {
        IPPROTO_ROUTING if h[3] != 0 => return refuse(counter::PASS_IPV6_EXT),
        IPPROTO_FRAGMENT if *state & 0x100 != 0 => return refuse(counter::PASS_IPV6_EXT),
        IPPROTO_FRAGMENT => {
            if *off + 8 > end {
                return refuse(counter::PASS_MALFORMED);
            }
            if u16::from_be_bytes([h[2], h[3]]) & 0xfff8 != 0 {
                // A later fragment: nothing to walk behind it.
                return Some(
                    (*off + 8) as u64 | (h[0] as u64) << 16 | 2 << 24 | (*off as u64) << 32,
                );
            }
            *state |= 0x100 | (*off as u64) << 32;
            8
        }
        _ => 8 * (h[1] as usize + 1),
    };
    if last {
        return refuse(counter::PASS_IPV6_EXT);
    }
    *off += len;
    if *off > end || *off > 22 + 40 + MAX_IPV6_EXT_BYTES {
        return refuse(counter::PASS_MALFORMED);
    }
    // Hop-by-hop may only come first: after the first step it counts as unknown.
    let following = h[0];
    *state = (*state & !0xff)
        | if following == IPPROTO_HOPOPTS {
            51
        } else {
            following
        } as u64;
    None
}

#[inline(always)]
fn parse_ipv6(ctx: &XdpContext, l3_off: usize) -> Result<Packet, PassReason> {
    let first = u32::from_be(read::<u32>(ctx, l3_off)?);
    if first >> 28 != 6 {
        return Err(counter::PASS_MALFORMED);
    }
    let payload_len = u16::from_be(read::<u16>(ctx, l3_off + IP6_PLEN)?) as usize;
    let next = read::<u8>(ctx, l3_off + IP6_NEXT)?;
    if l3_off + IP6_HLEN + payload_len > ctx.data_end() - ctx.data() || payload_len > 0xffff - 40 {
        return Err(counter::PASS_MALFORMED);
    }
    let (l4_off, next, frag) = match next {
        // The common case: straight to TCP/UDP, no walk.
        IPPROTO_TCP | IPPROTO_UDP => (l3_off + IP6_HLEN, next, 0),
        _ => {
            let ext = ipv6_ext(ctx, l3_off, next, payload_len)?;
            if ext.frag == 2 {
                return Err(counter::PASS_FRAGMENT);
            }
            (ext.l4_off, ext.next, ext.frag)
        }
    };
    match next {
        IPPROTO_TCP | IPPROTO_UDP => {}
        // ICMPv6 errors may be about a connection (icmp6.rs decides: only those right behind
        // the IPv6 header; neighbour discovery and the rest go to the kernel from there).
        IPPROTO_ICMPV6 if frag == 0 => return Err(ICMP_CANDIDATE),
        _ => return Err(counter::PASS_NOT_VIP),
    }
    // Read after the walk (a call): nothing large is live across it.
    let tos = (first >> 20) as u8;
    let ttl = read::<u8>(ctx, l3_off + IP6_HOPS)?;
    let src = read::<[u32; 4]>(ctx, l3_off + IP6_SADDR)?;
    let dst = read::<[u32; 4]>(ctx, l3_off + IP6_DADDR)?;
    let (sport, dport, tcp_flags, tcp_hdr_len) =
        parse_l4(ctx, next, l4_off, payload_len + 40 - (l4_off - l3_off))?;
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
        frag,
    })
}
