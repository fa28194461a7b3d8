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
