//! static_ipaddress / static_routes / static_rules, side by side with keepalived 2.2.7 in the
//! same scenario: installed at start, only the differences applied on a reload (an entry in
//! both configurations stays), removed at stop — and a static address someone deletes is put
//! back. Needs root; skips with a printed reason otherwise.

mod common;

use std::time::Duration;

use common::*;

/// Addresses, routes (table 100 and main) and rules of namespace `a` that the test set.
fn snapshot(pair: &Pair) -> Vec<String> {
    let mut out = Vec::new();
    let run = |args: &[&str]| {
        pair.a
            .ns
            .ip(args)
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default()
    };
    for l in run(&["-o", "-4", "addr", "show", "dev", "va"]).lines() {
        if let Some(a) = l
            .split_whitespace()
            .nth(3)
            .filter(|a| a.contains("198.18.200.2"))
        {
            out.push(format!("addr {a}"));
        }
    }
    for t in ["100", "main"] {
        for l in run(&["-4", "route", "show", "table", t]).lines() {
            if l.contains("198.18.21") || l.contains("198.18.22") {
                out.push(format!("route {t} {}", l.trim()));
            }
        }
    }
    for l in run(&["-4", "rule", "show"]).lines() {
        if l.contains("lookup 100") || l.contains("lookup 101") {
            out.push(format!("rule {}", l.trim()));
        }
    }
    out.sort();
    out
}

fn conf(net: u8, statics: &str) -> String {
    format!(
        "global_defs {{\n router_id statics\n}}\n{statics}\
         vrrp_instance VI_S {{\n interface va\n virtual_router_id 41\n priority 100\n \
         advert_int 1\n virtual_ipaddress {{\n  198.18.{net}.99/32 dev va\n }}\n}}\n"
    )
}

/// (start, after a deleted address came back, after reload, after stop) snapshots.
fn scenario(which: Impl, net: u8) -> [Vec<String>; 4] {
    let pair = Pair::new(net, false).expect("namespaces");
    // Addresses live in 198.18.200.0/24 so the snapshot filter finds them.
    pair.a
        .ns
        .ip(&["addr", "add", "198.18.200.1/24", "dev", "va"])
        .expect("address");
    let a = |n: u8| format!("198.18.200.{n}");
    let start_text = conf(
        net,
        &format!(
            "static_ipaddress {{\n {}/24 dev va\n {}/24 dev va\n}}\n\
             static_routes {{\n 198.18.21.0/24 via 198.18.200.254 dev va table 100\n \
             blackhole 198.18.22.0/24\n}}\n\
             static_rules {{\n from {}/32 table 100 preference 100\n}}\n",
            a(201),
            a(202),
            a(201)
        ),
    );
    let reload_text = conf(
        net,
        &format!(
            "static_ipaddress {{\n {}/24 dev va\n {}/24 dev va\n}}\n\
             static_routes {{\n 198.18.21.0/24 via 198.18.200.254 dev va table 100\n}}\n\
             static_rules {{\n from {}/32 table 101 preference 101\n}}\n",
            a(201),
            a(203),
            a(203)
        ),
    );
    let n = Node::start_text(which, &pair, &pair.a, &start_text, "static").expect("start");
    let mut snaps: Vec<Vec<String>> = Vec::new();
    wait_until(Duration::from_secs(5), || snapshot(&pair).len() >= 5).unwrap_or_else(|e| {
        panic!(
            "{which:?} start: {e:#} {:?}\n{}",
            snapshot(&pair),
            n.log_text()
        )
    });
    snaps.push(snapshot(&pair));
    // Someone deletes a static address: it comes back.
    pair.a
        .ns
        .ip(&["addr", "del", &format!("{}/24", a(202)), "dev", "va"])
        .expect("del");
    wait_until(Duration::from_secs(5), || {
        snapshot(&pair).contains(&format!("addr {}/24", a(202)))
    })
    .unwrap_or_else(|e| panic!("{which:?} did not reinstate: {e:#}\n{}", n.log_text()));
    snaps.push(snapshot(&pair));
    n.reload(&reload_text).expect("reload");
    let want = format!("addr {}/24", a(203));
    wait_until(Duration::from_secs(5), || {
        let s = snapshot(&pair);
        s.contains(&want) && !s.iter().any(|l| l.contains("blackhole"))
    })
    .unwrap_or_else(|e| {
        panic!(
            "{which:?} reload: {e:#} {:?}\n{}",
            snapshot(&pair),
            n.log_text()
        )
    });
    std::thread::sleep(Duration::from_millis(500));
    snaps.push(snapshot(&pair));
    let mut n = n;
    n.stop().expect("stop");
    snaps.push(snapshot(&pair));
    [
        snaps[0].clone(),
        snaps[1].clone(),
        snaps[2].clone(),
        snaps[3].clone(),
    ]
}

#[test]
fn static_entries_like_keepalived() {
    skip_unless_ready!();
    let theirs = scenario(Impl::Keepalived, 91);
    let ours = scenario(Impl::Ours, 92);
    let [start, _, reloaded, stopped] = &ours;
    assert!(
        start.contains(&"addr 198.18.200.201/24".to_string()),
        "{start:?}"
    );
    assert!(
        start.iter().any(|l| l.contains("blackhole 198.18.22.0/24")),
        "{start:?}"
    );
    assert!(
        !reloaded.iter().any(|l| l.contains(".202/")),
        "{reloaded:?}"
    );
    assert!(stopped.is_empty(), "removed at stop: {stopped:?}");
    // Same tables as keepalived 2.2.7 at every step (protocols differ: keepalived marks its
    // routes and rules `proto keepalived`, as we do).
    for (step, (o, t)) in ours.iter().zip(theirs.iter()).enumerate() {
        assert_eq!(o, t, "step {step}");
    }
}
