//! `cargo xtask bench [xdp|http|synflood|ipvsadm|keepalived|all]`: the data-plane benchmarks. Each prints its figures beside a
//! baseline measured in the same run, with ratios (the machine is noisy: compare ratios).

mod bench_http;
mod bench_ipvsadm;
mod bench_keepalived;
mod bench_synflood;
mod bench_xdp;
mod stats;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Benchmarks (needs root): xdp = ns/packet via BPF_PROG_TEST_RUN; http = req/s through the
    /// VIP; synflood = a SYN flood on a SYNPROXY VIP beside the kernel's syncookies; ipvsadm = -R and -Ln of 10 000 services x 10 reals; keepalived = start and
    /// SIGHUP reload of 2000 virtual servers beside ipvsadm -R / -e.
    Bench {
        #[arg(default_value = "all")]
        which: Which,
        /// Rounds per case (cases are interleaved and rotated across rounds).
        #[arg(long, default_value_t = 7)]
        rounds: usize,
    },
}

#[derive(Clone, Copy, clap::ValueEnum, PartialEq)]
enum Which {
    All,
    Xdp,
    Http,
    Synflood,
    Ipvsadm,
    Keepalived,
}

/// Benchmarks time release builds: build the binaries they drive next to this one.
fn build_release_binaries() -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "xlvs",
            "-p",
            "ipvsadm-rs",
            "-p",
            "keepalived",
        ])
        .status()?;
    anyhow::ensure!(status.success(), "building the release binaries failed");
    Ok(())
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Bench { which, rounds } => {
            // The XDP bench runs the data plane in this process: it needs no other binary.
            if which != Which::Xdp {
                build_release_binaries()?;
            }
            if matches!(which, Which::All | Which::Xdp) {
                bench_xdp::run(rounds)?;
            }
            if matches!(which, Which::All | Which::Http) {
                bench_http::run(rounds.min(5))?;
            }
            if matches!(which, Which::All | Which::Synflood) {
                bench_synflood::run(rounds.min(3))?;
            }
            if matches!(which, Which::All | Which::Ipvsadm) {
                bench_ipvsadm::run()?;
            }
            if matches!(which, Which::All | Which::Keepalived) {
                bench_keepalived::run()?;
            }
        }
    }
    Ok(())
}
