//! `cargo fuzz run syncd` (see README.md "Fuzzing"): the harness of `cargo test -p xlvs-fuzz`.
#![no_main]

use xlvs_fuzz::targets::*;

xlvs_fuzz::fuzz_target!(syncd::TARGET, syncd::run);
