//! The scan schedulers, run in their own program (`xlvs_sched`, by tail call from `xlvs`): the
//! ones that compare destinations' connection counts (lc, wlc, sed, nq, ovf, lblc, lblcr) and
//! every scheduler of a service with thresholds (an overloaded destination takes no new
//! connection). They walk the service's table, which user space fills with the available
//! destinations (weight > 0) in IPVS' list order (hash schedulers keep their hash table), and
//! read each destination's counts from `DEST_CONNS`. The rules are IPVS' own, function by
//! function (ip_vs_lc.c, ip_vs_wlc.c, ...), including their tie-breaking: the first destination
//! in list order wins a tie.
//!
//! # In detail
//!
//! * **Scan schedulers** — lc, wlc, sed, nq, ovf, lblc, lblcr, and every scheduler of a service
//!   with an upper threshold (`-x`): user space writes the available destinations in list order and
//!   sets `SVC_F_SCHED_SCAN`; the program `xlvs_sched` (`ebpf/src/sched_scan.rs`) walks them (the
//!   first `MAX_SCAN_DESTS` = 32; more are counted in `sched_scan_truncated`) with IPVS' own
//!   comparisons, tie-breaking included: lc `(active<<8)+inactive` smallest; wlc/sed/nq cross-
//!   multiplied by weight (nq takes an idle real at once); ovf the heaviest real whose active count
//!   does not exceed its weight; lblc/lblcr remember, per (service, destination address), a real or
//!   a set of up to 8 (`LBLC`, LRU, 24 h expiration) and schedule anew with wlc when IPVS'
//!   is_overloaded says so; rr/wrr with thresholds skip overloaded slots (up to 32 ahead); sh/dh/mh
//!   with thresholds answer "no destination" for an overloaded real (no fallback walk).
//!   Verifier rules learnt there: keep loop-carried values in a per-CPU map (`SCRATCH_LOAD`), not
//!   in registers (paths whose values differ cannot be merged and multiply per iteration), and
//!   never return `Option<struct>` (LLVM copies a `None`'s undefined payload from unset registers).
//! * **Connection counts** (`DEST_CONNS`, per destination: IPVS' activeconns = TCP ESTABLISHED,
//!   inactconns = everything else, and the overload flag): `xlvs_sched` counts a connection on the
//!   real it picks (its CLIENT entry then carries `CONN_F_COUNTED`); state changes across
//!   ESTABLISHED move it (`conncount::moved`, in `track`; the state change itself is a
//!   compare-and-exchange on the entry's word holding `state` (`state::claim`), so when the
//!   client's and the real's FIN are handled at once on two CPUs only one moves the count — IPVS
//!   holds the connection's lock there; without it the active count went below zero, test
//!   `concurrent_fins_of_one_connection_move_its_count_once`); it is taken off when a new connection
//!   replaces its entry (`conncount::closed`) or when it expires. All changes are atomic adds, from
//!   both sides: the array is BPF_F_MMAPABLE and user space maps it (`dataplane/src/conncount.rs`).
//!   Thresholds follow ip_vs_bind_dest/unbind_dest: overloaded at `active+inactive >= x`, lifted
//!   below `y` (or below 3/4 of `x` without `y`); a raised or removed `x` lifts it at once.

use ebpf_common::{
    LBLC_EXPIRATION_S, LBLCR_SET_MAX, Lblc, LblcKey, MAX_SCAN_DESTS, SCHED_DH, SCHED_FO,
    SCHED_LBLC, SCHED_LBLCR, SCHED_LC, SCHED_MH, SCHED_NQ, SCHED_OVF, SCHED_SED, SCHED_SH, Service,
    counter,
};

use aya_ebpf::{cty::c_void, helpers::bpf_loop, macros::map};

use crate::maps::{DEST_CONNS, DESTS, LBLC, RR_POS, SCHED_TABLE, count};
use crate::stage::Scratch;

/// The best destination so far (see `least_loaded` on why not a local).
#[map]
static SCRATCH_LOAD: Scratch<Load> = Scratch::new();
use crate::parse::Packet;
use crate::sched::{self, NO_DEST};

/// What a scheduler needs to know about one destination. The best one so far lives in a
/// per-CPU scratch slot, not in registers: loop-carried values of different ranges on every path
/// would keep the verifier from merging paths, which then multiply with each iteration.
#[derive(Clone, Copy, Default)]
pub struct Load {
    id: u32,
    weight: u64,
    active: u64,
    inactive: u64,
    /// IPVS' IP_VS_DEST_F_OVERLOAD (thresholds); a full word, so no part of the struct is ever
    /// left undefined (LLVM then copies unset registers, which the verifier rejects).
    overloaded: u32,
}

impl Load {
    /// IPVS' ip_vs_dest_conn_overhead: active connections weigh 256 inactive ones.
    fn conn_overhead(&self) -> u64 {
        (self.active << 8).wrapping_add(self.inactive)
    }
}

/// Counts as a signed quantity: a transient negative (an expiry seen before its open) reads 0.
#[inline(always)]
fn count_of(v: u64) -> u64 {
    if (v as i64) < 0 { 0 } else { v }
}

/// Destination `id` of the service; `id` NO_DEST (and the rest zero) when it is not one.
#[inline(always)]
fn load_of(svc: &Service, id: u32) -> Load {
    let mut l = Load {
        id: NO_DEST,
        weight: 0,
        active: 0,
        inactive: 0,
        overloaded: 0,
    };
    // SAFETY: the destination is read at once; a map value lives for the whole program run (RCU).
    let Some(d) = (unsafe { DESTS.get(id) }) else {
        return l;
    };
    // A table range can be reused by another service right after a swap: never cross services.
    if d.svc_id != svc.id {
        return l;
    }
    let Some(c) = DEST_CONNS.get(id) else {
        return l;
    };
    l.id = id;
    l.weight = if d.weight > 0 { d.weight as u64 } else { 0 };
    // SAFETY: volatile read of a field of the live map value `c`.
    l.active = count_of(unsafe { core::ptr::read_volatile(&c.active) });
    // SAFETY: volatile read of a field of the live map value `c`.
    l.inactive = count_of(unsafe { core::ptr::read_volatile(&c.inactive) });
    // SAFETY: volatile read of a field of the live map value `c`.
    l.overloaded = (unsafe { core::ptr::read_volatile(&c.overloaded) } != 0) as u32;
    l
}

/// The `i`-th destination of the service's table.
#[inline(always)]
fn load_at(svc: &Service, i: u32) -> Load {
    match SCHED_TABLE.get(svc.table_base.wrapping_add(i)) {
        Some(id) => load_of(svc, *id),
        None => load_of(svc, NO_DEST),
    }
}

/// The destination id for a new connection of `svc`, or NO_DEST.
#[inline(always)]
pub fn pick(svc: &Service, pkt: &Packet, now: u64) -> u32 {
    if svc.table_len > MAX_SCAN_DESTS {
        count(counter::SCHED_SCAN_TRUNCATED);
    }
    match svc.sched {
        SCHED_LC | ebpf_common::SCHED_WLC | SCHED_SED | SCHED_NQ => least_loaded(svc),
        SCHED_OVF => highest_weight(svc, true),
        SCHED_FO => highest_weight(svc, false),
        SCHED_LBLC => lblc(svc, pkt, now),
        SCHED_LBLCR => lblcr(svc, pkt, now),
        SCHED_SH | SCHED_DH | SCHED_MH => {
            let d = match sched::pick_hashed(svc, pkt) {
                Some((id, _)) => load_of(svc, id),
                None => load_of(svc, NO_DEST),
            };
            if d.overloaded != 0 { NO_DEST } else { d.id }
        }
        _ => walk(svc),
    }
}

/// Whether `d` should replace `best` for lc, wlc, sed or nq (IPVS' comparisons; `best` keeps
/// ties).
#[inline(always)]
fn better(sched: u32, best: &Load, d: &Load) -> bool {
    match sched {
        SCHED_LC => d.conn_overhead() < best.conn_overhead(),
        // sed, nq: ip_vs_sed_dest_overhead = active + 1, weighed like wlc.
        SCHED_SED | SCHED_NQ => {
            (best.active + 1).wrapping_mul(d.weight) > (d.active + 1).wrapping_mul(best.weight)
        }
        // wlc (and the wlc pass of lblc/lblcr): loh * dw > doh * lw.
        _ => {
            best.conn_overhead().wrapping_mul(d.weight)
                > d.conn_overhead().wrapping_mul(best.weight)
        }
    }
}

/// Calls `step` for each destination of the service's table (at most MAX_SCAN_DESTS) with
/// `walk`, through `bpf_loop`: the verifier follows a step's body once, not once per
/// destination and path of the caller (unrolled, these walks took most of this program's
/// verifier budget). A step returns 1 to end the walk.
#[inline(always)]
fn scan(svc: &Service, step: extern "C" fn(u64, *mut c_void) -> i64, walk: &mut Walk) {
    let n = if svc.table_len < MAX_SCAN_DESTS {
        svc.table_len
    } else {
        MAX_SCAN_DESTS
    };
    // SAFETY: `step` has the callback signature bpf_loop expects, and `walk` is a live `&mut Walk`
    // that outlives the loop (the helper returns after the last step).
    unsafe { bpf_loop(n, step as *mut c_void, walk as *mut Walk as *mut c_void, 0) };
}

/// What a walk over a service's table carries between steps (on the caller's stack); the
/// best destination so far lives in `SCRATCH_LOAD`.
#[repr(C)]
struct Walk {
    svc: *const Service,
    /// The scheduler whose comparison applies (lc, wlc, sed, nq), or for ovf/fo 1 when a
    /// destination's weight is also its limit of active connections.
    mode: u32,
    /// A destination that ends the walk: nq's first idle one; lblc's underloaded one; the
    /// next available one (rr, wrr with thresholds).
    found: u32,
    /// rr, wrr with thresholds: the service's table position the walk starts from.
    pos: u64,
}

#[inline(always)]
fn walk_of(walk: *mut c_void) -> (&'static mut Walk, &'static Service) {
    // SAFETY: bpf_loop hands back the `&mut Walk` that `scan` passed: live and exclusive for the
    // step.
    let walk = unsafe { &mut *(walk as *mut Walk) };
    // SAFETY: `walk.svc` was made from the `&Service` the walk's caller holds for the whole loop.
    let svc = unsafe { &*walk.svc };
    (walk, svc)
}

/// lc, wlc, sed, nq (and the "schedule anew" step of lblc/lblcr, which is wlc): the available,
/// not overloaded destination with the least (weighted) load; nq takes an idle one at once.
#[inline(never)]
fn least_loaded(svc: &Service) -> u32 {
    let mode = match svc.sched {
        SCHED_LBLC | SCHED_LBLCR => ebpf_common::SCHED_WLC,
        s => s,
    };
    let Some(best) = SCRATCH_LOAD.get() else {
        return NO_DEST;
    };
    best.id = NO_DEST;
    let mut walk = Walk {
        svc: svc as *const Service,
        mode,
        found: NO_DEST,
        pos: 0,
    };
    scan(svc, least_loaded_step, &mut walk);
    if walk.found != NO_DEST {
        return walk.found;
    }
    best_so_far()
}

/// The destination in `SCRATCH_LOAD` after a walk.
#[inline(always)]
fn best_so_far() -> u32 {
    match SCRATCH_LOAD.get() {
        Some(best) => best.id,
        None => NO_DEST,
    }
}

/// One step of [`least_loaded`]: destination `i` against the best so far.
#[inline(never)]
extern "C" fn least_loaded_step(i: u64, walk: *mut c_void) -> i64 {
    let (walk, svc) = walk_of(walk);
    let Some(best) = SCRATCH_LOAD.get() else {
        return 1;
    };
    let d = load_at(svc, i as u32);
    if d.id == NO_DEST || d.overloaded != 0 || d.weight == 0 {
        return 0;
    }
    if walk.mode == SCHED_NQ && d.active == 0 {
        walk.found = d.id;
        return 1;
    }
    if best.id == NO_DEST || better(walk.mode, best, &d) {
        *best = d;
    }
    0
}

/// ovf (`overflow`): the highest-weight destination whose active connections do not exceed its
/// weight; fo: the highest-weight destination. Not overloaded either way; the first on ties.
#[inline(never)]
fn highest_weight(svc: &Service, weight_is_limit: bool) -> u32 {
    let Some(best) = SCRATCH_LOAD.get() else {
        return NO_DEST;
    };
    best.id = NO_DEST;
    let mut walk = Walk {
        svc: svc as *const Service,
        mode: weight_is_limit as u32,
        found: NO_DEST,
        pos: 0,
    };
    scan(svc, highest_weight_step, &mut walk);
    best_so_far()
}

/// One step of [`highest_weight`].
#[inline(never)]
extern "C" fn highest_weight_step(i: u64, walk: *mut c_void) -> i64 {
    let (walk, svc) = walk_of(walk);
    let Some(best) = SCRATCH_LOAD.get() else {
        return 1;
    };
    let d = load_at(svc, i as u32);
    if d.id == NO_DEST
        || d.overloaded != 0
        || d.weight == 0
        || (walk.mode != 0 && d.active > d.weight)
    {
        return 0;
    }
    if best.id == NO_DEST || d.weight > best.weight {
        *best = d;
    }
    0
}

/// rr, wrr with thresholds: the next table slot whose destination is not overloaded.
#[inline(never)]
fn walk(svc: &Service) -> u32 {
    let Some(pos_ptr) = RR_POS.get_ptr_mut(svc.id) else {
        return NO_DEST;
    };
    let mut walk = Walk {
        svc: svc as *const Service,
        mode: 0,
        found: NO_DEST,
        // SAFETY: `pos_ptr` is a map value pointer from get_ptr_mut: non-null, aligned and valid
        // for this program run.
        pos: unsafe { *pos_ptr },
    };
    scan(svc, next_available_step, &mut walk);
    if walk.found != NO_DEST {
        // `mode` holds how many slots the walk went past.
        // SAFETY: `pos_ptr` is a map value pointer from get_ptr_mut: non-null, aligned and valid
        // for this program run.
        unsafe { *pos_ptr = walk.pos.wrapping_add(walk.mode as u64 + 1) };
    }
    walk.found
}

/// One step of [`walk`]: the destination `k` slots after the position, if available.
#[inline(never)]
extern "C" fn next_available_step(k: u64, walk: *mut c_void) -> i64 {
    let (walk, svc) = walk_of(walk);
    if svc.table_len == 0 {
        return 1;
    }
    let slot = (walk.pos.wrapping_add(k) % svc.table_len as u64) as u32;
    let Some((id, _)) = sched::dest_at(svc, slot) else {
        return 0;
    };
    let d = load_of(svc, id);
    if d.id != NO_DEST && d.overloaded == 0 && d.weight > 0 {
        walk.found = id;
        walk.mode = k as u32;
        return 1;
    }
    0
}

/// lblc/lblcr's own overload test: more active connections than its weight while some other
/// destination is below half of its own.
#[inline(never)]
fn lblc_overloaded(svc: &Service, active: u64, weight: u64) -> bool {
    if active <= weight {
        return false;
    }
    let mut walk = Walk {
        svc: svc as *const Service,
        mode: 0,
        found: NO_DEST,
        pos: 0,
    };
    scan(svc, underloaded_step, &mut walk);
    walk.found != NO_DEST
}

/// One step of [`lblc_overloaded`]: ends the walk at a destination below half its weight.
#[inline(never)]
extern "C" fn underloaded_step(i: u64, walk: *mut c_void) -> i64 {
    let (walk, svc) = walk_of(walk);
    let o = load_at(svc, i as u32);
    if o.id != NO_DEST && o.active * 2 < o.weight {
        walk.found = o.id;
        return 1;
    }
    0
}

#[inline(always)]
fn lblc_key(svc: &Service, pkt: &Packet) -> LblcKey {
    LblcKey {
        daddr: pkt.dst,
        svc_id: svc.id,
        af: pkt.af,
        _pad: [0; 3],
    }
}

#[inline(always)]
fn fresh(e: &Lblc, now: u64) -> bool {
    now.saturating_sub(e.last_use) <= LBLC_EXPIRATION_S * 1_000_000_000
}

/// lblc: the destination this destination address used last, unless it is unavailable or
/// overloaded; otherwise a wlc pick, remembered.
#[inline(always)]
fn lblc(svc: &Service, pkt: &Packet, now: u64) -> u32 {
    let key = lblc_key(svc, pkt);
    // SAFETY: the entry is copied at once; a map value lives for the whole program run (RCU).
    let cached = match unsafe { LBLC.get(&key) } {
        Some(e) if fresh(e, now) && e.len > 0 => e.dests[0],
        _ => NO_DEST,
    };
    let d = load_of(svc, cached);
    if d.id != NO_DEST && d.weight > 0 && !lblc_overloaded(svc, d.active, d.weight) {
        if let Some(e) = LBLC.get_ptr_mut(&key) {
            // SAFETY: `e` is a map value pointer from get_ptr_mut: non-null, aligned and valid for
            // this program run.
            unsafe { (*e).last_use = now };
        }
        return cached;
    }
    remember(&key, least_loaded(svc), now)
}

/// A new destination-address entry holding `id` (lblc, or a fresh lblcr set).
#[inline(always)]
fn remember(key: &LblcKey, id: u32, now: u64) -> u32 {
    if id != NO_DEST {
        let mut e = Lblc {
            len: 1,
            last_use: now,
            last_mod: now,
            ..Default::default()
        };
        e.dests[0] = id;
        let _ = LBLC.insert(key, &e, 0);
    }
    id
}

/// lblcr: the least loaded of the set of destinations this destination address uses; a wlc
/// pick joins the set when that one is overloaded; a set unchanged for the expiration time
/// loses its most loaded member.
#[inline(always)]
fn lblcr(svc: &Service, pkt: &Packet, now: u64) -> u32 {
    let key = lblc_key(svc, pkt);
    let Some(e) = LBLC.get_ptr_mut(&key) else {
        return remember(&key, least_loaded(svc), now);
    };
    // SAFETY: `e` is a map value pointer from get_ptr_mut: non-null, aligned and valid for this
    // program run.
    let e = unsafe { &mut *e };
    if !fresh(e, now) {
        e.len = 0;
        e.last_mod = now;
    }
    e.last_use = now;
    let least = set_min(svc, e);
    if e.len > 1 && now.saturating_sub(e.last_mod) > LBLC_EXPIRATION_S * 1_000_000_000 {
        set_erase_most_loaded(svc, e);
        e.last_mod = now;
    }
    let d = load_of(svc, least);
    if d.id != NO_DEST && !lblc_overloaded(svc, d.active, d.weight) {
        return least;
    }
    let id = least_loaded(svc);
    if id != NO_DEST {
        set_insert(e, id, now);
    }
    id
}

/// IPVS ip_vs_dest_set_min: the set member with the least weighted load (not overloaded,
/// weight > 0).
#[inline(never)]
fn set_min(svc: &Service, e: &Lblc) -> u32 {
    let Some(best) = SCRATCH_LOAD.get() else {
        return NO_DEST;
    };
    best.id = NO_DEST;
    for i in 0..LBLCR_SET_MAX {
        if i as u32 >= e.len {
            break;
        }
        let d = load_of(svc, e.dests[i]);
        if d.id == NO_DEST {
            continue;
        }
        if d.overloaded != 0 || d.weight == 0 {
            continue;
        }
        if best.id == NO_DEST || better(ebpf_common::SCHED_WLC, best, &d) {
            *best = d;
        }
    }
    best.id
}

/// IPVS ip_vs_dest_set_max + erase: drops the member with the most weighted load.
#[inline(never)]
fn set_erase_most_loaded(svc: &Service, e: &mut Lblc) {
    let Some(most) = SCRATCH_LOAD.get() else {
        return;
    };
    most.id = NO_DEST;
    let mut at = LBLCR_SET_MAX;
    for i in 0..LBLCR_SET_MAX {
        if i as u32 >= e.len {
            break;
        }
        let d = load_of(svc, e.dests[i]);
        if d.id == NO_DEST {
            continue;
        }
        if d.weight == 0 {
            continue;
        }
        if most.id == NO_DEST
            || most.conn_overhead().wrapping_mul(d.weight)
                < d.conn_overhead().wrapping_mul(most.weight)
        {
            *most = d;
            at = i;
        }
    }
    if at >= LBLCR_SET_MAX || e.len == 0 {
        return;
    }
    // Close the gap: members keep their order.
    for i in 0..LBLCR_SET_MAX - 1 {
        if i >= at && (i as u32) + 1 < e.len {
            e.dests[i] = e.dests[i + 1];
        }
    }
    e.len -= 1;
}

/// IPVS ip_vs_dest_set_insert: a new member goes first; a full set loses its last (oldest).
#[inline(always)]
fn set_insert(e: &mut Lblc, id: u32, now: u64) {
    for i in 0..LBLCR_SET_MAX {
        if (i as u32) < e.len && e.dests[i] == id {
            return;
        }
    }
    let mut i = LBLCR_SET_MAX - 1;
    while i > 0 {
        e.dests[i] = e.dests[i - 1];
        i -= 1;
    }
    e.dests[0] = id;
    if (e.len as usize) < LBLCR_SET_MAX {
        e.len += 1;
    }
    e.last_mod = now;
}
