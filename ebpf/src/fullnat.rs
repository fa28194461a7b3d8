//! FULLNAT (alibaba LVS): both ends of a connection are rewritten. On the way in
//! cip:cport -> vip:vport becomes lip:lport -> rip:rport, on the way back rip:rport -> lip:lport
//! becomes vip:vport -> cip:cport, so real servers need no route to the clients, only to the
//! local addresses.
//!
//! A new connection binds a (local address, source port) from its service's pool: the pair is
//! free when the REPLY key (rip, rport, lip, lport) is not in CONNS. Each CPU walks its own slice
//! of the port range (`config::NR_CPUS`), so CPUs almost never try the same pair, and the REPLY
//! entry is inserted with BPF_NOEXIST, so even then only one wins: no lock is taken. A pair still
//! held by a connection that has expired (LRU entries outlive their timeout) is reclaimed.

use aya_ebpf::helpers::bpf_get_smp_processor_id;
use ebpf_common::{
    CONN_F_REPLY, CONN_F_SYNPROXY, Conn, FNAT_PORT_COUNT, FNAT_PORT_MIN, FNAT_PORT_TRIES, FlowKey,
    LaddrKey, MAX_LADDRS_PER_SERVICE, config, counter, laddr_slot,
};

use aya_ebpf::macros::map;

use crate::maps::{CONFIG, CONNS, LADDR_COUNT, LADDR_POOL, LADDRS};
use crate::stage::Scratch;

/// This CPU's allocation cursor (walks its slice of the port range over the pool).
#[map]
static PORT_CURSOR: Scratch<u32> = Scratch::new();
/// The candidate REPLY key, and the CLIENT key of an entry being reclaimed (no stack room).
#[map]
static SCRATCH_KEY: Scratch<FlowKey> = Scratch::new();
#[map]
static SCRATCH_KEY2: Scratch<FlowKey> = Scratch::new();

/// Binds a local address and port for a new connection and inserts both entries.
/// `client` is the CLIENT entry (to = rip:rport; its `via` is filled in here), `reply` scratch
/// space for the REPLY entry. Returns the counter saying why it failed.
#[inline(always)]
pub fn open(flow: &FlowKey, client: &mut Conn, reply: &mut Conn) -> Result<(), u32> {
    let n = match LADDR_COUNT.get(client.svc_id) {
        Some(n) if *n > 0 => (*n).min(MAX_LADDRS_PER_SERVICE),
        _ => return Err(counter::DROP_NO_LADDR),
    };
    let ncpus = match CONFIG.get(config::NR_CPUS) {
        Some(n) if *n > 0 => *n,
        _ => 1,
    };
    let slice = (FNAT_PORT_COUNT / ncpus).max(1);
    // SAFETY: a BPF helper without arguments or preconditions.
    let cpu = unsafe { bpf_get_smp_processor_id() } % ncpus;
    let base = FNAT_PORT_MIN + cpu * slice;
    let Some(cursor) = PORT_CURSOR.get() else {
        return Err(counter::DROP_LADDR_EXHAUSTED);
    };

    // The REPLY entry: rip:rport -> lip:lport becomes vip:vport -> cip:cport.
    *reply = *client;
    reply.to_addr = flow.dst;
    reply.to_port = flow.dport;
    reply.via_addr = flow.src;
    reply.via_port = flow.sport;
    reply.af = flow.af;
    reply.flags = CONN_F_REPLY | (client.flags & CONN_F_SYNPROXY);
    reply.state = 0;
    reply.timeout = 0;
    reply.last_seen = 0;
    // Keys live in per-CPU scratch: the main program's stack is nearly full.
    let (Some(key), Some(old_key)) = (SCRATCH_KEY.get(), SCRATCH_KEY2.get()) else {
        return Err(counter::DROP_LADDR_EXHAUSTED);
    };
    *key = FlowKey {
        src: client.to_addr,
        dst: [0; 4],
        sport: client.to_port,
        dport: 0,
        proto: flow.proto,
        af: client.af,
        _pad: [0; 2],
    };
    let now = client.last_seen;
    for _ in 0..FNAT_PORT_TRIES {
        let c = *cursor;
        *cursor = c.wrapping_add(1);
        // SAFETY: the local address is copied at once; a map value lives for the whole program run
        // (RCU).
        let Some(laddr) = (unsafe { LADDR_POOL.get(&laddr_slot(client.svc_id, c % n)) }) else {
            continue;
        };
        if laddr.af != client.af {
            continue;
        }
        key.dst = laddr.addr;
        key.dport = ((base + (c / n) % slice) as u16).to_be();
        // Looked up first: an insert that finds the pair taken has already taken a free
        // entry from the LRU (evicting another connection's when the table is full).
        // SAFETY: the entry is only read within this run; a map value lives for the whole program
        // run (RCU).
        let bound = match unsafe { CONNS.get(&*key) } {
            None => crate::fill::insert_new(key, reply),
            Some(old) => {
                reclaimable(old, key, old_key, flow, now) && crate::fill::insert(key, reply).is_ok()
            }
        };
        if !bound {
            conflict(laddr);
            continue;
        }
        client.via_addr = key.dst;
        client.via_port = key.dport;
        if crate::fill::insert(flow, client).is_err() {
            crate::fill::remove(key);
            return Err(counter::CONN_INSERT_FAIL);
        }
        return Ok(());
    }
    Err(counter::DROP_LADDR_EXHAUSTED)
}

/// Whether `old`, the entry at `key`, is the REPLY entry of a connection that is over: its
/// CLIENT entry is gone, was replaced by another connection of the same client, is the one
/// `opening` replaces (a SYN reopening a closed connection), or has timed out (neither side
/// seen within its state's timeout). The dead CLIENT entry is removed with it.
#[inline(always)]
fn reclaimable(
    old: &Conn,
    key: &FlowKey,
    client_key: &mut FlowKey,
    opening: &FlowKey,
    now: u64,
) -> bool {
    if old.flags & CONN_F_REPLY == 0 {
        return false;
    }
    *client_key = FlowKey {
        src: old.via_addr,
        dst: old.to_addr,
        sport: old.via_port,
        dport: old.to_port,
        proto: key.proto,
        af: old.af,
        _pad: [0; 2],
    };
    let Some(client) = CONNS.get_ptr_mut(&*client_key) else {
        return true;
    };
    // SAFETY: `client` is a map value pointer from get_ptr_mut: non-null, aligned and valid for
    // this program run.
    let client = unsafe { &mut *client };
    if client.via_addr != key.dst || client.via_port != key.dport || client.to_addr != key.src {
        return true;
    }
    if *client_key == *opening {
        // Overwritten by the new connection's CLIENT entry in a moment.
        return true;
    }
    let last = if client.last_seen > old.last_seen {
        client.last_seen
    } else {
        old.last_seen
    };
    if now.saturating_sub(last) <= (client.timeout as u64) * 1_000_000_000 {
        return false;
    }
    crate::conncount::closed(client, key.proto);
    crate::fill::remove(client_key);
    true
}

/// One candidate pair was taken: counted on its local address (`ipvsadm -G` CONFLICTS).
#[inline(always)]
fn conflict(laddr: &LaddrKey) {
    if let Some(l) = LADDRS.get_ptr_mut(laddr) {
        // Shared by all CPUs; a rare lost increment is acceptable for a statistic.
        // SAFETY: `l` is a map value pointer from get_ptr_mut: non-null, aligned and valid for this
        // program run (the race is on the count only).
        unsafe { (*l).port_conflicts += 1 };
    }
}
