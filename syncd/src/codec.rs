//! The kernel's IPVS sync protocol, version 1 (net/netfilter/ipvs/ip_vs_sync.c), byte for byte.
//!
//! A message is one UDP datagram: an 8-byte header (reserved 0, syncid, size, nr_conns,
//! version 1, spare 0) then `nr_conns` records. A record is `ip_vs_sync_v4` (36 bytes) or
//! `ip_vs_sync_v6` (72 bytes) — type, protocol, ver_size (version in the top 4 bits, size in
//! the low 12), flags, state, cport/vport/dport, fwmark, timeout (seconds), caddr/vaddr/daddr —
//! followed by optional parameters (type, length, data: sequence adjustment, persistence-engine
//! data and name). Each record after the first starts on a 4-byte boundary (zero padding).
//!
//! Decoding follows `ip_vs_process_message`: a header or record that cannot be trusted drops the
//! whole datagram; a record the backup cannot use (unknown protocol or state, unknown mandatory
//! parameter, PE data without a name) drops only that record. Nothing here panics on input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Header length (`struct ip_vs_sync_mesg`).
pub const HEADER_LEN: usize = 8;
/// `struct ip_vs_sync_v4` / `struct ip_vs_sync_v6`.
pub const V4_LEN: usize = 36;
/// `struct ip_vs_sync_v6` length.
pub const V6_LEN: usize = 72;
/// SYNC_PROTO_VER.
pub const VERSION: u8 = 1;

/// Record type bit: IPv6 addresses (STYPE_F_INET6).
const STYPE_F_INET6: u8 = 1;
const SVER_SHIFT: u16 = 12;
const SVER_MASK: u16 = 0x0fff;

/// Optional parameters (IPVS_OPT_*); the PARAM bit marks an optional one a receiver may skip.
const OPT_SEQ_DATA: u8 = 1;
const OPT_PE_DATA: u8 = 2;
const OPT_PE_NAME: u8 = 3;
const OPT_F_PARAM: u8 = 1 << 6;
/// `struct ip_vs_sync_conn_options`: in_seq and out_seq, three u32 each.
const SEQ_LEN: usize = 24;
/// IP_VS_PEDATA_MAXLEN, IP_VS_PENAME_MAXLEN.
const PEDATA_MAXLEN: usize = 255;
const PENAME_MAXLEN: usize = 16;

/// IP_VS_CONN_F_* connection flags as they travel.
pub mod flags {
    /// The forwarding-method bits.
    pub const FWD_MASK: u32 = 0x0007;
    /// NAT.
    pub const MASQ: u32 = 0x0000;
    /// Local node.
    pub const LOCALNODE: u32 = 0x0001;
    /// Tunnelling.
    pub const TUNNEL: u32 = 0x0002;
    /// Direct routing.
    pub const DROUTE: u32 = 0x0003;
    /// Learnt through sync.
    pub const SYNC: u32 = 0x0020;
    /// In the connection hash table.
    pub const HASHED: u32 = 0x0040;
    /// No output packets.
    pub const NOOUTPUT: u32 = 0x0080;
    /// Not established.
    pub const INACTIVE: u32 = 0x0100;
    /// Sequence-adjustment bits.
    pub const SEQ_MASK: u32 = 0x0600;
    /// No client port yet (templates).
    pub const NO_CPORT: u32 = 0x0800;
    /// A persistence template.
    pub const TEMPLATE: u32 = 0x1000;
    /// One-packet scheduling.
    pub const ONE_PACKET: u32 = 0x2000;
    /// IP_VS_CONN_F_BACKUP_MASK: what a backup keeps of the flags it receives.
    pub const BACKUP_MASK: u32 = FWD_MASK | NOOUTPUT | INACTIVE | SEQ_MASK | NO_CPORT | TEMPLATE;
}

/// Protocol numbers and the number of states IPVS knows for each (a state beyond is invalid).
pub const IPPROTO_TCP: u8 = 6;
/// UDP.
pub const IPPROTO_UDP: u8 = 17;
/// SCTP.
pub const IPPROTO_SCTP: u8 = 132;
fn num_states(proto: u8) -> Option<u16> {
    match proto {
        IPPROTO_TCP => Some(11),  // IP_VS_TCP_S_LAST
        IPPROTO_UDP => Some(1),   // IP_VS_UDP_S_LAST
        IPPROTO_SCTP => Some(10), // IP_VS_SCTP_S_LAST
        _ => None,
    }
}

/// One direction's sequence adjustment (`struct ip_vs_seq`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seq {
    /// First sequence number adjusted.
    pub init_seq: u32,
    /// Adjustment from `init_seq` on.
    pub delta: u32,
    /// Adjustment before `init_seq`.
    pub previous_delta: u32,
}

/// One synchronised connection (or persistence template, with `flags::TEMPLATE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// IP protocol number.
    pub protocol: u8,
    /// IP_VS_CONN_F_* bits.
    pub flags: u32,
    /// IPVS state number of the protocol (IP_VS_TCP_S_*, 0 for UDP).
    pub state: u16,
    /// Client address (client network for templates).
    pub caddr: IpAddr,
    /// Client port.
    pub cport: u16,
    /// Virtual address.
    pub vaddr: IpAddr,
    /// Virtual port.
    pub vport: u16,
    /// Real server address.
    pub daddr: IpAddr,
    /// Real server port.
    pub dport: u16,
    /// Firewall mark of the service (0 unless fwmark).
    pub fwmark: u32,
    /// The connection's timeout in seconds (0: the receiver uses its own for the state).
    pub timeout: u32,
    /// (in_seq, out_seq) when the connection adjusts sequence numbers.
    pub seq: Option<(Seq, Seq)>,
    /// Persistence engine data (option PE_DATA).
    pub pe_data: Option<Vec<u8>>,
    /// Persistence engine name (option PE_NAME).
    pub pe_name: Option<Vec<u8>>,
}

impl Record {
    /// Whether the addresses are IPv6.
    pub fn is_v6(&self) -> bool {
        self.caddr.is_ipv6()
    }

    /// Bytes this record takes without padding (the `ver_size` size).
    pub fn len(&self) -> usize {
        let mut len = if self.is_v6() { V6_LEN } else { V4_LEN };
        if self.seq.is_some() {
            len += 2 + SEQ_LEN;
        }
        if let Some(d) = &self.pe_data {
            len += 2 + d.len();
            if let Some(n) = &self.pe_name {
                len += 2 + n.len();
            }
        }
        len
    }

    /// Never: a record always has a header.
    pub fn is_empty(&self) -> bool {
        false
    }

    fn write(&self, out: &mut Vec<u8>) {
        let v6 = self.is_v6();
        out.push(if v6 { STYPE_F_INET6 } else { 0 });
        out.push(self.protocol);
        out.extend_from_slice(&((self.len() as u16) & SVER_MASK).to_be_bytes());
        out.extend_from_slice(&(self.flags & !flags::HASHED).to_be_bytes());
        out.extend_from_slice(&self.state.to_be_bytes());
        for p in [self.cport, self.vport, self.dport] {
            out.extend_from_slice(&p.to_be_bytes());
        }
        out.extend_from_slice(&self.fwmark.to_be_bytes());
        out.extend_from_slice(&self.timeout.to_be_bytes());
        for a in [self.caddr, self.vaddr, self.daddr] {
            put_addr(out, a, v6);
        }
        if let Some((i, o)) = &self.seq {
            out.push(OPT_SEQ_DATA);
            out.push(SEQ_LEN as u8);
            for s in [i, o] {
                for w in [s.init_seq, s.delta, s.previous_delta] {
                    out.extend_from_slice(&w.to_be_bytes());
                }
            }
        }
        if let Some(d) = &self.pe_data {
            out.push(OPT_PE_DATA);
            out.push(d.len() as u8);
            out.extend_from_slice(d);
            if let Some(n) = &self.pe_name {
                out.push(OPT_PE_NAME);
                out.push(n.len() as u8);
                out.extend_from_slice(n);
            }
        }
    }
}

fn put_addr(out: &mut Vec<u8>, a: IpAddr, v6: bool) {
    match (a, v6) {
        (IpAddr::V4(a), false) => out.extend_from_slice(&a.octets()),
        (IpAddr::V6(a), true) => out.extend_from_slice(&a.octets()),
        // A mixed record cannot be expressed: send the unspecified address of the family.
        (_, false) => out.extend_from_slice(&[0; 4]),
        (_, true) => out.extend_from_slice(&[0; 16]),
    }
}

/// Packs records into messages as the kernel's master does: a message holds records while
/// header + records (with padding) fit in `max(maxlen, header + record)` bytes, and at most
/// 255 (nr_conns is one byte). Records whose sizes cannot be expressed (PE data > 255 bytes)
/// are left out.
pub fn encode(syncid: u8, records: &[Record], maxlen: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur: Option<(Vec<u8>, usize)> = None; // (bytes, capacity)
    for r in records {
        let len = r.len();
        if len > SVER_MASK as usize
            || r.pe_data.as_ref().is_some_and(|d| d.len() > PEDATA_MAXLEN)
            || r.pe_name.as_ref().is_some_and(|n| n.len() > PENAME_MAXLEN)
        {
            continue;
        }
        if let Some((buf, cap)) = &cur {
            let pad = (4 - buf.len() % 4) % 4;
            if buf.len() + pad + len > *cap || buf[4] == 255 {
                out.push(finish(cur.take().expect("present").0));
            }
        }
        let (buf, _) = cur.get_or_insert_with(|| {
            let mut b = Vec::with_capacity(maxlen.max(HEADER_LEN + len));
            b.extend_from_slice(&[0, syncid, 0, 0, 0, VERSION, 0, 0]);
            (b, maxlen.max(HEADER_LEN + len))
        });
        while buf.len() % 4 != 0 {
            buf.push(0);
        }
        r.write(buf);
        buf[4] += 1;
    }
    if let Some((buf, _)) = cur {
        out.push(finish(buf));
    }
    out
}

fn finish(mut buf: Vec<u8>) -> Vec<u8> {
    let size = buf.len() as u16;
    buf[2..4].copy_from_slice(&size.to_be_bytes());
    buf
}

/// Why a whole datagram was dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Drop {
    /// Shorter than a header.
    TooShort,
    /// The size field differs from the datagram's length.
    BadSize,
    /// Another sync id than the one we listen for (not an error: counted apart).
    OtherSyncId(u8),
    /// Version 0 (or a broken version 1) header: not supported.
    Version,
    /// A record runs past the end, has an unknown version or type, or broken parameters.
    BadRecord(&'static str),
}

/// A decoded datagram: the usable records and how many were skipped one by one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// Sync id of the sender.
    pub syncid: u8,
    /// The records that decoded.
    pub records: Vec<Record>,
    /// Records skipped (bad protocol, state or options).
    pub skipped: u32,
}

/// Decodes one datagram for a backup listening to `syncid` (0 takes every sync id).
pub fn decode(buf: &[u8], syncid: u8) -> Result<Message, Drop> {
    if buf.len() < 4 {
        return Err(Drop::TooShort);
    }
    if u16::from_be_bytes([buf[2], buf[3]]) as usize != buf.len() {
        return Err(Drop::BadSize);
    }
    if syncid != 0 && buf[1] != syncid {
        return Err(Drop::OtherSyncId(buf[1]));
    }
    if buf.len() < HEADER_LEN || buf[0] != 0 || buf[5] != VERSION || buf[6] != 0 || buf[7] != 0 {
        return Err(Drop::Version);
    }
    let mut msg = Message {
        syncid: buf[1],
        ..Default::default()
    };
    let mut at = HEADER_LEN;
    for _ in 0..buf[4] {
        if at + V4_LEN > buf.len() {
            return Err(Drop::BadRecord("record header past the end"));
        }
        let ver_size = u16::from_be_bytes([buf[at + 2], buf[at + 3]]);
        let size = (ver_size & SVER_MASK) as usize;
        let end = at + size;
        if end > buf.len() {
            return Err(Drop::BadRecord("record past the end"));
        }
        if ver_size >> SVER_SHIFT != 0 {
            return Err(Drop::BadRecord("unknown record version"));
        }
        match record(&buf[at..end])? {
            Some(r) => msg.records.push(r),
            None => msg.skipped += 1,
        }
        at += (size + 3) & !3;
    }
    Ok(msg)
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn addr(b: &[u8], at: usize, v6: bool) -> IpAddr {
    if v6 {
        let mut o = [0u8; 16];
        o.copy_from_slice(&b[at..at + 16]);
        IpAddr::V6(Ipv6Addr::from(o))
    } else {
        IpAddr::V4(Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]))
    }
}

/// One record (`b` is exactly its `size` bytes): Ok(None) when only this record is skipped.
fn record(b: &[u8]) -> Result<Option<Record>, Drop> {
    let v6 = match b.first() {
        Some(&t) if t & STYPE_F_INET6 != 0 => true,
        Some(0) => false,
        _ => return Err(Drop::BadRecord("unknown record type")),
    };
    let fixed = if v6 { V6_LEN } else { V4_LEN };
    if b.len() < fixed {
        return Err(Drop::BadRecord("record shorter than its addresses"));
    }
    let alen = if v6 { 16 } else { 4 };
    let mut r = Record {
        protocol: b[1],
        flags: be32(b, 4),
        state: be16(b, 8),
        cport: be16(b, 10),
        vport: be16(b, 12),
        dport: be16(b, 14),
        fwmark: be32(b, 16),
        timeout: be32(b, 20),
        caddr: addr(b, 24, v6),
        vaddr: addr(b, 24 + alen, v6),
        daddr: addr(b, 24 + 2 * alen, v6),
        seq: None,
        pe_data: None,
        pe_name: None,
    };
    let mut skip = false;
    let mut p = fixed;
    while p < b.len() {
        if p + 2 > b.len() {
            return Err(Drop::BadRecord("truncated parameter"));
        }
        let (ptype, plen) = (b[p], b[p + 1] as usize);
        p += 2;
        if plen == 0 || p + plen > b.len() {
            return Err(Drop::BadRecord("bad parameter length"));
        }
        let data = &b[p..p + plen];
        match ptype & !OPT_F_PARAM {
            OPT_SEQ_DATA => {
                if plen != SEQ_LEN || r.seq.is_some() {
                    return Err(Drop::BadRecord("bad sequence parameter"));
                }
                let s = |o: usize| Seq {
                    init_seq: be32(data, o),
                    delta: be32(data, o + 4),
                    previous_delta: be32(data, o + 8),
                };
                r.seq = Some((s(0), s(12)));
            }
            OPT_PE_DATA => {
                if plen > PEDATA_MAXLEN || r.pe_data.is_some() {
                    return Err(Drop::BadRecord("bad persistence-engine data"));
                }
                r.pe_data = Some(data.to_vec());
            }
            OPT_PE_NAME => {
                if plen > PENAME_MAXLEN || r.pe_name.is_some() {
                    return Err(Drop::BadRecord("bad persistence-engine name"));
                }
                r.pe_name = Some(data.to_vec());
            }
            // An unknown mandatory parameter makes this record unusable; optional ones are skipped.
            _ if ptype & OPT_F_PARAM == 0 => skip = true,
            _ => {}
        }
        if skip {
            return Ok(None);
        }
        p += plen;
    }
    if r.flags & flags::TEMPLATE == 0 {
        match num_states(r.protocol) {
            Some(n) if r.state < n => {}
            _ => return Ok(None),
        }
    }
    if r.pe_data.is_some() && r.pe_name.is_none() {
        return Ok(None);
    }
    Ok(Some(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(cport: u16) -> Record {
        Record {
            protocol: IPPROTO_TCP,
            flags: 0,
            state: 1,
            caddr: "198.18.1.2".parse().unwrap(),
            cport,
            vaddr: "198.18.100.1".parse().unwrap(),
            vport: 80,
            daddr: "198.18.2.2".parse().unwrap(),
            dport: 8080,
            fwmark: 0,
            timeout: 900,
            seq: None,
            pe_data: None,
            pe_name: None,
        }
    }

    fn rec6() -> Record {
        Record {
            protocol: IPPROTO_UDP,
            flags: flags::INACTIVE | flags::DROUTE | flags::NOOUTPUT,
            state: 0,
            caddr: "2001:db8::2".parse().unwrap(),
            cport: 5000,
            vaddr: "2001:db8:100::1".parse().unwrap(),
            vport: 53,
            daddr: "2001:db8:2::2".parse().unwrap(),
            dport: 53,
            fwmark: 7,
            timeout: 300,
            seq: Some((
                Seq {
                    init_seq: 1,
                    delta: 2,
                    previous_delta: 3,
                },
                Seq {
                    init_seq: 4,
                    delta: 5,
                    previous_delta: 6,
                },
            )),
            pe_data: Some(b"call-id".to_vec()),
            pe_name: Some(b"sip".to_vec()),
        }
    }

    #[test]
    fn round_trip_with_options_and_padding() {
        let rs = vec![rec(1), rec6(), rec(2)];
        let msgs = encode(3, &rs, 1472);
        assert_eq!(msgs.len(), 1);
        let m = &msgs[0];
        // rec6: 72 + 26 + 9 + 5 = 112 bytes, a multiple of 4: no padding needed here.
        assert_eq!(m.len(), 8 + 36 + 112 + 36);
        let d = decode(m, 3).unwrap();
        assert_eq!(d.records, rs);
        assert_eq!(d.skipped, 0);
        // Syncid 0 listens to all.
        assert_eq!(decode(m, 0).unwrap().syncid, 3);
    }

    #[test]
    fn records_after_an_odd_sized_one_are_aligned() {
        let mut odd = rec(1);
        odd.pe_data = Some(b"x".to_vec());
        odd.pe_name = Some(b"sip".to_vec());
        assert_eq!(odd.len(), 36 + 3 + 5);
        let m = &encode(1, &[odd.clone(), rec(2)], 1472)[0];
        assert_eq!(m.len(), 8 + 44 + 36);
        let m = &encode(1, &[rec(2), odd.clone()], 1472)[0];
        assert_eq!(m.len(), 8 + 36 + 44);
        let mut odd2 = odd.clone();
        odd2.pe_data = Some(b"xy".to_vec());
        let m = &encode(1, &[odd2.clone(), rec(3)], 1472)[0];
        // 45 bytes, 3 of padding, then the next record.
        assert_eq!(m.len(), 8 + 45 + 3 + 36);
        assert_eq!(decode(m, 1).unwrap().records, vec![odd2, rec(3)]);
    }

    #[test]
    fn messages_split_at_maxlen_and_255_records() {
        let rs: Vec<Record> = (0..100).map(rec).collect();
        let msgs = encode(1, &rs, 1472);
        // (1472 - 8) / 36 = 40 records a message.
        assert_eq!(
            msgs.iter().map(|m| m[4]).collect::<Vec<_>>(),
            vec![40, 40, 20]
        );
        assert!(msgs.iter().all(|m| m.len() <= 1472));
        let rs: Vec<Record> = (0..300).map(rec).collect();
        let msgs = encode(1, &rs, 65507);
        assert_eq!(msgs.iter().map(|m| m[4]).collect::<Vec<_>>(), vec![255, 45]);
        // A maxlen smaller than one record still carries it (the kernel's max()).
        assert_eq!(encode(1, &[rec(1)], 10)[0].len(), 44);
        let all: Vec<Record> = msgs
            .iter()
            .flat_map(|m| decode(m, 1).unwrap().records)
            .collect();
        assert_eq!(all, rs);
    }

    #[test]
    fn whole_datagram_drops() {
        let good = encode(5, &[rec(1), rec(2)], 1472).remove(0);
        assert_eq!(decode(&[], 0), Err(Drop::TooShort));
        assert_eq!(decode(&good[..3], 0), Err(Drop::TooShort));
        assert_eq!(decode(&good[..good.len() - 1], 0), Err(Drop::BadSize));
        let mut longer = good.clone();
        longer.push(0);
        assert_eq!(decode(&longer, 0), Err(Drop::BadSize));
        assert_eq!(decode(&good, 6), Err(Drop::OtherSyncId(5)));
        let set = |i: usize, v: u8| {
            let mut m = good.clone();
            m[i] = v;
            m
        };
        // Version 0 header (first byte = count), version 2, spare set.
        assert_eq!(decode(&set(0, 2), 0), Err(Drop::Version));
        assert_eq!(decode(&set(5, 2), 0), Err(Drop::Version));
        assert_eq!(decode(&set(7, 1), 0), Err(Drop::Version));
        // More records announced than present.
        assert!(matches!(decode(&set(4, 3), 0), Err(Drop::BadRecord(_))));
        // Record size past the end / record version / unknown type / size below the struct.
        assert!(matches!(
            decode(&set(8 + 3, 200), 0),
            Err(Drop::BadRecord(_))
        ));
        assert!(matches!(
            decode(&set(8 + 2, 0x10), 0),
            Err(Drop::BadRecord(_))
        ));
        assert!(matches!(decode(&set(8, 2), 0), Err(Drop::BadRecord(_))));
        assert!(matches!(
            decode(&set(8 + 3, 20), 0),
            Err(Drop::BadRecord(_))
        ));
        // A v6 type on a v4-sized record.
        assert!(matches!(decode(&set(8, 1), 0), Err(Drop::BadRecord(_))));
    }

    #[test]
    fn bad_parameters() {
        let with_param = |p: &[u8]| {
            let mut r = encode(1, &[rec(1)], 1472).remove(0);
            r.extend_from_slice(p);
            let rec_len = (36 + p.len()) as u16;
            r[10..12].copy_from_slice(&rec_len.to_be_bytes());
            let size = r.len() as u16;
            r[2..4].copy_from_slice(&size.to_be_bytes());
            r
        };
        // Truncated header, zero length, length past the record, wrong seq size, twice.
        assert!(matches!(
            decode(&with_param(&[1]), 0),
            Err(Drop::BadRecord(_))
        ));
        assert!(matches!(
            decode(&with_param(&[2, 0]), 0),
            Err(Drop::BadRecord(_))
        ));
        assert!(matches!(
            decode(&with_param(&[2, 5, 1]), 0),
            Err(Drop::BadRecord(_))
        ));
        assert!(matches!(
            decode(&with_param(&[1, 2, 0, 0]), 0),
            Err(Drop::BadRecord(_))
        ));
        let mut twice = vec![3, 3, b's', b'i', b'p'];
        twice.extend_from_slice(&[3, 3, b's', b'i', b'p']);
        assert!(matches!(
            decode(&with_param(&twice), 0),
            Err(Drop::BadRecord(_))
        ));
        // Unknown mandatory parameter: this record only is skipped.
        let m = decode(&with_param(&[9, 2, 0, 0]), 0).unwrap();
        assert_eq!((m.records.len(), m.skipped), (0, 1));
        // Unknown optional parameter: ignored.
        let m = decode(&with_param(&[9 | 0x40, 2, 0, 0]), 0).unwrap();
        assert_eq!(m.records, vec![rec(1)]);
        // PE data without a name: skipped.
        let m = decode(&with_param(&[2, 2, 0, 0]), 0).unwrap();
        assert_eq!(m.skipped, 1);
    }

    #[test]
    fn unusable_records_are_skipped_one_by_one() {
        let mut bad_state = rec(1);
        bad_state.state = 11;
        let mut bad_proto = rec(2);
        bad_proto.protocol = 47;
        let mut udp_state = rec(3);
        udp_state.protocol = IPPROTO_UDP;
        udp_state.state = 1;
        let mut template = rec(4);
        template.flags = flags::TEMPLATE;
        template.state = 99;
        let m = encode(
            1,
            &[bad_state, bad_proto, udp_state, rec(5), template.clone()],
            1472,
        );
        let d = decode(&m[0], 1).unwrap();
        assert_eq!(d.records, vec![rec(5), template]);
        assert_eq!(d.skipped, 3);
    }

    #[test]
    fn never_panics_on_noise() {
        // Every truncation and every single-byte corruption of a message with all features.
        let m = encode(2, &[rec6(), rec(1), rec6()], 1472).remove(0);
        for n in 0..m.len() {
            let _ = decode(&m[..n], 0);
        }
        for i in 0..m.len() {
            for v in [0u8, 1, 0x40, 0x7f, 0xff] {
                let mut x = m.clone();
                x[i] = v;
                let _ = decode(&x, 0);
            }
        }
        // Pseudo-random datagrams with a valid header.
        let mut seed = 0x1234_5678u32;
        for _ in 0..20_000 {
            let len = 8 + (seed % 200) as usize;
            let mut b: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            b[0] = 0;
            b[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            b[5] = 1;
            b[6] = 0;
            b[7] = 0;
            let _ = decode(&b, 0);
        }
    }
}
