//! Top-level keywords.

use super::Parser;
use crate::diag::Diagnostics;
use crate::lexer::Line;
use crate::model::KeepalivedConfig;

/// Parses logical lines into the typed configuration.
pub fn parse_lines(lines: &[Line], diags: &mut Diagnostics) -> KeepalivedConfig {
    let mut p = Parser::new(lines, diags);
    p.run_block(false, &mut |p: &mut Parser<'_>, l: &Line| top_keyword(p, l));
    let mut config = std::mem::take(&mut p.config);
    super::lvs::finalize(&mut config);
    super::route_bridge::check(&config, p.diags);
    config
}

fn top_keyword<'a>(p: &mut Parser<'a>, l: &'a Line) -> bool {
    match l.first() {
        "global_defs" => p.global_defs(l),
        "SSL" => p.ssl_block(l),
        "static_ipaddress" => {
            let items = p.value_block(l);
            for it in items {
                if let Some(a) = p.ip_address_entry(it, "static") {
                    p.config.static_ipaddresses.push(a);
                }
            }
        }
        "static_routes" => {
            let items = p.value_block(l);
            for it in items {
                if let Some(r) = p.route_entry(it) {
                    p.config.static_routes.push(r);
                }
            }
        }
        "static_rules" => {
            let items = p.value_block(l);
            for it in items {
                if let Some(r) = p.rule_entry(it) {
                    p.config.static_rules.push(r);
                }
            }
        }
        "linkbeat_interfaces" => {
            let words = p.value_words(l);
            p.config.linkbeat_interfaces.extend(words);
        }
        "interface_up_down_delays" => p.up_down_delays(l),
        "track_group" => p.track_group(l),
        "vrrp_script" => p.vrrp_script(l),
        "vrrp_track_process" => p.track_process(l),
        "track_file" | "vrrp_track_file" => p.track_file(l),
        "vrrp_sync_group" => p.sync_group(l),
        "garp_group" => p.garp_group(l),
        "vrrp_instance" => p.vrrp_instance(l),
        "bfd_instance" => p.bfd_instance(l),
        "virtual_server_group" => p.virtual_server_group(l),
        "virtual_server" => p.virtual_server(l),
        "local_address_group" => {
            if let Some(g) = p.address_group(l) {
                p.config.local_address_groups.push(g);
            }
        }
        "deny_address_group" | "blacklist_address_group" => {
            if let Some(g) = p.address_group(l) {
                p.config.deny_address_groups.push(g);
            }
        }
        "allow_address_group" | "whitelist_address_group" => {
            if let Some(g) = p.address_group(l) {
                p.config.allow_address_groups.push(g);
            }
        }
        "tunnel_group" => p.tunnel_group(l),
        // xlvs extension: VIP announcement through a routing daemon.
        "route_bridge" => p.route_bridge(l),
        "net_namespace" => p.config.top_level.net_namespace = p.read_string(l, 1),
        "net_namespace_ipvs" => p.config.top_level.net_namespace_ipvs = p.read_string(l, 1),
        "namespace_with_ipsets" => p.config.top_level.namespace_with_ipsets = true,
        "use_pid_dir" => p.config.top_level.use_pid_dir = true,
        "instance" => p.config.top_level.instance = p.read_string(l, 1),
        "child_wait_time" => {
            p.config.top_level.child_wait_time = p.read_u32(l, 1, 0, u32::MAX);
        }
        "linkbeat_use_polling" => p.config.top_level.linkbeat_use_polling = true,
        _ => return false,
    }
    true
}
