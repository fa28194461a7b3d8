//! keepalived's notify FIFOs on the LVS side: `VS <vs> UP|DOWN` on quorum changes and
//! `RS <rs> <vs> UP|DOWN` on real-server changes, written to `notify_fifo` and
//! `lvs_notify_fifo` (the VRRP engine writes its own lines to `notify_fifo` and
//! `vrrp_notify_fifo`). A FIFO's `*_fifo_script` is started once with the FIFO's path.

use super::health::{RealKey, VsKey};
use keepalived_conf::KeepalivedConfig;
use keepalived_conf::model::Script;
use log::warn;
use std::path::Path;
use vrrp::notify::Fifo;

pub struct LvsFifos(Vec<Fifo>);

impl LvsFifos {
    pub fn open(config: &KeepalivedConfig) -> LvsFifos {
        let g = &config.global;
        let mut fifos = Vec::new();
        for p in [&g.notify_fifo, &g.lvs_notify_fifo].into_iter().flatten() {
            match Fifo::open(Path::new(p)) {
                Ok(f) => fifos.push(f),
                Err(e) => warn!("cannot open notify fifo {p}: {e}"),
            }
        }
        LvsFifos(fifos)
    }

    pub fn vs(&mut self, vs: &VsKey, up: bool) {
        self.write(&vs_line(vs, up));
    }

    pub fn rs(&mut self, vs: &VsKey, rs: &RealKey, up: bool) {
        self.write(&rs_line(vs, rs, up));
    }

    fn write(&mut self, line: &str) {
        for f in &mut self.0 {
            f.write_raw(line);
        }
    }
}

fn state(up: bool) -> &'static str {
    if up { "UP" } else { "DOWN" }
}

/// keepalived's `VS %s %s` with FMT_VS.
pub fn vs_line(vs: &VsKey, up: bool) -> String {
    format!("VS {vs} {}\n", state(up))
}

/// keepalived's `RS %s %s %s` with FMT_RS (`[ip]:proto:port`) and FMT_VS.
pub fn rs_line(vs: &VsKey, rs: &RealKey, up: bool) -> String {
    let proto = vs.protocol.to_ascii_lowercase();
    format!("RS [{}]:{proto}:{} {vs} {}\n", rs.addr, rs.port, state(up))
}

/// Starts each configured `*_fifo_script` once with its FIFO's path (creating the FIFO first so
/// the script can open it), as keepalived does at start.
pub fn start_fifo_scripts(config: &KeepalivedConfig) {
    let g = &config.global;
    for (fifo, script) in [
        (&g.notify_fifo, &g.notify_fifo_script),
        (&g.vrrp_notify_fifo, &g.vrrp_notify_fifo_script),
        (&g.lvs_notify_fifo, &g.lvs_notify_fifo_script),
    ] {
        let (Some(path), Some(script)) = (fifo, script) else {
            continue;
        };
        if let Err(e) = Fifo::open(Path::new(path)) {
            warn!("cannot create notify fifo {path}: {e}");
            continue;
        }
        let mut s: Script = script.clone();
        s.argv.push(path.clone());
        s.command = format!("{} {path}", s.command);
        super::scripts::spawn_script_unbounded(&s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keepalived_conf::{ParseOptions, parse_str};

    #[test]
    fn lines_as_keepalived_writes_them() {
        let c = parse_str(
            "virtual_server 198.18.0.10 80 {\n protocol TCP\n lb_algo rr\n lb_kind NAT\n real_server 198.18.1.1 8080 {\n weight 1\n }\n}\n",
            "t.conf",
            &ParseOptions::default(),
        )
        .config;
        let vs = &c.virtual_servers[0];
        let key = VsKey::of(vs);
        assert_eq!(vs_line(&key, true), "VS [198.18.0.10]:tcp:80 UP\n");
        assert_eq!(
            rs_line(&key, &RealKey::of(&vs.real_servers[0]), false),
            "RS [198.18.1.1]:tcp:8080 [198.18.0.10]:tcp:80 DOWN\n"
        );
    }
}
