//! `cargo xtask bench [xdp|http|synflood|ipvsadm|keepalived|bridge|failover|all]`: the data-plane benchmarks. Each prints its figures beside a
//! baseline measured in the same run, with ratios (the machine is noisy: compare ratios).
//! `cargo xtask deb`: the Debian packages (`deb.rs`).
//! `cargo xtask soak [--duration 30m | --quick]`: fault injection under load (`soak.rs`).
//! `cargo xtask unsafe-lint`: the XDP program's `unsafe` blocks without a SAFETY comment
//! (`unsafe_lint.rs`; its unit test runs in CI).
//!
//! # The benchmarks
//!
//! * `xdp`: ns/packet via BPF_PROG_TEST_RUN as Katran's own perf harness measures (repeat=1, 150 000 calls per
//!   case per round, cases interleaved and rotated, the trivial program in the same rounds; medians
//!   and cost above the floor), in a scratch namespace whose FIB resolves the next hops so the
//!   established and new-flow cases go all the way to `XDP_TX`.
//!   Cases include FULLNAT (established hit and reply, the handshake ACK that gets TOA, new
//!   connection with port allocation from 32 local addresses) and SYNPROXY (SYN → cookie
//!   SYN-ACK for IPv4 and IPv6, cookie ACK → real SYN, established hit with sequence and
//!   timestamp translation)
//!   beside the NAT ones, with ratios to the NAT established hit; a fwmark
//!   service's new connection and established hit, with the (vip, vport) new connection, a
//!   non-VIP packet and the service lookup alone (an ACK without session, dropped) measured again
//!   with no fwmark service or rule present; a new connection per scheduler; tunnels (ipip, GUE and GRE with
//!   checksums, ip6ip6: established hit and new connection, printed as ratios to NAT's).
//! * `http`: wrk against nginx reals through the VIP, beside direct routing and nftables DNAT in the
//!   same run (keep-alive and new connection per request); connections/s through a SYNPROXY VIP
//!   beside the plain VIP (new connection per request).
//! * `ipvsadm`: `-R` and `-Ln` of 10 000 services × 10 reals beside a trivial invocation.
//! * `keepalived`: programming 2 000 virtual servers × 4 reals at start and SIGHUP reloads (one
//!   change, no change) beside `ipvsadm -R` of the same rules and one `ipvsadm -e`.

mod bench_bridge;
mod bench_failover;
mod bench_fw;
mod bench_http;
mod bench_ipvsadm;
mod bench_keepalived;
mod bench_synflood;
mod bench_xdp;
mod deb;
mod kadiff;
mod nginx;
mod soak;
mod stats;
mod unsafe_lint;

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
    /// VIP; synflood = a SYN flood on a SYNPROXY VIP beside the kernel's syncookies; ipvsadm = -R
    /// and -Ln of 10 000 services x 10 reals; keepalived = start and SIGHUP reload of 2000
    /// virtual servers beside ipvsadm -R / -e; bridge = route bridge withdraw/announce times at
    /// an FRR router beside hand-driven birdc/vtysh changes; failover = VRRP takeover after a
    /// graceful stop and a SIGKILL at 1 s / 100 ms / 10 ms adverts, and after the loss of a
    /// tracked BFD session (FRR bfdd peer), beside 2.2.7.
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
    /// Fault injection under wrk load (needs root, wrk, nginx): kill -9 of keepalived, the
    /// timers and the sync daemon, SIGHUP storms, interface flaps, reals failing their checks,
    /// a full connection table; reports failed requests, RSS and table fill over time.
    Soak {
        /// How long: 90s, 30m, 2h.
        #[arg(long, default_value = "30m", value_parser = parse_duration)]
        duration: std::time::Duration,
        /// Two minutes in windows of 10 s (overrides --duration and --window).
        #[arg(long)]
        quick: bool,
        /// One wrk run and one report line per window.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        window: std::time::Duration,
        /// Seed of the fault schedule.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Connections the table holds (small: it is full within seconds).
        #[arg(long, default_value_t = 2048)]
        max_conns: u32,
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
    /// The XDP program's (`ebpf/src`) `unsafe` blocks without a `// SAFETY:` comment.
    UnsafeLint,
}

/// `90s`, `30m`, `2h` (a bare number is seconds).
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{s}`: a number and s, m or h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("`{s}`: the unit is s, m or h")),
    };
    Ok(std::time::Duration::from_secs(secs))
}

#[derive(Clone, Copy, clap::ValueEnum, PartialEq)]
enum Which {
    All,
    Xdp,
    Http,
    Synflood,
    Ipvsadm,
    Keepalived,
    Bridge,
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
            if matches!(which, Which::All | Which::Failover) {
                bench_failover::run(rounds.min(5))?;
            }
            if matches!(which, Which::All | Which::Bridge) {
                bench_bridge::run(rounds.min(5))?;
            }
        }
        Task::Soak {
            duration,
            quick,
            window,
            seed,
            max_conns,
        } => {
            build_release_binaries()?;
            let (duration, window) = if quick {
                (
                    std::time::Duration::from_secs(120),
                    std::time::Duration::from_secs(10),
                )
            } else {
                (duration, window)
            };
            soak::run(&soak::Options {
                duration,
                window,
                seed,
                max_conns,
            })?;
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
        Task::UnsafeLint => unsafe_lint::run()?,
    }
    Ok(())
}
