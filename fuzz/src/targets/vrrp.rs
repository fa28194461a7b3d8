//! The VRRP receive path (`vrrp::codec`): an IPv4 packet as a raw socket hands it over (for
//! IPv6 instances the bytes after the IPv4 header are the VRRP message, as an IPv6 raw socket
//! gives it), checked against every combination of what an instance may expect. Properties: no
//! panic; an accepted advertisement, encoded again, is accepted again as the same advertisement
//! (what we send is what we accept).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use vrrp::codec::{self, Checksum, Family, IpInfo, RxExpect};

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

/// Every receive configuration worth telling apart.
fn expectations() -> Vec<RxExpect<'static>> {
    let mut out = Vec::new();
    for bits in 0u32..128 {
        let bit = |n: u32| bits & (1 << n) != 0;
        let family = if bit(1) { Family::V6 } else { Family::V4 };
        out.push(RxExpect {
            version: if bit(0) { 3 } else { 2 },
            family,
            vrid: 51,
            adver_int: if bit(0) { 100 } else { 1 },
            auth_pass: bit(2).then(|| codec::auth_pass_bytes("secret")),
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
        let (ip, msg) = match exp.family {
            Family::V4 => match &v4 {
                Ok((ip, msg)) => (*ip, *msg),
                Err(e) => {
                    sig.push(e.message().len() as u64);
                    continue;
                }
            },
            Family::V6 => (v6_info, input.get(20..).unwrap_or_default()),
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
        let again = codec::encode(&checked.advert, exp.family, csum);
        match codec::check(&again, &ip, &exp) {
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
