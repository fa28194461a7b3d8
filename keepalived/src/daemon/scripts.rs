//! The notify scripts the daemon itself runs (quorum_up/quorum_down, FIFO readers).

use keepalived_conf::model::Script;
use log::{error, info};

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
