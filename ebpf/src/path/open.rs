//! A packet that may open a connection (`xlvs_new`, reached from `xlvs` on a miss addressed to
//! a VIP, or when an ended connection is replaced): service lookup, flood policies, SYNPROXY,
//! scheduling (the scan schedulers in `xlvs_sched`), the connection's entries, and its first
//! packet handed to `xlvs_fwd`.

use aya_ebpf::{bindings::xdp_action, macros::map, programs::XdpContext};
use ebpf_common::{
    CONN_F_COUNTED, CONN_F_PERSIST, CONN_F_REPLY, CONN_F_SYNPROXY, CONN_X_ONE_ENTRY, Conn,
    FWD_DROUTE, FWD_FULLNAT, FWD_LOCAL, FWD_MASQ, FWD_TUNNEL, FlowKey, S_NONE, S_UDP,
    SVC_F_ONEPACKET, SVC_F_PERSISTENT, SVC_F_SCHED_SCAN, SVC_F_SYNPROXY, Service, Stage, config,
    counter, reply_key_of,
};

use crate::acl;
use crate::conncount;
use crate::fill;
use crate::forward;
use crate::frag;
use crate::fullnat;
use crate::maps::{DESTS, count, is_vip, setting};
use crate::one_entry;
use crate::parse::{self, Packet};
use crate::path::established::dir_in;
use crate::persist;
use crate::proto::{IPPROTO_TCP, IPPROTO_UDP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN};
use crate::reset;
use crate::sched;
use crate::sched_scan;
use crate::service;
use crate::stage::Scratch;
use crate::state;
use crate::stats;
use crate::synproxy;

/// The REPLY entry being made (the stack has no room for a second `Conn`).
#[map]
static SCRATCH_REPLY: Scratch<Conn> = Scratch::new();

/// Body of `xlvs_new`.
#[inline(always)]
pub fn new_stage(ctx: &XdpContext, now: u64) -> u32 {
    let pkt = &match parse::handed_or(ctx, parse::parse) {
        Ok(pkt) => pkt,
        Err(_) => return xdp_action::XDP_PASS,
    };
    let flow = pkt.flow();
    let Some(svc) = service::of(pkt) else {
        if pkt.frag != 0 {
            return frag::refuse(pkt.af, &pkt.dst, counter::PASS_FRAGMENT);
        }
        if setting(config::NO_SERVICE_DROP) && is_vip(pkt.af, &pkt.dst) {
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
        return synproxy::call(ctx, pkt);
    }
    new_connection(ctx, pkt, svc, &flow, now)
}

/// Schedules a new connection, records it (one entry, or one per direction) and hands its first packet (with the
/// connection) to `xlvs_fwd`.
#[inline(always)]
fn new_connection(ctx: &XdpContext, pkt: &Packet, svc: &Service, flow: &FlowKey, now: u64) -> u32 {
    // Only a bare SYN opens a TCP connection. Anything else belongs to a connection we do not
    // know (evicted, expired, another director's): its sender gets a RST, as the kernel's stack
    // answers it behind IPVS, instead of retransmitting into nothing. With IPVS' sloppy_tcp any
    // segment but a RST opens one instead (a flow another director served, re-hashed here).
    if pkt.proto == IPPROTO_TCP
        && pkt.tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN) != TCP_SYN
        && (pkt.tcp_flags & TCP_RST != 0 || !setting(config::SLOPPY_TCP))
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
        return parse::jump_parsed(ctx, Stage::Sched, pkt);
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
    // A real with port 0 (port-zero services) keeps the client's destination port.
    let dport = if dest.port == 0 { pkt.dport } else { dest.port };
    // One Conn, built where xlvs_fwd will find it (the stack is small): the CLIENT entry, then
    // the REPLY one.
    let Some(entry) = forward::FIRST_PACKET.put() else {
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
    entry.xflags = 0;
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
        let Some(reply) = SCRATCH_REPLY.get() else {
            return xdp_action::XDP_PASS;
        };
        if let Err(reason) = fullnat::open(flow, entry, reply) {
            count(reason);
            return xdp_action::XDP_DROP;
        }
        opened(svc.id, dest_id, pkt);
        return forward::first_packet(ctx, Some(pkt));
    }
    // One-packet scheduling (`-o`, UDP): every datagram is scheduled anew, so no CLIENT entry
    // (NAT still gets its REPLY entry: the real's answers must come back from the VIP).
    let one_packet = svc.flags & SVC_F_ONEPACKET != 0 && pkt.proto == IPPROTO_UDP;
    if dest.fwd == FWD_MASQ
        && !one_packet
        && svc.flags & SVC_F_SYNPROXY == 0
        && one_entry::derivable(flow, dest.af, &dest.addr, dest.port)
    {
        // The real's replies find this entry by its owner (one_entry.rs): no REPLY entry.
        entry.xflags = CONN_X_ONE_ENTRY;
    }
    if !one_packet && fill::insert(flow, entry).is_err() {
        count(counter::CONN_INSERT_FAIL);
        return xdp_action::XDP_DROP;
    }
    if dest.fwd != FWD_MASQ || entry.xflags & CONN_X_ONE_ENTRY != 0 {
        // Replies do not come back through us, or find the CLIENT entry: no REPLY entry.
        opened(svc.id, dest_id, pkt);
        return forward::first_packet(ctx, Some(pkt));
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
    forward::first_packet(ctx, Some(pkt))
}

/// A new connection's entries are in: counters. (Its destination's connection count was taken
/// by xlvs_sched when it picked it, for the services that need counts.)
#[inline(always)]
fn opened(svc_id: u32, dest_id: u32, pkt: &Packet) {
    count(counter::CONN_NEW);
    stats::opened(svc_id, dest_id, pkt);
}

/// Body of `xlvs_sched`: the scan schedulers (sched_scan.rs) for a packet that opens a
/// connection; the pick goes back to `xlvs_new`.
#[inline(always)]
pub fn sched_stage(ctx: &XdpContext, now: u64) -> u32 {
    let Ok(pkt) = parse::handed_or(ctx, parse::parse) else {
        return xdp_action::XDP_PASS;
    };
    let Some(svc) = service::of(&pkt) else {
        return xdp_action::XDP_PASS;
    };
    let flow = pkt.flow();
    let dest_id = sched_scan::pick(svc, &pkt, now);
    // SAFETY: the destination is copied or used within this run; a map value lives for the whole
    // program run (RCU).
    if dest_id != sched::NO_DEST
        && let Some(d) = unsafe { DESTS.get(dest_id) }
    {
        conncount::opened(dest_id, d.u_threshold);
    }
    if !sched::leave_scan_pick(&flow, dest_id) {
        count(counter::DROP_NO_DEST);
        return xdp_action::XDP_DROP;
    }
    let verdict = parse::jump_parsed(ctx, Stage::New, &pkt);
    sched::drop_scan_pick();
    verdict
}
