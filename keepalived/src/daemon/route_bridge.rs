//! The daemon's side of the route bridge (`route_bridge { … }`, crate `quagga-bridge`): its
//! settings from the configuration, and a snapshot of health, quorum and VRRP state sent to the
//! bridge thread after every change. The bridge runs in the process that runs the checkers
//! (not with `-P`); with `-C`, VIPs a vrrp_instance holds stay withdrawn.

use super::health::{HealthTable, Quorum, VsKey, live_weight};
use keepalived_conf::KeepalivedConfig;
use log::error;
use quagga_bridge::bridge::{Bridge, StopMode};
use quagga_bridge::eligibility::{Inputs, ServerHealth, VrrpRole};
use quagga_bridge::settings::{self, Settings};
use quagga_bridge::status::BridgeStatus;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use vrrp::state::State;

pub struct Hook {
    bridge: Option<Bridge>,
    /// Whether this process runs the bridge at all (not `-P`).
    enabled: bool,
    vrrp_running: bool,
    vrrp: BTreeMap<String, VrrpRole>,
    pin_dir: PathBuf,
}

impl Hook {
    pub fn new(enabled: bool, vrrp_running: bool) -> Hook {
        Hook {
            bridge: None,
            enabled,
            vrrp_running,
            vrrp: BTreeMap::new(),
            pin_dir: dataplane::Options::from_env().pin_dir,
        }
    }

    fn settings(&self, config: &KeepalivedConfig) -> Option<Settings> {
        if !self.enabled {
            return None;
        }
        match settings::resolve(config, &self.pin_dir) {
            Ok(s) => s,
            Err(e) => {
                error!("{e}");
                None
            }
        }
    }

    fn inputs(&self, config: &KeepalivedConfig, health: &HealthTable, quorum: &Quorum) -> Inputs {
        Inputs {
            servers: config
                .virtual_servers
                .iter()
                .map(|vs| {
                    let key = VsKey::of(vs);
                    ServerHealth {
                        name: key.to_string(),
                        quorum_up: quorum.is_up(&key),
                        live_weight: live_weight(vs, health),
                        total_weight: vs
                            .real_servers
                            .iter()
                            .map(|r| i64::from(r.weight.max(0)))
                            .sum(),
                        quorum: vs.quorum,
                        sorry_server: vs.sorry_server.is_some(),
                    }
                })
                .collect(),
            vrrp: self.vrrp.clone(),
            vrrp_running: self.vrrp_running,
            stopping: false,
        }
    }

    /// Starts the bridge if the configuration has one (after the first health snapshot).
    pub fn start(&mut self, config: &KeepalivedConfig, health: &HealthTable, quorum: &Quorum) {
        if let Some(s) = self.settings(config) {
            self.bridge = Some(Bridge::start(s, self.inputs(config, health, quorum)));
        }
    }

    /// Health, quorum or configuration changed.
    pub fn update(&self, config: &KeepalivedConfig, health: &HealthTable, quorum: &Quorum) {
        if let Some(b) = &self.bridge {
            b.update(self.inputs(config, health, quorum));
        }
    }

    /// A VRRP transition.
    pub fn vrrp(
        &mut self,
        instance: &str,
        to: State,
        config: &KeepalivedConfig,
        health: &HealthTable,
        quorum: &Quorum,
    ) {
        let role = match to {
            State::Init => VrrpRole::Init,
            State::Backup => VrrpRole::Backup,
            State::Master => VrrpRole::Master,
            State::Fault => VrrpRole::Fault,
        };
        self.vrrp.insert(instance.to_string(), role);
        self.update(config, health, quorum);
    }

    /// SIGHUP: the new configuration (the bridge applies only the difference; a block added or
    /// removed starts or stops it).
    pub async fn reload(
        &mut self,
        config: &KeepalivedConfig,
        health: &HealthTable,
        quorum: &Quorum,
    ) {
        self.vrrp
            .retain(|name, _| config.vrrp_instance(name).is_some());
        match (self.settings(config), self.bridge.take()) {
            (Some(s), Some(b)) => {
                b.reload(s);
                b.update(self.inputs(config, health, quorum));
                self.bridge = Some(b);
            }
            (Some(s), None) => {
                self.bridge = Some(Bridge::start(s, self.inputs(config, health, quorum)))
            }
            (None, Some(b)) => stop(b, StopMode::Withdraw).await,
            (None, None) => {}
        }
    }

    /// Stop: withdraw (and wait `withdraw_delay` so routers move the traffic before the
    /// services go), or with `--dont-release-ipvs` keep the announcements for a restart.
    pub async fn stop(&mut self, keep_for_restart: bool) {
        if let Some(b) = self.bridge.take() {
            let mode = if keep_for_restart {
                StopMode::KeepForRestart
            } else {
                StopMode::Withdraw
            };
            stop(b, mode).await;
        }
    }

    /// What the bridge announces (None without a route_bridge): for reports and metrics.
    #[allow(dead_code)]
    pub fn status(&self) -> Option<BridgeStatus> {
        self.bridge.as_ref().map(Bridge::status)
    }
}

async fn stop(b: Bridge, mode: StopMode) {
    let _ = tokio::task::spawn_blocking(move || b.stop(mode, Duration::from_secs(20))).await;
}
