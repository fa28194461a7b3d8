//! VRRP v2/v3 codec, state machine and sockets.

pub mod codec;
pub mod state;
pub mod track;
