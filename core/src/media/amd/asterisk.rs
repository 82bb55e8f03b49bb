//! The `asterisk` profile: a frame-by-frame reproduction of Asterisk's `AMD()` application
//! (`apps/app_amd.c`, `isAnsweringMachine()`), so its decisions and cause strings can be
//! compared line by line with Asterisk or Vicidial logs.
//!
//! What is reproduced, including the subtleties:
//! * Silence per frame as `ast_dsp_silence()` decides it: the average absolute amplitude of
//!   the frame against `silence_threshold`; silence accumulates across consecutive silent
//!   frames and restarts at 0 after a voiced one.
//! * `iTotalTime` grows by each frame's length; reaching `total_analysis_time` gives
//!   `NOTSURE`/`TOOLONG-<total>` before the frame is analysed.
//! * Voice: `voiceDuration` (total voice) never resets, so `greeting` caps all talk, not only
//!   the first word; a word is counted when consecutive voice reaches `min_word_length`
//!   coming from silence; `MAXWORDS` fires when the count is strictly above
//!   `maximum_number_of_words`; `MAXWORDLENGTH` when consecutive voice reaches
//!   `maximum_word_length` (its cause has no second number).
//! * Check order per voiced frame: word count, MAXWORDLENGTH, MAXWORDS, LONGGREETING; per
//!   silent frame: state to silence (after `between_words_silence`), INITIALSILENCE, HUMAN.
//! * Wall-clock guard: if `total_analysis_time` passes in real time, `NOTSURE` with
//!   `NOAUDIODATA-<total>` when no audio frame came at all, else `TOOLONG-<total>`.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{AmdDecision, AmdResult};

/// The parameters of Asterisk's `AMD()` (names of `amd.conf`; all in ms except the
/// threshold and the word count). Defaults are those of `amd.conf.sample` / `app_amd.c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AsteriskParams {
    /// Silence before the first word that means a machine, ms (2500).
    pub initial_silence: u32,
    /// Longest total talk for a human, ms (1500).
    pub greeting: u32,
    /// Silence after the greeting that means a human, ms (800).
    pub after_greeting_silence: u32,
    /// Give up after this much audio, ms (5000).
    pub total_analysis_time: u32,
    /// Shortest voice run that counts as a word, ms (100).
    pub min_word_length: u32,
    /// Silence that separates words, ms (50).
    pub between_words_silence: u32,
    /// More words than this means a machine (2).
    pub maximum_number_of_words: u32,
    /// Average absolute amplitude (16-bit) below which a frame is silent (256).
    pub silence_threshold: u32,
    /// A single word this long means a machine, ms (5000).
    pub maximum_word_length: u32,
}

impl Default for AsteriskParams {
    fn default() -> Self {
        Self {
            initial_silence: 2500,
            greeting: 1500,
            after_greeting_silence: 800,
            total_analysis_time: 5000,
            min_word_length: 100,
            between_words_silence: 50,
            maximum_number_of_words: 2,
            silence_threshold: 256,
            maximum_word_length: 5000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WordState {
    InWord,
    InSilence,
}

/// The Asterisk-compatible detector. Feed it every audio frame of the answered call.
#[derive(Debug, Clone)]
pub struct AsteriskAmd {
    p: AsteriskParams,
    started: Instant,
    total_time: u32,
    dsp_silence: u32,
    silence_duration: u32,
    consecutive_voice: u32,
    voice_duration: u32,
    words: u32,
    state: WordState,
    in_initial_silence: bool,
    in_greeting: bool,
    audio_frames: u32,
    decision: Option<AmdDecision>,
}

impl AsteriskAmd {
    /// A detector whose clock starts at `answered` (the 2xx).
    pub fn new(p: AsteriskParams, answered: Instant) -> Self {
        Self {
            p,
            started: answered,
            total_time: 0,
            dsp_silence: 0,
            silence_duration: 0,
            consecutive_voice: 0,
            voice_duration: 0,
            words: 0,
            // app_amd.c starts in STATE_IN_WORD.
            state: WordState::InWord,
            in_initial_silence: true,
            in_greeting: false,
            audio_frames: 0,
            decision: None,
        }
    }

    /// The decision, once made.
    pub fn decision(&self) -> Option<&AmdDecision> {
        self.decision.as_ref()
    }

    fn decide(&mut self, now: Instant, result: AmdResult, cause: String) -> Option<AmdDecision> {
        let d = AmdDecision {
            result,
            cause,
            decision_ms: ms_since(self.started, now),
            profile: "asterisk",
        };
        self.decision = Some(d.clone());
        Some(d)
    }

    /// Feeds one frame of 8 kHz 16-bit PCM received at `now`. Returns the decision when this
    /// frame makes it (once; later frames return `None`).
    pub fn feed(&mut self, now: Instant, samples: &[i16]) -> Option<AmdDecision> {
        if self.decision.is_some() {
            return None;
        }
        if let Some(d) = self.wall_clock_check(now) {
            return Some(d);
        }
        self.audio_frames += 1;
        let frame_ms = (samples.len() / 8) as u32;
        self.total_time += frame_ms;
        if self.total_time >= self.p.total_analysis_time {
            let cause = format!("TOOLONG-{}", self.total_time);
            return self.decide(now, AmdResult::NotSure, cause);
        }
        // ast_dsp_silence(): average absolute amplitude against the threshold.
        let sum: u64 = samples
            .iter()
            .map(|s| (*s as i32).unsigned_abs() as u64)
            .sum();
        let avg = if samples.is_empty() {
            0
        } else {
            sum / samples.len() as u64
        };
        if avg < self.p.silence_threshold as u64 {
            self.dsp_silence += frame_ms;
        } else {
            self.dsp_silence = 0;
        }
        self.analyse(now, frame_ms)
    }

    /// Feeds `ms` of comfort noise (RTP payload type 13) or a gap Asterisk would see as a CNG
    /// frame: it counts as silence.
    pub fn feed_comfort_noise(&mut self, now: Instant, ms: u32) -> Option<AmdDecision> {
        if self.decision.is_some() {
            return None;
        }
        if let Some(d) = self.wall_clock_check(now) {
            return Some(d);
        }
        self.audio_frames += 1;
        self.total_time += ms;
        if self.total_time >= self.p.total_analysis_time {
            let cause = format!("TOOLONG-{}", self.total_time);
            return self.decide(now, AmdResult::NotSure, cause);
        }
        self.dsp_silence += ms;
        self.analyse(now, ms)
    }

    fn analyse(&mut self, now: Instant, frame_ms: u32) -> Option<AmdDecision> {
        let p = self.p;
        if self.dsp_silence > 0 {
            self.silence_duration = self.dsp_silence;
            if self.silence_duration >= p.between_words_silence {
                self.state = WordState::InSilence;
                self.consecutive_voice = 0;
            }
            if self.in_initial_silence && self.silence_duration >= p.initial_silence {
                let cause = format!(
                    "INITIALSILENCE-{}-{}",
                    self.silence_duration, p.initial_silence
                );
                return self.decide(now, AmdResult::Machine, cause);
            }
            if self.silence_duration >= p.after_greeting_silence && self.in_greeting {
                let cause = format!(
                    "HUMAN-{}-{}",
                    self.silence_duration, p.after_greeting_silence
                );
                return self.decide(now, AmdResult::Human, cause);
            }
        } else {
            self.consecutive_voice += frame_ms;
            self.voice_duration += frame_ms;
            if self.consecutive_voice >= p.min_word_length && self.state == WordState::InSilence {
                self.words += 1;
                self.state = WordState::InWord;
            }
            if self.consecutive_voice >= p.maximum_word_length {
                let cause = format!("MAXWORDLENGTH-{}", self.consecutive_voice);
                return self.decide(now, AmdResult::Machine, cause);
            }
            if self.words > p.maximum_number_of_words {
                let cause = format!("MAXWORDS-{}-{}", self.words, p.maximum_number_of_words);
                return self.decide(now, AmdResult::Machine, cause);
            }
            if self.in_greeting && self.voice_duration >= p.greeting {
                let cause = format!("LONGGREETING-{}-{}", self.voice_duration, p.greeting);
                return self.decide(now, AmdResult::Machine, cause);
            }
            if self.voice_duration >= p.min_word_length {
                self.silence_duration = 0;
            }
            if self.consecutive_voice >= p.min_word_length && !self.in_greeting {
                self.in_initial_silence = false;
                self.in_greeting = true;
            }
        }
        None
    }

    fn wall_clock_check(&mut self, now: Instant) -> Option<AmdDecision> {
        if ms_since(self.started, now) > self.p.total_analysis_time {
            let cause = if self.audio_frames == 0 {
                format!("NOAUDIODATA-{}", self.total_time)
            } else {
                format!("TOOLONG-{}", self.total_time)
            };
            return self.decide(now, AmdResult::NotSure, cause);
        }
        None
    }

    /// Fires the wall-clock guard when no frame arrives (no RTP at all, or a stalled stream).
    pub fn handle_timeout(&mut self, now: Instant) -> Option<AmdDecision> {
        if self.decision.is_some() {
            return None;
        }
        self.wall_clock_check(now)
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called: just after
    /// `total_analysis_time` from the answer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.decision
            .is_none()
            .then(|| self.started + Duration::from_millis(self.p.total_analysis_time as u64 + 1))
    }
}

fn ms_since(start: Instant, now: Instant) -> u32 {
    now.saturating_duration_since(start)
        .as_millis()
        .min(u32::MAX as u128) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOUD: i16 = 2000;

    /// Feeds frames described as (voiced?, count) of 20 ms each, 20 ms apart on a virtual
    /// clock, and returns the decision with the frame time.
    fn run(p: AsteriskParams, script: &[(bool, u32)]) -> Option<AmdDecision> {
        let t0 = Instant::now();
        let mut amd = AsteriskAmd::new(p, t0);
        let voice = [LOUD; 160];
        let silence = [10i16; 160];
        let mut n = 0u64;
        for &(voiced, count) in script {
            for _ in 0..count {
                n += 1;
                let now = t0 + Duration::from_millis(20 * n);
                if let Some(d) = amd.feed(now, if voiced { &voice } else { &silence }) {
                    return Some(d);
                }
            }
        }
        None
    }

    fn cause(d: Option<AmdDecision>) -> (AmdResult, String) {
        let d = d.expect("a decision");
        (d.result, d.cause)
    }

    #[test]
    fn initial_silence() {
        // 125 silent frames = 2500 ms.
        let d = run(AsteriskParams::default(), &[(false, 200)]);
        assert_eq!(
            cause(d),
            (AmdResult::Machine, "INITIALSILENCE-2500-2500".into())
        );
    }

    #[test]
    fn human_after_short_greeting() {
        // 0.5 s silence, 0.4 s "hello", then silence: HUMAN when silence reaches 800 ms.
        let d = run(
            AsteriskParams::default(),
            &[(false, 25), (true, 20), (false, 100)],
        );
        let d = d.unwrap();
        assert_eq!(
            (d.result, d.cause.as_str()),
            (AmdResult::Human, "HUMAN-800-800")
        );
        assert_eq!(d.decision_ms, (25 + 20 + 40) * 20);
        assert_eq!(d.profile, "asterisk");
    }

    #[test]
    fn long_greeting_counts_all_talk() {
        // Runs of 400 ms voice with 100 ms gaps. The detector starts "in a word", so the first
        // run is not counted; the 4th run makes 3 words (> 2): MAXWORDS at 1300 ms of voice,
        // before total voice reaches the 1500 ms greeting.
        let w = (true, 20);
        let g = (false, 5);
        let d = run(AsteriskParams::default(), &[w, g, w, g, w, g, w]);
        assert_eq!(cause(d), (AmdResult::Machine, "MAXWORDS-3-2".into()));
        // With more words allowed, total talk (never reset) trips LONGGREETING at 1500 ms.
        let p = AsteriskParams {
            maximum_number_of_words: 10,
            ..Default::default()
        };
        let d = run(p, &[w, g, w, g, w, g, w, g]);
        assert_eq!(
            cause(d),
            (AmdResult::Machine, "LONGGREETING-1500-1500".into())
        );
    }

    #[test]
    fn maxwords_is_strictly_above_the_maximum() {
        // After leading silence every 200 ms run is a word. Two words: not > 2, so HUMAN.
        let (s, w) = ((false, 5), (true, 10));
        let d = run(AsteriskParams::default(), &[s, w, s, w, (false, 100)]);
        assert_eq!(cause(d), (AmdResult::Human, "HUMAN-800-800".into()));
        // Three words: MAXWORDS-3-2.
        let d = run(AsteriskParams::default(), &[s, w, s, w, s, w, (false, 100)]);
        assert_eq!(cause(d), (AmdResult::Machine, "MAXWORDS-3-2".into()));
    }

    #[test]
    fn max_word_length() {
        let p = AsteriskParams {
            greeting: 100_000,
            total_analysis_time: 100_000,
            ..Default::default()
        };
        let d = run(p, &[(true, 300)]);
        assert_eq!(cause(d), (AmdResult::Machine, "MAXWORDLENGTH-5000".into()));
    }

    #[test]
    fn too_long_when_analysis_time_runs_out() {
        // Alternate 80 ms voice / 80 ms silence: words of 80 ms never count (< 100 ms),
        // in_greeting never starts; total time reaches 5000 ms.
        let script: Vec<_> = (0..40).flat_map(|_| [(true, 4), (false, 4)]).collect();
        let d = run(AsteriskParams::default(), &script);
        assert_eq!(cause(d), (AmdResult::NotSure, "TOOLONG-5000".into()));
    }

    #[test]
    fn no_audio_data_at_all() {
        let t0 = Instant::now();
        let mut amd = AsteriskAmd::new(AsteriskParams::default(), t0);
        let t = amd.poll_timeout().unwrap();
        assert_eq!(t, t0 + Duration::from_millis(5001));
        let d = amd.handle_timeout(t).unwrap();
        assert_eq!(
            (d.result, d.cause.as_str()),
            (AmdResult::NotSure, "NOAUDIODATA-0")
        );
        assert!(amd.poll_timeout().is_none());
    }

    #[test]
    fn stalled_stream_is_toolong_by_wall_clock() {
        let t0 = Instant::now();
        let mut amd = AsteriskAmd::new(AsteriskParams::default(), t0);
        assert!(
            amd.feed(t0 + Duration::from_millis(20), &[10; 160])
                .is_none()
        );
        let d = amd
            .handle_timeout(t0 + Duration::from_millis(5001))
            .unwrap();
        assert_eq!(d.cause, "TOOLONG-20");
    }

    #[test]
    fn threshold_is_average_absolute_amplitude() {
        // A frame averaging exactly 256 is voice; 255 is silence.
        let p = AsteriskParams::default();
        let t0 = Instant::now();
        let mut amd = AsteriskAmd::new(p, t0);
        let mut f = [256i16; 160];
        for (i, s) in f.iter_mut().enumerate() {
            if i % 2 == 1 {
                *s = -256;
            }
        }
        amd.feed(t0, &f);
        assert_eq!(amd.dsp_silence, 0);
        amd.feed(t0, &[255; 160]);
        assert_eq!(amd.dsp_silence, 20);
    }

    #[test]
    fn short_noise_blip_restarts_initial_silence() {
        // 2.4 s silence, one voiced frame (too short for a word), then silence again: the
        // silence count restarts, so INITIALSILENCE comes 2.5 s after the blip.
        let d = run(
            AsteriskParams::default(),
            &[(false, 120), (true, 1), (false, 200)],
        )
        .unwrap();
        assert_eq!(d.cause, "INITIALSILENCE-2500-2500");
        assert_eq!(d.decision_ms, (120 + 1 + 125) * 20);
    }
}
