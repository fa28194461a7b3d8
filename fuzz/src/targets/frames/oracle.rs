//! What the packet path may do with a frame, from ARCHITECTURE.md's "How a packet travels" and
//! the packet path's module docs, checked against what it did: the verdict, the frame it
//! emitted, and the counters it moved.

use ebpf_common::counter as c;

use super::bed::Bed;
use super::wire::{self, ACK, Frag, ICMP, ICMPV6, Parsed, RST, SYN, TCP, UDP};

pub const XDP_ABORTED: u32 = 0;
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;
pub const XDP_REDIRECT: u32 = 4;

/// Counters that say a packet was dropped.
const DROPPED: &[u32] = &[
    c::DROP_NO_SESSION,
    c::DROP_NO_DEST,
    c::DROP_UNSUPPORTED,
    c::DROP_NO_NEIGH,
    c::DROP_TOO_BIG,
    c::DROP_NO_LADDR,
    c::DROP_LADDR_EXHAUSTED,
    c::DROP_FRAGMENT,
    c::DROP_NO_SERVICE,
    c::SYNPROXY_BAD_COOKIE,
    c::DROP_DENIED,
    c::SYNPROXY_BAD_OPTIONS,
    c::SYNPROXY_DEFERRED,
    c::DROP_INVALID,
    c::DROP_TABLE_FULL,
];

/// Counters that say a packet was sent back out (forwarded, or an answer of ours).
const SENT: &[u32] = &[
    c::FWD_TX,
    c::FWD_REDIRECT,
    c::RST_SENT,
    c::SYNPROXY_COOKIE_SENT,
    c::SYNPROXY_OPENED,
    c::SYNPROXY_ESTABLISHED,
    c::SYNPROXY_SYN_RESENT,
    c::SYNPROXY_REAL_TW_RESET,
    c::ICMP_TRANSLATED,
    c::ICMP_TOO_BIG_SENT,
    c::FWD_TUNNEL,
    c::FRAG_FORWARDED,
];

/// Counters that say a packet went to the kernel untouched.
const PASSED: &[u32] = &[
    c::PASS_NOT_VIP,
    c::PASS_MALFORMED,
    c::PASS_FRAGMENT,
    c::PASS_IPV6_EXT,
    c::PASS_TTL,
    c::FRAG_UNTRACKED,
    c::FRAG_REFUSED,
];

/// Counters that say a rewritten packet went to the kernel.
const HANDED_OVER: &[u32] = &[c::FWD_KERNEL, c::TUN_KERNEL_FRAG, c::PASS_LOCAL];

/// One frame's run.
pub struct Run<'a> {
    pub input: &'a [u8],
    pub parsed: &'a Parsed,
    /// Whether the frame's flow had a connection entry before the run.
    pub had_conn: bool,
    pub action: u32,
    pub output: &'a [u8],
    /// Counters that increased.
    pub moved: &'a [u32],
}

impl Run<'_> {
    fn untouched(&self) -> bool {
        self.action == XDP_PASS && self.output == self.input
    }

    fn forwarded(&self) -> bool {
        matches!(self.action, XDP_TX | XDP_REDIRECT)
            || (self.action == XDP_PASS && !self.untouched())
    }

    fn moved_any(&self, class: &[u32]) -> bool {
        self.moved.iter().any(|m| class.contains(m))
    }
}

/// Every property of one run; the first that fails, described.
pub fn check(bed: &Bed, r: &Run) -> Result<(), String> {
    if !matches!(r.action, XDP_DROP | XDP_PASS | XDP_TX | XDP_REDIRECT) {
        return Err(format!("action {}", r.action));
    }
    counters(r)?;
    if r.forwarded() {
        never_forward_invalid(r)?;
        well_formed(r)?;
    }
    documented_verdict(bed, r)
}

/// The counters say what happened to the packet.
fn counters(r: &Run) -> Result<(), String> {
    let ok = match r.action {
        XDP_DROP => r.moved_any(DROPPED),
        XDP_TX | XDP_REDIRECT => r.moved_any(SENT),
        _ if r.untouched() => r.moved_any(PASSED) && !r.moved_any(SENT),
        _ => r.moved_any(HANDED_OVER),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "action {} (output {}) but counters moved: {:?}",
            r.action,
            if r.untouched() {
                "untouched"
            } else {
                "changed"
            },
            r.moved
        ))
    }
}

/// Unparsable or invalid frames are never forwarded.
fn never_forward_invalid(r: &Run) -> Result<(), String> {
    let why = match r.parsed {
        Parsed::Malformed(why) => Some(*why),
        Parsed::NotIp => Some("not IP"),
        Parsed::Transport(ip, _) | Parsed::Other(ip) if !ip.header_ok => {
            Some("IPv4 header checksum")
        }
        Parsed::Transport(ip, l4) if ip.v6 && l4.udp_zero => Some("IPv6 UDP checksum 0"),
        _ => None,
    };
    match why {
        Some(why) => Err(format!(
            "forwarded (action {}) an invalid frame: {why}",
            r.action
        )),
        None => Ok(()),
    }
}

/// A frame that leaves is well-formed: its headers parse, its IPv4 header checksum is right, its
/// transport checksum is right whenever the input's was (rewrites carry an error on, never make
/// one), and a packet we make ourselves (an answer to the sender) is right in any case.
fn well_formed(r: &Run) -> Result<(), String> {
    let out = wire::parse(r.output);
    let ip = match &out {
        Parsed::Transport(ip, _) | Parsed::Other(ip) => ip,
        other => return Err(format!("emitted an unparsable frame: {other:?}")),
    };
    if !ip.header_ok {
        return Err("emitted an IPv4 header with a wrong checksum".into());
    }
    if ip.ttl == 0 {
        return Err("emitted a packet with TTL 0".into());
    }
    let input_ip = r.parsed.ip().expect("checked: forwarded frames were IP");
    let answer = ip.dst == input_ip.src && ip.src == input_ip.dst;
    match (&out, r.parsed) {
        (Parsed::Transport(_, o), Parsed::Transport(_, i)) => {
            if o.checksum_ok == Some(false) && (answer || i.checksum_ok == Some(true)) {
                return Err(format!(
                    "emitted a {} checksum that is wrong (the input's was {:?})",
                    if ip.proto == TCP { "TCP" } else { "UDP" },
                    i.checksum_ok
                ));
            }
            if ip.v6 && o.udp_zero {
                return Err("emitted an IPv6 UDP datagram with checksum 0".into());
            }
        }
        (Parsed::Transport(_, o), _) if o.checksum_ok == Some(false) => {
            return Err("made a TCP/UDP packet with a wrong checksum".into());
        }
        _ => {}
    }
    if matches!(ip.proto, ICMP | ICMPV6) && ip.frag == Frag::No {
        let input_icmp_ok = match r.parsed {
            Parsed::Other(i) if matches!(i.proto, ICMP | ICMPV6) => {
                wire::icmp_checksum_ok(r.input, i)
            }
            _ => true,
        };
        if input_icmp_ok && !wire::icmp_checksum_ok(r.output, ip) {
            return Err("emitted an ICMP message with a wrong checksum".into());
        }
    }
    // A tunnel: the inner packet is checked the same way.
    let inner = match (ip.proto, ip.v6) {
        (4, _) | (41, _) => Some(ip.l4_off),
        (47, _) => Some(ip.l4_off + 4),
        _ => None,
    };
    if let Some(at) = inner {
        let mut frame = r.output[..14].to_vec();
        frame[12..14].copy_from_slice(match r.output.get(at).map(|b| b >> 4) {
            Some(6) => &[0x86, 0xdd],
            _ => &[0x08, 0x00],
        });
        frame.extend_from_slice(&r.output[at.min(ip.end)..ip.end]);
        return well_formed(&Run {
            output: &frame,
            ..*r
        });
    }
    Ok(())
}

/// The verdicts the documentation states for frames whose fate does not depend on state we do
/// not model: the frame alone, the bed's services, and whether its flow had a connection.
fn documented_verdict(bed: &Bed, r: &Run) -> Result<(), String> {
    let expect = |cond: bool, what: &str| {
        if cond {
            Ok(())
        } else {
            Err(format!(
                "{what}, but the action was {} (output {})",
                r.action,
                if r.untouched() {
                    "untouched"
                } else {
                    "changed"
                }
            ))
        }
    };
    let (ip, l4) = match r.parsed {
        Parsed::Malformed(_) | Parsed::NotIp => {
            return expect(r.untouched(), "unparsable: passed untouched");
        }
        Parsed::Other(ip) => {
            if matches!(ip.proto, ICMP | ICMPV6) && ip.frag == Frag::No {
                return Ok(()); // ICMP errors are translated by connection state.
            }
            if !bed.could_be_ours(&ip.src, &ip.dst) {
                return expect(
                    r.untouched(),
                    "not for a VIP nor from a real: passed untouched",
                );
            }
            return Ok(());
        }
        Parsed::Transport(ip, l4) => (ip, l4),
    };
    if !bed.could_be_ours(&ip.src, &ip.dst) {
        return expect(
            r.untouched(),
            "not for a VIP nor from a real: passed untouched",
        );
    }
    let invalid = !ip.header_ok || (ip.v6 && l4.udp_zero);
    if invalid {
        if bed.is_vip(&ip.dst) && ip.frag == Frag::No {
            return expect(
                r.action == XDP_DROP,
                "invalid and for a VIP: dropped (drop_invalid)",
            );
        }
        return expect(
            r.action == XDP_DROP || r.untouched(),
            "invalid: dropped or passed untouched",
        );
    }
    if r.had_conn || ip.frag != Frag::No || !bed.is_vip(&ip.dst) {
        return Ok(());
    }
    let Some(svc) = bed.service(ip.proto, &ip.dst, l4.dport) else {
        return expect(
            r.untouched(),
            "a VIP port without a service: passed untouched",
        );
    };
    if ip.ttl <= 1 {
        return expect(
            r.untouched(),
            "TTL 1: passed untouched for the kernel's ICMP",
        );
    }
    if ip.proto == UDP {
        return match svc.reals.is_empty() {
            true => expect(r.action == XDP_DROP, "no real server: dropped"),
            false => to_a_real(bed, r, svc),
        };
    }
    let bare_syn = l4.flags & (SYN | ACK | RST | wire::FIN) == SYN;
    if svc.synproxy {
        if bare_syn && !ip.options && !l4.options_ok {
            return expect(
                r.action == XDP_DROP,
                "a SYN with malformed options to a SYNPROXY service: dropped",
            );
        }
        if bare_syn && !ip.options {
            return answered(
                r,
                ip,
                l4,
                "a SYN to a SYNPROXY service: answered with a cookie",
            );
        }
        // Not a real's business until a cookie checks out.
        return expect(
            r.action == XDP_DROP || (r.action == XDP_TX && answer_to(r, ip)),
            "a SYNPROXY service's segment without a session: dropped or answered",
        );
    }
    if !bare_syn {
        if l4.flags & (ACK | RST) == ACK && !ip.options {
            answered(
                r,
                ip,
                l4,
                "a segment with ACK and no session: answered with a RST",
            )?;
            let Parsed::Transport(_, out) = wire::parse(r.output) else {
                return Err("the RST does not parse".into());
            };
            return expect(
                out.flags & RST != 0 && out.seq == l4.ack,
                "the RST carries the acknowledged number",
            );
        }
        return expect(r.action == XDP_DROP, "a segment without a session: dropped");
    }
    if svc.reals.is_empty() {
        return expect(r.action == XDP_DROP, "no real server: dropped");
    }
    to_a_real(bed, r, svc)
}

fn answer_to(r: &Run, ip: &wire::Ip) -> bool {
    wire::parse(r.output)
        .ip()
        .is_some_and(|o| o.dst == ip.src && o.src == ip.dst)
}

fn answered(r: &Run, ip: &wire::Ip, l4: &wire::L4, what: &str) -> Result<(), String> {
    let Parsed::Transport(o, ol4) = wire::parse(r.output) else {
        return Err(format!(
            "{what}, but the output does not parse (action {})",
            r.action
        ));
    };
    if r.action != XDP_TX
        || o.src != ip.dst
        || o.dst != ip.src
        || ol4.sport != l4.dport
        || ol4.dport != l4.sport
    {
        return Err(format!(
            "{what}, but the action was {} with {}:{} -> {}:{}",
            r.action, o.src, ol4.sport, o.dst, ol4.dport
        ));
    }
    Ok(())
}

/// A new connection's first packet goes to one of the service's reals.
fn to_a_real(bed: &Bed, r: &Run, svc: &super::bed::Service) -> Result<(), String> {
    if r.action != XDP_TX {
        return Err(format!(
            "a new connection to {}: sent to a real, but the action was {}",
            svc.name, r.action
        ));
    }
    let out = wire::parse(r.output);
    let Some(o) = out.ip() else {
        return Err("the forwarded frame does not parse".into());
    };
    let dst_mac: [u8; 6] = r.output[..6].try_into().expect("frame");
    let reached = svc.reals.iter().any(|real| match svc.forward {
        // DR: only the MAC changes.
        super::bed::Method::Dr => bed.mac_of(real) == Some(dst_mac),
        _ => o.dst == *real,
    });
    if !reached {
        return Err(format!(
            "a new connection to {} went to {} ({dst_mac:02x?}), not one of its reals {:?}",
            svc.name, o.dst, svc.reals
        ));
    }
    Ok(())
}
