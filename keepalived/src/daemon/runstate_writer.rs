//! Publishes the daemon's live state for `xlvs metrics` (`runstate::Keepalived`), every
//! [`PERIOD`]; removed at a clean stop.

use super::dumps::InstanceView;
use super::health::{HealthTable, Quorum, VsKey};
use healthcheck::{LastProbe, RealKey};
use keepalived_conf::KeepalivedConfig;

pub const PERIOD: std::time::Duration = runstate::KEEPALIVED_PERIOD;

pub fn write(
    config: &KeepalivedConfig,
    views: &[InstanceView],
    health: &HealthTable,
    quorum: &Quorum,
    probes: &[LastProbe],
) {
    let state = snapshot(config, views, health, quorum, probes);
    let dir = runstate::dir(&dataplane::Options::from_env().pin_dir);
    if let Err(e) = runstate::write(&dir, runstate::KEEPALIVED_FILE, &state) {
        log::debug!("cannot write {}: {e}", dir.display());
    }
}

pub fn remove() {
    let _ = std::fs::remove_file(
        runstate::dir(&dataplane::Options::from_env().pin_dir).join(runstate::KEEPALIVED_FILE),
    );
}

fn snapshot(
    config: &KeepalivedConfig,
    views: &[InstanceView],
    health: &HealthTable,
    quorum: &Quorum,
    probes: &[LastProbe],
) -> runstate::Keepalived {
    let vrrp = views
        .iter()
        .map(|v| runstate::VrrpInstance {
            name: v.cfg.name.clone(),
            vrid: v.cfg.vrid,
            interface: v.cfg.interface.clone(),
            state: v.state.keyword().to_string(),
            base_priority: v.cfg.priority,
            effective_priority: v.effective_priority,
            transitions: v.transitions,
            became_master: v.raw.become_master,
            released_master: v.raw.release_master,
            adverts_sent: v.raw.advert_sent,
            adverts_received: v.raw.advert_rcvd,
        })
        .collect();
    let virtual_servers = config
        .virtual_servers
        .iter()
        .map(|vs| {
            let key = VsKey::of(vs);
            let reals = vs
                .real_servers
                .iter()
                .map(|rs| {
                    let st = health.real(&key, rs);
                    let rk = RealKey::of(rs);
                    let probe = probes.iter().find(|p| p.vs == key && p.real == rk);
                    runstate::Real {
                        address: rs.addr.to_string(),
                        port: rs.effective_port,
                        up: st.alive,
                        weight: st.weight,
                        last_checker: probe.map(|p| p.checker.to_string()),
                        last_check_ok: probe.map(|p| p.ok),
                        last_check_seconds: probe.map(|p| p.latency.as_secs_f64()),
                    }
                })
                .collect();
            runstate::VirtualServer {
                name: key.to_string(),
                quorum_up: quorum.is_up(&key),
                reals,
            }
        })
        .collect();
    runstate::Keepalived {
        pid: std::process::id(),
        written: runstate::now(),
        vrrp,
        virtual_servers,
    }
}
