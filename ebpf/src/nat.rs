//! NAT rewrites with incremental checksum updates: the destination on the way in
//! (vip:vport -> rip:rport) and the source on the way back (rip:rport -> vip:vport), for IPv4
//! (IP and L4 checksums) and IPv6 (L4 checksum only; its pseudo-header holds both addresses).

use aya_ebpf::programs::XdpContext;
use ebpf_common::IPPROTO_UDP;

use crate::csum;
use crate::parse::{Packet, ptr_at};

/// Which end of the packet to rewrite.
#[derive(Clone, Copy)]
pub enum End {
    Source,
    Destination,
}

/// Rewrites one end's address and port, fixing the checksums. Returns false if the headers are
/// not where the parser found them (never expected).
#[inline(always)]
pub fn rewrite(ctx: &XdpContext, pkt: &Packet, end: End, addr: &[u32; 4], port: u16) -> bool {
    let (old_addr, old_port, port_off) = match end {
        End::Source => (&pkt.src, pkt.sport, 0),
        End::Destination => (&pkt.dst, pkt.dport, 2),
    };
    let udp = pkt.proto == IPPROTO_UDP;
    let l4_check_off = if udp { 6 } else { 16 };
    let (Some(l4_port), Some(l4_check)) = (
        ptr_at::<u16>(ctx, pkt.l4_off + port_off),
        ptr_at::<u16>(ctx, pkt.l4_off + l4_check_off),
    ) else {
        return false;
    };
    let check = unsafe { l4_check.read_unaligned() };
    let mut new_check = csum::replace2(check, old_port, port);
    if pkt.is_v6() {
        let off = match end {
            End::Source => 8,
            End::Destination => 24,
        };
        let Some(ip_addr) = ptr_at::<[u32; 4]>(ctx, pkt.l3_off + off) else {
            return false;
        };
        for i in 0..4 {
            new_check = csum::replace4(new_check, old_addr[i], addr[i]);
        }
        unsafe { ip_addr.write_unaligned(*addr) };
    } else {
        let off = match end {
            End::Source => 12,
            End::Destination => 16,
        };
        let (Some(ip_addr), Some(ip_check)) = (
            ptr_at::<u32>(ctx, pkt.l3_off + off),
            ptr_at::<u16>(ctx, pkt.l3_off + 10),
        ) else {
            return false;
        };
        new_check = csum::replace4(new_check, old_addr[0], addr[0]);
        unsafe {
            ip_addr.write_unaligned(addr[0]);
            ip_check.write_unaligned(csum::replace4(
                ip_check.read_unaligned(),
                old_addr[0],
                addr[0],
            ));
        }
    }
    unsafe {
        l4_port.write_unaligned(port);
        // UDP checksum 0 means "none" (IPv4 only) and stays so; a computed 0 is sent as 0xffff.
        if !(udp && check == 0 && !pkt.is_v6()) {
            if udp && new_check == 0 {
                new_check = 0xffff;
            }
            l4_check.write_unaligned(new_check);
        }
    }
    true
}
