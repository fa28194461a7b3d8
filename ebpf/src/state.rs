//! Connection state tracking with IPVS' TCP state table and timeouts, so `ipvsadm -Lc` states,
//! ActiveConn/InActConn and expiry behave as they do with kernel IPVS.

use ebpf_common::{DEFAULT_TIMEOUTS, N_STATES, tcp_state};

use crate::maps::TIMEOUTS;

pub use tcp_state::Dir;

/// The state after a TCP segment with `flags` seen in direction `dir` (IPVS' table, pure in
/// `ebpf_common::tcp_state`).
#[inline(always)]
pub fn tcp_next(state: u8, dir: Dir, flags: u8) -> u8 {
    tcp_state::next(state, dir, flags)
}

/// Timeout of `state` in seconds: the configured one, or IPVS' default.
#[inline(always)]
pub fn timeout_of(state: u8) -> u32 {
    let idx = state as u32;
    if idx >= N_STATES {
        return 0;
    }
    match TIMEOUTS.get(idx) {
        Some(t) if *t != 0 => *t,
        _ => DEFAULT_TIMEOUTS.get(idx as usize).copied().unwrap_or(0),
    }
}

/// Moves `conn` from state `old` to `next` unless another CPU changed its state first (the
/// client's and the real's FIN, seen on two interfaces at once, both leave ESTABLISHED): only
/// the CPU that wins moves the connection between its real's counts (IPVS holds the
/// connection's lock for this). An atomic compare-and-exchange on the 32-bit word that holds
/// the state (with fwd, af and flags beside it: a concurrent flag change makes us try again).
#[inline(always)]
pub fn claim(conn: &mut ebpf_common::Conn, old: u8, next: u8) -> bool {
    use core::intrinsics::{AtomicOrdering, atomic_cxchg};
    // `state` opens its 4-byte-aligned word (little-endian: the low byte); see ebpf_common::Conn.
    let word = (&mut conn.state as *mut u8).cast::<u32>();
    let mut tries = 0;
    while tries < 4 {
        // SAFETY: `word` points into `conn`, a live map value, at the 4-byte-aligned word that
        // opens with `state` (ebpf_common::Conn's layout).
        let cur = unsafe { core::ptr::read_volatile(word) };
        if cur as u8 != old {
            return false;
        }
        let new = (cur & !0xff) | next as u32;
        // SAFETY: `word` points into the live map value `conn`, 4-byte aligned, as the u32 atomic
        // needs.
        let (_, won) = unsafe {
            atomic_cxchg::<u32, { AtomicOrdering::Relaxed }, { AtomicOrdering::Relaxed }>(
                word, cur, new,
            )
        };
        if won {
            return true;
        }
        tries += 1;
    }
    false
}
