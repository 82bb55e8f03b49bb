//! The campaign run: picks due leads, respects `cps` and `max_concurrent`, stores each attempt
//! before its INVITE, applies the retry rules to each outcome, and ends when every lead has a
//! final disposition.
//!
//! Decisions (which lead next, retry or final) are made here from the call events; the engine
//! only dials. A killed run leaves attempts in state `dialing`; the next run on the same
//! database marks them `interrupted` and dials those leads again, and never dials a lead that
//! already has a final disposition.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::oneshot;

use std::sync::Arc;

use crate::acd::{AcdConfig, AgentAccount, Ha1, RegistrarConfig};
use crate::call::actions::{HumanAction, MachineAction, MediaPlan};
use crate::call::disposition::Disposition;
use crate::call::leg::CallSpec;
use crate::campaign::config::CampaignConfig;
use crate::campaign::leads;
use crate::campaign::rate::CallRate;
use crate::engine::core::{EngineStats, new_call_id};
use crate::engine::shell::{self, Command, ShellConfig};
use crate::engine::trunks::TrunkRoute;
use crate::events::{
    AgentEvent, AgentState, AttemptRef, CallEvent, CallEventKind, CampaignEvent, CampaignEventKind,
    WallClock,
};
use crate::media::session::MediaSettings;
use crate::media::wav::read_8k_mono;
use crate::report::{self, Report};
use crate::sip::transaction::Timers;
use crate::store::{LeadUpdate, NewAttempt, Store};

/// What a finished run returns.
pub struct RunOutcome {
    /// The report read back from the store.
    pub report: Report,
    /// Engine counters of this run.
    pub engine: EngineStats,
    /// Rows of the call list that were rejected.
    pub rejected_rows: Vec<leads::RowError>,
    /// Attempts found interrupted by an earlier stop and re-queued.
    pub recovered: u64,
    /// True when the run was stopped (Ctrl-C) before every lead was final.
    pub stopped: bool,
    /// Process resources before the engine started.
    pub resources_before: Resources,
    /// Process resources after it stopped (the soak benchmark compares the two).
    pub resources_after: Resources,
    /// Highest RSS seen while calls were being placed, KiB (sampled once a second; the
    /// report built at the end, which holds every lead, is not included).
    pub peak_rss_kib: u64,
    /// Pacing at the end (`[endpoint]` campaigns): mode, abandon rate over the window (0–1),
    /// dial ratio.
    pub pacing: Option<(String, f64, f64)>,
    /// Times trunk congestion halved the call rate.
    pub congestion_backoffs: u32,
    /// Attempts the trunk failed (`network_error`, `trunk_unreachable`): their leads were
    /// dialled again without using an attempt.
    pub trunk_failures: u64,
    /// Times the campaign paused itself because no trunk was up, and for how long in all.
    pub trunk_pauses: (u32, Duration),
}

/// A snapshot of what the process holds: for leak checks across a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// Open file descriptors (sockets included), from `/proc/self/fd`; 0 where unavailable.
    pub open_fds: u64,
    /// Tokio tasks alive.
    pub tasks: u64,
    /// Resident set size, KiB (`VmRSS` of `/proc/self/status`); 0 where unavailable.
    pub rss_kib: u64,
}

impl Resources {
    /// The process's resident set size, KiB (0 where `/proc` is not available).
    pub fn rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }

    /// Reads the current process's counts.
    pub fn now() -> Self {
        let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
        let rss_kib = Self::rss_kib();
        let tasks = tokio::runtime::Handle::try_current()
            .map_or(0, |h| h.metrics().num_alive_tasks() as u64);
        Self {
            open_fds,
            tasks,
            rss_kib,
        }
    }
}

#[derive(Debug, Clone)]
struct LeadState {
    number: String,
    /// The lead's own time zone for the calling window.
    tz: Option<chrono_tz::Tz>,
    /// Attempts counted and trunk failures in a row (see [`super::decide`]).
    tally: super::decide::LeadTally,
    last_attempt_no: u32,
}

#[derive(Default, Debug, Clone, Copy)]
struct Counters {
    dialled: u64,
    answered: u64,
    failed: u64,
    /// Attempts that ended `network_error` or `trunk_unreachable`.
    trunk_failures: u64,
}

/// The media side of every call of the campaign; loads the voicemail and prompt WAVs.
/// Errors: a WAV that cannot be read or is not 8 kHz mono.
pub fn media_plan(cfg: &CampaignConfig) -> anyhow::Result<MediaPlan> {
    let load = |p: &Option<std::path::PathBuf>| -> anyhow::Result<Option<Arc<Vec<i16>>>> {
        p.as_ref()
            .map(|p| read_8k_mono(p).map(Arc::new))
            .transpose()
    };
    Ok(MediaPlan {
        settings: MediaSettings {
            amd: Some(cfg.amd.clone()),
            media_timeout: (cfg.media_timeout > 0).then(|| Duration::from_secs(cfg.media_timeout)),
            watch_beep: cfg.on_machine == MachineAction::Voicemail,
        },
        on_machine: cfg.on_machine,
        // With agents, humans go to the queue unless another action was chosen.
        on_human: match (cfg.on_human, cfg.acd.is_some()) {
            (HumanAction::Continue, true) => HumanAction::Queue,
            (h, _) => h,
        },
        voicemail: load(&cfg.voicemail_file).context("voicemail_file")?,
        prompt: load(&cfg.prompt_file).context("prompt_file")?,
        voicemail_wait: Duration::from_secs(cfg.voicemail_wait),
    })
}

/// The engine's ACD settings from `[acd]`: passwords become HA1 values in the store (the
/// registrar reads them back from there), the abandon message is loaded.
/// Errors: an agent with neither password, uri nor stored HA1; an unreadable message WAV.
pub async fn acd_config(cfg: &CampaignConfig, store: &Store) -> anyhow::Result<Option<AcdConfig>> {
    let Some(a) = &cfg.acd else { return Ok(None) };
    let mut agents = Vec::new();
    for ag in &a.agents {
        if let Some(p) = &ag.password {
            store
                .upsert_agent(&ag.id, &a.realm, &Ha1::from_password(&ag.id, &a.realm, p))
                .await?;
        }
        let ha1 = if ag.uri.is_some() {
            None
        } else {
            Some(store.agent_ha1(&ag.id, &a.realm).await?.ok_or_else(|| {
                anyhow::anyhow!(
                    "acd.agents[{}]: no password given and none stored for realm {:?} (outdial agent add)",
                    ag.id,
                    a.realm
                )
            })?)
        };
        agents.push(AgentAccount {
            id: ag.id.clone(),
            ha1,
            static_uri: ag.uri.clone(),
        });
    }
    let abandon_message = a
        .abandon_message_file
        .as_ref()
        .map(|p| read_8k_mono(p).map(Arc::new))
        .transpose()
        .context("acd.abandon_message_file")?;
    Ok(Some(AcdConfig {
        registrar: RegistrarConfig {
            realm: a.realm.clone(),
            algorithms: a.digest_algorithms.clone(),
            min_expires: a.min_expires,
            max_expires: a.max_expires,
            default_expires: a.max_expires.min(3600),
            max_failures: a.max_auth_failures,
            block_for: Duration::from_secs(a.block_secs),
            ..RegistrarConfig::default()
        },
        agents,
        strategy: a.strategy,
        mode: a.mode,
        max_wait: a.max_wait(),
        offer_timeout: Duration::from_secs(a.offer_timeout),
        wrap_up: Duration::from_secs(a.wrap_up),
        max_misses: a.max_misses,
        abandon_message,
        queue_not_sure: a.queue_not_sure,
        login_retry: Duration::from_secs(30),
        dispositions: a.dispositions.clone(),
        mandatory_disposition: a.mandatory_disposition,
    }))
}

/// How long a finished campaign waits for agents' mandatory dispositions of its last calls.
pub const DISPOSITION_GRACE: Duration = Duration::from_secs(120);

/// Agents in wrap-up waiting to set a mandatory disposition.
async fn dispositions_owed(engine: &tokio::sync::mpsc::UnboundedSender<shell::Command>) -> usize {
    let (tx, rx) = oneshot::channel();
    if engine.send(shell::Command::Agents(tx)).is_err() {
        return 0;
    }
    rx.await
        .map_or(0, |v| v.iter().filter(|a| a.awaiting_disposition).count())
}

/// What the service asks of a running campaign ([`run_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunControl {
    /// Dial.
    Run,
    /// No new calls; calls in progress go on (and the campaign waits).
    Pause,
    /// No new calls, hang up the calls in progress, stop (as Ctrl-C does).
    Stop,
}

/// Runs a campaign to completion. `leads_file` is imported first (rows already in the
/// campaign are left alone, so re-running with the same file resumes).
/// Errors: bad settings, an unreadable call list, database or socket failures.
pub async fn run(
    cfg: &CampaignConfig,
    leads_file: &Path,
    store: &Store,
    timers: Timers,
    progress: bool,
) -> anyhow::Result<RunOutcome> {
    cfg.validate()?;
    let region = cfg
        .default_region
        .as_deref()
        .map(|r| r.parse::<phonenumber::country::Id>())
        .transpose()
        .map_err(|_| anyhow::anyhow!("default_region is not a region code"))?;
    let file = std::fs::File::open(leads_file)
        .with_context(|| format!("opening call list {}", leads_file.display()))?;
    let import = leads::read_csv(file, region)
        .with_context(|| format!("reading call list {}", leads_file.display()))?;
    run_with(cfg, import, store, timers, progress, RunHooks::default()).await
}

/// How a service drives [`run_with`] (all optional: `outdial run` uses none).
#[derive(Debug, Default)]
pub struct RunHooks {
    /// Pause, resume or stop the run; while set, Ctrl-C is left to the service.
    pub control: Option<tokio::sync::watch::Receiver<RunControl>>,
    /// Receives the engine's command channel once it is up (agent requests).
    pub engine: Option<oneshot::Sender<tokio::sync::mpsc::UnboundedSender<Command>>>,
    /// The live event stream every stored event is sent to.
    pub live: Option<tokio::sync::broadcast::Sender<std::sync::Arc<crate::notify::LiveEvent>>>,
    /// Kept equal to the number of calls in progress (a graceful shutdown waits for 0).
    pub in_flight: Option<std::sync::Arc<std::sync::atomic::AtomicUsize>>,
    /// Limits shared with the other campaigns of the process: process-wide and per trunk.
    pub limits: super::rate::SharedLimits,
    /// Agents' requests for their next lead (preview dialling).
    pub preview: Option<tokio::sync::mpsc::UnboundedReceiver<PreviewRequest>>,
    /// An engine shared with other campaigns (their agents too) instead of one of its own.
    pub shared_engine: Option<std::sync::Arc<crate::engine::shared::SharedEngine>>,
    /// This process's node name when several share a campaign through one PostgreSQL store
    /// (default: [`default_node`]).
    pub node: Option<String>,
}

/// Takes the campaign's run lease. Held by another owner: waits until that lease's expiry
/// (a process that died — a restart on the same node — lets it run out) and tries once
/// more; still held means its owner is alive and renewing: refused, naming it.
/// Errors: [`crate::store::LeaseHeld`] (with the campaign's name as context), database
/// failures.
async fn acquire_lease(
    store: &Store,
    campaign_id: i64,
    node: &str,
    ttl: Duration,
    name: &str,
    progress: bool,
) -> anyhow::Result<crate::store::RunLease> {
    let first = match store.acquire_lease(campaign_id, node, ttl).await {
        Ok(l) => return Ok(l),
        Err(e) => e,
    };
    let Some(held) = first.downcast_ref::<crate::store::LeaseHeld>() else {
        return Err(first);
    };
    let wait = crate::events::parse_rfc3339(&held.expires_at)
        .ok()
        .and_then(|t| (t - chrono::Utc::now()).to_std().ok())
        .unwrap_or_default()
        .min(Duration::from_secs(600))
        + Duration::from_millis(500);
    tracing::warn!(campaign = name, owner = %held.owner, "the campaign's run lease is held: waiting {:.1} s for it to expire", wait.as_secs_f64());
    if progress {
        eprintln!(
            "[{name}] dialled by {} since {}: waiting {:.0} s for its lease to expire…",
            held.owner,
            held.since,
            wait.as_secs_f64()
        );
    }
    tokio::time::sleep(wait).await;
    store
        .acquire_lease(campaign_id, node, ttl)
        .await
        .with_context(|| format!("campaign {name}"))
}

/// How long a run lease lasts without renewal: `OUTDIAL_LEASE_TTL` seconds (2 to 600,
/// default 15). The lease is renewed every third of it; a process killed without clean-up
/// holds its campaign that long at most.
pub fn lease_ttl() -> Duration {
    let secs = std::env::var("OUTDIAL_LEASE_TTL")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(15)
        .clamp(2, 600);
    Duration::from_secs(secs)
}

/// The node name of this process: `OUTDIAL_NODE`, else the host name. Attempts record it; a
/// restarted node recovers its own interrupted attempts and leaves other nodes' calls alone.
pub fn default_node() -> String {
    std::env::var("OUTDIAL_NODE")
        .ok()
        .filter(|n| !n.trim().is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "outdial".into())
}

/// An agent's request for the next lead of a preview campaign (`POST
/// /v1/agents/{id}/next-lead`): the run takes the next due lead (calling window, do-not-call
/// list and limits as for any call), places the call at once and reserves the agent for it;
/// answered, it goes to that agent only.
#[derive(Debug)]
pub struct PreviewRequest {
    /// The agent asking.
    pub agent: String,
    /// The lead and call placed, or why not.
    pub reply: oneshot::Sender<Result<PreviewLead, PreviewRefusal>>,
}

/// The lead a preview request got, and the call placed to it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewLead {
    /// The lead's id.
    pub lead_id: i64,
    /// The number dialled.
    pub number: String,
    /// Our Call-ID of the call placed.
    pub call_id: String,
    /// The lead's attempt number.
    pub attempt_no: u32,
}

/// Why a preview request got no lead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreviewRefusal {
    /// The campaign paces itself (`endpoint.type` is not `preview`).
    #[error("the campaign does not dial in preview mode")]
    NotPreview,
    /// The agent is not available (its state).
    #[error("agent {0} is not available (it is {1})")]
    AgentNotAvailable(String, String),
    /// Paused, waiting for agents, held by a trunk's Retry-After, or stopping.
    #[error("the campaign is not dialling now (paused, held or stopping)")]
    NotDialling,
    /// No lead is due now (all final, in progress, waiting for a retry or outside their
    /// calling window).
    #[error("no lead is due now")]
    NoLeadDue,
}

/// How long a finished run waits for its webhook backlog before dead-lettering the rest.
pub const WEBHOOK_GRACE: Duration = Duration::from_secs(10);

/// Runs a campaign over leads already read (`import`: added to the campaign's leads, numbers
/// already there left alone) until every lead is final — or, with `control`, until told to
/// stop; `Pause` holds new calls. Without `control`, Ctrl-C stops it.
/// Errors: bad settings, database or socket failures.
pub async fn run_with(
    cfg: &CampaignConfig,
    import: leads::Import,
    store: &Store,
    timers: Timers,
    progress: bool,
    mut hooks: RunHooks,
) -> anyhow::Result<RunOutcome> {
    let mut control = hooks.control.take();
    cfg.validate()?;
    for e in &import.errors {
        tracing::warn!(line = e.line, reason = %e.reason, "call list row rejected");
    }

    let node = hooks.node.take().unwrap_or_else(default_node);
    // One owner per campaign run (per node), checked, not assumed: a second process on this
    // campaign is refused while our lease is renewed; a dead owner's lease expires. The lease
    // comes before anything is written to an existing campaign (its settings, its leads).
    let settings = serde_json::to_string(cfg)?;
    let existing = store.campaign_id(&cfg.name).await?;
    let campaign_id = match existing {
        Some(id) => id,
        None => store.upsert_campaign(&cfg.name, &settings).await?,
    };
    let ttl = lease_ttl();
    let lease = acquire_lease(store, campaign_id, &node, ttl, &cfg.name, progress).await?;
    let mut lease_renewed = Instant::now();
    if existing.is_some() {
        store.upsert_campaign(&cfg.name, &settings).await?;
    }
    let leads::Import {
        leads: imported,
        errors: rejected_rows,
    } = import;
    let counts = store.import_leads(campaign_id, &imported).await?;
    // The leads are in the store now; only the rejected rows are reported at the end (a
    // list of a million leads with their attributes would otherwise stay in memory).
    drop(imported);
    let recovered = store.recover_interrupted(campaign_id, &node).await?;
    tracing::info!(
        campaign = %cfg.name,
        imported = counts.inserted,
        already_present = counts.already_present,
        rejected = rejected_rows.len(),
        recovered,
        "call list loaded"
    );

    let resources_before = Resources::now();
    let shared = hooks.shared_engine.take();
    let mut engine = match &shared {
        Some(s) => s.attach(campaign_id, cfg.priority),
        None => spawn_engine(cfg, store, timers).await?,
    };
    if let Some(tx) = hooks.engine.take() {
        let _ = tx.send(engine.commands.clone());
    }
    let live = match (&hooks.live, &cfg.api_listen) {
        (Some(l), _) => Some(l.clone()),
        (None, Some(_)) => Some(tokio::sync::broadcast::channel(4096).0),
        (None, None) => None,
    };
    let fanout = crate::notify::Fanout {
        live: live.clone(),
        webhook: cfg
            .webhook
            .as_ref()
            .map(|w| crate::notify::webhook::WebhookQueue::start(w, campaign_id, store.clone())),
        campaign_id,
        campaign: cfg.name.clone(),
    };
    let api = match &cfg.api_listen {
        Some(addr) => {
            let state = std::sync::Arc::new(crate::api::ApiState {
                store: store.clone(),
                engine: Some(engine.commands.clone()),
                service: None,
                live: live.clone(),
            });
            let (bound, task) = crate::api::bind(addr.parse()?, state).await?;
            tracing::info!(%bound, "REST API listening");
            if progress {
                eprintln!("[{}] REST API on http://{bound}/v1", cfg.name);
            }
            Some(task)
        }
        None => None,
    };
    let local_ip = engine.local_addr.ip().to_string();
    let from_host = cfg.from_host.clone().unwrap_or_else(|| local_ip.clone());

    let plan = media_plan(cfg)?;
    let clock = WallClock::now();
    let mut states: HashMap<i64, LeadState> = HashMap::new();
    let mut due: BinaryHeap<Reverse<(Instant, i64)>> = BinaryHeap::new();
    let window = cfg
        .active_period
        .as_ref()
        .map(super::window::CallingWindow::new)
        .transpose()?;
    let tz_attribute = cfg
        .active_period
        .as_ref()
        .and_then(|p| p.lead_time_zone_attribute.as_deref());
    let mut bad_zones = 0u64;
    for p in store.pending_leads(campaign_id, tz_attribute).await? {
        let at = p
            .next_attempt_at
            .map(|t| clock.to_instant(t))
            .unwrap_or_else(Instant::now);
        due.push(Reverse((at, p.id)));
        states.insert(
            p.id,
            LeadState {
                number: p.number,
                tz: p.time_zone.as_deref().and_then(|z| {
                    let t = super::window::zone(z).ok();
                    bad_zones += u64::from(t.is_none());
                    t
                }),
                tally: super::decide::LeadTally {
                    attempts: p.attempts,
                    trunk_faults: 0,
                },
                last_attempt_no: p.last_attempt_no,
            },
        );
    }
    if bad_zones > 0 {
        tracing::warn!(
            leads = bad_zones,
            "leads with an unknown time zone are called in the campaign's"
        );
    }
    let (total, already_final) = store.lead_counts(campaign_id).await?;

    let bar = if progress && std::io::stderr().is_terminal() {
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} leads final  {msg}")
                .expect("static template"),
        );
        b.set_position(already_final);
        Some(b)
    } else {
        None
    };
    let mut final_count = already_final;
    let mut last_plain = Instant::now();
    // The do-not-call list, checked before every attempt; re-read when it grows.
    let mut dnc = store.dnc_set().await?;
    let mut dnc_len = dnc.len() as i64;
    let mut dnc_checked = Instant::now();

    let mut rate = CallRate::new(cfg.cps, Instant::now());
    // Repeated congestion slows the campaign instead of burning leads on a refusing trunk.
    let mut backoff = super::rate::Backoff::new(BACKOFF_AFTER, BACKOFF_RECOVER);

    let mut in_flight: HashMap<i64, i64> = HashMap::new(); // attempt id → lead id
    let mut counters = Counters::default();
    let mut batch: Vec<CallEvent> = Vec::new();
    let mut ctrl_c = Box::pin(tokio::signal::ctrl_c());
    let mut stopping = false;
    // A trunk's `Retry-After` (on a 503, say) holds new calls until then.
    let mut hold_until: Option<Instant> = None;
    let mut shutdown_rx: Option<oneshot::Receiver<EngineStats>> = None;
    // When the events gathered so far must be stored.
    let mut flush_at: Option<Instant> = None;
    let mut peak_rss_kib = 0u64;
    let mut last_rss = Instant::now();
    // Agents: their state, and the wait for a first available one before dialling.
    let mut agent_states: HashMap<String, AgentState> = HashMap::new();
    let mut agent_batch: Vec<AgentEvent> = Vec::new();
    let mandatory_disposition = cfg.acd.as_ref().is_some_and(|a| a.mandatory_disposition);
    // Pacing from the live floor ([endpoint]); without it, cps and max_concurrent only.
    let mut pace = cfg
        .endpoint
        .as_ref()
        .map(|e| super::pace::Pace::new(e.pacer()));
    let mut dispositions_until: Option<Instant> = None;
    let is_preview = cfg
        .endpoint
        .as_ref()
        .is_some_and(|e| e.kind == crate::pacing::DialMode::Preview);
    let mut preview_rx = hooks.preview.take();
    let mut pending_preview: VecDeque<PreviewRequest> = VecDeque::new();
    // Agents with a preview call in progress (agent → attempt), until its `terminated`: the
    // engine's agent events come on their own channel, so one about an earlier call can
    // arrive after this call was placed and must not make the agent look free.
    let mut preview_busy: HashMap<String, i64> = HashMap::new();
    // Leads another node took first (several nodes on one campaign).
    let mut taken_elsewhere = 0u64;
    // When the pacer's live figures last went to the metrics.
    let mut pacing_shown = Instant::now() - Duration::from_secs(1);
    // Paused since then because no trunk is up; pauses so far and their total length.
    let mut trunk_paused_at: Option<Instant> = None;
    let mut trunk_pauses: (u32, Duration) = (0, Duration::ZERO);
    let mut agents_wait_until = cfg
        .acd
        .as_ref()
        .filter(|a| a.wait_for_agents > 0)
        .map(|a| super::rate::later(Instant::now(), Duration::from_secs(a.wait_for_agents)));
    if agents_wait_until.is_some() && progress {
        eprintln!(
            "[{}] waiting for an agent to become available before dialling…",
            cfg.name
        );
    }

    loop {
        // 1. Dial whatever is due, inside the limits. The attempts of one pass are stored in
        // one transaction, before any of their INVITEs is sent.
        let mut limiter_wait: Option<Duration> = None;
        let mut picked: Vec<(i64, u32, String, Instant)> = Vec::new();
        // The preview request each picked lead answers (preview dialling).
        let mut picked_for: Vec<Option<PreviewRequest>> = Vec::new();
        let mut not_dialled: Vec<LeadUpdate> = Vec::new();
        if dnc_checked.elapsed() >= DNC_REFRESH {
            dnc_checked = Instant::now();
            let n = store.dnc_count().await?;
            if n != dnc_len {
                dnc = store.dnc_set().await?;
                dnc_len = n;
            }
        }
        while let Ok(ev) = engine.agent_events.try_recv() {
            agent_states.insert(ev.agent.clone(), ev.state);
            agent_batch.push(ev);
        }
        if agents_wait_until.is_some_and(|t| {
            t <= Instant::now() || agent_states.values().any(|s| *s == AgentState::Available)
        }) {
            if agents_wait_until.is_some_and(|t| t <= Instant::now()) {
                tracing::warn!("no agent available yet: dialling anyway");
            }
            agents_wait_until = None;
        }
        if let Some(f) = backoff.tick(Instant::now()) {
            tracing::info!(cps = cfg.cps * f, "no more congestion: speeding up again");
            rate = CallRate::new(cfg.cps * f, Instant::now());
        }
        let ctl = control.as_ref().map_or(RunControl::Run, |c| *c.borrow());
        if ctl == RunControl::Stop && !stopping {
            stopping = true;
            shutdown_rx = Some(request_shutdown(&engine.commands));
        }
        // No trunk up: pause until one answers again (its pings go on meanwhile). The health
        // is read only when the engine published a change.
        if engine.trunks.has_changed().unwrap_or(false) {
            let health = engine.trunks.borrow_and_update().clone();
            let kind = match (health.all_down(), trunk_paused_at) {
                (true, None) => {
                    trunk_paused_at = Some(Instant::now());
                    trunk_pauses.0 += 1;
                    let names: Vec<String> = health
                        .down
                        .iter()
                        .map(|(t, r)| format!("{t} ({r})"))
                        .collect();
                    tracing::warn!(trunks = %names.join(", "), "no trunk is up: campaign auto-paused until one answers");
                    if progress {
                        eprintln!(
                            "[{}] no trunk is up ({}): paused until one answers our OPTIONS",
                            cfg.name,
                            names.join(", ")
                        );
                    }
                    Some(CampaignEventKind::AutoPaused {
                        reason: "trunk_down".into(),
                        calls_waiting: 0,
                        threshold: 0,
                        trunks: health
                            .down
                            .iter()
                            .map(|(t, r)| crate::events::TrunkDown {
                                trunk: t.clone(),
                                reason: (*r).to_string(),
                            })
                            .collect(),
                    })
                }
                (false, Some(since)) => {
                    trunk_paused_at = None;
                    trunk_pauses.1 += since.elapsed();
                    tracing::info!("a trunk answers again: campaign resumed");
                    if progress {
                        eprintln!("[{}] a trunk answers again: dialling resumed", cfg.name);
                    }
                    Some(CampaignEventKind::AutoResumed {
                        reason: "trunk_up".into(),
                    })
                }
                _ => None,
            };
            if let Some(kind) = kind {
                let ev = [CampaignEvent {
                    at: Instant::now(),
                    kind,
                }];
                store
                    .record_campaign_events(&clock, campaign_id, &ev)
                    .await?;
                fanout.publish_campaign(&clock, &ev);
            }
        }
        let held = hold_until.is_some_and(|t| t > Instant::now())
            || agents_wait_until.is_some()
            || trunk_paused_at.is_some()
            || ctl == RunControl::Pause;
        let paced = match (&mut pace, stopping || held) {
            (Some(p), false) => {
                // Agents wanted by campaigns at this priority or above on a shared engine.
                let ahead = shared
                    .as_ref()
                    .map_or(0, |s| s.demand_ahead(campaign_id, cfg.priority));
                p.budget(Instant::now(), in_flight.len(), &agent_states, ahead)
            }
            (Some(_), true) => 0,
            (None, _) => usize::MAX,
        };
        // Preview: one call per agent who asked and is available, nothing else.
        let paced = if is_preview {
            let mut asking = HashSet::new();
            for r in std::mem::take(&mut pending_preview) {
                let state = agent_states
                    .get(&r.agent)
                    .copied()
                    .unwrap_or(AgentState::Offline);
                if stopping || held {
                    let _ = r.reply.send(Err(PreviewRefusal::NotDialling));
                } else if state != AgentState::Available
                    || preview_busy.contains_key(&r.agent)
                    || !asking.insert(r.agent.clone())
                {
                    let s = if state == AgentState::Available {
                        "reserved"
                    } else {
                        state.as_str()
                    };
                    let _ = r.reply.send(Err(PreviewRefusal::AgentNotAvailable(
                        r.agent.clone(),
                        s.into(),
                    )));
                } else {
                    pending_preview.push_back(r);
                }
            }
            pending_preview.len()
        } else {
            for r in pending_preview.drain(..) {
                let _ = r.reply.send(Err(PreviewRefusal::NotPreview));
            }
            paced
        };
        if let Some(p) = &mut pace {
            if pacing_shown.elapsed() >= Duration::from_millis(500) {
                pacing_shown = Instant::now();
                crate::notify::metrics::record_pacing(&cfg.name, p.abandon_rate(), p.dial_ratio());
            }
            let events = p.take_events();
            if !events.is_empty() {
                store
                    .record_campaign_events(&clock, campaign_id, &events)
                    .await?;
                fanout.publish_campaign(&clock, &events);
            }
        }
        while !stopping
            && !held
            && in_flight.len() + picked.len() < cfg.max_concurrent as usize
            && picked.len() < paced
            && picked.len() < 512
        {
            let Some(Reverse((at, lead_id))) = due.peek().copied() else {
                break;
            };
            if at > Instant::now() {
                break;
            }
            let now = Instant::now();
            if hooks.limits.is_full() {
                break;
            }
            if !rate.try_acquire(now) {
                // At high rates, wake at most every DIAL_PASS and take the calls whose slots
                // passed meanwhile (CallRate catches up): a few attempts per database
                // transaction instead of one.
                let slot = rate.next_at().saturating_duration_since(now);
                limiter_wait = Some(slot.max(DIAL_PASS));
                break;
            }
            // The process-wide and trunk limits, after the campaign's own (a slot taken here
            // is a call).
            if !hooks.limits.is_empty() && !hooks.limits.try_start(now) {
                limiter_wait = Some(DIAL_PASS.max(Duration::from_millis(20)));
                break;
            }
            due.pop();
            let st = states.get_mut(&lead_id).expect("due lead has state");
            if dnc.contains(&st.number) {
                not_dialled.push(LeadUpdate::Final {
                    lead_id,
                    attempts: st.tally.attempts,
                    disposition: Disposition::Dnc,
                });
                hooks.limits.ended(1);
                continue;
            }
            // Outside the lead's calling window: back in the queue for its next opening (the
            // rate slot is given back by the next pass's catch-up).
            if let Some(w) = &window {
                let utc = clock.to_utc(now);
                if !w.contains(utc, st.tz) {
                    let opens = w.next_open(utc, st.tz);
                    due.push(Reverse((clock.to_instant(opens), lead_id)));
                    hooks.limits.ended(1);
                    continue;
                }
            }
            st.last_attempt_no += 1;
            picked.push((lead_id, st.last_attempt_no, new_call_id(), now));
            picked_for.push(if is_preview {
                pending_preview.pop_front()
            } else {
                None
            });
        }
        // Requests no due lead answered this pass (a rate or shared limit may answer them on
        // the next one).
        if !pending_preview.is_empty() && limiter_wait.is_none() {
            for r in pending_preview.drain(..) {
                let _ = r.reply.send(Err(PreviewRefusal::NoLeadDue));
            }
        }
        if !not_dialled.is_empty() {
            tracing::info!(
                leads = not_dialled.len(),
                "on the do-not-call list: final as dnc, not dialled"
            );
            final_count += not_dialled.len() as u64;
            store.record(&clock, &[], &not_dialled).await?;
        }
        if !picked.is_empty() {
            let rows: Vec<NewAttempt<'_>> = picked
                .iter()
                .map(|(lead_id, attempt_no, call_id, started)| NewAttempt {
                    lead_id: *lead_id,
                    attempt_no: *attempt_no,
                    call_id,
                    started_at: clock.to_utc(*started),
                })
                .collect();
            let ids = store.insert_attempts(&lease, &rows).await?;
            for (((lead_id, attempt_no, call_id, started), attempt_id), request) in
                picked.into_iter().zip(ids).zip(picked_for)
            {
                let Some(attempt_id) = attempt_id else {
                    // Another node stored this attempt of the lead first: it is calling it
                    // (or already did). Ours is dropped, the lead left to that node, and the
                    // rate slot given back; a preview request waits for the next lead.
                    states.remove(&lead_id);
                    rate.give_back();
                    hooks.limits.ended(1);
                    taken_elsewhere += 1;
                    if let Some(r) = request {
                        pending_preview.push_front(r);
                    }
                    continue;
                };
                let st = &states[&lead_id];
                in_flight.insert(attempt_id, lead_id);
                if let Some(p) = &mut pace {
                    p.placed(attempt_id, started);
                }
                if let Some(n) = &hooks.in_flight {
                    n.store(in_flight.len(), std::sync::atomic::Ordering::Relaxed);
                }
                counters.dialled += 1;
                // The engine picks the trunks (weights, health) and fills the hops and To.
                let spec = CallSpec {
                    number: st.number.clone(),
                    hops: Vec::new(),
                    failover_timeout: cfg.failover_timeout(),
                    to_uri: String::new(),
                    caller_id: cfg.caller_id.clone(),
                    caller_name: cfg.caller_name.clone(),
                    from_host: from_host.clone(),
                    p_asserted_identity: cfg.p_asserted_identity.clone(),
                    ring_timeout: cfg.ring_timeout(),
                    hold_time: cfg.hold_time(),
                    rtp_port: 0,
                    media_ip: local_ip.clone(),
                    media: plan.clone(),
                    privacy: cfg.privacy.clone(),
                    session_expires: (cfg.session_expires > 0).then_some(cfg.session_expires),
                };
                let number = spec.number.clone();
                engine
                    .commands
                    .send(Command::StartCall {
                        call_id: call_id.clone(),
                        attempt: AttemptRef {
                            attempt_id,
                            lead_id,
                            attempt_no,
                        },
                        spec: Box::new(spec),
                        preview_agent: request.as_ref().map(|r| r.agent.clone()),
                        priority: cfg.priority,
                    })
                    .map_err(|_| anyhow::anyhow!("SIP engine stopped unexpectedly"))?;
                if let Some(r) = request {
                    // Busy until this call's `terminated`, whatever agent events arrive
                    // meanwhile: a second request must not place a second call.
                    preview_busy.insert(r.agent.clone(), attempt_id);
                    let _ = r.reply.send(Ok(PreviewLead {
                        lead_id,
                        number,
                        call_id,
                        attempt_no,
                    }));
                }
            }
        }

        if in_flight.is_empty() && (due.is_empty() || stopping) {
            // Every lead is final; with mandatory dispositions, the agents still owe theirs
            // for the last calls: wait for them (up to DISPOSITION_GRACE).
            let owed = if stopping || !mandatory_disposition {
                0
            } else {
                dispositions_owed(&engine.commands).await
            };
            if owed == 0 {
                break;
            }
            let until = *dispositions_until.get_or_insert_with(|| {
                if progress {
                    eprintln!(
                        "[{}] every lead is final; waiting for {owed} agent disposition(s)…",
                        cfg.name
                    );
                }
                Instant::now() + DISPOSITION_GRACE
            });
            if Instant::now() >= until {
                tracing::warn!(owed, "agents did not set their last calls' dispositions");
                break;
            }
        }
        if lease_renewed.elapsed() >= ttl / 3 {
            lease_renewed = Instant::now();
            if !store.renew_lease(&lease, ttl).await? {
                anyhow::bail!(
                    "campaign {}: our run lease expired and another process took the campaign \
                     over; stopping without dialling more",
                    cfg.name
                );
            }
        }
        if last_rss.elapsed() >= Duration::from_secs(1) {
            last_rss = Instant::now();
            peak_rss_kib = peak_rss_kib.max(Resources::rss_kib());
        }

        // 2. Wait for an event, the next due lead, the rate limiter, or Ctrl-C.
        let next_due = due.peek().map(|Reverse((t, _))| *t);
        // Held (paused, waiting for agents or a trunk): due leads in the past must not wake
        // the loop at once, again and again; the tick (or the hold's end) does.
        let paused = trunk_paused_at.is_some() || ctl == RunControl::Pause;
        let can_dial = !stopping && !paused && in_flight.len() < cfg.max_concurrent as usize;
        let wake = match (can_dial, next_due, limiter_wait) {
            (false, _, _) => None,
            (true, Some(t), Some(w)) => Some(t.max(Instant::now() + w)),
            (true, Some(t), None) => Some(t),
            (true, None, _) => None,
        };
        let wake = match (wake, hold_until) {
            (Some(w), Some(h)) if h > Instant::now() => Some(w.max(h)),
            (w, _) => w,
        };
        let tick = Instant::now() + Duration::from_millis(500);
        let wake = wake.map_or(tick, |w| w.min(tick));
        let wake = flush_at.map_or(wake, |f| wake.min(f));
        // While waiting for agents, or pacing from the floor, look again soon.
        let wake = if agents_wait_until.is_some() || pace.is_some() {
            wake.min(Instant::now() + Duration::from_millis(20))
        } else {
            wake
        };
        tokio::select! {
            // While a batch is gathering, events wait in the channel until it is due: one
            // wake-up per batch instead of one per event.
            ev = engine.events.recv(), if flush_at.is_none() => {
                let Some(ev) = ev else { anyhow::bail!("SIP engine stopped unexpectedly") };
                if batch.is_empty() {
                    flush_at = Some(Instant::now() + EVENT_FLUSH);
                }
                batch.push(ev);
                while let Ok(ev) = engine.events.try_recv() {
                    batch.push(ev);
                    if batch.len() >= 512 { break; }
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {}
            req = async {
                match preview_rx.as_mut() {
                    Some(r) => r.recv().await,
                    None => std::future::pending().await,
                }
            } => match req {
                Some(r) => pending_preview.push_back(r),
                None => preview_rx = None,
            },
            r = async {
                match control.as_mut() {
                    Some(c) => c.changed().await,
                    None => std::future::pending().await,
                }
            } => if r.is_err() {
                // The service dropped its handle: nobody can resume us, so stop.
                control = None;
                if stopping { continue; }
                stopping = true;
                shutdown_rx = Some(request_shutdown(&engine.commands));
            },
            _ = &mut ctrl_c, if control.is_none() => {
                if stopping {
                    // Second Ctrl-C: leave now. Attempts still in progress stay `dialing` and
                    // are marked `interrupted` by the next run.
                    anyhow::bail!("stopped at once by a second Ctrl-C; run again to resume");
                }
                eprintln!("Stopping: hanging up {} call(s) in progress (Ctrl-C again to quit at once); run again to resume.", in_flight.len());
                stopping = true;
                ctrl_c = Box::pin(tokio::signal::ctrl_c());
                shutdown_rx = Some(request_shutdown(&engine.commands));
            }
        }

        // 3. Apply events: store them with the lead decisions they imply, in one transaction.
        // Events gather for up to EVENT_FLUSH (or 512 of them) first: each transaction costs
        // round trips to the SQLite worker thread, so one per event would cap the call rate.
        let flush_due =
            flush_at.is_some_and(|f| Instant::now() >= f) || batch.len() >= 512 || stopping;
        if flush_due {
            while let Ok(ev) = engine.events.try_recv() {
                batch.push(ev);
            }
        }
        if !batch.is_empty() && flush_due {
            flush_at = None;
            let mut updates = Vec::new();
            for ev in &batch {
                match &ev.kind {
                    CallEventKind::Answered { .. } => counters.answered += 1,
                    CallEventKind::Terminated {
                        disposition,
                        retry_after,
                        ..
                    } => {
                        if !disposition.spares_the_lead()
                            && let Some(f) =
                                backoff.outcome(ev.at, *disposition == Disposition::Congestion)
                        {
                            tracing::warn!(
                                cps = cfg.cps * f,
                                "trunk congestion: calls in a row ended `congestion`; slowing down"
                            );
                            rate = CallRate::new(cfg.cps * f, Instant::now());
                        }
                        let trunk_wait = retry_after.map(|s| Duration::from_secs(u64::from(s)));
                        if let Some(w) = trunk_wait {
                            let until = super::rate::later(Instant::now(), w);
                            if hold_until.is_none_or(|h| h < until) {
                                tracing::warn!(
                                    seconds = w.as_secs(),
                                    "trunk asked to retry later (Retry-After): holding new calls"
                                );
                                hold_until = Some(until);
                            }
                        }
                        if in_flight.remove(&ev.attempt.attempt_id).is_some() {
                            hooks.limits.ended(1);
                        }
                        preview_busy.retain(|_, a| *a != ev.attempt.attempt_id);
                        if let Some(n) = &hooks.in_flight {
                            n.store(in_flight.len(), std::sync::atomic::Ordering::Relaxed);
                        }
                        let lead_id = ev.attempt.lead_id;
                        let st = states.get_mut(&lead_id).expect("lead of an attempt");
                        let decision = super::decide::decide(
                            Instant::now(),
                            &mut st.tally,
                            *disposition,
                            trunk_wait,
                            cfg.rule_for(*disposition),
                        );
                        let attempts = st.tally.attempts;
                        if st.tally.trunk_faults == super::decide::FREE_TRUNK_FAULTS + 1 {
                            tracing::warn!(lead = lead_id, number = %st.number, "the trunk failed this lead's calls {} times in a row while answering others: its attempts count from now", super::decide::FREE_TRUNK_FAULTS);
                        }
                        use super::decide::LeadDecision;
                        if !matches!(decision, LeadDecision::Again { .. }) {
                            counters.failed += u64::from(*disposition != Disposition::Answered);
                        }
                        let again_at = match decision {
                            LeadDecision::Again { at, trunk_fault } => {
                                counters.trunk_failures += u64::from(trunk_fault);
                                Some(at)
                            }
                            LeadDecision::Retry { at } => Some(at),
                            LeadDecision::Final { disposition } => {
                                final_count += 1;
                                updates.push(LeadUpdate::Final {
                                    lead_id,
                                    attempts,
                                    disposition,
                                });
                                None
                            }
                        };
                        if let Some(at) = again_at {
                            // While stopping, the time is only kept in the store, for the
                            // next run.
                            if !stopping {
                                due.push(Reverse((at, lead_id)));
                            }
                            updates.push(LeadUpdate::Retry {
                                lead_id,
                                attempts,
                                at: clock.to_utc(at),
                            });
                        }
                    }
                    _ => {}
                }
            }
            store.record(&clock, &batch, &updates).await?;
            store.record_agent_events(&clock, &agent_batch).await?;
            if let Some(p) = &mut pace {
                for ev in &batch {
                    p.call_event(ev);
                }
                for ev in &agent_batch {
                    p.agent_event(ev);
                }
            }
            fanout.publish(&clock, &batch, &agent_batch, &agent_states, |lead| {
                states.get(&lead).map(|s| s.number.as_str())
            });
            batch.clear();
            agent_batch.clear();
        }

        let msg = format!(
            "dialled {} | in progress {} | answered {} | not answered {}",
            counters.dialled,
            in_flight.len(),
            counters.answered,
            counters.failed
        );
        if let Some(b) = &bar {
            b.set_position(final_count);
            b.set_message(msg);
        } else if progress && last_plain.elapsed() >= Duration::from_secs(5) {
            last_plain = Instant::now();
            eprintln!("[{}] {final_count}/{total} leads final  {msg}", cfg.name);
        }
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }

    tracing::debug!(campaign = %cfg.name, stopping, "run loop ended; waiting for the engine");
    // Calls cut short by a stop end with the engine: their slots go back now.
    hooks.limits.ended(in_flight.len());
    let rx = shutdown_rx.unwrap_or_else(|| request_shutdown(&engine.commands));
    // Events not stored yet (an agent's disposition can be the last thing that happens), and
    // those that follow `terminated` (media statistics) until the engine task ends.
    let mut tail = std::mem::take(&mut batch);
    while let Some(ev) = engine.events.recv().await {
        tail.push(ev);
    }
    if !tail.is_empty() {
        store.record(&clock, &tail, &[]).await?;
    }
    while let Some(ev) = engine.agent_events.recv().await {
        agent_batch.push(ev);
    }
    store.record_agent_events(&clock, &agent_batch).await?;
    for ev in &agent_batch {
        agent_states.insert(ev.agent.clone(), ev.state);
    }
    fanout.publish(&clock, &tail, &agent_batch, &agent_states, |lead| {
        states.get(&lead).map(|s| s.number.as_str())
    });
    if let Some(w) = fanout.webhook {
        w.finish(WEBHOOK_GRACE).await;
    }
    tracing::debug!(campaign = %cfg.name, "engine events drained");
    let engine_stats = rx.await.unwrap_or_default();
    let _ = engine.task.await;
    // Media tasks send their last statistics and then return: let them finish.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let resources_after = Resources::now();
    let peak_rss_kib = peak_rss_kib.max(resources_after.rss_kib);
    if !stopping {
        // Completed when every lead is final — other nodes may still be calling theirs.
        let (total, finals) = store.lead_counts(campaign_id).await?;
        if finals == total {
            store.complete_campaign(campaign_id).await?;
        } else {
            tracing::info!(
                pending = total - finals,
                taken_elsewhere,
                "this node is done; other nodes are still calling the campaign's other leads"
            );
        }
    }
    if let Some(t) = api {
        t.abort();
    }
    store.release_lease(&lease).await?;
    let report = report::build(store, campaign_id, &cfg.name).await?;
    Ok(RunOutcome {
        report,
        engine: engine_stats,
        rejected_rows,
        recovered,
        stopped: stopping,
        resources_before,
        resources_after,
        peak_rss_kib,
        congestion_backoffs: backoff.times_lowered(),
        trunk_failures: counters.trunk_failures,
        trunk_pauses: (
            trunk_pauses.0,
            trunk_pauses.1 + trunk_paused_at.map_or(Duration::ZERO, |t| t.elapsed()),
        ),
        pacing: pace.map(|p| {
            let mode = cfg
                .endpoint
                .as_ref()
                .map_or("", |e| e.kind.as_str())
                .to_string();
            (mode, p.abandon_rate(), p.dial_ratio())
        }),
    })
}

/// Asks the engine to hang up every call and stop; the receiver gets its counters.
fn request_shutdown(
    commands: &tokio::sync::mpsc::UnboundedSender<Command>,
) -> oneshot::Receiver<EngineStats> {
    let (tx, rx) = oneshot::channel();
    let _ = commands.send(Command::Shutdown(tx));
    rx
}

/// Shortest wait between two dialling passes when the rate limiter is what holds calls back.
const DIAL_PASS: Duration = Duration::from_millis(2);

/// Congested attempts in a row that halve the call rate (see [`super::rate::Backoff`]).
const BACKOFF_AFTER: u32 = 5;
/// How long without new congestion before the rate rises again by half.
const BACKOFF_RECOVER: Duration = Duration::from_secs(10);

/// How often a run looks whether the do-not-call list grew.
const DNC_REFRESH: Duration = Duration::from_secs(5);

/// Longest time call events wait in memory before they are stored (with their lead decisions).
const EVENT_FLUSH: Duration = Duration::from_millis(10);

/// The engine settings of a campaign: its socket, trunk group, RTP ports and ACD.
/// Errors: an unparsable address, a trunk that does not resolve, agents' HA1 not readable.
async fn engine_config(
    cfg: &CampaignConfig,
    store: &Store,
    timers: Timers,
) -> anyhow::Result<ShellConfig> {
    let acd = acd_config(cfg, store).await?;
    let trunks = resolve_trunks(cfg).await?;
    let transport = trunks[0].transport;
    Ok(ShellConfig {
        bind: cfg.local_address.parse()?,
        trunks,
        keepalive: (cfg.keepalive_interval > 0)
            .then(|| Duration::from_secs(cfg.keepalive_interval)),
        trunk_down_after: cfg.trunk_down_after,
        transport,
        user_agent: cfg.user_agent.clone(),
        timers,
        rtp_ports: (cfg.rtp_port_min, cfg.rtp_port_max),
        acd,
        advertise: cfg
            .advertised_address
            .as_deref()
            .map(str::parse)
            .transpose()?,
    })
}

/// Starts a campaign's own engine. Errors: see [`engine_config`]; binding or connecting.
pub async fn spawn_engine(
    cfg: &CampaignConfig,
    store: &Store,
    timers: Timers,
) -> anyhow::Result<shell::EngineHandle> {
    let sc = engine_config(cfg, store, timers).await?;
    let (transport, trunk_addr) = (sc.transport, sc.trunks[0].addr);
    shell::spawn(sc)
        .await
        .with_context(|| format!("starting SIP engine towards {trunk_addr} ({transport})"))
}

/// Resolves every trunk of the campaign's group (and its outbound proxy) to an address.
/// Errors: a host that does not resolve (named).
async fn resolve_trunks(cfg: &CampaignConfig) -> anyhow::Result<Vec<TrunkRoute>> {
    let mut out = Vec::new();
    for t in cfg.trunk_group()? {
        let (addr, route) = match &t.outbound_proxy {
            Some(p) => {
                let proxy = t.outbound_proxy_target()?;
                let addr = proxy
                    .resolve()
                    .await
                    .with_context(|| format!("outbound proxy of trunk {}", t.name))?;
                (addr, Some(format!("<{}>", p.trim())))
            }
            None => (
                t.target
                    .resolve()
                    .await
                    .with_context(|| format!("trunk {}", t.name))?,
                None,
            ),
        };
        out.push(TrunkRoute {
            name: t.name.clone(),
            addr,
            host: t.target.host.clone(),
            port: t.target.port,
            transport: t.target.transport,
            weight: t.weight,
            route,
            auth: t.auth.map(|(username, password)| {
                Arc::new(crate::sip::digest::Credentials { username, password })
            }),
        });
    }
    Ok(out)
}
