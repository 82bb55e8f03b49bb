//! The engine core: every call leg of one worker, a timer queue, and the RTP port pool, as one
//! sans-IO state machine.
//!
//! ```text
//! engine.start_call(now, attempt, spec);           // INVITE queued
//! engine.handle_datagram(now, bytes, src);         // a SIP message from the wire
//! engine.handle_timeout(now);                      // timers due
//! while let Some(out) = engine.poll_output() {}    // Transmit { dest, bytes } | Event(CallEvent)
//! engine.poll_timeout()                            // when to call handle_timeout next
//! ```
//!
//! Messages are routed to their leg by Call-ID (ours, random per attempt), then by branch and
//! CSeq inside the leg. A message that does not parse is counted in [`EngineStats`], logged
//! once per source address, and answered `400 Bad Request` when it is a request.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use std::sync::Arc;

use crate::acd::AcdConfig;
use crate::call::actions::{HumanAction, MachineAction, MediaPlan, MediaTimeoutAction};
use crate::call::leg::{ALLOW, CallLeg, CallSpec, Destination, Linger, TrunkNote};
use crate::engine::trunks::{TrunkRoute, TrunkSet, TrunkStateChange, TrunkStats};
use crate::events::AgentEvent;
use crate::events::disposition::Disposition;
use crate::events::{AttemptRef, CallEvent, CallEventKind, EndReason, HangupBy, Playback};
use crate::media::amd::AmdResult;
use crate::media::relay::LegCodec;
use crate::media::sdp::{AudioAnswer, parse_answer};
use crate::media::session::{MediaEvent, RtpStats};
use crate::sip::dialog::LocalParty;
use crate::sip::message::{
    Header, Tokens, Transport, bad_request_response, looks_like_request, parse_datagram,
    parse_stream_message, response_to,
};
use crate::sip::transaction::Timers;

#[path = "acd_flow.rs"]
mod acd_flow;
#[path = "agent_call.rs"]
mod agent_call;
#[path = "inbound_flow.rs"]
mod inbound_flow;
#[path = "ivr_flow.rs"]
mod ivr_flow;
pub use crate::acd::AcdSummary;

/// Static configuration of an engine core.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Our SIP identity (Via sent-by, Contact, transport, User-Agent).
    pub local: LocalParty,
    /// The trunk group (at least one): where out-of-dialog requests go, with weights,
    /// outbound proxies and credentials.
    pub trunks: Vec<TrunkRoute>,
    /// OPTIONS keep-alive interval per trunk (`None`: no pings).
    pub keepalive: Option<Duration>,
    /// Consecutive failures (INVITEs or pings) that mark a trunk down.
    pub trunk_down_after: u32,
    /// RFC 3261 timer values.
    pub timers: Timers,
    /// First and last RTP port (inclusive) to offer; even ports only are used (RFC 3550 §11).
    pub rtp_ports: (u16, u16),
    /// Agents, the registrar and the ACD queue (`None`: no agents; answered calls follow
    /// their AMD actions and hold time only).
    pub acd: Option<AcdConfig>,
    /// `host:port` agents' phones register to, when it differs from `local.sent_by` (a TCP
    /// trunk: its connection's local port is not where phones reach us). Via sent-by and
    /// Contact of agent legs.
    pub agents_sent_by: Option<String>,
    /// Inbound calls this engine answers (`None`: an INVITE to us is refused with 480).
    pub inbound: Option<InboundRoute>,
}

/// Which inbound INVITEs the engine answers and queues to its agents (a campaign's
/// `[inbound]`): addressed to one of `numbers` (the Request-URI's user part, compared on its
/// digits) and sent from one of `allow`; anything else is refused (403 for a source not
/// allowed, 404 for a number not ours).
#[derive(Debug, Clone, Default)]
pub struct InboundRoute {
    /// The numbers answered, digits only (`+1 415 555 0000` → `14155550000`).
    pub numbers: Vec<String>,
    /// Source addresses allowed to send them (the trunk's, or those configured); empty with
    /// `auth`: any source that authenticates.
    pub allow: Vec<std::net::IpAddr>,
    /// Digest authentication asked of every inbound INVITE (a 407 challenge, RFC 3261
    /// §22.3), when configured.
    pub auth: Option<InboundAuth>,
}

/// The account an inbound caller (the trunk) authenticates with.
#[derive(Debug, Clone)]
pub struct InboundAuth {
    /// The username.
    pub username: String,
    /// The digest realm of our challenges.
    pub realm: String,
    /// H(username:realm:password): the password itself is not kept.
    pub ha1: crate::acd::digest_auth::Ha1,
}

/// The digits of a number or a URI user part (`+1 (415) 555-0000` → `14155550000`).
pub fn digits_of(number: &str) -> String {
    number.chars().filter(char::is_ascii_digit).collect()
}

impl EngineConfig {
    /// One trunk at `trunk` (named `trunk`), no keep-alive, down after 2 failures.
    pub fn single_trunk(
        local: LocalParty,
        trunk: SocketAddr,
        timers: Timers,
        rtp_ports: (u16, u16),
    ) -> Self {
        let t = TrunkRoute::direct("trunk", trunk, local.transport);
        Self {
            local,
            trunks: vec![t],
            keepalive: None,
            trunk_down_after: 2,
            timers,
            rtp_ports,
            acd: None,
            agents_sent_by: None,
            inbound: None,
        }
    }
}

/// A datagram or stream message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub dest: SocketAddr,
    /// The serialised SIP message.
    pub bytes: Vec<u8>,
}

/// What the engine hands to its shell.
#[derive(Debug, Clone)]
pub enum Output {
    /// Send these bytes.
    Transmit(Transmit),
    /// A call event for the store, the display and every other consumer.
    Event(CallEvent),
    /// Open, configure, feed or close a call's RTP session.
    Media(MediaCommand),
    /// A trunk went down or came back up.
    Trunk(TrunkStateChange),
    /// An agent changed state.
    Agent(AgentEvent),
}

/// Instructions for the shell's per-call RTP sessions.
#[derive(Debug, Clone)]
pub enum MediaCommand {
    /// The call was answered at `at` with this SDP answer.
    Answered {
        /// The call.
        call_id: String,
        /// When the 2xx arrived (AMD's clock starts here).
        at: Instant,
        /// Remote address, law, telephone-event.
        answer: AudioAnswer,
    },
    /// Play 8 kHz PCM to the far end (replacing anything playing).
    Play {
        /// The call.
        call_id: String,
        /// The audio.
        samples: Arc<Vec<i16>>,
    },
    /// Stop what is playing (an IVR prompt a digit interrupted).
    StopPlayback {
        /// The call.
        call_id: String,
    },
    /// Record the far end's audio for at most `max`; the shell writes it out and reports it
    /// with [`Engine::handle_recording`].
    Record {
        /// The call.
        call_id: String,
        /// Longest recording.
        max: Duration,
    },
    /// End the recording now.
    StopRecording {
        /// The call.
        call_id: String,
    },
    /// Open a media session on `port` for a leg the engine started itself (an agent leg):
    /// bind the port before the INVITE that offers it goes out.
    Open {
        /// The agent leg's Call-ID.
        call_id: String,
        /// The even RTP port from the pool.
        port: u16,
    },
    /// Bridge two legs: relay each one's RTP to the other (both answered).
    Bridge {
        /// The customer leg.
        customer: String,
        /// The agent leg.
        agent: String,
    },
    /// Stop relaying between two legs (the customer left; a persistent agent leg stays up).
    Unbridge {
        /// The customer leg.
        customer: String,
        /// The agent leg.
        agent: String,
    },
    /// Relay the agent leg's audio to its customer or not (`on`: muted, nothing relayed).
    Mute {
        /// The agent leg.
        call_id: String,
        /// Muted.
        on: bool,
    },
    /// Record the call in stereo: the customer's audio left (from now) and, when given, the
    /// agent leg's right. Again with the agent leg adds that side to a recording running.
    /// The shell answers with [`Engine::handle_call_recording`] once the file is written.
    RecordCall {
        /// The customer leg (the recording is named after it).
        customer: String,
        /// The agent leg, when bridged.
        agent_leg: Option<String>,
    },
    /// Add leg `leg` — a warm transfer's third party, or the target our own call reached
    /// for a blind transfer — to `customer`'s recording when one is running (otherwise
    /// nothing): its audio is mixed into the right channel with the agent's
    /// ([`crate::media::recorder::Side::Third`]).
    RecordLeg {
        /// The customer leg (whose recording it joins).
        customer: String,
        /// The third party's leg.
        leg: String,
    },
    /// Stop the call's recording and write it (also done when the customer's session
    /// closes).
    StopCallRecording {
        /// The customer leg.
        customer: String,
    },
    /// Mix these legs' audio (a merged warm transfer): each hears the sum of the others.
    Mix {
        /// The legs (customer, agent, third party).
        legs: Vec<String>,
    },
    /// Stop mixing them (each leg's relay is set again by `Bridge`).
    Unmix {
        /// The legs.
        legs: Vec<String>,
    },
    /// Close the session; the shell answers with
    /// [`Engine::handle_media_closed`] and the final statistics.
    Close {
        /// The call.
        call_id: String,
    },
}

/// Counters of the engine core (exposed in the run summary; Prometheus later).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineStats {
    /// Calls started.
    pub calls_started: u64,
    /// Messages that failed to parse or validate.
    pub parse_errors: u64,
    /// Well-formed messages for no known call.
    pub stray_messages: u64,
    /// 400 responses sent to malformed requests.
    pub bad_requests_answered: u64,
    /// Requests we retransmitted on RFC 3261 timers (A, E).
    pub retransmissions_sent: u64,
    /// Retransmissions from the far end we recognised and absorbed.
    pub duplicates_received: u64,
    /// Times an RTP port could not be bound (held by another socket) and was skipped.
    pub rtp_ports_unusable: u64,
    /// Call setup latency, INVITE sent → 2xx received: median, µs (hdrhistogram).
    pub setup_p50_us: u64,
    /// Call setup latency, 99th percentile, µs.
    pub setup_p99_us: u64,
    /// Call setup latency, maximum, µs.
    pub setup_max_us: u64,
    /// Response received → its call event handed on, median, µs (measured by the shell).
    pub event_p50_us: u64,
    /// Response received → call event, 99th percentile, µs.
    pub event_p99_us: u64,
    /// Per-trunk counters and state.
    pub trunks: Vec<TrunkStats>,
    /// RTP ports in the pool (the configured range's even ports).
    pub rtp_ports_total: u64,
    /// RTP ports free when the counters were read (all of them after a clean stop: none
    /// leaked).
    pub rtp_ports_free: u64,
    /// Per-call media tasks still open when the engine stopped (0 after a clean stop).
    pub media_tasks_open: u64,
    /// Agents and the ACD queue, when configured.
    pub acd: Option<AcdSummary>,
}

/// A latency histogram in µs, 1 µs to 60 s, 3 significant digits.
pub fn latency_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3).expect("static bounds")
}

/// Bound RTP ports the shell keeps ready for agent legs.
pub const BOUND_PORT_RESERVE: usize = 8;

/// The maps looked up by Call-ID on every message: foldhash (randomly seeded per map, as
/// std's `RandomState`) instead of SipHash, a few tens of ns per lookup less on the
/// per-response path (docs/benchmarks.md).
pub(crate) type FastMap<V> = HashMap<String, V, foldhash::fast::RandomState>;

/// A new random Call-ID (`<24 hex>@outdial`) from `tokens`.
pub fn new_call_id(tokens: &mut Tokens) -> String {
    tokens.call_id()
}

/// How long a released RTP port rests before it is offered again while never-used ports
/// remain: longer than a BYE's first three retransmissions over UDP (T1 = 500 ms doubling:
/// 0.5 + 1 + 2 s, RFC 3261 §17.1.2.2), so a far end that has not yet heard the BYE and still
/// sends RTP to the port has stopped before the port carries another call.
pub const RTP_PORT_REST: Duration = Duration::from_secs(5);

/// Even RTP ports from a range, handed out and taken back.
///
/// A port given back rests for [`RTP_PORT_REST`]; then it is handed out before any port never
/// used, so a steady load cycles through a working set of ports (calls up plus those resting)
/// instead of the whole range, and the shell can keep each released port's socket bound for
/// the next call on it (no `socket`/`bind`/`close` per call, issue 19). When no port has
/// rested and none is unused, the one released longest ago goes first (the whole range in
/// use: as before, the least recently used).
#[derive(Debug)]
struct RtpPortPool {
    /// Ports never handed out (or skipped as unusable), in order.
    unused: VecDeque<u16>,
    /// Ports given back, with when, oldest first.
    released: VecDeque<(Instant, u16)>,
}

impl RtpPortPool {
    fn new((lo, hi): (u16, u16)) -> Self {
        let start = lo + (lo % 2);
        Self {
            unused: (start..=hi).step_by(2).collect(),
            released: VecDeque::new(),
        }
    }
    fn take(&mut self, now: Instant) -> Option<u16> {
        if let Some(&(at, p)) = self.released.front()
            && now.saturating_duration_since(at) >= RTP_PORT_REST
        {
            self.released.pop_front();
            return Some(p);
        }
        self.unused
            .pop_front()
            .or_else(|| self.released.pop_front().map(|(_, p)| p))
    }
    fn give(&mut self, now: Instant, p: u16) {
        self.released.push_back((now, p));
    }
    /// A port another socket holds: tried again after every unused one.
    fn skip(&mut self, p: u16) {
        self.unused.push_back(p);
    }
    fn free(&self) -> usize {
        self.unused.len() + self.released.len()
    }
}

/// Which side of the B2BUA a leg is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A call to a lead (its events go to the campaign).
    Customer,
    /// A call to an agent's phone (its events are turned into the customer's ACD events).
    Agent,
    /// A warm transfer's consultation leg to a third party (its events drive the transfer).
    Consult,
}

/// What a call's media does beside AMD: nothing, waiting for the voicemail beep (at most
/// until a deadline), or playing audio. A small state machine instead of loose fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MediaPolicy {
    /// Nothing to play.
    Idle,
    /// AMD said machine and the campaign leaves a voicemail: play it at the beep, or at
    /// `until` without one.
    AwaitingBeep {
        /// The latest start of the message.
        until: Instant,
    },
    /// Audio is playing; the call ends when it has played.
    Playing(Playback),
    /// It has played.
    Done,
}

impl MediaPolicy {
    /// When the voicemail message starts at the latest, while waiting for the beep.
    fn beep_deadline(self) -> Option<Instant> {
        match self {
            Self::AwaitingBeep { until } => Some(until),
            _ => None,
        }
    }

    /// What is playing.
    fn playing(self) -> Option<Playback> {
        match self {
            Self::Playing(p) => Some(p),
            _ => None,
        }
    }

    /// No more waiting for the beep (the call ended, or the message starts now).
    fn stop_waiting(&mut self) {
        if matches!(self, Self::AwaitingBeep { .. }) {
            *self = Self::Idle;
        }
    }

    /// The playback ended: what it was (once).
    fn played(&mut self) -> Option<Playback> {
        let p = self.playing();
        if p.is_some() {
            *self = Self::Done;
        }
        p
    }
}

struct Slot {
    leg: CallLeg,
    role: Role,
    /// Agent legs to a registered phone: where its INVITE/CANCEL/ACK go (instead of a trunk).
    target: Option<SocketAddr>,
    /// When the 2xx came.
    answered_at: Option<Instant>,
    /// The leg's negotiated codec (from its SDP answer).
    codec: Option<LegCodec>,
    attempt: AttemptRef,
    scheduled: Option<Instant>,
    /// The RTP port, until the call ends (then it goes back to the pool at once, even if the
    /// leg lingers to absorb retransmissions).
    port: Option<u16>,
    /// What to do with the media.
    plan: MediaPlan,
    /// A media session was opened and not yet closed.
    media_open: bool,
    /// The call's media policy: waiting for the beep, playing, or nothing.
    media: MediaPolicy,
    /// When the INVITE was sent.
    started: Instant,
    /// The call's IVR, while it is in it.
    ivr: Option<crate::ivr::Ivr>,
}

impl Slot {
    /// A call just started (`now`) on RTP `port` with its media session open. Boxed: a slot
    /// is about 3.5 KB, and the call table moves its values when it grows.
    fn new(
        leg: CallLeg,
        role: Role,
        target: Option<SocketAddr>,
        attempt: AttemptRef,
        port: u16,
        plan: MediaPlan,
        now: Instant,
    ) -> Box<Self> {
        Box::new(Self {
            leg,
            role,
            target,
            answered_at: None,
            codec: None,
            attempt,
            scheduled: None,
            port: Some(port),
            plan,
            media_open: true,
            media: MediaPolicy::Idle,
            started: now,
            ivr: None,
        })
    }
}

/// The sans-IO engine core. See the module docs.
pub struct Engine {
    cfg: EngineConfig,
    calls: FastMap<Box<Slot>>,
    timers: BinaryHeap<Reverse<(Instant, String)>>,
    ports: RtpPortPool,
    out: VecDeque<Output>,
    stats: EngineStats,
    logged_sources: HashSet<SocketAddr>,
    /// Calls whose media session is closing: the attempt to report its statistics under
    /// (`None` for agent legs, whose statistics are not call events).
    closing_media: HashMap<String, Option<(AttemptRef, &'static str)>>,
    /// Calls that ended while their IVR recorded, until the recording comes back.
    ending_recordings: HashMap<String, ivr_flow::EndingRecording>,
    /// INVITE → 2xx latencies, µs.
    setup: hdrhistogram::Histogram<u64>,
    /// The trunk group.
    trunks: TrunkSet,
    rtp_ports_total: u64,
    /// Calls that ended, reduced to what answers retransmissions until their last timer (and
    /// the agent phone's address, for agent legs).
    lingering: FastMap<(Linger, Option<SocketAddr>)>,
    /// A leg's events being handled by `after_touch_one`: kept, empty, between messages.
    leg_events: Vec<(Instant, CallEventKind)>,
    /// Agents, registrar and queue.
    pub(super) acd: Option<crate::acd::Acd>,
    /// RTP ports the shell bound ahead of time for legs the engine starts itself (agent legs).
    bound_ports: VecDeque<u16>,
    /// An agent leg found no bound port: offers wait for [`Engine::retry_offers`].
    offers_short_of_ports: bool,
    /// Inbound calls answered so far (their provisional attempt ids are its negatives).
    next_inbound: i64,
    /// Challenges and checks inbound INVITEs' credentials (`[inbound]` with a username).
    inbound_digest: Option<crate::acd::digest_auth::DigestServer>,
    /// Legs to look at again after the one being looked at (a bridge touches both).
    touch_queue: VecDeque<String>,
    touching: bool,
    /// The random stream (Call-IDs, tags; each leg gets a fork of it).
    tokens: Tokens,
    /// Agent calls being handled or wrapped up, by the customer's Call-ID, until their
    /// `DIALER.SYNC`.
    handling: HashMap<String, agent_call::Handling>,
    /// Each agent's current (or last, in wrap-up) handled customer.
    agent_handling: HashMap<String, String>,
    /// Calls being recorded (`RecordCall` sent, `recording_saved` not yet): the attempt the
    /// event goes to, even after the call's slot is gone.
    recording_calls: HashMap<String, AttemptRef>,
    /// Warm transfers' consultation legs → their customer.
    consults: HashMap<String, String>,
    /// Customers and third parties left connected by a completed warm transfer, both ways:
    /// either's end ends the other.
    linked: HashMap<String, String>,
    /// Blind transfers by REFER waiting for its answer: customer → the target as the agent
    /// gave it (a refused REFER falls back to our own call to it).
    blind_pending: HashMap<String, String>,
    /// Blind transfers placed by us after a refused REFER: our leg to the target → (its
    /// customer, the target URI).
    blind_legs: HashMap<String, (String, String)>,
}

impl Engine {
    /// A new engine with no calls, started at `now`, drawing every random value (Call-IDs,
    /// tags, branches, nonces) from `tokens` (the shell seeds it from the operating system).
    pub fn new(cfg: EngineConfig, now: Instant, mut tokens: Tokens) -> Self {
        let ports = RtpPortPool::new(cfg.rtp_ports);
        let acd = cfg
            .acd
            .clone()
            .map(|a| crate::acd::Acd::new(a, now, tokens.fork()));
        let inbound_digest = cfg.inbound.as_ref().and_then(|i| i.auth.as_ref()).map(|a| {
            use crate::acd::digest_auth::{DigestAlgorithm, DigestServer};
            DigestServer::new(
                a.realm.clone(),
                vec![DigestAlgorithm::Md5],
                Duration::from_secs(300),
                now,
                tokens.fork(),
            )
        });
        Self {
            handling: HashMap::new(),
            agent_handling: HashMap::new(),
            consults: HashMap::new(),
            recording_calls: HashMap::new(),
            linked: HashMap::new(),
            blind_pending: HashMap::new(),
            blind_legs: HashMap::new(),
            tokens,
            acd,
            bound_ports: VecDeque::new(),
            offers_short_of_ports: false,
            next_inbound: 0,
            inbound_digest,
            touch_queue: VecDeque::new(),
            touching: false,
            rtp_ports_total: ports.free() as u64,
            lingering: FastMap::default(),
            leg_events: Vec::new(),
            ports,
            trunks: TrunkSet::new(
                cfg.trunks.clone(),
                cfg.keepalive,
                cfg.trunk_down_after,
                cfg.timers,
            ),
            cfg,
            calls: FastMap::default(),
            timers: BinaryHeap::new(),
            out: VecDeque::new(),
            stats: EngineStats::default(),
            logged_sources: HashSet::new(),
            closing_media: HashMap::new(),
            ending_recordings: HashMap::new(),
            setup: latency_histogram(),
        }
    }

    /// Starts the trunks' OPTIONS keep-alive pings (when an interval is configured), and
    /// the ACD's static agents.
    pub fn start_keepalive(&mut self, now: Instant) {
        self.trunks.start_keepalive(now);
        self.drain_trunks();
        self.acd_start(now);
    }

    /// Counters so far at `now` (calls still held included).
    pub fn stats(&self, now: Instant) -> EngineStats {
        let mut s = self.stats.clone();
        s.trunks = self.trunks.stats();
        s.rtp_ports_free = self.ports.free() as u64;
        s.rtp_ports_total = self.rtp_ports_total;
        if !self.setup.is_empty() {
            s.setup_p50_us = self.setup.value_at_quantile(0.5);
            s.setup_p99_us = self.setup.value_at_quantile(0.99);
            s.setup_max_us = self.setup.max();
        }
        for slot in self.calls.values() {
            s.retransmissions_sent += u64::from(slot.leg.retransmissions_sent());
            s.duplicates_received += u64::from(slot.leg.duplicates_received());
        }
        s.acd = self.acd.as_ref().map(|a| a.summary(now));
        s
    }

    /// Calls whose leg still exists (ringing, up, or finishing their transactions).
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// Calls that have not yet emitted `terminated` (legs that only linger to absorb
    /// retransmissions are not counted).
    pub fn live_calls(&self) -> usize {
        self.calls.values().filter(|s| !s.leg.has_ended()).count()
    }

    /// Takes a free RTP port at `now` for the shell to bind before
    /// [`start_call`](Self::start_call): one released at least [`RTP_PORT_REST`] ago, else one
    /// never used, else the one released longest ago; `None` when every port is in use.
    pub fn take_rtp_port(&mut self, now: Instant) -> Option<u16> {
        self.ports.take(now)
    }

    /// A port the shell could not bind (another socket holds it): it goes behind the unused
    /// ports, to be tried again after every one of them.
    pub fn skip_rtp_port(&mut self, port: u16) {
        self.stats.rtp_ports_unusable += 1;
        if self.stats.rtp_ports_unusable == 1 {
            tracing::warn!(
                port,
                "RTP port in use by another socket: skipped (further ones are only counted)"
            );
        }
        self.ports.skip(port);
    }

    /// The shell bound `port` (taken with [`take_rtp_port`](Self::take_rtp_port)) and keeps
    /// the socket for the next leg the engine starts itself (an agent leg), which offers it in
    /// its SDP; [`MediaCommand::Open`] then asks for that socket.
    pub fn give_bound_port(&mut self, port: u16) {
        self.bound_ports.push_back(port);
    }

    /// At shutdown: the ports kept bound for agent legs go back to the pool (the shell
    /// closed their sockets).
    pub fn return_bound_ports(&mut self) {
        while let Some(p) = self.bound_ports.pop_front() {
            self.ports.skip(p);
        }
    }

    /// How many more bound ports the shell should give (see
    /// [`give_bound_port`](Self::give_bound_port)): up to [`BOUND_PORT_RESERVE`] in reserve
    /// when the engine has agents, none otherwise.
    pub fn bound_ports_wanted(&self) -> usize {
        if self.acd.is_some() {
            BOUND_PORT_RESERVE.saturating_sub(self.bound_ports.len())
        } else {
            0
        }
    }

    /// RTP ports currently free.
    pub fn free_rtp_ports(&self) -> usize {
        self.ports.free()
    }

    /// Starts a call. `spec.rtp_port` is ignored and taken from the pool; when the pool is
    /// empty the call ends at once with `terminated` (`failed`, detail `no_rtp_port`).
    /// `call_id` comes from [`new_call_id`] (the caller stores it with the attempt first).
    pub fn start_call(
        &mut self,
        now: Instant,
        call_id: String,
        attempt: AttemptRef,
        mut spec: CallSpec,
    ) {
        self.stats.calls_started += 1;
        // The shell binds a port first and passes it in; otherwise take one from the pool.
        let port = if spec.rtp_port != 0 {
            Some(spec.rtp_port)
        } else {
            self.ports.take(now)
        };
        let Some(port) = port else {
            for kind in [
                CallEventKind::Initiated,
                CallEventKind::Terminated {
                    sip_status: None,
                    reason_phrase: None,
                    q850_cause: None,
                    hangup_by: HangupBy::Local,
                    disposition: Disposition::Failed,
                    detail: EndReason::NoRtpPort,
                    retry_after: None,
                },
            ] {
                self.out.push_back(Output::Event(CallEvent {
                    call_id: call_id.clone(),
                    attempt: attempt.clone(),
                    at: now,
                    kind,
                }));
            }
            return;
        };
        spec.rtp_port = port;
        if spec.hops.is_empty() {
            spec.hops = self.trunks.hops(now, &spec.number);
        }
        if spec.to_uri.is_empty() {
            // To: the first Request-URI without its parameters (`;transport=`).
            let first = spec.hops.first().map_or("", |h| h.request_uri.as_str());
            spec.to_uri = first.split(';').next().unwrap_or("").to_string();
        }
        let plan = spec.media.clone();
        let leg = CallLeg::start(
            now,
            call_id.clone(),
            spec,
            self.cfg.local.clone(),
            self.cfg.timers,
            self.tokens.fork(),
        );
        self.calls.insert(
            call_id.clone(),
            Slot::new(leg, Role::Customer, None, attempt, port, plan, now),
        );
        self.after_touch(now, &call_id);
    }

    /// Hangs up call `id` (CANCEL or BYE as fits its state); unknown ids are ignored.
    pub fn hang_up_call(&mut self, now: Instant, id: &str) {
        if let Some(s) = self.calls.get_mut(id) {
            s.leg.hang_up(now);
            self.after_touch(now, id);
        }
    }

    /// The network refused a datagram we sent to `addr` (ICMP port or host unreachable,
    /// read from the socket's error queue by the shell): a trunk ping to it fails, and every
    /// customer INVITE waiting for its first response from a trunk at that address fails
    /// over at once or ends `network_error` — nothing listens there, so waiting 32 s for
    /// Timer B would only hold the lead. The trunk's failures count once per call (the
    /// leg's [`TrunkNote::Refused`]).
    pub fn handle_unreachable(&mut self, now: Instant, addr: SocketAddr) {
        let trunks = self.trunks.on_unreachable(now, addr);
        if !trunks.is_empty() {
            let hit: Vec<String> = self
                .calls
                .iter()
                .filter(|(_, s)| s.role == Role::Customer && s.target.is_none())
                .filter(|(_, s)| s.leg.awaiting_trunk().is_some_and(|t| trunks.contains(&t)))
                .map(|(id, _)| id.clone())
                .collect();
            for id in hit {
                if let Some(s) = self.calls.get_mut(&id) {
                    s.leg.network_unreachable(now);
                }
                self.after_touch(now, &id);
            }
        }
        self.drain_trunks();
    }

    /// The trunk group's health (the runner pauses the campaign while every trunk is down).
    pub fn trunk_health(&self) -> crate::engine::trunks::TrunkHealth {
        self.trunks.health()
    }

    /// Hangs up every call (CANCEL or BYE as fits each one's state).
    pub fn hang_up_all(&mut self, now: Instant) {
        let ids: Vec<String> = self.calls.keys().cloned().collect();
        for id in ids {
            if let Some(s) = self.calls.get_mut(&id) {
                s.leg.hang_up(now);
            }
            self.after_touch(now, &id);
        }
        // Agent calls that ended and wait for their wrap-up are reported now.
        self.sync_all(now);
    }

    /// Feeds one received UDP datagram.
    pub fn handle_datagram(&mut self, now: Instant, data: &[u8], src: SocketAddr) {
        self.handle_bytes(now, data, src, Transport::Udp)
    }

    /// Feeds one message cut from a TCP stream by
    /// [`StreamFramer`](crate::sip::message::StreamFramer).
    pub fn handle_stream_message(&mut self, now: Instant, data: &[u8], src: SocketAddr) {
        self.handle_bytes(now, data, src, Transport::Tcp)
    }

    fn handle_bytes(&mut self, now: Instant, data: &[u8], src: SocketAddr, t: Transport) {
        if data.iter().all(|b| b.is_ascii_whitespace()) {
            return; // keep-alive
        }
        let parsed = match t {
            Transport::Udp => parse_datagram(data),
            Transport::Tcp => parse_stream_message(data),
        };
        let msg = match parsed {
            Ok(m) => m,
            Err(e) => {
                self.stats.parse_errors += 1;
                if self.logged_sources.insert(src) {
                    tracing::warn!(%src, error = %e, "dropping unparsable SIP message (further ones from this source are only counted)");
                }
                if looks_like_request(data)
                    && let Some(resp) = bad_request_response(data, &e.to_string())
                {
                    self.stats.bad_requests_answered += 1;
                    self.out.push_back(Output::Transmit(Transmit {
                        dest: src,
                        bytes: resp,
                    }));
                }
                return;
            }
        };
        if msg.status.is_some() && self.trunks.handle_response(now, &msg) {
            self.drain_trunks();
            return;
        }
        if msg.method.as_deref() == Some("REGISTER") && self.acd.is_some() {
            self.acd_register(now, &msg, src, t);
            return;
        }
        if let Some(slot) = self.calls.get_mut(msg.call_id()) {
            slot.leg.handle_message(now, &msg, src);
            self.after_touch(now, msg.call_id());
            return;
        }
        if let Some((out, target)) = self
            .lingering
            .get(msg.call_id())
            .and_then(|(l, target)| Some((l.handle_message(&msg, src)?, *target)))
        {
            self.stats.duplicates_received += 1;
            for t in out {
                let dest = match (t.dest, target) {
                    (Destination::Trunk(_), Some(a)) => Some(a),
                    (d, _) => self.trunks.resolve(d),
                };
                if let Some(dest) = dest {
                    self.out.push_back(Output::Transmit(Transmit {
                        dest,
                        bytes: t.bytes,
                    }));
                }
            }
            return;
        }
        self.stats.stray_messages += 1;
        // Out of dialog / unknown call.
        let Some(method) = msg.method.as_deref() else {
            return; // a response for a call we no longer know: drop it
        };
        if method == "INVITE" && msg.to_tag().is_none() && self.cfg.inbound.is_some() {
            self.inbound_invite(now, &msg, src, t);
            return;
        }
        let (code, extra) = match method {
            "ACK" => return,
            "OPTIONS" => (
                200,
                vec![Header::Allow(crate::sip::message::wire::Allow::new(ALLOW))],
            ),
            _ if msg.to_tag().is_some() => (481, vec![]),
            "INVITE" => (480, vec![]),
            "BYE" | "CANCEL" => (481, vec![]),
            _ => (
                405,
                vec![Header::Allow(crate::sip::message::wire::Allow::new(ALLOW))],
            ),
        };
        let tag = self.tokens.token(12);
        let resp = response_to(&msg, code, Some(&tag), extra, vec![]);
        self.out.push_back(Output::Transmit(Transmit {
            dest: src,
            bytes: resp,
        }));
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.trunks.poll_timeout().is_some_and(|t| t <= now) {
            self.trunks
                .handle_timeout(now, &self.cfg.local, &mut self.tokens);
            self.drain_trunks();
        }
        if self.acd_poll_timeout().is_some_and(|t| t <= now) {
            self.acd_timeout(now);
        }
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, id))) = self.timers.pop() else {
                break;
            };
            let Some(slot) = self.calls.get_mut(&id) else {
                if self.lingering.get(&id).is_some_and(|(l, _)| l.until <= now) {
                    self.lingering.remove(&id);
                }
                continue;
            };
            if slot.scheduled != Some(at) {
                continue; // stale entry
            }
            slot.scheduled = None;
            slot.leg.handle_timeout(now);
            if slot.media.beep_deadline().is_some_and(|t| t <= now) {
                self.start_playback(now, &id, Playback::Voicemail);
            }
            self.ivr_timeout(now, &id);
            self.after_touch(now, &id);
        }
    }

    /// Collects a leg's output and events, starts or stops its media, reschedules it, and
    /// drops it when finished. Legs touched meanwhile (the other side of a bridge) are looked
    /// at after it, in order.
    pub(super) fn after_touch(&mut self, now: Instant, id: &str) {
        if self.touching {
            self.touch_queue.push_back(id.to_string());
            return;
        }
        self.touching = true;
        self.after_touch_one(now, id);
        while let Some(next) = self.touch_queue.pop_front() {
            self.after_touch_one(now, &next);
        }
        self.touching = false;
    }

    fn after_touch_one(&mut self, now: Instant, id: &str) {
        let Some(slot) = self.calls.get_mut(id) else {
            return;
        };
        let mut notes = slot.leg.take_trunk_notes();
        if slot.role != Role::Customer {
            notes.clear();
        }
        // The slot is looked up again only when the trunk notes needed the engine.
        let slot = if notes.is_empty() {
            slot
        } else {
            for n in notes {
                match n {
                    TrunkNote::Sent(i) => self.trunks.on_invite_sent(i),
                    TrunkNote::Responded(i) => self.trunks.on_success(i, "invite_answered"),
                    TrunkNote::Failed(i) => self.trunks.on_invite_refused(now, i),
                    TrunkNote::Silent(i) => self.trunks.on_failure(now, i, "no_response"),
                    TrunkNote::Refused(i) => self.trunks.on_failure(now, i, "network_error"),
                    TrunkNote::RetryAfter(i, secs) => self
                        .trunks
                        .hold(i, now + Duration::from_secs(u64::from(secs))),
                }
            }
            self.drain_trunks();
            let Some(slot) = self.calls.get_mut(id) else {
                return;
            };
            slot
        };
        while let Some(t) = slot.leg.poll_transmit() {
            let dest = match (t.dest, slot.target) {
                // An agent leg: everything to the registered phone (over TCP, its connection).
                (_, Some(a)) if slot.role != Role::Customer => Some(a),
                (Destination::Trunk(_), Some(a)) => Some(a),
                (d, _) => self.trunks.resolve(d),
            };
            let Some(dest) = dest else {
                continue;
            };
            self.out.push_back(Output::Transmit(Transmit {
                dest,
                bytes: t.bytes,
            }));
        }
        if let Some(sdp) = slot.leg.take_answer_sdp()
            && slot.media_open
        {
            match parse_answer(&sdp) {
                Ok(answer) => {
                    slot.codec = Some(LegCodec {
                        law: answer.law,
                        telephone_event: answer.telephone_event,
                    });
                    self.out.push_back(Output::Media(MediaCommand::Answered {
                        call_id: id.to_string(),
                        at: now,
                        answer,
                    }))
                }
                Err(e) => {
                    tracing::warn!(call_id = %id, error = %e, "unusable SDP answer: no media")
                }
            }
        }
        // The leg's events through a list kept between messages (one allocation fewer per
        // message; a nested call finds it taken and uses a new one).
        let mut events = std::mem::take(&mut self.leg_events);
        events.extend(std::iter::from_fn(|| slot.leg.poll_event()));
        let role = slot.role;
        self.role_events(now, id, role, &mut events);
        self.leg_events = events;
        let Some(slot) = self.calls.get_mut(id) else {
            return;
        };
        let slot = if slot.leg.has_ended() && slot.ivr.is_some() {
            // Before the media session closes: a recording in progress is kept.
            self.ivr_call_ended(id);
            let Some(slot) = self.calls.get_mut(id) else {
                return;
            };
            slot
        } else {
            slot
        };
        if slot.leg.has_ended() {
            slot.media.stop_waiting();
            if let Some(port) = slot.port.take() {
                self.ports.give(now, port);
            }
            if slot.media_open {
                slot.media_open = false;
                // Every leg's statistics go to the customer's attempt (a standing call, which
                // has none, keeps them).
                let leg = match slot.role {
                    Role::Customer => "customer",
                    Role::Agent => "agent",
                    Role::Consult => "third_party",
                };
                let attempt = (slot.role == Role::Customer || slot.attempt.attempt_id != 0)
                    .then(|| (slot.attempt.clone(), leg));
                self.closing_media.insert(id.to_string(), attempt);
                self.out.push_back(Output::Media(MediaCommand::Close {
                    call_id: id.to_string(),
                }));
            }
        }
        let finished = slot.leg.is_finished();
        let linger = if !finished
            && slot.leg.has_ended()
            && !slot.media_open
            && slot.media.beep_deadline().is_none()
            && !self.acd.as_ref().is_some_and(|a| a.is_bridged(id))
        {
            slot.leg.linger(now)
        } else {
            None
        };
        if finished || linger.is_some() {
            self.stats.retransmissions_sent += u64::from(slot.leg.retransmissions_sent());
            self.stats.duplicates_received += u64::from(slot.leg.duplicates_received());
            let target = slot.target;
            self.calls.remove(id);
            if let Some(l) = linger.filter(|l| l.until > now) {
                self.timers.push(Reverse((l.until, id.to_string())));
                self.lingering.insert(id.to_string(), (l, target));
            }
            return;
        }
        let next = [
            slot.leg.poll_timeout(),
            slot.media.beep_deadline(),
            slot.ivr.as_ref().and_then(|i| i.poll_timeout()),
        ]
        .into_iter()
        .flatten()
        .min();
        if next != slot.scheduled {
            slot.scheduled = next;
            if let Some(t) = next {
                self.timers.push(Reverse((t, id.to_string())));
            }
        }
    }

    /// A leg's events (drained from `events`, which is left empty) to what its role does
    /// with them.
    fn role_events(
        &mut self,
        now: Instant,
        id: &str,
        role: Role,
        events: &mut Vec<(Instant, CallEventKind)>,
    ) {
        if !events.is_empty() {
            match role {
                Role::Agent => self.acd_agent_events(now, id, events),
                Role::Consult => self.consult_events(now, id, events),
                Role::Customer => self.customer_events(now, id, events),
            }
        }
        events.clear();
    }

    /// A customer leg's events: to the campaign, with the ACD's own (queue entry on an
    /// answer without AMD; `abandoned`/`dequeued` and the other leg's hang-up when it ends).
    fn customer_events(
        &mut self,
        now: Instant,
        id: &str,
        events: &mut Vec<(Instant, CallEventKind)>,
    ) {
        for (at, mut kind) in events.drain(..) {
            let answered = matches!(kind, CallEventKind::Answered { .. });
            if answered && let Some(slot) = self.calls.get_mut(id) {
                slot.answered_at = Some(at);
                let us = at.saturating_duration_since(slot.started).as_micros() as u64;
                let _ = self.setup.record(us.max(1));
            }
            let record = answered && self.calls.get(id).is_some_and(|s| s.role == Role::Customer);
            if let CallEventKind::Terminated { disposition, .. } = &mut kind
                && self.acd_customer_ended(now, id)
            {
                *disposition = Disposition::Abandoned;
            }
            // A digit by SIP INFO (the leg's own event) goes to the IVR like an RFC 4733 one.
            let dtmf = match &kind {
                CallEventKind::Dtmf { digit, .. } => Some(digit.clone()),
                _ => None,
            };
            let refer_refused = matches!(kind, CallEventKind::TransferFailed { .. });
            if matches!(kind, CallEventKind::Transferred { .. }) {
                self.blind_pending.remove(id);
            }
            self.emit(id, at, kind);
            if refer_refused {
                self.blind_fallback(now, id);
            }
            if record {
                self.record_on_answer(at, id);
            }
            if let Some(d) = dtmf {
                self.ivr_dtmf(now, id, &d);
            }
            let Some(slot) = self.calls.get(id) else {
                return;
            };
            let no_amd = matches!(
                slot.plan.settings.amd,
                None | Some(crate::media::amd::AmdConfig::Off)
            );
            if answered && no_amd {
                if slot.plan.on_human == HumanAction::Ivr {
                    self.ivr_start(now, id);
                } else {
                    self.acd_enqueue(now, id);
                }
            }
        }
    }

    /// Calls that ended and only answer retransmissions now (see [`Linger`]).
    pub fn lingering_calls(&self) -> usize {
        self.lingering.len()
    }

    /// Moves pings to send and trunk state changes to the output.
    fn drain_trunks(&mut self) {
        while let Some((dest, bytes)) = self.trunks.poll_transmit() {
            self.out
                .push_back(Output::Transmit(Transmit { dest, bytes }));
        }
        while let Some(c) = self.trunks.poll_change() {
            self.out.push_back(Output::Trunk(c));
        }
    }

    fn emit(&mut self, id: &str, at: Instant, kind: CallEventKind) {
        if let Some(slot) = self.calls.get(id) {
            self.out.push_back(Output::Event(CallEvent {
                call_id: id.to_string(),
                attempt: slot.attempt.clone(),
                at,
                kind,
            }));
        }
    }

    fn start_playback(&mut self, now: Instant, id: &str, what: Playback) {
        let abandon = match what {
            Playback::Abandon => self.abandon_message(),
            _ => None,
        };
        let Some(slot) = self.calls.get_mut(id) else {
            return;
        };
        slot.media.stop_waiting();
        let samples = match what {
            Playback::Voicemail => slot.plan.voicemail.clone(),
            Playback::Abandon => abandon,
            Playback::Prompt => slot.plan.prompt.clone(),
            // IVR prompts are played by the IVR glue (ivr_flow.rs), music on hold by the
            // agent's hold (agent_call.rs).
            Playback::Ivr | Playback::Hold => None,
        };
        let Some(samples) = samples.filter(|_| slot.leg.is_up() && slot.media.playing().is_none())
        else {
            return;
        };
        // Guard: whatever happens to the RTP side, the call ends 5 s after the audio would.
        let audio = Duration::from_millis(samples.len() as u64 / 8);
        slot.leg
            .extend_hold(Some(now + audio + Duration::from_secs(5)));
        slot.media = MediaPolicy::Playing(what);
        self.out.push_back(Output::Media(MediaCommand::Play {
            call_id: id.to_string(),
            samples,
        }));
        self.emit(id, now, CallEventKind::PlaybackStarted { what });
    }

    /// Feeds an event of a call's RTP session (AMD decision, beep, DTMF, timeout, end of a
    /// prompt), turns it into a call event and applies the campaign's actions.
    pub fn handle_media_event(&mut self, now: Instant, id: &str, ev: MediaEvent) {
        if !self.calls.contains_key(id) {
            return;
        }
        match ev {
            MediaEvent::Amd(d) => {
                self.emit(
                    id,
                    now,
                    CallEventKind::Amd {
                        result: d.result,
                        cause: d.cause.clone(),
                        decision_ms: d.decision_ms,
                        profile: d.profile.to_string(),
                    },
                );
                let slot = self.calls.get_mut(id).expect("checked above");
                if !slot.leg.is_up() {
                    return;
                }
                match (d.result, slot.plan.on_machine, slot.plan.on_human) {
                    (AmdResult::Machine, MachineAction::Hangup, _) => {
                        slot.leg.hang_up_answered(now, EndReason::AmdMachine)
                    }
                    (AmdResult::Machine, MachineAction::Voicemail, _) => {
                        let wait = slot.plan.voicemail_wait;
                        let audio = slot
                            .plan
                            .voicemail
                            .as_ref()
                            .map_or(0, |v| v.len() as u64 / 8);
                        slot.media = MediaPolicy::AwaitingBeep {
                            until: crate::time::later(now, wait),
                        };
                        slot.leg.extend_hold(Some(crate::time::later(
                            now,
                            wait + Duration::from_millis(audio) + Duration::from_secs(5),
                        )));
                    }
                    (AmdResult::Machine, MachineAction::Continue, _) => {}
                    (AmdResult::NotSure, _, HumanAction::Queue)
                        if !self.acd.as_ref().is_some_and(|a| a.config().queue_not_sure) =>
                    {
                        slot.leg.hang_up_answered(now, EndReason::AmdNotSure)
                    }
                    (_, _, HumanAction::Queue) => self.acd_enqueue(now, id),
                    (_, _, HumanAction::Hangup) => {
                        slot.leg.hang_up_answered(now, EndReason::AmdHuman)
                    }
                    (_, _, HumanAction::Prompt) => self.start_playback(now, id, Playback::Prompt),
                    (_, _, HumanAction::Ivr) => self.ivr_start(now, id),
                    (_, _, HumanAction::Continue) => {}
                }
            }
            MediaEvent::Beep {
                at_ms,
                frequency_hz,
            } => {
                self.emit(
                    id,
                    now,
                    CallEventKind::Beep {
                        at_ms,
                        frequency_hz,
                    },
                );
                if self
                    .calls
                    .get(id)
                    .is_some_and(|s| s.media.beep_deadline().is_some())
                {
                    self.start_playback(now, id, Playback::Voicemail);
                }
            }
            MediaEvent::Dtmf { digit, duration_ms } => {
                self.emit(
                    id,
                    now,
                    CallEventKind::Dtmf {
                        digit: digit.to_string(),
                        duration_ms,
                    },
                );
                self.ivr_dtmf(now, id, &digit.to_string());
            }
            MediaEvent::Recording { samples } => {
                let duration = Duration::from_millis(samples.len() as u64 / 8);
                self.handle_recording(now, id, duration, None);
                return;
            }
            MediaEvent::MediaTimeout { after_ms } => {
                self.emit(id, now, CallEventKind::MediaTimeout { after_ms });
                let slot = self.calls.get_mut(id).expect("checked above");
                // The far end gone without a BYE (no RTP is expected while on hold).
                if slot.plan.media_timeout_action == MediaTimeoutAction::Hangup
                    && !slot.leg.holding()
                    && !slot.leg.is_held()
                {
                    slot.leg.hang_up_answered(now, EndReason::MediaTimeout);
                }
            }
            MediaEvent::PlaybackDone => {
                let slot = self.calls.get_mut(id).expect("checked above");
                match slot.media.played() {
                    Some(Playback::Ivr) => {
                        self.ivr_playback_done(now, id);
                    }
                    Some(Playback::Hold) => self.hold_music_done(id),
                    Some(p) => slot.leg.hang_up_answered(now, p.end_reason()),
                    None => {}
                }
            }
        }
        self.after_touch(now, id);
    }

    /// The shell closed a call's RTP session: report its statistics (`media_stats`, after
    /// `terminated`).
    pub fn handle_media_closed(&mut self, now: Instant, id: &str, stats: RtpStats) {
        if let Some(Some((attempt, leg))) = self.closing_media.remove(id) {
            self.out.push_back(Output::Event(CallEvent {
                call_id: id.to_string(),
                attempt,
                at: now,
                kind: CallEventKind::MediaStats {
                    leg: leg.to_string(),
                    packets: stats.packets,
                    lost: stats.lost,
                    out_of_order: stats.out_of_order,
                    jitter_ms: stats.jitter / 8.0,
                    sent: stats.sent,
                    relayed: stats.relayed,
                },
            }));
        }
    }

    /// Media sessions asked to close whose statistics have not come back yet.
    pub fn media_closing(&self) -> usize {
        self.closing_media.len()
    }

    /// The next transmit or event.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let calls = self.timers.peek().map(|Reverse((t, _))| *t);
        [calls, self.trunks.poll_timeout(), self.acd_poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_ports_rest_then_come_back_before_unused_ones() {
        let t0 = Instant::now();
        let mut pool = RtpPortPool::new((20000, 20009));
        assert_eq!(pool.free(), 5);
        assert_eq!(pool.take(t0), Some(20000));
        assert_eq!(pool.take(t0), Some(20002));
        pool.give(t0, 20000);
        // Resting: an unused port goes first.
        let resting = t0 + RTP_PORT_REST - Duration::from_millis(1);
        assert_eq!(pool.take(resting), Some(20004));
        // Rested: the released port before the unused ones.
        assert_eq!(pool.take(t0 + RTP_PORT_REST), Some(20000));
        assert_eq!(pool.take(t0 + RTP_PORT_REST), Some(20006));
        assert_eq!(pool.free(), 1);
    }

    #[test]
    fn with_nothing_unused_the_longest_released_port_goes_first() {
        let t0 = Instant::now();
        let mut pool = RtpPortPool::new((20000, 20003));
        let (a, b) = (pool.take(t0).unwrap(), pool.take(t0).unwrap());
        assert_eq!(pool.take(t0), None);
        pool.give(t0, b);
        pool.give(t0 + Duration::from_millis(10), a);
        let soon = t0 + Duration::from_millis(20);
        assert_eq!(
            (pool.take(soon), pool.take(soon), pool.take(soon)),
            (Some(b), Some(a), None)
        );
    }

    #[test]
    fn a_skipped_port_is_tried_after_every_unused_one() {
        let t0 = Instant::now();
        let mut pool = RtpPortPool::new((20000, 20005));
        let p = pool.take(t0).unwrap();
        pool.skip(p);
        assert_eq!(
            [pool.take(t0), pool.take(t0), pool.take(t0)],
            [Some(20002), Some(20004), Some(p)]
        );
    }
}
