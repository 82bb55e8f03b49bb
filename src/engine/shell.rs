//! The tokio shell around [`Engine`]: one task owns the core, the socket and the timer, takes
//! commands from a channel, and sends call events out on another.

use std::net::SocketAddr;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::core::{Engine, EngineConfig, EngineStats, Output};
use crate::call::leg::CallSpec;
use crate::events::{AttemptRef, CallEvent};
use crate::sip::dialog::LocalParty;
use crate::sip::message::Transport;
use crate::sip::transaction::Timers;
use crate::sip::transport::{Received, SipSocket};

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
    },
    /// Hang up everything, wait for the calls to finish, then stop and report the counters.
    Shutdown(oneshot::Sender<EngineStats>),
}

/// Settings for [`spawn`].
#[derive(Debug, Clone)]
pub struct ShellConfig {
    /// Local address to bind (port 0: any free port).
    pub bind: SocketAddr,
    /// The trunk's resolved address.
    pub trunk: SocketAddr,
    /// UDP or TCP.
    pub transport: Transport,
    /// `User-Agent` header.
    pub user_agent: String,
    /// RFC 3261 timers.
    pub timers: Timers,
    /// RTP port range (inclusive).
    pub rtp_ports: (u16, u16),
}

/// The handle the campaign side keeps.
pub struct EngineHandle {
    /// Commands in.
    pub commands: mpsc::UnboundedSender<Command>,
    /// Call events out, in the order they happened per call.
    pub events: mpsc::UnboundedReceiver<CallEvent>,
    /// Our SIP address as advertised (Via sent-by).
    pub local_addr: SocketAddr,
    /// The engine task.
    pub task: JoinHandle<()>,
}

/// Binds the socket and starts the engine task.
/// Errors: binding or (TCP) connecting to the trunk failed.
pub async fn spawn(cfg: ShellConfig) -> anyhow::Result<EngineHandle> {
    let (mut socket, mut stream_rx) = match cfg.transport {
        Transport::Udp => (SipSocket::udp(cfg.bind).await?, None),
        Transport::Tcp => {
            let (s, rx) = SipSocket::tcp(cfg.bind, cfg.trunk).await?;
            (s, Some(rx))
        }
    };
    let local_addr = socket.local_addr()?;
    let engine_cfg = EngineConfig {
        local: LocalParty {
            sent_by: local_addr.to_string(),
            transport: cfg.transport,
            user_agent: cfg.user_agent.clone(),
        },
        trunk: cfg.trunk,
        timers: cfg.timers,
        rtp_ports: cfg.rtp_ports,
    };
    let (cmd_tx, mut cmd_rx) = mpsc::unbounded_channel::<Command>();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel::<CallEvent>();
    let task = tokio::spawn(async move {
        let mut engine = Engine::new(engine_cfg);
        let udp = match &socket {
            SipSocket::Udp(s) => Some(s.clone()),
            SipSocket::Tcp(_) => None,
        };
        let mut buf = vec![0u8; 65_536];
        let mut shutdown: Option<oneshot::Sender<EngineStats>> = None;
        loop {
            let wake = engine.poll_timeout();
            tokio::select! {
                cmd = cmd_rx.recv(), if shutdown.is_none() => match cmd {
                    Some(Command::StartCall { call_id, attempt, spec }) => {
                        engine.start_call(Instant::now(), call_id, attempt, *spec);
                    }
                    Some(Command::Shutdown(done)) => {
                        engine.hang_up_all(Instant::now());
                        shutdown = Some(done);
                    }
                    None => {
                        engine.hang_up_all(Instant::now());
                        let (tx, _rx) = oneshot::channel();
                        shutdown = Some(tx);
                    }
                },
                r = async {
                    match &udp {
                        Some(s) => s.recv_from(&mut buf).await.map(|(n, src)| Received { bytes: buf[..n].to_vec(), src }),
                        None => std::future::pending().await,
                    }
                } => match r {
                    Ok(rx) => engine.handle_datagram(Instant::now(), &rx.bytes, rx.src),
                    // ICMP port unreachable and friends surface here on Linux; timers recover.
                    Err(e) => tracing::debug!(error = %e, "UDP receive error"),
                },
                m = async {
                    match &mut stream_rx {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => if let Some(rx) = m {
                    engine.handle_stream_message(Instant::now(), &rx.bytes, rx.src);
                },
                _ = async {
                    match wake {
                        Some(t) => tokio::time::sleep_until(t.into()).await,
                        None => std::future::pending().await,
                    }
                } => engine.handle_timeout(Instant::now()),
            }
            while let Some(out) = engine.poll_output() {
                match out {
                    Output::Transmit(t) => {
                        if let Err(e) = socket.send(t.dest, t.bytes).await {
                            tracing::warn!(dest = %t.dest, error = %e, "SIP send failed");
                        }
                    }
                    Output::Event(ev) => {
                        let _ = ev_tx.send(ev);
                    }
                }
            }
            if shutdown.is_some() && engine.live_calls() == 0 {
                break;
            }
        }
        if let Some(done) = shutdown {
            let _ = done.send(engine.stats());
        }
    });
    Ok(EngineHandle {
        commands: cmd_tx,
        events: ev_rx,
        local_addr,
        task,
    })
}
