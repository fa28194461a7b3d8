//! `auth_type AH`: VRRPv2 over IPv4 carried in an IPsec AH header (RFC 2402), as keepalived
//! sends it: IP protocol 51, next header 112, SPI = the sender's address, a sequence number,
//! and an ICV of HMAC-MD5-96 keyed with the 8 password bytes over the IP header (TOS,
//! fragment offset and checksum zeroed, and the TTL too in unicast mode), the AH header with
//! a zero ICV, and the VRRP message. keepalived builds the IP header itself (its own IP id),
//! so the ICV covers exactly what is sent. Pure.

use std::net::{IpAddr, Ipv4Addr};

use hmac::{Hmac, Mac};
use md5::Md5;

use super::{IPPROTO_VRRP, IpInfo, RxError};

/// IP protocol number of IPsec AH.
pub const IPPROTO_AH: u8 = 51;
/// The AH header keepalived sends: 12 fixed bytes and a 96-bit ICV.
pub const AH_LEN: usize = 24;
/// Payload length field: (AH length in 32-bit words) - 2.
const AH_PLEN: u8 = 4;
const ICV_LEN: usize = 12;
const IPV4_HEADER: usize = 20;

/// One AH-protected advert about to be sent.
#[derive(Debug, Clone, Copy)]
pub struct AhSend<'a> {
    /// Source address of the IP header.
    pub src: Ipv4Addr,
    /// Destination address of the IP header.
    pub dst: Ipv4Addr,
    /// Non-zero: the kernel would replace a zero id after the ICV was computed.
    pub ip_id: u16,
    /// TTL of the IP header.
    pub ttl: u8,
    /// AH sequence number.
    pub seq: u32,
    /// The authentication password (HMAC key).
    pub key: &'a [u8; 8],
    /// Unicast mode: the TTL is a mutable field (routers may change it).
    pub unicast: bool,
}

/// The whole IPv4 packet (header, AH, VRRP message) for an IP_HDRINCL socket.
pub fn encode(s: &AhSend<'_>, vrrp_msg: &[u8]) -> Vec<u8> {
    let total = IPV4_HEADER + AH_LEN + vrrp_msg.len();
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[0x45, 0xc0]);
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&s.ip_id.to_be_bytes());
    p.extend_from_slice(&[0, 0, s.ttl, IPPROTO_AH, 0, 0]);
    p.extend_from_slice(&s.src.octets());
    p.extend_from_slice(&s.dst.octets());
    p.extend_from_slice(&[IPPROTO_VRRP, AH_PLEN, 0, 0]);
    p.extend_from_slice(&s.src.octets());
    p.extend_from_slice(&s.seq.to_be_bytes());
    p.extend_from_slice(&[0; ICV_LEN]);
    p.extend_from_slice(vrrp_msg);
    let icv = icv(&p, IPV4_HEADER, s.key, s.unicast);
    p[IPV4_HEADER + 12..IPV4_HEADER + AH_LEN].copy_from_slice(&icv);
    let sum = super::checksum(&p[..IPV4_HEADER], None);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p
}

/// The ICV of `pkt` (an IPv4 packet whose AH header starts at `ihl`), computed with the
/// mutable fields and the ICV itself zeroed.
fn icv(pkt: &[u8], ihl: usize, key: &[u8; 8], unicast: bool) -> [u8; ICV_LEN] {
    let mut ip = pkt[..ihl].to_vec();
    ip[1] = 0; // TOS
    ip[6] = 0; // flags + fragment offset
    ip[7] = 0;
    ip[10] = 0; // header checksum
    ip[11] = 0;
    if unicast {
        ip[8] = 0; // TTL
    }
    let mut ah = [0u8; AH_LEN];
    ah[..12].copy_from_slice(&pkt[ihl..ihl + 12]);
    let mut mac = <Hmac<Md5> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(&ip);
    mac.update(&ah);
    mac.update(&pkt[ihl + AH_LEN..]);
    let digest = mac.finalize().into_bytes();
    let mut out = [0u8; ICV_LEN];
    out.copy_from_slice(&digest[..ICV_LEN]);
    out
}

/// A received AH packet that passed the ICV and SPI checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AhReceived<'a> {
    /// What the IP header said.
    pub ip: IpInfo,
    /// AH sequence number.
    pub seq: u32,
    /// The VRRP message behind the AH header.
    pub msg: &'a [u8],
}

/// keepalived's checks of an IPv4 packet for an `auth_type AH` instance, up to and including
/// `vrrp_in_chk_ipsecah` without its sequence number test (the caller holds the counter):
/// protocol AH (else `AuthType`), lengths, next header VRRP (else `NotVrrp`), ICV, SPI.
pub fn check<'a>(pkt: &'a [u8], key: &[u8; 8], unicast: bool) -> Result<AhReceived<'a>, RxError> {
    if pkt.len() < IPV4_HEADER || pkt[0] >> 4 != 4 {
        return Err(RxError::TooShort);
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    if ihl < IPV4_HEADER || total < ihl || total > pkt.len() {
        return Err(RxError::TooShort);
    }
    if pkt[9] != IPPROTO_AH {
        // "No AH header but auth type is AH"
        return Err(RxError::AuthType {
            got: super::AUTH_NONE,
            expected: super::AUTH_AH,
        });
    }
    let pkt = &pkt[..total];
    if pkt.len() < ihl + AH_LEN + super::HEADER_LEN {
        return Err(RxError::TooShort);
    }
    if pkt[ihl] != IPPROTO_VRRP {
        // An AH header for another protocol: not ours.
        return Err(RxError::NotVrrp);
    }
    let ip = IpInfo {
        src: IpAddr::V4(Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15])),
        dst: IpAddr::V4(Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19])),
        ttl: pkt[8],
    };
    let got = &pkt[ihl + 12..ihl + AH_LEN];
    let want = icv(pkt, ihl, key, unicast);
    // Constant time, as keepalived's memcmp_constant_time.
    if got
        .iter()
        .zip(want.iter())
        .fold(0u8, |a, (x, y)| a | (x ^ y))
        != 0
    {
        return Err(RxError::AhInvalid);
    }
    if pkt[ihl + 4..ihl + 8] != pkt[12..16] {
        return Err(RxError::AhInvalid);
    }
    let seq = u32::from_be_bytes([pkt[ihl + 8], pkt[ihl + 9], pkt[ihl + 10], pkt[ihl + 11]]);
    Ok(AhReceived {
        ip,
        seq,
        msg: &pkt[ihl + AH_LEN..],
    })
}

/// keepalived's anti-replay counter (`ipsecah_counter`): one per instance, shared by what it
/// sends and what it accepts, so a backup that becomes master continues from the last
/// sequence number it saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqCounter {
    /// The last sequence number sent (or seen).
    pub seq: u32,
    /// Set when the counter would pass 0xFFFFFFFD: adverts stop until reset.
    pub cycle: bool,
}

impl SeqCounter {
    /// The sequence number of the next advert sent (keepalived stops counting at 0xFFFFFFFD).
    pub fn next_tx(&mut self) -> u32 {
        if self.seq > 0xFFFF_FFFD {
            self.cycle = true;
        } else {
            self.seq += 1;
        }
        self.seq
    }

    /// A received sequence number: accepted only when newer than everything seen or sent.
    pub fn accept_rx(&mut self, seq: u32) -> Result<(), RxError> {
        if seq > self.seq {
            self.seq = seq;
            Ok(())
        } else {
            Err(RxError::AhReplay)
        }
    }

    /// On becoming master after the counter cycled (keepalived's reset).
    pub fn reset_if_cycled(&mut self) {
        if self.cycle {
            *self = SeqCounter::default();
        }
    }
}
