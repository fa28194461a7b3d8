//! keepalived's BFD child as the `bfd` crate's thread: started when the configuration has
//! `bfd_instance`s (not with `-B`), its session states handed to VRRP (`track_bfd`) and the
//! checkers (`BFD_CHECK`) directly, reloaded with the rest, stopped last (its sessions send
//! AdminDown).

use std::sync::Arc;

use keepalived_conf::model::KeepalivedConfig;
use log::{error, warn};

pub struct BfdThread {
    handle: bfd::Handle,
}

impl BfdThread {
    /// Starts BFD when `cfg` has instances and `-B` was not given.
    pub fn start(cfg: &Arc<KeepalivedConfig>, no_bfd: bool) -> Option<BfdThread> {
        if no_bfd || cfg.bfd_instances.is_empty() {
            return None;
        }
        match bfd::spawn(cfg.clone()) {
            Ok(handle) => Some(BfdThread { handle }),
            Err(e) => {
                error!("BFD: cannot start its thread: {e}");
                None
            }
        }
    }

    pub fn states(&self) -> tokio::sync::watch::Receiver<bfd::States> {
        self.handle.states.clone()
    }

    pub async fn reload(&self, cfg: &Arc<KeepalivedConfig>) {
        let _ = self
            .handle
            .control
            .send(bfd::Control::Reload(cfg.clone()))
            .await;
    }

    pub async fn stop(self) {
        let _ = self.handle.control.send(bfd::Control::Shutdown).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while !self.handle.thread.is_finished() && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        if !self.handle.thread.is_finished() {
            warn!("BFD did not stop within 2 s");
        }
    }
}
