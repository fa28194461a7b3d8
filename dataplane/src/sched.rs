//! Scheduler tables computed in user space and read by the XDP program: the sequence of
//! destination ids a service hands out, one per new connection, in order.
//!
//! * rr: every available destination (weight > 0) once, in insertion order (IPVS walks its list).
//! * wrr: IPVS' interleaved weighted sequence (current weight steps down by the gcd from the
//!   maximum; a destination is picked whenever its weight >= the current weight).
//!
//! * sh, dh: IPVS' 256-bucket table (every real in insertion order, each taking `weight`
//!   consecutive buckets, weight-0 reals one); the packet path hashes the client (sh) or
//!   destination (dh) address into it and skips unavailable reals only with the fallback flag.
//! * mh: a Maglev table of 4093 slots over the available reals, weighted: each real fills slots
//!   along its own permutation, so removing one real moves only the clients that were on it.
//!
//! * fo (weighted failover): the available destination with the highest weight, the first one
//!   on ties (IPVS takes a later one only when its weight is strictly higher).
//!
//! * scan schedulers (lc, wlc, sed, nq, ovf, lblc, lblcr; and fo when a destination has
//!   thresholds): the available destinations in insertion order, the list IPVS walks; the packet
//!   path compares their connection counts (ebpf/src/sched_scan.rs).

use ebpf_common::{MAX_TABLE_LEN, MH_TAB_SIZE, SH_TAB_SIZE};

use crate::model::Scheduler;

/// A destination as the table builder sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// Destination id.
    pub id: u32,
    /// Its weight (0: not in the table).
    pub weight: i32,
    /// Stable per-real value (from its address and port): seeds its Maglev permutation.
    pub seed: u64,
}

/// The table for `sched` over `members` (insertion order). Empty = no destination available.
/// `fallback` is the sh-fallback flag (SCHED1); `thresholds`: some member has an upper
/// threshold, so the packet path scans (see [`scans`]).
pub fn build_table(
    sched: Scheduler,
    members: &[Member],
    fallback: bool,
    thresholds: bool,
) -> Vec<u32> {
    let available: Vec<Member> = members.iter().copied().filter(|m| m.weight > 0).collect();
    match sched {
        Scheduler::Rr => available.iter().map(|m| m.id).collect(),
        Scheduler::Sh if fallback => with_fallback(members, hash_buckets(members)),
        Scheduler::Sh | Scheduler::Dh => hash_buckets(members),
        Scheduler::Mh => maglev(&available),
        Scheduler::Fo if !thresholds => failover(&available),
        Scheduler::Wrr => wrr_sequence(&available),
        // The scan schedulers (and fo with thresholds) walk the available list.
        _ => available.iter().map(|m| m.id).collect(),
    }
}

/// Whether new connections of a service are scheduled by the packet path's scan program
/// (`SVC_F_SCHED_SCAN`): schedulers that compare connection counts, and every scheduler once a
/// destination has an upper threshold (overloaded ones must be skipped).
pub fn scans(sched: Scheduler, thresholds: bool) -> bool {
    thresholds
        || matches!(
            sched,
            Scheduler::Lc
                | Scheduler::Wlc
                | Scheduler::Sed
                | Scheduler::Nq
                | Scheduler::Ovf
                | Scheduler::Lblc
                | Scheduler::Lblcr
        )
}

/// IPVS ip_vs_fo_schedule: the highest weight wins; ties keep the earlier destination.
fn failover(available: &[Member]) -> Vec<u32> {
    let mut best: Option<Member> = None;
    for m in available {
        if best.is_none_or(|b| m.weight > b.weight) {
            best = Some(*m);
        }
    }
    best.map(|m| vec![m.id]).unwrap_or_default()
}

/// IPVS ip_vs_sh_reassign / ip_vs_dh_reassign: reals in order, `weight` buckets each (at least
/// one), cycling until the 256 buckets are full. Availability is checked per packet.
fn hash_buckets(members: &[Member]) -> Vec<u32> {
    if members.is_empty() {
        return Vec::new();
    }
    let mut table = Vec::with_capacity(SH_TAB_SIZE as usize);
    let (mut i, mut count) = (0usize, 0i64);
    while table.len() < SH_TAB_SIZE as usize {
        let m = members[i % members.len()];
        table.push(m.id);
        count += 1;
        if count >= m.weight as i64 {
            i += 1;
            count = 0;
        }
    }
    table
}

/// IPVS' sh-fallback walk, resolved ahead of time: for the first hash h it tries buckets
/// (offset + 2h) mod 256 (ip_vs_sh_get_fallback rehashes with offset + h) until an available
/// real. Weights only change through table rebuilds, so the answer per h is fixed.
fn with_fallback(members: &[Member], raw: Vec<u32>) -> Vec<u32> {
    let available = |id: u32| members.iter().any(|m| m.id == id && m.weight > 0);
    let n = raw.len();
    (0..n)
        .map(|h| {
            (0..n)
                .map(|offset| raw[(offset + 2 * h) % n])
                .find(|id| available(*id))
                .unwrap_or(raw[h])
        })
        .collect()
}

/// 64-bit mix (splitmix64 finaliser).
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Weighted Maglev population (as IPVS' ip_vs_mh_populate): each real takes `weight / gcd` turns
/// per round, each turn claiming the next free slot along its permutation.
fn maglev(members: &[Member]) -> Vec<u32> {
    if members.is_empty() {
        return Vec::new();
    }
    let m = MH_TAB_SIZE as u64;
    let g = members.iter().fold(0u64, |g, x| gcd(g, x.weight as u64));
    // Bound the turns so one round never overfills the table.
    let max_turns = members
        .iter()
        .map(|x| x.weight as u64 / g)
        .max()
        .unwrap_or(1);
    let shift = (max_turns / (m / members.len() as u64).max(1)).max(1);
    let perms: Vec<(u64, u64, u64)> = members
        .iter()
        .map(|x| {
            let offset = mix(x.seed) % m;
            let skip = mix(x.seed ^ 0x5bd1_e995) % (m - 1) + 1;
            let turns = (x.weight as u64 / g / shift).max(1);
            (offset, skip, turns)
        })
        .collect();
    let mut table = vec![u32::MAX; m as usize];
    let mut next = vec![0u64; members.len()];
    let mut filled = 0u64;
    'fill: loop {
        for (i, (offset, skip, turns)) in perms.iter().enumerate() {
            for _ in 0..*turns {
                let mut c = (offset + next[i] * skip) % m;
                while table[c as usize] != u32::MAX {
                    next[i] += 1;
                    c = (offset + next[i] * skip) % m;
                }
                table[c as usize] = members[i].id;
                next[i] += 1;
                filled += 1;
                if filled == m {
                    break 'fill;
                }
            }
        }
    }
    table
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// IPVS' wrr order. Weights are first divided by their gcd; if the sequence would still exceed
/// MAX_TABLE_LEN they are scaled down proportionally (each keeps at least 1).
fn wrr_sequence(members: &[Member]) -> Vec<u32> {
    if members.is_empty() {
        return Vec::new();
    }
    let g = members.iter().fold(0u64, |g, m| gcd(g, m.weight as u64));
    let mut weights: Vec<u64> = members.iter().map(|m| m.weight as u64 / g).collect();
    let total: u64 = weights.iter().sum();
    if total > MAX_TABLE_LEN as u64 {
        let scale = MAX_TABLE_LEN as f64 / total as f64;
        for w in weights.iter_mut() {
            *w = ((*w as f64 * scale).floor() as u64).max(1);
        }
        let g = weights.iter().fold(0u64, |g, w| gcd(g, *w));
        weights.iter_mut().for_each(|w| *w /= g);
    }
    let max = *weights.iter().max().unwrap_or(&1);
    let mut seq = Vec::with_capacity(weights.iter().sum::<u64>() as usize);
    // Current weight from max down to 1; each round picks, in list order, every member whose
    // weight reaches it. This is exactly the order ip_vs_wrr_schedule produces.
    for cw in (1..=max).rev() {
        for (m, w) in members.iter().zip(&weights) {
            if *w >= cw {
                seq.push(m.id);
            }
        }
    }
    seq
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: u32, weight: i32) -> Member {
        Member {
            id,
            weight,
            seed: id as u64 * 7919,
        }
    }

    #[test]
    fn fo_takes_the_first_highest_weight_available() {
        let t = |ms: &[Member]| build_table(Scheduler::Fo, ms, false, false);
        assert_eq!(t(&[m(1, 2), m(2, 5), m(3, 5), m(4, 1)]), [2]);
        // The top one quiesced: the next highest takes over.
        assert_eq!(t(&[m(1, 2), m(2, 0), m(3, 1)]), [1]);
        assert!(t(&[m(1, 0)]).is_empty());
    }

    #[test]
    fn sh_buckets_follow_ipvs_reassign() {
        let t = build_table(Scheduler::Sh, &[m(1, 2), m(2, 0), m(3, 1)], false, false);
        assert_eq!(t.len(), 256);
        assert_eq!(&t[..8], &[1, 1, 2, 3, 1, 1, 2, 3]);
        // With sh-fallback, real 2 (weight 0) never answers: bucket h resolves to the first
        // available of buckets 2h, 2h+1, ... (h = 1: bucket 2 is real 2, bucket 3 is real 3).
        let f = build_table(Scheduler::Sh, &[m(1, 2), m(2, 0), m(3, 1)], true, false);
        assert!(f.iter().all(|id| *id != 2));
        assert_eq!(f[1], 3);
        assert_eq!(f[0], 1);
    }

    #[test]
    fn maglev_is_weighted_and_moves_only_the_removed_reals_share() {
        let reals: Vec<Member> = (1..=5).map(|i| m(i, 1)).collect();
        let full = build_table(Scheduler::Mh, &reals, false, false);
        assert_eq!(full.len(), MH_TAB_SIZE as usize);
        for r in 1..=5 {
            let n = full.iter().filter(|x| **x == r).count();
            assert!((800..=840).contains(&n), "real {r}: {n} slots");
        }
        let without3: Vec<Member> = reals.iter().copied().filter(|x| x.id != 3).collect();
        let less = build_table(Scheduler::Mh, &without3, false, false);
        let moved = full
            .iter()
            .zip(&less)
            .filter(|(a, b)| **a != 3 && a != b)
            .count();
        // Maglev: besides real 3's slots, only a small fraction moves.
        assert!(
            moved < full.len() / 20,
            "{moved} slots of other reals moved"
        );
        let weighted = build_table(Scheduler::Mh, &[m(1, 3), m(2, 1)], false, false);
        let n1 = weighted.iter().filter(|x| **x == 1).count() as f64;
        assert!((n1 / weighted.len() as f64 - 0.75).abs() < 0.02, "{n1}");
    }

    #[test]
    fn rr_skips_quiesced_destinations_and_keeps_order() {
        let t = build_table(Scheduler::Rr, &[m(7, 1), m(3, 0), m(9, 5)], false, false);
        assert_eq!(t, vec![7, 9]);
    }

    #[test]
    fn wrr_matches_ipvs_interleaving() {
        // IPVS with weights 4,3,2 hands out: A A B A B C A B C (cw 4,3,2,1).
        let t = build_table(Scheduler::Wrr, &[m(1, 4), m(2, 3), m(3, 2)], false, false);
        assert_eq!(t, vec![1, 1, 2, 1, 2, 3, 1, 2, 3]);
    }

    #[test]
    fn wrr_divides_by_gcd() {
        let t = build_table(Scheduler::Wrr, &[m(1, 300), m(2, 100)], false, false);
        assert_eq!(t, vec![1, 1, 1, 2]);
    }

    #[test]
    fn wrr_scales_huge_weights_but_keeps_every_member() {
        let t = build_table(
            Scheduler::Wrr,
            &[m(1, 1_000_000), m(2, 1), m(3, 500_000)],
            false,
            false,
        );
        assert!(t.len() <= MAX_TABLE_LEN as usize);
        let count = |id| t.iter().filter(|x| **x == id).count() as f64;
        assert!(count(2) >= 1.0);
        assert!((count(1) / count(3) - 2.0).abs() < 0.01);
    }

    #[test]
    fn scan_schedulers_get_the_available_list_in_order() {
        let ms = [m(7, 1), m(3, 0), m(9, 5)];
        for s in [
            Scheduler::Lc,
            Scheduler::Wlc,
            Scheduler::Sed,
            Scheduler::Nq,
            Scheduler::Ovf,
        ] {
            assert_eq!(build_table(s, &ms, false, false), vec![7, 9]);
            assert!(scans(s, false));
        }
        // fo: one slot, unless thresholds make the packet path skip overloaded reals.
        assert_eq!(build_table(Scheduler::Fo, &ms, false, false), vec![9]);
        assert_eq!(build_table(Scheduler::Fo, &ms, false, true), vec![7, 9]);
        assert!(!scans(Scheduler::Rr, false) && scans(Scheduler::Rr, true));
        // wrr keeps its interleaved sequence with thresholds.
        assert_eq!(build_table(Scheduler::Wrr, &ms, false, true).len(), 6);
    }

    #[test]
    fn no_available_destination_gives_an_empty_table() {
        assert!(build_table(Scheduler::Wrr, &[m(1, 0)], false, false).is_empty());
        assert!(build_table(Scheduler::Rr, &[], false, false).is_empty());
    }
}
