//! The campaign core's rules, driven with a virtual clock (no sockets, no store, no sleeps):
//! `Campaign` is fed events at chosen instants and what it decides is checked — which leads
//! it dials and when, what each outcome means for the lead, and what holds new calls.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use outdial::campaign::config::CampaignConfig;
use outdial::campaign::core::{
    Campaign, DialPass, Lead, LeadUpdate, Pick, PreviewRefusal, RunControl,
};
use outdial::campaign::rate::SharedLimits;
use outdial::engine::trunks::TrunkHealth;
use outdial::events::disposition::Disposition;
use outdial::events::{
    AgentEvent, AgentReason, AgentState, AttemptRef, AutoPauseReason, AutoResumeReason, CallEvent,
    CallEventKind, CampaignEventKind, HangupBy, WallClock,
};

/// Wednesday 2026-12-02 12:00:00 UTC.
fn noon() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap()
}

fn config(extra: &str) -> CampaignConfig {
    let toml = format!(
        "name = \"core\"\ntrunk = \"sip:127.0.0.1:5060\"\ncaller_id = \"+14155550000\"\n{extra}\n"
    );
    let c: CampaignConfig = toml::from_str(&toml).unwrap();
    c.validate().unwrap();
    c
}

fn lead(id: i64) -> Lead {
    Lead {
        id,
        number: format!("+1415555{id:04}"),
        attempts: 0,
        last_attempt_no: 0,
        next_attempt_at: None,
        time_zone: None,
    }
}

/// A campaign over leads 1..=n at virtual time `t0`.
fn campaign(extra: &str, n: i64, t0: Instant) -> Campaign {
    campaign_with(extra, (1..=n).map(lead).collect(), HashSet::new(), t0)
}

fn campaign_with(extra: &str, leads: Vec<Lead>, dnc: HashSet<String>, t0: Instant) -> Campaign {
    let clock = WallClock::anchored(t0, noon());
    Campaign::new(
        config(extra),
        t0,
        clock,
        leads,
        0,
        dnc,
        SharedLimits::default(),
    )
    .unwrap()
}

/// Dials at `now` and stores every attempt (ids 1000 + lead·10 + attempt no.).
fn dial(c: &mut Campaign, now: Instant) -> Vec<Pick> {
    let DialPass { picks, .. } = c.poll_dial(now, || 0);
    let ids = picks
        .iter()
        .map(|p| Some(attempt_id(p.lead_id, p.attempt_no)))
        .collect();
    let placed = c.placed(picks.clone(), ids);
    assert_eq!(placed.len(), picks.len());
    picks
}

fn attempt_id(lead: i64, no: u32) -> i64 {
    1000 + lead * 10 + i64::from(no)
}

fn ended(at: Instant, lead: i64, no: u32, d: Disposition, retry_after: Option<u32>) -> CallEvent {
    CallEvent {
        call_id: format!("c-{lead}-{no}"),
        attempt: AttemptRef {
            attempt_id: attempt_id(lead, no),
            lead_id: lead,
            attempt_no: no,
        },
        at,
        kind: CallEventKind::Terminated {
            sip_status: Some(486),
            reason_phrase: None,
            q850_cause: None,
            hangup_by: HangupBy::Remote,
            disposition: d,
            detail: outdial::events::EndReason::FinalResponse,
            retry_after,
        },
    }
}

/// Feeds call events at `now` and returns the lead updates stored for them.
fn outcome(c: &mut Campaign, now: Instant, evs: Vec<CallEvent>) -> Vec<LeadUpdate> {
    c.handle_call_events(now, evs);
    let later = now + Duration::from_secs(1);
    assert!(c.flush_due(later));
    c.poll_store(later).expect("a batch").lead_updates
}

fn leads_of(p: &[Pick]) -> Vec<i64> {
    p.iter().map(|p| p.lead_id).collect()
}

const S: Duration = Duration::from_secs(1);

#[test]
fn cps_spaces_the_calls_and_max_concurrent_caps_them() {
    let t0 = Instant::now();
    let mut c = campaign("cps = 2\nmax_concurrent = 3", 10, t0);
    // One call at once (the bucket holds one slot), the next after 1/cps.
    assert_eq!(dial(&mut c, t0).len(), 1);
    assert!(dial(&mut c, t0 + Duration::from_millis(100)).is_empty());
    assert!(c.poll_timeout(t0) <= t0 + Duration::from_millis(500));
    assert_eq!(dial(&mut c, t0 + Duration::from_millis(500)).len(), 1);
    assert_eq!(dial(&mut c, t0 + Duration::from_millis(1000)).len(), 1);
    // Three in progress: nothing more however long it waits.
    assert!(dial(&mut c, t0 + 10 * S).is_empty());
    assert_eq!(c.in_flight(), 3);
    // One ends: one more.
    outcome(
        &mut c,
        t0 + 10 * S,
        vec![ended(t0, 1, 1, Disposition::Answered, None)],
    );
    assert_eq!(dial(&mut c, t0 + 11 * S).len(), 1);
}

#[test]
fn retry_rules_redial_after_retry_after_and_stop_at_max_attempts() {
    let t0 = Instant::now();
    let mut c = campaign(
        "cps = 100\n[[reschedule_rules]]\ndisposition = \"busy\"\nretry_after = 30\nmax_attempts = 2",
        1,
        t0,
    );
    assert_eq!(leads_of(&dial(&mut c, t0)), [1]);
    let up = outcome(
        &mut c,
        t0 + S,
        vec![ended(t0 + S, 1, 1, Disposition::Busy, None)],
    );
    let retry_at = noon() + chrono::Duration::seconds(32);
    assert_eq!(
        up,
        [LeadUpdate::Retry {
            lead_id: 1,
            attempts: 1,
            at: retry_at
        }]
    );
    // Not before retry_after; at it, attempt no. 2.
    assert!(dial(&mut c, t0 + 31 * S).is_empty());
    let p = dial(&mut c, t0 + 32 * S);
    assert_eq!((p[0].lead_id, p[0].attempt_no), (1, 2));
    // Busy again: max_attempts reached, final busy.
    let up = outcome(
        &mut c,
        t0 + 33 * S,
        vec![ended(t0 + 33 * S, 1, 2, Disposition::Busy, None)],
    );
    assert_eq!(
        up,
        [LeadUpdate::Final {
            lead_id: 1,
            attempts: 2,
            disposition: Disposition::Busy
        }]
    );
    assert!(c.is_done());
}

#[test]
fn an_outcome_without_a_rule_is_final_at_once() {
    let t0 = Instant::now();
    let mut c = campaign("cps = 100", 2, t0);
    // One slot at t0; a second later the rate has room for both.
    assert_eq!(dial(&mut c, t0).len(), 1);
    assert_eq!(dial(&mut c, t0 + S).len(), 1);
    let up = outcome(
        &mut c,
        t0 + 2 * S,
        vec![
            ended(t0 + 2 * S, 1, 1, Disposition::NoAnswer, None),
            ended(t0 + 2 * S, 2, 1, Disposition::Answered, None),
        ],
    );
    assert!(matches!(
        up[0],
        LeadUpdate::Final {
            lead_id: 1,
            disposition: Disposition::NoAnswer,
            ..
        }
    ));
    assert!(matches!(
        up[1],
        LeadUpdate::Final {
            lead_id: 2,
            disposition: Disposition::Answered,
            ..
        }
    ));
    assert_eq!(c.counters().final_leads, 2);
    assert_eq!(c.counters().failed, 1);
    assert!(c.is_done());
}

#[test]
fn a_lead_on_the_do_not_call_list_is_final_dnc_and_never_dialled() {
    let t0 = Instant::now();
    let leads = vec![lead(1), lead(2)];
    let dnc: HashSet<String> = [lead(2).number].into();
    let mut c = campaign_with("cps = 100", leads, dnc, t0 - S);
    let pass = c.poll_dial(t0, || 0);
    assert_eq!(leads_of(&pass.picks), [1]);
    assert_eq!(
        pass.not_dialled,
        [LeadUpdate::Final {
            lead_id: 2,
            attempts: 0,
            disposition: Disposition::Dnc
        }]
    );
    // A number added to the list later is refused too.
    let mut c = campaign("cps = 100", 1, t0);
    c.set_dnc([lead(1).number].into());
    let pass = c.poll_dial(t0, || 0);
    assert!(pass.picks.is_empty());
    assert_eq!(pass.not_dialled.len(), 1);
}

#[test]
fn a_lead_outside_its_calling_window_waits_for_its_next_opening() {
    let t0 = Instant::now(); // 12:00 UTC, a Wednesday
    let window = "cps = 100\n[active_period]\nstart_time = \"09:00\"\nend_time = \"17:00\"\n\
                  week_days = [1, 2, 3, 4, 5]\ntime_zone = \"UTC\"\n";
    let mut far = lead(2);
    // 12:00 UTC is 00:00 in Etc/GMT-12: closed until 09:00 there, 21:00 UTC.
    far.time_zone = Some("Etc/GMT-12".parse().unwrap());
    let mut c = campaign_with(window, vec![lead(1), far], HashSet::new(), t0);
    assert_eq!(leads_of(&dial(&mut c, t0)), [1]);
    assert!(dial(&mut c, t0 + 8 * 3600 * S).is_empty());
    assert_eq!(leads_of(&dial(&mut c, t0 + 9 * 3600 * S)), [2]);
}

#[test]
fn retry_after_from_the_trunk_holds_every_new_call_and_delays_the_retry() {
    let t0 = Instant::now();
    let mut c = campaign(
        "cps = 100\n[[reschedule_rules]]\ndisposition = \"congestion\"\nretry_after = 1\nmax_attempts = 3",
        3,
        t0,
    );
    c.handle_control(RunControl::Run);
    assert_eq!(dial(&mut c, t0).len(), 1); // one slot at once
    let up = outcome(
        &mut c,
        t0 + S,
        vec![ended(t0 + S, 1, 1, Disposition::Congestion, Some(20))],
    );
    // Applied when stored (t0 + 2 s): the retry is not before the trunk's 20 s (longer
    // than the rule's 1 s)…
    assert!(
        matches!(up[0], LeadUpdate::Retry { at, .. } if at == noon() + chrono::Duration::seconds(22))
    );
    // …and no other lead is dialled meanwhile.
    assert!(dial(&mut c, t0 + 10 * S).is_empty());
    assert!(dial(&mut c, t0 + 21 * S).is_empty());
    assert!(!dial(&mut c, t0 + 22 * S).is_empty());
}

#[test]
fn congestion_in_a_row_halves_the_rate_and_it_recovers() {
    let t0 = Instant::now();
    let mut c = campaign("cps = 10\nmax_concurrent = 100", 40, t0);
    let mut t = t0;
    let mut placed = Vec::new();
    while placed.len() < 5 {
        placed.extend(dial(&mut c, t));
        t += Duration::from_millis(100);
    }
    let evs = placed
        .iter()
        .map(|p| ended(t, p.lead_id, 1, Disposition::Congestion, None))
        .collect();
    outcome(&mut c, t, evs);
    assert_eq!(c.congestion_backoffs(), 1);
    assert_eq!(c.rate_factor(), 0.5);
    // At 5 cps: one call per 200 ms.
    let t1 = t + S;
    let n: usize = (0..10)
        .map(|i| dial(&mut c, t1 + Duration::from_millis(100 * i)).len())
        .sum();
    assert!((4..=6).contains(&n), "{n} calls in 1 s at 5 cps");
    // Ten seconds without congestion: back up by half.
    dial(&mut c, t1 + 11 * S);
    assert!(c.rate_factor() > 0.5);
}

#[test]
fn pause_holds_new_calls_and_stop_ends_the_run_with_calls_hung_up() {
    let t0 = Instant::now();
    let mut c = campaign("cps = 1", 3, t0);
    assert!(!c.handle_control(RunControl::Pause));
    assert!(dial(&mut c, t0).is_empty());
    c.handle_control(RunControl::Run);
    assert_eq!(dial(&mut c, t0 + S).len(), 1);
    // Stop: the engine is told once; nothing more is dialled; done when the call ended.
    assert!(c.handle_control(RunControl::Stop));
    assert!(!c.handle_control(RunControl::Stop));
    assert!(dial(&mut c, t0 + 2 * S).is_empty());
    assert!(!c.is_done());
    let up = outcome(
        &mut c,
        t0 + 2 * S,
        vec![ended(t0 + 2 * S, 1, 1, Disposition::Interrupted, None)],
    );
    // Interrupted: dialled again by the next run, not counted.
    assert!(matches!(up[0], LeadUpdate::Retry { attempts: 0, .. }));
    assert!(c.is_done());
}

#[test]
fn every_trunk_down_pauses_the_campaign_and_one_up_resumes_it() {
    let t0 = Instant::now();
    let mut c = campaign("cps = 1", 3, t0);
    let down = TrunkHealth {
        total: 1,
        down: vec![("main".into(), "no_response")],
    };
    let ev = c.handle_trunk_health(t0, &down).cloned();
    assert!(
        matches!(ev, Some(CampaignEventKind::AutoPaused { ref reason, ref trunks, .. })
        if *reason == AutoPauseReason::TrunkDown && trunks[0].trunk == "main")
    );
    assert!(dial(&mut c, t0).is_empty());
    // The pause is stored at once.
    let b = c.poll_store(t0).expect("campaign event batch");
    assert_eq!(b.campaign_events.len(), 1);
    let ev = c
        .handle_trunk_health(
            t0 + 5 * S,
            &TrunkHealth {
                total: 1,
                down: vec![],
            },
        )
        .cloned();
    assert!(
        matches!(ev, Some(CampaignEventKind::AutoResumed { reason }) if reason == AutoResumeReason::TrunkUp)
    );
    assert_eq!(dial(&mut c, t0 + 5 * S).len(), 1);
    assert_eq!(c.trunk_pauses(t0 + 6 * S), (1, 5 * S));
}

#[test]
fn a_trunk_failure_redials_the_lead_without_using_an_attempt() {
    let t0 = Instant::now();
    let mut c = campaign("cps = 100", 1, t0);
    dial(&mut c, t0);
    let up = outcome(
        &mut c,
        t0,
        vec![ended(t0, 1, 1, Disposition::NetworkError, None)],
    );
    assert!(matches!(up[0], LeadUpdate::Retry { attempts: 0, .. }));
    assert_eq!(c.counters().trunk_failures, 1);
    let p = dial(&mut c, t0 + 2 * S);
    assert_eq!((p[0].lead_id, p[0].attempt_no), (1, 2));
}

#[test]
fn an_attempt_another_node_stored_first_leaves_the_lead_to_it() {
    let t0 = Instant::now();
    let mut c = campaign("cps = 100", 1, t0);
    let pass = c.poll_dial(t0, || 0);
    let placed = c.placed(pass.picks, vec![None]);
    assert!(placed.is_empty());
    assert_eq!(c.counters().taken_elsewhere, 1);
    assert_eq!(c.in_flight(), 0);
    assert!(c.is_done());
}

#[test]
fn waiting_for_agents_holds_dialling_until_one_is_available() {
    let t0 = Instant::now();
    let mut c = campaign(
        "cps = 1\n[acd]\nwait_for_agents = 30\n[[acd.agents]]\nid = \"1001\"\npassword = \"pw\"\n",
        2,
        t0,
    );
    assert!(c.waiting_for_agents());
    assert!(dial(&mut c, t0 + S).is_empty());
    c.handle_agent_event(t0 + 2 * S, agent("1001", AgentState::Available));
    assert_eq!(dial(&mut c, t0 + 2 * S).len(), 1);
    // Without any agent, it dials anyway once the wait is over.
    let mut c = campaign(
        "cps = 1\n[acd]\nwait_for_agents = 30\n[[acd.agents]]\nid = \"1001\"\npassword = \"pw\"\n",
        2,
        t0,
    );
    assert!(dial(&mut c, t0 + 29 * S).is_empty());
    assert_eq!(dial(&mut c, t0 + 30 * S).len(), 1);
}

fn agent(id: &str, state: AgentState) -> AgentEvent {
    AgentEvent {
        agent: id.into(),
        state,
        reason: AgentReason::Registered,
        call_id: None,
        at: Instant::now(),
    }
}

const PREVIEW: &str = "cps = 100\n[endpoint]\ntype = \"preview\"\n[acd]\n\
    [[acd.agents]]\nid = \"1001\"\npassword = \"pw\"\n[[acd.agents]]\nid = \"1002\"\npassword = \"pw\"\n";

#[test]
fn preview_places_one_call_per_available_agent_who_asks() {
    let t0 = Instant::now();
    let mut c = campaign(PREVIEW, 3, t0);
    // Nobody asked: nothing dialled.
    assert!(dial(&mut c, t0).is_empty());
    c.handle_agent_event(t0, agent("1001", AgentState::Available));
    c.handle_preview(1, "1001".into());
    c.handle_preview(2, "1002".into()); // offline
    c.handle_preview(3, "1001".into()); // asks twice in one pass
    let pass = c.poll_dial(t0, || 0);
    assert_eq!(pass.picks.len(), 1);
    assert_eq!(pass.picks[0].preview, Some(1));
    let placed = c.placed(pass.picks, vec![Some(77)]);
    assert_eq!(placed[0].preview, Some((1, "1001".to_string())));
    let mut refusals = Vec::new();
    while let Some(r) = c.poll_preview_refusal() {
        refusals.push(r);
    }
    assert_eq!(
        refusals,
        [
            (
                2,
                PreviewRefusal::AgentNotAvailable("1002".into(), "offline".into())
            ),
            (
                3,
                PreviewRefusal::AgentNotAvailable("1001".into(), "reserved".into())
            ),
        ]
    );
    // Its call in progress: a new request is refused although the agent looks available.
    c.handle_preview(4, "1001".into());
    c.poll_dial(t0 + S, || 0);
    assert!(matches!(
        c.poll_preview_refusal(),
        Some((4, PreviewRefusal::AgentNotAvailable(..)))
    ));
}

#[test]
fn a_preview_request_on_a_paced_or_paused_campaign_is_refused() {
    let t0 = Instant::now();
    let mut c = campaign("cps = 100", 1, t0);
    c.handle_preview(9, "1001".into());
    c.poll_dial(t0, || 0);
    assert_eq!(
        c.poll_preview_refusal(),
        Some((9, PreviewRefusal::NotPreview))
    );
    let mut c = campaign(PREVIEW, 1, t0);
    c.handle_agent_event(t0, agent("1001", AgentState::Available));
    c.handle_control(RunControl::Pause);
    c.handle_preview(5, "1001".into());
    c.poll_dial(t0, || 0);
    assert_eq!(
        c.poll_preview_refusal(),
        Some((5, PreviewRefusal::NotDialling))
    );
}

#[test]
fn events_gather_into_one_batch_until_the_flush_time() {
    let t0 = Instant::now();
    let mut c = campaign("cps = 1000", 3, t0);
    dial(&mut c, t0);
    c.handle_call_events(t0, vec![ended(t0, 1, 1, Disposition::Answered, None)]);
    assert!(c.gathering());
    assert!(!c.flush_due(t0));
    assert!(c.poll_store(t0).is_none());
    let wake = c.poll_timeout(t0);
    assert!(wake > t0 && wake <= t0 + outdial::campaign::core::EVENT_FLUSH);
    let b = c
        .poll_store(t0 + outdial::campaign::core::EVENT_FLUSH)
        .expect("due");
    assert_eq!((b.call_events.len(), b.lead_updates.len()), (1, 1));
    assert!(!c.gathering());
}

#[test]
fn the_shared_limits_hold_a_place_per_call_until_it_ends() {
    use outdial::campaign::rate::GlobalLimit;
    use std::sync::atomic::Ordering;
    let t0 = Instant::now();
    let process = std::sync::Arc::new(GlobalLimit::new(1000.0, 1, t0 - S));
    let leads = vec![lead(1), lead(2), lead(3)];
    let dnc: HashSet<String> = [lead(1).number].into();
    let mut c = Campaign::new(
        config("cps = 100"),
        t0 - S,
        WallClock::anchored(t0, noon()),
        leads,
        0,
        dnc,
        SharedLimits::new(vec![process.clone()]),
    )
    .unwrap();
    // Lead 1 is on the do-not-call list: its place goes back at once; lead 2 takes the one
    // place there is; lead 3 waits.
    let picks = dial(&mut c, t0);
    assert_eq!(leads_of(&picks), [2]);
    assert_eq!(process.in_flight.load(Ordering::Acquire), 1);
    assert!(dial(&mut c, t0 + S).is_empty());
    outcome(
        &mut c,
        t0 + S,
        vec![ended(t0 + S, 2, 1, Disposition::Answered, None)],
    );
    assert_eq!(process.in_flight.load(Ordering::Acquire), 0);
    assert_eq!(leads_of(&dial(&mut c, t0 + 2 * S)), [3]);
    // A stop gives back the places of the calls cut short.
    c.release_in_flight();
    assert_eq!(process.in_flight.load(Ordering::Acquire), 0);
}

#[test]
fn nothing_is_dialled_before_start_at_and_nothing_new_after_stop_at() {
    let t0 = Instant::now(); // 12:00 UTC
    let schedule = "cps = 1\nstart_at = \"2026-12-02T13:00:00+01:00\"\n\
                    stop_at = \"2026-12-02T12:00:05Z\"\n";
    // 13:00+01:00 is 12:00 UTC: the first call at once; then one a second until 12:00:05.
    let mut c = campaign(schedule, 10, t0);
    assert_eq!(leads_of(&dial(&mut c, t0)), [1]);
    let ahead =
        "cps = 100\nstart_at = \"2026-12-02T12:00:03Z\"\nstop_at = \"2026-12-02T12:00:05Z\"\n";
    let mut c = campaign(ahead, 3, t0);
    assert!(dial(&mut c, t0).is_empty());
    assert!(dial(&mut c, t0 + 2 * S).is_empty());
    // The loop is woken at start_at, not later.
    assert!(c.poll_timeout(t0 + 2 * S) <= t0 + 3 * S);
    assert_eq!(leads_of(&dial(&mut c, t0 + 3 * S)), [1, 2, 3]);
    // One call ends busy with a retry rule; the others are still going at stop_at.
    let mut c = campaign(
        &format!(
            "{ahead}[[reschedule_rules]]\ndisposition = \"busy\"\nretry_after = 1\nmax_attempts = 3\n"
        ),
        3,
        t0,
    );
    assert_eq!(dial(&mut c, t0 + 3 * S).len(), 3);
    let up = outcome(
        &mut c,
        t0 + 4 * S,
        vec![ended(t0 + 4 * S, 1, 1, Disposition::Busy, None)],
    );
    assert!(matches!(up[0], LeadUpdate::Retry { .. }));
    assert!(c.poll_timeout(t0 + 4 * S) <= t0 + 5 * S);
    // stop_at: the retry due at 12:00:05 is not dialled; a schedule_ended event is stored
    // naming the leads left; the run is done once the two calls in progress end.
    assert!(dial(&mut c, t0 + 5 * S).is_empty());
    assert!(c.schedule_ended());
    let b = c
        .poll_store(t0 + 5 * S)
        .expect("the event is stored at once");
    assert!(
        matches!(&b.campaign_events[0].kind,
            CampaignEventKind::ScheduleEnded { stop_at, leads_left: 3 } if stop_at == "2026-12-02T12:00:05Z"),
        "{:?}",
        b.campaign_events
    );
    assert!(!c.is_done());
    outcome(
        &mut c,
        t0 + 6 * S,
        vec![
            ended(t0 + 6 * S, 2, 1, Disposition::Answered, None),
            ended(t0 + 6 * S, 3, 1, Disposition::Answered, None),
        ],
    );
    assert!(c.is_done());
    assert!(dial(&mut c, t0 + 60 * S).is_empty());
}

#[test]
fn a_holiday_in_the_calling_window_places_no_call_that_day() {
    let t0 = Instant::now(); // Wednesday 2026-12-02 12:00 UTC
    let window = "cps = 100\n[active_period]\nstart_time = \"09:00\"\nend_time = \"17:00\"\n\
                  week_days = [1, 2, 3, 4, 5]\ntime_zone = \"UTC\"\nholidays = [\"2026-12-02\"]\n";
    let mut c = campaign(window, 2, t0);
    assert!(dial(&mut c, t0).is_empty());
    assert!(dial(&mut c, t0 + 20 * 3600 * S).is_empty());
    // Thursday 09:00.
    assert_eq!(leads_of(&dial(&mut c, t0 + 21 * 3600 * S)), [1, 2]);
}

#[test]
fn a_schedule_that_does_not_hold_is_refused_by_its_field() {
    let bad = |extra: &str| {
        let toml = format!(
            "name = \"x\"\ntrunk = \"sip:127.0.0.1\"\ncaller_id = \"+14155550000\"\n{extra}\n"
        );
        let c: CampaignConfig = toml::from_str(&toml).unwrap();
        c.validate().unwrap_err().to_string()
    };
    let e = bad("start_at = \"tomorrow 9am\"");
    assert!(e.starts_with("start_at:") && e.contains("RFC 3339"), "{e}");
    let e = bad("start_at = \"2026-12-02T12:00:00Z\"\nstop_at = \"2026-12-02T11:00:00Z\"");
    assert!(e.starts_with("stop_at: must be after start_at"), "{e}");
    // Without its offset the time is ambiguous: refused.
    assert!(bad("stop_at = \"2026-12-02T12:00:00\"").starts_with("stop_at:"));
}

#[test]
fn a_callback_asked_for_in_the_ivr_calls_the_lead_again_then_for_the_agents() {
    let t0 = Instant::now();
    let mut c = campaign("cps = 100", 2, t0);
    assert_eq!(leads_of(&dial(&mut c, t0)), [1]);
    assert_eq!(leads_of(&dial(&mut c, t0 + S)), [2]);
    let exit = CallEvent {
        call_id: "c-1-1".into(),
        attempt: AttemptRef {
            attempt_id: attempt_id(1, 1),
            lead_id: 1,
            attempt_no: 1,
        },
        at: t0 + 5 * S,
        kind: CallEventKind::IvrExit {
            node: "main".into(),
            exit: outdial::events::IvrExit::Callback,
            callback_after_s: Some(60),
        },
    };
    let up = outcome(
        &mut c,
        t0 + 6 * S,
        vec![
            exit,
            ended(t0 + 6 * S, 1, 1, Disposition::Answered, None),
            ended(t0 + 6 * S, 2, 1, Disposition::Answered, None),
        ],
    );
    // Lead 1 is called again (an answered call is otherwise final, as lead 2 is).
    assert!(
        matches!(up[0], LeadUpdate::Retry { lead_id: 1, .. }),
        "{up:?}"
    );
    assert!(
        matches!(up[1], LeadUpdate::Final { lead_id: 2, .. }),
        "{up:?}"
    );
    assert!(dial(&mut c, t0 + 65 * S).is_empty());
    let DialPass { picks, .. } = c.poll_dial(t0 + 67 * S, || 0);
    assert_eq!(leads_of(&picks), [1]);
    assert!(picks[0].callback);
    let placed = c.placed(picks, vec![Some(attempt_id(1, 2))]);
    assert!(placed[0].callback, "the callback goes to the agents");
}
