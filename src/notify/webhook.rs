//! Webhooks: each campaign may POST the call events it is subscribed to (the Twilio
//! StatusCallbackEvent idea) to one URL.
//!
//! Off the hot path: the run loop only offers events to a bounded queue ([`WebhookQueue`],
//! never waits); one delivery task POSTs them in order, retrying a failing receiver with
//! exponential back-off (0.5 s doubling to 30 s, `max_attempts` tries), so a receiver that is
//! down and comes back gets the backlog in order. What cannot be delivered — the tries run
//! out, the queue is full, or the run ends before the receiver came back — goes to the
//! `webhook_dead_letters` table with the reason: nothing is lost silently.
//!
//! Each request: `Content-Type: application/json`, the [`LiveEvent`] envelope as body,
//! `X-Outdial-Signature: sha256=<hex HMAC-SHA256 of the body with the campaign's secret>`,
//! `X-Outdial-Delivery: <campaign id>-<sequence>` (the same on retries, for de-duplication).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{KeyInit, Mac};
use tokio::sync::mpsc;

use super::LiveEvent;
use crate::store::Store;

pub use crate::campaign::webhook::{EVENT_TYPES, MAX_QUEUE, WebhookSettings};

/// `sha256=<hex>`: the signature header's value for `body`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

struct Job {
    seq: u64,
    body: Vec<u8>,
}

/// Events refused by a full queue (sequence, body), dead-lettered by the delivery task.
type Overflow = Arc<Mutex<Vec<(u64, Vec<u8>)>>>;

/// Counters of a webhook (for the summary and metrics).
#[derive(Debug, Default)]
pub struct WebhookStats {
    /// Events waiting.
    pub depth: AtomicUsize,
    /// Delivered (2xx).
    pub delivered: AtomicU64,
    /// Failed tries (retried or not).
    pub failures: AtomicU64,
    /// Dead-lettered.
    pub dead: AtomicU64,
}

/// The run loop's side of a campaign's webhook.
pub struct WebhookQueue {
    tx: Option<mpsc::Sender<Job>>,
    events: HashSet<String>,
    /// Subscribed as `completed` (Twilio's name) rather than `terminated`: the final event's
    /// `status` says `completed`.
    completed: bool,
    seq: AtomicU64,
    overflow: Overflow,
    abandon: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Counters.
    pub stats: Arc<WebhookStats>,
}

impl WebhookQueue {
    /// Starts the delivery task of campaign `campaign_id`'s webhook.
    pub fn start(s: &WebhookSettings, campaign_id: i64, store: Store) -> Self {
        let (tx, rx) = mpsc::channel(s.queue.clamp(1, MAX_QUEUE));
        let mut events: HashSet<String> = s.events.iter().cloned().collect();
        let completed = events.remove("completed") && !events.contains("terminated");
        if completed {
            events.insert("terminated".into());
        }
        let stats = Arc::new(WebhookStats::default());
        let overflow = Arc::new(Mutex::new(Vec::new()));
        let abandon = Arc::new(AtomicBool::new(false));
        let d = Delivery {
            url: s.url.clone(),
            secret: s.secret.clone(),
            max_attempts: s.max_attempts,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(s.timeout))
                .build()
                .expect("HTTP client"),
            store,
            campaign_id,
            stats: stats.clone(),
            overflow: overflow.clone(),
            abandon: abandon.clone(),
        };
        let task = tokio::spawn(d.run(rx));
        Self {
            tx: Some(tx),
            events,
            completed,
            seq: AtomicU64::new(0),
            overflow,
            abandon,
            task: Some(task),
            stats,
        }
    }

    /// True when the webhook subscribes to events of this status (`agent_state` for agents).
    pub fn wants(&self, ev: &LiveEvent) -> bool {
        let name = if ev.kind == super::AVAILABILITY {
            "agent_state"
        } else {
            ev.payload
                .event
                .get("type")
                .and_then(|t| t.as_str())
                .unwrap_or("")
        };
        self.events.is_empty() || self.events.contains(name)
    }

    /// Queues `ev` if subscribed; never waits (a full queue dead-letters it).
    pub fn offer(&self, ev: &LiveEvent) {
        if !self.wants(ev) {
            return;
        }
        let Some(tx) = &self.tx else { return };
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let body = if self.completed && ev.payload.status == "terminated" {
            let mut renamed = ev.clone();
            renamed.payload.status = "completed".into();
            serde_json::to_vec(&renamed).unwrap_or_default()
        } else {
            serde_json::to_vec(ev).unwrap_or_default()
        };
        match tx.try_send(Job { seq, body }) {
            Ok(()) => {
                self.stats.depth.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                let job = e.into_inner();
                self.overflow
                    .lock()
                    .expect("overflow lock")
                    .push((job.seq, job.body));
            }
        }
    }

    /// No more events: waits up to `grace` for the backlog to be delivered, then
    /// dead-letters what is left and returns.
    pub async fn finish(mut self, grace: Duration) {
        self.tx = None;
        if let Some(mut t) = self.task.take()
            && tokio::time::timeout(grace, &mut t).await.is_err()
        {
            self.abandon.store(true, Ordering::Release);
            let _ = t.await;
        }
    }
}

struct Delivery {
    url: String,
    secret: String,
    max_attempts: u32,
    http: reqwest::Client,
    store: Store,
    campaign_id: i64,
    stats: Arc<WebhookStats>,
    overflow: Overflow,
    abandon: Arc<AtomicBool>,
}

impl Delivery {
    async fn run(self, mut rx: mpsc::Receiver<Job>) {
        while let Some(job) = rx.recv().await {
            self.stats.depth.fetch_sub(1, Ordering::Relaxed);
            self.flush_overflow().await;
            self.deliver(job).await;
        }
        self.flush_overflow().await;
    }

    async fn flush_overflow(&self) {
        let v: Vec<(u64, Vec<u8>)> =
            std::mem::take(&mut *self.overflow.lock().expect("overflow lock"));
        for (seq, body) in v {
            self.dead(seq, &body, 0, "queue full").await;
        }
    }

    async fn deliver(&self, job: Job) {
        let sig = signature(&self.secret, &job.body);
        let id = format!("{}-{}", self.campaign_id, job.seq);
        let mut backoff = Duration::from_millis(500);
        let mut last = String::new();
        for attempt in 1..=self.max_attempts {
            if self.abandon.load(Ordering::Acquire) {
                self.dead(job.seq, &job.body, attempt - 1, "run ended before delivery")
                    .await;
                return;
            }
            let r = self
                .http
                .post(&self.url)
                .header("content-type", "application/json")
                .header("x-outdial-signature", &sig)
                .header("x-outdial-delivery", &id)
                .body(job.body.clone())
                .send()
                .await;
            match r {
                Ok(resp) if resp.status().is_success() => {
                    self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Ok(resp) => last = format!("HTTP {}", resp.status().as_u16()),
                Err(e) => last = e.without_url().to_string(),
            }
            self.stats.failures.fetch_add(1, Ordering::Relaxed);
            if attempt < self.max_attempts {
                tracing::debug!(delivery = %id, attempt, error = %last, "webhook failed; retrying");
                let step = tokio::time::sleep(backoff);
                tokio::pin!(step);
                // Wake early to give up when the run ends.
                loop {
                    tokio::select! {
                        _ = &mut step => break,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {
                            if self.abandon.load(Ordering::Acquire) { break; }
                        }
                    }
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
        tracing::warn!(delivery = %id, error = %last, "webhook event dead-lettered");
        self.dead(job.seq, &job.body, self.max_attempts, &last)
            .await;
    }

    async fn dead(&self, seq: u64, body: &[u8], attempts: u32, reason: &str) {
        self.stats.dead.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self
            .store
            .dead_letter(
                self.campaign_id,
                &self.url,
                seq,
                &String::from_utf8_lossy(body),
                attempts,
                reason,
            )
            .await
        {
            tracing::error!(error = %e, "could not store a dead webhook event");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn settings_are_checked() {
        let mut s = WebhookSettings {
            url: "http://127.0.0.1:9/hook".into(),
            events: vec!["ringing".into(), "completed".into()],
            secret: "0123456789abcdef".into(),
            max_attempts: 3,
            queue: 10,
            timeout: 1,
        };
        s.validate().unwrap();
        s.events.push("rang".into());
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("webhook.events")
        );
        s.events.pop();
        s.url = "ftp://x/".into();
        assert!(s.validate().is_err());
        s.url = "http://127.0.0.1/".into();
        s.secret = "short".into();
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("webhook.secret")
        );
    }
}
