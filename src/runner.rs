//! The campaign run: picks due leads, respects `cps` and `max_concurrent`, stores each attempt
//! before its INVITE, applies the retry rules to each outcome, and ends when every lead has a
//! final disposition.
//!
//! Decisions (which lead next, retry or final) are made here from the call events; the engine
//! only dials. A killed run leaves attempts in state `dialing`; the next run on the same
//! database marks them `interrupted` and dials those leads again, and never dials a lead that
//! already has a final disposition.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::oneshot;

use crate::acd::{AcdConfig, AgentAccount, Ha1, RegistrarConfig};
use crate::call::actions::{HumanAction, MachineAction, MediaPlan};
use crate::call::leg::CallSpec;
use crate::campaign::config::CampaignConfig;
use crate::campaign::core::{Campaign, Lead, MAX_BATCH, StoreBatch};
pub use crate::campaign::core::{PreviewRefusal, RunControl};
use crate::campaign::leads;
use crate::engine::core::{EngineStats, new_call_id};
use crate::engine::shell::{self, Command, ShellConfig};
use crate::engine::trunks::TrunkRoute;
use crate::events::{CallEvent, CallEventKind, CampaignEventKind, WallClock};
use crate::media::session::MediaSettings;
use crate::media::wav::read_8k_mono;
use crate::report::{self, Report};
use crate::sip::transaction::Timers;
use crate::store::{NewAttempt, Store};

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
        media_timeout_action: cfg.media_timeout_action,
        on_machine: cfg.on_machine,
        // With agents, humans go to the queue unless another action was chosen.
        on_human: match (cfg.on_human, cfg.acd.is_some()) {
            (HumanAction::Continue, true) => HumanAction::Queue,
            (h, _) => h,
        },
        voicemail: load(&cfg.voicemail_file).context("voicemail_file")?,
        prompt: load(&cfg.prompt_file).context("prompt_file")?,
        voicemail_wait: Duration::from_secs(cfg.voicemail_wait),
        ivr: cfg.ivr.clone().map(Arc::new),
        recording: cfg.recording,
        ivr_prompts: cfg
            .ivr
            .iter()
            .flat_map(|app| app.prompts())
            .map(|p| {
                let samples = read_8k_mono(&p).with_context(|| format!("ivr: {}", p.display()))?;
                Ok((p, Arc::new(samples)))
            })
            .collect::<anyhow::Result<_>>()?,
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
    let hold_music = a
        .hold_music_file
        .as_ref()
        .map(|p| read_8k_mono(p).map(Arc::new))
        .transpose()
        .context("acd.hold_music_file")?;
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
        hold_music,
    }))
}

/// How long a finished campaign waits for agents' mandatory dispositions of its last calls.
pub const DISPOSITION_GRACE: Duration = Duration::from_secs(120);

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
    let import = read_call_list(cfg, leads_file)?;
    run_with(cfg, import, store, timers, progress, RunHooks::default()).await
}

/// The do-not-call list as a campaign matches it: each national number (no `+`) also in its
/// E.164 form for the campaign's `default_region`, as the campaign's leads are written — so
/// `4155550601` on the list stops the lead `+14155550601` of a campaign in `US`.
pub fn dnc_in_region(
    dnc: std::collections::HashSet<String>,
    cfg: &CampaignConfig,
) -> std::collections::HashSet<String> {
    let Some(region) = cfg
        .default_region
        .as_deref()
        .and_then(|r| r.parse::<phonenumber::country::Id>().ok())
    else {
        return dnc;
    };
    let national: Vec<String> = dnc
        .iter()
        .filter(|n| !n.starts_with('+'))
        .filter_map(|n| leads::normalise(n, Some(region)).ok())
        .collect();
    let mut dnc = dnc;
    dnc.extend(national);
    dnc
}

/// Reads a call list file (CSV) with the campaign's `default_region` for national numbers.
/// Errors: bad settings, an unreadable file or header (rejected rows are in the import).
pub fn read_call_list(cfg: &CampaignConfig, leads_file: &Path) -> anyhow::Result<leads::Import> {
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
    if import.leads.is_empty() && import.errors.is_empty() {
        tracing::warn!(
            file = %leads_file.display(),
            "the call list has a header and no rows: no new leads to dial"
        );
    }
    Ok(import)
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
    pub limits: crate::campaign::rate::SharedLimits,
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

pub use crate::store::default_node;

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

/// How long a finished run waits for its webhook backlog before dead-lettering the rest.
pub const WEBHOOK_GRACE: Duration = Duration::from_secs(10);

/// Runs a campaign over leads already read (`import`: added to the campaign's leads, numbers
/// already there left alone) until every lead is final — or, with `control`, until told to
/// stop; `Pause` holds new calls. Without `control`, Ctrl-C stops it.
///
/// The decisions are [`Campaign`]'s (sans-IO); this function sets up the I/O around it (the
/// store, the engine, webhooks and the live stream of `hooks`) and [`RunLoop`] carries out what it returns.
/// Errors: bad settings, database or socket failures.
pub async fn run_with(
    cfg: &CampaignConfig,
    import: leads::Import,
    store: &Store,
    timers: Timers,
    progress: bool,
    mut hooks: RunHooks,
) -> anyhow::Result<RunOutcome> {
    cfg.validate()?;
    for e in &import.errors {
        tracing::warn!(line = e.line, reason = %e.reason, "call list row rejected");
    }
    let node = hooks.node.take().unwrap_or_else(default_node);
    let opened = open_campaign(cfg, import, store, &node, progress).await?;
    let campaign_id = opened.campaign_id;
    let resources_before = Resources::now();
    let shared = hooks.shared_engine.take();
    let engine = match &shared {
        Some(s) => s.attach(campaign_id, cfg.priority),
        None => spawn_engine(cfg, store, timers).await?,
    };
    if let Some(tx) = hooks.engine.take() {
        let _ = tx.send(engine.commands.clone());
    }
    let fanout = crate::notify::Fanout {
        live: hooks.live.clone(),
        webhook: cfg
            .webhook
            .as_ref()
            .map(|w| crate::notify::webhook::WebhookQueue::start(w, campaign_id, store.clone())),
        campaign_id,
        campaign: cfg.name.clone(),
        metrics: crate::notify::metrics::CallEventMetrics::new(&cfg.name),
    };
    crate::notify::metrics::init_campaign(&cfg.name);
    if let Some(w) = &fanout.webhook {
        crate::notify::metrics::watch_webhook(&cfg.name, w.stats.clone());
    }
    let clock = WallClock::anchored(Instant::now(), chrono::Utc::now());
    let (core, total, dnc_len) =
        load_core(cfg, store, campaign_id, clock, hooks.limits.clone()).await?;
    let spec = call_template(cfg, &engine)?;
    let mut run = RunLoop {
        cfg,
        store,
        clock,
        campaign_id,
        lease: opened.lease,
        ttl: lease_ttl(),
        engine,
        shared,
        fanout,
        control: hooks.control.take(),
        preview_rx: hooks.preview.take(),
        replies: HashMap::new(),
        next_token: 0,
        gauge: hooks.in_flight.take(),
        shutdown_rx: None,
        ctrl_c: Box::pin(tokio::signal::ctrl_c()),
        spec,
        progress: Progress::new(progress, total, core.counters().final_leads),
        chores: Chores::new(dnc_len),
        tokens: shell::os_tokens(),
        inbound: HashMap::new(),
        inbound_live: Default::default(),
        mails: Vec::new(),
        call_facts: HashMap::new(),
    };
    let mut core = core;
    // Call recordings past their retention go at start and every hour of the run.
    let sweeper = (cfg.recording_retention_days > 0).then(|| {
        let (dir, days) = (recordings_dir(cfg), cfg.recording_retention_days);
        tokio::spawn(async move {
            loop {
                let d = dir.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    crate::media::retention::sweep(&d, days, std::time::SystemTime::now())
                })
                .await;
                tokio::time::sleep(crate::media::retention::SWEEP_EVERY).await;
            }
        })
    });
    let result = run.run(&mut core).await;
    if let Some(s) = sweeper {
        s.abort();
    }
    result?;
    let (engine_stats, peak_rss_kib, resources_after) = run.finish(&mut core).await?;
    let stopped = core.stopping();
    if !stopped {
        // Completed when every lead is final — other nodes may still be calling theirs.
        let (total, finals) = store.lead_counts(campaign_id).await?;
        if finals == total || core.schedule_ended() {
            // Every lead final, or the campaign's stop_at passed (its leads stay as they are).
            store.complete_campaign(campaign_id).await?;
        } else {
            tracing::info!(
                pending = total - finals,
                taken_elsewhere = core.counters().taken_elsewhere,
                "this node is done; other nodes are still calling the campaign's other leads"
            );
        }
    }
    store.release_lease(&run.lease).await?;
    let report = report::build(store, campaign_id, &cfg.name).await?;
    Ok(RunOutcome {
        report,
        engine: engine_stats,
        rejected_rows: opened.rejected_rows,
        recovered: opened.recovered,
        stopped,
        resources_before,
        resources_after,
        peak_rss_kib,
        congestion_backoffs: core.congestion_backoffs(),
        trunk_failures: core.counters().trunk_failures,
        trunk_pauses: core.trunk_pauses(Instant::now()),
        pacing: core.pacing().map(|(abandon, ratio)| {
            let mode = cfg.endpoint.as_ref().map_or("", |e| e.kind.as_str());
            (mode.to_string(), abandon, ratio)
        }),
    })
}

/// A campaign taken for this run: its id and lease, the call list imported.
struct Opened {
    campaign_id: i64,
    lease: crate::store::RunLease,
    rejected_rows: Vec<leads::RowError>,
    recovered: u64,
}

/// Takes the campaign's lease (creating the campaign if new), then stores its settings and
/// imports the call list, and recovers attempts a dead owner left. One owner per campaign run
/// (per node), checked, not assumed: the lease comes before anything is written to an
/// existing campaign. Errors: the lease is held by a live owner; database failures.
async fn open_campaign(
    cfg: &CampaignConfig,
    import: leads::Import,
    store: &Store,
    node: &str,
    progress: bool,
) -> anyhow::Result<Opened> {
    let settings = serde_json::to_string(cfg)?;
    let existing = store.campaign_id(&cfg.name).await?;
    let campaign_id = match existing {
        Some(id) => id,
        None => store.upsert_campaign(&cfg.name, &settings).await?,
    };
    let lease = acquire_lease(store, campaign_id, node, lease_ttl(), &cfg.name, progress).await?;
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
    let recovered = store.recover_interrupted(campaign_id, node).await?;
    tracing::info!(
        campaign = %cfg.name,
        imported = counts.inserted,
        already_present = counts.already_present,
        rejected = rejected_rows.len(),
        recovered,
        "call list loaded"
    );
    if let Ok((Some(t), _)) = cfg.schedule()
        && t > chrono::Utc::now()
    {
        tracing::info!(campaign = %cfg.name, start_at = %t, "scheduled: no call before start_at");
    }
    Ok(Opened {
        campaign_id,
        lease,
        rejected_rows,
        recovered,
    })
}

/// The campaign core over the leads still to dial, the number of leads in all, and the size of
/// the do-not-call list it was given.
/// Errors: database failures, a calling window that does not parse.
async fn load_core(
    cfg: &CampaignConfig,
    store: &Store,
    campaign_id: i64,
    clock: WallClock,
    limits: crate::campaign::rate::SharedLimits,
) -> anyhow::Result<(Campaign, u64, i64)> {
    let tz_attribute = cfg
        .active_period
        .as_ref()
        .and_then(|p| p.lead_time_zone_attribute.as_deref());
    let mut bad_zones = 0u64;
    let pending: Vec<Lead> = store
        .pending_leads(campaign_id, tz_attribute)
        .await?
        .into_iter()
        .map(|p| Lead {
            id: p.id,
            time_zone: p.time_zone.as_deref().and_then(|z| {
                let t = crate::campaign::window::zone(z).ok();
                bad_zones += u64::from(t.is_none());
                t
            }),
            number: p.number,
            attempts: p.attempts,
            last_attempt_no: p.last_attempt_no,
            next_attempt_at: p.next_attempt_at,
        })
        .collect();
    if bad_zones > 0 {
        tracing::warn!(
            leads = bad_zones,
            "leads with an unknown time zone are called in the campaign's"
        );
    }
    let (total, already_final) = store.lead_counts(campaign_id).await?;
    let dnc = dnc_in_region(store.dnc_set().await?, cfg);
    let dnc_len = dnc.len() as i64;
    let core = Campaign::new(
        cfg.clone(),
        Instant::now(),
        clock,
        pending,
        already_final,
        dnc,
        limits,
    )?;
    Ok((core, total, dnc_len))
}

/// Every call's settings but the number (the engine picks the trunks and fills hops and To).
/// Errors: a WAV of the media plan that cannot be read.
fn call_template(cfg: &CampaignConfig, engine: &shell::EngineHandle) -> anyhow::Result<CallSpec> {
    let local_ip = engine.local_addr.ip().to_string();
    Ok(CallSpec {
        number: String::new(),
        hops: Vec::new(),
        failover_timeout: cfg.failover_timeout(),
        to_uri: String::new(),
        caller_id: cfg.caller_id.clone(),
        caller_name: cfg.caller_name.clone(),
        from_host: cfg.from_host.clone().unwrap_or_else(|| local_ip.clone()),
        p_asserted_identity: cfg.p_asserted_identity.clone(),
        ring_timeout: cfg.ring_timeout(),
        hold_time: cfg.hold_time(),
        rtp_port: 0,
        media_ip: local_ip,
        media: media_plan(cfg)?,
        privacy: cfg.privacy.clone(),
        session_expires: (cfg.session_expires > 0).then_some(cfg.session_expires),
    })
}

/// The progress display: a bar on a terminal, a line every 5 s otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    enabled: bool,
    total: u64,
    last_plain: Instant,
}

impl Progress {
    fn new(enabled: bool, total: u64, already_final: u64) -> Self {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} leads final  {msg}")
                    .expect("static template"),
            );
            b.set_position(already_final);
            b
        });
        Self {
            bar,
            enabled,
            total,
            last_plain: Instant::now(),
        }
    }

    fn show(&mut self, name: &str, core: &Campaign) {
        let c = core.counters();
        let msg = format!(
            "dialled {} | in progress {} | answered {} | not answered {}",
            c.dialled,
            core.in_flight(),
            c.answered,
            c.failed
        );
        if let Some(b) = &self.bar {
            b.set_position(c.final_leads);
            b.set_message(msg);
        } else if self.enabled && self.last_plain.elapsed() >= Duration::from_secs(5) {
            self.last_plain = Instant::now();
            eprintln!(
                "[{name}] {}/{}  leads final  {msg}",
                c.final_leads, self.total
            );
        }
    }
}

/// The run loop's periodic chores and their last times.
struct Chores {
    lease_renewed: Instant,
    rss_sampled: Instant,
    peak_rss_kib: u64,
    dnc_checked: Instant,
    /// The do-not-call list's size when last read.
    dnc_len: i64,
    pacing_shown: Instant,
    /// With mandatory dispositions: how long the end waits for agents' last ones.
    dispositions_until: Option<Instant>,
}

impl Chores {
    fn new(dnc_len: i64) -> Self {
        let now = Instant::now();
        Self {
            lease_renewed: now,
            rss_sampled: now,
            peak_rss_kib: 0,
            dnc_checked: now,
            dnc_len,
            pacing_shown: now.checked_sub(Duration::from_secs(1)).unwrap_or(now),
            dispositions_until: None,
        }
    }
}

type PreviewReply = oneshot::Sender<Result<PreviewLead, PreviewRefusal>>;

/// The I/O side of one run: carries out what [`Campaign`] returns (stores attempts and
/// events, starts calls, answers preview requests) and feeds it what happens.
struct RunLoop<'a> {
    cfg: &'a CampaignConfig,
    store: &'a Store,
    clock: WallClock,
    campaign_id: i64,
    lease: crate::store::RunLease,
    ttl: Duration,
    engine: shell::EngineHandle,
    shared: Option<Arc<crate::engine::shared::SharedEngine>>,
    fanout: crate::notify::Fanout,
    control: Option<tokio::sync::watch::Receiver<RunControl>>,
    preview_rx: Option<tokio::sync::mpsc::UnboundedReceiver<PreviewRequest>>,
    replies: HashMap<u64, PreviewReply>,
    next_token: u64,
    gauge: Option<Arc<std::sync::atomic::AtomicUsize>>,
    shutdown_rx: Option<oneshot::Receiver<EngineStats>>,
    ctrl_c: std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>>,
    spec: CallSpec,
    progress: Progress,
    chores: Chores,
    /// Call-IDs of the attempts.
    tokens: crate::sip::message::Tokens,
    /// Inbound calls: their provisional attempt ids (from the engine) → the stored ones.
    inbound: HashMap<i64, crate::events::AttemptRef>,
    /// Inbound calls not ended yet (provisional ids): the run waits for them to end.
    inbound_live: std::collections::HashSet<i64>,
    /// IVR recordings being emailed (`[ivr.email]`): awaited at the end of the run.
    mails: Vec<tokio::task::JoinHandle<()>>,
    /// Calls in progress: when answered and the AMD result, for their `terminated` webhook.
    call_facts: HashMap<String, (Option<Instant>, Option<String>)>,
}

impl RunLoop<'_> {
    /// Dials until every lead is final or the run is stopped.
    async fn run(&mut self, core: &mut Campaign) -> anyhow::Result<()> {
        if core.waiting_for_agents() && self.progress.enabled {
            eprintln!(
                "[{}] waiting for an agent to become available before dialling…",
                self.cfg.name
            );
        }
        loop {
            let now = Instant::now();
            self.refresh_dnc(core, now).await?;
            self.take_inputs(core, now);
            self.dial(core, now).await?;
            if core.is_done()
                && self.inbound_live.is_empty()
                && self.dispositions_settled(core).await
            {
                return Ok(());
            }
            self.chores(core).await?;
            self.wait(core).await?;
            self.store_due(core).await?;
            if let Some(g) = &self.gauge {
                g.store(core.in_flight(), std::sync::atomic::Ordering::Relaxed);
            }
            self.progress.show(&self.cfg.name, core);
        }
    }

    /// Re-reads the do-not-call list when it grew (looked at every [`DNC_REFRESH`]).
    async fn refresh_dnc(&mut self, core: &mut Campaign, now: Instant) -> anyhow::Result<()> {
        if now < self.chores.dnc_checked + DNC_REFRESH {
            return Ok(());
        }
        self.chores.dnc_checked = now;
        let n = self.store.dnc_count().await?;
        if n != self.chores.dnc_len {
            core.set_dnc(dnc_in_region(self.store.dnc_set().await?, self.cfg));
            self.chores.dnc_len = n;
        }
        Ok(())
    }

    /// Agent events, the operator's control, and trunk health changes into the core.
    fn take_inputs(&mut self, core: &mut Campaign, now: Instant) {
        while let Ok(ev) = self.engine.agent_events.try_recv() {
            core.handle_agent_event(now, ev);
        }
        let ctl = self
            .control
            .as_ref()
            .map_or(RunControl::Run, |c| *c.borrow());
        if core.handle_control(ctl) {
            self.shutdown();
        }
        // The health is read only when the engine published a change.
        if self.engine.trunks.has_changed().unwrap_or(false) {
            let health = self.engine.trunks.borrow_and_update().clone();
            let name = &self.cfg.name;
            match core.handle_trunk_health(now, &health) {
                Some(CampaignEventKind::AutoPaused { trunks, .. }) => {
                    let names: Vec<String> = trunks
                        .iter()
                        .map(|t| format!("{} ({})", t.trunk, t.reason))
                        .collect();
                    tracing::warn!(trunks = %names.join(", "), "no trunk is up: campaign auto-paused until one answers");
                    if self.progress.enabled {
                        eprintln!(
                            "[{name}] no trunk is up ({}): paused until one answers",
                            names.join(", ")
                        );
                    }
                }
                Some(_) => {
                    tracing::info!("a trunk answers again: campaign resumed");
                    if self.progress.enabled {
                        eprintln!("[{name}] a trunk answers again: dialling resumed");
                    }
                }
                None => {}
            }
        }
    }

    /// One dial pass: leads made final without a call are stored, then the attempts (one
    /// transaction, before any INVITE), then the calls start.
    async fn dial(&mut self, core: &mut Campaign, now: Instant) -> anyhow::Result<()> {
        let (shared, id, priority) = (&self.shared, self.campaign_id, self.cfg.priority);
        let pass = core.poll_dial(now, || {
            shared.as_ref().map_or(0, |s| s.demand_ahead(id, priority))
        });
        while let Some((token, refusal)) = core.poll_preview_refusal() {
            if let Some(r) = self.replies.remove(&token) {
                let _ = r.send(Err(refusal));
            }
        }
        if !pass.not_dialled.is_empty() {
            self.store
                .record(&self.clock, &[], &pass.not_dialled)
                .await?;
        }
        if pass.picks.is_empty() {
            return Ok(());
        }
        let call_ids: Vec<String> = pass
            .picks
            .iter()
            .map(|_| new_call_id(&mut self.tokens))
            .collect();
        let rows: Vec<NewAttempt<'_>> = pass
            .picks
            .iter()
            .zip(&call_ids)
            .map(|(p, call_id)| NewAttempt {
                lead_id: p.lead_id,
                attempt_no: p.attempt_no,
                call_id,
                started_at: self.clock.to_utc(p.started),
            })
            .collect();
        let ids = self.store.insert_attempts(&self.lease, &rows).await?;
        drop(rows);
        for placed in core.placed(pass.picks, ids) {
            let call_id = call_ids[placed.index].clone();
            let attempt = placed.attempt;
            let mut spec = self.spec.clone();
            spec.number = placed.number.clone();
            if placed.callback {
                // The callback the person asked for: to the agents, not the IVR again.
                spec.media.on_human = crate::call::actions::HumanAction::Queue;
                spec.media.ivr = None;
            }
            self.engine
                .commands
                .send(Command::StartCall {
                    call_id: call_id.clone(),
                    attempt: attempt.clone(),
                    spec: Box::new(spec),
                    preview_agent: placed.preview.as_ref().map(|(_, a)| a.clone()),
                    priority: self.cfg.priority,
                })
                .map_err(|_| anyhow::anyhow!("SIP engine stopped unexpectedly"))?;
            if let Some(r) = placed.preview.and_then(|(t, _)| self.replies.remove(&t)) {
                let _ = r.send(Ok(PreviewLead {
                    lead_id: attempt.lead_id,
                    number: placed.number,
                    call_id,
                    attempt_no: attempt.attempt_no,
                }));
            }
        }
        Ok(())
    }

    /// Every lead is final; with mandatory dispositions, the agents may still owe theirs for
    /// the last calls: true once none is owed (or after [`DISPOSITION_GRACE`]).
    async fn dispositions_settled(&mut self, core: &mut Campaign) -> bool {
        let mandatory = self
            .cfg
            .acd
            .as_ref()
            .is_some_and(|a| a.mandatory_disposition);
        if self.shutdown_rx.is_some() || !mandatory {
            return true;
        }
        let owed = self.dispositions_owed(core).await;
        if owed == 0 {
            return true;
        }
        let until = *self.chores.dispositions_until.get_or_insert_with(|| {
            if self.progress.enabled {
                eprintln!(
                    "[{}] every lead is final; waiting for {owed} agent disposition(s)…",
                    self.cfg.name
                );
            }
            Instant::now() + DISPOSITION_GRACE
        });
        if Instant::now() >= until {
            tracing::warn!(owed, "agents did not set their last calls' dispositions");
            return true;
        }
        false
    }

    /// Agents in wrap-up waiting to set a mandatory disposition. The engine's call events keep
    /// flowing into the core meanwhile: their channel is bounded, and an engine waiting for
    /// room in it could not answer.
    async fn dispositions_owed(&mut self, core: &mut Campaign) -> usize {
        let (tx, mut rx) = oneshot::channel();
        if self.engine.commands.send(Command::Agents(tx)).is_err() {
            return 0;
        }
        loop {
            tokio::select! {
                r = &mut rx => {
                    return r.map_or(0, |v| v.iter().filter(|a| a.awaiting_disposition).count());
                }
                ev = self.engine.events.recv() => match ev {
                    Some(ev) => core.handle_call_events(Instant::now(), [ev]),
                    None => return 0,
                },
            }
        }
    }

    /// Renews the lease, samples the RSS, publishes the pacing figures.
    /// Errors: the lease was lost to another process; database failures.
    async fn chores(&mut self, core: &Campaign) -> anyhow::Result<()> {
        let c = &mut self.chores;
        if c.lease_renewed.elapsed() >= self.ttl / 3 {
            c.lease_renewed = Instant::now();
            if !self.store.renew_lease(&self.lease, self.ttl).await? {
                anyhow::bail!(
                    "campaign {}: our run lease expired and another process took the campaign \
                     over; stopping without dialling more",
                    self.cfg.name
                );
            }
        }
        if c.rss_sampled.elapsed() >= Duration::from_secs(1) {
            c.rss_sampled = Instant::now();
            c.peak_rss_kib = c.peak_rss_kib.max(Resources::rss_kib());
        }
        if let Some((abandon, ratio)) = core.pacing()
            && c.pacing_shown.elapsed() >= Duration::from_millis(500)
        {
            c.pacing_shown = Instant::now();
            crate::notify::metrics::record_pacing(&self.cfg.name, abandon, ratio);
        }
        Ok(())
    }

    /// Waits for an event, the core's timeout, a preview request, a control change or
    /// Ctrl-C. While a batch gathers, call events wait in their channel until it is due.
    async fn wait(&mut self, core: &mut Campaign) -> anyhow::Result<()> {
        let wake = core.poll_timeout(Instant::now());
        let gathering = core.gathering();
        tokio::select! {
            ev = self.engine.events.recv(), if !gathering => {
                let Some(ev) = ev else { anyhow::bail!("SIP engine stopped unexpectedly") };
                let mut evs = vec![ev];
                while evs.len() < MAX_BATCH {
                    let Ok(ev) = self.engine.events.try_recv() else { break };
                    evs.push(ev);
                }
                core.handle_call_events(Instant::now(), evs);
            }
            _ = tokio::time::sleep_until(wake.into()) => {}
            req = async {
                match self.preview_rx.as_mut() {
                    Some(r) => r.recv().await,
                    None => std::future::pending().await,
                }
            } => match req {
                Some(r) => {
                    self.next_token += 1;
                    self.replies.insert(self.next_token, r.reply);
                    core.handle_preview(self.next_token, r.agent);
                }
                None => self.preview_rx = None,
            },
            r = async {
                match self.control.as_mut() {
                    Some(c) => c.changed().await,
                    None => std::future::pending().await,
                }
            } => if r.is_err() {
                // The service dropped its handle: nobody can resume us, so stop.
                self.control = None;
                if core.handle_control(RunControl::Stop) {
                    self.shutdown();
                }
            },
            _ = &mut self.ctrl_c, if self.control.is_none() => {
                if core.stopping() {
                    // Second Ctrl-C: leave now. Attempts still in progress stay `dialing` and
                    // are marked `interrupted` by the next run.
                    anyhow::bail!("stopped at once by a second Ctrl-C; run again to resume");
                }
                eprintln!("Stopping: hanging up {} call(s) in progress (Ctrl-C again to quit at once); run again to resume.", core.in_flight());
                self.ctrl_c = Box::pin(tokio::signal::ctrl_c());
                if core.handle_control(RunControl::Stop) {
                    self.shutdown();
                }
            }
        }
        Ok(())
    }

    /// Stores (and publishes) what the core has due: call events with their lead decisions
    /// in one transaction, agent and campaign events.
    async fn store_due(&mut self, core: &mut Campaign) -> anyhow::Result<()> {
        let now = Instant::now();
        if core.flush_due(now) {
            let mut evs = Vec::new();
            while let Ok(ev) = self.engine.events.try_recv() {
                evs.push(ev);
            }
            core.handle_call_events(now, evs);
        }
        if let Some(batch) = core.poll_store(now) {
            self.store_batch(core, &batch).await?;
        }
        Ok(())
    }

    /// The events of inbound calls carry a provisional attempt (a negative id) from the
    /// engine: at `accepting` the call is stored (its lead — the caller's, or a new final one
    /// — and an inbound attempt) and every later event of it gets that attempt. An event of
    /// an inbound call whose `accepting` could not be stored is dropped (logged).
    async fn map_inbound(&mut self, events: &[CallEvent]) -> anyhow::Result<Vec<CallEvent>> {
        let mut out = Vec::with_capacity(events.len());
        for ev in events {
            let provisional = ev.attempt.attempt_id;
            if provisional >= 0 {
                out.push(ev.clone());
                continue;
            }
            if let CallEventKind::Accepting { from, .. } = &ev.kind {
                let (lead_id, attempt_id, _) = self
                    .store
                    .insert_inbound_attempt(
                        self.campaign_id,
                        from,
                        &ev.call_id,
                        self.clock.to_utc(ev.at),
                        Some(&self.lease),
                    )
                    .await?;
                self.inbound.insert(
                    provisional,
                    crate::events::AttemptRef {
                        attempt_id,
                        lead_id,
                        attempt_no: 0,
                    },
                );
                self.inbound_live.insert(provisional);
            }
            let Some(attempt) = self.inbound.get(&provisional).cloned() else {
                tracing::warn!(call_id = %ev.call_id, event = ev.kind.name(), "inbound call event without its stored call: dropped");
                continue;
            };
            if matches!(ev.kind, CallEventKind::Terminated { .. }) {
                self.inbound_live.remove(&provisional);
            }
            let mut ev = ev.clone();
            ev.attempt = attempt;
            out.push(ev);
        }
        Ok(out)
    }

    /// Follows each call's answer and AMD result over the batches; for each `terminated` of
    /// `events`: its talk time, AMD result and whether its lead is final (`updates` of the
    /// same batch), by Call-ID, for the webhook and the stream.
    fn final_facts(
        &mut self,
        events: &[CallEvent],
        updates: &[crate::campaign::core::LeadUpdate],
    ) -> HashMap<String, crate::notify::FinalFacts> {
        use crate::campaign::core::LeadUpdate;
        let mut out = HashMap::new();
        for ev in events {
            match &ev.kind {
                CallEventKind::Answered { .. } => {
                    self.call_facts.entry(ev.call_id.clone()).or_default().0 = Some(ev.at);
                }
                CallEventKind::Amd { result, .. } => {
                    self.call_facts.entry(ev.call_id.clone()).or_default().1 =
                        serde_json::to_value(result)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string));
                }
                CallEventKind::Terminated { .. } => {
                    let (answered, amd) = self.call_facts.remove(&ev.call_id).unwrap_or_default();
                    let lead_final = updates.iter().find_map(|u| match u {
                        LeadUpdate::Final { lead_id, .. } if *lead_id == ev.attempt.lead_id => {
                            Some(true)
                        }
                        LeadUpdate::Retry { lead_id, .. } if *lead_id == ev.attempt.lead_id => {
                            Some(false)
                        }
                        _ => None,
                    });
                    out.insert(
                        ev.call_id.clone(),
                        crate::notify::FinalFacts {
                            duration_ms: answered
                                .map(|a| ev.at.saturating_duration_since(a).as_millis() as u64),
                            amd_result: amd,
                            lead_final,
                        },
                    );
                }
                _ => {}
            }
        }
        out
    }

    /// Emails each IVR recording of `events` (`[ivr.email]`), each in a task of its own.
    async fn email_recordings(
        &mut self,
        core: &Campaign,
        events: &[CallEvent],
        extras: &crate::notify::Extras,
    ) {
        let Some(cfg) = self.cfg.ivr.as_ref().and_then(|i| i.email.clone()) else {
            return;
        };
        for ev in events {
            let CallEventKind::IvrRecorded {
                node,
                duration_ms,
                file: Some(file),
                ..
            } = &ev.kind
            else {
                continue;
            };
            // Read for the webhook already, when there is one.
            let attributes = match extras.recordings.get(&ev.call_id) {
                Some((a, _)) => a.clone(),
                None => lead_attributes(self.store, ev.attempt.lead_id).await,
            };
            let mail = crate::notify::email::RecordingMail {
                number: core.number(ev.attempt.lead_id).unwrap_or("").to_string(),
                node: node.clone(),
                duration_ms: *duration_ms,
                attributes,
                file: file.into(),
            };
            let cfg = cfg.clone();
            let call_id = ev.call_id.clone();
            self.mails.retain(|t| !t.is_finished());
            self.mails.push(tokio::spawn(async move {
                match crate::notify::email::send(&cfg, &mail).await {
                    Ok(()) => tracing::info!(%call_id, to = ?cfg.to, "recording emailed"),
                    Err(e) => {
                        tracing::warn!(%call_id, error = %format!("{e:#}"), "recording not emailed")
                    }
                }
            }));
        }
    }

    async fn store_batch(&mut self, core: &Campaign, b: &StoreBatch) -> anyhow::Result<()> {
        let mapped;
        let call_events: &[CallEvent] = if b.call_events.iter().any(|e| e.attempt.attempt_id < 0) {
            mapped = self.map_inbound(&b.call_events).await?;
            &mapped
        } else {
            &b.call_events
        };
        if !call_events.is_empty() || !b.lead_updates.is_empty() {
            self.store
                .record(&self.clock, call_events, &b.lead_updates)
                .await?;
        }
        if !b.agent_events.is_empty() {
            self.store
                .record_agent_events(&self.clock, &b.agent_events)
                .await?;
        }
        if !b.dnc_numbers.is_empty() {
            let added = self.store.import_dnc(&b.dnc_numbers, "ivr").await?;
            tracing::info!(added, "do-not-call list: numbers added by IVR choice");
        }
        if !b.campaign_events.is_empty() {
            self.store
                .record_campaign_events(&self.clock, self.campaign_id, &b.campaign_events)
                .await?;
            self.fanout
                .publish_campaign(&self.clock, &b.campaign_events);
        }
        let extras = crate::notify::Extras {
            recordings: recording_extras(self.store, &self.fanout, call_events).await,
            finals: self.final_facts(call_events, &b.lead_updates),
        };
        self.email_recordings(core, call_events, &extras).await;
        self.fanout.publish(
            &self.clock,
            call_events,
            &b.agent_events,
            core.agents(),
            |lead| core.number(lead),
            &extras,
        );
        Ok(())
    }

    /// Asks the engine to hang up every call and stop (once).
    fn shutdown(&mut self) {
        if self.shutdown_rx.is_none() {
            self.shutdown_rx = Some(request_shutdown(&self.engine.commands));
        }
    }

    /// After the loop: stops the engine and stores what it still sends (an agent's
    /// disposition can be the last thing that happens, media statistics follow `terminated`).
    /// Returns the engine's counters, the peak RSS (KiB) and the resources after.
    async fn finish(
        &mut self,
        core: &mut Campaign,
    ) -> anyhow::Result<(EngineStats, u64, Resources)> {
        if let Some(b) = &self.progress.bar {
            b.finish_and_clear();
        }
        tracing::debug!(campaign = %self.cfg.name, stopping = core.stopping(), "run loop ended; waiting for the engine");
        // Calls cut short by a stop end with the engine: their slots go back now.
        core.release_in_flight();
        self.shutdown();
        // What the engine still sends until its task ends (media statistics follow
        // `terminated`), with the events not applied yet: stored without lead decisions.
        let mut events = Vec::new();
        while let Some(ev) = self.engine.events.recv().await {
            events.push(ev);
        }
        while let Some(ev) = self.engine.agent_events.recv().await {
            core.handle_agent_event(Instant::now(), ev);
        }
        let mut tail = core.take_unapplied();
        tail.call_events.extend(events);
        self.store_batch(core, &tail).await?;
        if let Some(w) = self.fanout.webhook.take() {
            w.finish(WEBHOOK_GRACE).await;
        }
        // Emails under way get the webhook's grace to finish.
        let mails = std::mem::take(&mut self.mails);
        if tokio::time::timeout(WEBHOOK_GRACE, futures_util::future::join_all(mails))
            .await
            .is_err()
        {
            tracing::warn!("recordings still being emailed at the end of the run: abandoned");
        }
        tracing::debug!(campaign = %self.cfg.name, "engine events drained");
        let rx = self.shutdown_rx.take().expect("shutdown requested above");
        let engine_stats = rx.await.unwrap_or_default();
        let _ = (&mut self.engine.task).await;
        // Media tasks send their last statistics and then return: let them finish.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let after = Resources::now();
        Ok((
            engine_stats,
            self.chores.peak_rss_kib.max(after.rss_kib),
            after,
        ))
    }
}

/// Asks the engine to hang up every call and stop; the receiver gets its counters.
fn request_shutdown(
    commands: &tokio::sync::mpsc::UnboundedSender<Command>,
) -> oneshot::Receiver<EngineStats> {
    let (tx, rx) = oneshot::channel();
    let _ = commands.send(Command::Shutdown(tx));
    rx
}

/// How often a run looks whether the do-not-call list grew.
const DNC_REFRESH: Duration = Duration::from_secs(5);

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
    let trunk_ips: Vec<std::net::IpAddr> = trunks.iter().map(|t| t.addr.ip()).collect();
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
        inbound: cfg
            .inbound
            .as_ref()
            .map(|i| crate::engine::core::InboundRoute {
                numbers: i
                    .numbers
                    .iter()
                    .map(|n| crate::engine::core::digits_of(n))
                    .collect(),
                allow: match (i.allow_from.is_empty(), &i.auth_username) {
                    (false, _) => i.allow_from.iter().filter_map(|a| a.parse().ok()).collect(),
                    // Authenticated callers may come from anywhere.
                    (true, Some(_)) => Vec::new(),
                    (true, None) => trunk_ips.clone(),
                },
                auth: i
                    .auth_username
                    .as_ref()
                    .zip(i.auth_password.as_ref())
                    .map(|(u, p)| {
                        let realm = crate::campaign::config::INBOUND_REALM;
                        crate::engine::core::InboundAuth {
                            username: u.clone(),
                            realm: realm.to_string(),
                            ha1: crate::acd::digest_auth::Ha1::from_password(u, realm, p),
                        }
                    }),
            }),
        recordings_dir: recordings_dir(cfg),
    })
}

/// Where a campaign's recordings go: its `recordings_dir`, or the system's temporary
/// directory's `outdial-recordings/<campaign>`.
pub fn recordings_dir(cfg: &CampaignConfig) -> std::path::PathBuf {
    cfg.recordings_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir()
            .join("outdial-recordings")
            .join(&cfg.name)
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
                let addr = resolve(&proxy)
                    .await
                    .with_context(|| format!("outbound proxy of trunk {}", t.name))?;
                (addr, Some(format!("<{}>", p.trim())))
            }
            None => (
                resolve(&t.target)
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

/// Resolves a trunk's host to a socket address (DNS A/AAAA through the system resolver).
/// Errors: the name does not resolve or has no address.
async fn resolve(t: &crate::campaign::config::TrunkTarget) -> anyhow::Result<std::net::SocketAddr> {
    let host = t.host.trim_matches(['[', ']']);
    let mut it = tokio::net::lookup_host((host, t.port))
        .await
        .with_context(|| format!("resolving trunk host {}", t.host))?;
    it.next()
        .with_context(|| format!("trunk host {} has no address", t.host))
}

/// For each `ivr_recorded` event of the batch: the lead's attributes, and — when a
/// webhook is set — the recording read from its file (base64), by Call-ID. Nothing when
/// no event goes anywhere; a file that cannot be read is logged and left out.
async fn recording_extras(
    store: &Store,
    fanout: &crate::notify::Fanout,
    events: &[CallEvent],
) -> HashMap<String, crate::notify::RecordingExtras> {
    use base64::Engine as _;
    let mut out = HashMap::new();
    if fanout.is_idle() {
        return out;
    }
    for ev in events {
        let CallEventKind::IvrRecorded { file, .. } = &ev.kind else {
            continue;
        };
        let attributes = lead_attributes(store, ev.attempt.lead_id).await;
        let recording = match (file, &fanout.webhook) {
            (Some(f), Some(_)) => match tokio::fs::read(f).await {
                Ok(bytes) => Some(Arc::new(crate::notify::Recording {
                    content_type: "audio/wav",
                    base64: base64::engine::general_purpose::STANDARD.encode(bytes),
                })),
                Err(e) => {
                    tracing::warn!(file = %f, error = %e, "recording not readable: webhook without it");
                    None
                }
            },
            _ => None,
        };
        out.insert(ev.call_id.clone(), (attributes, recording));
    }
    out
}

/// Lead `lead_id`'s call-list columns as a JSON object (`{}` when unknown or unreadable: an
/// event goes out without them rather than not at all).
async fn lead_attributes(store: &Store, lead_id: i64) -> serde_json::Value {
    store
        .lead_attributes(lead_id)
        .await
        .ok()
        .flatten()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| serde_json::json!({}))
}
