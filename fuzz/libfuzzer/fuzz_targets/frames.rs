//! `cargo fuzz run frames` (see README.md "Fuzzing"): the harness of `cargo test -p xlvs-fuzz`,
//! on a data plane loaded once (root; its namespace and pin directory are removed when the run
//! ends, but not when libFuzzer stops on a crash: see the README).
#![no_main]

use xlvs_fuzz::targets::*;

xlvs_fuzz::fuzz_target!(
    loaded frames::bed::Bed = frames::bed::Bed::load();
    frames::TARGET,
    |h, i| frames::run(h, i)
);
