//! NAT connections with one entry (`ebpf_common::CONN_X_ONE_ENTRY`): no REPLY entry; a packet
//! from the real server finds the CLIENT entry by the key its real's owner (NAT_OWNERS, written
//! by user space) derives. Whether a connection is one is decided once, when it opens, from the
//! same map, so the derivation never guesses: a connection whose CLIENT key is addressed to its
//! real's owner is found again from any reply.

use aya_ebpf::macros::map;
use ebpf_common::{Conn, FlowKey, ServiceKey, answers, nat_real_key, one_entry_client_key};

use crate::addr_filter;
use crate::maps::{CONNS, NAT_OWNERS};
use crate::stage::Scratch;

/// The keys being built (the stacks of the programs asking have no room for them).
#[repr(C)]
struct Keys {
    client: FlowKey,
    real: ServiceKey,
}

#[map]
static KEYS: Scratch<Keys> = Scratch::new();

/// Whether a NAT connection opening at `flow` (the client's packet) to the real server
/// `addr`:`port` of family `af` is found again from its replies without a REPLY entry.
#[inline(always)]
pub fn derivable(flow: &FlowKey, af: u8, addr: &[u32; 4], port: u16) -> bool {
    if af != flow.af || port == 0 || flow.dport == 0 {
        return false;
    }
    let Some(keys) = KEYS.get() else {
        return false;
    };
    keys.real = nat_real_key(af, flow.proto, addr, port);
    // SAFETY: the value is read within this run; a map value lives for the whole run (RCU).
    match unsafe { NAT_OWNERS.get(&keys.real) } {
        Some(owner) => owner.port == flow.dport && owner.addr == flow.dst,
        None => false,
    }
}

/// The one-entry connection a packet `reply` (as on the wire: from a real server) answers: its
/// CLIENT entry and its real's owner (the VIP:vport the reply must come from). `None` for
/// anything else (then the packet's own key is looked up as usual).
#[inline(always)]
pub fn client_of(reply: &FlowKey) -> Option<(*mut Conn, &'static ServiceKey)> {
    if !addr_filter::may_be_real(reply.af, &reply.src) {
        return None;
    }
    let keys = KEYS.get()?;
    keys.real = nat_real_key(reply.af, reply.proto, &reply.src, reply.sport);
    // SAFETY: NAT_OWNERS entries are only ever added, never changed or removed while a program
    // runs: the reference stays valid (RCU) for this run, the only use of its `'static`.
    let owner: &'static ServiceKey = unsafe { NAT_OWNERS.get(&keys.real)? };
    keys.client = one_entry_client_key(reply, owner);
    let entry = CONNS.get_ptr_mut(&keys.client)?;
    // SAFETY: a map value pointer from get_ptr_mut: non-null, aligned, valid for this run.
    if answers(unsafe { &*entry }, &reply.src, reply.sport) {
        Some((entry, owner))
    } else {
        None
    }
}
