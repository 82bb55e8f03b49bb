//! Inbound INVITEs through the engine core (no sockets): which are refused, and with what.
//! The answered path, through a real SIPp caller and an agent, is in `tests/acd_sipp.rs`.

use std::net::SocketAddr;
use std::time::Instant;

use outdial::engine::core::{Engine, EngineConfig, InboundAuth, InboundRoute, Output, digits_of};
use outdial::engine::trunks::TrunkRoute;
use outdial::sip::dialog::LocalParty;
use outdial::sip::message::Transport;
use outdial::sip::transaction::Timers;

fn engine(allow: &str) -> Engine {
    engine_with(allow, None)
}

fn engine_with(allow: &str, auth: Option<(&str, &str)>) -> Engine {
    let local = LocalParty {
        sent_by: "192.0.2.1:5070".into(),
        transport: Transport::Udp,
        user_agent: "t".into(),
    };
    let trunk = TrunkRoute::direct("a", "192.0.2.10:5060".parse().unwrap(), Transport::Udp);
    Engine::new(
        EngineConfig {
            local,
            trunks: vec![trunk],
            keepalive: None,
            trunk_down_after: 5,
            timers: Timers::default(),
            rtp_ports: (20000, 20010),
            acd: None,
            agents_sent_by: None,
            inbound: Some(InboundRoute {
                numbers: vec![digits_of("+1 (415) 555-0000")],
                allow: allow
                    .split(',')
                    .filter(|a| !a.is_empty())
                    .map(|a| a.parse().unwrap())
                    .collect(),
                auth: auth.map(|(u, p)| InboundAuth {
                    username: u.into(),
                    realm: "outdial-inbound".into(),
                    ha1: outdial::acd::digest_auth::Ha1::from_password(u, "outdial-inbound", p),
                }),
            }),
        },
        Instant::now(),
        outdial::sip::message::Tokens::seeded(7),
    )
}

fn invite(to: &str) -> Vec<u8> {
    invite_with(to, "")
}

/// An INVITE to `to` with `extra` header lines (each ending in CRLF).
fn invite_with(to: &str, extra: &str) -> Vec<u8> {
    format!(
        "INVITE sip:{to}@192.0.2.1:5070 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-in-1\r\n\
From: <sip:+14155559999@192.0.2.10>;tag=caller\r\n\
To: <sip:{to}@192.0.2.1>\r\n\
Call-ID: inbound-1@192.0.2.10\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:+14155559999@192.0.2.10:5060>\r\n\
Max-Forwards: 70\r\n\
{extra}Content-Type: application/sdp\r\n\
Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The status line of every response the engine sent, and where to.
fn responses(e: &mut Engine) -> Vec<(SocketAddr, String)> {
    std::iter::from_fn(|| e.poll_output())
        .filter_map(|o| match o {
            Output::Transmit(t) => Some((
                t.dest,
                String::from_utf8_lossy(&t.bytes)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn a_source_not_allowed_gets_403_and_another_number_404() {
    let trunk: SocketAddr = "192.0.2.10:5060".parse().unwrap();
    let stranger: SocketAddr = "198.51.100.7:5060".parse().unwrap();
    let mut e = engine("192.0.2.10");
    e.handle_datagram(Instant::now(), &invite("14155550000"), stranger);
    assert_eq!(
        responses(&mut e),
        [(stranger, "SIP/2.0 403 Forbidden".to_string())]
    );
    e.handle_datagram(Instant::now(), &invite("+14155551234"), trunk);
    assert_eq!(
        responses(&mut e),
        [(trunk, "SIP/2.0 404 Not Found".to_string())]
    );
    // Ours and allowed, but no agents to take it (and no RTP port bound): 480.
    e.handle_datagram(Instant::now(), &invite("+14155550000"), trunk);
    let r = responses(&mut e);
    assert_eq!(r.len(), 1);
    assert!(r[0].1.starts_with("SIP/2.0 480"), "{r:?}");
    // Numbers are compared on their digits.
    assert_eq!(digits_of("sip:+44 20 7946 0000"), "442079460000");
}

#[test]
fn inbound_settings_that_do_not_hold_are_refused() {
    let err = |extra: &str| {
        let toml = format!(
            "name = \"x\"\ntrunk = \"sip:127.0.0.1\"\ncaller_id = \"+14155550000\"\n{extra}\n"
        );
        let c: outdial::campaign::config::CampaignConfig = toml::from_str(&toml).unwrap();
        c.validate().unwrap_err().to_string()
    };
    assert!(err("[inbound]\nnumbers = [\"+14155550000\"]").contains("needs agents"));
    assert!(err("[inbound]\nnumbers = []").starts_with("inbound.numbers"));
    assert!(
        err("[inbound]\nnumbers = [\"1\"]\nallow_from = [\"trunk.example\"]")
            .starts_with("inbound.allow_from")
    );
}

/// The whole text of every response the engine sent.
fn response_texts(e: &mut Engine) -> Vec<String> {
    std::iter::from_fn(|| e.poll_output())
        .filter_map(|o| match o {
            Output::Transmit(t) => Some(String::from_utf8_lossy(&t.bytes).to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn with_an_account_an_inbound_invite_is_challenged_and_checked() {
    use outdial::sip::digest::{Challenge, Credentials};
    let from: SocketAddr = "198.51.100.7:5060".parse().unwrap();
    // Any source, since callers authenticate.
    let mut e = engine_with("", Some(("trunk", "s3cret")));
    e.handle_datagram(Instant::now(), &invite("+14155550000"), from);
    let r = response_texts(&mut e);
    assert!(r[0].starts_with("SIP/2.0 407"), "{r:?}");
    let challenge = r[0]
        .lines()
        .find_map(|l| l.strip_prefix("Proxy-Authenticate: "))
        .expect("a Proxy-Authenticate challenge");
    let c = Challenge::parse(challenge).unwrap();
    assert_eq!(c.realm(), "outdial-inbound");
    let answer = |password: &str| {
        c.answer(
            &Credentials {
                username: "trunk".into(),
                password: password.into(),
            },
            &outdial::sip::message::Method::Invite,
            &outdial::sip::message::parse_uri("sip:+14155550000@192.0.2.1:5070").unwrap(),
            1,
            &mut outdial::sip::message::Tokens::seeded(3),
        )
    };
    // Wrong password: 403. Right one: past the check (no agents here, so 480).
    let wrong = format!("Proxy-Authorization: {}\r\n", answer("guess"));
    e.handle_datagram(Instant::now(), &invite_with("+14155550000", &wrong), from);
    assert!(response_texts(&mut e)[0].starts_with("SIP/2.0 403"));
    let right = format!("Proxy-Authorization: {}\r\n", answer("s3cret"));
    e.handle_datagram(Instant::now(), &invite_with("+14155550000", &right), from);
    let r = response_texts(&mut e);
    assert!(r[0].starts_with("SIP/2.0 480"), "{r:?}");
}
