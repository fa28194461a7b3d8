//! keepalived.stats: per VRRP instance, keepalived 2.2.7's counters in its layout (sections
//! end in `:` at two spaces, values at four; `Became master`/`Released master` at two).

use super::view::InstanceView;
use std::fmt::Write as _;

pub fn vrrp_stats(views: &[InstanceView]) -> String {
    let mut out = String::new();
    for v in views {
        let c = &v.counters;
        let _ = writeln!(out, "VRRP Instance: {}", v.cfg.name);
        let _ = write!(
            out,
            "  Advertisements:\n    Received: {}\n    Sent: {}\n",
            c.advert_rcvd, c.advert_sent
        );
        let _ = writeln!(out, "  Became master: {}", c.become_master);
        let _ = writeln!(out, "  Released master: {}", c.release_master);
        let _ = write!(
            out,
            "  Packet Errors:\n    Length: {}\n    TTL: {}\n    Invalid Type: {}\n    \
             Advertisement Interval: {}\n    Address List: {}\n",
            c.packet_len_err,
            c.ip_ttl_err,
            c.invalid_type_rcvd,
            c.advert_interval_err,
            c.addr_list_err
        );
        let _ = write!(
            out,
            "  Authentication Errors:\n    Invalid Type: {}\n    Type Mismatch: {}\n    \
             Failure: {}\n",
            c.invalid_authtype, c.authtype_mismatch, c.auth_failure
        );
        let _ = write!(
            out,
            "  Priority Zero:\n    Received: {}\n    Sent: {}\n",
            c.pri_zero_rcvd, c.pri_zero_sent
        );
    }
    out
}
