//! All checksum math of the packet path in one place: the pure arithmetic lives in
//! `ebpf_common::csum` (unit-tested on the host); here what reads packet memory.

pub use ebpf_common::csum::{
    finish, fold, pseudo_header, replace2, replace4, replace16, sum_addr, sum_words,
};

/// `sum` plus the one's-complement sum of `N` packet bytes at `p` (checked by the caller's
/// `ptr_at`), read as native 16-bit words.
#[inline(always)]
pub fn sum_at<const N: usize>(p: *mut [u8; N], mut sum: u32) -> u32 {
    let p = p as *const u16;
    let mut i = 0;
    while i < N / 2 {
        // SAFETY: the caller's `&[u8; N]`-sized pointer covers these N/2 words (i < N/2); unaligned
        // reads need no alignment.
        sum += unsafe { p.add(i).read_unaligned() } as u32;
        i += 1;
    }
    sum
}
