//! Agents and the ACD: the registrar agents' phones REGISTER with, agent states, the queue of
//! answered calls waiting for an agent, and the decisions that bridge them (the engine core
//! carries them out on call legs). All sans-IO.

pub mod agents;
pub mod core;
pub mod digest_auth;
pub mod queue;
pub mod registrar;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use self::core::{Acd, AcdAction, AcdSummary, AgentCall, MAX_CALL};
pub use agents::{AgentControlError, AgentPool, AgentStats, AgentView, Strategy};
pub use digest_auth::{DigestAlgorithm, Ha1};
pub use registrar::{Registrar, RegistrarConfig};

/// How an agent's phone is connected to customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectMode {
    /// The engine INVITEs the agent's phone for each customer (the agent's answer time adds
    /// to the customer's wait).
    PerCall,
    /// The engine calls the agent's phone once when the agent becomes reachable (registers)
    /// and keeps that call up between customers; an answered customer is bridged at once by
    /// switching the RTP relay (Vicidial's agent conference, without the conference).
    #[default]
    Persistent,
}

impl ConnectMode {
    /// `per_call` / `persistent`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectMode::PerCall => "per_call",
            ConnectMode::Persistent => "persistent",
        }
    }
}

/// One agent account.
#[derive(Debug, Clone)]
pub struct AgentAccount {
    /// Agent id = SIP username the phone registers with.
    pub id: String,
    /// Digest secret (HA1 for the registrar's realm); `None` for a static agent.
    pub ha1: Option<Ha1>,
    /// A fixed SIP URI reached through the trunk (an extension on the PBX beside us) instead
    /// of a registration: the agent is reachable from the start.
    pub static_uri: Option<String>,
}

/// The ACD settings of an engine (the `[acd]` table of a campaign; see `docs/acd.md`).
#[derive(Debug, Clone)]
pub struct AcdConfig {
    /// Registrar and digest settings.
    pub registrar: RegistrarConfig,
    /// The agents.
    pub agents: Vec<AgentAccount>,
    /// Which available agent gets the next call.
    pub strategy: Strategy,
    /// `per_call` or `persistent`.
    pub mode: ConnectMode,
    /// A queued customer not connected within this long is abandoned: the information
    /// message plays and we hang up (default 2 s, the UK Ofcom / US TSR connect rule).
    pub max_wait: Duration,
    /// How long an agent's phone may ring for an offer (per-call) or the login call.
    pub offer_timeout: Duration,
    /// After-call work after each call.
    pub wrap_up: Duration,
    /// Offers in a row not taken that pause the agent (`missed_offers`); 0: never.
    pub max_misses: u32,
    /// The information message played to an abandoned customer, 8 kHz PCM.
    pub abandon_message: Option<Arc<Vec<i16>>>,
    /// AMD `notsure` calls are queued like humans (else they follow the human action too,
    /// but are not queued).
    pub queue_not_sure: bool,
    /// In persistent mode, a failed login call is tried again after this long while the
    /// agent stays registered.
    pub login_retry: Duration,
    /// The dispositions agents may set on their calls (`sale`, `callback`, …); empty: any.
    pub dispositions: Vec<String>,
    /// Each call's wrap-up lasts until its agent sets a disposition (not `wrap_up` seconds).
    pub mandatory_disposition: bool,
    /// Music on hold for a customer the agent holds, 8 kHz PCM, looped; `None`:
    /// [`default_hold_music`].
    pub hold_music: Option<Arc<Vec<i16>>>,
}

/// The music on hold played when a campaign names none: a soft three-note chime (523, 659,
/// 784 Hz, 250 ms each at about -24 dBov, then 1.25 s of silence), 2 s, 8 kHz PCM. It tells
/// the customer the line is alive without being music anyone has to license.
pub fn default_hold_music() -> Arc<Vec<i16>> {
    static MUSIC: std::sync::LazyLock<Arc<Vec<i16>>> = std::sync::LazyLock::new(|| {
        let mut v = Vec::with_capacity(16_000);
        for hz in [523.25f64, 659.25, 783.99] {
            for n in 0..2000 {
                let t = f64::from(n) / 8000.0;
                // 10 ms raised-cosine edges: no clicks.
                let edge = (f64::from(n.min(1999 - n)) / 80.0).min(1.0);
                let env = 0.5 - 0.5 * (std::f64::consts::PI * edge).cos();
                v.push((2000.0 * env * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16);
            }
        }
        v.resize(16_000, 0);
        Arc::new(v)
    });
    MUSIC.clone()
}

/// What an agent (or a supervisor for it) does on its live call (API
/// `POST /v1/agents/{id}/call/{action}`, CLI `outdial agent call`); see docs/acd.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallControl {
    /// Tag the call (free tags; during the call or its wrap-up; they add up).
    Tag {
        /// The tags.
        tags: Vec<String>,
    },
    /// Stop relaying the agent's audio to the customer.
    Mute,
    /// Relay it again.
    Unmute,
    /// Put the customer on hold: re-INVITE `a=sendonly` (RFC 3264 §8.4), music on hold.
    Hold,
    /// Take the customer off hold: re-INVITE `a=sendrecv`, the bridge back.
    Resume,
    /// Hang up the customer (BYE); the agent goes to its wrap-up.
    HangUp,
    /// Send the customer to a number or SIP URI by REFER (RFC 3515); the agent is released.
    BlindTransfer {
        /// A number (sent to the customer's trunk host) or a `sip:` URI.
        target: String,
    },
    /// Warm transfer: the customer on hold (music), the third party (a number or `sip:` URI)
    /// called on a consultation leg and bridged to the agent when it answers.
    WarmTransfer {
        /// A number (on the customer's trunk) or a `sip:` URI.
        target: String,
    },
    /// Warm transfer: talk to the other party (the one talking goes on hold).
    Swap,
    /// Warm transfer: the three together (the engine mixes their audio).
    Merge,
    /// Warm transfer: hang up the third party and go back to the customer.
    CancelTransfer,
    /// Warm transfer: the agent leaves; the customer and the third party stay connected.
    CompleteTransfer,
    /// Start recording the call (both directions).
    Record,
    /// Stop recording it (the file is written and listed).
    StopRecording,
}

/// The agent's call after a [`CallControl`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CallControlView {
    /// The customer call (our Call-ID).
    pub call_id: String,
    /// The customer is on hold.
    pub held: bool,
    /// The agent is muted.
    pub muted: bool,
    /// The call is being recorded.
    pub recording: bool,
    /// Tags so far.
    pub tags: Vec<String>,
}

/// What an agent (or a supervisor for it) asks of the ACD, through the API or the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentAction {
    /// Out of the rotation with a reason (`break`, `lunch`, …); during a call, once its
    /// wrap-up ends.
    Pause {
        /// Shown in the agent's state and its `agent_state` event.
        reason: String,
    },
    /// Back in the rotation.
    Unpause,
    /// The disposition of the agent's current or last call (during the call or its wrap-up).
    Disposition {
        /// One of the campaign's `acd.dispositions` (any text when that list is empty).
        disposition: String,
        /// Free text kept with it.
        note: Option<String>,
    },
}

impl Default for AcdConfig {
    fn default() -> Self {
        Self {
            registrar: RegistrarConfig::default(),
            agents: Vec::new(),
            strategy: Strategy::LongestIdle,
            mode: ConnectMode::Persistent,
            max_wait: Duration::from_secs(2),
            offer_timeout: Duration::from_secs(15),
            wrap_up: Duration::from_secs(5),
            max_misses: 3,
            abandon_message: None,
            queue_not_sure: true,
            login_retry: Duration::from_secs(30),
            dispositions: Vec::new(),
            mandatory_disposition: false,
            hold_music: None,
        }
    }
}
