//! Per-message cost of the SIP hot path: parsing (rsipstack alone vs our adapter), one
//! transaction step, starting a call (its INVITE built and queued), and the whole path for one
//! response (parse → Call-ID lookup → transaction match → call event).
//!
//! Run: `cargo bench --bench sip_hot_path`. Figures go in docs/benchmarks.md.

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use outdial::call::leg::CallSpec;
use outdial::engine::core::{Engine, EngineConfig, Output, new_call_id};
use outdial::events::AttemptRef;
use outdial::sip::dialog::LocalParty;
use outdial::sip::message::{HeadersExt, SipMessage, Transport, parse_datagram};
use outdial::sip::transaction::{InviteClientTx, Timers};
use rsipstack::sip::headers::untyped::ToTypedHeader;

/// The allocator the `outdial` binary runs with (src/main.rs), so the figures are the product's,
/// with a counter of allocations that is only touched while [`count_allocations`] runs.
#[global_allocator]
static GLOBAL: Counting = Counting;

/// mimalloc, counting allocations (`alloc`, `alloc_zeroed` and `realloc` calls) while
/// `COUNTING` is set; otherwise one relaxed load per call on top of mimalloc's own work.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Set while a bench does its own work between engine calls (not counted).
static BENCH_SIDE: AtomicBool = AtomicBool::new(false);

// SAFETY: every call is passed on unchanged to mimalloc, which upholds `GlobalAlloc`'s contract.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's layout, as `GlobalAlloc::alloc` requires.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as for `alloc`.
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator (mimalloc) with `layout`.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` came from this allocator (mimalloc) with `layout`.
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

fn count() {
    if COUNTING.load(Ordering::Relaxed) && !BENCH_SIDE.load(Ordering::Relaxed) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Heap allocations per run of `f`, averaged over `runs` runs; printed with `what` (a figure
/// for docs/benchmarks.md, not a check).
fn count_allocations(what: &str, runs: u64, mut f: impl FnMut()) {
    ALLOCATIONS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    for _ in 0..runs {
        f();
    }
    COUNTING.store(false, Ordering::Relaxed);
    let n = ALLOCATIONS.load(Ordering::Relaxed);
    eprintln!(
        "{what}: {:.1} heap allocations per run",
        n as f64 / runs as f64
    );
}

const RINGING: &str = "SIP/2.0 180 Ringing\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5070;branch=$BRANCH;rport=5070\r\n\
From: \"Sales\" <sip:+14155550000@192.0.2.1>;tag=$FTAG\r\n\
To: <sip:+14155550123@192.0.2.10:5060>;tag=as5f2c1e7a\r\n\
Call-ID: $CALLID\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:+14155550123@192.0.2.10:5060>\r\n\
Server: bench-far-end\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE\r\n\
Content-Length: 0\r\n\r\n";

const OK_SDP: &str = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK74bf9;rport=5070\r\n\
Record-Route: <sip:192.0.2.20;lr>\r\n\
From: \"Sales\" <sip:+14155550000@192.0.2.1>;tag=9fxced76sl\r\n\
To: <sip:+14155550123@192.0.2.10:5060>;tag=as5f2c1e7a\r\n\
Call-ID: 3848276298220188511@192.0.2.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:+14155550123@192.0.2.10:5060>\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 131\r\n\r\n\
v=0\r\n\
o=far 1 1 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 0 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=sendrecv\r\n\
\r\n";

const TRYING: &str = "SIP/2.0 100 Trying\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5070;branch=$BRANCH;rport=5070\r\n\
From: \"Sales\" <sip:+14155550000@192.0.2.1>;tag=$FTAG\r\n\
To: <sip:+14155550123@192.0.2.10:5060>\r\n\
Call-ID: $CALLID\r\n\
CSeq: 1 INVITE\r\n\
Content-Length: 0\r\n\r\n";

/// The 200 to a BYE (`$CSEQ` its number).
const BYE_OK: &str = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5070;branch=$BRANCH;rport=5070\r\n\
From: \"Sales\" <sip:+14155550000@192.0.2.1>;tag=$FTAG\r\n\
To: <sip:+14155550123@192.0.2.10:5060>;tag=as5f2c1e7a\r\n\
Call-ID: $CALLID\r\n\
CSeq: $CSEQ BYE\r\n\
Content-Length: 0\r\n\r\n";

fn parsing(c: &mut Criterion) {
    let ok = OK_SDP.as_bytes();
    let mut g = c.benchmark_group("parse");
    g.bench_function("rsipstack_200_sdp", |b| {
        b.iter(|| SipMessage::try_from(black_box(ok)).unwrap())
    });
    g.bench_function("rsipstack_200_sdp_typed_branch_totag_cseq", |b| {
        b.iter(|| {
            let m = SipMessage::try_from(black_box(ok)).unwrap();
            let via = m.top_via_header().unwrap().typed().unwrap();
            let to = m.to_header().unwrap().typed().unwrap();
            let cseq = m.cseq_header().unwrap().typed().unwrap();
            black_box((via.branch().cloned(), to.tag().cloned(), cseq.seq))
        })
    });
    g.bench_function("adapter_200_sdp", |b| {
        b.iter(|| parse_datagram(black_box(ok)).unwrap())
    });
    let ringing = RINGING
        .replace("$BRANCH", "z9hG4bK74bf9")
        .replace("$FTAG", "9fxced76sl")
        .replace("$CALLID", "3848276298220188511@192.0.2.1");
    g.bench_function("adapter_180", |b| {
        b.iter(|| parse_datagram(black_box(ringing.as_bytes())).unwrap())
    });
    g.finish();
}

fn transaction(c: &mut Criterion) {
    let t0 = Instant::now();
    c.bench_function("transaction/invite_client_provisional", |b| {
        let mut tx = InviteClientTx::new(
            t0,
            "z9hG4bK74bf9".into(),
            b"INVITE".to_vec(),
            false,
            Timers::default(),
        );
        let _ = tx.poll_transmit();
        b.iter(|| black_box(tx.on_response(t0, black_box(180), Vec::new)))
    });
}

/// An engine with one trunk, as the response path and call start benches use it.
fn bench_engine() -> Engine {
    Engine::new(
        EngineConfig::single_trunk(
            LocalParty {
                sent_by: "192.0.2.1:5070".into(),
                transport: Transport::Udp,
                user_agent: "outdial-bench".into(),
            },
            "192.0.2.10:5060".parse().unwrap(),
            Timers::default(),
            (20000, 40000),
        ),
        std::time::Instant::now(),
        outdial::sip::message::Tokens::seeded(42),
    )
}

/// What the campaign core hands the engine for lead `i`.
fn call_spec(i: u64) -> CallSpec {
    CallSpec {
        number: String::new(),
        hops: vec![outdial::call::leg::Hop::direct(format!(
            "sip:+1415555{i:04}@192.0.2.10:5060"
        ))],
        failover_timeout: Duration::from_secs(3),
        to_uri: format!("sip:+1415555{i:04}@192.0.2.10:5060"),
        caller_id: "+14155550000".into(),
        caller_name: None,
        from_host: "192.0.2.1".into(),
        p_asserted_identity: None,
        ring_timeout: Duration::from_secs(3600),
        hold_time: Duration::from_secs(5),
        rtp_port: 0,
        media_ip: "192.0.2.1".into(),
        media: Default::default(),
        privacy: None,
        session_expires: None,
    }
}

/// The `i`-th call a bench starts: a fresh Call-ID, its attempt and its spec (the spec's
/// number cycles through 10,000).
fn next_call(tokens: &mut outdial::sip::message::Tokens, i: u64) -> (String, AttemptRef, CallSpec) {
    let attempt = AttemptRef {
        attempt_id: i as i64,
        lead_id: i as i64,
        attempt_no: 1,
    };
    (new_call_id(tokens), attempt, call_spec(i % 10_000))
}

/// Takes every output the engine queued (each through `black_box`); returns how many.
fn drain(engine: &mut Engine) -> usize {
    let mut n = 0;
    while let Some(o) = engine.poll_output() {
        black_box(&o);
        n += 1;
    }
    n
}

/// Starting one call: the leg, its INVITE built, the call table entry, its timers; up to
/// 4,096 calls in progress (then a fresh engine, outside the timing).
fn call_start(c: &mut Criterion) {
    {
        let now = Instant::now();
        let mut tokens = outdial::sip::message::Tokens::seeded(7);
        let mut engine = bench_engine();
        let mut i = 0u64;
        count_allocations("call_start/invite_built_and_queued", 1000, || {
            let (id, attempt, spec) = next_call(&mut tokens, i);
            engine.start_call(now, id, attempt, spec);
            drain(&mut engine);
            i += 1;
        });
    }
    c.bench_function("call_start/invite_built_and_queued", |b| {
        b.iter_custom(|iters| {
            let now = Instant::now();
            let mut tokens = outdial::sip::message::Tokens::seeded(7);
            let mut engine = bench_engine();
            let mut spent = Duration::ZERO;
            for i in 0..iters {
                if i % 4096 == 0 && i > 0 {
                    engine = bench_engine();
                }
                let (id, attempt, spec) = next_call(&mut tokens, i);
                let t = Instant::now();
                engine.start_call(now, id, attempt, spec);
                drain(&mut engine);
                spent += t.elapsed();
            }
            spent
        })
    });
}

fn response_path(c: &mut Criterion) {
    let mut engine = bench_engine();
    let now = Instant::now();
    // 1,000 calls in progress, so the lookup is not into an empty map.
    let mut invite = None;
    for i in 0..1000 {
        engine.start_call(
            now,
            new_call_id(&mut outdial::sip::message::Tokens::from_seed(rand::random())),
            AttemptRef {
                attempt_id: i,
                lead_id: i,
                attempt_no: 1,
            },
            call_spec(i as u64),
        );
        while let Some(o) = engine.poll_output() {
            if let Output::Transmit(t) = o {
                invite = Some(t.bytes);
            }
        }
    }
    let inv = parse_datagram(&invite.unwrap()).unwrap();
    let ringing = fill(RINGING, &inv);
    let src = "192.0.2.10:5060".parse().unwrap();
    let mut respond = move || {
        engine.handle_datagram(now, black_box(&ringing), src);
        drain(&mut engine)
    };
    count_allocations("response_path/180_parse_match_event", 1000, || {
        respond();
    });
    c.bench_function("response_path/180_parse_match_event", |b| {
        b.iter(|| assert_eq!(respond(), 1, "one ringing event per 180"))
    });
}

/// `template` with the INVITE's (or BYE's) branch, our From tag and the Call-ID filled in.
fn fill(template: &str, req: &outdial::sip::message::Inbound) -> Vec<u8> {
    template
        .replace("$BRANCH", req.branch().unwrap())
        .replace("$FTAG", req.from_tag().unwrap())
        .replace("$CALLID", req.call_id())
        .replace("$CSEQ", &req.cseq.to_string())
        .into_bytes()
}

/// The messages among the outputs drained (the others through `black_box`).
fn drain_sent(engine: &mut Engine) -> Vec<Vec<u8>> {
    let mut sent = Vec::new();
    while let Some(o) = engine.poll_output() {
        match o {
            Output::Transmit(t) => sent.push(t.bytes),
            o => {
                black_box(&o);
            }
        }
    }
    sent
}

/// The last of `sent`, parsed.
fn last_sent(sent: &[Vec<u8>]) -> outdial::sip::message::Inbound {
    parse_datagram(sent.last().expect("a message sent")).expect("it parses")
}

/// One short answered call, the engine's whole share of it without sockets or store: start
/// (INVITE), 100, 180 and 200 with SDP in (ACK out), the hold time's end (BYE out), the
/// BYE's 200 in, the lingering ends and the media session's close. Only the engine's calls
/// are timed; building the far end's responses and reading the engine's requests are not.
/// Panics when the call does not go that way (the bench then measures nothing).
fn whole_call(c: &mut Criterion) {
    let src: std::net::SocketAddr = "192.0.2.10:5060".parse().unwrap();
    let ok_sdp = OK_SDP
        .replace("z9hG4bK74bf9", "$BRANCH")
        .replace("9fxced76sl", "$FTAG")
        .replace("3848276298220188511@192.0.2.1", "$CALLID");
    // One call from `t` on: the time spent in the engine, and the clock after the call.
    let call = |engine: &mut Engine,
                tokens: &mut outdial::sip::message::Tokens,
                i: u64,
                mut t: Instant|
     -> (Duration, Instant) {
        let mut spent = Duration::ZERO;
        BENCH_SIDE.store(true, Ordering::Relaxed);
        let mut timed = |f: &mut dyn FnMut()| {
            BENCH_SIDE.store(false, Ordering::Relaxed);
            let at = Instant::now();
            f();
            spent += at.elapsed();
            BENCH_SIDE.store(true, Ordering::Relaxed);
        };
        let (id, attempt, spec) = next_call(tokens, i);
        let hold = spec.hold_time;
        let mut sent = Vec::new();
        let mut start = Some((id.clone(), attempt, spec));
        timed(&mut || {
            let (id, attempt, spec) = start.take().expect("once");
            engine.start_call(t, id, attempt, spec);
            sent = drain_sent(engine);
        });
        let invite = last_sent(&sent);
        for template in [TRYING, RINGING, ok_sdp.as_str()] {
            let resp = fill(template, &invite);
            timed(&mut || {
                engine.handle_datagram(t, &resp, src);
                sent = drain_sent(engine);
            });
        }
        assert_eq!(last_sent(&sent).method.as_deref(), Some("ACK"));
        t += hold;
        timed(&mut || {
            engine.handle_timeout(t);
            sent = drain_sent(engine);
        });
        let bye = last_sent(&sent);
        assert_eq!(bye.method.as_deref(), Some("BYE"));
        let ok = fill(BYE_OK, &bye);
        timed(&mut || {
            engine.handle_datagram(t, &ok, src);
            drain(engine);
        });
        // The lingering after the BYE's transaction and the dialog (Timer K, the 2xx's
        // retransmission window), then the media session's close.
        t += Duration::from_secs(40);
        timed(&mut || {
            engine.handle_timeout(t);
            drain(engine);
            engine.handle_media_closed(t, &id, Default::default());
            drain(engine);
        });
        assert_eq!(engine.active_calls(), 0, "the call ended");
        BENCH_SIDE.store(false, Ordering::Relaxed);
        (spent, t)
    };
    {
        let mut tokens = outdial::sip::message::Tokens::seeded(7);
        let mut engine = bench_engine();
        let mut t = Instant::now();
        let mut i = 0u64;
        count_allocations("call/whole_short_call", 200, || {
            t = call(&mut engine, &mut tokens, i, t).1;
            i += 1;
        });
    }
    c.bench_function("call/whole_short_call", |b| {
        b.iter_custom(|iters| {
            let mut tokens = outdial::sip::message::Tokens::seeded(7);
            let mut engine = bench_engine();
            let mut t = Instant::now();
            let mut spent = Duration::ZERO;
            for i in 0..iters {
                let (d, after) = call(&mut engine, &mut tokens, i, t);
                spent += d;
                t = after;
            }
            spent
        })
    });
}

criterion_group!(
    benches,
    parsing,
    transaction,
    call_start,
    response_path,
    whole_call
);
criterion_main!(benches);
