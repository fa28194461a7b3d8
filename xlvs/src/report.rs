//! What `xlvs status` (text and `--json`), `xlvs services` and `xlvs metrics` report, gathered
//! in one place: the program, its attachments, the timers, the tables and every counter.

use anyhow::{Context, Result};
use dataplane::model::{ServiceAddr, ServiceEntry, Stats};
use dataplane::stats::COUNTER_NAMES;
use dataplane::{Dataplane, Options};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Serialize)]
pub struct Status {
    pub pin_dir: String,
    pub loaded: bool,
    /// The main program and every tail-call stage, with the verifier's figures.
    pub programs: Vec<Program>,
    pub timers_running: bool,
    pub interfaces: Vec<String>,
    pub tables: BTreeMap<&'static str, Fill>,
    /// The connection table's entries, evictions and table-full policy (absent when not loaded).
    pub conn_table: Option<ConnTable>,
    pub counters: BTreeMap<&'static str, u64>,
    /// Why the data plane may balance nothing (empty when all is well).
    pub warnings: Vec<String>,
}

#[derive(Serialize)]
pub struct Program {
    pub name: String,
    pub id: u32,
    pub verified_insns: Option<u32>,
    pub jited_bytes: u32,
}

#[derive(Serialize)]
pub struct ConnTable {
    /// Entries (two per NAT/FULLNAT connection, one per DR/TUN connection).
    pub entries: u64,
    pub capacity_entries: u64,
    /// Entries the LRU evicted since the table was made.
    pub evicted: u64,
    /// `evict` or `refuse` (`xlvs set table_full`).
    pub when_full: &'static str,
}

#[derive(Serialize, Clone, Copy)]
pub struct Fill {
    pub used: u32,
    pub capacity: u32,
}

/// The status of the data plane at `opts` (`dp`: opened when it is loaded).
pub fn status(opts: &Options, dp: Option<&mut Dataplane>) -> Result<Status> {
    let pin_dir = opts.pin_dir.display().to_string();
    let Some(dp) = dp else {
        return Ok(Status {
            pin_dir,
            loaded: false,
            programs: Vec::new(),
            timers_running: false,
            interfaces: Vec::new(),
            tables: BTreeMap::new(),
            conn_table: None,
            counters: BTreeMap::new(),
            warnings: Vec::new(),
        });
    };
    let programs = dataplane::programs_status(&opts.pin_dir)?
        .into_iter()
        .map(|(name, p)| Program {
            name,
            id: p.id,
            verified_insns: p.verified_insns,
            jited_bytes: p.jited_bytes,
        })
        .collect();
    let timers_running = dataplane::timers::running(&opts.pin_dir);
    let interfaces = dataplane::attached(&opts.pin_dir);
    let f = dp.fill().context("reading table sizes")?;
    let tables = BTreeMap::from([
        (
            "services",
            Fill {
                used: f.services,
                capacity: f.services_max,
            },
        ),
        (
            "dests",
            Fill {
                used: f.dests,
                capacity: f.dests_max,
            },
        ),
        (
            "conns",
            Fill {
                used: f.conns,
                capacity: f.conns_max,
            },
        ),
    ]);
    let values = dp.counters()?;
    let counters = COUNTER_NAMES
        .iter()
        .map(|(i, name)| (*name, values.get(*i as usize).copied().unwrap_or(0)))
        .collect();
    let warnings = warnings(&opts.pin_dir, f.services, &interfaces, timers_running);
    Ok(Status {
        pin_dir,
        loaded: true,
        programs,
        timers_running,
        interfaces,
        tables,
        conn_table: Some(ConnTable {
            entries: f.conn_entries,
            capacity_entries: f.conn_entries_max,
            evicted: f.conn_evicted,
            when_full: f.table_full.name(),
        }),
        counters,
        warnings,
    })
}

/// The states in which programmed tables balance nothing, or badly.
pub fn warnings(
    pin_dir: &std::path::Path,
    services: u32,
    interfaces: &[String],
    timers_running: bool,
) -> Vec<String> {
    let mut w = Vec::new();
    if services > 0 && interfaces.is_empty() {
        w.push(format!(
            "{services} services are programmed but the data plane is attached to no interface: \
             no packet is balanced (run `xlvs attach IFACE…` or start xlvs.service)"
        ));
    }
    if services > 0 && !timers_running {
        w.push(format!(
            "no process runs the timers of {}: connections never expire and lc/wlc/... counts \
             drift (run `xlvs timers` or start xlvs-timers.service)",
            pin_dir.display()
        ));
    }
    w.extend(forwarding_warnings(interfaces));
    w
}

/// The attached interfaces on which IPv4 forwarding is off: there the kernel's FIB lookup the
/// packet path forwards with refuses every packet (kernel IPVS' DR needs no forwarding; XDP does),
/// so nothing is balanced. Read in the caller's network namespace.
pub fn forwarding_warnings(interfaces: &[String]) -> Vec<String> {
    interfaces
        .iter()
        .filter(|i| {
            std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{i}/forwarding"))
                .is_ok_and(|v| v.trim() == "0")
        })
        .map(|i| {
            format!(
                "forwarding is off on {i}: the packet path cannot forward what arrives there \
                 (run `sysctl -w net.ipv4.conf.{i}.forwarding=1`, and \
                 net.ipv6.conf.{i}.forwarding=1 for IPv6 services)"
            )
        })
        .collect()
}

/// Opens the data plane at `opts` if it is loaded (never creates it).
pub fn open_if_loaded(opts: &Options) -> Result<Option<Dataplane>> {
    if !dataplane::loader::is_loaded(&opts.pin_dir) {
        return Ok(None);
    }
    Ok(Some(Dataplane::open(opts)?))
}

/// `xlvs services`: every service as JSON (an xlvs extension beside `ipvsadm -Ln`).
#[derive(Serialize)]
pub struct ServiceJson {
    /// `tcp`, `udp`, `sctp` or `fwmark`.
    pub protocol: String,
    pub address: Option<String>,
    pub port: Option<u16>,
    pub fwmark: Option<u32>,
    pub family: &'static str,
    pub scheduler: &'static str,
    pub persistent: Option<u32>,
    pub netmask: u8,
    pub one_packet: bool,
    pub synproxy: bool,
    pub stats: StatsJson,
    pub rates: StatsJson,
    pub reals: Vec<RealJson>,
    pub local_addresses: Vec<LocalAddrJson>,
    pub deny: Vec<String>,
    pub allow: Vec<String>,
}

#[derive(Serialize)]
pub struct RealJson {
    pub address: String,
    pub port: u16,
    pub forward: &'static str,
    pub weight: i32,
    pub upper_threshold: u32,
    pub lower_threshold: u32,
    pub active_conns: u32,
    pub inactive_conns: u32,
    pub persistent_conns: u32,
    pub stats: StatsJson,
    pub rates: StatsJson,
}

#[derive(Serialize)]
pub struct LocalAddrJson {
    pub address: String,
    pub interface: Option<String>,
    pub conns: u64,
    pub port_conflicts: u64,
}

#[derive(Serialize)]
pub struct StatsJson {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
}

impl From<&Stats> for StatsJson {
    fn from(s: &Stats) -> StatsJson {
        StatsJson {
            conns: s.conns,
            inpkts: s.inpkts,
            outpkts: s.outpkts,
            inbytes: s.inbytes,
            outbytes: s.outbytes,
        }
    }
}

pub fn service_json(s: &ServiceEntry) -> ServiceJson {
    let c = &s.config;
    let (protocol, address, port, fwmark) = match c.addr {
        ServiceAddr::Inet { proto, addr, port } => (
            proto.name().to_lowercase(),
            Some(addr.to_string()),
            Some(port),
            None,
        ),
        ServiceAddr::Fwmark { mark, .. } => ("fwmark".to_string(), None, None, Some(mark)),
    };
    ServiceJson {
        protocol,
        address,
        port,
        fwmark,
        family: match c.addr.family() {
            dataplane::model::Family::V4 => "inet",
            dataplane::model::Family::V6 => "inet6",
        },
        scheduler: c.scheduler.name(),
        persistent: c.persistent,
        netmask: c.netmask,
        one_packet: c.one_packet,
        synproxy: c.synproxy,
        stats: (&s.stats).into(),
        rates: (&s.rates).into(),
        reals: s
            .dests
            .iter()
            .map(|d| RealJson {
                address: d.config.addr.to_string(),
                port: d.config.port,
                forward: d.config.forward.name(),
                weight: d.config.weight,
                upper_threshold: d.config.u_threshold,
                lower_threshold: d.config.l_threshold,
                active_conns: d.active_conns,
                inactive_conns: d.inact_conns,
                persistent_conns: d.persist_conns,
                stats: (&d.stats).into(),
                rates: (&d.rates).into(),
            })
            .collect(),
        local_addresses: s
            .local_addrs
            .iter()
            .map(|l| LocalAddrJson {
                address: l.addr.to_string(),
                interface: l.ifname.clone(),
                conns: l.conns,
                port_conflicts: l.port_conflicts,
            })
            .collect(),
        deny: s.deny.iter().map(|a| a.to_string()).collect(),
        allow: s.allow.iter().map(|a| a.to_string()).collect(),
    }
}
