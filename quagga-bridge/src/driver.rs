//! What every daemon driver does, and what it tells about the daemon.

use anyhow::Result;
use keepalived_conf::model::AnnounceAttributes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

/// The VIPs to announce, each with its attributes.
pub type Announced = BTreeMap<IpAddr, AnnounceAttributes>;

/// The daemon a driver drives (recorded in the status for `xlvs routes`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonInfo {
    /// bird, frr or quagga.
    pub kind: String,
    /// Started and supervised by the bridge ("own"), or found running ("existing").
    pub own: bool,
    /// bird's control socket, or the directory of FRR's/quagga's vty sockets.
    pub control: PathBuf,
    /// Own daemons' processes (name, pid).
    pub pids: Vec<(String, u32)>,
}

/// One daemon, driven through its control channel.
pub trait Driver: Send {
    /// What the daemon is, for the status.
    fn info(&self) -> DaemonInfo;
    /// Makes the bridge's part of the daemon's configuration announce exactly `announced`
    /// (the difference only).
    fn apply(&mut self, announced: &Announced) -> Result<()>;
    /// Own daemons: restarts processes that died (true when one was restarted; the bridge then
    /// applies again). Existing daemons: checks the control socket still answers.
    fn supervise(&mut self) -> Result<bool>;
    /// Own daemons: stops them (by pid). Existing ones are left running.
    fn stop(&mut self);
    /// Own daemons' pid files and the marker their command line holds (for the lease holder,
    /// which stops them when nobody took over).
    fn own_processes(&self) -> Vec<(PathBuf, String)>;
}

/// A route as a peer is sent it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteView {
    /// The route's prefix.
    pub prefix: String,
    /// MED, local preference, communities, AS path as the daemon reports them.
    pub attributes: String,
}

/// One neighbor and what it is sent, as the daemon reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerView {
    /// The peer's address.
    pub address: String,
    /// The peer's AS, when the daemon says it.
    pub remote_as: Option<u32>,
    /// Session state (Established, Active, …).
    pub state: String,
    /// Since when, as the daemon prints it.
    pub since: String,
    /// The bridge's routes the peer is sent.
    pub routes: Vec<RouteView>,
}
