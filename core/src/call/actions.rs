//! What an answered call does with its AMD result: hang up, leave a voicemail message after the
//! beep, play a prompt, run the IVR, or carry on (the ACD will take humans from here).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::media::session::MediaSettings;

/// On a `machine` decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineAction {
    /// BYE at once (detail `amd_machine`).
    #[default]
    Hangup,
    /// Wait for the beep (at most `voicemail_wait`), play the voicemail message, then BYE
    /// (detail `voicemail_left`).
    Voicemail,
    /// Do nothing: the call stays up for its hold time.
    Continue,
}

/// On a `human` or `notsure` decision (NOTSURE is routed as a human).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HumanAction {
    /// Do nothing: the call stays up for its hold time (the ACD issue bridges it to an agent).
    #[default]
    Continue,
    /// BYE at once (detail `amd_human`).
    Hangup,
    /// Play the prompt, then BYE (detail `prompt_played`).
    Prompt,
    /// Put the call in the campaign's ACD queue for an agent (the default when the campaign
    /// has agents).
    Queue,
    /// Run the campaign's IVR application (`[ivr]`, docs/ivr.md): on the AMD decision, or
    /// on the answer when AMD is off.
    Ivr,
}

/// What `media_timeout` does (`media_timeout_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaTimeoutAction {
    /// A `media_timeout` event only; the call stays up (a trunk that stops RTP in silence).
    #[default]
    Event,
    /// The event, then BYE (detail `media_timeout`) — unless the call is on hold, by us or
    /// by the far end, when no RTP is expected.
    Hangup,
}

/// Whether and when a campaign records its calls (`recording`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingMode {
    /// Only when an agent starts it.
    #[default]
    Off,
    /// Every answered call, from the answer (the agent's side from the bridge).
    All,
    /// Calls bridged to an agent, from the bridge.
    AgentCalls,
}

/// The media side of one call: detection settings, actions and the audio they play.
#[derive(Debug, Clone, Default)]
pub struct MediaPlan {
    /// Detector and timeouts for the RTP session.
    pub settings: MediaSettings,
    /// On `machine`.
    pub on_machine: MachineAction,
    /// On `human` / `notsure`.
    pub on_human: HumanAction,
    /// The voicemail message, 8 kHz PCM.
    pub voicemail: Option<Arc<Vec<i16>>>,
    /// The prompt, 8 kHz PCM.
    pub prompt: Option<Arc<Vec<i16>>>,
    /// Longest wait for the beep before the voicemail message starts anyway.
    pub voicemail_wait: Duration,
    /// The IVR application, when `on_human` is `ivr`.
    pub ivr: Option<Arc<crate::ivr::IvrApp>>,
    /// Its prompts by file name, 8 kHz PCM ([`crate::ivr::IvrApp::prompts`]).
    pub ivr_prompts: std::collections::HashMap<std::path::PathBuf, Arc<Vec<i16>>>,
    /// Whether the call is recorded (docs/acd.md).
    pub recording: RecordingMode,
    /// What a `media_timeout` does.
    pub media_timeout_action: MediaTimeoutAction,
}
