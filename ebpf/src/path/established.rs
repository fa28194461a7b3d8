//! Packets of a known connection, both ways: track the TCP state, count, rewrite and forward.
//! Send-to-real (`to_real`) and send-to-client (`to_client_path`) are written once here, for
//! the established paths, a connection's first packet (`xlvs_fwd`), TOA and SYNPROXY's
//! translation.

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use ebpf_common::{
    CONN_F_REPLY, CONN_F_SEQADJ, CONN_F_SYNCED, Conn, FWD_DROUTE, FWD_FULLNAT, FWD_MASQ,
    FWD_TUNNEL, SP_SACK, SP_TS, ServiceKey, Stage, client_key_at, config, counter, nh_stamp,
};

use crate::conncount;
use crate::forward::{self, Flow, Hop, NhSlot};
use crate::maps::{CONNS, DEST_NH, count, setting};
use crate::nat::{self, End};
use crate::parse::{self, Packet, ptr_at};
use crate::proto::{IPPROTO_TCP, TCP_ACK, TCP_ACK_SEQ, TCP_FIN, TCP_RST, TCP_SEQ, TCP_SYN};
use crate::seqadj;
use crate::stage::jump;
use crate::state::{self, Dir};
use crate::stats;
use crate::tcpopt;
use crate::toa;
use crate::tunnel;

/// client -> real: track state, count, rewrite the destination, forward.
/// `adjusted`: SYNPROXY's translation (seqadj.rs) is done; otherwise a SYNPROXY connection's
/// segment goes to `xlvs_seqadj` for it, which comes back here.
#[inline(always)]
pub fn to_real_path(
    ctx: &XdpContext,
    pkt: &Packet,
    conn: &mut Conn,
    now: u64,
    adjusted: bool,
) -> u32 {
    if conn.flags & CONN_F_SEQADJ != 0 && !adjusted {
        return jump(ctx, Stage::Seqadj);
    }
    track(conn, pkt, dir_in(conn.fwd));
    conn.last_seen = now;
    // Seen here now: a sync master may announce it again (ebpf_common::CONN_F_SYNCED).
    conn.flags &= !CONN_F_SYNCED;
    stats::traffic(conn.svc_id, conn.dest_id, pkt, Dir::In);
    to_real(ctx, pkt, conn, now)
}

/// IPVS tracks connections whose replies bypass us with its INPUT-ONLY table.
#[inline(always)]
pub fn dir_in(fwd: u8) -> Dir {
    if fwd == FWD_MASQ || fwd == FWD_FULLNAT {
        Dir::In
    } else {
        Dir::InOnly
    }
}

/// Sends a client packet to the connection's real server: NAT rewrites the destination and
/// routes; FULLNAT also replaces the source with the local address; DR keeps the packet (still
/// addressed to the VIP) and only changes the MACs to the real server's; TUN encapsulates (in
/// `xlvs_tunnel`, see tunnel.rs); Local hands it to this host's stack.
#[inline(always)]
pub fn to_real(ctx: &XdpContext, pkt: &Packet, conn: &Conn, now: u64) -> u32 {
    let (daddr, dport) = (conn.to_addr, conn.to_port);
    let (mut saddr, mut sport) = (pkt.src, pkt.sport);
    let hop = match conn.fwd {
        FWD_MASQ => {
            if !nat::rewrite(ctx, pkt, End::Destination, &daddr, dport) {
                return xdp_action::XDP_PASS;
            }
            Hop::Routed
        }
        FWD_FULLNAT => {
            (saddr, sport) = (conn.via_addr, conn.via_port);
            if !nat::rewrite(ctx, pkt, End::Destination, &daddr, dport)
                || !nat::rewrite(ctx, pkt, End::Source, &saddr, sport)
            {
                return xdp_action::XDP_PASS;
            }
            Hop::Routed
        }
        FWD_DROUTE => Hop::Bridged,
        // In its own program (tail call): see tunnel.rs.
        FWD_TUNNEL => return tunnel::prepare(conn, now),
        _ => {
            count(counter::PASS_LOCAL);
            return xdp_action::XDP_PASS;
        }
    };
    let flow = Flow {
        saddr,
        daddr,
        sport,
        dport,
    };
    // SAFETY: `p` is a map value pointer from get_ptr_mut: non-null, aligned and valid for this
    // program run.
    let nh = DEST_NH
        .get_ptr_mut(conn.dest_id)
        .map(|p| NhSlot::of(unsafe { &mut *p }));
    forward::send(ctx, pkt, &flow, nh, nh_stamp(now), hop)
}

/// real -> client: count, put the VIP back as source, forward. `entry` is the REPLY entry, or
/// the CLIENT entry of a one-entry connection (`owner`: its real's owner, the VIP:vport the
/// reply comes from; see one_entry.rs). TCP flags that can change the connection's state (SYN,
/// FIN, RST) are applied to the CLIENT entry, which holds it.
#[inline(always)]
pub fn to_client_path(
    ctx: &XdpContext,
    pkt: &Packet,
    entry: &mut Conn,
    owner: Option<&ServiceKey>,
    now: u64,
    adjusted: bool,
) -> u32 {
    if entry.flags & CONN_F_SEQADJ != 0 && !adjusted {
        return jump(ctx, Stage::Seqadj);
    }
    entry.last_seen = now;
    let moves = pkt.proto == IPPROTO_TCP && pkt.tcp_flags & (TCP_SYN | TCP_FIN | TCP_RST) != 0;
    let (vaddr, vport) = match owner {
        Some(owner) => {
            if moves {
                track(entry, pkt, Dir::Out);
            }
            (owner.addr, owner.port)
        }
        None => {
            if moves {
                let client_key = client_key_at(entry, pkt.proto, &pkt.dst, pkt.dport);
                if let Some(client) = CONNS.get_ptr_mut(&client_key) {
                    // SAFETY: a map value pointer from get_ptr_mut: non-null, aligned and valid
                    // for this program run.
                    let client = unsafe { &mut *client };
                    track(client, pkt, Dir::Out);
                    client.last_seen = now;
                    if entry.fwd == FWD_FULLNAT
                        && pkt.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK
                    {
                        note_server_isn(ctx, pkt, client);
                    }
                }
            }
            (entry.to_addr, entry.to_port)
        }
    };
    stats::traffic(entry.svc_id, entry.dest_id, pkt, Dir::Out);
    if !nat::rewrite(ctx, pkt, End::Source, &vaddr, vport) {
        return xdp_action::XDP_PASS;
    }
    // FULLNAT: the destination (our local address) becomes the client again.
    let (mut caddr, mut cport) = (pkt.dst, pkt.dport);
    if entry.fwd == FWD_FULLNAT {
        (caddr, cport) = (entry.via_addr, entry.via_port);
        if !nat::rewrite(ctx, pkt, End::Destination, &caddr, cport) {
            return xdp_action::XDP_PASS;
        }
    }
    let flow = Flow {
        saddr: vaddr,
        daddr: caddr,
        sport: vport,
        dport: cport,
    };
    let nh = NhSlot {
        ifindex: &mut entry.nh_ifindex,
        time: &mut entry.nh_time,
        macs: &mut entry.nh_macs,
    };
    forward::send(ctx, pkt, &flow, Some(nh), nh_stamp(now), Hop::Routed)
}

/// A FULLNAT client segment that should carry TOA: it acknowledges exactly the real server's
/// ISN + 1 (the handshake's last ACK, or data sent before the server sent any).
#[inline(always)]
pub fn wants_toa(ctx: &XdpContext, pkt: &Packet, conn: &Conn) -> bool {
    if pkt.tcp_flags & (TCP_ACK | TCP_SYN | TCP_RST) != TCP_ACK {
        return false;
    }
    match ptr_at::<u32>(ctx, pkt.l4_off + TCP_ACK_SEQ) {
        // SAFETY: `ack` comes from ptr_at (bounds checked against data_end); an unaligned read
        // needs no alignment.
        Some(ack) => (unsafe { ack.read_unaligned() }) == conn.toa_ack,
        None => false,
    }
}

/// FULLNAT SYN-ACK from the real server: unless TOA is off, remember its ISN + 1 (the client
/// segments acknowledging it get the option) and lower the MSS it announces by the option size.
#[inline(always)]
fn note_server_isn(ctx: &XdpContext, pkt: &Packet, client: &mut Conn) {
    if setting(config::TOA_OFF) {
        return;
    }
    if let Some(seq) = ptr_at::<u32>(ctx, pkt.l4_off + TCP_SEQ) {
        // SAFETY: `seq` comes from ptr_at (bounds checked against data_end); an unaligned read
        // needs no alignment.
        let isn = u32::from_be(unsafe { seq.read_unaligned() });
        client.toa_ack = isn.wrapping_add(1).to_be();
        toa::clamp_mss(ctx, pkt, toa::option_len(pkt) as u16);
    }
}

/// Advances the TCP state (and its timeout).
#[inline(always)]
pub fn track(conn: &mut Conn, pkt: &Packet, dir: Dir) {
    if pkt.proto == IPPROTO_TCP {
        let old = conn.state;
        let next = state::tcp_next(old, dir, pkt.tcp_flags);
        if next != old && state::claim(conn, old, next) {
            conn.timeout = state::timeout_of(next);
            conncount::moved(conn, pkt.proto, old);
        }
    }
}

/// Body of `xlvs_toa`: TOA inserted into a FULLNAT client segment of a known connection, which
/// then continues its client path.
#[inline(always)]
pub fn toa_stage(ctx: &XdpContext, now: u64) -> u32 {
    let Ok(pkt) = parse::parse(ctx) else {
        return xdp_action::XDP_PASS;
    };
    let Some(entry) = CONNS.get_ptr_mut(&pkt.flow()) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: `entry` is a map value pointer from get_ptr_mut: non-null, aligned and valid for this
    // program run.
    let entry = unsafe { &mut *entry };
    if !toa::insert(ctx, &pkt) {
        toa::skipped();
        // (FULLNAT only: never a tunnel.)
        return to_real_path(ctx, &pkt, entry, now, false);
    }
    count(counter::TOA_ADDED);
    // Lengths and the packet's extent changed: read it again.
    match parse::parse(ctx) {
        Ok(grown) => to_real_path(ctx, &grown, entry, now, false),
        Err(_) => xdp_action::XDP_DROP,
    }
}

/// Body of `xlvs_seqadj`: SYNPROXY's translation of a segment of an established proxied
/// connection (seqadj.rs), then the segment's usual path.
#[inline(always)]
pub fn seqadj_stage(ctx: &XdpContext, now: u64) -> u32 {
    let Ok(pkt) = parse::parse(ctx) else {
        return xdp_action::XDP_PASS;
    };
    let Some(entry) = CONNS.get_ptr_mut(&pkt.flow()) else {
        return xdp_action::XDP_DROP;
    };
    // SAFETY: `entry` is a map value pointer from get_ptr_mut: non-null, aligned and valid for this
    // program run.
    let entry = unsafe { &mut *entry };
    // One walk of the options for both directions (each copy costs the verifier much).
    let o = if entry.sp_opts & (SP_TS | SP_SACK) != 0 {
        tcpopt::find(ctx, &pkt)
    } else {
        Some(tcpopt::NONE)
    };
    let Some(o) = o else {
        count(counter::SYNPROXY_BAD_OPTIONS);
        return xdp_action::XDP_DROP;
    };
    if entry.flags & CONN_F_REPLY != 0 {
        if !seqadj::real_to_client(ctx, &pkt, &o, entry) {
            count(counter::SYNPROXY_BAD_OPTIONS);
            return xdp_action::XDP_DROP;
        }
        return to_client_path(ctx, &pkt, entry, None, now, true);
    }
    if !seqadj::client_to_real(ctx, &pkt, &o, entry) {
        count(counter::SYNPROXY_BAD_OPTIONS);
        return xdp_action::XDP_DROP;
    }
    // (NAT and FULLNAT only: never a tunnel.)
    to_real_path(ctx, &pkt, entry, now, true)
}

/// Body of `xlvs_fwd`: the first packet of a connection (or SYNPROXY's SYN) to its real
/// server, the connection handed over in `forward::FIRST_PACKET`.
#[inline(always)]
pub fn fwd_stage(ctx: &XdpContext, now: u64) -> u32 {
    let Ok(pkt) = parse::handed_or(ctx, parse::parse) else {
        return xdp_action::XDP_PASS;
    };
    let Some(conn) = forward::FIRST_PACKET.take() else {
        return xdp_action::XDP_PASS;
    };
    tunnel::finish(ctx, to_real(ctx, &pkt, conn, now))
}
