//! VIPs and virtual routes through rtnetlink (what `ip addr add/del` and `ip route add/del`
//! send). Synchronous: each request is one round trip of well under a millisecond.

use std::io;
use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage,
    address::{AddressAttribute, AddressHeaderFlags, AddressMessage, AddressScope},
    link::{
        InfoData, InfoIpVlan, InfoKind, InfoMacVlan, IpVlanFlags, IpVlanMode, LinkAttribute,
        LinkFlags, LinkInfo, LinkMessage, MacVlanMode,
    },
    route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType},
    rule::{RuleAction, RuleAttribute, RuleMessage},
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// One address to put on an interface (a `virtual_ipaddress` line, resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    /// The address.
    pub addr: IpAddr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// Interface index it goes on.
    pub ifindex: u32,
    /// That interface's name (for labels and logs).
    pub ifname: String,
    /// Broadcast address (IPv4).
    pub broadcast: Option<Ipv4Addr>,
    /// rtnetlink scope number (0 global, 200 site, 253 link, 254 host).
    pub scope: u8,
    /// Address label.
    pub label: Option<String>,
    /// IPv6: skip duplicate address detection.
    pub nodad: bool,
}

/// One `virtual_routes` line, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination.
    pub dst: IpAddr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// Gateway.
    pub via: Option<IpAddr>,
    /// Preferred source address.
    pub src: Option<IpAddr>,
    /// Output interface index.
    pub oif: Option<u32>,
    /// Routing table.
    pub table: u32,
    /// Metric.
    pub metric: Option<u32>,
    /// rtnetlink scope number.
    pub scope: Option<u8>,
    /// RTN_* (1 unicast, 6 blackhole, 7 unreachable, 8 prohibit).
    pub kind: u8,
}

/// One `virtual_rules` line, resolved (`from`/`to` prefixes, lookup table, preference).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// An IPv6 rule.
    pub v6: bool,
    /// Source prefix.
    pub from: Option<(IpAddr, u8)>,
    /// Destination prefix.
    pub to: Option<(IpAddr, u8)>,
    /// Table looked up.
    pub table: u32,
    /// Rule priority.
    pub preference: Option<u32>,
}

/// An rtnetlink socket for addresses, routes and rules.
pub struct Netlink {
    sock: Socket,
    seq: u32,
}

fn family(a: IpAddr) -> AddressFamily {
    if a.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

/// rtnetlink scope from keepalived's words (also numbers).
pub fn scope_number(s: &str) -> Option<u8> {
    Some(match s {
        "global" | "universe" => 0,
        "site" => 200,
        "link" => 253,
        "host" => 254,
        "nowhere" => 255,
        n => n.parse().ok()?,
    })
}

impl Netlink {
    /// Opens the socket.
    pub fn open() -> io::Result<Netlink> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink { sock, seq: 0 })
    }

    fn address_message(v: &Vip) -> AddressMessage {
        let mut m = AddressMessage::default();
        m.header.family = family(v.addr);
        m.header.prefix_len = v.prefix_len;
        m.header.index = v.ifindex;
        m.header.scope = AddressScope::from(v.scope);
        if v.nodad {
            m.header.flags = AddressHeaderFlags::Nodad;
        }
        m.attributes.push(AddressAttribute::Local(v.addr));
        m.attributes.push(AddressAttribute::Address(v.addr));
        if let Some(b) = v.broadcast {
            m.attributes.push(AddressAttribute::Broadcast(b));
        }
        if let Some(l) = &v.label {
            m.attributes.push(AddressAttribute::Label(l.clone()));
        }
        m
    }

    /// Adds the address; already present is success.
    pub fn add_address(&mut self, v: &Vip) -> io::Result<()> {
        let m = Self::address_message(v);
        match self.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }

    /// Removes the address; already absent is success.
    pub fn del_address(&mut self, v: &Vip) -> io::Result<()> {
        let m = Self::address_message(v);
        match self.request(
            RouteNetlinkMessage::DelAddress(m),
            NLM_F_REQUEST | NLM_F_ACK,
        ) {
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EADDRNOTAVAIL) | Some(libc::ENOENT) | Some(libc::ENODEV)
                ) =>
            {
                Ok(())
            }
            r => r,
        }
    }

    fn route_message(r: &Route) -> RouteMessage {
        let mut m = RouteMessage::default();
        m.header.address_family = family(r.dst);
        m.header.destination_prefix_length = r.prefix_len;
        // RTPROT_KEEPALIVED, as keepalived marks its routes.
        m.header.protocol = RouteProtocol::from(18u8);
        m.header.kind = RouteType::from(r.kind);
        // keepalived leaves the scope global unless one is written.
        m.header.scope = r.scope.map_or(RouteScope::Universe, RouteScope::from);
        if r.table < 256 {
            m.header.table = r.table as u8;
        } else {
            m.header.table = 252; // RT_TABLE_COMPAT; the real id goes in RTA_TABLE
            m.attributes.push(RouteAttribute::Table(r.table));
        }
        m.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(r.dst)));
        if let Some(v) = r.via {
            m.attributes
                .push(RouteAttribute::Gateway(RouteAddress::from(v)));
        }
        if let Some(s) = r.src {
            m.attributes
                .push(RouteAttribute::PrefSource(RouteAddress::from(s)));
        }
        if let Some(o) = r.oif {
            m.attributes.push(RouteAttribute::Oif(o));
        }
        if let Some(p) = r.metric {
            m.attributes.push(RouteAttribute::Priority(p));
        }
        m
    }

    /// Installs a route (one that exists counts as done).
    pub fn add_route(&mut self, r: &Route) -> io::Result<()> {
        match self.request(
            RouteNetlinkMessage::NewRoute(Self::route_message(r)),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }

    /// Removes a route (one that is gone counts as done).
    pub fn del_route(&mut self, r: &Route) -> io::Result<()> {
        match self.request(
            RouteNetlinkMessage::DelRoute(Self::route_message(r)),
            NLM_F_REQUEST | NLM_F_ACK,
        ) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ESRCH) | Some(libc::ENOENT)) => Ok(()),
            r => r,
        }
    }

    fn rule_message(r: &Rule) -> RuleMessage {
        let mut m = RuleMessage::default();
        m.header.family = if r.v6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        m.header.action = RuleAction::ToTable;
        if r.table < 256 {
            m.header.table = r.table as u8;
        }
        m.attributes.push(RuleAttribute::Table(r.table));
        // RTPROT_KEEPALIVED, as for routes.
        m.attributes
            .push(RuleAttribute::Protocol(RouteProtocol::from(18u8)));
        if let Some((a, len)) = r.from.filter(|f| f.1 > 0) {
            m.header.src_len = len;
            m.attributes.push(RuleAttribute::Source(a));
        }
        if let Some((a, len)) = r.to.filter(|t| t.1 > 0) {
            m.header.dst_len = len;
            m.attributes.push(RuleAttribute::Destination(a));
        }
        if let Some(p) = r.preference {
            m.attributes.push(RuleAttribute::Priority(p));
        }
        m
    }

    /// Installs a rule (one that exists counts as done).
    pub fn add_rule(&mut self, r: &Rule) -> io::Result<()> {
        match self.request(
            RouteNetlinkMessage::NewRule(Self::rule_message(r)),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }

    /// Removes a rule (one that is gone counts as done).
    pub fn del_rule(&mut self, r: &Rule) -> io::Result<()> {
        match self.request(
            RouteNetlinkMessage::DelRule(Self::rule_message(r)),
            NLM_F_REQUEST | NLM_F_ACK,
        ) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ESRCH)) => Ok(()),
            r => r,
        }
    }

    /// Creates a private-mode macvlan `name` on `base` with `mac` (keepalived's use_vmac).
    pub fn create_macvlan(&mut self, name: &str, base: u32, mac: [u8; 6]) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        m.attributes.push(LinkAttribute::Link(base));
        m.attributes.push(LinkAttribute::Address(mac.to_vec()));
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::MacVlan),
            LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(
                MacVlanMode::Private,
            )])),
        ]));
        self.request(
            RouteNetlinkMessage::NewLink(m),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// An L2 ipvlan `name` on `base` (`mode`: bridge, private or vepa), as keepalived's
    /// `use_ipvlan` makes.
    pub fn create_ipvlan(&mut self, name: &str, base: u32, mode: &str) -> io::Result<()> {
        let flags = match mode {
            "private" => IpVlanFlags::Private,
            "vepa" => IpVlanFlags::Vepa,
            _ => IpVlanFlags::empty(),
        };
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        m.attributes.push(LinkAttribute::Link(base));
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::IpVlan),
            LinkInfo::Data(InfoData::IpVlan(vec![
                InfoIpVlan::Mode(IpVlanMode::L2),
                InfoIpVlan::Flags(flags),
            ])),
        ]));
        self.request(
            RouteNetlinkMessage::NewLink(m),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// Sets a link up.
    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(m), NLM_F_REQUEST | NLM_F_ACK)
    }

    /// Deletes a link; already gone is success.
    pub fn delete_link(&mut self, index: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        match self.request(RouteNetlinkMessage::DelLink(m), NLM_F_REQUEST | NLM_F_ACK) {
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
            r => r,
        }
    }

    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.sock.send(&buf, 0)?;
        loop {
            let (data, _) = self.sock.recv_from_full()?;
            let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data)
                .map_err(|e| io::Error::other(e.to_string()))?;
            if reply.header.sequence_number != self.seq {
                continue; // a late answer to an earlier request
            }
            return match reply.payload {
                NetlinkPayload::Error(e) => match e.code {
                    None => Ok(()),
                    Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                },
                _ => Ok(()),
            };
        }
    }
}
