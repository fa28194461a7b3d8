//! `no_accept` (RFC 5798 Accept_Mode false): a master that is not the address owner (priority
//! 255) must not accept packets addressed to its VIPs. keepalived installs firewall rules for
//! this; here each such instance gets an nftables chain in table `inet xlvs_vrrp` dropping
//! input to its VIPs while it is master (ARP and neighbour discovery are untouched, so the VIPs
//! still answer for the network).

use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};

const TABLE: &str = "xlvs_vrrp";

/// The instance's chain name (nft identifiers: letters, digits, underscore).
fn chain(instance: &str) -> String {
    let safe: String = instance
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("no_accept_{safe}")
}

/// The nft script that drops input to `vips` for `instance` (replacing what it had).
pub fn block_script(instance: &str, vips: &[IpAddr]) -> String {
    let c = chain(instance);
    let mut s = format!(
        "add table inet {TABLE}\n\
         add chain inet {TABLE} {c} {{ type filter hook input priority -200; }}\n\
         flush chain inet {TABLE} {c}\n"
    );
    let list = |v6: bool| -> Vec<String> {
        vips.iter()
            .filter(|a| a.is_ipv6() == v6)
            .map(|a| a.to_string())
            .collect()
    };
    for (family, addrs) in [("ip", list(false)), ("ip6", list(true))] {
        if !addrs.is_empty() {
            s.push_str(&format!(
                "add rule inet {TABLE} {c} {family} daddr {{ {} }} drop\n",
                addrs.join(", ")
            ));
        }
    }
    s
}

fn nft(script: &str) -> std::io::Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

/// Starts dropping input to `vips` (entering MASTER without accept).
pub fn block(instance: &str, vips: &[IpAddr]) {
    if let Err(e) = nft(&block_script(instance, vips)) {
        log::error!("({instance}) no_accept: cannot install the nftables rules: {e}");
    }
}

/// Stops dropping (leaving MASTER, or stopping). Nothing to remove is fine.
pub fn unblock(instance: &str) {
    let _ = nft(&format!("delete chain inet {TABLE} {}\n", chain(instance)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_drops_each_family_in_its_own_rule() {
        let vips: Vec<IpAddr> = vec![
            "198.18.71.100".parse().unwrap(),
            "2001:db8::100".parse().unwrap(),
        ];
        let s = block_script("VI-1", &vips);
        assert!(s.contains(
            "add chain inet xlvs_vrrp no_accept_VI_1 { type filter hook input priority -200; }"
        ));
        assert!(
            s.contains("add rule inet xlvs_vrrp no_accept_VI_1 ip daddr { 198.18.71.100 } drop")
        );
        assert!(
            s.contains("add rule inet xlvs_vrrp no_accept_VI_1 ip6 daddr { 2001:db8::100 } drop")
        );
    }
}
