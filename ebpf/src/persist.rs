//! Persistence (`ipvsadm -p`, keepalived persistence_timeout): IPVS' templates. A client network
//! (address & the service's netmask) keeps going to the real its template names while the
//! template lives: it is refreshed whenever one of its connections opens or closes, and expires
//! `persist_timeout` seconds after that. As in IPVS (expire_quiescent_template off), a quiesced
//! real (weight 0) keeps its persistent clients; a removed one does not.

use ebpf_common::{Dest, Persist, PersistKey, SVC_F_PERSISTENT, Service};

use crate::maps::{DESTS, PERSIST};
use crate::parse::Packet;
use crate::sched;

/// The client network: IPv4 & the netmask (stored as a mask), IPv6 & the prefix length.
#[inline(always)]
fn key(svc: &Service, pkt: &Packet) -> PersistKey {
    let mut caddr = pkt.src;
    if pkt.is_v6() {
        let plen = svc.netmask.min(128);
        for (i, w) in caddr.iter_mut().enumerate() {
            let bits = plen.saturating_sub(i as u32 * 32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            *w &= mask.to_be();
        }
    } else {
        caddr[0] &= svc.netmask;
    }
    PersistKey {
        caddr,
        svc_id: svc.id,
        af: pkt.af,
        _pad: [0; 3],
    }
}

/// The real for a new connection of a persistent service: the template's, or a fresh pick that
/// becomes the template.
#[inline(always)]
pub fn pick(svc: &Service, pkt: &Packet, now: u64) -> Option<(u32, Dest)> {
    let key = key(svc, pkt);
    if let Some(t) = PERSIST.get_ptr_mut(&key) {
        // SAFETY: `t` is a map value pointer from get_ptr_mut: non-null, aligned and valid for this
        // program run.
        let t = unsafe { &mut *t };
        let alive = now.saturating_sub(t.last_seen) <= svc.persist_timeout as u64 * 1_000_000_000;
        // SAFETY: the destination is used within this run; a map value lives for the whole program
        // run (RCU).
        if alive
            && let Some(dest) = unsafe { DESTS.get(t.dest_id) }
            && dest.svc_id == svc.id
        {
            t.last_seen = now;
            return Some((t.dest_id, *dest));
        }
    }
    let (dest_id, dest) = sched::pick(svc, pkt)?;
    let t = Persist {
        dest_id,
        _pad: 0,
        last_seen: now,
    };
    let _ = PERSIST.insert(&key, &t, 0);
    Some((dest_id, dest))
}

/// Whether a persistent service has a live template for this client (its connection then goes
/// where the template says, without a scheduler).
#[inline(always)]
pub fn has_template(svc: &Service, pkt: &Packet, now: u64) -> bool {
    if svc.flags & SVC_F_PERSISTENT == 0 {
        return false;
    }
    // SAFETY: the template is read at once; a map value lives for the whole program run (RCU).
    match unsafe { PERSIST.get(&key(svc, pkt)) } {
        Some(t) => now.saturating_sub(t.last_seen) <= svc.persist_timeout as u64 * 1_000_000_000,
        None => false,
    }
}

/// A controlled connection is closing (FIN/RST): the template's timeout starts over, so it
/// outlives its last connection by `persist_timeout`, as IPVS' does.
#[inline(always)]
pub fn refresh(svc: &Service, pkt: &Packet, now: u64) {
    if svc.flags & SVC_F_PERSISTENT == 0 {
        return;
    }
    if let Some(t) = PERSIST.get_ptr_mut(&key(svc, pkt)) {
        // SAFETY: `t` is a map value pointer from get_ptr_mut: non-null, aligned and valid for this
        // program run.
        unsafe { (*t).last_seen = now };
    }
}
