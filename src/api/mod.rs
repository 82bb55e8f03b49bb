//! The REST API (axum): JSON under `/v1`, bearer tokens with roles, errors as RFC 9457
//! problem details. See `docs/api.md`.
//!
//! So far it serves what a running campaign's agents need — their state, pause/unpause and
//! the disposition of their calls — beside the SIP engine in the same process
//! (`outdial run --api ADDR`). Every request goes to the engine task as a
//! [`Command`](crate::engine::shell::Command) and is answered from its state, so the API never
//! holds a lock the dialling path needs.

pub mod auth;
pub mod client;
pub mod openapi;
pub mod problem;
pub mod service_routes;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use crate::acd::{AgentAction, AgentControlError, AgentView, CallControl, CallControlView};
use crate::engine::shell::Command;
use crate::store::Store;

pub use auth::{Caller, Role};
pub use problem::{Json, Problem};

/// What the handlers share.
pub struct ApiState {
    /// The database (tokens, and what the campaign stored).
    pub store: Store,
    /// The running engine's command channel (`outdial run`: set once its engine is up;
    /// empty under `outdial serve`, where the engine of the running campaign with agents is
    /// used).
    pub engine: std::sync::OnceLock<mpsc::UnboundedSender<Command>>,
    /// The campaigns of `outdial serve` (`None` under `outdial run`).
    pub service: Option<Arc<crate::service::Service>>,
    /// The live event stream (`GET /v1/events`).
    pub live: Option<tokio::sync::broadcast::Sender<Arc<crate::notify::LiveEvent>>>,
}

impl ApiState {
    /// The engine agent requests go to.
    fn agent_engine(&self) -> Option<mpsc::UnboundedSender<Command>> {
        self.engine
            .get()
            .cloned()
            .or_else(|| self.service.as_ref().and_then(|s| s.agent_engine()))
    }
}

/// The `/v1` routes over `state`.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/metrics", get(metrics_text))
        .route(
            "/v1/openapi.json",
            get(|| async { Json(openapi::document()) }),
        )
        .route("/v1/me", get(me))
        .route("/v1/agents", get(list_agents).post(create_agent))
        .route("/v1/agents/{id}", get(get_agent))
        .route("/v1/agents/{id}/password", put(set_password))
        .route("/v1/queues", get(queues))
        .route("/v1/stats", get(overall_stats))
        .route("/v1/agents/{id}/state", put(set_agent_state))
        .route("/v1/agents/{id}/disposition", put(set_disposition))
        .route("/v1/agents/{id}/call/{action}", post(call_control))
        .route("/v1/events", get(live_events))
        .route("/v1/events/ws", get(live_events_ws))
        .merge(service_routes::routes())
        .merge(crate::web::routes())
        .fallback(|| async { Problem::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::map_response(
            problem::every_error_a_problem,
        ))
        .with_state(state)
}

/// Largest request body, bytes (1 MiB), but for call-list uploads: larger is refused 413.
pub const MAX_BODY: usize = 1024 * 1024;

/// Largest call-list upload (`POST /v1/call-lists`), bytes (64 MiB, about a million leads).
pub const MAX_CALL_LIST_BODY: usize = 64 * 1024 * 1024;

/// Serves the API on `listener` until the task is aborted (installs the Prometheus recorder).
pub fn spawn(
    listener: tokio::net::TcpListener,
    state: Arc<ApiState>,
) -> tokio::task::JoinHandle<()> {
    crate::notify::metrics::install();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(state)).await {
            tracing::error!(error = %e, "API server stopped");
        }
    })
}

/// Binds `addr` and serves the API there; returns the bound address and the server task.
/// Errors: the address cannot be bound.
pub async fn bind(
    addr: SocketAddr,
    state: Arc<ApiState>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("binding the API address {addr}: {e}"))?;
    let local = listener.local_addr()?;
    Ok((local, spawn(listener, state)))
}

/// The API of one `outdial run` (`api_listen`): binds `addr` at once (a taken address fails
/// the run before it dials), serves the store and the `live` stream, and takes agent requests
/// to the engine as soon as `engine` delivers its command channel. Returns the bound address
/// and the server task. Errors: the address cannot be bound.
pub async fn serve_run(
    addr: SocketAddr,
    store: Store,
    engine: tokio::sync::oneshot::Receiver<mpsc::UnboundedSender<Command>>,
    live: tokio::sync::broadcast::Sender<Arc<crate::notify::LiveEvent>>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let state = Arc::new(ApiState {
        store,
        engine: std::sync::OnceLock::new(),
        service: None,
        live: Some(live),
    });
    let (bound, server) = bind(addr, state.clone()).await?;
    tokio::spawn(async move {
        if let Ok(tx) = engine.await {
            let _ = state.engine.set(tx);
        }
    });
    Ok((bound, server))
}

/// `GET /metrics`: Prometheus text format (no token: scrapers rarely carry one; counts only).
async fn metrics_text() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::notify::metrics::render(),
    )
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// `GET /v1/me`: the token's own role and agent, `{"role": "supervisor", "agent": null}` —
/// what the web console offers follows from it. Errors: 401 without a valid token.
async fn me(caller: Caller) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "role": caller.role.as_str(), "agent": caller.agent }))
}

/// Sends a command to the engine and waits for its answer.
async fn ask<T>(
    state: &ApiState,
    make: impl FnOnce(oneshot::Sender<T>) -> Command,
) -> Result<T, Problem> {
    // No engine with agents (no campaign running with [acd]): nothing to act on.
    let unavailable = || {
        Problem::new(
            StatusCode::CONFLICT,
            "no running campaign has agents (an [acd] table)",
        )
    };
    let engine = state.agent_engine().ok_or_else(unavailable)?;
    let (tx, rx) = oneshot::channel();
    engine.send(make(tx)).map_err(|_| unavailable())?;
    rx.await.map_err(|_| unavailable())
}

async fn list_agents(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Json<Vec<AgentView>>, Problem> {
    let mut all = if state.agent_engine().is_some() {
        ask(&state, Command::Agents).await?
    } else {
        Vec::new()
    };
    // Agents in the store that no running engine has: offline.
    let stored = state
        .store
        .agents()
        .await
        .map_err(service_routes::db_error)?;
    for (id, _, _) in stored {
        if !all.iter().any(|a| a.id == id) {
            all.push(AgentView {
                id: id.clone(),
                state: crate::events::AgentState::Offline,
                reason: "not_in_a_running_campaign".into(),
                in_state_ms: 0,
                last_call: None,
                awaiting_disposition: false,
                pause_pending: None,
                stats: crate::acd::AgentStats {
                    agent: id,
                    ..Default::default()
                },
            });
        }
    }
    if caller.role == Role::Agent {
        all.retain(|a| caller.may_act_as(&a.id));
    }
    Ok(Json(all))
}

/// `POST /v1/agents` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAgentBody {
    /// The agent's id = its phone's SIP username.
    id: String,
    /// Its SIP password (kept only as digest HA1).
    password: String,
    /// Digest realm (the campaigns' `acd.realm`, default `outdial`).
    #[serde(default)]
    realm: Option<String>,
}

fn check_agent_id(id: &str) -> Result<(), Problem> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Problem::invalid(
            "id",
            "a SIP user name: 1 to 64 letters, digits, - _ . +",
        ))
    }
}

fn check_password(p: &str) -> Result<(), Problem> {
    if p.len() < 8 || p.len() > 128 || p.chars().any(char::is_control) {
        return Err(Problem::invalid(
            "password",
            "8 to 128 characters, no control characters",
        ));
    }
    Ok(())
}

async fn create_agent(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Json(body): Json<NewAgentBody>,
) -> Result<axum::response::Response, Problem> {
    use axum::response::IntoResponse;
    caller.require(Role::Admin)?;
    check_agent_id(&body.id)?;
    check_password(&body.password)?;
    let realm = body.realm.unwrap_or_else(|| "outdial".into());
    check_text("realm", &realm)?;
    let db = service_routes::db_error;
    if state
        .store
        .agent_realm(&body.id)
        .await
        .map_err(db)?
        .is_some()
    {
        return Err(Problem {
            field: Some("id".into()),
            ..Problem::new(
                StatusCode::CONFLICT,
                format!(
                    "agent {:?} exists (PUT /v1/agents/{{id}}/password changes its password)",
                    body.id
                ),
            )
        });
    }
    let ha1 = crate::acd::Ha1::from_password(&body.id, &realm, &body.password);
    state
        .store
        .upsert_agent(&body.id, &realm, &ha1)
        .await
        .map_err(db)?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"id": body.id, "realm": realm})),
    )
        .into_response())
}

/// `PUT /v1/agents/{id}/password` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    password: String,
}

async fn set_password(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<PasswordBody>,
) -> Result<StatusCode, Problem> {
    // Admins for anyone; an agent for itself.
    if caller.role < Role::Admin && caller.agent.as_deref() != Some(id.as_str()) {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "needs the admin role, or the agent's own token",
        ));
    }
    check_password(&body.password)?;
    let db = service_routes::db_error;
    let Some(realm) = state.store.agent_realm(&id).await.map_err(db)? else {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            format!("no agent {id:?}"),
        ));
    };
    let ha1 = crate::acd::Ha1::from_password(&id, &realm, &body.password);
    state
        .store
        .upsert_agent(&id, &realm, &ha1)
        .await
        .map_err(db)?;
    // A running engine takes it for the agent's next REGISTER.
    if state.agent_engine().is_some() {
        let password = crate::engine::shell::Password(body.password);
        let _ = ask(&state, |reply| Command::AgentPassword {
            agent: id,
            password,
            reply,
        })
        .await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/queues`: the ACD queue of the running campaign with agents.
async fn queues(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, Problem> {
    caller.require(Role::Supervisor)?;
    if state.agent_engine().is_none() {
        return Ok(Json(serde_json::json!([])));
    }
    let waiting = ask(&state, Command::Queue).await?;
    let agents = ask(&state, Command::Agents).await?;
    let mut by_state = std::collections::BTreeMap::new();
    for a in &agents {
        *by_state.entry(a.state.as_str()).or_insert(0u32) += 1;
    }
    Ok(Json(serde_json::json!([{
        "waiting": waiting.len(),
        "longestWaitMs": waiting.iter().map(|w| w.1).max().unwrap_or(0),
        "calls": waiting.iter().map(|(c, ms)| serde_json::json!({"callId": c, "waitMs": ms})).collect::<Vec<_>>(),
        "agents": by_state,
    }])))
}

/// `GET /v1/stats`: statistics over every campaign.
async fn overall_stats(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Json<crate::report::CampaignStats>, Problem> {
    caller.require(Role::Supervisor)?;
    crate::report::campaign_stats(&state.store, None, "*")
        .await
        .map(Json)
        .map_err(service_routes::db_error)
}

async fn get_agent(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AgentView>, Problem> {
    caller.require_agent(&id)?;
    if state.agent_engine().is_none() {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            format!("no agent {id:?} (no running campaign has agents)"),
        ));
    }
    ask(&state, Command::Agents)
        .await?
        .into_iter()
        .find(|a| a.id == id)
        .map(Json)
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, format!("no agent {id:?}")))
}

/// `PUT /v1/agents/{id}/state` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateBody {
    /// `paused` or `available`.
    state: String,
    /// Why (`paused` only; default `break`).
    #[serde(default)]
    reason: Option<String>,
}

async fn set_agent_state(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<StateBody>,
) -> Result<Json<AgentView>, Problem> {
    caller.require_agent(&id)?;
    let action = match body.state.as_str() {
        "paused" => {
            let reason = body.reason.unwrap_or_else(|| "break".into());
            check_text("reason", &reason)?;
            AgentAction::Pause { reason }
        }
        "available" => AgentAction::Unpause,
        other => {
            return Err(Problem::invalid(
                "state",
                format!("{other:?}: an agent sets itself \"paused\" or \"available\""),
            ));
        }
    };
    control(&state, id, action).await
}

/// `PUT /v1/agents/{id}/disposition` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DispositionBody {
    /// One of the campaign's `acd.dispositions`.
    disposition: String,
    /// Free text.
    #[serde(default)]
    note: Option<String>,
}

async fn set_disposition(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<DispositionBody>,
) -> Result<Json<AgentView>, Problem> {
    caller.require_agent(&id)?;
    check_text("disposition", &body.disposition)?;
    if let Some(n) = &body.note
        && n.len() > 1000
    {
        return Err(Problem::invalid("note", "at most 1000 characters"));
    }
    let action = AgentAction::Disposition {
        disposition: body.disposition,
        note: body.note,
    };
    control(&state, id, action).await
}

/// `POST /v1/agents/{id}/call/{action}` body (optional): `tags` for `tag`, `target` for
/// `transfer`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallControlBody {
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    target: Option<String>,
}

/// The call controls' names in the path, as the API and the CLI spell them.
pub const CALL_CONTROLS: [&str; 14] = [
    "tag",
    "mute",
    "unmute",
    "hold",
    "resume",
    "hangup",
    "transfer",
    "warm_transfer",
    "swap",
    "merge",
    "cancel_transfer",
    "complete_transfer",
    "record",
    "stop_recording",
];

/// Reads a call control from its name and body fields. Errors: an unknown name, `tag`
/// without tags (or a bad one), `transfer` without a target: a 422 naming the field.
pub fn parse_call_control(
    action: &str,
    tags: Vec<String>,
    target: Option<String>,
) -> Result<CallControl, Problem> {
    Ok(match action {
        "tag" => {
            if tags.is_empty() || tags.len() > 20 {
                return Err(Problem::invalid("tags", "1 to 20 tags"));
            }
            for t in &tags {
                check_text("tags", t)?;
            }
            CallControl::Tag { tags }
        }
        "mute" => CallControl::Mute,
        "unmute" => CallControl::Unmute,
        "hold" => CallControl::Hold,
        "resume" => CallControl::Resume,
        "hangup" => CallControl::HangUp,
        "transfer" | "warm_transfer" => {
            let target = target.unwrap_or_default();
            let ok = !target.trim().is_empty()
                && target.len() <= 256
                && !target
                    .chars()
                    .any(|c| c.is_control() || c.is_whitespace() || c == '<' || c == '>');
            if !ok {
                return Err(Problem::invalid(
                    "target",
                    "a number, a sip: URI or agent:ID (no spaces, at most 256 characters)",
                ));
            }
            if action == "transfer" {
                CallControl::BlindTransfer { target }
            } else {
                CallControl::WarmTransfer { target }
            }
        }
        "swap" => CallControl::Swap,
        "merge" => CallControl::Merge,
        "cancel_transfer" => CallControl::CancelTransfer,
        "complete_transfer" => CallControl::CompleteTransfer,
        "record" => CallControl::Record,
        "stop_recording" => CallControl::StopRecording,
        other => {
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                format!(
                    "no call control {other:?}: one of {}",
                    CALL_CONTROLS.join(", ")
                ),
            ));
        }
    })
}

async fn call_control(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path((id, action)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<CallControlView>, Problem> {
    caller.require_agent(&id)?;
    let body: CallControlBody = if body.iter().all(u8::is_ascii_whitespace) {
        CallControlBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, format!("request body: {e}")))?
    };
    let control = parse_call_control(&action, body.tags, body.target)?;
    let r = ask(&state, |reply| Command::CallControl {
        agent: id,
        control,
        reply,
    })
    .await?;
    r.map(Json).map_err(|e| {
        let status = match &e {
            AgentControlError::UnknownAgent(_) | AgentControlError::NoAcd => StatusCode::NOT_FOUND,
            _ => StatusCode::CONFLICT,
        };
        Problem::new(status, e.to_string())
    })
}

fn check_text(field: &str, v: &str) -> Result<(), Problem> {
    if v.trim().is_empty() || v.len() > 64 || v.chars().any(char::is_control) {
        return Err(Problem::invalid(
            field,
            "1 to 64 characters, no control characters",
        ));
    }
    Ok(())
}

async fn control(
    state: &ApiState,
    agent: String,
    action: AgentAction,
) -> Result<Json<AgentView>, Problem> {
    let r = ask(state, |reply| Command::Agent {
        agent,
        action,
        reply,
    })
    .await?;
    r.map(Json).map_err(|e| {
        let status = match &e {
            AgentControlError::UnknownAgent(_) => StatusCode::NOT_FOUND,
            AgentControlError::NotADisposition(_) => {
                return Problem::invalid("disposition", e.to_string());
            }
            AgentControlError::Offline(_) | AgentControlError::NoCall(_) => StatusCode::CONFLICT,
            AgentControlError::NoAcd => StatusCode::NOT_FOUND,
            AgentControlError::NotNow(_) => StatusCode::CONFLICT,
        };
        Problem::new(status, e.to_string())
    })
}

/// `GET /v1/events` filters.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EventsQuery {
    #[serde(default)]
    campaign_id: Option<i64>,
    #[serde(default)]
    call_id: Option<String>,
    #[serde(default)]
    agent: Option<String>,
}

/// `GET /v1/events`: the live event stream as Server-Sent Events, one `data:` line per
/// [`LiveEvent`](crate::notify::LiveEvent) envelope (`event:` is its type), filtered by
/// `campaignId`, `callId` and `agent`. A client too slow for the stream gets a
/// `STREAM.LAGGED` event with how many it missed. Supervisors and above see everything; an
/// agent token sees the events naming its own agent only (its state, its calls' flow).
async fn live_events(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    axum::extract::Query(q): axum::extract::Query<EventsQuery>,
) -> Result<
    axum::response::sse::Sse<
        impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
    >,
    Problem,
> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use tokio::sync::broadcast::error::RecvError;
    let (rx, keep) = subscribe(&state, &caller, q)?;
    // Resuming (the EventSource standard's reconnection): what followed the client's last
    // event, from the events kept, then the live ones after those.
    let resume_after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let backlog: std::collections::VecDeque<_> = resume_after
        .map(crate::notify::live_events_after)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| keep(e))
        .collect();
    let seen = backlog.back().map(|e| e.seq).or(resume_after).unwrap_or(0);
    let event = |e: &crate::notify::LiveEvent| {
        let data = serde_json::to_string(e).unwrap_or_default();
        Event::default()
            .id(e.seq.to_string())
            .event(e.kind)
            .data(data)
    };
    let stream = futures_util::stream::unfold((rx, backlog), move |(mut rx, mut backlog)| {
        let keep = keep.clone();
        async move {
            if let Some(e) = backlog.pop_front() {
                return Some((Ok(event(&e)), (rx, backlog)));
            }
            loop {
                match rx.recv().await {
                    Ok(e) if e.seq > seen && keep(&e) => {
                        return Some((Ok(event(&e)), (rx, backlog)));
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(n)) => {
                        let data =
                            serde_json::json!({"type": "STREAM.LAGGED", "payload": {"skipped": n}});
                        return Some((
                            Ok(Event::default()
                                .event("STREAM.LAGGED")
                                .data(data.to_string())),
                            (rx, backlog),
                        ));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

type LiveRx = tokio::sync::broadcast::Receiver<Arc<crate::notify::LiveEvent>>;

/// A subscription to the live events with the caller's filter (shared by SSE and WebSocket).
fn subscribe(
    state: &ApiState,
    caller: &Caller,
    q: EventsQuery,
) -> Result<
    (
        LiveRx,
        impl Fn(&crate::notify::LiveEvent) -> bool + Clone + use<>,
    ),
    Problem,
> {
    let agent_only = match caller.role {
        Role::Agent => Some(caller.agent.clone().unwrap_or_default()),
        _ => None,
    };
    if let (Some(own), Some(asked)) = (&agent_only, &q.agent)
        && own != asked
    {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            format!("this token acts for agent {own:?} only"),
        ));
    }
    let rx = state
        .live
        .as_ref()
        .ok_or_else(|| Problem::new(StatusCode::NOT_FOUND, "no live events in this process"))?
        .subscribe();
    let keep = move |e: &crate::notify::LiveEvent| {
        let p = &e.payload;
        q.campaign_id.is_none_or(|c| c == p.campaign_id)
            && q.call_id
                .as_ref()
                .is_none_or(|c| p.call_id.as_ref() == Some(c))
            && q.agent.as_ref().is_none_or(|a| p.agent.as_ref() == Some(a))
            // An agent sees what names it: its state changes and the events of its calls'
            // flow (connected, call_status, tagged, held by it, DIALER.SYNC, …).
            && agent_only.as_ref().is_none_or(|a| p.agent.as_ref() == Some(a))
    };
    Ok((rx, keep))
}

/// `GET /v1/events/ws`: the live events over a WebSocket, one text message per envelope
/// (the same filters and roles as the SSE stream; `STREAM.LAGGED` when the client fell
/// behind). Messages from the client are ignored; it closes when the client does.
async fn live_events_ws(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    axum::extract::Query(q): axum::extract::Query<EventsQuery>,
    ws: axum::extract::ws::WebSocketUpgrade,
) -> Result<axum::response::Response, Problem> {
    use axum::extract::ws::Message;
    use tokio::sync::broadcast::error::RecvError;
    let (mut rx, keep) = subscribe(&state, &caller, q)?;
    Ok(ws.on_upgrade(move |mut socket| async move {
        loop {
            tokio::select! {
                ev = rx.recv() => {
                    let text = match ev {
                        Ok(e) if keep(&e) => serde_json::to_string(&*e).unwrap_or_default(),
                        Ok(_) => continue,
                        Err(RecvError::Lagged(n)) => serde_json::json!(
                            {"type": "STREAM.LAGGED", "payload": {"skipped": n}}).to_string(),
                        Err(RecvError::Closed) => break,
                    };
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                m = socket.recv() => match m {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
            }
        }
    }))
}
