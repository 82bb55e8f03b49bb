//! A labelled AMD corpus built from **real recorded voices**: the professional prompt sets
//! Debian ships for Asterisk (seven speakers in four languages), cut and chained the way
//! voicemail systems and people use them, over telephone-line conditions.
//!
//! Every clip is built from one [`Source`] only, so the corpus can be evaluated per source and
//! held out by source (`eval::leave_one_source_out`): a figure measured on a held-out source
//! predicts a voice the detector was never tuned on.
//!
//! What a clip is (all reproducible from the seed; nothing is downloaded):
//! * **machine** — a carrier voicemail chain as Asterisk's `VoiceMail()` plays it
//!   (`vm-theperson` + 3–4 digits + `vm-isunavail`/`vm-isonphone` + `vm-intro`, gaps of
//!   0.1–1.0 s between the prompt files), a "nobody is available" chain, a personal greeting
//!   of several phrases with 0.2–1.0 s pauses (sometimes opened by a short word: "Hello, …"),
//!   a short greeting ending in a beep, or a beep alone; half of them end with a beep — the
//!   source's own `beep` recording or a tone of 440–2000 Hz lasting 0.25–1 s;
//! * **human** — one short real word ("hello?"), the same word again after a 1.2–2.5 s wait
//!   ("hello? … hello?"), two words with a 0.15–1.0 s pause, or a short phrase (0.9–1.7 s),
//!   after an answer delay of 0.15–0.9 s, then the silence of someone waiting;
//! * **silence** — dead air or line noise only.
//!
//! Then the line: level (peak −3 to −24 dBFS), white, pink or brown noise at 12–45 dB SNR
//! (speech RMS over noise RMS) or none, G.711 µ-law or A-law, and 0–5 % of 20 ms frames lost
//! (replaced by silence, as a jitter buffer without concealment plays them).
//!
//! `asterisk-core-sounds-en*` and alsa-utils' sounds are deliberately **not** sources: they
//! are kept for an independent check of the detector.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::media::g711::Law;
use crate::media::wav;

/// One speaker: a Debian package of professionally recorded Asterisk prompts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// Short name used in file names, reports and `labels.csv` (`es-allison`, …).
    pub name: &'static str,
    /// The Debian package that installs it.
    pub package: &'static str,
    /// Its directory under the sounds directory (`/usr/share/asterisk/sounds`).
    pub dir: &'static str,
}

/// The seven sources: four `asterisk-core-sounds-*-wav` voices and three community prompt
/// sets (`.gsm` files for `es-co` and `fr-armelle`, decoded with `sox`).
pub const SOURCES: [Source; 7] = [
    Source {
        name: "es-allison",
        package: "asterisk-core-sounds-es-wav",
        dir: "es_MX_f_Allison",
    },
    Source {
        name: "fr-june",
        package: "asterisk-core-sounds-fr-wav",
        dir: "fr_CA_f_June",
    },
    Source {
        name: "it-carlo",
        package: "asterisk-core-sounds-it-wav",
        dir: "it_IT_m_Carlo",
    },
    Source {
        name: "ru-ivrvoice",
        package: "asterisk-core-sounds-ru-wav",
        dir: "ru_RU_f_IvrvoiceRU",
    },
    Source {
        name: "es-co",
        package: "asterisk-prompt-es-co",
        dir: "es",
    },
    Source {
        name: "fr-armelle",
        package: "asterisk-prompt-fr-armelle",
        dir: "fr",
    },
    Source {
        name: "it-menardi",
        package: "asterisk-prompt-it-menardi-wav",
        dir: "it_IT_f_Menardi",
    },
];

/// Where Debian installs the prompt packages.
pub const DEFAULT_SOUNDS_DIR: &str = "/usr/share/asterisk/sounds";

/// How many clips of each kind per source, and their length.
#[derive(Debug, Clone)]
pub struct CorpusOptions {
    /// The sounds directory (default [`DEFAULT_SOUNDS_DIR`]).
    pub sounds_dir: PathBuf,
    /// Human answers per source (60).
    pub humans: usize,
    /// Machine greetings per source (60).
    pub machines: usize,
    /// Dead-air and noise-only lines per source (8).
    pub silences: usize,
    /// Clip length, ms (6000: longer than any detector's analysis time).
    pub clip_ms: u32,
    /// Seed of the generator; the same seed gives the same samples.
    pub seed: u64,
}

impl Default for CorpusOptions {
    fn default() -> Self {
        Self {
            sounds_dir: PathBuf::from(DEFAULT_SOUNDS_DIR),
            humans: 60,
            machines: 60,
            silences: 8,
            clip_ms: 6000,
            seed: 2026,
        }
    }
}

/// One labelled clip, as the detector hears it (after the codec and the losses).
#[derive(Debug, Clone)]
pub struct CorpusClip {
    /// File name (`<source>-<label>-<nnn>.wav`).
    pub file: String,
    /// The [`Source`] name.
    pub source: String,
    /// `human`, `machine` or `silence`.
    pub label: String,
    /// How it was built (`word`, `word-again`, `two-words`, `phrase`, `carrier`,
    /// `carrier-nobody`, `personal`, `short-beep`, `beep-only`, `dead-air`, `noise`), with
    /// `+beep` when a beep ends it.
    pub kind: String,
    /// The codec it went through.
    pub law: Law,
    /// Peak level of the speech, dBFS.
    pub level_db: f32,
    /// Speech RMS over noise RMS, dB; `None` without added noise.
    pub snr_db: Option<f32>,
    /// Share of 20 ms frames lost, %.
    pub loss_pct: u32,
    /// 8 kHz samples, decoded from the codec.
    pub samples: Vec<i16>,
}

/// SplitMix64: a small, fixed generator, so a seed gives the same corpus on every machine and
/// with every version of the `rand` crate.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, p: f32) -> bool {
        self.unit() < p
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
    /// Roughly Gaussian (sum of four uniforms), unit variance.
    fn gauss(&mut self) -> f32 {
        (self.unit() + self.unit() + self.unit() + self.unit() - 2.0) * 1.732
    }
}

fn seed_of(name: &str, seed: u64) -> u64 {
    // FNV-1a of the source name, mixed with the seed.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Reads a prompt file as 8 kHz samples: `.wav` directly, `.gsm` through `sox`.
fn load(path: &Path) -> anyhow::Result<Vec<f32>> {
    let samples = if path.extension().is_some_and(|e| e == "gsm") {
        let out = Command::new("sox")
            .arg(path)
            .args([
                "-t", "raw", "-e", "signed", "-b", "16", "-r", "8000", "-c", "1", "-",
            ])
            .output()
            .context("running sox to decode a .gsm prompt (install the `sox` package)")?;
        if !out.status.success() {
            bail!(
                "sox could not decode {}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        out.stdout
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect()
    } else {
        wav::read_8k_mono(path)?
    };
    Ok(samples.into_iter().map(|s| s as f32).collect())
}

/// Cuts the silence before and after the speech of a prompt (10 ms blocks more than 30 dB
/// under the loudest block), keeping 10 ms on each side.
fn trim(x: &[f32]) -> Vec<f32> {
    let rms: Vec<f32> = x
        .chunks(80)
        .map(|c| (c.iter().map(|s| s * s).sum::<f32>() / c.len() as f32).sqrt())
        .collect();
    let peak = rms.iter().cloned().fold(0.0, f32::max);
    if peak <= 0.0 {
        return Vec::new();
    }
    let thr = peak * 0.03;
    let first = rms.iter().position(|r| *r >= thr).unwrap_or(0);
    let last = rms.iter().rposition(|r| *r >= thr).unwrap_or(0);
    let a = first.saturating_sub(1) * 80;
    let b = ((last + 2) * 80).min(x.len());
    x[a..b].to_vec()
}

fn ms(x: &[f32]) -> f32 {
    x.len() as f32 / 8.0
}

/// One source's prompts, trimmed and sorted by use.
struct Pool {
    /// Single words (0.25–0.9 s): digits, letters, short prompts.
    words: Vec<Vec<f32>>,
    /// Short phrases (0.9–1.7 s).
    phrases: Vec<Vec<f32>>,
    /// Greeting material (0.8–4 s).
    long: Vec<Vec<f32>>,
    digits: Vec<Vec<f32>>,
    theperson: Vec<f32>,
    unavail: Vec<Vec<f32>>,
    intro: Vec<Vec<f32>>,
    nobody: Vec<f32>,
    beep: Option<Vec<f32>>,
}

fn find(dir: &Path, stem: &str) -> Option<PathBuf> {
    ["wav", "gsm"]
        .iter()
        .map(|e| dir.join(format!("{stem}.{e}")))
        .find(|p| p.is_file())
}

fn need(dir: &Path, stem: &str) -> anyhow::Result<Vec<f32>> {
    let p = find(dir, stem).with_context(|| format!("{} has no {stem} prompt", dir.display()))?;
    Ok(trim(&load(&p)?))
}

fn list(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && p.extension().is_some_and(|e| e == "wav" || e == "gsm")
                        && !p
                            .file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("beep") || n.starts_with("silence"))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

impl Pool {
    fn load(src: &Source, sounds: &Path) -> anyhow::Result<Self> {
        let dir = sounds.join(src.dir);
        if !dir.is_dir() {
            bail!(
                "{} is missing: install the Debian package {}",
                dir.display(),
                src.package
            );
        }
        let mut digits = Vec::new();
        for d in 0..10 {
            digits.push(need(&dir.join("digits"), &d.to_string())?);
        }
        let mut words = digits.clone();
        let mut phrases = Vec::new();
        let mut long = Vec::new();
        let mut files = list(&dir);
        files.extend(list(&dir.join("letters")));
        for p in files {
            let x = trim(&load(&p)?);
            let d = ms(&x);
            if (250.0..900.0).contains(&d) {
                words.push(x.clone());
            }
            if (900.0..1700.0).contains(&d) {
                phrases.push(x.clone());
            }
            if (800.0..4000.0).contains(&d) {
                long.push(x);
            }
        }
        if words.len() < 10 || phrases.len() < 5 || long.len() < 10 {
            bail!("{}: too few prompts to build clips from", dir.display());
        }
        let beep = find(&dir, "beep")
            .map(|p| load(&p))
            .transpose()?
            .map(|b| trim(&b));
        Ok(Self {
            words,
            phrases,
            long,
            digits,
            theperson: need(&dir, "vm-theperson")?,
            unavail: vec![need(&dir, "vm-isunavail")?, need(&dir, "vm-isonphone")?],
            intro: vec![need(&dir, "vm-intro")?, need(&dir, "vm-leavemsg")?],
            nobody: need(&dir, "vm-nobodyavail")?,
            beep,
        })
    }
}

/// A clip being laid out: prompts placed one after another on a timeline of samples, with
/// pauses between them; what runs past the clip's end is cut.
struct Timeline {
    x: Vec<f32>,
    at: usize,
}

impl Timeline {
    fn new(clip_ms: u32) -> Self {
        Self {
            x: vec![0.0; clip_ms as usize * 8],
            at: 0,
        }
    }
    fn pause(&mut self, ms: f32) {
        self.at += (ms * 8.0) as usize;
    }
    fn put(&mut self, seg: &[f32], gain: f32) {
        for (i, s) in seg.iter().enumerate() {
            if let Some(o) = self.x.get_mut(self.at + i) {
                *o += s * gain;
            }
        }
        self.at += seg.len();
    }
    fn full(&self) -> bool {
        self.at >= self.x.len()
    }
}

/// One prompt of a pool, at random.
fn one<'a>(rng: &mut Rng, v: &'a [Vec<f32>]) -> &'a [f32] {
    &v[rng.below(v.len())]
}

fn tone(rng: &mut Rng) -> Vec<f32> {
    let hz = *rng.pick(&[440.0f32, 700.0, 850.0, 1000.0, 1100.0, 1400.0, 2000.0]);
    let len = rng.range(250.0, 1000.0);
    let n = (len * 8.0) as usize;
    let ramp = 80usize;
    (0..n)
        .map(|i| {
            let env = (i.min(n - i) as f32 / ramp as f32).min(1.0);
            env * 12000.0 * (2.0 * std::f32::consts::PI * hz * i as f32 / 8000.0).sin()
        })
        .collect()
}

fn beep(pool: &Pool, rng: &mut Rng) -> Vec<f32> {
    match &pool.beep {
        Some(b) if rng.chance(0.5) => b.clone(),
        _ => tone(rng),
    }
}

/// Lays out a machine greeting; returns its kind.
fn machine(pool: &Pool, rng: &mut Rng, t: &mut Timeline) -> String {
    t.pause(rng.range(100.0, 800.0));
    let mut with_beep = rng.chance(0.5);
    let r = rng.unit();
    let kind = if r < 0.35 {
        // "The person at extension 4 5 6 is unavailable. Please leave your message after
        // the tone…": Asterisk VoiceMail's unavailable greeting, prompt after prompt.
        t.put(&pool.theperson, 1.0);
        t.pause(rng.range(100.0, 1000.0));
        for _ in 0..3 + rng.below(2) {
            t.put(one(rng, &pool.digits), 1.0);
            t.pause(rng.range(50.0, 600.0));
        }
        t.pause(rng.range(50.0, 400.0));
        t.put(one(rng, &pool.unavail), 1.0);
        t.pause(rng.range(100.0, 1000.0));
        t.put(one(rng, &pool.intro), 1.0);
        "carrier"
    } else if r < 0.5 {
        t.put(&pool.nobody, 1.0);
        t.pause(rng.range(100.0, 1000.0));
        t.put(one(rng, &pool.intro), 1.0);
        "carrier-nobody"
    } else if r < 0.85 {
        // A personal greeting: phrases with the pauses people leave, sometimes opened with a
        // short word ("Hello, …") said straight into the rest.
        if rng.chance(0.5) {
            t.put(one(rng, &pool.words), rng.range(0.8, 1.1));
            t.pause(rng.range(100.0, 450.0));
        }
        while !t.full() {
            t.put(one(rng, &pool.long), rng.range(0.8, 1.1));
            t.pause(rng.range(200.0, 1000.0));
        }
        "personal"
    } else if r < 0.95 {
        // "Leave a message" and the beep: a short greeting that is over within the window.
        t.put(one(rng, &pool.long), 1.0);
        if rng.chance(0.5) {
            t.pause(rng.range(100.0, 500.0));
            t.put(one(rng, &pool.phrases), 1.0);
        }
        t.pause(rng.range(100.0, 600.0));
        with_beep = true;
        "short-beep"
    } else {
        with_beep = true;
        "beep-only"
    };
    if with_beep {
        t.put(&beep(pool, rng), 1.0);
        format!("{kind}+beep")
    } else {
        kind.to_string()
    }
}

/// Lays out a human answer; returns its kind.
fn human(pool: &Pool, rng: &mut Rng, t: &mut Timeline) -> String {
    t.pause(rng.range(150.0, 900.0));
    let g = |rng: &mut Rng| rng.range(0.7, 1.2);
    let r = rng.unit();
    if r < 0.35 {
        t.put(one(rng, &pool.words), g(rng));
        "word"
    } else if r < 0.6 {
        // "Hello? … hello?"
        let w = one(rng, &pool.words).to_vec();
        t.put(&w, g(rng));
        t.pause(rng.range(1200.0, 2500.0));
        let again = if rng.chance(0.6) {
            w
        } else {
            one(rng, &pool.words).to_vec()
        };
        t.put(&again, g(rng));
        "word-again"
    } else if r < 0.8 {
        t.put(one(rng, &pool.words), g(rng));
        t.pause(rng.range(150.0, 1000.0));
        t.put(one(rng, &pool.words), g(rng));
        "two-words"
    } else {
        t.put(one(rng, &pool.phrases), g(rng));
        if rng.chance(0.5) {
            t.pause(rng.range(1500.0, 2500.0));
            t.put(one(rng, &pool.words), g(rng));
        }
        "phrase"
    }
    .to_string()
}

/// White, pink (Paul Kellet's filter) or brown noise of unit RMS.
fn noise(rng: &mut Rng, n: usize, colour: u8) -> Vec<f32> {
    let mut v = Vec::with_capacity(n);
    let (mut b0, mut b1, mut b2, mut brown) = (0f32, 0f32, 0f32, 0f32);
    for _ in 0..n {
        let w = rng.gauss();
        let s = match colour {
            0 => w,
            1 => {
                b0 = 0.99765 * b0 + w * 0.0990460;
                b1 = 0.96300 * b1 + w * 0.2965164;
                b2 = 0.57000 * b2 + w * 1.0526913;
                b0 + b1 + b2 + w * 0.1848
            }
            _ => {
                brown = 0.995 * brown + w * 0.1;
                brown
            }
        };
        v.push(s);
    }
    let rms = (v.iter().map(|s| s * s).sum::<f32>() / n.max(1) as f32).sqrt();
    if rms > 0.0 {
        v.iter_mut().for_each(|s| *s /= rms);
    }
    v
}

fn db(x: f32) -> f32 {
    10f32.powf(x / 20.0)
}

/// Level, noise, codec and loss; returns the clip's metadata and samples.
fn line(rng: &mut Rng, mut x: Vec<f32>, silent: bool) -> (Law, f32, Option<f32>, u32, Vec<i16>) {
    let colour = rng.below(3) as u8;
    let (level_db, snr) = if silent {
        // Dead air (a faint hiss) or line noise alone.
        let lvl = if rng.chance(0.4) {
            -75.0
        } else {
            rng.range(-60.0, -35.0)
        };
        let nz = noise(rng, x.len(), colour);
        x.iter_mut()
            .zip(&nz)
            .for_each(|(s, n)| *s = n * 32768.0 * db(lvl));
        (lvl, None)
    } else {
        let peak = x.iter().fold(0f32, |m, s| m.max(s.abs())).max(1.0);
        let level_db = rng.range(-24.0, -3.0);
        let gain = 32767.0 * db(level_db) / peak;
        x.iter_mut().for_each(|s| *s *= gain);
        // RMS of the speech frames (20 ms frames within 30 dB of the loudest).
        let frames: Vec<f32> = x
            .chunks(160)
            .map(|c| c.iter().map(|s| s * s).sum::<f32>() / c.len() as f32)
            .collect();
        let loud = frames.iter().cloned().fold(0.0, f32::max);
        let active: Vec<f32> = frames.into_iter().filter(|e| *e >= loud * 1e-3).collect();
        let speech_rms = (active.iter().sum::<f32>() / active.len().max(1) as f32).sqrt();
        let snr = if rng.chance(0.2) {
            None
        } else {
            Some(rng.range(12.0, 45.0))
        };
        let noise_rms = match snr {
            Some(s) => speech_rms / db(s),
            None => 32768.0 * db(-80.0),
        };
        let nz = noise(rng, x.len(), colour);
        x.iter_mut().zip(&nz).for_each(|(s, n)| *s += n * noise_rms);
        (level_db, snr)
    };
    let law = if rng.chance(0.5) {
        Law::Pcmu
    } else {
        Law::Pcma
    };
    let loss_pct = *rng.pick(&[0u32, 0, 1, 3, 5]);
    let mut out = vec![0i16; x.len()];
    let mut byte = [0u8; 1];
    for (o, s) in out.iter_mut().zip(&x) {
        byte[0] = law.encode(s.round().clamp(-32768.0, 32767.0) as i16);
        law.decode_into(&byte, std::slice::from_mut(o));
    }
    for frame in out.chunks_mut(160) {
        if rng.unit() * 100.0 < loss_pct as f32 {
            frame.iter_mut().for_each(|s| *s = 0);
        }
    }
    (law, level_db, snr, loss_pct, out)
}

/// Builds one source's clips. Errors: the source's package is not installed, a prompt is
/// missing or cannot be decoded.
pub fn build_source(src: &Source, opts: &CorpusOptions) -> anyhow::Result<Vec<CorpusClip>> {
    let pool = Pool::load(src, &opts.sounds_dir)?;
    let mut rng = Rng(seed_of(src.name, opts.seed));
    let mut clips = Vec::new();
    let plan = std::iter::repeat_n("human", opts.humans)
        .chain(std::iter::repeat_n("machine", opts.machines))
        .chain(std::iter::repeat_n("silence", opts.silences));
    for (i, label) in plan.enumerate() {
        let mut t = Timeline::new(opts.clip_ms);
        let kind = match label {
            "human" => human(&pool, &mut rng, &mut t),
            "machine" => machine(&pool, &mut rng, &mut t),
            _ => {
                if rng.chance(0.4) {
                    "dead-air".to_string()
                } else {
                    "noise".to_string()
                }
            }
        };
        let (law, level_db, snr_db, loss_pct, samples) = line(&mut rng, t.x, label == "silence");
        clips.push(CorpusClip {
            file: format!("{}-{label}-{i:03}.wav", src.name),
            source: src.name.to_string(),
            label: label.to_string(),
            kind,
            law,
            level_db,
            snr_db,
            loss_pct,
            samples,
        });
    }
    Ok(clips)
}

/// Builds the clips of every source in [`SOURCES`] (or only those named in `only`).
pub fn build(opts: &CorpusOptions, only: &[String]) -> anyhow::Result<Vec<CorpusClip>> {
    let mut all = Vec::new();
    for src in SOURCES
        .iter()
        .filter(|s| only.is_empty() || only.iter().any(|o| o == s.name))
    {
        all.extend(build_source(src, opts)?);
    }
    if all.is_empty() {
        bail!("no source matched {only:?}");
    }
    Ok(all)
}

/// Writes the clips as G.711 WAV files (each in its own law) and `labels.csv`
/// (`file,label,source,kind,codec,level_db,snr_db,loss_pct`) into `dir`.
pub fn write(dir: &Path, clips: &[CorpusClip]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut w = csv::Writer::from_path(dir.join("labels.csv"))?;
    w.write_record([
        "file", "label", "source", "kind", "codec", "level_db", "snr_db", "loss_pct",
    ])?;
    for c in clips {
        wav::write_g711(&dir.join(&c.file), c.law, &c.samples)?;
        w.write_record([
            c.file.as_str(),
            &c.label,
            &c.source,
            &c.kind,
            match c.law {
                Law::Pcmu => "pcmu",
                Law::Pcma => "pcma",
            },
            &format!("{:.1}", c.level_db),
            &c.snr_db.map(|s| format!("{s:.1}")).unwrap_or_default(),
            &c.loss_pct.to_string(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_fixed() {
        let mut r = Rng(1);
        let a: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        let mut r = Rng(1);
        let b: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(a, b);
        assert_ne!(a[0], a[1]);
    }

    #[test]
    fn trim_cuts_leading_and_trailing_silence() {
        let mut x = vec![0.0f32; 800];
        x.extend((0..1600).map(|i| 5000.0 * (i as f32 * 0.3).sin()));
        x.extend(vec![0.0; 800]);
        let t = trim(&x);
        assert!((1600..=1800).contains(&t.len()), "{}", t.len());
    }
}
