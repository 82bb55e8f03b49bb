//! Trunk failover and RFC 4028 422 retries driven on a virtual clock through the engine core:
//! no sockets, no sleeps. Responses are built from the INVITE we sent.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use outdial::call::leg::CallSpec;
use outdial::engine::core::{Engine, EngineConfig, Output, new_call_id};
use outdial::engine::trunks::TrunkRoute;
use outdial::events::{AttemptRef, CallEventKind};
use outdial::sip::dialog::LocalParty;
use outdial::sip::message::{Header, Inbound, Transport, parse_datagram, response_to};
use outdial::sip::transaction::Timers;

const A: &str = "192.0.2.10:5060";
const B: &str = "192.0.2.20:5060";

fn engine() -> Engine {
    let local = LocalParty {
        sent_by: "192.0.2.1:5070".into(),
        transport: Transport::Udp,
        user_agent: "t".into(),
    };
    let mut a = TrunkRoute::direct("a", A.parse().unwrap(), Transport::Udp);
    a.weight = 1;
    let mut b = TrunkRoute::direct("b", B.parse().unwrap(), Transport::Udp);
    b.weight = 0; // failover only: every call starts on `a`
    Engine::new(
        EngineConfig {
            local,
            trunks: vec![a, b],
            keepalive: None,
            trunk_down_after: 5,
            timers: Timers::default(),
            rtp_ports: (20000, 20010),
            acd: None,
            agents_sent_by: None,
            inbound: None,
        },
        std::time::Instant::now(),
        outdial::sip::message::Tokens::seeded(42),
    )
}

fn spec(session_expires: Option<u32>) -> CallSpec {
    CallSpec {
        number: "+14155550123".into(),
        hops: Vec::new(),
        failover_timeout: Duration::from_secs(2),
        to_uri: String::new(),
        caller_id: "+14155550000".into(),
        caller_name: None,
        from_host: "192.0.2.1".into(),
        p_asserted_identity: None,
        ring_timeout: Duration::from_secs(30),
        hold_time: Duration::from_secs(5),
        rtp_port: 0,
        media_ip: "192.0.2.1".into(),
        media: Default::default(),
        privacy: None,
        session_expires,
    }
}

fn drain(e: &mut Engine) -> (Vec<(SocketAddr, Inbound)>, Vec<CallEventKind>) {
    let (mut sent, mut events) = (Vec::new(), Vec::new());
    while let Some(o) = e.poll_output() {
        match o {
            Output::Transmit(t) => sent.push((t.dest, parse_datagram(&t.bytes).unwrap())),
            Output::Event(ev) => events.push(ev.kind),
            _ => {}
        }
    }
    (sent, events)
}

fn start(e: &mut Engine, now: Instant, se: Option<u32>) -> String {
    let id = new_call_id(&mut outdial::sip::message::Tokens::from_seed(rand::random()));
    let attempt = AttemptRef {
        attempt_id: 1,
        lead_id: 1,
        attempt_no: 1,
    };
    e.start_call(now, id.clone(), attempt, spec(se));
    id
}

#[test]
fn a_503_moves_the_call_to_the_next_trunk_and_the_ack_stays_with_the_first() {
    let mut e = engine();
    let t0 = Instant::now();
    start(&mut e, t0, None);
    let (sent, _) = drain(&mut e);
    let (dest, invite) = &sent[0];
    assert_eq!(dest.to_string(), A);
    assert_eq!(invite.cseq, 1);
    let resp = response_to(invite, 503, Some("a1"), vec![], vec![]);
    e.handle_datagram(t0, &resp, A.parse().unwrap());
    let (sent, events) = drain(&mut e);
    // The ACK for the 503 goes to `a`, the new INVITE (same Call-ID, CSeq 2) to `b`.
    let ack = sent
        .iter()
        .find(|(_, m)| m.method.as_deref() == Some("ACK"))
        .unwrap();
    assert_eq!(ack.0.to_string(), A);
    let inv = sent
        .iter()
        .find(|(_, m)| m.method.as_deref() == Some("INVITE"))
        .unwrap();
    assert_eq!(inv.0.to_string(), B);
    assert_eq!(inv.1.cseq, 2);
    assert_eq!(inv.1.call_id(), invite.call_id());
    assert_eq!(inv.1.from_tag(), invite.from_tag());
    assert_ne!(inv.1.branch(), invite.branch());
    assert!(matches!(
        &events[..],
        [CallEventKind::TrunkFailover {
            sip_status: Some(503),
            ..
        }]
    ));
    // A retransmitted 503 from `a` is re-ACKed to `a`, and changes nothing else.
    e.handle_datagram(t0, &resp, A.parse().unwrap());
    let (sent, events) = drain(&mut e);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0.to_string(), A);
    assert!(events.is_empty());
}

#[test]
fn silence_moves_the_call_after_the_failover_timeout_not_timer_b() {
    let mut e = engine();
    let t0 = Instant::now();
    start(&mut e, t0, None);
    drain(&mut e);
    let mut moved_at = None;
    while let Some(now) = e.poll_timeout() {
        e.handle_timeout(now);
        let (sent, events) = drain(&mut e);
        if events
            .iter()
            .any(|k| matches!(k, CallEventKind::TrunkFailover { .. }))
        {
            assert!(sent.iter().any(|(d, m)| d.to_string() == B && m.cseq == 2));
            moved_at = Some(now - t0);
            break;
        }
        // Retransmissions to `a` only until the move.
        assert!(sent.iter().all(|(d, _)| d.to_string() == A));
    }
    assert_eq!(moved_at, Some(Duration::from_secs(2)));
}

#[test]
fn a_422_is_retried_once_with_its_min_se() {
    let mut e = engine();
    let t0 = Instant::now();
    start(&mut e, t0, Some(90));
    let (sent, _) = drain(&mut e);
    let invite = &sent[0].1;
    let text = String::from_utf8_lossy(&invite.msg().to_string().into_bytes()).into_owned();
    assert!(text.contains("Session-Expires: 90;refresher=uac"), "{text}");
    let resp = response_to(
        invite,
        422,
        Some("a1"),
        vec![Header::MinSE(rsipstack::sip::MinSE::new("1800"))],
        vec![],
    );
    e.handle_datagram(t0, &resp, A.parse().unwrap());
    let (sent, events) = drain(&mut e);
    let inv = sent
        .iter()
        .find(|(_, m)| m.method.as_deref() == Some("INVITE"))
        .unwrap();
    assert_eq!(
        inv.0.to_string(),
        A,
        "a 422 is not a reason to change trunks"
    );
    let text = inv.1.msg().to_string();
    assert!(
        text.contains("Session-Expires: 1800;refresher=uac"),
        "{text}"
    );
    assert_eq!(inv.1.cseq, 2);
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn retry_after_holds_the_trunk_and_the_backup_takes_new_calls() {
    let mut e = engine();
    let t0 = Instant::now();
    start(&mut e, t0, None);
    let (sent, _) = drain(&mut e);
    let invite = &sent[0].1;
    let resp = response_to(
        invite,
        503,
        Some("a1"),
        vec![Header::RetryAfter(rsipstack::sip::RetryAfter::new("30"))],
        vec![],
    );
    e.handle_datagram(t0, &resp, A.parse().unwrap());
    drain(&mut e);
    // The next call, 1 s later, starts on the backup `b` (weight 0) while `a` is held.
    start(&mut e, t0 + Duration::from_secs(1), None);
    let (sent, _) = drain(&mut e);
    let inv = sent
        .iter()
        .find(|(_, m)| m.method.as_deref() == Some("INVITE"))
        .unwrap();
    assert_eq!(inv.0.to_string(), B);
    // After the 30 s, `a` is first again.
    start(&mut e, t0 + Duration::from_secs(31), None);
    let (sent, _) = drain(&mut e);
    let inv = sent
        .iter()
        .rfind(|(_, m)| m.method.as_deref() == Some("INVITE"))
        .unwrap();
    assert_eq!(inv.0.to_string(), A);
    assert_eq!(e.stats(std::time::Instant::now()).trunks[0].holds, 1);
}
