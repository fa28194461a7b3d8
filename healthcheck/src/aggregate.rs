//! One real server's state from its checkers' states (pure).
//!
//! keepalived (`ipwrapper.c`): a real is alive while none of its checkers
//! is failed; a real without checkers is always alive. Its weight is the
//! configured one, replaced by `misc_dynamic` exit codes (code - 2) and
//! moved by FILE_CHECK values (`value * weight`, added).

use std::collections::BTreeMap;

/// Identifies one checker of a real across reloads (assigned by the
/// supervisor; opaque here).
pub type CheckerId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    up: bool,
    /// FILE_CHECK contribution added to the weight while up.
    weight_delta: i32,
}

/// The state of one real server, combined from its checkers.
#[derive(Debug, Clone)]
pub struct RealAgg {
    base_weight: i32,
    /// Weight set by a `misc_dynamic` checker (replaces the base weight).
    dynamic_weight: Option<i32>,
    slots: BTreeMap<CheckerId, Slot>,
    /// What was last published (alive, weight).
    published: (bool, i32),
}

/// A change of the real's published state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// The real is alive (no checker failed).
    pub up: bool,
    /// Its weight now.
    pub weight: i32,
    /// `up` differs from before (not only the weight).
    pub transition: bool,
}

/// Highest IPVS weight keepalived will set.
const WEIGHT_MAX: i32 = 65535;

impl RealAgg {
    /// A real with the configured weight and no checkers yet (alive).
    pub fn new(base_weight: i32) -> RealAgg {
        let mut a = RealAgg {
            base_weight,
            dynamic_weight: None,
            slots: BTreeMap::new(),
            published: (true, base_weight),
        };
        a.published = a.current();
        a
    }

    /// Registers a checker with its initial state (up unless alpha).
    pub fn add_checker(&mut self, id: CheckerId, up: bool) {
        self.slots.insert(
            id,
            Slot {
                up,
                weight_delta: 0,
            },
        );
    }

    /// Forgets a checker (removed by a reload).
    pub fn remove_checker(&mut self, id: CheckerId) {
        self.slots.remove(&id);
    }

    /// Whether the checker is counted.
    pub fn has_checker(&self, id: CheckerId) -> bool {
        self.slots.contains_key(&id)
    }

    /// The checker's last state, if it is counted.
    pub fn checker_up(&self, id: CheckerId) -> Option<bool> {
        self.slots.get(&id).map(|s| s.up)
    }

    /// Changes the configured weight (a reload).
    pub fn set_base_weight(&mut self, w: i32) {
        self.base_weight = w;
    }

    /// The state as computed now: alive and effective weight.
    pub fn current(&self) -> (bool, i32) {
        let up = self.slots.values().all(|s| s.up);
        let base = self.dynamic_weight.unwrap_or(self.base_weight);
        let delta: i64 = self
            .slots
            .values()
            .filter(|s| s.up)
            .map(|s| s.weight_delta as i64)
            .sum();
        let w = (base as i64 + delta).clamp(0, WEIGHT_MAX as i64) as i32;
        (up, w)
    }

    /// What was last published: (alive, weight).
    pub fn published(&self) -> (bool, i32) {
        self.published
    }

    /// Sets a checker's state (see [`RealAgg::publish`]).
    pub fn set_checker(&mut self, id: CheckerId, up: bool) {
        if let Some(s) = self.slots.get_mut(&id) {
            s.up = up;
        }
    }

    /// `misc_dynamic`: exit code 0 → configured weight, 2..=255 → code - 2.
    pub fn set_dynamic_weight(&mut self, w: Option<i32>) {
        self.dynamic_weight = w;
    }

    /// FILE_CHECK: a checker's weight contribution.
    pub fn set_weight_delta(&mut self, id: CheckerId, delta: i32) {
        if let Some(s) = self.slots.get_mut(&id) {
            s.weight_delta = delta;
        }
    }

    /// Publishes the current state if it differs from the last published.
    pub fn publish(&mut self) -> Option<Change> {
        let now = self.current();
        if now == self.published {
            return None;
        }
        let transition = now.0 != self.published.0;
        self.published = now;
        Some(Change {
            up: now.0,
            weight: now.1,
            transition,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_checkers_is_up_with_configured_weight() {
        let a = RealAgg::new(7);
        assert_eq!(a.current(), (true, 7));
    }

    #[test]
    fn all_checkers_must_be_up() {
        let mut a = RealAgg::new(1);
        a.add_checker(1, true);
        a.add_checker(2, true);
        a.publish();
        let c = {
            a.set_checker(2, false);
            a.publish()
        }
        .unwrap();
        assert_eq!((c.up, c.transition), (false, true));
        assert_eq!(
            {
                a.set_checker(1, false);
                a.publish()
            },
            None,
            "still down: nothing to publish"
        );
        assert_eq!(
            {
                a.set_checker(2, true);
                a.publish()
            },
            None,
            "checker 1 is still down"
        );
        let c = {
            a.set_checker(1, true);
            a.publish()
        }
        .unwrap();
        assert!(c.up && c.transition);
    }

    #[test]
    fn alpha_checker_starts_the_real_down() {
        let mut a = RealAgg::new(1);
        a.add_checker(1, false);
        a.add_checker(2, true);
        assert_eq!(a.publish().map(|c| c.up), Some(false));
    }

    #[test]
    fn misc_dynamic_weight_replaces_the_base() {
        let mut a = RealAgg::new(5);
        a.add_checker(1, true);
        a.publish();
        let c = {
            a.set_dynamic_weight(Some(40));
            a.publish()
        }
        .unwrap();
        assert_eq!((c.up, c.weight, c.transition), (true, 40, false));
        let c = {
            a.set_dynamic_weight(None);
            a.publish()
        }
        .unwrap();
        assert_eq!(c.weight, 5);
    }

    #[test]
    fn file_check_weight_adds_and_clamps_at_zero() {
        let mut a = RealAgg::new(10);
        a.add_checker(1, true);
        a.publish();
        assert_eq!(
            {
                a.set_weight_delta(1, 5);
                a.publish()
            }
            .unwrap()
            .weight,
            15
        );
        assert_eq!(
            {
                a.set_weight_delta(1, -30);
                a.publish()
            }
            .unwrap()
            .weight,
            0
        );
    }
}
