//! Interface up/down as tracking sees it: the kernel's flags, or with linkbeat
//! (`linkbeat_interfaces`, `linkbeat_use_polling`) the driver's link state read by ethtool,
//! then `interface_up_down_delays`: a change counts only once it has lasted the interface's
//! down (or up) delay, so a bouncing link moves no instance.

use std::collections::{HashMap, HashSet};

use keepalived_conf::model::KeepalivedConfig;

use super::Micros;

#[derive(Debug, Clone, Copy)]
struct Debounce {
    reported: bool,
    raw: bool,
    since: Micros,
}

/// The link view tracking uses, kept across polls.
#[derive(Debug, Default)]
pub(super) struct LinkWatch {
    /// ifname → (down delay, up delay) in µs.
    delays: HashMap<String, (Micros, Micros)>,
    polling: HashSet<String>,
    state: HashMap<String, Debounce>,
}

impl LinkWatch {
    /// Settings of `cfg` (`polling_all`: some instance or the global setting polls its own
    /// interface; those names are added).
    pub(super) fn configure(&mut self, cfg: &KeepalivedConfig, polled: &[String]) {
        self.delays = cfg
            .interface_up_down_delays
            .iter()
            .map(|d| {
                (
                    d.interface.clone(),
                    ((d.down * 1e6) as Micros, (d.up * 1e6) as Micros),
                )
            })
            .collect();
        self.polling = cfg
            .linkbeat_interfaces
            .iter()
            .map(|l| l.split_whitespace().next().unwrap_or(l).to_string())
            .chain(polled.iter().cloned())
            .collect();
    }

    /// Whether `ifname` counts as up at `now`; `flags_up` is IFF_UP|IFF_RUNNING (None: the
    /// interface does not exist).
    pub(super) fn up(&mut self, ifname: &str, flags_up: Option<bool>, now: Micros) -> bool {
        let raw = match flags_up {
            None => false,
            Some(flags) if self.polling.contains(ifname) => {
                flags && crate::link::ethtool_link(ifname).unwrap_or(flags)
            }
            Some(flags) => flags,
        };
        let (down, up) = self.delays.get(ifname).copied().unwrap_or((0, 0));
        let d = self.state.entry(ifname.to_string()).or_insert(Debounce {
            reported: raw,
            raw,
            since: now,
        });
        if raw != d.raw {
            d.raw = raw;
            d.since = now;
        }
        if d.reported != raw {
            let wait = if raw { up } else { down };
            if now.saturating_sub(d.since) >= wait {
                d.reported = raw;
            }
        }
        d.reported
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounce_shorter_than_the_delay_is_not_seen() {
        let cfg = keepalived_conf::parse_str(
            "interface_up_down_delays {\n eth0 0.5 0.2\n}\n",
            "t",
            &keepalived_conf::ParseOptions::default(),
        )
        .config;
        let mut w = LinkWatch::default();
        w.configure(&cfg, &[]);
        assert!(w.up("eth0", Some(true), 0));
        // Down for 0.3 s (< 0.5 s down delay), back up: never reported down.
        assert!(w.up("eth0", Some(false), 100_000));
        assert!(w.up("eth0", Some(false), 400_000));
        assert!(w.up("eth0", Some(true), 450_000));
        // Down for longer: reported once the delay passed.
        assert!(w.up("eth0", Some(false), 1_000_000));
        assert!(!w.up("eth0", Some(false), 1_500_000));
        // Up again: after the 0.2 s up delay.
        assert!(!w.up("eth0", Some(true), 1_600_000));
        assert!(w.up("eth0", Some(true), 1_800_000));
        // Interfaces without delays follow at once.
        assert!(!w.up("eth1", Some(false), 0));
        assert!(w.up("eth1", Some(true), 1));
    }
}
