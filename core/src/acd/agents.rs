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

use crate::events::{AgentEvent, AgentReason, AgentState};

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
    /// Why it entered `state`.
    reason: AgentReason,
    since: Instant,
    /// The customer call it was last connected to, and whether the agent has set that call's
    /// disposition.
    last_call: Option<String>,
    disposed: bool,
    /// A pause asked for while reserved or on a call: taken when the call's wrap-up ends.
    pause_pending: Option<String>,
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
    mandatory_disposition: bool,
    last_rr: Option<usize>,
    events: VecDeque<AgentEvent>,
}

/// Why an agent's own request (pause, unpause, disposition) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentControlError {
    /// No agent has this id.
    #[error("no agent {0:?}")]
    UnknownAgent(String),
    /// The agent is offline (not registered, or its standing call is down).
    #[error("agent {0:?} is offline")]
    Offline(String),
    /// A disposition was set with no call to apply it to (the agent is not on a call or in
    /// its wrap-up).
    #[error("agent {0:?} has no call to set a disposition for (not on a call or in wrap-up)")]
    NoCall(String),
    /// The disposition is not one of the campaign's `acd.dispositions`.
    #[error("{0:?} is not one of the campaign's dispositions")]
    NotADisposition(String),
    /// The engine has no agents.
    #[error("this engine has no agents (no [acd] table)")]
    NoAcd,
    /// The call control does not fit the call's state now (hold while held, …).
    #[error("not now: {0}")]
    NotNow(String),
}

/// An agent's state as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentView {
    /// The agent's id.
    pub id: String,
    /// Current state.
    pub state: AgentState,
    /// Why it entered that state (`registered`, `call_ended`, the agent's pause reason, …).
    pub reason: String,
    /// Milliseconds in the current state.
    pub in_state_ms: u64,
    /// The customer call (our Call-ID) it was last connected to.
    pub last_call: Option<String>,
    /// In wrap-up, waiting for the agent's disposition (campaigns with mandatory dispositions).
    pub awaiting_disposition: bool,
    /// A pause asked for during a call, taken when its wrap-up ends.
    pub pause_pending: Option<String>,
    /// Figures since the start.
    pub stats: AgentStats,
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
                    reason: AgentReason::Start,
                    since: now,
                    last_call: None,
                    disposed: false,
                    pause_pending: None,
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
            mandatory_disposition: false,
            last_rr: None,
            events: VecDeque::new(),
        }
    }

    /// With mandatory dispositions, an agent's wrap-up lasts until it sets the call's
    /// disposition ([`AgentPool::set_disposition`]) instead of `wrap_up` seconds.
    pub fn set_mandatory_disposition(&mut self, on: bool) {
        self.mandatory_disposition = on;
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

    fn set(
        &mut self,
        now: Instant,
        i: usize,
        state: AgentState,
        reason: AgentReason,
        call: Option<&str>,
    ) {
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
        a.reason = reason.clone();
        a.since = now;
        if state != AgentState::WrapUp {
            a.wrap_until = None;
        }
        self.events.push_back(AgentEvent {
            agent: a.id.clone(),
            state,
            reason,
            call_id: call.map(str::to_string),
            at: now,
        });
    }

    /// The agent became reachable or unreachable (`reason`: `registered`, `expired`,
    /// `unregistered`, `login_call_up`, …). An agent on a call goes offline when it ends.
    pub fn set_reachable(&mut self, now: Instant, i: usize, reachable: bool, reason: AgentReason) {
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
        self.set(
            now,
            i,
            AgentState::Reserved,
            AgentReason::Offered,
            Some(call),
        );
    }

    /// Agent `i` asked for the next lead (preview dialling) and `call` is being placed for it:
    /// reserved for that call only until it is connected or ends.
    pub fn preview(&mut self, now: Instant, i: usize, call: &str) {
        self.set(
            now,
            i,
            AgentState::Reserved,
            AgentReason::Preview,
            Some(call),
        );
    }

    /// The preview call placed for agent `i` ended before it was connected (busy, no answer,
    /// a machine…): the agent is available again (offline if it went away meanwhile).
    pub fn preview_ended(&mut self, now: Instant, i: usize, call: &str) {
        if self.agents[i].state != AgentState::Reserved {
            return;
        }
        let next = if self.agents[i].reachable {
            AgentState::Available
        } else {
            AgentState::Offline
        };
        self.set(now, i, next, AgentReason::PreviewNotReached, Some(call));
    }

    /// Agent `i` answered: talking to `call`.
    pub fn connect(&mut self, now: Instant, i: usize, call: &str) {
        self.agents[i].misses = 0;
        self.agents[i].stats.handled += 1;
        self.agents[i].last_call = Some(call.to_string());
        self.agents[i].disposed = false;
        self.set(
            now,
            i,
            AgentState::OnCall,
            AgentReason::Connected,
            Some(call),
        );
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
            (AgentState::Offline, AgentReason::Unreachable)
        } else if missed && self.max_misses > 0 && self.agents[i].misses >= self.max_misses {
            (AgentState::Paused, AgentReason::MissedOffers)
        } else if missed {
            (AgentState::Available, AgentReason::OfferMissed)
        } else {
            (AgentState::Available, AgentReason::OfferWithdrawn)
        };
        self.set(now, i, next.0, next.1, Some(call));
    }

    /// The call of agent `i` ended: wrap-up (or offline when the agent is gone). With
    /// mandatory dispositions and none set yet, the wrap-up has no end time: it lasts until
    /// [`AgentPool::set_disposition`].
    pub fn release(&mut self, now: Instant, i: usize, call: &str) {
        let a = &self.agents[i];
        if !a.reachable {
            self.set(
                now,
                i,
                AgentState::Offline,
                AgentReason::CallEnded,
                Some(call),
            );
        } else if self.mandatory_disposition && !a.disposed {
            self.set(
                now,
                i,
                AgentState::WrapUp,
                AgentReason::CallEnded,
                Some(call),
            );
            self.agents[i].wrap_until = None;
        } else if self.wrap_up.is_zero() {
            self.end_wrap_up(now, i, AgentReason::CallEnded);
        } else {
            self.set(
                now,
                i,
                AgentState::WrapUp,
                AgentReason::CallEnded,
                Some(call),
            );
            self.agents[i].wrap_until = Some(crate::time::later(now, self.wrap_up));
        }
    }

    /// After-call work is over: available, or paused if the agent asked during the call.
    fn end_wrap_up(&mut self, now: Instant, i: usize, reason: AgentReason) {
        match self.agents[i].pause_pending.take() {
            Some(p) => self.set(now, i, AgentState::Paused, AgentReason::Paused(p), None),
            None => self.set(now, i, AgentState::Available, reason, None),
        }
    }

    /// The agent sets the disposition of its last call, while on it or in its wrap-up; in
    /// wrap-up that ends the wrap-up (the agent is done with the call). Returns the call.
    /// Errors: [`AgentControlError::NoCall`] in any other state.
    pub fn set_disposition(&mut self, now: Instant, i: usize) -> Result<String, AgentControlError> {
        let a = &mut self.agents[i];
        let call = match (a.state, &a.last_call) {
            (AgentState::OnCall | AgentState::WrapUp, Some(c)) => c.clone(),
            _ => return Err(AgentControlError::NoCall(a.id.clone())),
        };
        a.disposed = true;
        if a.state == AgentState::WrapUp {
            self.end_wrap_up(now, i, AgentReason::DispositionSet);
        }
        Ok(call)
    }

    /// Pauses agent `i` with a reason: at once when available, in wrap-up or paused (a new
    /// reason); when its wrap-up ends when reserved or on a call.
    /// Errors: [`AgentControlError::Offline`].
    pub fn pause(&mut self, now: Instant, i: usize, reason: &str) -> Result<(), AgentControlError> {
        match self.agents[i].state {
            AgentState::Offline => Err(AgentControlError::Offline(self.agents[i].id.clone())),
            AgentState::Reserved | AgentState::OnCall => {
                self.agents[i].pause_pending = Some(reason.to_string());
                Ok(())
            }
            AgentState::WrapUp if self.mandatory_disposition && !self.agents[i].disposed => {
                // The disposition is still owed: pause once it is set.
                self.agents[i].pause_pending = Some(reason.to_string());
                Ok(())
            }
            AgentState::Paused => {
                self.agents[i].reason = AgentReason::Paused(reason.to_string());
                Ok(())
            }
            AgentState::Available | AgentState::WrapUp => {
                self.set(
                    now,
                    i,
                    AgentState::Paused,
                    AgentReason::Paused(reason.to_string()),
                    None,
                );
                Ok(())
            }
        }
    }

    /// Puts agent `i` back in the rotation (and drops a pending pause).
    /// Errors: [`AgentControlError::Offline`].
    pub fn unpause(&mut self, now: Instant, i: usize) -> Result<(), AgentControlError> {
        let a = &mut self.agents[i];
        a.pause_pending = None;
        if !a.reachable || a.state == AgentState::Offline {
            return Err(AgentControlError::Offline(a.id.clone()));
        }
        if a.state == AgentState::Paused {
            a.misses = 0;
            self.set(now, i, AgentState::Available, AgentReason::Unpaused, None);
        }
        Ok(())
    }

    /// Agent `i` as the API shows it.
    pub fn view(&self, now: Instant, i: usize) -> AgentView {
        let a = &self.agents[i];
        AgentView {
            id: a.id.clone(),
            state: a.state,
            reason: a.reason.to_string(),
            in_state_ms: now.saturating_duration_since(a.since).as_millis() as u64,
            last_call: a.last_call.clone(),
            awaiting_disposition: a.state == AgentState::WrapUp
                && self.mandatory_disposition
                && !a.disposed,
            pause_pending: a.pause_pending.clone(),
            stats: self.stats(now).swap_remove(i),
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
                self.agents[i].wrap_until = None;
                self.end_wrap_up(now, i, AgentReason::WrapUpDone);
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
        p.set_reachable(t0, 1, true, AgentReason::Registered);
        p.set_reachable(
            t0 + Duration::from_secs(1),
            0,
            true,
            AgentReason::Registered,
        );
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
            p.set_reachable(t0, i, true, AgentReason::Registered);
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
        p.unpause(t0, 0).unwrap();
        assert_eq!(p.state(0), AgentState::Available);
        // Unregistered while on a call: offline when the call ends, not before.
        p.reserve(t0, 2, "c3");
        p.connect(t0, 2, "c3");
        p.set_reachable(t0, 2, false, AgentReason::Expired);
        assert_eq!(p.state(2), AgentState::OnCall);
        p.release(t0, 2, "c3");
        assert_eq!(p.state(2), AgentState::Offline);
    }

    #[test]
    fn mandatory_disposition_holds_wrap_up_and_a_pause_waits_for_the_call() {
        let (t0, mut p) = pool(Strategy::LongestIdle);
        p.set_mandatory_disposition(true);
        p.set_reachable(t0, 0, true, AgentReason::Registered);
        assert_eq!(
            p.set_disposition(t0, 0),
            Err(AgentControlError::NoCall("a".into()))
        );
        assert_eq!(
            p.pause(t0, 1, "x"),
            Err(AgentControlError::Offline("b".into()))
        );
        p.reserve(t0, 0, "c1");
        p.connect(t0, 0, "c1");
        // A pause asked for on the call waits; the wrap-up has no end until the disposition.
        p.pause(t0, 0, "lunch").unwrap();
        assert_eq!(p.state(0), AgentState::OnCall);
        p.release(t0 + Duration::from_secs(10), 0, "c1");
        assert_eq!(p.state(0), AgentState::WrapUp);
        assert_eq!(p.poll_timeout(), None);
        p.handle_timeout(t0 + Duration::from_secs(3600));
        let v = p.view(t0 + Duration::from_secs(20), 0);
        assert!(v.awaiting_disposition);
        assert_eq!(v.pause_pending.as_deref(), Some("lunch"));
        assert_eq!(v.in_state_ms, 10_000);
        assert_eq!(
            p.set_disposition(t0 + Duration::from_secs(20), 0),
            Ok("c1".into())
        );
        assert_eq!(p.state(0), AgentState::Paused);
        assert_eq!(p.view(t0, 0).reason, "lunch");
        p.unpause(t0 + Duration::from_secs(30), 0).unwrap();
        assert_eq!(p.state(0), AgentState::Available);
        // Set during the call: the wrap-up after it is the timed one.
        p.reserve(t0, 0, "c2");
        p.connect(t0, 0, "c2");
        p.set_disposition(t0, 0).unwrap();
        p.release(t0 + Duration::from_secs(40), 0, "c2");
        assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_secs(45)));
        // Unpausing drops a pending pause.
        p.reserve(t0, 0, "c3");
        p.pause(t0, 0, "brb").unwrap();
        p.unpause(t0, 0).unwrap();
        assert_eq!(p.view(t0, 0).pause_pending, None);
    }
}
