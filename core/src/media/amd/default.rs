//! The `default` profile: outdial's own detector, built to call fewer live people machines
//! than Asterisk's fixed-threshold word counter.
//!
//! Differences from the `asterisk` profile:
//! * **Adaptive noise floor.** A frame is speech when its RMS level (dBov) is `snr_db` above
//!   the line's noise floor — the quietest frame of the last `floor_window_ms`, rising no
//!   faster than `floor_rise_db_per_s` — and above `min_speech_dbov`. A noisy line does not
//!   look like talk and a quiet talker is not silence.
//! * **No word counting.** "Hello, who is this?" is four words and a human; Asterisk's
//!   `MAXWORDS` calls it a machine. Here only durations count: total speech (`greeting`) and
//!   the silence after it (`after_greeting_silence`).
//! * **Speech runs, not frames.** A voiced run shorter than `min_speech_ms` (a click, a burst
//!   of noise) is counted as silence, so it neither starts a greeting nor breaks a pause.
//! * **A person waits; a recording goes on.** A short utterance ("Hello?", ≤ `short_greeting`)
//!   followed by `short_greeting_silence` is a person waiting for the caller. After longer
//!   talk the silence must outlast the pauses a voicemail system leaves between its prompt
//!   files (0.5–1 s): `after_greeting_silence`. Talk still going on with short pauses when
//!   the analysis ends (`continuous_talk` by `total_analysis_time`) is a recording, not a
//!   NOTSURE.
//! * **Digital silence is not line noise.** Frames of zeros (lost packets, a muted leg) are
//!   silence but do not pull the noise floor down.
//! * **Beep.** A voicemail beep ([`BeepDetector`]: a pure, steady tone without harmonics,
//!   ≥ 160 ms) is a machine at once (`BEEP-<Hz>-<ms>`).
//!
//! The detector is a [`FrameAnalyzer`] (signal: filter, level, beep) feeding a [`Decider`]
//! (timing rules), so the timing parameters can be tuned by replaying stored features. The
//! defaults are the candidate of [`DefaultParams::tuning_grid`] chosen on the real-voice
//! corpus (`corpus.rs`, `docs/amd.md`).
//!
//! Causes use Asterisk's formats (`INITIALSILENCE-…`, `LONGGREETING-…`, `HUMAN-…`,
//! `TOOLONG-…`, `NOAUDIODATA-…`) plus `BEEP-<Hz>-<ms>` and `CONTINUOUSTALK-<talk>-<limit>`.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::beep::{Beep, BeepDetector, BeepParams};
use super::{AmdDecision, AmdResult};

/// Parameters of the default profile (ms unless stated).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DefaultParams {
    /// No speech for this long after the answer means a machine (2500).
    pub initial_silence: u32,
    /// Total talk (speech runs with their short gaps) that means a machine greeting (2000).
    pub greeting: u32,
    /// Silence after speech that means a human waiting for us (1500: longer than the
    /// 0.5–1 s pauses between the prompts of a voicemail chain)…
    pub after_greeting_silence: u32,
    /// …or this shorter silence (850) when the talk so far was no longer than
    /// `short_greeting` (a "Hello?"), so short answers are decided quickly.
    pub short_greeting_silence: u32,
    /// Longest talk that counts as a short greeting (700).
    pub short_greeting: u32,
    /// A gap shorter than this inside speech does not end the talk spurt (300).
    pub bridge_ms: u32,
    /// High-pass cut-off before the level is measured, Hz (200; 0 = off): removes hum,
    /// DC and the low rumble a telephone channel does not carry.
    pub highpass_hz: f32,
    /// Stop listening after this much audio (5000): MACHINE when the talk by then reached
    /// `continuous_talk`, else NOTSURE.
    pub total_analysis_time: u32,
    /// Talk (ms) that, still undecided at `total_analysis_time`, means a recording (2000): a
    /// person says a word or a phrase and then waits, a greeting goes on with short pauses.
    pub continuous_talk: u32,
    /// Shortest voiced run that counts as speech (60).
    pub min_speech_ms: u32,
    /// Speech must be this far above the noise floor, dB (9).
    pub snr_db: f32,
    /// Speech must be louder than this, dBov (-55).
    pub min_speech_dbov: f32,
    /// The noise floor is the quietest frame of this window (1500)…
    pub floor_window_ms: u32,
    /// …but rises no faster than this, dB per second (3), so continuous talk does not
    /// become the floor.
    pub floor_rise_db_per_s: f32,
    /// Beep detection (a beep is a machine).
    pub beep: BeepParams,
}

impl Default for DefaultParams {
    fn default() -> Self {
        Self {
            initial_silence: 2500,
            greeting: 2000,
            after_greeting_silence: 1500,
            short_greeting_silence: 850,
            short_greeting: 700,
            bridge_ms: 300,
            highpass_hz: 200.0,
            total_analysis_time: 5000,
            continuous_talk: 2000,
            min_speech_ms: 60,
            snr_db: 9.0,
            min_speech_dbov: -55.0,
            floor_window_ms: 1500,
            floor_rise_db_per_s: 3.0,
            beep: BeepParams::default(),
        }
    }
}

impl DefaultParams {
    /// The candidate decision parameters that tuning chooses from
    /// ([`super::eval::leave_one_source_out`]): the silences after short and longer talk,
    /// where short talk ends, and the talk that means a recording at the end of the
    /// analysis. Everything else stays at the defaults (the analyser's parameters must:
    /// features are computed once).
    pub fn tuning_grid() -> Vec<DefaultParams> {
        let mut v = Vec::new();
        for short_greeting_silence in [650, 750, 850] {
            for after_greeting_silence in [1300, 1500] {
                for (greeting, short_greeting) in [(2000, 700), (2400, 700)] {
                    for continuous_talk in [1200, 1600, 2000] {
                        v.push(DefaultParams {
                            short_greeting_silence,
                            after_greeting_silence,
                            greeting,
                            short_greeting,
                            continuous_talk,
                            ..DefaultParams::default()
                        });
                    }
                }
            }
        }
        v
    }

    /// The decision parameters as one line (for reports).
    pub fn describe_decision(&self) -> String {
        format!(
            "short_greeting {} ms → silence {} ms, else {} ms; greeting {} ms; continuous_talk {} ms by {} ms",
            self.short_greeting,
            self.short_greeting_silence,
            self.after_greeting_silence,
            self.greeting,
            self.continuous_talk,
            self.total_analysis_time
        )
    }
}

const FLOOR_SLOTS: usize = 256;

/// Frames at or under this level (dBov) are digital silence, not line noise.
const DIGITAL_SILENCE_DBOV: f32 = -90.0;

/// A second-order Butterworth high-pass (RBJ cookbook biquad, Q = 1/√2) at 8 kHz.
#[derive(Debug, Clone, Copy)]
struct Biquad {
    b0: f32,
    b1: f32,
    b2: f32,
    a1: f32,
    a2: f32,
    x1: f32,
    x2: f32,
    y1: f32,
    y2: f32,
}

impl Biquad {
    fn highpass(fc: f32) -> Self {
        let fc = fc.clamp(1.0, 3900.0);
        let w0 = 2.0 * std::f32::consts::PI * fc / 8000.0;
        let alpha = w0.sin() / (2.0 * std::f32::consts::FRAC_1_SQRT_2);
        let cos = w0.cos();
        let a0 = 1.0 + alpha;
        Self {
            b0: (1.0 + cos) / 2.0 / a0,
            b1: -(1.0 + cos) / a0,
            b2: (1.0 + cos) / 2.0 / a0,
            a1: -2.0 * cos / a0,
            a2: (1.0 - alpha) / a0,
            x1: 0.0,
            x2: 0.0,
            y1: 0.0,
            y2: 0.0,
        }
    }

    fn run(&mut self, x: f32) -> f32 {
        let y = self.b0 * x + self.b1 * self.x1 + self.b2 * self.x2
            - self.a1 * self.y1
            - self.a2 * self.y2;
        self.x2 = self.x1;
        self.x1 = x;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

/// What the analyser measures on one frame: everything the decision needs, so the decision
/// can be replayed over stored features with other timing parameters (the tuning in
/// [`super::eval::leave_one_source_out`] does this).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameFeatures {
    /// Frame length, ms (20 for a 160-sample frame).
    pub frame_ms: u32,
    /// RMS level after the high-pass filter, dBov (-96 for digital silence).
    pub level_dbov: f32,
    /// A beep accepted on this frame.
    pub beep: Option<Beep>,
}

/// The per-frame signal processing of the default profile: high-pass filter, level and beep
/// detection. Its parameters are `highpass_hz` and `beep` of [`DefaultParams`].
#[derive(Debug, Clone)]
pub struct FrameAnalyzer {
    highpass_hz: f32,
    hp: Biquad,
    beeps: BeepDetector,
}

impl FrameAnalyzer {
    /// An analyser with the signal parameters of `p`.
    pub fn new(p: &DefaultParams) -> Self {
        Self {
            highpass_hz: p.highpass_hz,
            hp: Biquad::highpass(p.highpass_hz),
            beeps: BeepDetector::new(p.beep),
        }
    }

    /// Measures one frame of 8 kHz 16-bit PCM.
    pub fn analyze(&mut self, samples: &[i16]) -> FrameFeatures {
        let beep = self.beeps.feed(samples);
        let digital_silence = samples.iter().all(|s| s.unsigned_abs() <= 8);
        let energy = if self.highpass_hz <= 0.0 {
            sum_of_squares(samples.iter().map(|s| *s as f32))
        } else {
            // The filter runs on every frame, digital silence too, to keep its state in step.
            let hp = &mut self.hp;
            sum_of_squares(samples.iter().map(|s| hp.run(*s as f32)))
        };
        let level_dbov = if digital_silence {
            -96.0
        } else {
            energy_dbov(energy, samples.len())
        };
        FrameFeatures {
            frame_ms: (samples.len() / 8) as u32,
            level_dbov,
            beep,
        }
    }
}

/// The decision of the default profile, over [`FrameFeatures`]: noise floor, speech runs,
/// talk spurts and the timing rules (see the module docs).
#[derive(Debug, Clone)]
pub struct Decider {
    p: DefaultParams,
    started: Instant,
    total_ms: u32,
    levels: [f32; FLOOR_SLOTS],
    level_count: usize,
    level_pos: usize,
    window_frames: usize,
    floor: Option<f32>,
    voiced_run_ms: u32,
    onset: bool,
    in_spurt: bool,
    spurt_ms: u32,
    gap_ms: u32,
    talk_ms: u32,
    silence_ms: u32,
    audio_frames: u32,
    decision: Option<AmdDecision>,
}

impl Decider {
    /// A decider whose clock starts at `answered`.
    pub fn new(p: DefaultParams, answered: Instant) -> Self {
        Self {
            p,
            started: answered,
            total_ms: 0,
            levels: [0.0; FLOOR_SLOTS],
            level_count: 0,
            level_pos: 0,
            window_frames: ((p.floor_window_ms / 20) as usize).clamp(1, FLOOR_SLOTS),
            floor: None,
            voiced_run_ms: 0,
            onset: false,
            in_spurt: false,
            spurt_ms: 0,
            gap_ms: 0,
            talk_ms: 0,
            silence_ms: 0,
            audio_frames: 0,
            decision: None,
        }
    }

    /// The decision, once made.
    pub fn decision(&self) -> Option<&AmdDecision> {
        self.decision.as_ref()
    }

    /// The quietest frame of the window. Digital silence (a lost packet played as zeros, a
    /// muted PBX leg) says nothing about the line's noise: it counts only when the window
    /// holds too few other frames (a line that is digitally silent between words), else the
    /// line noise after a lost packet would read as speech.
    fn noise_floor(&self) -> f32 {
        let n = self.level_count.min(self.window_frames);
        let (mut all, mut real, mut reals) = (f32::MAX, f32::MAX, 0);
        for k in 0..n {
            let i = (self.level_pos + FLOOR_SLOTS - 1 - k) % FLOOR_SLOTS;
            let l = self.levels[i];
            all = all.min(l);
            if l > DIGITAL_SILENCE_DBOV {
                real = real.min(l);
                reals += 1;
            }
        }
        if reals >= 5 { real } else { all }
    }

    fn decide(&mut self, now: Instant, result: AmdResult, cause: String) -> Option<AmdDecision> {
        let d = AmdDecision {
            result,
            cause,
            decision_ms: now
                .saturating_duration_since(self.started)
                .as_millis()
                .min(u32::MAX as u128) as u32,
            profile: "default",
        };
        self.decision = Some(d.clone());
        Some(d)
    }

    /// Silence needed after `talk` ms of talk to call the line a person waiting for us.
    fn silence_needed(&self, talk: u32) -> u32 {
        if talk <= self.p.short_greeting {
            self.p.short_greeting_silence
        } else {
            self.p.after_greeting_silence
        }
    }

    /// Takes one frame's features, received at `now`. Returns the decision when this frame
    /// makes it; `None` before (and after: a decision is made once).
    pub fn step(&mut self, now: Instant, f: &FrameFeatures) -> Option<AmdDecision> {
        if self.decision.is_some() {
            return None;
        }
        if let Some(d) = self.handle_timeout(now) {
            return Some(d);
        }
        self.audio_frames += 1;
        let frame_ms = f.frame_ms;
        self.total_ms = self.total_ms.saturating_add(frame_ms);
        if let Some(b) = f.beep {
            let cause = format!("BEEP-{}-{}", b.frequency_hz, b.duration_ms);
            return self.decide(now, AmdResult::Machine, cause);
        }
        let level = f.level_dbov;
        // Digital silence (a lost packet played as zeros, a muted PBX leg) says nothing
        // about the line's noise: it is silence, and it does not pull the floor down (else
        // the line noise after it would read as speech).
        self.levels[self.level_pos] = level;
        self.level_pos = (self.level_pos + 1) % FLOOR_SLOTS;
        self.level_count += 1;
        let window_min = self.noise_floor();
        let rise = self.p.floor_rise_db_per_s * frame_ms as f32 / 1000.0;
        let floor = match self.floor {
            // A floor set by digital silence was no measurement of the line's noise.
            Some(prev) if prev > DIGITAL_SILENCE_DBOV => window_min.min(prev + rise),
            _ => window_min,
        };
        self.floor = Some(floor);
        let voiced = level > DIGITAL_SILENCE_DBOV
            && level >= (floor + self.p.snr_db).max(self.p.min_speech_dbov);
        let p = self.p;
        if voiced {
            self.voiced_run_ms += frame_ms;
            if self.in_spurt {
                // Speech again inside the spurt: the short gap was part of the talk.
                self.spurt_ms += self.gap_ms + frame_ms;
                self.gap_ms = 0;
                self.silence_ms = 0;
            } else if self.voiced_run_ms >= p.min_speech_ms {
                self.in_spurt = true;
                self.onset = true;
                self.spurt_ms = self.voiced_run_ms;
                self.gap_ms = 0;
                self.silence_ms = 0;
            }
        } else {
            if !self.in_spurt && self.voiced_run_ms < p.min_speech_ms {
                // A blip too short to be speech: its frames were silence after all.
                self.silence_ms += self.voiced_run_ms;
            }
            self.voiced_run_ms = 0;
            self.silence_ms += frame_ms;
            if self.in_spurt {
                self.gap_ms += frame_ms;
                if self.gap_ms >= p.bridge_ms {
                    self.in_spurt = false;
                    self.talk_ms += self.spurt_ms;
                    self.spurt_ms = 0;
                    self.gap_ms = 0;
                }
            }
        }
        let talk = self.talk_ms + self.spurt_ms;
        if !self.onset && self.silence_ms >= p.initial_silence {
            let cause = format!("INITIALSILENCE-{}-{}", self.silence_ms, p.initial_silence);
            return self.decide(now, AmdResult::Machine, cause);
        }
        if self.onset && talk >= p.greeting {
            let cause = format!("LONGGREETING-{}-{}", talk, p.greeting);
            return self.decide(now, AmdResult::Machine, cause);
        }
        let needed = self.silence_needed(talk);
        if self.onset && self.silence_ms >= needed {
            let cause = format!("HUMAN-{}-{}", self.silence_ms, needed);
            return self.decide(now, AmdResult::Human, cause);
        }
        if self.total_ms >= p.total_analysis_time {
            // Nobody waited for us all this time: a person who answers says a word or a
            // phrase and then waits; still talking with only short pauses is a recording.
            if self.onset && talk >= p.continuous_talk {
                let cause = format!("CONTINUOUSTALK-{}-{}", talk, p.continuous_talk);
                return self.decide(now, AmdResult::Machine, cause);
            }
            let cause = format!("TOOLONG-{}", self.total_ms);
            return self.decide(now, AmdResult::NotSure, cause);
        }
        None
    }

    /// Decides NOTSURE when `total_analysis_time` passes on the wall clock (no or stalled
    /// audio: `NOAUDIODATA-…` / `TOOLONG-…`).
    pub fn handle_timeout(&mut self, now: Instant) -> Option<AmdDecision> {
        if self.decision.is_some() {
            return None;
        }
        let elapsed = now.saturating_duration_since(self.started).as_millis();
        if elapsed > self.p.total_analysis_time as u128 {
            let cause = if self.audio_frames == 0 {
                format!("NOAUDIODATA-{}", self.total_ms)
            } else {
                format!("TOOLONG-{}", self.total_ms)
            };
            return self.decide(now, AmdResult::NotSure, cause);
        }
        None
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.decision.is_none().then(|| {
            self.started
                .checked_add(Duration::from_millis(self.p.total_analysis_time as u64 + 1))
                .unwrap_or(self.started)
        })
    }
}

/// The default-profile detector: a [`FrameAnalyzer`] feeding a [`Decider`]. Feed it every
/// audio frame of the answered call.
#[derive(Debug, Clone)]
pub struct DefaultAmd {
    analyzer: FrameAnalyzer,
    decider: Decider,
    last_beep: Option<Beep>,
}

/// RMS level of a frame in dBov (full scale = 32768); -96 for digital silence.
pub fn level_dbov(samples: &[i16]) -> f32 {
    energy_dbov(
        sum_of_squares(samples.iter().map(|s| *s as f32)),
        samples.len(),
    )
}

fn sum_of_squares(xs: impl Iterator<Item = f32>) -> f64 {
    xs.map(|x| (x as f64) * (x as f64)).sum()
}

/// The RMS level in dBov of `n` samples whose squares sum to `energy`; -96 under 1 LSB RMS
/// (or for no samples).
fn energy_dbov(energy: f64, n: usize) -> f32 {
    let rms = (energy / n.max(1) as f64).sqrt();
    if rms < 1.0 {
        -96.0
    } else {
        (20.0 * (rms / 32768.0).log10()) as f32
    }
}

impl DefaultAmd {
    /// A detector whose clock starts at `answered`.
    pub fn new(p: DefaultParams, answered: Instant) -> Self {
        Self {
            analyzer: FrameAnalyzer::new(&p),
            decider: Decider::new(p, answered),
            last_beep: None,
        }
    }

    /// The decision, once made.
    pub fn decision(&self) -> Option<&AmdDecision> {
        self.decider.decision()
    }

    /// A beep heard by the last [`feed`](Self::feed), taken once.
    pub fn take_beep(&mut self) -> Option<Beep> {
        self.last_beep.take()
    }

    /// Feeds one frame of 8 kHz 16-bit PCM received at `now`. Returns the decision when this
    /// frame makes it. After the decision frames are still watched for a beep
    /// ([`take_beep`](Self::take_beep)), for voicemail drop.
    pub fn feed(&mut self, now: Instant, samples: &[i16]) -> Option<AmdDecision> {
        let f = self.analyzer.analyze(samples);
        if f.beep.is_some() {
            self.last_beep = f.beep;
        }
        self.decider.step(now, &f)
    }

    /// Decides NOTSURE when `total_analysis_time` passes on the wall clock (no or stalled
    /// audio: `NOAUDIODATA-…` / `TOOLONG-…`).
    pub fn handle_timeout(&mut self, now: Instant) -> Option<AmdDecision> {
        self.decider.handle_timeout(now)
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.decider.poll_timeout()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(seed: &mut u32, amp: i32) -> [i16; 160] {
        let mut f = [0i16; 160];
        for s in f.iter_mut() {
            *seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            *s = ((((*seed >> 16) & 0x7fff) as i32 - 16384) * amp / 16384) as i16;
        }
        f
    }

    /// (amplitude of the frame's noise-like signal, frames). Amplitude 0 = line noise only.
    fn run(line_noise: i32, script: &[(i32, u32)]) -> AmdDecision {
        run_with(DefaultParams::default(), line_noise, script)
    }

    fn run_with(p: DefaultParams, line_noise: i32, script: &[(i32, u32)]) -> AmdDecision {
        let t0 = Instant::now();
        let mut amd = DefaultAmd::new(p, t0);
        let mut seed = 7;
        let mut n = 0u64;
        for &(amp, count) in script {
            for _ in 0..count {
                n += 1;
                let mut f = noise(&mut seed, line_noise);
                if amp > 0 {
                    let v = noise(&mut seed, amp);
                    for (a, b) in f.iter_mut().zip(v) {
                        *a = a.saturating_add(b);
                    }
                }
                if let Some(d) = amd.feed(t0 + Duration::from_millis(20 * n), &f) {
                    return d;
                }
            }
        }
        panic!("no decision");
    }

    #[test]
    fn short_hello_then_silence_is_human_on_a_noisy_line() {
        // Line noise at ~-36 dBov (which Asterisk's fixed threshold calls talk), a 0.5 s
        // "hello" 15 dB above it, then silence.
        let d = run(800, &[(0, 20), (5000, 25), (0, 200)]);
        assert_eq!(d.result, AmdResult::Human, "{d:?}");
        assert_eq!(
            d.cause, "HUMAN-860-850",
            "a short hello needs only the short silence"
        );
    }

    #[test]
    fn longer_greeting_needs_the_longer_silence() {
        // 1.2 s of talk (over `short_greeting`), then silence: HUMAN after 1500 ms.
        let d = run(50, &[(0, 10), (6000, 60), (0, 100)]);
        assert_eq!(d.cause, "HUMAN-1500-1500", "{d:?}");
    }

    #[test]
    fn pauses_between_prompts_are_not_a_person_waiting() {
        // "The person at extension" (1.2 s), then digits of 0.4 s with 0.9 s pauses: a
        // voicemail chain. Each pause is shorter than the silence needed after long talk.
        let d = run(
            50,
            &[
                (0, 10),
                (6000, 60),
                (0, 45),
                (6000, 20),
                (0, 45),
                (6000, 20),
                (0, 45),
                (6000, 20),
            ],
        );
        assert_eq!(d.result, AmdResult::Machine, "{d:?}");
        assert!(d.cause.starts_with("LONGGREETING-"), "{d:?}");
    }

    #[test]
    fn short_gaps_inside_speech_are_bridged() {
        // Words with 200 ms gaps (< bridge 300 ms) are one spurt: 4 × 500 ms of talk plus the
        // gaps reaches the 2000 ms greeting, no HUMAN in the gaps.
        let w = (6000, 25);
        let g = (0, 10);
        let d = run(50, &[(0, 10), w, g, w, g, w, g, w]);
        assert!(d.cause.starts_with("LONGGREETING-2"), "{d:?}");
        assert!(d.decision_ms > 2000, "{d:?}");
    }

    #[test]
    fn continuous_talk_is_a_machine() {
        let d = run(50, &[(0, 10), (6000, 200)]);
        assert_eq!(d.result, AmdResult::Machine);
        assert_eq!(d.cause, "LONGGREETING-2000-2000");
    }

    #[test]
    fn talk_with_pauses_until_the_end_of_the_analysis_is_a_recording() {
        // With `continuous_talk` under `greeting`: 0.8 s phrases with 1.2 s pauses, never the
        // 1.5 s silence of a person waiting, never 3 s of talk before 5 s — but 2.4 s of
        // talk by then: a recording.
        let params = DefaultParams {
            greeting: 3000,
            continuous_talk: 1200,
            ..DefaultParams::default()
        };
        let p = (6000, 40);
        let g = (0, 60);
        let d = run_with(params, 50, &[(0, 5), p, g, p, g, p, g, (0, 100)]);
        assert_eq!(d.result, AmdResult::Machine, "{d:?}");
        assert!(d.cause.starts_with("CONTINUOUSTALK-"), "{d:?}");
        // A person who said two short things and is waiting: NOTSURE at worst, never MACHINE.
        let d = run_with(
            params,
            50,
            &[(0, 5), (6000, 25), (0, 40), (6000, 25), (0, 200)],
        );
        assert_ne!(d.result, AmdResult::Machine, "{d:?}");
    }

    #[test]
    fn lost_packets_do_not_make_line_noise_speech() {
        // A noisy line with a lost packet (a frame of zeros) every 400 ms around a short
        // "hello": the zeros must not become the noise floor.
        let t0 = Instant::now();
        let mut amd = DefaultAmd::new(DefaultParams::default(), t0);
        let mut seed = 3;
        let mut d = None;
        for n in 1..=300u64 {
            let mut f = noise(&mut seed, 800);
            if (20..45).contains(&n) {
                let v = noise(&mut seed, 5000);
                for (a, b) in f.iter_mut().zip(v) {
                    *a = a.saturating_add(b);
                }
            }
            if n % 20 == 0 {
                f = [0; 160];
            }
            if let Some(x) = amd.feed(t0 + Duration::from_millis(20 * n), &f) {
                d = Some(x);
                break;
            }
        }
        let d = d.expect("a decision");
        assert_eq!(d.result, AmdResult::Human, "{d:?}");
    }

    #[test]
    fn silence_and_steady_noise_are_initial_silence() {
        let d = run(50, &[(0, 300)]);
        assert_eq!(d.cause, "INITIALSILENCE-2500-2500");
        let d = run(3000, &[(0, 300)]);
        assert_eq!(
            d.cause, "INITIALSILENCE-2500-2500",
            "steady loud noise is not talk"
        );
    }

    #[test]
    fn clicks_do_not_start_a_greeting() {
        // 20 ms clicks every 400 ms during the initial silence (the high-pass filter's tail
        // makes a click at most 40 ms long, under the 60 ms `min_speech_ms`).
        let script: Vec<_> = (0..20).flat_map(|_| [(0, 19), (8000, 1)]).collect();
        let d = run(50, &script);
        assert!(d.cause.starts_with("INITIALSILENCE"), "{d:?}");
    }

    #[test]
    fn beep_is_a_machine() {
        let t0 = Instant::now();
        let mut amd = DefaultAmd::new(DefaultParams::default(), t0);
        let mut d = None;
        for k in 0..30usize {
            let f: Vec<i16> = (0..160)
                .map(|i| {
                    let t = (k * 160 + i) as f32 / 8000.0;
                    (8000.0 * (2.0 * std::f32::consts::PI * 1000.0 * t).sin()) as i16
                })
                .collect();
            if let Some(x) = amd.feed(t0 + Duration::from_millis(20 * (k as u64 + 1)), &f) {
                d = Some(x);
                break;
            }
        }
        let d = d.unwrap();
        assert_eq!(
            (d.result, d.cause.as_str()),
            (AmdResult::Machine, "BEEP-1000-160")
        );
    }
}
