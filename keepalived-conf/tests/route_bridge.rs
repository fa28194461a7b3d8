//! The xlvs `route_bridge` block: what it reads into the model, its defaults, and the messages
//! (with file and line) for bad input, as `keepalived -t` prints them.

use keepalived_conf::model::*;
use keepalived_conf::{ParseOptions, Parsed, Severity, parse_str};
use std::net::IpAddr;

fn parse(text: &str) -> Parsed {
    parse_str(text, "rb.conf", &ParseOptions::with_config_id("h"))
}

fn messages(p: &Parsed) -> Vec<String> {
    p.diagnostics
        .items
        .iter()
        .filter(|d| d.severity >= Severity::Warning)
        .map(|d| d.keepalived_format())
        .collect()
}

const SERVERS: &str = r#"
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        198.18.99.2/32
    }
}
virtual_server 198.18.99.1 80 {
    lb_algo mh
    lb_kind DR
    protocol TCP
    real_server 198.18.30.21 80 {
        weight 1
    }
}
virtual_server 198.18.99.2 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 198.18.30.21 80 {
        weight 1
    }
}
"#;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn the_documented_block_reads_with_its_defaults() {
    let p = parse(&format!(
        "{SERVERS}
route_bridge {{
    daemon bird            # bird (default) | frr | quagga
    local_as 65101
    router_id 198.18.30.11
    neighbor 198.18.30.1 remote_as 65000
    bfd on
}}
"
    ));
    assert_eq!(messages(&p), Vec::<String>::new());
    let rb = p.config.route_bridge.expect("route_bridge");
    assert_eq!(rb.daemon, Some(RoutingDaemon::Bird));
    assert_eq!(rb.local_as, Some(65101));
    assert_eq!(rb.router_id, Some("198.18.30.11".parse().unwrap()));
    assert_eq!(rb.neighbors.len(), 1);
    assert_eq!(
        (rb.neighbors[0].address, rb.neighbors[0].remote_as),
        (ip("198.18.30.1"), Some(65000))
    );
    assert!(rb.bfd);
    assert_eq!(rb.span.line, 26);
    // Defaults.
    assert_eq!(rb.instance, DaemonInstance::Auto);
    assert_eq!((rb.bfd_interval, rb.bfd_multiplier), (300, 3));
    assert_eq!((rb.rise, rb.fall, rb.interval), (1, 1, 1.0));
    assert_eq!(rb.restart_grace, 5.0);
    assert!(rb.degraded.is_none() && rb.draining.is_none());
}

#[test]
fn every_keyword_reads() {
    let p = parse(&format!(
        "{SERVERS}
route_bridge {{
    daemon frr
    instance own
    control_socket /run/frr-x
    local_as 65101
    router_id 198.18.30.11
    neighbor 198.18.30.1 remote_as 65000 bfd off port 1179 multihop 2 password s3 source 198.18.30.11
    neighbor 2001:db8::1 remote_as 65000
    bfd on
    bfd_interval 50
    bfd_multiplier 3
    hold_time 3
    keepalive 1
    connect_retry 1
    device xlvsvips
    rise 2
    fall 3
    interval 0.5
    debounce 4
    maintenance_file /run/xlvs/drain
    drain_timeout 30
    restart_grace 8
    withdraw_delay 0.2
    degraded_below 50
    healthy {{
        med 100
        community 65000:100 65000:1:2
    }}
    degraded {{
        med 1000
        prepend 3
    }}
    draining {{
        med 2000
        local_pref 50
    }}
    vip 198.18.99.1 {{
        med 50
        degraded {{
            med 60
        }}
    }}
    vip 198.18.99.2 {{
        ecmp
    }}
    exclude 198.18.99.1 80 TCP
    ospf {{
        area 0
        interface eth0 cost 10 hello 1 dead 4 type ptp
    }}
}}
"
    ));
    assert_eq!(messages(&p), Vec::<String>::new());
    let rb = p.config.route_bridge.unwrap();
    assert_eq!(rb.daemon, Some(RoutingDaemon::Frr));
    assert_eq!(rb.instance, DaemonInstance::Own);
    assert_eq!(rb.control_socket.as_deref(), Some("/run/frr-x"));
    let n = &rb.neighbors[0];
    assert_eq!(
        (n.bfd, n.port, n.multihop, n.password.as_deref(), n.source),
        (
            Some(false),
            Some(1179),
            Some(2),
            Some("s3"),
            Some(ip("198.18.30.11"))
        )
    );
    assert_eq!(rb.neighbors[1].address, ip("2001:db8::1"));
    assert_eq!((rb.bfd_interval, rb.hold_time, rb.keepalive), (50, 3, 1));
    assert_eq!(rb.device.as_deref(), Some("xlvsvips"));
    assert_eq!(
        (rb.rise, rb.fall, rb.interval, rb.debounce),
        (2, 3, 0.5, 4.0)
    );
    assert_eq!(rb.degraded_below, Some(50));
    assert_eq!(rb.healthy.med, Some(100));
    assert_eq!(rb.healthy.communities, ["65000:100", "65000:1:2"]);
    assert_eq!(rb.degraded.as_ref().unwrap().prepend, 3);
    assert_eq!(rb.draining.as_ref().unwrap().local_pref, Some(50));
    let v1 = rb.vip(ip("198.18.99.1")).unwrap();
    assert_eq!(v1.healthy.med, Some(50));
    assert_eq!(v1.degraded.as_ref().unwrap().med, Some(60));
    assert_eq!(rb.vip(ip("198.18.99.2")).unwrap().gate, VipGate::Ecmp);
    assert!(matches!(
        rb.excludes[0],
        Exclude::Server {
            port: 80,
            protocol: Some(Protocol::Tcp),
            ..
        }
    ));
    let ospf = rb.ospf.unwrap();
    assert_eq!(ospf.area, "0.0.0.0".parse::<std::net::Ipv4Addr>().unwrap());
    assert_eq!(ospf.interfaces[0].cost, Some(10));
    assert!(ospf.interfaces[0].point_to_point);
}

#[test]
fn bad_input_is_reported_with_its_line() {
    let p = parse(&format!(
        "{SERVERS}
route_bridge {{
    daemon gated
    neighbor 198.18.30.1
    neighbor 198.18.30.2 remote_as 65000 colour blue
    local_as 0
    router_id 2001:db8::1
    healthy {{
        community 65536:1 no-such
    }}
    device a-name-far-too-long
    vip 198.18.99.9 {{
        vrrp VI_NOPE
    }}
    exclude 198.18.99.1 443
    bogus_keyword 1
}}
"
    ));
    let m = messages(&p);
    let expected = [
        "(rb.conf: Line 27) route_bridge: unknown daemon 'gated' - expected bird, frr or quagga",
        "(rb.conf: Line 28) route_bridge: neighbor 198.18.30.1 has no remote_as - ignoring it",
        "(rb.conf: Line 29) route_bridge: unknown neighbor option 'colour' (remote_as, bfd, port, multihop, password, source)",
        "(rb.conf: Line 30) number '0' outside range [1, 4294967295]",
        "(rb.conf: Line 31) route_bridge: router_id must be an IPv4 address, not 2001:db8::1",
        "(rb.conf: Line 33) route_bridge: community '65536:1' is not ASN:VALUE (16 bits each) or a large community A:B:C",
        "(rb.conf: Line 33) route_bridge: community 'no-such' is not ASN:VALUE (16 bits each) or a large community A:B:C",
        "(rb.conf: Line 35) route_bridge: device name 'a-name-far-too-long' is not a valid interface name (at most 15 characters)",
        "(rb.conf: Line 39) route_bridge: exclude 198.18.99.1 443: no such virtual_server",
        "(rb.conf: Line 40) Unknown keyword 'bogus_keyword'",
        "(rb.conf: Line 36) route_bridge: vip 198.18.99.9 is the address of no virtual_server",
        "(rb.conf: Line 36) route_bridge: vip 198.18.99.9 names vrrp_instance VI_NOPE, which does not exist",
    ];
    for e in expected {
        assert!(m.contains(&e.to_string()), "missing {e:?} in {m:#?}");
    }
    let rb = p.config.route_bridge.unwrap();
    assert_eq!(rb.daemon, None, "an unknown daemon leaves none");
    assert!(rb.neighbors.is_empty());
}

#[test]
fn a_second_block_is_refused() {
    let p = parse(&format!(
        "{SERVERS}
route_bridge {{
    local_as 1
}}
route_bridge {{
    local_as 2
}}
"
    ));
    assert!(
        messages(&p).contains(
            &"(rb.conf: Line 29) route_bridge: only one route_bridge block is allowed - ignoring this one"
                .to_string()
        ),
        "{:?}",
        messages(&p)
    );
    assert_eq!(p.config.route_bridge.unwrap().local_as, Some(1));
}

#[test]
fn no_route_bridge_no_key_in_the_json_dump() {
    let p = parse(SERVERS);
    assert!(p.config.route_bridge.is_none());
    assert!(!keepalived_conf::dump::to_json(&p.config).contains("route_bridge"));
}
