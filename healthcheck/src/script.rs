//! Scripts run as keepalived runs them (crate `keepalived-scripts`, shared with VRRP).

pub use keepalived_scripts::*;
