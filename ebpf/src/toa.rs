//! TOA ("TCP option address", alibaba LVS): FULLNAT hides the client's address from the real
//! server, so the client's address and port travel in a TCP option that the real server's TOA
//! module reads: kind 254, length 8 (port, IPv4 address) or kind 253, length 20 (port, IPv6
//! address), all in network order.
//!
//! As alibaba does, the option goes into the client's segments that acknowledge exactly the real
//! server's ISN + 1 (`Conn::toa_ack`, taken from its SYN-ACK): the ACK completing the handshake
//! and the first data before the server sends any, so a lost ACK is covered by the data.
//! The packet grows: `bpf_xdp_adjust_head` makes room in front and the Ethernet, IP and fixed
//! 20-byte TCP headers move forward; the option lands first among the TCP options (their order
//! does not matter). Only constant-size moves pass the verifier, so the supported layouts are
//! IPv4 without IP options and IPv6 without extension headers, behind 0-2 VLAN tags.
//! To keep segments within the path MTU, the MSS the real server announces in its SYN-ACK is
//! lowered by the option's size (`clamp_mss`): the client then sends segments that fit once the
//! option is added.
//!
//! It runs in its own program (`xlvs_toa`, tail call): the main program's stack is full.

use aya_ebpf::{helpers::bpf_xdp_adjust_head, programs::XdpContext};
use ebpf_common::{IPPROTO_TCP, counter};

use crate::csum;
use crate::maps::count;
use crate::parse::{Packet, ptr_at};

/// Bytes the option adds for this packet's family.
#[inline(always)]
pub fn option_len(pkt: &Packet) -> usize {
    if pkt.is_v6() { 20 } else { 8 }
}

/// Inserts the TOA option carrying the packet's source (the client) into a client -> real
/// segment that has not been rewritten yet. False (packet unchanged) when it cannot.
#[inline(always)]
pub fn insert(ctx: &XdpContext, pkt: &Packet) -> bool {
    // Not into a fragment either: the later fragments' offsets would no longer fit.
    if pkt.proto != IPPROTO_TCP
        || pkt.frag != 0
        || pkt.l4_off - pkt.l3_off != if pkt.is_v6() { 40 } else { 20 }
    {
        return false;
    }
    let grow = option_len(pkt);
    // What changes, read before the headers move.
    let (Some(doff_p), Some(check_p)) = (
        ptr_at::<u16>(ctx, pkt.l4_off + 12),
        ptr_at::<u16>(ctx, pkt.l4_off + 16),
    ) else {
        return false;
    };
    // SAFETY: `doff_p` comes from ptr_at (bounds checked against data_end); an unaligned read needs
    // no alignment.
    let old_doff = unsafe { doff_p.read_unaligned() };
    // SAFETY: `check_p` comes from ptr_at (bounds checked against data_end); an unaligned read
    // needs no alignment.
    let old_check = unsafe { check_p.read_unaligned() };
    let doff = (old_doff.to_ne_bytes()[0] >> 4) as usize;
    if doff * 4 + grow > 60 {
        return false;
    }
    let l4_len = pkt.tot_len as usize - (pkt.l4_off - pkt.l3_off);
    // SAFETY: `ctx.ctx` is this program's xdp_md; the helper refuses a head outside the buffer, and
    // no packet pointer taken before it is used after it (they are taken again).
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(grow as i32)) } != 0 {
        return false;
    }
    let moved = match (pkt.is_v6(), pkt.l3_off) {
        (false, 14) => shift::<54, 62>(ctx),
        (false, 18) => shift::<58, 66>(ctx),
        (false, 22) => shift::<62, 70>(ctx),
        (true, 14) => shift::<74, 94>(ctx),
        (true, 18) => shift::<78, 98>(ctx),
        (true, 22) => shift::<82, 102>(ctx),
        _ => false,
    };
    if !moved {
        // Give the room back: the packet is as it was.
        // SAFETY: `ctx.ctx` is this program's xdp_md; this gives back exactly the room taken above.
        unsafe { bpf_xdp_adjust_head(ctx.ctx, grow as i32) };
        return false;
    }
    let opt = pkt.l4_off + 20;
    let mut check = old_check;
    // The option's words, as they will sit in the packet.
    let mut words = [0u16; 10];
    words[0] = u16::from_ne_bytes([if pkt.is_v6() { 253 } else { 254 }, grow as u8]);
    words[1] = pkt.sport;
    let addr_words = if pkt.is_v6() { 4 } else { 1 };
    let mut i = 0;
    while i < 4 {
        if i < addr_words {
            let a = pkt.src[i].to_ne_bytes();
            words[2 + 2 * i] = u16::from_ne_bytes([a[0], a[1]]);
            words[3 + 2 * i] = u16::from_ne_bytes([a[2], a[3]]);
        }
        i += 1;
    }
    let nwords = grow / 2;
    let mut w = 0;
    while w < 10 {
        if w < nwords {
            let Some(p) = ptr_at::<u16>(ctx, opt + 2 * w) else {
                return false;
            };
            // SAFETY: `p` comes from ptr_at (bounds checked against data_end); an unaligned write
            // needs no alignment.
            unsafe { p.write_unaligned(words[w]) };
            check = csum::replace2(check, 0, words[w]);
        }
        w += 1;
    }
    // Data offset grows; the pseudo-header's TCP length too.
    let mut b = old_doff.to_ne_bytes();
    b[0] = (((doff + grow / 4) as u8) << 4) | (b[0] & 0x0f);
    let new_doff = u16::from_ne_bytes(b);
    check = csum::replace2(check, old_doff, new_doff);
    check = csum::replace2(
        check,
        (l4_len as u16).to_be(),
        ((l4_len + grow) as u16).to_be(),
    );
    let (Some(doff_p), Some(check_p)) = (
        ptr_at::<u16>(ctx, pkt.l4_off + 12),
        ptr_at::<u16>(ctx, pkt.l4_off + 16),
    ) else {
        return false;
    };
    // SAFETY: `doff_p` and `check_p` were taken again after the head moved, from ptr_at (bounds
    // checked against data_end); unaligned writes need no alignment.
    unsafe {
        doff_p.write_unaligned(new_doff);
        check_p.write_unaligned(check);
    }
    grow_ip_length(ctx, pkt, grow)
}

/// Moves the first `H` bytes of the packet (headers up to the end of the fixed TCP header)
/// from offset `T - H` to 0, after `bpf_xdp_adjust_head` opened `T - H` bytes in front.
#[inline(always)]
fn shift<const H: usize, const T: usize>(ctx: &XdpContext) -> bool {
    let Some(base) = ptr_at::<[u8; T]>(ctx, 0) else {
        return false;
    };
    let base = base as *mut u8;
    let gap = T - H;
    // Destination below source: an ascending copy never overwrites what it has yet to read.
    let mut i = 0;
    while i + 4 <= H {
        // SAFETY: ptr_at checked all T bytes from `base` against data_end and gap + i + 4 <= T;
        // unaligned accesses need no alignment.
        unsafe {
            let v = (base.add(gap + i) as *const u32).read_unaligned();
            (base.add(i) as *mut u32).write_unaligned(v);
        }
        i += 4;
    }
    if i + 2 <= H {
        // SAFETY: ptr_at checked all T bytes from `base` against data_end and gap + i + 2 <= T;
        // unaligned accesses need no alignment.
        unsafe {
            let v = (base.add(gap + i) as *const u16).read_unaligned();
            (base.add(i) as *mut u16).write_unaligned(v);
        }
    }
    true
}

/// IPv4 total length (and header checksum) or IPv6 payload length, `grow` bytes more.
#[inline(always)]
fn grow_ip_length(ctx: &XdpContext, pkt: &Packet, grow: usize) -> bool {
    let Some(len_p) = ptr_at::<u16>(ctx, pkt.l3_off + if pkt.is_v6() { 4 } else { 2 }) else {
        return false;
    };
    // SAFETY: `len_p` comes from ptr_at (bounds checked against data_end); an unaligned read needs
    // no alignment.
    let old = unsafe { len_p.read_unaligned() };
    let new = (u16::from_be(old) + grow as u16).to_be();
    // SAFETY: `len_p` comes from ptr_at (bounds checked against data_end); an unaligned write needs
    // no alignment.
    unsafe { len_p.write_unaligned(new) };
    if !pkt.is_v6() {
        let Some(ip_check) = ptr_at::<u16>(ctx, pkt.l3_off + 10) else {
            return false;
        };
        // SAFETY: `ip_check` comes from ptr_at (bounds checked against data_end); unaligned
        // accesses need no alignment.
        unsafe {
            ip_check.write_unaligned(csum::replace2(ip_check.read_unaligned(), old, new));
        }
    }
    true
}

/// In a real server's SYN-ACK, lowers the MSS option (when it comes first among the options,
/// as every common stack sends it) by `by` bytes, fixing the checksum, so the client's segments
/// still fit the path once TOA is added.
#[inline(always)]
pub fn clamp_mss(ctx: &XdpContext, pkt: &Packet, by: u16) {
    let (Some(doff), Some(opt), Some(check)) = (
        ptr_at::<u8>(ctx, pkt.l4_off + 12),
        ptr_at::<[u8; 4]>(ctx, pkt.l4_off + 20),
        ptr_at::<u16>(ctx, pkt.l4_off + 16),
    ) else {
        return;
    };
    // SAFETY: `doff`, `opt` and `check` come from ptr_at just above (bounds checked against
    // data_end); unaligned accesses need no alignment.
    unsafe {
        let o = opt.read_unaligned();
        if doff.read() >> 4 < 6 || o[0] != 2 || o[1] != 4 {
            return;
        }
        let old = u16::from_be_bytes([o[2], o[3]]);
        if old <= 536 + by {
            return;
        }
        let new = old - by;
        let mss = (pkt.l4_off + 22) as usize;
        let Some(mss_p) = ptr_at::<u16>(ctx, mss) else {
            return;
        };
        mss_p.write_unaligned(new.to_be());
        check.write_unaligned(csum::replace2(
            check.read_unaligned(),
            old.to_be(),
            new.to_be(),
        ));
    }
}

/// Counts a TOA that could not be added (the segment goes on without it).
#[inline(always)]
pub fn skipped() {
    count(counter::TOA_SKIPPED);
}
