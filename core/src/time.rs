//! Monotonic-time helpers shared by the sans-IO cores.

use std::time::{Duration, Instant};

/// `now + d`, saturating: an `Instant` that far ahead cannot be represented, so a huge `d`
/// (a setting at its maximum, a `Retry-After` of years) gives a deadline ~100 years out
/// instead of the panic of `Instant + Duration`. Every core computes deadlines with it.
pub fn later(now: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 86_400);
    now.checked_add(d.min(FAR))
        .or_else(|| now.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(now)
}
