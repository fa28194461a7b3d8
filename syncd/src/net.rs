//! The sockets, set up as the kernel's sync threads set theirs up (make_send_sock,
//! make_receive_sock): bound to the sync interface, multicast loop off and the configured TTL
//! for the master, SO_REUSEADDR and the group joined on that interface for the backup.
//! A unicast "group" (xlvs extension) is the address the master sends to and the backup
//! listens on.

use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};

use crate::config::{Settings, ifindex};

fn socket(s: &Settings) -> io::Result<(Socket, u32)> {
    let index = ifindex(&s.ifname);
    if index == 0 {
        return Err(io::Error::from_raw_os_error(libc::ENODEV));
    }
    let domain = if s.group.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let sock = Socket::new(domain, Type::DGRAM.cloexec(), Some(Protocol::UDP))?;
    if s.group.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.bind_device(Some(s.ifname.as_bytes()))?;
    Ok((sock, index))
}

fn group_addr(s: &Settings, index: u32) -> SocketAddr {
    match s.group {
        IpAddr::V6(g) => {
            // Link-local groups and addresses need the interface as scope.
            let scope = if g.segments()[0] & 0xffc0 == 0xfe80 || g.segments()[0] & 0xff0f == 0xff02
            {
                index
            } else {
                0
            };
            SocketAddr::V6(SocketAddrV6::new(g, s.port, 0, scope))
        }
        IpAddr::V4(g) => SocketAddr::new(IpAddr::V4(g), s.port),
    }
}

/// The master's socket, connected to the group (or unicast peer).
pub fn sender(s: &Settings) -> io::Result<Socket> {
    let (sock, index) = socket(s)?;
    match s.group {
        IpAddr::V4(_) => {
            sock.set_multicast_loop_v4(false)?;
            sock.set_multicast_ttl_v4(s.ttl as u32)?;
            sock.set_ttl_v4(s.ttl as u32)?;
            // IP_PMTUDISC_DONT: let the datagram be fragmented if the path MTU shrinks.
            let v: libc::c_int = libc::IP_PMTUDISC_DONT;
            setsockopt(&sock, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, v)?;
        }
        IpAddr::V6(_) => {
            sock.set_multicast_loop_v6(false)?;
            sock.set_multicast_hops_v6(s.ttl as u32)?;
            sock.set_unicast_hops_v6(s.ttl as u32)?;
            sock.set_multicast_if_v6(index)?;
        }
    }
    sock.connect(&SockAddr::from(group_addr(s, index)))?;
    Ok(sock)
}

/// The backup's socket, bound to the group's port (and address) and joined to the group.
pub fn receiver(s: &Settings) -> io::Result<Socket> {
    let (sock, index) = socket(s)?;
    sock.set_reuse_address(true)?;
    if !s.multicast() {
        // A unicast backup address may be configured after the daemon starts (e.g. by VRRP).
        match s.group {
            IpAddr::V4(_) => sock.set_freebind_v4(true)?,
            IpAddr::V6(_) => sock.set_freebind_v6(true)?,
        }
    }
    let addr = group_addr(s, index);
    sock.bind(&SockAddr::from(addr))?;
    if s.multicast() {
        match s.group {
            IpAddr::V4(g) => {
                sock.join_multicast_v4_n(&g, &InterfaceIndexOrAddress::Index(index))?
            }
            IpAddr::V6(g) => sock.join_multicast_v6(&g, index)?,
        }
    }
    sock.set_read_timeout(Some(std::time::Duration::from_millis(300)))?;
    Ok(sock)
}

fn setsockopt(sock: &Socket, level: i32, name: i32, v: libc::c_int) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `v` is a live c_int and the length given is its size.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            &v as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
