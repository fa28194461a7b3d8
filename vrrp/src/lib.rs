//! VRRP v2/v3 (RFC 3768 / RFC 5798) for IPv4 and IPv6, interoperable with keepalived 2.2.7.
//!
//! Layers, each usable alone:
//! * [`codec`]: wire format, checksums (v3 pseudo-header, `v3_checksum_as_v2`,
//!   `old_unicast_checksum`), auth PASS, keepalived's receive checks with counters. Pure.
//! * [`state`]: the per-instance state machine on a deterministic clock. Pure.
//! * [`track`]: effective priority from track_interface / track_script / track_file. Pure.
//! * [`config`]: keepalived-conf's model → what the engine runs. Pure.
//! * [`sock`], [`netlink`], [`garp`], [`link`], [`notify`]: thin system side.
//! * [`daemon`]: everything together.
//!
//! # Embedding (the `keepalived` daemon)
//!
//! ```no_run
//! use std::sync::Arc;
//! use vrrp::daemon::{Control, StateEvent, run};
//! # async fn demo(config: keepalived_conf::KeepalivedConfig) -> anyhow::Result<()> {
//! let (control_tx, control_rx) = tokio::sync::mpsc::channel::<Control>(4);
//! let (events_tx, mut events_rx) = tokio::sync::mpsc::channel::<StateEvent>(64);
//! let engine = tokio::spawn(run(Arc::new(config), control_rx, events_tx));
//! // Transitions (instance, vrid, interface, from, to, reason, VIPs) for the route bridge:
//! tokio::spawn(async move { while let Some(_ev) = events_rx.recv().await {} });
//! // On SIGHUP: control_tx.send(Control::Reload(Arc::new(new_config))).await?;
//! control_tx.send(Control::Shutdown).await?; // priority 0, VIPs removed, notify_stop
//! engine.await??;
//! # Ok(()) }
//! ```
//!
//! [`daemon::run`] needs root (raw sockets, netlink) and a tokio runtime with I/O and time
//! enabled (a current-thread runtime is enough). It returns after `Shutdown` or when the
//! control channel closes (treated as `Shutdown`); an error means the configuration could not
//! be started (an interface that does not exist, no source address, a socket refused). Events
//! are sent with `try_send`: a full or closed channel never blocks the protocol.
//!
//! What it runs, per instance: a raw IP-112 receive socket (group joined in multicast mode,
//! on the vmac with `use_vmac`) and a send socket (TTL 255, TOS 0xc0, multicast loop off);
//! timers on a timerfd (µs precision); VIPs, virtual_routes and virtual_rules through
//! rtnetlink (routes and rules with `proto keepalived`); GARP / unsolicited NA bursts;
//! notify scripts, generic `notify` and notify FIFOs with keepalived's arguments and lines;
//! tracking from netlink link events, vrrp_script runs and track_file polling (100 ms).
//! Receive counters per drop reason are logged at shutdown (`NAME: accepted N bad_ttl M …`).
//!
//! The `xlvs-vrrpd` binary (`-f FILE`, `-n`, keepalived's `-l -D -G -P -p -r -c` accepted) runs
//! the same API, logs to stderr, stops on SIGTERM/SIGINT and reloads on SIGHUP.
// Every public item says what it is for; CI's clippy (-D warnings) makes this an error.
#![warn(missing_docs)]

pub mod addrmon;
pub mod codec;
pub mod config;
pub mod daemon;
pub mod garp;
pub mod link;
pub mod netlink;
pub mod noaccept;
pub mod notify;
pub mod priority;
pub mod process_track;
pub mod sock;
pub mod state;
pub mod timer;
pub mod track;
