//! The campaign report: a summary table for people and a JSON document for programs, both read
//! from the store (so `outdial report` prints exactly what `outdial run` printed at its end).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::events::{parse_rfc3339, rfc3339_ms};

use crate::events::disposition::Disposition;
use crate::store::Store;

pub use crate::store::reads::AttemptReport;

/// One lead in the JSON report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LeadReport {
    /// Number dialled.
    pub number: String,
    /// The call list's other columns.
    pub attributes: BTreeMap<String, String>,
    /// `null` while the lead is still pending.
    pub final_disposition: Option<String>,
    /// Every attempt, in order.
    pub attempts: Vec<AttemptReport>,
}

/// Campaign totals.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    /// Campaign name.
    pub campaign: String,
    /// Leads in the campaign.
    pub leads: u64,
    /// Leads with a final disposition.
    pub leads_final: u64,
    /// Attempts made (interrupted ones included).
    pub attempts: u64,
    /// Attempts answered (2xx).
    pub answered: u64,
    /// answered / attempts that ended (interrupted ones excluded), 0..=1.
    pub answer_rate: f64,
    /// Final dispositions of leads: name → count.
    pub final_dispositions: BTreeMap<String, u64>,
    /// Dispositions of attempts: name → count.
    pub attempt_dispositions: BTreeMap<String, u64>,
    /// AMD results of answered calls: `human` / `machine` / `not_sure` → count.
    pub amd: BTreeMap<String, u64>,
}

/// The whole JSON report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// Totals.
    pub summary: Summary,
    /// Every lead with its attempts.
    pub leads: Vec<LeadReport>,
}

/// answered / attempts that ended (interrupted ones excluded), 0 when none ended.
fn answer_rate(answered: u64, ended: u64) -> f64 {
    if ended > 0 {
        answered as f64 / ended as f64
    } else {
        0.0
    }
}

/// Builds the report of one campaign. Errors: database errors.
pub async fn build(store: &Store, campaign_id: i64, campaign: &str) -> anyhow::Result<Report> {
    let (lead_rows, attempt_rows) = store.report_rows(campaign_id).await?;
    let mut by_lead: BTreeMap<i64, Vec<AttemptReport>> = BTreeMap::new();
    let mut attempt_dispositions = BTreeMap::new();
    let (mut attempts, mut answered, mut ended) = (0u64, 0u64, 0u64);
    for (lead_id, a) in attempt_rows {
        attempts += 1;
        if let Some(d) = &a.disposition {
            *attempt_dispositions.entry(d.clone()).or_insert(0) += 1;
            if d != Disposition::Interrupted.as_str() {
                ended += 1;
            }
            if d == Disposition::Answered.as_str() {
                answered += 1;
            }
        }
        by_lead.entry(lead_id).or_default().push(a);
    }
    let amd = store.grouped_counts(Some(campaign_id)).await?.amd;
    let mut final_dispositions = BTreeMap::new();
    let mut leads = Vec::with_capacity(lead_rows.len());
    let mut leads_final = 0;
    for r in lead_rows {
        if let Some(d) = &r.final_disposition {
            leads_final += 1;
            *final_dispositions.entry(d.clone()).or_insert(0) += 1;
        }
        leads.push(LeadReport {
            number: r.number,
            attributes: serde_json::from_str(&r.attributes).unwrap_or_default(),
            final_disposition: r.final_disposition,
            attempts: by_lead.remove(&r.id).unwrap_or_default(),
        });
    }
    Ok(Report {
        summary: Summary {
            campaign: campaign.to_string(),
            leads: leads.len() as u64,
            leads_final,
            attempts,
            answered,
            answer_rate: answer_rate(answered, ended),
            final_dispositions,
            attempt_dispositions,
            amd,
        },
        leads,
    })
}

/// A campaign's statistics (`GET /v1/campaigns/{id}/stats`), from the store.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CampaignStats {
    /// Campaign name.
    pub campaign: String,
    /// Lifecycle state (filled in by the API).
    pub state: String,
    /// Leads, and leads with a final disposition.
    pub leads: u64,
    /// Leads final.
    pub leads_final: u64,
    /// Attempts made.
    pub attempts: u64,
    /// Attempts answered (2xx).
    pub answered: u64,
    /// answered / attempts ended (interrupted ones excluded), 0–1.
    pub answer_rate: f64,
    /// AMD results as shares of the AMD decisions: `human`, `machine`, `not_sure` → 0–1.
    pub amd_shares: BTreeMap<String, f64>,
    /// Answered calls that entered the ACD queue.
    pub queued: u64,
    /// Calls connected to an agent.
    pub connected: u64,
    /// Queued calls never connected (caller hung up or `max_wait`).
    pub abandoned: u64,
    /// abandoned / queued (answered by a human and queued), 0–1.
    pub abandon_rate: f64,
    /// Answered calls never connected to an agent / answered, 0–1 (0 without agents).
    pub answered_not_connected_rate: f64,
    /// Mean queue wait of connected calls, ms.
    pub avg_wait_ms: f64,
    /// Mean talk time (connected → end), ms.
    pub avg_talk_ms: f64,
    /// Post-dial delay (INVITE → first ringing/early media), ms: p50, p90, p99.
    pub pdd_p50_ms: f64,
    /// Post-dial delay p90, ms.
    pub pdd_p90_ms: f64,
    /// Post-dial delay p99, ms.
    pub pdd_p99_ms: f64,
    /// Attempts by disposition.
    pub dispositions: BTreeMap<String, u64>,
    /// Agents' dispositions of their calls.
    pub agent_dispositions: BTreeMap<String, u64>,
    /// Calls connected per agent.
    pub agents: BTreeMap<String, u64>,
    /// IVR choices made, by `node:digit` (`main:1`); empty without an IVR.
    pub ivr_choices: BTreeMap<String, u64>,
    /// Calls leaving the IVR, by how (`queue`, `recorded`, `dnc`, `hangup`, `timeout`, `loop`).
    pub ivr_exits: BTreeMap<String, u64>,
    /// Per agent, time by state and occupancy over the campaign's span (first attempt
    /// started → last attempt ended; every stored agent event for the overall statistics),
    /// from the stored agent state changes.
    pub agent_occupancy: BTreeMap<String, AgentOccupancy>,
    /// The pacer's live figures while this process dials the campaign with an `[endpoint]`
    /// (absent otherwise; filled in by the API).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pacing: Option<PacingNow>,
}

/// The pacer's live figures (docs/pacing.md), as `GET /v1/campaigns/{id}/stats` shows them.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PacingNow {
    /// Abandoned / human-answered over the campaign's `abandon_window_hours`, AMD false
    /// positives counted, 0–1: the figure the abandon cap applies to.
    pub abandon_rate: f64,
    /// Calls placed per available agent (the pacing ratio).
    pub dial_ratio: f64,
}

/// An agent's time by state over a span, and its occupancy: the share of its staffed time
/// (available, offered, on a call, in wrap-up; paused and offline left out) spent handling
/// calls (offered, on a call, wrap-up) — the contact-centre definition (talk + after-call work
/// over staffed time, where ringing an agent is handling time as the agent cannot take another).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AgentOccupancy {
    /// Milliseconds available (idle, waiting for a call).
    pub available_ms: u64,
    /// Milliseconds handling: offered (phone ringing), on a call, or in wrap-up.
    pub handling_ms: u64,
    /// Milliseconds paused.
    pub paused_ms: u64,
    /// handling / (handling + available), 0–1 (0 when never staffed).
    pub occupancy: f64,
}

/// Time by state per agent from its state changes `(agent, state, RFC 3339 time)` in order,
/// counted inside `[from, to]` (each state lasts until the agent's next change, the last one
/// until `to`). Unparseable times are skipped.
pub fn agent_occupancy(
    events: &[(String, String, String)],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> BTreeMap<String, AgentOccupancy> {
    let mut last: BTreeMap<&str, (&str, DateTime<Utc>)> = BTreeMap::new();
    let mut out: BTreeMap<String, AgentOccupancy> = BTreeMap::new();
    let mut add = |agent: &str, state: &str, a: DateTime<Utc>, b: DateTime<Utc>| {
        let (a, b) = (a.max(from), b.min(to));
        if b <= a {
            return;
        }
        let ms = (b - a).num_milliseconds() as u64;
        let o = out.entry(agent.to_string()).or_default();
        match state {
            "available" => o.available_ms += ms,
            "reserved" | "on_call" | "wrap_up" => o.handling_ms += ms,
            "paused" => o.paused_ms += ms,
            _ => {}
        }
    };
    for (agent, state, at) in events {
        let Ok(at) = parse_rfc3339(at) else { continue };
        if let Some((prev, since)) = last.insert(agent, (state, at)) {
            add(agent, prev, since, at);
        }
    }
    for (agent, (state, since)) in last {
        add(agent, state, since, to);
    }
    for o in out.values_mut() {
        let staffed = o.handling_ms + o.available_ms;
        o.occupancy = if staffed == 0 {
            0.0
        } else {
            o.handling_ms as f64 / staffed as f64
        };
    }
    out
}

/// Statistics of one campaign (`Some(id)`) or of every campaign (`None`): four reads
/// ([`Store::stats_counts`], [`Store::grouped_counts`], the post-dial delays, the agents'
/// state changes over the campaign's span). Errors: database errors.
pub async fn campaign_stats(
    store: &Store,
    campaign_id: Option<i64>,
    campaign: &str,
) -> anyhow::Result<CampaignStats> {
    let c = store.stats_counts(campaign_id).await?;
    let g = store.grouped_counts(campaign_id).await?;
    let amd_total: u64 = g.amd.values().sum();
    let amd_shares = g
        .amd
        .iter()
        .map(|(k, v)| (k.clone(), *v as f64 / amd_total.max(1) as f64))
        .collect();
    let mut pdd = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
    for ms in store.post_dial_delays(campaign_id).await? {
        let _ = pdd.record(ms.max(0.0).round() as u64);
    }
    let q = |p: f64| {
        if pdd.is_empty() {
            0.0
        } else {
            pdd.value_at_quantile(p) as f64
        }
    };
    Ok(CampaignStats {
        campaign: campaign.to_string(),
        state: String::new(),
        leads: c.leads,
        leads_final: c.leads_final,
        attempts: c.attempts,
        answered: c.answered,
        answer_rate: answer_rate(c.answered, c.ended),
        amd_shares,
        queued: c.queued,
        connected: c.connected,
        abandoned: c.abandoned,
        abandon_rate: c.abandoned as f64 / c.queued.max(1) as f64,
        answered_not_connected_rate: if c.queued == 0 || c.answered == 0 {
            0.0
        } else {
            c.answered.saturating_sub(c.connected) as f64 / c.answered as f64
        },
        avg_wait_ms: c.avg_wait_ms,
        avg_talk_ms: c.avg_talk_ms,
        pdd_p50_ms: q(0.5),
        pdd_p90_ms: q(0.9),
        pdd_p99_ms: q(0.99),
        dispositions: g.dispositions,
        agent_dispositions: g.agent_dispositions,
        agents: g.agents,
        ivr_choices: g.ivr_choices,
        ivr_exits: g.ivr_exits,
        agent_occupancy: occupancy_over_span(store, campaign_id).await?,
        pacing: None,
    })
}

/// Agents' occupancy over the campaign's span (first attempt started → last ended; for all
/// campaigns, every stored change up to the last end). The state each agent was in when the
/// span began comes from the change before it. Errors: database errors.
async fn occupancy_over_span(
    store: &Store,
    campaign_id: Option<i64>,
) -> anyhow::Result<BTreeMap<String, AgentOccupancy>> {
    let parse = |s: Option<String>| s.and_then(|s| parse_rfc3339(&s).ok());
    let (from, to) = store.attempts_span(campaign_id).await?;
    let (Some(from), Some(to)) = (parse(from), parse(to)) else {
        return Ok(BTreeMap::new());
    };
    let from = if campaign_id.is_some() {
        from
    } else {
        DateTime::<Utc>::MIN_UTC
    };
    let events = store.agent_changes_until(&rfc3339_ms(to)).await?;
    Ok(agent_occupancy(&events, from, to))
}

/// The summary as a plain-text table.
pub fn render_table(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Campaign {}", s.campaign);
    let _ = writeln!(
        out,
        "  leads {} (final {}), attempts {}, answered {}, answer rate {:.1}%",
        s.leads,
        s.leads_final,
        s.attempts,
        s.answered,
        s.answer_rate * 100.0
    );
    let _ = writeln!(
        out,
        "  {:<16} {:>8} {:>10}",
        "disposition", "leads", "attempts"
    );
    for d in Disposition::ALL {
        let l = s.final_dispositions.get(d.as_str()).copied().unwrap_or(0);
        let a = s.attempt_dispositions.get(d.as_str()).copied().unwrap_or(0);
        if l == 0 && a == 0 {
            continue;
        }
        let _ = writeln!(out, "  {:<16} {:>8} {:>10}", d.as_str(), l, a);
    }
    if !s.amd.is_empty() {
        let g = |k: &str| s.amd.get(k).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "  AMD: human {}, machine {}, notsure {}",
            g("human"),
            g("machine"),
            g("not_sure")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn occupancy_counts_handling_over_staffed_time_inside_the_span() {
        let ev = |a: &str, s: &str, at: &str| (a.to_string(), s.to_string(), at.to_string());
        let events = [
            // 1001: available before the span starts (10:00), offered at 10:01, on a call
            // 10:01:10–10:05, wrap-up to 10:06, paused to 10:08, available to the end (10:10).
            ev("1001", "available", "2026-11-23T09:58:00.000Z"),
            ev("1001", "reserved", "2026-11-23T10:01:00.000Z"),
            ev("1001", "on_call", "2026-11-23T10:01:10.000Z"),
            ev("1001", "wrap_up", "2026-11-23T10:05:00.000Z"),
            ev("1001", "paused", "2026-11-23T10:06:00.000Z"),
            ev("1001", "available", "2026-11-23T10:08:00.000Z"),
            // 1002: registered at 10:09, gone offline at 10:09:30.
            ev("1002", "available", "2026-11-23T10:09:00.000Z"),
            ev("1002", "offline", "2026-11-23T10:09:30.000Z"),
            ev("1003", "available", "not a time"),
        ];
        let o = agent_occupancy(
            &events,
            t("2026-11-23T10:00:00Z"),
            t("2026-11-23T10:10:00Z"),
        );
        let a = &o["1001"];
        assert_eq!(a.available_ms, 60_000 + 120_000);
        assert_eq!(a.handling_ms, 300_000);
        assert_eq!(a.paused_ms, 120_000);
        assert!((a.occupancy - 300.0 / 480.0).abs() < 1e-9);
        assert_eq!(o["1002"].available_ms, 30_000);
        assert_eq!(o["1002"].occupancy, 0.0);
        assert!(!o.contains_key("1003"));
    }
}
