//! The firewall's side of `cargo xtask bench xdp`: a rule set of a million prefixes restored
//! (timed: reading the file, compiling, writing the new generation and switching, removing
//! the old one), once onto an empty firewall and once over a running million, then used by
//! the XDP rows that compare the same path with and without rules.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use anyhow::Result;
use dataplane::Options;
use dataplane::fw::{Firewall, Limit, file};

/// Prefixes of the rule set (`XLVS_BENCH_FW_PREFIXES`, default one million).
pub fn prefixes() -> usize {
    std::env::var("XLVS_BENCH_FW_PREFIXES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// The rules the XDP rows meet: CIP's /24 may reach port 22; new connections (from
/// 198.18.0.0/15) may reach port 80; 198.19.201.0/24 is denied. `FW_NO_MATCH_SRC` is covered
/// by the /15 entry but matches none of its rules (port 22).
pub const FW_DENIED_SRC: Ipv4Addr = Ipv4Addr::new(198, 19, 201, 1);
pub const FW_NO_MATCH_SRC: Ipv4Addr = Ipv4Addr::new(198, 19, 200, 1);

/// A rule-set file: the rules above plus deny /32s spread over the IPv4 space (outside
/// 198.18.0.0/15, which the benchmark's packets come from) and IPv6 /64s, `n` prefixes in all.
/// Spread, so a lookup walks a trie as deep as a real blocklist's.
fn rule_file(n: usize, salt: u32) -> String {
    let mut s = String::with_capacity(n * 48);
    s.push_str(r#"{"format":"xlvs-fw","version":1,"policy":"accept","rules":["#);
    s.push_str(
        r#"{"action":"allow","src":"198.18.1.0/24","proto":"tcp","dport":"22"},
{"action":"allow","src":"198.18.0.0/15","proto":"tcp","dport":"80"},
{"action":"deny","src":"198.19.201.0/24"}"#,
    );
    let v6 = n / 10;
    let mut made = 3;
    let mut i: u32 = 0;
    while made < n - v6 {
        i += 1;
        let a = Ipv4Addr::from(i.wrapping_mul(4093).wrapping_add(salt));
        if a.octets()[0] == 198 && a.octets()[1] & 0xfe == 18 {
            continue;
        }
        let _ = write!(s, r#",{{"action":"deny","src":"{a}"}}"#);
        made += 1;
    }
    for j in 0..v6 as u32 {
        let (hi, lo) = (j >> 16, j & 0xffff);
        let _ = write!(
            s,
            r#",{{"action":"deny","src":"2001:db8:{hi:x}:{lo:x}::/64"}}"#
        );
    }
    s.push_str("]}\n");
    s
}

/// Restores two different million-prefix sets in turn and prints what each took.
pub fn load(opts: &Options) -> Result<()> {
    let n = prefixes();
    let mut fw = Firewall::open(opts)?;
    for (salt, what) in [(0, "onto an empty firewall"), (1, "over the running set")] {
        let text = rule_file(n, salt);
        let started = Instant::now();
        let set = file::parse(&text, "bench", false).map_err(anyhow::Error::msg)?;
        let parsed = started.elapsed();
        let a = fw.replace(&set)?;
        let switched = started.elapsed() - a.cleanup;
        println!(
            "firewall restore of {} rules ({} prefixes) {what}: live after {:.3} s \
             (read {:.3} s, number and compile {:.3} s, write and switch {:.3} s), then \
             recorded and the old set removed in {:.3} s; target < 2 s to live -> {}",
            a.rules,
            a.prefixes,
            switched.as_secs_f64(),
            parsed.as_secs_f64(),
            a.compile.as_secs_f64(),
            a.write.as_secs_f64(),
            a.cleanup.as_secs_f64(),
            if switched.as_secs_f64() < 2.0 {
                "met"
            } else {
                "NOT met"
            }
        );
    }
    Ok(())
}

/// Rate limits the XDP rows meet: every source's budget towards `vip` and the ICMP limit, far
/// above what the benchmark sends (nothing dropped); one connection a minute towards `tiny`
/// (a flood from one source, dropped).
pub fn set_limits(opts: &Options, vip: IpAddr, tiny: IpAddr) -> Result<()> {
    let mut fw = Firewall::open(opts)?;
    let huge = Limit::new("100000000/s", None).map_err(anyhow::Error::msg)?;
    fw.set_conn_limit(vip, Some(huge))?;
    fw.set_icmp_limit(Some(huge))?;
    let one = Limit::new("1/m", None).map_err(anyhow::Error::msg)?;
    fw.set_conn_limit(tiny, Some(one))?;
    Ok(())
}
