//! A bridged call's recording as a sans-IO state machine: G.711 payloads of both legs, each
//! placed on the recording's timeline by its RTP timestamp (a lost packet leaves silence, a
//! late one still lands where it belongs), written as one stereo WAV — the customer left,
//! the agent right — 8 kHz 16-bit PCM.
//!
//! The shell feeds it from a bounded channel in a task of its own, so recording never blocks
//! the media path: packets the writer cannot take are counted as dropped.

use std::time::{Duration, Instant};

use super::g711::Law;

/// Longest recording kept: 4 hours (the ACD's longest call), 115 MB of samples per side.
pub const MAX_RECORDING: Duration = Duration::from_secs(4 * 3600);
const MAX_SAMPLES: usize = 8 * 4 * 3600 * 1000;

/// Which channel a packet belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The customer's audio (left).
    Customer,
    /// The agent's audio (right).
    Agent,
}

#[derive(Debug, Default)]
struct Track {
    samples: Vec<i16>,
    /// (position in samples of the first packet, its RTP timestamp).
    anchor: Option<(i64, u32)>,
}

/// One call's recording. See the module documentation.
#[derive(Debug)]
pub struct CallRecorder {
    started: Instant,
    tracks: [Track; 2],
    /// Packets the shell could not queue (counted by it, reported here).
    pub dropped: u64,
}

impl CallRecorder {
    /// A recording starting at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            started: now,
            tracks: [Track::default(), Track::default()],
            dropped: 0,
        }
    }

    /// One audio payload of `side`, received at `at` with RTP timestamp `ts` (8 kHz units),
    /// encoded in `law`. The first packet of a side is placed at its arrival time; later ones
    /// at their timestamp's distance from it (a timestamp jump of more than 10 s, a new
    /// source, re-anchors on arrival time).
    pub fn push(&mut self, side: Side, at: Instant, ts: u32, law: Law, payload: &[u8]) {
        let arrival = at.saturating_duration_since(self.started).as_micros() as i64 * 8 / 1000;
        let t = &mut self.tracks[side as usize];
        let pos = match t.anchor {
            Some((p0, ts0)) => {
                let d = i64::from(ts.wrapping_sub(ts0) as i32);
                if (p0 + d - arrival).abs() > 80_000 {
                    t.anchor = Some((arrival, ts));
                    arrival
                } else {
                    p0 + d
                }
            }
            None => {
                t.anchor = Some((arrival, ts));
                arrival
            }
        };
        let Ok(pos) = usize::try_from(pos) else {
            return;
        };
        let end = pos + payload.len();
        if end > MAX_SAMPLES {
            return;
        }
        if t.samples.len() < end {
            t.samples.resize(end, 0);
        }
        law.decode_into(payload, &mut t.samples[pos..end]);
    }

    /// The recording up to `now`: interleaved stereo samples (left customer, right agent),
    /// as long as the time since the start, and that length.
    pub fn finish(self, now: Instant) -> (Vec<i16>, Duration) {
        let len = (now.saturating_duration_since(self.started).as_micros() as usize * 8 / 1000)
            .min(MAX_SAMPLES);
        let mut out = vec![0i16; len * 2];
        for (ch, t) in self.tracks.iter().enumerate() {
            for (i, s) in t.samples.iter().take(len).enumerate() {
                out[i * 2 + ch] = *s;
            }
        }
        (out, Duration::from_micros(len as u64 * 125))
    }
}

/// An 8 kHz stereo 16-bit PCM WAV file in memory from interleaved samples.
pub fn stereo_wav_bytes(interleaved: &[i16]) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::with_capacity(44 + interleaved.len() * 2));
    {
        let mut w = hound::WavWriter::new(&mut out, spec).expect("a header into memory");
        for s in interleaved {
            w.write_sample(*s).expect("a sample into memory");
        }
        w.finalize().expect("a WAV into memory");
    }
    out.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let (pcm, len) = r.finish(t0 + Duration::from_millis(500));
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
        let wav = stereo_wav_bytes(&pcm);
        let reader = hound::WavReader::new(std::io::Cursor::new(wav)).unwrap();
        assert_eq!(reader.spec().channels, 2);
        assert_eq!(reader.duration(), 4000);
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
