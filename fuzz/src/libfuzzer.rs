//! Glue for the cargo-fuzz targets in `fuzz/libfuzzer/`: a violated property becomes the panic
//! libFuzzer reports as a crash, and the targets' own mutators are offered to libFuzzer beside
//! its byte-level ones.

use crate::engine::{Harness, Rng, Target};

/// Runs `data`; a violated property panics (a crash for libFuzzer).
pub fn run(h: &mut dyn Harness, data: &[u8]) {
    if let Err(violation) = h.run(data) {
        panic!("{violation}");
    }
}

/// libFuzzer's custom mutator: `target`'s mutator on the first `size` bytes of `data`, the
/// result written back (at most `max` bytes); its length.
pub fn mutate(target: &Target, data: &mut [u8], size: usize, max: usize, seed: u32) -> usize {
    let mut rng = Rng::new(u64::from(seed) << 32 | u64::from(seed));
    let input = data[..size.min(data.len())].to_vec();
    let out = (target.mutator)(&mut rng, &input, &input, target.dict);
    let n = out.len().min(max).min(data.len());
    data[..n].copy_from_slice(&out[..n]);
    n
}

/// Runs `f` when the process exits normally (libFuzzer ends `-max_total_time` runs with exit()),
/// so a loaded data plane's namespace and pins are removed.
pub fn at_exit(f: extern "C" fn()) {
    // SAFETY: atexit(3) only records the function pointer, which is valid for the whole run.
    unsafe { libc::atexit(f) };
}

/// Declares one cargo-fuzz target (the whole of a `#![no_main]` file in `fuzz/libfuzzer/`):
/// libFuzzer runs the harness on each input and alternates its own byte-level mutations with
/// the target's mutator.
///
/// * `fuzz_target!(TARGET, harness)`: a harness without state (a function of the input).
/// * `fuzz_target!(loaded State = load(); TARGET, |state, input| run)`: a harness on state
///   built once by `load` (a loaded data plane), dropped when the process exits normally.
#[macro_export]
macro_rules! fuzz_target {
    (loaded $state:ty = $load:expr; $target:expr, |$h:ident, $i:ident| $body:expr) => {
        thread_local! {
            static HARNESS: std::cell::RefCell<Option<$state>> =
                const { std::cell::RefCell::new(None) };
        }

        extern "C" fn cleanup() {
            HARNESS.with(|h| drop(h.borrow_mut().take()));
        }

        libfuzzer_sys::fuzz_target!(|data: &[u8]| {
            HARNESS.with(|cell| {
                let mut cell = cell.borrow_mut();
                let $h = cell.get_or_insert_with(|| {
                    $crate::libfuzzer::at_exit(cleanup);
                    $load
                });
                $crate::libfuzzer::run(&mut |$i: &[u8]| $body, data);
            })
        });

        $crate::__fuzz_mutator!($target);
    };
    ($target:expr, $harness:expr) => {
        libfuzzer_sys::fuzz_target!(|data: &[u8]| $crate::libfuzzer::run(&mut $harness, data));

        $crate::__fuzz_mutator!($target);
    };
}

/// libFuzzer's custom mutator for [`fuzz_target!`]: every other call libFuzzer's own
/// mutation, else `target`'s.
#[doc(hidden)]
#[macro_export]
macro_rules! __fuzz_mutator {
    ($target:expr) => {
        libfuzzer_sys::fuzz_mutator!(|data: &mut [u8], size: usize, max: usize, seed: u32| {
            if seed % 2 == 0 {
                return libfuzzer_sys::fuzzer_mutate(data, size, max);
            }
            $crate::libfuzzer::mutate(&$target, data, size, max, seed)
        });
    };
}
