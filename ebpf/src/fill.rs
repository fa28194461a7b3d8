//! How full the connection table is, and the table-full policy (`ebpf_common::ConnFill`).
//! Every entry the packet path creates in CONNS is counted here (atomically: all CPUs open
//! connections), every entry it removes taken off; user space counts its own changes and
//! moves the LRU's silent evictions into `evicted` (dataplane::timers). With the `refuse`
//! policy a new connection that would not fit is dropped before anything is scheduled, so an
//! established connection never loses its entries to a newcomer.

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use ebpf_common::{Conn, FlowKey};

use crate::maps::{CONN_FILL, CONNS};

/// BPF_NOEXIST: insert only if the key is not there yet.
const BPF_NOEXIST: u64 = 1;

#[inline(always)]
fn add(delta: u64) {
    if let Some(f) = CONN_FILL.get_ptr_mut(0) {
        // The helper's return value is not reliable on this target; only the add is used.
        // SAFETY: `f` is a map value pointer from get_ptr_mut: non-null, aligned and valid for this
        // program run; the add is atomic.
        unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(&mut (*f).entries, delta) };
    }
}

/// Whether the table-full policy refuses a new connection now. Asked before scheduling, when
/// it is not known yet whether the connection takes one entry or two: room for two is asked.
#[inline(always)]
pub fn refuses() -> bool {
    match CONN_FILL.get(0) {
        Some(f) => {
            // SAFETY: `f` is a live map value reference; a volatile read of a u64 field of it.
            let entries = unsafe { core::ptr::read_volatile(&f.entries) };
            f.refuse_above != 0 && entries.saturating_add(2) > f.refuse_above
        }
        None => false,
    }
}

/// Inserts or replaces the entry at `key`, counting it when it is new.
#[inline(always)]
pub fn insert(key: &FlowKey, conn: &Conn) -> Result<(), i32> {
    crate::addr_filter::note_entry(key, conn);
    if CONNS.insert(key, conn, BPF_NOEXIST).is_ok() {
        add(1);
        return Ok(());
    }
    // It exists: the ended connection it belonged to is being replaced.
    CONNS.insert(key, conn, 0)
}

/// Inserts the entry at `key` only if there is none (FULLNAT's port allocation).
#[inline(always)]
pub fn insert_new(key: &FlowKey, conn: &Conn) -> bool {
    crate::addr_filter::note_entry(key, conn);
    let ok = CONNS.insert(key, conn, BPF_NOEXIST).is_ok();
    if ok {
        add(1);
    }
    ok
}

/// Removes the entry at `key`, if any.
#[inline(always)]
pub fn remove(key: &FlowKey) {
    if CONNS.remove(key).is_ok() {
        add(u64::MAX);
    }
}
