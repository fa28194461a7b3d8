//! Scheduler tables computed in user space and read by the XDP program: the sequence of
//! destination ids a service hands out, one per new connection, in order.
//!
//! * rr: every available destination (weight > 0) once, in insertion order (IPVS walks its list).
//! * wrr: IPVS' interleaved weighted sequence (current weight steps down by the gcd from the
//!   maximum; a destination is picked whenever its weight >= the current weight).
//!
//! Schedulers whose data-plane support is not built yet use the wrr table (documented in
//! ARCHITECTURE.md) so weights are still honoured.

use ebpf_common::MAX_TABLE_LEN;

use crate::model::Scheduler;

/// A destination as the table builder sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    pub id: u32,
    pub weight: i32,
}

/// The table for `sched` over `members` (insertion order). Empty = no destination available.
pub fn build_table(sched: Scheduler, members: &[Member]) -> Vec<u32> {
    let available: Vec<Member> = members.iter().copied().filter(|m| m.weight > 0).collect();
    match sched {
        Scheduler::Rr => available.iter().map(|m| m.id).collect(),
        _ => wrr_sequence(&available),
    }
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
        Member { id, weight }
    }

    #[test]
    fn rr_skips_quiesced_destinations_and_keeps_order() {
        let t = build_table(Scheduler::Rr, &[m(7, 1), m(3, 0), m(9, 5)]);
        assert_eq!(t, vec![7, 9]);
    }

    #[test]
    fn wrr_matches_ipvs_interleaving() {
        // IPVS with weights 4,3,2 hands out: A A B A B C A B C (cw 4,3,2,1).
        let t = build_table(Scheduler::Wrr, &[m(1, 4), m(2, 3), m(3, 2)]);
        assert_eq!(t, vec![1, 1, 2, 1, 2, 3, 1, 2, 3]);
    }

    #[test]
    fn wrr_divides_by_gcd() {
        let t = build_table(Scheduler::Wrr, &[m(1, 300), m(2, 100)]);
        assert_eq!(t, vec![1, 1, 1, 2]);
    }

    #[test]
    fn wrr_scales_huge_weights_but_keeps_every_member() {
        let t = build_table(Scheduler::Wrr, &[m(1, 1_000_000), m(2, 1), m(3, 500_000)]);
        assert!(t.len() <= MAX_TABLE_LEN as usize);
        let count = |id| t.iter().filter(|x| **x == id).count() as f64;
        assert!(count(2) >= 1.0);
        assert!((count(1) / count(3) - 2.0).abs() < 0.01);
    }

    #[test]
    fn no_available_destination_gives_an_empty_table() {
        assert!(build_table(Scheduler::Wrr, &[m(1, 0)]).is_empty());
        assert!(build_table(Scheduler::Rr, &[]).is_empty());
    }
}
