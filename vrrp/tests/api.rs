//! The public API as the keepalived daemon will call it: `vrrp::daemon::run` in-process with
//! state events, a reload that keeps the MASTER state silently and adds a VIP, and a shutdown
//! that removes every VIP and reports MASTER → INIT.

mod common;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use keepalived_conf::{ParseOptions, parse_str};
use tokio::sync::mpsc;
use vrrp::daemon::{Control, StateEvent, run};
use vrrp::state::{Reason, State};

fn conf(vips: &[&str]) -> Arc<keepalived_conf::KeepalivedConfig> {
    let list: String = vips.iter().map(|v| format!("  {v}/32\n")).collect();
    let text = format!(
        "global_defs {{\n vrrp_version 3\n vrrp_garp_master_delay 0\n}}\n\
         vrrp_instance VI_API {{\n interface va\n virtual_router_id 9\n priority 120\n \
         advert_int 0.1\n virtual_ipaddress {{\n{list} }}\n}}\n"
    );
    let parsed = parse_str(&text, "api.conf", &ParseOptions::default());
    Arc::new(parsed.config)
}

fn local_addrs() -> Vec<IpAddr> {
    nix::ifaddrs::getifaddrs()
        .unwrap()
        .filter_map(|i| i.address?.as_sockaddr_in().map(|s| IpAddr::V4(s.ip())))
        .collect()
}

async fn next(rx: &mut mpsc::Receiver<StateEvent>) -> StateEvent {
    tokio::time::timeout(Duration::from_secs(3), rx.recv())
        .await
        .expect("event in time")
        .expect("channel open")
}

#[test]
fn run_events_reload_shutdown() {
    skip_unless_ready!();
    let pair = Pair::new(94, false).expect("namespaces");
    let (v1, v2): (IpAddr, IpAddr) = (
        "198.18.94.100".parse().unwrap(),
        "198.18.94.101".parse().unwrap(),
    );
    pair.a
        .ns
        .run_in(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (ctl, ctl_rx) = mpsc::channel(4);
                let (ev_tx, mut ev) = mpsc::channel(16);
                let task = tokio::spawn(run(conf(&["198.18.94.100"]), ctl_rx, ev_tx));
                let e = next(&mut ev).await;
                assert_eq!(
                    (e.from, e.to, e.reason),
                    (State::Init, State::Backup, Reason::Startup)
                );
                let e = next(&mut ev).await;
                assert_eq!(
                    (e.from, e.to, e.reason),
                    (State::Backup, State::Master, Reason::MasterDown)
                );
                assert_eq!(
                    (e.instance.as_str(), e.vrid, e.interface.as_str()),
                    ("VI_API", 9, "va")
                );
                assert_eq!(e.vips, vec![v1]);
                assert!(local_addrs().contains(&v1));

                let (tx, rx) = tokio::sync::oneshot::channel();
                ctl.send(Control::Status(tx)).await.unwrap();
                let st = rx.await.unwrap();
                assert_eq!(st.len(), 1);
                assert_eq!((st[0].instance.as_str(), st[0].vrid), ("VI_API", 9));
                assert_eq!(
                    (st[0].state, st[0].effective_priority),
                    (State::Master, 120)
                );
                assert_eq!(st[0].rx.accepted, 0, "alone on the link");

                ctl.send(Control::Reload(conf(&["198.18.94.100", "198.18.94.101"])))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(800)).await;
                let a = local_addrs();
                assert!(a.contains(&v1) && a.contains(&v2), "{a:?}");
                assert!(
                    ev.try_recv().is_err(),
                    "a reload keeps the state without events"
                );

                ctl.send(Control::Reload(conf(&["198.18.94.101"])))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(300)).await;
                let a = local_addrs();
                assert!(!a.contains(&v1) && a.contains(&v2), "{a:?}");

                ctl.send(Control::Shutdown).await.unwrap();
                task.await.unwrap().unwrap();
                let e = next(&mut ev).await;
                assert_eq!(
                    (e.from, e.to, e.reason),
                    (State::Master, State::Init, Reason::Shutdown)
                );
                let a = local_addrs();
                assert!(!a.contains(&v1) && !a.contains(&v2), "{a:?}");
            });
        })
        .join()
        .unwrap()
        .unwrap();
}

#[test]
fn missing_interface_is_an_error_naming_the_instance() {
    skip_unless_ready!();
    let pair = Pair::new(95, false).expect("namespaces");
    let err = pair
        .b
        .ns
        .run_in(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (_ctl, ctl_rx) = mpsc::channel(1);
                let (ev_tx, _ev) = mpsc::channel(1);
                run(conf(&["198.18.95.100"]), ctl_rx, ev_tx).await
            })
        })
        .join()
        .unwrap()
        .unwrap()
        .expect_err("va does not exist in this namespace");
    assert_eq!(err.to_string(), "(VI_API) interface va doesn't exist");
}

/// A reload naming an interface that does not exist keeps the other instances running.
#[test]
fn reload_with_a_broken_instance_keeps_the_others() {
    skip_unless_ready!();
    let pair = Pair::new(102, false).expect("namespaces");
    let v1: IpAddr = "198.18.102.100".parse().unwrap();
    pair.a
        .ns
        .run_in(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (ctl, ctl_rx) = mpsc::channel(4);
                let (ev_tx, mut ev) = mpsc::channel(16);
                let task = tokio::spawn(run(conf(&["198.18.102.100"]), ctl_rx, ev_tx));
                next(&mut ev).await;
                let e = next(&mut ev).await;
                assert_eq!(e.to, State::Master);
                let mut broken = (*conf(&["198.18.102.100"])).clone();
                let mut extra = broken.vrrp_instances[0].clone();
                extra.name = "VI_BROKEN".into();
                extra.interface = Some("nosuchif0".into());
                extra.virtual_router_id = Some(10);
                broken.vrrp_instances.push(extra);
                ctl.send(Control::Reload(Arc::new(broken))).await.unwrap();
                tokio::time::sleep(Duration::from_millis(500)).await;
                assert!(
                    local_addrs().contains(&v1),
                    "the good instance keeps its VIP"
                );
                assert!(ev.try_recv().is_err(), "and its state");
                ctl.send(Control::Shutdown).await.unwrap();
                task.await.unwrap().unwrap();
                assert!(!local_addrs().contains(&v1));
            });
        })
        .join()
        .unwrap()
        .unwrap();
}
