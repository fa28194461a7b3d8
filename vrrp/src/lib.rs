//! VRRP v2/v3 codec, state machine and sockets.

pub mod codec;
pub mod config;
pub mod daemon;
pub mod garp;
pub mod link;
pub mod netlink;
pub mod notify;
pub mod sock;
pub mod state;
pub mod track;
