//! The liveness device: a TUN interface that exists only while a process holds it open, whose
//! /32 and /128 addresses are the announced VIPs. Every daemon announces from it (bird:
//! `protocol direct`; FRR/quagga: `network` statements whose import check needs the connected
//! route; OSPF: a passive stub interface), so when keepalived dies — even by SIGKILL — the
//! kernel removes the interface and its addresses and the daemon withdraws at once, while the
//! daemon and its sessions stay up for a restart to adopt.
//!
//! The interface is multi-queue: a second process can attach to it by name (the lease holder of
//! a `--dont-release-ipvs` stop, then the restarted keepalived), so handing it over keeps the
//! VIPs announced; it goes when its last holder does.

use anyhow::{Context, Result, bail};
use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use vrrp::netlink::{Netlink, Vip};

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_MULTI_QUEUE: libc::c_short = 0x0100;

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// The liveness device, held open.
pub struct Device {
    /// The interface's name.
    pub name: String,
    /// One queue of the device; the device lives while some process holds one.
    queue: File,
    ifindex: u32,
    netlink: Netlink,
    /// The addresses we know are on it.
    addresses: BTreeSet<IpAddr>,
}

/// Opens a queue of the multi-queue TUN device `name`, creating it when it does not exist.
pub fn open_queue(name: &str) -> Result<File> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        bail!("interface name {name:?} is empty or longer than 15 characters");
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .context("cannot open /dev/net/tun (needs root and the tun driver)")?;
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE,
        _pad: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads an ifreq we own, for the lifetime of the call.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, &mut req) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINVAL) || e.raw_os_error() == Some(libc::EBUSY) {
            bail!(
                "interface {name} exists and is not a multi-queue TUN device the route bridge can hold ({e}): \
                 choose another `device` in route_bridge"
            );
        }
        return Err(e).with_context(|| format!("cannot create the TUN device {name}"));
    }
    Ok(file)
}

impl Device {
    /// Creates (or joins) the device and brings it up; the addresses it already carries (left
    /// by a lease holder) are taken as announced.
    pub fn open(name: &str) -> Result<Device> {
        let queue = open_queue(name)?;
        let ifindex = dataplane::loader::ifindex(name)
            .with_context(|| format!("interface {name} vanished after it was created"))?;
        let mut netlink = Netlink::open().context("cannot open rtnetlink")?;
        netlink
            .set_up(ifindex)
            .with_context(|| format!("cannot set {name} up"))?;
        Ok(Device {
            name: name.to_string(),
            queue,
            ifindex,
            netlink,
            addresses: host_addresses(name),
        })
    }

    /// The addresses on the device (what is announced from it).
    pub fn addresses(&self) -> &BTreeSet<IpAddr> {
        &self.addresses
    }

    /// Puts exactly `want` on the device: removals first (withdrawals before anything else).
    pub fn set(&mut self, want: &BTreeSet<IpAddr>) -> Result<()> {
        for a in self.addresses.difference(want).copied().collect::<Vec<_>>() {
            self.netlink
                .del_address(&self.vip(a))
                .with_context(|| format!("cannot remove {a} from {}", self.name))?;
            self.addresses.remove(&a);
        }
        for a in want.difference(&self.addresses.clone()) {
            self.netlink
                .add_address(&self.vip(*a))
                .with_context(|| format!("cannot add {a} to {}", self.name))?;
            self.addresses.insert(*a);
        }
        Ok(())
    }

    fn vip(&self, addr: IpAddr) -> Vip {
        Vip {
            addr,
            prefix_len: if addr.is_ipv4() { 32 } else { 128 },
            ifindex: self.ifindex,
            ifname: self.name.clone(),
            broadcast: None,
            scope: 0,
            label: None,
            nodad: addr.is_ipv6(),
        }
    }

    /// A duplicate of the queue's descriptor, for a lease holder to keep the device alive.
    pub fn queue_fd(&self) -> Result<OwnedFd> {
        Ok(self.queue.try_clone()?.into())
    }
}

/// The host addresses (/32, /128) on interface `name`, as the kernel lists them.
pub fn host_addresses(name: &str) -> BTreeSet<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return BTreeSet::new();
    };
    addrs
        .filter(|a| a.interface_name == name)
        .filter_map(|a| {
            let s = a.address?;
            if let Some(v4) = s.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                s.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        })
        .filter(|a| !matches!(a, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80))
        .collect()
}
