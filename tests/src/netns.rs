//! Network namespaces and veth links for tests: names unique per run, removed on drop (also when
//! a test panics), IPv6 off unless asked for, so nothing but the test's own addresses is ever sent.

use std::fs::File;
use std::os::fd::AsFd;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result, bail};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A prefix unique to this process and call: `<tag><pid>x<n>`, short enough for interface names.
pub fn unique_prefix(tag: &str) -> String {
    format!(
        "{tag}{}x{}",
        std::process::id() % 100000,
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs a command, failing with its stderr when it fails.
pub fn run(cmd: &str, args: &[&str]) -> Result<Output> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {cmd}"))?;
    if !out.status.success() {
        bail!(
            "{cmd} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// True when running as root (tests that build namespaces need it).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(name: &str) -> Result<Netns> {
        run("ip", &["netns", "add", name])?;
        let ns = Netns {
            name: name.to_string(),
        };
        for (key, value) in [
            ("net.ipv6.conf.all.disable_ipv6", "1"),
            ("net.ipv6.conf.default.disable_ipv6", "1"),
            ("net.ipv4.ip_forward", "1"),
        ] {
            ns.sysctl(key, value)?;
        }
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `ip -n NAME args...`
    pub fn ip(&self, args: &[&str]) -> Result<Output> {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend_from_slice(args);
        run("ip", &a)
    }

    /// Runs a command inside the namespace (network namespace only, so /sys/fs/bpf stays visible).
    pub fn exec(&self, cmd: &str, args: &[&str]) -> Result<Output> {
        let net = format!("--net=/run/netns/{}", self.name);
        let mut a = vec![net.as_str(), cmd];
        a.extend_from_slice(args);
        run("nsenter", &a)
    }

    /// A `Command` that will run inside the namespace.
    pub fn command(&self, cmd: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.name)).arg(cmd);
        c
    }

    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.exec("sysctl", &["-qw", &format!("{key}={value}")])?;
        Ok(())
    }

    /// The MAC address of `ifname` (as `ip link` prints it).
    pub fn mac(&self, ifname: &str) -> Result<String> {
        let out = self.ip(&["link", "show", "dev", ifname])?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .map(str::to_string)
            .with_context(|| format!("no MAC for {ifname} in: {text}"))
    }

    /// IPv6 on `ifaces` (and on links made later) without link-local addresses or DAD, so
    /// nothing but the test's own addresses is ever sent.
    pub fn enable_ipv6(&self, ifaces: &[&str]) -> Result<()> {
        self.sysctl("net.ipv6.conf.default.addr_gen_mode", "1")?;
        self.sysctl("net.ipv6.conf.default.accept_dad", "0")?;
        for i in ifaces {
            self.sysctl(&format!("net.ipv6.conf.{i}.addr_gen_mode"), "1")?;
            self.sysctl(&format!("net.ipv6.conf.{i}.accept_dad"), "0")?;
            self.sysctl(&format!("net.ipv6.conf.{i}.disable_ipv6"), "0")?;
        }
        Ok(())
    }

    /// A permanent IPv6 neighbour entry: `ip` is at `peer`'s `peer_if`, reached through our
    /// `ifname`. Without link-local addresses the kernel solicits neighbours only for packets it
    /// sends from the interface's own address, never for forwarded ones.
    pub fn neighbour6(&self, ifname: &str, ip: &str, peer: &Netns, peer_if: &str) -> Result<()> {
        let mac = peer.mac(peer_if)?;
        self.ip(&[
            "-6",
            "neigh",
            "replace",
            ip,
            "lladdr",
            &mac,
            "dev",
            ifname,
            "nud",
            "permanent",
        ])?;
        Ok(())
    }

    /// Runs `f` on a thread that has entered this namespace (sockets it opens live there).
    pub fn run_in<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<Result<T>> {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            enter(&path)?;
            Ok(f())
        })
    }
}

/// Moves the calling thread into the network namespace at `path`.
pub fn enter(path: &str) -> Result<()> {
    let f = File::open(path).with_context(|| format!("open {path}"))?;
    nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("setns {path}"))?;
    Ok(())
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

/// Joins `a_if` in `a` and `b_if` in `b` with a veth pair, both up.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) -> Result<()> {
    run(
        "ip",
        &[
            "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns",
            &b.name,
        ],
    )?;
    a.ip(&["link", "set", a_if, "up"])?;
    b.ip(&["link", "set", b_if, "up"])?;
    Ok(())
}

/// Makes `ifname` (a veth end facing an XDP interface) fit for XDP tests:
/// * tx checksum offload off: locally generated packets then carry full checksums. With it on,
///   veth hands over CHECKSUM_PARTIAL packets whose L4 checksum holds only the pseudo-header sum,
///   which an XDP rewrite cannot see, so forwarded packets would arrive with bad checksums.
/// * GRO on: gives the veth a NAPI context, without which frames that XDP sends to it
///   (XDP_TX from its peer, or a devmap redirect) are silently dropped.
pub fn prepare_endpoint(ns: &Netns, ifname: &str) -> Result<()> {
    ns.exec("ethtool", &["-K", ifname, "tx", "off", "gro", "on"])?;
    Ok(())
}

/// A namespace whose FIB can resolve next hops without any peer: a veth `b0` holding
/// 198.18.1.1/24, 198.18.2.1/24 and 198.18.3.1/24, with permanent neighbours for 198.18.1.2,
/// 198.18.2.2-5 and 198.18.3.2 (MAC 02:00:00:00:NET:HOST, e.g. 02:00:00:00:02:03 for
/// 198.18.2.3); and IPv6 routes 2001:db8:N::/64 via b0 with permanent neighbours 2001:db8:1::2 and
/// 2001:db8:2::2 (MACs 02:00:00:06:0N:02). IPv6 is enabled on b0 without any address (no
/// link-local either), so nothing is ever sent: no DAD, no MLD, no router solicitation.
/// For BPF_PROG_TEST_RUN with an ingress interface (tests, benchmarks).
pub fn fib_namespace(name: &str) -> Result<(Netns, String)> {
    let ns = Netns::new(name)?;
    ns.ip(&["link", "add", "b0", "type", "veth", "peer", "name", "b1"])?;
    ns.ip(&["link", "set", "b0", "up"])?;
    ns.ip(&["link", "set", "b1", "up"])?;
    for net in 1..=3 {
        ns.ip(&["addr", "add", &format!("198.18.{net}.1/24"), "dev", "b0"])?;
    }
    for (net, host) in [(1, 2), (2, 2), (2, 3), (2, 4), (2, 5), (3, 2)] {
        let ip = format!("198.18.{net}.{host}");
        let mac = format!("02:00:00:00:{net:02x}:{host:02x}");
        ns.ip(&[
            "neigh",
            "add",
            &ip,
            "lladdr",
            &mac,
            "dev",
            "b0",
            "nud",
            "permanent",
        ])?;
    }
    ns.sysctl("net.ipv6.conf.b0.addr_gen_mode", "1")?;
    ns.sysctl("net.ipv6.conf.b0.disable_ipv6", "0")?;
    ns.sysctl("net.ipv6.conf.all.forwarding", "1")?;
    for net in 1..=2 {
        ns.ip(&[
            "-6",
            "route",
            "add",
            &format!("2001:db8:{net}::/64"),
            "dev",
            "b0",
        ])?;
        let mac = format!("02:00:00:06:{net:02x}:02");
        let ip = format!("2001:db8:{net}::2");
        let neigh = [
            "-6",
            "neigh",
            "add",
            &ip,
            "lladdr",
            &mac,
            "dev",
            "b0",
            "nud",
            "permanent",
        ];
        ns.ip(&neigh)?;
    }
    Ok((ns, "b0".to_string()))
}
