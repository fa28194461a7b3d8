//! `global_defs` and `SSL`.

use super::Parser;
use super::values::{check_true_false, inet_aton, parse_ip};
use crate::diag::DiagKind;
use crate::lexer::Line;
use crate::model::{LvsSyncDaemon, SmtpServer, SslConfig};

/// global_defs keywords accepted but kept verbatim (2.2.8 list).
pub(super) const OTHER_GLOBAL: &[&str] = &[
    "process_names",
    "process_name",
    "vrrp_process_name",
    "checker_process_name",
    "lvs_process_name",
    "bfd_process_name",
    "checker_log_all_failures",
    "no_email_faults",
    "startup_script_timeout",
    "shutdown_script_timeout",
    "min_auto_priority_delay",
    "disable_local_igmp",
    "v3_checksum_as_v2",
    "vrrp_down_timer_adverts",
    "vrrp_garp_extra_if",
    "vrrp_vmac_garp_intvl",
    "vrrp_iptables",
    "vrrp_ipsets",
    "nftables",
    "nftables_priority",
    "nftables_ifindex",
    "nftables_ipvs",
    "nftables_ipvs_priority",
    "nftables_ipvs_start_fwmark",
    "nftables_counters",
    "vrrp_rt_priority",
    "checker_rt_priority",
    "bfd_rt_priority",
    "bfd_priority",
    "bfd_no_swap",
    "vrrp_cpu_affinity",
    "checker_cpu_affinity",
    "bfd_cpu_affinity",
    "vrrp_rlimit_rttime",
    "checker_rlimit_rttime",
    "bfd_rlimit_rttime",
    "vrrp_rlimit_rtime",
    "checker_rlimit_rtime",
    "bfd_rlimit_rtime",
    "vrrp_notify_priority_changes",
    "fifo_write_vrrp_states_on_reload",
    "snmp_socket",
    "enable_traps",
    "enable_snmp_keepalived",
    "enable_snmp_rfcv2",
    "enable_snmp_rfcv3",
    "dbus_service_name",
    "vrrp_netlink_cmd_rcv_bufs",
    "vrrp_netlink_cmd_rcv_bufs_force",
    "vrrp_netlink_monitor_rcv_bufs",
    "vrrp_netlink_monitor_rcv_bufs_force",
    "lvs_netlink_cmd_rcv_bufs",
    "lvs_netlink_cmd_rcv_bufs_force",
    "lvs_netlink_monitor_rcv_bufs",
    "lvs_netlink_monitor_rcv_bufs_force",
    "process_monitor_rcv_bufs",
    "process_monitor_rcv_bufs_force",
    "rs_init_notifies",
    "no_checker_emails",
    "vrrp_rx_bufs_policy",
    "vrrp_rx_bufs_multiplier",
    "log_unknown_vrids",
    "vmac_addr_prefix",
    "umask",
    "random_seed",
    "reload_check_config",
    "reload_time_file",
    "reload_repeat",
    "reload_file",
    "include_check",
    "config_save_dir",
    "tmp_config_directory",
    "data_use_instance",
    "json_version",
    "vrrp_min_garp",
    "vrrp_garp_lower_prio_delay",
    "vrrp_garp_lower_prio_repeat",
    "lvs_sync_daemon_interface",
    "linkbeat_use_polling",
    // DPVS keepalived
    "vrrp_nolvs",
];

impl<'a> Parser<'a> {
    pub(crate) fn global_defs(&mut self, l: &'a Line) {
        if self.config.global.span.is_none() {
            self.config.global.span = Some(l.span.clone());
        }
        self.sub_block(&mut |p: &mut Parser<'a>, l: &'a Line| p.global_keyword(l));
    }

    fn global_keyword(&mut self, l: &'a Line) -> bool {
        let timer_max = 4294.967295;
        match l.first() {
            "router_id" => match l.word(1) {
                Some(id) => self.config.global.router_id = Some(id.to_string()),
                None => self.warn(
                    DiagKind::MissingParameter,
                    l,
                    "routerid name missing - ignoring",
                ),
            },
            "notification_email" => {
                let words = self.value_words(l);
                if words.is_empty()
                    && let Some(end) = self.last_line
                {
                    self.warn(
                        DiagKind::Semantic,
                        end,
                        "Warning - empty notification_email block",
                    );
                }
                self.config.global.notification_email.extend(words);
            }
            "notification_email_from" => {
                self.config.global.notification_email_from = self
                    .word_or(l, 1, "emailfrom missing - ignoring")
                    .map(str::to_string)
            }
            "smtp_server" => {
                if let Some(host) = self.read_string(l, 1) {
                    let port = if l.len() > 2 {
                        self.read_port(l, 2)
                    } else {
                        None
                    };
                    if parse_ip(&host).is_none() && inet_aton(&host).is_none() {
                        let msg = format!("Invalid smtp server {host} {}", port.unwrap_or(25));
                        self.warn(DiagKind::InvalidValue, l, msg);
                    }
                    self.config.global.smtp_server = Some(SmtpServer {
                        host,
                        port: port.unwrap_or(25),
                    });
                }
            }
            // 2.2.7 ignores a missing name silently.
            "smtp_helo_name" => self.config.global.smtp_helo_name = l.word(1).map(str::to_string),
            "smtp_connect_timeout" => match self.read_unsigned(l, 1, 0, 4294) {
                Some(0) => {
                    let msg = "smtp_conect_timeout must be greater than 0, setting to 1";
                    self.warn(DiagKind::InvalidValue, l, msg);
                    self.config.global.smtp_connect_timeout = 1.0;
                }
                Some(v) => self.config.global.smtp_connect_timeout = v as f64,
                None if l.len() > 1 => {
                    let msg = format!(
                        "smtp_connect_timeout '{}' must be in [0, 4294] - ignoring",
                        l.word(1).unwrap_or("")
                    );
                    self.warn(DiagKind::InvalidValue, l, msg);
                }
                None => {}
            },
            "smtp_alert" => self.config.global.smtp_alert = self.read_flag(l, 1),
            "smtp_alert_vrrp" => self.config.global.smtp_alert_vrrp = self.read_flag(l, 1),
            "smtp_alert_checker" => self.config.global.smtp_alert_checker = self.read_flag(l, 1),
            "enable_script_security" => {
                self.config.global.enable_script_security = true;
                let g = &mut self.config.global;
                g.script_security_span.get_or_insert_with(|| l.span.clone());
            }
            "script_user" => {
                self.config.global.script_user = self
                    .word_or(l, 1, "No script username specified")
                    .map(str::to_string);
                let unknown_user = l
                    .word(1)
                    .is_some_and(|u| !matches!(nix::unistd::User::from_name(u), Ok(Some(_))));
                let unknown_group = l
                    .word(2)
                    .is_some_and(|g| !matches!(nix::unistd::Group::from_name(g), Ok(Some(_))));
                self.config.global.script_user_unknown = unknown_user || unknown_group;
                if unknown_user || unknown_group {
                    self.warn(
                        DiagKind::InvalidValue,
                        l,
                        "Error setting global script uid/gid",
                    );
                }
                self.config.global.script_group = l.word(2).map(str::to_string);
            }
            "startup_script" | "shutdown_script" => {
                let which = l.first().trim_end_matches("_script");
                let script = self
                    .word_or(l, 1, &format!("{which} script missing"))
                    .and_then(|_| self.script(l, 1));
                let unknown_user = script.as_ref().is_some_and(|s| {
                    s.user
                        .as_deref()
                        .is_some_and(|u| !matches!(nix::unistd::User::from_name(u), Ok(Some(_))))
                });
                if unknown_user {
                    self.warn(DiagKind::InvalidValue, l, format!("Invalid {which} script"));
                }
                if which == "startup" {
                    self.config.global.startup_script = script;
                } else {
                    self.config.global.shutdown_script = script;
                }
            }
            "notify_fifo" => {
                self.config.global.notify_fifo = self
                    .word_or(l, 1, "No notify_fifo name specified")
                    .map(str::to_string)
            }
            "notify_fifo_script" => self.config.global.notify_fifo_script = self.script(l, 1),
            "vrrp_notify_fifo" => {
                self.config.global.vrrp_notify_fifo = self
                    .word_or(l, 1, "No vrrp_notify_fifo name specified")
                    .map(str::to_string)
            }
            "vrrp_notify_fifo_script" => {
                self.config.global.vrrp_notify_fifo_script = self.script(l, 1)
            }
            "lvs_notify_fifo" => {
                self.config.global.lvs_notify_fifo = self
                    .word_or(l, 1, "No lvs_notify_fifo name specified")
                    .map(str::to_string)
            }
            "lvs_notify_fifo_script" => {
                self.config.global.lvs_notify_fifo_script = self.script(l, 1)
            }
            "dynamic_interfaces" => {
                if let Some(w) = l.word(1).filter(|w| *w != "allow_if_changes") {
                    let msg = format!("Unknown dynamic_interfaces option '{w}'");
                    self.warn(DiagKind::InvalidValue, l, msg);
                }
                self.config.global.dynamic_interfaces = true
            }
            "default_interface" => {
                self.config.global.default_interface = self
                    .word_or(l, 1, "default_interface requires interface name")
                    .map(str::to_string)
            }
            "lvs_timeouts" => self.lvs_timeouts(l),
            "lvs_flush" => self.config.global.lvs_flush = true,
            "lvs_flush_on_stop" | "lvs_flush_onstop" => {
                if let Some(w) = l.word(1).filter(|w| !matches!(*w, "VS" | "VIP")) {
                    let msg = format!("Unknown lvs_flush_on_stop type {w}");
                    self.warn(DiagKind::InvalidValue, l, msg);
                }
                self.config.global.lvs_flush_on_stop = true
            }
            "lvs_sync_daemon" => self.lvs_sync_daemon(l),
            "vrrp_mcast_group4" => {
                if let Some(a) = self.read_ip(l, 1) {
                    if !(a.is_ipv4() && a.is_multicast()) {
                        let msg = format!("vrrp_mcast_group4 [{a}] is not multicast. Skipping");
                        self.warn(DiagKind::InvalidValue, l, msg);
                        return true;
                    }
                    self.config.global.vrrp_mcast_group4 = a;
                }
            }
            "vrrp_mcast_group6" => {
                if let Some(a) = self.read_ip(l, 1) {
                    if !(a.is_ipv6() && a.is_multicast()) {
                        let msg = format!("vrrp_mcast_group6 [{a}] is not IPv6. Skipping");
                        self.warn(DiagKind::InvalidValue, l, msg);
                        return true;
                    }
                    self.config.global.vrrp_mcast_group6 = a;
                }
            }
            "vrrp_garp_master_delay" => match self.read_u32(l, 1, 0, 4294) {
                Some(v) => self.config.global.vrrp_garp_master_delay = v,
                None if l.len() > 1 => {
                    let msg = format!(
                        "vrrp_garp_master_delay '{}' invalid - ignoring",
                        l.word(1).unwrap_or("")
                    );
                    self.warn(DiagKind::InvalidValue, l, msg);
                }
                None => {}
            },
            "vrrp_garp_master_repeat" => {
                if let Some(v) = self.read_u32(l, 1, 0, u32::MAX) {
                    self.config.global.vrrp_garp_master_repeat = v;
                }
            }
            "vrrp_garp_master_refresh" => {
                if let Some(v) = self.read_u32(l, 1, 0, u32::MAX) {
                    self.config.global.vrrp_garp_master_refresh = v;
                }
            }
            "vrrp_garp_master_refresh_repeat" => {
                if let Some(v) = self.read_u32(l, 1, 0, u32::MAX) {
                    self.config.global.vrrp_garp_master_refresh_repeat = v;
                }
            }
            "vrrp_garp_interval" | "vrrp_gna_interval" => {
                // keepalived 2.2.7 requires a strictly positive value.
                match self.read_timer(l, 1, 0.000001, timer_max) {
                    Some(v) => {
                        if l.first() == "vrrp_garp_interval" {
                            self.config.global.vrrp_garp_interval = v;
                        } else {
                            self.config.global.vrrp_gna_interval = v;
                        }
                    }
                    None => {
                        let msg = format!("{} '{}' is invalid", l.first(), l.word(1).unwrap_or(""));
                        self.warn(DiagKind::InvalidValue, l, msg);
                    }
                }
            }
            "vrrp_lower_prio_no_advert" => {
                self.config.global.vrrp_lower_prio_no_advert = self.read_flag(l, 1)
            }
            "vrrp_higher_prio_send_advert" => {
                self.config.global.vrrp_higher_prio_send_advert = self.read_flag(l, 1)
            }
            "vrrp_version" => {
                if let Some(v) = self.read_u32(l, 1, 2, 3) {
                    self.config.global.vrrp_version = v as u8;
                }
            }
            "vrrp_check_unicast_src" => self.config.global.vrrp_check_unicast_src = true,
            "vrrp_skip_check_adv_addr" => self.config.global.vrrp_skip_check_adv_addr = true,
            "vrrp_strict" => self.config.global.vrrp_strict = true,
            "vrrp_priority" => {
                self.config.global.vrrp_priority = self
                    .word_or(l, 1, "No vrrp process priority specified")
                    .and_then(|_| self.read_i32(l, 1, -20, 19))
            }
            "checker_priority" => {
                self.config.global.checker_priority = self
                    .word_or(l, 1, "No checker process priority specified")
                    .and_then(|_| self.read_i32(l, 1, -20, 19))
            }
            "vrrp_no_swap" => self.config.global.vrrp_no_swap = true,
            "checker_no_swap" => self.config.global.checker_no_swap = true,
            "enable_snmp_vrrp" => self.config.global.enable_snmp_vrrp = true,
            "enable_snmp_checker" => self.config.global.enable_snmp_checker = true,
            "enable_snmp_rfc" => self.config.global.enable_snmp_rfc = true,
            "enable_dbus" => self.config.global.enable_dbus = true,
            "vrrp_startup_delay" => {
                self.config.global.vrrp_startup_delay = self.read_timer(l, 1, 0.001, timer_max);
                if self.config.global.vrrp_startup_delay.is_none() && l.len() > 1 {
                    let msg = format!(
                        "vrrp_startup_delay '{}' is invalid",
                        l.word(1).unwrap_or("")
                    );
                    self.warn(DiagKind::InvalidValue, l, msg);
                }
            }
            "max_auto_priority" => {
                self.config.global.max_auto_priority = if l.len() > 1 {
                    self.read_i32(l, 1, -1, 99)
                } else {
                    Some(99)
                }
            }
            "vmac_prefix" => self.config.global.vmac_prefix = self.read_string(l, 1),
            kw if OTHER_GLOBAL.contains(&kw) => {
                self.check_kept_global(l);
                let opt = self.raw_option(l, false);
                self.config.global.extra.push(opt);
            }
            "lvs_id" => {
                // keepalived 1.x name of router_id: 2.2 reports it as unknown
                // (so do we, for the same verdict) but we still use it.
                self.unknown(l);
                if self.config.global.router_id.is_none() {
                    self.config.global.router_id = l.word(1).map(str::to_string);
                }
            }
            _ => return false,
        }
        true
    }

    /// What keepalived 2.2.7 says about the keywords we keep verbatim.
    fn check_kept_global(&mut self, l: &'a Line) {
        let missing = match l.first() {
            "vrrp_rt_priority" => "No vrrp process real-time priority specified",
            "checker_rt_priority" => "No checker process real-time priority specified",
            "bfd_rt_priority" => "No bfd process real-time priority specified",
            "min_auto_priority_delay" => "min_auto_priority_delay requires delay time",
            "startup_script_timeout" => "startup_script_timeout requires value",
            "vrrp_min_garp" | "no_checker_emails" => {
                if l.word(1).is_some_and(|w| check_true_false(w).is_none()) {
                    let msg = if l.first() == "vrrp_min_garp" {
                        "Invalid value for vrrp_min_garp specified".to_string()
                    } else {
                        format!(
                            "Invalid value '{}' for global no_checker_emails specified",
                            l.word(1).unwrap_or("")
                        )
                    };
                    self.warn(DiagKind::InvalidValue, l, msg);
                }
                return;
            }
            "umask" => {
                if l.len() > 2 {
                    self.warn(
                        DiagKind::InvalidValue,
                        l,
                        "Extra parameter(s) to umask option",
                    );
                } else if let Some(w) = self.arg(l, 1) {
                    self.check_umask(l, w);
                }
                return;
            }
            "vrrp_garp_lower_prio_delay" | "vrrp_garp_lower_prio_repeat" => {
                // These end keepalived's check when their value is missing.
                let max = if l.first().ends_with("delay") {
                    4294
                } else {
                    u32::MAX
                };
                if self.arg(l, 1).is_some() && self.read_u32(l, 1, 0, max).is_none() {
                    let msg = format!("{} '{}' invalid", l.first(), l.word(1).unwrap_or(""));
                    self.warn(DiagKind::InvalidValue, l, msg);
                }
                return;
            }
            _ => return,
        };
        if self.word_or(l, 1, missing).is_none() {
            return;
        }
        let w = l.word(1).unwrap_or("");
        match l.first() {
            kw if kw.ends_with("_rt_priority") => {
                let process = kw.trim_end_matches("_rt_priority");
                let msg = match self.read_int(l, 1, i64::MIN, i64::MAX) {
                    None => format!("{process} process real-time priority '{w}' invalid"),
                    Some(v) if v < 1 => format!(
                        "{process} process real-time priority {v} less than minimum 1 - setting to minimum"
                    ),
                    Some(v) if v > 99 => format!(
                        "{process} process real-time priority {v} greater than maximum 99 - setting to maximum"
                    ),
                    Some(_) => return,
                };
                self.warn(DiagKind::InvalidValue, l, msg);
            }
            kw => {
                let max = if kw == "startup_script_timeout" {
                    1000
                } else {
                    10_000_000
                };
                let ok = if kw == "startup_script_timeout" {
                    self.read_unsigned(l, 1, 1, max).is_some()
                } else {
                    self.read_int(l, 1, 1, max as i64).is_some()
                };
                if !ok {
                    let msg = format!("{kw} '{w}' must be in [1, {max}] - ignoring");
                    self.warn(DiagKind::InvalidValue, l, msg);
                }
            }
        }
    }

    /// keepalived's umask: a number, or IRUSR|IWGRP|... bits.
    fn check_umask(&mut self, l: &'a Line, w: &str) {
        let msg = if w.starts_with(|c: char| c.is_ascii_digit()) {
            let n = if let Some(h) = w.strip_prefix("0x").or(w.strip_prefix("0X")) {
                u64::from_str_radix(h, 16).ok()
            } else if w.len() > 1 && w.starts_with('0') {
                u64::from_str_radix(&w[1..], 8).ok()
            } else {
                w.parse::<u64>().ok()
            };
            match n {
                Some(v) if v <= 0o7777 => return,
                _ => format!("invalid umask value {w}"),
            }
        } else {
            const BITS: &[&str] = &[
                "IRUSR", "IWUSR", "IXUSR", "IRGRP", "IWGRP", "IXGRP", "IROTH", "IWOTH", "IXOTH",
                "IRWXU", "IRWXG", "IRWXO",
            ];
            match w.split('|').find(|b| !BITS.contains(&b.trim())) {
                Some(b) => format!("Unknown umask bit {b}"),
                None => return,
            }
        };
        self.warn(DiagKind::InvalidValue, l, msg);
    }

    fn lvs_timeouts(&mut self, l: &'a Line) {
        if l.len() < 2 {
            self.warn(
                DiagKind::MissingParameter,
                l,
                "lvs_timeouts requires at least one option",
            );
            return;
        }
        let mut i = 1;
        while i < l.len() {
            let kw = l.word(i).unwrap_or("");
            if !matches!(kw, "tcp" | "tcpfin" | "udp") {
                self.warn_at(
                    DiagKind::InvalidValue,
                    l,
                    i,
                    format!("Unknown option {kw} specified for lvs_timeouts"),
                );
                i += 1;
                continue;
            }
            let v = self.read_u32(l, i + 1, 0, 86400 * 31);
            let t = &mut self.config.global.lvs_timeouts;
            match kw {
                "tcp" => t.tcp = v,
                "tcpfin" => t.tcpfin = v,
                _ => t.udp = v,
            }
            i += 2;
        }
    }

    fn lvs_sync_daemon(&mut self, l: &'a Line) {
        let Some(interface) = self
            .word_or(l, 1, "lvs_sync_daemon requires interface")
            .map(str::to_string)
        else {
            return;
        };
        let mut d = LvsSyncDaemon {
            interface,
            vrrp_instance: None,
            sync_id: None,
            maxlen: None,
            port: None,
            ttl: None,
            group: None,
        };
        let mut i = 2;
        while i < l.len() {
            match l.word(i).unwrap_or("") {
                "id" => d.sync_id = self.read_u32(l, i + 1, 0, 255),
                "maxlen" => d.maxlen = self.read_u32(l, i + 1, 1, 65535 - 20 - 8),
                "port" => d.port = self.read_port(l, i + 1),
                "ttl" => d.ttl = self.read_u32(l, i + 1, 1, 255).map(|v| v as u8),
                "group" => d.group = l.word(i + 1).and_then(parse_ip),
                "inst" => d.vrrp_instance = l.word(i + 1).map(str::to_string),
                other => {
                    d.vrrp_instance = Some(other.to_string());
                    i += 1;
                    continue;
                }
            }
            i += 2;
        }
        self.config.global.lvs_sync_daemon = Some(d);
    }

    pub(crate) fn ssl_block(&mut self, l: &'a Line) {
        let mut ssl = SslConfig {
            span: Some(l.span.clone()),
            ..SslConfig::default()
        };
        self.sub_block(&mut |p: &mut Parser<'a>, l: &'a Line| {
            match l.first() {
                "password" => ssl.password = p.read_string(l, 1),
                "ca" => ssl.ca = p.read_string(l, 1),
                "certificate" => ssl.certificate = p.read_string(l, 1),
                "key" => ssl.key = p.read_string(l, 1),
                _ => return false,
            }
            true
        });
        self.config.ssl = Some(ssl);
    }
}
