//! SYNPROXY's sequence translation once a connection is set up: the real server's sequence
//! numbers are `seq_delta` away from the cookie the client knows (see synproxy.rs).

use aya_ebpf::programs::XdpContext;

use crate::csum;
use crate::parse::{Packet, ptr_at};

/// Offset of the sequence number in the TCP header.
pub const SEQ: usize = 4;
/// Offset of the acknowledgement number.
pub const ACK: usize = 8;

/// Adds `delta` to the 32-bit number at `field` of the TCP header, fixing the checksum.
#[inline(always)]
pub fn shift(ctx: &XdpContext, pkt: &Packet, field: usize, delta: u32) {
    let (Some(p), Some(check)) = (
        ptr_at::<u32>(ctx, pkt.l4_off + field),
        ptr_at::<u16>(ctx, pkt.l4_off + 16),
    ) else {
        return;
    };
    unsafe {
        let old = p.read_unaligned();
        let new = u32::from_be(old).wrapping_add(delta).to_be();
        p.write_unaligned(new);
        check.write_unaligned(csum::replace4(check.read_unaligned(), old, new));
    }
}
