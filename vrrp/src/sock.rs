//! Raw IP protocol 112 sockets (thin wrappers over libc, driven by tokio's `AsyncFd`).
//!
//! Like keepalived, each instance has a receive socket (bound to the interface, member of the
//! VRRP group in multicast mode, never bound to an address: a raw socket bound to an address
//! only sees packets sent *to* that address) and a send socket bound to the source address.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;

use crate::codec::{IPPROTO_VRRP, IpInfo, MCAST_GROUP4, MCAST_GROUP6};

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: `val` is a valid T for the duration of the call and its size is passed.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

fn raw_socket(v6: bool, proto: libc::c_int) -> io::Result<OwnedFd> {
    let domain = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    // SAFETY: plain socket(2); the fd is owned from here on.
    let fd = cvt(unsafe {
        libc::socket(
            domain,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            proto,
        )
    })?;
    // SAFETY: fd was just returned by socket(2).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn bind_device(fd: &OwnedFd, ifname: &str) -> io::Result<()> {
    // SAFETY: the name pointer and length describe a valid byte slice.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            ifname.as_ptr().cast(),
            ifname.len() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

pub(crate) fn sockaddr(addr: IpAddr, scope_id: u32) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid.
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    match addr {
        IpAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large enough and aligned for sockaddr_in.
            let sin = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.octets());
            (ss, size_of::<libc::sockaddr_in>() as libc::socklen_t)
        }
        IpAddr::V6(a) => {
            // SAFETY: sockaddr_storage is large enough and aligned for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_addr.s6_addr = a.octets();
            sin6.sin6_scope_id = scope_id;
            (ss, size_of::<libc::sockaddr_in6>() as libc::socklen_t)
        }
    }
}

/// Receive side of one instance.
pub struct RxSocket {
    fd: AsyncFd<OwnedFd>,
    v6: bool,
}

impl RxSocket {
    /// `group`: the multicast group to join on `ifindex` (none in unicast mode). `proto`: 112,
    /// or 51 for `auth_type AH` (keepalived's AH instances see only AH packets).
    pub fn open(
        v6: bool,
        ifname: &str,
        ifindex: u32,
        group: Option<IpAddr>,
        proto: u8,
    ) -> io::Result<RxSocket> {
        let fd = raw_socket(v6, i32::from(proto))?;
        bind_device(&fd, ifname)?;
        let one: libc::c_int = 1;
        if v6 {
            setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, &one)?;
            setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, &one)?;
            if let Some(IpAddr::V6(g)) = group {
                let mreq = libc::ipv6_mreq {
                    ipv6mr_multiaddr: libc::in6_addr {
                        s6_addr: g.octets(),
                    },
                    ipv6mr_interface: ifindex,
                };
                setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_ADD_MEMBERSHIP, &mreq)?;
            }
        } else if let Some(IpAddr::V4(g)) = group {
            let mreq = libc::ip_mreqn {
                imr_multiaddr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(g.octets()),
                },
                imr_address: libc::in_addr { s_addr: 0 },
                imr_ifindex: ifindex as libc::c_int,
            };
            setsockopt(&fd, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &mreq)?;
        }
        // SAFETY: we own `fd` and hand it to AsyncFd, which keeps it open while registered.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
        Ok(RxSocket { fd, v6 })
    }

    /// Next packet: the VRRP message (IPv6) or the whole IPv4 packet, and for IPv6 the
    /// addresses and hop limit from the socket (for IPv4 they are in the header).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, Option<IpInfo>)> {
        loop {
            let mut guard = self.fd.readable().await?;
            let r = if self.v6 {
                recv_v6(self.fd.get_ref(), buf)
            } else {
                // SAFETY: buf is valid for buf.len() bytes.
                cvt(unsafe {
                    libc::recv(
                        self.fd.get_ref().as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        libc::MSG_TRUNC,
                    ) as libc::c_int
                })
                .map(|n| (n as usize, None))
            };
            match r {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    guard.clear_ready();
                    continue;
                }
                r => return r,
            }
        }
    }
}

fn recv_v6(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<(usize, Option<IpInfo>)> {
    // SAFETY: zeroed sockaddr_in6 / msghdr are valid; every pointer stored in the msghdr points
    // to a live local buffer of the stated size for the duration of recvmsg.
    unsafe {
        let mut from: libc::sockaddr_in6 = zeroed();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut cbuf = [0u64; 32];
        let mut msg: libc::msghdr = zeroed();
        msg.msg_name = (&mut from as *mut libc::sockaddr_in6).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 32]>();
        let n = libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_TRUNC);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut ttl = 0u8;
        let mut dst = Ipv6Addr::UNSPECIFIED;
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            if (*c).cmsg_level == libc::IPPROTO_IPV6 {
                if (*c).cmsg_type == libc::IPV6_HOPLIMIT {
                    ttl = std::ptr::read_unaligned(data as *const libc::c_int) as u8;
                } else if (*c).cmsg_type == libc::IPV6_PKTINFO {
                    let pi = std::ptr::read_unaligned(data as *const libc::in6_pktinfo);
                    dst = Ipv6Addr::from(pi.ipi6_addr.s6_addr);
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        Ok((
            n as usize,
            Some(IpInfo {
                src: IpAddr::V6(Ipv6Addr::from(from.sin6_addr.s6_addr)),
                dst: IpAddr::V6(dst),
                ttl,
            }),
        ))
    }
}

/// Send side of one instance: bound to the source address, TTL/hop limit 255 (or
/// `unicast_ttl`), TOS/traffic class 0xc0 as keepalived, no multicast loopback.
pub struct TxSocket {
    fd: OwnedFd,
    scope_id: u32,
}

impl TxSocket {
    /// `header_included`: IPv4 packets are sent whole, IP header included (`auth_type AH`,
    /// whose ICV covers the header keepalived writes itself).
    pub fn open(
        src: IpAddr,
        ifname: &str,
        ifindex: u32,
        ttl: u8,
        header_included: bool,
    ) -> io::Result<TxSocket> {
        let v6 = src.is_ipv6();
        let proto = if header_included {
            crate::codec::ah::IPPROTO_AH
        } else {
            IPPROTO_VRRP
        };
        let fd = raw_socket(v6, i32::from(proto))?;
        bind_device(&fd, ifname)?;
        let ttl_i: libc::c_int = ttl.into();
        let mttl: libc::c_int = 255;
        let zero: libc::c_int = 0;
        let tos: libc::c_int = 0xc0;
        if v6 {
            setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, &ttl_i)?;
            setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, &mttl)?;
            setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, &zero)?;
            setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_TCLASS, &tos)?;
            let idx: libc::c_int = ifindex as libc::c_int;
            setsockopt(&fd, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, &idx)?;
        } else {
            setsockopt(&fd, libc::IPPROTO_IP, libc::IP_TTL, &ttl_i)?;
            setsockopt(&fd, libc::IPPROTO_IP, libc::IP_MULTICAST_TTL, &mttl)?;
            setsockopt(&fd, libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, &zero)?;
            setsockopt(&fd, libc::IPPROTO_IP, libc::IP_TOS, &tos)?;
            let IpAddr::V4(a) = src else { unreachable!() };
            let mreq = libc::ip_mreqn {
                imr_multiaddr: libc::in_addr { s_addr: 0 },
                imr_address: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.octets()),
                },
                imr_ifindex: ifindex as libc::c_int,
            };
            setsockopt(&fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &mreq)?;
            if header_included {
                let one: libc::c_int = 1;
                setsockopt(&fd, libc::IPPROTO_IP, libc::IP_HDRINCL, &one)?;
            }
        }
        let scope_id = if v6 { ifindex } else { 0 };
        if !src.is_unspecified() {
            // Binding a non-local address (e.g. a VIP as mcast_src_ip) needs freebind.
            let one: libc::c_int = 1;
            let _ = setsockopt(&fd, libc::IPPROTO_IP, libc::IP_FREEBIND, &one);
            let (ss, len) = sockaddr(src, scope_id);
            // SAFETY: ss/len describe a valid sockaddr.
            cvt(unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&ss as *const libc::sockaddr_storage).cast(),
                    len,
                )
            })?;
        }
        Ok(TxSocket { fd, scope_id })
    }

    /// Sends one VRRP message to `dst` (non-blocking; a full buffer drops the advert).
    pub fn send(&self, msg: &[u8], dst: IpAddr) -> io::Result<()> {
        let (ss, len) = sockaddr(dst, self.scope_id);
        // SAFETY: msg and ss are valid for the given lengths.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                libc::MSG_DONTWAIT,
                (&ss as *const libc::sockaddr_storage).cast(),
                len,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

/// The default VRRP multicast group of a family (224.0.0.18 / ff02::12).
pub fn group(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(MCAST_GROUP6)
    } else {
        IpAddr::V4(MCAST_GROUP4)
    }
}

/// Unused-address placeholder for "no source configured" (the kernel picks one).
pub const ANY4: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
