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

use super::{AmdConfig, AmdResult, Decider, DefaultParams, FrameAnalyzer, FrameFeatures};
use crate::media::wav;

/// A clip in memory with its ground truth.
#[derive(Debug, Clone)]
pub struct LabelledClip {
    /// File name (for reports).
    pub file: String,
    /// `human`, `machine` or `silence`.
    pub label: String,
    /// Where its voice comes from (a corpus source such as `fr-june`; `all` when the labels
    /// file has no `source` column).
    pub source: String,
    /// 8 kHz samples.
    pub samples: Vec<i16>,
}

impl From<super::corpus::CorpusClip> for LabelledClip {
    fn from(c: super::corpus::CorpusClip) -> Self {
        Self {
            file: c.file,
            label: c.label,
            source: c.source,
            samples: c.samples,
        }
    }
}

/// One clip's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ClipResult {
    /// File name as listed.
    pub file: String,
    /// Ground truth.
    pub label: String,
    /// The clip's source.
    pub source: String,
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
    replay(
        &mut det,
        t0,
        samples.chunks_exact(160),
        |d, now, frame| d.feed(now, frame),
        |d| {
            let t = d.poll_timeout().unwrap_or(t0);
            d.handle_timeout(t)
        },
    )
}

/// Feeds `frames` to `det` at 20 ms intervals of a virtual clock from `t0` (the first at
/// `t0` + 20 ms, as RTP frames arrive on a live call). When the frames run out before a
/// decision, `guard` (the detector's wall-clock guard) decides, as it would on a live call.
fn replay<D, F>(
    det: &mut D,
    t0: Instant,
    frames: impl IntoIterator<Item = F>,
    mut feed: impl FnMut(&mut D, Instant, F) -> Option<super::AmdDecision>,
    guard: impl FnOnce(&mut D) -> Option<super::AmdDecision>,
) -> (AmdResult, String, u32) {
    let decision = frames
        .into_iter()
        .enumerate()
        .find_map(|(k, f)| feed(det, t0 + Duration::from_millis(20 * (k as u64 + 1)), f))
        .or_else(|| guard(det));
    match decision {
        Some(d) => (d.result, d.cause, d.decision_ms),
        None => (AmdResult::NotSure, "NOTSURE".into(), 0),
    }
}

/// Reads the clips listed in `labels` (a CSV with `file` and `label` columns and an optional
/// `source` column; paths relative to its directory). Errors: unreadable labels file or clip,
/// unknown label.
pub fn load_labelled(labels: &Path) -> anyhow::Result<Vec<LabelledClip>> {
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
    let source_col = headers.iter().position(|h| h == "source");
    let mut clips = Vec::new();
    for rec in rdr.records() {
        let rec = rec?;
        let file = rec.get(file_col).unwrap_or("").to_string();
        let label = rec.get(label_col).unwrap_or("").to_string();
        if !matches!(label.as_str(), "human" | "machine" | "silence") {
            bail!("{file}: unknown label {label:?} (human, machine, silence)");
        }
        let source = source_col
            .and_then(|c| rec.get(c))
            .filter(|s| !s.is_empty())
            .unwrap_or("all")
            .to_string();
        let samples = wav::read_8k_mono(&dir.join(&file))?;
        clips.push(LabelledClip {
            file,
            label,
            source,
            samples,
        });
    }
    if clips.is_empty() {
        bail!("{} lists no clips", labels.display());
    }
    Ok(clips)
}

/// Evaluates `cfg` over the clips listed in `labels` ([`load_labelled`]).
pub fn evaluate(labels: &Path, cfg: &AmdConfig) -> anyhow::Result<EvalReport> {
    evaluate_clips(&load_labelled(labels)?, cfg)
}

fn profile_name(cfg: &AmdConfig) -> anyhow::Result<&'static str> {
    Ok(match cfg {
        AmdConfig::Default(_) => "default",
        AmdConfig::Asterisk(_) => "asterisk",
        AmdConfig::Off => bail!("AMD profile `off` has nothing to evaluate"),
    })
}

fn clip_result(clip: &LabelledClip, result: AmdResult, cause: String, ms: u32) -> ClipResult {
    let correct = match clip.label.as_str() {
        "human" => result.routed_as_human(),
        _ => result == AmdResult::Machine,
    };
    ClipResult {
        file: clip.file.clone(),
        label: clip.label.clone(),
        source: clip.source.clone(),
        result: result.as_asterisk().to_string(),
        cause,
        decision_ms: ms,
        correct,
    }
}

/// Evaluates `cfg` over clips in memory. Errors: no clips, or the `off` profile.
pub fn evaluate_clips(clips: &[LabelledClip], cfg: &AmdConfig) -> anyhow::Result<EvalReport> {
    let profile = profile_name(cfg)?;
    let results = clips
        .iter()
        .map(|c| {
            let (result, cause, ms) = classify_samples(cfg, &c.samples);
            clip_result(c, result, cause, ms)
        })
        .collect();
    summarize(profile, results)
}

/// The figures over a set of clip results. Errors: no results.
pub fn summarize(profile: &str, results: Vec<ClipResult>) -> anyhow::Result<EvalReport> {
    if results.is_empty() {
        bail!("no clips to evaluate");
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

/// The report split by source (each with its own figures).
pub fn by_source(r: &EvalReport) -> anyhow::Result<BTreeMap<String, EvalReport>> {
    let mut groups: BTreeMap<String, Vec<ClipResult>> = BTreeMap::new();
    for c in &r.results {
        groups.entry(c.source.clone()).or_default().push(c.clone());
    }
    groups
        .into_iter()
        .map(|(k, v)| Ok((k, summarize(&r.profile, v)?)))
        .collect()
}

/// Per-frame features of a clip under the default profile's analyser (computed once, then
/// replayed with any timing parameters by [`classify_features`]).
pub fn default_features(p: &DefaultParams, samples: &[i16]) -> Vec<FrameFeatures> {
    let mut a = FrameAnalyzer::new(p);
    samples
        .chunks_exact(160)
        .map(|frame| a.analyze(frame))
        .collect()
}

/// The default profile's decision over stored features, with the frames at 20 ms intervals
/// of a virtual clock from the answer (as [`classify_samples`] feeds them).
pub fn classify_features(p: &DefaultParams, feats: &[FrameFeatures]) -> (AmdResult, String, u32) {
    let t0 = Instant::now();
    replay(
        &mut Decider::new(*p, t0),
        t0,
        feats,
        |d, now, f| d.step(now, f),
        |d| {
            let t = d.poll_timeout().unwrap_or(t0);
            d.handle_timeout(t)
        },
    )
}

/// What tuning minimises over the training clips: each human called a machine costs 5 (a
/// person hung up on), each machine or dead line routed as human 1 (a voicemail sent to an
/// agent), and every second of the median human decision time 1.
pub fn training_cost(results: &[&ClipResult]) -> f64 {
    let mut cost = 0.0;
    let mut human_ms = Vec::new();
    for r in results {
        if r.label == "human" {
            human_ms.push(r.decision_ms);
            if r.result == "MACHINE" {
                cost += 5.0;
            }
        } else if !r.correct {
            cost += 1.0;
        }
    }
    human_ms.sort_unstable();
    cost + percentile(&human_ms, 0.5) as f64 / 1000.0
}

/// One fold of a leave-one-source-out evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct Fold {
    /// The source held out: tuning never saw it.
    pub held_out: String,
    /// Index of the candidate chosen on the other sources.
    pub chosen: usize,
    /// The figures of that candidate on the held-out source.
    pub report: EvalReport,
}

/// Leave-one-source-out evaluation of the default profile: for each source, the candidate
/// parameter set with the lowest [`training_cost`] on **the other sources** is chosen, and
/// its figures on the held-out source are reported. Returns the folds (one per source) and
/// the candidate chosen on all sources together (what the shipped defaults should be).
///
/// The candidates must share the analyser's parameters (`highpass_hz`, `beep`): features are
/// computed once per clip and only the decision is replayed. Errors: no clips, fewer than
/// two sources, no candidates, or candidates that differ in the analyser's parameters.
pub fn leave_one_source_out(
    clips: &[LabelledClip],
    candidates: &[DefaultParams],
) -> anyhow::Result<(Vec<Fold>, usize)> {
    let Some(first) = candidates.first() else {
        bail!("no candidate parameters");
    };
    if candidates
        .iter()
        .any(|c| c.highpass_hz != first.highpass_hz || c.beep != first.beep)
    {
        bail!("candidates differ in highpass_hz or beep: tune only the decision parameters");
    }
    let sources: std::collections::BTreeSet<&str> =
        clips.iter().map(|c| c.source.as_str()).collect();
    if sources.len() < 2 {
        bail!("leave-one-source-out needs clips from two sources or more");
    }
    let feats: Vec<Vec<FrameFeatures>> = clips
        .iter()
        .map(|c| default_features(first, &c.samples))
        .collect();
    let per_candidate: Vec<Vec<ClipResult>> = candidates
        .iter()
        .map(|p| {
            clips
                .iter()
                .zip(&feats)
                .map(|(c, f)| {
                    let (result, cause, ms) = classify_features(p, f);
                    clip_result(c, result, cause, ms)
                })
                .collect()
        })
        .collect();
    let best = |keep: &dyn Fn(&ClipResult) -> bool| -> usize {
        let mut best = (0usize, f64::MAX);
        for (i, results) in per_candidate.iter().enumerate() {
            let train: Vec<&ClipResult> = results.iter().filter(|r| keep(r)).collect();
            let cost = training_cost(&train);
            if cost < best.1 {
                best = (i, cost);
            }
        }
        best.0
    };
    let mut folds = Vec::new();
    for s in sources {
        let chosen = best(&|r: &ClipResult| r.source != s);
        let held: Vec<ClipResult> = per_candidate[chosen]
            .iter()
            .filter(|r| r.source == s)
            .cloned()
            .collect();
        folds.push(Fold {
            held_out: s.to_string(),
            chosen,
            report: summarize("default", held)?,
        });
    }
    Ok((folds, best(&|_: &ClipResult| true)))
}

/// A table of per-source figures (one line per report), for the terminal and docs/amd.md.
pub fn render_table(rows: &[(String, &EvalReport)]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| source | clips | accuracy | humans → machine | machines → human | NOTSURE | human decision p50 |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for (name, r) in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} % | {:.1} % | {:.1} % | {:.1} % | {} ms |",
            name,
            r.clips,
            r.accuracy * 100.0,
            r.human_as_machine_rate * 100.0,
            r.machine_as_human_rate * 100.0,
            r.notsure_rate * 100.0,
            r.human_decision_ms_p50
        );
    }
    s
}
