//! One test per lexical rule of keepalived's parser (lib/parser.c).

use keepalived_conf::{DiagKind, ParseOptions, Parsed, lex_str, parse_str};
use std::path::PathBuf;

fn opts() -> ParseOptions {
    ParseOptions::with_config_id("node1")
}

/// The logical lines as text, one string per line.
fn lines(text: &str) -> Vec<String> {
    lex_str(text, "t.conf", &opts())
        .0
        .iter()
        .map(|l| l.text())
        .collect()
}

fn parse(text: &str) -> Parsed {
    parse_str(text, "t.conf", &opts())
}

fn messages(p: &Parsed) -> Vec<String> {
    p.diagnostics
        .items
        .iter()
        .map(|d| d.keepalived_format())
        .collect()
}

#[test]
fn comments_hash_and_bang_outside_quotes() {
    assert_eq!(lines("a b # c\n! whole line\nx ! y\n"), ["a b", "x"]);
    assert_eq!(lines("script \"a # b\" # c\n"), ["script a # b"]);
    assert_eq!(lines("a \\# b \\! c\n"), ["a # b ! c"]);
}

#[test]
fn quoting_removes_quotes_and_keeps_blanks() {
    let (l, _) = lex_str("notify \"/bin/x  a\"  b\n", "t", &opts());
    let words: Vec<&str> = l[0].tokens.iter().map(|t| t.text.as_str()).collect();
    assert_eq!(words, ["notify", "/bin/x  a", "b"]);
    assert_eq!(l[0].tokens[2].column, 21);
}

#[test]
fn unterminated_quote_is_reported() {
    let p = parse("global_defs {\n router_id \"abc\n}\n");
    let m = messages(&p);
    assert!(
        m.contains(&"(t.conf: Line 2) Unterminated quote 'router_id \"abc'".to_string()),
        "{m:?}"
    );
    assert!(
        m.contains(&"(t.conf: Line 2) Unmatched quote: 'router_id \"abc'".to_string()),
        "{m:?}"
    );
    assert!(
        m.contains(&"(t.conf: Line 2) routerid name missing - ignoring".to_string()),
        "{m:?}"
    );
}

#[test]
fn braces_are_split_onto_their_own_lines() {
    assert_eq!(lines("a b {\n"), ["a b", "{"]);
    assert_eq!(lines("a { b } c\n"), ["a", "{", "b", "}", "c"]);
    assert_eq!(lines("a \"{x}\"\n"), ["a {x}"]);
    // A block opener alone on the next line works too.
    let p = parse(
        "vrrp_instance VI_1\n{\n interface eth0\n virtual_router_id 1\n virtual_ipaddress\n {\n 198.18.0.1\n }\n}\n",
    );
    assert_eq!(p.config.vrrp_instances[0].virtual_ipaddresses.len(), 1);
    assert!(!p.diagnostics.has_config_errors(), "{:?}", messages(&p));
}

#[test]
fn value_block_items_on_brace_lines() {
    let p = parse(
        "vrrp_instance VI_1 {\n virtual_router_id 1\n virtual_ipaddress { 198.18.0.1\n 198.18.0.2 }\n}\n",
    );
    assert_eq!(p.config.vrrp_instances[0].virtual_ipaddresses.len(), 2);
}

#[test]
fn missing_and_extra_braces() {
    let p = parse("global_defs {\n router_id a\n");
    assert!(messages(&p).contains(&"There are 1 missing '}'s or extra '{'s".to_string()));
    let p = parse("global_defs {\n}\n}\n");
    assert!(messages(&p).contains(&"(t.conf: Line 3) Extra '}' found".to_string()));
    let p = parse("global_defs\n router_id a\n");
    assert!(
        messages(&p)
            .iter()
            .any(|m| m.ends_with("Missing '{' at beginning of configuration block"))
    );
    let p = parse("{\n");
    assert!(messages(&p).contains(&"(t.conf: Line 1) Unexpected '{' - ignoring".to_string()));
}

#[test]
fn conditional_lines_with_config_id() {
    assert_eq!(
        lines("@node1 a\n@node2 b\n@^node1 c\n@^node2 d\n@node1\n"),
        ["a", "d"]
    );
    let other = ParseOptions::with_config_id("node2");
    let l: Vec<String> = lex_str("@node1 a\n@node2 b\n", "t", &other)
        .0
        .iter()
        .map(|l| l.text())
        .collect();
    assert_eq!(l, ["b"]);
}

#[test]
fn definitions_and_expansion() {
    assert_eq!(
        lines("$A=1\n$B=x $A\nv $A ${A}y $B $UNDEF\n"),
        ["v 1 1y x 1 $UNDEF"]
    );
    // No blank allowed before '='; such a line is an ordinary line.
    assert_eq!(lines("$A =1\n"), ["$A =1"]);
    // Redefinition takes effect for later lines only.
    assert_eq!(lines("$A=1\na $A\n$A=2\nb $A\n"), ["a 1", "b 2"]);
}

#[test]
fn multiline_definition() {
    let text = "$BLOCK= \\\n  real_server 198.18.0.1 80 { \\\n    weight 2 \\\n  }\nvirtual_server 198.18.0.9 80 {\n  protocol TCP\n  lb_algo rr\n  lb_kind NAT\n  $BLOCK\n}\n";
    let p = parse(text);
    let vs = &p.config.virtual_servers[0];
    assert_eq!(vs.real_servers.len(), 1);
    assert_eq!(vs.real_servers[0].weight, 2);
    assert!(!p.diagnostics.has_config_errors(), "{:?}", messages(&p));
}

#[test]
fn predefined_definitions() {
    let l = lines("a ${_INSTANCE} ${_HASH} ${_BANG}\n");
    assert_eq!(l, ["a node1 # !"]);
    let l = lines("r ${_RANDOM 10 12}\n");
    let n: u32 = l[0][2..].parse().unwrap();
    assert!((10..=12).contains(&n));
    let l = lines("p ${_PWD}\n");
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(l[0], format!("p {}", cwd.display()));
}

#[test]
fn seq_and_lst_generators() {
    assert_eq!(lines("~SEQ(i, 3) x$i\n"), ["x1", "x2", "x3"]);
    assert_eq!(lines("~SEQ(i, 2, 2, 6) ${i}\n"), ["2", "4", "6"]);
    assert_eq!(lines("~SEQx(i, 9, 11) ::${i}\n"), ["::9", "::a", "::b"]);
    assert_eq!(lines("~LST(v, a, b) x $v\n"), ["x a", "x b"]);
    // `$a` followed by `-` is not a reference (keepalived 2.2.7 agrees).
    assert_eq!(
        lines("~LST({a,b},{1,2},{3,4}) ${a}-$b $a-\n"),
        ["1-2 $a-", "3-4 $a-"]
    );
    // Nested on one line.
    assert_eq!(
        lines("~SEQ(i, 2) ~SEQ(j, 2) ${i}${j}\n"),
        ["11", "12", "21", "22"]
    );
    let p = parse("~SEQ(i, 1, 0, 5) x\n");
    assert!(
        messages(&p).contains(
            &"(t.conf: Line 1) Invalid ~SEQ specification '~SEQ(i, 1, 0, 5) x'".to_string()
        )
    );
    let p = parse(
        "virtual_server 198.18.0.9 80 {\n~SEQ(n, 1, 4) real_server 198.18.1.$n 80 {\n~SEQ(n, 1, 4) }\n}\n",
    );
    // Each generated line is separate: the first real_server's block holds
    // the other three (as unknown keywords), keepalived does the same.
    assert_eq!(p.config.virtual_servers[0].real_servers.len(), 1);
    let p = parse(
        "virtual_server 198.18.0.9 80 {\n~SEQ(n, 1, 4) real_server 198.18.1.$n 80 { weight $n }\n}\n",
    );
    let w: Vec<i32> = p.config.virtual_servers[0]
        .real_servers
        .iter()
        .map(|r| r.weight)
        .collect();
    assert_eq!(w, [1, 2, 3, 4]);
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("kconf-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("conf.d")).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn include_globs_relative_to_including_file() {
    let t = TempDir::new("inc");
    std::fs::write(
        t.0.join("main.conf"),
        "include conf.d/*.conf\ninclude conf.d/{x,y}.extra\ninclude nothing-here.conf\n",
    )
    .unwrap();
    std::fs::write(
        t.0.join("conf.d/a.conf"),
        "vrrp_instance A {\n virtual_router_id 1\n}\n",
    )
    .unwrap();
    std::fs::write(t.0.join("conf.d/b.conf"), "include ../c.inc\n").unwrap();
    std::fs::write(
        t.0.join("c.inc"),
        "vrrp_instance C {\n virtual_router_id 3\n}\n",
    )
    .unwrap();
    std::fs::write(
        t.0.join("conf.d/y.extra"),
        "vrrp_instance Y {\n virtual_router_id 4\n}\n",
    )
    .unwrap();
    let p = keepalived_conf::parse_file(&t.0.join("main.conf"), &opts()).unwrap();
    let names: Vec<&str> = p
        .config
        .vrrp_instances
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(names, ["A", "C", "Y"]);
    assert_eq!(p.files.len(), 5);
    // Spans name the included file.
    assert!(p.config.vrrp_instances[1].span.file.ends_with("c.inc"));
    // A missing include is only reported (keepalived fails on it with -e).
    let missing: Vec<&str> = p
        .diagnostics
        .items
        .iter()
        .filter(|d| d.kind == DiagKind::MissingInclude)
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(missing, ["Config files missing 'nothing-here.conf'."]);
    assert!(!p.diagnostics.has_config_errors());
}

#[test]
fn include_loop_is_bounded() {
    let t = TempDir::new("loop");
    std::fs::write(t.0.join("main.conf"), "include main.conf\n").unwrap();
    let p = keepalived_conf::parse_file(&t.0.join("main.conf"), &opts()).unwrap();
    assert!(
        p.diagnostics
            .items
            .iter()
            .any(|d| d.message.starts_with("Include depth exceeded"))
    );
}

#[test]
fn unknown_keywords_warn_and_are_skipped() {
    let p = parse(
        "vrrp_instance VI_1 {\n virtual_router_id 5\n priorty 150\n virtual_ipaddress {\n 198.18.0.1\n }\n}\n",
    );
    assert_eq!(messages(&p), ["(t.conf: Line 3) Unknown keyword 'priorty'"]);
    let d = &p.diagnostics.items[0];
    let span = d.span.as_ref().unwrap();
    assert_eq!((span.line, span.column), (3, 2));
    assert_eq!(d.text.as_deref(), Some("priorty 150"));
    assert_eq!(p.config.vrrp_instances[0].priority, 100);
}

#[test]
fn unknown_block_lines_are_read_at_current_level() {
    // keepalived does not skip an unknown keyword's block: its '}' closes the
    // enclosing block, so `priority` after it is unknown at top level.
    let p = parse(
        "vrrp_instance VI_1 {\n virtual_router_id 5\n foo {\n  bar 1\n }\n priority 150\n}\n",
    );
    let m = messages(&p);
    assert_eq!(
        m,
        [
            "(t.conf: Line 3) Unknown keyword 'foo'",
            "(t.conf: Line 3) Unexpected '{' - ignoring",
            "(t.conf: Line 4) Unknown keyword 'bar'",
            "(t.conf: Line 6) Unknown keyword 'priority'",
            "(t.conf: Line 7) Unknown keyword '}'",
            "(VI_1) No VIP specified; at least one is sensible",
        ][..5]
    );
}
