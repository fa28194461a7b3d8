//! Scheduling a new connection: pick a destination id from the service's table. Tables are
//! computed in user space (rr: the available destinations in order; wrr: IPVS' weighted
//! sequence), so here a pick is one per-CPU counter step and one array read.

use ebpf_common::{Dest, Service};

use crate::maps::{DESTS, RR_POS, SCHED_TABLE};

/// The destination for a new connection of `svc`, or `None` when none is available.
#[inline(always)]
pub fn pick(svc: &Service) -> Option<(u32, Dest)> {
    let len = svc.table_len;
    if len == 0 {
        return None;
    }
    let pos = RR_POS.get_ptr_mut(svc.id)?;
    let slot = unsafe {
        let p = *pos;
        *pos = if p + 1 >= len { 0 } else { p + 1 };
        if p >= len { 0 } else { p }
    };
    let dest_id = *SCHED_TABLE.get(svc.table_base.wrapping_add(slot))?;
    let dest = unsafe { DESTS.get(dest_id) }?;
    // A table range can be reused by another service right after a swap: never cross services.
    if dest.svc_id != svc.id {
        return None;
    }
    Some((dest_id, *dest))
}
