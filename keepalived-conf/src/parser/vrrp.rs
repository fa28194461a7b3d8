//! `vrrp_instance`.

use super::Parser;
use super::values::{check_true_false, parse_ip};
use crate::diag::{DiagKind, Severity};
use crate::lexer::Line;
use crate::model::{
    AuthType, Authentication, TrackRef, UnicastPeer, UseIpvlan, VrrpInstance, VrrpState,
};

/// vrrp_instance keywords accepted but kept verbatim.
pub(super) const OTHER_VRRP: &[&str] = &[
    "use_vmac_addr",
    "old_unicast_checksum",
    "vrf",
    "mcast_dst_ip",
    "track_src_ip",
    "promote_secondaries",
    "linkbeat_use_polling",
    "v3_checksum_as_v2",
    "no_virtual_ipaddress",
    "notify_priority_changes",
    "timer_expired_backup",
    "garp_extra_if",
    "vmac_garp_intvl",
    "kernel_rx_buf_size",
    "garp_interval",
    "gna_interval",
];

impl<'a> Parser<'a> {
    pub(crate) fn vrrp_instance(&mut self, l: &'a Line) {
        let Some(name) = self
            .word_or(l, 1, "vrrp_instance must have a name")
            .map(str::to_string)
        else {
            self.skip_block();
            return;
        };
        if self.config.vrrp_instance(&name).is_some() {
            self.warn(
                DiagKind::Semantic,
                l,
                format!("vrrp instance {name} already defined"),
            );
        }
        let mut v = VrrpInstance::new(name, l.span.clone());
        v.version = self.config.global.vrrp_version;
        let mut version_set = false;
        self.sub_block(&mut |p: &mut Parser<'a>, l: &'a Line| {
            p.vrrp_keyword(&mut v, &mut version_set, l)
        });
        // keepalived's end-of-block checks carry the line of the closing '}'.
        if v.unicast_ttl.is_some()
            && v.unicast_peers.is_empty()
            && let Some(end) = self.last_line
        {
            let msg = format!(
                "({}): Cannot use unicast_ttl without unicast peers - resetting",
                v.name
            );
            self.warn(DiagKind::Semantic, end, msg);
            v.unicast_ttl = None;
        }
        if v.unicast_src_ip.is_some() && v.unicast_peers.is_empty() {
            let msg = format!(
                "({}) A unicast keyword has been specified without any unicast peers. Defaulting to multicast. This usage is deprecated - please update your configuration.",
                v.name
            );
            self.diags
                .push(Severity::Warning, DiagKind::Semantic, None, msg, None);
        }
        if v.vmac_xmit_base && v.use_vmac.is_none() {
            let msg = format!("({}) vmac_xmit_base is only valid with a vmac", v.name);
            self.diags
                .push(Severity::Warning, DiagKind::Semantic, None, msg, None);
        }
        if !v.priority_configured && v.state == VrrpState::Master {
            v.priority = 255;
        }
        if v.state == VrrpState::Master {
            let clear = |p: &mut Self, what: &str| {
                let msg = format!(
                    "({}) Warning - {what} will not work with initial state MASTER - clearing",
                    v.name
                );
                p.diags
                    .push(Severity::Warning, DiagKind::Semantic, None, msg, None);
            };
            if !v.preempt {
                clear(self, "nopreempt");
                v.preempt = true;
            }
            if v.preempt_delay.is_some() {
                clear(self, "preempt delay");
                v.preempt_delay = None;
            }
        }
        if !v.state_configured && v.priority == 255 {
            v.state = VrrpState::Master;
        }
        if !version_set && v.is_ipv6() {
            v.version = 3;
        }
        self.config.vrrp_instances.push(v);
    }

    fn vrrp_keyword(&mut self, v: &mut VrrpInstance, version_set: &mut bool, l: &'a Line) -> bool {
        let name = v.name.clone();
        match l.first() {
            "state" => {
                if let Some(s) = self.arg(l, 1) {
                    v.state_configured = true;
                    v.state = match s {
                        "MASTER" => VrrpState::Master,
                        "BACKUP" => VrrpState::Backup,
                        other => {
                            self.warn(
                                DiagKind::InvalidValue,
                                l,
                                format!("({name}) unknown state '{other}', defaulting to BACKUP"),
                            );
                            v.state_configured = false;
                            VrrpState::Backup
                        }
                    }
                }
            }
            "interface" => {
                v.interface = self.read_string(l, 1);
                v.interface_span = Some(l.span.clone());
            }
            "dpdk_interface" => v.dpdk_interface = self.read_string(l, 1),
            "virtual_router_id" => match self.read_u32(l, 1, 1, 255) {
                Some(id) => v.virtual_router_id = Some(id as u8),
                None if l.len() < 2 => {}
                None => {
                    let w = l.word(1).unwrap_or("");
                    self.warn(
                        DiagKind::InvalidValue,
                        l,
                        format!("({name}): VRID '{w}' not valid - must be between 1 & 255"),
                    );
                }
            },
            "priority" => match self.read_u32(l, 1, 1, 255) {
                Some(p) => {
                    v.priority = p as u8;
                    v.priority_configured = true;
                }
                None if l.len() > 1 => self.warn(
                    DiagKind::InvalidValue,
                    l,
                    format!(
                        "({name}) Priority not valid! must be between 1 & 255. Using default 100"
                    ),
                ),
                None => {}
            },
            "advert_int" => {
                if let Some(t) = self.read_timer(l, 1, 0.01, 255.0) {
                    v.advert_int = t;
                }
            }
            "version" => {
                if let Some(ver) = self.read_u32(l, 1, 2, 3) {
                    v.version = ver as u8;
                    *version_set = true;
                }
            }
            "preempt" => v.preempt = true,
            "nopreempt" => v.preempt = false,
            "preempt_delay" => v.preempt_delay = self.read_timer(l, 1, 0.0, 1000.0),
            "accept" => v.accept = Some(true),
            "no_accept" => v.accept = Some(false),
            "use_vmac" => {
                if l.len() > 2 {
                    self.warn(
                        DiagKind::InvalidValue,
                        l,
                        "VMAC interface name already specified",
                    );
                }
                v.use_vmac = Some(
                    l.word(1)
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("vrrp.{}", v.virtual_router_id.unwrap_or(0))),
                )
            }
            "vmac_xmit_base" => v.vmac_xmit_base = true,
            "use_ipvlan" => {
                let mut spec = UseIpvlan {
                    name: None,
                    address: None,
                    mode: None,
                };
                for w in l.args() {
                    if matches!(w, "bridge" | "private" | "vepa") {
                        spec.mode = Some(w.to_string());
                    } else if let Some((a, _)) = super::values::parse_prefix(w) {
                        spec.address = Some(a);
                    } else if spec.name.is_none() {
                        spec.name = Some(w.to_string());
                    }
                }
                v.use_ipvlan = Some(spec);
            }
            "native_ipv6" => v.native_ipv6 = true,
            "dont_track_primary" => v.dont_track_primary = true,
            "mcast_src_ip" => v.mcast_src_ip = self.read_ip(l, 1),
            "unicast_src_ip" => v.unicast_src_ip = self.read_ip(l, 1),
            "unicast_ttl" => v.unicast_ttl = self.read_u32(l, 1, 1, 255).map(|t| t as u8),
            "unicast_fault_no_peer" => v.unicast_fault_no_peer = true,
            "check_unicast_src" => v.check_unicast_src = true,
            "unicast_peer" => {
                for it in self.value_block(l) {
                    match parse_ip(it.first()) {
                        Some(address) => {
                            let mut peer = UnicastPeer {
                                address,
                                min_ttl: None,
                                max_ttl: None,
                            };
                            let mut i = 1;
                            while i + 1 < it.len() {
                                match it.word(i) {
                                    Some("min_ttl") => {
                                        peer.min_ttl =
                                            self.read_u32(it, i + 1, 0, 255).map(|t| t as u8)
                                    }
                                    Some("max_ttl") => {
                                        peer.max_ttl =
                                            self.read_u32(it, i + 1, 0, 255).map(|t| t as u8)
                                    }
                                    _ => {}
                                }
                                i += 2;
                            }
                            v.unicast_peers.push(peer);
                        }
                        None => self.warn(
                            DiagKind::InvalidValue,
                            it,
                            format!("({name}) Invalid unicast peer address {}", it.first()),
                        ),
                    }
                }
            }
            "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                let excluded = l.first() == "virtual_ipaddress_excluded";
                for it in self.value_block(l) {
                    if let Some(e) = self.ip_address_entry(it, "vrrp") {
                        let first = v.virtual_ipaddresses.first().map(|f| f.address.addr);
                        if !excluded
                            && first.is_some_and(|f| f.is_ipv4() != e.address.addr.is_ipv4())
                        {
                            self.warn(
                                DiagKind::InvalidValue,
                                it,
                                format!(
                                    "({name}): address family must match VRRP instance [{}] - ignoring",
                                    e.address.addr
                                ),
                            );
                            continue;
                        }
                        if excluded {
                            v.virtual_ipaddresses_excluded.push(e);
                        } else {
                            v.virtual_ipaddresses.push(e);
                        }
                    }
                }
            }
            "virtual_routes" => {
                for it in self.value_block(l) {
                    if let Some(r) = self.route_entry_ctx(it, true) {
                        v.virtual_routes.push(r);
                    }
                }
            }
            "virtual_rules" => {
                for it in self.value_block(l) {
                    if let Some(r) = self.rule_entry(it) {
                        v.virtual_rules.push(r);
                    }
                }
            }
            "track_interface" => {
                let refs = self.track_refs(l);
                v.track_interfaces.extend(refs);
            }
            "track_script" => {
                let refs = self.track_refs(l);
                for r in refs {
                    if self.config.vrrp_script(&r.name).is_some() {
                        v.track_scripts.push(r);
                    } else {
                        self.diags.push(
                            Severity::Warning,
                            DiagKind::Semantic,
                            Some(&r.span),
                            format!("({name}) track script {} not found, ignoring...", r.name),
                            None,
                        );
                    }
                }
            }
            "track_file" => {
                let refs = self.track_refs(l);
                v.track_files.extend(refs);
            }
            "track_process" => {
                let refs = self.track_refs(l);
                v.track_processes.extend(refs);
            }
            "track_bfd" => {
                let refs = self.track_refs(l);
                v.track_bfds.extend(refs);
            }
            "authentication" => {
                let mut auth = Authentication {
                    auth_type: None,
                    auth_pass: None,
                };
                self.sub_block(&mut |p: &mut Parser<'a>, l: &'a Line| {
                    match l.first() {
                        "auth_type" => match p.arg(l, 1) {
                            Some("PASS") => auth.auth_type = Some(AuthType::Pass),
                            Some("AH") => auth.auth_type = Some(AuthType::Ah),
                            Some(other) => p.warn(
                                DiagKind::InvalidValue,
                                l,
                                format!("({}) unknown authentication type '{other}'", name),
                            ),
                            None => {}
                        },
                        "auth_pass" => {
                            auth.auth_pass =
                                p.read_string(l, 1).map(|s| s.chars().take(8).collect());
                        }
                        _ => return false,
                    }
                    true
                });
                v.authentication = Some(auth);
            }
            "notify" => v.notify.notify = self.script(l, 1),
            "notify_master" => v.notify.notify_master = self.script(l, 1),
            "notify_backup" => v.notify.notify_backup = self.script(l, 1),
            "notify_fault" => v.notify.notify_fault = self.script(l, 1),
            "notify_stop" => v.notify.notify_stop = self.script(l, 1),
            "notify_deleted" => {
                v.notify.notify_deleted_set = true;
                if l.len() > 1 {
                    v.notify.notify_deleted = self.script(l, 1);
                }
            }
            "notify_master_rx_lower_pri" => v.notify.notify_master_rx_lower_pri = self.script(l, 1),
            "smtp_alert" => v.smtp_alert = self.read_flag(l, 1),
            "strict_mode" => v.strict_mode = self.read_flag(l, 1),
            "skip_check_adv_addr" => match l.word(1).map(check_true_false) {
                Some(None) => {
                    let msg = format!(
                        "({name}) invalid skip_check_adv_addr {} specified",
                        l.word(1).unwrap_or("")
                    );
                    self.warn(DiagKind::InvalidValue, l, msg);
                }
                Some(Some(b)) => v.skip_check_adv_addr = b,
                None => v.skip_check_adv_addr = true,
            },
            "garp_master_delay" => {
                v.garp_master_delay = self.read_u32(l, 1, 0, 4294);
                if v.garp_master_delay.is_none() && l.len() > 1 {
                    let msg = format!(
                        "({name}): garp_master_delay '{}' invalid - ignoring",
                        l.word(1).unwrap_or("")
                    );
                    self.warn(DiagKind::InvalidValue, l, msg);
                }
            }
            "garp_master_repeat" => v.garp_master_repeat = self.read_u32(l, 1, 0, u32::MAX),
            "garp_master_refresh" => v.garp_master_refresh = self.read_u32(l, 1, 0, u32::MAX),
            "garp_master_refresh_repeat" => {
                v.garp_master_refresh_repeat = self.read_u32(l, 1, 0, u32::MAX)
            }
            "garp_lower_prio_delay" => v.garp_lower_prio_delay = self.read_u32(l, 1, 0, 86400),
            "garp_lower_prio_repeat" => v.garp_lower_prio_repeat = self.read_u32(l, 1, 0, u32::MAX),
            "down_timer_adverts" => {
                if let Some(d) = self.read_u32(l, 1, 1, 100) {
                    v.down_timer_adverts = d;
                }
            }
            "lower_prio_no_advert" => v.lower_prio_no_advert = self.read_flag(l, 1),
            "higher_prio_send_advert" => v.higher_prio_send_advert = self.read_flag(l, 1),
            "lvs_sync_daemon_interface" => {
                v.lvs_sync_daemon_interface = self.read_string(l, 1);
                self.warn(
                    DiagKind::Deprecated,
                    l,
                    format!("({name}) Specifying lvs_sync_daemon_interface against a vrrp is deprecated."),
                );
                self.warn(
                    DiagKind::Deprecated,
                    l,
                    "        Please use global lvs_sync_daemon",
                );
            }
            "debug" => v.debug = self.read_u32(l, 1, 0, 4).map(|d| d as u8),
            "mcast_dst_ip" => {
                if let Some(w) = self.arg(l, 1) {
                    let msg = match parse_ip(w) {
                        None => Some(format!(
                            "({name}) malformed mcast dest address {w}. Skipping..."
                        )),
                        Some(a) if !a.is_multicast() => Some(format!(
                            "({name}) mcast_dst_ip {w} not multicast. Skipping..."
                        )),
                        Some(_) => None,
                    };
                    if let Some(msg) = msg {
                        self.warn(DiagKind::InvalidValue, l, msg);
                    }
                }
                let opt = self.raw_option(l, false);
                v.extra.push(opt);
            }
            "kernel_rx_buf_size" => {
                if l.len() != 2
                    || l.word(1)
                        .and_then(|w| w.parse::<u64>().ok())
                        .is_none_or(|n| n == 0)
                {
                    let msg = format!("({}) invalid kernel_rx_buf_size specified", v.name);
                    self.warn(DiagKind::InvalidValue, l, msg);
                }
                let opt = self.raw_option(l, false);
                v.extra.push(opt);
            }
            kw if OTHER_VRRP.contains(&kw) => {
                let opt = self.raw_option(l, false);
                v.extra.push(opt);
            }
            _ => return false,
        }
        true
    }

    /// `{ NAME [weight W [reverse]] … }` lists of tracked objects.
    pub(crate) fn track_refs(&mut self, l: &'a Line) -> Vec<TrackRef> {
        let mut out = Vec::new();
        for it in self.value_block(l) {
            let mut r = TrackRef {
                name: it.first().to_string(),
                weight: None,
                reverse: false,
                span: it.span.clone(),
            };
            let mut i = 1;
            while i < it.len() {
                match it.word(i) {
                    Some("weight") => {
                        r.weight = self.read_i32(it, i + 1, -254, 254);
                        i += 2;
                    }
                    Some("reverse") => {
                        r.reverse = true;
                        i += 1;
                    }
                    _ => i += 1,
                }
            }
            out.push(r);
        }
        out
    }
}
