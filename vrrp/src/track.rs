//! Effective priority from tracked objects (track_interface, track_script, track_file), as
//! keepalived computes it. Pure: the daemon feeds results in.

/// One tracked object as the instance sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracked {
    /// Weight from the instance's `track_*` line, else the object's own weight.
    pub weight: i32,
    /// The weight applies while up instead of down.
    pub reverse: bool,
    /// Its state.
    pub kind: TrackKind,
}

/// A tracked object's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    /// Up/OK (interfaces and scripts).
    Up(bool),
    /// The number read from a track_file.
    File(i64),
}

/// Effective priority (1..254, or 255 for the address owner) and whether tracking says FAULT.
///
/// keepalived's rules: weight 0 → a down interface / failing script / non-zero file is a FAULT;
/// a positive weight is added while up, a negative one while down (`reverse` swaps up and
/// down); a file adds value × weight. The address owner (255) keeps its priority.
pub fn effective_priority(base: u8, tracked: &[Tracked]) -> (u8, bool) {
    let mut prio = i64::from(base);
    let mut fault = false;
    for t in tracked {
        match t.kind {
            TrackKind::Up(up) => {
                let up = up != t.reverse;
                if t.weight == 0 {
                    fault |= !up;
                } else if (t.weight > 0) == up {
                    // Positive weights count while up, negative ones while down.
                    prio += i64::from(t.weight);
                }
            }
            TrackKind::File(v) => {
                if t.weight == 0 {
                    fault |= v != 0;
                } else {
                    let w = if t.reverse { -t.weight } else { t.weight };
                    prio = prio.saturating_add(v.saturating_mul(i64::from(w)));
                }
            }
        }
    }
    if base == 255 {
        return (255, fault);
    }
    (prio.clamp(1, 254) as u8, fault)
}

/// A vrrp_script's rise/fall filter: `rise` successes in a row make it OK, `fall` failures in a
/// row make it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptStatus {
    rise: u32,
    fall: u32,
    ok: bool,
    streak: u32,
}

impl ScriptStatus {
    /// `init_fail` starts the script as failed (keepalived's default: OK).
    pub fn new(rise: u32, fall: u32, init_fail: bool) -> ScriptStatus {
        ScriptStatus {
            rise: rise.max(1),
            fall: fall.max(1),
            ok: !init_fail,
            streak: 0,
        }
    }

    /// Whether the script counts as succeeding (after rise/fall).
    pub fn ok(&self) -> bool {
        self.ok
    }

    /// Records one run (a timeout counts as a failure). Returns true if the status changed.
    pub fn record(&mut self, success: bool) -> bool {
        if success == self.ok {
            self.streak = 0;
            return false;
        }
        self.streak += 1;
        let needed = if success { self.rise } else { self.fall };
        if self.streak >= needed {
            self.ok = success;
            self.streak = 0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(weight: i32, up: bool) -> Tracked {
        Tracked {
            weight,
            reverse: false,
            kind: TrackKind::Up(up),
        }
    }

    #[test]
    fn weights_table() {
        // (base, tracked, expected priority, fault)
        let file = |w, v| Tracked {
            weight: w,
            reverse: false,
            kind: TrackKind::File(v),
        };
        let cases: Vec<(u8, Vec<Tracked>, u8, bool)> = vec![
            (100, vec![], 100, false),
            (100, vec![up(20, true)], 120, false),
            (100, vec![up(20, false)], 100, false),
            (100, vec![up(-30, false)], 70, false),
            (100, vec![up(-30, true)], 100, false),
            (100, vec![up(0, false)], 100, true),
            (100, vec![up(0, true)], 100, false),
            (
                100,
                vec![Tracked {
                    weight: -30,
                    reverse: true,
                    kind: TrackKind::Up(true),
                }],
                70,
                false,
            ),
            (250, vec![up(20, true)], 254, false),
            (10, vec![up(-50, false)], 1, false),
            (255, vec![up(-50, false)], 255, false),
            (100, vec![file(2, 5)], 110, false),
            (100, vec![file(-10, 3)], 70, false),
            (100, vec![file(0, 1)], 100, true),
            (100, vec![file(0, 0)], 100, false),
            (
                100,
                vec![up(10, true), up(-20, false), file(1, 5)],
                95,
                false,
            ),
        ];
        for (base, t, prio, fault) in cases {
            assert_eq!(effective_priority(base, &t), (prio, fault), "{base} {t:?}");
        }
    }

    #[test]
    fn rise_and_fall() {
        let mut s = ScriptStatus::new(2, 3, false);
        assert!(s.ok());
        assert!(!s.record(false));
        assert!(!s.record(false));
        assert!(!s.record(true), "a success breaks the streak");
        assert!(!s.record(false));
        assert!(!s.record(false));
        assert!(s.record(false));
        assert!(!s.ok());
        assert!(!s.record(true));
        assert!(s.record(true));
        assert!(s.ok());
        let s = ScriptStatus::new(1, 1, true);
        assert!(!s.ok());
    }
}
