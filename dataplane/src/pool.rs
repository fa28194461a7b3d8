//! Allocation of scheduler-table ranges in the shared SCHED_TABLE pool. The set of used ranges is
//! derived from the services themselves (each owns `[table_base, table_base + table_len)`), so
//! nothing extra has to be kept consistent.

/// Free space of a pool of `size` slots, given the ranges in use.
pub struct Pool {
    /// Sorted, non-overlapping used ranges (start, len).
    used: Vec<(u32, u32)>,
    size: u32,
}

impl Pool {
    pub fn new(size: u32, used: impl IntoIterator<Item = (u32, u32)>) -> Pool {
        let mut used: Vec<_> = used.into_iter().filter(|(_, len)| *len > 0).collect();
        used.sort_unstable();
        Pool { used, size }
    }

    /// First-fit allocation of `len` slots, or `None` when no gap is large enough.
    pub fn alloc(&mut self, len: u32) -> Option<u32> {
        if len == 0 {
            return Some(0);
        }
        let mut cursor = 0u32;
        for (i, (start, used_len)) in self.used.iter().enumerate() {
            if start.saturating_sub(cursor) >= len {
                self.used.insert(i, (cursor, len));
                return Some(cursor);
            }
            cursor = cursor.max(start + used_len);
        }
        if self.size.saturating_sub(cursor) >= len {
            self.used.push((cursor, len));
            return Some(cursor);
        }
        None
    }

    /// Returns a range to the pool.
    pub fn free(&mut self, start: u32, len: u32) {
        if let Some(i) = self.used.iter().position(|r| *r == (start, len)) {
            self.used.remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_fit_uses_gaps_and_reports_exhaustion() {
        let mut p = Pool::new(10, [(0, 2), (5, 2)]);
        assert_eq!(p.alloc(3), Some(2));
        assert_eq!(p.alloc(3), Some(7));
        assert_eq!(p.alloc(1), None);
        p.free(2, 3);
        assert_eq!(p.alloc(1), Some(2));
        assert_eq!(p.alloc(0), Some(0));
    }
}
