//! The bounded mutation engine: stable Rust, no instrumentation. A run replays a target's corpus
//! (every checked-in entry is a regression test), then mutates corpus entries with a seeded
//! generator until its time budget is spent. Inputs whose behaviour signature (what the harness
//! reports: a verdict, an error kind) was not seen before join the in-memory pool, so the
//! mutations move towards inputs that do something new even without coverage feedback.
//!
//! A failure — a panic, a violated property, or an input that takes longer than the watchdog
//! allows — is shrunk, written to `target/fuzz-artifacts/<target>/`, and reported with what to do
//! with it: once fixed, the input goes into `fuzz/corpus/<target>/` and is replayed forever.
//!
//! Knobs (environment): `XLVS_FUZZ_SECS` (budget per target, overrides the target's default),
//! `XLVS_FUZZ_SEED` (another sequence of mutations), `XLVS_FUZZ_RUNS` (stop after that many).

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one input did: `Ok(signature)` (any value that tells behaviours apart), or the property
/// it violated.
pub type Outcome = Result<u64, String>;

/// Runs one input. Stateful harnesses (a loaded data plane) reset what they need per input, so a
/// failing input fails again on its own.
pub trait Harness {
    fn run(&mut self, input: &[u8]) -> Outcome;
}

impl<F: FnMut(&[u8]) -> Outcome> Harness for F {
    fn run(&mut self, input: &[u8]) -> Outcome {
        self(input)
    }
}

/// Makes one mutated input from `input`, with `other` (another pool entry) for splicing.
pub type Mutator = fn(&mut Rng, &[u8], &[u8], &[&[u8]]) -> Vec<u8>;

/// One fuzz target: its corpus directory name, how its inputs are mutated, and its budget.
pub struct Target {
    pub name: &'static str,
    pub mutator: Mutator,
    /// Tokens the mutators insert (keywords, options, interesting numbers).
    pub dict: &'static [&'static [u8]],
    /// Inputs are cut to this length.
    pub max_len: usize,
    /// Seconds of mutation in CI (`XLVS_FUZZ_SECS` overrides).
    pub secs: f64,
    /// More seed directories (relative to the repository) whose files join the corpus: real
    /// artefacts kept elsewhere in the repo, read as they are.
    pub seeds: &'static [&'static str],
}

pub use xlvs_tests::rng::Rng;

/// FNV-1a: names to seeds, inputs to artifact names.
pub fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Values that sit on boundaries, for bytes and 16/32-bit fields.
const INTERESTING: [u32; 12] = [
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
];

/// One byte-level change: bit flips, boundary values, arithmetic, inserted/removed/duplicated
/// ranges, splices from `other`, dictionary tokens.
pub fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8], dict: &[&[u8]]) {
    let len = data.len();
    let pos = rng.below(len.max(1));
    match rng.below(11) {
        0 if len > 0 => data[pos] ^= 1 << rng.below(8),
        1 if len > 0 => data[pos] = *rng.pick(&INTERESTING) as u8,
        2 if len > 1 => {
            let v = *rng.pick(&INTERESTING) as u16;
            let at = pos.min(len - 2);
            let bytes = if rng.one_in(2) {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            data[at..at + 2].copy_from_slice(&bytes);
        }
        3 if len > 3 => {
            let at = pos.min(len - 4);
            data[at..at + 4].copy_from_slice(&rng.pick(&INTERESTING).to_be_bytes());
        }
        4 if len > 0 => {
            let delta = rng.below(35) as u8;
            data[pos] = if rng.one_in(2) {
                data[pos].wrapping_add(delta)
            } else {
                data[pos].wrapping_sub(delta)
            };
        }
        5 => {
            let n = 1 + rng.below(16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            data.splice(pos.min(len)..pos.min(len), bytes);
        }
        6 if len > 0 => {
            let end = (pos + 1 + rng.below(16.min(len))).min(len);
            data.drain(pos..end);
        }
        7 if len > 0 => {
            let end = (pos + 1 + rng.below(64)).min(len);
            let chunk = data[pos..end].to_vec();
            let at = rng.below(len + 1);
            data.splice(at..at, chunk);
        }
        8 if !other.is_empty() => {
            let from = rng.below(other.len());
            let end = (from + 1 + rng.below(64)).min(other.len());
            let at = rng.below(len + 1);
            if rng.one_in(2) {
                data.splice(at..at, other[from..end].iter().copied());
            } else {
                let over = (at + end - from).min(len);
                data.splice(at..over, other[from..end].iter().copied());
            }
        }
        9 if !dict.is_empty() => {
            let tok = rng.pick(dict);
            let at = rng.below(len + 1);
            data.splice(at..at, tok.iter().copied());
        }
        10 if len > 0 => data.truncate(rng.below(len)),
        _ => data.push(rng.next_u64() as u8),
    }
}

/// The byte mutator: one to four stacked changes.
pub fn mutate_bytes(rng: &mut Rng, input: &[u8], other: &[u8], dict: &[&[u8]]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        mutate_once(rng, &mut data, other, dict);
    }
    data
}

/// The text mutator: line and word changes (lines dropped, repeated, swapped, taken from another
/// input; words replaced by dictionary tokens), with byte changes now and then.
pub fn mutate_text(rng: &mut Rng, input: &[u8], other: &[u8], dict: &[&[u8]]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = input.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    let others: Vec<&[u8]> = other.split(|b| *b == b'\n').collect();
    for _ in 0..1 + rng.below(4) {
        let n = lines.len();
        let at = rng.below(n);
        match rng.below(8) {
            0 if n > 1 => {
                lines.remove(at);
            }
            1 => {
                let l = lines[at].clone();
                lines.insert(at, l);
            }
            2 if n > 1 => {
                let b = rng.below(n);
                lines.swap(at, b);
            }
            3 => lines.insert(at, rng.pick(&others).to_vec()),
            4 if !dict.is_empty() => {
                // Replace one word of the line with a token.
                let line = lines[at].clone();
                let words: Vec<&[u8]> = line.split(|b| *b == b' ' || *b == b'\t').collect();
                let w = rng.below(words.len());
                let mut out = Vec::new();
                for (i, word) in words.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    let chosen: &[u8] = if i == w {
                        dict[rng.below(dict.len())]
                    } else {
                        word
                    };
                    out.extend_from_slice(chosen);
                }
                lines[at] = out;
            }
            5 if !dict.is_empty() => {
                let tok = rng.pick(dict).to_vec();
                let l = &mut lines[at];
                let p = rng.below(l.len() + 1);
                l.splice(p..p, tok);
            }
            _ => mutate_once(rng, &mut lines[at], other, dict),
        }
    }
    lines.join(&b'\n')
}

/// A failed input, shrunk, with what it violated.
#[derive(Debug)]
pub struct Failure {
    pub input: Vec<u8>,
    pub message: String,
    /// Where it came from: a corpus file, or mutation number N.
    pub origin: String,
}

/// What a run did.
#[derive(Debug)]
pub struct Report {
    pub replayed: usize,
    pub runs: u64,
    pub behaviours: usize,
    pub elapsed: Duration,
}

/// Runs `input` once, turning a panic into a violation.
fn run_one(h: &mut dyn Harness, input: &[u8]) -> Outcome {
    match catch_unwind(AssertUnwindSafe(|| h.run(input))) {
        Ok(r) => r,
        Err(p) => Err(format!("panic: {}", panic_text(&p))),
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string payload)".into())
}

/// Removes chunks while the input still fails (any violation), for at most `time`.
fn shrink(h: &mut dyn Harness, input: Vec<u8>, time: Duration) -> Vec<u8> {
    let deadline = Instant::now() + time;
    let mut cur = input;
    let mut chunk = (cur.len() / 2).max(1);
    loop {
        let mut i = 0;
        let mut changed = false;
        while i < cur.len() && Instant::now() < deadline {
            let mut cand = cur[..i].to_vec();
            cand.extend_from_slice(&cur[(i + chunk).min(cur.len())..]);
            if run_one(h, &cand).is_err() {
                cur = cand;
                changed = true;
            } else {
                i += chunk;
            }
        }
        if Instant::now() >= deadline || (chunk == 1 && !changed) {
            return cur;
        }
        if !changed {
            chunk /= 2;
        }
    }
}

/// Where a target's checked-in corpus lives.
pub fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

/// Where failing inputs are written (never in the source tree).
pub fn artifact_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/fuzz-artifacts")
        .join(target)
}

/// The corpus of `target` (its own directory, then its seed directories), sorted by name.
pub fn load_corpus(target: &Target) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dirs =
        std::iter::once(corpus_dir(target.name)).chain(target.seeds.iter().map(|d| root.join(d)));
    let mut out = Vec::new();
    for dir in dirs {
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            if e.file_type()?.is_file() {
                let name = e
                    .path()
                    .strip_prefix(&root)
                    .unwrap_or(&e.path())
                    .display()
                    .to_string();
                out.push((name, std::fs::read(e.path())?));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn env_num<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok()?.parse().ok()
}

/// What the watchdog sees of the run.
struct Progress {
    runs: AtomicU64,
    current: Mutex<Vec<u8>>,
    done: AtomicBool,
}

/// One input must finish within this (a loaded CI machine included): longer is a hang.
const HANG: Duration = Duration::from_secs(30);

/// A thread that watches `progress`: when one input runs longer than [`HANG`], it saves that
/// input and aborts the process (the stuck harness cannot be unwound from outside).
fn watchdog(name: &'static str, progress: Arc<Progress>) {
    std::thread::spawn(move || {
        let mut last = (u64::MAX, Instant::now());
        while !progress.done.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            let runs = progress.runs.load(Ordering::Relaxed);
            if runs != last.0 {
                last = (runs, Instant::now());
            } else if last.1.elapsed() > HANG {
                let input = progress
                    .current
                    .lock()
                    .map(|c| c.clone())
                    .unwrap_or_default();
                eprintln!(
                    "{}",
                    report_failure(
                        name,
                        &Failure {
                            input,
                            message: format!("hang: one input ran longer than {HANG:?}"),
                            origin: format!("run {runs}"),
                        }
                    )
                );
                std::process::abort();
            }
        }
    });
}

/// Fuzzes `target` with `h` on the calling thread (a harness may have bound it to a namespace).
/// Returns the report, or the first failure (shrunk).
pub fn fuzz(target: &Target, h: &mut dyn Harness) -> Result<Report, Failure> {
    let corpus = load_corpus(target).unwrap_or_default();
    assert!(
        !corpus.is_empty(),
        "{}: no corpus in {}",
        target.name,
        corpus_dir(target.name).display()
    );
    let secs = env_num::<f64>("XLVS_FUZZ_SECS").unwrap_or(target.secs);
    let max_runs = env_num::<u64>("XLVS_FUZZ_RUNS").unwrap_or(u64::MAX);
    let seed = env_num::<u64>("XLVS_FUZZ_SEED").unwrap_or_else(|| fnv(target.name.as_bytes()));
    let progress = Arc::new(Progress {
        runs: AtomicU64::new(0),
        current: Mutex::new(Vec::new()),
        done: AtomicBool::new(false),
    });
    watchdog(target.name, progress.clone());
    let _done = Done(&progress);
    let publish = |input: &[u8]| {
        *progress.current.lock().unwrap_or_else(|e| e.into_inner()) = input.to_vec();
        progress.runs.fetch_add(1, Ordering::Relaxed);
    };
    let start = Instant::now();
    let mut seen = HashSet::new();
    for (name, input) in &corpus {
        publish(input);
        match run_one(h, input) {
            Ok(sig) => {
                seen.insert(sig);
            }
            Err(message) => {
                return Err(Failure {
                    input: input.clone(),
                    message,
                    origin: format!("corpus file {name}"),
                });
            }
        }
    }
    let mut pool: Vec<Vec<u8>> = corpus.into_iter().map(|(_, i)| i).collect();
    let replayed = pool.len();
    let mut rng = Rng::new(seed);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut runs = 0u64;
    while runs < max_runs && Instant::now() < deadline {
        let a = rng.below(pool.len());
        let b = rng.below(pool.len());
        let mut input = (target.mutator)(&mut rng, &pool[a], &pool[b], target.dict);
        input.truncate(target.max_len);
        publish(&input);
        runs += 1;
        match run_one(h, &input) {
            Ok(sig) => {
                if seen.insert(sig) && pool.len() < 4096 {
                    pool.push(input);
                }
            }
            Err(first) => {
                let input = shrink(h, input, Duration::from_secs(10));
                let message = run_one(h, &input).err().unwrap_or(first);
                return Err(Failure {
                    input,
                    message,
                    origin: format!("mutation {runs} (seed {seed})"),
                });
            }
        }
    }
    Ok(Report {
        replayed,
        runs,
        behaviours: seen.len(),
        elapsed: start.elapsed(),
    })
}

/// Stops the watchdog when the run ends, however it ends.
struct Done<'a>(&'a Progress);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.done.store(true, Ordering::Relaxed);
    }
}

/// Saves the failing input under [`artifact_dir`] and says what happened and what to do.
fn report_failure(name: &str, f: &Failure) -> String {
    let dir = artifact_dir(name);
    let path = dir.join(format!("{:016x}", fnv(&f.input)));
    let saved = std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::write(&path, &f.input))
        .map(|_| path.display().to_string())
        .unwrap_or_else(|e| format!("(not saved: {e})"));
    format!(
        "{name}: {msg}\n  from {origin}; input ({len} bytes) saved to {saved}\n  \
         once fixed, add it to {corpus} (replayed on every run)\n  input: {preview}",
        msg = f.message,
        origin = f.origin,
        len = f.input.len(),
        corpus = corpus_dir(name).display(),
        preview = preview(&f.input),
    )
}

/// Runs `target` with `h`, prints its report, and panics on a failure with the saved input.
pub fn check(target: &Target, h: &mut dyn Harness) {
    match fuzz(target, h) {
        Ok(r) => println!(
            "{}: {} corpus inputs replayed, {} mutations in {:.1?}, {} behaviours",
            target.name, r.replayed, r.runs, r.elapsed, r.behaviours
        ),
        Err(f) => panic!("{}", report_failure(target.name, &f)),
    }
}

/// The input as text when it is mostly text, else hex (first 512 bytes).
pub fn preview(input: &[u8]) -> String {
    let cut = &input[..input.len().min(512)];
    let printable = cut
        .iter()
        .filter(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
        .count();
    if printable * 10 >= cut.len() * 9 {
        format!("{:?}", String::from_utf8_lossy(cut))
    } else {
        cut.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinking_keeps_the_failure_and_drops_the_rest() {
        let mut h = |i: &[u8]| -> Outcome {
            if i.windows(3).any(|w| w == b"BAD") {
                Err("found BAD".into())
            } else {
                Ok(0)
            }
        };
        let input = b"xxxxxxxxxxxxBADyyyyyyyyyyyyyyyy".to_vec();
        assert_eq!(shrink(&mut h, input, Duration::from_secs(5)), b"BAD");
    }

    #[test]
    fn mutators_stay_within_bounds_on_empty_and_tiny_inputs() {
        let mut rng = Rng::new(1);
        for _ in 0..10_000 {
            let _ = mutate_bytes(&mut rng, &[], &[], &[b"tok"]);
            let _ = mutate_bytes(&mut rng, &[1], &[2, 3], &[]);
            let _ = mutate_text(&mut rng, b"", b"a b\nc", &[b"x"]);
        }
    }
}
