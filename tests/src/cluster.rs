//! A director cluster behind a router, torn down on drop:
//!
//! ```text
//!   client c0 198.18.40.2 ── r0 198.18.40.1 ┐ router (bridge br0 198.18.30.1/24, ECMP, L4 hash)
//!                                           ├── director i  e0 198.18.30.(11+i)  xlvs on e0
//!                                           └── real j      e0 198.18.30.(21+j)  VIP on lo
//! ```
//! One LAN (a Linux bridge in the router's namespace) holds the router, the directors and the
//! reals, as in a DR/TUN deployment; the reals answer the client through the router. Each
//! director has its own namespace and pin directory, attached with the `xlvs` binary.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::{Result, bail};
use dataplane::Options;

use crate::lab::binary;
use crate::netns::{Netns, prepare_endpoint, run, unique_prefix};

pub const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 40, 2);
pub const ROUTER_LAN: Ipv4Addr = Ipv4Addr::new(198, 18, 30, 1);

pub fn director_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 30, 11 + i as u8)
}

pub fn real_addr(j: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 30, 21 + j as u8)
}

pub struct Director {
    pub ns: Netns,
    pub opts: Options,
    pub addr: Ipv4Addr,
}

impl Director {
    /// Runs the `xlvs` binary in this director's namespace on its pin directory.
    pub fn xlvs(&self, args: &[&str]) -> Result<std::process::Output> {
        crate::lab::xlvs_in(&self.ns, &self.opts, args)
    }
}

pub struct Cluster {
    pub prefix: String,
    pub client: Netns,
    pub router: Netns,
    pub directors: Vec<Director>,
    pub reals: Vec<Netns>,
}

impl Cluster {
    /// Builds the topology with `vips` on the reals' loopback (DR/TUN), attaching xlvs on every
    /// director (in parallel: each load verifies the program).
    pub fn new(directors: usize, reals: usize, vips: &[Ipv4Addr]) -> Result<Cluster> {
        let prefix = unique_prefix("xc");
        let client = Netns::new(&format!("{prefix}c"))?;
        let router = Netns::new(&format!("{prefix}r"))?;
        let mut ds = Vec::new();
        for i in 0..directors {
            ds.push(Director {
                ns: Netns::new(&format!("{prefix}d{i}"))?,
                opts: Options {
                    pin_dir: PathBuf::from(format!("/sys/fs/bpf/xlvs-{prefix}d{i}")),
                    max_conns: 65536,
                },
                addr: director_addr(i),
            });
        }
        let mut rs = Vec::new();
        for j in 0..reals {
            rs.push(Netns::new(&format!("{prefix}s{j}"))?);
        }
        let c = Cluster {
            prefix,
            client,
            router,
            directors: ds,
            reals: rs,
        };
        c.wire(vips)?;
        Ok(c)
    }

    /// One more host on the LAN (no data plane): `name` under the cluster's prefix, address
    /// `addr`/24, default route via the router. For routing daemons driven by hand.
    pub fn add_host(&self, name: &str, addr: Ipv4Addr) -> Result<Netns> {
        let ns = Netns::new(&format!("{}{name}", self.prefix))?;
        self.port(&ns, &format!("p{name}"))?;
        ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", "e0"])?;
        ns.ip(&["route", "add", "default", "via", "198.18.30.1"])?;
        Ok(ns)
    }

    fn port(&self, ns: &Netns, port: &str) -> Result<()> {
        run(
            "ip",
            &[
                "link",
                "add",
                "e0",
                "netns",
                &ns.name,
                "type",
                "veth",
                "peer",
                "name",
                port,
                "netns",
                &self.router.name,
            ],
        )?;
        self.router
            .ip(&["link", "set", port, "master", "br0", "up"])?;
        ns.ip(&["link", "set", "e0", "up"])?;
        // The router's side receives what XDP sends back out of e0 (DR to a real); e0 sends
        // full checksums.
        prepare_endpoint(&self.router, port)?;
        prepare_endpoint(ns, "e0")?;
        Ok(())
    }

    fn wire(&self, vips: &[Ipv4Addr]) -> Result<()> {
        let r = &self.router;
        r.sysctl("net.ipv4.fib_multipath_hash_policy", "1")?;
        r.ip(&["link", "add", "br0", "type", "bridge"])?;
        r.ip(&["link", "set", "br0", "up"])?;
        r.ip(&["addr", "add", "198.18.30.1/24", "dev", "br0"])?;
        run(
            "ip",
            &[
                "link",
                "add",
                "c0",
                "netns",
                &self.client.name,
                "type",
                "veth",
                "peer",
                "name",
                "r0",
                "netns",
                &r.name,
            ],
        )?;
        r.ip(&["link", "set", "r0", "up"])?;
        r.ip(&["addr", "add", "198.18.40.1/24", "dev", "r0"])?;
        self.client.ip(&["link", "set", "c0", "up"])?;
        self.client
            .ip(&["addr", "add", "198.18.40.2/24", "dev", "c0"])?;
        self.client
            .ip(&["route", "add", "default", "via", "198.18.40.1"])?;
        prepare_endpoint(&self.client, "c0")?;
        prepare_endpoint(r, "r0")?;
        for (i, d) in self.directors.iter().enumerate() {
            self.port(&d.ns, &format!("pd{i}"))?;
            d.ns.ip(&["addr", "add", &format!("{}/24", d.addr), "dev", "e0"])?;
            d.ns.ip(&["route", "add", "default", "via", "198.18.30.1"])?;
        }
        for (j, s) in self.reals.iter().enumerate() {
            self.port(s, &format!("ps{j}"))?;
            s.ip(&["addr", "add", &format!("{}/24", real_addr(j)), "dev", "e0"])?;
            s.ip(&["route", "add", "default", "via", "198.18.30.1"])?;
            s.sysctl("net.ipv4.conf.all.arp_ignore", "1")?;
            s.sysctl("net.ipv4.conf.all.arp_announce", "2")?;
            s.sysctl("net.ipv4.conf.all.rp_filter", "0")?;
            s.sysctl("net.ipv4.conf.default.rp_filter", "0")?;
            for v in vips {
                s.ip(&["addr", "add", &format!("{v}/32"), "dev", "lo"])?;
            }
        }
        let bin = binary("xlvs")?;
        let jobs: Vec<_> = self
            .directors
            .iter()
            .map(|d| {
                let pin = d.opts.pin_dir.display().to_string();
                let ns = d.ns.name.clone();
                let bin = bin.clone();
                std::thread::spawn(move || {
                    run(
                        "nsenter",
                        &[
                            &format!("--net=/run/netns/{ns}"),
                            bin.to_str().unwrap_or("xlvs"),
                            "--pin-dir",
                            &pin,
                            "attach",
                            "e0",
                        ],
                    )
                })
            })
            .collect();
        for j in jobs {
            let out = j.join().map_err(|_| anyhow::anyhow!("attach panicked"))??;
            let text = String::from_utf8_lossy(&out.stdout);
            if !text.contains("e0: attached") {
                bail!("unexpected attach output: {text}");
            }
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for d in &self.directors {
            let _ = dataplane::unload(&d.opts);
        }
    }
}
