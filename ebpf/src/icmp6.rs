//! ICMPv6 errors that belong to a connection (destination unreachable, packet too big — which
//! IPv6 path-MTU discovery depends on —, time exceeded, parameter problem), translated and sent
//! to the side that sent the packet they quote, as IPVS' ip_vs_in_icmp_v6/ip_vs_out_icmp_v6 do.
//! The rules are icmp.rs's (see there); what differs is the layout and the checksum: ICMPv6's
//! covers the outer addresses too (pseudo-header), so every address change, outer or quoted,
//! is folded into it. Outer and quoted IPv6 headers without extension headers only; anything
//! else goes to the kernel (neighbour discovery never comes here: the parser lets only error
//! types through).

use aya_ebpf::programs::XdpContext;
use ebpf_common::{
    AF_INET6, CONN_F_REPLY, Conn, FWD_DROUTE, FWD_FULLNAT, FWD_MASQ, FlowKey, IPPROTO_TCP,
    IPPROTO_UDP, counter, nh_stamp,
};

use crate::csum;
use crate::forward::{self, Flow, Hop, NhSlot};
use crate::proto::IPPROTO_ICMPV6;
use aya_ebpf::macros::map;

use crate::maps::{CONNS, DEST_NH, count};
use crate::one_entry;
use crate::stage::Scratch;

/// The quoted packet's connection key (this program's stack has no room for it).
#[map]
static ICMP6_KEY: Scratch<FlowKey> = Scratch::new();
use crate::parse::{Packet, ptr_at};

const IPV6_HLEN: usize = 40;

/// ICMPv6 error types (RFC 4443): destination unreachable, packet too big, time exceeded,
/// parameter problem.
#[inline(always)]
pub fn is_error(kind: u8) -> bool {
    (1..=4).contains(&kind)
}

fn rd<T: Copy>(ctx: &XdpContext, off: usize) -> Option<T> {
    // SAFETY: `p` comes from ptr_at, which checked that all its bytes lie before data_end; an
    // unaligned read needs no alignment.
    ptr_at::<T>(ctx, off).map(|p| unsafe { p.read_unaligned() })
}

/// Handles an ICMPv6 error whose outer IPv6 header starts at `l3`.
#[inline(always)]
pub fn handle(ctx: &XdpContext, l3: usize, now: u64) -> Option<u32> {
    if rd::<u8>(ctx, l3 + 6)? != IPPROTO_ICMPV6 {
        return None;
    }
    let icmp = l3 + IPV6_HLEN;
    if !is_error(rd::<u8>(ctx, icmp)?) {
        return None;
    }
    // The quoted packet: IPv6 straight to TCP/UDP, then at least the ports.
    let inner = icmp + 8;
    if rd::<u8>(ctx, inner)? >> 4 != 6 {
        return None;
    }
    let proto = rd::<u8>(ctx, inner + 6)?;
    if proto != IPPROTO_TCP && proto != IPPROTO_UDP {
        return None;
    }
    // The quoted packet went one way; its connection entry is keyed the other way. (The key
    // lives in per-CPU scratch: this program's stack has no room for it.)
    let key = ICMP6_KEY.get()?;
    *key = FlowKey {
        src: rd::<[u32; 4]>(ctx, inner + 24)?,
        dst: rd::<[u32; 4]>(ctx, inner + 8)?,
        sport: rd::<u16>(ctx, inner + IPV6_HLEN + 2)?,
        dport: rd::<u16>(ctx, inner + IPV6_HLEN)?,
        proto,
        af: AF_INET6,
        _pad: [0; 2],
    };
    // A one-entry NAT connection's CLIENT entry stands for its reply direction (one_entry.rs).
    let derived = one_entry::client_of(key);
    let entry = match derived {
        Some((entry, _)) => entry,
        None => CONNS.get_ptr_mut(&*key)?,
    };
    // SAFETY: a map value pointer from a successful lookup: non-null, aligned and valid for
    // this program run.
    let entry = unsafe { &mut *entry };
    let payload_len = u16::from_be(rd::<u16>(ctx, l3 + 4)?);
    let outer = Packet {
        l3_off: l3,
        l4_off: icmp,
        af: AF_INET6,
        proto: IPPROTO_ICMPV6,
        src: rd::<[u32; 4]>(ctx, l3 + 8)?,
        dst: rd::<[u32; 4]>(ctx, l3 + 24)?,
        sport: 0,
        dport: 0,
        tcp_flags: 0,
        ttl: rd::<u8>(ctx, l3 + 7)?,
        tos: 0,
        tot_len: payload_len.wrapping_add(IPV6_HLEN as u16),
        tcp_hdr_len: 0,
        frag: 0,
    };
    if outer.ttl <= 1 {
        return None;
    }
    let action = if let Some((_, owner)) = derived {
        to_client(ctx, &outer, entry, &owner.addr, owner.port, now)?
    } else if entry.flags & CONN_F_REPLY != 0 {
        let (vip, vport) = (entry.to_addr, entry.to_port);
        to_client(ctx, &outer, entry, &vip, vport, now)?
    } else {
        to_real(ctx, &outer, entry, now)?
    };
    count(counter::ICMP_TRANSLATED);
    Some(action)
}

/// An error from the client side about a reply: to the real server.
#[inline(always)]
fn to_real(ctx: &XdpContext, outer: &Packet, conn: &Conn, now: u64) -> Option<u32> {
    let hop = match conn.fwd {
        FWD_MASQ | FWD_FULLNAT => {
            // Outer destination VIP -> real; quoted source VIP:vport -> real:rport.
            rewrite_outer(ctx, outer, 24, &conn.to_addr)?;
            rewrite_quoted(ctx, outer.l4_off, 8, 0, &conn.to_addr, conn.to_port)?;
            if conn.fwd == FWD_FULLNAT {
                // The client (quoted destination) becomes our local address.
                rewrite_quoted(ctx, outer.l4_off, 24, 2, &conn.via_addr, conn.via_port)?;
            }
            Hop::Routed
        }
        FWD_DROUTE => Hop::Bridged,
        _ => return None,
    };
    if conn.seq_delta != 0 && rd::<u8>(ctx, outer.l4_off + 8 + 6)? == IPPROTO_TCP {
        // SYNPROXY: the quoted reply carries our cookie's sequence numbers; the real server
        // only recognises its own.
        unshift_quoted_seq(ctx, outer.l4_off, conn.seq_delta)?;
    }
    let flow = Flow {
        saddr: outer.src,
        daddr: conn.to_addr,
        sport: 0,
        dport: 0,
    };
    // SAFETY: `p` is a map value pointer from get_ptr_mut: non-null, aligned and valid for this
    // program run.
    let nh = DEST_NH
        .get_ptr_mut(conn.dest_id)
        .map(|p| NhSlot::of(unsafe { &mut *p }));
    Some(forward::send(ctx, outer, &flow, nh, nh_stamp(now), hop))
}

/// An error from the real-server side about a client packet: to the client. `reply` is the
/// REPLY entry or a one-entry connection's CLIENT entry; `vip`:`vport` the service's address.
#[inline(always)]
fn to_client(
    ctx: &XdpContext,
    outer: &Packet,
    reply: &mut Conn,
    vip: &[u32; 4],
    vport: u16,
    now: u64,
) -> Option<u32> {
    let quoted_dst_was_sender = rd::<[u32; 4]>(ctx, outer.l4_off + 8 + 24)? == outer.src;
    let vip = *vip;
    rewrite_quoted(ctx, outer.l4_off, 24, 2, &vip, vport)?;
    let mut dst = outer.dst;
    if reply.fwd == FWD_FULLNAT {
        // The quoted source and the error's destination are our local address: the client.
        rewrite_quoted(ctx, outer.l4_off, 8, 0, &reply.via_addr, reply.via_port)?;
        rewrite_outer(ctx, outer, 24, &reply.via_addr)?;
        dst = reply.via_addr;
    }
    let src = if quoted_dst_was_sender {
        // The real server itself answered: it speaks as the VIP.
        rewrite_outer(ctx, outer, 8, &vip)?;
        vip
    } else {
        outer.src
    };
    let flow = Flow {
        saddr: src,
        daddr: dst,
        sport: 0,
        dport: 0,
    };
    let nh = NhSlot {
        ifindex: &mut reply.nh_ifindex,
        time: &mut reply.nh_time,
        macs: &mut reply.nh_macs,
    };
    Some(forward::send(
        ctx,
        outer,
        &flow,
        Some(nh),
        nh_stamp(now),
        Hop::Routed,
    ))
}

/// Takes `delta` off the quoted TCP sequence number (SYNPROXY), fixing the ICMPv6 checksum
/// (the quoted TCP checksum is left as IPVS leaves quoted L4 checksums).
#[inline(always)]
fn unshift_quoted_seq(ctx: &XdpContext, icmp: usize, delta: u32) -> Option<()> {
    let seq = ptr_at::<u32>(ctx, icmp + 8 + IPV6_HLEN + 4)?;
    let check = ptr_at::<u16>(ctx, icmp + 2)?;
    // SAFETY: `seq` and `check` come from ptr_at just above (bounds checked against data_end);
    // unaligned accesses need no alignment.
    unsafe {
        let old = seq.read_unaligned();
        let new = u32::from_be(old).wrapping_sub(delta).to_be();
        seq.write_unaligned(new);
        check.write_unaligned(csum::replace4(check.read_unaligned(), old, new));
    }
    Some(())
}

/// Replaces the outer address at `off` (8 source, 24 destination): in the pseudo-header, so
/// the ICMPv6 checksum changes with it.
#[inline(always)]
fn rewrite_outer(ctx: &XdpContext, outer: &Packet, off: usize, addr: &[u32; 4]) -> Option<()> {
    let a = ptr_at::<[u32; 4]>(ctx, outer.l3_off + off)?;
    let check = ptr_at::<u16>(ctx, outer.l4_off + 2)?;
    // SAFETY: `a` and `check` come from ptr_at just above (bounds checked against data_end);
    // unaligned accesses need no alignment.
    unsafe {
        let old = a.read_unaligned();
        a.write_unaligned(*addr);
        check.write_unaligned(csum::replace16(check.read_unaligned(), &old, addr));
    }
    Some(())
}

/// Replaces the quoted packet's address (at `addr_off` in its IPv6 header: 8 source, 24
/// destination) and port (at `port_off` in its L4 header), fixing the ICMPv6 checksum.
#[inline(always)]
fn rewrite_quoted(
    ctx: &XdpContext,
    icmp: usize,
    addr_off: usize,
    port_off: usize,
    addr: &[u32; 4],
    port: u16,
) -> Option<()> {
    let inner = icmp + 8;
    let check = ptr_at::<u16>(ctx, icmp + 2)?;
    let a = ptr_at::<[u32; 4]>(ctx, inner + addr_off)?;
    let p = ptr_at::<u16>(ctx, inner + IPV6_HLEN + port_off)?;
    // SAFETY: `check`, `a` and `p` come from ptr_at just above (bounds checked against data_end);
    // unaligned accesses need no alignment.
    unsafe {
        let (old_a, old_p) = (a.read_unaligned(), p.read_unaligned());
        a.write_unaligned(*addr);
        p.write_unaligned(port);
        let c = csum::replace16(check.read_unaligned(), &old_a, addr);
        check.write_unaligned(csum::replace2(c, old_p, port));
    }
    Some(())
}
