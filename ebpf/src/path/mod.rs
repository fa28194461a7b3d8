//! The packet path proper, by what a packet finds in the connection table:
//! * `lookup`: the attached program's stage: parse, one lookup for both directions, and where
//!   the packet goes from there;
//! * `established`: packets of a known connection, both ways (state, counters, rewrite,
//!   forward: send-to-real and send-to-client are written here once);
//! * `open`: a packet that may open a connection (service, policies, scheduling, entries).

pub mod established;
pub mod lookup;
pub mod open;
