//! Tunnelling to real servers (`ipvsadm -i`), as IPVS' ip_vs_tunnel_xmit{,_v6} does, in its own
//! program (`xlvs_tunnel`, reached by tail call with a per-CPU [`Job`]):
//!
//! * the client's packet (IPv4 or IPv6, TTL/hop limit decremented as IPVS does) gets an outer
//!   header of the real server's family: IPv4 (protocol 4 or 41) or IPv6 (next header 4 or 41),
//!   so ipip, ip6ip6 and both cross-family cases; then, by tunnel type,
//!   - GUE (`--tun-type gue --tun-port N`): UDP to port N from a source port hashed from the
//!     inner flow in 32768–60999 (udp_flow_src_port), GUE version 0 with no flags, proto_ctype
//!     4/41. `--tun-csum` computes the UDP checksum, otherwise it is 0. `--tun-remcsum` also
//!     computes it: IPVS adds the remote-checksum-offload option only for CHECKSUM_PARTIAL
//!     packets (local senders), never for forwarded ones, which is all XDP sees.
//!   - GRE (`--tun-type gre`): protocol 0x0800/0x86DD, with `--tun-csum` the C bit and the
//!     checksum over the GRE header and payload.
//! * outer source = our address towards the real (FIB with BPF_FIB_LOOKUP_SRC), outer TTL/hop
//!   limit and DS field from the inner packet (ECN CE becomes ECT(0), INET_ECN_encapsulate),
//!   IPv4 DF copied from the inner IPv4 header (0 for IPv6 inside), as IPVS with pmtu_disc.
//! * checksums (GUE UDP, GRE) do not read the payload: an inner packet with valid checksums
//!   sums to the negated L4 pseudo-header (plus its IPv6 header), so the outer checksum is
//!   computed from headers only. IPv4 UDP without a checksum: GUE over IPv4 then goes without
//!   one too (allowed); GRE with checksum and GUE over IPv6 drop it (`drop_unsupported`).
//! * MTU (IPVS' __ip_vs_get_out_rt + ensure_mtu_is_adequate): mtu = path MTU − outer IP header −
//!   GUE/GRE header; below 68 (IPv4 path) or 1280 (IPv6 path) nothing is sent. A packet longer
//!   than mtu gets ICMP "fragmentation needed" (IPv4 with DF) or ICMPv6 "packet too big" with
//!   that mtu, sent back to the client from the VIP. IPv4 without DF: IPVS fragments the outer
//!   packet; XDP cannot send two packets for one, so it is encapsulated with the client as
//!   outer source and passed to the kernel, which forwards and fragments it
//!   (`tun_kernel_frag`; needs net.ipv4.ip_forward on the director).
//! * VLAN tags (0–2) stay in front of the new headers.

use aya_ebpf::{
    bindings::xdp_action,
    helpers::{bpf_get_prandom_u32, bpf_xdp_adjust_head, bpf_xdp_adjust_tail},
    programs::XdpContext,
};
use ebpf_common::{
    AF_INET6, Conn, FlowKey, IPPROTO_UDP, NH_MAX_AGE, TUN_F_CSUM, TUN_F_REMCSUM, TUN_GRE, TUN_GUE,
    TUN_PACKED, counter, nh_stamp, tun_pack,
};

use aya_ebpf::{macros::map, maps::LruHashMap};
use ebpf_common::Stage;

use crate::csum;
use crate::forward;
use crate::maps::{CONNS, DESTS, TX_PORTS, count};
use crate::parse::{Packet, parse, ptr_at};
use crate::proto::{
    IP4_DF_BYTE, IP4_FRAG, IPPROTO_GRE, IPPROTO_ICMPV6, IPPROTO_IPIP, IPPROTO_IPV6,
};
use crate::stage::{Handoff, jump};

/// Next hop, our source address and the path MTU towards each tunnel real server (by
/// destination id), cached by `xlvs_tunnel` alone: an entry is trusted only for the address it
/// was looked up for and for ~1 s, so user space never has to reset it. Not pinned.
#[map]
static TUN_NH: LruHashMap<u32, TunHop> = LruHashMap::with_max_entries(65536, 0);

/// What the stage before `xlvs_tunnel` knows about the packet's connection.
#[map]
static TUN_JOB: Handoff<Job> = Handoff::new();

/// A tunnel real server's cached next hop (TUN_NH).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct TunHop {
    /// The address it was looked up for (ids are reused: a mismatch means stale).
    pub daddr: [u32; 4],
    /// Our source address towards it (IPv4 in word 0).
    pub src: [u32; 4],
    pub ifindex: u32,
    pub mtu: u32,
    /// Destination MAC then source MAC.
    pub macs: [u8; 12],
    /// When it was looked up (`nh_stamp` units).
    pub time: u32,
}

/// The cached next hop towards the job's real, looked up again when older than ~1 s.
#[inline(always)]
fn next_hop(ctx: &XdpContext, ingress: u32, job: &mut Job) -> Option<&'static mut TunHop> {
    let stamp = nh_stamp(job.now);
    if let Some(nh) = TUN_NH.get_ptr_mut(&job.dest_id) {
        // SAFETY: `nh` is a map value pointer from get_ptr_mut: non-null, aligned and valid for
        // this program run.
        let nh = unsafe { &mut *nh };
        if nh.daddr == job.daddr && stamp.wrapping_sub(nh.time) < NH_MAX_AGE {
            return Some(nh);
        }
    }
    let (ifindex, macs, src) = forward::fib_out(ctx, ingress, job.af, &job.daddr, 0).ok()?;
    let mtu = forward::path_mtu(ctx, ingress, job.af, &job.daddr).unwrap_or(1500);
    let fresh = &mut job.hop;
    fresh.daddr = job.daddr;
    fresh.src = src;
    fresh.ifindex = ifindex;
    fresh.mtu = mtu;
    fresh.macs = macs;
    fresh.time = stamp;
    TUN_NH.insert(&job.dest_id, fresh, 0).ok()?;
    // SAFETY: `p` is a map value pointer from get_ptr_mut: non-null, aligned and valid for this
    // program run.
    TUN_NH.get_ptr_mut(&job.dest_id).map(|p| unsafe { &mut *p })
}

/// What the main program knows about the packet's connection (per-CPU, read by `handle`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Job {
    /// The real server (outer destination).
    pub daddr: [u32; 4],
    pub dest_id: u32,
    /// `ebpf_common::tun_pack` of the destination's tunnel settings (0: not recorded yet).
    pub tun: u32,
    /// The real server's family (outer header).
    pub af: u8,
    pub _pad: [u8; 7],
    pub now: u64,
    /// Scratch space for a fresh TUN_NH entry.
    pub hop: TunHop,
    /// IPv4 without DF too big for the tunnel: handed to the kernel to forward (and fragment)
    /// with the frame's own MACs, kept here (see `handle`).
    pub via_kernel: u8,
    pub frame_macs: [u8; 12],
}

/// Returned by [`prepare`] through the main program's stages: its top level then tail-calls
/// `xlvs_tunnel` (not a valid XDP action, so never returned to the kernel).
pub const TO_TUNNEL: u32 = 0xff;

/// Main program side: notes what `xlvs_tunnel` needs about tunnel connection `conn`.
#[inline(always)]
pub fn prepare(conn: &Conn, now: u64) -> u32 {
    let Some(job) = TUN_JOB.put() else {
        return xdp_action::XDP_DROP;
    };
    // Field by field: a whole `Job` would be built on the main program's full stack first.
    job.daddr = conn.to_addr;
    job.dest_id = conn.dest_id;
    job.tun = conn.via_addr[0];
    job.af = conn.af;
    job.now = now;
    TO_TUNNEL
}

/// Main program's top level: `rc` from its stages; TO_TUNNEL continues in `xlvs_tunnel`.
#[inline(always)]
pub fn finish(ctx: &XdpContext, rc: u32) -> u32 {
    if rc != TO_TUNNEL {
        return rc;
    }
    jump(ctx, Stage::Tunnel)
}

/// `xlvs_tunnel`: encapsulate and forward, or answer "too big".
#[inline(always)]
pub fn handle(ctx: &XdpContext) -> u32 {
    let ingress = ctx.ingress_ifindex() as u32;
    // Used in place (per-CPU): a copy would take stack this program does not have.
    let Some(job) = TUN_JOB.take() else {
        return xdp_action::XDP_DROP;
    };
    let Ok(pkt) = parse(ctx) else {
        return xdp_action::XDP_PASS;
    };
    let Some(tun) = settings(job, &pkt) else {
        count(counter::DROP_NO_DEST);
        return xdp_action::XDP_DROP;
    };
    let (tun_type, flags, port) = (tun as u8, (tun >> 8) as u8 & 0x7f, (tun >> 16) as u16);
    let outer6 = job.af == AF_INET6;
    let ip_len: u32 = if outer6 { 40 } else { 20 };
    let encap_len: u32 = match tun_type {
        TUN_GUE => 12,
        TUN_GRE if flags & TUN_F_CSUM != 0 => 8,
        TUN_GRE => 4,
        _ => 0,
    };
    let overhead = ip_len + encap_len;

    // Next hop, our source address and the path MTU towards the real (cached ~1 s).
    let Some(nh) = next_hop(ctx, ingress, job) else {
        // As for DR: the kernel could not deliver a VIP-addressed packet to the real
        // (and would refuse our own source address on an encapsulated one).
        count(counter::DROP_NO_NEIGH);
        return xdp_action::XDP_DROP;
    };
    let (ifindex, macs, src) = (nh.ifindex, nh.macs, nh.src);
    let mtu = nh.mtu.saturating_sub(overhead);
    if mtu < if outer6 { 1280 } else { 68 } {
        count(counter::DROP_TOO_BIG);
        return xdp_action::XDP_DROP;
    }
    // SAFETY: `p` comes from ptr_at (its byte lies before data_end); a u8 needs no alignment.
    let df = !pkt.is_v6()
        && ptr_at::<u8>(ctx, pkt.l3_off + IP4_FRAG)
            .is_some_and(|p| unsafe { p.read() } & IP4_DF_BYTE != 0);
    job.via_kernel = 0;
    if pkt.tot_len as u32 > mtu {
        if df || pkt.is_v6() || outer6 {
            return too_big(ctx, &pkt, mtu);
        }
        // IPv4 without DF: IPVS fragments the outer packet. XDP sends one packet for one, so
        // the kernel does it: encapsulated with the client as outer source (our own address
        // would be a martian source to our stack) and passed up, it is forwarded to the real
        // and fragmented on the way (needs net.ipv4.ip_forward, as NAT does).
        let Some(front) = ptr_at::<[u8; 12]>(ctx, 0) else {
            return xdp_action::XDP_DROP;
        };
        // SAFETY: `front` comes from ptr_at (its 12 bytes lie before data_end); a byte array needs
        // no alignment.
        job.frame_macs = unsafe { *front };
        job.via_kernel = 1;
    } else if ifindex != ingress && TX_PORTS.get(ifindex).is_none() {
        count(counter::DROP_NO_NEIGH);
        return xdp_action::XDP_DROP;
    }

    // The inner packet as IPVS sends it: TTL/hop limit one lower.
    decrement_ttl(ctx, &pkt);
    let mut csum = flags & (TUN_F_CSUM | TUN_F_REMCSUM) != 0 && tun_type != 0;
    let mut inner_sum = 0;
    if csum {
        match inner_sum_of(ctx, &pkt) {
            Some(s) => inner_sum = s,
            // IPv4 UDP without a checksum: GUE over IPv4 may go without one too.
            None if tun_type == TUN_GUE && !outer6 => csum = false,
            None => {
                count(counter::DROP_UNSUPPORTED);
                return xdp_action::XDP_DROP;
            }
        }
    }
    let inner_proto = if pkt.is_v6() {
        IPPROTO_IPV6
    } else {
        IPPROTO_IPIP
    };
    let next = match tun_type {
        TUN_GUE => IPPROTO_UDP,
        TUN_GRE => IPPROTO_GRE,
        _ => inner_proto,
    };
    let inner_len = pkt.tot_len as u32;
    let sport = if tun_type == TUN_GUE {
        gue_sport(&pkt)
    } else {
        0
    };
    let l3 = pkt.l3_off;

    // SAFETY: `ctx.ctx` is this program's xdp_md; the helper refuses a head outside the buffer, and
    // every packet pointer is taken again after it.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(overhead as i32)) } != 0 {
        return xdp_action::XDP_DROP;
    }
    // VLAN tags move to the new front (the MACs are written by emit).
    if !move_tags(ctx, overhead as usize, l3) {
        return xdp_action::XDP_DROP;
    }
    let Some(ethertype) = ptr_at::<u16>(ctx, l3 - 2) else {
        return xdp_action::XDP_DROP;
    };
    // SAFETY: `ethertype` comes from ptr_at (bounds checked against data_end); an unaligned write
    // needs no alignment.
    unsafe { ethertype.write_unaligned(if outer6 { 0x86ddu16 } else { 0x0800 }.to_be()) };

    let tos = ecn_encapsulate(pkt.tos);
    let ttl = pkt.ttl.wrapping_sub(1);
    let payload = encap_len + inner_len;
    let ok = if outer6 {
        write_ip6(ctx, l3, tos, payload as u16, next, ttl, &src, &job.daddr)
    } else {
        write_ip4(
            ctx,
            l3,
            tos,
            (20 + payload) as u16,
            df,
            next,
            ttl,
            if job.via_kernel != 0 {
                pkt.src[0]
            } else {
                src[0]
            },
            job.daddr[0],
        )
    };
    if !ok {
        return xdp_action::XDP_DROP;
    }
    let at = l3 + ip_len as usize;
    let ok = match tun_type {
        TUN_GUE => {
            let pseudo = if csum {
                csum::pseudo_header(&src, &job.daddr, IPPROTO_UDP, payload as u16)
            } else {
                0
            };
            write_gue(
                ctx,
                at,
                sport,
                port,
                payload as u16,
                inner_proto,
                csum,
                pseudo + inner_sum,
            )
        }
        TUN_GRE if flags & TUN_F_CSUM != 0 => write_gre::<8>(ctx, at, pkt.is_v6(), inner_sum),
        TUN_GRE => write_gre::<4>(ctx, at, pkt.is_v6(), 0),
        _ => true,
    };
    if !ok {
        return xdp_action::XDP_DROP;
    }
    count(counter::FWD_TUNNEL);
    if job.via_kernel != 0 {
        let Some(front) = ptr_at::<[u8; 12]>(ctx, 0) else {
            return xdp_action::XDP_DROP;
        };
        // SAFETY: `front` comes from ptr_at (its 12 bytes lie before data_end); a byte array needs
        // no alignment.
        unsafe { *front = job.frame_macs };
        count(counter::TUN_KERNEL_FRAG);
        return xdp_action::XDP_PASS;
    }
    forward::emit(ctx, ingress, ifindex, macs)
}

/// The connection's tunnel settings: recorded in its entry, or on its first packet taken from
/// the destination and recorded (the main program's stack has no room to do it when opening).
#[inline(always)]
fn settings(job: &Job, pkt: &Packet) -> Option<u32> {
    if job.tun & TUN_PACKED != 0 {
        return Some(job.tun);
    }
    // SAFETY: the destination is read at once; a map value lives for the whole program run (RCU).
    let dest = unsafe { DESTS.get(&job.dest_id) }?;
    let tun = tun_pack(dest.tun_type, dest.tun_flags, dest.tun_port);
    let key = FlowKey {
        src: pkt.src,
        dst: pkt.dst,
        sport: pkt.sport,
        dport: pkt.dport,
        proto: pkt.proto,
        af: pkt.af,
        _pad: [0; 2],
    };
    if let Some(conn) = CONNS.get_ptr_mut(&key) {
        // SAFETY: `conn` is a map value pointer from get_ptr_mut: non-null, aligned and valid for
        // this program run.
        unsafe { (*conn).via_addr[0] = tun };
    }
    Some(tun)
}

/// IPVS decrements the TTL/hop limit before encapsulating (the caller made sure it is > 1).
#[inline(always)]
fn decrement_ttl(ctx: &XdpContext, pkt: &Packet) {
    if pkt.is_v6() {
        if let Some(hop_limit) = ptr_at::<u8>(ctx, pkt.l3_off + 7) {
            // SAFETY: `hop_limit` comes from ptr_at (its byte lies before data_end); a u8 needs no
            // alignment.
            unsafe { *hop_limit = hop_limit.read().wrapping_sub(1) };
        }
    } else if let (Some(ttl_proto), Some(check)) = (
        ptr_at::<u16>(ctx, pkt.l3_off + 8),
        ptr_at::<u16>(ctx, pkt.l3_off + 10),
    ) {
        // SAFETY: `ttl_proto` and `check` come from ptr_at just above (bounds checked against
        // data_end); unaligned accesses need no alignment.
        unsafe {
            let old = ttl_proto.read_unaligned();
            let mut bytes = old.to_ne_bytes();
            bytes[0] = bytes[0].wrapping_sub(1);
            let new = u16::from_ne_bytes(bytes);
            ttl_proto.write_unaligned(new);
            check.write_unaligned(crate::csum::replace2(check.read_unaligned(), old, new));
        }
    }
}

/// INET_ECN_encapsulate: the outer DS field is the inner one, CE becoming ECT(0).
#[inline(always)]
fn ecn_encapsulate(tos: u8) -> u8 {
    if tos & 3 == 3 { (tos & !3) | 2 } else { tos }
}

/// GUE's UDP source port: a hash of the inner flow scaled into 32768–60999 (the default local
/// port range), as udp_flow_src_port() does with the skb's flow hash.
#[inline(always)]
fn gue_sport(pkt: &Packet) -> u16 {
    let mut h = pkt.src[0]
        ^ pkt.src[3].rotate_left(11)
        ^ pkt.dst[0].rotate_left(7)
        ^ pkt.dst[3]
        ^ ((pkt.sport as u32) << 16 | pkt.dport as u32)
        ^ pkt.proto as u32;
    h = h.wrapping_mul(0x9E37_79B1);
    h ^= h >> 15;
    h = h.wrapping_mul(0x85EB_CA77);
    h ^= h >> 13;
    h ^= h << 16;
    ((((h as u64) * (60999 - 32768)) >> 32) as u32 + 32768) as u16
}

/// Copies the 0–2 VLAN tags of the frame (now `shift` bytes further) to the new front.
#[inline(always)]
fn move_tags(ctx: &XdpContext, shift: usize, l3: usize) -> bool {
    let mut at = 12;
    while at + 2 < l3 && at < 20 {
        let (Some(from), Some(to)) = (ptr_at::<u32>(ctx, shift + at), ptr_at::<u32>(ctx, at))
        else {
            return false;
        };
        // SAFETY: `from` and `to` come from ptr_at just above (bounds checked against data_end);
        // unaligned accesses need no alignment.
        unsafe { to.write_unaligned(from.read_unaligned()) };
        at += 4;
    }
    true
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn write_ip4(
    ctx: &XdpContext,
    at: usize,
    tos: u8,
    tot_len: u16,
    df: bool,
    proto: u8,
    ttl: u8,
    src: u32,
    dst: u32,
) -> bool {
    let Some(p) = ptr_at::<[u8; 20]>(ctx, at) else {
        return false;
    };
    let len = tot_len.to_be_bytes();
    // IPVS: ip_select_ident gives 0 to DF packets; others get an id to fragment with.
    let id = if df {
        [0, 0]
    } else {
        // SAFETY: a BPF helper without arguments or preconditions.
        (unsafe { bpf_get_prandom_u32() } as u16).to_ne_bytes()
    };
    let (s, d) = (src.to_ne_bytes(), dst.to_ne_bytes());
    let mut h: [u8; 20] = [
        0x45,
        tos,
        len[0],
        len[1],
        id[0],
        id[1],
        if df { 0x40 } else { 0 },
        0,
        ttl,
        proto,
        0,
        0,
        s[0],
        s[1],
        s[2],
        s[3],
        d[0],
        d[1],
        d[2],
        d[3],
    ];
    let check = csum::finish(csum::sum_words(&h, 0)).to_ne_bytes();
    h[10] = check[0];
    h[11] = check[1];
    // SAFETY: `p` comes from ptr_at (its 20 bytes lie before data_end); a byte array needs no
    // alignment.
    unsafe { p.write_unaligned(h) };
    true
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn write_ip6(
    ctx: &XdpContext,
    at: usize,
    tclass: u8,
    payload: u16,
    next: u8,
    hop: u8,
    src: &[u32; 4],
    dst: &[u32; 4],
) -> bool {
    let (Some(head), Some(s), Some(d)) = (
        ptr_at::<[u8; 8]>(ctx, at),
        ptr_at::<[u32; 4]>(ctx, at + 8),
        ptr_at::<[u32; 4]>(ctx, at + 24),
    ) else {
        return false;
    };
    let len = payload.to_be_bytes();
    let h: [u8; 8] = [
        0x60 | tclass >> 4,
        tclass << 4,
        0,
        0,
        len[0],
        len[1],
        next,
        hop,
    ];
    // SAFETY: `head`, `s` and `d` come from ptr_at above (bounds checked against data_end);
    // unaligned writes need no alignment.
    unsafe {
        head.write_unaligned(h);
        s.write_unaligned(*src);
        d.write_unaligned(*dst);
    }
    true
}

/// UDP + GUE (version 0, no flags, no options) headers; with `csum`, the UDP checksum from
/// `sum` (pseudo-header + inner packet).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn write_gue(
    ctx: &XdpContext,
    at: usize,
    sport: u16,
    dport: u16,
    len: u16,
    proto_ctype: u8,
    csum: bool,
    sum: u32,
) -> bool {
    let Some(p) = ptr_at::<[u8; 12]>(ctx, at) else {
        return false;
    };
    let (s, d, l) = (sport.to_be_bytes(), dport.to_be_bytes(), len.to_be_bytes());
    let mut h: [u8; 12] = [
        s[0],
        s[1],
        d[0],
        d[1],
        l[0],
        l[1],
        0,
        0,
        0,
        proto_ctype,
        0,
        0,
    ];
    if csum {
        let mut c = csum::finish(csum::sum_words(&h, sum));
        if c == 0 {
            c = 0xffff;
        }
        let c = c.to_ne_bytes();
        h[6] = c[0];
        h[7] = c[1];
    }
    // SAFETY: `p` comes from ptr_at (its 12 bytes lie before data_end); a byte array needs no
    // alignment.
    unsafe { p.write_unaligned(h) };
    true
}

/// GRE header of `N` bytes: 4 (no checksum) or 8 (C bit, checksum over header and payload,
/// the payload's part given in `sum`).
#[inline(always)]
fn write_gre<const N: usize>(ctx: &XdpContext, at: usize, inner6: bool, sum: u32) -> bool {
    let Some(p) = ptr_at::<[u8; N]>(ctx, at) else {
        return false;
    };
    let mut h = [0u8; N];
    h[2] = if inner6 { 0x86 } else { 0x08 };
    h[3] = if inner6 { 0xdd } else { 0x00 };
    if N == 8 {
        h[0] = 0x80;
        let c = csum::finish(csum::sum_words(&h, sum)).to_ne_bytes();
        h[4] = c[0];
        h[5] = c[1];
    }
    // SAFETY: `p` comes from ptr_at (its N bytes lie before data_end); a byte array needs no
    // alignment.
    unsafe { p.write_unaligned(h) };
    true
}

/// One's-complement sum of the inner packet (as it will be sent), without reading its payload
/// when its L4 checksum is there to stand for it.
#[inline(always)]
fn inner_sum_of(ctx: &XdpContext, pkt: &Packet) -> Option<u32> {
    let ihl = pkt.l4_off - pkt.l3_off;
    // IPv6 extension headers (not summed below) or a first fragment (its L4 checksum covers
    // the whole datagram): nothing stands for the packet, as without a checksum.
    if (pkt.is_v6() && ihl != 40) || pkt.frag != 0 {
        return None;
    }
    let l4_len = (pkt.tot_len as u32).checked_sub(ihl as u32)?;
    // An IPv4 header with a valid checksum sums to 0 (-0); an IPv6 one is summed.
    let mut sum = 0u32;
    if pkt.is_v6() {
        sum = csum::sum_at::<40>(ptr_at::<[u8; 40]>(ctx, pkt.l3_off)?, 0);
    }
    let check_at = if pkt.proto == IPPROTO_UDP { 6 } else { 16 };
    // SAFETY: ptr_at gave the checksum's 2 bytes (`?` left on None), before data_end; an unaligned
    // read needs no alignment.
    let check = unsafe { ptr_at::<u16>(ctx, pkt.l4_off + check_at)?.read_unaligned() };
    if pkt.proto == IPPROTO_UDP && check == 0 {
        // IPv4 UDP without a checksum: nothing stands for the payload (summing it byte by
        // byte is more than the verifier accepts here).
        return None;
    }
    // A segment with a valid checksum sums to minus its pseudo-header.
    let pseudo = csum::pseudo_header(&pkt.src, &pkt.dst, pkt.proto, l4_len as u16);
    Some(sum + !csum::fold(pseudo) as u32)
}

/// Packets that would exceed `mtu` once encapsulated: ICMP back to the client when IPVS
/// would send one, else dropped. (Out of line: its frame does not add to the encapsulation's.)
#[inline(always)]
fn too_big(ctx: &XdpContext, pkt: &Packet, mtu: u32) -> u32 {
    count(counter::DROP_TOO_BIG);
    let sent = if pkt.is_v6() {
        frag_needed_v6(ctx, pkt, mtu)
    } else {
        // Without DF (only an IPv6 outer header gets here, see `handle`): IPVS fragments the
        // outer packet; we cannot.
        // SAFETY: `p` comes from ptr_at (its byte lies before data_end); a u8 needs no alignment.
        let df = ptr_at::<u8>(ctx, pkt.l3_off + IP4_FRAG)
            .is_some_and(|p| unsafe { p.read() } & IP4_DF_BYTE != 0);
        df && frag_needed_v4(ctx, pkt, mtu)
    };
    if !sent {
        return xdp_action::XDP_DROP;
    }
    count(counter::ICMP_TOO_BIG_SENT);
    forward::back_out(ctx)
}

/// Turns the frame into ICMP "fragmentation needed" (type 3 code 4, next-hop MTU `mtu`) from
/// the VIP to the client, quoting the IPv4 header and 8 bytes (IPv4 without options only).
#[inline(always)]
fn frag_needed_v4(ctx: &XdpContext, pkt: &Packet, mtu: u32) -> bool {
    const NEW: usize = 28; // IPv4 + ICMP headers in front of the quoted packet
    if pkt.l4_off - pkt.l3_off != 20 {
        return false;
    }
    let l3 = pkt.l3_off;
    if !turn_around(ctx, NEW, l3, l3 + NEW + 28) {
        return false;
    }
    let (Some(ip), Some(icmp), Some(quoted)) = (
        ptr_at::<[u8; 20]>(ctx, l3),
        ptr_at::<[u8; 8]>(ctx, l3 + 20),
        ptr_at::<[u8; 28]>(ctx, l3 + NEW),
    ) else {
        return false;
    };
    let (s, d) = (pkt.dst[0].to_ne_bytes(), pkt.src[0].to_ne_bytes());
    // SAFETY: a BPF helper without arguments or preconditions.
    let id = (unsafe { bpf_get_prandom_u32() } as u16).to_ne_bytes();
    let mut h: [u8; 20] = [
        0x45, 0xc0, 0, 56, id[0], id[1], 0, 0, 64, 1, 0, 0, s[0], s[1], s[2], s[3], d[0], d[1],
        d[2], d[3],
    ];
    let c = csum::finish(csum::sum_words(&h, 0)).to_ne_bytes();
    h[10] = c[0];
    h[11] = c[1];
    let m = (mtu as u16).to_be_bytes();
    let mut e: [u8; 8] = [3, 4, 0, 0, 0, 0, m[0], m[1]];
    let c = csum::finish(csum::sum_words(&e, csum::sum_at::<28>(quoted, 0))).to_ne_bytes();
    e[2] = c[0];
    e[3] = c[1];
    // SAFETY: `ip` and `icmp` come from ptr_at above (bounds checked against data_end); unaligned
    // writes need no alignment.
    unsafe {
        ip.write_unaligned(h);
        icmp.write_unaligned(e);
    }
    true
}

/// ICMPv6 "packet too big" (type 2, MTU `mtu`) from the VIP to the client, quoting the IPv6
/// header and 8 bytes.
#[inline(always)]
fn frag_needed_v6(ctx: &XdpContext, pkt: &Packet, mtu: u32) -> bool {
    const NEW: usize = 48; // IPv6 + ICMPv6 headers in front of the quoted packet
    let l3 = pkt.l3_off;
    if !turn_around(ctx, NEW, l3, l3 + NEW + 48) {
        return false;
    }
    let (Some(ip), Some(s), Some(d), Some(icmp), Some(quoted)) = (
        ptr_at::<[u8; 8]>(ctx, l3),
        ptr_at::<[u32; 4]>(ctx, l3 + 8),
        ptr_at::<[u32; 4]>(ctx, l3 + 24),
        ptr_at::<[u8; 8]>(ctx, l3 + 40),
        ptr_at::<[u8; 48]>(ctx, l3 + NEW),
    ) else {
        return false;
    };
    let h: [u8; 8] = [0x60, 0, 0, 0, 0, 56, IPPROTO_ICMPV6, 64];
    let m = mtu.to_be_bytes();
    let mut e: [u8; 8] = [2, 0, 0, 0, m[0], m[1], m[2], m[3]];
    let pseudo = csum::pseudo_header(&pkt.dst, &pkt.src, IPPROTO_ICMPV6, 56);
    let c = csum::finish(csum::sum_words(&e, csum::sum_at::<48>(quoted, pseudo))).to_ne_bytes();
    e[2] = c[0];
    e[3] = c[1];
    // SAFETY: `ip`, `s`, `d` and `icmp` come from ptr_at above (bounds checked against data_end);
    // unaligned writes need no alignment.
    unsafe {
        ip.write_unaligned(h);
        s.write_unaligned(pkt.dst);
        d.write_unaligned(pkt.src);
        icmp.write_unaligned(e);
    }
    true
}

/// Makes room for `new` bytes of headers in front of the IP packet, keeps the L2 header (MACs
/// swapped: the frame goes back where it came from, VLAN tags kept) and cuts the frame to
/// `len` bytes.
#[inline(always)]
fn turn_around(ctx: &XdpContext, new: usize, l3: usize, len: usize) -> bool {
    // SAFETY: `ctx.ctx` is this program's xdp_md; the helper refuses a head outside the buffer, and
    // the packet pointers are taken after it.
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(new as i32)) } != 0 {
        return false;
    }
    let (Some(from), Some(to)) = (ptr_at::<[u8; 12]>(ctx, new), ptr_at::<[u8; 12]>(ctx, 0)) else {
        return false;
    };
    // SAFETY: `from` comes from ptr_at (bounds checked against data_end); an unaligned read needs
    // no alignment.
    let m = unsafe { from.read_unaligned() };
    let mut swapped = [0u8; 12];
    swapped[..6].copy_from_slice(&m[6..]);
    swapped[6..].copy_from_slice(&m[..6]);
    // SAFETY: `to` comes from ptr_at (bounds checked against data_end); an unaligned write needs no
    // alignment.
    unsafe { to.write_unaligned(swapped) };
    if !move_tags(ctx, new, l3) {
        return false;
    }
    // The ethertype stays: the answer has the family of the packet it answers.
    let (Some(from), Some(to)) = (ptr_at::<u16>(ctx, new + l3 - 2), ptr_at::<u16>(ctx, l3 - 2))
    else {
        return false;
    };
    // SAFETY: `from` and `to` come from ptr_at just above (bounds checked against data_end);
    // unaligned accesses need no alignment.
    unsafe { to.write_unaligned(from.read_unaligned()) };
    let cur = core::hint::black_box((ctx.data_end() as u64).wrapping_sub(ctx.data() as u64));
    if cur > 0xffff || (cur as usize) < len {
        return false;
    }
    // SAFETY: `ctx.ctx` is this program's xdp_md; the helper refuses a tail outside the buffer, and
    // no packet pointer is used after it here.
    unsafe { bpf_xdp_adjust_tail(ctx.ctx, (len as i64 - cur as i64) as i32) == 0 }
}
