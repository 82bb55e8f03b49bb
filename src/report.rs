//! The campaign report: a summary table for people and a JSON document for programs, both read
//! from the store (so `outdial report` prints exactly what `outdial run` printed at its end).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use sqlx::Row;

use crate::call::disposition::Disposition;
use crate::store::Store;

/// One attempt in the JSON report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AttemptReport {
    /// 1-based attempt number for the lead.
    pub attempt_no: u32,
    /// SIP Call-ID.
    pub call_id: Option<String>,
    /// Final SIP status of the INVITE (`null` when none came).
    pub sip_status: Option<u16>,
    /// Disposition of the attempt.
    pub disposition: Option<String>,
    /// Q.850 cause from a Reason header, where present.
    pub q850_cause: Option<u16>,
    /// `local` or `remote`.
    pub hangup_by: Option<String>,
    /// Machine-readable detail (`ring_timeout`, `remote_bye`, …).
    pub detail: Option<String>,
    /// RFC 3339 UTC with ms: when the attempt was stored, just before its INVITE.
    pub started_at: String,
    /// First 180/183.
    pub ringing_at: Option<String>,
    /// 2xx.
    pub answered_at: Option<String>,
    /// `terminated`.
    pub ended_at: Option<String>,
}

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

/// Builds the report of one campaign. Errors: database errors.
pub async fn build(store: &Store, campaign_id: i64, campaign: &str) -> anyhow::Result<Report> {
    let pool = store.pool();
    let lead_rows = sqlx::query(
        "SELECT id, number, attributes, final_disposition FROM leads WHERE campaign_id = ?1 ORDER BY id",
    )
    .bind(campaign_id)
    .fetch_all(pool)
    .await?;
    let attempt_rows = sqlx::query(
        "SELECT lead_id, attempt_no, call_id, sip_status, disposition, q850_cause, hangup_by, detail,
                started_at, ringing_at, answered_at, ended_at
         FROM attempts WHERE campaign_id = ?1 ORDER BY lead_id, attempt_no, id",
    )
    .bind(campaign_id)
    .fetch_all(pool)
    .await?;
    let mut by_lead: BTreeMap<i64, Vec<AttemptReport>> = BTreeMap::new();
    let mut attempt_dispositions = BTreeMap::new();
    let (mut attempts, mut answered, mut ended) = (0u64, 0u64, 0u64);
    for r in attempt_rows {
        let disposition: Option<String> = r.get(4);
        attempts += 1;
        if let Some(d) = &disposition {
            *attempt_dispositions.entry(d.clone()).or_insert(0) += 1;
            if d != Disposition::Interrupted.as_str() {
                ended += 1;
            }
            if d == Disposition::Answered.as_str() {
                answered += 1;
            }
        }
        by_lead.entry(r.get(0)).or_default().push(AttemptReport {
            attempt_no: r.get::<i64, _>(1) as u32,
            call_id: r.get(2),
            sip_status: r.get::<Option<i64>, _>(3).map(|v| v as u16),
            disposition,
            q850_cause: r.get::<Option<i64>, _>(5).map(|v| v as u16),
            hangup_by: r.get(6),
            detail: r.get(7),
            started_at: r.get(8),
            ringing_at: r.get(9),
            answered_at: r.get(10),
            ended_at: r.get(11),
        });
    }
    let mut amd = BTreeMap::new();
    for r in sqlx::query(
        "SELECT json_extract(e.data, '$.result'), COUNT(*) FROM call_events e
         JOIN attempts a ON a.id = e.attempt_id
         WHERE a.campaign_id = ?1 AND e.kind = 'amd' GROUP BY 1",
    )
    .bind(campaign_id)
    .fetch_all(pool)
    .await?
    {
        let result: Option<String> = r.get(0);
        amd.insert(result.unwrap_or_default(), r.get::<i64, _>(1) as u64);
    }
    let mut final_dispositions = BTreeMap::new();
    let mut leads = Vec::with_capacity(lead_rows.len());
    let mut leads_final = 0;
    for r in lead_rows {
        let id: i64 = r.get(0);
        let fd: Option<String> = r.get(3);
        if let Some(d) = &fd {
            leads_final += 1;
            *final_dispositions.entry(d.clone()).or_insert(0) += 1;
        }
        let attrs: String = r.get(2);
        leads.push(LeadReport {
            number: r.get(1),
            attributes: serde_json::from_str(&attrs).unwrap_or_default(),
            final_disposition: fd,
            attempts: by_lead.remove(&id).unwrap_or_default(),
        });
    }
    Ok(Report {
        summary: Summary {
            campaign: campaign.to_string(),
            leads: leads.len() as u64,
            leads_final,
            attempts,
            answered,
            answer_rate: if ended > 0 {
                answered as f64 / ended as f64
            } else {
                0.0
            },
            final_dispositions,
            attempt_dispositions,
            amd,
        },
        leads,
    })
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
