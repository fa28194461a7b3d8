//! The standard test topology: one client, one director running xlvs, N real servers, each on
//! its own veth link (all in 198.18.0.0/15), torn down on drop.
//!
//! ```text
//!   client c0 198.18.1.2 ──── l0 198.18.1.1 ┐
//!                                           director (xlvs on l0..lN, forwarding on)
//!   real i  r0 198.18.(1+i).2 ── l<i> 198.18.(1+i).1 ┘
//! ```
//! The VIP (198.18.100.1) is configured nowhere: the client routes everything via the director.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use dataplane::Options;

use crate::netns::{Netns, prepare_endpoint, run, unique_prefix, veth};

pub use crate::addrs::{CIP as CLIENT, VIP, real_addr};

pub struct Lab {
    pub prefix: String,
    pub client: Netns,
    pub director: Netns,
    pub reals: Vec<Netns>,
    pub opts: Options,
}

impl Lab {
    /// Builds the topology and attaches xlvs (through the `xlvs` binary) to the director's links.
    pub fn new(reals: usize) -> Result<Lab> {
        Lab::with_max_conns(reals, 65536)
    }

    /// The same with a connection table of `max_conns` connections.
    pub fn with_max_conns(reals: usize, max_conns: u32) -> Result<Lab> {
        let lab = Lab::unattached_with(reals, max_conns)?;
        lab.attach()?;
        Ok(lab)
    }

    /// The topology with nothing loaded or attached (as a director right after boot).
    pub fn unattached(reals: usize) -> Result<Lab> {
        Lab::unattached_with(reals, 65536)
    }

    /// [`Lab::unattached`] with a connection table of `max_conns` connections (the soak attaches
    /// it itself, without the timers it runs and kills on its own).
    pub fn unattached_with(reals: usize, max_conns: u32) -> Result<Lab> {
        let prefix = unique_prefix("xt");
        let client = Netns::new(&format!("{prefix}c"))?;
        let director = Netns::new(&format!("{prefix}d"))?;
        let mut real_ns = Vec::new();
        for i in 0..reals {
            real_ns.push(Netns::new(&format!("{prefix}r{i}"))?);
        }
        let opts = Options {
            pin_dir: PathBuf::from(format!("/sys/fs/bpf/xlvs-{prefix}")),
            max_conns,
        };
        let lab = Lab {
            prefix,
            client,
            director,
            reals: real_ns,
            opts,
        };
        lab.wire()?;
        Ok(lab)
    }

    fn attach(&self) -> Result<()> {
        let mut args = vec![
            "attach".to_string(),
            "--max-conns".to_string(),
            self.opts.max_conns.to_string(),
        ];
        args.extend(self.director_links());
        let out = self.xlvs(&args.iter().map(|s| s.as_str()).collect::<Vec<_>>())?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !text.contains("l0: attached") {
            bail!("unexpected attach output: {text}");
        }
        Ok(())
    }

    fn wire(&self) -> Result<()> {
        veth(&self.client, "c0", &self.director, "l0")?;
        self.client
            .ip(&["addr", "add", "198.18.1.2/24", "dev", "c0"])?;
        self.client
            .ip(&["route", "add", "default", "via", "198.18.1.1"])?;
        self.director
            .ip(&["addr", "add", "198.18.1.1/24", "dev", "l0"])?;
        prepare_endpoint(&self.client, "c0")?;
        for (i, ns) in self.reals.iter().enumerate() {
            let lif = format!("l{}", i + 1);
            veth(ns, "r0", &self.director, &lif)?;
            let net = 2 + i;
            ns.ip(&["addr", "add", &format!("198.18.{net}.2/24"), "dev", "r0"])?;
            ns.ip(&["route", "add", "default", "via", &format!("198.18.{net}.1")])?;
            self.director
                .ip(&["addr", "add", &format!("198.18.{net}.1/24"), "dev", &lif])?;
            prepare_endpoint(ns, "r0")?;
        }
        Ok(())
    }

    /// IPv6 beside IPv4 on every link ([`Netns::enable_ipv6`]: no link-local addresses, no DAD;
    /// `lo` too, where DR and tunnel reals hold the VIP): 2001:db8:1::/64 on the client's link
    /// (client ::2, routing through the director's ::1), 2001:db8:(2+i)::/64 towards real `i`
    /// (real ::2, routing through the director's ::1), the director forwarding, and permanent
    /// neighbour entries both ways on every link ([`Netns::neighbour6`]).
    pub fn add_ipv6(&self) -> Result<()> {
        let d = &self.director;
        // `default` first: links switched on later (another client's) forward too.
        d.sysctl("net.ipv6.conf.default.forwarding", "1")?;
        let mut links = vec!["lo".to_string()];
        links.extend(self.director_links());
        d.enable_ipv6(&links.iter().map(String::as_str).collect::<Vec<_>>())?;
        let c = &self.client;
        c.enable_ipv6(&["lo", "c0"])?;
        c.ip(&[
            "-6",
            "addr",
            "add",
            "2001:db8:1::2/64",
            "dev",
            "c0",
            "nodad",
        ])?;
        c.ip(&["-6", "route", "add", "default", "via", "2001:db8:1::1"])?;
        d.ip(&[
            "-6",
            "addr",
            "add",
            "2001:db8:1::1/64",
            "dev",
            "l0",
            "nodad",
        ])?;
        c.neighbour6("c0", "2001:db8:1::1", d, "l0")?;
        d.neighbour6("l0", "2001:db8:1::2", c, "c0")?;
        for (i, real) in self.reals.iter().enumerate() {
            let net = 2 + i;
            let lif = format!("l{}", i + 1);
            let (gw, rip) = (format!("2001:db8:{net}::1"), format!("2001:db8:{net}::2"));
            real.enable_ipv6(&["lo", "r0"])?;
            d.ip(&[
                "-6",
                "addr",
                "add",
                &format!("{gw}/64"),
                "dev",
                &lif,
                "nodad",
            ])?;
            real.ip(&[
                "-6",
                "addr",
                "add",
                &format!("{rip}/64"),
                "dev",
                "r0",
                "nodad",
            ])?;
            real.ip(&["-6", "route", "add", "default", "via", &gw])?;
            real.neighbour6("r0", &gw, d, &lif)?;
            d.neighbour6(&lif, &rip, real, "r0")?;
        }
        d.sysctl("net.ipv6.conf.all.forwarding", "1")?;
        Ok(())
    }

    /// The director's interfaces (l0 towards the client, l1.. towards the reals).
    pub fn director_links(&self) -> Vec<String> {
        (0..=self.reals.len()).map(|i| format!("l{i}")).collect()
    }

    /// Runs the `ipvsadm` binary in the director's namespace on this lab's tables, with `env`
    /// set too: its output, or an error with its stderr when it fails.
    pub fn ipvsadm_with(&self, args: &str, env: &[(&str, &str)]) -> Result<String> {
        let bin = binary("ipvsadm")?;
        let out = self
            .director
            .command(bin.to_str().context("path")?)
            .args(args.split_whitespace())
            .env("XLVS_PIN_DIR", &self.opts.pin_dir)
            .envs(env.iter().copied())
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "ipvsadm {args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?)
    }

    /// [`Lab::ipvsadm_with`] without more environment.
    pub fn ipvsadm(&self, args: &str) -> Result<String> {
        self.ipvsadm_with(args, &[])
    }

    /// Runs the `xlvs` binary in the director's namespace with this lab's pin directory.
    pub fn xlvs(&self, args: &[&str]) -> Result<std::process::Output> {
        xlvs_in(&self.director, &self.opts, args)
    }

    pub fn real_ip(&self, i: usize) -> IpAddr {
        IpAddr::V4(real_addr(i))
    }

    /// A [`crate::servers::tcp`] server named `r<i>` on `port` of every real.
    pub fn tcp_servers(&self, port: u16) -> Result<Vec<crate::servers::Server>> {
        (0..self.reals.len())
            .map(|i| {
                let addr = std::net::SocketAddr::new(self.real_ip(i), port);
                crate::servers::tcp(&self.reals[i], addr, &format!("r{i}"))
            })
            .collect()
    }

    /// [`Lab::tcp_servers`] on `port`, and a round-robin service VIP:`port` with all the reals as
    /// NAT reals.
    pub fn tcp_nat_service(
        &self,
        port: u16,
    ) -> Result<(dataplane::Dataplane, Vec<crate::servers::Server>)> {
        use dataplane::model::{DestConfig, Forward, Protocol, ServiceConfig};
        let srv = self.tcp_servers(port)?;
        let mut dp = dataplane::Dataplane::open(&self.opts)?;
        let reals: Vec<DestConfig> = (0..self.reals.len())
            .map(|i| crate::services::real(self.real_ip(i), port, Forward::Masq))
            .collect();
        let svc = ServiceConfig::new(crate::services::inet(Protocol::Tcp, VIP, port));
        crate::services::add(&mut dp, &svc, &reals)?;
        Ok((dp, srv))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Pins are global (bpffs is not per namespace): remove ours explicitly.
        let _ = dataplane::unload(&self.opts);
        let _ = run("true", &[]);
    }
}

/// A data plane pinned under a scratch directory, unloaded (pins removed) on drop.
pub struct Pins(pub Options);

impl Pins {
    /// `/sys/fs/bpf/xlvs-<prefix>` with a connection table of `max_conns`.
    pub fn scratch(prefix: &str, max_conns: u32) -> Pins {
        Pins(Options {
            pin_dir: PathBuf::from(format!("/sys/fs/bpf/xlvs-{prefix}")),
            max_conns,
        })
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        let _ = dataplane::unload(&self.0);
    }
}

/// Runs the `xlvs` binary in `ns` on the tables pinned at `opts`.
pub fn xlvs_in(ns: &Netns, opts: &Options, args: &[&str]) -> Result<std::process::Output> {
    let bin = binary("xlvs")?;
    let mut a = vec![
        bin.to_str().context("path")?,
        "--pin-dir",
        opts.pin_dir.to_str().context("path")?,
    ];
    a.extend_from_slice(args);
    ns.exec(a[0], &a[1..])
}

/// Path of a binary built by this workspace: next to the running executable, or next to its
/// directory (test executables live in `target/<profile>/deps/`).
pub fn binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("executable has no parent")?;
    for d in [Some(dir), dir.parent()].into_iter().flatten() {
        let p = d.join(name);
        if p.exists() {
            return Ok(p);
        }
    }
    bail!(
        "{name} is not built next to {}: build the workspace first (`cargo build --workspace`)",
        dir.display()
    )
}
