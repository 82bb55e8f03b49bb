//! What the service (`outdial serve`) keeps beside the campaigns' own tables: call lists
//! uploaded over the API, and campaign rows created there (drafts with their call lists).

use chrono::Utc;
use serde::Serialize;
use sqlx::Row;

use super::{Store, execute_values};
use crate::campaign::leads::NewLead;
use crate::events::rfc3339_ms;

/// A call list as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallListInfo {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Numbers in it.
    pub numbers_count: i64,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

/// A campaign row: id, name, state, the effective settings (JSON), its call lists.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignRow {
    /// Its id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// `draft`, `active`, `paused`, `completed`, `archived`.
    pub state: String,
    /// The settings (the campaign file's fields, snake_case JSON).
    pub config: String,
    /// Ids of its call lists.
    pub call_lists: Vec<i64>,
    /// Created, RFC 3339.
    pub created_at: String,
    /// Last changed, RFC 3339.
    pub updated_at: String,
}

/// Why a campaign could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum CampaignWriteError {
    /// Another campaign has this name.
    #[error("a campaign named {0:?} exists")]
    NameTaken(String),
    /// Anything else.
    #[error(transparent)]
    Db(#[from] anyhow::Error),
}

fn campaign_row(r: &sqlx::any::AnyRow) -> CampaignRow {
    CampaignRow {
        id: r.get("id"),
        name: r.get("name"),
        state: r.get("state"),
        config: r.get("config"),
        call_lists: serde_json::from_str(r.get::<&str, _>("call_lists")).unwrap_or_default(),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}

impl Store {
    /// Creates a call list with `numbers` (already validated) in one transaction.
    /// Errors: database failures (nothing is stored then).
    pub async fn create_call_list(
        &self,
        name: &str,
        numbers: &[NewLead],
    ) -> anyhow::Result<CallListInfo> {
        let now = rfc3339_ms(Utc::now());
        let mut tx = self.pool.begin().await?;
        let id: i64 =
            sqlx::query("INSERT INTO call_lists (name, created_at) VALUES ($1, $2) RETURNING id")
                .bind(name)
                .bind(&now)
                .fetch_one(&mut *tx)
                .await?
                .get(0);
        let attributes = numbers
            .iter()
            .map(|l| serde_json::to_string(&l.attributes))
            .collect::<Result<Vec<_>, _>>()?;
        let rows: Vec<(&NewLead, &String)> = numbers.iter().zip(&attributes).collect();
        for chunk in rows.chunks(1000) {
            execute_values(
                self.backend,
                &mut tx,
                "INSERT INTO call_list_numbers (list_id, number, raw_number, attributes, line) ",
                " ON CONFLICT(list_id, number) DO NOTHING",
                chunk,
                |b, (l, attrs)| {
                    b.push_bind(id)
                        .push_bind(&l.number)
                        .push_bind(&l.raw_number)
                        .push_bind(attrs.as_str())
                        .push_bind(l.line as i64);
                },
            )
            .await?;
        }
        tx.commit().await?;
        self.call_list(id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("call list {id} vanished"))
    }

    /// One call list. Errors: database failures.
    pub async fn call_list(&self, id: i64) -> anyhow::Result<Option<CallListInfo>> {
        Ok(self
            .call_lists_where("WHERE l.id = $1", Some(id))
            .await?
            .pop())
    }

    /// Every call list, oldest first. Errors: database failures.
    pub async fn call_lists(&self) -> anyhow::Result<Vec<CallListInfo>> {
        self.call_lists_where("", None).await
    }

    async fn call_lists_where(
        &self,
        filter: &str,
        id: Option<i64>,
    ) -> anyhow::Result<Vec<CallListInfo>> {
        // `filter` is one of this file's constants, never request text.
        let sql = format!(
            "SELECT l.id, l.name, l.created_at, \
             (SELECT COUNT(*) FROM call_list_numbers n WHERE n.list_id = l.id) \
             FROM call_lists l {filter} ORDER BY l.id"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(id) = id {
            q = q.bind(id);
        }
        Ok(q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| CallListInfo {
                id: r.get(0),
                name: r.get(1),
                created_at: r.get(2),
                numbers_count: r.get(3),
            })
            .collect())
    }

    /// The numbers of a call list as leads, in upload order. Errors: database failures.
    pub async fn call_list_numbers(&self, id: i64) -> anyhow::Result<Vec<NewLead>> {
        let rows = sqlx::query(
            "SELECT number, raw_number, attributes, line FROM call_list_numbers \
             WHERE list_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(NewLead {
                    number: r.get(0),
                    raw_number: r.get(1),
                    attributes: serde_json::from_str(r.get::<&str, _>(2))?,
                    line: r.get::<i64, _>(3) as u64,
                })
            })
            .collect()
    }

    /// Adds `numbers` (validated) to call list `id`, numbered after its last row; numbers
    /// already on it are left as they are. Returns how many were added. Errors: database
    /// failures (nothing is added then).
    pub async fn append_call_list(&self, id: i64, numbers: &[NewLead]) -> anyhow::Result<u64> {
        let mut tx = self.pool.begin().await?;
        let last: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(line), 0) FROM call_list_numbers WHERE list_id = $1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let attributes = numbers
            .iter()
            .map(|l| serde_json::to_string(&l.attributes))
            .collect::<Result<Vec<_>, _>>()?;
        let rows: Vec<(usize, (&NewLead, &String))> =
            numbers.iter().zip(&attributes).enumerate().collect();
        let mut added = 0;
        for chunk in rows.chunks(1000) {
            added += execute_values(
                self.backend,
                &mut tx,
                "INSERT INTO call_list_numbers (list_id, number, raw_number, attributes, line) ",
                " ON CONFLICT(list_id, number) DO NOTHING",
                chunk,
                |b, (i, (l, attrs))| {
                    b.push_bind(id)
                        .push_bind(&l.number)
                        .push_bind(&l.raw_number)
                        .push_bind(attrs.as_str())
                        .push_bind(last + 1 + *i as i64);
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(added)
    }

    /// A page of call list `id` in upload order: (row id, number, number as given, attributes
    /// JSON), at most `limit` rows after row `after`. Errors: database failures.
    pub async fn call_list_page(
        &self,
        id: i64,
        after: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<(i64, String, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT id, number, raw_number, attributes FROM call_list_numbers \
             WHERE list_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Replaces the attributes (JSON object text) of `number` on call list `id`; false when it
    /// is not on it. Errors: database failures.
    pub async fn set_call_list_attributes(
        &self,
        id: i64,
        number: &str,
        attributes: &str,
    ) -> anyhow::Result<bool> {
        Ok(sqlx::query(
            "UPDATE call_list_numbers SET attributes = $3 WHERE list_id = $1 AND number = $2",
        )
        .bind(id)
        .bind(number)
        .bind(attributes)
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0)
    }

    /// Takes `number` off call list `id`; false when it was not on it. Errors: database
    /// failures.
    pub async fn delete_call_list_number(&self, id: i64, number: &str) -> anyhow::Result<bool> {
        Ok(
            sqlx::query("DELETE FROM call_list_numbers WHERE list_id = $1 AND number = $2")
                .bind(id)
                .bind(number)
                .execute(&self.pool)
                .await?
                .rows_affected()
                > 0,
        )
    }

    /// Deletes a call list (its numbers with it). Returns false when there was none.
    /// Errors: database failures.
    pub async fn delete_call_list(&self, id: i64) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM call_list_numbers WHERE list_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM call_lists WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Creates a draft campaign. Errors: [`CampaignWriteError::NameTaken`], database failures.
    pub async fn create_campaign(
        &self,
        name: &str,
        config_json: &str,
        call_lists: &[i64],
    ) -> Result<CampaignRow, CampaignWriteError> {
        let now = rfc3339_ms(Utc::now());
        let r = sqlx::query(
            "INSERT INTO campaigns (name, config, state, call_lists, created_at, updated_at) \
             VALUES ($1, $2, 'draft', $3, $4, $4) \
             RETURNING id, name, state, config, call_lists, created_at, updated_at",
        )
        .bind(name)
        .bind(config_json)
        .bind(serde_json::to_string(call_lists).map_err(anyhow::Error::from)?)
        .bind(&now)
        .fetch_one(&self.pool)
        .await;
        match r {
            Ok(row) => Ok(campaign_row(&row)),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(CampaignWriteError::NameTaken(name.to_string()))
            }
            Err(e) => Err(CampaignWriteError::Db(e.into())),
        }
    }

    /// Replaces a campaign's settings and call lists (the caller checks its state).
    /// Errors: [`CampaignWriteError::NameTaken`], database failures.
    pub async fn update_campaign(
        &self,
        id: i64,
        name: &str,
        config_json: &str,
        call_lists: &[i64],
    ) -> Result<(), CampaignWriteError> {
        let r = sqlx::query(
            "UPDATE campaigns SET name = $2, config = $3, call_lists = $4, updated_at = $5 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(name)
        .bind(config_json)
        .bind(serde_json::to_string(call_lists).map_err(anyhow::Error::from)?)
        .bind(rfc3339_ms(Utc::now()))
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(CampaignWriteError::NameTaken(name.to_string()))
            }
            Err(e) => Err(CampaignWriteError::Db(e.into())),
        }
    }

    /// Sets a campaign's lifecycle state. Errors: database failures.
    pub async fn set_campaign_state(&self, id: i64, state: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE campaigns SET state = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(state)
            .bind(rfc3339_ms(Utc::now()))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// One campaign. Errors: database failures.
    pub async fn campaign(&self, id: i64) -> anyhow::Result<Option<CampaignRow>> {
        Ok(sqlx::query(
            "SELECT id, name, state, config, call_lists, created_at, updated_at \
                 FROM campaigns WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(campaign_row))
    }

    /// Every campaign, oldest first. Errors: database failures.
    pub async fn campaign_rows(&self) -> anyhow::Result<Vec<CampaignRow>> {
        Ok(sqlx::query(
            "SELECT id, name, state, config, call_lists, created_at, updated_at \
                 FROM campaigns ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(campaign_row)
        .collect())
    }

    /// Deletes a campaign that never dialled (a draft or one whose attempts are all gone).
    /// Returns false when it has leads or attempts (the caller archives it instead) or does
    /// not exist. Errors: database failures.
    pub async fn delete_campaign_if_unused(&self, id: i64) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await?;
        let used: i64 = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM attempts WHERE campaign_id = $1) + \
             (SELECT COUNT(*) FROM leads WHERE campaign_id = $1)",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?
        .get(0);
        if used > 0 {
            return Ok(false);
        }
        let n = sqlx::query("DELETE FROM campaigns WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Campaigns (id, state) that use call list `list`. Errors: database failures.
    pub async fn campaigns_using_list(&self, list: i64) -> anyhow::Result<Vec<(i64, String)>> {
        Ok(self
            .campaign_rows()
            .await?
            .into_iter()
            .filter(|c| c.call_lists.contains(&list))
            .map(|c| (c.id, c.state))
            .collect())
    }

    /// Stores a webhook event that could not be delivered. Errors: database failures.
    pub async fn dead_letter(
        &self,
        campaign_id: i64,
        url: &str,
        seq: u64,
        body: &str,
        attempts: u32,
        reason: &str,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO webhook_dead_letters (campaign_id, url, seq, body, attempts, reason, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(campaign_id)
        .bind(url)
        .bind(seq as i64)
        .bind(body)
        .bind(attempts as i64)
        .bind(reason)
        .bind(rfc3339_ms(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A campaign's dead-lettered webhook events: (sequence, body, attempts, reason).
    /// Errors: database failures.
    pub async fn dead_letters(
        &self,
        campaign_id: i64,
    ) -> anyhow::Result<Vec<(i64, String, i64, String)>> {
        Ok(sqlx::query(
            "SELECT seq, body, attempts, reason FROM webhook_dead_letters \
             WHERE campaign_id = $1 ORDER BY id",
        )
        .bind(campaign_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
    }

    /// Agents in the store: (id, realm, updated_at), by id. Errors: database failures.
    pub async fn agents(&self) -> anyhow::Result<Vec<(String, String, String)>> {
        Ok(
            sqlx::query("SELECT id, realm, updated_at FROM agents ORDER BY id")
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect(),
        )
    }

    /// A lead's attributes (JSON object text); `None` when there is no such lead.
    /// Errors: database failures.
    pub async fn lead_attributes(&self, lead_id: i64) -> anyhow::Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT attributes FROM leads WHERE id = $1")
                .bind(lead_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The digest realm an agent's HA1 is stored for; `None` when there is no such agent.
    /// Errors: database failures.
    pub async fn agent_realm(&self, id: &str) -> anyhow::Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT realm FROM agents WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Adds numbers to the do-not-call list (already listed ones are left). Returns how
    /// many were added. Errors: database failures (nothing is added then).
    pub async fn import_dnc(&self, numbers: &[String], source: &str) -> anyhow::Result<u64> {
        let now = rfc3339_ms(Utc::now());
        let mut tx = self.pool.begin().await?;
        let mut added = 0;
        for chunk in numbers.chunks(1000) {
            added += execute_values(
                self.backend,
                &mut tx,
                "INSERT INTO dnc (number, source, added_at) ",
                " ON CONFLICT(number) DO NOTHING",
                chunk,
                |b, n| {
                    b.push_bind(n.as_str())
                        .push_bind(source)
                        .push_bind(now.as_str());
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Every number on the do-not-call list. Errors: database failures.
    pub async fn dnc_set(&self) -> anyhow::Result<std::collections::HashSet<String>> {
        Ok(sqlx::query_scalar::<_, String>("SELECT number FROM dnc")
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .collect())
    }

    /// Stores IVR application `name` (its settings as JSON), replacing one of that name.
    /// Returns true when it is new. Errors: database failures.
    pub async fn put_ivr_app(&self, name: &str, config: &str) -> anyhow::Result<bool> {
        let now = rfc3339_ms(Utc::now());
        let mut tx = self.pool.begin().await?;
        let existed: Option<String> =
            sqlx::query_scalar("SELECT name FROM ivr_apps WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        if existed.is_some() {
            sqlx::query("UPDATE ivr_apps SET config = $2, updated_at = $3 WHERE name = $1")
                .bind(name)
                .bind(config)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query(
                "INSERT INTO ivr_apps (name, config, created_at, updated_at) VALUES ($1, $2, $3, $3)",
            )
            .bind(name)
            .bind(config)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(existed.is_none())
    }

    /// IVR application `name`: (settings JSON, created at, updated at). Errors: database
    /// failures.
    pub async fn ivr_app(&self, name: &str) -> anyhow::Result<Option<(String, String, String)>> {
        Ok(
            sqlx::query_as("SELECT config, created_at, updated_at FROM ivr_apps WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Every IVR application: (name, settings JSON, created at, updated at), by name.
    /// Errors: database failures.
    pub async fn ivr_apps(&self) -> anyhow::Result<Vec<(String, String, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT name, config, created_at, updated_at FROM ivr_apps ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Deletes IVR application `name`; false when there was none (campaigns keep their copy).
    /// Errors: database failures.
    pub async fn delete_ivr_app(&self, name: &str) -> anyhow::Result<bool> {
        Ok(sqlx::query("DELETE FROM ivr_apps WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?
            .rows_affected()
            > 0)
    }

    /// A page of the do-not-call list in number order: (number, source, added at), at most
    /// `limit` after `after` (exclusive). Errors: database failures.
    pub async fn dnc_page(
        &self,
        after: &str,
        limit: i64,
    ) -> anyhow::Result<Vec<(String, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT number, source, added_at FROM dnc WHERE number > $1 ORDER BY number LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Takes `number` off the do-not-call list; false when it was not on it. Errors:
    /// database failures.
    pub async fn delete_dnc(&self, number: &str) -> anyhow::Result<bool> {
        Ok(sqlx::query("DELETE FROM dnc WHERE number = $1")
            .bind(number)
            .execute(&self.pool)
            .await?
            .rows_affected()
            > 0)
    }

    /// How many numbers are on the do-not-call list. Errors: database failures.
    pub async fn dnc_count(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM dnc")
            .fetch_one(&self.pool)
            .await?)
    }

    /// True when `number` is on the do-not-call list. Errors: database failures.
    pub async fn is_dnc(&self, number: &str) -> anyhow::Result<bool> {
        Ok(sqlx::query("SELECT 1 FROM dnc WHERE number = $1")
            .bind(number)
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }
}
