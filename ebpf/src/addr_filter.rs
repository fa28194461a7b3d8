//! The packet path's first question: can this packet belong to a connection at all? Only if it
//! is addressed to a VIP (or an address written in a CLIENT entry), or comes from a real server
//! (a REPLY entry's source), or an fwmark rule may cover it. Anything else (a host's other
//! traffic) passes without a lookup in the connection table, whose buckets are cold for flows
//! it does not hold. ADDR_FILTER (`ebpf_common::ADDR_FILTER_SLOTS`) answers with two array
//! reads; a false "maybe" only costs the lookup it saves otherwise.

use ebpf_common::{
    ADDR_FILTER_READY, ADDR_FILTER_SRC, CONN_F_REPLY, Conn, FlowKey, addr_filter_slot,
};

use crate::maps::ADDR_FILTER;
use crate::parse::Packet;

/// Whether the packet's addresses may be those of a connection (always, until user space has
/// filled the filter).
#[inline(always)]
pub fn may_be_ours(pkt: &Packet) -> bool {
    if !marked(ADDR_FILTER_READY) {
        return true;
    }
    marked(addr_filter_slot(pkt.af, &pkt.dst))
        || marked(ADDR_FILTER_SRC + addr_filter_slot(pkt.af, &pkt.src))
}

/// An entry goes into the connection table at `key`: its address the filter must let through
/// (a REPLY entry's source, a CLIENT entry's destination) is marked, if it is not yet (an
/// fwmark connection's destination is any address its rules cover; user space marks VIPs and
/// real servers beforehand, but a mark here costs one read and keeps every entry reachable).
#[inline(always)]
pub fn note_entry(key: &FlowKey, conn: &Conn) {
    let index = if conn.flags & CONN_F_REPLY != 0 {
        ADDR_FILTER_SRC + addr_filter_slot(key.af, &key.src)
    } else {
        addr_filter_slot(key.af, &key.dst)
    };
    // SAFETY: `slot` is a map value pointer from get_ptr_mut: non-null, aligned and valid for this
    // program run.
    if let Some(slot) = ADDR_FILTER.get_ptr_mut(index)
        && unsafe { *slot } == 0
    {
        // SAFETY: `slot` is the map value pointer from get_ptr_mut above, valid for this program
        // run.
        unsafe { *slot = 1 };
    }
}

/// Whether `addr` may be a real server's (its replies may belong to a connection).
#[inline(always)]
pub fn may_be_real(af: u8, addr: &[u32; 4]) -> bool {
    !marked(ADDR_FILTER_READY) || marked(ADDR_FILTER_SRC + addr_filter_slot(af, addr))
}

#[inline(always)]
fn marked(index: u32) -> bool {
    ADDR_FILTER.get(index).copied().unwrap_or(1) != 0
}
