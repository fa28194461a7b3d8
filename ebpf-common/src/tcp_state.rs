//! IPVS' TCP state table (ip_vs_proto_tcp.c: INPUT, OUTPUT and INPUT-ONLY), pure: the packet
//! path moves connections with it, and host unit tests check it against IPVS' transitions.

use crate::{
    S_CLOSE as CL, S_CLOSE_WAIT as CW, S_ESTABLISHED as ES, S_FIN_WAIT as FW, S_LAST_ACK as LA,
    S_LISTEN as LI, S_SYN_RECV as SR, S_SYN_SENT as SS, S_TIME_WAIT as TW,
};

/// Which side a packet came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// client -> real (IPVS "INPUT").
    In = 0,
    /// real -> client (IPVS "OUTPUT").
    Out = 1,
    /// client -> real when replies do not come back through us (DR, TUN: IPVS "INPUT-ONLY").
    InOnly = 2,
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// Next state by [direction * 4 + event][current state]; events are syn, fin, ack, rst.
/// Columns: NONE, ESTABLISHED, SYN_SENT, SYN_RECV, FIN_WAIT, TIME_WAIT, CLOSE, CLOSE_WAIT,
/// LAST_ACK, LISTEN, SYNACK. An ACK on NONE (only with sloppy_tcp: a connection opened
/// mid-stream) is ESTABLISHED, as Linux 6.1's IPVS lists it.
pub static TCP_NEXT: [[u8; 11]; 12] = [
    // INPUT
    [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR], // syn
    [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW], // fin
    [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES], // ack
    [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR], // rst
    // OUTPUT
    [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR], // syn
    [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW], // fin
    [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES], // ack
    [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL], // rst
    // INPUT-ONLY
    [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR], // syn
    [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW], // fin
    [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES], // ack
    [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL], // rst
];

/// IPVS' event of a TCP segment: rst wins, then syn, fin, ack; none -> no transition.
#[inline(always)]
pub fn event(flags: u8) -> Option<usize> {
    if flags & RST != 0 {
        Some(3)
    } else if flags & SYN != 0 {
        Some(0)
    } else if flags & FIN != 0 {
        Some(1)
    } else if flags & ACK != 0 {
        Some(2)
    } else {
        None
    }
}

/// The state after a TCP segment with `flags` seen in direction `dir`.
#[inline(always)]
pub fn next(state: u8, dir: Dir, flags: u8) -> u8 {
    let Some(event) = event(flags) else {
        return state;
    };
    let row = (dir as usize) * 4 + event;
    match TCP_NEXT.get(row).and_then(|r| r.get(state as usize)) {
        Some(next) => *next,
        None => state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{S_NONE, S_UDP};

    #[test]
    fn a_handshake_and_a_close_through_the_director() {
        // NAT: SYN in, SYN-ACK out, ACK in, FIN in, FIN out, ACK in.
        let mut s = S_NONE;
        for (dir, flags, want) in [
            (Dir::In, SYN, SR),
            (Dir::Out, SYN | ACK, SR),
            (Dir::In, ACK, ES),
            (Dir::In, FIN | ACK, CW),
            (Dir::Out, FIN | ACK, TW),
            (Dir::In, ACK, TW),
        ] {
            s = next(s, dir, flags);
            assert_eq!(s, want, "after {flags:#x} {dir:?}");
        }
    }

    #[test]
    fn input_only_tables_follow_ipvs() {
        // DR: the client's FIN in ESTABLISHED is FIN_WAIT (INPUT would say CLOSE_WAIT), a RST
        // in SYNACK closes (INPUT: SYN_RECV).
        assert_eq!(next(ES, Dir::InOnly, FIN | ACK), FW);
        assert_eq!(next(ES, Dir::In, FIN | ACK), CW);
        assert_eq!(next(10, Dir::InOnly, RST), CL);
        assert_eq!(next(10, Dir::In, RST), SR);
    }

    #[test]
    fn an_ack_opening_a_connection_mid_stream_is_established() {
        // sloppy_tcp: a flow re-hashed from another director starts with an ACK.
        assert_eq!(next(S_NONE, Dir::In, ACK), ES);
        assert_eq!(next(S_NONE, Dir::InOnly, ACK), ES);
        assert_eq!(next(S_NONE, Dir::In, FIN | ACK), CL);
    }

    #[test]
    fn rst_wins_and_flagless_segments_change_nothing() {
        assert_eq!(next(ES, Dir::In, SYN | RST), CL);
        assert_eq!(next(ES, Dir::Out, 0), ES);
        // Out of the table (UDP's state): unchanged.
        assert_eq!(next(S_UDP, Dir::In, SYN), S_UDP);
    }
}
