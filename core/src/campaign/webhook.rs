//! A campaign's webhook settings (`[webhook]` in the campaign file, `webhook` in the API) and
//! the event types it may subscribe to; delivery is `notify::webhook`'s.

use serde::{Deserialize, Serialize};

/// A campaign's webhook (`[webhook]` in the campaign file, `webhook` in the API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Where to POST (http:// only in this build).
    pub url: String,
    /// The event types to send: call event types (`initiated`, `ringing`, `answered`,
    /// `amd`, `queued`, `connected`, `abandoned`, `terminated` — `completed` is the same as
    /// `terminated`, …) and `agent_state`; empty: all of them.
    #[serde(default)]
    pub events: Vec<String>,
    /// HMAC-SHA256 key of the `X-Outdial-Signature` header (at least 16 characters).
    pub secret: String,
    /// Tries per event before it is dead-lettered (default 10).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Events that may wait for delivery (default 10,000); beyond, they are dead-lettered.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Seconds one POST may take (default 5).
    #[serde(default = "default_timeout")]
    pub timeout: u64,
}

fn default_attempts() -> u32 {
    10
}
fn default_queue() -> usize {
    10_000
}
fn default_timeout() -> u64 {
    5
}

/// Call event types (and the campaign events `auto_paused`, `auto_resumed`, `schedule_ended`)
/// a webhook may
/// subscribe to, besides `agent_state` and `completed`.
pub const EVENT_TYPES: &[&str] = &[
    "initiated",
    "trying",
    "ringing",
    "early_media",
    "progress",
    "answered",
    "amd",
    "beep",
    "dtmf",
    "media_timeout",
    "playback_started",
    "accepting",
    "transferred",
    "transfer_failed",
    "ivr_entered",
    "ivr_choice",
    "ivr_recorded",
    "ivr_exit",
    "queued",
    "agent_offered",
    "offer_failed",
    "dequeued",
    "connected",
    "abandoned",
    "held",
    "resumed",
    "agent_disposition",
    "muted",
    "unmuted",
    "tagged",
    "recording_started",
    "recording_saved",
    "call_status",
    "dialer_sync",
    "terminated",
    "media_stats",
    "auto_paused",
    "auto_resumed",
    "schedule_ended",
];

impl WebhookSettings {
    /// Errors: a URL that is not `http://host[:port]/…`, an unknown event type, a short secret.
    /// (`max_attempts`, `queue` and `timeout` are checked against their ranges by
    /// [`CampaignConfig::validate`](crate::campaign::config::CampaignConfig::validate).)
    pub fn validate(&self) -> anyhow::Result<()> {
        let u = url::Url::parse(&self.url)
            .map_err(|e| anyhow::anyhow!("webhook.url: {:?}: {e}", self.url))?;
        if u.scheme() != "http" || u.host().is_none() {
            anyhow::bail!(
                "webhook.url: {:?}: an http:// URL (https is not in this build)",
                self.url
            );
        }
        for e in &self.events {
            if !EVENT_TYPES.contains(&e.as_str()) && e != "completed" && e != "agent_state" {
                anyhow::bail!("webhook.events: {e:?} is not an event type");
            }
        }
        if self.secret.len() < 16 {
            anyhow::bail!("webhook.secret: at least 16 characters");
        }
        Ok(())
    }
}

/// The largest webhook queue, events (the `webhook.queue` setting's maximum; a channel
/// cannot hold more than tokio's semaphore permits anyway).
pub const MAX_QUEUE: usize = 1_000_000;
