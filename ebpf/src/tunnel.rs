//! IP-in-IP tunnelling to real servers (`ipvsadm -i`, `--tun-type ipip`), IPv4: the client's
//! packet, untouched, gets an outer IPv4 header from us to the real server, as IPVS' TUN method
//! does. The outer source is the address the kernel would use towards the real (looked up with
//! the next hop and cached beside it). A packet that would no longer fit the path MTU once
//! encapsulated is dropped and counted (the "fragmentation needed" answer to the client is still
//! to be built; TCP clients then see the SYN-negotiated MSS work and large segments retried).

use aya_ebpf::{
    bindings::{BPF_FIB_LKUP_RET_FRAG_NEEDED, xdp_action},
    helpers::bpf_xdp_adjust_head,
    programs::XdpContext,
};
use ebpf_common::{NH_MAX_AGE, counter, nh_stamp};

use crate::forward;
use crate::maps::{DEST_NH, TX_PORTS, count};
use crate::parse::{ETH_HLEN, Packet, ptr_at};

const IPPROTO_IPIP: u8 = 4;
const OUTER_LEN: usize = 20;

/// Encapsulates the packet towards `rip` and forwards it.
#[inline(always)]
pub fn ipip(ctx: &XdpContext, pkt: &Packet, dest_id: u32, rip: u32, now: u64) -> u32 {
    let ingress = ctx.ingress_ifindex() as u32;
    // Untagged IPv4 only for now: the outer header goes right after the Ethernet header.
    if pkt.is_v6() || pkt.l3_off != ETH_HLEN {
        count(counter::DROP_UNSUPPORTED);
        return xdp_action::XDP_DROP;
    }
    let outer_len = pkt.tot_len as u32 + OUTER_LEN as u32;
    if outer_len > 0xffff {
        count(counter::DROP_TOO_BIG);
        return xdp_action::XDP_DROP;
    }
    let stamp = nh_stamp(now);
    let Some(nh) = DEST_NH.get_ptr_mut(dest_id) else {
        return xdp_action::XDP_DROP;
    };
    let nh = unsafe { &mut *nh };
    if nh.ifindex == 0 || nh.src == 0 || stamp.wrapping_sub(nh.time) >= NH_MAX_AGE {
        match forward::fib_v4_out(ctx, ingress, rip, outer_len as u16, IPPROTO_IPIP) {
            Ok((ifindex, macs, src)) => {
                nh.ifindex = ifindex;
                nh.macs = macs;
                nh.src = src;
                nh.time = stamp;
            }
            Err(rc) if rc == BPF_FIB_LKUP_RET_FRAG_NEEDED as i64 => {
                count(counter::DROP_TOO_BIG);
                return xdp_action::XDP_DROP;
            }
            Err(_) => {
                // As for DR: the kernel could not deliver a VIP-addressed packet to the real.
                count(counter::DROP_NO_NEIGH);
                return xdp_action::XDP_DROP;
            }
        }
    }
    let (ifindex, macs, src) = (nh.ifindex, nh.macs, nh.src);
    if ifindex != ingress && TX_PORTS.get(ifindex).is_none() {
        count(counter::DROP_NO_NEIGH);
        return xdp_action::XDP_DROP;
    }
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(OUTER_LEN as i32)) } != 0 {
        return xdp_action::XDP_DROP;
    }
    // New layout: Ethernet (MACs set by emit) | outer IPv4 | the original IP packet.
    let (Some(ethertype), Some(outer)) = (
        ptr_at::<u16>(ctx, 12),
        ptr_at::<[u8; OUTER_LEN]>(ctx, ETH_HLEN),
    ) else {
        return xdp_action::XDP_DROP;
    };
    let len = (outer_len as u16).to_be_bytes();
    let (s, d) = (src.to_ne_bytes(), rip.to_ne_bytes());
    let mut h: [u8; OUTER_LEN] = [
        0x45,
        pkt.tos,
        len[0],
        len[1],
        0,
        0,
        0x40,
        0,
        64,
        IPPROTO_IPIP,
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
    let mut sum = 0u32;
    for i in 0..OUTER_LEN / 2 {
        sum += u16::from_be_bytes([h[2 * i], h[2 * i + 1]]) as u32;
    }
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    let check = (!(sum as u16)).to_be_bytes();
    h[10] = check[0];
    h[11] = check[1];
    unsafe {
        ethertype.write_unaligned(0x0800u16.to_be());
        outer.write_unaligned(h);
    }
    count(counter::FWD_TUNNEL);
    forward::emit(ctx, ingress, ifindex, macs)
}
