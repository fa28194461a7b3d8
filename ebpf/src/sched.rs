//! Scheduling a new connection: pick a destination id from the service's table, computed in user
//! space. Walk schedulers (rr, wrr, and for now the connection-count family) step through the
//! table with one position shared by all CPUs; hash schedulers (sh, dh, mh) index it with a hash of the client
//! address (sh, mh; plus port with sh-port/mh-port) or of the destination address (dh).

use ebpf_common::{Dest, SCHED_DH, SCHED_MH, SCHED_SH, SVC_F_SCHED2, Service, mh_slot, sh_bucket};

use crate::maps::{DESTS, RR_POS, SCHED_TABLE};
use crate::parse::Packet;

/// The destination for a new connection of `svc`, or `None` when none is available.
#[inline(always)]
pub fn pick(svc: &Service, pkt: &Packet) -> Option<(u32, Dest)> {
    if svc.table_len == 0 {
        return None;
    }
    match svc.sched {
        SCHED_SH | SCHED_DH | SCHED_MH => pick_hashed(svc, pkt),
        _ => pick_walk(svc),
    }
}

#[inline(always)]
fn pick_walk(svc: &Service) -> Option<(u32, Dest)> {
    let pos = RR_POS.get_ptr_mut(svc.id)?;
    // One atomic step for all CPUs (BPF_ATOMIC fetch-add).
    // Shared by all CPUs so the order is IPVS' global one. Not atomic: the BPF target offers no
    // fetch-add from Rust here (the intrinsic compiles to a plain XADD whose result is garbage),
    // so two CPUs opening connections at the same instant may take the same slot; the order
    // then resumes. Cheaper than an atomic on the new-connection path anyway.
    let p = unsafe {
        let p = *pos;
        *pos = p.wrapping_add(1);
        p
    };
    dest_at(svc, (p % svc.table_len as u64) as u32)
}

#[inline(always)]
fn pick_hashed(svc: &Service, pkt: &Packet) -> Option<(u32, Dest)> {
    // Host-order address as IPVS hashes it (IPv6: the four words folded by xor first).
    let a = if svc.sched == SCHED_DH {
        &pkt.dst
    } else {
        &pkt.src
    };
    let addr = u32::from_be(a[0] ^ a[1] ^ a[2] ^ a[3]);
    let port = if svc.flags & SVC_F_SCHED2 != 0 && svc.sched != SCHED_DH {
        u16::from_be(pkt.sport)
    } else {
        0
    };
    let slot = if svc.sched == SCHED_MH {
        mh_slot(addr, port, 0)
    } else {
        sh_bucket(addr, port, 0)
    };
    // With sh-fallback, user space has already resolved IPVS' fallback walk into the table, so
    // an unavailable real found here means there is no available one at all.
    dest_at(svc, slot).filter(|(_, d)| d.weight > 0)
}

/// The destination in `slot` of the service's table range, if it still belongs to the service.
#[inline(always)]
fn dest_at(svc: &Service, slot: u32) -> Option<(u32, Dest)> {
    if slot >= svc.table_len {
        return None;
    }
    let dest_id = *SCHED_TABLE.get(svc.table_base.wrapping_add(slot))?;
    let dest = unsafe { DESTS.get(dest_id) }?;
    // A table range can be reused by another service right after a swap: never cross services.
    if dest.svc_id != svc.id {
        return None;
    }
    Some((dest_id, *dest))
}
