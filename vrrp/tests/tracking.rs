//! Tracking against a keepalived 2.2.7 peer: a failing track_script / a track_file value /
//! a tracked interface going down lowers our priority or puts us in FAULT, the peer takes the
//! VIP; recovery brings it back (preemption). Sync groups move together.

mod common;

use std::time::Duration;

use common::*;

const GLOBAL: &str = "global_defs {\n router_id t\n vrrp_version 3\n vrrp_garp_master_delay 0\n \
                      vrrp_garp_master_repeat 1\n script_user root\n}\n";

fn instance(name: &str, vrid: u8, prio: u8, vip: &str, extra: &str) -> String {
    format!(
        "vrrp_instance {name} {{\n state BACKUP\n interface IFACE\n virtual_router_id {vrid}\n \
         priority {prio}\n advert_int 0.1\n{extra}\n virtual_ipaddress {{\n  {vip}/32 dev IFACE\n }}\n}}\n"
    )
}

/// Ours on side a with `ours_conf`, keepalived on side b with instances at priority 100.
fn start(pair: &Pair, ours_conf: &str, peer_conf: &str) -> (Node, Node) {
    let k = Node::start_text(
        Impl::Keepalived,
        pair,
        &pair.b,
        &peer_conf.replace("IFACE", "vb"),
        "k",
    )
    .expect("keepalived");
    let o = Node::start_text(
        Impl::Ours,
        pair,
        &pair.a,
        &ours_conf.replace("IFACE", "va"),
        "o",
    )
    .expect("ours");
    (o, k)
}

fn on_a(pair: &Pair, vip: &str, o: &Node) {
    wait_until(Duration::from_secs(5), || {
        has_vip(&pair.a.ns, vip) && !has_vip(&pair.b.ns, vip)
    })
    .unwrap_or_else(|e| panic!("{vip} not on ours: {e}\n{}", o.log_text()));
}

fn on_b(pair: &Pair, vip: &str, o: &Node) {
    wait_until(Duration::from_secs(5), || {
        has_vip(&pair.b.ns, vip) && !has_vip(&pair.a.ns, vip)
    })
    .unwrap_or_else(|e| panic!("{vip} not on keepalived: {e}\n{}", o.log_text()));
}

#[test]
fn track_script_weight_moves_the_vip() {
    skip_unless_ready!();
    let pair = Pair::new(90, false).expect("namespaces");
    let flag = pair.dir.join("healthy");
    std::fs::write(&flag, "").unwrap();
    let vip = pair.vip();
    let ours = format!(
        "{GLOBAL}vrrp_script chk {{\n script \"/usr/bin/test -e {}\"\n interval 1\n weight -60\n \
         fall 1\n rise 1\n}}\n{}",
        flag.display(),
        instance("VI_T", 51, 150, &vip, " track_script {\n  chk\n }")
    );
    let peer = format!("{GLOBAL}{}", instance("VI_T", 51, 100, &vip, ""));
    let (o, _k) = start(&pair, &ours, &peer);
    on_a(&pair, &vip, &o);
    std::fs::remove_file(&flag).unwrap();
    on_b(&pair, &vip, &o); // 150 - 60 = 90 < 100
    std::fs::write(&flag, "").unwrap();
    on_a(&pair, &vip, &o);
}

#[test]
fn track_file_value_times_weight() {
    skip_unless_ready!();
    let pair = Pair::new(91, false).expect("namespaces");
    let file = pair.dir.join("value");
    std::fs::write(&file, "0\n").unwrap();
    let vip = pair.vip();
    let ours = format!(
        "{GLOBAL}track_file tf {{\n file {}\n weight -10\n}}\n{}",
        file.display(),
        instance("VI_T", 51, 150, &vip, " track_file {\n  tf\n }")
    );
    let peer = format!("{GLOBAL}{}", instance("VI_T", 51, 100, &vip, ""));
    let (o, _k) = start(&pair, &ours, &peer);
    on_a(&pair, &vip, &o);
    std::fs::write(&file, "6\n").unwrap(); // 150 - 60
    on_b(&pair, &vip, &o);
    std::fs::write(&file, "0\n").unwrap();
    on_a(&pair, &vip, &o);
}

/// A second veth pair inside our namespace: taking t1 down drops t0's carrier.
fn tracked_link(pair: &Pair) {
    pair.a
        .ns
        .ip(&["link", "add", "t0", "type", "veth", "peer", "name", "t1"])
        .unwrap();
    pair.a.ns.ip(&["link", "set", "t0", "up"]).unwrap();
    pair.a.ns.ip(&["link", "set", "t1", "up"]).unwrap();
}

#[test]
fn track_interface_fault_and_recovery() {
    skip_unless_ready!();
    let pair = Pair::new(92, false).expect("namespaces");
    tracked_link(&pair);
    let vip = pair.vip();
    let ours = format!(
        "{GLOBAL}{}",
        instance("VI_T", 51, 150, &vip, " track_interface {\n  t0\n }")
    );
    let peer = format!("{GLOBAL}{}", instance("VI_T", 51, 100, &vip, ""));
    let (o, _k) = start(&pair, &ours, &peer);
    on_a(&pair, &vip, &o);
    pair.a.ns.ip(&["link", "set", "t1", "down"]).unwrap();
    on_b(&pair, &vip, &o);
    assert!(
        o.log_text().contains("Entering FAULT STATE"),
        "{}",
        o.log_text()
    );
    pair.a.ns.ip(&["link", "set", "t1", "up"]).unwrap();
    on_a(&pair, &vip, &o);
}

#[test]
fn sync_group_members_move_together() {
    skip_unless_ready!();
    let pair = Pair::new(93, false).expect("namespaces");
    tracked_link(&pair);
    let (v1, v2) = ("198.18.93.100", "198.18.93.101");
    let ours = format!(
        "{GLOBAL}vrrp_sync_group G {{\n group {{\n  VI_1\n  VI_2\n }}\n}}\n{}{}",
        instance("VI_1", 51, 150, v1, " track_interface {\n  t0\n }"),
        instance("VI_2", 52, 150, v2, "")
    );
    let peer = format!(
        "{GLOBAL}{}{}",
        instance("VI_1", 51, 100, v1, ""),
        instance("VI_2", 52, 100, v2, "")
    );
    let (o, _k) = start(&pair, &ours, &peer);
    on_a(&pair, v1, &o);
    on_a(&pair, v2, &o);
    // Only VI_1 tracks t0, but VI_2 follows it into FAULT.
    pair.a.ns.ip(&["link", "set", "t1", "down"]).unwrap();
    on_b(&pair, v1, &o);
    on_b(&pair, v2, &o);
    pair.a.ns.ip(&["link", "set", "t1", "up"]).unwrap();
    on_a(&pair, v1, &o);
    on_a(&pair, v2, &o);
}

/// A sync group whose member VI_2 hears a higher-priority master does not let VI_1 (whose
/// peer instance does not exist) go MASTER alone; keepalived behaves the same.
fn group_held_back(group_impl: Impl, net: u8) {
    let pair = Pair::new(net, false).expect("namespaces");
    let (v1, v2) = (format!("198.18.{net}.100"), format!("198.18.{net}.101"));
    let group = format!(
        "{GLOBAL}vrrp_sync_group G {{\n group {{\n  VI_1\n  VI_2\n }}\n}}\n{}{}",
        instance("VI_1", 51, 100, &v1, ""),
        instance("VI_2", 52, 100, &v2, "")
    )
    .replace("IFACE", "va");
    let peer = format!("{GLOBAL}{}", instance("VI_2", 52, 150, &v2, "")).replace("IFACE", "vb");
    let _k = Node::start_text(Impl::Keepalived, &pair, &pair.b, &peer, "peer").expect("peer");
    wait_until(Duration::from_secs(3), || has_vip(&pair.b.ns, &v2)).expect("peer master");
    let g = Node::start_text(group_impl, &pair, &pair.a, &group, "group").expect("group");
    let t0 = std::time::Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        assert!(
            !has_vip(&pair.a.ns, &v1) && !has_vip(&pair.a.ns, &v2),
            "{group_impl:?}: a group member went MASTER alone\n{}",
            g.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sync_group_held_back_ours() {
    skip_unless_ready!();
    group_held_back(Impl::Ours, 97);
}

#[test]
fn sync_group_held_back_keepalived() {
    skip_unless_ready!();
    group_held_back(Impl::Keepalived, 98);
}
