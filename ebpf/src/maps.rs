//! The pinned maps: the ABI between the packet path and user space (layouts and names in
//! `ebpf-common`), what each holds and who writes it. All but JUMP are pinned by name under the
//! pin directory, so they outlive any process and a reloaded program adopts them. Scratch space
//! and hand-offs between stages live with the module that owns them.

use aya_ebpf::{
    macros::map,
    maps::{Array, DevMapHash, HashMap, LruHashMap, PerCpuArray, ProgramArray},
};
use ebpf_common::{
    Conn, DEFAULT_MAX_CONNS, Dest, FlowKey, MAX_DESTS, MAX_PORTS, MAX_SERVICES, N_STATES, NextHop,
    SCHED_POOL_SLOTS, Service, ServiceKey, Stats, counter,
};

/// Virtual services by (af, proto, vip, vport). Written by user space (dataplane), read here.
#[map]
pub static SERVICES: HashMap<ServiceKey, Service> = HashMap::pinned(MAX_SERVICES, 0);

/// Destinations by id. Written by user space; read here when a new connection is scheduled.
#[map]
pub static DESTS: HashMap<u32, Dest> = HashMap::pinned(MAX_DESTS, 0);

/// Scheduler tables: a pool of destination ids; each service reads its own
/// `[table_base, table_base + table_len)` range. Written by user space.
#[map]
pub static SCHED_TABLE: Array<u32> = Array::pinned(SCHED_POOL_SLOTS, 0);

/// Position in each service's table (rr/wrr walk it in order), shared by all CPUs so the order is
/// IPVS' global one (see sched.rs on races). Written here (new connections only).
#[map]
pub static RR_POS: Array<u64> = Array::pinned(MAX_SERVICES, 0);

/// Connections: two entries each, one per direction (see `ebpf_common::Conn`). Created and
/// updated here; listed by user space. LRU: a full table evicts the least recently used entry
/// (or refuses new connections first: see `fill.rs`). One LRU for all CPUs: per-CPU lists
/// (BPF_F_NO_COMMON_LRU) split the table into one share per possible CPU, so a director whose
/// new connections arrive on a few CPUs evicted at a fraction of its size. User space sizes it
/// (`max_conns * 2` plus the LRU's per-CPU free-list headroom).
#[map]
pub static CONNS: LruHashMap<FlowKey, Conn> = LruHashMap::pinned(DEFAULT_MAX_CONNS * 2, 0);

/// How full CONNS is and the table-full policy (one entry; `ebpf_common::ConnFill`). Counted
/// here with atomic adds and by user space through a shared mapping (BPF_F_MMAPABLE).
#[map]
pub static CONN_FILL: Array<ebpf_common::ConnFill> = Array::pinned(1, BPF_F_MMAPABLE);

/// Next hop towards each destination (index = destination id), cached from the FIB by the packet
/// path. Zeroed by user space when a destination id is (re)used.
#[map]
pub static DEST_NH: Array<NextHop> = Array::pinned(MAX_DESTS, 0);

/// Per-service counters (index = service id). Written here; read and zeroed by user space.
#[map]
pub static SVC_STATS: PerCpuArray<Stats> = PerCpuArray::pinned(MAX_SERVICES, 0);

/// Per-destination counters (index = destination id). Written here; read and zeroed by user space.
#[map]
pub static DEST_STATS: PerCpuArray<Stats> = PerCpuArray::pinned(MAX_DESTS, 0);

/// Global counters (`ebpf_common::counter`). Written here; read by `xlvs status`.
#[map]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::pinned(counter::COUNT, 0);

/// Timeouts in seconds by connection state (0 = IPVS default). Written by user space (`--set`).
#[map]
pub static TIMEOUTS: Array<u32> = Array::pinned(N_STATES, 0);

/// Interfaces the program is attached to, by ifindex: targets of the devmap redirect.
/// Written by user space on attach/detach.
#[map]
pub static TX_PORTS: DevMapHash = DevMapHash::pinned(MAX_PORTS, 0);

/// Adds one to a global counter.
#[inline(always)]
pub fn count(index: u32) {
    if let Some(c) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: `c` is a map value pointer from get_ptr_mut: non-null, aligned and valid for this
        // program run; per-CPU, so no other CPU writes it.
        unsafe { *c += 1 };
    }
}

/// Whether a setting of user space's (`CONFIG[index]`, `ebpf_common::config`) is on.
#[inline(always)]
pub fn setting(index: u32) -> bool {
    CONFIG.get(index).copied().unwrap_or(0) != 0
}

/// Whether `addr` is the address of some service (any port or protocol).
#[inline(always)]
pub fn is_vip(af: u8, addr: &[u32; 4]) -> bool {
    let key = ServiceKey {
        addr: *addr,
        port: 0,
        proto: 0,
        af,
    };
    // SAFETY: the value is only tested for presence; a map value lives for the whole program run
    // (RCU).
    unsafe { VIPS.get(&key) }.is_some()
}

/// The number of services on `addr` (any port or protocol): 0 when it is no VIP. A scalar
/// where [`is_vip`]'s pointer test would be combined with other pointers by LLVM.
#[inline(always)]
pub fn vip_services(af: u8, addr: &[u32; 4]) -> u32 {
    let key = ServiceKey {
        addr: *addr,
        port: 0,
        proto: 0,
        af,
    };
    // SAFETY: the value is copied at once; a map value lives for the whole program run (RCU).
    unsafe { VIPS.get(&key) }.copied().unwrap_or(0)
}

/// User-space-only metadata of a service that IPVS keeps but the packet path never needs
/// (persistence-engine name, alibaba est_timeout). Declared here so it is created and pinned with
/// the rest and survives every process.
#[map]
pub static SVC_META: HashMap<u32, ebpf_common::ServiceMeta> = HashMap::pinned(MAX_SERVICES, 0);

/// User-space-only allocation cursors (`ebpf_common::meta`): next service id, next destination id.
#[map]
pub static META: Array<u32> = Array::pinned(ebpf_common::meta::COUNT, 0);

/// User-space-only rate-estimator state per service and destination (`ebpf_common::Estimate`),
/// kept here so `ipvsadm --rate` in any process continues the same estimate.
#[map]
pub static EST: HashMap<u32, ebpf_common::Estimate> = HashMap::pinned(MAX_SERVICES + MAX_DESTS, 0);

/// FULLNAT local addresses per service (`ipvsadm -P/-Q/-G`). Written by user space; the FULLNAT
/// path allocates source ports from them and counts into them (`fullnat.rs`).
#[map]
pub static LADDRS: HashMap<ebpf_common::LaddrKey, ebpf_common::Laddr> =
    HashMap::pinned(ebpf_common::MAX_LADDRS, 0);

/// Persistence templates (IPVS' template connections): (client network, service) -> destination.
/// Created and refreshed here; listed by user space. LRU like the connections.
#[map]
pub static PERSIST: LruHashMap<ebpf_common::PersistKey, ebpf_common::Persist> =
    LruHashMap::pinned(ebpf_common::MAX_PERSIST, 0);

/// Settings user space writes for the packet path (`ebpf_common::config`).
#[map]
pub static CONFIG: Array<u32> = Array::pinned(ebpf_common::config::COUNT, 0);

/// FULLNAT local-address pools: slot `ebpf_common::laddr_slot(svc_id, i)` holds the i-th local
/// address of a service (its LADDRS key). Written by user space, which publishes a grown pool by
/// writing the new slot before raising LADDR_COUNT, and a shrunk one the other way round.
#[map]
pub static LADDR_POOL: HashMap<u32, ebpf_common::LaddrKey> =
    HashMap::pinned(ebpf_common::MAX_LADDRS, 0);

/// Virtual addresses: key (vip, port 0, proto 0, af) -> number of services on it. Written by user
/// space; read for the flood policies (fragments and ports without a service).
#[map]
pub static VIPS: HashMap<ServiceKey, u32> = HashMap::pinned(MAX_SERVICES, 0);

/// DPVS deny/allow lists: (service id, list, client address) -> 0. Written by user space.
#[map]
pub static ACL: HashMap<ebpf_common::AclKey, u32> = HashMap::pinned(ebpf_common::MAX_ACL, 0);

/// Which lists of a service have entries (`ebpf_common::acl::HAS_*`, index = service id), so
/// services without lists cost one array read per new connection.
#[map]
pub static ACL_STATE: Array<u32> = Array::pinned(MAX_SERVICES, 0);

/// Number of local addresses in each service's pool (index = service id).
#[map]
pub static LADDR_COUNT: Array<u32> = Array::pinned(MAX_SERVICES, 0);

/// IPVS' activeconns/inactconns and overload flag per destination (index = destination id),
/// kept with atomic adds here and by user space (through a shared mapping: BPF_F_MMAPABLE) when
/// connections expire. Read by the scan schedulers (`sched_scan.rs`) and thresholds.
#[map]
pub static DEST_CONNS: Array<ebpf_common::DestConns> = Array::pinned(MAX_DESTS, BPF_F_MMAPABLE);

const BPF_F_MMAPABLE: u32 = 1 << 10;

/// lblc/lblcr: (service, destination address) -> its destination (set). LRU.
#[map]
pub static LBLC: LruHashMap<ebpf_common::LblcKey, ebpf_common::Lblc> =
    LruHashMap::pinned(ebpf_common::MAX_LBLC, 0);

/// Tail-call targets: programs of the same object that run with a stack of their own. Filled
/// by user space when the program is loaded. One array per loaded version (not pinned by name:
/// user space pins each as `JUMP_<program id>`), so a reload never mixes the stages of two
/// versions in one packet's path.
#[map]
pub static JUMP: ProgramArray = ProgramArray::with_max_entries(ebpf_common::JUMP_SLOTS, 0);

/// fwmark classifier: (af, proto, destination prefix) -> the port ranges and marks that apply
/// (`ebpf_common::FwmarkRules`; see fwmark.rs). Written by user space (`xlvs fwmark`).
#[map]
pub static FWMARK_CLASS: aya_ebpf::maps::LpmTrie<
    ebpf_common::FwmarkPrefix,
    ebpf_common::FwmarkRules,
> = aya_ebpf::maps::LpmTrie::pinned(ebpf_common::MAX_FWMARK_RULES, 0);

/// The classifier rules as configured (user space only: FWMARK_CLASS is computed from them).
#[map]
pub static FWMARK_RULES: HashMap<ebpf_common::FwmarkRuleKey, u32> =
    HashMap::pinned(ebpf_common::MAX_FWMARK_RULES, 0);

/// fwmark classifier: destination ports no rule covers (`ebpf_common::fwmark_port_bit`), so
/// traffic to other addresses on those ports passes without a classifier lookup. Written by
/// user space with the classifier.
#[map]
pub static FWMARK_PORTS_FREE: Array<[u32; ebpf_common::FWMARK_PORT_WORDS as usize]> =
    Array::pinned(ebpf_common::FWMARK_PORT_ENTRIES, 0);

/// Firewall rules: (generation, family, source prefix) -> the rules to try there, in order
/// (`ebpf_common::FwEntry`; see fw.rs). Two generations live side by side: user space writes
/// the new set under the generation not in use, then switches `CONFIG[FW]`. Whole addresses
/// (/32, /128) are in FW_HOSTS instead, rules for one destination in FW_SCOPED.
#[map]
pub static FW_TRIE: aya_ebpf::maps::LpmTrie<ebpf_common::FwKey, ebpf_common::FwEntry> =
    aya_ebpf::maps::LpmTrie::pinned(ebpf_common::MAX_FW_PREFIXES, 0);

/// Firewall rules for whole source addresses: one hash lookup instead of a trie walk (a
/// million-address blocklist would make the trie deep). Checked before FW_TRIE: a whole
/// address is the longest prefix there is. Allocated as filled (BPF_F_NO_PREALLOC).
#[map]
pub static FW_HOSTS: HashMap<ebpf_common::FwKey, ebpf_common::FwEntry> =
    HashMap::pinned(ebpf_common::MAX_FW_HOSTS, BPF_F_NO_PREALLOC);

const BPF_F_NO_PREALLOC: u32 = 1;

/// Firewall rules scoped to a destination address (`--vip`), asked before the global ones.
#[map]
pub static FW_SCOPED: aya_ebpf::maps::LpmTrie<ebpf_common::FwScopedKey, ebpf_common::FwEntry> =
    aya_ebpf::maps::LpmTrie::pinned(ebpf_common::MAX_FW_PREFIXES, 0);

/// Packets each firewall rule matched (index = rule id), counted with atomic adds. Read and
/// zeroed (for a new rule taking a free id) by user space through a shared mapping
/// (BPF_F_MMAPABLE: a million rules are zeroed without a million syscalls).
#[map]
pub static FW_HITS: Array<u64> = Array::pinned(ebpf_common::MAX_FW_RULES, BPF_F_MMAPABLE);
/// Addresses a packet of some connection can carry (`ebpf_common::addr_filter_slot`; see
/// addr_filter.rs). Written by user space.
#[map]
pub static ADDR_FILTER: Array<u32> = Array::pinned(ebpf_common::ADDR_FILTER_ENTRIES, 0);

/// NAT real servers (af, proto, addr, port) -> the key of the service whose connections to them
/// keep one entry (`ebpf_common::MAX_NAT_OWNERS`; see one_entry.rs). Written by user space.
#[map]
pub static NAT_OWNERS: HashMap<ServiceKey, ServiceKey> =
    HashMap::pinned(ebpf_common::MAX_NAT_OWNERS, 0);
