//! What the bridge announces, why, to whom and since when: kept in memory for the daemon
//! (`Bridge::status`, e.g. for metrics), written to `<run dir>/status.json` on every change,
//! and rendered by `xlvs routes` together with what the routing daemon itself says it sends to
//! each neighbor.

use crate::driver::{DaemonInfo, PeerView};
use crate::eligibility::Profile;
use anyhow::{Context, Result};
use keepalived_conf::model::AnnounceAttributes;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// One VIP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipStatus {
    /// The VIP.
    pub address: IpAddr,
    /// The last evaluation found it eligible (rise/debounce may still hold it back).
    pub eligible: bool,
    /// How it is announced; None: withdrawn.
    pub announced: Option<Profile>,
    /// Why (the last evaluation's reason).
    pub reason: String,
    /// Unix time (ms) of the last change of `announced`; 0 if it never changed.
    pub since_ms: u64,
    /// The attributes it is announced with (`med 100 community 65000:1 prepend 2`).
    pub attributes: String,
    /// The vrrp_instance that gates it (none: active-active).
    pub vrrp: Option<String>,
    /// The virtual servers that gate it.
    pub servers: Vec<String>,
}

/// The whole bridge.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeStatus {
    /// The keepalived process running the bridge.
    pub pid: u32,
    /// `FILE: Line N` of the route_bridge block.
    pub origin: String,
    /// The routing daemon, once reached.
    pub daemon: Option<DaemonInfo>,
    /// The liveness device (its addresses are the announced VIPs).
    pub device: String,
    /// The neighbors (address, remote AS).
    pub neighbors: Vec<(IpAddr, u32)>,
    /// OSPF area, when OSPF is used.
    pub ospf_area: Option<String>,
    /// The last problem (control socket unreachable, a refused configuration …); None: fine.
    pub error: Option<String>,
    /// Maintenance (drain) is on.
    pub maintenance: bool,
    /// The file whose existence means maintenance (`xlvs routes drain` creates it).
    pub maintenance_file: PathBuf,
    /// Interfaces the data plane is attached to, and whether its timers run.
    pub attached: Vec<String>,
    /// `xlvs timers` runs for the pin directory.
    pub timers: bool,
    /// Each VIP's state.
    pub vips: Vec<VipStatus>,
    /// Unix time (ms) of this status.
    pub updated_ms: u64,
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `med 100 local-pref 50 community 65000:1 prepend 2` (empty: none set).
pub fn describe(a: &AnnounceAttributes) -> String {
    let mut v = Vec::new();
    if let Some(m) = a.med {
        v.push(format!("med {m}"));
    }
    if let Some(l) = a.local_pref {
        v.push(format!("local-pref {l}"));
    }
    if !a.communities.is_empty() {
        v.push(format!("community {}", a.communities.join(" ")));
    }
    if a.prepend > 0 {
        v.push(format!("prepend {}", a.prepend));
    }
    v.join(" ")
}

/// What `xlvs metrics` exports: each VIP's prefix, whether it is announced, and how often that
/// changed (`changes`, counted by the bridge).
pub fn for_metrics(
    s: &BridgeStatus,
    changes: &std::collections::BTreeMap<IpAddr, u64>,
) -> runstate::Bridge {
    let via = s
        .daemon
        .as_ref()
        .map(|d| d.kind.clone())
        .unwrap_or_default();
    runstate::Bridge {
        pid: s.pid,
        written: runstate::now(),
        announcements: s
            .vips
            .iter()
            .map(|v| runstate::Announcement {
                prefix: match v.address {
                    IpAddr::V4(a) => format!("{a}/32"),
                    IpAddr::V6(a) => format!("{a}/128"),
                },
                via: via.clone(),
                announced: v.announced.is_some(),
                changes: changes.get(&v.address).copied().unwrap_or(0),
            })
            .collect(),
    }
}

/// Where the status file is under `run_dir`.
pub fn path(run_dir: &Path) -> PathBuf {
    run_dir.join("status.json")
}

/// Writes the status file (atomically, via a rename).
pub fn write(run_dir: &Path, s: &BridgeStatus) -> Result<()> {
    let text = serde_json::to_string_pretty(s)?;
    dataplane::rundir::write_atomic(&path(run_dir), &text)
        .with_context(|| format!("cannot write {}", path(run_dir).display()))
}

/// The status the bridge of the data plane at `pin_dir` wrote last.
pub fn read(pin_dir: &Path) -> Result<BridgeStatus> {
    let p = path(&crate::settings::run_dir(pin_dir));
    let text = std::fs::read_to_string(&p).with_context(|| {
        format!(
            "no route bridge status at {} (keepalived with a route_bridge block runs for this pin directory?)",
            p.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("cannot read {}", p.display()))
}

/// Whether the process that wrote `s` still runs.
pub fn writer_alive(s: &BridgeStatus) -> bool {
    crate::process::alive(s.pid)
}

/// What the daemon says it sends to each neighbor (queried live).
pub fn peers(s: &BridgeStatus) -> Result<Vec<PeerView>> {
    let Some(d) = &s.daemon else {
        anyhow::bail!("no routing daemon is driven");
    };
    match d.kind.as_str() {
        "bird" => crate::bird::peers(&d.control, &s.neighbors),
        _ => crate::frr::peers(&d.control, &s.neighbors),
    }
}

fn clock(ms: u64) -> String {
    if ms == 0 {
        return "-".into();
    }
    let secs = (ms / 1000) as i64;
    // UTC, as journald and keepalived's logs can be compared with `date -u`.
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `xlvs routes`: each VIP's eligibility, reason and since when, then each neighbor and what
/// the daemon sends it (`peers`: from the daemon, or why it could not be asked).
pub fn render(s: &BridgeStatus, alive: bool, peers: &Result<Vec<PeerView>>) -> String {
    let mut o = String::new();
    let daemon = match &s.daemon {
        Some(d) => format!(
            "{} {} ({}{})",
            if d.own { "own" } else { "existing" },
            d.kind,
            d.control.display(),
            d.pids
                .iter()
                .map(|(n, p)| format!(", {n} pid {p}"))
                .collect::<String>()
        ),
        None => "none".into(),
    };
    let _ = writeln!(
        o,
        "route bridge of keepalived pid {}{} ({}): daemon {daemon}, device {}",
        s.pid,
        if alive {
            ""
        } else {
            " (not running: announcements are gone with its device)"
        },
        s.origin,
        s.device
    );
    let _ = writeln!(
        o,
        "data plane: {}; timers {}; maintenance {}",
        if s.attached.is_empty() {
            "not attached".to_string()
        } else {
            format!("attached to {}", s.attached.join(", "))
        },
        if s.timers { "running" } else { "not running" },
        if s.maintenance { "on" } else { "off" }
    );
    if let Some(e) = &s.error {
        let _ = writeln!(o, "error: {e}");
    }
    let _ = writeln!(
        o,
        "{:<24} {:<8} {:<10} {:<9} {:<25} REASON",
        "VIP", "ELIGIBLE", "STATE", "PROFILE", "SINCE"
    );
    for v in &s.vips {
        let _ = writeln!(
            o,
            "{:<24} {:<8} {:<10} {:<9} {:<25} {}",
            v.address.to_string(),
            if v.eligible { "yes" } else { "no" },
            if v.announced.is_some() {
                "announced"
            } else {
                "withdrawn"
            },
            v.announced.map_or("-", |p| p.name()),
            clock(v.since_ms),
            v.reason
        );
        if v.announced.is_some() && !v.attributes.is_empty() {
            let _ = writeln!(o, "{:<24} attributes: {}", "", v.attributes);
        }
    }
    match peers {
        Ok(list) => {
            for p in list {
                let _ = writeln!(
                    o,
                    "neighbor {} AS {}: {}{}",
                    p.address,
                    p.remote_as.map_or("?".into(), |a| a.to_string()),
                    p.state,
                    if p.since.is_empty() {
                        String::new()
                    } else {
                        format!(" since {}", p.since)
                    }
                );
                if p.routes.is_empty() {
                    let _ = writeln!(o, "    sent nothing");
                }
                for r in &p.routes {
                    let _ = writeln!(o, "    sent {} {}", r.prefix, r.attributes);
                }
            }
        }
        Err(e) => {
            let _ = writeln!(o, "neighbors: cannot ask the daemon: {e:#}");
        }
    }
    if let Some(area) = &s.ospf_area {
        let _ = writeln!(
            o,
            "ospf area {area}: the announced VIPs are stub networks of {}",
            s.device
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::RouteView;

    #[test]
    fn clock_is_utc() {
        assert_eq!(clock(0), "-");
        assert_eq!(clock(86_400_000 + 3_723_004), "1970-01-02 01:02:03.004Z");
        assert_eq!(clock(1_796_593_633_000), "2026-12-06 21:47:13.000Z");
    }

    #[test]
    fn the_view_lists_vips_then_what_each_neighbor_is_sent() {
        let s = BridgeStatus {
            pid: 42,
            origin: "k.conf: Line 9".into(),
            daemon: Some(DaemonInfo {
                kind: "bird".into(),
                own: true,
                control: "/run/xlvs/bridge/x/bird/bird.ctl".into(),
                pids: vec![("bird".into(), 77)],
            }),
            device: "xlvs".into(),
            neighbors: vec![("198.18.30.1".parse().unwrap(), 65000)],
            attached: vec!["eth0".into()],
            timers: true,
            vips: vec![
                VipStatus {
                    address: "198.18.99.1".parse().unwrap(),
                    eligible: true,
                    announced: Some(Profile::Healthy),
                    reason: "quorum held by VS [198.18.99.1]:tcp:80".into(),
                    since_ms: 1_796_593_633_000,
                    attributes: "med 100".into(),
                    vrrp: None,
                    servers: vec![],
                },
                VipStatus {
                    address: "198.18.99.2".parse().unwrap(),
                    eligible: false,
                    announced: None,
                    reason: "vrrp_instance VI_1 is BACKUP".into(),
                    since_ms: 0,
                    attributes: String::new(),
                    vrrp: Some("VI_1".into()),
                    servers: vec![],
                },
            ],
            ..Default::default()
        };
        let peers = Ok(vec![PeerView {
            address: "198.18.30.1".into(),
            remote_as: Some(65000),
            state: "Established".into(),
            since: "21:47:13.000".into(),
            routes: vec![RouteView {
                prefix: "198.18.99.1/32".into(),
                attributes: "med 100".into(),
            }],
        }]);
        let text = render(&s, true, &peers);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "route bridge of keepalived pid 42 (k.conf: Line 9): daemon own bird (/run/xlvs/bridge/x/bird/bird.ctl, bird pid 77), device xlvs"
        );
        assert_eq!(
            lines[1],
            "data plane: attached to eth0; timers running; maintenance off"
        );
        assert!(lines[3].starts_with("198.18.99.1              yes      announced  healthy   2026-12-06 21:47:13.000Z  quorum held"));
        assert!(lines[4].ends_with("attributes: med 100"));
        assert!(
            lines[5].contains("withdrawn  -") && lines[5].ends_with("vrrp_instance VI_1 is BACKUP")
        );
        assert_eq!(
            lines[6],
            "neighbor 198.18.30.1 AS 65000: Established since 21:47:13.000"
        );
        assert_eq!(lines[7], "    sent 198.18.99.1/32 med 100");
        let down = render(&s, false, &Err(anyhow::anyhow!("cannot connect")));
        assert!(down.contains("(not running: announcements are gone with its device)"));
        assert!(down.contains("neighbors: cannot ask the daemon: cannot connect"));
    }
}
