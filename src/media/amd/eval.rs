//! Offline evaluation of an AMD profile over a labelled clip set (`labels.csv` with at least
//! the columns `file,label`; labels `human`, `machine`, `silence`).
//!
//! Each clip is cut into 20 ms frames fed at 20 ms intervals of a virtual clock from the
//! answer, exactly as RTP frames are fed on a live call. Scoring follows how a decision is
//! routed: `NOTSURE` goes where humans go (as Vicidial routes it), so a human is right when
//! routed as a human and a machine or a silent line is right when called `MACHINE` (dead air
//! is a machine for Asterisk too: `INITIALSILENCE`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

use super::{AmdConfig, AmdResult};
use crate::media::wav;

/// One clip's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ClipResult {
    /// File name as listed.
    pub file: String,
    /// Ground truth.
    pub label: String,
    /// `HUMAN`, `MACHINE`, `NOTSURE`.
    pub result: String,
    /// Cause string.
    pub cause: String,
    /// Time from the answer to the decision, ms.
    pub decision_ms: u32,
    /// Whether the routed decision matches the label.
    pub correct: bool,
}

/// Figures over the whole set.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// `default` or `asterisk`.
    pub profile: String,
    /// Clips evaluated.
    pub clips: usize,
    /// label → result (`HUMAN`/`MACHINE`/`NOTSURE`) → count.
    pub confusion: BTreeMap<String, BTreeMap<String, usize>>,
    /// Share of clips whose routed decision matches the label, 0..1.
    pub accuracy: f64,
    /// Humans called MACHINE / humans (the costly error: a live person hung up on).
    pub human_as_machine_rate: f64,
    /// Machines routed as human (HUMAN or NOTSURE) / machines.
    pub machine_as_human_rate: f64,
    /// NOTSURE / all clips.
    pub notsure_rate: f64,
    /// Decision time over all clips, ms: median and 95th percentile.
    pub decision_ms_p50: u32,
    /// 95th percentile, ms.
    pub decision_ms_p95: u32,
    /// Median decision time for clips labelled human, ms.
    pub human_decision_ms_p50: u32,
    /// Every clip.
    pub results: Vec<ClipResult>,
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Runs the detector over one clip of samples; returns (result, cause, decision_ms).
pub fn classify_samples(cfg: &AmdConfig, samples: &[i16]) -> (AmdResult, String, u32) {
    let t0 = Instant::now();
    let Some(mut det) = cfg.detector(t0) else {
        return (AmdResult::NotSure, "OFF".into(), 0);
    };
    for (k, frame) in samples.chunks(160).enumerate() {
        if frame.len() < 160 {
            break;
        }
        let now = t0 + Duration::from_millis(20 * (k as u64 + 1));
        if let Some(d) = det.feed(now, frame) {
            return (d.result, d.cause, d.decision_ms);
        }
    }
    // Audio ended first: the wall-clock guard decides, as it would on a live call.
    let t = det.poll_timeout().unwrap_or(t0);
    match det.handle_timeout(t) {
        Some(d) => (d.result, d.cause, d.decision_ms),
        None => (AmdResult::NotSure, "NOTSURE".into(), 0),
    }
}

/// Evaluates `cfg` over the clips listed in `labels` (paths relative to its directory).
/// Errors: unreadable labels file or clip, unknown label.
pub fn evaluate(labels: &Path, cfg: &AmdConfig) -> anyhow::Result<EvalReport> {
    let dir = labels.parent().unwrap_or(Path::new("."));
    let mut rdr =
        csv::Reader::from_path(labels).with_context(|| format!("reading {}", labels.display()))?;
    let headers = rdr.headers()?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("{} has no `{name}` column", labels.display()))
    };
    let (file_col, label_col) = (col("file")?, col("label")?);
    let profile = match cfg {
        AmdConfig::Default(_) => "default",
        AmdConfig::Asterisk(_) => "asterisk",
        AmdConfig::Off => bail!("AMD profile `off` has nothing to evaluate"),
    };
    let mut results = Vec::new();
    for rec in rdr.records() {
        let rec = rec?;
        let file = rec.get(file_col).unwrap_or("").to_string();
        let label = rec.get(label_col).unwrap_or("").to_string();
        if !matches!(label.as_str(), "human" | "machine" | "silence") {
            bail!("{file}: unknown label {label:?} (human, machine, silence)");
        }
        let samples = wav::read_8k_mono(&dir.join(&file))?;
        let (result, cause, decision_ms) = classify_samples(cfg, &samples);
        let correct = match label.as_str() {
            "human" => result.routed_as_human(),
            _ => result == AmdResult::Machine,
        };
        results.push(ClipResult {
            file,
            label,
            result: result.as_asterisk().to_string(),
            cause,
            decision_ms,
            correct,
        });
    }
    if results.is_empty() {
        bail!("{} lists no clips", labels.display());
    }
    let mut confusion: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for r in &results {
        *confusion
            .entry(r.label.clone())
            .or_default()
            .entry(r.result.clone())
            .or_default() += 1;
    }
    let count = |label: &str, pred: &dyn Fn(&ClipResult) -> bool| {
        let of: Vec<_> = results.iter().filter(|r| r.label == label).collect();
        if of.is_empty() {
            0.0
        } else {
            of.iter().filter(|r| pred(r)).count() as f64 / of.len() as f64
        }
    };
    let mut all_ms: Vec<u32> = results.iter().map(|r| r.decision_ms).collect();
    all_ms.sort_unstable();
    let mut human_ms: Vec<u32> = results
        .iter()
        .filter(|r| r.label == "human")
        .map(|r| r.decision_ms)
        .collect();
    human_ms.sort_unstable();
    Ok(EvalReport {
        profile: profile.to_string(),
        clips: results.len(),
        accuracy: results.iter().filter(|r| r.correct).count() as f64 / results.len() as f64,
        human_as_machine_rate: count("human", &|r| r.result == "MACHINE"),
        machine_as_human_rate: count("machine", &|r| r.result != "MACHINE"),
        notsure_rate: results.iter().filter(|r| r.result == "NOTSURE").count() as f64
            / results.len() as f64,
        decision_ms_p50: percentile(&all_ms, 0.5),
        decision_ms_p95: percentile(&all_ms, 0.95),
        human_decision_ms_p50: percentile(&human_ms, 0.5),
        confusion,
        results,
    })
}

/// The report as text: confusion matrix and the headline rates.
pub fn render(r: &EvalReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "AMD profile `{}` over {} clips", r.profile, r.clips);
    let _ = writeln!(
        s,
        "  {:<10} {:>7} {:>8} {:>8}",
        "label", "HUMAN", "MACHINE", "NOTSURE"
    );
    for (label, row) in &r.confusion {
        let g = |k: &str| row.get(k).copied().unwrap_or(0);
        let _ = writeln!(
            s,
            "  {:<10} {:>7} {:>8} {:>8}",
            label,
            g("HUMAN"),
            g("MACHINE"),
            g("NOTSURE")
        );
    }
    let _ = writeln!(
        s,
        "  accuracy {:.1}% (NOTSURE routed as human) | human→machine {:.1}% | machine→human {:.1}% | NOTSURE {:.1}%",
        r.accuracy * 100.0,
        r.human_as_machine_rate * 100.0,
        r.machine_as_human_rate * 100.0,
        r.notsure_rate * 100.0
    );
    let _ = writeln!(
        s,
        "  decision time p50 {} ms, p95 {} ms; humans p50 {} ms",
        r.decision_ms_p50, r.decision_ms_p95, r.human_decision_ms_p50
    );
    s
}
