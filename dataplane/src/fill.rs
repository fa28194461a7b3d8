//! How full the connection table is and what happens when it is full (`ebpf_common::ConnFill`,
//! shared with the packet path through a mapping: both sides count with atomic adds).
//!
//! Policies: `evict` (the default) lets a new connection take the place of the least recently
//! used entry, as IPVS' drop_entry defence sheds entries under memory pressure instead of
//! refusing clients: under a SYN flood the flood's half-open entries are the ones that go while
//! connections that carry traffic keep theirs, and the director keeps accepting. The ends of an
//! evicted TCP connection get a RST on their next segment (the packet path), so nobody waits on
//! it. `refuse` never takes an established connection's entries: a new connection that does not
//! fit is dropped (counter `drop_table_full`) — right where SYNPROXY keeps floods out of the
//! table, or where long idle connections must survive.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use ebpf_common::{ConnFill, maps as names};

use crate::error::Result;
use crate::shared::SharedArray;

/// ConnFill as atomics over the shared mapping.
#[repr(C)]
struct Shared {
    entries: AtomicU64,
    refuse_above: AtomicU64,
    evicted: AtomicU64,
    _spare: AtomicU64,
}

/// What a full connection table does with a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableFull {
    /// A new connection takes the least recently used entry's place.
    Evict,
    /// A new connection is dropped; established ones are kept.
    Refuse,
}

impl TableFull {
    /// The policy's name in `--table-full` and `xlvs status`.
    pub fn name(self) -> &'static str {
        match self {
            TableFull::Evict => "evict",
            TableFull::Refuse => "refuse",
        }
    }

    /// The policy called `name`, if any.
    pub fn from_name(name: &str) -> Option<TableFull> {
        match name {
            "evict" => Some(TableFull::Evict),
            "refuse" => Some(TableFull::Refuse),
            _ => None,
        }
    }
}

/// Entries the connection map holds beyond its capacity. The LRU hands out free entries to
/// each CPU in batches of 128 and starts evicting when its global free list runs short, while
/// other CPUs may still hold parts of a batch: this headroom lets the `refuse` policy stop at
/// the capacity before any eviction can happen.
pub fn lru_headroom() -> u32 {
    let cpus = crate::stats::nr_cpus().unwrap_or(1) as u32;
    (cpus + 2) * 256
}

/// CONN_FILL, mapped: the connection table's entry count, evictions and policy.
pub struct ConnFillMap(SharedArray<Shared>);

impl ConnFillMap {
    /// Maps the pinned CONN_FILL under `dir`.
    pub fn open(dir: &Path) -> Result<ConnFillMap> {
        SharedArray::open(dir, names::CONN_FILL, std::mem::size_of::<ConnFill>()).map(ConnFillMap)
    }

    fn shared(&self) -> &Shared {
        self.0.slot(0).expect("CONN_FILL has one entry")
    }

    /// Entries counted in the table (a transient negative count reads 0).
    pub fn entries(&self) -> u64 {
        (self.shared().entries.load(Ordering::Relaxed) as i64).max(0) as u64
    }

    /// Entries the LRU evicted since the table was made.
    pub fn evicted(&self) -> u64 {
        self.shared().evicted.load(Ordering::Relaxed)
    }

    /// The table-full policy in force.
    pub fn policy(&self) -> TableFull {
        if self.shared().refuse_above.load(Ordering::Relaxed) == 0 {
            TableFull::Evict
        } else {
            TableFull::Refuse
        }
    }

    /// Sets the policy; `capacity` is the number of entries `refuse` admits.
    pub fn set_policy(&self, policy: TableFull, capacity: u64) {
        let limit = match policy {
            TableFull::Evict => 0,
            TableFull::Refuse => capacity.max(1),
        };
        self.shared().refuse_above.store(limit, Ordering::Relaxed);
    }

    /// User space added (`n` > 0) or removed (`n` < 0) entries.
    pub fn add(&self, n: i64) {
        self.shared().entries.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The count says `n` more entries than the table holds: the LRU evicted them.
    pub fn note_evicted(&self, n: u64) {
        let s = self.shared();
        s.entries.fetch_sub(n, Ordering::Relaxed);
        s.evicted.fetch_add(n, Ordering::Relaxed);
    }
}
