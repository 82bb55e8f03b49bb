//! The ACD inside the engine core: REGISTERs to the registrar, answered customers into the
//! queue, agents offered calls (a second, agent leg: B2BUA) or bridged at once on their standing
//! call (`persistent`), `max_wait` abandonment, and both legs' hang-ups. The decisions are the
//! sans-IO parts in [`crate::acd`]; this file carries them out on call legs and media
//! commands. A child module of `core`, so it reaches the engine's private state.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{
    CallEventKind, CallLeg, CallSpec, Engine, MediaCommand, Output, Role, Slot, Transmit,
    latency_histogram, new_call_id,
};
use crate::acd::queue::Queue;
use crate::acd::registrar::RegistrarStats;
use crate::acd::{
    AcdConfig, AgentAction, AgentControlError, AgentPool, AgentStats, AgentView, ConnectMode,
    Registrar, Strategy,
};
use crate::call::actions::MediaPlan;
use crate::call::leg::Hop;
use crate::events::{AgentState, AttemptRef};
use crate::sip::message::Tokens;
use crate::sip::message::{Inbound, Transport};

/// Longest a customer or agent leg stays up under the ACD (the hold timer's cap).
const MAX_CALL: Duration = Duration::from_secs(4 * 3600);

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

/// An agent leg.
#[derive(Debug)]
pub(super) struct AgentLeg {
    agent: usize,
    /// The customer it was offered for / is bridged to.
    customer: Option<String>,
    /// A standing (login) call of `persistent` mode.
    persistent: bool,
    answered: bool,
    /// We cancelled the offer (the customer left): not the agent's miss.
    withdrawn: bool,
}

/// The ACD's state inside the engine.
pub(crate) struct AcdState {
    pub(super) cfg: AcdConfig,
    registrar: Registrar,
    pool: AgentPool,
    /// Who waits, in what order, for which agent, with which offers ringing.
    queue: Queue,
    agent_legs: HashMap<String, AgentLeg>,
    /// Persistent mode: each agent's standing call, and when to try it again.
    logins: Vec<(Option<String>, Option<Instant>)>,
    /// Per agent: the attempt of the customer it was last connected to (for the events of
    /// its disposition, which may come after that call ended).
    last_attempt: Vec<Option<AttemptRef>>,
    wait: hdrhistogram::Histogram<u64>,
    answer_to_bridge: hdrhistogram::Histogram<u64>,
    summary: AcdSummary,
}

impl AcdState {
    pub(super) fn new(cfg: AcdConfig, now: Instant, tokens: Tokens) -> Self {
        let mut registrar = Registrar::new(cfg.registrar.clone(), now, tokens);
        for a in &cfg.agents {
            if let Some(h) = &a.ha1 {
                registrar.set_account(a.id.clone(), h.clone());
            }
        }
        let ids: Vec<String> = cfg.agents.iter().map(|a| a.id.clone()).collect();
        let mut pool = AgentPool::new(now, &ids, cfg.strategy, cfg.wrap_up, cfg.max_misses);
        pool.set_mandatory_disposition(cfg.mandatory_disposition);
        Self {
            logins: vec![(None, None); ids.len()],
            last_attempt: vec![None; ids.len()],
            registrar,
            pool,
            cfg,
            queue: Queue::default(),
            agent_legs: HashMap::new(),
            wait: latency_histogram(),
            answer_to_bridge: latency_histogram(),
            summary: AcdSummary::default(),
        }
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
}

impl Engine {
    /// Static agents are reachable from the start (persistent mode: their login calls start).
    pub(super) fn acd_start(&mut self, now: Instant) {
        let Some(acd) = &mut self.acd else { return };
        let statics: Vec<usize> = (0..acd.cfg.agents.len())
            .filter(|i| acd.cfg.agents[*i].static_uri.is_some())
            .collect();
        for i in statics {
            self.agent_reachable(now, i, "static");
        }
        self.drain_agent_events();
    }

    fn agent_reachable(&mut self, now: Instant, i: usize, reason: &str) {
        let Some(acd) = &mut self.acd else { return };
        match acd.cfg.mode {
            ConnectMode::PerCall => {
                acd.pool.set_reachable(now, i, true, reason);
                self.acd_dispatch(now);
            }
            ConnectMode::Persistent => {
                if acd.logins[i].0.is_none() {
                    acd.logins[i].1 = None;
                    self.start_agent_leg(now, i, None);
                }
            }
        }
    }

    fn agent_unreachable(&mut self, now: Instant, i: usize, reason: &str) {
        let Some(acd) = &mut self.acd else { return };
        acd.pool.set_reachable(now, i, false, reason);
        if let Some(login) = acd.logins[i].0.clone()
            && let Some(slot) = self.calls.get_mut(&login)
        {
            // The agent logged out: end the standing call once it carries no customer.
            if acd
                .agent_legs
                .get(&login)
                .is_some_and(|l| l.customer.is_none())
            {
                slot.leg.hang_up(now);
                self.after_touch(now, &login);
            }
        }
    }

    /// A REGISTER out of dialog.
    pub(super) fn acd_register(
        &mut self,
        now: Instant,
        msg: &Inbound,
        src: SocketAddr,
        transport: Transport,
    ) {
        let Some(acd) = &mut self.acd else { return };
        let out = acd.registrar.handle_register(now, msg, src, transport);
        if let Some(bytes) = out.response {
            self.out
                .push_back(Output::Transmit(Transmit { dest: src, bytes }));
        }
        self.apply_binding_changes(now, out.changes, "registered", "unregistered");
    }

    fn apply_binding_changes(
        &mut self,
        now: Instant,
        changes: Vec<crate::acd::registrar::BindingChange>,
        up: &str,
        down: &str,
    ) {
        for c in changes {
            let Some(i) = self.acd.as_ref().and_then(|a| a.pool.index(&c.user)) else {
                continue;
            };
            if c.registered {
                self.agent_reachable(now, i, up);
            } else {
                self.agent_unreachable(now, i, down);
            }
        }
        self.drain_agent_events();
    }

    pub(super) fn acd_poll_timeout(&self) -> Option<Instant> {
        let acd = self.acd.as_ref()?;
        [
            acd.registrar.poll_timeout(),
            acd.pool.poll_timeout(),
            acd.logins.iter().filter_map(|l| l.1).min(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(super) fn acd_timeout(&mut self, now: Instant) {
        let Some(acd) = &mut self.acd else { return };
        let changes = acd.registrar.handle_timeout(now);
        acd.pool.handle_timeout(now);
        let retries: Vec<usize> = (0..acd.logins.len())
            .filter(|i| acd.logins[*i].1.is_some_and(|t| t <= now))
            .collect();
        self.apply_binding_changes(now, changes, "registered", "expired");
        for i in retries {
            let Some(acd) = &mut self.acd else { return };
            acd.logins[i].1 = None;
            if acd.registered(i) && acd.logins[i].0.is_none() {
                self.start_agent_leg(now, i, None);
            }
        }
        self.acd_dispatch(now);
    }

    /// Moves agent state changes to the output.
    fn drain_agent_events(&mut self) {
        let Some(acd) = &mut self.acd else { return };
        while let Some(e) = acd.pool.poll_event() {
            self.out.push_back(Output::Agent(e));
        }
    }

    /// An answered customer enters the queue (human by AMD, or answered without AMD).
    pub(super) fn acd_enqueue(&mut self, now: Instant, id: &str) {
        let Some(acd) = &mut self.acd else { return };
        let Some(slot) = self.calls.get_mut(id) else {
            return;
        };
        if slot.queued_at.is_some() || !slot.leg.is_up() || slot.role != Role::Customer {
            return;
        }
        slot.queued_at = Some(now);
        slot.queue_deadline = Some(now + acd.cfg.max_wait);
        slot.leg.extend_hold(Some(now + MAX_CALL));
        let position = acd.queue.enqueue(id);
        acd.summary.queued += 1;
        self.emit(id, now, CallEventKind::Queued { position });
        self.acd_dispatch(now);
        self.after_touch(now, id);
    }

    /// The queue priority of `customer`'s campaign (before its call starts).
    pub fn acd_priority(&mut self, customer: &str, priority: i32) {
        if let Some(acd) = &mut self.acd {
            acd.queue.set_priority(customer, priority);
        }
    }

    /// Preview dialling: `customer` was just placed for `agent`, who asked for the next lead.
    /// An available agent is reserved for it (no other call is offered to it) and gets it as
    /// soon as it is answered and queued; an agent no longer available leaves the call to the
    /// queue like any other.
    pub fn acd_preview(&mut self, now: Instant, customer: &str, agent: &str) {
        let Some(acd) = &mut self.acd else { return };
        let Some(i) = acd.pool.index(agent) else {
            return;
        };
        if acd.pool.state(i) != AgentState::Available || !self.calls.contains_key(customer) {
            return;
        }
        acd.pool.preview(now, i, customer);
        acd.queue.reserve_for(customer, i);
        self.drain_agent_events();
    }

    /// Offers waiting customers to available agents, in arrival order (a preview call only
    /// to the agent it was placed for).
    fn acd_dispatch(&mut self, now: Instant) {
        let previews: Vec<(String, usize)> = match &self.acd {
            Some(acd) => acd.queue.previews_due(),
            None => return,
        };
        for (customer, agent) in previews {
            let Some(acd) = &mut self.acd else { return };
            match acd.cfg.mode {
                ConnectMode::Persistent => {
                    if let Some(login) = acd.logins[agent].0.clone() {
                        self.acd_connect(now, &customer, agent, &login);
                    }
                }
                ConnectMode::PerCall => self.offer(now, &customer, agent),
            }
        }
        loop {
            let Some(acd) = &mut self.acd else { return };
            // Ring-all (per-call): every available agent rings for the head of the queue, an
            // agent who becomes available joins the ringing. Otherwise one offer per customer.
            let ring_all =
                acd.cfg.strategy == Strategy::RingAll && acd.cfg.mode == ConnectMode::PerCall;
            let Some(customer) = acd.queue.next(ring_all).cloned() else {
                break;
            };
            let Some(agent) = acd.pool.pick() else { break };
            match acd.cfg.mode {
                ConnectMode::Persistent => {
                    let Some(login) = acd.logins[agent].0.clone() else {
                        // Available without a standing call cannot happen; take it out.
                        acd.pool.set_reachable(now, agent, false, "no_login_call");
                        continue;
                    };
                    acd.pool.reserve(now, agent, &customer);
                    self.acd_connect(now, &customer, agent, &login);
                }
                ConnectMode::PerCall => self.offer(now, &customer, agent),
            }
        }
        self.drain_agent_events();
    }

    /// Offers `customer` to agent `agent` (per-call): reserves the agent and INVITEs its phone.
    fn offer(&mut self, now: Instant, customer: &str, agent: usize) {
        let Some(acd) = &mut self.acd else { return };
        acd.pool.reserve(now, agent, customer);
        let leg = self.start_agent_leg(now, agent, Some(customer));
        let Some(acd) = &mut self.acd else { return };
        match leg {
            Some(leg) => {
                acd.queue.offered(customer, &leg);
                let id = acd.pool.id(agent).to_string();
                self.emit(
                    customer,
                    now,
                    CallEventKind::AgentOffered {
                        agent: id,
                        agent_call_id: leg,
                    },
                );
            }
            None => {
                acd.pool.offer_failed(now, agent, false, customer);
                acd.pool
                    .set_reachable(now, agent, false, "no_contact_or_port");
            }
        }
    }

    /// CANCELs (or BYEs) the offers of `legs`: the customer went elsewhere, so they are not
    /// the agents' misses.
    fn withdraw_offers(&mut self, now: Instant, legs: Vec<String>) {
        for leg in legs {
            let Some(acd) = &mut self.acd else { return };
            if let Some(l) = acd.agent_legs.get_mut(&leg) {
                l.withdrawn = true;
            }
            if let Some(s) = self.calls.get_mut(&leg) {
                s.leg.hang_up(now);
                self.after_touch(now, &leg);
            }
        }
    }

    /// Bridges a waiting customer to agent `agent` on its leg `leg` (answered); other offers
    /// ringing for it (ring-all) are withdrawn.
    fn acd_connect(&mut self, now: Instant, customer: &str, agent: usize, leg: &str) {
        let Some(acd) = &mut self.acd else { return };
        let others = acd.queue.connected(customer, leg);
        self.withdraw_offers(now, others);
        let Some(acd) = &mut self.acd else { return };
        if let Some(l) = acd.agent_legs.get_mut(leg) {
            l.customer = Some(customer.to_string());
        }
        acd.pool.connect(now, agent, customer);
        let agent_id = acd.pool.id(agent).to_string();
        let mode = acd.cfg.mode.as_str().to_string();
        let agent_codec = self.calls.get(leg).and_then(|s| s.codec);
        let Some(slot) = self.calls.get_mut(customer) else {
            return;
        };
        acd.last_attempt[agent] = Some(slot.attempt.clone());
        let wait = slot
            .queued_at
            .map_or(Duration::ZERO, |q| now.saturating_duration_since(q));
        let since_answer = slot
            .answered_at
            .map_or(Duration::ZERO, |a| now.saturating_duration_since(a));
        slot.queue_deadline = None;
        slot.bridged = Some((agent, leg.to_string()));
        let transcoding = match (slot.codec, agent_codec) {
            (Some(a), Some(b)) => a.law != b.law,
            _ => false,
        };
        acd.summary.connected += 1;
        let _ = acd.wait.record((wait.as_micros() as u64).max(1));
        let _ = acd
            .answer_to_bridge
            .record((since_answer.as_micros() as u64).max(1));
        let wait_ms = wait.as_millis() as u32;
        self.out.push_back(Output::Media(MediaCommand::Bridge {
            customer: customer.to_string(),
            agent: leg.to_string(),
        }));
        self.emit(
            customer,
            now,
            CallEventKind::Dequeued {
                wait_ms,
                reason: crate::events::DequeueReason::Connected,
            },
        );
        self.emit(
            customer,
            now,
            CallEventKind::Connected {
                agent: agent_id,
                agent_call_id: leg.to_string(),
                wait_ms,
                mode,
                transcoding,
            },
        );
        self.drain_agent_events();
        self.after_touch(now, customer);
    }

    /// Takes customer `id` out of the queue as abandoned (`caller_hangup` or `max_wait`),
    /// withdrawing any offer ringing for it.
    fn acd_abandon(
        &mut self,
        now: Instant,
        id: &str,
        reason: crate::events::DequeueReason,
    ) -> bool {
        let Some(acd) = &mut self.acd else {
            return false;
        };
        let Some(legs) = acd.queue.abandoned(id) else {
            return false;
        };
        acd.summary.abandoned += 1;
        self.withdraw_offers(now, legs);
        let Some(slot) = self.calls.get_mut(id) else {
            return true;
        };
        slot.abandoned = true;
        slot.queue_deadline = None;
        let wait_ms = slot
            .queued_at
            .map_or(0, |q| now.saturating_duration_since(q).as_millis() as u32);
        for kind in [
            CallEventKind::Dequeued { wait_ms, reason },
            CallEventKind::Abandoned { wait_ms, reason },
        ] {
            self.emit(id, now, kind);
        }
        true
    }

    /// `max_wait` passed for a queued customer: the information message, then BYE.
    pub(super) fn acd_max_wait(&mut self, now: Instant, id: &str) {
        if !self.acd_abandon(now, id, crate::events::DequeueReason::MaxWait) {
            return;
        }
        let has_message = self
            .acd
            .as_ref()
            .is_some_and(|a| a.cfg.abandon_message.is_some());
        if has_message {
            self.start_playback(now, id, crate::events::Playback::Abandon);
        } else if let Some(slot) = self.calls.get_mut(id) {
            slot.leg
                .hang_up_answered(now, crate::events::EndReason::Abandoned);
        }
    }

    /// The customer leg ended (its `terminated` is about to go out).
    pub(super) fn acd_customer_ended(&mut self, now: Instant, id: &str) {
        let Some(acd) = &mut self.acd else { return };
        // A preview call never connected: its agent is free again (an offer still ringing
        // for it is withdrawn below, and that leg's end frees the agent instead).
        if let Some(i) = acd.queue.ended(id) {
            acd.pool.preview_ended(now, i, id);
            self.drain_agent_events();
        }
        self.acd_abandon(now, id, crate::events::DequeueReason::CallerHangup);
        let Some(slot) = self.calls.get_mut(id) else {
            return;
        };
        let Some((agent, leg)) = slot.bridged.take() else {
            return;
        };
        let Some(acd) = &mut self.acd else { return };
        let persistent = acd.agent_legs.get(&leg).is_some_and(|l| l.persistent);
        if let Some(l) = acd.agent_legs.get_mut(&leg) {
            l.customer = None;
        }
        acd.pool.release(now, agent, id);
        if persistent {
            self.out.push_back(Output::Media(MediaCommand::Unbridge {
                customer: id.to_string(),
                agent: leg.clone(),
            }));
            if !acd.registered(agent) {
                // Logged out during the call: the standing call ends now.
                if let Some(s) = self.calls.get_mut(&leg) {
                    s.leg.hang_up(now);
                }
            }
        } else if let Some(s) = self.calls.get_mut(&leg) {
            s.leg
                .hang_up_answered(now, crate::events::EndReason::CustomerHangup);
        }
        self.after_touch(now, &leg);
        self.drain_agent_events();
        self.acd_dispatch(now);
    }

    /// Events of an agent leg: its answer bridges (or logs the agent in), its end releases.
    pub(super) fn acd_agent_events(
        &mut self,
        now: Instant,
        id: &str,
        events: Vec<(Instant, CallEventKind)>,
    ) {
        for (at, kind) in events {
            let Some(acd) = &mut self.acd else { return };
            let Some(info) = acd.agent_legs.get_mut(id) else {
                return;
            };
            let agent = info.agent;
            match kind {
                CallEventKind::Answered { .. } => {
                    info.answered = true;
                    if info.persistent {
                        acd.pool.set_reachable(now, agent, true, "login_call_up");
                        self.drain_agent_events();
                        self.acd_dispatch(now);
                    } else {
                        let customer = info.customer.clone();
                        let still_waiting =
                            customer.as_ref().is_some_and(|c| acd.queue.is_offer(c, id));
                        match customer {
                            Some(c) if still_waiting => self.acd_connect(now, &c, agent, id),
                            _ => {
                                info.customer = None;
                                if let Some(s) = self.calls.get_mut(id) {
                                    s.leg.hang_up_answered(
                                        now,
                                        crate::events::EndReason::OfferWithdrawn,
                                    );
                                }
                            }
                        }
                    }
                }
                CallEventKind::Held { .. } | CallEventKind::Resumed { .. }
                    if info.customer.is_some() =>
                {
                    let customer = info.customer.clone().unwrap_or_default();
                    let (leg, sip_call_id) = ("agent".to_string(), id.to_string());
                    let k = if matches!(kind, CallEventKind::Held { .. }) {
                        CallEventKind::Held { leg, sip_call_id }
                    } else {
                        CallEventKind::Resumed { leg, sip_call_id }
                    };
                    self.emit(&customer, at, k);
                }
                CallEventKind::Terminated {
                    sip_status,
                    disposition,
                    ..
                } => {
                    let answered = info.answered;
                    let withdrawn = info.withdrawn;
                    let persistent = info.persistent;
                    let customer = info.customer.take();
                    acd.agent_legs.remove(id);
                    if persistent {
                        acd.logins[agent].0 = None;
                        let still = acd.registered(agent);
                        if still {
                            acd.logins[agent].1 = Some(now + acd.cfg.login_retry);
                        }
                        if let Some(c) = &customer {
                            acd.pool.release(now, agent, c);
                        }
                        acd.pool
                            .set_reachable(now, agent, false, "login_call_ended");
                        if let Some(c) = customer {
                            self.agent_hung_up(now, &c);
                        }
                    } else if !answered {
                        let offered = customer.filter(|c| acd.queue.is_offer(c, id));
                        acd.pool.offer_failed(
                            now,
                            agent,
                            !withdrawn,
                            offered.as_deref().unwrap_or(""),
                        );
                        acd.summary.offers_failed += u64::from(!withdrawn);
                        if let Some(c) = offered {
                            acd.queue.offer_failed(&c, id);
                            let agent_id = acd.pool.id(agent).to_string();
                            self.emit(
                                &c,
                                now,
                                CallEventKind::OfferFailed {
                                    agent: agent_id,
                                    sip_status,
                                    detail: disposition.as_str().to_string(),
                                },
                            );
                        }
                    } else if let Some(c) = customer {
                        acd.pool.release(now, agent, &c);
                        self.agent_hung_up(now, &c);
                    } else {
                        // Answered after its offer was withdrawn (a 200 crossing our CANCEL)
                        // and hung up at once: back in the rotation.
                        acd.pool.offer_failed(now, agent, false, "");
                    }
                    self.drain_agent_events();
                    self.acd_dispatch(now);
                }
                _ => {}
            }
        }
    }

    /// The agent's side ended while bridged to `customer`: BYE the customer.
    fn agent_hung_up(&mut self, now: Instant, customer: &str) {
        if let Some(s) = self.calls.get_mut(customer) {
            s.bridged = None;
            s.leg
                .hang_up_answered(now, crate::events::EndReason::AgentHangup);
            self.after_touch(now, customer);
        }
    }

    /// INVITEs agent `i`'s phone: an offer for `customer` (per-call) or the standing call
    /// (persistent, `customer` = `None`). Returns the agent leg's Call-ID.
    fn start_agent_leg(
        &mut self,
        now: Instant,
        i: usize,
        customer: Option<&str>,
    ) -> Option<String> {
        let acd = self.acd.as_mut()?;
        let (uri, target) = acd.contact(i)?;
        let agent_id = acd.pool.id(i).to_string();
        // A port the shell has already bound (see `Engine::give_bound_port`): the INVITE offers
        // it before the media task exists, so it must not fail to bind later.
        let port = self.bound_ports.pop_front()?;
        let call_id = new_call_id(&mut self.tokens);
        // A registered phone is reached on the transport it registered with, from the address
        // it registered to; a static agent through the trunk, as a customer.
        let (local, target) = match target {
            Some((addr, transport)) => (
                crate::sip::dialog::LocalParty {
                    sent_by: self
                        .cfg
                        .agents_sent_by
                        .clone()
                        .unwrap_or_else(|| self.cfg.local.sent_by.clone()),
                    transport,
                    user_agent: self.cfg.local.user_agent.clone(),
                },
                Some(addr),
            ),
            None => (self.cfg.local.clone(), None),
        };
        let host = local
            .sent_by
            .rsplit_once(':')
            .map_or(local.sent_by.as_str(), |(h, _)| h)
            .to_string();
        let (caller, attempt) = match customer.and_then(|c| self.calls.get(c)) {
            Some(s) => (s.leg.number().to_string(), s.attempt.clone()),
            None => (
                "outdial".to_string(),
                AttemptRef {
                    attempt_id: 0,
                    lead_id: 0,
                    attempt_no: 0,
                },
            ),
        };
        let spec = CallSpec {
            number: agent_id,
            hops: vec![Hop {
                trunk: 0,
                name: "agent".into(),
                request_uri: uri.clone(),
                route: None,
                auth: None,
            }],
            failover_timeout: Duration::from_secs(3600),
            to_uri: uri.split(';').next().unwrap_or(&uri).to_string(),
            caller_id: caller,
            caller_name: Some("outdial".into()),
            from_host: host.clone(),
            p_asserted_identity: None,
            ring_timeout: acd.cfg.offer_timeout,
            hold_time: MAX_CALL,
            rtp_port: port,
            media_ip: host,
            media: MediaPlan::default(),
            privacy: None,
            session_expires: None,
        };
        acd.agent_legs.insert(
            call_id.clone(),
            AgentLeg {
                agent: i,
                customer: customer.map(str::to_string),
                persistent: customer.is_none(),
                answered: false,
                withdrawn: false,
            },
        );
        if customer.is_none() {
            acd.logins[i].0 = Some(call_id.clone());
        }
        self.out.push_back(Output::Media(MediaCommand::Open {
            call_id: call_id.clone(),
            port,
        }));
        let leg = CallLeg::start(
            now,
            call_id.clone(),
            spec,
            local,
            self.cfg.timers,
            self.tokens.fork(),
        );
        self.calls.insert(
            call_id.clone(),
            Slot::new(
                leg,
                Role::Agent,
                target,
                attempt,
                port,
                MediaPlan::default(),
                now,
            ),
        );
        self.after_touch(now, &call_id);
        Some(call_id)
    }

    /// The ACD's figures (`None` without agents).
    pub(super) fn acd_summary(&self, now: Instant) -> Option<AcdSummary> {
        let acd = self.acd.as_ref()?;
        let mut s = acd.summary.clone();
        let ms = |h: &hdrhistogram::Histogram<u64>, q: f64| {
            if h.is_empty() {
                0.0
            } else {
                h.value_at_quantile(q) as f64 / 1000.0
            }
        };
        s.wait_p50_ms = ms(&acd.wait, 0.5);
        s.wait_p99_ms = ms(&acd.wait, 0.99);
        s.answer_to_bridge_p50_ms = ms(&acd.answer_to_bridge, 0.5);
        s.answer_to_bridge_p99_ms = ms(&acd.answer_to_bridge, 0.99);
        s.registrar = acd.registrar.stats();
        s.agents = acd.pool.stats(now);
        Some(s)
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
        let acd = self.acd.as_mut().ok_or(AgentControlError::NoAcd)?;
        let i = acd
            .pool
            .index(agent)
            .ok_or_else(|| AgentControlError::UnknownAgent(agent.to_string()))?;
        match action {
            AgentAction::Pause { reason } => acd.pool.pause(now, i, &reason)?,
            AgentAction::Unpause => acd.pool.unpause(now, i)?,
            AgentAction::Disposition { disposition, note } => {
                if !acd.cfg.dispositions.is_empty() && !acd.cfg.dispositions.contains(&disposition)
                {
                    return Err(AgentControlError::NotADisposition(disposition));
                }
                let call = acd.pool.set_disposition(now, i)?;
                if let Some(attempt) = acd.last_attempt[i].clone() {
                    self.out.push_back(Output::Event(crate::events::CallEvent {
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
        self.acd_dispatch(now);
        let acd = self.acd.as_ref().ok_or(AgentControlError::NoAcd)?;
        Ok(acd.pool.view(now, i))
    }

    /// The customers waiting in the queue: (our Call-ID, ms waited), longest first.
    pub fn queue_view(&self, now: Instant) -> Vec<(String, u64)> {
        let Some(acd) = &self.acd else {
            return Vec::new();
        };
        acd.queue
            .waiting()
            .iter()
            .map(|c| {
                let waited = self
                    .calls
                    .get(c)
                    .and_then(|s| s.queued_at)
                    .map_or(0, |q| now.saturating_duration_since(q).as_millis() as u64);
                (c.clone(), waited)
            })
            .collect()
    }

    /// A new password for agent `id` (kept as HA1 for the registrar's realm), effective for
    /// its next REGISTER. Returns false when this engine has no such agent.
    pub fn set_agent_password(&mut self, id: &str, password: &str) -> bool {
        let Some(acd) = &mut self.acd else {
            return false;
        };
        if acd.pool.index(id).is_none() {
            return false;
        }
        let ha1 = crate::acd::Ha1::from_password(id, &acd.cfg.registrar.realm, password);
        acd.registrar.set_account(id.to_string(), ha1);
        true
    }

    /// Every agent's state (empty without agents).
    pub fn agent_views(&self, now: Instant) -> Vec<AgentView> {
        self.acd.as_ref().map_or_else(Vec::new, |a| {
            (0..a.pool.len()).map(|i| a.pool.view(now, i)).collect()
        })
    }

    /// Agents in state `s` (for tests and the summary).
    pub fn agents_in(&self, s: AgentState) -> usize {
        self.acd.as_ref().map_or(0, |a| a.pool.count(s))
    }
}
