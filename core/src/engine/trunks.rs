//! The trunk group: several trunks with weights, their health, and OPTIONS keep-alive pings,
//! as a sans-IO state machine owned by the engine core.
//!
//! * **Selection**: smooth weighted round-robin (the nginx `upstream` algorithm) over the
//!   trunks that are up; a trunk with weight 3 beside one with weight 1 gets calls 3:1,
//!   interleaved (`a a b a`, not `a a a b`). The remaining trunks follow as failover hops:
//!   up ones by weight, then down ones (a call is never refused for want of a healthy trunk;
//!   the down ones are simply tried last). A `Retry-After` from a trunk holds new calls off
//!   it for that long (RFC 3261 §21.5.4); a weight-0 trunk is a backup that takes the calls
//!   when no weighted trunk is available.
//! * **Health**: a trunk is marked down after `down_after` consecutive failures (an INVITE
//!   answered 408/500/502/503/504 or not at all, refused by the network with an ICMP
//!   unreachable, or a failed OPTIONS ping) and up again on its first good answer (any
//!   response to an INVITE or ping but those codes). With every trunk down the campaign
//!   pauses itself ([`TrunkSet::health`]).
//! * **Keep-alive** (the PBX "qualify" idea): with an interval set, every trunk gets an
//!   OPTIONS request (RFC 3261 §11) that often; any final response but 408/5xx means the trunk
//!   is alive (404 or 405 included), no final response within the interval (or Timer F,
//!   whichever is first) counts as a failure. Without an interval, while every trunk is down
//!   each is pinged every [`DOWN_PING`] anyway (that is how they come back; with one up, a
//!   down trunk comes back through the calls it still gets as the last failover hop).
//! * **Startup check**: with keep-alive, the first OPTIONS goes out at start. Without it, each
//!   UDP trunk gets a CRLF keep-alive (RFC 5626 §4.4.1) instead: nothing answers it, but an
//!   ICMP unreachable for it reveals a closed port or an unreachable host, and is logged as a
//!   warning before the first call. (An OPTIONS to a far end that does not expect one can
//!   count as a failed call there: SIPp without `-aa` counts it towards `-m` and exits.)

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sip::message::wire::{
    CSeq, CallId, ContentLength, From, MaxForwards, Method, To, UserAgent, Via,
};

use crate::call::leg::{Destination, Hop};
use crate::sip::dialog::LocalParty;
use crate::sip::digest::Credentials;
use crate::sip::message::{Header, Inbound, Tokens, Transport, parse_uri_or_invalid};
use crate::sip::transaction::{ClientTxEvent, NonInviteClientTx, Timers};

/// One trunk as the engine uses it.
#[derive(Debug, Clone)]
pub struct TrunkRoute {
    /// Name in events, logs and the summary.
    pub name: String,
    /// Where its requests go: the trunk's address, or its outbound proxy's.
    pub addr: SocketAddr,
    /// Host part of the Request-URI (`10.0.0.1`, `carrier.example`, `[2001:db8::1]`).
    pub host: String,
    /// Port of the Request-URI.
    pub port: u16,
    /// UDP or TCP.
    pub transport: Transport,
    /// Share of new calls, relative to the other trunks' weights (0: failover only).
    pub weight: u32,
    /// Pre-loaded `Route` value (`<sip:proxy.example;lr>`) when an outbound proxy is used.
    pub route: Option<String>,
    /// Digest credentials for this trunk's 401/407 challenges.
    pub auth: Option<Arc<Credentials>>,
}

impl TrunkRoute {
    /// A trunk reached directly at an IP address (Request-URI host = that address), weight 1,
    /// no proxy, no credentials.
    pub fn direct(name: &str, addr: SocketAddr, transport: Transport) -> Self {
        Self {
            name: name.into(),
            addr,
            host: addr.ip().to_string(),
            port: addr.port(),
            transport,
            weight: 1,
            route: None,
            auth: None,
        }
    }

    /// The Request-URI for a number on this trunk: `sip:NUMBER@host:port[;transport=tcp]`.
    pub fn request_uri(&self, number: &str) -> String {
        crate::campaign::config::trunk_request_uri(number, &self.host, self.port, self.transport)
    }

    /// The URI pinged with OPTIONS: the trunk itself, `sip:host:port`.
    fn ping_uri(&self) -> String {
        let uri = self.request_uri("x");
        uri.replacen("sip:x@", "sip:", 1)
    }
}

/// Per-trunk counters and state, for the run summary and (later) metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrunkStats {
    /// The trunk's name.
    pub name: String,
    /// INVITEs sent to it (first tries and failovers).
    pub invites: u64,
    /// INVITEs it failed (failover codes or no answer).
    pub failures: u64,
    /// OPTIONS pings sent.
    pub pings: u64,
    /// Pings that failed.
    pub ping_failures: u64,
    /// Times it went down.
    pub went_down: u64,
    /// Times a `Retry-After` held new calls off it.
    pub holds: u64,
    /// Up at the time of reading.
    pub up: bool,
}

/// A trunk went down or came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkStateChange {
    /// The trunk's name.
    pub trunk: String,
    /// Its new state.
    pub up: bool,
    /// What decided it: `invite_failed`, `ping_failed`, `invite_answered`, `ping_answered`.
    pub reason: &'static str,
}

#[derive(Debug)]
struct Ping {
    call_id: String,
    tx: NonInviteClientTx,
    deadline: Instant,
}

/// How often a trunk that is down is pinged when no keep-alive interval is set.
pub const DOWN_PING: Duration = Duration::from_secs(2);

pub use crate::events::TrunkHealth;

#[derive(Debug)]
struct Entry {
    route: TrunkRoute,
    /// Smooth weighted round-robin state.
    current: i64,
    up: bool,
    /// What put it down.
    down_reason: &'static str,
    /// The startup CRLF probe went out and no ICMP refusal was seen yet.
    probed: bool,
    failures: u32,
    stats: TrunkStats,
    next_ping: Option<Instant>,
    ping: Option<Ping>,
    /// No new call starts here before then (a `Retry-After`).
    held_until: Option<Instant>,
}

/// The trunk group. See the module docs.
#[derive(Debug)]
pub struct TrunkSet {
    entries: Vec<Entry>,
    down_after: u32,
    keepalive: Option<Duration>,
    timers: Timers,
    changes: VecDeque<TrunkStateChange>,
    pings_out: VecDeque<(SocketAddr, Vec<u8>)>,
}

impl TrunkSet {
    /// A group of `routes` (at least one), all up. `keepalive`: OPTIONS interval (pings start
    /// with [`start_keepalive`](Self::start_keepalive)); `down_after`: consecutive failures
    /// that mark a trunk down (≥ 1).
    pub fn new(
        routes: Vec<TrunkRoute>,
        keepalive: Option<Duration>,
        down_after: u32,
        timers: Timers,
    ) -> Self {
        let entries = routes
            .into_iter()
            .map(|route| Entry {
                stats: TrunkStats {
                    name: route.name.clone(),
                    up: true,
                    ..Default::default()
                },
                route,
                current: 0,
                up: true,
                down_reason: "",
                probed: false,
                failures: 0,
                next_ping: None,
                ping: None,
                held_until: None,
            })
            .collect();
        Self {
            entries,
            down_after: down_after.max(1),
            keepalive,
            timers,
            changes: VecDeque::new(),
            pings_out: VecDeque::new(),
        }
    }

    /// The startup check at `now`: the first keep-alive pings, or without a keep-alive
    /// interval a CRLF keep-alive (`\r\n\r\n`, RFC 5626 §4.4.1) to each UDP trunk, whose
    /// ICMP refusal [`on_unreachable`](Self::on_unreachable) reports as a warning.
    pub fn start_keepalive(&mut self, now: Instant) {
        for e in &mut self.entries {
            if self.keepalive.is_some() {
                e.next_ping = Some(now);
            } else if e.route.transport == Transport::Udp {
                e.probed = true;
                self.pings_out
                    .push_back((e.route.addr, b"\r\n\r\n".to_vec()));
            }
        }
    }

    /// The group's health now: how many trunks are up, which are down and why.
    pub fn health(&self) -> TrunkHealth {
        TrunkHealth {
            total: self.entries.len(),
            down: self
                .entries
                .iter()
                .filter(|e| !e.up)
                .map(|e| (e.route.name.clone(), e.down_reason))
                .collect(),
        }
    }

    /// The network refused a message to `addr` (ICMP port or host unreachable): a ping in
    /// progress to it fails now. Returns the trunks at that address.
    pub fn on_unreachable(&mut self, now: Instant, addr: SocketAddr) -> Vec<usize> {
        let hit: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.entries[i].route.addr == addr)
            .collect();
        for &i in &hit {
            let e = &mut self.entries[i];
            if std::mem::take(&mut e.probed) {
                tracing::warn!(
                    trunk = %e.route.name, %addr,
                    "startup check: the trunk's address refuses datagrams (ICMP unreachable): nothing listens there; calls will fail as network_error until it does"
                );
            }
            if e.ping.take().is_some() {
                self.on_failure(now, i, "ping_failed");
            }
        }
        hit
    }

    /// Where a leg's message goes: trunk `i`'s address (or its outbound proxy's), or the
    /// literal address. `None` for a trunk index the group does not have.
    pub fn resolve(&self, d: Destination) -> Option<SocketAddr> {
        match d {
            Destination::Trunk(i) => self.entries.get(i).map(|e| e.route.addr),
            Destination::Addr(a) => Some(a),
        }
    }

    /// True when trunk `i` is up.
    pub fn is_up(&self, i: usize) -> bool {
        self.entries.get(i).is_some_and(|e| e.up)
    }

    /// Counters and state of every trunk.
    pub fn stats(&self) -> Vec<TrunkStats> {
        self.entries
            .iter()
            .map(|e| TrunkStats {
                up: e.up,
                ..e.stats.clone()
            })
            .collect()
    }

    /// The hops for a new call to `number` at `now`: the weighted pick first, then the other
    /// trunks (available ones by weight, down or held ones last).
    pub fn hops(&mut self, now: Instant, number: &str) -> Vec<Hop> {
        let order = self.order(now);
        order
            .into_iter()
            .map(|i| {
                let r = &self.entries[i].route;
                Hop {
                    trunk: i,
                    name: r.name.clone(),
                    request_uri: r.request_uri(number),
                    route: r.route.clone(),
                    auth: r.auth.clone(),
                }
            })
            .collect()
    }

    fn order(&mut self, now: Instant) -> Vec<usize> {
        // Available: up, and not held by a Retry-After. The weighted pick is among the
        // available trunks with a weight; when none has one, among the available (weight-0
        // backups take over); when none is available at all, among the weighted ones anyway.
        let available = |e: &Entry| e.up && e.held_until.is_none_or(|t| t <= now);
        let any_weighted = self
            .entries
            .iter()
            .any(|e| available(e) && e.route.weight > 0);
        let any_available = self.entries.iter().any(available);
        let eligible = |e: &Entry| match (any_weighted, any_available) {
            (true, _) => available(e) && e.route.weight > 0,
            (false, true) => available(e),
            (false, false) => e.route.weight > 0,
        };
        // A backup's share: weight 0 counts as 1 when only backups are left.
        let weight = |e: &Entry| i64::from(e.route.weight.max(1));
        let total: i64 = self
            .entries
            .iter()
            .filter(|e| eligible(e))
            .map(weight)
            .sum();
        let mut first = None;
        if total > 0 {
            for e in self.entries.iter_mut().filter(|e| eligible(e)) {
                e.current += weight(e);
            }
            // The highest counter wins (the first one on ties); it pays the total back.
            let mut best: Option<usize> = None;
            for (i, e) in self.entries.iter().enumerate() {
                if eligible(e) && best.is_none_or(|b| e.current > self.entries[b].current) {
                    best = Some(i);
                }
            }
            if let Some(b) = best {
                self.entries[b].current -= total;
                first = Some(b);
            }
        }
        let first = first.unwrap_or(0);
        let mut rest: Vec<usize> = (0..self.entries.len()).filter(|&i| i != first).collect();
        rest.sort_by_key(|&i| {
            let e = &self.entries[i];
            (!available(e), std::cmp::Reverse(e.route.weight), i)
        });
        let mut out = vec![first];
        out.extend(rest);
        out
    }

    /// Trunk `i` answered `Retry-After: secs` (typically on a 503): no new call starts on it
    /// before then (RFC 3261 §21.5.4); it stays a last-resort failover hop.
    pub fn hold(&mut self, i: usize, until: Instant) {
        if let Some(e) = self.entries.get_mut(i)
            && e.held_until.is_none_or(|t| t < until)
        {
            e.held_until = Some(until);
            e.stats.holds += 1;
        }
    }

    /// An INVITE went to trunk `i`.
    pub fn on_invite_sent(&mut self, i: usize) {
        if let Some(e) = self.entries.get_mut(i) {
            e.stats.invites += 1;
        }
    }

    /// Trunk `i` answered something (an INVITE or a ping).
    pub fn on_success(&mut self, i: usize, reason: &'static str) {
        let keepalive = self.keepalive;
        let Some(e) = self.entries.get_mut(i) else {
            return;
        };
        e.failures = 0;
        e.probed = false;
        if !e.up {
            e.up = true;
            self.changes.push_back(TrunkStateChange {
                trunk: e.route.name.clone(),
                up: true,
                reason,
            });
        }
        if keepalive.is_none() {
            // Without keep-alive, pings only while every trunk is down: one is up now.
            for e in &mut self.entries {
                e.next_ping = None;
            }
        }
    }

    /// Trunk `i` failed an INVITE or a ping at `now` (`reason`: `invite_failed`,
    /// `no_response`, `network_error`, `ping_failed`). After `down_after` failures in a row
    /// it is down; with every trunk down (and no keep-alive), each is pinged every
    /// [`DOWN_PING`] until one answers.
    pub fn on_failure(&mut self, now: Instant, i: usize, reason: &'static str) {
        let down_after = self.down_after;
        let keepalive = self.keepalive;
        let Some(e) = self.entries.get_mut(i) else {
            return;
        };
        if reason == "ping_failed" {
            e.stats.ping_failures += 1;
        } else {
            e.stats.failures += 1;
        }
        e.failures += 1;
        if e.up && e.failures >= down_after {
            e.up = false;
            e.down_reason = reason;
            e.stats.went_down += 1;
            self.changes.push_back(TrunkStateChange {
                trunk: e.route.name.clone(),
                up: false,
                reason,
            });
            // Without keep-alive, a down trunk beside an up one comes back through the calls
            // it still gets as a last failover hop; with none up, nothing reaches them: ping
            // them all until one answers.
            if keepalive.is_none() && self.entries.iter().all(|e| !e.up) {
                let at = crate::time::later(now, DOWN_PING);
                for e in &mut self.entries {
                    if e.ping.is_none() {
                        e.next_ping = Some(e.next_ping.map_or(at, |t| t.min(at)));
                    }
                }
            }
        }
    }

    /// The next state change to report.
    pub fn poll_change(&mut self) -> Option<TrunkStateChange> {
        self.changes.pop_front()
    }

    /// The next ping (or ping retransmission) to send.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.pings_out.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries
            .iter()
            .flat_map(|e| {
                [
                    e.next_ping,
                    e.ping.as_ref().map(|p| p.deadline),
                    e.ping.as_ref().and_then(|p| p.tx.poll_timeout()),
                ]
            })
            .flatten()
            .min()
    }

    /// Sends due pings, retransmits pending ones, and fails those past their deadline.
    pub fn handle_timeout(&mut self, now: Instant, local: &LocalParty, tokens: &mut Tokens) {
        let mut failed = Vec::new();
        let all_down = self.entries.iter().all(|e| !e.up);
        for i in 0..self.entries.len() {
            let e = &mut self.entries[i];
            if let Some(p) = &mut e.ping {
                let timed_out = matches!(p.tx.handle_timeout(now), Some(ClientTxEvent::Timeout));
                while let Some(b) = p.tx.poll_transmit() {
                    self.pings_out.push_back((e.route.addr, b));
                }
                if timed_out || now >= p.deadline {
                    e.ping = None;
                    failed.push(i);
                }
            }
            // The keep-alive interval; without one, DOWN_PING while every trunk is down.
            let interval = match (self.keepalive, all_down) {
                (Some(k), _) => Some(k),
                (None, true) => Some(DOWN_PING),
                (None, false) => None,
            };
            let Some(interval) = interval else {
                e.next_ping = None;
                continue;
            };
            if e.ping.is_none() && e.next_ping.is_some_and(|t| t <= now) {
                e.next_ping = Some(crate::time::later(now, interval));
                let deadline = crate::time::later(now, interval.min(self.timers.t1x64()));
                let (call_id, bytes, branch) = options_request(&e.route, local, tokens);
                let mut tx = NonInviteClientTx::new(
                    now,
                    branch,
                    "OPTIONS",
                    bytes,
                    local.transport.is_reliable(),
                    self.timers,
                );
                while let Some(b) = tx.poll_transmit() {
                    self.pings_out.push_back((e.route.addr, b));
                }
                e.stats.pings += 1;
                e.ping = Some(Ping {
                    call_id,
                    tx,
                    deadline,
                });
            }
        }
        for i in failed {
            self.on_failure(now, i, "ping_failed");
        }
    }

    /// Feeds a response; returns true when it answered one of our pings (consumed).
    pub fn handle_response(&mut self, now: Instant, msg: &Inbound) -> bool {
        let Some(status) = msg.status else {
            return false;
        };
        let Some(i) = self
            .entries
            .iter()
            .position(|e| e.ping.as_ref().is_some_and(|p| p.call_id == msg.call_id()))
        else {
            return false;
        };
        let e = &mut self.entries[i];
        let p = e.ping.as_mut().expect("found above");
        if !p.tx.matches(msg.branch(), "OPTIONS") {
            return true;
        }
        match p.tx.on_response(now, status) {
            ClientTxEvent::Success(_) | ClientTxEvent::Failure(_) => {
                e.ping = None;
                if status == 408 || status >= 500 {
                    self.on_failure(now, i, "ping_failed");
                } else {
                    self.on_success(i, "ping_answered");
                }
            }
            _ => {}
        }
        true
    }

    /// Applies an INVITE outcome at `now`: `responded` false for a failover code (408, 5xx)
    /// — see [`on_invite_refused`](Self::on_invite_refused).
    pub fn on_invite_outcome(&mut self, now: Instant, i: usize, responded: bool) {
        if responded {
            self.on_success(i, "invite_answered");
        } else {
            self.on_invite_refused(now, i);
        }
    }

    /// Trunk `i` answered an INVITE with a failover code (408, 500, 502, 503, 504) at `now`.
    /// It is alive: this counts towards `down_after` only where there is somewhere else to
    /// route (another trunk) or a keep-alive to bring it back; a lone trunk's refusals are
    /// counted, and the call rate's congestion back-off deals with them. A trunk that does not
    /// answer at all ([`on_failure`](Self::on_failure) with `no_response` or `network_error`)
    /// goes down whatever the group.
    pub fn on_invite_refused(&mut self, now: Instant, i: usize) {
        if self.keepalive.is_some() || self.entries.len() > 1 {
            self.on_failure(now, i, "invite_failed");
        } else if let Some(e) = self.entries.get_mut(i) {
            e.stats.failures += 1;
        }
    }
}

/// An out-of-dialog OPTIONS to a trunk (RFC 3261 §11.1): returns (Call-ID, bytes, branch).
fn options_request(
    t: &TrunkRoute,
    local: &LocalParty,
    tokens: &mut Tokens,
) -> (String, Vec<u8>, String) {
    let call_id = format!("ping-{}@outdial", tokens.token(16));
    let (via, branch) = local.via(tokens);
    let uri = t.ping_uri();
    let mut h = vec![
        Header::Via(Via::new(via)),
        Header::MaxForwards(MaxForwards::new("70")),
    ];
    if let Some(r) = &t.route {
        h.push(Header::Route(crate::sip::message::wire::Route::new(
            r.clone(),
        )));
    }
    h.extend([
        Header::From(From::new(format!(
            "<sip:outdial@{}>;tag={}",
            local.sent_by,
            tokens.token(12)
        ))),
        Header::To(To::new(format!("<{uri}>"))),
        Header::CallId(CallId::new(call_id.clone())),
        Header::CSeq(CSeq::new("1 OPTIONS")),
        Header::Other("Accept".into(), "application/sdp".into()),
        Header::UserAgent(UserAgent::new(local.user_agent.clone())),
        Header::ContentLength(ContentLength::new("0")),
    ]);
    let bytes =
        crate::sip::message::request_bytes(Method::Options, parse_uri_or_invalid(&uri), &h, &[]);
    (call_id, bytes, branch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, port: u16, weight: u32) -> TrunkRoute {
        TrunkRoute {
            name: name.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            host: "127.0.0.1".into(),
            port,
            transport: Transport::Udp,
            weight,
            route: None,
            auth: None,
        }
    }

    fn local() -> LocalParty {
        LocalParty {
            sent_by: "127.0.0.1:5070".into(),
            transport: Transport::Udp,
            user_agent: "t".into(),
        }
    }

    #[test]
    fn smooth_weighted_round_robin() {
        let mut s = TrunkSet::new(
            vec![route("a", 5060, 3), route("b", 5061, 1)],
            None,
            2,
            Timers::default(),
        );
        let firsts: String = (0..8)
            .map(|_| s.hops(t0(), "1")[0].name.clone())
            .collect::<Vec<_>>()
            .join("");
        assert_eq!(firsts, "aabaaaba");
        let h = s.hops(t0(), "+1555");
        assert_eq!(h.len(), 2);
        assert_ne!(h[0].trunk, h[1].trunk);
        assert_eq!(
            h[1].request_uri,
            format!("sip:+1555@127.0.0.1:{}", 5060 + h[1].trunk)
        );
    }

    #[test]
    fn down_after_failures_then_last_and_back_up() {
        let mut s = TrunkSet::new(
            vec![route("a", 5060, 1), route("b", 5061, 1)],
            None,
            2,
            Timers::default(),
        );
        s.on_invite_outcome(t0(), 0, false);
        assert!(s.poll_change().is_none());
        s.on_invite_outcome(t0(), 0, false);
        let c = s.poll_change().unwrap();
        assert_eq!((c.trunk.as_str(), c.up), ("a", false));
        for _ in 0..4 {
            let h = s.hops(t0(), "1");
            assert_eq!(h[0].name, "b", "a down trunk is never picked first");
            assert_eq!(h[1].name, "a", "but stays a failover hop");
        }
        s.on_invite_outcome(t0(), 0, true);
        assert!(s.poll_change().unwrap().up);
    }

    fn t0() -> Instant {
        Instant::now()
    }

    #[test]
    fn zero_weight_is_failover_only() {
        let mut s = TrunkSet::new(
            vec![route("primary", 5060, 1), route("backup", 5061, 0)],
            None,
            1,
            Timers::default(),
        );
        for _ in 0..3 {
            assert_eq!(s.hops(t0(), "1")[0].name, "primary");
        }
        s.on_invite_outcome(t0(), 0, false);
        // The weighted trunk is down: the backup takes the calls, the primary is the
        // failover hop.
        let h = s.hops(t0(), "1");
        assert_eq!(
            (h[0].name.as_str(), h[1].name.as_str()),
            ("backup", "primary")
        );
        // Every trunk down: the weighted one is tried first again.
        s.on_invite_outcome(t0(), 1, false);
        assert_eq!(s.hops(t0(), "1")[0].name, "primary");
    }

    #[test]
    fn retry_after_holds_a_trunk_until_then() {
        let now = Instant::now();
        let mut s = TrunkSet::new(
            vec![route("a", 5060, 1), route("b", 5061, 1)],
            None,
            2,
            Timers::default(),
        );
        s.hold(0, now + Duration::from_secs(30));
        for _ in 0..4 {
            let h = s.hops(now + Duration::from_secs(1), "1");
            assert_eq!((h[0].name.as_str(), h[1].name.as_str()), ("b", "a"));
        }
        let firsts: Vec<String> = (0..4)
            .map(|_| s.hops(now + Duration::from_secs(31), "1")[0].name.clone())
            .collect();
        assert!(firsts.contains(&"a".to_string()), "{firsts:?}");
        assert_eq!(s.stats()[0].holds, 1);
    }

    #[test]
    fn a_lone_trunk_goes_down_is_pinged_while_down_and_comes_back() {
        let t0 = Instant::now();
        let mut s = TrunkSet::new(vec![route("a", 5060, 1)], None, 2, Timers::default());
        // The startup check without keep-alive: a CRLF keep-alive, no OPTIONS.
        s.start_keepalive(t0);
        let (dest, probe) = s.poll_transmit().unwrap();
        assert_eq!((dest.port(), probe.as_slice()), (5060, &b"\r\n\r\n"[..]));
        assert!(s.poll_transmit().is_none());
        assert_eq!(s.poll_timeout(), None, "no pings while the trunk is up");
        // ICMP refuses it: a warning only (the trunk stays up, nothing counted).
        assert_eq!(s.on_unreachable(t0, dest), vec![0]);
        assert!(s.is_up(0));
        // A lone trunk's 503s do not put it down (it answers; the back-off slows the calls).
        s.on_invite_outcome(t0, 0, false);
        s.on_invite_outcome(t0, 0, false);
        assert!(!s.health().all_down());
        // Two INVITEs without a word: down, and pinged every DOWN_PING from then on.
        s.on_failure(t0, 0, "no_response");
        assert!(!s.health().all_down());
        s.on_failure(t0, 0, "network_error");
        let h = s.health();
        assert!(h.all_down());
        assert_eq!(h.down, vec![("a".to_string(), "network_error")]);
        assert_eq!(s.poll_timeout(), Some(t0 + DOWN_PING));
        s.handle_timeout(t0 + DOWN_PING, &local(), &mut Tokens::seeded(7));
        let (_, ping) = s.poll_transmit().unwrap();
        let req = crate::sip::message::parse_datagram(&ping).unwrap();
        assert_eq!(req.method.as_deref(), Some("OPTIONS"));
        // The far end is still closed: the ping fails at once on ICMP, the next one follows.
        s.on_unreachable(t0 + DOWN_PING, dest);
        assert!(s.health().all_down());
        s.handle_timeout(t0 + DOWN_PING * 2, &local(), &mut Tokens::seeded(7));
        let (_, ping) = s.poll_transmit().unwrap();
        let req = crate::sip::message::parse_datagram(&ping).unwrap();
        // Now it answers: up.
        let resp = crate::sip::message::response_to(&req, 200, Some("x"), vec![], vec![]);
        let resp = crate::sip::message::parse_datagram(&resp).unwrap();
        assert!(s.handle_response(t0 + DOWN_PING * 2, &resp));
        assert!(!s.health().all_down());
        assert_eq!(s.poll_timeout(), None, "no pings once it is up again");
    }

    #[test]
    fn pings_mark_down_and_up() {
        let t0 = Instant::now();
        let mut s = TrunkSet::new(
            vec![route("a", 5060, 1)],
            Some(Duration::from_secs(2)),
            1,
            Timers::default(),
        );
        s.start_keepalive(t0);
        s.handle_timeout(t0, &local(), &mut Tokens::seeded(7));
        let (dest, bytes) = s.poll_transmit().unwrap();
        assert_eq!(dest.port(), 5060);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with("OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\n"),
            "{text}"
        );
        // No answer within the interval: down (and the next ping goes out at once).
        let mut t = t0;
        let mut last = None;
        while let Some(w) = s.poll_timeout() {
            if w > t0 + Duration::from_secs(2) {
                break;
            }
            t = w;
            s.handle_timeout(t, &local(), &mut Tokens::seeded(7));
            while let Some((_, b)) = s.poll_transmit() {
                last = Some(b);
            }
        }
        assert!(!s.is_up(0), "at {:?}", t - t0);
        assert_eq!(s.poll_change().unwrap().reason, "ping_failed");
        // The next ping is answered 404: alive.
        let bytes = last.unwrap();
        let req = crate::sip::message::parse_datagram(&bytes).unwrap();
        let resp = crate::sip::message::response_to(&req, 404, Some("x"), vec![], vec![]);
        let resp = crate::sip::message::parse_datagram(&resp).unwrap();
        assert!(s.handle_response(t0 + Duration::from_secs(2), &resp));
        assert!(s.is_up(0));
        assert_eq!(s.stats()[0].pings, 2);
        assert_eq!(s.stats()[0].ping_failures, 1);
    }
}
