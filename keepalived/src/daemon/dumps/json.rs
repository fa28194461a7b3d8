//! keepalived.json: `[{"data":{…},"stats":{…}}]` per VRRP instance, keepalived 2.2.7's keys in
//! its order (fields it has that we do not model are left out; keepalived-exporter's JSON mode
//! reads `iname`, `state`, `wantstate`, `ifp_ifname`, `garp_delay`, `vrid`, `vips` and every
//! `stats` counter).

use super::view::{InstanceView, epoch_secs, state_number};
use serde::Serialize;

#[derive(Serialize)]
struct Entry {
    data: Data,
    stats: Stats,
}

#[derive(Serialize)]
struct Data {
    iname: String,
    dont_track_primary: u8,
    skip_check_adv_addr: u8,
    vmac_ifname: String,
    ifp_ifname: String,
    last_transition: f64,
    garp_delay: u32,
    garp_refresh: u32,
    garp_rep: u32,
    garp_refresh_rep: u32,
    lower_prio_no_advert: u8,
    vrid: u8,
    base_priority: u8,
    effective_priority: u8,
    vipset: bool,
    /// Seconds: an integer for VRRPv2 as keepalived prints it, fractional for v3.
    adver_int: serde_json::Number,
    accept: u8,
    nopreempt: bool,
    preempt_delay: f64,
    state: u8,
    wantstate: u8,
    version: u8,
    vips: Vec<String>,
    track_script: Vec<String>,
    auth_type: u8,
}

#[derive(Serialize)]
struct Stats {
    advert_rcvd: u64,
    advert_sent: u64,
    become_master: u64,
    release_master: u64,
    packet_len_err: u64,
    advert_interval_err: u64,
    ip_ttl_err: u64,
    invalid_type_rcvd: u64,
    addr_list_err: u64,
    invalid_authtype: u64,
    authtype_mismatch: u64,
    auth_failure: u64,
    pri_zero_rcvd: u64,
    pri_zero_sent: u64,
}

pub fn vrrp_json(views: &[InstanceView]) -> String {
    let entries: Vec<Entry> = views.iter().map(entry).collect();
    serde_json::to_string(&entries).unwrap_or_else(|_| "[]".into())
}

fn entry(v: &InstanceView) -> Entry {
    let c = &v.cfg;
    let master = v.state == vrrp::state::State::Master;
    let adver_int = if c.version == 2 {
        serde_json::Number::from(c.adver_int)
    } else {
        serde_json::Number::from_f64(f64::from(c.adver_int) / 100.0)
            .unwrap_or_else(|| serde_json::Number::from(0))
    };
    let k = &v.counters;
    Entry {
        data: Data {
            iname: c.name.clone(),
            dont_track_primary: u8::from(c.dont_track_primary),
            skip_check_adv_addr: u8::from(c.skip_check_adv_addr),
            vmac_ifname: c.use_vmac.clone().unwrap_or_default(),
            ifp_ifname: c.interface.clone(),
            last_transition: v.last_transition.map(epoch_secs).unwrap_or(0.0),
            garp_delay: c.garp.master_delay,
            garp_refresh: c.garp.master_refresh,
            garp_rep: c.garp.master_repeat,
            garp_refresh_rep: c.garp.master_refresh_repeat,
            lower_prio_no_advert: u8::from(c.lower_prio_no_advert),
            vrid: c.vrid,
            base_priority: c.priority,
            effective_priority: v.effective_priority,
            vipset: master,
            adver_int,
            accept: u8::from(c.accept),
            nopreempt: !c.preempt,
            preempt_delay: c.preempt_delay_us as f64 / 1e6,
            state: state_number(v.state),
            wantstate: state_number(v.state),
            version: c.version,
            vips: c
                .vips
                .iter()
                .map(|vip| super::data::vip_text(vip, &c.interface, master))
                .collect(),
            track_script: v.scripts.iter().map(|(n, _)| n.clone()).collect(),
            auth_type: c.auth.type_code(),
        },
        stats: Stats {
            advert_rcvd: k.advert_rcvd,
            advert_sent: k.advert_sent,
            become_master: k.become_master,
            release_master: k.release_master,
            packet_len_err: k.packet_len_err,
            advert_interval_err: k.advert_interval_err,
            ip_ttl_err: k.ip_ttl_err,
            invalid_type_rcvd: k.invalid_type_rcvd,
            addr_list_err: k.addr_list_err,
            invalid_authtype: k.invalid_authtype,
            authtype_mismatch: k.authtype_mismatch,
            auth_failure: k.auth_failure,
            pri_zero_rcvd: k.pri_zero_rcvd,
            pri_zero_sent: k.pri_zero_sent,
        },
    }
}
