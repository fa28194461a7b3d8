//! Gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6) announcing a VIP, as
//! keepalived sends them on becoming MASTER: frame builders are pure, senders are one syscall.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// An ARP request from `vip` for `vip` (what keepalived sends), broadcast.
pub fn arp_frame(mac: [u8; 6], vip: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&0x0806u16.to_be_bytes());
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]); // Ethernet/IPv4, request
    f.extend_from_slice(&mac);
    f.extend_from_slice(&vip.octets());
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&vip.octets());
    f
}

/// ICMPv6 neighbour advertisement body for `vip` (override flag, target link-layer option);
/// the kernel fills in the checksum on an ICMPv6 raw socket.
pub fn na_message(mac: [u8; 6], vip: Ipv6Addr) -> Vec<u8> {
    let mut m = Vec::with_capacity(32);
    m.extend_from_slice(&[136, 0, 0, 0]);
    m.extend_from_slice(&0x2000_0000u32.to_be_bytes()); // O (override)
    m.extend_from_slice(&vip.octets());
    m.extend_from_slice(&[2, 1]);
    m.extend_from_slice(&mac);
    m
}

fn last_err<T>() -> io::Result<T> {
    Err(io::Error::last_os_error())
}

/// Sends one gratuitous ARP on `ifindex`.
pub fn send_arp(ifindex: u32, mac: [u8; 6], vip: Ipv4Addr) -> io::Result<()> {
    let frame = arp_frame(mac, vip);
    // SAFETY: plain socket/sendto on a fresh fd; sockaddr_ll is fully initialised.
    unsafe {
        let fd = libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            (libc::ETH_P_ARP as u16).to_be() as i32,
        );
        if fd < 0 {
            return last_err();
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let mut sll: libc::sockaddr_ll = zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ARP as u16).to_be();
        sll.sll_ifindex = ifindex as i32;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&[0xff; 6]);
        let n = libc::sendto(
            fd.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&sll as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as u32,
        );
        if n < 0 { last_err() } else { Ok(()) }
    }
}

/// Sends one unsolicited NA for `vip` to ff02::1 on `ifindex` (hop limit 255).
pub fn send_na(ifindex: u32, mac: [u8; 6], vip: Ipv6Addr) -> io::Result<()> {
    let msg = na_message(mac, vip);
    // SAFETY: plain socket/setsockopt/sendto on a fresh fd with initialised arguments.
    unsafe {
        let fd = libc::socket(
            libc::AF_INET6,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_ICMPV6,
        );
        if fd < 0 {
            return last_err();
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let hops: libc::c_int = 255;
        let idx: libc::c_int = ifindex as libc::c_int;
        for (name, val) in [
            (libc::IPV6_MULTICAST_HOPS, &hops),
            (libc::IPV6_UNICAST_HOPS, &hops),
            (libc::IPV6_MULTICAST_IF, &idx),
        ] {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::IPPROTO_IPV6,
                name,
                (val as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as u32,
            );
        }
        let dst: IpAddr = IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1));
        let (ss, len) = crate::sock::sockaddr(dst, ifindex);
        let n = libc::sendto(
            fd.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&ss as *const libc::sockaddr_storage).cast(),
            len,
        );
        if n < 0 { last_err() } else { Ok(()) }
    }
}

/// Announces `vip` once.
pub fn announce(ifindex: u32, mac: [u8; 6], vip: IpAddr) -> io::Result<()> {
    match vip {
        IpAddr::V4(a) => send_arp(ifindex, mac, a),
        IpAddr::V6(a) => send_na(ifindex, mac, a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arp_frame_layout() {
        let f = arp_frame([2, 0, 0, 0, 0, 1], Ipv4Addr::new(198, 18, 0, 100));
        assert_eq!(f.len(), 42);
        assert_eq!(&f[12..14], &[8, 6]);
        assert_eq!(&f[20..22], &[0, 1], "request, as keepalived");
        assert_eq!(&f[28..32], &[198, 18, 0, 100], "sender = VIP");
        assert_eq!(&f[38..42], &[198, 18, 0, 100], "target = VIP");
    }

    #[test]
    fn na_layout() {
        let m = na_message([2, 0, 0, 0, 0, 1], "2001:db8::1".parse().unwrap());
        assert_eq!(m.len(), 32);
        assert_eq!(m[0], 136);
        assert_eq!(m[4], 0x20);
        assert_eq!(&m[24..26], &[2, 1]);
    }
}
