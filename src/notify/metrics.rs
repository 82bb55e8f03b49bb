//! Prometheus metrics (`GET /metrics`, text exposition format) through the `metrics` facade.
//! The run loop counts every stored event once ([`CallEventMetrics`]); the recorder is
//! installed by `outdial serve` and `outdial run --api` ([`install`]); without it the counting
//! is a no-op.
//!
//! Names (all with a `campaign` label):
//! `outdial_calls_started_total`, `outdial_calls_in_progress`, `outdial_calls_ended_total`
//! (`disposition`), `outdial_sip_responses_total` (`code`: provisional and final responses of
//! the INVITEs), `outdial_amd_results_total` (`result`), `outdial_queue_length`,
//! `outdial_calls_abandoned_total`, `outdial_calls_connected_total`, `outdial_agents`
//! (`state`), `outdial_rtp_packets_total`, `outdial_rtp_lost_total`,
//! `outdial_webhook_queue_depth`, `outdial_webhook_failures_total`,
//! `outdial_webhook_dead_letters_total`, `outdial_abandon_rate` and `outdial_dial_ratio`
//! (paced campaigns, live), `outdial_campaign_events_total` (`event`: `auto_paused`,
//! `auto_resumed`, `schedule_ended`), `outdial_campaign_auto_paused` (1 while auto-paused).
//!
//! Every family has `# HELP` and `# TYPE` lines ([`FAMILIES`]); a campaign's series exist at 0
//! from its start ([`init_campaign`]); the process's own figures (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_open_fds`, `process_start_time_seconds`, from
//! `/proc/self`) and `outdial_build_info` are there from the first scrape. The webhook gauges
//! are read from the live queue at each scrape ([`watch_webhook`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use metrics::{Counter, Gauge, counter, describe_counter, describe_gauge, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::events::{AgentState, CallEventKind};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Campaign name → its webhook queue's live counters, read at each scrape.
/// The pacer's last figures by campaign name ([`record_pacing`]).
static PACING: Mutex<std::collections::BTreeMap<String, (f64, f64)>> =
    Mutex::new(std::collections::BTreeMap::new());
static WEBHOOKS: Mutex<Vec<(String, Arc<super::webhook::WebhookStats>)>> = Mutex::new(Vec::new());

/// A family's kind, for its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
}

/// Every metric family: name, kind, `# HELP` text.
pub const FAMILIES: &[(&str, Kind, &str)] = &[
    (
        "outdial_calls_started_total",
        Kind::Counter,
        "Calls placed (INVITE sent), per campaign.",
    ),
    (
        "outdial_calls_in_progress",
        Kind::Gauge,
        "Calls placed and not yet ended, per campaign.",
    ),
    (
        "outdial_calls_ended_total",
        Kind::Counter,
        "Calls ended, per campaign and disposition.",
    ),
    (
        "outdial_sip_responses_total",
        Kind::Counter,
        "Responses to our INVITEs, per campaign and SIP status code.",
    ),
    (
        "outdial_amd_results_total",
        Kind::Counter,
        "Answering-machine detection results, per campaign and result.",
    ),
    (
        "outdial_queue_length",
        Kind::Gauge,
        "Answered customers waiting in the ACD queue, per campaign.",
    ),
    (
        "outdial_calls_connected_total",
        Kind::Counter,
        "Customers bridged to an agent, per campaign.",
    ),
    (
        "outdial_calls_abandoned_total",
        Kind::Counter,
        "Customers abandoned in the queue (hung up or past max_wait), per campaign.",
    ),
    (
        "outdial_agents",
        Kind::Gauge,
        "Agents by state, per campaign.",
    ),
    (
        "outdial_rtp_packets_total",
        Kind::Counter,
        "RTP packets received from far ends, per campaign.",
    ),
    (
        "outdial_rtp_lost_total",
        Kind::Counter,
        "RTP packets lost (RFC 3550 sequence gaps), per campaign.",
    ),
    (
        "outdial_webhook_queue_depth",
        Kind::Gauge,
        "Webhook events waiting for delivery, per campaign.",
    ),
    (
        "outdial_webhook_failures_total",
        Kind::Counter,
        "Webhook delivery tries that failed, per campaign.",
    ),
    (
        "outdial_webhook_dead_letters_total",
        Kind::Counter,
        "Webhook events given up and dead-lettered, per campaign.",
    ),
    (
        "outdial_abandon_rate",
        Kind::Gauge,
        "Abandoned / human-answered calls over the pacing window (0-1), per campaign.",
    ),
    (
        "outdial_dial_ratio",
        Kind::Gauge,
        "Calls placed per available agent (pacing ratio), per campaign.",
    ),
    (
        "outdial_campaign_events_total",
        Kind::Counter,
        "Campaign events (auto_paused, auto_resumed, schedule_ended), per campaign.",
    ),
    (
        "outdial_campaign_auto_paused",
        Kind::Gauge,
        "1 while the campaign is auto-paused, per campaign.",
    ),
    (
        "outdial_build_info",
        Kind::Gauge,
        "Always 1; the version label says which build runs.",
    ),
];

fn describe_all() {
    for (name, kind, help) in FAMILIES {
        match kind {
            Kind::Counter => describe_counter!(*name, *help),
            Kind::Gauge => describe_gauge!(*name, *help),
        }
    }
    gauge!("outdial_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// User plus system CPU time of this process, seconds, from `getrusage(RUSAGE_SELF)` (µs
/// precision, where `/proc/self/stat` counts 10 ms ticks); `None` if the call fails.
fn cpu_seconds() -> Option<f64> {
    // SAFETY: getrusage writes a plain C struct we own; zeroed is a valid initial value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(secs(usage.ru_utime) + secs(usage.ru_stime))
}

/// The process's own figures in the text format (Prometheus' standard `process_*` names),
/// read from `/proc/self` (Linux; empty elsewhere).
fn process_text() -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, value: f64| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n\n"
        ));
    };
    // /proc counts CPU time in clock ticks of USER_HZ, 100 on every architecture Linux runs.
    const TICKS_PER_SECOND: f64 = 100.0;
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name (which may hold spaces), from field 3 on.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
        // utime = field 14, stime = 15, starttime = 22 (proc(5)): index - 3 here.
        if let Some(cpu) = cpu_seconds().or_else(|| Some((num(11)? + num(12)?) / TICKS_PER_SECOND))
        {
            family(
                "process_cpu_seconds_total",
                "counter",
                "User and system CPU time of the process, seconds.",
                cpu,
            );
        }
        let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<f64>().ok())
        });
        if let (Some(start), Some(boot)) = (num(19), boot) {
            family(
                "process_start_time_seconds",
                "gauge",
                "When the process started, seconds since the Unix epoch.",
                boot + start / TICKS_PER_SECOND,
            );
        }
    }
    let rss_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        });
    if let Some(kib) = rss_kib {
        family(
            "process_resident_memory_bytes",
            "gauge",
            "Resident set size of the process, bytes.",
            kib * 1024.0,
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        family(
            "process_open_fds",
            "gauge",
            "Open file descriptors of the process (sockets included).",
            fds.count() as f64,
        );
    }
    out
}

/// Registers `campaign`'s series at 0 (they are in the first scrape after its start, not only
/// after its first call): every per-campaign family, agents by each state, AMD by each result,
/// campaign events by each kind. Values already there are kept.
pub fn init_campaign(campaign: &str) {
    let c = || campaign.to_string();
    for name in [
        "outdial_calls_started_total",
        "outdial_calls_connected_total",
        "outdial_calls_abandoned_total",
        "outdial_rtp_packets_total",
        "outdial_rtp_lost_total",
        "outdial_webhook_failures_total",
        "outdial_webhook_dead_letters_total",
    ] {
        counter!(name, "campaign" => c()).increment(0);
    }
    for name in [
        "outdial_calls_in_progress",
        "outdial_queue_length",
        "outdial_webhook_queue_depth",
        "outdial_abandon_rate",
        "outdial_dial_ratio",
        "outdial_campaign_auto_paused",
    ] {
        gauge!(name, "campaign" => c()).increment(0.0);
    }
    for s in AGENT_STATES {
        gauge!("outdial_agents", "campaign" => c(), "state" => s.as_str()).increment(0.0);
    }
    for r in ["human", "machine", "not_sure"] {
        counter!("outdial_amd_results_total", "campaign" => c(), "result" => r).increment(0);
    }
    for e in ["auto_paused", "auto_resumed", "schedule_ended"] {
        counter!("outdial_campaign_events_total", "campaign" => c(), "event" => e).increment(0);
    }
}

/// `campaign`'s webhook queue: its gauges are set from these counters at every scrape (and
/// stay at their last values, depth 0 once all is delivered, after the run).
pub fn watch_webhook(campaign: &str, stats: Arc<super::webhook::WebhookStats>) {
    let mut w = WEBHOOKS.lock().expect("webhook registry");
    w.retain(|(c, _)| c != campaign);
    w.push((campaign.to_string(), stats));
}

const AGENT_STATES: [AgentState; 6] = [
    AgentState::Offline,
    AgentState::Available,
    AgentState::Reserved,
    AgentState::OnCall,
    AgentState::WrapUp,
    AgentState::Paused,
];

/// Installs the process's Prometheus recorder (once; later calls return the same handle).
/// `None` if another recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(h) => {
                describe_all();
                Some(h)
            }
            Err(e) => {
                tracing::warn!(error = %e, "Prometheus recorder not installed");
                None
            }
        })
        .as_ref()
}

/// The metrics in the Prometheus text format (empty without [`install`]).
pub fn render() -> String {
    HANDLE
        .get()
        .and_then(|h| h.as_ref())
        .map(|h| {
            for (campaign, stats) in WEBHOOKS.lock().expect("webhook registry").iter() {
                record_webhook(campaign, stats);
            }
            h.run_upkeep();
            let mut text = h.render();
            if !text.is_empty() && !text.ends_with("\n\n") {
                text.push('\n');
            }
            // Families with no series yet (no campaign ran): their HELP and TYPE all the same,
            // so a scraper and a reader see the whole vocabulary from the first scrape.
            for (name, kind, help) in FAMILIES {
                if !text.contains(&format!("# TYPE {name} ")) {
                    let kind = match kind {
                        Kind::Counter => "counter",
                        Kind::Gauge => "gauge",
                    };
                    text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n\n"));
                }
            }
            text.push_str(&process_text());
            text
        })
        .unwrap_or_default()
}

/// The pacer's live figures: `outdial_abandon_rate{campaign}` (abandoned / human-answered over
/// the campaign's window, AMD false positives counted, 0–1) and `outdial_dial_ratio{campaign}`
/// (calls placed per available agent).
/// The same figures are kept for `GET /v1/campaigns/{id}/stats` ([`pacing_figures`]).
pub fn record_pacing(campaign: &str, abandon_rate: f64, dial_ratio: f64) {
    gauge!("outdial_abandon_rate", "campaign" => campaign.to_string()).set(abandon_rate);
    gauge!("outdial_dial_ratio", "campaign" => campaign.to_string()).set(dial_ratio);
    if let Ok(mut p) = PACING.lock() {
        p.insert(campaign.to_string(), (abandon_rate, dial_ratio));
    }
}

/// The pacer's last figures for `campaign` in this process: (abandon rate over the
/// campaign's window, 0–1; dial ratio, calls per available agent). `None`: no pacer ran it
/// here (no `[endpoint]`, or another node dials it).
pub fn pacing_figures(campaign: &str) -> Option<(f64, f64)> {
    PACING.lock().ok()?.get(campaign).copied()
}

/// Counts a campaign event (`outdial_campaign_events_total{event}`) and sets
/// `outdial_campaign_auto_paused` (1 while auto-paused).
pub fn record_campaign_event(campaign: &str, name: &'static str) {
    counter!("outdial_campaign_events_total", "campaign" => campaign.to_string(), "event" => name)
        .increment(1);
    let paused = match name {
        "auto_paused" => 1.0,
        _ => 0.0,
    };
    gauge!("outdial_campaign_auto_paused", "campaign" => campaign.to_string()).set(paused);
}

/// The call-event series of one campaign, registered once (at the run's start, after
/// [`install`]) and then counted through their handles: no label strings built or registry
/// looked up per event (at thousands of calls per second those were about 15 allocations a
/// call). The series whose label takes many values (`code`, `disposition`, `result`) are
/// registered on their first use and kept.
pub struct CallEventMetrics {
    campaign: String,
    started: Counter,
    in_progress: Gauge,
    queue: Gauge,
    connected: Counter,
    abandoned: Counter,
    packets: Counter,
    lost: Counter,
    responses: Mutex<HashMap<u16, Counter>>,
    ended: Mutex<HashMap<&'static str, Counter>>,
    amd: Mutex<HashMap<String, Counter>>,
}

impl CallEventMetrics {
    /// Registers `campaign`'s call-event series (no-op handles without a recorder).
    pub fn new(campaign: &str) -> Self {
        let c = || campaign.to_string();
        Self {
            campaign: c(),
            started: counter!("outdial_calls_started_total", "campaign" => c()),
            in_progress: gauge!("outdial_calls_in_progress", "campaign" => c()),
            queue: gauge!("outdial_queue_length", "campaign" => c()),
            connected: counter!("outdial_calls_connected_total", "campaign" => c()),
            abandoned: counter!("outdial_calls_abandoned_total", "campaign" => c()),
            packets: counter!("outdial_rtp_packets_total", "campaign" => c()),
            lost: counter!("outdial_rtp_lost_total", "campaign" => c()),
            responses: Default::default(),
            ended: Default::default(),
            amd: Default::default(),
        }
    }

    fn response(&self, code: u16) {
        let mut m = self.responses.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(code)
            .or_insert_with(|| {
                counter!("outdial_sip_responses_total", "campaign" => self.campaign.clone(),
                         "code" => code.to_string())
            })
            .increment(1);
    }

    /// Counts one stored call event.
    pub fn record(&self, kind: &CallEventKind) {
        match kind {
            CallEventKind::Initiated => {
                self.started.increment(1);
                self.in_progress.increment(1.0);
            }
            CallEventKind::Trying => self.response(100),
            CallEventKind::Ringing { code }
            | CallEventKind::EarlyMedia { code }
            | CallEventKind::Progress { code }
            | CallEventKind::Answered { code } => self.response(*code),
            CallEventKind::Amd { result, .. } => {
                let r = serde_json::to_value(result)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                let mut m = self.amd.lock().unwrap_or_else(|e| e.into_inner());
                m.entry(r.clone())
                    .or_insert_with(|| {
                        counter!("outdial_amd_results_total",
                                 "campaign" => self.campaign.clone(), "result" => r)
                    })
                    .increment(1);
            }
            CallEventKind::Queued { .. } => self.queue.increment(1.0),
            CallEventKind::Dequeued { .. } => self.queue.decrement(1.0),
            CallEventKind::Connected { .. } => self.connected.increment(1),
            CallEventKind::Abandoned { .. } => self.abandoned.increment(1),
            CallEventKind::MediaStats { packets, lost, .. } => {
                self.packets.increment(*packets);
                self.lost.increment(*lost);
            }
            CallEventKind::Terminated {
                sip_status,
                disposition,
                ..
            } => {
                if let Some(code) = sip_status
                    && *code >= 300
                {
                    self.response(*code);
                }
                self.in_progress.decrement(1.0);
                let d = disposition.as_str();
                let mut m = self.ended.lock().unwrap_or_else(|e| e.into_inner());
                m.entry(d)
                    .or_insert_with(|| {
                        counter!("outdial_calls_ended_total",
                                 "campaign" => self.campaign.clone(), "disposition" => d)
                    })
                    .increment(1);
            }
            _ => {}
        }
    }
}

/// Sets the agents-by-state gauges of `campaign` from every agent's current state.
pub fn record_agents(campaign: &str, states: &HashMap<String, AgentState>) {
    for s in AGENT_STATES {
        let n = states.values().filter(|v| **v == s).count();
        gauge!("outdial_agents", "campaign" => campaign.to_string(), "state" => s.as_str())
            .set(n as f64);
    }
}

/// Sets the webhook gauges and counters of `campaign` from its queue's counters.
pub fn record_webhook(campaign: &str, s: &super::webhook::WebhookStats) {
    use std::sync::atomic::Ordering::Relaxed;
    let c = campaign.to_string();
    gauge!("outdial_webhook_queue_depth", "campaign" => c.clone())
        .set(s.depth.load(Relaxed) as f64);
    counter!("outdial_webhook_failures_total", "campaign" => c.clone())
        .absolute(s.failures.load(Relaxed));
    counter!("outdial_webhook_dead_letters_total", "campaign" => c).absolute(s.dead.load(Relaxed));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pacers_live_figures_and_auto_pauses_are_exported() {
        install().expect("the only recorder of this test binary");
        record_pacing("spring", 0.025, 1.5);
        record_campaign_event("spring", "auto_paused");
        let text = render();
        assert!(
            text.contains(r#"outdial_abandon_rate{campaign="spring"} 0.025"#),
            "{text}"
        );
        assert!(
            text.contains(r#"outdial_dial_ratio{campaign="spring"} 1.5"#),
            "{text}"
        );
        assert!(
            text.contains(r#"outdial_campaign_auto_paused{campaign="spring"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"outdial_campaign_events_total{campaign="spring",event="auto_paused"} 1"#
            ),
            "{text}"
        );
    }
}
