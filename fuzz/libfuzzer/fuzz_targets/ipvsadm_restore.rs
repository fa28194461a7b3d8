//! `cargo fuzz run ipvsadm_restore` (see README.md "Fuzzing"): the harness of `cargo test -p xlvs-fuzz`,
//! on a data plane loaded once (root; its namespace and pin directory are removed when the run
//! ends, but not when libFuzzer stops on a crash: see the README).
#![no_main]

use std::cell::RefCell;

use xlvs_fuzz::targets::*;

thread_local! {
    static HARNESS: RefCell<Option<ipvsadm::Ipvsadm>> = const { RefCell::new(None) };
}

extern "C" fn cleanup() {
    HARNESS.with(|h| drop(h.borrow_mut().take()));
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    HARNESS.with(|cell| {
        let mut cell = cell.borrow_mut();
        let h = cell.get_or_insert_with(|| {
            xlvs_fuzz::libfuzzer::at_exit(cleanup);
            ipvsadm::Ipvsadm::load()
        });
        xlvs_fuzz::libfuzzer::run(&mut |i: &[u8]| h.restore(i), data);
    })
});

libfuzzer_sys::fuzz_mutator!(|data: &mut [u8], size: usize, max: usize, seed: u32| {
    if seed % 2 == 0 {
        return libfuzzer_sys::fuzzer_mutate(data, size, max);
    }
    xlvs_fuzz::libfuzzer::mutate(&ipvsadm::RESTORE, data, size, max, seed)
});
