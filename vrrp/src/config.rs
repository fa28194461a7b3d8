//! From the parsed keepalived model to what the engine runs: units converted, defaults from
//! global_defs applied, keywords the model keeps as raw options read here. Pure.

use std::net::{IpAddr, Ipv4Addr};

use keepalived_conf::model::{
    AuthType, IpAddressEntry, KeepalivedConfig, RouteEntry, RuleEntry, Script, TrackRef,
    VrrpInstance,
};

use crate::codec::{Auth, Family, auth_pass_bytes};

/// Everything one instance needs, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceConfig {
    /// Instance name.
    pub name: String,
    /// Interface adverts go out on.
    pub interface: String,
    /// Virtual router id.
    pub vrid: u8,
    /// VRRP version (2 or 3).
    pub version: u8,
    /// IPv4 or IPv6.
    pub family: Family,
    /// Configured priority.
    pub priority: u8,
    /// In the version's unit: seconds (v2), centiseconds (v3).
    pub adver_int: u16,
    /// A higher priority takes over from a lower master.
    pub preempt: bool,
    /// How long a takeover waits after start.
    pub preempt_delay_us: u64,
    /// Missed adverts before the master is declared down.
    pub down_timer_adverts: u32,
    /// v2 over IPv4 only, as keepalived (cleared for v3, IPv6 AH and strict mode).
    pub auth: Auth,
    /// Source address of multicast adverts.
    pub mcast_src_ip: Option<IpAddr>,
    /// Where multicast adverts go and which group is joined: `mcast_dst_ip`, else global
    /// `vrrp_mcast_group4`/`vrrp_mcast_group6`.
    pub mcast_group: IpAddr,
    /// Global `vrrp_mcast_group4`: the pseudo-header destination of `old_unicast_checksum`.
    pub mcast_group4: IpAddr,
    /// Source address of unicast adverts.
    pub unicast_src_ip: Option<IpAddr>,
    /// Unicast peers with their min/max TTL.
    pub unicast_peers: Vec<(IpAddr, Option<u8>, Option<u8>)>,
    /// TTL of unicast adverts.
    pub unicast_ttl: u8,
    /// Only listed peers' adverts are accepted.
    pub check_unicast_src: bool,
    /// Adverts with other address lists are accepted.
    pub skip_check_adv_addr: bool,
    /// v3 checksum without the pseudo-header (`v3_checksum_as_v2`).
    pub v3_checksum_as_v2: bool,
    /// Also accept keepalived's pre-2.2 unicast checksum.
    pub old_unicast_checksum: bool,
    /// A master does not answer a lower-priority advert.
    pub lower_prio_no_advert: bool,
    /// A master hearing a higher priority answers with one advert before it steps down.
    pub higher_prio_send_advert: bool,
    /// Traffic to the VIPs is accepted (else nftables drops it while MASTER).
    pub accept: bool,
    /// `strict_mode` / global `vrrp_strict` (RFC compliance: see [`instance`]).
    pub strict: bool,
    /// The interface going down does not mean FAULT.
    pub dont_track_primary: bool,
    /// `virtual_ipaddress`.
    pub vips: Vec<IpAddressEntry>,
    /// `virtual_ipaddress_excluded`.
    pub vips_excluded: Vec<IpAddressEntry>,
    /// `virtual_routes`.
    pub routes: Vec<RouteEntry>,
    /// `virtual_rules`.
    pub rules: Vec<RuleEntry>,
    /// Gratuitous ARP/NA pacing.
    pub garp: GarpParams,
    /// Notify scripts.
    pub notify: NotifyConfig,
    /// `track_interface`.
    pub track_interfaces: Vec<TrackRef>,
    /// `track_script`.
    pub track_scripts: Vec<TrackRef>,
    /// `track_file`.
    pub track_files: Vec<TrackRef>,
    /// `track_process`.
    pub track_processes: Vec<TrackRef>,
    /// `track_bfd`.
    pub track_bfds: Vec<TrackRef>,
    /// The sync group the instance belongs to.
    pub sync_group: Option<String>,
    /// use_vmac interface name (default `vrrp.VRID`).
    pub use_vmac: Option<String>,
    /// Adverts sent from the base interface, not the VMAC.
    pub vmac_xmit_base: bool,
    /// use_ipvlan: (interface name, its address, mode).
    pub use_ipvlan: Option<Ipvlan>,
    /// `vrf`: the sockets are bound to this VRF device instead of the interface.
    pub vrf: Option<String>,
    /// The instance stays in FAULT, as keepalived sets it: `unicast_fault_no_peer` without
    /// peers, an IPv4 `use_ipvlan` without an address.
    pub config_fault: bool,
    /// `track_src_ip` (unicast): FAULT until the configured source address is on the host
    /// (as keepalived 2.2.7, which does not react when it goes later).
    pub track_src_ip: bool,
    /// `promote_secondaries` on the instance's interface while it runs.
    pub promote_secondaries: bool,
    /// `linkbeat_use_polling` (instance, top level or global): link state by ethtool.
    pub linkbeat_polling: bool,
    /// `garp_extra_if [all] DELAY`: periodic GARP/NA on the other interfaces of the VIPs
    /// (seconds, `all`: every such interface, else only vmacs).
    pub garp_extra_if: Option<(u32, bool)>,
}

/// An instance's notify scripts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotifyConfig {
    /// `notify`: every state change.
    pub notify: Option<Script>,
    /// `notify_master`.
    pub master: Option<Script>,
    /// `notify_backup`.
    pub backup: Option<Script>,
    /// `notify_fault`.
    pub fault: Option<Script>,
    /// `notify_stop`.
    pub stop: Option<Script>,
    /// `notify_master_rx_lower_pri`.
    pub master_rx_lower_pri: Option<Script>,
    /// `notify_deleted`: (given, its script).
    pub deleted: (bool, Option<Script>),
}

/// Gratuitous ARP/NA pacing of an instance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GarpParams {
    /// Seconds before the second burst (0 = none).
    pub master_delay: u32,
    /// GARPs per burst on becoming master.
    pub master_repeat: u32,
    /// Seconds between refreshes (0 = off).
    pub master_refresh: u32,
    /// GARPs per refresh.
    pub master_refresh_repeat: u32,
    /// When MASTER hears a lower priority: delay (s) and count of GARPs.
    pub lower_prio_delay: u32,
    /// GARPs sent after hearing a lower priority.
    pub lower_prio_repeat: u32,
}

impl InstanceConfig {
    /// Whether adverts go to unicast peers.
    pub fn is_unicast(&self) -> bool {
        !self.unicast_peers.is_empty()
    }

    /// VIP addresses, in advert order.
    pub fn vip_addrs(&self) -> Vec<IpAddr> {
        self.vips.iter().map(|v| v.address.addr).collect()
    }
}

fn raw_flag(v: &VrrpInstance, cfg: &KeepalivedConfig, word: &str) -> bool {
    v.extra.iter().any(|o| o.keyword == word) || cfg.global.extra.iter().any(|o| o.keyword == word)
}

/// An instance keyword the model keeps as a raw option is present.
fn raw_flag_only(v: &VrrpInstance, word: &str) -> bool {
    v.extra.iter().any(|o| o.keyword == word)
}

/// `garp_extra_if [all] DELAY` (instance, else global `vrrp_garp_extra_if`; 0 turns it off;
/// `vmac_garp_intvl` is the older name).
fn garp_extra_if(v: &VrrpInstance, cfg: &KeepalivedConfig) -> Option<(u32, bool)> {
    let opt =
        v.extra
            .iter()
            .rev()
            .find(|o| o.keyword == "garp_extra_if" || o.keyword == "vmac_garp_intvl")
            .or_else(|| {
                cfg.global.extra.iter().rev().find(|o| {
                    o.keyword == "vrrp_garp_extra_if" || o.keyword == "vrrp_vmac_garp_intvl"
                })
            })?;
    let all = opt.args.iter().any(|a| a == "all");
    let secs: u32 = opt
        .args
        .iter()
        .find(|a| *a != "all")
        .and_then(|a| a.parse().ok())
        .filter(|s| *s <= 86400)?;
    (secs > 0).then_some((secs, all))
}

/// The first argument of an instance keyword the model keeps as a raw option.
fn raw_value<'a>(v: &'a VrrpInstance, word: &str) -> Option<&'a str> {
    v.extra
        .iter()
        .rev()
        .find(|o| o.keyword == word)
        .and_then(|o| o.args.first())
        .map(String::as_str)
}

/// Converts one instance. Errors name the instance, like keepalived's messages.
pub fn instance(cfg: &KeepalivedConfig, v: &VrrpInstance) -> Result<InstanceConfig, String> {
    let interface = v
        .interface
        .clone()
        .or_else(|| cfg.global.default_interface.clone())
        .ok_or_else(|| format!("({}) Unknown interface !", v.name))?;
    let vrid = v
        .virtual_router_id
        .ok_or_else(|| format!("({}) the virtual router id must be set", v.name))?;
    let family = if v.is_ipv6()
        || v.unicast_src_ip.is_some_and(|a| a.is_ipv6())
        || v.mcast_src_ip.is_some_and(|a| a.is_ipv6())
    {
        Family::V6
    } else {
        Family::V4
    };
    let g = &cfg.global;
    let strict = v.strict_mode.unwrap_or(g.vrrp_strict);
    // Strict mode: no VRRPv2 over IPv6.
    let version = if strict && family == Family::V6 {
        3
    } else {
        v.version
    };
    // keepalived: v2 rounds to whole seconds, v3 counts centiseconds (< 40.96 s).
    let adver_int = if version == 2 {
        (v.advert_int.round() as u16).clamp(1, 255)
    } else {
        ((v.advert_int * 100.0).round() as u16).clamp(1, 4095)
    };
    let auth = authentication(v, version, family, strict);
    // keepalived: accept unless strict; never for a non-owner in strict VRRPv2 (RFC 3768).
    let accept = v.accept.unwrap_or(!strict) && !(strict && version == 2 && v.priority != 255);
    let sync_group = cfg
        .sync_groups
        .iter()
        .find(|s| s.group.contains(&v.name))
        .map(|s| s.name.clone());
    Ok(InstanceConfig {
        name: v.name.clone(),
        interface,
        vrid,
        version,
        family,
        priority: v.priority,
        adver_int,
        preempt: v.preempt,
        preempt_delay_us: if strict {
            0
        } else {
            v.preempt_delay.map_or(0, |d| (d * 1e6) as u64)
        },
        down_timer_adverts: v.down_timer_adverts.max(1),
        auth,
        mcast_src_ip: v.mcast_src_ip,
        mcast_group: raw_value(v, "mcast_dst_ip")
            .and_then(|a| a.parse().ok())
            .filter(|a: &IpAddr| a.is_ipv6() == (family == Family::V6))
            .unwrap_or(if family == Family::V6 {
                g.vrrp_mcast_group6
            } else {
                g.vrrp_mcast_group4
            }),
        mcast_group4: g.vrrp_mcast_group4,
        unicast_src_ip: v.unicast_src_ip,
        unicast_peers: v
            .unicast_peers
            .iter()
            .map(|p| (p.address, p.min_ttl, p.max_ttl))
            .collect(),
        unicast_ttl: v.unicast_ttl.unwrap_or(255),
        check_unicast_src: v.check_unicast_src || g.vrrp_check_unicast_src,
        skip_check_adv_addr: v.skip_check_adv_addr || g.vrrp_skip_check_adv_addr,
        v3_checksum_as_v2: raw_flag(v, cfg, "v3_checksum_as_v2"),
        old_unicast_checksum: raw_flag(v, cfg, "old_unicast_checksum"),
        lower_prio_no_advert: strict
            || v.lower_prio_no_advert
                .or(g.vrrp_lower_prio_no_advert)
                .unwrap_or(false),
        higher_prio_send_advert: !strict
            && v.higher_prio_send_advert
                .or(g.vrrp_higher_prio_send_advert)
                .unwrap_or(false),
        accept,
        strict,
        dont_track_primary: v.dont_track_primary,
        vips: v.virtual_ipaddresses.clone(),
        vips_excluded: v.virtual_ipaddresses_excluded.clone(),
        routes: v.virtual_routes.clone(),
        rules: v.virtual_rules.clone(),
        garp: GarpParams {
            master_delay: v.garp_master_delay.unwrap_or(g.vrrp_garp_master_delay),
            master_repeat: if g.vrrp_min_garp {
                1
            } else {
                v.garp_master_repeat.unwrap_or(g.vrrp_garp_master_repeat)
            },
            master_refresh: v.garp_master_refresh.unwrap_or(g.vrrp_garp_master_refresh),
            master_refresh_repeat: v
                .garp_master_refresh_repeat
                .unwrap_or(g.vrrp_garp_master_refresh_repeat),
            // Strict mode: no GARPs on hearing a lower priority.
            lower_prio_delay: if strict {
                0
            } else {
                v.garp_lower_prio_delay
                    .or(g.vrrp_garp_lower_prio_delay)
                    .unwrap_or(v.garp_master_delay.unwrap_or(g.vrrp_garp_master_delay))
            },
            lower_prio_repeat: if strict {
                0
            } else {
                v.garp_lower_prio_repeat
                    .or(g.vrrp_garp_lower_prio_repeat)
                    .unwrap_or(v.garp_master_repeat.unwrap_or(g.vrrp_garp_master_repeat))
            },
        },
        notify: NotifyConfig {
            notify: v.notify.notify.clone(),
            master: v.notify.notify_master.clone(),
            backup: v.notify.notify_backup.clone(),
            fault: v.notify.notify_fault.clone(),
            stop: v.notify.notify_stop.clone(),
            master_rx_lower_pri: v.notify.notify_master_rx_lower_pri.clone(),
            deleted: (v.notify.notify_deleted_set, v.notify.notify_deleted.clone()),
        },
        track_interfaces: v.track_interfaces.clone(),
        track_scripts: v.track_scripts.clone(),
        track_files: v.track_files.clone(),
        track_processes: v.track_processes.clone(),
        track_bfds: v.track_bfds.clone(),
        sync_group,
        // The model names the vmac before virtual_router_id may have been read ("vrrp.0").
        use_vmac: v.use_vmac.as_ref().map(|n| {
            if n == "vrrp.0" {
                format!("vrrp.{vrid}")
            } else {
                n.clone()
            }
        }),
        vmac_xmit_base: v.vmac_xmit_base && !strict,
        use_ipvlan: v.use_ipvlan.as_ref().map(|i| {
            (
                i.name.clone().unwrap_or_else(|| format!("vrrp.{vrid}")),
                i.address.map(|a| (a.addr, a.prefix_len)),
                i.mode.clone().unwrap_or_else(|| "bridge".into()),
            )
        }),
        vrf: raw_value(v, "vrf").map(str::to_string),
        config_fault: (v.unicast_fault_no_peer && v.unicast_peers.is_empty())
            || v.use_ipvlan
                .as_ref()
                .is_some_and(|i| family == Family::V4 && i.address.is_none()),
        // keepalived 2.2.7 acts on it in unicast mode only (its bind of the source fails).
        track_src_ip: raw_flag_only(v, "track_src_ip")
            && v.unicast_src_ip.is_some()
            && !v.unicast_peers.is_empty(),
        promote_secondaries: raw_flag_only(v, "promote_secondaries"),
        linkbeat_polling: raw_flag_only(v, "linkbeat_use_polling")
            || cfg.top_level.linkbeat_use_polling
            || cfg
                .global
                .extra
                .iter()
                .any(|o| o.keyword == "linkbeat_use_polling"),
        garp_extra_if: garp_extra_if(v, cfg),
    })
}

/// Why keepalived would drop this instance at its end-of-configuration checks (it logs the
/// reason and runs the others), or None.
pub fn dropped(cfg: &KeepalivedConfig, v: &VrrpInstance) -> Option<String> {
    let strict = v.strict_mode.unwrap_or(cfg.global.vrrp_strict);
    let version = if strict && v.is_ipv6() { 3 } else { v.version };
    if v.virtual_ipaddresses.is_empty() && (version == 3 || v.is_ipv6() || strict) {
        return Some(format!(
            "({}) No VIP specified; at least one is required",
            v.name
        ));
    }
    // (keepalived 2.2.7 does not refuse unicast peers in strict mode, whatever its man page
    // says: it checks the interface's multicast flag before it knows the interface.)
    None
}

/// keepalived's authentication after its end-of-instance checks: none for VRRPv3, in strict
/// mode, or AH over IPv6; the password is the first 8 bytes, zero padded.
fn authentication(v: &VrrpInstance, version: u8, family: Family, strict: bool) -> Auth {
    let Some(a) = v.authentication.as_ref() else {
        return Auth::None;
    };
    if version != 2 || strict {
        return Auth::None;
    }
    let key = auth_pass_bytes(a.auth_pass.as_deref().unwrap_or(""));
    match a.auth_type {
        Some(AuthType::Pass) => Auth::Pass(key),
        Some(AuthType::Ah) if family == Family::V4 => Auth::Ah(key),
        _ => Auth::None,
    }
}

/// use_ipvlan, resolved: (interface name, its address and prefix length, mode).
pub type Ipvlan = (String, Option<(IpAddr, u8)>, String);

/// `brd` option: an address, `+` (last address of the prefix) or `-` (none).
pub fn broadcast(entry: &IpAddressEntry) -> Option<Ipv4Addr> {
    let IpAddr::V4(a) = entry.address.addr else {
        return None;
    };
    match entry.broadcast.as_deref()? {
        "+" => {
            let host_bits = 32 - u32::from(entry.address.prefix_len.min(32));
            let mask = if host_bits == 32 {
                u32::MAX
            } else {
                (1u32 << host_bits) - 1
            };
            Some(Ipv4Addr::from(u32::from(a) | mask))
        }
        "-" => None,
        s => s.parse().ok(),
    }
}

/// Routing table number from a name or number (`main`, `local`, `default`, N).
pub fn table_number(t: Option<&str>) -> u32 {
    match t {
        None | Some("main") => 254,
        Some("local") => 255,
        Some("default") => 253,
        Some(n) => n.parse().unwrap_or(254),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keepalived_conf::{ParseOptions, parse_str};

    fn parse(text: &str) -> KeepalivedConfig {
        parse_str(text, "test.conf", &ParseOptions::default()).config
    }

    #[test]
    fn units_and_defaults() {
        let cfg = parse(
            "global_defs { vrrp_garp_master_delay 0\n vrrp_version 3 }\n\
             vrrp_instance A { interface eth0\n virtual_router_id 5\n advert_int 0.01\n\
             old_unicast_checksum\n unicast_src_ip 198.18.0.1\n unicast_peer { 198.18.0.2 }\n\
             virtual_ipaddress { 198.18.0.100/24 brd + dev eth0 label eth0:1 scope link }\n}\n\
             vrrp_instance B { interface eth0\n virtual_router_id 6\n version 2\n advert_int 1.4\n\
             authentication { auth_type PASS\n auth_pass secret12345 }\n\
             virtual_ipaddress { 198.18.0.101 }\n}\n\
             vrrp_instance C { interface eth0\n virtual_router_id 7\n\
             virtual_ipaddress { 2001:db8::1 }\n}\n",
        );
        let a = instance(&cfg, &cfg.vrrp_instances[0]).unwrap();
        assert_eq!((a.version, a.adver_int), (3, 1));
        assert!(a.old_unicast_checksum && a.is_unicast());
        assert_eq!(a.garp.master_delay, 0);
        assert_eq!(a.garp.master_repeat, 5);
        assert_eq!(broadcast(&a.vips[0]), Some(Ipv4Addr::new(198, 18, 0, 255)));
        let b = instance(&cfg, &cfg.vrrp_instances[1]).unwrap();
        assert_eq!(b.family, Family::V4);
        assert_eq!((b.version, b.adver_int), (2, 1), "v2 rounds to seconds");
        let c = instance(&cfg, &cfg.vrrp_instances[2]).unwrap();
        assert_eq!((c.family, c.version, c.adver_int), (Family::V6, 3, 100));
        assert_eq!(b.auth, Auth::Pass(*b"secret12"));
    }

    #[test]
    fn strict_mode_turns_off_and_implies_what_keepalived_does() {
        let text = "global_defs { vrrp_strict\n vrrp_higher_prio_send_advert\n }\n\
             vrrp_instance S { interface eth0\n virtual_router_id 5\n priority 150\n\
             preempt_delay 5\n accept\n lower_prio_no_advert false\n use_vmac\n vmac_xmit_base\n\
             authentication { auth_type PASS\n auth_pass secret }\n\
             virtual_ipaddress { 198.18.0.100 }\n}\n\
             vrrp_instance N { interface eth0\n virtual_router_id 6\n priority 150\n\
             virtual_ipaddress { 198.18.0.101 }\n}\n\
             vrrp_instance E { interface eth0\n virtual_router_id 7\n }\n";
        let mut cfg = parse(text);
        let s = instance(&cfg, &cfg.vrrp_instances[0]).unwrap();
        assert!(s.strict);
        assert_eq!(s.auth, Auth::None, "no authentication in strict mode");
        assert!(!s.accept, "no accept mode for a VRRPv2 non-owner");
        assert_eq!(s.preempt_delay_us, 0);
        assert!(s.lower_prio_no_advert && !s.higher_prio_send_advert);
        assert_eq!((s.garp.lower_prio_repeat, s.garp.lower_prio_delay), (0, 0));
        assert!(!s.vmac_xmit_base);
        assert_eq!(
            dropped(&cfg, &cfg.vrrp_instances[2]).as_deref(),
            Some("(E) No VIP specified; at least one is required")
        );
        // Without strict mode: accept by default, the global higher_prio_send_advert.
        cfg.global.vrrp_strict = false;
        let n = instance(&cfg, &cfg.vrrp_instances[1]).unwrap();
        assert!(n.accept && n.higher_prio_send_advert && !n.lower_prio_no_advert);
        assert_eq!(
            dropped(&cfg, &cfg.vrrp_instances[2]),
            None,
            "a v2 instance may run"
        );
    }
}
