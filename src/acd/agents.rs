//! Agents and their states, and which agent gets the next call — a sans-IO state machine.
//!
//! ```text
//! offline ──reachable──► available ──reserve──► reserved ──connect──► on_call
//!    ▲                      ▲   ▲                  │                     │ release
//!    └──unreachable─────────┘   └──offer failed────┘  (N misses: paused) ▼
//!                               └──────────── wrap_up seconds ───────── wrap_up
//! ```
//!
//! "Reachable" means registered (`per_call` mode, or a static URI), or, in `persistent`
//! mode, that the agent's standing call is up. Every change is an [`AgentEvent`]. Selection:
//! [`Strategy::LongestIdle`] (the agent available the longest; the usual ACD default) or
//! [`Strategy::RoundRobin`] (in configuration order, starting after the last one chosen), or
//! [`Strategy::RingAll`] (every available agent is offered the head of the queue, longest idle
//! first; the first to answer takes it and the engine withdraws the other offers).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::events::{AgentEvent, AgentState};

/// How the next agent is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The available agent idle the longest.
    #[default]
    LongestIdle,
    /// The next available agent after the last one chosen, in configuration order.
    RoundRobin,
    /// Every available agent's phone rings (`per_call` mode); the first answer takes the call
    /// and the others are CANCELled as withdrawn offers (not misses). In `persistent` mode,
    /// where nothing rings, it picks like [`Strategy::LongestIdle`].
    RingAll,
}

/// Per-agent figures for the run summary (statistics inputs).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AgentStats {
    /// The agent's id.
    pub agent: String,
    /// Calls connected to this agent.
    pub handled: u32,
    /// Offers not taken (no answer, busy, rejected).
    pub missed: u32,
    /// Time talking, ms.
    pub talk_ms: u64,
    /// Time in wrap-up, ms.
    pub wrap_up_ms: u64,
    /// Time reachable (not offline), ms.
    pub logged_in_ms: u64,
    /// (reserved + on call + wrap-up) / logged in, 0–1.
    pub occupancy: f64,
}

#[derive(Debug)]
struct Agent {
    id: String,
    state: AgentState,
    since: Instant,
    reachable: bool,
    misses: u32,
    wrap_until: Option<Instant>,
    stats: AgentStats,
    busy_ms: u64,
}

/// All agents of an engine. See the module docs.
#[derive(Debug)]
pub struct AgentPool {
    agents: Vec<Agent>,
    strategy: Strategy,
    wrap_up: Duration,
    max_misses: u32,
    last_rr: Option<usize>,
    events: VecDeque<AgentEvent>,
}

impl AgentPool {
    /// Agents `ids` (all offline), chosen by `strategy`; `wrap_up` after each call; paused
    /// after `max_misses` offers in a row not taken (0: never).
    pub fn new(
        now: Instant,
        ids: &[String],
        strategy: Strategy,
        wrap_up: Duration,
        max_misses: u32,
    ) -> Self {
        Self {
            agents: ids
                .iter()
                .map(|id| Agent {
                    id: id.clone(),
                    state: AgentState::Offline,
                    since: now,
                    reachable: false,
                    misses: 0,
                    wrap_until: None,
                    stats: AgentStats {
                        agent: id.clone(),
                        ..AgentStats::default()
                    },
                    busy_ms: 0,
                })
                .collect(),
            strategy,
            wrap_up,
            max_misses,
            last_rr: None,
            events: VecDeque::new(),
        }
    }

    /// The index of agent `id`.
    pub fn index(&self, id: &str) -> Option<usize> {
        self.agents.iter().position(|a| a.id == id)
    }

    /// Agent `i`'s id.
    pub fn id(&self, i: usize) -> &str {
        &self.agents[i].id
    }

    /// Number of agents.
    pub fn len(&self) -> usize {
        self.agents.len()
    }

    /// True when there are no agents.
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    /// Agent `i`'s state.
    pub fn state(&self, i: usize) -> AgentState {
        self.agents[i].state
    }

    /// Agents in each state, in [`AgentState`] order.
    pub fn count(&self, s: AgentState) -> usize {
        self.agents.iter().filter(|a| a.state == s).count()
    }

    fn set(&mut self, now: Instant, i: usize, state: AgentState, reason: &str, call: Option<&str>) {
        let a = &mut self.agents[i];
        if a.state == state {
            return;
        }
        let ms = now.saturating_duration_since(a.since).as_millis() as u64;
        match a.state {
            AgentState::OnCall => a.stats.talk_ms += ms,
            AgentState::WrapUp => a.stats.wrap_up_ms += ms,
            _ => {}
        }
        if matches!(
            a.state,
            AgentState::Reserved | AgentState::OnCall | AgentState::WrapUp
        ) {
            a.busy_ms += ms;
        }
        if a.state != AgentState::Offline {
            a.stats.logged_in_ms += ms;
        }
        a.state = state;
        a.since = now;
        if state != AgentState::WrapUp {
            a.wrap_until = None;
        }
        self.events.push_back(AgentEvent {
            agent: a.id.clone(),
            state,
            reason: reason.to_string(),
            call_id: call.map(str::to_string),
            at: now,
        });
    }

    /// The agent became reachable or unreachable (`reason`: `registered`, `expired`,
    /// `unregistered`, `login_call_up`, …). An agent on a call goes offline when it ends.
    pub fn set_reachable(&mut self, now: Instant, i: usize, reachable: bool, reason: &str) {
        self.agents[i].reachable = reachable;
        match (reachable, self.agents[i].state) {
            (true, AgentState::Offline) => {
                self.agents[i].misses = 0;
                self.set(now, i, AgentState::Available, reason, None)
            }
            (false, AgentState::Available | AgentState::Paused | AgentState::WrapUp) => {
                self.set(now, i, AgentState::Offline, reason, None)
            }
            _ => {}
        }
    }

    /// True when agent `i` is reachable.
    pub fn is_reachable(&self, i: usize) -> bool {
        self.agents[i].reachable
    }

    /// The agent to offer the next call to, by the strategy; `None` when nobody is available.
    pub fn pick(&self) -> Option<usize> {
        let available = |i: &usize| {
            let a = &self.agents[*i];
            a.state == AgentState::Available && a.reachable
        };
        match self.strategy {
            Strategy::LongestIdle | Strategy::RingAll => (0..self.agents.len())
                .filter(available)
                .min_by_key(|i| self.agents[*i].since),
            Strategy::RoundRobin => {
                let n = self.agents.len();
                let start = self.last_rr.map_or(0, |l| l + 1);
                (0..n).map(|k| (start + k) % n).find(available)
            }
        }
    }

    /// Agent `i` is offered `call` (its phone rings, or the bridge is being made).
    pub fn reserve(&mut self, now: Instant, i: usize, call: &str) {
        self.last_rr = Some(i);
        self.set(now, i, AgentState::Reserved, "offered", Some(call));
    }

    /// Agent `i` answered: talking to `call`.
    pub fn connect(&mut self, now: Instant, i: usize, call: &str) {
        self.agents[i].misses = 0;
        self.agents[i].stats.handled += 1;
        self.set(now, i, AgentState::OnCall, "connected", Some(call));
    }

    /// The offer to agent `i` ended without an answer. `missed`: the agent's doing (no answer,
    /// busy, rejected), counted towards `max_misses`; otherwise (the customer left first) the
    /// agent is simply available again.
    pub fn offer_failed(&mut self, now: Instant, i: usize, missed: bool, call: &str) {
        if missed {
            self.agents[i].misses += 1;
            self.agents[i].stats.missed += 1;
        }
        let next = if !self.agents[i].reachable {
            (AgentState::Offline, "unreachable")
        } else if missed && self.max_misses > 0 && self.agents[i].misses >= self.max_misses {
            (AgentState::Paused, "missed_offers")
        } else if missed {
            (AgentState::Available, "offer_missed")
        } else {
            (AgentState::Available, "offer_withdrawn")
        };
        self.set(now, i, next.0, next.1, Some(call));
    }

    /// The call of agent `i` ended: wrap-up (or offline when the agent is gone).
    pub fn release(&mut self, now: Instant, i: usize, call: &str) {
        if !self.agents[i].reachable {
            self.set(now, i, AgentState::Offline, "call_ended", Some(call));
        } else if self.wrap_up.is_zero() {
            self.set(now, i, AgentState::Available, "call_ended", Some(call));
        } else {
            self.set(now, i, AgentState::WrapUp, "call_ended", Some(call));
            self.agents[i].wrap_until = Some(now + self.wrap_up);
        }
    }

    /// Pauses agent `i` with a reason (from the available, wrap-up or paused state).
    pub fn pause(&mut self, now: Instant, i: usize, reason: &str) {
        if matches!(
            self.agents[i].state,
            AgentState::Available | AgentState::WrapUp
        ) {
            self.set(now, i, AgentState::Paused, reason, None);
        }
    }

    /// Puts a paused agent back in the rotation.
    pub fn unpause(&mut self, now: Instant, i: usize) {
        if self.agents[i].state == AgentState::Paused && self.agents[i].reachable {
            self.agents[i].misses = 0;
            self.set(now, i, AgentState::Available, "unpaused", None);
        }
    }

    /// When the next wrap-up ends.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.agents.iter().filter_map(|a| a.wrap_until).min()
    }

    /// Ends the wrap-ups due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for i in 0..self.agents.len() {
            if self.agents[i].wrap_until.is_some_and(|t| t <= now) {
                self.set(now, i, AgentState::Available, "wrap_up_done", None);
            }
        }
    }

    /// The next state change.
    pub fn poll_event(&mut self) -> Option<AgentEvent> {
        self.events.pop_front()
    }

    /// Per-agent figures up to `now`.
    pub fn stats(&self, now: Instant) -> Vec<AgentStats> {
        self.agents
            .iter()
            .map(|a| {
                let mut s = a.stats.clone();
                let ms = now.saturating_duration_since(a.since).as_millis() as u64;
                let mut busy = a.busy_ms;
                match a.state {
                    AgentState::OnCall => s.talk_ms += ms,
                    AgentState::WrapUp => s.wrap_up_ms += ms,
                    _ => {}
                }
                if matches!(
                    a.state,
                    AgentState::Reserved | AgentState::OnCall | AgentState::WrapUp
                ) {
                    busy += ms;
                }
                if a.state != AgentState::Offline {
                    s.logged_in_ms += ms;
                }
                s.occupancy = if s.logged_in_ms > 0 {
                    busy as f64 / s.logged_in_ms as f64
                } else {
                    0.0
                };
                s
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(strategy: Strategy) -> (Instant, AgentPool) {
        let t0 = Instant::now();
        let ids: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        (
            t0,
            AgentPool::new(t0, &ids, strategy, Duration::from_secs(5), 2),
        )
    }

    #[test]
    fn longest_idle_gets_the_call_and_wrap_up_ends_on_time() {
        let (t0, mut p) = pool(Strategy::LongestIdle);
        assert_eq!(p.pick(), None);
        p.set_reachable(t0, 1, true, "registered");
        p.set_reachable(t0 + Duration::from_secs(1), 0, true, "registered");
        assert_eq!(p.pick(), Some(1));
        p.reserve(t0 + Duration::from_secs(2), 1, "c1");
        assert_eq!(p.pick(), Some(0));
        p.connect(t0 + Duration::from_secs(3), 1, "c1");
        p.release(t0 + Duration::from_secs(13), 1, "c1");
        assert_eq!(p.state(1), AgentState::WrapUp);
        assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_secs(18)));
        p.handle_timeout(t0 + Duration::from_secs(17));
        assert_eq!(p.state(1), AgentState::WrapUp);
        p.handle_timeout(t0 + Duration::from_secs(18));
        assert_eq!(p.state(1), AgentState::Available);
        // Agent 0 has been idle since t0+1, agent 1 only since t0+18.
        assert_eq!(p.pick(), Some(0));
        let states: Vec<&str> = std::iter::from_fn(|| p.poll_event())
            .filter(|e| e.agent == "b")
            .map(|e| e.state.as_str())
            .collect();
        assert_eq!(
            states,
            ["available", "reserved", "on_call", "wrap_up", "available"]
        );
        let s = &p.stats(t0 + Duration::from_secs(18))[1];
        assert_eq!((s.handled, s.talk_ms, s.wrap_up_ms), (1, 10_000, 5_000));
        assert!((s.occupancy - 16.0 / 18.0).abs() < 1e-9);
    }

    #[test]
    fn misses_pause_the_agent_and_round_robin_rotates() {
        let (t0, mut p) = pool(Strategy::RoundRobin);
        for i in 0..3 {
            p.set_reachable(t0, i, true, "registered");
        }
        assert_eq!(p.pick(), Some(0));
        p.reserve(t0, 0, "c1");
        p.offer_failed(t0, 0, true, "c1");
        assert_eq!(p.state(0), AgentState::Available);
        assert_eq!(p.pick(), Some(1));
        p.reserve(t0, 1, "c1");
        p.offer_failed(t0, 1, false, "c1");
        assert_eq!(p.pick(), Some(2));
        p.reserve(t0, 0, "c2");
        p.offer_failed(t0, 0, true, "c2");
        assert_eq!(p.state(0), AgentState::Paused);
        p.unpause(t0, 0);
        assert_eq!(p.state(0), AgentState::Available);
        // Unregistered while on a call: offline when the call ends, not before.
        p.reserve(t0, 2, "c3");
        p.connect(t0, 2, "c3");
        p.set_reachable(t0, 2, false, "expired");
        assert_eq!(p.state(2), AgentState::OnCall);
        p.release(t0, 2, "c3");
        assert_eq!(p.state(2), AgentState::Offline);
    }
}
