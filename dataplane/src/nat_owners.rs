//! NAT_OWNERS: which service's NAT connections to a real server keep one connection-table entry
//! (`ebpf_common::CONN_X_ONE_ENTRY`). A real server:port (per protocol) gets the first service
//! that names it as a NAT destination; connections of any other service to it keep a REPLY
//! entry. Entries are only ever added (as ADDR_FILTER's slots): connections outlive their
//! service, and a one-entry connection's replies are found through its real's owner until it
//! ends. A full map only means more connections with two entries.

use aya::maps::MapError;
use ebpf_common::{self as c, Dest, FlowKey, ServiceKey, nat_real_key};

use crate::error::Result;
use crate::maps::{Maps, err, lookup};

/// BPF_NOEXIST: a concurrent writer's owner is kept.
const BPF_NOEXIST: u64 = 1;

/// The NAT_OWNERS key `dest` of service `svc` would have, if its connections can have one
/// entry: a NAT destination with a port, of an address-and-port service of its own family.
fn real_key(svc: &ServiceKey, dest: &Dest) -> Option<ServiceKey> {
    (dest.fwd == c::FWD_MASQ
        && svc.proto != c::PROTO_FWMARK
        && svc.port != 0
        && dest.port != 0
        && dest.af == svc.af)
        .then(|| nat_real_key(dest.af, svc.proto, &dest.addr, dest.port))
}

/// A destination `dest` of service `svc` is written: its real server gets `svc` as owner if it
/// has none yet. (Before the destination is published: the packet path opens its first
/// connection with one entry only once the owner is there.)
pub(crate) fn claim(maps: &mut Maps, svc: &ServiceKey, dest: &Dest) -> Result<()> {
    let Some(key) = real_key(svc, dest) else {
        return Ok(());
    };
    if lookup("read NAT_OWNERS", maps.nat_owners.get(&key, 0))?.is_some() {
        return Ok(());
    }
    match maps.nat_owners.insert(key, *svc, BPF_NOEXIST) {
        Ok(()) => Ok(()),
        // Taken meanwhile, or the map is full: two entries for this service's connections.
        Err(MapError::SyscallError(s))
            if matches!(
                s.io_error.raw_os_error(),
                Some(libc::EEXIST | libc::E2BIG | libc::ENOSPC | libc::ENOMEM)
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(err("write NAT_OWNERS", e)),
    }
}

/// Every configured NAT destination claims its real (on load: tables kept from a build without
/// NAT_OWNERS, whose connections all have REPLY entries).
pub(crate) fn claim_all(maps: &mut Maps) -> Result<()> {
    let services: std::collections::HashMap<u32, ServiceKey> = maps
        .services
        .iter()
        .flatten()
        .map(|(k, v)| (v.id, k))
        .collect();
    let dests: Vec<Dest> = maps.dests.iter().flatten().map(|(_, d)| d).collect();
    for d in dests {
        if let Some(svc) = services.get(&d.svc_id) {
            claim(maps, svc, &d)?;
        }
    }
    Ok(())
}

/// Whether a NAT connection whose CLIENT entry is at `client` and whose real server is
/// `to_addr`:`to_port` (family `af`) has one entry: the packet path's decision
/// (ebpf/src/one_entry.rs `derivable`), for connections user space writes (sync).
pub(crate) fn derivable(
    maps: &Maps,
    client: &FlowKey,
    af: u8,
    to_addr: &[u32; 4],
    to_port: u16,
) -> Result<bool> {
    if af != client.af || to_port == 0 || client.dport == 0 {
        return Ok(false);
    }
    let key = nat_real_key(af, client.proto, to_addr, to_port);
    Ok(lookup("read NAT_OWNERS", maps.nat_owners.get(&key, 0))?
        .is_some_and(|o| o.addr == client.dst && o.port == client.dport))
}
