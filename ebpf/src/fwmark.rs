//! fwmark services without netfilter: XDP runs before iptables, so no packet carries a mark
//! yet. The classifier (`FWMARK_CLASS`, written by `xlvs fwmark`) gives the mark an iptables
//! mangle rule would have set: one longest-prefix lookup on (af, proto, destination address),
//! whose entry lists every port range that applies there (user space copies the ranges of
//! shorter covering prefixes in, and refuses overlapping rules, so at most one range matches).

use aya_ebpf::{macros::map, maps::lpm_trie::Key};
use ebpf_common::{FWMARK_PREFIX_BASE, FwmarkPrefix, MAX_FWMARK_PORT_RULES, fwmark_port_bit};

use crate::maps::{FWMARK_CLASS, FWMARK_PORTS_FREE};
use crate::parse::Packet;
use crate::proto::IPPROTO_UDP;
use crate::stage::Scratch;

/// The classifier's lookup key (the stacks that classify have no room for it).
#[map]
static SCRATCH_FWMARK: Scratch<Key<FwmarkPrefix>> = Scratch::new();

/// The mark of a packet, if a classifier rule covers its (proto, destination, port).
#[inline(always)]
pub fn mark_of(pkt: &Packet) -> Option<u32> {
    let key = SCRATCH_FWMARK.get()?;
    key.prefix_len = FWMARK_PREFIX_BASE + if pkt.is_v6() { 128 } else { 32 };
    key.data.af = pkt.af;
    key.data.proto = pkt.proto;
    key.data._pad = [0; 2];
    key.data.addr = pkt.dst;
    let rules = FWMARK_CLASS.get(&*key)?;
    let port = u16::from_be(pkt.dport);
    let n = rules.count;
    for i in 0..MAX_FWMARK_PORT_RULES {
        if i >= n {
            break;
        }
        let r = &rules.rules[i as usize];
        if r.port_lo <= port && port <= r.port_hi {
            return Some(r.mark);
        }
    }
    None
}

/// Whether no classifier rule covers the packet's destination port (at any address): then it
/// cannot belong to a fwmark service unless its address is a VIP.
#[inline(always)]
pub fn port_free(pkt: &Packet) -> bool {
    let (entry, word, bit) = fwmark_port_bit(pkt.proto == IPPROTO_UDP, u16::from_be(pkt.dport));
    match FWMARK_PORTS_FREE.get(entry) {
        Some(words) => words[word as usize] >> bit & 1 != 0,
        None => false,
    }
}
