//! keepalived's `-a` (`--address-monitoring`): every address the kernel reports added or
//! removed is logged as keepalived's netlink reflector logs it ("Netlink reflector reports IP
//! ADDR added to IF" / "removed from IF"), the addresses present at start first (IPv4, then
//! IPv6). A thread of its own reading RTNLGRP_IPV4_IFADDR / RTNLGRP_IPV6_IFADDR.

use std::io;
use std::net::IpAddr;

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

fn ifname(index: u32) -> String {
    nix::net::if_::if_indextoname(index)
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_else(|_| index.to_string())
}

fn address(m: &AddressMessage) -> Option<IpAddr> {
    let mut addr = None;
    for a in &m.attributes {
        match a {
            AddressAttribute::Local(ip) => return Some(*ip),
            AddressAttribute::Address(ip) => addr = Some(*ip),
            _ => {}
        }
    }
    addr
}

fn line(ip: IpAddr, added: bool, index: u32) -> String {
    format!(
        "Netlink reflector reports IP {ip} {} {}",
        if added { "added to" } else { "removed from" },
        ifname(index)
    )
}

/// Logs the current addresses, then every change, until the process ends.
pub fn spawn() -> io::Result<()> {
    let mut sock = Socket::new(NETLINK_ROUTE)?;
    sock.bind(&SocketAddr::new(0, 0))?;
    sock.add_membership(libc::RTNLGRP_IPV4_IFADDR)?;
    sock.add_membership(libc::RTNLGRP_IPV6_IFADDR)?;
    let mut present = crate::link::addresses().unwrap_or_default();
    present.sort_by_key(|(ip, _)| ip.is_ipv6());
    for (ip, i) in present {
        log::info!("{}", line(ip, true, i));
    }
    std::thread::Builder::new()
        .name("addrmon".into())
        .spawn(move || {
            loop {
                let Ok((data, _)) = sock.recv_from_full() else {
                    continue;
                };
                let mut off = 0;
                while off < data.len() {
                    let Ok(msg) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[off..])
                    else {
                        break;
                    };
                    let len = msg.header.length as usize;
                    if let NetlinkPayload::InnerMessage(inner) = &msg.payload {
                        let (m, added) = match inner {
                            RouteNetlinkMessage::NewAddress(m) => (m, true),
                            RouteNetlinkMessage::DelAddress(m) => (m, false),
                            _ => {
                                off += ((len + 3) & !3).max(4);
                                continue;
                            }
                        };
                        if let Some(ip) = address(m) {
                            log::info!("{}", line(ip, added, m.header.index));
                        }
                    }
                    if len == 0 {
                        break;
                    }
                    off += (len + 3) & !3;
                }
            }
        })?;
    Ok(())
}
