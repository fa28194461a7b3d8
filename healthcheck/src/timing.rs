//! keepalived 2.2's checker timing, as a pure state machine.
//!
//! Every checker runs "probe → result → wait → probe". What keepalived does
//! with a result (retry soon, declare the checker down or up, wait a full
//! `delay_loop`) differs slightly between its checker families; each family
//! is a [`Style`] here, transcribed from keepalived's `*_epilog` functions:
//!
//! * [`Style::Tcp`] (`check_tcp.c`): a failure is retried `retry` times,
//!   `delay_before_retry` apart, then the checker is down; this also happens
//!   while the checker is already down.
//! * [`Style::Standard`] (UDP, PING, DNS, SMTP): the same, but a checker that
//!   is already down is not retried (next attempt after `delay_loop`).
//! * [`Style::Misc`] (`check_misc.c`): like Standard, but the next run is
//!   timed from the *start* of the previous one.
//! * [`Style::Http`] (`check_http.c`, HTTP_GET and SSL_GET): one URL per
//!   attempt; all URLs must pass, one `delay_loop` apart, before the checker
//!   is up; a failing URL is retried while up, then the checker is down and
//!   that URL is probed every `max(delay_loop, delay_before_retry)` until it
//!   passes, after which every URL is checked again.
//!
//! Initial state (keepalived's `check_data.c`): the checker starts up, or
//! down with `alpha`; its retry counter starts exhausted, so the very first
//! failure declares it down at once ("one failure is enough initially").
//! The first result is always reported, even when it matches the state.

use std::time::Duration;

/// Which keepalived epilog a checker follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// TCP_CHECK's epilog.
    Tcp,
    /// UDP, PING, DNS and SMTP checks' epilog.
    Standard,
    /// MISC_CHECK's epilog.
    Misc,
    /// HTTP_GET / SSL_GET's epilog.
    Http {
        /// Number of URLs, checked one per attempt.
        urls: usize,
        /// `fast_recovery`: while down (and at start) the URLs are checked back to back.
        fast_recovery: bool,
    },
}

/// The timing settings of one checker (already inherited from the real
/// and virtual server by keepalived-conf).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Time between checks.
    pub delay_loop: Duration,
    /// Time between retries of a failure.
    pub delay_before_retry: Duration,
    /// Failures retried before the checker is down.
    pub retry: u32,
    /// Start down until the first pass.
    pub alpha: bool,
}

/// What the caller must do after a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// `Some(up)`: report this checker state to the real server.
    pub report: Option<bool>,
    /// Wait this long before the next probe (for [`Style::Misc`], counted
    /// from the start of the probe that just ended).
    pub next: Duration,
    /// Index of the URL to probe next ([`Style::Http`]; 0 otherwise).
    pub url: usize,
    /// Retries made before this result (keepalived's "failed after N retries").
    pub retries: u32,
}

/// One checker's timing state machine: what to do with each result and when to probe next.
#[derive(Debug, Clone)]
pub struct Fsm {
    style: Style,
    t: Timing,
    is_up: bool,
    has_run: bool,
    retry_it: u32,
    url_it: usize,
    failed_url: Option<usize>,
}

impl Fsm {
    /// A checker at start: up, or down with `alpha`.
    pub fn new(style: Style, t: Timing) -> Fsm {
        Fsm {
            style,
            t,
            is_up: !t.alpha,
            has_run: false,
            // "For non alpha mode, one failure is enough initially."
            retry_it: t.retry,
            url_it: 0,
            failed_url: None,
        }
    }

    /// A checker whose timing changed on reload: it keeps its known state
    /// (no flap), as keepalived migrates a checker's state on reload.
    pub fn resume(style: Style, t: Timing, up: bool) -> Fsm {
        Fsm {
            is_up: up,
            has_run: true,
            retry_it: 0,
            ..Fsm::new(style, t)
        }
    }

    /// Whether the checker is up.
    pub fn is_up(&self) -> bool {
        self.is_up
    }

    /// Whether a result has been seen.
    pub fn has_run(&self) -> bool {
        self.has_run
    }

    /// URL to probe next ([`Style::Http`]).
    pub fn url(&self) -> usize {
        self.url_it
    }

    /// Retries done since the last success (for log messages).
    pub fn retry_count(&self) -> u32 {
        self.retry_it
    }

    fn set(&mut self, up: bool) -> Option<bool> {
        let report = (up != self.is_up || !self.has_run).then_some(up);
        self.is_up = up;
        self.has_run = true;
        report
    }

    /// Feeds the result of one probe.
    pub fn on_result(&mut self, success: bool) -> Step {
        // A checker's first verdict is final at once (retry_it starts at `retry`): no retries.
        let retries = if self.has_run { self.retry_it } else { 0 };
        let (report, next) = match self.style {
            Style::Tcp => self.tcp(success),
            Style::Standard => self.standard(success),
            Style::Misc => self.misc(success),
            Style::Http {
                urls,
                fast_recovery,
            } => self.http(success, urls.max(1), fast_recovery),
        };
        Step {
            report,
            next,
            url: self.url_it,
            retries,
        }
    }

    fn tcp(&mut self, success: bool) -> (Option<bool>, Duration) {
        if success || self.retry_it >= self.t.retry {
            self.retry_it = 0;
            let r = if success {
                self.set(true)
            } else if self.is_up || !self.has_run {
                self.set(false)
            } else {
                None
            };
            (r, self.t.delay_loop)
        } else {
            self.retry_it = self.retry_it.saturating_add(1);
            self.has_run = true;
            (None, self.t.delay_before_retry)
        }
    }

    fn standard(&mut self, success: bool) -> (Option<bool>, Duration) {
        let active = self.is_up || !self.has_run;
        if success || (active && self.retry_it >= self.t.retry) {
            self.retry_it = 0;
            let r = if success {
                self.set(true)
            } else {
                self.set(false)
            };
            (r, self.t.delay_loop)
        } else if active {
            self.retry_it = self.retry_it.saturating_add(1);
            self.has_run = true;
            (None, self.t.delay_before_retry)
        } else {
            (None, self.t.delay_loop)
        }
    }

    fn misc(&mut self, success: bool) -> (Option<bool>, Duration) {
        let mut report = None;
        if success {
            self.retry_it = 0;
            report = self.set(true);
        } else if self.is_up || !self.has_run {
            if self.retry_it < self.t.retry {
                self.retry_it = self.retry_it.saturating_add(1);
            } else {
                self.retry_it = 0;
                report = self.set(false);
            }
        }
        self.has_run = true;
        let next = if self.retry_it > 0 {
            self.t.delay_before_retry
        } else {
            self.t.delay_loop
        };
        (report, next)
    }

    fn http(
        &mut self,
        success: bool,
        urls: usize,
        fast_recovery: bool,
    ) -> (Option<bool>, Duration) {
        let mut report = None;
        let next;
        if success {
            // REGISTER_CHECKER_NEW
            self.url_it += 1;
            self.retry_it = 0;
            if self.url_it >= urls && self.failed_url.is_none() {
                if !self.is_up || !self.has_run {
                    report = self.set(true);
                }
                self.url_it = 0;
            } else if self.failed_url.is_some() {
                // The failed URL passes again: check all of them.
                self.failed_url = None;
                self.url_it = 0;
            }
            if !self.has_run {
                self.retry_it = self.t.retry;
            }
            next = self.t.delay_loop;
        } else if self.is_up || !self.has_run {
            // timeout_epilog → REGISTER_CHECKER_RETRY
            self.has_run = true;
            self.retry_it = self.retry_it.saturating_add(1);
            if self.retry_it > self.t.retry {
                if self.is_up {
                    report = self.set(false);
                }
                self.failed_url = Some(self.url_it);
            }
            next = if self.failed_url.is_some() {
                self.t.delay_before_retry.max(self.t.delay_loop)
            } else {
                self.t.delay_before_retry
            };
        } else {
            // REGISTER_CHECKER_FAILED: already down, no retries.
            next = if self.failed_url.is_some() {
                self.t.delay_before_retry.max(self.t.delay_loop)
            } else {
                self.t.delay_before_retry
            };
        }
        let next = if fast_recovery && (!self.has_run || (!self.is_up && self.failed_url.is_none()))
        {
            Duration::ZERO
        } else {
            next
        };
        (report, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(retry: u32, alpha: bool) -> Timing {
        Timing {
            delay_loop: Duration::from_secs(10),
            delay_before_retry: Duration::from_secs(2),
            retry,
            alpha,
        }
    }
    const LOOP: Duration = Duration::from_secs(10);
    const DBR: Duration = Duration::from_secs(2);

    /// Feeds results, returns (report, next) per step.
    fn run(f: &mut Fsm, results: &[bool]) -> Vec<(Option<bool>, Duration)> {
        results
            .iter()
            .map(|&r| {
                let s = f.on_result(r);
                (s.report, s.next)
            })
            .collect()
    }

    #[test]
    fn first_result_is_always_reported() {
        let mut f = Fsm::new(Style::Tcp, t(3, false));
        assert!(f.is_up());
        assert_eq!(
            run(&mut f, &[true, true]),
            vec![(Some(true), LOOP), (None, LOOP)]
        );
    }

    #[test]
    fn first_failure_is_enough_initially() {
        for style in [Style::Tcp, Style::Standard, Style::Misc] {
            let mut f = Fsm::new(style, t(3, false));
            assert_eq!(f.on_result(false).report, Some(false), "{style:?}");
            assert!(!f.is_up());
        }
        let mut f = Fsm::new(
            Style::Http {
                urls: 1,
                fast_recovery: false,
            },
            t(3, false),
        );
        assert_eq!(f.on_result(false).report, Some(false));
    }

    #[test]
    fn alpha_starts_down_and_first_success_brings_it_up() {
        let mut f = Fsm::new(Style::Standard, t(3, true));
        assert!(!f.is_up());
        assert_eq!(f.on_result(true).report, Some(true));
        assert!(f.is_up());
    }

    #[test]
    fn tcp_goes_down_after_retry_consecutive_retries() {
        let mut f = Fsm::new(Style::Tcp, t(3, false));
        run(&mut f, &[true]);
        // 1 failure + 3 retries, delay_before_retry apart, then down.
        assert_eq!(
            run(&mut f, &[false, false, false, false]),
            vec![(None, DBR), (None, DBR), (None, DBR), (Some(false), LOOP)]
        );
        // Up again on the first success.
        assert_eq!(run(&mut f, &[true]), vec![(Some(true), LOOP)]);
    }

    #[test]
    fn a_success_resets_the_retry_count() {
        let mut f = Fsm::new(Style::Tcp, t(2, false));
        run(&mut f, &[true]);
        let r = run(&mut f, &[false, false, true, false, false]);
        assert!(r.iter().all(|(rep, _)| rep.is_none()), "{r:?}");
        assert!(f.is_up());
    }

    #[test]
    fn tcp_keeps_retrying_while_down_standard_does_not() {
        let mut f = Fsm::new(Style::Tcp, t(1, false));
        run(&mut f, &[true, false, false]);
        assert!(!f.is_up());
        assert_eq!(
            run(&mut f, &[false, false]),
            vec![(None, DBR), (None, LOOP)]
        );

        let mut f = Fsm::new(Style::Standard, t(1, false));
        run(&mut f, &[true, false, false]);
        assert!(!f.is_up());
        assert_eq!(
            run(&mut f, &[false, false]),
            vec![(None, LOOP), (None, LOOP)]
        );
    }

    #[test]
    fn retry_zero_goes_down_on_first_failure() {
        let mut f = Fsm::new(Style::Standard, t(0, false));
        run(&mut f, &[true]);
        assert_eq!(run(&mut f, &[false]), vec![(Some(false), LOOP)]);
    }

    #[test]
    fn misc_retries_then_down() {
        let mut f = Fsm::new(Style::Misc, t(2, false));
        run(&mut f, &[true]);
        assert_eq!(
            run(&mut f, &[false, false, false]),
            vec![(None, DBR), (None, DBR), (Some(false), LOOP)]
        );
        assert_eq!(
            run(&mut f, &[false, true]),
            vec![(None, LOOP), (Some(true), LOOP)]
        );
    }

    #[test]
    fn http_needs_every_url_one_delay_loop_apart() {
        let mut f = Fsm::new(
            Style::Http {
                urls: 3,
                fast_recovery: false,
            },
            t(1, true),
        );
        let s = f.on_result(true);
        assert_eq!((s.report, s.next, s.url), (None, LOOP, 1));
        let s = f.on_result(true);
        assert_eq!((s.report, s.url), (None, 2));
        let s = f.on_result(true);
        assert_eq!((s.report, s.url), (Some(true), 0));
    }

    #[test]
    fn http_failed_url_retried_then_down_then_recovery_checks_all() {
        let mut f = Fsm::new(
            Style::Http {
                urls: 2,
                fast_recovery: false,
            },
            t(2, false),
        );
        run(&mut f, &[true, true]);
        assert!(f.is_up());
        // URL 0 passes, URL 1 fails 3 times (1 + 2 retries).
        assert_eq!(f.on_result(true).url, 1);
        assert_eq!(
            run(&mut f, &[false, false, false]),
            vec![(None, DBR), (None, DBR), (Some(false), LOOP)]
        );
        assert_eq!(f.url(), 1, "the failed URL is probed again");
        // Still failing while down: no retries, max(dbr, loop).
        assert_eq!(run(&mut f, &[false]), vec![(None, LOOP)]);
        // The failed URL passes: start over from URL 0, then all pass → up.
        let s = f.on_result(true);
        assert_eq!((s.report, s.url), (None, 0));
        assert_eq!(f.on_result(true).report, None);
        assert_eq!(f.on_result(true).report, Some(true));
    }

    /// Runs a checker on a virtual clock (ms) against a backend that is
    /// down during `[down_from, up_from)`; each probe takes `probe_ms` when
    /// it fails (a timeout) and 0 when it passes. Returns when the checker
    /// reported down and up again (ms).
    fn simulate(
        style: Style,
        t: Timing,
        probe_ms: u64,
        down_from: u64,
        up_from: u64,
    ) -> (u64, u64) {
        let mut f = Fsm::new(style, t);
        let mut now = 300; // first probe after some warmup
        let (mut down_at, mut up_at) = (None, None);
        while now < up_from + 60_000 && up_at.is_none() {
            let ok = !(down_from..up_from).contains(&now);
            let start = now;
            if !ok {
                now += probe_ms;
            }
            let s = f.on_result(ok);
            match s.report {
                Some(false) if down_at.is_none() => down_at = Some(now),
                Some(true) if down_at.is_some() => up_at = Some(now),
                _ => {}
            }
            let next = s.next.as_millis() as u64;
            now = if style == Style::Misc {
                (start + next).max(now)
            } else {
                now + next
            };
        }
        (down_at.expect("never down"), up_at.expect("never up"))
    }

    #[test]
    fn detection_and_recovery_bounds_on_a_virtual_clock() {
        let t = Timing {
            delay_loop: Duration::from_millis(1000),
            delay_before_retry: Duration::from_millis(500),
            retry: 2,
            alpha: false,
        };
        let styles = [
            Style::Tcp,
            Style::Standard,
            Style::Misc,
            Style::Http {
                urls: 1,
                fast_recovery: false,
            },
        ];
        for style in styles {
            for probe_ms in [0u64, 200] {
                // Failure onset at every phase of the delay_loop.
                for phase in (0..1000).step_by(50) {
                    let fail = 5_000 + phase;
                    let (down, up) = simulate(style, t, probe_ms, fail, 20_000);
                    let took = down - fail;
                    // At least `retry` retries, delay_before_retry apart...
                    assert!(took >= 2 * 500, "{style:?} {probe_ms} {phase}: {took}");
                    // ...at most delay_loop + retry × dbr + (retry+1) probes.
                    assert!(
                        took <= 1000 + 2 * 500 + 3 * probe_ms,
                        "{style:?} {probe_ms} {phase}: {took}"
                    );
                    // Back up at the first success: within max(delay_loop, dbr) + a probe;
                    // HTTP re-checks every URL once the failed one passes (one more loop).
                    let extra = if matches!(style, Style::Http { .. }) {
                        1000
                    } else {
                        0
                    };
                    assert!(
                        up - 20_000 <= 1000 + probe_ms + extra,
                        "{style:?} {probe_ms} {phase}: up after {}",
                        up - 20_000
                    );
                }
            }
        }
    }

    #[test]
    fn huge_retry_counts_do_not_overflow() {
        let mut f = Fsm::new(
            Style::Http {
                urls: 1,
                fast_recovery: false,
            },
            t(u32::MAX, false),
        );
        run(&mut f, &[true]);
        for _ in 0..3 {
            assert_eq!(f.on_result(false).report, None);
        }
    }

    #[test]
    fn http_fast_recovery_probes_at_once_before_first_result() {
        let mut f = Fsm::new(
            Style::Http {
                urls: 2,
                fast_recovery: true,
            },
            t(1, true),
        );
        assert_eq!(f.on_result(true).next, Duration::ZERO);
    }
}
