//! Raw SIP fixtures from `sip-fixtures/messages/`: the parser accepts every valid one with the
//! right fields, rejects every invalid one with a reason, and the engine answers malformed
//! requests with 400 (well-formed unknown ones with 405/501) without stopping.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use outdial::engine::core::{Engine, EngineConfig, Output};
use outdial::sip::dialog::LocalParty;
use outdial::sip::message::{Transport, parse_datagram};
use outdial::sip::transaction::Timers;

fn fixture(path: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("sip-fixtures/messages")
        .join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn all_in(dir: &str) -> Vec<String> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("sip-fixtures/messages")
        .join(dir);
    let mut v: Vec<String> = std::fs::read_dir(p)
        .unwrap()
        .map(|e| format!("{dir}/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    v.sort();
    v
}

/// (file, status or method, Call-ID, CSeq, CSeq method, branch, To tag, body bytes)
type Expect = (
    &'static str,
    &'static str,
    &'static str,
    u32,
    &'static str,
    &'static str,
    Option<&'static str>,
    usize,
);

const VALID: &[Expect] = &[
    (
        "valid/100-no-reason-phrase.sip",
        "100",
        "noreason-1@192.0.2.1",
        1,
        "INVITE",
        "z9hG4bKnoreason",
        None,
        0,
    ),
    (
        "valid/180-compact-forms.sip",
        "180",
        "compact-1@192.0.2.1",
        1,
        "INVITE",
        "z9hG4bKcompact1",
        Some("callee1"),
        0,
    ),
    (
        "valid/183-early-media.sip",
        "183",
        "early-1@192.0.2.1",
        1,
        "INVITE",
        "z9hG4bKearly1",
        Some("callee5"),
        153,
    ),
    (
        "valid/200-body-longer-than-content-length.sip",
        "200",
        "extra-1@192.0.2.1",
        2,
        "BYE",
        "z9hG4bKextra",
        Some("callee8"),
        0,
    ),
    (
        "valid/200-folded-headers.sip",
        "200",
        "folded-1@192.0.2.1",
        1,
        "INVITE",
        "z9hG4bKfolded1",
        Some("callee2"),
        153,
    ),
    (
        "valid/200-no-content-length.sip",
        "200",
        "nocl-1@192.0.2.1",
        1,
        "INVITE",
        "z9hG4bKnocl1",
        Some("callee4"),
        153,
    ),
    (
        "valid/200-record-route-and-vias.sip",
        "200",
        "rr-1@192.0.2.1",
        1,
        "INVITE",
        "z9hG4bKrr1",
        Some("callee9"),
        0,
    ),
    (
        "valid/200-space-before-colon.sip",
        "200",
        "space-1@192.0.2.1",
        1,
        "INVITE",
        "z9hG4bKspace1",
        Some("callee3"),
        0,
    ),
    (
        "valid/480-utf8-reason.sip",
        "480",
        "utf8-1@192.0.2.1",
        1,
        "INVITE",
        "z9hG4bKutf8",
        Some("callee7"),
        0,
    ),
    (
        "valid/486-busy-with-reason.sip",
        "486",
        "busy-1@192.0.2.1",
        1,
        "INVITE",
        "z9hG4bKbusy1",
        Some("callee6"),
        0,
    ),
    (
        "valid/bye-from-far-end.sip",
        "BYE",
        "farbye-1@192.0.2.1",
        101,
        "BYE",
        "z9hG4bKfarbye1",
        Some("caller1"),
        0,
    ),
    (
        "valid/extension-method-odd-token.sip",
        "!odd-Method_*+.%'~",
        "oddmethod.word%ZK-!.*_+'@word~)(><:\\/\"][?}{",
        7,
        "!odd-Method_*+.%'~",
        "z9hG4bK-.!%66*_+'~",
        None,
        0,
    ),
    (
        "valid/invite-lws-everywhere.sip",
        "INVITE",
        "lws-invite-1@192.0.2.10",
        42,
        "INVITE",
        "z9hG4bKlws1",
        None,
        153,
    ),
    (
        "valid/invite-tortuous-whitespace.sip",
        "InVaLiD-CaSe-Is-A-Method",
        "case-1",
        1,
        "InVaLiD-CaSe-Is-A-Method",
        "z9hG4bKcase1",
        None,
        0,
    ),
    (
        "valid/options-keepalive.sip",
        "OPTIONS",
        "options-1@192.0.2.10",
        1,
        "OPTIONS",
        "z9hG4bKopt1",
        None,
        0,
    ),
];

#[test]
fn every_valid_fixture_parses_with_the_right_fields() {
    let listed: Vec<&str> = VALID.iter().map(|e| e.0).collect();
    assert_eq!(
        all_in("valid"),
        listed,
        "a valid fixture has no expectation row"
    );
    for &(file, first, call_id, cseq, cseq_method, branch, to_tag, body) in VALID {
        let m = parse_datagram(&fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        match m.status {
            Some(code) => assert_eq!(code.to_string(), first, "{file}"),
            None => assert_eq!(m.method.as_deref(), Some(first), "{file}"),
        }
        assert_eq!(m.call_id(), call_id, "{file}");
        assert_eq!(m.cseq, cseq, "{file}");
        assert_eq!(m.cseq_method(), cseq_method, "{file}");
        assert_eq!(m.branch(), Some(branch), "{file}");
        assert_eq!(m.to_tag(), to_tag, "{file}");
        assert_eq!(m.body().len(), body, "{file}");
    }
}

#[test]
fn compact_and_folded_forms_read_the_same_values() {
    let m = parse_datagram(&fixture("valid/486-busy-with-reason.sip")).unwrap();
    assert_eq!(m.q850_cause(), Some(17));
    let m = parse_datagram(&fixture("valid/bye-from-far-end.sip")).unwrap();
    assert_eq!(m.q850_cause(), Some(16));
    assert_eq!(m.from_tag(), Some("callee1"));
    let m = parse_datagram(&fixture("valid/200-folded-headers.sip")).unwrap();
    assert_eq!(m.from_tag(), Some("caller1"));
    let m = parse_datagram(&fixture("valid/480-utf8-reason.sip")).unwrap();
    assert_eq!(
        m.reason_phrase().as_deref(),
        Some("Temporairement indisponible – réessayez")
    );
}

/// (file, text the error must contain, the answer: 400, or 505 for another SIP version, when
/// there is a request line and a Via to route it by; 0 for none).
const INVALID: &[(&str, &str, u16)] = &[
    (
        "invalid/content-length-beyond-datagram.sip",
        "Content-Length",
        0,
    ),
    (
        "invalid/content-length-conflicting.sip",
        "Content-Length",
        400,
    ),
    ("invalid/content-length-negative.sip", "Content-Length", 400),
    ("invalid/cseq-method-mismatch.sip", "CSeq", 400),
    ("invalid/cseq-not-a-number.sip", "CSeq", 400),
    ("invalid/cseq-too-large.sip", "CSeq", 400),
    ("invalid/duplicate-call-id.sip", "Call-ID", 400),
    ("invalid/garbage.bin", "", 0),
    ("invalid/missing-call-id.sip", "Call-ID", 0),
    ("invalid/missing-via.sip", "Via", 0),
    ("invalid/no-end-of-headers.sip", "end of header", 0),
    ("invalid/non-utf8-header.sip", "UTF-8", 400),
    (
        "invalid/request-uri-in-angle-brackets.sip",
        "start line",
        400,
    ),
    ("invalid/request-uri-with-spaces.sip", "start line", 400),
    ("invalid/status-code-out-of-range.sip", "status code", 0),
    ("invalid/unknown-sip-version.sip", "start line", 505),
    ("invalid/via-without-host.sip", "Via", 400),
];

#[test]
fn every_invalid_fixture_is_rejected_with_a_reason() {
    let listed: Vec<&str> = INVALID.iter().map(|e| e.0).collect();
    assert_eq!(
        all_in("invalid"),
        listed,
        "an invalid fixture has no expectation row"
    );
    for &(file, reason, _) in INVALID {
        let e = parse_datagram(&fixture(file))
            .err()
            .unwrap_or_else(|| panic!("{file} was accepted"));
        assert!(e.to_string().contains(reason), "{file}: {e}");
    }
}

fn engine() -> Engine {
    Engine::new(
        EngineConfig::single_trunk(
            LocalParty {
                sent_by: "192.0.2.1:5070".into(),
                transport: Transport::Udp,
                user_agent: "outdial-test".into(),
            },
            "192.0.2.10:5060".parse().unwrap(),
            Timers::default(),
            (20000, 20100),
        ),
        std::time::Instant::now(),
        outdial::sip::message::Tokens::seeded(42),
    )
}

fn responses(e: &mut Engine) -> Vec<(SocketAddr, String)> {
    std::iter::from_fn(|| e.poll_output())
        .filter_map(|o| match o {
            Output::Transmit(t) => Some((t.dest, String::from_utf8_lossy(&t.bytes).into_owned())),
            Output::Event(_) | Output::Media(_) | Output::Trunk(_) | Output::Agent(_) => None,
        })
        .collect()
}

#[test]
fn engine_answers_malformed_requests_with_400_and_keeps_going() {
    let mut e = engine();
    let src: SocketAddr = "192.0.2.10:5060".parse().unwrap();
    let now = Instant::now();
    let mut answered = 0;
    for &(file, _, code) in INVALID {
        e.handle_datagram(now, &fixture(file), src);
        let out = responses(&mut e);
        if code != 0 {
            assert_eq!(out.len(), 1, "{file}: {out:?}");
            assert!(
                out[0].1.starts_with(&format!("SIP/2.0 {code} ")),
                "{file}: {}",
                out[0].1
            );
            assert!(
                out[0].1.contains("\r\nWarning: 399 outdial "),
                "{file}: {}",
                out[0].1
            );
            assert_eq!(out[0].0, src);
            answered += 1;
        } else {
            assert!(out.is_empty(), "{file} got an answer: {out:?}");
        }
    }
    let s = e.stats(std::time::Instant::now());
    assert_eq!(s.parse_errors, INVALID.len() as u64);
    assert_eq!(s.bad_requests_answered, answered);

    // Still serving: a well-formed OPTIONS gets 200, an unknown method 405 with Allow.
    e.handle_datagram(now, &fixture("valid/options-keepalive.sip"), src);
    let out = responses(&mut e);
    assert!(out[0].1.starts_with("SIP/2.0 200 OK\r\n"), "{}", out[0].1);
    assert!(
        out[0].1.contains("\r\nTo: <sip:outdial@192.0.2.1>;tag="),
        "{}",
        out[0].1
    );
    e.handle_datagram(now, &fixture("valid/extension-method-odd-token.sip"), src);
    let out = responses(&mut e);
    assert!(
        out[0].1.starts_with("SIP/2.0 405 Method Not Allowed\r\n"),
        "{}",
        out[0].1
    );
    assert!(out[0].1.contains("Allow: INVITE, ACK"), "{}", out[0].1);
    // A BYE for no dialog of ours: 481.
    e.handle_datagram(
        now + Duration::from_millis(1),
        &fixture("valid/bye-from-far-end.sip"),
        src,
    );
    let out = responses(&mut e);
    assert!(out[0].1.starts_with("SIP/2.0 481 "), "{}", out[0].1);
}
