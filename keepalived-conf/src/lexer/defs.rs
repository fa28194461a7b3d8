//! `$NAME=VALUE` definitions and `$NAME` / `${NAME}` expansion.
//!
//! Semantics follow keepalived's `check_definition` / `replace_param`: the
//! replaced text is rescanned (definitions are resolved at use time, so they
//! may refer to each other), unknown names stay literal, a multi-line
//! definition is only expanded when its reference ends the line.

use nom::IResult;
use nom::bytes::complete::{take_while, take_while1};
use nom::character::complete::{char, satisfy};
use nom::combinator::{opt, recognize};
use nom::sequence::{delimited, pair, preceded};
use std::collections::HashMap;

/// Longest line an expansion may produce (guards against runaway recursion).
pub const MAX_EXPANDED_LINE: usize = 64 * 1024;
/// Most replacements done on one line.
const MAX_REPLACEMENTS: usize = 4096;

/// A user definition's value.
#[derive(Debug, Clone)]
pub struct Definition {
    /// Lines separated by `\n` when multi-line.
    pub value: String,
    /// It was written with continuation lines.
    pub multiline: bool,
}

/// The definitions seen so far plus the predefined ones.
#[derive(Debug)]
pub struct Definitions {
    user: HashMap<String, Definition>,
    /// The `-i` config id: selects `@ID` lines and is the value of `${_INSTANCE}`.
    pub config_id: String,
    rng: u64,
}

/// A parsed `$NAME=VALUE` line.
#[derive(Debug, PartialEq, Eq)]
pub struct DefinitionLine {
    /// The name after `$`.
    pub name: String,
    /// The text after `=`.
    pub value: String,
    /// The value ended with `\`: continuation lines follow.
    pub multiline: bool,
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn name(input: &str) -> IResult<&str, &str> {
    recognize(pair(satisfy(is_name_start), take_while(is_name_char)))(input)
}

/// Parses `$NAME=VALUE` (no blank allowed before `=`).
pub fn parse_definition(line: &str) -> Option<DefinitionLine> {
    let (rest, n) = preceded(char::<&str, nom::error::Error<&str>>('$'), name)(line).ok()?;
    let value = rest.strip_prefix('=')?;
    let value = value.trim_start_matches([' ', '\t']);
    if let Some(body) = value.strip_suffix('\\') {
        let body = body.trim_end_matches([' ', '\t']);
        let value = if body.is_empty() {
            String::new()
        } else {
            format!("{body}\n")
        };
        Some(DefinitionLine {
            name: n.to_string(),
            value,
            multiline: true,
        })
    } else {
        Some(DefinitionLine {
            name: n.to_string(),
            value: value.to_string(),
            multiline: false,
        })
    }
}

/// A reference found at a `$`: name, optional parameters, length in bytes.
#[derive(Debug, PartialEq, Eq)]
struct Reference<'a> {
    name: &'a str,
    params: Option<&'a str>,
    len: usize,
    braced: bool,
}

fn braced_ref(input: &str) -> IResult<&str, (&str, Option<&str>)> {
    delimited(
        char('{'),
        pair(
            name,
            opt(preceded(
                take_while1(|c| c == ' '),
                take_while1(|c: char| c == ' ' || c.is_ascii_digit()),
            )),
        ),
        char('}'),
    )(input)
}

fn parse_reference(after_dollar: &str) -> Option<Reference<'_>> {
    if let Ok((rest, (n, params))) = braced_ref(after_dollar) {
        // Parameters must not end with a blank (keepalived refuses that).
        if params.is_some_and(|p| p.ends_with(' ')) {
            return None;
        }
        return Some(Reference {
            name: n,
            params,
            len: after_dollar.len() - rest.len(),
            braced: true,
        });
    }
    let (rest, n) = name(after_dollar).ok()?;
    match rest.chars().next() {
        None | Some(' ' | '\t' | ',' | ')') => Some(Reference {
            name: n,
            params: None,
            len: n.len(),
            braced: false,
        }),
        _ => None,
    }
}

/// Result of expanding one line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The line after expansion.
    pub text: String,
    /// Further lines of a multi-line definition, to be read after `text`.
    pub extra_lines: Vec<String>,
    /// Some reference was replaced.
    pub changed: bool,
    /// Expansion stopped at [`MAX_EXPANDED_LINE`] or the replacement limit.
    pub too_long: bool,
}

impl Definitions {
    /// No user definitions yet; the predefined ones use `config_id` and a `${_RANDOM}` seed.
    pub fn new(config_id: String, seed: u64) -> Self {
        Definitions {
            user: HashMap::new(),
            config_id,
            rng: seed | 1,
        }
    }

    /// Defines (or redefines) `$name`.
    pub fn set(&mut self, name: &str, value: String, multiline: bool) {
        self.user
            .insert(name.to_string(), Definition { value, multiline });
    }

    /// The user definition `$name`, to append continuation lines to.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Definition> {
        self.user.get_mut(name)
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64: only needs to be unpredictable enough for ${_RANDOM}.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// The value of a reference, or None when it is not defined (or is a
    /// multi-line definition used where that is not allowed).
    fn lookup(&mut self, r: &Reference<'_>, pwd: &str, at_end: bool) -> Option<Definition> {
        if let Some(d) = self.user.get(r.name) {
            if r.params.is_some() || (d.multiline && !at_end) {
                return None;
            }
            return Some(d.clone());
        }
        let value = match r.name {
            "_PWD" if r.params.is_none() => pwd.to_string(),
            "_INSTANCE" if r.params.is_none() => self.config_id.clone(),
            "_HASH" if r.params.is_none() => "#".to_string(),
            "_BANG" if r.params.is_none() => "!".to_string(),
            "_RANDOM" => {
                let mut nums = r
                    .params
                    .unwrap_or("")
                    .split_whitespace()
                    .map(|n| n.parse::<u64>().unwrap_or(0));
                let min = nums.next().unwrap_or(0);
                let max = nums.next().unwrap_or(32767).max(min);
                let span = max - min + 1;
                (min + self.next_random() % span).to_string()
            }
            _ => return None,
        };
        Some(Definition {
            value,
            multiline: false,
        })
    }

    /// Replaces every known reference in `line`, rescanning replaced text.
    pub fn expand(&mut self, line: &str, pwd: &str) -> Expansion {
        let mut text = line.to_string();
        let mut out = Expansion::default();
        let mut pos = 0;
        let mut replacements = 0;
        while let Some(rel) = text.get(pos..).and_then(|t| t.find('$')) {
            let at = pos + rel;
            let after = &text[at + 1..];
            let Some(r) = parse_reference(after) else {
                pos = at + 1;
                continue;
            };
            let ref_end = at + 1 + r.len;
            let at_end = ref_end == text.len();
            let Some(def) = self.lookup(&r, pwd, at_end) else {
                pos = at + 1;
                continue;
            };
            let _ = r.braced;
            replacements += 1;
            if replacements > MAX_REPLACEMENTS {
                out.too_long = true;
                break;
            }
            out.changed = true;
            let replacement = if def.multiline {
                let mut lines = def.value.split('\n');
                let first = lines.next().unwrap_or("").to_string();
                // Lines of an inner multi-line expansion come before the
                // remaining lines of an outer one.
                let mut extra: Vec<String> = lines.map(str::to_string).collect();
                extra.append(&mut out.extra_lines);
                out.extra_lines = extra;
                first
            } else {
                def.value
            };
            if text.len() - (ref_end - at) + replacement.len() > MAX_EXPANDED_LINE {
                out.too_long = true;
                break;
            }
            let starts_seq = replacement.trim_start_matches([' ', '\t']).starts_with('~');
            text.replace_range(at..ref_end, &replacement);
            if starts_seq {
                break;
            }
            // Rescan from the start of the replaced text (recursive use).
            pos = at;
        }
        out.text = text;
        out
    }

    /// Whether no `$NAME=` line has been seen.
    pub fn is_empty_user(&self) -> bool {
        self.user.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs() -> Definitions {
        Definitions::new("host".into(), 42)
    }

    #[test]
    fn definition_lines() {
        let d = parse_definition("$A=1 2").unwrap();
        assert_eq!(
            (d.name.as_str(), d.value.as_str(), d.multiline),
            ("A", "1 2", false)
        );
        assert!(parse_definition("$A =1").is_none());
        assert!(parse_definition("$1A=1").is_none());
        let m = parse_definition("$M= \\").unwrap();
        assert!(m.multiline && m.value.is_empty());
        let m = parse_definition("$M=x  \\").unwrap();
        assert_eq!(m.value, "x\n");
    }

    #[test]
    fn expands_plain_braced_and_recursive() {
        let mut d = defs();
        d.set("A", "1".into(), false);
        d.set("B", "${A}-x $A-x".into(), false);
        assert_eq!(d.expand("v $A ${A}z $B $Q", "/").text, "v 1 1z 1-x $A-x $Q");
        assert_eq!(d.expand("$Az", "/").text, "$Az");
        assert_eq!(
            d.expand("i ${_INSTANCE} ${_HASH}${_BANG}", "/").text,
            "i host #!"
        );
        assert_eq!(d.expand("${_PWD}", "/etc").text, "/etc");
        let r: u32 = d.expand("${_RANDOM 5 7}", "/").text.parse().unwrap();
        assert!((5..=7).contains(&r));
    }

    #[test]
    fn self_reference_terminates() {
        let mut d = defs();
        d.set("A", "$A$A".into(), false);
        let e = d.expand("$A", "/");
        assert!(e.too_long);
    }

    #[test]
    fn multiline_only_at_end() {
        let mut d = defs();
        d.set("M", "a\nb\nc".into(), true);
        let e = d.expand("x $M", "/");
        assert_eq!(e.text, "x a");
        assert_eq!(e.extra_lines, ["b", "c"]);
        assert_eq!(d.expand("$M y", "/").text, "$M y");
    }
}
