//! Small helpers for benchmark reports: statistics, and timing one `ipvsadm` run.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// Runs `ipvsadm ARGS` on the tables at `pin` with `input` on stdin: wall seconds and stdout.
pub fn time_ipvsadm(
    ipvsadm: &Path,
    pin: &str,
    args: &[&str],
    input: &str,
) -> Result<(f64, String)> {
    let t = Instant::now();
    let mut child = Command::new(ipvsadm)
        .args(args)
        .env("XLVS_PIN_DIR", pin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("ipvsadm")?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("ipvsadm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok((
        t.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ))
}

pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
