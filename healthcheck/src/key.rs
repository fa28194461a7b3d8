//! Stable identities of virtual servers and real servers.
//!
//! The daemon and the health checkers name a virtual server by what it
//! serves (address + port, fwmark, or group name, and protocol) and a real
//! server by address + port within it. Neither depends on the order of
//! blocks in the file, so both survive a reload that reorders or edits
//! unrelated parts of the configuration.

use keepalived_conf::model::{Protocol, RealServer, VirtualServer, VirtualServerAddress};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// How a virtual server is addressed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VsAddr {
    /// `virtual_server IP PORT`.
    Ip(SocketAddr),
    /// `virtual_server fwmark MARK`.
    Fwmark(u32),
    /// `virtual_server group NAME`.
    Group(String),
    /// DPVS `virtual_server match NAME`.
    Match(String),
}

/// Identifies a virtual server across reloads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VsKey {
    /// How it is addressed.
    pub addr: VsAddr,
    /// `TCP`, `UDP`, `SCTP`, … (keepalived's spelling).
    pub protocol: &'static str,
}

impl VsKey {
    /// The key of a configured virtual server.
    pub fn of(vs: &VirtualServer) -> VsKey {
        let addr = match &vs.address {
            VirtualServerAddress::Ip { addr, port } => VsAddr::Ip(SocketAddr::new(*addr, *port)),
            VirtualServerAddress::Fwmark { mark } => VsAddr::Fwmark(*mark),
            VirtualServerAddress::Group { name } => VsAddr::Group(name.clone()),
            VirtualServerAddress::Match { name } => VsAddr::Match(name.clone()),
        };
        VsKey {
            addr,
            protocol: proto_name(vs.protocol),
        }
    }

    /// The protocol as keepalived writes it in `[ip]:proto:port` strings (`tcp`, `udp`…).
    pub fn protocol_lc(&self) -> &'static str {
        match self.protocol {
            "TCP" => "tcp",
            "UDP" => "udp",
            "SCTP" => "sctp",
            "ICMP" => "icmp",
            _ => "icmpv6",
        }
    }
}

/// keepalived's spelling of a protocol (`TCP`, `UDP`, …).
pub fn proto_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
        Protocol::Sctp => "SCTP",
        Protocol::Icmp => "ICMP",
        Protocol::Icmpv6 => "ICMPV6",
    }
}

/// keepalived's FMT_VS: `[198.18.0.1]:tcp:80`, `FWM 5`, `group NAME`.
impl fmt::Display for VsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.addr {
            VsAddr::Ip(sa) => write!(f, "[{}]:{}:{}", sa.ip(), self.protocol_lc(), sa.port()),
            VsAddr::Fwmark(m) => write!(f, "FWM {m}"),
            VsAddr::Group(n) => write!(f, "group {n}"),
            VsAddr::Match(n) => write!(f, "match {n}"),
        }
    }
}

/// Identifies a real server within its virtual server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RealKey {
    /// The real's address.
    pub addr: IpAddr,
    /// The effective port (the service's when the real has none).
    pub port: u16,
}

impl RealKey {
    /// The key of a configured real server.
    pub fn of(rs: &RealServer) -> RealKey {
        RealKey {
            addr: rs.addr,
            port: rs.effective_port,
        }
    }

    /// Address and port together.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.addr, self.port)
    }
}

impl RealKey {
    /// `[addr]:proto:port` with the virtual server's protocol, as keepalived's FMT_RS.
    pub fn trio(&self, vs: &VsKey) -> String {
        format!("[{}]:{}:{}", self.addr, vs.protocol_lc(), self.port)
    }
}

impl fmt::Display for RealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]:{}", self.addr, self.port)
    }
}
