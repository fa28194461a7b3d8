//! Rates (`ipvsadm -L --rate`), estimated from the counters over time as the IPVS estimator does:
//! every sample at least [`PERIOD`] after the previous one gives a rate over that interval, and the
//! published rate moves a quarter of the way towards it (IPVS' EWMA weight). Samples are taken by
//! whoever reads (any ipvsadm) and by the keepalived daemon every period; the state lives in the
//! pinned EST map, so separate processes continue one estimate.

use aya::maps::{HashMap, MapData};
use ebpf_common::{self as c, Estimate};

use crate::model::Stats;

/// Minimum interval between two samples (IPVS samples every 2 s).
pub const PERIOD_NS: u64 = 2_000_000_000;
const SCALE: u64 = 1 << 10;

/// Nanoseconds of the clock `id` (CLOCK_MONOTONIC and friends).
pub fn clock_ns(id: libc::clockid_t) -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::from_raw(id))
        .map(|ts| ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64)
        .unwrap_or(0)
}

fn now_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

fn to_raw(s: &Stats) -> c::Stats {
    c::Stats {
        conns: s.conns,
        inpkts: s.inpkts,
        outpkts: s.outpkts,
        inbytes: s.inbytes,
        outbytes: s.outbytes,
    }
}

/// The next estimator state, given the previous one (if any), the counters now and the time.
pub fn step(prev: Option<Estimate>, counters: &Stats, now: u64) -> Estimate {
    let cur = to_raw(counters);
    let Some(prev) = prev else {
        return Estimate {
            last: cur,
            last_ns: now,
            rate: c::Stats::default(),
        };
    };
    let dt = now.saturating_sub(prev.last_ns);
    if dt < PERIOD_NS {
        return prev;
    }
    // Counters zeroed (ipvsadm -Z) or a recycled id: restart from here.
    let went_back = cur.conns < prev.last.conns
        || cur.inpkts < prev.last.inpkts
        || cur.outpkts < prev.last.outpkts
        || cur.inbytes < prev.last.inbytes
        || cur.outbytes < prev.last.outbytes;
    if went_back {
        return Estimate {
            last: cur,
            last_ns: now,
            rate: c::Stats::default(),
        };
    }
    let rate_of = |now_v: u64, last_v: u64, avg: u64| -> u64 {
        let r = ((now_v - last_v) as u128 * SCALE as u128 * 1_000_000_000 / dt as u128) as u64;
        // avg += (r - avg) / 4, in signed arithmetic.
        (avg as i128 + (r as i128 - avg as i128) / 4).max(0) as u64
    };
    Estimate {
        last: cur,
        last_ns: now,
        rate: c::Stats {
            conns: rate_of(cur.conns, prev.last.conns, prev.rate.conns),
            inpkts: rate_of(cur.inpkts, prev.last.inpkts, prev.rate.inpkts),
            outpkts: rate_of(cur.outpkts, prev.last.outpkts, prev.rate.outpkts),
            inbytes: rate_of(cur.inbytes, prev.last.inbytes, prev.rate.inbytes),
            outbytes: rate_of(cur.outbytes, prev.last.outbytes, prev.rate.outbytes),
        },
    }
}

/// Published rates of an estimate (per second, rounded as IPVS does).
pub fn rates(e: &Estimate) -> Stats {
    let r = |v: u64| (v + SCALE / 2) / SCALE;
    Stats {
        conns: r(e.rate.conns),
        inpkts: r(e.rate.inpkts),
        outpkts: r(e.rate.outpkts),
        inbytes: r(e.rate.inbytes),
        outbytes: r(e.rate.outbytes),
    }
}

/// Samples `counters` for `key` (if the period has passed) and returns the current rates.
/// Failing to store the sample only loses precision: rates are still returned.
pub fn sample(est: &mut HashMap<MapData, u32, Estimate>, key: u32, counters: &Stats) -> Stats {
    let prev = est.get(&key, 0).ok();
    let next = step(prev, counters, now_ns());
    if prev != Some(next) {
        let _ = est.insert(key, next, 0);
    }
    rates(&next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(conns: u64, bytes: u64) -> Stats {
        Stats {
            conns,
            inpkts: conns * 10,
            outpkts: conns * 10,
            inbytes: bytes,
            outbytes: bytes,
        }
    }

    #[test]
    fn rates_converge_like_the_ipvs_ewma() {
        let mut e = step(None, &s(0, 0), 0);
        assert_eq!(rates(&e).conns, 0);
        // 100 conn/s steady: a quarter of the gap per sample.
        let mut t = 0;
        let mut n = 0;
        let mut seen = Vec::new();
        for _ in 0..20 {
            t += PERIOD_NS;
            n += 200;
            e = step(Some(e), &s(n, n * 1000), t);
            seen.push(rates(&e).conns);
        }
        assert_eq!(seen[0], 25);
        assert!(seen.windows(2).all(|w| w[0] <= w[1]));
        assert!((99..=100).contains(seen.last().unwrap()), "{seen:?}");
        assert!((99_000..=100_000).contains(&rates(&e).inbytes));
    }

    #[test]
    fn samples_closer_than_the_period_change_nothing_and_zeroing_restarts() {
        let e = step(None, &s(0, 0), 0);
        let e2 = step(Some(e), &s(50, 0), PERIOD_NS - 1);
        assert_eq!(e2, e);
        let e3 = step(Some(e), &s(50, 0), PERIOD_NS);
        assert!(rates(&e3).conns > 0);
        let e4 = step(Some(e3), &s(0, 0), 2 * PERIOD_NS);
        assert_eq!(rates(&e4).conns, 0);
    }
}
