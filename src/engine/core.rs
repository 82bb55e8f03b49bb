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
use std::time::Instant;

use crate::call::disposition::Disposition;
use crate::call::leg::{ALLOW, CallLeg, CallSpec, Destination};
use crate::events::{AttemptRef, CallEvent, CallEventKind, HangupBy};
use crate::sip::dialog::LocalParty;
use crate::sip::message::{
    Header, Transport, bad_request_response, looks_like_request, parse_datagram,
    parse_stream_message, random_token, response_to,
};
use crate::sip::transaction::Timers;

/// Static configuration of an engine core.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Our SIP identity (Via sent-by, Contact, transport, User-Agent).
    pub local: LocalParty,
    /// The trunk's resolved address: the next hop of every out-of-dialog request.
    pub trunk: SocketAddr,
    /// RFC 3261 timer values.
    pub timers: Timers,
    /// First and last RTP port (inclusive) to offer; even ports only are used (RFC 3550 §11).
    pub rtp_ports: (u16, u16),
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
}

/// Counters of the engine core (exposed in the run summary; Prometheus later).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
}

/// A new random Call-ID (`<24 hex>@outdial`).
pub fn new_call_id() -> String {
    format!("{}@outdial", random_token(24))
}

/// Even RTP ports from a range, handed out and taken back.
#[derive(Debug)]
struct RtpPortPool {
    free: VecDeque<u16>,
}

impl RtpPortPool {
    fn new((lo, hi): (u16, u16)) -> Self {
        let start = lo + (lo % 2);
        Self {
            free: (start..=hi).step_by(2).collect(),
        }
    }
    fn take(&mut self) -> Option<u16> {
        self.free.pop_front()
    }
    fn give(&mut self, p: u16) {
        self.free.push_back(p);
    }
}

struct Slot {
    leg: CallLeg,
    attempt: AttemptRef,
    scheduled: Option<Instant>,
    /// The RTP port, until the call ends (then it goes back to the pool at once, even if the
    /// leg lingers to absorb retransmissions).
    port: Option<u16>,
}

/// The sans-IO engine core. See the module docs.
pub struct Engine {
    cfg: EngineConfig,
    calls: HashMap<String, Slot>,
    timers: BinaryHeap<Reverse<(Instant, String)>>,
    ports: RtpPortPool,
    out: VecDeque<Output>,
    stats: EngineStats,
    logged_sources: HashSet<SocketAddr>,
}

impl Engine {
    /// A new engine with no calls.
    pub fn new(cfg: EngineConfig) -> Self {
        Self {
            ports: RtpPortPool::new(cfg.rtp_ports),
            cfg,
            calls: HashMap::new(),
            timers: BinaryHeap::new(),
            out: VecDeque::new(),
            stats: EngineStats::default(),
            logged_sources: HashSet::new(),
        }
    }

    /// Counters so far (calls still held included).
    pub fn stats(&self) -> EngineStats {
        let mut s = self.stats;
        for slot in self.calls.values() {
            s.retransmissions_sent += u64::from(slot.leg.retransmissions_sent());
            s.duplicates_received += u64::from(slot.leg.duplicates_received());
        }
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

    /// RTP ports currently free.
    pub fn free_rtp_ports(&self) -> usize {
        self.ports.free.len()
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
        let Some(port) = self.ports.take() else {
            for kind in [
                CallEventKind::Initiated,
                CallEventKind::Terminated {
                    sip_status: None,
                    reason_phrase: None,
                    q850_cause: None,
                    hangup_by: HangupBy::Local,
                    disposition: Disposition::Failed,
                    detail: "no_rtp_port".into(),
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
        let leg = CallLeg::start(
            now,
            call_id.clone(),
            spec,
            self.cfg.local.clone(),
            self.cfg.timers,
        );
        self.calls.insert(
            call_id.clone(),
            Slot {
                leg,
                attempt,
                scheduled: None,
                port: Some(port),
            },
        );
        self.after_touch(&call_id);
    }

    /// Hangs up every call (CANCEL or BYE as fits each one's state).
    pub fn hang_up_all(&mut self, now: Instant) {
        let ids: Vec<String> = self.calls.keys().cloned().collect();
        for id in ids {
            if let Some(s) = self.calls.get_mut(&id) {
                s.leg.hang_up(now);
            }
            self.after_touch(&id);
        }
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
        let call_id = msg.call_id.clone();
        if let Some(slot) = self.calls.get_mut(&call_id) {
            slot.leg.handle_message(now, &msg, src);
            self.after_touch(&call_id);
            return;
        }
        self.stats.stray_messages += 1;
        // Out of dialog / unknown call.
        let Some(method) = msg.method.as_deref() else {
            return; // a response for a call we no longer know: drop it
        };
        let (code, extra) = match method {
            "ACK" => return,
            "OPTIONS" => (200, vec![Header::Allow(rsipstack::sip::Allow::new(ALLOW))]),
            _ if msg.to_tag.is_some() => (481, vec![]),
            "INVITE" => (480, vec![]),
            "BYE" | "CANCEL" => (481, vec![]),
            _ => (405, vec![Header::Allow(rsipstack::sip::Allow::new(ALLOW))]),
        };
        let tag = random_token(12);
        let resp = response_to(&msg, code, Some(&tag), extra, vec![]);
        self.out.push_back(Output::Transmit(Transmit {
            dest: src,
            bytes: resp,
        }));
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, id))) = self.timers.pop() else {
                break;
            };
            let Some(slot) = self.calls.get_mut(&id) else {
                continue;
            };
            if slot.scheduled != Some(at) {
                continue; // stale entry
            }
            slot.scheduled = None;
            slot.leg.handle_timeout(now);
            self.after_touch(&id);
        }
    }

    /// Collects a leg's output and events, reschedules it, and drops it when finished.
    fn after_touch(&mut self, id: &str) {
        let trunk = self.cfg.trunk;
        let Some(slot) = self.calls.get_mut(id) else {
            return;
        };
        while let Some(t) = slot.leg.poll_transmit() {
            let dest = match t.dest {
                Destination::Trunk => trunk,
                Destination::Addr(a) => a,
            };
            self.out.push_back(Output::Transmit(Transmit {
                dest,
                bytes: t.bytes,
            }));
        }
        while let Some((at, kind)) = slot.leg.poll_event() {
            self.out.push_back(Output::Event(CallEvent {
                call_id: id.to_string(),
                attempt: slot.attempt.clone(),
                at,
                kind,
            }));
        }
        if slot.leg.has_ended()
            && let Some(port) = slot.port.take()
        {
            self.ports.give(port);
        }
        if slot.leg.is_finished() {
            self.stats.retransmissions_sent += u64::from(slot.leg.retransmissions_sent());
            self.stats.duplicates_received += u64::from(slot.leg.duplicates_received());
            self.calls.remove(id);
            return;
        }
        let next = slot.leg.poll_timeout();
        if next != slot.scheduled {
            slot.scheduled = next;
            if let Some(t) = next {
                self.timers.push(Reverse((t, id.to_string())));
            }
        }
    }

    /// The next transmit or event.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }
}
