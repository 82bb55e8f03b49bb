//! The agent's hold on the customer's leg, driven with a virtual clock and raw messages: our
//! re-INVITE offers `a=sendonly` (RFC 3264 §8.4), one offer at a time (RFC 3261 §14.1), Timer
//! A retransmits it, its 2xx is ACKed (and a retransmitted 2xx re-ACKed), `a=sendrecv` takes
//! the hold off, and a re-INVITE from the far end while we hold is answered `sendonly`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use outdial::call::leg::{CallLeg, CallSpec, Hop};
use outdial::sip::dialog::LocalParty;
use outdial::sip::message::{Inbound, Tokens, Transport, parse_datagram};
use outdial::sip::transaction::Timers;

const FAR: &str = "192.0.2.10:5060";

struct Leg {
    leg: CallLeg,
    now: Instant,
    call_id: String,
    from_tag: String,
}

impl Leg {
    fn sent(&mut self) -> Vec<Inbound> {
        std::iter::from_fn(|| self.leg.poll_transmit())
            .map(|t| parse_datagram(&t.bytes).expect("we send parsable SIP"))
            .collect()
    }

    fn feed(&mut self, text: &str) {
        let msg = parse_datagram(text.replace('\n', "\r\n").as_bytes()).unwrap();
        let src: SocketAddr = FAR.parse().unwrap();
        self.leg.handle_message(self.now, &msg, src);
    }

    fn ok_to(&self, req: &Inbound, sdp_dir: &str) -> String {
        let sdp = format!(
            "v=0\no=far 1 2 IN IP4 192.0.2.10\ns=-\nc=IN IP4 192.0.2.10\nt=0 0\nm=audio 40000 RTP/AVP 0\na={sdp_dir}\n"
        );
        format!(
            "SIP/2.0 200 OK\nVia: SIP/2.0/UDP 192.0.2.1:5070;branch={}\nFrom: <sip:+14155550000@192.0.2.1>;tag={}\n\
To: <sip:+14155550123@192.0.2.10:5060>;tag=far\nCall-ID: {}\nCSeq: {} INVITE\nContact: <sip:far@192.0.2.10:5060>\n\
Content-Type: application/sdp\nContent-Length: {}\n\n{sdp}",
            req.branch().unwrap(),
            self.from_tag,
            self.call_id,
            req.cseq,
            sdp.replace('\n', "\r\n").len()
        )
    }
}

fn answered() -> Leg {
    let now = Instant::now();
    let uri = "sip:+14155550123@192.0.2.10:5060";
    let spec = CallSpec {
        number: "+14155550123".into(),
        hops: vec![Hop::direct(uri)],
        failover_timeout: Duration::from_secs(3),
        to_uri: uri.into(),
        caller_id: "+14155550000".into(),
        caller_name: None,
        from_host: "192.0.2.1".into(),
        p_asserted_identity: None,
        ring_timeout: Duration::from_secs(30),
        hold_time: Duration::from_secs(3600),
        rtp_port: 20000,
        media_ip: "192.0.2.1".into(),
        media: Default::default(),
        privacy: None,
        session_expires: None,
    };
    let local = LocalParty {
        sent_by: "192.0.2.1:5070".into(),
        transport: Transport::Udp,
        user_agent: "outdial-test".into(),
    };
    let leg = CallLeg::start(
        now,
        "hold-1@outdial".into(),
        spec,
        local,
        Timers::default(),
        Tokens::seeded(7),
    );
    let mut l = Leg {
        leg,
        now,
        call_id: "hold-1@outdial".into(),
        from_tag: String::new(),
    };
    let invite = l.sent().remove(0);
    l.from_tag = invite.from_tag().map(str::to_string).unwrap();
    let ok = l.ok_to(&invite, "sendrecv");
    l.feed(&ok);
    assert!(l.leg.is_up());
    let ack = l.sent();
    assert_eq!(ack[0].method.as_deref(), Some("ACK"));
    l
}

fn body(m: &Inbound) -> String {
    String::from_utf8_lossy(m.body()).into_owned()
}

#[test]
fn hold_offers_sendonly_once_retransmits_and_resume_offers_sendrecv() {
    let mut l = answered();
    assert!(!l.leg.holding());
    assert!(l.leg.set_hold(l.now, true));
    let reinv = l.sent();
    assert_eq!(reinv.len(), 1);
    let r = &reinv[0];
    assert_eq!((r.method.as_deref(), r.cseq), (Some("INVITE"), 2));
    assert!(body(r).contains("a=sendonly"), "{}", body(r));
    assert!(
        body(r).contains("o=outdial"),
        "a new version of our session"
    );
    // One offer at a time: a second change waits for the first.
    assert!(!l.leg.set_hold(l.now, false));
    assert!(!l.leg.can_reoffer());
    // Timer A: the re-INVITE again after 500 ms without an answer.
    l.now += Duration::from_millis(510);
    l.leg.handle_timeout(l.now);
    let again = l.sent();
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0].branch(), r.branch());
    // Its 2xx (recvonly) is ACKed; a retransmitted 2xx ACKed again.
    let ok = l.ok_to(r, "recvonly");
    l.feed(&ok);
    let ack = l.sent();
    assert_eq!(ack.len(), 1);
    assert_eq!((ack[0].method.as_deref(), ack[0].cseq), (Some("ACK"), 2));
    l.feed(&ok);
    assert_eq!(l.sent().len(), 1, "the 2xx retransmission re-ACKed");
    assert!(l.leg.holding() && l.leg.can_reoffer() && l.leg.is_up());
    assert!(!l.leg.set_hold(l.now, true), "already held");

    // While held, the far end's own re-INVITE (a refresh, sendrecv) is answered sendonly.
    let sdp = "v=0\r\no=far 1 3 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=sendrecv\r\n";
    let far_reinvite = format!(
        "INVITE sip:outdial@192.0.2.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKfar9\n\
Max-Forwards: 70\nFrom: <sip:+14155550123@192.0.2.10:5060>;tag=far\nTo: <sip:+14155550000@192.0.2.1>;tag={}\n\
Call-ID: {}\nCSeq: 9 INVITE\nContact: <sip:192.0.2.10:5060>\nContent-Type: application/sdp\nContent-Length: {}\n\n",
        l.from_tag,
        l.call_id,
        sdp.len()
    );
    let msg =
        parse_datagram(format!("{}{sdp}", far_reinvite.replace('\n', "\r\n")).as_bytes()).unwrap();
    l.leg.handle_message(l.now, &msg, FAR.parse().unwrap());
    let answer = l.sent();
    let ok200 = answer
        .iter()
        .find(|m| m.status == Some(200))
        .expect("a 200");
    assert!(body(ok200).contains("a=sendonly"), "{}", body(ok200));
    let ack = format!(
        "ACK sip:outdial@192.0.2.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKfar9a\n\
Max-Forwards: 70\nFrom: <sip:+14155550123@192.0.2.10:5060>;tag=far\nTo: <sip:+14155550000@192.0.2.1>;tag={}\n\
Call-ID: {}\nCSeq: 9 ACK\nContent-Length: 0\n\n",
        l.from_tag, l.call_id
    );
    l.feed(&ack);

    // Resume: sendrecv, CSeq 3.
    assert!(l.leg.set_hold(l.now, false));
    let r = l.sent().remove(0);
    assert_eq!(r.cseq, 3);
    assert!(body(&r).contains("a=sendrecv"), "{}", body(&r));
    let ok = l.ok_to(&r, "sendrecv");
    l.feed(&ok);
    assert_eq!(l.sent()[0].method.as_deref(), Some("ACK"));
    assert!(!l.leg.holding());
    // No session timer was negotiated: none was armed by the hold's 2xx.
    l.now += Duration::from_secs(3000);
    l.leg.handle_timeout(l.now);
    assert!(l.sent().is_empty(), "no refresh, no BYE");
    assert!(l.leg.is_up());
}

#[test]
fn only_an_ip_literal_with_a_port_is_reached_directly() {
    use outdial::call::leg::direct_address;
    assert_eq!(
        direct_address("sip:2000@10.0.0.5:5060;transport=udp"),
        Some("10.0.0.5:5060".parse().unwrap())
    );
    assert_eq!(direct_address("sip:2000@10.0.0.5"), None);
    assert_eq!(direct_address("sip:2000@pbx.example:5060"), None);
    assert_eq!(
        direct_address("sip:+1415@[::1]:5062"),
        Some("[::1]:5062".parse().unwrap())
    );
}
