//! `xlvs reload` under traffic: clients opening a new connection per request and long-lived
//! streams run through the VIP while the program is swapped again and again. Every request must
//! succeed, every stream must keep its real, and afterwards no connection may be left behind on
//! the wrong real (a SYN sent to one real while the table sent the rest to another leaves a
//! SYN-RECV on the first and an entry that never closes). Needs root.
//!
//! `XLVS_RELOAD_ROUNDS` sets the number of reloads (default 20: a reload verifies every program
//! again, seconds each; `XLVS_RELOAD_ROUNDS=100` is the longer attack).

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use xlvs_tests::lab::{Lab, VIP};
use xlvs_tests::netns::is_root;

const PORT: u16 = 80;
const CLIENTS: usize = 4;
const STREAMS: usize = 2;

fn connect() -> Result<TcpStream> {
    let s = TcpStream::connect_timeout(
        &SocketAddr::new(IpAddr::V4(VIP), PORT),
        Duration::from_secs(3),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    Ok(s)
}

/// Sends `line` and checks the answer comes from `name` (the real the stream started on).
fn exchange(r: &mut BufReader<TcpStream>, w: &mut TcpStream, name: &str, line: &str) -> Result<()> {
    writeln!(w, "{line}")?;
    let mut echo = String::new();
    r.read_line(&mut echo)?;
    ensure!(
        echo.trim() == format!("{name} {line}"),
        "expected {name}'s echo of {line:?}, got {echo:?}"
    );
    Ok(())
}

/// One short connection: greeting, one exchange, close.
fn short_request(n: u64) -> Result<()> {
    let s = connect()?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    let mut greeting = String::new();
    r.read_line(&mut greeting)?;
    exchange(&mut r, &mut w, greeting.trim(), &format!("req{n}"))
}

/// Counts of what the load saw.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Tally {
    fn record(&self, r: Result<()>) {
        match r {
            Ok(()) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                self.first_error
                    .lock()
                    .unwrap()
                    .get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
}

#[test]
fn reloads_under_new_connections_and_streams_lose_nothing() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let rounds: usize = std::env::var("XLVS_RELOAD_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let lab = Lab::new(2)?;
    let (dp, srv) = lab.tcp_nat_service(PORT)?;

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let streams = Arc::new(Tally::default());
    let mut load = Vec::new();
    for c in 0..CLIENTS {
        let (stop, tally) = (stop.clone(), tally.clone());
        load.push(lab.client.run_in(move || {
            let mut n = (c as u64) << 32;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                tally.record(short_request(n));
            }
        }));
    }
    for _ in 0..STREAMS {
        let (stop, streams) = (stop.clone(), streams.clone());
        load.push(lab.client.run_in(move || {
            let run = || -> Result<()> {
                let s = connect()?;
                let mut w = s.try_clone()?;
                let mut r = BufReader::new(s);
                let mut greeting = String::new();
                r.read_line(&mut greeting)?;
                let name = greeting.trim().to_string();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    exchange(&mut r, &mut w, &name, &format!("line{n}"))?;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok(())
            };
            streams.record(run());
        }));
    }

    // Load first, then the reloads while it runs.
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    for i in 0..rounds {
        let out = lab.xlvs(&["reload"])?;
        ensure!(
            out.status.success(),
            "reload {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join()
            .map_err(|_| anyhow::anyhow!("load thread panicked"))??;
    }
    let (ok, failed) = (
        tally.ok.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
    );
    eprintln!(
        "{rounds} reloads in {took:?}: {ok} requests, {failed} failed; streams {} ok",
        streams.ok.load(Ordering::Relaxed)
    );
    ensure!(
        failed == 0,
        "{failed} of {} requests failed during reloads; first: {:?}",
        ok + failed,
        tally.first_error.lock().unwrap()
    );
    ensure!(
        ok > rounds as u64,
        "the load made too few requests to mean anything: {ok}"
    );
    ensure!(
        streams.failed.load(Ordering::Relaxed) == 0
            && streams.ok.load(Ordering::Relaxed) == STREAMS as u64,
        "a stream broke: {:?}",
        streams.first_error.lock().unwrap()
    );

    // Nothing left behind: every connection closed on both sides. A connection whose SYN went to
    // one real and its ACK to the other stays SYN-RECV there, and ESTABLISHED in the table.
    std::thread::sleep(Duration::from_secs(1));
    let open: Vec<_> = dp
        .connections()?
        .into_iter()
        .filter(|c| c.state == "ESTABLISHED" || c.state == "SYN_RECV")
        .collect();
    ensure!(open.is_empty(), "stale connections in the table: {open:?}");
    for (i, ns) in lab.reals.iter().enumerate() {
        let out = ns.exec("ss", &["-Htn", "state", "syn-recv"])?;
        let text = String::from_utf8_lossy(&out.stdout);
        ensure!(
            text.trim().is_empty(),
            "real {i} holds half-open connections:\n{text}"
        );
    }
    drop(srv);
    Ok(())
}

/// The same swap leaves exactly one tail-call array pinned: the running version's.
#[test]
fn a_reload_releases_the_old_versions_stages() -> Result<()> {
    if !is_root() {
        xlvs_tests::skip("needs root");
        return Ok(());
    }
    let lab = Lab::new(1)?;
    let jumps = || -> Result<Vec<String>> {
        let mut v: Vec<String> = std::fs::read_dir(&lab.opts.pin_dir)
            .context("pin dir")?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("JUMP"))
            .collect();
        v.sort();
        Ok(v)
    };
    let before = jumps()?;
    ensure!(before.len() == 1, "{before:?}");
    let out = lab.xlvs(&["reload"])?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = jumps()?;
    ensure!(
        after.len() == 1 && after != before,
        "{before:?} -> {after:?}"
    );
    Ok(())
}
