//! NAT rewrites with incremental checksum updates: the destination on the way in
//! (vip:vport -> rip:rport) and the source on the way back (rip:rport -> vip:vport), for IPv4
//! (IP and L4 checksums) and IPv6 (L4 checksum only; its pseudo-header holds both addresses).

use aya_ebpf::programs::XdpContext;

use crate::csum;
use crate::parse::{Packet, ptr_at};
use crate::proto::{
    IP4_CHECK, IP4_DADDR, IP4_SADDR, IP6_DADDR, IP6_SADDR, IPPROTO_UDP, TCP_DPORT, TCP_SPORT,
    l4_check_off,
};

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
        // TCP and UDP ports sit at the same offsets.
        End::Source => (&pkt.src, pkt.sport, TCP_SPORT),
        End::Destination => (&pkt.dst, pkt.dport, TCP_DPORT),
    };
    let udp = pkt.proto == IPPROTO_UDP;
    let l4_check_off = l4_check_off(pkt.proto);
    let (Some(l4_port), Some(l4_check)) = (
        ptr_at::<u16>(ctx, pkt.l4_off + port_off),
        ptr_at::<u16>(ctx, pkt.l4_off + l4_check_off),
    ) else {
        return false;
    };
    // SAFETY: `l4_check` comes from ptr_at, which checked that its bytes lie before data_end; an
    // unaligned read needs no alignment.
    let check = unsafe { l4_check.read_unaligned() };
    let mut new_check = csum::replace2(check, old_port, port);
    if pkt.is_v6() {
        let off = match end {
            End::Source => IP6_SADDR,
            End::Destination => IP6_DADDR,
        };
        let Some(ip_addr) = ptr_at::<[u32; 4]>(ctx, pkt.l3_off + off) else {
            return false;
        };
        new_check = csum::replace16(new_check, old_addr, addr);
        // SAFETY: `ip_addr` comes from ptr_at (bounds checked against data_end); an unaligned write
        // needs no alignment.
        unsafe { ip_addr.write_unaligned(*addr) };
    } else {
        let off = match end {
            End::Source => IP4_SADDR,
            End::Destination => IP4_DADDR,
        };
        let (Some(ip_addr), Some(ip_check)) = (
            ptr_at::<u32>(ctx, pkt.l3_off + off),
            ptr_at::<u16>(ctx, pkt.l3_off + IP4_CHECK),
        ) else {
            return false;
        };
        new_check = csum::replace4(new_check, old_addr[0], addr[0]);
        // SAFETY: `ip_addr` and `ip_check` come from ptr_at (bounds checked against data_end);
        // unaligned accesses need no alignment.
        unsafe {
            ip_addr.write_unaligned(addr[0]);
            ip_check.write_unaligned(csum::replace4(
                ip_check.read_unaligned(),
                old_addr[0],
                addr[0],
            ));
        }
    }
    // SAFETY: `l4_port` and `l4_check` come from ptr_at above (bounds checked against data_end);
    // unaligned writes need no alignment.
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
