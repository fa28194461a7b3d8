//! keepalived-compatible health checkers for xlvs.
//!
//! Reads the checkers of a parsed keepalived.conf
//! ([`keepalived_conf::model::KeepalivedConfig`]) and runs them with
//! keepalived 2.2's timing (see [`timing`]): TCP_CHECK, HTTP_GET, SSL_GET,
//! MISC_CHECK, UDP_CHECK, PING_CHECK, DNS_CHECK, SMTP_CHECK and FILE_CHECK
//! (BFD_CHECK is reported as unsupported and ignored).
//!
//! # For the daemon
//!
//! ```no_run
//! # async fn f(config: keepalived_conf::KeepalivedConfig, new: keepalived_conf::KeepalivedConfig) {
//! let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
//! let sup = healthcheck::Supervisor::spawn(&config, tx).await;
//! // Initial states: every real is up unless one of its checkers has alpha.
//! for r in sup.snapshot().await { /* program r.vs / r.real with r.up, r.weight */ }
//! for w in sup.take_warnings().await { eprintln!("{w}"); }
//! // Changes: set the real (vs, real) to up/weight (idempotent "set" events).
//! while let Some(ev) = rx.recv().await {
//!     let _ = (ev.vs, ev.real, ev.up, ev.weight, ev.reason);
//! }
//! // SIGHUP with a valid new config: unchanged checkers keep their state.
//! let report = sup.reload(&new).await; // report.added: new reals and their state
//! sup.shutdown().await;
//! # }
//! ```
//!
//! Keys ([`VsKey`], [`RealKey`]) name a virtual server by address:port /
//! fwmark / group name plus protocol, and a real by address and effective
//! port; they are stable across reloads.
//!
//! [`run_script`] runs a keepalived script (own process group, killed with
//! its children at the timeout); the daemon can use it for other notify
//! scripts.
// Every public item says what it is for; CI's clippy (-D warnings) makes this an error.
#![warn(missing_docs)]

pub mod aggregate;
pub mod build;
pub mod conn;
pub mod key;
pub mod probe;
pub mod script;
pub mod supervisor;
pub mod timing;

pub use key::{RealKey, VsAddr, VsKey};
pub use script::{ScriptExit, run_script};
pub use supervisor::{LastProbe, ProbeLog, RealEvent, RealStatus, ReloadReport, Supervisor};
