//! SYNPROXY's per-segment translation once the real server has answered (`CONN_F_SEQADJ`):
//! the client negotiated with our cookie SYN-ACK, the real server with our SYN, so
//! * sequence numbers: the real's are `seq_delta` away from the cookie the client knows
//!   (added towards the client; taken off the client's acknowledgements and SACK blocks);
//! * timestamps: the real's TSval moves into our clock (`+ ts_delta`) towards the client, the
//!   client's TSecr moves back (`- ts_delta`); the client's TSval and the real's TSecr (the
//!   client's clock) pass unchanged;
//! * windows: rescaled when the real's window scale differs from the one the client was
//!   promised (`win_shift_out`/`win_shift_in`, see synproxy.rs).
//!
//! SACK blocks from the real refer to the client's sequence space, which is never shifted.
//! Runs in its own program (`xlvs_seqadj`, tail call; see path/established.rs): the main
//! program's stack has no room.

use aya_ebpf::programs::XdpContext;
use ebpf_common::{Conn, SP_TS};

use crate::parse::Packet;
use crate::proto::{TCP_ACK, TCP_ACK_SEQ, TCP_SEQ, TCP_SYN};
use crate::tcpopt::{self, Opts};

/// A client -> real segment; false when its options are malformed (drop it).
#[inline(always)]
pub fn client_to_real(ctx: &XdpContext, pkt: &Packet, o: &Opts, conn: &Conn) -> bool {
    let ack = pkt.tcp_flags & TCP_ACK != 0;
    let minus = 0u32.wrapping_sub(conn.seq_delta);
    if ack && !tcpopt::add32(ctx, pkt, TCP_ACK_SEQ, minus) {
        return false;
    }
    {
        if ack && o.ts != 0 && conn.sp_opts & SP_TS != 0 {
            // TSecr echoes a TSval of ours: back to the real's clock.
            tcpopt::add32(ctx, pkt, o.ts + 4, 0u32.wrapping_sub(conn.ts_delta));
        }
        if o.sack != 0 {
            // Each block's edges acknowledge the real's data in the cookie's space.
            let mut e = 0;
            while e < 8 {
                if e < o.sack_blocks * 2 {
                    tcpopt::add32(ctx, pkt, o.sack + 4 * e, minus);
                }
                e += 1;
            }
        }
    }
    if pkt.tcp_flags & TCP_SYN == 0 {
        tcpopt::rescale_window(ctx, pkt, conn.win_shift_in);
    }
    true
}

/// A real -> client segment; false when its options are malformed (drop it).
#[inline(always)]
pub fn real_to_client(ctx: &XdpContext, pkt: &Packet, o: &Opts, conn: &Conn) -> bool {
    if !tcpopt::add32(ctx, pkt, TCP_SEQ, conn.seq_delta) {
        return false;
    }
    if conn.sp_opts & SP_TS != 0 {
        if o.ts != 0 {
            tcpopt::add32(ctx, pkt, o.ts, conn.ts_delta);
        }
    }
    if pkt.tcp_flags & TCP_SYN == 0 {
        tcpopt::rescale_window(ctx, pkt, conn.win_shift_out);
    }
    true
}
