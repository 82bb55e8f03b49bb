//! The composition root: what `outdial run` does, from the pieces below it — the campaign
//! run ([`crate::runner`]) with its own REST API and live stream when `api_listen` is set.
//! (The service, `outdial serve`, composes its own in `main`.) Nothing depends on this module.

use std::path::Path;

use anyhow::Context;

use crate::campaign::config::CampaignConfig;
use crate::runner::{self, RunHooks, RunOutcome};
use crate::sip::transaction::Timers;
use crate::store::Store;

/// Runs a campaign to completion from a call list file, as `outdial run` does: with its REST
/// API (`api_listen`), bound first so a taken address fails the run before anything is
/// dialled. Errors: see [`runner::run`]; the API address does not parse or cannot be bound.
pub async fn run(
    cfg: &CampaignConfig,
    leads: &Path,
    store: &Store,
    timers: Timers,
    progress: bool,
) -> anyhow::Result<RunOutcome> {
    let mut hooks = RunHooks::default();
    let api = match &cfg.api_listen {
        Some(addr) => {
            let live = tokio::sync::broadcast::channel(4096).0;
            let (etx, erx) = tokio::sync::oneshot::channel();
            hooks.engine = Some(etx);
            hooks.live = Some(live.clone());
            let addr = addr.parse().context("api_listen")?;
            let (bound, task) = crate::api::serve_run(addr, store.clone(), erx, live).await?;
            tracing::info!(%bound, "REST API listening");
            if progress {
                eprintln!("[{}] REST API on http://{bound}/v1", cfg.name);
            }
            Some(task)
        }
        None => None,
    };
    let out = match runner::read_call_list(cfg, leads) {
        Ok(import) => runner::run_with(cfg, import, store, timers, progress, hooks).await,
        Err(e) => Err(e),
    };
    if let Some(t) = api {
        t.abort();
    }
    out
}
