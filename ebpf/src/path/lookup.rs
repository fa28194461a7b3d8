//! The attached program (`xlvs`): parse once, look the flow up once (one table holds both
//! directions of every connection), and send the packet on: to the established paths, to a
//! stage of its own (SYNPROXY, translation, TOA, tunnel, fragments, ICMP), or to the
//! new-connection stage. Anything that is not ours goes to the kernel untouched.

use aya_ebpf::{bindings::xdp_action, helpers::bpf_ktime_get_coarse_ns, programs::XdpContext};
use ebpf_common::{
    CONN_F_ORPHAN, CONN_F_PERSIST, CONN_F_REPLY, CONN_F_REUSE_SYN, CONN_F_SEQADJ, CONN_F_SYNPROXY,
    CONN_X_ONE_ENTRY, Conn, FlowKey, S_CLOSE, S_TIME_WAIT, Stage, config, counter, reply_key_of,
};

use crate::addr_filter;
use crate::conncount;
use crate::frag;
use crate::fw;
use crate::fwmark;
use crate::maps::{CONNS, count, setting, vip_services};
use crate::one_entry;
use crate::parse::{self, ICMP_CANDIDATE, Packet};
use crate::path::established;
use crate::persist;
use crate::proto::{IPPROTO_TCP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN};
use crate::reset;
use crate::service;
use crate::stage::jump;
use crate::synproxy;
use crate::tunnel;

/// Body of `xlvs`.
#[inline(always)]
pub fn main(ctx: &XdpContext) -> u32 {
    let pkt = &match parse::parse(ctx) {
        Ok(pkt) => pkt,
        // In its own program: its stack would not fit beside this one's.
        Err(ICMP_CANDIDATE) => return jump(ctx, Stage::Icmp),
        // A later fragment: it follows its first fragment's connection (frag.rs).
        Err(counter::PASS_FRAGMENT) => return jump(ctx, Stage::Frag),
        Err(reason) => {
            count(reason);
            return xdp_action::XDP_PASS;
        }
    };
    if pkt.frag != 0 && !frag::recorded() {
        // A first fragment: xlvs_frag records it for the later ones and sends it back here.
        return jump(ctx, Stage::Frag);
    }
    if !addr_filter::may_be_ours(pkt)
        && (!setting(config::FWMARK_SERVICES) || fwmark::port_free(pkt))
    {
        // No VIP, no real server, no fwmark rule's port: a host's other traffic, of no
        // connection, passed before the connection table is asked (addr_filter.rs) — once
        // the firewall's rules, if there are any, let it (fw.rs).
        if fw::check(pkt, false) == fw::Verdict::Drop {
            return xdp_action::XDP_DROP;
        }
        count(counter::PASS_NOT_VIP);
        return xdp_action::XDP_PASS;
    }
    let flow = pkt.flow();
    // SAFETY: a BPF helper without arguments or preconditions.
    let now = unsafe { bpf_ktime_get_coarse_ns() };

    // One lookup finds either direction of a known connection: a reply of a one-entry NAT
    // connection by the CLIENT key its real's owner gives (one_entry.rs), anything else by
    // its own key.
    let derived = one_entry::client_of(&flow);
    let known = match derived {
        Some((entry, _)) => Some(entry),
        None => CONNS.get_ptr_mut(&flow),
    };
    if let Some(entry) = known {
        // SAFETY: `entry` is a map value pointer from get_ptr_mut: non-null, aligned and valid for
        // this program run.
        let entry = unsafe { &mut *entry };
        if parse::invalid(ctx, pkt) {
            count(counter::DROP_INVALID);
            return xdp_action::XDP_DROP;
        }
        if entry.flags & CONN_F_ORPHAN != 0 {
            // The other half of this connection was evicted: end it at this end too.
            return reset::call(ctx);
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
            return synproxy::call(ctx, pkt);
        }
        if let Some((_, owner)) = derived {
            return established::to_client_path(ctx, pkt, entry, Some(owner), now, false);
        }
        if entry.flags & CONN_F_REPLY != 0 {
            return established::to_client_path(ctx, pkt, entry, None, now, false);
        }
        if entry.flags & (CONN_F_SEQADJ | CONN_F_REUSE_SYN) == CONN_F_SEQADJ | CONN_F_REUSE_SYN
            && !restart
            && (entry.state == S_TIME_WAIT || entry.state == S_CLOSE)
            && pkt.tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN) == TCP_ACK
        {
            // A closed proxied connection's flow where the client sent a new SYN: this ACK may
            // complete the new cookie handshake (session reuse); synproxy.rs checks, else it
            // is the old one's.
            return synproxy::call(ctx, pkt);
        }
        if !restart && !expired(entry, &flow, now) && !reopens(entry, pkt) {
            if entry.flags & CONN_F_PERSIST != 0
                && pkt.tcp_flags & (TCP_FIN | TCP_RST) != 0
                && let Some(svc) = service::of(pkt)
            {
                persist::refresh(svc, pkt, now);
            }
            if entry.toa_ack != 0 && established::wants_toa(ctx, pkt, entry) {
                // In its own program: moving headers needs stack this one does not have.
                return jump(ctx, Stage::Toa);
            }
            return tunnel::finish(ctx, established::to_real_path(ctx, pkt, entry, now, false));
        }
        // This connection is over: a new one replaces its entry (or the packet is dropped).
        conncount::closed(entry, pkt.proto);
        if entry.flags & CONN_F_SEQADJ != 0 && pkt.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN {
            // Answered with a cookie; the ACK completing that handshake reopens (see above).
            entry.flags |= CONN_F_REUSE_SYN;
        }
    }
    // No live connection: the firewall's rules come before anything opens (fw.rs). (Both
    // tests as scalars: LLVM would otherwise OR the two map pointers, which the verifier
    // refuses.)
    let to_vip = vip_services(pkt.af, &pkt.dst) != 0;
    if fw::check(pkt, to_vip) == fw::Verdict::Drop {
        return xdp_action::XDP_DROP;
    }
    if known.is_none() && !to_vip && (!setting(config::FWMARK_SERVICES) || fwmark::port_free(pkt)) {
        // Not ours: the common case for a host's other traffic, answered here. (While fwmark
        // services exist, any address may be classified into one on the ports their rules
        // cover: xlvs_new decides.)
        count(counter::PASS_NOT_VIP);
        return xdp_action::XDP_PASS;
    }
    if parse::invalid(ctx, pkt) {
        count(counter::DROP_INVALID);
        return xdp_action::XDP_DROP;
    }
    // A packet that may open a connection: that stage has its own program (its own verifier
    // budget and stack; see ARCHITECTURE.md).
    parse::jump_parsed(ctx, Stage::New, pkt)
}

/// Expired when neither direction was seen within the state's timeout. The REPLY entry is only
/// consulted when the CLIENT side looks idle (rare), to keep the hot path at one lookup; a
/// one-entry connection's `last_seen` is already both directions'.
#[inline(always)]
fn expired(conn: &mut Conn, flow: &FlowKey, now: u64) -> bool {
    let timeout = (conn.timeout as u64) * 1_000_000_000;
    if now.saturating_sub(conn.last_seen) <= timeout {
        return false;
    }
    if conn.xflags & CONN_X_ONE_ENTRY != 0 {
        return true;
    }
    // SAFETY: the entry is read within this run; a map value lives for the whole program run (RCU).
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
