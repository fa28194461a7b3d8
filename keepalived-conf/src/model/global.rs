//! `global_defs` and the `SSL` block.

use super::{RawOption, Script};
use crate::diag::Span;
use serde::Serialize;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LvsSyncDaemon {
    pub interface: String,
    pub vrrp_instance: Option<String>,
    pub sync_id: Option<u32>,
    pub maxlen: Option<u32>,
    pub port: Option<u16>,
    pub ttl: Option<u8>,
    pub group: Option<IpAddr>,
}

/// `lvs_timeouts [tcp S] [tcpfin S] [udp S]` (seconds).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LvsTimeouts {
    pub tcp: Option<u32>,
    pub tcpfin: Option<u32>,
    pub udp: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GlobalDefs {
    pub span: Option<Span>,
    pub router_id: Option<String>,
    pub notification_email: Vec<String>,
    pub notification_email_from: Option<String>,
    pub smtp_server: Option<SmtpServer>,
    pub smtp_helo_name: Option<String>,
    /// Seconds (default 30).
    pub smtp_connect_timeout: f64,
    pub smtp_alert: Option<bool>,
    pub smtp_alert_vrrp: Option<bool>,
    pub smtp_alert_checker: Option<bool>,
    pub enable_script_security: bool,
    /// Where `enable_script_security` is (the parent reads global_defs in order).
    #[serde(skip)]
    pub script_security_span: Option<Span>,
    pub script_user: Option<String>,
    /// `script_user` names a user (or group) the system does not have.
    #[serde(skip)]
    pub script_user_unknown: bool,
    pub script_group: Option<String>,
    pub startup_script: Option<Script>,
    pub shutdown_script: Option<Script>,
    pub notify_fifo: Option<String>,
    pub notify_fifo_script: Option<Script>,
    pub vrrp_notify_fifo: Option<String>,
    pub vrrp_notify_fifo_script: Option<Script>,
    pub lvs_notify_fifo: Option<String>,
    pub lvs_notify_fifo_script: Option<Script>,
    pub dynamic_interfaces: bool,
    pub default_interface: Option<String>,
    pub lvs_timeouts: LvsTimeouts,
    pub lvs_flush: bool,
    pub lvs_flush_on_stop: bool,
    pub lvs_sync_daemon: Option<LvsSyncDaemon>,
    /// Default 224.0.0.18.
    pub vrrp_mcast_group4: IpAddr,
    /// Default ff02::12.
    pub vrrp_mcast_group6: IpAddr,
    /// Seconds (default 5).
    pub vrrp_garp_master_delay: u32,
    /// Default 5.
    pub vrrp_garp_master_repeat: u32,
    /// Seconds, 0 = off.
    pub vrrp_garp_master_refresh: u32,
    /// Default 1.
    pub vrrp_garp_master_refresh_repeat: u32,
    pub vrrp_garp_lower_prio_delay: Option<u32>,
    pub vrrp_garp_lower_prio_repeat: Option<u32>,
    /// Seconds between gratuitous ARPs (0 = none).
    pub vrrp_garp_interval: f64,
    /// Seconds between unsolicited NAs (0 = none).
    pub vrrp_gna_interval: f64,
    pub vrrp_min_garp: bool,
    pub vrrp_lower_prio_no_advert: Option<bool>,
    pub vrrp_higher_prio_send_advert: Option<bool>,
    /// Default 2.
    pub vrrp_version: u8,
    pub vrrp_check_unicast_src: bool,
    pub vrrp_skip_check_adv_addr: bool,
    pub vrrp_strict: bool,
    pub vrrp_priority: Option<i32>,
    pub checker_priority: Option<i32>,
    pub vrrp_no_swap: bool,
    pub checker_no_swap: bool,
    pub enable_snmp_vrrp: bool,
    pub enable_snmp_checker: bool,
    pub enable_snmp_rfc: bool,
    pub enable_dbus: bool,
    pub vrrp_startup_delay: Option<f64>,
    pub max_auto_priority: Option<i32>,
    pub vmac_prefix: Option<String>,
    /// Every other known global keyword, kept verbatim.
    pub extra: Vec<RawOption>,
}

impl Default for GlobalDefs {
    fn default() -> Self {
        GlobalDefs {
            span: None,
            router_id: None,
            notification_email: Vec::new(),
            notification_email_from: None,
            smtp_server: None,
            smtp_helo_name: None,
            smtp_connect_timeout: 30.0,
            smtp_alert: None,
            smtp_alert_vrrp: None,
            smtp_alert_checker: None,
            enable_script_security: false,
            script_security_span: None,
            script_user: None,
            script_user_unknown: false,
            script_group: None,
            startup_script: None,
            shutdown_script: None,
            notify_fifo: None,
            notify_fifo_script: None,
            vrrp_notify_fifo: None,
            vrrp_notify_fifo_script: None,
            lvs_notify_fifo: None,
            lvs_notify_fifo_script: None,
            dynamic_interfaces: false,
            default_interface: None,
            lvs_timeouts: LvsTimeouts::default(),
            lvs_flush: false,
            lvs_flush_on_stop: false,
            lvs_sync_daemon: None,
            vrrp_mcast_group4: IpAddr::from([224, 0, 0, 18]),
            vrrp_mcast_group6: IpAddr::from([0xff02, 0, 0, 0, 0, 0, 0, 0x12]),
            vrrp_garp_master_delay: 5,
            vrrp_garp_master_repeat: 5,
            vrrp_garp_master_refresh: 0,
            vrrp_garp_master_refresh_repeat: 1,
            vrrp_garp_lower_prio_delay: None,
            vrrp_garp_lower_prio_repeat: None,
            vrrp_garp_interval: 0.0,
            vrrp_gna_interval: 0.0,
            vrrp_min_garp: false,
            vrrp_lower_prio_no_advert: None,
            vrrp_higher_prio_send_advert: None,
            vrrp_version: 2,
            vrrp_check_unicast_src: false,
            vrrp_skip_check_adv_addr: false,
            vrrp_strict: false,
            vrrp_priority: None,
            checker_priority: None,
            vrrp_no_swap: false,
            checker_no_swap: false,
            enable_snmp_vrrp: false,
            enable_snmp_checker: false,
            enable_snmp_rfc: false,
            enable_dbus: false,
            vrrp_startup_delay: None,
            max_auto_priority: None,
            vmac_prefix: None,
            extra: Vec::new(),
        }
    }
}

impl GlobalDefs {
    /// The words after the last occurrence of a keyword kept verbatim in `extra`.
    pub fn extra_args(&self, keyword: &str) -> Option<&[String]> {
        self.extra
            .iter()
            .rev()
            .find(|o| o.keyword == keyword)
            .map(|o| o.args.as_slice())
    }

    /// A flag kept in `extra`: present without a value, or with a true one (keepalived's
    /// `check_true_false`).
    pub fn extra_flag(&self, keyword: &str) -> bool {
        match self.extra_args(keyword) {
            None => false,
            Some([]) => true,
            Some([v, ..]) => matches!(v.to_ascii_lowercase().as_str(), "true" | "on" | "yes"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SslConfig {
    pub span: Option<Span>,
    pub password: Option<String>,
    pub ca: Option<String>,
    pub certificate: Option<String>,
    pub key: Option<String>,
}
