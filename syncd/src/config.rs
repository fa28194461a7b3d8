//! What a sync daemon was asked to do, with the kernel's defaults and clamps
//! (`start_sync_thread` in ip_vs_sync.c), and the record of a running daemon.

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

/// IP_VS_SYNC_GROUP (224.0.0.81). The kernel has no IPv6 default: an IPv6 group (usually
/// ff02::81) is always given.
pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
/// IP_VS_SYNC_PORT.
pub const PORT: u16 = 8848;
/// ipvsadm's default interface when `--mcast-interface` is not given.
pub const DEFAULT_IFNAME: &str = "eth0";
/// IP_VS_IFNAME_MAXLEN - 1: the kernel keeps this much of the interface name.
pub const IFNAME_MAX: usize = 15;

/// Which side of the sync a daemon is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sends the local connections.
    Master,
    /// Receives and writes the master's connections.
    Backup,
}

impl Role {
    /// `master` or `backup`, as ipvsadm writes it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Backup => "backup",
        }
    }

    /// The role called `s`, if any.
    pub fn from_name(s: &str) -> Option<Role> {
        match s {
            "master" => Some(Role::Master),
            "backup" => Some(Role::Backup),
            _ => None,
        }
    }
}

/// `ipvsadm --start-daemon` as given (0 / None: the kernel's default).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Master or backup.
    pub role: Role,
    /// `--mcast-interface`.
    pub ifname: String,
    /// `--syncid`.
    pub syncid: u8,
    /// `--sync-maxlen`.
    pub maxlen: u16,
    /// Multicast group; a unicast address is the xlvs extension (send to / listen on it).
    pub group: Option<IpAddr>,
    /// `--mcast-port`.
    pub port: u16,
    /// `--mcast-ttl`.
    pub ttl: u8,
}

impl Request {
    /// A request for `role` with every setting left to its default.
    pub fn new(role: Role) -> Request {
        Request {
            role,
            ifname: DEFAULT_IFNAME.to_string(),
            syncid: 0,
            maxlen: 0,
            group: None,
            port: 0,
            ttl: 0,
        }
    }
}

/// A daemon's settings with every default applied, as `ipvsadm -L --daemon` shows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Master or backup.
    pub role: Role,
    /// Interface the datagrams use.
    pub ifname: String,
    /// Sync id (0: any, for a backup).
    pub syncid: u8,
    /// Largest datagram payload.
    pub maxlen: u16,
    /// Multicast group (or unicast peer).
    pub group: IpAddr,
    /// UDP port.
    pub port: u16,
    /// TTL of the datagrams sent.
    pub ttl: u8,
}

impl Settings {
    /// The kernel's rules: group 224.0.0.81, port 8848, ttl 1; maxlen for a master 1500 less
    /// the IP and UDP headers unless given (then 1..65535-headers), for a backup the
    /// interface's MTU (at least 1500) less the headers unless given (then 1024..65535-headers).
    pub fn resolve(req: &Request, mtu: u32) -> Settings {
        let group = req.group.unwrap_or(IpAddr::V4(GROUP_V4));
        let hlen: u32 = if group.is_ipv6() { 40 + 8 } else { 20 + 8 };
        let max = 65535 - hlen;
        let maxlen = match (req.role, req.maxlen) {
            (Role::Master, 0) => 1500 - hlen,
            (Role::Master, n) => (n as u32).clamp(1, max),
            (Role::Backup, 0) => mtu.clamp(1500, 65535) - hlen,
            (Role::Backup, n) => (n as u32).clamp(1024, max),
        };
        Settings {
            role: req.role,
            ifname: req.ifname.chars().take(IFNAME_MAX).collect(),
            syncid: req.syncid,
            maxlen: maxlen as u16,
            group,
            port: if req.port == 0 { PORT } else { req.port },
            ttl: if req.ttl == 0 { 1 } else { req.ttl },
        }
    }

    /// ipvsadm 1.31's `-L --daemon` line.
    pub fn line(&self) -> String {
        format!(
            "{} sync daemon (mcast={}, syncid={}, maxlen={}, group={}, port={}, ttl={})\n",
            self.role.name(),
            self.ifname,
            self.syncid,
            self.maxlen,
            self.group,
            self.port,
            self.ttl
        )
    }

    /// Whether the group is a real multicast group (else: the unicast extension).
    pub fn multicast(&self) -> bool {
        self.group.is_multicast()
    }
}

/// The interface's index in the caller's network namespace (0: no such interface).
pub fn ifindex(name: &str) -> u32 {
    nix::net::if_::if_nametoindex(name).unwrap_or(0)
}

/// The interface's MTU (SIOCGIFMTU, so it answers for the caller's namespace, unlike /sys).
pub fn mtu(name: &str) -> std::io::Result<u32> {
    // SAFETY: socket takes no pointers; the descriptor is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: ifreq is plain bytes and integers: all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name.bytes().take(IFNAME_MAX)) {
        *d = s as libc::c_char;
    }
    // SAFETY: SIOCGIFMTU reads the NUL-terminated name (at most IFNAME_MAX bytes copied into a zeroed
    // // array) and writes ifru_mtu inside `req`, which outlives the call.
    let r = unsafe { libc::ioctl(fd, libc::SIOCGIFMTU as _, &mut req) };
    let e = std::io::Error::last_os_error();
    // SAFETY: `fd` is our socket from above, closed once.
    unsafe { libc::close(fd) };
    if r < 0 {
        return Err(e);
    }
    // SAFETY: SIOCGIFMTU succeeded, so the kernel wrote ifru_mtu, the union field read.
    Ok(unsafe { req.ifr_ifru.ifru_mtu } as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_clamps_follow_the_kernel() {
        // Figures from the ipvs-oracle (tests/golden/ipvsadm-daemon.txt).
        let m = Settings::resolve(&Request::new(Role::Master), 65536);
        assert_eq!(
            m.line(),
            "master sync daemon (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"
        );
        let mut b = Request::new(Role::Backup);
        b.ifname = "lo".into();
        assert_eq!(Settings::resolve(&b, 65536).maxlen, 65507);
        assert_eq!(Settings::resolve(&b, 1400).maxlen, 1472);
        b.maxlen = 10;
        assert_eq!(Settings::resolve(&b, 65536).maxlen, 1024);
        b.maxlen = 2000;
        b.group = Some("ff02::99".parse().unwrap());
        assert_eq!(Settings::resolve(&b, 65536).maxlen, 2000);
        let mut m = Request::new(Role::Master);
        m.maxlen = 100;
        m.ifname = "abcdefghijklmnopq".into();
        let s = Settings::resolve(&m, 1500);
        assert_eq!((s.maxlen, s.ifname.as_str()), (100, "abcdefghijklmno"));
    }
}
