//! The engine's side of the ACD: it feeds [`crate::acd::Acd`] (REGISTERs, customers answered
//! and ended, agent legs' events, agents' requests) and carries out the actions it returns on
//! call legs and media commands — starting agent legs, bridging, hanging up, playing the
//! abandon message. The decisions are all in the ACD core. A child module of `core`, so it
//! reaches the engine's private state.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{CallEventKind, CallLeg, CallSpec, Engine, MediaCommand, Output, Role, Slot, Transmit};
use crate::acd::{AcdAction, AgentAction, AgentCall, AgentControlError, AgentView, MAX_CALL};
use crate::call::actions::MediaPlan;
use crate::call::leg::Hop;
use crate::events::{AgentState, AttemptRef};
use crate::sip::message::{Inbound, Transport};

impl Engine {
    /// Carries out what the ACD asked for, in order (actions that cause more — a hang-up
    /// ending an agent leg — are carried out as they come).
    pub(super) fn run_acd(&mut self, now: Instant) {
        while let Some(action) = self.acd.as_mut().and_then(|a| a.poll_action()) {
            match action {
                AcdAction::Transmit { dest, bytes } => self
                    .out
                    .push_back(Output::Transmit(Transmit { dest, bytes })),
                AcdAction::Offer(call) => {
                    if let Some(c) = call.customer.clone() {
                        self.handling_offered(now, &c, &call.agent);
                    }
                    self.start_agent_leg(now, call)
                }
                AcdAction::Bridge {
                    customer,
                    agent_leg,
                    agent,
                    wait_ms,
                    mode,
                } => {
                    let codec = |id: &str| self.calls.get(id).and_then(|s| s.codec);
                    let transcoding = match (codec(&customer), codec(&agent_leg)) {
                        (Some(a), Some(b)) => a.law != b.law,
                        _ => false,
                    };
                    self.out.push_back(Output::Media(MediaCommand::Bridge {
                        customer: customer.clone(),
                        agent: agent_leg.clone(),
                    }));
                    let kind = CallEventKind::Connected {
                        agent: agent.clone(),
                        agent_call_id: agent_leg.clone(),
                        wait_ms,
                        mode: mode.as_str().to_string(),
                        transcoding,
                    };
                    self.emit(&customer, now, kind);
                    self.handling_bridged(now, &customer, &agent, &agent_leg);
                }
                AcdAction::Unbridge {
                    customer,
                    agent_leg,
                } => self.out.push_back(Output::Media(MediaCommand::Unbridge {
                    customer,
                    agent: agent_leg,
                })),
                AcdAction::HangUp { call_id, reason } => {
                    if let Some(s) = self.calls.get_mut(&call_id) {
                        match reason {
                            None => s.leg.hang_up(now),
                            Some(r) => s.leg.hang_up_answered(now, r),
                        }
                        self.after_touch(now, &call_id);
                    }
                }
                AcdAction::Play { call_id, what } => {
                    self.start_playback(now, &call_id, what);
                    self.after_touch(now, &call_id);
                }
                AcdAction::Event(e) => {
                    if let CallEventKind::AgentDisposition {
                        agent, disposition, ..
                    } = &e.kind
                    {
                        self.handling_disposition(agent, disposition);
                    }
                    self.out.push_back(Output::Event(e))
                }
                AcdAction::Agent(e) => {
                    self.handling_agent_event(&e);
                    self.out.push_back(Output::Agent(e))
                }
            }
        }
    }

    /// Static agents are reachable from the start (persistent mode: their login calls start).
    pub(super) fn acd_start(&mut self, now: Instant) {
        let Some(acd) = &mut self.acd else { return };
        acd.start(now);
        self.run_acd(now);
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
        acd.handle_register(now, msg, src, transport);
        self.run_acd(now);
    }

    pub(super) fn acd_poll_timeout(&self) -> Option<Instant> {
        self.acd.as_ref()?.poll_timeout()
    }

    pub(super) fn acd_timeout(&mut self, now: Instant) {
        let Some(acd) = &mut self.acd else { return };
        acd.handle_timeout(now);
        self.run_acd(now);
    }

    /// An answered customer enters the queue (human by AMD, or answered without AMD).
    pub(super) fn acd_enqueue(&mut self, now: Instant, id: &str) {
        let Some(acd) = &mut self.acd else { return };
        let Some(slot) = self.calls.get_mut(id) else {
            return;
        };
        if !slot.leg.is_up() || slot.role != Role::Customer {
            return;
        }
        let answered_at = slot.answered_at.unwrap_or(now);
        if acd.enqueue(now, id, slot.attempt.clone(), answered_at) {
            slot.leg.extend_hold(Some(now + MAX_CALL));
            self.run_acd(now);
            self.after_touch(now, id);
        }
    }

    /// The queue priority of `customer`'s campaign (before its call starts).
    pub fn acd_priority(&mut self, customer: &str, priority: i32) {
        if let Some(acd) = &mut self.acd {
            acd.set_priority(customer, priority);
        }
    }

    /// Preview dialling: `customer` was just placed for `agent`, who asked for the next lead.
    /// An available agent is reserved for it (no other call is offered to it) and gets it as
    /// soon as it is answered and queued; an agent no longer available leaves the call to the
    /// queue like any other.
    pub fn acd_preview(&mut self, now: Instant, customer: &str, agent: &str) {
        let Some(acd) = &mut self.acd else { return };
        if !self.calls.contains_key(customer) {
            return;
        }
        acd.preview(now, customer, agent);
        self.run_acd(now);
    }

    /// The customer leg ended (its `terminated` is about to go out). True when it was
    /// abandoned in the queue.
    pub(super) fn acd_customer_ended(&mut self, now: Instant, id: &str) -> bool {
        self.handling_customer_ended(now, id);
        let Some(acd) = &mut self.acd else {
            return false;
        };
        let abandoned = acd.customer_ended(now, id);
        self.run_acd(now);
        abandoned
    }

    /// Events of an agent leg: its answer bridges (or logs the agent in), its end releases.
    pub(super) fn acd_agent_events(
        &mut self,
        now: Instant,
        id: &str,
        events: &mut Vec<(Instant, CallEventKind)>,
    ) {
        for (at, kind) in events.drain(..) {
            let Some(acd) = &mut self.acd else { return };
            acd.agent_leg_event(now, id, at, &kind);
            self.run_acd(now);
        }
    }

    /// Starts the agent leg the ACD asked for: INVITEs the agent's phone with a port the
    /// shell has already bound (see `Engine::give_bound_port`), so the INVITE's offer never
    /// names a port that fails to bind later.
    fn start_agent_leg(&mut self, now: Instant, call: AgentCall) {
        let Some(port) = self.bound_ports.pop_front() else {
            self.offers_short_of_ports = true;
            if let Some(acd) = &mut self.acd {
                acd.call_not_started(now, &call.call_id);
            }
            return;
        };
        let (spec, local, target, attempt) = self.agent_leg_plan(&call, port);
        let call_id = call.call_id;
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
        if let Some(acd) = &mut self.acd {
            acd.call_started(now, &call_id);
        }
        self.after_touch(now, &call_id);
    }

    /// After the shell gave bound ports again ([`Engine::give_bound_port`]): offers that
    /// could not start for want of one are made now. True when that was needed (the shell
    /// then carries out the outputs and tops the ports up again).
    pub fn retry_offers(&mut self, now: Instant) -> bool {
        if !self.offers_short_of_ports || self.bound_ports.is_empty() {
            return false;
        }
        self.offers_short_of_ports = false;
        if let Some(acd) = &mut self.acd {
            acd.redispatch(now);
        }
        self.run_acd(now);
        true
    }

    /// How a leg to an agent's phone is placed, RTP on `port`: (its spec, our party — a
    /// registered phone is reached on the transport it registered with, from the address it
    /// registered to — the address to send to (`None`: through the trunk, a static agent),
    /// the customer's attempt). The caller ID is the customer's number when there is one.
    pub(super) fn agent_leg_plan(
        &self,
        call: &AgentCall,
        port: u16,
    ) -> (
        CallSpec,
        crate::sip::dialog::LocalParty,
        Option<SocketAddr>,
        AttemptRef,
    ) {
        let (local, target) = match call.phone {
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
            // A static agent: through the trunk, or straight to an IP literal with a port.
            None => (
                self.cfg.local.clone(),
                crate::call::leg::direct_address(&call.request_uri),
            ),
        };
        let host = local
            .sent_by
            .rsplit_once(':')
            .map_or(local.sent_by.as_str(), |(h, _)| h)
            .to_string();
        let (caller, attempt) = match call.customer.as_deref().and_then(|c| self.calls.get(c)) {
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
        let uri = call.request_uri.clone();
        let spec = CallSpec {
            number: call.agent.clone(),
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
            ring_timeout: call.ring_timeout,
            hold_time: MAX_CALL,
            rtp_port: port,
            media_ip: host,
            media: MediaPlan::default(),
            privacy: None,
            session_expires: None,
        };
        (spec, local, target, attempt)
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
        let view = acd.agent_control(now, agent, action)?;
        self.run_acd(now);
        Ok(view)
    }

    /// The customers waiting in the queue: (our Call-ID, ms waited), in arrival order.
    pub fn queue_view(&self, now: Instant) -> Vec<(String, u64)> {
        self.acd
            .as_ref()
            .map_or_else(Vec::new, |a| a.queue_view(now))
    }

    /// A new password for agent `id` (kept as HA1 for the registrar's realm), effective for
    /// its next REGISTER. Returns false when this engine has no such agent.
    pub fn set_agent_password(&mut self, id: &str, password: &str) -> bool {
        self.acd
            .as_mut()
            .is_some_and(|a| a.set_agent_password(id, password))
    }

    /// Every agent's state (empty without agents).
    pub fn agent_views(&self, now: Instant) -> Vec<AgentView> {
        self.acd
            .as_ref()
            .map_or_else(Vec::new, |a| a.agent_views(now))
    }

    /// Agents in state `s` (for tests and the summary).
    pub fn agents_in(&self, s: AgentState) -> usize {
        self.acd.as_ref().map_or(0, |a| a.agents_in(s))
    }

    /// The ACD's abandon message, for [`Playback::Abandon`].
    pub(super) fn abandon_message(&self) -> Option<std::sync::Arc<Vec<i16>>> {
        self.acd.as_ref()?.config().abandon_message.clone()
    }
}
