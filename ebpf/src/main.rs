//! The xlvs XDP programs, in the order a packet meets them: each says where it is reached
//! from and what it hands over (see `ebpf_common::Stage` and ARCHITECTURE.md). Anything that
//! is not ours, or that we cannot parse, goes to the kernel untouched.
//!
//! Modules, from the leaves up (imports only go downwards):
//! * leaves: `proto` (protocol numbers, named header offsets), `csum` (checksum math);
//! * `maps` (the pinned ABI maps), `stage` (jumps between programs, hand-offs, scratch);
//! * `parse`, then the features: `addr_filter`, `state`, `conncount`, `stats`, `nat`, `forward`, `acl`,
//!   `fwmark`, `service`, `persist`, `sched`, `sched_scan`, `fullnat`, `tcpopt`, `toa`,
//!   `one_entry`, `seqadj`, `synproxy`, `tunnel`, `frag`, `icmp`, `icmp6`, `fw`;
//! * `path`: lookup, established, open; and this table of programs.
#![no_std]
#![no_main]
// atomic_xadd: the BPF target has no AtomicU64::fetch_add (conncount.rs).
#![allow(internal_features)]
#![feature(core_intrinsics)]

mod acl;
mod addr_filter;
mod conncount;
mod csum;
mod fill;
mod forward;
mod frag;
mod fullnat;
mod fw;
mod fw_limit;
mod fwmark;
mod icmp;
mod icmp6;
mod maps;
mod nat;
mod one_entry;
mod parse;
mod path;
mod persist;
mod proto;
mod reset;
mod sched;
mod sched_scan;
mod seqadj;
mod service;
mod stage;
mod state;
mod stats;
mod synproxy;
mod tcpopt;
mod toa;
mod tunnel;

use aya_ebpf::{
    bindings::xdp_action, helpers::bpf_ktime_get_coarse_ns, macros::xdp, programs::XdpContext,
};
use ebpf_common::counter;

use maps::count;
use path::{established, lookup, open};

#[inline(always)]
fn now() -> u64 {
    // SAFETY: a BPF helper without arguments or preconditions.
    unsafe { bpf_ktime_get_coarse_ns() }
}

/// Attached to the interfaces. Parses, looks the flow up, and handles established connections
/// itself. Hands over by tail call: ICMP messages (`xlvs_icmp`), fragments (`xlvs_frag`),
/// SYNPROXY segments (`xlvs_synproxy{,6}`), translated ones (`xlvs_seqadj`), TOA (`xlvs_toa`),
/// tunnel connections (`xlvs_tunnel`, with `tunnel::Job`), and misses on a VIP (`xlvs_new`).
/// Reached again by tail call from `xlvs_synproxy` (the SYN it made, `synproxy::Open`, for a
/// flow with an entry it may replace) and
/// `xlvs_frag` (a recorded first fragment).
#[xdp]
pub fn xlvs(ctx: XdpContext) -> u32 {
    lookup::main(&ctx)
}

/// From `xlvs`: fragments. First fragments are recorded and go back to `xlvs`; later ones
/// follow their first fragment's connection. Split: its own stack and verifier budget, and
/// non-fragments pay one test.
#[xdp]
pub fn xlvs_frag(ctx: XdpContext) -> u32 {
    frag::handle(&ctx, now())
}

/// From `xlvs` (a miss on a VIP, or an ended connection replaced), `xlvs_sched` (its pick,
/// `sched::Pick`) and `xlvs_synproxy{,6}` (the SYN it made for a flow without entry,
/// `synproxy::Open`): a packet that may open a connection. Hands over to `xlvs_sched`,
/// `xlvs_synproxy{,6}` (a SYN to a SYNPROXY service) and `xlvs_fwd` (the first packet, with
/// its connection in `forward::FIRST_PACKET`). Split: the main program's budget and stack
/// keep the established paths.
#[xdp]
pub fn xlvs_new(ctx: XdpContext) -> u32 {
    open::new_stage(&ctx, now())
}

/// From `xlvs_new`: the scan schedulers (connection counts, thresholds); back to `xlvs_new`
/// with `sched::Pick`. Split: its loop over the destinations does not fit beside the rest.
#[xdp]
pub fn xlvs_sched(ctx: XdpContext) -> u32 {
    open::sched_stage(&ctx, now())
}

/// From `xlvs` and `xlvs_new`: SYNPROXY for IPv4 (see synproxy.rs). Hands a cookie ACK turned
/// SYN to `xlvs_new` (or to `xlvs` when the flow has an entry; `synproxy::Open`), a resent SYN to `xlvs_fwd`, translated segments to
/// `xlvs_seqadj`. Split: the cookie helpers and packet making need their own stack.
#[xdp]
pub fn xlvs_synproxy(ctx: XdpContext) -> u32 {
    synproxy::handle::<false>(&ctx, now())
}

/// The same for IPv6 (one program for both families exceeded the 512-byte stack).
#[xdp]
pub fn xlvs_synproxy6(ctx: XdpContext) -> u32 {
    synproxy::handle::<true>(&ctx, now())
}

/// From `xlvs_new` and `xlvs_synproxy{,6}`: a connection's first packet (or SYNPROXY's SYN)
/// to its real server, the connection in `forward::FIRST_PACKET`; tunnel reals continue in
/// `xlvs_tunnel`. Split: `to_real` does not fit beside the programs that open connections.
#[xdp]
pub fn xlvs_fwd(ctx: XdpContext) -> u32 {
    established::fwd_stage(&ctx, now())
}

/// From `xlvs`: TOA inserted into a FULLNAT client segment (see toa.rs), which then continues
/// its client path. Split: moving headers needs stack the main program does not have.
#[xdp]
pub fn xlvs_toa(ctx: XdpContext) -> u32 {
    established::toa_stage(&ctx, now())
}

/// From `xlvs`, `xlvs_synproxy{,6}`: SYNPROXY's per-segment translation (see seqadj.rs), then
/// the segment's usual path. Split: the options walk needs its own stack and budget.
#[xdp]
pub fn xlvs_seqadj(ctx: XdpContext) -> u32 {
    established::seqadj_stage(&ctx, now())
}

/// From `xlvs` and `xlvs_fwd` (`tunnel::Job`): tunnel encapsulation and "too big" answers (see
/// tunnel.rs). Split: the headers it makes need their own stack.
#[xdp]
pub fn xlvs_tunnel(ctx: XdpContext) -> u32 {
    tunnel::handle(&ctx)
}

/// From `xlvs`: ICMP errors about connections (see icmp.rs); ICMPv6 goes on to `xlvs_icmp6`.
/// Split: its stack would not fit beside the main program's.
#[xdp]
pub fn xlvs_icmp(ctx: XdpContext) -> u32 {
    icmp::handle(&ctx, now())
}

/// From `xlvs_icmp`: ICMPv6 errors about connections (see icmp6.rs). Split: both families'
/// frames do not fit one stack.
#[xdp]
pub fn xlvs_icmp6(ctx: XdpContext) -> u32 {
    let translated = match parse::l3(&ctx) {
        Ok((l3, _)) => icmp6::handle(&ctx, l3, now()),
        Err(_) => None,
    };
    translated.unwrap_or_else(|| {
        count(counter::PASS_NOT_VIP);
        xdp_action::XDP_PASS
    })
}

/// From `xlvs` (an orphaned entry) and `xlvs_new` (a TCP segment of no connection that is not a
/// SYN): answered with a RST (see reset.rs). Split: making a packet needs its own stack.
#[xdp]
pub fn xlvs_reset(ctx: XdpContext) -> u32 {
    reset::handle(&ctx)
}

/// Not a stage: the trivial program, the floor benchmarks measure against (and a way to give
/// a veth peer a NAPI context so XDP_TX/redirect towards it works).
#[xdp]
pub fn xlvs_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
