//! Voicemail beep detection on 20 ms frames, cheap enough for the RTP hot path, and built to
//! tell a beep from a held vowel.
//!
//! A beep is a steady **pure** tone between 400 and 2100 Hz (the range FreeSWITCH's
//! `mod_avmd` covers, 440–2000 Hz, with a margin; Asterisk's own `beep` prompt is 700 Hz for
//! 0.42 s). Per frame louder than `min_level_dbov`:
//! 1. the zero-crossing count estimates the frequency (a pure tone crosses zero twice per
//!    period);
//! 2. five Goertzel probes 25 Hz apart around that estimate find the peak, refined by
//!    parabolic interpolation of the log magnitudes (so a tone between probes is measured at
//!    its true strength);
//! 3. the peak must hold `purity` of the frame's energy — speech spreads its energy over
//!    harmonics and formants;
//! 4. the second harmonic must stay under `max_harmonic` of the peak: a voiced sound whose
//!    fundamental dominates a frame still carries its harmonics, a beep does not.
//!
//! A run of such frames is a beep when it lasts `min_ms` (real beeps last 0.25–1 s) at one
//! frequency: it may not drift more than `max_drift` from the run's first frequency (a
//! voice's pitch moves, an oscillator's does not).

/// Beep detector settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BeepParams {
    /// Shortest tone accepted as a beep, ms (200).
    pub min_ms: u32,
    /// Share of the frame's energy the tone must hold, 0..1 (0.75).
    pub purity: f32,
    /// Quietest tone accepted, dBov (-45).
    pub min_level_dbov: f32,
    /// Highest power at twice the tone's frequency, relative to the tone's, 0..1 (0.05).
    pub max_harmonic: f32,
    /// Largest drift of the frequency within one beep, relative to its first frame, 0..1
    /// (0.01 = 1 %).
    pub max_drift: f32,
}

impl Default for BeepParams {
    fn default() -> Self {
        Self {
            min_ms: 160,
            purity: 0.75,
            min_level_dbov: -45.0,
            max_harmonic: 0.05,
            max_drift: 0.02,
        }
    }
}

/// A detected beep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Beep {
    /// Tone frequency, Hz (rounded to 10 Hz).
    pub frequency_hz: u32,
    /// How long the tone had lasted when it was accepted, ms.
    pub duration_ms: u32,
}

/// Lowest and highest beep frequency searched, Hz.
const LOW_HZ: f32 = 400.0;
const HIGH_HZ: f32 = 2100.0;
/// Probe spacing, Hz (half the 50 Hz resolution of a 160-sample frame).
const PROBE_HZ: f32 = 25.0;

/// Goertzel powers of `samples` (8 kHz) at several frequencies in one pass, each ≈ N²·A²/4
/// for a tone of amplitude A at that frequency. The filters' recursions
/// are independent, so running them side by side per sample lets the CPU overlap them
/// (one filter at a time is a chain of dependent multiply-adds).
fn goertzel_bank<const N: usize>(samples: &[i16], hz: [f32; N]) -> [f32; N] {
    let c = hz.map(|f| 2.0 * (2.0 * std::f32::consts::PI * f / 8000.0).cos());
    let mut s1 = [0f32; N];
    let mut s2 = [0f32; N];
    for x in samples {
        let x = *x as f32;
        for k in 0..N {
            let s0 = x + c[k] * s1[k] - s2[k];
            s2[k] = s1[k];
            s1[k] = s0;
        }
    }
    let mut out = [0f32; N];
    for k in 0..N {
        out[k] = (s1[k] * s1[k] + s2[k] * s2[k] - c[k] * s1[k] * s2[k]).max(0.0);
    }
    out
}

/// One frame's tone measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tone {
    hz: f32,
    /// Share of the frame's energy at `hz`, 0..1.
    share: f32,
    /// Power at 2·`hz` over power at `hz`.
    harmonic: f32,
}

/// Streaming beep detector; feed it every 20 ms frame.
#[derive(Debug, Clone)]
pub struct BeepDetector {
    p: BeepParams,
    run_hz: Option<f32>,
    run_ms: u32,
    /// Frames in a row without the tone inside a run (a lost packet).
    misses: u32,
    reported: bool,
}

impl BeepDetector {
    /// A detector with these settings.
    pub fn new(p: BeepParams) -> Self {
        Self {
            p,
            run_hz: None,
            run_ms: 0,
            misses: 0,
            reported: false,
        }
    }

    /// The frame's tone, if it is loud enough and in the beep band.
    fn measure(&self, samples: &[i16]) -> Option<Tone> {
        let n = samples.len() as f32;
        if samples.len() < 80 {
            return None;
        }
        let energy: f32 = samples.iter().map(|s| (*s as f32) * (*s as f32)).sum();
        if energy <= 0.0 {
            return None;
        }
        let dbov = 20.0 * ((energy / n).sqrt() / 32768.0).log10();
        if dbov < self.p.min_level_dbov {
            return None;
        }
        let crossings = samples
            .windows(2)
            .filter(|w| (w[0] < 0) != (w[1] < 0))
            .count() as f32;
        let f_est = crossings * 8000.0 / (2.0 * n);
        if !(LOW_HZ - 50.0..=HIGH_HZ + 50.0).contains(&f_est) {
            return None;
        }
        let freqs: [f32; 5] = std::array::from_fn(|k| f_est + PROBE_HZ * (k as f32 - 2.0));
        let powers = goertzel_bank(samples, freqs);
        let probes: [(f32, f32); 5] = std::array::from_fn(|k| (freqs[k], powers[k]));
        let k = (0..5)
            .max_by(|a, b| probes[*a].1.total_cmp(&probes[*b].1))
            .unwrap_or(2);
        let (mut hz, mut peak) = probes[k];
        if (1..4).contains(&k) {
            // Parabola through the log magnitudes of the peak and its neighbours.
            let ln = |p: f32| 0.5 * p.max(1e-9).ln();
            let (a, b, c) = (ln(probes[k - 1].1), ln(peak), ln(probes[k + 1].1));
            let den = a - 2.0 * b + c;
            if den < 0.0 {
                let d = (0.5 * (a - c) / den).clamp(-0.5, 0.5);
                hz += d * PROBE_HZ;
                peak = (2.0 * (b - 0.25 * (a - c) * d)).exp();
            }
        }
        if !(LOW_HZ..=HIGH_HZ).contains(&hz) {
            return None;
        }
        let share = (2.0 * peak / (n * energy)).min(1.0);
        if share < self.p.purity {
            return Some(Tone {
                hz,
                share,
                harmonic: 1.0,
            });
        }
        let [harmonic] = goertzel_bank(samples, [2.0 * hz]);
        let harmonic = harmonic / peak.max(1e-9);
        Some(Tone {
            hz,
            share,
            harmonic,
        })
    }

    /// Feeds one frame (20 ms at 8 kHz). Returns the beep once, when the tone has lasted
    /// `min_ms`; resets after the tone stops so a later beep is reported again.
    pub fn feed(&mut self, samples: &[i16]) -> Option<Beep> {
        let frame_ms = (samples.len() / 8) as u32;
        let tone = self
            .measure(samples)
            .filter(|t| t.share >= self.p.purity && t.harmonic <= self.p.max_harmonic)
            .map(|t| t.hz);
        match (tone, self.run_hz) {
            (Some(f), Some(r)) if (f - r).abs() <= self.p.max_drift * r => {
                self.run_ms += frame_ms;
                self.misses = 0;
            }
            // One frame without the tone (a lost packet, a click) does not end a beep.
            (None, Some(_)) if self.misses == 0 && self.run_ms > 0 => self.misses = 1,
            (Some(f), _) => {
                self.run_hz = Some(f);
                self.run_ms = frame_ms;
                self.misses = 0;
                self.reported = false;
            }
            (None, _) => {
                self.run_hz = None;
                self.run_ms = 0;
                self.misses = 0;
                self.reported = false;
            }
        }
        if !self.reported
            && self.run_ms >= self.p.min_ms
            && let Some(f) = self.run_hz
        {
            self.reported = true;
            return Some(Beep {
                frequency_hz: ((f / 10.0).round() * 10.0) as u32,
                duration_ms: self.run_ms,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f32, amp: f32, n: usize, phase0: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = (i + phase0) as f32 / 8000.0;
                (amp * (2.0 * std::f32::consts::PI * hz * t).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn detects_a_1khz_beep_after_min_ms() {
        let mut d = BeepDetector::new(BeepParams::default());
        let mut found = None;
        for k in 0..30 {
            if let Some(b) = d.feed(&tone(1000.0, 8000.0, 160, k * 160)) {
                found = Some((k, b));
                break;
            }
        }
        let (k, b) = found.expect("beep");
        assert_eq!(k, 7, "reported on the 8th frame (160 ms)");
        assert_eq!(b.frequency_hz, 1000);
    }

    #[test]
    fn detects_440_and_2000_hz() {
        for hz in [440.0, 2000.0] {
            let mut d = BeepDetector::new(BeepParams::default());
            let got = (0..15).find_map(|k| d.feed(&tone(hz, 6000.0, 160, k * 160)));
            let b = got.expect("beep");
            assert!((b.frequency_hz as f32 - hz).abs() <= 10.0, "{hz}: {b:?}");
        }
    }

    #[test]
    fn noise_and_speech_like_mixtures_are_not_beeps() {
        let mut d = BeepDetector::new(BeepParams::default());
        let mut seed = 1u32;
        for _ in 0..50 {
            let frame: Vec<i16> = (0..160)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    ((seed >> 16) as i16) / 4
                })
                .collect();
            assert!(d.feed(&frame).is_none());
        }
        // Two tones of equal strength (like a vowel's formants) are not a pure beep.
        for k in 0..50 {
            let a = tone(500.0, 5000.0, 160, k * 160);
            let b = tone(1300.0, 5000.0, 160, k * 160);
            let mix: Vec<i16> = a.iter().zip(&b).map(|(x, y)| x / 2 + y / 2).collect();
            assert!(d.feed(&mix).is_none());
        }
    }

    #[test]
    fn tones_between_probes_and_under_noise_are_beeps() {
        // Any frequency of the band, 12 dB under white noise, with one lost packet.
        for hz in [455.0, 712.0, 1037.0, 1490.0, 1963.0] {
            let mut d = BeepDetector::new(BeepParams::default());
            let mut seed = 9u32;
            let got = (0..20).find_map(|k| {
                let mut f = tone(hz, 8000.0, 160, k * 160);
                for s in f.iter_mut() {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    let n = (((seed >> 16) & 0x7fff) as i32 - 16384) * 1400 / 16384;
                    *s = s.saturating_add(n as i16);
                }
                if k == 4 {
                    f = vec![0; 160];
                }
                d.feed(&f)
            });
            let b = got.unwrap_or_else(|| panic!("{hz} Hz not found"));
            assert!((b.frequency_hz as f32 - hz).abs() <= 10.0, "{hz}: {b:?}");
        }
    }

    #[test]
    fn a_held_vowel_is_not_a_beep() {
        // A voiced sound at 400–450 Hz whose fundamental holds most of the energy, with the
        // harmonics a voice has (2nd at -12 dB, 3rd at -18 dB) and a pitch that moves 3 % over
        // 300 ms: Asterisk-like detectors call it a beep, this one must not.
        let mut d = BeepDetector::new(BeepParams::default());
        let mut phase = 0f32;
        for k in 0..15 {
            let f0 = 420.0 + 12.0 * (k as f32 / 15.0);
            let frame: Vec<i16> = (0..160)
                .map(|_| {
                    phase += 2.0 * std::f32::consts::PI * f0 / 8000.0;
                    (8000.0
                        * (phase.sin() + 0.25 * (2.0 * phase).sin() + 0.12 * (3.0 * phase).sin()))
                        as i16
                })
                .collect();
            assert!(d.feed(&frame).is_none(), "frame {k}");
        }
    }

    #[test]
    fn a_short_tone_is_not_a_beep() {
        // 120 ms of a pure tone (a vowel-length event) is under `min_ms`.
        let mut d = BeepDetector::new(BeepParams::default());
        for k in 0..6 {
            assert!(d.feed(&tone(440.0, 8000.0, 160, k * 160)).is_none());
        }
        assert!(d.feed(&vec![0; 160]).is_none());
        assert!(d.feed(&vec![0; 160]).is_none());
    }
}
