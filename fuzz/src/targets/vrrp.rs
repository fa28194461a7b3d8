//! The VRRP receive path (`vrrp::codec`, with `codec::ah` for `auth_type AH`): an IPv4 packet
//! as a raw socket hands it over (for IPv6 instances the bytes after the IPv4 header are the
//! VRRP message, as an IPv6 raw socket gives it), checked against every combination of what an
//! instance may expect. Properties: no panic; an accepted advertisement, encoded again (in AH
//! too), is accepted again as the same advertisement (what we send is what we accept).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use vrrp::codec::{self, Auth, Checksum, Family, IpInfo, RxExpect, ah};

use crate::engine::{Outcome, Target, mutate_bytes};

pub const TARGET: Target = Target {
    name: "vrrp",
    mutator: mutate_bytes,
    dict: &[
        &[0x21],
        &[0x31],
        &[112],
        &[255],
        &[224, 0, 0, 18],
        b"secret\0\0",
    ],
    max_len: 1500,
    secs: 8.0,
    seeds: &[],
};

const VIPS4: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(198, 18, 100, 1)),
    IpAddr::V4(Ipv4Addr::new(198, 18, 100, 2)),
];
const VIPS6: [IpAddr; 1] = [IpAddr::V6(Ipv6Addr::new(
    0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 1,
))];

const KEY: [u8; 8] = *b"secret\0\0";

/// Every receive configuration worth telling apart.
fn expectations() -> Vec<RxExpect<'static>> {
    let mut out = Vec::new();
    for bits in 0u32..256 {
        let bit = |n: u32| bits & (1 << n) != 0;
        let family = if bit(1) { Family::V6 } else { Family::V4 };
        out.push(RxExpect {
            version: if bit(0) { 3 } else { 2 },
            family,
            vrid: 51,
            adver_int: if bit(0) { 100 } else { 1 },
            auth: match (bit(2), bit(7)) {
                (false, false) => Auth::None,
                (true, false) => Auth::Pass(KEY),
                (_, true) => Auth::Ah(KEY),
            },
            unicast: bit(3),
            vips: bit(4).then_some(match family {
                Family::V4 => &VIPS4[..],
                Family::V6 => &VIPS6[..],
            }),
            v3_checksum_as_v2: bit(5),
            old_unicast_checksum: bit(6),
        });
    }
    out
}

pub fn run(input: &[u8]) -> Outcome {
    let mut sig = Vec::new();
    let v6_info = IpInfo {
        src: "fe80::1".parse().expect("address"),
        dst: IpAddr::V6(codec::MCAST_GROUP6),
        ttl: 255,
    };
    let v4 = codec::parse_ipv4(input);
    for exp in expectations() {
        let received = match (exp.family, exp.auth) {
            (Family::V4, Auth::Ah(key)) => {
                ah::check(input, &key, exp.unicast).map(|r| (r.ip, r.msg, Some(r.seq)))
            }
            (Family::V4, _) => v4.map(|(ip, msg)| (ip, msg, None)),
            (Family::V6, _) => Ok((v6_info, input.get(20..).unwrap_or_default(), None)),
        };
        let (ip, msg, ah_seq) = match received {
            Ok(r) => r,
            Err(e) => {
                sig.push(e.message().len() as u64);
                continue;
            }
        };
        let checked = match codec::check(msg, &ip, &exp) {
            Ok(c) => c,
            Err(e) => {
                sig.push(e.message().len() as u64);
                continue;
            }
        };
        sig.push(1000 + checked.advert.addresses.len() as u64);
        let csum = if checked.old_checksum {
            Checksum::Pseudo {
                src: ip.src,
                dst: IpAddr::V4(codec::MCAST_GROUP4),
            }
        } else if checked.advert.version == 3 && !exp.v3_checksum_as_v2 {
            Checksum::Pseudo {
                src: ip.src,
                dst: ip.dst,
            }
        } else {
            Checksum::MessageOnly
        };
        let mut again = codec::encode(&checked.advert, exp.family, csum);
        let mut ip_again = ip;
        if let (Some(seq), Auth::Ah(key), IpAddr::V4(src), IpAddr::V4(dst)) =
            (ah_seq, exp.auth, ip.src, ip.dst)
        {
            let packet = ah::encode(
                &ah::AhSend {
                    src,
                    dst,
                    ip_id: u16::from_be_bytes([input[4], input[5]]).max(1),
                    ttl: ip.ttl,
                    seq,
                    key: &key,
                    unicast: exp.unicast,
                },
                &again,
            );
            match ah::check(&packet, &key, exp.unicast) {
                Ok(r) => {
                    ip_again = r.ip;
                    again = r.msg.to_vec();
                }
                Err(e) => {
                    return Err(format!(
                        "accepted {:?} but its AH encoding {packet:02x?} checks as {e:?}",
                        checked.advert
                    ));
                }
            }
        }
        match codec::check(&again, &ip_again, &exp) {
            Ok(c) if c == checked => {}
            other => {
                return Err(format!(
                    "accepted {:?} but its encoding {again:02x?} checks as {other:?} ({exp:?})",
                    checked.advert
                ));
            }
        }
    }
    Ok(super::signature(&sig))
}
