//! `outdial run` killed with SIGKILL mid-campaign, then started again on the same database:
//! the campaign finishes, interrupted attempts are re-dialled, and no lead is dialled after
//! its final disposition.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use outdial::demo::{OUTCOMES_SCENARIO, SippUas};
use outdial::sip::message::Transport;
use outdial::store::Store;

fn outdial() -> Command {
    Command::new(env!("CARGO_BIN_EXE_outdial"))
}

async fn count(store: &Store, sql: &'static str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// Leads with two answered attempts: a person called twice.
const ANSWERED_TWICE: &str = "SELECT COUNT(*) FROM (SELECT lead_id FROM attempts
     WHERE disposition = 'answered' GROUP BY lead_id HAVING COUNT(*) > 1) AS twice";

/// `outdial run CAMPAIGN --leads LEADS --db DB --quiet` with `env`, stderr kept.
fn run_cmd(campaign: &Path, leads: &Path, db: &str, env: &[(&str, &str)]) -> Command {
    let mut c = outdial();
    c.arg("run")
        .arg(campaign)
        .arg("--leads")
        .arg(leads)
        .arg("--db")
        .arg(db)
        .arg("--quiet")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Runs `c` to its end off the async runtime.
async fn output(mut c: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || c.output())
        .await
        .unwrap()
        .unwrap()
}

/// Waits until the run `child` writing to the store at `db` has ended `ended` attempts and
/// has calls in progress: the moment to kill it.
async fn wait_for_calls_up(db: &str, ended: i64, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if outdial::store::is_url(db) || Path::new(db).exists() {
            let store = Store::connect(db).await.unwrap();
            let done = count(
                &store,
                "SELECT COUNT(*) FROM attempts WHERE state = 'ended'",
            )
            .await;
            let dialing = count(
                &store,
                "SELECT COUNT(*) FROM attempts WHERE state = 'dialing'",
            )
            .await;
            store.pool().close().await;
            if done >= ended && dialing > 0 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "first run made no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "first run ended before it was killed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_run_resumes_without_redialling_final_leads() {
    let uas = SippUas::start(OUTCOMES_SCENARIO, Transport::Udp, &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let campaign = dir.path().join("campaign.toml");
    std::fs::write(
        &campaign,
        campaign_toml(
            "resume",
            &uas.trunk_uri(),
            // Busy leads retry once, so a retry can also be pending at the kill.
            "cps = 20\nmax_concurrent = 4\nhold_time = 1\n\
[[reschedule_rules]]\ndisposition = \"busy\"\nretry_after = 1\nmax_attempts = 2\n",
        ),
    )
    .unwrap();
    let numbers: Vec<String> = (0..30)
        .map(|i| number(if i % 5 == 0 { 2 } else { i % 2 }, i))
        .collect();
    let leads = dir.path().join("leads.csv");
    write_leads(&leads, &numbers);
    let db = dir.path().join("run.db");
    let db = db.to_str().unwrap();
    let run = || run_cmd(&campaign, &leads, db, &[]);

    let mut child = run().spawn().unwrap();
    // Wait until a few attempts have ended, then kill it while calls are up.
    wait_for_calls_up(db, 8, &mut child).await;
    // A second run while the first is alive is refused at once (the SQLite file is
    // locked), and dials nothing.
    let out = output(run()).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("is in use by another outdial process")
            && err.contains(&format!("pid {}", child.id())),
        "{err}"
    );
    child.kill().unwrap(); // SIGKILL: no clean-up at all
    child.wait().unwrap();

    let store = Store::open(Path::new(db)).await.unwrap();
    let dialing = count(
        &store,
        "SELECT COUNT(*) FROM attempts WHERE state = 'dialing'",
    )
    .await;
    assert!(dialing > 0, "the kill left no attempt in progress");
    let final_before: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT l.id, (SELECT COUNT(*) FROM attempts a WHERE a.lead_id = l.id)
         FROM leads l WHERE l.status = 'final'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    store.pool().close().await;

    // The killed owner's file lock died with it: the next run holds the lock, which proves
    // the lease's owner is gone, and takes the campaign over at once (no wait for its expiry;
    // a lease of a live owner is refused — tests/store_backends.rs).
    let out = output(run()).await;
    assert!(
        out.status.success(),
        "second run failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let store = Store::open(Path::new(db)).await.unwrap();
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM leads WHERE status != 'final'").await,
        0
    );
    assert_eq!(count(&store, "SELECT COUNT(*) FROM leads").await, 30);
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM attempts WHERE state != 'ended'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM attempts WHERE disposition = 'interrupted'"
        )
        .await,
        dialing
    );
    // Nobody answered twice: no lead has two answered attempts.
    assert_eq!(count(&store, ANSWERED_TWICE).await, 0);
    // Leads final before the kill got no attempt afterwards.
    for (lead_id, attempts) in final_before {
        let now: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM attempts WHERE lead_id = ?1")
            .bind(lead_id)
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(
            now, attempts,
            "lead {lead_id} was dialled again after it was final"
        );
    }
    // For every lead the last attempt is the one that gave the final disposition (nothing was
    // dialled after it), and the counted attempts are exactly max_attempts (2 for busy, 1
    // otherwise): interrupted attempts are re-dialled without being counted.
    let rows: Vec<(i64, String, i64, Option<String>, String)> = sqlx::query_as(
        "SELECT l.id, l.final_disposition, a.attempt_no, a.disposition, a.started_at
         FROM leads l JOIN attempts a ON a.lead_id = l.id ORDER BY l.id, a.attempt_no",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let mut by_lead: std::collections::BTreeMap<i64, Vec<_>> = Default::default();
    for r in rows {
        by_lead.entry(r.0).or_default().push(r);
    }
    for (lead_id, attempts) in by_lead {
        let last = attempts.last().unwrap();
        assert_eq!(
            last.3.as_deref(),
            Some(last.1.as_str()),
            "lead {lead_id}: {attempts:?}"
        );
        let counted = attempts
            .iter()
            .filter(|a| a.3.as_deref() != Some("interrupted"))
            .count();
        let max = if last.1 == "busy" { 2 } else { 1 };
        // The far end is deterministic per number: busy leads use both attempts.
        assert_eq!(counted, max, "lead {lead_id}: {attempts:?}");
        for w in attempts.windows(2) {
            assert!(
                w[0].4 <= w[1].4,
                "lead {lead_id}: attempts out of order {attempts:?}"
            );
        }
    }
}

/// On PostgreSQL (no file lock: several nodes may share the store), the run lease alone keeps
/// one owner per campaign and node: a second `run` of the same node is refused while the
/// first renews its lease, naming it; after the first is killed with SIGKILL its lease runs
/// out and the next run takes the campaign over and finishes it, no lead answered twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_the_lease_keeps_one_owner_and_expires_after_a_kill() {
    let pg = common::pg::PgServer::start();
    let uas = SippUas::start(OUTCOMES_SCENARIO, Transport::Udp, &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let campaign = dir.path().join("campaign.toml");
    std::fs::write(
        &campaign,
        campaign_toml(
            "lease-pg",
            &uas.trunk_uri(),
            "cps = 10\nmax_concurrent = 2\nhold_time = 1\namd = { profile = \"off\" }\n",
        ),
    )
    .unwrap();
    let numbers: Vec<String> = (0..24).map(|i| number(i % 2, i)).collect();
    let leads = dir.path().join("leads.csv");
    write_leads(&leads, &numbers);
    let url = pg.url();
    let env = [("OUTDIAL_NODE", "node-a"), ("OUTDIAL_LEASE_TTL", "3")];
    let run = || run_cmd(&campaign, &leads, &url, &env);
    let mut child = run().spawn().unwrap();
    wait_for_calls_up(&url, 4, &mut child).await;
    let store = Store::connect(&url).await.unwrap();
    // Same node, first alive: refused (after waiting once for the lease, which was renewed).
    let out = output(run()).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("already being dialled by node-a/{}/", child.id())),
        "{err}"
    );
    assert!(child.try_wait().unwrap().is_none(), "the first run ended");
    child.kill().unwrap();
    child.wait().unwrap();
    let dialing = count(
        &store,
        "SELECT COUNT(*) FROM attempts WHERE state = 'dialing'",
    )
    .await;
    // The dead owner's lease runs out (3 s): the next run waits for it, then finishes.
    let out = output(run()).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM leads WHERE status != 'final'").await,
        0
    );
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM attempts WHERE disposition = 'interrupted'"
        )
        .await,
        dialing
    );
    assert_eq!(count(&store, ANSWERED_TWICE).await, 0);
    store.pool().close().await;
}
