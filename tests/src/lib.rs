//! The network-namespace test bed: namespaces and veth links ([`netns`]), the standard
//! client/director/reals topology with xlvs attached ([`lab`]), and tiny real servers
//! ([`servers`]). Used by the end-to-end tests in `tests/tests/` and by the demo and benchmarks.

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
pub mod rng;
pub mod routing;
pub mod servers;
pub mod skip;
pub mod smtp_sink;
pub mod testbed;
pub mod units;

pub use skip::{require_root, require_tool, skip};
