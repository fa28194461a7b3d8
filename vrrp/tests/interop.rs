//! Interop with Debian's keepalived 2.2.7 in network namespaces: elections, graceful and crash
//! failover, preemption, nopreempt, and the VIP on exactly one node at every poll once converged.
//! Needs root; skips with a printed reason otherwise.

mod common;

use std::time::Duration;

use common::*;

struct Case {
    master: Impl,
    version: u8,
    advert_int: &'static str,
    unicast: bool,
    v6: bool,
    /// "", "PASS" or "AH".
    auth: &'static str,
    net: u8,
    vmac: bool,
}

fn other(i: Impl) -> Impl {
    match i {
        Impl::Ours => Impl::Keepalived,
        Impl::Keepalived => Impl::Ours,
    }
}

/// Master (prio 150, side a) and backup (prio 100, side b) of different implementations:
/// election, graceful stop → backup takes over, restart → preemption, crash → backup takes over.
fn failover(c: Case) {
    let pair = Pair::new(c.net, c.v6).expect("namespaces");
    let down = if c.advert_int == "1" {
        Duration::from_secs(6)
    } else {
        Duration::from_secs(2)
    };
    let conf = |prio| {
        let mut n = NodeConf::new(prio, c.version, c.advert_int);
        n.unicast = c.unicast;
        n.auth = (!c.auth.is_empty()).then(|| (c.auth, "s3cret-pw".to_string()));
        n.vmac = c.vmac;
        n
    };
    let backup_impl = other(c.master);
    let _backup =
        Node::start(backup_impl, &pair, &pair.b, &pair.a, &conf(100), "backup").expect("backup");
    let mut master =
        Node::start(c.master, &pair, &pair.a, &pair.b, &conf(150), "master").expect("master");
    let hold = Duration::from_millis(1500);
    converge_on(&pair, &pair.a, &pair.b, down * 2, hold)
        .unwrap_or_else(|e| panic!("election: {e:#}\n{}", master.log_text()));

    // Graceful stop: priority 0 advert, the backup takes over after its skew time.
    master.stop().expect("stop master");
    converge_on(
        &pair,
        &pair.b,
        &pair.a,
        Duration::from_secs(3),
        Duration::from_millis(500),
    )
    .expect("takeover after graceful stop");

    // Restart with the higher priority: it preempts.
    let mut master =
        Node::start(c.master, &pair, &pair.a, &pair.b, &conf(150), "master2").expect("restart");
    converge_on(&pair, &pair.a, &pair.b, down * 2, hold)
        .unwrap_or_else(|e| panic!("preemption: {e:#}\n{}", master.log_text()));

    // Crash: no priority 0, the backup waits for the master down timer.
    master.kill().expect("kill master");
    wait_until(down, || has_vip(&pair.b.ns, &pair.vip())).expect("takeover after crash");
}

macro_rules! case {
    ($name:ident, $master:expr, $ver:expr, $int:expr, $uni:expr, $v6:expr, $auth:expr, $net:expr) => {
        case!($name, $master, $ver, $int, $uni, $v6, $auth, $net, false);
    };
    ($name:ident, $master:expr, $ver:expr, $int:expr, $uni:expr, $v6:expr, $auth:expr, $net:expr, $vmac:expr) => {
        #[test]
        fn $name() {
            skip_unless_ready!();
            failover(Case {
                master: $master,
                version: $ver,
                advert_int: $int,
                unicast: $uni,
                v6: $v6,
                auth: $auth,
                net: $net,
                vmac: $vmac,
            });
        }
    };
}

case!(
    v2_multicast_ours_master,
    Impl::Ours,
    2,
    "1",
    false,
    false,
    "",
    61
);
case!(
    v2_multicast_keepalived_master,
    Impl::Keepalived,
    2,
    "1",
    false,
    false,
    "",
    62
);
case!(
    v3_multicast_ours_master,
    Impl::Ours,
    3,
    "0.1",
    false,
    false,
    "",
    63
);
case!(
    v3_multicast_keepalived_master,
    Impl::Keepalived,
    3,
    "0.1",
    false,
    false,
    "",
    64
);
case!(
    v2_unicast_ours_master,
    Impl::Ours,
    2,
    "1",
    true,
    false,
    "",
    65
);
case!(
    v2_unicast_keepalived_master,
    Impl::Keepalived,
    2,
    "1",
    true,
    false,
    "",
    66
);
case!(
    v3_unicast_ours_master,
    Impl::Ours,
    3,
    "0.1",
    true,
    false,
    "",
    67
);
case!(
    v3_unicast_keepalived_master,
    Impl::Keepalived,
    3,
    "0.1",
    true,
    false,
    "",
    68
);
case!(
    v3_ipv6_ours_master,
    Impl::Ours,
    3,
    "0.1",
    false,
    true,
    "",
    69
);
case!(
    v3_ipv6_keepalived_master,
    Impl::Keepalived,
    3,
    "0.1",
    false,
    true,
    "",
    70
);
case!(
    v2_auth_pass_ours_master,
    Impl::Ours,
    2,
    "1",
    false,
    false,
    "PASS",
    71
);
case!(
    v2_auth_pass_keepalived_master,
    Impl::Keepalived,
    2,
    "1",
    false,
    false,
    "PASS",
    72
);

/// A higher-priority node with `nopreempt` joining an established master stays backup; it
/// takes over only when the master goes away.
fn nopreempt(nopreempt_impl: Impl, net: u8) {
    let pair = Pair::new(net, false).expect("namespaces");
    let low = NodeConf::new(100, 3, "0.1");
    let mut master =
        Node::start(other(nopreempt_impl), &pair, &pair.a, &pair.b, &low, "low").expect("low");
    converge_on(
        &pair,
        &pair.a,
        &pair.b,
        Duration::from_secs(3),
        Duration::from_millis(200),
    )
    .expect("low-priority node alone is master");
    let mut high = NodeConf::new(200, 3, "0.1");
    high.nopreempt = true;
    let h = Node::start(nopreempt_impl, &pair, &pair.b, &pair.a, &high, "high").expect("high");
    // Many master-down intervals (0.3 s) pass: the VIP never moves.
    converge_on(
        &pair,
        &pair.a,
        &pair.b,
        Duration::from_secs(1),
        Duration::from_secs(3),
    )
    .unwrap_or_else(|e| panic!("nopreempt not respected: {e:#}\n{}", h.log_text()));
    master.stop().expect("stop");
    converge_on(
        &pair,
        &pair.b,
        &pair.a,
        Duration::from_secs(2),
        Duration::from_millis(300),
    )
    .expect("takeover when the master leaves");
}

#[test]
fn nopreempt_ours() {
    skip_unless_ready!();
    nopreempt(Impl::Ours, 73);
}

#[test]
fn nopreempt_keepalived() {
    skip_unless_ready!();
    nopreempt(Impl::Keepalived, 74);
}
case!(
    v3_ipv6_unicast_ours_master,
    Impl::Ours,
    3,
    "0.1",
    true,
    true,
    "",
    77
);
case!(
    v3_ipv6_unicast_keepalived_master,
    Impl::Keepalived,
    3,
    "0.1",
    true,
    true,
    "",
    78
);
case!(
    v3_vmac_ours_master,
    Impl::Ours,
    3,
    "0.1",
    false,
    false,
    "",
    100,
    true
);
case!(
    v3_vmac_keepalived_master,
    Impl::Keepalived,
    3,
    "0.1",
    false,
    false,
    "",
    101,
    true
);
case!(
    v2_auth_ah_ours_master,
    Impl::Ours,
    2,
    "1",
    false,
    false,
    "AH",
    79
);
case!(
    v2_auth_ah_unicast_keepalived_master,
    Impl::Keepalived,
    2,
    "1",
    true,
    false,
    "AH",
    80
);
