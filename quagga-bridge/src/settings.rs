//! The `route_bridge` block resolved against the rest of keepalived.conf (pure): which VIPs
//! exist, which virtual servers gate each one, which VRRP instance (if any), their attributes,
//! and the paths of this data plane's bridge.

use keepalived_conf::KeepalivedConfig;
use keepalived_conf::model::{
    AnnounceAttributes, DaemonInstance, Exclude, OspfSettings, RouteBridge, RoutingDaemon, VipGate,
    VirtualServerAddress, VsgEntry, address_range,
};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

/// One BGP session, with the block's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbor {
    /// The peer's address.
    pub address: IpAddr,
    /// The peer's AS.
    pub remote_as: u32,
    /// BFD on this session.
    pub bfd: bool,
    /// TCP port, when not 179.
    pub port: Option<u16>,
    /// eBGP multihop TTL.
    pub multihop: Option<u8>,
    /// TCP MD5 password.
    pub password: Option<String>,
    /// Local address of the session.
    pub source: Option<IpAddr>,
    /// `FILE: Line N` of its `neighbor` line, for messages.
    pub origin: String,
}

/// exabgp-like timing of announcements (see `eligibility::Debounce`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Good evaluations in a row before announcing.
    pub rise: u32,
    /// Bad evaluations in a row before withdrawing.
    pub fall: u32,
    /// Seconds between evaluations.
    pub interval: f64,
    /// Seconds after a withdrawal before announcing again.
    pub debounce: f64,
    /// Seconds a VIP drains before it is withdrawn (0: until maintenance ends).
    pub drain_timeout: f64,
    /// Live-weight percentage below which a VIP is degraded.
    pub degraded_below: Option<u32>,
}

/// One VIP: the virtual servers (indexes into `config.virtual_servers`) that gate it, the VRRP
/// instance that must be MASTER (none: active-active ECMP) and its attributes per state.
#[derive(Debug, Clone, PartialEq)]
pub struct VipConfig {
    /// The VIP.
    pub address: IpAddr,
    /// Its virtual servers (indexes into the configuration's).
    pub servers: Vec<usize>,
    /// The VRRP instance that must be MASTER; None: active-active.
    pub vrrp: Option<String>,
    /// Attributes while healthy.
    pub healthy: AnnounceAttributes,
    /// None: a degraded VIP is withdrawn.
    pub degraded: Option<AnnounceAttributes>,
    /// None: maintenance withdraws at once.
    pub draining: Option<AnnounceAttributes>,
}

/// Everything the bridge runs on.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// bird, FRR or quagga.
    pub daemon: RoutingDaemon,
    /// Own daemon or an existing one.
    pub instance: DaemonInstance,
    /// As configured: bird's control socket, or FRR's/quagga's vty directory.
    pub control: Option<PathBuf>,
    /// bird: the file holding the bridge's part of the configuration.
    pub config_file: Option<PathBuf>,
    /// Our AS.
    pub local_as: Option<u32>,
    /// BGP / OSPF router id.
    pub router_id: Option<Ipv4Addr>,
    /// BGP peers.
    pub neighbors: Vec<Neighbor>,
    /// BFD interval, ms.
    pub bfd_interval_ms: u32,
    /// BFD detection multiplier.
    pub bfd_multiplier: u8,
    /// BGP hold time, seconds.
    pub hold_time: u16,
    /// BGP keepalive interval, seconds.
    pub keepalive: u16,
    /// Seconds between BGP connection attempts.
    pub connect_retry: u16,
    /// OSPF settings, when VIPs go out over OSPF.
    pub ospf: Option<OspfSettings>,
    /// The interface whose addresses are the announced VIPs.
    pub device: String,
    /// When to announce and withdraw.
    pub policy: Policy,
    /// While it exists, VIPs drain.
    pub maintenance_file: PathBuf,
    /// Seconds announcements outlive a stop that keeps the tables.
    pub restart_grace: f64,
    /// Seconds between withdrawing and removing the virtual servers.
    pub withdraw_delay: f64,
    /// The VIPs and what gates them.
    pub vips: Vec<VipConfig>,
    /// The data plane's pin directory.
    pub pin_dir: PathBuf,
    /// `/run/xlvs/bridge/<pin dir key>`: state, own daemons' files.
    pub run_dir: PathBuf,
    /// `FILE: Line N` of the block, for messages.
    pub origin: String,
}

impl Settings {
    /// The settings of a VIP.
    pub fn vip(&self, addr: IpAddr) -> Option<&VipConfig> {
        self.vips.iter().find(|v| v.address == addr)
    }

    /// Whether any session asks for BFD.
    pub fn wants_bfd(&self) -> bool {
        self.neighbors.iter().any(|n| n.bfd)
    }
}

/// The run directory of the bridge of the data plane pinned at `pin_dir`.
pub fn run_dir(pin_dir: &Path) -> PathBuf {
    dataplane::rundir::dir(pin_dir, "bridge")
}

/// The default interface name: `xlvs` for the default pin directory, otherwise `xlvs` and a
/// hash of the pin directory (several directors may share a network namespace by mistake;
/// distinct names keep them apart).
pub fn default_device(pin_dir: &Path) -> String {
    if pin_dir == Path::new("/sys/fs/bpf/xlvs") {
        return "xlvs".to_string();
    }
    // FNV-1a: stable across builds (std's hasher is not).
    let mut h: u32 = 0x811c_9dc5;
    for b in pin_dir.to_string_lossy().bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    format!("xlvs{:06x}", h & 0xff_ffff)
}

/// `Ok(None)` without a `route_bridge` block; `Err` (with the block's line) when the block
/// cannot run.
pub fn resolve(config: &KeepalivedConfig, pin_dir: &Path) -> Result<Option<Settings>, String> {
    let Some(rb) = &config.route_bridge else {
        return Ok(None);
    };
    let origin = format!("{}: Line {}", rb.span.file, rb.span.line);
    let daemon = rb.daemon.ok_or_else(|| {
        let at = rb.daemon_span.as_ref().unwrap_or(&rb.span);
        format!(
            "({}: Line {}) route_bridge: no usable daemon (bird, frr or quagga): nothing is announced",
            at.file, at.line
        )
    })?;
    let neighbors = rb
        .neighbors
        .iter()
        .filter_map(|n| {
            Some(Neighbor {
                address: n.address,
                remote_as: n.remote_as?,
                bfd: n.bfd.unwrap_or(rb.bfd) && daemon != RoutingDaemon::Quagga,
                port: n.port,
                multihop: n.multihop,
                password: n.password.clone(),
                source: n.source,
                origin: format!("{}: Line {}", n.span.file, n.span.line),
            })
        })
        .collect::<Vec<_>>();
    if !neighbors.is_empty() && rb.local_as.is_none() {
        return Err(format!(
            "({origin}) route_bridge: neighbors need a local_as: nothing is announced"
        ));
    }
    let run_dir = run_dir(pin_dir);
    Ok(Some(Settings {
        daemon,
        instance: rb.instance,
        control: rb.control_socket.as_ref().map(PathBuf::from),
        config_file: rb.config_file.as_ref().map(PathBuf::from),
        local_as: rb.local_as,
        router_id: rb.router_id,
        neighbors,
        bfd_interval_ms: rb.bfd_interval,
        bfd_multiplier: rb.bfd_multiplier,
        hold_time: rb.hold_time,
        keepalive: rb.keepalive,
        connect_retry: rb.connect_retry,
        ospf: rb.ospf.clone(),
        device: rb.device.clone().unwrap_or_else(|| default_device(pin_dir)),
        policy: Policy {
            rise: rb.rise,
            fall: rb.fall,
            interval: rb.interval,
            debounce: rb.debounce,
            drain_timeout: rb.drain_timeout,
            degraded_below: rb.degraded_below,
        },
        maintenance_file: rb
            .maintenance_file
            .as_ref()
            .map(PathBuf::from)
            .unwrap_or_else(|| run_dir.join("maintenance")),
        restart_grace: rb.restart_grace,
        withdraw_delay: rb.withdraw_delay,
        vips: vips(config, rb),
        pin_dir: pin_dir.to_path_buf(),
        run_dir,
        origin,
    }))
}

/// Every VIP of the virtual servers (and group ranges) that are not excluded, with the servers
/// that use it, in address order.
fn vips(config: &KeepalivedConfig, rb: &RouteBridge) -> Vec<VipConfig> {
    let mut servers: BTreeMap<IpAddr, Vec<usize>> = BTreeMap::new();
    for (i, vs) in config.virtual_servers.iter().enumerate() {
        let addrs: Vec<IpAddr> = match &vs.address {
            VirtualServerAddress::Ip { addr, port } => {
                let excluded = rb.excludes.iter().any(|e| {
                    matches!(e, Exclude::Server { address, port: p, protocol, .. }
                        if address == addr && p == port && protocol.is_none_or(|pr| pr == vs.protocol))
                });
                if excluded { vec![] } else { vec![*addr] }
            }
            VirtualServerAddress::Group { name } => {
                let excluded = rb
                    .excludes
                    .iter()
                    .any(|e| matches!(e, Exclude::Group { name: n, .. } if n == name));
                match config.virtual_server_group(name) {
                    Some(g) if !excluded => g
                        .entries
                        .iter()
                        .filter_map(|e| match e {
                            VsgEntry::Range { first, last, .. } => {
                                address_range(*first, *last).ok()
                            }
                            VsgEntry::Fwmark { .. } => None,
                        })
                        .flatten()
                        .collect(),
                    _ => vec![],
                }
            }
            // fwmark services have no address of their own.
            _ => vec![],
        };
        for a in addrs {
            let v = servers.entry(a).or_default();
            if !v.contains(&i) {
                v.push(i);
            }
        }
    }
    servers
        .into_iter()
        .filter_map(|(address, servers)| {
            let own = rb.vip(address);
            if own.is_some_and(|v| !v.announce) {
                return None;
            }
            let vrrp = match own.map(|v| &v.gate).unwrap_or(&VipGate::Auto) {
                VipGate::Ecmp => None,
                VipGate::Vrrp(name) => Some(name.clone()),
                VipGate::Auto => config
                    .vrrp_instances
                    .iter()
                    .find(|i| {
                        i.virtual_ipaddresses
                            .iter()
                            .chain(&i.virtual_ipaddresses_excluded)
                            .any(|e| e.address.addr == address)
                    })
                    .map(|i| i.name.clone()),
            };
            let over = |base: &AnnounceAttributes, o: Option<&AnnounceAttributes>| match o {
                Some(o) => base.overridden_by(o),
                None => base.clone(),
            };
            let healthy = over(&rb.healthy, own.map(|v| &v.healthy));
            let degraded = match (&rb.degraded, own.and_then(|v| v.degraded.as_ref())) {
                (None, None) => None,
                (base, o) => Some(over(&base.clone().unwrap_or_else(|| healthy.clone()), o)),
            };
            let draining = match (&rb.draining, own.and_then(|v| v.draining.as_ref())) {
                (None, None) => None,
                (base, o) => Some(over(&base.clone().unwrap_or_else(|| healthy.clone()), o)),
            };
            Some(VipConfig {
                address,
                servers,
                vrrp,
                healthy,
                degraded,
                draining,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use keepalived_conf::{ParseOptions, parse_str};

    fn config(rb: &str) -> KeepalivedConfig {
        let text = format!(
            r#"
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {{
        198.18.99.2/32
    }}
}}
virtual_server_group G {{
    198.18.99.10-12 80
}}
virtual_server 198.18.99.1 80 {{
    lb_kind DR
    protocol TCP
    real_server 198.18.30.21 80 {{ }}
}}
virtual_server 198.18.99.1 443 {{
    lb_kind DR
    protocol TCP
    real_server 198.18.30.21 443 {{ }}
}}
virtual_server 198.18.99.2 80 {{
    lb_kind DR
    protocol TCP
    real_server 198.18.30.21 80 {{ }}
}}
virtual_server group G {{
    lb_kind DR
    protocol TCP
    real_server 198.18.30.21 80 {{ }}
}}
virtual_server fwmark 7 {{
    lb_kind DR
    real_server 198.18.30.21 80 {{ }}
}}
{rb}
"#
        );
        parse_str(&text, "t.conf", &ParseOptions::default()).config
    }

    fn a(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn vips_come_from_servers_and_group_ranges_gated_by_the_vrrp_instance_holding_them() {
        let c = config("route_bridge {\n local_as 65101\n neighbor 198.18.30.1 remote_as 65000\n}");
        let s = resolve(&c, Path::new("/sys/fs/bpf/xlvs")).unwrap().unwrap();
        let got: Vec<_> = s
            .vips
            .iter()
            .map(|v| (v.address, v.servers.clone(), v.vrrp.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (a("198.18.99.1"), vec![0, 1], None),
                (a("198.18.99.2"), vec![2], Some("VI_1".to_string())),
                (a("198.18.99.10"), vec![3], None),
                (a("198.18.99.11"), vec![3], None),
                (a("198.18.99.12"), vec![3], None),
            ]
        );
        assert_eq!(s.device, "xlvs");
        assert_eq!(s.maintenance_file, s.run_dir.join("maintenance"));
        assert!(s.run_dir.ends_with("bridge/sys_fs_bpf_xlvs"));
    }

    #[test]
    fn excludes_opt_outs_ecmp_and_attribute_overrides() {
        let c = config(
            "route_bridge {
                local_as 65101
                neighbor 198.18.30.1 remote_as 65000 bfd on
                healthy {
                    med 100
                    community 65000:1
                }
                degraded {
                    med 900
                }
                exclude 198.18.99.1 443
                exclude group G
                vip 198.18.99.2 {
                    ecmp
                    med 50
                }
                vip 198.18.99.1 {
                    draining {
                        prepend 2
                    }
                }
            }",
        );
        let s = resolve(&c, Path::new("/sys/fs/bpf/xlvs-t1"))
            .unwrap()
            .unwrap();
        assert_eq!(s.vips.len(), 2);
        let v1 = s.vip(a("198.18.99.1")).unwrap();
        assert_eq!(v1.servers, [0], "the excluded 443 server does not gate it");
        assert_eq!(v1.healthy.med, Some(100));
        assert_eq!(v1.degraded.as_ref().unwrap().med, Some(900));
        let drain = v1.draining.as_ref().unwrap();
        assert_eq!(
            (drain.prepend, drain.med),
            (2, Some(100)),
            "healthy + override"
        );
        let v2 = s.vip(a("198.18.99.2")).unwrap();
        assert_eq!(v2.vrrp, None, "ecmp: VRRP does not gate it");
        assert_eq!(v2.healthy.med, Some(50));
        assert_eq!(v2.healthy.communities, ["65000:1"]);
        assert!(v2.draining.is_none());
        assert!(s.wants_bfd());
        assert!(s.device.starts_with("xlvs") && s.device.len() == 10);
    }

    #[test]
    fn announce_off_and_unusable_blocks() {
        let c = config("route_bridge {\n vip 198.18.99.1 {\n announce off\n }\n}");
        let s = resolve(&c, Path::new("/p")).unwrap().unwrap();
        assert!(s.vip(a("198.18.99.1")).is_none());
        let c = config("route_bridge {\n daemon zebra\n}");
        let e = resolve(&c, Path::new("/p")).unwrap_err();
        assert!(
            e.starts_with("(t.conf: Line 37) route_bridge: no usable daemon"),
            "{e}"
        );
        let c = config("route_bridge {\n neighbor 198.18.30.1 remote_as 1\n}");
        assert!(
            resolve(&c, Path::new("/p"))
                .unwrap_err()
                .contains("local_as")
        );
        assert_eq!(resolve(&config(""), Path::new("/p")), Ok(None));
    }
}
