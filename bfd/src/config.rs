//! `bfd_instance` blocks as keepalived's BFD process takes them (`bfd_parser.c`): instances
//! without a neighbour, with source and neighbour of different families, or with a
//! neighbour another instance already has are left out; ttl/hoplimit default to 255 (IPv4)
//! and 64 (IPv6), max_hops is capped at the ttl, and 255 turns the hop check off.

use std::net::IpAddr;

use keepalived_conf::model::KeepalivedConfig;

use crate::session::Params;

/// One `bfd_instance` as the daemon runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceConfig {
    /// The instance's name (what `track_bfd` / `BFD_CHECK` follow).
    pub name: String,
    /// The neighbour's address.
    pub neighbor: IpAddr,
    /// Local address, when configured.
    pub source: Option<IpAddr>,
    /// Timers, multiplier and passive mode.
    pub params: Params,
    /// Outgoing TTL / hop limit.
    pub ttl: u8,
    /// The lowest TTL / hop limit accepted (0: no check).
    pub min_ttl: u8,
}

/// The BFD sessions a configuration asks for, keepalived's defaults applied.
pub fn instances(cfg: &KeepalivedConfig) -> Vec<InstanceConfig> {
    let mut out: Vec<InstanceConfig> = Vec::new();
    for b in &cfg.bfd_instances {
        let Some(neighbor) = b.neighbor_ip else {
            continue;
        };
        if b.source_ip
            .is_some_and(|s| s.is_ipv4() != neighbor.is_ipv4())
            || out
                .iter()
                .any(|o| o.neighbor == neighbor || o.name == b.name)
        {
            continue;
        }
        let ttl = b.ttl.unwrap_or(if neighbor.is_ipv4() { 255 } else { 64 });
        let max_hops = b.max_hops.unwrap_or(0);
        let min_ttl = if max_hops == 255 {
            0
        } else {
            ttl.saturating_sub(max_hops.min(ttl))
        };
        out.push(InstanceConfig {
            name: b.name.clone(),
            neighbor,
            source: b.source_ip,
            params: Params {
                min_rx: b.min_rx.saturating_mul(1000),
                min_tx: b.min_tx.saturating_mul(1000),
                idle_tx: b.idle_tx.saturating_mul(1000),
                multiplier: b.multiplier.clamp(1, 255) as u8,
                passive: b.passive,
            },
            ttl,
            min_ttl,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_left_out_instances() {
        let c = keepalived_conf::parse_str(
            "bfd_instance A {\n neighbor_ip 198.18.0.2\n}\n\
             bfd_instance B {\n neighbor_ip 198.18.0.2\n}\n\
             bfd_instance C {\n source_ip 198.18.0.1\n neighbor_ip 2001:db8::2\n}\n\
             bfd_instance D {\n min_rx 10\n}\n\
             bfd_instance E {\n neighbor_ip 2001:db8::3\n max_hops 255\n passive\n}\n",
            "t",
            &Default::default(),
        )
        .config;
        let i = instances(&c);
        assert_eq!(i.len(), 2);
        assert_eq!(
            (i[0].name.as_str(), i[0].ttl, i[0].min_ttl),
            ("A", 255, 255)
        );
        assert_eq!(i[0].params.min_rx, 10_000);
        assert_eq!(i[0].params.idle_tx, 1_000_000);
        assert_eq!((i[1].name.as_str(), i[1].ttl, i[1].min_ttl), ("E", 64, 0));
        assert!(i[1].params.passive);
    }
}
