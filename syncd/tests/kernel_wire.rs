//! Wire compatibility with the kernel's own sync daemon: the datagrams in
//! `golden/kernel-capture.txt` were sent by Linux 6.1's IPVS master (see the file's header and
//! `oracle/capture.sh`). Our decoder must read them, and our encoder must produce the same
//! bytes for the same connections.

use std::net::IpAddr;

use syncd::codec::{self, Record, flags};

fn captured() -> Vec<Vec<u8>> {
    let text = include_str!("golden/kernel-capture.txt");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let hex = l.split_whitespace().nth(2).expect("three fields");
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect()
        })
        .collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A connection of the capture, written down from the guest's `ipvsadm -Lcn` (not decoded).
fn conn(proto: u8, cport: u16, vport: u16, dport: u16, state: u16, timeout: u32, f: u32) -> Record {
    Record {
        protocol: proto,
        flags: f,
        state,
        caddr: ip("198.18.1.1"),
        cport,
        vaddr: ip("198.18.0.1"),
        vport,
        daddr: ip("198.18.1.2"),
        dport,
        fwmark: 0,
        timeout,
        seq: None,
        pe_data: None,
        pe_name: None,
    }
}

#[test]
fn first_message_is_what_we_would_send() {
    let msgs = captured();
    assert_eq!(msgs.len(), 2);
    // TCP 198.18.1.1:40001 -> 198.18.0.1:80 -> 198.18.1.2:8080 established (Masq, active),
    // UDP :40002 -> :53 -> :5353 (inactive), syncid 7, the master's default maxlen 1472.
    let ours = codec::encode(
        7,
        &[
            conn(6, 40001, 80, 8080, 1, 900, 0),
            conn(17, 40002, 53, 5353, 0, 300, flags::INACTIVE),
        ],
        1472,
    );
    assert_eq!(ours, vec![msgs[0].clone()]);
}

#[test]
fn second_message_decodes_to_the_connections_and_templates() {
    let msgs = captured();
    let m = codec::decode(&msgs[1], 7).expect("kernel message decodes");
    assert_eq!((m.syncid, m.skipped), (7, 0));
    assert_eq!(m.records.len(), 14);
    let tpl = |state| {
        let mut t = conn(
            6,
            0,
            82,
            8080,
            state,
            300,
            flags::TEMPLATE | flags::INACTIVE,
        );
        t.cport = 0;
        t
    };
    assert_eq!(m.records[0], tpl(0));
    assert_eq!(m.records[1], tpl(1));
    assert_eq!(m.records[2], conn(6, 40003, 82, 8080, 1, 900, 0));
    // Closing states go out as they happen, inactive, with their own timeouts.
    let closing: Vec<(u16, u16, u32)> = m
        .records
        .iter()
        .filter(|r| r.flags & flags::TEMPLATE == 0 && r.state != 1)
        .map(|r| (r.cport, r.state, r.timeout))
        .collect();
    assert_eq!(
        closing,
        vec![
            (40003, 7, 60),
            (40003, 5, 120),
            (40001, 7, 60),
            (40001, 5, 120)
        ]
    );
    // Re-encoding what we decoded gives the kernel's bytes back.
    assert_eq!(codec::encode(7, &m.records, 1472), vec![msgs[1].clone()]);
}

#[test]
fn other_sync_ids_are_ignored() {
    let msgs = captured();
    assert_eq!(codec::decode(&msgs[0], 8), Err(codec::Drop::OtherSyncId(7)));
    assert_eq!(codec::decode(&msgs[0], 0).unwrap().records.len(), 2);
}

/// The kernel's backup took a message of ours (`golden/kernel-accepts-ours.txt`): IPv6, a
/// fwmark service, direct routing, a template and a closing connection, all listed by the
/// guest's `ipvsadm -Lcn` afterwards. Our encoder must still produce exactly that message.
#[test]
fn kernel_backup_took_our_message() {
    let text = include_str!("golden/kernel-accepts-ours.txt");
    let hex = text
        .lines()
        .find_map(|l| l.strip_prefix("message "))
        .expect("message line");
    let r =
        |proto, f, state, c: &str, cport, v: &str, vport, d: &str, dport, fwmark, timeout| Record {
            protocol: proto,
            flags: f,
            state,
            caddr: ip(c),
            cport,
            vaddr: ip(v),
            vport,
            daddr: ip(d),
            dport,
            fwmark,
            timeout,
            seq: None,
            pe_data: None,
            pe_name: None,
        };
    let dr = flags::DROUTE | flags::NOOUTPUT;
    let records = [
        r(
            6,
            dr,
            1,
            "2001:db8:1::2",
            40010,
            "2001:db8:100::1",
            80,
            "2001:db8:2::2",
            80,
            0,
            900,
        ),
        r(
            17,
            dr | flags::INACTIVE,
            0,
            "198.18.1.1",
            40011,
            "198.18.0.1",
            53,
            "198.18.1.2",
            53,
            5,
            300,
        ),
        r(
            6,
            flags::TEMPLATE | flags::INACTIVE,
            1,
            "198.18.1.1",
            0,
            "198.18.0.1",
            82,
            "198.18.1.2",
            8080,
            0,
            300,
        ),
        r(
            6,
            flags::INACTIVE,
            5,
            "198.18.1.1",
            40012,
            "198.18.0.1",
            82,
            "198.18.1.2",
            8080,
            0,
            120,
        ),
    ];
    let ours: Vec<String> = codec::encode(7, &records, 1472)
        .iter()
        .map(|m| m.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    assert_eq!(ours, vec![hex.to_string()]);
    for row in [
        "TCP 14:57  ESTABLISHED [2001:db8:1::2]:40010 [2001:db8:100::1]:80 [2001:db8:2::2]:80",
        "UDP 04:57  UDP         198.18.1.1:40011   198.18.0.1:53      198.18.1.2:53",
        "TCP 04:57  ASSURED     198.18.1.1:0       198.18.0.1:82      198.18.1.2:8080",
        "TCP 01:57  TIME_WAIT   198.18.1.1:40012   198.18.0.1:82      198.18.1.2:8080",
    ] {
        assert!(text.contains(row), "the kernel listed {row}");
    }
}
