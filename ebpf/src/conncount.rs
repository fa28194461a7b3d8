//! IPVS' per-destination connection counts: activeconns (TCP connections in ESTABLISHED) and
//! inactconns (every other one, UDP included), and the overload flag of the upper/lower
//! thresholds (`-x`/`-y`). A connection is counted when it opens, moves between the two counts
//! when its state crosses ESTABLISHED, and is taken off when it ends: here when a new connection
//! replaces its entry, in user space (`dataplane::timers`) when it expires. Several CPUs open
//! connections to one real at once, so every change is an atomic add.

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use ebpf_common::{CONN_F_COUNTED, Conn, DestConns, IPPROTO_TCP, S_ESTABLISHED};

use crate::maps::{DEST_CONNS, DESTS};

#[inline(always)]
fn add(counter: &mut u64, delta: u64) {
    // The helper's return value is not reliable on this target; only the add is used.
    // SAFETY: `counter` is a live `&mut u64` into a map value, aligned for the atomic add.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(counter, delta) };
}

#[inline(always)]
fn is_active(proto: u8, state: u8) -> bool {
    proto == IPPROTO_TCP && state == S_ESTABLISHED
}

/// A new connection (inactive: SYN_RECV or UDP) to destination `dest_id` with upper threshold
/// `u_threshold`, counted when the scan scheduler picks it (its CLIENT entry then carries
/// CONN_F_COUNTED). Only in `xlvs_sched`: in the new-connection program this code multiplied
/// the verifier's paths past its limit.
#[inline(always)]
pub fn opened(dest_id: u32, u_threshold: u32) {
    let Some(c) = DEST_CONNS.get_ptr_mut(dest_id) else {
        return;
    };
    // SAFETY: `c` is a map value pointer from get_ptr_mut: non-null, aligned and valid for this
    // program run (other CPUs touch it only with atomics).
    let c = unsafe { &mut *c };
    add(&mut c.inactive, 1);
    // IPVS ip_vs_bind_dest: at or above the upper threshold, no new connections.
    if u_threshold != 0 && total(c) >= u_threshold as u64 {
        c.overloaded = 1;
    }
}

/// The connection's TCP state went from `old` to `conn.state`. Inlined: it runs in programs
/// whose stack has no room for a call (SYNPROXY's).
#[inline(always)]
pub fn moved(conn: &Conn, proto: u8, old: u8) {
    if conn.flags & CONN_F_COUNTED == 0 {
        return;
    }
    let (was, is) = (is_active(proto, old), is_active(proto, conn.state));
    if was == is {
        return;
    }
    let Some(c) = DEST_CONNS.get_ptr_mut(conn.dest_id) else {
        return;
    };
    // SAFETY: `c` is a map value pointer from get_ptr_mut: non-null, aligned and valid for this
    // program run (other CPUs touch it only with atomics).
    let c = unsafe { &mut *c };
    if is {
        add(&mut c.active, 1);
        add(&mut c.inactive, u64::MAX);
    } else {
        add(&mut c.inactive, 1);
        add(&mut c.active, u64::MAX);
    }
}

/// The connection ends (its entry is about to be replaced): taken off its destination's counts,
/// and the overload flag cleared as IPVS' ip_vs_unbind_dest does.
// Its own BPF function: inlined, its branches multiply the verifier's paths through the
// main program past its limit.
#[inline(never)]
pub fn closed(conn: &mut Conn, proto: u8) {
    if conn.flags & CONN_F_COUNTED == 0 {
        return;
    }
    conn.flags &= !CONN_F_COUNTED;
    let Some(c) = DEST_CONNS.get_ptr_mut(conn.dest_id) else {
        return;
    };
    // SAFETY: `c` is a map value pointer from get_ptr_mut: non-null, aligned and valid for this
    // program run (other CPUs touch it only with atomics).
    let c = unsafe { &mut *c };
    if is_active(proto, conn.state) {
        add(&mut c.active, u64::MAX);
    } else {
        add(&mut c.inactive, u64::MAX);
    }
    if c.overloaded != 0 {
        // SAFETY: the destination is read at once; a map value lives for the whole program run
        // (RCU).
        let (u, l) = match unsafe { DESTS.get(conn.dest_id) } {
            Some(d) => (d.u_threshold as u64, d.l_threshold as u64),
            None => (0, 0),
        };
        let n = total(c);
        let clear = if l != 0 {
            n < l
        } else if u != 0 {
            n * 4 < u * 3
        } else {
            true
        };
        if clear {
            c.overloaded = 0;
        }
    }
}

/// active + inactive, read fresh (other CPUs add concurrently).
#[inline(always)]
fn total(c: &DestConns) -> u64 {
    // SAFETY: volatile reads of fields of a live `&DestConns`.
    let a = unsafe { core::ptr::read_volatile(&c.active) };
    // SAFETY: volatile reads of fields of a live `&DestConns`.
    let i = unsafe { core::ptr::read_volatile(&c.inactive) };
    a.wrapping_add(i)
}
