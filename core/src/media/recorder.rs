//! A bridged call's recording as a sans-IO state machine: G.711 payloads of both legs, each
//! placed on the recording's timeline by its RTP timestamp (a lost packet leaves silence, a
//! late one still lands where it belongs), handed out as stereo 16-bit PCM — the customer
//! left, the agent right — three seconds behind real time (jitter and a far end's stalls
//! still land in place), so a writer streams it to its file and memory stays bounded however
//! long the call (a 4-hour call needs no more than a few seconds' window).
//!
//! The shell feeds it from a bounded channel in a task of its own, so recording never blocks
//! the media path: packets the writer cannot take are counted as dropped.

use std::time::{Duration, Instant};

use super::g711::Law;

/// Longest recording kept: 4 hours (the ACD's longest call).
pub const MAX_RECORDING: Duration = Duration::from_secs(4 * 3600);
const MAX_SAMPLES: i64 = 8 * 4 * 3600 * 1000;
/// How far behind real time [`CallRecorder::drain`] stays: packets arriving later than this
/// (jitter) are still placed; later ones are counted in [`CallRecorder::late`] and dropped.
pub const HOLD_BACK: Duration = Duration::from_secs(3);
const HOLD_BACK_SAMPLES: i64 = 3 * 8000;

/// Which channel a packet belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The customer's audio (left).
    Customer,
    /// The agent's audio (right).
    Agent,
    /// A third party — a warm transfer's consultation leg, a transfer target reached by our
    /// own call: mixed into the right channel with the agent (summed, saturated to 16 bits),
    /// with its own timing.
    Third,
}

impl Side {
    /// The WAV channel: 0 (left) for the customer, 1 (right) for everyone else.
    fn channel(self) -> usize {
        match self {
            Side::Customer => 0,
            Side::Agent | Side::Third => 1,
        }
    }
}

/// One call's recording. See the module documentation.
#[derive(Debug)]
pub struct CallRecorder {
    started: Instant,
    /// Per [`Side`]: (position in samples of its first packet, that packet's RTP timestamp).
    anchors: [Option<(i64, u32)>; 3],
    /// Interleaved samples from `flushed` on, not yet handed out.
    window: Vec<i16>,
    /// Sample frames already handed out by [`Self::drain`].
    flushed: i64,
    /// Packets that came after their place was handed out (more than [`HOLD_BACK`] late): each
    /// re-times its side, placed on arrival instead of lost.
    pub late: u64,
}

impl CallRecorder {
    /// A recording starting at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            started: now,
            anchors: [None, None, None],
            window: Vec::new(),
            flushed: 0,
            late: 0,
        }
    }

    fn samples_at(&self, at: Instant) -> i64 {
        (at.saturating_duration_since(self.started).as_micros() as i64 * 8 / 1000).min(MAX_SAMPLES)
    }

    /// One audio payload of `side`, received at `at` with RTP timestamp `ts` (8 kHz units),
    /// encoded in `law`. The first packet of a side is placed at its arrival time; later ones
    /// at their timestamp's distance from it (a timestamp jump of more than 10 s — a new
    /// source — or a packet whose place was already handed out re-anchors on arrival time).
    /// Samples are added to what the channel holds there (the agent and a third party share
    /// the right channel).
    pub fn push(&mut self, side: Side, at: Instant, ts: u32, law: Law, payload: &[u8]) {
        let arrival = self.samples_at(at);
        let (a, ch) = (side as usize, side.channel());
        let by_ts = self.anchors[a].map(|(p0, ts0)| p0 + i64::from(ts.wrapping_sub(ts0) as i32));
        let pos = match by_ts {
            Some(p) if (p - arrival).abs() <= 80_000 && p >= self.flushed => p,
            _ => {
                // The first packet, a new source, or a stream whose timestamps fell more than
                // the hold-back behind (a far end that stalled): placed on arrival from here.
                self.late += u64::from(by_ts.is_some_and(|p| p < self.flushed));
                self.anchors[a] = Some((arrival, ts));
                arrival
            }
        };
        let end = pos + payload.len() as i64;
        if end > MAX_SAMPLES || end <= self.flushed {
            return;
        }
        // The part already handed out is gone.
        let skip = (self.flushed - pos).max(0) as usize;
        let from = ((pos.max(self.flushed) - self.flushed) * 2) as usize;
        let need = ((end - self.flushed) * 2) as usize;
        if self.window.len() < need {
            self.window.resize(need, 0);
        }
        let mut pcm = [0i16; 480];
        let payload = &payload[skip..payload.len().min(skip + pcm.len())];
        law.decode_into(payload, &mut pcm);
        for (i, s) in pcm[..payload.len()].iter().enumerate() {
            let w = &mut self.window[from + i * 2 + ch];
            *w = w.saturating_add(*s);
        }
    }

    /// The interleaved stereo samples that are final at `now` (up to [`HOLD_BACK`] before
    /// it), in order, each once; empty when nothing new is.
    pub fn drain(&mut self, now: Instant) -> Vec<i16> {
        let ready = self.samples_at(now) - HOLD_BACK_SAMPLES;
        self.take_until(ready)
    }

    /// The rest of the recording, up to `now` (its end): interleaved stereo samples; and the
    /// recording's whole length.
    pub fn finish(mut self, now: Instant) -> (Vec<i16>, Duration) {
        let end = self.samples_at(now);
        let tail = self.take_until(end);
        (tail, Duration::from_micros(self.flushed as u64 * 125))
    }

    fn take_until(&mut self, until: i64) -> Vec<i16> {
        if until <= self.flushed {
            return Vec::new();
        }
        let n = ((until - self.flushed) * 2) as usize;
        if self.window.len() < n {
            self.window.resize(n, 0);
        }
        let out: Vec<i16> = self.window.drain(..n).collect();
        self.flushed = until;
        out
    }
}

/// The 44-byte header of an 8 kHz stereo 16-bit PCM WAV file whose sample data is
/// `data_bytes` long (written first with 0 and rewritten once the length is known).
pub fn stereo_wav_header(data_bytes: u32) -> [u8; 44] {
    let mut h = [0u8; 44];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36 + data_bytes).to_le_bytes());
    h[8..16].copy_from_slice(b"WAVEfmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&2u16.to_le_bytes()); // channels
    h[24..28].copy_from_slice(&8000u32.to_le_bytes());
    h[28..32].copy_from_slice(&32_000u32.to_le_bytes()); // bytes per second
    h[32..34].copy_from_slice(&4u16.to_le_bytes()); // block align
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_bytes.to_le_bytes());
    h
}

/// Interleaved samples as little-endian bytes (a WAV file's data).
pub fn le_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(mut r: CallRecorder, drains: &[Instant], end: Instant) -> (Vec<i16>, Duration) {
        let mut pcm = Vec::new();
        for t in drains {
            pcm.extend(r.drain(*t));
        }
        let (tail, len) = r.finish(end);
        pcm.extend(tail);
        (pcm, len)
    }

    #[test]
    fn a_third_party_is_mixed_into_the_agents_channel_on_its_own_timing() {
        let t0 = Instant::now();
        let mut r = CallRecorder::new(t0);
        let pcmu = |v: i16| [Law::Pcmu.encode(v); 160];
        // The agent from 0 ms, the third party from 10 ms on a foreign timestamp base.
        r.push(Side::Agent, t0, 500, Law::Pcmu, &pcmu(4000));
        let t = t0 + Duration::from_millis(10);
        r.push(Side::Third, t, 9_000_000, Law::Pcmu, &pcmu(3000));
        r.push(Side::Third, t, 9_000_160, Law::Pcmu, &pcmu(30000));
        r.push(Side::Agent, t, 660, Law::Pcmu, &pcmu(30000));
        let (pcm, _) = whole(r, &[], t0 + Duration::from_millis(60));
        let right = |i: usize| pcm[i * 2 + 1];
        assert!((3900..4100).contains(&right(79)), "the agent alone");
        assert!((6800..7200).contains(&right(80)), "both: {}", right(80));
        assert_eq!(right(200), i16::MAX, "both loud: saturated, not wrapped");
        assert!(
            (29000..31000).contains(&right(320 + 50)),
            "the third party alone"
        );
        assert!(
            pcm.iter().step_by(2).all(|&l| l == 0),
            "nothing on the customer's side"
        );
    }

    #[test]
    fn packets_land_by_timestamp_and_sides_stay_apart() {
        let t0 = Instant::now();
        let mut r = CallRecorder::new(t0);
        let loud = [Law::Pcmu.encode(8000); 160];
        // Customer from 100 ms; packet 2 lost, packet 3 arrives late but lands by timestamp.
        r.push(
            Side::Customer,
            t0 + Duration::from_millis(100),
            1000,
            Law::Pcmu,
            &loud,
        );
        r.push(
            Side::Customer,
            t0 + Duration::from_millis(180),
            1320,
            Law::Pcmu,
            &loud,
        );
        // Agent from 200 ms, A-law.
        let a = [Law::Pcma.encode(-8000); 160];
        r.push(
            Side::Agent,
            t0 + Duration::from_millis(200),
            77,
            Law::Pcma,
            &a,
        );
        let (pcm, len) = whole(r, &[], t0 + Duration::from_millis(500));
        assert_eq!(len, Duration::from_millis(500));
        assert_eq!(pcm.len(), 4000 * 2);
        let left = |i: usize| pcm[i * 2];
        let right = |i: usize| pcm[i * 2 + 1];
        assert_eq!(left(799), 0);
        assert!(left(800) > 7000 && left(959) > 7000);
        assert_eq!(left(960), 0, "the lost packet is silence");
        assert!(
            left(1120) > 7000,
            "packet 3 at its timestamp (+320 samples)"
        );
        assert_eq!(right(800), 0);
        assert!(right(1600) < -7000 && right(1759) < -7000);
        assert_eq!(right(1760), 0);
        let mut wav = stereo_wav_header((pcm.len() * 2) as u32).to_vec();
        wav.extend(le_bytes(&pcm));
        let reader = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
        assert_eq!(reader.spec().channels, 2);
        assert_eq!(reader.duration(), 4000);
    }

    #[test]
    fn drained_behind_real_time_with_bounded_memory_and_the_same_samples() {
        let t0 = Instant::now();
        let mut streamed = CallRecorder::new(t0);
        let mut kept = CallRecorder::new(t0);
        let mut drains = Vec::new();
        let mut out = Vec::new();
        // 60 s of 20 ms packets on both sides, drained every 500 ms.
        for n in 0..3000u32 {
            let at = t0 + Duration::from_millis(u64::from(n) * 20);
            let p = [Law::Pcmu.encode((n % 100) as i16 * 100); 160];
            for r in [&mut streamed, &mut kept] {
                r.push(Side::Customer, at, n * 160, Law::Pcmu, &p);
                r.push(
                    Side::Agent,
                    at + Duration::from_millis(3),
                    9 + n * 160,
                    Law::Pcmu,
                    &p,
                );
            }
            if n % 25 == 0 {
                out.extend(streamed.drain(at));
                drains.push(at);
                assert!(
                    streamed.window.len() <= (HOLD_BACK_SAMPLES as usize + 4000 + 480) * 2,
                    "bounded window"
                );
            }
        }
        let end = t0 + Duration::from_secs(60);
        let (tail, len) = streamed.finish(end);
        out.extend(tail);
        let (all, len2) = kept.finish(end);
        assert_eq!((len, out.len()), (len2, all.len()));
        assert_eq!(out, all, "streaming changes nothing");
        // A packet later than the hold-back is counted and placed on arrival.
        let mut r = CallRecorder::new(t0);
        let p = [Law::Pcmu.encode(100); 160];
        r.push(Side::Agent, t0, 0, Law::Pcmu, &p);
        let _ = r.drain(t0 + Duration::from_secs(5));
        r.push(Side::Agent, t0 + Duration::from_secs(5), 160, Law::Pcmu, &p);
        assert_eq!(r.late, 1);
        let (pcm, _) = r.finish(t0 + Duration::from_millis(5100));
        // Placed at 5 s (sample 40,000), the first thing after the drained 2 s.
        assert!(pcm[(40_000 - 16_000) * 2 + 1] > 50, "placed on arrival");
    }

    #[test]
    fn a_timestamp_jump_reanchors_on_arrival() {
        let t0 = Instant::now();
        let mut r = CallRecorder::new(t0);
        let p = [Law::Pcmu.encode(5000); 160];
        r.push(Side::Agent, t0, 0, Law::Pcmu, &p);
        r.push(
            Side::Agent,
            t0 + Duration::from_millis(20),
            3_000_000,
            Law::Pcmu,
            &p,
        );
        let (pcm, _) = r.finish(t0 + Duration::from_millis(100));
        assert!(
            pcm[160 * 2 + 1] > 4000,
            "placed on arrival, not 6 minutes on"
        );
    }
}
