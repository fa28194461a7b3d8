//! Protocol numbers, flags and named header offsets: what the packet path reads and writes,
//! named once (a field is `l3_off + IP4_DADDR`, never `l3_off + 16`). A leaf: imports nothing
//! of the crate.

pub use ebpf_common::{AF_INET, AF_INET6, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP};

// Ethernet and VLAN tags.
pub const ETH_HLEN: usize = 14;
/// Offset of the EtherType (and of a VLAN tag's TPID).
pub const ETH_TYPE: usize = 12;
/// Both MAC addresses (destination, then source) at the front of the frame.
pub const ETH_ALEN2: usize = 12;
pub const VLAN_HLEN: usize = 4;
/// Offset of the encapsulated EtherType inside a VLAN tag.
pub const VLAN_TYPE: usize = 2;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86DD;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88A8;

// IPv4 header fields (from the start of the header).
pub const IP4_HLEN: usize = 20;
pub const IP4_TOS: usize = 1;
pub const IP4_TOT_LEN: usize = 2;
pub const IP4_ID: usize = 4;
/// Flags (DF 0x40 in its first byte) and fragment offset.
pub const IP4_FRAG: usize = 6;
pub const IP4_TTL: usize = 8;
pub const IP4_PROTO: usize = 9;
pub const IP4_CHECK: usize = 10;
pub const IP4_SADDR: usize = 12;
pub const IP4_DADDR: usize = 16;
/// DF in the first byte of `IP4_FRAG`.
pub const IP4_DF_BYTE: u8 = 0x40;
/// MF and the offset in the host-order `IP4_FRAG` word.
pub const IP4_MF_OFFSET: u16 = 0x3fff;
pub const IP4_OFFSET: u16 = 0x1fff;

// IPv6 header fields.
pub const IP6_HLEN: usize = 40;
pub const IP6_PLEN: usize = 4;
pub const IP6_NEXT: usize = 6;
pub const IP6_HOPS: usize = 7;
pub const IP6_SADDR: usize = 8;
pub const IP6_DADDR: usize = 24;

// IPv6 extension headers and other protocols we meet.
pub const IPPROTO_HOPOPTS: u8 = 0;
pub const IPPROTO_IPIP: u8 = 4;
pub const IPPROTO_IPV6: u8 = 41;
pub const IPPROTO_ROUTING: u8 = 43;
pub const IPPROTO_FRAGMENT: u8 = 44;
pub const IPPROTO_GRE: u8 = 47;
pub const IPPROTO_ICMPV6: u8 = 58;
pub const IPPROTO_DSTOPTS: u8 = 60;

// TCP header fields.
pub const TCP_HLEN: usize = 20;
pub const TCP_SPORT: usize = 0;
pub const TCP_DPORT: usize = 2;
pub const TCP_SEQ: usize = 4;
pub const TCP_ACK_SEQ: usize = 8;
/// Data offset (high nibble, in 32-bit words).
pub const TCP_DOFF: usize = 12;
pub const TCP_FLAGS: usize = 13;
pub const TCP_WINDOW: usize = 14;
pub const TCP_CHECK: usize = 16;

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;

// TCP option kinds.
pub const TCPOPT_EOL: u8 = 0;
pub const TCPOPT_NOP: u8 = 1;
pub const TCPOPT_MSS: u8 = 2;
pub const TCPOPT_WSCALE: u8 = 3;
pub const TCPOPT_SACK_PERM: u8 = 4;
pub const TCPOPT_SACK: u8 = 5;
pub const TCPOPT_TIMESTAMP: u8 = 8;

// UDP header fields.
pub const UDP_HLEN: usize = 8;
pub const UDP_CHECK: usize = 6;

/// Offset of the L4 checksum (TCP or UDP).
#[inline(always)]
pub const fn l4_check_off(proto: u8) -> usize {
    if proto == IPPROTO_UDP {
        UDP_CHECK
    } else {
        TCP_CHECK
    }
}

/// Offsets of the source and destination address for the family.
#[inline(always)]
pub const fn addr_offs(v6: bool) -> (usize, usize) {
    if v6 {
        (IP6_SADDR, IP6_DADDR)
    } else {
        (IP4_SADDR, IP4_DADDR)
    }
}
