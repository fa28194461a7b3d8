//! Send a rewritten packet on its way. The next hop comes from the kernel's FIB
//! (`bpf_fib_lookup`), cached by the caller (a FIB lookup costs more than the rest of the path):
//! out the same interface -> XDP_TX, another attached interface -> devmap redirect. When the FIB
//! cannot answer (neighbour unknown, no route, interface not attached) the packet goes to the
//! kernel, already rewritten, and the kernel forwards it (and resolves ARP).

use aya_ebpf::{
    bindings::{BPF_FIB_LKUP_RET_SUCCESS, bpf_fib_lookup as FibParams, xdp_action},
    helpers::bpf_fib_lookup,
    programs::XdpContext,
};
use core::mem::size_of;
use ebpf_common::{Conn, NH_MAX_AGE, NextHop, Stage, config, counter};

use aya_ebpf::macros::map;

use crate::csum;
use crate::maps::{TX_PORTS, count, setting};
use crate::parse::{Packet, ptr_at};
use crate::proto::{ETH_ALEN2, IP4_CHECK, IP4_TTL, IP6_HOPS};
use crate::stage::{Handoff, Scratch, jump};

/// The FIB lookup's parameters (larger than the stacks that call it have room for).
#[map]
static SCRATCH_FIB: Scratch<FibParams> = Scratch::new();

/// The connection whose first packet (or SYNPROXY's SYN towards its real) `xlvs_fwd` sends:
/// `to_real` with its rewrites and next-hop lookup does not fit beside the programs that open
/// connections (stack, verifier budget).
#[map]
pub static FIRST_PACKET: Handoff<Conn> = Handoff::new();

/// Hands the packet being handled to `xlvs_fwd`, with its connection in [`FIRST_PACKET`] and,
/// when it is unchanged since it was parsed, `parsed`.
#[inline(always)]
pub fn first_packet(ctx: &XdpContext, parsed: Option<&Packet>) -> u32 {
    match parsed {
        Some(pkt) => crate::parse::jump_parsed(ctx, Stage::Fwd, pkt),
        None => jump(ctx, Stage::Fwd),
    }
}

/// A next-hop cache slot: a destination's entry in DEST_NH, or the one inside a REPLY entry.
pub struct NhSlot<'a> {
    pub ifindex: &'a mut u32,
    pub time: &'a mut u32,
    pub macs: &'a mut [u8; 12],
}

impl<'a> NhSlot<'a> {
    pub fn of(nh: &'a mut NextHop) -> NhSlot<'a> {
        NhSlot {
            ifindex: &mut nh.ifindex,
            time: &mut nh.time,
            macs: &mut nh.macs,
        }
    }
}

/// Where the rewritten packet goes (addresses as in `Packet`).
pub struct Flow {
    pub saddr: [u32; 4],
    pub daddr: [u32; 4],
    pub sport: u16,
    pub dport: u16,
}

/// How the packet leaves.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    /// Routed by us (NAT): the TTL goes down by one.
    Routed,
    /// Handed to a neighbour unchanged but for the MACs (direct routing, as IPVS' DR does).
    Bridged,
}

/// Forwards the packet (headers at `pkt`, already rewritten to `flow`; `flow.daddr` is the next
/// hop's address to resolve), using and refreshing the cache `nh` (`stamp` = nh_stamp(now)).
#[inline(always)]
pub fn send(
    ctx: &XdpContext,
    pkt: &Packet,
    flow: &Flow,
    nh: Option<NhSlot>,
    stamp: u32,
    hop: Hop,
) -> u32 {
    let ingress = ctx.ingress_ifindex() as u32;
    let (ifindex, macs) = match nh {
        Some(slot) if *slot.ifindex != 0 && stamp.wrapping_sub(*slot.time) < NH_MAX_AGE => {
            (*slot.ifindex, *slot.macs)
        }
        slot => match fib(ctx, pkt, flow, ingress) {
            Some((ifindex, macs)) => {
                if let Some(slot) = slot {
                    *slot.ifindex = ifindex;
                    *slot.macs = macs;
                    *slot.time = stamp;
                }
                (ifindex, macs)
            }
            None if hop == Hop::Bridged => {
                // Still addressed to the VIP: the kernel could not deliver it to the real
                // server (it would answer "unreachable" or deliver locally). Drop; the client
                // retransmits once the neighbour is resolved (dataplane starts resolution).
                count(counter::DROP_NO_NEIGH);
                return xdp_action::XDP_DROP;
            }
            None => {
                count(counter::FWD_KERNEL);
                return xdp_action::XDP_PASS;
            }
        },
    };
    if ifindex != ingress && TX_PORTS.get(ifindex).is_none() {
        count(counter::FWD_KERNEL);
        return xdp_action::XDP_PASS;
    }
    // Routed: decrement TTL / hop limit (the caller made sure it is > 1). Then the MACs.
    if hop == Hop::Routed && pkt.is_v6() {
        if let Some(hop_limit) = ptr_at::<u8>(ctx, pkt.l3_off + IP6_HOPS) {
            // SAFETY: `hop_limit` comes from ptr_at (its byte lies before data_end); a u8 needs no
            // alignment.
            unsafe { *hop_limit = hop_limit.read().wrapping_sub(1) };
        }
    } else if hop == Hop::Routed
        && let Some(ttl_proto) = ptr_at::<u16>(ctx, pkt.l3_off + IP4_TTL)
        && let Some(check) = ptr_at::<u16>(ctx, pkt.l3_off + IP4_CHECK)
    {
        // SAFETY: `ttl_proto` and `check` come from ptr_at just above (bounds checked against
        // data_end); unaligned accesses need no alignment.
        unsafe {
            let old = ttl_proto.read_unaligned();
            let mut bytes = old.to_ne_bytes();
            bytes[0] = bytes[0].wrapping_sub(1);
            let new = u16::from_ne_bytes(bytes);
            ttl_proto.write_unaligned(new);
            check.write_unaligned(csum::replace2(check.read_unaligned(), old, new));
        }
    }
    emit(ctx, ingress, ifindex, macs)
}

/// Sets the next hop's MACs and sends the frame out of `ifindex`: XDP_TX when that is where it
/// came in, a devmap redirect otherwise (the caller checked the interface is attached).
/// `ingress` is read by the caller at its start: the verifier refuses ctx loads through a
/// pointer LLVM may have kept around.
#[inline(always)]
pub fn emit(ctx: &XdpContext, ingress: u32, ifindex: u32, macs: [u8; 12]) -> u32 {
    let Some(eth) = ptr_at::<[u8; ETH_ALEN2]>(ctx, 0) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: `eth` comes from ptr_at (its 12 bytes lie before data_end); an unaligned write needs
    // no alignment.
    unsafe { eth.write_unaligned(macs) };
    if ifindex == ingress {
        return out_again(ingress);
    }
    count(counter::FWD_REDIRECT);
    TX_PORTS
        .redirect(ifindex, 0)
        .unwrap_or(xdp_action::XDP_PASS)
}

/// FIB lookup for a packet we originate towards `daddr` (a tunnel's outer header, family
/// `af`): the kernel also picks our source address (BPF_FIB_LOOKUP_SRC). With `tot_len`
/// 0xffff the lookup stops at the MTU check: `Err(FRAG_NEEDED)` then carries the path MTU in
/// `mtu_result`, read back by [`path_mtu`]. (ifindex, macs, source), or the return code.
#[inline(always)]
pub fn fib_out(
    ctx: &XdpContext,
    ingress: u32,
    af: u8,
    daddr: &[u32; 4],
    tot_len: u16,
) -> Result<(u32, [u8; 12], [u32; 4]), i64> {
    count(counter::FIB_LOOKUP);
    let fib: &mut FibParams = SCRATCH_FIB.get().ok_or(-1i64)?;
    // SAFETY: FibParams is a plain C struct (integers and byte arrays): all zeroes is a valid
    // value.
    *fib = unsafe { core::mem::zeroed() };
    fib.family = af;
    fib.__bindgen_anon_1.tot_len = tot_len;
    if af == ebpf_common::AF_INET6 {
        fib.__bindgen_anon_4.ipv6_dst = *daddr;
    } else {
        fib.__bindgen_anon_4.ipv4_dst = daddr[0];
    }
    fib.ifindex = ingress;
    // SAFETY: `ctx.ctx` is this program's xdp_md and `fib` a live, exclusive FibParams of the size
    // passed.
    let rc = unsafe {
        bpf_fib_lookup(
            ctx.ctx as *mut _,
            fib as *mut _,
            size_of::<FibParams>() as i32,
            BPF_FIB_LOOKUP_SRC,
        )
    };
    if rc != BPF_FIB_LKUP_RET_SUCCESS as i64 {
        return Err(rc);
    }
    let mut macs = [0u8; 12];
    macs[..6].copy_from_slice(&fib.dmac);
    macs[6..].copy_from_slice(&fib.smac);
    let src = if af == ebpf_common::AF_INET6 {
        // SAFETY: the union's fields are plain integers: any bits are a valid value (the helper
        // wrote the IPv6 one).
        unsafe { fib.__bindgen_anon_3.ipv6_src }
    } else {
        // SAFETY: the union's fields are plain integers: any bits are a valid value (the helper
        // wrote the IPv4 one).
        [unsafe { fib.__bindgen_anon_3.ipv4_src }, 0, 0, 0]
    };
    Ok((fib.ifindex, macs, src))
}

/// The path MTU towards `daddr`: a lookup with the largest length fails the MTU check, and the
/// kernel reports the MTU it checked against (route metric, PMTU exception or device MTU).
#[inline(always)]
pub fn path_mtu(ctx: &XdpContext, ingress: u32, af: u8, daddr: &[u32; 4]) -> Option<u32> {
    match fib_out(ctx, ingress, af, daddr, 0xffff) {
        Err(rc) if rc == aya_ebpf::bindings::BPF_FIB_LKUP_RET_FRAG_NEEDED as i64 => {
            let fib: &mut FibParams = SCRATCH_FIB.get()?;
            // SAFETY: the union's fields are plain integers: any bits are a valid value
            // (FRAG_NEEDED wrote the MTU).
            Some(unsafe { fib.__bindgen_anon_1.mtu_result } as u32)
        }
        _ => None,
    }
}

/// bpf_fib_lookup flag: fill in the source address the kernel would use (Linux 6.8+).
const BPF_FIB_LOOKUP_SRC: u32 = 16;

/// FIB lookup: (egress ifindex, dmac+smac), or `None` if the kernel must handle the packet.
#[inline(always)]
fn fib(ctx: &XdpContext, pkt: &Packet, flow: &Flow, ingress: u32) -> Option<(u32, [u8; 12])> {
    count(counter::FIB_LOOKUP);
    let fib: &mut FibParams = SCRATCH_FIB.get()?;
    // SAFETY: FibParams is a plain C struct (integers and byte arrays): all zeroes is a valid
    // value.
    *fib = unsafe { core::mem::zeroed() };
    fib.family = pkt.af;
    fib.l4_protocol = pkt.proto;
    fib.sport = flow.sport;
    fib.dport = flow.dport;
    fib.__bindgen_anon_1.tot_len = pkt.tot_len;
    if pkt.is_v6() {
        fib.__bindgen_anon_3.ipv6_src = flow.saddr;
        fib.__bindgen_anon_4.ipv6_dst = flow.daddr;
    } else {
        fib.__bindgen_anon_2.tos = pkt.tos;
        fib.__bindgen_anon_3.ipv4_src = flow.saddr[0];
        fib.__bindgen_anon_4.ipv4_dst = flow.daddr[0];
    }
    fib.ifindex = ingress;
    // SAFETY: `ctx.ctx` is this program's xdp_md and `fib` a live, exclusive FibParams of the size
    // passed.
    let rc = unsafe {
        bpf_fib_lookup(
            ctx.ctx as *mut _,
            fib as *mut _,
            size_of::<FibParams>() as i32,
            0,
        )
    };
    if rc != BPF_FIB_LKUP_RET_SUCCESS as i64 {
        return None;
    }
    let mut macs = [0u8; 12];
    macs[..6].copy_from_slice(&fib.dmac);
    macs[6..].copy_from_slice(&fib.smac);
    Some((fib.ifindex, macs))
}

/// Sends the packet we made back out of the interface it came in on.
#[inline(always)]
pub fn back_out(ctx: &XdpContext) -> u32 {
    out_again(ctx.ingress_ifindex() as u32)
}

/// Sends the frame back out of `ingress`, the interface it came in on: XDP_TX, or a devmap
/// redirect to the same interface where the loader found XDP_TX unreliable
/// (`config::TX_VIA_DEVMAP`: a native-mode veth's XDP_TX frames wait in its peer's queue until
/// other traffic flushes them, or are lost; the devmap path flushes every batch).
#[inline(always)]
fn out_again(ingress: u32) -> u32 {
    if setting(config::TX_VIA_DEVMAP) && TX_PORTS.get(ingress).is_some() {
        count(counter::FWD_REDIRECT);
        return TX_PORTS
            .redirect(ingress, 0)
            .unwrap_or(xdp_action::XDP_DROP);
    }
    count(counter::FWD_TX);
    xdp_action::XDP_TX
}
