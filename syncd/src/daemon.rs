//! The daemon process: sets up its socket and the data plane, records itself, then runs the
//! master's scan-and-send loop or the backup's receive-and-import loop until SIGTERM/SIGINT.

use std::io;
use std::mem::MaybeUninit;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dataplane::{Dataplane, Options};
use socket2::Socket;

use crate::codec::{self, Drop};
use crate::config::{Role, Settings};
use crate::net;
use crate::records::{Tracker, conn_of, record_of};
use crate::state::{self, Running, Stats};

/// How often a master scans the connection table (IPVS_SYNC_CHECK_PERIOD is 1 s; the kernel
/// flushes a partly filled message after 2 s). `XLVS_SYNC_INTERVAL_MS` overrides it.
const SCAN_PERIOD: Duration = Duration::from_secs(1);

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn install_signals() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    // SAFETY: ignoring a signal installs no handler.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// Everything a daemon needs before it can report "started": on error nothing is recorded.
pub struct Prepared {
    pin_dir: std::path::PathBuf,
    settings: Settings,
    sock: Socket,
    dp: Dataplane,
}

/// Opens the data plane at `pin_dir` and the socket (errors as the kernel's: ENODEV for an
/// unknown interface, the socket's own errors otherwise).
pub fn prepare(pin_dir: &Path, settings: &Settings) -> io::Result<Prepared> {
    let sock = match settings.role {
        Role::Master => net::sender(settings)?,
        Role::Backup => net::receiver(settings)?,
    };
    let mut opts = Options::from_env();
    opts.pin_dir = pin_dir.to_path_buf();
    let dp = Dataplane::open(&opts).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(Prepared {
        pin_dir: pin_dir.to_path_buf(),
        settings: settings.clone(),
        sock,
        dp,
    })
}

/// Records this process as the running daemon (call once prepared, before reporting ready).
pub fn record(p: &Prepared) -> io::Result<()> {
    let pid = std::process::id();
    let r = Running {
        settings: p.settings.clone(),
        pid,
        start_time: state::start_time(pid).unwrap_or(0),
        pin_dir: p.pin_dir.clone(),
    };
    let text = serde_json::to_string(&r).map_err(io::Error::other)?;
    state::write_atomic(&state::file(&p.pin_dir, p.settings.role, "json"), &text)
}

/// Runs until SIGTERM/SIGINT, then removes this daemon's records.
pub fn run(mut p: Prepared) {
    install_signals();
    log::info!(
        "sync daemon started: state = {}, mcast_ifn = {}, syncid = {}, group = {}, port = {}",
        p.settings.role.name().to_uppercase(),
        p.settings.ifname,
        p.settings.syncid,
        p.settings.group,
        p.settings.port
    );
    let mut stats = Stats::default();
    write_stats(&p, &stats);
    match p.settings.role {
        Role::Master => master(&mut p, &mut stats),
        Role::Backup => backup(&mut p, &mut stats),
    }
    // Only our own record: a newer daemon may have replaced a stale one of ours.
    if state::running(&p.pin_dir, p.settings.role).is_some_and(|r| r.pid == std::process::id()) {
        state::remove(&p.pin_dir, p.settings.role);
    }
    log::info!("sync daemon stopped: state = {}", p.settings.role.name());
}

fn write_stats(p: &Prepared, s: &Stats) {
    if let Ok(text) = serde_json::to_string(s) {
        let _ = state::write_atomic(&state::file(&p.pin_dir, p.settings.role, "stats"), &text);
    }
}

fn scan_period() -> Duration {
    std::env::var("XLVS_SYNC_INTERVAL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(SCAN_PERIOD)
}

fn coarse_now() -> u64 {
    dataplane::estimator::clock_ns(libc::CLOCK_MONOTONIC_COARSE)
}

/// Whether the data plane is still pinned: after `xlvs unload` the daemon stops, as the
/// kernel's threads go with the ip_vs module.
fn unloaded(p: &Prepared) -> bool {
    let gone = !p.pin_dir.join(ebpf_common::maps::CONNS).exists();
    if gone {
        log::warn!(
            "the data plane at {} is gone: stopping",
            p.pin_dir.display()
        );
    }
    gone
}

fn master(p: &mut Prepared, stats: &mut Stats) {
    let period = scan_period();
    let mut tracker = Tracker::default();
    while !STOP.load(Ordering::SeqCst) && !unloaded(p) {
        let started = Instant::now();
        match p.dp.sync_export() {
            Ok(conns) => {
                let due = tracker.due(&conns, coarse_now());
                if !due.is_empty() {
                    let records: Vec<_> = due.iter().map(record_of).collect();
                    let mut failed = false;
                    for msg in
                        codec::encode(p.settings.syncid, &records, p.settings.maxlen as usize)
                    {
                        // A unicast peer's "port unreachable" surfaces on the next send: retry once.
                        let sent = p.sock.send(&msg).or_else(|_| p.sock.send(&msg));
                        match sent {
                            Ok(_) => {
                                stats.sent_messages += 1;
                                stats.sent_conns += msg[4] as u64;
                            }
                            Err(e) => {
                                log::debug!("sending a sync message: {e}");
                                stats.send_errors += 1;
                                failed = true;
                            }
                        }
                    }
                    if failed {
                        tracker.forget(&due);
                    }
                    write_stats(p, stats);
                }
            }
            Err(e) => log::warn!("reading the connection table: {e}"),
        }
        // A scan walks the whole table (about 1 s per 100 000 connections): rest at least as
        // long as it took, so a big table costs at most half a core.
        let took = started.elapsed();
        sleep_unless_stopped(period.saturating_sub(took).max(took));
    }
}

fn sleep_unless_stopped(d: Duration) {
    let end = Instant::now() + d;
    while !STOP.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= end {
            break;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(100)));
    }
}

fn backup(p: &mut Prepared, stats: &mut Stats) {
    // A datagram longer than maxlen is cut and then fails the size check, as in the kernel.
    let mut buf = vec![MaybeUninit::<u8>::uninit(); p.settings.maxlen as usize];
    let mut checked = Instant::now();
    while !STOP.load(Ordering::SeqCst) {
        if checked.elapsed() >= Duration::from_secs(1) {
            checked = Instant::now();
            if unloaded(p) {
                break;
            }
        }
        let n = match p.sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                log::warn!("receiving a sync message: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let data: Vec<u8> = buf[..n]
            .iter()
            // SAFETY: recv wrote the first `n` bytes, the only ones read.
            .map(|b| unsafe { b.assume_init() })
            .collect();
        stats.received += 1;
        handle(p, stats, &data);
        write_stats(p, stats);
    }
}

fn handle(p: &mut Prepared, stats: &mut Stats, data: &[u8]) {
    let msg = match codec::decode(data, p.settings.syncid) {
        Ok(m) => m,
        Err(Drop::OtherSyncId(id)) => {
            log::debug!("ignoring a message of syncid {id}");
            stats.other_syncid += 1;
            return;
        }
        Err(e) => {
            log::debug!("dropping a sync message: {e:?}");
            stats.malformed += 1;
            return;
        }
    };
    stats.skipped += msg.skipped as u64;
    let conns: Vec<_> = msg.records.iter().map(conn_of).collect();
    match p.dp.sync_import(&conns) {
        Ok(r) => {
            stats.inserted += r.inserted as u64;
            stats.refreshed += r.refreshed as u64;
            stats.no_service += r.no_service as u64;
            stats.unsupported += r.unsupported as u64;
        }
        Err(e) => {
            log::warn!("writing synced connections: {e}");
            stats.import_errors += 1;
        }
    }
}
