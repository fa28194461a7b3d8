//! ipvsadm on a loaded data plane (its own namespace and pin directory, as `TestBed` makes them):
//! argument vectors (`ARGV`: one argument per line) and `-R` files (`RESTORE`), each on tables
//! flushed first. A first line `@alibaba` or `@dpvs` picks that flavour. Commands that would read
//! standard input or start/stop sync daemons are not run (they are parsed).
//!
//! Properties: no panic; the exit status is one ipvsadm has (0, 1, 2, 255); a command that fails
//! leaves the tables as they were; a `-R` file has the effect of its lines run one by one (the
//! batch — one lock, one cached view, scheduler tables rebuilt at the end — changes nothing);
//! and whatever the tables hold afterwards, `-S` restored into empty tables saves the same text
//! again (ipvsadm-save | ipvsadm-restore loses nothing).

use std::io::Write;
use std::sync::Mutex;

use dataplane::Dataplane;
use dataplane::model::Timeouts;
use ipvsadm_rs::cli::{self, Cmd, Fail};
use ipvsadm_rs::{Flavor, exec};
use xlvs_tests::testbed::TestBed;

use crate::engine::{Outcome, Target, mutate_text};

const DICT: &[&[u8]] = &[
    b"@alibaba",
    b"@dpvs",
    b"-A",
    b"-E",
    b"-D",
    b"-C",
    b"-a",
    b"-e",
    b"-d",
    b"-L",
    b"-Ln",
    b"-S",
    b"-Z",
    b"-P",
    b"-Q",
    b"-G",
    b"-U",
    b"-O",
    b"-t",
    b"-u",
    b"--sctp-service",
    b"-f",
    b"198.18.100.1:80",
    b"198.18.100.1:0",
    b"[2001:db8:100::1]:80",
    b"198.18.2.2:8080",
    b"[2001:db8:2::2]:8080",
    b"-r",
    b"-m",
    b"-g",
    b"-i",
    b"-b",
    b"--fullnat",
    b"-w",
    b"0",
    b"65535",
    b"2147483648",
    b"-s",
    b"rr",
    b"wlc",
    b"sh",
    b"mh",
    b"lblcr",
    b"-p",
    b"-M",
    b"255.255.255.0",
    b"64",
    b"--pe",
    b"sip",
    b"-o",
    b"--sched-flags",
    b"sh-fallback,sh-port",
    b"-x",
    b"-y",
    b"--tun-type",
    b"gue",
    b"gre",
    b"--tun-port",
    b"--tun-csum",
    b"--tun-remcsum",
    b"-j",
    b"enable",
    b"-V",
    b"-z",
    b"198.18.3.1",
    b"-F",
    b"-k",
    b"-2",
    b"--set",
    b"--stats",
    b"--rate",
    b"--thresholds",
    b"--persistent-conn",
    b"--exact",
    b"--nosort",
    b"-c",
    b"-6",
    b"--ipv6",
    b"-n",
    b"localhost",
    b"http",
    b"",
];

pub const ARGV: Target = Target {
    name: "ipvsadm_argv",
    mutator: mutate_text,
    dict: DICT,
    max_len: 4096,
    secs: 15.0,
    seeds: &[],
};

pub const RESTORE: Target = Target {
    name: "ipvsadm_restore",
    mutator: mutate_text,
    dict: DICT,
    max_len: 16 * 1024,
    secs: 15.0,
    seeds: &[],
};

/// The tables an argument vector runs on (in the DPVS flavour, which knows every option).
const BASE: &str = "\
-A -t 198.18.100.1:80 -s rr
-a -t 198.18.100.1:80 -r 198.18.2.2:8080 -m -w 1
-a -t 198.18.100.1:80 -r 198.18.2.3:8080 -m -w 2
-A -u 198.18.100.1:53 -s wlc
-a -u 198.18.100.1:53 -r 198.18.2.4:53 -g
-A -t [2001:db8:100::1]:80 -s sh -p 300
-a -t [2001:db8:100::1]:80 -r [2001:db8:2::2]:80 -m
-A -f 7 -s rr
-a -f 7 -r 198.18.2.5:0 -i
-A -t 198.18.100.2:80 -s wrr -j enable
-a -t 198.18.100.2:80 -r 198.18.3.2:80 -b
-P -t 198.18.100.2:80 -z 198.18.3.1
-U -t 198.18.100.2:80 -k 198.18.9.9
";

/// The tables commands run on.
pub struct Ipvsadm {
    bed: TestBed,
    timeouts: Timeouts,
}

impl Ipvsadm {
    /// Loads the data plane; the calling thread enters the bed's namespace (netlink requests
    /// such as DR neighbour resolution stay there). Needs root.
    pub fn load() -> Ipvsadm {
        let bed = TestBed::new(1024, false).expect("root: a data plane to run ipvsadm on");
        let timeouts = bed.dp.timeouts().expect("timeouts");
        Ipvsadm { bed, timeouts }
    }

    fn reset(&mut self) -> Result<(), String> {
        let dp = &mut self.bed.dp;
        dp.flush().map_err(|e| format!("flush: {e}"))?;
        dp.set_timeouts(&self.timeouts)
            .map_err(|e| format!("timeouts: {e}"))
    }

    /// A fresh handle on the bed's tables for one command or restore, as the binary opens one.
    fn handle(&self) -> Option<Dataplane> {
        Some(Dataplane::open(&self.bed.opts).expect("open the bed's data plane"))
    }

    pub fn argv(&mut self, input: &[u8]) -> Outcome {
        let (flavor, text) = flavor_of(input);
        let argv: Vec<String> = if text.is_empty() {
            Vec::new()
        } else {
            text.split('\n').map(String::from).collect()
        };
        let cmd = cli::parse(&argv, flavor).and_then(|a| cli::check(&a));
        if matches!(cmd, Ok(Cmd::Restore | Cmd::StartDaemon | Cmd::StopDaemon)) {
            return Ok(1);
        }
        self.reset()?;
        let mut dp = self.handle();
        let base = quietly(|| exec::restore(BASE, Flavor::Dpvs, &mut dp));
        drop(dp);
        base.map_err(|f| format!("the base tables do not restore: {}", f.msg))?;
        let before = state(&mut self.bed.dp)?;
        let mut dp = self.handle();
        let r = quietly(|| exec::run_with(&argv, flavor, &mut dp, false));
        drop(dp);
        let (code, msg) = match r {
            Ok(c) => (c, String::new()),
            Err(Fail { code, msg }) => (code, msg),
        };
        if ![0, 1, 2, 255].contains(&code) {
            return Err(format!("exit status {code} ({msg})"));
        }
        let after = state(&mut self.bed.dp)?;
        if code != 0 && after != before {
            return Err(format!(
                "failed with {code} ({msg}) but changed the tables:\nbefore: {before}\nafter: {after}"
            ));
        }
        if after != before {
            self.saves_and_restores(flavor)?;
        }
        let cmd = cmd.map(|c| c as u64).unwrap_or(99);
        Ok(super::signature(&[
            cmd,
            code as u64,
            msg.len() as u64,
            u64::from(after != before),
        ]))
    }

    pub fn restore(&mut self, input: &[u8]) -> Outcome {
        let (flavor, text) = flavor_of(input);
        // Lines that would read standard input or start daemons stay out.
        let text: String = text
            .lines()
            .filter(|line| {
                let words: Vec<Vec<String>> = exec::restore_lines(line).collect();
                !words.iter().any(|w| {
                    matches!(
                        cli::parse(w, flavor).and_then(|a| cli::check(&a)),
                        Ok(Cmd::Restore | Cmd::StartDaemon | Cmd::StopDaemon)
                    )
                })
            })
            .map(|l| format!("{l}\n"))
            .collect();
        self.reset()?;
        let mut dp = self.handle();
        let r = quietly(|| exec::restore(&text, flavor, &mut dp));
        // Dropping the handle ends the batch, as when the binary exits.
        drop(dp);
        let code = match &r {
            Ok(c) => *c,
            Err(f) => f.code,
        };
        if ![0, 1, 2, 255].contains(&code) {
            return Err(format!("exit status {code} ({r:?})"));
        }
        let batch = state(&mut self.bed.dp)?;
        // The same lines one at a time, stopping where -R stops.
        self.reset()?;
        let mut one = self.handle();
        quietly(|| {
            for words in exec::restore_lines(&text) {
                match exec::run_with(&words, flavor, &mut one, true) {
                    Ok(_) => {}
                    Err(f) if exec::restore_goes_on(&f) => {}
                    Err(_) => break,
                }
            }
        });
        drop(one);
        let single = state(&mut self.bed.dp)?;
        if batch != single {
            return Err(format!(
                "-R and the same lines one by one differ:\n-R:     {batch}\nsingle: {single}"
            ));
        }
        self.saves_and_restores(flavor)?;
        Ok(super::signature(&[
            code as u64,
            batch.len().min(2000) as u64 / 100,
        ]))
    }

    /// `-S` of the tables, restored into the flushed tables, saves the same text.
    fn saves_and_restores(&mut self, flavor: Flavor) -> Result<(), String> {
        let saved = exec::save_text(&mut self.bed.dp, true, flavor).map_err(|f| f.msg)?;
        self.reset()?;
        let mut dp = self.handle();
        let r = quietly(|| exec::restore(&saved, flavor, &mut dp));
        drop(dp);
        let again = exec::save_text(&mut self.bed.dp, true, flavor).map_err(|f| f.msg)?;
        if r.is_err() || again != saved {
            return Err(format!(
                "-S does not restore ({flavor:?}): {r:?}\nsaved:\n{saved}\nrestored and saved:\n{again}"
            ));
        }
        Ok(())
    }
}

/// The flavour line, then the rest.
fn flavor_of(input: &[u8]) -> (Flavor, String) {
    let text = String::from_utf8_lossy(input).into_owned();
    for (tag, flavor) in [("@alibaba", Flavor::Alibaba), ("@dpvs", Flavor::Dpvs)] {
        if let Some(rest) = text.strip_prefix(tag) {
            return (flavor, rest.strip_prefix('\n').unwrap_or(rest).to_string());
        }
    }
    (Flavor::Upstream, text)
}

/// Everything a command can change: services with their real servers, local addresses and
/// lists (counters left out), and the timeouts. Sorted: map order is not the tables' content.
fn state(dp: &mut Dataplane) -> Result<String, String> {
    let mut services: Vec<String> = dp
        .services()
        .map_err(|e| format!("list: {e}"))?
        .into_iter()
        .map(|s| {
            let dests: Vec<String> = s.dests.iter().map(|d| format!("{:?}", d.config)).collect();
            let laddrs: Vec<String> = s
                .local_addrs
                .iter()
                .map(|l| format!("{:?}", l.addr))
                .collect();
            format!(
                "{:?} dests {dests:?} laddrs {laddrs:?} deny {:?} allow {:?}",
                s.config, s.deny, s.allow
            )
        })
        .collect();
    services.sort();
    let t = dp.timeouts().map_err(|e| format!("timeouts: {e}"))?;
    Ok(format!("{services:?} {t:?}"))
}

/// Listings write to file descriptor 1 directly: while a command runs it points at /dev/null,
/// so the test log stays readable. One at a time (the descriptor is the process').
fn quietly<T>(f: impl FnOnce() -> T) -> T {
    static STDOUT: Mutex<()> = Mutex::new(());
    let _one = STDOUT.lock().unwrap_or_else(|e| e.into_inner());
    let _ = std::io::stdout().flush();
    let saved = nix::unistd::dup(1).expect("dup stdout");
    let null = std::fs::File::options()
        .write(true)
        .open("/dev/null")
        .expect("/dev/null");
    nix::unistd::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 1).expect("dup2");
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let _ = std::io::stdout().flush();
    nix::unistd::dup2(saved, 1).expect("restore stdout");
    let _ = nix::unistd::close(saved);
    match r {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    }
}
