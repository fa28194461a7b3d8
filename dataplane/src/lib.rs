//! User-space side of the xlvs data plane: loading and attaching the XDP program, and the
//! IPVS-like API (services, destinations, timeouts, counters, connections) over its pinned maps.
//! Nothing else in the project talks to the maps.
//!
//! ```no_run
//! use dataplane::{Dataplane, Options, model::*};
//! let mut dp = Dataplane::open(&Options::from_env())?;
//! let vip = ServiceAddr::Inet { proto: Protocol::Tcp, addr: "198.18.100.1".parse().unwrap(), port: 80 };
//! let mut svc = ServiceConfig::new(vip);
//! svc.scheduler = Scheduler::Rr;
//! dp.add_service(&svc)?;
//! let mut real = DestConfig::new("198.18.2.2".parse().unwrap(), 80);
//! real.forward = Forward::Masq;
//! dp.add_dest(&vip, &real)?;
//! # Ok::<(), dataplane::Error>(())
//! ```
// Every public item says what it is for; CI's clippy (-D warnings) makes this an error.
#![warn(missing_docs)]

mod acl;
mod addr_filter;
pub mod conncount;
pub mod conns;
pub mod error;
pub mod estimator;
pub mod fill;
pub mod fw;
pub mod fwmark;
pub mod fwmark_import;
pub mod fwmark_nft;
pub mod loader;
mod lock;
mod maps;
pub mod model;
mod nat_owners;
pub mod neigh;
mod netlink;
mod pins;
mod pool;
pub mod rundir;
pub mod sched;
mod shared;
pub mod stats;
pub mod sync;
mod tables;
pub mod testrun;
pub mod timers;

use std::path::PathBuf;

pub use aya::programs::xdp::XdpMode;
pub use error::{Error, Result};
pub use loader::{
    ProgramStatus, attach, attached, detach, ensure_loaded, programs_status, reload, unload,
};

use lock::WriteLock;
use maps::Maps;
use tables::Snapshot;

/// For commands that print and exit: a closed stdout (`xlvs status | head`) ends the process
/// quietly, as it ends C tools, instead of a panic in `println!`. Rust ignores SIGPIPE, so the
/// write fails with EPIPE and printing panics; the default disposition restores the usual end.
/// Not for daemons, whose sockets and pipes must survive a peer that went away.
pub fn exit_quietly_on_closed_pipe() {
    // SAFETY: setting a signal's disposition to its default has no memory-safety concerns.
    unsafe {
        let _ = nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        );
    }
}

/// Where the data plane lives and how big its connection table is.
#[derive(Clone, Debug)]
pub struct Options {
    /// bpffs directory holding the pinned program, maps and links.
    pub pin_dir: PathBuf,
    /// Connection-table capacity (per direction), used when the maps are first created.
    pub max_conns: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            pin_dir: PathBuf::from(ebpf_common::DEFAULT_PIN_DIR),
            max_conns: ebpf_common::DEFAULT_MAX_CONNS,
        }
    }
}

impl Options {
    /// Defaults, overridden by `XLVS_PIN_DIR` and `XLVS_MAX_CONNS` when set.
    pub fn from_env() -> Options {
        let mut o = Options::default();
        if let Some(dir) = std::env::var_os("XLVS_PIN_DIR") {
            o.pin_dir = PathBuf::from(dir);
        }
        if let Some(n) = std::env::var("XLVS_MAX_CONNS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            o.max_conns = n;
        }
        o
    }
}

/// A handle on the data plane's tables. Reads need nothing else; each write takes the writer
/// lock for its duration, or for longer with [`Dataplane::hold_lock`] (batches such as
/// `ipvsadm -R`, which then also keep one in-memory view of the tables instead of rereading them).
pub struct Dataplane {
    opts: Options,
    maps: Maps,
    held: Option<(WriteLock, Snapshot)>,
    /// A sync backup's view of the destinations (`sync.rs`).
    sync_dests: sync::DestCache,
}

impl Dataplane {
    /// Opens the pinned tables, creating them (program loaded, not attached) if they do not exist,
    /// as the kernel's IPVS tables exist before any interface is involved.
    pub fn open(opts: &Options) -> Result<Dataplane> {
        loader::ensure_loaded(opts)?;
        Ok(Dataplane {
            opts: opts.clone(),
            maps: Maps::open(&opts.pin_dir)?,
            held: None,
            sync_dests: sync::DestCache::default(),
        })
    }

    /// The options the data plane was opened with.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// Holds the writer lock (and a cached view of the tables) until [`Dataplane::release_lock`]
    /// or drop, and batches scheduler-table rebuilds until then. Other writers wait meanwhile.
    pub fn hold_lock(&mut self) -> Result<()> {
        if self.held.is_none() {
            let lock = WriteLock::acquire(&self.opts.pin_dir)?;
            let mut snap = Snapshot::load(&self.maps)?;
            snap.begin_batch();
            self.held = Some((lock, snap));
        }
        Ok(())
    }

    /// Ends a batch: scheduler tables changed meanwhile are rebuilt (once each), then the lock
    /// goes. Until then new connections are scheduled with the tables as they were.
    pub fn release_lock(&mut self) -> Result<()> {
        match self.held.take() {
            Some((_lock, mut snap)) => snap.commit(&mut self.maps),
            None => Ok(()),
        }
    }

    /// Runs one write under the lock, on the held view or on a fresh one.
    fn write<T>(&mut self, op: impl FnOnce(&mut Snapshot, &mut Maps) -> Result<T>) -> Result<T> {
        match &mut self.held {
            Some((_, snap)) => op(snap, &mut self.maps),
            None => {
                let _lock = WriteLock::acquire(&self.opts.pin_dir)?;
                let mut snap = Snapshot::load(&self.maps)?;
                op(&mut snap, &mut self.maps)
            }
        }
    }

    /// `ipvsadm -A`: adds a service (fails if it exists).
    pub fn add_service(&mut self, cfg: &model::ServiceConfig) -> Result<()> {
        self.write(|s, m| s.add_service(m, cfg))
    }

    /// `ipvsadm -E`: changes a service's settings, keeping its destinations.
    pub fn edit_service(&mut self, cfg: &model::ServiceConfig) -> Result<()> {
        self.write(|s, m| s.edit_service(m, cfg))
    }

    /// `ipvsadm -D`: removes a service with its destinations.
    pub fn del_service(&mut self, addr: &model::ServiceAddr) -> Result<()> {
        self.write(|s, m| s.del_service(m, addr))
    }

    /// Removes every service and destination (`ipvsadm -C`). Connections are left to expire.
    pub fn flush(&mut self) -> Result<()> {
        self.write(|s, m| s.flush(m))
    }

    /// Zeroes the counters of one service (and its destinations) or of all.
    pub fn zero(&mut self, addr: Option<&model::ServiceAddr>) -> Result<()> {
        self.write(|s, m| s.zero(m, addr))
    }

    /// `ipvsadm -a`: adds a destination to a service.
    pub fn add_dest(&mut self, svc: &model::ServiceAddr, d: &model::DestConfig) -> Result<()> {
        self.write(|s, m| s.add_dest(m, svc, d))
    }

    /// `ipvsadm -e`: changes a destination's settings.
    pub fn edit_dest(&mut self, svc: &model::ServiceAddr, d: &model::DestConfig) -> Result<()> {
        self.write(|s, m| s.edit_dest(m, svc, d))
    }

    /// `ipvsadm -d`: removes a destination (its connections drain).
    pub fn del_dest(
        &mut self,
        svc: &model::ServiceAddr,
        addr: std::net::IpAddr,
        port: u16,
    ) -> Result<()> {
        self.write(|s, m| s.del_dest(m, svc, addr, port))
    }

    /// alibaba/DPVS `-P`: adds a FULLNAT local address to a service.
    pub fn add_laddr(&mut self, svc: &model::ServiceAddr, l: &model::LocalAddr) -> Result<()> {
        self.write(|s, m| s.add_laddr(m, svc, l))
    }

    /// alibaba/DPVS `-Q`: removes a FULLNAT local address.
    pub fn del_laddr(&mut self, svc: &model::ServiceAddr, addr: std::net::IpAddr) -> Result<()> {
        self.write(|s, m| s.del_laddr(m, svc, addr))
    }

    /// DPVS `-U`/`-O`: puts a client address on a service's deny or allow list.
    pub fn add_acl(
        &mut self,
        svc: &model::ServiceAddr,
        kind: model::AclKind,
        addr: std::net::IpAddr,
    ) -> Result<()> {
        self.acl_write(svc, |m, id| acl::add(m, id, kind, addr))
    }

    /// DPVS `-V`/`-Y`: takes a client address off a service's deny or allow list.
    pub fn del_acl(
        &mut self,
        svc: &model::ServiceAddr,
        kind: model::AclKind,
        addr: std::net::IpAddr,
    ) -> Result<()> {
        self.acl_write(svc, |m, id| acl::del(m, id, kind, addr))
    }

    /// A list change on an existing service ("Service not defined" otherwise).
    fn acl_write(
        &mut self,
        svc: &model::ServiceAddr,
        op: impl FnOnce(&mut Maps, u32) -> Result<()>,
    ) -> Result<()> {
        self.write(|s, m| op(m, s.service_id(svc, Error::ServiceNotDefined)?))
    }

    /// The fwmark classifier's rules (`xlvs fwmark list`), sorted.
    pub fn fwmark_rules(&mut self) -> Result<Vec<fwmark::FwmarkRule>> {
        self.write(|s, _| Ok(s.fwmark_rules().to_vec()))
    }

    /// Adds classifier rules, all or none (see [`fwmark::check`]); a refused rule is reported
    /// with its index in `rules`.
    pub fn add_fwmark_rules(
        &mut self,
        rules: &[fwmark::FwmarkRule],
    ) -> std::result::Result<(), FwmarkError> {
        self.write(|s, m| {
            let existing = s.fwmark_rules().to_vec();
            if let Err(r) = fwmark::check(&existing, rules) {
                return Ok(Err(FwmarkError::Refused(r)));
            }
            s.set_fwmark_rules(m, fwmark::merged(&existing, rules))
                .map(Ok)
        })
        .map_err(FwmarkError::Dataplane)?
    }

    /// Replaces every classifier rule by `rules` (all or none), e.g. a fresh import.
    pub fn replace_fwmark_rules(
        &mut self,
        rules: &[fwmark::FwmarkRule],
    ) -> std::result::Result<(), FwmarkError> {
        self.write(|s, m| {
            if let Err(r) = fwmark::check(&[], rules) {
                return Ok(Err(FwmarkError::Refused(r)));
            }
            s.set_fwmark_rules(m, fwmark::merged(&[], rules)).map(Ok)
        })
        .map_err(FwmarkError::Dataplane)?
    }

    /// Removes one classifier rule (exactly as listed).
    pub fn del_fwmark_rule(&mut self, rule: &fwmark::FwmarkRule) -> Result<()> {
        self.write(|s, m| {
            let mut rules = s.fwmark_rules().to_vec();
            let before = rules.len();
            rules.retain(|r| r != rule);
            if rules.len() == before {
                return Err(Error::Fwmark(format!("no such rule: {rule}")));
            }
            s.set_fwmark_rules(m, rules)
        })
    }

    /// Every service with its destinations (insertion order), counters and rates. Takes a
    /// rate-estimator sample, hence `&mut`.
    pub fn services(&mut self) -> Result<Vec<model::ServiceEntry>> {
        tables::list(&mut self.maps, None)
    }

    /// One service, or `NoSuchService`.
    pub fn service(&mut self, addr: &model::ServiceAddr) -> Result<model::ServiceEntry> {
        tables::list(&mut self.maps, Some(addr))?
            .pop()
            .ok_or(Error::NoSuchService)
    }

    /// The tcp, tcpfin and udp timeouts (`ipvsadm -L --timeout`).
    pub fn timeouts(&self) -> Result<model::Timeouts> {
        tables::timeouts(&self.maps)
    }

    /// Sets the tcp / tcpfin / udp timeouts; a 0 leaves that one unchanged (`ipvsadm --set`).
    pub fn set_timeouts(&mut self, t: &model::Timeouts) -> Result<()> {
        self.write(|_, m| tables::set_timeouts(m, t))
    }

    /// Packet-path switches (TOA, flood policies); see [`model::PathSettings`].
    pub fn path_settings(&self) -> Result<model::PathSettings> {
        tables::path_settings(&self.maps)
    }

    /// Sets the packet path's switches (defences, SYNPROXY defer, sloppy TCP, …).
    pub fn set_path_settings(&mut self, p: &model::PathSettings) -> Result<()> {
        self.write(|_, m| tables::set_path_settings(m, p))
    }

    /// Live (not expired) connections.
    pub fn connections(&self) -> Result<Vec<model::ConnEntry>> {
        conns::list(&self.maps)
    }

    /// Connections and persistence templates as a sync master announces them (`sync.rs`).
    pub fn sync_export(&self) -> Result<Vec<sync::SyncConn>> {
        sync::export(&self.maps)
    }

    /// Writes connections a sync master announced into the table, as a backup (`sync.rs`).
    /// Touches only the connection and template tables, so it takes no writer lock.
    pub fn sync_import(&mut self, conns: &[sync::SyncConn]) -> Result<sync::ImportReport> {
        sync::import(&mut self.maps, &mut self.sync_dests, conns)
    }

    /// Capacity of the connection table (what IPVS prints as `size=` in its listing header).
    pub fn conn_table_size(&self) -> u32 {
        conns::capacity(&self.maps)
    }

    /// Data-plane wide counters (`ebpf_common::counter` indexes), summed over CPUs.
    pub fn counters(&self) -> Result<Vec<u64>> {
        stats::counters(&self.maps)
    }

    /// IPVS' timers, once: expire idle connections, check the connection counts, sample rates
    /// (see [`timers`]).
    pub fn run_timers(&mut self) -> Result<timers::Tick> {
        timers::tick(&mut self.maps)
    }

    /// Fill levels of the main tables, for `xlvs status`.
    pub fn fill(&self) -> Result<stats::Fill> {
        stats::fill(&self.maps)
    }
}

/// Why classifier rules were not added: a rule refused (nothing applied), or the tables.
#[derive(Debug, thiserror::Error)]
pub enum FwmarkError {
    /// A rule was refused; nothing was changed.
    #[error("{}", .0.message)]
    Refused(fwmark::Refused),
    /// A map operation failed.
    #[error(transparent)]
    Dataplane(#[from] Error),
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        if let Err(e) = self.release_lock() {
            log::warn!("finishing a batch of table changes: {e}");
        }
    }
}
