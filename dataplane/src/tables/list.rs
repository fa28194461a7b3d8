//! Reading the tables back: the listing (`ipvsadm -L`) and the rate estimator's samples.

use ebpf_common::{self as c, MAX_SERVICES, Service, ServiceKey};

use super::convert::{dest_config, local_addr, service_config};
use super::transaction::{Snapshot, laddrs_of};
use crate::error::{Error, Result};
use crate::maps::{Maps, lookup};
use crate::model::*;
use crate::{estimator, stats};

/// One rate-estimator sample of every service and destination (the timers' 2-second period).
pub fn sample_rates(maps: &mut Maps) -> Result<()> {
    let snap = Snapshot::load(maps)?;
    for svc in snap.services.values() {
        let s = stats::read(&maps.svc_stats, svc.id)?;
        estimator::sample(&mut maps.est, c::est_key_service(svc.id), &s);
        for (id, _) in snap.dests.get(&svc.id).map(|v| v.as_slice()).unwrap_or(&[]) {
            let s = stats::read(&maps.dest_stats, *id)?;
            estimator::sample(&mut maps.est, c::est_key_dest(*id), &s);
        }
    }
    Ok(())
}

/// Services (all, or the one at `only`) with destinations, counters and connection counts.
pub fn list(maps: &mut Maps, only: Option<&ServiceAddr>) -> Result<Vec<ServiceEntry>> {
    let snap = Snapshot::load(maps)?;
    let mut keys: Vec<(ServiceKey, Service)> = match only {
        Some(a) => snap.service(a, Error::NoSuchService).into_iter().collect(),
        None => snap.services.iter().map(|(k, v)| (*k, *v)).collect(),
    };
    // Insertion order: ids come from a cursor.
    keys.sort_by_key(|(_, s)| s.id.wrapping_sub(snap.next_service_id) % MAX_SERVICES);
    let counts = crate::conns::per_dest_counts(maps)?;
    let laddr_conns = if maps.laddrs.keys().next().is_some() {
        crate::conns::per_laddr_counts(maps)?
    } else {
        Default::default()
    };
    let templates = crate::conns::templates_per_dest(maps)?;
    let mut out = Vec::with_capacity(keys.len());
    for (key, svc) in keys {
        let meta = lookup("read SVC_META", maps.svc_meta.get(&svc.id, 0))?;
        let mut dests = Vec::new();
        for (id, d) in snap.dests.get(&svc.id).map(|v| v.as_slice()).unwrap_or(&[]) {
            let (active, inact) = counts.get(id).copied().unwrap_or((0, 0));
            dests.push(DestEntry {
                config: dest_config(d),
                active_conns: active,
                inact_conns: inact,
                persist_conns: templates.get(id).copied().unwrap_or(0),
                stats: stats::read(&maps.dest_stats, *id)?,
                rates: Stats::default(),
            });
        }
        out.push(ServiceEntry {
            config: service_config(&key, &svc, meta),
            dests,
            stats: stats::read(&maps.svc_stats, svc.id)?,
            rates: Stats::default(),
            local_addrs: laddrs_of(maps, svc.id)
                .into_iter()
                .map(|(k, l)| {
                    let conns = laddr_conns.get(&(svc.id, k.addr)).copied().unwrap_or(0);
                    local_addr(&k, &l, conns)
                })
                .collect(),
            deny: crate::acl::entries(maps, svc.id, AclKind::Deny),
            allow: crate::acl::entries(maps, svc.id, AclKind::Allow),
        });
        // Rates: one estimator sample per listing (or per keepalived period).
        let entry = out.last_mut().expect("just pushed");
        entry.rates = estimator::sample(&mut maps.est, c::est_key_service(svc.id), &entry.stats);
        let ids = snap.dests.get(&svc.id).map(|v| v.as_slice()).unwrap_or(&[]);
        for ((id, _), d) in ids.iter().zip(entry.dests.iter_mut()) {
            d.rates = estimator::sample(&mut maps.est, c::est_key_dest(*id), &d.stats);
        }
    }
    Ok(out)
}
