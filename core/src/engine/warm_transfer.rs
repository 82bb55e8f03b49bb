//! Warm transfer, the agent-side bus's `warmTransfer` flow: the customer on hold (re-INVITE
//! `a=sendonly`, music), a consultation leg to the third party bridged to the agent when it
//! answers; then swap (the one talking goes on hold), merge (a three-way call: the shell
//! mixes the three legs' audio), cancel (the third party hung up, did not answer, or the agent
//! dropped it: back to the customer) or complete (the agent leaves, the customer and the third
//! party stay connected by the relay until either hangs up). A child module of
//! `agent_call`, so it reaches the handling's and the engine's private state.

use std::time::{Duration, Instant};

use super::{Handling, ms};
use crate::acd::{AgentControlError, MAX_CALL};
use crate::call::actions::MediaPlan;
use crate::call::leg::CallLeg;
use crate::engine::core::{CallEventKind, Engine, MediaCommand, Output, Role, Slot};
use crate::events::{CallFlow, FlowStatus, TransferRecord};

/// How long the third party's phone may ring.
const CONSULT_RING: Duration = Duration::from_secs(30);

/// Where a warm transfer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::engine::core) enum WarmPhase {
    /// The third party's phone rings; the customer is on hold.
    Dialing,
    /// The agent talks to the third party; the customer is on hold.
    Consulting,
    /// The agent talks to the customer; the third party is on hold.
    Swapped,
    /// The three together.
    Merged,
}

/// A warm transfer in progress.
#[derive(Debug)]
pub(in crate::engine::core) struct Warm {
    /// The consultation leg's Call-ID.
    pub(in crate::engine::core) leg: String,
    /// The number or URI called (`agent:ID` for another agent).
    pub(in crate::engine::core) target: String,
    pub(in crate::engine::core) phase: WarmPhase,
    /// The agent consulted (a transfer to `agent:ID`): reserved by the ACD until the
    /// consultation ends or the customer is handed over to it.
    pub(in crate::engine::core) agent: Option<String>,
}

fn not_now(why: &str) -> AgentControlError {
    AgentControlError::NotNow(why.to_string())
}

impl Engine {
    /// `warm_transfer`: the customer on hold and the consultation leg started.
    pub(super) fn warm_start(
        &mut self,
        now: Instant,
        customer: &str,
        target: String,
    ) -> Result<(), AgentControlError> {
        if self
            .handling
            .get(customer)
            .is_some_and(|h| h.warm.is_some())
        {
            return Err(not_now("a warm transfer is in progress"));
        }
        let Some(slot) = self.calls.get(customer) else {
            return Err(not_now("the customer's call is over"));
        };
        if slot.leg.holding() || !slot.leg.can_reoffer() {
            return Err(not_now("the customer is on hold or being re-offered"));
        }
        if self.bound_ports.is_empty() {
            return Err(not_now("no RTP port bound for another leg"));
        }
        let to_agent = target.strip_prefix("agent:").map(|a| a.trim().to_string());
        let (leg_id, uri) = match &to_agent {
            Some(other) => self.start_agent_consult(now, customer, other)?,
            None => {
                let port = self.bound_ports.pop_front().expect("checked above");
                self.start_transfer_leg(now, customer, &target, port)
            }
        };
        let h = self.handling.get_mut(customer).expect("handled call");
        self.out.push_back(Output::Media(MediaCommand::Unbridge {
            customer: customer.to_string(),
            agent: h.agent_leg.clone(),
        }));
        h.transfers.push(TransferRecord {
            flow: CallFlow::WarmTransfer,
            target: uri.clone(),
            at_ms: ms(h.connected_at, now),
        });
        h.flow = CallFlow::WarmTransfer;
        h.warm = Some(Warm {
            leg: leg_id.clone(),
            target: uri,
            phase: WarmPhase::Dialing,
            agent: to_agent,
        });
        self.consults.insert(leg_id.clone(), customer.to_string());
        self.flow_status(customer, now, FlowStatus::StartingWarmTransfer);
        self.after_touch(now, &leg_id);
        self.after_touch(now, customer);
        Ok(())
    }

    /// A warm transfer's consultation leg to agent `other`'s phone, reserved by the ACD for
    /// it: (the leg's Call-ID, `agent:ID`). Errors: the agent is this one, unknown, offline or
    /// not available, or the ACD runs standing calls (see `Acd::consult_agent`).
    fn start_agent_consult(
        &mut self,
        now: Instant,
        customer: &str,
        other: &str,
    ) -> Result<(String, String), AgentControlError> {
        let h = self.handling.get(customer).expect("handled call");
        if h.agent == other {
            return Err(not_now("a transfer to the same agent"));
        }
        let acd = self.acd.as_mut().ok_or(AgentControlError::NoAcd)?;
        let call = acd.consult_agent(now, customer, other)?;
        let port = self.bound_ports.pop_front().expect("checked by the caller");
        let (spec, local, direct, _) = self.agent_leg_plan(&call, port);
        self.start_consult_leg(now, customer, call.call_id.clone(), spec, local, direct);
        self.run_acd(now);
        Ok((call.call_id, format!("agent:{other}")))
    }

    /// A call of ours to `target` for `customer` (a warm transfer's consultation leg, or a
    /// blind transfer after a refused REFER), RTP on `port`: through the customer's trunk hop,
    /// or straight to a `sip:` URI with an IP literal; the customer put on hold. Returns (the
    /// new leg's Call-ID, its Request-URI). The caller checked the customer's call is there.
    fn start_transfer_leg(
        &mut self,
        now: Instant,
        customer: &str,
        target: &str,
        port: u16,
    ) -> (String, String) {
        let slot = self.calls.get(customer).expect("checked by the caller");
        let spec = slot.leg.spec_for(target, port, CONSULT_RING, MAX_CALL);
        let uri = spec.hops[0].request_uri.clone();
        // A `sip:` URI with an IP literal is reached there; a number through the trunk.
        let direct = crate::call::leg::direct_address(&uri).filter(|_| target.starts_with("sip:"));
        let leg_id = self.tokens.call_id();
        let local = self.cfg.local.clone();
        self.start_consult_leg(now, customer, leg_id.clone(), spec, local, direct);
        (leg_id, uri)
    }

    /// Starts leg `leg_id` (`spec`, from `local`, to `direct` or through the trunk) for
    /// `customer`, who is put on hold; RTP on the spec's port (bound already).
    fn start_consult_leg(
        &mut self,
        now: Instant,
        customer: &str,
        leg_id: String,
        spec: crate::call::leg::CallSpec,
        local: crate::sip::dialog::LocalParty,
        direct: Option<std::net::SocketAddr>,
    ) {
        let attempt = self.calls[customer].attempt.clone();
        let port = spec.rtp_port;
        self.hold_leg(now, customer, true);
        self.out.push_back(Output::Media(MediaCommand::Open {
            call_id: leg_id.clone(),
            port,
        }));
        let leg = CallLeg::start(
            now,
            leg_id.clone(),
            spec,
            local,
            self.cfg.timers,
            self.tokens.fork(),
        );
        let slot = Slot::new(
            leg,
            Role::Consult,
            direct,
            attempt,
            port,
            MediaPlan::default(),
            now,
        );
        self.calls.insert(leg_id, slot);
    }

    /// `swap`: the agent goes to the party on hold; the one it talked to goes on hold.
    pub(super) fn warm_swap(
        &mut self,
        now: Instant,
        customer: &str,
    ) -> Result<(), AgentControlError> {
        let (leg, agent_leg, phase) = self.warm_parts(customer)?;
        let (talking, held, next) = match phase {
            WarmPhase::Consulting => (leg.clone(), customer.to_string(), WarmPhase::Swapped),
            WarmPhase::Swapped => (customer.to_string(), leg.clone(), WarmPhase::Consulting),
            _ => return Err(not_now("nobody to swap with yet, or merged")),
        };
        self.both_can_reoffer(&talking, &held)?;
        self.flow_status(customer, now, FlowStatus::Swapping);
        self.out.push_back(Output::Media(MediaCommand::Unbridge {
            customer: talking.clone(),
            agent: agent_leg.clone(),
        }));
        self.hold_leg(now, &talking, true);
        self.hold_leg(now, &held, false);
        self.out.push_back(Output::Media(MediaCommand::Bridge {
            customer: held.clone(),
            agent: agent_leg,
        }));
        self.set_phase(customer, next);
        self.flow_status(customer, now, FlowStatus::Connected);
        self.after_touch(now, &talking);
        self.after_touch(now, &held);
        Ok(())
    }

    /// `merge`: whoever is on hold is taken off it and the three legs are mixed.
    pub(super) fn warm_merge(
        &mut self,
        now: Instant,
        customer: &str,
    ) -> Result<(), AgentControlError> {
        let (leg, agent_leg, phase) = self.warm_parts(customer)?;
        let (talking, held) = match phase {
            WarmPhase::Consulting => (leg.clone(), customer.to_string()),
            WarmPhase::Swapped => (customer.to_string(), leg.clone()),
            _ => {
                return Err(not_now(
                    "the third party has not answered, or already merged",
                ));
            }
        };
        self.both_can_reoffer(&talking, &held)?;
        self.flow_status(customer, now, FlowStatus::Merging);
        self.out.push_back(Output::Media(MediaCommand::Unbridge {
            customer: talking.clone(),
            agent: agent_leg.clone(),
        }));
        self.hold_leg(now, &held, false);
        self.out.push_back(Output::Media(MediaCommand::Mix {
            legs: vec![customer.to_string(), agent_leg, leg],
        }));
        self.set_phase(customer, WarmPhase::Merged);
        self.flow_status(customer, now, FlowStatus::Connected);
        self.after_touch(now, &held);
        Ok(())
    }

    /// `cancel_transfer`: the third party is hung up; its end brings the agent back to the
    /// customer ([`Self::consult_ended`]).
    pub(super) fn warm_cancel(
        &mut self,
        now: Instant,
        customer: &str,
    ) -> Result<(), AgentControlError> {
        let (leg, _, _) = self.warm_parts(customer)?;
        if let Some(s) = self.calls.get_mut(&leg) {
            s.leg.hang_up(now);
        }
        self.after_touch(now, &leg);
        Ok(())
    }

    /// `complete_transfer`: the agent leaves; the customer and the third party are bridged
    /// to each other (both off hold) until either hangs up.
    pub(super) fn warm_complete(
        &mut self,
        now: Instant,
        customer: &str,
    ) -> Result<(), AgentControlError> {
        let (leg, agent_leg, phase) = self.warm_parts(customer)?;
        if phase == WarmPhase::Dialing {
            return Err(not_now("the third party has not answered"));
        }
        let held = match phase {
            WarmPhase::Consulting => Some(customer.to_string()),
            WarmPhase::Swapped => Some(leg.clone()),
            _ => None,
        };
        if let Some(h) = &held
            && !self.calls.get(h).is_some_and(|s| s.leg.can_reoffer())
        {
            return Err(not_now("a re-INVITE of ours is in progress"));
        }
        if phase == WarmPhase::Merged {
            self.out.push_back(Output::Media(MediaCommand::Unmix {
                legs: vec![customer.to_string(), agent_leg.clone(), leg.clone()],
            }));
        }
        if let Some(h) = &held {
            self.hold_leg(now, h, false);
        }
        // The agent is released (its leg ended, or its standing call unbridged) first: its
        // unbridge must not undo the bridge below.
        let to_agent = self.handling.get_mut(customer).and_then(|h| {
            h.flow = CallFlow::Regular;
            h.warm.take().and_then(|w| w.agent)
        });
        self.consults.remove(&leg);
        self.end_handling(customer, now);
        if let Some(other) = to_agent {
            // Another agent: the ACD hands the customer over (that agent's `connected`, its
            // own handling, wrap-up and sync); the consultation leg is its agent leg now.
            if self
                .acd
                .as_mut()
                .is_some_and(|a| a.hand_over(now, customer, &other, &leg))
            {
                if let Some(s) = self.calls.get_mut(&leg) {
                    s.role = Role::Agent;
                }
                self.run_acd(now);
                self.after_touch(now, customer);
                self.after_touch(now, &leg);
                return Ok(());
            }
            // No longer reserved (it went offline meanwhile): as to a number, below.
            self.release_consulted(now, customer, &other);
        }
        if let Some(acd) = &mut self.acd {
            acd.transfer_away(now, customer);
        }
        self.run_acd(now);
        self.out.push_back(Output::Media(MediaCommand::Bridge {
            customer: customer.to_string(),
            agent: leg.clone(),
        }));
        self.linked.insert(customer.to_string(), leg.clone());
        self.linked.insert(leg.clone(), customer.to_string());
        self.after_touch(now, customer);
        self.after_touch(now, &leg);
        Ok(())
    }

    /// A blind transfer's REFER was refused (`transfer_failed` on the customer's leg, which
    /// stays up): we call the target ourselves, the customer on hold meanwhile, and bridge the
    /// two when it answers ([`Self::consult_events`]) — the issue's "our new leg to the target
    /// bridged to the customer". Without a free RTP port the customer's call ends.
    pub(in crate::engine::core) fn blind_fallback(&mut self, now: Instant, customer: &str) {
        let Some(target) = self.blind_pending.remove(customer) else {
            return;
        };
        if self
            .calls
            .get(customer)
            .is_some_and(|s| s.leg.transfer_failed_after_accept())
        {
            // The trunk tried the target and it failed: back to the queue, not a retry.
            self.back_to_queue(now, customer);
            return;
        }
        if !self.calls.get(customer).is_some_and(|s| s.leg.is_up()) {
            return;
        }
        let Some(port) = self.bound_ports.pop_front() else {
            self.end_blind(now, customer);
            return;
        };
        let (leg_id, uri) = self.start_transfer_leg(now, customer, &target, port);
        self.blind_legs
            .insert(leg_id.clone(), (customer.to_string(), uri));
        self.after_touch(now, &leg_id);
        self.after_touch(now, customer);
    }

    /// The customer of a blind transfer that could not be completed: back in the queue for
    /// the next agent, or hung up (`transfer_failed`) when there is no queue.
    fn end_blind(&mut self, now: Instant, customer: &str) {
        self.back_to_queue(now, customer);
    }

    /// A customer whose blind transfer failed waits again for an agent (off hold, a
    /// `queued` event), offered first to the agent who transferred it when that one is
    /// available; without an ACD, or when it cannot be queued, its call ends
    /// `transfer_failed`.
    fn back_to_queue(&mut self, now: Instant, customer: &str) {
        if self.calls.get(customer).is_some_and(|s| s.leg.holding()) {
            self.hold_leg(now, customer, false);
        }
        let before = self.handling.get(customer).map(|h| h.agent.clone());
        let queued = self.calls.get(customer).is_some_and(|s| s.leg.is_up())
            && self.acd.as_mut().is_some_and(|a| match &before {
                Some(agent) => a.requeue_prefer(now, customer, agent),
                None => a.requeue(now, customer),
            });
        if queued {
            self.run_acd(now);
            self.after_touch(now, customer);
        } else {
            self.end_with(now, customer, crate::events::EndReason::TransferFailed);
        }
    }

    /// A transferred customer whose other party hung up: BYE, `detail` `transferred`.
    fn end_transferred(&mut self, now: Instant, customer: &str) {
        self.end_with(now, customer, crate::events::EndReason::Transferred);
    }

    fn end_with(&mut self, now: Instant, customer: &str, reason: crate::events::EndReason) {
        if let Some(s) = self.calls.get_mut(customer) {
            s.leg.hang_up_answered(now, reason);
        }
        self.after_touch(now, customer);
    }

    /// Our own blind-transfer leg answered: off hold, bridged to the customer, `transferred`.
    fn blind_answered(&mut self, now: Instant, leg: &str) {
        let Some((customer, uri)) = self.blind_legs.remove(leg) else {
            return;
        };
        if self.calls.get(&customer).is_some_and(|s| s.leg.holding()) {
            self.hold_leg(now, &customer, false);
        }
        self.out.push_back(Output::Media(MediaCommand::Bridge {
            customer: customer.clone(),
            agent: leg.to_string(),
        }));
        self.record_leg(&customer, leg);
        self.linked.insert(customer.clone(), leg.to_string());
        self.linked.insert(leg.to_string(), customer.clone());
        self.emit(
            &customer,
            now,
            CallEventKind::Transferred {
                to: uri,
                sip_status: 200,
            },
        );
        self.after_touch(now, &customer);
    }

    /// Events of a consultation leg: ringing, its answer (bridged to the agent), its end.
    pub(in crate::engine::core) fn consult_events(
        &mut self,
        now: Instant,
        id: &str,
        events: &mut Vec<(Instant, CallEventKind)>,
    ) {
        for (at, kind) in events.drain(..) {
            match kind {
                CallEventKind::Answered { .. } if self.blind_legs.contains_key(id) => {
                    self.blind_answered(now, id);
                }
                CallEventKind::Terminated { sip_status, .. }
                    if self.blind_legs.contains_key(id) =>
                {
                    // The target did not answer: the customer's call ends.
                    let (customer, uri) = self.blind_legs.remove(id).expect("checked");
                    self.emit(
                        &customer,
                        at,
                        CallEventKind::TransferFailed {
                            to: uri,
                            sip_status,
                        },
                    );
                    self.end_blind(now, &customer);
                }
                CallEventKind::Terminated { .. } => {
                    if let Some(customer) = self.linked.remove(id) {
                        // After the agent left: the customer's call ends with it, as a
                        // transferred one (a REFER's customer ends `transferred` too).
                        self.linked.remove(&customer);
                        self.end_transferred(now, &customer);
                    } else if let Some(customer) = self.consults.remove(id) {
                        self.consult_ended(now, &customer);
                    }
                }
                CallEventKind::Ringing { .. } | CallEventKind::EarlyMedia { .. } => {
                    if let Some(c) = self.consults.get(id).cloned() {
                        self.flow_status(&c, at, FlowStatus::Ringing);
                    }
                }
                CallEventKind::Answered { .. } => {
                    let Some(c) = self.consults.get(id).cloned() else {
                        continue;
                    };
                    let Some(h) = self.handling.get_mut(&c) else {
                        continue;
                    };
                    if let Some(w) = h.warm.as_mut().filter(|w| w.phase == WarmPhase::Dialing) {
                        w.phase = WarmPhase::Consulting;
                        self.out.push_back(Output::Media(MediaCommand::Bridge {
                            customer: id.to_string(),
                            agent: h.agent_leg.clone(),
                        }));
                        self.record_leg(&c, id);
                        self.flow_status(&c, at, FlowStatus::Connected);
                    }
                }
                _ => {}
            }
        }
    }

    /// The third party is gone (hung up, no answer, cancelled) while the agent is on the
    /// call: back to the customer (off hold, bridged to the agent), flow `regular`.
    fn consult_ended(&mut self, now: Instant, customer: &str) {
        let Some(h) = self.handling.get_mut(customer) else {
            return;
        };
        let Some(w) = h.warm.take() else { return };
        h.flow = CallFlow::Regular;
        let agent_leg = h.agent_leg.clone();
        let ended = h.ended_at.is_some();
        if let Some(other) = &w.agent {
            self.release_consulted(now, customer, other);
        }
        if ended {
            return;
        }
        match w.phase {
            WarmPhase::Merged => self.out.push_back(Output::Media(MediaCommand::Unmix {
                legs: vec![customer.to_string(), agent_leg.clone(), w.leg.clone()],
            })),
            _ => self.out.push_back(Output::Media(MediaCommand::Unbridge {
                customer: w.leg.clone(),
                agent: agent_leg.clone(),
            })),
        }
        if self.calls.get(customer).is_some_and(|s| s.leg.holding()) {
            self.hold_leg(now, customer, false);
        }
        self.out.push_back(Output::Media(MediaCommand::Bridge {
            customer: customer.to_string(),
            agent: agent_leg,
        }));
        self.flow_status(customer, now, FlowStatus::Connected);
        self.after_touch(now, customer);
    }

    /// The customer's call ended: a consultation leg in progress ends with it, and so does
    /// the third party it was left connected to.
    pub(in crate::engine::core) fn warm_customer_ended(&mut self, now: Instant, customer: &str) {
        self.blind_pending.remove(customer);
        let blind: Vec<String> = self
            .blind_legs
            .iter()
            .filter(|(_, (c, _))| c == customer)
            .map(|(leg, _)| leg.clone())
            .collect();
        for leg in blind {
            self.blind_legs.remove(&leg);
            self.hang_up_leg(now, &leg);
        }
        if let Some(other) = self.linked.remove(customer) {
            self.linked.remove(&other);
            self.hang_up_leg(now, &other);
        }
        let leg = self
            .handling
            .get_mut(customer)
            .and_then(|h| h.warm.take())
            .map(|w| {
                if w.phase == WarmPhase::Merged {
                    self.out.push_back(Output::Media(MediaCommand::Unmix {
                        legs: vec![customer.to_string(), w.leg.clone()],
                    }));
                }
                (w.leg, w.agent)
            });
        if let Some((leg, agent)) = leg {
            if let Some(other) = agent {
                self.release_consulted(now, customer, &other);
            }
            self.consults.remove(&leg);
            self.hang_up_leg(now, &leg);
        }
    }

    /// Third party `leg` joins `customer`'s recording, if it is being recorded.
    pub(in crate::engine::core) fn record_leg(&mut self, customer: &str, leg: &str) {
        if self.recording_calls.contains_key(customer) {
            self.out.push_back(Output::Media(MediaCommand::RecordLeg {
                customer: customer.to_string(),
                leg: leg.to_string(),
            }));
        }
    }

    /// The agent consulted for `customer` is no longer needed: available again.
    fn release_consulted(&mut self, now: Instant, customer: &str, agent: &str) {
        if let Some(acd) = &mut self.acd {
            acd.consult_ended(now, customer, agent);
        }
        self.run_acd(now);
    }

    fn hang_up_leg(&mut self, now: Instant, id: &str) {
        if let Some(s) = self.calls.get_mut(id) {
            s.leg.hang_up(now);
        }
        self.after_touch(now, id);
    }

    /// The warm transfer of `customer`: (consultation leg, agent leg, phase). Errors: none in
    /// progress.
    fn warm_parts(&self, customer: &str) -> Result<(String, String, WarmPhase), AgentControlError> {
        let h: &Handling = self
            .handling
            .get(customer)
            .ok_or_else(|| not_now("no call"))?;
        let w = h
            .warm
            .as_ref()
            .ok_or_else(|| not_now("no warm transfer in progress"))?;
        Ok((w.leg.clone(), h.agent_leg.clone(), w.phase))
    }

    fn set_phase(&mut self, customer: &str, phase: WarmPhase) {
        if let Some(w) = self
            .handling
            .get_mut(customer)
            .and_then(|h| h.warm.as_mut())
        {
            w.phase = phase;
        }
    }

    fn both_can_reoffer(&self, a: &str, b: &str) -> Result<(), AgentControlError> {
        let ok = |id: &str| self.calls.get(id).is_some_and(|s| s.leg.can_reoffer());
        if ok(a) && ok(b) {
            Ok(())
        } else {
            Err(not_now("a re-INVITE of ours is in progress"))
        }
    }
}
