//! Every `unsafe` block of the XDP program (`ebpf/src`) says why it is sound in a `// SAFETY:`
//! comment, as clippy's `undocumented_unsafe_blocks` makes the host crates do (clippy does not
//! run on the BPF target here). `cargo xtask unsafe-lint` lists the blocks without one; a unit
//! test runs it over the tree, so CI's `cargo test` fails on a new undocumented block.
//!
//! The rule, clippy's: the comment lines right above the statement that holds the block (or
//! right above the block's own line) contain `SAFETY:`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// An `unsafe` block or impl without a SAFETY comment: file and 1-based line.
pub type Finding = (PathBuf, usize);

/// The undocumented `unsafe` blocks of every `.rs` file under `dir`.
pub fn check_dir(dir: &Path) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    let mut files = Vec::new();
    collect(dir, &mut files)?;
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).with_context(|| format!("{}", f.display()))?;
        out.extend(undocumented(&text).into_iter().map(|l| (f.clone(), l)));
    }
    Ok(out)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("{}", dir.display()))? {
        let p = e?.path();
        if p.is_dir() {
            collect(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    Ok(())
}

/// The code of a line without its `//` comment (string literals holding `//` are not expected
/// in the program's sources).
fn code(line: &str) -> &str {
    line.split("//").next().unwrap_or("").trim()
}

fn is_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("//") && !t.starts_with("///") && !t.starts_with("//!")
}

/// Whether the code of a line ends a statement, an argument or a match arm, or opens/closes a
/// block, so the line after it starts something that needs its own comment.
fn ends_statement(code: &str) -> bool {
    code.is_empty() || code.ends_with([';', '{', '}', ','])
}

/// 1-based lines holding an `unsafe {` block or `unsafe impl` without a SAFETY comment.
pub fn undocumented(src: &str) -> Vec<usize> {
    let lines: Vec<&str> = src.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let c = code(line);
        if !(c.contains("unsafe {") || c.starts_with("unsafe impl")) {
            continue;
        }
        if line.contains("// SAFETY:") {
            continue;
        }
        // Up to the first line of the statement holding the block.
        let mut start = i;
        while start > 0 && !is_comment(lines[start - 1]) && !ends_statement(code(lines[start - 1]))
        {
            start -= 1;
        }
        // The comment lines right above it (attributes may sit between).
        let mut j = start;
        while j > 0 && code(lines[j - 1]).starts_with("#[") {
            j -= 1;
        }
        let mut documented = false;
        while j > 0 && is_comment(lines[j - 1]) {
            documented |= lines[j - 1].contains("SAFETY:");
            j -= 1;
        }
        if !documented {
            out.push(i + 1);
        }
    }
    out
}

/// `cargo xtask unsafe-lint`: prints the undocumented blocks of `ebpf/src`; an error when any.
pub fn run() -> Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ebpf/src");
    let found = check_dir(&dir)?;
    for (f, l) in &found {
        println!(
            "{}:{l}: unsafe block without a `// SAFETY:` comment",
            f.display()
        );
    }
    anyhow::ensure!(
        found.is_empty(),
        "{} unsafe blocks without a SAFETY comment",
        found.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_needs_a_safety_comment_above_its_statement() {
        let src = "\
fn f(p: *const u8) -> u8 {
    // SAFETY: checked above.
    let a = unsafe { *p };
    let b = unsafe { *p };
    // A comment that says nothing of safety.
    let c = unsafe { *p };
    // SAFETY: the statement's first line carries it.
    let d = !q
        && r(p)
            .is_some_and(|x| unsafe { x.read() } != 0);
    // SAFETY: one statement up, then a fresh one.
    g();
    h(unsafe { *p });
    match x {
        // SAFETY: an arm's own comment.
        Some(p) => unsafe { *p },
        None => unsafe { 0 },
    }
    let e = unsafe { *p }; // SAFETY: on the same line.
    a + b + c + d + e
}
";
        assert_eq!(undocumented(src), vec![4, 6, 13, 17]);
    }

    #[test]
    fn the_xdp_program_documents_every_unsafe_block() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ebpf/src");
        let found = check_dir(&dir).unwrap();
        let list: Vec<String> = found
            .iter()
            .map(|(f, l)| format!("{}:{l}", f.display()))
            .collect();
        assert!(
            list.is_empty(),
            "unsafe blocks without a `// SAFETY:` comment:\n{}",
            list.join("\n")
        );
    }
}
