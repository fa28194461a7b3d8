//! From files to logical lines, as keepalived's `read_line()` produces them:
//! comments removed, `@ID` lines filtered, definitions and generators
//! expanded, includes followed, and `{` / `}` split onto lines of their own.

pub mod decomment;
pub mod defs;
pub mod include;
pub mod seq;
pub mod tokenize;

use crate::diag::{DiagKind, Diagnostics, Severity, Span};
use defs::{Definitions, parse_definition};
use include::include_kind;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One word of a logical line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Token {
    /// The word (quotes removed).
    pub text: String,
    /// Its column, from 1.
    pub column: u32,
}

/// A logical line: a keyword and its arguments, or a lone `{` / `}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    /// Where the line is.
    pub span: Span,
    /// Its words.
    pub tokens: Vec<Token>,
    /// The line as keepalived's handlers see it (`buf_extern`): after comments, definitions
    /// and brace splitting, before word splitting. Script keywords re-split it with quotes
    /// and escapes.
    #[serde(skip)]
    pub raw: String,
}

impl Line {
    /// Word `i`, if the line has that many.
    pub fn word(&self, i: usize) -> Option<&str> {
        self.tokens.get(i).map(|t| t.text.as_str())
    }

    /// The keyword (empty for an empty line).
    pub fn first(&self) -> &str {
        self.word(0).unwrap_or("")
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the line has no words.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The words after the keyword.
    pub fn args(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().skip(1).map(|t| t.text.as_str())
    }

    /// The words joined by single blanks.
    pub fn text(&self) -> String {
        let words: Vec<&str> = self.tokens.iter().map(|t| t.text.as_str()).collect();
        words.join(" ")
    }

    /// Span of word `i` (falls back to the line's span).
    pub fn span_of(&self, i: usize) -> Span {
        let mut s = self.span.clone();
        if let Some(t) = self.tokens.get(i) {
            s.column = t.column;
        }
        s
    }
}

/// Lexer settings.
#[derive(Debug, Clone)]
pub struct LexOptions {
    /// `-i` config id; default: the host name up to the first `.`.
    pub config_id: String,
    /// Seed for `${_RANDOM}` (fixed in tests).
    pub random_seed: u64,
    /// Guard against generators and includes that explode.
    pub max_lines: usize,
    /// Deepest nesting of includes followed.
    pub max_include_depth: usize,
    /// False in fuzzing: `include` lines are recognised but no file is read.
    pub follow_includes: bool,
}

impl Default for LexOptions {
    fn default() -> Self {
        LexOptions {
            config_id: default_config_id(),
            random_seed: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1),
            max_lines: 4_000_000,
            max_include_depth: 32,
            follow_includes: true,
        }
    }
}

/// The host name up to the first dot, as keepalived's default config id.
pub fn default_config_id() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    name.trim().split('.').next().unwrap_or("").to_string()
}

/// Where a line comes from, for spans and relative includes.
#[derive(Clone)]
struct Origin {
    file: Arc<str>,
    line: u32,
    dir: PathBuf,
}

/// Reads configuration text into logical lines.
pub struct Lexer<'d> {
    opts: LexOptions,
    defs: Definitions,
    diags: &'d mut Diagnostics,
    out: Vec<Line>,
    block_depth: i64,
    include_depth: usize,
    too_many_reported: bool,
    /// Every file read, main file first.
    pub files: Vec<String>,
}

/// What processing one piece of text asks the file reader to do next.
enum Next {
    Continue,
    StartMultiline(String),
}

const MAX_RECHECKS: usize = 64;
const MAX_GENERATOR_NESTING: usize = 16;

impl<'d> Lexer<'d> {
    /// A lexer that reports into `diags`.
    pub fn new(opts: LexOptions, diags: &'d mut Diagnostics) -> Self {
        let defs = Definitions::new(opts.config_id.clone(), opts.random_seed);
        Lexer {
            opts,
            defs,
            diags,
            out: Vec::new(),
            block_depth: 0,
            include_depth: 0,
            too_many_reported: false,
            files: Vec::new(),
        }
    }

    /// Lexes the main file; returns false when it cannot be read.
    pub fn read_main_file(&mut self, path: &Path) -> std::io::Result<()> {
        let data = std::fs::read(path)?;
        let name: Arc<str> = Arc::from(path.to_string_lossy().as_ref());
        let dir = file_dir(path);
        self.files.push(name.to_string());
        self.read_text(&String::from_utf8_lossy(&data), name, dir);
        Ok(())
    }

    /// Lexes text that did not come from a file (tests, fuzzing).
    pub fn read_str(&mut self, text: &str, name: &str, dir: &Path) {
        self.read_text(text, Arc::from(name), dir.to_path_buf());
    }

    /// The logical lines, after reporting unbalanced braces.
    pub fn finish(mut self) -> Vec<Line> {
        if self.block_depth > 0 {
            self.diags.push(
                Severity::Warning,
                DiagKind::Braces,
                None,
                format!(
                    "There are {} missing '}}'s or extra '{{'s",
                    self.block_depth
                ),
                None,
            );
        }
        std::mem::take(&mut self.out)
    }

    fn read_text(&mut self, text: &str, file: Arc<str>, dir: PathBuf) {
        let mut multiline: Option<String> = None;
        for (idx, raw) in text.split('\n').enumerate() {
            let raw = raw.trim_end_matches(['\r', '\n']);
            let origin = Origin {
                file: file.clone(),
                line: u32::try_from(idx + 1).unwrap_or(u32::MAX),
                dir: dir.clone(),
            };
            if let Some(name) = multiline.take() {
                multiline = self.continue_definition(&name, raw);
                continue;
            }
            if raw.is_empty() {
                continue;
            }
            let dec = decomment::decomment(raw);
            if dec.unterminated_quote {
                let span = Span::new(file.clone(), origin.line, dec.lead as u32 + 1);
                self.diags.push(
                    Severity::Warning,
                    DiagKind::Quote,
                    Some(&span),
                    format!("Unterminated quote '{}'", dec.text),
                    Some(&dec.text),
                );
            }
            if dec.text.is_empty() {
                continue;
            }
            if let Next::StartMultiline(name) = self.process(dec.text, &origin, dec.lead, 0) {
                multiline = Some(name);
            }
        }
    }

    /// A continuation line of a multi-line definition; returns the name again
    /// while the definition goes on.
    fn continue_definition(&mut self, name: &str, raw: &str) -> Option<String> {
        let dec = decomment::decomment(raw);
        let mut text = dec.text;
        let goes_on = text.ends_with('\\');
        if goes_on {
            text.pop();
            let keep = text.trim_end_matches([' ', '\t']).len();
            text.truncate(keep);
            text.push('\n');
        }
        let def = self.defs.get_mut(name)?;
        if text.len() >= 2 || (!text.is_empty() && !goes_on) {
            def.value.push_str(&text);
        }
        if goes_on && !raw.is_empty() {
            Some(name.to_string())
        } else {
            if def.value.is_empty() {
                def.multiline = false;
            }
            None
        }
    }

    fn span(origin: &Origin, column: usize) -> Span {
        Span::new(
            origin.file.clone(),
            origin.line,
            u32::try_from(column + 1).unwrap_or(u32::MAX),
        )
    }

    /// keepalived's read_line() loop for one piece of text.
    fn process(&mut self, mut text: String, origin: &Origin, col: usize, depth: usize) -> Next {
        if depth > MAX_GENERATOR_NESTING + 8 {
            return Next::Continue;
        }
        let mut extra_lines: Vec<String> = Vec::new();
        let mut col = col;
        for _ in 0..MAX_RECHECKS {
            if text.starts_with('@') {
                match self.conditional(&text) {
                    Some((kept, skipped)) => {
                        text = kept;
                        col += skipped;
                    }
                    None => return Next::Continue,
                }
            }
            if text.starts_with('$') {
                if let Some(d) = parse_definition(&text) {
                    let name = d.name.clone();
                    self.defs.set(&d.name, d.value, d.multiline);
                    return if d.multiline {
                        Next::StartMultiline(name)
                    } else {
                        Next::Continue
                    };
                }
            }
            if text.starts_with("~SEQ") || text.starts_with("~LST") {
                self.generate(&text, origin, col, depth);
                return Next::Continue;
            }
            if text.starts_with('~') || !text.contains('$') {
                break;
            }
            let pwd = origin.dir.to_string_lossy().to_string();
            let exp = self.defs.expand(&text, &pwd);
            if exp.too_long {
                let span = Self::span(origin, col);
                self.diags.push(
                    Severity::Warning,
                    DiagKind::Macro,
                    Some(&span),
                    format!(
                        "Parameter substitution on line '{text}' would exceed maximum line length"
                    ),
                    Some(&text),
                );
                return Next::Continue;
            }
            if !exp.changed {
                break;
            }
            text = exp.text;
            extra_lines.extend(exp.extra_lines);
            if !(text.starts_with('@') || text.contains('$')) {
                break;
            }
        }
        if !text.is_empty() {
            self.emit(text, origin, col, depth);
        }
        for l in extra_lines {
            let dec = decomment::decomment(&l);
            if !dec.text.is_empty() {
                self.process(dec.text, origin, col, depth + 1);
            }
        }
        Next::Continue
    }

    /// `@ID rest` / `@^ID rest`: the rest when the id matches (or not).
    fn conditional(&self, text: &str) -> Option<(String, usize)> {
        let (negate, body) = match text.strip_prefix("@^") {
            Some(b) => (true, b),
            None => (false, &text[1..]),
        };
        let end = body.find([' ', '\t'])?;
        let id = &body[..end];
        let matches = !self.opts.config_id.is_empty() && id == self.opts.config_id;
        if matches == negate {
            return None;
        }
        let rest = body[end..].trim_start_matches([' ', '\t']);
        Some((rest.to_string(), text.len() - rest.len()))
    }

    fn generate(&mut self, text: &str, origin: &Origin, col: usize, depth: usize) {
        let span = Self::span(origin, col);
        if depth >= MAX_GENERATOR_NESTING {
            self.diags.push(
                Severity::Warning,
                DiagKind::Macro,
                Some(&span),
                format!("Invalid ~SEQ specification '{text}'"),
                Some(text),
            );
            return;
        }
        let budget = self.opts.max_lines.saturating_sub(self.out.len());
        let pwd = origin.dir.to_string_lossy().to_string();
        let defs = &mut self.defs;
        let parsed = seq::parse_generator(text, budget, &mut |args| defs.expand(args, &pwd).text);
        match parsed {
            Ok(g) => {
                for it in g.iterations {
                    for (var, value) in it {
                        self.defs.set(&var, value, false);
                    }
                    if !g.rest.is_empty() {
                        self.process(g.rest.clone(), origin, col, depth + 1);
                    }
                    if self.out.len() >= self.opts.max_lines {
                        break;
                    }
                }
            }
            Err(seq::SeqError::TooMany) => self.too_many_lines(&span),
            Err(seq::SeqError::Invalid(_)) => {
                let what = if text.starts_with("~LST") {
                    "~LST"
                } else {
                    "~SEQ"
                };
                self.diags.push(
                    Severity::Warning,
                    DiagKind::Macro,
                    Some(&span),
                    format!("Invalid {what} specification '{text}'"),
                    Some(text),
                );
            }
        }
    }

    fn too_many_lines(&mut self, span: &Span) {
        if !self.too_many_reported {
            self.too_many_reported = true;
            self.diags.push(
                Severity::Fatal,
                DiagKind::Macro,
                Some(span),
                format!(
                    "configuration expands to more than {} lines - stopping",
                    self.opts.max_lines
                ),
                None,
            );
        }
    }

    /// Include check, then `{`/`}` splitting, then tokenizing.
    fn emit(&mut self, text: String, origin: &Origin, col: usize, depth: usize) {
        if self.out.len() >= self.opts.max_lines {
            let span = Self::span(origin, col);
            self.too_many_lines(&span);
            return;
        }
        if text.contains("include") && self.try_include(&text, origin, col) {
            return;
        }
        let (head, residue_at) = split_brace(&text);
        self.push_line(head, origin, col);
        if let Some(at) = residue_at {
            let residue = text[at..].trim_end_matches([' ', '\t']).to_string();
            if !residue.is_empty() {
                self.process(residue, origin, col + at, depth + 1);
            }
        }
    }

    fn push_line(&mut self, text: &str, origin: &Origin, col: usize) {
        let text = text.trim_end_matches([' ', '\t']);
        if text.is_empty() {
            return;
        }
        let words = match tokenize::split_words(text) {
            Ok(w) => w,
            Err(e) => {
                let span = Self::span(origin, col);
                self.diags.push(
                    Severity::Warning,
                    DiagKind::Quote,
                    Some(&span),
                    format!("Unmatched quote: '{text}'"),
                    Some(text),
                );
                e.words
            }
        };
        if words.is_empty() {
            return;
        }
        if text == "{" {
            self.block_depth += 1;
        } else if text == "}" {
            self.block_depth -= 1;
            if self.block_depth < 0 {
                let span = Self::span(origin, col);
                self.diags.push(
                    Severity::Warning,
                    DiagKind::Braces,
                    Some(&span),
                    "Extra '}' found",
                    Some(text),
                );
                self.block_depth = 0;
            }
        }
        let first_col = words.first().map(|w| w.offset).unwrap_or(0);
        let tokens = words
            .into_iter()
            .map(|w| Token {
                column: u32::try_from(col + w.offset + 1).unwrap_or(u32::MAX),
                text: w.text,
            })
            .collect();
        self.out.push(Line {
            span: Self::span(origin, col + first_col),
            tokens,
            raw: text.to_string(),
        });
    }

    fn try_include(&mut self, text: &str, origin: &Origin, col: usize) -> bool {
        let Ok(words) = tokenize::split_words(text) else {
            return false;
        };
        if words.len() != 2 {
            return false;
        }
        let Some(kind) = include_kind(&words[0].text) else {
            return false;
        };
        let pattern = &words[1].text;
        let span = Self::span(origin, col);
        if self.include_depth >= self.opts.max_include_depth {
            self.diags.push(
                Severity::Warning,
                DiagKind::Include,
                Some(&span),
                format!("Include depth exceeded at '{pattern}' - skipping"),
                Some(text),
            );
            return true;
        }
        let files = if self.opts.follow_includes {
            include::resolve(pattern, &origin.dir)
        } else {
            Vec::new()
        };
        let mut matched = 0;
        for f in files {
            if !include::is_regular_non_executable(&f) {
                self.diags.info(
                    DiagKind::Include,
                    Some(&span),
                    format!(
                        "Configuration file '{}' is not a regular non-executable file - skipping",
                        f.display()
                    ),
                );
                continue;
            }
            let Ok(data) = std::fs::read(&f) else {
                self.diags.info(
                    DiagKind::Include,
                    Some(&span),
                    format!(
                        "Configuration file '{}' open problem - skipping",
                        f.display()
                    ),
                );
                continue;
            };
            matched += 1;
            let name: Arc<str> = Arc::from(f.to_string_lossy().as_ref());
            self.files.push(name.to_string());
            self.include_depth += 1;
            self.read_text(&String::from_utf8_lossy(&data), name, file_dir(&f));
            self.include_depth -= 1;
        }
        if matched == 0 {
            // keepalived 2.2.7 reports every kind of include the same way;
            // it only fails the check with -e.
            let _ = kind;
            self.diags.push(
                Severity::Info,
                DiagKind::MissingInclude,
                Some(&span),
                format!("Config files missing '{pattern}'."),
                Some(text),
            );
        }
        true
    }
}

/// The directory a file's relative includes are resolved against.
fn file_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
    }
}

/// Splits off the first `{` or `}` outside quotes: returns the text to emit
/// now and where the residue starts.
fn split_brace(text: &str) -> (&str, Option<usize>) {
    let bytes = text.as_bytes();
    if matches!(bytes.first(), Some(b'{' | b'}')) {
        return (&text[..1], Some(1 + count_blanks(&text[1..])));
    }
    let mut in_quote = false;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => in_quote = !in_quote,
            b'{' | b'}' if !in_quote => return (&text[..i], Some(i)),
            _ => {}
        }
    }
    (text, None)
}

fn count_blanks(s: &str) -> usize {
    s.len() - s.trim_start_matches([' ', '\t']).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brace_split() {
        assert_eq!(split_brace("a b {"), ("a b ", Some(4)));
        assert_eq!(split_brace("{ x"), ("{", Some(2)));
        assert_eq!(split_brace("a \"{\" b"), ("a \"{\" b", None));
    }
}
