//! Events out of the process: the live stream (`GET /v1/events`, Server-Sent Events) and
//! webhooks. Both carry the one call-event vocabulary ([`CallEventKind`]) in an envelope; the
//! run loop hands every event over once it is stored ([`Fanout`]), so a client that sees an
//! event can read it back from the API.

pub mod email;
pub mod metrics;
pub mod webhook;

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

use std::collections::HashMap;

use crate::events::{
    AgentEvent, AgentState, CallEvent, CallEventKind, CampaignEvent, WallClock, rfc3339_ms,
};

/// Envelope type of call events.
pub const CALL_STATUS: &str = "DIALER.CALL_STATUS";
/// Envelope type of agent state changes.
pub const AVAILABILITY: &str = "USER.AVAILABILITY_CHANGED";
/// Envelope type of campaign events (auto-pause, its release).
pub const CAMPAIGN_STATUS: &str = "DIALER.CAMPAIGN_STATUS";
/// Envelope type of an agent call's details after its wrap-up (`dialer_sync` events).
pub const SYNC: &str = "DIALER.SYNC";

/// One event as the live stream and webhooks send it:
/// `{"type":"DIALER.CALL_STATUS","payload":{…}}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveEvent {
    /// [`CALL_STATUS`], [`AVAILABILITY`], [`CAMPAIGN_STATUS`] or [`SYNC`].
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The event.
    pub payload: Payload,
    /// Its place in the process's live stream (1, 2, …; 0 until sent): the SSE `id:`, which a
    /// client hands back as `Last-Event-ID` to resume.
    #[serde(skip)]
    pub seq: u64,
}

/// How many recent live events are kept for clients resuming with `Last-Event-ID`.
pub const RECENT_EVENTS: usize = 10_000;

static LIVE_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static RECENT: std::sync::Mutex<std::collections::VecDeque<Arc<LiveEvent>>> =
    std::sync::Mutex::new(std::collections::VecDeque::new());

/// The live events kept (the last [`RECENT_EVENTS`]) that came after `seq`, oldest first.
pub fn live_events_after(seq: u64) -> Vec<Arc<LiveEvent>> {
    let recent = RECENT.lock().expect("recent live events");
    let start = recent.partition_point(|e| e.seq <= seq);
    recent.range(start..).cloned().collect()
}

/// What a [`LiveEvent`] carries.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    /// The campaign's id in the store.
    pub campaign_id: i64,
    /// The campaign's name.
    pub campaign: String,
    /// Our Call-ID of the customer call (agent events: the call involved, if any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// The lead (call events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead_id: Option<i64>,
    /// The lead's number (call events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// Attempt number of the lead (call events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_no: Option<u32>,
    /// The agent (agent events, and call events about an agent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The event's name: a call event's `type` (`ringing`, `terminated`, …), an agent's
    /// new state (`available`, `wrap_up`, …) or a campaign event's `type` (`auto_paused`, …);
    /// for an agent call's flow (`call_status` events) the flow's status as the bus spells
    /// it (`ringing`, `connected`, `onHold`, `transferring`, `ended`).
    pub status: String,
    /// `call_status` events: the agent call's flow (`regular`, `blindTransfer`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
    /// When it happened, RFC 3339 UTC with milliseconds.
    pub at: String,
    /// The whole event (its `type` and fields, as stored).
    pub event: Value,
    /// `ivr_recorded`: the lead's call-list columns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Value>,
    /// `ivr_recorded`, on the webhook only: the recording itself (the live stream carries
    /// the event without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording: Option<Arc<Recording>>,
    /// `terminated`: the call's talk time (answer → end), ms; none for a call not answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// `terminated`: the call's AMD result (`human`, `machine`, `not_sure`), if AMD decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amd_result: Option<String>,
    /// `terminated`: true when the lead is final, false when it will be dialled again;
    /// none for a call without a lead decision (an agent's leg, an inbound call).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lead_final: Option<bool>,
}

/// What call events carry beyond the stored events, by Call-ID (see [`Fanout::publish`]).
#[derive(Debug, Default)]
pub struct Extras {
    /// `ivr_recorded`: the lead's attributes and the recording.
    pub recordings: HashMap<String, RecordingExtras>,
    /// `terminated`: talk time, AMD result, lead final.
    pub finals: HashMap<String, FinalFacts>,
}

/// What a `terminated` event carries beyond the stored event ([`Payload`]'s `duration_ms`,
/// `amd_result`, `lead_final`), by Call-ID.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FinalFacts {
    /// Talk time, ms.
    pub duration_ms: Option<u64>,
    /// AMD result.
    pub amd_result: Option<String>,
    /// The lead is final.
    pub lead_final: Option<bool>,
}

/// A recording in a webhook body.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    /// `audio/wav` (8 kHz mono 16-bit PCM).
    pub content_type: &'static str,
    /// The WAV file, base64 (RFC 4648, with padding).
    pub base64: String,
}

impl LiveEvent {
    /// A call event of campaign `campaign_id`.
    pub fn call(
        campaign_id: i64,
        campaign: &str,
        ev: &CallEvent,
        number: Option<&str>,
        clock: &WallClock,
    ) -> Self {
        let event = serde_json::to_value(&ev.kind).unwrap_or(Value::Null);
        let agent = event
            .get("agent")
            .and_then(|a| a.as_str())
            .map(str::to_string);
        let text = |k: &str| event.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let (kind, flow, status) = match &ev.kind {
            CallEventKind::DialerSync(_) => (SYNC, None, ev.kind.name().to_string()),
            CallEventKind::CallStatus { .. } => (
                CALL_STATUS,
                text("flow"),
                text("status").unwrap_or_default(),
            ),
            k => (CALL_STATUS, None, k.name().to_string()),
        };
        LiveEvent {
            seq: 0,
            kind,
            payload: Payload {
                campaign_id,
                campaign: campaign.to_string(),
                call_id: Some(ev.call_id.clone()),
                lead_id: Some(ev.attempt.lead_id),
                number: number.map(str::to_string),
                attempt_no: Some(ev.attempt.attempt_no),
                agent,
                status,
                flow,
                at: rfc3339_ms(clock.to_utc(ev.at)),
                event,
                attributes: None,
                recording: None,
                duration_ms: None,
                amd_result: None,
                lead_final: None,
            },
        }
    }

    /// An agent state change seen by campaign `campaign_id`'s engine.
    pub fn agent(campaign_id: i64, campaign: &str, ev: &AgentEvent, clock: &WallClock) -> Self {
        LiveEvent {
            seq: 0,
            kind: AVAILABILITY,
            payload: Payload {
                campaign_id,
                campaign: campaign.to_string(),
                call_id: ev.call_id.clone(),
                lead_id: None,
                number: None,
                attempt_no: None,
                agent: Some(ev.agent.clone()),
                status: ev.state.as_str().to_string(),
                flow: None,
                at: rfc3339_ms(clock.to_utc(ev.at)),
                event: serde_json::to_value(ev).unwrap_or(Value::Null),
                attributes: None,
                recording: None,
                duration_ms: None,
                amd_result: None,
                lead_final: None,
            },
        }
    }
}

impl LiveEvent {
    /// An event of campaign `campaign_id` as a whole.
    pub fn campaign(
        campaign_id: i64,
        campaign: &str,
        ev: &CampaignEvent,
        clock: &WallClock,
    ) -> Self {
        LiveEvent {
            seq: 0,
            kind: CAMPAIGN_STATUS,
            payload: Payload {
                campaign_id,
                campaign: campaign.to_string(),
                call_id: None,
                lead_id: None,
                number: None,
                attempt_no: None,
                agent: None,
                status: ev.kind.name().to_string(),
                flow: None,
                at: rfc3339_ms(clock.to_utc(ev.at)),
                event: serde_json::to_value(&ev.kind).unwrap_or(Value::Null),
                attributes: None,
                recording: None,
                duration_ms: None,
                amd_result: None,
                lead_final: None,
            },
        }
    }
}

/// What an `ivr_recorded` event carries beyond the stored event, by Call-ID: the lead's
/// attributes, and the recording (read from its file) for the webhook.
pub type RecordingExtras = (Value, Option<Arc<Recording>>);

/// Where a run's stored events go next: the live stream, and the campaign's webhook.
pub struct Fanout {
    /// The live stream's channel (every subscriber gets every event; a slow one skips).
    pub live: Option<broadcast::Sender<Arc<LiveEvent>>>,
    /// The campaign's webhook queue.
    pub webhook: Option<webhook::WebhookQueue>,
    /// Campaign id and name.
    pub campaign_id: i64,
    /// Campaign name.
    pub campaign: String,
    /// The campaign's call-event series ([`metrics::CallEventMetrics::new`] after the
    /// recorder is installed).
    pub metrics: metrics::CallEventMetrics,
}

impl Fanout {
    /// True when nothing takes the events further (no webhook, no live stream).
    pub fn is_idle(&self) -> bool {
        self.webhook.is_none() && self.live.is_none()
    }

    /// Everything that follows a batch being stored: the metrics count it, then each event
    /// goes to the webhook and the live stream. `agents` is every agent's state after the
    /// batch; `number` gives a lead's number by its id.
    pub fn publish<'a>(
        &self,
        clock: &WallClock,
        events: &[CallEvent],
        agent_events: &[AgentEvent],
        agents: &HashMap<String, AgentState>,
        number: impl Fn(i64) -> Option<&'a str>,
        extras: &Extras,
    ) {
        for ev in events {
            self.metrics.record(&ev.kind);
        }
        if !agent_events.is_empty() {
            metrics::record_agents(&self.campaign, agents);
        }
        if let Some(w) = &self.webhook {
            metrics::record_webhook(&self.campaign, &w.stats);
        }
        if self.is_idle() {
            return;
        }
        for ev in events {
            let n = number(ev.attempt.lead_id);
            let mut live = LiveEvent::call(self.campaign_id, &self.campaign, ev, n, clock);
            if let Some((attributes, recording)) = extras.recordings.get(&ev.call_id)
                && matches!(ev.kind, CallEventKind::IvrRecorded { .. })
            {
                live.payload.attributes = Some(attributes.clone());
                live.payload.recording = recording.clone();
            }
            if let Some(f) = extras.finals.get(&ev.call_id)
                && matches!(ev.kind, CallEventKind::Terminated { .. })
            {
                live.payload.duration_ms = f.duration_ms;
                live.payload.amd_result = f.amd_result.clone();
                live.payload.lead_final = f.lead_final;
            }
            self.send(live);
        }
        for ev in agent_events {
            self.send(LiveEvent::agent(
                self.campaign_id,
                &self.campaign,
                ev,
                clock,
            ));
        }
    }

    /// Campaign events, once stored: to the webhook and the live stream.
    pub fn publish_campaign(&self, clock: &WallClock, events: &[CampaignEvent]) {
        for ev in events {
            metrics::record_campaign_event(&self.campaign, ev.kind.name());
            if !self.is_idle() {
                self.send(LiveEvent::campaign(
                    self.campaign_id,
                    &self.campaign,
                    ev,
                    clock,
                ));
            }
        }
    }

    /// Hands one event on (never waits). A recording goes to the webhook only.
    fn send(&self, mut ev: LiveEvent) {
        if let Some(w) = &self.webhook {
            w.offer(&ev);
        }
        ev.payload.recording = None;
        if let Some(l) = &self.live {
            // Numbered and kept even with nobody listening: a client between two connections
            // resumes from its Last-Event-ID.
            {
                let mut recent = RECENT.lock().expect("recent live events");
                ev.seq = LIVE_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                let ev = Arc::new(ev);
                if recent.len() == RECENT_EVENTS {
                    recent.pop_front();
                }
                recent.push_back(ev.clone());
                // Sent under the lock: subscribers see the numbers in order.
                if l.receiver_count() > 0 {
                    let _ = l.send(ev);
                }
            }
        }
    }
}
