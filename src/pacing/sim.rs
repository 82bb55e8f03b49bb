//! A deterministic simulator of a dialling floor: a population of callees (answer
//! probability, ring times, machine share, AMD mistakes) and agents (talk time, wrap-up),
//! driving the real [`Pacer`] on a virtual clock with a seeded random generator, so pacing is
//! tested and tuned in seconds (`outdial simulate`, `docs/pacing.md`).
//!
//! Each `tick` the pacer is shown the floor and says how many calls to place (within `cps`).
//! A placed call rings for a sampled time, then: nobody answers (ring timeout), a machine
//! answers (AMD takes `amd_delay`, then it is dropped — or a live person is, `amd_false_positive`
//! of the time), or a person answers and, after `amd_delay`, waits for an agent: connected at
//! once if one is free, else queued and abandoned after `max_wait` (the 2-second rule).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use super::{DialMode, Outcome, Pacer, PacerConfig, PacerEvent, Snapshot};

/// Who is called.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Population {
    /// Share of calls answered at all (by a person or a machine), 0–1.
    pub answer_rate: f64,
    /// Share of answered calls answered by a machine, 0–1.
    pub machine_share: f64,
    /// Ring time of answered calls: uniform between these, seconds.
    pub ring_s: (f64, f64),
    /// Ring timeout of unanswered calls (our CANCEL), seconds.
    pub no_answer_s: f64,
    /// AMD's decision time after the answer, seconds.
    pub amd_delay_s: f64,
    /// Share of people AMD takes for machines (and hangs up on), 0–1.
    pub amd_false_positive: f64,
    /// Mean talk time (exponential), seconds.
    pub talk_mean_s: f64,
    /// After-call work, seconds.
    pub wrap_s: f64,
}

impl Default for Population {
    /// A consumer list: 35 % answer, a quarter of those machines, 4–20 s to answer, 25 s ring
    /// timeout, AMD 2.5 s with 2 % false positives, 90 s talk, 10 s wrap-up.
    fn default() -> Self {
        Self {
            answer_rate: 0.35,
            machine_share: 0.25,
            ring_s: (4.0, 20.0),
            no_answer_s: 25.0,
            amd_delay_s: 2.5,
            amd_false_positive: 0.02,
            talk_mean_s: 90.0,
            wrap_s: 10.0,
        }
    }
}

/// A simulation run.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Agents logged in the whole time.
    pub agents: u32,
    /// Simulated time.
    pub duration: Duration,
    /// Random seed (the same seed, the same callees).
    pub seed: u64,
    /// A waiting person is abandoned after this long (2 s).
    pub max_wait: Duration,
    /// How often the pacer is asked (100 ms).
    pub tick: Duration,
    /// Calls per second at most.
    pub cps: f64,
    /// The callees.
    pub population: Population,
    /// The pacer under test.
    pub pacer: PacerConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            agents: 20,
            duration: Duration::from_secs(4 * 3600),
            seed: 1,
            max_wait: Duration::from_secs(2),
            tick: Duration::from_millis(100),
            cps: 50.0,
            population: Population::default(),
            pacer: PacerConfig::default(),
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SimReport {
    /// The pacing mode.
    pub mode: String,
    /// Calls placed.
    pub placed: u64,
    /// People who answered (AMD false positives included).
    pub people: u64,
    /// People connected to an agent.
    pub connected: u64,
    /// People abandoned in the queue.
    pub abandoned: u64,
    /// People AMD hung up on.
    pub amd_false_positives: u64,
    /// The abandon rate as a regulator counts it (Ofcom): (abandoned + people AMD hung up on,
    /// *estimated* from AMD's measured false-positive rate) / (people + that estimate), 0–1.
    /// This is what the cap applies to: in a real campaign nobody knows which "machines" were
    /// people.
    pub abandon_rate: f64,
    /// The same with the simulation's actual AMD false positives, 0–1.
    pub abandon_rate_actual: f64,
    /// Agents' busy time (talk + wrap-up) / logged-in time, 0–1.
    pub occupancy: f64,
    /// Connected calls per agent-hour.
    pub calls_per_agent_hour: f64,
    /// Queue wait of connected people, ms: p50, p90, p99.
    pub wait_p50_ms: f64,
    /// p90.
    pub wait_p90_ms: f64,
    /// p99.
    pub wait_p99_ms: f64,
    /// Auto-pauses.
    pub auto_pauses: u32,
    /// The pacer's final dial ratio.
    pub dial_ratio: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// A call's ringing ended: what answered was decided at placement.
    RingEnd(u64),
    /// AMD decided on call `id`.
    Decided(u64),
    /// Queued call `id` reached `max_wait`.
    Abandon(u64),
    /// Agent `i` is free again.
    AgentFree(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    NoAnswer,
    Machine,
    Person,
    PersonTakenForMachine,
}

struct Call {
    kind: Kind,
    placed: Instant,
    queued: Option<Instant>,
    done: bool,
}

/// The simulated floor: everything a run changes as it goes.
struct Floor {
    pop: Population,
    rng: Xoshiro256PlusPlus,
    pacer: Pacer,
    /// Pending events by time (ties in the order they were scheduled).
    events: BinaryHeap<Reverse<(Instant, u64, Ev)>>,
    seq: u64,
    calls: Vec<Call>,
    /// Idle agents.
    free: Vec<u32>,
    /// People waiting for an agent, in arrival order.
    queue: VecDeque<u64>,
    /// Calls placed whose outcome is not known yet.
    dialing: u32,
    waits: hdrhistogram::Histogram<u64>,
    /// Agents' busy time (talk + wrap-up), seconds.
    busy_s: f64,
    r: SimReport,
}

impl Floor {
    fn push(&mut self, at: Instant, e: Ev) {
        self.seq += 1;
        self.events.push(Reverse((at, self.seq, e)));
    }

    /// Connects person `c` to agent `a` at `now`; the agent is free again after an
    /// exponential talk time (at least 5 s) and the wrap-up.
    fn connect(&mut self, now: Instant, c: u64, a: u32) {
        let call = &mut self.calls[c as usize];
        call.done = true;
        let wait = now.saturating_duration_since(call.queued.unwrap_or(now));
        let _ = self.waits.record(wait.as_millis() as u64);
        self.pacer.record(now, Outcome::Connected { wait });
        self.r.connected += 1;
        let u: f64 = self.rng.random_range(0.0..1.0);
        let talk = (-(1.0 - u).ln() * self.pop.talk_mean_s).max(5.0);
        let busy_s = talk + self.pop.wrap_s;
        self.busy_s += busy_s;
        let busy = Duration::from_secs_f64(busy_s);
        self.pacer.record(now, Outcome::AgentFree { busy });
        self.push(now + busy, Ev::AgentFree(a));
    }

    /// Places one call at `now`: what answers (if anything) and when is drawn now.
    fn place(&mut self, now: Instant) {
        let pop = self.pop;
        let answered = self.rng.random_bool(pop.answer_rate);
        let machine = answered && self.rng.random_bool(pop.machine_share);
        let kind = match (answered, machine) {
            (false, _) => Kind::NoAnswer,
            (true, true) => Kind::Machine,
            (true, false) if self.rng.random_bool(pop.amd_false_positive) => {
                Kind::PersonTakenForMachine
            }
            (true, false) => Kind::Person,
        };
        let ring = if kind == Kind::NoAnswer {
            pop.no_answer_s
        } else {
            self.rng.random_range(pop.ring_s.0..=pop.ring_s.1)
        };
        let id = self.calls.len() as u64;
        self.calls.push(Call {
            kind,
            placed: now,
            queued: None,
            done: false,
        });
        self.dialing += 1;
        self.r.placed += 1;
        self.push(now + Duration::from_secs_f64(ring), Ev::RingEnd(id));
    }

    fn handle(&mut self, now: Instant, ev: Ev, max_wait: Duration) {
        match ev {
            Ev::RingEnd(c) => {
                let call = &self.calls[c as usize];
                let ring = now.saturating_duration_since(call.placed);
                if call.kind == Kind::NoAnswer {
                    self.dialing -= 1;
                    self.pacer.record(now, Outcome::NotReached { ring });
                } else {
                    let at = now + Duration::from_secs_f64(self.pop.amd_delay_s);
                    self.push(at, Ev::Decided(c));
                }
            }
            Ev::Decided(c) => {
                self.dialing -= 1;
                let ring = now.saturating_duration_since(self.calls[c as usize].placed);
                match self.calls[c as usize].kind {
                    Kind::Machine => self.pacer.record(now, Outcome::Machine { ring }),
                    Kind::PersonTakenForMachine => {
                        self.r.people += 1;
                        self.r.amd_false_positives += 1;
                        self.pacer.record(now, Outcome::Machine { ring });
                    }
                    Kind::Person => {
                        self.r.people += 1;
                        self.pacer.record(now, Outcome::Human { ring });
                        self.calls[c as usize].queued = Some(now);
                        if let Some(a) = self.free.pop() {
                            self.connect(now, c, a);
                        } else {
                            self.queue.push_back(c);
                            self.push(now + max_wait, Ev::Abandon(c));
                        }
                    }
                    Kind::NoAnswer => {}
                }
            }
            Ev::Abandon(c) => {
                if !self.calls[c as usize].done {
                    self.calls[c as usize].done = true;
                    self.queue.retain(|q| *q != c);
                    self.r.abandoned += 1;
                    self.pacer.record(now, Outcome::Abandoned);
                }
            }
            Ev::AgentFree(a) => match self.queue.pop_front() {
                Some(c) => self.connect(now, c, a),
                None => self.free.push(a),
            },
        }
    }
}

/// Runs one simulation. Deterministic for a given configuration.
pub fn simulate(cfg: &SimConfig) -> SimReport {
    let t0 = Instant::now();
    let end = t0 + cfg.duration;
    let pop = cfg.population;
    let mut f = Floor {
        pop,
        rng: Xoshiro256PlusPlus::seed_from_u64(cfg.seed),
        pacer: Pacer::new(PacerConfig {
            amd_false_positive: pop.amd_false_positive,
            ..cfg.pacer.clone()
        }),
        events: BinaryHeap::new(),
        seq: 0,
        calls: Vec::new(),
        free: (0..cfg.agents).collect(),
        queue: VecDeque::new(),
        dialing: 0,
        waits: hdrhistogram::Histogram::<u64>::new(3).expect("histogram"),
        busy_s: 0.0,
        r: SimReport {
            mode: cfg.pacer.mode.as_str().to_string(),
            placed: 0,
            people: 0,
            connected: 0,
            abandoned: 0,
            amd_false_positives: 0,
            abandon_rate: 0.0,
            abandon_rate_actual: 0.0,
            occupancy: 0.0,
            calls_per_agent_hour: 0.0,
            wait_p50_ms: 0.0,
            wait_p90_ms: 0.0,
            wait_p99_ms: 0.0,
            auto_pauses: 0,
            dial_ratio: 0.0,
        },
    };
    let mut next_tick = t0;
    let mut credit = 0.0f64;
    loop {
        let next_ev = f.events.peek().map(|Reverse((t, _, _))| *t);
        let now = match next_ev {
            Some(t) if t <= next_tick => t,
            _ => next_tick,
        };
        if now >= end {
            break;
        }
        if next_ev.is_some_and(|t| t <= next_tick) {
            let Reverse((_, _, ev)) = f.events.pop().expect("peeked");
            f.handle(now, ev, cfg.max_wait);
            continue;
        }
        // A tick: ask the pacer.
        next_tick = now + cfg.tick;
        credit = (credit + cfg.cps * cfg.tick.as_secs_f64()).min(cfg.cps.max(1.0));
        let snap = Snapshot {
            agents_available: f.free.len() as u32,
            agents_on_call: (cfg.agents - f.free.len() as u32),
            agents_wrap_up: 0,
            calls_dialing: f.dialing,
            calls_waiting: f.queue.len() as u32,
        };
        let want = f.pacer.calls_to_place(now, &snap);
        while let Some(e) = f.pacer.poll_event() {
            if matches!(e, PacerEvent::AutoPaused) {
                f.r.auto_pauses += 1;
            }
        }
        let n = (want as f64).min(credit.floor()) as u32;
        credit -= f64::from(n);
        for _ in 0..n {
            f.place(now);
        }
    }
    let mut r = f.r;
    let secs = cfg.duration.as_secs_f64();
    r.abandon_rate_actual = if r.people > 0 {
        (r.abandoned + r.amd_false_positives) as f64 / r.people as f64
    } else {
        0.0
    };
    let queued = (r.people - r.amd_false_positives) as f64;
    let fp = pop.amd_false_positive;
    let est = queued * fp / (1.0 - fp).max(0.01);
    r.abandon_rate = if queued + est > 0.0 {
        (r.abandoned as f64 + est) / (queued + est)
    } else {
        0.0
    };
    r.occupancy = (f.busy_s / (f64::from(cfg.agents) * secs)).min(1.0);
    r.calls_per_agent_hour = r.connected as f64 / (f64::from(cfg.agents) * secs / 3600.0);
    if !f.waits.is_empty() {
        r.wait_p50_ms = f.waits.value_at_quantile(0.5) as f64;
        r.wait_p90_ms = f.waits.value_at_quantile(0.9) as f64;
        r.wait_p99_ms = f.waits.value_at_quantile(0.99) as f64;
    }
    r.dial_ratio = f.pacer.dial_ratio();
    r
}

/// The same population and seed under progressive, Vicidial's adaptive and predictive
/// pacing (the comparison `outdial simulate` prints).
pub fn compare(base: &SimConfig) -> Vec<SimReport> {
    [
        DialMode::Progressive,
        DialMode::Adaptive,
        DialMode::Predictive,
    ]
    .into_iter()
    .map(|mode| {
        let mut c = base.clone();
        c.pacer.mode = mode;
        simulate(&c)
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(agents: u32, seed: u64) -> SimConfig {
        SimConfig {
            agents,
            seed,
            duration: Duration::from_secs(2 * 3600),
            ..SimConfig::default()
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_run() {
        let a = simulate(&base(10, 7));
        let b = simulate(&base(10, 7));
        assert_eq!(a, b);
        assert_ne!(a, simulate(&base(10, 8)));
    }

    #[test]
    fn predictive_stays_under_the_cap_and_keeps_agents_busier_than_progressive_and_adaptive() {
        for (agents, seed) in [(20, 1), (50, 2), (10, 3)] {
            let r = compare(&base(agents, seed));
            let (prog, adapt, pred) = (&r[0], &r[1], &r[2]);
            assert_eq!(
                (prog.mode.as_str(), adapt.mode.as_str(), pred.mode.as_str()),
                ("progressive", "adaptive", "predictive")
            );
            assert!(pred.abandon_rate < 0.03, "{agents} agents: {pred:?}");
            assert!(
                pred.occupancy > prog.occupancy && pred.occupancy > adapt.occupancy,
                "{agents} agents: {r:?}"
            );
            assert!(pred.calls_per_agent_hour > prog.calls_per_agent_hour);
        }
    }

    #[test]
    fn an_auto_pause_stops_dialling_and_releases() {
        // Agents far too few for progressive with a big boost: the queue builds up.
        let mut c = base(3, 4);
        c.duration = Duration::from_secs(1800);
        c.pacer.boost_factor = 6.0;
        c.pacer.max_waiting_calls = 50;
        c.pacer.auto_pause = Some(super::super::AutoPause {
            waiting_above: 1,
            after: Duration::from_secs(1),
        });
        let r = simulate(&c);
        assert!(r.auto_pauses >= 1, "{r:?}");
        assert!(r.connected > 0);
    }
}
