use super::*;

impl Engine {
    /// use_vmac: a private macvlan with 00:00:5e:00:01:VRID (00:00:5e:00:02:VRID for IPv6) on
    /// the interface, up, with keepalived's sysctls; a leftover of the same name is replaced.
    pub(super) fn create_vmac(
        &mut self,
        cfg: &InstanceConfig,
        name: &str,
        base: u32,
    ) -> Result<(String, u32)> {
        let v6 = cfg.family == Family::V6;
        let mac = [0, 0, 0x5e, 0, if v6 { 2 } else { 1 }, cfg.vrid];
        if let Ok(old) = nix::net::if_::if_nametoindex(name) {
            let _ = self.nl.delete_link(old);
        }
        self.nl
            .create_macvlan(name, base, mac)
            .with_context(|| format!("({}) cannot create vmac {name}", cfg.name))?;
        let index = nix::net::if_::if_nametoindex(name)
            .with_context(|| format!("({}) vmac {name} vanished", cfg.name))?;
        for (ifname, key, value) in [
            (name, "arp_ignore", "1"),
            (name, "accept_local", "1"),
            (name, "rp_filter", "0"),
            (cfg.interface.as_str(), "arp_ignore", "1"),
            (cfg.interface.as_str(), "arp_filter", "1"),
        ] {
            let _ = std::fs::write(format!("/proc/sys/net/ipv4/conf/{ifname}/{key}"), value);
        }
        // No IPv6 link-local on the vmac (keepalived: addrgenmode none).
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/addr_gen_mode"), "1");
        self.nl
            .set_up(index)
            .with_context(|| format!("({}) cannot set {name} up", cfg.name))?;
        log::info!("({}) vmac {name} created", cfg.name);
        Ok((name.to_string(), index))
    }

    /// use_ipvlan: an L2 ipvlan on the interface carrying its own address (the adverts'
    /// source), up; a leftover of the same name is replaced.
    pub(super) fn create_ipvlan(
        &mut self,
        cfg: &InstanceConfig,
        base: u32,
    ) -> Result<Option<(String, u32)>> {
        let Some((name, addr, mode)) = &cfg.use_ipvlan else {
            return Ok(None);
        };
        if let Ok(old) = nix::net::if_::if_nametoindex(name.as_str()) {
            let _ = self.nl.delete_link(old);
        }
        self.nl
            .create_ipvlan(name, base, mode)
            .with_context(|| format!("({}) cannot create ipvlan {name}", cfg.name))?;
        let index = nix::net::if_::if_nametoindex(name.as_str())
            .with_context(|| format!("({}) ipvlan {name} vanished", cfg.name))?;
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/addr_gen_mode"), "1");
        if let Some((a, len)) = addr {
            self.nl
                .add_address(&Vip {
                    addr: *a,
                    prefix_len: *len,
                    ifindex: index,
                    ifname: name.clone(),
                    broadcast: None,
                    scope: 0,
                    label: None,
                    nodad: a.is_ipv6(),
                })
                .with_context(|| format!("({}) cannot address ipvlan {name}", cfg.name))?;
        }
        self.nl
            .set_up(index)
            .with_context(|| format!("({}) cannot set {name} up", cfg.name))?;
        log::info!("({}) ipvlan {name} created", cfg.name);
        Ok(Some((name.clone(), index)))
    }
}
