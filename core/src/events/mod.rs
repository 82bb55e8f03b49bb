//! The one call-event vocabulary.
//!
//! Every provisional and final SIP response, and every local decision about a call
//! (ring timeout, hold timer, far-end hang-up), comes out of the engine exactly once as a
//! [`CallEvent`]. The store, the progress display, the report and (later) webhooks, the
//! event stream and statistics all consume this one type; none of them re-derives call
//! progress from SIP.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub mod disposition;

use disposition::Disposition;

/// Which side ended the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HangupBy {
    /// The dialer: BYE after the hold time, CANCEL on ring timeout, or a local error.
    Local,
    /// The far end: a final non-2xx response, or a BYE it sent on an answered call.
    Remote,
}

impl HangupBy {
    /// The lowercase name stored in the database (`local` / `remote`).
    pub fn as_str(self) -> &'static str {
        match self {
            HangupBy::Local => "local",
            HangupBy::Remote => "remote",
        }
    }
}

/// What happened. Serialised with a `type` tag in snake_case (`"type": "ringing"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CallEventKind {
    /// The INVITE was built and handed to the transport (the attempt is already stored).
    Initiated,
    /// `100 Trying` received (RFC 3261 §21.1.1).
    Trying,
    /// `180 Ringing` received, or a `183` without SDP.
    Ringing {
        /// The provisional status code (180 or 183).
        code: u16,
    },
    /// A provisional response with an SDP body: the far end is sending early media.
    EarlyMedia {
        /// The provisional status code (usually 183).
        code: u16,
    },
    /// Any other provisional response (181 forwarded, 182 queued, 199 early dialog terminated…).
    Progress {
        /// The provisional status code.
        code: u16,
    },
    /// A 2xx final response to the INVITE: the call is up and a dialog exists.
    Answered {
        /// The 2xx code (normally 200).
        code: u16,
    },
    /// The answering-machine detector decided (see `docs/amd.md`).
    Amd {
        /// `human`, `machine` or `not_sure`.
        result: crate::media::amd::AmdResult,
        /// Asterisk-format cause (`HUMAN-860-850`, `LONGGREETING-2000-2000`, `BEEP-700-160`…).
        cause: String,
        /// Milliseconds from the answer to the decision.
        decision_ms: u32,
        /// `default` or `asterisk`.
        profile: String,
    },
    /// A voicemail beep was heard.
    Beep {
        /// Milliseconds from the answer.
        at_ms: u32,
        /// Tone frequency, Hz.
        frequency_hz: u32,
    },
    /// The far end sent a DTMF digit (RFC 4733 telephone-event).
    Dtmf {
        /// `0`–`9`, `*`, `#`, `A`–`D`.
        digit: String,
        /// Event duration, ms.
        duration_ms: u32,
    },
    /// The far end accepted our REFER (RFC 3515) and the transfer target answered (a NOTIFY
    /// with a 2xx sipfrag): we leave the call.
    Transferred {
        /// The target (the `Refer-To` URI).
        to: String,
        /// The status line code of the final NOTIFY's sipfrag.
        sip_status: u16,
    },
    /// The transfer did not happen: the REFER refused or unanswered, or the target did not
    /// answer (a non-2xx final sipfrag). The call is hung up.
    TransferFailed {
        /// The target.
        to: String,
        /// The REFER's error response, or the sipfrag's final code; none on a timeout.
        sip_status: Option<u16>,
    },
    /// An inbound call to one of the campaign's `[inbound]` numbers was accepted and
    /// answered (the incoming flow's `accepting`); `answered` and the ACD's events follow.
    Accepting {
        /// The caller: the From URI's user part.
        from: String,
        /// The number called: the Request-URI's user part.
        to: String,
    },
    /// The call entered a node of the campaign's IVR (docs/ivr.md).
    IvrEntered {
        /// The node's name.
        node: String,
    },
    /// A DTMF digit chose an action in the IVR.
    IvrChoice {
        /// The node.
        node: String,
        /// The digit (`0`–`9`, `*`, `#`, `A`–`D`).
        digit: String,
        /// `queue`, `record`, `dnc`, `hangup`, `transfer`, `callback` or `goto`.
        action: String,
    },
    /// The caller's recording in the IVR ended (`#`, `max_seconds`, or hang-up).
    IvrRecorded {
        /// The node whose choice recorded.
        node: String,
        /// Its length, ms.
        duration_ms: u32,
        /// Ended by `#` (else by `max_seconds` or the caller hanging up).
        by_key: bool,
        /// The WAV file it was written to (8 kHz mono 16-bit PCM), when written.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file: Option<String>,
    },
    /// The call left the IVR.
    IvrExit {
        /// The node it left from.
        node: String,
        /// How: `queue`, `recorded`, `dnc`, `hangup`, `transfer`, `callback`, `timeout` or
        /// `loop`.
        exit: IvrExit,
        /// `callback`: seconds until the lead is called again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        callback_after_s: Option<u32>,
    },
    /// No RTP arrived for `after_ms` after the answer or the last packet.
    MediaTimeout {
        /// The configured timeout, ms.
        after_ms: u32,
    },
    /// A prompt or voicemail message started playing to the far end.
    PlaybackStarted {
        /// `prompt`, `voicemail` or `abandon` (the ACD's abandon message).
        what: Playback,
    },
    /// RTP statistics of one leg of the call, emitted when its RTP session closes: the
    /// customer's leg just before `terminated` (answered calls), and each agent or third-party
    /// leg bridged to it (`call_id` names that leg) when that leg ends.
    MediaStats {
        /// Whose leg: `customer`, `agent` (an agent's phone) or `third_party` (a transfer's
        /// consultation leg, or the target our own call reached for a blind transfer).
        #[serde(default = "customer_leg")]
        leg: String,
        /// Packets received.
        packets: u64,
        /// Packets lost (sequence gaps).
        lost: u64,
        /// Packets late, reordered or duplicated.
        out_of_order: u64,
        /// Interarrival jitter, ms (RFC 3550 §6.4.1).
        jitter_ms: f64,
        /// Packets we sent (playback).
        sent: u64,
        /// Packets relayed from this leg to the agent leg while bridged.
        #[serde(default)]
        relayed: u64,
    },
    /// The trunk failed the INVITE (a 408/500/502/503/504, Timer B, or no response within
    /// `failover_timeout`) and the call moved to the next trunk of the group (RFC 3261
    /// §8.1.3.4/§8.1.3.5: same Call-ID, CSeq + 1).
    TrunkFailover {
        /// The trunk that failed.
        from_trunk: String,
        /// The trunk tried next.
        to_trunk: String,
        /// Its final status, `None` when it sent nothing.
        sip_status: Option<u16>,
        /// `final_response`, `timer_b` or `failover_timeout`.
        detail: FailoverReason,
    },
    /// An answered call (human or not-sure by AMD, or any answer without AMD) entered the
    /// campaign's ACD queue to wait for an agent.
    Queued {
        /// 1-based position in the queue on entry.
        position: u32,
    },
    /// The waiting call was offered to an agent: `per_call` mode INVITEs the agent's phone
    /// (a second leg, its own dialog and SIP Call-ID).
    AgentOffered {
        /// The agent's id (registrar username).
        agent: String,
        /// The SIP Call-ID of the agent leg.
        agent_call_id: String,
    },
    /// The agent did not take the offered call (no answer within `offer_timeout`, busy,
    /// rejected, unreachable); the call stays queued for the next agent.
    OfferFailed {
        /// The agent's id.
        agent: String,
        /// The agent leg's final SIP status (`None`: no final response, e.g. our CANCEL).
        sip_status: Option<u16>,
        /// `no_answer`, `busy`, `rejected`, …: the agent leg's disposition.
        detail: Disposition,
    },
    /// The call left the ACD queue.
    Dequeued {
        /// Milliseconds waited in the queue.
        wait_ms: u32,
        /// `connected`, `max_wait` or `caller_hangup`.
        reason: DequeueReason,
    },
    /// The customer and the agent are bridged (B2BUA: RTP relayed between the two legs).
    Connected {
        /// The agent's id.
        agent: String,
        /// The SIP Call-ID of the agent leg.
        agent_call_id: String,
        /// Milliseconds from queue entry to the bridge (the customer's wait).
        wait_ms: u32,
        /// `per_call` or `persistent`.
        mode: String,
        /// The two legs' codecs differ (PCMU↔PCMA transcoding).
        transcoding: bool,
    },
    /// A queued customer was never connected: the caller hung up while waiting, or waited
    /// past the campaign's `max_wait` (then the information message plays and we hang up).
    Abandoned {
        /// Milliseconds waited.
        wait_ms: u32,
        /// `caller_hangup` or `max_wait`.
        reason: DequeueReason,
    },
    /// A leg put the call on hold (re-INVITE with `a=sendonly` or `a=inactive`, RFC 3264 §8.4),
    /// or the agent put the customer on hold (our re-INVITE with `a=sendonly` towards the
    /// customer, who hears music on hold; `by` names the agent).
    Held {
        /// `customer` or `agent`: the leg that is held.
        leg: String,
        /// The SIP Call-ID of that leg.
        sip_call_id: String,
        /// The agent who put the customer on hold (absent when the far end held).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// A leg took the call off hold (re-INVITE back to `sendrecv`).
    Resumed {
        /// `customer` or `agent`.
        leg: String,
        /// The SIP Call-ID of that leg.
        sip_call_id: String,
        /// The agent who took the customer off hold (absent when the far end resumed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<String>,
    },
    /// The agent muted itself towards the customer: none of its RTP is relayed until
    /// `unmuted`.
    Muted {
        /// The agent's id.
        agent: String,
    },
    /// The agent's audio reaches the customer again.
    Unmuted {
        /// The agent's id.
        agent: String,
    },
    /// The agent tagged the call (free tags, during the call or its wrap-up; they add up).
    Tagged {
        /// The agent's id.
        agent: String,
        /// The tags given with this request.
        tags: Vec<String>,
    },
    /// Recording of the call started (the campaign's `recording` setting, or the agent).
    RecordingStarted {
        /// `campaign`, or the agent's id.
        by: String,
    },
    /// The call's recording was written: a stereo WAV, 8 kHz 16-bit, the customer left and
    /// the agent right (docs/acd.md).
    RecordingSaved {
        /// The file, under the campaign's `recordings_dir`; absent when it could not be
        /// written.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file: Option<String>,
        /// Its length, ms.
        duration_ms: u64,
        /// Packets the writer's queue had no room for (it fell behind): silence in it.
        dropped: u64,
        /// Packets more than three seconds behind their RTP timestamp's place (already
        /// written: a far end that stalled); placed on arrival instead, their side re-timed.
        #[serde(default)]
        late: u64,
    },
    /// A state of the agent's call flow, as the agent-side event bus spells it
    /// (`DIALER.CALL_STATUS` with `flow` and `status`, docs/acd.md).
    CallStatus {
        /// `regular`, `blindTransfer` or `warmTransfer`.
        flow: CallFlow,
        /// `ringing`, `connected`, `onHold`, `transferring`, `startingWarmTransfer`,
        /// `swapping`, `merging`, `ended`.
        status: FlowStatus,
        /// The agent.
        agent: String,
        /// Who the agent talks to: the customer's number (none on hold or after the end).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        active_participant: Option<String>,
        /// Who waits on hold: the customer's number while held.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inactive_participant: Option<String>,
        /// The bus's `mandatoryTagging`: the campaign's disposition is mandatory, so the agent's
        /// wrap-up lasts until it tags the call with one (`acd.mandatory_disposition`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        mandatory_tagging: bool,
    },
    /// `DIALER.SYNC`: the agent call's details once its wrap-up is over (or the run ends).
    DialerSync(Box<CallSync>),
    /// The agent set the call's disposition (its outcome for the business: `sale`,
    /// `callback`, …), during the call or its wrap-up; may come after `terminated`.
    AgentDisposition {
        /// The agent's id.
        agent: String,
        /// One of the campaign's `acd.dispositions`.
        disposition: String,
        /// The agent's free-text note.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// The call is over. Emitted once per call, the last call-progress event (only
    /// `media_stats`, from the closing RTP session, and an agent's `agent_disposition` may
    /// follow it).
    Terminated {
        /// The final SIP status of the INVITE transaction (`None` when no final response came:
        /// Timer B, or a transport error).
        sip_status: Option<u16>,
        /// The reason phrase of that final response, as received.
        reason_phrase: Option<String>,
        /// The Q.850 cause from a `Reason: Q.850;cause=N` header (RFC 3326) on the final
        /// response or on the far end's BYE/CANCEL, where present.
        q850_cause: Option<u16>,
        /// Who ended the call.
        hangup_by: HangupBy,
        /// The contact-centre outcome of the attempt (see `docs/dispositions.md`).
        disposition: Disposition,
        /// What ended the call (see [`EndReason`]): `ring_timeout`, `timer_b`, `hold_time`, `remote_bye`,
        /// `transport_error`, `no_rtp_port`…
        detail: EndReason,
        /// Seconds from a `Retry-After` header on the final response (RFC 3261 §20.33), e.g.
        /// on a trunk's 503: the campaign holds new calls that long.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u32>,
    },
}

fn customer_leg() -> String {
    "customer".to_string()
}

impl CallEventKind {
    /// The event name used in the store and on the wire (`initiated`, `trying`, …).
    pub fn name(&self) -> &'static str {
        match self {
            CallEventKind::Initiated => "initiated",
            CallEventKind::Trying => "trying",
            CallEventKind::Ringing { .. } => "ringing",
            CallEventKind::EarlyMedia { .. } => "early_media",
            CallEventKind::Progress { .. } => "progress",
            CallEventKind::Answered { .. } => "answered",
            CallEventKind::Amd { .. } => "amd",
            CallEventKind::Beep { .. } => "beep",
            CallEventKind::Dtmf { .. } => "dtmf",
            CallEventKind::MediaTimeout { .. } => "media_timeout",
            CallEventKind::Accepting { .. } => "accepting",
            CallEventKind::Transferred { .. } => "transferred",
            CallEventKind::TransferFailed { .. } => "transfer_failed",
            CallEventKind::IvrEntered { .. } => "ivr_entered",
            CallEventKind::IvrChoice { .. } => "ivr_choice",
            CallEventKind::IvrRecorded { .. } => "ivr_recorded",
            CallEventKind::IvrExit { .. } => "ivr_exit",
            CallEventKind::PlaybackStarted { .. } => "playback_started",
            CallEventKind::MediaStats { .. } => "media_stats",
            CallEventKind::TrunkFailover { .. } => "trunk_failover",
            CallEventKind::Queued { .. } => "queued",
            CallEventKind::AgentOffered { .. } => "agent_offered",
            CallEventKind::OfferFailed { .. } => "offer_failed",
            CallEventKind::Dequeued { .. } => "dequeued",
            CallEventKind::Connected { .. } => "connected",
            CallEventKind::Abandoned { .. } => "abandoned",
            CallEventKind::Held { .. } => "held",
            CallEventKind::Resumed { .. } => "resumed",
            CallEventKind::AgentDisposition { .. } => "agent_disposition",
            CallEventKind::Muted { .. } => "muted",
            CallEventKind::Unmuted { .. } => "unmuted",
            CallEventKind::Tagged { .. } => "tagged",
            CallEventKind::RecordingStarted { .. } => "recording_started",
            CallEventKind::RecordingSaved { .. } => "recording_saved",
            CallEventKind::CallStatus { .. } => "call_status",
            CallEventKind::DialerSync(_) => "dialer_sync",
            CallEventKind::Terminated { .. } => "terminated",
        }
    }
}

/// Identifies the attempt a call belongs to. Set by the campaign runner before the INVITE is
/// sent and carried unchanged on every event of the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRef {
    /// Row id of the attempt in the store.
    pub attempt_id: i64,
    /// Row id of the lead.
    pub lead_id: i64,
    /// 1-based attempt number for this lead.
    pub attempt_no: u32,
}

/// One event of one call.
#[derive(Debug, Clone, PartialEq)]
pub struct CallEvent {
    /// The SIP Call-ID of the call (our own, generated per attempt).
    pub call_id: String,
    /// The attempt this call is.
    pub attempt: AttemptRef,
    /// When it happened, on the monotonic clock the engine was driven with.
    pub at: Instant,
    /// What happened.
    pub kind: CallEventKind,
}

/// Maps the monotonic clock onto wall-clock UTC: one anchor taken at start-up, so event times
/// are monotonic and still print as RFC 3339.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    base_instant: Instant,
    base_utc: DateTime<Utc>,
}

impl WallClock {
    /// A clock that reads `utc` at the monotonic instant `at` (tests drive cores with a
    /// virtual clock anchored so).
    pub fn anchored(at: Instant, utc: DateTime<Utc>) -> Self {
        Self {
            base_instant: at,
            base_utc: utc,
        }
    }

    /// The UTC time of a monotonic instant (instants before the anchor map before it too).
    pub fn to_utc(&self, at: Instant) -> DateTime<Utc> {
        if at >= self.base_instant {
            self.base_utc + (at - self.base_instant)
        } else {
            self.base_utc - (self.base_instant - at)
        }
    }

    /// The monotonic instant of a UTC time (used to turn stored retry times back into timers).
    pub fn to_instant(&self, t: DateTime<Utc>) -> Instant {
        let delta = t - self.base_utc;
        match delta.to_std() {
            Ok(d) => self.base_instant + d,
            Err(_) => self
                .base_instant
                .checked_sub((-delta).to_std().unwrap_or_default())
                .unwrap_or(self.base_instant),
        }
    }
}

/// Formats a UTC time as RFC 3339 with milliseconds and a `Z` suffix
/// (`2026-11-23T10:00:00.123Z`): the form every timestamp is stored and reported in.
pub fn rfc3339_ms(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Reads a stored timestamp back ([`rfc3339_ms`]'s form, or any RFC 3339 time) as UTC.
/// Errors: not RFC 3339.
pub fn parse_rfc3339(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc))
}

/// An agent's state (the ACD's view; see `docs/acd.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// Not registered (or, in `persistent` mode, its phone's standing call is not up).
    Offline,
    /// Idle and reachable: can be offered a call.
    Available,
    /// A call is being offered (its phone rings).
    Reserved,
    /// Talking to a customer.
    OnCall,
    /// After-call work: not offered calls until `wrap_up` seconds pass.
    WrapUp,
    /// Taken out of the rotation, with a reason (`missed_offers`, or the agent's own).
    Paused,
}

impl AgentState {
    /// The snake_case name (`on_call`, `wrap_up`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Offline => "offline",
            AgentState::Available => "available",
            AgentState::Reserved => "reserved",
            AgentState::OnCall => "on_call",
            AgentState::WrapUp => "wrap_up",
            AgentState::Paused => "paused",
        }
    }
}

/// An agent changed state (`agent_state` events: the store, the report, later the API).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentEvent {
    /// The agent's id.
    pub agent: String,
    /// The new state.
    pub state: AgentState,
    /// Why (`registered`, `unregistered`, `expired`, `offered`, `missed_offers`, …, or the
    /// agent's own pause reason).
    pub reason: AgentReason,
    /// The customer call involved, if any (our Call-ID of the customer leg).
    pub call_id: Option<String>,
    /// When, on the engine's monotonic clock.
    #[serde(skip)]
    pub at: Instant,
}

/// Why an agent entered a state (`agent_state` events, the agent's view). A closed
/// vocabulary, except the reason an agent gives for its own pause (`break`, `lunch`, …).
/// Serialized as the bare string (`"registered"`, `"lunch"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentReason {
    /// The engine started (every agent offline).
    Start,
    /// A static agent (a fixed URI through the trunk): reachable from the start.
    Static,
    /// Its phone registered.
    Registered,
    /// Its phone unregistered (`Expires: 0`).
    Unregistered,
    /// Its registration expired without a refresh.
    Expired,
    /// Persistent mode: its standing call was answered.
    LoginCallUp,
    /// Persistent mode: its standing call ended.
    LoginCallEnded,
    /// Persistent mode: available without a standing call (taken out).
    NoLoginCall,
    /// An offer could not be placed: the agent has no contact (a momentary lack of RTP ports
    /// does not take an agent out; its offer waits for ports).
    NoContactOrPort,
    /// A call was offered to it.
    Offered,
    /// A preview call is being placed for it.
    Preview,
    /// Its preview call ended before it was connected.
    PreviewNotReached,
    /// Bridged to a customer.
    Connected,
    /// It went away during an offer.
    Unreachable,
    /// `max_misses` offers in a row not taken: paused.
    MissedOffers,
    /// An offer it did not take.
    OfferMissed,
    /// An offer withdrawn (the customer left first).
    OfferWithdrawn,
    /// Its call ended.
    CallEnded,
    /// It set the disposition, ending its wrap-up.
    DispositionSet,
    /// It unpaused.
    Unpaused,
    /// Its wrap-up time ran out.
    WrapUpDone,
    /// Its own pause, with the reason it gave.
    Paused(String),
}

impl AgentReason {
    /// The stored and serialized name (`registered`, …; a pause's own reason as given).
    pub fn as_str(&self) -> &str {
        match self {
            AgentReason::Start => "start",
            AgentReason::Static => "static",
            AgentReason::Registered => "registered",
            AgentReason::Unregistered => "unregistered",
            AgentReason::Expired => "expired",
            AgentReason::LoginCallUp => "login_call_up",
            AgentReason::LoginCallEnded => "login_call_ended",
            AgentReason::NoLoginCall => "no_login_call",
            AgentReason::NoContactOrPort => "no_contact_or_port",
            AgentReason::Offered => "offered",
            AgentReason::Preview => "preview",
            AgentReason::PreviewNotReached => "preview_not_reached",
            AgentReason::Connected => "connected",
            AgentReason::Unreachable => "unreachable",
            AgentReason::MissedOffers => "missed_offers",
            AgentReason::OfferMissed => "offer_missed",
            AgentReason::OfferWithdrawn => "offer_withdrawn",
            AgentReason::CallEnded => "call_ended",
            AgentReason::DispositionSet => "disposition_set",
            AgentReason::Unpaused => "unpaused",
            AgentReason::WrapUpDone => "wrap_up_done",
            AgentReason::Paused(r) => r,
        }
    }
}

impl std::fmt::Display for AgentReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for AgentReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Something that happened to a whole campaign (not to one call): stored in
/// `campaign_events`, sent on the live stream as `DIALER.CAMPAIGN_STATUS` and to webhooks
/// subscribed to its `type`.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignEvent {
    /// When, on the run's monotonic clock.
    pub at: Instant,
    /// What happened.
    pub kind: CampaignEventKind,
}

/// What happened to a campaign. Serialized with a `type` tag (`auto_paused`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CampaignEventKind {
    /// Dialling stopped by the pacer's auto-pause rule (`[endpoint] auto_pause_waiting` calls
    /// waited longer than `auto_pause_after` seconds).
    /// Or: no trunk is up (`reason` = `trunk_down`), every trunk having failed
    /// `trunk_down_after` calls or pings in a row.
    AutoPaused {
        /// Why: `calls_waiting` or `trunk_down`.
        reason: AutoPauseReason,
        /// Answered calls waiting for an agent at that moment (`calls_waiting`; 0 otherwise).
        #[serde(default)]
        calls_waiting: u32,
        /// The rule's threshold (more than this many waiting; 0 for `trunk_down`).
        #[serde(default)]
        threshold: u32,
        /// `trunk_down`: the trunks, each with what put it down (`network_error`,
        /// `invite_failed`, `no_response`, `ping_failed`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        trunks: Vec<TrunkDown>,
    },
    /// Dialling resumed after an auto-pause: the queue emptied and an agent was free
    /// (`agents_free`), or a trunk answered again (`trunk_up`).
    AutoResumed {
        /// Why: `agents_free` or `trunk_up`.
        reason: AutoResumeReason,
    },
    /// The campaign's `stop_at` passed: no new call from then on; the run ends once the calls
    /// in progress have.
    ScheduleEnded {
        /// The `stop_at` setting, as given (RFC 3339).
        stop_at: String,
        /// Leads of this run not final at that moment (they stay as they are).
        leads_left: u64,
    },
}

/// How a call left the IVR (`ivr_exit` events' `exit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IvrExit {
    /// To the ACD queue.
    Queue,
    /// Recorded, then hung up.
    Recorded,
    /// Put on the do-not-call list, then hung up.
    Dnc,
    /// A `hangup` choice.
    Hangup,
    /// A `transfer` choice: the call is being transferred (`transferred` or
    /// `transfer_failed` follows).
    Transfer,
    /// A `callback` choice: hung up, the lead called again later, straight to an agent.
    Callback,
    /// No digit (or none known) after the retries, then the node's `on_timeout` (hang up by
    /// default).
    Timeout,
    /// Too many `goto`s in one call (a loop in the application).
    Loop,
}

/// Why a campaign paused itself (`auto_paused` events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoPauseReason {
    /// More than `auto_pause_waiting` answered calls waited for an agent longer than
    /// `auto_pause_after` (the pacer's rule, docs/pacing.md).
    CallsWaiting,
    /// No trunk of the group is up.
    TrunkDown,
}

/// Why a campaign resumed after an auto-pause (`auto_resumed` events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoResumeReason {
    /// The queue emptied and an agent was free.
    AgentsFree,
    /// A trunk answered again.
    TrunkUp,
}

/// A trunk that is down, in an `auto_paused` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrunkDown {
    /// The trunk's name.
    pub trunk: String,
    /// What put it down: `network_error`, `no_response`, `invite_failed` or `ping_failed`.
    pub reason: String,
}

impl CampaignEventKind {
    /// The event name used in the store and on the wire (`auto_paused`, `auto_resumed`,
    /// `schedule_ended`).
    pub fn name(&self) -> &'static str {
        match self {
            CampaignEventKind::AutoPaused { .. } => "auto_paused",
            CampaignEventKind::AutoResumed { .. } => "auto_resumed",
            CampaignEventKind::ScheduleEnded { .. } => "schedule_ended",
        }
    }
}

/// The health of the trunk group, for the campaign's auto-pause: published by the engine's trunk set (`engine::trunks::TrunkSet::health`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrunkHealth {
    /// Trunks in the group.
    pub total: usize,
    /// The trunks down, with what put them down (`invite_failed`, `no_response`,
    /// `network_error`, `ping_failed`).
    pub down: Vec<(String, &'static str)>,
}

impl TrunkHealth {
    /// True when the group has trunks and none of them is up: nothing can be dialled.
    pub fn all_down(&self) -> bool {
        self.total > 0 && self.down.len() == self.total
    }
}

/// What ended a call: the `detail` of `terminated`, stored and sent as its snake_case name
/// (docs/dispositions.md lists them). A closed vocabulary: every place that ends a call names
/// one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Our BYE after the campaign's `hold_time`.
    HoldTime,
    /// The far end's BYE.
    RemoteBye,
    /// Our CANCEL after `ring_timeout`.
    RingTimeout,
    /// A final error response to the INVITE.
    FinalResponse,
    /// No response at all to the INVITE (Timer B, RFC 3261 §17.1.1.2).
    TimerB,
    /// The trunk's address refused the INVITE (ICMP) or the TCP connection failed.
    NetworkError,
    /// Our BYE got no final response.
    ByeTimeout,
    /// A 2xx crossed our CANCEL: acknowledged and hung up at once.
    AnsweredAfterCancel,
    /// Our 2xx to a far end's re-INVITE got no ACK (§13.3.1.4).
    ReinviteAckTimeout,
    /// A 2xx without a usable Contact or To-tag: acknowledged and hung up.
    #[serde(rename = "bad_2xx")]
    Bad2xx,
    /// No RTP port was free for the call.
    NoRtpPort,
    /// The run stopped (Ctrl-C, `stop`): cancelled or hung up.
    Shutdown,
    /// Found still `dialing` by the next run after a kill (set by the store).
    ProcessStopped,
    /// Our session refresh (RFC 4028) failed.
    SessionRefreshFailed,
    /// The session timer ran out without a refresh (RFC 4028).
    SessionExpired,
    /// A customer waiting for an agent past `max_wait` (after the abandon message).
    Abandoned,
    /// The customer hung up while connected to an agent.
    CustomerHangup,
    /// The offer to an agent was withdrawn (another agent took the call).
    OfferWithdrawn,
    /// The agent hung up.
    AgentHangup,
    /// AMD said machine and the campaign hangs up on machines.
    AmdMachine,
    /// AMD was not sure and the campaign hangs up then.
    AmdNotSure,
    /// AMD said human and the campaign hangs up on humans.
    AmdHuman,
    /// The voicemail message was played after the beep.
    VoicemailLeft,
    /// The prompt was played to the person who answered.
    PromptPlayed,
    /// The IVR hung up: a `hangup`, `dnc` or `record` choice done, or no digit after its
    /// retries (the `ivr_exit` event says which).
    IvrEnded,
    /// We left the call after a blind transfer by REFER succeeded.
    Transferred,
    /// We hung up after a blind transfer failed.
    TransferFailed,
    /// No RTP for `media_timeout` seconds with `media_timeout_action = "hangup"`: the far end
    /// is gone without a BYE (RTP timeout, as Asterisk's `rtptimeout`).
    MediaTimeout,
}

impl EndReason {
    /// Its stored name (`ring_timeout`, `bad_2xx`, …).
    pub fn as_str(self) -> &'static str {
        use EndReason::*;
        match self {
            HoldTime => "hold_time",
            RemoteBye => "remote_bye",
            RingTimeout => "ring_timeout",
            FinalResponse => "final_response",
            TimerB => "timer_b",
            NetworkError => "network_error",
            ByeTimeout => "bye_timeout",
            AnsweredAfterCancel => "answered_after_cancel",
            ReinviteAckTimeout => "reinvite_ack_timeout",
            Bad2xx => "bad_2xx",
            NoRtpPort => "no_rtp_port",
            Shutdown => "shutdown",
            ProcessStopped => "process_stopped",
            SessionRefreshFailed => "session_refresh_failed",
            SessionExpired => "session_expired",
            Abandoned => "abandoned",
            CustomerHangup => "customer_hangup",
            OfferWithdrawn => "offer_withdrawn",
            AgentHangup => "agent_hangup",
            AmdMachine => "amd_machine",
            AmdNotSure => "amd_not_sure",
            AmdHuman => "amd_human",
            VoicemailLeft => "voicemail_left",
            PromptPlayed => "prompt_played",
            IvrEnded => "ivr_ended",
            Transferred => "transferred",
            TransferFailed => "transfer_failed",
            MediaTimeout => "media_timeout",
        }
    }
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a call moved to the next trunk of its group (the `detail` of `trunk_failover`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailoverReason {
    /// The trunk answered a 408/500/502/503/504.
    FinalResponse,
    /// No response at all (Timer B).
    TimerB,
    /// No response within `failover_timeout`.
    FailoverTimeout,
    /// The trunk's address refused the INVITE, or its TCP connection failed.
    NetworkError,
}

/// An agent call's flow (the event bus's `flow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CallFlow {
    /// The agent and the customer.
    Regular,
    /// The agent sent the customer on to a number or URI (REFER, RFC 3515).
    BlindTransfer,
    /// The agent consults a third party with the customer on hold, then swaps between them,
    /// merges the three, or leaves the two connected.
    WarmTransfer,
}

/// A state of an agent call's flow (the event bus's `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FlowStatus {
    /// The agent's phone rings with the customer's call.
    Ringing,
    /// The agent and the customer talk.
    Connected,
    /// The customer is on hold.
    OnHold,
    /// A blind transfer was asked of the customer's side.
    Transferring,
    /// The customer is put on hold and the third party called.
    StartingWarmTransfer,
    /// The agent switches between the customer and the third party.
    Swapping,
    /// The three are being joined (a three-way call mixed by the engine).
    Merging,
    /// The agent's part of the call is over.
    Ended,
}

/// One transfer of an agent call (`DIALER.SYNC`'s history).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferRecord {
    /// `blindTransfer` or `warmTransfer`.
    pub flow: CallFlow,
    /// The number or URI.
    pub target: String,
    /// Ms from the bridge.
    pub at_ms: u64,
}

/// What `DIALER.SYNC` carries: an agent call from the agent's ringing to the end of its
/// wrap-up. Durations in ms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallSync {
    /// The agent.
    pub agent: String,
    /// The agent leg's SIP Call-ID.
    pub agent_call_id: String,
    /// Who the agent talked to last: the customer's number (none once transferred away).
    pub active_participant: Option<String>,
    /// Who was on hold when the call ended, if anyone.
    pub inactive_participant: Option<String>,
    /// The customer's INVITE → its answer.
    pub ring_ms: u64,
    /// Bridged to the agent → the end of the agent's part (hold included).
    pub talk_ms: u64,
    /// Time the customer spent on hold.
    pub hold_ms: u64,
    /// The agent's wrap-up after the call (0 without one).
    pub wrap_up_ms: u64,
    /// Every tag the agent gave, in order, without repeats.
    pub tags: Vec<String>,
    /// The agent's disposition, if set before the sync.
    pub disposition: Option<String>,
    /// Transfers, in order.
    pub transfers: Vec<TransferRecord>,
    /// The recording's file, if the call was recorded (`GET /v1/calls/{id}/recording`).
    pub recording: Option<String>,
}

/// What a call plays to the far end (`playback_started`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Playback {
    /// The campaign's prompt to a person.
    Prompt,
    /// The voicemail message after the beep.
    Voicemail,
    /// The ACD's abandon message to a customer who waited past `max_wait`.
    Abandon,
    /// A prompt of the campaign's IVR (the IVR decides what follows it).
    Ivr,
    /// Music on hold (loops until the agent takes the customer off hold).
    Hold,
}

impl Playback {
    /// Its name (`prompt`, `voicemail`, `abandon`, `ivr`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prompt => "prompt",
            Self::Voicemail => "voicemail",
            Self::Abandon => "abandon",
            Self::Ivr => "ivr",
            Self::Hold => "hold",
        }
    }

    /// Why the call ends once it has played.
    pub fn end_reason(self) -> EndReason {
        match self {
            Self::Prompt => EndReason::PromptPlayed,
            Self::Voicemail => EndReason::VoicemailLeft,
            Self::Abandon => EndReason::Abandoned,
            Self::Ivr => EndReason::IvrEnded,
            Self::Hold => EndReason::AgentHangup,
        }
    }
}

/// Why a call left the ACD queue (`dequeued`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DequeueReason {
    /// Bridged to an agent.
    Connected,
    /// Waited past the ACD's `max_wait`.
    MaxWait,
    /// The customer hung up while waiting.
    CallerHangup,
}
