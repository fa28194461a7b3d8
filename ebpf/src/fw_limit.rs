//! The firewall's rate limits (`xlvs fw icmp-limit`, `xlvs fw conn-limit`), asked by fw.rs
//! once a packet of no connection got past the rules:
//!
//! * one bucket for ICMP/ICMPv6 messages that are not errors or neighbour discovery (echo
//!   requests and the like, to this host or a VIP);
//! * per VIP with a budget, one bucket per source for packets that would open a connection (a
//!   TCP SYN, a UDP datagram): checked before SYNPROXY answers with a cookie and before the
//!   connection table is written, so a single-source flood becomes drops here. The buckets
//!   live in an LRU table: many sources cannot grow it, a forgotten one starts full again.
//!
//! Each bucket is one time (GCRA, see `ebpf_common::FwLimit`), moved on with a
//! compare-and-exchange: a packet that loses the race for a bucket to another CPU is dropped,
//! so CPUs together never let more through than the limit. The clock is the coarse one (a
//! tick of a few ms, half the cost of the precise one): within a tick a bucket gives at most
//! its burst, and each tick brings the tokens its length is worth, so the rate over time is
//! exact.

use aya_ebpf::{
    helpers::bpf_ktime_get_coarse_ns,
    macros::map,
    maps::{Array, HashMap, LruHashMap},
};
use core::intrinsics::{AtomicOrdering, atomic_cxchg, atomic_xadd};
use ebpf_common::{
    AF_INET6, FwBucketKey, FwLimit, FwVipKey, IPPROTO_UDP, MAX_FW_CONN_BUCKETS, MAX_FW_CONN_LIMITS,
    counter,
};

use crate::maps::count;
use crate::parse::Packet;
use crate::proto::{IPPROTO_TCP, TCP_ACK, TCP_SYN};
use crate::stage::Scratch;

/// The ICMP limit (one entry; its `tat` is the one bucket). Written by user space.
#[map]
static FW_ICMP_LIMIT: Array<FwLimit> = Array::pinned(1, 0);

/// VIPs with a per-source connection budget. Written by user space.
#[map]
static FW_CONN_LIMITS: HashMap<FwVipKey, FwLimit> = HashMap::pinned(MAX_FW_CONN_LIMITS, 0);

/// (VIP, source) -> the source's bucket time (ns).
#[map]
static FW_CONN_BUCKETS: LruHashMap<FwBucketKey, u64> = LruHashMap::pinned(MAX_FW_CONN_BUCKETS, 0);

/// The keys (the packet path's stacks have no room for them).
#[map]
static SCRATCH_VIP: Scratch<FwVipKey> = Scratch::new();
#[map]
static SCRATCH_BUCKET: Scratch<FwBucketKey> = Scratch::new();

const BPF_NOEXIST: u64 = 1;

/// Whether an ICMP message the rules let through is within the ICMP limit (counted if not).
#[inline(always)]
pub fn icmp_allowed() -> bool {
    let Some(limit) = FW_ICMP_LIMIT.get_ptr_mut(0) else {
        return true;
    };
    // SAFETY: a map value pointer from a successful lookup, valid for this program run.
    let limit = unsafe { &mut *limit };
    if limit.interval_ns == 0 {
        return true;
    }
    // SAFETY: a helper without arguments or preconditions.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    if take(&mut limit.tat, limit.interval_ns, limit.tolerance_ns, now) {
        return true;
    }
    dropped(limit, counter::FW_ICMP_LIMITED);
    false
}

/// Whether `pkt` (of no connection, to a VIP) is within its source's budget for that VIP;
/// packets that cannot open a connection always are.
#[inline(always)]
pub fn conn_allowed(pkt: &Packet) -> bool {
    let opens = pkt.proto == IPPROTO_UDP
        || (pkt.proto == IPPROTO_TCP && pkt.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN);
    if !opens {
        return true;
    }
    let Some(vip) = SCRATCH_VIP.get() else {
        return true;
    };
    vip.af = pkt.af;
    vip._pad = [0; 3];
    vip.vip = pkt.dst;
    let Some(limit) = FW_CONN_LIMITS.get_ptr_mut(&*vip) else {
        return true;
    };
    // SAFETY: a map value pointer from a successful lookup, valid for this program run.
    let limit = unsafe { &mut *limit };
    let Some(key) = SCRATCH_BUCKET.get() else {
        return true;
    };
    key.af = pkt.af;
    key._pad = [0; 3];
    key.vip = pkt.dst;
    key.src = pkt.src;
    if pkt.af == AF_INET6 {
        // One budget per /64.
        key.src[2] = 0;
        key.src[3] = 0;
    }
    // SAFETY: a helper without arguments or preconditions.
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    match FW_CONN_BUCKETS.get_ptr_mut(&*key) {
        Some(tat) => {
            if take(tat, limit.interval_ns, limit.tolerance_ns, now) {
                return true;
            }
        }
        None => {
            // A new source starts with a full bucket: this packet takes one token. (Another
            // CPU inserting the same source first costs one extra packet at most.)
            let tat = now + limit.interval_ns;
            let _ = FW_CONN_BUCKETS.insert(&*key, &tat, BPF_NOEXIST);
            if limit.tolerance_ns >= limit.interval_ns {
                return true;
            }
        }
    }
    dropped(limit, counter::FW_CONN_LIMITED);
    false
}

/// Takes one packet's worth from the bucket whose time is `*tat`: true when within the limit.
#[inline(always)]
fn take(tat: *mut u64, interval_ns: u64, tolerance_ns: u64, now: u64) -> bool {
    // SAFETY: `tat` points into a map value, valid for this program run; other CPUs change it
    // only through the compare-and-exchange below.
    let old = unsafe { core::ptr::read_volatile(tat) };
    let start = if old > now { old } else { now };
    let next = start + interval_ns;
    if next - now > tolerance_ns {
        return false;
    }
    // SAFETY: as above; the exchange is atomic against other CPUs.
    let (_, won) = unsafe {
        atomic_cxchg::<u64, { AtomicOrdering::Relaxed }, { AtomicOrdering::Relaxed }>(
            tat, old, next,
        )
    };
    won
}

#[inline(always)]
fn dropped(limit: &mut FwLimit, which: u32) {
    // SAFETY: `limit` is a map value, valid for this program run; the add is atomic.
    unsafe {
        atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(&mut limit.dropped as *mut u64, 1)
    };
    count(which);
}
