//! What we need to know about local interfaces: index, MAC, addresses, up/down.

use std::net::IpAddr;

use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;

/// An interface as the daemon needs to know it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface index.
    pub index: u32,
    /// MAC address.
    pub mac: [u8; 6],
    /// IFF_UP and IFF_RUNNING.
    pub up: bool,
    /// Addresses in the kernel's order (primary first).
    pub addrs: Vec<IpAddr>,
}

impl LinkInfo {
    /// First IPv4 address, or the IPv6 link-local one for `v6`.
    pub fn primary(&self, v6: bool) -> Option<IpAddr> {
        self.addrs.iter().copied().find(|a| match a {
            IpAddr::V4(_) => !v6,
            IpAddr::V6(a) => v6 && (a.segments()[0] & 0xffc0) == 0xfe80,
        })
    }
}

/// Up/down and MAC of every interface, from one address dump (what tracking polls); None
/// when the dump failed (then nothing is known, rather than everything being down).
pub fn states() -> Option<std::collections::HashMap<String, (bool, [u8; 6])>> {
    let mut out = std::collections::HashMap::new();
    let addrs = getifaddrs().ok()?;
    for ifa in addrs {
        let up = ifa
            .flags
            .contains(InterfaceFlags::IFF_UP | InterfaceFlags::IFF_RUNNING);
        let e = out
            .entry(ifa.interface_name.clone())
            .or_insert((up, [0u8; 6]));
        if let Some(m) = ifa
            .address
            .as_ref()
            .and_then(|a| a.as_link_addr())
            .and_then(|l| l.addr())
        {
            e.1 = m;
        }
    }
    Some(out)
}

/// Looks `name` up; None if it does not exist.
pub fn link(name: &str) -> Option<LinkInfo> {
    let index = nix::net::if_::if_nametoindex(name).ok()?;
    let mut info = LinkInfo {
        index,
        ..LinkInfo::default()
    };
    for ifa in getifaddrs().ok()? {
        if ifa.interface_name != name {
            continue;
        }
        info.up = ifa
            .flags
            .contains(InterfaceFlags::IFF_UP | InterfaceFlags::IFF_RUNNING);
        let Some(a) = ifa.address else { continue };
        if let Some(l) = a.as_link_addr() {
            if let Some(m) = l.addr() {
                info.mac = m;
            }
        } else if let Some(s) = a.as_sockaddr_in() {
            info.addrs.push(IpAddr::V4(s.ip()));
        } else if let Some(s) = a.as_sockaddr_in6() {
            info.addrs.push(IpAddr::V6(s.ip()));
        }
    }
    Some(info)
}

/// Every address on the host with its interface index (getifaddrs order).
pub fn addresses() -> Option<Vec<(IpAddr, u32)>> {
    let mut out = Vec::new();
    for ifa in getifaddrs().ok()? {
        let Some(a) = ifa.address else { continue };
        let ip = if let Some(s) = a.as_sockaddr_in() {
            IpAddr::V4(s.ip())
        } else if let Some(s) = a.as_sockaddr_in6() {
            IpAddr::V6(s.ip())
        } else {
            continue;
        };
        if let Ok(i) = nix::net::if_::if_nametoindex(ifa.interface_name.as_str()) {
            out.push((ip, i));
        }
    }
    Some(out)
}

/// Link events (RTNLGRP_LINK): every up/down/carrier change of any interface wakes the
/// returned channel, so tracking reacts at once instead of at the next poll.
pub fn watch() -> std::io::Result<tokio::sync::mpsc::Receiver<()>> {
    use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
    let mut sock = Socket::new(NETLINK_ROUTE)?;
    sock.bind(&SocketAddr::new(0, 0))?;
    sock.add_membership(libc::RTNLGRP_LINK)?;
    sock.set_non_blocking(true)?;
    // SAFETY: we own the socket and hand it to AsyncFd, which keeps it open while registered.
    let fd = unsafe { tokio::io::unix::AsyncFd::register(sock) }.map_err(std::io::Error::from)?;
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok(mut guard) = fd.readable().await else {
                return;
            };
            // Drain everything queued; one wake-up is enough for any number of events.
            loop {
                match fd.get_ref().recv(&mut &mut buf[..], 0) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    // ENOBUFS (events lost): still a reason to look again.
                    Err(_) => break,
                }
            }
            guard.clear_ready();
            if tx.try_send(()).is_err() && tx.is_closed() {
                return;
            }
        }
    });
    Ok(rx)
}

/// The driver's link state (ETHTOOL_GLINK), as keepalived's linkbeat polling reads it; None
/// when the interface or the driver does not say.
pub fn ethtool_link(ifname: &str) -> Option<bool> {
    #[repr(C)]
    struct EthtoolValue {
        cmd: u32,
        data: u32,
    }
    const ETHTOOL_GLINK: u32 = 0x0000_000a;
    if ifname.len() >= libc::IFNAMSIZ {
        return None;
    }
    let mut value = EthtoolValue {
        cmd: ETHTOOL_GLINK,
        data: 0,
    };
    // SAFETY: a zeroed ifreq is valid; the name fits (checked above) and ifr_data points to
    // `value`, alive for the ioctl; the socket is closed by OwnedFd.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return None;
        }
        let fd = <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd);
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (d, s) in ifr.ifr_name.iter_mut().zip(ifname.bytes()) {
            *d = s as libc::c_char;
        }
        ifr.ifr_ifru.ifru_data = (&mut value as *mut EthtoolValue).cast();
        let r = libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            libc::SIOCETHTOOL,
            &mut ifr,
        );
        (r == 0).then_some(value.data != 0)
    }
}
