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

/// Runs one simulation. Deterministic for a given configuration.
pub fn simulate(cfg: &SimConfig) -> SimReport {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(cfg.seed);
    let t0 = Instant::now();
    let end = t0 + cfg.duration;
    let pop = cfg.population;
    let mut pacer = Pacer::new(PacerConfig {
        amd_false_positive: pop.amd_false_positive,
        ..cfg.pacer.clone()
    });
    let mut events: BinaryHeap<Reverse<(Instant, u64, Ev)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |h: &mut BinaryHeap<Reverse<(Instant, u64, Ev)>>, at: Instant, e: Ev| {
        seq += 1;
        h.push(Reverse((at, seq, e)));
    };
    let mut calls: Vec<Call> = Vec::new();
    let mut free: Vec<u32> = (0..cfg.agents).collect();
    // Agent state: 0 idle, 1 talking, 2 wrap-up.
    let mut agent_state = vec![0u8; cfg.agents as usize];
    let mut busy_s = 0.0;
    let mut queue: VecDeque<u64> = VecDeque::new();
    let mut dialing = 0u32;
    let mut waits = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
    let mut r = SimReport {
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
    };
    let mut next_tick = t0;
    let mut credit = 0.0f64;
    // Connects person `c` to agent `a` at `now`.
    let connect = |now: Instant,
                   c: u64,
                   a: u32,
                   calls: &mut Vec<Call>,
                   agent_state: &mut Vec<u8>,
                   pacer: &mut Pacer,
                   waits: &mut hdrhistogram::Histogram<u64>,
                   rng: &mut Xoshiro256PlusPlus,
                   busy_s: &mut f64,
                   r: &mut SimReport|
     -> Instant {
        let call = &mut calls[c as usize];
        call.done = true;
        let wait = now.saturating_duration_since(call.queued.unwrap_or(now));
        let _ = waits.record(wait.as_millis() as u64);
        pacer.record(now, Outcome::Connected { wait });
        r.connected += 1;
        agent_state[a as usize] = 1;
        // Exponential talk time, at least 5 s.
        let u: f64 = rng.random_range(0.0..1.0);
        let talk = (-(1.0 - u).ln() * pop.talk_mean_s).max(5.0);
        let busy = talk + pop.wrap_s;
        *busy_s += busy;
        pacer.record(
            now,
            Outcome::AgentFree {
                busy: Duration::from_secs_f64(busy),
            },
        );
        now + Duration::from_secs_f64(busy)
    };
    loop {
        let next_ev = events.peek().map(|Reverse((t, _, _))| *t);
        let now = match next_ev {
            Some(t) if t <= next_tick => t,
            _ => next_tick,
        };
        if now >= end {
            break;
        }
        if next_ev.is_some_and(|t| t <= next_tick) {
            let Reverse((_, _, ev)) = events.pop().expect("peeked");
            match ev {
                Ev::RingEnd(c) => {
                    let call = &calls[c as usize];
                    let ring = now.saturating_duration_since(call.placed);
                    match call.kind {
                        Kind::NoAnswer => {
                            dialing -= 1;
                            pacer.record(now, Outcome::NotReached { ring });
                        }
                        _ => push(
                            &mut events,
                            now + Duration::from_secs_f64(pop.amd_delay_s),
                            Ev::Decided(c),
                        ),
                    }
                }
                Ev::Decided(c) => {
                    dialing -= 1;
                    let ring = now.saturating_duration_since(calls[c as usize].placed);
                    match calls[c as usize].kind {
                        Kind::Machine => pacer.record(now, Outcome::Machine { ring }),
                        Kind::PersonTakenForMachine => {
                            r.people += 1;
                            r.amd_false_positives += 1;
                            pacer.record(now, Outcome::Machine { ring });
                        }
                        Kind::Person => {
                            r.people += 1;
                            pacer.record(now, Outcome::Human { ring });
                            calls[c as usize].queued = Some(now);
                            if let Some(a) = free.pop() {
                                let at = connect(
                                    now,
                                    c,
                                    a,
                                    &mut calls,
                                    &mut agent_state,
                                    &mut pacer,
                                    &mut waits,
                                    &mut rng,
                                    &mut busy_s,
                                    &mut r,
                                );
                                push(&mut events, at, Ev::AgentFree(a));
                            } else {
                                queue.push_back(c);
                                push(&mut events, now + cfg.max_wait, Ev::Abandon(c));
                            }
                        }
                        Kind::NoAnswer => {}
                    }
                }
                Ev::Abandon(c) => {
                    if !calls[c as usize].done {
                        calls[c as usize].done = true;
                        queue.retain(|q| *q != c);
                        r.abandoned += 1;
                        pacer.record(now, Outcome::Abandoned);
                    }
                }
                Ev::AgentFree(a) => {
                    agent_state[a as usize] = 0;
                    if let Some(c) = queue.pop_front() {
                        let at = connect(
                            now,
                            c,
                            a,
                            &mut calls,
                            &mut agent_state,
                            &mut pacer,
                            &mut waits,
                            &mut rng,
                            &mut busy_s,
                            &mut r,
                        );
                        push(&mut events, at, Ev::AgentFree(a));
                    } else {
                        free.push(a);
                    }
                }
            }
            continue;
        }
        // A tick: ask the pacer.
        next_tick = now + cfg.tick;
        credit = (credit + cfg.cps * cfg.tick.as_secs_f64()).min(cfg.cps.max(1.0));
        let snap = Snapshot {
            agents_available: free.len() as u32,
            agents_on_call: (cfg.agents - free.len() as u32),
            agents_wrap_up: 0,
            calls_dialing: dialing,
            calls_waiting: queue.len() as u32,
        };
        let want = pacer.calls_to_place(now, &snap);
        while let Some(e) = pacer.poll_event() {
            if matches!(e, PacerEvent::AutoPaused { .. }) {
                r.auto_pauses += 1;
            }
        }
        let n = (want as f64).min(credit.floor()) as u32;
        credit -= f64::from(n);
        for _ in 0..n {
            let answered = rng.random_bool(pop.answer_rate);
            let machine = answered && rng.random_bool(pop.machine_share);
            let kind = match (answered, machine) {
                (false, _) => Kind::NoAnswer,
                (true, true) => Kind::Machine,
                (true, false) if rng.random_bool(pop.amd_false_positive) => {
                    Kind::PersonTakenForMachine
                }
                (true, false) => Kind::Person,
            };
            let ring = if kind == Kind::NoAnswer {
                pop.no_answer_s
            } else {
                rng.random_range(pop.ring_s.0..=pop.ring_s.1)
            };
            let id = calls.len() as u64;
            calls.push(Call {
                kind,
                placed: now,
                queued: None,
                done: false,
            });
            dialing += 1;
            r.placed += 1;
            push(
                &mut events,
                now + Duration::from_secs_f64(ring),
                Ev::RingEnd(id),
            );
        }
    }
    let _ = agent_state;
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
    r.occupancy = (busy_s / (f64::from(cfg.agents) * secs)).min(1.0);
    r.calls_per_agent_hour = r.connected as f64 / (f64::from(cfg.agents) * secs / 3600.0);
    if !waits.is_empty() {
        r.wait_p50_ms = waits.value_at_quantile(0.5) as f64;
        r.wait_p90_ms = waits.value_at_quantile(0.9) as f64;
        r.wait_p99_ms = waits.value_at_quantile(0.99) as f64;
    }
    r.dial_ratio = pacer.dial_ratio();
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
