//! IPVS' timers, which an XDP program does not have: a connection whose state timeout passed
//! without a packet is freed (both entries), its destination's connection count goes down (and
//! the overload flag of the thresholds may lift), and the counts are checked against the table
//! so nothing drifts (entries the LRU evicted were never taken off). The table's entry count is
//! checked the same way: what the count has beyond the table's entries was evicted (counted),
//! and an entry whose other half was evicted is marked for the packet path, which resets that
//! end on its next segment. Rates are sampled too, so `--rate` follows IPVS' 2-second estimator
//! even when nobody lists.
//!
//! One process per pin directory runs the ticks ([`run`], started by `xlvs attach` or the
//! keepalived daemon): a lock file keeps a second one idle, since two correctors would correct
//! twice.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ebpf_common::{
    self as c, CONN_F_COUNTED, CONN_F_ORPHAN, Conn, FWD_FULLNAT, FWD_MASQ, FlowKey, client_key_of,
    reply_key_of,
};

use crate::error::{Error, Result};
use crate::maps::Maps;

/// How often the timers run (IPVS' estimator period).
pub const PERIOD: Duration = Duration::from_secs(2);

/// What one tick did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// Connections freed because their timeout passed.
    pub expired: u64,
    /// Connections alive.
    pub live: u64,
    /// Destinations whose counts were corrected from the table.
    pub corrected: u64,
    /// Table entries the LRU evicted since the last tick.
    pub evicted: u64,
    /// TCP entries whose other half is gone, marked to be reset (or removed when idle).
    pub orphans: u64,
}

/// Map update flag: only if the key exists.
const BPF_EXIST: u64 = 2;

/// An orphaned TCP entry nobody sent anything through for this long is removed: its end is gone.
const ORPHAN_IDLE_NS: u64 = 60_000_000_000;

fn is_active(proto: u8, conn: &Conn) -> bool {
    proto == c::IPPROTO_TCP && conn.state == c::S_ESTABLISHED
}

/// One tick: expire, recount, sample rates.
pub fn tick(maps: &mut Maps) -> Result<Tick> {
    let before = snapshot(maps);
    let now = crate::estimator::clock_ns(libc::CLOCK_MONOTONIC_COARSE);
    let counted_before = maps.conn_fill.entries();
    let (clients, replies) = crate::conns::walk(maps)?;
    let mut report = Tick {
        evicted: settle_fill(maps, counted_before, clients.len() + replies.len()),
        orphans: orphans(maps, &clients, &replies, now),
        ..Tick::default()
    };
    // Our own changes, so a destination nobody else touched meanwhile can be corrected.
    let mut ours: HashMap<u32, (i64, i64)> = HashMap::new();
    let mut counted: HashMap<u32, (i64, i64)> = HashMap::new();
    for (key, conn) in clients {
        let reply_key = reply_key_of(&conn, &key);
        let seen = replies
            .get(&reply_key)
            .map_or(0, |r| r.last_seen)
            .max(conn.last_seen);
        let timeout = conn.timeout as u64 * 1_000_000_000;
        if now.saturating_sub(seen) <= timeout {
            report.live += 1;
            if conn.flags & CONN_F_COUNTED != 0 {
                let e = counted.entry(conn.dest_id).or_default();
                if is_active(key.proto, &conn) {
                    e.0 += 1;
                } else {
                    e.1 += 1;
                }
            }
            continue;
        }
        // Expired, unless a packet came since the walk read it.
        match maps.conns.get(&key, 0) {
            Ok(fresh) if fresh.last_seen == conn.last_seen && fresh.state == conn.state => {}
            _ => continue,
        }
        if maps.conns.remove(&reply_key).is_ok() {
            maps.conn_fill.add(-1);
        }
        if maps.conns.remove(&key).is_err() {
            continue;
        }
        maps.conn_fill.add(-1);
        report.expired += 1;
        if conn.flags & CONN_F_COUNTED != 0 {
            let (a, i) = if is_active(key.proto, &conn) {
                (-1, 0)
            } else {
                (0, -1)
            };
            maps.dest_conns.add(conn.dest_id, a, i);
            let e = ours.entry(conn.dest_id).or_default();
            e.0 += a;
            e.1 += i;
            if let Ok(d) = maps.dests.get(&conn.dest_id, 0) {
                maps.dest_conns
                    .settle_overload(conn.dest_id, d.u_threshold, d.l_threshold);
            }
        }
    }
    let after = snapshot(maps);
    let ids: std::collections::HashSet<u32> = before
        .keys()
        .chain(after.keys())
        .chain(counted.keys())
        .copied()
        .collect();
    for id in ids {
        let b = before.get(&id).copied().unwrap_or((0, 0));
        let a = after.get(&id).copied().unwrap_or((0, 0));
        let (da, di) = ours.get(&id).copied().unwrap_or((0, 0));
        // Only the packet path could have changed it meanwhile; then the walk may be stale.
        let untouched = a.0 == b.0.wrapping_add(da as u64) && a.1 == b.1.wrapping_add(di as u64);
        let (ca, ci) = counted.get(&id).copied().unwrap_or((0, 0));
        let (fa, fi) = (ca.wrapping_sub(a.0 as i64), ci.wrapping_sub(a.1 as i64));
        if untouched && (fa != 0 || fi != 0) {
            maps.dest_conns.add(id, fa, fi);
            report.corrected += 1;
        }
    }
    crate::tables::sample_rates(maps)?;
    Ok(report)
}

/// Checks the table's entry count against the `present` entries the walk saw (the count was
/// `counted` before it): a count above the table means the LRU evicted that many (moved into
/// `evicted`); a count below it (entries made by an older build, or written while the count
/// was read) is raised. Returns the evictions found.
fn settle_fill(maps: &Maps, counted: u64, present: usize) -> u64 {
    let present = present as u64;
    if counted > present {
        // Entries made during the walk can hide evictions until the next tick, never invent
        // them: the walk saw at most what existed before plus what was made meanwhile.
        let evicted = counted - present;
        maps.conn_fill.note_evicted(evicted);
        return evicted;
    }
    let now = maps.conn_fill.entries();
    if present > now {
        maps.conn_fill.add((present - now) as i64);
    }
    0
}

/// TCP entries of NAT/FULLNAT connections whose other half the LRU evicted: marked
/// CONN_F_ORPHAN, so the packet path answers that end's next segment with a RST and removes the
/// entry; removed here when nothing used them for a minute. Returns how many were marked.
fn orphans(
    maps: &mut Maps,
    clients: &[(FlowKey, Conn)],
    replies: &HashMap<FlowKey, Conn>,
    now: u64,
) -> u64 {
    let client_keys: std::collections::HashSet<FlowKey> = clients.iter().map(|(k, _)| *k).collect();
    // (entry key, entry, its other half's key)
    let mut lone: Vec<(FlowKey, Conn, FlowKey)> = Vec::new();
    for (key, conn) in clients {
        let other = reply_key_of(conn, key);
        if key.proto == c::IPPROTO_TCP
            && (conn.fwd == FWD_MASQ || conn.fwd == FWD_FULLNAT)
            && conn.xflags & c::CONN_X_ONE_ENTRY == 0
            && !replies.contains_key(&other)
        {
            lone.push((*key, *conn, other));
        }
    }
    for (key, conn) in replies {
        let other = client_key_of(conn, key);
        if key.proto == c::IPPROTO_TCP && !client_keys.contains(&other) {
            lone.push((*key, *conn, other));
        }
    }
    let mut marked = 0;
    for (key, conn, other) in lone {
        // A connection being opened has one half for an instant: look again.
        if maps.conns.get(&other, 0).is_ok() {
            continue;
        }
        if conn.flags & CONN_F_ORPHAN != 0 {
            if now.saturating_sub(conn.last_seen) > ORPHAN_IDLE_NS
                && maps.conns.remove(&key).is_ok()
            {
                maps.conn_fill.add(-1);
            }
            continue;
        }
        let mut orphan = conn;
        orphan.flags |= CONN_F_ORPHAN;
        // Only if it is still there (the packet path may have replaced or removed it).
        if maps.conns.insert(key, orphan, BPF_EXIST).is_ok() {
            marked += 1;
        }
    }
    marked
}

/// Non-zero raw counts by destination id.
fn snapshot(maps: &Maps) -> HashMap<u32, (u64, u64)> {
    let mut out = HashMap::new();
    for id in 0..c::MAX_DESTS {
        let raw = maps.dest_conns.raw(id);
        if raw != (0, 0) {
            out.insert(id, raw);
        }
    }
    out
}

/// The lock file that makes one timer process per pin directory.
fn lock_path(pin_dir: &Path) -> PathBuf {
    let name: String = pin_dir
        .to_string_lossy()
        .chars()
        .map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '_' })
        .collect();
    PathBuf::from("/run/xlvs").join(format!("timers{name}.lock"))
}

/// Takes the per-pin-directory timer lock without waiting; `None` when another process has it.
pub fn try_lock(pin_dir: &Path) -> Result<Option<nix::fcntl::Flock<File>>> {
    let path = lock_path(pin_dir);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::map(format!("cannot create {}", parent.display()), e))?;
    }
    let file = File::create(&path)
        .map_err(|e| Error::map(format!("cannot open {}", path.display()), e))?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(Error::map(
            format!("cannot lock {}", path.display()),
            std::io::Error::from(e),
        )),
    }
}

/// Whether a timer process holds the lock of `pin_dir` (asking leaves no file behind).
pub fn running(pin_dir: &Path) -> bool {
    let Ok(file) = File::open(lock_path(pin_dir)) else {
        return false;
    };
    matches!(
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockSharedNonblock),
        Err((_, nix::errno::Errno::EWOULDBLOCK))
    )
}

/// Runs the timers of the data plane at `opts` until its tables are removed (`xlvs unload`, or a
/// test's pin directory going away) or `stop` says so. Returns at once when another process
/// already runs them.
pub fn run(opts: &crate::Options, stop: &dyn Fn() -> bool) -> Result<()> {
    let Some(_lock) = try_lock(&opts.pin_dir)? else {
        log::info!("timers of {} already run elsewhere", opts.pin_dir.display());
        return Ok(());
    };
    let mut dp = crate::Dataplane::open(opts)?;
    let mut no_neigh = 0;
    while !stop() {
        if !crate::loader::is_loaded(&opts.pin_dir) {
            log::info!("{} is gone: timers stop", opts.pin_dir.display());
            let _ = std::fs::remove_file(lock_path(&opts.pin_dir));
            return Ok(());
        }
        match tick(&mut dp.maps) {
            Ok(t) if t.expired > 0 || t.corrected > 0 => log::debug!("timers: {t:?}"),
            Ok(_) => {}
            Err(e) => log::warn!("timers: {e}"),
        }
        refresh_neighbours(&mut dp, &mut no_neigh);
        std::thread::sleep(PERIOD);
    }
    Ok(())
}

/// Neighbour entries go when a link flaps (and expire unused), and a DR, tunnel or FULLNAT
/// packet cannot be handed to the kernel to resolve one: when the packet path dropped packets
/// for want of a neighbour since the last tick, have the kernel resolve the next hop of every
/// such real again (only those without a usable entry are asked).
fn refresh_neighbours(dp: &mut crate::Dataplane, seen: &mut u64) {
    let Ok(counters) = dp.counters() else { return };
    let now = counters
        .get(c::counter::DROP_NO_NEIGH as usize)
        .copied()
        .unwrap_or(0);
    if now == *seen {
        return;
    }
    *seen = now;
    let Ok(services) = dp.services() else { return };
    for d in services.iter().flat_map(|s| &s.dests) {
        crate::tables::resolve_next_hop(&d.config);
    }
}
