//! The INVITE side of a call leg: the INVITE transaction and its responses, digest
//! (401/407) and 422 retries, failover to the next hop, the 2xx and its forks, CANCEL.

use super::*;

impl CallLeg {
    /// The current hop (trunk) of the INVITE.
    pub(super) fn current_hop(&self) -> Hop {
        self.id
            .spec
            .hops
            .get(self.inv.hop)
            .cloned()
            .unwrap_or_else(|| Hop::direct(""))
    }

    pub(super) fn trunk(&self) -> usize {
        self.id.spec.hops.get(self.inv.hop).map_or(0, |h| h.trunk)
    }

    /// True when the call may still move to another trunk: no answer and no ring timeout
    /// yet, not shutting down, and a hop left.
    pub(super) fn can_fail_over(&self) -> bool {
        self.phase == Phase::Inviting
            && !self.ending.shutdown
            && !self.ending.ring_timed_out
            && self.inv.hop + 1 < self.id.spec.hops.len()
    }

    /// Sends the INVITE to the next hop (RFC 3261 §8.1.3.5: a new transaction with the same
    /// Call-ID, From and To, CSeq + 1, our same SDP offer) and emits `trunk_failover`;
    /// `note` records the old trunk's failure (`Failed`, `Silent` or `Refused`).
    pub(super) fn fail_over(
        &mut self,
        now: Instant,
        status: Option<u16>,
        detail: FailoverReason,
        note: fn(usize) -> TrunkNote,
    ) {
        // Whatever the old transaction still has to send (its ACK) goes to its own trunk.
        self.drain_txs();
        let from = self.current_hop();
        self.inv.notes.push(note(from.trunk));
        self.inv.hop += 1;
        let to = self.current_hop();
        self.events.push_back((
            now,
            CallEventKind::TrunkFailover {
                from_trunk: from.name,
                to_trunk: to.name.clone(),
                sip_status: status,
                detail,
            },
        ));
        self.inv.notes.push(TrunkNote::Sent(to.trunk));
        self.inv.hop_noted = false;
        self.inv.history = InviteHistory::default();
        self.inv.auth_tries = 0;
        self.ending.cancel_wanted = false;
        self.id.request_uri = parse_uri_or_invalid(&to.request_uri);
        self.deadlines[LegTimer::Failover] = (self.inv.hop + 1 < self.id.spec.hops.len())
            .then(|| now + self.id.spec.failover_timeout);
        self.send_invite(now, None, from.trunk);
    }

    /// Builds and sends a new INVITE transaction on the current hop (CSeq + 1, new branch),
    /// retiring the current one on `old_trunk`.
    pub(super) fn send_invite(&mut self, now: Instant, auth: Option<Header>, old_trunk: usize) {
        let (via, branch) = self.id.local.via(&mut self.id.tokens);
        self.inv.invite_cseq += 1;
        self.inv.invite_via = via;
        let route = self
            .id
            .spec
            .hops
            .get(self.inv.hop)
            .and_then(|h| h.route.clone());
        let bytes = build_invite(
            &self.id.spec,
            &self.id.request_uri,
            &self.id.local,
            &InviteParts {
                call_id: &self.id.call_id,
                from: &self.id.from_value,
                to: &self.id.to_value,
                via: &self.inv.invite_via,
                cseq: self.inv.invite_cseq,
                route: route.as_deref(),
            },
            &self.id.offer,
            auth,
            self.inv.se_request,
        );
        let tx = InviteClientTx::new(
            now,
            branch,
            bytes,
            self.id.local.transport.is_reliable(),
            self.id.timers,
        );
        let old = std::mem::replace(&mut self.inv.invite, tx);
        self.inv.retired.push((old, old_trunk));
        self.drain_txs();
    }

    pub(super) fn handle_response(&mut self, now: Instant, msg: &Inbound) {
        let Some(status) = msg.status else { return };
        match msg.cseq_method() {
            "INVITE" => self.on_invite_response(now, msg, status),
            "CANCEL" => {
                if let Some(c) = &mut self.ending.cancel
                    && c.matches(msg.branch(), "CANCEL")
                {
                    c.on_response(now, status);
                }
            }
            "UPDATE" => {
                if let Some(Refresh::Update(t)) = &mut self.up.refresh
                    && t.matches(msg.branch(), "UPDATE")
                {
                    match t.on_response(now, status) {
                        ClientTxEvent::Success(_) => self.refresh_succeeded(now, msg),
                        ClientTxEvent::Failure(code) => self.refresh_failed(now, Some(code), msg),
                        _ => {}
                    }
                }
            }
            "REFER" => self.on_refer_response(now, msg, status),
            "BYE" => {
                if let Some(b) = &mut self.ending.bye
                    && b.matches(msg.branch(), "BYE")
                {
                    if let ClientTxEvent::Success(_) | ClientTxEvent::Failure(_) =
                        b.on_response(now, status)
                    {
                        let reason = match self.phase {
                            Phase::Terminating { reason } => reason,
                            _ => EndReason::HoldTime,
                        };
                        self.end(now, HangupBy::Local, reason);
                    }
                    return;
                }
                for f in &mut self.ending.forks {
                    if f.bye.matches(msg.branch(), "BYE") {
                        f.bye.on_response(now, status);
                    }
                }
            }
            _ => {}
        }
        self.drain_txs();
    }

    pub(super) fn on_invite_response(&mut self, now: Instant, msg: &Inbound, status: u16) {
        if let Some(Refresh::Invite { tx, .. }) = &self.up.refresh
            && Some(tx.branch()) == msg.branch()
        {
            self.on_refresh_invite_response(now, msg, status);
            return;
        }
        if let Some(old) = self
            .inv
            .retired
            .iter_mut()
            .find(|(t, _)| Some(t.branch()) == msg.branch())
            .map(|(t, _)| t)
        {
            old.on_response(now, status, Vec::new);
            self.outcome.duplicates += 1;
            return;
        }
        let ours =
            msg.branch() == Some(self.inv.invite.branch()) && msg.cseq == self.inv.invite_cseq;
        if !ours {
            return;
        }
        self.deadlines[LegTimer::Failover] = None;
        if !self.inv.hop_noted {
            self.inv.hop_noted = true;
            if !FAILOVER_CODES.contains(&status) {
                self.inv.notes.push(TrunkNote::Responded(self.trunk()));
            }
        }
        if status >= 300
            && self.inv.invite.is_pending()
            && let Some(secs) = msg.retry_after()
        {
            self.inv
                .notes
                .push(TrunkNote::RetryAfter(self.trunk(), secs));
        }
        if (200..300).contains(&status) && !self.inv.invite.is_pending() {
            // A retransmitted or forked 2xx after the transaction ended (§13.2.2.4).
            self.on_2xx(now, msg, status);
            return;
        }
        let route = self
            .id
            .spec
            .hops
            .get(self.inv.hop)
            .and_then(|h| h.route.as_deref());
        let parts = InviteParts {
            call_id: &self.id.call_id,
            from: &self.id.from_value,
            to: &self.id.to_value,
            via: &self.inv.invite_via,
            cseq: self.inv.invite_cseq,
            route,
        };
        let (request_uri, ua) = (&self.id.request_uri, &self.id.local.user_agent);
        let ev = self
            .inv
            .invite
            .on_response(now, status, || non_2xx_ack(request_uri, ua, &parts, msg));
        match ev {
            ClientTxEvent::Provisional(code) => {
                self.inv.history.provisional = true;
                let kind = match code {
                    100 => CallEventKind::Trying,
                    _ if !msg.body().is_empty() => CallEventKind::EarlyMedia { code },
                    180 | 183 => CallEventKind::Ringing { code },
                    _ => CallEventKind::Progress { code },
                };
                if code > 100 {
                    self.inv.history.alerted = true;
                }
                self.events.push_back((now, kind));
                if self.ending.cancel_wanted && self.ending.cancel.is_none() {
                    self.send_cancel(now);
                }
            }
            ClientTxEvent::Success(code) => self.on_2xx(now, msg, code),
            ClientTxEvent::Failure(code @ (401 | 407)) if self.retry_with_auth(now, msg, code) => {}
            ClientTxEvent::Failure(422) if self.retry_with_min_se(now, msg) => {}
            ClientTxEvent::Failure(code)
                if FAILOVER_CODES.contains(&code)
                    && !self.inv.history.cancelled_on_ring_timeout
                    && self.can_fail_over() =>
            {
                self.fail_over(
                    now,
                    Some(code),
                    FailoverReason::FinalResponse,
                    TrunkNote::Failed,
                );
            }
            ClientTxEvent::Failure(code) => {
                if FAILOVER_CODES.contains(&code) {
                    self.inv.notes.push(TrunkNote::Failed(self.trunk()));
                }
                self.outcome.final_status = Some(code);
                self.outcome.final_reason = msg.reason_phrase();
                self.outcome.retry_after = msg.retry_after();
                self.outcome.q850 = msg.q850_cause();
                self.deadlines[LegTimer::CancelGuard] = None;
                let by = if self.inv.history.cancelled_on_ring_timeout {
                    HangupBy::Local
                } else {
                    HangupBy::Remote
                };
                let detail = if self.inv.history.cancelled_on_ring_timeout {
                    EndReason::RingTimeout
                } else {
                    EndReason::FinalResponse
                };
                self.end(now, by, detail);
            }
            ClientTxEvent::Absorbed => self.outcome.duplicates += 1,
            ClientTxEvent::Timeout => {}
        }
    }

    /// Answers a 401/407 with a new INVITE carrying credentials (RFC 3261 §22.2): same
    /// Call-ID and From tag, CSeq + 1, a new branch. Returns false when there is nothing to
    /// answer with (no credentials, no usable challenge, or this challenge was already
    /// answered and is not `stale`): the call then ends with that 401/407.
    pub(super) fn retry_with_auth(&mut self, now: Instant, msg: &Inbound, code: u16) -> bool {
        let Some(creds) = self.current_hop().auth else {
            return false;
        };
        let value = msg.msg().headers().iter().find_map(|h| match (code, h) {
            (401, Header::WwwAuthenticate(v)) => Some(v.value().to_string()),
            (407, Header::ProxyAuthenticate(v)) => Some(v.value().to_string()),
            _ => None,
        });
        let Some(challenge) = value.and_then(|v| Challenge::parse(&v).ok()) else {
            return false;
        };
        if self.inv.auth_tries >= 2 || (self.inv.auth_tries == 1 && !challenge.is_stale()) {
            return false;
        }
        self.inv.auth_tries += 1;
        let answer = challenge.answer(
            &creds,
            &Method::Invite,
            &self.id.request_uri,
            1,
            &mut self.id.tokens,
        );
        let header = if code == 401 {
            Header::Authorization(crate::sip::message::wire::Authorization::new(answer))
        } else {
            Header::ProxyAuthorization(crate::sip::message::wire::ProxyAuthorization::new(answer))
        };
        tracing::debug!(call_id = %self.id.call_id, code, realm = challenge.realm(), "answering digest challenge");
        // The ACK for the challenge is already queued by the old transaction: send it first.
        self.drain_txs();
        self.send_invite(now, Some(header), self.trunk());
        true
    }

    pub(super) fn on_2xx(&mut self, now: Instant, msg: &Inbound, code: u16) {
        let to_tag = msg.to_tag().map(str::to_string).unwrap_or_default();
        if let Some(d) = &self.up.dialog {
            if d.remote_tag == to_tag {
                // Retransmitted 2xx: our ACK was lost. Send it again.
                self.outcome.duplicates += 1;
                if let Some(ack) = self.up.ack_2xx.clone() {
                    let dest = self.dialog_destination();
                    self.push_out(dest, ack);
                }
                return;
            }
            // A 2xx from another fork: ACK it, then BYE it (§13.2.2.4).
            if let Some(f) = self
                .ending
                .forks
                .iter()
                .find(|f| f.dialog.remote_tag == to_tag)
            {
                let (dest, ack) = (
                    destination_for(
                        &f.dialog,
                        self.id.local.transport,
                        Destination::Trunk(self.trunk()),
                    ),
                    f.ack.clone(),
                );
                self.push_out(dest, ack);
                return;
            }
            if let Ok(mut fd) =
                Dialog::from_response(&self.id.from_value, self.inv.invite_cseq, msg)
            {
                let ack = fd.ack(self.inv.invite_cseq, &self.id.local, &mut self.id.tokens);
                let dest = destination_for(
                    &fd,
                    self.id.local.transport,
                    Destination::Trunk(self.trunk()),
                );
                self.push_out(dest, ack.clone());
                let (branch, bye) = fd.request(
                    Method::Bye,
                    &self.id.local,
                    vec![],
                    vec![],
                    &mut self.id.tokens,
                );
                let bye = NonInviteClientTx::new(
                    now,
                    branch,
                    "BYE",
                    bye,
                    self.id.local.transport.is_reliable(),
                    self.id.timers,
                );
                self.ending.forks.push(Fork {
                    dialog: fd,
                    ack,
                    bye,
                });
                self.drain_txs();
            }
            return;
        }
        if self.phase == Phase::Ended {
            return;
        }
        self.outcome.final_status = Some(code);
        self.outcome.final_reason = msg.reason_phrase();
        self.inv.history.provisional = true;
        match Dialog::from_response(&self.id.from_value, self.inv.invite_cseq, msg) {
            Ok(d) => {
                let ack = d.ack(self.inv.invite_cseq, &self.id.local, &mut self.id.tokens);
                let dest = destination_for(
                    &d,
                    self.id.local.transport,
                    Destination::Trunk(self.trunk()),
                );
                self.up.dialog = Some(d);
                if !msg.body().is_empty() {
                    self.outcome.answer_sdp = Some(msg.body().to_vec());
                }
                self.up.ack_2xx = Some(ack.clone());
                self.push_out(dest, ack);
                self.phase = Phase::Confirmed { session: None };
                self.deadlines[LegTimer::Ring] = None;
                self.deadlines[LegTimer::CancelGuard] = None;
                self.events
                    .push_back((now, CallEventKind::Answered { code }));
                if self.ending.cancel.is_some() {
                    // The answer crossed our CANCEL: the call is up, so end it with BYE.
                    self.send_bye(now, EndReason::AnsweredAfterCancel);
                } else {
                    self.deadlines[LegTimer::Hold] = Some(now + self.id.spec.hold_time);
                    self.up.peer_update = allows_update(msg);
                    if self.inv.se_request.is_some()
                        && let Some((interval, refresher)) = session_expires_of(msg)
                    {
                        // RFC 4028 §7.2: the 2xx names the refresher; absent, it is us.
                        self.arm_session(now, interval, refresher.as_deref() != Some("uas"));
                    }
                }
            }
            Err(why) => {
                // A 2xx we cannot build a dialog from (no To-tag / Contact): record the answer
                // and end the attempt; there is no way to BYE it.
                tracing::warn!(call_id = %self.id.call_id, %why, "unusable 2xx");
                self.events
                    .push_back((now, CallEventKind::Answered { code }));
                self.end(now, HangupBy::Local, EndReason::Bad2xx);
            }
        }
    }

    /// Answers a 422 (Session Interval Too Small) once with a new INVITE asking for the
    /// response's Min-SE (RFC 4028 §7.4): CSeq + 1, new branch, like a digest retry.
    pub(super) fn retry_with_min_se(&mut self, now: Instant, msg: &Inbound) -> bool {
        let (Some(asked), Some(min)) = (self.inv.se_request, min_se_of(msg)) else {
            return false;
        };
        if min <= asked {
            return false;
        }
        self.inv.se_request = Some(min);
        self.drain_txs();
        self.send_invite(now, None, self.trunk());
        true
    }

    pub(super) fn request_cancel(&mut self, now: Instant) {
        if !self.inv.invite.is_pending() || self.ending.cancel.is_some() {
            return;
        }
        if self.inv.history.provisional {
            self.send_cancel(now);
        } else {
            // §9.1: a CANCEL must wait for a provisional response. Timer B still guards us.
            self.ending.cancel_wanted = true;
        }
    }

    pub(super) fn send_cancel(&mut self, now: Instant) {
        // Only a CANCEL actually sent makes the outcome ours: a final response that beats it
        // (a 486 arriving while we still wait for a provisional) is the far end's.
        if self.ending.ring_timed_out {
            self.inv.history.cancelled_on_ring_timeout = true;
        }
        let branch = self.inv.invite.branch().to_string();
        // §9.1: the INVITE's Request-URI, top Via, From, To, Call-ID and CSeq number.
        let parts = InviteParts {
            call_id: &self.id.call_id,
            from: &self.id.from_value,
            to: &self.id.to_value,
            via: &self.inv.invite_via,
            cseq: self.inv.invite_cseq,
            route: self
                .id
                .spec
                .hops
                .get(self.inv.hop)
                .and_then(|h| h.route.as_deref()),
        };
        let mut h = request_head(&parts, &self.id.to_value, Method::Cancel);
        h.push(Header::Reason(Reason::new(
            "Q.850;cause=19;text=\"No answer from user\"",
        )));
        h.push(Header::UserAgent(UserAgent::new(
            self.id.local.user_agent.clone(),
        )));
        h.push(Header::ContentLength(ContentLength::new("0")));
        let bytes = request_bytes(Method::Cancel, &self.id.request_uri, &h, &[]);
        self.ending.cancel = Some(NonInviteClientTx::new(
            now,
            branch,
            "CANCEL",
            bytes,
            self.id.local.transport.is_reliable(),
            self.id.timers,
        ));
        self.deadlines[LegTimer::CancelGuard] = Some(now + self.id.timers.t1x64());
        self.drain_txs();
    }
}
