//! Trunk groups against real far ends on 127.0.0.1: weights, failover on 503 and on silence,
//! trunks marked down and back up by OPTIONS keep-alive pings, and an outbound proxy.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use outdial::demo::{OUTCOMES_SCENARIO, SippUas};
use outdial::engine::trunks::TrunkStats;
use outdial::sip::message::{Transport, parse_datagram, response_to};

/// A campaign over a `[[trunks]]` group (`trunks`: TOML of the tables).
fn group_toml(name: &str, extra: &str, trunks: &str) -> String {
    format!(
        "name = \"{name}\"\ncaller_id = \"+14155550000\"\n\
ring_timeout = 2\nhold_time = 0.5\n{extra}\n[amd]\nprofile = \"off\"\n{trunks}"
    )
}

fn trunk(s: &[TrunkStats], name: &str) -> TrunkStats {
    s.iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no trunk {name} in {s:?}"))
        .clone()
}

/// The congested-trunk scenario without its Retry-After: a plain 503 to every INVITE.
fn always_503() -> String {
    include_str!("../sip-fixtures/scenarios/uas_503_retry_after.xml")
        .replace("      Retry-After: 2 (overloaded)\n", "")
}

/// Trunk `a` answers every INVITE 503: each call routed to it moves to `b` (same Call-ID,
/// CSeq 2) and is answered there; after two failures `a` is marked down and no longer picked
/// first, so most calls go straight to `b`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_fails_over_to_the_next_trunk_and_marks_the_trunk_down() {
    let a = SippUas::start(&always_503(), Transport::Udp, &[]).unwrap();
    let b = SippUas::start(OUTCOMES_SCENARIO, Transport::Udp, &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = group_toml(
        "failover-503",
        "cps = 2\nmax_concurrent = 4",
        &format!(
            "[[trunks]]\nname = \"a\"\nuri = \"{}\"\n[[trunks]]\nname = \"b\"\nuri = \"{}\"\n",
            a.trunk_uri(),
            b.trunk_uri()
        ),
    );
    let numbers: Vec<_> = (0..8).map(|i| number(0, i)).collect();
    let (out, db) = run_campaign(dir.path(), &toml, &numbers).await;
    let mut failovers = 0;
    for l in &out.report.leads {
        let at = only_attempt(l);
        assert_eq!(at.disposition.as_deref(), Some("answered"), "{at:?}");
        assert_eq!(at.sip_status, Some(200), "{at:?}");
        let kinds = event_kinds(&db, at.call_id.as_deref().unwrap()).await;
        assert_eq!(kinds.iter().filter(|k| *k == "initiated").count(), 1);
        assert_eq!(kinds.iter().filter(|k| *k == "terminated").count(), 1);
        failovers += kinds.iter().filter(|k| *k == "trunk_failover").count();
    }
    let ta = trunk(&out.engine.trunks, "a");
    let tb = trunk(&out.engine.trunks, "b");
    assert_eq!(ta.went_down, 1, "{ta:?}");
    assert!(!ta.up);
    assert_eq!(ta.failures, ta.invites, "{ta:?}");
    assert_eq!(failovers as u64, ta.invites);
    assert!(
        (2..=3).contains(&ta.invites),
        "a down after 2 failures: {ta:?}"
    );
    assert_eq!(tb.invites, 8, "{tb:?}");
    assert_eq!(tb.failures, 0);
    // The failover event names both trunks and the 503.
    let store = outdial::store::Store::open(&db).await.unwrap();
    let (from, to, status): (String, String, i64) = sqlx::query_as(
        "SELECT json_extract(data, '$.from_trunk'), json_extract(data, '$.to_trunk'), \
         json_extract(data, '$.sip_status') FROM call_events WHERE kind = 'trunk_failover' LIMIT 1",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!((from.as_str(), to.as_str(), status), ("a", "b", 503));
}

/// With weights 3:1 on two healthy trunks, calls split 3:1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_split_the_calls() {
    let a = SippUas::start(OUTCOMES_SCENARIO, Transport::Udp, &[]).unwrap();
    let b = SippUas::start(OUTCOMES_SCENARIO, Transport::Udp, &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = group_toml(
        "weights",
        "cps = 20\nmax_concurrent = 8",
        &format!(
            "[[trunks]]\nname = \"a\"\nuri = \"{}\"\nweight = 3\n\
             [[trunks]]\nname = \"b\"\nuri = \"{}\"\nweight = 1\n",
            a.trunk_uri(),
            b.trunk_uri()
        ),
    );
    let numbers: Vec<_> = (0..12).map(|i| number(2, i)).collect(); // busy: quick calls
    let (out, _db) = run_campaign(dir.path(), &toml, &numbers).await;
    for l in &out.report.leads {
        assert_eq!(only_attempt(l).disposition.as_deref(), Some("busy"));
    }
    assert_eq!(trunk(&out.engine.trunks, "a").invites, 9);
    assert_eq!(trunk(&out.engine.trunks, "b").invites, 3);
}

/// A UDP "trunk" on 127.0.0.1 that answers nothing until `wake` is set, then answers OPTIONS
/// 200 and INVITEs 503.
fn silent_trunk(wake: Arc<AtomicBool>) -> (SocketAddr, tokio::task::JoinHandle<u32>) {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_nonblocking(true).unwrap();
    let sock = tokio::net::UdpSocket::from_std(sock).unwrap();
    let addr = sock.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        let mut options_answered = 0;
        // Bounded: stops by itself after 60 s even if the test does not abort it.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        while let Ok(Ok((n, src))) =
            tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await
        {
            if !wake.load(Ordering::Acquire) {
                continue;
            }
            let Ok(m) = parse_datagram(&buf[..n]) else {
                continue;
            };
            let code = match m.method.as_deref() {
                Some("OPTIONS") => {
                    options_answered += 1;
                    200
                }
                Some("INVITE") => 503,
                _ => continue,
            };
            let resp = response_to(&m, code, Some("silent1"), vec![], vec![]);
            let _ = sock.send_to(&resp, src).await;
        }
        options_answered
    });
    (addr, task)
}

/// Trunk `a` is silent: the first call routed to it moves to `b` after `failover_timeout`;
/// its OPTIONS pings go unanswered and mark it down. Once it answers pings it is marked up
/// again. Trunk `b` (SIPp, answering OPTIONS with `-aa`) stays up throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_trunk_times_out_goes_down_on_pings_and_comes_back() {
    let wake = Arc::new(AtomicBool::new(false));
    let (a_addr, a_task) = silent_trunk(wake.clone());
    let b = SippUas::start(OUTCOMES_SCENARIO, Transport::Udp, &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = group_toml(
        "keepalive",
        "cps = 1\nmax_concurrent = 4\nfailover_timeout = 0.5\nkeepalive_interval = 1\ntrunk_down_after = 1",
        &format!(
            "[[trunks]]\nname = \"a\"\nuri = \"sip:{a_addr}\"\n\
             [[trunks]]\nname = \"b\"\nuri = \"{}\"\n",
            b.trunk_uri()
        ),
    );
    let numbers: Vec<_> = (0..7).map(|i| number(0, i)).collect();
    let waker = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
        wake.store(true, Ordering::Release);
    });
    let (out, db) = run_campaign(dir.path(), &toml, &numbers).await;
    waker.await.unwrap();
    a_task.abort();
    for l in &out.report.leads {
        assert_eq!(only_attempt(l).disposition.as_deref(), Some("answered"));
    }
    let ta = trunk(&out.engine.trunks, "a");
    let tb = trunk(&out.engine.trunks, "b");
    assert!(ta.ping_failures >= 1, "{ta:?}");
    assert!(ta.went_down >= 1, "{ta:?}");
    assert!(ta.up, "answered pings bring it back: {ta:?}");
    assert!(tb.pings >= 2, "{tb:?}");
    assert_eq!(tb.ping_failures, 0, "{tb:?}");
    assert_eq!(tb.went_down, 0);
    // The first call went to `a` (first in the rotation) and moved on after the timeout.
    let details = failover_details(&db).await;
    assert!(
        details.iter().any(|d| d == "failover_timeout"),
        "{details:?}"
    );
}
