//! Services and destinations: the IPVS operations, applied to the maps, in modules with one job
//! each:
//! - [`transaction`]: the write path on a [`Snapshot`] taken under the writer lock (ids, scheduler
//!   tables, local-address pools, the order of map updates);
//! - [`convert`]: model values to and from the map values of `ebpf-common` (pure, unit-tested);
//! - [`list`]: reading the tables back (listing, rate samples);
//! - [`settings`]: timeouts and the packet path's switches.

mod convert;
mod list;
mod settings;
mod transaction;

pub use list::{list, sample_rates};
pub use settings::{path_settings, set_path_settings, set_timeouts, timeouts};
pub use transaction::Snapshot;
pub(crate) use transaction::resolve_next_hop;
