//! SIP final response (plus what happened before it) → contact-centre disposition.
//!
//! The mapping follows the cause groups of RFC 3398 §8.2.6.1 (SIP status → ISUP/Q.850
//! cause) and is documented as a table in `docs/dispositions.md`; keep the two in step.

use serde::{Deserialize, Serialize};

/// The outcome of one attempt, as a contact-centre engineer names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// 2xx: the far end answered.
    Answered,
    /// 486 Busy Here, 600 Busy Everywhere (Q.850 17 user busy).
    Busy,
    /// Rang but nobody answered: our CANCEL on ring timeout (→ 487), 408 or 480 after a
    /// provisional response (Q.850 19 no answer from user).
    #[serde(alias = "noAnswer")]
    NoAnswer,
    /// 603 Decline, 403 Forbidden (Q.850 21 call rejected).
    Rejected,
    /// 404, 484, 485, 604, 410 (Q.850 1 unallocated number, 28 invalid format, 22 number changed).
    #[serde(alias = "invalidNumber")]
    InvalidNumber,
    /// 480 Temporarily Unavailable with no provisional response before it (Q.850 18/20).
    Unavailable,
    /// 500, 502, 503, 504, or 408 before any provisional (Q.850 34/38/41/42 network
    /// congestion and failures).
    Congestion,
    /// The network refused the INVITE before the trunk could see it: ICMP port or host
    /// unreachable for the trunk's address (Q.850 38 network out of order). The trunk's
    /// fault, not the lead's: never final, the lead is dialled again without using an attempt.
    #[serde(alias = "networkError")]
    NetworkError,
    /// No response at all from the trunk (Timer B, RFC 3261 §17.1.1.2, with no provisional
    /// response; Q.850 102 recovery on timer expiry). The trunk's fault, not the lead's:
    /// never final, the lead is dialled again without using an attempt.
    #[serde(alias = "trunkUnreachable")]
    TrunkUnreachable,
    /// Anything else.
    Failed,
    /// The process stopped while the attempt was in progress; the lead is dialled again on
    /// resume and this attempt does not count towards `max_attempts`.
    Interrupted,
    /// Answered by a person who was never connected to an agent: hung up while queued, or
    /// waited past `max_wait` (the information message played). The numerator of the
    /// abandon rate.
    Abandoned,
    /// The number is on the do-not-call list: never dialled (checked before every attempt).
    Dnc,
}

impl Disposition {
    /// Every disposition, in report order.
    pub const ALL: [Disposition; 13] = [
        Disposition::Answered,
        Disposition::Busy,
        Disposition::NoAnswer,
        Disposition::Rejected,
        Disposition::InvalidNumber,
        Disposition::Unavailable,
        Disposition::Congestion,
        Disposition::NetworkError,
        Disposition::TrunkUnreachable,
        Disposition::Failed,
        Disposition::Interrupted,
        Disposition::Abandoned,
        Disposition::Dnc,
    ];

    /// The snake_case name used in the store, the config file and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Answered => "answered",
            Disposition::Busy => "busy",
            Disposition::NoAnswer => "no_answer",
            Disposition::Rejected => "rejected",
            Disposition::InvalidNumber => "invalid_number",
            Disposition::Unavailable => "unavailable",
            Disposition::Congestion => "congestion",
            Disposition::NetworkError => "network_error",
            Disposition::TrunkUnreachable => "trunk_unreachable",
            Disposition::Failed => "failed",
            Disposition::Interrupted => "interrupted",
            Disposition::Abandoned => "abandoned",
            Disposition::Dnc => "dnc",
        }
    }

    /// True for the outcomes that say nothing about the lead — our own stop
    /// ([`Interrupted`](Self::Interrupted)) or a trunk that could not be reached
    /// ([`NetworkError`](Self::NetworkError), [`TrunkUnreachable`](Self::TrunkUnreachable)):
    /// the attempt is recorded, the lead goes back to the queue without using one of its
    /// `max_attempts`, and no retry rule applies.
    pub fn spares_the_lead(self) -> bool {
        matches!(
            self,
            Disposition::Interrupted | Disposition::NetworkError | Disposition::TrunkUnreachable
        )
    }

    /// Parses the snake_case name, or its camelCase spelling (`noAnswer`, the API's way of
    /// writing names). Errors: `None` for an unknown name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|d| d.as_str() == s || d.as_str().replace('_', "") == s.to_ascii_lowercase())
    }
}

impl std::fmt::Display for Disposition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Facts about the INVITE transaction that decide the disposition beside the final status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InviteHistory {
    /// Any 1xx other than 100 was received (180/183/…): the far end was alerting.
    pub alerted: bool,
    /// Any provisional response at all (100 included) was received.
    pub provisional: bool,
    /// We sent CANCEL because the ring timeout expired.
    pub cancelled_on_ring_timeout: bool,
}

/// Maps the final status of an INVITE (`None`: no final response, i.e. Timer B or a transport
/// failure) to a disposition. Source: RFC 3398 §8.2.6.1; see `docs/dispositions.md`.
///
/// ```
/// use outdial_core::events::disposition::{classify, Disposition, InviteHistory};
/// let rang = InviteHistory { alerted: true, provisional: true, cancelled_on_ring_timeout: false };
/// assert_eq!(classify(Some(480), rang), Disposition::NoAnswer);
/// assert_eq!(classify(Some(480), InviteHistory::default()), Disposition::Unavailable);
/// assert_eq!(classify(None, InviteHistory::default()), Disposition::TrunkUnreachable);
/// ```
pub fn classify(status: Option<u16>, h: InviteHistory) -> Disposition {
    let Some(code) = status else {
        // No final response at all. After our CANCEL that is still an unanswered ring; after
        // a provisional the trunk was there (the far end went quiet); without a word from the
        // trunk, it is the trunk that is unreachable.
        return if h.cancelled_on_ring_timeout {
            Disposition::NoAnswer
        } else if h.provisional {
            Disposition::Congestion
        } else {
            Disposition::TrunkUnreachable
        };
    };
    match code {
        200..=299 => Disposition::Answered,
        487 if h.cancelled_on_ring_timeout => Disposition::NoAnswer,
        486 | 600 => Disposition::Busy,
        408 if h.provisional => Disposition::NoAnswer,
        408 => Disposition::Congestion,
        480 if h.alerted => Disposition::NoAnswer,
        480 => Disposition::Unavailable,
        603 | 403 => Disposition::Rejected,
        404 | 484 | 485 | 604 | 410 => Disposition::InvalidNumber,
        500 | 502 | 503 | 504 => Disposition::Congestion,
        _ => Disposition::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_the_documented_mapping() {
        let none = InviteHistory::default();
        let rang = InviteHistory {
            alerted: true,
            provisional: true,
            cancelled_on_ring_timeout: false,
        };
        let trying = InviteHistory {
            alerted: false,
            provisional: true,
            cancelled_on_ring_timeout: false,
        };
        let cancelled = InviteHistory {
            cancelled_on_ring_timeout: true,
            ..rang
        };
        assert_eq!(classify(Some(200), none), Disposition::Answered);
        assert_eq!(classify(Some(486), none), Disposition::Busy);
        assert_eq!(classify(Some(600), none), Disposition::Busy);
        assert_eq!(classify(Some(487), cancelled), Disposition::NoAnswer);
        assert_eq!(classify(Some(487), rang), Disposition::Failed);
        assert_eq!(classify(Some(408), rang), Disposition::NoAnswer);
        assert_eq!(classify(Some(408), trying), Disposition::NoAnswer);
        assert_eq!(classify(Some(408), none), Disposition::Congestion);
        assert_eq!(classify(Some(480), rang), Disposition::NoAnswer);
        assert_eq!(classify(Some(480), trying), Disposition::Unavailable);
        assert_eq!(classify(Some(603), none), Disposition::Rejected);
        assert_eq!(classify(Some(403), none), Disposition::Rejected);
        for c in [404, 484, 485, 604, 410] {
            assert_eq!(classify(Some(c), none), Disposition::InvalidNumber, "{c}");
        }
        for c in [500, 502, 503, 504] {
            assert_eq!(classify(Some(c), none), Disposition::Congestion, "{c}");
        }
        assert_eq!(classify(None, none), Disposition::TrunkUnreachable);
        assert_eq!(classify(None, rang), Disposition::Congestion);
        assert_eq!(classify(None, cancelled), Disposition::NoAnswer);
        assert_eq!(classify(Some(415), none), Disposition::Failed);
        assert_eq!(classify(Some(699), none), Disposition::Failed);
    }

    #[test]
    fn names_round_trip() {
        for d in Disposition::ALL {
            assert_eq!(Disposition::parse(d.as_str()), Some(d));
        }
        assert_eq!(Disposition::parse("nope"), None);
    }
}
