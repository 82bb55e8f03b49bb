//! RFC 4028 session timers against SIPp far ends on 127.0.0.1. Each scenario fails its call
//! (SIPp exits non-zero) unless the refreshes arrive as the far end asked: UPDATE when it
//! allows UPDATE, re-INVITE (ACKed) when it does not, and our BYE at expiry when it named
//! itself refresher and never refreshed.

mod common;

use common::*;
use outdial::demo::SippUas;
use outdial::sip::message::Transport;

async fn run(scenario: &str, hold_time: f64, detail: &str) {
    let mut uas = SippUas::start(scenario, Transport::Udp, &["-m", "1"]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = campaign_toml(
        "session-timer",
        &uas.trunk_uri(),
        &format!("hold_time = {hold_time}\nsession_expires = 90\n[amd]\nprofile = \"off\""),
    );
    let (out, _) = run_campaign(dir.path(), &toml, &[number(0, 1)]).await;
    let a = only_attempt(&out.report.leads[0]).clone();
    assert_eq!(a.disposition.as_deref(), Some("answered"), "{a:?}");
    assert_eq!(a.detail.as_deref(), Some(detail), "{a:?}");
    assert_eq!(out.engine.parse_errors, 0);
    let status = uas.wait_exit(std::time::Duration::from_secs(10));
    assert_eq!(
        status,
        Some(0),
        "SIPp's scenario did not complete: see {}",
        uas.dir().display()
    );
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
