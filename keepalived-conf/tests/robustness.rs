//! Mutated fixture text must never make the lexer or parser panic.

use keepalived_conf::validate::{self, PermissiveEnvironment};
use keepalived_conf::{LexOptions, ParseOptions, parse_str};
use std::path::PathBuf;

/// xorshift64: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Fragments that exercise the lexer's special cases.
const SPICE: &[&str] = &[
    "{",
    "}",
    "\"",
    "#",
    "!",
    "\\",
    "$",
    "${",
    "$X=",
    "$M= \\\n",
    "@",
    "@^",
    "~SEQ(i,",
    "~SEQx(i, 1, 3)",
    "~LST({a,b},{1,2})",
    ")",
    "include ",
    "includer /nonexistent",
    "\n",
    " ",
    "${_RANDOM 5}",
    "-",
    "/",
    ":",
    "999999999999999999999",
    "-1",
    "0.0000001",
    "nan",
    "\u{00e9}",
    "\0",
    "\r\n",
    "virtual_server ",
    "real_server ",
    "vrrp_instance ",
    "TCP_CHECK",
    "url",
    "fwmark",
    "group",
    "~SEQ(i, 1, 40) x $i",
    "[",
    "]",
    "::",
];

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut s: Vec<char> = text.chars().collect();
    for _ in 0..1 + rng.below(8) {
        let pos = rng.below(s.len() + 1);
        match rng.below(4) {
            0 if !s.is_empty() => {
                let end = (pos + rng.below(20)).min(s.len());
                s.drain(pos.min(end)..end);
            }
            1 => {
                let frag = SPICE[rng.below(SPICE.len())];
                for (i, c) in frag.chars().enumerate() {
                    s.insert((pos + i).min(s.len()), c);
                }
            }
            2 if !s.is_empty() => {
                let p = pos.min(s.len() - 1);
                s[p] = char::from_u32(rng.below(128) as u32).unwrap_or('x');
            }
            _ => {
                // Duplicate a slice (builds deep nesting and repeats).
                let a = pos.min(s.len());
                let b = (a + rng.below(200)).min(s.len());
                let chunk: Vec<char> = s[a..b].to_vec();
                for (i, c) in chunk.into_iter().enumerate() {
                    s.insert(a + i, c);
                }
            }
        }
    }
    s.into_iter().collect()
}

fn fixtures() -> Vec<String> {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../compat-fixtures");
    let mut out = Vec::new();
    for d in ["keepalived", "alibaba-keepalived"] {
        if let Ok(rd) = std::fs::read_dir(base.join(d)) {
            for e in rd.flatten() {
                if let Ok(t) = std::fs::read_to_string(e.path()) {
                    out.push(t);
                }
            }
        }
    }
    out
}

#[test]
fn mutated_fixtures_never_panic() {
    let texts = fixtures();
    assert!(!texts.is_empty());
    let opts = ParseOptions {
        lex: LexOptions {
            config_id: "node".into(),
            random_seed: 7,
            max_lines: 20_000,
            max_include_depth: 4,
            follow_includes: false,
        },
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let iterations = 3000;
    for i in 0..iterations {
        let src = &texts[rng.below(texts.len())];
        let text = mutate(&mut rng, src);
        let result = std::panic::catch_unwind(|| {
            let mut p = parse_str(&text, "fuzz.conf", &opts);
            validate::check(&p.config, &PermissiveEnvironment, &mut p.diagnostics);
            let _ = keepalived_conf::dump::to_text(&p.config);
            let _ = keepalived_conf::dump::to_json(&p.config);
        });
        assert!(result.is_ok(), "iteration {i} panicked on:\n{text}");
    }
}

#[test]
fn pathological_inputs() {
    let opts = ParseOptions::with_config_id("n");
    let cases = [
        String::new(),
        "{".repeat(10_000),
        "}".repeat(10_000),
        "\"".repeat(3),
        "$A=$A$A\nx $A\n".to_string(),
        "$A=${B}\n$B=${A}\nx $A\n".to_string(),
        "~SEQ(i, 1, 9223372036854775807) x\n".to_string(),
        "~SEQ(i, -9223372036854775807, 9223372036854775807) x\n".to_string(),
        "~SEQ(i, 3)\n".to_string(),
        "~LST(\n".to_string(),
        "$M= \\\n\\\n\\\n".to_string(),
        "virtual_server 1.2.3.4 99999999 {\n}\n".to_string(),
        "vrrp_instance\n".to_string(),
        "virtual_server\n".to_string(),
        format!("{}\n", "a ".repeat(100_000)),
        "virtual_server_group g { 10.0.0.250-3 80 }\n".to_string(),
        "include /proc/self/fd/0/../..\n".to_string(),
    ];
    for c in cases {
        let p = parse_str(&c, "p.conf", &opts);
        let _ = keepalived_conf::dump::to_json(&p.config);
    }
}
