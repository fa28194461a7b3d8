//! Desired services → the writes that make the data plane match, and only those.
//!
//! Sessions are never flushed here: a service or destination that stays is edited in place, so
//! established connections keep their real (IPVS semantics for weight changes and removals).

use super::desired::DesiredService;
use super::loglines;
use dataplane::model::{
    AclKind, DestConfig, DestEntry, LocalAddr, ServiceAddr, ServiceConfig, ServiceEntry, Stats,
};
use dataplane::{Dataplane, Error};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// One write to the data plane.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    AddService(ServiceConfig),
    EditService(ServiceConfig),
    DelService(ServiceAddr),
    AddDest(ServiceAddr, DestConfig),
    EditDest(ServiceAddr, DestConfig),
    DelDest(ServiceAddr, IpAddr, u16),
    AddLaddr(ServiceAddr, LocalAddr),
    DelLaddr(ServiceAddr, IpAddr),
    AddAcl(ServiceAddr, AclKind, IpAddr),
    DelAcl(ServiceAddr, AclKind, IpAddr),
}

impl fmt::Display for Op {
    /// In keepalived's log wording where it has one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rs = |a: &IpAddr, p: &u16| SocketAddr::new(*a, *p);
        match self {
            Op::AddService(c) => write!(f, "Adding virtual server {}", c.addr),
            Op::EditService(c) => write!(f, "Updating virtual server {}", c.addr),
            Op::DelService(a) => write!(f, "Removing virtual server {a}"),
            Op::AddDest(s, d) => f.write_str(&loglines::adding_real(s, &d.addr, d.port)),
            Op::EditDest(s, d) => write!(
                f,
                "Updating service {} of VS {s} (weight {})",
                rs(&d.addr, &d.port),
                d.weight
            ),
            Op::DelDest(s, a, p) => f.write_str(&loglines::removing_real(s, a, *p)),
            Op::AddLaddr(s, l) => write!(f, "Adding local address {} to VS {s}", l.addr),
            Op::DelLaddr(s, a) => write!(f, "Removing local address {a} from VS {s}"),
            Op::AddAcl(s, k, a) => write!(f, "Adding {a} to the {} list of VS {s}", acl_name(*k)),
            Op::DelAcl(s, k, a) => {
                write!(f, "Removing {a} from the {} list of VS {s}", acl_name(*k))
            }
        }
    }
}

fn acl_name(k: AclKind) -> &'static str {
    match k {
        AclKind::Deny => "deny",
        AclKind::Allow => "allow",
    }
}

/// The writes that make `have` (a service's list) equal `want`.
fn acl_ops(addr: ServiceAddr, kind: AclKind, have: &[IpAddr], want: &[IpAddr], ops: &mut Vec<Op>) {
    for a in have.iter().filter(|a| !want.contains(a)) {
        ops.push(Op::DelAcl(addr, kind, *a));
    }
    for a in want.iter().filter(|a| !have.contains(a)) {
        ops.push(Op::AddAcl(addr, kind, *a));
    }
}

/// The writes that turn `current` into `desired`. Services in `owned` (written by this daemon
/// before) that are no longer desired are removed; other services are never touched, as
/// keepalived leaves alone what `ipvsadm` added by hand.
pub fn plan(
    current: &[ServiceEntry],
    owned: &HashSet<ServiceAddr>,
    desired: &[DesiredService],
) -> Vec<Op> {
    let now: HashMap<ServiceAddr, &ServiceEntry> =
        current.iter().map(|s| (s.config.addr, s)).collect();
    let mut ops = Vec::new();
    for want in desired {
        let addr = want.config.addr;
        match now.get(&addr) {
            None => {
                ops.push(Op::AddService(want.config.clone()));
                ops.extend(want.dests.iter().map(|d| Op::AddDest(addr, *d)));
                ops.extend(want.laddrs.iter().map(|l| Op::AddLaddr(addr, l.clone())));
                acl_ops(addr, AclKind::Deny, &[], &want.deny, &mut ops);
                acl_ops(addr, AclKind::Allow, &[], &want.allow, &mut ops);
            }
            Some(have) => {
                if have.config != want.config {
                    ops.push(Op::EditService(want.config.clone()));
                }
                let key = |d: &DestConfig| (d.addr, d.port);
                let wanted: HashMap<_, _> = want.dests.iter().map(|d| (key(d), d)).collect();
                for d in &have.dests {
                    if !wanted.contains_key(&key(&d.config)) {
                        ops.push(Op::DelDest(addr, d.config.addr, d.config.port));
                    }
                }
                let had: HashMap<_, _> = have.dests.iter().map(|d| (key(&d.config), d)).collect();
                for d in &want.dests {
                    match had.get(&key(d)) {
                        None => ops.push(Op::AddDest(addr, *d)),
                        Some(h) if h.config != *d => ops.push(Op::EditDest(addr, *d)),
                        Some(_) => {}
                    }
                }
                let same = |a: &LocalAddr, b: &LocalAddr| a.addr == b.addr && a.ifname == b.ifname;
                for l in &have.local_addrs {
                    if !want.laddrs.iter().any(|w| same(w, l)) {
                        ops.push(Op::DelLaddr(addr, l.addr));
                    }
                }
                for l in &want.laddrs {
                    if !have.local_addrs.iter().any(|h| same(h, l)) {
                        ops.push(Op::AddLaddr(addr, l.clone()));
                    }
                }
                acl_ops(addr, AclKind::Deny, &have.deny, &want.deny, &mut ops);
                acl_ops(addr, AclKind::Allow, &have.allow, &want.allow, &mut ops);
            }
        }
    }
    let wanted: HashSet<ServiceAddr> = desired.iter().map(|d| d.config.addr).collect();
    let mut gone: Vec<_> = owned
        .iter()
        .filter(|a| !wanted.contains(a) && now.contains_key(a))
        .copied()
        .collect();
    gone.sort_by_key(|a| a.to_string());
    ops.extend(gone.into_iter().map(Op::DelService));
    ops
}

/// What the tables hold after a fully successful [`apply`] of a plan towards `desired` (for the
/// services in `desired`; counters are not part of it).
pub fn as_entries(desired: &[DesiredService]) -> Vec<ServiceEntry> {
    desired
        .iter()
        .map(|d| ServiceEntry {
            config: d.config.clone(),
            dests: d
                .dests
                .iter()
                .map(|c| DestEntry {
                    config: *c,
                    active_conns: 0,
                    inact_conns: 0,
                    persist_conns: 0,
                    stats: Stats::default(),
                    rates: Stats::default(),
                })
                .collect(),
            stats: Stats::default(),
            rates: Stats::default(),
            local_addrs: d.laddrs.clone(),
            deny: d.deny.clone(),
            allow: d.allow.clone(),
        })
        .collect()
}

/// Applies `ops` in one batch under the writer lock (scheduler tables are rebuilt once, at the
/// end). A failing write is reported and the others still happen, as keepalived does.
pub fn apply(dp: &mut Dataplane, ops: &[Op]) -> Vec<(Op, Error)> {
    let mut failed = Vec::new();
    if ops.is_empty() {
        return failed;
    }
    if let Err(e) = dp.hold_lock() {
        return ops.iter().map(|o| (o.clone(), e.clone_lossy())).collect();
    }
    for op in ops {
        let r = match op {
            Op::AddService(c) => dp.add_service(c),
            Op::EditService(c) => dp.edit_service(c),
            Op::DelService(a) => dp.del_service(a),
            Op::AddDest(s, d) => dp.add_dest(s, d),
            Op::EditDest(s, d) => dp.edit_dest(s, d),
            Op::DelDest(s, a, p) => dp.del_dest(s, *a, *p),
            Op::AddLaddr(s, l) => dp.add_laddr(s, l),
            Op::DelLaddr(s, a) => dp.del_laddr(s, *a),
            Op::AddAcl(s, k, a) => dp.add_acl(s, *k, *a),
            Op::DelAcl(s, k, a) => dp.del_acl(s, *k, *a),
        };
        if let Err(e) = r {
            failed.push((op.clone(), e));
        }
    }
    if let Err(e) = dp.release_lock() {
        failed.push((ops[ops.len() - 1].clone(), e));
    }
    failed
}

/// Errors are not Clone (they may wrap I/O errors); a lock failure is reported per op by text.
trait CloneLossy {
    fn clone_lossy(&self) -> Error;
}

impl CloneLossy for Error {
    fn clone_lossy(&self) -> Error {
        Error::Unavailable(self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::model::{Forward, Protocol};
    use std::net::Ipv4Addr;

    fn svc(port: u16) -> ServiceAddr {
        ServiceAddr::Inet {
            proto: Protocol::Tcp,
            addr: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 10)),
            port,
        }
    }

    fn dest(last: u8, weight: i32) -> DestConfig {
        let mut d = DestConfig::new(IpAddr::V4(Ipv4Addr::new(198, 18, 1, last)), 80);
        d.forward = Forward::Masq;
        d.weight = weight;
        d
    }

    fn entry(port: u16, dests: &[DestConfig]) -> ServiceEntry {
        as_entries(&[want(port, dests)]).remove(0)
    }

    fn want(port: u16, dests: &[DestConfig]) -> DesiredService {
        DesiredService {
            config: ServiceConfig::new(svc(port)),
            dests: dests.to_vec(),
            laddrs: Vec::new(),
            deny: Vec::new(),
            allow: Vec::new(),
        }
    }

    #[test]
    fn nothing_to_do_when_equal() {
        let cur = [entry(80, &[dest(1, 1), dest(2, 1)])];
        let owned = HashSet::from([svc(80)]);
        assert!(plan(&cur, &owned, &[want(80, &[dest(2, 1), dest(1, 1)])]).is_empty());
    }

    #[test]
    fn only_differences_are_written() {
        let cur = [
            entry(80, &[dest(1, 1), dest(2, 1)]),
            entry(81, &[]),
            entry(99, &[]),
        ];
        let owned = HashSet::from([svc(80), svc(81)]);
        let ops = plan(
            &cur,
            &owned,
            &[want(80, &[dest(1, 5), dest(3, 1)]), want(82, &[dest(1, 1)])],
        );
        assert_eq!(
            ops,
            [
                Op::DelDest(svc(80), dest(2, 1).addr, 80),
                Op::EditDest(svc(80), dest(1, 5)),
                Op::AddDest(svc(80), dest(3, 1)),
                Op::AddService(ServiceConfig::new(svc(82))),
                Op::AddDest(svc(82), dest(1, 1)),
                // 81 was ours and is gone; 99 was never ours (ipvsadm's) and stays.
                Op::DelService(svc(81)),
            ]
        );
    }
}
