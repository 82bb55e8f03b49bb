//! The tokio shell around [`Engine`]: one task owns the core, the socket and the timer, takes
//! commands from a channel, and sends call events out on another.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use std::collections::HashMap;
use std::sync::Arc;

use crate::media::relay::{LegCodec, relay_packet};

use super::core::{Engine, EngineConfig, EngineStats, MediaCommand, Output};
use super::trunks::TrunkRoute;
use crate::call::leg::CallSpec;
use crate::events::{AttemptRef, CallEvent};
use crate::media::session::{MediaEvent, MediaSession, RtpStats};
use crate::sip::dialog::LocalParty;
use crate::sip::message::Transport;
use crate::sip::transaction::Timers;
use crate::sip::transport::{Accepted, Received, SipSocket, udp_socket};
use anyhow::Context;

/// A password in transit to the engine; its `Debug` shows nothing.
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(…)")
    }
}

/// What the campaign side asks of the engine.
#[derive(Debug)]
pub enum Command {
    /// Dial. The attempt is already stored.
    StartCall {
        /// The Call-ID stored with the attempt.
        call_id: String,
        /// The stored attempt.
        attempt: AttemptRef,
        /// What to dial.
        spec: Box<CallSpec>,
        /// Preview dialling: the agent who asked for this lead; it is reserved for the call
        /// and gets it when answered (see `Engine::acd_preview`).
        preview_agent: Option<String>,
        /// The campaign's priority in the ACD queue (higher first; campaigns sharing agents).
        priority: i32,
    },
    /// Hang up these calls (CANCEL or BYE as fits each): a campaign leaving a shared engine.
    HangUp(Vec<String>),
    /// The engine's counters now.
    Stats(oneshot::Sender<EngineStats>),
    /// An agent's own request (pause, unpause, disposition); the reply is its new state.
    Agent {
        /// The agent's id.
        agent: String,
        /// What it asks.
        action: crate::acd::AgentAction,
        /// The agent's state after it, or why it was refused.
        reply: oneshot::Sender<Result<crate::acd::AgentView, crate::acd::AgentControlError>>,
    },
    /// An agent's call control (tag, mute, hold, hang up, transfer, recording).
    CallControl {
        /// The agent's id.
        agent: String,
        /// What it does.
        control: crate::acd::CallControl,
        /// The call after it, or why it was refused.
        reply: oneshot::Sender<Result<crate::acd::CallControlView, crate::acd::AgentControlError>>,
    },
    /// Every agent's state.
    Agents(oneshot::Sender<Vec<crate::acd::AgentView>>),
    /// The ACD queue: (customer Call-ID, ms waited) in arrival order.
    Queue(oneshot::Sender<Vec<(String, u64)>>),
    /// A new password for an agent: replies false when the engine has no such agent. (The
    /// engine keeps only its HA1; the password is never logged.)
    AgentPassword {
        /// The agent's id.
        agent: String,
        /// The new password.
        password: Password,
        /// Whether the engine knows the agent.
        reply: oneshot::Sender<bool>,
    },
    /// Hang up everything, wait for the calls to finish, then stop and report the counters.
    Shutdown(oneshot::Sender<EngineStats>),
}

/// Settings for [`spawn`].
#[derive(Debug, Clone)]
pub struct ShellConfig {
    /// Local address to bind (port 0: any free port).
    pub bind: SocketAddr,
    /// The trunk group, addresses resolved.
    pub trunks: Vec<TrunkRoute>,
    /// OPTIONS keep-alive interval (`None`: no pings).
    pub keepalive: Option<std::time::Duration>,
    /// Consecutive failures that mark a trunk down.
    pub trunk_down_after: u32,
    /// UDP or TCP.
    pub transport: Transport,
    /// `User-Agent` header.
    pub user_agent: String,
    /// RFC 3261 timers.
    pub timers: Timers,
    /// RTP port range (inclusive).
    pub rtp_ports: (u16, u16),
    /// Agents and the ACD queue (agents REGISTER to `bind`).
    pub acd: Option<crate::acd::AcdConfig>,
    /// The IP written in Via, Contact and SDP instead of the bound one (NAT, containers,
    /// `0.0.0.0` binds). Errors at spawn: a bind to every interface without it.
    pub advertise: Option<std::net::IpAddr>,
    /// Where IVR recordings are written (created when the first one is).
    pub recordings_dir: std::path::PathBuf,
    /// Inbound calls to answer (a campaign's `[inbound]`).
    pub inbound: Option<crate::engine::core::InboundRoute>,
}

/// The handle the campaign side keeps.
pub struct EngineHandle {
    /// Commands in.
    pub commands: mpsc::UnboundedSender<Command>,
    /// Call events out, in the order they happened per call (bounded: [`EVENT_QUEUE`]).
    pub events: mpsc::Receiver<CallEvent>,
    /// Agent state changes out.
    pub agent_events: mpsc::UnboundedReceiver<crate::events::AgentEvent>,
    /// Our SIP address as advertised (Via sent-by).
    pub local_addr: SocketAddr,
    /// The trunk group's health, updated on every trunk going down or up.
    pub trunks: tokio::sync::watch::Receiver<crate::engine::trunks::TrunkHealth>,
    /// The engine task.
    pub task: JoinHandle<()>,
}

/// Call events that may wait between the engine and its run loop (or the shared-engine hub):
/// beyond, the engine task waits for the run loop — back-pressure instead of memory growth.
pub const EVENT_QUEUE: usize = 65_536;

/// Binds the socket and starts the engine task.
/// Errors: binding or (TCP) connecting to the trunk failed.
pub async fn spawn(cfg: ShellConfig) -> anyhow::Result<EngineHandle> {
    let net = bind(&cfg).await?;
    let engine_cfg = EngineConfig {
        local: LocalParty {
            sent_by: net.local_addr.to_string(),
            transport: cfg.transport,
            user_agent: cfg.user_agent.clone(),
        },
        trunks: cfg.trunks.clone(),
        keepalive: cfg.keepalive,
        trunk_down_after: cfg.trunk_down_after,
        timers: cfg.timers,
        rtp_ports: cfg.rtp_ports,
        acd: cfg.acd.clone(),
        agents_sent_by: net.agents_sent_by.clone(),
        inbound: cfg.inbound.clone(),
    };
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel::<Command>();
    let (media_tx, media_rx) = mpsc::unbounded_channel::<(String, MediaMsg)>();
    let (ev_tx, ev_rx) = mpsc::channel::<CallEvent>(EVENT_QUEUE);
    let (agent_tx, agent_rx) = mpsc::unbounded_channel::<crate::events::AgentEvent>();
    let (health_tx, health_rx) = tokio::sync::watch::channel(Default::default());
    let local_addr = net.local_addr;
    let trunk_addrs = cfg.trunks.iter().map(|t| t.addr).collect();
    let task = tokio::spawn(async move {
        let engine = Engine::new(engine_cfg, Instant::now(), os_tokens());
        health_tx.send_replace(engine.trunk_health());
        let udp = match &net.socket {
            SipSocket::Udp(s) => Some(s.clone()),
            SipSocket::Tcp(_) => net.agent_udp.clone(),
        };
        let mut task = EngineTask {
            engine,
            // RTP sockets bind where SIP does; the SDP offers `local_addr`'s IP.
            media_ip: net.bound.ip(),
            udp,
            net,
            trunk_addrs,
            reserved: HashMap::new(),
            idle_rtp: IdleRtp::default(),
            media: HashMap::new(),
            media_tx,
            ev_tx,
            agent_tx,
            health_tx,
            event_latency: super::core::latency_histogram(),
            received_at: None,
            shutdown: None,
            recordings_dir: cfg.recordings_dir.clone(),
            recorders: HashMap::new(),
            recordings_writing: 0,
            mixers: HashMap::new(),
        };
        task.run(cmd_rx, media_rx).await;
    });
    Ok(EngineHandle {
        commands: cmd_tx,
        events: ev_rx,
        agent_events: agent_rx,
        local_addr,
        trunks: health_rx,
        task,
    })
}

/// The engine's sockets: the SIP socket (and, with agents, their UDP socket and TCP listener).
struct Net {
    socket: SipSocket,
    /// Messages read from TCP connections (the trunk's, or phones').
    stream_rx: Option<mpsc::UnboundedReceiver<Received>>,
    /// The SIP socket's bound address.
    bound: SocketAddr,
    /// The address peers reach us at (Via, Contact, SDP).
    local_addr: SocketAddr,
    /// Phones' accepted TCP connections, and the task accepting them.
    accepted: Accepted,
    acceptor: Option<JoinHandle<()>>,
    /// Agents' own UDP socket when the trunk is on TCP, and its advertised address.
    agent_udp: Option<Arc<tokio::net::UdpSocket>>,
    agents_sent_by: Option<String>,
}

/// Binds the SIP socket (connecting a TCP trunk) and, with agents, their sockets.
/// Errors: an address that cannot be bound, a TCP trunk that cannot be reached, a socket on
/// every interface without `advertised_address`.
async fn bind(cfg: &ShellConfig) -> anyhow::Result<Net> {
    let (socket, mut stream_rx) = match cfg.transport {
        Transport::Udp => (SipSocket::udp(cfg.bind).await?, None),
        Transport::Tcp => {
            let addrs: Vec<SocketAddr> = cfg.trunks.iter().map(|t| t.addr).collect();
            let (s, rx) = SipSocket::tcp(cfg.bind, &addrs).await?;
            (s, Some(rx))
        }
    };
    let bound = socket.local_addr()?;
    // The address peers reach us at (Via, Contact, SDP): the bound one, or the advertised IP
    // (a container or NAT, a socket bound to all interfaces) with the bound port.
    let public_ip = cfg.advertise.unwrap_or(bound.ip());
    if public_ip.is_unspecified() {
        anyhow::bail!(
            "local_address {bound} binds every interface: set advertised_address to the IP the trunk and phones reach this host at"
        );
    }
    let public = |a: SocketAddr| SocketAddr::new(public_ip, a.port());
    // Agents' phones register on one address over UDP and TCP: the SIP socket's (a TCP trunk
    // has no listening socket, so then a UDP socket of their own on `bind`), and a TCP
    // listener on the same port.
    let accepted = Accepted::default();
    let mut acceptor = None;
    let mut agent_udp = None;
    let mut agents_sent_by = None;
    if cfg.acd.is_some() {
        let addr = match &socket {
            SipSocket::Udp(_) => bound,
            SipSocket::Tcp(_) => {
                let u = udp_socket(cfg.bind)
                    .await
                    .with_context(|| format!("binding the agents' SIP address {}", cfg.bind))?;
                let a = u.local_addr()?;
                agent_udp = Some(u);
                agents_sent_by = Some(public(a).to_string());
                a
            }
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening for agents' phones on TCP {addr}"))?;
        let tx = match socket.inbound() {
            Some(tx) => tx,
            None => {
                let (tx, rx) = mpsc::unbounded_channel();
                stream_rx = Some(rx);
                tx
            }
        };
        acceptor = Some(accepted.serve(listener, tx));
    }
    Ok(Net {
        socket,
        stream_rx,
        bound,
        local_addr: public(bound),
        accepted,
        acceptor,
        agent_udp,
        agents_sent_by,
    })
}

/// The engine task: the sans-IO [`Engine`] and everything it does I/O through.
struct EngineTask {
    engine: Engine,
    net: Net,
    /// The UDP socket SIP datagrams are read from (the SIP socket's, or the agents').
    udp: Option<Arc<tokio::net::UdpSocket>>,
    trunk_addrs: std::collections::HashSet<SocketAddr>,
    media_ip: std::net::IpAddr,
    /// RTP sockets bound ahead for agent legs, by port.
    reserved: HashMap<u16, tokio::net::UdpSocket>,
    /// RTP sockets of ended calls, kept bound for the next call on their port.
    idle_rtp: IdleRtp,
    media: HashMap<String, MediaHandle>,
    media_tx: mpsc::UnboundedSender<(String, MediaMsg)>,
    ev_tx: mpsc::Sender<CallEvent>,
    agent_tx: mpsc::UnboundedSender<crate::events::AgentEvent>,
    health_tx: tokio::sync::watch::Sender<crate::engine::trunks::TrunkHealth>,
    /// Response received → call event handed on, µs.
    event_latency: hdrhistogram::Histogram<u64>,
    received_at: Option<Instant>,
    shutdown: Option<oneshot::Sender<EngineStats>>,
    recordings_dir: std::path::PathBuf,
    /// Call recordings in progress, by the customer's Call-ID.
    recorders: HashMap<String, CallRecording>,
    /// Recordings (call and IVR) not yet reported written: the task waits for them before
    /// it ends, so their events are not lost.
    recordings_writing: usize,
    /// Three-way mixes in progress (merged warm transfers), by their first leg.
    mixers: HashMap<String, (tokio::task::JoinHandle<()>, Vec<String>)>,
}

/// A call recording in progress: the writer task's queue and the legs feeding it.
struct CallRecording {
    tx: mpsc::Sender<RecMsg>,
    agent_leg: Option<String>,
    /// Packets its writer's queue dropped (shared with the writer, which reports it).
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

/// Packets a recording's writer may fall behind by before they are dropped (2 per 20 ms
/// while bridged: 10 s).
const RECORDING_QUEUE: usize = 1024;

impl EngineTask {
    /// Writes a recording of call `call_id` to `<recordings_dir>/<call_id>.wav` (8 kHz mono
    /// 16-bit PCM) off the engine task, then reports it to the engine (without a file if the
    /// write failed, logged).
    fn save_recording(&mut self, call_id: String, samples: Arc<Vec<i16>>) {
        self.recordings_writing += 1;
        let dir = self.recordings_dir.clone();
        let tx = self.media_tx.clone();
        let duration = Duration::from_millis(samples.len() as u64 / 8);
        tokio::task::spawn_blocking(move || {
            let path = dir.join(format!("{}.wav", safe_file_name(&call_id)));
            let file = std::fs::create_dir_all(&dir)
                .map_err(anyhow::Error::from)
                .and_then(|_| crate::media::wav::write_pcm16(&path, &samples))
                .map(|_| path.display().to_string())
                .map_err(|e| tracing::warn!(%call_id, error = %e, "recording not written"))
                .ok();
            let _ = tx.send((call_id, MediaMsg::Recorded(duration, file)));
        });
    }

    /// Starts recording `customer` (left) and, when given, adds `agent_leg` (right) to it:
    /// each leg's media task copies its received audio into the recording's bounded queue;
    /// a writer task places it and writes `<recordings_dir>/<call_id>-call.wav` at the end.
    fn record_call(&mut self, customer: String, agent_leg: Option<String>) {
        use crate::media::recorder::Side;
        let writing = &mut self.recordings_writing;
        let rec = self.recorders.entry(customer.clone()).or_insert_with(|| {
            let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
            *writing += 1;
            let (tx, rx) = mpsc::channel(RECORDING_QUEUE);
            let path = self
                .recordings_dir
                .join(format!("{}-call.wav", safe_file_name(&customer)));
            tokio::spawn(recorder_task(
                rx,
                Instant::now(),
                path,
                customer.clone(),
                dropped.clone(),
                self.media_tx.clone(),
            ));
            if let Some(h) = self.media.get(&customer) {
                let _ = h.tx.send(MediaCmd::Tap(Some(Tap {
                    tx: tx.clone(),
                    side: Side::Customer,
                    dropped: dropped.clone(),
                })));
            }
            CallRecording {
                tx,
                agent_leg: None,
                dropped,
            }
        });
        if let Some(leg) = agent_leg {
            if let Some(h) = self.media.get(&leg) {
                let _ = h.tx.send(MediaCmd::Tap(Some(Tap {
                    tx: rec.tx.clone(),
                    side: Side::Agent,
                    dropped: rec.dropped.clone(),
                })));
            }
            rec.agent_leg = Some(leg);
        }
    }

    /// Binds RTP ports for the agent legs to come, and makes the offers a burst left without
    /// one (a few rounds at most: each round binds a reserve's worth).
    async fn top_up(&mut self) {
        for _ in 0..8 {
            top_up_bound_ports(
                &mut self.engine,
                &mut self.reserved,
                &mut self.idle_rtp,
                self.media_ip,
            )
            .await;
            if !self.engine.retry_offers(Instant::now()) {
                break;
            }
            self.drain_outputs().await;
        }
    }

    /// Taps third party `leg` into `customer`'s running recording (right channel, mixed with
    /// the agent); nothing when the call is not being recorded.
    fn record_leg(&mut self, customer: &str, leg: &str) {
        let (Some(rec), Some(h)) = (self.recorders.get(customer), self.media.get(leg)) else {
            return;
        };
        let _ = h.tx.send(MediaCmd::Tap(Some(Tap {
            tx: rec.tx.clone(),
            side: crate::media::recorder::Side::Third,
            dropped: rec.dropped.clone(),
        })));
    }

    /// Mixes `legs` (a merged warm transfer): each leg's media task hands its decoded audio
    /// to a mixer task, which every 20 ms sends each leg the sum of the others, encoded in
    /// its law, from its own socket.
    fn mix(&mut self, legs: Vec<String>) {
        self.unmix(&legs);
        let mut outs = Vec::new();
        for id in &legs {
            match self.media.get(id).and_then(|h| h.answer.map(|a| (h, a))) {
                Some((h, a)) => outs.push((h.sock.clone(), a.remote, a.law)),
                None => {
                    tracing::warn!(leg = %id, "mix without the leg's media: not mixed");
                    return;
                }
            }
        }
        let (tx, rx) = mpsc::channel(MIX_QUEUE);
        let task = tokio::spawn(mixer_task(rx, outs));
        for (index, id) in legs.iter().enumerate() {
            if let Some(h) = self.media.get(id) {
                let _ = h.tx.send(MediaCmd::MixTap(Some((tx.clone(), index))));
            }
        }
        self.mixers.insert(legs[0].clone(), (task, legs));
    }

    /// Stops the mix whose first leg is `legs[0]` (if any): its legs stop feeding it.
    fn unmix(&mut self, legs: &[String]) {
        let Some((task, mixed)) = legs.first().and_then(|l| self.mixers.remove(l)) else {
            return;
        };
        task.abort();
        for id in &mixed {
            if let Some(h) = self.media.get(id) {
                let _ = h.tx.send(MediaCmd::MixTap(None));
            }
        }
    }

    /// Ends `customer`'s recording (if any): both legs stop feeding it and the writer is told
    /// the end time (without waiting for it).
    fn stop_call_recording(&mut self, customer: &str) {
        let Some(rec) = self.recorders.remove(customer) else {
            return;
        };
        for leg in std::iter::once(customer).chain(rec.agent_leg.as_deref()) {
            if let Some(h) = self.media.get(leg) {
                let _ = h.tx.send(MediaCmd::Tap(None));
            }
        }
        let at = Instant::now();
        tokio::spawn(async move {
            let _ = rec.tx.send(RecMsg::End(at)).await;
        });
    }

    /// Runs until told to stop and every call and media task has ended; then sends the
    /// counters to whoever asked.
    async fn run(
        &mut self,
        mut cmd_rx: mpsc::UnboundedReceiver<Command>,
        mut media_rx: mpsc::UnboundedReceiver<(String, MediaMsg)>,
    ) {
        self.top_up().await;
        self.engine.start_keepalive(Instant::now());
        // What starting did (static agents available, first pings) goes out now, not at the
        // loop's first wake-up: a campaign waiting for an agent would wait for nothing.
        self.drain_outputs().await;
        let mut stream_rx = self.net.stream_rx.take();
        let udp = self.udp.clone();
        let mut buf = vec![0u8; 65_536];
        loop {
            let wake = self.engine.poll_timeout();
            tokio::select! {
                cmd = cmd_rx.recv(), if self.shutdown.is_none() => self.command(cmd).await,
                r = async {
                    match &udp {
                        Some(s) => s.recv_from(&mut buf).await.map(|(n, src)| Received { bytes: buf[..n].to_vec(), src }),
                        None => std::future::pending().await,
                    }
                } => match r {
                    Ok(rx) => {
                        let now = Instant::now();
                        self.received_at = Some(now);
                        self.engine.handle_datagram(now, &rx.bytes, rx.src);
                        // What else already waits in the socket is taken in the same wake-up
                        // and the engine answers the batch at once (one drain of its outputs:
                        // one store batch), instead of a pass through this loop's other
                        // branches and its housekeeping per datagram (docs/benchmarks.md).
                        if let Some(s) = &udp {
                            let mut n = 0;
                            while n < RECV_BATCH
                                && let Ok((len, src)) = s.try_recv_from(&mut buf)
                            {
                                self.engine.handle_datagram(now, &buf[..len], src);
                                n += 1;
                            }
                        }
                    }
                    // An ICMP error for an earlier datagram surfaces here once (ECONNREFUSED);
                    // its details are in the error queue, read below.
                    Err(e) => tracing::debug!(error = %e, "UDP receive error"),
                },
                // ICMP port or host unreachable (IP_RECVERR): the destinations refused.
                r = async {
                    match &udp {
                        Some(s) => s.ready(tokio::io::Interest::ERROR).await,
                        None => std::future::pending().await,
                    }
                } => if r.is_ok() && let Some(s) = &udp {
                    let now = Instant::now();
                    let refused = crate::sip::transport::take_unreachable(s);
                    for dest in dedup(refused) {
                        tracing::debug!(%dest, "ICMP unreachable");
                        self.engine.handle_unreachable(now, dest);
                    }
                },
                m = async {
                    match &mut stream_rx {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => if let Some(rx) = m {
                    let now = Instant::now();
                    self.received_at = Some(now);
                    self.engine.handle_stream_message(now, &rx.bytes, rx.src);
                },
                m = media_rx.recv() => if let Some((call_id, msg)) = m {
                    match msg {
                        MediaMsg::Event(MediaEvent::Recording { samples }) => {
                            self.save_recording(call_id, samples)
                        }
                        MediaMsg::Event(ev) => self.engine.handle_media_event(Instant::now(), &call_id, ev),
                        MediaMsg::CallRecorded { file, duration, dropped, late } => {
                            self.recordings_writing = self.recordings_writing.saturating_sub(1);
                            self.engine.handle_call_recording(
                                Instant::now(),
                                &call_id,
                                file,
                                duration.as_millis() as u64,
                                dropped,
                                late,
                            )
                        }
                        MediaMsg::Recorded(duration, file) => {
                            self.recordings_writing = self.recordings_writing.saturating_sub(1);
                            self.engine.handle_recording(Instant::now(), &call_id, duration, file)
                        }
                        MediaMsg::Closed(stats, sock) => {
                            if let Some((port, sock)) = sock {
                                self.idle_rtp.keep(port, sock);
                            }
                            self.engine.handle_media_closed(Instant::now(), &call_id, stats)
                        }
                    }
                },
                _ = sleep_until(wake) => self.engine.handle_timeout(Instant::now()),
            }
            self.drain_outputs().await;
            self.received_at = None;
            self.top_up().await;
            if self.shutdown.is_some()
                && self.engine.live_calls() == 0
                && self.engine.media_closing() == 0
                && self.recordings_writing == 0
            {
                break;
            }
        }
        self.finish();
    }

    /// One command from the run loop or the API.
    async fn command(&mut self, cmd: Option<Command>) {
        let engine = &mut self.engine;
        match cmd {
            Some(Command::StartCall {
                call_id,
                attempt,
                mut spec,
                preview_agent,
                priority,
            }) => {
                // Bind the RTP port before it is offered in the SDP (a few tries: a port can
                // be held by another socket).
                let now = Instant::now();
                for _ in 0..16 {
                    let Some(port) = engine.take_rtp_port(now) else {
                        break;
                    };
                    match self.idle_rtp.socket(SocketAddr::new(self.media_ip, port)) {
                        Ok(sock) => {
                            spec.rtp_port = port;
                            let settings = spec.media.settings.clone();
                            let h = open_media(&call_id, port, sock, settings, &self.media_tx);
                            self.media.insert(call_id.clone(), h);
                            break;
                        }
                        Err(_) => engine.skip_rtp_port(port),
                    }
                }
                let preview = preview_agent.map(|a| (call_id.clone(), a));
                if priority != 0 {
                    engine.acd_priority(&call_id, priority);
                }
                engine.start_call(now, call_id, attempt, *spec);
                if let Some((call, agent)) = preview {
                    engine.acd_preview(now, &call, &agent);
                }
            }
            Some(Command::Agent {
                agent,
                action,
                reply,
            }) => {
                let _ = reply.send(engine.agent_control(Instant::now(), &agent, action));
            }
            Some(Command::CallControl {
                agent,
                control,
                reply,
            }) => {
                let _ = reply.send(engine.call_control(Instant::now(), &agent, control));
            }
            Some(Command::Agents(reply)) => {
                let _ = reply.send(engine.agent_views(Instant::now()));
            }
            Some(Command::Queue(reply)) => {
                let _ = reply.send(engine.queue_view(Instant::now()));
            }
            Some(Command::AgentPassword {
                agent,
                password,
                reply,
            }) => {
                let _ = reply.send(engine.set_agent_password(&agent, &password.0));
            }
            Some(Command::HangUp(ids)) => {
                let now = Instant::now();
                for id in ids {
                    engine.hang_up_call(now, &id);
                }
            }
            Some(Command::Stats(reply)) => {
                let _ = reply.send(engine.stats(Instant::now()));
            }
            Some(Command::Shutdown(done)) => {
                engine.hang_up_all(Instant::now());
                self.shutdown = Some(done);
            }
            None => {
                engine.hang_up_all(Instant::now());
                let (tx, _rx) = oneshot::channel();
                self.shutdown = Some(tx);
            }
        }
    }

    /// Carries out everything the engine has to send, say or open.
    async fn drain_outputs(&mut self) {
        while let Some(out) = self.engine.poll_output() {
            match out {
                Output::Transmit(t) => self.transmit(t.dest, t.bytes).await,
                Output::Event(ev) => {
                    // Bounded: a run loop (or store) that falls behind slows the engine down
                    // here instead of letting events pile up in memory.
                    let _ = self.ev_tx.send(ev).await;
                    if let Some(t) = self.received_at {
                        let _ = self
                            .event_latency
                            .record((t.elapsed().as_micros() as u64).max(1));
                    }
                }
                Output::Media(MediaCommand::Open { call_id, port }) => {
                    // An agent leg: its port was bound ahead (see top_up_bound_ports).
                    match self.reserved.remove(&port) {
                        Some(sock) => {
                            let h = open_media(
                                &call_id,
                                port,
                                sock,
                                Default::default(),
                                &self.media_tx,
                            );
                            self.media.insert(call_id, h);
                        }
                        None => tracing::warn!(
                            port,
                            "agent leg RTP port not bound: no audio on that leg"
                        ),
                    }
                }
                Output::Media(MediaCommand::RecordCall {
                    customer,
                    agent_leg,
                }) => self.record_call(customer, agent_leg),
                Output::Media(MediaCommand::RecordLeg { customer, leg }) => {
                    self.record_leg(&customer, &leg)
                }
                Output::Media(MediaCommand::StopCallRecording { customer }) => {
                    self.stop_call_recording(&customer)
                }
                Output::Media(MediaCommand::Mix { legs }) => self.mix(legs),
                Output::Media(MediaCommand::Unmix { legs }) => self.unmix(&legs),
                Output::Media(cmd) => {
                    if let MediaCommand::Close { call_id } = &cmd {
                        self.stop_call_recording(call_id);
                    }
                    media_command(cmd, &mut self.media, &mut self.engine).await
                }
                Output::Agent(ev) => {
                    tracing::debug!(agent = %ev.agent, state = ev.state.as_str(), reason = %ev.reason, "agent state");
                    let _ = self.agent_tx.send(ev);
                }
                Output::Trunk(c) => {
                    if c.up {
                        tracing::info!(trunk = %c.trunk, reason = c.reason, "trunk up");
                    } else {
                        tracing::warn!(trunk = %c.trunk, reason = c.reason, "trunk down");
                    }
                    self.health_tx.send_replace(self.engine.trunk_health());
                }
            }
        }
    }

    /// Sends a SIP message: on a phone's own TCP connection first; then, with a TCP trunk,
    /// on the agents' UDP socket for anything but a trunk; else on the SIP socket.
    async fn transmit(&mut self, dest: SocketAddr, bytes: Vec<u8>) {
        let bytes = if self.net.acceptor.is_some() {
            match self.net.accepted.send(dest, bytes) {
                Ok(()) => return,
                Err(b) => b,
            }
        } else {
            bytes
        };
        let sent = match &self.net.agent_udp {
            Some(u) if !self.trunk_addrs.contains(&dest) => {
                crate::sip::transport::send_udp(u, dest, &bytes).await
            }
            _ => self.net.socket.send(dest, bytes).await,
        };
        if let Err(e) = sent {
            tracing::warn!(%dest, error = %e, "SIP send failed");
            // A TCP trunk that refuses the connection is as dead as a UDP port that answers
            // ICMP unreachable: its INVITEs fail now.
            use std::io::ErrorKind as K;
            if matches!(self.net.socket, SipSocket::Tcp(_))
                && self.trunk_addrs.contains(&dest)
                && matches!(
                    e.kind(),
                    K::ConnectionRefused
                        | K::ConnectionReset
                        | K::HostUnreachable
                        | K::NetworkUnreachable
                )
            {
                self.engine.handle_unreachable(Instant::now(), dest);
            }
        }
    }

    /// After the loop: sockets given back, the counters to whoever asked for the stop.
    fn finish(&mut self) {
        self.reserved.clear();
        if let Some(a) = self.net.acceptor.take() {
            a.abort();
        }
        self.engine.return_bound_ports();
        if let Some(done) = self.shutdown.take() {
            let mut stats = self.engine.stats(Instant::now());
            stats.media_tasks_open = self.media.len() as u64;
            if !self.event_latency.is_empty() {
                stats.event_p50_us = self.event_latency.value_at_quantile(0.5);
                stats.event_p99_us = self.event_latency.value_at_quantile(0.99);
            }
            let _ = done.send(stats);
        }
    }
}

/// The addresses in `v`, each once, in first-seen order.
fn dedup(v: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::with_capacity(v.len());
    for a in v {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// A command for one call's media task.
#[derive(Debug)]
enum MediaCmd {
    Answered(Instant, crate::media::sdp::AudioAnswer),
    Play(std::sync::Arc<Vec<i16>>),
    StopPlayback,
    Record(Duration),
    StopRecording,
    /// Relay every packet received to this other leg (`None`: stop relaying).
    Relay(Option<RelayTarget>),
    /// Relay nothing (the agent muted) or relay again.
    Mute(bool),
    /// Copy received audio into a call recording (`None`: stop).
    Tap(Option<Tap>),
    /// Hand received audio, decoded, to a mixer as its leg `n` (`None`: stop).
    MixTap(Option<MixTap>),
    Close,
}

/// Where a media task copies its received audio for a call recording.
#[derive(Debug)]
struct Tap {
    tx: mpsc::Sender<RecMsg>,
    side: crate::media::recorder::Side,
    /// Packets the writer's queue had no room for.
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

/// What a call recording's writer task is sent.
#[derive(Debug)]
enum RecMsg {
    /// One audio payload: side, arrival, RTP timestamp, law, G.711 bytes.
    Audio(
        crate::media::recorder::Side,
        Instant,
        u32,
        crate::media::g711::Law,
        Vec<u8>,
    ),
    /// The recording ends at this instant.
    End(Instant),
}

/// Where a media task hands its decoded audio for a mix: the mixer's queue and its leg's
/// index there.
type MixTap = (mpsc::Sender<(usize, Vec<i16>)>, usize);

/// Frames the mixer may fall behind by before a leg's audio is dropped.
const MIX_QUEUE: usize = 256;

/// A mix's task: the sans-IO [`crate::media::mixer::Mixer`] ticked every 20 ms; each leg's
/// share encoded in its law and sent as RTP (its own SSRC, sequence and timestamp) from the
/// leg's socket to its far end.
async fn mixer_task(
    mut rx: mpsc::Receiver<(usize, Vec<i16>)>,
    outs: Vec<(
        Arc<tokio::net::UdpSocket>,
        SocketAddr,
        crate::media::g711::Law,
    )>,
) {
    use crate::media::mixer::{FRAME, Mixer};
    let mut mixer = Mixer::new(outs.len());
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rtp: Vec<(u32, u16, u32)> = outs
        .iter()
        .map(|_| {
            let r: u64 = rand::random();
            (r as u32, (r >> 32) as u16, r.rotate_left(19) as u32)
        })
        .collect();
    let mut payload = [0u8; FRAME];
    loop {
        tick.tick().await;
        while let Ok((i, samples)) = rx.try_recv() {
            mixer.push(i, &samples);
        }
        let frames = mixer.mix();
        for (((sock, dest, law), (ssrc, seq, ts)), f) in outs.iter().zip(&mut rtp).zip(frames) {
            for (o, s) in payload.iter_mut().zip(f) {
                *o = law.encode(*s);
            }
            let pkt = crate::media::session::rtp_packet(
                law.payload_type(),
                *seq,
                *ts,
                *ssrc,
                false,
                &payload,
            );
            let _ = sock.send_to(&pkt, *dest).await;
            *seq = seq.wrapping_add(1);
            *ts = ts.wrapping_add(FRAME as u32);
        }
    }
}

/// A Call-ID as a file name: anything but ASCII letters, digits and `-` becomes `_`.
pub fn safe_file_name(call_id: &str) -> String {
    call_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A call recording's writer: places each leg's audio on the timeline
/// ([`crate::media::recorder::CallRecorder`]) and appends what is final to the stereo WAV
/// every half second (three seconds behind real time), so memory stays bounded however long the
/// call; at the end message the rest is written and the header given its length. The file is
/// written through tokio's file (a blocking pool), never on the runtime's threads. A file that
/// cannot be written is logged and the recording goes on without one (reported `file: None`).
async fn recorder_task(
    mut rx: mpsc::Receiver<RecMsg>,
    started: Instant,
    path: std::path::PathBuf,
    call_id: String,
    dropped: Arc<std::sync::atomic::AtomicU64>,
    to_engine: mpsc::UnboundedSender<(String, MediaMsg)>,
) {
    use crate::media::recorder::{CallRecorder, le_bytes, stereo_wav_header};
    use tokio::io::{AsyncSeekExt, AsyncWriteExt};
    let mut rec = CallRecorder::new(started);
    let mut file = open_recording(&path).await;
    let mut written: u64 = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let write = |f: &mut Option<tokio::fs::File>, bytes: Vec<u8>| {
        let mut f = f.take();
        async move {
            if let Some(file) = &mut f
                && let Err(e) = file.write_all(&bytes).await
            {
                tracing::warn!(error = %e, "call recording: write failed");
                return None;
            }
            f
        }
    };
    let end = loop {
        tokio::select! {
            m = rx.recv() => match m {
                Some(RecMsg::Audio(side, at, ts, law, payload)) => rec.push(side, at, ts, law, &payload),
                Some(RecMsg::End(at)) => break at,
                None => break Instant::now(),
            },
            _ = tick.tick() => {
                let pcm = rec.drain(Instant::now());
                written += pcm.len() as u64 * 2;
                file = write(&mut file, le_bytes(&pcm)).await;
            }
        }
    };
    drop(rx);
    let late = rec.late;
    let (tail, duration) = rec.finish(end);
    written += tail.len() as u64 * 2;
    file = write(&mut file, le_bytes(&tail)).await;
    let file = match file {
        Some(mut f) => {
            let header = stereo_wav_header(u32::try_from(written).unwrap_or(u32::MAX));
            let done = async {
                f.seek(std::io::SeekFrom::Start(0)).await?;
                f.write_all(&header).await?;
                // No fsync: a call's end must not wait on the disk (the kernel writes back).
                f.flush().await
            };
            match done.await {
                Ok(()) => Some(path.display().to_string()),
                Err(e) => {
                    tracing::warn!(%call_id, error = %e, "call recording not finished");
                    None
                }
            }
        }
        None => None,
    };
    let dropped = dropped.load(std::sync::atomic::Ordering::Relaxed);
    let _ = to_engine.send((
        call_id,
        MediaMsg::CallRecorded {
            file,
            duration,
            dropped,
            late,
        },
    ));
}

/// Creates a call recording's file (and its directory) with a placeholder WAV header.
async fn open_recording(path: &std::path::Path) -> Option<tokio::fs::File> {
    use tokio::io::AsyncWriteExt;
    let open = async {
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let mut f = tokio::fs::File::create(path).await?;
        f.write_all(&crate::media::recorder::stereo_wav_header(0))
            .await?;
        Ok::<_, std::io::Error>(f)
    };
    match open.await {
        Ok(f) => Some(f),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "call recording file not created");
            None
        }
    }
}

/// The other leg of a bridge, as one media task sends to it.
#[derive(Debug)]
struct RelayTarget {
    /// The other leg's RTP socket (its packets leave from the port its far end expects).
    sock: Arc<tokio::net::UdpSocket>,
    /// The other leg's far end.
    remote: SocketAddr,
    /// This leg's codec and the other leg's.
    from: LegCodec,
    to: LegCodec,
}

/// The shell's handle on one call's media task.
struct MediaHandle {
    tx: mpsc::UnboundedSender<MediaCmd>,
    sock: Arc<tokio::net::UdpSocket>,
    answer: Option<crate::media::sdp::AudioAnswer>,
}

fn open_media(
    call_id: &str,
    port: u16,
    sock: tokio::net::UdpSocket,
    settings: crate::media::session::MediaSettings,
    media_tx: &mpsc::UnboundedSender<(String, MediaMsg)>,
) -> MediaHandle {
    let sock = Arc::new(sock);
    let (tx, rx) = mpsc::unbounded_channel();
    let session = MediaSession::new(Instant::now(), settings, rand::random());
    tokio::spawn(media_task(
        call_id.to_string(),
        port,
        sock.clone(),
        session,
        rx,
        media_tx.clone(),
    ));
    MediaHandle {
        tx,
        sock,
        answer: None,
    }
}

fn codec_of(a: &crate::media::sdp::AudioAnswer) -> LegCodec {
    LegCodec {
        law: a.law,
        telephone_event: a.telephone_event,
    }
}

/// What a media task reports to the engine task.
#[derive(Debug)]
enum MediaMsg {
    Event(MediaEvent),
    /// A recording was written (or could not be): its length and file.
    Recorded(Duration, Option<String>),
    /// The session ended: its statistics, and its socket with its port when nothing else
    /// holds it any more (for [`IdleRtp::keep`]).
    Closed(RtpStats, Option<(u16, tokio::net::UdpSocket)>),
    /// A call recording was written (or could not be).
    CallRecorded {
        file: Option<String>,
        duration: Duration,
        dropped: u64,
        late: u64,
    },
}

async fn media_command(
    cmd: MediaCommand,
    media: &mut HashMap<String, MediaHandle>,
    engine: &mut Engine,
) {
    match cmd {
        MediaCommand::Answered {
            call_id,
            at,
            answer,
        } => {
            if let Some(h) = media.get_mut(&call_id) {
                h.answer = Some(answer);
                let _ = h.tx.send(MediaCmd::Answered(at, answer));
            }
        }
        MediaCommand::Play { call_id, samples } => {
            if let Some(h) = media.get(&call_id) {
                let _ = h.tx.send(MediaCmd::Play(samples));
            }
        }
        MediaCommand::StopPlayback { call_id } => {
            if let Some(h) = media.get(&call_id) {
                let _ = h.tx.send(MediaCmd::StopPlayback);
            }
        }
        MediaCommand::Record { call_id, max } => {
            if let Some(h) = media.get(&call_id) {
                let _ = h.tx.send(MediaCmd::Record(max));
            }
        }
        MediaCommand::StopRecording { call_id } => {
            if let Some(h) = media.get(&call_id) {
                let _ = h.tx.send(MediaCmd::StopRecording);
            }
        }
        MediaCommand::Bridge { customer, agent } => {
            let (Some(c), Some(a)) = (media.get(&customer), media.get(&agent)) else {
                tracing::warn!(%customer, %agent, "bridge without both media sessions: no audio relayed");
                return;
            };
            let (Some(ca), Some(aa)) = (c.answer, a.answer) else {
                tracing::warn!(%customer, %agent, "bridge before both SDP answers: no audio relayed");
                return;
            };
            let _ = c.tx.send(MediaCmd::Relay(Some(RelayTarget {
                sock: a.sock.clone(),
                remote: aa.remote,
                from: codec_of(&ca),
                to: codec_of(&aa),
            })));
            let _ = a.tx.send(MediaCmd::Relay(Some(RelayTarget {
                sock: c.sock.clone(),
                remote: ca.remote,
                from: codec_of(&aa),
                to: codec_of(&ca),
            })));
        }
        MediaCommand::Unbridge { customer, agent } => {
            for id in [customer, agent] {
                if let Some(h) = media.get(&id) {
                    let _ = h.tx.send(MediaCmd::Relay(None));
                }
            }
        }
        MediaCommand::Mute { call_id, on } => {
            if let Some(h) = media.get(&call_id) {
                let _ = h.tx.send(MediaCmd::Mute(on));
            }
        }
        // Carried out by the engine task itself (it owns the recordings).
        MediaCommand::Open { .. }
        | MediaCommand::RecordCall { .. }
        | MediaCommand::RecordLeg { .. }
        | MediaCommand::StopCallRecording { .. }
        | MediaCommand::Mix { .. }
        | MediaCommand::Unmix { .. } => {}
        MediaCommand::Close { call_id } => match media.remove(&call_id) {
            Some(MediaHandle { tx, .. }) => {
                if tx.send(MediaCmd::Close).is_err() {
                    engine.handle_media_closed(Instant::now(), &call_id, RtpStats::default());
                }
            }
            // Never opened (bind failed): nothing will report, so report empty stats now.
            None => engine.handle_media_closed(Instant::now(), &call_id, RtpStats::default()),
        },
    }
}

/// One call's RTP: the socket, the sans-IO [`MediaSession`] and its timer.
async fn media_task(
    call_id: String,
    port: u16,
    sock: Arc<tokio::net::UdpSocket>,
    mut session: MediaSession,
    mut cmds: mpsc::UnboundedReceiver<MediaCmd>,
    to_engine: mpsc::UnboundedSender<(String, MediaMsg)>,
) {
    let mut buf = [0u8; 2048];
    let mut relay: Option<RelayTarget> = None;
    let mut relay_buf = Vec::with_capacity(2048);
    let mut relayed = 0u64;
    let mut muted = false;
    let mut tap: Option<Tap> = None;
    let mut mix: Option<MixTap> = None;
    let mut law: Option<crate::media::g711::Law> = None;
    loop {
        let wake = session.poll_timeout();
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                if let Ok((n, src)) = r {
                    // Bridged: the packet goes straight out of the other leg's socket first,
                    // then the session counts it (loss, jitter, DTMF).
                    let now = Instant::now();
                    if let (Some(t), Some(l)) = (&tap, law)
                        && !muted
                        && let Some((ts, payload)) = crate::media::relay::audio_payload(&buf[..n], l)
                    {
                        let msg = RecMsg::Audio(t.side, now, ts, l, payload.to_vec());
                        // Full: the writer fell behind (counted); closed: the recording ended.
                        if let Err(mpsc::error::TrySendError::Full(_)) = t.tx.try_send(msg) {
                            t.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    if let (Some((tx, i)), Some(l)) = (&mix, law)
                        && !muted
                        && let Some((_, payload)) = crate::media::relay::audio_payload(&buf[..n], l)
                    {
                        let mut pcm = vec![0i16; payload.len()];
                        l.decode_into(payload, &mut pcm);
                        let _ = tx.try_send((*i, pcm));
                    }
                    if let Some(t) = &relay
                        && !muted
                        && relay_packet(&buf[..n], t.from, t.to, &mut relay_buf)
                        && t.sock.send_to(&relay_buf, t.remote).await.is_ok()
                    {
                        relayed += 1;
                    }
                    session.handle_packet(now, &buf[..n], src);
                }
            }
            c = cmds.recv() => match c {
                Some(MediaCmd::Answered(at, answer)) => {
                    law = Some(answer.law);
                    session.answered(at, answer)
                }
                Some(MediaCmd::Mute(on)) => muted = on,
                Some(MediaCmd::Tap(t)) => tap = t,
                Some(MediaCmd::MixTap(m)) => mix = m,
                Some(MediaCmd::Play(samples)) => session.play(Instant::now(), samples),
                Some(MediaCmd::StopPlayback) => session.stop_playback(),
                Some(MediaCmd::Record(max)) => session.record(Instant::now(), max),
                Some(MediaCmd::StopRecording) => session.stop_recording(),
                Some(MediaCmd::Relay(t)) => relay = t,
                Some(MediaCmd::Close) | None => break,
            },
            _ = sleep_until(wake) => session.handle_timeout(Instant::now()),
        }
        while let Some(ev) = session.poll_event() {
            let _ = to_engine.send((call_id.clone(), MediaMsg::Event(ev)));
        }
        while let Some((dest, pkt)) = session.poll_transmit() {
            let _ = sock.send_to(&pkt, dest).await;
        }
    }
    let mut stats = session.stats();
    stats.relayed = relayed;
    // The handle was dropped when the call closed; a bridged peer's relay may still hold
    // the socket, and then it closes with the last holder instead of being kept.
    let sock = Arc::try_unwrap(sock).ok().map(|s| (port, s));
    let _ = to_engine.send((call_id, MediaMsg::Closed(stats, sock)));
}

/// Keeps [`BOUND_PORT_RESERVE`](super::core::BOUND_PORT_RESERVE) RTP sockets bound for the
/// legs the engine starts itself (agent legs): their INVITE offers the port at once, and
/// binding it only then could fail when another process holds it.
async fn top_up_bound_ports(
    engine: &mut Engine,
    reserved: &mut HashMap<u16, tokio::net::UdpSocket>,
    idle: &mut IdleRtp,
    ip: std::net::IpAddr,
) {
    while engine.bound_ports_wanted() > 0 {
        let Some(port) = engine.take_rtp_port(Instant::now()) else {
            break;
        };
        match idle.socket(SocketAddr::new(ip, port)) {
            Ok(sock) => {
                reserved.insert(port, sock);
                engine.give_bound_port(port);
            }
            Err(_) => engine.skip_rtp_port(port),
        }
    }
}

/// Receive buffer of an RTP socket, bytes (the kernel doubles it for its bookkeeping and caps
/// it at `net.core.rmem_max`). The default (`rmem_default`, 208 KiB here) holds about 3 s of
/// one call's 20 ms packets; this holds a media task's stall four times as long when the
/// machine is saturated. Only what is queued is charged, so idle calls cost nothing more.
const RTP_RECV_BUFFER: usize = 1 << 20;

/// A non-blocking UDP socket for one leg's RTP on `addr`, with [`RTP_RECV_BUFFER`].
/// Errors: the port is taken (or the address is not ours).
fn bind_rtp(addr: SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    if let Err(e) = sock.set_recv_buffer_size(RTP_RECV_BUFFER) {
        tracing::debug!(error = %e, "could not enlarge an RTP receive buffer");
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    tokio::net::UdpSocket::from_std(sock.into())
}

/// Most RTP sockets of ended calls kept bound, and at most half the process's open-file limit
/// (each is a file descriptor; the calls in progress need theirs): beyond it, a released
/// socket is closed and its port bound anew when it is next taken. A socket's receive buffer
/// is charged only for what is queued in it.
const IDLE_RTP_MAX: usize = 8192;

/// Datagrams read away at most from a kept socket before it carries a new call.
const IDLE_RTP_DRAIN: usize = 256;

/// RTP sockets of ended calls, kept bound by port (issue 19: a `socket`, `bind`, epoll
/// registration and `close` per call were ~7 % of the process's CPU at 4,000 calls/s). The
/// engine's port pool hands a released port out again after
/// [`RTP_PORT_REST`](outdial_core::engine::core::RTP_PORT_REST), so a steady load reuses the
/// same ports, and their sockets, call after call.
struct IdleRtp {
    idle: HashMap<u16, tokio::net::UdpSocket>,
    /// Most kept ([`IDLE_RTP_MAX`], or half the open-file limit when that is lower).
    max: usize,
}

impl Default for IdleRtp {
    fn default() -> Self {
        let files = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
        Self {
            idle: HashMap::new(),
            max: idle_rtp_max(files),
        }
    }
}

/// How many RTP sockets [`IdleRtp`] keeps under an open-file limit of `files` (the soft
/// `RLIMIT_NOFILE`; `u64::MAX` when unlimited): half of it, at most [`IDLE_RTP_MAX`].
fn idle_rtp_max(files: u64) -> usize {
    IDLE_RTP_MAX.min(usize::try_from(files / 2).unwrap_or(usize::MAX))
}

impl IdleRtp {
    /// A socket on `addr` for a new call: the one kept for its port, with what arrived since
    /// its last call read away (at most [`IDLE_RTP_DRAIN`] datagrams), or a new one
    /// ([`bind_rtp`]). Errors: as [`bind_rtp`].
    fn socket(&mut self, addr: SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
        match self.idle.remove(&addr.port()) {
            Some(sock) => {
                let mut buf = [0u8; 64];
                for _ in 0..IDLE_RTP_DRAIN {
                    if sock.try_recv_from(&mut buf).is_err() {
                        break;
                    }
                }
                Ok(sock)
            }
            None => bind_rtp(addr),
        }
    }

    /// Keeps `sock`, bound to `port`, for the next call on that port (closed instead when
    /// the most allowed are kept).
    fn keep(&mut self, port: u16, sock: tokio::net::UdpSocket) {
        if self.idle.len() < self.max {
            self.idle.insert(port, sock);
        }
    }
}

/// Sleeps until a core's next wake-up, or forever when it has none.
async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// A random stream for a core, seeded from the operating system's generator.
pub fn os_tokens() -> crate::sip::message::Tokens {
    crate::sip::message::Tokens::from_seed(rand::random())
}

/// Most datagrams taken from the SIP socket in one wake-up beyond the first.
const RECV_BATCH: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_kept_rtp_socket_carries_the_next_call_on_its_port_without_the_last_calls_packets() {
        let mut idle = IdleRtp::default();
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let sock = idle.socket(any).expect("bind");
        let addr = sock.local_addr().expect("addr");
        idle.keep(addr.port(), sock);
        // The last call's far end still sends after the call ended.
        let far = tokio::net::UdpSocket::bind(any).await.expect("far end");
        for i in 0..3u8 {
            far.send_to(&[0x80, 0, 0, i], addr).await.expect("send");
        }
        // Loopback delivers at once; wait until the datagrams are queued.
        let kept = idle.idle.get(&addr.port()).expect("kept");
        kept.readable().await.expect("readable");
        let sock = idle.socket(addr).expect("reuse");
        assert_eq!(sock.local_addr().expect("addr"), addr, "the same socket");
        assert!(idle.idle.is_empty());
        let mut buf = [0u8; 16];
        assert_eq!(
            sock.try_recv_from(&mut buf).map_err(|e| e.kind()),
            Err(std::io::ErrorKind::WouldBlock),
            "the last call's datagrams were read away"
        );
        // The new call's packets arrive.
        far.send_to(&[0x80, 0, 0, 9], addr).await.expect("send");
        let (n, from) = sock.recv_from(&mut buf).await.expect("recv");
        assert_eq!(
            (&buf[..n], from),
            (&[0x80, 0, 0, 9][..], far.local_addr().unwrap())
        );
    }

    #[test]
    fn kept_rtp_sockets_take_at_most_half_the_open_file_limit() {
        assert_eq!(idle_rtp_max(1024), 512);
        assert_eq!(idle_rtp_max(20_000), IDLE_RTP_MAX);
        assert_eq!(idle_rtp_max(u64::MAX), IDLE_RTP_MAX);
        assert_eq!(idle_rtp_max(1), 0);
    }

    #[tokio::test]
    async fn beyond_the_cap_a_released_rtp_socket_is_closed() {
        let mut idle = IdleRtp {
            max: 2,
            ..Default::default()
        };
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut ports = Vec::new();
        for _ in 0..3 {
            let sock = idle.socket(any).expect("bind");
            let addr = sock.local_addr().expect("addr");
            idle.keep(addr.port(), sock);
            ports.push(addr);
        }
        let addr = ports[2];
        assert_eq!(idle.idle.len(), 2);
        assert!(ports[..2].iter().all(|a| idle.idle.contains_key(&a.port())));
        assert!(!idle.idle.contains_key(&addr.port()));
        // Closed: its port can be bound again at once.
        assert!(bind_rtp(addr).is_ok());
    }
}
