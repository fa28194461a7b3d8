//! A firewall rate limit as the user writes it (`10/s --burst 20`, `600/m`): a number of
//! packets per second or per minute, and how many may come at once. `Display` gives the
//! command-line form back; `abi` the packet path's form (GCRA times, no division there).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ebpf_common::FwLimit;

/// The per-period unit of a rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Per {
    /// `/s`.
    Second,
    /// `/m`.
    Minute,
}

impl Per {
    fn nanos(self) -> u64 {
        match self {
            Per::Second => 1_000_000_000,
            Per::Minute => 60_000_000_000,
        }
    }
    fn suffix(self) -> &'static str {
        match self {
            Per::Second => "s",
            Per::Minute => "m",
        }
    }
}

/// Packets per period, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limit {
    /// Packets per `per` on average.
    pub rate: u32,
    /// The period of `rate`.
    pub per: Per,
    /// Packets let through at once (the bucket's depth).
    pub burst: u32,
}

/// Largest rate and burst (a higher rate is no limit on one core).
pub const MAX_RATE: u32 = 100_000_000;

/// The rate limits of a rule set: ICMP (one bucket) and per-VIP connection budgets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// ICMP/ICMPv6 (not errors, not neighbour discovery) to this host and the VIPs.
    pub icmp: Option<Limit>,
    /// Per-source new-connection budget, by VIP.
    pub conn: BTreeMap<IpAddr, Limit>,
}

impl Limit {
    /// A limit from `RATE[/s|/m]` and an optional burst (default: the rate's number).
    pub fn new(rate: &str, burst: Option<u32>) -> Result<Limit, String> {
        let (number, per) = match rate.split_once('/') {
            None => (rate, Per::Second),
            Some((n, "s" | "sec" | "second")) => (n, Per::Second),
            Some((n, "m" | "min" | "minute")) => (n, Per::Minute),
            Some((_, unit)) => {
                return Err(format!(
                    "rate `{rate}`: `{unit}` is no period (s or m: per second or minute)"
                ));
            }
        };
        let rate_n: u32 = number
            .parse()
            .map_err(|_| format!("rate `{rate}`: `{number}` is no whole number of packets"))?;
        if rate_n == 0 || rate_n > MAX_RATE {
            return Err(format!("rate `{rate}`: between 1 and {MAX_RATE} packets"));
        }
        let burst = burst.unwrap_or(rate_n);
        if burst == 0 || burst > MAX_RATE {
            return Err(format!("burst {burst}: between 1 and {MAX_RATE} packets"));
        }
        Ok(Limit {
            rate: rate_n,
            per,
            burst,
        })
    }

    /// The rate as written: `10/s`.
    pub fn rate_text(&self) -> String {
        format!("{}/{}", self.rate, self.per.suffix())
    }

    /// The packet path's form (its `tat` and `dropped` left at zero).
    pub fn abi(&self) -> FwLimit {
        let interval_ns = (self.per.nanos() / self.rate as u64).max(1);
        FwLimit {
            interval_ns,
            tolerance_ns: interval_ns * self.burst as u64,
            tat: 0,
            dropped: 0,
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} --burst {}", self.rate_text(), self.burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_with_their_period_and_default_burst() {
        let l = Limit::new("10/s", None).unwrap();
        assert_eq!((l.rate, l.per, l.burst), (10, Per::Second, 10));
        assert_eq!(l.abi().interval_ns, 100_000_000);
        assert_eq!(l.abi().tolerance_ns, 1_000_000_000);
        let l = Limit::new("600/m", Some(3)).unwrap();
        assert_eq!(l.to_string(), "600/m --burst 3");
        assert_eq!(l.abi().interval_ns, 100_000_000);
        assert_eq!(l.abi().tolerance_ns, 300_000_000);
        assert_eq!(Limit::new("7", None).unwrap().rate_text(), "7/s");
    }

    #[test]
    fn bad_rates_and_bursts_are_named() {
        assert_eq!(
            Limit::new("10/h", None).unwrap_err(),
            "rate `10/h`: `h` is no period (s or m: per second or minute)"
        );
        assert_eq!(
            Limit::new("x/s", None).unwrap_err(),
            "rate `x/s`: `x` is no whole number of packets"
        );
        assert!(Limit::new("0/s", None).unwrap_err().contains("between 1"));
        assert!(
            Limit::new("10/s", Some(0))
                .unwrap_err()
                .starts_with("burst 0:")
        );
    }
}
