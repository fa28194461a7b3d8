//! The firewall (`xlvs fw`): packets of no connection are checked against allow/deny rules by
//! source prefix, protocol and destination port, global or scoped to one destination address,
//! before the service lookup. Established connections never get here (their table hit is the
//! fast path). A packet no rule matches goes on when it is addressed to a VIP, and meets the
//! default policy otherwise (traffic to this host).
//!
//! One lookup decides: each entry lists, in the order to try them, its own prefix's rules and
//! those of every shorter prefix covering it (user space copies them in). Scoped rules
//! (`--vip`, `FW_SCOPED`) are asked first, then the global ones: the whole source address in
//! `FW_HOSTS` (a hash: blocklists of a million addresses would make the trie deep), then the
//! longest source prefix in `FW_TRIE`. Each table is asked only while it has entries. The whole rule set is switched
//! by one write of `CONFIG[FW]` (generation bit): a packet reads it once, so it sees one set.
//! What the rules let through then meets the rate limits, if any are set (fw_limit.rs).

use aya_ebpf::{macros::map, maps::lpm_trie::Key, programs::XdpContext};
use core::intrinsics::{AtomicOrdering, atomic_xadd};
use ebpf_common::{
    AF_INET, AF_INET6, FW_KEY_BASE, FW_SCOPED_KEY_BASE, FwEntry, FwKey, FwScopedKey, IPPROTO_ICMP,
    MAX_FW_MATCHES, config, counter, fw,
};

use crate::fw_limit;
use crate::maps::{CONFIG, FW_HITS, FW_HOSTS, FW_SCOPED, FW_TRIE, count};
use crate::parse::{self, Packet, ptr_at};
use crate::proto::{ETH_P_IP, ETH_P_IPV6, IPPROTO_ICMPV6};
use crate::stage::Scratch;

/// The lookup keys (the packet path's stacks have no room for them).
#[map]
static SCRATCH_FW: Scratch<Key<FwKey>> = Scratch::new();
#[map]
static SCRATCH_HOST: Scratch<FwKey> = Scratch::new();
#[map]
static SCRATCH_SCOPED: Scratch<Key<FwScopedKey>> = Scratch::new();

/// An ICMP message's addresses (source, destination): no room on that program's stack.
#[map]
static SCRATCH_ADDRS: Scratch<[[u32; 4]; 2]> = Scratch::new();

/// The bits of `CONFIG[FW]` that need the rules asked (the rest are rate limits).
const RULE_BITS: u32 = fw::STATE_RULES | fw::STATE_HOSTS | fw::STATE_SCOPED | fw::STATE_POLICY_DROP;

/// What the firewall says about a packet of no connection.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on as without a firewall.
    Continue,
    /// Drop it (counted).
    Drop,
}

/// The verdict for a TCP/UDP packet of no connection; `to_vip`: addressed to a VIP.
#[inline(always)]
pub fn check(pkt: &Packet, to_vip: bool) -> Verdict {
    let state = CONFIG.get(config::FW).copied().unwrap_or(0);
    if state == 0 {
        return Verdict::Continue;
    }
    if state & RULE_BITS != 0
        && decide(
            state,
            pkt.af,
            pkt.proto,
            &pkt.src,
            &pkt.dst,
            u16::from_be(pkt.dport),
            !to_vip,
        ) == Verdict::Drop
    {
        return Verdict::Drop;
    }
    if to_vip && state & fw::STATE_CONN_LIMIT != 0 && !fw_limit::conn_allowed(pkt) {
        return Verdict::Drop;
    }
    Verdict::Continue
}

/// The verdict for an ICMP/ICMPv6 message that is not an error about a connection. Neighbour
/// discovery and MLD always pass (IPv6 needs them as IPv4 needs ARP), and so do error messages
/// (they quote the host's own traffic; the kernel checks them against its sockets).
#[inline(always)]
pub fn check_icmp(ctx: &XdpContext) -> Verdict {
    let state = CONFIG.get(config::FW).copied().unwrap_or(0);
    if state == 0 {
        return Verdict::Continue;
    }
    let Ok((l3, ethertype)) = parse::l3(ctx) else {
        return Verdict::Continue;
    };
    let Some((af, proto, kind)) = icmp_kind(ctx, l3, ethertype) else {
        return Verdict::Continue;
    };
    let exempt = if af == AF_INET6 {
        (1..=4).contains(&kind) || (130..=137).contains(&kind) || kind == 143
    } else {
        kind == 3 || kind == 11 || kind == 12
    };
    if exempt {
        return Verdict::Continue;
    }
    if state & RULE_BITS != 0 && icmp_rules(ctx, state, l3, af, proto) == Verdict::Drop {
        return Verdict::Drop;
    }
    if state & fw::STATE_ICMP_LIMIT != 0 && !fw_limit::icmp_allowed() {
        return Verdict::Drop;
    }
    Verdict::Continue
}

/// The rules' verdict for an ICMP message (IP header at `l3`).
#[inline(always)]
fn icmp_rules(ctx: &XdpContext, state: u32, l3: usize, af: u8, proto: u8) -> Verdict {
    let src = SCRATCH_ADDRS.get();
    let Some(addrs) = src else {
        return Verdict::Continue;
    };
    if af == AF_INET6 {
        match (
            read::<[u32; 4]>(ctx, l3 + 8),
            read::<[u32; 4]>(ctx, l3 + 24),
        ) {
            (Some(s), Some(d)) => *addrs = [s, d],
            _ => return Verdict::Continue,
        }
    } else {
        match (read::<u32>(ctx, l3 + 12), read::<u32>(ctx, l3 + 16)) {
            (Some(s), Some(d)) => *addrs = [[s, 0, 0, 0], [d, 0, 0, 0]],
            _ => return Verdict::Continue,
        }
    }
    decide(state, af, proto, &addrs[0], &addrs[1], 0, true)
}

/// Whether an ICMPv6 packet (IPv6 header at `l3`) is an error message (which may quote a
/// connection's packet): the ICMPv6 header right after the IPv6 header, type 1-4.
#[inline(always)]
pub fn icmp6_error(ctx: &XdpContext, l3: usize) -> bool {
    matches!(icmp_kind(ctx, l3, ETH_P_IPV6), Some((_, _, 1..=4)))
}

/// (family, protocol, ICMP type) of an ICMP/ICMPv6 packet; `None` for ICMPv6 behind extension
/// headers (MLD's hop-by-hop: link-local business, left alone) or a truncated header.
#[inline(always)]
fn icmp_kind(ctx: &XdpContext, l3: usize, ethertype: u16) -> Option<(u8, u8, u8)> {
    if ethertype == ETH_P_IPV6 {
        if read::<u8>(ctx, l3 + 6)? != IPPROTO_ICMPV6 {
            return None;
        }
        return Some((AF_INET6, IPPROTO_ICMPV6, read::<u8>(ctx, l3 + 40)?));
    }
    if ethertype != ETH_P_IP {
        return None;
    }
    let ihl = ((read::<u8>(ctx, l3)? & 0x0f) as usize) * 4;
    Some((AF_INET, IPPROTO_ICMP, read::<u8>(ctx, l3 + (ihl & 0x3c))?))
}

#[inline(always)]
fn read<T: Copy>(ctx: &XdpContext, off: usize) -> Option<T> {
    // SAFETY: `p` comes from ptr_at, which checked that all its bytes lie before data_end; an
    // unaligned read needs no alignment.
    ptr_at::<T>(ctx, off).map(|p| unsafe { p.read_unaligned() })
}

/// Scoped rules, then global ones (whole addresses, then prefixes), then (`policy_applies`)
/// the default policy.
#[inline(always)]
fn decide(
    state: u32,
    af: u8,
    proto: u8,
    src: &[u32; 4],
    dst: &[u32; 4],
    port: u16,
    policy_applies: bool,
) -> Verdict {
    let generation = (state & fw::STATE_GEN1 != 0) as u8;
    let mut action = 0;
    if state & fw::STATE_SCOPED != 0 {
        action = scoped_action(generation, af, proto, src, dst, port);
    }
    if action == 0 && state & fw::STATE_HOSTS != 0 {
        action = host_action(generation, af, proto, src, port);
    }
    if action == 0 && state & fw::STATE_RULES != 0 {
        action = prefix_action(generation, af, proto, src, port);
    }
    if action == fw::DENY {
        count(counter::FW_DENIED);
        return Verdict::Drop;
    }
    if action == fw::ALLOW {
        count(counter::FW_ALLOWED);
        return Verdict::Continue;
    }
    if policy_applies && state & fw::STATE_POLICY_DROP != 0 {
        count(counter::FW_POLICY_DROP);
        return Verdict::Drop;
    }
    Verdict::Continue
}

#[inline(always)]
fn host_bits(af: u8) -> u32 {
    if af == AF_INET6 { 128 } else { 32 }
}

/// The rules for the whole source address (FW_HOSTS).
#[inline(always)]
fn host_action(generation: u8, af: u8, proto: u8, src: &[u32; 4], port: u16) -> u8 {
    let Some(key) = SCRATCH_HOST.get() else {
        return 0;
    };
    key.generation = generation;
    key.af = af;
    key._pad = [0; 2];
    key.src = *src;
    // SAFETY: the value is read at once; a map value lives for the whole program run (RCU).
    match unsafe { FW_HOSTS.get(&*key) } {
        Some(entry) => first_match(entry, proto, port),
        None => 0,
    }
}

/// The rules of the longest matching source prefix (FW_TRIE).
#[inline(always)]
fn prefix_action(generation: u8, af: u8, proto: u8, src: &[u32; 4], port: u16) -> u8 {
    let Some(key) = SCRATCH_FW.get() else {
        return 0;
    };
    key.prefix_len = FW_KEY_BASE + host_bits(af);
    key.data.generation = generation;
    key.data.af = af;
    key.data._pad = [0; 2];
    key.data.src = *src;
    match FW_TRIE.get(&*key) {
        Some(entry) => first_match(entry, proto, port),
        None => 0,
    }
}

/// The rules for the packet's destination and longest matching source prefix (FW_SCOPED).
#[inline(always)]
fn scoped_action(
    generation: u8,
    af: u8,
    proto: u8,
    src: &[u32; 4],
    dst: &[u32; 4],
    port: u16,
) -> u8 {
    let Some(key) = SCRATCH_SCOPED.get() else {
        return 0;
    };
    key.prefix_len = FW_SCOPED_KEY_BASE + host_bits(af);
    key.data.generation = generation;
    key.data.af = af;
    key.data._pad = [0; 2];
    key.data.vip = *dst;
    key.data.src = *src;
    match FW_SCOPED.get(&*key) {
        Some(entry) => first_match(entry, proto, port),
        None => 0,
    }
}

/// The action of the entry's first rule that matches `proto` and `port` (0: none), its hit
/// counted.
#[inline(always)]
fn first_match(entry: &FwEntry, proto: u8, port: u16) -> u8 {
    let n = entry.count;
    for i in 0..MAX_FW_MATCHES {
        if i >= n {
            break;
        }
        let m = &entry.matches[i as usize];
        if (m.proto == 0 || m.proto == proto) && m.port_lo <= port && port <= m.port_hi {
            if let Some(hits) = FW_HITS.get_ptr_mut(m.id) {
                // SAFETY: `hits` is a map value pointer from get_ptr_mut: non-null, aligned for the
                // u64 atomic add and valid for this program run.
                unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(hits, 1) };
            }
            return m.action;
        }
    }
    0
}
