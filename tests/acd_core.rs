//! The ACD core's rules, driven with a virtual clock (no sockets, no call legs, no sleeps):
//! `Acd` is told what happened — customers answered and ended, agent legs' events — at
//! chosen instants, and the actions it returns (`Offer`, `Bridge`, `Unbridge`, `HangUp`,
//! `Play`, events) are checked. The SIPp tests in `acd_sipp.rs` run the same rules on real
//! phones and legs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use outdial::acd::{
    Acd, AcdAction, AcdConfig, AgentAccount, AgentAction, AgentCall, ConnectMode, Strategy,
};
use outdial::events::disposition::Disposition;
use outdial::events::{
    AgentState, AttemptRef, CallEventKind, DequeueReason, EndReason, HangupBy, Playback,
};
use outdial::sip::message::Tokens;

fn config(agents: usize, mode: ConnectMode, strategy: Strategy) -> AcdConfig {
    AcdConfig {
        agents: (0..agents)
            .map(|i| AgentAccount {
                id: format!("agent{i}"),
                ha1: None,
                static_uri: Some(format!("sip:agent{i}@127.0.0.1:5070")),
            })
            .collect(),
        mode,
        strategy,
        ..AcdConfig::default()
    }
}

fn attempt(n: i64) -> AttemptRef {
    AttemptRef {
        attempt_id: n,
        lead_id: n,
        attempt_no: 1,
    }
}

fn drain(acd: &mut Acd) -> Vec<AcdAction> {
    std::iter::from_fn(|| acd.poll_action()).collect()
}

/// The offers (agent legs to start) among `actions`.
fn offers(actions: &[AcdAction]) -> Vec<AgentCall> {
    actions
        .iter()
        .filter_map(|a| match a {
            AcdAction::Offer(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

/// The kinds of the call events among `actions`, by name.
fn events(actions: &[AcdAction]) -> Vec<&'static str> {
    actions
        .iter()
        .filter_map(|a| match a {
            AcdAction::Event(e) => Some(e.kind.name()),
            _ => None,
        })
        .collect()
}

fn hang_ups(actions: &[AcdAction]) -> Vec<(String, Option<EndReason>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            AcdAction::HangUp { call_id, reason } => Some((call_id.clone(), *reason)),
            _ => None,
        })
        .collect()
}

fn terminated(sip_status: Option<u16>, disposition: Disposition) -> CallEventKind {
    CallEventKind::Terminated {
        sip_status,
        reason_phrase: None,
        q850_cause: None,
        hangup_by: HangupBy::Remote,
        disposition,
        detail: EndReason::RemoteBye,
        retry_after: None,
    }
}

fn answered() -> CallEventKind {
    CallEventKind::Answered { code: 200 }
}

/// A per-call ACD with `n` static agents, started at `t0`, its start-up actions drained.
fn per_call(n: usize, strategy: Strategy, t0: Instant) -> Acd {
    let mut acd = Acd::new(
        config(n, ConnectMode::PerCall, strategy),
        t0,
        Tokens::seeded(7),
    );
    acd.start(t0);
    drain(&mut acd);
    acd
}

#[test]
fn a_queued_customer_is_offered_bridged_on_the_agents_answer_and_released_at_its_end() {
    let t0 = Instant::now();
    let mut acd = per_call(1, Strategy::LongestIdle, t0);
    assert_eq!(acd.agents_in(AgentState::Available), 1);

    let t1 = t0 + Duration::from_secs(1);
    assert!(acd.enqueue(t1, "cust-1", attempt(1), t1));
    assert!(
        !acd.enqueue(t1, "cust-1", attempt(1), t1),
        "queued only once"
    );
    let a = drain(&mut acd);
    assert_eq!(events(&a), ["queued"]);
    let offer = offers(&a).pop().expect("an offer to the agent");
    assert_eq!(offer.agent, "agent0");
    assert_eq!(offer.customer.as_deref(), Some("cust-1"));
    assert_eq!(offer.request_uri, "sip:agent0@127.0.0.1:5070");
    assert_eq!(
        offer.phone, None,
        "a static agent is reached through the trunk"
    );
    assert_eq!(acd.agents_in(AgentState::Reserved), 1);

    acd.call_started(t1, &offer.call_id);
    assert_eq!(events(&drain(&mut acd)), ["agent_offered"]);

    let t2 = t1 + Duration::from_millis(1500);
    acd.agent_leg_event(t2, &offer.call_id, t2, &answered());
    let a = drain(&mut acd);
    assert_eq!(events(&a), ["dequeued"]);
    assert!(a.iter().any(|x| matches!(x,
        AcdAction::Bridge { customer, agent_leg, agent, wait_ms: 1500, mode: ConnectMode::PerCall }
            if customer == "cust-1" && *agent_leg == offer.call_id && agent == "agent0")));
    assert!(acd.is_bridged("cust-1"));
    assert_eq!(acd.agents_in(AgentState::OnCall), 1);
    assert_eq!(acd.poll_timeout(), None, "no max_wait once connected");

    // The customer hangs up: the agent's leg gets a BYE, the agent goes to wrap-up.
    let t3 = t2 + Duration::from_secs(30);
    assert!(
        !acd.customer_ended(t3, "cust-1"),
        "connected: not abandoned"
    );
    let a = drain(&mut acd);
    assert_eq!(
        hang_ups(&a),
        [(offer.call_id.clone(), Some(EndReason::CustomerHangup))]
    );
    assert!(!acd.is_bridged("cust-1"));
    assert_eq!(acd.agents_in(AgentState::WrapUp), 1);
    let s = acd.summary(t3);
    assert_eq!((s.queued, s.connected, s.abandoned), (1, 1, 0));
    assert_eq!(s.wait_p50_ms.round(), 1500.0);
}

#[test]
fn past_max_wait_a_customer_is_abandoned_with_the_message_or_a_bye() {
    for message in [false, true] {
        let t0 = Instant::now();
        let mut cfg = config(1, ConnectMode::PerCall, Strategy::LongestIdle);
        cfg.max_wait = Duration::from_secs(2);
        if message {
            cfg.abandon_message = Some(Arc::new(vec![0; 800]));
        }
        let mut acd = Acd::new(cfg, t0, Tokens::seeded(1));
        acd.start(t0);
        acd.agent_control(
            t0,
            "agent0",
            AgentAction::Pause {
                reason: "lunch".into(),
            },
        )
        .unwrap();
        drain(&mut acd);

        assert!(acd.enqueue(t0, "cust-1", attempt(1), t0));
        let a = drain(&mut acd);
        assert!(offers(&a).is_empty(), "the only agent is paused");
        assert_eq!(acd.queue_view(t0 + Duration::from_secs(1))[0].1, 1000);
        let due = acd.poll_timeout().expect("max_wait is a timeout");
        assert_eq!(due, t0 + Duration::from_secs(2));

        acd.handle_timeout(due - Duration::from_millis(1));
        assert!(events(&drain(&mut acd)).is_empty(), "not yet");
        acd.handle_timeout(due);
        let a = drain(&mut acd);
        assert_eq!(events(&a), ["dequeued", "abandoned"]);
        assert!(a.iter().any(|x| matches!(x, AcdAction::Event(e)
            if e.kind == CallEventKind::Abandoned { wait_ms: 2000, reason: DequeueReason::MaxWait })));
        let expected = if message {
            AcdAction::Play {
                call_id: "cust-1".into(),
                what: Playback::Abandon,
            }
        } else {
            AcdAction::HangUp {
                call_id: "cust-1".into(),
                reason: Some(EndReason::Abandoned),
            }
        };
        assert!(a.contains(&expected), "{a:?}");
        assert!(acd.queue_view(due).is_empty());
        assert!(acd.customer_ended(due, "cust-1"), "terminated as abandoned");
        assert_eq!(acd.summary(due).abandoned, 1);
    }
}

#[test]
fn a_caller_hanging_up_in_the_queue_is_abandoned_and_its_offer_withdrawn_not_missed() {
    let t0 = Instant::now();
    let mut acd = per_call(1, Strategy::LongestIdle, t0);
    acd.enqueue(t0, "cust-1", attempt(1), t0);
    let offer = offers(&drain(&mut acd)).pop().unwrap();
    acd.call_started(t0, &offer.call_id);
    drain(&mut acd);

    let t1 = t0 + Duration::from_millis(800);
    assert!(acd.customer_ended(t1, "cust-1"));
    let a = drain(&mut acd);
    assert_eq!(events(&a), ["dequeued", "abandoned"]);
    assert_eq!(hang_ups(&a), [(offer.call_id.clone(), None)], "CANCEL");
    // The CANCELled leg ends (487): not the agent's miss, no offer_failed.
    acd.agent_leg_event(
        t1,
        &offer.call_id,
        t1,
        &terminated(Some(487), Disposition::NoAnswer),
    );
    assert!(events(&drain(&mut acd)).is_empty());
    assert_eq!(acd.summary(t1).offers_failed, 0);
    assert_eq!(acd.agents_in(AgentState::Available), 1);
}

#[test]
fn a_missed_offer_goes_to_the_next_agent_and_pauses_after_max_misses() {
    let t0 = Instant::now();
    let mut cfg = config(2, ConnectMode::PerCall, Strategy::LongestIdle);
    cfg.max_misses = 1;
    let mut acd = Acd::new(cfg, t0, Tokens::seeded(3));
    acd.start(t0);
    drain(&mut acd);
    acd.enqueue(t0, "cust-1", attempt(1), t0);
    let first = offers(&drain(&mut acd)).pop().unwrap();
    acd.call_started(t0, &first.call_id);
    drain(&mut acd);

    let t1 = t0 + Duration::from_secs(15);
    acd.agent_leg_event(
        t1,
        &first.call_id,
        t1,
        &terminated(Some(480), Disposition::NoAnswer),
    );
    let a = drain(&mut acd);
    assert_eq!(events(&a), ["offer_failed"]);
    let second = offers(&a).pop().expect("offered again");
    assert_ne!(second.agent, first.agent, "to the other agent");
    assert_eq!(acd.summary(t1).offers_failed, 1);
    assert_eq!(
        acd.agents_in(AgentState::Paused),
        1,
        "max_misses = 1 pauses the agent who missed"
    );
}

#[test]
fn ring_all_offers_every_available_agent_and_withdraws_the_others_on_an_answer() {
    let t0 = Instant::now();
    let mut acd = per_call(3, Strategy::RingAll, t0);
    acd.enqueue(t0, "cust-1", attempt(1), t0);
    let all = offers(&drain(&mut acd));
    assert_eq!(all.len(), 3, "every available agent rings");
    for o in &all {
        acd.call_started(t0, &o.call_id);
    }
    drain(&mut acd);

    let t1 = t0 + Duration::from_secs(1);
    acd.agent_leg_event(t1, &all[1].call_id, t1, &answered());
    let a = drain(&mut acd);
    let withdrawn = hang_ups(&a);
    assert_eq!(withdrawn.len(), 2);
    for o in [&all[0], &all[2]] {
        assert!(
            withdrawn.contains(&(o.call_id.clone(), None)),
            "{withdrawn:?}"
        );
    }
    for o in [&all[0], &all[2]] {
        acd.agent_leg_event(
            t1,
            &o.call_id,
            t1,
            &terminated(Some(487), Disposition::NoAnswer),
        );
    }
    drain(&mut acd);
    assert_eq!(acd.summary(t1).offers_failed, 0, "withdrawn, not missed");
    assert_eq!(acd.agents_in(AgentState::Available), 2);
    assert_eq!(acd.agents_in(AgentState::OnCall), 1);
}

#[test]
fn a_leg_that_cannot_start_keeps_the_customer_waiting_until_ports_are_back() {
    let t0 = Instant::now();
    let mut acd = per_call(2, Strategy::LongestIdle, t0);
    acd.enqueue(t0, "cust-1", attempt(1), t0);
    let first = offers(&drain(&mut acd)).pop().unwrap();
    acd.call_not_started(t0, &first.call_id);
    let a = drain(&mut acd);
    assert!(!events(&a).contains(&"agent_offered"));
    assert!(
        offers(&a).is_empty(),
        "nothing offered until ports are back"
    );
    assert_eq!(
        acd.agents_in(AgentState::Available),
        2,
        "not the agent's doing"
    );
    assert_eq!(acd.summary(t0).offers_failed, 0, "not the agent's miss");
    assert_eq!(acd.queue_view(t0).len(), 1, "still waiting");
    acd.redispatch(t0);
    let again = offers(&drain(&mut acd));
    assert_eq!(again.len(), 1, "offered again");
    assert_eq!(again[0].customer.as_deref(), Some("cust-1"));
}

#[test]
fn an_agent_hanging_up_ends_the_customers_call() {
    let t0 = Instant::now();
    let mut acd = per_call(1, Strategy::LongestIdle, t0);
    acd.enqueue(t0, "cust-1", attempt(1), t0);
    let offer = offers(&drain(&mut acd)).pop().unwrap();
    acd.call_started(t0, &offer.call_id);
    acd.agent_leg_event(t0, &offer.call_id, t0, &answered());
    drain(&mut acd);
    let t1 = t0 + Duration::from_secs(60);
    acd.agent_leg_event(
        t1,
        &offer.call_id,
        t1,
        &terminated(Some(200), Disposition::Answered),
    );
    let a = drain(&mut acd);
    assert_eq!(
        hang_ups(&a),
        [("cust-1".to_string(), Some(EndReason::AgentHangup))]
    );
    assert!(!acd.customer_ended(t1, "cust-1"));
    assert!(
        hang_ups(&drain(&mut acd)).is_empty(),
        "the agent leg is gone"
    );
}

#[test]
fn persistent_agents_are_bridged_at_once_and_only_unbridged_at_the_customers_end() {
    let t0 = Instant::now();
    let mut acd = Acd::new(
        config(1, ConnectMode::Persistent, Strategy::LongestIdle),
        t0,
        Tokens::seeded(5),
    );
    acd.start(t0);
    let login = offers(&drain(&mut acd)).pop().expect("the standing call");
    assert_eq!(login.customer, None);
    acd.call_started(t0, &login.call_id);
    assert_eq!(
        acd.agents_in(AgentState::Available),
        0,
        "not until it answers"
    );
    acd.agent_leg_event(t0, &login.call_id, t0, &answered());
    drain(&mut acd);
    assert_eq!(acd.agents_in(AgentState::Available), 1);

    let t1 = t0 + Duration::from_secs(5);
    acd.enqueue(t1, "cust-1", attempt(1), t1);
    let a = drain(&mut acd);
    assert!(offers(&a).is_empty(), "no new INVITE to the phone");
    assert_eq!(events(&a), ["queued", "dequeued"]);
    assert!(a.iter().any(|x| matches!(x,
        AcdAction::Bridge { agent_leg, wait_ms: 0, mode: ConnectMode::Persistent, .. }
            if *agent_leg == login.call_id)));

    // Hold on the agent's phone is reported on the customer's call.
    let held = CallEventKind::Held {
        leg: "remote".into(),
        sip_call_id: login.call_id.clone(),
        by: None,
    };
    acd.agent_leg_event(t1, &login.call_id, t1, &held);
    assert_eq!(events(&drain(&mut acd)), ["held"]);

    let t2 = t1 + Duration::from_secs(20);
    acd.customer_ended(t2, "cust-1");
    let a = drain(&mut acd);
    assert!(hang_ups(&a).is_empty(), "the standing call stays up");
    assert!(a.contains(&AcdAction::Unbridge {
        customer: "cust-1".into(),
        agent_leg: login.call_id.clone(),
    }));

    // The standing call drops: the agent is out until its retry.
    acd.agent_leg_event(
        t2,
        &login.call_id,
        t2,
        &terminated(Some(200), Disposition::Answered),
    );
    drain(&mut acd);
    assert_eq!(acd.agents_in(AgentState::Offline), 1);
    let retry = acd.poll_timeout().expect("login retry");
    acd.handle_timeout(retry.max(t2 + Duration::from_secs(30)));
    let again = offers(&drain(&mut acd));
    assert_eq!(again.len(), 1, "the standing call is tried again");
    assert_eq!(again[0].customer, None);
}

#[test]
fn a_preview_call_goes_only_to_the_agent_it_was_placed_for() {
    let t0 = Instant::now();
    let mut acd = per_call(2, Strategy::LongestIdle, t0);
    acd.preview(t0, "prev-1", "agent1");
    drain(&mut acd);
    assert_eq!(acd.agents_in(AgentState::Reserved), 1);
    acd.enqueue(t0, "cust-2", attempt(2), t0);
    let a = offers(&drain(&mut acd));
    assert_eq!(a.len(), 1);
    assert_eq!(
        a[0].agent, "agent0",
        "agent1 is reserved for its preview call"
    );
    acd.enqueue(t0, "prev-1", attempt(1), t0);
    let a = offers(&drain(&mut acd));
    assert_eq!(a.len(), 1);
    assert_eq!(
        (a[0].agent.as_str(), a[0].customer.as_deref()),
        ("agent1", Some("prev-1"))
    );
}

#[test]
fn a_disposition_is_a_call_event_of_the_agents_last_customer() {
    let t0 = Instant::now();
    let mut cfg = config(1, ConnectMode::PerCall, Strategy::LongestIdle);
    cfg.dispositions = vec!["sale".into()];
    let mut acd = Acd::new(cfg, t0, Tokens::seeded(9));
    acd.start(t0);
    drain(&mut acd);
    acd.enqueue(t0, "cust-1", attempt(42), t0);
    let offer = offers(&drain(&mut acd)).pop().unwrap();
    acd.call_started(t0, &offer.call_id);
    acd.agent_leg_event(t0, &offer.call_id, t0, &answered());
    acd.customer_ended(t0, "cust-1");
    drain(&mut acd);
    let bad = AgentAction::Disposition {
        disposition: "maybe".into(),
        note: None,
    };
    assert!(acd.agent_control(t0, "agent0", bad).is_err());
    assert!(
        drain(&mut acd).is_empty(),
        "nothing changes on a refused request"
    );
    let ok = AgentAction::Disposition {
        disposition: "sale".into(),
        note: Some("2 units".into()),
    };
    acd.agent_control(t0, "agent0", ok).unwrap();
    let a = drain(&mut acd);
    let e = a
        .iter()
        .find_map(|x| match x {
            AcdAction::Event(e) => Some(e),
            _ => None,
        })
        .expect("agent_disposition");
    assert_eq!(e.attempt.attempt_id, 42);
    assert_eq!(e.kind.name(), "agent_disposition");
    assert_eq!(e.call_id, "cust-1");
    assert!(
        a.iter()
            .any(|x| matches!(x, AcdAction::Agent(ev) if ev.state == AgentState::Available)),
        "the disposition ends the wrap-up"
    );
}

/// A warm transfer to another agent: the consulted agent is reserved (no queued customer is
/// offered to it), freed when the consultation ends without a hand-over (not a miss), and on
/// a hand-over the first agent is released and the customer bridged to the second on the
/// consultation leg, whose end then ends the customer's call.
#[test]
fn a_consulted_agent_is_reserved_then_freed_or_handed_the_customer() {
    let t0 = Instant::now();
    let mut acd = per_call(2, Strategy::LongestIdle, t0);
    let t1 = t0 + Duration::from_secs(1);
    acd.enqueue(t1, "cust-1", attempt(1), t1);
    let first = offers(&drain(&mut acd)).pop().unwrap();
    acd.call_started(t1, &first.call_id);
    acd.agent_leg_event(t1, &first.call_id, t1, &answered());
    drain(&mut acd);
    let other = if first.agent == "agent0" {
        "agent1"
    } else {
        "agent0"
    };

    // Unknown or busy agents are refused and nothing changes.
    assert!(acd.consult_agent(t1, "cust-1", "nobody").is_err());
    assert!(acd.consult_agent(t1, "cust-1", &first.agent).is_err());
    let consult = acd.consult_agent(t1, "cust-1", other).expect("available");
    assert_eq!(consult.agent, other);
    assert_eq!(consult.customer.as_deref(), Some("cust-1"));
    assert_eq!(acd.agents_in(AgentState::Reserved), 1);
    // Reserved: a customer queued meanwhile is not offered to it.
    acd.enqueue(t1, "cust-2", attempt(2), t1);
    assert!(offers(&drain(&mut acd)).is_empty());
    // The consultation ends: available again, and takes the waiting customer.
    acd.consult_ended(t1, "cust-1", other);
    let a = drain(&mut acd);
    assert_eq!(offers(&a).len(), 1, "cust-2 offered to the freed agent");
    assert_eq!(offers(&a)[0].agent, other);
    let second_offer = offers(&a)[0].call_id.clone();
    acd.customer_ended(t1, "cust-2");
    acd.agent_leg_event(
        t1,
        &second_offer,
        t1,
        &terminated(Some(487), Disposition::NoAnswer),
    );
    drain(&mut acd);
    assert_eq!(acd.agents_in(AgentState::Available), 1);

    // Again, and this time handed over.
    let consult = acd.consult_agent(t1, "cust-1", other).unwrap();
    drain(&mut acd);
    let t2 = t1 + Duration::from_secs(10);
    assert!(acd.hand_over(t2, "cust-1", other, &consult.call_id));
    let a = drain(&mut acd);
    assert_eq!(
        hang_ups(&a),
        [(first.call_id.clone(), Some(EndReason::Transferred))]
    );
    assert!(a.iter().any(|x| matches!(x,
        AcdAction::Bridge { customer, agent_leg, agent, wait_ms: 0, .. }
            if customer == "cust-1" && *agent_leg == consult.call_id && agent == other)));
    assert_eq!(
        acd.bridged_call(other),
        Some(("cust-1".into(), consult.call_id.clone()))
    );
    assert!(
        !acd.hand_over(t2, "cust-1", other, &consult.call_id),
        "once"
    );
    // The second agent hangs up: the customer's call ends.
    acd.agent_leg_event(
        t2,
        &consult.call_id,
        t2,
        &terminated(Some(200), Disposition::Answered),
    );
    assert_eq!(
        hang_ups(&drain(&mut acd)),
        [("cust-1".to_string(), Some(EndReason::AgentHangup))]
    );
}

#[test]
fn a_warm_transfer_to_an_agent_is_refused_with_standing_calls() {
    let t0 = Instant::now();
    let mut acd = Acd::new(
        config(2, ConnectMode::Persistent, Strategy::LongestIdle),
        t0,
        Tokens::seeded(5),
    );
    acd.start(t0);
    for login in offers(&drain(&mut acd)) {
        acd.call_started(t0, &login.call_id);
        acd.agent_leg_event(t0, &login.call_id, t0, &answered());
    }
    drain(&mut acd);
    assert_eq!(acd.agents_in(AgentState::Available), 2);
    let e = acd.consult_agent(t0, "cust-1", "agent1").unwrap_err();
    assert!(e.to_string().contains("per_call"), "{e}");
    assert_eq!(acd.agents_in(AgentState::Available), 2);
}

/// A blind transfer that failed: the customer is offered first to the agent who transferred
/// it when that one is available again, once; if it misses, any agent takes it. An agent
/// still in its wrap-up is not waited for.
#[test]
fn a_failed_blind_transfer_goes_back_to_its_agent_first_then_to_anyone() {
    let t0 = Instant::now();
    let mut acd = per_call(2, Strategy::LongestIdle, t0);
    acd.enqueue(t0, "cust-1", attempt(1), t0);
    let first = offers(&drain(&mut acd)).pop().expect("an offer");
    acd.call_started(t0, &first.call_id);
    acd.agent_leg_event(t0, &first.call_id, t0, &answered());
    drain(&mut acd);
    let t1 = t0 + Duration::from_secs(10);
    acd.transfer_away(t1, "cust-1");
    drain(&mut acd);
    // After its 5 s wrap-up the agent is available; the other one has been idle longer.
    let t2 = t1 + Duration::from_secs(6);
    acd.handle_timeout(t2);
    drain(&mut acd);
    assert_eq!(acd.agents_in(AgentState::Available), 2);
    assert!(acd.requeue_prefer(t2, "cust-1", &first.agent));
    let back = offers(&drain(&mut acd)).pop().expect("offered again");
    assert_eq!(back.agent, first.agent, "to the agent who transferred it");
    // It does not answer: the other agent gets the customer.
    acd.call_started(t2, &back.call_id);
    acd.agent_leg_event(
        t2,
        &back.call_id,
        t2,
        &terminated(Some(480), Disposition::NoAnswer),
    );
    let next = offers(&drain(&mut acd))
        .pop()
        .expect("offered to the other");
    assert_ne!(next.agent, first.agent);

    // Still in its wrap-up: straight to the other agent.
    let t3 = t2 + Duration::from_secs(1);
    acd.agent_leg_event(t3, &next.call_id, t3, &answered());
    drain(&mut acd);
    acd.transfer_away(t3, "cust-1");
    drain(&mut acd);
    assert!(acd.requeue_prefer(t3, "cust-1", &next.agent));
    let other = offers(&drain(&mut acd)).pop().expect("offered at once");
    assert_eq!(other.agent, first.agent);
}
