//! SYNPROXY (alibaba LVS `-j enable`): a SYN flood never reaches the real servers nor fills the
//! connection table. For a SYNPROXY service (IPv4 without IP options):
//!
//! 1. A SYN is answered here with a SYN-ACK whose ISN is a SYN cookie
//!    (`bpf_tcp_raw_gen_syncookie_ipv4`), sent back with XDP_TX. Nothing is stored.
//! 2. The client's ACK is checked (`bpf_tcp_raw_check_syncookie_ipv4`). A valid one is turned
//!    into a SYN to the real server (the client's own ISN, so the client's sequence space needs
//!    no translation) and handed to the main program (tail call), which schedules and opens the
//!    connection as for any SYN; the entries are marked pending (`CONN_F_SYNPROXY`).
//! 3. The real server's SYN-ACK is answered here with the ACK that completes its handshake
//!    (with TOA for FULLNAT), and the difference between our cookie and its ISN is recorded
//!    (`Conn::seq_delta`): from then on the main program adds it to the real's sequence numbers
//!    and takes it off the client's acknowledgements. A RST instead is translated to the client.
//!    Client segments meanwhile make us send the SYN again (it may have been lost).
//!
//! What the cookie cannot carry is not negotiated: the SYN-ACK offers only an MSS, so the
//! connection runs without window scaling, SACK and timestamps (hence no SACK blocks to
//! translate), and the real server is offered `SYNPROXY_MSS`. Data in the cookie ACK is dropped
//! (the client sends it again). IPv6 SYNPROXY services are proxied like normal services.
//! Only NAT and FULLNAT reals can be proxied (the real's SYN-ACK must come back through us);
//! with DR/TUN reals the connection is opened unproxied and the client will refuse the real's
//! own SYN-ACK, as with alibaba LVS, whose SYNPROXY needs NAT/FULLNAT too.

use aya_ebpf::{
    bindings::{iphdr, tcphdr, xdp_action},
    helpers::{
        bpf_tcp_raw_check_syncookie_ipv4, bpf_tcp_raw_gen_syncookie_ipv4, bpf_xdp_adjust_tail,
    },
    programs::XdpContext,
};
use ebpf_common::{
    CONN_F_REPLY, CONN_F_SYNPROXY, Conn, FWD_FULLNAT, FlowKey, S_ESTABLISHED, SYNPROXY_MSS, config,
    counter,
};

use crate::maps::{CONFIG, CONNS, JUMP, JUMP_MAIN, SYNPROXY_OPEN, TX_PORTS, count, scratch};
use crate::parse::{self, Packet, TCP_ACK, TCP_RST, TCP_SYN, ptr_at};

/// Window we announce in the packets we make (no window scaling is negotiated).
const WINDOW: u16 = 64240;

/// The SYN the ACK of a valid cookie became, on its way into the main program.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct OpenMarker {
    pub flow: FlowKey,
    /// Our ISN towards the client (the cookie) and the client's ISN.
    pub cookie: u32,
    pub client_isn: u32,
    pub armed: u32,
    pub _pad: u32,
}

/// Whether SYNPROXY can handle this packet's layout.
#[inline(always)]
pub fn applies(pkt: &Packet) -> bool {
    !pkt.is_v6() && pkt.l4_off - pkt.l3_off == 20
}

/// The main program's side: is this SYN the one we made from a valid cookie ACK? Then it
/// opens the connection (returns (cookie, client ISN)) instead of being answered with a cookie.
#[inline(always)]
pub fn take_marker(flow: &FlowKey) -> Option<(u32, u32)> {
    let m = scratch(&SYNPROXY_OPEN)?;
    if m.armed == 0 || m.flow != *flow {
        return None;
    }
    m.armed = 0;
    Some((m.cookie, m.client_isn))
}

/// Whether the marker is armed for `flow` (without consuming it).
#[inline(always)]
pub fn armed_for(flow: &FlowKey) -> bool {
    match scratch(&SYNPROXY_OPEN) {
        Some(m) => m.armed != 0 && m.flow == *flow,
        None => false,
    }
}

/// Entry of the `xlvs_synproxy` program.
#[inline(always)]
pub fn handle(ctx: &XdpContext, now: u64) -> u32 {
    let Ok(pkt) = parse::parse(ctx) else {
        return xdp_action::XDP_PASS;
    };
    if !applies(&pkt) {
        return xdp_action::XDP_DROP;
    }
    let flow = crate::flow_of(&pkt);
    let flags = pkt.tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST);
    if let Some(entry) = CONNS.get_ptr_mut(&flow) {
        let entry = unsafe { &mut *entry };
        if entry.flags & CONN_F_REPLY != 0 && entry.flags & CONN_F_SYNPROXY != 0 {
            return from_real(ctx, &pkt, entry, now);
        }
        // A bare SYN is a client starting over (its half-done attempt is forgotten): cookie.
        if entry.flags & CONN_F_SYNPROXY != 0 && flags != TCP_SYN {
            return resend_syn(ctx, &pkt, entry, now);
        }
    }
    if flags == TCP_SYN {
        return cookie_synack(ctx, &pkt);
    }
    if flags == TCP_ACK {
        return cookie_ack(ctx, &pkt, &flow);
    }
    count(counter::DROP_NO_SESSION);
    xdp_action::XDP_DROP
}

/// 1. SYN -> cookie SYN-ACK, back where it came from.
#[inline(always)]
fn cookie_synack(ctx: &XdpContext, pkt: &Packet) -> u32 {
    // The helper reads the TCP header with its options; the verifier only accepts a length it
    // can prove inside the packet, so each possible header length gets its own constant.
    let v = match pkt.tcp_hdr_len {
        20 => gen_cookie::<20>(ctx, pkt),
        24 => gen_cookie::<24>(ctx, pkt),
        28 => gen_cookie::<28>(ctx, pkt),
        32 => gen_cookie::<32>(ctx, pkt),
        36 => gen_cookie::<36>(ctx, pkt),
        40 => gen_cookie::<40>(ctx, pkt),
        44 => gen_cookie::<44>(ctx, pkt),
        48 => gen_cookie::<48>(ctx, pkt),
        52 => gen_cookie::<52>(ctx, pkt),
        56 => gen_cookie::<56>(ctx, pkt),
        60 => gen_cookie::<60>(ctx, pkt),
        _ => -1,
    };
    if v < 0 {
        return xdp_action::XDP_DROP;
    }
    let cookie = v as u32;
    let client_seq = read_u32(ctx, pkt.l4_off + 4);
    let mss = if toa_on() {
        SYNPROXY_MSS - 8
    } else {
        SYNPROXY_MSS
    };
    let m = mss.to_be_bytes();
    let hdr = Tcp {
        sport: pkt.dport,
        dport: pkt.sport,
        seq: cookie,
        ack: client_seq.wrapping_add(1),
        flags: TCP_SYN | TCP_ACK,
    };
    if !build::<24>(ctx, pkt, &hdr, &[2, 4, m[0], m[1], 0, 0, 0, 0], true) {
        return xdp_action::XDP_DROP;
    }
    count(counter::SYNPROXY_COOKIE_SENT);
    back_out(ctx)
}

/// `bpf_tcp_raw_gen_syncookie_ipv4` on a TCP header of `N` bytes (options included).
#[inline(always)]
fn gen_cookie<const N: usize>(ctx: &XdpContext, pkt: &Packet) -> i64 {
    let (Some(iph), Some(th)) = (
        ptr_at::<[u8; 20]>(ctx, pkt.l3_off),
        ptr_at::<[u8; N]>(ctx, pkt.l4_off),
    ) else {
        return -1;
    };
    unsafe { bpf_tcp_raw_gen_syncookie_ipv4(iph as *mut iphdr, th as *mut tcphdr, N as u32) }
}

/// 2. The client's ACK: a valid cookie opens the connection with a SYN to the real server.
#[inline(always)]
fn cookie_ack(ctx: &XdpContext, pkt: &Packet, flow: &FlowKey) -> u32 {
    let (Some(iph), Some(th)) = (
        ptr_at::<[u8; 20]>(ctx, pkt.l3_off),
        ptr_at::<[u8; 20]>(ctx, pkt.l4_off),
    ) else {
        return xdp_action::XDP_DROP;
    };
    if unsafe { bpf_tcp_raw_check_syncookie_ipv4(iph as *mut iphdr, th as *mut tcphdr) } != 0 {
        count(counter::SYNPROXY_BAD_COOKIE);
        return xdp_action::XDP_DROP;
    }
    let cookie = read_u32(ctx, pkt.l4_off + 8).wrapping_sub(1);
    let client_isn = read_u32(ctx, pkt.l4_off + 4).wrapping_sub(1);
    if !to_syn(ctx, pkt, client_isn) {
        return xdp_action::XDP_DROP;
    }
    let Some(m) = scratch(&SYNPROXY_OPEN) else {
        return xdp_action::XDP_DROP;
    };
    *m = OpenMarker {
        flow: *flow,
        cookie,
        client_isn,
        armed: 1,
        _pad: 0,
    };
    count(counter::SYNPROXY_OPENED);
    unsafe { JUMP.tail_call(ctx, JUMP_MAIN) };
    m.armed = 0;
    xdp_action::XDP_DROP
}

/// A client segment while the real server has not answered: the SYN again (it may be lost).
#[inline(always)]
fn resend_syn(ctx: &XdpContext, pkt: &Packet, client: &mut Conn, now: u64) -> u32 {
    if pkt.tcp_flags & (TCP_RST | TCP_SYN) != 0 || !to_syn(ctx, pkt, client.toa_ack) {
        return xdp_action::XDP_DROP;
    }
    let Ok(syn) = parse::parse(ctx) else {
        return xdp_action::XDP_DROP;
    };
    count(counter::SYNPROXY_SYN_RESENT);
    crate::to_real(ctx, &syn, client, now)
}

/// 3. From the real server while its handshake is pending: its SYN-ACK is answered with the ACK
/// that completes it; a RST goes on to the client in the client's sequence space.
#[inline(always)]
fn from_real(ctx: &XdpContext, pkt: &Packet, reply: &mut Conn, now: u64) -> u32 {
    let client_key = crate::client_key_of(reply, pkt);
    let Some(client) = CONNS.get_ptr_mut(&client_key) else {
        return xdp_action::XDP_DROP;
    };
    let client = unsafe { &mut *client };
    if reply.fwd == FWD_FULLNAT && (client.via_port != pkt.dport || client.via_addr != pkt.dst) {
        // An earlier attempt of a client that started over: its connection is gone.
        return xdp_action::XDP_DROP;
    }
    let cookie = reply.seq_delta;
    let real_seq = read_u32(ctx, pkt.l4_off + 4);
    if pkt.tcp_flags & TCP_RST != 0 {
        // Shifted so that the RST carries the sequence number the client expects next.
        let delta = cookie.wrapping_add(1).wrapping_sub(real_seq);
        settle(reply, client, delta);
        return crate::reply_path(ctx, pkt, reply, now);
    }
    if pkt.tcp_flags & (TCP_SYN | TCP_ACK) != TCP_SYN | TCP_ACK {
        return xdp_action::XDP_DROP;
    }
    settle(reply, client, cookie.wrapping_sub(real_seq));
    let old = client.state;
    client.state = S_ESTABLISHED;
    client.timeout = crate::state::timeout_of(S_ESTABLISHED);
    crate::conncount::moved(client, pkt.proto, old);
    client.last_seen = now;
    reply.last_seen = now;
    let fullnat = reply.fwd == FWD_FULLNAT;
    // The client's first data acknowledges our cookie + 1: that is where TOA goes.
    client.toa_ack = if fullnat && toa_on() {
        cookie.wrapping_add(1).to_be()
    } else {
        0
    };
    let hdr = Tcp {
        sport: pkt.dport,
        dport: pkt.sport,
        seq: read_u32(ctx, pkt.l4_off + 8),
        ack: real_seq.wrapping_add(1),
        flags: TCP_ACK,
    };
    let done = if client.toa_ack != 0 {
        // TOA in the ACK that completes the real's handshake (its TOA module reads it there).
        let p = reply.via_port.to_ne_bytes();
        let a = reply.via_addr[0].to_ne_bytes();
        build::<28>(
            ctx,
            pkt,
            &hdr,
            &[254, 8, p[0], p[1], a[0], a[1], a[2], a[3]],
            true,
        )
    } else {
        build::<20>(ctx, pkt, &hdr, &[0; 8], true)
    };
    if !done {
        return xdp_action::XDP_DROP;
    }
    count(counter::SYNPROXY_ESTABLISHED);
    back_out(ctx)
}

/// Sends the packet we made back out of the interface it came in on: through the devmap when
/// that interface is attached (the path every other forwarded packet takes; a plain XDP_TX
/// from a veth whose peer is an ordinary stack was seen to vanish), XDP_TX otherwise.
#[inline(always)]
fn back_out(ctx: &XdpContext) -> u32 {
    let ingress = ctx.ingress_ifindex() as u32;
    if TX_PORTS.get(ingress).is_some() {
        count(counter::FWD_REDIRECT);
        return TX_PORTS
            .redirect(ingress, 0)
            .unwrap_or(xdp_action::XDP_DROP);
    }
    count(counter::FWD_TX);
    xdp_action::XDP_TX
}

/// The handshake with the real server is over: both entries get the sequence delta.
#[inline(always)]
fn settle(reply: &mut Conn, client: &mut Conn, delta: u32) {
    reply.seq_delta = delta;
    client.seq_delta = delta;
    reply.flags &= !CONN_F_SYNPROXY;
    client.flags &= !CONN_F_SYNPROXY;
}

/// Turns a client segment into the SYN that opens the real server's side (same addresses and
/// ports, the client's ISN, an MSS option).
#[inline(always)]
fn to_syn(ctx: &XdpContext, pkt: &Packet, client_isn: u32) -> bool {
    let m = SYNPROXY_MSS.to_be_bytes();
    let hdr = Tcp {
        sport: pkt.sport,
        dport: pkt.dport,
        seq: client_isn,
        ack: 0,
        flags: TCP_SYN,
    };
    build::<24>(ctx, pkt, &hdr, &[2, 4, m[0], m[1], 0, 0, 0, 0], false)
}

fn toa_on() -> bool {
    CONFIG.get(config::TOA_OFF).copied().unwrap_or(0) == 0
}

/// A TCP header to write (ports in network order as in `Packet`, numbers in host order).
struct Tcp {
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
}

/// Host-order 32-bit field of the packet (0 if out of bounds, never expected after parsing).
#[inline(always)]
fn read_u32(ctx: &XdpContext, off: usize) -> u32 {
    match ptr_at::<u32>(ctx, off) {
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
    unsafe { bpf_xdp_adjust_tail(ctx.ctx, (len as i64 - cur as i64) as i32) == 0 }
}

/// Rewrites the packet as IPv4 + a TCP header of `N` bytes (20 + `opts[..N-20]`), no payload,
/// checksums computed. With `turn`, it goes back where it came from: MACs and addresses
/// swapped, a fresh TTL.
#[inline(always)]
fn build<const N: usize>(
    ctx: &XdpContext,
    pkt: &Packet,
    hdr: &Tcp,
    opts: &[u8; 8],
    turn: bool,
) -> bool {
    if !resize(ctx, pkt.l4_off + N) {
        return false;
    }
    let (Some(eth), Some(ip), Some(tcp)) = (
        ptr_at::<[u8; 12]>(ctx, 0),
        ptr_at::<[u8; 20]>(ctx, pkt.l3_off),
        ptr_at::<[u8; N]>(ctx, pkt.l4_off),
    ) else {
        return false;
    };
    let (ip, tcp) = unsafe { (&mut *ip, &mut *tcp) };
    if turn {
        let e = unsafe { &mut *eth };
        let mut swapped = [0u8; 12];
        swapped[..6].copy_from_slice(&e[6..]);
        swapped[6..].copy_from_slice(&e[..6]);
        *e = swapped;
        let mut src = [0u8; 4];
        src.copy_from_slice(&ip[12..16]);
        let mut dst = [0u8; 4];
        dst.copy_from_slice(&ip[16..20]);
        ip[12..16].copy_from_slice(&dst);
        ip[16..20].copy_from_slice(&src);
        ip[8] = 64;
    }
    let tot = ((20 + N) as u16).to_be_bytes();
    ip[2] = tot[0];
    ip[3] = tot[1];
    ip[4] = 0; // id
    ip[5] = 0;
    ip[6] = 0x40; // DF, no fragment
    ip[7] = 0;
    ip[10] = 0;
    ip[11] = 0;
    let ip_sum = fold(sum_words::<20>(ip, 0));
    ip[10..12].copy_from_slice(&ip_sum.to_ne_bytes());

    tcp[0..2].copy_from_slice(&hdr.sport.to_ne_bytes());
    tcp[2..4].copy_from_slice(&hdr.dport.to_ne_bytes());
    tcp[4..8].copy_from_slice(&hdr.seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&hdr.ack.to_be_bytes());
    tcp[12] = ((N / 4) as u8) << 4;
    tcp[13] = hdr.flags;
    tcp[14..16].copy_from_slice(&WINDOW.to_be_bytes());
    tcp[16] = 0;
    tcp[17] = 0;
    tcp[18] = 0;
    tcp[19] = 0;
    let mut i = 20;
    while i < N {
        tcp[i] = opts[i - 20];
        i += 1;
    }
    // Pseudo-header: addresses, protocol, TCP length.
    let mut pseudo = [0u8; 12];
    pseudo[..8].copy_from_slice(&ip[12..20]);
    pseudo[9] = 6;
    pseudo[10..12].copy_from_slice(&(N as u16).to_be_bytes());
    let sum = sum_words::<12>(&pseudo, 0);
    let tcp_sum = fold(sum_words::<N>(tcp, sum));
    tcp[16..18].copy_from_slice(&tcp_sum.to_ne_bytes());
    true
}

/// One's-complement sum of `N` bytes as 16-bit words (native loads, like the packet's).
#[inline(always)]
fn sum_words<const N: usize>(b: &[u8; N], mut sum: u32) -> u32 {
    let mut i = 0;
    while i + 1 < N {
        sum += u16::from_ne_bytes([b[i], b[i + 1]]) as u32;
        i += 2;
    }
    sum
}

#[inline(always)]
fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}
