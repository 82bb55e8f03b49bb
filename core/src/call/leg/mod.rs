//! One outbound call leg as a sans-IO state machine: INVITE, provisional responses, answer,
//! hold, BYE — or CANCEL on ring timeout, or a failure — and exactly one `terminated` event.
//!
//! The leg owns its INVITE client transaction, the dialog the 2xx creates, the CANCEL and
//! BYE client transactions, and server transactions for the far end's in-dialog requests
//! (BYE, re-INVITE, OPTIONS, …). Feed it responses and requests already matched to its
//! Call-ID ([`CallLeg::handle_message`]) and the time ([`CallLeg::handle_timeout`]); take what
//! to send from [`CallLeg::poll_transmit`], what happened from [`CallLeg::poll_event`], and
//! when to wake it from [`CallLeg::poll_timeout`].
//!
//! RFC 3261 rules implemented here:
//! * §9.1 CANCEL only after a provisional response; its Via/CSeq/Route copy the INVITE's; if
//!   no final response comes 64·T1 after the CANCEL, the call is given up.
//! * §13.2.2.4 the 2xx is ACKed end to end with a new branch, and every retransmitted 2xx is
//!   ACKed again; a 2xx from a second To-tag (a forked call) is ACKed and then BYEd.
//! * §15 BYE from either side; §12.2.2 the far end's CSeq is checked.

mod in_dialog;
mod inbound;
mod invite;
mod refer;
mod session_timer;

use session_timer::{allows_update, min_se_of, session_expires_of, session_headers};

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::sip::message::wire::{
    Allow, CSeq, CallId, Contact, ContentLength, ContentType, From, MaxForwards, Method,
    PAssertedIdentity, Reason, To, Uri, UserAgent, Via,
};

use crate::events::disposition::{Disposition, InviteHistory, classify};
use crate::events::{CallEventKind, EndReason, FailoverReason, HangupBy};
use crate::sip::dialog::{Dialog, LocalParty};
use crate::sip::digest::{Challenge, Credentials};
use crate::sip::message::{
    HasHeaders, Header, Inbound, Tokens, host_port, parse_uri, parse_uri_or_invalid, request_bytes,
    response_to,
};
use crate::sip::sdp::{answer_direction, audio_offer, audio_sdp, direction_of};
use crate::sip::transaction::{
    ClientTxEvent, InviteClientTx, InviteServerTx, NonInviteClientTx, ServerTx, Timers,
};

/// Methods we accept inside a dialog (advertised in `Allow`).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, NOTIFY";

/// Status codes of a final response to the INVITE after which the call is tried again on
/// the next trunk (RFC 3261 §8.1.3.4: 503 means "try an alternate server"; 408/500/502/504
/// and no response at all (Timer B, or `failover_timeout`) are treated the same way by
/// trunk groups in the field, e.g. Kamailio's dispatcher and Asterisk's `Dial()` with
/// several trunks).
pub const FAILOVER_CODES: [u16; 5] = [408, 500, 502, 503, 504];

/// One way to reach the callee: a trunk, possibly behind an outbound proxy.
#[derive(Debug, Clone)]
pub struct Hop {
    /// Index of the trunk in the engine's trunk list (its address is where the INVITE, its
    /// CANCEL and non-2xx ACK go).
    pub trunk: usize,
    /// The trunk's name, for `trunk_failover` events.
    pub name: String,
    /// Request-URI on this trunk, e.g. `sip:+14155550100@trunk.example:5060`.
    pub request_uri: String,
    /// Pre-loaded route set (RFC 3261 §8.1.2): `<sip:proxy.example;lr>` when the trunk is
    /// reached through an outbound proxy; written as `Route` on the INVITE, CANCEL and ACK.
    pub route: Option<String>,
    /// Trunk account for digest challenges (401/407), if the trunk asks.
    pub auth: Option<std::sync::Arc<Credentials>>,
}

/// The address a SIP URI names when its host is an IP literal with an explicit port
/// (`sip:2000@10.0.0.5:5060;transport=udp` → `10.0.0.5:5060`); `None` for a name or no port
/// (such a URI is reached through the trunk).
pub fn direct_address(uri: &str) -> Option<std::net::SocketAddr> {
    let host = uri.split_once('@').map_or(uri, |(_, h)| h);
    let host = host.split([';', '?', '>']).next().unwrap_or(host);
    host.parse().ok()
}

impl Hop {
    /// A hop on trunk 0 with no outbound proxy and no credentials.
    pub fn direct(request_uri: impl Into<String>) -> Self {
        Self {
            trunk: 0,
            name: "trunk".into(),
            request_uri: request_uri.into(),
            route: None,
            auth: None,
        }
    }
}

/// What to dial and how long to let it ring and stay up.
#[derive(Debug, Clone)]
pub struct CallSpec {
    /// The number dialled (E.164 or digits): the user part of every hop's Request-URI.
    pub number: String,
    /// The trunks to try, in order: the first one, then failover hops (RFC 3261 §8.1.3.5:
    /// same Call-ID, From and To, CSeq + 1). Empty: the engine fills it from its trunk group
    /// (weights, trunk health) with [`Hop`]s for `number`.
    pub hops: Vec<Hop>,
    /// Give up on a hop that sent no response at all after this long and try the next one
    /// (only while another hop remains; the last hop waits for Timer B, 64·T1).
    pub failover_timeout: Duration,
    /// The URI in To (usually the first Request-URI without parameters; empty: the engine
    /// fills it in).
    pub to_uri: String,
    /// Caller ID user part (E.164 or digits), written in From.
    pub caller_id: String,
    /// Optional display name in From.
    pub caller_name: Option<String>,
    /// Host in the From URI (our domain, or the trunk's).
    pub from_host: String,
    /// Optional `P-Asserted-Identity` URI (RFC 3325), e.g. `sip:+14155550000@example.com`.
    pub p_asserted_identity: Option<String>,
    /// CANCEL after this long without an answer, counted from the INVITE (seconds in config).
    pub ring_timeout: Duration,
    /// Hang up with BYE this long after the answer (seconds in config; default 5 s).
    pub hold_time: Duration,
    /// Local RTP port offered in the SDP (even, from the configured range).
    pub rtp_port: u16,
    /// IPv4 address written in the SDP `c=` and `o=` lines.
    pub media_ip: String,
    /// AMD, media timeout and the actions on the AMD result.
    pub media: crate::call::actions::MediaPlan,
    /// Optional `Privacy` header value (RFC 3323), e.g. `id` to hide the caller ID.
    pub privacy: Option<String>,
    /// RFC 4028 session interval to ask for, seconds (raised to at least [`MIN_SE`]);
    /// `None`: no session timer is offered.
    pub session_expires: Option<u32>,
}

/// Our `Min-SE` (RFC 4028 §5: 90 s is the protocol minimum).
pub const MIN_SE: u32 = 90;

/// The session timer of a confirmed dialog (RFC 4028 §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SessionTimer {
    /// The negotiated interval, seconds.
    interval: u32,
    /// When we refresh next (`None` when the far end is the refresher, or a refresh is out).
    refresh_at: Option<Instant>,
    /// When the session expires without a refresh: we send BYE then (interval minus the
    /// smaller of 32 s and a third of it, §10).
    expire_at: Instant,
}

/// A session refresh we sent: UPDATE (RFC 3311) when the far end allows it, else re-INVITE.
#[derive(Debug)]
enum Refresh {
    Update(NonInviteClientTx),
    Invite {
        tx: InviteClientTx,
        cseq: u32,
        via: String,
        /// The ACK of its 2xx, re-sent for 2xx retransmissions.
        ack: Option<Vec<u8>>,
    },
}

/// Where a message the leg produced goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// A trunk by its index (its outbound proxy's address when it has one): the INVITE,
    /// CANCEL, non-2xx ACK, and in-dialog requests whose next hop is not an IP literal.
    Trunk(usize),
    /// A specific address: the far end's next hop as an IP literal, or the source of a
    /// request we answer (RFC 3581 symmetric response).
    Addr(SocketAddr),
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegTransmit {
    /// Where to.
    pub dest: Destination,
    /// The serialised message.
    pub bytes: Vec<u8>,
}

/// Where the call is, with what only that state has (the dialog itself, the transactions
/// and the forks outlive the state they start in: retransmissions are answered until their
/// Timer D/K, see [`Linger`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// INVITE sent, no final response yet.
    Inviting,
    /// 2xx received; the dialog is confirmed.
    Confirmed {
        /// RFC 4028 session timer, once the 2xx (or a refresh) negotiated one.
        session: Option<SessionTimer>,
    },
    /// We sent BYE (§15.1.1) and wait for its answer.
    Terminating {
        /// Why (the `detail` of `terminated` when the answer comes).
        reason: EndReason,
    },
    /// `terminated` emitted; lingering only for transactions to finish.
    Ended,
}

impl Phase {
    fn is_confirmed(self) -> bool {
        matches!(self, Phase::Confirmed { .. })
    }
}

/// What a leg learnt about a trunk, for the engine's trunk health and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrunkNote {
    /// An INVITE was sent to this trunk (first try or failover).
    Sent(usize),
    /// The trunk answered the INVITE (any response but a failover code).
    Responded(usize),
    /// The trunk answered the INVITE with a failover code (408, 5xx).
    Failed(usize),
    /// Not a word from the trunk: Timer B or the failover timeout.
    Silent(usize),
    /// The network refused the INVITE to the trunk (ICMP port or host unreachable, or a TCP
    /// connection refused).
    Refused(usize),
    /// The trunk's final response carried `Retry-After` (seconds): no new calls there
    /// before then.
    RetryAfter(usize, u32),
}

/// What a finished call still owes the network while its transactions' Timers D, K and J run
/// (RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.2): the ACKs and final responses to re-send when
/// the far end retransmits. A few hundred bytes instead of the whole leg, so a call that ended
/// does not hold its leg for up to 32 s (at 3,000 calls/s, ~18,000 legs).
#[derive(Debug)]
pub struct Linger {
    /// When the last of those timers fires: the record can go.
    pub until: Instant,
    /// (INVITE branch, where to, ACK) for each INVITE transaction ended by a non-2xx.
    acks: Vec<(String, Destination, Vec<u8>)>,
    /// (To-tag, where to, ACK) of the 2xx, re-sent if the 2xx is retransmitted.
    ack_2xx: Option<(String, Destination, Vec<u8>)>,
    /// (branch, method, final response) of the far end's requests we answered.
    responses: Vec<(String, String, Vec<u8>)>,
}

impl Linger {
    /// A retransmission for the finished call: what to re-send, or `None` when the message
    /// is not one this record answers (a new request: the engine answers it as out of dialog).
    pub fn handle_message(&self, msg: &Inbound, src: SocketAddr) -> Option<Vec<LegTransmit>> {
        let resend = |(_, dest, ack): &(String, Destination, Vec<u8>)| LegTransmit {
            dest: *dest,
            bytes: ack.clone(),
        };
        match (msg.status, msg.method.as_deref()) {
            // A retransmitted 2xx is matched by its To-tag, a final non-2xx by its branch.
            (Some(status), _) if msg.cseq_method() == "INVITE" => {
                Some(if (200..300).contains(&status) {
                    self.ack_2xx
                        .iter()
                        .filter(|(tag, ..)| msg.to_tag() == Some(tag.as_str()))
                        .map(resend)
                        .collect()
                } else {
                    self.acks
                        .iter()
                        .filter(|(b, ..)| msg.branch() == Some(b.as_str()))
                        .map(resend)
                        .collect()
                })
            }
            // Responses to our BYE/CANCEL/UPDATE/… after they completed: absorbed.
            (Some(_), _) => Some(Vec::new()),
            (None, Some("ACK")) => Some(Vec::new()),
            (None, Some(method)) => self
                .responses
                .iter()
                .find(|(b, m, _)| msg.branch() == Some(b.as_str()) && m == method)
                .map(|(_, _, r)| {
                    vec![LegTransmit {
                        dest: Destination::Addr(src),
                        bytes: r.clone(),
                    }]
                }),
            (None, None) => None,
        }
    }
}

/// A forked early/confirmed dialog from a second To-tag that we ACK and BYE (§13.2.2.4).
#[derive(Debug)]
struct Fork {
    dialog: Dialog,
    ack: Vec<u8>,
    bye: NonInviteClientTx,
}

/// One outbound call. See the module docs.
#[derive(Debug)]
pub struct CallLeg {
    /// Who and what the call is: Call-ID, our party, the spec, From/To, the offer.
    id: LegId,
    phase: Phase,
    /// The INVITE transaction(s): the current one, retired ones, the hop, digest and 422 retries.
    inv: Inviting,
    /// What the far end said last (final status, reason, Q.850, Retry-After, the answer SDP).
    outcome: Outcome,
    /// The confirmed dialog and what lives in it (session timer, refreshes, server transactions).
    up: Confirmed,
    /// CANCEL, BYE, forks: how the call ends.
    ending: Ending,
    /// The leg's own timers (failover, ring, CANCEL guard, hold), by [`LegTimer`].
    deadlines: Deadlines,
    out: VecDeque<LegTransmit>,
    events: VecDeque<(Instant, CallEventKind)>,
}

/// Who and what the call is.
#[derive(Debug)]
struct LegId {
    call_id: String,
    local: LocalParty,
    /// This leg's random stream (tags, branches, cnonces).
    tokens: Tokens,
    timers: Timers,
    spec: CallSpec,
    from_value: String,
    to_value: String,
    /// `spec.request_uri` parsed once: the INVITE, its ACK and CANCEL and an authenticated
    /// retry all carry it.
    request_uri: Uri,
    /// Our SDP offer (re-sent with an authenticated INVITE).
    offer: Vec<u8>,
}

/// The INVITE side of the call.
#[derive(Debug)]
struct Inviting {
    invite_via: String,
    invite_cseq: u32,
    invite: InviteClientTx,
    history: InviteHistory,
    /// Earlier INVITE transactions (answered by a challenge, or failed over) with their
    /// trunk: kept to re-ACK retransmitted final responses until their Timer D.
    retired: Vec<(InviteClientTx, usize)>,
    /// Index in `spec.hops` of the trunk the current INVITE went to.
    hop: usize,
    /// The current hop's trunk answered something (its health was noted).
    hop_noted: bool,
    /// Digest challenges answered so far (one, or two when the second says `stale=true`).
    auth_tries: u8,
    /// Session-Expires asked for in the INVITE (raised by a 422's Min-SE).
    se_request: Option<u32>,
    /// The network refused the INVITE on the last trunk (ICMP unreachable).
    network_error: bool,
    /// Trunk outcomes for the engine.
    notes: Vec<TrunkNote>,
}

/// What the far end said.
#[derive(Debug, Default)]
struct Outcome {
    final_status: Option<u16>,
    final_reason: Option<String>,
    q850: Option<u16>,
    /// `Retry-After` of the final response, seconds.
    retry_after: Option<u32>,
    /// The SDP of the 2xx, until the engine takes it to start the media session.
    answer_sdp: Option<Vec<u8>>,
    /// Retransmissions received (absorbed).
    duplicates: u32,
}

/// The confirmed dialog and what lives in it.
#[derive(Debug)]
struct Confirmed {
    dialog: Option<Dialog>,
    ack_2xx: Option<Vec<u8>>,
    sdp_version: u64,
    session_id: u64,
    /// The refresh in progress (or the last one, to re-ACK a retransmitted 2xx).
    refresh: Option<Refresh>,
    /// The far end's `Allow` lists UPDATE: refresh with it (no SDP) rather than re-INVITE.
    peer_update: bool,
    /// The far end put the call on hold (its last offer was `sendonly` or `inactive`).
    held: bool,
    /// We hold the far end (our last offer was `sendonly`: [`CallLeg::set_hold`]).
    holding: bool,
    server_txs: Vec<ServerTx>,
    invite_server_txs: Vec<InviteServerTx>,
    /// A blind transfer by REFER in progress (RFC 3515).
    refer: Option<refer::Refer>,
    /// The last transfer of [`CallLeg::refer_keeping_call`] failed after the far end had
    /// accepted the REFER (its NOTIFY reported the target's failure).
    refer_failed_after_accept: bool,
}

impl Confirmed {
    /// Nothing confirmed yet: no dialog, our SDP at version 1 of session `session_id`.
    fn new(session_id: u64) -> Self {
        Self {
            dialog: None,
            ack_2xx: None,
            sdp_version: 1,
            session_id,
            refresh: None,
            peer_update: false,
            held: false,
            holding: false,
            server_txs: Vec::new(),
            invite_server_txs: Vec::new(),
            refer: None,
            refer_failed_after_accept: false,
        }
    }
}

/// How the call ends.
#[derive(Debug, Default)]
struct Ending {
    cancel: Option<NonInviteClientTx>,
    cancel_wanted: bool,
    bye: Option<NonInviteClientTx>,
    /// The ring timer fired (a CANCEL is sent or waits for a provisional).
    ring_timed_out: bool,
    shutdown: bool,
    forks: Vec<Fork>,
}

/// The leg's own timers (the transactions keep theirs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LegTimer {
    /// Try the next hop if the current one has not answered at all by then.
    Failover,
    /// `ring_timeout`: CANCEL.
    Ring,
    /// After a CANCEL, the call ends even without its 487 (§9.1).
    CancelGuard,
    /// `hold_time` (or a playback's end): BYE.
    Hold,
}

/// A deadline per [`LegTimer`].
#[derive(Debug, Default, Clone, Copy)]
struct Deadlines([Option<Instant>; 4]);

impl Deadlines {
    /// The earliest deadline set.
    fn earliest(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }
}

impl std::ops::Index<LegTimer> for Deadlines {
    type Output = Option<Instant>;
    fn index(&self, t: LegTimer) -> &Option<Instant> {
        &self.0[t as usize]
    }
}

impl std::ops::IndexMut<LegTimer> for Deadlines {
    fn index_mut(&mut self, t: LegTimer) -> &mut Option<Instant> {
        &mut self.0[t as usize]
    }
}

impl CallLeg {
    /// Starts the call: builds and queues the INVITE, emits `initiated`, arms the ring timer.
    pub fn start(
        now: Instant,
        call_id: String,
        spec: CallSpec,
        local: LocalParty,
        timers: Timers,
        mut tokens: Tokens,
    ) -> Self {
        let local_tag = tokens.token(16);
        let from_value = match &spec.caller_name {
            Some(name) => format!(
                "\"{}\" <sip:{}@{}>;tag={local_tag}",
                name.replace('"', ""),
                spec.caller_id,
                spec.from_host
            ),
            None => format!(
                "<sip:{}@{}>;tag={local_tag}",
                spec.caller_id, spec.from_host
            ),
        };
        let to_value = format!("<{}>", spec.to_uri);
        let (invite_via, branch) = local.via(&mut tokens);
        let session_id = tokens.u64() >> 2;
        let sdp = audio_offer(&spec.media_ip, spec.rtp_port, session_id, 1).into_bytes();
        let first = spec
            .hops
            .first()
            .cloned()
            .unwrap_or_else(|| Hop::direct(""));
        let spec_se = spec.session_expires.map(|s| s.max(MIN_SE));
        let request_uri = parse_uri_or_invalid(&first.request_uri);
        let bytes = build_invite(
            &spec,
            &request_uri,
            &local,
            &InviteParts {
                call_id: &call_id,
                from: &from_value,
                to: &to_value,
                via: &invite_via,
                cseq: 1,
                route: first.route.as_deref(),
            },
            &sdp,
            None,
            spec_se,
        );
        let mut invite =
            InviteClientTx::new(now, branch, bytes, local.transport.is_reliable(), timers);
        let mut out = VecDeque::new();
        while let Some(b) = invite.poll_transmit() {
            out.push_back(LegTransmit {
                dest: Destination::Trunk(first.trunk),
                bytes: b,
            });
        }
        let failover_deadline = (spec.hops.len() > 1).then(|| now + spec.failover_timeout);
        let mut events = VecDeque::new();
        events.push_back((now, CallEventKind::Initiated));
        let mut deadlines = Deadlines::default();
        deadlines[LegTimer::Ring] = Some(now + spec.ring_timeout);
        deadlines[LegTimer::Failover] = failover_deadline;
        Self {
            id: LegId {
                call_id,
                local,
                tokens,
                timers,
                spec,
                from_value,
                to_value,
                request_uri,
                offer: sdp,
            },
            phase: Phase::Inviting,
            inv: Inviting {
                invite_via,
                invite_cseq: 1,
                invite,
                history: InviteHistory::default(),
                retired: Vec::new(),
                hop: 0,
                hop_noted: false,
                auth_tries: 0,
                se_request: spec_se,
                network_error: false,
                notes: vec![TrunkNote::Sent(first.trunk)],
            },
            outcome: Outcome::default(),
            up: Confirmed::new(session_id),
            ending: Ending::default(),
            deadlines,
            out,
            events,
        }
    }

    /// What the leg learnt about trunks since the last call (INVITEs sent, answers,
    /// failures), for the engine's trunk health.
    pub fn take_trunk_notes(&mut self) -> Vec<TrunkNote> {
        std::mem::take(&mut self.inv.notes)
    }

    /// Retransmitted messages received from the far end and absorbed (a duplicate final
    /// response, a repeated 2xx, a repeated request).
    pub fn duplicates_received(&self) -> u32 {
        self.outcome.duplicates
    }

    /// Requests this leg retransmitted on its timers (INVITE by Timer A, CANCEL/BYE by E).
    pub fn retransmissions_sent(&self) -> u32 {
        self.inv.invite.retransmissions()
            + self
                .ending
                .cancel
                .as_ref()
                .map_or(0, |t| t.retransmissions())
            + self.ending.bye.as_ref().map_or(0, |t| t.retransmissions())
            + self
                .ending
                .forks
                .iter()
                .map(|f| f.bye.retransmissions())
                .sum::<u32>()
    }

    /// The number dialled (the lead's, or the agent's id on an agent leg).
    pub fn number(&self) -> &str {
        &self.id.spec.number
    }

    /// The call's Call-ID.
    pub fn call_id(&self) -> &str {
        &self.id.call_id
    }

    /// The RTP port this call holds.
    pub fn rtp_port(&self) -> u16 {
        self.id.spec.rtp_port
    }

    /// True once `terminated` was emitted.
    pub fn has_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// True once the call has ended and every transaction of it has finished, so the leg can
    /// be dropped and its RTP port reused.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Ended
            && self.inv.invite.is_terminated()
            && self.inv.retired.iter().all(|(t, _)| t.is_terminated())
            && self
                .ending
                .cancel
                .as_ref()
                .is_none_or(|t| t.is_terminated())
            && self.ending.bye.as_ref().is_none_or(|t| t.is_terminated())
            && self.ending.forks.iter().all(|f| f.bye.is_terminated())
            && self.up.server_txs.iter().all(|t| t.is_terminated())
            && self.up.invite_server_txs.iter().all(|t| t.is_terminated())
            && self.events.is_empty()
            && self.out.is_empty()
    }

    /// Asks the leg to end now (engine shutdown, campaign stop): CANCEL if ringing, BYE if
    /// answered. Idempotent.
    ///
    /// A call cancelled here before any answer ends as `interrupted` (detail `shutdown`), so the
    /// lead is dialled again rather than charged with an outcome it never had.
    pub fn hang_up(&mut self, now: Instant) {
        match self.phase {
            Phase::Inviting => {
                self.ending.shutdown = true;
                self.request_cancel(now)
            }
            Phase::Confirmed { .. } => self.send_bye(now, EndReason::Shutdown),
            Phase::Terminating { .. } | Phase::Ended => {}
        }
    }

    /// Ends an answered call now with BYE; `reason` becomes the `detail` of `terminated`
    /// (`amd_machine`, `voicemail_left`, …). No effect unless the call is up.
    pub fn hang_up_answered(&mut self, now: Instant, reason: EndReason) {
        if self.phase.is_confirmed() {
            self.send_bye(now, reason);
        }
    }

    /// Keeps an answered call up past the hold time (while a prompt plays); `None` restores
    /// the hold timer from now.
    pub fn extend_hold(&mut self, until: Option<Instant>) {
        if self.phase.is_confirmed() {
            self.deadlines[LegTimer::Hold] = until;
        }
    }

    /// The SDP body of the 2xx, taken once (the engine starts the media session with it).
    pub fn take_answer_sdp(&mut self) -> Option<Vec<u8>> {
        self.outcome.answer_sdp.take()
    }

    /// After `terminated`, when nothing is in flight any more (no request waiting for its
    /// answer): the small record that answers retransmissions until the last timer, or
    /// `None` while some transaction is still active (or nothing is left to wait for over a
    /// reliable transport, where Timers D, K and J are zero).
    pub fn linger(&self, now: Instant) -> Option<Linger> {
        if self.phase != Phase::Ended
            || self.inv.invite.is_pending()
            || self.inv.retired.iter().any(|(t, _)| t.is_pending())
            || self.ending.cancel.as_ref().is_some_and(|t| t.is_pending())
            || self.ending.bye.as_ref().is_some_and(|t| t.is_pending())
            || self.ending.forks.iter().any(|f| f.bye.is_pending())
            || self.up.invite_server_txs.iter().any(|t| !t.is_terminated())
            || match &self.up.refresh {
                Some(Refresh::Update(t)) => t.is_pending(),
                Some(Refresh::Invite { tx, .. }) => tx.is_pending(),
                None => false,
            }
        {
            return None;
        }
        let mut until = now;
        let mut acks = Vec::new();
        let invites = std::iter::once((&self.inv.invite, self.trunk()))
            .chain(self.inv.retired.iter().map(|(t, i)| (t, *i)));
        for (t, i) in invites {
            if let Some((ack, d)) = t.completed_ack() {
                acks.push((t.branch().to_string(), Destination::Trunk(i), ack.to_vec()));
                until = until.max(d);
            }
        }
        for k in [&self.ending.cancel, &self.ending.bye]
            .into_iter()
            .flatten()
            .filter_map(|t| t.completed_until())
        {
            until = until.max(k);
        }
        let mut responses = Vec::new();
        for t in &self.up.server_txs {
            if let Some((branch, method, resp, j)) = t.completed_response() {
                responses.push((branch.to_string(), method.to_string(), resp.to_vec()));
                until = until.max(j);
            }
        }
        let ack_2xx = match (&self.up.dialog, &self.up.ack_2xx) {
            (Some(d), Some(a)) => {
                Some((d.remote_tag.clone(), self.dialog_destination(), a.clone()))
            }
            _ => None,
        };
        Some(Linger {
            until,
            acks,
            ack_2xx,
            responses,
        })
    }

    /// True while the call is answered and up.
    pub fn is_up(&self) -> bool {
        self.phase.is_confirmed()
    }

    /// Feeds a message with this leg's Call-ID. `src` is where it came from (responses to the
    /// far end's requests go back there).
    pub fn handle_message(&mut self, now: Instant, msg: &Inbound, src: SocketAddr) {
        if msg.is_request() {
            self.handle_request(now, msg, src);
        } else {
            self.handle_response(now, msg);
        }
    }

    fn push_out(&mut self, dest: Destination, bytes: Vec<u8>) {
        self.out.push_back(LegTransmit { dest, bytes });
    }

    fn drain_txs(&mut self) {
        let trunk = Destination::Trunk(self.trunk());
        while let Some(b) = self.inv.invite.poll_transmit() {
            self.push_out(trunk, b);
        }
        for (t, old) in &mut self.inv.retired {
            while let Some(b) = t.poll_transmit() {
                self.out.push_back(LegTransmit {
                    dest: Destination::Trunk(*old),
                    bytes: b,
                });
            }
        }
        if let Some(c) = &mut self.ending.cancel {
            while let Some(b) = c.poll_transmit() {
                self.out.push_back(LegTransmit {
                    dest: trunk,
                    bytes: b,
                });
            }
        }
        // In-dialog requests (refresh, REFER, BYE) go to the dialog's next hop, read only
        // when one of them has something to send (most drains have nothing).
        let mut in_dialog: Vec<Vec<u8>> = match &mut self.up.refresh {
            Some(Refresh::Update(t)) => std::iter::from_fn(|| t.poll_transmit()).collect(),
            Some(Refresh::Invite { tx, .. }) => std::iter::from_fn(|| tx.poll_transmit()).collect(),
            None => Vec::new(),
        };
        in_dialog.extend(self.refer_poll());
        if let Some(t) = &mut self.ending.bye {
            in_dialog.extend(std::iter::from_fn(|| t.poll_transmit()));
        }
        if !in_dialog.is_empty() {
            let dest = self.dialog_destination();
            for b in in_dialog {
                self.push_out(dest, b);
            }
        }
        for f in &mut self.ending.forks {
            while let Some(b) = f.bye.poll_transmit() {
                self.out.push_back(LegTransmit {
                    dest: destination_for(&f.dialog, self.id.local.transport, trunk),
                    bytes: b,
                });
            }
        }
    }

    fn dialog_destination(&self) -> Destination {
        let trunk = Destination::Trunk(self.trunk());
        match &self.up.dialog {
            Some(d) => destination_for(d, self.id.local.transport, trunk),
            None => trunk,
        }
    }

    /// The trunk this leg's INVITE is on now, while the INVITE waits for its first word
    /// from it (no response at all yet): `None` otherwise. The engine matches an ICMP
    /// unreachable for a trunk's address against it.
    pub fn awaiting_trunk(&self) -> Option<usize> {
        (self.phase == Phase::Inviting && self.inv.invite.is_pending() && !self.inv.hop_noted)
            .then(|| self.trunk())
    }

    /// The network refused our INVITE to the current trunk (ICMP port or host unreachable):
    /// fail over to the next trunk at once, or, on the last one, end the call as
    /// `network_error` (Q.850 38) — the trunk's fault, not the lead's. No effect unless
    /// [`awaiting_trunk`](Self::awaiting_trunk) is `Some`.
    pub fn network_unreachable(&mut self, now: Instant) {
        if self.awaiting_trunk().is_none() {
            return;
        }
        self.inv.invite.abandon();
        if self.can_fail_over() && !self.inv.history.cancelled_on_ring_timeout {
            self.fail_over(now, None, FailoverReason::NetworkError, TrunkNote::Refused);
        } else {
            self.inv.notes.push(TrunkNote::Refused(self.trunk()));
            self.inv.network_error = true;
            self.outcome.q850 = Some(38);
            self.end(now, HangupBy::Local, EndReason::NetworkError);
        }
    }

    /// Fires whatever is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(d) = self.deadlines[LegTimer::Failover]
            && now >= d
        {
            self.deadlines[LegTimer::Failover] = None;
            if self.can_fail_over() && self.inv.invite.is_pending() && !self.inv.hop_noted {
                // Not a word from this trunk: stop retransmitting to it and move on.
                self.inv.invite.abandon();
                self.fail_over(
                    now,
                    None,
                    FailoverReason::FailoverTimeout,
                    TrunkNote::Silent,
                );
            }
        }
        if let Some(ClientTxEvent::Timeout) = self.inv.invite.handle_timeout(now) {
            // Timer B: no response at all (§17.1.1.2).
            if self.can_fail_over() && !self.inv.history.cancelled_on_ring_timeout {
                self.fail_over(now, None, FailoverReason::TimerB, TrunkNote::Silent);
            } else {
                if !self.inv.hop_noted {
                    self.inv.notes.push(TrunkNote::Silent(self.trunk()));
                }
                let detail = if self.inv.history.cancelled_on_ring_timeout {
                    EndReason::RingTimeout
                } else {
                    EndReason::TimerB
                };
                self.end(now, HangupBy::Local, detail);
            }
        }
        if let Some(d) = self.deadlines[LegTimer::Ring]
            && now >= d
        {
            self.deadlines[LegTimer::Ring] = None;
            self.ending.ring_timed_out = true;
            self.request_cancel(now);
        }
        if let Some(g) = self.deadlines[LegTimer::CancelGuard]
            && now >= g
        {
            // §9.1: no final response 64·T1 after CANCEL: consider the INVITE over.
            self.deadlines[LegTimer::CancelGuard] = None;
            self.end(now, HangupBy::Local, EndReason::RingTimeout);
        }
        if let Some(h) = self.deadlines[LegTimer::Hold]
            && now >= h
        {
            self.deadlines[LegTimer::Hold] = None;
            self.send_bye(now, EndReason::HoldTime);
        }
        self.session_timeout(now);
        for (t, _) in &mut self.inv.retired {
            t.handle_timeout(now);
        }
        if let Some(c) = &mut self.ending.cancel {
            c.handle_timeout(now);
        }
        self.refer_timeout(now);
        if let Some(b) = &mut self.ending.bye
            && let Some(ClientTxEvent::Timeout) = b.handle_timeout(now)
        {
            // Timer F on our BYE: the far end is gone; the call is over anyway (§15.1.1).
            self.end(now, HangupBy::Local, EndReason::ByeTimeout);
        }
        for f in &mut self.ending.forks {
            f.bye.handle_timeout(now);
        }
        for t in &mut self.up.server_txs {
            t.handle_timeout(now);
        }
        let mut ack_lost = false;
        for t in &mut self.up.invite_server_txs {
            t.handle_timeout(now);
            ack_lost |= t.ack_timed_out();
        }
        self.up
            .invite_server_txs
            .retain(|t| !t.is_terminated() || t.ack_timed_out());
        if ack_lost {
            self.up.invite_server_txs.retain(|t| !t.ack_timed_out());
            // §13.3.1.4: no ACK for our 2xx to a re-INVITE: end the dialog.
            self.send_bye(now, EndReason::ReinviteAckTimeout);
        }
        self.up.server_txs.retain(|t| !t.is_terminated());
        self.drain_txs();
        self.drain_server_pending();
    }

    /// Emits `terminated` once and stops the call timers.
    fn end(&mut self, now: Instant, by: HangupBy, detail: EndReason) {
        if self.phase == Phase::Ended {
            return;
        }
        let answered =
            self.up.dialog.is_some() || matches!(self.outcome.final_status, Some(200..=299));
        let (disposition, detail) = if answered {
            (Disposition::Answered, detail)
        } else if self.ending.shutdown {
            (Disposition::Interrupted, EndReason::Shutdown)
        } else if self.inv.network_error {
            (Disposition::NetworkError, detail)
        } else {
            (
                classify(self.outcome.final_status, self.inv.history),
                detail,
            )
        };
        self.phase = Phase::Ended;
        // The leg lingers for Timer D/K: keep only what answers retransmissions.
        self.id.offer = Vec::new();
        self.deadlines[LegTimer::Ring] = None;
        self.deadlines[LegTimer::Hold] = None;
        self.deadlines[LegTimer::CancelGuard] = None;
        self.events.push_back((
            now,
            CallEventKind::Terminated {
                sip_status: self.outcome.final_status,
                reason_phrase: self.outcome.final_reason.clone(),
                q850_cause: self.outcome.q850,
                hangup_by: by,
                disposition,
                detail,
                retry_after: self.outcome.retry_after,
            },
        ));
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<LegTransmit> {
        self.out.pop_front()
    }

    /// The next event, with the time it happened.
    pub fn poll_event(&mut self) -> Option<(Instant, CallEventKind)> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut take = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        take(self.inv.invite.poll_timeout());
        for (t, _) in &self.inv.retired {
            take(t.poll_timeout());
        }
        take(self.deadlines.earliest());
        take(self.ending.cancel.as_ref().and_then(|c| c.poll_timeout()));
        take(self.ending.bye.as_ref().and_then(|c| c.poll_timeout()));
        take(self.refer_deadline());
        if let Phase::Confirmed { session: Some(st) } = &self.phase {
            take(st.refresh_at);
            take(Some(st.expire_at));
        }
        match &self.up.refresh {
            Some(Refresh::Update(t)) => take(t.poll_timeout()),
            Some(Refresh::Invite { tx, .. }) => take(tx.poll_timeout()),
            None => {}
        }
        for f in &self.ending.forks {
            take(f.bye.poll_timeout());
        }
        for s in &self.up.server_txs {
            take(s.poll_timeout());
        }
        for s in &self.up.invite_server_txs {
            take(s.poll_timeout());
        }
        t
    }
}

/// Where in-dialog requests go: the next hop ([`Dialog::next_hop`]: the first route, else
/// the remote target) when it is an IP literal over UDP (port 5060 when it has none);
/// otherwise `trunk` (the call's trunk, or its outbound proxy). Over TCP everything rides the
/// trunk's connection.
fn destination_for(
    d: &Dialog,
    transport: crate::sip::message::Transport,
    trunk: Destination,
) -> Destination {
    if transport.is_reliable() {
        return trunk;
    }
    let Ok(u) = parse_uri(d.next_hop()) else {
        return trunk;
    };
    let (host, port) = host_port(&u);
    match host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        Ok(ip) => Destination::Addr(SocketAddr::new(ip, port)),
        Err(_) => trunk,
    }
}

/// The ACK for a non-2xx final response (§17.1.1.3): the INVITE's Request-URI, top Via
/// (same branch), From, Call-ID and CSeq number; the response's To (with its tag).
fn non_2xx_ack(request_uri: &Uri, ua: &str, p: &InviteParts<'_>, resp: &Inbound) -> Vec<u8> {
    let to = resp
        .msg()
        .headers()
        .iter()
        .find_map(|h| match h {
            Header::To(t) => Some(t.value().to_string()),
            _ => None,
        })
        .unwrap_or_default();
    let mut h = request_head(p, &to, Method::Ack);
    h.push(Header::UserAgent(UserAgent::new(ua.to_string())));
    h.push(Header::ContentLength(ContentLength::new("0")));
    // §17.1.1.3: the ACK carries the INVITE's Route headers (`p.route`, via request_head).
    request_bytes(Method::Ack, request_uri, &h, &[])
}

/// The fields of an INVITE that change between the first and an authenticated retry (and
/// that its non-2xx ACK copies; the ACK takes To from the response).
struct InviteParts<'a> {
    call_id: &'a str,
    from: &'a str,
    to: &'a str,
    via: &'a str,
    cseq: u32,
    /// The pre-loaded route (outbound proxy), copied to CANCEL and ACK (§9.1, §17.1.1.3).
    route: Option<&'a str>,
}

/// Builds the INVITE (RFC 3261 §8.1.1) with our SDP offer; `auth` is an Authorization or
/// Proxy-Authorization header answering a challenge.
#[allow(clippy::too_many_arguments)]
fn build_invite(
    spec: &CallSpec,
    request_uri: &Uri,
    local: &LocalParty,
    p: &InviteParts<'_>,
    sdp: &[u8],
    auth: Option<Header>,
    session_expires: Option<u32>,
) -> Vec<u8> {
    let mut h = request_head(p, p.to, Method::Invite);
    h.push(Header::Contact(Contact::new(local.contact())));
    if let Some(se) = session_expires {
        h.extend(session_headers(se, "uac"));
    }
    if let Some(a) = auth {
        h.push(a);
    }
    if let Some(pai) = &spec.p_asserted_identity {
        h.push(Header::PAssertedIdentity(PAssertedIdentity::new(format!(
            "<{pai}>"
        ))));
    }
    if let Some(privacy) = &spec.privacy {
        h.push(Header::Privacy(crate::sip::message::wire::Privacy::new(
            privacy.clone(),
        )));
    }
    h.push(Header::Allow(Allow::new(ALLOW)));
    h.push(Header::UserAgent(UserAgent::new(local.user_agent.clone())));
    h.push(Header::ContentType(ContentType::new("application/sdp")));
    h.push(Header::ContentLength(ContentLength::new(
        sdp.len().to_string(),
    )));
    request_bytes(Method::Invite, request_uri, &h, sdp)
}

/// The headers every request of the INVITE transaction starts with (§8.1.1): Via,
/// Max-Forwards, From, To (`to`: the INVITE's, or a response's with its tag for the ACK),
/// Call-ID and CSeq with the INVITE's number and `method`.
fn request_head(p: &InviteParts<'_>, to: &str, method: Method) -> Vec<Header> {
    let mut h = vec![
        Header::Via(Via::new(p.via.to_string())),
        Header::MaxForwards(MaxForwards::new("70")),
    ];
    if let Some(r) = p.route {
        h.push(Header::Route(crate::sip::message::wire::Route::new(
            r.to_string(),
        )));
    }
    h.extend([
        Header::From(From::new(p.from.to_string())),
        Header::To(To::new(to.to_string())),
        Header::CallId(CallId::new(p.call_id.to_string())),
        Header::CSeq(CSeq::new(format!("{} {method}", p.cseq))),
    ]);
    h
}
