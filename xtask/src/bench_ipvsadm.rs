//! `ipvsadm -R` of 10 000 services x 10 reals and `ipvsadm -Ln` of that table, timed, beside the
//! cost of one trivial ipvsadm invocation measured in the same run (the floor of any command).

use anyhow::{Result, bail};
use xlvs_tests::netns::{is_root, unique_prefix};

pub fn run() -> Result<()> {
    if !is_root() {
        bail!("the ipvsadm benchmark needs root (BPF)");
    }
    let ipvsadm = xlvs_tests::lab::binary("ipvsadm")?;
    let pin = format!("/sys/fs/bpf/xlvs-{}", unique_prefix("xi"));
    let opts = dataplane::Options {
        pin_dir: pin.clone().into(),
        max_conns: 65536,
    };
    let _cleanup = xlvs_tests::lab::Pins(opts);
    let mut rules = String::new();
    for s in 0..10_000u32 {
        let vip = format!("198.18.{}.{}:80", 100 + s / 250, s % 250 + 1);
        rules.push_str(&format!("-A -t {vip} -s wrr\n"));
        for r in 0..10u32 {
            rules.push_str(&format!(
                "-a -t {vip} -r 198.19.{}.{}:8080 -m -w {}\n",
                r,
                s % 250 + 1,
                r + 1
            ));
        }
    }
    let time = |args: &[&str], input: &str| crate::stats::time_ipvsadm(&ipvsadm, &pin, args, input);
    let (floor, _) = time(&["-Ln"], "")?; // also creates the tables
    let (floor2, _) = time(&["-Ln", "--timeout"], "")?;
    let (restore, _) = time(&["-R"], &rules)?;
    let (list, out) = time(&["-Ln"], "")?;
    let lines = out.lines().count();
    let (save, _) = time(&["-S", "-n"], "")?;
    println!("\nipvsadm on 10 000 services x 10 reals (110 000 rules)");
    println!("{:<36} {:>10}", "case", "seconds");
    println!(
        "{:<36} {:>10.3}",
        "ipvsadm --timeout (one-call floor)",
        floor2.min(floor)
    );
    println!("{:<36} {:>10.3}", "ipvsadm -R (110 000 lines)", restore);
    println!("{:<36} {:>10.3}   ({lines} lines)", "ipvsadm -Ln", list);
    println!("{:<36} {:>10.3}", "ipvsadm -S -n", save);
    println!(
        "targets (< 2 s each): -R {}, -Ln {}",
        if restore < 2.0 { "met" } else { "NOT met" },
        if list < 2.0 { "met" } else { "NOT met" }
    );
    Ok(())
}
