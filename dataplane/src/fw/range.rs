//! An address range START-END as the fewest prefixes that cover exactly it (the LPM trie holds
//! prefixes). Addresses are handled as 128-bit numbers; IPv4 uses the low 32 bits.

/// The prefixes (network, length in `bits`-bit space) covering exactly `start..=end`, in
/// address order. `start <= end` and both below 2^bits.
pub fn prefixes(start: u128, end: u128, bits: u32) -> Vec<(u128, u8)> {
    debug_assert!(start <= end && bits <= 128);
    let mut out = Vec::new();
    let mut cur = start;
    loop {
        // The largest block that starts at `cur` (alignment) and does not pass `end`.
        let align = if cur == 0 {
            bits
        } else {
            cur.trailing_zeros().min(bits)
        };
        let mut size_log = align;
        while size_log > 0 && block_last(cur, size_log) > end {
            size_log -= 1;
        }
        out.push((cur, (bits - size_log) as u8));
        let last = block_last(cur, size_log);
        if last >= end {
            return out;
        }
        cur = last + 1;
    }
}

/// The last address of the block of 2^size_log addresses starting at `first` (saturating at
/// the top of the space).
fn block_last(first: u128, size_log: u32) -> u128 {
    if size_log >= 128 {
        return u128::MAX;
    }
    first.saturating_add((1u128 << size_log) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> u128 {
        u32::from(s.parse::<std::net::Ipv4Addr>().unwrap()) as u128
    }

    fn show(p: &[(u128, u8)]) -> Vec<String> {
        p.iter()
            .map(|(a, l)| format!("{}/{l}", std::net::Ipv4Addr::from(*a as u32)))
            .collect()
    }

    #[test]
    fn aligned_ranges_are_one_prefix() {
        assert_eq!(
            show(&prefixes(v4("198.18.0.0"), v4("198.18.0.255"), 32)),
            ["198.18.0.0/24"]
        );
        assert_eq!(
            show(&prefixes(v4("198.18.0.7"), v4("198.18.0.7"), 32)),
            ["198.18.0.7/32"]
        );
        assert_eq!(show(&prefixes(0, u32::MAX as u128, 32)), ["0.0.0.0/0"]);
        assert_eq!(prefixes(0, u128::MAX, 128), [(0, 0)]);
    }

    #[test]
    fn unaligned_ranges_split_into_the_fewest_prefixes() {
        assert_eq!(
            show(&prefixes(v4("198.18.0.1"), v4("198.18.0.10"), 32)),
            [
                "198.18.0.1/32",
                "198.18.0.2/31",
                "198.18.0.4/30",
                "198.18.0.8/31",
                "198.18.0.10/32"
            ]
        );
        // The worst case: 2 * (bits - 1) prefixes.
        assert_eq!(prefixes(1, u32::MAX as u128 - 1, 32).len(), 62);
        assert_eq!(prefixes(1, u128::MAX - 1, 128).len(), 254);
        assert_eq!(
            show(&prefixes(v4("255.255.255.254"), v4("255.255.255.255"), 32)),
            ["255.255.255.254/31"]
        );
    }

    /// Every range of a small space: the prefixes are disjoint, in order, cover exactly the
    /// range, and none could be merged with its neighbour (minimal).
    #[test]
    fn exhaustive_over_a_small_space() {
        let bits = 6;
        for start in 0u128..64 {
            for end in start..64 {
                let p = prefixes(start, end, bits);
                let mut next = start;
                for &(net, len) in &p {
                    let size = 1u128 << (bits - len as u32);
                    assert_eq!(net, next, "{start}-{end}: {p:?}");
                    assert_eq!(net % size, 0, "{start}-{end}: unaligned {p:?}");
                    next = net + size;
                }
                assert_eq!(next, end + 1, "{start}-{end}: {p:?}");
                for w in p.windows(2) {
                    let mergeable = w[0].1 == w[1].1 && {
                        let size = 1u128 << (bits - w[0].1 as u32);
                        w[0].0 % (2 * size) == 0
                    };
                    assert!(!mergeable, "{start}-{end}: not minimal {p:?}");
                }
            }
        }
    }
}
