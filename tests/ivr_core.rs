//! The IVR core driven with a virtual clock (no sockets, no sleeps): what it plays, when it
//! gives up waiting, what each digit does, and how an application that does not hold is
//! refused.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use outdial::events::CallEventKind;
use outdial::ivr::{Ivr, IvrApp, IvrExit, IvrOutput};

const APP: &str = r#"
start = "main"
[nodes.main]
prompt = "menu.wav"
timeout = 4
retries = 1
retry_prompt = "sorry.wav"
[nodes.main.choices]
"1" = { action = "queue" }
"2" = { action = "record", prompt = "beep.wav", max_seconds = 30 }
"9" = { action = "dnc", prompt = "removed.wav" }
"0" = { action = "goto", node = "info" }
[nodes.info]
prompt = "info.wav"
timeout = 2
retries = 0
on_timeout = { action = "goto", node = "main" }
"#;

fn app(text: &str) -> IvrApp {
    let a: IvrApp = toml::from_str(text).unwrap();
    a.validate(true).unwrap();
    a
}

fn outputs(ivr: &mut Ivr) -> Vec<IvrOutput> {
    std::iter::from_fn(|| ivr.poll_output()).collect()
}

fn play(f: &str) -> IvrOutput {
    IvrOutput::Play(PathBuf::from(f))
}

fn entered(node: &str) -> IvrOutput {
    IvrOutput::Event(CallEventKind::IvrEntered { node: node.into() })
}

fn choice(node: &str, digit: &str, action: &str) -> IvrOutput {
    IvrOutput::Event(CallEventKind::IvrChoice {
        node: node.into(),
        digit: digit.into(),
        action: action.into(),
    })
}

fn exit(node: &str, exit: IvrExit) -> [IvrOutput; 2] {
    [
        IvrOutput::Event(CallEventKind::IvrExit {
            node: node.into(),
            exit,
            callback_after_s: None,
        }),
        IvrOutput::Exit(exit),
    ]
}

const S: Duration = Duration::from_secs(1);

#[test]
fn a_digit_during_the_prompt_stops_it_and_queues_the_call() {
    let t0 = Instant::now();
    let mut ivr = Ivr::new(Arc::new(app(APP)));
    ivr.start(t0);
    assert_eq!(outputs(&mut ivr), [entered("main"), play("menu.wav")]);
    // No timer while the prompt plays: the wait starts at its end.
    assert_eq!(ivr.poll_timeout(), None);
    ivr.handle_dtmf(t0 + S, '1');
    let mut want = vec![IvrOutput::StopPlayback, choice("main", "1", "queue")];
    want.extend(exit("main", IvrExit::Queue));
    assert_eq!(outputs(&mut ivr), want);
    assert!(ivr.is_done());
    // Later digits do nothing.
    ivr.handle_dtmf(t0 + 2 * S, '9');
    assert!(outputs(&mut ivr).is_empty());
}

#[test]
fn no_digit_plays_the_retry_prompt_then_hangs_up_after_the_retries() {
    let t0 = Instant::now();
    let mut ivr = Ivr::new(Arc::new(app(APP)));
    ivr.start(t0);
    outputs(&mut ivr);
    ivr.handle_playback_done(t0 + 3 * S);
    assert_eq!(ivr.poll_timeout(), Some(t0 + 7 * S));
    ivr.handle_timeout(t0 + 6 * S);
    assert!(outputs(&mut ivr).is_empty(), "not yet");
    ivr.handle_timeout(t0 + 7 * S);
    assert_eq!(outputs(&mut ivr), [play("sorry.wav")]);
    ivr.handle_playback_done(t0 + 8 * S);
    assert_eq!(outputs(&mut ivr), [play("menu.wav")]);
    ivr.handle_playback_done(t0 + 11 * S);
    ivr.handle_timeout(t0 + 15 * S);
    assert_eq!(outputs(&mut ivr), exit("main", IvrExit::Timeout));
    assert!(ivr.is_done() && ivr.poll_timeout().is_none());
}

#[test]
fn an_unknown_digit_counts_as_a_retry() {
    let t0 = Instant::now();
    let mut ivr = Ivr::new(Arc::new(app(APP)));
    ivr.start(t0);
    ivr.handle_playback_done(t0 + 3 * S);
    outputs(&mut ivr);
    ivr.handle_dtmf(t0 + 4 * S, '7');
    assert_eq!(outputs(&mut ivr), [play("sorry.wav")]);
    ivr.handle_dtmf(t0 + 5 * S, '5');
    // Second unknown digit: retries used up (1), barge-in stops the retry prompt.
    let mut want = vec![IvrOutput::StopPlayback];
    want.extend(exit("main", IvrExit::Timeout));
    assert_eq!(outputs(&mut ivr), want);
}

#[test]
fn record_plays_its_prompt_records_until_hash_and_hangs_up() {
    let t0 = Instant::now();
    let mut ivr = Ivr::new(Arc::new(app(APP)));
    ivr.start(t0);
    ivr.handle_playback_done(t0 + 3 * S);
    outputs(&mut ivr);
    ivr.handle_dtmf(t0 + 4 * S, '2');
    assert_eq!(
        outputs(&mut ivr),
        [choice("main", "2", "record"), play("beep.wav")]
    );
    ivr.handle_playback_done(t0 + 5 * S);
    assert_eq!(outputs(&mut ivr), [IvrOutput::Record(30 * S)]);
    assert!(ivr.is_recording());
    // Digits other than # are part of the message.
    ivr.handle_dtmf(t0 + 6 * S, '4');
    assert!(outputs(&mut ivr).is_empty());
    ivr.handle_dtmf(t0 + 9 * S, '#');
    assert_eq!(outputs(&mut ivr), [IvrOutput::StopRecording]);
    ivr.handle_recorded(t0 + 9 * S, 4 * S, Some("/r/c.wav".into()));
    let mut want = vec![IvrOutput::Event(CallEventKind::IvrRecorded {
        node: "main".into(),
        duration_ms: 4000,
        by_key: true,
        file: Some("/r/c.wav".into()),
    })];
    want.extend(exit("main", IvrExit::Recorded));
    assert_eq!(outputs(&mut ivr), want);
}

#[test]
fn a_recording_the_media_never_reports_ends_at_its_guard() {
    let t0 = Instant::now();
    let mut ivr = Ivr::new(Arc::new(app(APP)));
    ivr.start(t0);
    ivr.handle_dtmf(t0, '2');
    ivr.handle_playback_done(t0 + S);
    outputs(&mut ivr);
    // max_seconds 30 plus a 2 s guard.
    assert_eq!(ivr.poll_timeout(), Some(t0 + 33 * S));
    ivr.handle_timeout(t0 + 33 * S);
    let out = outputs(&mut ivr);
    assert!(
        matches!(
            &out[0],
            IvrOutput::Event(CallEventKind::IvrRecorded {
                duration_ms: 32000,
                by_key: false,
                file: None,
                ..
            })
        ),
        "{out:?}"
    );
    assert_eq!(out[2], IvrOutput::Exit(IvrExit::Recorded));
}

#[test]
fn dnc_plays_its_prompt_then_exits_and_goto_enters_the_other_node() {
    let t0 = Instant::now();
    let mut ivr = Ivr::new(Arc::new(app(APP)));
    ivr.start(t0);
    outputs(&mut ivr);
    ivr.handle_dtmf(t0 + S, '0');
    assert_eq!(
        outputs(&mut ivr),
        [
            IvrOutput::StopPlayback,
            choice("main", "0", "goto"),
            entered("info"),
            play("info.wav")
        ]
    );
    // info: no retries, on_timeout goes back to main.
    ivr.handle_playback_done(t0 + 2 * S);
    ivr.handle_timeout(t0 + 4 * S);
    assert_eq!(outputs(&mut ivr), [entered("main"), play("menu.wav")]);
    ivr.handle_dtmf(t0 + 5 * S, '9');
    assert_eq!(
        outputs(&mut ivr),
        [
            IvrOutput::StopPlayback,
            choice("main", "9", "dnc"),
            play("removed.wav")
        ]
    );
    ivr.handle_playback_done(t0 + 7 * S);
    assert_eq!(outputs(&mut ivr), exit("main", IvrExit::Dnc));
}

#[test]
fn a_goto_loop_ends_the_call() {
    let t0 = Instant::now();
    let looping = app(
        "[nodes.main]\ntimeout = 1\nretries = 0\non_timeout = { action = \"goto\", node = \"b\" }\n\
         [nodes.b]\ntimeout = 1\nretries = 0\non_timeout = { action = \"goto\", node = \"main\" }\n",
    );
    let mut ivr = Ivr::new(Arc::new(looping));
    ivr.start(t0);
    let mut t = t0;
    for _ in 0..200 {
        if ivr.is_done() {
            break;
        }
        t = ivr.poll_timeout().expect("waiting for a digit");
        ivr.handle_timeout(t);
    }
    let out = outputs(&mut ivr);
    assert_eq!(out.last(), Some(&IvrOutput::Exit(IvrExit::Loop)), "{out:?}");
    assert!(t > t0 && ivr.is_done());
}

#[test]
fn an_application_that_does_not_hold_is_refused_by_its_place() {
    let err = |text: &str, acd: bool| {
        toml::from_str::<IvrApp>(text)
            .map_err(|e| e.to_string())
            .and_then(|a| a.validate(acd))
            .unwrap_err()
    };
    assert!(err("start = \"x\"\n[nodes.main]\n", true).starts_with("ivr.start: no node \"x\""));
    assert!(
        err(
            "[nodes.main.choices]\n\"12\" = { action = \"hangup\" }\n",
            true
        )
        .starts_with("ivr.nodes.main.choices.12: a choice is one DTMF digit")
    );
    assert!(
        err(
            "[nodes.main.choices]\n\"1\" = { action = \"goto\", node = \"nowhere\" }\n",
            true
        )
        .contains("goto \"nowhere\": no such node")
    );
    assert!(
        err(
            "[nodes.main.choices]\n\"1\" = { action = \"queue\" }\n",
            false
        )
        .contains("queue needs agents")
    );
    assert!(
        err(
            "[nodes.main.choices]\n\"1\" = { action = \"record\", max_seconds = 0 }\n",
            true
        )
        .contains("max_seconds: must be 1..=600")
    );
    assert!(err("[nodes.main]\ntimeout = 0.1\n", true).contains("timeout: must be 0.5..=60"));
    assert!(err("[nodes.main.choices]\n\"1\" = { action = \"fly\" }\n", true).contains("fly"));
    assert!(err("nodes = {}\n", true).starts_with("ivr.nodes: give 1 to"));
    assert!(
        err("start = \"Main\"\n[nodes.Main]\n", true).starts_with("ivr.nodes.Main: a node's name")
    );
    // The prompts to load, each once (nodes in name order).
    assert_eq!(
        app(APP).prompts(),
        [
            "info.wav",
            "menu.wav",
            "sorry.wav",
            "beep.wav",
            "removed.wav"
        ]
        .map(PathBuf::from)
    );
}

#[test]
fn transfer_plays_its_prompt_then_asks_for_the_refer_without_hanging_up() {
    let t0 = Instant::now();
    let mut ivr = Ivr::new(Arc::new(app(
        "[nodes.main.choices]\n\"0\" = { action = \"transfer\", to = \"+14155557777\", prompt = \"hold.wav\" }\n",
    )));
    ivr.start(t0);
    outputs(&mut ivr);
    ivr.handle_dtmf(t0 + S, '0');
    assert_eq!(
        outputs(&mut ivr),
        [choice("main", "0", "transfer"), play("hold.wav")]
    );
    ivr.handle_playback_done(t0 + 2 * S);
    let mut want = vec![IvrOutput::Transfer("+14155557777".into())];
    want.extend(exit("main", IvrExit::Transfer));
    assert_eq!(outputs(&mut ivr), want);
    let bad = toml::from_str::<IvrApp>(
        "[nodes.main.choices]\n\"0\" = { action = \"transfer\", to = \"415 555\" }\n",
    )
    .unwrap()
    .validate(true)
    .unwrap_err();
    assert!(bad.contains("choices.0.to"), "{bad}");
}
