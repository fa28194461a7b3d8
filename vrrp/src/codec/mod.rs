//! VRRP advertisement wire format (RFC 3768 v2, RFC 5798 v3) and keepalived's receive checks.
//!
//! Pure: no sockets. [`encode`] builds the VRRP message (the kernel adds the IP header);
//! [`parse_ipv4`] strips the IPv4 header a raw socket hands us; [`check`] applies keepalived's
//! rules (`vrrp_check_packet`) and returns the advert or the reason it was dropped, which the
//! caller counts in [`RxStats`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub mod ah;

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;
/// VRRP message type: advertisement (the only one).
pub const TYPE_ADVERT: u8 = 1;
/// Fixed header length.
pub const HEADER_LEN: usize = 8;
/// v2 over IPv4 always carries 8 bytes of authentication data.
pub const AUTH_LEN: usize = 8;
/// The IPv4 multicast group, used as pseudo-header destination by `old_unicast_checksum`.
pub const MCAST_GROUP4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 VRRP multicast group.
pub const MCAST_GROUP6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// v2 authentication types.
pub const AUTH_NONE: u8 = 0;
/// Clear-text password.
pub const AUTH_PASS: u8 = 1;
/// IPsec AH.
pub const AUTH_AH: u8 = 2;

/// An instance's v2 authentication (keepalived's `authentication` block).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Auth {
    /// No authentication.
    #[default]
    None,
    /// `auth_type PASS`: the 8 bytes in the advert's authentication data.
    Pass([u8; 8]),
    /// `auth_type AH`: the 8 bytes key an IPsec AH header's HMAC-MD5-96 ([`ah`]).
    Ah([u8; 8]),
}

impl Auth {
    /// The v2 header's auth type field.
    pub fn type_code(&self) -> u8 {
        match self {
            Auth::None => AUTH_NONE,
            Auth::Pass(_) => AUTH_PASS,
            Auth::Ah(_) => AUTH_AH,
        }
    }
}

/// One advertisement, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    /// 2 or 3.
    pub version: u8,
    /// Virtual router id.
    pub vrid: u8,
    /// The sender's priority (0: it is leaving).
    pub priority: u8,
    /// Advertisement interval in the version's unit: seconds (v2), centiseconds (v3).
    pub adver_int: u16,
    /// v2 only (0 for v3).
    pub auth_type: u8,
    /// v2 over IPv4 only: the 8 authentication bytes.
    pub auth_data: [u8; 8],
    /// The virtual addresses listed.
    pub addresses: Vec<IpAddr>,
}

impl Advert {
    /// The advertisement interval in centiseconds whatever the version.
    pub fn interval_cs(&self) -> u32 {
        if self.version == 2 {
            u32::from(self.adver_int) * 100
        } else {
            u32::from(self.adver_int)
        }
    }
}

/// Address family of the instance (decides address size and auth data presence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4 (VRRPv2 or v3).
    V4,
    /// IPv6 (VRRPv3).
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Family {
        if addr.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
    fn addr_len(self) -> usize {
        match self {
            Family::V4 => 4,
            Family::V6 => 16,
        }
    }
}

/// How the v3 checksum is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// RFC 5798: with the IP pseudo-header of the packet's real source and destination.
    Pseudo {
        /// The packet's source.
        src: IpAddr,
        /// The packet's destination.
        dst: IpAddr,
    },
    /// `v3_checksum_as_v2`: over the VRRP message only (also what v2 always does).
    MessageOnly,
}

/// Expected VRRP message length (keepalived's `expected_vrrp_pkt_len`, without AH).
pub fn expected_len(version: u8, family: Family, naddr: usize) -> usize {
    let auth = if version == 2 && family == Family::V4 {
        AUTH_LEN
    } else {
        0
    };
    HEADER_LEN + naddr * family.addr_len() + auth
}

/// Encodes `adv` (addresses must all be of `family`) with its checksum filled in.
pub fn encode(adv: &Advert, family: Family, csum: Checksum) -> Vec<u8> {
    let mut b = Vec::with_capacity(expected_len(adv.version, family, adv.addresses.len()));
    b.push((adv.version << 4) | TYPE_ADVERT);
    b.push(adv.vrid);
    b.push(adv.priority);
    b.push(adv.addresses.len() as u8);
    if adv.version == 2 {
        b.push(adv.auth_type);
        b.push(adv.adver_int as u8);
    } else {
        b.extend_from_slice(&(adv.adver_int & 0x0fff).to_be_bytes());
    }
    b.extend_from_slice(&[0, 0]);
    for a in &adv.addresses {
        match a {
            IpAddr::V4(a) => b.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => b.extend_from_slice(&a.octets()),
        }
    }
    if adv.version == 2 && family == Family::V4 {
        b.extend_from_slice(&adv.auth_data);
    }
    let sum = if adv.version == 2 {
        checksum(&b, None)
    } else {
        match csum {
            Checksum::Pseudo { src, dst } => checksum(&b, Some((src, dst))),
            Checksum::MessageOnly => checksum(&b, None),
        }
    };
    b[6..8].copy_from_slice(&sum.to_be_bytes());
    b
}

/// The 8 bytes of a PASS authentication: the first 8 characters, zero padded.
pub fn auth_pass_bytes(pass: &str) -> [u8; 8] {
    let mut out = [0u8; 8];
    for (o, c) in out.iter_mut().zip(pass.bytes()) {
        *o = c;
    }
    out
}

/// Internet checksum over `data`, with the IPv4/IPv6 pseudo-header for protocol 112 when given.
pub fn checksum(data: &[u8], pseudo: Option<(IpAddr, IpAddr)>) -> u16 {
    let mut sum: u64 = 0;
    if let Some((src, dst)) = pseudo {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                sum += add_bytes(&s.octets()) + add_bytes(&d.octets());
                sum += u64::from(IPPROTO_VRRP) + data.len() as u64;
            }
            (s, d) => {
                sum += add_bytes(&v6_octets(s)) + add_bytes(&v6_octets(d));
                sum += data.len() as u64 + u64::from(IPPROTO_VRRP);
            }
        }
    }
    sum += add_bytes(data);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn v6_octets(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

fn add_bytes(data: &[u8]) -> u64 {
    let mut sum = 0u64;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// What the IPv4 header of a received packet told us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpInfo {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6, from IPV6_HOPLIMIT ancillary data).
    pub ttl: u8,
}

/// Splits what an IPv4 raw socket returns into header facts and the VRRP message, which is cut
/// to the IP total length.
pub fn parse_ipv4(pkt: &[u8]) -> Result<(IpInfo, &[u8]), RxError> {
    if pkt.len() < 20 || pkt[0] >> 4 != 4 {
        return Err(RxError::TooShort);
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    if ihl < 20 || total < ihl || total > pkt.len() {
        return Err(RxError::TooShort);
    }
    if pkt[9] != IPPROTO_VRRP {
        return Err(RxError::NotVrrp);
    }
    let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
    let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
    Ok((
        IpInfo {
            src: src.into(),
            dst: dst.into(),
            ttl: pkt[8],
        },
        &pkt[ihl..total],
    ))
}

/// Why a received packet was dropped. Each has its counter in [`RxStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxError {
    /// Not even a VRRP header / broken IP header.
    TooShort,
    /// Not VRRP (protocol or version).
    NotVrrp,
    /// `vrrp packet too long|short, length %zu and expect %zu`.
    BadLength {
        /// Length received.
        got: usize,
        /// Length expected.
        expected: usize,
    },
    /// `invalid TTL/HL. Received %d and expect %d`.
    BadTtl(u8),
    /// `wrong version`.
    BadVersion(u8),
    /// `Invalid packet type`.
    BadType(u8),
    /// For another virtual router (not an error; counted apart).
    OtherVrid(u8),
    /// `received an unexpected ip number count`.
    AddressCount {
        /// Addresses in the advert.
        got: usize,
        /// Addresses configured.
        expected: usize,
    },
    /// `ip address associated with VRID not present in MASTER advert`.
    AddressMismatch,
    /// `Invalid VRRPv%d checksum`.
    BadChecksum,
    /// `received a %d auth, expecting %d!`.
    AuthType {
        /// Type received.
        got: u8,
        /// Type configured.
        expected: u8,
    },
    /// `received an invalid passwd!`.
    AuthPass,
    /// `advertisement interval mismatch mine=%u sec rcv'd=%d sec` (v2 only).
    IntervalMismatch {
        /// Own interval.
        mine: u16,
        /// Interval received.
        got: u16,
    },
    /// Unicast peer check (`check_unicast_src`): source not a configured peer.
    UnknownSource,
    /// `IPSEC-AH : invalid IPSEC HMAC-MD5 value` (or an SPI that is not the source).
    AhInvalid,
    /// `IPSEC-AH : sequence number %u already processed`.
    AhReplay,
}

impl RxError {
    /// keepalived's log text for this drop.
    pub fn message(&self) -> String {
        match self {
            RxError::TooShort => "ip/vrrp header too short".into(),
            RxError::NotVrrp => "not a VRRP packet".into(),
            RxError::BadLength { got, expected } => format!(
                "vrrp packet too {}, length {got} and expect {expected}",
                if got > expected { "long" } else { "short" }
            ),
            RxError::BadTtl(t) => format!("invalid TTL/HL. Received {t} and expect 255"),
            RxError::BadVersion(_) => "wrong version".into(),
            RxError::BadType(_) => "Invalid packet type".into(),
            RxError::OtherVrid(v) => format!("advert for VRID {v}"),
            RxError::AddressCount { .. } => "received an unexpected ip number count".into(),
            RxError::AddressMismatch => {
                "ip address associated with VRID not present in MASTER advert".into()
            }
            RxError::BadChecksum => "Invalid VRRP checksum".into(),
            RxError::AuthType { got, expected } => {
                format!("received a {got} auth, expecting {expected}!")
            }
            RxError::AuthPass => "received an invalid passwd!".into(),
            RxError::IntervalMismatch { mine, got } => {
                format!("advertisement interval mismatch mine={mine} sec rcv'd={got} sec")
            }
            RxError::UnknownSource => "advert from an address that is not a unicast peer".into(),
            RxError::AhInvalid => {
                "IPSEC-AH : invalid IPSEC HMAC-MD5 value. Due to fields mutation or bad password !"
                    .into()
            }
            RxError::AhReplay => {
                "IPSEC-AH : sequence number already processed. Packet dropped.".into()
            }
        }
    }

    fn index(&self) -> usize {
        match self {
            RxError::TooShort => 0,
            RxError::NotVrrp => 1,
            RxError::BadLength { .. } => 2,
            RxError::BadTtl(_) => 3,
            RxError::BadVersion(_) => 4,
            RxError::BadType(_) => 5,
            RxError::OtherVrid(_) => 6,
            RxError::AddressCount { .. } => 7,
            RxError::AddressMismatch => 8,
            RxError::BadChecksum => 9,
            RxError::AuthType { .. } => 10,
            RxError::AuthPass => 11,
            RxError::IntervalMismatch { .. } => 12,
            RxError::UnknownSource => 13,
            RxError::AhInvalid => 14,
            RxError::AhReplay => 15,
        }
    }
}

/// Counter names, in [`RxError`] index order.
pub const RX_ERROR_NAMES: [&str; 16] = [
    "too_short",
    "not_vrrp",
    "bad_length",
    "bad_ttl",
    "bad_version",
    "bad_type",
    "other_vrid",
    "address_count",
    "address_mismatch",
    "bad_checksum",
    "auth_type",
    "auth_pass",
    "interval_mismatch",
    "unknown_source",
    "ah_invalid",
    "ah_replay",
];

/// Receive counters of one instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RxStats {
    /// Adverts that passed every check.
    pub accepted: u64,
    /// Adverts dropped, by [`RxError`] index.
    pub dropped: [u64; 16],
}

impl RxStats {
    /// Counts one receive result.
    pub fn record<T>(&mut self, r: &Result<T, RxError>) {
        match r {
            Ok(_) => self.accepted += 1,
            Err(e) => self.dropped[e.index()] += 1,
        }
    }
    /// Drops for the reason named `name` ([`RX_ERROR_NAMES`]).
    pub fn dropped_for(&self, name: &str) -> u64 {
        RX_ERROR_NAMES
            .iter()
            .position(|n| *n == name)
            .map_or(0, |i| self.dropped[i])
    }
    /// Drops for every reason.
    pub fn total_dropped(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

/// What the receiving instance expects (from its configuration).
#[derive(Debug, Clone)]
pub struct RxExpect<'a> {
    /// VRRP version expected.
    pub version: u8,
    /// Address family expected.
    pub family: Family,
    /// Own virtual router id.
    pub vrid: u8,
    /// Own interval in the version's unit (checked for v2 only, as keepalived does).
    pub adver_int: u16,
    /// v2 authentication (AH's header was checked by [`ah::check`] before).
    pub auth: Auth,
    /// Unicast mode: the TTL 255 rule does not apply.
    pub unicast: bool,
    /// Addresses to compare with the advert's, unless `skip_check_adv_addr`.
    pub vips: Option<&'a [IpAddr]>,
    /// `v3_checksum_as_v2`.
    pub v3_checksum_as_v2: bool,
    /// Also accept a v3 checksum computed against 224.0.0.18 (`old_unicast_checksum`).
    pub old_unicast_checksum: bool,
}

/// Result of a successful check: the advert and whether only the old unicast checksum matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The advert.
    pub advert: Advert,
    /// Only the pre-2.2 unicast checksum matched.
    pub old_checksum: bool,
}

/// keepalived's receive checks, in its order. `msg` is the VRRP message (after the IP header).
pub fn check(msg: &[u8], ip: &IpInfo, exp: &RxExpect<'_>) -> Result<Checked, RxError> {
    if msg.len() < HEADER_LEN {
        return Err(RxError::TooShort);
    }
    let version = msg[0] >> 4;
    let naddr = usize::from(msg[3]);
    // keepalived computes the expected length from the received header and its own auth type.
    let expected = expected_len(version.clamp(2, 3), exp.family, naddr);
    if msg.len() != expected {
        return Err(RxError::BadLength {
            got: msg.len(),
            expected,
        });
    }
    if !exp.unicast && ip.ttl != 255 {
        return Err(RxError::BadTtl(ip.ttl));
    }
    if version != exp.version {
        return Err(RxError::BadVersion(version));
    }
    if msg[0] & 0x0f != TYPE_ADVERT {
        return Err(RxError::BadType(msg[0] & 0x0f));
    }
    if msg[1] != exp.vrid {
        return Err(RxError::OtherVrid(msg[1]));
    }
    let alen = exp.family.addr_len();
    let addresses: Vec<IpAddr> = msg[HEADER_LEN..HEADER_LEN + naddr * alen]
        .chunks_exact(alen)
        .map(|c| match exp.family {
            Family::V4 => IpAddr::from([c[0], c[1], c[2], c[3]]),
            Family::V6 => IpAddr::from(<[u8; 16]>::try_from(c).unwrap_or([0; 16])),
        })
        .collect();
    if let Some(vips) = exp.vips {
        if naddr != vips.len() {
            return Err(RxError::AddressCount {
                got: naddr,
                expected: vips.len(),
            });
        }
        if !vips.iter().all(|v| addresses.contains(v)) {
            return Err(RxError::AddressMismatch);
        }
    }
    let mut old_checksum = false;
    if version == 2 || exp.v3_checksum_as_v2 {
        if checksum(msg, None) != 0 {
            return Err(RxError::BadChecksum);
        }
    } else if checksum(msg, Some((ip.src, ip.dst))) != 0 {
        let old_dst = IpAddr::V4(MCAST_GROUP4);
        if exp.unicast
            && exp.family == Family::V4
            && exp.old_unicast_checksum
            && checksum(msg, Some((ip.src, old_dst))) == 0
        {
            old_checksum = true;
        } else {
            return Err(RxError::BadChecksum);
        }
    }
    let mut auth_data = [0u8; 8];
    let (auth_type, adver_int) = if version == 2 {
        (msg[4], u16::from(msg[5]))
    } else {
        (0, u16::from_be_bytes([msg[4], msg[5]]) & 0x0fff)
    };
    if version == 2 {
        let want = exp.auth.type_code();
        if auth_type != want {
            return Err(RxError::AuthType {
                got: auth_type,
                expected: want,
            });
        }
        if exp.family == Family::V4 {
            auth_data.copy_from_slice(&msg[msg.len() - AUTH_LEN..]);
        }
        if let Auth::Pass(pass) = exp.auth
            && auth_data != pass
        {
            return Err(RxError::AuthPass);
        }
        if adver_int != exp.adver_int {
            return Err(RxError::IntervalMismatch {
                mine: exp.adver_int,
                got: adver_int,
            });
        }
    }
    Ok(Checked {
        advert: Advert {
            version,
            vrid: msg[1],
            priority: msg[2],
            adver_int,
            auth_type,
            auth_data,
            addresses,
        },
        old_checksum,
    })
}

#[cfg(test)]
mod tests;
