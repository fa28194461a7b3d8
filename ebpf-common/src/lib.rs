//! The one contract between the XDP program and user space: map keys and values, flags, limits and
//! pin names. Everything here is `#[repr(C)]`, padded explicitly (hash keys compare bytes) and
//! checked for size at compile time, so both sides agree byte for byte.
//!
//! Addresses are stored as `[u32; 4]` holding the address bytes in network order (the raw words of
//! the packet); an IPv4 address uses word 0 and leaves the rest zero. Ports are network order too.
#![no_std]
// Every public item says what it is for; CI's clippy (-D warnings) makes this an error.
#![warn(missing_docs)]

pub mod csum;
pub mod tcp_state;

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

/// Services (virtual servers) that can exist at once; also the size of per-service arrays.
pub const MAX_SERVICES: u32 = 32768;
/// Destinations (real servers) over all services; ids are recycled only after wrapping.
pub const MAX_DESTS: u32 = 131072;
/// Slots of the shared scheduler-table pool. Each service owns one range of it (`table_base`,
/// `table_len`); a new table is written into a free range and then published by one update of the
/// service entry, so a packet sees either the old or the new table, never half of one.
pub const SCHED_POOL_SLOTS: u32 = 1 << 22;
/// Longest table one service may use (wrr sequences longer than this are scaled down).
pub const MAX_TABLE_LEN: u32 = 65536;
/// Default number of connections; the connection map holds two entries (one per direction) each.
pub const DEFAULT_MAX_CONNS: u32 = 1 << 20;
/// Interfaces the program can redirect to through the devmap.
pub const MAX_PORTS: u32 = 256;

// ---------------------------------------------------------------------------------------------
// Pin names (under the pin directory, default `/sys/fs/bpf/xlvs`)
// ---------------------------------------------------------------------------------------------

/// Where maps, programs and links are pinned unless `--pin-dir` / `XLVS_PIN_DIR` says otherwise.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/xlvs";
/// Slots of the JUMP program array (tail calls).
pub const JUMP_SLOTS: u32 = 16;

/// Declares the stages once: each one's JUMP slot and program name. [`Stage::ALL`] lists them
/// (the loader installs every one), the packet path jumps with [`Stage::slot`].
macro_rules! stages {
    ($($(#[$doc:meta])* $variant:ident = $slot:literal, $name:literal;)*) => {
        /// A program of the packet path that is reached by tail call (the JUMP slot is the
        /// discriminant). Declared in the order a packet meets them.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u32)]
        pub enum Stage {
            $($(#[$doc])* $variant = $slot,)*
        }

        impl Stage {
            /// Every stage, in the order a packet meets them.
            pub const ALL: [Stage; [$($slot),*].len()] = [$(Stage::$variant),*];

            /// Its slot in the JUMP program array.
            #[inline(always)]
            pub const fn slot(self) -> u32 {
                self as u32
            }

            /// Its program's name in the object (the `#[xdp]` function).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Stage::$variant => $name,)*
                }
            }
        }
    };
}

stages! {
    /// The attached program: parse, connection lookup, established paths. A slot of its own
    /// too: SYNPROXY's opening SYN and recorded first fragments come back to it.
    Main = 3, "xlvs";
    /// IP fragments: first fragments recorded (then back to `Main`), later ones follow them.
    Frag = 9, "xlvs_frag";
    /// A packet that may open a connection: service lookup, flood policies, scheduling, entries.
    New = 5, "xlvs_new";
    /// The scan schedulers (lc, wlc, sed, nq, ovf, lblc, lblcr, and every scheduler of a
    /// service with thresholds): a walk over the service's destinations; back to `New`.
    Sched = 4, "xlvs_sched";
    /// SYNPROXY for IPv4: cookie SYN-ACKs, cookie checks, the real's handshake.
    Synproxy = 2, "xlvs_synproxy";
    /// SYNPROXY for IPv6 (the same code for IPv6 headers: one program for both families would
    /// not fit the verifier's limits).
    Synproxy6 = 10, "xlvs_synproxy6";
    /// A connection's first packet (or SYNPROXY's SYN) forwarded to its real server, with the
    /// connection handed over: the programs that open connections keep their stack and
    /// verifier budget for that.
    Fwd = 11, "xlvs_fwd";
    /// FULLNAT: the client address option inserted into a client segment.
    Toa = 1, "xlvs_toa";
    /// SYNPROXY's per-segment translation (established proxied connections).
    Seqadj = 7, "xlvs_seqadj";
    /// Tunnel encapsulation (IPIP/GUE/GRE, both families) and the ICMP "too big" answer.
    Tunnel = 8, "xlvs_tunnel";
    /// ICMP errors about connections.
    Icmp = 0, "xlvs_icmp";
    /// ICMPv6 errors about connections (reached from `Icmp`).
    Icmp6 = 6, "xlvs_icmp6";
    /// A TCP segment of no connection (or of an orphaned entry) answered with a RST
    /// (reached from `Main` and `New`).
    Reset = 12, "xlvs_reset";
}

/// The attached program's name (also [`Stage::Main`]'s).
pub const PROG_MAIN: &str = Stage::Main.name();

/// MSS SYNPROXY announces in its SYN to the real server (the client's own MSS is only encoded
/// in the cookie, which cannot be decoded without the kernel's secret).
pub const SYNPROXY_MSS: u16 = 1460;
/// The same for IPv6 (1500 - 40 - 20).
pub const SYNPROXY_MSS6: u16 = 1440;

/// Pinned program, so a later `attach` (or upgrade) reuses the loaded one.
pub const PIN_PROG: &str = "prog_xlvs";
/// Sub-directory holding one pinned bpf_link per attached interface (named by ifname).
pub const PIN_LINKS_DIR: &str = "links";

// ---------------------------------------------------------------------------------------------
// Enumerations shared by both sides (values follow IPVS where IPVS defines them)
// ---------------------------------------------------------------------------------------------

/// Address family of IPv4 entries (Linux `AF_INET`).
pub const AF_INET: u8 = 2;
/// Address family of IPv6 entries (Linux `AF_INET6`).
pub const AF_INET6: u8 = 10;

/// IP protocol number of ICMP (errors about a connection follow it).
pub const IPPROTO_ICMP: u8 = 1;
/// IP protocol number of TCP services.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP services.
pub const IPPROTO_UDP: u8 = 17;
/// IP protocol number of SCTP services.
pub const IPPROTO_SCTP: u8 = 132;
/// Protocol value of a fwmark service key (the mark sits in `addr[0]`).
pub const PROTO_FWMARK: u8 = 0;

/// Forwarding methods: IP_VS_CONN_F_* values (MASQ 0, LOCALNODE 1, TUNNEL 2, DROUTE 3), plus FULLNAT.
pub const FWD_MASQ: u8 = 0;
/// Local node: the packet is handed to this host's stack.
pub const FWD_LOCAL: u8 = 1;
/// IP-in-IP (or GUE/GRE) tunnelling to the real server.
pub const FWD_TUNNEL: u8 = 2;
/// Direct routing: only the destination MAC changes.
pub const FWD_DROUTE: u8 = 3;
/// alibaba/DPVS FULLNAT: source and destination both rewritten (local address as source).
pub const FWD_FULLNAT: u8 = 5;

/// Service flags (IP_VS_SVC_F_* values where they exist).
pub const SVC_F_PERSISTENT: u32 = 0x1;
/// The service is in the service table (always set on listed services).
pub const SVC_F_HASHED: u32 = 0x2;
/// One-packet scheduling: every UDP datagram is scheduled on its own (`-o`).
pub const SVC_F_ONEPACKET: u32 = 0x4;
/// Scheduler flag 1 (`-b flag-1`: sh-fallback, mh-fallback).
pub const SVC_F_SCHED1: u32 = 0x8;
/// Scheduler flag 2 (`-b flag-2`: sh-port, mh-port).
pub const SVC_F_SCHED2: u32 = 0x10;
/// Scheduler flag 3 (`-b flag-3`).
pub const SVC_F_SCHED3: u32 = 0x20;
/// alibaba/DPVS: answer SYNs with cookies before opening the real-server side.
pub const SVC_F_SYNPROXY: u32 = 0x10000;
/// xlvs internal: new connections are scheduled by the `xlvs_sched` program (a scheduler that
/// reads connection counts, or a destination with thresholds). Set by user space.
pub const SVC_F_SCHED_SCAN: u32 = 0x40000;
/// Internal (never listed): some fwmark classifier rule covers this (af, proto, vip, vport), so
/// the packet path classifies first, as IPVS looks fwmark services up before the others.
pub const SVC_F_FWMARK_FIRST: u32 = 0x20000;

/// Scheduler identifiers (stored in [`Service::sched`]; names live in user space).
pub const SCHED_RR: u32 = 0;
/// Weighted round robin.
pub const SCHED_WRR: u32 = 1;
/// Least connections.
pub const SCHED_LC: u32 = 2;
/// Weighted least connections.
pub const SCHED_WLC: u32 = 3;
/// Locality-based least connections.
pub const SCHED_LBLC: u32 = 4;
/// Locality-based least connections with replication.
pub const SCHED_LBLCR: u32 = 5;
/// Destination hashing.
pub const SCHED_DH: u32 = 6;
/// Source hashing.
pub const SCHED_SH: u32 = 7;
/// Shortest expected delay.
pub const SCHED_SED: u32 = 8;
/// Never queue.
pub const SCHED_NQ: u32 = 9;
/// Weighted failover (highest weight takes all).
pub const SCHED_FO: u32 = 10;
/// Weighted overflow (next destination once the first is full).
pub const SCHED_OVF: u32 = 11;
/// Maglev hashing.
pub const SCHED_MH: u32 = 12;

/// Source/destination hashing table size (IPVS IP_VS_SH_TAB_SIZE / IP_VS_DH_TAB_SIZE).
pub const SH_TAB_SIZE: u32 = 256;
/// Maglev table size: IPVS' default (CONFIG_IP_VS_MH_TAB_INDEX 12 -> the prime 4093).
pub const MH_TAB_SIZE: u32 = 4093;

/// IPVS' sh/dh bucket for a (host-order) folded address and port: hash_32(port + addr, 8),
/// moved by `offset` (the fallback walk). Shared by the packet path and user-space tests.
#[inline(always)]
pub const fn sh_bucket(addr: u32, port: u16, offset: u32) -> u32 {
    let h = (port as u32).wrapping_add(addr).wrapping_mul(0x61C8_8647) >> 24;
    (offset.wrapping_add(h)) & (SH_TAB_SIZE - 1)
}

/// Maglev lookup hash of a (host-order) folded address and port (with mh-port), plus `offset`
/// for the fallback walk. Any well-mixed hash keeps Maglev's properties; this one is cheap.
#[inline(always)]
pub const fn mh_slot(addr: u32, port: u16, offset: u32) -> u32 {
    let mut h = addr ^ ((port as u32) << 16 | port as u32).wrapping_mul(0x85EB_CA6B);
    h ^= h >> 16;
    h = h.wrapping_mul(0x7FEB_352D);
    h ^= h >> 15;
    h = h.wrapping_mul(0x846C_A68B);
    h ^= h >> 16;
    (h % MH_TAB_SIZE + offset) % MH_TAB_SIZE
}

/// TCP connection states, IPVS numbering (IP_VS_TCP_S_*), then UDP/other.
pub const S_NONE: u8 = 0;
/// Handshake done, data flowing (IPVS' activeconns).
pub const S_ESTABLISHED: u8 = 1;
/// SYN seen from the client.
pub const S_SYN_SENT: u8 = 2;
/// SYN-ACK seen from the real server.
pub const S_SYN_RECV: u8 = 3;
/// A FIN seen from one side.
pub const S_FIN_WAIT: u8 = 4;
/// Both FINs seen.
pub const S_TIME_WAIT: u8 = 5;
/// Closed by a RST.
pub const S_CLOSE: u8 = 6;
/// The real server closed first.
pub const S_CLOSE_WAIT: u8 = 7;
/// Waiting for the last ACK of the close.
pub const S_LAST_ACK: u8 = 8;
/// IPVS' LISTEN (kept for numbering; never entered here).
pub const S_LISTEN: u8 = 9;
/// IPVS' SYNACK (kept for numbering).
pub const S_SYNACK: u8 = 10;
/// UDP "normal" state (IP_VS_UDP_S_NORMAL), timed out with the udp timeout.
pub const S_UDP: u8 = 11;
/// Number of entries of the timeout table ([`TIMEOUTS` map], seconds, indexed by state).
pub const N_STATES: u32 = 12;

/// IPVS default timeouts in seconds, indexed by state (tcp 900, tcpfin 120, udp 300).
pub const DEFAULT_TIMEOUTS: [u32; N_STATES as usize] = [
    2,       // NONE
    15 * 60, // ESTABLISHED
    2 * 60,  // SYN_SENT
    60,      // SYN_RECV
    2 * 60,  // FIN_WAIT
    2 * 60,  // TIME_WAIT
    10,      // CLOSE
    60,      // CLOSE_WAIT
    30,      // LAST_ACK
    2 * 60,  // LISTEN
    2 * 60,  // SYNACK
    5 * 60,  // UDP
];

/// Persistence templates (client networks with a live template).
pub const MAX_PERSIST: u32 = 1 << 18;

/// FULLNAT local addresses over all services.
pub const MAX_LADDRS: u32 = 65536;
/// FULLNAT local addresses one service can use (slots of its pool in `LADDR_POOL`).
pub const MAX_LADDRS_PER_SERVICE: u32 = 256;
/// FULLNAT source ports: [FNAT_PORT_MIN, 65535]. Each CPU allocates from its own slice of the
/// range (`config::NR_CPUS`), so CPUs rarely compete for a port; an insert that finds the port
/// taken after all (BPF_NOEXIST) tries the next one.
pub const FNAT_PORT_MIN: u32 = 1024;
/// How many FULLNAT source ports there are.
pub const FNAT_PORT_COUNT: u32 = 65536 - FNAT_PORT_MIN;
/// Candidate (local address, port) pairs a new FULLNAT connection tries before giving up.
pub const FNAT_PORT_TRIES: u32 = 8;

/// LADDR_POOL key of slot `index` of service `svc_id`'s local-address pool.
#[inline(always)]
pub const fn laddr_slot(svc_id: u32, index: u32) -> u32 {
    svc_id * MAX_LADDRS_PER_SERVICE + index
}

/// Declares the global counters once: index (stable: the pinned COUNTERS map outlives builds),
/// the name `xlvs status` prints, and what it counts. Listed in the order `xlvs status` shows.
macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident = $index:literal, $text:literal;)*) => {
        /// Global counters ([`maps::COUNTERS`] per-CPU array index).
        pub mod counter {
            $($(#[$doc])* pub const $name: u32 = $index;)*
            /// (index, name) of every counter, in display order.
            pub const NAMES: [(u32, &str); [$($index),*].len()] = [$(($name, $text)),*];
            /// Number of counters (entries of COUNTERS).
            pub const COUNT: u32 = {
                let mut max = 0;
                let mut i = 0;
                while i < NAMES.len() {
                    if NAMES[i].0 > max {
                        max = NAMES[i].0;
                    }
                    i += 1;
                }
                max + 1
            };
        }
    };
}

counters! {
    /// Not IPv4/IPv6, or not a VIP: handed to the kernel untouched.
    PASS_NOT_VIP = 0, "pass_not_vip";
    /// Could not be parsed (truncated, bad header): handed to the kernel, never forwarded.
    PASS_MALFORMED = 1, "pass_malformed";
    /// IP fragments handed to the kernel: not addressed to a VIP or a known connection.
    PASS_FRAGMENT = 2, "pass_fragment";
    /// First fragments (offset 0) of a connection's datagram (or of a new connection's),
    /// recorded so that the later fragments follow them (see frag.rs in the eBPF crate).
    FRAG_FIRST = 38, "frag_first";
    /// Later fragments forwarded like their first fragment (same rewrite and next hop).
    FRAG_FORWARDED = 39, "frag_forwarded";
    /// Later fragments to a VIP whose first fragment was not seen (out of order, expired, or a
    /// one-packet-scheduling service): handed to the kernel (or dropped by `FRAG_DROP`,
    /// counted in `DROP_FRAGMENT` then).
    FRAG_UNTRACKED = 40, "frag_untracked";
    /// Fragments of a connection whose handling cannot work on fragments (SYNPROXY
    /// handshake): handed to the kernel (or dropped by `FRAG_DROP`).
    FRAG_REFUSED = 41, "frag_refused";
    /// Tunnelled IPv4 packets without DF too big for the tunnel's MTU, encapsulated and handed
    /// to the kernel to forward and fragment (IPVS fragments them; XDP sends one packet).
    TUN_KERNEL_FRAG = 42, "tun_kernel_frag";
    /// Packets the kernel would drop as invalid, addressed to a VIP or a connection: an IPv4
    /// header whose checksum is wrong, an IPv6 UDP datagram without a checksum (mandatory in
    /// IPv6). Dropped: never forwarded, no connection opened.
    DROP_INVALID = 43, "drop_invalid";
    /// New connections refused because the connection table is full and the table-full
    /// policy is `refuse` (see [`super::ConnFill`]).
    DROP_TABLE_FULL = 44, "drop_table_full";
    /// TCP segments of no known connection (an evicted or expired one, or stray traffic)
    /// answered with a RST, so neither end waits on a connection the director forgot.
    RST_SENT = 45, "rst_sent";
    /// Packets of no connection dropped by a firewall deny rule (`xlvs fw deny`).
    FW_DENIED = 46, "fw_denied";
    /// Packets of no connection a firewall allow rule let on (`xlvs fw allow`).
    FW_ALLOWED = 47, "fw_allowed";
    /// Packets of no connection to this host (no VIP) that no firewall rule matched, dropped
    /// by the default policy `drop` (`xlvs fw policy drop`).
    FW_POLICY_DROP = 48, "fw_policy_drop";
    /// ICMP/ICMPv6 messages (not errors, not neighbour discovery) over the firewall's ICMP
    /// rate limit (`xlvs fw icmp-limit`): dropped.
    FW_ICMP_LIMITED = 49, "fw_icmp_limited";
    /// Packets that would open a connection to a VIP from a source over its budget
    /// (`xlvs fw conn-limit`): dropped before SYNPROXY's cookie or the connection table.
    FW_CONN_LIMITED = 50, "fw_conn_limited";
    /// IPv6 packets with extension headers we do not walk (more than four, routing with
    /// segments left, AH and other unknown ones): handed to the kernel.
    PASS_IPV6_EXT = 11, "pass_ipv6_ext";
    /// TTL would reach 0: handed to the kernel so it answers with ICMP time exceeded.
    PASS_TTL = 12, "pass_ttl";
    /// A tail call into another stage failed (its program missing from the JUMP array: a
    /// loader fault, or a reload in progress): the packet was dropped, never half handled.
    DROP_MISSED_TAIL_CALL = 17, "drop_missed_tail_call";
    /// TCP to a VIP without a session and without SYN: dropped.
    DROP_NO_SESSION = 3, "drop_no_session";
    /// A service with no available destination (all weight 0 or none): dropped.
    DROP_NO_DEST = 4, "drop_no_dest";
    /// Packets of a forwarding method or layout the path cannot handle (an unknown method; a
    /// tunnel checksum it cannot compute, see tunnel.rs): dropped rather than forwarded wrong.
    DROP_UNSUPPORTED = 13, "drop_unsupported";
    /// Packets handed to the local stack for a `Local` destination.
    PASS_LOCAL = 14, "pass_local";
    /// Direct-routing packets whose real server's MAC is not known yet: dropped (see forward.rs).
    DROP_NO_NEIGH = 15, "drop_no_neigh";
    /// ICMP errors about a connection, translated and forwarded to the other side.
    ICMP_TRANSLATED = 16, "icmp_translated";
    /// Tunnelled packets that would exceed the path MTU once encapsulated: dropped (and
    /// answered with ICMP when they forbid fragmentation, see ICMP_TOO_BIG_SENT).
    DROP_TOO_BIG = 18, "drop_too_big";
    /// Packets encapsulated (IPIP, GUE, GRE; either family) towards tunnel real servers.
    FWD_TUNNEL = 19, "fwd_tunnel";
    /// Tunnelled packets too big for the path once encapsulated, answered with ICMP
    /// "fragmentation needed" / ICMPv6 "packet too big" (also counted in DROP_TOO_BIG).
    ICMP_TOO_BIG_SENT = 37, "icmp_too_big_sent";
    /// New FULLNAT connection to a service without local addresses (`ipvsadm -P`): dropped.
    DROP_NO_LADDR = 20, "drop_no_laddr";
    /// New FULLNAT connection for which no free (local address, port) was found: dropped
    /// (the local-address pool is exhausted towards that real server; see `ipvsadm -G`).
    DROP_LADDR_EXHAUSTED = 21, "drop_laddr_exhausted";
    /// TOA options inserted (client address handed to the real server, FULLNAT).
    TOA_ADDED = 22, "toa_added";
    /// TOA could not be inserted (no room in the TCP header, IP options, packet too big).
    TOA_SKIPPED = 23, "toa_skipped";
    /// Fragments addressed to a VIP, dropped by policy (`config::FRAG_DROP`).
    DROP_FRAGMENT = 24, "drop_fragment";
    /// TCP/UDP to a VIP address on a port without a service, dropped by policy
    /// (`config::NO_SERVICE_DROP`).
    DROP_NO_SERVICE = 25, "drop_no_service";
    /// New connection from a client on the service's deny list, or missing from its allow
    /// list (DPVS blklst / whtlst): dropped.
    DROP_DENIED = 31, "drop_denied";
    /// Scan scheduler: the service has more available destinations than MAX_SCAN_DESTS (only
    /// the first ones were considered).
    SCHED_SCAN_TRUNCATED = 32, "sched_scan_truncated";
    /// SYNPROXY: SYN answered with a cookie SYN-ACK (XDP_TX).
    SYNPROXY_COOKIE_SENT = 26, "synproxy_cookie_sent";
    /// SYNPROXY: ACK whose cookie did not check out (or that acknowledged nothing of ours): dropped.
    SYNPROXY_BAD_COOKIE = 27, "synproxy_bad_cookie";
    /// SYNPROXY: valid cookie ACK, connection opened with a SYN to the real server.
    SYNPROXY_OPENED = 28, "synproxy_opened";
    /// SYNPROXY: the real server's SYN-ACK answered with our ACK; sequence delta recorded.
    SYNPROXY_ESTABLISHED = 29, "synproxy_established";
    /// SYNPROXY: client segment while the real server has not answered: SYN sent again.
    SYNPROXY_SYN_RESENT = 30, "synproxy_syn_resent";
    /// SYNPROXY: cookie SYN-ACK that offered window scaling/SACK/timestamps (the client sent
    /// timestamps, so its options travel in our TSval).
    SYNPROXY_OPTIONS = 33, "synproxy_options";
    /// SYNPROXY: segment with malformed TCP options (bad length, past the header): dropped.
    SYNPROXY_BAD_OPTIONS = 34, "synproxy_bad_options";
    /// SYNPROXY defer mode: valid cookie ACK without data, dropped (the real server's side
    /// waits for the client's first data).
    SYNPROXY_DEFERRED = 35, "synproxy_deferred";
    /// SYNPROXY: the real server answered our SYN with a bare ACK (a TIME_WAIT of an earlier
    /// connection on the same addresses and ports refused it): answered with a RST that ends
    /// that TIME_WAIT, so the SYN sent again (on the client's next segment) gets through.
    SYNPROXY_REAL_TW_RESET = 36, "synproxy_real_tw_reset";
    /// New connection entries created.
    CONN_NEW = 5, "conn_new";
    /// Session-table inserts that failed (should stay 0: LRU evicts instead).
    CONN_INSERT_FAIL = 9, "conn_insert_fail";
    /// Next-hop lookups in the FIB (cache misses and refreshes).
    FIB_LOOKUP = 10, "fib_lookup";
    /// Packets forwarded with XDP_TX (same interface).
    FWD_TX = 6, "fwd_tx";
    /// Packets forwarded with a devmap redirect (other interface).
    FWD_REDIRECT = 7, "fwd_redirect";
    /// Rewritten packets handed to the kernel to forward (neighbour unknown, no route, ...).
    FWD_KERNEL = 8, "fwd_kernel";
}

// ---------------------------------------------------------------------------------------------
// Map keys and values
// ---------------------------------------------------------------------------------------------

/// SERVICES key: (af, proto, vip, vport) or, for fwmark services, (af, PROTO_FWMARK, [mark,0,0,0], 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ServiceKey {
    /// VIP (or fwmark in word 0), network-order words.
    pub addr: [u32; 4],
    /// Virtual port, network order (0 for fwmark and port-zero services).
    pub port: u16,
    /// IPPROTO_* or [`PROTO_FWMARK`].
    pub proto: u8,
    /// AF_INET or AF_INET6.
    pub af: u8,
}

/// SERVICES value.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Service {
    /// Index into every per-service array (stats, scheduler tables, rr position).
    pub id: u32,
    /// SVC_F_* flags.
    pub flags: u32,
    /// SCHED_* identifier.
    pub sched: u32,
    /// Persistence timeout in seconds (with SVC_F_PERSISTENT).
    pub persist_timeout: u32,
    /// Persistence netmask: IPv4 mask in network order, or IPv6 prefix length.
    pub netmask: u32,
    /// First slot of this service's live table in SCHED_TABLE.
    pub table_base: u32,
    /// Slots used in the live table; 0 means no destination can take new connections.
    pub table_len: u32,
    /// Number of destinations (any weight) attached to the service.
    pub dest_count: u32,
}

/// DESTS value (key: destination id, u32).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dest {
    /// Real server address, network-order words.
    pub addr: [u32; 4],
    /// Real server port, network order.
    pub port: u16,
    /// AF_INET or AF_INET6 (may differ from the service's with tunnels).
    pub af: u8,
    /// FWD_* method.
    pub fwd: u8,
    /// Id of the service this destination belongs to.
    pub svc_id: u32,
    /// Scheduling weight; 0 takes no new connections (quiescent).
    pub weight: i32,
    /// Upper connection threshold (`-x`): overloaded above it; 0 = none.
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`): no longer overloaded below it.
    pub l_threshold: u32,
    /// Tunnel type (0 ipip, 1 gue, 2 gre), tunnel flags and GUE port, as ipvsadm 1.31 defines them.
    pub tun_type: u8,
    /// Tunnel checksum flags (TUN_F_*).
    pub tun_flags: u8,
    /// GUE destination port, network order.
    pub tun_port: u16,
}

/// Connection-table key: one direction of a flow as it appears on the wire.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Source address as on the wire.
    pub src: [u32; 4],
    /// Destination address as on the wire.
    pub dst: [u32; 4],
    /// Source port, network order (0 without ports).
    pub sport: u16,
    /// Destination port, network order.
    pub dport: u16,
    /// IPPROTO_* of the flow.
    pub proto: u8,
    /// AF_INET or AF_INET6.
    pub af: u8,
    /// Zero: keys are hashed whole.
    pub _pad: [u8; 2],
}

/// CONNS value. An entry is keyed by one direction of a flow as it appears on the wire and says
/// how to rewrite packets that match it:
///
/// * the CLIENT entry (key cip:cport -> vip:vport): destination becomes `to` (the real server);
///   FULLNAT also replaces the source with `via` (the local address). It holds the connection's
///   state, timeout and client-side last_seen.
/// * the REPLY entry (flag CONN_F_REPLY; key rip:rport -> cip:cport, or -> lip:lport for FULLNAT):
///   source becomes `to` (vip:vport); FULLNAT also replaces the destination with `via`
///   (cip:cport). It holds its own last_seen and a next-hop cache towards the client.
///
/// Most NAT connections have only the CLIENT entry ([`CONN_X_ONE_ENTRY`]): their real server's
/// replies find it by the key [`one_entry_client_key`] derives through NAT_OWNERS, and it holds
/// what a REPLY entry would (last_seen of both directions, the next hop towards the client).
/// FULLNAT, SYNPROXY, fwmark, port-zero and one-packet connections, and those to a real server
/// whose NAT_OWNERS entry names another service, keep both entries.
///
/// A connection is alive while either entry was seen within the timeout.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Conn {
    /// Rewritten address: the real server (CLIENT entry) or the VIP (REPLY entry).
    pub to_addr: [u32; 4],
    /// FULLNAT's other rewritten address: the local address (CLIENT) or the client (REPLY).
    pub via_addr: [u32; 4],
    /// Port that goes with `to_addr`.
    pub to_port: u16,
    /// Port that goes with `via_addr`.
    pub via_port: u16,
    /// Destination the connection was scheduled to.
    pub dest_id: u32,
    /// Service the connection belongs to.
    pub svc_id: u32,
    /// S_* state (CLIENT entry).
    pub state: u8,
    /// FWD_* method, copied from the destination at scheduling time.
    pub fwd: u8,
    /// Address family of the packet after the rewrite.
    pub af: u8,
    /// CONN_F_* flags.
    pub flags: u8,
    /// Timeout of the current state in seconds (taken from TIMEOUTS on each state change).
    pub timeout: u32,
    /// Next-hop cache (REPLY entries): egress ifindex, 0 = not cached.
    pub nh_ifindex: u32,
    /// bpf_ktime_get_coarse_ns() of the last packet matching this entry.
    pub last_seen: u64,
    /// When the next hop was looked up ([`nh_stamp`] units).
    pub nh_time: u32,
    /// Next hop: destination MAC then source MAC.
    pub nh_macs: [u8; 12],
    /// FULLNAT TOA (CLIENT entry): the real server's ISN + 1, taken from its SYN-ACK. Client
    /// segments acknowledging exactly this (the handshake's last ACK and the first data before
    /// the server sends any) carry the client's address to the real server; 0 = not known yet.
    pub toa_ack: u32,
    /// SYNPROXY: added to the real server's sequence numbers on the way to the client (and
    /// subtracted from the client's acknowledgements); 0 without SYNPROXY.
    pub seq_delta: u32,
    /// SYNPROXY with timestamps (`sp_opts & SP_TS`): added to the real server's TSval on the
    /// way to the client and taken off the client's TSecr. While the real's handshake is
    /// pending (CONN_F_SYNPROXY): our cookie SYN-ACK's TSval, which encodes the client's
    /// options (see `synproxy_ts`), 0 when the client sent no timestamps.
    pub ts_delta: u32,
    /// SYNPROXY window rescaling of real -> client segments: the window field is shifted left
    /// by this (saturating at 65535) when positive, right when negative.
    pub win_shift_out: i8,
    /// The same for client -> real segments.
    pub win_shift_in: i8,
    /// SP_* bits: what SYNPROXY negotiated with the client.
    pub sp_opts: u8,
    /// CONN_X_* flags (`flags` has no bit left).
    pub xflags: u8,
}

/// `Conn::xflags` (CLIENT entries): a NAT connection without a REPLY entry. Its real server's
/// replies find this entry by [`one_entry_client_key`]; it holds their last_seen and the next
/// hop towards the client (`nh_*`).
pub const CONN_X_ONE_ENTRY: u8 = 0x1;

/// NAT_OWNERS (key: a NAT real server as (af, proto, addr, port); value: the key of the one
/// service whose connections to it keep one entry). Written by user space only, only ever added
/// (an owner's connections outlive its service), read by the packet path: when a connection
/// opens whether its CLIENT key's destination is the owner (then one entry), and for a packet
/// from that real server, which CLIENT key its connection would have.
pub const MAX_NAT_OWNERS: u32 = 65536;

/// The NAT_OWNERS key of a real server `addr`:`port` (network order) for protocol `proto`.
#[inline(always)]
pub const fn nat_real_key(af: u8, proto: u8, addr: &[u32; 4], port: u16) -> ServiceKey {
    ServiceKey {
        addr: *addr,
        port,
        proto,
        af,
    }
}

/// The CLIENT key of the one-entry connection a packet `reply` (real -> client) would belong to,
/// given the real server's owner (its NAT_OWNERS value).
#[inline(always)]
pub fn one_entry_client_key(reply: &FlowKey, owner: &ServiceKey) -> FlowKey {
    FlowKey {
        src: reply.dst,
        dst: owner.addr,
        sport: reply.dport,
        dport: owner.port,
        proto: reply.proto,
        af: reply.af,
        _pad: [0; 2],
    }
}

/// Whether `client` (found at the derived key) is the one-entry NAT connection whose real
/// server `src`:`sport` sent the reply.
#[inline(always)]
pub fn answers(client: &Conn, src: &[u32; 4], sport: u16) -> bool {
    client.flags & CONN_F_REPLY == 0
        && client.xflags & CONN_X_ONE_ENTRY != 0
        && client.fwd == FWD_MASQ
        && client.to_port == sport
        && client.to_addr == *src
}

/// `Conn::sp_opts`: timestamps negotiated (TSval/TSecr translated by `ts_delta`).
pub const SP_TS: u8 = 0x1;
/// `Conn::sp_opts`: SACK permitted (client -> real SACK blocks translated by `seq_delta`).
pub const SP_SACK: u8 = 0x2;
/// `Conn::sp_opts`: window scaling negotiated with the client (we announced `SYNPROXY_WSCALE`).
pub const SP_WSCALE: u8 = 0x4;

/// SYNPROXY's cookie SYN-ACK carries the client's handshake options in the low bits of its
/// TSval (as the kernel's `cookie_init_timestamp` does: the client echoes them in the TSecr of
/// its ACK, so nothing is stored): bits 0-3 the client's window scale (0xf: none), bit 4 SACK
/// permitted, bit 5 unused (the kernel's ECN bit: ECN is not negotiated), bits 6-7 (ours) the
/// index of the client's MSS in [`SYNPROXY_MSS_TABLE`] (IPv6: [`SYNPROXY_MSS_TABLE6`]; the
/// kernel's cookie MSS tables).
pub mod synproxy_ts;
/// The kernel's IPv4 syncookie MSS table (`msstab`): the MSS a cookie can encode.
pub const SYNPROXY_MSS_TABLE: [u16; 4] = [536, 1300, 1440, 1460];
/// The kernel's IPv6 syncookie MSS table (net/ipv6/syncookies.c `msstab`: 1280, 1480, 1500
/// and 9000 bytes of MTU minus 60), used for IPv6 clients.
pub const SYNPROXY_MSS_TABLE6: [u16; 4] = [1220, 1420, 1440, 8940];
/// The window scale SYNPROXY announces to clients that offer window scaling (Linux's default
/// with tcp_rmem's 6 MB maximum): when the real server announces another, its windows are
/// rescaled on the way to the client.
pub const SYNPROXY_WSCALE: u8 = 7;

/// The REPLY entry's key of a CLIENT entry whose key is `client_key` (one definition for the
/// packet path and for user space, which joins the two entries when listing).
#[inline(always)]
pub fn reply_key_of(client: &Conn, client_key: &FlowKey) -> FlowKey {
    let fullnat = client.fwd == FWD_FULLNAT;
    FlowKey {
        src: client.to_addr,
        dst: if fullnat {
            client.via_addr
        } else {
            client_key.src
        },
        sport: client.to_port,
        dport: if fullnat {
            client.via_port
        } else {
            client_key.sport
        },
        proto: client_key.proto,
        af: client.af,
        _pad: [0; 2],
    }
}

/// The CLIENT entry's key of a connection whose REPLY entry `reply` matched a packet of
/// protocol `proto` addressed to `dst`:`dport` (the client, or for FULLNAT the local address).
#[inline(always)]
pub fn client_key_at(reply: &Conn, proto: u8, dst: &[u32; 4], dport: u16) -> FlowKey {
    let fullnat = reply.fwd == FWD_FULLNAT;
    FlowKey {
        src: if fullnat { reply.via_addr } else { *dst },
        dst: reply.to_addr,
        sport: if fullnat { reply.via_port } else { dport },
        dport: reply.to_port,
        proto,
        af: reply.af,
        _pad: [0; 2],
    }
}

/// The CLIENT entry's key of a REPLY entry whose key is `reply_key` (the inverse of
/// [`reply_key_of`]).
#[inline(always)]
pub fn client_key_of(reply: &Conn, reply_key: &FlowKey) -> FlowKey {
    client_key_at(reply, reply_key.proto, &reply_key.dst, reply_key.dport)
}

/// Tunnel connections (FWD_TUNNEL, no REPLY entry, no local address) keep their destination's
/// tunnel settings in `Conn::via_addr[0]` (IPVS keeps them in the destination, which outlives
/// the connection; ours may be removed first), recorded by the tunnel program on the first
/// packet: type | flags << 8 | port (host order) << 16 | [`TUN_PACKED`].
#[inline(always)]
pub const fn tun_pack(tun_type: u8, tun_flags: u8, tun_port: u16) -> u32 {
    tun_type as u32 | (tun_flags as u32) << 8 | (tun_port as u32) << 16 | TUN_PACKED
}
/// Set in a recorded [`tun_pack`] value (0 = not recorded yet).
pub const TUN_PACKED: u32 = 0x8000;
/// Tunnel types and checksum flags (IPVS' IP_VS_CONN_F_TUNNEL_TYPE_* / IP_VS_TUNNEL_ENCAP_FLAG_*).
pub const TUN_IPIP: u8 = 0;
/// Generic UDP Encapsulation.
pub const TUN_GUE: u8 = 1;
/// GRE.
pub const TUN_GRE: u8 = 2;
/// Outer UDP/GRE checksum.
pub const TUN_F_CSUM: u8 = 0x1;
/// GUE remote checksum offload.
pub const TUN_F_REMCSUM: u8 = 0x2;

/// CONNS flag: this is the REPLY entry of its connection.
pub const CONN_F_REPLY: u8 = 0x1;

/// A cached next hop (DEST_NH, per destination id: the way to a real server).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NextHop {
    /// Egress ifindex; 0 = not cached.
    pub ifindex: u32,
    /// When it was looked up ([`nh_stamp`] units).
    pub time: u32,
    /// Destination MAC then source MAC.
    pub macs: [u8; 12],
    /// Unused (was the IPv4 tunnels' source address; tunnels keep their own cache now).
    pub src: u32,
}

/// Next-hop cache entries are trusted for this many [`nh_stamp`] units (~1 s), then looked up
/// again, so neighbour or route changes are picked up within about a second.
pub const NH_MAX_AGE: u32 = 1000;

/// Timestamp unit of the next-hop caches: ~1 ms (2^20 ns).
#[inline(always)]
pub const fn nh_stamp(now_ns: u64) -> u32 {
    (now_ns >> 20) as u32
}

/// PERSIST key: a persistence template, IPVS' (client address & netmask, service).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PersistKey {
    /// Client address, masked with the service's persistence netmask.
    pub caddr: [u32; 4],
    /// Service the template belongs to.
    pub svc_id: u32,
    /// AF_INET or AF_INET6.
    pub af: u8,
    /// Zero: keys are hashed whole.
    pub _pad: [u8; 3],
}

/// PERSIST value: where the client's connections go while the template lives.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Persist {
    /// Destination the client's connections go to.
    pub dest_id: u32,
    /// 0 from the packet path; [`PERSIST_SYNCED`] when a sync backup wrote it.
    pub _pad: u32,
    /// bpf_ktime_get_coarse_ns() when a controlled connection last opened or closed.
    pub last_seen: u64,
}

/// `Persist::_pad` of a template learnt from a sync master: not announced back by a local
/// master (the packet path never sets it).
pub const PERSIST_SYNCED: u32 = 1;

/// CONNS flag: the connection was placed by a persistence template (refreshes it when closing).
pub const CONN_F_PERSIST: u8 = 0x2;
/// CONNS flag: SYNPROXY connection whose real server has not answered our SYN yet. Meanwhile
/// `seq_delta` holds the cookie (our ISN towards the client) and, in the CLIENT entry,
/// `toa_ack` the client's ISN (to send the SYN again).
pub const CONN_F_SYNPROXY: u8 = 0x4;
/// CONNS flag (CLIENT entry): written by a sync backup from a master's announcement and not
/// seen locally since (the packet path clears it). A sync master does not announce such
/// connections back, so two directors running both daemons do not keep each other's copies
/// alive forever.
pub const CONN_F_SYNCED: u8 = 0x8;

/// CONNS flag (CLIENT entries): the connection is counted in its destination's DEST_CONNS
/// (cleared when it is uncounted, so it is never taken off twice).
pub const CONN_F_COUNTED: u8 = 0x10;

/// DEST_CONNS value (index = destination id): IPVS' activeconns (TCP in ESTABLISHED) and
/// inactconns (every other counted connection), kept by the packet path with atomic adds when a
/// connection opens or changes state, and by user space when it expires (`dataplane::timers`).
/// `overloaded` is IPVS' IP_VS_DEST_F_OVERLOAD (upper/lower thresholds).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DestConns {
    /// Connections in ESTABLISHED (IPVS' activeconns).
    pub active: u64,
    /// Every other counted connection (IPVS' inactconns).
    pub inactive: u64,
    /// Non-zero while the destination is over its upper threshold.
    pub overloaded: u64,
    /// Room for later use; zero.
    pub _spare: u64,
}

/// Most destinations the scan schedulers look at per service (the first ones in the service's
/// order; IPVS has no limit). A larger service schedules over its first `MAX_SCAN_DESTS`.
pub const MAX_SCAN_DESTS: u32 = 32;
/// lblcr: most destinations in one destination-address set.
pub const LBLCR_SET_MAX: usize = 8;
/// lblc/lblcr: a destination-address entry unused this long is forgotten (IPVS'
/// lblc_expiration / lblcr_expiration default, 24 h).
pub const LBLC_EXPIRATION_S: u64 = 24 * 60 * 60;

/// LBLC key: (service, the packet's destination address).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LblcKey {
    /// The packet's destination address.
    pub daddr: [u32; 4],
    /// Service the entry belongs to.
    pub svc_id: u32,
    /// AF_INET or AF_INET6.
    pub af: u8,
    /// Zero: keys are hashed whole.
    pub _pad: [u8; 3],
}

/// LBLC value: lblc uses `dests[0]`; lblcr a set of `len` destinations.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lblc {
    /// Destination ids (lblc: only the first).
    pub dests: [u32; LBLCR_SET_MAX],
    /// How many of `dests` are used (lblcr).
    pub len: u32,
    /// Padding to the C layout; zero.
    pub _pad: u32,
    /// bpf_ktime_get_coarse_ns() of the last use, and of the set's last change (lblcr).
    pub last_use: u64,
    /// bpf_ktime_get_coarse_ns() of the set's last change (lblcr).
    pub last_mod: u64,
}

/// Most lblc/lblcr destination-address entries (LRU beyond).
pub const MAX_LBLC: u32 = 65536;

/// CONNS flag: SYNPROXY connection whose real server answered: every segment is translated
/// (sequence numbers, timestamps, SACK blocks, windows; ebpf/src/seqadj.rs).
pub const CONN_F_SEQADJ: u8 = 0x20;

/// CONNS flag: a closed SYNPROXY connection on whose flow the client sent a new SYN: its next
/// ACK with a valid cookie opens a new connection (session reuse). Without it an ACK is the old
/// connection's: its last ACK checks as a cookie whenever both sides sent as many bytes (a
/// health check that connects and closes), and must not open anything.
pub const CONN_F_REUSE_SYN: u8 = 0x40;

/// CONNS flag: the other entry of this entry's connection is gone (the full table evicted it).
/// Set by user space (`dataplane::timers`); the packet path answers the next TCP segment that
/// matches it with a RST to its sender and removes the entry, so that end learns at once that
/// the connection is over instead of retransmitting into a half-forgotten one.
pub const CONN_F_ORPHAN: u8 = 0x80;

/// CONN_FILL value (one entry, BPF_F_MMAPABLE): how full the connection table is and what to
/// do when it is. The packet path adds one to `entries` (atomically) for every entry it
/// creates and takes one off for every entry it removes; user space does the same through a
/// shared mapping, and `dataplane::timers` moves what the LRU evicted silently (the count
/// exceeds what the table holds) into `evicted`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnFill {
    /// Entries in CONNS (two per NAT/FULLNAT connection, one per DR/TUN connection).
    pub entries: u64,
    /// Table-full policy. 0: evict (a new connection takes the least recently used entry's
    /// place, IPVS' drop_entry defence). Otherwise refuse: a new connection that would bring
    /// `entries` above this is dropped (counter DROP_TABLE_FULL); established ones never go.
    pub refuse_above: u64,
    /// Entries evicted by the LRU since the table was made (user space only).
    pub evicted: u64,
    /// Room for later use; zero.
    pub _spare: u64,
}
/// CONFIG array indexes (settings written by user space, read by the packet path).
pub mod config {
    /// Number of port-zero services (IPVS' nullsvc_counter): when non-zero, a miss on
    /// (vip, vport) tries (vip, 0).
    pub const PORT_ZERO_SERVICES: u32 = 0;
    /// Number of possible CPUs (FULLNAT source-port ranges are split between them); 0 = 1.
    pub const NR_CPUS: u32 = 1;
    /// Non-zero: FULLNAT does not insert TOA options.
    pub const TOA_OFF: u32 = 2;
    /// Non-zero: IP fragments addressed to a VIP that the packet path does not forward (a
    /// later fragment whose first was not seen, no service, refused) are dropped (alibaba
    /// `defence_frag_drop`); 0: handed to the kernel.
    pub const FRAG_DROP: u32 = 3;
    /// Non-zero: TCP/UDP addressed to a VIP address on a port no service listens on is dropped
    /// (floods at random ports; alibaba `defence_udp_drop`); 0: handed to the kernel (the VIP
    /// may be a local address with local services, e.g. sshd).
    pub const NO_SERVICE_DROP: u32 = 4;
    /// Number of fwmark services: when non-zero, a miss on (vip, vport) asks the fwmark
    /// classifier (`FWMARK_CLASS`) before trying port-zero services.
    pub const FWMARK_SERVICES: u32 = 5;
    /// Non-zero: SYNPROXY defer mode (alibaba `synproxy_defer`): a valid cookie ACK without
    /// data opens nothing; the real server's side is opened by the client's first data segment.
    pub const SYNPROXY_DEFER: u32 = 6;
    /// Non-zero: IPVS' `sloppy_tcp`: a TCP segment without a connection (other than a RST)
    /// is scheduled like a SYN, so a connection moved to this director mid-stream (ECMP
    /// re-hash after another director failed) continues; 0: only a bare SYN opens one.
    pub const SLOPPY_TCP: u32 = 7;
    /// The firewall's state in one word (`super::fw::STATE_*`): whether rules exist, which
    /// generation of `FW_TRIE` is live, the default policy. One write switches a whole rule set.
    pub const FW: u32 = 8;
    /// Non-zero: a frame going back out of the interface it came in on is redirected there
    /// through `TX_PORTS` instead of XDP_TX. Set by the loader when it attaches to a veth, whose
    /// XDP_TX frames are not reliably delivered to its peer; XDP_TX (the faster path) otherwise.
    pub const TX_VIA_DEVMAP: u32 = 9;
    /// Entries of the CONFIG array.
    pub const COUNT: u32 = 10;
}

/// Per-service and per-destination counters (per CPU; summed in user space).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets client -> real server.
    pub inpkts: u64,
    /// Packets real server -> client.
    pub outpkts: u64,
    /// Bytes client -> real server.
    pub inbytes: u64,
    /// Bytes real server -> client.
    pub outbytes: u64,
}

/// SVC_META value: service settings only user space reads.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceMeta {
    /// Persistence engine name (`--pe`), NUL-padded.
    pub pe_name: [u8; 16],
    /// alibaba `-V` ESTABLISHED timeout in seconds, 0 = none.
    pub est_timeout: u32,
    /// Padding to the C layout; zero.
    pub _pad: u32,
}

/// EST value: the rate estimator's state for one service or destination (user space only).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Estimate {
    /// Counters at the last sample.
    pub last: Stats,
    /// CLOCK_MONOTONIC ns of the last sample.
    pub last_ns: u64,
    /// Smoothed rates per second, scaled by 2^10 (cps, inpps, outpps, inBps, outBps).
    pub rate: Stats,
}

/// LADDRS key: a FULLNAT local address of a service.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LaddrKey {
    /// The local address, network-order words.
    pub addr: [u32; 4],
    /// Service whose pool holds it.
    pub svc_id: u32,
    /// AF_INET or AF_INET6.
    pub af: u8,
    /// Zero: keys are hashed whole.
    pub _pad: [u8; 3],
}

/// LADDRS value.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Laddr {
    /// Interface name (`-F`), NUL-padded; empty when not given.
    pub ifname: [u8; 16],
    /// Insertion sequence number (listing order).
    pub seq: u64,
    /// Connections using this address, and source-port allocation failures (FULLNAT path).
    pub conns: u64,
    /// Times no free source port was found on this address.
    pub port_conflicts: u64,
}

/// ACL key: a client address on a service's DPVS deny list (blklst, `ipvsadm -U -k`) or
/// allow list (whtlst, `ipvsadm -O -2`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AclKey {
    /// Client address, network-order words.
    pub addr: [u32; 4],
    /// Service whose list holds it.
    pub svc_id: u32,
    /// `acl::DENY` or `acl::ALLOW`.
    pub kind: u8,
    /// AF_INET or AF_INET6.
    pub af: u8,
    /// Zero: keys are hashed whole.
    pub _pad: [u8; 2],
}

/// DPVS deny/allow lists (checked when a connection opens, as DPVS does).
pub mod acl {
    /// [`AclKey::kind`] of a deny-list (blklst) entry.
    pub const DENY: u8 = 1;
    /// [`AclKey::kind`] of an allow-list (whtlst) entry.
    pub const ALLOW: u8 = 2;
    /// ACL_STATE bits per service id: which of its lists have entries.
    pub const HAS_DENY: u32 = 1;
    /// The service's allow list has entries: only listed clients connect.
    pub const HAS_ALLOW: u32 = 2;
}

/// Capacity of the ACL map (entries over all services and both lists).
pub const MAX_ACL: u32 = 65536;

// ---------------------------------------------------------------------------------------------
// fwmark classifier (XDP sees no netfilter marks: (af, proto, destination prefix, port range)
// -> mark is configured with `xlvs fwmark` and looked up here)
// ---------------------------------------------------------------------------------------------

/// FWMARK_CLASS key data, after the LPM trie's prefix length: af, protocol and padding (always
/// [`FWMARK_PREFIX_BASE`] bits of the prefix), then the destination address (network order).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FwmarkPrefix {
    /// AF_INET or AF_INET6 (matched whole).
    pub af: u8,
    /// IPPROTO_TCP or IPPROTO_UDP (matched whole).
    pub proto: u8,
    /// Zero: part of the fixed prefix.
    pub _pad: [u8; 2],
    /// Destination address, network order (the prefix proper).
    pub addr: [u32; 4],
}

/// Prefix bits of a [`FwmarkPrefix`] before the address (af, proto, padding).
pub const FWMARK_PREFIX_BASE: u32 = 32;

/// One destination-port range of a classifier entry (host order, inclusive).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FwmarkPortRule {
    /// First port of the range.
    pub port_lo: u16,
    /// Last port of the range.
    pub port_hi: u16,
    /// Mark given to packets in the range.
    pub mark: u32,
}

/// Port ranges one classifier entry (prefix) can hold, its own and those of every shorter
/// prefix covering it (user space copies them in, so one longest-prefix lookup suffices).
pub const MAX_FWMARK_PORT_RULES: u32 = 16;

/// FWMARK_CLASS value: the port ranges that apply to a destination prefix (rules never
/// overlap, so at most one matches).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FwmarkRules {
    /// How many of `rules` are used.
    pub count: u32,
    /// The ranges, non-overlapping.
    pub rules: [FwmarkPortRule; MAX_FWMARK_PORT_RULES as usize],
}

/// FWMARK_RULES key (user space only): one classifier rule as configured, the source from
/// which FWMARK_CLASS is computed. Ports in host order, inclusive.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FwmarkRuleKey {
    /// Mark the rule gives.
    pub mark: u32,
    /// AF_INET or AF_INET6.
    pub af: u8,
    /// IPPROTO_TCP or IPPROTO_UDP.
    pub proto: u8,
    /// Destination prefix length.
    pub plen: u8,
    /// Zero: keys are compared whole.
    pub _pad: u8,
    /// Destination prefix, network order.
    pub addr: [u32; 4],
    /// First destination port.
    pub port_lo: u16,
    /// Last destination port.
    pub port_hi: u16,
}

/// Classifier rules over all prefixes (FWMARK_RULES), and prefixes (FWMARK_CLASS).
pub const MAX_FWMARK_RULES: u32 = 4096;

/// FWMARK_PORTS_FREE: for TCP then UDP, one bit per destination port, set when no classifier
/// rule covers that port (at any address). While fwmark services exist, a packet to an address
/// that is no VIP is asked to the classifier only when its port's bit is clear (all clear, as
/// a new map is, means "ask"). Entries of [`FWMARK_PORT_WORDS`] words of 32 ports each.
pub const FWMARK_PORT_WORDS: u32 = 64;
/// Entries of FWMARK_PORTS_FREE: 65536 ports per protocol, two protocols.
pub const FWMARK_PORT_ENTRIES: u32 = 2 * 65536 / (32 * FWMARK_PORT_WORDS);

/// The FWMARK_PORTS_FREE entry and bit of a (protocol, host-order port): (entry, word, bit).
#[inline(always)]
pub const fn fwmark_port_bit(udp: bool, port: u16) -> (u32, u32, u32) {
    let per_entry = 32 * FWMARK_PORT_WORDS;
    let port = port as u32;
    let entry = if udp { FWMARK_PORT_ENTRIES / 2 } else { 0 } + port / per_entry;
    let in_entry = port % per_entry;
    (entry, in_entry / 32, in_entry % 32)
}

// ---------------------------------------------------------------------------------------------
// Firewall (`xlvs fw`): allow/deny by source prefix, protocol and destination port, global or
// per destination address, checked for packets of no connection before the service lookup
// ---------------------------------------------------------------------------------------------

/// FW_TRIE key data, after the LPM trie's prefix length: the generation and family (always
/// matched whole), then the source address (the prefix proper). Also the key of FW_HOSTS
/// (whole addresses, exact match). Short on purpose: the trie compares keys at every node.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FwKey {
    /// Rule-set generation (0 or 1) the entry belongs to.
    pub generation: u8,
    /// AF_INET or AF_INET6.
    pub af: u8,
    /// Zero: part of the fixed prefix.
    pub _pad: [u8; 2],
    /// Source address, network order (the prefix proper).
    pub src: [u32; 4],
}

/// Prefix bits of a [`FwKey`] before the source address.
pub const FW_KEY_BASE: u32 = 32;

/// FW_SCOPED key data: rules for one destination address (`--vip`): generation, family, the
/// destination (matched whole), then the source address (the prefix proper).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FwScopedKey {
    /// Rule-set generation (0 or 1) the entry belongs to.
    pub generation: u8,
    /// AF_INET or AF_INET6.
    pub af: u8,
    /// Zero: part of the fixed prefix.
    pub _pad: [u8; 2],
    /// Destination address the rules are scoped to.
    pub vip: [u32; 4],
    /// Source address, network order (the prefix proper).
    pub src: [u32; 4],
}

/// Prefix bits of a [`FwScopedKey`] before the source address.
pub const FW_SCOPED_KEY_BASE: u32 = 32 + 128;

/// One rule as the packet path matches it: protocol (0: any), destination ports (host order,
/// inclusive), verdict, and the rule's id (its counter in FW_HITS).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FwMatch {
    /// The rule's counter index in FW_HITS.
    pub id: u32,
    /// First destination port.
    pub port_lo: u16,
    /// Last destination port.
    pub port_hi: u16,
    /// IPPROTO_* the rule applies to; 0: any.
    pub proto: u8,
    /// `fw::ALLOW` or `fw::DENY`.
    pub action: u8,
    /// Padding to the C layout; zero.
    pub _pad: [u8; 2],
}

/// Rules one FW_TRIE entry (prefix) can hold: its own and those of every shorter prefix
/// covering it (user space copies them in, in the order they are to be tried, so one
/// longest-prefix lookup decides).
pub const MAX_FW_MATCHES: u32 = 8;

/// FW_TRIE value.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FwEntry {
    /// How many of `matches` are used.
    pub count: u32,
    /// The rules, in the order they are tried.
    pub matches: [FwMatch; MAX_FW_MATCHES as usize],
}

/// Rules that can exist at once (ids index FW_HITS).
pub const MAX_FW_RULES: u32 = 1 << 20;
/// Prefixes FW_TRIE and FW_SCOPED can hold over both generations (a range becomes several
/// prefixes; while a new set is written the old one is still there).
pub const MAX_FW_PREFIXES: u32 = 1 << 23;
/// Whole source addresses (/32, /128) FW_HOSTS can hold over both generations.
pub const MAX_FW_HOSTS: u32 = 1 << 22;

/// Firewall verdicts and the bits of `CONFIG[config::FW]`.
pub mod fw {
    /// Verdict: let the packet through.
    pub const ALLOW: u8 = 1;
    /// Verdict: drop the packet.
    pub const DENY: u8 = 2;
    /// FW_TRIE has entries of the live generation.
    pub const STATE_RULES: u32 = 1;
    /// The live generation of FW_TRIE (its keys' `gen`) is 1.
    pub const STATE_GEN1: u32 = 2;
    /// Default policy drop for traffic to this host that no rule allows.
    pub const STATE_POLICY_DROP: u32 = 4;
    /// FW_SCOPED has entries of the live generation (some rule is scoped to a destination).
    pub const STATE_SCOPED: u32 = 8;
    /// FW_HOSTS has entries of the live generation.
    pub const STATE_HOSTS: u32 = 16;
    /// FW_ICMP_LIMIT holds a rate limit for ICMP/ICMPv6.
    pub const STATE_ICMP_LIMIT: u32 = 32;
    /// FW_CONN_LIMITS holds a per-source connection budget for some VIP.
    pub const STATE_CONN_LIMIT: u32 = 64;
}

/// A rate limit as the packet path applies it (GCRA: one "theoretical arrival time" per
/// bucket, no division on the packet path). A packet is let through when, after adding
/// `interval_ns` to the bucket's time (at least now), that time is at most `tolerance_ns`
/// ahead of now: `rate` per period on average, `burst` at once.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FwLimit {
    /// Nanoseconds one packet costs (period / rate).
    pub interval_ns: u64,
    /// How far ahead of now a bucket may run: `burst` × `interval_ns`.
    pub tolerance_ns: u64,
    /// FW_ICMP_LIMIT: the one bucket's time (ns, bpf_ktime_get_coarse_ns); unused per VIP.
    pub tat: u64,
    /// Packets dropped over this limit (atomic adds; user space carries it across changes).
    pub dropped: u64,
}

/// FW_CONN_LIMITS key: a VIP (family, address) with a per-source connection budget.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FwVipKey {
    /// Address family of `vip` (AF_INET or AF_INET6).
    pub af: u8,
    /// Zero (explicit padding: keys are compared as bytes).
    pub _pad: [u8; 3],
    /// The VIP, network byte order (IPv4 in the first word).
    pub vip: [u32; 4],
}

/// FW_CONN_BUCKETS key: one source's bucket towards one VIP (IPv6 sources by /64: one
/// subscriber's addresses share a budget).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FwBucketKey {
    /// Address family of `vip` and `src`.
    pub af: u8,
    /// Zero (explicit padding: keys are compared as bytes).
    pub _pad: [u8; 3],
    /// The VIP the budget is for, network byte order.
    pub vip: [u32; 4],
    /// The source (IPv6: its /64, the low 64 bits zero), network byte order.
    pub src: [u32; 4],
}

/// VIPs that can have a connection budget.
pub const MAX_FW_CONN_LIMITS: u32 = 4096;
/// Sources whose buckets are remembered (least recently used forgotten first: a flood from
/// many sources cannot grow the table, a forgotten source starts again with a full burst).
pub const MAX_FW_CONN_BUCKETS: u32 = 1 << 16;

/// ADDR_FILTER: which addresses a packet of some connection can carry, so that the packet path
/// passes any other packet without asking the connection table. Two sides of
/// [`ADDR_FILTER_SLOTS`] entries, indexed by [`addr_filter_slot`]: destinations (VIPs, and the
/// destination of any CLIENT entry user space writes) then sources (real servers: a REPLY
/// entry's source is its real's address). User space writes 1 into a slot, never 0 (a slot
/// may be shared by several addresses, and an address may outlive its service or destination
/// in connections still open), so no read-modify-write races; the last entry says the filter
/// is complete ([`ADDR_FILTER_READY`]: 0 = not yet, every packet is looked up).
pub const ADDR_FILTER_SLOTS: u32 = 4096;
/// The first entry of the sources' side.
pub const ADDR_FILTER_SRC: u32 = ADDR_FILTER_SLOTS;
/// The entry saying the filter holds every address in use (written last, by user space).
pub const ADDR_FILTER_READY: u32 = 2 * ADDR_FILTER_SLOTS;
/// Size of the ADDR_FILTER array: both sides and the ready flag.
pub const ADDR_FILTER_ENTRIES: u32 = ADDR_FILTER_READY + 1;
const _: () =
    assert!(ADDR_FILTER_SRC == ADDR_FILTER_SLOTS && ADDR_FILTER_READY == 2 * ADDR_FILTER_SLOTS);

/// The slot of an address (words as in [`FlowKey`]) on one side of ADDR_FILTER.
#[inline(always)]
pub const fn addr_filter_slot(af: u8, addr: &[u32; 4]) -> u32 {
    let mut h = (af as u32).wrapping_mul(0x9e37_79b9);
    h = (h ^ addr[0]).wrapping_mul(0x85eb_ca6b);
    h = (h ^ addr[1]).wrapping_mul(0xc2b2_ae35);
    h = (h ^ addr[2]).wrapping_mul(0x85eb_ca6b);
    h = (h ^ addr[3]).wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h % ADDR_FILTER_SLOTS
}

/// EST key of a service id / destination id.
pub const fn est_key_service(id: u32) -> u32 {
    id
}
/// EST key of a destination id (top bit set, apart from the services').
pub const fn est_key_dest(id: u32) -> u32 {
    id | 0x8000_0000
}

/// Indexes of the META array (user-space allocation cursors).
pub mod meta {
    /// The next service id to hand out.
    pub const NEXT_SERVICE_ID: u32 = 0;
    /// The next destination id to hand out.
    pub const NEXT_DEST_ID: u32 = 1;
    /// Local-address insertion counter (low and high halves).
    pub const LADDR_SEQ_LO: u32 = 2;
    /// High half of the local-address insertion counter.
    pub const LADDR_SEQ_HI: u32 = 3;
    /// Entries of the META array.
    pub const COUNT: u32 = 4;
}

/// Declares the pinned maps' names once (each is the name of the map's static in the XDP
/// program, so user space opens exactly what the program declares).
macro_rules! map_names {
    ($($name:ident),* $(,)?) => {
        /// Names of the pinned maps.
        pub mod maps {
            $(
                /// Pin name of this map: the name of its static in the XDP program.
                pub const $name: &str = stringify!($name);
            )*
            /// Every map the program pins by name, in one list for open/adopt/remove.
            pub const ALL: [&str; [$($name),*].len()] = [$($name),*];
            /// The tail-call array. Not pinned by name: every loaded version of the program
            /// has its own (pinned as `JUMP_<program id>`), so a packet's whole path runs one
            /// version.
            pub const JUMP: &str = "JUMP";
            /// Prefix of each program version's pinned JUMP array.
            pub const JUMP_PIN_PREFIX: &str = "JUMP_";
        }
    };
}

map_names! {
    SERVICES,
    DESTS,
    SCHED_TABLE,
    RR_POS,
    CONNS,
    DEST_NH,
    SVC_STATS,
    DEST_STATS,
    COUNTERS,
    TIMEOUTS,
    TX_PORTS,
    SVC_META,
    META,
    EST,
    LADDRS,
    PERSIST,
    CONFIG,
    LADDR_POOL,
    LADDR_COUNT,
    VIPS,
    ACL,
    ACL_STATE,
    DEST_CONNS,
    LBLC,
    FWMARK_CLASS,
    FWMARK_RULES,
    CONN_FILL,
    FWMARK_PORTS_FREE,
    FW_TRIE,
    FW_SCOPED,
    FW_HOSTS,
    FW_HITS,
    ADDR_FILTER,
    NAT_OWNERS,
    FW_ICMP_LIMIT,
    FW_CONN_LIMITS,
    FW_CONN_BUCKETS,
}

/// Declares the map keys and values shared with user space once: each one's size is checked
/// at compile time (both sides agree byte for byte) and, for user space, it is `aya::Pod`.
macro_rules! abi_types {
    ($($ty:ident = $size:literal),* $(,)?) => {
        $(const _: () = assert!(core::mem::size_of::<$ty>() == $size);)*
        #[cfg(feature = "user")]
        mod pod {
            use super::*;
            $(
                // SAFETY: `#[repr(C)]`, explicit padding (the size is asserted above) and plain
                // integer fields: every byte pattern is a valid value.
                unsafe impl aya::Pod for $ty {}
            )*
        }
    };
}

abi_types! {
    ServiceKey = 20,
    Service = 32,
    Dest = 40,
    FlowKey = 40,
    Conn = 96,
    NextHop = 24,
    Stats = 40,
    ServiceMeta = 24,
    Estimate = 88,
    LaddrKey = 24,
    PersistKey = 24,
    Persist = 16,
    DestConns = 32,
    ConnFill = 32,
    LblcKey = 24,
    Lblc = 56,
    Laddr = 40,
    AclKey = 24,
    FwmarkPrefix = 20,
    FwmarkRules = 132,
    FwmarkRuleKey = 28,
    FwKey = 20,
    FwScopedKey = 36,
    FwMatch = 12,
    FwEntry = 100,
    FwLimit = 32,
    FwVipKey = 20,
    FwBucketKey = 36,
}

// The packet path changes a connection's state with a compare-and-exchange on the aligned
// 32-bit word that `state` opens (ebpf/src/state.rs `claim`).
const _: () = assert!(core::mem::offset_of!(Conn, state) % 4 == 0);

#[cfg(test)]
mod addr_filter_tests {
    use super::*;

    #[test]
    fn slots_stay_in_range_and_spread_a_subnet() {
        let mut used = [false; ADDR_FILTER_SLOTS as usize];
        let mut shared = 0;
        for host in 0..256u32 {
            let addr = [u32::from_be_bytes([198, 18, 2, host as u8]), 0, 0, 0];
            let slot = addr_filter_slot(AF_INET, &addr);
            assert!(slot < ADDR_FILTER_SLOTS);
            if used[slot as usize] {
                shared += 1;
            }
            used[slot as usize] = true;
        }
        // 256 addresses in 4096 slots: a handful share one (each costs a lookup, no more).
        assert!(shared < 32, "{shared} of 256 addresses share a slot");
        // The family is part of the slot: an IPv6 address with the same words differs.
        let words = [u32::from_be_bytes([198, 18, 2, 1]), 0, 0, 0];
        let same = (0..64u32)
            .filter(|i| {
                let w = [words[0] ^ i, 0, 0, 0];
                addr_filter_slot(AF_INET, &w) == addr_filter_slot(AF_INET6, &w)
            })
            .count();
        assert!(same < 4, "{same}");
    }
}
