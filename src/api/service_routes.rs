//! The service's endpoints (`outdial serve`): call lists, campaigns and their lifecycle,
//! calls with their event timelines, CDRs and statistics.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ApiState, Caller, Json, Problem, Role};
use crate::campaign::leads::{self, NewLead};
use crate::service::convert::{self, snake_to_camel};
use crate::service::{ControlError, Service};
use crate::store::service::{CallListInfo, CampaignRow, CampaignWriteError};

/// The routes, to merge into the API router.
pub fn routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route(
            "/v1/call-lists",
            get(list_call_lists).post(create_call_list).layer(
                axum::extract::DefaultBodyLimit::max(super::MAX_CALL_LIST_BODY),
            ),
        )
        .route(
            "/v1/call-lists/{id}",
            get(get_call_list).delete(delete_call_list),
        )
        .route(
            "/v1/call-lists/{id}/numbers",
            get(list_numbers)
                .post(append_numbers)
                .layer(axum::extract::DefaultBodyLimit::max(
                    super::MAX_CALL_LIST_BODY,
                )),
        )
        .route(
            "/v1/call-lists/{id}/numbers/{number}",
            put(edit_number).delete(delete_number),
        )
        .route("/v1/campaigns", get(list_campaigns).post(create_campaign))
        .route(
            "/v1/campaigns/{id}",
            get(get_campaign)
                .put(update_campaign)
                .delete(delete_campaign),
        )
        .route("/v1/campaigns/{id}/control", put(control_campaign))
        .route("/v1/campaigns/{id}/stats", get(campaign_stats))
        .route("/v1/campaigns/{id}/events", get(campaign_events))
        .route("/v1/campaigns/{id}/cdr", get(campaign_cdr))
        .route("/v1/ivr", get(list_ivr_apps))
        .route(
            "/v1/ivr/{name}",
            get(get_ivr_app).put(put_ivr_app).delete(delete_ivr_app),
        )
        .route("/v1/dnc", get(list_dnc).post(add_dnc))
        .route("/v1/dnc/{number}", get(get_dnc).delete(delete_dnc))
        .route("/v1/agents/{id}/next-lead", axum::routing::post(next_lead))
        .route("/v1/agents/{id}/call", get(agent_call))
        .route("/v1/stats/series", get(stats_series))
        .route("/v1/calls", get(list_calls).post(place_call))
        .route("/v1/calls/{callId}", get(get_call))
        .route("/v1/calls/{callId}/recording", get(get_call_recording))
}

/// A database failure: logged, answered 500 without details.
pub(super) fn db_error(e: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %e, "database error");
    Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "database error")
}

fn service(state: &ApiState) -> Result<&Arc<Service>, Problem> {
    state.service.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "campaign management needs `outdial serve`",
        )
    })
}

fn parse_id(s: &str, what: &str) -> Result<i64, Problem> {
    s.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, format!("no {what} {s:?}")))
}

// ---------------------------------------------------------------- call lists

/// `POST /v1/call-lists` JSON body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CallListBody {
    name: String,
    /// ISO 3166 region for national numbers (`US`, `GB`).
    #[serde(default)]
    default_region: Option<String>,
    numbers: Vec<NumberBody>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NumberBody {
    number: String,
    #[serde(default)]
    attributes: BTreeMap<String, Value>,
}

/// `?name=&defaultRegion=` of a CSV upload.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CsvQuery {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    default_region: Option<String>,
}

/// A created call list with the rows refused.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CreatedList {
    #[serde(flatten)]
    info: CallListInfo,
    /// Rows not imported: `line` (CSV, 1-based with the header as line 1) or `index`
    /// (JSON, 0-based), and why.
    errors: Vec<RowProblem>,
}

#[derive(Debug, Serialize)]
struct RowProblem {
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<u64>,
    reason: String,
}

fn region(r: Option<&str>) -> Result<Option<phonenumber::country::Id>, Problem> {
    r.map(|r| {
        r.parse::<phonenumber::country::Id>()
            .map_err(|_| Problem::invalid("defaultRegion", format!("{r:?} is not a region code")))
    })
    .transpose()
}

async fn create_call_list(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Query(q): Query<CsvQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    caller.require(Role::Admin)?;
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let (name, numbers, errors) = if ctype.starts_with("text/csv") {
        let name = q
            .name
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| Problem::invalid("name", "give the list's name as ?name="))?;
        let import = leads::read_csv(&body[..], region(q.default_region.as_deref())?)
            .map_err(|e| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
        let errors = import
            .errors
            .into_iter()
            .map(|e| RowProblem {
                line: Some(e.line),
                index: None,
                reason: e.reason,
            })
            .collect::<Vec<_>>();
        (name, import.leads, errors)
    } else if ctype.starts_with("application/json") {
        let b: CallListBody = serde_json::from_slice(&body).map_err(|e| {
            let status = if e.is_data() {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::BAD_REQUEST
            };
            Problem::new(status, e.to_string())
        })?;
        if b.name.trim().is_empty() || b.name.len() > 100 {
            return Err(Problem::invalid("name", "1 to 100 characters"));
        }
        let reg = region(b.default_region.as_deref())?;
        let (ok, errors) = json_numbers(b.numbers, reg);
        (b.name, ok, errors)
    } else {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send application/json or text/csv",
        ));
    };
    if numbers.is_empty() {
        let mut p = Problem::invalid("numbers", "no valid number: nothing stored");
        p.detail = format!(
            "no valid number: nothing stored ({} row(s) refused{})",
            errors.len(),
            errors
                .first()
                .map(|e| format!("; first: {}", e.reason))
                .unwrap_or_default()
        );
        return Err(p);
    }
    let info = state
        .store
        .create_call_list(name.trim(), &numbers)
        .await
        .map_err(db_error)?;
    Ok((StatusCode::CREATED, Json(CreatedList { info, errors })).into_response())
}

/// JSON numbers validated: the leads, and the rows refused (by index).
fn json_numbers(
    numbers: Vec<NumberBody>,
    reg: Option<phonenumber::country::Id>,
) -> (Vec<NewLead>, Vec<RowProblem>) {
    let mut seen = std::collections::HashSet::new();
    let (mut ok, mut errors) = (Vec::new(), Vec::new());
    for (i, n) in numbers.into_iter().enumerate() {
        let refuse = |reason: String| RowProblem {
            line: None,
            index: Some(i as u64),
            reason,
        };
        match leads::normalise(&n.number, reg) {
            Ok(num) if !seen.insert(num.clone()) => {
                errors.push(refuse(format!("duplicate number {num}")))
            }
            Ok(num) => ok.push(NewLead {
                number: num,
                raw_number: n.number,
                attributes: string_attributes(n.attributes),
                line: i as u64,
            }),
            Err(e) => errors.push(refuse(e)),
        }
    }
    (ok, errors)
}

/// Attribute values as the store keeps them: strings (a number or `true` as its JSON text).
fn string_attributes(a: BTreeMap<String, Value>) -> BTreeMap<String, String> {
    a.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect()
}

/// `POST /v1/call-lists/{id}/numbers` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AppendBody {
    #[serde(default)]
    default_region: Option<String>,
    numbers: Vec<NumberBody>,
}

/// `GET /v1/call-lists/{id}/numbers` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NumbersPage {
    after: Option<i64>,
    limit: Option<i64>,
}

/// `PUT /v1/call-lists/{id}/numbers/{number}` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttributesBody {
    attributes: BTreeMap<String, Value>,
}

async fn existing_list(state: &ApiState, id: &str) -> Result<i64, Problem> {
    let id = parse_id(id, "call list")?;
    state
        .store
        .call_list(id)
        .await
        .map_err(db_error)?
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, format!("no call list {id}")))?;
    Ok(id)
}

/// `GET /v1/call-lists/{id}/numbers?after=&limit=`: the list's numbers in upload order, a
/// page at a time: `{"numbers": [{"id", "number", "rawNumber", "attributes"}], "next"}`.
async fn list_numbers(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<NumbersPage>,
) -> Result<Json<Value>, Problem> {
    caller.require(Role::Supervisor)?;
    let id = existing_list(&state, &id).await?;
    let limit = page_limit(q.limit)?;
    let rows = state
        .store
        .call_list_page(id, q.after.unwrap_or(0), limit)
        .await
        .map_err(db_error)?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.0))
        .flatten();
    let numbers: Vec<Value> = rows
        .into_iter()
        .map(|(rid, n, raw, a)| {
            serde_json::json!({"id": rid, "number": n, "rawNumber": raw,
                "attributes": serde_json::from_str::<Value>(&a).unwrap_or(Value::Null)})
        })
        .collect();
    Ok(Json(serde_json::json!({"numbers": numbers, "next": next})))
}

/// `POST /v1/call-lists/{id}/numbers`: appends numbers (JSON, as at creation); those already
/// on the list are left. `{"added", "alreadyPresent", "errors"}`. A campaign using the list
/// dials them from its next start or `reload`.
async fn append_numbers(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    Json(b): Json<AppendBody>,
) -> Result<Json<Value>, Problem> {
    caller.require(Role::Admin)?;
    let id = existing_list(&state, &id).await?;
    if b.numbers.len() > 1_000_000 {
        return Err(Problem::invalid("numbers", "at most 1,000,000 per request"));
    }
    let reg = region(b.default_region.as_deref())?;
    let (ok, errors) = json_numbers(b.numbers, reg);
    let added = state
        .store
        .append_call_list(id, &ok)
        .await
        .map_err(db_error)?;
    Ok(Json(serde_json::json!({
        "added": added, "alreadyPresent": ok.len() as u64 - added, "errors": errors
    })))
}

/// `PUT /v1/call-lists/{id}/numbers/{number}`: replaces a number's attributes.
async fn edit_number(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path((id, number)): Path<(String, String)>,
    Json(b): Json<AttributesBody>,
) -> Result<StatusCode, Problem> {
    caller.require(Role::Admin)?;
    let (id, n) = list_and_number(&state, &id, &number).await?;
    let attrs = serde_json::to_string(&string_attributes(b.attributes)).map_err(db_error)?;
    let found = state
        .store
        .set_call_list_attributes(id, &n, &attrs)
        .await
        .map_err(db_error)?;
    number_found(found, id, &n)
}

/// The call list of path member `id` (404 when there is none) and the path's `number`
/// written as stored (422 when it is not a number).
async fn list_and_number(
    state: &ApiState,
    id: &str,
    number: &str,
) -> Result<(i64, String), Problem> {
    let id = existing_list(state, id).await?;
    let n = leads::normalise(number, None)
        .map_err(|e| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    Ok((id, n))
}

/// `204` when the number was on list `id` (and changed), else `404`.
fn number_found(found: bool, id: i64, n: &str) -> Result<StatusCode, Problem> {
    if found {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::new(
            StatusCode::NOT_FOUND,
            format!("{n} is not on call list {id}"),
        ))
    }
}

/// `DELETE /v1/call-lists/{id}/numbers/{number}`: takes a number off the list.
async fn delete_number(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path((id, number)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    caller.require(Role::Admin)?;
    let (id, n) = list_and_number(&state, &id, &number).await?;
    let found = state
        .store
        .delete_call_list_number(id, &n)
        .await
        .map_err(db_error)?;
    number_found(found, id, &n)
}

async fn list_call_lists(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Json<Vec<CallListInfo>>, Problem> {
    caller.require(Role::Supervisor)?;
    Ok(Json(state.store.call_lists().await.map_err(db_error)?))
}

async fn get_call_list(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CallListInfo>, Problem> {
    caller.require(Role::Supervisor)?;
    let id = parse_id(&id, "call list")?;
    state
        .store
        .call_list(id)
        .await
        .map_err(db_error)?
        .map(Json)
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, format!("no call list {id}")))
}

async fn delete_call_list(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require(Role::Admin)?;
    let id = parse_id(&id, "call list")?;
    let users = state
        .store
        .campaigns_using_list(id)
        .await
        .map_err(db_error)?;
    if let Some((c, s)) = users.iter().find(|(_, s)| s == "active" || s == "paused") {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            format!("campaign {c} ({s}) dials this list: remove it first"),
        ));
    }
    if state.store.delete_call_list(id).await.map_err(db_error)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::new(
            StatusCode::NOT_FOUND,
            format!("no call list {id}"),
        ))
    }
}

// ---------------------------------------------------------------- campaigns

/// A campaign as the API shows it: its row and its settings in camelCase.
fn campaign_view(row: &CampaignRow) -> Value {
    let settings: Value = serde_json::from_str(&row.config).unwrap_or(Value::Null);
    let mut v = convert::rename_keys(settings, &snake_to_camel);
    if !v.is_object() {
        v = Value::Object(Default::default());
    }
    let m = v.as_object_mut().expect("object");
    // The webhook's HMAC key is write-only.
    if let Some(w) = m.get_mut("webhook").and_then(|w| w.as_object_mut()) {
        w.remove("secret");
    }
    m.insert("id".into(), row.id.into());
    m.insert("name".into(), row.name.clone().into());
    m.insert("state".into(), row.state.clone().into());
    m.insert("callLists".into(), serde_json::json!(row.call_lists));
    m.insert("createdAt".into(), row.created_at.clone().into());
    m.insert("updatedAt".into(), row.updated_at.clone().into());
    v
}

/// Validates a campaign body: (name, stored settings, call lists). An `ivrApp` naming a stored
/// IVR application is replaced by a copy of it (`ivr`).
async fn checked_body(
    state: &ApiState,
    svc: &Service,
    body: Value,
) -> Result<(String, Value, Vec<i64>), Problem> {
    let (name, mut settings, lists) = convert::split_body(body)?;
    if let Some(app) = settings.as_object_mut().and_then(|m| m.remove("ivr_app")) {
        let Some(app_name) = app.as_str() else {
            return Err(Problem::invalid("ivrApp", "the name of an IVR application"));
        };
        let (config, _, _) = state
            .store
            .ivr_app(app_name)
            .await
            .map_err(db_error)?
            .ok_or_else(|| {
                Problem::invalid(
                    "ivrApp",
                    format!("no IVR application {app_name:?} (GET /v1/ivr)"),
                )
            })?;
        let app: Value = serde_json::from_str(&config).map_err(db_error)?;
        settings["ivr"] = app;
    }
    convert::campaign_config(&svc.defaults, settings.clone())?;
    for l in &lists {
        if state.store.call_list(*l).await.map_err(db_error)?.is_none() {
            return Err(Problem::invalid("callLists", format!("no call list {l}")));
        }
    }
    Ok((name, settings, lists))
}

fn write_error(e: CampaignWriteError) -> Problem {
    match e {
        CampaignWriteError::NameTaken(n) => Problem {
            field: Some("name".into()),
            ..Problem::new(
                StatusCode::CONFLICT,
                format!("a campaign named {n:?} exists"),
            )
        },
        CampaignWriteError::Db(e) => db_error(e),
    }
}

async fn create_campaign(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Json(body): Json<Value>,
) -> Result<Response, Problem> {
    caller.require(Role::Admin)?;
    let svc = service(&state)?;
    let (name, settings, lists) = checked_body(&state, svc, body).await?;
    let row = state
        .store
        .create_campaign(&name, &settings.to_string(), &lists)
        .await
        .map_err(write_error)?;
    Ok((StatusCode::CREATED, Json(campaign_view(&row))).into_response())
}

async fn list_campaigns(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Json<Vec<Value>>, Problem> {
    caller.require(Role::Supervisor)?;
    let rows = state.store.campaign_rows().await.map_err(db_error)?;
    Ok(Json(rows.iter().map(campaign_view).collect()))
}

async fn load_campaign(state: &ApiState, id: &str) -> Result<CampaignRow, Problem> {
    let id = parse_id(id, "campaign")?;
    state
        .store
        .campaign(id)
        .await
        .map_err(db_error)?
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, format!("no campaign {id}")))
}

async fn get_campaign(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require(Role::Supervisor)?;
    Ok(Json(campaign_view(&load_campaign(&state, &id).await?)))
}

async fn update_campaign(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, Problem> {
    caller.require(Role::Admin)?;
    let svc = service(&state)?;
    let row = load_campaign(&state, &id).await?;
    if row.state != "draft" && row.state != "paused" {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            format!(
                "a campaign that is {} cannot be edited (drafts can; paused ones too, then reload)",
                row.state
            ),
        ));
    }
    let (name, settings, lists) = checked_body(&state, svc, body).await?;
    if row.state != "draft" && name != row.name {
        return Err(Problem::invalid(
            "name",
            "a campaign's name cannot change once it has started",
        ));
    }
    state
        .store
        .update_campaign(row.id, &name, &settings.to_string(), &lists)
        .await
        .map_err(write_error)?;
    Ok(Json(campaign_view(&load_campaign(&state, &id).await?)))
}

async fn delete_campaign(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require(Role::Admin)?;
    let row = load_campaign(&state, &id).await?;
    if row.state == "active" || row.state == "paused" {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            format!("the campaign is {}: remove it first (control)", row.state),
        ));
    }
    if state
        .store
        .delete_campaign_if_unused(row.id)
        .await
        .map_err(db_error)?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::new(
            StatusCode::CONFLICT,
            "the campaign has calls on record and is kept; `remove` archives it",
        ))
    }
}

/// `PUT /v1/campaigns/{id}/control` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ControlBody {
    command: String,
    /// `recycle`: the final dispositions whose leads to dial again.
    #[serde(default)]
    dispositions: Vec<String>,
}

async fn control_campaign(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<ControlBody>,
) -> Result<Json<Value>, Problem> {
    caller.require(Role::Supervisor)?;
    let svc = service(&state)?;
    let id = parse_id(&id, "campaign")?;
    match svc
        .control_with(id, &body.command, &body.dispositions)
        .await
    {
        Ok(s) => Ok(Json(serde_json::json!({ "id": id, "state": s }))),
        Err(ControlError::NotFound(_)) => Err(Problem::new(
            StatusCode::NOT_FOUND,
            format!("no campaign {id}"),
        )),
        Err(ControlError::Conflict(m)) => Err(Problem::new(StatusCode::CONFLICT, m)),
        Err(ControlError::Invalid(m)) => Err(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, m)),
        Err(ControlError::Db(e)) => Err(db_error(e)),
    }
}

// ---------------------------------------------------------------- calls

/// `GET /v1/calls` filters.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallsQuery {
    #[serde(default)]
    campaign_id: Option<i64>,
    /// `live` or `finished`.
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    disposition: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    offset: Option<i64>,
}

fn call_view(r: &crate::store::reads::CallRecord) -> Value {
    serde_json::to_value(r).unwrap_or(Value::Null)
}

/// `POST /v1/calls`: one call on demand, as a CPaaS API places one — `to` (the number),
/// and any campaign setting in camelCase (`callerId` for the from number, `trunk`, `amd`,
/// `onMachine`, `holdTime`, `webhook`, …) over the service's `campaign_defaults`. It runs as a
/// campaign of one (named `call-…`, its events on the live stream and its webhook like any
/// campaign's) and answers `201` with `campaignId` and, once the attempt is stored (within a
/// few seconds), the call's `callId`; follow it with `GET /v1/calls/{callId}`.
async fn place_call(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Json(body): Json<Value>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    caller.require(Role::Admin)?;
    let svc = service(&state)?;
    let Value::Object(mut m) = body else {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the body must be a JSON object",
        ));
    };
    let to = match m.remove("to") {
        Some(Value::String(t)) => t,
        _ => return Err(Problem::invalid("to", "the number to call is required")),
    };
    let region = m
        .get("defaultRegion")
        .and_then(|r| r.as_str())
        .map(|r| region(Some(r)))
        .transpose()?
        .flatten();
    let number = leads::normalise(&to, region).map_err(|e| Problem::invalid("to", e))?;
    for reserved in ["name", "callLists"] {
        if m.contains_key(reserved) {
            return Err(Problem::invalid(
                reserved,
                "set by POST /v1/calls itself (a campaign of one)",
            ));
        }
    }
    let name = format!(
        "call-{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f"),
        rand::random::<u32>()
    );
    m.insert("name".into(), name.clone().into());
    let (name, settings, _) = checked_body(&state, svc, Value::Object(m)).await?;
    let list = state
        .store
        .create_call_list(
            &name,
            &[NewLead {
                number: number.clone(),
                raw_number: to,
                attributes: Default::default(),
                line: 0,
            }],
        )
        .await
        .map_err(db_error)?;
    let row = state
        .store
        .create_campaign(&name, &settings.to_string(), &[list.id])
        .await
        .map_err(write_error)?;
    match svc.control(row.id, "start").await {
        Ok(_) => {}
        Err(ControlError::Conflict(m)) => return Err(Problem::new(StatusCode::CONFLICT, m)),
        Err(ControlError::Invalid(m)) => {
            return Err(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, m));
        }
        Err(ControlError::NotFound(_)) => return Err(db_error("the call's campaign vanished")),
        Err(ControlError::Db(e)) => return Err(db_error(e)),
    }
    // The attempt is stored just before its INVITE: wait a little for its Call-ID.
    let mut call_id = None;
    for _ in 0..30 {
        let calls = state.store.campaign_calls(row.id).await.map_err(db_error)?;
        if let Some(c) = calls.into_iter().next().and_then(|c| c.call_id) {
            call_id = Some(c);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "campaignId": row.id, "campaign": name, "number": number, "callId": call_id
        })),
    ))
}

async fn list_calls(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Query(q): Query<CallsQuery>,
) -> Result<Json<Vec<Value>>, Problem> {
    caller.require(Role::Supervisor)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::invalid("limit", "1 to 1000"));
    }
    let offset = q.offset.unwrap_or(0);
    if offset < 0 {
        return Err(Problem::invalid("offset", "0 or more"));
    }
    let live = match q.status.as_deref() {
        None => None,
        Some("live") => Some(true),
        Some("finished") => Some(false),
        Some(o) => {
            return Err(Problem::invalid(
                "status",
                format!("{o:?}: live or finished"),
            ));
        }
    };
    // `no_answer` or the API's own spelling `noAnswer`; anything else is an error, not `[]`.
    let disposition = match q.disposition.as_deref() {
        None => None,
        Some(d) => {
            use crate::events::disposition::Disposition;
            let known = Disposition::parse(d)
                .or_else(|| Disposition::parse(&crate::service::convert::camel_to_snake(d)));
            match known {
                Some(k) => Some(k.as_str().to_string()),
                None => {
                    let names: Vec<&str> = Disposition::ALL.iter().map(|d| d.as_str()).collect();
                    return Err(Problem::invalid(
                        "disposition",
                        format!("{d:?}: one of {}", names.join(", ")),
                    ));
                }
            }
        }
    };
    let rows = state
        .store
        .calls(&crate::store::reads::CallFilter {
            campaign_id: q.campaign_id,
            live,
            disposition,
            limit,
            offset,
        })
        .await
        .map_err(db_error)?;
    Ok(Json(rows.iter().map(call_view).collect()))
}

async fn get_call(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(call_id): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require(Role::Supervisor)?;
    let row = state
        .store
        .call(&call_id)
        .await
        .map_err(db_error)?
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, format!("no call {call_id:?}")))?;
    let mut v = call_view(&row);
    let events = state
        .store
        .attempt_events(row.attempt_id)
        .await
        .map_err(db_error)?;
    let timeline: Vec<Value> = events
        .into_iter()
        .map(|(at, data)| {
            let mut d: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
            if let Some(m) = d.as_object_mut() {
                m.insert("at".into(), at.into());
            }
            d
        })
        .collect();
    // DIALER.SYNC and the recording, from the last of their events.
    let last = |kind: &str| timeline.iter().rev().find(|e| e["type"] == kind).cloned();
    if let Some(mut sync) = last("dialer_sync") {
        if let Some(m) = sync.as_object_mut() {
            m.remove("type");
        }
        v["sync"] = sync;
    }
    if let Some(r) = saved_recording(&timeline) {
        v["recording"] = serde_json::json!({
            "url": format!("/v1/calls/{call_id}/recording"),
            "durationMs": r["duration_ms"],
        });
    }
    v["events"] = Value::Array(timeline);
    Ok(Json(v))
}

/// `GET /v1/calls/{callId}/recording`: the call's recording (stereo WAV, customer left,
/// agent right), with single byte ranges (`Range: bytes=a-b`, RFC 9110 §14) for players
/// that seek. 404 when the call has none (or its file was deleted by retention).
async fn get_call_recording(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(call_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    caller.require(Role::Supervisor)?;
    let row = state
        .store
        .call(&call_id)
        .await
        .map_err(db_error)?
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, format!("no call {call_id:?}")))?;
    let events = state
        .store
        .attempt_events(row.attempt_id)
        .await
        .map_err(db_error)?;
    let events: Vec<Value> = events
        .iter()
        .filter_map(|(_, d)| serde_json::from_str(d).ok())
        .collect();
    let file = saved_recording(&events).and_then(|e| e["file"].as_str().map(str::to_string));
    let not_found = || {
        Problem::new(
            StatusCode::NOT_FOUND,
            format!("call {call_id:?} has no recording"),
        )
    };
    let file = file.ok_or_else(not_found)?;
    let bytes = tokio::fs::read(&file).await.map_err(|_| not_found())?;
    let total = bytes.len() as u64;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|r| parse_range(r, total));
    let (status, body, content_range) = match range {
        None => (StatusCode::OK, bytes, None),
        Some(Some((a, b))) => (
            StatusCode::PARTIAL_CONTENT,
            bytes[a as usize..=b as usize].to_vec(),
            Some(format!("bytes {a}-{b}/{total}")),
        ),
        Some(None) => {
            return Ok((
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{total}"))],
            )
                .into_response());
        }
    };
    let mut resp = (
        status,
        [
            (header::CONTENT_TYPE, "audio/wav".to_string()),
            (header::ACCEPT_RANGES, "bytes".to_string()),
        ],
        body,
    )
        .into_response();
    if let Some(cr) = content_range
        && let Ok(v) = header::HeaderValue::from_str(&cr)
    {
        resp.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    Ok(resp)
}

/// The call's last `recording_saved` event that names a written file (what
/// `GET /v1/calls/{id}/recording` serves and `GET /v1/calls/{id}` links).
fn saved_recording(events: &[Value]) -> Option<&Value> {
    events
        .iter()
        .rev()
        .find(|e| e["type"] == "recording_saved" && e["file"].is_string())
}

/// One byte range of a `Range` header over `total` bytes: `bytes=a-b`, `bytes=a-`,
/// `bytes=-n` (the last n). `None` when it cannot be satisfied or names several ranges.
fn parse_range(h: &str, total: u64) -> Option<(u64, u64)> {
    let spec = h.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || total == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (total.saturating_sub(n), total - 1)
        }
        (a, "") => (a.parse().ok()?, total - 1),
        (a, b) => (a.parse().ok()?, b.parse::<u64>().ok()?.min(total - 1)),
    };
    (a <= b && a < total).then_some((a, b))
}

async fn campaign_cdr(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller.require(Role::Supervisor)?;
    let row = load_campaign(&state, &id).await?;
    let rows = state.store.campaign_calls(row.id).await.map_err(db_error)?;
    let syncs = cdr_agent_columns(state.store.campaign_syncs(row.id).await.map_err(db_error)?);
    let mut w = csv::Writer::from_writer(Vec::new());
    let cols = [
        "callId",
        "campaignId",
        "leadId",
        "number",
        "attemptNo",
        "status",
        "sipStatus",
        "reasonPhrase",
        "disposition",
        "q850Cause",
        "hangupBy",
        "detail",
        "agentDisposition",
        "startedAt",
        "ringingAt",
        "answeredAt",
        "endedAt",
        "agent",
        "talkMs",
        "holdMs",
        "wrapUpMs",
        "tags",
        "transfers",
        "recording",
    ];
    w.write_record(cols).map_err(db_error)?;
    for r in &rows {
        let mut v = call_view(r);
        if let (Some(m), Some(a)) = (v.as_object_mut(), syncs.get(&r.attempt_id)) {
            m.extend(a.clone());
        }
        let rec: Vec<String> = cols
            .iter()
            .map(|c| match &v[*c] {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                o => o.to_string(),
            })
            .collect();
        w.write_record(&rec).map_err(db_error)?;
    }
    let body = w.into_inner().map_err(db_error)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"campaign-{}-cdr.csv\"", row.id),
            ),
        ],
        body,
    )
        .into_response())
}

async fn campaign_stats(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<crate::report::CampaignStats>, Problem> {
    caller.require(Role::Supervisor)?;
    let row = load_campaign(&state, &id).await?;
    let mut s = crate::report::campaign_stats(&state.store, Some(row.id), &row.name)
        .await
        .map_err(db_error)?;
    s.state = row.state;
    s.pacing =
        crate::notify::metrics::pacing_figures(&row.name).map(|(abandon_rate, dial_ratio)| {
            crate::report::PacingNow {
                abandon_rate,
                dial_ratio,
            }
        });
    Ok(Json(s))
}

/// `GET /v1/campaigns/{id}/events`: the campaign's own events in order (auto-pause and its
/// release), each `{"type": …, "at": …, …}` as stored.
async fn campaign_events(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<Value>>, Problem> {
    caller.require(Role::Supervisor)?;
    let row = load_campaign(&state, &id).await?;
    let events = state
        .store
        .campaign_events(row.id)
        .await
        .map_err(db_error)?;
    Ok(Json(
        events
            .into_iter()
            .map(|(at, data)| {
                let mut v: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                if let Some(m) = v.as_object_mut() {
                    m.insert("at".into(), at.into());
                }
                v
            })
            .collect(),
    ))
}

/// `POST /v1/agents/{id}/next-lead` JSON body (`{}`: the only running preview campaign).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NextLeadBody {
    #[serde(default)]
    campaign_id: Option<i64>,
}

/// `POST /v1/agents/{id}/next-lead`: preview dialling. The agent (its own token, or a
/// supervisor) asks a running preview campaign for its next lead; the call is placed at once
/// and, answered, goes to this agent. Answers the lead (with its attributes) and the call.
/// 404: no such running preview campaign; 409: the agent is not available, nothing is due,
/// the campaign is paused, or several preview campaigns run and none was named.
async fn next_lead(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<NextLeadBody>,
) -> Result<Json<Value>, Problem> {
    caller.require_agent(&id)?;
    use crate::service::NextLeadError as E;
    let (campaign, lead) = service(&state)?
        .next_lead(&id, body.campaign_id)
        .await
        .map_err(|e| {
            let status = match e {
                E::NoCampaign(_) => StatusCode::NOT_FOUND,
                _ => StatusCode::CONFLICT,
            };
            Problem::new(status, e.to_string())
        })?;
    let attributes = state
        .store
        .lead_attributes(lead.lead_id)
        .await
        .map_err(db_error)?
        .and_then(|a| serde_json::from_str::<Value>(&a).ok())
        .unwrap_or(Value::Null);
    Ok(Json(serde_json::json!({
        "campaignId": campaign,
        "leadId": lead.lead_id,
        "number": lead.number,
        "attributes": attributes,
        "callId": lead.call_id,
        "attemptNo": lead.attempt_no,
    })))
}

/// `POST /v1/dnc` JSON body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DncBody {
    numbers: Vec<String>,
    #[serde(default)]
    default_region: Option<String>,
}

/// `POST /v1/dnc`: numbers onto the do-not-call list (JSON `{"numbers": […]}`); runs check it
/// before every attempt. Answers how many were added and the refused ones.
async fn add_dnc(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Json(body): Json<DncBody>,
) -> Result<Json<Value>, Problem> {
    caller.require(Role::Admin)?;
    if body.numbers.len() > 100_000 {
        return Err(Problem::invalid("numbers", "at most 100,000 per request"));
    }
    let reg = region(body.default_region.as_deref())?;
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    for (i, n) in body.numbers.iter().enumerate() {
        match leads::normalise(n, reg) {
            Ok(num) => ok.push(num),
            Err(e) => errors.push(RowProblem {
                line: None,
                index: Some(i as u64),
                reason: e,
            }),
        }
    }
    let added = state.store.import_dnc(&ok, "api").await.map_err(db_error)?;
    Ok(Json(serde_json::json!({"added": added, "errors": errors})))
}

// ---------------------------------------------------------------- IVR applications

/// An IVR application's name: 1-64 letters, digits, `_` or `-`.
fn ivr_name(name: &str) -> Result<&str, Problem> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(name)
    } else {
        Err(Problem::new(
            StatusCode::NOT_FOUND,
            format!("no IVR application {name:?} (names are 1-64 letters, digits, _ or -)"),
        ))
    }
}

/// An IVR application as the API shows it: camelCase, with its name and times.
fn ivr_view(name: &str, config: &str, created: &str, updated: &str) -> Value {
    let mut v = convert::rename_keys(
        serde_json::from_str(config).unwrap_or(Value::Null),
        &snake_to_camel,
    );
    if let Some(m) = v.as_object_mut() {
        m.insert("name".into(), name.into());
        m.insert("createdAt".into(), created.into());
        m.insert("updatedAt".into(), updated.into());
    }
    v
}

/// `GET /v1/ivr`: every stored IVR application.
async fn list_ivr_apps(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Json<Vec<Value>>, Problem> {
    caller.require(Role::Supervisor)?;
    let apps = state.store.ivr_apps().await.map_err(db_error)?;
    Ok(Json(
        apps.iter()
            .map(|(n, c, cr, up)| ivr_view(n, c, cr, up))
            .collect(),
    ))
}

/// `GET /v1/ivr/{name}`.
async fn get_ivr_app(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require(Role::Supervisor)?;
    let name = ivr_name(&name)?;
    let (c, cr, up) = state
        .store
        .ivr_app(name)
        .await
        .map_err(db_error)?
        .ok_or_else(|| {
            Problem::new(
                StatusCode::NOT_FOUND,
                format!("no IVR application {name:?}"),
            )
        })?;
    Ok(Json(ivr_view(name, &c, &cr, &up)))
}

/// `PUT /v1/ivr/{name}`: creates (201) or replaces (200) an IVR application (the body is the
/// application in camelCase, docs/ivr.md), validated as a campaign's would be (a `queue`
/// choice is checked against agents when a campaign uses it).
async fn put_ivr_app(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(name): Path<String>,
    Json(body): Json<Value>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    caller.require(Role::Admin)?;
    let name = ivr_name(&name)?.to_string();
    let mut body = body;
    if let Some(m) = body.as_object_mut() {
        for ro in ["name", "createdAt", "updatedAt"] {
            m.remove(ro);
        }
    }
    let settings = convert::rename_keys(body, &convert::camel_to_snake);
    let app: crate::ivr::IvrApp = convert::from_settings(settings.clone())?;
    app.validate(true).map_err(|e| {
        let field = e.split(':').next().unwrap_or("ivr").to_string();
        Problem::invalid(&field, e)
    })?;
    let config = serde_json::to_string(&settings).map_err(db_error)?;
    let created = state
        .store
        .put_ivr_app(&name, &config)
        .await
        .map_err(db_error)?;
    let (c, cr, up) = state
        .store
        .ivr_app(&name)
        .await
        .map_err(db_error)?
        .ok_or_else(|| db_error("the IVR application just stored is gone"))?;
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((code, Json(ivr_view(&name, &c, &cr, &up))))
}

/// `DELETE /v1/ivr/{name}`: 204; campaigns that copied it keep their copy.
async fn delete_ivr_app(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require(Role::Admin)?;
    let name = ivr_name(&name)?;
    if state.store.delete_ivr_app(name).await.map_err(db_error)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::new(
            StatusCode::NOT_FOUND,
            format!("no IVR application {name:?}"),
        ))
    }
}

/// The `limit` of a paged listing: 1–10,000, 1,000 when not given. Errors: 422 otherwise.
fn page_limit(limit: Option<i64>) -> Result<i64, Problem> {
    let limit = limit.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(Problem::invalid("limit", "1 to 10000"));
    }
    Ok(limit)
}

/// `GET /v1/dnc` query: a page of the list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DncPage {
    /// Numbers after this one (the last of the previous page).
    after: Option<String>,
    /// At most this many (1–10,000, default 1,000).
    limit: Option<i64>,
}

/// `GET /v1/dnc?after=&limit=`: the list in number order, a page at a time:
/// `{"numbers": [{"number", "source", "addedAt"}], "next": last number or null}`.
async fn list_dnc(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Query(q): Query<DncPage>,
) -> Result<Json<Value>, Problem> {
    caller.require(Role::Supervisor)?;
    let limit = page_limit(q.limit)?;
    let rows = state
        .store
        .dnc_page(q.after.as_deref().unwrap_or(""), limit)
        .await
        .map_err(db_error)?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.0.clone()))
        .flatten();
    let numbers: Vec<Value> = rows
        .into_iter()
        .map(|(n, s, a)| serde_json::json!({"number": n, "source": s, "addedAt": a}))
        .collect();
    Ok(Json(serde_json::json!({"numbers": numbers, "next": next})))
}

/// `DELETE /v1/dnc/{number}`: takes a number off the list (as stored: E.164 when it starts
/// with `+`); 204, or 404 when it was not on it.
async fn delete_dnc(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(number): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require(Role::Admin)?;
    let n = leads::normalise(&number, None)
        .map_err(|e| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    if state.store.delete_dnc(&n).await.map_err(db_error)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::new(
            StatusCode::NOT_FOUND,
            format!("{n} is not on the do-not-call list"),
        ))
    }
}

/// `GET /v1/dnc/{number}`: whether a number (normalised as E.164 when it starts with `+`) is
/// on the list.
async fn get_dnc(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(number): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require(Role::Supervisor)?;
    let n = leads::normalise(&number, None)
        .map_err(|e| Problem::new(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let listed = state.store.is_dnc(&n).await.map_err(db_error)?;
    Ok(Json(serde_json::json!({"number": n, "listed": listed})))
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_transferred_calls_cdr_names_both_agents_and_sums_their_times() {
        let a = r#"{"type":"dialer_sync","agent":"1001","talkMs":4000,"holdMs":500,"wrapUpMs":0,
                    "tags":["vip"],"transfers":[{"flow":"blindTransfer","target":"agent:1002","atMs":3000}],
                    "recording":null}"#;
        let b = r#"{"type":"dialer_sync","agent":"1002","talkMs":6000,"holdMs":0,"wrapUpMs":2000,
                    "tags":["sale","callback"],"transfers":[],"recording":"/v1/calls/x/recording"}"#;
        let cols =
            super::cdr_agent_columns(vec![(7, a.into()), (7, b.into()), (8, "not json".into())]);
        let m = &cols[&7];
        assert_eq!(m["agent"], "1001>1002");
        assert_eq!(m["talkMs"], 10000);
        assert_eq!(m["holdMs"], 500);
        assert_eq!(m["wrapUpMs"], 2000);
        assert_eq!(m["tags"], "vip;sale;callback");
        assert_eq!(m["transfers"], "agent:1002");
        assert_eq!(m["recording"], "/v1/calls/x/recording");
        assert!(!cols.contains_key(&8));
    }
    use super::parse_range;

    #[test]
    fn byte_ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Some((0, 99)));
        assert_eq!(parse_range("bytes=900-", 1000), Some((900, 999)));
        assert_eq!(parse_range("bytes=-100", 1000), Some((900, 999)));
        assert_eq!(parse_range("bytes=990-2000", 1000), Some((990, 999)));
        assert_eq!(parse_range("bytes=1000-", 1000), None);
        assert_eq!(parse_range("bytes=5-2", 1000), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), None);
        assert_eq!(parse_range("items=0-1", 1000), None);
    }
}

/// `GET /v1/agents/{id}/call`: the agent's current or last customer call, for its soft
/// console — `{"agent", "state", "callId", "live", "number", "leadId", "campaignId",
/// "campaign", "attributes" (the lead's, from its call list), "dispositions" (the campaign's
/// `acd.dispositions`; empty: any text), "mandatoryDisposition", "awaitingDisposition",
/// "agentDisposition"}`. Its agent or supervisor+. Errors: 404 unknown agent or no call yet;
/// 409 no running campaign has agents.
async fn agent_call(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require_agent(&id)?;
    let agent = super::ask(&state, crate::engine::shell::Command::Agents)
        .await?
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, format!("no agent {id:?}")))?;
    let none = || {
        Problem::new(
            StatusCode::NOT_FOUND,
            format!("agent {id:?} has had no call"),
        )
    };
    let call_id = agent.last_call.clone().ok_or_else(none)?;
    let row = state
        .store
        .call(&call_id)
        .await
        .map_err(db_error)?
        .ok_or_else(none)?;
    let attributes: Value = state
        .store
        .lead_attributes(row.lead_id)
        .await
        .map_err(db_error)?
        .and_then(|a| serde_json::from_str(&a).ok())
        .unwrap_or_else(|| Value::Object(Default::default()));
    let campaign = state
        .store
        .campaign(row.campaign_id)
        .await
        .map_err(db_error)?
        .map(|c| campaign_view(&c))
        .unwrap_or(Value::Null);
    Ok(Json(serde_json::json!({
        "agent": agent.id,
        "state": agent.state,
        "callId": call_id,
        "live": row.ended_at.is_none(),
        "number": row.number,
        "leadId": row.lead_id,
        "campaignId": row.campaign_id,
        "campaign": campaign["name"],
        "attributes": attributes,
        "dispositions": campaign["acd"]["dispositions"].as_array().cloned().unwrap_or_default(),
        "mandatoryDisposition": campaign["acd"]["mandatoryDisposition"].as_bool().unwrap_or(false),
        "awaitingDisposition": agent.awaiting_disposition,
        "agentDisposition": row.agent_disposition,
    })))
}

/// `GET /v1/stats/series` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SeriesQuery {
    /// One campaign (default: all).
    campaign_id: Option<i64>,
    /// How far back, minutes (1–1440, default 60).
    minutes: Option<i64>,
}

/// `GET /v1/stats/series?campaignId=&minutes=60`: attempts per minute over the last
/// `minutes` — `{"from", "points": [{"minute": "2026-12-07T05:00:00Z", "attempts",
/// "answered", "ended"}]}` (by the minute each attempt started; minutes without attempts are
/// left out). Supervisor+. Errors: 422 `minutes` outside 1–1440.
async fn stats_series(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Query(q): Query<SeriesQuery>,
) -> Result<Json<Value>, Problem> {
    caller.require(Role::Supervisor)?;
    let minutes = q.minutes.unwrap_or(60);
    if !(1..=1440).contains(&minutes) {
        return Err(Problem::invalid("minutes", "1 to 1440"));
    }
    let from = chrono::Utc::now() - chrono::Duration::minutes(minutes);
    let from = from.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let points: Vec<Value> = state
        .store
        .attempts_by_minute(q.campaign_id, &from)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|(m, attempts, answered, ended)| {
            serde_json::json!({"minute": format!("{m}:00Z"), "attempts": attempts,
                               "answered": answered, "ended": ended})
        })
        .collect();
    Ok(Json(serde_json::json!({"from": from, "points": points})))
}

/// The CDR's agent columns per attempt from its `dialer_sync` events (several when the call
/// was transferred from agent to agent): `agent` (the agents in order, `1001>1002`), `talkMs`,
/// `holdMs`, `wrapUpMs` (summed), `tags` (`;`-separated), `transfers` (the targets, `;`),
/// `recording` (the last link).
fn cdr_agent_columns(syncs: Vec<(i64, String)>) -> BTreeMap<i64, serde_json::Map<String, Value>> {
    /// One call's agent part, gathered over its syncs.
    #[derive(Default)]
    struct Part {
        agents: Vec<String>,
        tags: Vec<String>,
        transfers: Vec<String>,
        talk_ms: u64,
        hold_ms: u64,
        wrap_up_ms: u64,
        recording: Option<String>,
    }
    let texts = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect()
    };
    let mut parts: BTreeMap<i64, Part> = BTreeMap::new();
    for (attempt, data) in syncs {
        let Ok(e) = serde_json::from_str::<Value>(&data) else {
            continue;
        };
        let p = parts.entry(attempt).or_default();
        p.agents.extend(e["agent"].as_str().map(str::to_string));
        p.tags.extend(texts(&e["tags"]));
        p.transfers.extend(
            e["transfers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["target"].as_str().map(str::to_string)),
        );
        p.talk_ms += e["talkMs"].as_u64().unwrap_or(0);
        p.hold_ms += e["holdMs"].as_u64().unwrap_or(0);
        p.wrap_up_ms += e["wrapUpMs"].as_u64().unwrap_or(0);
        if let Some(r) = e["recording"].as_str() {
            p.recording = Some(r.to_string());
        }
    }
    parts
        .into_iter()
        .map(|(attempt, p)| {
            let mut m = serde_json::Map::new();
            m.insert("agent".into(), p.agents.join(">").into());
            m.insert("talkMs".into(), p.talk_ms.into());
            m.insert("holdMs".into(), p.hold_ms.into());
            m.insert("wrapUpMs".into(), p.wrap_up_ms.into());
            m.insert("tags".into(), p.tags.join(";").into());
            m.insert("transfers".into(), p.transfers.join(";").into());
            if let Some(r) = p.recording {
                m.insert("recording".into(), r.into());
            }
            (attempt, m)
        })
        .collect()
}
