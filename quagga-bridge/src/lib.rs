//! VIP route announcement through bird 2, FRR and quagga — never a home-made routing speaker.
//!
//! keepalived's `route_bridge { … }` block (xlvs extension) says which daemon speaks to the
//! routers; this crate decides, per VIP, whether and how it is announced and makes the daemon
//! do it:
//! * [`settings`] (pure): the block resolved against keepalived.conf — VIPs, the virtual
//!   servers and VRRP instance that gate each one, attributes per state, paths;
//! * [`eligibility`] (pure): the verdict per VIP from health, quorum, VRRP, the data plane and
//!   maintenance, with rise/fall/debounce ([`eligibility::Tracker`]);
//! * [`liveness`]: the TUN device whose addresses are the announced VIPs — it dies with the
//!   process holding it, so a crash withdraws everything at once; [`lease`] hands it over
//!   across a `--dont-release-ipvs` restart;
//! * [`bird`], [`frr`] (also quagga): render the bridge's part of the daemon's configuration
//!   and change it through the daemon's control socket (birdc's, vtysh's), own daemons
//!   started and supervised ([`process`]);
//! * [`bridge`]: all of it on a thread of its own, fed by the keepalived daemon
//!   ([`bridge::Bridge`]); [`status`]: what it announces, why and since when, for `xlvs
//!   routes` and metrics.
//!
//! # How it works
//!
//! ```text
//!  keepalived daemon ── Inputs (quorum, health, VRRP) ──► bridge thread ──► Tracker per VIP
//!  (daemon/route_bridge.rs)                                │   ▲ polls: attached? timers? maintenance?
//!                                                          ▼   │
//!                         liveness TUN device (addresses = announced VIPs)   driver: bird | frr
//!                                                          │                     │ control socket
//!                                                          └── daemon announces ◄┘ (birdc / vty)
//! ```
//!
//! * **Eligibility** (`eligibility.rs`, pure): per VIP, in order — stopping, data plane not
//!   attached or timers not running, the gating `vrrp_instance` not MASTER (immediate
//!   withdrawals), a virtual server without quorum (withdraw, or `degraded` if it has a sorry
//!   server and a `degraded` attribute set), maintenance (`draining` or withdraw), degraded below a
//!   share of its weight, else healthy. `Tracker` applies rise/fall (evaluations `interval` apart)
//!   and debounce on a clock the caller passes.
//! * **Liveness** (`liveness.rs`): a multi-queue TUN device held by keepalived; a VIP is
//!   announced only while it is one of its addresses (bird `protocol direct`, FRR `network` +
//!   import check, OSPF passive stub interface). A process death closes the queue, the kernel
//!   deletes the device and its addresses, the daemon withdraws: nothing announced outlives the
//!   process that decided it. `lease.rs` attaches a second queue in a holder process across a
//!   `--dont-release-ipvs` restart; the new keepalived attaches, then ends the holder.
//! * **Order of a change** (`bridge.rs`): withdrawals first remove the address (the daemon
//!   withdraws within milliseconds) and then the daemon's configuration; announcements configure
//!   the daemon first and add the address last; a failure leaves nothing announced that is not
//!   eligible and is retried (every 200 ms tick; setup and supervision every 1–2 s).
//! * **bird** (`bird.rs`): the part (`protocol direct xlvs_vips`, `function xlvs_announce` with
//!   the announced nets and their attributes, `filter xlvs_export`, `protocol bgp xlvs_<addr>`
//!   per neighbor; BFD and OSPF protocols in an own bird) is rewritten and applied with
//!   `configure` on the control socket; a refused configuration is reported and the previous file
//!   restored. bird forks after creating its socket, so "runs in our namespace" is checked by its
//!   seeing our liveness device with our ifindex.
//! * **FRR/quagga** (`frr.rs`): the bridge's configuration is a set of sections (context commands and
//!   keyed lines with their undo), read back from `show running-config` when a daemon is adopted,
//!   diffed against the wanted ones and sent as vty commands in three passes (lines taken back,
//!   lines added — route-maps before the networks naming them —, contexts removed), so no
//!   announcement is ever without its route-map and an unchanged session is never touched.
//!   Route-maps are named after their attributes (`XLVS-<hash>`); neighbors get `route-map
//!   XLVS-OUT out` (prefix-list of the configured VIPs: bgpd's `match peer local` does not work
//!   outbound) and `XLVS-IN in` (deny).
//! * **Own daemons** (`process.rs`): started daemonized with files under
//!   `/run/xlvs/bridge/<pin dir>/{bird,frr}/`, found again by pid file + command-line marker +
//!   network namespace (a restarted keepalived adopts them), restarted if they die, stopped by pid
//!   at SIGTERM (or by the lease holder when no restart came).
//! * **Status** (`status.rs`): `BridgeStatus` (per VIP: eligible, announced profile, reason,
//!   since, attributes; daemon, device, error) in memory and in `/run/xlvs/bridge/<pin
//!   dir>/status.json`; `xlvs routes` renders it with what the daemon says it sends each
//!   neighbor (bird `show route export`, FRR `advertised-routes json`).
// Every public item says what it is for; CI's clippy (-D warnings) makes this an error.
#![warn(missing_docs)]

pub mod bird;
pub mod bridge;
pub mod driver;
pub mod eligibility;
pub mod frr;
pub mod lease;
pub mod liveness;
pub mod process;
pub mod settings;
pub mod status;
