//! The two store backends agree: one scripted campaign history (leads, attempts, every kind of
//! call event the statistics read, agents, tokens, the do-not-call list, call lists, drafts,
//! dead letters) written through `Store` to SQLite and to a PostgreSQL server of the test's
//! own, then everything read back compared — and checked against the values the script
//! implies, so both cannot be wrong the same way.

mod common;

use std::time::{Duration, Instant};

use outdial::acd::Ha1;
use outdial::campaign::leads::NewLead;
use outdial::events::disposition::Disposition;
use outdial::events::{
    AgentEvent, AgentState, AttemptRef, CallEvent, CallEventKind, EndReason, HangupBy, WallClock,
};
use outdial::media::amd::AmdResult;
use outdial::report;
use outdial::store::service::CampaignWriteError;
use outdial::store::{Backend, LeadUpdate, NewAttempt, Store};

fn lead(i: usize) -> NewLead {
    let tz = if i.is_multiple_of(2) {
        "America/New_York"
    } else {
        "Europe/London"
    };
    NewLead {
        number: format!("+1415555{i:04}"),
        raw_number: format!("(415) 555-{i:04}"),
        attributes: [("tz".to_string(), tz.to_string())].into(),
        line: i as u64 + 2,
    }
}

fn terminated(sip: Option<u16>, disposition: Disposition, detail: EndReason) -> CallEventKind {
    CallEventKind::Terminated {
        sip_status: sip,
        reason_phrase: sip.map(|s| format!("S{s}")),
        q850_cause: if sip == Some(486) { Some(17) } else { None },
        hangup_by: if sip == Some(200) {
            HangupBy::Local
        } else {
            HangupBy::Remote
        },
        disposition,
        detail,
        retry_after: None,
    }
}

/// Writes the history and returns what reading it back gave, one line per read (ids left
/// out: PostgreSQL's identity columns skip values on conflicts, SQLite's rowids do not).
async fn history(store: &Store, clock: &WallClock, t0: Instant) -> Vec<String> {
    let mut out = Vec::new();
    let c = store
        .upsert_campaign("backends", r#"{"a":1}"#)
        .await
        .unwrap();
    assert_eq!(
        store
            .upsert_campaign("backends", r#"{"a":2}"#)
            .await
            .unwrap(),
        c
    );
    // More leads than one multi-row statement holds, one number twice.
    let mut leads: Vec<NewLead> = (0..1_200).map(lead).collect();
    leads.push(lead(7));
    let counts = store.import_leads(c, &leads).await.unwrap();
    assert_eq!((counts.inserted, counts.already_present), (1_200, 1));
    let pending = store.pending_leads(c, Some("tz")).await.unwrap();
    assert_eq!(pending.len(), 1_200);
    assert_eq!(pending[1].time_zone.as_deref(), Some("Europe/London"));
    out.push(format!(
        "pending {:?}",
        pending[..3]
            .iter()
            .map(|p| (&p.number, p.attempts, &p.time_zone))
            .collect::<Vec<_>>()
    ));

    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let call_ids = ["c0", "c1", "c2", "c3", "c4"];
    let new: Vec<NewAttempt<'_>> = call_ids
        .iter()
        .enumerate()
        .map(|(i, id)| NewAttempt {
            lead_id: pending[i].id,
            attempt_no: 1,
            call_id: id,
            started_at: clock.to_utc(t0),
        })
        .collect();
    // Two nodes on the campaign, each with its run lease; a second process of node n1 is
    // refused while n1's lease is live, naming the owner.
    let ttl = std::time::Duration::from_secs(600);
    let n1 = store.acquire_lease(c, "n1", ttl).await.unwrap();
    let n2 = store.acquire_lease(c, "n2", ttl).await.unwrap();
    let refused = store.acquire_lease(c, "n1", ttl).await.unwrap_err();
    let held = refused
        .downcast_ref::<outdial::store::LeaseHeld>()
        .expect("a LeaseHeld error");
    assert_eq!(held.owner, n1.owner);
    assert!(refused.to_string().contains("already being dialled by n1/"));
    assert!(store.renew_lease(&n1, ttl).await.unwrap());
    let ids: Vec<i64> = store
        .insert_attempts(&n1, &new)
        .await
        .unwrap()
        .into_iter()
        .map(Option::unwrap)
        .collect();
    assert_eq!(ids.len(), 5);
    // Another node storing the same attempt of a lead gets nothing: that lead is being called;
    // and leads being called are not pending for anyone starting now.
    let dup = [NewAttempt {
        call_id: "dup",
        ..new[0].clone()
    }];
    assert_eq!(store.insert_attempts(&n2, &dup).await.unwrap(), vec![None]);
    assert_eq!(store.pending_leads(c, None).await.unwrap().len(), 1_195);
    let ev = |i: usize, ms: u64, kind: CallEventKind| CallEvent {
        call_id: call_ids[i].into(),
        attempt: AttemptRef {
            attempt_id: ids[i],
            lead_id: pending[i].id,
            attempt_no: 1,
        },
        at: at(ms),
        kind,
    };
    let amd = |r: AmdResult| CallEventKind::Amd {
        result: r,
        cause: "TEST".into(),
        decision_ms: 500,
        profile: "default".into(),
    };
    // First batch: progress of every call.
    let first = vec![
        ev(0, 100, CallEventKind::Ringing { code: 180 }),
        ev(1, 300, CallEventKind::Ringing { code: 180 }),
        ev(2, 200, CallEventKind::EarlyMedia { code: 183 }),
        ev(3, 400, CallEventKind::Ringing { code: 180 }),
        ev(0, 2_000, CallEventKind::Answered { code: 200 }),
        ev(0, 2_500, amd(AmdResult::Human)),
        ev(0, 2_600, CallEventKind::Queued { position: 1 }),
    ];
    store.record(clock, &first, &[]).await.unwrap();
    // Second batch: a later ringing must not replace the first one's time.
    let second = vec![
        ev(0, 3_000, CallEventKind::Ringing { code: 180 }),
        ev(
            0,
            4_100,
            CallEventKind::Connected {
                agent: "1001".into(),
                agent_call_id: "a0".into(),
                wait_ms: 1_500,
                mode: "per_call".into(),
                transcoding: false,
            },
        ),
        ev(
            1,
            900,
            terminated(Some(486), Disposition::Busy, EndReason::FinalResponse),
        ),
        ev(2, 1_000, CallEventKind::Answered { code: 200 }),
        ev(2, 1_700, amd(AmdResult::Machine)),
        ev(
            2,
            2_000,
            terminated(Some(200), Disposition::Answered, EndReason::AmdMachine),
        ),
        ev(3, 1_400, CallEventKind::Answered { code: 200 }),
        ev(3, 1_900, amd(AmdResult::NotSure)),
        ev(3, 2_000, CallEventKind::Queued { position: 2 }),
        ev(
            3,
            5_000,
            CallEventKind::Abandoned {
                wait_ms: 3_000,
                reason: outdial::events::DequeueReason::MaxWait,
            },
        ),
        ev(
            3,
            5_200,
            terminated(Some(200), Disposition::Abandoned, EndReason::Abandoned),
        ),
        ev(
            0,
            10_100,
            terminated(Some(200), Disposition::Answered, EndReason::RemoteBye),
        ),
        ev(
            0,
            12_000,
            CallEventKind::AgentDisposition {
                agent: "1001".into(),
                disposition: "sale".into(),
                note: None,
            },
        ),
    ];
    let updates = [
        LeadUpdate::Final {
            lead_id: pending[0].id,
            attempts: 1,
            disposition: Disposition::Answered,
        },
        LeadUpdate::Final {
            lead_id: pending[1].id,
            attempts: 1,
            disposition: Disposition::Busy,
        },
        LeadUpdate::Final {
            lead_id: pending[2].id,
            attempts: 1,
            disposition: Disposition::Answered,
        },
        LeadUpdate::Retry {
            lead_id: pending[3].id,
            attempts: 1,
            at: clock.to_utc(at(3_600_000)),
        },
    ];
    store.record(clock, &second, &updates).await.unwrap();
    // c4 is still dialling when the process "stops".
    assert_eq!(
        store.recover_interrupted(c, "n2").await.unwrap(),
        0,
        "another node's call, its lease live"
    );
    assert_eq!(
        store.recover_interrupted(c, "n1").await.unwrap(),
        0,
        "our own node's live owner (a second process must not take its calls)"
    );
    // n1's process dies: its lease runs out (here: a successor takes it once expired).
    sqlx::query("UPDATE run_leases SET expires_at = '2000-01-01T00:00:00.000Z' WHERE node = 'n1'")
        .execute(store.pool())
        .await
        .unwrap();
    let successor = store.acquire_lease(c, "n1", ttl).await.unwrap();
    assert_ne!(successor.owner, n1.owner);
    assert!(
        !store.renew_lease(&n1, ttl).await.unwrap(),
        "the old owner lost it"
    );
    assert_eq!(store.recover_interrupted(c, "n1").await.unwrap(), 1);
    store.release_lease(&successor).await.unwrap();
    store.release_lease(&n2).await.unwrap();
    assert_eq!(store.lead_counts(c).await.unwrap(), (1_200, 3));
    let pending = store.pending_leads(c, None).await.unwrap();
    assert_eq!(pending.len(), 1_197);
    out.push(format!(
        "retried {:?}",
        pending
            .iter()
            .find(|p| p.number == "+14155550003")
            .map(|p| (p.attempts, p.next_attempt_at, p.last_attempt_no))
    ));

    // Agent 1001's day: available, offered the call, on it, wrap-up, logged off.
    let agent = |ms: u64, state: AgentState| AgentEvent {
        agent: "1001".into(),
        state,
        reason: outdial::events::AgentReason::Paused("test".into()),
        call_id: None,
        at: at(ms),
    };
    store
        .record_agent_events(
            clock,
            &[
                agent(0, AgentState::Available),
                agent(3_000, AgentState::Reserved),
                agent(4_100, AgentState::OnCall),
                agent(10_100, AgentState::WrapUp),
                agent(11_100, AgentState::Offline),
            ],
        )
        .await
        .unwrap();

    let r = report::build(store, c, "backends").await.unwrap();
    assert_eq!(r.summary.attempts, 5);
    out.push(format!("summary {:?}", r.summary));
    let mut leads = r.leads[..5].to_vec();
    // The interrupted attempt ended when it was recovered (now), not at a scripted time.
    assert_eq!(
        leads[4].attempts[0].detail.as_deref(),
        Some("process_stopped")
    );
    leads[4].attempts[0].ended_at = None;
    out.push(format!("leads {leads:?}"));
    let s = report::campaign_stats(store, Some(c), "backends")
        .await
        .unwrap();
    // What the script implies: a 1,500 ms wait, 6,000 ms from the bridge to the end, post-dial
    // delays of 100/200/300/400 ms (the first ringing of each call), one connect for 1001.
    assert_eq!((s.queued, s.connected, s.abandoned), (2, 1, 1), "{s:?}");
    assert!((s.avg_wait_ms - 1_500.0).abs() < 1.0, "{s:?}");
    assert!((s.avg_talk_ms - 6_000.0).abs() < 2.0, "{s:?}");
    assert!((s.pdd_p50_ms - 200.0).abs() < 2.0, "{s:?}");
    assert!((s.pdd_p99_ms - 400.0).abs() < 2.0, "{s:?}");
    assert_eq!(s.agents.get("1001"), Some(&1), "{s:?}");
    assert_eq!(s.agent_dispositions.get("sale"), Some(&1), "{s:?}");
    assert_eq!(s.amd_shares.len(), 3, "{s:?}");
    let o = &s.agent_occupancy["1001"];
    assert_eq!((o.available_ms, o.handling_ms), (3_000, 8_100), "{s:?}");
    assert!((o.occupancy - 8_100.0 / 11_100.0).abs() < 1e-9, "{s:?}");
    out.push(format!("stats {s:?}"));
    let all = report::campaign_stats(store, None, "all").await.unwrap();
    out.push(format!("overall {all:?}"));

    // Agents, tokens, the do-not-call list.
    let ha1 = Ha1::from_password("1001", "outdial", "secret-1");
    store.upsert_agent("1001", "outdial", &ha1).await.unwrap();
    assert_eq!(store.agent_ha1("1001", "outdial").await.unwrap(), Some(ha1));
    assert_eq!(store.agent_ha1("1001", "other").await.unwrap(), None);
    out.push(format!(
        "agent realm {:?}",
        store.agent_realm("1001").await.unwrap()
    ));
    store
        .create_token("t", "agent", Some("1001"), "odt_secret")
        .await
        .unwrap();
    out.push(format!(
        "token {:?} {:?}",
        store.token_role("odt_secret").await.unwrap(),
        store.token_role("odt_other").await.unwrap()
    ));
    let dnc = ["+14155550001".to_string(), "+14155550002".to_string()];
    assert_eq!(store.import_dnc(&dnc, "test").await.unwrap(), 2);
    assert_eq!(store.import_dnc(&dnc, "test").await.unwrap(), 0);
    out.push(format!(
        "dnc {} {} {}",
        store.dnc_count().await.unwrap(),
        store.is_dnc("+14155550001").await.unwrap(),
        store.is_dnc("+14155559999").await.unwrap()
    ));

    // Call lists and draft campaigns (the service's tables).
    let list = store
        .create_call_list("list", &(0..3).map(lead).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(list.numbers_count, 3);
    out.push(format!(
        "list numbers {:?}",
        store.call_list_numbers(list.id).await.unwrap()
    ));
    let draft = store
        .create_campaign("draft", "{}", &[list.id])
        .await
        .unwrap();
    assert_eq!(draft.call_lists, vec![list.id]);
    assert!(matches!(
        store.create_campaign("draft", "{}", &[]).await,
        Err(CampaignWriteError::NameTaken(_))
    ));
    assert!(matches!(
        store.update_campaign(draft.id, "backends", "{}", &[]).await,
        Err(CampaignWriteError::NameTaken(_))
    ));
    store.set_campaign_state(draft.id, "paused").await.unwrap();
    out.push(format!(
        "draft {:?}",
        store.campaign(draft.id).await.unwrap().map(|c| c.state)
    ));
    assert_eq!(
        store.campaigns_using_list(list.id).await.unwrap(),
        vec![(draft.id, "paused".to_string())]
    );
    assert!(store.delete_campaign_if_unused(draft.id).await.unwrap());
    assert!(!store.delete_campaign_if_unused(c).await.unwrap());
    assert!(store.delete_call_list(list.id).await.unwrap());
    assert!(store.call_list(list.id).await.unwrap().is_none());
    store
        .dead_letter(c, "http://127.0.0.1:9/", 7, "{}", 3, "refused")
        .await
        .unwrap();
    out.push(format!(
        "dead letters {:?}",
        store.dead_letters(c).await.unwrap()
    ));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_postgresql_store_and_read_the_same() {
    let clock = WallClock::anchored(std::time::Instant::now(), chrono::Utc::now());
    // The script's times lie in the past, so the interrupted attempt (ended when recovered,
    // now) closes the campaign's span after all of them.
    let t0 = Instant::now() - Duration::from_secs(60);
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(&dir.path().join("o.db")).await.unwrap();
    assert_eq!(sqlite.backend(), Backend::Sqlite);
    let on_sqlite = history(&sqlite, &clock, t0).await;

    let pg = common::pg::PgServer::start();
    let postgres = Store::connect(&pg.url()).await.unwrap();
    assert_eq!(postgres.backend(), Backend::Postgres);
    let on_postgres = history(&postgres, &clock, t0).await;
    assert_eq!(on_sqlite.len(), on_postgres.len());
    for (a, b) in on_sqlite.iter().zip(&on_postgres) {
        assert_eq!(a, b);
    }
    // Opening again applies no migration twice.
    postgres.pool().close().await;
    Store::connect(&pg.url()).await.unwrap();
}

#[tokio::test]
async fn a_wrong_postgresql_url_is_a_clear_error_without_the_password() {
    let port = outdial::demo::free_port(outdial::sip::message::Transport::Tcp).unwrap();
    let err = Store::connect(&format!(
        "postgres://outdial:hunter2@127.0.0.1:{port}/outdial"
    ))
    .await
    .err()
    .expect("nothing listens there");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("connecting to postgres://outdial:***@127.0.0.1"),
        "{msg}"
    );
    assert!(!msg.contains("hunter2"), "{msg}");
}
