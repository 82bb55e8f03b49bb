//! RFC 3261 §17 transactions as sans-IO state machines.
//!
//! Each transaction is fed inputs (a matching message, the current time) and hands back what
//! to send ([`poll_transmit`](InviteClientTx::poll_transmit)) and when it next needs to be
//! woken ([`poll_timeout`](InviteClientTx::poll_timeout)). No sockets, no clock reads: tests
//! drive them with a virtual clock.
//!
//! | machine | RFC 3261 | timers |
//! |---|---|---|
//! | [`InviteClientTx`] | §17.1.1, Figure 5 | A (retransmit INVITE over UDP), B (64·T1 timeout), D (absorb final retransmissions) |
//! | [`NonInviteClientTx`] | §17.1.2, Figure 6 | E (retransmit, capped at T2), F (64·T1 timeout), K (T4) |
//! | [`ServerTx`] | §17.2.2, Figure 8 | J (64·T1) |
//! | [`InviteServerTx`] | §17.2.1 + §13.3.1.4 | G (retransmit final, capped at T2), H (64·T1 wait for ACK), I (T4) |
//!
//! Matching (§17.1.3 / §17.2.3): a response belongs to a client transaction when its top Via
//! `branch` and its CSeq method equal the transaction's; a request belongs to a server
//! transaction when its top Via `branch` and method equal it (ACK matches the INVITE).

use std::time::{Duration, Instant};

/// The RFC 3261 timer base values (Table 4). Tests shrink them; the defaults are the RFC's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// T1, the RTT estimate: 500 ms.
    pub t1: Duration,
    /// T2, the cap on non-INVITE request and INVITE response retransmit intervals: 4 s.
    pub t2: Duration,
    /// T4, the longest time a message stays in the network: 5 s.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// 64·T1: Timers B, F, H and J (32 s with the default T1).
    pub fn t1x64(&self) -> Duration {
        self.t1 * 64
    }
}

/// Messages a transaction has queued for sending, oldest first.
#[derive(Debug, Default)]
struct Outbox(std::collections::VecDeque<Vec<u8>>);

impl Outbox {
    fn with(first: Vec<u8>) -> Self {
        Self(std::collections::VecDeque::from([first]))
    }
    fn push(&mut self, m: Vec<u8>) {
        self.0.push_back(m);
    }
    fn pop(&mut self) -> Option<Vec<u8>> {
        self.0.pop_front()
    }
}

/// What a client transaction tells its user (the call leg) after an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientTxEvent {
    /// A 1xx to pass up.
    Provisional(u16),
    /// A 2xx to pass up. For INVITE the transaction ends here; the ACK is the dialog's job
    /// (§13.2.2.4) and so is absorbing 2xx retransmissions.
    Success(u16),
    /// A 3xx–6xx to pass up (first copy only). For INVITE the transaction already queued
    /// the ACK (§17.1.1.3).
    Failure(u16),
    /// A retransmission the transaction handled itself (re-sent the ACK, or ignored it).
    Absorbed,
    /// Timer B or F fired: no final response (§17.1.1.2 / §17.1.2.2). Report as 408.
    Timeout,
}

/// Timer A's next firing and its current interval.
#[derive(Debug, Clone, Copy)]
struct Retransmit {
    at: Instant,
    interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IctState {
    Calling,
    Proceeding,
    Completed,
    Terminated,
}

/// INVITE client transaction (RFC 3261 §17.1.1).
#[derive(Debug)]
pub struct InviteClientTx {
    branch: String,
    state: IctState,
    request: Vec<u8>,
    ack: Option<Vec<u8>>,
    reliable: bool,
    timers: Timers,
    timer_a: Option<Retransmit>,
    timer_b: Option<Instant>,
    timer_d: Option<Instant>,
    out: Outbox,
    retransmissions: u32,
}

impl InviteClientTx {
    /// Starts the transaction: queues the INVITE and arms Timer B (and Timer A over UDP).
    /// `request` is the serialised INVITE whose top Via carries `branch`.
    pub fn new(
        now: Instant,
        branch: String,
        request: Vec<u8>,
        reliable: bool,
        timers: Timers,
    ) -> Self {
        let timer_a = (!reliable).then_some(Retransmit {
            at: now + timers.t1,
            interval: timers.t1,
        });
        Self {
            branch,
            state: IctState::Calling,
            out: Outbox::with(request.clone()),
            request,
            ack: None,
            reliable,
            timers,
            timer_a,
            timer_b: Some(now + timers.t1x64()),
            timer_d: None,
            retransmissions: 0,
        }
    }

    /// The branch parameter this transaction is keyed by.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The serialised INVITE while it may still be re-sent (empty once a final response or
    /// Timer B ended the transaction).
    pub fn request(&self) -> &[u8] {
        &self.request
    }

    /// How many times the INVITE was retransmitted by Timer A.
    pub fn retransmissions(&self) -> u32 {
        self.retransmissions
    }

    /// True once the transaction is over (Timer D fired, a 2xx arrived, or Timer B fired).
    pub fn is_terminated(&self) -> bool {
        self.state == IctState::Terminated
    }

    /// True while no final response has been received (Calling or Proceeding).
    pub fn is_pending(&self) -> bool {
        matches!(self.state, IctState::Calling | IctState::Proceeding)
    }

    /// Feeds a response whose branch and CSeq method matched this transaction.
    /// `build_ack` is called once, on the first 3xx–6xx, to build the ACK of §17.1.1.3
    /// (same branch, To with the response's tag); it is re-sent for every retransmission.
    pub fn on_response(
        &mut self,
        now: Instant,
        status: u16,
        build_ack: impl FnOnce() -> Vec<u8>,
    ) -> ClientTxEvent {
        match (self.state, status) {
            (IctState::Calling | IctState::Proceeding, 100..=199) => {
                self.state = IctState::Proceeding;
                self.timer_a = None;
                // Timer B only guards the Calling state (Figure 5).
                self.timer_b = None;
                ClientTxEvent::Provisional(status)
            }
            (IctState::Calling | IctState::Proceeding, 200..=299) => {
                self.terminate();
                ClientTxEvent::Success(status)
            }
            (IctState::Calling | IctState::Proceeding, _) => {
                let ack = build_ack();
                self.out.push(ack.clone());
                self.ack = Some(ack);
                self.state = IctState::Completed;
                self.request = Vec::new();
                self.timer_a = None;
                self.timer_b = None;
                self.timer_d = Some(
                    now + if self.reliable {
                        Duration::ZERO
                    } else {
                        Duration::from_secs(32).max(self.timers.t1x64() / 2)
                    },
                );
                ClientTxEvent::Failure(status)
            }
            (IctState::Completed, 300..=699) => {
                if let Some(ack) = &self.ack {
                    self.out.push(ack.clone());
                }
                ClientTxEvent::Absorbed
            }
            _ => ClientTxEvent::Absorbed,
        }
    }

    /// Fires due timers. Returns [`ClientTxEvent::Timeout`] when Timer B expires.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<ClientTxEvent> {
        if let Some(b) = self.timer_b
            && now >= b
        {
            self.terminate();
            return Some(ClientTxEvent::Timeout);
        }
        if let Some(a) = self.timer_a
            && now >= a.at
        {
            self.out.push(self.request.clone());
            self.retransmissions += 1;
            let interval = a.interval * 2;
            self.timer_a = Some(Retransmit {
                at: now + interval,
                interval,
            });
        }
        if let Some(d) = self.timer_d
            && now >= d
        {
            self.terminate();
        }
        None
    }

    /// The ACK of a non-2xx final response, while Timer D runs (re-sent to retransmissions of
    /// that response), and when Timer D fires.
    pub fn completed_ack(&self) -> Option<(&[u8], Instant)> {
        match (self.state, &self.ack, self.timer_d) {
            (IctState::Completed, Some(a), Some(d)) => Some((a, d)),
            _ => None,
        }
    }

    /// Gives up on a transaction that got no response at all (the call moved to another
    /// trunk): no more retransmissions; a late response is absorbed.
    pub fn abandon(&mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        self.state = IctState::Terminated;
        self.timer_a = None;
        self.timer_b = None;
        self.timer_d = None;
        // Never re-sent again: free it (a call's leg lingers for Timer D/K after it ends).
        self.request = Vec::new();
    }

    /// The next message to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.timer_a.map(|a| a.at), self.timer_b, self.timer_d]
            .into_iter()
            .flatten()
            .min()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NictState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

/// Non-INVITE client transaction (RFC 3261 §17.1.2): BYE, CANCEL, OPTIONS.
#[derive(Debug)]
pub struct NonInviteClientTx {
    branch: String,
    method: &'static str,
    state: NictState,
    request: Vec<u8>,
    reliable: bool,
    timers: Timers,
    timer_e: Option<Retransmit>,
    timer_f: Option<Instant>,
    timer_k: Option<Instant>,
    out: Outbox,
    retransmissions: u32,
}

impl NonInviteClientTx {
    /// Starts the transaction: queues the request, arms Timer F (and Timer E over UDP).
    /// `method` is the CSeq method used for response matching (`BYE`, `CANCEL`, …).
    pub fn new(
        now: Instant,
        branch: String,
        method: &'static str,
        request: Vec<u8>,
        reliable: bool,
        timers: Timers,
    ) -> Self {
        Self {
            branch,
            method,
            state: NictState::Trying,
            out: Outbox::with(request.clone()),
            request,
            reliable,
            timer_e: (!reliable).then_some(Retransmit {
                at: now + timers.t1,
                interval: timers.t1,
            }),
            timer_f: Some(now + timers.t1x64()),
            timer_k: None,
            timers,
            retransmissions: 0,
        }
    }

    /// When Timer K fires, while the transaction waits in Completed for stray retransmitted
    /// responses (§17.1.2.2).
    pub fn completed_until(&self) -> Option<Instant> {
        match self.state {
            NictState::Completed => self.timer_k,
            _ => None,
        }
    }

    /// How many times the request was retransmitted by Timer E.
    pub fn retransmissions(&self) -> u32 {
        self.retransmissions
    }

    /// True when a response with this top-Via branch and CSeq method belongs here.
    pub fn matches(&self, branch: Option<&str>, cseq_method: &str) -> bool {
        branch == Some(self.branch.as_str()) && cseq_method == self.method
    }

    /// True once the transaction is over.
    pub fn is_terminated(&self) -> bool {
        self.state == NictState::Terminated
    }

    /// True until a final response (or Timer F).
    pub fn is_pending(&self) -> bool {
        matches!(self.state, NictState::Trying | NictState::Proceeding)
    }

    /// Feeds a matching response.
    pub fn on_response(&mut self, now: Instant, status: u16) -> ClientTxEvent {
        match (self.state, status) {
            (NictState::Trying | NictState::Proceeding, 100..=199) => {
                self.state = NictState::Proceeding;
                ClientTxEvent::Provisional(status)
            }
            (NictState::Trying | NictState::Proceeding, _) => {
                self.state = NictState::Completed;
                // Only Timer K's wait for stray retransmitted responses is left (§17.1.2.2).
                self.request = Vec::new();
                self.timer_e = None;
                self.timer_f = None;
                self.timer_k = Some(
                    now + if self.reliable {
                        Duration::ZERO
                    } else {
                        self.timers.t4
                    },
                );
                if (200..300).contains(&status) {
                    ClientTxEvent::Success(status)
                } else {
                    ClientTxEvent::Failure(status)
                }
            }
            _ => ClientTxEvent::Absorbed,
        }
    }

    /// Fires due timers. Returns [`ClientTxEvent::Timeout`] when Timer F expires.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<ClientTxEvent> {
        if let Some(f) = self.timer_f
            && now >= f
        {
            self.state = NictState::Terminated;
            self.timer_e = None;
            self.timer_f = None;
            return Some(ClientTxEvent::Timeout);
        }
        if let Some(e) = self.timer_e
            && now >= e.at
        {
            self.out.push(self.request.clone());
            self.retransmissions += 1;
            // §17.1.2.2: doubling up to T2 in Trying, T2 in Proceeding.
            let interval = if self.state == NictState::Proceeding {
                self.timers.t2
            } else {
                (e.interval * 2).min(self.timers.t2)
            };
            self.timer_e = Some(Retransmit {
                at: now + interval,
                interval,
            });
        }
        if let Some(k) = self.timer_k
            && now >= k
        {
            self.state = NictState::Terminated;
            self.timer_k = None;
        }
        None
    }

    /// The next message to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.timer_e.map(|e| e.at), self.timer_f, self.timer_k]
            .into_iter()
            .flatten()
            .min()
    }
}

/// Non-INVITE server transaction (RFC 3261 §17.2.2): the far end's BYE or OPTIONS.
///
/// Created on the first copy of the request; the user answers with
/// [`respond`](ServerTx::respond); retransmissions of the request re-send the last response
/// until Timer J (64·T1 over UDP, zero over TCP) ends it.
#[derive(Debug)]
pub struct ServerTx {
    branch: String,
    method: String,
    last_response: Option<Vec<u8>>,
    reliable: bool,
    timers: Timers,
    timer_j: Option<Instant>,
    terminated: bool,
    out: Outbox,
}

impl ServerTx {
    /// A new transaction for a request with this top-Via branch and method.
    pub fn new(branch: String, method: String, reliable: bool, timers: Timers) -> Self {
        Self {
            branch,
            method,
            last_response: None,
            reliable,
            timers,
            timer_j: None,
            terminated: false,
            out: Outbox::default(),
        }
    }

    /// True when a request with this branch and method is a retransmission of ours.
    pub fn matches(&self, branch: Option<&str>, method: &str) -> bool {
        branch == Some(self.branch.as_str()) && method == self.method
    }

    /// Sends a response. A final response (≥ 200) moves to Completed and arms Timer J.
    pub fn respond(&mut self, now: Instant, status: u16, response: Vec<u8>) {
        self.out.push(response.clone());
        self.last_response = Some(response);
        if status >= 200 && self.timer_j.is_none() {
            self.timer_j = Some(
                now + if self.reliable {
                    Duration::ZERO
                } else {
                    self.timers.t1x64()
                },
            );
        }
    }

    /// A retransmission of the request arrived: re-send the last response (§17.2.2).
    pub fn on_retransmission(&mut self) {
        if let Some(r) = &self.last_response {
            self.out.push(r.clone());
        }
    }

    /// Fires Timer J.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(j) = self.timer_j
            && now >= j
        {
            self.terminated = true;
            self.timer_j = None;
        }
    }

    /// True once Timer J fired.
    pub fn is_terminated(&self) -> bool {
        self.terminated
    }

    /// While Timer J runs: the branch, method and final response re-sent to a retransmitted
    /// request, and when Timer J fires.
    pub fn completed_response(&self) -> Option<(&str, &str, &[u8], Instant)> {
        match (&self.last_response, self.timer_j, self.terminated) {
            (Some(r), Some(j), false) => Some((&self.branch, &self.method, r, j)),
            _ => None,
        }
    }

    /// The next message to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer_j
    }
}

/// INVITE server transaction for a re-INVITE inside our dialog (RFC 3261 §17.2.1), including
/// the UAS core's 2xx retransmission until the ACK arrives (§13.3.1.4).
///
/// The final response is re-sent at T1, 2·T1, … capped at T2 (Timer G / the 2xx rule) until
/// the ACK arrives or 64·T1 pass (Timer H); over TCP only a 2xx is retransmitted, as §13.3.1.4
/// requires of the UAS core on any transport.
#[derive(Debug)]
pub struct InviteServerTx {
    /// Where its responses go (RFC 3261 §18.2.2), kept so that retransmissions fired by
    /// timers go where the first response went.
    reply_to: Option<std::net::SocketAddr>,
    branch: String,
    cseq: u32,
    response: Option<Vec<u8>>,
    retransmit: Option<Retransmit>,
    give_up: Option<Instant>,
    linger: Option<Instant>,
    timers: Timers,
    terminated: bool,
    ack_timed_out: bool,
    out: Outbox,
}

impl InviteServerTx {
    /// Sets where the responses go (the caller computes it from the request's top Via,
    /// RFC 3261 §18.2.2).
    pub fn set_reply_to(&mut self, addr: std::net::SocketAddr) {
        self.reply_to = Some(addr);
    }

    /// Where the responses go, if set.
    pub fn reply_to(&self) -> Option<std::net::SocketAddr> {
        self.reply_to
    }

    /// A new transaction for the re-INVITE with this branch and CSeq number.
    pub fn new(branch: String, cseq: u32, timers: Timers) -> Self {
        Self {
            reply_to: None,
            branch,
            cseq,
            response: None,
            retransmit: None,
            give_up: None,
            linger: None,
            timers,
            terminated: false,
            ack_timed_out: false,
            out: Outbox::default(),
        }
    }

    /// True when an INVITE with this branch is a retransmission of ours.
    pub fn matches_invite(&self, branch: Option<&str>) -> bool {
        branch == Some(self.branch.as_str())
    }

    /// True when an ACK with this CSeq number acknowledges our final response.
    pub fn matches_ack(&self, cseq: u32) -> bool {
        cseq == self.cseq
    }

    /// Sends the final response and starts retransmitting it until the ACK.
    pub fn respond(&mut self, now: Instant, status: u16, response: Vec<u8>, reliable: bool) {
        self.out.push(response.clone());
        self.response = Some(response);
        let retransmits = !reliable || (200..300).contains(&status);
        self.retransmit = retransmits.then_some(Retransmit {
            at: now + self.timers.t1,
            interval: self.timers.t1,
        });
        self.give_up = Some(now + self.timers.t1x64());
    }

    /// A retransmitted INVITE: re-send the response.
    pub fn on_retransmission(&mut self) {
        if let Some(r) = &self.response {
            self.out.push(r.clone());
        }
    }

    /// The ACK arrived: stop retransmitting; linger T4 to absorb ACK copies (Timer I).
    pub fn on_ack(&mut self, now: Instant) {
        self.retransmit = None;
        self.give_up = None;
        self.linger = Some(now + self.timers.t4);
    }

    /// True if 64·T1 passed with no ACK (the dialog should then be ended with BYE, §13.3.1.4).
    pub fn ack_timed_out(&self) -> bool {
        self.ack_timed_out
    }

    /// Fires due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(g) = self.give_up
            && now >= g
        {
            self.ack_timed_out = true;
            self.terminated = true;
            self.retransmit = None;
            self.give_up = None;
            return;
        }
        if let Some(r) = self.retransmit
            && now >= r.at
        {
            if let Some(resp) = &self.response {
                self.out.push(resp.clone());
            }
            let interval = (r.interval * 2).min(self.timers.t2);
            self.retransmit = Some(Retransmit {
                at: now + interval,
                interval,
            });
        }
        if let Some(l) = self.linger
            && now >= l
        {
            self.terminated = true;
            self.linger = None;
        }
    }

    /// True once over.
    pub fn is_terminated(&self) -> bool {
        self.terminated
    }

    /// The next message to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.retransmit.map(|r| r.at), self.give_up, self.linger]
            .into_iter()
            .flatten()
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain_ict(tx: &mut InviteClientTx) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| tx.poll_transmit()).collect()
    }

    /// Advances the virtual clock to each wake-up until `until`, firing timers.
    fn run_ict(tx: &mut InviteClientTx, now: &mut Instant, until: Instant) -> Vec<ClientTxEvent> {
        let mut evs = vec![];
        while let Some(t) = tx.poll_timeout() {
            if t > until {
                break;
            }
            *now = t;
            if let Some(e) = tx.handle_timeout(*now) {
                evs.push(e);
            }
        }
        evs
    }

    #[test]
    fn invite_over_udp_retransmits_with_timer_a_until_timer_b() {
        let t0 = Instant::now();
        let timers = Timers::default();
        let mut tx = InviteClientTx::new(t0, "z9hG4bK1".into(), b"INVITE".to_vec(), false, timers);
        assert_eq!(drain_ict(&mut tx).len(), 1);
        let mut now = t0;
        let evs = run_ict(&mut tx, &mut now, t0 + Duration::from_secs(40));
        // A fires at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s; B at 32 s.
        assert_eq!(tx.retransmissions(), 6);
        assert_eq!(drain_ict(&mut tx).len(), 6);
        assert_eq!(evs, vec![ClientTxEvent::Timeout]);
        assert_eq!(now, t0 + Duration::from_secs(32));
        assert!(tx.is_terminated());
        assert_eq!(tx.poll_timeout(), None);
    }

    #[test]
    fn invite_over_tcp_never_retransmits() {
        let t0 = Instant::now();
        let mut tx = InviteClientTx::new(t0, "b".into(), b"I".to_vec(), true, Timers::default());
        let mut now = t0;
        let evs = run_ict(&mut tx, &mut now, t0 + Duration::from_secs(40));
        assert_eq!(tx.retransmissions(), 0);
        assert_eq!(evs, vec![ClientTxEvent::Timeout]);
    }

    #[test]
    fn provisional_stops_timer_a_and_b() {
        let t0 = Instant::now();
        let mut tx = InviteClientTx::new(t0, "b".into(), b"I".to_vec(), false, Timers::default());
        let t = t0 + Duration::from_millis(100);
        assert_eq!(
            tx.on_response(t, 180, Vec::new),
            ClientTxEvent::Provisional(180)
        );
        assert_eq!(tx.poll_timeout(), None);
        assert!(tx.is_pending());
    }

    #[test]
    fn non_2xx_is_acked_and_retransmissions_reack_until_timer_d() {
        let t0 = Instant::now();
        let mut tx = InviteClientTx::new(t0, "b".into(), b"I".to_vec(), false, Timers::default());
        drain_ict(&mut tx);
        let t = t0 + Duration::from_millis(100);
        assert_eq!(
            tx.on_response(t, 486, || b"ACK".to_vec()),
            ClientTxEvent::Failure(486)
        );
        assert_eq!(drain_ict(&mut tx), vec![b"ACK".to_vec()]);
        // A retransmitted 486 is absorbed and re-ACKed; build_ack is not called again.
        assert_eq!(
            tx.on_response(t, 486, || panic!("ack rebuilt")),
            ClientTxEvent::Absorbed
        );
        assert_eq!(drain_ict(&mut tx), vec![b"ACK".to_vec()]);
        assert_eq!(tx.poll_timeout(), Some(t + Duration::from_secs(32)));
        assert_eq!(tx.handle_timeout(t + Duration::from_secs(32)), None);
        assert!(tx.is_terminated());
    }

    #[test]
    fn timer_d_is_zero_over_tcp() {
        let t0 = Instant::now();
        let mut tx = InviteClientTx::new(t0, "b".into(), b"I".to_vec(), true, Timers::default());
        tx.on_response(t0, 404, || b"ACK".to_vec());
        assert_eq!(tx.poll_timeout(), Some(t0));
        tx.handle_timeout(t0);
        assert!(tx.is_terminated());
    }

    #[test]
    fn two_hundred_terminates_invite_transaction() {
        let t0 = Instant::now();
        let mut tx = InviteClientTx::new(t0, "b".into(), b"I".to_vec(), false, Timers::default());
        assert_eq!(
            tx.on_response(t0, 200, Vec::new),
            ClientTxEvent::Success(200)
        );
        assert!(tx.is_terminated());
        assert_eq!(tx.on_response(t0, 200, Vec::new), ClientTxEvent::Absorbed);
    }

    #[test]
    fn non_invite_timer_e_caps_at_t2_then_timer_f() {
        let t0 = Instant::now();
        let timers = Timers::default();
        let mut tx = NonInviteClientTx::new(t0, "b".into(), "BYE", b"BYE".to_vec(), false, timers);
        let mut sent = std::iter::from_fn(|| tx.poll_transmit()).count();
        let mut fires = vec![];
        let mut result = None;
        while let Some(t) = tx.poll_timeout() {
            if let Some(e) = tx.handle_timeout(t) {
                result = Some((t, e));
                break;
            }
            fires.push(t - t0);
        }
        sent += std::iter::from_fn(|| tx.poll_transmit()).count();
        // E: 0.5, 1.5, 3.5, 7.5, then every 4 s up to 31.5; F at 32 s.
        assert_eq!(fires[0], Duration::from_millis(500));
        assert_eq!(fires[1], Duration::from_millis(1500));
        assert_eq!(fires[2], Duration::from_millis(3500));
        assert_eq!(fires[3], Duration::from_millis(7500));
        assert_eq!(fires[4], Duration::from_millis(11500));
        assert_eq!(sent, 1 + fires.len());
        assert_eq!(
            result,
            Some((t0 + Duration::from_secs(32), ClientTxEvent::Timeout))
        );
    }

    #[test]
    fn non_invite_final_then_timer_k() {
        let t0 = Instant::now();
        let mut tx = NonInviteClientTx::new(
            t0,
            "b".into(),
            "BYE",
            b"BYE".to_vec(),
            false,
            Timers::default(),
        );
        assert!(tx.matches(Some("b"), "BYE"));
        assert!(!tx.matches(Some("b"), "CANCEL"));
        assert!(!tx.matches(Some("c"), "BYE"));
        assert_eq!(tx.on_response(t0, 200), ClientTxEvent::Success(200));
        assert_eq!(tx.on_response(t0, 200), ClientTxEvent::Absorbed);
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(5)));
        tx.handle_timeout(t0 + Duration::from_secs(5));
        assert!(tx.is_terminated());
    }

    #[test]
    fn server_tx_resends_final_on_retransmission_until_timer_j() {
        let t0 = Instant::now();
        let mut tx = ServerTx::new("b".into(), "BYE".into(), false, Timers::default());
        tx.respond(t0, 200, b"200".to_vec());
        tx.on_retransmission();
        let sent: Vec<_> = std::iter::from_fn(|| tx.poll_transmit()).collect();
        assert_eq!(sent, vec![b"200".to_vec(), b"200".to_vec()]);
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        tx.handle_timeout(t0 + Duration::from_secs(32));
        assert!(tx.is_terminated());
    }

    #[test]
    fn invite_server_retransmits_2xx_until_ack() {
        let t0 = Instant::now();
        let mut tx = InviteServerTx::new("b".into(), 7, Timers::default());
        tx.respond(t0, 200, b"200".to_vec(), false);
        let mut now = t0;
        for _ in 0..3 {
            now = tx.poll_timeout().unwrap();
            tx.handle_timeout(now);
        }
        assert_eq!(now - t0, Duration::from_millis(3500));
        assert_eq!(std::iter::from_fn(|| tx.poll_transmit()).count(), 4);
        assert!(tx.matches_ack(7));
        tx.on_ack(now);
        assert_eq!(tx.poll_timeout(), Some(now + Duration::from_secs(5)));
        tx.handle_timeout(now + Duration::from_secs(5));
        assert!(tx.is_terminated());
        assert!(!tx.ack_timed_out());
    }

    #[test]
    fn invite_server_gives_up_without_ack() {
        let t0 = Instant::now();
        let mut tx = InviteServerTx::new("b".into(), 7, Timers::default());
        tx.respond(t0, 200, b"200".to_vec(), true);
        let mut now = t0;
        while let Some(t) = tx.poll_timeout() {
            now = t;
            tx.handle_timeout(now);
        }
        assert_eq!(now - t0, Duration::from_secs(32));
        assert!(tx.ack_timed_out());
    }
}
