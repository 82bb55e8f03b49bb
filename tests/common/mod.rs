//! Helpers shared by the integration tests: campaigns against a SIPp far end on 127.0.0.1.
#![allow(dead_code)]

pub mod pg;
pub mod serve;

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Utc};
use outdial::campaign::config::CampaignConfig;
use outdial::report::{AttemptReport, LeadReport};
use outdial::runner::{self, RunOutcome};
use outdial::sip::transaction::Timers;
use outdial::store::Store;

/// `secs` seconds of a `hz` tone (volume 0.3) as an 8 kHz mono WAV made by sox: `law` is
/// `u-law` or `a-law` (G.711, 8 bits) or `signed-integer` (16-bit PCM).
pub fn tone(dir: &Path, name: &str, law: &str, hz: u32, secs: f64) -> PathBuf {
    let p = dir.join(name);
    let bits = if law == "signed-integer" { "16" } else { "8" };
    let st = Command::new("sox")
        .args(["-n", "-r", "8000", "-c", "1", "-b", bits, "-e", law])
        .arg(&p)
        .args([
            "synth",
            &secs.to_string(),
            "sine",
            &hz.to_string(),
            "vol",
            "0.3",
        ])
        .status()
        .expect("sox (Debian: sox) makes the test audio");
    assert!(st.success());
    p
}

/// A campaign file for a trunk with the given extra TOML lines.
pub fn campaign_toml(name: &str, trunk: &str, extra: &str) -> String {
    format!(
        "name = \"{name}\"\ntrunk = \"{trunk}\"\ncaller_id = \"+14155550000\"\n\
p_asserted_identity = \"sip:+14155550000@outdial.test\"\n{extra}\n"
    )
}

/// Writes a call list with these numbers (one `tag` attribute each).
pub fn write_leads(path: &Path, numbers: &[String]) {
    let mut s = String::from("number,tag\n");
    for (i, n) in numbers.iter().enumerate() {
        s.push_str(&format!("{n},lead-{i}\n"));
    }
    std::fs::write(path, s).unwrap();
}

/// A number whose last digit selects the SIPp outcome (see uas_outcomes.xml).
pub fn number(outcome: u32, serial: u32) -> String {
    format!("+1415{:05}{}", serial, outcome)
}

/// Runs a campaign through the library to completion and returns the outcome and db path.
pub async fn run_campaign(dir: &Path, toml: &str, numbers: &[String]) -> (RunOutcome, PathBuf) {
    run_campaign_on(dir, toml, numbers, dir.join("outdial.db")).await
}

/// … on the store at `db` (a SQLite file or a `postgres://` URL).
pub async fn run_campaign_on(
    dir: &Path,
    toml: &str,
    numbers: &[String],
    db: PathBuf,
) -> (RunOutcome, PathBuf) {
    let cfg: CampaignConfig = toml::from_str(toml).unwrap();
    cfg.validate().unwrap();
    let leads = dir.join("leads.csv");
    write_leads(&leads, numbers);
    let store = Store::open(&db).await.unwrap();
    let out = outdial::app::run(&cfg, &leads, &store, Timers::default(), false)
        .await
        .unwrap();
    (out, db)
}

/// Runs `cfg` over the call list at `leads` with `hooks` (a service's or a test's
/// channels) until it ends.
pub async fn run_csv_with(
    cfg: &CampaignConfig,
    leads: &Path,
    store: &Store,
    hooks: runner::RunHooks,
) -> RunOutcome {
    run_csv_with_timers(cfg, leads, store, Timers::default(), hooks).await
}

/// [`run_csv_with`] with SIP timers of the test's choice (a short T1 makes Timer B, 64·T1,
/// come early).
pub async fn run_csv_with_timers(
    cfg: &CampaignConfig,
    leads: &Path,
    store: &Store,
    timers: Timers,
    hooks: runner::RunHooks,
) -> RunOutcome {
    let import =
        outdial::campaign::leads::read_csv(std::fs::File::open(leads).unwrap(), None).unwrap();
    runner::run_with(cfg, import, store, timers, false, hooks)
        .await
        .unwrap()
}

/// Parses a stored RFC 3339 timestamp.
pub fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The lead with this number.
pub fn lead<'a>(leads: &'a [LeadReport], number: &str) -> &'a LeadReport {
    leads
        .iter()
        .find(|l| l.number == number)
        .unwrap_or_else(|| panic!("no lead {number}"))
}

/// The single attempt of a lead (panics if it has more or fewer).
pub fn only_attempt(l: &LeadReport) -> &AttemptReport {
    assert_eq!(
        l.attempts.len(),
        1,
        "lead {} attempts: {:?}",
        l.number,
        l.attempts
    );
    &l.attempts[0]
}

/// Event kinds stored for a call, in order.
pub async fn event_kinds(db: &Path, call_id: &str) -> Vec<String> {
    let store = Store::open(db).await.unwrap();
    sqlx::query_scalar::<_, String>("SELECT kind FROM call_events WHERE call_id = $1 ORDER BY id")
        .bind(call_id)
        .fetch_all(store.pool())
        .await
        .unwrap()
}

/// The `detail` of every `trunk_failover` event stored in the database at `db`.
pub async fn failover_details(db: &Path) -> Vec<String> {
    let store = Store::open(db).await.unwrap();
    sqlx::query_scalar(
        "SELECT json_extract(data, '$.detail') FROM call_events WHERE kind = 'trunk_failover'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
}

/// Generates the labelled AMD clip set into `dir` (needs python3, espeak-ng and sox).
pub fn generate_clips(dir: &Path) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sip-fixtures/audio/generate.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(dir)
        .output()
        .expect("python3 runs the clip generator");
    assert!(
        out.status.success(),
        "clip generation failed (needs espeak-ng and sox): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One call against a SIPp UAS scenario run for a single call (`-m 1`, UDP): asserts the call
/// was answered and ended with `detail`, nothing failed to parse, and SIPp completed its
/// scenario (it exits 0 only if every message arrived as the scenario expects).
pub async fn one_call_against_scenario(name: &str, scenario: &str, extra: &str, detail: &str) {
    let mut uas = outdial::demo::SippUas::start(
        scenario,
        outdial::sip::message::Transport::Udp,
        &["-m", "1"],
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = campaign_toml(name, &uas.trunk_uri(), extra);
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

/// Attempts stored, and the most that were in progress at once (a sweep over their start and
/// end times; an end sorts before a start at the same millisecond: a slot freed, then taken).
pub async fn peak_concurrency(db: &Path) -> (usize, i32) {
    peak_concurrency_of(db, None).await
}

/// [`peak_concurrency`] over the attempts of these campaigns only (`None`: every one).
pub async fn peak_concurrency_of(db: &Path, campaigns: Option<&[i64]>) -> (usize, i32) {
    let store = Store::open(db).await.unwrap();
    let spans: Vec<(String, String)> =
        sqlx::query_as("SELECT started_at, ended_at, campaign_id FROM attempts")
            .fetch_all(store.pool())
            .await
            .unwrap()
            .into_iter()
            .filter(|(_, _, c): &(String, String, i64)| campaigns.is_none_or(|cs| cs.contains(c)))
            .map(|(s, e, _)| (s, e))
            .collect();
    let mut marks: Vec<(String, i32)> = Vec::new();
    for (s, e) in &spans {
        marks.push((s.clone(), 1));
        marks.push((e.clone(), -1));
    }
    marks.sort();
    let (mut up, mut peak) = (0, 0);
    for (_, d) in marks {
        up += d;
        peak = peak.max(up);
    }
    (spans.len(), peak)
}
