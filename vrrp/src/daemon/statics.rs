//! `static_ipaddress`, `static_routes`, `static_rules` (keepalived's VRRP process owns them
//! too): installed at start, on a reload only the differences are applied (what stayed is not
//! touched), removed at stop. A static address someone deletes is put back at the next poll;
//! if it is still missing after that, the instances of its `track_group` go FAULT until it
//! returns, as keepalived does for addresses it cannot restore.

use std::collections::{HashMap, HashSet};

use super::resolve;
use super::*;

/// Default for static addresses without `dev` (keepalived's `default_interface`).
const DEFAULT_INTERFACE: &str = "eth0";

/// What is installed, with each item's track group.
#[derive(Debug, Default, Clone)]
pub(super) struct Statics {
    vips: Vec<(Vip, Option<String>)>,
    routes: Vec<Route>,
    rules: Vec<Rule>,
    /// Addresses found missing (re-added once already).
    missing: HashSet<IpAddr>,
    /// When they were (re)installed: checks start a second later.
    since: Option<std::time::Instant>,
}

fn resolve_statics(cfg: &KeepalivedConfig) -> Statics {
    let default_if = cfg
        .global
        .default_interface
        .clone()
        .unwrap_or_else(|| DEFAULT_INTERFACE.to_string());
    Statics {
        vips: cfg
            .static_ipaddresses
            .iter()
            .map(|e| (resolve::vip(e, &default_if, 0), e.track_group.clone()))
            .filter(|(v, _)| v.ifindex != 0)
            .collect(),
        routes: cfg
            .static_routes
            .iter()
            .filter_map(resolve::route)
            .collect(),
        rules: cfg
            .static_rules
            .iter()
            .map(|r| resolve::rule(r, false))
            .collect(),
        missing: HashSet::new(),
        since: Some(std::time::Instant::now()),
    }
}

impl Engine {
    /// Installs the static entries of `cfg`, removing those of the previous configuration it
    /// no longer has; entries in both are left alone.
    pub(super) fn apply_statics(&mut self, cfg: &KeepalivedConfig) {
        for e in &cfg.static_ipaddresses {
            let default_if = cfg.global.default_interface.as_deref();
            let ifname = e.dev.as_deref().or(default_if).unwrap_or(DEFAULT_INTERFACE);
            if nix::net::if_::if_nametoindex(ifname).is_err() {
                log::warn!(
                    "static address {}: interface {ifname} doesn't exist - ignoring",
                    e.address.addr
                );
            }
        }
        let new = resolve_statics(cfg);
        let old = std::mem::take(&mut self.statics);
        let old_vips: Vec<&Vip> = old.vips.iter().map(|(v, _)| v).collect();
        let new_vips: Vec<&Vip> = new.vips.iter().map(|(v, _)| v).collect();
        self.effects.push(Effect::RemoveAddresses {
            vips: old_vips
                .iter()
                .filter(|v| !new_vips.contains(v))
                .map(|v| (*v).clone())
                .collect(),
            routes: old
                .routes
                .iter()
                .filter(|r| !new.routes.contains(r))
                .cloned()
                .collect(),
            rules: old
                .rules
                .iter()
                .filter(|r| !new.rules.contains(r))
                .cloned()
                .collect(),
        });
        self.effects.push(Effect::AddAddresses {
            instance: "static".into(),
            rules: new
                .rules
                .iter()
                .filter(|r| !old.rules.contains(r))
                .cloned()
                .collect(),
            vips: new_vips
                .iter()
                .filter(|v| !old_vips.contains(v))
                .map(|v| (*v).clone())
                .collect(),
            routes: new
                .routes
                .iter()
                .filter(|r| !old.routes.contains(r))
                .cloned()
                .collect(),
        });
        self.statics = new;
    }

    /// At stop: every static entry goes (keepalived does this even with `-V`).
    pub(super) fn remove_statics(&mut self) {
        let s = std::mem::take(&mut self.statics);
        self.effects.push(Effect::RemoveAddresses {
            vips: s.vips.into_iter().map(|(v, _)| v).collect(),
            routes: s.routes,
            rules: s.rules,
        });
    }

    /// Puts back static addresses that disappeared; the track groups of those that stay
    /// missing are failed. True when the set of failed groups changed.
    pub(super) fn check_statics(&mut self, present: &HashMap<u32, Vec<IpAddr>>) -> bool {
        if self
            .statics
            .since
            .is_none_or(|t| t.elapsed() < Duration::from_secs(1))
        {
            return false;
        }
        let mut readd = Vec::new();
        let mut failed = HashSet::new();
        let mut still_missing = HashSet::new();
        for (v, group) in &self.statics.vips {
            let here = present.get(&v.ifindex).is_some_and(|a| a.contains(&v.addr));
            if here {
                continue;
            }
            if self.statics.missing.contains(&v.addr) {
                if let Some(g) = group {
                    failed.insert(g.clone());
                }
            } else {
                log::info!("static address {} deleted - reinstating", v.addr);
            }
            still_missing.insert(v.addr);
            readd.push(v.clone());
        }
        self.statics.missing = still_missing;
        if !readd.is_empty() {
            self.effects.push(Effect::AddAddresses {
                instance: "static".into(),
                rules: Vec::new(),
                vips: readd,
                routes: Vec::new(),
            });
        }
        if failed != self.failed_track_groups {
            for g in failed.difference(&self.failed_track_groups) {
                log::warn!("track_group {g}: a static address cannot be restored");
            }
            self.failed_track_groups = failed;
            true
        } else {
            false
        }
    }
}

/// Every interface's addresses, by index (one dump).
pub(super) fn addresses_by_index() -> Option<HashMap<u32, Vec<IpAddr>>> {
    let mut out: HashMap<u32, Vec<IpAddr>> = HashMap::new();
    for (ip, i) in crate::link::addresses()? {
        out.entry(i).or_default().push(ip);
    }
    Some(out)
}
