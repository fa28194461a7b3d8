//! `global_defs` and the `SSL` block.

use super::{RawOption, Script};
use crate::diag::Span;
use serde::Serialize;
use std::net::IpAddr;

/// `smtp_server HOST [PORT]`: where alert mail goes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SmtpServer {
    /// Host name or address.
    pub host: String,
    /// Port (default 25).
    pub port: u16,
}

/// `lvs_sync_daemon IF [VRRP_INSTANCE] [id N] [maxlen N] [port N] [ttl N] [group IP]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LvsSyncDaemon {
    /// Interface the sync messages use.
    pub interface: String,
    /// The instance whose state decides master or backup sync.
    pub vrrp_instance: Option<String>,
    /// Sync id shared by the pair.
    pub sync_id: Option<u32>,
    /// Largest sync message.
    pub maxlen: Option<u32>,
    /// UDP port of the sync messages.
    pub port: Option<u16>,
    /// TTL of the sync messages.
    pub ttl: Option<u8>,
    /// Multicast group of the sync messages.
    pub group: Option<IpAddr>,
}

/// `lvs_timeouts [tcp S] [tcpfin S] [udp S]` (seconds).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LvsTimeouts {
    /// ESTABLISHED TCP timeout.
    pub tcp: Option<u32>,
    /// TCP timeout after a FIN.
    pub tcpfin: Option<u32>,
    /// UDP timeout.
    pub udp: Option<u32>,
}

/// The `global_defs` block, with keepalived's defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GlobalDefs {
    /// Where the block starts, when there is one.
    pub span: Option<Span>,
    /// `router_id`: names this node in alert mail.
    pub router_id: Option<String>,
    /// `notification_email`: who alert mail goes to.
    pub notification_email: Vec<String>,
    /// `notification_email_from`: the sender of alert mail.
    pub notification_email_from: Option<String>,
    /// Where alert mail is sent.
    pub smtp_server: Option<SmtpServer>,
    /// `smtp_helo_name` (default: the host name).
    pub smtp_helo_name: Option<String>,
    /// Seconds (default 30).
    pub smtp_connect_timeout: f64,
    /// `smtp_alert`: mail on every state change (default off).
    pub smtp_alert: Option<bool>,
    /// `smtp_alert_vrrp`: mail on VRRP state changes.
    pub smtp_alert_vrrp: Option<bool>,
    /// `smtp_alert_checker`: mail on checker state changes.
    pub smtp_alert_checker: Option<bool>,
    /// `enable_script_security`: refuse scripts others could replace.
    pub enable_script_security: bool,
    /// `script_user`: user scripts run as by default.
    pub script_user: Option<String>,
    /// Group scripts run as by default (`script_user U G`).
    pub script_group: Option<String>,
    /// `startup_script`: runs before the daemon starts its work.
    pub startup_script: Option<Script>,
    /// `shutdown_script`: runs when the daemon stops.
    pub shutdown_script: Option<Script>,
    /// `notify_fifo`: FIFO that receives every state change.
    pub notify_fifo: Option<String>,
    /// `notify_fifo_script`: reads `notify_fifo`.
    pub notify_fifo_script: Option<Script>,
    /// `vrrp_notify_fifo`: FIFO for VRRP state changes.
    pub vrrp_notify_fifo: Option<String>,
    /// `vrrp_notify_fifo_script`: reads `vrrp_notify_fifo`.
    pub vrrp_notify_fifo_script: Option<Script>,
    /// `lvs_notify_fifo`: FIFO for checker state changes.
    pub lvs_notify_fifo: Option<String>,
    /// `lvs_notify_fifo_script`: reads `lvs_notify_fifo`.
    pub lvs_notify_fifo_script: Option<Script>,
    /// `dynamic_interfaces`: interfaces may appear after start.
    pub dynamic_interfaces: bool,
    /// `default_interface` of static addresses without `dev`.
    pub default_interface: Option<String>,
    /// `lvs_timeouts` given.
    pub lvs_timeouts: LvsTimeouts,
    /// `lvs_flush`: clear the IPVS tables at start.
    pub lvs_flush: bool,
    /// `lvs_flush_onstop`: clear the IPVS tables at stop.
    pub lvs_flush_on_stop: bool,
    /// `lvs_sync_daemon`, when set.
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
    /// `vrrp_garp_lower_prio_delay` default of instances.
    pub vrrp_garp_lower_prio_delay: Option<u32>,
    /// `vrrp_garp_lower_prio_repeat` default of instances.
    pub vrrp_garp_lower_prio_repeat: Option<u32>,
    /// Seconds between gratuitous ARPs (0 = none).
    pub vrrp_garp_interval: f64,
    /// Seconds between unsolicited NAs (0 = none).
    pub vrrp_gna_interval: f64,
    /// `vrrp_min_garp`: one gratuitous ARP per transition, no refresh.
    pub vrrp_min_garp: bool,
    /// `vrrp_lower_prio_no_advert` default of instances.
    pub vrrp_lower_prio_no_advert: Option<bool>,
    /// `vrrp_higher_prio_send_advert` default of instances.
    pub vrrp_higher_prio_send_advert: Option<bool>,
    /// Default 2.
    pub vrrp_version: u8,
    /// `vrrp_check_unicast_src` default of instances.
    pub vrrp_check_unicast_src: bool,
    /// `vrrp_skip_check_adv_addr` default of instances.
    pub vrrp_skip_check_adv_addr: bool,
    /// `vrrp_strict`: RFC conformance (no unicast, no auth, VIPs not accepted locally).
    pub vrrp_strict: bool,
    /// `vrrp_priority`: scheduling priority (nice) of the VRRP process.
    pub vrrp_priority: Option<i32>,
    /// `checker_priority`: scheduling priority (nice) of the checker process.
    pub checker_priority: Option<i32>,
    /// `vrrp_no_swap`: lock the VRRP process in memory.
    pub vrrp_no_swap: bool,
    /// `checker_no_swap`: lock the checker process in memory.
    pub checker_no_swap: bool,
    /// `enable_snmp_vrrp`.
    pub enable_snmp_vrrp: bool,
    /// `enable_snmp_checker`.
    pub enable_snmp_checker: bool,
    /// `enable_snmp_rfc`.
    pub enable_snmp_rfc: bool,
    /// `enable_dbus`.
    pub enable_dbus: bool,
    /// `vrrp_startup_delay`: seconds before VRRP starts after boot.
    pub vrrp_startup_delay: Option<f64>,
    /// `max_auto_priority`: the real-time priority ceiling.
    pub max_auto_priority: Option<i32>,
    /// `vmac_prefix` of generated VMAC interface names.
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
            script_user: None,
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

/// The `SSL` block: client certificate of SSL_GET checks.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SslConfig {
    /// Where the block starts, when there is one.
    pub span: Option<Span>,
    /// Password of the key.
    pub password: Option<String>,
    /// CA file the server's certificate is checked against.
    pub ca: Option<String>,
    /// Client certificate file.
    pub certificate: Option<String>,
    /// Client key file.
    pub key: Option<String>,
}
