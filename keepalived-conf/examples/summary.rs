//! Prints a one-line summary of each configuration file given: counts of
//! virtual servers, real servers, checker kinds and VIPs per instance.

use keepalived_conf::model::KeepalivedConfig;
use keepalived_conf::{ParseOptions, parse_file};

fn summary(c: &KeepalivedConfig) -> String {
    let rs: Vec<usize> = c
        .virtual_servers
        .iter()
        .map(|v| v.real_servers.len())
        .collect();
    let checkers: Vec<String> = c
        .virtual_servers
        .iter()
        .flat_map(|v| v.real_servers.iter())
        .flat_map(|r| r.checkers.iter().map(|k| k.kind.keyword().to_string()))
        .collect();
    let vips: Vec<String> = c
        .vrrp_instances
        .iter()
        .map(|v| format!("{}={}", v.name, v.virtual_ipaddresses.len()))
        .collect();
    format!(
        "vs={} rs={:?} checkers={:?} vrrp=[{}] scripts={} sync={} vsg={} static_ip={} static_routes={} static_rules={}",
        c.virtual_servers.len(),
        rs,
        checkers,
        vips.join(" "),
        c.vrrp_scripts.len(),
        c.sync_groups.len(),
        c.virtual_server_groups.len(),
        c.static_ipaddresses.len(),
        c.static_routes.len(),
        c.static_rules.len()
    )
}

fn main() {
    let opts = ParseOptions::with_config_id("summary");
    for f in std::env::args().skip(1) {
        match parse_file(std::path::Path::new(&f), &opts) {
            Ok(p) => println!("{f}: {}", summary(&p.config)),
            Err(e) => println!("{f}: error {e}"),
        }
    }
}
