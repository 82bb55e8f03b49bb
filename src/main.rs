//! The `outdial` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use outdial::api::client::ApiClient;
use outdial::demo;
use outdial::overrides::Overrides;
use outdial::report;
use outdial::runner::RunOutcome;
use outdial::sip::message::Transport;
use outdial::sip::transaction::Timers;
use outdial::store::Store;

/// The process allocator: mimalloc instead of glibc's malloc. At thousands of calls per second
/// a call's short-lived strings, buffers and rows are allocated on the engine's thread and
/// freed on another (the SQLite worker, the event fan-out); glibc's arenas then spent a third
/// of the process's CPU in `_int_malloc`, `free` and `malloc_consolidate` (perf,
/// docs/benchmarks.md "Where a call's CPU goes").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "outdial",
    version,
    about = "Outbound dialer engine that speaks SIP itself"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
    /// Runtime worker threads. The SIP engine is one task and SQLite has its own thread, so
    /// one worker is the default: more only add cross-thread wake-ups (at 3,000 calls/s on 2
    /// cores: −11 % CPU per call and setup p99 8 ms instead of 20 ms with one; see
    /// docs/benchmarks.md).
    #[arg(long, global = true, env = "OUTDIAL_THREADS", default_value_t = 1)]
    threads: usize,
    /// Log lines on standard error: `text` (coloured only when standard error is a terminal)
    /// or `json` (one JSON object per line: `timestamp`, `level`, `target`, `fields`, for log
    /// collectors). Which lines: `OUTDIAL_LOG` (`warn` by default; `info`, `debug`, or
    /// per-module filters such as `outdial=info`).
    #[arg(long, global = true, env = "OUTDIAL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// See `--log-format`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Logs to standard error as `format` says, filtered by `OUTDIAL_LOG`.
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_env("OUTDIAL_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Dial a campaign's call list through its trunk until every lead has a final disposition.
    Run {
        /// Campaign settings (TOML).
        campaign: PathBuf,
        /// Call list (CSV with a `number` column).
        #[arg(long)]
        leads: PathBuf,
        #[command(flatten)]
        overrides: Box<Overrides>,
        /// The store: a SQLite file, or a `postgres://user:password@host/db` URL (better from
        /// OUTDIAL_DB than on the command line, where other users can see the password).
        #[arg(long, env = "OUTDIAL_DB", default_value = "outdial.db")]
        db: PathBuf,
        /// Also write the JSON report here.
        #[arg(long)]
        report: Option<PathBuf>,
        /// No progress display.
        #[arg(long)]
        quiet: bool,
    },
    /// Run the dialer as a service: the REST API, campaigns and call lists created over it,
    /// their runs (see docs/api.md). SIGTERM or Ctrl-C: stop dialling, let calls finish up to
    /// `shutdown_grace` seconds, store their events, exit.
    Serve {
        /// Service settings (TOML: listen, db, shutdown_grace, [campaign_defaults]).
        #[arg(long)]
        config: PathBuf,
    },
    /// Print a campaign's summary from the store.
    Report {
        /// The store: a SQLite file, or a `postgres://user:password@host/db` URL (better from
        /// OUTDIAL_DB than on the command line, where other users can see the password).
        #[arg(long, env = "OUTDIAL_DB", default_value = "outdial.db")]
        db: PathBuf,
        /// Campaign name (default: every campaign).
        #[arg(long)]
        campaign: Option<String>,
        /// Print the full JSON report instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Agents: add one to the store, or (through a running campaign's REST API) list them,
    /// pause, unpause, set a call's disposition.
    Agent {
        #[command(subcommand)]
        command: AgentCmd,
    },
    /// The do-not-call list.
    Dnc {
        #[command(subcommand)]
        command: DncCmd,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCmd,
    },
    /// Simulate pacing on a virtual clock (seeded): progressive, Vicidial's adaptive level
    /// and predictive on the same callees; prints occupancy, abandon rate, calls per
    /// agent-hour and queue-wait percentiles for each (docs/pacing.md).
    Simulate {
        /// Agents logged in.
        #[arg(long, default_value_t = 20)]
        agents: u32,
        /// Simulated hours.
        #[arg(long, default_value_t = 4.0)]
        hours: f64,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Share of calls answered (person or machine), 0–1.
        #[arg(long, default_value_t = 0.35)]
        answer_rate: f64,
        /// Share of answers that are machines, 0–1.
        #[arg(long, default_value_t = 0.25)]
        machine_share: f64,
        /// Mean talk time, seconds.
        #[arg(long, default_value_t = 90.0)]
        talk: f64,
        /// Wrap-up, seconds.
        #[arg(long, default_value_t = 10.0)]
        wrap: f64,
        /// Abandon-rate cap, 0–1.
        #[arg(long, default_value_t = 0.03)]
        cap: f64,
        /// Share of people AMD takes for machines, 0–1 (counted as abandoned).
        #[arg(long, default_value_t = 0.02)]
        amd_fp: f64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Answering-machine detection tools.
    Amd {
        #[command(subcommand)]
        command: AmdCmd,
    },
    /// Start a SIPp far end on loopback, dial a sample call list through it, print the summary.
    Demo {
        /// Transport towards the SIPp trunk.
        #[arg(long, default_value = "udp", value_parser = parse_transport)]
        transport: Transport,
        /// Number of sample leads.
        #[arg(long, default_value_t = 20)]
        leads: usize,
        /// Directory for the database, call list, campaign file and report.
        #[arg(long, default_value = "outdial-demo")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum AgentCmd {
    /// Add an agent (or change its password): its digest HA1 values go into the store, the
    /// password does not. The password is read from `OUTDIAL_AGENT_PASSWORD` or the first line
    /// of standard input.
    Add {
        /// Agent id = SIP username of its phone.
        id: String,
        /// Digest realm (the campaign's `acd.realm`).
        #[arg(long, default_value = "outdial")]
        realm: String,
        /// The store: a SQLite file, or a `postgres://user:password@host/db` URL (better from
        /// OUTDIAL_DB than on the command line, where other users can see the password).
        #[arg(long, env = "OUTDIAL_DB", default_value = "outdial.db")]
        db: PathBuf,
    },
    /// Every agent's state.
    List {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Take an agent out of the rotation (during a call: once its wrap-up ends).
    Pause {
        /// Agent id.
        id: String,
        /// Why (shown in its state and `agent_state` event).
        #[arg(long, default_value = "break")]
        reason: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Put an agent back in the rotation.
    Unpause {
        /// Agent id.
        id: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Preview dialling: the agent's next lead, called at once and connected to the agent
    /// when answered (prints the lead and the call).
    NextLead {
        /// Agent id.
        id: String,
        /// The preview campaign (needed when several run).
        #[arg(long)]
        campaign: Option<i64>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// A control on the agent's live call: `tag`, `mute`, `unmute`, `hold`, `resume`,
    /// `hangup`, `transfer` (blind, to `--target`), `record`, `stop_recording`
    /// (docs/acd.md, "Agent call controls").
    Call {
        /// Agent id.
        id: String,
        /// The control.
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(outdial::api::CALL_CONTROLS))]
        action: String,
        /// `tag`: a tag (repeat for several).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// `transfer`, `warm_transfer`: the number, `sip:` URI or `agent:ID` (another agent).
        #[arg(long)]
        target: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Set the disposition of the agent's current or last call (during the call or its
    /// wrap-up; ends the wrap-up).
    Disposition {
        /// Agent id.
        id: String,
        /// One of the campaign's `acd.dispositions`.
        disposition: String,
        /// A note kept with it.
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// Where the REST API is.
#[derive(clap::Args)]
struct ApiArgs {
    /// Base URL of the running campaign's API (`api_listen`).
    #[arg(
        long = "api-url",
        env = "OUTDIAL_API",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// Bearer token (`outdial token create`).
    #[arg(long, env = "OUTDIAL_TOKEN", hide_env_values = true)]
    token: String,
}

#[derive(Subcommand)]
enum DncCmd {
    /// Add the numbers of a CSV file (a `number` column) to the do-not-call list; every run
    /// checks it before each attempt.
    Import {
        /// CSV file.
        file: PathBuf,
        /// ISO 3166 region for national numbers (as the campaigns' `default_region`).
        #[arg(long)]
        region: Option<String>,
        /// The store: a SQLite file, or a `postgres://user:password@host/db` URL (better from
        /// OUTDIAL_DB than on the command line, where other users can see the password).
        #[arg(long, env = "OUTDIAL_DB", default_value = "outdial.db")]
        db: PathBuf,
    },
}

/// Where `outdial token …` finds the store: `--db`, else the service file's `db`.
#[derive(clap::Args)]
struct TokenStore {
    /// The store: a SQLite file, or a `postgres://user:password@host/db` URL (better from
    /// OUTDIAL_DB than on the command line, where other users can see the password).
    #[arg(long, env = "OUTDIAL_DB")]
    db: Option<PathBuf>,
    /// The service file whose `db` to use (default: ./outdial.toml when it exists).
    #[arg(long)]
    config: Option<PathBuf>,
}

impl TokenStore {
    /// The store to use. Errors: neither `--db` nor a service file to read it from (the
    /// command never creates a database nobody asked for), or a service file that does not
    /// load.
    fn resolve(&self) -> anyhow::Result<PathBuf> {
        if let Some(db) = &self.db {
            return Ok(db.clone());
        }
        let cfg = match &self.config {
            Some(c) => c.clone(),
            None if std::path::Path::new("outdial.toml").exists() => "outdial.toml".into(),
            None => anyhow::bail!(
                "which store? give --db FILE|URL (or OUTDIAL_DB), or --config with the service \
                 file `outdial serve` uses"
            ),
        };
        Ok(outdial::service::ServiceConfig::load(&cfg)?.db)
    }
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Create a bearer token for the REST API and print it (only its hash is stored).
    Create {
        /// owner, admin, supervisor or agent.
        #[arg(long, value_enum)]
        role: outdial::api::Role,
        /// The agent an `agent` token acts for.
        #[arg(long)]
        agent: Option<String>,
        /// A name to recognise it by.
        #[arg(long, default_value = "cli")]
        name: String,
        #[command(flatten)]
        store: TokenStore,
    },
    /// List the tokens (never the tokens themselves): id, name, role, agent, created, revoked.
    List {
        #[command(flatten)]
        store: TokenStore,
    },
    /// Revoke a token by its id (from `token list`): it stops working at once.
    Revoke {
        /// The token's id.
        id: i64,
        #[command(flatten)]
        store: TokenStore,
    },
}

fn print_agents(list: &[serde_json::Value]) {
    println!(
        "{:<12} {:<10} {:<18} {:>8} {:>7} {:>9}",
        "agent", "state", "reason", "in state", "handled", "occupancy"
    );
    for a in list {
        let owed = if a["awaiting_disposition"].as_bool() == Some(true) {
            "  (disposition owed)"
        } else {
            ""
        };
        println!(
            "{:<12} {:<10} {:<18} {:>7}s {:>7} {:>8.0}%{owed}",
            a["id"].as_str().unwrap_or(""),
            a["state"].as_str().unwrap_or(""),
            a["reason"].as_str().unwrap_or(""),
            a["in_state_ms"].as_u64().unwrap_or(0) / 1000,
            a["stats"]["handled"].as_u64().unwrap_or(0),
            a["stats"]["occupancy"].as_f64().unwrap_or(0.0) * 100.0,
        );
    }
}

#[derive(Subcommand)]
enum AmdCmd {
    /// Run a detector profile over labelled clips and print the confusion matrix and rates.
    Eval {
        /// CSV with `file,label` columns (labels: human, machine, silence) and optionally
        /// `source`; files relative to it. Without it, the real-voice corpus is built in
        /// memory from the Asterisk prompt packages (see `outdial amd corpus`).
        #[arg(long)]
        labels: Option<PathBuf>,
        /// `default` or `asterisk`.
        #[arg(long, default_value = "default")]
        profile: String,
        /// Figures per source as well.
        #[arg(long)]
        by_source: bool,
        /// Leave-one-source-out: for each source, tune the default profile's decision on the
        /// other sources and report it on the one held out.
        #[arg(long)]
        loso: bool,
        /// Where the Asterisk prompt packages are (for the built-in corpus).
        #[arg(long, default_value = outdial::media::amd::corpus::DEFAULT_SOUNDS_DIR)]
        sounds: PathBuf,
        /// Print the full report (every clip) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Build the labelled real-voice corpus (WAV clips and labels.csv) from Debian's Asterisk
    /// prompt packages: machine greetings, human answers and dead air, per source.
    Corpus {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Where the prompt packages are installed.
        #[arg(long, default_value = outdial::media::amd::corpus::DEFAULT_SOUNDS_DIR)]
        sounds: PathBuf,
        /// Only these sources (repeatable): es-allison, fr-june, it-carlo, ru-ivrvoice, es-co,
        /// fr-armelle, it-menardi.
        #[arg(long)]
        source: Vec<String>,
        /// Human answers per source.
        #[arg(long, default_value_t = 60)]
        humans: usize,
        /// Machine greetings per source.
        #[arg(long, default_value_t = 60)]
        machines: usize,
        /// Dead-air and noise-only lines per source.
        #[arg(long, default_value_t = 8)]
        silences: usize,
        /// Generator seed (the same seed writes the same clips).
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },
}

fn parse_transport(s: &str) -> Result<Transport, String> {
    match s.to_ascii_lowercase().as_str() {
        "udp" => Ok(Transport::Udp),
        "tcp" => Ok(Transport::Tcp),
        _ => Err(format!("{s:?}: expected udp or tcp")),
    }
}

fn print_outcome(o: &RunOutcome) {
    if !o.rejected_rows.is_empty() {
        println!("Call list rows rejected:");
        for e in &o.rejected_rows {
            println!("  line {}: {}", e.line, e.reason);
        }
    }
    if o.recovered > 0 {
        println!(
            "Resumed: {} attempt(s) interrupted by an earlier stop were re-queued.",
            o.recovered
        );
    }
    print!("{}", report::render_table(&o.report.summary));
    if o.congestion_backoffs > 0 {
        println!(
            "  trunk congestion: the call rate was halved {} time(s)",
            o.congestion_backoffs
        );
    }
    if o.trunk_failures > 0 {
        println!(
            "  trunk failures: {} attempt(s) ended network_error or trunk_unreachable; their leads were dialled again without using an attempt",
            o.trunk_failures
        );
    }
    if o.trunk_pauses.0 > 0 {
        println!(
            "  auto-paused {} time(s) for {:.1} s in all: no trunk was up",
            o.trunk_pauses.0,
            o.trunk_pauses.1.as_secs_f64()
        );
    }
    if let Some((mode, abandon, ratio)) = &o.pacing {
        println!(
            "  pacing: {mode}, abandon rate {:.2} % over the window, dial ratio {ratio:.2}",
            abandon * 100.0
        );
    }
    let s = &o.engine;
    println!(
        "  SIP: {} calls started, {} unparsable messages, {} stray messages",
        s.calls_started, s.parse_errors, s.stray_messages
    );
    if s.trunks.len() > 1
        || s.trunks
            .iter()
            .any(|t| t.pings > 0 || t.failures > 0 || t.holds > 0)
    {
        for t in &s.trunks {
            println!(
                "  trunk {}: {} INVITEs, {} failed, {} pings ({} failed), went down {} time(s), held by Retry-After {} time(s), now {}",
                t.name,
                t.invites,
                t.failures,
                t.pings,
                t.ping_failures,
                t.went_down,
                t.holds,
                if t.up { "up" } else { "down" }
            );
        }
    }
    if let Some(acd) = &s.acd {
        let rate = if acd.queued > 0 {
            100.0 * acd.abandoned as f64 / acd.queued as f64
        } else {
            0.0
        };
        println!(
            "  ACD: {} queued, {} connected, {} abandoned (abandon rate {rate:.1} % of human answers), {} offers not taken; wait p50 {:.2} ms, p99 {:.2} ms; answer → bridge p50 {:.2} ms, p99 {:.2} ms",
            acd.queued,
            acd.connected,
            acd.abandoned,
            acd.offers_failed,
            acd.wait_p50_ms,
            acd.wait_p99_ms,
            acd.answer_to_bridge_p50_ms,
            acd.answer_to_bridge_p99_ms
        );
        println!(
            "  registrar: {} REGISTERs accepted, {} challenged, {} refused, {} dropped from blocked sources, {} bindings expired",
            acd.registrar.registered,
            acd.registrar.challenged,
            acd.registrar.auth_failures,
            acd.registrar.blocked,
            acd.registrar.expired
        );
        if acd.agents.len() > 10 {
            let occ: Vec<f64> = acd.agents.iter().map(|a| 100.0 * a.occupancy).collect();
            let calls: Vec<u32> = acd.agents.iter().map(|a| a.handled).collect();
            println!(
                "  agents: {}, calls per agent {}–{}, occupancy {:.0}–{:.0} % (one line per agent with ≤ 10 agents)",
                acd.agents.len(),
                calls.iter().min().unwrap_or(&0),
                calls.iter().max().unwrap_or(&0),
                occ.iter().cloned().fold(f64::INFINITY, f64::min),
                occ.iter().cloned().fold(0.0, f64::max)
            );
        }
        for a in acd.agents.iter().filter(|_| acd.agents.len() <= 10) {
            println!(
                "  agent {}: {} calls, {} missed, talk {:.1} s, wrap-up {:.1} s, occupancy {:.0} %",
                a.agent,
                a.handled,
                a.missed,
                a.talk_ms as f64 / 1000.0,
                a.wrap_up_ms as f64 / 1000.0,
                100.0 * a.occupancy
            );
        }
    }
    let (b, a) = (o.resources_before, o.resources_after);
    println!(
        "  resources: open fds {} → {}, tasks {} → {}, RSS {:.1} → {:.1} MiB (peak while dialling {:.1} MiB); RTP ports free {} of {}, media tasks open {}",
        b.open_fds,
        a.open_fds,
        b.tasks,
        a.tasks,
        b.rss_kib as f64 / 1024.0,
        a.rss_kib as f64 / 1024.0,
        o.peak_rss_kib as f64 / 1024.0,
        s.rtp_ports_free,
        s.rtp_ports_total,
        s.media_tasks_open
    );
    if s.setup_max_us > 0 {
        println!(
            "  latency: INVITE → 2xx p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; response → event p50 {} µs, p99 {} µs",
            s.setup_p50_us as f64 / 1000.0,
            s.setup_p99_us as f64 / 1000.0,
            s.setup_max_us as f64 / 1000.0,
            s.event_p50_us,
            s.event_p99_us
        );
    }
}

async fn write_report(path: &PathBuf, r: &report::Report) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_vec_pretty(r)?)
        .with_context(|| format!("writing report {}", path.display()))?;
    println!("  JSON report: {}", path.display());
    Ok(())
}

async fn real_main(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        cmd @ Cmd::Run { .. } => run_command(cmd).await,
        cmd @ Cmd::Serve { .. } => serve_command(cmd).await,
        cmd @ Cmd::Simulate { .. } => simulate_command(cmd).await,
        cmd @ Cmd::Report { .. } => report_command(cmd).await,
        cmd @ Cmd::Agent { .. } => agent_command(cmd).await,
        cmd @ Cmd::Dnc { .. } => dnc_command(cmd).await,
        cmd @ Cmd::Token { .. } => token_command(cmd).await,
        cmd @ Cmd::Amd { .. } => amd_command(cmd).await,
        cmd @ Cmd::Demo { .. } => demo_command(cmd).await,
    }
}

/// `outdial run`: one campaign from a file to the end, with its report.
async fn run_command(cmd: Cmd) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::Run {
            campaign,
            leads,
            overrides: o,
            db,
            report: report_path,
            quiet,
        } => {
            let cfg = outdial::overrides::load(&campaign, &o)?;
            let store = Store::open(&db).await?;
            store.lock_process()?;
            let out = outdial::app::run(&cfg, &leads, &store, Timers::default(), !quiet).await?;
            print_outcome(&out);
            if let Some(p) = report_path {
                write_report(&p, &out.report).await?;
            }
            if out.stopped {
                let s = &out.report.summary;
                println!(
                    "Stopped before completion: {} lead(s) pending. Run the same command again to resume.",
                    s.leads - s.leads_final
                );
                return Ok(ExitCode::from(130));
            }
        }
        _ => unreachable!("real_main dispatches only `run` here"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `outdial serve`: the campaign service and its API until SIGTERM/Ctrl-C.
async fn serve_command(cmd: Cmd) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::Serve { config } => {
            let mut sc = outdial::service::ServiceConfig::load(&config)?;
            // The environment wins over the file: a PostgreSQL password stays out of it.
            if let Ok(db) = std::env::var("OUTDIAL_DB") {
                sc.db = db.into();
            }
            outdial::notify::metrics::install();
            let store = Store::open(&sc.db).await?;
            store.lock_process()?;
            let service = outdial::service::Service::with_limits(
                store.clone(),
                sc.campaign_defaults.clone(),
                sc.max_concurrent,
                sc.cps,
                &sc.trunk_limits,
            );
            service.resume().await?;
            let state = std::sync::Arc::new(outdial::api::ApiState {
                store,
                engine: std::sync::OnceLock::new(),
                service: Some(service.clone()),
                live: Some(service.live.clone()),
            });
            let listener = tokio::net::TcpListener::bind(&sc.listen)
                .await
                .with_context(|| format!("binding the API address {}", sc.listen))?;
            eprintln!(
                "outdial serve: API on http://{}/v1, database {}",
                listener.local_addr()?,
                outdial::store::redact_url(&sc.db.to_string_lossy())
            );
            let grace = sc.shutdown_grace;
            let stop = async move {
                let term = async {
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    {
                        Ok(mut s) => {
                            s.recv().await;
                        }
                        Err(_) => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term => {}
                }
                eprintln!("outdial serve: stopping (calls in progress get up to {grace} s)…");
            };
            axum::serve(listener, outdial::api::router(state))
                .with_graceful_shutdown(stop)
                .await?;
            service
                .shutdown(std::time::Duration::from_secs(sc.shutdown_grace))
                .await;
            eprintln!("outdial serve: stopped");
        }
        _ => unreachable!("real_main dispatches only `serve` here"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `outdial simulate`: the pacing simulator.
async fn simulate_command(cmd: Cmd) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::Simulate {
            agents,
            hours,
            seed,
            answer_rate,
            machine_share,
            talk,
            wrap,
            cap,
            amd_fp,
            json,
        } => {
            use outdial::pacing::sim;
            if [answer_rate, machine_share, cap]
                .iter()
                .any(|v| !(0.0..=1.0).contains(v))
                || !(0.0..0.5).contains(&amd_fp)
            {
                anyhow::bail!(
                    "--answer-rate, --machine-share and --cap are shares, 0 to 1; --amd-fp below 0.5"
                );
            }
            if agents == 0 || !(hours > 0.0 && hours <= 24.0 * 31.0) {
                anyhow::bail!("--agents ≥ 1 and 0 < --hours ≤ 744");
            }
            let base = sim::SimConfig {
                agents,
                duration: std::time::Duration::from_secs_f64(hours * 3600.0),
                seed,
                population: sim::Population {
                    answer_rate,
                    machine_share,
                    talk_mean_s: talk,
                    wrap_s: wrap,
                    amd_false_positive: amd_fp,
                    ..sim::Population::default()
                },
                pacer: outdial::pacing::PacerConfig {
                    abandon_cap: cap,
                    ..Default::default()
                },
                ..sim::SimConfig::default()
            };
            let reports = sim::compare(&base);
            if json {
                println!("{}", serde_json::to_string_pretty(&reports)?);
            } else {
                println!(
                    "{agents} agents, {hours} h, seed {seed}: answer {answer_rate}, machines {machine_share}, talk {talk} s, wrap-up {wrap} s, abandon cap {:.1} %",
                    cap * 100.0
                );
                println!(
                    "{:<12} {:>8} {:>9} {:>9} {:>9} {:>10} {:>11} {:>17}",
                    "mode",
                    "placed",
                    "connected",
                    "abandon%",
                    "occupancy",
                    "calls/ag·h",
                    "dial ratio",
                    "wait p50/p90/p99"
                );
                for r in &reports {
                    println!(
                        "{:<12} {:>8} {:>9} {:>8.2}% {:>8.1}% {:>10.1} {:>11.2} {:>7.0}/{:.0}/{:.0} ms",
                        r.mode,
                        r.placed,
                        r.connected,
                        r.abandon_rate * 100.0,
                        r.occupancy * 100.0,
                        r.calls_per_agent_hour,
                        r.dial_ratio,
                        r.wait_p50_ms,
                        r.wait_p90_ms,
                        r.wait_p99_ms
                    );
                }
            }
        }
        _ => unreachable!("real_main dispatches only `simulate` here"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `outdial report`: a stored campaign's report.
async fn report_command(cmd: Cmd) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::Report { db, campaign, json } => {
            if !outdial::store::is_url(&db.to_string_lossy()) && !db.exists() {
                anyhow::bail!("no database at {}", db.display());
            }
            let store = Store::open(&db).await?;
            let list = match campaign {
                Some(name) => {
                    let id = store.campaign_id(&name).await?.with_context(|| {
                        format!(
                            "no campaign named {name:?} in {}",
                            outdial::store::redact_url(&db.to_string_lossy())
                        )
                    })?;
                    vec![(id, name)]
                }
                None => store.campaigns().await?,
            };
            let mut reports = Vec::new();
            for (id, name) in list {
                reports.push(report::build(&store, id, &name).await?);
            }
            if json {
                if reports.len() == 1 {
                    println!("{}", serde_json::to_string_pretty(&reports[0])?);
                } else {
                    println!("{}", serde_json::to_string_pretty(&reports)?);
                }
            } else {
                for r in &reports {
                    print!("{}", report::render_table(&r.summary));
                }
            }
        }
        _ => unreachable!("real_main dispatches only `report` here"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `outdial agent …`: agent requests through the API.
async fn agent_command(cmd: Cmd) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::Agent {
            command: AgentCmd::List { api },
        } => {
            let c = ApiClient::new(&api.url, &api.token);
            let list: Vec<serde_json::Value> = c.get("/v1/agents").await?;
            print_agents(&list);
        }
        Cmd::Agent {
            command: AgentCmd::Pause { id, reason, api },
        } => {
            let c = ApiClient::new(&api.url, &api.token);
            let body = serde_json::json!({ "state": "paused", "reason": reason });
            let a: serde_json::Value = c.put(&format!("/v1/agents/{id}/state"), &body).await?;
            print_agents(&[a]);
        }
        Cmd::Agent {
            command: AgentCmd::Unpause { id, api },
        } => {
            let c = ApiClient::new(&api.url, &api.token);
            let body = serde_json::json!({ "state": "available" });
            let a: serde_json::Value = c.put(&format!("/v1/agents/{id}/state"), &body).await?;
            print_agents(&[a]);
        }
        Cmd::Agent {
            command: AgentCmd::NextLead { id, campaign, api },
        } => {
            let c = ApiClient::new(&api.url, &api.token);
            let body = match campaign {
                Some(n) => serde_json::json!({ "campaignId": n }),
                None => serde_json::json!({}),
            };
            let l: serde_json::Value = c.post(&format!("/v1/agents/{id}/next-lead"), &body).await?;
            println!(
                "calling {} (lead {}, campaign {}, attempt {}), call {}",
                l["number"].as_str().unwrap_or("?"),
                l["leadId"],
                l["campaignId"],
                l["attemptNo"],
                l["callId"].as_str().unwrap_or("?")
            );
            if let Some(a) = l["attributes"].as_object() {
                for (k, v) in a {
                    println!("  {k}: {}", v.as_str().unwrap_or_default());
                }
            }
        }
        Cmd::Agent {
            command:
                AgentCmd::Disposition {
                    id,
                    disposition,
                    note,
                    api,
                },
        } => {
            let c = ApiClient::new(&api.url, &api.token);
            let body = serde_json::json!({ "disposition": disposition, "note": note });
            let a: serde_json::Value = c
                .put(&format!("/v1/agents/{id}/disposition"), &body)
                .await?;
            print_agents(&[a]);
        }
        Cmd::Agent {
            command:
                AgentCmd::Call {
                    id,
                    action,
                    tags,
                    target,
                    api,
                },
        } => {
            let c = ApiClient::new(&api.url, &api.token);
            let body = serde_json::json!({ "tags": tags, "target": target });
            let v: serde_json::Value = c
                .post(&format!("/v1/agents/{id}/call/{action}"), &body)
                .await?;
            println!(
                "call {}: held {}, muted {}, recording {}, tags {}",
                v["call_id"].as_str().unwrap_or("?"),
                v["held"],
                v["muted"],
                v["recording"],
                v["tags"]
            );
        }
        Cmd::Agent {
            command: AgentCmd::Add { id, realm, db },
        } => {
            let password = match std::env::var("OUTDIAL_AGENT_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            if password.is_empty() {
                anyhow::bail!(
                    "agent add: empty password (set OUTDIAL_AGENT_PASSWORD or pipe it on stdin)"
                );
            }
            let store = Store::open(&db).await?;
            let ha1 = outdial::acd::Ha1::from_password(&id, &realm, &password);
            store.upsert_agent(&id, &realm, &ha1).await?;
            println!(
                "agent {id}: HA1 stored for realm {realm:?} in {}",
                outdial::store::redact_url(&db.to_string_lossy())
            );
        }
        _ => unreachable!("real_main dispatches only `agent` here"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `outdial dnc …`: the do-not-call list.
async fn dnc_command(cmd: Cmd) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::Dnc {
            command: DncCmd::Import { file, region, db },
        } => {
            let region = region
                .as_deref()
                .map(|r| r.parse::<phonenumber::country::Id>())
                .transpose()
                .map_err(|_| anyhow::anyhow!("--region: not a region code"))?;
            let f = std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?;
            let import = outdial::campaign::leads::read_csv(f, region)
                .with_context(|| format!("reading {}", file.display()))?;
            for e in &import.errors {
                println!("  line {}: {}", e.line, e.reason);
            }
            let numbers: Vec<String> = import.leads.into_iter().map(|l| l.number).collect();
            let store = Store::open(&db).await?;
            let source = file
                .file_name()
                .map_or("cli".into(), |n| n.to_string_lossy().into_owned());
            let added = store.import_dnc(&numbers, &source).await?;
            println!(
                "do-not-call: {added} number(s) added ({} already listed, {} row(s) refused); {} in all",
                numbers.len() as u64 - added,
                import.errors.len(),
                store.dnc_count().await?
            );
        }
        _ => unreachable!("real_main dispatches only `dnc` here"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `outdial token …`: API tokens.
async fn token_command(cmd: Cmd) -> anyhow::Result<ExitCode> {
    let Cmd::Token { command } = cmd else {
        unreachable!("real_main dispatches only `token` here")
    };
    match command {
        TokenCmd::Create {
            role,
            agent,
            name,
            store,
        } => {
            if (role == outdial::api::Role::Agent) != agent.is_some() {
                anyhow::bail!(
                    "token create: --agent ID is required with --role agent, and only then"
                );
            }
            let db = store.resolve()?;
            let store = Store::open(&db).await?;
            let token = outdial::api::auth::new_token();
            store
                .create_token(&name, role.as_str(), agent.as_deref(), &token)
                .await?;
            eprintln!(
                "token {name:?} ({}) stored in {}; it is shown only now:",
                role.as_str(),
                outdial::store::redact_url(&db.to_string_lossy())
            );
            println!("{token}");
        }
        TokenCmd::List { store } => {
            let store = Store::open(&store.resolve()?).await?;
            println!(
                "{:>4}  {:<16} {:<10} {:<8} {:<24} revoked",
                "id", "name", "role", "agent", "created"
            );
            for t in store.tokens().await? {
                println!(
                    "{:>4}  {:<16} {:<10} {:<8} {:<24} {}",
                    t.0,
                    t.1,
                    t.2,
                    t.3.as_deref().unwrap_or("-"),
                    t.4,
                    t.5.as_deref().unwrap_or("-")
                );
            }
        }
        TokenCmd::Revoke { id, store } => {
            let store = Store::open(&store.resolve()?).await?;
            if !store.revoke_token(id).await? {
                anyhow::bail!("no live token with id {id} (see `outdial token list`)");
            }
            eprintln!("token {id} revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `outdial amd …`: the AMD corpus and its evaluation.
async fn amd_command(cmd: Cmd) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::Amd {
            command:
                AmdCmd::Eval {
                    labels,
                    profile,
                    by_source,
                    loso,
                    sounds,
                    json,
                },
        } => amd_eval(labels, &profile, by_source, loso, sounds, json)?,
        Cmd::Amd {
            command:
                AmdCmd::Corpus {
                    out,
                    sounds,
                    source,
                    humans,
                    machines,
                    silences,
                    seed,
                },
        } => {
            use outdial::media::amd::corpus;
            let opts = corpus::CorpusOptions {
                sounds_dir: sounds,
                humans,
                machines,
                silences,
                seed,
                ..Default::default()
            };
            let clips = corpus::build(&opts, &source)?;
            corpus::write(&out, &clips)?;
            println!(
                "{} clips written to {} (labels.csv)",
                clips.len(),
                out.display()
            );
        }
        _ => unreachable!("real_main dispatches only `amd` here"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `outdial demo`: a campaign against a bundled SIPp far end.
async fn demo_command(cmd: Cmd) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::Demo {
            transport,
            leads,
            dir,
        } => {
            std::fs::create_dir_all(&dir)?;
            let scenario = match demo::demo_clips(&dir.join("audio")) {
                Ok((human, machine)) => {
                    println!(
                        "Far end voices: {} (person), {} (voicemail)",
                        human.display(),
                        machine.display()
                    );
                    demo::outcomes_with_audio(&human.canonicalize()?, &machine.canonicalize()?)
                }
                Err(why) => {
                    println!("No audio for the far end ({why}); AMD will have nothing to hear.");
                    demo::OUTCOMES_SCENARIO.to_string()
                }
            };
            println!("Starting the SIPp far end on 127.0.0.1 ({transport})…");
            let uas = demo::SippUas::start(&scenario, transport, &[])?;
            let leads_path = dir.join("leads.csv");
            demo::write_sample_leads(&leads_path, leads)?;
            let name = format!("demo-{}", chrono::Utc::now().format("%Y%m%d-%H%M%S"));
            let campaign_path = dir.join("campaign.toml");
            std::fs::write(&campaign_path, demo::demo_campaign(&name, &uas.trunk_uri()))?;
            println!(
                "Campaign {name}: {leads} leads from {} via {}",
                leads_path.display(),
                uas.trunk_uri()
            );
            let cfg = outdial::overrides::load(&campaign_path, &Overrides::default())?;
            let store = Store::open(&dir.join("outdial.db")).await?;
            store.lock_process()?;
            let out = outdial::app::run(&cfg, &leads_path, &store, Timers::default(), true).await?;
            drop(uas);
            print_outcome(&out);
            write_report(&dir.join("report.json"), &out.report).await?;
            println!(
                "  Again from the store: outdial report --db {} --campaign {name}",
                dir.join("outdial.db").display()
            );
        }
        _ => unreachable!("real_main dispatches only `demo` here"),
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    tracing::debug!(version = env!("CARGO_PKG_VERSION"), "outdial starting");
    // A panic in any task ends the process with the panic's message (exit code 101), instead
    // of leaving a service half-working with one campaign silently dead.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        eprintln!("error: internal failure (a bug, please report it): {info}; stopping");
        std::process::exit(101);
    }));
    // One UDP socket per call: lift the open-file limit to the hard limit.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(error = %e, "could not raise the open-file limit");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(real_main(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `outdial amd eval`: one profile over a labelled set (a labels file, or the real-voice
/// corpus built in memory), optionally per source and leave-one-source-out.
fn amd_eval(
    labels: Option<PathBuf>,
    profile: &str,
    by_source: bool,
    loso: bool,
    sounds: PathBuf,
    json: bool,
) -> anyhow::Result<()> {
    use outdial::media::amd::{AmdConfig, DefaultParams, corpus, eval};
    let cfg = AmdConfig::named(profile)
        .with_context(|| format!("unknown AMD profile {profile:?} (default, asterisk)"))?;
    let clips: Vec<eval::LabelledClip> = match &labels {
        Some(l) => eval::load_labelled(l)?,
        None => {
            eprintln!("Building the real-voice corpus from {} …", sounds.display());
            let opts = corpus::CorpusOptions {
                sounds_dir: sounds,
                ..Default::default()
            };
            corpus::build(&opts, &[])?
                .into_iter()
                .map(Into::into)
                .collect()
        }
    };
    let r = eval::evaluate_clips(&clips, &cfg)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    print!("{}", eval::render(&r));
    if by_source {
        let per = eval::by_source(&r)?;
        let rows: Vec<(String, &eval::EvalReport)> =
            per.iter().map(|(k, v)| (k.clone(), v)).collect();
        println!("\nPer source, profile `{profile}`:");
        print!("{}", eval::render_table(&rows));
    }
    if loso {
        let grid = DefaultParams::tuning_grid();
        let (folds, all) = eval::leave_one_source_out(&clips, &grid)?;
        println!(
            "\nLeave-one-source-out, default profile ({} candidate parameter sets; each source \
             scored with the set chosen on the others):",
            grid.len()
        );
        let rows: Vec<(String, &eval::EvalReport)> = folds
            .iter()
            .map(|f| (format!("{} (set {})", f.held_out, f.chosen), &f.report))
            .collect();
        print!("{}", eval::render_table(&rows));
        println!(
            "Chosen on all sources: set {all}: {}",
            grid[all].describe_decision()
        );
    }
    Ok(())
}
