//! Any bytes through the lexer, parser, validation and dumps: no panic.
//! Run: cd keepalived-conf/fuzz && cargo +nightly fuzz run parse -- -max_total_time=60
#![no_main]

use keepalived_conf::validate::{self, PermissiveEnvironment};
use keepalived_conf::{LexOptions, ParseOptions, parse_str};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let opts = ParseOptions {
        lex: LexOptions {
            config_id: "fuzz".into(),
            random_seed: 1,
            // Generators can multiply lines; keep each input cheap.
            max_lines: 20_000,
            max_include_depth: 2,
            follow_includes: false,
        },
    };
    let mut p = parse_str(&text, "fuzz.conf", &opts);
    validate::check(&p.config, &PermissiveEnvironment, &mut p.diagnostics);
    let _ = keepalived_conf::dump::to_text(&p.config);
    let _ = keepalived_conf::dump::to_json(&p.config);
});
