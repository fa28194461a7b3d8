//! Reading the project's systemd units (`packaging/systemd/`) the way systemd orders and runs
//! them, so a test can boot a director from nothing with the units' own commands: ordering
//! (After=/Before=), requirements, Type=, EnvironmentFile= and the `$VAR`/`${VAR}` expansion
//! of Exec lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

#[derive(Debug, Clone, Default)]
pub struct Unit {
    pub name: String,
    /// Every `Key=value` of the file, in order (keys repeat: After=, ExecStart=…).
    pub entries: Vec<(String, String)>,
}

impl Unit {
    pub fn load(path: &Path) -> Result<Unit> {
        let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
        let mut entries = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('[') {
                continue;
            }
            let (k, v) = line.split_once('=').context("Key=value")?;
            entries.push((k.trim().to_string(), v.trim().to_string()));
        }
        Ok(Unit {
            name: path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string(),
            entries,
        })
    }

    /// All values of `key`, space-separated lists flattened.
    pub fn list(&self, key: &str) -> Vec<String> {
        self.entries
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| v.split_whitespace().map(String::from))
            .collect()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// The units of `dir` named in `names`.
pub fn load_all(dir: &Path, names: &[&str]) -> Result<Vec<Unit>> {
    names.iter().map(|n| Unit::load(&dir.join(n))).collect()
}

/// systemd's start order among `units`: A before B when B has After=A or A has Before=B.
pub fn start_order(units: &[Unit]) -> Result<Vec<String>> {
    let names: BTreeSet<&str> = units.iter().map(|u| u.name.as_str()).collect();
    let mut before: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for u in units {
        for a in u.list("After") {
            if let Some(a) = names.get(a.as_str()) {
                before.entry(u.name.as_str()).or_default().insert(a);
            }
        }
        for b in u.list("Before") {
            if let Some(b) = names.get(b.as_str()) {
                before.entry(b).or_default().insert(u.name.as_str());
            }
        }
    }
    let mut order = Vec::new();
    let mut left: BTreeSet<&str> = names.clone();
    while !left.is_empty() {
        let ready: Vec<&str> = left
            .iter()
            .copied()
            .filter(|n| {
                before
                    .get(n)
                    .is_none_or(|deps| deps.iter().all(|d| !left.contains(d)))
            })
            .collect();
        if ready.is_empty() {
            bail!("ordering cycle among {left:?}");
        }
        for n in ready {
            left.remove(n);
            order.push(n.to_string());
        }
    }
    Ok(order)
}

/// `KEY=value` / `KEY="value"` lines of an EnvironmentFile.
pub fn environment_file(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect())
}

/// An Exec line as systemd expands it: `${VAR}` is one word, `$VAR` splits into words;
/// `rewrite` maps absolute paths of the installed system to where the test has them.
pub fn exec_argv(
    line: &str,
    env: &BTreeMap<String, String>,
    rewrite: &dyn Fn(&str) -> String,
) -> Vec<String> {
    let mut argv = Vec::new();
    for word in line.split_whitespace() {
        if let Some(v) = word.strip_prefix("${").and_then(|w| w.strip_suffix('}')) {
            argv.push(env.get(v).cloned().unwrap_or_default());
        } else if let Some(v) = word.strip_prefix('$') {
            argv.extend(
                env.get(v)
                    .map(|s| s.split_whitespace().map(String::from).collect::<Vec<_>>())
                    .unwrap_or_default(),
            );
        } else {
            argv.push(rewrite(word));
        }
    }
    argv
}

/// The repository's packaging/systemd directory.
pub fn unit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/systemd")
}
