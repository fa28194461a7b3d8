//! keepalived.conf through the lexer, parser, post-parse validation and both dumps (includes
//! recognised, never read). Properties: no panic, no hang; every diagnostic that names a line
//! of the file names one it has.

use keepalived_conf::validate::{self, PermissiveEnvironment};
use keepalived_conf::{LexOptions, ParseOptions, parse_str};

use crate::engine::{Outcome, Target, mutate_text};

pub const TARGET: Target = Target {
    name: "keepalived_conf",
    mutator: mutate_text,
    dict: &[
        b"{",
        b"}",
        b"\"",
        b"#",
        b"!",
        b"\\",
        b"$",
        b"${",
        b"$X=",
        b"$M= \\\n",
        b"@",
        b"@^",
        b"~SEQ(i,",
        b"~SEQx(i, 1, 3)",
        b"~LST({a,b},{1,2})",
        b")",
        b"include ",
        b"\n",
        b"${_RANDOM 5}",
        b"999999999999999999999",
        b"-1",
        b"0.0000001",
        b"nan",
        b"\xc3\xa9",
        b"\0",
        b"\r\n",
        b"virtual_server ",
        b"real_server ",
        b"vrrp_instance ",
        b"TCP_CHECK",
        b"HTTP_GET",
        b"url",
        b"fwmark",
        b"group",
        b"~SEQ(i, 1, 40) x $i",
        b"[",
        b"]",
        b"::",
        b"198.18.0.1",
        b"2001:db8::1",
        b"198.18.0.1-9",
        b"virtual_server_group",
        b"@low",
        b"track_script",
        b"notify_master",
        b"vrrp_sync_group",
        b"lvs_method NAT",
        b"lb_algo rr",
        b"virtual_ipaddress",
        b"priority 255",
        b"weight -300",
    ],
    max_len: 64 * 1024,
    secs: 15.0,
    seeds: &[
        "compat-fixtures/keepalived",
        "compat-fixtures/alibaba-keepalived",
    ],
};

pub fn run(input: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(input);
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
    // A file that does not end in a newline still has its last line.
    let lines = text.lines().count().max(1) as u32;
    let mut sig = vec![
        p.config.virtual_servers.len().min(4) as u64,
        p.config.vrrp_instances.len().min(4) as u64,
    ];
    for d in &p.diagnostics.items {
        if let Some(span) = &d.span
            && &*span.file == "fuzz.conf"
            && !(1..=lines).contains(&span.line)
        {
            return Err(format!(
                "diagnostic `{}` names line {} of a {lines}-line file",
                d.message, span.line
            ));
        }
        sig.push(d.kind as u64);
    }
    sig.sort_unstable();
    sig.dedup();
    Ok(super::signature(&sig))
}
