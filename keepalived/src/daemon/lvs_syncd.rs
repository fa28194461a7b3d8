//! `lvs_sync_daemon`: the IPVS connection-sync daemon (crate `syncd`, the one `ipvsadm
//! --start-daemon` starts) run as keepalived runs it (ipvswrapper.c): without a VRRP instance
//! both the master and the backup daemon run as long as keepalived does; with one, the
//! backup daemon runs while the instance is not MASTER and the master daemon while it is.
//! Both stop with keepalived. Starting and stopping are blocking process work: they run on
//! the blocking pool, one after the other, never on the VRRP thread.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use keepalived_conf::KeepalivedConfig;
use keepalived_conf::model::LvsSyncDaemon;
use log::{info, warn};
use syncd::config::{Request, Role};
use tokio::sync::Mutex;

/// The daemon this keepalived controls.
pub struct SyncDaemon {
    cfg: LvsSyncDaemon,
    /// The VRRP instance it follows (None: both roles always).
    instance: Option<String>,
    syncid: u8,
    pin_dir: PathBuf,
    /// Serialises starts and stops (each waits for the previous).
    turn: Arc<Mutex<()>>,
}

impl SyncDaemon {
    /// The configured daemon, if any (`lvs_sync_daemon` in global_defs, or the deprecated
    /// `lvs_sync_daemon_interface` of an instance).
    pub fn from_config(config: &KeepalivedConfig) -> Option<SyncDaemon> {
        let mut cfg = config.global.lvs_sync_daemon.clone();
        if cfg.is_none()
            && let Some(v) = config
                .vrrp_instances
                .iter()
                .find(|v| v.lvs_sync_daemon_interface.is_some())
        {
            cfg = Some(LvsSyncDaemon {
                interface: v.lvs_sync_daemon_interface.clone().unwrap_or_default(),
                vrrp_instance: Some(v.name.clone()),
                sync_id: None,
                maxlen: None,
                port: None,
                ttl: None,
                group: None,
            });
        }
        let cfg = cfg?;
        let instance = cfg.vrrp_instance.clone().filter(|name| {
            let found = config.vrrp_instance(name).is_some();
            if !found {
                warn!("lvs_sync_daemon: vrrp instance {name} not found - running both daemons");
            }
            found
        });
        // keepalived's default sync id: the instance's VRID, else 0.
        let syncid = cfg.sync_id.map(|i| i as u8).unwrap_or_else(|| {
            instance
                .as_deref()
                .and_then(|n| config.vrrp_instance(n))
                .and_then(|v| v.virtual_router_id)
                .unwrap_or(0)
        });
        Some(SyncDaemon {
            cfg,
            instance,
            syncid,
            pin_dir: dataplane::Options::from_env().pin_dir,
            turn: Arc::new(Mutex::new(())),
        })
    }

    pub fn instance(&self) -> Option<&str> {
        self.instance.as_deref()
    }

    fn request(&self, role: Role) -> Request {
        Request {
            role,
            ifname: self.cfg.interface.clone(),
            syncid: self.syncid,
            maxlen: self.cfg.maxlen.unwrap_or(0) as u16,
            group: self.cfg.group,
            port: self.cfg.port.unwrap_or(0),
            ttl: self.cfg.ttl.unwrap_or(0),
        }
    }

    /// At start: both daemons, or the backup one for an instance (which starts in BACKUP).
    pub async fn start(&self) {
        if self.instance.is_some() {
            self.switch(None, Some(Role::Backup)).await;
        } else {
            self.switch(None, Some(Role::Master)).await;
            self.switch(None, Some(Role::Backup)).await;
        }
    }

    /// The instance became MASTER (`true`) or left MASTER (`false`).
    pub async fn follow(&self, master: bool) {
        if master {
            self.switch(Some(Role::Backup), Some(Role::Master)).await;
        } else {
            self.switch(Some(Role::Master), Some(Role::Backup)).await;
        }
    }

    /// At stop: whatever runs.
    pub async fn stop(&self) {
        self.switch(Some(Role::Master), None).await;
        self.switch(Some(Role::Backup), None).await;
    }

    /// Stops `stop` (if it runs), then starts `start`, as ipvs_syncd_master/backup do.
    async fn switch(&self, stop: Option<Role>, start: Option<Role>) {
        let _turn = self.turn.lock().await;
        let pin_dir = self.pin_dir.clone();
        let req = start.map(|r| self.request(r));
        let ifname = self.cfg.interface.clone();
        let res = tokio::task::spawn_blocking(move || {
            if let Some(r) = stop {
                match syncd::control::stop(&pin_dir, r) {
                    Ok(()) => info!("IPVS: stopped the {} sync daemon", r.name()),
                    Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                    Err(e) => warn!("IPVS: cannot stop the {} sync daemon: {e}", r.name()),
                }
            }
            if let Some(req) = req {
                let program = std::env::current_exe()?;
                match syncd::control::start(&pin_dir, &req, &program) {
                    Ok(()) => info!(
                        "IPVS: started the {} sync daemon on {ifname} (syncid {})",
                        req.role.name(),
                        req.syncid
                    ),
                    // Already running (e.g. started by the previous keepalived): keep it.
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                    Err(e) => warn!(
                        "IPVS: cannot start the {} sync daemon on {ifname}: {}",
                        req.role.name(),
                        syncd::control::message(&e, true)
                    ),
                }
            }
            Ok::<(), std::io::Error>(())
        })
        .await;
        if let Ok(Err(e)) = res {
            warn!("IPVS: sync daemon: {e}");
        }
    }
}

/// Whether two configurations ask for the same daemon (a reload keeps it running).
pub fn same(a: &KeepalivedConfig, b: &KeepalivedConfig) -> bool {
    let key = |c: &KeepalivedConfig| {
        SyncDaemon::from_config(c).map(|d| {
            (
                d.cfg.interface.clone(),
                d.instance.clone(),
                d.syncid,
                d.cfg.maxlen,
                d.cfg.port,
                d.cfg.ttl,
                d.cfg.group.map(|g: IpAddr| g.to_string()),
            )
        })
    };
    key(a) == key(b)
}
