//! Internet checksum arithmetic (RFC 1071, incremental updates per RFC 1624), pure, shared by
//! the packet path and testable on the host. Values are the raw 16-bit words as they sit in the
//! packet (native loads): one's-complement sums do not depend on byte order as long as every
//! term uses the same.

/// The sum folded to 16 bits (not complemented).
#[inline(always)]
pub const fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// The checksum field for a sum: folded and complemented.
#[inline(always)]
pub const fn finish(sum: u32) -> u16 {
    !fold(sum)
}

/// Checksum after replacing the 16-bit word `old` with `new`.
#[inline(always)]
pub const fn replace2(check: u16, old: u16, new: u16) -> u16 {
    !fold((!check as u32) + (!old as u32) + new as u32)
}

/// Checksum after replacing the 32-bit value `old` (e.g. an IPv4 address) with `new`.
#[inline(always)]
pub const fn replace4(check: u16, old: u32, new: u32) -> u16 {
    let sum = (!check as u32)
        + (!(old as u16) as u32)
        + (!((old >> 16) as u16) as u32)
        + (new & 0xffff)
        + (new >> 16);
    !fold(sum)
}

/// Checksum after replacing a 128-bit address (four words, as stored) `old` with `new`.
#[inline(always)]
pub const fn replace16(mut check: u16, old: &[u32; 4], new: &[u32; 4]) -> u16 {
    let mut i = 0;
    while i < 4 {
        check = replace4(check, old[i], new[i]);
        i += 1;
    }
    check
}

/// `sum` plus the one's-complement sum of `N` bytes taken as native 16-bit words (as the
/// packet's own loads see them).
#[inline(always)]
pub const fn sum_words<const N: usize>(b: &[u8; N], mut sum: u32) -> u32 {
    let mut i = 0;
    while i + 1 < N {
        sum += u16::from_ne_bytes([b[i], b[i + 1]]) as u32;
        i += 2;
    }
    sum
}

/// `sum` plus the sum of an address's words (IPv4 in word 0, the rest zero).
#[inline(always)]
pub const fn sum_addr(addr: &[u32; 4], mut sum: u32) -> u32 {
    let mut i = 0;
    while i < 4 {
        sum += (addr[i] & 0xffff) + (addr[i] >> 16);
        i += 1;
    }
    sum
}

/// The sum of an L4 pseudo-header: both addresses (IPv4 in word 0, the rest zero), the
/// protocol and the L4 length (as in the IPv4 or IPv6 pseudo-header: the sum is the same).
#[inline(always)]
pub const fn pseudo_header(src: &[u32; 4], dst: &[u32; 4], proto: u8, len: u16) -> u32 {
    let sum = (proto as u16).to_be() as u32 + len.to_be() as u32;
    sum_addr(dst, sum_addr(src, sum))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 over a byte slice, straightforwardly (the reference).
    fn reference(bytes: &[u8]) -> u16 {
        let mut sum = 0u32;
        for pair in bytes.chunks(2) {
            let hi = pair[0] as u32;
            let lo = *pair.get(1).unwrap_or(&0) as u32;
            sum += hi << 8 | lo;
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    /// A real IPv4 header (from a capture) with its checksum field zeroed.
    const IP: [u8; 20] = [
        0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 0xac, 0x10, 0x0a,
        0x63, 0xac, 0x10, 0x0a, 0x0c,
    ];

    #[test]
    fn a_header_sum_matches_rfc1071() {
        let native = finish(sum_words(&IP, 0));
        // Native words on a little-endian host: the field is stored as the native value.
        assert_eq!(u16::from_be_bytes(native.to_ne_bytes()), reference(&IP));
        assert_eq!(reference(&IP), 0xb1e6);
    }

    #[test]
    fn incremental_updates_equal_a_full_recompute() {
        let check = finish(sum_words(&IP, 0));
        let mut changed = IP;
        changed[16..20].copy_from_slice(&[198, 18, 2, 2]);
        let old = u32::from_ne_bytes([IP[16], IP[17], IP[18], IP[19]]);
        let new = u32::from_ne_bytes([198, 18, 2, 2]);
        assert_eq!(replace4(check, old, new), finish(sum_words(&changed, 0)));
        let mut ttl = IP;
        ttl[8] -= 1;
        let w = |b: &[u8; 20]| u16::from_ne_bytes([b[8], b[9]]);
        assert_eq!(replace2(check, w(&IP), w(&ttl)), finish(sum_words(&ttl, 0)));
        let a = [1u32, 2, 3, 4];
        let b = [0xffff_0000u32, 5, 0, 0x1234_5678];
        let base = finish(sum_addr(&a, 77));
        assert_eq!(replace16(base, &a, &b), finish(sum_addr(&b, 77)));
    }

    #[test]
    fn pseudo_header_of_ipv4_matches_the_byte_layout() {
        // 172.16.10.99 -> 172.16.10.12, TCP, 40 bytes: src, dst, 0, 6, 0, 40.
        let src = [u32::from_ne_bytes([172, 16, 10, 99]), 0, 0, 0];
        let dst = [u32::from_ne_bytes([172, 16, 10, 12]), 0, 0, 0];
        let bytes = [172, 16, 10, 99, 172, 16, 10, 12, 0, 6, 0, 40];
        assert_eq!(
            fold(pseudo_header(&src, &dst, 6, 40)),
            fold(sum_words(&bytes, 0))
        );
    }

    #[test]
    fn a_packet_with_its_checksum_sums_to_zero() {
        let mut ip = IP;
        let c = finish(sum_words(&ip, 0)).to_ne_bytes();
        ip[10] = c[0];
        ip[11] = c[1];
        assert_eq!(finish(sum_words(&ip, 0)), 0);
    }
}
