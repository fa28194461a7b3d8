//! IP fragments, both families (program `xlvs_frag`, `Stage::Frag`, tail-called by the
//! main program for fragments only, so its cost and stack stay off the unfragmented path).
//!
//! The VIP is a local address: a fragment handed to the kernel is reassembled and delivered to
//! this host, i.e. lost for the service. So fragments follow their datagram's connection:
//!
//! * The **first fragment** (offset 0) carries the ports and is handled like any packet of its
//!   flow (the main program: connection lookup or creation, rewrite; NAT's L4 checksum update is
//!   incremental, so it is right for the whole datagram). Before that, this program records
//!   (af, proto, source, destination, IP id) -> the flow's ports in `FRAGS` (LRU, entries live
//!   `FRAG_TIMEOUT_NS`) and hands it to the main program with `FRAG_MARK` set (without the mark
//!   the main program sends first fragments here).
//! * A **later fragment** (no ports) finds its flow through that record and the flow's
//!   connection entry, and gets the same treatment as the first: addresses rewritten (IPv4
//!   header checksum updated; its L4 checksum lives in the first fragment), same next hop and
//!   MACs (NAT and FULLNAT both ways, DR MACs only). Tunnel reals: refused (`FRAG_REFUSED`;
//!   `xlvs_tunnel` needs a whole inner packet).
//!   Counted as bytes of the connection's service and real, not as packets (IPVS counts the
//!   reassembled datagram once).
//! * A later fragment whose first was not seen (out of order, record expired, one-packet
//!   scheduling which keeps no entry) goes to the kernel (`FRAG_UNTRACKED`), or is dropped when
//!   it is addressed to a VIP and `config::FRAG_DROP` is on (`DROP_FRAGMENT`). Fragments of a
//!   SYNPROXY handshake and later fragments towards tunnel reals are refused the same way
//!   (`FRAG_REFUSED`); TOA is never inserted into a
//!   fragment (it would shift the later fragments' offsets).

use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use ebpf_common::{
    AF_INET6, CONN_F_REPLY, CONN_F_SYNPROXY, Conn, FWD_DROUTE, FWD_FULLNAT, FWD_MASQ, FWD_TUNNEL,
    FlowKey, config, counter, nh_stamp,
};

use crate::csum;
use crate::forward::{self, Flow, Hop, NhSlot};
use aya_ebpf::{macros::map, maps::LruHashMap};
use ebpf_common::Stage;

use crate::maps::{CONNS, DEST_NH, DEST_STATS, SVC_STATS, count, is_vip, setting};
use crate::one_entry;
use crate::parse::{self, Fragment, Packet, ptr_at};
use crate::proto::{IP4_CHECK, addr_offs};
use crate::stage::{Handoff, Scratch, jump};

/// (af, proto, source, destination, IP id) of a datagram whose first fragment was seen -> the
/// ports of its flow, so its later fragments find the same connection. Small, LRU and not
/// pinned: an entry matters for a few seconds only.
#[map]
static FRAGS: LruHashMap<FragKey, FragFlow> = LruHashMap::with_max_entries(MAX_FRAGS, 0);

/// Set when a recorded first fragment is handed to the main program (which would otherwise
/// send it back here).
#[map]
static FRAG_MARK: Handoff<u32> = Handoff::new();

/// The fragment being handled and its FRAGS key (no stack room).
#[map]
static SCRATCH_FRAG: Scratch<FragKey> = Scratch::new();

/// Datagrams whose first fragment is remembered at once.
pub const MAX_FRAGS: u32 = 16384;
/// How long a first fragment's record lets later fragments follow it. Reassembly in the kernel
/// waits 30 s; fragments of one datagram normally arrive within microseconds, and a short life
/// keeps a reused IPv4 id from matching a stale record.
const FRAG_TIMEOUT_NS: u64 = 5_000_000_000;

/// FRAGS key: a datagram as IP reassembly identifies it (IPv6: proto 0, the 32-bit id suffices
/// and a later fragment's next header may be an extension header).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FragKey {
    pub src: [u32; 4],
    pub dst: [u32; 4],
    pub id: u32,
    pub af: u8,
    pub proto: u8,
    pub _pad: [u8; 2],
}

/// FRAGS value: the flow of the datagram (its connection-table key with the fragment's
/// addresses) and when its first fragment was seen.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FragFlow {
    pub seen: u64,
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub _pad: [u8; 3],
}

/// The main program's side: this first fragment was recorded here already (consumes the mark).
#[inline(always)]
pub fn recorded() -> bool {
    FRAG_MARK.take().is_some()
}

/// A fragment we do not forward: the kernel's, or dropped when it is addressed to a VIP and
/// the policy says so.
#[inline(always)]
pub fn refuse(af: u8, dst: &[u32; 4], reason: u32) -> u32 {
    if setting(config::FRAG_DROP) && is_vip(af, dst) {
        count(counter::DROP_FRAGMENT);
        return xdp_action::XDP_DROP;
    }
    count(reason);
    xdp_action::XDP_PASS
}

/// Entry of `xlvs_frag`.
#[inline(always)]
pub fn handle(ctx: &XdpContext, now: u64) -> u32 {
    let f = match parse::fragment(ctx) {
        Ok(f) => f,
        Err(reason) => {
            count(reason);
            return xdp_action::XDP_PASS;
        }
    };
    let Some(key) = SCRATCH_FRAG.get() else {
        return xdp_action::XDP_PASS;
    };
    *key = FragKey {
        src: f.src,
        dst: f.dst,
        id: f.id,
        af: f.af,
        proto: if f.af == AF_INET6 { 0 } else { f.proto },
        _pad: [0; 2],
    };
    if f.first {
        first(ctx, &f, key, now)
    } else {
        later(ctx, &f, key, now)
    }
}

/// A first fragment: recorded if it may belong to a connection, then the main program's.
#[inline(always)]
fn first(ctx: &XdpContext, f: &Fragment, key: &FragKey, now: u64) -> u32 {
    let pkt = match parse::parse(ctx) {
        Ok(pkt) => pkt,
        Err(reason) => {
            count(reason);
            return xdp_action::XDP_PASS;
        }
    };
    let flow = pkt.flow();
    // A reply of a one-entry NAT connection: its CLIENT entry (one_entry.rs).
    let known = match one_entry::client_of(&flow) {
        Some((entry, _)) => Some(entry as *const Conn),
        None => CONNS.get_ptr(&flow),
    };
    // SAFETY: a map value pointer from a successful lookup: non-null, aligned and valid for this
    // program run.
    match known.map(|c| unsafe { &*c }) {
        Some(c) if c.flags & CONN_F_SYNPROXY != 0 => {
            return refuse(f.af, &f.dst, counter::FRAG_REFUSED);
        }
        Some(_) => {}
        None if !is_vip(pkt.af, &pkt.dst) && !setting(config::FWMARK_SERVICES) => {
            // Not ours (the host's own traffic): no record.
            count(counter::PASS_FRAGMENT);
            return xdp_action::XDP_PASS;
        }
        None => {}
    }
    let rec = FragFlow {
        seen: now,
        sport: pkt.sport,
        dport: pkt.dport,
        proto: pkt.proto,
        _pad: [0; 3],
    };
    if FRAGS.insert(key, &rec, 0).is_ok() {
        count(counter::FRAG_FIRST);
    }
    if let Some(m) = FRAG_MARK.put() {
        *m = 1;
    }
    let verdict = jump(ctx, Stage::Main);
    FRAG_MARK.cancel();
    verdict
}

/// A later fragment: the treatment its first fragment got, from the connection entry.
#[inline(always)]
fn later(ctx: &XdpContext, f: &Fragment, key: &FragKey, now: u64) -> u32 {
    // SAFETY: the record is used within this run; a map value lives for the whole program run
    // (RCU).
    let rec = match unsafe { FRAGS.get(key) } {
        Some(r) if now.saturating_sub(r.seen) <= FRAG_TIMEOUT_NS => *r,
        _ => return refuse(f.af, &f.dst, untracked_reason(f)),
    };
    let flow = FlowKey {
        src: f.src,
        dst: f.dst,
        sport: rec.sport,
        dport: rec.dport,
        proto: rec.proto,
        af: f.af,
        _pad: [0; 2],
    };
    // A reply of a one-entry NAT connection finds its CLIENT entry (one_entry.rs).
    let derived = one_entry::client_of(&flow);
    let known = match derived {
        Some((entry, _)) => Some(entry),
        None => CONNS.get_ptr_mut(&flow),
    };
    let Some(entry) = known else {
        return refuse(f.af, &f.dst, untracked_reason(f));
    };
    // SAFETY: `entry` is a map value pointer from get_ptr_mut: non-null, aligned and valid for this
    // program run.
    let entry = unsafe { &mut *entry };
    if entry.flags & CONN_F_SYNPROXY != 0 {
        return refuse(f.af, &f.dst, counter::FRAG_REFUSED);
    }
    if f.ttl <= 1 {
        count(counter::PASS_TTL);
        return xdp_action::XDP_PASS;
    }
    let pkt = Packet {
        l3_off: f.l3_off,
        l4_off: 0,
        af: f.af,
        proto: rec.proto,
        src: f.src,
        dst: f.dst,
        sport: rec.sport,
        dport: rec.dport,
        tcp_flags: 0,
        ttl: f.ttl,
        tos: f.tos,
        tot_len: f.tot_len,
        tcp_hdr_len: 0,
        frag: 2,
    };
    count(counter::FRAG_FORWARDED);
    if let Some((_, owner)) = derived {
        add_bytes(entry, f.tot_len, true);
        to_client(ctx, &pkt, entry, &owner.addr, owner.port, now)
    } else if entry.flags & CONN_F_REPLY != 0 {
        add_bytes(entry, f.tot_len, true);
        let (vaddr, vport) = (entry.to_addr, entry.to_port);
        to_client(ctx, &pkt, entry, &vaddr, vport, now)
    } else {
        add_bytes(entry, f.tot_len, false);
        to_real(ctx, &pkt, entry, now)
    }
}

/// Counter for a later fragment without a record: ours (to a VIP) or the host's.
#[inline(always)]
fn untracked_reason(f: &Fragment) -> u32 {
    if is_vip(f.af, &f.dst) {
        counter::FRAG_UNTRACKED
    } else {
        counter::PASS_FRAGMENT
    }
}

/// client -> real, as `to_real` in main.rs does for whole packets, addresses only.
#[inline(always)]
fn to_real(ctx: &XdpContext, pkt: &Packet, conn: &Conn, now: u64) -> u32 {
    let mut saddr = pkt.src;
    let mut sport = pkt.sport;
    let hop = match conn.fwd {
        FWD_MASQ => {
            set_addr(ctx, pkt, false, &conn.to_addr);
            Hop::Routed
        }
        FWD_FULLNAT => {
            set_addr(ctx, pkt, false, &conn.to_addr);
            set_addr(ctx, pkt, true, &conn.via_addr);
            (saddr, sport) = (conn.via_addr, conn.via_port);
            Hop::Routed
        }
        FWD_DROUTE => Hop::Bridged,
        // xlvs_tunnel parses the packet it encapsulates (a later fragment has no ports) and
        // derives GUE/GRE checksums from a whole inner packet's: not for fragments.
        FWD_TUNNEL => return refuse(pkt.af, &pkt.dst, counter::FRAG_REFUSED),
        _ => {
            count(counter::PASS_LOCAL);
            return xdp_action::XDP_PASS;
        }
    };
    let flow = Flow {
        saddr,
        daddr: conn.to_addr,
        sport,
        dport: conn.to_port,
    };
    // SAFETY: `p` is a map value pointer from get_ptr_mut: non-null, aligned and valid for this
    // program run.
    let nh = DEST_NH
        .get_ptr_mut(conn.dest_id)
        .map(|p| NhSlot::of(unsafe { &mut *p }));
    forward::send(ctx, pkt, &flow, nh, nh_stamp(now), hop)
}

/// real -> client (NAT, FULLNAT), as `to_client_path` in path/established.rs, addresses only:
/// the source becomes `vaddr`:`vport` (the VIP); `entry` is the REPLY entry or a one-entry
/// connection's CLIENT entry.
#[inline(always)]
fn to_client(
    ctx: &XdpContext,
    pkt: &Packet,
    entry: &mut Conn,
    vaddr: &[u32; 4],
    vport: u16,
    now: u64,
) -> u32 {
    set_addr(ctx, pkt, true, vaddr);
    let (mut caddr, mut cport) = (pkt.dst, pkt.dport);
    if entry.fwd == FWD_FULLNAT {
        set_addr(ctx, pkt, false, &entry.via_addr);
        (caddr, cport) = (entry.via_addr, entry.via_port);
    }
    let flow = Flow {
        saddr: *vaddr,
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

/// Writes the source (`src`) or destination address; IPv4 also updates the header checksum.
#[inline(always)]
fn set_addr(ctx: &XdpContext, pkt: &Packet, src: bool, addr: &[u32; 4]) {
    if pkt.is_v6() {
        let (s_off, d_off) = addr_offs(true);
        let off = pkt.l3_off + if src { s_off } else { d_off };
        if let Some(p) = ptr_at::<[u32; 4]>(ctx, off) {
            // SAFETY: `p` comes from ptr_at, which checked that all its bytes lie before data_end;
            // an unaligned write needs no alignment.
            unsafe { p.write_unaligned(*addr) };
        }
        return;
    }
    let old = if src { pkt.src[0] } else { pkt.dst[0] };
    let (s_off, d_off) = addr_offs(false);
    let off = pkt.l3_off + if src { s_off } else { d_off };
    if let (Some(p), Some(check)) = (
        ptr_at::<u32>(ctx, off),
        ptr_at::<u16>(ctx, pkt.l3_off + IP4_CHECK),
    ) {
        // SAFETY: the pointers come from ptr_at just above (bounds checked against data_end);
        // unaligned accesses need no alignment.
        unsafe {
            p.write_unaligned(addr[0]);
            check.write_unaligned(csum::replace4(check.read_unaligned(), old, addr[0]));
        }
    }
}

/// A later fragment's bytes on its connection's service and real (packets are counted once,
/// with the first fragment).
#[inline(always)]
fn add_bytes(conn: &Conn, len: u16, out: bool) {
    for (map, index) in [(&SVC_STATS, conn.svc_id), (&DEST_STATS, conn.dest_id)] {
        if let Some(s) = map.get_ptr_mut(index) {
            // SAFETY: `s` is a map value pointer from get_ptr_mut: non-null, aligned and valid for
            // this program run; per-CPU, so no other CPU writes it.
            let s = unsafe { &mut *s };
            if out {
                s.outbytes += len as u64;
            } else {
                s.inbytes += len as u64;
            }
        }
    }
}
