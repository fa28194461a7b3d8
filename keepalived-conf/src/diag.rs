//! Diagnostics: source spans, messages and their severity.
//!
//! keepalived distinguishes between messages that make `-t` fail (its
//! `report_config_error`) and plain log lines (`log_message`). We keep that
//! split in [`Severity`] so the check mode can reproduce its exit codes.

use serde::Serialize;
use std::fmt;
use std::sync::Arc;

/// A position in a configuration file (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Span {
    /// The file as named on the command line or in the `include`.
    pub file: Arc<str>,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
}

impl Span {
    /// A position in `file`.
    pub fn new(file: Arc<str>, line: u32, column: u32) -> Self {
        Span { file, line, column }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// How serious a message is, as keepalived `-t` treats it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Informational log line; keepalived `-t` does not fail on it.
    Info,
    /// A configuration problem: keepalived `-t` exits 5 when one is seen.
    Warning,
    /// A fatal problem (keepalived exits 4, e.g. a missing parameter).
    Fatal,
}

/// What kind of problem it is, so callers can filter without matching text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiagKind {
    /// A keyword keepalived does not know.
    UnknownKeyword,
    /// A value out of range or of the wrong form.
    InvalidValue,
    /// A keyword without its required argument.
    MissingParameter,
    /// Unbalanced `{` / `}`.
    Braces,
    /// An unterminated `"`.
    Quote,
    /// An `include` that could not be read.
    Include,
    /// An include matched no file (an error only with `-e`).
    MissingInclude,
    /// A `$NAME` definition or `~SEQ` generator problem.
    Macro,
    /// A keyword keepalived still reads but has replaced.
    Deprecated,
    /// A check across blocks (unknown references, conflicting settings).
    Semantic,
    /// An interface that does not exist.
    Interface,
    /// Script security (`enable_script_security`) refusals.
    Security,
    /// No configuration file could be read.
    NoConfig,
}

/// One message about the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Whether it makes `keepalived -t` fail.
    pub severity: Severity,
    /// What kind of problem it is.
    pub kind: DiagKind,
    /// None for messages keepalived prints without a line (post-parse checks).
    pub span: Option<Span>,
    /// The text, as keepalived words it.
    pub message: String,
    /// The offending source text (the logical line), when there is one.
    pub text: Option<String>,
}

impl Diagnostic {
    /// keepalived's own rendering: `(FILE: Line N) message`.
    pub fn keepalived_format(&self) -> String {
        match &self.span {
            Some(s) => format!("({}: Line {}) {}", s.file, s.line, self.message),
            None => self.message.clone(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Fatal => "error",
        };
        match &self.span {
            Some(s) => write!(f, "{s}: {sev}: {}", self.message)?,
            None => write!(f, "{sev}: {}", self.message)?,
        }
        if let Some(t) = &self.text {
            write!(f, " [{t}]")?;
        }
        Ok(())
    }
}

/// Collector passed through the lexer and parser.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Diagnostics {
    /// The messages, in the order they were reported.
    pub items: Vec<Diagnostic>,
    /// The keepalived process whose pass ended the check at a missing parameter (the passes
    /// after it, and its own post-parse checks, never ran).
    #[serde(skip)]
    pub stopped_in: Option<crate::parser::Process>,
}

impl Diagnostics {
    /// Records a message.
    pub fn push(
        &mut self,
        severity: Severity,
        kind: DiagKind,
        span: Option<&Span>,
        message: impl Into<String>,
        text: Option<&str>,
    ) {
        self.items.push(Diagnostic {
            severity,
            kind,
            span: span.cloned(),
            message: message.into(),
            text: text.map(str::to_string),
        });
    }

    /// Records a configuration problem at `span`.
    pub fn warn(&mut self, kind: DiagKind, span: &Span, message: impl Into<String>) {
        self.push(Severity::Warning, kind, Some(span), message, None);
    }

    /// Records an informational line.
    pub fn info(&mut self, kind: DiagKind, span: Option<&Span>, message: impl Into<String>) {
        self.push(Severity::Info, kind, span, message, None);
    }

    /// Whether `keepalived -t` would fail (exit 5 or 4).
    pub fn has_config_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity >= Severity::Warning)
    }

    /// Whether a fatal problem was seen (exit 4).
    pub fn has_fatal(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Fatal)
    }
}
