//! DPVS deny/allow lists (blklst/whtlst): a new connection from a client on its service's deny
//! list, or missing from a non-empty allow list, is refused. Checked only when a connection
//! opens, as DPVS does; established connections are not cut when a list changes.

use ebpf_common::{AclKey, Service, acl};

use crate::maps::{ACL, ACL_STATE};
use crate::parse::Packet;

/// Whether `pkt`'s client may open a connection to `svc`.
#[inline(always)]
pub fn allowed(svc: &Service, pkt: &Packet) -> bool {
    let state = match ACL_STATE.get(svc.id) {
        Some(s) => *s,
        None => 0,
    };
    if state == 0 {
        return true;
    }
    let mut key = AclKey {
        addr: pkt.src,
        svc_id: svc.id,
        kind: acl::DENY,
        af: pkt.af,
        _pad: [0; 2],
    };
    // SAFETY: the value is only tested for presence; a map value lives for the whole program run
    // (RCU).
    if state & acl::HAS_DENY != 0 && unsafe { ACL.get(&key) }.is_some() {
        return false;
    }
    key.kind = acl::ALLOW;
    // SAFETY: the value is only tested for presence; a map value lives for the whole program run
    // (RCU).
    !(state & acl::HAS_ALLOW != 0 && unsafe { ACL.get(&key) }.is_none())
}
