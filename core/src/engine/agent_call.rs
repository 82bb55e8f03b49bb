//! What an agent does on a live call (docs/acd.md, "Agent call controls"): tag, mute, hold
//! with music on hold, hang up, blind transfer, recording; the flow's `call_status` events
//! (the agent-side bus's `DIALER.CALL_STATUS` `flow`/`status`) and `DIALER.SYNC` once the
//! agent's wrap-up is over. A child module of `core`, so it reaches the engine's private
//! state; the ACD core still decides who is bridged to whom.

use std::time::Instant;

use super::{CallEventKind, Engine, MediaCommand, MediaPolicy, Output};
#[path = "warm_transfer.rs"]
mod warm_transfer;
use warm_transfer::WarmPhase;

use crate::acd::{AgentControlError, CallControl, CallControlView};
use crate::call::actions::RecordingMode;
use crate::events::{
    AgentEvent, AgentState, AttemptRef, CallEvent, CallFlow, CallSync, FlowStatus, Playback,
    TransferRecord,
};

/// One agent call being handled (or wrapped up): what `DIALER.SYNC` reports.
#[derive(Debug)]
pub(super) struct Handling {
    agent: String,
    agent_leg: String,
    attempt: AttemptRef,
    number: String,
    ring_ms: u64,
    connected_at: Instant,
    ended_at: Option<Instant>,
    hold_since: Option<Instant>,
    hold_ms: u64,
    muted: bool,
    tags: Vec<String>,
    disposition: Option<String>,
    transfers: Vec<TransferRecord>,
    flow: CallFlow,
    /// Recording in progress, or its file once written.
    recording_on: bool,
    recording_pending: bool,
    recording: Option<String>,
    wrap_started: Option<Instant>,
    wrap_ms: u64,
    wrap_over: bool,
    /// A warm transfer in progress.
    warm: Option<warm_transfer::Warm>,
}

fn ms(from: Instant, to: Instant) -> u64 {
    to.saturating_duration_since(from).as_millis() as u64
}

impl Engine {
    /// An agent's request on its current call (or, for tags, its last call in wrap-up):
    /// see [`CallControl`]. Errors: no ACD, unknown agent, [`AgentControlError::NoCall`] when
    /// the agent is on no call, [`AgentControlError::NotNow`] when the request does not fit
    /// the call's state (hold while held, a transfer target that is empty); nothing changes
    /// then.
    pub fn call_control(
        &mut self,
        now: Instant,
        agent: &str,
        control: CallControl,
    ) -> Result<CallControlView, AgentControlError> {
        let acd = self.acd.as_ref().ok_or(AgentControlError::NoAcd)?;
        if acd.agent_views(now).iter().all(|v| v.id != agent) {
            return Err(AgentControlError::UnknownAgent(agent.to_string()));
        }
        let bridged = acd.bridged_call(agent);
        let customer = match (&control, bridged) {
            (_, Some((c, _))) => c,
            // Tags may still be given in the wrap-up of the last call.
            (CallControl::Tag { .. }, None) => self
                .agent_handling
                .get(agent)
                .filter(|c| self.handling.get(*c).is_some_and(|h| !h.wrap_over))
                .cloned()
                .ok_or_else(|| AgentControlError::NoCall(agent.to_string()))?,
            (_, None) => return Err(AgentControlError::NoCall(agent.to_string())),
        };
        let not_now = |why: &str| Err(AgentControlError::NotNow(why.to_string()));
        let warm = self
            .handling
            .get(&customer)
            .is_some_and(|h| h.warm.is_some());
        if warm
            && matches!(
                control,
                CallControl::Hold | CallControl::Resume | CallControl::BlindTransfer { .. }
            )
        {
            return not_now("a warm transfer is in progress (swap, merge, cancel or complete it)");
        }
        match control {
            CallControl::WarmTransfer { target } => {
                let target = target.trim().to_string();
                if target.is_empty() {
                    return not_now("an empty transfer target");
                }
                self.warm_start(now, &customer, target)?;
            }
            CallControl::Swap => self.warm_swap(now, &customer)?,
            CallControl::Merge => self.warm_merge(now, &customer)?,
            CallControl::CancelTransfer => self.warm_cancel(now, &customer)?,
            CallControl::CompleteTransfer => self.warm_complete(now, &customer)?,
            CallControl::Tag { tags } => {
                let h = self.handling.get_mut(&customer).expect("handled call");
                for t in &tags {
                    if !h.tags.contains(t) {
                        h.tags.push(t.clone());
                    }
                }
                let kind = CallEventKind::Tagged {
                    agent: agent.to_string(),
                    tags,
                };
                self.emit_handled(&customer, now, kind);
            }
            CallControl::Mute | CallControl::Unmute => {
                let on = matches!(control, CallControl::Mute);
                let h = self.handling.get_mut(&customer).expect("handled call");
                if h.muted == on {
                    return not_now(if on { "already muted" } else { "not muted" });
                }
                h.muted = on;
                let leg = h.agent_leg.clone();
                self.out
                    .push_back(Output::Media(MediaCommand::Mute { call_id: leg, on }));
                let agent = agent.to_string();
                let kind = if on {
                    CallEventKind::Muted { agent }
                } else {
                    CallEventKind::Unmuted { agent }
                };
                self.emit_handled(&customer, now, kind);
            }
            CallControl::Hold | CallControl::Resume => {
                let hold = matches!(control, CallControl::Hold);
                self.hold(now, agent, &customer, hold)?;
            }
            CallControl::HangUp => {
                if let Some(s) = self.calls.get_mut(&customer) {
                    s.leg
                        .hang_up_answered(now, crate::events::EndReason::AgentHangup);
                }
                self.after_touch(now, &customer);
            }
            CallControl::BlindTransfer { target } => {
                let target = target.trim().to_string();
                if target.is_empty() {
                    return not_now("an empty transfer target");
                }
                if let Some(other) = target.strip_prefix("agent:") {
                    return self.transfer_to_agent(now, agent, &customer, other.trim());
                }
                let Some(slot) = self.calls.get_mut(&customer) else {
                    return Err(AgentControlError::NoCall(agent.to_string()));
                };
                if slot.leg.holding() {
                    slot.leg.set_hold(now, false);
                }
                let uri = slot.leg.uri_for(&target);
                // A trunk that refuses REFER: we call the target and bridge it (below).
                slot.leg.refer_keeping_call(now, &uri);
                self.blind_pending.insert(customer.clone(), target);
                self.hand_over_blind(now, &customer, uri, None);
            }
            CallControl::Record => {
                let h = self.handling.get_mut(&customer).expect("handled call");
                if h.recording_on {
                    return not_now("already recording");
                }
                self.start_recording(now, &customer, agent);
            }
            CallControl::StopRecording => {
                let h = self.handling.get_mut(&customer).expect("handled call");
                if !h.recording_on {
                    return not_now("not recording");
                }
                h.recording_on = false;
                h.recording_pending = true;
                self.out
                    .push_back(Output::Media(MediaCommand::StopCallRecording {
                        customer: customer.clone(),
                    }));
            }
        }
        Ok(self.control_view(&customer))
    }

    /// A blind transfer to another agent (`agent:ID`): this agent is released (its leg
    /// ended, wrap-up), the customer waits again for that agent alone and is offered to it
    /// (per-call: its phone rings; standing call: bridged) — with that agent's own handling,
    /// wrap-up and `DIALER.SYNC`. Errors: the agent is unknown, this one, or not available.
    fn transfer_to_agent(
        &mut self,
        now: Instant,
        agent: &str,
        customer: &str,
        other: &str,
    ) -> Result<CallControlView, AgentControlError> {
        if other == agent {
            return Err(AgentControlError::NotNow(
                "a transfer to the same agent".to_string(),
            ));
        }
        if !self.acd.as_ref().is_some_and(|a| a.agent_available(other)) {
            return Err(AgentControlError::NotNow(format!(
                "agent {other:?} is not available"
            )));
        }
        if let Some(slot) = self.calls.get_mut(customer)
            && slot.leg.holding()
        {
            slot.leg.set_hold(now, false);
        }
        self.hand_over_blind(now, customer, format!("agent:{other}"), Some(other));
        Ok(self.control_view(customer))
    }

    /// The agent's part of a blind transfer to `target` (a URI, or `agent:ID`): music on hold
    /// stopped, the transfer recorded, the flow `blindTransfer:transferring`, this agent's
    /// handling ended and the agent released; with `to_agent`, the customer queued again for
    /// that agent alone.
    fn hand_over_blind(
        &mut self,
        now: Instant,
        customer: &str,
        target: String,
        to_agent: Option<&str>,
    ) {
        self.stop_hold_music(customer);
        let h = self.handling.get_mut(customer).expect("handled call");
        h.transfers.push(TransferRecord {
            flow: CallFlow::BlindTransfer,
            target,
            at_ms: ms(h.connected_at, now),
        });
        h.flow = CallFlow::BlindTransfer;
        self.flow_status(customer, now, FlowStatus::Transferring);
        self.end_handling(customer, now);
        if let Some(acd) = &mut self.acd {
            acd.transfer_away(now, customer);
            if let Some(other) = to_agent {
                acd.requeue_for(now, customer, other);
            }
        }
        self.run_acd(now);
        self.after_touch(now, customer);
    }

    fn control_view(&self, customer: &str) -> CallControlView {
        let h = self.handling.get(customer);
        CallControlView {
            call_id: customer.to_string(),
            held: self.calls.get(customer).is_some_and(|s| s.leg.holding()),
            muted: h.is_some_and(|h| h.muted),
            recording: h.is_some_and(|h| h.recording_on),
            tags: h.map(|h| h.tags.clone()).unwrap_or_default(),
        }
    }

    /// Hold: a re-INVITE with `a=sendonly` to the customer, the relay stopped both ways, music
    /// on hold played to the customer. Resume: `a=sendrecv`, the music stopped, the relay
    /// back.
    fn hold(
        &mut self,
        now: Instant,
        agent: &str,
        customer: &str,
        hold: bool,
    ) -> Result<(), AgentControlError> {
        let Some(slot) = self.calls.get(customer) else {
            return Err(AgentControlError::NoCall(agent.to_string()));
        };
        if slot.leg.holding() == hold {
            let why = if hold {
                "already on hold"
            } else {
                "not on hold"
            };
            return Err(AgentControlError::NotNow(why.to_string()));
        }
        if !self.hold_leg(now, customer, hold) {
            return Err(AgentControlError::NotNow(
                "another offer of ours is in progress".to_string(),
            ));
        }
        let h = self.handling.get(customer).expect("handled call");
        let agent_leg = h.agent_leg.clone();
        let by = Some(agent.to_string());
        let (leg, sip_call_id) = ("customer".to_string(), customer.to_string());
        if hold {
            self.out.push_back(Output::Media(MediaCommand::Unbridge {
                customer: customer.to_string(),
                agent: agent_leg,
            }));
            let kind = CallEventKind::Held {
                leg,
                sip_call_id,
                by,
            };
            self.emit_handled(customer, now, kind);
            self.flow_status(customer, now, FlowStatus::OnHold);
        } else {
            // A muted agent stays muted: the shell keeps the flag across relay changes.
            self.out.push_back(Output::Media(MediaCommand::Bridge {
                customer: customer.to_string(),
                agent: agent_leg,
            }));
            let kind = CallEventKind::Resumed {
                leg,
                sip_call_id,
                by,
            };
            self.emit_handled(customer, now, kind);
            self.flow_status(customer, now, FlowStatus::Connected);
        }
        self.after_touch(now, customer);
        Ok(())
    }

    /// Puts leg `id` on hold (re-INVITE `a=sendonly`, music on hold) or takes it off
    /// (`a=sendrecv`, the music stopped); a customer's hold time is counted. False, changing
    /// nothing, when the leg cannot be re-offered now.
    fn hold_leg(&mut self, now: Instant, id: &str, hold: bool) -> bool {
        let Some(slot) = self.calls.get_mut(id) else {
            return false;
        };
        if !slot.leg.set_hold(now, hold) {
            return false;
        }
        if hold {
            self.play_hold_music(id);
        } else {
            self.stop_hold_music(id);
        }
        if let Some(h) = self.handling.get_mut(id) {
            if hold {
                h.hold_since = Some(now);
            } else if let Some(t) = h.hold_since.take() {
                h.hold_ms += ms(t, now);
            }
        }
        true
    }

    fn play_hold_music(&mut self, customer: &str) {
        let music = self
            .acd
            .as_ref()
            .and_then(|a| a.config().hold_music.clone())
            .unwrap_or_else(crate::acd::default_hold_music);
        if let Some(slot) = self.calls.get_mut(customer) {
            slot.media = MediaPolicy::Playing(Playback::Hold);
            self.out.push_back(Output::Media(MediaCommand::Play {
                call_id: customer.to_string(),
                samples: music,
            }));
        }
    }

    fn stop_hold_music(&mut self, customer: &str) {
        if let Some(slot) = self.calls.get_mut(customer)
            && slot.media.playing() == Some(Playback::Hold)
        {
            slot.media = MediaPolicy::Idle;
            self.out
                .push_back(Output::Media(MediaCommand::StopPlayback {
                    call_id: customer.to_string(),
                }));
        }
    }

    /// The music on hold played to its end: again while the customer is held.
    pub(super) fn hold_music_done(&mut self, customer: &str) {
        if self
            .calls
            .get(customer)
            .is_some_and(|s| s.leg.holding() && s.leg.is_up())
        {
            self.play_hold_music(customer);
        }
    }

    /// Recording of `customer` (and its agent leg, if bridged) starts: `by` is `campaign` or
    /// the agent.
    fn start_recording(&mut self, now: Instant, customer: &str, by: &str) {
        let agent_leg = match self.handling.get_mut(customer) {
            Some(h) => {
                h.recording_on = true;
                (h.ended_at.is_none()).then(|| h.agent_leg.clone())
            }
            None => None,
        };
        if let Some(s) = self.calls.get(customer) {
            self.recording_calls
                .insert(customer.to_string(), s.attempt.clone());
        }
        self.out.push_back(Output::Media(MediaCommand::RecordCall {
            customer: customer.to_string(),
            agent_leg,
        }));
        // Started while a warm transfer's third party is on the line: it is recorded too.
        let third = self
            .handling
            .get(customer)
            .and_then(|h| h.warm.as_ref())
            .filter(|w| w.phase != WarmPhase::Dialing)
            .map(|w| w.leg.clone());
        if let Some(leg) = third {
            self.record_leg(customer, &leg);
        }
        self.emit(
            customer,
            now,
            CallEventKind::RecordingStarted { by: by.to_string() },
        );
    }

    /// A customer answered: recorded from here with `recording = "all"`.
    pub(super) fn record_on_answer(&mut self, now: Instant, customer: &str) {
        if self
            .calls
            .get(customer)
            .is_some_and(|s| s.plan.recording == RecordingMode::All)
        {
            self.start_recording(now, customer, "campaign");
        }
    }

    /// The shell wrote (or failed to write) a call's recording.
    pub fn handle_call_recording(
        &mut self,
        now: Instant,
        customer: &str,
        file: Option<String>,
        duration_ms: u64,
        dropped: u64,
        late: u64,
    ) {
        if let Some(h) = self.handling.get_mut(customer) {
            h.recording_pending = false;
            h.recording_on = false;
            h.recording = file.clone().or(h.recording.take());
        }
        let attempt = self.recording_calls.remove(customer);
        if let Some(attempt) = attempt {
            self.out.push_back(Output::Event(CallEvent {
                call_id: customer.to_string(),
                attempt,
                at: now,
                kind: CallEventKind::RecordingSaved {
                    file,
                    duration_ms,
                    dropped,
                    late,
                },
            }));
        }
        self.maybe_sync(customer, now);
    }

    /// The ACD asked for an agent leg for `customer`: the flow's `ringing`.
    pub(super) fn handling_offered(&mut self, now: Instant, customer: &str, agent: &str) {
        let kind = CallEventKind::CallStatus {
            flow: CallFlow::Regular,
            status: FlowStatus::Ringing,
            agent: agent.to_string(),
            active_participant: None,
            inactive_participant: None,
            mandatory_tagging: self.mandatory_tagging(),
        };
        self.emit(customer, now, kind);
    }

    /// `customer` was bridged to `agent` on `agent_leg`: its handling starts (or, after a
    /// re-bridge, goes on), `connected`, and recording with `agent_calls`/`all`.
    pub(super) fn handling_bridged(
        &mut self,
        now: Instant,
        customer: &str,
        agent: &str,
        agent_leg: &str,
    ) {
        let Some(slot) = self.calls.get(customer) else {
            return;
        };
        let ring_ms = slot.answered_at.map_or(0, |a| ms(slot.started, a));
        let mode = slot.plan.recording;
        let h = Handling {
            agent: agent.to_string(),
            agent_leg: agent_leg.to_string(),
            attempt: slot.attempt.clone(),
            number: slot.leg.number().to_string(),
            ring_ms,
            connected_at: now,
            ended_at: None,
            hold_since: None,
            hold_ms: 0,
            muted: false,
            tags: Vec::new(),
            disposition: None,
            transfers: Vec::new(),
            flow: CallFlow::Regular,
            recording_on: false,
            recording_pending: false,
            recording: None,
            wrap_started: None,
            wrap_ms: 0,
            wrap_over: false,
            warm: None,
        };
        let recording_already = self.handling.get(customer).is_some_and(|h| h.recording_on);
        // The customer comes from another agent (a transfer to this one): that agent's call
        // is synced now, its wrap-up counted so far.
        if let Some(prev) = self
            .handling
            .get_mut(customer)
            .filter(|p| p.ended_at.is_some())
        {
            if !prev.wrap_over {
                prev.wrap_ms = prev.wrap_started.map_or(0, |w| ms(w, now));
            }
            prev.wrap_over = true;
            prev.recording_pending = false;
            self.maybe_sync(customer, now);
        }
        // A previous agent call of this agent not synced yet (its wrap-up cut short): now.
        if let Some(prev) = self
            .agent_handling
            .insert(agent.to_string(), customer.to_string())
            && prev != customer
            && let Some(p) = self.handling.get_mut(&prev)
        {
            p.wrap_over = true;
            self.maybe_sync(&prev, now);
        }
        self.handling.insert(customer.to_string(), h);
        self.flow_status(customer, now, FlowStatus::Connected);
        let on_answer = self
            .calls
            .get(customer)
            .is_some_and(|s| s.plan.recording == RecordingMode::All);
        if mode == RecordingMode::AgentCalls && !recording_already && !on_answer {
            self.start_recording(now, customer, "campaign");
        } else if on_answer {
            // Recorded since the answer: the agent's side joins the recording.
            if let Some(h) = self.handling.get_mut(customer) {
                h.recording_on = true;
            }
            self.out.push_back(Output::Media(MediaCommand::RecordCall {
                customer: customer.to_string(),
                agent_leg: Some(agent_leg.to_string()),
            }));
        }
    }

    /// The customer's call is ending (before the ACD hears of it).
    pub(super) fn handling_customer_ended(&mut self, now: Instant, customer: &str) {
        self.warm_customer_ended(now, customer);
        self.end_handling(customer, now);
    }

    fn end_handling(&mut self, customer: &str, now: Instant) {
        let Some(h) = self.handling.get_mut(customer) else {
            return;
        };
        if h.ended_at.is_some() {
            return;
        }
        h.ended_at = Some(now);
        // The recording ends with the call: the sync waits for its file.
        h.recording_pending |= h.recording_on;
        if let Some(t) = h.hold_since.take() {
            h.hold_ms += ms(t, now);
        }
        self.flow_status(customer, now, FlowStatus::Ended);
    }

    /// An agent's state change from the ACD: wrap-up start and end time the sync.
    pub(super) fn handling_agent_event(&mut self, e: &AgentEvent) {
        let Some(customer) = self.agent_handling.get(&e.agent).cloned() else {
            return;
        };
        let Some(h) = self.handling.get_mut(&customer) else {
            return;
        };
        if h.ended_at.is_none() || h.wrap_over {
            return;
        }
        match e.state {
            AgentState::WrapUp => h.wrap_started = Some(e.at),
            AgentState::OnCall | AgentState::Reserved => {}
            _ => {
                h.wrap_ms = h.wrap_started.map_or(0, |w| ms(w, e.at));
                h.wrap_over = true;
                self.maybe_sync(&customer, e.at);
            }
        }
    }

    /// The agent set a disposition: kept for the sync.
    pub(super) fn handling_disposition(&mut self, agent: &str, disposition: &str) {
        if let Some(h) = self
            .agent_handling
            .get(agent)
            .and_then(|c| self.handling.get_mut(c))
        {
            h.disposition = Some(disposition.to_string());
        }
    }

    /// The run is stopping: every handled call not synced yet is synced now.
    pub(super) fn sync_all(&mut self, now: Instant) {
        let ids: Vec<String> = self.handling.keys().cloned().collect();
        for id in ids {
            if let Some(h) = self.handling.get_mut(&id) {
                if h.ended_at.is_none() {
                    continue;
                }
                if !h.wrap_over {
                    // The run ends during the wrap-up: it counts until now.
                    h.wrap_ms = h.wrap_started.map_or(0, |w| ms(w, now));
                }
                h.wrap_over = true;
                h.recording_pending = false;
            }
            self.maybe_sync(&id, now);
        }
    }

    /// `DIALER.SYNC` once the call ended, the wrap-up is over and any recording is written.
    fn maybe_sync(&mut self, customer: &str, now: Instant) {
        let ready = self
            .handling
            .get(customer)
            .is_some_and(|h| h.ended_at.is_some() && h.wrap_over && !h.recording_pending);
        if !ready {
            return;
        }
        let h = self.handling.remove(customer).expect("checked");
        if self
            .agent_handling
            .get(&h.agent)
            .is_some_and(|c| c == customer)
        {
            self.agent_handling.remove(&h.agent);
        }
        let ended = h.ended_at.unwrap_or(now);
        let transferred = h.flow == CallFlow::BlindTransfer;
        let sync = CallSync {
            agent: h.agent,
            agent_call_id: h.agent_leg,
            active_participant: (!transferred).then(|| h.number.clone()),
            inactive_participant: None,
            ring_ms: h.ring_ms,
            talk_ms: ms(h.connected_at, ended),
            hold_ms: h.hold_ms,
            wrap_up_ms: h.wrap_ms,
            tags: h.tags,
            disposition: h.disposition,
            transfers: h.transfers,
            recording: h.recording,
        };
        self.out.push_back(Output::Event(CallEvent {
            call_id: customer.to_string(),
            attempt: h.attempt,
            at: now,
            kind: CallEventKind::DialerSync(Box::new(sync)),
        }));
    }

    fn flow_status(&mut self, customer: &str, now: Instant, status: FlowStatus) {
        let Some(h) = self.handling.get(customer) else {
            return;
        };
        let number = Some(h.number.clone());
        let third = h.warm.as_ref().map(|w| w.target.clone());
        let phase = h.warm.as_ref().map(|w| w.phase);
        use warm_transfer::WarmPhase as P;
        let (active, inactive) = match (status, phase) {
            (FlowStatus::OnHold | FlowStatus::StartingWarmTransfer, _) => (None, number),
            (FlowStatus::Ringing, Some(_)) => (third, number),
            (FlowStatus::Connected, Some(P::Consulting)) => (third, number),
            (FlowStatus::Connected, Some(P::Swapped)) => (number, third),
            (FlowStatus::Connected, _) => (number, None),
            _ => (None, None),
        };
        let kind = CallEventKind::CallStatus {
            flow: h.flow,
            status,
            agent: h.agent.clone(),
            active_participant: active,
            inactive_participant: inactive,
            mandatory_tagging: self.mandatory_tagging(),
        };
        self.emit_handled(customer, now, kind);
    }

    /// The bus's `mandatoryTagging`: the campaign's disposition is mandatory.
    fn mandatory_tagging(&self) -> bool {
        self.acd
            .as_ref()
            .is_some_and(|a| a.config().mandatory_disposition)
    }

    /// An event on a handled customer call (the slot may be gone: wrap-up events).
    fn emit_handled(&mut self, customer: &str, now: Instant, kind: CallEventKind) {
        let Some(attempt) = self
            .handling
            .get(customer)
            .map(|h| h.attempt.clone())
            .or_else(|| self.calls.get(customer).map(|s| s.attempt.clone()))
        else {
            return;
        };
        self.out.push_back(Output::Event(CallEvent {
            call_id: customer.to_string(),
            attempt,
            at: now,
            kind,
        }));
    }
}
