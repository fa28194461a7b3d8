//! Scheduling a new connection: pick a destination id from the service's table, computed in user
//! space. Walk schedulers (rr, wrr, and for now the connection-count family) step through the
//! table with one position shared by all CPUs; hash schedulers (sh, dh, mh) index it with a hash of the client
//! address (sh, mh; plus port with sh-port/mh-port) or of the destination address (dh).

//!
//! Services whose scheduler needs connection counts (lc, wlc, sed, nq, ovf, lblc, lblcr) or that
//! have thresholds (`SVC_F_SCHED_SCAN`) are scheduled by their own program, `xlvs_sched`
//! (`sched_scan.rs`, reached by tail call: its loop over the destinations would not fit in this
//! program), which leaves its pick for this program in `SCHED_PICK`.

use ebpf_common::{
    Dest, FlowKey, SCHED_DH, SCHED_MH, SCHED_SH, SVC_F_SCHED_SCAN, SVC_F_SCHED2, Service, mh_slot,
    sh_bucket,
};

use aya_ebpf::macros::map;

use crate::maps::{DESTS, RR_POS, SCHED_TABLE};
use crate::parse::Packet;
use crate::stage::Handoff;

/// The scan scheduler's answer for one flow, handed back to the new-connection stage.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Pick {
    pub flow: FlowKey,
    /// The destination picked; NO_DEST when none was available.
    pub dest_id: u32,
    pub _pad: u32,
}

#[map]
static SCHED_PICK: Handoff<Pick> = Handoff::new();

pub const NO_DEST: u32 = u32::MAX;

/// Whether `xlvs_sched` left its pick for this flow of scan service `svc`.
#[inline(always)]
pub fn scan_pick_ready(svc: &Service, flow: &FlowKey) -> bool {
    if svc.flags & SVC_F_SCHED_SCAN == 0 {
        return false;
    }
    match SCHED_PICK.peek() {
        Some(m) => same_flow(&m.flow, flow),
        None => false,
    }
}

/// Field by field: a derived comparison of the arrays may become a byte loop.
#[inline(always)]
fn same_flow(a: &FlowKey, b: &FlowKey) -> bool {
    a.src[0] == b.src[0]
        && a.src[1] == b.src[1]
        && a.src[2] == b.src[2]
        && a.src[3] == b.src[3]
        && a.dst[0] == b.dst[0]
        && a.dst[1] == b.dst[1]
        && a.dst[2] == b.dst[2]
        && a.dst[3] == b.dst[3]
        && a.sport == b.sport
        && a.dport == b.dport
        && a.proto == b.proto
}

/// The destination for a new connection of `svc`, or `None` when none is available.
#[inline(always)]
pub fn pick(svc: &Service, pkt: &Packet) -> Option<(u32, Dest)> {
    if svc.table_len == 0 {
        return None;
    }
    if svc.flags & SVC_F_SCHED_SCAN != 0 {
        // Only reached when scan_pick_ready said so.
        return take_scan_pick(svc);
    }
    match svc.sched {
        SCHED_SH | SCHED_DH | SCHED_MH => pick_hashed(svc, pkt),
        _ => pick_walk(svc),
    }
}

/// The pick `xlvs_sched` left (for this flow: `needs_scan` said so), consumed.
#[inline(always)]
fn take_scan_pick(svc: &Service) -> Option<(u32, Dest)> {
    let m = SCHED_PICK.take()?;
    // SAFETY: the destination is copied or used within this run; a map value lives for the whole
    // program run (RCU).
    let dest = unsafe { DESTS.get(m.dest_id) }?;
    if dest.svc_id != svc.id {
        return None;
    }
    Some((m.dest_id, *dest))
}

/// Leaves the scan scheduler's pick for the main program.
#[inline(always)]
pub fn leave_scan_pick(flow: &FlowKey, dest_id: u32) -> bool {
    let Some(m) = SCHED_PICK.put() else {
        return false;
    };
    m.flow = *flow;
    m.dest_id = dest_id;
    true
}

/// Disarms a pick nobody took (the tail call back failed).
#[inline(always)]
pub fn drop_scan_pick() {
    SCHED_PICK.cancel();
}

#[inline(always)]
fn pick_walk(svc: &Service) -> Option<(u32, Dest)> {
    let pos = RR_POS.get_ptr_mut(svc.id)?;
    // One atomic step for all CPUs (BPF_ATOMIC fetch-add).
    // Shared by all CPUs so the order is IPVS' global one. Not atomic: the BPF target offers no
    // fetch-add from Rust here (the intrinsic compiles to a plain XADD whose result is garbage),
    // so two CPUs opening connections at the same instant may take the same slot; the order
    // then resumes. Cheaper than an atomic on the new-connection path anyway.
    // SAFETY: `pos` is a map value pointer from get_ptr_mut: non-null, aligned and valid for this
    // program run (the race is on the value only, see above).
    let p = unsafe {
        let p = *pos;
        *pos = p.wrapping_add(1);
        p
    };
    dest_at(svc, (p % svc.table_len as u64) as u32)
}

#[inline(always)]
pub fn pick_hashed(svc: &Service, pkt: &Packet) -> Option<(u32, Dest)> {
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
pub fn dest_at(svc: &Service, slot: u32) -> Option<(u32, Dest)> {
    if slot >= svc.table_len {
        return None;
    }
    let dest_id = *SCHED_TABLE.get(svc.table_base.wrapping_add(slot))?;
    // SAFETY: the destination is used within this run; a map value lives for the whole program run
    // (RCU).
    let dest = unsafe { DESTS.get(dest_id) }?;
    // A table range can be reused by another service right after a swap: never cross services.
    if dest.svc_id != svc.id {
        return None;
    }
    Some((dest_id, *dest))
}
