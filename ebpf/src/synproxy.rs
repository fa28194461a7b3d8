//! SYNPROXY (alibaba LVS `-j enable`): a SYN flood never reaches the real servers nor fills the
//! connection table. For a SYNPROXY service (IPv4 without IP options, IPv6 without extension
//! headers):
//!
//! 1. A SYN is answered here with a SYN-ACK whose ISN is a SYN cookie
//!    (`bpf_tcp_raw_gen_syncookie_ipv4/6`), sent back with XDP_TX. Nothing is stored.
//! 2. The client's ACK is checked (`bpf_tcp_raw_check_syncookie_ipv4/6`). In defer mode
//!    (`config::SYNPROXY_DEFER`, alibaba's `synproxy_defer`) one without data is dropped after
//!    the check (nothing stored) and the client's first data segment, whose cookie checks the
//!    same way, takes its place; its data is dropped and sent again by the client. A valid one is turned
//!    into a SYN to the real server (the client's own ISN, so the client's sequence space needs
//!    no translation) and handed to the new-connection stage (tail call; to the main program
//!    when the flow has an entry it may replace), which schedules and opens the
//!    connection as for any SYN; the entries are marked pending (`CONN_F_SYNPROXY`).
//!    Our SYN-ACK closes the client's window (zero; not in defer mode), so the client sends
//!    nothing that could overtake the real's SYN-ACK and be lost.
//! 3. The real server's SYN-ACK becomes the segment that opens the client's window
//!    (`open_client_window`; in defer mode it is answered with the ACK that completes the
//!    real's handshake, with TOA for FULLNAT), and the difference between our cookie and its ISN is recorded
//!    (`Conn::seq_delta`, with `ts_delta` and the window shifts): from then on `xlvs_seqadj`
//!    (seqadj.rs) translates every segment both ways. A RST instead is translated to the client;
//!    a bare ACK (a TIME_WAIT of an earlier connection on the real) is answered with a RST that
//!    ends it. Client segments meanwhile (zero-window probes) make us send the SYN again (it may
//!    have been lost).
//! 4. Session reuse: an ACK on the flow of a closed proxied connection is checked as a cookie
//!    ACK (the client connected again from the same port); without a valid cookie it is the old
//!    connection's and is translated as such.
//!
//! Options (as the kernel's own cookies do, `cookie_init_timestamp`): when the client's SYN
//! carries timestamps, our SYN-ACK offers MSS, SACK-permitted, window scale
//! `SYNPROXY_WSCALE` (7) and timestamps, and its TSval carries the client's window scale, SACK
//! bit and MSS index in its low 8 bits (`ebpf_common::synproxy_ts`); the client echoes it in
//! the TSecr of its ACK, so the SYN to the real server offers the client's own options (and its
//! TSval). The real's SYN-ACK gives its TSval (`ts_delta` = our TSval - its TSval) and window
//! scale: when that differs from 7, its windows are rescaled on the way to the client
//! (`win_shift_out` = its scale - 7: shifted left, saturating, or right, rounding down); a real
//! that refuses window scaling gets the client's windows scaled up (`win_shift_in`). seqadj.rs
//! then translates every segment (sequence numbers, TSval/TSecr, SACK blocks, windows).
//! A client without timestamps gets an MSS only (no window scaling, SACK or timestamps: the
//! cookie has no room for them) and the real server is offered `SYNPROXY_MSS`. ECN is not
//! negotiated. Data in the cookie ACK is dropped (the client sends it again).
//!
//! IPv6: the same code, monomorphised (`handle::<true>`) into its own program `xlvs_synproxy6`
//! (JUMP slot `JUMP_SYNPROXY6`; one program for both families does not fit the stack). The
//! cookie comes from `bpf_tcp_raw_gen_syncookie_ipv6`, whose MSS is an entry of the kernel's
//! IPv6 table (`SYNPROXY_MSS_TABLE6`: 1220, 1420, 1440, 8940), so the MSS index in our TSval
//! refers to that table; without timestamps the real is offered `SYNPROXY_MSS6` (1440) and the
//! client 1440 (minus 20 for TOA). Packets we make have no IP checksum; their TCP checksum
//! covers the IPv6 pseudo-header (both addresses, 32-bit length, next header). FULLNAT's TOA
//! is alibaba's 253/20 (port, IPv6 address) in the handshake's ACK to the real. IPv6 packets
//! with extension headers never get here: the parser hands them to the kernel (`pass_ipv6_ext`),
//! so a SYN carrying one is not answered (as for any IPv6 service).
//! Only NAT and FULLNAT reals can be proxied (the real's SYN-ACK must come back through us);
//! with DR/TUN reals the connection is opened unproxied and the client will refuse the real's
//! own SYN-ACK, as with alibaba LVS, whose SYNPROXY needs NAT/FULLNAT too.

use aya_ebpf::{
    bindings::{iphdr, ipv6hdr, tcphdr, xdp_action},
    helpers::{
        bpf_tcp_raw_check_syncookie_ipv4, bpf_tcp_raw_check_syncookie_ipv6,
        bpf_tcp_raw_gen_syncookie_ipv4, bpf_tcp_raw_gen_syncookie_ipv6, bpf_xdp_adjust_tail,
    },
    programs::XdpContext,
};
use ebpf_common::{
    CONN_F_REPLY, CONN_F_SEQADJ, CONN_F_SYNPROXY, Conn, FWD_FULLNAT, FlowKey, S_ESTABLISHED,
    SYNPROXY_MSS, SYNPROXY_MSS_TABLE, SYNPROXY_MSS_TABLE6, SYNPROXY_MSS6, SYNPROXY_WSCALE, config,
    counter, synproxy_ts,
};

use aya_ebpf::macros::map;
use ebpf_common::synproxy_ts::{Negotiated, negotiate};
use ebpf_common::{Stage, client_key_at};

use crate::csum;
use crate::forward;
use crate::maps::{CONNS, count, setting};
use crate::parse::{self, Packet, ptr_at};
use crate::proto::{IP4_HLEN, IP6_HLEN, TCP_ACK, TCP_ACK_SEQ, TCP_DOFF, TCP_RST, TCP_SEQ, TCP_SYN};
use crate::stage::{Handoff, Scratch, jump};
use crate::tcpopt::{self, Opts};

/// Window we announce in the packets we make (SYN windows are never scaled).
const WINDOW: u16 = 64240;

/// The SYN the ACK of a valid cookie became, on its way to the stage that opens it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Open {
    pub flow: FlowKey,
    /// Our ISN towards the client (the cookie) and the client's ISN.
    pub cookie: u32,
    pub client_isn: u32,
    /// The TSecr of the cookie ACK: our SYN-ACK's TSval (the client's options); 0 = none.
    pub tsecr: u32,
    pub _pad: u32,
}

/// The cookie ACK turned SYN, handed to `xlvs_new` (or `xlvs`), which opens its connection.
#[map]
static SYNPROXY_OPEN: Handoff<Open> = Handoff::new();

/// The TCP options of a packet being made (the IPv6 program's stack has no room).
#[map]
static SCRATCH_SP_OPTS: Scratch<[u8; 32]> = Scratch::new();

/// Whether SYNPROXY can handle this packet's layout: IPv4 without options, IPv6 without
/// extension headers (the parser hands those to the kernel before we see them).
#[inline(always)]
pub fn applies(pkt: &Packet) -> bool {
    pkt.l4_off - pkt.l3_off == if pkt.is_v6() { 40 } else { 20 }
}

/// Hands the packet to the SYNPROXY program of its family.
#[inline(always)]
pub fn call(ctx: &XdpContext, pkt: &Packet) -> u32 {
    let stage = if pkt.is_v6() {
        Stage::Synproxy6
    } else {
        Stage::Synproxy
    };
    parse::jump_parsed(ctx, stage, pkt)
}

/// Bytes of the IP header this program's family makes (no options, no extension headers).
#[inline(always)]
const fn ip_len<const V6: bool>() -> usize {
    if V6 { IP6_HLEN } else { IP4_HLEN }
}

/// The MSS we announce without knowing better, and the kernel's cookie MSS table.
#[inline(always)]
const fn mss_of<const V6: bool>() -> (u16, [u16; 4]) {
    if V6 {
        (SYNPROXY_MSS6, SYNPROXY_MSS_TABLE6)
    } else {
        (SYNPROXY_MSS, SYNPROXY_MSS_TABLE)
    }
}

/// Size of the TOA option for this family (alibaba: 254/8 for IPv4, 253/20 for IPv6).
#[inline(always)]
const fn toa_len<const V6: bool>() -> u16 {
    if V6 { 20 } else { 8 }
}

/// The main program's side: is this SYN the one we made from a valid cookie ACK? Then it
/// opens the connection (returns (cookie, client ISN)) instead of being answered with a cookie.
#[inline(always)]
pub fn take_marker(flow: &FlowKey) -> Option<(u32, u32, u32)> {
    let m = SYNPROXY_OPEN.peek()?;
    if m.flow != *flow {
        return None;
    }
    SYNPROXY_OPEN.cancel();
    Some((m.cookie, m.client_isn, m.tsecr))
}

/// Whether the marker is armed for `flow` (without consuming it).
#[inline(always)]
pub fn armed_for(flow: &FlowKey) -> bool {
    match SYNPROXY_OPEN.peek() {
        Some(m) => m.flow == *flow,
        None => false,
    }
}

/// Entry of the `xlvs_synproxy` (IPv4) and `xlvs_synproxy6` (`V6`) programs: the same code,
/// monomorphised per family, so each program is verified with its own budget and stack.
#[inline(always)]
pub fn handle<const V6: bool>(ctx: &XdpContext, now: u64) -> u32 {
    // IPv4's program need not carry the IPv6 extension-header walk (stack, verifier budget).
    let parsed = if V6 {
        parse::handed_or(ctx, parse::parse)
    } else {
        parse::handed_or(ctx, parse::parse_ipv4_only)
    };
    let Ok(pkt) = parsed else {
        return xdp_action::XDP_PASS;
    };
    let flow = pkt.flow();
    if pkt.is_v6() != V6 || pkt.l4_off - pkt.l3_off != ip_len::<V6>() {
        return xdp_action::XDP_DROP;
    }
    // Options are looked at once here (a bounded walk costs the verifier much per copy).
    let Some(o) = tcpopt::find(ctx, &pkt) else {
        count(counter::SYNPROXY_BAD_OPTIONS);
        return xdp_action::XDP_DROP;
    };
    let flags = pkt.tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST);
    let mut reuse = false;
    let known = CONNS.get_ptr_mut(&flow);
    if let Some(entry) = known {
        // SAFETY: `entry` is a map value pointer from get_ptr_mut: non-null, aligned and valid for
        // this program run.
        let entry = unsafe { &mut *entry };
        // A closed (or expired) proxied connection on this flow: an ACK without a valid cookie
        // is still the old connection's (e.g. its last ACK sent again).
        reuse = entry.flags & (CONN_F_SEQADJ | CONN_F_REPLY) == CONN_F_SEQADJ;
        if entry.flags & CONN_F_REPLY != 0 && entry.flags & CONN_F_SYNPROXY != 0 {
            return from_real::<V6>(ctx, &pkt, &o, entry, now);
        }
        // A bare SYN is a client starting over (its half-done attempt is forgotten): cookie.
        if entry.flags & CONN_F_SYNPROXY != 0 && flags != TCP_SYN {
            return resend_syn::<V6>(ctx, &pkt, &o, entry);
        }
    }
    if flags == TCP_SYN {
        return cookie_synack::<V6>(ctx, &pkt, &o, now);
    }
    if flags == TCP_ACK {
        return cookie_ack::<V6>(ctx, &pkt, &o, &flow, reuse, known.is_none());
    }
    count(counter::DROP_NO_SESSION);
    xdp_action::XDP_DROP
}

/// 1. SYN -> cookie SYN-ACK, back where it came from.
#[inline(always)]
fn cookie_synack<const V6: bool>(ctx: &XdpContext, pkt: &Packet, o: &Opts, now: u64) -> u32 {
    // The helper reads the TCP header with its options; the verifier only accepts a length it
    // can prove inside the packet, so each possible header length gets its own constant.
    let v = match pkt.tcp_hdr_len {
        20 => gen_cookie::<V6, 20>(ctx, pkt),
        24 => gen_cookie::<V6, 24>(ctx, pkt),
        28 => gen_cookie::<V6, 28>(ctx, pkt),
        32 => gen_cookie::<V6, 32>(ctx, pkt),
        36 => gen_cookie::<V6, 36>(ctx, pkt),
        40 => gen_cookie::<V6, 40>(ctx, pkt),
        44 => gen_cookie::<V6, 44>(ctx, pkt),
        48 => gen_cookie::<V6, 48>(ctx, pkt),
        52 => gen_cookie::<V6, 52>(ctx, pkt),
        56 => gen_cookie::<V6, 56>(ctx, pkt),
        60 => gen_cookie::<V6, 60>(ctx, pkt),
        _ => -1,
    };
    if v < 0 {
        return xdp_action::XDP_DROP;
    }
    let cookie = v as u32;
    // The MSS the cookie encodes (an entry of the kernel's table, at most the client's).
    let cookie_mss = (v >> 32) as u16;
    let client_tsval = if o.ts != 0 {
        tcpopt::get32(ctx, pkt, o.ts)
    } else {
        None
    };
    let client_seq = read_u32(ctx, pkt.l4_off + TCP_SEQ);
    let (mss, table) = mss_of::<V6>();
    // Room for TOA (FULLNAT) in the client's full-size segments.
    let mss = if toa_on() { mss - toa_len::<V6>() } else { mss };
    let m = mss.to_be_bytes();
    let hdr = Tcp {
        sport: pkt.dport,
        dport: pkt.sport,
        seq: cookie,
        ack: client_seq.wrapping_add(1),
        flags: TCP_SYN | TCP_ACK,
        // A closed window: the client sends nothing until the real's handshake is done (we
        // open it then, see `from_real`), so no data races the real's SYN-ACK and is lost.
        // Defer mode needs the client's first data to open the real's side: window open.
        window: if defer() { WINDOW } else { 0 },
    };
    let Some(opts) = opts_buffer() else {
        return xdp_action::XDP_DROP;
    };
    opts[..4].copy_from_slice(&[2, 4, m[0], m[1]]);
    let n = if let Some(their_ts) = client_tsval {
        // The client's options ride in the low bits of our TSval (it echoes them back).
        let ours = synproxy_ts::encode(
            (now >> 20) as u32,
            o.wscale,
            o.sack_ok,
            synproxy_ts::mss_index(cookie_mss, &table),
        );
        let (a, b) = if o.sack_ok { (4, 2) } else { (1, 1) };
        opts[4] = a;
        opts[5] = b;
        opts[6] = 8;
        opts[7] = 10;
        opts[8..12].copy_from_slice(&ours.to_be_bytes());
        opts[12..16].copy_from_slice(&their_ts.to_be_bytes());
        opts[16..20].copy_from_slice(&if o.wscale != 0xf {
            [1, 3, 3, SYNPROXY_WSCALE]
        } else {
            [1, 1, 1, 1]
        });
        count(counter::SYNPROXY_OPTIONS);
        40
    } else {
        24
    };
    if !build::<V6>(ctx, pkt, &hdr, opts, true, n) {
        return xdp_action::XDP_DROP;
    }
    count(counter::SYNPROXY_COOKIE_SENT);
    forward::back_out(ctx)
}

/// `bpf_tcp_raw_gen_syncookie_ipv4/6` on a TCP header of `N` bytes (options included).
#[inline(always)]
fn gen_cookie<const V6: bool, const N: usize>(ctx: &XdpContext, pkt: &Packet) -> i64 {
    let Some(th) = ptr_at::<[u8; N]>(ctx, pkt.l4_off) else {
        return -1;
    };
    let th = th as *mut tcphdr;
    if V6 {
        match ptr_at::<[u8; 40]>(ctx, pkt.l3_off) {
            // SAFETY: `iph` (40 bytes) and `th` (N bytes) come from ptr_at, bounds checked against
            // data_end as the helper reads them.
            Some(iph) => unsafe {
                bpf_tcp_raw_gen_syncookie_ipv6(iph as *mut ipv6hdr, th, N as u32)
            },
            None => -1,
        }
    } else {
        match ptr_at::<[u8; 20]>(ctx, pkt.l3_off) {
            // SAFETY: `iph` (20 bytes) and `th` (N bytes) come from ptr_at, bounds checked against
            // data_end as the helper reads them.
            Some(iph) => unsafe { bpf_tcp_raw_gen_syncookie_ipv4(iph as *mut iphdr, th, N as u32) },
            None => -1,
        }
    }
}

/// `bpf_tcp_raw_check_syncookie_ipv4/6` on the packet: whether the ACK's cookie is ours.
#[inline(always)]
fn cookie_valid<const V6: bool>(ctx: &XdpContext, pkt: &Packet) -> bool {
    let Some(th) = ptr_at::<[u8; 20]>(ctx, pkt.l4_off) else {
        return false;
    };
    let th = th as *mut tcphdr;
    let rc = if V6 {
        match ptr_at::<[u8; 40]>(ctx, pkt.l3_off) {
            // SAFETY: `iph` (40 bytes) and `th` (N bytes) come from ptr_at, bounds checked against
            // data_end as the helper reads them.
            Some(iph) => unsafe { bpf_tcp_raw_check_syncookie_ipv6(iph as *mut ipv6hdr, th) },
            None => -1,
        }
    } else {
        match ptr_at::<[u8; 20]>(ctx, pkt.l3_off) {
            // SAFETY: `iph` (20 bytes) and `th` (N bytes) come from ptr_at, bounds checked against
            // data_end as the helper reads them.
            Some(iph) => unsafe { bpf_tcp_raw_check_syncookie_ipv4(iph as *mut iphdr, th) },
            None => -1,
        }
    };
    rc == 0
}

/// 2. The client's ACK: a valid cookie opens the connection with a SYN to the real server.
#[inline(always)]
fn cookie_ack<const V6: bool>(
    ctx: &XdpContext,
    pkt: &Packet,
    o: &Opts,
    flow: &FlowKey,
    reuse: bool,
    unknown_flow: bool,
) -> u32 {
    if !cookie_valid::<V6>(ctx, pkt) {
        if reuse {
            // Not a new handshake: a segment of the old connection.
            return jump(ctx, Stage::Seqadj);
        }
        count(counter::SYNPROXY_BAD_COOKIE);
        return xdp_action::XDP_DROP;
    }
    if defer() && pkt.tot_len as usize <= ip_len::<V6>() + pkt.tcp_hdr_len as usize {
        // Defer mode: a handshake alone opens nothing; the client's first data will.
        count(counter::SYNPROXY_DEFERRED);
        return xdp_action::XDP_DROP;
    }
    let cookie = read_u32(ctx, pkt.l4_off + TCP_ACK_SEQ).wrapping_sub(1);
    let client_isn = read_u32(ctx, pkt.l4_off + TCP_SEQ).wrapping_sub(1);
    let (mut tsecr, mut tsval) = (0, 0);
    if o.ts != 0 {
        tsval = tcpopt::get32(ctx, pkt, o.ts).unwrap_or(0);
        tsecr = tcpopt::get32(ctx, pkt, o.ts + 4).unwrap_or(0);
    }
    if to_syn::<V6>(ctx, pkt, client_isn, tsecr, tsval) == 0 {
        return xdp_action::XDP_DROP;
    }
    let Some(m) = SYNPROXY_OPEN.put() else {
        return xdp_action::XDP_DROP;
    };
    *m = Open {
        flow: *flow,
        cookie,
        client_isn,
        tsecr,
        _pad: 0,
    };
    count(counter::SYNPROXY_OPENED);
    // The flow has no entry (looked up above): the SYN goes straight to the stage that opens
    // it. Otherwise the main program decides what it replaces (see path/lookup.rs).
    let verdict = jump(
        ctx,
        if unknown_flow {
            Stage::New
        } else {
            Stage::Main
        },
    );
    SYNPROXY_OPEN.cancel();
    verdict
}

/// A client segment while the real server has not answered: the SYN again (it may be lost).
#[inline(always)]
fn resend_syn<const V6: bool>(ctx: &XdpContext, pkt: &Packet, o: &Opts, client: &Conn) -> u32 {
    if pkt.tcp_flags & (TCP_RST | TCP_SYN) != 0 {
        return xdp_action::XDP_DROP;
    }
    // The client's current TSval (the encoded options are the pending entry's `ts_delta`).
    let tsval = if o.ts != 0 {
        tcpopt::get32(ctx, pkt, o.ts).unwrap_or(0)
    } else {
        0
    };
    if to_syn::<V6>(ctx, pkt, client.toa_ack, client.ts_delta, tsval) == 0 {
        return xdp_action::XDP_DROP;
    }
    let Some(job) = forward::FIRST_PACKET.put() else {
        return xdp_action::XDP_DROP;
    };
    *job = *client;
    count(counter::SYNPROXY_SYN_RESENT);
    // (The packet was rewritten: xlvs_fwd parses it again.)
    forward::first_packet(ctx, None)
}

/// 3. From the real server while its handshake is pending: its SYN-ACK opens the client's window
/// (or, in defer mode, is answered with the ACK that completes it); a RST goes on to the client
/// in the client's sequence space.
#[inline(always)]
fn from_real<const V6: bool>(
    ctx: &XdpContext,
    pkt: &Packet,
    o: &Opts,
    reply: &mut Conn,
    now: u64,
) -> u32 {
    let client_key = client_key_at(reply, pkt.proto, &pkt.dst, pkt.dport);
    let Some(client) = CONNS.get_ptr_mut(&client_key) else {
        return xdp_action::XDP_DROP;
    };
    // SAFETY: `client` is a map value pointer from get_ptr_mut: non-null, aligned and valid for
    // this program run.
    let client = unsafe { &mut *client };
    if reply.fwd == FWD_FULLNAT && (client.via_port != pkt.dport || client.via_addr != pkt.dst) {
        // An earlier attempt of a client that started over: its connection is gone.
        return xdp_action::XDP_DROP;
    }
    let cookie = reply.seq_delta;
    let real_seq = read_u32(ctx, pkt.l4_off + TCP_SEQ);
    if pkt.tcp_flags & TCP_RST != 0 {
        // Shifted so that the RST carries the sequence number the client expects next.
        let delta = cookie.wrapping_add(1).wrapping_sub(real_seq);
        settle(reply, client, delta, &Negotiated::NONE);
        // Translated and sent on by the translation program, like every later segment.
        return jump(ctx, Stage::Seqadj);
    }
    // A bare ACK to our SYN: the real still holds a TIME_WAIT of an earlier connection on these
    // addresses and ports (its PAWS check refused our SYN; the client, which would answer with
    // a RST, never sees it). Our RST at the ACK's acknowledgement number ends that TIME_WAIT;
    // the client's next segment makes us send the SYN again. (Same packet-making code as the
    // ACK below: this program's stack is full.)
    let tw = pkt.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_ACK;
    if !tw && pkt.tcp_flags & (TCP_SYN | TCP_ACK) != TCP_SYN | TCP_ACK {
        return xdp_action::XDP_DROP;
    }
    let mut hdr = Tcp {
        sport: pkt.dport,
        dport: pkt.sport,
        seq: read_u32(ctx, pkt.l4_off + TCP_ACK_SEQ),
        ack: 0,
        flags: TCP_RST,
        window: 0,
    };
    // TOA (8 or 20 bytes) and timestamps (12).
    let Some(opts) = opts_buffer() else {
        return xdp_action::XDP_DROP;
    };
    let mut len = 0;
    if !tw {
        let (mut real_tsval, mut real_tsecr) = (0, 0);
        if o.ts != 0 {
            real_tsval = tcpopt::get32(ctx, pkt, o.ts).unwrap_or(0);
            real_tsecr = tcpopt::get32(ctx, pkt, o.ts + 4).unwrap_or(0);
        }
        let n = negotiate(client.ts_delta, o.ts != 0, real_tsval, o.wscale);
        settle(reply, client, cookie.wrapping_sub(real_seq), &n);
        let old = client.state;
        client.state = S_ESTABLISHED;
        client.timeout = crate::state::timeout_of(S_ESTABLISHED);
        crate::conncount::moved(client, pkt.proto, old);
        client.last_seen = now;
        reply.last_seen = now;
        let fullnat = reply.fwd == FWD_FULLNAT;
        // The client's first segments acknowledge our cookie + 1: that is where TOA goes.
        client.toa_ack = if fullnat && toa_on() {
            cookie.wrapping_add(1).to_be()
        } else {
            0
        };
        if !defer() {
            return open_client_window::<V6>(ctx, pkt, o, real_seq, real_tsval, real_tsecr);
        }
        hdr.ack = real_seq.wrapping_add(1);
        hdr.flags = TCP_ACK;
        // In the real's units: the client's scale when both sides scale.
        hdr.window = WINDOW >> n.ack_window_shift;
        if client.toa_ack != 0 {
            // TOA in the ACK that completes the real's handshake (its TOA module reads it there).
            let p = reply.via_port.to_ne_bytes();
            opts[..4].copy_from_slice(&[
                if V6 { 253 } else { 254 },
                toa_len::<V6>() as u8,
                p[0],
                p[1],
            ]);
            let words = if V6 { 4 } else { 1 };
            let mut w = 0;
            while w < words {
                opts[4 + 4 * w..8 + 4 * w].copy_from_slice(&reply.via_addr[w].to_ne_bytes());
                w += 1;
            }
            len = toa_len::<V6>() as usize;
        }
        if o.ts != 0 {
            // TSval: the client's, which the real just echoed; TSecr: the real's.
            let mut ts = [0u8; 12];
            ts[..4].copy_from_slice(&[1, 1, 8, 10]);
            ts[4..8].copy_from_slice(&real_tsecr.to_be_bytes());
            ts[8..12].copy_from_slice(&real_tsval.to_be_bytes());
            if len != 0 {
                let t = toa_len::<V6>() as usize;
                opts[t..t + 12].copy_from_slice(&ts);
            } else {
                opts[..12].copy_from_slice(&ts);
            }
            len += 12;
        }
    }
    if !build::<V6>(ctx, pkt, &hdr, opts, true, 20 + len) {
        return xdp_action::XDP_DROP;
    }
    if tw {
        count(counter::SYNPROXY_REAL_TW_RESET);
        return forward::back_out(ctx);
    }
    count(counter::SYNPROXY_ESTABLISHED);
    forward::back_out(ctx)
}

/// 3b. (Not in defer mode.) The real's SYN-ACK becomes a segment from the real carrying one byte
/// at its ISN, with its window and timestamps, then goes to the client translated like any
/// later segment (seqadj.rs). The client sees one byte at our cookie's sequence number, which
/// it has already received: that segment opens the window our SYN-ACK closed (RFC 9293 window
/// update: same sequence as the SYN-ACK, larger window), its byte is dropped as a duplicate and
/// acknowledged at once. That acknowledgement, or the client's first data, completes the real's
/// handshake (with TOA for FULLNAT, as the first client segments carry it). Nothing the client
/// sends can race the real's SYN-ACK, and server-first protocols (SMTP, SSH) get their banner
/// without waiting for a retransmission.
#[inline(always)]
fn open_client_window<const V6: bool>(
    ctx: &XdpContext,
    pkt: &Packet,
    o: &Opts,
    real_seq: u32,
    tsval: u32,
    tsecr: u32,
) -> u32 {
    // A SYN's window is never scaled; the real's later segments are (by what it announced).
    // (data offset, flags, window): the low half is the window.
    let syn_window = read_u32(ctx, pkt.l4_off + TCP_DOFF) as u16;
    let window = if o.wscale != 0xf {
        syn_window >> (o.wscale & 15)
    } else {
        syn_window
    };
    let hdr = Tcp {
        sport: pkt.sport,
        dport: pkt.dport,
        seq: real_seq,
        ack: read_u32(ctx, pkt.l4_off + TCP_ACK_SEQ),
        flags: TCP_ACK,
        window,
    };
    let Some(opts) = opts_buffer() else {
        return xdp_action::XDP_DROP;
    };
    let n = if o.ts != 0 {
        opts[..4].copy_from_slice(&[1, 1, 8, 10]);
        opts[4..8].copy_from_slice(&tsval.to_be_bytes());
        opts[8..12].copy_from_slice(&tsecr.to_be_bytes());
        32
    } else {
        20
    };
    if !build::<V6>(ctx, pkt, &hdr, opts, false, n) || !append_zero_byte::<V6>(ctx, pkt, n) {
        return xdp_action::XDP_DROP;
    }
    count(counter::SYNPROXY_ESTABLISHED);
    jump(ctx, Stage::Seqadj)
}

/// Grows the segment `build` made (TCP header of `n` bytes, no payload) by one zero byte of
/// payload: lengths and checksums follow (a zero byte adds nothing to the TCP sum itself; the
/// pseudo-header's length does).
#[inline(always)]
fn append_zero_byte<const V6: bool>(ctx: &XdpContext, pkt: &Packet, n: usize) -> bool {
    let n = n & 0x3f;
    if !resize(ctx, pkt.l4_off + n + 1) {
        return false;
    }
    // The new byte with the header's last one before it: the verifier does not accept a
    // one-byte check at a variable offset (it compiles to `p >= end`).
    let (Some(tcp), Some(tail)) = (
        ptr_at::<[u8; 20]>(ctx, pkt.l4_off),
        ptr_at::<[u8; 2]>(ctx, pkt.l4_off + n - 1),
    ) else {
        return false;
    };
    // SAFETY: `tcp` comes from ptr_at after the resize (its 20 bytes lie before data_end); a byte
    // array needs no alignment.
    let tcp = unsafe { &mut *tcp };
    // SAFETY: `tail` comes from ptr_at after the resize (its 2 bytes lie before data_end).
    unsafe { (*tail)[1] = 0 };
    let word = |v: usize| u16::from_ne_bytes((v as u16).to_be_bytes());
    if V6 {
        // Payload length (no header checksum in IPv6).
        let Some(plen) = ptr_at::<[u8; 2]>(ctx, pkt.l3_off + 4) else {
            return false;
        };
        // SAFETY: `plen` comes from ptr_at (its 2 bytes lie before data_end); a byte array needs no
        // alignment.
        unsafe { *plen = ((n + 1) as u16).to_be_bytes() };
    } else {
        let Some(ip) = ptr_at::<[u8; 20]>(ctx, pkt.l3_off) else {
            return false;
        };
        // SAFETY: `ip` comes from ptr_at (its 20 bytes lie before data_end); a byte array needs no
        // alignment.
        let ip = unsafe { &mut *ip };
        let ip_check = u16::from_ne_bytes([ip[10], ip[11]]);
        let ip_check = csum::replace2(ip_check, word(20 + n), word(20 + n + 1));
        ip[2..4].copy_from_slice(&((20 + n + 1) as u16).to_be_bytes());
        ip[10..12].copy_from_slice(&ip_check.to_ne_bytes());
    }
    let tcp_check = u16::from_ne_bytes([tcp[16], tcp[17]]);
    let tcp_check = csum::replace2(tcp_check, word(n), word(n + 1));
    tcp[16..18].copy_from_slice(&tcp_check.to_ne_bytes());
    true
}

/// The handshake with the real server is over: both entries get the translation.
#[inline(always)]
fn settle(reply: &mut Conn, client: &mut Conn, delta: u32, n: &Negotiated) {
    for c in [reply, client] {
        c.seq_delta = delta;
        c.ts_delta = n.ts_delta;
        c.sp_opts = n.sp_opts;
        c.win_shift_out = n.win_shift_out;
        c.win_shift_in = n.win_shift_in;
        c.flags = (c.flags & !CONN_F_SYNPROXY) | CONN_F_SEQADJ;
    }
}

/// Turns a client segment into the SYN that opens the real server's side (same addresses and
/// ports, the client's ISN). `ours`: our SYN-ACK's TSval echoed by the client (its options;
/// 0 = no timestamps: an MSS only), `tsval`: the client's TSval. Returns the SYN's TCP header
/// length (0: failed).
#[inline(always)]
fn to_syn<const V6: bool>(
    ctx: &XdpContext,
    pkt: &Packet,
    client_isn: u32,
    ours: u32,
    tsval: u32,
) -> u8 {
    let hdr = Tcp {
        sport: pkt.sport,
        dport: pkt.dport,
        seq: client_isn,
        ack: 0,
        flags: TCP_SYN,
        window: WINDOW,
    };
    let Some(opts) = opts_buffer() else {
        return 0;
    };
    let n = if ours == 0 {
        let (mss, _) = mss_of::<V6>();
        let m = mss.to_be_bytes();
        opts[..4].copy_from_slice(&[2, 4, m[0], m[1]]);
        24
    } else {
        syn_options::<V6>(opts, ours, tsval);
        40
    };
    if build::<V6>(ctx, pkt, &hdr, opts, false, n) {
        n as u8
    } else {
        0
    }
}

/// The options of our SYN to the real server: the client's own (MSS, SACK-permitted, window
/// scale, from `ours`) and its TSval.
#[inline(always)]
fn syn_options<const V6: bool>(opts: &mut [u8; 32], ours: u32, tsval: u32) {
    let idx = (ours >> synproxy_ts::MSS_SHIFT) as usize & 3;
    // Straight from the constant (a copy on the stack indexed by a variable is refused).
    let m = if V6 {
        SYNPROXY_MSS_TABLE6[idx]
    } else {
        SYNPROXY_MSS_TABLE[idx]
    }
    .to_be_bytes();
    let ws = (ours & synproxy_ts::WSCALE_MASK) as u8;
    opts[..4].copy_from_slice(&[2, 4, m[0], m[1]]);
    if ours & synproxy_ts::SACK != 0 {
        opts[4] = 4;
        opts[5] = 2;
    } else {
        opts[4] = 1;
        opts[5] = 1;
    }
    opts[6] = 8;
    opts[7] = 10;
    opts[8..12].copy_from_slice(&tsval.to_be_bytes());
    opts[16..20].copy_from_slice(&if ws != 0xf {
        [1, 3, 3, ws]
    } else {
        [1, 1, 1, 1]
    });
}

/// This CPU's buffer for the options of a packet being made, zeroed.
#[inline(always)]
fn opts_buffer() -> Option<&'static mut [u8; 32]> {
    let b = SCRATCH_SP_OPTS.get()?;
    *b = [0; 32];
    Some(b)
}

/// Defer mode (`xlvs set synproxy_defer 1`).
#[inline(always)]
fn defer() -> bool {
    setting(config::SYNPROXY_DEFER)
}

#[inline(always)]
fn toa_on() -> bool {
    !setting(config::TOA_OFF)
}

/// A TCP header to write (ports in network order as in `Packet`, numbers in host order).
pub(crate) struct Tcp {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
}

/// Host-order 32-bit field of the packet (0 if out of bounds, never expected after parsing).
#[inline(always)]
pub(crate) fn read_u32(ctx: &XdpContext, off: usize) -> u32 {
    match ptr_at::<u32>(ctx, off) {
        // SAFETY: `p` comes from ptr_at (bounds checked against data_end); an unaligned read needs
        // no alignment.
        Some(p) => u32::from_be(unsafe { p.read_unaligned() }),
        None => 0,
    }
}

/// Makes the frame exactly `len` bytes long.
#[inline(always)]
fn resize(ctx: &XdpContext, len: usize) -> bool {
    // 64-bit pointer difference kept opaque: LLVM would otherwise narrow it to 32-bit pointer
    // arithmetic, which the verifier refuses.
    let cur = core::hint::black_box((ctx.data_end() as u64).wrapping_sub(ctx.data() as u64));
    if cur > 0xffff {
        return false;
    }
    // SAFETY: `ctx.ctx` is this program's xdp_md; the helper refuses a tail outside the buffer, and
    // callers take their packet pointers again after it.
    unsafe { bpf_xdp_adjust_tail(ctx.ctx, (len as i64 - cur as i64) as i32) == 0 }
}

/// Rewrites the packet as IPv4 (IPv6 with `V6`) + a TCP header of `n` bytes (20 +
/// `opts[..n-20]`; n is one of 20, 24, 28, 32, 40, 52), no payload, checksums computed. With
/// `turn`, it goes back where it came from: MACs and addresses swapped, a fresh TTL (hop
/// limit). The headers in front of TCP are written once for every size (a copy per size
/// spills past this program's stack).
#[inline(always)]
pub(crate) fn build<const V6: bool>(
    ctx: &XdpContext,
    pkt: &Packet,
    hdr: &Tcp,
    opts: &[u8; 32],
    turn: bool,
    n: usize,
) -> bool {
    if turn {
        let Some(eth) = ptr_at::<[u8; 12]>(ctx, 0) else {
            return false;
        };
        // SAFETY: `eth` comes from ptr_at (its 12 bytes lie before data_end); a byte array needs no
        // alignment.
        let e = unsafe { &mut *eth };
        let mut swapped = [0u8; 12];
        swapped[..6].copy_from_slice(&e[6..]);
        swapped[6..].copy_from_slice(&e[..6]);
        *e = swapped;
    }
    // The IP header's part, and the pseudo-header's sum (over the final addresses).
    let n16 = (n & 0x3f) as u16;
    let Some(pseudo) = (if V6 {
        ip6_header(ctx, pkt, turn, n16)
    } else {
        ip4_header(ctx, pkt, turn, n16)
    }) else {
        return false;
    };
    match n {
        20 => tcp_header::<20>(ctx, pkt, hdr, opts, pseudo),
        24 => tcp_header::<24>(ctx, pkt, hdr, opts, pseudo),
        28 => tcp_header::<28>(ctx, pkt, hdr, opts, pseudo),
        32 => tcp_header::<32>(ctx, pkt, hdr, opts, pseudo),
        40 => tcp_header::<40>(ctx, pkt, hdr, opts, pseudo),
        52 => tcp_header::<52>(ctx, pkt, hdr, opts, pseudo),
        _ => false,
    }
}

/// The TCP header (`N` bytes, one constant per size: the verifier bounds the writes by it),
/// the frame cut right after it, the checksum from the pseudo-header's sum `pseudo`.
#[inline(always)]
fn tcp_header<const N: usize>(
    ctx: &XdpContext,
    pkt: &Packet,
    hdr: &Tcp,
    opts: &[u8; 32],
    pseudo: u32,
) -> bool {
    if !resize(ctx, pkt.l4_off + N) {
        return false;
    }
    let Some(tcp) = ptr_at::<[u8; N]>(ctx, pkt.l4_off) else {
        return false;
    };
    // SAFETY: `tcp` comes from ptr_at (its N bytes lie before data_end); a byte array needs no
    // alignment.
    let tcp = unsafe { &mut *tcp };
    tcp[0..2].copy_from_slice(&hdr.sport.to_ne_bytes());
    tcp[2..4].copy_from_slice(&hdr.dport.to_ne_bytes());
    tcp[4..8].copy_from_slice(&hdr.seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&hdr.ack.to_be_bytes());
    tcp[12] = ((N / 4) as u8) << 4;
    tcp[13] = hdr.flags;
    tcp[14..16].copy_from_slice(&hdr.window.to_be_bytes());
    tcp[16] = 0;
    tcp[17] = 0;
    tcp[18] = 0;
    tcp[19] = 0;
    let mut i = 20;
    while i < N && i < 52 {
        tcp[i] = opts[i - 20];
        i += 1;
    }
    let tcp_sum = csum::finish(csum::sum_words::<N>(tcp, pseudo));
    tcp[16..18].copy_from_slice(&tcp_sum.to_ne_bytes());
    true
}

/// IPv4 header of a packet we make (TCP header of `n` bytes, no payload): addresses swapped
/// with `turn`, length, no fragmentation, checksum. Returns the pseudo-header's sum.
#[inline(always)]
fn ip4_header(ctx: &XdpContext, pkt: &Packet, turn: bool, n: u16) -> Option<u32> {
    // SAFETY: ptr_at gave the 20 header bytes (`?` left on None), all before data_end; a byte array
    // needs no alignment.
    let ip = unsafe { &mut *ptr_at::<[u8; 20]>(ctx, pkt.l3_off)? };
    if turn {
        let mut src = [0u8; 4];
        src.copy_from_slice(&ip[12..16]);
        let mut dst = [0u8; 4];
        dst.copy_from_slice(&ip[16..20]);
        ip[12..16].copy_from_slice(&dst);
        ip[16..20].copy_from_slice(&src);
        ip[8] = 64;
    }
    let tot = (20 + n).to_be_bytes();
    ip[2] = tot[0];
    ip[3] = tot[1];
    ip[4] = 0; // id
    ip[5] = 0;
    ip[6] = 0x40; // DF, no fragment
    ip[7] = 0;
    ip[10] = 0;
    ip[11] = 0;
    let ip_sum = csum::finish(csum::sum_words::<20>(ip, 0));
    ip[10..12].copy_from_slice(&ip_sum.to_ne_bytes());
    // Pseudo-header: addresses, protocol, TCP length.
    let mut pseudo = [0u8; 12];
    pseudo[..8].copy_from_slice(&ip[12..20]);
    pseudo[9] = 6;
    pseudo[10..12].copy_from_slice(&n.to_be_bytes());
    Some(csum::sum_words::<12>(&pseudo, 0))
}

/// IPv6 header of a packet we make: addresses swapped with `turn` (and a fresh hop limit),
/// payload length; IPv6 has no header checksum. Returns the pseudo-header's sum (addresses,
/// 32-bit TCP length, next header).
#[inline(always)]
fn ip6_header(ctx: &XdpContext, pkt: &Packet, turn: bool, n: u16) -> Option<u32> {
    let (src, dst) = if turn {
        (pkt.dst, pkt.src)
    } else {
        (pkt.src, pkt.dst)
    };
    if turn {
        // Written from the parsed addresses: reading and swapping the packet's bytes made LLVM
        // spill all 32 of them (this program's stack is nearly full).
        let (s, d) = (
            ptr_at::<[u32; 4]>(ctx, pkt.l3_off + 8)?,
            ptr_at::<[u32; 4]>(ctx, pkt.l3_off + 24)?,
        );
        let hop = ptr_at::<u8>(ctx, pkt.l3_off + 7)?;
        // SAFETY: `s`, `d` and `hop` come from ptr_at just above (bounds checked against data_end);
        // unaligned writes need no alignment.
        unsafe {
            s.write_unaligned(src);
            d.write_unaligned(dst);
            hop.write(64);
        }
    }
    let len = ptr_at::<u16>(ctx, pkt.l3_off + 4)?;
    // SAFETY: `len` comes from ptr_at (bounds checked against data_end); an unaligned write needs
    // no alignment.
    unsafe { len.write_unaligned(n.to_be()) };
    // Pseudo-header: both addresses (either order), the TCP length, the next header.
    let sum = n.to_be() as u32 + u16::from_ne_bytes([0, 6]) as u32;
    Some(csum::sum_addr(&dst, csum::sum_addr(&src, sum)))
}
