//! TCP options for SYNPROXY: where the timestamps and SACK blocks of a segment sit, what a SYN
//! or SYN-ACK offers, and 32-bit rewrites inside the options with the checksum kept right.
//!
//! Linux (and most stacks) put NOP,NOP,TS first in every segment once timestamps are on, then
//! NOP,NOP,SACK: that layout is recognised with two loads. Anything else is walked option by
//! option, at most 40 steps (the options area is at most 40 bytes).

use aya_ebpf::{macros::map, programs::XdpContext};

use crate::csum;
use crate::parse::{Packet, ptr_at};
use crate::proto::{
    TCP_WINDOW, TCPOPT_EOL as EOL, TCPOPT_MSS as MSS, TCPOPT_NOP as NOP, TCPOPT_SACK as SACK,
    TCPOPT_SACK_PERM as SACK_PERM, TCPOPT_TIMESTAMP as TIMESTAMP, TCPOPT_WSCALE as WSCALE,
};
use crate::stage::Scratch;

/// The options found (see `find` on why in memory).
#[map]
static SCRATCH_OPTS: Scratch<Opts> = Scratch::new();

/// What a segment's options hold. Offsets are from the start of the TCP header; 0 = absent.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Opts {
    /// Offset of the TSval (TSecr follows).
    pub ts: usize,
    /// Offset of the first SACK block and the number of blocks.
    pub sack: usize,
    pub sack_blocks: usize,
    /// Window scale shift offered (0xf: none).
    pub wscale: u8,
    pub sack_ok: bool,
    /// MSS offered (0: none).
    pub mss: u16,
}

pub const NONE: Opts = Opts {
    ts: 0,
    sack: 0,
    sack_blocks: 0,
    wscale: 0xf,
    sack_ok: false,
    mss: 0,
};

/// The byte at `off` (>= 20) of the TCP header. Read through the 2-byte window ending there:
/// LLVM turns a 1-byte bounds check into `ptr >= end`, which tells the verifier nothing about
/// a pointer with a variable offset.
#[inline(always)]
fn byte(ctx: &XdpContext, pkt: &Packet, off: usize) -> Option<u8> {
    // SAFETY: `p` comes from ptr_at (its 2 bytes lie before data_end); a byte array needs no
    // alignment.
    ptr_at::<[u8; 2]>(ctx, pkt.l4_off + ((off - 1) & 63)).map(|p| unsafe { (*p)[1] })
}

/// The options of the packet's TCP header; `None` when they are malformed (an option running
/// past the header, a length below 2).
///
/// The result is built in a per-CPU map: loaded back from memory, its fields are plain unknown
/// numbers to the verifier, so neither the walk's iterations nor the rest of the program are
/// verified once per way the walk can go.
#[inline(always)]
pub fn find(ctx: &XdpContext, pkt: &Packet) -> Option<Opts> {
    let slot: *mut Opts = SCRATCH_OPTS.get()?;
    // SAFETY: `slot` is this CPU's scratch map value (get gave a valid, aligned pointer for the
    // run).
    unsafe { core::ptr::write_volatile(slot, NONE) };
    let hl = pkt.tcp_hdr_len as usize;
    if hl > 20 && !fast(ctx, pkt, hl, slot) && !walk(ctx, pkt, hl, slot) {
        return None;
    }
    // SAFETY: `slot` is this CPU's scratch map value (get gave a valid, aligned pointer for the
    // run).
    Some(unsafe { core::ptr::read_volatile(slot) })
}

/// NOP,NOP,TS at 20 and nothing else, or NOP,NOP,SACK after it filling the header.
#[inline(always)]
fn fast(ctx: &XdpContext, pkt: &Packet, hl: usize, o: *mut Opts) -> bool {
    if hl < 32 || word(ctx, pkt, 20) != Some(0x0101_080a) {
        return false;
    }
    if hl == 32 {
        // SAFETY: `o` is the scratch map value pointer `find` passed: valid and aligned for the
        // run.
        unsafe { core::ptr::write_volatile(&mut (*o).ts, 24) };
        return true;
    }
    let Some(w) = word(ctx, pkt, 32) else {
        return false;
    };
    let len = (w & 0xff) as usize;
    if w >> 8 != 0x01_0105 || len < 10 || (len - 2) % 8 != 0 || 34 + len != hl {
        return false;
    }
    // SAFETY: `o` is the scratch map value pointer `find` passed: valid and aligned for the run.
    unsafe {
        core::ptr::write_volatile(&mut (*o).ts, 24);
        core::ptr::write_volatile(&mut (*o).sack, 36);
        core::ptr::write_volatile(&mut (*o).sack_blocks, (len - 2) / 8);
    }
    true
}

/// Big-endian 32-bit word at `off` of the TCP header.
#[inline(always)]
fn word(ctx: &XdpContext, pkt: &Packet, off: usize) -> Option<u32> {
    // SAFETY: `p` comes from ptr_at (its 4 bytes lie before data_end); an unaligned read needs no
    // alignment.
    ptr_at::<u32>(ctx, pkt.l4_off + (off & 63)).map(|p| u32::from_be(unsafe { p.read_unaligned() }))
}

/// The general case: every option (each step moves at least one byte: at most 40 steps).
/// What is found is written straight to memory, so the loop's state is just the offset.
#[inline(always)]
fn walk(ctx: &XdpContext, pkt: &Packet, hl: usize, o: *mut Opts) -> bool {
    let mut i = 20usize;
    loop {
        if i >= hl || i >= 60 {
            return true;
        }
        let Some(kind) = byte(ctx, pkt, i) else {
            return false;
        };
        if kind == EOL {
            return true;
        }
        if kind == NOP {
            i += 1;
            continue;
        }
        let Some(len) = byte(ctx, pkt, i + 1) else {
            return false;
        };
        let len = len as usize;
        if len < 2 || i + len > hl {
            return false;
        }
        // SAFETY: `o` is the scratch map value pointer `find` passed (valid and aligned for the
        // run); `p` comes from ptr_at, bounds checked against data_end.
        unsafe {
            match kind {
                MSS if len == 4 => {
                    if let Some(p) = ptr_at::<[u8; 4]>(ctx, pkt.l4_off + (i & 63)) {
                        let b = *p;
                        core::ptr::write_volatile(&mut (*o).mss, u16::from_be_bytes([b[2], b[3]]));
                    }
                }
                WSCALE if len == 3 => {
                    if let Some(ws) = byte(ctx, pkt, i + 2) {
                        core::ptr::write_volatile(&mut (*o).wscale, ws.min(14));
                    }
                }
                SACK_PERM if len == 2 => core::ptr::write_volatile(&mut (*o).sack_ok, true),
                SACK if len >= 10 => {
                    core::ptr::write_volatile(&mut (*o).sack, i + 2);
                    core::ptr::write_volatile(&mut (*o).sack_blocks, ((len - 2) / 8).min(4));
                }
                TIMESTAMP if len == 10 => core::ptr::write_volatile(&mut (*o).ts, i + 2),
                _ => {}
            }
        }
        i += len;
    }
}

/// Reads the big-endian 32-bit value at `off` of the TCP header (options: any alignment).
#[inline(always)]
pub fn get32(ctx: &XdpContext, pkt: &Packet, off: usize) -> Option<u32> {
    let p = ptr_at::<[u8; 4]>(ctx, pkt.l4_off + (off & 63))?;
    // SAFETY: `p` comes from ptr_at (its 4 bytes lie before data_end); an unaligned read needs no
    // alignment.
    Some(u32::from_be_bytes(unsafe { p.read_unaligned() }))
}

/// Adds `delta` to the big-endian 32-bit value at `off` of the TCP header, fixing the TCP
/// checksum. Options may sit at odd offsets: then the three 16-bit words the value straddles
/// are summed before and after (the checksum works on words from the header's start).
#[inline(always)]
pub fn add32(ctx: &XdpContext, pkt: &Packet, off: usize, delta: u32) -> bool {
    let off = off & 63;
    let Some(check) = ptr_at::<u16>(ctx, pkt.l4_off + 16) else {
        return false;
    };
    if off & 1 == 0 {
        let Some(p) = ptr_at::<u32>(ctx, pkt.l4_off + off) else {
            return false;
        };
        // SAFETY: `p` and `check` come from ptr_at (bounds checked against data_end); unaligned
        // accesses need no alignment.
        unsafe {
            let old = p.read_unaligned();
            let new = u32::from_be(old).wrapping_add(delta).to_be();
            p.write_unaligned(new);
            check.write_unaligned(csum::replace4(check.read_unaligned(), old, new));
        }
        return true;
    }
    // Opaque, or LLVM folds the -1 into the access and the verifier refuses a negative offset.
    let base = core::hint::black_box(off - 1) & 63;
    let Some(p) = ptr_at::<[u8; 6]>(ctx, pkt.l4_off + base) else {
        return false;
    };
    // SAFETY: `p` (6 bytes, alignment 1) and `check` come from ptr_at (bounds checked against
    // data_end); `check` is accessed unaligned.
    unsafe {
        let b = &mut *p;
        let old = [
            u16::from_ne_bytes([b[0], b[1]]),
            u16::from_ne_bytes([b[2], b[3]]),
            u16::from_ne_bytes([b[4], b[5]]),
        ];
        let v = u32::from_be_bytes([b[1], b[2], b[3], b[4]]).wrapping_add(delta);
        let n = v.to_be_bytes();
        b[1] = n[0];
        b[2] = n[1];
        b[3] = n[2];
        b[4] = n[3];
        let mut c = check.read_unaligned();
        c = csum::replace2(c, old[0], u16::from_ne_bytes([b[0], b[1]]));
        c = csum::replace2(c, old[1], u16::from_ne_bytes([b[2], b[3]]));
        c = csum::replace2(c, old[2], u16::from_ne_bytes([b[4], b[5]]));
        check.write_unaligned(c);
    }
    true
}

/// Shifts the window field by `shift` (left saturating at 65535 when positive, right when
/// negative), fixing the checksum.
#[inline(always)]
pub fn rescale_window(ctx: &XdpContext, pkt: &Packet, shift: i8) {
    if shift == 0 {
        return;
    }
    let (Some(w), Some(check)) = (
        ptr_at::<u16>(ctx, pkt.l4_off + TCP_WINDOW),
        ptr_at::<u16>(ctx, pkt.l4_off + 16),
    ) else {
        return;
    };
    // SAFETY: `w` and `check` come from ptr_at just above (bounds checked against data_end);
    // unaligned accesses need no alignment.
    unsafe {
        let old = w.read_unaligned();
        let v = u16::from_be(old) as u32;
        let n = if shift > 0 {
            (v << (shift as u32 & 15)).min(0xffff)
        } else {
            v >> ((-(shift as i32)) as u32 & 15)
        } as u16;
        let new = n.to_be();
        w.write_unaligned(new);
        check.write_unaligned(csum::replace2(check.read_unaligned(), old, new));
    }
}
