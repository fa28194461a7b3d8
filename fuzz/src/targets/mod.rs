//! One harness per target: what it feeds the code under test and which properties it checks
//! beyond "no panic, no hang". A harness returns a behaviour signature for the engine's pool, or
//! the property an input violated.

pub mod frames;
pub mod fwmark_import;
pub mod ipvsadm;
pub mod keepalived_conf;
pub mod syncd;
pub mod vrrp;

/// Folds `values` into one behaviour signature.
pub fn signature(values: &[u64]) -> u64 {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    crate::engine::fnv(&bytes)
}
