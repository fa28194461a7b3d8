//! The connection table as IPVS shows it: live connections (expired ones are skipped, as IPVS
//! would have freed them), and ActiveConn/InActConn per destination.
//!
//! Each connection has a CLIENT entry and, unless it is a one-entry NAT connection, a REPLY
//! entry (see `ebpf_common::Conn`); a connection is alive while either was seen within the
//! timeout of the connection's state.

use std::collections::HashMap;
use std::net::SocketAddr;

use aya::maps::IterableMap;
use ebpf_common::{self as c, CONN_F_REPLY, Conn, FlowKey, reply_key_of};

use crate::error::Result;
use crate::maps::{Maps, err};
use crate::model::*;

/// CLOCK_MONOTONIC_COARSE in ns: the clock of bpf_ktime_get_coarse_ns().
pub(crate) fn now_ns() -> u64 {
    crate::estimator::clock_ns(libc::CLOCK_MONOTONIC_COARSE)
}

/// Every CLIENT entry, and every REPLY entry by its key.
pub(crate) type Walk = (Vec<(FlowKey, Conn)>, HashMap<FlowKey, Conn>);

/// One pass over the connection table.
pub(crate) fn walk(maps: &Maps) -> Result<Walk> {
    let mut clients = Vec::new();
    let mut replies: HashMap<FlowKey, Conn> = HashMap::new();
    for item in maps.conns.iter() {
        let (k, v) = match item {
            Ok(kv) => kv,
            // An entry evicted between get_next_key and lookup: skip it.
            Err(aya::maps::MapError::KeyNotFound) => continue,
            Err(e) => return Err(err("read CONNS", e)),
        };
        if v.flags & CONN_F_REPLY != 0 {
            replies.insert(k, v);
        } else {
            clients.push((k, v));
        }
    }
    Ok((clients, replies))
}

/// Live connections: (client key, client entry, seconds left); the entry's `last_seen` is the
/// later of both directions'.
pub(crate) fn live(maps: &Maps) -> Result<Vec<(FlowKey, Conn, u32)>> {
    let now = now_ns();
    let (clients, replies) = walk(maps)?;
    let mut out = Vec::with_capacity(clients.len());
    for (k, v) in clients {
        let seen = replies
            .get(&reply_key_of(&v, &k))
            .map_or(0, |r| r.last_seen)
            .max(v.last_seen);
        let age = now.saturating_sub(seen);
        let timeout = v.timeout as u64 * 1_000_000_000;
        if age <= timeout {
            let mut v = v;
            v.last_seen = seen;
            out.push((k, v, ((timeout - age) / 1_000_000_000) as u32));
        }
    }
    Ok(out)
}

fn is_active(conn: &Conn, proto: u8) -> bool {
    proto == c::IPPROTO_TCP && conn.state == c::S_ESTABLISHED
}

/// Live persistence templates: (key, template, service, seconds left).
pub(crate) fn live_templates(
    maps: &Maps,
) -> Result<Vec<(c::PersistKey, c::Persist, c::ServiceKey, u32)>> {
    let now = now_ns();
    let mut services: HashMap<u32, (c::ServiceKey, c::Service)> = HashMap::new();
    for item in maps.services.iter() {
        let (k, v) = item.map_err(|e| err("read SERVICES", e))?;
        services.insert(v.id, (k, v));
    }
    let mut out = Vec::new();
    for item in maps.persist.iter() {
        let Ok((k, t)) = item else { continue };
        let Some((skey, svc)) = services.get(&k.svc_id) else {
            continue;
        };
        let timeout = svc.persist_timeout as u64 * 1_000_000_000;
        let age = now.saturating_sub(t.last_seen);
        if age <= timeout {
            out.push((k, t, *skey, ((timeout - age) / 1_000_000_000) as u32));
        }
    }
    Ok(out)
}

/// Live persistence templates by destination id (IPVS PersistConn).
pub fn templates_per_dest(maps: &Maps) -> Result<HashMap<u32, u32>> {
    let mut n: HashMap<u32, u32> = HashMap::new();
    for (_, t, _, _) in live_templates(maps)? {
        *n.entry(t.dest_id).or_default() += 1;
    }
    Ok(n)
}

/// Live connections, then the persistence templates (shown by IPVS as protocol IP, state NONE).
pub fn list(maps: &Maps) -> Result<Vec<ConnEntry>> {
    let mut out = conn_entries(maps)?;
    for (k, t, skey, left) in live_templates(maps)? {
        let Ok(dest) = maps.dests.get(&t.dest_id, 0) else {
            continue;
        };
        let fam = Family::from_raw(k.af);
        let vport = if skey.proto == c::PROTO_FWMARK {
            0
        } else {
            u16::from_be(skey.port)
        };
        let vaddr = if skey.proto == c::PROTO_FWMARK {
            words_to_ip(&[0; 4], fam)
        } else {
            words_to_ip(&skey.addr, fam)
        };
        out.push(ConnEntry {
            proto: 0,
            client: SocketAddr::new(words_to_ip(&k.caddr, fam), 0),
            virt: SocketAddr::new(vaddr, vport),
            dest: SocketAddr::new(
                words_to_ip(&dest.addr, Family::from_raw(dest.af)),
                u16::from_be(dest.port),
            ),
            local: None,
            state: "NONE",
            active: false,
            expires: left,
            forward: Forward::from_raw(dest.fwd),
        });
    }
    Ok(out)
}

fn conn_entries(maps: &Maps) -> Result<Vec<ConnEntry>> {
    Ok(live(maps)?
        .into_iter()
        .map(|(k, v, left)| {
            let cfam = Family::from_raw(k.af);
            let dfam = Family::from_raw(v.af);
            ConnEntry {
                proto: k.proto,
                client: SocketAddr::new(words_to_ip(&k.src, cfam), u16::from_be(k.sport)),
                virt: SocketAddr::new(words_to_ip(&k.dst, cfam), u16::from_be(k.dport)),
                dest: SocketAddr::new(words_to_ip(&v.to_addr, dfam), u16::from_be(v.to_port)),
                local: (v.fwd == c::FWD_FULLNAT).then(|| {
                    SocketAddr::new(words_to_ip(&v.via_addr, dfam), u16::from_be(v.via_port))
                }),
                state: state_name(k.proto, v.state),
                active: is_active(&v, k.proto),
                expires: left,
                forward: Forward::from_raw(v.fwd),
            }
        })
        .collect())
}

/// (active, inactive) live connections by destination id.
pub fn per_dest_counts(maps: &Maps) -> Result<HashMap<u32, (u32, u32)>> {
    let mut counts: HashMap<u32, (u32, u32)> = HashMap::new();
    for (k, v, _) in live(maps)? {
        let e = counts.entry(v.dest_id).or_default();
        if is_active(&v, k.proto) {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    Ok(counts)
}

/// Live FULLNAT connections by (service id, local address): `ipvsadm -G` CONNS.
pub fn per_laddr_counts(maps: &Maps) -> Result<HashMap<(u32, [u32; 4]), u64>> {
    let mut counts = HashMap::new();
    for (_, v, _) in live(maps)? {
        if v.fwd == c::FWD_FULLNAT {
            *counts.entry((v.svc_id, v.via_addr)).or_default() += 1;
        }
    }
    Ok(counts)
}

/// Writes a connection-table entry from user space, counting it when it is new (see
/// [`crate::fill`]).
pub(crate) fn insert(maps: &mut Maps, key: FlowKey, conn: Conn) -> Result<()> {
    const BPF_NOEXIST: u64 = 1;
    crate::addr_filter::mark_entry(maps, &key, &conn)?;
    match maps.conns.insert(key, conn, BPF_NOEXIST) {
        Ok(()) => {
            maps.conn_fill.add(1);
            Ok(())
        }
        // There already: replaced, not added.
        Err(_) => maps
            .conns
            .insert(key, conn, 0)
            .map_err(|e| err("write CONNS", e)),
    }
}

/// Entries the table holds before it is full (its size less the LRU's headroom).
pub fn capacity_entries(maps: &Maps) -> u32 {
    maps.conns
        .map()
        .info()
        .map(|i| i.max_entries().saturating_sub(crate::fill::lru_headroom()))
        .unwrap_or(c::DEFAULT_MAX_CONNS * 2)
}

/// Connections the table holds at least (two entries each at most).
pub fn capacity(maps: &Maps) -> u32 {
    capacity_entries(maps) / 2
}
