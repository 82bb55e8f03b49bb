//! Per-packet cost of the media hot path: RTP header parse, G.711 decode + AMD per 20 ms
//! frame (both profiles), and the whole session path for one packet (parse → stats → decode
//! → AMD), the bridge's RTP relay per packet (passthrough, PCMU→PCMA), the three-way mix of a
//! merged warm transfer per 20 ms tick (decode three legs, mix N−1, encode three frames),
//! and a call recording's placement of one packet.
//!
//! Run: `cargo bench --bench media_hot_path`. Figures go in docs/benchmarks.md.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use outdial::media::amd::AmdConfig;
use outdial::media::g711::Law;
use outdial::media::relay::{LegCodec, relay_packet};
use outdial::media::sdp::AudioAnswer;
use outdial::media::session::{MediaSession, MediaSettings, rtp_packet};
use rtc_rtp::header::Header;
use rtc_shared::marshal::Unmarshal;

/// 20 ms of a 700 Hz tone at -20 dBov in µ-law: speech level, and in the beep band, so the
/// beep detector does its full work (the worst case per frame).
fn ulaw_frame() -> Vec<u8> {
    (0..160)
        .map(|i| {
            let s = 3000.0 * (2.0 * std::f32::consts::PI * 700.0 * i as f32 / 8000.0).sin();
            Law::Pcmu.encode(s as i16)
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let payload = ulaw_frame();
    let packet = rtp_packet(0, 1000, 160_000, 0x1234_5678, false, &payload);
    c.bench_function("rtp/parse_header", |b| {
        b.iter(|| Header::unmarshal(&mut black_box(&packet[..])).unwrap())
    });

    let mut pcm = [0i16; 160];
    for profile in ["default", "asterisk"] {
        let cfg = AmdConfig::named(profile).unwrap();
        c.bench_function(&format!("amd/decode_and_{profile}_per_frame"), |b| {
            // A fresh detector every 200 frames (4 s) so it never sits decided.
            let t0 = Instant::now();
            let mut det = cfg.detector(t0).unwrap();
            let mut n = 0u64;
            b.iter(|| {
                n += 1;
                if n.is_multiple_of(200) {
                    det = cfg.detector(t0 + Duration::from_millis(20 * n)).unwrap();
                }
                Law::Pcmu.decode_into(black_box(&payload), &mut pcm);
                black_box(det.feed(t0 + Duration::from_millis(20 * n), &pcm))
            })
        });
    }

    c.bench_function("session/packet_parse_stats_decode_amd", |b| {
        let t0 = Instant::now();
        let settings = MediaSettings {
            amd: Some(AmdConfig::named("default").unwrap()),
            ..Default::default()
        };
        let answer = AudioAnswer {
            remote: "127.0.0.1:40000".parse().unwrap(),
            law: Law::Pcmu,
            telephone_event: Some(101),
            ptime_ms: 20,
        };
        let src = "127.0.0.1:40000".parse().unwrap();
        let mut session = MediaSession::new(t0, settings.clone(), 0x5eed);
        session.answered(t0, answer);
        let mut seq = 0u16;
        let mut n = 0u64;
        b.iter(|| {
            n += 1;
            seq = seq.wrapping_add(1);
            if n.is_multiple_of(200) {
                session = MediaSession::new(t0, settings.clone(), 0x5eed);
                session.answered(t0 + Duration::from_millis(20 * n), answer);
            }
            let p = rtp_packet(0, seq, seq as u32 * 160, 7, false, &payload);
            session.handle_packet(t0 + Duration::from_millis(20 * n), black_box(&p), src);
            while let Some(e) = session.poll_event() {
                black_box(e);
            }
        })
    });

    // The bridge's per-packet work (B2BUA relay): passthrough and PCMU→PCMA transcoding.
    let pcmu = LegCodec {
        law: Law::Pcmu,
        telephone_event: Some(101),
    };
    let pcma = LegCodec {
        law: Law::Pcma,
        telephone_event: Some(101),
    };
    let mut out = Vec::with_capacity(2048);
    for (name, to) in [("passthrough", pcmu), ("pcmu_to_pcma", pcma)] {
        c.bench_function(&format!("relay/{name}"), |b| {
            b.iter(|| relay_packet(black_box(&packet), pcmu, to, &mut out))
        });
    }

    // A merged warm transfer's 20 ms tick: each of the three legs' packet decoded and queued,
    // the N−1 mix, each leg's share encoded (PCMU, PCMA, PCMU). Divide by 3 for per leg.
    c.bench_function("mixer/three_way_tick", |b| {
        let mut mixer = outdial::media::mixer::Mixer::new(3);
        let laws = [Law::Pcmu, Law::Pcma, Law::Pcmu];
        let mut decoded = [0i16; 160];
        let mut encoded = [0u8; 160];
        b.iter(|| {
            for (i, law) in laws.iter().enumerate() {
                law.decode_into(black_box(&payload), &mut decoded);
                mixer.push(i, &decoded);
            }
            for (f, law) in mixer.mix().iter().zip(laws) {
                for (o, s) in encoded.iter_mut().zip(f) {
                    *o = law.encode(*s);
                }
                black_box(&encoded);
            }
        })
    });

    // A call recording: one 20 ms packet placed on its side's timeline.
    c.bench_function("recorder/place_packet", |b| {
        use outdial::media::recorder::{CallRecorder, Side};
        let t0 = Instant::now();
        let mut rec = CallRecorder::new(t0);
        let mut n = 0u32;
        b.iter(|| {
            n += 1;
            if n.is_multiple_of(45_000) {
                rec = CallRecorder::new(t0);
            }
            let at = t0 + Duration::from_millis(u64::from(n % 45_000) * 20);
            rec.push(
                Side::Customer,
                at,
                (n % 45_000) * 160,
                Law::Pcmu,
                black_box(&payload),
            );
        })
    });
}

criterion_group!(media, benches);
criterion_main!(media);
