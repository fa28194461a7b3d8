//! Packet capture in a test namespace: the frames an interface receives while something runs.

use anyhow::Result;

use crate::netns::Netns;

/// Frames received on `ifname` inside `ns` while `f` runs (AF_PACKET raw socket, all protocols).
pub fn capture<T>(ns: &Netns, ifname: &str, f: impl FnOnce() -> T) -> Result<(T, Vec<Vec<u8>>)> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let ifname = std::ffi::CString::new(ifname)?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = ns.run_in(move || -> Result<Vec<Vec<u8>>> {
        let proto = (libc::ETH_P_ALL as u16).to_be() as i32;
        // SAFETY: socket takes no pointers; the descriptor is closed below.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto) };
        anyhow::ensure!(
            fd >= 0,
            "AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        );
        let ifindex = dataplane::loader::ifindex(ifname.to_str()?).unwrap_or(0);
        // SAFETY: sockaddr_ll is plain integers and bytes: all zeroes is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto as u16;
        sll.sll_ifindex = ifindex as i32;
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 50_000,
        };
        // SAFETY: `sll` and `tv` are live locals and the lengths given are their sizes.
        unsafe {
            libc::bind(
                fd,
                &sll as *const _ as *const libc::sockaddr,
                std::mem::size_of_val(&sll) as u32,
            );
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                std::mem::size_of_val(&tv) as u32,
            );
        }
        let _ = ready_tx.send(());
        let mut frames = Vec::new();
        let mut buf = vec![0u8; 65536];
        while !stop2.load(Ordering::Relaxed) {
            // SAFETY: recv writes at most `buf.len()` bytes into `buf`.
            let n = unsafe { libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
            if n > 0 {
                frames.push(buf[..n as usize].to_vec());
            }
        }
        // SAFETY: `fd` is our socket from above, closed once.
        unsafe { libc::close(fd) };
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
