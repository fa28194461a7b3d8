//! Incremental Internet checksum updates (RFC 1624). Values are the raw 16-bit words as they sit in
//! the packet; one's-complement sums do not depend on byte order as long as every term uses the same.

#[inline(always)]
fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// Checksum after replacing the 16-bit word `old` with `new`.
#[inline(always)]
pub fn replace2(check: u16, old: u16, new: u16) -> u16 {
    !fold((!check as u32) + (!old as u32) + new as u32)
}

/// Checksum after replacing the 32-bit value `old` (e.g. an IPv4 address) with `new`.
#[inline(always)]
pub fn replace4(check: u16, old: u32, new: u32) -> u16 {
    let sum = (!check as u32)
        + (!(old as u16) as u32)
        + (!((old >> 16) as u16) as u32)
        + (new & 0xffff)
        + (new >> 16);
    !fold(sum)
}

/// Checksum after replacing an address and a port at once (the L4 checksum of a NAT rewrite:
/// the address is in the pseudo-header, the port in the header).
#[inline(always)]
pub fn replace_addr_port(
    check: u16,
    old_addr: u32,
    new_addr: u32,
    old_port: u16,
    new_port: u16,
) -> u16 {
    replace2(replace4(check, old_addr, new_addr), old_port, new_port)
}
