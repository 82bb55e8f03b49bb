//! RFC 4028 session timers against SIPp far ends on 127.0.0.1. Each scenario fails its call
//! (SIPp exits non-zero) unless the refreshes arrive as the far end asked: UPDATE when it
//! allows UPDATE, re-INVITE (ACKed) when it does not, and our BYE at expiry when it named
//! itself refresher and never refreshed.

mod common;

use common::*;

async fn run(scenario: &str, hold_time: f64, detail: &str) {
    one_call_against_scenario(
        "session-timer",
        scenario,
        &format!("hold_time = {hold_time}\nsession_expires = 90\n[amd]\nprofile = \"off\""),
        detail,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_refresh_with_update_when_the_far_end_allows_it() {
    run(
        include_str!("../sip-fixtures/scenarios/uas_session_timer_update.xml"),
        5.0,
        "hold_time",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_refresh_with_reinvite_otherwise() {
    run(
        include_str!("../sip-fixtures/scenarios/uas_session_timer_reinvite.xml"),
        5.0,
        "hold_time",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrefreshed_session_is_ended_at_expiry() {
    run(
        include_str!("../sip-fixtures/scenarios/uas_session_timer_expire.xml"),
        10.0,
        "session_expired",
    )
    .await;
}
