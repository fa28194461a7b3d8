//! Restart without re-election. A stop with keepalived's `-V` (`--dont-release-vrrp`) sends
//! no priority 0 and leaves the VIPs, routes and rules in place, as keepalived does; here it
//! also records, per MASTER instance, when its last advert left (and its AH sequence
//! number). The next start reads the record: an instance whose last advert is younger than
//! its master-down interval — so no backup has taken over yet — resumes as MASTER at once and
//! advertises, instead of starting in BACKUP and waiting; its peers see no transition and the
//! VIPs never leave. Older records are ignored (normal start).
//!
//! Records live under `$XLVS_RUN_DIR/vrrp/` (default `/run/xlvs/vrrp/`), named by the network
//! namespace and the instance, so two daemons in different namespaces never share one.

use std::path::PathBuf;

use super::*;

/// CLOCK_MONOTONIC in µs: the same clock for every process of one boot.
pub(super) fn monotonic_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

fn run_dir() -> PathBuf {
    std::env::var_os("XLVS_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/xlvs"))
        .join("vrrp")
}

fn record_path(instance: &str) -> PathBuf {
    let ns = std::fs::metadata("/proc/self/ns/net")
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
        .unwrap_or(0);
    let safe: String = instance
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    run_dir().join(format!("{ns}-{safe}.master"))
}

/// What a detached MASTER left for its successor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Record {
    pub vrid: u8,
    pub interface: String,
    /// CLOCK_MONOTONIC µs of the last advert sent.
    pub last_advert_us: u64,
    pub ah_seq: u32,
}

impl Record {
    fn text(&self) -> String {
        format!(
            "{} {} {} {}\n",
            self.vrid, self.interface, self.last_advert_us, self.ah_seq
        )
    }

    fn parse(s: &str) -> Option<Record> {
        let mut w = s.split_whitespace();
        Some(Record {
            vrid: w.next()?.parse().ok()?,
            interface: w.next()?.to_string(),
            last_advert_us: w.next()?.parse().ok()?,
            ah_seq: w.next()?.parse().ok()?,
        })
    }
}

/// Writes the record of a MASTER instance being left in place.
pub(super) fn save(instance: &str, r: &Record) {
    let p = record_path(instance);
    let res = std::fs::create_dir_all(run_dir()).and_then(|()| std::fs::write(&p, r.text()));
    if let Err(e) = res {
        log::warn!(
            "({instance}) cannot record its MASTER state in {}: {e}",
            p.display()
        );
    }
}

/// The record an instance left, removed as it is read (a record is used once).
pub(super) fn take(instance: &str) -> Option<Record> {
    let p = record_path(instance);
    let text = std::fs::read_to_string(&p).ok()?;
    let _ = std::fs::remove_file(&p);
    Record::parse(&text)
}

impl Engine {
    /// keepalived's stop with `-V`: no priority 0, addresses left; MASTER instances record
    /// their last advert for the next start. Static entries go, as keepalived removes them.
    pub(super) fn detach(&mut self) {
        log::info!("Stopping, leaving VIPs in place (dont_release_vrrp)");
        for inst in &self.insts {
            if inst.sm.state() != State::Master {
                continue;
            }
            let Some(last) = inst.last_advert_us else {
                continue;
            };
            save(
                &inst.cfg.name,
                &Record {
                    vrid: inst.cfg.vrid,
                    interface: inst.cfg.interface.clone(),
                    last_advert_us: last,
                    ah_seq: inst.ah.seq,
                },
            );
        }
        self.remove_statics();
        self.stop_tasks();
    }

    /// At start: instances a restart left MASTER within their master-down interval.
    pub(super) fn resumable(&self) -> HashMap<String, Record> {
        let now = monotonic_us();
        let mut out = HashMap::new();
        for inst in &self.insts {
            let Some(r) = take(&inst.cfg.name) else {
                continue;
            };
            let age = now.saturating_sub(r.last_advert_us);
            // Our own master-down interval: a backup's (lower priority, longer skew) is longer.
            let window = inst.sm.master_down_us();
            if r.vrid == inst.cfg.vrid && r.interface == inst.cfg.interface && age < window {
                log::info!(
                    "({}) restarted {} ms after its last advert (< {} ms): resuming MASTER",
                    inst.cfg.name,
                    age / 1000,
                    window / 1000
                );
                out.insert(inst.cfg.name.clone(), r);
            } else {
                log::info!(
                    "({}) a previous MASTER record is too old ({} ms) - normal start",
                    inst.cfg.name,
                    age / 1000
                );
            }
        }
        out
    }

    /// Takes up MASTER at once after a restart: an advert now, then what becoming MASTER
    /// does (addresses — still there — GARPs, notifies, the event).
    pub(super) fn resume_master(&mut self, idx: usize, now: Micros, r: &Record) {
        // AH peers accept only newer sequence numbers: continue where we were.
        self.insts[idx].ah.seq = r.ah_seq;
        let actions = self.insts[idx].sm.resume(now, State::Master);
        self.apply(idx, actions, now);
        if self.insts[idx].sm.state() == State::Master {
            self.transition(idx, State::Init, State::Master, Reason::Startup);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip() {
        let r = Record {
            vrid: 51,
            interface: "eth0".into(),
            last_advert_us: 123_456_789,
            ah_seq: 42,
        };
        assert_eq!(Record::parse(&r.text()), Some(r));
        assert_eq!(Record::parse("garbage"), None);
    }
}
