//! Connection synchronisation (`ipvsadm --start-daemon`, crate `syncd`): the connection table in
//! IPVS' terms for a master to announce, and the connections a master announced written into
//! this table, for a backup, exactly as the XDP program would have created them (see
//! `new_connection` in ebpf/src/path/open.rs: a CLIENT entry, plus a REPLY entry for NAT
//! connections that cannot have one entry).
//!
//! States use IPVS' numbering per protocol (IP_VS_TCP_S_*, 0 for UDP), as they travel.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ebpf_common::{
    self as c, CONN_F_PERSIST, CONN_F_REPLY, CONN_F_SYNCED, CONN_F_SYNPROXY, Conn, FlowKey,
};

use crate::conns::{live, live_templates, now_ns};
use crate::error::Result;
use crate::maps::{Maps, err, lookup};
use crate::model::*;

/// One connection (or persistence template) as IPVS' sync protocol describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncConn {
    /// IPPROTO_* (templates of fwmark services: 0, IPPROTO_IP).
    pub proto: u8,
    /// Client address (the client network for templates).
    pub caddr: IpAddr,
    /// Client port.
    pub cport: u16,
    /// Virtual address.
    pub vaddr: IpAddr,
    /// Virtual port.
    pub vport: u16,
    /// Real server address.
    pub daddr: IpAddr,
    /// Real server port.
    pub dport: u16,
    /// The fwmark of the service (0 unless a fwmark service).
    pub fwmark: u32,
    /// IPVS state number (IP_VS_TCP_S_*; UDP 0; templates 1, assured).
    pub state: u16,
    /// Forwarding method.
    pub forward: Forward,
    /// Timeout of the current state in seconds (templates: the persistence timeout).
    pub timeout: u32,
    /// A persistence template: `caddr` is the client network, `cport` 0.
    pub template: bool,
    /// Export only: CLOCK_MONOTONIC_COARSE ns of the last packet in either direction (or the
    /// template's last refresh).
    pub last_seen: u64,
}

/// What a backup did with the connections it was given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// New connections (or templates) written.
    pub inserted: u32,
    /// Known ones whose state and timeout were refreshed.
    pub refreshed: u32,
    /// No local service or destination matches (IPVS keeps such connections unbound; our
    /// packet path needs the destination's id for its counters and next-hop cache).
    pub no_service: u32,
    /// Protocols or methods this data plane does not sync (SCTP, FULLNAT).
    pub unsupported: u32,
}

/// IPVS' UDP state number (IP_VS_UDP_S_NORMAL) <-> ours.
fn wire_state(proto: u8, state: u8) -> u16 {
    if proto == c::IPPROTO_TCP {
        state as u16
    } else {
        0
    }
}

fn local_state(proto: u8, state: u16) -> Option<u8> {
    match proto {
        c::IPPROTO_TCP if state < c::S_UDP as u16 => Some(state as u8),
        c::IPPROTO_UDP => Some(c::S_UDP),
        _ => None,
    }
}

/// Services by id (key, value).
fn services_by_id(maps: &Maps) -> Result<HashMap<u32, (c::ServiceKey, c::Service)>> {
    let mut out = HashMap::new();
    for item in maps.services.iter() {
        let (k, v) = item.map_err(|e| err("read SERVICES", e))?;
        out.insert(v.id, (k, v));
    }
    Ok(out)
}

/// Every live connection a master announces: CLIENT entries not expired, FULLNAT and SYNPROXY
/// connections still setting up left out (the protocol carries no local address or sequence
/// delta of ours), and so are connections learnt from a master and not seen here since
/// (`CONN_F_SYNCED`); then the live persistence templates not learnt from a master
/// (`PERSIST_SYNCED`: the packet path refreshes templates in place, so unlike connections they
/// stay marked; a director that took over announces the templates it creates, not those it
/// learnt).
pub fn export(maps: &Maps) -> Result<Vec<SyncConn>> {
    let services = services_by_id(maps)?;
    let mut out = Vec::new();
    for (k, v, _) in live(maps)? {
        if v.fwd == c::FWD_FULLNAT || v.flags & (CONN_F_SYNPROXY | CONN_F_SYNCED) != 0 {
            continue;
        }
        let Some((skey, _)) = services.get(&v.svc_id) else {
            continue;
        };
        let cfam = Family::from_raw(k.af);
        out.push(SyncConn {
            proto: k.proto,
            caddr: words_to_ip(&k.src, cfam),
            cport: u16::from_be(k.sport),
            vaddr: words_to_ip(&k.dst, cfam),
            vport: u16::from_be(k.dport),
            daddr: words_to_ip(&v.to_addr, Family::from_raw(v.af)),
            dport: u16::from_be(v.to_port),
            fwmark: if skey.proto == c::PROTO_FWMARK {
                skey.addr[0]
            } else {
                0
            },
            state: wire_state(k.proto, v.state),
            forward: Forward::from_raw(v.fwd),
            timeout: v.timeout,
            template: false,
            last_seen: v.last_seen,
        });
    }
    for (k, t, skey, _) in live_templates(maps)? {
        if t._pad == c::PERSIST_SYNCED {
            continue;
        }
        let Some(dest) = lookup("read DESTS", maps.dests.get(&t.dest_id, 0))? else {
            continue;
        };
        let Some((_, svc)) = services.get(&k.svc_id) else {
            continue;
        };
        if dest.fwd == c::FWD_FULLNAT {
            continue;
        }
        let fam = Family::from_raw(k.af);
        let fwmark = (skey.proto == c::PROTO_FWMARK).then_some(skey.addr[0]);
        out.push(SyncConn {
            // IPVS' fwmark templates: IPPROTO_IP, the mark as virtual address, port 0.
            proto: if fwmark.is_some() { 0 } else { skey.proto },
            caddr: words_to_ip(&k.caddr, fam),
            cport: 0,
            vaddr: match fwmark {
                Some(m) => fwmark_vaddr(m, fam),
                None => words_to_ip(&skey.addr, fam),
            },
            vport: u16::from_be(skey.port),
            daddr: words_to_ip(&dest.addr, Family::from_raw(dest.af)),
            dport: u16::from_be(dest.port),
            fwmark: fwmark.unwrap_or(0),
            state: 1,
            forward: Forward::from_raw(dest.fwd),
            timeout: svc.persist_timeout,
            template: true,
            last_seen: t.last_seen,
        });
    }
    Ok(out)
}

fn fwmark_vaddr(mark: u32, fam: Family) -> IpAddr {
    let mut words = [0u32; 4];
    words[0] = mark.to_be();
    words_to_ip(&words, fam)
}

/// The destinations of each service, for a backup: read in one walk of `DESTS`, and again when
/// a lookup misses (at most once a second), so a datagram costs point lookups, not a walk of
/// every destination. A cached hit is checked against `DESTS` before use (ids are reused).
#[derive(Default)]
pub struct DestCache {
    by_svc: HashMap<u32, Vec<(u32, c::Dest)>>,
    loaded: Option<Instant>,
}

impl DestCache {
    fn reload(&mut self, maps: &Maps) -> Result<()> {
        let mut by_svc: HashMap<u32, Vec<(u32, c::Dest)>> = HashMap::new();
        for item in maps.dests.iter() {
            let (id, d) = item.map_err(|e| err("read DESTS", e))?;
            by_svc.entry(d.svc_id).or_default().push((id, d));
        }
        self.by_svc = by_svc;
        self.loaded = Some(Instant::now());
        Ok(())
    }

    /// The destination (daddr, dport) of service `svc_id`, then its port-0 one when dport is
    /// the virtual port (IPVS' `dport ^ vport` lookup), as it is in `DESTS` now.
    fn find(&mut self, maps: &Maps, svc_id: u32, s: &SyncConn) -> Result<Option<(u32, c::Dest)>> {
        if self.loaded.is_none() {
            self.reload(maps)?;
        }
        if let Some(hit) = self.search(maps, svc_id, s)? {
            return Ok(Some(hit));
        }
        if self
            .loaded
            .is_some_and(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.reload(maps)?;
            return self.search(maps, svc_id, s);
        }
        Ok(None)
    }

    fn search(&self, maps: &Maps, svc_id: u32, s: &SyncConn) -> Result<Option<(u32, c::Dest)>> {
        let daddr = ip_to_words(&s.daddr);
        let dfam = Family::of(&s.daddr).raw();
        let same = |d: &c::Dest, port: u16| {
            d.svc_id == svc_id && d.addr == daddr && d.af == dfam && d.port == port.to_be()
        };
        let Some(dests) = self.by_svc.get(&svc_id) else {
            return Ok(None);
        };
        for port in [Some(s.dport), (s.dport == s.vport).then_some(0)]
            .into_iter()
            .flatten()
        {
            if let Some((id, _)) = dests.iter().find(|(_, d)| same(d, port)) {
                // Still that destination? (removed, or its id reused since the walk)
                if let Some(d) = lookup("read DESTS", maps.dests.get(id, 0))?
                    && same(&d, port)
                {
                    return Ok(Some((*id, d)));
                }
            }
        }
        Ok(None)
    }
}

/// IPVS' ip_vs_find_dest: the service by fwmark or (proto, vaddr, vport), then by port 0
/// (point lookups); the destination through `cache`.
fn find(
    maps: &Maps,
    cache: &mut DestCache,
    s: &SyncConn,
) -> Result<Option<(c::Service, u32, c::Dest)>> {
    let fam = Family::of(&s.vaddr);
    let key = |port: u16| {
        if s.fwmark != 0 {
            c::ServiceKey {
                addr: [s.fwmark, 0, 0, 0],
                port: 0,
                proto: c::PROTO_FWMARK,
                af: fam.raw(),
            }
        } else {
            c::ServiceKey {
                addr: ip_to_words(&s.vaddr),
                port: port.to_be(),
                proto: s.proto,
                af: fam.raw(),
            }
        }
    };
    let mut svc = lookup("read SERVICES", maps.services.get(&key(s.vport), 0))?;
    if svc.is_none() && s.vport != 0 && s.fwmark == 0 {
        svc = lookup("read SERVICES", maps.services.get(&key(0), 0))?;
    }
    let Some(svc) = svc else {
        return Ok(None);
    };
    Ok(cache.find(maps, svc.id, s)?.map(|(id, d)| (svc, id, d)))
}

/// Writes announced connections into the table (a backup's job). A connection already known
/// with the same destination gets the announced state and timeout and counts as just seen; one
/// known with another destination is replaced (IPVS expires it and creates the new one).
pub fn import(maps: &mut Maps, cache: &mut DestCache, conns: &[SyncConn]) -> Result<ImportReport> {
    let now = now_ns();
    let mut report = ImportReport::default();
    for s in conns {
        let Some((svc, dest_id, dest)) = find(maps, cache, s)? else {
            report.no_service += 1;
            continue;
        };
        if dest.fwd == c::FWD_FULLNAT {
            report.unsupported += 1;
            continue;
        }
        if s.template {
            template(maps, s, &svc, dest_id, now, &mut report)?;
            continue;
        }
        let Some(state) = local_state(s.proto, s.state) else {
            report.unsupported += 1;
            continue;
        };
        connection(maps, s, &svc, dest_id, &dest, state, now, &mut report)?;
    }
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
fn connection(
    maps: &mut Maps,
    s: &SyncConn,
    svc: &c::Service,
    dest_id: u32,
    dest: &c::Dest,
    state: u8,
    now: u64,
    report: &mut ImportReport,
) -> Result<()> {
    let af = Family::of(&s.caddr).raw();
    let key = FlowKey {
        src: ip_to_words(&s.caddr),
        dst: ip_to_words(&s.vaddr),
        sport: s.cport.to_be(),
        dport: s.vport.to_be(),
        proto: s.proto,
        af,
        _pad: [0; 2],
    };
    let timeout = if s.timeout != 0 {
        s.timeout
    } else {
        lookup("read TIMEOUTS", maps.timeouts.get(&(state as u32), 0))?
            .filter(|t| *t != 0)
            .unwrap_or(c::DEFAULT_TIMEOUTS[state as usize])
    };
    let to_addr = ip_to_words(&s.daddr);
    let to_port = s.dport.to_be();
    if let Some(mut cur) = lookup("read CONNS", maps.conns.get(&key, 0))?
        && cur.flags & CONN_F_REPLY == 0
        && cur.to_addr == to_addr
        && cur.to_port == to_port
    {
        // Same connection: only what the master knows better (state, timeout, liveness).
        cur.state = state;
        cur.timeout = timeout;
        cur.last_seen = now;
        cur.flags |= CONN_F_SYNCED;
        maps.conns
            .insert(key, cur, 0)
            .map_err(|e| err("write CONNS", e))?;
        report.refreshed += 1;
        return Ok(());
    }
    let mut client = Conn {
        to_addr,
        to_port,
        dest_id,
        svc_id: svc.id,
        state,
        fwd: dest.fwd,
        af: dest.af,
        flags: CONN_F_SYNCED
            | if svc.flags & c::SVC_F_PERSISTENT != 0 {
                CONN_F_PERSIST
            } else {
                0
            },
        timeout,
        last_seen: now,
        ..Default::default()
    };
    if dest.fwd == c::FWD_MASQ
        && svc.flags & c::SVC_F_SYNPROXY == 0
        && crate::nat_owners::derivable(maps, &key, dest.af, &to_addr, to_port)?
    {
        // As the packet path opens it: the real's replies find the CLIENT entry.
        client.xflags = c::CONN_X_ONE_ENTRY;
    } else if dest.fwd == c::FWD_MASQ {
        // The REPLY entry first: a client packet finding the CLIENT entry expects it.
        let reply_key = c::reply_key_of(&client, &key);
        let reply = Conn {
            to_addr: key.dst,
            to_port: key.dport,
            via_addr: key.src,
            via_port: key.sport,
            dest_id,
            svc_id: svc.id,
            fwd: dest.fwd,
            af,
            flags: CONN_F_REPLY,
            ..Default::default()
        };
        crate::conns::insert(maps, reply_key, reply)?;
    }
    crate::conns::insert(maps, key, client)?;
    report.inserted += 1;
    Ok(())
}

fn template(
    maps: &mut Maps,
    s: &SyncConn,
    svc: &c::Service,
    dest_id: u32,
    now: u64,
    report: &mut ImportReport,
) -> Result<()> {
    let key = c::PersistKey {
        caddr: ip_to_words(&s.caddr),
        svc_id: svc.id,
        af: Family::of(&s.caddr).raw(),
        _pad: [0; 3],
    };
    let known = lookup("read PERSIST", maps.persist.get(&key, 0))?;
    let t = c::Persist {
        dest_id,
        _pad: c::PERSIST_SYNCED,
        last_seen: now,
    };
    maps.persist
        .insert(key, t, 0)
        .map_err(|e| err("write PERSIST", e))?;
    if known.is_some_and(|k| k.dest_id == dest_id) {
        report.refreshed += 1;
    } else {
        report.inserted += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_travel_in_ipvs_numbering() {
        assert_eq!(wire_state(c::IPPROTO_TCP, c::S_ESTABLISHED), 1);
        assert_eq!(wire_state(c::IPPROTO_UDP, c::S_UDP), 0);
        assert_eq!(local_state(c::IPPROTO_UDP, 0), Some(c::S_UDP));
        assert_eq!(local_state(c::IPPROTO_TCP, 5), Some(c::S_TIME_WAIT));
        assert_eq!(local_state(c::IPPROTO_TCP, 11), None);
        assert_eq!(local_state(c::IPPROTO_SCTP, 1), None);
    }

    #[test]
    fn fwmark_templates_carry_the_mark_as_address() {
        assert_eq!(
            fwmark_vaddr(0x0102_0304, Family::V4),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
    }
}
