//! Packet capture in a test namespace: the frames an interface receives while something runs.

use anyhow::Result;

use crate::netns::Netns;

/// Frames received on `ifname` inside `ns` while `f` runs (AF_PACKET raw socket, all protocols).
pub fn capture<T>(ns: &Netns, ifname: &str, f: impl FnOnce() -> T) -> Result<(T, Vec<Vec<u8>>)> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let ifname = ifname.to_string();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = ns.run_in(move || -> Result<Vec<Vec<u8>>> {
        let sock = crate::rawsock::packet_socket(&ifname)?;
        let _ = ready_tx.send(());
        let mut frames = Vec::new();
        let mut buf = vec![0u8; 65536];
        while !stop2.load(Ordering::Relaxed) {
            if let Some(n) = crate::rawsock::recv_frame(&sock, &mut buf) {
                frames.push(buf[..n].to_vec());
            }
        }
        Ok(frames)
    });
    let _ = ready_rx.recv_timeout(std::time::Duration::from_secs(2));
    let out = f();
    std::thread::sleep(std::time::Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let frames = handle
        .join()
        .map_err(|_| anyhow::anyhow!("capture thread panicked"))???;
    Ok((out, frames))
}
