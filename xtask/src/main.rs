//! `cargo xtask bench [xdp|http|all]`: the data-plane benchmarks. Each prints its figures beside a
//! baseline measured in the same run, with ratios (the machine is noisy: compare ratios).

mod bench_http;
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
    /// Benchmarks (needs root): xdp = ns/packet via BPF_PROG_TEST_RUN; http = req/s through the VIP.
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
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Bench { which, rounds } => {
            if which != Which::Http {
                bench_xdp::run(rounds)?;
            }
            if which != Which::Xdp {
                bench_http::run(rounds.min(5))?;
            }
        }
    }
    Ok(())
}
