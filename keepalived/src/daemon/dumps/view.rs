//! One VRRP instance as the dumps show it: its resolved configuration and its live state and
//! counters (minus what STATS_CLEAR cleared).

use keepalived_conf::KeepalivedConfig;
use std::collections::HashMap;
use std::time::SystemTime;
use vrrp::codec::RxStats;
use vrrp::config::InstanceConfig;
use vrrp::daemon::{InstanceStatus, TxStats};
use vrrp::state::State;

/// The keepalived.stats counters of one instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub advert_rcvd: u64,
    pub advert_sent: u64,
    pub become_master: u64,
    pub release_master: u64,
    pub packet_len_err: u64,
    pub advert_interval_err: u64,
    pub ip_ttl_err: u64,
    pub invalid_type_rcvd: u64,
    pub addr_list_err: u64,
    pub invalid_authtype: u64,
    pub authtype_mismatch: u64,
    pub auth_failure: u64,
    pub pri_zero_rcvd: u64,
    pub pri_zero_sent: u64,
}

impl Counters {
    /// keepalived's counters from the engine's receive and send counters.
    pub fn of(rx: &RxStats, tx: &TxStats) -> Counters {
        let d = |n: &str| rx.dropped_for(n);
        Counters {
            advert_rcvd: rx.accepted,
            advert_sent: tx.adverts_sent,
            become_master: tx.became_master,
            release_master: tx.released_master,
            packet_len_err: d("too_short") + d("bad_length"),
            advert_interval_err: d("interval_mismatch"),
            ip_ttl_err: d("bad_ttl"),
            invalid_type_rcvd: d("bad_type"),
            addr_list_err: d("address_count") + d("address_mismatch"),
            invalid_authtype: d("auth_type"),
            authtype_mismatch: 0,
            auth_failure: d("auth_pass"),
            pri_zero_rcvd: tx.pri_zero_rcvd,
            pri_zero_sent: tx.pri_zero_sent,
        }
    }

    fn minus(self, b: Counters) -> Counters {
        Counters {
            advert_rcvd: self.advert_rcvd.saturating_sub(b.advert_rcvd),
            advert_sent: self.advert_sent.saturating_sub(b.advert_sent),
            become_master: self.become_master.saturating_sub(b.become_master),
            release_master: self.release_master.saturating_sub(b.release_master),
            packet_len_err: self.packet_len_err.saturating_sub(b.packet_len_err),
            advert_interval_err: self
                .advert_interval_err
                .saturating_sub(b.advert_interval_err),
            ip_ttl_err: self.ip_ttl_err.saturating_sub(b.ip_ttl_err),
            invalid_type_rcvd: self.invalid_type_rcvd.saturating_sub(b.invalid_type_rcvd),
            addr_list_err: self.addr_list_err.saturating_sub(b.addr_list_err),
            invalid_authtype: self.invalid_authtype.saturating_sub(b.invalid_authtype),
            authtype_mismatch: self.authtype_mismatch.saturating_sub(b.authtype_mismatch),
            auth_failure: self.auth_failure.saturating_sub(b.auth_failure),
            pri_zero_rcvd: self.pri_zero_rcvd.saturating_sub(b.pri_zero_rcvd),
            pri_zero_sent: self.pri_zero_sent.saturating_sub(b.pri_zero_sent),
        }
    }
}

/// STATS_CLEAR: the raw counters at the last clear, per instance; what is shown is the
/// difference (the engine's own counters are never reset, so nothing races with it).
#[derive(Default, Debug)]
pub struct Baseline(HashMap<String, Counters>);

impl Baseline {
    pub fn clear(&mut self, views: &[InstanceView]) {
        for v in views {
            self.0.insert(v.cfg.name.clone(), v.raw);
        }
    }
}

/// When each instance last changed state, and how often (from the engine's events).
#[derive(Default, Debug)]
pub struct Transitions(HashMap<String, (SystemTime, u64)>);

impl Transitions {
    pub fn record(&mut self, instance: &str) {
        let e = self
            .0
            .entry(instance.to_string())
            .or_insert((SystemTime::now(), 0));
        *e = (SystemTime::now(), e.1 + 1);
    }

    pub fn last(&self, instance: &str) -> Option<SystemTime> {
        self.0.get(instance).map(|e| e.0)
    }

    pub fn count(&self, instance: &str) -> u64 {
        self.0.get(instance).map_or(0, |e| e.1)
    }
}

/// One VRRP instance, configured and live.
#[derive(Clone, Debug)]
pub struct InstanceView {
    pub cfg: InstanceConfig,
    pub state: State,
    pub effective_priority: u8,
    /// Counters since the daemon started.
    pub raw: Counters,
    /// Counters since the last STATS_CLEAR (what keepalived shows).
    pub counters: Counters,
    pub last_transition: Option<SystemTime>,
    pub transitions: u64,
    /// Tracked vrrp_scripts and whether each is good.
    pub scripts: Vec<(String, bool)>,
}

/// The views of every instance the engine reports, in configuration order.
pub fn views(
    config: &KeepalivedConfig,
    live: &[InstanceStatus],
    baseline: &Baseline,
    transitions: &Transitions,
) -> Vec<InstanceView> {
    config
        .vrrp_instances
        .iter()
        .filter_map(|vi| {
            let cfg = vrrp::config::instance(config, vi).ok()?;
            let st = live.iter().find(|s| s.instance == cfg.name)?;
            let raw = Counters::of(&st.rx, &st.tx);
            let base = baseline.0.get(&cfg.name).copied().unwrap_or_default();
            Some(InstanceView {
                state: st.state,
                effective_priority: st.effective_priority,
                raw,
                counters: raw.minus(base),
                last_transition: transitions.last(&cfg.name),
                transitions: transitions.count(&cfg.name),
                scripts: st.scripts.clone(),
                cfg,
            })
        })
        .collect()
}

/// keepalived's state number (vrrp->state): INIT 0, BACKUP 1, MASTER 2, FAULT 3.
pub fn state_number(s: State) -> u8 {
    match s {
        State::Init => 0,
        State::Backup => 1,
        State::Master => 2,
        State::Fault => 3,
    }
}

/// Seconds since the epoch with microseconds, as keepalived prints timevals.
pub fn epoch_secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
