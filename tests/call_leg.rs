//! The engine core driven with a virtual clock and raw responses from
//! `sip-fixtures/messages/dialog/` (compact forms, folded lines, no Content-Length, garbage in
//! between): RFC 3261 call flows end to end, no sockets, no sleeps.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use outdial::call::leg::CallSpec;
use outdial::engine::core::{Engine, EngineConfig, Output, new_call_id};
use outdial::events::disposition::Disposition;
use outdial::events::{AttemptRef, CallEventKind, HangupBy};
use outdial::sip::dialog::LocalParty;
use outdial::sip::message::{Inbound, Transport, parse_datagram};
use outdial::sip::transaction::Timers;

const TRUNK: &str = "192.0.2.10:5060";

struct Harness {
    engine: Engine,
    now: Instant,
    sent: Vec<(SocketAddr, Inbound)>,
    events: Vec<CallEventKind>,
    call_id: String,
    from_tag: String,
    invite_branch: String,
}

fn template(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("sip-fixtures/messages/dialog")
        .join(name);
    std::fs::read_to_string(p).unwrap()
}

impl Harness {
    fn start(ring: u64, hold: u64) -> Self {
        Self::start_with(ring, hold, None)
    }

    fn start_with(
        ring: u64,
        hold: u64,
        auth: Option<std::sync::Arc<outdial::sip::digest::Credentials>>,
    ) -> Self {
        let mut engine = Engine::new(
            EngineConfig::single_trunk(
                LocalParty {
                    sent_by: "192.0.2.1:5070".into(),
                    transport: Transport::Udp,
                    user_agent: "outdial-test".into(),
                },
                TRUNK.parse().unwrap(),
                Timers::default(),
                (20000, 20010),
            ),
            std::time::Instant::now(),
            outdial::sip::message::Tokens::seeded(42),
        );
        let now = Instant::now();
        let call_id = new_call_id(&mut outdial::sip::message::Tokens::from_seed(rand::random()));
        engine.start_call(
            now,
            call_id.clone(),
            AttemptRef {
                attempt_id: 1,
                lead_id: 1,
                attempt_no: 1,
            },
            CallSpec {
                number: String::new(),
                hops: vec![outdial::call::leg::Hop {
                    auth,
                    ..outdial::call::leg::Hop::direct("sip:+14155550123@192.0.2.10:5060")
                }],
                failover_timeout: Duration::from_secs(3),
                to_uri: "sip:+14155550123@192.0.2.10:5060".into(),
                caller_id: "+14155550000".into(),
                caller_name: Some("Sales".into()),
                from_host: "192.0.2.1".into(),
                p_asserted_identity: Some("sip:+14155550000@example.com".into()),
                ring_timeout: Duration::from_secs(ring),
                hold_time: Duration::from_secs(hold),
                rtp_port: 0,
                media_ip: "192.0.2.1".into(),
                media: Default::default(),
                privacy: Some("id".into()),
                session_expires: None,
            },
        );
        let mut h = Harness {
            engine,
            now,
            sent: vec![],
            events: vec![],
            call_id,
            from_tag: String::new(),
            invite_branch: String::new(),
        };
        h.drain();
        let invite = h.take_sent();
        assert_eq!(invite.len(), 1);
        let (dest, inv) = &invite[0];
        assert_eq!(dest.to_string(), TRUNK);
        assert_eq!(inv.method.as_deref(), Some("INVITE"));
        let text = String::from_utf8_lossy(&inv.msg().to_bytes()).into_owned();
        for needle in [
            "m=audio 20000 RTP/AVP 0 8 101",
            "a=rtpmap:101 telephone-event/8000",
            "Max-Forwards: 70",
            "User-Agent: outdial-test",
            "P-Asserted-Identity: <sip:+14155550000@example.com>",
            "From: \"Sales\" <sip:+14155550000@192.0.2.1>;tag=",
            "Content-Type: application/sdp",
        ] {
            assert!(text.contains(needle), "INVITE lacks {needle:?}:\n{text}");
        }
        h.from_tag = inv.from_tag().map(str::to_string).unwrap();
        h.invite_branch = inv.branch().map(str::to_string).unwrap();
        assert!(h.invite_branch.starts_with("z9hG4bK"));
        assert_eq!(h.events, vec![CallEventKind::Initiated]);
        h.events.clear();
        h
    }

    fn drain(&mut self) {
        while let Some(o) = self.engine.poll_output() {
            match o {
                Output::Transmit(t) => {
                    let m = parse_datagram(&t.bytes).expect("we send parsable SIP");
                    self.sent.push((t.dest, m));
                }
                Output::Event(e) => {
                    assert_eq!(e.call_id, self.call_id);
                    self.events.push(e.kind);
                }
                Output::Media(_) | Output::Trunk(_) | Output::Agent(_) => {}
            }
        }
    }

    fn take_sent(&mut self) -> Vec<(SocketAddr, Inbound)> {
        std::mem::take(&mut self.sent)
    }

    fn fill(&self, tmpl: &str, vars: &[(&str, &str)]) -> Vec<u8> {
        let mut s = template(tmpl);
        // An empty To-tag means "no tag parameter" (a 100 Trying before any dialog exists).
        if vars.iter().any(|(k, v)| *k == "$TO_TAG" && v.is_empty()) {
            s = s.replace(";tag=$TO_TAG", "");
        }
        let mut s = s
            .replace("$CALL_ID", &self.call_id)
            .replace("$FROM_TAG", &self.from_tag);
        for (k, v) in vars {
            s = s.replace(k, v);
        }
        s.into_bytes()
    }

    /// The far end answers the INVITE (2xx, To-tag `to_tag`); what we send and the events
    /// that follow (ACK, `answered`) are set aside.
    fn answer_quietly(&mut self, to_tag: &str) {
        let br = self.invite_branch.clone();
        let ok = self.fill(
            "200-sdp-no-content-length.tmpl",
            &[("$TO_TAG", to_tag), ("$BRANCH", &br), ("$CSEQ", "1")],
        );
        self.feed(&ok);
        self.take_sent();
        self.events.clear();
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.engine
            .handle_datagram(self.now, bytes, TRUNK.parse().unwrap());
        self.drain();
    }

    fn respond(
        &mut self,
        tmpl: &str,
        status: &str,
        to_tag: &str,
        branch: &str,
        cseq: &str,
        method: &str,
    ) {
        let b = self.fill(
            tmpl,
            &[
                ("$STATUS", status),
                ("$TO_TAG", to_tag),
                ("$BRANCH", branch),
                ("$CSEQ", cseq),
                ("$METHOD", method),
                ("$CAUSE", "17"),
            ],
        );
        self.feed(&b);
    }

    /// Advances the virtual clock to `until`, firing every timer on the way.
    fn advance_to(&mut self, until: Instant) {
        while let Some(t) = self.engine.poll_timeout() {
            if t > until {
                break;
            }
            self.now = t.max(self.now);
            self.engine.handle_timeout(self.now);
            self.drain();
        }
        self.now = until;
    }

    fn advance(&mut self, d: Duration) {
        self.advance_to(self.now + d);
    }
}

fn terminated(ev: &CallEventKind) -> (Option<u16>, Disposition, HangupBy, String, Option<u16>) {
    match ev {
        CallEventKind::Terminated {
            sip_status,
            disposition,
            hangup_by,
            detail,
            q850_cause,
            ..
        } => (
            *sip_status,
            *disposition,
            *hangup_by,
            detail.as_str().to_string(),
            *q850_cause,
        ),
        other => panic!("expected terminated, got {other:?}"),
    }
}

#[test]
fn answered_call_with_retransmitted_and_forked_2xx_then_bye_after_hold_time() {
    let mut h = Harness::start(30, 5);
    let br = h.invite_branch.clone();
    // Garbage between messages is counted and dropped.
    h.feed(b"\x00\x01garbage\r\n\r\n");
    h.respond(
        "provisional-compact.tmpl",
        "180 Ringing",
        "a",
        &br,
        "1",
        "INVITE",
    );
    assert_eq!(h.events, vec![CallEventKind::Ringing { code: 180 }]);
    h.events.clear();

    let ok = h.fill(
        "200-sdp-no-content-length.tmpl",
        &[("$TO_TAG", "a"), ("$BRANCH", &br), ("$CSEQ", "1")],
    );
    h.feed(&ok);
    assert_eq!(h.events, vec![CallEventKind::Answered { code: 200 }]);
    h.events.clear();
    let acks = h.take_sent();
    assert_eq!(acks.len(), 1);
    let (dest, ack) = &acks[0];
    // Loose route: ACK to the Record-Route hop, Request-URI is the Contact, new branch.
    assert_eq!(dest.to_string(), "192.0.2.20:5060");
    assert_eq!(ack.method.as_deref(), Some("ACK"));
    assert_eq!((ack.cseq, ack.cseq_method()), (1, "ACK"));
    assert_ne!(ack.branch(), Some(br.as_str()));
    assert_eq!(ack.to_tag(), Some("a"));
    assert_eq!(
        ack.request().unwrap().uri.to_string(),
        "sip:far@192.0.2.10:5060"
    );
    let ack_text = String::from_utf8_lossy(&ack.msg().to_bytes()).into_owned();
    assert!(
        ack_text.contains("Route: <sip:192.0.2.20:5060;lr>"),
        "{ack_text}"
    );

    // The 2xx is retransmitted (our ACK was lost): ACK again, no new event.
    h.feed(&ok);
    let again = h.take_sent();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].1.method.as_deref(), Some("ACK"));
    assert_eq!(again[0].1.branch(), ack.branch());
    assert!(h.events.is_empty());

    // A 2xx from a second fork: ACK it and BYE it; the call stays up on fork a.
    let fork = h.fill(
        "200-sdp-no-content-length.tmpl",
        &[("$TO_TAG", "b"), ("$BRANCH", &br), ("$CSEQ", "1")],
    );
    h.feed(&fork);
    let sent = h.take_sent();
    let methods: Vec<_> = sent
        .iter()
        .map(|(_, m)| {
            (
                m.method.clone().unwrap(),
                m.to_tag().map(str::to_string).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        methods,
        vec![("ACK".into(), "b".into()), ("BYE".into(), "b".into())]
    );
    assert!(h.events.is_empty());

    // Hold time: BYE on fork a with CSeq 2.
    h.advance(Duration::from_secs(5));
    let byes: Vec<_> = h
        .take_sent()
        .into_iter()
        .filter(|(_, m)| m.method.as_deref() == Some("BYE") && m.to_tag() == Some("a"))
        .collect();
    assert_eq!(byes.len(), 1, "one BYE for the answered dialog");
    let bye = &byes[0].1;
    assert_eq!((bye.cseq, bye.cseq_method()), (2, "BYE"));
    let bye_branch = bye.branch().map(str::to_string).unwrap();
    h.respond("final-folded.tmpl", "200 OK", "a", &bye_branch, "2", "BYE");
    assert_eq!(h.events.len(), 1);
    let (status, d, by, detail, _) = terminated(&h.events[0]);
    assert_eq!(
        (status, d, by, detail.as_str()),
        (
            Some(200),
            Disposition::Answered,
            HangupBy::Local,
            "hold_time"
        )
    );
    assert!(h.engine.stats(Instant::now()).parse_errors >= 1);
}

#[test]
fn ring_timeout_sends_cancel_and_487_ends_as_no_answer() {
    let mut h = Harness::start(3, 5);
    let br = h.invite_branch.clone();
    h.respond(
        "provisional-compact.tmpl",
        "100 Trying",
        "",
        &br,
        "1",
        "INVITE",
    );
    h.respond(
        "provisional-compact.tmpl",
        "180 Ringing",
        "r",
        &br,
        "1",
        "INVITE",
    );
    h.take_sent();
    h.advance(Duration::from_secs(3));
    let sent = h.take_sent();
    assert_eq!(sent.len(), 1);
    let cancel = &sent[0].1;
    assert_eq!(cancel.method.as_deref(), Some("CANCEL"));
    // §9.1: same branch, same CSeq number as the INVITE.
    assert_eq!(cancel.branch(), Some(br.as_str()));
    assert_eq!((cancel.cseq, cancel.cseq_method()), (1, "CANCEL"));
    h.respond("final-folded.tmpl", "200 OK", "r", &br, "1", "CANCEL");
    h.respond(
        "final-folded.tmpl",
        "487 Request Terminated",
        "r",
        &br,
        "1",
        "INVITE",
    );
    let sent = h.take_sent();
    assert_eq!(sent.len(), 1);
    let ack = &sent[0].1;
    // ACK for a non-2xx is hop-by-hop: same branch, To-tag of the response.
    assert_eq!(ack.method.as_deref(), Some("ACK"));
    assert_eq!(ack.branch(), Some(br.as_str()));
    assert_eq!(ack.to_tag(), Some("r"));
    let last = h.events.last().unwrap();
    let (status, d, by, detail, _) = terminated(last);
    assert_eq!(
        (status, d, by, detail.as_str()),
        (
            Some(487),
            Disposition::NoAnswer,
            HangupBy::Local,
            "ring_timeout"
        )
    );
    // A retransmitted 487 is ACKed again and produces no second event.
    let n = h.events.len();
    h.respond(
        "final-folded.tmpl",
        "487 Request Terminated",
        "r",
        &br,
        "1",
        "INVITE",
    );
    assert_eq!(h.take_sent().len(), 1);
    assert_eq!(h.events.len(), n);
}

#[test]
fn cancel_waits_for_a_provisional_response() {
    let mut h = Harness::start(2, 5);
    let br = h.invite_branch.clone();
    h.advance(Duration::from_secs(3));
    // Only INVITE retransmissions (Timer A), no CANCEL yet.
    let sent = h.take_sent();
    assert!(!sent.is_empty());
    assert!(
        sent.iter()
            .all(|(_, m)| m.method.as_deref() == Some("INVITE"))
    );
    h.respond(
        "provisional-compact.tmpl",
        "100 Trying",
        "",
        &br,
        "1",
        "INVITE",
    );
    let sent = h.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.method.as_deref(), Some("CANCEL"));
}

#[test]
fn no_response_at_all_is_timer_b_trunk_unreachable() {
    let mut h = Harness::start(60, 5);
    h.advance(Duration::from_secs(40));
    let invites = h.take_sent();
    assert_eq!(
        invites.len(),
        6,
        "Timer A retransmissions at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s"
    );
    let (status, d, by, detail, _) = terminated(h.events.last().unwrap());
    assert_eq!(
        (status, d, by, detail.as_str()),
        (
            None,
            Disposition::TrunkUnreachable,
            HangupBy::Local,
            "timer_b"
        )
    );
    assert_eq!(h.engine.active_calls(), 0);
}

#[test]
fn busy_final_response_carries_q850_cause() {
    let mut h = Harness::start(30, 5);
    let br = h.invite_branch.clone();
    h.respond(
        "final-folded.tmpl",
        "486 Busy Here",
        "x",
        &br,
        "1",
        "INVITE",
    );
    let (status, d, by, _, q850) = terminated(h.events.last().unwrap());
    assert_eq!(
        (status, d, by, q850),
        (Some(486), Disposition::Busy, HangupBy::Remote, Some(17))
    );
    // The leg is reduced to a linger record for Timer D: a retransmitted 486 is ACKed again
    // (same branch), then after Timer D the call is gone.
    assert_eq!(h.engine.active_calls(), 0);
    assert_eq!(h.engine.lingering_calls(), 1);
    assert_eq!(h.engine.live_calls(), 0);
    let acks = |h: &Harness| {
        h.sent
            .iter()
            .filter(|(_, m)| m.method.as_deref() == Some("ACK"))
            .count()
    };
    let before = acks(&h);
    h.respond(
        "final-folded.tmpl",
        "486 Busy Here",
        "x",
        &br,
        "1",
        "INVITE",
    );
    assert_eq!(acks(&h), before + 1);
    let last = h.sent.last().unwrap();
    assert_eq!(last.1.branch(), Some(br.as_str()));
    assert_eq!(
        h.events
            .iter()
            .filter(|k| matches!(k, CallEventKind::Terminated { .. }))
            .count(),
        1
    );
    h.advance(Duration::from_secs(33));
    assert_eq!(h.engine.lingering_calls(), 0);
}

#[test]
fn far_end_bye_is_answered_and_retransmissions_get_the_same_answer() {
    let mut h = Harness::start(30, 60);
    h.answer_quietly("z");
    let bye = h.fill("bye-from-far-end.tmpl", &[("$TO_TAG", "z"), ("$CSEQ", "7")]);
    h.feed(&bye);
    let sent = h.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.status, Some(200));
    assert_eq!(sent[0].1.cseq_method(), "BYE");
    let (status, d, by, detail, q850) = terminated(&h.events[0]);
    assert_eq!(
        (status, d, by, detail.as_str(), q850),
        (
            Some(200),
            Disposition::Answered,
            HangupBy::Remote,
            "remote_bye",
            Some(16)
        )
    );
    h.feed(&bye);
    let sent = h.take_sent();
    assert_eq!(sent.len(), 1, "retransmitted BYE gets the same 200");
    assert_eq!(sent[0].1.status, Some(200));
    assert_eq!(h.events.len(), 1, "no second terminated event");
    // And no BYE of ours when the hold time would have passed.
    h.advance(Duration::from_secs(61));
    assert!(h.take_sent().iter().all(|(_, m)| m.method.is_none()));
}

#[test]
fn a_2xx_crossing_our_cancel_is_acked_and_byed() {
    let mut h = Harness::start(2, 60);
    let br = h.invite_branch.clone();
    h.respond(
        "provisional-compact.tmpl",
        "180 Ringing",
        "c",
        &br,
        "1",
        "INVITE",
    );
    h.advance(Duration::from_secs(2));
    h.take_sent();
    let ok = h.fill(
        "200-sdp-no-content-length.tmpl",
        &[("$TO_TAG", "c"), ("$BRANCH", &br), ("$CSEQ", "1")],
    );
    h.feed(&ok);
    let methods: Vec<_> = h
        .take_sent()
        .iter()
        .map(|(_, m)| m.method.clone().unwrap())
        .collect();
    assert_eq!(methods, vec!["ACK", "BYE"]);
    assert!(h.events.contains(&CallEventKind::Answered { code: 200 }));
}

#[test]
fn a_final_response_that_beats_a_pending_cancel_is_the_far_ends() {
    // The ring timeout fires before any provisional (the INVITE was lost and retransmitted):
    // the CANCEL waits, and a 486 arrives first. Busy, hung up by the far end, not a timeout.
    let mut h = Harness::start(2, 5);
    let br = h.invite_branch.clone();
    h.advance(Duration::from_secs(2));
    assert!(
        h.take_sent()
            .iter()
            .all(|(_, m)| m.method.as_deref() == Some("INVITE"))
    );
    h.respond(
        "final-folded.tmpl",
        "486 Busy Here",
        "b",
        &br,
        "1",
        "INVITE",
    );
    let sent = h.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.method.as_deref(), Some("ACK"));
    let (status, d, by, detail, _) = terminated(h.events.last().unwrap());
    assert_eq!(
        (status, d, by, detail.as_str()),
        (
            Some(486),
            Disposition::Busy,
            HangupBy::Remote,
            "final_response"
        )
    );
}

#[test]
fn a_401_is_answered_with_an_authenticated_invite_once() {
    let creds = std::sync::Arc::new(outdial::sip::digest::Credentials {
        username: "alice".into(),
        password: "s3cret".into(),
    });
    let mut h = Harness::start_with(30, 5, Some(creds));
    let br = h.invite_branch.clone();
    let challenge = |h: &Harness, branch: &str, cseq: &str| {
        let mut b = h.fill(
            "final-folded.tmpl",
            &[
                ("$STATUS", "401 Unauthorized"),
                ("$TO_TAG", "t401"),
                ("$BRANCH", branch),
                ("$CSEQ", cseq),
                ("$METHOD", "INVITE"),
                ("$CAUSE", "21"),
            ],
        );
        // Add the challenge before the blank line.
        let at = b.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 2;
        b.splice(
            at..at,
            b"WWW-Authenticate: Digest realm=\"t\", nonce=\"n1\", qop=\"auth\"\r\n"
                .iter()
                .copied(),
        );
        b
    };
    let c1 = challenge(&h, &br, "1");
    h.feed(&c1);
    let sent = h.take_sent();
    let methods: Vec<_> = sent
        .iter()
        .map(|(_, m)| m.method.clone().unwrap())
        .collect();
    assert_eq!(methods, vec!["ACK", "INVITE"]);
    let (ack, inv) = (&sent[0].1, &sent[1].1);
    assert_eq!((ack.cseq, ack.branch()), (1, Some(br.as_str())));
    assert_eq!(inv.cseq, 2, "CSeq incremented");
    assert_eq!(inv.call_id(), h.call_id);
    assert_eq!(inv.from_tag(), Some(h.from_tag.as_str()));
    assert_eq!(inv.to_tag(), None);
    assert_ne!(inv.branch(), Some(br.as_str()), "a new transaction");
    let text = String::from_utf8_lossy(&inv.msg().to_bytes()).into_owned();
    assert!(
        text.contains("Authorization: Digest username=\"alice\", realm=\"t\", nonce=\"n1\""),
        "{text}"
    );
    assert!(text.contains("qop=auth, nc=00000001"), "{text}");
    assert!(text.contains("Privacy: id"), "{text}");
    assert!(!text.contains("s3cret"));
    // A retransmitted 401 of the first transaction is ACKed again, not answered twice.
    h.feed(&c1);
    let again = h.take_sent();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].1.method.as_deref(), Some("ACK"));
    assert!(
        h.events.is_empty(),
        "no event for a challenge: {:?}",
        h.events
    );
    // A second 401 (not stale): the credentials were wrong; the call ends with it.
    let br2 = inv.branch().map(str::to_string).unwrap();
    let c2 = challenge(&h, &br2, "2");
    h.feed(&c2);
    let (status, d, by, _, _) = terminated(h.events.last().unwrap());
    assert_eq!(
        (status, d, by),
        (Some(401), Disposition::Failed, HangupBy::Remote)
    );
}

/// A re-INVITE with `a=sendonly` (or the RFC 2543 `c=0.0.0.0` form) is a hold: answered with
/// `recvonly` / `inactive` (RFC 3264 §8.4) and reported `held`; `sendrecv` again is `resumed`.
#[test]
fn hold_and_resume_by_re_invite_are_answered_and_reported() {
    let mut h = Harness::start(30, 60);
    h.answer_quietly("z");
    let sdp = |dir: &str, ip: &str| {
        format!(
            "v=0\r\no=far 1 2 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na={dir}\r\n"
        )
    };
    for (cseq, body, answer, event) in [
        (
            "2",
            sdp("sendonly", "192.0.2.10"),
            "a=recvonly",
            Some("held"),
        ),
        ("3", sdp("sendonly", "192.0.2.10"), "a=recvonly", None),
        (
            "4",
            sdp("sendrecv", "192.0.2.10"),
            "a=sendrecv",
            Some("resumed"),
        ),
        ("5", sdp("sendrecv", "0.0.0.0"), "a=inactive", Some("held")),
    ] {
        let reinv = h.fill(
            "reinvite-hold.tmpl",
            &[
                ("$TO_TAG", "z"),
                ("$CSEQ", cseq),
                ("$LEN", &body.len().to_string()),
                ("$SDP", &body),
            ],
        );
        if let Err(e) = parse_datagram(&reinv) {
            panic!("{e}: {}", String::from_utf8_lossy(&reinv));
        }
        h.feed(&reinv);
        let sent = h.take_sent();
        let resp = sent
            .iter()
            .find(|(_, m)| m.status == Some(200) && m.cseq_method() == "INVITE")
            .unwrap_or_else(|| {
                panic!(
                    "no 200 to the re-INVITE {cseq}: {sent:?} {:?}",
                    h.engine.stats(Instant::now())
                )
            });
        let text = String::from_utf8_lossy(resp.1.body()).to_string();
        assert!(text.contains(answer), "answer to {cseq}: {text}");
        let names: Vec<&str> = h.events.iter().map(|e| e.name()).collect();
        assert_eq!(
            names,
            event.into_iter().collect::<Vec<_>>(),
            "re-INVITE {cseq}"
        );
        h.events.clear();
    }
}

/// An in-dialog request from another address than the trunk is answered where its top Via
/// says (RFC 3261 §18.2.2: the source address, at the sent-by port; with `rport`, at the
/// source port — RFC 3581), and so are the timer retransmissions of a 2xx to a re-INVITE.
#[test]
fn responses_go_where_the_request_via_says_not_to_the_trunk() {
    let mut h = Harness::start(30, 60);
    h.answer_quietly("z");
    let body = "v=0\r\no=far 1 2 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n";
    let reinv = h.fill(
        "reinvite-hold.tmpl",
        &[
            ("$TO_TAG", "z"),
            ("$CSEQ", "2"),
            ("$LEN", &body.len().to_string()),
            ("$SDP", body),
        ],
    );
    // From 198.51.100.7:40000, Via sent-by port 5060, no rport: to 198.51.100.7:5060.
    let other: SocketAddr = "198.51.100.7:40000".parse().unwrap();
    h.engine.handle_datagram(h.now, &reinv, other);
    h.drain();
    let sent = h.take_sent();
    let ok: Vec<_> = sent
        .iter()
        .filter(|(_, m)| m.status == Some(200) && m.cseq_method() == "INVITE")
        .collect();
    assert_eq!(ok.len(), 1, "{sent:?}");
    assert_eq!(ok[0].0.to_string(), "198.51.100.7:5060");
    // No ACK: the 2xx is retransmitted by Timer G to the same address, never the trunk.
    h.advance(Duration::from_millis(1600));
    let again = h.take_sent();
    assert!(!again.is_empty());
    for (dest, m) in &again {
        if m.status == Some(200) {
            assert_eq!(dest.to_string(), "198.51.100.7:5060");
        }
    }
    // With rport: the source port.
    let with_rport = String::from_utf8(reinv.clone())
        .unwrap()
        .replace("z9hG4bKfarreinv2", "z9hG4bKfarreinv3;rport")
        .replace("CSeq: 2 INVITE", "CSeq: 3 INVITE");
    h.engine
        .handle_datagram(h.now, with_rport.as_bytes(), other);
    h.drain();
    let sent = h.take_sent();
    let ok = sent
        .iter()
        .find(|(_, m)| m.status.is_some() && m.cseq == 3)
        .unwrap_or_else(|| panic!("{sent:?}"));
    assert_eq!(ok.0, other);
}

/// A forged 2xx with a new To-tag and a Record-Route that is not SIP URIs (`a, a, …`), or one
/// with thousands of entries, makes no forked dialog: nothing is sent on that route set (no
/// `ACK a SIP/2.0` with thousands of `Route: a`). A well-formed fork is still ACKed and BYEd.
#[test]
fn a_forged_2xx_with_a_bad_route_set_sends_nothing() {
    let mut h = Harness::start(30, 60);
    h.answer_quietly("z");
    let br = h.invite_branch.clone();
    let forged = |h: &Harness, tag: &str, rr: &str| {
        let ok = h.fill(
            "200-sdp-no-content-length.tmpl",
            &[("$TO_TAG", tag), ("$BRANCH", &br), ("$CSEQ", "1")],
        );
        String::from_utf8(ok)
            .unwrap()
            .replace("Record-Route: <sip:192.0.2.20:5060;lr>", rr)
            .into_bytes()
    };
    let many = format!(
        "Record-Route: {}",
        vec!["<sip:p.example;lr>"; 3000].join(",")
    );
    for rr in ["Record-Route: a,a,a,a", many.as_str()] {
        let bytes = forged(&h, "evil", rr);
        h.feed(&bytes);
        let sent = h.take_sent();
        assert!(
            sent.iter()
                .all(|(_, m)| m.header_values("Route").is_empty()),
            "sent on a forged route set: {sent:?}"
        );
        assert!(
            sent.iter().all(|(_, m)| m.method.as_deref() != Some("ACK")),
            "{sent:?}"
        );
    }
    // A proper fork (new To-tag, a sound route set): ACKed, then BYEd (RFC 3261 §13.2.2.4).
    let fork = forged(&h, "fork2", "Record-Route: <sip:192.0.2.20:5060;lr>");
    h.feed(&fork);
    let sent = h.take_sent();
    let methods: Vec<&str> = sent
        .iter()
        .filter_map(|(_, m)| m.method.as_deref())
        .collect();
    assert!(methods.contains(&"ACK"), "{methods:?}");
}
