//! Services, reals and local addresses put into a data plane as `ipvsadm -A/-a/-P` would, so a
//! test states only what differs from the defaults (`ServiceConfig::new`, `DestConfig::new`).

use std::net::IpAddr;

use dataplane::model::{DestConfig, Forward, LocalAddr, Protocol, ServiceAddr, ServiceConfig};
use dataplane::{Dataplane, Result};

/// The address of the `proto` service `vip`:`port`.
pub fn inet(proto: Protocol, vip: impl Into<IpAddr>, port: u16) -> ServiceAddr {
    ServiceAddr::Inet {
        proto,
        addr: vip.into(),
        port,
    }
}

/// A real `addr`:`port` reached by `forward`, weight 1.
pub fn real(addr: impl Into<IpAddr>, port: u16, forward: Forward) -> DestConfig {
    DestConfig {
        forward,
        ..DestConfig::new(addr.into(), port)
    }
}

/// Adds the service `cfg`, then its `reals` in order; its address.
pub fn add(dp: &mut Dataplane, cfg: &ServiceConfig, reals: &[DestConfig]) -> Result<ServiceAddr> {
    dp.add_service(cfg)?;
    for d in reals {
        dp.add_dest(&cfg.addr, d)?;
    }
    Ok(cfg.addr)
}

/// The common case: the `proto` service `vip`:`port` with default settings and `reals` as NAT
/// reals on port 8080.
pub fn nat(
    dp: &mut Dataplane,
    proto: Protocol,
    vip: impl Into<IpAddr>,
    port: u16,
    reals: &[IpAddr],
) -> Result<ServiceAddr> {
    let reals: Vec<DestConfig> = reals
        .iter()
        .map(|r| real(*r, 8080, Forward::Masq))
        .collect();
    add(dp, &ServiceConfig::new(inet(proto, vip, port)), &reals)
}

/// The service `cfg` with `reals` (as [`add`]) and the FULLNAT local addresses `laddrs`.
pub fn fullnat(
    dp: &mut Dataplane,
    cfg: &ServiceConfig,
    reals: &[DestConfig],
    laddrs: &[IpAddr],
) -> Result<ServiceAddr> {
    let addr = add(dp, cfg, reals)?;
    for l in laddrs {
        dp.add_laddr(&addr, &local_addr(*l))?;
    }
    Ok(addr)
}

/// A FULLNAT local address without an interface name.
pub fn local_addr(addr: impl Into<IpAddr>) -> LocalAddr {
    LocalAddr {
        addr: addr.into(),
        ifname: None,
        conns: 0,
        port_conflicts: 0,
    }
}
