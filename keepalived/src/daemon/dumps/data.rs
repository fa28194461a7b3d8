//! keepalived.data (VRRP), keepalived_check.data (virtual servers) and keepalived_parent.data:
//! keepalived 2.2.7's section headers and `key = value` lines, one leading space for an object,
//! three for its properties, five for list items. keepalived-exporter's text mode reads
//! ` VRRP Instance = NAME`, its `State`, `Wantstate`, `Interface`, `Virtual Router ID`,
//! `Gratuitous ARP delay`, the `Virtual IP (N):` items (`ADDR dev IFNAME …`), and
//! ` VRRP Script = NAME` with `Status`/`State`.

use super::view::{InstanceView, epoch_secs};
use crate::daemon::health::{HealthTable, Quorum, VsKey};
use keepalived_conf::KeepalivedConfig;
use keepalived_conf::model::IpAddressEntry;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::SystemTime;

/// The `Global definitions` section (the values this configuration sets or keepalived's
/// defaults for them).
fn global(out: &mut String, config: &KeepalivedConfig) {
    let g = &config.global;
    out.push_str("------< Global definitions >------\n");
    out.push_str(" Network namespace = (default)\n");
    let router_id = g.router_id.clone().unwrap_or_else(hostname);
    let _ = writeln!(out, " Router ID = {router_id}");
    let _ = writeln!(out, " LVS flush = {}", g.lvs_flush);
    let _ = writeln!(
        out,
        " LVS flush on stop = {}",
        if g.lvs_flush_on_stop {
            "enabled"
        } else {
            "disabled"
        }
    );
    out.push_str(" VRRP IPv4 mcast group = 224.0.0.18\n");
    out.push_str(" VRRP IPv6 mcast group = ff02::12\n");
    out.push_str(" umask = 0177\n");
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

fn timeval(t: SystemTime) -> String {
    let secs = epoch_secs(t);
    let local = chrono_like(t);
    format!("{secs:.6} ({local})")
}

/// `Sun Dec  6 21:31:46.851173 2026`, keepalived's ctime with microseconds (local time).
fn chrono_like(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as libc::time_t;
    // SAFETY: localtime_r writes into our zeroed struct; strftime reads it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals; localtime_r fills `tm`.
    unsafe { libc::localtime_r(&secs, &mut tm) };
    let mut buf = [0u8; 64];
    // SAFETY: strftime writes at most `buf.len()` bytes into `buf` from a NUL-terminated format
    // and the `tm` filled above.
    let n = unsafe {
        libc::strftime(
            buf.as_mut_ptr().cast(),
            buf.len(),
            c"%a %b %e %H:%M:%S".as_ptr(),
            &tm,
        )
    };
    let head = String::from_utf8_lossy(&buf[..n]);
    format!("{head}.{:06} {}", d.subsec_micros(), tm.tm_year + 1900)
}

/// A VIP line as keepalived prints it: `198.18.10.100 dev va scope global set`.
pub(super) fn vip_text(v: &IpAddressEntry, default_dev: &str, set: bool) -> String {
    let full = matches!(
        (v.address.addr, v.address.prefix_len),
        (std::net::IpAddr::V4(_), 32) | (std::net::IpAddr::V6(_), 128)
    );
    let addr = if full {
        v.address.addr.to_string()
    } else {
        v.address.to_string()
    };
    let dev = v.dev.as_deref().unwrap_or(default_dev);
    let scope = v.scope.as_deref().unwrap_or("global");
    let mut line = format!("{addr} dev {dev} scope {scope}");
    if set {
        line.push_str(" set");
    }
    line
}

/// keepalived.data: global definitions, the VRRP instances with their live state, the
/// tracked scripts.
pub fn vrrp_data(config: &KeepalivedConfig, views: &[InstanceView]) -> String {
    let mut out = String::new();
    global(&mut out, config);
    out.push_str("------< VRRP Topology >------\n");
    for v in views {
        let c = &v.cfg;
        let state = v.state.keyword();
        let _ = writeln!(out, " VRRP Instance = {}", c.name);
        let _ = writeln!(out, "   VRRP Version = {}", c.version);
        let _ = writeln!(out, "   State = {state}");
        out.push_str("   Flags: none\n");
        let _ = writeln!(out, "   Wantstate = {state}");
        if let Some(t) = v.last_transition {
            let _ = writeln!(out, "   Last transition = {}", timeval(t));
        }
        let _ = writeln!(out, "   Interface = {}", c.interface);
        if let Some(src) = c.unicast_src_ip.or(c.mcast_src_ip) {
            let _ = writeln!(out, "   Using src_ip = {src}");
        }
        let _ = writeln!(out, "   Gratuitous ARP delay = {}", c.garp.master_delay);
        let _ = writeln!(out, "   Gratuitous ARP repeat = {}", c.garp.master_repeat);
        let _ = writeln!(out, "   Gratuitous ARP refresh = {}", c.garp.master_refresh);
        let _ = writeln!(
            out,
            "   Gratuitous ARP refresh repeat = {}",
            c.garp.master_refresh_repeat
        );
        let _ = writeln!(out, "   Down timer adverts = {}", c.down_timer_adverts);
        let _ = writeln!(out, "   Virtual Router ID = {}", c.vrid);
        let _ = writeln!(out, "   Priority = {}", c.priority);
        let _ = writeln!(out, "   Effective priority = {}", v.effective_priority);
        let _ = writeln!(out, "   Total priority = {}", v.effective_priority);
        if c.version == 2 {
            let _ = writeln!(out, "   Advert interval = {} sec", c.adver_int);
        } else {
            let _ = writeln!(
                out,
                "   Advert interval = {} milli-sec",
                u32::from(c.adver_int) * 10
            );
        }
        let on = |b: bool| if b { "enabled" } else { "disabled" };
        let _ = writeln!(out, "   Accept = {}", on(c.accept));
        let _ = writeln!(out, "   Preempt = {}", on(c.preempt));
        let _ = writeln!(
            out,
            "   Authentication type = {}",
            match c.auth {
                vrrp::codec::Auth::Pass(_) => "SIMPLE_PASSWORD",
                vrrp::codec::Auth::Ah(_) => "IPSEC_AH",
                vrrp::codec::Auth::None => "none",
            }
        );
        let set = v.state == vrrp::state::State::Master;
        if !c.vips.is_empty() {
            let _ = writeln!(out, "   Virtual IP ({}):", c.vips.len());
            for vip in &c.vips {
                let _ = writeln!(out, "     {}", vip_text(vip, &c.interface, set));
            }
        }
        if !c.vips_excluded.is_empty() {
            let _ = writeln!(out, "   Virtual IP Excluded ({}):", c.vips_excluded.len());
            for vip in &c.vips_excluded {
                let _ = writeln!(out, "     {}", vip_text(vip, &c.interface, set));
            }
        }
        if !c.track_scripts.is_empty() {
            out.push_str("   Tracked scripts :\n");
            for t in &c.track_scripts {
                let _ = writeln!(out, "     {} weight {}", t.name, t.weight.unwrap_or(0));
            }
        }
    }
    scripts(&mut out, config, views);
    out
}

/// The `VRRP Scripts` section: each tracked script with its current status (good when any
/// instance tracking it sees it good: they all share one result).
fn scripts(out: &mut String, config: &KeepalivedConfig, views: &[InstanceView]) {
    if config.vrrp_scripts.is_empty() {
        return;
    }
    let mut status: BTreeMap<&str, bool> = BTreeMap::new();
    for v in views {
        for (name, ok) in &v.scripts {
            status.insert(name, *ok);
        }
    }
    out.push_str("------< VRRP Scripts >------\n");
    for s in &config.vrrp_scripts {
        let _ = writeln!(out, " VRRP Script = {}", s.name);
        if let Some(sc) = &s.script {
            let _ = writeln!(out, "   Command = '{}'", sc.command);
        }
        let _ = writeln!(out, "   Interval = {} sec", s.interval);
        let _ = writeln!(out, "   Weight = {}", s.weight);
        let _ = writeln!(out, "   Rise = {}", s.rise);
        let _ = writeln!(out, "   Fall = {}", s.fall);
        let good = status.get(s.name.as_str()).copied().unwrap_or(!s.init_fail);
        let _ = writeln!(out, "   Status = {}", if good { "GOOD" } else { "BAD" });
        out.push_str("   State = idle\n");
    }
}

/// keepalived_check.data: global definitions, then every virtual server with its reals'
/// live verdicts and weights.
pub fn check_data(config: &KeepalivedConfig, health: &HealthTable, quorum: &Quorum) -> String {
    let mut out = String::new();
    global(&mut out, config);
    out.push_str("------< LVS Topology >------\n");
    out.push_str(" System is compiled with LVS v1.2.1\n");
    for vs in &config.virtual_servers {
        let key = VsKey::of(vs);
        out.push_str(" ------< Virtual server >------\n");
        match &vs.address {
            keepalived_conf::model::VirtualServerAddress::Ip { addr, port } => {
                let _ = writeln!(out, " VS VIP = {addr}, VPORT = {port}");
            }
            other => {
                let _ = writeln!(out, " VS = {key} ({other:?})");
            }
        }
        let _ = writeln!(out, "   delay_loop = {:.6}", vs.delay_loop);
        let _ = writeln!(out, "   lvs_sched = {}", vs.scheduler);
        let _ = writeln!(out, "   protocol = {}", key.protocol);
        let _ = writeln!(
            out,
            "   quorum = {}, hysteresis = {}",
            vs.quorum, vs.hysteresis
        );
        let _ = writeln!(out, "   quorum_state_up = {}", u8::from(quorum.is_up(&key)));
        for rs in &vs.real_servers {
            let st = health.real(&key, rs);
            out.push_str("   ------< Real server >------\n");
            let _ = writeln!(
                out,
                "   RIP = {}, RPORT = {}, WEIGHT = {} EFF WEIGHT = {}",
                rs.addr, rs.effective_port, rs.weight, st.weight
            );
            let _ = writeln!(out, "   initial weight = {}", rs.weight);
            let _ = writeln!(out, "   effective weight = {}", st.weight);
            let _ = writeln!(out, "   alive = {}", u8::from(st.alive));
        }
    }
    out
}

/// keepalived_parent.data: the global definitions.
pub fn parent_data(config: &KeepalivedConfig) -> String {
    let mut out = String::new();
    global(&mut out, config);
    out
}
