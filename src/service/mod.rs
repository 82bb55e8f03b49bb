//! `outdial serve`: one process with the HTTP API, the stored campaigns and their runs.
//!
//! Campaigns and call lists are created over the API (`src/api/`); `start` runs a campaign
//! with the same run loop as `outdial run` ([`runner::run_with`]) in a task of its own, over
//! the numbers of its call lists; `pause`/`unpause` hold and release its dialling; `remove`
//! stops it (calls in progress are hung up) and archives it. A campaign whose `start_at` is
//! ahead is `scheduled` by `start` and starts itself then. Campaigns left `active` or
//! `paused` by an earlier process are resumed at start, `scheduled` ones re-armed. See
//! `docs/api.md`.

pub mod convert;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot, watch};

use crate::campaign::config::{CampaignConfig, TrunkTarget};
use crate::campaign::leads::Import;
use crate::campaign::lifecycle::{CampaignState, LifecycleCommand};
use crate::campaign::rate::SharedLimits;
use crate::engine::shared::SharedEngine;
use crate::engine::shell::Command;
use crate::runner::{self, RunControl, RunHooks};
use crate::sip::transaction::Timers;
use crate::store::Store;

/// The service's own settings (`outdial serve --config outdial.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// HTTP address of the API (default `127.0.0.1:8080`).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The store: a SQLite file (default `outdial.db`) or a `postgres://` URL; the
    /// `OUTDIAL_DB` environment variable, when set, replaces it.
    #[serde(default = "default_db")]
    pub db: PathBuf,
    /// Seconds calls in progress may take to finish after SIGTERM (default 30).
    #[serde(default = "default_grace")]
    pub shutdown_grace: u64,
    /// Calls in progress at once across every campaign (default: no limit beyond each
    /// campaign's own `max_concurrent`).
    #[serde(default)]
    pub max_concurrent: Option<usize>,
    /// New calls per second across every campaign (default: each campaign's own `cps`).
    #[serde(default)]
    pub cps: Option<f64>,
    /// Limits of trunks shared by campaigns (`[[trunk_limits]]`): every campaign dialling
    /// through `trunk` counts against them together, inside its own `cps`/`max_concurrent`.
    #[serde(default)]
    pub trunk_limits: Vec<TrunkLimit>,
    /// Campaign-file fields every API-created campaign starts from (trunk, local_address,
    /// trunk credentials, …): the API's fields are laid over these.
    #[serde(default)]
    pub campaign_defaults: toml::Table,
}

/// One `[[trunk_limits]]` entry of the service file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkLimit {
    /// The trunk, as campaigns name it (`sip:host[:port][;transport=…]`); matched on host,
    /// port and transport, so `sip:10.0.0.1` and `sip:10.0.0.1:5060;transport=udp` are one.
    pub trunk: String,
    /// New calls per second through it, across campaigns (default: no limit).
    #[serde(default)]
    pub cps: Option<f64>,
    /// Calls in progress through it, across campaigns (default: no limit).
    #[serde(default)]
    pub max_concurrent: Option<usize>,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_db() -> PathBuf {
    "outdial.db".into()
}
fn default_grace() -> u64 {
    30
}

impl ServiceConfig {
    /// Reads the service file. Errors: unreadable, bad TOML, unknown field.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading service file {}", path.display()))?;
        let c: ServiceConfig =
            toml::from_str(&text).with_context(|| format!("service file {}", path.display()))?;
        c.listen
            .parse::<std::net::SocketAddr>()
            .with_context(|| format!("listen: {:?} is not IP:port", c.listen))?;
        // The same ranges as the campaign settings (CampaignConfig::RANGES).
        let bad_cps = |r: f64| !(r.is_finite() && (0.001..=100_000.0).contains(&r));
        let bad_max = |m: usize| !(1..=100_000).contains(&m);
        if c.max_concurrent.is_some_and(bad_max) || c.cps.is_some_and(bad_cps) {
            anyhow::bail!("max_concurrent: 1..=100000 and cps: 0.001..=100000 when given");
        }
        if c.shutdown_grace > 3_600 {
            anyhow::bail!(
                "shutdown_grace: must be 0..=3600 seconds, got {}",
                c.shutdown_grace
            );
        }
        for (i, t) in c.trunk_limits.iter().enumerate() {
            TrunkTarget::parse(&t.trunk).with_context(|| format!("trunk_limits[{i}].trunk"))?;
            if t.max_concurrent.is_some_and(bad_max) || t.cps.is_some_and(bad_cps) {
                anyhow::bail!(
                    "trunk_limits[{i}]: max_concurrent 1..=100000 and cps 0.001..=100000 when given"
                );
            }
            if t.max_concurrent.is_none() && t.cps.is_none() {
                anyhow::bail!("trunk_limits[{i}]: give cps, max_concurrent or both");
            }
        }
        Ok(c)
    }
}

/// A campaign whose run loop is going.
struct Running {
    control: watch::Sender<RunControl>,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    engine: Option<mpsc::UnboundedSender<Command>>,
    has_agents: bool,
    /// A preview campaign's channel for its agents' next-lead requests.
    preview: Option<mpsc::UnboundedSender<runner::PreviewRequest>>,
}

/// An engine shared by campaigns on one address: the settings it was started with (a campaign
/// joining must have the same) and how many runs use it.
struct SharedSlot {
    engine: Arc<SharedEngine>,
    settings: serde_json::Value,
    users: usize,
}

/// What campaigns sharing an engine must agree on: its agents and ACD, its trunk group, its
/// RTP ports and transport settings.
fn engine_settings(cfg: &CampaignConfig) -> serde_json::Value {
    serde_json::json!({
        "acd": cfg.acd,
        "trunk": cfg.trunk,
        "trunks": cfg.trunks,
        "outbound_proxy": cfg.outbound_proxy,
        "auth_username": cfg.auth_username,
        "rtp": [cfg.rtp_port_min, cfg.rtp_port_max],
        "advertised_address": cfg.advertised_address,
    })
}

/// Why an agent's next-lead request got no lead.
#[derive(Debug, thiserror::Error)]
pub enum NextLeadError {
    /// No running preview campaign (or not campaign `id`, when one was named).
    #[error("no running preview campaign{}", .0.map(|i| format!(" with id {i}")).unwrap_or_default())]
    NoCampaign(Option<i64>),
    /// Several run in preview mode: the request must name one.
    #[error("several preview campaigns are running: give campaignId")]
    Ambiguous,
    /// The campaign refused (the agent is busy, nothing is due, …).
    #[error(transparent)]
    Refused(#[from] runner::PreviewRefusal),
    /// The run ended while the request waited.
    #[error("the campaign's run ended")]
    Ended,
}

/// Why a lifecycle command was refused.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No such campaign.
    #[error("no campaign {0}")]
    NotFound(i64),
    /// Not allowed in the campaign's state (message says why).
    #[error("{0}")]
    Conflict(String),
    /// The stored settings no longer make a valid campaign.
    #[error("the campaign's settings are invalid: {0}")]
    Invalid(String),
    /// Database trouble.
    #[error(transparent)]
    Db(#[from] anyhow::Error),
}

/// The campaigns of this process.
pub struct Service {
    /// The database.
    pub store: Store,
    /// `campaign_defaults` of the service file.
    pub defaults: toml::Table,
    /// The live event stream every run sends to (`GET /v1/events`).
    pub live: tokio::sync::broadcast::Sender<Arc<crate::notify::LiveEvent>>,
    /// Limits shared by every campaign (`max_concurrent`, `cps` of the service file).
    pub global: Option<Arc<crate::campaign::rate::GlobalLimit>>,
    /// Limits shared by the campaigns dialling through a trunk (`[[trunk_limits]]`).
    pub trunk_limits: Vec<(TrunkTarget, Arc<crate::campaign::rate::GlobalLimit>)>,
    running: Mutex<HashMap<i64, Running>>,
    /// Engines shared by campaigns with agents on one `local_address` (key: that address).
    engines: tokio::sync::Mutex<HashMap<String, SharedSlot>>,
    /// The run tasks not known to have finished (a graceful shutdown waits for them).
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The timers of `scheduled` campaigns, each starting its campaign at its `start_at`.
    schedules: Mutex<HashMap<i64, tokio::task::JoinHandle<()>>>,
}

impl Service {
    /// A service over `store` (no process-wide limits: see [`Service::with_limits`]).
    pub fn new(store: Store, defaults: toml::Table) -> Arc<Self> {
        Self::with_limits(store, defaults, None, None, &[])
    }

    /// A service whose campaigns share `max_concurrent` calls and `cps` calls per second,
    /// and the limits of `trunks`. Errors: none (`trunks` come validated from
    /// [`ServiceConfig::load`]; an entry whose URI does not parse is skipped).
    pub fn with_limits(
        store: Store,
        defaults: toml::Table,
        max_concurrent: Option<usize>,
        cps: Option<f64>,
        trunks: &[TrunkLimit],
    ) -> Arc<Self> {
        let limit = |cps: Option<f64>, max: Option<usize>| {
            Arc::new(crate::campaign::rate::GlobalLimit::new(
                cps.unwrap_or(1e6),
                max.unwrap_or(usize::MAX),
                std::time::Instant::now(),
            ))
        };
        let global =
            (max_concurrent.is_some() || cps.is_some()).then(|| limit(cps, max_concurrent));
        let trunk_limits = trunks
            .iter()
            .filter_map(|t| {
                let target = TrunkTarget::parse(&t.trunk).ok()?;
                Some((target, limit(t.cps, t.max_concurrent)))
            })
            .collect();
        Arc::new(Self {
            store,
            defaults,
            global,
            trunk_limits,
            live: tokio::sync::broadcast::channel(4096).0,
            running: Mutex::new(HashMap::new()),
            engines: tokio::sync::Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            schedules: Mutex::new(HashMap::new()),
        })
    }

    /// The settings of a stored campaign (its stored JSON over the defaults, validated).
    fn config_of(&self, config_json: &str) -> Result<CampaignConfig, ControlError> {
        let v: serde_json::Value =
            serde_json::from_str(config_json).map_err(|e| ControlError::Db(e.into()))?;
        convert::campaign_config(&self.defaults, v).map_err(|p| ControlError::Invalid(p.detail))
    }

    /// The engine of a running campaign with agents (for the agent endpoints).
    pub fn agent_engine(&self) -> Option<mpsc::UnboundedSender<Command>> {
        let running = self.running.lock().expect("running lock");
        let mut v: Vec<(&i64, &Running)> = running.iter().filter(|(_, r)| r.has_agents).collect();
        v.sort_by_key(|(id, _)| **id);
        v.first().and_then(|(_, r)| r.engine.clone())
    }

    /// Preview dialling: agent `agent` asks running preview campaign `campaign` (or the only
    /// one running) for its next lead; the call is placed at once. Returns the campaign's id
    /// and the lead. Errors: see [`NextLeadError`].
    pub async fn next_lead(
        &self,
        agent: &str,
        campaign: Option<i64>,
    ) -> Result<(i64, runner::PreviewLead), NextLeadError> {
        let (id, tx) = {
            let running = self.running.lock().expect("running lock");
            let mut v: Vec<(i64, mpsc::UnboundedSender<runner::PreviewRequest>)> = running
                .iter()
                .filter(|(id, _)| campaign.is_none_or(|c| c == **id))
                .filter_map(|(id, r)| r.preview.clone().map(|p| (*id, p)))
                .collect();
            match v.len() {
                0 => return Err(NextLeadError::NoCampaign(campaign)),
                1 => v.pop().expect("one"),
                _ => return Err(NextLeadError::Ambiguous),
            }
        };
        let (reply, rx) = oneshot::channel();
        tx.send(runner::PreviewRequest {
            agent: agent.to_string(),
            reply,
        })
        .map_err(|_| NextLeadError::Ended)?;
        let lead = rx.await.map_err(|_| NextLeadError::Ended)??;
        Ok((id, lead))
    }

    /// The engine a campaign with agents on a fixed `local_address` shares with the other
    /// campaigns there (started by the first); `None` for the others (their own engine).
    /// Errors: [`ControlError::Conflict`] when a running campaign on that address has other
    /// agents, ACD or trunk settings; the engine cannot start.
    async fn join_engine(
        &self,
        cfg: &CampaignConfig,
    ) -> Result<Option<(String, Arc<SharedEngine>)>, ControlError> {
        let Some(addr) = cfg
            .acd
            .as_ref()
            .and_then(|_| cfg.local_address.parse::<std::net::SocketAddr>().ok())
            .filter(|a| a.port() != 0)
        else {
            return Ok(None);
        };
        let key = addr.to_string();
        let settings = engine_settings(cfg);
        let mut engines = self.engines.lock().await;
        if let Some(s) = engines.get_mut(&key) {
            if s.settings != settings {
                return Err(ControlError::Conflict(format!(
                    "another running campaign uses local_address {key} with other agents, ACD or \
                     trunk settings: campaigns sharing agents need the same"
                )));
            }
            s.users += 1;
            return Ok(Some((key, s.engine.clone())));
        }
        let handle = runner::spawn_engine(cfg, &self.store, Timers::default())
            .await
            .map_err(|e| ControlError::Invalid(format!("{e:#}")))?;
        let engine = SharedEngine::new(handle);
        engines.insert(
            key.clone(),
            SharedSlot {
                engine: engine.clone(),
                settings,
                users: 1,
            },
        );
        Ok(Some((key, engine)))
    }

    /// A run on shared engine `key` ended: the last one stops the engine.
    async fn leave_engine(&self, key: &str) {
        let mut engines = self.engines.lock().await;
        let last = engines.get_mut(key).is_some_and(|s| {
            s.users -= 1;
            s.users == 0
        });
        if last && let Some(s) = engines.remove(key) {
            s.engine.shutdown().await;
        }
    }

    /// True when campaign `id`'s run loop is going.
    pub fn is_running(&self, id: i64) -> bool {
        self.running.lock().expect("running lock").contains_key(&id)
    }

    /// Applies a lifecycle command (`start`, `pause`, `unpause`, `reload`, `remove`) and
    /// returns the new state. Errors: see [`ControlError`].
    pub async fn control(self: &Arc<Self>, id: i64, command: &str) -> Result<String, ControlError> {
        self.control_with(id, command, &[]).await
    }

    /// [`Self::control`], and `recycle` with the final `dispositions` whose leads are dialled
    /// again (snake_case or camelCase names). Errors: see [`ControlError`]; `recycle` without
    /// dispositions or with an unknown one is [`ControlError::Invalid`].
    pub async fn control_with(
        self: &Arc<Self>,
        id: i64,
        command: &str,
        dispositions: &[String],
    ) -> Result<String, ControlError> {
        let row = self
            .store
            .campaign(id)
            .await?
            .ok_or(ControlError::NotFound(id))?;
        let state: CampaignState = row.state.parse().map_err(ControlError::Conflict)?;
        let command: LifecycleCommand = command.parse().map_err(ControlError::Conflict)?;
        let mut next = state.apply(command).map_err(ControlError::Conflict)?;
        match command {
            LifecycleCommand::Start => {
                if row.call_lists.is_empty() {
                    return Err(ControlError::Conflict(
                        "the campaign has no call list: set callLists first".into(),
                    ));
                }
                let (start_at, stop_at) = self
                    .config_of(&row.config)?
                    .schedule()
                    .map_err(|e| ControlError::Invalid(format!("{e:#}")))?;
                let now = chrono::Utc::now();
                if let Some(stop) = stop_at.filter(|t| *t <= now) {
                    return Err(ControlError::Conflict(format!(
                        "its stop_at ({stop}) has passed: set a later one (or none) first"
                    )));
                }
                next = state
                    .start(start_at.is_some_and(|t| t > now))
                    .map_err(ControlError::Conflict)?;
                match (next, start_at) {
                    (CampaignState::Scheduled, Some(at)) => self.arm_schedule(id, at),
                    _ => {
                        self.launch(id, &row.config, &row.call_lists, RunControl::Run)
                            .await?
                    }
                }
            }
            LifecycleCommand::Pause => self.send(id, RunControl::Pause),
            LifecycleCommand::Unpause => self.send(id, RunControl::Run),
            LifecycleCommand::Reload => {
                // Only a paused campaign with no call in progress: its run loop is replaced
                // by one over the stored (edited) settings and call lists, still paused.
                self.config_of(&row.config)?;
                self.stop_quiet_run(id, "reload").await?;
                self.launch(id, &row.config, &row.call_lists, RunControl::Pause)
                    .await?;
            }
            LifecycleCommand::Recycle => {
                use crate::events::disposition::Disposition;
                if dispositions.is_empty() {
                    return Err(ControlError::Invalid(
                        "recycle: give `dispositions`, the final ones whose leads to dial again \
                         (e.g. [\"no_answer\", \"busy\"])"
                            .into(),
                    ));
                }
                let mut names = Vec::new();
                for d in dispositions {
                    let known = Disposition::parse(d).ok_or_else(|| {
                        let all: Vec<&str> = Disposition::ALL.iter().map(|d| d.as_str()).collect();
                        ControlError::Invalid(format!(
                            "dispositions: {d:?} is not one of {}",
                            all.join(", ")
                        ))
                    })?;
                    names.push(known.as_str().to_string());
                }
                self.config_of(&row.config)?;
                self.stop_quiet_run(id, "recycle").await?;
                let n = self.store.recycle_leads(id, &names).await?;
                if n == 0 && state == CampaignState::Completed {
                    return Err(ControlError::Conflict(format!(
                        "no lead of the campaign ended {}: nothing to recycle",
                        names.join(" or ")
                    )));
                }
                tracing::info!(campaign = id, leads = n, dispositions = ?names, "leads recycled");
                self.launch(id, &row.config, &row.call_lists, RunControl::Pause)
                    .await?;
            }
            LifecycleCommand::Remove => {
                if let Some(timer) = self.schedules.lock().expect("schedules lock").remove(&id) {
                    timer.abort();
                }
                self.send(id, RunControl::Stop);
                self.running.lock().expect("running lock").remove(&id);
            }
        }
        self.store.set_campaign_state(id, next.as_str()).await?;
        Ok(next.as_str().into())
    }

    /// Stops campaign `id`'s run loop, if one is going, provided no call of it is in
    /// progress (for `what`: reload, recycle). Errors: calls in progress, or a run that does
    /// not stop within 10 s ([`ControlError::Conflict`]).
    async fn stop_quiet_run(&self, id: i64, what: &str) -> Result<(), ControlError> {
        let busy = self
            .running
            .lock()
            .expect("running lock")
            .get(&id)
            .map(|r| r.in_flight.load(std::sync::atomic::Ordering::Relaxed))
            .unwrap_or(0);
        if busy > 0 {
            return Err(ControlError::Conflict(format!(
                "{busy} call(s) still in progress: {what} once they have ended"
            )));
        }
        self.send(id, RunControl::Stop);
        let t0 = tokio::time::Instant::now();
        while self.is_running(id) {
            if t0.elapsed() > Duration::from_secs(10) {
                return Err(ControlError::Conflict(
                    "the campaign's run did not stop within 10 s; try again".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// The shared limits a campaign's calls count against: the process-wide one and those of
    /// the trunks of its group (a call of a group may go through any of them, so it counts
    /// against each limited one).
    fn limits_for(&self, cfg: &CampaignConfig) -> SharedLimits {
        let same = |a: &TrunkTarget, b: &TrunkTarget| {
            a.host.eq_ignore_ascii_case(&b.host) && a.port == b.port && a.transport == b.transport
        };
        let mut v: Vec<_> = self.global.iter().cloned().collect();
        for t in cfg.trunk_group().unwrap_or_default() {
            for (target, l) in &self.trunk_limits {
                if same(&t.target, target) {
                    v.push(l.clone());
                }
            }
        }
        SharedLimits::new(v)
    }

    fn send(&self, id: i64, c: RunControl) {
        if let Some(r) = self.running.lock().expect("running lock").get(&id) {
            let _ = r.control.send(c);
        }
    }

    /// Starts the run loop of campaign `id` over its call lists.
    async fn launch(
        self: &Arc<Self>,
        id: i64,
        config_json: &str,
        lists: &[i64],
        initial: RunControl,
    ) -> Result<(), ControlError> {
        let cfg = self.config_of(config_json)?;
        let mut leads = Vec::new();
        for l in lists {
            leads.extend(self.store.call_list_numbers(*l).await?);
        }
        let (control, rx) = watch::channel(initial);
        let (etx, erx) = oneshot::channel();
        let is_preview = cfg
            .endpoint
            .as_ref()
            .is_some_and(|e| e.kind == crate::pacing::DialMode::Preview);
        let (ptx, prx) = mpsc::unbounded_channel();
        let shared = self.join_engine(&cfg).await?;
        let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        self.running.lock().expect("running lock").insert(
            id,
            Running {
                control,
                in_flight: in_flight.clone(),
                engine: None,
                has_agents: cfg.acd.is_some(),
                preview: is_preview.then_some(ptx),
            },
        );
        let me = self.clone();
        let task = tokio::spawn(async move {
            let hooks = RunHooks {
                control: Some(rx),
                engine: Some(etx),
                live: Some(me.live.clone()),
                in_flight: Some(in_flight),
                limits: me.limits_for(&cfg),
                preview: is_preview.then_some(prx),
                shared_engine: shared.as_ref().map(|s| s.1.clone()),
                node: None,
            };
            let import = Import {
                leads,
                errors: Vec::new(),
            };
            let r =
                runner::run_with(&cfg, import, &me.store, Timers::default(), false, hooks).await;
            let stopped = match &r {
                Ok(o) => o.stopped,
                Err(e) => {
                    tracing::error!(campaign = id, error = %e, "campaign run failed");
                    true
                }
            };
            me.running.lock().expect("running lock").remove(&id);
            if let Some((key, _)) = &shared {
                me.leave_engine(key).await;
            }
            if stopped {
                // Stopped by remove (archived) or shutdown (stays active/paused to resume);
                // a failed run goes back to draft with the error logged — but for a campaign
                // another live process dials (its run lease): that one keeps it.
                let held = r.as_ref().err().is_some_and(|e| {
                    e.chain()
                        .any(|c| c.downcast_ref::<crate::store::LeaseHeld>().is_some())
                });
                if r.is_err() && !held {
                    let _ = me.store.set_campaign_state(id, "draft").await;
                }
            }
        });
        // The engine's command channel, once it is up (agent requests go there).
        let me = self.clone();
        tokio::spawn(async move {
            if let Ok(tx) = erx.await
                && let Some(r) = me.running.lock().expect("running lock").get_mut(&id)
            {
                r.engine = Some(tx);
            }
        });
        let mut tasks = self.tasks.lock().expect("tasks lock");
        // Finished runs have nothing left to wait for at shutdown.
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
        Ok(())
    }

    /// Arms the timer of `scheduled` campaign `id`: at `at` it becomes active and its run
    /// starts ([`Self::begin_scheduled`]). Wall-clock time is checked at least every 30 s, so
    /// a clock stepped meanwhile (NTP) is followed.
    fn arm_schedule(self: &Arc<Self>, id: i64, at: chrono::DateTime<chrono::Utc>) {
        tracing::info!(campaign = id, start_at = %at, "campaign scheduled");
        let me = self.clone();
        let timer = tokio::spawn(async move {
            loop {
                let left = (at - chrono::Utc::now()).to_std().unwrap_or_default();
                if left.is_zero() {
                    break;
                }
                tokio::time::sleep(left.min(Duration::from_secs(30))).await;
            }
            me.schedules.lock().expect("schedules lock").remove(&id);
            if let Err(e) = me.begin_scheduled(id).await {
                tracing::error!(campaign = id, error = %e, "scheduled campaign could not start");
                let _ = me.store.set_campaign_state(id, "draft").await;
            }
        });
        if let Some(old) = self
            .schedules
            .lock()
            .expect("schedules lock")
            .insert(id, timer)
        {
            old.abort();
        }
    }

    /// `start_at` of campaign `id` has come: if it is still `scheduled`, it becomes `active`
    /// and its run starts. Errors: the store; a run that cannot start.
    async fn begin_scheduled(self: &Arc<Self>, id: i64) -> Result<(), ControlError> {
        let Some(row) = self.store.campaign(id).await? else {
            return Ok(());
        };
        let state: CampaignState = row.state.parse().map_err(ControlError::Conflict)?;
        let Some(next) = state.at_start_at() else {
            return Ok(());
        };
        // The state first: a run that ends at once (its stop_at close) writes `completed`
        // after it.
        self.store.set_campaign_state(id, next.as_str()).await?;
        tracing::info!(campaign = id, "start_at reached: campaign active");
        self.launch(id, &row.config, &row.call_lists, RunControl::Run)
            .await
    }

    /// Resumes campaigns an earlier process left active or paused, and re-arms the scheduled
    /// ones (one whose `start_at` passed while no process ran starts at once).
    /// Errors: database failures (a campaign that cannot start is logged and skipped).
    pub async fn resume(self: &Arc<Self>) -> anyhow::Result<()> {
        for c in self.store.campaign_rows().await? {
            let initial = match c.state.as_str() {
                "active" => RunControl::Run,
                "paused" => RunControl::Pause,
                "scheduled" => {
                    match self.config_of(&c.config).and_then(|cfg| {
                        cfg.schedule()
                            .map_err(|e| ControlError::Invalid(format!("{e:#}")))
                    }) {
                        Ok((start_at, _)) => {
                            self.arm_schedule(c.id, start_at.unwrap_or_else(chrono::Utc::now))
                        }
                        Err(e) => {
                            tracing::warn!(campaign = c.id, error = %e, "could not re-arm schedule")
                        }
                    }
                    continue;
                }
                _ => continue,
            };
            if let Err(e) = self.launch(c.id, &c.config, &c.call_lists, initial).await {
                tracing::warn!(campaign = c.id, error = %e, "could not resume campaign");
            }
        }
        Ok(())
    }

    /// Graceful stop: no new calls; the calls in progress may finish by themselves for up
    /// to `grace`; then the rest are hung up, every run stores its events and ends. The
    /// campaigns keep their state (active/paused), to be resumed at the next start.
    pub async fn shutdown(&self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        // Scheduled campaigns stay scheduled: the next start re-arms them.
        for (_, timer) in self.schedules.lock().expect("schedules lock").drain() {
            timer.abort();
        }
        for r in self.running.lock().expect("running lock").values() {
            let _ = r.control.send(RunControl::Pause);
        }
        loop {
            let busy: usize = self
                .running
                .lock()
                .expect("running lock")
                .values()
                .map(|r| r.in_flight.load(std::sync::atomic::Ordering::Relaxed))
                .sum();
            tracing::debug!(busy, "shutdown: calls still in progress");
            if busy == 0 || tokio::time::Instant::now() >= deadline {
                if busy > 0 {
                    tracing::warn!(calls = busy, "shutdown grace over: hanging up");
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for r in self.running.lock().expect("running lock").values() {
            let _ = r.control.send(RunControl::Stop);
        }
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock().expect("tasks lock"));
        // Hang-ups and the last events take a few seconds at most (Timer F bounds a BYE).
        if tokio::time::timeout(
            Duration::from_secs(40),
            futures_util::future::join_all(tasks),
        )
        .await
        .is_err()
        {
            tracing::warn!("runs still stopping after 40 s; exiting");
        }
    }
}
