//! The IPVS object model as user space sees it: services, destinations, timeouts, connections.
//! Pure data (no map access): `ipvsadm`, the keepalived daemon and tests all speak these types,
//! and `crate::tables::convert` turns them into the map values of `ebpf-common` and back.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ebpf_common as c;

/// Address family of a service or destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
    pub(crate) fn raw(self) -> u8 {
        match self {
            Family::V4 => c::AF_INET,
            Family::V6 => c::AF_INET6,
        }
    }
    pub(crate) fn from_raw(af: u8) -> Family {
        if af == c::AF_INET6 {
            Family::V6
        } else {
            Family::V4
        }
    }
}

/// Transport protocol of a (non-fwmark) service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => c::IPPROTO_TCP,
            Protocol::Udp => c::IPPROTO_UDP,
            Protocol::Sctp => c::IPPROTO_SCTP,
        }
    }
    /// The protocol of an IP protocol number, if a service can have it.
    pub fn from_number(n: u8) -> Option<Protocol> {
        match n {
            c::IPPROTO_TCP => Some(Protocol::Tcp),
            c::IPPROTO_UDP => Some(Protocol::Udp),
            c::IPPROTO_SCTP => Some(Protocol::Sctp),
            _ => None,
        }
    }
    /// Name as ipvsadm prints it in listings ("TCP", "UDP", "SCTP").
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// What identifies a virtual service: (protocol, address, port) or a firewall mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServiceAddr {
    /// `-t` / `-u` / `--sctp-service ADDR:PORT`.
    Inet {
        /// Transport protocol.
        proto: Protocol,
        /// The VIP.
        addr: IpAddr,
        /// The virtual port (0: every port).
        port: u16,
    },
    /// `-f MARK`: packets the fwmark classifier marks.
    Fwmark {
        /// The mark.
        mark: u32,
        /// IPv4 or IPv6 (`-6`).
        family: Family,
    },
}

impl ServiceAddr {
    /// IPv4 or IPv6.
    pub fn family(&self) -> Family {
        match self {
            ServiceAddr::Inet { addr, .. } => Family::of(addr),
            ServiceAddr::Fwmark { family, .. } => *family,
        }
    }
}

impl fmt::Display for ServiceAddr {
    /// `TCP 198.18.0.1:80`, `UDP [2001:db8::1]:53`, `FWM 7` (for messages; listings format themselves).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceAddr::Inet { proto, addr, port } => {
                write!(f, "{} {}", proto.name(), SocketAddr::new(*addr, *port))
            }
            ServiceAddr::Fwmark { mark, family } => match family {
                Family::V4 => write!(f, "FWM {mark}"),
                Family::V6 => write!(f, "FWM {mark} IPv6"),
            },
        }
    }
}

/// The 13 IPVS schedulers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheduler {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connections.
    Lc,
    /// Weighted least connections.
    Wlc,
    /// Locality-based least connections.
    Lblc,
    /// Locality-based least connections with replication.
    Lblcr,
    /// Destination hashing.
    Dh,
    /// Source hashing.
    Sh,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Weighted failover.
    Fo,
    /// Weighted overflow.
    Ovf,
    /// Maglev hashing.
    Mh,
}

impl Scheduler {
    /// Every scheduler, in IPVS' order.
    pub const ALL: [Scheduler; 13] = [
        Scheduler::Rr,
        Scheduler::Wrr,
        Scheduler::Lc,
        Scheduler::Wlc,
        Scheduler::Lblc,
        Scheduler::Lblcr,
        Scheduler::Dh,
        Scheduler::Sh,
        Scheduler::Sed,
        Scheduler::Nq,
        Scheduler::Fo,
        Scheduler::Ovf,
        Scheduler::Mh,
    ];
    /// The scheduler's name in ipvsadm (`-s`).
    pub fn name(self) -> &'static str {
        match self {
            Scheduler::Rr => "rr",
            Scheduler::Wrr => "wrr",
            Scheduler::Lc => "lc",
            Scheduler::Wlc => "wlc",
            Scheduler::Lblc => "lblc",
            Scheduler::Lblcr => "lblcr",
            Scheduler::Dh => "dh",
            Scheduler::Sh => "sh",
            Scheduler::Sed => "sed",
            Scheduler::Nq => "nq",
            Scheduler::Fo => "fo",
            Scheduler::Ovf => "ovf",
            Scheduler::Mh => "mh",
        }
    }
    /// The scheduler called `name`, or `None` (IPVS then says "Scheduler or persistence engine not found").
    pub fn from_name(name: &str) -> Option<Scheduler> {
        Scheduler::ALL.into_iter().find(|s| s.name() == name)
    }
    pub(crate) fn raw(self) -> u32 {
        match self {
            Scheduler::Rr => c::SCHED_RR,
            Scheduler::Wrr => c::SCHED_WRR,
            Scheduler::Lc => c::SCHED_LC,
            Scheduler::Wlc => c::SCHED_WLC,
            Scheduler::Lblc => c::SCHED_LBLC,
            Scheduler::Lblcr => c::SCHED_LBLCR,
            Scheduler::Dh => c::SCHED_DH,
            Scheduler::Sh => c::SCHED_SH,
            Scheduler::Sed => c::SCHED_SED,
            Scheduler::Nq => c::SCHED_NQ,
            Scheduler::Fo => c::SCHED_FO,
            Scheduler::Ovf => c::SCHED_OVF,
            Scheduler::Mh => c::SCHED_MH,
        }
    }
    pub(crate) fn from_raw(raw: u32) -> Scheduler {
        Scheduler::ALL
            .into_iter()
            .find(|s| s.raw() == raw)
            .unwrap_or(Scheduler::Wlc)
    }
}

/// Forwarding method of a destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Forward {
    /// NAT (`-m`).
    Masq,
    /// Local node (IPVS shows it for reals that are local addresses).
    Local,
    /// IP tunnelling (`-i`).
    Tunnel,
    /// Direct routing (`-g`, the ipvsadm default).
    Route,
    /// alibaba/DPVS FULLNAT (`-b`/`--fullnat`).
    FullNat,
}

impl Forward {
    /// Name as `ipvsadm -L` prints it in the Forward column.
    pub fn name(self) -> &'static str {
        match self {
            Forward::Masq => "Masq",
            Forward::Local => "Local",
            Forward::Tunnel => "Tunnel",
            Forward::Route => "Route",
            Forward::FullNat => "FullNat",
        }
    }
    pub(crate) fn raw(self) -> u8 {
        match self {
            Forward::Masq => c::FWD_MASQ,
            Forward::Local => c::FWD_LOCAL,
            Forward::Tunnel => c::FWD_TUNNEL,
            Forward::Route => c::FWD_DROUTE,
            Forward::FullNat => c::FWD_FULLNAT,
        }
    }
    pub(crate) fn from_raw(raw: u8) -> Forward {
        match raw {
            c::FWD_MASQ => Forward::Masq,
            c::FWD_LOCAL => Forward::Local,
            c::FWD_TUNNEL => Forward::Tunnel,
            c::FWD_FULLNAT => Forward::FullNat,
            _ => Forward::Route,
        }
    }
}

/// Tunnel encapsulation of a `Tunnel` destination (ipvsadm 1.31 `--tun-type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TunnelType {
    /// IP-in-IP.
    #[default]
    Ipip,
    /// Generic UDP Encapsulation.
    Gue,
    /// GRE.
    Gre,
}

/// Tunnel checksum flags (`--tun-nocsum`/`--tun-csum`/`--tun-remcsum`), IPVS bit values.
pub mod tun_flags {
    /// No outer checksum.
    pub const NOCSUM: u8 = 0x0;
    /// Outer checksum computed.
    pub const CSUM: u8 = 0x1;
    /// Remote checksum offload (GUE).
    pub const REMCSUM: u8 = 0x2;
}

/// Tunnel settings of a destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Tunnel {
    /// The encapsulation.
    pub kind: TunnelType,
    /// GUE destination port (network order is handled by the data plane; this is host order).
    pub port: u16,
    /// [`tun_flags`] bits.
    pub flags: u8,
}

/// A virtual service's settings (what `ipvsadm -A/-E` sets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    /// What identifies the service.
    pub addr: ServiceAddr,
    /// Scheduler (`-s`).
    pub scheduler: Scheduler,
    /// Persistence timeout in seconds (`-p`), `None` when not persistent.
    pub persistent: Option<u32>,
    /// Persistence netmask: IPv4 prefix length 0..=32, IPv6 prefix length 0..=128 (`-M`).
    pub netmask: u8,
    /// Persistence engine (`--pe`), only meaningful when persistent.
    pub pe: Option<String>,
    /// One-packet scheduling (`-o`).
    pub one_packet: bool,
    /// Scheduler flags SCHED1..3 (`-b sh-fallback,sh-port,...`), as SVC_F_SCHED* bits.
    pub sched_flags: u32,
    /// alibaba/DPVS SYNPROXY (`-j enable`).
    pub synproxy: bool,
    /// alibaba `-V/--vsestablish-timeout`: per-service ESTABLISHED timeout in seconds.
    pub est_timeout: Option<u32>,
}

impl ServiceConfig {
    /// A service with ipvsadm's defaults (wlc, not persistent, full netmask).
    pub fn new(addr: ServiceAddr) -> ServiceConfig {
        let netmask = match addr.family() {
            Family::V4 => 32,
            Family::V6 => 128,
        };
        ServiceConfig {
            addr,
            scheduler: Scheduler::Wlc,
            persistent: None,
            netmask,
            pe: None,
            one_packet: false,
            sched_flags: 0,
            synproxy: false,
            est_timeout: None,
        }
    }
}

/// A scheduler flag by its ipvsadm/keepalived name (`sh-port`, `flag-1`, …): its SVC_F_SCHED*
/// bit and the scheduler it belongs to (`None`: any scheduler).
pub fn sched_flag(name: &str) -> Option<(u32, Option<Scheduler>)> {
    use ebpf_common::{SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3};
    Some(match name {
        "flag-1" => (SVC_F_SCHED1, None),
        "flag-2" => (SVC_F_SCHED2, None),
        "flag-3" => (SVC_F_SCHED3, None),
        "sh-fallback" => (SVC_F_SCHED1, Some(Scheduler::Sh)),
        "sh-port" => (SVC_F_SCHED2, Some(Scheduler::Sh)),
        "mh-fallback" => (SVC_F_SCHED1, Some(Scheduler::Mh)),
        "mh-port" => (SVC_F_SCHED2, Some(Scheduler::Mh)),
        _ => return None,
    })
}

/// A destination's settings (what `ipvsadm -a/-e` sets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DestConfig {
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port (0 with fwmark services: the packet's own).
    pub port: u16,
    /// Forwarding method (`-g`/`-i`/`-m`/`-b`).
    pub forward: Forward,
    /// Weight (`-w`); 0 takes no new connections.
    pub weight: i32,
    /// Upper connection threshold (`-x`); 0: none.
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`).
    pub l_threshold: u32,
    /// Tunnel settings (`-i`).
    pub tunnel: Tunnel,
}

impl DestConfig {
    /// A destination with ipvsadm's defaults (weight 1, direct routing).
    pub fn new(addr: IpAddr, port: u16) -> DestConfig {
        DestConfig {
            addr,
            port,
            forward: Forward::Route,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tunnel: Tunnel::default(),
        }
    }
    /// Address and port together.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.addr, self.port)
    }
}

/// Counters as IPVS keeps them (`ipvsadm -L --stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets client -> real server.
    pub inpkts: u64,
    /// Packets real server -> client.
    pub outpkts: u64,
    /// Bytes client -> real server.
    pub inbytes: u64,
    /// Bytes real server -> client.
    pub outbytes: u64,
}

impl Stats {
    pub(crate) fn add(&mut self, s: &c::Stats) {
        self.conns += s.conns;
        self.inpkts += s.inpkts;
        self.outpkts += s.outpkts;
        self.inbytes += s.inbytes;
        self.outbytes += s.outbytes;
    }
}

/// A destination as listed: settings plus live figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestEntry {
    /// Its settings.
    pub config: DestConfig,
    /// Connections in ESTABLISHED (IPVS ActiveConn).
    pub active_conns: u32,
    /// Connections in any other state (IPVS InActConn).
    pub inact_conns: u32,
    /// Persistence templates pointing at this destination (IPVS PersistConn).
    pub persist_conns: u32,
    /// Its counters.
    pub stats: Stats,
    /// Rates estimated from the counters over time (IPVS estimator): cps, inpps, outpps, inbps, outbps
    /// in the fields conns, inpkts, outpkts, inbytes, outbytes.
    pub rates: Stats,
}

/// A service as listed: settings, destinations (in insertion order) and counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceEntry {
    /// Its settings.
    pub config: ServiceConfig,
    /// Its destinations, in insertion order.
    pub dests: Vec<DestEntry>,
    /// Its counters.
    pub stats: Stats,
    /// Rates, as in [`DestEntry::rates`].
    pub rates: Stats,
    /// FULLNAT local addresses of the service (alibaba `-P`/`-G`), in insertion order.
    pub local_addrs: Vec<LocalAddr>,
    /// DPVS deny list (blklst) and allow list (whtlst) of client addresses.
    pub deny: Vec<IpAddr>,
    /// Allowed client addresses; when any, only they may connect.
    pub allow: Vec<IpAddr>,
}

/// Which DPVS list: deny (blklst) or allow (whtlst).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AclKind {
    /// blklst: listed clients are refused.
    Deny,
    /// whtlst: only listed clients are let in.
    Allow,
}

/// A FULLNAT local address of a service (alibaba/DPVS `-P -z ADDR [-F IFNAME]`, listed by `-G`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalAddr {
    /// The local address.
    pub addr: IpAddr,
    /// Interface it is on (`-F`), when given.
    pub ifname: Option<String>,
    /// Connections currently using this local address.
    pub conns: u64,
    /// Source-port allocation failures (pool exhausted) on this address.
    pub port_conflicts: u64,
}

/// Packet-path switches beyond IPVS' (alibaba LVS has them as sysctls): what happens to traffic
/// that belongs to no connection, and FULLNAT's TOA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathSettings {
    /// FULLNAT inserts TOA (the client's address for the real server). Default on.
    pub toa: bool,
    /// IP fragments addressed to a VIP that the packet path does not forward (a later fragment
    /// whose first fragment was not seen, no service on the port, a fragmented SYN to a
    /// SYNPROXY service) are dropped (`defence_frag_drop`) instead of handed to the kernel.
    /// Fragments of connections are forwarded either way. Default off.
    pub frag_drop: bool,
    /// TCP/UDP to a VIP address on a port without a service is dropped instead of handed to the
    /// kernel (floods at random ports). Default off: the VIP may carry local services.
    pub no_service_drop: bool,
    /// SYNPROXY defer mode (alibaba's `net.ipv4.vs.synproxy_defer`): the real server's side of
    /// a proxied connection is opened by the client's first data segment, not by the ACK that
    /// completes the handshake, so clients that complete handshakes and send nothing never
    /// reach a real server. The data of that segment is dropped (XDP cannot hold it) and the
    /// client sends it again after its retransmission timeout. Default off.
    pub synproxy_defer: bool,
    /// IPVS' `net.ipv4.vs.sloppy_tcp`: a TCP segment that belongs to no connection (other than
    /// a RST) is scheduled like a SYN instead of dropped. With `mh` or `sh` and the same
    /// services on every director of an ECMP cluster, DR and TUN connections then survive the
    /// loss of their director: the router sends them to another one, which picks the same
    /// real. Default off, as in IPVS.
    pub sloppy_tcp: bool,
    /// What a full connection table does with a new connection (see [`crate::fill`]). Default
    /// evict.
    pub table_full: crate::fill::TableFull,
}

impl Default for PathSettings {
    fn default() -> Self {
        PathSettings {
            toa: true,
            frag_drop: false,
            no_service_drop: false,
            synproxy_defer: false,
            sloppy_tcp: false,
            table_full: crate::fill::TableFull::Evict,
        }
    }
}

/// The three timeouts `ipvsadm --set` handles, in seconds (0 in a set request = leave unchanged).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// ESTABLISHED TCP.
    pub tcp: u32,
    /// TCP after a FIN.
    pub tcp_fin: u32,
    /// UDP.
    pub udp: u32,
}

/// Connection states with the names `ipvsadm -Lc` prints.
pub fn state_name(proto: u8, state: u8) -> &'static str {
    if proto == c::IPPROTO_UDP {
        return "UDP";
    }
    match state {
        c::S_ESTABLISHED => "ESTABLISHED",
        c::S_SYN_SENT => "SYN_SENT",
        c::S_SYN_RECV => "SYN_RECV",
        c::S_FIN_WAIT => "FIN_WAIT",
        c::S_TIME_WAIT => "TIME_WAIT",
        c::S_CLOSE => "CLOSE",
        c::S_CLOSE_WAIT => "CLOSE_WAIT",
        c::S_LAST_ACK => "LAST_ACK",
        c::S_LISTEN => "LISTEN",
        c::S_SYNACK => "SYNACK",
        _ => "NONE",
    }
}

/// One live connection (`ipvsadm -Lc`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnEntry {
    /// IP protocol number.
    pub proto: u8,
    /// Client address and port.
    pub client: SocketAddr,
    /// Virtual address and port.
    pub virt: SocketAddr,
    /// Real server address and port.
    pub dest: SocketAddr,
    /// FULLNAT local address, when used.
    pub local: Option<SocketAddr>,
    /// State name as ipvsadm lists it (ESTABLISHED, FIN_WAIT, …).
    pub state: &'static str,
    /// True for IPVS' ESTABLISHED, what ActiveConn counts.
    pub active: bool,
    /// Seconds left before the entry expires.
    pub expires: u32,
    /// How the connection is forwarded.
    pub forward: Forward,
}

pub(crate) fn ip_to_words(addr: &IpAddr) -> [u32; 4] {
    match addr {
        IpAddr::V4(a) => [u32::from_ne_bytes(a.octets()), 0, 0, 0],
        IpAddr::V6(a) => {
            let o = a.octets();
            let w = |i: usize| u32::from_ne_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            [w(0), w(4), w(8), w(12)]
        }
    }
}

pub(crate) fn words_to_ip(words: &[u32; 4], family: Family) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(words[0].to_ne_bytes())),
        Family::V6 => {
            let mut o = [0u8; 16];
            for (i, w) in words.iter().enumerate() {
                o[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(o))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_words_round_trip_in_network_order() {
        let v4: IpAddr = "198.18.0.1".parse().unwrap();
        let w = ip_to_words(&v4);
        assert_eq!(w[0].to_ne_bytes(), [198, 18, 0, 1]);
        assert_eq!(words_to_ip(&w, Family::V4), v4);
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(words_to_ip(&ip_to_words(&v6), Family::V6), v6);
    }

    #[test]
    fn scheduler_names_are_ipvs_names() {
        let names: Vec<_> = Scheduler::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names.join("|"),
            "rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh"
        );
        for s in Scheduler::ALL {
            assert_eq!(Scheduler::from_raw(s.raw()), s);
            assert_eq!(Scheduler::from_name(s.name()), Some(s));
        }
        assert_eq!(Scheduler::from_name("bogus"), None);
    }
}
