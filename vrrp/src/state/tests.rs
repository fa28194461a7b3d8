//! Table-driven scenarios on a deterministic clock.

use super::*;

const PEER_LOW: [u8; 4] = [198, 18, 0, 1];
const OWN: [u8; 4] = [198, 18, 0, 2];
const PEER_HIGH: [u8; 4] = [198, 18, 0, 3];

fn params(version: u8, prio: u8, adver_int_cs: u32) -> Params {
    Params {
        version,
        base_priority: prio,
        adver_int_cs,
        preempt: true,
        preempt_delay_us: 0,
        down_timer_adverts: 3,
        own_addr: IpAddr::from(OWN),
        lower_prio_no_advert: false,
        higher_prio_send_advert: false,
    }
}

fn adv(version: u8, priority: u8, interval_cs: u16) -> Advert {
    Advert {
        version,
        vrid: 51,
        priority,
        adver_int: if version == 2 {
            interval_cs / 100
        } else {
            interval_cs
        },
        auth_type: 0,
        auth_data: [0; 8],
        addresses: vec![],
    }
}

#[derive(Debug, Clone)]
enum Ev {
    Start,
    /// Advert from address with priority and interval (cs).
    Adv([u8; 4], u8, u16),
    Timer,
    Track(u8, bool),
    Force(State),
    Shutdown,
}

/// Runs `steps` (time in ms, event, expected state after, expected adverts sent) on `p`.
fn run(name: &str, p: Params, steps: &[(u64, Ev, State, &[u8])]) {
    let mut i = Instance::new(p);
    let v = i.params.version;
    for (n, (ms, ev, want, sent)) in steps.iter().enumerate() {
        let now = ms * 1000;
        let actions = match ev {
            Ev::Start => i.start(now),
            Ev::Adv(src, prio, int) => i.on_advert(now, IpAddr::from(*src), &adv(v, *prio, *int)),
            Ev::Timer => i.on_timer(now),
            Ev::Track(prio, fault) => i.set_tracking(now, *prio, *fault),
            Ev::Force(s) => i.force(now, *s),
            Ev::Shutdown => i.shutdown(now),
        };
        if let Ev::Adv(_, prio, _) = ev
            && i.state() == Master
            && *prio != 0
            && *prio < i.effective_priority()
        {
            assert!(
                actions.contains(&Action::LowerPriorityMaster {
                    from: IpAddr::from(match ev {
                        Ev::Adv(a, _, _) => *a,
                        _ => unreachable!(),
                    })
                }),
                "{name}: lower-priority master reported at step {n}"
            );
        }
        let adverts: Vec<u8> = actions
            .iter()
            .filter_map(|a| match a {
                Action::SendAdvert { priority } => Some(*priority),
                _ => None,
            })
            .collect();
        assert_eq!(i.state(), *want, "{name}: step {n} {ev:?} at {ms} ms");
        assert_eq!(adverts, *sent, "{name}: adverts at step {n} {ev:?}");
    }
}

use Ev::*;
use State::*;

#[test]
fn timers_follow_the_rfc() {
    let i = Instance::new(params(2, 100, 100));
    // v2: skew (256-100)/256 s = 609 375 µs; down = 3 s + skew.
    assert_eq!(i.skew_us(), 609_375);
    assert_eq!(i.master_down_us(), 3_609_375);
    let i = Instance::new(params(3, 150, 10));
    // v3: skew (256-150)·10 cs/256 = 41.40625 ms.
    assert_eq!(i.skew_us(), 41_406);
    assert_eq!(i.master_down_us(), 341_406);
    let i = Instance::new(params(3, 200, 1));
    assert_eq!(i.master_down_us(), 30_000 + 2_187);
}

#[test]
fn backup_becomes_master_when_the_master_is_silent() {
    run(
        "silent",
        params(2, 100, 100),
        &[
            (0, Start, Backup, &[]),
            (3609, Timer, Backup, &[]),
            (3610, Timer, Master, &[100]),
            (4000, Timer, Master, &[]),
            (4610, Timer, Master, &[100]),
            (5610, Timer, Master, &[100]),
        ],
    );
}

#[test]
fn owner_is_master_at_once() {
    run(
        "owner",
        params(2, 255, 100),
        &[
            (0, Start, Master, &[255]),
            (100, Adv(PEER_HIGH, 254, 100), Master, &[255]),
        ],
    );
}

#[test]
fn higher_priority_master_keeps_us_backup() {
    run(
        "higher",
        params(2, 100, 100),
        &[
            (0, Start, Backup, &[]),
            (1000, Adv(PEER_LOW, 150, 100), Backup, &[]),
            (2000, Adv(PEER_LOW, 150, 100), Backup, &[]),
            // Down timer restarted at 2000: fires at 2000 + 3609.375.
            (5000, Timer, Backup, &[]),
            (5609, Timer, Backup, &[]),
            (5610, Timer, Master, &[100]),
        ],
    );
}

#[test]
fn equal_priority_backup_does_not_preempt() {
    run(
        "equal",
        params(2, 100, 100),
        &[
            (0, Start, Backup, &[]),
            (1000, Adv(PEER_LOW, 100, 100), Backup, &[]),
            (4000, Timer, Backup, &[]),
        ],
    );
}

#[test]
fn lower_priority_master_is_preempted() {
    run(
        "preempt",
        params(2, 150, 100),
        &[
            (0, Start, Backup, &[]),
            (1000, Adv(PEER_LOW, 100, 100), Backup, &[]),
            (2000, Adv(PEER_LOW, 100, 100), Backup, &[]),
            // The lower adverts did not restart the timer: 3 s + (256-150)/256 s from start.
            (3415, Timer, Master, &[150]),
        ],
    );
}

#[test]
fn nopreempt_stays_backup() {
    let mut p = params(2, 150, 100);
    p.preempt = false;
    run(
        "nopreempt",
        p,
        &[
            (0, Start, Backup, &[]),
            (1000, Adv(PEER_LOW, 100, 100), Backup, &[]),
            (2000, Adv(PEER_LOW, 100, 100), Backup, &[]),
            (3415, Timer, Backup, &[]),
            (5000, Adv(PEER_LOW, 100, 100), Backup, &[]),
            // The master dies: we still take over after the down timer.
            (8415, Timer, Master, &[150]),
        ],
    );
}

#[test]
fn preempt_delay_holds_preemption() {
    let mut p = params(2, 150, 100);
    p.preempt_delay_us = 10_000_000;
    run(
        "preempt_delay",
        p,
        &[
            (0, Start, Backup, &[]),
            (1000, Adv(PEER_LOW, 100, 100), Backup, &[]),
            (4000, Adv(PEER_LOW, 100, 100), Backup, &[]),
            (7000, Adv(PEER_LOW, 100, 100), Backup, &[]),
            (9500, Adv(PEER_LOW, 100, 100), Backup, &[]),
            (10500, Adv(PEER_LOW, 100, 100), Backup, &[]),
            (12000, Timer, Backup, &[]),
            // Last reset at 9500 (before the delay ended): 9500 + 3414.0625.
            (12915, Timer, Master, &[150]),
        ],
    );
}

#[test]
fn priority_zero_means_takeover_after_skew() {
    run(
        "prio0",
        params(2, 100, 100),
        &[
            (0, Start, Backup, &[]),
            (1000, Adv(PEER_LOW, 150, 100), Backup, &[]),
            (1500, Adv(PEER_LOW, 0, 100), Backup, &[]),
            (2109, Timer, Backup, &[]),
            (2110, Timer, Master, &[100]),
        ],
    );
}

#[test]
fn master_yields_to_higher_priority_and_higher_address() {
    run(
        "yield",
        params(2, 100, 100),
        &[
            (0, Start, Backup, &[]),
            (3610, Timer, Master, &[100]),
            // Lower priority: answer at once (new election), stay.
            (3700, Adv(PEER_HIGH, 99, 100), Master, &[100]),
            // Equal priority, lower address: stay.
            (3800, Adv(PEER_LOW, 100, 100), Master, &[100]),
            // Equal priority, higher address: yield.
            (3900, Adv(PEER_HIGH, 100, 100), Backup, &[]),
        ],
    );
    run(
        "yield-prio",
        params(2, 100, 100),
        &[
            (0, Start, Backup, &[]),
            (3610, Timer, Master, &[100]),
            (3700, Adv(PEER_LOW, 101, 100), Backup, &[]),
            // Master down timer restarted: 3700 + 3609.375.
            (7309, Timer, Backup, &[]),
            (7310, Timer, Master, &[100]),
        ],
    );
}

#[test]
fn master_answers_a_resigning_peer() {
    run(
        "master-prio0",
        params(3, 100, 100),
        &[
            (0, Start, Backup, &[]),
            (3610, Timer, Master, &[100]),
            (3700, Adv(PEER_HIGH, 0, 100), Master, &[100]),
        ],
    );
}

#[test]
fn v3_backup_adopts_master_interval() {
    run(
        "v3-adopt",
        params(3, 100, 100),
        &[
            (0, Start, Backup, &[]),
            // Master advertises every 10 cs: down = 300 ms + (156·10/256) cs = 360.9375 ms.
            (100, Adv(PEER_LOW, 200, 10), Backup, &[]),
            (460, Timer, Backup, &[]),
            (461, Timer, Master, &[100]),
            // As master we advertise with our own interval (1 s).
            (1000, Timer, Master, &[]),
            (1461, Timer, Master, &[100]),
        ],
    );
}

#[test]
fn centisecond_adverts() {
    run(
        "v3-1cs",
        params(3, 200, 1),
        &[
            (0, Start, Backup, &[]),
            (33, Timer, Master, &[200]),
            (43, Timer, Master, &[200]),
            (53, Timer, Master, &[200]),
        ],
    );
}

#[test]
fn tracking_fault_and_recovery() {
    run(
        "fault",
        params(2, 100, 100),
        &[
            (0, Start, Backup, &[]),
            (3610, Timer, Master, &[100]),
            // Priority drop is advertised at once.
            (4000, Track(80, false), Master, &[80]),
            (4100, Track(80, true), Fault, &[0]),
            (5000, Adv(PEER_LOW, 50, 100), Fault, &[]),
            (9000, Timer, Fault, &[]),
            (9100, Track(100, false), Backup, &[]),
            (12709, Timer, Backup, &[]),
            (12710, Timer, Master, &[100]),
        ],
    );
    // Faulty from the start.
    let mut i = Instance::new(params(2, 100, 100));
    i.set_tracking(0, 100, true);
    i.start(0);
    assert_eq!(i.state(), Fault);
}

#[test]
fn lower_effective_priority_lets_the_backup_preempt() {
    // We are backup 100; the master drops to 90 through tracking: its next advert (90) no
    // longer restarts our timer, so we preempt.
    run(
        "track-preempt",
        params(2, 100, 100),
        &[
            (0, Start, Backup, &[]),
            (500, Adv(PEER_LOW, 110, 100), Backup, &[]),
            (1500, Adv(PEER_LOW, 90, 100), Backup, &[]),
            (2500, Adv(PEER_LOW, 90, 100), Backup, &[]),
            (4109, Timer, Backup, &[]),
            (4110, Timer, Master, &[100]),
        ],
    );
}

#[test]
fn sync_group_force_and_shutdown() {
    run(
        "force",
        params(2, 100, 100),
        &[
            (0, Start, Backup, &[]),
            (100, Force(Master), Master, &[100]),
            (200, Force(Backup), Backup, &[0]),
            (300, Force(Fault), Fault, &[]),
            (400, Force(Backup), Backup, &[]),
            (500, Force(Master), Master, &[100]),
            (600, Shutdown, Init, &[0]),
            (5000, Timer, Init, &[]),
        ],
    );
    run(
        "shutdown-backup",
        params(2, 100, 100),
        &[(0, Start, Backup, &[]), (10, Shutdown, Init, &[])],
    );
}

#[test]
fn adverts_in_init_are_ignored() {
    run(
        "init",
        params(2, 100, 100),
        &[
            (0, Adv(PEER_LOW, 50, 100), Init, &[]),
            (10, Timer, Init, &[]),
        ],
    );
}

#[test]
fn resume_after_reload_is_silent() {
    let mut i = Instance::new(params(2, 100, 100));
    assert_eq!(
        i.resume(0, Master),
        vec![Action::SendAdvert { priority: 100 }]
    );
    assert_eq!(i.state(), Master);
    assert_eq!(
        i.on_timer(1_000_000),
        vec![Action::SendAdvert { priority: 100 }]
    );
    let mut b = Instance::new(params(2, 100, 100));
    assert_eq!(b.resume(0, Backup), vec![]);
    assert_eq!(b.state(), Backup);
    assert_eq!(b.next_deadline(), Some(3_609_375));
    let mut f = Instance::new(params(2, 100, 100));
    f.set_tracking(0, 100, true);
    f.resume(0, Master);
    assert_eq!(f.state(), Fault);
}

#[test]
fn sync_group_member_hearing_a_master_defers_the_others() {
    let mut heard = Instance::new(params(3, 100, 10));
    heard.start(0);
    assert!(!heard.hears_master(0));
    heard.on_advert(100_000, IpAddr::from(PEER_LOW), &adv(3, 150, 10));
    assert!(heard.hears_master(200_000));
    // Master down interval 360.9 ms after the last advert: no longer.
    assert!(!heard.hears_master(461_000));
    let mut other = Instance::new(params(3, 100, 10));
    other.start(0);
    assert!(other.master_down_due(361_000));
    other.defer(361_000);
    assert!(!other.master_down_due(361_000));
    assert_eq!(other.next_deadline(), Some(361_000 + other.skew_us()));
    assert_eq!(other.state(), Backup);
}

#[test]
fn higher_prio_send_advert_answers_before_stepping_down() {
    let mut p = params(2, 100, 100);
    p.higher_prio_send_advert = true;
    run(
        "higher-prio-send-advert",
        p,
        &[
            (0, Start, Backup, &[]),
            (3610, Timer, Master, &[100]),
            // A higher priority: one advert of ours, then BACKUP.
            (3700, Adv(PEER_LOW, 101, 100), Backup, &[100]),
        ],
    );
}
