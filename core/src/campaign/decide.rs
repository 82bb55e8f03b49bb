//! What a finished attempt means for its lead, as a plain function of the outcome, the lead's
//! tally, the campaign's retry rule and the current time (sans-IO: the run loop in
//! `runner.rs` stores and schedules what it returns).
//!
//! * `interrupted` (our own stop): dial again at once, the attempt not counted.
//! * `network_error`, `trunk_unreachable` (the trunk's fault): dial again after
//!   [`TRUNK_FAILURE_RETRY`], not counted — up to [`FREE_TRUNK_FAULTS`] in a row; past that
//!   the attempt counts like any other (a number the trunk never answers while it answers the
//!   others must not keep a campaign from ending).
//! * Anything else counts one attempt; the disposition's rule (`reschedule_rules`:
//!   `retry_after` seconds, `max_attempts` in all) retries it — not before the trunk's
//!   `Retry-After` — or the lead is final.

use std::time::{Duration, Instant};

use super::config::RescheduleRule;
use crate::events::disposition::Disposition;

/// Attempts in a row of one lead the trunk may fail (`network_error`, `trunk_unreachable`)
/// without using the lead's attempts. A trunk that is down pauses the campaign long before;
/// this bounds the case of a trunk that answers pings and other calls but never this number.
pub const FREE_TRUNK_FAULTS: u32 = 10;

/// How long a lead waits after its attempt failed for the trunk's sake before it is dialled
/// again.
pub const TRUNK_FAILURE_RETRY: Duration = Duration::from_secs(1);

/// What the run loop keeps about a lead between its attempts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeadTally {
    /// Attempts counted so far (towards `max_attempts`).
    pub attempts: u32,
    /// Trunk failures in a row this run (not counted up to [`FREE_TRUNK_FAULTS`]).
    pub trunk_faults: u32,
}

/// The decision for a lead after one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeadDecision {
    /// Dial again at `at`; the attempt was not counted (`trunk_fault`: the trunk failed it,
    /// else our own stop interrupted it).
    Again {
        /// When.
        at: Instant,
        /// The trunk failed the attempt.
        trunk_fault: bool,
    },
    /// Dial again at `at` (the disposition's rule); the attempt counted.
    Retry {
        /// When.
        at: Instant,
    },
    /// No attempt left: the lead is final with this disposition.
    Final {
        /// The lead's final disposition.
        disposition: Disposition,
    },
}

/// Decides at `now` what an attempt that ended with `disposition` means for its lead,
/// updating `tally`. `trunk_wait`: the trunk's `Retry-After`, if it gave one; `rule`: the
/// campaign's rule for this disposition, if any.
pub fn decide(
    now: Instant,
    tally: &mut LeadTally,
    disposition: Disposition,
    trunk_wait: Option<Duration>,
    rule: Option<&RescheduleRule>,
) -> LeadDecision {
    let trunk_fault = disposition.spares_the_lead() && disposition != Disposition::Interrupted;
    if trunk_fault {
        tally.trunk_faults += 1;
    } else {
        tally.trunk_faults = 0;
    }
    let charged = trunk_fault && tally.trunk_faults > FREE_TRUNK_FAULTS;
    if disposition.spares_the_lead() && !charged {
        let wait = if trunk_fault {
            TRUNK_FAILURE_RETRY
        } else {
            Duration::ZERO
        };
        return LeadDecision::Again {
            at: super::rate::later(now, wait),
            trunk_fault,
        };
    }
    tally.attempts += 1;
    match rule.filter(|r| tally.attempts < r.max_attempts) {
        Some(r) => {
            let wait = Duration::from_secs(r.retry_after).max(trunk_wait.unwrap_or_default());
            LeadDecision::Retry {
                at: super::rate::later(now, wait),
            }
        }
        None => LeadDecision::Final { disposition },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(d: Disposition, retry_after: u64, max_attempts: u32) -> RescheduleRule {
        RescheduleRule {
            disposition: d,
            retry_after,
            max_attempts,
        }
    }

    #[test]
    fn retry_rules_count_attempts_until_final() {
        let t0 = Instant::now();
        let busy = rule(Disposition::Busy, 60, 3);
        let mut t = LeadTally::default();
        for n in 1..=2 {
            assert_eq!(
                decide(t0, &mut t, Disposition::Busy, None, Some(&busy)),
                LeadDecision::Retry {
                    at: t0 + Duration::from_secs(60)
                }
            );
            assert_eq!(t.attempts, n);
        }
        assert_eq!(
            decide(t0, &mut t, Disposition::Busy, None, Some(&busy)),
            LeadDecision::Final {
                disposition: Disposition::Busy
            }
        );
        // No rule: final at once. A trunk's Retry-After longer than the rule wins.
        let mut t = LeadTally::default();
        assert!(matches!(
            decide(t0, &mut t, Disposition::Rejected, None, None),
            LeadDecision::Final { .. }
        ));
        let mut t = LeadTally::default();
        let congestion = rule(Disposition::Congestion, 5, 3);
        assert_eq!(
            decide(
                t0,
                &mut t,
                Disposition::Congestion,
                Some(Duration::from_secs(120)),
                Some(&congestion)
            ),
            LeadDecision::Retry {
                at: t0 + Duration::from_secs(120)
            }
        );
    }

    #[test]
    fn our_stop_and_trunk_failures_do_not_use_attempts() {
        let t0 = Instant::now();
        let mut t = LeadTally {
            attempts: 2,
            trunk_faults: 0,
        };
        assert_eq!(
            decide(t0, &mut t, Disposition::Interrupted, None, None),
            LeadDecision::Again {
                at: t0,
                trunk_fault: false
            }
        );
        for d in [Disposition::NetworkError, Disposition::TrunkUnreachable] {
            assert_eq!(
                decide(t0, &mut t, d, None, None),
                LeadDecision::Again {
                    at: t0 + TRUNK_FAILURE_RETRY,
                    trunk_fault: true
                }
            );
        }
        assert_eq!(t.attempts, 2);
        assert_eq!(t.trunk_faults, 2);
        // Any other outcome resets the run of trunk failures.
        let na = rule(Disposition::NoAnswer, 1, 5);
        decide(t0, &mut t, Disposition::NoAnswer, None, Some(&na));
        assert_eq!((t.attempts, t.trunk_faults), (3, 0));
    }

    #[test]
    fn past_the_free_trunk_failures_the_attempts_count() {
        let t0 = Instant::now();
        let mut t = LeadTally::default();
        for _ in 0..FREE_TRUNK_FAULTS {
            assert!(matches!(
                decide(t0, &mut t, Disposition::TrunkUnreachable, None, None),
                LeadDecision::Again {
                    trunk_fault: true,
                    ..
                }
            ));
        }
        assert_eq!(t.attempts, 0);
        assert_eq!(
            decide(t0, &mut t, Disposition::TrunkUnreachable, None, None),
            LeadDecision::Final {
                disposition: Disposition::TrunkUnreachable
            }
        );
        assert_eq!(t.attempts, 1);
    }
}
