//! ICMP errors that belong to a connection (destination unreachable — including "fragmentation
//! needed", which path-MTU discovery depends on —, time exceeded, parameter problem) are
//! translated and forwarded to the side that sent the packet they quote, as IPVS does:
//!
//! * from the client side, quoting a reply we sent (VIP:vport -> cip:cport): the real server
//!   sent it, so the error goes to it, with the VIP replaced by the real's address (NAT) or
//!   unchanged (DR, only the MACs change);
//! * from the real-server side, quoting a client packet we forwarded (cip:cport -> rip:rport):
//!   the error goes to the client, with the real's address replaced by the VIP.
//!
//! FULLNAT connections also swap the local address and the client's address back and forth.
//!
//! The quoted packet's IP checksum and the ICMP checksum are updated incrementally (the quoted
//! L4 checksum may be cut off, so it is left as IPVS leaves it). IPv4 without IP options here;
//! ICMPv6 in icmp6.rs; anything else goes to the kernel.

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use ebpf_common::{
    AF_INET, CONN_F_REPLY, Conn, FWD_DROUTE, FWD_FULLNAT, FWD_MASQ, FlowKey, IPPROTO_ICMP,
    IPPROTO_TCP, IPPROTO_UDP, counter, nh_stamp,
};

use crate::csum;
use crate::forward::{self, Flow, Hop, NhSlot};
use crate::fw;
use crate::maps::{CONNS, DEST_NH, count};
use crate::one_entry;
use crate::parse::{self, Packet, ptr_at};
use crate::proto::{ETH_P_IP, ETH_P_IPV6};
use crate::stage::jump;
use ebpf_common::Stage;

const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_TIME_EXCEEDED: u8 = 11;
const ICMP_PARAMETERPROB: u8 = 12;

fn rd<T: Copy>(ctx: &XdpContext, off: usize) -> Option<T> {
    // SAFETY: `p` comes from ptr_at, which checked that all its bytes lie before data_end; an
    // unaligned read needs no alignment.
    ptr_at::<T>(ctx, off).map(|p| unsafe { p.read_unaligned() })
}

/// Handles an ICMPv4 message the parser flagged; XDP_PASS when it is not about a connection.
#[inline(always)]
pub fn handle(ctx: &XdpContext, now: u64) -> u32 {
    match try_handle(ctx, now) {
        Some(action) => action,
        None => {
            // Not about a connection: the firewall's rules apply (fw.rs).
            if fw::check_icmp(ctx) == fw::Verdict::Drop {
                return xdp_action::XDP_DROP;
            }
            count(counter::PASS_NOT_VIP);
            xdp_action::XDP_PASS
        }
    }
}

#[inline(always)]
fn try_handle(ctx: &XdpContext, now: u64) -> Option<u32> {
    let (l3, ethertype) = parse::l3(ctx).ok()?;
    if ethertype == ETH_P_IPV6 {
        if !fw::icmp6_error(ctx, l3) {
            // Only errors can be about a connection (and the firewall judges the rest here).
            return None;
        }
        // Its own program: both families' frames do not fit one stack.
        return Some(jump(ctx, Stage::Icmp6));
    }
    if ethertype != ETH_P_IP || rd::<u8>(ctx, l3)? != 0x45 {
        return None;
    }
    let icmp = l3 + 20;
    let kind = rd::<u8>(ctx, icmp)?;
    if kind != ICMP_DEST_UNREACH && kind != ICMP_TIME_EXCEEDED && kind != ICMP_PARAMETERPROB {
        return None;
    }
    // The quoted packet: IPv4 without options, then at least the 8 bytes with the ports.
    let inner = icmp + 8;
    if rd::<u8>(ctx, inner)? != 0x45 {
        return None;
    }
    let proto = rd::<u8>(ctx, inner + 9)?;
    if proto != IPPROTO_TCP && proto != IPPROTO_UDP {
        return None;
    }
    let (in_src, in_dst) = (rd::<u32>(ctx, inner + 12)?, rd::<u32>(ctx, inner + 16)?);
    let (in_sport, in_dport) = (rd::<u16>(ctx, inner + 20)?, rd::<u16>(ctx, inner + 22)?);
    // The quoted packet went one way; its connection entry is keyed the other way.
    let key = FlowKey {
        src: [in_dst, 0, 0, 0],
        dst: [in_src, 0, 0, 0],
        sport: in_dport,
        dport: in_sport,
        proto,
        af: AF_INET,
        _pad: [0; 2],
    };
    // A one-entry NAT connection's CLIENT entry stands for its reply direction (one_entry.rs).
    let derived = one_entry::client_of(&key);
    let entry = match derived {
        Some((entry, _)) => entry,
        None => CONNS.get_ptr_mut(&key)?,
    };
    // SAFETY: a map value pointer from a successful lookup: non-null, aligned and valid for
    // this program run.
    let entry = unsafe { &mut *entry };
    let outer = Packet {
        l3_off: l3,
        l4_off: icmp,
        af: AF_INET,
        proto: IPPROTO_ICMP,
        src: [rd::<u32>(ctx, l3 + 12)?, 0, 0, 0],
        dst: [rd::<u32>(ctx, l3 + 16)?, 0, 0, 0],
        sport: 0,
        dport: 0,
        tcp_flags: 0,
        ttl: rd::<u8>(ctx, l3 + 8)?,
        tos: rd::<u8>(ctx, l3 + 1)?,
        tot_len: u16::from_be(rd::<u16>(ctx, l3 + 2)?),
        tcp_hdr_len: 0,
        frag: 0,
    };
    if parse::invalid(ctx, &outer) {
        // About a connection, but the kernel would drop it (ip_rcv): translated, the wrong
        // header checksum would travel on with it.
        count(counter::DROP_INVALID);
        return Some(xdp_action::XDP_DROP);
    }
    if outer.ttl <= 1 {
        return None;
    }
    let action = if let Some((_, owner)) = derived {
        to_client(ctx, &outer, entry, owner.addr[0], owner.port, now)?
    } else if entry.flags & CONN_F_REPLY != 0 {
        let (vip, vport) = (entry.to_addr[0], entry.to_port);
        to_client(ctx, &outer, entry, vip, vport, now)?
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
        FWD_MASQ => {
            // Outer destination VIP -> real; quoted source VIP:vport -> real:rport.
            rewrite_outer(ctx, outer, 16, conn.to_addr[0])?;
            rewrite_quoted(ctx, outer.l4_off, 12, 0, conn.to_addr[0], conn.to_port)?;
            Hop::Routed
        }
        FWD_FULLNAT => {
            // As NAT, and the client (quoted destination) becomes our local address.
            rewrite_outer(ctx, outer, 16, conn.to_addr[0])?;
            rewrite_quoted(ctx, outer.l4_off, 12, 0, conn.to_addr[0], conn.to_port)?;
            rewrite_quoted(ctx, outer.l4_off, 16, 2, conn.via_addr[0], conn.via_port)?;
            Hop::Routed
        }
        FWD_DROUTE => Hop::Bridged,
        _ => return None,
    };
    if conn.seq_delta != 0 && rd::<u8>(ctx, outer.l4_off + 8 + 9)? == IPPROTO_TCP {
        // SYNPROXY: the quoted reply carries our cookie's sequence numbers; the real server
        // only recognises its own.
        unshift_quoted_seq(ctx, outer.l4_off, conn.seq_delta)?;
    }
    // Either way the next hop is the real server.
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
    vip: u32,
    vport: u16,
    now: u64,
) -> Option<u32> {
    // The quoted packet was cip:cport -> rip:rport: put the VIP back as its destination, and as
    // the error's source when the real server itself sent it.
    let rip = outer.src[0];
    let quoted_dst_was_real = rd::<u32>(ctx, outer.l4_off + 8 + 16)?;
    rewrite_quoted(ctx, outer.l4_off, 16, 2, vip, vport)?;
    // FULLNAT: the quoted source and the error's destination are our local address: the client.
    let mut dst = outer.dst;
    if reply.fwd == FWD_FULLNAT {
        rewrite_quoted(ctx, outer.l4_off, 12, 0, reply.via_addr[0], reply.via_port)?;
        rewrite_outer(ctx, outer, 16, reply.via_addr[0])?;
        dst = reply.via_addr;
    }
    let src = if rip == quoted_dst_was_real {
        rewrite_outer(ctx, outer, 12, vip)?;
        vip
    } else {
        rip
    };
    let flow = Flow {
        saddr: [src, 0, 0, 0],
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

/// Takes `delta` off the quoted TCP sequence number (SYNPROXY), fixing the ICMP checksum (the
/// quoted TCP checksum is left as IPVS leaves quoted L4 checksums).
#[inline(always)]
fn unshift_quoted_seq(ctx: &XdpContext, icmp: usize, delta: u32) -> Option<()> {
    let seq = ptr_at::<u32>(ctx, icmp + 8 + 20 + 4)?;
    let icmp_check = ptr_at::<u16>(ctx, icmp + 2)?;
    // SAFETY: `seq` and `icmp_check` come from ptr_at just above (bounds checked against data_end);
    // unaligned accesses need no alignment.
    unsafe {
        let old = seq.read_unaligned();
        let new = u32::from_be(old).wrapping_sub(delta).to_be();
        seq.write_unaligned(new);
        icmp_check.write_unaligned(csum::replace4(icmp_check.read_unaligned(), old, new));
    }
    Some(())
}

/// Replaces the outer IPv4 address at `off` (12 source, 16 destination), fixing the IP checksum.
#[inline(always)]
fn rewrite_outer(ctx: &XdpContext, outer: &Packet, off: usize, addr: u32) -> Option<()> {
    let a = ptr_at::<u32>(ctx, outer.l3_off + off)?;
    let check = ptr_at::<u16>(ctx, outer.l3_off + 10)?;
    // SAFETY: `a` and `check` come from ptr_at just above (bounds checked against data_end);
    // unaligned accesses need no alignment.
    unsafe {
        let old = a.read_unaligned();
        a.write_unaligned(addr);
        check.write_unaligned(csum::replace4(check.read_unaligned(), old, addr));
    }
    Some(())
}

/// Replaces the quoted packet's address (at `addr_off` in its IP header) and port (at `port_off`
/// in its L4 header), fixing its IP checksum and the ICMP checksum that covers all of it.
#[inline(always)]
fn rewrite_quoted(
    ctx: &XdpContext,
    icmp: usize,
    addr_off: usize,
    port_off: usize,
    addr: u32,
    port: u16,
) -> Option<()> {
    let inner = icmp + 8;
    let icmp_check = ptr_at::<u16>(ctx, icmp + 2)?;
    let a = ptr_at::<u32>(ctx, inner + addr_off)?;
    let ip_check = ptr_at::<u16>(ctx, inner + 10)?;
    let p = ptr_at::<u16>(ctx, inner + 20 + port_off)?;
    // SAFETY: `a`, `ip_check` and `p` come from ptr_at just above (bounds checked against
    // data_end); unaligned accesses need no alignment.
    unsafe {
        let (old_a, old_p, old_ipc) = (
            a.read_unaligned(),
            p.read_unaligned(),
            ip_check.read_unaligned(),
        );
        let new_ipc = csum::replace4(old_ipc, old_a, addr);
        a.write_unaligned(addr);
        p.write_unaligned(port);
        ip_check.write_unaligned(new_ipc);
        let mut c = icmp_check.read_unaligned();
        c = csum::replace4(c, old_a, addr);
        c = csum::replace2(c, old_p, port);
        c = csum::replace2(c, old_ipc, new_ipc);
        icmp_check.write_unaligned(c);
    }
    Some(())
}
