//! The connection-sync decoder (`syncd::codec`): one datagram as a backup receives it, for the
//! sync id in the message and for "any". Properties: no panic; every record the header counts is
//! either decoded or skipped; the decoded records, encoded again the way our master sends them,
//! decode to the same records; each converts to a connection to import.

use syncd::codec::{self, Record, flags};

use crate::engine::{Outcome, Target, mutate_bytes};

pub const TARGET: Target = Target {
    name: "syncd",
    mutator: mutate_bytes,
    dict: &[
        &[0, 0x24],
        &[0, 0x48],
        &[0x10, 0x24],
        &[0x01],
        &[0x41, 24],
        &[0x02, 4],
        &[0x03, 3, b's', b'i', b'p'],
        &[6],
        &[17],
        &[132],
    ],
    max_len: 4096,
    secs: 8.0,
    seeds: &[],
};

/// What survives a round trip: persistence-engine names travel only with their data (the
/// kernel ignores a name without data, and so does our encoder), and HASHED never travels (the
/// kernel's master clears it, as ours does).
fn comparable(r: &Record) -> Record {
    let mut r = r.clone();
    r.flags &= !flags::HASHED;
    if r.pe_data.is_none() {
        r.pe_name = None;
    }
    r
}

pub fn run(input: &[u8]) -> Outcome {
    let mut sig = Vec::new();
    for syncid in [0, input.get(1).copied().unwrap_or(0)] {
        let msg = match codec::decode(input, syncid) {
            Ok(m) => m,
            Err(e) => {
                sig.push(format!("{e:?}").len() as u64);
                continue;
            }
        };
        let counted = usize::from(input[4]);
        if msg.records.len() + msg.skipped as usize != counted {
            return Err(format!(
                "{} records and {} skipped, but the header counts {counted}",
                msg.records.len(),
                msg.skipped
            ));
        }
        sig.extend([msg.records.len() as u64, u64::from(msg.skipped)]);
        let wanted: Vec<Record> = msg.records.iter().map(comparable).collect();
        let mut again = Vec::new();
        for datagram in codec::encode(msg.syncid, &msg.records, 1500) {
            match codec::decode(&datagram, msg.syncid) {
                Ok(m) => again.extend(m.records.iter().map(comparable)),
                Err(e) => {
                    return Err(format!(
                        "records {wanted:?} encode to {datagram:02x?}, which decodes as {e:?}"
                    ));
                }
            }
        }
        if again != wanted {
            return Err(format!(
                "records {wanted:?} come back as {again:?} after encoding"
            ));
        }
        for r in &msg.records {
            let c = syncd::records::conn_of(r);
            sig.push(u64::from(c.proto) << 8 | u64::from(c.template));
        }
    }
    Ok(super::signature(&sig))
}
