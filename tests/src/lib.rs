//! The network-namespace test bed: namespaces and veth links ([`netns`]), the standard
//! client/director/reals topology with xlvs attached ([`lab`]), and tiny real servers
//! ([`servers`]). Used by the end-to-end tests in `tests/tests/` and by the demo and benchmarks.
//!
//! # What the tests cover
//!
//! * Pure logic (scheduler tables, pool allocation, checksums helpers, model conversions, estimator)
//!   has unit tests that need no root.
//! * `tests/tests/packet_path.rs` runs the real program on crafted frames through BPF_PROG_TEST_RUN
//!   in an empty namespace and checks output bytes (addresses, ports, checksums), actions, states,
//!   counters, timeouts, LRU behaviour and table errors.
//! * `tests/tests/fullnat_path.rs`, `synproxy_path.rs`, `flood_policy.rs` (TEST_RUN) and
//!   `tests/tests/fullnat_e2e.rs` (curl through the VIP to reals with no route to the client,
//!   rules and `-G` through the `ipvsadm` binary, TOA captured on the real server, SYN flood
//!   against SYNPROXY) cover FULLNAT, TOA, SYNPROXY and the flood policies;
//!   `tests/tests/synproxy_e2e.rs` moves 4 MB down and 1 MB up through SYNPROXY (NAT and
//!   FULLNAT, IPv4 and IPv6) with every 25th data packet dropped on arrival (nftables: this kernel has no
//!   netem), byte-exact, and checks `ss -ti` (ts, sack, wscale) and the kernels' counters (SACK
//!   recovery on the real, no SACK block discarded, no PAWS drop); it also runs short
//!   connections with port reuse, 320 concurrent short connections (known issue: under heavy
//!   load a rare one is reset, and more cookie ACKs are counted as opened than connections
//!   exist; tolerated up to 2 % and printed) and defer mode through `xlvs set`. IPv6 there
//!   (the lab's links get 2001:db8:N::/64 without link-local addresses, so the test adds
//!   permanent neighbour entries: the kernel sends no solicitation for a forwarded packet without
//!   one): curl -6 through a NAT service while a second client namespace floods 600 SYNs from a
//!   raw socket (a capture on the real shows none of them, the client's SYNs do arrive), FULLNAT
//!   with TOA 253 decoded from a capture on the real. `synproxy_path.rs` has the IPv6 handshakes
//!   in TEST_RUN (`mod v6`: IPv6 MSS table, TOA 253, translation with and without timestamps,
//!   resend, RST, reuse, defer, extension headers passed).
//! * `tests/tests/schedulers.rs` (TEST_RUN) checks every scheduler's defining property: for lc,
//!   wlc, sed, nq, ovf and fo each new connection of a random script of opens, handshakes and resets
//!   must go where IPVS' algorithm (written out in the test from the kernel's sources) sends it;
//!   rr order, wrr proportions over 10 000 connections, dh, lblc/lblcr overload behaviour,
//!   thresholds with expiry by the timers.
//! * Connection sync: `syncd` unit tests (codec incl. malformed input and noise, clamps, flags,
//!   send policy), `syncd/tests/kernel_wire.rs` (the kernel's captured datagrams decode, our
//!   encoder reproduces them byte for byte, and a message of ours with IPv6/fwmark/DR/template
//!   records that the kernel's backup accepted, `golden/kernel-accepts-ours.txt`),
//!   `tests/tests/sync_path.rs` (imported connections and
//!   templates through BPF_PROG_TEST_RUN), `tests/tests/sync_e2e.rs` (two directors, a TCP
//!   connection survives the switch to the backup while an unsynced one does not; garbage
//!   datagrams counted; the kernel master's captured datagrams fill our backup's table; the oracle's ipvsadm transcript `syncd/tests/golden/ipvsadm-daemon.txt`
//!   replayed with unicast groups instead of multicast ones).
//! * `tests/tests/fwmark_path.rs` (TEST_RUN: prefix, port range, protocol, IPv4/IPv6, lookup order,
//!   persistence across ports, all-or-nothing rule changes), `fwmark_e2e.rs` (a rule made by the
//!   real iptables, saved and imported; one persistent fwmark service for ports 80 and 443 through
//!   `ipvsadm`, and through keepalived's `virtual_server fwmark 1` with the unfed-mark warning) and
//!   `fwmark_cli.rs` (argument errors; real iptables-save/ip6tables-save and `nft list ruleset`
//!   output, refusals with line numbers).
//! * `tests/tests/frag_path.rs` (TEST_RUN: IPv6 with 1–4 extension headers forwarded intact with
//!   valid checksums, refused layouts counted, IPv4/IPv6 fragments both ways reassembled by the
//!   test with valid checksums, out-of-order fragments, `frag_drop`, DR, FULLNAT, tunnel refusal) and
//!   `tests/tests/frag_e2e.rs` (3000-byte UDP datagrams through a NAT VIP, fragmented by the
//!   client's and the real's kernels, echoed byte-exact; IPv4 and IPv6).
//! * Route bridge: `keepalived-conf/tests/route_bridge.rs` (the block, defaults, messages with
//!   lines), `quagga-bridge` unit tests (eligibility gates, rise/fall/debounce, rendered bird and
//!   FRR configuration accepted by `bird -p` / `bgpd -C`, FRR diffs and read-back, status view),
//!   `tests/tests/route_bridge_e2e.rs` (one director behind a real FRR router: own bird, VRRP
//!   gating, drain with MED, reload without session reset, SIGKILL withdrawn within 1.5 s and
//!   adopted on restart, `--dont-release-ipvs` restart without a gap, existing bird and its
//!   refusals, own FRR, OSPF stub), `tests/tests/cluster_e2e.rs` (three directors, ECMP router
//!   with BFD: spread, withdrawal losing no request, DR/TUN connections surviving director loss,
//!   FULLNAT local addresses, silent death), `tests/tests/sloppy_path.rs` (TEST_RUN: a second
//!   director continues flows on the first one's reals).
//! * `tests/tests/nat_e2e.rs` builds client/director/reals namespaces, attaches with the `xlvs`
//!   binary, and sends real TCP and UDP through the VIP.
//! * `tests/tests/tunnel_path.rs` (TEST_RUN) checks the encapsulated bytes of every tunnel type and
//!   family pair (outer addresses, lengths, protocol, GUE/GRE headers, UDP/GRE/IP checksums, TTL)
//!   and the ICMP/ICMPv6 too-big answers; `tests/tests/tunnel_e2e.rs` runs real TCP through the
//!   VIP to a real decapsulating with the kernel's ipip/sit/ip6tnl/gre/ip6gre/fou devices and a
//!   too-big upload that needs our ICMP (skipped on kernels without those devices), plus NAT/DR
//!   over IPv6 (ignored for now: the dual-stack lab's neighbour discovery towards the real).
//! * veth specifics are handled by the test bed (`tests/src/netns.rs::prepare_endpoint`): senders
//!   turn tx checksum offload off (veth passes CHECKSUM_PARTIAL packets whose L4 checksum holds only
//!   the pseudo-header sum, which an XDP rewrite cannot fix), and veth ends that receive XDP_TX or
//!   redirected frames get GRO on (which gives them the NAPI context those frames need; without it
//!   they are dropped silently).
//! * Test namespaces and pin directories are named per run and removed on drop, also on panic.
//!
//!
//! Operations:
//!
//! * Boot: `packaging/systemd/` orders `xlvs.service` (`xlvs boot`) before `xlvs-timers`,
//!   `ipvsadm` and `keepalived`, which `Require` it: tables are never programmed at boot on no
//!   interface. `tests/tests/boot_path.rs` reads the units (`tests/src/units.rs`: After/Before,
//!   Type, EnvironmentFile, `$VAR` expansion), runs their commands in that order in a fresh lab
//!   (Type=notify waits for READY=1) and checks traffic on both VIPs and the metrics;
//!   `tests/tests/packaging.rs` installs the packages with `dpkg --root` into a throwaway root
//!   (Debian's libc6/dash extracted as debootstrap's first stage, over Debian's keepalived and
//!   ipvsadm, which are taken over), runs the binaries there by chroot, checks conffiles, man
//!   pages and completions, runs `systemd-analyze --root verify` on the units, removes and purges.
//! * keepalived compatibility: `tests/tests/keepalived_ops.rs` replays the recorded 2.2.7
//!   scenarios (`keepalived/tests/golden/keepalived-2.2.7/`): VRRP syslog lines per daemon and
//!   ident under a private /dev/log, the dumps parsed with keepalived-exporter's rules
//!   (`tests/src/ka_exporter.rs`) and compared with 2.2.7's files (keys, order, layout),
//!   STATS_CLEAR, the checker scenario's lines, `--signum`/`--version`, and a signal storm
//!   (~800 signals in 4 s) under traffic.
//! * Metrics: `tests/tests/metrics_prometheus.rs` has Debian's Prometheus scrape `xlvs metrics`
//!   and checks PromQL results against `ipvsadm -Ln --stats --exact` and `ipvsadm -Ln`.
//! * Migration: `ipvsadm-rs/tests/golden/kernel-6.1-save-n.txt` (recorded on the kernel) restores
//!   and saves back byte for byte; `tests/tests/live_migration.rs`: a kernel-IPVS DR director
//!   stand-in (keepalived 2.2.7 holding the VIP, an nftables netdev `fwd` doing what IPVS DR does,
//!   sync datagrams in the kernel's wire format) hands its established connections to an xlvs
//!   director (sync backup, our keepalived as VRRP backup): after the VIP moves, the announced
//!   connections go on and an unannounced one is dropped.

pub mod addrs;
pub mod capture;
pub mod cluster;
pub mod decap;
pub mod ka_exporter;
pub mod kadiff;
pub mod keepalived;
pub mod lab;
pub mod netns;
pub mod packet;
pub mod poll;
pub mod rawsock;
pub mod rng;
pub mod routing;
pub mod servers;
pub mod services;
pub mod skip;
pub mod smtp_sink;
pub mod testbed;
pub mod units;

pub use skip::{require_root, require_tool, skip};
