//! DPVS deny/allow lists (`ipvsadm -U/-V/-B` blklst, `-O/-Y/-W` whtlst) in the ACL map, with a
//! per-service summary in ACL_STATE so the packet path reads the map only for services that
//! have lists. Entries keep their insertion order (the value is a sequence number).

use std::net::IpAddr;

use ebpf_common::{AclKey, acl};

use crate::error::{Error, Result};
use crate::maps::{Maps, err};
use crate::model::{AclKind, Family, ip_to_words, words_to_ip};

fn raw(kind: AclKind) -> u8 {
    match kind {
        AclKind::Deny => acl::DENY,
        AclKind::Allow => acl::ALLOW,
    }
}

fn key(svc_id: u32, kind: AclKind, addr: &IpAddr) -> AclKey {
    AclKey {
        addr: ip_to_words(addr),
        svc_id,
        kind: raw(kind),
        af: Family::of(addr).raw(),
        _pad: [0; 2],
    }
}

/// The entries of one service's list, in insertion order.
pub fn entries(maps: &Maps, svc_id: u32, kind: AclKind) -> Vec<IpAddr> {
    let mut v: Vec<(u32, IpAddr)> = maps
        .acl
        .iter()
        .filter_map(|r| r.ok())
        .filter(|(k, _)| k.svc_id == svc_id && k.kind == raw(kind))
        .map(|(k, seq)| (seq, words_to_ip(&k.addr, Family::from_raw(k.af))))
        .collect();
    v.sort_by_key(|(seq, _)| *seq);
    v.into_iter().map(|(_, a)| a).collect()
}

pub fn add(maps: &mut Maps, svc_id: u32, kind: AclKind, addr: IpAddr) -> Result<()> {
    let k = key(svc_id, kind, &addr);
    if maps.acl.get(&k, 0).is_ok() {
        return Err(Error::AclExists(kind));
    }
    let seq = maps
        .acl
        .iter()
        .filter_map(|r| r.ok())
        .filter(|(k, _)| k.svc_id == svc_id)
        .map(|(_, s)| s + 1)
        .max()
        .unwrap_or(0);
    maps.acl
        .insert(k, seq, 0)
        .map_err(|e| err("update ACL", e))?;
    publish_state(maps, svc_id)
}

pub fn del(maps: &mut Maps, svc_id: u32, kind: AclKind, addr: IpAddr) -> Result<()> {
    let k = key(svc_id, kind, &addr);
    if maps.acl.get(&k, 0).is_err() {
        return Err(Error::NoSuchAclAddr);
    }
    maps.acl.remove(&k).map_err(|e| err("delete ACL", e))?;
    publish_state(maps, svc_id)
}

/// Removes both lists of a service (its id may be reused by another service later).
pub fn clear(maps: &mut Maps, svc_id: u32) {
    let keys: Vec<AclKey> = maps
        .acl
        .keys()
        .filter_map(|r| r.ok())
        .filter(|k| k.svc_id == svc_id)
        .collect();
    let _ = maps.acl_state.set(svc_id, 0, 0);
    for k in keys {
        let _ = maps.acl.remove(&k);
    }
}

/// ACL_STATE follows the lists: an allow list that gains its first entry starts refusing
/// everyone else from this update on.
fn publish_state(maps: &mut Maps, svc_id: u32) -> Result<()> {
    let mut state = 0;
    for (k, _) in maps.acl.iter().filter_map(|r| r.ok()) {
        if k.svc_id == svc_id {
            state |= match k.kind {
                acl::DENY => acl::HAS_DENY,
                _ => acl::HAS_ALLOW,
            };
        }
    }
    maps.acl_state
        .set(svc_id, state, 0)
        .map_err(|e| err("update ACL_STATE", e))?;
    Ok(())
}
