//! Every map of the data plane, in one place: what it holds and who writes it.
//! All but the scratch maps and JUMP are pinned by name under the pin directory, so they outlive
//! any process and a reloaded program adopts them. Layouts live in `ebpf-common`.

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
        unsafe { *c += 1 };
    }
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

/// Per-CPU scratch space for the packet path's larger temporaries (the BPF stack is 512 bytes
/// for the whole call chain): the FIB lookup parameters and the connection
/// entry being created, one map each so borrows never alias. Not pinned: nothing in them lives
/// beyond one packet (XDP runs to completion on a CPU).
#[map]
pub static SCRATCH_FIB: PerCpuArray<aya_ebpf::bindings::bpf_fib_lookup> =
    PerCpuArray::with_max_entries(1, 0);
#[map]
pub static SCRATCH_CONN: PerCpuArray<Conn> = PerCpuArray::with_max_entries(1, 0);
#[map]
pub static SCRATCH_REPLY: PerCpuArray<Conn> = PerCpuArray::with_max_entries(1, 0);
/// FULLNAT: the candidate REPLY key, and the CLIENT key of an entry being reclaimed.
#[map]
pub static SCRATCH_KEY: PerCpuArray<FlowKey> = PerCpuArray::with_max_entries(1, 0);
#[map]
pub static SCRATCH_KEY2: PerCpuArray<FlowKey> = PerCpuArray::with_max_entries(1, 0);

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

/// This CPU's FULLNAT allocation cursor (walks its slice of the port range over the pool).
#[map]
pub static PORT_CURSOR: PerCpuArray<u32> = PerCpuArray::with_max_entries(1, 0);

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

/// The scan schedulers' best destination so far (see sched_scan.rs on why not a local).
#[map]
pub static SCRATCH_LOAD: PerCpuArray<crate::sched_scan::Load> = PerCpuArray::with_max_entries(1, 0);

/// The scan scheduler's pick, handed back to the main program (see sched_scan.rs).
#[map]
pub static SCHED_PICK: PerCpuArray<crate::sched::PickMarker> = PerCpuArray::with_max_entries(1, 0);

/// This CPU's slot of a scratch map (always present: one-entry per-CPU arrays).
#[inline(always)]
pub fn scratch<T>(map: &'static PerCpuArray<T>) -> Option<&'static mut T> {
    map.get_ptr_mut(0).map(|p| unsafe { &mut *p })
}

/// Tail-call targets: programs of the same object that run with a stack of their own. Filled
/// by user space when the program is loaded. One array per loaded version (not pinned by name:
/// user space pins each as `JUMP_<program id>`), so a reload never mixes the stages of two
/// versions in one packet's path.
#[map]
pub static JUMP: ProgramArray = ProgramArray::with_max_entries(ebpf_common::JUMP_SLOTS, 0);
pub const JUMP_ICMP: u32 = ebpf_common::JUMP_ICMP;
pub const JUMP_TOA: u32 = ebpf_common::JUMP_TOA;
pub const JUMP_SYNPROXY: u32 = ebpf_common::JUMP_SYNPROXY;
pub const JUMP_MAIN: u32 = ebpf_common::JUMP_MAIN;
pub const JUMP_SCHED: u32 = ebpf_common::JUMP_SCHED;
pub const JUMP_NEW: u32 = ebpf_common::JUMP_NEW;
pub const JUMP_ICMP6: u32 = ebpf_common::JUMP_ICMP6;
pub const JUMP_SEQADJ: u32 = ebpf_common::JUMP_SEQADJ;
pub const JUMP_SYNPROXY6: u32 = ebpf_common::JUMP_SYNPROXY6;
pub const JUMP_RESET: u32 = ebpf_common::JUMP_RESET;

/// SYNPROXY: the TCP options of the segment being handled (see tcpopt.rs).
#[map]
pub static SCRATCH_OPTS: PerCpuArray<crate::tcpopt::Opts> = PerCpuArray::with_max_entries(1, 0);

/// SYNPROXY: the TCP options of a packet being made (the IPv6 program's stack has no room).
#[map]
pub static SCRATCH_SP_OPTS: PerCpuArray<[u8; 32]> = PerCpuArray::with_max_entries(1, 0);

/// SYNPROXY: the SYN made from a valid cookie ACK, handed to the main program (see synproxy.rs).
#[map]
pub static SYNPROXY_OPEN: PerCpuArray<crate::synproxy::OpenMarker> =
    PerCpuArray::with_max_entries(1, 0);

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

/// The classifier's lookup key (the main program's stack has no room for it).
#[map]
pub static SCRATCH_FWMARK: PerCpuArray<aya_ebpf::maps::lpm_trie::Key<ebpf_common::FwmarkPrefix>> =
    PerCpuArray::with_max_entries(1, 0);
pub const JUMP_TUNNEL: u32 = ebpf_common::JUMP_TUNNEL;
pub const JUMP_FWD: u32 = ebpf_common::JUMP_FWD;

/// The addresses and ports a packet leaves with (`forward::send`), off the main stack.
#[map]
pub static SCRATCH_FLOW: PerCpuArray<crate::forward::Flow> = PerCpuArray::with_max_entries(1, 0);

/// Tunnels: next hop, our source address and the path MTU towards each tunnel real server
/// (by destination id), cached by `xlvs_tunnel` alone: an entry is trusted only for the address
/// it was looked up for and for ~1 s, so user space never has to reset it. Not pinned.
#[map]
pub static TUN_NH: LruHashMap<u32, crate::tunnel::TunHop> = LruHashMap::with_max_entries(65536, 0);

/// Tunnels: what the main program hands `xlvs_tunnel` about the packet's connection.
#[map]
pub static TUN_JOB: PerCpuArray<crate::tunnel::Job> = PerCpuArray::with_max_entries(1, 0);

/// Fragments: (af, proto, source, destination, IP id) of a datagram whose first fragment was
/// seen -> the ports of its flow, so its later fragments find the same connection (frag.rs).
/// Small, LRU and not pinned: an entry matters for a few seconds only.
#[map]
pub static FRAGS: LruHashMap<crate::frag::FragKey, crate::frag::FragFlow> =
    LruHashMap::with_max_entries(crate::frag::MAX_FRAGS, 0);
pub const JUMP_FRAG: u32 = ebpf_common::JUMP_FRAG;

/// Set by `xlvs_frag` when it hands a recorded first fragment to the main program (which
/// would otherwise send it back); see frag.rs.
#[map]
pub static FRAG_MARK: PerCpuArray<u32> = PerCpuArray::with_max_entries(1, 0);

/// The fragment being handled and its FRAGS key (per CPU: stack room; see frag.rs).
#[map]
pub static SCRATCH_FRAG: PerCpuArray<crate::frag::FragKey> = PerCpuArray::with_max_entries(1, 0);

/// The IPv6 extension-header walk's result, stored and read back so the verifier sees one
/// unknown value instead of one exact value per way the walk can end (see parse.rs).
#[map]
pub static SCRATCH_WALK: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);
