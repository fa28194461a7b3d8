//! rtnetlink requests of the data plane's own (neighbour resolution, interface kinds), made in
//! the calling thread's network namespace.

use netlink_packet_core::{NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::{
    RouteNetlinkMessage,
    link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage},
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// A connected NETLINK_ROUTE socket.
pub fn open() -> std::io::Result<Socket> {
    let mut sock = Socket::new(NETLINK_ROUTE)?;
    sock.bind_auto()?;
    sock.connect(&SocketAddr::new(0, 0))?;
    Ok(sock)
}

/// Whether interface `ifindex` is a veth (`ip -d link`'s kind).
pub fn is_veth(ifindex: u32) -> std::io::Result<bool> {
    let sock = open()?;
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    let reply = request(&sock, RouteNetlinkMessage::GetLink(msg), NLM_F_REQUEST)?;
    let Some(RouteNetlinkMessage::NewLink(link)) = reply else {
        return Ok(false);
    };
    Ok(link.attributes.iter().any(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos
            .iter()
            .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Veth))),
        _ => false,
    }))
}

/// Sends one request; returns the first answer message (None for a bare ACK), or the kernel's
/// error.
pub fn request(
    sock: &Socket,
    msg: RouteNetlinkMessage,
    flags: u16,
) -> std::io::Result<Option<RouteNetlinkMessage>> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = 1;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
    packet.finalize();
    let mut buf = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut buf);
    sock.send(&buf, 0)?;
    let (data, _) = sock.recv_from_full()?;
    let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    match reply.payload {
        NetlinkPayload::InnerMessage(m) => Ok(Some(m)),
        NetlinkPayload::Error(e) => match e.code {
            None => Ok(None),
            Some(code) => Err(std::io::Error::from_raw_os_error(-code.get())),
        },
        _ => Ok(None),
    }
}
