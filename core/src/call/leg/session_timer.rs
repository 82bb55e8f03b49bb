//! RFC 4028 session timers of a confirmed call: arming, refreshing (UPDATE or re-INVITE),
//! the far end's refreshes, expiry.

use super::*;

impl CallLeg {
    /// The session timer, while the call is confirmed and has one.
    pub(super) fn session(&self) -> Option<SessionTimer> {
        match self.phase {
            Phase::Confirmed { session } => session,
            _ => None,
        }
    }

    /// Arms the RFC 4028 timer for `interval` seconds from now: refresh at half of it when we
    /// are the refresher; BYE at expiry minus min(32 s, interval / 3) without a refresh.
    pub(super) fn arm_session(&mut self, now: Instant, interval: u32, we_refresh: bool) {
        let iv = Duration::from_secs(u64::from(interval.max(1)));
        let guard = Duration::from_secs(32).min(iv / 3);
        if let Phase::Confirmed { session } = &mut self.phase {
            *session = Some(SessionTimer {
                interval,
                refresh_at: we_refresh.then(|| now + iv / 2),
                expire_at: now + iv - guard,
            });
        }
    }

    /// The far end refreshed the session with a re-INVITE or UPDATE we answer 200: re-arms
    /// the timer and returns the headers for our 2xx (§9: Session-Expires with the
    /// refresher, `Require: timer`). Without a Session-Expires, an existing timer simply
    /// restarts.
    pub(super) fn refreshed_by_peer(&mut self, now: Instant, msg: &Inbound) -> Vec<Header> {
        match session_expires_of(msg) {
            Some((interval, refresher)) => {
                // Absent a refresher parameter the UAS picks; we let the requester refresh.
                let we = refresher.as_deref() == Some("uas");
                self.arm_session(now, interval, we);
                let mut h = vec![Header::SessionExpires(
                    crate::sip::message::wire::SessionExpires::new(format!(
                        "{interval};refresher={}",
                        if we { "uas" } else { "uac" }
                    )),
                )];
                h.push(Header::Require(crate::sip::message::wire::Require::new(
                    "timer",
                )));
                h
            }
            None => {
                if let Some(st) = self.session() {
                    self.arm_session(now, st.interval, st.refresh_at.is_some());
                }
                Vec::new()
            }
        }
    }

    /// Sends our session refresh: UPDATE without a body when the far end allows UPDATE,
    /// else a re-INVITE with our unchanged SDP (RFC 4028 §9, §10).
    pub(super) fn send_refresh(&mut self, now: Instant) {
        let (Some(st), Some(d)) = (self.session(), self.up.dialog.as_mut()) else {
            return;
        };
        let reliable = self.id.local.transport.is_reliable();
        let mut extra = vec![Header::Contact(Contact::new(self.id.local.contact()))];
        extra.extend(session_headers(st.interval, "uac"));
        if self.up.peer_update {
            let (branch, bytes) = d.request(
                Method::Update,
                &self.id.local,
                extra,
                vec![],
                &mut self.id.tokens,
            );
            self.up.refresh = Some(Refresh::Update(NonInviteClientTx::new(
                now,
                branch,
                "UPDATE",
                bytes,
                reliable,
                self.id.timers,
            )));
        } else {
            self.send_reinvite(now, extra);
        }
        self.drain_txs();
    }

    /// A re-INVITE offering our SDP in the direction we hold the call in (`sendrecv`, or
    /// `sendonly` while we hold the far end), with `extra` headers; its transaction takes the
    /// refresh slot (its 2xx is ACKed and re-ACKed there).
    fn send_reinvite(&mut self, now: Instant, mut extra: Vec<Header>) {
        let Some(d) = self.up.dialog.as_mut() else {
            return;
        };
        let reliable = self.id.local.transport.is_reliable();
        extra.push(Header::Allow(Allow::new(ALLOW)));
        extra.push(Header::ContentType(ContentType::new("application/sdp")));
        self.up.sdp_version += 1;
        let sdp = crate::sip::sdp::audio_sdp(
            &self.id.spec.media_ip,
            self.id.spec.rtp_port,
            self.up.session_id,
            self.up.sdp_version,
            if self.up.holding {
                "sendonly"
            } else {
                "sendrecv"
            },
        )
        .into_bytes();
        let (branch, bytes) = d.request(
            Method::Invite,
            &self.id.local,
            extra,
            sdp,
            &mut self.id.tokens,
        );
        let via = self.id.local.via_with_branch(&branch);
        let cseq = d.local_cseq;
        self.up.refresh = Some(Refresh::Invite {
            tx: InviteClientTx::new(now, branch, bytes, reliable, self.id.timers),
            cseq,
            via,
            ack: None,
        });
    }

    /// Puts the far end on hold (`hold`: a re-INVITE offering `a=sendonly`, RFC 3264 §8.4: we
    /// send music on hold, it sends nothing) or takes it off hold (`a=sendrecv` again).
    /// Returns false, changing nothing, when the call is not confirmed, the direction is
    /// already that one, or another re-INVITE or UPDATE of ours is still in progress (RFC
    /// 3261 §14.1: one offer at a time).
    pub fn set_hold(&mut self, now: Instant, hold: bool) -> bool {
        if !self.phase.is_confirmed() || self.up.holding == hold || self.refresh_in_progress() {
            return false;
        }
        self.up.holding = hold;
        let mut extra = vec![Header::Contact(Contact::new(self.id.local.contact()))];
        if let Some(st) = self.session() {
            extra.extend(session_headers(st.interval, "uac"));
        }
        self.send_reinvite(now, extra);
        self.drain_txs();
        true
    }

    /// True when a re-INVITE of ours could go out now: the call is confirmed and no
    /// re-INVITE or UPDATE of ours is in progress.
    pub fn can_reoffer(&self) -> bool {
        self.phase.is_confirmed() && !self.refresh_in_progress()
    }

    /// True while we hold the far end ([`Self::set_hold`]).
    pub fn holding(&self) -> bool {
        self.up.holding
    }

    /// True while the far end holds us (its last offer was `sendonly` or `inactive`, RFC
    /// 3264 §8.4).
    pub fn is_held(&self) -> bool {
        self.up.held
    }

    fn refresh_in_progress(&self) -> bool {
        match &self.up.refresh {
            Some(Refresh::Update(t)) => !t.is_terminated(),
            Some(Refresh::Invite { ack, tx, .. }) => ack.is_none() && !tx.is_terminated(),
            None => false,
        }
    }

    pub(super) fn refresh_succeeded(&mut self, now: Instant, msg: &Inbound) {
        if self.session().is_none() && session_expires_of(msg).is_none() {
            // A hold re-INVITE on a call without session timers.
            return;
        }
        let (interval, refresher) = session_expires_of(msg)
            .unwrap_or((self.session().map_or(MIN_SE, |s| s.interval), None));
        self.arm_session(now, interval, refresher.as_deref() != Some("uas"));
    }

    /// A refresh failed. §10: a 408, a 481 or no answer at all ends the call with BYE; an
    /// UPDATE the far end does not know (405/501) is retried as re-INVITE; a 422 is retried
    /// with its Min-SE; a 491 glare is retried after 2 s; otherwise the session simply runs to
    /// its expiry.
    pub(super) fn refresh_failed(&mut self, now: Instant, code: Option<u16>, msg: &Inbound) {
        let Phase::Confirmed { session: Some(st) } = &mut self.phase else {
            return;
        };
        match code {
            None | Some(408 | 481) => {
                self.send_bye(now, EndReason::SessionRefreshFailed);
            }
            Some(405 | 501) if self.up.peer_update => {
                self.up.peer_update = false;
                st.refresh_at = Some(now);
            }
            Some(422) => {
                if let Some(m) = min_se_of(msg) {
                    st.interval = st.interval.max(m);
                }
                st.refresh_at = Some(now);
            }
            Some(491) => st.refresh_at = Some(now + Duration::from_secs(2)),
            Some(_) => {}
        }
    }

    pub(super) fn on_refresh_invite_response(&mut self, now: Instant, msg: &Inbound, status: u16) {
        let (Some(Refresh::Invite { tx, cseq, via, ack }), Some(d)) =
            (self.up.refresh.as_mut(), self.up.dialog.as_ref())
        else {
            return;
        };
        if (200..300).contains(&status) {
            if let Some(a) = ack.clone() {
                // A retransmitted 2xx: our ACK was lost.
                self.outcome.duplicates += 1;
                let dest = self.dialog_destination();
                self.push_out(dest, a);
                return;
            }
            tx.on_response(now, status, Vec::new);
            let a = d.ack(*cseq, &self.id.local, &mut self.id.tokens);
            *ack = Some(a.clone());
            let dest = self.dialog_destination();
            self.push_out(dest, a);
            self.refresh_succeeded(now, msg);
            return;
        }
        let ev = tx.on_response(now, status, || d.non_2xx_ack(*cseq, &self.id.local, via));
        if let ClientTxEvent::Failure(code) = ev {
            self.refresh_failed(now, Some(code), msg);
        }
        self.drain_txs();
    }

    /// Session timer and refresh transaction timers (RFC 4028 §10).
    pub(super) fn session_timeout(&mut self, now: Instant) {
        if !self.phase.is_confirmed() {
            return;
        }
        let timed_out = match &mut self.up.refresh {
            Some(Refresh::Update(t)) => {
                matches!(t.handle_timeout(now), Some(ClientTxEvent::Timeout))
            }
            Some(Refresh::Invite { tx, .. }) => {
                matches!(tx.handle_timeout(now), Some(ClientTxEvent::Timeout))
            }
            None => false,
        };
        if timed_out {
            self.up.refresh = None;
            self.send_bye(now, EndReason::SessionRefreshFailed);
            return;
        }
        let Some(st) = self.session() else { return };
        if now >= st.expire_at {
            self.send_bye(now, EndReason::SessionExpired);
        } else if st.refresh_at.is_some_and(|t| now >= t) {
            if let Phase::Confirmed { session: Some(s) } = &mut self.phase {
                s.refresh_at = None;
            }
            self.send_refresh(now);
        }
    }
}

/// `Supported: timer`, `Session-Expires: N;refresher=R` and `Min-SE` (RFC 4028 §4).
pub(super) fn session_headers(interval: u32, refresher: &str) -> Vec<Header> {
    vec![
        Header::Supported(crate::sip::message::wire::Supported::new("timer")),
        Header::SessionExpires(crate::sip::message::wire::SessionExpires::new(format!(
            "{interval};refresher={refresher}"
        ))),
        Header::MinSE(crate::sip::message::wire::MinSE::new(MIN_SE.to_string())),
    ]
}

/// `Session-Expires` of a message (or its compact form `x`): the interval in seconds and
/// the `refresher` parameter in lower case.
pub(super) fn session_expires_of(msg: &Inbound) -> Option<(u32, Option<String>)> {
    msg.msg().headers().iter().find_map(|h| match h {
        Header::SessionExpires(v) => parse_session_expires(v.value()),
        Header::Other(name, v) if name.eq_ignore_ascii_case("x") => parse_session_expires(v),
        _ => None,
    })
}

fn parse_session_expires(v: &str) -> Option<(u32, Option<String>)> {
    let mut parts = v.split(';');
    let interval = parts.next()?.trim().parse().ok()?;
    let refresher = parts.find_map(|p| {
        let (k, val) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("refresher")
            .then(|| val.trim().to_ascii_lowercase())
    });
    Some((interval, refresher))
}

/// `Min-SE` of a 422 response, seconds.
pub(super) fn min_se_of(msg: &Inbound) -> Option<u32> {
    msg.msg().headers().iter().find_map(|h| match h {
        Header::MinSE(v) => v.value().split(';').next()?.trim().parse().ok(),
        _ => None,
    })
}

/// True when the message's `Allow` lists UPDATE.
pub(super) fn allows_update(msg: &Inbound) -> bool {
    msg.msg().headers().iter().any(|h| match h {
        Header::Allow(a) => a
            .value()
            .split(',')
            .any(|m| m.trim().eq_ignore_ascii_case("UPDATE")),
        _ => false,
    })
}
