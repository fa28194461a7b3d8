//! The VRRP state machine of one instance, as keepalived runs it (RFC 3768 / RFC 5798).
//!
//! Pure and deterministic: time is passed in (microseconds on any monotonic clock) and the
//! machine answers with [`Action`]s (send an advert, change state). The daemon owns sockets,
//! addresses and scripts and asks [`Instance::next_deadline`] when to call [`Instance::on_timer`].

use std::net::IpAddr;

use crate::codec::Advert;

/// Microseconds on a monotonic clock.
pub type Micros = u64;

/// Priority of the address owner.
pub const PRIO_OWNER: u8 = 255;
/// Priority of an advert from a master leaving.
pub const PRIO_STOP: u8 = 0;

/// An instance's VRRP state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not started.
    Init,
    /// Listening to a master.
    Backup,
    /// Holding the VIPs and sending adverts.
    Master,
    /// Tracking failed: neither master nor backup.
    Fault,
}

impl State {
    /// keepalived's word for the state (notify scripts, logs).
    pub fn keyword(self) -> &'static str {
        match self {
            State::Init => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        }
    }
}

/// Why a transition happened (logged, and reported to the route bridge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The daemon started the instance.
    Startup,
    /// Master down timer expired.
    MasterDown,
    /// A higher priority (or equal priority, higher address) master was heard.
    HigherPriority,
    /// Tracking (interface, script, file) failed or recovered.
    Tracking,
    /// Another member of the sync group moved.
    SyncGroup,
    /// The daemon is stopping.
    Shutdown,
}

/// What the daemon must do after a step of the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send one advertisement with this priority.
    SendAdvert {
        /// Priority to advertise (0: leaving).
        priority: u8,
    },
    /// As MASTER, an advert from another master with a lower priority was received.
    LowerPriorityMaster {
        /// The other master's address.
        from: IpAddr,
    },
    /// State changed: the daemon adds/removes VIPs, sends GARPs, runs notify scripts.
    Transition {
        /// State before.
        from: State,
        /// State after.
        to: State,
        /// Why.
        reason: Reason,
    },
}

/// Configuration of an instance, in the machine's units.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// VRRP version.
    pub version: u8,
    /// Configured priority (1..255).
    pub base_priority: u8,
    /// Own advertisement interval, centiseconds.
    pub adver_int_cs: u32,
    /// A higher priority takes over from a lower master.
    pub preempt: bool,
    /// How long a takeover waits after start.
    pub preempt_delay_us: Micros,
    /// `down_timer_adverts` (default 3).
    pub down_timer_adverts: u32,
    /// Our primary address on the interface (equal-priority tie-break).
    pub own_addr: IpAddr,
    /// `lower_prio_no_advert`: a master hearing a lower priority does not answer at once.
    pub lower_prio_no_advert: bool,
    /// `higher_prio_send_advert`: a master hearing a higher priority sends one advert of its
    /// own before it steps down.
    pub higher_prio_send_advert: bool,
}

/// One VRRP instance's state machine (RFC 5798 with keepalived's variations), without I/O.
#[derive(Debug, Clone)]
pub struct Instance {
    /// Its configuration.
    pub params: Params,
    state: State,
    /// Priority after tracking (1..255).
    effective_priority: u8,
    /// Tracking says FAULT.
    fault: bool,
    /// Interval adopted from the master (v3) or our own (v2), centiseconds.
    master_adver_int_cs: u32,
    /// MASTER: when the next advert is due.
    adver_timer: Option<Micros>,
    /// BACKUP: when the master is declared down.
    down_timer: Option<Micros>,
    /// Preemption of a lower priority master is held back until then.
    preempt_until: Option<Micros>,
    /// The address of the master we last heard (BACKUP).
    pub master_addr: Option<IpAddr>,
    /// When an advert last restarted our master down timer.
    last_heard: Option<Micros>,
}

impl Instance {
    /// An instance in INIT.
    pub fn new(params: Params) -> Instance {
        Instance {
            effective_priority: params.base_priority,
            master_adver_int_cs: params.adver_int_cs,
            params,
            state: State::Init,
            fault: false,
            adver_timer: None,
            down_timer: None,
            preempt_until: None,
            master_addr: None,
            last_heard: None,
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }
    /// Priority after tracking.
    pub fn effective_priority(&self) -> u8 {
        self.effective_priority
    }
    /// The master's advert interval as heard, centiseconds.
    pub fn master_adver_int_cs(&self) -> u32 {
        self.master_adver_int_cs
    }

    /// Skew_Time in µs: v2 (256−prio)/256 s; v3 (256−prio)·Master_Adver_Int/256.
    pub fn skew_us(&self) -> Micros {
        let p = 256 - u64::from(self.effective_priority);
        if self.params.version == 2 {
            p * 1_000_000 / 256
        } else {
            p * u64::from(self.master_adver_int_cs) * 10_000 / 256
        }
    }

    /// Master_Down_Interval in µs.
    pub fn master_down_us(&self) -> Micros {
        u64::from(self.params.down_timer_adverts) * u64::from(self.master_adver_int_cs) * 10_000
            + self.skew_us()
    }

    fn adver_us(&self) -> Micros {
        u64::from(self.params.adver_int_cs) * 10_000
    }

    /// Earliest time [`Instance::on_timer`] has something to do.
    pub fn next_deadline(&self) -> Option<Micros> {
        match self.state {
            State::Master => self.adver_timer,
            State::Backup => self.down_timer,
            _ => None,
        }
    }

    /// Leaves INIT: the address owner becomes MASTER at once, everyone else BACKUP and waits
    /// for the master down timer (keepalived 2.2.7 does so even with `state MASTER`).
    pub fn start(&mut self, now: Micros) -> Vec<Action> {
        if self.params.preempt_delay_us > 0 {
            self.preempt_until = Some(now + self.params.preempt_delay_us);
        }
        if self.fault {
            return self.go(now, State::Fault, Reason::Startup);
        }
        if self.effective_priority == PRIO_OWNER {
            self.go(now, State::Master, Reason::Startup)
        } else {
            self.go(now, State::Backup, Reason::Startup)
        }
    }

    /// A checked advertisement from `src` for our VRID.
    pub fn on_advert(&mut self, now: Micros, src: IpAddr, adv: &Advert) -> Vec<Action> {
        match self.state {
            State::Backup => {
                if adv.priority == PRIO_STOP {
                    // The master resigned: take over after Skew_Time only.
                    self.down_timer = Some(now + self.skew_us());
                    return vec![];
                }
                let lower = adv.priority < self.effective_priority;
                let held_back = !self.params.preempt || self.preempt_until.is_some_and(|t| now < t);
                if !lower || held_back {
                    if self.params.version == 3 {
                        self.master_adver_int_cs = adv.interval_cs().max(1);
                    }
                    self.master_addr = Some(src);
                    self.last_heard = Some(now);
                    self.down_timer = Some(now + self.master_down_us());
                }
                // Lower priority and preemption allowed: ignore it, the down timer fires.
                vec![]
            }
            State::Master => {
                if adv.priority == PRIO_STOP {
                    // Another master resigned: assert ourselves at once.
                    self.adver_timer = Some(now + self.adver_us());
                    return vec![Action::SendAdvert {
                        priority: self.effective_priority,
                    }];
                }
                let wins = adv.priority > self.effective_priority
                    || (adv.priority == self.effective_priority
                        && addr_greater(src, self.params.own_addr));
                if wins {
                    let mut out = Vec::new();
                    if self.params.higher_prio_send_advert {
                        out.push(Action::SendAdvert {
                            priority: self.effective_priority,
                        });
                    }
                    if self.params.version == 3 {
                        self.master_adver_int_cs = adv.interval_cs().max(1);
                    }
                    self.master_addr = Some(src);
                    out.extend(self.go(now, State::Backup, Reason::HigherPriority));
                    return out;
                }
                // Another master with a lower priority: GARPs (garp_lower_prio_*) and
                // notify_master_rx_lower_pri, and unless lower_prio_no_advert an advert at
                // once to force a new election.
                let mut out = vec![Action::LowerPriorityMaster { from: src }];
                if !self.params.lower_prio_no_advert {
                    self.adver_timer = Some(now + self.adver_us());
                    out.push(Action::SendAdvert {
                        priority: self.effective_priority,
                    });
                }
                out
            }
            State::Init | State::Fault => vec![],
        }
    }

    /// BACKUP and a master was heard within the master down interval: a sync group member
    /// in this state keeps the others from going MASTER (keepalived's
    /// `vrrp_sync_can_goto_master`).
    pub fn hears_master(&self, now: Micros) -> bool {
        self.state == State::Backup
            && self
                .last_heard
                .is_some_and(|t| now.saturating_sub(t) < self.master_down_us())
    }

    /// Whether the master down timer has expired (BACKUP).
    pub fn master_down_due(&self, now: Micros) -> bool {
        self.state == State::Backup && self.down_timer.is_some_and(|t| now >= t)
    }

    /// A sync group member that may not go MASTER yet checks again after Skew_Time.
    pub fn defer(&mut self, now: Micros) {
        if self.state == State::Backup {
            self.down_timer = Some(now + self.skew_us().max(1_000));
        }
    }

    /// Timers: adverts as MASTER, master down as BACKUP.
    pub fn on_timer(&mut self, now: Micros) -> Vec<Action> {
        match self.state {
            State::Master if self.adver_timer.is_some_and(|t| now >= t) => {
                self.adver_timer = Some(now + self.adver_us());
                vec![Action::SendAdvert {
                    priority: self.effective_priority,
                }]
            }
            State::Backup if self.down_timer.is_some_and(|t| now >= t) => {
                self.go(now, State::Master, Reason::MasterDown)
            }
            _ => vec![],
        }
    }

    /// New tracking result: effective priority and whether tracking says FAULT.
    pub fn set_tracking(&mut self, now: Micros, priority: u8, fault: bool) -> Vec<Action> {
        let prio = priority.max(1);
        let changed_prio = prio != self.effective_priority;
        self.effective_priority = prio;
        self.fault = fault;
        match (self.state, fault) {
            (State::Init, _) => vec![],
            // keepalived's try_up_instance: the address owner goes straight back to MASTER.
            (State::Fault, false) if self.effective_priority == PRIO_OWNER => {
                self.go(now, State::Master, Reason::Tracking)
            }
            (State::Fault, false) => self.go(now, State::Backup, Reason::Tracking),
            (State::Fault, true) => vec![],
            (_, true) => self.go(now, State::Fault, Reason::Tracking),
            (State::Master, false) if changed_prio => {
                // Tell the backups at once (a lowered master may be preempted now).
                self.adver_timer = Some(now + self.adver_us());
                vec![Action::SendAdvert { priority: prio }]
            }
            _ => vec![],
        }
    }

    /// Moves to `to` because another member of the sync group did.
    pub fn force(&mut self, now: Micros, to: State) -> Vec<Action> {
        if self.state == to || self.state == State::Init {
            return vec![];
        }
        if to != State::Fault && self.fault {
            return vec![];
        }
        self.go(now, to, Reason::SyncGroup)
    }

    /// After a reload: takes up `state` again without a transition (no notify, no event).
    /// A MASTER advertises at once; a BACKUP restarts its master down timer; FAULT follows
    /// tracking at the next [`Instance::set_tracking`].
    pub fn resume(&mut self, now: Micros, state: State) -> Vec<Action> {
        if self.params.preempt_delay_us > 0 {
            self.preempt_until = Some(now + self.params.preempt_delay_us);
        }
        match state {
            State::Master if !self.fault => {
                self.state = State::Master;
                self.adver_timer = Some(now + self.adver_us());
                vec![Action::SendAdvert {
                    priority: self.effective_priority,
                }]
            }
            State::Init => self.start(now),
            _ if self.fault => self.go(now, State::Fault, Reason::Tracking),
            _ => {
                self.state = State::Backup;
                self.down_timer = Some(now + self.master_down_us());
                vec![]
            }
        }
    }

    /// Stop: a MASTER sends priority 0 so a backup takes over after Skew_Time only.
    pub fn shutdown(&mut self, now: Micros) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Master {
            out.push(Action::SendAdvert {
                priority: PRIO_STOP,
            });
        }
        let from = self.state;
        self.state = State::Init;
        self.adver_timer = None;
        self.down_timer = None;
        let _ = now;
        out.push(Action::Transition {
            from,
            to: State::Init,
            reason: Reason::Shutdown,
        });
        out
    }

    fn go(&mut self, now: Micros, to: State, reason: Reason) -> Vec<Action> {
        let from = self.state;
        let mut out = Vec::new();
        if from == State::Master && to != State::Master {
            // Leaving MASTER (tracking fault, sync group): resign so a backup takes over fast.
            if to == State::Fault || reason == Reason::SyncGroup {
                out.push(Action::SendAdvert {
                    priority: PRIO_STOP,
                });
            }
        }
        self.state = to;
        self.adver_timer = None;
        self.down_timer = None;
        match to {
            State::Master => {
                self.master_adver_int_cs = self.params.adver_int_cs;
                self.master_addr = None;
                out.push(Action::SendAdvert {
                    priority: self.effective_priority,
                });
                self.adver_timer = Some(now + self.adver_us());
            }
            State::Backup => {
                if reason != Reason::HigherPriority {
                    self.master_adver_int_cs = self.params.adver_int_cs;
                }
                self.down_timer = Some(now + self.master_down_us());
            }
            State::Init | State::Fault => {}
        }
        if from != to {
            out.push(Action::Transition { from, to, reason });
        }
        out
    }
}

/// RFC tie-break: the numerically greater primary address wins.
fn addr_greater(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a > b,
        (IpAddr::V6(a), IpAddr::V6(b)) => a > b,
        _ => false,
    }
}

#[cfg(test)]
mod tests;
