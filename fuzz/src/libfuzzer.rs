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
