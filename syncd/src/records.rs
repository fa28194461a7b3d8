//! Between the data plane's connections and the protocol's records: flags as the kernel sets
//! them, and which connections a master sends when (IPVS' sync_threshold / sync_period /
//! sync_refresh_period, approximated from what user space can see; see `Tracker`).

use std::collections::HashMap;
use std::net::IpAddr;

use dataplane::model::Forward;
use dataplane::sync::SyncConn;

use crate::codec::{IPPROTO_TCP, Record, flags};

/// IPVS' flags for a connection: the forwarding method, NOOUTPUT when replies bypass the
/// director (anything but NAT), INACTIVE unless a TCP connection is established (templates
/// too, as the kernel sends them).
pub fn record_of(c: &SyncConn) -> Record {
    let fwd = match c.forward {
        Forward::Masq => flags::MASQ,
        Forward::Local => flags::LOCALNODE,
        Forward::Tunnel => flags::TUNNEL,
        Forward::Route => flags::DROUTE,
        // Not sent (see dataplane::sync::export); FULLNAT has no IPVS method number.
        Forward::FullNat => flags::DROUTE,
    };
    let mut f = fwd;
    if c.forward != Forward::Masq {
        f |= flags::NOOUTPUT;
    }
    if c.template {
        f |= flags::TEMPLATE | flags::INACTIVE;
    } else if !(c.proto == IPPROTO_TCP && c.state == 1) {
        f |= flags::INACTIVE;
    }
    Record {
        protocol: c.proto,
        flags: f,
        state: c.state,
        caddr: c.caddr,
        cport: c.cport,
        vaddr: c.vaddr,
        vport: c.vport,
        daddr: c.daddr,
        dport: c.dport,
        fwmark: c.fwmark,
        timeout: c.timeout,
        seq: None,
        pe_data: None,
        pe_name: None,
    }
}

/// A received record as a connection to import. Persistence-engine (sip) data has no
/// counterpart here and is dropped; the forwarding method is the local destination's.
pub fn conn_of(r: &Record) -> SyncConn {
    SyncConn {
        proto: r.protocol,
        caddr: r.caddr,
        cport: r.cport,
        vaddr: r.vaddr,
        vport: r.vport,
        daddr: r.daddr,
        dport: r.dport,
        fwmark: r.fwmark,
        state: r.state,
        forward: match r.flags & flags::FWD_MASK {
            flags::MASQ => Forward::Masq,
            flags::LOCALNODE => Forward::Local,
            flags::TUNNEL => Forward::Tunnel,
            _ => Forward::Route,
        },
        timeout: r.timeout,
        template: r.flags & flags::TEMPLATE != 0,
        last_seen: 0,
    }
}

/// TCP states the kernel synchronises (ip_vs_sync_conn_needed): ESTABLISHED, FIN_WAIT,
/// TIME_WAIT, CLOSE, CLOSE_WAIT. Handshake states are not sent.
fn syncable(c: &SyncConn) -> bool {
    c.template || c.proto != IPPROTO_TCP || matches!(c.state, 1 | 4 | 5 | 6 | 7)
}

type Id = (u8, IpAddr, u16, IpAddr, u16, bool);

fn id(c: &SyncConn) -> Id {
    (c.proto, c.caddr, c.cport, c.vaddr, c.vport, c.template)
}

struct Sent {
    state: u16,
    daddr: IpAddr,
    /// When we sent it (ns, the data plane's clock).
    at: u64,
}

/// What a master has announced. The kernel sends a connection on its 3rd packet and every
/// 50 packets after (sync_threshold 3, sync_period 50), and at once when a TCP connection
/// changes to a closing state. User space sees no per-connection packet counts, only states
/// and last activity, so a scan sends:
/// * a connection not sent yet, once it is in a synchronised state (for TCP: established or
///   closing; UDP and templates at once);
/// * a connection whose state (or destination) changed since it was sent;
/// * a connection active since it was sent, once half its timeout (at least 1 s) has passed
///   since: the backup's copy would otherwise expire while the master's lives on (IPVS'
///   sync_refresh_period logic with its half-timeout bound).
#[derive(Default)]
pub struct Tracker {
    sent: HashMap<Id, Sent>,
}

impl Tracker {
    /// The connections to send now (`now` in the data plane's clock, ns), remembered as sent.
    pub fn due(&mut self, conns: &[SyncConn], now: u64) -> Vec<SyncConn> {
        let mut out = Vec::new();
        let mut live = HashMap::with_capacity(conns.len());
        for c in conns.iter().filter(|c| syncable(c)) {
            let key = id(c);
            let send = match self.sent.get(&key) {
                None => true,
                Some(s) if s.state != c.state || s.daddr != c.daddr => true,
                Some(s) => {
                    let half = (c.timeout as u64 * 1_000_000_000 / 2).max(1_000_000_000);
                    c.last_seen > s.at && now.saturating_sub(s.at) >= half
                }
            };
            let entry = if send {
                out.push(c.clone());
                Sent {
                    state: c.state,
                    daddr: c.daddr,
                    at: now,
                }
            } else {
                self.sent.remove(&key).expect("present when not sent")
            };
            live.insert(key, entry);
        }
        // Connections gone from the table are forgotten.
        self.sent = live;
        out
    }

    /// Forgets these (their message could not be sent): the next scan sends them again.
    pub fn forget(&mut self, conns: &[SyncConn]) {
        for c in conns {
            self.sent.remove(&id(c));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn tcp(cport: u16, state: u16, last_seen: u64) -> SyncConn {
        SyncConn {
            proto: IPPROTO_TCP,
            caddr: "198.18.1.2".parse().unwrap(),
            cport,
            vaddr: "198.18.100.1".parse().unwrap(),
            vport: 80,
            daddr: "198.18.2.2".parse().unwrap(),
            dport: 8080,
            fwmark: 0,
            state,
            forward: Forward::Masq,
            timeout: 900,
            template: false,
            last_seen,
        }
    }

    #[test]
    fn flags_as_the_kernel_sends_them() {
        // Values seen in the kernel's own messages (tests/golden/kernel-capture.txt).
        assert_eq!(record_of(&tcp(1, 1, 0)).flags, 0);
        assert_eq!(record_of(&tcp(1, 5, 0)).flags, 0x100);
        let mut udp = tcp(1, 0, 0);
        udp.proto = 17;
        assert_eq!(record_of(&udp).flags, 0x100);
        let mut t = tcp(0, 1, 0);
        t.template = true;
        assert_eq!(record_of(&t).flags, 0x1100);
        let mut dr = tcp(1, 1, 0);
        dr.forward = Forward::Route;
        assert_eq!(record_of(&dr).flags, 0x83);
        assert_eq!(conn_of(&record_of(&dr)), dr);
    }

    #[test]
    fn sends_new_changed_and_stale_active_connections_only() {
        let mut t = Tracker::default();
        // A handshake is not sent; established is.
        assert!(t.due(&[tcp(1, 3, 0)], 0).is_empty());
        assert_eq!(t.due(&[tcp(1, 1, 0)], S).len(), 1);
        // Unchanged and recent: nothing.
        assert!(t.due(&[tcp(1, 1, 2 * S)], 2 * S).is_empty());
        // Active, half the timeout (450 s) after the send: again.
        assert!(t.due(&[tcp(1, 1, 400 * S)], 400 * S).is_empty());
        assert_eq!(t.due(&[tcp(1, 1, 451 * S)], 452 * S).len(), 1);
        // Idle since: not refreshed (the backup's copy expires with the master's).
        assert!(t.due(&[tcp(1, 1, 451 * S)], 1000 * S).is_empty());
        // A state change goes out at once.
        assert_eq!(t.due(&[tcp(1, 4, 1001 * S)], 1001 * S)[0].state, 4);
        // Gone, then back: sent as new.
        assert!(t.due(&[], 1002 * S).is_empty());
        assert_eq!(t.due(&[tcp(1, 4, 1003 * S)], 1003 * S).len(), 1);
        // Unsent after a failure: sent again.
        let c = tcp(2, 1, 0);
        assert_eq!(t.due(std::slice::from_ref(&c), 1004 * S).len(), 1);
        t.forget(std::slice::from_ref(&c));
        assert_eq!(t.due(&[c], 1005 * S).len(), 1);
    }
}
