//! The campaign as a sans-IO state machine: which lead to dial next, inside which limits, and
//! what each finished attempt means for its lead. Fed with the current time and what
//! happened (call events, agent events, control commands, trunk health, preview requests); it
//! returns what to store, what to dial, and when it wants to be woken ([`Campaign::poll_timeout`]).
//! No socket, database or clock is touched here: the run loop in `runner.rs` carries out what
//! it returns, and `tests/campaign_core.rs` drives it with a virtual clock.
//!
//! Rules it keeps (each with a virtual-clock test):
//! * the rate (`cps`, [`CallRate`]) and `max_concurrent`, then the process and trunk limits
//!   ([`SharedLimits`]);
//! * the do-not-call list: a lead on it is final `dnc`, never dialled;
//! * the calling window: a lead outside its (own time zone's) window waits for the next opening;
//! * retries per disposition ([`super::decide`]), not before a trunk's `Retry-After`, which
//!   also holds every new call until then;
//! * back-off: congestion in a row lowers the rate ([`Backoff`]);
//! * holds: paused by the operator, waiting for a first agent (`wait_for_agents`), every trunk
//!   down (auto-pause with a `trunk_down` campaign event, `trunk_up` when one answers);
//! * pacing from the floor (`[endpoint]`, [`Pace`]) and preview dialling (a call per agent who
//!   asks and is available).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::config::CampaignConfig;
use super::decide::{self, LeadDecision, LeadTally};
use super::pace::Pace;
use super::rate::{Backoff, CallRate, Permit, SharedLimits, later};
use super::window::CallingWindow;
use crate::events::disposition::Disposition;
use crate::events::{
    AgentEvent, AgentState, AttemptRef, CallEvent, CallEventKind, CampaignEvent, CampaignEventKind,
    TrunkHealth, WallClock,
};

/// At high rates the dial pass wakes at most this often and takes the calls whose rate slots
/// passed meanwhile: a few attempts per database transaction instead of one.
pub const DIAL_PASS: Duration = Duration::from_millis(2);
/// Congested attempts in a row that halve the call rate ([`Backoff`]).
pub const BACKOFF_AFTER: u32 = 5;
/// How long without new congestion before the rate rises again by half.
pub const BACKOFF_RECOVER: Duration = Duration::from_secs(10);
/// How long call events gather before they are stored together (one transaction per batch).
pub const EVENT_FLUSH: Duration = Duration::from_millis(10);
/// Call events stored at most in one batch; so many waiting are stored at once.
pub const MAX_BATCH: usize = 512;
/// Leads picked at most in one dial pass (one transaction of attempts).
pub const MAX_PICKS: usize = 512;
/// With nothing else to wait for, the run loop looks again after this long.
pub const IDLE_TICK: Duration = Duration::from_millis(500);
/// While pacing from the floor or waiting for agents, it looks again after this long.
pub const FLOOR_TICK: Duration = Duration::from_millis(20);
/// The soonest the run loop looks again at leads already due that a dial pass left.
pub const MIN_TICK: Duration = Duration::from_millis(1);

/// What to do with a lead once an attempt of it ended (stored by the run loop).
#[derive(Debug, Clone, PartialEq)]
pub enum LeadUpdate {
    /// Dial again, not before `at`; `attempts` is the new count.
    Retry {
        /// Lead id.
        lead_id: i64,
        /// Counting attempts made so far.
        attempts: u32,
        /// Earliest next dial.
        at: DateTime<Utc>,
    },
    /// The lead is done.
    Final {
        /// Lead id.
        lead_id: i64,
        /// Counting attempts made.
        attempts: u32,
        /// Its final disposition.
        disposition: Disposition,
    },
}

/// A lead the campaign still has to dial, as the store hands it over at start.
#[derive(Debug, Clone, PartialEq)]
pub struct Lead {
    /// Lead id.
    pub id: i64,
    /// The number to dial.
    pub number: String,
    /// Attempts already counted towards `max_attempts`.
    pub attempts: u32,
    /// The highest attempt number used so far (interrupted attempts included).
    pub last_attempt_no: u32,
    /// Not before this time (`None`: at once).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The lead's own time zone for the calling window (`None`: the campaign's).
    pub time_zone: Option<chrono_tz::Tz>,
}

/// What the service asks of a running campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunControl {
    /// Dial.
    Run,
    /// No new calls; calls in progress go on (and the campaign waits).
    Pause,
    /// No new calls, hang up the calls in progress, stop (as Ctrl-C does).
    Stop,
}

/// Why a preview request got no lead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreviewRefusal {
    /// The campaign paces itself (`endpoint.type` is not `preview`).
    #[error("the campaign does not dial in preview mode")]
    NotPreview,
    /// The agent is not available (its state).
    #[error("agent {0} is not available (it is {1})")]
    AgentNotAvailable(String, String),
    /// Paused, waiting for agents, held by a trunk's Retry-After, or stopping.
    #[error("the campaign is not dialling now (paused, held or stopping)")]
    NotDialling,
    /// No lead is due now (all final, in progress, waiting for a retry or outside their
    /// calling window).
    #[error("no lead is due now")]
    NoLeadDue,
}

/// A lead picked by [`Campaign::poll_dial`]: its attempt is to be stored (with a Call-ID the
/// shell makes) and then handed back to [`Campaign::placed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    /// The lead.
    pub lead_id: i64,
    /// The attempt's number (1-based, per lead).
    pub attempt_no: u32,
    /// When its rate slot was taken.
    pub started: Instant,
    /// The preview request (its token) this call answers.
    pub preview: Option<u64>,
    /// A callback the person asked for in the IVR: the answered call goes straight to the
    /// agents, without the IVR.
    pub callback: bool,
}

/// One dial pass: leads to store attempts for, and leads made final without a call.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DialPass {
    /// Leads to dial, in order.
    pub picks: Vec<Pick>,
    /// Leads on the do-not-call list: final as `dnc`, to be stored before the attempts.
    pub not_dialled: Vec<LeadUpdate>,
}

/// A call to place: its attempt is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Its position in the pass's picks (the shell's Call-ID for it).
    pub index: usize,
    /// The attempt.
    pub attempt: AttemptRef,
    /// The number to dial.
    pub number: String,
    /// The preview request it answers: its token and agent (the answered call goes to that
    /// agent only).
    pub preview: Option<(u64, String)>,
    /// A callback asked for in the IVR: straight to the agents when answered.
    pub callback: bool,
}

/// What the run loop stores (in one transaction for the call events and lead updates), then
/// publishes (live stream, webhooks, metrics).
#[derive(Debug, Default)]
pub struct StoreBatch {
    /// Call events, in the order they came.
    pub call_events: Vec<CallEvent>,
    /// The lead decisions they imply.
    pub lead_updates: Vec<LeadUpdate>,
    /// Agent state changes.
    pub agent_events: Vec<AgentEvent>,
    /// Campaign events (auto-pause and resume, schedule end).
    pub campaign_events: Vec<CampaignEvent>,
    /// Numbers to add to the do-not-call list (an IVR `dnc` choice), source `ivr`.
    pub dnc_numbers: Vec<String>,
}

impl StoreBatch {
    fn is_empty(&self) -> bool {
        self.call_events.is_empty()
            && self.agent_events.is_empty()
            && self.campaign_events.is_empty()
            && self.dnc_numbers.is_empty()
    }
}

/// Figures of a run so far.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Calls placed.
    pub dialled: u64,
    /// Calls answered.
    pub answered: u64,
    /// Leads whose attempt ended without an answer and was counted.
    pub failed: u64,
    /// Attempts that ended `network_error` or `trunk_unreachable`.
    pub trunk_failures: u64,
    /// Leads made final (already final at start included).
    pub final_leads: u64,
    /// Leads another node stored an attempt for first (several nodes on one campaign).
    pub taken_elsewhere: u64,
}

#[derive(Debug, Clone)]
struct LeadState {
    number: String,
    tz: Option<chrono_tz::Tz>,
    tally: LeadTally,
    last_attempt_no: u32,
}

/// Why new calls wait.
#[derive(Debug, Default)]
struct Holds {
    control: Option<RunControl>,
    stopping: bool,
    /// A trunk's `Retry-After`.
    retry_after_until: Option<Instant>,
    /// Waiting for a first available agent (`wait_for_agents`), at most until then.
    agents_until: Option<Instant>,
    /// Paused since then because no trunk is up.
    trunk_paused_at: Option<Instant>,
    /// Trunk pauses so far and their total length.
    trunk_pauses: (u32, Duration),
}

/// Preview dialling's requests.
#[derive(Debug, Default)]
struct Preview {
    /// Requests (token, agent) not answered yet.
    pending: VecDeque<(u64, String)>,
    /// Agents with a preview call in progress (agent → attempt) until its `terminated`.
    busy: HashMap<String, i64>,
    /// Requests a pick answers (token → agent), until [`Campaign::placed`].
    reserved: HashMap<u64, String>,
    /// Refusals not taken by the run loop yet.
    refusals: VecDeque<(u64, PreviewRefusal)>,
}

/// The dialling side of one campaign run. See the module documentation.
pub struct Campaign {
    cfg: CampaignConfig,
    clock: WallClock,
    window: Option<CallingWindow>,
    leads: HashMap<i64, LeadState>,
    due: BinaryHeap<Reverse<(Instant, i64)>>,
    dnc: HashSet<String>,
    limits: SharedLimits,
    rate: CallRate,
    backoff: Backoff,
    /// The calls in progress by attempt id: their lead, and their place in the shared limits
    /// (given back when the entry goes).
    in_flight: HashMap<i64, (i64, Option<Permit>)>,
    /// Places in the shared limits taken for the last pass's picks, until [`Self::placed`].
    admitted: Vec<Permit>,
    counters: Counters,
    holds: Holds,
    agents: HashMap<String, AgentState>,
    pace: Option<Pace>,
    preview: Preview,
    /// What the last dial pass waits for from the rate limiters.
    limiter_wait: Option<Duration>,
    /// Call events gathered and not applied yet, and when they must be.
    inbox: Vec<CallEvent>,
    flush_at: Option<Instant>,
    outbox: StoreBatch,
    /// `stop_at` on the monotonic clock, until it passes.
    stop_at: Option<Instant>,
    /// True once `stop_at` has passed.
    schedule_ended: bool,
    /// Leads whose person asked for a callback (IVR), until their call ends: when.
    callbacks: HashMap<i64, Duration>,
    /// Leads whose next attempt is that callback.
    callback_due: HashSet<i64>,
}

impl Campaign {
    /// A run of `cfg` at `now` over `leads` (those not final yet), `already_final` leads done
    /// before, the do-not-call list `dnc`, inside the shared `limits`. `clock` maps the
    /// monotonic time onto UTC for the calling window and stored times.
    /// Errors: a calling window that does not parse.
    pub fn new(
        cfg: CampaignConfig,
        now: Instant,
        clock: WallClock,
        leads: Vec<Lead>,
        already_final: u64,
        dnc: HashSet<String>,
        limits: SharedLimits,
    ) -> anyhow::Result<Self> {
        let window = cfg
            .active_period
            .as_ref()
            .map(CallingWindow::new)
            .transpose()?;
        // Before `start_at` no lead is due.
        let (start_at, stop_at) = cfg.schedule()?;
        let opens = start_at.map_or(now, |t| clock.to_instant(t).max(now));
        let mut due = BinaryHeap::with_capacity(leads.len());
        let mut states = HashMap::with_capacity(leads.len());
        for l in leads {
            let at = l
                .next_attempt_at
                .map_or(now, |t| clock.to_instant(t))
                .max(opens);
            due.push(Reverse((at, l.id)));
            states.insert(
                l.id,
                LeadState {
                    number: l.number,
                    tz: l.time_zone,
                    tally: LeadTally {
                        attempts: l.attempts,
                        trunk_faults: 0,
                    },
                    last_attempt_no: l.last_attempt_no,
                },
            );
        }
        let holds = Holds {
            agents_until: cfg
                .acd
                .as_ref()
                .filter(|a| a.wait_for_agents > 0)
                .map(|a| later(now, Duration::from_secs(a.wait_for_agents))),
            ..Holds::default()
        };
        Ok(Self {
            rate: CallRate::new(cfg.cps, now),
            backoff: Backoff::new(BACKOFF_AFTER, BACKOFF_RECOVER),
            pace: cfg.endpoint.as_ref().map(|e| Pace::new(e.pacer())),
            counters: Counters {
                final_leads: already_final,
                ..Counters::default()
            },
            cfg,
            clock,
            window,
            leads: states,
            due,
            dnc,
            limits,
            in_flight: HashMap::new(),
            admitted: Vec::new(),
            holds,
            agents: HashMap::new(),
            preview: Preview::default(),
            limiter_wait: None,
            inbox: Vec::new(),
            flush_at: None,
            outbox: StoreBatch::default(),
            stop_at: stop_at.map(|t| clock.to_instant(t)),
            schedule_ended: false,
            callbacks: HashMap::new(),
            callback_due: HashSet::new(),
        })
    }

    /// True once the campaign's `stop_at` has passed (the run ends when its calls have).
    pub fn schedule_ended(&self) -> bool {
        self.schedule_ended
    }

    /// Replaces the do-not-call list (the run loop re-reads it when it grows).
    pub fn set_dnc(&mut self, dnc: HashSet<String>) {
        self.dnc = dnc;
    }

    /// True while waiting for a first available agent before dialling.
    pub fn waiting_for_agents(&self) -> bool {
        self.holds.agents_until.is_some()
    }

    /// The operator's command (`Run`, `Pause`, `Stop`). Returns true when the engine must now
    /// hang up every call and stop (the first `Stop`).
    pub fn handle_control(&mut self, ctl: RunControl) -> bool {
        self.holds.control = Some(ctl);
        if ctl == RunControl::Stop && !self.holds.stopping {
            self.holds.stopping = true;
            return true;
        }
        false
    }

    /// True once stopping (no new calls; the calls in progress are being hung up).
    pub fn stopping(&self) -> bool {
        self.holds.stopping
    }

    /// The trunk group's health changed. Every trunk down pauses new calls (a `trunk_down`
    /// campaign event naming them and why); one up again resumes (`trunk_up`). Returns the
    /// campaign event made, if any (also queued for the store).
    pub fn handle_trunk_health(
        &mut self,
        now: Instant,
        health: &TrunkHealth,
    ) -> Option<&CampaignEventKind> {
        let kind = match (health.all_down(), self.holds.trunk_paused_at) {
            (true, None) => {
                self.holds.trunk_paused_at = Some(now);
                self.holds.trunk_pauses.0 += 1;
                CampaignEventKind::AutoPaused {
                    reason: crate::events::AutoPauseReason::TrunkDown,
                    calls_waiting: 0,
                    threshold: 0,
                    trunks: health
                        .down
                        .iter()
                        .map(|(t, r)| crate::events::TrunkDown {
                            trunk: t.clone(),
                            reason: (*r).to_string(),
                        })
                        .collect(),
                }
            }
            (false, Some(since)) => {
                self.holds.trunk_paused_at = None;
                self.holds.trunk_pauses.1 += now.saturating_duration_since(since);
                CampaignEventKind::AutoResumed {
                    reason: crate::events::AutoResumeReason::TrunkUp,
                }
            }
            _ => return None,
        };
        self.push_campaign_event(now, kind);
        self.outbox.campaign_events.last().map(|e| &e.kind)
    }

    fn push_campaign_event(&mut self, now: Instant, kind: CampaignEventKind) {
        self.outbox
            .campaign_events
            .push(CampaignEvent { at: now, kind });
        self.flush_at.get_or_insert(now);
    }

    /// An agent's state changed.
    pub fn handle_agent_event(&mut self, now: Instant, ev: AgentEvent) {
        self.agents.insert(ev.agent.clone(), ev.state);
        if let Some(p) = &mut self.pace {
            p.agent_event(&ev);
        }
        self.outbox.agent_events.push(ev);
        self.flush_at.get_or_insert(later(now, EVENT_FLUSH));
    }

    /// The agents' states as last reported.
    pub fn agents(&self) -> &HashMap<String, AgentState> {
        &self.agents
    }

    /// Call events from the engine. They gather for up to [`EVENT_FLUSH`] (or
    /// [`MAX_BATCH`] of them) and are applied to their leads when [`Self::poll_store`] hands
    /// them out: one transaction per batch.
    pub fn handle_call_events(
        &mut self,
        now: Instant,
        events: impl IntoIterator<Item = CallEvent>,
    ) {
        self.inbox.extend(events);
        if !self.inbox.is_empty() {
            self.flush_at.get_or_insert(later(now, EVENT_FLUSH));
        }
    }

    /// True while events gather for a batch: the run loop leaves further events in their
    /// channel until the batch is due (one wake-up per batch instead of one per event).
    pub fn gathering(&self) -> bool {
        self.flush_at.is_some()
    }

    /// True when the gathered events are to be stored now (the run loop then takes every event
    /// waiting in its channel before [`Self::poll_store`]).
    pub fn flush_due(&self, now: Instant) -> bool {
        self.flush_at.is_some_and(|f| now >= f)
            || self.inbox.len() >= MAX_BATCH
            || (self.holds.stopping && !self.inbox.is_empty())
    }

    /// An agent asks for the next lead of a preview campaign (`token` identifies the request
    /// in the answer: a [`Placement`] carrying it, or a refusal from
    /// [`Self::poll_preview_refusal`]). Answered on the next dial pass.
    pub fn handle_preview(&mut self, token: u64, agent: String) {
        self.preview.pending.push_back((token, agent));
    }

    /// A preview request refused, if any.
    pub fn poll_preview_refusal(&mut self) -> Option<(u64, PreviewRefusal)> {
        self.preview.refusals.pop_front()
    }

    fn is_preview(&self) -> bool {
        self.cfg
            .endpoint
            .as_ref()
            .is_some_and(|e| e.kind == crate::pacing::DialMode::Preview)
    }

    /// New calls wait: paused, held by a Retry-After, waiting for agents, or no trunk up.
    fn held(&self, now: Instant) -> bool {
        self.holds.retry_after_until.is_some_and(|t| t > now)
            || self.holds.agents_until.is_some()
            || self.holds.trunk_paused_at.is_some()
            || self.holds.control == Some(RunControl::Pause)
    }

    /// The time-driven changes: the wait for agents ends (one available, or its time is up),
    /// the back-off raises the rate again.
    fn tick(&mut self, now: Instant) {
        if let Some(t) = self.stop_at
            && t <= now
        {
            self.stop_at = None;
            self.schedule_ended = true;
            // Not final: waiting in the due queue, or on a call that is still going.
            let leads_left = (self.due.len() + self.in_flight.len()) as u64;
            tracing::info!(leads_left, "stop_at passed: no new calls");
            let stop_at = self.cfg.stop_at.clone().unwrap_or_default();
            self.push_campaign_event(
                now,
                CampaignEventKind::ScheduleEnded {
                    stop_at,
                    leads_left,
                },
            );
        }
        if let Some(t) = self.holds.agents_until
            && (t <= now || self.agents.values().any(|s| *s == AgentState::Available))
        {
            if t <= now {
                tracing::warn!("no agent available yet: dialling anyway");
            }
            self.holds.agents_until = None;
        }
        if let Some(f) = self.backoff.tick(now) {
            tracing::info!(
                cps = self.cfg.cps * f,
                "no more congestion: speeding up again"
            );
            self.rate = CallRate::new(self.cfg.cps * f, now);
        }
    }

    /// How many calls the floor wants now (pacing, preview); `ahead()`: calls of campaigns of
    /// higher or equal priority sharing these agents that still want one (asked only when
    /// pacing).
    fn budget(&mut self, now: Instant, ahead: impl FnOnce() -> usize) -> usize {
        let blocked = self.holds.stopping || self.held(now);
        let paced = match (&mut self.pace, blocked) {
            (Some(p), false) => p.budget(now, self.in_flight.len(), &self.agents, ahead()),
            (Some(_), true) => 0,
            (None, _) => usize::MAX,
        };
        if let Some(p) = &mut self.pace {
            for e in p.take_events() {
                self.outbox.campaign_events.push(e);
                self.flush_at.get_or_insert(now);
            }
        }
        if !self.is_preview() {
            for (token, _) in self.preview.pending.drain(..) {
                self.preview
                    .refusals
                    .push_back((token, PreviewRefusal::NotPreview));
            }
            return paced;
        }
        // Preview: one call per agent who asked and is available, nothing else.
        let mut asking = HashSet::new();
        for (token, agent) in std::mem::take(&mut self.preview.pending) {
            let state = self
                .agents
                .get(&agent)
                .copied()
                .unwrap_or(AgentState::Offline);
            let refusal = if blocked {
                Some(PreviewRefusal::NotDialling)
            } else if state != AgentState::Available
                || self.preview.busy.contains_key(&agent)
                || !asking.insert(agent.clone())
            {
                let s = if state == AgentState::Available {
                    "reserved"
                } else {
                    state.as_str()
                };
                Some(PreviewRefusal::AgentNotAvailable(agent.clone(), s.into()))
            } else {
                None
            };
            match refusal {
                Some(r) => self.preview.refusals.push_back((token, r)),
                None => self.preview.pending.push_back((token, agent)),
            }
        }
        self.preview.pending.len()
    }

    /// One dial pass at `now`: the leads due, inside every limit, at most [`MAX_PICKS`].
    /// Taking a pick uses its rate slot and a slot in the shared limits; [`Self::placed`]
    /// gives them back for an attempt another node stored first. `ahead()`: calls of campaigns
    /// of higher or equal priority sharing these agents that still want one (for pacing).
    pub fn poll_dial(&mut self, now: Instant, ahead: impl FnOnce() -> usize) -> DialPass {
        self.tick(now);
        self.limiter_wait = None;
        let paced = self.budget(now, ahead);
        let mut pass = DialPass::default();
        let open = !self.holds.stopping && !self.schedule_ended && !self.held(now);
        let preview_mode = self.is_preview();
        while open
            && self.in_flight.len() + pass.picks.len() < self.cfg.max_concurrent as usize
            && pass.picks.len() < paced
            && pass.picks.len() < MAX_PICKS
        {
            let Some(Reverse((at, lead_id))) = self.due.peek().copied() else {
                break;
            };
            if at > now || self.limits.is_full() {
                break;
            }
            if !self.rate.try_acquire(now) {
                // Wake at most every DIAL_PASS and take the calls whose slots passed meanwhile.
                let slot = self.rate.next_at().saturating_duration_since(now);
                self.limiter_wait = Some(slot.max(DIAL_PASS));
                break;
            }
            // The process-wide and trunk limits, after the campaign's own: a permit holds the
            // call's place in them; dropped (a lead not dialled after all), it goes back.
            let Some(permit) = self.limits.try_start(now) else {
                self.limiter_wait = Some(DIAL_PASS.max(Duration::from_millis(20)));
                break;
            };
            self.due.pop();
            let st = self.leads.get_mut(&lead_id).expect("due lead has state");
            if self.dnc.contains(&st.number) {
                pass.not_dialled.push(LeadUpdate::Final {
                    lead_id,
                    attempts: st.tally.attempts,
                    disposition: Disposition::Dnc,
                });
                continue;
            }
            // Outside the lead's calling window: back in the queue for its next opening (the
            // rate slot is given back by the next pass's catch-up).
            if let Some(w) = &self.window {
                let utc = self.clock.to_utc(now);
                if !w.contains(utc, st.tz) {
                    let opens = self.clock.to_instant(w.next_open(utc, st.tz));
                    self.due.push(Reverse((opens, lead_id)));
                    continue;
                }
            }
            st.last_attempt_no += 1;
            let attempt_no = st.last_attempt_no;
            let preview = if preview_mode {
                self.preview.pending.pop_front().map(|(token, agent)| {
                    self.preview.reserved.insert(token, agent);
                    token
                })
            } else {
                None
            };
            self.admitted.push(permit);
            pass.picks.push(Pick {
                lead_id,
                attempt_no,
                started: now,
                preview,
                callback: self.callback_due.remove(&lead_id),
            });
        }
        if !pass.not_dialled.is_empty() {
            tracing::info!(
                leads = pass.not_dialled.len(),
                "on the do-not-call list: final as dnc, not dialled"
            );
            self.counters.final_leads += pass.not_dialled.len() as u64;
        }
        // Requests no due lead answered this pass (a rate or shared limit may answer them on
        // the next one).
        if self.limiter_wait.is_none() {
            for (token, _) in self.preview.pending.drain(..) {
                self.preview
                    .refusals
                    .push_back((token, PreviewRefusal::NoLeadDue));
            }
        }
        pass
    }

    /// The attempts of `picks` were stored: `ids[i]` is the attempt id of `picks[i]`, or
    /// `None` when another node stored that attempt of the lead first (it is calling it: the
    /// lead is left to it, the rate and limit slots given back, a preview request waits for
    /// the next lead). Returns the calls to place.
    pub fn placed(&mut self, picks: Vec<Pick>, ids: Vec<Option<i64>>) -> Vec<Placement> {
        let mut out = Vec::with_capacity(picks.len());
        for (index, (pick, id)) in picks.into_iter().zip(ids).enumerate() {
            let request = pick
                .preview
                .and_then(|t| self.preview.reserved.remove(&t).map(|a| (t, a)));
            // One permit per pick (they are alike: the same limits).
            let permit = self.admitted.pop();
            let Some(attempt_id) = id else {
                self.leads.remove(&pick.lead_id);
                self.rate.give_back();
                self.counters.taken_elsewhere += 1;
                if let Some(r) = request {
                    self.preview.pending.push_front(r);
                }
                continue;
            };
            self.in_flight.insert(attempt_id, (pick.lead_id, permit));
            if let Some(p) = &mut self.pace {
                p.placed(attempt_id, pick.started);
            }
            self.counters.dialled += 1;
            if let Some((_, agent)) = &request {
                // Busy until this call's `terminated`, whatever agent events arrive meanwhile:
                // a second request must not place a second call.
                self.preview.busy.insert(agent.clone(), attempt_id);
            }
            out.push(Placement {
                index,
                attempt: AttemptRef {
                    attempt_id,
                    lead_id: pick.lead_id,
                    attempt_no: pick.attempt_no,
                },
                number: self.leads[&pick.lead_id].number.clone(),
                preview: request,
                callback: pick.callback,
            });
        }
        out
    }

    /// What is to be stored now, if anything: the call events gathered (once due, see
    /// [`Self::flush_due`]) with the lead decisions they imply — applied here, at `now` —
    /// and the agent and campaign events since the last batch.
    pub fn poll_store(&mut self, now: Instant) -> Option<StoreBatch> {
        let calls_due = self.flush_due(now);
        let others_due = self.flush_at.is_some_and(|f| now >= f) || self.holds.stopping;
        if !(calls_due || others_due && !self.outbox.is_empty()) {
            return None;
        }
        self.flush_at = None;
        let events = std::mem::take(&mut self.inbox);
        let mut batch = std::mem::take(&mut self.outbox);
        for ev in &events {
            if let CallEventKind::IvrExit {
                callback_after_s: Some(s),
                ..
            } = &ev.kind
            {
                self.callbacks
                    .insert(ev.attempt.lead_id, Duration::from_secs(u64::from(*s)));
            }
            if let Some(update) = self.apply(now, ev) {
                batch.lead_updates.push(update);
            }
            // The person asked not to be called again: on the list at once (this run never
            // dials the number again; the store keeps it for every campaign).
            if let CallEventKind::IvrChoice { action, .. } = &ev.kind
                && action == "dnc"
                && let Some(n) = self.number(ev.attempt.lead_id).map(str::to_owned)
                && self.dnc.insert(n.clone())
            {
                batch.dnc_numbers.push(n);
            }
            if let Some(p) = &mut self.pace {
                p.call_event(ev);
            }
        }
        batch.call_events = events;
        (!batch.is_empty()).then_some(batch)
    }

    /// Applies one call event to its lead and the campaign's limits.
    fn apply(&mut self, now: Instant, ev: &CallEvent) -> Option<LeadUpdate> {
        let (disposition, retry_after) = match &ev.kind {
            CallEventKind::Answered { .. } => {
                self.counters.answered += 1;
                return None;
            }
            CallEventKind::Terminated {
                disposition,
                retry_after,
                ..
            } => (*disposition, *retry_after),
            _ => return None,
        };
        if !disposition.spares_the_lead()
            && let Some(f) = self
                .backoff
                .outcome(ev.at, disposition == Disposition::Congestion)
        {
            tracing::warn!(
                cps = self.cfg.cps * f,
                "trunk congestion: calls in a row ended `congestion`; slowing down"
            );
            self.rate = CallRate::new(self.cfg.cps * f, now);
        }
        let trunk_wait = retry_after.map(|s| Duration::from_secs(u64::from(s)));
        if let Some(w) = trunk_wait {
            let until = later(now, w);
            if self.holds.retry_after_until.is_none_or(|h| h < until) {
                tracing::warn!(
                    seconds = w.as_secs(),
                    "trunk asked to retry later (Retry-After): holding new calls"
                );
                self.holds.retry_after_until = Some(until);
            }
        }
        // Its place in the shared limits goes back with the entry.
        self.in_flight.remove(&ev.attempt.attempt_id);
        self.preview.busy.retain(|_, a| *a != ev.attempt.attempt_id);
        let lead_id = ev.attempt.lead_id;
        let st = self.leads.get_mut(&lead_id)?;
        // The person asked the IVR for a callback: called again then, whatever the rules.
        if let Some(after) = self.callbacks.remove(&lead_id) {
            let at = later(now, after);
            if !self.holds.stopping {
                self.due.push(Reverse((at, lead_id)));
            }
            self.callback_due.insert(lead_id);
            return Some(LeadUpdate::Retry {
                lead_id,
                attempts: st.tally.attempts,
                at: self.clock.to_utc(at),
            });
        }
        let decision = decide::decide(
            now,
            &mut st.tally,
            disposition,
            trunk_wait,
            self.cfg.rule_for(disposition),
        );
        let attempts = st.tally.attempts;
        if st.tally.trunk_faults == decide::FREE_TRUNK_FAULTS + 1 {
            tracing::warn!(lead = lead_id, number = %st.number, "the trunk failed this lead's calls {} times in a row while answering others: its attempts count from now", decide::FREE_TRUNK_FAULTS);
        }
        let at = match decision {
            LeadDecision::Again { at, trunk_fault } => {
                self.counters.trunk_failures += u64::from(trunk_fault);
                at
            }
            LeadDecision::Retry { at } => {
                self.counters.failed += u64::from(disposition != Disposition::Answered);
                at
            }
            LeadDecision::Final { disposition: d } => {
                self.counters.failed += u64::from(disposition != Disposition::Answered);
                self.counters.final_leads += 1;
                return Some(LeadUpdate::Final {
                    lead_id,
                    attempts,
                    disposition: d,
                });
            }
        };
        // While stopping, the time is only kept in the store, for the next run.
        if !self.holds.stopping {
            self.due.push(Reverse((at, lead_id)));
        }
        Some(LeadUpdate::Retry {
            lead_id,
            attempts,
            at: self.clock.to_utc(at),
        })
    }

    /// When the run loop must call again at the latest (it also wakes on any input): the next
    /// due lead (once dialling is possible), a rate slot, the end of a Retry-After hold, the
    /// event batch, a tick.
    pub fn poll_timeout(&self, now: Instant) -> Instant {
        let paused =
            self.holds.trunk_paused_at.is_some() || self.holds.control == Some(RunControl::Pause);
        // Waiting for a first agent: due leads wait too (the floor tick looks again).
        let waiting_agents = self.holds.agents_until.is_some_and(|t| t > now);
        let can_dial = !self.holds.stopping
            && !paused
            && !waiting_agents
            && self.in_flight.len() < self.cfg.max_concurrent as usize;
        // A lead due in the past that the dial pass just left (pacing, the picks cap) is
        // looked at again after MIN_TICK, not at once: the loop must not spin on it.
        let next_due = self
            .due
            .peek()
            .map(|Reverse((t, _))| (*t).max(later(now, MIN_TICK)));
        let wake = match (can_dial, next_due, self.limiter_wait) {
            (true, Some(t), Some(w)) => Some(t.max(later(now, w))),
            (true, Some(t), None) => Some(t),
            _ => None,
        };
        // Held by a Retry-After: due leads in the past must not wake the loop at once, again
        // and again; the hold's end does.
        let wake = match (wake, self.holds.retry_after_until) {
            (Some(w), Some(h)) if h > now => Some(w.max(h)),
            (w, _) => w,
        };
        let mut wake = wake.map_or(later(now, IDLE_TICK), |w| w.min(later(now, IDLE_TICK)));
        if let Some(f) = self.flush_at {
            wake = wake.min(f);
        }
        if let Some(t) = self.stop_at {
            wake = wake.min(t.max(now));
        }
        if self.holds.agents_until.is_some() || self.pace.is_some() {
            wake = wake.min(later(now, FLOOR_TICK));
        }
        wake
    }

    /// True when this run has nothing left to do: no call in progress, and no lead due (or
    /// stopping, or past `stop_at`).
    pub fn is_done(&self) -> bool {
        self.in_flight.is_empty()
            && (self.due.is_empty() || self.holds.stopping || self.schedule_ended)
    }

    /// The run ends with calls still in progress (a stop): their shared-limit slots go back.
    pub fn release_in_flight(&mut self) {
        self.in_flight.clear();
        self.admitted.clear();
    }

    /// What was not applied when the run ended: call events not stored yet (stored without
    /// lead decisions; the next run recovers their attempts) and pending agent and campaign
    /// events.
    pub fn take_unapplied(&mut self) -> StoreBatch {
        self.flush_at = None;
        let mut b = std::mem::take(&mut self.outbox);
        b.call_events = std::mem::take(&mut self.inbox);
        b
    }

    /// The number of a lead of this run.
    pub fn number(&self, lead_id: i64) -> Option<&str> {
        self.leads.get(&lead_id).map(|s| s.number.as_str())
    }

    /// Calls in progress.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The run's figures so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Times trunk congestion halved the call rate.
    pub fn congestion_backoffs(&self) -> u32 {
        self.backoff.times_lowered()
    }

    /// The current call rate's factor of `cps` (1 without congestion).
    pub fn rate_factor(&self) -> f64 {
        self.backoff.factor()
    }

    /// Times every trunk was down, and for how long in all up to `now`.
    pub fn trunk_pauses(&self, now: Instant) -> (u32, Duration) {
        let (n, d) = self.holds.trunk_pauses;
        let open = self
            .holds
            .trunk_paused_at
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        (n, d + open)
    }

    /// Pacing figures (`[endpoint]` campaigns): abandon rate over the window (0–1) and the
    /// dial ratio.
    pub fn pacing(&self) -> Option<(f64, f64)> {
        self.pace
            .as_ref()
            .map(|p| (p.abandon_rate(), p.dial_ratio()))
    }
}
