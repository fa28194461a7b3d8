//! `vrrp_strict` against keepalived 2.2.7 in the same scenarios: what strict mode turns off
//! (authentication), what it implies (no_accept: traffic to the VIP dropped by the master),
//! and what 2.2.7 does not refuse although its man page says so (unicast peers). Needs root;
//! skips with a printed reason otherwise.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use common::*;

fn strict_conf(pair: &Pair, me: &Side, peer: &Side, prio: u8, extra: &str) -> String {
    config_text(pair, me, peer, &NodeConf::new(prio, 3, "0.1"))
        .replace(
            " vrrp_version 3\n",
            " vrrp_version 3\n vrrp_strict\n vrrp_garp_master_delay 0\n",
        )
        .replace(" advert_int 0.1\n", &format!(" advert_int 0.1\n{extra}"))
}

fn other(i: Impl) -> Impl {
    match i {
        Impl::Ours => Impl::Keepalived,
        Impl::Keepalived => Impl::Ours,
    }
}

/// Whether a TCP connection from `from` to the VIP on port 8081 succeeds.
fn vip_reachable(from: &Side, vip: &str) -> bool {
    let addr = SocketAddr::new(vip.parse().unwrap(), 8081);
    from.ns
        .run_in(move || TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok())
        .join()
        .ok()
        .and_then(|r| r.ok())
        .unwrap_or(false)
}

/// A strict master (with an `authentication` block strict mode ignores, so the peer without
/// one accepts its adverts) holds the VIP and drops traffic to it, as `no_accept` does;
/// the same master without strict mode answers.
fn strict_master(master: Impl, net: u8) {
    let pair = Pair::new(net, false).expect("namespaces");
    let listener = pair
        .a
        .ns
        .run_in(|| TcpListener::bind("0.0.0.0:8081"))
        .join()
        .unwrap()
        .unwrap()
        .expect("listener");
    let auth = " authentication {\n  auth_type PASS\n  auth_pass ignored1\n }\n";
    let backup_text = strict_conf(&pair, &pair.b, &pair.a, 100, "");
    let _backup =
        Node::start_text(other(master), &pair, &pair.b, &backup_text, "backup").expect("backup");
    let master_text = strict_conf(&pair, &pair.a, &pair.b, 150, auth);
    let mut m = Node::start_text(master, &pair, &pair.a, &master_text, "master").expect("master");
    converge_on(
        &pair,
        &pair.a,
        &pair.b,
        Duration::from_secs(4),
        Duration::from_millis(800),
    )
    .unwrap_or_else(|e| panic!("{master:?} strict master: {e:#}\n{}", m.log_text()));
    assert!(
        !vip_reachable(&pair.b, &pair.vip()),
        "{master:?}: a strict master must not accept traffic to its VIP\n{}",
        m.log_text()
    );
    m.stop().expect("stop");
    converge_on(
        &pair,
        &pair.b,
        &pair.a,
        Duration::from_secs(3),
        Duration::from_millis(300),
    )
    .expect("takeover");
    // The same without strict mode: the master answers on its VIP.
    let plain = master_text.replace(" vrrp_strict\n", "");
    let mut m = Node::start_text(master, &pair, &pair.a, &plain, "plain").expect("plain master");
    converge_on(
        &pair,
        &pair.a,
        &pair.b,
        Duration::from_secs(4),
        Duration::from_millis(300),
    )
    .unwrap_or_else(|e| panic!("{master:?} plain master: {e:#}\n{}", m.log_text()));
    assert!(
        vip_reachable(&pair.b, &pair.vip()),
        "{master:?}: accept is the default without strict mode\n{}",
        m.log_text()
    );
    m.stop().expect("stop");
    drop(listener);
}

/// keepalived 2.2.7 runs a strict instance with unicast peers (its refusal looks at the
/// interface before it knows it): alone on its link it becomes master, and still drops
/// traffic to the VIP.
fn strict_unicast_runs(which: Impl, net: u8) {
    let pair = Pair::new(net, false).expect("namespaces");
    let _listener = pair
        .a
        .ns
        .run_in(|| TcpListener::bind("0.0.0.0:8081"))
        .join()
        .unwrap()
        .unwrap()
        .expect("listener");
    let mut c = NodeConf::new(150, 3, "0.1");
    c.unicast = true;
    let text = config_text(&pair, &pair.a, &pair.b, &c)
        .replace(" vrrp_version 3\n", " vrrp_version 3\n vrrp_strict\n");
    let n = Node::start_text(which, &pair, &pair.a, &text, "uni").expect("start");
    wait_until(Duration::from_secs(3), || has_vip(&pair.a.ns, &pair.vip()))
        .unwrap_or_else(|e| panic!("{which:?}: {e:#}\n{}", n.log_text()));
    assert!(
        !vip_reachable(&pair.b, &pair.vip()),
        "{which:?}\n{}",
        n.log_text()
    );
}

#[test]
fn strict_master_ours() {
    skip_unless_ready!();
    strict_master(Impl::Ours, 81);
}

#[test]
fn strict_master_keepalived() {
    skip_unless_ready!();
    strict_master(Impl::Keepalived, 82);
}

#[test]
fn strict_unicast_runs_ours() {
    skip_unless_ready!();
    strict_unicast_runs(Impl::Ours, 83);
}

#[test]
fn strict_unicast_runs_keepalived() {
    skip_unless_ready!();
    strict_unicast_runs(Impl::Keepalived, 84);
}
