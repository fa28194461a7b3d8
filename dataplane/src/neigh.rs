//! Asking the kernel to resolve a neighbour (ARP/ND) without sending it anything ourselves.
//!
//! The packet path forwards with MACs from `bpf_fib_lookup`, which only reads the neighbour table.
//! For NAT an unresolved next hop is no problem (the rewritten packet goes to the kernel, which
//! resolves and forwards it), but a direct-routing packet is still addressed to the VIP and the
//! kernel cannot forward it to the real server. So when a DR destination is added, we look up the
//! route to it and send RTM_NEWNEIGH with NTF_USE, which makes the kernel start resolution as if it
//! had a packet for that neighbour (what `ip neigh ... use` does).

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST};
use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage,
    neighbour::{
        NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
    },
    route::{RouteAddress, RouteAttribute, RouteMessage},
};
use netlink_sys::Socket;

use crate::netlink::{open, request};

/// Starts neighbour resolution for the next hop towards `addr` in the calling thread's network
/// namespace. Best effort: errors are returned for logging, never fatal to the caller.
pub fn resolve(addr: IpAddr) -> std::io::Result<()> {
    let sock = open()?;
    let (ifindex, next_hop) = route_to(&sock, addr)?;
    // NTF_USE on an existing entry resets it (a permanent one becomes INCOMPLETE): only ask when
    // the kernel does not already have a usable entry.
    if has_valid_entry(&sock, ifindex, next_hop)? {
        return Ok(());
    }
    let mut msg = NeighbourMessage::default();
    msg.header.family = family(addr);
    msg.header.ifindex = ifindex;
    msg.header.flags = NeighbourFlags::Use;
    msg.attributes
        .push(NeighbourAttribute::Destination(match next_hop {
            IpAddr::V4(a) => NeighbourAddress::Inet(a),
            IpAddr::V6(a) => NeighbourAddress::Inet6(a),
        }));
    request(
        &sock,
        RouteNetlinkMessage::NewNeighbour(msg),
        NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK,
    )?;
    Ok(())
}

/// Whether the neighbour table holds a usable (NUD_VALID) entry for `addr` on `ifindex`.
fn has_valid_entry(sock: &Socket, ifindex: u32, addr: IpAddr) -> std::io::Result<bool> {
    let mut msg = NeighbourMessage::default();
    msg.header.family = family(addr);
    msg.header.ifindex = ifindex;
    msg.attributes
        .push(NeighbourAttribute::Destination(match addr {
            IpAddr::V4(a) => NeighbourAddress::Inet(a),
            IpAddr::V6(a) => NeighbourAddress::Inet6(a),
        }));
    match request(sock, RouteNetlinkMessage::GetNeighbour(msg), NLM_F_REQUEST) {
        Ok(Some(RouteNetlinkMessage::NewNeighbour(n))) => Ok(matches!(
            n.header.state,
            NeighbourState::Permanent
                | NeighbourState::Noarp
                | NeighbourState::Reachable
                | NeighbourState::Probe
                | NeighbourState::Stale
                | NeighbourState::Delay
        )),
        Ok(_) => Ok(false),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

fn family(addr: IpAddr) -> AddressFamily {
    match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// `ip route get ADDR`: (output interface, next hop: the gateway or the address itself).
fn route_to(sock: &Socket, addr: IpAddr) -> std::io::Result<(u32, IpAddr)> {
    let mut msg = RouteMessage::default();
    msg.header.address_family = family(addr);
    msg.header.destination_prefix_length = if addr.is_ipv4() { 32 } else { 128 };
    msg.attributes
        .push(RouteAttribute::Destination(RouteAddress::from(addr)));
    let reply = request(sock, RouteNetlinkMessage::GetRoute(msg), NLM_F_REQUEST)?;
    let Some(RouteNetlinkMessage::NewRoute(route)) = reply else {
        return Err(std::io::Error::other("no route answer"));
    };
    let mut oif = None;
    let mut gateway = None;
    for a in route.attributes {
        match a {
            RouteAttribute::Oif(i) => oif = Some(i),
            RouteAttribute::Gateway(RouteAddress::Inet(g)) => gateway = Some(IpAddr::V4(g)),
            RouteAttribute::Gateway(RouteAddress::Inet6(g)) => gateway = Some(IpAddr::V6(g)),
            _ => {}
        }
    }
    let oif = oif.ok_or_else(|| std::io::Error::other("route without output interface"))?;
    Ok((oif, gateway.unwrap_or(addr)))
}
