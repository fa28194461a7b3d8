//! `include` targets: brace expansion, globbing relative to the including
//! file's directory, and the file checks keepalived does before opening.

use std::path::{Path, PathBuf};

/// Which include keyword was used. Plain `include` never fails on a missing
/// file; the `include?` variants (2.2.x `include_check`) report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeKind {
    /// `include`: a missing file is not an error.
    Plain,
    /// `includer`, `includem`, …: a missing file is reported.
    Checked,
}

/// The kind of include a keyword is, or None for other keywords.
pub fn include_kind(word: &str) -> Option<IncludeKind> {
    match word {
        "include" => Some(IncludeKind::Plain),
        "includer" | "includem" | "includew" | "includeb" | "includea" => {
            Some(IncludeKind::Checked)
        }
        _ => None,
    }
}

/// Expands `{a,b}` alternatives (nested allowed), as GLOB_BRACE does.
pub fn brace_expand(pattern: &str) -> Vec<String> {
    let bytes = pattern.as_bytes();
    let Some(open) = pattern.find('{') else {
        return vec![pattern.to_string()];
    };
    let mut depth = 0usize;
    let mut close = None;
    let mut commas = Vec::new();
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            b',' if depth == 1 => commas.push(i),
            _ => {}
        }
    }
    let Some(close) = close else {
        return vec![pattern.to_string()];
    };
    if commas.is_empty() {
        // `{x}` without a comma is literal; expand what follows it.
        let head = &pattern[..=close];
        return brace_expand(&pattern[close + 1..])
            .into_iter()
            .map(|t| format!("{head}{t}"))
            .collect();
    }
    let prefix = &pattern[..open];
    let suffix = &pattern[close + 1..];
    let mut bounds = vec![open];
    bounds.extend(&commas);
    bounds.push(close);
    let mut out = Vec::new();
    for w in bounds.windows(2) {
        let alt = &pattern[w[0] + 1..w[1]];
        for tail in brace_expand(&format!("{alt}{suffix}")) {
            out.push(format!("{prefix}{tail}"));
        }
    }
    out
}

/// Resolves an include pattern to the matching regular files, sorted.
pub fn resolve(pattern: &str, base_dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for alt in brace_expand(pattern) {
        let full = if Path::new(&alt).is_absolute() {
            PathBuf::from(&alt)
        } else {
            base_dir.join(&alt)
        };
        let Some(full_str) = full.to_str() else {
            continue;
        };
        let mut found: Vec<PathBuf> = match glob::glob(full_str) {
            Ok(paths) => paths.filter_map(Result::ok).collect(),
            Err(_) => Vec::new(),
        };
        found.sort();
        out.extend(found.into_iter().filter(|p| !p.is_dir()));
    }
    out
}

/// keepalived refuses directories and executable files as configuration.
pub fn is_regular_non_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(m) => m.is_file() && m.permissions().mode() & 0o111 == 0,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces() {
        assert_eq!(brace_expand("a{b,c}d"), ["abd", "acd"]);
        assert_eq!(brace_expand("{x,y{1,2}}"), ["x", "y1", "y2"]);
        assert_eq!(brace_expand("a{b}c"), ["a{b}c"]);
        assert_eq!(brace_expand("a{b"), ["a{b"]);
    }
}
