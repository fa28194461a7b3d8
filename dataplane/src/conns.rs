//! The connection table as IPVS shows it: live entries (expired ones are skipped, as IPVS would
//! have freed them), and ActiveConn/InActConn per destination.

use std::collections::HashMap;
use std::net::SocketAddr;

use aya::maps::IterableMap;
use ebpf_common::{self as c, Conn, FlowKey};

use crate::error::Result;
use crate::maps::{Maps, err};
use crate::model::*;

/// CLOCK_MONOTONIC_COARSE in ns: the clock of bpf_ktime_get_coarse_ns().
fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Seconds left before `conn` expires, or `None` if it already has.
fn remaining(conn: &Conn, now: u64) -> Option<u32> {
    let age = now.saturating_sub(conn.last_seen);
    let timeout = conn.timeout as u64 * 1_000_000_000;
    (age <= timeout).then(|| ((timeout - age) / 1_000_000_000) as u32)
}

fn live(maps: &Maps) -> Result<Vec<(FlowKey, Conn, u32)>> {
    let now = now_ns();
    let mut out = Vec::new();
    for item in maps.conns.iter() {
        let (k, v) = match item {
            Ok(kv) => kv,
            // An entry evicted between get_next_key and lookup: skip it.
            Err(aya::maps::MapError::KeyNotFound) => continue,
            Err(e) => return Err(err("read CONNS", e)),
        };
        if let Some(left) = remaining(&v, now) {
            out.push((k, v, left));
        }
    }
    Ok(out)
}

fn is_active(conn: &Conn, proto: u8) -> bool {
    proto == c::IPPROTO_TCP && conn.state == c::S_ESTABLISHED
}

pub fn list(maps: &Maps) -> Result<Vec<ConnEntry>> {
    Ok(live(maps)?
        .into_iter()
        .map(|(k, v, left)| {
            let cfam = Family::from_raw(k.af);
            let dfam = Family::from_raw(v.daf);
            ConnEntry {
                proto: k.proto,
                client: SocketAddr::new(words_to_ip(&k.src, cfam), u16::from_be(k.sport)),
                virt: SocketAddr::new(words_to_ip(&k.dst, cfam), u16::from_be(k.dport)),
                dest: SocketAddr::new(words_to_ip(&v.daddr, dfam), u16::from_be(v.dport)),
                local: (v.fwd == c::FWD_FULLNAT)
                    .then(|| SocketAddr::new(words_to_ip(&v.laddr, dfam), u16::from_be(v.lport))),
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

pub fn capacity(maps: &Maps) -> u32 {
    maps.conns
        .map()
        .info()
        .map(|i| i.max_entries())
        .unwrap_or(c::DEFAULT_MAX_CONNS)
}
