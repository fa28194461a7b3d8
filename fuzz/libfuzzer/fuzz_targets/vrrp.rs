//! `cargo fuzz run vrrp` (see README.md "Fuzzing"): the harness of `cargo test -p xlvs-fuzz`.
#![no_main]

use xlvs_fuzz::targets::*;

xlvs_fuzz::fuzz_target!(vrrp::TARGET, vrrp::run);
