//! Pacing: how many calls to place now, from the live state of agents and calls — a sans-IO
//! state machine fed with call outcomes and snapshots at a time `now`, as the simulator (the
//! shell crate's `pacing::sim`) and the campaign core feed it. The model is in `docs/pacing.md`.
//!
//! Modes ([`DialMode`]):
//! * `preview`: nothing is dialled automatically (an agent asks for the next lead).
//! * `progressive`: one call per available agent × `boost_factor`, less the calls already
//!   ringing or waiting.
//! * `predictive`: the expected number of agents free when a call placed now would be
//!   answered by a person, divided by the live human-answer rate, times an over-dial factor
//!   that a feedback loop on the measured abandon rate keeps under the cap.
//! * `adaptive`: Vicidial's adaptive dial level (`AST_VDadapt.pl`) as the baseline to beat:
//!   lines = agents × dial level, the level nudged every `interval` from agents waiting minus
//!   calls waiting, and held at 1 while the drop rate is over the cap (`ADAPT_HARD_LIMIT`).
//! * `broadcast`: no agents; as many calls as the rate limits allow.
//!
//! Everywhere: no new call while `max_waiting_calls` answered calls wait for an agent, and
//! the campaign auto-pauses when more than `auto_pause.waiting_above` calls wait for longer
//! than `auto_pause.after` (resuming once the queue is empty and an agent is free).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How a campaign dials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DialMode {
    /// Agents pull leads one at a time: nothing is placed automatically.
    Preview,
    /// One call per available agent × `boost_factor`.
    #[default]
    Progressive,
    /// Dial ratio from the live answer rate, handle time and agents about to free up, under
    /// the abandon-rate cap.
    Predictive,
    /// Vicidial's adaptive dial level (the baseline).
    Adaptive,
    /// No agents: a message or an IVR; only the rate limits apply.
    Broadcast,
}

impl DialMode {
    /// `preview`, `progressive`, `predictive`, `adaptive`, `broadcast`.
    pub fn as_str(self) -> &'static str {
        match self {
            DialMode::Preview => "preview",
            DialMode::Progressive => "progressive",
            DialMode::Predictive => "predictive",
            DialMode::Adaptive => "adaptive",
            DialMode::Broadcast => "broadcast",
        }
    }
}

/// Auto-pause: more than `waiting_above` answered calls waiting for an agent for `after`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutoPause {
    /// Calls waiting (strictly more than this).
    pub waiting_above: u32,
    /// For at least this long.
    pub after: Duration,
}

/// Vicidial's adaptive settings (the `adaptive` mode).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptConfig {
    /// How often the level is reviewed (`AST_VDadapt.pl` runs every 15 s).
    pub interval: Duration,
    /// Step of a review, dial-level units (Vicidial's adapt intensity: 0.1 here).
    pub step: f64,
    /// Highest dial level (`adaptive_maximum_level`, 3.0 by default in Vicidial).
    pub max_level: f64,
    /// Hold the level at 1.0 while the drop rate is over the cap (`ADAPT_HARD_LIMIT`).
    pub hard_limit: bool,
}

impl Default for AdaptConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(15),
            step: 0.1,
            max_level: 3.0,
            hard_limit: true,
        }
    }
}

/// A pacer's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PacerConfig {
    /// The mode.
    pub mode: DialMode,
    /// Calls per available agent in `progressive` (default 1).
    pub boost_factor: f64,
    /// No new calls while this many answered calls wait for an agent (default 2).
    pub max_waiting_calls: u32,
    /// Abandon-rate cap, 0–1 (default 0.03: US TSR and UK Ofcom).
    pub abandon_cap: f64,
    /// The window the abandon rate is measured over (default 24 h, Ofcom; US TSR: 30 days).
    pub window: Duration,
    /// Share of live people AMD takes for machines and hangs up on; Ofcom counts those as
    /// abandoned, so `estimated × answered-as-machine` is added to the abandoned count.
    pub amd_false_positive: f64,
    /// Highest lines per agent a predictive pacer may use (default 5).
    pub max_dial_ratio: f64,
    /// Auto-pause rule (none: never).
    pub auto_pause: Option<AutoPause>,
    /// `adaptive` mode settings.
    pub adapt: AdaptConfig,
}

impl Default for PacerConfig {
    fn default() -> Self {
        Self {
            mode: DialMode::Progressive,
            boost_factor: 1.0,
            max_waiting_calls: 2,
            abandon_cap: 0.03,
            window: Duration::from_secs(24 * 3600),
            amd_false_positive: 0.0,
            max_dial_ratio: 5.0,
            auto_pause: None,
            adapt: AdaptConfig::default(),
        }
    }
}

/// The live state a decision is made from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Agents idle and ready for a call.
    pub agents_available: u32,
    /// Agents talking to a customer.
    pub agents_on_call: u32,
    /// Agents in after-call work.
    pub agents_wrap_up: u32,
    /// Calls placed and not answered yet (ringing, or AMD still deciding).
    pub calls_dialing: u32,
    /// Answered people waiting for an agent.
    pub calls_waiting: u32,
}

/// What happened to a call, for the pacer's statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// Ended without reaching anybody (no answer, busy, failed …) after `ring`.
    NotReached {
        /// INVITE → end.
        ring: Duration,
    },
    /// Answered and classified a machine by AMD, after `ring`.
    Machine {
        /// INVITE → answer.
        ring: Duration,
    },
    /// Answered by a person (who now waits for an agent), after `ring` (AMD included).
    Human {
        /// INVITE → queued.
        ring: Duration,
    },
    /// A waiting person was connected to an agent after `wait`.
    Connected {
        /// Queue wait.
        wait: Duration,
    },
    /// A waiting person was abandoned (hung up, or `max_wait` passed).
    Abandoned,
    /// An agent finished a call and its wrap-up: talk + wrap-up time.
    AgentFree {
        /// Talk + after-call work.
        busy: Duration,
    },
}

/// A change the pacer reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacerEvent {
    /// Dialling stopped by the auto-pause rule (too many answered calls wait for an agent).
    AutoPaused,
    /// Dialling resumed after an auto-pause (`agents_free`).
    Resumed,
}

/// Exponential moving average.
#[derive(Debug, Clone, Copy)]
struct Ema {
    value: f64,
    alpha: f64,
    seen: bool,
}

impl Ema {
    fn new(initial: f64, alpha: f64) -> Self {
        Self {
            value: initial,
            alpha,
            seen: false,
        }
    }
    fn add(&mut self, x: f64) {
        if self.seen {
            self.value += self.alpha * (x - self.value);
        } else {
            self.value = x;
            self.seen = true;
        }
    }
}

/// The pacer of one campaign. See the module docs.
#[derive(Debug)]
pub struct Pacer {
    cfg: PacerConfig,
    /// Share of placed calls answered by a person.
    human_rate: Ema,
    /// INVITE → person answered (queued), seconds.
    time_to_human: Ema,
    /// Agent busy time per connected call (talk + wrap-up), seconds.
    busy_time: Ema,
    /// Per person answered in the window: (when, abandoned).
    window: VecDeque<(Instant, bool)>,
    window_humans: u64,
    window_abandoned: u64,
    /// Machines answered in the window (AMD false positives are estimated from them).
    machines: VecDeque<Instant>,
    /// Totals since the start.
    humans_total: u64,
    abandoned_total: u64,
    machines_total: u64,
    /// Recent persons (for the predictive feedback): abandoned or not.
    recent: VecDeque<bool>,
    /// Predictive safety margin, standard deviations.
    z: f64,
    /// Predictive: lines out per agent expected free, at the last decision.
    ratio: f64,
    /// Adaptive: Vicidial's dial level and its next review.
    level: f64,
    next_review: Option<Instant>,
    /// Auto-pause state.
    waiting_since: Option<Instant>,
    paused: bool,
    events: VecDeque<PacerEvent>,
}

/// Recent persons the predictive feedback looks at.
const RECENT: usize = 200;

impl Pacer {
    /// A pacer with `cfg`.
    pub fn new(cfg: PacerConfig) -> Self {
        Self {
            cfg,
            human_rate: Ema::new(0.3, 0.01),
            time_to_human: Ema::new(15.0, 0.05),
            busy_time: Ema::new(120.0, 0.05),
            window: VecDeque::new(),
            window_humans: 0,
            window_abandoned: 0,
            machines: VecDeque::new(),
            humans_total: 0,
            abandoned_total: 0,
            machines_total: 0,
            recent: VecDeque::new(),
            z: 2.0,
            ratio: 0.0,
            level: 1.0,
            next_review: None,
            waiting_since: None,
            paused: false,
            events: VecDeque::new(),
        }
    }

    /// Records what happened to a call at `now`.
    pub fn record(&mut self, now: Instant, o: Outcome) {
        match o {
            Outcome::NotReached { .. } => self.human_rate.add(0.0),
            Outcome::Machine { .. } => {
                self.human_rate.add(0.0);
                self.machines.push_back(now);
                self.machines_total += 1;
            }
            Outcome::Human { ring } => {
                self.human_rate.add(1.0);
                self.time_to_human.add(ring.as_secs_f64());
            }
            Outcome::Connected { .. } => self.person(now, false),
            Outcome::Abandoned => self.person(now, true),
            Outcome::AgentFree { busy } => self.busy_time.add(busy.as_secs_f64()),
        }
        self.expire(now);
        if self.cfg.mode == DialMode::Predictive
            && matches!(o, Outcome::Connected { .. } | Outcome::Abandoned)
        {
            self.steer();
        }
    }

    fn person(&mut self, now: Instant, abandoned: bool) {
        self.window.push_back((now, abandoned));
        self.window_humans += 1;
        self.window_abandoned += u64::from(abandoned);
        self.humans_total += 1;
        self.abandoned_total += u64::from(abandoned);
        self.recent.push_back(abandoned);
        if self.recent.len() > RECENT {
            self.recent.pop_front();
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((t, a)) = self.window.front().copied() {
            if now.saturating_duration_since(t) <= self.cfg.window {
                break;
            }
            self.window.pop_front();
            self.window_humans -= 1;
            self.window_abandoned -= u64::from(a);
        }
        while let Some(t) = self.machines.front().copied() {
            if now.saturating_duration_since(t) <= self.cfg.window {
                break;
            }
            self.machines.pop_front();
        }
    }

    /// Abandon rate over the window, 0–1: (abandoned + estimated AMD false positives) /
    /// (people answered + estimated false positives).
    pub fn abandon_rate(&self) -> f64 {
        rate(
            self.window_abandoned,
            self.window_humans,
            self.machines.len() as u64,
            self.cfg.amd_false_positive,
        )
    }

    /// Abandon rate since the start, counted the same way.
    pub fn abandon_rate_total(&self) -> f64 {
        rate(
            self.abandoned_total,
            self.humans_total,
            self.machines_total,
            self.cfg.amd_false_positive,
        )
    }

    /// The current dial ratio: lines per agent the pacer aims at (1 in progressive with no
    /// boost; the adaptive level; the predictive lines per free agent).
    pub fn dial_ratio(&self) -> f64 {
        match self.cfg.mode {
            DialMode::Progressive => self.cfg.boost_factor,
            DialMode::Adaptive => self.level,
            DialMode::Predictive => self.ratio,
            DialMode::Preview | DialMode::Broadcast => 0.0,
        }
    }

    /// True while auto-paused.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// The next auto-pause/resume change.
    pub fn poll_event(&mut self) -> Option<PacerEvent> {
        self.events.pop_front()
    }

    /// When the pacer wants to be asked again even if nothing happens (adaptive reviews,
    /// the auto-pause timer).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let pause = match (self.cfg.auto_pause, self.waiting_since) {
            (Some(a), Some(t)) if !self.paused => Some(t + a.after),
            _ => None,
        };
        [self.next_review, pause].into_iter().flatten().min()
    }

    /// Predictive feedback on the safety margin `z` (standard deviations of the people
    /// expected to answer kept free). The queue's share of the cap is its budget: 80 % of
    /// the cap less what AMD false positives take (they count as abandoned). `z` rises when
    /// the last 200 people abandoned more than the budget (fast when twice as much, or when
    /// the window's rate nears the cap) and falls slowly when they abandoned under half of
    /// it. It starts cautious (z = 2) and earns its way down.
    fn steer(&mut self) {
        let cap = self.cfg.abandon_cap;
        let est_fp = self.cfg.amd_false_positive / (1.0 - self.cfg.amd_false_positive).max(0.01);
        let budget = (cap * 0.8 - est_fp).max(cap * 0.1);
        let queue =
            self.recent.iter().filter(|a| **a).count() as f64 / self.recent.len().max(1) as f64;
        let long = self.abandon_rate();
        if long >= cap * 0.9 || queue > budget * 2.0 {
            self.z = (self.z + 0.3).min(6.0);
        } else if queue > budget {
            self.z = (self.z + 0.1).min(6.0);
        } else if queue < budget * 0.5 && long < cap * 0.8 {
            self.z = (self.z - 0.01).max(0.3);
        }
    }

    /// How many calls to place now, given the live state.
    pub fn calls_to_place(&mut self, now: Instant, s: &Snapshot) -> u32 {
        self.expire(now);
        self.auto_pause(now, s);
        if self.paused || self.cfg.mode == DialMode::Preview {
            return 0;
        }
        if self.cfg.mode != DialMode::Broadcast && s.calls_waiting >= self.cfg.max_waiting_calls {
            return 0;
        }
        let agents = s.agents_available + s.agents_on_call + s.agents_wrap_up;
        match self.cfg.mode {
            DialMode::Preview => 0,
            DialMode::Broadcast => u32::MAX,
            DialMode::Progressive => {
                let lines = (f64::from(s.agents_available) * self.cfg.boost_factor).floor() as u32;
                lines.saturating_sub(s.calls_dialing + s.calls_waiting)
            }
            DialMode::Adaptive => {
                self.review(now, s);
                // Vicidial: goal = live agents × dial level; calls in progress (ringing,
                // waiting, with agents) count against it.
                let goal = (f64::from(agents) * self.level).ceil() as u32;
                goal.saturating_sub(s.calls_dialing + s.calls_waiting + s.agents_on_call)
            }
            DialMode::Predictive => {
                let p = self.human_rate.value.clamp(0.02, 1.0);
                let t = self.time_to_human.value.max(1.0);
                let h = self.busy_time.value.max(1.0);
                // Agents on a call or in wrap-up free up within t with probability
                // 1 − e^(−t/h) (busy times taken as exponential).
                let freeing =
                    f64::from(s.agents_on_call + s.agents_wrap_up) * (1.0 - (-t / h).exp());
                let free_then = f64::from(s.agents_available) + freeing;
                let coming = f64::from(s.calls_dialing) * p + f64::from(s.calls_waiting);
                // People arrive about as a Poisson stream of mean x = coming + n·p: place the
                // largest n with x + z·√x ≤ agents free then, i.e. √x ≤ (√(z² + 4F) − z) / 2.
                let root = ((self.z * self.z + 4.0 * free_then).sqrt() - self.z) / 2.0;
                let x_max = root * root;
                let mut lines = ((x_max - coming) / p).max(0.0);
                // Never fewer than progressive would place for agents idle right now.
                let progressive =
                    f64::from(s.agents_available) - f64::from(s.calls_dialing + s.calls_waiting);
                lines = lines.max(progressive);
                self.ratio = (lines + f64::from(s.calls_dialing)) / free_then.max(1.0);
                let cap = f64::from(agents) * self.cfg.max_dial_ratio - f64::from(s.calls_dialing);
                lines.min(cap).max(0.0).floor() as u32
            }
        }
    }

    /// Adaptive: review the dial level every `interval` (`AST_VDadapt.pl`).
    fn review(&mut self, now: Instant, s: &Snapshot) {
        let a = self.cfg.adapt;
        let due = self.next_review.is_none_or(|t| t <= now);
        if !due {
            return;
        }
        self.next_review = Some(now + a.interval);
        if a.hard_limit && self.abandon_rate() > self.cfg.abandon_cap {
            self.level = 1.0;
            return;
        }
        let diff = i64::from(s.agents_available) - i64::from(s.calls_waiting);
        if diff > 0 {
            self.level = (self.level + a.step * diff.min(5) as f64).min(a.max_level);
        } else if diff < 0 || s.calls_waiting > 0 {
            self.level = (self.level - a.step * (-diff).clamp(1, 5) as f64).max(1.0);
        }
    }

    fn auto_pause(&mut self, now: Instant, s: &Snapshot) {
        let Some(a) = self.cfg.auto_pause else { return };
        if self.paused {
            if s.calls_waiting == 0 && s.agents_available > 0 {
                self.paused = false;
                self.waiting_since = None;
                self.events.push_back(PacerEvent::Resumed);
            }
            return;
        }
        if s.calls_waiting > a.waiting_above {
            let since = *self.waiting_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= a.after {
                self.paused = true;
                self.events.push_back(PacerEvent::AutoPaused);
            }
        } else {
            self.waiting_since = None;
        }
    }
}

fn rate(abandoned: u64, humans: u64, machines: u64, fp: f64) -> f64 {
    // AMD hang-ups on people: of the calls taken for machines, a share `fp / (1 − fp)` of the
    // people answered, at most every machine.
    let est = (humans as f64 * fp / (1.0 - fp).max(0.01)).min(machines as f64);
    let denom = humans as f64 + est;
    if denom == 0.0 {
        0.0
    } else {
        (abandoned as f64 + est) / denom
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(avail: u32, on_call: u32, dialing: u32, waiting: u32) -> Snapshot {
        Snapshot {
            agents_available: avail,
            agents_on_call: on_call,
            agents_wrap_up: 0,
            calls_dialing: dialing,
            calls_waiting: waiting,
        }
    }

    #[test]
    fn progressive_places_one_per_free_agent_times_boost_and_stops_at_max_waiting() {
        let t0 = Instant::now();
        let mut p = Pacer::new(PacerConfig {
            boost_factor: 2.0,
            ..PacerConfig::default()
        });
        assert_eq!(p.calls_to_place(t0, &snap(3, 5, 1, 0)), 5);
        assert_eq!(p.calls_to_place(t0, &snap(3, 5, 1, 1)), 4);
        assert_eq!(
            p.calls_to_place(t0, &snap(3, 5, 0, 2)),
            0,
            "max_waiting_calls"
        );
        p.cfg.mode = DialMode::Preview;
        assert_eq!(p.calls_to_place(t0, &snap(3, 0, 0, 0)), 0);
    }

    #[test]
    fn auto_pause_triggers_after_the_delay_and_releases_when_agents_free() {
        let t0 = Instant::now();
        let mut p = Pacer::new(PacerConfig {
            max_waiting_calls: 10,
            auto_pause: Some(AutoPause {
                waiting_above: 3,
                after: Duration::from_secs(5),
            }),
            ..PacerConfig::default()
        });
        assert!(p.calls_to_place(t0, &snap(2, 0, 0, 4)) == 0 || !p.is_paused());
        assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_secs(5)));
        p.calls_to_place(t0 + Duration::from_secs(4), &snap(0, 5, 0, 4));
        assert!(!p.is_paused());
        p.calls_to_place(t0 + Duration::from_secs(5), &snap(0, 5, 0, 4));
        assert!(p.is_paused());
        assert_eq!(p.poll_event(), Some(PacerEvent::AutoPaused));
        assert_eq!(
            p.calls_to_place(t0 + Duration::from_secs(6), &snap(3, 2, 0, 1)),
            0
        );
        assert!(p.is_paused(), "still a call waiting");
        assert_eq!(
            p.calls_to_place(t0 + Duration::from_secs(7), &snap(3, 2, 0, 0)),
            3
        );
        assert_eq!(p.poll_event(), Some(PacerEvent::Resumed));
    }

    #[test]
    fn abandon_rate_counts_amd_false_positives_and_forgets_outside_the_window() {
        let t0 = Instant::now();
        let mut p = Pacer::new(PacerConfig {
            amd_false_positive: 0.02,
            window: Duration::from_secs(3600),
            ..PacerConfig::default()
        });
        for i in 0..98 {
            p.record(
                t0,
                Outcome::Connected {
                    wait: Duration::ZERO,
                },
            );
            let _ = i;
        }
        p.record(t0, Outcome::Abandoned);
        p.record(t0, Outcome::Abandoned);
        for _ in 0..50 {
            p.record(
                t0,
                Outcome::Machine {
                    ring: Duration::from_secs(5),
                },
            );
        }
        // 2 abandoned of 100 people, plus ~2.04 people taken for machines.
        let est = 100.0 * 0.02 / 0.98;
        let want = (2.0 + est) / (100.0 + est);
        assert!(
            (p.abandon_rate() - want).abs() < 1e-9,
            "{}",
            p.abandon_rate()
        );
        p.record(
            t0 + Duration::from_secs(3601),
            Outcome::NotReached {
                ring: Duration::ZERO,
            },
        );
        assert_eq!(p.abandon_rate(), 0.0);
        assert!(p.abandon_rate_total() > 0.0);
    }

    #[test]
    fn adaptive_raises_the_level_while_agents_wait_and_holds_it_at_one_over_the_cap() {
        let t0 = Instant::now();
        let mut p = Pacer::new(PacerConfig {
            mode: DialMode::Adaptive,
            ..PacerConfig::default()
        });
        for i in 0..10 {
            p.calls_to_place(t0 + Duration::from_secs(15 * i), &snap(4, 6, 0, 0));
        }
        assert!(p.dial_ratio() > 2.0, "{}", p.dial_ratio());
        for _ in 0..10 {
            p.record(t0, Outcome::Abandoned);
        }
        p.calls_to_place(t0 + Duration::from_secs(200), &snap(4, 6, 0, 0));
        assert_eq!(p.dial_ratio(), 1.0);
    }
}
