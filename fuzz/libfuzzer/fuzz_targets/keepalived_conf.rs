//! `cargo fuzz run keepalived_conf` (see README.md "Fuzzing"): the harness of `cargo test -p xlvs-fuzz`.
#![no_main]

use xlvs_fuzz::targets::*;

xlvs_fuzz::fuzz_target!(keepalived_conf::TARGET, keepalived_conf::run);
