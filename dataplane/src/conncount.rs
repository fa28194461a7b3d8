//! User space's hand on DEST_CONNS, IPVS' activeconns/inactconns and overload flag per
//! destination (see `ebpf_common::DestConns`). The packet path changes the counts with atomic
//! adds; user space must too (a map update would overwrite a concurrent add), so the array is
//! created BPF_F_MMAPABLE and mapped here, and every change is an atomic operation on the shared
//! memory.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use ebpf_common::{DestConns, maps as names};

use crate::error::Result;
use crate::shared::SharedArray;

/// DestConns, field by field, as atomics over the shared mapping.
#[repr(C)]
struct Shared {
    active: AtomicU64,
    inactive: AtomicU64,
    overloaded: AtomicU64,
    _spare: AtomicU64,
}

const _: () = assert!(std::mem::size_of::<Shared>() == std::mem::size_of::<DestConns>());

/// DEST_CONNS, mapped: each destination's active/inactive counts and overload flag.
pub struct DestConnsMap(SharedArray<Shared>);

impl DestConnsMap {
    /// Maps the pinned DEST_CONNS under `dir`.
    pub fn open(dir: &Path) -> Result<DestConnsMap> {
        SharedArray::open(dir, names::DEST_CONNS, std::mem::size_of::<DestConns>())
            .map(DestConnsMap)
    }

    fn slot(&self, id: u32) -> Option<&Shared> {
        self.0.slot(id)
    }

    /// The counts of destination `id` (active, inactive, overloaded); negative transients read 0.
    pub fn get(&self, id: u32) -> (u64, u64, bool) {
        let Some(s) = self.slot(id) else {
            return (0, 0, false);
        };
        let read = |a: &AtomicU64| (a.load(Ordering::Relaxed) as i64).max(0) as u64;
        (
            read(&s.active),
            read(&s.inactive),
            s.overloaded.load(Ordering::Relaxed) != 0,
        )
    }

    /// Raw counters, for corrections: (active, inactive) as the packet path sees them.
    pub fn raw(&self, id: u32) -> (u64, u64) {
        match self.slot(id) {
            Some(s) => (
                s.active.load(Ordering::Relaxed),
                s.inactive.load(Ordering::Relaxed),
            ),
            None => (0, 0),
        }
    }

    /// Adds signed deltas (a connection expired: -1; a recount's correction).
    pub fn add(&self, id: u32, active: i64, inactive: i64) {
        if let Some(s) = self.slot(id) {
            s.active.fetch_add(active as u64, Ordering::Relaxed);
            s.inactive.fetch_add(inactive as u64, Ordering::Relaxed);
        }
    }

    /// A fresh destination id: no connections, not overloaded.
    pub fn reset(&self, id: u32) {
        if let Some(s) = self.slot(id) {
            s.active.store(0, Ordering::Relaxed);
            s.inactive.store(0, Ordering::Relaxed);
            s.overloaded.store(0, Ordering::Relaxed);
        }
    }

    /// Takes destination `id` out of overload (its thresholds changed or it left).
    pub fn clear_overload(&self, id: u32) {
        if let Some(s) = self.slot(id) {
            s.overloaded.store(0, Ordering::Relaxed);
        }
    }

    /// IPVS ip_vs_unbind_dest's rule after a connection ended: below the lower threshold (or,
    /// without one, below 3/4 of the upper one) new connections may come again.
    pub fn settle_overload(&self, id: u32, u_threshold: u32, l_threshold: u32) {
        let Some(s) = self.slot(id) else { return };
        if s.overloaded.load(Ordering::Relaxed) == 0 {
            return;
        }
        let (a, i, _) = self.get(id);
        let n = a + i;
        let clear = if l_threshold != 0 {
            n < l_threshold as u64
        } else if u_threshold != 0 {
            n * 4 < u_threshold as u64 * 3
        } else {
            true
        };
        if clear {
            s.overloaded.store(0, Ordering::Relaxed);
        }
    }
}
