//! Property tests of the SIP client transaction machines (RFC 3261 §17.1) over a lossy
//! network, on a virtual clock: any interleaving of losses (up to 2 copies of each message in
//! a row — what the retransmission timers can make up for),
//! duplications and reorderings (delays of 0–700 ms) ends in the same final state as
//! the lossless run — one final response passed up, the same one, the transaction
//! terminated, and for a non-2xx INVITE the far end ACKed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use outdial::sip::transaction::{ClientTxEvent, InviteClientTx, NonInviteClientTx, Timers};
use proptest::prelude::*;

/// What the network does to the n-th message it carries: drop it, deliver it after a delay,
/// and maybe deliver a duplicate too.
#[derive(Debug, Clone, Copy)]
struct Fate {
    drop: bool,
    delay_ms: u64,
    duplicate: bool,
}

fn fate() -> impl Strategy<Value = Fate> {
    (
        prop::bool::weighted(0.35),
        0u64..700,
        prop::bool::weighted(0.15),
    )
        .prop_map(|(drop, delay_ms, duplicate)| Fate {
            drop,
            delay_ms,
            duplicate,
        })
}

/// A message in flight: to the far end (a request copy or an ACK) or to us (a status).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Msg {
    Request(Vec<u8>),
    Status(u16),
}

struct Net {
    /// Most copies of one message lost in a row.
    max_run: u32,
    fates: Vec<Fate>,
    next: usize,
    /// Losses in a row per kind of message, capped at `max_run` (a network that loses more
    /// than the retransmissions can make up for is Timer B's and F's business, not this
    /// property's).
    dropped: BTreeMap<String, u32>,
    /// (delivery time, sequence) → (to the far end?, message)
    flight: BTreeMap<(Instant, u64), (bool, Msg)>,
    seq: u64,
}

impl Net {
    fn new(fates: Vec<Fate>, max_run: u32) -> Self {
        Self {
            max_run,
            fates,
            next: 0,
            dropped: BTreeMap::new(),
            flight: BTreeMap::new(),
            seq: 0,
        }
    }

    fn send(&mut self, now: Instant, to_far: bool, m: Msg) {
        let f = if self.fates.is_empty() {
            Fate {
                drop: false,
                delay_ms: 20,
                duplicate: false,
            }
        } else {
            self.fates[self.next % self.fates.len()]
        };
        self.next += 1;
        let key = format!("{to_far}{m:?}");
        let run = self.dropped.entry(key).or_insert(0);
        if f.drop && *run < self.max_run {
            *run += 1;
            return;
        }
        *run = 0;
        for extra in [0, 37].iter().take(if f.duplicate { 2 } else { 1 }) {
            self.seq += 1;
            let at = now + Duration::from_millis(f.delay_ms + extra);
            self.flight.insert((at, self.seq), (to_far, m.clone()));
        }
    }

    fn next_at(&self) -> Option<Instant> {
        self.flight.keys().next().map(|k| k.0)
    }

    fn pop_due(&mut self, now: Instant) -> Option<(bool, Msg)> {
        let k = *self.flight.keys().next()?;
        if k.0 > now {
            return None;
        }
        self.flight.remove(&k)
    }
}

/// The far end of an INVITE: 100 at once, 180 after 50 ms, the final after 200 ms; the final
/// re-sent on Timer G (500 ms doubling to 4 s) until an ACK (non-2xx) or 7 times (2xx); a
/// retransmitted INVITE gets the last response again.
struct InviteUas {
    final_status: u16,
    last: Option<u16>,
    scheduled: Vec<(Instant, u16)>,
    g: Option<(Instant, Duration, u32)>,
    acked: bool,
}

fn run_invite(final_status: u16, fates: Vec<Fate>) -> (Vec<ClientTxEvent>, bool, bool) {
    let t0 = Instant::now();
    let timers = Timers::default();
    let mut tx = InviteClientTx::new(t0, "z9hG4bKp".into(), b"INVITE".to_vec(), false, timers);
    let mut uas = InviteUas {
        final_status,
        last: None,
        scheduled: Vec::new(),
        g: None,
        acked: false,
    };
    // Up to 2 losses in a row: the final response and its ACK must both get through, and the
    // far end's Timer G sends the final 11 times within Timer H's 32 s (at most 3 × 3 needed).
    let mut net = Net::new(fates, 2);
    let mut events = Vec::new();
    let mut now = t0;
    let end = t0 + Duration::from_secs(120);
    while now < end {
        while let Some(b) = tx.poll_transmit() {
            net.send(now, true, Msg::Request(b));
        }
        // Deliveries due now.
        while let Some((to_far, m)) = net.pop_due(now) {
            match (to_far, m) {
                (true, Msg::Request(b)) if b == b"INVITE" => match uas.last {
                    None if uas.scheduled.is_empty() => {
                        uas.scheduled = vec![
                            (now, 100),
                            (now + Duration::from_millis(50), 180),
                            (now + Duration::from_millis(200), uas.final_status),
                        ];
                    }
                    Some(s) => net.send(now, false, Msg::Status(s)),
                    None => {}
                },
                (true, Msg::Request(_)) => {
                    uas.acked = true;
                    uas.g = None;
                }
                (false, Msg::Status(s)) => {
                    let ev = tx.on_response(now, s, || b"ACK".to_vec());
                    if ev != ClientTxEvent::Absorbed {
                        events.push(ev);
                    }
                    if matches!(ev, ClientTxEvent::Success(_)) {
                        // The TU ACKs a 2xx (§13.2.2.4); the far end stops retransmitting.
                        uas.g = None;
                    }
                }
                _ => unreachable!(),
            }
        }
        // The far end's schedule and Timer G.
        let due: Vec<u16> = uas
            .scheduled
            .iter()
            .filter(|(t, _)| *t <= now)
            .map(|(_, s)| *s)
            .collect();
        uas.scheduled.retain(|(t, _)| *t > now);
        for s in due {
            uas.last = Some(s);
            net.send(now, false, Msg::Status(s));
            if s >= 200 {
                uas.g = Some((
                    now + Duration::from_millis(500),
                    Duration::from_millis(500),
                    0,
                ));
            }
        }
        if let Some((at, iv, n)) = uas.g
            && at <= now
        {
            let limit = if uas.final_status < 300 { 7 } else { 10 };
            // (10 retransmissions after the first copy: Timer H's 32 s.)
            if uas.acked || n >= limit {
                uas.g = None;
            } else {
                net.send(now, false, Msg::Status(uas.final_status));
                let iv2 = (iv * 2).min(Duration::from_secs(4));
                uas.g = Some((now + iv2, iv2, n + 1));
            }
        }
        if let Some(ev) = tx.handle_timeout(now) {
            events.push(ev);
        }
        if tx.is_terminated()
            && net.next_at().is_none()
            && uas.g.is_none()
            && uas.scheduled.is_empty()
        {
            break;
        }
        // Next wake-up: the earliest of the transaction's timers, the network, the far end.
        let next = [
            tx.poll_timeout(),
            net.next_at(),
            uas.scheduled.iter().map(|(t, _)| *t).min(),
            uas.g.map(|g| g.0),
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            Some(t) => now = t.max(now + Duration::from_micros(1)),
            None => break,
        }
    }
    (events, tx.is_terminated(), uas.acked)
}

fn finals(events: &[ClientTxEvent]) -> Vec<ClientTxEvent> {
    events
        .iter()
        .copied()
        .filter(|e| !matches!(e, ClientTxEvent::Provisional(_)))
        .collect()
}

fn run_non_invite(final_status: u16, fates: Vec<Fate>) -> (Vec<ClientTxEvent>, bool) {
    let t0 = Instant::now();
    let mut tx = NonInviteClientTx::new(
        t0,
        "z9hG4bKb".into(),
        "BYE",
        b"BYE".to_vec(),
        false,
        Timers::default(),
    );
    // Up to 2 losses in a row: a request and its answer must both get through, and Timer E
    // gives 11 copies within Timer F's 32 s (at most 3 × 3 are needed).
    let mut net = Net::new(fates, 2);
    let mut events = Vec::new();
    let mut now = t0;
    let end = t0 + Duration::from_secs(120);
    while now < end {
        while let Some(b) = tx.poll_transmit() {
            net.send(now, true, Msg::Request(b));
        }
        while let Some((to_far, m)) = net.pop_due(now) {
            match (to_far, m) {
                // A non-INVITE UAS answers every copy with its final response.
                (true, _) => net.send(now, false, Msg::Status(final_status)),
                (false, Msg::Status(s)) => {
                    let ev = tx.on_response(now, s);
                    if ev != ClientTxEvent::Absorbed {
                        events.push(ev);
                    }
                }
                _ => unreachable!(),
            }
        }
        if let Some(ev) = tx.handle_timeout(now) {
            events.push(ev);
        }
        if tx.is_terminated() && net.next_at().is_none() {
            break;
        }
        let next = [tx.poll_timeout(), net.next_at()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(t) => now = t.max(now + Duration::from_micros(1)),
            None => break,
        }
    }
    (events, tx.is_terminated())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        .. ProptestConfig::default()
    })]

    #[test]
    fn invite_client_ends_as_the_lossless_run(
        final_status in prop::sample::select(vec![200u16, 486, 503, 603]),
        fates in proptest::collection::vec(fate(), 1..64),
    ) {
        let (clean, clean_done, clean_acked) = run_invite(final_status, vec![]);
        let (lossy, done, acked) = run_invite(final_status, fates);
        prop_assert!(clean_done && done);
        prop_assert_eq!(finals(&lossy), finals(&clean));
        prop_assert_eq!(finals(&lossy).len(), 1, "{:?}", lossy);
        if final_status >= 300 {
            prop_assert!(clean_acked && acked, "the far end never got the ACK");
        }
        // Provisionals, when any got through, come before the final and are 1xx only.
        let first_final = lossy.iter().position(|e| !matches!(e, ClientTxEvent::Provisional(_))).unwrap();
        prop_assert!(lossy[first_final + 1..].is_empty(), "{:?}", lossy);
    }

    #[test]
    fn non_invite_client_ends_as_the_lossless_run(
        final_status in prop::sample::select(vec![200u16, 481, 500]),
        fates in proptest::collection::vec(fate(), 1..64),
    ) {
        let (clean, clean_done) = run_non_invite(final_status, vec![]);
        let (lossy, done) = run_non_invite(final_status, fates);
        prop_assert!(clean_done && done);
        prop_assert_eq!(&lossy, &clean);
        prop_assert_eq!(lossy.len(), 1);
    }
}
