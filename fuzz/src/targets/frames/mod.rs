//! The XDP packet path through BPF_PROG_TEST_RUN. An input is a short sequence of frames (each
//! a big-endian u16 length, then the frame), run in order on the bed's interface after the
//! connection table was emptied; every run is checked by [`oracle`]: never forwarded when
//! malformed or invalid, every emitted frame well-formed with valid checksums, the verdict as
//! documented where the frame and the configuration decide it, the counters consistent with
//! the verdict, and the connection table's fill count equal to its entries.
//!
//! The mutator knows the container: it changes one frame (bytes, or a header field followed by
//! length and checksum fix-ups half of the time, so mutations also reach deep into the path),
//! or the sequence (frames repeated, dropped, reordered, taken from another input).

pub mod bed;
pub mod oracle;
pub mod wire;

use crate::engine::{Outcome, Rng, Target, mutate_once};

pub const TARGET: Target = Target {
    name: "frames",
    mutator: mutate,
    dict: &[
        &[0x81, 0x00, 0x00, 0x07],
        &[0x08, 0x00],
        &[0x86, 0xdd],
        &[198, 18, 100, 1],
        &[198, 18, 2, 2],
        &[198, 18, 1, 2],
        &[0x00, 0x50],
        &[0x1f, 0x90],
        &[0x02],
        &[0x12],
        &[0x10],
        &[0x11],
        &[0x04],
        &[0x01, 0x01, 0x08, 0x0a],
    ],
    max_len: 8 * 1600,
    secs: 40.0,
    seeds: &[],
};

/// At most this many frames per input, each at most this long (test runs take a page).
const MAX_FRAMES: usize = 8;
const MAX_FRAME: usize = 1500;

/// The frames of an input (a cut-off last frame is left out).
pub fn frames(input: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while out.len() < MAX_FRAMES && at + 2 <= input.len() {
        let len = usize::from(u16::from_be_bytes([input[at], input[at + 1]]));
        let Some(f) = input.get(at + 2..at + 2 + len) else {
            break;
        };
        out.push(f);
        at += 2 + len;
    }
    out
}

/// An input made of `frames`.
pub fn container<F: AsRef<[u8]>>(frames: &[F]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        let f = &f.as_ref()[..f.as_ref().len().min(MAX_FRAME)];
        out.extend_from_slice(&(f.len() as u16).to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// Offsets of header fields worth setting on their own: (offset, width).
fn fields(frame: &[u8]) -> Vec<(usize, usize)> {
    let mut out = vec![(12, 2)];
    let Ok((l3, ethertype)) = wire::l3(frame) else {
        return out;
    };
    if ethertype == 0x0800 {
        // version/IHL, TOS, total length, id, fragment, TTL, protocol, addresses
        out.extend([
            (l3, 1),
            (l3 + 1, 1),
            (l3 + 2, 2),
            (l3 + 4, 2),
            (l3 + 6, 2),
            (l3 + 8, 1),
        ]);
        out.extend([(l3 + 9, 1), (l3 + 12, 4), (l3 + 16, 4)]);
    } else {
        // version/class, payload length, next header, hop limit, address words
        out.extend([
            (l3, 1),
            (l3 + 4, 2),
            (l3 + 6, 1),
            (l3 + 7, 1),
            (l3 + 20, 4),
            (l3 + 36, 4),
        ]);
    }
    if let wire::Parsed::Transport(ip, _) | wire::Parsed::Other(ip) = wire::parse(frame) {
        let l4 = ip.l4_off;
        // ports, sequence, acknowledgement, data offset, flags, window, urgent; options
        out.extend([(l4, 2), (l4 + 2, 2), (l4 + 4, 4), (l4 + 8, 4), (l4 + 12, 1)]);
        out.extend([
            (l4 + 13, 1),
            (l4 + 14, 2),
            (l4 + 18, 2),
            (l4 + 20, 1),
            (l4 + 21, 1),
        ]);
    }
    out
}

fn mutate_frame(rng: &mut Rng, frame: &mut Vec<u8>, other: &[u8], dict: &[&[u8]]) {
    if rng.one_in(2) {
        let fs = fields(frame);
        let (at, width) = *rng.pick(&fs);
        if at + width <= frame.len() {
            let v = if rng.one_in(2) {
                rng.next_u64() as u32
            } else {
                *rng.pick(&[
                    0u32, 1, 2, 5, 6, 17, 0x7f, 0x80, 0xff, 0xffff, 0x10, 0x12, 0x14,
                ])
            };
            let bytes = v.to_be_bytes();
            frame[at..at + width].copy_from_slice(&bytes[4 - width..]);
        }
    } else {
        for _ in 0..1 + rng.below(3) {
            mutate_once(rng, frame, other, dict);
        }
    }
    if rng.one_in(2) {
        wire::fix(frame, rng.one_in(3));
    }
}

pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8], dict: &[&[u8]]) -> Vec<u8> {
    let mut fs: Vec<Vec<u8>> = frames(input).into_iter().map(<[u8]>::to_vec).collect();
    let others: Vec<&[u8]> = frames(other);
    if fs.is_empty() {
        fs.push(others.first().map(|f| f.to_vec()).unwrap_or_default());
    }
    for _ in 0..1 + rng.below(3) {
        let n = fs.len();
        let i = rng.below(n);
        match rng.below(10) {
            0 if n < MAX_FRAMES => {
                let f = fs[i].clone();
                fs.insert(rng.below(n + 1), f);
            }
            1 if n > 1 => {
                fs.remove(i);
            }
            2 if n > 1 => fs.swap(i, rng.below(n)),
            3 if n < MAX_FRAMES && !others.is_empty() => {
                fs.insert(rng.below(n + 1), rng.pick(&others).to_vec());
            }
            _ => {
                let o = others.first().copied().unwrap_or_default();
                mutate_frame(rng, &mut fs[i], o, dict);
            }
        }
    }
    container(&fs)
}

/// Runs every frame of an input on the bed and checks each run.
pub fn run(bed: &mut bed::Bed, input: &[u8]) -> Outcome {
    bed.clear()?;
    let mut sig = Vec::new();
    for (n, frame) in frames(input).into_iter().enumerate() {
        if frame.len() < 14 {
            // BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet header.
            continue;
        }
        let parsed = wire::parse(frame);
        let had_conn = match &parsed {
            wire::Parsed::Transport(ip, l4) if ip.frag != wire::Frag::Later => bed.has_conn(
                &bed::flow_key(&ip.src, &ip.dst, l4.sport, l4.dport, ip.proto),
            ),
            _ => false,
        };
        let before = bed.tb.dp.counters().map_err(|e| e.to_string())?;
        let r = bed
            .tb
            .runner
            .run_on(frame, bed.ifindex)
            .map_err(|e| format!("frame {n}: {e}"))?;
        let after = bed.tb.dp.counters().map_err(|e| e.to_string())?;
        let moved: Vec<u32> = (0..after.len())
            .filter(|&i| after[i] > before.get(i).copied().unwrap_or(0))
            .map(|i| i as u32)
            .collect();
        let run = oracle::Run {
            input: frame,
            parsed: &parsed,
            had_conn,
            action: r.action,
            output: &r.packet,
            moved: &moved,
        };
        oracle::check(bed, &run).map_err(|why| {
            format!(
                "frame {n}: {why}\n  in:  {}\n  out: {}\n  counters moved: {moved:?}",
                hex(frame),
                hex(&r.packet)
            )
        })?;
        let (entries, counted) = bed.fill();
        if entries != counted {
            return Err(format!(
                "frame {n}: the connection table holds {entries} entries, its fill count says \
                 {counted}\n  in: {}",
                hex(frame)
            ));
        }
        let mut s = vec![u64::from(r.action), u64::from(r.packet != frame)];
        s.extend(moved.iter().map(|&m| u64::from(m)));
        sig.push(super::signature(&s));
    }
    sig.sort_unstable();
    sig.dedup();
    Ok(super::signature(&sig))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
