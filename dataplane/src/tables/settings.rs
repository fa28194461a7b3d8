//! Global settings of the packet path: connection timeouts (`ipvsadm --set`) and the switches
//! of `xlvs set` (CONFIG).

use ebpf_common as c;

use crate::error::Result;
use crate::maps::{Maps, err};
use crate::model::*;

pub fn timeouts(maps: &Maps) -> Result<Timeouts> {
    let get = |state: u8| -> Result<u32> {
        let v = maps
            .timeouts
            .get(&(state as u32), 0)
            .map_err(|e| err("read TIMEOUTS", e))?;
        Ok(if v == 0 {
            c::DEFAULT_TIMEOUTS[state as usize]
        } else {
            v
        })
    };
    Ok(Timeouts {
        tcp: get(c::S_ESTABLISHED)?,
        tcp_fin: get(c::S_FIN_WAIT)?,
        udp: get(c::S_UDP)?,
    })
}

/// The `xlvs set` switches as they are in CONFIG.
pub fn path_settings(maps: &Maps) -> Result<PathSettings> {
    let on = |i: u32| -> Result<bool> {
        Ok(maps.config.get(&i, 0).map_err(|e| err("read CONFIG", e))? != 0)
    };
    Ok(PathSettings {
        toa: !on(c::config::TOA_OFF)?,
        frag_drop: on(c::config::FRAG_DROP)?,
        no_service_drop: on(c::config::NO_SERVICE_DROP)?,
        synproxy_defer: on(c::config::SYNPROXY_DEFER)?,
        sloppy_tcp: on(c::config::SLOPPY_TCP)?,
        table_full: maps.conn_fill.policy(),
    })
}

/// Writes every `xlvs set` switch, and the table-full policy.
pub fn set_path_settings(maps: &mut Maps, p: &PathSettings) -> Result<()> {
    for (index, on) in [
        (c::config::TOA_OFF, !p.toa),
        (c::config::FRAG_DROP, p.frag_drop),
        (c::config::NO_SERVICE_DROP, p.no_service_drop),
        (c::config::SYNPROXY_DEFER, p.synproxy_defer),
        (c::config::SLOPPY_TCP, p.sloppy_tcp),
    ] {
        maps.config
            .set(index, on as u32, 0)
            .map_err(|e| err("write CONFIG", e))?;
    }
    let capacity = crate::conns::capacity_entries(maps) as u64;
    maps.conn_fill.set_policy(p.table_full, capacity);
    Ok(())
}

/// Sets the non-zero timeouts of `t` (zero leaves one unchanged, as `ipvsadm --set`).
pub fn set_timeouts(maps: &mut Maps, t: &Timeouts) -> Result<()> {
    for (state, value) in [
        (c::S_ESTABLISHED, t.tcp),
        (c::S_FIN_WAIT, t.tcp_fin),
        (c::S_UDP, t.udp),
    ] {
        if value != 0 {
            maps.timeouts
                .set(state as u32, value, 0)
                .map_err(|e| err("write TIMEOUTS", e))?;
        }
    }
    Ok(())
}
