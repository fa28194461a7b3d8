//! `cargo xtask bench [xdp|http|ipvsadm|keepalived|failover|all]`: the data-plane benchmarks. Each prints its figures beside a
//! baseline measured in the same run, with ratios (the machine is noisy: compare ratios).
//! `cargo xtask deb`: the Debian packages (`deb.rs`).

mod bench_failover;
mod bench_http;
mod bench_ipvsadm;
mod bench_keepalived;
mod bench_xdp;
mod deb;
mod kadiff;
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
    /// VIP; ipvsadm = -R and -Ln of 10 000 services x 10 reals; keepalived = start and
    /// SIGHUP reload of 2000 virtual servers beside ipvsadm -R / -e; failover = VRRP takeover
    /// after a graceful stop and a SIGKILL at 1 s / 100 ms / 10 ms adverts, beside 2.2.7.
    Bench {
        #[arg(default_value = "all")]
        which: Which,
        /// Rounds per case (cases are interleaved and rotated across rounds).
        #[arg(long, default_value_t = 7)]
        rounds: usize,
    },
    /// The Debian packages (xlvs, xlvs-ipvsadm, xlvs-keepalived) from the release binaries,
    /// into target/deb (dpkg-deb).
    Deb {
        /// Take the binaries from this directory instead of building them.
        #[arg(long)]
        bin_dir: Option<std::path::PathBuf>,
        /// Where to write the .deb files.
        #[arg(long, default_value = "target/deb")]
        out: std::path::PathBuf,
        /// Compression: xz, gzip or none.
        #[arg(long, default_value = "xz")]
        compress: String,
    },
    /// `keepalived -t` differential run (needs root and /usr/sbin/keepalived): N generated
    /// configurations checked by ours and by keepalived 2.2.7; agreement and classes.
    Kadiff {
        #[arg(long, default_value_t = 5000)]
        count: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print this many differing cases in full.
        #[arg(long, default_value_t = 0)]
        show: usize,
        /// Only show differing cases with a class containing this text.
        #[arg(long)]
        class: Option<String>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum, PartialEq)]
enum Which {
    All,
    Xdp,
    Http,
    Ipvsadm,
    Keepalived,
    Failover,
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
            build_release_binaries()?;
            if matches!(which, Which::All | Which::Xdp) {
                bench_xdp::run(rounds)?;
            }
            if matches!(which, Which::All | Which::Http) {
                bench_http::run(rounds.min(5))?;
            }
            if matches!(which, Which::All | Which::Ipvsadm) {
                bench_ipvsadm::run()?;
            }
            if matches!(which, Which::All | Which::Keepalived) {
                bench_keepalived::run()?;
            }
            if matches!(which, Which::All | Which::Failover) {
                bench_failover::run(rounds.min(5))?;
            }
        }
        Task::Deb {
            bin_dir,
            out,
            compress,
        } => {
            for deb in deb::build(&deb::Options {
                bin_dir,
                out,
                compress,
            })? {
                println!("{}", deb.display());
            }
        }
        Task::Kadiff {
            count,
            seed,
            show,
            class,
        } => {
            build_release_binaries()?;
            kadiff::run(count, seed, show, class.as_deref())?;
        }
    }
    Ok(())
}
