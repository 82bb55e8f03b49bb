//! The run loop's side of pacing: keeps the floor's live state from the stored call and agent
//! events, feeds the [`Pacer`] their outcomes, and asks it how many calls to place.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use crate::events::{
    AgentEvent, AgentState, CallEvent, CallEventKind, CampaignEvent, CampaignEventKind,
};
use crate::media::amd::AmdResult;
use crate::pacing::{Outcome, Pacer, PacerConfig, PacerEvent, Snapshot};

/// Pacing state of one run.
pub struct Pace {
    pacer: Pacer,
    /// Attempt → when it was placed.
    started: HashMap<i64, Instant>,
    /// Attempts whose outcome for pacing is known (a person queued, a machine, connected).
    settled: HashSet<i64>,
    /// Attempts whose person waits for an agent.
    waiting: HashSet<i64>,
    /// Agent → when its current call started (busy time = until it is available again).
    busy_since: HashMap<String, Instant>,
    /// Auto-pause changes not yet taken by the run loop.
    events: Vec<CampaignEvent>,
    /// The auto-pause threshold (more than this many waiting), for the events.
    threshold: u32,
}

impl Pace {
    /// Pacing with `cfg`.
    pub fn new(cfg: PacerConfig) -> Self {
        Self {
            threshold: cfg.auto_pause.map_or(0, |a| a.waiting_above),
            events: Vec::new(),
            pacer: Pacer::new(cfg),
            started: HashMap::new(),
            settled: HashSet::new(),
            waiting: HashSet::new(),
            busy_since: HashMap::new(),
        }
    }

    /// A call was placed.
    pub fn placed(&mut self, attempt: i64, now: Instant) {
        self.started.insert(attempt, now);
    }

    /// A stored call event.
    pub fn call_event(&mut self, ev: &CallEvent) {
        let id = ev.attempt.attempt_id;
        let ring = |s: &Self| {
            s.started
                .get(&id)
                .map_or_else(Default::default, |t| ev.at.saturating_duration_since(*t))
        };
        match &ev.kind {
            CallEventKind::Queued { .. } => {
                let r = ring(self);
                self.pacer.record(ev.at, Outcome::Human { ring: r });
                self.settled.insert(id);
                self.waiting.insert(id);
            }
            CallEventKind::Amd { result, .. } if *result == AmdResult::Machine => {
                let r = ring(self);
                self.pacer.record(ev.at, Outcome::Machine { ring: r });
                self.settled.insert(id);
            }
            CallEventKind::Connected { wait_ms, .. } => {
                self.waiting.remove(&id);
                self.pacer.record(
                    ev.at,
                    Outcome::Connected {
                        wait: std::time::Duration::from_millis(u64::from(*wait_ms)),
                    },
                );
            }
            CallEventKind::Abandoned { .. } => {
                self.waiting.remove(&id);
                self.pacer.record(ev.at, Outcome::Abandoned);
            }
            CallEventKind::Terminated { disposition, .. } => {
                if !self.settled.contains(&id) && !disposition.spares_the_lead() {
                    let r = ring(self);
                    self.pacer.record(ev.at, Outcome::NotReached { ring: r });
                }
                self.started.remove(&id);
                self.settled.remove(&id);
                self.waiting.remove(&id);
            }
            _ => {}
        }
    }

    /// A stored agent state change.
    pub fn agent_event(&mut self, ev: &AgentEvent) {
        match ev.state {
            AgentState::OnCall => {
                self.busy_since.insert(ev.agent.clone(), ev.at);
            }
            AgentState::WrapUp => {}
            _ => {
                if let Some(t) = self.busy_since.remove(&ev.agent) {
                    self.pacer.record(
                        ev.at,
                        Outcome::AgentFree {
                            busy: ev.at.saturating_duration_since(t),
                        },
                    );
                }
            }
        }
    }

    /// How many calls to place now, with `in_flight` calls out, the agents' states, and
    /// `ahead` calls of higher- or equal-priority campaigns sharing these agents that still
    /// want one (those agents are theirs first).
    pub fn budget(
        &mut self,
        now: Instant,
        in_flight: usize,
        agents: &HashMap<String, AgentState>,
        ahead: usize,
    ) -> usize {
        let count = |s: AgentState| agents.values().filter(|v| **v == s).count() as u32;
        let snap = Snapshot {
            agents_available: count(AgentState::Available).saturating_sub(ahead as u32),
            agents_on_call: count(AgentState::OnCall) + count(AgentState::Reserved),
            agents_wrap_up: count(AgentState::WrapUp),
            calls_dialing: in_flight.saturating_sub(self.settled.len()) as u32,
            calls_waiting: self.waiting.len() as u32,
        };
        let n = self.pacer.calls_to_place(now, &snap);
        while let Some(e) = self.pacer.poll_event() {
            let kind = match e {
                PacerEvent::AutoPaused => {
                    tracing::warn!(
                        waiting = snap.calls_waiting,
                        "campaign auto-paused: too many calls wait for an agent"
                    );
                    CampaignEventKind::AutoPaused {
                        reason: crate::events::AutoPauseReason::CallsWaiting,
                        calls_waiting: snap.calls_waiting,
                        threshold: self.threshold,
                        trunks: Vec::new(),
                    }
                }
                PacerEvent::Resumed => {
                    tracing::info!("campaign resumed after an auto-pause");
                    CampaignEventKind::AutoResumed {
                        reason: crate::events::AutoResumeReason::AgentsFree,
                    }
                }
            };
            self.events.push(CampaignEvent { at: now, kind });
        }
        n as usize
    }

    /// The auto-pause changes since the last call (for the store and the live stream).
    pub fn take_events(&mut self) -> Vec<CampaignEvent> {
        std::mem::take(&mut self.events)
    }

    /// The abandon rate over the window, 0–1.
    pub fn abandon_rate(&self) -> f64 {
        self.pacer.abandon_rate()
    }

    /// The pacer's dial ratio.
    pub fn dial_ratio(&self) -> f64 {
        self.pacer.dial_ratio()
    }
}
