//! `global_defs` and `SSL`.

use super::Parser;
use super::values::parse_ip;
use crate::diag::DiagKind;
use crate::lexer::Line;
use crate::model::{LvsSyncDaemon, SmtpServer, SslConfig};

/// global_defs keywords accepted but kept verbatim (2.2.8 list).
const OTHER_GLOBAL: &[&str] = &[
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
                self.config.global.notification_email.extend(words);
            }
            "notification_email_from" => {
                self.config.global.notification_email_from = self.read_string(l, 1)
            }
            "smtp_server" => {
                if let Some(host) = self.read_string(l, 1) {
                    let port = if l.len() > 2 {
                        self.read_port(l, 2)
                    } else {
                        None
                    };
                    self.config.global.smtp_server = Some(SmtpServer {
                        host,
                        port: port.unwrap_or(25),
                    });
                }
            }
            "smtp_helo_name" => self.config.global.smtp_helo_name = self.read_string(l, 1),
            "smtp_connect_timeout" => {
                if let Some(v) = self.read_unsigned(l, 1, 1, u64::from(u32::MAX)) {
                    self.config.global.smtp_connect_timeout = v as f64;
                }
            }
            "smtp_alert" => self.config.global.smtp_alert = self.read_flag(l, 1),
            "smtp_alert_vrrp" => self.config.global.smtp_alert_vrrp = self.read_flag(l, 1),
            "smtp_alert_checker" => self.config.global.smtp_alert_checker = self.read_flag(l, 1),
            "enable_script_security" => self.config.global.enable_script_security = true,
            "script_user" => {
                self.config.global.script_user = self.read_string(l, 1);
                self.config.global.script_group = l.word(2).map(str::to_string);
            }
            "startup_script" => self.config.global.startup_script = self.script(l, 1),
            "shutdown_script" => self.config.global.shutdown_script = self.script(l, 1),
            "notify_fifo" => self.config.global.notify_fifo = self.read_string(l, 1),
            "notify_fifo_script" => self.config.global.notify_fifo_script = self.script(l, 1),
            "vrrp_notify_fifo" => self.config.global.vrrp_notify_fifo = self.read_string(l, 1),
            "vrrp_notify_fifo_script" => {
                self.config.global.vrrp_notify_fifo_script = self.script(l, 1)
            }
            "lvs_notify_fifo" => self.config.global.lvs_notify_fifo = self.read_string(l, 1),
            "lvs_notify_fifo_script" => {
                self.config.global.lvs_notify_fifo_script = self.script(l, 1)
            }
            "dynamic_interfaces" => self.config.global.dynamic_interfaces = true,
            "default_interface" => self.config.global.default_interface = self.read_string(l, 1),
            "lvs_timeouts" => self.lvs_timeouts(l),
            "lvs_flush" => self.config.global.lvs_flush = true,
            "lvs_flush_on_stop" | "lvs_flush_onstop" => self.config.global.lvs_flush_on_stop = true,
            "lvs_sync_daemon" => self.lvs_sync_daemon(l),
            "vrrp_mcast_group4" => {
                if let Some(a) = self.read_ip(l, 1) {
                    self.config.global.vrrp_mcast_group4 = a;
                }
            }
            "vrrp_mcast_group6" => {
                if let Some(a) = self.read_ip(l, 1) {
                    self.config.global.vrrp_mcast_group6 = a;
                }
            }
            "vrrp_garp_master_delay" => {
                if let Some(v) = self.read_u32(l, 1, 0, 86400) {
                    self.config.global.vrrp_garp_master_delay = v;
                }
            }
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
            "vrrp_priority" => self.config.global.vrrp_priority = self.read_i32(l, 1, -20, 19),
            "checker_priority" => {
                self.config.global.checker_priority = self.read_i32(l, 1, -20, 19)
            }
            "vrrp_no_swap" => self.config.global.vrrp_no_swap = true,
            "checker_no_swap" => self.config.global.checker_no_swap = true,
            "enable_snmp_vrrp" => self.config.global.enable_snmp_vrrp = true,
            "enable_snmp_checker" => self.config.global.enable_snmp_checker = true,
            "enable_snmp_rfc" => self.config.global.enable_snmp_rfc = true,
            "enable_dbus" => self.config.global.enable_dbus = true,
            "vrrp_startup_delay" => {
                self.config.global.vrrp_startup_delay = self.read_timer(l, 1, 0.0, timer_max)
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

    fn lvs_timeouts(&mut self, l: &'a Line) {
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
        let Some(interface) = self.read_string(l, 1) else {
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
