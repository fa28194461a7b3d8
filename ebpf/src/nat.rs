//! NAT rewrites of IPv4 packets with incremental checksum updates: the destination on the way in
//! (vip:vport -> rip:rport) and the source on the way back (rip:rport -> vip:vport).

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

/// Rewrites one end's address and port, fixing the IPv4 and TCP/UDP checksums.
/// Returns false if the headers are not where the parser found them (never expected).
#[inline(always)]
pub fn rewrite_v4(ctx: &XdpContext, pkt: &Packet, end: End, addr: u32, port: u16) -> bool {
    let (addr_off, port_off, old_addr, old_port) = match end {
        End::Source => (12, 0, pkt.src, pkt.sport),
        End::Destination => (16, 2, pkt.dst, pkt.dport),
    };
    let udp = pkt.proto == IPPROTO_UDP;
    let l4_check_off = if udp { 6 } else { 16 };
    let (Some(ip_addr), Some(ip_check), Some(l4_port), Some(l4_check)) = (
        ptr_at::<u32>(ctx, pkt.l3_off + addr_off),
        ptr_at::<u16>(ctx, pkt.l3_off + 10),
        ptr_at::<u16>(ctx, pkt.l4_off + port_off),
        ptr_at::<u16>(ctx, pkt.l4_off + l4_check_off),
    ) else {
        return false;
    };
    unsafe {
        ip_addr.write_unaligned(addr);
        ip_check.write_unaligned(csum::replace4(ip_check.read_unaligned(), old_addr, addr));
        l4_port.write_unaligned(port);
        let check = l4_check.read_unaligned();
        // UDP checksum 0 means "none" and stays so; a computed 0 is sent as 0xffff.
        if !(udp && check == 0) {
            let mut new = csum::replace_addr_port(check, old_addr, addr, old_port, port);
            if udp && new == 0 {
                new = 0xffff;
            }
            l4_check.write_unaligned(new);
        }
    }
    true
}
