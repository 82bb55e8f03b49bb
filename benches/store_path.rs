//! The store path of a call (criterion): what the SQLite store does for one short answered
//! call at load, in the batches the campaign core hands it — the attempt row written before the
//! INVITE (`insert_attempts`), then its call events (initiated, trying, ringing, answered,
//! terminated) with the attempt's ringing/answered/end columns and the lead made final
//! (`record`). Measured per batch of 200 calls (one 10 ms flush at 4,000 calls/s carries about
//! 200 calls' events); divide by 200 for the cost per call. A fresh SQLite file per run, WAL,
//! `synchronous = NORMAL` (the store's own settings).
//!
//! Command: `cargo bench --bench store_path -- --warm-up-time 1 --measurement-time 5`

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

use outdial::campaign::leads::NewLead;
use outdial::events::disposition::Disposition;
use outdial::events::{AttemptRef, CallEvent, CallEventKind, EndReason, HangupBy, WallClock};
use outdial::store::{LeadUpdate, NewAttempt, Store};

/// Calls per batch.
const CALLS: usize = 200;

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
        let new: Vec<NewLead> = (0..CALLS)
            .map(|i| NewLead {
                number: format!("+1415555{i:04}"),
                raw_number: format!("+1415555{i:04}"),
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
    // Each iteration is the next attempt of every lead (attempt numbers are unique per lead).
    let attempt_no = AtomicU32::new(0);
    c.bench_function("store/short_call_x200", |b| {
        b.iter(|| {
            let n = attempt_no.fetch_add(1, Ordering::Relaxed) + 1;
            let call_ids: Vec<String> = leads.iter().map(|l| format!("{l}-{n}@bench")).collect();
            rt.block_on(async {
                let rows: Vec<NewAttempt<'_>> = leads
                    .iter()
                    .zip(&call_ids)
                    .map(|(&lead_id, call_id)| NewAttempt {
                        lead_id,
                        attempt_no: n,
                        call_id,
                        started_at: clock.to_utc(t0),
                    })
                    .collect();
                let ids = store
                    .insert_attempts(&lease, &rows)
                    .await
                    .expect("attempts");
                let mut events = Vec::with_capacity(CALLS * 5);
                let mut updates = Vec::with_capacity(CALLS);
                for ((&lead_id, call_id), id) in leads.iter().zip(&call_ids).zip(ids) {
                    let attempt = AttemptRef {
                        attempt_id: id.expect("stored"),
                        lead_id,
                        attempt_no: n,
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
                        attempts: n,
                        disposition: Disposition::Answered,
                    });
                }
                store
                    .record(&clock, &events, &updates)
                    .await
                    .expect("record");
            });
        })
    });
}

criterion_group!(benches, store_path);
criterion_main!(benches);
