//! IPVS connection synchronisation for xlvs (`ipvsadm --start-daemon master|backup`): the
//! kernel's sync protocol version 1 on the wire (`codec`), a master that announces the data
//! plane's connections and a backup that writes announced ones into its own table (`daemon`,
//! `records`), run as a detached process whose state lives under /run/xlvs (`state`,
//! `control`).
//!
//! # How it behaves
//!
//! `ipvsadm --start-daemon master|backup` behaves like the kernel's: it returns once the daemon
//! runs, with the kernel's errors (unknown interface "No such device", checked first; a second
//! daemon of the same role "Daemon has already run"; `--stop-daemon` without one "No daemon is
//! running"); master and backup may run together.
//!
//! * **Process**: `ipvsadm` spawns a copy of itself (`--xlvs-sync-daemon JSON`) in a new session,
//!   stderr to `<role>.log`; the child opens its socket and the data plane, writes
//!   `/run/xlvs/sync/<pin dir with / as _>/<role>.json` (settings, pid, the process' start time)
//!   and only then answers "ok" on a pipe; an error (errno) goes back the same way and nothing is
//!   recorded. bpffs cannot hold regular files, hence `/run/xlvs` (`XLVS_RUN_DIR`). A record counts
//!   only while its pid runs with the same start time and our marker in its command line, so a
//!   stale record (crash, reboot) never blocks a start and `--stop-daemon` (SIGTERM, then SIGKILL
//!   after 3 s) never signals a stranger. A `lock` file serialises starts and stops.
//!   `-L --daemon` prints the records in 1.31's format, with the values the kernel would report
//!   (maxlen: master 1500 − 28 unless given, backup the interface MTU (≥ 1500) − 28, or the given
//!   value clamped to 1024..65507; group 224.0.0.81 (the kernel has no IPv6 default: an IPv6
//!   group is given, e.g. ff02::81); port 8848;
//!   ttl 1).
//! * **Wire** (`codec.rs`): `ip_vs_sync_mesg` header (syncid, size, nr_conns, version 1) and
//!   `ip_vs_sync_v4/v6` records with optional parameters (sequence data, PE data/name), 4-byte
//!   aligned; a message holds at most max(maxlen, one record) bytes and 255 records. Decoding
//!   follows `ip_vs_process_message`: a bad header, size, record length, record version or type,
//!   or broken parameter drops the datagram; an unknown protocol/state, unknown mandatory
//!   parameter or PE data without a name drops that record; another sync id is ignored (backup
//!   syncid 0 takes all). Checked against datagrams captured from Linux 6.1's own master
//!   (`syncd/tests/golden/kernel-capture.txt`).
//! * **Sockets** (`net.rs`): as `make_send_sock`/`make_receive_sock`: bound to the interface,
//!   master with multicast loop off, the TTL, no PMTU discovery, connected to group:port; backup
//!   with SO_REUSEADDR, bound to group:port, joined on the interface. xlvs extension: a unicast
//!   group is the address the master sends to and the backup binds (IP_FREEBIND: it may appear
//!   later); ipvsadm 1.31 refuses such a group ("invalid IPv4 mcast-group").
//! * **Master** (`daemon.rs`, `records.rs`): every second (`XLVS_SYNC_INTERVAL_MS`) it reads the
//!   live connections and templates (`Dataplane::sync_export`: a full walk of `CONNS`, ~1.2 s per
//!   100 000 connections on the dev machine, 0.6× an `ipvsadm -Lc` walk; measured by the ignored
//!   test `sync_path::sync_scan_and_import_cost`) and sends those due; after a scan it rests at
//!   least as long as the scan took, so on big tables announcements come later rather than
//!   taking more than half a core. IPVS sends a connection on its 3rd packet and
//!   every 50th (sync_threshold 3 50) and at once on TCP state changes; user space sees states and
//!   last activity only, so we send a connection when first seen in a synchronised state
//!   (ESTABLISHED, FIN_WAIT, TIME_WAIT, CLOSE, CLOSE_WAIT; UDP and templates at once), when its
//!   state or real changes, and again after half its timeout if it was active meanwhile (IPVS'
//!   sync_refresh_period bound), so the backup's copy outlives idle gaps no longer than the
//!   master's. Flags as the kernel sets them: forwarding method, NOOUTPUT unless NAT, INACTIVE
//!   unless an established TCP connection, TEMPLATE. Not sent: FULLNAT (no local address in the
//!   protocol), SYNPROXY connections still in their handshake, and anything learnt from a master
//!   and not seen here since (below).
//! * **Backup**: `Dataplane::sync_import` finds the service as `ip_vs_find_dest` does (fwmark, else
//!   proto/vip/vport, then port 0; point lookups) and the real by address/port (port 0 reals when
//!   dport = vport; from a per-service cache of `DESTS` re-read on a miss at most once a second,
//!   each hit checked against `DESTS`), and writes the CLIENT entry (plus the REPLY entry for NAT) exactly as `new_connection` in the
//!   XDP program would, with the announced state and timeout and `last_seen` = now; a known
//!   connection with the same real is refreshed (state, timeout, last_seen), one with another
//!   real is replaced. Templates go into `PERSIST`. Connections without a local service or real
//!   are skipped and counted (IPVS keeps them unbound; our packet path needs the real's id).
//!   Imported entries carry `CONN_F_SYNCED` (the packet path clears it on the next client packet)
//!   and imported templates `PERSIST_SYNCED`; a master does not announce those, so two directors
//!   running both daemons do not keep each other's copies alive forever. Counters (received,
//!   malformed, other syncid, skipped, inserted, refreshed, no service, …) go to `<role>.stats`.
// Every public item says what it is for; CI's clippy (-D warnings) makes this an error.
#![warn(missing_docs)]

pub mod codec;
pub mod config;
pub mod control;
pub mod daemon;
mod net;
pub mod records;
pub mod state;
