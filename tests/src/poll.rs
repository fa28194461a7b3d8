//! Waiting for a condition that another process or namespace makes true.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

/// Polls `f` every 20 ms until it holds (the time it took) or `limit` passes (an error naming
/// `what`).
pub fn wait_for(what: &str, limit: Duration, f: impl Fn() -> bool) -> Result<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if f() {
            return Ok(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("{what}: not within {limit:?}")
}
