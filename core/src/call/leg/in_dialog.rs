//! The far end's in-dialog requests (BYE, re-INVITE, UPDATE, OPTIONS, INFO) and our BYE.

use super::*;

impl CallLeg {
    pub(super) fn handle_request(&mut self, now: Instant, msg: &Inbound, src: SocketAddr) {
        let method = msg.method.as_deref().unwrap_or("");
        let reliable = self.id.local.transport.is_reliable();
        // Responses go where the request's top Via says (RFC 3261 §18.2.2, RFC 3581): over
        // UDP the source address at the `rport` or sent-by port; over TCP the connection it
        // came on. Never to the dialog's next hop: the request may come from elsewhere.
        let src = if reliable {
            src
        } else {
            crate::sip::message::response_reply_addr(msg, src)
        };
        // Retransmissions first (§17.2.3).
        if let Some(tx) = self
            .up
            .server_txs
            .iter_mut()
            .find(|t| t.matches(msg.branch(), method))
        {
            tx.on_retransmission();
            self.outcome.duplicates += 1;
            self.drain_server(src);
            return;
        }
        if method == "INVITE"
            && let Some(tx) = self
                .up
                .invite_server_txs
                .iter_mut()
                .find(|t| t.matches_invite(msg.branch()))
        {
            tx.on_retransmission();
            self.outcome.duplicates += 1;
            self.drain_server(src);
            return;
        }
        if method == "ACK" {
            for tx in &mut self.up.invite_server_txs {
                if tx.matches_ack(msg.cseq) {
                    tx.on_ack(now);
                }
            }
            return;
        }
        let in_dialog = match &self.up.dialog {
            Some(d) => {
                msg.to_tag() == Some(d.local_tag.as_str())
                    && msg.from_tag() == Some(d.remote_tag.as_str())
            }
            None => false,
        };
        let branch = msg.branch().map(str::to_string).unwrap_or_default();
        if method == "INVITE" {
            let mut tx = InviteServerTx::new(branch, msg.cseq, self.id.timers);
            tx.set_reply_to(src);
            if in_dialog && self.phase.is_confirmed() {
                let ok = self.accept_remote_cseq(msg, method);
                if ok {
                    let resp = self.answer_reinvite(now, msg);
                    tx.respond(now, 200, resp, reliable);
                } else {
                    tx.respond(
                        now,
                        500,
                        response_to(msg, 500, None, vec![], vec![]),
                        reliable,
                    );
                }
            } else {
                tx.respond(
                    now,
                    481,
                    response_to(msg, 481, None, vec![], vec![]),
                    reliable,
                );
            }
            self.up.invite_server_txs.push(tx);
            self.drain_server(src);
            return;
        }
        let mut tx = ServerTx::new(branch, method.to_string(), reliable, self.id.timers);
        let (code, extra) = match method {
            "OPTIONS" => (200, vec![Header::Allow(Allow::new(ALLOW))]),
            _ if !in_dialog => (481, vec![]),
            "BYE" | "INFO" | "NOTIFY" | "UPDATE" => {
                let ok = self.accept_remote_cseq(msg, method);
                match (ok, method) {
                    (true, "UPDATE") => (200, self.refreshed_by_peer(now, msg)),
                    (true, _) => (200, vec![]),
                    (false, _) => (500, vec![]),
                }
            }
            "CANCEL" => (481, vec![]),
            "PRACK" | "REFER" | "SUBSCRIBE" | "MESSAGE" | "PUBLISH" | "REGISTER" => {
                (405, vec![Header::Allow(Allow::new(ALLOW))])
            }
            _ => (501, vec![Header::Allow(Allow::new(ALLOW))]),
        };
        tx.respond(now, code, response_to(msg, code, None, extra, vec![]));
        self.up.server_txs.push(tx);
        self.drain_server(src);
        if method == "NOTIFY" && code == 200 {
            self.on_refer_notify(now, msg.body());
        }
        if method == "INFO" && code == 200 {
            let ctype = msg
                .header_values("Content-Type")
                .into_iter()
                .chain(msg.header_values("c"))
                .next()
                .unwrap_or_default();
            if let Some((digit, duration_ms)) = info_dtmf(&ctype, msg.body()) {
                self.events.push_back((
                    now,
                    CallEventKind::Dtmf {
                        digit: digit.to_string(),
                        duration_ms,
                    },
                ));
            }
        }
        if method == "BYE" && code == 200 && self.phase != Phase::Ended {
            if self.outcome.q850.is_none() {
                self.outcome.q850 = msg.q850_cause();
            }
            self.end(now, HangupBy::Remote, EndReason::RemoteBye);
        }
    }

    /// The 200 to an in-dialog re-INVITE (a session refresh or a re-offer): our (unchanged)
    /// offer with a new version, in the direction that answers the offer's (RFC 3264 §6.1,
    /// §8.4: `sendonly`/`inactive` is a hold, with `held`/`resumed` events). A re-INVITE
    /// without SDP keeps the direction as it was.
    fn answer_reinvite(&mut self, now: Instant, msg: &Inbound) -> Vec<u8> {
        self.up.sdp_version += 1;
        let offered = if msg.body().is_empty() {
            if self.up.held { "sendonly" } else { "sendrecv" }
        } else {
            direction_of(msg.body())
        };
        let held = matches!(offered, "sendonly" | "inactive");
        if held != self.up.held {
            self.up.held = held;
            let (leg, sip_call_id) = ("customer".to_string(), self.id.call_id.clone());
            self.events.push_back((
                now,
                if held {
                    CallEventKind::Held {
                        leg,
                        sip_call_id,
                        by: None,
                    }
                } else {
                    CallEventKind::Resumed {
                        leg,
                        sip_call_id,
                        by: None,
                    }
                },
            ));
        }
        let sdp = audio_sdp(
            &self.id.spec.media_ip,
            self.id.spec.rtp_port,
            self.up.session_id,
            self.up.sdp_version,
            match (answer_direction(offered), self.up.holding) {
                // We hold the far end: we still only send (music on hold).
                ("sendrecv", true) => "sendonly",
                ("recvonly", true) => "inactive",
                (d, _) => d,
            },
        )
        .into_bytes();
        let mut extra = vec![
            Header::Contact(Contact::new(self.id.local.contact())),
            Header::Allow(Allow::new(ALLOW)),
            Header::ContentType(ContentType::new("application/sdp")),
        ];
        extra.extend(self.refreshed_by_peer(now, msg));
        response_to(msg, 200, None, extra, sdp)
    }

    /// The dialog takes the far end's CSeq of `msg` (§12.2.2: higher than the last); false
    /// without a dialog or for a CSeq out of order.
    fn accept_remote_cseq(&mut self, msg: &Inbound, method: &str) -> bool {
        self.up
            .dialog
            .as_mut()
            .is_some_and(|d| d.accept_remote_cseq(msg.cseq, method))
    }

    pub(super) fn drain_server(&mut self, src: SocketAddr) {
        let mut msgs = Vec::new();
        for t in &mut self.up.server_txs {
            while let Some(b) = t.poll_transmit() {
                msgs.push(b);
            }
        }
        for t in &mut self.up.invite_server_txs {
            while let Some(b) = t.poll_transmit() {
                msgs.push(b);
            }
        }
        for b in msgs {
            self.push_out(Destination::Addr(src), b);
        }
    }

    pub(super) fn drain_server_pending(&mut self) {
        // Server retransmissions from timers go where the first response went (§18.2.2).
        if self.up.invite_server_txs.is_empty() {
            return;
        }
        let fallback = self.dialog_destination();
        let mut msgs = Vec::new();
        for t in &mut self.up.invite_server_txs {
            let dest = t.reply_to().map_or(fallback, Destination::Addr);
            while let Some(b) = t.poll_transmit() {
                msgs.push((dest, b));
            }
        }
        for (dest, b) in msgs {
            self.push_out(dest, b);
        }
    }

    /// Sends BYE (§15.1.1) for `reason`, once: the call is `Terminating` until its answer.
    pub(super) fn send_bye(&mut self, now: Instant, reason: EndReason) {
        if self.ending.bye.is_some() || self.phase == Phase::Ended {
            return;
        }
        let Some(d) = &mut self.up.dialog else { return };
        let (branch, bytes) = d.request(
            Method::Bye,
            &self.id.local,
            vec![Header::Reason(Reason::new(
                "Q.850;cause=16;text=\"Normal call clearing\"",
            ))],
            vec![],
            &mut self.id.tokens,
        );
        self.ending.bye = Some(NonInviteClientTx::new(
            now,
            branch,
            "BYE",
            bytes,
            self.id.local.transport.is_reliable(),
            self.id.timers,
        ));
        self.phase = Phase::Terminating { reason };
        self.deadlines[LegTimer::Hold] = None;
        self.drain_txs();
    }
}

/// The digit of a SIP INFO DTMF body: `application/dtmf-relay` (`Signal=5` and
/// `Duration=160` lines, the form Cisco and most PBXs send) or `application/dtmf` (the digit
/// alone, or its RFC 4733 event number 0–15). Returns the digit and the duration, ms (0 when
/// not given); `None` for another content type or a body without one digit.
fn info_dtmf(content_type: &str, body: &[u8]) -> Option<(char, u32)> {
    let ctype = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let text = std::str::from_utf8(body).ok()?;
    let digit_of = |v: &str| -> Option<char> {
        let v = v.trim();
        match v.parse::<u8>() {
            Ok(n @ 0..=9) => Some((b'0' + n) as char),
            Ok(10) => Some('*'),
            Ok(11) => Some('#'),
            Ok(n @ 12..=15) => Some((b'A' + n - 12) as char),
            Ok(_) => None,
            Err(_) => {
                let mut c = v.chars();
                match (c.next(), c.next()) {
                    (Some(d), None) if "*#ABCDabcd".contains(d) => Some(d.to_ascii_uppercase()),
                    _ => None,
                }
            }
        }
    };
    match ctype.as_str() {
        "application/dtmf-relay" => {
            let mut digit = None;
            let mut duration = 0;
            for line in text.lines() {
                let Some((k, v)) = line.split_once('=') else {
                    continue;
                };
                match k.trim().to_ascii_lowercase().as_str() {
                    "signal" => digit = digit_of(v),
                    "duration" => duration = v.trim().parse().unwrap_or(0),
                    _ => {}
                }
            }
            digit.map(|d| (d, duration))
        }
        "application/dtmf" => digit_of(text).map(|d| (d, 0)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::info_dtmf;

    #[test]
    fn info_bodies_of_both_content_types() {
        assert_eq!(
            info_dtmf("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"),
            Some(('5', 160))
        );
        assert_eq!(
            info_dtmf("Application/DTMF-Relay; x=1", b"Signal= #\nDuration= 250"),
            Some(('#', 250))
        );
        assert_eq!(
            info_dtmf("application/dtmf-relay", b"Signal=11"),
            Some(('#', 0))
        );
        assert_eq!(info_dtmf("application/dtmf", b"9"), Some(('9', 0)));
        assert_eq!(info_dtmf("application/dtmf", b"*"), Some(('*', 0)));
        assert_eq!(info_dtmf("application/dtmf-relay", b"Duration=100"), None);
        assert_eq!(info_dtmf("application/dtmf-relay", b"Signal=42"), None);
        assert_eq!(info_dtmf("application/sdp", b"Signal=5"), None);
        assert_eq!(info_dtmf("application/dtmf", b"\xff"), None);
    }
}
