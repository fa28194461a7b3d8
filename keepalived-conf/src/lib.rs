//! keepalived.conf lexer and parser.
//!
//! Reads keepalived 2.2.x configuration (plus the Alibaba and DPVS fork
//! keywords and the 1.2.x spellings) into a typed [`model::KeepalivedConfig`]
//! with keepalived's defaults applied, and reports problems the way
//! keepalived does (file, line, message), never panicking on input.
//!
//! ```no_run
//! let parsed = keepalived_conf::parse_file(
//!     std::path::Path::new("/etc/keepalived/keepalived.conf"),
//!     &keepalived_conf::ParseOptions::default(),
//! ).unwrap();
//! for vs in &parsed.config.virtual_servers {
//!     println!("{:?} {} real servers", vs.address, vs.real_servers.len());
//! }
//! ```
// Every public item says what it is for; CI's clippy (-D warnings) makes this an error.
#![warn(missing_docs)]

pub mod diag;
pub mod dump;
pub mod lexer;
pub mod model;
pub mod parser;
pub mod validate;

pub use diag::{DiagKind, Diagnostic, Diagnostics, Severity, Span};
pub use lexer::{LexOptions, Line};
pub use model::KeepalivedConfig;

use std::path::Path;

/// Options for a parse.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    /// Lexer settings (config id, limits, includes).
    pub lex: LexOptions,
}

impl ParseOptions {
    /// Options with a fixed config id (`-i`) and random seed.
    pub fn with_config_id(id: &str) -> Self {
        ParseOptions {
            lex: LexOptions {
                config_id: id.to_string(),
                random_seed: 1,
                ..LexOptions::default()
            },
        }
    }
}

/// A parsed configuration and everything reported while reading it.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The typed configuration, with keepalived's defaults applied.
    pub config: KeepalivedConfig,
    /// Everything reported while reading it.
    pub diagnostics: Diagnostics,
    /// Every file read (main file first, then includes in order).
    pub files: Vec<String>,
}

/// Reads `path` and everything it includes.
pub fn parse_file(path: &Path, opts: &ParseOptions) -> std::io::Result<Parsed> {
    let mut diags = Diagnostics::default();
    let (lines, files) = {
        let mut lx = lexer::Lexer::new(opts.lex.clone(), &mut diags);
        lx.read_main_file(path)?;
        let files = std::mem::take(&mut lx.files);
        (lx.finish(), files)
    };
    let config = parser::parse_lines(&lines, &mut diags);
    Ok(Parsed {
        config,
        diagnostics: diags,
        files,
    })
}

/// Parses configuration text; `name` is used in spans, relative includes
/// are resolved against the current directory.
pub fn parse_str(text: &str, name: &str, opts: &ParseOptions) -> Parsed {
    let mut diags = Diagnostics::default();
    let lines = {
        let mut lx = lexer::Lexer::new(opts.lex.clone(), &mut diags);
        let dir = std::env::current_dir().unwrap_or_else(|_| std::path::PathBuf::from("."));
        lx.read_str(text, name, &dir);
        lx.finish()
    };
    let config = parser::parse_lines(&lines, &mut diags);
    Parsed {
        config,
        diagnostics: diags,
        files: vec![name.to_string()],
    }
}

/// Only the lexer: the logical lines keepalived's parser would see.
pub fn lex_str(text: &str, name: &str, opts: &ParseOptions) -> (Vec<Line>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let lines = {
        let mut lx = lexer::Lexer::new(opts.lex.clone(), &mut diags);
        let dir = std::env::current_dir().unwrap_or_else(|_| std::path::PathBuf::from("."));
        lx.read_str(text, name, &dir);
        lx.finish()
    };
    (lines, diags)
}
