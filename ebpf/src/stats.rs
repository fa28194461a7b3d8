//! Per-service and per-destination counters (`ipvsadm -L --stats/--rate`): IPVS counts a
//! connection when it opens, and every packet and its IP length in either direction.

use crate::maps::{DEST_STATS, SVC_STATS};
use crate::parse::Packet;
use crate::state::Dir;

/// A connection opened on service `svc_id` to destination `dest_id`, with its first packet.
#[inline(always)]
pub fn opened(svc_id: u32, dest_id: u32, pkt: &Packet) {
    // One lookup per counter set for the connection and its packet.
    let bytes = pkt.tot_len as u64;
    for (map, index) in [(&SVC_STATS, svc_id), (&DEST_STATS, dest_id)] {
        if let Some(s) = map.get_ptr_mut(index) {
            // SAFETY: `s` is a map value pointer from get_ptr_mut: non-null, aligned and valid for
            // this program run; per-CPU, so no other CPU writes it.
            let s = unsafe { &mut *s };
            s.conns += 1;
            s.inpkts += 1;
            s.inbytes += bytes;
        }
    }
}

/// One packet of a connection of `svc_id` to `dest_id`, in direction `dir`.
#[inline(always)]
pub fn traffic(svc_id: u32, dest_id: u32, pkt: &Packet, dir: Dir) {
    let bytes = pkt.tot_len as u64;
    for (map, index) in [(&SVC_STATS, svc_id), (&DEST_STATS, dest_id)] {
        if let Some(s) = map.get_ptr_mut(index) {
            // SAFETY: `s` is a map value pointer from get_ptr_mut: non-null, aligned and valid for
            // this program run; per-CPU, so no other CPU writes it.
            let s = unsafe { &mut *s };
            if let Dir::Out = dir {
                s.outpkts += 1;
                s.outbytes += bytes;
            } else {
                s.inpkts += 1;
                s.inbytes += bytes;
            }
        }
    }
}
