//! `vrrp_track_process` with keepalived 2.2.7 as the peer: while the tracked process runs our
//! node (priority 150) is master; when it dies our instance goes FAULT and the 2.2.7 backup
//! takes over; when it runs again ours preempts. (keepalived 2.2.7 itself cannot track
//! processes inside a network namespace: its process-events connector answers ECONNREFUSED
//! outside the initial namespace, and the instance stays in FAULT. We read /proc instead.)
//! Needs root; skips with a printed reason otherwise.

mod common;

use std::process::{Child, Command};
use std::time::Duration;

use common::*;

struct Sleeper(Child);

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn track_process_moves_the_vip_with_a_keepalived_peer() {
    skip_unless_ready!();
    let pair = Pair::new(93, false).expect("namespaces");
    // A process with a name of its own (the kernel keeps 15 bytes of it).
    let name = format!("tps{}", std::process::id() % 100_000);
    let prog = pair.dir.join(&name);
    std::fs::copy("/bin/sleep", &prog).expect("copy sleep");
    let start = || Sleeper(Command::new(&prog).arg("600").spawn().expect("sleeper"));
    let sleeper = start();

    let backup = Node::start(
        Impl::Keepalived,
        &pair,
        &pair.b,
        &pair.a,
        &NodeConf::new(100, 3, "0.1"),
        "b",
    )
    .expect("backup");
    let ours = config_text(&pair, &pair.a, &pair.b, &NodeConf::new(150, 3, "0.1")).replace(
        "vrrp_instance VI_T {",
        &format!(
            "vrrp_track_process TP {{\n process {name}\n}}\nvrrp_instance VI_T {{\n track_process {{\n  TP\n }}"
        ),
    );
    let master = Node::start_text(Impl::Ours, &pair, &pair.a, &ours, "a").expect("ours");
    let hold = Duration::from_millis(500);
    converge_on(&pair, &pair.a, &pair.b, Duration::from_secs(4), hold)
        .unwrap_or_else(|e| panic!("process running: {e:#}\n{}", master.log_text()));
    drop(sleeper);
    converge_on(&pair, &pair.b, &pair.a, Duration::from_secs(3), hold).unwrap_or_else(|e| {
        panic!(
            "process gone: {e:#}\n{}\n{}",
            master.log_text(),
            backup.log_text()
        )
    });
    assert!(master.log_text().contains("FAULT"), "{}", master.log_text());
    let sleeper = start();
    converge_on(&pair, &pair.a, &pair.b, Duration::from_secs(4), hold)
        .unwrap_or_else(|e| panic!("process back: {e:#}\n{}", master.log_text()));
    drop(sleeper);
}
