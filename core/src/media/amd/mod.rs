//! Answering-machine detection (AMD), sans-IO: fed 20 ms frames of 8 kHz PCM and the time
//! each arrived, it returns one decision — `HUMAN`, `MACHINE` or `NOTSURE` — with a cause
//! string and `decision_ms` (time from the answer).
//!
//! Two profiles: [`asterisk`] reproduces Asterisk's `AMD()` decision by decision, and
//! [`default`] is outdial's own (adaptive noise floor, no word counting, beep detection).
//! Results and how they were measured: `docs/amd.md`.

pub mod asterisk;
pub mod beep;
pub mod default;

use std::time::Instant;

use serde::{Deserialize, Serialize};

pub use asterisk::{AsteriskAmd, AsteriskParams};
pub use beep::{Beep, BeepDetector, BeepParams};
pub use default::{Decider, DefaultAmd, DefaultParams, FrameAnalyzer, FrameFeatures};

/// The three outcomes of Asterisk's `AMDSTATUS` (`HANGUP` is a call event here, not a result).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmdResult {
    /// A live person.
    Human,
    /// An answering machine or voicemail (or dead air: Asterisk's INITIALSILENCE).
    Machine,
    /// No decision within `total_analysis_time`. Routed as a human (as Vicidial does).
    NotSure,
}

impl AmdResult {
    /// Asterisk's spelling: `HUMAN`, `MACHINE`, `NOTSURE`.
    pub fn as_asterisk(self) -> &'static str {
        match self {
            AmdResult::Human => "HUMAN",
            AmdResult::Machine => "MACHINE",
            AmdResult::NotSure => "NOTSURE",
        }
    }

    /// How the call is routed: NOTSURE goes where humans go.
    pub fn routed_as_human(self) -> bool {
        !matches!(self, AmdResult::Machine)
    }
}

/// One AMD decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmdDecision {
    /// The result.
    pub result: AmdResult,
    /// Asterisk-format cause, e.g. `HUMAN-800-800`, `MAXWORDS-3-2`, `BEEP-1000-120`.
    pub cause: String,
    /// Milliseconds from the answer (2xx) to the decision.
    pub decision_ms: u32,
    /// `asterisk` or `default`.
    pub profile: &'static str,
}

/// AMD settings of a campaign: which profile and its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "profile", rename_all = "snake_case", deny_unknown_fields)]
pub enum AmdConfig {
    /// outdial's detector (the default).
    Default(DefaultParams),
    /// Asterisk's `AMD()` reproduced.
    Asterisk(AsteriskParams),
    /// No detection.
    Off,
}

impl Default for AmdConfig {
    fn default() -> Self {
        AmdConfig::Default(DefaultParams::default())
    }
}

impl AmdConfig {
    /// The default parameters of a profile by name (`default`, `asterisk`).
    pub fn named(profile: &str) -> Option<Self> {
        match profile {
            "default" => Some(AmdConfig::Default(DefaultParams::default())),
            "asterisk" => Some(AmdConfig::Asterisk(AsteriskParams::default())),
            "off" => Some(AmdConfig::Off),
            _ => None,
        }
    }

    /// A detector whose clock starts at `answered` (`None` when detection is off).
    pub fn detector(&self, answered: Instant) -> Option<Detector> {
        match self {
            AmdConfig::Default(p) => {
                Some(Detector::Default(Box::new(DefaultAmd::new(*p, answered))))
            }
            AmdConfig::Asterisk(p) => Some(Detector::Asterisk(AsteriskAmd::new(*p, answered))),
            AmdConfig::Off => None,
        }
    }
}

/// A running detector of either profile.
#[derive(Debug, Clone)]
pub enum Detector {
    /// outdial's profile.
    Default(Box<DefaultAmd>),
    /// Asterisk's profile.
    Asterisk(AsteriskAmd),
}

impl Detector {
    /// Feeds one frame; see the profiles' `feed`.
    pub fn feed(&mut self, now: Instant, samples: &[i16]) -> Option<AmdDecision> {
        match self {
            Detector::Default(d) => d.feed(now, samples),
            Detector::Asterisk(d) => d.feed(now, samples),
        }
    }

    /// Wall-clock guard; see the profiles' `handle_timeout`.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<AmdDecision> {
        match self {
            Detector::Default(d) => d.handle_timeout(now),
            Detector::Asterisk(d) => d.handle_timeout(now),
        }
    }

    /// When to call [`handle_timeout`](Self::handle_timeout).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Detector::Default(d) => d.poll_timeout(),
            Detector::Asterisk(d) => d.poll_timeout(),
        }
    }

    /// The decision, once made.
    pub fn decision(&self) -> Option<&AmdDecision> {
        match self {
            Detector::Default(d) => d.decision(),
            Detector::Asterisk(d) => d.decision(),
        }
    }

    /// A beep heard on the last frame (default profile only).
    pub fn take_beep(&mut self) -> Option<Beep> {
        match self {
            Detector::Default(d) => d.take_beep(),
            Detector::Asterisk(_) => None,
        }
    }
}
