//! Blind transfer by REFER (RFC 3515): we ask the far end (the trunk) to call the target
//! itself (`Refer-To`), follow its progress in NOTIFY `message/sipfrag` bodies, and leave the
//! call once the target answered (BYE, `transferred`) — or hang up when the trunk refuses the
//! REFER or the target does not answer (`transfer_failed`).

use super::*;

/// A transfer in progress.
#[derive(Debug)]
pub(super) struct Refer {
    /// The REFER transaction.
    tx: NonInviteClientTx,
    /// Where to (the `Refer-To` URI).
    to: String,
    /// The REFER was accepted (2xx): NOTIFYs follow.
    accepted: bool,
    /// A refused REFER (a final non-2xx to it, or no answer) leaves the call up for the
    /// caller to transfer it another way, instead of hanging up.
    keep_on_refusal: bool,
}

impl CallLeg {
    /// Transfers the call to `target` (a SIP URI) by REFER, once, on a confirmed call: see the
    /// module documentation. Does nothing otherwise.
    pub fn refer(&mut self, now: Instant, target: &str) {
        self.refer_with(now, target, false);
    }

    /// [`Self::refer`], but a transfer that fails only reports `transfer_failed` and leaves
    /// the call up: a REFER the far end refuses (RFC 3515 §2.4.2: a non-2xx final response;
    /// or Timer F) — the engine then places the call to the target itself and bridges it
    /// (B2BUA) — or one it accepted and then reports failed (a NOTIFY's sipfrag with a
    /// non-2xx final status: [`Self::transfer_failed_after_accept`]) — the engine puts the
    /// customer back in its queue.
    pub fn refer_keeping_call(&mut self, now: Instant, target: &str) {
        self.refer_with(now, target, true);
    }

    fn refer_with(&mut self, now: Instant, target: &str, keep_on_refusal: bool) {
        if !self.phase.is_confirmed() || self.up.refer.is_some() {
            return;
        }
        let Some(d) = &mut self.up.dialog else { return };
        let (branch, bytes) = d.request(
            Method::Refer,
            &self.id.local,
            vec![
                Header::Other("Refer-To".into(), format!("<{target}>")),
                Header::Other("Referred-By".into(), self.id.local.contact()),
                Header::Contact(Contact::new(self.id.local.contact())),
            ],
            vec![],
            &mut self.id.tokens,
        );
        self.up.refer = Some(Refer {
            tx: NonInviteClientTx::new(
                now,
                branch,
                "REFER",
                bytes,
                self.id.local.transport.is_reliable(),
                self.id.timers,
            ),
            to: target.to_string(),
            accepted: false,
            keep_on_refusal,
        });
        // The transfer decides when the call ends, not the hold time.
        self.deadlines[LegTimer::Hold] = None;
        self.drain_txs();
    }

    /// The SIP URI for `number` on this call's trunk (`sip:number@trunk-host:port`), or
    /// `number` itself when it is a SIP URI already.
    pub fn uri_for(&self, number: &str) -> String {
        if number.starts_with("sip:") || number.starts_with("sips:") {
            return number.to_string();
        }
        let ruri = self
            .id
            .spec
            .hops
            .get(self.inv.hop)
            .map_or("", |h| h.request_uri.as_str());
        let host = ruri.split_once('@').map_or("", |(_, h)| h);
        let host = host.split(';').next().unwrap_or(host);
        format!("sip:{number}@{host}")
    }

    /// The spec of a new call from us to `number` (or a `sip:` URI) on this call's trunk:
    /// its hop (trunk, outbound proxy, credentials) with the Request-URI of
    /// [`Self::uri_for`], the same caller ID and SIP settings, no AMD, RTP on `rtp_port`,
    /// ringing at most `ring_timeout` and up at most `hold_time` (a warm transfer's
    /// consultation leg).
    pub fn spec_for(
        &self,
        number: &str,
        rtp_port: u16,
        ring_timeout: std::time::Duration,
        hold_time: std::time::Duration,
    ) -> CallSpec {
        let uri = self.uri_for(number);
        let mut hop = self.current_hop();
        hop.request_uri = uri.clone();
        let s = &self.id.spec;
        CallSpec {
            number: number.to_string(),
            hops: vec![hop],
            failover_timeout: s.failover_timeout,
            to_uri: uri.split(';').next().unwrap_or(&uri).to_string(),
            caller_id: s.caller_id.clone(),
            caller_name: s.caller_name.clone(),
            from_host: s.from_host.clone(),
            p_asserted_identity: s.p_asserted_identity.clone(),
            ring_timeout,
            hold_time,
            rtp_port,
            media_ip: s.media_ip.clone(),
            media: crate::call::actions::MediaPlan::default(),
            privacy: s.privacy.clone(),
            session_expires: None,
        }
    }

    /// The answer to our REFER.
    pub(super) fn on_refer_response(&mut self, now: Instant, msg: &Inbound, status: u16) {
        let Some(r) = &mut self.up.refer else { return };
        if !r.tx.matches(msg.branch(), "REFER") {
            return;
        }
        match r.tx.on_response(now, status) {
            ClientTxEvent::Success(_) => r.accepted = true,
            ClientTxEvent::Failure(code) => self.transfer_done(now, Some(code), false),
            _ => {}
        }
    }

    /// A NOTIFY of the REFER's implicit subscription (RFC 3515 §2.4.5): its sipfrag's status
    /// line says how the call to the target goes; a final one ends the transfer.
    pub(super) fn on_refer_notify(&mut self, now: Instant, body: &[u8]) {
        if self.up.refer.is_none() {
            return;
        }
        let text = String::from_utf8_lossy(body);
        let status = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("SIP/2.0 "))
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse::<u16>().ok());
        match status {
            Some(s @ 200..=299) => self.transfer_done(now, Some(s), true),
            Some(s @ 300..=699) => self.transfer_done(now, Some(s), false),
            _ => {}
        }
    }

    /// The REFER transaction timed out (Timer F).
    pub(super) fn refer_timeout(&mut self, now: Instant) {
        if let Some(r) = &mut self.up.refer
            && let Some(ClientTxEvent::Timeout) = r.tx.handle_timeout(now)
        {
            self.transfer_done(now, None, false);
        }
    }

    /// The transfer ended: `transferred` or `transfer_failed`, then our BYE — but a failed
    /// one of [`Self::refer_keeping_call`]: `transfer_failed` and the call stays.
    fn transfer_done(&mut self, now: Instant, status: Option<u16>, ok: bool) {
        let Some(r) = &self.up.refer else { return };
        let to = r.to.clone();
        if !ok && r.keep_on_refusal {
            self.up.refer_failed_after_accept = r.accepted;
            self.up.refer = None;
            self.events.push_back((
                now,
                CallEventKind::TransferFailed {
                    to,
                    sip_status: status,
                },
            ));
            return;
        }
        self.events.push_back((
            now,
            if ok {
                CallEventKind::Transferred {
                    to,
                    sip_status: status.unwrap_or(200),
                }
            } else {
                CallEventKind::TransferFailed {
                    to,
                    sip_status: status,
                }
            },
        ));
        self.send_bye(
            now,
            if ok {
                EndReason::Transferred
            } else {
                EndReason::TransferFailed
            },
        );
    }

    /// The REFER's bytes to send (to the dialog's next hop).
    pub(super) fn refer_poll(&mut self) -> Vec<Vec<u8>> {
        match &mut self.up.refer {
            Some(r) => std::iter::from_fn(|| r.tx.poll_transmit()).collect(),
            None => Vec::new(),
        }
    }

    /// The REFER's next timer (for `poll_timeout`).
    pub(super) fn refer_deadline(&self) -> Option<Instant> {
        self.up.refer.as_ref().and_then(|r| r.tx.poll_timeout())
    }

    /// True when the last transfer of [`Self::refer_keeping_call`] failed after the far end
    /// accepted it (the target busy, unanswered, …), false when it was refused or none failed.
    pub fn transfer_failed_after_accept(&self) -> bool {
        self.up.refer_failed_after_accept
    }

    /// Whether the REFER was accepted (NOTIFYs may follow).
    pub fn transfer_accepted(&self) -> bool {
        self.up.refer.as_ref().is_some_and(|r| r.accepted)
    }
}
