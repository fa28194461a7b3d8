//! Keyword-driven block parser over logical lines, reproducing keepalived's
//! `process_stream()`: `{` must follow a block keyword, `}` closes the
//! current block, unknown keywords are reported and skipped (their block, if
//! any, is *not* skipped — keepalived reads its lines at the current level).

mod checkers;
mod forks;
mod global;
mod lvs;
mod net;
mod route_bridge;
mod top;
mod track;
pub(crate) mod values;
mod vrrp;

use crate::diag::{DiagKind, Diagnostics, Severity};
use crate::lexer::Line;
use crate::model::{KeepalivedConfig, RawOption, Script};

pub use route_bridge::valid_community;
pub use top::{Process, parse_lines};

/// The keywords the parser accepts and keeps verbatim (`extra`), untyped.
pub fn kept_verbatim() -> impl Iterator<Item = &'static str> {
    global::OTHER_GLOBAL.iter().chain(vrrp::OTHER_VRRP).copied()
}

/// Cursor over the logical lines plus the diagnostics sink.
pub struct Parser<'a> {
    lines: &'a [Line],
    pos: usize,
    kw_level: usize,
    /// The line consumed last (after a block: its closing `}`).
    pub(crate) last_line: Option<&'a Line>,
    /// keepalived numbers rules without a preference downwards from 16384.
    pub(crate) next_rule_preference: u32,
    /// keepalived exits at a missing parameter: nothing after it is read.
    stopped: bool,
    /// The keepalived process this pass reads the file as (None: every keyword active).
    pub(crate) process: Option<top::Process>,
    /// keepalived's skip_sublevel: -1 waiting for the '{' of a skipped block, >0 its depth.
    skip_sublevel: i32,
    pub(crate) diags: &'a mut Diagnostics,
    pub(crate) config: KeepalivedConfig,
}

/// A keyword handler: returns false when the keyword is not known.
pub(crate) type Handler<'h, 'a> = dyn FnMut(&mut Parser<'a>, &'a Line) -> bool + 'h;

impl<'a> Parser<'a> {
    pub(crate) fn new(lines: &'a [Line], diags: &'a mut Diagnostics) -> Self {
        Parser {
            lines,
            pos: 0,
            kw_level: 0,
            last_line: None,
            next_rule_preference: 16384,
            stopped: false,
            process: None,
            skip_sublevel: 0,
            diags,
            config: KeepalivedConfig::default(),
        }
    }

    fn next_line(&mut self) -> Option<&'a Line> {
        if self.stopped {
            return None;
        }
        let l = self.lines.get(self.pos)?;
        self.pos += 1;
        self.last_line = Some(l);
        Some(l)
    }

    fn peek_line(&self) -> Option<&'a Line> {
        self.lines.get(self.pos)
    }

    /// keepalived's process_stream for one block level.
    pub(crate) fn run_block(&mut self, mut need_bob: bool, handler: &mut Handler<'_, 'a>) {
        while let Some(line) = self.next_line() {
            let first = line.first();
            if self.skipping(line) {
                continue;
            }
            if need_bob {
                need_bob = false;
                if first == "{" && self.kw_level > 0 {
                    continue;
                }
                self.warn(
                    DiagKind::Braces,
                    line,
                    "Missing '{' at beginning of configuration block",
                );
            } else if first == "{" {
                self.warn(DiagKind::Braces, line, "Unexpected '{' - ignoring");
                continue;
            }
            if first == "}" && self.kw_level > 0 {
                return;
            }
            if !handler(self, line) {
                self.unknown(line);
            }
        }
    }

    /// keepalived's skip_sublevel handling: a block whose keyword is inactive in this process
    /// is skipped by counting braces (so a missing '{' shifts where the skip ends).
    fn skipping(&mut self, line: &Line) -> bool {
        if self.skip_sublevel == -1 {
            if line.first() == "{" {
                self.skip_sublevel = 1;
                return true;
            }
            self.skip_sublevel = 0;
        }
        if self.skip_sublevel == 0 {
            return false;
        }
        for t in &line.tokens {
            match t.text.as_str() {
                "{" => self.skip_sublevel += 1,
                "}" => {
                    self.skip_sublevel -= 1;
                    if self.skip_sublevel == 0 {
                        break;
                    }
                }
                _ => {}
            }
        }
        true
    }

    /// Starts skipping the block of an inactive keyword.
    pub(crate) fn skip_inactive(&mut self, line: &Line) {
        self.skip_sublevel = if line.tokens.last().is_some_and(|t| t.text == "{") {
            1
        } else {
            -1
        };
    }

    /// Parses the `{ … }` block that follows a block keyword.
    pub(crate) fn sub_block(&mut self, handler: &mut Handler<'_, 'a>) {
        self.kw_level += 1;
        self.run_block(true, handler);
        self.kw_level -= 1;
    }

    /// keepalived's skip_block(): drops the following `{ … }` entirely.
    pub(crate) fn skip_block(&mut self) {
        if self.peek_line().map(Line::first) != Some("{") {
            return;
        }
        let mut depth = 0usize;
        while let Some(l) = self.next_line() {
            match l.first() {
                "{" => depth += 1,
                "}" => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }

    /// A block we accept without typing it: collected verbatim, no warnings.
    pub(crate) fn raw_block(&mut self) -> Vec<RawOption> {
        let mut out = Vec::new();
        self.sub_block(&mut |p: &mut Parser<'a>, l: &'a Line| {
            let opt = p.raw_option(l, false);
            out.push(opt);
            true
        });
        out
    }

    /// The line as a RawOption; with `block`, also reads its `{ … }`.
    pub(crate) fn raw_option(&mut self, l: &Line, block: bool) -> RawOption {
        let has_block = block || self.peek_line().map(Line::first) == Some("{");
        RawOption {
            keyword: l.first().to_string(),
            args: l.args().map(str::to_string).collect(),
            span: l.span.clone(),
            block: if has_block {
                Some(self.raw_block())
            } else {
                None
            },
        }
    }

    /// keepalived's alloc_value_block(): the item lines of a `{ … }` list.
    pub(crate) fn value_block(&mut self, kw: &'a Line) -> Vec<&'a Line> {
        self.value_block_after(kw, 1)
    }

    /// A value block whose keyword line has `words` words (e.g. a name).
    pub(crate) fn value_block_after(&mut self, kw: &'a Line, words: usize) -> Vec<&'a Line> {
        if kw.len() > words {
            self.warn(
                DiagKind::InvalidValue,
                kw,
                format!(
                    "Block {} has extra parameters {} ...",
                    kw.first(),
                    kw.word(words).unwrap_or("")
                ),
            );
        }
        let mut items = Vec::new();
        let mut need_bob = true;
        while let Some(l) = self.next_line() {
            if need_bob {
                need_bob = false;
                if l.first() == "{" {
                    continue;
                }
                self.diags.info(
                    DiagKind::Braces,
                    Some(&l.span),
                    format!("'{{' missing from beginning of block {}", kw.first()),
                );
            }
            if l.first() == "}" {
                break;
            }
            items.push(l);
        }
        items
    }

    /// keepalived's read_value_block(): all words of a `{ … }` list.
    pub(crate) fn value_words(&mut self, kw: &'a Line) -> Vec<String> {
        self.value_block(kw)
            .into_iter()
            .flat_map(|l| l.tokens.iter().map(|t| t.text.clone()))
            .collect()
    }

    pub(crate) fn warn(&mut self, kind: DiagKind, line: &Line, message: impl Into<String>) {
        self.diags.push(
            Severity::Warning,
            kind,
            Some(&line.span),
            message,
            Some(&line.text()),
        );
    }

    pub(crate) fn warn_at(
        &mut self,
        kind: DiagKind,
        line: &Line,
        word: usize,
        message: impl Into<String>,
    ) {
        let span = line.span_of(word);
        self.diags.push(
            Severity::Warning,
            kind,
            Some(&span),
            message,
            Some(&line.text()),
        );
    }

    pub(crate) fn unknown(&mut self, line: &Line) {
        self.warn(
            DiagKind::UnknownKeyword,
            line,
            format!("Unknown keyword '{}'", line.first()),
        );
    }

    /// Word `i`, or keepalived's fatal "missing a parameter" error.
    pub(crate) fn arg(&mut self, line: &'a Line, i: usize) -> Option<&'a str> {
        if let Some(w) = line.word(i) {
            return Some(w);
        }
        let span = line.span.clone();
        let msg = if i > 0 {
            format!(
                "*** Configuration line starting `{}` is missing a parameter after keyword `{}` at word position {}",
                line.first(),
                line.word(i - 1).unwrap_or(""),
                i + 1
            )
        } else {
            format!(
                "*** Configuration line starting `{}` is missing a parameter at word position {}",
                line.first(),
                i + 1
            )
        };
        self.stopped = true;
        self.diags.push(
            Severity::Fatal,
            DiagKind::MissingParameter,
            Some(&span),
            msg,
            Some(&line.text()),
        );
        None
    }

    /// A script as keepalived reads one (`notify_script_init`): the whole line is split again
    /// with quotes and escapes (`alloc_strvec_quoted_escaped`), its second word is the command
    /// line, itself split the same way into the program and its arguments; the third and
    /// fourth words are the user and group to run it as.
    pub(crate) fn script(&mut self, line: &'a Line, from: usize) -> Option<Script> {
        self.script_as(line, from, true)
    }

    /// A script whose user is set by a keyword of its own (`vrrp_script`'s `script`,
    /// `misc_path`): words after the command line are ignored, as keepalived does.
    pub(crate) fn script_without_user(&mut self, line: &'a Line, from: usize) -> Option<Script> {
        self.script_as(line, from, false)
    }

    fn script_as(&mut self, line: &'a Line, from: usize, with_user: bool) -> Option<Script> {
        self.arg(line, from)?;
        let words = match values::split_quoted_escaped(&line.raw) {
            Ok(w) => w,
            Err(e) => {
                let msg = match e {
                    values::QuotedError::MissingTerminating(q) => {
                        format!("String '{}': missing terminating {q}", line.raw)
                    }
                    values::QuotedError::MissingEscape => {
                        format!("Missing escape char at end: '{}'", line.raw)
                    }
                };
                self.warn(DiagKind::Quote, line, msg);
                return None;
            }
        };
        let text = |w: &Vec<u8>| String::from_utf8_lossy(w).into_owned();
        let command_bytes = words.get(from)?;
        let command = text(command_bytes);
        let argv_raw = values::split_quoted_escaped_bytes(command_bytes).unwrap_or_default();
        let argv: Vec<String> = argv_raw.iter().map(text).collect();
        let argv_bytes = argv_raw
            .iter()
            .any(|w| std::str::from_utf8(w).is_err())
            .then_some(argv_raw);
        Some(Script {
            command,
            argv,
            argv_bytes,
            user: words.get(from + 1).filter(|_| with_user).map(text),
            group: words.get(from + 2).filter(|_| with_user).map(text),
            span: line.span.clone(),
        })
    }
}
