//! IVR campaigns end to end against SIPp on 127.0.0.1 (sip-fixtures/scenarios/uas_ivr.xml):
//! callers who press 1 (to an agent), 2 (a recording delivered to a webhook with the lead's
//! attributes), 3 (a blind transfer by REFER), 9 by RFC 4733 or by SIP INFO (the do-not-call
//! list), or nothing (the retry prompt, then the hang-up).

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use common::*;
use outdial::demo::{SippUas, free_port};
use outdial::sip::message::Transport;
use outdial::store::Store;
use serde_json::Value;

const CALLERS: &str = include_str!("../sip-fixtures/scenarios/uas_ivr.xml");
const SECRET: &str = "ivr-test-secret-0123456789";

type Got = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A webhook receiver on 127.0.0.1: (signature, body) of each POST.
async fn receiver() -> (String, Got) {
    let got: Got = Default::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |h: axum::http::HeaderMap, body: axum::body::Bytes| {
            let g = g.clone();
            async move {
                let sig = h
                    .get("x-outdial-signature")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default();
                g.lock().unwrap().push((sig, body.to_vec()));
                axum::http::StatusCode::OK
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, got)
}

/// A minimal SMTP server on 127.0.0.1 (RFC 5321's greeting, EHLO, MAIL, RCPT, DATA, QUIT):
/// each message's envelope commands and data, as one text.
async fn smtp_sink() -> (String, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let got: Arc<Mutex<Vec<String>>> = Default::default();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let g = got.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = l.accept().await {
            let g = g.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 sink ESMTP\r\n").await;
                let (mut text, mut data) = (String::new(), false);
                while let Ok(Some(line)) = lines.next_line().await {
                    text.push_str(&line);
                    text.push('\n');
                    let reply: &[u8] = if data {
                        if line != "." {
                            continue;
                        }
                        data = false;
                        g.lock().unwrap().push(std::mem::take(&mut text));
                        b"250 queued\r\n"
                    } else {
                        match line.get(..4).unwrap_or("").to_ascii_uppercase().as_str() {
                            "EHLO" | "HELO" => b"250 sink\r\n",
                            "DATA" => {
                                data = true;
                                b"354 go on\r\n"
                            }
                            "QUIT" => {
                                let _ = w.write_all(b"221 bye\r\n").await;
                                break;
                            }
                            _ => b"250 OK\r\n",
                        }
                    };
                    let _ = w.write_all(reply).await;
                }
            });
        }
    });
    (addr, got)
}

async fn events(store: &Store, kind: &str) -> Vec<(String, Value)> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT l.number, e.data FROM call_events e JOIN attempts a ON a.id = e.attempt_id \
         JOIN leads l ON l.id = a.lead_id WHERE e.kind = ? ORDER BY e.id",
    )
    .bind(kind)
    .fetch_all(store.pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(n, d)| (n, serde_json::from_str(&d).unwrap()))
        .collect()
}

fn of<'a>(evs: &'a [(String, Value)], number: &str) -> Vec<&'a Value> {
    evs.iter()
        .filter(|(n, _)| n == number)
        .map(|(_, v)| v)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_choose_an_agent_a_recording_or_the_dnc_list_and_silence_hangs_up() {
    let pcaps = Path::new("/usr/share/sip-tester");
    assert!(
        pcaps.join("dtmf_2833_pound.pcap").exists(),
        "SIPp's DTMF captures are missing (Debian package sip-tester)"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Prompts of 0.4 s (20 packets each); the caller's voice, 1.5 s of µ-law.
    for (name, hz) in [
        ("menu", 500),
        ("sorry", 600),
        ("beep", 1000),
        ("removed", 700),
    ] {
        tone(d, &format!("{name}.wav"), "signed-integer", hz, 0.4);
    }
    let voice = tone(d, "voice.wav", "u-law", 300, 1.5);
    let far = SippUas::start(
        &CALLERS
            .replace("@PCAPDIR@", pcaps.to_str().unwrap())
            .replace("@CLIP@", voice.to_str().unwrap()),
        Transport::Udp,
        &[],
    )
    .unwrap();
    let (url, got) = receiver().await;
    let (smtp, mails) = smtp_sink().await;
    let port = free_port(Transport::Udp).unwrap();
    let p = |n: &str| d.join(n).display().to_string();
    let extra = format!(
        "local_address = \"127.0.0.1:{port}\"\nmax_concurrent = 7\nring_timeout = 10\n\
         media_timeout = 0\non_human = \"ivr\"\nrecordings_dir = \"{rec}\"\n\
         [amd]\nprofile = \"off\"\n\
         [webhook]\nurl = \"{url}\"\nsecret = \"{SECRET}\"\nevents = [\"ivr_recorded\", \"ivr_choice\"]\n\
         [acd]\nwrap_up = 0\nmax_wait = 10\n[[acd.agents]]\nid = \"ext-200\"\nuri = \"sip:2000@127.0.0.1\"\n\
         [ivr]\n[ivr.nodes.main]\nprompt = \"{menu}\"\ntimeout = 1.5\nretries = 1\nretry_prompt = \"{sorry}\"\n\
         [ivr.nodes.main.choices]\n\
         \"1\" = {{ action = \"queue\" }}\n\
         \"2\" = {{ action = \"record\", prompt = \"{beep}\", max_seconds = 20 }}\n\
         \"9\" = {{ action = \"dnc\", prompt = \"{removed}\" }}\n\
         \"3\" = {{ action = \"transfer\", to = \"+14155557777\" }}\n\
         \"4\" = {{ action = \"callback\", after_seconds = 1 }}\n\
         [ivr.email]\nsmtp = \"{smtp}\"\nfrom = \"dialer@outdial.test\"\n\
         to = [\"helpdesk@outdial.test\"]\nsubject = \"Message from {{number}}\"\n",
        rec = p("rec"),
        menu = p("menu.wav"),
        sorry = p("sorry.wav"),
        beep = p("beep.wav"),
        removed = p("removed.wav"),
    );
    let toml = campaign_toml("ivr", &far.trunk_uri(), &extra);
    // Last digit: what the caller does (uas_ivr.xml).
    let (one, two, none, info, nine, three) = (
        number(1, 1),
        number(2, 2),
        number(5, 3),
        number(7, 4),
        number(9, 5),
        number(3, 6),
    );
    let four = number(4, 7);
    let numbers = [&one, &two, &none, &info, &nine, &three, &four].map(|n| n.to_string());
    let (out, db) = run_campaign(d, &toml, &numbers).await;
    let store = Store::open(&db).await.unwrap();
    for l in out.report.leads.iter().filter(|l| l.number != four) {
        assert_eq!(
            only_attempt(l).disposition.as_deref(),
            Some("answered"),
            "{l:?}"
        );
    }
    let entered = events(&store, "ivr_entered").await;
    assert_eq!(
        entered.len(),
        7,
        "every caller heard the menu once: {entered:?}"
    );
    let choices = events(&store, "ivr_choice").await;
    let exits = events(&store, "ivr_exit").await;
    let exit_of = |n: &str| of(&exits, n)[0]["exit"].as_str().unwrap().to_string();

    // 1: to the agent.
    assert_eq!(of(&choices, &one)[0]["digit"], "1");
    assert_eq!(of(&choices, &one)[0]["action"], "queue");
    assert_eq!(exit_of(&one), "queue");
    let connected = events(&store, "connected").await;
    assert_eq!(of(&connected, &one)[0]["agent"], "ext-200", "{connected:?}");

    // 2: recorded until #, written, delivered with the lead's attributes, signed.
    let rec = of(&events(&store, "ivr_recorded").await, &two)[0].clone();
    assert_eq!(rec["by_key"], true, "{rec}");
    assert_eq!(exit_of(&two), "recorded");
    let file = PathBuf::from(rec["file"].as_str().unwrap());
    assert!(file.starts_with(d.join("rec")), "{file:?}");
    let pcm = outdial::media::wav::read_8k_mono(&file).unwrap();
    let loud = pcm.iter().filter(|s| s.unsigned_abs() > 3000).count();
    assert!(
        loud > 4000,
        "the caller's voice is in the recording: {loud} loud samples"
    );
    let got = got.lock().unwrap().clone();
    let hook = got
        .iter()
        .map(|(sig, body)| (sig, body, serde_json::from_slice::<Value>(body).unwrap()))
        .find(|(_, _, v)| v["payload"]["status"] == "ivr_recorded")
        .expect("ivr_recorded delivered to the webhook");
    assert_eq!(
        *hook.0,
        outdial::notify::webhook::signature(SECRET, hook.1),
        "signed as every webhook"
    );
    let payload = &hook.2["payload"];
    assert_eq!(payload["number"], two.as_str());
    assert_eq!(payload["attributes"]["tag"], "lead-1", "{payload}");
    assert_eq!(payload["recording"]["contentType"], "audio/wav");
    let wav = base64::engine::general_purpose::STANDARD
        .decode(payload["recording"]["base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(wav, std::fs::read(&file).unwrap());
    // … and by email to the helpdesk, the WAV attached, the lead's columns in the text.
    let mail = mails
        .lock()
        .unwrap()
        .first()
        .cloned()
        .expect("the recording was emailed");
    assert!(mail.contains("RCPT TO:<helpdesk@outdial.test>"), "{mail}");
    assert!(
        mail.contains(&format!("Subject: Message from {two}")),
        "{mail}"
    );
    assert!(
        mail.contains("tag: lead-1") && mail.contains("Content-Type: audio/wav"),
        "{mail}"
    );

    // 5: nothing pressed: the menu, the retry prompt, the menu again, then the hang-up.
    assert!(of(&choices, &none).is_empty());
    assert_eq!(exit_of(&none), "timeout");
    let stats = events(&store, "media_stats").await;
    assert_eq!(of(&stats, &none)[0]["sent"], 60, "{stats:?}");

    // 9 by RFC 4733 and by SIP INFO: on the do-not-call list.
    for n in [&nine, &info] {
        assert_eq!(of(&choices, n)[0]["digit"], "9", "{n}: {choices:?}");
        assert_eq!(exit_of(n), "dnc");
        assert!(store.is_dnc(n).await.unwrap(), "{n} on the list");
    }
    let dtmf = events(&store, "dtmf").await;
    assert_eq!(
        of(&dtmf, &info)[0]["digit"],
        "9",
        "SIP INFO digit: {dtmf:?}"
    );
    let terminated = events(&store, "terminated").await;
    for n in [&two, &none, &info, &nine] {
        assert_eq!(of(&terminated, n)[0]["detail"], "ivr_ended", "{n}");
    }
    // 4: asked for a callback: hung up, called again a second later, and that call went
    // straight to the agent (no menu).
    let lead4 = out.report.leads.iter().find(|l| l.number == four).unwrap();
    assert_eq!(lead4.attempts.len(), 2, "{lead4:?}");
    assert_eq!(exit_of(&four), "callback");
    assert_eq!(of(&exits, &four)[0]["callback_after_s"], 1);
    let callback_call = lead4.attempts[1].call_id.clone().unwrap();
    let conns = events(&store, "connected").await;
    assert_eq!(of(&conns, &four).len(), 1, "{conns:?}");
    let ivr_calls: Vec<String> =
        sqlx::query_scalar("SELECT call_id FROM call_events WHERE kind = 'ivr_entered'")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert!(
        !ivr_calls.contains(&callback_call),
        "no menu on the callback"
    );
    assert_eq!(out.engine.acd.as_ref().unwrap().connected, 2);
    let stats = outdial::report::campaign_stats(&store, None, "ivr")
        .await
        .unwrap();
    let count = |m: &std::collections::BTreeMap<String, u64>, k: &str| m.get(k).copied();
    let choices_want = [
        ("main:1", 1),
        ("main:2", 1),
        ("main:3", 1),
        ("main:4", 1),
        ("main:9", 2),
    ];
    for (k, n) in choices_want {
        assert_eq!(
            count(&stats.ivr_choices, k),
            Some(n),
            "{:?}",
            stats.ivr_choices
        );
    }
    let exits_want = [
        ("queue", 1),
        ("recorded", 1),
        ("dnc", 2),
        ("timeout", 1),
        ("transfer", 1),
        ("callback", 1),
    ];
    for (k, n) in exits_want {
        assert_eq!(count(&stats.ivr_exits, k), Some(n), "{:?}", stats.ivr_exits);
    }

    // 3: transferred by REFER to the number through the trunk (SIPp checks the Refer-To),
    // which reported the target's answer: we left the call.
    assert_eq!(exit_of(&three), "transfer");
    let transferred = events(&store, "transferred").await;
    let t = of(&transferred, &three)[0];
    assert!(
        t["to"]
            .as_str()
            .unwrap()
            .starts_with("sip:+14155557777@127.0.0.1"),
        "{t}"
    );
    assert_eq!(t["sip_status"], 200);
    assert_eq!(of(&terminated, &three)[0]["detail"], "transferred");

    // Never dialled again: another campaign with those numbers makes them final as dnc.
    let again = campaign_toml(
        "after-ivr",
        &far.trunk_uri(),
        "max_concurrent = 1\nhold_time = 0.2\n[amd]\nprofile = \"off\"",
    );
    let (out2, _) = run_campaign(d, &again, &[nine.clone(), info.clone()]).await;
    for l in &out2.report.leads {
        assert!(l.attempts.is_empty(), "{l:?}");
        assert_eq!(l.final_disposition.as_deref(), Some("dnc"), "{l:?}");
    }
}

#[test]
fn an_ivr_without_on_human_ivr_or_the_reverse_is_refused() {
    let cfg = |extra: &str| {
        let c: outdial::campaign::config::CampaignConfig =
            toml::from_str(&campaign_toml("x", "sip:127.0.0.1", extra)).unwrap();
        c.validate().unwrap_err().to_string()
    };
    assert!(cfg("on_human = \"ivr\"").contains("needs an [ivr] table"));
    assert!(cfg("[ivr]\n[ivr.nodes.main]\n").contains("set on_human = \"ivr\""));
}
