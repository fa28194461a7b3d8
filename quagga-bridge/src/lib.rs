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
