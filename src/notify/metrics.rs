//! Prometheus metrics (`GET /metrics`, text exposition format) through the `metrics` facade.
//! The run loop counts every stored event once ([`record_call_event`]); the recorder is
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
//! `auto_resumed`), `outdial_campaign_auto_paused` (1 while auto-paused).

use std::collections::HashMap;
use std::sync::OnceLock;

use metrics::{counter, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::events::{AgentState, CallEventKind};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's Prometheus recorder (once; later calls return the same handle).
/// `None` if another recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(h) => Some(h),
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
            h.run_upkeep();
            h.render()
        })
        .unwrap_or_default()
}

/// The pacer's live figures: `outdial_abandon_rate{campaign}` (abandoned / human-answered over
/// the campaign's window, AMD false positives counted, 0–1) and `outdial_dial_ratio{campaign}`
/// (calls placed per available agent).
pub fn record_pacing(campaign: &str, abandon_rate: f64, dial_ratio: f64) {
    gauge!("outdial_abandon_rate", "campaign" => campaign.to_string()).set(abandon_rate);
    gauge!("outdial_dial_ratio", "campaign" => campaign.to_string()).set(dial_ratio);
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

/// Counts one stored call event of `campaign`.
pub fn record_call_event(campaign: &str, kind: &CallEventKind) {
    let c = campaign.to_string();
    let response = |code: u16| {
        counter!("outdial_sip_responses_total", "campaign" => c.clone(), "code" => code.to_string())
            .increment(1)
    };
    match kind {
        CallEventKind::Initiated => {
            counter!("outdial_calls_started_total", "campaign" => c.clone()).increment(1);
            gauge!("outdial_calls_in_progress", "campaign" => c.clone()).increment(1.0);
        }
        CallEventKind::Trying => response(100),
        CallEventKind::Ringing { code }
        | CallEventKind::EarlyMedia { code }
        | CallEventKind::Progress { code }
        | CallEventKind::Answered { code } => response(*code),
        CallEventKind::Amd { result, .. } => {
            let r = serde_json::to_value(result)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            counter!("outdial_amd_results_total", "campaign" => c.clone(), "result" => r)
                .increment(1);
        }
        CallEventKind::Queued { .. } => {
            gauge!("outdial_queue_length", "campaign" => c.clone()).increment(1.0)
        }
        CallEventKind::Dequeued { .. } => {
            gauge!("outdial_queue_length", "campaign" => c.clone()).decrement(1.0)
        }
        CallEventKind::Connected { .. } => {
            counter!("outdial_calls_connected_total", "campaign" => c.clone()).increment(1)
        }
        CallEventKind::Abandoned { .. } => {
            counter!("outdial_calls_abandoned_total", "campaign" => c.clone()).increment(1)
        }
        CallEventKind::MediaStats { packets, lost, .. } => {
            counter!("outdial_rtp_packets_total", "campaign" => c.clone()).increment(*packets);
            counter!("outdial_rtp_lost_total", "campaign" => c.clone()).increment(*lost);
        }
        CallEventKind::Terminated {
            sip_status,
            disposition,
            ..
        } => {
            if let Some(code) = sip_status
                && *code >= 300
            {
                response(*code);
            }
            gauge!("outdial_calls_in_progress", "campaign" => c.clone()).decrement(1.0);
            counter!("outdial_calls_ended_total", "campaign" => c.clone(),
                     "disposition" => disposition.as_str())
            .increment(1);
        }
        _ => {}
    }
}

/// Sets the agents-by-state gauges of `campaign` from every agent's current state.
pub fn record_agents(campaign: &str, states: &HashMap<String, AgentState>) {
    for s in [
        AgentState::Offline,
        AgentState::Available,
        AgentState::Reserved,
        AgentState::OnCall,
        AgentState::WrapUp,
        AgentState::Paused,
    ] {
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
