//! The `cps` limit as a sans-IO state machine: calls start on an even schedule (one every
//! 1/cps s), a caller woken late by its timer may catch up a few calls, and no sliding
//! one-second window ever holds more than ⌈cps⌉ starts.
//!
//! Why not a plain token bucket: with a burst of one call, a dialler woken 0.7 ms late by a
//! 1 ms timer loses that time on every call (500 cps became 365 cps here); with a larger burst,
//! some one-second windows exceed `cps`. This keeps both promises: the configured rate on
//! average, and never more than the rate in any second.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use crate::time::later;

/// The lowest call rate a limiter runs at: one call per 1,000 s (the `cps` setting's floor).
pub const MIN_CPS: f64 = 0.001;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct CallRate {
    period: Duration,
    window_cap: usize,
    max_lag: Duration,
    next: Instant,
    recent: VecDeque<Instant>,
}

impl CallRate {
    /// A limiter for `cps` calls per second, whose first call may start at `start`. A rate
    /// below [`MIN_CPS`] (or not a number) is taken as `MIN_CPS`; settings are checked against
    /// that floor, this only keeps the limiter itself from panicking.
    pub fn new(cps: f64, start: Instant) -> Self {
        let cps = if cps.is_finite() {
            cps.clamp(MIN_CPS, 1e9)
        } else {
            MIN_CPS
        };
        let period = Duration::from_secs_f64(1.0 / cps);
        Self {
            period,
            window_cap: cps.ceil().max(1.0) as usize,
            // Catch up at most 100 ms worth of calls (one call at low rates): a dialling loop
            // held up by a database write longer than that loses the excess; the one-second
            // window cap still holds.
            max_lag: period.max(Duration::from_millis(100)),
            next: start,
            recent: VecDeque::new(),
        }
    }

    /// Takes a start slot at `now` if one is free (and records it).
    pub fn try_acquire(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.forget_before(now);
        if self.recent.len() >= self.window_cap {
            return false;
        }
        self.recent.push_back(now);
        // The ideal schedule advances by one period; if we are far behind it, forget the
        // excess so a pause is not followed by a burst.
        let floor = now.checked_sub(self.max_lag).unwrap_or(now);
        self.next = later(self.next, self.period).max(floor);
        true
    }

    /// Forgets the starts more than a second before `now` (the window cap counts the rest).
    fn forget_before(&mut self, now: Instant) {
        while let Some(&t) = self.recent.front() {
            if now.saturating_duration_since(t) >= Duration::from_secs(1) {
                self.recent.pop_front();
            } else {
                break;
            }
        }
    }

    /// Returns the last slot taken (its call was not placed after all): the schedule steps
    /// back one period and the one-second window forgets it.
    pub fn give_back(&mut self) {
        if self.recent.pop_back().is_some() {
            self.next = self.next.checked_sub(self.period).unwrap_or(self.next);
        }
    }

    /// True when [`CallRate::try_acquire`] would take a slot at `now` (nothing is taken).
    pub fn can_acquire(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.forget_before(now);
        self.recent.len() < self.window_cap
    }

    /// The earliest time a slot can be free again.
    pub fn next_at(&self) -> Instant {
        let window = if self.recent.len() >= self.window_cap {
            self.recent
                .front()
                .map(|t| *t + Duration::from_secs(1))
                .unwrap_or(self.next)
        } else {
            self.next
        };
        window.max(self.next)
    }
}

/// Limits shared by every campaign of a process (`outdial serve`'s `max_concurrent` and
/// `cps`): each run's own limits apply inside them.
#[derive(Debug)]
pub struct GlobalLimit {
    /// Calls in progress across campaigns at most.
    pub max_concurrent: usize,
    /// Calls in progress now, across campaigns.
    pub in_flight: std::sync::atomic::AtomicUsize,
    /// The shared call rate.
    pub rate: std::sync::Mutex<CallRate>,
}

impl GlobalLimit {
    /// `cps` calls per second and `max_concurrent` calls at once across every campaign, the
    /// first call allowed at `start`.
    pub fn new(cps: f64, max_concurrent: usize, start: Instant) -> Self {
        Self {
            max_concurrent,
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            rate: std::sync::Mutex::new(CallRate::new(cps, start)),
        }
    }

    /// Takes a start slot for one more call now, if both limits allow.
    pub fn try_start(&self, now: Instant) -> bool {
        use std::sync::atomic::Ordering;
        if self.in_flight.load(Ordering::Acquire) >= self.max_concurrent {
            return false;
        }
        if !self.rate.lock().expect("global rate lock").try_acquire(now) {
            return false;
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        true
    }

    /// `n` calls ended.
    pub fn ended(&self, n: usize) {
        use std::sync::atomic::Ordering;
        let _ = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                Some(v.saturating_sub(n))
            });
    }
}

/// The shared limits one campaign's calls count against: the process-wide one (`cps`,
/// `max_concurrent` of the service file) and those of the trunks it dials through
/// (`[[trunk_limits]]`). A call starts only when every one of them has a slot; then it takes a
/// slot in each (all or none: the rate locks are taken in one fixed order, so two campaigns
/// never deadlock and a refused call wastes no other limit's slot).
#[derive(Debug, Default, Clone)]
pub struct SharedLimits {
    limits: Vec<std::sync::Arc<GlobalLimit>>,
}

impl SharedLimits {
    /// Over `limits` (duplicates are counted once).
    pub fn new(mut limits: Vec<std::sync::Arc<GlobalLimit>>) -> Self {
        limits.sort_by_key(|l| std::sync::Arc::as_ptr(l) as usize);
        limits.dedup_by(|a, b| std::sync::Arc::ptr_eq(a, b));
        Self { limits }
    }

    /// No limit at all.
    pub fn is_empty(&self) -> bool {
        self.limits.is_empty()
    }

    /// True when one of the limits has no room for another call in progress.
    pub fn is_full(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.limits
            .iter()
            .any(|l| l.in_flight.load(Ordering::Acquire) >= l.max_concurrent)
    }

    /// Takes a start slot in every limit for one more call now, or in none: the permit holds
    /// the call's place in each limit until it is dropped (the call ended, or was never
    /// placed after all).
    pub fn try_start(&self, now: Instant) -> Option<Permit> {
        use std::sync::atomic::Ordering;
        let mut rates: Vec<_> = self
            .limits
            .iter()
            .map(|l| l.rate.lock().expect("shared rate lock"))
            .collect();
        let room = self.limits.iter().zip(rates.iter_mut()).all(|(l, r)| {
            l.in_flight.load(Ordering::Acquire) < l.max_concurrent && r.can_acquire(now)
        });
        if !room {
            return None;
        }
        for (l, r) in self.limits.iter().zip(rates.iter_mut()) {
            r.try_acquire(now);
            l.in_flight.fetch_add(1, Ordering::AcqRel);
        }
        Some(Permit {
            limits: self.limits.clone(),
        })
    }
}

/// One call's place in the shared limits it was admitted by ([`SharedLimits::try_start`]),
/// given back when dropped: a call's slot cannot be kept or given back twice by hand.
#[must_use = "dropping the permit gives the slot back at once"]
#[derive(Debug)]
pub struct Permit {
    limits: Vec<std::sync::Arc<GlobalLimit>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        for l in &self.limits {
            l.ended(1);
        }
    }
}

/// Back-off on trunk congestion: `threshold` congested attempts in a row (503, 500/502/504,
/// no response — the `congestion` disposition) halve the campaign's call rate, down to 1/16
/// of it; every `recover_every` without a new halving raises it by half again, up to the
/// configured rate. Leads are not burnt against a trunk that is refusing calls; a trunk's
/// Retry-After still holds new calls outright. Sans-IO: fed outcomes and the time.
#[derive(Debug, Clone)]
pub struct Backoff {
    factor: f64,
    consecutive: u32,
    threshold: u32,
    recover_every: Duration,
    last_change: Option<Instant>,
    lowered: u32,
}

impl Backoff {
    /// Halve after `threshold` congested attempts in a row; recover every `recover_every`.
    pub fn new(threshold: u32, recover_every: Duration) -> Self {
        Self {
            factor: 1.0,
            consecutive: 0,
            threshold: threshold.max(1),
            recover_every,
            last_change: None,
            lowered: 0,
        }
    }

    /// The share of the configured rate to use now, 1/16–1.
    pub fn factor(&self) -> f64 {
        self.factor
    }

    /// How many times the rate was lowered.
    pub fn times_lowered(&self) -> u32 {
        self.lowered
    }

    /// An attempt ended; `congested` for the `congestion` disposition. Returns the new factor
    /// when it changed.
    pub fn outcome(&mut self, now: Instant, congested: bool) -> Option<f64> {
        if !congested {
            self.consecutive = 0;
            return None;
        }
        self.consecutive += 1;
        if self.consecutive < self.threshold {
            return None;
        }
        self.consecutive = 0;
        let f = (self.factor / 2.0).max(1.0 / 16.0);
        self.last_change = Some(now);
        if f < self.factor {
            self.factor = f;
            self.lowered += 1;
            return Some(f);
        }
        None
    }

    /// Recovers towards the full rate once `recover_every` passed since the last change.
    /// Returns the new factor when it changed.
    pub fn tick(&mut self, now: Instant) -> Option<f64> {
        if self.factor >= 1.0 {
            return None;
        }
        let due = self
            .last_change
            .is_none_or(|t| now.saturating_duration_since(t) >= self.recover_every);
        if !due {
            return None;
        }
        self.factor = (self.factor * 1.5).min(1.0);
        self.last_change = Some(now);
        Some(self.factor)
    }
}

#[cfg(test)]
mod backoff_tests {
    use super::*;

    #[test]
    fn halves_after_a_run_of_congestion_and_recovers_in_steps() {
        let t0 = Instant::now();
        let mut b = Backoff::new(3, Duration::from_secs(10));
        assert_eq!(b.outcome(t0, true), None);
        assert_eq!(b.outcome(t0, false), None, "a success resets the run");
        assert_eq!(b.outcome(t0, true), None);
        assert_eq!(b.outcome(t0, true), None);
        assert_eq!(b.outcome(t0, true), Some(0.5));
        for _ in 0..12 {
            b.outcome(t0, true);
        }
        assert_eq!(b.factor(), 1.0 / 16.0);
        assert_eq!(b.tick(t0 + Duration::from_secs(9)), None);
        assert_eq!(b.tick(t0 + Duration::from_secs(10)), Some(1.5 / 16.0));
        let mut t = t0 + Duration::from_secs(10);
        while b.factor() < 1.0 {
            t += Duration::from_secs(10);
            b.tick(t);
        }
        assert_eq!(b.factor(), 1.0);
        assert_eq!(b.times_lowered(), 4);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_given_back_can_be_taken_again() {
        let t0 = Instant::now();
        let mut r = CallRate::new(1.0, t0);
        assert!(r.try_acquire(t0));
        assert!(!r.try_acquire(t0 + Duration::from_millis(10)));
        r.give_back();
        assert!(r.try_acquire(t0 + Duration::from_millis(10)));
        assert!(!r.try_acquire(t0 + Duration::from_millis(20)));
    }

    #[test]
    fn shared_limits_take_a_slot_in_every_limit_or_in_none() {
        // A: one call at a time; B: five at once but one call per second.
        let a = std::sync::Arc::new(GlobalLimit::new(1e6, 1, Instant::now()));
        let b = std::sync::Arc::new(GlobalLimit::new(1.0, 5, Instant::now()));
        // (Their rates start when they are made.)
        let t0 = Instant::now() + Duration::from_millis(1);
        let both = SharedLimits::new(vec![a.clone(), b.clone(), a.clone()]);
        let only_b = SharedLimits::new(vec![b.clone()]);
        let first = both.try_start(t0).expect("room");
        let load = |l: &GlobalLimit| l.in_flight.load(std::sync::atomic::Ordering::Acquire);
        assert_eq!((load(&a), load(&b)), (1, 1), "counted once per limit");
        // A is full: refused, and B's rate slot is not spent on it.
        assert!(both.is_full());
        assert!(both.try_start(t0 + Duration::from_secs(1)).is_none());
        assert_eq!(load(&b), 1);
        drop(first);
        assert_eq!((load(&a), load(&b)), (0, 0));
        let _second = both
            .try_start(t0 + Duration::from_secs(1))
            .expect("room again");
        // B's rate: one per second, whoever asks.
        assert!(
            only_b
                .try_start(t0 + Duration::from_millis(1_500))
                .is_none()
        );
        assert!(only_b.try_start(t0 + Duration::from_secs(2)).is_some());
        assert!(SharedLimits::default().is_empty());
    }

    /// Simulates a caller that sleeps until `next_at` and wakes `late` after it, taking every
    /// slot it can at each wake-up; returns the start times of `n` calls.
    fn simulate(cps: f64, late: Duration, n: usize) -> Vec<Instant> {
        let t0 = Instant::now();
        let mut r = CallRate::new(cps, t0);
        let mut now = t0;
        let mut starts = Vec::new();
        while starts.len() < n {
            while starts.len() < n && r.try_acquire(now) {
                starts.push(now);
            }
            now = r.next_at().max(now) + late;
        }
        starts
    }

    fn max_in_any_second(starts: &[Instant]) -> usize {
        let mut best = 0;
        let mut j = 0;
        for i in 0..starts.len() {
            while starts[i] - starts[j] >= Duration::from_secs(1) {
                j += 1;
            }
            best = best.max(i - j + 1);
        }
        best
    }

    #[test]
    fn late_wakeups_still_reach_the_rate_and_never_exceed_it() {
        for (cps, late_us) in [(500.0, 700), (5.0, 700), (3000.0, 900), (100.0, 0)] {
            let n = (cps as usize) * 5;
            let s = simulate(cps, Duration::from_micros(late_us), n);
            let span = (s[n - 1] - s[0]).as_secs_f64();
            let achieved = (n - 1) as f64 / span;
            assert!(
                achieved >= cps * 0.98,
                "{cps} cps, {late_us} µs late: {achieved:.1}"
            );
            assert!(
                max_in_any_second(&s) <= cps as usize,
                "{cps}: window exceeded"
            );
        }
    }

    #[test]
    fn fractional_rates_space_calls_evenly() {
        let s = simulate(0.5, Duration::from_micros(300), 4);
        for w in s.windows(2) {
            assert!(w[1] - w[0] >= Duration::from_secs(2));
        }
    }

    #[test]
    fn a_pause_is_not_followed_by_a_burst() {
        let t0 = Instant::now();
        let mut r = CallRate::new(100.0, t0);
        assert!(r.try_acquire(t0));
        // Nothing to dial for 10 s, then dial again: at most 100 ms worth of catch-up (ten
        // calls at 100 cps) beside the due one, then the schedule.
        let t = t0 + Duration::from_secs(10);
        let mut at_once = 0;
        while r.try_acquire(t) {
            at_once += 1;
        }
        assert!(at_once <= 12, "{at_once} calls at once after a pause");
    }
}
