//! Inbound calls: an INVITE from an allowed source to one of the campaign's `[inbound]`
//! numbers is answered at once (a UAS leg, `CallLeg::answer_inbound`) and queued to the
//! agents ahead of outbound customers (`INBOUND_PRIORITY`). Its events carry a provisional
//! attempt (a negative id, lead 0) until the run loop stores the call and gives it its own
//! (`accepting` comes first). A child module of `core`, so it reaches the engine's private
//! state.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{
    CallEventKind, CallLeg, CallSpec, Engine, MediaCommand, Output, Role, Slot, Transmit, digits_of,
};
use crate::call::actions::MediaPlan;
use crate::call::leg::Hop;
use crate::events::AttemptRef;
use crate::media::relay::LegCodec;
use crate::sip::message::{Inbound, Transport, response_to};

/// The ACD priority of inbound callers: ahead of every campaign's outbound customers.
pub(super) const INBOUND_PRIORITY: i32 = i32::MAX;

/// The user part of a SIP URI's text (`sip:+14155550000@host;x` → `+14155550000`).
fn user_of(uri: &str) -> &str {
    let rest = uri.split_once(':').map_or(uri, |(_, r)| r);
    rest.split_once('@').map_or("", |(u, _)| u)
}

impl Engine {
    /// An out-of-dialog INVITE while inbound calls are configured: challenged (407) when
    /// credentials are configured and missing, or refused (403 from a source not allowed or
    /// with wrong credentials, 404 to a number not ours, 480 without agents or a free RTP port,
    /// 400/488 for an INVITE we cannot answer), or answered and queued.
    pub(super) fn inbound_invite(
        &mut self,
        now: Instant,
        msg: &Inbound,
        src: SocketAddr,
        t: Transport,
    ) {
        let Some(route) = self.cfg.inbound.clone() else {
            return;
        };
        let ruri = msg.request().map(|r| r.uri.to_string()).unwrap_or_default();
        let to = user_of(&ruri).to_string();
        let any_source = route.allow.is_empty() && route.auth.is_some();
        let refusal = if !any_source && !route.allow.contains(&src.ip()) {
            Some((403, format!("source {} is not allowed", src.ip())))
        } else if !self.inbound_authenticated(now, msg, src, &route) {
            return;
        } else if !route.numbers.contains(&digits_of(&to)) {
            Some((
                404,
                format!("{to:?} is not an inbound number of this campaign"),
            ))
        } else if self.acd.is_none() {
            Some((480, "no agents".to_string()))
        } else {
            None
        };
        if let Some((code, why)) = refusal {
            tracing::info!(%src, call_id = %msg.call_id(), code, %why, "inbound INVITE refused");
            return self.refuse(msg, src, code);
        }
        let Some(port) = self.bound_ports.pop_front() else {
            tracing::warn!(call_id = %msg.call_id(), "inbound INVITE: no RTP port bound");
            return self.refuse(msg, src, 480);
        };
        // The From URI's user part (`"Ann" <sip:+14155550100@host>;tag=…` → `+14155550100`).
        let from_value = msg
            .header_values("From")
            .into_iter()
            .chain(msg.header_values("f"))
            .next()
            .unwrap_or_default();
        let from_uri = match (from_value.find('<'), from_value.find('>')) {
            (Some(a), Some(b)) if b > a => &from_value[a + 1..b],
            _ => from_value.split(';').next().unwrap_or(""),
        };
        let from = user_of(from_uri.trim()).to_string();
        let local = crate::sip::dialog::LocalParty {
            transport: t,
            ..self.cfg.local.clone()
        };
        let host = local
            .sent_by
            .rsplit_once(':')
            .map_or(local.sent_by.as_str(), |(h, _)| h)
            .to_string();
        let trunk = self
            .cfg
            .trunks
            .iter()
            .position(|r| r.addr.ip() == src.ip())
            .unwrap_or(0);
        let spec = CallSpec {
            number: from.clone(),
            hops: vec![Hop {
                trunk,
                name: "inbound".into(),
                request_uri: ruri.clone(),
                route: None,
                auth: None,
            }],
            failover_timeout: Duration::from_secs(3600),
            to_uri: ruri.clone(),
            caller_id: to.clone(),
            caller_name: None,
            from_host: host.clone(),
            p_asserted_identity: None,
            ring_timeout: Duration::from_secs(3600),
            hold_time: crate::acd::MAX_CALL,
            rtp_port: port,
            media_ip: host,
            media: MediaPlan::default(),
            privacy: None,
            session_expires: None,
        };
        let (leg, offer) = match CallLeg::answer_inbound(
            now,
            msg,
            src,
            spec,
            local,
            self.cfg.timers,
            self.tokens.fork(),
        ) {
            Ok(v) => v,
            Err((code, why)) => {
                tracing::info!(call_id = %msg.call_id(), code, %why, "inbound INVITE refused");
                self.bound_ports.push_front(port);
                return self.refuse(msg, src, code);
            }
        };
        let id = msg.call_id().to_string();
        self.next_inbound += 1;
        let attempt = AttemptRef {
            attempt_id: -self.next_inbound,
            lead_id: 0,
            attempt_no: 0,
        };
        self.out.push_back(Output::Media(MediaCommand::Open {
            call_id: id.clone(),
            port,
        }));
        let mut slot = Slot::new(
            leg,
            Role::Customer,
            Some(src),
            attempt,
            port,
            MediaPlan::default(),
            now,
        );
        slot.codec = Some(LegCodec {
            law: offer.law,
            telephone_event: offer.telephone_event,
        });
        self.calls.insert(id.clone(), slot);
        self.out.push_back(Output::Media(MediaCommand::Answered {
            call_id: id.clone(),
            at: now,
            answer: offer,
        }));
        tracing::info!(call_id = %id, %from, %to, "inbound call answered");
        self.emit(&id, now, CallEventKind::Accepting { from, to });
        self.acd_priority(&id, INBOUND_PRIORITY);
        // `answered` comes out of the leg here, and with it the queue entry (no AMD).
        self.after_touch(now, &id);
    }

    /// Digest authentication of an inbound INVITE (RFC 3261 §22.3, proxy-style: 407 with
    /// `Proxy-Authenticate`, the answer in `Proxy-Authorization`), when configured. True when
    /// it may go on; otherwise the challenge (no or stale credentials) or 403 (wrong ones)
    /// has been sent.
    fn inbound_authenticated(
        &mut self,
        now: Instant,
        msg: &Inbound,
        src: SocketAddr,
        route: &super::InboundRoute,
    ) -> bool {
        let (Some(auth), Some(server)) = (&route.auth, self.inbound_digest.as_mut()) else {
            return true;
        };
        let header = msg
            .header_values("Proxy-Authorization")
            .into_iter()
            .next()
            .unwrap_or_default();
        let verdict = server.verify(now, &header, "INVITE", |u| {
            (u == auth.username).then(|| auth.ha1.clone())
        });
        use crate::acd::digest_auth::Verdict;
        let stale = match verdict {
            Verdict::Ok { .. } => return true,
            Verdict::Failed { reason, .. } => {
                tracing::info!(%src, call_id = %msg.call_id(), reason, "inbound INVITE: authentication failed");
                self.respond(msg, src, 403, vec![]);
                return false;
            }
            Verdict::Stale => true,
            Verdict::Missing => false,
        };
        let challenges = server
            .challenges(now, stale)
            .into_iter()
            .map(|c| crate::sip::message::Header::Other("Proxy-Authenticate".into(), c))
            .collect();
        self.respond(msg, src, 407, challenges);
        false
    }

    fn refuse(&mut self, msg: &Inbound, src: SocketAddr, code: u16) {
        self.respond(msg, src, code, vec![]);
    }

    fn respond(
        &mut self,
        msg: &Inbound,
        src: SocketAddr,
        code: u16,
        extra: Vec<crate::sip::message::Header>,
    ) {
        let tag = self.tokens.token(12);
        let resp = response_to(msg, code, Some(&tag), extra, vec![]);
        let dest = crate::sip::message::response_reply_addr(msg, src);
        self.out
            .push_back(Output::Transmit(Transmit { dest, bytes: resp }));
    }
}
