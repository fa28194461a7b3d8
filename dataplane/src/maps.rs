//! Typed handles on the pinned maps, opened by path from any process.

use std::path::Path;

use aya::maps::{Array, DevMapHash, HashMap, LpmTrie, Map, MapData, MapError, PerCpuArray};
use ebpf_common::{
    AclKey, Conn, Dest, Estimate, FlowKey, FwmarkPrefix, FwmarkRuleKey, FwmarkRules, Laddr,
    LaddrKey, Lblc, LblcKey, NextHop, Persist, PersistKey, Service, ServiceKey, ServiceMeta, Stats,
    maps as names,
};

use crate::conncount::DestConnsMap;
use crate::fill::ConnFillMap;

use crate::error::{Error, Result};

pub struct Maps {
    pub services: HashMap<MapData, ServiceKey, Service>,
    pub dests: HashMap<MapData, u32, Dest>,
    pub sched_table: Array<MapData, u32>,
    pub conns: HashMap<MapData, FlowKey, Conn>,
    pub dest_nh: Array<MapData, NextHop>,
    pub svc_stats: PerCpuArray<MapData, Stats>,
    pub dest_stats: PerCpuArray<MapData, Stats>,
    pub counters: PerCpuArray<MapData, u64>,
    pub timeouts: Array<MapData, u32>,
    pub tx_ports: DevMapHash<MapData>,
    pub svc_meta: HashMap<MapData, u32, ServiceMeta>,
    pub meta: Array<MapData, u32>,
    pub est: HashMap<MapData, u32, Estimate>,
    pub laddrs: HashMap<MapData, LaddrKey, Laddr>,
    pub persist: HashMap<MapData, PersistKey, Persist>,
    pub config: Array<MapData, u32>,
    pub laddr_pool: HashMap<MapData, u32, LaddrKey>,
    pub laddr_count: Array<MapData, u32>,
    pub vips: HashMap<MapData, ServiceKey, u32>,
    pub acl: HashMap<MapData, AclKey, u32>,
    pub acl_state: Array<MapData, u32>,
    pub dest_conns: DestConnsMap,
    pub conn_fill: ConnFillMap,
    pub lblc: HashMap<MapData, LblcKey, Lblc>,
    pub fwmark_class: LpmTrie<MapData, FwmarkPrefix, FwmarkRules>,
    pub fwmark_rules: HashMap<MapData, FwmarkRuleKey, u32>,
    pub fwmark_ports_free: Array<MapData, [u32; ebpf_common::FWMARK_PORT_WORDS as usize]>,
    pub addr_filter: Array<MapData, u32>,
    pub nat_owners: HashMap<MapData, ServiceKey, ServiceKey>,
}

fn open(dir: &Path, name: &str, wrap: fn(MapData) -> Map) -> Result<Map> {
    let path = dir.join(name);
    let data = MapData::from_pin(&path).map_err(|e| {
        Error::Unavailable(format!("cannot open pinned map {}: {e}", path.display()))
    })?;
    Ok(wrap(data))
}

fn typed<T: TryFrom<Map, Error = MapError>>(map: Map, name: &str) -> Result<T> {
    T::try_from(map)
        .map_err(|e| Error::Unavailable(format!("map {name} has an unexpected layout: {e}")))
}

impl Maps {
    pub fn open(dir: &Path) -> Result<Maps> {
        macro_rules! m {
            ($name:expr, $variant:ident) => {
                typed(open(dir, $name, Map::$variant)?, $name)?
            };
        }
        Ok(Maps {
            services: m!(names::SERVICES, HashMap),
            dests: m!(names::DESTS, HashMap),
            sched_table: m!(names::SCHED_TABLE, Array),
            conns: m!(names::CONNS, LruHashMap),
            dest_nh: m!(names::DEST_NH, Array),
            svc_stats: m!(names::SVC_STATS, PerCpuArray),
            dest_stats: m!(names::DEST_STATS, PerCpuArray),
            counters: m!(names::COUNTERS, PerCpuArray),
            timeouts: m!(names::TIMEOUTS, Array),
            tx_ports: m!(names::TX_PORTS, DevMapHash),
            svc_meta: m!(names::SVC_META, HashMap),
            meta: m!(names::META, Array),
            est: m!(names::EST, HashMap),
            laddrs: m!(names::LADDRS, HashMap),
            persist: m!(names::PERSIST, LruHashMap),
            config: m!(names::CONFIG, Array),
            laddr_pool: m!(names::LADDR_POOL, HashMap),
            laddr_count: m!(names::LADDR_COUNT, Array),
            vips: m!(names::VIPS, HashMap),
            acl: m!(names::ACL, HashMap),
            acl_state: m!(names::ACL_STATE, Array),
            dest_conns: DestConnsMap::open(dir)?,
            conn_fill: ConnFillMap::open(dir)?,
            lblc: m!(names::LBLC, LruHashMap),
            fwmark_class: m!(names::FWMARK_CLASS, LpmTrie),
            fwmark_rules: m!(names::FWMARK_RULES, HashMap),
            fwmark_ports_free: m!(names::FWMARK_PORTS_FREE, Array),
            addr_filter: m!(names::ADDR_FILTER, Array),
            nat_owners: m!(names::NAT_OWNERS, HashMap),
        })
    }
}

/// Turns an aya map error into ours, keeping the errno (so ENOMEM/E2BIG become "Memory allocation problem").
pub fn err(context: &str, e: MapError) -> Error {
    match e {
        MapError::SyscallError(s) => Error::map(context, s.io_error),
        MapError::KeyNotFound => {
            Error::map(context, std::io::Error::from_raw_os_error(libc::ENOENT))
        }
        other => Error::Unavailable(format!("{context}: {other}")),
    }
}

/// A lookup that treats "not found" as `None` and anything else as an error.
pub fn lookup<T>(context: &str, r: std::result::Result<T, MapError>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(MapError::KeyNotFound) => Ok(None),
        Err(MapError::SyscallError(s)) if s.io_error.raw_os_error() == Some(libc::ENOENT) => {
            Ok(None)
        }
        Err(e) => Err(err(context, e)),
    }
}
