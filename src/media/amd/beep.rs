//! Voicemail beep detection: a Goertzel filter bank over 400–2100 Hz (the range FreeSWITCH's
//! `mod_avmd` covers, 440–2000 Hz, with a margin) on 20 ms frames. To stay cheap in the hot
//! path, quiet frames are skipped and only the five bins around the zero-crossing estimate of
//! the frequency are computed. A beep is a steady pure
//! tone: one bin holds most of the frame's energy, at the same frequency (±1 bin), for at
//! least `min_ms`, loud enough above the line's floor.

/// Beep detector settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BeepParams {
    /// Shortest tone accepted as a beep, ms (120).
    pub min_ms: u32,
    /// Share of the frame's energy the strongest bin must hold, 0..1 (0.6).
    pub purity: f32,
    /// Quietest tone accepted, dBov (-45).
    pub min_level_dbov: f32,
}

impl Default for BeepParams {
    fn default() -> Self {
        Self {
            min_ms: 120,
            purity: 0.6,
            min_level_dbov: -45.0,
        }
    }
}

/// A detected beep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Beep {
    /// Tone frequency of the bin it was found in, Hz.
    pub frequency_hz: u32,
    /// How long the tone had lasted when it was accepted, ms.
    pub duration_ms: u32,
}

/// Bin spacing: 50 Hz, from 400 to 2100 Hz (35 bins).
const FIRST_HZ: f32 = 400.0;
const STEP_HZ: f32 = 50.0;
const BINS: usize = 35;

/// Streaming beep detector; feed it every 20 ms frame.
#[derive(Debug, Clone)]
pub struct BeepDetector {
    p: BeepParams,
    coeffs: [f32; BINS],
    run_bin: Option<usize>,
    run_ms: u32,
    reported: bool,
}

impl BeepDetector {
    /// A detector with these settings.
    pub fn new(p: BeepParams) -> Self {
        let mut coeffs = [0f32; BINS];
        for (i, c) in coeffs.iter_mut().enumerate() {
            let f = FIRST_HZ + STEP_HZ * i as f32;
            *c = 2.0 * (2.0 * std::f32::consts::PI * f / 8000.0).cos();
        }
        Self {
            p,
            coeffs,
            run_bin: None,
            run_ms: 0,
            reported: false,
        }
    }

    /// The strongest bin of a frame and its share of the frame energy (Goertzel power of a
    /// pure tone ≈ N²·A²/4, frame energy Σx² ≈ N·A²/2, so share = 2·power/(N·Σx²)).
    fn strongest(&self, samples: &[i16]) -> Option<(usize, f32, f32)> {
        let n = samples.len() as f32;
        if samples.is_empty() {
            return None;
        }
        let energy: f32 = samples.iter().map(|s| (*s as f32) * (*s as f32)).sum();
        if energy <= 0.0 {
            return None;
        }
        let rms = (energy / n).sqrt();
        let dbov = 20.0 * (rms / 32768.0).log10();
        if dbov < self.p.min_level_dbov {
            return Some((0, 0.0, dbov));
        }
        // A pure tone crosses zero twice per period: the zero-crossing count locates it
        // within a bin or two, so only the bins around that estimate are computed.
        let crossings = samples
            .windows(2)
            .filter(|w| (w[0] < 0) != (w[1] < 0))
            .count() as f32;
        let f_est = crossings * 8000.0 / (2.0 * n);
        if !(FIRST_HZ - 2.0 * STEP_HZ..=FIRST_HZ + STEP_HZ * (BINS as f32 + 1.0)).contains(&f_est) {
            return Some((0, 0.0, dbov));
        }
        let centre = ((f_est - FIRST_HZ) / STEP_HZ)
            .round()
            .clamp(0.0, (BINS - 1) as f32) as usize;
        let lo = centre.saturating_sub(2);
        let hi = (centre + 2).min(BINS - 1);
        let mut best = (0usize, 0f32);
        for (i, c) in self.coeffs.iter().enumerate().take(hi + 1).skip(lo) {
            let (mut s1, mut s2) = (0f32, 0f32);
            for x in samples {
                let s0 = *x as f32 + c * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            let power = s1 * s1 + s2 * s2 - c * s1 * s2;
            if power > best.1 {
                best = (i, power);
            }
        }
        let share = 2.0 * best.1 / (n * energy);
        Some((best.0, share, dbov))
    }

    /// Feeds one frame (20 ms at 8 kHz). Returns the beep once, when the tone has lasted
    /// `min_ms`; resets after the tone stops so a later beep is reported again.
    pub fn feed(&mut self, samples: &[i16]) -> Option<Beep> {
        let frame_ms = (samples.len() / 8) as u32;
        let tone = self
            .strongest(samples)
            .filter(|(_, share, dbov)| *share >= self.p.purity && *dbov >= self.p.min_level_dbov)
            .map(|(bin, _, _)| bin);
        match (tone, self.run_bin) {
            (Some(b), Some(r)) if b.abs_diff(r) <= 1 => self.run_ms += frame_ms,
            (Some(b), _) => {
                self.run_bin = Some(b);
                self.run_ms = frame_ms;
                self.reported = false;
            }
            (None, _) => {
                self.run_bin = None;
                self.run_ms = 0;
                self.reported = false;
            }
        }
        if !self.reported
            && self.run_ms >= self.p.min_ms
            && let Some(b) = self.run_bin
        {
            self.reported = true;
            return Some(Beep {
                frequency_hz: (FIRST_HZ + STEP_HZ * b as f32) as u32,
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
        for k in 0..20 {
            if let Some(b) = d.feed(&tone(1000.0, 8000.0, 160, k * 160)) {
                found = Some((k, b));
                break;
            }
        }
        let (k, b) = found.expect("beep");
        assert_eq!(k, 5, "reported on the 6th frame (120 ms)");
        assert_eq!(b.frequency_hz, 1000);
    }

    #[test]
    fn detects_440_and_2000_hz() {
        for hz in [440.0, 2000.0] {
            let mut d = BeepDetector::new(BeepParams::default());
            let got = (0..10).find_map(|k| d.feed(&tone(hz, 6000.0, 160, k * 160)));
            let b = got.expect("beep");
            assert!((b.frequency_hz as f32 - hz).abs() <= 50.0, "{hz}: {b:?}");
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
}
