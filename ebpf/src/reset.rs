//! RSTs for TCP segments of connections the director does not (or no longer fully) know: a
//! segment without a connection that is not a SYN (its entries were evicted from a full table,
//! expired, or belong to another director), and the next segment matching an entry whose other
//! half was evicted (CONN_F_ORPHAN, marked by user space). Its sender gets a RST with the
//! sequence number it acknowledged (RFC 793: accepted as in-window), so the client or real
//! server learns at once that the connection is over. The kernel's stack answers such
//! segments the same way behind kernel IPVS.

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use ebpf_common::{CONN_F_ORPHAN, Stage, counter};

use crate::maps::{CONNS, count};
use crate::parse;
use crate::proto::{IPPROTO_TCP, TCP_ACK, TCP_ACK_SEQ, TCP_RST, TCP_SYN};
use crate::stage::jump;
use crate::synproxy::{self, Tcp};

/// Hands the packet to `xlvs_reset`.
#[inline(always)]
pub fn call(ctx: &XdpContext) -> u32 {
    jump(ctx, Stage::Reset)
}

#[inline(always)]
pub fn handle(ctx: &XdpContext) -> u32 {
    let Ok(pkt) = parse::parse(ctx) else {
        count(counter::DROP_NO_SESSION);
        return xdp_action::XDP_DROP;
    };
    let flow = pkt.flow();
    // SAFETY: the entry is used within this run; a map value lives for the whole program run (RCU)
    // even if another CPU deletes its entry.
    if let Some(entry) = unsafe { CONNS.get(&flow) }
        && entry.flags & CONN_F_ORPHAN != 0
    {
        crate::fill::remove(&flow);
        if pkt.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN {
            // A new connection on the same addresses and ports: it opens as any other.
            return jump(ctx, Stage::Main);
        }
    }
    // Never a RST for a RST; a segment without ACK (a stray SYN-less, ACK-less one) has no
    // number to answer with. Packets with IPv4 options or IPv6 extension headers are not
    // rewritten into a RST (their headers would have to move).
    if pkt.proto != IPPROTO_TCP
        || pkt.tcp_flags & (TCP_RST | TCP_ACK) != TCP_ACK
        || !synproxy::applies(&pkt)
    {
        count(counter::DROP_NO_SESSION);
        return xdp_action::XDP_DROP;
    }
    let rst = Tcp {
        sport: pkt.dport,
        dport: pkt.sport,
        seq: synproxy::read_u32(ctx, pkt.l4_off + TCP_ACK_SEQ),
        ack: 0,
        flags: TCP_RST,
        window: 0,
    };
    let no_options = [0u8; 32];
    let built = if pkt.is_v6() {
        synproxy::build::<true>(ctx, &pkt, &rst, &no_options, true, 20)
    } else {
        synproxy::build::<false>(ctx, &pkt, &rst, &no_options, true, 20)
    };
    if !built {
        count(counter::DROP_NO_SESSION);
        return xdp_action::XDP_DROP;
    }
    count(counter::RST_SENT);
    crate::forward::back_out(ctx)
}
