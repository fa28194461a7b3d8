//! Connection state tracking with IPVS' TCP state table and timeouts, so `ipvsadm -Lc` states,
//! ActiveConn/InActConn and expiry behave as they do with kernel IPVS.

use ebpf_common::{
    DEFAULT_TIMEOUTS, N_STATES, S_CLOSE, S_CLOSE_WAIT as CW, S_ESTABLISHED as ES, S_FIN_WAIT as FW,
    S_LAST_ACK as LA, S_LISTEN as LI, S_SYN_RECV as SR, S_SYN_SENT as SS, S_TIME_WAIT as TW,
};

use crate::maps::TIMEOUTS;
use crate::proto::{TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN};

const CL: u8 = S_CLOSE;

/// Which side a packet came from: the client (towards the real server) or the real server.
#[derive(Clone, Copy)]
pub enum Dir {
    /// client -> real (IPVS "INPUT").
    In = 0,
    /// real -> client (IPVS "OUTPUT").
    Out = 1,
    /// client -> real when replies do not come back through us (DR, TUN: IPVS "INPUT-ONLY").
    InOnly = 2,
}

/// Next state by [direction * 4 + event][current state]; events are syn, fin, ack, rst.
/// Columns: NONE, ESTABLISHED, SYN_SENT, SYN_RECV, FIN_WAIT, TIME_WAIT, CLOSE, CLOSE_WAIT,
/// LAST_ACK, LISTEN, SYNACK (IPVS ip_vs_proto_tcp.c: INPUT, OUTPUT, INPUT-ONLY tables).
static TCP_NEXT: [[u8; 11]; 12] = [
    // INPUT
    [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR], // syn
    [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW], // fin
    [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES], // ack
    [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR], // rst
    // OUTPUT
    [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR], // syn
    [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW], // fin
    [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES], // ack
    [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL], // rst
    // INPUT-ONLY
    [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR], // syn
    [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW], // fin
    [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES], // ack
    [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL], // rst
];

/// IPVS' event of a TCP segment: rst wins, then syn, fin, ack; none -> no transition.
#[inline(always)]
fn tcp_event(flags: u8) -> Option<usize> {
    if flags & TCP_RST != 0 {
        Some(3)
    } else if flags & TCP_SYN != 0 {
        Some(0)
    } else if flags & TCP_FIN != 0 {
        Some(1)
    } else if flags & TCP_ACK != 0 {
        Some(2)
    } else {
        None
    }
}

/// The state after a TCP segment with `flags` seen in direction `dir`.
#[inline(always)]
pub fn tcp_next(state: u8, dir: Dir, flags: u8) -> u8 {
    let Some(event) = tcp_event(flags) else {
        return state;
    };
    let row = (dir as usize) * 4 + event;
    match TCP_NEXT.get(row).and_then(|r| r.get(state as usize)) {
        Some(next) => *next,
        None => state,
    }
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
        let cur = unsafe { core::ptr::read_volatile(word) };
        if cur as u8 != old {
            return false;
        }
        let new = (cur & !0xff) | next as u32;
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
