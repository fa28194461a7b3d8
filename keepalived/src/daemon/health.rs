//! What the daemon knows about the reals' health, and each virtual server's quorum (pure).

pub use healthcheck::{RealKey, VsKey};
use keepalived_conf::model::{RealServer, VirtualServer};
use std::collections::HashMap;

/// A real's state as the checkers last reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RealState {
    pub alive: bool,
    /// Effective weight (the configured one, or what MISC_CHECK misc_dynamic set).
    pub weight: i32,
}

/// Checker verdicts per (virtual server, real), as the health checkers report them (seeded
/// from their starting states, where `alpha` reals are down). A real without a verdict (no
/// checkers) is alive with its configured weight.
#[derive(Clone, Debug, Default)]
pub struct HealthTable {
    verdicts: HashMap<(VsKey, RealKey), (bool, Option<i32>)>,
}

impl HealthTable {
    /// Records a verdict; returns whether it changed anything.
    pub fn set(&mut self, vs: &VsKey, rs: RealKey, alive: bool, weight: Option<i32>) -> bool {
        self.verdicts.insert((vs.clone(), rs), (alive, weight)) != Some((alive, weight))
    }

    pub fn real(&self, vs_key: &VsKey, rs: &RealServer) -> RealState {
        let (alive, weight) = match self.verdicts.get(&(vs_key.clone(), RealKey::of(rs))) {
            Some(v) => *v,
            None => (true, None),
        };
        RealState {
            alive,
            weight: weight.unwrap_or(rs.weight),
        }
    }

    /// Forgets verdicts of reals that are no longer configured (after a reload).
    pub fn retain(&mut self, keep: impl Fn(&VsKey, &RealKey) -> bool) {
        self.verdicts.retain(|(v, r), _| keep(v, r));
    }
}

/// Sum of the weights of the live reals (keepalived's weigh_live_realservers).
pub fn live_weight(vs: &VirtualServer, health: &HealthTable) -> i64 {
    let key = VsKey::of(vs);
    vs.real_servers
        .iter()
        .map(|rs| health.real(&key, rs))
        .filter(|s| s.alive)
        .map(|s| i64::from(s.weight.max(0)))
        .sum()
}

/// A quorum transition, for logs and quorum_up/quorum_down scripts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumChange {
    pub up: bool,
    pub message: String,
    /// The starting state (keepalived's `init`: "Starting with quorum …" in alerts).
    pub init: bool,
    /// quorum ± hysteresis, and the live weight, as keepalived reports them.
    pub threshold: i64,
    pub sum: i64,
}

/// Quorum state per virtual server, with keepalived's hysteresis.
#[derive(Clone, Debug, Default)]
pub struct Quorum {
    up: HashMap<VsKey, bool>,
}

impl Quorum {
    pub fn is_up(&self, key: &VsKey) -> bool {
        self.up.get(key).copied().unwrap_or(true)
    }

    /// Re-evaluates one virtual server; the first evaluation always reports the starting state.
    pub fn update(&mut self, vs: &VirtualServer, health: &HealthTable) -> Option<QuorumChange> {
        let key = VsKey::of(vs);
        let sum = live_weight(vs, health);
        let quorum = i64::from(vs.quorum);
        let hysteresis = i64::from(vs.hysteresis);
        let init = !self.up.contains_key(&key);
        let gained = || QuorumChange {
            up: true,
            message: format!(
                "Gained quorum {quorum}+{hysteresis}={} <= {sum} for VS {key}",
                quorum + hysteresis
            ),
            init,
            threshold: quorum + hysteresis,
            sum,
        };
        let lost = |how: &str| QuorumChange {
            up: false,
            message: format!(
                "{how} {quorum}-{hysteresis}={} > {sum} for VS {key}",
                quorum - hysteresis
            ),
            init,
            threshold: quorum - hysteresis,
            sum,
        };
        let change = match self.up.get(&key).copied() {
            // keepalived reports (and runs quorum_up / quorum_down for) the starting state.
            None if sum >= quorum + hysteresis => Some(gained()),
            None => Some(lost("Starting with quorum down")),
            Some(false) if sum >= quorum + hysteresis => Some(gained()),
            Some(true) if sum == 0 || sum < quorum - hysteresis => Some(lost("Lost quorum")),
            _ => None,
        };
        if let Some(c) = &change {
            self.up.insert(key.clone(), c.up);
        }
        change
    }

    pub fn retain(&mut self, keep: impl Fn(&VsKey) -> bool) {
        self.up.retain(|k, _| keep(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keepalived_conf::{ParseOptions, parse_str};

    fn vs(text: &str) -> VirtualServer {
        parse_str(text, "t.conf", &ParseOptions::default())
            .config
            .virtual_servers
            .remove(0)
    }

    const QUORUM: &str = r#"
virtual_server 198.18.0.10 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    quorum 3
    hysteresis 1
    real_server 198.18.1.1 80 { weight 2
        TCP_CHECK { } }
    real_server 198.18.1.2 80 { weight 2
        TCP_CHECK { } }
}
"#;

    #[test]
    fn quorum_with_hysteresis() {
        let v = vs(QUORUM);
        let key = VsKey::of(&v);
        let r1 = RealKey::of(&v.real_servers[0]);
        let r2 = RealKey::of(&v.real_servers[1]);
        let mut h = HealthTable::default();
        let mut q = Quorum::default();
        // 4 >= 3+1: starts up, as keepalived logs it.
        let c = q.update(&v, &h).unwrap();
        assert!(c.up);
        assert_eq!(
            c.message,
            "Gained quorum 3+1=4 <= 4 for VS [198.18.0.10]:tcp:80"
        );
        assert!(q.is_up(&key));
        // 2 < 3-1? no: 2 is not below 2, still up (hysteresis).
        h.set(&key, r1, false, None);
        assert_eq!(q.update(&v, &h), None);
        // 0: lost.
        h.set(&key, r2, false, None);
        let c = q.update(&v, &h).unwrap();
        assert!(!c.up);
        assert_eq!(
            c.message,
            "Lost quorum 3-1=2 > 0 for VS [198.18.0.10]:tcp:80"
        );
        // 2 < 3+1: still down.
        h.set(&key, r2, true, None);
        assert_eq!(q.update(&v, &h), None);
        // 4 >= 4: gained.
        h.set(&key, r1, true, None);
        assert!(q.update(&v, &h).unwrap().up);
    }

    #[test]
    fn starting_down_reals_start_without_quorum() {
        let v = vs(QUORUM);
        let key = VsKey::of(&v);
        let mut h = HealthTable::default();
        for rs in &v.real_servers {
            // As the checkers report alpha reals at start.
            h.set(&key, RealKey::of(rs), false, None);
        }
        assert_eq!(live_weight(&v, &h), 0);
        let mut q = Quorum::default();
        assert!(!q.update(&v, &h).unwrap().up);
    }
}
