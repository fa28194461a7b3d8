//! `cargo fuzz run nft` (see README.md "Fuzzing"): the harness of `cargo test -p xlvs-fuzz`.
#![no_main]

use xlvs_fuzz::targets::*;

libfuzzer_sys::fuzz_target!(|data: &[u8]| xlvs_fuzz::libfuzzer::run(&mut fwmark_import::nft, data));

libfuzzer_sys::fuzz_mutator!(|data: &mut [u8], size: usize, max: usize, seed: u32| {
    if seed % 2 == 0 {
        return libfuzzer_sys::fuzzer_mutate(data, size, max);
    }
    xlvs_fuzz::libfuzzer::mutate(&fwmark_import::NFT, data, size, max, seed)
});
