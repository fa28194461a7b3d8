//! Dumps of a parsed configuration: readable text and JSON.

use crate::model::{
    Checker, CheckerKind, KeepalivedConfig, RealServer, VirtualServer, VirtualServerAddress,
    VrrpInstance, VsgEntry,
};
use std::fmt::Write;

/// Pretty JSON of the whole model.
pub fn to_json(config: &KeepalivedConfig) -> String {
    serde_json::to_string_pretty(config).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// A readable summary, one item per line, indented by nesting.
pub fn to_text(c: &KeepalivedConfig) -> String {
    let mut o = String::new();
    let g = &c.global;
    let _ = writeln!(o, "------< Global definitions >------");
    if let Some(r) = &g.router_id {
        let _ = writeln!(o, " Router ID = {r}");
    }
    if let Some(s) = &g.smtp_server {
        let _ = writeln!(o, " Smtp server = {}:{}", s.host, s.port);
    }
    for e in &g.notification_email {
        let _ = writeln!(o, " Email notification = {e}");
    }
    let _ = writeln!(o, " VRRP version = {}", g.vrrp_version);
    let _ = writeln!(o, " VRRP strict mode = {}", g.vrrp_strict);
    let _ = writeln!(o, " Script security = {}", g.enable_script_security);
    for x in &g.extra {
        let _ = writeln!(o, " {} {}", x.keyword, x.args.join(" "));
    }
    for s in &c.vrrp_scripts {
        let cmd = s.script.as_ref().map(|s| s.command.as_str()).unwrap_or("");
        let _ = writeln!(
            o,
            "VRRP script {}: '{}' interval {}s weight {} rise {} fall {}",
            s.name, cmd, s.interval, s.weight, s.rise, s.fall
        );
    }
    for sg in &c.sync_groups {
        let _ = writeln!(o, "VRRP sync group {}: {}", sg.name, sg.group.join(" "));
    }
    for v in &c.vrrp_instances {
        dump_instance(&mut o, v);
    }
    for a in &c.static_ipaddresses {
        let _ = writeln!(
            o,
            "Static address {} dev {}",
            a.address,
            a.dev.as_deref().unwrap_or("-")
        );
    }
    for r in &c.static_routes {
        let dest = r.destination.map(|d| d.to_string()).unwrap_or_default();
        let _ = writeln!(o, "Static route {} {}", dest, r.options.join(" "));
    }
    for r in &c.static_rules {
        let _ = writeln!(o, "Static rule {}", r.options.join(" "));
    }
    for g in &c.local_address_groups {
        let _ = writeln!(
            o,
            "Local address group {} ({} entries)",
            g.name,
            g.entries.len()
        );
        for e in &g.entries {
            let _ = writeln!(
                o,
                "   {} - {} {}",
                e.first,
                e.last,
                e.interface.as_deref().unwrap_or("")
            );
        }
    }
    for g in &c.virtual_server_groups {
        let _ = writeln!(o, "Virtual server group {}", g.name);
        for e in &g.entries {
            match e {
                VsgEntry::Range {
                    first, last, port, ..
                } => {
                    let _ = writeln!(o, "   {first}-{last} port {port}");
                }
                VsgEntry::Fwmark { mark, .. } => {
                    let _ = writeln!(o, "   fwmark {mark}");
                }
            }
        }
    }
    for vs in &c.virtual_servers {
        dump_vs(&mut o, vs);
    }
    if let Some(rb) = &c.route_bridge {
        let daemon = rb.daemon.map_or("?", |d| d.name());
        let _ = writeln!(
            o,
            "Route bridge (xlvs): daemon {daemon}, {:?} instance",
            rb.instance
        );
        for n in &rb.neighbors {
            let _ = writeln!(
                o,
                "   neighbor {} AS {}",
                n.address,
                n.remote_as.unwrap_or(0)
            );
        }
        if let Some(ospf) = &rb.ospf {
            let _ = writeln!(o, "   ospf area {}", ospf.area);
        }
    }
    o
}

fn dump_instance(o: &mut String, v: &VrrpInstance) {
    let _ = writeln!(o, "VRRP instance {}", v.name);
    let _ = writeln!(o, "   State = {:?}", v.state);
    let _ = writeln!(
        o,
        "   Interface = {}",
        v.interface.as_deref().unwrap_or("-")
    );
    let vrid = v
        .virtual_router_id
        .map(|x| x.to_string())
        .unwrap_or("-".into());
    let _ = writeln!(o, "   Virtual router id = {vrid}");
    let _ = writeln!(o, "   Priority = {}", v.priority);
    let _ = writeln!(
        o,
        "   Advert interval = {}s, version {}",
        v.advert_int, v.version
    );
    let _ = writeln!(o, "   Preempt = {}", v.preempt);
    if let Some(a) = &v.authentication {
        let _ = writeln!(o, "   Authentication = {:?}", a.auth_type);
    }
    if let Some(s) = &v.unicast_src_ip {
        let _ = writeln!(o, "   Unicast source = {s}");
    }
    for p in &v.unicast_peers {
        let _ = writeln!(o, "   Unicast peer = {}", p.address);
    }
    for a in &v.virtual_ipaddresses {
        let dev = a
            .dev
            .as_deref()
            .map(|d| format!(" dev {d}"))
            .unwrap_or_default();
        let _ = writeln!(o, "   VIP = {}{dev}", a.address);
    }
    for t in &v.track_interfaces {
        let _ = writeln!(o, "   Track interface = {} weight {:?}", t.name, t.weight);
    }
    for t in &v.track_scripts {
        let _ = writeln!(o, "   Track script = {} weight {:?}", t.name, t.weight);
    }
    for r in &v.virtual_routes {
        let dest = r.destination.map(|d| d.to_string()).unwrap_or_default();
        let _ = writeln!(o, "   Virtual route = {} {}", dest, r.options.join(" "));
    }
}

fn dump_vs(o: &mut String, vs: &VirtualServer) {
    let addr = match &vs.address {
        VirtualServerAddress::Ip { addr, port } => {
            if addr.is_ipv6() {
                format!("[{addr}]:{port}")
            } else {
                format!("{addr}:{port}")
            }
        }
        VirtualServerAddress::Fwmark { mark } => format!("FWM {mark}"),
        VirtualServerAddress::Group { name } => format!("group {name}"),
        VirtualServerAddress::Match { name } => format!("match {name}"),
    };
    let _ = writeln!(o, "Virtual server {addr} {:?}", vs.protocol);
    let _ = writeln!(
        o,
        "   delay_loop = {}, lb_algo = {}",
        vs.delay_loop, vs.scheduler
    );
    let _ = writeln!(o, "   lb_kind = {:?}", vs.lvs_method.method);
    if let Some(p) = &vs.persistence {
        let _ = writeln!(o, "   persistence timeout = {}", p.timeout);
        if let Some(g) = &p.granularity {
            let _ = writeln!(o, "   persistence granularity = {g}");
        }
    }
    let _ = writeln!(
        o,
        "   quorum = {}, hysteresis = {}",
        vs.quorum, vs.hysteresis
    );
    if let Some(g) = &vs.laddr_group_name {
        let _ = writeln!(o, "   laddr_group_name = {g}");
    }
    if vs.syn_proxy {
        let _ = writeln!(o, "   syn_proxy");
    }
    if let Some(s) = &vs.sorry_server {
        let _ = writeln!(o, "   sorry server = {}:{}", s.addr, s.port.unwrap_or(0));
    }
    for rs in &vs.real_servers {
        dump_rs(o, rs);
    }
}

fn dump_rs(o: &mut String, rs: &RealServer) {
    let addr = if rs.addr.is_ipv6() {
        format!("[{}]:{}", rs.addr, rs.effective_port)
    } else {
        format!("{}:{}", rs.addr, rs.effective_port)
    };
    let _ = writeln!(o, "   Real server {addr}");
    let _ = writeln!(o, "      weight = {}", rs.weight);
    for c in &rs.checkers {
        dump_checker(o, c);
    }
}

fn dump_checker(o: &mut String, c: &Checker) {
    let cm = &c.common;
    let _ = writeln!(
        o,
        "      {}: connect_timeout {}s, retry {}, delay_before_retry {}s, delay_loop {}s",
        c.kind.keyword(),
        cm.connect_timeout,
        cm.retry,
        cm.delay_before_retry,
        cm.delay_loop
    );
    if let Some(p) = cm.connect_port {
        let _ = writeln!(o, "         connect_port {p}");
    }
    match &c.kind {
        CheckerKind::HttpGet(h) | CheckerKind::SslGet(h) => {
            for u in &h.urls {
                let _ = writeln!(
                    o,
                    "         url {} digest {} status {:?}",
                    u.path.as_deref().unwrap_or("-"),
                    u.digest.as_deref().unwrap_or("-"),
                    u.status_codes
                        .iter()
                        .map(|r| format!("{}-{}", r.first, r.last))
                        .collect::<Vec<_>>()
                );
            }
        }
        CheckerKind::Misc(m) => {
            if let Some(p) = &m.path {
                let _ = writeln!(o, "         misc_path {}", p.command);
            }
        }
        _ => {}
    }
}
