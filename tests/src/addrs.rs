//! The addresses the test topologies agree on, all in 198.18.0.0/15 and 2001:db8::/32: the VIP,
//! the client, the reals and FULLNAT local addresses, and their IPv6 counterparts. [`crate::lab`]
//! builds them as links and [`crate::netns::fib_namespace`] resolves them,
//! and the packet-path tests craft frames between them.

use std::net::Ipv4Addr;

/// The virtual service address (configured on no interface).
pub const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 1);
/// The client (`c0` of the lab).
pub const CIP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
/// The first two reals, [`real_addr`] 0 and 1.
pub const R1: Ipv4Addr = real_addr(0);
pub const R2: Ipv4Addr = real_addr(1);
/// FULLNAT local addresses of the director.
pub const L1: Ipv4Addr = Ipv4Addr::new(198, 18, 9, 1);
pub const L2: Ipv4Addr = Ipv4Addr::new(198, 18, 9, 2);

pub const VIP6: &str = "2001:db8:100::1";
pub const CIP6: &str = "2001:db8:1::2";
/// The first IPv6 real.
pub const R6: &str = "2001:db8:2::2";

/// Address of real server `i` (0-based): 198.18.(2+i).2.
pub const fn real_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 2 + i as u8, 2)
}
