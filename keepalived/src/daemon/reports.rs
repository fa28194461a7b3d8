//! SIGUSR1/SIGUSR2 reports (keepalived's /tmp/keepalived.data and /tmp/keepalived.stats) and
//! the notify scripts the daemon itself runs.

use super::health::{HealthTable, Quorum, VsKey};
use dataplane::Dataplane;
use keepalived_conf::KeepalivedConfig;
use keepalived_conf::model::Script;
use log::{error, info};
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// SIGUSR1: the configuration and the running state.
    Data,
    /// SIGUSR2: traffic counters per virtual and real server.
    Stats,
}

fn path(kind: Kind) -> PathBuf {
    let dir = std::env::var_os("TMPDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    dir.join(match kind {
        Kind::Data => "keepalived.data",
        Kind::Stats => "keepalived.stats",
    })
}

pub fn write(
    kind: Kind,
    config: &KeepalivedConfig,
    health: &HealthTable,
    quorum: &Quorum,
    dp: Option<&mut Dataplane>,
) -> std::io::Result<PathBuf> {
    let text = match kind {
        Kind::Data => data(config, health, quorum),
        Kind::Stats => stats(dp)?,
    };
    let p = path(kind);
    std::fs::write(&p, text)?;
    Ok(p)
}

fn data(config: &KeepalivedConfig, health: &HealthTable, quorum: &Quorum) -> String {
    let mut out = keepalived_conf::dump::to_text(config);
    out.push_str("------< Running state >------\n");
    for vs in &config.virtual_servers {
        let key = VsKey::of(vs);
        let _ = writeln!(
            out,
            " VS {key}: quorum {}",
            if quorum.is_up(&key) { "up" } else { "down" }
        );
        for rs in &vs.real_servers {
            let s = health.real(&key, rs);
            let _ = writeln!(
                out,
                "   RS [{}]:{} {} weight {}",
                rs.addr,
                rs.effective_port,
                if s.alive { "alive" } else { "down" },
                s.weight
            );
        }
    }
    out
}

fn stats(dp: Option<&mut Dataplane>) -> std::io::Result<String> {
    let mut out = String::from("------< LVS statistics >------\n");
    let Some(dp) = dp else { return Ok(out) };
    let services = dp
        .services()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    for s in services {
        let st = &s.stats;
        let _ = writeln!(
            out,
            " VS {}: conns {} inpkts {} outpkts {} inbytes {} outbytes {}",
            s.config.addr, st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes
        );
        for d in &s.dests {
            let st = &d.stats;
            let _ = writeln!(
                out,
                "   RS {}: weight {} active {} inactive {} conns {} inpkts {} outpkts {}",
                d.config.socket_addr(),
                d.config.weight,
                d.active_conns,
                d.inact_conns,
                st.conns,
                st.inpkts,
                st.outpkts
            );
        }
    }
    Ok(out)
}

/// Starts a notify script without waiting for it (keepalived's notify_exec); it runs in its own
/// process group and is killed if it outlives the checkers' notify timeout.
pub fn spawn_script(script: &Script) {
    spawn_with_limit(script, Some(healthcheck::supervisor::NOTIFY_TIMEOUT));
}

/// Starts a script meant to keep running (a notify FIFO's reader).
pub fn spawn_script_unbounded(script: &Script) {
    spawn_with_limit(script, None);
}

fn spawn_with_limit(script: &Script, limit: Option<std::time::Duration>) {
    let script = script.clone();
    info!("Executing [{}]", script.command);
    tokio::spawn(async move {
        match healthcheck::run_script(&script, limit).await {
            Ok(healthcheck::ScriptExit::Exited(0)) => {}
            Ok(exit) => info!("Script [{}] {exit}", script.command),
            Err(e) => error!("Unable to run [{}]: {e}", script.command),
        }
    });
}
