//! Raw sockets of the test bed, in the calling thread's network namespace: a packet socket that
//! sees every frame of one interface (captures, the tunnel endpoint), and raw TCP sends of
//! crafted segments (SYN floods that no kernel socket would send).

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use socket2::{Domain, Protocol, Socket, Type};

/// How long a read on a [`packet_socket`] waits, so readers notice their stop flag.
const READ_TIMEOUT: Duration = Duration::from_millis(50);

/// An AF_PACKET socket receiving every frame (all protocols) of `ifname`, its reads bounded by
/// a short timeout. Read frames with [`recv_frame`].
pub fn packet_socket(ifname: &str) -> Result<Socket> {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    let sock = Socket::new(
        Domain::PACKET,
        Type::RAW,
        Some(Protocol::from(i32::from(proto))),
    )
    .context("AF_PACKET socket")?;
    let ifindex = dataplane::loader::ifindex(ifname).unwrap_or(0);
    // SAFETY: sockaddr_ll is plain integers and bytes: all zeroes is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: `sll` is a live sockaddr_ll, the length given is its size, and the descriptor is
    // the socket's own, open for the whole call.
    let rc = unsafe {
        libc::bind(
            sock.as_raw_fd(),
            &sll as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if rc < 0 {
        bail!("bind {ifname}: {}", std::io::Error::last_os_error());
    }
    sock.set_read_timeout(Some(READ_TIMEOUT))?;
    Ok(sock)
}

/// The next frame of a [`packet_socket`] into `buf`: its length, or None when none came within
/// the read timeout.
pub fn recv_frame(sock: &Socket, buf: &mut [u8]) -> Option<usize> {
    let mut reader = sock;
    match reader.read(buf) {
        Ok(n) if n > 0 => Some(n),
        _ => None,
    }
}

/// Sends the TCP segments of Ethernet frames built by [`crate::packet::Frame`] or
/// [`crate::packet::Frame6`] through a raw TCP socket bound to the first frame's source
/// address, each to its frame's destination, one every `pace` (a burst would overflow a veth
/// ring and test nothing of ours). The kernel writes the IP header; the TCP checksum must
/// already be right.
pub fn send_tcp_frames(frames: impl IntoIterator<Item = Vec<u8>>, pace: Duration) -> Result<()> {
    let mut sock: Option<Socket> = None;
    for frame in frames {
        let (src, dst, l3_len) = ip_ends(&frame).context("not an IPv4/IPv6 TCP frame")?;
        let sock = match &mut sock {
            Some(s) => s,
            None => {
                let domain = if src.is_ipv6() {
                    Domain::IPV6
                } else {
                    Domain::IPV4
                };
                let s = Socket::new(domain, Type::RAW, Some(Protocol::TCP))
                    .context("raw TCP socket")?;
                s.bind(&SocketAddr::new(src, 0).into())
                    .with_context(|| format!("bind {src}"))?;
                sock.insert(s)
            }
        };
        let segment = &frame[14 + l3_len..];
        std::thread::sleep(pace);
        let sent = sock
            .send_to(segment, &SocketAddr::new(dst, 0).into())
            .context("raw send")?;
        anyhow::ensure!(
            sent == segment.len(),
            "raw send: {sent} of {} bytes",
            segment.len()
        );
    }
    Ok(())
}

/// Source, destination and IP header length of an untagged IPv4 (no options) or IPv6 (no
/// extension headers) TCP frame.
fn ip_ends(frame: &[u8]) -> Option<(IpAddr, IpAddr, usize)> {
    match frame.get(12..14)? {
        [0x08, 0x00] if frame.len() >= 34 && frame[23] == 6 => {
            let src: [u8; 4] = frame[26..30].try_into().ok()?;
            let dst: [u8; 4] = frame[30..34].try_into().ok()?;
            Some((Ipv4Addr::from(src).into(), Ipv4Addr::from(dst).into(), 20))
        }
        [0x86, 0xdd] if frame.len() >= 54 && frame[20] == 6 => {
            let src: [u8; 16] = frame[22..38].try_into().ok()?;
            let dst: [u8; 16] = frame[38..54].try_into().ok()?;
            Some((Ipv6Addr::from(src).into(), Ipv6Addr::from(dst).into(), 40))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Frame, Frame6, SYN};

    #[test]
    fn tcp_frames_give_their_addresses_and_header_length() {
        let v4 = Frame::tcp(
            Ipv4Addr::new(198, 18, 0, 2),
            20000,
            Ipv4Addr::new(198, 18, 100, 1),
            80,
            SYN,
        )
        .build();
        assert_eq!(
            ip_ends(&v4),
            Some((
                "198.18.0.2".parse().unwrap(),
                "198.18.100.1".parse().unwrap(),
                20
            ))
        );
        let v6 = Frame6::tcp("2001:db8:50::2", 20000, "2001:db8:100::1", 80, SYN).build();
        assert_eq!(
            ip_ends(&v6),
            Some((
                "2001:db8:50::2".parse().unwrap(),
                "2001:db8:100::1".parse().unwrap(),
                40
            ))
        );
        assert_eq!(ip_ends(&v4[..20]), None);
    }
}
