//! The ACD as a sans-IO core: the registrar agents' phones REGISTER with, the agent pool, the
//! queue of answered customers, offers to agents (per-call B2BUA legs) or their standing calls
//! (`persistent` mode), bridging, `max_wait` abandonment and both sides' hang-ups.
//!
//! [`Acd`] is fed what happened — a REGISTER, a customer answered ([`Acd::enqueue`]) or ended,
//! an agent leg's call events, an agent's own request, the current time — and returns what to
//! do as [`AcdAction`]s through [`Acd::poll_action`]: `Offer` (INVITE an agent's phone),
//! `Bridge`/`Unbridge` (switch the RTP relay), `HangUp`, `Play`, call and agent events. It never
//! sends anything itself, owns no call leg and reads no clock; the engine core carries the
//! actions out on its call legs and media commands (`engine/acd_flow.rs`) and reports back
//! whether an agent leg could be started ([`Acd::call_started`] / [`Acd::call_not_started`]).
//! Tested with a virtual clock in `tests/acd_core.rs`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::queue::Queue;
use super::registrar::{BindingChange, RegistrarStats};
use super::{
    AcdConfig, AgentAction, AgentControlError, AgentPool, AgentStats, AgentView, ConnectMode, Ha1,
    Registrar, Strategy,
};
use crate::events::disposition::Disposition;
use crate::events::{
    AgentEvent, AgentReason, AgentState, AttemptRef, CallEvent, CallEventKind, DequeueReason,
    EndReason, Playback,
};
use crate::sip::message::{Inbound, Tokens, Transport};

/// Longest a customer or agent leg stays up under the ACD (the hold timer's cap): 4 hours.
pub const MAX_CALL: Duration = Duration::from_secs(4 * 3600);

/// The ACD's figures for the run summary.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct AcdSummary {
    /// Customers that entered the queue.
    pub queued: u64,
    /// Customers bridged to an agent.
    pub connected: u64,
    /// Customers abandoned (hung up while queued, or past `max_wait`).
    pub abandoned: u64,
    /// Offers to agents not taken.
    pub offers_failed: u64,
    /// Queue wait (queued → bridged), ms: median.
    pub wait_p50_ms: f64,
    /// Queue wait, ms: 99th percentile.
    pub wait_p99_ms: f64,
    /// Customer answer (2xx) → bridge, ms: median (includes AMD's decision time).
    pub answer_to_bridge_p50_ms: f64,
    /// Customer answer → bridge, ms: 99th percentile.
    pub answer_to_bridge_p99_ms: f64,
    /// Registrar counters.
    #[serde(skip)]
    pub registrar: RegistrarStats,
    /// Per agent.
    pub agents: Vec<AgentStats>,
}

/// An agent leg to start: an INVITE to an agent's phone (see [`AcdAction::Offer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCall {
    /// The Call-ID the leg must use (the ACD names its legs).
    pub call_id: String,
    /// The agent's id (registrar username): the To user.
    pub agent: String,
    /// The Request-URI: the phone's registered Contact, or the agent's static URI.
    pub request_uri: String,
    /// Where the phone registered from and on which transport; `None` for a static agent,
    /// reached through the trunk like a customer.
    pub phone: Option<(SocketAddr, Transport)>,
    /// The customer it is offered for (its Call-ID); `None` for a standing (login) call.
    pub customer: Option<String>,
    /// CANCEL when not answered within this (`acd.offer_timeout`).
    pub ring_timeout: Duration,
}

/// What the ACD asks its engine to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum AcdAction {
    /// Send this REGISTER response.
    Transmit {
        /// The REGISTER's source.
        dest: SocketAddr,
        /// The response.
        bytes: Vec<u8>,
    },
    /// INVITE an agent's phone. Answer with [`Acd::call_started`] once the leg exists (before
    /// its first events are fed back) or [`Acd::call_not_started`].
    Offer(AgentCall),
    /// Relay the RTP of `customer` and `agent_leg` to each other, and report the connection
    /// (the `connected` event, whose codec check only the engine can make).
    Bridge {
        /// The customer's Call-ID.
        customer: String,
        /// The agent leg's Call-ID.
        agent_leg: String,
        /// The agent's id.
        agent: String,
        /// Milliseconds the customer waited in the queue.
        wait_ms: u32,
        /// How the agent is connected.
        mode: ConnectMode,
    },
    /// Stop relaying between them (a standing agent call stays up for the next customer).
    Unbridge {
        /// The customer's Call-ID.
        customer: String,
        /// The agent leg's Call-ID.
        agent_leg: String,
    },
    /// End a leg: `reason` `None` ends it in any state (CANCEL while ringing, BYE when up);
    /// `Some` sends BYE with that reason only if it is up.
    HangUp {
        /// The leg's Call-ID.
        call_id: String,
        /// See above.
        reason: Option<EndReason>,
    },
    /// Play a prompt to the customer (the abandon message after `max_wait`), then BYE.
    Play {
        /// The customer's Call-ID.
        call_id: String,
        /// Which prompt.
        what: Playback,
    },
    /// A call event for the campaign (queue and agent events of a customer's call).
    Event(CallEvent),
    /// An agent changed state.
    Agent(AgentEvent),
}

/// An agent leg the ACD started.
#[derive(Debug)]
struct AgentLeg {
    agent: usize,
    /// The customer it was offered for / is bridged to.
    customer: Option<String>,
    /// A standing (login) call of `persistent` mode.
    persistent: bool,
    answered: bool,
    /// We cancelled the offer (the customer left): not the agent's miss.
    withdrawn: bool,
    /// The agent was released from this leg's customer already (the customer left or was
    /// transferred away): the leg's end changes nothing for the agent (its wrap-up runs).
    released: bool,
}

/// A customer the ACD knows: answered and queued, then connected or abandoned.
#[derive(Debug)]
struct Customer {
    attempt: AttemptRef,
    answered_at: Instant,
    queued_at: Instant,
    /// Abandoned if not connected by then (`max_wait`).
    deadline: Option<Instant>,
    /// Bridged to (agent index, agent leg Call-ID).
    bridged: Option<(usize, String)>,
    /// Abandoned: its `terminated` carries the `abandoned` disposition.
    abandoned: bool,
}

/// Persistent mode: an agent's standing call and when to try it again.
#[derive(Debug, Clone, Default)]
struct Login {
    leg: Option<String>,
    retry_at: Option<Instant>,
}

/// The ACD core. See the module documentation.
pub struct Acd {
    cfg: AcdConfig,
    registrar: Registrar,
    pool: AgentPool,
    /// Who waits, in what order, for which agent, with which offers ringing.
    queue: Queue,
    customers: HashMap<String, Customer>,
    agent_legs: HashMap<String, AgentLeg>,
    logins: Vec<Login>,
    /// Per agent: the attempt of the customer it was last connected to (for the events of
    /// its disposition, which may come after that call ended).
    last_attempt: Vec<Option<AttemptRef>>,
    wait: hdrhistogram::Histogram<u64>,
    answer_to_bridge: hdrhistogram::Histogram<u64>,
    summary: AcdSummary,
    /// Call-IDs of agent legs, registrar nonces.
    tokens: Tokens,
    actions: VecDeque<AcdAction>,
}

impl std::fmt::Debug for Acd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acd")
            .field("queue", &self.queue)
            .field("customers", &self.customers)
            .field("agent_legs", &self.agent_legs)
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

fn histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3).expect("static bounds")
}

fn ms_since(now: Instant, then: Instant) -> u32 {
    now.saturating_duration_since(then).as_millis() as u32
}

impl Acd {
    /// An ACD with every agent offline, at `now`, drawing Call-IDs and nonces from `tokens`.
    pub fn new(cfg: AcdConfig, now: Instant, mut tokens: Tokens) -> Self {
        let mut registrar = Registrar::new(cfg.registrar.clone(), now, tokens.fork());
        for a in &cfg.agents {
            if let Some(h) = &a.ha1 {
                registrar.set_account(a.id.clone(), h.clone());
            }
        }
        let ids: Vec<String> = cfg.agents.iter().map(|a| a.id.clone()).collect();
        let mut pool = AgentPool::new(now, &ids, cfg.strategy, cfg.wrap_up, cfg.max_misses);
        pool.set_mandatory_disposition(cfg.mandatory_disposition);
        Self {
            logins: vec![Login::default(); ids.len()],
            last_attempt: vec![None; ids.len()],
            registrar,
            pool,
            cfg,
            queue: Queue::default(),
            customers: HashMap::new(),
            agent_legs: HashMap::new(),
            wait: histogram(),
            answer_to_bridge: histogram(),
            summary: AcdSummary::default(),
            tokens,
            actions: VecDeque::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &AcdConfig {
        &self.cfg
    }

    /// The next thing to do, in order.
    pub fn poll_action(&mut self) -> Option<AcdAction> {
        self.actions.pop_front()
    }

    /// Static agents are reachable from the start (persistent mode: their login calls start).
    pub fn start(&mut self, now: Instant) {
        let statics: Vec<usize> = (0..self.cfg.agents.len())
            .filter(|i| self.cfg.agents[*i].static_uri.is_some())
            .collect();
        for i in statics {
            self.agent_reachable(now, i, AgentReason::Static);
        }
        self.drain_agent_events();
    }

    /// Where to reach agent `i`: (Request-URI, phone address and transport), or `None` when
    /// unreachable. A static agent (`None` address) is reached through the trunk.
    fn contact(&self, i: usize) -> Option<(String, Option<(SocketAddr, Transport)>)> {
        let a = &self.cfg.agents[i];
        if let Some(uri) = &a.static_uri {
            return Some((uri.clone(), None));
        }
        self.registrar
            .bindings(&a.id)
            .last()
            .map(|b| (b.uri.clone(), Some((b.target, b.transport))))
    }

    fn registered(&self, i: usize) -> bool {
        self.contact(i).is_some()
    }

    fn drain_agent_events(&mut self) {
        while let Some(e) = self.pool.poll_event() {
            self.actions.push_back(AcdAction::Agent(e));
        }
    }

    /// A call event of customer `customer` (known to the ACD: queued).
    fn event(&mut self, customer: &str, at: Instant, kind: CallEventKind) {
        if let Some(c) = self.customers.get(customer) {
            self.actions.push_back(AcdAction::Event(CallEvent {
                call_id: customer.to_string(),
                attempt: c.attempt.clone(),
                at,
                kind,
            }));
        }
    }

    fn agent_reachable(&mut self, now: Instant, i: usize, reason: AgentReason) {
        match self.cfg.mode {
            ConnectMode::PerCall => {
                self.pool.set_reachable(now, i, true, reason);
                self.dispatch(now);
            }
            ConnectMode::Persistent => {
                if self.logins[i].leg.is_none() {
                    self.logins[i].retry_at = None;
                    self.start_agent_leg(i, None);
                }
            }
        }
    }

    fn agent_unreachable(&mut self, now: Instant, i: usize, reason: AgentReason) {
        self.pool.set_reachable(now, i, false, reason);
        if let Some(login) = self.logins[i].leg.clone()
            && self
                .agent_legs
                .get(&login)
                .is_some_and(|l| l.customer.is_none())
        {
            // The agent logged out: end the standing call once it carries no customer.
            self.actions.push_back(AcdAction::HangUp {
                call_id: login,
                reason: None,
            });
        }
    }

    /// A REGISTER out of dialog (RFC 3261 §10), from `src` over `transport`: the registrar's
    /// response, and agents becoming reachable or not.
    pub fn handle_register(
        &mut self,
        now: Instant,
        msg: &Inbound,
        src: SocketAddr,
        transport: Transport,
    ) {
        let out = self.registrar.handle_register(now, msg, src, transport);
        if let Some(bytes) = out.response {
            self.actions
                .push_back(AcdAction::Transmit { dest: src, bytes });
        }
        self.apply_binding_changes(now, out.changes, AgentReason::Unregistered);
    }

    fn apply_binding_changes(
        &mut self,
        now: Instant,
        changes: Vec<BindingChange>,
        down: AgentReason,
    ) {
        for c in changes {
            let Some(i) = self.pool.index(&c.user) else {
                continue;
            };
            if c.registered {
                self.agent_reachable(now, i, AgentReason::Registered);
            } else {
                self.agent_unreachable(now, i, down.clone());
            }
        }
        self.drain_agent_events();
    }

    /// When [`Acd::handle_timeout`] is next due: a binding's expiry, the end of a wrap-up, a
    /// standing call's retry, a customer's `max_wait`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.registrar.poll_timeout(),
            self.pool.poll_timeout(),
            self.logins.iter().filter_map(|l| l.retry_at).min(),
            self.customers.values().filter_map(|c| c.deadline).min(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whatever is due at `now`: expired bindings, ended wrap-ups, standing calls to try again,
    /// customers past `max_wait` (abandoned: the abandon message, or BYE).
    pub fn handle_timeout(&mut self, now: Instant) {
        let changes = self.registrar.handle_timeout(now);
        self.pool.handle_timeout(now);
        let retries: Vec<usize> = (0..self.logins.len())
            .filter(|i| self.logins[*i].retry_at.is_some_and(|t| t <= now))
            .collect();
        self.apply_binding_changes(now, changes, AgentReason::Expired);
        for i in retries {
            self.logins[i].retry_at = None;
            if self.registered(i) && self.logins[i].leg.is_none() {
                self.start_agent_leg(i, None);
            }
        }
        let mut overdue: Vec<(Instant, String)> = self
            .customers
            .iter()
            .filter_map(|(id, c)| c.deadline.filter(|t| *t <= now).map(|t| (t, id.clone())))
            .collect();
        overdue.sort();
        for (_, id) in overdue {
            self.max_wait(now, &id);
        }
        self.drain_agent_events();
        self.dispatch(now);
    }

    /// An answered customer (human by AMD, or answered without AMD, at `answered_at`) enters
    /// the queue: a `queued` event, then offers. False when it was queued before (nothing
    /// changes).
    pub fn enqueue(
        &mut self,
        now: Instant,
        customer: &str,
        attempt: AttemptRef,
        answered_at: Instant,
    ) -> bool {
        if self.customers.contains_key(customer) {
            return false;
        }
        self.customers.insert(
            customer.to_string(),
            Customer {
                attempt,
                answered_at,
                queued_at: now,
                deadline: Some(now + self.cfg.max_wait),
                bridged: None,
                abandoned: false,
            },
        );
        let position = self.queue.enqueue(customer);
        self.summary.queued += 1;
        self.event(customer, now, CallEventKind::Queued { position });
        self.dispatch(now);
        true
    }

    /// The queue priority of `customer`'s campaign (before its call starts; higher first).
    pub fn set_priority(&mut self, customer: &str, priority: i32) {
        self.queue.set_priority(customer, priority);
    }

    /// Preview dialling: `customer` was just placed for `agent`, who asked for the next lead.
    /// An available agent is reserved for it (no other call is offered to it) and gets it as
    /// soon as it is answered and queued; an agent no longer available (or unknown) leaves
    /// the call to the queue like any other.
    pub fn preview(&mut self, now: Instant, customer: &str, agent: &str) {
        let Some(i) = self.pool.index(agent) else {
            return;
        };
        if self.pool.state(i) != AgentState::Available {
            return;
        }
        self.pool.preview(now, i, customer);
        self.queue.reserve_for(customer, i);
        self.drain_agent_events();
    }

    /// True when agent `id` exists and is available (a transfer to it may start).
    pub fn agent_available(&self, id: &str) -> bool {
        self.pool
            .index(id)
            .is_some_and(|i| self.pool.state(i) == AgentState::Available)
    }

    /// A blind transfer that failed after its agent released the customer: the customer
    /// waits again for any agent (a `queued` event, `max_wait` from now). False (nothing
    /// changes) when the customer is unknown, bridged or already waiting.
    pub fn requeue(&mut self, now: Instant, customer: &str) -> bool {
        if !self.wait_again(now, customer) {
            return false;
        }
        self.dispatch(now);
        true
    }

    /// A blind transfer to agent `agent`: `customer` — released by its agent with
    /// [`Self::transfer_away`] — waits again (a `queued` event, `max_wait` from now),
    /// reserved for that agent alone, and is offered to it at once. False (nothing changes)
    /// when the customer is unknown or still bridged, or the agent is not available.
    pub fn requeue_for(&mut self, now: Instant, customer: &str, agent: &str) -> bool {
        if !self.agent_available(agent) || !self.wait_again(now, customer) {
            return false;
        }
        self.preview(now, customer, agent);
        self.dispatch(now);
        true
    }

    /// A warm transfer to agent `agent`: the agent is reserved (no other call is offered to
    /// it) for `customer`'s consultation, and the returned [`AgentCall`] is the leg that
    /// rings its phone (the engine starts it as the consultation leg; the ACD tracks it only
    /// from [`Self::hand_over`]). Errors ([`AgentControlError::NotNow`], saying which):
    /// unknown agent; not available; no registered phone; persistent mode (the agent's
    /// phone is busy with its standing call — a blind transfer to `agent:ID` works there).
    pub fn consult_agent(
        &mut self,
        now: Instant,
        customer: &str,
        agent: &str,
    ) -> Result<AgentCall, AgentControlError> {
        let not_now = |why: String| AgentControlError::NotNow(why);
        let i = self
            .pool
            .index(agent)
            .ok_or_else(|| not_now(format!("no agent {agent:?}")))?;
        if self.cfg.mode == ConnectMode::Persistent {
            return Err(AgentControlError::NotNow(
                "a warm transfer to an agent needs acd.mode = \"per_call\" (a standing call \
                 cannot ring again); a blind transfer to agent:ID works in both modes"
                    .to_string(),
            ));
        }
        if self.pool.state(i) != AgentState::Available {
            return Err(AgentControlError::NotNow(format!(
                "agent {agent:?} is not available"
            )));
        }
        let (request_uri, phone) = self
            .contact(i)
            .ok_or_else(|| not_now(format!("agent {agent:?} has no registered phone")))?;
        self.pool.reserve(now, i, customer);
        self.drain_agent_events();
        Ok(AgentCall {
            call_id: self.tokens.call_id(),
            agent: agent.to_string(),
            request_uri,
            phone,
            customer: Some(customer.to_string()),
            ring_timeout: self.cfg.offer_timeout,
        })
    }

    /// The consultation with agent `agent` (reserved by [`Self::consult_agent`]) ended
    /// without a hand-over — cancelled, not answered, either side hung up: the agent is
    /// available again (not a missed offer). Nothing changes when it is no longer reserved.
    pub fn consult_ended(&mut self, now: Instant, customer: &str, agent: &str) {
        let Some(i) = self.pool.index(agent) else {
            return;
        };
        if self.pool.state(i) != AgentState::Reserved {
            return;
        }
        self.pool.offer_failed(now, i, false, customer);
        self.drain_agent_events();
        self.dispatch(now);
    }

    /// A warm transfer to agent `agent` completed: `customer`'s first agent is released as by
    /// [`Self::transfer_away`] (wrap-up, its leg ended), and the customer is bridged to
    /// `agent` on `leg` — the answered consultation leg, from now on that agent's leg (its
    /// end ends the customer's call; the customer's end releases the agent into wrap-up). A
    /// [`AcdAction::Bridge`] follows (`wait_ms` 0). False, changing nothing, when the agent
    /// is no longer reserved or the customer is not the ACD's.
    pub fn hand_over(&mut self, now: Instant, customer: &str, agent: &str, leg: &str) -> bool {
        let Some(i) = self.pool.index(agent) else {
            return false;
        };
        if self.pool.state(i) != AgentState::Reserved || !self.customers.contains_key(customer) {
            return false;
        }
        self.transfer_away(now, customer);
        self.agent_legs.insert(
            leg.to_string(),
            AgentLeg {
                agent: i,
                customer: Some(customer.to_string()),
                persistent: false,
                answered: true,
                withdrawn: false,
                released: false,
            },
        );
        self.pool.connect(now, i, customer);
        let c = self.customers.get_mut(customer).expect("checked above");
        self.last_attempt[i] = Some(c.attempt.clone());
        c.bridged = Some((i, leg.to_string()));
        self.actions.push_back(AcdAction::Bridge {
            customer: customer.to_string(),
            agent_leg: leg.to_string(),
            agent: agent.to_string(),
            wait_ms: 0,
            mode: self.cfg.mode,
        });
        self.drain_agent_events();
        true
    }

    /// A blind transfer that failed after its agent released the customer: the customer
    /// waits again (a `queued` event, `max_wait` from now) and is offered first to `agent`,
    /// the one who transferred it, when that agent is available (its wrap-up over); if that
    /// agent is not, or misses the offer, to any agent. False (nothing changes) when the
    /// customer is unknown, bridged or already waiting.
    pub fn requeue_prefer(&mut self, now: Instant, customer: &str, agent: &str) -> bool {
        if !self.wait_again(now, customer) {
            return false;
        }
        if let Some(i) = self
            .pool
            .index(agent)
            .filter(|i| self.pool.state(*i) == AgentState::Available)
        {
            self.pool.preview(now, i, customer);
            self.queue.prefer(customer, i);
            self.drain_agent_events();
        }
        self.dispatch(now);
        true
    }

    /// A released customer back in line: `max_wait` counted from now, a `queued` event.
    /// False (nothing changes) when it is unknown, bridged or already waiting.
    fn wait_again(&mut self, now: Instant, customer: &str) -> bool {
        let max_wait = self.cfg.max_wait;
        let Some(c) = self.customers.get_mut(customer) else {
            return false;
        };
        if c.bridged.is_some() || self.queue.is_waiting(customer) {
            return false;
        }
        c.queued_at = now;
        c.deadline = Some(now + max_wait);
        c.abandoned = false;
        let position = self.queue.enqueue(customer);
        self.event(customer, now, CallEventKind::Queued { position });
        true
    }

    /// Offers waiting customers to available agents, in priority then arrival order (a
    /// preview call only to the agent it was placed for).
    fn dispatch(&mut self, now: Instant) {
        for (customer, agent) in self.queue.previews_due() {
            match self.cfg.mode {
                ConnectMode::Persistent => {
                    if let Some(login) = self.logins[agent].leg.clone() {
                        self.connect(now, &customer, agent, &login);
                    }
                }
                ConnectMode::PerCall => self.offer(now, &customer, agent),
            }
        }
        // Ring-all (per-call): every available agent rings for the head of the queue, an
        // agent who becomes available joins the ringing. Otherwise one offer per customer.
        let ring_all =
            self.cfg.strategy == Strategy::RingAll && self.cfg.mode == ConnectMode::PerCall;
        while let Some(customer) = self.queue.next(ring_all).cloned() {
            let Some(agent) = self.pool.pick() else { break };
            match self.cfg.mode {
                ConnectMode::Persistent => {
                    let Some(login) = self.logins[agent].leg.clone() else {
                        // Available without a standing call cannot happen; take it out.
                        self.pool
                            .set_reachable(now, agent, false, AgentReason::NoLoginCall);
                        continue;
                    };
                    self.pool.reserve(now, agent, &customer);
                    self.connect(now, &customer, agent, &login);
                }
                ConnectMode::PerCall => self.offer(now, &customer, agent),
            }
        }
        self.drain_agent_events();
    }

    /// Offers `customer` to agent `agent` (per-call): reserves the agent and asks for a leg.
    fn offer(&mut self, now: Instant, customer: &str, agent: usize) {
        self.pool.reserve(now, agent, customer);
        match self.start_agent_leg(agent, Some(customer)) {
            Some(leg) => self.queue.offered(customer, &leg),
            None => self.agent_unplaceable(now, agent, customer),
        }
    }

    /// An offer to `agent` could not be placed (no contact): not its miss, but it is
    /// taken out of the rotation until it registers again.
    fn agent_unplaceable(&mut self, now: Instant, agent: usize, customer: &str) {
        self.pool.offer_failed(now, agent, false, customer);
        self.pool
            .set_reachable(now, agent, false, AgentReason::NoContactOrPort);
    }

    /// Asks for a leg to agent `i`'s phone: an offer for `customer` or the standing call
    /// (`None`). Returns its Call-ID, `None` when the agent has no contact.
    fn start_agent_leg(&mut self, i: usize, customer: Option<&str>) -> Option<String> {
        let (request_uri, phone) = self.contact(i)?;
        let call_id = self.tokens.call_id();
        self.agent_legs.insert(
            call_id.clone(),
            AgentLeg {
                agent: i,
                customer: customer.map(str::to_string),
                persistent: customer.is_none(),
                answered: false,
                withdrawn: false,
                released: false,
            },
        );
        if customer.is_none() {
            self.logins[i].leg = Some(call_id.clone());
        }
        self.actions.push_back(AcdAction::Offer(AgentCall {
            call_id: call_id.clone(),
            agent: self.pool.id(i).to_string(),
            request_uri,
            phone,
            customer: customer.map(str::to_string),
            ring_timeout: self.cfg.offer_timeout,
        }));
        Some(call_id)
    }

    /// The agent leg `call_id` of an [`AcdAction::Offer`] exists: an offer's `agent_offered`
    /// event goes out.
    pub fn call_started(&mut self, now: Instant, call_id: &str) {
        let Some(leg) = self.agent_legs.get(call_id) else {
            return;
        };
        if let Some(customer) = leg.customer.clone() {
            let agent = self.pool.id(leg.agent).to_string();
            self.event(
                &customer,
                now,
                CallEventKind::AgentOffered {
                    agent,
                    agent_call_id: call_id.to_string(),
                },
            );
        }
    }

    /// The agent leg `call_id` of an [`AcdAction::Offer`] could not be started for want of a
    /// bound RTP port (a burst of answers used up the shell's reserve): not the agent's
    /// doing — an offer's agent is available again (not a miss) and its customer stays in
    /// line; a standing call is tried again after `login_retry`. Nothing is offered again
    /// now (it would fail the same way): the engine calls [`Self::redispatch`] once it has
    /// ports again.
    pub fn call_not_started(&mut self, now: Instant, call_id: &str) {
        let Some(leg) = self.agent_legs.remove(call_id) else {
            return;
        };
        if leg.persistent {
            self.logins[leg.agent].leg = None;
            self.logins[leg.agent].retry_at = Some(now + self.cfg.login_retry);
        }
        if let Some(customer) = leg.customer {
            self.queue.offer_failed(&customer, call_id);
            self.pool.offer_failed(now, leg.agent, false, &customer);
        }
        self.drain_agent_events();
    }

    /// Offers waiting customers to available agents now (after [`Self::call_not_started`],
    /// once RTP ports are bound again).
    pub fn redispatch(&mut self, now: Instant) {
        self.dispatch(now);
    }

    /// Ends the offers `legs`: the customer went elsewhere, so they are not the agents' misses.
    fn withdraw(&mut self, legs: Vec<String>) {
        for call_id in legs {
            if let Some(l) = self.agent_legs.get_mut(&call_id) {
                l.withdrawn = true;
            }
            self.actions.push_back(AcdAction::HangUp {
                call_id,
                reason: None,
            });
        }
    }

    /// Bridges a waiting customer to agent `agent` on its leg `leg` (answered); other offers
    /// ringing for it (ring-all) are withdrawn.
    fn connect(&mut self, now: Instant, customer: &str, agent: usize, leg: &str) {
        let others = self.queue.connected(customer, leg);
        self.withdraw(others);
        if let Some(l) = self.agent_legs.get_mut(leg) {
            l.customer = Some(customer.to_string());
        }
        self.pool.connect(now, agent, customer);
        let Some(c) = self.customers.get_mut(customer) else {
            return;
        };
        self.last_attempt[agent] = Some(c.attempt.clone());
        let wait = now.saturating_duration_since(c.queued_at);
        let since_answer = now.saturating_duration_since(c.answered_at);
        c.deadline = None;
        c.bridged = Some((agent, leg.to_string()));
        self.summary.connected += 1;
        let _ = self.wait.record((wait.as_micros() as u64).max(1));
        let _ = self
            .answer_to_bridge
            .record((since_answer.as_micros() as u64).max(1));
        let wait_ms = wait.as_millis() as u32;
        self.event(
            customer,
            now,
            CallEventKind::Dequeued {
                wait_ms,
                reason: DequeueReason::Connected,
            },
        );
        self.actions.push_back(AcdAction::Bridge {
            customer: customer.to_string(),
            agent_leg: leg.to_string(),
            agent: self.pool.id(agent).to_string(),
            wait_ms,
            mode: self.cfg.mode,
        });
        self.drain_agent_events();
    }

    /// Takes `customer` out of the queue as abandoned, withdrawing any offer ringing for it.
    /// False when it was not waiting.
    fn abandon(&mut self, now: Instant, customer: &str, reason: DequeueReason) -> bool {
        let Some(legs) = self.queue.abandoned(customer) else {
            return false;
        };
        self.summary.abandoned += 1;
        self.withdraw(legs);
        let Some(c) = self.customers.get_mut(customer) else {
            return true;
        };
        c.abandoned = true;
        c.deadline = None;
        let wait_ms = ms_since(now, c.queued_at);
        for kind in [
            CallEventKind::Dequeued { wait_ms, reason },
            CallEventKind::Abandoned { wait_ms, reason },
        ] {
            self.event(customer, now, kind);
        }
        true
    }

    /// `max_wait` passed for a queued customer: the abandon message, then BYE.
    fn max_wait(&mut self, now: Instant, customer: &str) {
        if !self.abandon(now, customer, DequeueReason::MaxWait) {
            return;
        }
        let call_id = customer.to_string();
        self.actions
            .push_back(if self.cfg.abandon_message.is_some() {
                AcdAction::Play {
                    call_id,
                    what: Playback::Abandon,
                }
            } else {
                AcdAction::HangUp {
                    call_id,
                    reason: Some(EndReason::Abandoned),
                }
            });
    }

    /// A customer's call ended (before its `terminated` goes out): it leaves the queue
    /// (abandoned if it was waiting), a reserved preview agent is freed, its agent released
    /// and the agent's leg ended (a standing call only unbridged). Returns true when the call
    /// was abandoned (its `terminated` carries the `abandoned` disposition).
    pub fn customer_ended(&mut self, now: Instant, customer: &str) -> bool {
        // A preview call never connected: its agent is free again (an offer still ringing
        // for it is withdrawn below, and that leg's end frees the agent instead).
        if let Some(i) = self.queue.ended(customer) {
            self.pool.preview_ended(now, i, customer);
            self.drain_agent_events();
        }
        self.abandon(now, customer, DequeueReason::CallerHangup);
        let Some(c) = self.customers.remove(customer) else {
            return false;
        };
        if let Some((agent, leg)) = c.bridged {
            let persistent = self.agent_legs.get(&leg).is_some_and(|l| l.persistent);
            if let Some(l) = self.agent_legs.get_mut(&leg) {
                l.customer = None;
                l.released = true;
            }
            self.pool.release(now, agent, customer);
            if persistent {
                self.actions.push_back(AcdAction::Unbridge {
                    customer: customer.to_string(),
                    agent_leg: leg.clone(),
                });
                if !self.registered(agent) {
                    // Logged out during the call: the standing call ends now.
                    self.actions.push_back(AcdAction::HangUp {
                        call_id: leg,
                        reason: None,
                    });
                }
            } else {
                self.actions.push_back(AcdAction::HangUp {
                    call_id: leg,
                    reason: Some(EndReason::CustomerHangup),
                });
            }
            self.drain_agent_events();
            self.dispatch(now);
        }
        c.abandoned
    }

    /// True while customer `customer` is bridged to an agent.
    pub fn is_bridged(&self, customer: &str) -> bool {
        self.customers
            .get(customer)
            .is_some_and(|c| c.bridged.is_some())
    }

    /// The customer agent `agent` is bridged to now and the agent leg bridging them:
    /// `(customer Call-ID, agent leg Call-ID)`; `None` when the agent is on no call (or
    /// unknown).
    pub fn bridged_call(&self, agent: &str) -> Option<(String, String)> {
        let i = self.pool.index(agent)?;
        self.customers.iter().find_map(|(id, c)| match &c.bridged {
            Some((a, leg)) if *a == i => Some((id.clone(), leg.clone())),
            _ => None,
        })
    }

    /// The agent sent `customer` on elsewhere (a blind transfer): the customer's call goes on
    /// without an agent (its end no longer touches the agent), the agent is released into
    /// its wrap-up and its leg ended (a standing call only unbridged). Does nothing for a
    /// customer not bridged.
    pub fn transfer_away(&mut self, now: Instant, customer: &str) {
        let Some((agent, leg)) = self
            .customers
            .get_mut(customer)
            .and_then(|c| c.bridged.take())
        else {
            return;
        };
        let persistent = self.agent_legs.get(&leg).is_some_and(|l| l.persistent);
        if let Some(l) = self.agent_legs.get_mut(&leg) {
            l.customer = None;
            l.released = true;
        }
        self.pool.release(now, agent, customer);
        self.actions.push_back(AcdAction::Unbridge {
            customer: customer.to_string(),
            agent_leg: leg.clone(),
        });
        if !persistent {
            self.actions.push_back(AcdAction::HangUp {
                call_id: leg,
                reason: Some(EndReason::Transferred),
            });
        }
        self.drain_agent_events();
        self.dispatch(now);
    }

    /// True when `call_id` is an agent leg of this ACD.
    pub fn is_agent_leg(&self, call_id: &str) -> bool {
        self.agent_legs.contains_key(call_id)
    }

    /// A call event of agent leg `leg` (at `at`): its answer bridges the customer it was
    /// offered for (or, for a standing call, makes the agent available); its hold is relayed
    /// to the customer's events; its end releases the agent (a missed offer puts the
    /// customer back in line; an agent hanging up ends the customer's call).
    pub fn agent_leg_event(&mut self, now: Instant, leg: &str, at: Instant, kind: &CallEventKind) {
        let Some(info) = self.agent_legs.get_mut(leg) else {
            return;
        };
        let agent = info.agent;
        match kind {
            CallEventKind::Answered { .. } => {
                info.answered = true;
                if info.persistent {
                    self.pool
                        .set_reachable(now, agent, true, AgentReason::LoginCallUp);
                    self.drain_agent_events();
                    self.dispatch(now);
                    return;
                }
                let customer = info.customer.clone();
                match customer {
                    Some(c) if self.queue.is_offer(&c, leg) => self.connect(now, &c, agent, leg),
                    _ => {
                        info.customer = None;
                        self.actions.push_back(AcdAction::HangUp {
                            call_id: leg.to_string(),
                            reason: Some(EndReason::OfferWithdrawn),
                        });
                    }
                }
            }
            CallEventKind::Held { .. } | CallEventKind::Resumed { .. } => {
                let Some(customer) = info.customer.clone() else {
                    return;
                };
                let (l, sip_call_id) = ("agent".to_string(), leg.to_string());
                let k = if matches!(kind, CallEventKind::Held { .. }) {
                    CallEventKind::Held {
                        leg: l,
                        sip_call_id,
                        by: None,
                    }
                } else {
                    CallEventKind::Resumed {
                        leg: l,
                        sip_call_id,
                        by: None,
                    }
                };
                self.event(&customer, at, k);
            }
            CallEventKind::Terminated {
                sip_status,
                disposition,
                ..
            } => {
                let Some(info) = self.agent_legs.remove(leg) else {
                    return;
                };
                self.agent_leg_ended(now, leg, info, *sip_status, *disposition);
                self.drain_agent_events();
                self.dispatch(now);
            }
            _ => {}
        }
    }

    fn agent_leg_ended(
        &mut self,
        now: Instant,
        leg: &str,
        info: AgentLeg,
        sip_status: Option<u16>,
        detail: Disposition,
    ) {
        let agent = info.agent;
        if info.persistent {
            self.logins[agent].leg = None;
            if self.registered(agent) {
                self.logins[agent].retry_at = Some(now + self.cfg.login_retry);
            }
            if let Some(c) = &info.customer {
                self.pool.release(now, agent, c);
            }
            self.pool
                .set_reachable(now, agent, false, AgentReason::LoginCallEnded);
            if let Some(c) = info.customer {
                self.agent_hung_up(&c);
            }
        } else if !info.answered {
            let offered = info.customer.filter(|c| self.queue.is_offer(c, leg));
            self.pool.offer_failed(
                now,
                agent,
                !info.withdrawn,
                offered.as_deref().unwrap_or(""),
            );
            self.summary.offers_failed += u64::from(!info.withdrawn);
            if let Some(c) = offered {
                self.queue.offer_failed(&c, leg);
                let agent_id = self.pool.id(agent).to_string();
                self.event(
                    &c,
                    now,
                    CallEventKind::OfferFailed {
                        agent: agent_id,
                        sip_status,
                        detail,
                    },
                );
            }
        } else if let Some(c) = info.customer {
            self.pool.release(now, agent, &c);
            self.agent_hung_up(&c);
        } else if info.released {
            // Its customer left first: the agent is in its wrap-up already.
        } else {
            // Answered after its offer was withdrawn (a 200 crossing our CANCEL) and hung up
            // at once: back in the rotation.
            self.pool.offer_failed(now, agent, false, "");
        }
    }

    /// The agent's side ended while bridged to `customer`: BYE the customer.
    fn agent_hung_up(&mut self, customer: &str) {
        if let Some(c) = self.customers.get_mut(customer) {
            c.bridged = None;
        }
        self.actions.push_back(AcdAction::HangUp {
            call_id: customer.to_string(),
            reason: Some(EndReason::AgentHangup),
        });
    }

    /// The ACD's figures at `now`.
    pub fn summary(&self, now: Instant) -> AcdSummary {
        let mut s = self.summary.clone();
        let ms = |h: &hdrhistogram::Histogram<u64>, q: f64| {
            if h.is_empty() {
                0.0
            } else {
                h.value_at_quantile(q) as f64 / 1000.0
            }
        };
        s.wait_p50_ms = ms(&self.wait, 0.5);
        s.wait_p99_ms = ms(&self.wait, 0.99);
        s.answer_to_bridge_p50_ms = ms(&self.answer_to_bridge, 0.5);
        s.answer_to_bridge_p99_ms = ms(&self.answer_to_bridge, 0.99);
        s.registrar = self.registrar.stats();
        s.agents = self.pool.stats(now);
        s
    }

    /// An agent's own request (pause, unpause, disposition: API/CLI). A disposition becomes
    /// an `agent_disposition` event on the agent's customer call; one set in wrap-up ends it.
    /// Errors: see [`AgentControlError`]; nothing changes then.
    pub fn agent_control(
        &mut self,
        now: Instant,
        agent: &str,
        action: AgentAction,
    ) -> Result<AgentView, AgentControlError> {
        let i = self
            .pool
            .index(agent)
            .ok_or_else(|| AgentControlError::UnknownAgent(agent.to_string()))?;
        match action {
            AgentAction::Pause { reason } => self.pool.pause(now, i, &reason)?,
            AgentAction::Unpause => self.pool.unpause(now, i)?,
            AgentAction::Disposition { disposition, note } => {
                if !self.cfg.dispositions.is_empty()
                    && !self.cfg.dispositions.contains(&disposition)
                {
                    return Err(AgentControlError::NotADisposition(disposition));
                }
                let call = self.pool.set_disposition(now, i)?;
                if let Some(attempt) = self.last_attempt[i].clone() {
                    self.actions.push_back(AcdAction::Event(CallEvent {
                        call_id: call,
                        attempt,
                        at: now,
                        kind: CallEventKind::AgentDisposition {
                            agent: agent.to_string(),
                            disposition,
                            note,
                        },
                    }));
                }
            }
        }
        self.drain_agent_events();
        self.dispatch(now);
        Ok(self.pool.view(now, i))
    }

    /// The customers waiting in the queue: (Call-ID, ms waited), in arrival order.
    pub fn queue_view(&self, now: Instant) -> Vec<(String, u64)> {
        self.queue
            .waiting()
            .iter()
            .map(|c| {
                let waited = self
                    .customers
                    .get(c)
                    .map_or(0, |w| u64::from(ms_since(now, w.queued_at)));
                (c.clone(), waited)
            })
            .collect()
    }

    /// A new password for agent `id` (kept as HA1 for the registrar's realm), effective for
    /// its next REGISTER. Returns false when there is no such agent.
    pub fn set_agent_password(&mut self, id: &str, password: &str) -> bool {
        if self.pool.index(id).is_none() {
            return false;
        }
        let ha1 = Ha1::from_password(id, &self.cfg.registrar.realm, password);
        self.registrar.set_account(id.to_string(), ha1);
        true
    }

    /// Every agent's state.
    pub fn agent_views(&self, now: Instant) -> Vec<AgentView> {
        (0..self.pool.len())
            .map(|i| self.pool.view(now, i))
            .collect()
    }

    /// Agents in state `s`.
    pub fn agents_in(&self, s: AgentState) -> usize {
        self.pool.count(s)
    }
}
