//! `cargo xtask kadiff [--count N] [--seed S] [--show K]`: the `keepalived -t` differential
//! run at scale (see `xlvs_tests::kadiff`): N generated configurations checked by ours and by
//! Debian's keepalived 2.2.7 in one namespace; prints the agreement and every class of
//! disagreement with an example, and the first K differing cases in full.

use std::path::PathBuf;

use anyhow::{Result, bail};
use xlvs_tests::kadiff;
use xlvs_tests::keepalived::REAL_KEEPALIVED;
use xlvs_tests::netns::{is_root, unique_prefix};

pub fn run(count: usize, seed: u64, show: usize, class: Option<&str>) -> Result<()> {
    if !is_root() {
        bail!("kadiff needs root (network namespaces)");
    }
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let ours = repo.join("target/release/keepalived");
    let p = unique_prefix("kdx");
    let ns = kadiff::namespace(&p)?;
    let dir = std::env::temp_dir().join(format!("xlvs-kadiff-{p}"));
    std::fs::create_dir_all(&dir)?;
    let cases = kadiff::generate(seed, count, &kadiff::fixtures(&repo));
    let t0 = std::time::Instant::now();
    let out = kadiff::run_cases(&ns, &dir, &ours, REAL_KEEPALIVED.as_ref(), cases, 2)?;
    let _ = std::fs::remove_dir_all(&dir);
    let (_, text) = kadiff::report(&out);
    println!(
        "kadiff seed {seed}: {count} configurations in {:.0?}",
        t0.elapsed()
    );
    print!("{text}");
    for o in out
        .iter()
        .filter(|o| !o.agree())
        .filter(|o| class.is_none_or(|c| o.classes().iter().any(|k| k.contains(c))))
        .take(show)
    {
        println!("==== {} ====", o.case.name);
        for (name, text, _) in &o.case.files {
            println!("--- {name}\n{text}");
        }
        println!(
            "--- 2.2.7 rc={} {:?}\n{}--- ours rc={} {:?}\n{}",
            o.theirs.rc, o.theirs.lines, o.theirs.text, o.ours.rc, o.ours.lines, o.ours.text
        );
    }
    Ok(())
}
