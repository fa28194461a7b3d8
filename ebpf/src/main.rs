//! The xlvs XDP program. One pipeline, stages as functions, top-down (see ARCHITECTURE.md):
//!   parse -> reply path (a real server answering) -> service lookup -> connection lookup
//!   -> schedule + create on a miss -> NAT rewrite -> forward.
//! Anything that is not ours, or that we cannot parse, goes to the kernel untouched.
#![no_std]
#![no_main]

mod csum;
mod forward;
mod maps;
mod nat;
mod parse;
mod sched;
mod state;

use aya_ebpf::{
    bindings::xdp_action, helpers::bpf_ktime_get_coarse_ns, macros::xdp, programs::XdpContext,
};
use ebpf_common::{
    CONN_F_SEEN_REPLY, Conn, FlowKey, IPPROTO_TCP, S_CLOSE, S_NONE, S_TIME_WAIT, S_UDP, Service,
    ServiceKey, Stats, counter,
};

use maps::{CONNS, DEST_STATS, REPLIES, SERVICES, SVC_STATS, count};
use nat::End;
use parse::{Packet, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN};
use state::Dir;

#[xdp]
pub fn xlvs(ctx: XdpContext) -> u32 {
    let pkt = match parse::parse(&ctx) {
        Ok(pkt) => pkt,
        Err(reason) => {
            count(reason);
            return xdp_action::XDP_PASS;
        }
    };
    let flow = FlowKey {
        src: [pkt.src, 0, 0, 0],
        dst: [pkt.dst, 0, 0, 0],
        sport: pkt.sport,
        dport: pkt.dport,
        proto: pkt.proto,
        af: pkt.af,
        _pad: [0; 2],
    };

    // A real server answering one of our connections.
    if let Some(client_key) = unsafe { REPLIES.get(&flow) } {
        let client_key = *client_key;
        return match CONNS.get_ptr_mut(&client_key) {
            Some(conn) => reply_path(&ctx, &pkt, unsafe { &mut *conn }, &client_key),
            None => {
                let _ = REPLIES.remove(&flow);
                count(counter::REPLY_ORPHAN);
                xdp_action::XDP_PASS
            }
        };
    }

    let svc_key = ServiceKey {
        addr: [pkt.dst, 0, 0, 0],
        port: pkt.dport,
        proto: pkt.proto,
        af: pkt.af,
    };
    let Some(svc) = (unsafe { SERVICES.get(&svc_key) }) else {
        count(counter::PASS_NOT_VIP);
        return xdp_action::XDP_PASS;
    };
    let svc = *svc;
    if pkt.ttl <= 1 {
        count(counter::PASS_TTL);
        return xdp_action::XDP_PASS;
    }

    let now = unsafe { bpf_ktime_get_coarse_ns() };
    if let Some(conn) = CONNS.get_ptr_mut(&flow) {
        let conn = unsafe { &mut *conn };
        if !expired(conn, now) && !reopens(conn, &pkt) {
            return client_path(&ctx, &pkt, conn, now);
        }
    }
    new_connection(&ctx, &pkt, &svc, &flow, now)
}

/// Schedules a new connection, records both directions and forwards its first packet.
#[inline(always)]
fn new_connection(ctx: &XdpContext, pkt: &Packet, svc: &Service, flow: &FlowKey, now: u64) -> u32 {
    // Only a bare SYN opens a TCP connection (IPVS without sloppy_tcp); the rest is noise or attack.
    if pkt.proto == IPPROTO_TCP
        && pkt.tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN) != TCP_SYN
    {
        count(counter::DROP_NO_SESSION);
        return xdp_action::XDP_DROP;
    }
    let Some((dest_id, dest)) = sched::pick(svc) else {
        count(counter::DROP_NO_DEST);
        return xdp_action::XDP_DROP;
    };
    let mut conn = Conn {
        daddr: dest.addr,
        laddr: [0; 4],
        dport: dest.port,
        lport: 0,
        dest_id,
        svc_id: svc.id,
        state: if pkt.proto == IPPROTO_TCP {
            S_NONE
        } else {
            S_UDP
        },
        fwd: dest.fwd,
        daf: dest.af,
        flags: 0,
        timeout: 0,
        last_seen: now,
    };
    conn.timeout = state::timeout_of(conn.state);
    let reply = FlowKey {
        src: dest.addr,
        dst: flow.src,
        sport: dest.port,
        dport: flow.sport,
        proto: flow.proto,
        af: dest.af,
        _pad: [0; 2],
    };
    if CONNS.insert(flow, &conn, 0).is_err() || REPLIES.insert(&reply, flow, 0).is_err() {
        count(counter::CONN_INSERT_FAIL);
        return xdp_action::XDP_DROP;
    }
    count(counter::CONN_NEW);
    add_conn(&SVC_STATS, svc.id);
    add_conn(&DEST_STATS, dest_id);
    match CONNS.get_ptr_mut(flow) {
        Some(c) => client_path(ctx, pkt, unsafe { &mut *c }, now),
        None => xdp_action::XDP_DROP,
    }
}

/// client -> real: track state, count, rewrite the destination, forward.
#[inline(always)]
fn client_path(ctx: &XdpContext, pkt: &Packet, conn: &mut Conn, now: u64) -> u32 {
    track(conn, pkt, Dir::In, now);
    add_traffic(conn, pkt, Dir::In);
    let (daddr, dport) = (conn.daddr[0], conn.dport);
    if !nat::rewrite_v4(ctx, pkt, End::Destination, daddr, dport) {
        return xdp_action::XDP_PASS;
    }
    forward::ipv4(ctx, pkt, pkt.src, daddr, pkt.sport, dport)
}

/// real -> client: track state, count, put the VIP back as source, forward.
#[inline(always)]
fn reply_path(ctx: &XdpContext, pkt: &Packet, conn: &mut Conn, client: &FlowKey) -> u32 {
    if pkt.ttl <= 1 {
        count(counter::PASS_TTL);
        return xdp_action::XDP_PASS;
    }
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    conn.flags |= CONN_F_SEEN_REPLY;
    track(conn, pkt, Dir::Out, now);
    add_traffic(conn, pkt, Dir::Out);
    let (vaddr, vport) = (client.dst[0], client.dport);
    if !nat::rewrite_v4(ctx, pkt, End::Source, vaddr, vport) {
        return xdp_action::XDP_PASS;
    }
    forward::ipv4(ctx, pkt, vaddr, pkt.dst, vport, pkt.dport)
}

/// Advances the TCP state (and its timeout) and marks the connection as alive now.
#[inline(always)]
fn track(conn: &mut Conn, pkt: &Packet, dir: Dir, now: u64) {
    if pkt.proto == IPPROTO_TCP {
        let next = state::tcp_next(conn.state, dir, pkt.tcp_flags);
        if next != conn.state {
            conn.state = next;
            conn.timeout = state::timeout_of(next);
        }
    }
    conn.last_seen = now;
}

#[inline(always)]
fn expired(conn: &Conn, now: u64) -> bool {
    now.saturating_sub(conn.last_seen) > (conn.timeout as u64) * 1_000_000_000
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
fn add_traffic(conn: &Conn, pkt: &Packet, dir: Dir) {
    let bytes = pkt.tot_len as u64;
    for (map, index) in [(&SVC_STATS, conn.svc_id), (&DEST_STATS, conn.dest_id)] {
        if let Some(s) = map.get_ptr_mut(index) {
            let s = unsafe { &mut *s };
            match dir {
                Dir::In => {
                    s.inpkts += 1;
                    s.inbytes += bytes;
                }
                Dir::Out => {
                    s.outpkts += 1;
                    s.outbytes += bytes;
                }
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

/// The trivial program: the floor that benchmarks measure against (and a way to give a veth
/// peer a NAPI context so XDP_TX/redirect towards it works).
#[xdp]
pub fn xlvs_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}
