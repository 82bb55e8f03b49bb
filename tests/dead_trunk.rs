//! A trunk that does not answer is the trunk's fault, not the lead's: a closed UDP port
//! (ICMP port unreachable) fails calls at once as `network_error`, a silent trunk's calls end
//! `trunk_unreachable` (Timer B); no lead becomes final for it, the trunk goes down after
//! `trunk_down_after` failures, the campaign auto-pauses, and it dials again once the trunk
//! answers our OPTIONS pings.

mod common;

use std::time::{Duration, Instant};

use common::*;
use outdial::campaign::config::CampaignConfig;
use outdial::demo::{OUTCOMES_SCENARIO, SippUas, free_port};
use outdial::runner::{RunControl, RunHooks};
use outdial::sip::message::Transport;
use outdial::sip::transaction::Timers;
use outdial::store::Store;

async fn scalar(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(store.pool())
        .await
        .unwrap_or(0)
}

/// Polls `cond` on the store every 50 ms for up to `secs` seconds.
async fn wait_for(store: &Store, secs: u64, what: &str, sql: &str, at_least: i64) -> i64 {
    let t0 = Instant::now();
    loop {
        let n = scalar(store, sql).await;
        if n >= at_least {
            return n;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "{what}: {n} after {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn config(name: &str, port: u16, extra: &str) -> CampaignConfig {
    let toml = campaign_toml(
        name,
        &format!("sip:127.0.0.1:{port}"),
        &format!(
            "cps = 10\nmax_concurrent = 3\nhold_time = 0.2\nring_timeout = 5\n\
             trunk_down_after = 2\namd = {{ profile = \"off\" }}\n{extra}"
        ),
    );
    let cfg: CampaignConfig = toml::from_str(&toml).unwrap();
    cfg.validate().unwrap();
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_pauses_the_campaign_and_it_dials_once_the_trunk_is_up() {
    let port = free_port(Transport::Udp).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config("closed-port", port, "");
    let numbers: Vec<String> = (0..6).map(|i| number(0, i)).collect();
    let leads = dir.path().join("leads.csv");
    write_leads(&leads, &numbers);
    let store = Store::open(&dir.path().join("o.db")).await.unwrap();
    let run = {
        let (cfg, store, leads) = (cfg.clone(), store.clone(), leads.clone());
        tokio::spawn(async move { run_csv_with(&cfg, &leads, &store, RunHooks::default()).await })
    };
    // Nothing listens: the INVITEs fail at once (ICMP), not after Timer B's 32 s.
    let failed = wait_for(
        &store,
        10,
        "network_error attempts",
        "SELECT COUNT(*) FROM attempts WHERE disposition = 'network_error'",
        2,
    )
    .await;
    wait_for(
        &store,
        10,
        "auto_paused (trunk_down)",
        "SELECT COUNT(*) FROM campaign_events WHERE kind = 'auto_paused' AND data LIKE '%trunk_down%'",
        1,
    )
    .await;
    assert_eq!(
        scalar(&store, "SELECT COUNT(*) FROM leads WHERE status = 'final'").await,
        0,
        "a lead became final for the trunk's fault"
    );
    assert_eq!(
        scalar(&store, "SELECT COALESCE(MAX(attempts), 0) FROM leads").await,
        0,
        "a trunk failure used one of a lead's attempts"
    );
    // Paused: no more attempts while the trunk is down.
    let before = scalar(&store, "SELECT COUNT(*) FROM attempts").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        scalar(&store, "SELECT COUNT(*) FROM attempts").await,
        before
    );
    assert!(failed <= before);
    // The far end appears on that port: a ping is answered, the campaign resumes and ends.
    let _uas = SippUas::start_at(OUTCOMES_SCENARIO, Transport::Udp, port, &[]).unwrap();
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the campaign resumed and ended")
        .unwrap();
    assert_eq!(out.report.summary.leads_final, 6);
    assert_eq!(out.report.summary.answered, 6);
    assert!(out.trunk_failures >= 2, "{}", out.trunk_failures);
    assert_eq!(out.trunk_pauses.0, 1);
    assert_eq!(
        scalar(&store, "SELECT COUNT(*) FROM campaign_events WHERE kind = 'auto_resumed' AND data LIKE '%trunk_up%'").await,
        1
    );
    for n in &numbers {
        let l = lead(&out.report.leads, n);
        assert_eq!(l.final_disposition.as_deref(), Some("answered"), "{l:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_trunk_is_down_after_trunk_down_after_calls_not_after_the_list() {
    let scenario = include_str!("../sip-fixtures/scenarios/uas_silent.xml");
    let uas = SippUas::start(scenario, Transport::Udp, &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // One call at a time, so that the trunk is down before the third lead is dialled.
    let mut cfg = config("silent", uas.addr.port(), "");
    cfg.max_concurrent = 1;
    let numbers: Vec<String> = (0..20).map(|i| number(0, i)).collect();
    let leads = dir.path().join("leads.csv");
    write_leads(&leads, &numbers);
    let store = Store::open(&dir.path().join("o.db")).await.unwrap();
    let (ctl, rx) = tokio::sync::watch::channel(RunControl::Run);
    // Timer B after 64·T1: T1 = 50 ms makes it 3.2 s instead of 32 s.
    let timers = Timers {
        t1: Duration::from_millis(50),
        ..Timers::default()
    };
    let run = {
        let (cfg, store) = (cfg.clone(), store.clone());
        tokio::spawn(async move {
            let hooks = RunHooks {
                control: Some(rx),
                ..RunHooks::default()
            };
            run_csv_with_timers(&cfg, &leads, &store, timers, hooks).await
        })
    };
    wait_for(
        &store,
        30,
        "auto_paused (trunk_down)",
        "SELECT COUNT(*) FROM campaign_events WHERE kind = 'auto_paused' AND data LIKE '%no_response%'",
        1,
    )
    .await;
    let _ = ctl.send(RunControl::Stop);
    let out = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the run stopped")
        .unwrap();
    let unreachable = scalar(
        &store,
        "SELECT COUNT(*) FROM attempts WHERE disposition = 'trunk_unreachable'",
    )
    .await;
    assert!(unreachable >= 2, "{unreachable}");
    // Down after 2 (one at a time: at most one more was in progress), not after the list.
    let attempts = scalar(&store, "SELECT COUNT(*) FROM attempts").await;
    assert!(attempts <= 4, "{attempts} attempts for 20 leads");
    assert_eq!(out.report.summary.leads_final, 0);
    assert!(out.engine.trunks[0].went_down >= 1);
}

/// A trunk that answers every number but one: that lead's calls end `trunk_unreachable`
/// without using its attempts — up to `FREE_TRUNK_FAULTS` in a row; then its attempts count
/// and, with no retry rule for them, it is final, so the campaign ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_the_trunk_never_answers_does_not_keep_the_campaign_from_ending() {
    let scenario = include_str!("../sip-fixtures/scenarios/uas_silent_for_9.xml");
    let uas = SippUas::start(scenario, Transport::Udp, &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // trunk_down_after high: this is about the lead, not the trunk's health.
    let mut cfg = config("silent-9", uas.addr.port(), "");
    cfg.trunk_down_after = 1000;
    let numbers = vec![number(0, 1), "+14155550009".to_string(), number(0, 2)];
    let leads = dir.path().join("leads.csv");
    write_leads(&leads, &numbers);
    let store = Store::open(&dir.path().join("o.db")).await.unwrap();
    // Timer B after 64·T1: T1 = 20 ms makes it 1.28 s.
    let timers = Timers {
        t1: Duration::from_millis(20),
        ..Timers::default()
    };
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        run_csv_with_timers(&cfg, &leads, &store, timers, RunHooks::default()),
    )
    .await
    .expect("the campaign ended");
    let l = lead(&out.report.leads, "+14155550009");
    let free = outdial::campaign::decide::FREE_TRUNK_FAULTS as usize;
    assert_eq!(l.attempts.len(), free + 1, "{l:?}");
    assert!(
        l.attempts
            .iter()
            .all(|a| a.disposition.as_deref() == Some("trunk_unreachable"))
    );
    assert_eq!(l.final_disposition.as_deref(), Some("trunk_unreachable"));
    assert_eq!(out.report.summary.answered, 2);
}

/// Over TCP, a trunk that refuses the connection (nothing listens) fails its INVITEs at once
/// as well: each call moves to the next trunk with a `trunk_failover` whose detail is
/// `network_error` (not the failover timeout, not Timer B), and every lead is answered there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_trunk_that_refuses_connections_fails_over_at_once() {
    let uas = SippUas::start(OUTCOMES_SCENARIO, Transport::Tcp, &[]).unwrap();
    let closed = free_port(Transport::Tcp).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "name = \"tcp-refused\"\ncaller_id = \"+14155550000\"\ncps = 10\nmax_concurrent = 2\n\
         ring_timeout = 2\nhold_time = 0.2\nfailover_timeout = 30\ntrunk_down_after = 100\n\
         [amd]\nprofile = \"off\"\n\
         [[trunks]]\nname = \"dead\"\nuri = \"sip:127.0.0.1:{closed};transport=tcp\"\n\
         [[trunks]]\nname = \"live\"\nuri = \"{}\"\n",
        uas.trunk_uri()
    );
    let numbers: Vec<String> = (0..4).map(|i| number(0, i)).collect();
    let (out, db) = run_campaign(dir.path(), &toml, &numbers).await;
    assert_eq!(out.report.summary.answered, 4);
    let details = failover_details(&db).await;
    assert!(
        !details.is_empty(),
        "no call was routed to the dead trunk first"
    );
    assert!(details.iter().all(|d| d == "network_error"), "{details:?}");
}
