//! Waiting for a condition that another process or namespace makes true.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

/// Polls `f` every 20 ms until it holds (the time it took) or `limit` passes (an error naming
/// `what`).
pub fn wait_for(what: &str, limit: Duration, f: impl FnMut() -> bool) -> Result<Duration> {
    wait_every(what, limit, Duration::from_millis(20), f)
}

/// [`wait_for`] polling every `every` (finer for timings, coarser for costly checks). `f` runs
/// at least once, and once more when `limit` has passed.
pub fn wait_every(
    what: &str,
    limit: Duration,
    every: Duration,
    mut f: impl FnMut() -> bool,
) -> Result<Duration> {
    let t0 = Instant::now();
    loop {
        if f() {
            return Ok(t0.elapsed());
        }
        if t0.elapsed() >= limit {
            bail!("{what}: not within {limit:?}");
        }
        std::thread::sleep(every);
    }
}
