//! SYNPROXY's cookie SYN-ACK carries the client's handshake options in the low bits of its
//! TSval (as the kernel's `cookie_init_timestamp` does: the client echoes them in the TSecr of
//! its ACK, so nothing is stored): bits 0-3 the client's window scale (0xf: none), bit 4 SACK
//! permitted, bit 5 set (the kernel's ECN bit: ECN is not negotiated), bits 6-7 (ours) the
//! index of the client's MSS in [`crate::SYNPROXY_MSS_TABLE`] (IPv6:
//! [`crate::SYNPROXY_MSS_TABLE6`]; the kernel's cookie MSS tables). Pure: the packet path
//! encodes and negotiates with it, host unit tests check it.

use crate::{SP_SACK, SP_TS, SP_WSCALE, SYNPROXY_WSCALE};

/// Low TSval bits that carry the options (the clock keeps the rest).
pub const BITS: u32 = 8;
/// The client's window scale (0xf: none).
pub const WSCALE_MASK: u32 = 0xf;
/// The client permitted SACK.
pub const SACK: u32 = 1 << 4;
/// Shift of the client's MSS index.
pub const MSS_SHIFT: u32 = 6;

/// Index of the largest MSS of `table` the cookie's MSS reaches (0 when below the second).
#[inline(always)]
pub fn mss_index(cookie_mss: u16, table: &[u16; 4]) -> u32 {
    let mut idx = 0u32;
    let mut i = 1;
    while i < 4 {
        if cookie_mss >= table[i] {
            idx = i as u32;
        }
        i += 1;
    }
    idx
}

/// Our SYN-ACK's TSval: the clock `now_ms` (~ms) with the client's window scale (0xf: none),
/// SACK permission and MSS index in the low [`BITS`] bits.
#[inline(always)]
pub fn encode(now_ms: u32, wscale: u8, sack_ok: bool, mss_idx: u32) -> u32 {
    let mut bits = (wscale as u32 & WSCALE_MASK) | (mss_idx << MSS_SHIFT) | (1 << 5);
    if sack_ok {
        bits |= SACK;
    }
    (now_ms & !((1 << BITS) - 1)) | bits
}

/// What the two handshakes agreed, as the translation needs it.
pub struct Negotiated {
    /// Goes to [`crate::Conn::ts_delta`].
    pub ts_delta: u32,
    /// Goes to [`crate::Conn::sp_opts`].
    pub sp_opts: u8,
    /// Goes to [`crate::Conn::win_shift_out`].
    pub win_shift_out: i8,
    /// Goes to [`crate::Conn::win_shift_in`].
    pub win_shift_in: i8,
    /// The scale the real applies to our (the client's) windows.
    pub ack_window_shift: u32,
}

impl Negotiated {
    /// Nothing negotiated: no timestamps, SACK or window rescaling.
    pub const NONE: Negotiated = Negotiated {
        ts_delta: 0,
        sp_opts: 0,
        win_shift_out: 0,
        win_shift_in: 0,
        ack_window_shift: 0,
    };
}

/// From our SYN-ACK's TSval (`ours`: the client's options; 0 = the client sent no timestamps)
/// and the real's SYN-ACK (timestamps, its TSval, its window scale, 0xf = none).
/// Window rule: the client was promised scale 7, so a real announcing scale r has its window
/// fields shifted by r - 7 towards the client (left saturating, or right rounding down); a real
/// refusing window scaling (r = 0 for its own windows) reads the client's windows unscaled, so
/// those are shifted left by the client's scale.
#[inline(always)]
pub fn negotiate(ours: u32, real_ts: bool, real_tsval: u32, real_ws: u8) -> Negotiated {
    let mut n = Negotiated::NONE;
    if ours == 0 {
        return n;
    }
    if real_ts {
        n.sp_opts |= SP_TS;
        n.ts_delta = ours.wrapping_sub(real_tsval);
    }
    if ours & SACK != 0 {
        n.sp_opts |= SP_SACK;
    }
    let client_ws = (ours & WSCALE_MASK) as u8;
    if client_ws != 0xf {
        n.sp_opts |= SP_WSCALE;
        if real_ws != 0xf {
            n.win_shift_out = real_ws as i8 - SYNPROXY_WSCALE as i8;
            n.ack_window_shift = client_ws as u32 & 15;
        } else {
            n.win_shift_out = -(SYNPROXY_WSCALE as i8);
            n.win_shift_in = client_ws as i8;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SYNPROXY_MSS_TABLE;

    #[test]
    fn the_client_options_survive_the_round_trip() {
        let idx = mss_index(1460, &SYNPROXY_MSS_TABLE);
        assert_eq!(idx, 3);
        assert_eq!(mss_index(1300, &SYNPROXY_MSS_TABLE), 1);
        assert_eq!(mss_index(536, &SYNPROXY_MSS_TABLE), 0);
        let ours = encode(0x1234_5678, 7, true, idx);
        assert_eq!(ours >> BITS, 0x1234_5678 >> BITS);
        assert_eq!(ours & WSCALE_MASK, 7);
        assert_ne!(ours & SACK, 0);
        assert_eq!((ours >> MSS_SHIFT) & 3, 3);
        let none = encode(0, 0xf, false, 0);
        assert_eq!(none & WSCALE_MASK, 0xf);
        assert_eq!(none & SACK, 0);
    }

    #[test]
    fn window_rule_and_timestamps_follow_what_both_sides_offered() {
        // Client scale 7 with SACK, real scale 9 with timestamps: its windows go left by 2.
        let ours = encode(1000 << 8, 7, true, 3);
        let n = negotiate(ours, true, 555, 9);
        assert_eq!(n.sp_opts, SP_TS | SP_SACK | SP_WSCALE);
        assert_eq!(n.ts_delta, ours.wrapping_sub(555));
        assert_eq!(n.win_shift_out, 2);
        assert_eq!(n.win_shift_in, 0);
        assert_eq!(n.ack_window_shift, 7);
        // A real refusing window scaling: the client's windows are scaled up for it.
        let n = negotiate(encode(0, 5, false, 0), false, 0, 0xf);
        assert_eq!(n.sp_opts, SP_WSCALE);
        assert_eq!(n.win_shift_out, -(SYNPROXY_WSCALE as i8));
        assert_eq!(n.win_shift_in, 5);
        // A client without timestamps: nothing was negotiated.
        let n = negotiate(0, true, 1, 7);
        assert_eq!(n.sp_opts, 0);
        assert_eq!(n.win_shift_out, 0);
    }
}
