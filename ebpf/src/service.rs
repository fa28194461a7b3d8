//! Which virtual service a packet is addressed to, in IPVS' order (ip_vs_service_find).

use ebpf_common::{PROTO_FWMARK, SVC_F_FWMARK_FIRST, Service, ServiceKey, config};

use crate::fwmark;
use crate::maps::{SERVICES, setting};
use crate::parse::Packet;

/// The fwmark service of the packet's mark (from the classifier, fwmark.rs), then
/// (vip, vport), then (vip, 0) while port-zero services exist. The classifier is asked only
/// while fwmark services exist, and before a (vip, vport) hit only when user space marked that
/// service as covered by a rule (SVC_F_FWMARK_FIRST): other services pay nothing for it.
#[inline(always)]
pub fn of(pkt: &Packet) -> Option<&'static Service> {
    let mut key = ServiceKey {
        addr: pkt.dst,
        port: pkt.dport,
        proto: pkt.proto,
        af: pkt.af,
    };
    // SAFETY: the value is copied or used within this run; a map value lives for the whole program
    // run (RCU).
    let found = unsafe { SERVICES.get(&key) };
    if let Some(svc) = found
        && svc.flags & SVC_F_FWMARK_FIRST == 0
    {
        return Some(svc);
    }
    if (found.is_some() || setting(config::FWMARK_SERVICES))
        && let Some(mark) = fwmark::mark_of(pkt)
    {
        // The same key variable: the main program's stack is nearly full.
        key.addr = [mark, 0, 0, 0];
        key.port = 0;
        key.proto = PROTO_FWMARK;
        // SAFETY: the value is copied or used within this run; a map value lives for the whole
        // program run (RCU).
        if let Some(svc) = unsafe { SERVICES.get(&key) } {
            return Some(svc);
        }
        key.addr = pkt.dst;
        key.proto = pkt.proto;
    }
    if found.is_some() {
        return found;
    }
    if !setting(config::PORT_ZERO_SERVICES) {
        return None;
    }
    key.port = 0;
    // SAFETY: the value is copied or used within this run; a map value lives for the whole program
    // run (RCU).
    unsafe { SERVICES.get(&key) }
}
