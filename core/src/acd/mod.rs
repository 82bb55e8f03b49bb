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
        }
    }
}
