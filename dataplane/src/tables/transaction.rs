//! The write path: each IPVS operation on services, destinations and local addresses, applied
//! to the maps.
//!
//! A write works on a [`Snapshot`] (the services and destinations read once under the writer
//! lock), so checks such as "destination already exists" and id/table allocation need no map scan
//! per operation. The order of map updates keeps the packet path consistent at every instant:
//! counters and destinations are written before the table that points at them, a table before
//! the service entry that publishes it, and a destination leaves its table before it is deleted.
//!
//! IPVS semantics kept here: removing a destination takes it out of the scheduler table first,
//! and its connections run until they expire; weight 0 quiesces it. Removing a service stops
//! scheduling; its connection entries remain and resume if the same service is added again
//! (`ipvsadm -C; ipvsadm -R`). Ids come from cursors in META, so an id is reused only after the
//! cursor wraps (its counters and next-hop cache are reset then).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use ebpf_common::{
    self as c, Dest, MAX_DESTS, MAX_SERVICES, SCHED_POOL_SLOTS, Service, ServiceKey,
};

use super::convert::{
    dest_value, laddr_key, laddr_value, service_key, service_meta, service_value, vip_key,
};
use crate::error::{Error, Result};
use crate::fwmark::{self, FwmarkRule};
use crate::maps::{Maps, err};
use crate::model::*;
use crate::pool::Pool;
use crate::sched::{Member, build_table};
use crate::stats;

/// The service and destination tables as read under the writer lock.
pub struct Snapshot {
    pub(super) services: HashMap<ServiceKey, Service>,
    /// Destinations by service id, in insertion (id allocation) order.
    pub(super) dests: HashMap<u32, Vec<(u32, Dest)>>,
    /// Every destination id in use (for O(1) allocation).
    dest_ids: HashSet<u32>,
    /// Every service id in use.
    service_ids: HashSet<u32>,
    pool: Pool,
    pub(super) next_service_id: u32,
    next_dest_id: u32,
    /// In a batch (`Dataplane::hold_lock`): services whose scheduler table is rebuilt once, when
    /// the batch ends, instead of after every change.
    deferred: Option<HashSet<ServiceKey>>,
    /// The fwmark classifier's rules (`xlvs fwmark`): they decide SVC_F_FWMARK_FIRST.
    fwmark: Vec<FwmarkRule>,
}

impl Snapshot {
    pub fn load(maps: &Maps) -> Result<Snapshot> {
        let mut services = HashMap::new();
        for item in maps.services.iter() {
            let (k, v) = item.map_err(|e| err("read SERVICES", e))?;
            services.insert(k, v);
        }
        let mut dests: HashMap<u32, Vec<(u32, Dest)>> = HashMap::new();
        for item in maps.dests.iter() {
            let (id, d) = item.map_err(|e| err("read DESTS", e))?;
            dests.entry(d.svc_id).or_default().push((id, d));
        }
        let next_service_id = meta(maps, c::meta::NEXT_SERVICE_ID)?;
        let next_dest_id = meta(maps, c::meta::NEXT_DEST_ID)?;
        for list in dests.values_mut() {
            // Ids are handed out increasingly from a cursor; order by distance behind it so the
            // order survives the cursor wrapping.
            list.sort_by_key(|(id, _)| id.wrapping_sub(next_dest_id) % MAX_DESTS);
        }
        let pool = Pool::new(
            SCHED_POOL_SLOTS,
            services.values().map(|s| (s.table_base, s.table_len)),
        );
        let dest_ids = dests.values().flatten().map(|(id, _)| *id).collect();
        let service_ids = services.values().map(|s| s.id).collect();
        Ok(Snapshot {
            services,
            dests,
            dest_ids,
            service_ids,
            pool,
            next_service_id,
            next_dest_id,
            deferred: None,
            fwmark: fwmark::load(maps)?,
        })
    }

    /// From now on, table rebuilds wait for [`Snapshot::commit`].
    pub fn begin_batch(&mut self) {
        self.deferred.get_or_insert_with(HashSet::new);
    }

    /// Rebuilds the tables of every service changed during the batch.
    pub fn commit(&mut self, maps: &mut Maps) -> Result<()> {
        let keys: Vec<ServiceKey> = self.deferred.take().into_iter().flatten().collect();
        let mut first_err = None;
        for key in keys {
            if let Err(e) = self.table_changed(maps, key) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Rebuilds now, or at the end of the batch.
    fn table_changed(&mut self, maps: &mut Maps, key: ServiceKey) -> Result<()> {
        match &mut self.deferred {
            Some(set) => {
                set.insert(key);
                Ok(())
            }
            None => self.rebuild(maps, key),
        }
    }

    pub(super) fn service(
        &self,
        addr: &ServiceAddr,
        missing: Error,
    ) -> Result<(ServiceKey, Service)> {
        let key = service_key(addr);
        match self.services.get(&key) {
            Some(s) => Ok((key, *s)),
            None => Err(missing),
        }
    }

    /// The id of the service at `addr`, or `missing`.
    pub fn service_id(&self, addr: &ServiceAddr, missing: Error) -> Result<u32> {
        Ok(self.service(addr, missing)?.1.id)
    }

    pub fn add_service(&mut self, maps: &mut Maps, cfg: &ServiceConfig) -> Result<()> {
        let key = service_key(&cfg.addr);
        if self.services.contains_key(&key) {
            return Err(Error::ServiceExists);
        }
        check_pe(cfg)?;
        let id = self.alloc_service_id(maps)?;
        let svc = Service {
            id,
            table_base: 0,
            table_len: 0,
            dest_count: 0,
            ..service_value(cfg)
        };
        let svc = fwmark::with_flag(&self.fwmark, &key, svc);
        stats::zero_index(&mut maps.svc_stats, id)?;
        let _ = maps.est.remove(&c::est_key_service(id));
        maps.svc_meta
            .insert(id, service_meta(cfg), 0)
            .map_err(|e| err("write SVC_META", e))?;
        maps.services
            .insert(key, svc, 0)
            .map_err(|e| err("write SERVICES", e))?;
        self.services.insert(key, svc);
        self.publish_vip(maps, &key)?;
        self.publish_port_zero_count(maps, &key)?;
        self.publish_fwmark_count(maps, &key)
    }

    /// VIPS: how many services use the address of `key` (flood policies look it up).
    fn publish_vip(&self, maps: &mut Maps, key: &ServiceKey) -> Result<()> {
        if key.proto == c::PROTO_FWMARK {
            return Ok(());
        }
        let n = self
            .services
            .keys()
            .filter(|k| k.proto != c::PROTO_FWMARK && k.addr == key.addr && k.af == key.af)
            .count() as u32;
        let vip = vip_key(key);
        if n == 0 {
            let _ = maps.vips.remove(&vip);
            return Ok(());
        }
        crate::addr_filter::mark_destination(maps, vip.af, &vip.addr)?;
        maps.vips
            .insert(vip, n, 0)
            .map_err(|e| err("write VIPS", e))
    }

    /// IPVS' nullsvc_counter: the packet path tries (vip, 0) only while port-zero services exist.
    /// Called after a service with `key` was added or removed: only port-zero services count.
    fn publish_port_zero_count(&self, maps: &mut Maps, key: &ServiceKey) -> Result<()> {
        if key.proto == c::PROTO_FWMARK || key.port != 0 {
            return Ok(());
        }
        let n = self
            .services
            .keys()
            .filter(|k| k.proto != c::PROTO_FWMARK && k.port == 0)
            .count() as u32;
        maps.config
            .set(c::config::PORT_ZERO_SERVICES, n, 0)
            .map_err(|e| err("write CONFIG", e))
    }

    /// The packet path asks the fwmark classifier on a (vip, vport) miss only while fwmark
    /// services exist. Called after a service with `key` was added or removed.
    fn publish_fwmark_count(&self, maps: &mut Maps, key: &ServiceKey) -> Result<()> {
        if key.proto != c::PROTO_FWMARK {
            return Ok(());
        }
        let n = self
            .services
            .keys()
            .filter(|k| k.proto == c::PROTO_FWMARK)
            .count() as u32;
        maps.config
            .set(c::config::FWMARK_SERVICES, n, 0)
            .map_err(|e| err("write CONFIG", e))
    }

    /// The fwmark classifier's rules (sorted).
    pub fn fwmark_rules(&self) -> &[FwmarkRule] {
        &self.fwmark
    }

    /// Replaces the classifier's rules by `rules` (already checked with `fwmark::check`) and
    /// flags the services they cover.
    pub fn set_fwmark_rules(&mut self, maps: &mut Maps, rules: Vec<FwmarkRule>) -> Result<()> {
        let changed = fwmark::publish(maps, &self.services, &self.fwmark, &rules)?;
        self.services.extend(changed);
        self.fwmark = rules;
        Ok(())
    }

    pub fn edit_service(&mut self, maps: &mut Maps, cfg: &ServiceConfig) -> Result<()> {
        let (key, old) = self.service(&cfg.addr, Error::NoSuchService)?;
        check_pe(cfg)?;
        let mut svc = Service {
            id: old.id,
            table_base: old.table_base,
            table_len: old.table_len,
            dest_count: old.dest_count,
            ..service_value(cfg)
        };
        // Internal: kept until the rebuild below recomputes it with the new scheduler.
        svc.flags |= old.flags & c::SVC_F_SCHED_SCAN;
        let svc = fwmark::with_flag(&self.fwmark, &key, svc);
        maps.svc_meta
            .insert(old.id, service_meta(cfg), 0)
            .map_err(|e| err("write SVC_META", e))?;
        maps.services
            .insert(key, svc, 0)
            .map_err(|e| err("write SERVICES", e))?;
        self.services.insert(key, svc);
        if svc.sched != old.sched || svc.flags != old.flags {
            self.table_changed(maps, key)?;
        }
        Ok(())
    }

    pub fn del_service(&mut self, maps: &mut Maps, addr: &ServiceAddr) -> Result<()> {
        let (key, svc) = self.service(addr, Error::NoSuchService)?;
        self.remove_service(maps, key, svc)
    }

    fn remove_service(&mut self, maps: &mut Maps, key: ServiceKey, svc: Service) -> Result<()> {
        // Unpublish first: no new connection can be scheduled to what follows.
        maps.services
            .remove(&key)
            .map_err(|e| err("delete SERVICES", e))?;
        self.services.remove(&key);
        self.service_ids.remove(&svc.id);
        self.pool.free(svc.table_base, svc.table_len);
        for (id, _) in self.dests.remove(&svc.id).unwrap_or_default() {
            let _ = maps.dests.remove(&id);
            self.dest_ids.remove(&id);
        }
        let _ = maps.svc_meta.remove(&svc.id);
        crate::acl::clear(maps, svc.id);
        let _ = publish_laddr_pool(maps, svc.id, &[]);
        for key in laddrs_of(maps, svc.id).into_iter().map(|(k, _)| k) {
            let _ = maps.laddrs.remove(&key);
        }
        self.publish_vip(maps, &key)?;
        self.publish_port_zero_count(maps, &key)?;
        self.publish_fwmark_count(maps, &key)
    }

    pub fn flush(&mut self, maps: &mut Maps) -> Result<()> {
        let all: Vec<_> = self.services.iter().map(|(k, v)| (*k, *v)).collect();
        for (key, svc) in all {
            self.remove_service(maps, key, svc)?;
        }
        Ok(())
    }

    pub fn zero(&mut self, maps: &mut Maps, addr: Option<&ServiceAddr>) -> Result<()> {
        let ids: Vec<u32> = match addr {
            Some(a) => vec![self.service(a, Error::NoSuchService)?.1.id],
            None => self.services.values().map(|s| s.id).collect(),
        };
        for id in ids {
            stats::zero_index(&mut maps.svc_stats, id)?;
            for (dest_id, _) in self.dests.get(&id).map(|v| v.as_slice()).unwrap_or(&[]) {
                stats::zero_index(&mut maps.dest_stats, *dest_id)?;
            }
        }
        Ok(())
    }

    pub fn add_dest(&mut self, maps: &mut Maps, addr: &ServiceAddr, d: &DestConfig) -> Result<()> {
        let (key, svc) = self.service(addr, Error::ServiceNotDefined)?;
        check_dest_family(addr, d)?;
        if self.find_dest(svc.id, d.addr, d.port).is_some() {
            return Err(Error::DestExists);
        }
        let id = self.alloc_dest_id(maps)?;
        let dest = dest_value(svc.id, d);
        crate::addr_filter::mark_source(maps, dest.af, &dest.addr)?;
        crate::nat_owners::claim(maps, &key, &dest)?;
        stats::zero_index(&mut maps.dest_stats, id)?;
        maps.dest_conns.reset(id);
        let _ = maps.est.remove(&c::est_key_dest(id));
        maps.dest_nh
            .set(id, ebpf_common::NextHop::default(), 0)
            .map_err(|e| err("write DEST_NH", e))?;
        maps.dests
            .insert(id, dest, 0)
            .map_err(|e| err("write DESTS", e))?;
        self.dests.entry(svc.id).or_default().push((id, dest));
        self.dest_ids.insert(id);
        resolve_next_hop(d);
        if let Err(e) = self.table_changed(maps, key) {
            // Leave the tables as they were.
            let _ = maps.dests.remove(&id);
            self.dest_ids.remove(&id);
            if let Some(list) = self.dests.get_mut(&svc.id) {
                list.retain(|(i, _)| *i != id);
            }
            return Err(e);
        }
        Ok(())
    }

    pub fn edit_dest(&mut self, maps: &mut Maps, addr: &ServiceAddr, d: &DestConfig) -> Result<()> {
        let (key, svc) = self.service(addr, Error::ServiceNotDefined)?;
        check_dest_family(addr, d)?;
        let Some(pos) = self.find_dest(svc.id, d.addr, d.port) else {
            return Err(Error::NoSuchDest);
        };
        let list = self.dests.get_mut(&svc.id).ok_or(Error::NoSuchDest)?;
        let id = list[pos].0;
        let old = list[pos].1;
        let dest = dest_value(svc.id, d);
        // `-e` may make it a NAT destination.
        crate::addr_filter::mark_source(maps, dest.af, &dest.addr)?;
        crate::nat_owners::claim(maps, &key, &dest)?;
        maps.dests
            .insert(id, dest, 0)
            .map_err(|e| err("write DESTS", e))?;
        list[pos].1 = dest;
        resolve_next_hop(d);
        // IPVS __ip_vs_update_dest: a removed or raised upper threshold lifts the overload.
        if dest.u_threshold == 0 || dest.u_threshold > old.u_threshold {
            maps.dest_conns.clear_overload(id);
        }
        if old.weight != dest.weight || (old.u_threshold == 0) != (dest.u_threshold == 0) {
            self.table_changed(maps, key)?;
        }
        Ok(())
    }

    pub fn del_dest(
        &mut self,
        maps: &mut Maps,
        addr: &ServiceAddr,
        ip: IpAddr,
        port: u16,
    ) -> Result<()> {
        let (key, svc) = self.service(addr, Error::ServiceNotDefined)?;
        let Some(pos) = self.find_dest(svc.id, ip, port) else {
            return Err(Error::NoSuchDest);
        };
        let list = self.dests.get_mut(&svc.id).ok_or(Error::NoSuchDest)?;
        let (id, _) = list.remove(pos);
        // Out of the table first; its connections keep their rewrite data and run until they expire.
        self.table_changed(maps, key)?;
        maps.dests.remove(&id).map_err(|e| err("delete DESTS", e))?;
        self.dest_ids.remove(&id);
        Ok(())
    }

    /// alibaba/DPVS `-P`: a FULLNAT local address for the service.
    pub fn add_laddr(&mut self, maps: &mut Maps, addr: &ServiceAddr, l: &LocalAddr) -> Result<()> {
        let (_, svc) = self.service(addr, Error::ServiceNotDefined)?;
        let key = laddr_key(svc.id, &l.addr);
        if maps.laddrs.get(&key, 0).is_ok() {
            return Err(Error::LaddrExists);
        }
        let pool: Vec<_> = laddrs_of(maps, svc.id)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        if pool.len() >= c::MAX_LADDRS_PER_SERVICE as usize {
            return Err(Error::map(
                "add-laddr",
                std::io::Error::from_raw_os_error(libc::ENOMEM),
            ));
        }
        let seq = next_laddr_seq(maps)?;
        maps.laddrs
            .insert(key, laddr_value(l, seq), 0)
            .map_err(|e| err("write LADDRS", e))?;
        // The packet path splits the port range between CPUs.
        let cpus = aya::util::nr_cpus().map(|n| n as u32).unwrap_or(1);
        maps.config
            .set(c::config::NR_CPUS, cpus, 0)
            .map_err(|e| err("write CONFIG", e))?;
        let mut pool = pool;
        pool.push(key);
        publish_laddr_pool(maps, svc.id, &pool)
    }

    /// alibaba/DPVS `-Q`.
    pub fn del_laddr(&mut self, maps: &mut Maps, addr: &ServiceAddr, ip: IpAddr) -> Result<()> {
        let (_, svc) = self.service(addr, Error::ServiceNotDefined)?;
        let key = laddr_key(svc.id, &ip);
        if maps.laddrs.get(&key, 0).is_err() {
            return Err(Error::NoSuchLaddr);
        }
        let pool: Vec<_> = laddrs_of(maps, svc.id)
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| *k != key)
            .collect();
        // Out of the pool first (new connections stop using it), then the address itself.
        publish_laddr_pool(maps, svc.id, &pool)?;
        maps.laddrs
            .remove(&key)
            .map_err(|e| err("delete LADDRS", e))
    }

    fn find_dest(&self, svc_id: u32, ip: IpAddr, port: u16) -> Option<usize> {
        let words = ip_to_words(&ip);
        let af = Family::of(&ip).raw();
        self.dests
            .get(&svc_id)?
            .iter()
            .position(|(_, d)| d.addr == words && d.port == port.to_be() && d.af == af)
    }

    /// Recomputes the service's scheduler table into a fresh pool range and publishes it.
    fn rebuild(&mut self, maps: &mut Maps, key: ServiceKey) -> Result<()> {
        let Some(mut svc) = self.services.get(&key).copied() else {
            return Ok(());
        };
        let members: Vec<Member> = self
            .dests
            .get(&svc.id)
            .map(|v| {
                v.iter()
                    .map(|(id, d)| Member {
                        id: *id,
                        weight: d.weight,
                        seed: member_seed(d),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let fallback = svc.flags & c::SVC_F_SCHED1 != 0;
        let thresholds = self
            .dests
            .get(&svc.id)
            .is_some_and(|v| v.iter().any(|(_, d)| d.u_threshold != 0));
        let sched = Scheduler::from_raw(svc.sched);
        let table = build_table(sched, &members, fallback, thresholds);
        if crate::sched::scans(sched, thresholds) {
            svc.flags |= c::SVC_F_SCHED_SCAN;
        } else {
            svc.flags &= !c::SVC_F_SCHED_SCAN;
        }
        let len = table.len() as u32;
        let base = self.pool.alloc(len).ok_or(Error::NoMemory)?;
        for (i, dest_id) in table.iter().enumerate() {
            if let Err(e) = maps.sched_table.set(base + i as u32, dest_id, 0) {
                self.pool.free(base, len);
                return Err(err("write SCHED_TABLE", e));
            }
        }
        let (old_base, old_len) = (svc.table_base, svc.table_len);
        svc.table_base = base;
        svc.table_len = len;
        svc.dest_count = members.len() as u32;
        if let Err(e) = maps.services.insert(key, svc, 0) {
            self.pool.free(base, len);
            return Err(err("write SERVICES", e));
        }
        self.services.insert(key, svc);
        self.pool.free(old_base, old_len);
        Ok(())
    }

    fn alloc_service_id(&mut self, maps: &mut Maps) -> Result<u32> {
        let used = &self.service_ids;
        let id = next_free(&mut self.next_service_id, MAX_SERVICES, |id| {
            used.contains(&id)
        })?;
        self.service_ids.insert(id);
        set_meta(maps, c::meta::NEXT_SERVICE_ID, self.next_service_id)?;
        Ok(id)
    }

    fn alloc_dest_id(&mut self, maps: &mut Maps) -> Result<u32> {
        let used = &self.dest_ids;
        let id = next_free(&mut self.next_dest_id, MAX_DESTS, |id| used.contains(&id))?;
        set_meta(maps, c::meta::NEXT_DEST_ID, self.next_dest_id)?;
        Ok(id)
    }
}

/// A real's stable seed for its Maglev permutation: its address and port.
fn member_seed(d: &Dest) -> u64 {
    let fold = d
        .addr
        .iter()
        .fold(0u64, |h, w| h.rotate_left(17) ^ *w as u64);
    fold ^ ((d.port as u64) << 40)
}

/// Direct routing (and tunnels) forward packets still addressed to the VIP, which the kernel
/// cannot forward for us while the real server's MAC is unknown: have it resolved now. FULLNAT
/// packets come from a local address, which the kernel refuses to forward (martian source).
pub(crate) fn resolve_next_hop(d: &DestConfig) {
    if matches!(
        d.forward,
        Forward::Route | Forward::Tunnel | Forward::FullNat
    ) && let Err(e) = crate::neigh::resolve(d.addr)
    {
        log::debug!("cannot start neighbour resolution for {}: {e}", d.addr);
    }
}

/// Publishes a service's local-address pool to the packet path (LADDR_POOL slots + LADDR_COUNT).
/// The slots are written before the count changes: a grown pool becomes visible with its count,
/// a shrunk one is compacted first (its last address briefly in two slots), so a packet never
/// reads an empty slot or a removed address.
fn publish_laddr_pool(maps: &mut Maps, svc_id: u32, pool: &[c::LaddrKey]) -> Result<()> {
    let old = maps.laddr_count.get(&svc_id, 0).unwrap_or(0);
    let new = pool.len() as u32;
    for (i, k) in pool.iter().enumerate() {
        maps.laddr_pool
            .insert(c::laddr_slot(svc_id, i as u32), *k, 0)
            .map_err(|e| err("write LADDR_POOL", e))?;
    }
    maps.laddr_count
        .set(svc_id, new, 0)
        .map_err(|e| err("write LADDR_COUNT", e))?;
    for i in new..old {
        let _ = maps.laddr_pool.remove(&c::laddr_slot(svc_id, i));
    }
    Ok(())
}

/// The local addresses of a service, in insertion order.
pub(super) fn laddrs_of(maps: &Maps, svc_id: u32) -> Vec<(c::LaddrKey, c::Laddr)> {
    let mut v: Vec<_> = maps
        .laddrs
        .iter()
        .filter_map(|r| r.ok())
        .filter(|(k, _)| k.svc_id == svc_id)
        .collect();
    v.sort_by_key(|(_, l)| l.seq);
    v
}

/// Local-address insertion order comes from a counter in META (two u32 halves).
fn next_laddr_seq(maps: &mut Maps) -> Result<u64> {
    let lo = meta(maps, c::meta::LADDR_SEQ_LO)?;
    let hi = meta(maps, c::meta::LADDR_SEQ_HI)?;
    let seq = ((hi as u64) << 32 | lo as u64) + 1;
    set_meta(maps, c::meta::LADDR_SEQ_LO, seq as u32)?;
    set_meta(maps, c::meta::LADDR_SEQ_HI, (seq >> 32) as u32)?;
    Ok(seq)
}

/// The first id at or after `cursor` (wrapping) for which `used` is false; advances the cursor.
fn next_free(cursor: &mut u32, limit: u32, used: impl Fn(u32) -> bool) -> Result<u32> {
    for step in 0..limit {
        let id = (*cursor + step) % limit;
        if !used(id) {
            *cursor = (id + 1) % limit;
            return Ok(id);
        }
    }
    Err(Error::NoMemory)
}

fn meta(maps: &Maps, index: u32) -> Result<u32> {
    maps.meta.get(&index, 0).map_err(|e| err("read META", e))
}

fn set_meta(maps: &mut Maps, index: u32, value: u32) -> Result<()> {
    maps.meta
        .set(index, value, 0)
        .map_err(|e| err("write META", e))
}

/// Only the persistence engine IPVS ships ("sip") exists.
fn check_pe(cfg: &ServiceConfig) -> Result<()> {
    match cfg.pe.as_deref() {
        None | Some("sip") => Ok(()),
        Some(_) => Err(Error::SchedulerNotFound),
    }
}

/// IPVS allows a destination of another family only for tunnelling.
fn check_dest_family(addr: &ServiceAddr, d: &DestConfig) -> Result<()> {
    // fwmark services too: they have a family (-6 or IPv4), as in IPVS.
    if addr.family() != Family::of(&d.addr) && d.forward != Forward::Tunnel {
        return Err(Error::AfNotSupported);
    }
    Ok(())
}
