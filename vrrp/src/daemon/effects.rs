//! What a state change sets off outside the protocol — VIPs, routes and rules through
//! netlink, the no_accept firewall rules (an `nft` process), notify scripts, notify FIFO
//! lines — runs on a worker thread of its own, in the order asked, so adverts and timers never
//! wait for the kernel's rtnl lock, a process start or a slow FIFO reader. keepalived does all
//! of this inline; here the protocol thread only queues it.

use std::net::IpAddr;
use std::path::Path;

use keepalived_conf::model::Script;
use tokio::sync::{mpsc, oneshot};

use super::StateEvent;
use crate::netlink::{Netlink, Route, Rule, Vip};
use crate::noaccept;
use crate::notify::{self, Fifo};

/// One piece of work, done after everything queued before it.
#[derive(Debug)]
pub(crate) enum Effect {
    /// no_accept: drop input to `addrs` (before the addresses go in).
    Block {
        instance: String,
        addrs: Vec<IpAddr>,
    },
    Unblock {
        instance: String,
    },
    AddAddresses {
        instance: String,
        rules: Vec<Rule>,
        vips: Vec<Vip>,
        routes: Vec<Route>,
    },
    RemoveAddresses {
        vips: Vec<Vip>,
        routes: Vec<Route>,
        rules: Vec<Rule>,
    },
    /// A notify script with extra arguments (never waited for).
    Spawn {
        script: Script,
        args: Vec<String>,
    },
    /// One line for every notify FIFO.
    FifoLine(String),
    /// (Re)opens the notify FIFOs (start and reload).
    OpenFifos(Vec<String>),
    /// An SMTP alert (sent in the background).
    Mail(super::mail::Mail),
    /// A transition for the embedding daemon, after what it set off (addresses in place).
    Event(StateEvent),
    /// Answers once the scripts started so far have ended (or the time is up), as keepalived
    /// waits for its notify scripts before it exits.
    WaitScripts(std::time::Duration, oneshot::Sender<()>),
}

/// The queue to the worker. Sending never blocks.
#[derive(Clone)]
pub(crate) struct Effects {
    tx: mpsc::UnboundedSender<Effect>,
}

impl Effects {
    /// Starts the worker thread (named `vrrp-effects`).
    pub(crate) fn start(events: mpsc::Sender<StateEvent>) -> std::io::Result<Effects> {
        let nl = Netlink::open()?;
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("vrrp-effects".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("effects runtime");
                rt.block_on(worker(nl, rx, events));
            })?;
        Ok(Effects { tx })
    }

    /// A transition's scripts: the state's own (`notify_master`…, no arguments) and the
    /// generic `notify` with `args` (TYPE NAME STATE PRIORITY).
    pub(crate) fn notify_scripts(
        &self,
        specific: Option<&Script>,
        generic: Option<&Script>,
        args: Vec<String>,
    ) {
        if let Some(s) = specific {
            self.push(Effect::Spawn {
                script: s.clone(),
                args: Vec::new(),
            });
        }
        if let Some(s) = generic {
            self.push(Effect::Spawn {
                script: s.clone(),
                args,
            });
        }
    }

    pub(crate) fn push(&self, e: Effect) {
        if self.tx.send(e).is_err() {
            log::error!("VRRP effects worker gone");
        }
    }

    /// Waits until everything queued so far is done and the scripts it started have ended,
    /// for at most `limit` (shutdown: the stop notifications must run).
    pub(crate) async fn finish(&self, limit: std::time::Duration) {
        let (tx, rx) = oneshot::channel();
        self.push(Effect::WaitScripts(limit, tx));
        let _ = rx.await;
    }
}

async fn worker(
    mut nl: Netlink,
    mut rx: mpsc::UnboundedReceiver<Effect>,
    events: mpsc::Sender<StateEvent>,
) {
    let mut fifos: Vec<Fifo> = Vec::new();
    let mut scripts: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    let mut mails: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    while let Some(e) = rx.recv().await {
        match e {
            Effect::Block { instance, addrs } => noaccept::block(&instance, &addrs),
            Effect::Unblock { instance } => noaccept::unblock(&instance),
            Effect::AddAddresses {
                instance,
                rules,
                vips,
                routes,
            } => {
                for rule in &rules {
                    if let Err(e) = nl.add_rule(rule) {
                        log::warn!("({instance}) cannot add rule: {e}");
                    }
                }
                for vip in &vips {
                    if let Err(e) = nl.add_address(vip) {
                        log::warn!("({instance}) cannot add {}: {e}", vip.addr);
                    }
                }
                for route in &routes {
                    if let Err(e) = nl.add_route(route) {
                        log::warn!("({instance}) cannot add route to {}: {e}", route.dst);
                    }
                }
            }
            Effect::RemoveAddresses {
                vips,
                routes,
                rules,
            } => {
                for route in &routes {
                    let _ = nl.del_route(route);
                }
                for vip in &vips {
                    if let Err(e) = nl.del_address(vip) {
                        log::warn!("cannot remove {}: {e}", vip.addr);
                    }
                }
                for rule in &rules {
                    let _ = nl.del_rule(rule);
                }
            }
            Effect::Spawn { script, args } => {
                scripts.retain(|t| !t.is_finished());
                scripts.extend(notify::spawn(&script, &args));
            }
            Effect::FifoLine(line) => {
                for f in &mut fifos {
                    f.write_raw(&line);
                }
            }
            Effect::OpenFifos(paths) => {
                fifos.clear();
                for p in paths {
                    match Fifo::open(Path::new(&p)) {
                        Ok(f) => fifos.push(f),
                        Err(err) => log::warn!("cannot open notify fifo {p}: {err}"),
                    }
                }
            }
            Effect::Mail(m) => {
                mails.retain(|t| !t.is_finished());
                mails.push(m.send());
            }
            // A full or closed channel never blocks us (nor, through us, the protocol).
            Effect::Event(ev) => {
                let _ = events.try_send(ev);
            }
            Effect::WaitScripts(limit, done) => {
                let all = futures_all(std::mem::take(&mut scripts));
                if tokio::time::timeout(limit, all).await.is_err() {
                    log::warn!("notify scripts still running at stop");
                }
                // The stop alerts get a moment; an unreachable mail server never holds the
                // stop up for long.
                let all = futures_all(std::mem::take(&mut mails));
                let _ = tokio::time::timeout(MAILS_AT_STOP, all).await;
                let _ = done.send(());
            }
        }
    }
}

/// How long a stop waits for SMTP alerts still being sent.
const MAILS_AT_STOP: std::time::Duration = std::time::Duration::from_secs(2);

async fn futures_all(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}
