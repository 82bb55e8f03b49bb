//! A leg for an inbound call we answer as UAS (RFC 3261 §13.3): the INVITE's dialog (§12.1.1),
//! our 2xx with the SDP answer, retransmitted until the ACK (§13.3.1.4, Timer G/H); from
//! there on the same confirmed-dialog handling as an outbound leg (the far end's BYE, INFO,
//! re-INVITE; our BYE).

use super::*;
use crate::media::sdp::{AudioAnswer, parse_answer};
use crate::sip::transaction::InviteServerTx;

impl CallLeg {
    /// Answers inbound INVITE `msg` from `src` at once with 200 and our SDP answer (RTP on
    /// `spec.rtp_port` at `spec.media_ip`): returns the confirmed leg (its `answered` event
    /// queued, its 200 to send) and the far end's media as the offer gave it. `spec.hops`
    /// must name the trunk the call came from (in-dialog requests go there unless the
    /// remote target is an IP address). Errors (the caller answers with the code): 400 for
    /// an INVITE without a From tag or Contact, 488 for an offer without PCMU or PCMA.
    pub fn answer_inbound(
        now: Instant,
        msg: &Inbound,
        src: SocketAddr,
        spec: CallSpec,
        local: LocalParty,
        timers: Timers,
        mut tokens: Tokens,
    ) -> Result<(Self, AudioAnswer), (u16, String)> {
        let offer = parse_answer(msg.body()).map_err(|e| (488, format!("offer: {e}")))?;
        let local_tag = tokens.token(16);
        let dialog = Dialog::from_request(&local_tag, msg).map_err(|e| (400, e))?;
        let session_id = tokens.u64() >> 2;
        let sdp = crate::sip::sdp::audio_answer(
            &spec.media_ip,
            spec.rtp_port,
            session_id,
            offer.law.payload_type(),
            offer.telephone_event,
        )
        .into_bytes();
        let reliable = local.transport.is_reliable();
        let reply_to = if reliable {
            src
        } else {
            crate::sip::message::response_reply_addr(msg, src)
        };
        let ok = response_to(
            msg,
            200,
            Some(&local_tag),
            vec![
                Header::Contact(Contact::new(local.contact())),
                Header::Allow(Allow::new(ALLOW)),
                Header::ContentType(ContentType::new("application/sdp")),
            ],
            sdp.clone(),
        );
        let mut tx = InviteServerTx::new(
            msg.branch().map(str::to_string).unwrap_or_default(),
            msg.cseq,
            timers,
        );
        tx.set_reply_to(reply_to);
        tx.respond(now, 200, ok, reliable);
        // The INVITE client transaction of an outbound leg has nothing to do here: one that
        // is over already stands in for it.
        let (invite_via, branch) = local.via(&mut tokens);
        let mut invite = InviteClientTx::new(now, branch, Vec::new(), true, timers);
        while invite.poll_transmit().is_some() {}
        let _ = invite.on_response(now, 200, Vec::new);
        let from_value = format!("{};tag={local_tag}", dialog.local_uri);
        let to_value = format!("{};tag={}", dialog.remote_uri, dialog.remote_tag);
        let mut events = VecDeque::new();
        events.push_back((now, CallEventKind::Answered { code: 200 }));
        let mut leg = Self {
            id: LegId {
                call_id: msg.call_id().to_string(),
                local,
                tokens,
                timers,
                request_uri: parse_uri_or_invalid(&dialog.remote_target),
                spec,
                from_value,
                to_value,
                offer: sdp,
            },
            phase: Phase::Confirmed { session: None },
            inv: Inviting {
                invite_via,
                invite_cseq: msg.cseq,
                invite,
                history: InviteHistory::default(),
                retired: Vec::new(),
                hop: 0,
                hop_noted: true,
                auth_tries: 0,
                se_request: None,
                network_error: false,
                notes: Vec::new(),
            },
            outcome: Outcome {
                final_status: Some(200),
                ..Outcome::default()
            },
            up: Confirmed {
                dialog: Some(dialog),
                invite_server_txs: vec![tx],
                ..Confirmed::new(session_id)
            },
            ending: Ending::default(),
            deadlines: Deadlines::default(),
            out: VecDeque::new(),
            events,
        };
        leg.drain_server(reply_to);
        Ok((leg, offer))
    }
}
