//! The xlvs XDP program. One pipeline, stages as functions, top-down (see ARCHITECTURE.md):
//!   parse -> reply path (a real server answering) -> service lookup -> connection lookup
//!   -> schedule + create on a miss -> NAT rewrite -> forward.
//! Anything that is not ours, or that we cannot parse, goes to the kernel untouched.
#![no_std]
#![no_main]
// atomic_xadd: the BPF target has no AtomicU64::fetch_add (conncount.rs).
#![allow(internal_features)]
#![feature(core_intrinsics)]

mod acl;
mod conncount;
mod csum;
mod fill;
mod forward;
mod frag;
mod fullnat;
mod fwmark;
mod icmp;
mod icmp6;
mod maps;
mod nat;
mod parse;
mod persist;
mod reset;
mod sched;
mod sched_scan;
mod seqadj;
mod state;
mod synproxy;
mod tcpopt;
mod toa;
mod tunnel;

use aya_ebpf::{
    bindings::xdp_action, helpers::bpf_ktime_get_coarse_ns, macros::xdp, programs::XdpContext,
};
use ebpf_common::{
    CONN_F_COUNTED, CONN_F_ORPHAN, CONN_F_PERSIST, CONN_F_REPLY, CONN_F_REUSE_SYN, CONN_F_SEQADJ,
    CONN_F_SYNCED, CONN_F_SYNPROXY, Conn, FWD_DROUTE, FWD_FULLNAT, FWD_LOCAL, FWD_MASQ, FWD_TUNNEL,
    FlowKey, IPPROTO_TCP, IPPROTO_UDP, PROTO_FWMARK, S_CLOSE, S_NONE, S_TIME_WAIT, S_UDP,
    SVC_F_FWMARK_FIRST, SVC_F_ONEPACKET, SVC_F_PERSISTENT, SVC_F_SCHED_SCAN, SVC_F_SYNPROXY,
    Service, ServiceKey, Stats, config, counter, nh_stamp, reply_key_of,
};

use forward::{Flow, Hop, NhSlot};
use maps::{
    CONFIG, CONNS, DEST_NH, DEST_STATS, JUMP, JUMP_FRAG, JUMP_FWD, JUMP_ICMP, JUMP_NEW, JUMP_SCHED,
    JUMP_TOA, SERVICES, SVC_STATS, count,
};
use nat::End;
use parse::{Packet, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN};
use state::Dir;

#[xdp]
pub fn xlvs(ctx: XdpContext) -> u32 {
    let pkt = &match parse::parse(&ctx) {
        Ok(pkt) => pkt,
        Err(counter::ICMP_CANDIDATE) => {
            // In its own program (tail call): its stack would not fit beside this one's.
            unsafe { JUMP.tail_call(&ctx, JUMP_ICMP) };
            count(counter::PASS_NOT_VIP);
            return xdp_action::XDP_PASS;
        }
        Err(counter::PASS_FRAGMENT) => {
            // A later fragment: it follows its first fragment's connection (frag.rs).
            unsafe { JUMP.tail_call(&ctx, JUMP_FRAG) };
            count(counter::PASS_FRAGMENT);
            return xdp_action::XDP_PASS;
        }
        Err(reason) => {
            count(reason);
            return xdp_action::XDP_PASS;
        }
    };
    if pkt.frag != 0 && !frag::recorded() {
        // A first fragment: xlvs_frag records it for the later ones and sends it back here.
        unsafe { JUMP.tail_call(&ctx, JUMP_FRAG) };
        count(counter::PASS_FRAGMENT);
        return xdp_action::XDP_PASS;
    }
    let flow = flow_of(pkt);
    let now = unsafe { bpf_ktime_get_coarse_ns() };

    // One lookup finds either direction of a known connection.
    if let Some(entry) = CONNS.get_ptr_mut(&flow) {
        let entry = unsafe { &mut *entry };
        if parse::invalid(&ctx, pkt) {
            count(counter::DROP_INVALID);
            return xdp_action::XDP_DROP;
        }
        if entry.flags & CONN_F_ORPHAN != 0 {
            // The other half of this connection was evicted: end it at this end too.
            return reset::call(&ctx);
        }
        if pkt.ttl <= 1 {
            count(counter::PASS_TTL);
            return xdp_action::XDP_PASS;
        }
        // SYNPROXY's own SYN (a valid cookie ACK: the client did a fresh handshake with us)
        // replaces whatever the flow had: a pending attempt or an older connection.
        let restart =
            entry.flags & (CONN_F_SYNPROXY | CONN_F_SEQADJ) != 0 && synproxy::armed_for(&flow);
        if entry.flags & CONN_F_SYNPROXY != 0 && !restart {
            // The real server's handshake is still ours to finish (synproxy.rs).
            synproxy::call(&ctx, pkt);
            return xdp_action::XDP_DROP;
        }
        if entry.flags & CONN_F_REPLY != 0 {
            return reply_path(&ctx, pkt, entry, now, false);
        }
        if entry.flags & (CONN_F_SEQADJ | CONN_F_REUSE_SYN) == CONN_F_SEQADJ | CONN_F_REUSE_SYN
            && !restart
            && (entry.state == S_TIME_WAIT || entry.state == S_CLOSE)
            && pkt.tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN) == TCP_ACK
        {
            // A closed proxied connection's flow where the client sent a new SYN: this ACK may
            // complete the new cookie handshake (session reuse); synproxy.rs checks, else it
            // is the old one's.
            synproxy::call(&ctx, pkt);
            return xdp_action::XDP_DROP;
        }
        if !restart && !expired(entry, &flow, now) && !reopens(entry, pkt) {
            if entry.flags & CONN_F_PERSIST != 0
                && pkt.tcp_flags & (TCP_FIN | TCP_RST) != 0
                && let Some(svc) = service_of(pkt)
            {
                persist::refresh(svc, pkt, now);
            }
            if entry.toa_ack != 0 && wants_toa(&ctx, pkt, entry) {
                // In its own program: moving headers needs stack this one does not have.
                unsafe { JUMP.tail_call(&ctx, JUMP_TOA) };
                toa::skipped();
            }
            return tunnel::finish(&ctx, client_path(&ctx, pkt, entry, now, false));
        }
        // This connection is over: a new one replaces its entry (or the packet is dropped).
        conncount::closed(entry, pkt.proto);
        if entry.flags & CONN_F_SEQADJ != 0 && pkt.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN {
            // Answered with a cookie; the ACK completing that handshake reopens (see above).
            entry.flags |= CONN_F_REUSE_SYN;
        }
    } else if !is_vip(pkt.af, &pkt.dst) && !policy(config::FWMARK_SERVICES) {
        // Not ours: the common case for a host's other traffic, answered here. (While fwmark
        // services exist, any address may be classified into one: xlvs_new decides.)
        count(counter::PASS_NOT_VIP);
        return xdp_action::XDP_PASS;
    }
    if parse::invalid(&ctx, pkt) {
        count(counter::DROP_INVALID);
        return xdp_action::XDP_DROP;
    }
    // A packet that may open a connection: that stage has its own program (its own verifier
    // budget and stack; see ARCHITECTURE.md).
    unsafe { JUMP.tail_call(&ctx, JUMP_NEW) };
    count(counter::PASS_NOT_VIP);
    xdp_action::XDP_PASS
}

/// The new-connection stage, reached by tail call from `xlvs` with a packet that matched no live
/// connection and is addressed to a VIP (or replaces an ended connection): service lookup, flood
/// policies, SYNPROXY, scheduling, the connection's entries, and its first packet forwarded.
#[xdp]
pub fn xlvs_new(ctx: XdpContext) -> u32 {
    let pkt = &match parse::parse(&ctx) {
        Ok(pkt) => pkt,
        Err(_) => return xdp_action::XDP_PASS,
    };
    let flow = flow_of(pkt);
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    let Some(svc) = service_of(pkt) else {
        if pkt.frag != 0 {
            return frag::refuse(pkt.af, &pkt.dst, counter::PASS_FRAGMENT);
        }
        if policy(config::NO_SERVICE_DROP) && is_vip(pkt.af, &pkt.dst) {
            count(counter::DROP_NO_SERVICE);
            return xdp_action::XDP_DROP;
        }
        count(counter::PASS_NOT_VIP);
        return xdp_action::XDP_PASS;
    };
    if pkt.ttl <= 1 {
        count(counter::PASS_TTL);
        return xdp_action::XDP_PASS;
    }
    if svc.flags & SVC_F_SYNPROXY != 0 && pkt.proto == IPPROTO_TCP && pkt.frag != 0 {
        // Cookies are answered to whole SYNs only.
        return frag::refuse(pkt.af, &pkt.dst, counter::FRAG_REFUSED);
    }
    if svc.flags & SVC_F_SYNPROXY != 0 && pkt.proto == IPPROTO_TCP && !synproxy::armed_for(&flow) {
        if !synproxy::applies(pkt) {
            // IPv4 options or IPv6 extension headers: no cookie can be made for it, and opening
            // it unproxied would let a flood past SYNPROXY.
            count(counter::DROP_UNSUPPORTED);
            return xdp_action::XDP_DROP;
        }
        // Cookies first: the real server sees only clients that completed a handshake.
        synproxy::call(&ctx, pkt);
        return xdp_action::XDP_DROP;
    }
    new_connection(&ctx, pkt, svc, &flow, now)
}

/// Whether a flood-policy switch (`CONFIG[index]`) is on.
#[inline(always)]
fn policy(index: u32) -> bool {
    CONFIG.get(index).copied().unwrap_or(0) != 0
}

/// Whether `addr` is the address of some service (any port or protocol).
#[inline(always)]
fn is_vip(af: u8, addr: &[u32; 4]) -> bool {
    let key = ServiceKey {
        addr: *addr,
        port: 0,
        proto: 0,
        af,
    };
    unsafe { maps::VIPS.get(&key) }.is_some()
}

/// The connection-table key of a packet: its flow as seen on the wire.
#[inline(always)]
fn flow_of(pkt: &Packet) -> FlowKey {
    FlowKey {
        src: pkt.src,
        dst: pkt.dst,
        sport: pkt.sport,
        dport: pkt.dport,
        proto: pkt.proto,
        af: pkt.af,
        _pad: [0; 2],
    }
}

/// A FULLNAT client segment that should carry TOA: it acknowledges exactly the real server's
/// ISN + 1 (the handshake's last ACK, or data sent before the server sent any).
#[inline(always)]
fn wants_toa(ctx: &XdpContext, pkt: &Packet, conn: &Conn) -> bool {
    if pkt.tcp_flags & (TCP_ACK | TCP_SYN | TCP_RST) != TCP_ACK {
        return false;
    }
    match parse::ptr_at::<u32>(ctx, pkt.l4_off + 8) {
        Some(ack) => (unsafe { ack.read_unaligned() }) == conn.toa_ack,
        None => false,
    }
}

/// The virtual service a packet is addressed to, in IPVS' order (ip_vs_service_find): the
/// fwmark service of the packet's mark (from the classifier, fwmark.rs), then (vip, vport), then
/// (vip, 0) while port-zero services exist. The classifier is asked only while fwmark services
/// exist, and before a (vip, vport) hit only when user space marked that service as covered by
/// a rule (SVC_F_FWMARK_FIRST): other services pay nothing for it.
#[inline(always)]
fn service_of(pkt: &Packet) -> Option<&'static Service> {
    let mut key = ServiceKey {
        addr: pkt.dst,
        port: pkt.dport,
        proto: pkt.proto,
        af: pkt.af,
    };
    let found = unsafe { SERVICES.get(&key) };
    if let Some(svc) = found
        && svc.flags & SVC_F_FWMARK_FIRST == 0
    {
        return Some(svc);
    }
    if (found.is_some() || CONFIG.get(config::FWMARK_SERVICES).copied().unwrap_or(0) != 0)
        && let Some(mark) = fwmark::mark_of(pkt)
    {
        // The same key variable: the main program's stack is nearly full.
        key.addr = [mark, 0, 0, 0];
        key.port = 0;
        key.proto = PROTO_FWMARK;
        if let Some(svc) = unsafe { SERVICES.get(&key) } {
            return Some(svc);
        }
        key.addr = pkt.dst;
        key.proto = pkt.proto;
    }
    if found.is_some() {
        return found;
    }
    let port_zero = CONFIG.get(config::PORT_ZERO_SERVICES).copied().unwrap_or(0);
    if port_zero == 0 {
        return None;
    }
    key.port = 0;
    unsafe { SERVICES.get(&key) }
}

/// Schedules a new connection, records both directions and hands its first packet (with the
/// connection in SCRATCH_CONN) to `xlvs_fwd`.
#[inline(always)]
fn new_connection(ctx: &XdpContext, pkt: &Packet, svc: &Service, flow: &FlowKey, now: u64) -> u32 {
    // Only a bare SYN opens a TCP connection. Anything else belongs to a connection we do not
    // know (evicted, expired, another director's): its sender gets a RST, as the kernel's stack
    // answers it behind IPVS, instead of retransmitting into nothing. With IPVS' sloppy_tcp any
    // segment but a RST opens one instead (a flow another director served, re-hashed here).
    if pkt.proto == IPPROTO_TCP
        && pkt.tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN) != TCP_SYN
        && (pkt.tcp_flags & TCP_RST != 0 || !policy(config::SLOPPY_TCP))
    {
        return reset::call(ctx);
    }
    if fill::refuses() {
        count(counter::DROP_TABLE_FULL);
        return xdp_action::XDP_DROP;
    }
    if !acl::allowed(svc, pkt) {
        count(counter::DROP_DENIED);
        return xdp_action::XDP_DROP;
    }
    let persistent = svc.flags & SVC_F_PERSISTENT != 0;
    // Scan services: xlvs_sched picks (and counts the connection on its destination) first.
    let counted = sched::scan_pick_ready(svc, flow);
    if svc.flags & SVC_F_SCHED_SCAN != 0 && !counted && !persist::has_template(svc, pkt, now) {
        // Scheduled by xlvs_sched (sched_scan.rs), which comes back here with its pick.
        unsafe { JUMP.tail_call(ctx, JUMP_SCHED) };
        count(counter::DROP_NO_DEST);
        return xdp_action::XDP_DROP;
    }
    let picked = if persistent {
        persist::pick(svc, pkt, now)
    } else {
        sched::pick(svc, pkt)
    };
    let Some((dest_id, dest)) = picked else {
        count(counter::DROP_NO_DEST);
        return xdp_action::XDP_DROP;
    };
    let fnat = dest.fwd == FWD_FULLNAT && dest.af == pkt.af;
    if dest.fwd != FWD_MASQ
        && dest.fwd != FWD_DROUTE
        && dest.fwd != FWD_LOCAL
        && dest.fwd != FWD_TUNNEL
        && !fnat
    {
        count(counter::DROP_UNSUPPORTED);
        return xdp_action::XDP_DROP;
    }
    let state = if pkt.proto == IPPROTO_TCP {
        state::tcp_next(S_NONE, dir_in(dest.fwd), pkt.tcp_flags)
    } else {
        S_UDP
    };
    // One Conn, in per-CPU scratch (the stack is small): the CLIENT entry, then the REPLY one.
    // (the BPF stack is 512 bytes).
    // A real with port 0 (port-zero services) keeps the client's destination port.
    let dport = if dest.port == 0 { pkt.dport } else { dest.port };
    let Some(entry) = maps::scratch(&maps::SCRATCH_CONN) else {
        return xdp_action::XDP_PASS;
    };
    // Field by field: a whole `Conn` would be built on this program's full stack first.
    entry.to_addr = dest.addr;
    entry.via_addr = [0; 4];
    entry.to_port = dport;
    entry.via_port = 0;
    entry.dest_id = dest_id;
    entry.svc_id = svc.id;
    entry.state = state;
    entry.fwd = dest.fwd;
    entry.af = dest.af;
    entry.flags =
        if counted { CONN_F_COUNTED } else { 0 } | if persistent { CONN_F_PERSIST } else { 0 };
    entry.timeout = state::timeout_of(state);
    entry.nh_ifindex = 0;
    entry.last_seen = now;
    entry.nh_time = 0;
    entry.nh_macs = [0; 12];
    entry.toa_ack = 0;
    entry.seq_delta = 0;
    entry.ts_delta = 0;
    entry.win_shift_out = 0;
    entry.win_shift_in = 0;
    entry.sp_opts = 0;
    entry._pad2 = 0;
    if svc.flags & SVC_F_SYNPROXY != 0
        && let Some((cookie, client_isn, tsecr)) = synproxy::take_marker(flow)
        && (dest.fwd == FWD_MASQ || fnat)
    {
        // The SYN synproxy.rs made from a valid cookie ACK: pending until the real answers.
        // (DR/TUN replies bypass us: SYNPROXY cannot finish their handshake; see synproxy.rs.)
        entry.flags |= CONN_F_SYNPROXY;
        entry.seq_delta = cookie;
        entry.toa_ack = client_isn;
        entry.ts_delta = tsecr;
    }
    if fnat {
        let Some(reply) = maps::scratch(&maps::SCRATCH_REPLY) else {
            return xdp_action::XDP_PASS;
        };
        if let Err(reason) = fullnat::open(flow, entry, reply) {
            count(reason);
            return xdp_action::XDP_DROP;
        }
        opened(svc.id, dest_id, pkt);
        return forward_first(ctx);
    }
    // One-packet scheduling (`-o`, UDP): every datagram is scheduled anew, so no CLIENT entry
    // (NAT still gets its REPLY entry: the real's answers must come back from the VIP).
    let one_packet = svc.flags & SVC_F_ONEPACKET != 0 && pkt.proto == IPPROTO_UDP;
    if !one_packet && fill::insert(flow, entry).is_err() {
        count(counter::CONN_INSERT_FAIL);
        return xdp_action::XDP_DROP;
    }
    if dest.fwd != FWD_MASQ {
        // Replies do not come back through us: no REPLY entry.
        opened(svc.id, dest_id, pkt);
        return forward_first(ctx);
    }
    let reply_key = reply_key_of(entry, flow);
    entry.to_addr = flow.dst;
    entry.to_port = flow.dport;
    entry.via_addr = flow.src;
    entry.via_port = flow.sport;
    entry.af = flow.af;
    entry.flags = CONN_F_REPLY | (entry.flags & CONN_F_SYNPROXY);
    entry.state = 0;
    entry.timeout = 0;
    entry.last_seen = 0;
    if fill::insert(&reply_key, entry).is_err() {
        fill::remove(flow);
        count(counter::CONN_INSERT_FAIL);
        return xdp_action::XDP_DROP;
    }
    opened(svc.id, dest_id, pkt);
    entry.to_addr = dest.addr;
    entry.to_port = dport;
    entry.fwd = dest.fwd;
    forward_first(ctx)
}

/// Forwards the packet being handled with the connection in SCRATCH_CONN, in `xlvs_fwd` (tail
/// call): `to_real` with its rewrites and next-hop lookup does not fit beside the programs that
/// open connections (stack, verifier budget). The entries are in the table already.
#[inline(always)]
pub fn forward_first(ctx: &XdpContext) -> u32 {
    unsafe { JUMP.tail_call(ctx, JUMP_FWD) };
    count(counter::DROP_UNSUPPORTED);
    xdp_action::XDP_DROP
}

/// A new connection's entries are in: counters. (Its destination's connection count was taken
/// by xlvs_sched when it picked it, for the services that need counts.)
#[inline(always)]
fn opened(svc_id: u32, dest_id: u32, pkt: &Packet) {
    count(counter::CONN_NEW);
    add_conn(&SVC_STATS, svc_id);
    add_conn(&DEST_STATS, dest_id);
    add_traffic(svc_id, dest_id, pkt, Dir::In);
}

/// client -> real: track state, count, rewrite the destination, forward.
/// `adjusted`: SYNPROXY's translation (seqadj.rs) is done; otherwise a SYNPROXY connection's
/// segment goes to the `xlvs_synproxy` program for it (tail call), which comes back here.
#[inline(always)]
fn client_path(ctx: &XdpContext, pkt: &Packet, conn: &mut Conn, now: u64, adjusted: bool) -> u32 {
    if conn.flags & CONN_F_SEQADJ != 0 && !adjusted {
        seqadj::call(ctx);
        return xdp_action::XDP_DROP;
    }
    track(conn, pkt, dir_in(conn.fwd));
    conn.last_seen = now;
    // Seen here now: a sync master may announce it again (ebpf_common::CONN_F_SYNCED).
    conn.flags &= !CONN_F_SYNCED;
    add_traffic(conn.svc_id, conn.dest_id, pkt, Dir::In);
    to_real(ctx, pkt, conn, now)
}

/// IPVS tracks connections whose replies bypass us with its INPUT-ONLY table.
#[inline(always)]
fn dir_in(fwd: u8) -> Dir {
    if fwd == FWD_MASQ || fwd == FWD_FULLNAT {
        Dir::In
    } else {
        Dir::InOnly
    }
}

/// Sends a client packet to the connection's real server: NAT rewrites the destination and
/// routes; FULLNAT also replaces the source with the local address; DR keeps the packet (still addressed to the VIP) and only changes the MACs to the
/// real server's; Local hands it to this host's stack.
#[inline(always)]
fn to_real(ctx: &XdpContext, pkt: &Packet, conn: &Conn, now: u64) -> u32 {
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
    let nh = DEST_NH
        .get_ptr_mut(conn.dest_id)
        .map(|p| NhSlot::of(unsafe { &mut *p }));
    forward::send(ctx, pkt, &flow, nh, nh_stamp(now), hop)
}

/// real -> client: count, put the VIP back as source, forward. TCP flags that can change the
/// connection's state (SYN, FIN, RST) are applied to the CLIENT entry, which holds it.
#[inline(always)]
fn reply_path(ctx: &XdpContext, pkt: &Packet, entry: &mut Conn, now: u64, adjusted: bool) -> u32 {
    if entry.flags & CONN_F_SEQADJ != 0 && !adjusted {
        seqadj::call(ctx);
        return xdp_action::XDP_DROP;
    }
    entry.last_seen = now;
    if pkt.proto == IPPROTO_TCP && pkt.tcp_flags & (TCP_SYN | TCP_FIN | TCP_RST) != 0 {
        let client_key = client_key_of(entry, pkt);
        if let Some(client) = CONNS.get_ptr_mut(&client_key) {
            let client = unsafe { &mut *client };
            track(client, pkt, Dir::Out);
            client.last_seen = now;
            if entry.fwd == FWD_FULLNAT && pkt.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK
            {
                note_server_isn(ctx, pkt, client);
            }
        }
    }
    add_traffic(entry.svc_id, entry.dest_id, pkt, Dir::Out);
    let (vaddr, vport) = (entry.to_addr, entry.to_port);
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

/// FULLNAT SYN-ACK from the real server: unless TOA is off, remember its ISN + 1 (the client
/// segments acknowledging it get the option) and lower the MSS it announces by the option size.
#[inline(always)]
fn note_server_isn(ctx: &XdpContext, pkt: &Packet, client: &mut Conn) {
    if CONFIG.get(config::TOA_OFF).copied().unwrap_or(0) != 0 {
        return;
    }
    if let Some(seq) = parse::ptr_at::<u32>(ctx, pkt.l4_off + 4) {
        let isn = u32::from_be(unsafe { seq.read_unaligned() });
        client.toa_ack = isn.wrapping_add(1).to_be();
        toa::clamp_mss(ctx, pkt, toa::option_len(pkt) as u16);
    }
}

/// The CLIENT entry's key for a packet that matched a REPLY entry.
#[inline(always)]
fn client_key_of(reply: &Conn, pkt: &Packet) -> FlowKey {
    let fullnat = reply.fwd == FWD_FULLNAT;
    FlowKey {
        src: if fullnat { reply.via_addr } else { pkt.dst },
        dst: reply.to_addr,
        sport: if fullnat { reply.via_port } else { pkt.dport },
        dport: reply.to_port,
        proto: pkt.proto,
        af: reply.af,
        _pad: [0; 2],
    }
}

/// Advances the TCP state (and its timeout).
#[inline(always)]
fn track(conn: &mut Conn, pkt: &Packet, dir: Dir) {
    if pkt.proto == IPPROTO_TCP {
        let old = conn.state;
        let next = state::tcp_next(old, dir, pkt.tcp_flags);
        if next != old && state::claim(conn, old, next) {
            conn.timeout = state::timeout_of(next);
            conncount::moved(conn, pkt.proto, old);
        }
    }
}

/// Expired when neither direction was seen within the state's timeout. The REPLY entry is only
/// consulted when the CLIENT side looks idle (rare), to keep the hot path at one lookup.
#[inline(always)]
fn expired(conn: &mut Conn, flow: &FlowKey, now: u64) -> bool {
    let timeout = (conn.timeout as u64) * 1_000_000_000;
    if now.saturating_sub(conn.last_seen) <= timeout {
        return false;
    }
    if let Some(reply) = unsafe { CONNS.get(&reply_key_of(conn, flow)) }
        && now.saturating_sub(reply.last_seen) <= timeout
    {
        conn.last_seen = reply.last_seen;
        return false;
    }
    true
}

/// A SYN for a connection that is closing or closed starts a new one (IPVS conn_reuse_mode).
#[inline(always)]
fn reopens(conn: &Conn, pkt: &Packet) -> bool {
    pkt.proto == IPPROTO_TCP
        && pkt.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN
        && (conn.state == S_TIME_WAIT || conn.state == S_CLOSE)
}

#[inline(always)]
fn add_conn(map: &aya_ebpf::maps::PerCpuArray<Stats>, index: u32) {
    if let Some(s) = map.get_ptr_mut(index) {
        unsafe { (*s).conns += 1 };
    }
}

#[inline(always)]
fn add_traffic(svc_id: u32, dest_id: u32, pkt: &Packet, dir: Dir) {
    let bytes = pkt.tot_len as u64;
    for (map, index) in [(&SVC_STATS, svc_id), (&DEST_STATS, dest_id)] {
        if let Some(s) = map.get_ptr_mut(index) {
            let s = unsafe { &mut *s };
            if let Dir::Out = dir {
                s.outpkts += 1;
                s.outbytes += bytes;
            } else {
                s.inpkts += 1;
                s.inbytes += bytes;
            }
        }
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";

/// ICMP errors about connections (see icmp.rs), reached by tail call from `xlvs`.
#[xdp]
pub fn xlvs_icmp(ctx: XdpContext) -> u32 {
    icmp::handle(&ctx, unsafe { bpf_ktime_get_coarse_ns() })
}

/// ICMPv6 errors about connections (see icmp6.rs), reached by tail call from `xlvs_icmp`.
#[xdp]
pub fn xlvs_icmp6(ctx: XdpContext) -> u32 {
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    let translated = match parse::l3(&ctx) {
        Ok((l3, _)) => icmp6::handle(&ctx, l3, now),
        Err(_) => None,
    };
    translated.unwrap_or_else(|| {
        count(counter::PASS_NOT_VIP);
        xdp_action::XDP_PASS
    })
}

/// TOA insertion for FULLNAT (see toa.rs), reached by tail call from `xlvs` with a client
/// segment of a known connection; continues that segment's client path.
#[xdp]
pub fn xlvs_toa(ctx: XdpContext) -> u32 {
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    let Ok(pkt) = parse::parse(&ctx) else {
        return xdp_action::XDP_PASS;
    };
    let Some(entry) = CONNS.get_ptr_mut(&flow_of(&pkt)) else {
        return xdp_action::XDP_PASS;
    };
    let entry = unsafe { &mut *entry };
    if !toa::insert(&ctx, &pkt) {
        toa::skipped();
        return client_path(&ctx, &pkt, entry, now, false);
    }
    count(counter::TOA_ADDED);
    // Lengths and the packet's extent changed: read it again.
    match parse::parse(&ctx) {
        Ok(grown) => client_path(&ctx, &grown, entry, now, false),
        Err(_) => xdp_action::XDP_DROP,
    }
}

/// The scan schedulers (see sched_scan.rs), reached by tail call from `xlvs` with a packet that
/// opens a connection; hands the pick back to `xlvs` (SCHED_PICK) by tail call.
#[xdp]
pub fn xlvs_sched(ctx: XdpContext) -> u32 {
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    let Ok(pkt) = parse::parse(&ctx) else {
        return xdp_action::XDP_PASS;
    };
    let Some(svc) = service_of(&pkt) else {
        return xdp_action::XDP_PASS;
    };
    let flow = flow_of(&pkt);
    let dest_id = sched_scan::pick(svc, &pkt, now);
    if dest_id != sched::NO_DEST
        && let Some(d) = unsafe { maps::DESTS.get(dest_id) }
    {
        conncount::opened(dest_id, d.u_threshold);
    }
    if sched::leave_scan_pick(&flow, dest_id) {
        unsafe { JUMP.tail_call(&ctx, JUMP_NEW) };
        sched::drop_scan_pick();
    }
    count(counter::DROP_NO_DEST);
    xdp_action::XDP_DROP
}

/// IP fragments (see frag.rs), reached by tail call from `xlvs`: first fragments are recorded
/// and handed back to it, later ones follow them.
#[xdp]
pub fn xlvs_frag(ctx: XdpContext) -> u32 {
    frag::handle(&ctx, unsafe { bpf_ktime_get_coarse_ns() })
}

/// Forwards a connection's first packet (or SYNPROXY's SYN) to the real server of the connection
/// left in SCRATCH_CONN, reached by tail call from `xlvs_new` and `xlvs_synproxy`.
#[xdp]
pub fn xlvs_fwd(ctx: XdpContext) -> u32 {
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    let Ok(pkt) = parse::parse(&ctx) else {
        return xdp_action::XDP_PASS;
    };
    let Some(conn) = maps::scratch(&maps::SCRATCH_CONN) else {
        return xdp_action::XDP_PASS;
    };
    tunnel::finish(&ctx, to_real(&ctx, &pkt, conn, now))
}

/// Tunnel encapsulation and "too big" answers (see tunnel.rs), reached by tail call from `xlvs`.
#[xdp]
pub fn xlvs_tunnel(ctx: XdpContext) -> u32 {
    tunnel::handle(&ctx)
}

/// SYNPROXY for IPv4 (see synproxy.rs), reached by tail call from `xlvs` and `xlvs_new`.
#[xdp]
pub fn xlvs_synproxy(ctx: XdpContext) -> u32 {
    synproxy::handle::<false>(&ctx, unsafe { bpf_ktime_get_coarse_ns() })
}

/// SYNPROXY for IPv6: the same code for IPv6 headers, its own program (verifier budget, stack).
#[xdp]
pub fn xlvs_synproxy6(ctx: XdpContext) -> u32 {
    synproxy::handle::<true>(&ctx, unsafe { bpf_ktime_get_coarse_ns() })
}

/// SYNPROXY's per-segment translation (see seqadj.rs), reached by tail call from `xlvs` (and
/// `xlvs_toa`) with a segment of an established proxied connection.
#[xdp]
pub fn xlvs_seqadj(ctx: XdpContext) -> u32 {
    seqadj::handle(&ctx, unsafe { bpf_ktime_get_coarse_ns() })
}

/// Answers a TCP segment of no connection (or of an orphaned entry) with a RST (see reset.rs),
/// reached by tail call from `xlvs` and `xlvs_new`.
#[xdp]
pub fn xlvs_reset(ctx: XdpContext) -> u32 {
    reset::handle(&ctx)
}

/// The trivial program: the floor that benchmarks measure against (and a way to give a veth
/// peer a NAPI context so XDP_TX/redirect towards it works).
#[xdp]
pub fn xlvs_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}
