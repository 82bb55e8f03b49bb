//! Actions on the AMD result over the wire, against SIPp streaming audio: a machine gets the
//! voicemail message after its beep, a human gets the prompt; both are then hung up.

mod common;

use std::path::Path;

use common::*;
use outdial::demo::SippUas;
use outdial::media::wav::{read_8k_mono, write_pcm16, write_ulaw};
use outdial::sip::message::Transport;
use outdial::store::Store;

const SCENARIO: &str = include_str!("../sip-fixtures/scenarios/uas_stream_clip.xml");

fn tone(hz: f32, secs: f32, amp: f32) -> Vec<i16> {
    (0..(secs * 8000.0) as usize)
        .map(|i| (amp * (2.0 * std::f32::consts::PI * hz * i as f32 / 8000.0).sin()) as i16)
        .collect()
}

/// Runs one call against a far end streaming `clip`; returns (kind, data) of every event.
async fn call(clip: &Path, work: &Path, extra: &str) -> Vec<(String, serde_json::Value)> {
    let scenario = SCENARIO.replace("@CLIP@", clip.to_str().unwrap());
    let uas = SippUas::start(&scenario, Transport::Udp, &[]).unwrap();
    let toml = campaign_toml(
        "actions",
        &uas.trunk_uri(),
        &format!("hold_time = 20\n{extra}"),
    );
    let (_out, db) = run_campaign(work, &toml, &[number(0, 1)]).await;
    let store = Store::open(&db).await.unwrap();
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT kind, data FROM call_events ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    rows.into_iter()
        .map(|(k, d)| (k, serde_json::from_str(&d).unwrap()))
        .collect()
}

fn find<'a>(evs: &'a [(String, serde_json::Value)], kind: &str) -> &'a serde_json::Value {
    &evs.iter()
        .find(|(k, _)| k == kind)
        .unwrap_or_else(|| panic!("no {kind} event in {evs:?}"))
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voicemail_after_the_beep_and_prompt_for_humans() {
    let dir = tempfile::tempdir().unwrap();
    let clips = dir.path().join("clips");
    generate_clips(&clips);

    // A machine: 3 s of a voicemail greeting, a short pause, a 1 kHz beep, then silence.
    let mut machine = read_8k_mono(&clips.join("machine-004.wav")).unwrap();
    machine.truncate(3 * 8000);
    machine.extend(std::iter::repeat_n(0, 2400));
    machine.extend(tone(1000.0, 0.5, 8000.0));
    machine.extend(std::iter::repeat_n(0, 3 * 8000));
    let machine_clip = dir.path().join("machine-beep.wav");
    write_ulaw(&machine_clip, &machine).unwrap();
    // 1 s messages, 50 packets each.
    let vm = dir.path().join("vm.wav");
    write_pcm16(&vm, &tone(440.0, 1.0, 6000.0)).unwrap();
    let prompt = dir.path().join("prompt.wav");
    write_pcm16(&prompt, &tone(660.0, 1.0, 6000.0)).unwrap();

    let (w1, w2) = (dir.path().join("vm-call"), dir.path().join("prompt-call"));
    std::fs::create_dir_all(&w1).unwrap();
    std::fs::create_dir_all(&w2).unwrap();
    let vm_extra = format!(
        "on_machine = \"voicemail\"\nvoicemail_file = \"{}\"\nvoicemail_wait = 8",
        vm.display()
    );
    let pr_extra = format!(
        "on_human = \"prompt\"\nprompt_file = \"{}\"",
        prompt.display()
    );
    let human_clip = clips.join("human-001.wav");
    let (vm_events, pr_events) = tokio::join!(
        call(&machine_clip, &w1, &vm_extra),
        call(&human_clip, &w2, &pr_extra)
    );

    // Machine: decided, beep heard after the decision, message played after the beep, BYE.
    let amd = find(&vm_events, "amd");
    assert_eq!(amd["result"], "machine", "{vm_events:?}");
    let beep = find(&vm_events, "beep");
    assert_eq!(beep["frequency_hz"], 1000);
    let kinds: Vec<&str> = vm_events.iter().map(|(k, _)| k.as_str()).collect();
    let pos = |k: &str| kinds.iter().position(|x| *x == k).unwrap();
    assert!(pos("beep") < pos("playback_started"), "{kinds:?}");
    assert_eq!(find(&vm_events, "playback_started")["what"], "voicemail");
    assert_eq!(find(&vm_events, "terminated")["detail"], "voicemail_left");
    assert_eq!(find(&vm_events, "media_stats")["sent"], 50);

    // Human: the prompt, then BYE.
    assert_eq!(find(&pr_events, "amd")["result"], "human", "{pr_events:?}");
    assert_eq!(find(&pr_events, "playback_started")["what"], "prompt");
    assert_eq!(find(&pr_events, "terminated")["detail"], "prompt_played");
    assert_eq!(find(&pr_events, "media_stats")["sent"], 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_from_the_far_end_is_reported_once_per_digit() {
    let pcaps = Path::new("/usr/share/sip-tester");
    assert!(
        pcaps.join("dtmf_2833_1.pcap").exists(),
        "SIPp's DTMF captures are missing (Debian package sip-tester)"
    );
    let scenario = include_str!("../sip-fixtures/scenarios/uas_dtmf.xml")
        .replace("@PCAPDIR@", pcaps.to_str().unwrap());
    let uas = SippUas::start(&scenario, Transport::Udp, &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let toml = campaign_toml(
        "dtmf",
        &uas.trunk_uri(),
        "hold_time = 3\n[amd]\nprofile = \"off\"",
    );
    let (_out, db) = run_campaign(dir.path(), &toml, &[number(0, 1)]).await;
    let store = Store::open(&db).await.unwrap();
    let digits: Vec<(String, i64)> = sqlx::query_as(
        "SELECT json_extract(data, '$.digit'), json_extract(data, '$.duration_ms')
         FROM call_events WHERE kind = 'dtmf' ORDER BY id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let just_digits: Vec<&str> = digits.iter().map(|(d, _)| d.as_str()).collect();
    // Each capture ends with three copies of the end packet: one event per digit.
    assert_eq!(just_digits, vec!["1", "5"], "{digits:?}");
    assert!(digits.iter().all(|(_, ms)| *ms > 0));
}
