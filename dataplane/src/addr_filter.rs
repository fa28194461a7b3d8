//! ADDR_FILTER: the addresses a packet of some connection can carry, so the packet path passes
//! every other packet before asking the connection table (`ebpf_common::addr_filter_slot`).
//! Slots are only ever set (several addresses share one, and an address outlives its service
//! or destination in the connections still open): a stale slot costs a lookup, a missing one
//! would pass a connection's packets, so every writer marks before the packet path can need it.

use aya::maps::MapError;
use ebpf_common::{
    ADDR_FILTER_READY, ADDR_FILTER_SRC, CONN_F_REPLY, CONN_X_ONE_ENTRY, Conn, FlowKey,
    addr_filter_slot,
};

use crate::error::Result;
use crate::maps::{Maps, err};

fn mark(maps: &mut Maps, index: u32) -> Result<()> {
    if maps.addr_filter.get(&index, 0).unwrap_or(0) != 0 {
        return Ok(());
    }
    maps.addr_filter
        .set(index, 1, 0)
        .map_err(|e| err("write ADDR_FILTER", e))
}

/// A VIP (services' packets are addressed to it).
pub(crate) fn mark_destination(maps: &mut Maps, af: u8, addr: &[u32; 4]) -> Result<()> {
    mark(maps, addr_filter_slot(af, addr))
}

/// A real server (its replies come from it).
pub(crate) fn mark_source(maps: &mut Maps, af: u8, addr: &[u32; 4]) -> Result<()> {
    mark(maps, ADDR_FILTER_SRC + addr_filter_slot(af, addr))
}

/// A connection-table entry written from user space: what the packet path must let through to
/// find it (a REPLY entry's source, a CLIENT entry's destination).
pub(crate) fn mark_entry(maps: &mut Maps, key: &FlowKey, conn: &Conn) -> Result<()> {
    if conn.xflags & CONN_X_ONE_ENTRY != 0 {
        // Its replies come from its real (found through NAT_OWNERS).
        mark_source(maps, conn.af, &conn.to_addr)?;
    }
    mark(maps, entry_index(key, conn))
}

fn entry_index(key: &FlowKey, conn: &Conn) -> u32 {
    if conn.flags & CONN_F_REPLY != 0 {
        ADDR_FILTER_SRC + addr_filter_slot(key.af, &key.src)
    } else {
        addr_filter_slot(key.af, &key.dst)
    }
}

/// Marks the VIPs and real servers configured (on every load: a build that did not mark may
/// have run meanwhile) and, the first time, every entry of the connection table (tables kept
/// from a build without the filter); then turns the filter on. The slots are gathered first:
/// the table may hold millions of entries.
pub(crate) fn ensure_ready(maps: &mut Maps) -> Result<()> {
    let mut wanted = vec![false; ADDR_FILTER_READY as usize];
    for v in maps.vips.keys().flatten() {
        wanted[addr_filter_slot(v.af, &v.addr) as usize] = true;
    }
    for (_, d) in maps.dests.iter().flatten() {
        wanted[(ADDR_FILTER_SRC + addr_filter_slot(d.af, &d.addr)) as usize] = true;
    }
    // The reals of one-entry connections (which may outlive their destination): every one
    // has a NAT_OWNERS entry, kept as long as such connections may exist.
    for real in maps.nat_owners.keys().flatten() {
        wanted[(ADDR_FILTER_SRC + addr_filter_slot(real.af, &real.addr)) as usize] = true;
    }
    let ready = maps.addr_filter.get(&ADDR_FILTER_READY, 0).unwrap_or(0) != 0;
    if !ready {
        for (key, conn) in maps.conns.iter().flatten() {
            wanted[entry_index(&key, &conn) as usize] = true;
        }
    }
    for (index, _) in wanted.iter().enumerate().filter(|(_, w)| **w) {
        mark(maps, index as u32)?;
    }
    if !ready {
        maps.addr_filter
            .set(ADDR_FILTER_READY, 1, 0)
            .map_err(|e: MapError| err("write ADDR_FILTER", e))?;
    }
    Ok(())
}
