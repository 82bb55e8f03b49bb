//! End to end: SIPp answers and streams labelled clips as RTP (`rtp_stream`); a campaign runs
//! AMD on the received audio; each call's AMD result over the wire must agree with the offline
//! evaluation of the same clip, and the engine must lose no packet on loopback.

mod common;

use std::path::PathBuf;

use common::*;
use outdial::demo::SippUas;
use outdial::media::amd::AmdConfig;
use outdial::media::amd::eval::classify_samples;
use outdial::media::wav::read_8k_mono;
use outdial::sip::message::Transport;
use outdial::store::Store;

const SCENARIO: &str = include_str!("../sip-fixtures/scenarios/uas_stream_clip.xml");

/// Runs one single-lead campaign against a SIPp far end streaming `clip`; returns the stored
/// `amd` event's result and the media statistics (packets, lost).
async fn over_the_wire(clip: PathBuf, work: PathBuf) -> (String, i64, i64) {
    let scenario = SCENARIO.replace("@CLIP@", clip.to_str().unwrap());
    let uas = SippUas::start(&scenario, Transport::Udp, &[]).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let toml = campaign_toml(
        "e2e",
        &uas.trunk_uri(),
        "hold_time = 8\non_human = \"hangup\"\non_machine = \"hangup\"",
    );
    let (out, db) = run_campaign(&work, &toml, &[number(0, 1)]).await;
    assert_eq!(
        out.report.summary.amd.values().sum::<u64>(),
        1,
        "the report counts the AMD result"
    );
    let store = Store::open(&db).await.unwrap();
    let amd: String = sqlx::query_scalar(
        "SELECT json_extract(data, '$.result') FROM call_events WHERE kind = 'amd'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap_or_else(|e| panic!("{}: no amd event: {e}", clip.display()));
    let (packets, lost): (i64, i64) = sqlx::query_as(
        "SELECT json_extract(data, '$.packets'), json_extract(data, '$.lost')
         FROM call_events WHERE kind = 'media_stats'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    (amd, packets, lost)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amd_over_rtp_agrees_with_offline_evaluation() {
    let clips = tempfile::tempdir().unwrap();
    generate_clips(clips.path());
    let work = tempfile::tempdir().unwrap();
    // Every kind of clip: short and repeated human greetings, voicemail greetings with and
    // without a beep, dead air and a noisy line, clean and noisy.
    let picks = [
        "human-001.wav",
        "human-003.wav",
        "human-017.wav",
        "human-110.wav",
        "machine-001.wav",
        "machine-002.wav",
        "machine-015.wav",
        "machine-050.wav",
        "silence-001.wav",
        "silence-002.wav",
    ];
    let cfg = AmdConfig::named("default").unwrap();
    let mut tasks = Vec::new();
    for (i, name) in picks.iter().enumerate() {
        let clip = clips.path().join(name);
        let offline = classify_samples(&cfg, &read_8k_mono(&clip).unwrap()).0;
        let dir = work.path().join(format!("call-{i}"));
        tasks.push((name, offline, tokio::spawn(over_the_wire(clip, dir))));
    }
    for (name, offline, task) in tasks {
        let (wire, packets, lost) = task.await.unwrap();
        let offline = serde_json::to_value(offline).unwrap();
        assert_eq!(
            wire,
            offline.as_str().unwrap(),
            "{name}: over RTP vs offline"
        );
        assert!(packets > 0, "{name}: no RTP received");
        assert_eq!(lost, 0, "{name}: packets lost on loopback");
    }
}
