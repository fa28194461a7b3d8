//! IPVS connection synchronisation for xlvs (`ipvsadm --start-daemon master|backup`): the
//! kernel's sync protocol version 1 on the wire (`codec`), a master that announces the data
//! plane's connections and a backup that writes announced ones into its own table (`daemon`,
//! `records`), run as a detached process whose state lives under /run/xlvs (`state`,
//! `control`). See ARCHITECTURE.md, "Connection synchronisation".

pub mod codec;
pub mod config;
pub mod control;
pub mod daemon;
mod net;
pub mod records;
pub mod state;
