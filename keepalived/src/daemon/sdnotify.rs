//! systemd's readiness protocol: Debian's keepalived.service is `Type=notify` with
//! `--dont-fork`, so the daemon must say READY=1 (else systemd kills it after its start timeout),
//! and RELOADING=1 / STOPPING=1 around reloads and stops.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends `state` to `$NOTIFY_SOCKET` when systemd gave one; silently nothing otherwise.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let path = path.to_string_lossy().into_owned();
    let addr = match path.strip_prefix('@') {
        Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name.as_bytes()),
        None => SocketAddr::from_pathname(&path),
    };
    let sent = addr.and_then(|a| {
        let sock = UnixDatagram::unbound()?;
        sock.send_to_addr(state.as_bytes(), &a)
    });
    if let Err(e) = sent {
        log::warn!("sd_notify {state:?} to {path}: {e}");
    }
}
