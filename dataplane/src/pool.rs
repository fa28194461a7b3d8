//! Allocation of scheduler-table ranges in the shared SCHED_TABLE pool. The set of used ranges is
//! derived from the services themselves (each owns `[table_base, table_base + table_len)`), so
//! nothing extra has to be kept consistent.

use std::collections::BTreeMap;

/// Free space of a pool of `size` slots, given the ranges in use.
pub struct Pool {
    /// Used ranges, start -> length (non-overlapping).
    used: BTreeMap<u32, u32>,
    size: u32,
}

impl Pool {
    pub fn new(size: u32, used: impl IntoIterator<Item = (u32, u32)>) -> Pool {
        Pool {
            used: used.into_iter().filter(|(_, len)| *len > 0).collect(),
            size,
        }
    }

    /// End of the highest used range.
    fn tail(&self) -> u32 {
        self.used.last_key_value().map(|(s, l)| s + l).unwrap_or(0)
    }

    /// Allocates `len` slots: after the highest range when there is room (the common case, O(log n)),
    /// else in the first gap large enough. `None` when no gap is.
    pub fn alloc(&mut self, len: u32) -> Option<u32> {
        if len == 0 {
            return Some(0);
        }
        let tail = self.tail();
        if self.size.saturating_sub(tail) >= len {
            self.used.insert(tail, len);
            return Some(tail);
        }
        let mut cursor = 0u32;
        let mut found = None;
        for (start, used_len) in &self.used {
            if start.saturating_sub(cursor) >= len {
                found = Some(cursor);
                break;
            }
            cursor = cursor.max(start + used_len);
        }
        let start = found?;
        self.used.insert(start, len);
        Some(start)
    }

    /// Returns a range to the pool.
    pub fn free(&mut self, start: u32, len: u32) {
        if len > 0 && self.used.get(&start) == Some(&len) {
            self.used.remove(&start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_at_the_tail_then_in_gaps_and_reports_exhaustion() {
        let mut p = Pool::new(10, [(0, 2), (5, 2)]);
        assert_eq!(p.alloc(3), Some(7), "after the highest range first");
        assert_eq!(p.alloc(3), Some(2), "then the first gap that fits");
        assert_eq!(p.alloc(1), None);
        p.free(2, 3);
        assert_eq!(p.alloc(1), Some(2));
        assert_eq!(p.alloc(0), Some(0));
    }
}
