//! keepalived's BFD (`keepalived/bfd/`): RFC 5880 asynchronous mode over RFC 5881 single-hop
//! UDP, no echo, no authentication, as keepalived 2.2.7 runs it for `bfd_instance` blocks.
//!
//! * [`codec`]: Control packets and the receive checks, every refusal a counted [`codec::Reject`];
//! * [`session`]: one session's state machine and timers (pure, deterministic clock);
//! * [`config`]: `bfd_instance` → sessions, with keepalived's defaults and exclusions;
//! * [`daemon`]: the BFD thread (sockets, timers); session states on a watch channel for
//!   `track_bfd` (VRRP) and `BFD_CHECK` (checkers).
// Every public item says what it is for; CI's clippy (-D warnings) makes this an error.
#![warn(missing_docs)]

pub mod codec;
pub mod config;
pub mod daemon;
pub mod session;

pub use daemon::{Control, Handle, States, Status, spawn};
