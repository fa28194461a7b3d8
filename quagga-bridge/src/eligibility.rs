//! Whether each VIP is announced, and how (pure, on an injected clock).
//!
//! A VIP is announced while (a) every virtual server using it holds its quorum (keepalived's
//! quorum/hysteresis, computed by the daemon; a server serving only its sorry server counts as
//! down unless a `degraded` attribute set is configured, which announces it less preferred),
//! (b) the data plane is attached and its timers run, and (c) this node is MASTER of the
//! vrrp_instance that holds it, if any (active-active ECMP otherwise). Maintenance drains it
//! (`draining` attributes for `drain_timeout`, or withdrawn at once). [`Tracker`] adds
//! exabgp's healthcheck timing: `rise`/`fall` (evaluations in a row, `interval` apart) and
//! `debounce` (no announcement within that long after a withdrawal). Withdrawals for a
//! stopping daemon, a detached data plane or a VRRP transition never wait.

use crate::settings::{Policy, VipConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What the keepalived daemon knows about one virtual server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerHealth {
    /// keepalived's name for it, e.g. `[198.18.99.1]:tcp:80`.
    pub name: String,
    /// keepalived says the live weight meets the quorum.
    pub quorum_up: bool,
    /// Sum of the live reals' weights, and of all reals' (keepalived's weigh_live_realservers).
    pub live_weight: i64,
    /// Sum of all reals' weights.
    pub total_weight: i64,
    /// The server's quorum.
    pub quorum: u32,
    /// It has a sorry_server (which serves while the quorum is lost).
    pub sorry_server: bool,
}

/// A VRRP instance's state as the daemon last reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum VrrpRole {
    /// Not started yet.
    Init,
    /// Another node is master.
    Backup,
    /// This node holds the VIPs.
    Master,
    /// A tracked object failed.
    Fault,
}

/// What the keepalived daemon tells the bridge (a full snapshot each time).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inputs {
    /// Indexed like `config.virtual_servers`.
    pub servers: Vec<ServerHealth>,
    /// Each VRRP instance's role, by name.
    pub vrrp: BTreeMap<String, VrrpRole>,
    /// This process runs VRRP (not `-C`).
    pub vrrp_running: bool,
    /// keepalived is stopping: everything is withdrawn.
    pub stopping: bool,
}

/// What the bridge observes itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Local {
    /// Interfaces the data plane is attached to.
    pub attached: Vec<String>,
    /// `xlvs timers` runs for the pin directory.
    pub timers: bool,
    /// The maintenance file exists.
    pub maintenance: bool,
    /// Maintenance has lasted longer than `drain_timeout`.
    pub drain_expired: bool,
}

/// How an announced VIP is announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Announced with the `healthy` attributes.
    Healthy,
    /// Announced with the `degraded` attributes (some reals down).
    Degraded,
    /// Announced with the `draining` attributes (maintenance).
    Draining,
}

impl Profile {
    /// The profile's name in the status and logs.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Healthy => "healthy",
            Profile::Degraded => "degraded",
            Profile::Draining => "draining",
        }
    }
}

/// The verdict of one evaluation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// None: withdrawn.
    pub profile: Option<Profile>,
    /// Why, for the status and logs.
    pub reason: String,
    /// A withdrawal that does not wait for `fall`.
    pub immediate: bool,
}

fn withdraw(reason: String, immediate: bool) -> Verdict {
    Verdict {
        profile: None,
        reason,
        immediate,
    }
}

fn announce(p: Profile, reason: String) -> Verdict {
    Verdict {
        profile: Some(p),
        reason,
        immediate: false,
    }
}

/// Evaluates one VIP.
pub fn evaluate(vip: &VipConfig, inputs: &Inputs, local: &Local, policy: &Policy) -> Verdict {
    if inputs.stopping {
        return withdraw("keepalived is stopping".into(), true);
    }
    if local.attached.is_empty() {
        return withdraw("data plane not attached to any interface".into(), true);
    }
    if !local.timers {
        return withdraw("data plane timers (xlvs timers) not running".into(), true);
    }
    if let Some(name) = &vip.vrrp {
        if !inputs.vrrp_running {
            return withdraw(
                format!("vrrp_instance {name} runs in another process (-C)"),
                true,
            );
        }
        match inputs.vrrp.get(name) {
            Some(VrrpRole::Master) => {}
            state => {
                let s = state.map_or("not started", |s| match s {
                    VrrpRole::Init => "INIT",
                    VrrpRole::Backup => "BACKUP",
                    VrrpRole::Fault => "FAULT",
                    VrrpRole::Master => "MASTER",
                });
                return withdraw(format!("vrrp_instance {name} is {s}"), true);
            }
        }
    }
    let mut degraded: Option<String> = None;
    for &i in &vip.servers {
        let Some(s) = inputs.servers.get(i) else {
            return withdraw("no health known yet".into(), true);
        };
        if !s.quorum_up {
            if s.sorry_server && vip.degraded.is_some() {
                degraded.get_or_insert(format!(
                    "VS {} lost quorum, its sorry server serves",
                    s.name
                ));
                continue;
            }
            return withdraw(
                format!(
                    "VS {} lost quorum (live weight {} < quorum {})",
                    s.name, s.live_weight, s.quorum
                ),
                false,
            );
        }
        if let Some(pct) = policy.degraded_below
            && vip.degraded.is_some()
            && s.total_weight > 0
            && s.live_weight * 100 < i64::from(pct) * s.total_weight
        {
            degraded.get_or_insert(format!(
                "VS {} has {} of {} weight alive (below {pct}%)",
                s.name, s.live_weight, s.total_weight
            ));
        }
    }
    if local.maintenance {
        return match &vip.draining {
            Some(_) if !local.drain_expired => {
                announce(Profile::Draining, "maintenance: draining".into())
            }
            _ => withdraw("maintenance".into(), false),
        };
    }
    if let Some(reason) = degraded {
        return announce(Profile::Degraded, reason);
    }
    let reason = match vip.servers.len() {
        1 => format!("quorum held by VS {}", inputs.servers[vip.servers[0]].name),
        n => format!("quorum held by {n} virtual servers"),
    };
    announce(Profile::Healthy, reason)
}

/// One VIP's announcement over time: applies a verdict once rise/fall/debounce allow it.
#[derive(Clone, Debug, Default)]
pub struct Tracker {
    /// What is announced now; None: withdrawn.
    pub announced: Option<Profile>,
    /// Why, as of the last change.
    pub reason: String,
    /// When `announced` last changed (for the status).
    pub changed_at: Option<Instant>,
    /// A target other than `announced`, and since when the verdicts ask for it.
    pending: Option<(Option<Profile>, Instant)>,
    last_withdrawal: Option<Instant>,
}

impl Tracker {
    /// A tracker that starts from what was found announced (adopted at a restart).
    pub fn adopted(profile: Option<Profile>, now: Instant) -> Tracker {
        Tracker {
            announced: profile,
            changed_at: Some(now),
            ..Tracker::default()
        }
    }

    /// Feeds one verdict; true when `announced` changed.
    pub fn step(&mut self, v: &Verdict, now: Instant, policy: &Policy) -> bool {
        self.reason = v.reason.clone();
        if v.profile == self.announced {
            self.pending = None;
            return false;
        }
        let since = match self.pending {
            Some((target, since)) if target == v.profile => since,
            _ => {
                self.pending = Some((v.profile, now));
                now
            }
        };
        let held = now.saturating_duration_since(since);
        let evaluations =
            |n: u32| Duration::from_secs_f64(f64::from(n.saturating_sub(1)) * policy.interval);
        let ready = match (self.announced, v.profile) {
            (Some(_), None) => v.immediate || held >= evaluations(policy.fall),
            (None, Some(_)) => {
                let debounced = self.last_withdrawal.is_none_or(|t| {
                    now.saturating_duration_since(t) >= Duration::from_secs_f64(policy.debounce)
                });
                debounced && held >= evaluations(policy.rise)
            }
            // Another profile of an announced VIP: only its attributes change.
            _ => true,
        };
        if !ready {
            return false;
        }
        if v.profile.is_none() {
            self.last_withdrawal = Some(now);
        }
        self.announced = v.profile;
        self.changed_at = Some(now);
        self.pending = None;
        true
    }

    /// When the next evaluation could change something without a new event (rise/fall/debounce
    /// waiting), so the bridge wakes up then.
    pub fn waiting(&self) -> bool {
        self.pending.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keepalived_conf::model::AnnounceAttributes;

    fn policy() -> Policy {
        Policy {
            rise: 1,
            fall: 1,
            interval: 1.0,
            debounce: 0.0,
            drain_timeout: 0.0,
            degraded_below: None,
        }
    }

    fn vip(vrrp: Option<&str>) -> VipConfig {
        VipConfig {
            address: "198.18.99.1".parse().unwrap(),
            servers: vec![0, 1],
            vrrp: vrrp.map(str::to_string),
            healthy: AnnounceAttributes::default(),
            degraded: None,
            draining: None,
        }
    }

    fn server(name: &str, up: bool, live: i64) -> ServerHealth {
        ServerHealth {
            name: name.to_string(),
            quorum_up: up,
            live_weight: live,
            total_weight: 4,
            quorum: 1,
            sorry_server: false,
        }
    }

    fn inputs() -> Inputs {
        Inputs {
            servers: vec![
                server("[198.18.99.1]:tcp:80", true, 4),
                server("[198.18.99.1]:tcp:443", true, 4),
            ],
            vrrp: BTreeMap::from([("VI_1".to_string(), VrrpRole::Master)]),
            vrrp_running: true,
            stopping: false,
        }
    }

    fn local() -> Local {
        Local {
            attached: vec!["eth0".into()],
            timers: true,
            maintenance: false,
            drain_expired: false,
        }
    }

    #[test]
    fn every_gate_in_its_order() {
        let (v, p) = (vip(Some("VI_1")), policy());
        let ok = evaluate(&v, &inputs(), &local(), &p);
        assert_eq!(ok.profile, Some(Profile::Healthy));
        assert_eq!(ok.reason, "quorum held by 2 virtual servers");

        let mut i = inputs();
        i.servers[1] = server("[198.18.99.1]:tcp:443", false, 0);
        let e = evaluate(&v, &i, &local(), &p);
        assert_eq!(
            (e.profile, e.reason.as_str(), e.immediate),
            (
                None,
                "VS [198.18.99.1]:tcp:443 lost quorum (live weight 0 < quorum 1)",
                false
            )
        );

        let mut i = inputs();
        i.vrrp.insert("VI_1".into(), VrrpRole::Backup);
        let e = evaluate(&v, &i, &local(), &p);
        assert_eq!(
            (e.reason.as_str(), e.immediate),
            ("vrrp_instance VI_1 is BACKUP", true)
        );
        assert_eq!(
            evaluate(&vip(None), &i, &local(), &p).profile,
            Some(Profile::Healthy),
            "ECMP VIPs ignore VRRP"
        );
        let mut i = inputs();
        i.vrrp.clear();
        assert_eq!(
            evaluate(&v, &i, &local(), &p).reason,
            "vrrp_instance VI_1 is not started"
        );

        let mut l = local();
        l.timers = false;
        assert_eq!(
            evaluate(&v, &inputs(), &l, &p).reason,
            "data plane timers (xlvs timers) not running"
        );
        l.attached.clear();
        assert_eq!(
            evaluate(&v, &inputs(), &l, &p).reason,
            "data plane not attached to any interface"
        );
        let mut i = inputs();
        i.stopping = true;
        assert_eq!(
            evaluate(&v, &i, &local(), &p).reason,
            "keepalived is stopping"
        );
    }

    #[test]
    fn sorry_servers_degrade_only_when_configured_and_maintenance_drains() {
        let p = policy();
        let mut i = inputs();
        i.servers[0] = ServerHealth {
            sorry_server: true,
            ..server("[198.18.99.1]:tcp:80", false, 0)
        };
        let mut v = vip(None);
        assert_eq!(
            evaluate(&v, &i, &local(), &p).profile,
            None,
            "sorry-only is down"
        );
        v.degraded = Some(AnnounceAttributes {
            med: Some(900),
            ..Default::default()
        });
        let d = evaluate(&v, &i, &local(), &p);
        assert_eq!(d.profile, Some(Profile::Degraded));
        assert_eq!(
            d.reason,
            "VS [198.18.99.1]:tcp:80 lost quorum, its sorry server serves"
        );

        let mut l = local();
        l.maintenance = true;
        assert_eq!(evaluate(&v, &inputs(), &l, &p).reason, "maintenance");
        v.draining = Some(AnnounceAttributes::default());
        assert_eq!(
            evaluate(&v, &inputs(), &l, &p).profile,
            Some(Profile::Draining)
        );
        l.drain_expired = true;
        assert_eq!(evaluate(&v, &inputs(), &l, &p).profile, None);
    }

    #[test]
    fn degraded_below_a_share_of_the_weight() {
        let p = Policy {
            degraded_below: Some(50),
            ..policy()
        };
        let mut v = vip(None);
        let mut i = inputs();
        i.servers[0].live_weight = 1;
        assert_eq!(
            evaluate(&v, &i, &local(), &p).profile,
            Some(Profile::Healthy),
            "without degraded attributes it stays healthy"
        );
        v.degraded = Some(AnnounceAttributes::default());
        let d = evaluate(&v, &i, &local(), &p);
        assert_eq!(
            (d.profile, d.reason.as_str()),
            (
                Some(Profile::Degraded),
                "VS [198.18.99.1]:tcp:80 has 1 of 4 weight alive (below 50%)"
            )
        );
    }

    #[test]
    fn rise_fall_and_debounce() {
        let p = Policy {
            rise: 3,
            fall: 2,
            interval: 1.0,
            debounce: 10.0,
            ..policy()
        };
        let t0 = Instant::now();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        let up = announce(Profile::Healthy, "ok".into());
        let down = withdraw("lost".into(), false);
        let mut t = Tracker::default();
        assert!(!t.step(&up, at(0.0), &p));
        assert!(!t.step(&up, at(1.0), &p));
        assert!(t.step(&up, at(2.0), &p), "third evaluation in a row");
        assert_eq!(t.announced, Some(Profile::Healthy));
        assert!(!t.step(&down, at(3.0), &p));
        assert!(
            !t.step(&up, at(3.5), &p),
            "one good evaluation resets the fall"
        );
        assert!(!t.step(&down, at(4.0), &p));
        assert!(t.step(&down, at(5.0), &p), "second failure in a row");
        assert_eq!(t.announced, None);
        // Debounce: eligible at once, but not announced before 10 s after the withdrawal.
        for s in [6.0, 7.0, 8.0, 14.9] {
            assert!(!t.step(&up, at(s), &p), "at {s}");
        }
        assert!(t.step(&up, at(15.0), &p));
        // Immediate withdrawals skip fall.
        assert!(t.step(&withdraw("BACKUP".into(), true), at(15.1), &p));
    }

    #[test]
    fn defaults_act_on_the_event_and_profiles_switch_at_once() {
        let p = policy();
        let now = Instant::now();
        let mut t = Tracker::default();
        assert!(t.step(&announce(Profile::Healthy, "ok".into()), now, &p));
        assert!(t.step(&announce(Profile::Draining, "m".into()), now, &p));
        assert!(t.step(&withdraw("lost".into(), false), now, &p));
        assert!(!t.step(&withdraw("still".into(), false), now, &p));
        assert_eq!(t.reason, "still");
        let mut a = Tracker::adopted(Some(Profile::Healthy), now);
        assert!(
            !a.step(&announce(Profile::Healthy, "ok".into()), now, &p),
            "no flap"
        );
    }
}
