//! Counters: per-CPU values summed for listings, zeroed on request, and table fill levels.

use aya::maps::{MapData, PerCpuArray, PerCpuValues};
use ebpf_common::{self as c, counter};

use crate::error::Result;
use crate::maps::{Maps, err};
use crate::model::Stats;

/// Sum over CPUs of entry `index`.
pub fn read(map: &PerCpuArray<MapData, c::Stats>, index: u32) -> Result<Stats> {
    let values = map.get(&index, 0).map_err(|e| err("read stats", e))?;
    let mut total = Stats::default();
    for v in values.iter() {
        total.add(v);
    }
    Ok(total)
}

/// Number of possible CPUs (read from sysfs once per process).
pub(crate) fn nr_cpus() -> Result<usize> {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    if let Some(n) = N.get() {
        return Ok(*n);
    }
    let n = aya::util::nr_cpus().map_err(|(_, e)| crate::Error::map("nr_cpus", e))?;
    Ok(*N.get_or_init(|| n))
}

/// Zeroes entry `index` on every CPU.
pub fn zero_index(map: &mut PerCpuArray<MapData, c::Stats>, index: u32) -> Result<()> {
    let zeros = PerCpuValues::try_from(vec![c::Stats::default(); nr_cpus()?])
        .map_err(|e| crate::Error::map("per-cpu values", e))?;
    map.set(index, zeros, 0).map_err(|e| err("zero stats", e))
}

/// The global counters (`ebpf_common::counter`), summed over CPUs.
pub fn counters(maps: &Maps) -> Result<Vec<u64>> {
    (0..counter::COUNT)
        .map(|i| {
            let v = maps
                .counters
                .get(&i, 0)
                .map_err(|e| err("read COUNTERS", e))?;
            Ok(v.iter().sum())
        })
        .collect()
}

/// Names of the global counters, by index, as `xlvs status` prints them (declared with the
/// counters themselves in `ebpf_common`).
pub const COUNTER_NAMES: [(u32, &str); counter::NAMES.len()] = counter::NAMES;

/// How full the main tables are.
#[derive(Clone, Copy, Debug)]
pub struct Fill {
    /// Services in use.
    pub services: u32,
    /// Services the tables hold.
    pub services_max: u32,
    /// Destinations in use.
    pub dests: u32,
    /// Destinations the tables hold.
    pub dests_max: u32,
    /// Connections counted (entries over two).
    pub conns: u32,
    /// Connections the table holds.
    pub conns_max: u32,
    /// Entries the connection table holds (two per FULLNAT connection and NAT connection
    /// that cannot have one; see `ebpf_common::Conn`), as counted.
    pub conn_entries: u64,
    /// Entries of the connection table's capacity.
    pub conn_entries_max: u64,
    /// Entries the full table evicted since it was made.
    pub conn_evicted: u64,
    /// What a full table does.
    pub table_full: crate::fill::TableFull,
}

/// How full the main tables are now.
pub fn fill(maps: &Maps) -> Result<Fill> {
    Ok(Fill {
        services: maps.services.keys().count() as u32,
        services_max: c::MAX_SERVICES,
        dests: maps.dests.keys().count() as u32,
        dests_max: c::MAX_DESTS,
        // One CLIENT entry per connection (NAT ones may have a REPLY entry too).
        conns: maps
            .conns
            .iter()
            .flatten()
            .filter(|(_, v)| v.flags & c::CONN_F_REPLY == 0)
            .count() as u32,
        conns_max: crate::conns::capacity(maps),
        conn_entries: maps.conn_fill.entries(),
        conn_entries_max: crate::conns::capacity_entries(maps) as u64,
        conn_evicted: maps.conn_fill.evicted(),
        table_full: maps.conn_fill.policy(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_has_one_name() {
        let mut seen: Vec<u32> = COUNTER_NAMES.iter().map(|(i, _)| *i).collect();
        seen.sort();
        seen.dedup();
        let all: Vec<u32> = (0..counter::COUNT).collect();
        assert_eq!(seen, all);
    }
}
