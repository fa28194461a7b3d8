//! One BFD session (RFC 5880 asynchronous mode) on a deterministic clock, with the choices
//! keepalived's `bfd_scheduler.c` makes: the Down → Init → Up handshake, the idle
//! transmission interval (`idle_tx`) while not Up and `min_tx` once Up (announced with a Poll
//! Sequence), transmission jittered to 75–90 % of the interval, the detection time from the
//! neighbour's multiplier and the slower of our `min_rx` and its transmission interval, a
//! neighbour's AdminDown or Down taking the session Down ("Neighbor Signaled Session Down"),
//! and passive sessions that only answer. Unlike 2.2.7 it also sends a packet at once when
//! its state changes (RFC 5880 §6.8.7 allows it; convergence takes one round trip instead of
//! up to an idle interval) and AdminDown when stopped.

use crate::codec::{Packet, State, diag};

/// µs on the daemon's monotonic clock.
pub type Micros = u64;

/// A session's configuration (µs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Desired Min RX Interval.
    pub min_rx: u32,
    /// Desired Min TX Interval while up.
    pub min_tx: u32,
    /// TX interval while not up.
    pub idle_tx: u32,
    /// Detect Mult sent.
    pub multiplier: u8,
    /// Wait for the neighbour's first packet before sending.
    pub passive: bool,
}

/// What a step produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// Send a packet now ([`Session::packet`]).
    pub send: bool,
    /// The session went from one state to another (with the local diagnostic).
    pub changed: Option<(State, State, u8)>,
    /// Expired: (µs since the last packet, µs past the detection time).
    pub expired: Option<(u64, u64)>,
    /// The detection time changed: (now, before), µs.
    pub detect_time: Option<(u64, u64)>,
}

/// One BFD session's state machine (RFC 5880 §6.8.6), without I/O.
#[derive(Debug, Clone)]
pub struct Session {
    p: Params,
    state: State,
    remote_state: State,
    local_discr: u32,
    remote_discr: u32,
    local_diag: u8,
    remote_diag: u8,
    remote_min_rx: u32,
    remote_min_tx: u32,
    remote_mult: u8,
    poll: bool,
    final_: bool,
    /// The Desired Min TX Interval we announce.
    desired_tx: u32,
    /// The interval we transmit at (before jitter).
    tx_interval: u64,
    detect_time: u64,
    next_tx: Option<Micros>,
    last_rx: Option<Micros>,
}

impl Session {
    /// A new session in Down; `discr`: its (non-zero) local discriminator.
    pub fn new(p: Params, discr: u32, now: Micros) -> Session {
        Session {
            p,
            state: State::Down,
            remote_state: State::Down,
            local_discr: discr.max(1),
            remote_discr: 0,
            local_diag: diag::NONE,
            remote_diag: diag::NONE,
            remote_min_rx: 0,
            remote_min_tx: 0,
            remote_mult: 0,
            poll: false,
            final_: false,
            desired_tx: p.idle_tx,
            tx_interval: u64::from(p.idle_tx),
            detect_time: 0,
            next_tx: (!p.passive).then_some(now),
            last_rx: None,
        }
    }

    /// Local session state.
    pub fn state(&self) -> State {
        self.state
    }
    /// Our discriminator.
    pub fn local_discr(&self) -> u32 {
        self.local_discr
    }
    /// The last diagnostic the neighbour sent.
    pub fn remote_diag(&self) -> u8 {
        self.remote_diag
    }
    /// The configuration it runs with.
    pub fn params(&self) -> Params {
        self.p
    }
    /// Current transmit interval, µs.
    pub fn tx_interval(&self) -> u64 {
        self.tx_interval
    }
    /// Current detection time, µs (0: not detecting yet).
    pub fn detect_time(&self) -> u64 {
        self.detect_time
    }

    /// The next time something is due.
    pub fn next_deadline(&self) -> Option<Micros> {
        let expiry = self.expiry();
        match (self.next_tx, expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn expiry(&self) -> Option<Micros> {
        match self.state {
            State::Init | State::Up => self.last_rx.map(|t| t + self.detect_time),
            _ => None,
        }
    }

    /// The packet to send now; clears the Final bit once sent.
    pub fn packet(&mut self) -> Packet {
        let p = Packet {
            diag: self.local_diag,
            state: self.state,
            // Answering a Poll takes precedence over our own (never both bits).
            poll: self.poll && !self.final_,
            final_: self.final_,
            cpi: false,
            auth: false,
            demand: false,
            multipoint: false,
            detect_mult: self.p.multiplier,
            my_discr: self.local_discr,
            your_discr: self.remote_discr,
            desired_min_tx: self.desired_tx,
            required_min_rx: self.p.min_rx,
            required_min_echo_rx: 0,
        };
        self.final_ = false;
        p
    }

    /// Schedules the next periodic packet after one was sent; `jitter` in [0, 1).
    pub fn sent(&mut self, now: Micros, jitter: f64) {
        if self.state == State::AdminDown || (self.p.passive && self.remote_discr == 0) {
            self.next_tx = None;
            return;
        }
        // keepalived takes 10–25 % off every interval.
        let cut = 0.10 + 0.15 * jitter.clamp(0.0, 1.0);
        self.next_tx = Some(now + (self.tx_interval as f64 * (1.0 - cut)) as u64);
    }

    fn recompute_tx(&mut self) {
        self.tx_interval = u64::from(self.desired_tx.max(self.remote_min_rx));
    }

    fn set_state(&mut self, to: State, d: u8, out: &mut Output) {
        let from = self.state;
        if from == to {
            return;
        }
        self.state = to;
        self.local_diag = d;
        match to {
            State::Up => {
                if self.desired_tx != self.p.min_tx {
                    // Faster once Up: announced with a Poll Sequence (a decrease applies
                    // at once, RFC 5880 §6.8.3).
                    self.desired_tx = self.p.min_tx;
                    self.poll = !self.final_;
                }
            }
            State::Down | State::AdminDown => {
                self.desired_tx = self.p.idle_tx;
                self.poll = false;
            }
            State::Init => {}
        }
        self.recompute_tx();
        out.changed = Some((from, to, d));
        out.send = true;
    }

    /// A valid packet for this session (already checked by [`Packet::decode`]).
    pub fn on_packet(&mut self, now: Micros, pkt: &Packet) -> Output {
        let mut out = Output::default();
        if self.state == State::AdminDown {
            return out;
        }
        self.remote_discr = pkt.my_discr;
        self.remote_state = pkt.state;
        self.remote_diag = pkt.diag;
        self.remote_min_rx = pkt.required_min_rx;
        self.remote_min_tx = pkt.desired_min_tx;
        self.remote_mult = pkt.detect_mult;
        if pkt.final_ {
            self.poll = false;
        }
        let old_tx = self.tx_interval;
        let old_detect = self.detect_time;
        if pkt.final_ || pkt.poll || self.state != State::Up {
            self.recompute_tx();
        }
        self.detect_time =
            u64::from(self.remote_mult) * u64::from(self.p.min_rx.max(self.remote_min_tx));
        if self.detect_time != old_detect {
            out.detect_time = Some((self.detect_time, old_detect));
        }
        match (self.state, pkt.state) {
            (s, State::AdminDown) if s != State::Down => {
                self.remote_discr = 0;
                self.set_state(State::Down, diag::NEIGHBOR_DOWN, &mut out);
            }
            (State::Down, State::Down) => self.set_state(State::Init, diag::NONE, &mut out),
            (State::Down, State::Init) => self.set_state(State::Up, diag::NONE, &mut out),
            (State::Init, State::Init | State::Up) => {
                self.set_state(State::Up, diag::NONE, &mut out)
            }
            (State::Up, State::Down) => self.set_state(State::Down, diag::NEIGHBOR_DOWN, &mut out),
            _ => {}
        }
        if pkt.poll {
            self.final_ = true;
            out.send = true;
        }
        self.last_rx = Some(now);
        // A passive session starts sending once it has heard its neighbour; a shorter
        // interval takes effect at once.
        match self.next_tx {
            None => self.next_tx = Some(now),
            Some(t) if self.tx_interval < old_tx && t > now + self.tx_interval => {
                self.next_tx = Some(now + self.tx_interval)
            }
            _ => {}
        }
        out
    }

    /// Timers due at `now`.
    pub fn on_timer(&mut self, now: Micros) -> Output {
        let mut out = Output::default();
        if let (Some(exp), Some(last)) = (self.expiry(), self.last_rx)
            && now >= exp
        {
            let dead = now - last;
            out.expired = Some((dead, dead.saturating_sub(self.detect_time)));
            self.remote_discr = 0;
            self.set_state(State::Down, diag::EXPIRED, &mut out);
        }
        if self.next_tx.is_some_and(|t| now >= t) {
            out.send = true;
        }
        out
    }

    /// Stop: the packet that tells the neighbour (AdminDown, "Administratively Down").
    pub fn admin_down(&mut self) -> Packet {
        let mut out = Output::default();
        self.set_state(State::AdminDown, diag::ADMIN_DOWN, &mut out);
        self.next_tx = None;
        self.packet()
    }

    /// New configuration for a running session (reload): an Up session announces a changed
    /// transmission interval with a Poll Sequence.
    pub fn update(&mut self, p: Params) {
        if p == self.p {
            return;
        }
        self.p = p;
        let want = if self.state == State::Up {
            p.min_tx
        } else {
            p.idle_tx
        };
        if want != self.desired_tx {
            self.desired_tx = want;
            if self.state == State::Up {
                self.poll = true;
            }
        }
        if self.desired_tx < self.tx_interval as u32 || self.state != State::Up {
            self.recompute_tx();
        }
        if p.passive && self.remote_discr == 0 {
            self.next_tx = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params {
            min_rx: 100_000,
            min_tx: 100_000,
            idle_tx: 1_000_000,
            multiplier: 3,
            passive: false,
        }
    }

    fn from_peer(state: State, your: u32, poll: bool, final_: bool) -> Packet {
        Packet {
            diag: 0,
            state,
            poll,
            final_,
            cpi: false,
            auth: false,
            demand: false,
            multipoint: false,
            detect_mult: 3,
            my_discr: 0x5e6b_af69,
            your_discr: your,
            desired_min_tx: if state == State::Up {
                100_000
            } else {
                1_000_000
            },
            required_min_rx: 100_000,
            required_min_echo_rx: 0,
        }
    }

    #[test]
    fn comes_up_as_with_frr_then_polls_for_the_fast_interval() {
        let mut s = Session::new(params(), 0x3c22_af49, 0);
        assert!(s.on_timer(0).send);
        let first = s.packet();
        assert_eq!(
            (first.state, first.desired_min_tx, first.your_discr),
            (State::Down, 1_000_000, 0)
        );
        s.sent(0, 0.0);
        // FRR answers Init: we go Up and announce 100 ms with Poll.
        let out = s.on_packet(60_000, &from_peer(State::Init, 0x3c22_af49, false, false));
        assert_eq!(out.changed, Some((State::Down, State::Up, 0)));
        assert!(out.send);
        let up = s.packet();
        assert!(up.poll && up.state == State::Up && up.desired_min_tx == 100_000);
        assert_eq!(up.your_discr, 0x5e6b_af69);
        // Detection time: 3 × max(100 ms, peer's 1 s).
        assert_eq!(s.detect_time(), 3_000_000);
        // Peer's Final ends the poll; its Up with 100 ms brings detection to 300 ms.
        let out = s.on_packet(70_000, &from_peer(State::Up, 0x3c22_af49, false, true));
        assert_eq!(out.detect_time, Some((300_000, 3_000_000)));
        assert!(!s.packet().poll);
        assert_eq!(s.tx_interval(), 100_000);
        s.sent(70_000, 1.0);
        assert_eq!(s.next_deadline(), Some(70_000 + 75_000));
    }

    #[test]
    fn expires_after_the_detection_time_and_answers_polls() {
        let mut s = Session::new(params(), 7, 0);
        s.on_packet(0, &from_peer(State::Init, 7, false, false));
        s.on_packet(10, &from_peer(State::Up, 7, true, false));
        let f = s.packet();
        assert!(
            f.final_ && !f.poll,
            "a poll is answered with Final (our own poll yields)"
        );
        assert!(!s.packet().final_, "Final only once");
        assert_eq!(s.on_timer(300_009).changed, None);
        let out = s.on_timer(300_010);
        assert_eq!(out.changed, Some((State::Up, State::Down, diag::EXPIRED)));
        assert_eq!(out.expired, Some((300_000, 0)));
        let p = s.packet();
        assert_eq!((p.your_discr, p.desired_min_tx, p.diag), (0, 1_000_000, 1));
    }

    #[test]
    fn neighbour_down_admin_down_and_passive() {
        let mut s = Session::new(params(), 7, 0);
        s.on_packet(0, &from_peer(State::Down, 0, false, false));
        assert_eq!(s.state(), State::Init);
        s.on_packet(1, &from_peer(State::Up, 7, false, false));
        assert_eq!(s.state(), State::Up);
        let out = s.on_packet(2, &from_peer(State::AdminDown, 7, false, false));
        assert_eq!(
            out.changed,
            Some((State::Up, State::Down, diag::NEIGHBOR_DOWN))
        );
        let ad = s.admin_down();
        assert_eq!((ad.state, ad.diag), (State::AdminDown, diag::ADMIN_DOWN));
        assert_eq!(s.next_deadline(), None);
        assert_eq!(
            s.on_packet(3, &from_peer(State::Down, 0, false, false)),
            Output::default()
        );

        let mut p = Session::new(
            Params {
                passive: true,
                ..params()
            },
            9,
            0,
        );
        assert_eq!(
            p.next_deadline(),
            None,
            "passive: silent until the neighbour speaks"
        );
        p.on_packet(5, &from_peer(State::Down, 0, false, false));
        assert!(p.next_deadline().is_some());
    }
}
