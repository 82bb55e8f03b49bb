//! Read models: what the report, the statistics and the API's call views read from the store.
//! Every query of those lives here; the callers only shape the rows.

use std::collections::BTreeMap;

use sqlx::{AssertSqlSafe, Row};

use super::Store;

/// A lead as the report shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadRow {
    /// Lead id.
    pub id: i64,
    /// Number dialled.
    pub number: String,
    /// The call list's other columns, as stored (a JSON object).
    pub attributes: String,
    /// Its final disposition, while it has none `None`.
    pub final_disposition: Option<String>,
}

/// One attempt in the JSON report.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
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

/// The counts behind a campaign's statistics (one campaign, or every campaign), read in one
/// statement.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsCounts {
    /// Leads.
    pub leads: u64,
    /// Leads with a final disposition.
    pub leads_final: u64,
    /// Attempts made.
    pub attempts: u64,
    /// Attempts answered.
    pub answered: u64,
    /// Attempts ended (a disposition other than `interrupted`).
    pub ended: u64,
    /// `queued` events.
    pub queued: u64,
    /// `connected` events.
    pub connected: u64,
    /// `abandoned` events.
    pub abandoned: u64,
    /// Mean queue wait of connected calls, ms (0 without any).
    pub avg_wait_ms: f64,
    /// Mean talk time (connected → end), ms (0 without any).
    pub avg_talk_ms: f64,
}

/// Counts grouped by a key, per kind (see [`Store::grouped_counts`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupedCounts {
    /// Attempts by disposition.
    pub dispositions: BTreeMap<String, u64>,
    /// Attempts by the agent's disposition.
    pub agent_dispositions: BTreeMap<String, u64>,
    /// Connected calls per agent.
    pub agents: BTreeMap<String, u64>,
    /// AMD results (`human`, `machine`, `not_sure`).
    pub amd: BTreeMap<String, u64>,
    /// IVR choices by `node:digit` (`main:1`).
    pub ivr_choices: BTreeMap<String, u64>,
    /// IVR exits by how (`queue`, `recorded`, `dnc`, `hangup`, `timeout`, `loop`).
    pub ivr_exits: BTreeMap<String, u64>,
}

impl Store {
    /// A campaign's leads and attempts in order (leads by id; attempts, with their lead id,
    /// by lead, number, id). Errors: database errors.
    pub async fn report_rows(
        &self,
        campaign_id: i64,
    ) -> anyhow::Result<(Vec<LeadRow>, Vec<(i64, AttemptReport)>)> {
        let leads = sqlx::query(
            "SELECT id, number, attributes, final_disposition FROM leads \
             WHERE campaign_id = $1 ORDER BY id",
        )
        .bind(campaign_id)
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .map(|r| LeadRow {
            id: r.get(0),
            number: r.get(1),
            attributes: r.get(2),
            final_disposition: r.get(3),
        })
        .collect();
        let attempts = sqlx::query(
            "SELECT lead_id, attempt_no, call_id, sip_status, disposition, q850_cause, hangup_by,
                    detail, started_at, ringing_at, answered_at, ended_at
             FROM attempts WHERE campaign_id = $1 ORDER BY lead_id, attempt_no, id",
        )
        .bind(campaign_id)
        .fetch_all(self.pool())
        .await?
        .into_iter()
        .map(|r| {
            let attempt = AttemptReport {
                attempt_no: r.get::<i64, _>(1) as u32,
                call_id: r.get(2),
                sip_status: r.get::<Option<i64>, _>(3).map(|v| v as u16),
                disposition: r.get(4),
                q850_cause: r.get::<Option<i64>, _>(5).map(|v| v as u16),
                hangup_by: r.get(6),
                detail: r.get(7),
                started_at: r.get(8),
                ringing_at: r.get(9),
                answered_at: r.get(10),
                ended_at: r.get(11),
            };
            (r.get(0), attempt)
        })
        .collect();
        Ok((leads, attempts))
    }

    /// The statistics' counts and means of one campaign (`Some(id)`) or of all, in one
    /// statement. Errors: database errors.
    pub async fn stats_counts(&self, campaign_id: Option<i64>) -> anyhow::Result<StatsCounts> {
        let db = self.backend();
        let events = "FROM call_events e JOIN attempts a ON a.id = e.attempt_id \
                      WHERE ($1 IS NULL OR a.campaign_id = $1)";
        let sql = format!(
            "SELECT \
             (SELECT COUNT(*) FROM leads WHERE ($1 IS NULL OR campaign_id = $1)), \
             (SELECT COUNT(*) FROM leads WHERE ($1 IS NULL OR campaign_id = $1) AND status = 'final'), \
             (SELECT COUNT(*) FROM attempts WHERE ($1 IS NULL OR campaign_id = $1)), \
             (SELECT COUNT(*) FROM attempts WHERE ($1 IS NULL OR campaign_id = $1) AND disposition = 'answered'), \
             (SELECT COUNT(*) FROM attempts WHERE ($1 IS NULL OR campaign_id = $1) \
                AND disposition IS NOT NULL AND disposition != 'interrupted'), \
             (SELECT COUNT(*) {events} AND e.kind = 'queued'), \
             (SELECT COUNT(*) {events} AND e.kind = 'connected'), \
             (SELECT COUNT(*) {events} AND e.kind = 'abandoned'), \
             (SELECT AVG({wait}) {events} AND e.kind = 'connected'), \
             (SELECT AVG({talk}) {events} AND e.kind = 'connected')",
            wait = db.json_number("e.data", "wait_ms"),
            talk = db.ms_between("e.at", "a.ended_at"),
        );
        let r = sqlx::query(AssertSqlSafe(sql))
            .bind(campaign_id)
            .fetch_one(self.pool())
            .await?;
        let n = |i: usize| r.get::<i64, _>(i) as u64;
        Ok(StatsCounts {
            leads: n(0),
            leads_final: n(1),
            attempts: n(2),
            answered: n(3),
            ended: n(4),
            queued: n(5),
            connected: n(6),
            abandoned: n(7),
            avg_wait_ms: r.get::<Option<f64>, _>(8).unwrap_or(0.0),
            avg_talk_ms: r.get::<Option<f64>, _>(9).unwrap_or(0.0),
        })
    }

    /// Attempts by disposition and by agent disposition, connected calls per agent, and AMD
    /// results, of one campaign (`Some(id)`) or of all, in one statement.
    /// Errors: database errors.
    pub async fn grouped_counts(&self, campaign_id: Option<i64>) -> anyhow::Result<GroupedCounts> {
        let db = self.backend();
        let sql = format!(
            "SELECT 'd', disposition, COUNT(*) FROM attempts \
               WHERE ($1 IS NULL OR campaign_id = $1) AND disposition IS NOT NULL GROUP BY 2 \
             UNION ALL SELECT 'g', agent_disposition, COUNT(*) FROM attempts \
               WHERE ($1 IS NULL OR campaign_id = $1) AND agent_disposition IS NOT NULL GROUP BY 2 \
             UNION ALL SELECT 'a', {agent}, COUNT(*) FROM call_events e JOIN attempts a ON a.id = e.attempt_id \
               WHERE ($1 IS NULL OR a.campaign_id = $1) AND e.kind = 'connected' GROUP BY 2 \
             UNION ALL SELECT 'm', {amd}, COUNT(*) FROM call_events e JOIN attempts a ON a.id = e.attempt_id \
               WHERE ($1 IS NULL OR a.campaign_id = $1) AND e.kind = 'amd' GROUP BY 2 \
             UNION ALL SELECT 'i', {node} || ':' || {digit}, COUNT(*) FROM call_events e JOIN attempts a ON a.id = e.attempt_id \
               WHERE ($1 IS NULL OR a.campaign_id = $1) AND e.kind = 'ivr_choice' GROUP BY 2 \
             UNION ALL SELECT 'x', {exit}, COUNT(*) FROM call_events e JOIN attempts a ON a.id = e.attempt_id \
               WHERE ($1 IS NULL OR a.campaign_id = $1) AND e.kind = 'ivr_exit' GROUP BY 2",
            agent = db.json_text("e.data", "agent"),
            amd = db.json_text("e.data", "result"),
            node = db.json_text("e.data", "node"),
            digit = db.json_text("e.data", "digit"),
            exit = db.json_text("e.data", "exit"),
        );
        let mut out = GroupedCounts::default();
        for r in sqlx::query(AssertSqlSafe(sql))
            .bind(campaign_id)
            .fetch_all(self.pool())
            .await?
        {
            let kind: String = r.get(0);
            let key: Option<String> = r.get(1);
            let n = r.get::<i64, _>(2) as u64;
            let map = match kind.as_str() {
                "d" => &mut out.dispositions,
                "g" => &mut out.agent_dispositions,
                "a" => &mut out.agents,
                "i" => &mut out.ivr_choices,
                "x" => &mut out.ivr_exits,
                _ => &mut out.amd,
            };
            // An AMD event without a result counts under "" (as the report always did);
            // the other groups skip rows without a key.
            match key {
                Some(k) => *map.entry(k).or_insert(0) += n,
                None if kind == "m" => *map.entry(String::new()).or_insert(0) += n,
                None => {}
            }
        }
        Ok(out)
    }

    /// Post-dial delays (INVITE → first ringing or early media), ms, of one campaign or all.
    /// Errors: database errors.
    pub async fn post_dial_delays(&self, campaign_id: Option<i64>) -> anyhow::Result<Vec<f64>> {
        let sql = format!(
            "SELECT {} FROM attempts WHERE ($1 IS NULL OR campaign_id = $1) \
             AND ringing_at IS NOT NULL",
            self.backend().ms_between("started_at", "ringing_at")
        );
        Ok(sqlx::query(AssertSqlSafe(sql))
            .bind(campaign_id)
            .fetch_all(self.pool())
            .await?
            .into_iter()
            .map(|r| r.get::<Option<f64>, _>(0).unwrap_or(0.0))
            .collect())
    }

    /// Attempts started since `since` (RFC 3339 UTC, as stored), by the minute they started
    /// (`YYYY-MM-DDTHH:MM`), of one campaign or all, in time order: (minute, started,
    /// answered, ended). The monitor's charts over the last hour. Errors: database errors.
    pub async fn attempts_by_minute(
        &self,
        campaign_id: Option<i64>,
        since: &str,
    ) -> anyhow::Result<Vec<(String, i64, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT substr(started_at, 1, 16) AS m, COUNT(*), \
             SUM(CASE WHEN answered_at IS NOT NULL THEN 1 ELSE 0 END), \
             SUM(CASE WHEN ended_at IS NOT NULL THEN 1 ELSE 0 END) \
             FROM attempts WHERE ($1 IS NULL OR campaign_id = $1) AND started_at >= $2 \
             GROUP BY m ORDER BY m",
        )
        .bind(campaign_id)
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get::<String, _>(0),
                    r.get::<i64, _>(1),
                    r.get::<Option<i64>, _>(2).unwrap_or(0),
                    r.get::<Option<i64>, _>(3).unwrap_or(0),
                )
            })
            .collect())
    }

    /// The span of one campaign's attempts (or all): the first start and the last end (RFC
    /// 3339), `None` without attempts. Errors: database errors.
    pub async fn attempts_span(
        &self,
        campaign_id: Option<i64>,
    ) -> anyhow::Result<(Option<String>, Option<String>)> {
        let r = sqlx::query(
            "SELECT MIN(started_at), MAX(COALESCE(ended_at, started_at)) FROM attempts \
             WHERE ($1 IS NULL OR campaign_id = $1)",
        )
        .bind(campaign_id)
        .fetch_one(self.pool())
        .await?;
        Ok((r.get(0), r.get(1)))
    }

    /// Every agent state change up to `until` (RFC 3339), in order: (agent, state, at).
    /// Errors: database errors.
    pub async fn agent_changes_until(
        &self,
        until: &str,
    ) -> anyhow::Result<Vec<(String, String, String)>> {
        Ok(
            sqlx::query_as("SELECT agent, state, at FROM agent_events WHERE at <= $1 ORDER BY id")
                .bind(until)
                .fetch_all(self.pool())
                .await?,
        )
    }
}

/// One call (attempt) as the API and the CDR show it (`GET /v1/calls`, the campaign CDR).
/// Serialises with the API's camelCase names.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    /// SIP Call-ID.
    pub call_id: Option<String>,
    /// Campaign id.
    pub campaign_id: i64,
    /// Lead id.
    pub lead_id: i64,
    /// Number dialled.
    pub number: String,
    /// 1-based attempt number.
    pub attempt_no: i64,
    /// `live` while dialling, else `finished`.
    pub status: &'static str,
    /// Final SIP status of the INVITE.
    pub sip_status: Option<i64>,
    /// Its reason phrase.
    pub reason_phrase: Option<String>,
    /// Disposition.
    pub disposition: Option<String>,
    /// Q.850 cause.
    pub q850_cause: Option<i64>,
    /// `local` / `remote`.
    pub hangup_by: Option<String>,
    /// Machine-readable detail.
    pub detail: Option<String>,
    /// The agent's disposition.
    pub agent_disposition: Option<String>,
    /// RFC 3339 times.
    pub started_at: String,
    /// First 180/183.
    pub ringing_at: Option<String>,
    /// 2xx.
    pub answered_at: Option<String>,
    /// End.
    pub ended_at: Option<String>,
    /// The attempt's row id (for its events).
    #[serde(skip)]
    pub attempt_id: i64,
}

/// Which calls [`Store::calls`] lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallFilter {
    /// One campaign's only.
    pub campaign_id: Option<i64>,
    /// Live (`Some(true)`) or finished (`Some(false)`) only.
    pub live: Option<bool>,
    /// With this disposition only.
    pub disposition: Option<String>,
    /// At most so many (1–1000), from `offset` (in attempt order).
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
}

const CALL_COLUMNS: &str = "a.call_id, a.campaign_id, a.lead_id, l.number, a.attempt_no, a.state, \
     a.sip_status, a.reason_phrase, a.disposition, a.q850_cause, a.hangup_by, a.detail, \
     a.agent_disposition, a.started_at, a.ringing_at, a.answered_at, a.ended_at, a.id";

fn call_record(r: &sqlx::any::AnyRow) -> CallRecord {
    CallRecord {
        call_id: r.get(0),
        campaign_id: r.get(1),
        lead_id: r.get(2),
        number: r.get(3),
        attempt_no: r.get(4),
        status: if r.get::<String, _>(5) == "ended" {
            "finished"
        } else {
            "live"
        },
        sip_status: r.get(6),
        reason_phrase: r.get(7),
        disposition: r.get(8),
        q850_cause: r.get(9),
        hangup_by: r.get(10),
        detail: r.get(11),
        agent_disposition: r.get(12),
        started_at: r.get(13),
        ringing_at: r.get(14),
        answered_at: r.get(15),
        ended_at: r.get(16),
        attempt_id: r.get(17),
    }
}

impl Store {
    /// Calls matching `f`, in attempt order. Errors: database errors.
    pub async fn calls(&self, f: &CallFilter) -> anyhow::Result<Vec<CallRecord>> {
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM attempts a JOIN leads l ON l.id = a.lead_id \
             WHERE ($1 IS NULL OR a.campaign_id = $1) AND ($2 IS NULL OR a.state = $2) \
             AND ($3 IS NULL OR a.disposition = $3) ORDER BY a.id LIMIT $4 OFFSET $5"
        );
        let state = f.live.map(|l| if l { "dialing" } else { "ended" });
        Ok(sqlx::query(AssertSqlSafe(sql))
            .bind(f.campaign_id)
            .bind(state)
            .bind(f.disposition.as_deref())
            .bind(f.limit)
            .bind(f.offset)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(call_record)
            .collect())
    }

    /// Every call of a campaign, in attempt order (the CDR). Errors: database errors.
    pub async fn campaign_calls(&self, campaign_id: i64) -> anyhow::Result<Vec<CallRecord>> {
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM attempts a JOIN leads l ON l.id = a.lead_id \
             WHERE a.campaign_id = $1 ORDER BY a.id"
        );
        Ok(sqlx::query(AssertSqlSafe(sql))
            .bind(campaign_id)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(call_record)
            .collect())
    }

    /// The `dialer_sync` events of a campaign's calls (one per agent that handled the call,
    /// in order): (attempt row id, the event as stored). The CDR's agent columns. Errors:
    /// database errors.
    pub async fn campaign_syncs(&self, campaign_id: i64) -> anyhow::Result<Vec<(i64, String)>> {
        Ok(sqlx::query_as(
            "SELECT e.attempt_id, e.data FROM call_events e JOIN attempts a ON a.id = e.attempt_id \
             WHERE a.campaign_id = $1 AND e.kind = 'dialer_sync' ORDER BY e.id",
        )
        .bind(campaign_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// The call with this Call-ID, if stored. Errors: database errors.
    pub async fn call(&self, call_id: &str) -> anyhow::Result<Option<CallRecord>> {
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM attempts a JOIN leads l ON l.id = a.lead_id \
             WHERE a.call_id = $1"
        );
        Ok(sqlx::query(AssertSqlSafe(sql))
            .bind(call_id)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(call_record))
    }

    /// An attempt's stored events in order: (RFC 3339 time, the event as JSON text).
    /// Errors: database errors.
    pub async fn attempt_events(&self, attempt_id: i64) -> anyhow::Result<Vec<(String, String)>> {
        Ok(
            sqlx::query_as("SELECT at, data FROM call_events WHERE attempt_id = $1 ORDER BY id")
                .bind(attempt_id)
                .fetch_all(self.pool())
                .await?,
        )
    }
}
