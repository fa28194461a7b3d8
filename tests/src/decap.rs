//! A user-space tunnel endpoint for real servers on kernels built without ipip/sit/ip6tnl/gre/fou
//! (the tests prefer the kernel's devices when they exist). It reads the frames reaching `r0`
//! (AF_PACKET), takes those addressed to the real that carry IPIP (4), IPv6 (41), GRE (47) or
//! GUE (UDP to the GUE port), checks the outer GRE/UDP checksums when present (counting bad
//! ones, which are dropped), and writes the inner packet to a TUN device, where the kernel takes
//! it as received (and checks the inner IP/TCP checksums itself). Outer IPv4 fragments are
//! reassembled first. Stops when dropped.

use std::fs::OpenOptions;
use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::{Context, Result, bail};

use crate::netns::Netns;

pub struct Decap {
    stop: Arc<AtomicBool>,
    /// Inner packets handed to the kernel.
    pub delivered: Arc<AtomicU64>,
    /// Tunnel packets whose outer checksum was wrong (dropped).
    pub bad_checksums: Arc<AtomicU64>,
}

impl Drop for Decap {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TUN: i16 = 0x0001;
const IFF_NO_PI: i16 = 0x1000;

/// Starts the endpoint in `ns` on `ifname`, delivering through a new TUN device `tun` (up,
/// without addresses; the VIPs are expected on the loopback).
pub fn start(
    ns: &Netns,
    ifname: &str,
    tun: &str,
    local4: Ipv4Addr,
    local6: Ipv6Addr,
    gue_port: u16,
) -> Result<Decap> {
    let stop = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let (ifname, tun_name) = (ifname.to_string(), tun.to_string());
    let (s, d, b) = (stop.clone(), delivered.clone(), bad.clone());
    let ready = ns.run_in(move || -> Result<()> {
        let mut dev = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .context("open /dev/net/tun")?;
        let mut ifr = [0u8; 40];
        ifr[..tun_name.len()].copy_from_slice(tun_name.as_bytes());
        ifr[16..18].copy_from_slice(&(IFF_TUN | IFF_NO_PI).to_ne_bytes());
        // SAFETY: TUNSETIFF reads and writes a struct ifreq (40 bytes), which `ifr` is.
        if unsafe { libc::ioctl(dev.as_raw_fd(), TUNSETIFF, ifr.as_mut_ptr()) } < 0 {
            bail!("TUNSETIFF: {}", std::io::Error::last_os_error());
        }
        let sock = crate::rawsock::packet_socket(&ifname)?;
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            let mut frags = Reassembly::default();
            while !s.load(Ordering::Relaxed) {
                let Some(n) = crate::rawsock::recv_frame(&sock, &mut buf) else {
                    continue;
                };
                // Outer IPv4 fragments (a director's kernel fragmented the tunnel packet):
                // whole again before decapsulation, as a kernel endpoint would do.
                let whole;
                let frame = match frags.add(&buf[..n], local4) {
                    Fragment::Not => &buf[..n],
                    Fragment::Pending => continue,
                    Fragment::Whole(f) => {
                        whole = f;
                        &whole[..]
                    }
                };
                match inner(frame, local4, local6, gue_port) {
                    Some(Ok(pkt)) if dev.write_all(pkt).is_ok() => {
                        d.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(())) => {
                        b.fetch_add(1, Ordering::Relaxed);
                    }
                    None => {}
                }
            }
        });
        Ok(())
    });
    ready
        .join()
        .map_err(|_| anyhow::anyhow!("decap thread panicked"))???;
    ns.ip(&["link", "set", tun, "up"])?;
    Ok(Decap {
        stop,
        delivered,
        bad_checksums: bad,
    })
}

enum Fragment {
    Not,
    Pending,
    Whole(Vec<u8>),
}

/// A fragment's (offset, data, more fragments follow).
type Part = (usize, Vec<u8>, bool);

/// IPv4 reassembly of the fragments addressed to us, by (source, id).
#[derive(Default)]
struct Reassembly {
    parts: std::collections::HashMap<([u8; 4], u16), Vec<Part>>,
}

impl Reassembly {
    fn add(&mut self, frame: &[u8], local4: Ipv4Addr) -> Fragment {
        if frame.len() < 34 || frame[12..14] != [8, 0] || frame[30..34] != local4.octets() {
            return Fragment::Not;
        }
        let ip = &frame[14..];
        let frag = u16::from_be_bytes([ip[6], ip[7]]);
        let (more, offset) = (frag & 0x2000 != 0, (frag & 0x1fff) as usize * 8);
        if !more && offset == 0 {
            return Fragment::Not;
        }
        let ihl = ((ip[0] & 0xf) as usize) * 4;
        let tot = (u16::from_be_bytes([ip[2], ip[3]]) as usize).min(ip.len());
        let key = (
            [ip[12], ip[13], ip[14], ip[15]],
            u16::from_be_bytes([ip[4], ip[5]]),
        );
        let parts = self.parts.entry(key).or_default();
        parts.push((offset, ip[ihl..tot].to_vec(), more));
        parts.sort_by_key(|p| p.0);
        // Complete: contiguous from 0 to a last fragment.
        let mut next = 0;
        for (off, data, more) in parts.iter() {
            if *off != next {
                return Fragment::Pending;
            }
            next += data.len();
            if !more {
                let parts = self.parts.remove(&key).unwrap_or_default();
                let mut whole = frame[..14 + ihl].to_vec();
                for (_, data, _) in parts {
                    whole.extend_from_slice(&data);
                }
                let len = (whole.len() - 14) as u16;
                whole[16..18].copy_from_slice(&len.to_be_bytes());
                whole[20..22].copy_from_slice(&[0, 0]);
                whole[24..26].copy_from_slice(&[0, 0]);
                let mut sum = sum16(&whole[14..14 + ihl], 0);
                while sum > 0xffff {
                    sum = (sum & 0xffff) + (sum >> 16);
                }
                whole[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());
                return Fragment::Whole(whole);
            }
        }
        Fragment::Pending
    }
}

fn sum16(b: &[u8], mut sum: u32) -> u32 {
    for w in b.chunks(2) {
        sum += u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]) as u32;
    }
    sum
}

fn folds_to_ffff(mut sum: u32) -> bool {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

/// The inner packet of a tunnel frame for us: `None` if not one, `Err` if its outer checksum
/// is wrong.
fn inner(
    frame: &[u8],
    local4: Ipv4Addr,
    local6: Ipv6Addr,
    gue_port: u16,
) -> Option<Result<&[u8], ()>> {
    if frame.len() < 14 {
        return None;
    }
    let l3 = &frame[14..];
    let (proto, payload, pseudo) = match u16::from_be_bytes([frame[12], frame[13]]) {
        0x0800 if l3.len() >= 20 && l3[16..20] == local4.octets() => {
            let ihl = ((l3[0] & 0xf) as usize) * 4;
            let tot = u16::from_be_bytes([l3[2], l3[3]]) as usize;
            let payload = l3.get(ihl..tot)?;
            let mut p = l3[12..20].to_vec();
            p.extend_from_slice(&[0, l3[9]]);
            p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            (l3[9], payload, sum16(&p, 0))
        }
        0x86dd if l3.len() >= 40 && l3[24..40] == local6.octets() => {
            let plen = u16::from_be_bytes([l3[4], l3[5]]) as usize;
            let payload = l3.get(40..40 + plen)?;
            let mut p = l3[8..40].to_vec();
            p.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, l3[6]]);
            (l3[6], payload, sum16(&p, 0))
        }
        _ => return None,
    };
    match proto {
        4 | 41 => Some(Ok(payload)),
        47 => {
            let flags = *payload.first()?;
            if flags & 0x80 != 0 {
                if !folds_to_ffff(sum16(payload, 0)) {
                    return Some(Err(()));
                }
                Some(Ok(payload.get(8..)?))
            } else {
                Some(Ok(payload.get(4..)?))
            }
        }
        17 if payload.len() >= 12 && u16::from_be_bytes([payload[2], payload[3]]) == gue_port => {
            if payload[6..8] != [0, 0] && !folds_to_ffff(sum16(payload, pseudo)) {
                return Some(Err(()));
            }
            let hlen = 4 + ((payload[8] & 0x1f) as usize) * 4;
            Some(Ok(payload.get(8 + hlen..)?))
        }
        _ => None,
    }
}
