//! One call's RTP session as a sans-IO state machine: receive statistics, symmetric-RTP
//! latching, G.711 decode into a fixed buffer, AMD, beep and DTMF (RFC 4733) detection, the
//! media timeout, and paced prompt playback.
//!
//! Fed packets ([`MediaSession::handle_packet`]) and time ([`MediaSession::handle_timeout`]);
//! gives back events ([`MediaSession::poll_event`]), packets to send
//! ([`MediaSession::poll_transmit`]) and its next wake-up ([`MediaSession::poll_timeout`]).
//! No allocation per received packet: headers are parsed with `rtc-rtp` without copying the
//! payload, and audio is decoded into a buffer owned by the session.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc_rtp::header::Header;
use rtc_shared::marshal::{Marshal, MarshalSize, Unmarshal};

use super::amd::{AmdConfig, AmdDecision, BeepDetector, BeepParams, Detector};
use super::g711::Law;
use super::sdp::AudioAnswer;

/// Largest audio payload decoded per packet: 60 ms at 8 kHz.
const MAX_SAMPLES: usize = 480;
/// RTP payload type of comfort noise (RFC 3389).
const PT_CN: u8 = 13;

/// What the session reports.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    /// The AMD decision.
    Amd(AmdDecision),
    /// A beep (voicemail tone), `at_ms` after the answer.
    Beep {
        /// Milliseconds from the answer.
        at_ms: u32,
        /// Tone frequency, Hz.
        frequency_hz: u32,
    },
    /// A DTMF digit (RFC 4733 telephone-event), reported once per event.
    Dtmf {
        /// `0`–`9`, `*`, `#`, `A`–`D`.
        digit: char,
        /// Event duration, ms.
        duration_ms: u32,
    },
    /// No RTP for `after_ms` since the answer or the last packet.
    MediaTimeout {
        /// The configured timeout, ms.
        after_ms: u32,
    },
    /// A prompt finished playing.
    PlaybackDone,
    /// A recording ([`MediaSession::record`]) ended: the far end's audio, 8 kHz PCM.
    Recording {
        /// The samples (gaps from lost packets are not filled).
        samples: Arc<Vec<i16>>,
    },
}

/// Receive statistics (RFC 3550 §6.4.1 / appendix A.8 for jitter).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct RtpStats {
    /// Packets received (all payload types).
    pub packets: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// Packets lost: sequence gaps not later filled.
    pub lost: u64,
    /// Packets that arrived after a later one (late or reordered) or twice.
    pub out_of_order: u64,
    /// Interarrival jitter, in timestamp units (1/8000 s).
    pub jitter: f64,
    /// Packets sent (playback).
    pub sent: u64,
    /// Packets relayed to the other leg of a bridge (counted by the shell's relay).
    pub relayed: u64,
}

/// Settings of the session (from the campaign).
#[derive(Debug, Clone, Default)]
pub struct MediaSettings {
    /// AMD profile, or `None` for no detection.
    pub amd: Option<AmdConfig>,
    /// Raise [`MediaEvent::MediaTimeout`] after this long without RTP (None: never).
    pub media_timeout: Option<Duration>,
    /// Keep listening for a beep after the AMD decision (voicemail drop waits for it).
    pub watch_beep: bool,
}

struct Playback {
    samples: Arc<Vec<i16>>,
    pos: usize,
    next_at: Instant,
    first: bool,
}

/// One call's media. See the module docs.
pub struct MediaSession {
    settings: MediaSettings,
    answer: Option<AudioAnswer>,
    answered_at: Option<Instant>,
    remote: Option<SocketAddr>,
    amd: Option<Detector>,
    beep: Option<BeepDetector>,
    stats: RtpStats,
    max_seq: Option<u16>,
    last_transit: Option<i64>,
    clock_base: Instant,
    last_packet_at: Option<Instant>,
    timeout_fired: bool,
    last_dtmf_ts: Option<u32>,
    pcm: [i16; MAX_SAMPLES],
    playback: Option<Playback>,
    /// The far end's audio being recorded, and when the recording stops by itself.
    recording: Option<(Vec<i16>, Instant)>,
    ssrc: u32,
    seq: u16,
    ts: u32,
    events: VecDeque<MediaEvent>,
    out: VecDeque<(SocketAddr, Vec<u8>)>,
}

impl MediaSession {
    /// A session created when the INVITE goes out (early media may arrive before the answer).
    /// `random`: 64 random bits the RTP SSRC, first sequence number and first timestamp are
    /// drawn from (RFC 3550 §5.1 wants all three random; the shell supplies them).
    pub fn new(now: Instant, settings: MediaSettings, random: u64) -> Self {
        Self {
            settings,
            answer: None,
            answered_at: None,
            remote: None,
            amd: None,
            beep: None,
            stats: RtpStats::default(),
            max_seq: None,
            last_transit: None,
            clock_base: now,
            last_packet_at: None,
            timeout_fired: false,
            last_dtmf_ts: None,
            pcm: [0; MAX_SAMPLES],
            playback: None,
            recording: None,
            ssrc: random as u32,
            seq: (random >> 32) as u16,
            ts: random.rotate_left(19) as u32,
            events: VecDeque::new(),
            out: VecDeque::new(),
        }
    }

    /// The call was answered with this SDP: start AMD (if configured) and the media timeout.
    pub fn answered(&mut self, now: Instant, answer: AudioAnswer) {
        self.answer = Some(answer);
        self.answered_at = Some(now);
        if self.remote.is_none() && answer.remote.port() != 0 {
            self.remote = Some(answer.remote);
        }
        self.amd = self.settings.amd.as_ref().and_then(|c| c.detector(now));
        if self.settings.watch_beep && !matches!(self.amd, Some(Detector::Default(_))) {
            self.beep = Some(BeepDetector::new(BeepParams::default()));
        }
    }

    /// Receive statistics so far.
    pub fn stats(&self) -> RtpStats {
        self.stats
    }

    /// Where our RTP goes: the answer's address, or the source we latched to.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote
    }

    fn ms_from_answer(&self, now: Instant) -> u32 {
        self.answered_at
            .map(|a| now.saturating_duration_since(a).as_millis() as u32)
            .unwrap_or(0)
    }

    /// Feeds one received datagram. Malformed packets are counted nowhere and dropped.
    pub fn handle_packet(&mut self, now: Instant, data: &[u8], src: SocketAddr) {
        let mut buf = data;
        let Ok(h) = Header::unmarshal(&mut buf) else {
            return;
        };
        if h.version != 2 {
            return;
        }
        let hlen = h.marshal_size();
        if hlen > data.len() {
            return;
        }
        let mut payload = &data[hlen..];
        if h.padding
            && let Some(&pad) = payload.last()
        {
            payload = &payload[..payload.len().saturating_sub(pad as usize)];
        }
        // Symmetric RTP: send where the packets really come from.
        self.remote = Some(src);
        self.last_packet_at = Some(now);
        self.stats.packets += 1;
        self.stats.bytes += payload.len() as u64;
        self.track_sequence(h.sequence_number);
        self.track_jitter(now, h.timestamp);

        let Some(answer) = self.answer else {
            return; // early media: counted, not analysed
        };
        if Some(h.payload_type) == answer.telephone_event {
            self.dtmf(payload, h.timestamp);
            return;
        }
        let n = payload.len().min(MAX_SAMPLES);
        let law = match Law::from_payload_type(h.payload_type) {
            Some(l) => l,
            None if h.payload_type == PT_CN => {
                // Comfort noise: silence for the detector, one packet time long.
                self.pcm[..160].fill(0);
                self.feed_audio(now, 160);
                return;
            }
            None => return,
        };
        law.decode_into(&payload[..n], &mut self.pcm[..n]);
        self.feed_audio(now, n);
    }

    fn feed_audio(&mut self, now: Instant, n: usize) {
        let frame = &self.pcm[..n];
        if let Some((samples, _)) = &mut self.recording {
            samples.extend_from_slice(frame);
        }
        if let Some(amd) = &mut self.amd {
            if let Some(d) = amd.feed(now, frame) {
                self.events.push_back(MediaEvent::Amd(d));
            }
            if let Some(b) = amd.take_beep() {
                let at_ms = self
                    .answered_at
                    .map_or(0, |a| now.saturating_duration_since(a).as_millis() as u32);
                self.events.push_back(MediaEvent::Beep {
                    at_ms,
                    frequency_hz: b.frequency_hz,
                });
            }
        }
        if let Some(bd) = &mut self.beep
            && let Some(b) = bd.feed(frame)
        {
            let at_ms = self.ms_from_answer(now);
            self.events.push_back(MediaEvent::Beep {
                at_ms,
                frequency_hz: b.frequency_hz,
            });
        }
    }

    fn track_sequence(&mut self, seq: u16) {
        let Some(max) = self.max_seq else {
            self.max_seq = Some(seq);
            return;
        };
        let delta = seq.wrapping_sub(max);
        if delta == 0 {
            self.stats.out_of_order += 1; // duplicate
        } else if delta < 0x8000 {
            self.stats.lost += u64::from(delta - 1);
            self.max_seq = Some(seq);
        } else {
            // Older than the newest: late. It fills a gap counted as lost.
            self.stats.out_of_order += 1;
            self.stats.lost = self.stats.lost.saturating_sub(1);
        }
    }

    fn track_jitter(&mut self, now: Instant, rtp_ts: u32) {
        let arrival =
            (now.saturating_duration_since(self.clock_base).as_micros() * 8 / 1000) as i64;
        let transit = arrival - rtp_ts as i64;
        if let Some(prev) = self.last_transit {
            let d = (transit - prev).unsigned_abs() as f64;
            self.stats.jitter += (d - self.stats.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
    }

    fn dtmf(&mut self, payload: &[u8], ts: u32) {
        if payload.len() < 4 {
            return;
        }
        let end = payload[1] & 0x80 != 0;
        if !end || self.last_dtmf_ts == Some(ts) {
            return; // still going, or a retransmitted end packet (§2.5.1.4)
        }
        self.last_dtmf_ts = Some(ts);
        let digit = match payload[0] {
            d @ 0..=9 => (b'0' + d) as char,
            10 => '*',
            11 => '#',
            d @ 12..=15 => (b'A' + d - 12) as char,
            _ => return,
        };
        let duration = u16::from_be_bytes([payload[2], payload[3]]) as u32 / 8;
        self.events.push_back(MediaEvent::Dtmf {
            digit,
            duration_ms: duration,
        });
    }

    /// Starts playing 8 kHz PCM to the far end now, 20 ms per packet, in the answer's law.
    /// Replaces a prompt already playing.
    pub fn play(&mut self, now: Instant, samples: Arc<Vec<i16>>) {
        self.playback = Some(Playback {
            samples,
            pos: 0,
            next_at: now,
            first: true,
        });
        self.send_due(now);
    }

    /// True while a prompt is playing.
    pub fn is_playing(&self) -> bool {
        self.playback.is_some()
    }

    /// Stops the prompt playing, if any (no [`MediaEvent::PlaybackDone`] for it).
    pub fn stop_playback(&mut self) {
        self.playback = None;
    }

    /// Starts recording the far end's audio (decoded, 8 kHz) for at most `max`; a
    /// [`MediaEvent::Recording`] reports it when `max` is reached or
    /// [`Self::stop_recording`] is called. Replaces a recording in progress (dropped).
    pub fn record(&mut self, now: Instant, max: Duration) {
        let capacity = (max.as_millis() as usize * 8).min(8_000 * 60);
        self.recording = Some((Vec::with_capacity(capacity), crate::time::later(now, max)));
    }

    /// Ends the recording in progress, if any: a [`MediaEvent::Recording`] with what it holds.
    pub fn stop_recording(&mut self) {
        if let Some((samples, _)) = self.recording.take() {
            self.events.push_back(MediaEvent::Recording {
                samples: Arc::new(samples),
            });
        }
    }

    fn send_due(&mut self, now: Instant) {
        let (Some(answer), Some(remote)) = (self.answer, self.remote) else {
            return;
        };
        while let Some(p) = &mut self.playback {
            if p.next_at > now {
                break;
            }
            if p.pos >= p.samples.len() {
                self.playback = None;
                self.events.push_back(MediaEvent::PlaybackDone);
                break;
            }
            let end = (p.pos + 160).min(p.samples.len());
            let header = Header {
                version: 2,
                marker: p.first,
                payload_type: answer.law.payload_type(),
                sequence_number: self.seq,
                timestamp: self.ts,
                ssrc: self.ssrc,
                ..Default::default()
            };
            let mut pkt = vec![0u8; 12 + 160];
            if header.marshal_to(&mut pkt[..12]).is_err() {
                self.playback = None;
                break;
            }
            for (o, s) in pkt[12..].iter_mut().zip(&p.samples[p.pos..end]) {
                *o = answer.law.encode(*s);
            }
            // A short last frame is padded with silence to a whole packet.
            let silence = answer.law.encode(0);
            for o in pkt[12 + (end - p.pos)..].iter_mut() {
                *o = silence;
            }
            self.out.push_back((remote, pkt));
            self.stats.sent += 1;
            self.seq = self.seq.wrapping_add(1);
            self.ts = self.ts.wrapping_add(160);
            p.pos = end;
            p.first = false;
            p.next_at += Duration::from_millis(20);
        }
    }

    /// Fires whatever is due: playback pacing, AMD's wall-clock guard, the media timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.send_due(now);
        if self
            .recording
            .as_ref()
            .is_some_and(|(_, until)| *until <= now)
        {
            self.stop_recording();
        }
        if let Some(amd) = &mut self.amd
            && let Some(d) = amd.handle_timeout(now)
        {
            self.events.push_back(MediaEvent::Amd(d));
        }
        if let Some(t) = self.timeout_deadline()
            && now >= t
        {
            self.timeout_fired = true;
            let after_ms = self
                .settings
                .media_timeout
                .map_or(0, |d| d.as_millis() as u32);
            self.events.push_back(MediaEvent::MediaTimeout { after_ms });
        }
    }

    fn timeout_deadline(&self) -> Option<Instant> {
        if self.timeout_fired {
            return None;
        }
        let t = self.settings.media_timeout?;
        let since = match (self.answered_at, self.last_packet_at) {
            (Some(a), Some(l)) => a.max(l),
            (Some(a), None) => a,
            (None, _) => return None,
        };
        Some(crate::time::later(since, t))
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.playback.as_ref().map(|p| p.next_at),
            self.recording.as_ref().map(|(_, until)| *until),
            self.amd.as_ref().and_then(|a| a.poll_timeout()),
            self.timeout_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// The next packet to send, with its destination.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.out.pop_front()
    }
}

/// Builds an RTP packet (tests, load tools): V=2, no CSRC, no extension.
pub fn rtp_packet(pt: u8, seq: u16, ts: u32, ssrc: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let header = Header {
        version: 2,
        marker,
        payload_type: pt,
        sequence_number: seq,
        timestamp: ts,
        ssrc,
        ..Default::default()
    };
    let mut v = vec![0u8; 12 + payload.len()];
    header
        .marshal_to(&mut v[..12])
        .expect("a 12-byte header fits");
    v[12..].copy_from_slice(payload);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::amd::AmdResult;

    fn answer() -> AudioAnswer {
        AudioAnswer {
            remote: "127.0.0.1:40000".parse().unwrap(),
            law: Law::Pcmu,
            telephone_event: Some(101),
            ptime_ms: 20,
        }
    }

    fn src() -> SocketAddr {
        "127.0.0.1:40002".parse().unwrap()
    }

    #[test]
    fn counts_loss_reordering_and_latches_to_the_source() {
        let t0 = Instant::now();
        let mut s = MediaSession::new(t0, MediaSettings::default(), 0x5eed);
        s.answered(t0, answer());
        let silence = [0xFFu8; 160];
        for (i, seq) in [1u16, 2, 4, 3, 7, 7].into_iter().enumerate() {
            let p = rtp_packet(0, seq, seq as u32 * 160, 5, false, &silence);
            s.handle_packet(t0 + Duration::from_millis(20 * i as u64), &p, src());
        }
        let st = s.stats();
        assert_eq!(st.packets, 6);
        assert_eq!(st.bytes, 6 * 160);
        // 3 filled the gap after 4; 5 and 6 are lost; the second 7 is a duplicate.
        assert_eq!(st.lost, 2);
        assert_eq!(st.out_of_order, 2);
        assert_eq!(s.remote(), Some(src()));
    }

    #[test]
    fn sequence_wraps_without_loss() {
        let t0 = Instant::now();
        let mut s = MediaSession::new(t0, MediaSettings::default(), 0x5eed);
        for (i, seq) in [65534u16, 65535, 0, 1].into_iter().enumerate() {
            let p = rtp_packet(0, seq, i as u32 * 160, 5, false, &[0xFF; 160]);
            s.handle_packet(t0, &p, src());
        }
        assert_eq!(s.stats().lost, 0);
    }

    #[test]
    fn dtmf_end_packets_are_reported_once() {
        let t0 = Instant::now();
        let mut s = MediaSession::new(t0, MediaSettings::default(), 0x5eed);
        s.answered(t0, answer());
        // Digit 5: two progress packets, then three copies of the end packet (RFC 4733).
        for (i, end) in [false, false, true, true, true].into_iter().enumerate() {
            let dur: u16 = 400 + 160 * i as u16;
            let payload = [
                5u8,
                if end { 0x80 | 10 } else { 10 },
                (dur >> 8) as u8,
                dur as u8,
            ];
            let p = rtp_packet(101, 100 + i as u16, 8000, 9, i == 0, &payload);
            s.handle_packet(t0, &p, src());
        }
        let evs: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
        assert_eq!(
            evs,
            vec![MediaEvent::Dtmf {
                digit: '5',
                duration_ms: (400 + 160 * 2) / 8
            }]
        );
    }

    #[test]
    fn amd_runs_on_decoded_audio() {
        let t0 = Instant::now();
        let mut s = MediaSession::new(
            t0,
            MediaSettings {
                amd: Some(AmdConfig::named("asterisk").unwrap()),
                ..Default::default()
            },
            0x5eed,
        );
        s.answered(t0, answer());
        // 3 s of µ-law silence: Asterisk's INITIALSILENCE at 2500 ms.
        let mut got = None;
        for i in 0..150u16 {
            let now = t0 + Duration::from_millis(20 * (i as u64 + 1));
            s.handle_packet(
                now,
                &rtp_packet(0, i, i as u32 * 160, 1, false, &[0xFF; 160]),
                src(),
            );
            if let Some(MediaEvent::Amd(d)) = s.poll_event() {
                got = Some(d);
                break;
            }
        }
        let d = got.unwrap();
        assert_eq!(
            (d.result, d.cause.as_str()),
            (AmdResult::Machine, "INITIALSILENCE-2500-2500")
        );
        assert_eq!(d.decision_ms, 2500);
    }

    #[test]
    fn media_timeout_after_answer_then_after_last_packet() {
        let t0 = Instant::now();
        let mut s = MediaSession::new(
            t0,
            MediaSettings {
                media_timeout: Some(Duration::from_secs(3)),
                ..Default::default()
            },
            0x5eed,
        );
        assert_eq!(s.poll_timeout(), None, "no timeout before the answer");
        s.answered(t0, answer());
        s.handle_packet(
            t0 + Duration::from_secs(1),
            &rtp_packet(0, 1, 0, 1, false, &[0xFF; 160]),
            src(),
        );
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(4)));
        s.handle_timeout(t0 + Duration::from_secs(4));
        assert_eq!(
            s.poll_event(),
            Some(MediaEvent::MediaTimeout { after_ms: 3000 })
        );
        assert_eq!(s.poll_timeout(), None, "reported once");
    }

    #[test]
    fn playback_is_paced_20ms_with_marker_sequence_and_timestamps() {
        let t0 = Instant::now();
        let mut s = MediaSession::new(t0, MediaSettings::default(), 0x5eed);
        s.answered(t0, answer());
        s.play(t0, Arc::new(vec![1000i16; 400])); // 50 ms: 3 packets, the last padded
        let mut sent = vec![];
        let mut now = t0;
        loop {
            while let Some((dest, p)) = s.poll_transmit() {
                sent.push((now, dest, p));
            }
            match s.poll_timeout() {
                Some(t) => {
                    now = t;
                    s.handle_timeout(now);
                }
                None => break,
            }
        }
        assert_eq!(sent.len(), 3);
        assert_eq!(s.poll_event(), Some(MediaEvent::PlaybackDone));
        let hdrs: Vec<Header> = sent
            .iter()
            .map(|(_, _, p)| Header::unmarshal(&mut &p[..]).unwrap())
            .collect();
        assert!(hdrs[0].marker && !hdrs[1].marker && !hdrs[2].marker);
        assert_eq!(
            hdrs[1].sequence_number,
            hdrs[0].sequence_number.wrapping_add(1)
        );
        assert_eq!(hdrs[2].timestamp, hdrs[0].timestamp.wrapping_add(320));
        assert_eq!(hdrs[0].payload_type, 0);
        assert_eq!(sent[1].0 - sent[0].0, Duration::from_millis(20), "no burst");
        assert_eq!(sent[2].0 - sent[0].0, Duration::from_millis(40));
        assert!(
            sent.iter()
                .all(|(_, d, p)| *d == answer().remote && p.len() == 172)
        );
        assert_eq!(
            *sent[2].2.last().unwrap(),
            Law::Pcmu.encode(0),
            "padded with silence"
        );
    }
}
