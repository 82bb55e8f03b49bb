//! Entry points for fuzzing: every parser and state machine that reads untrusted bytes, as a
//! `fn(&[u8])` that must never panic, whatever the input.
//!
//! The `cargo fuzz` targets in `fuzz/fuzz_targets/` are one line each over these functions,
//! and `tests/fuzz_regressions.rs` replays the kept corpus (`fuzz/regressions/<target>/`, the
//! findings and the seeds from `sip-fixtures/`) through them on every test run, on the stable
//! toolchain. See `docs/reliability.md` for the targets, the hours run and the findings.
//!
//! Each function mirrors what the engine does with such bytes: it parses, and when the parse
//! succeeds it goes on to the code that consumes the result (a response built for a request,
//! a registrar fed a REGISTER, a media session fed a packet), so a bad value that a parser
//! lets through is caught where it would hurt.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::campaign::config::CampaignConfig;

/// A fuzz entry point: any bytes in, never a panic.
pub type Target = fn(&[u8]);

/// Every target, by name: `(name, function)`. The names are the `fuzz/fuzz_targets/` file
/// names and the `fuzz/regressions/` directory names.
pub const TARGETS: [(&str, Target); 8] = [
    ("sip_datagram", sip_datagram),
    ("sip_stream", sip_stream),
    ("sdp_answer", sdp_answer),
    ("registrar", registrar),
    ("rtp", rtp),
    ("csv_import", csv_import),
    ("campaign_toml", campaign_toml),
    ("campaign_json", campaign_json),
];

fn src() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5099))
}

/// One UDP datagram as the engine receives it: `sip::message::parse_datagram`, then, for a
/// request, the response the engine would send to it (RFC 3261 §8.2.6 copies Via, From, To,
/// Call-ID and CSeq) parsed back, and the SDP body if any.
///
/// Also differential: the response scan and rsipstack's full parse
/// (`parse_datagram_full`) must read the same fields, or both refuse the datagram (the scan may
/// accept a top Via that rsipstack's typed Via refuses: it checks less of it). Panics when
/// they differ.
pub fn sip_datagram(data: &[u8]) {
    use crate::sip::message::{ParseError, parse_datagram_full};
    let scanned = crate::sip::message::parse_datagram(data);
    let full = parse_datagram_full(data);
    match (&scanned, &full) {
        (Ok(a), Ok(b)) => assert_eq!(
            (&a.method, a.status, &a.call_id(), a.cseq, &a.cseq_method()),
            (&b.method, b.status, &b.call_id(), b.cseq, &b.cseq_method()),
        ),
        (Err(_), Err(_)) | (Ok(_), Err(ParseError::Header { name: "Via", .. })) => {}
        _ => panic!("scan {scanned:?} and full parse {full:?} differ"),
    }
    if let (Ok(a), Ok(b)) = (&scanned, &full) {
        assert_eq!(
            (&a.branch(), &a.from_tag(), &a.to_tag(), a.body()),
            (&b.branch(), &b.from_tag(), &b.to_tag(), b.body())
        );
    }
    let Ok(msg) = scanned else {
        return;
    };
    let _ = msg.header_values("Via");
    let _ = crate::sip::message::response_reply_addr(&msg, src());
    if msg.status.is_none() {
        let resp = crate::sip::message::response_to(&msg, 481, None, vec![], vec![]);
        crate::sip::message::parse_datagram(&resp)
            .expect("a response built by response_to parses back");
    }
    if !msg.body().is_empty() {
        let _ = crate::media::sdp::parse_answer(msg.body());
        let _ = crate::sip::sdp::direction_of(msg.body());
    }
}

/// A TCP byte stream (RFC 3261 §18.3): the framer fed in uneven chunks (the first byte of the
/// input picks the chunk size), every framed message parsed.
pub fn sip_stream(data: &[u8]) {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut framer = crate::sip::message::StreamFramer::default();
    for part in rest.chunks(chunk) {
        framer.push(part);
        loop {
            match framer.next_message() {
                Ok(Some(m)) => {
                    let _ = crate::sip::message::parse_datagram(&m);
                }
                Ok(None) => break,
                // The connection is closed on a framing error.
                Err(_) => return,
            }
        }
    }
}

/// An SDP answer body (RFC 4566 / RFC 3264).
pub fn sdp_answer(data: &[u8]) {
    let _ = crate::media::sdp::parse_answer(data);
    let _ = crate::sip::sdp::direction_of(data);
}

/// A REGISTER from a phone: the registrar (digest verification included) with one account,
/// fed the datagram twice (the second time after a minute, nonces and bindings aged), and the
/// raw input as an `Authorization` header value.
pub fn registrar(data: &[u8]) {
    use crate::acd::digest_auth::{DigestAlgorithm, DigestServer, Ha1};
    use crate::acd::registrar::{Registrar, RegistrarConfig};
    let now = Instant::now();
    let cfg = RegistrarConfig {
        algorithms: vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5],
        ..RegistrarConfig::default()
    };
    let mut reg = Registrar::new(cfg, now, crate::sip::message::Tokens::seeded(7));
    reg.set_account("1001", Ha1::from_password("1001", "outdial", "secret"));
    if let Ok(msg) = crate::sip::message::parse_datagram(data) {
        for t in [now, now + Duration::from_secs(61)] {
            let out = reg.handle_register(t, &msg, src(), crate::sip::message::Transport::Udp);
            if let Some(r) = out.response {
                crate::sip::message::parse_datagram(&r).expect("a registrar response parses back");
            }
            reg.handle_timeout(t);
        }
    }
    if let Ok(header) = std::str::from_utf8(data) {
        let mut server = DigestServer::new(
            "outdial",
            vec![DigestAlgorithm::Md5],
            Duration::from_secs(300),
            now,
            crate::sip::message::Tokens::seeded(7),
        );
        let _ = server.verify(now, header, "REGISTER", |u| {
            (u == "1001").then(|| Ha1::from_password("1001", "outdial", "secret"))
        });
    }
}

/// RTP and RTCP datagrams on a call's media port: a media session (AMD on, telephone-event
/// 101) fed the input cut into packets (a 2-byte length before each), then the B2BUA relay
/// (PCMU → PCMA transcoding, telephone-event mapping) on each.
pub fn rtp(data: &[u8]) {
    use crate::media::g711::Law;
    use crate::media::relay::{LegCodec, relay_packet};
    use crate::media::sdp::AudioAnswer;
    use crate::media::session::{MediaSession, MediaSettings};
    let now = Instant::now();
    let mut s = MediaSession::new(
        now,
        MediaSettings {
            amd: Some(crate::media::amd::AmdConfig::default()),
            media_timeout: Some(Duration::from_secs(5)),
            watch_beep: true,
        },
        0x5eed,
    );
    s.answered(
        now,
        AudioAnswer {
            remote: src(),
            law: Law::Pcmu,
            telephone_event: Some(101),
            ptime_ms: 20,
        },
    );
    let from = LegCodec {
        law: Law::Pcmu,
        telephone_event: Some(101),
    };
    let to = LegCodec {
        law: Law::Pcma,
        telephone_event: Some(96),
    };
    let mut out = Vec::new();
    let mut rest = data;
    let mut t = now;
    while rest.len() >= 2 {
        let n = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let pkt = &rest[2..2 + n];
        rest = &rest[2 + n..];
        t += Duration::from_millis(20);
        s.handle_packet(t, pkt, src());
        s.handle_timeout(t);
        while s.poll_event().is_some() {}
        while s.poll_transmit().is_some() {}
        let _ = s.poll_timeout();
        out.clear();
        let _ = relay_packet(pkt, from, to, &mut out);
    }
}

/// A call list upload (CSV or semicolon/tab separated, any bytes).
pub fn csv_import(data: &[u8]) {
    let _ = crate::campaign::leads::read_csv(data, Some(phonenumber::country::Id::FR));
}

/// A campaign file (TOML) as `outdial run` reads it: parsed, validated, and when accepted,
/// every duration and rate it sets turned into the runtime values the engine uses.
pub fn campaign_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) = toml::from_str::<crate::campaign::config::CampaignConfig>(text) else {
        return;
    };
    if cfg.validate().is_ok() {
        exercise_runtime(&cfg, Instant::now());
    }
}

/// A campaign body as the REST API receives it (camelCase JSON): split, laid over empty
/// service defaults, validated; when accepted, the runtime values built as for a TOML file.
pub fn campaign_json(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok((_, settings, _)) = crate::service::convert::split_body(body) else {
        return;
    };
    if let Ok(cfg) = crate::service::convert::campaign_config(&toml::Table::new(), settings) {
        exercise_runtime(&cfg, Instant::now());
    }
}

/// Builds every runtime value the engine derives from the settings at `now` — timer
/// deadlines, the call rate, the pacer, trunk pings, a media session's timers, the
/// webhook queue's permits, the calling window — as the runner and the engine do. For
/// fuzzing and property tests: on a validated configuration it must not panic.
pub fn exercise_runtime(cfg: &CampaignConfig, now: Instant) {
    use crate::media::session::{MediaSession, MediaSettings};
    let later = |d: Duration| crate::time::later(now, d);
    let mut rate = crate::campaign::rate::CallRate::new(cfg.cps, now);
    let _ = rate.try_acquire(now);
    let _ = rate.next_at();
    for d in [
        cfg.ring_timeout(),
        cfg.hold_time(),
        cfg.failover_timeout(),
        Duration::from_secs(cfg.voicemail_wait),
        Duration::from_secs(u64::from(cfg.session_expires)),
    ] {
        let _ = later(d);
    }
    for r in &cfg.reschedule_rules {
        let _ = later(Duration::from_secs(r.retry_after));
    }
    if let Ok(group) = cfg.trunk_group() {
        let routes: Vec<_> = group
            .iter()
            .enumerate()
            .map(|(i, t)| {
                crate::engine::trunks::TrunkRoute::direct(
                    &t.name,
                    SocketAddr::from(([127, 0, 0, 1], 5060 + i as u16)),
                    t.target.transport,
                )
            })
            .collect();
        let mut trunks = crate::engine::trunks::TrunkSet::new(
            routes,
            (cfg.keepalive_interval > 0).then(|| Duration::from_secs(cfg.keepalive_interval)),
            cfg.trunk_down_after,
            crate::sip::transaction::Timers::default(),
        );
        let local = crate::sip::dialog::LocalParty {
            sent_by: "127.0.0.1:5070".into(),
            transport: crate::sip::message::Transport::Udp,
            user_agent: "outdial".into(),
        };
        trunks.start_keepalive(now);
        trunks.handle_timeout(now, &local, &mut crate::sip::message::Tokens::seeded(7));
        if let Some(t) = trunks.poll_timeout() {
            trunks.handle_timeout(t, &local, &mut crate::sip::message::Tokens::seeded(7));
        }
    }
    let mut media = MediaSession::new(
        now,
        MediaSettings {
            amd: Some(cfg.amd.clone()),
            media_timeout: (cfg.media_timeout > 0).then(|| Duration::from_secs(cfg.media_timeout)),
            watch_beep: true,
        },
        0x5eed,
    );
    media.answered(
        now,
        crate::media::sdp::AudioAnswer {
            remote: SocketAddr::from(([127, 0, 0, 1], 4000)),
            law: crate::media::g711::Law::Pcmu,
            telephone_event: Some(101),
            ptime_ms: 20,
        },
    );
    if let Some(t) = media.poll_timeout() {
        media.handle_timeout(t);
    }
    if let Some(a) = &cfg.acd {
        for d in [
            a.max_wait(),
            Duration::from_secs(a.offer_timeout),
            Duration::from_secs(a.wrap_up),
            Duration::from_secs(a.wait_for_agents),
            Duration::from_secs(a.block_secs),
            Duration::from_secs(u64::from(a.max_expires)),
        ] {
            let _ = later(d);
        }
    }
    if let Some(e) = &cfg.endpoint {
        let p = crate::pacing::Pacer::new(e.pacer());
        let _ = p.poll_timeout();
    }
    if let Some(w) = &cfg.webhook {
        let _ =
            tokio::sync::mpsc::channel::<()>(w.queue.clamp(1, crate::notify::webhook::MAX_QUEUE));
        let _ = later(Duration::from_secs(w.timeout));
    }
    if let Some(p) = &cfg.active_period
        && let Ok(w) = crate::campaign::window::CallingWindow::new(p)
    {
        let t = chrono::Utc::now();
        let _ = w.contains(t, None);
        let _ = w.next_open(t, None);
    }
}
