//! The store path of a call (criterion): what the SQLite store does for one short answered
//! call at load, in the batches the campaign core hands it — the attempt row written before the
//! INVITE (`insert_attempts`), then its call events (initiated, trying, ringing, answered,
//! terminated) with the attempt's ringing/answered/end columns and the lead made final
//! (`record`). Measured per batch of 200 calls (one 10 ms flush at 4,000 calls/s carries about
//! 200 calls' events), each batch the next 200 leads of a 100,000-lead list; divide by 200
//! for the cost per call. A fresh SQLite file per run, WAL,
//! `synchronous = NORMAL` (the store's own settings).
//!
//! `store/short_call_x200` is the whole path; `store/insert_attempts_x200` and
//! `store/record_events_x200` its two parts, each measured with the other done outside the
//! timing.
//!
//! Command: `cargo bench --bench store_path -- --warm-up-time 1 --measurement-time 5`

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

use outdial::campaign::leads::NewLead;
use outdial::events::disposition::Disposition;
use outdial::events::{AttemptRef, CallEvent, CallEventKind, EndReason, HangupBy, WallClock};
use outdial::store::{LeadUpdate, NewAttempt, Store};

/// The allocator the `outdial` binary runs with (src/main.rs), so the figures are the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Calls per batch.
const CALLS: usize = 200;
/// Leads on the list: each batch dials the next 200 (as a campaign does, in list order), so
/// the attempt indexes grow at their end as in a run, not 200 scattered leaves per batch.
const LEADS: usize = 100_000;

fn store_path(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, lease, leads) = rt.block_on(async {
        let store = Store::open(&dir.path().join("bench.db"))
            .await
            .expect("store");
        let c = store
            .upsert_campaign("bench", "{}")
            .await
            .expect("campaign");
        let new: Vec<NewLead> = (0..LEADS)
            .map(|i| NewLead {
                number: format!("+1415{i:07}"),
                raw_number: format!("+1415{i:07}"),
                attributes: Default::default(),
                line: i as u64 + 2,
            })
            .collect();
        store.import_leads(c, &new).await.expect("import");
        let leads: Vec<i64> = store
            .pending_leads(c, None)
            .await
            .expect("leads")
            .iter()
            .map(|l| l.id)
            .collect();
        let lease = store
            .acquire_lease(c, "bench", Duration::from_secs(3600))
            .await
            .expect("lease");
        (store, lease, leads)
    });
    let t0 = Instant::now();
    let clock = WallClock::anchored(t0, chrono::Utc::now());
    // Batch numbers, from 1 (see `pick`).
    let batch_no = AtomicU32::new(0);
    let next = || batch_no.fetch_add(1, Ordering::Relaxed) + 1;
    // Batch `n` (from 1): its leads and their attempt number.
    let pick = |n: u32| -> (&[i64], u32) {
        let first = (n as usize - 1) * CALLS;
        let at = first % LEADS;
        (&leads[at..at + CALLS], (first / LEADS) as u32 + 1)
    };
    let call_ids = |n: u32| -> Vec<String> {
        let (batch, no) = pick(n);
        batch.iter().map(|l| format!("{l}-{no}@bench")).collect()
    };
    let attempts = |n: u32, call_ids: &[String]| {
        let (batch, no) = pick(n);
        let rows: Vec<NewAttempt<'_>> = batch
            .iter()
            .zip(call_ids)
            .map(|(&lead_id, call_id)| NewAttempt {
                lead_id,
                attempt_no: no,
                call_id,
                started_at: clock.to_utc(t0),
            })
            .collect();
        rt.block_on(store.insert_attempts(&lease, &rows))
            .expect("attempts")
    };
    let events = |n: u32, call_ids: &[String], ids: Vec<Option<i64>>| {
        let (batch, no) = pick(n);
        let mut events = Vec::with_capacity(CALLS * 5);
        let mut updates = Vec::with_capacity(CALLS);
        for ((&lead_id, call_id), id) in batch.iter().zip(call_ids).zip(ids) {
            let attempt = AttemptRef {
                attempt_id: id.expect("stored"),
                lead_id,
                attempt_no: no,
            };
            for (ms, kind) in [
                (0, CallEventKind::Initiated),
                (1, CallEventKind::Trying),
                (2, CallEventKind::Ringing { code: 180 }),
                (3, CallEventKind::Answered { code: 200 }),
                (
                    1_003,
                    CallEventKind::Terminated {
                        sip_status: Some(200),
                        reason_phrase: Some("OK".into()),
                        q850_cause: None,
                        hangup_by: HangupBy::Local,
                        disposition: Disposition::Answered,
                        detail: EndReason::HoldTime,
                        retry_after: None,
                    },
                ),
            ] {
                events.push(CallEvent {
                    call_id: call_id.clone(),
                    attempt: attempt.clone(),
                    at: t0 + Duration::from_millis(ms),
                    kind,
                });
            }
            updates.push(LeadUpdate::Final {
                lead_id,
                attempts: no,
                disposition: Disposition::Answered,
            });
        }
        (events, updates)
    };
    let mut g = c.benchmark_group("store");
    // The whole path: attempts, then events.
    g.bench_function("short_call_x200", |b| {
        b.iter(|| {
            let n = next();
            let ids_ = call_ids(n);
            let ids = attempts(n, &ids_);
            let (evs, ups) = events(n, &ids_, ids);
            rt.block_on(store.record(&clock, &evs, &ups))
                .expect("record");
        })
    });
    // Its two parts alone (the other part done outside the measurement).
    g.bench_function("insert_attempts_x200", |b| {
        b.iter_batched(
            || {
                let n = next();
                (n, call_ids(n))
            },
            |(n, ids_)| attempts(n, &ids_),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("record_events_x200", |b| {
        b.iter_batched(
            || {
                let n = next();
                let ids_ = call_ids(n);
                let ids = attempts(n, &ids_);
                events(n, &ids_, ids)
            },
            |(evs, ups)| {
                rt.block_on(store.record(&clock, &evs, &ups))
                    .expect("record")
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, store_path);
criterion_main!(benches);
