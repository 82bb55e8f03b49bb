//! The tokio transport shell: one UDP socket, or one TCP connection per trunk; and, for agents'
//! phones, a TCP listener whose connections are kept by [`Accepted`].
//!
//! UDP: datagrams in and out of one socket. TCP (RFC 3261 §18.3): one connection per trunk
//! (or outbound proxy) address,
//! opened on first use and re-opened on the next send after it drops; a reader task cuts the
//! byte stream into messages with [`StreamFramer`] and a writer task drains a queue, so a slow
//! peer never blocks the engine loop.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;

use super::message::StreamFramer;

/// Requested size of the SIP UDP socket's receive and send buffers, bytes (8 MiB; Linux
/// doubles the request and caps it at `net.core.rmem_max`, 4 MiB on a default host).
pub const UDP_BUFFER: usize = 8 * 1024 * 1024;

/// A message received from the network.
#[derive(Debug)]
pub struct Received {
    /// The bytes of one datagram or one framed stream message.
    pub bytes: Vec<u8>,
    /// Who sent it.
    pub src: SocketAddr,
}

/// The socket side of the engine.
pub enum SipSocket {
    /// One UDP socket for everything.
    Udp(Arc<UdpSocket>),
    /// One TCP connection per trunk address.
    Tcp(TcpLinks),
}

/// The TCP connections, one per destination address, opened on first use.
pub struct TcpLinks {
    bind: SocketAddr,
    links: std::collections::HashMap<SocketAddr, TcpLink>,
    inbound: mpsc::UnboundedSender<Received>,
    local: SocketAddr,
}

impl SipSocket {
    /// Binds a UDP socket on `bind` (port 0 picks a free one), with receive and send buffers
    /// of [`UDP_BUFFER`] bytes (the kernel caps them at `net.core.rmem_max`/`wmem_max`): a
    /// burst of responses while the engine task is busy must wait in the socket, not be
    /// dropped and cost a retransmission.
    pub async fn udp(bind: SocketAddr) -> io::Result<Self> {
        Ok(Self::Udp(udp_socket(bind).await?))
    }

    /// Where a TCP connection's messages go (`None` for UDP): accepted connections feed the
    /// same queue.
    pub fn inbound(&self) -> Option<mpsc::UnboundedSender<Received>> {
        match self {
            SipSocket::Udp(_) => None,
            SipSocket::Tcp(l) => Some(l.inbound.clone()),
        }
    }

    /// Connects over TCP to the first of `trunks` that accepts (the others are connected on
    /// first use), binding the local side to `bind`'s IP. Errors: none accepted.
    pub async fn tcp(
        bind: SocketAddr,
        trunks: &[SocketAddr],
    ) -> io::Result<(Self, mpsc::UnboundedReceiver<Received>)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut last_err = io::Error::other("no trunk address");
        for &trunk in trunks {
            let mut link = TcpLink::new(bind, trunk, tx.clone());
            match link.ensure_connected().await {
                Ok(()) => {
                    let local = link.local.expect("connected");
                    let mut links = std::collections::HashMap::new();
                    links.insert(trunk, link);
                    return Ok((
                        Self::Tcp(TcpLinks {
                            bind,
                            links,
                            inbound: tx,
                            local,
                        }),
                        rx,
                    ));
                }
                Err(e) => {
                    tracing::warn!(%trunk, error = %e, "TCP connect to trunk failed");
                    last_err = e;
                }
            }
        }
        Err(last_err)
    }

    /// The local address to advertise in Via and Contact.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            SipSocket::Udp(s) => s.local_addr(),
            SipSocket::Tcp(l) => Ok(l.local),
        }
    }

    /// Sends one message. Over TCP it goes on the connection to `dest`, opened (or
    /// re-opened after a drop) as needed. Errors: the socket's (the caller counts and logs
    /// them; SIP timers recover).
    pub async fn send(&mut self, dest: SocketAddr, bytes: Vec<u8>) -> io::Result<()> {
        match self {
            SipSocket::Udp(s) => send_udp(s, dest, &bytes).await,
            SipSocket::Tcp(l) => {
                let (bind, inbound) = (l.bind, &l.inbound);
                let link = l
                    .links
                    .entry(dest)
                    .or_insert_with(|| TcpLink::new(bind, dest, inbound.clone()));
                link.send(bytes).await
            }
        }
    }
}

/// One TCP connection to a trunk with reconnect-on-send.
pub struct TcpLink {
    bind: SocketAddr,
    trunk: SocketAddr,
    writer: Option<mpsc::UnboundedSender<Vec<u8>>>,
    alive: Arc<AtomicBool>,
    inbound: mpsc::UnboundedSender<Received>,
    local: Option<SocketAddr>,
}

impl TcpLink {
    /// A link to `trunk`, not yet connected (it connects on first send).
    fn new(bind: SocketAddr, trunk: SocketAddr, inbound: mpsc::UnboundedSender<Received>) -> Self {
        Self {
            bind,
            trunk,
            writer: None,
            alive: Arc::new(AtomicBool::new(false)),
            inbound,
            local: None,
        }
    }

    async fn ensure_connected(&mut self) -> io::Result<()> {
        if self.writer.is_some() && self.alive.load(Ordering::Acquire) {
            return Ok(());
        }
        let sock = match self.bind {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        sock.bind(SocketAddr::new(self.bind.ip(), 0))?;
        let stream: TcpStream = sock.connect(self.trunk).await?;
        self.local = Some(stream.local_addr()?);
        let (wtx, alive) = run_stream(stream, self.inbound.clone(), "trunk")?;
        self.alive = alive;
        self.writer = Some(wtx);
        Ok(())
    }

    async fn send(&mut self, bytes: Vec<u8>) -> io::Result<()> {
        self.ensure_connected().await?;
        if let Some(w) = &self.writer
            && w.send(bytes.clone()).is_err()
        {
            self.writer = None;
            self.ensure_connected().await?;
            if let Some(w) = &self.writer {
                w.send(bytes)
                    .map_err(|_| io::Error::other("TCP writer gone"))?;
            }
        }
        Ok(())
    }
}

/// Starts the reader and writer tasks of one SIP-over-TCP connection: the reader cuts the byte
/// stream into messages ([`StreamFramer`], RFC 3261 §18.3) and hands them to `inbound`; the
/// writer drains the returned queue. The flag turns false when either side fails or the peer
/// closes; a framing error closes the connection. `what` names the peer in logs.
fn run_stream(
    stream: TcpStream,
    inbound: mpsc::UnboundedSender<Received>,
    what: &'static str,
) -> io::Result<(mpsc::UnboundedSender<Vec<u8>>, Arc<AtomicBool>)> {
    stream.set_nodelay(true)?;
    let peer = stream.peer_addr()?;
    let (mut rd, mut wr) = stream.into_split();
    let (wtx, mut wrx) = mpsc::unbounded_channel::<Vec<u8>>();
    let alive = Arc::new(AtomicBool::new(true));
    let writer_alive = alive.clone();
    tokio::spawn(async move {
        while let Some(b) = wrx.recv().await {
            if let Err(e) = wr.write_all(&b).await {
                tracing::warn!(%peer, what, error = %e, "TCP write failed");
                writer_alive.store(false, Ordering::Release);
                break;
            }
        }
    });
    let reader_alive = alive.clone();
    tokio::spawn(async move {
        let mut framer = StreamFramer::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    framer.push(&buf[..n]);
                    loop {
                        match framer.next_message() {
                            Ok(Some(m)) => {
                                let _ = inbound.send(Received {
                                    bytes: m,
                                    src: peer,
                                });
                            }
                            Ok(None) => break,
                            Err(e) => {
                                tracing::warn!(%peer, what, error = %e, "TCP framing error; closing connection");
                                reader_alive.store(false, Ordering::Release);
                                return;
                            }
                        }
                    }
                }
            }
        }
        tracing::info!(%peer, what, "TCP connection closed");
        reader_alive.store(false, Ordering::Release);
    });
    Ok((wtx, alive))
}

/// The TCP connections phones opened to us (agents registering over TCP), by the phone's
/// address. Requests and responses to that address go back on its connection (RFC 3261
/// §18.2.2; the connection reuse of RFC 5626 §5), since a phone behind NAT or a firewall
/// cannot be connected to.
///
/// Bounded: at most [`Accepted::MAX_TOTAL`] open connections, and [`Accepted::MAX_PER_IP`]
/// from one IP address (a contact centre's phones may share one NAT address); a connection
/// beyond either is closed at once. Each connection's header section and body are bounded by
/// [`StreamFramer`].
#[derive(Clone)]
pub struct Accepted {
    conns: Arc<std::sync::Mutex<std::collections::HashMap<SocketAddr, Conn>>>,
    max_total: usize,
    max_per_ip: usize,
}

impl Default for Accepted {
    fn default() -> Self {
        Self::with_limits(Self::MAX_TOTAL, Self::MAX_PER_IP)
    }
}

struct Conn {
    writer: mpsc::UnboundedSender<Vec<u8>>,
    alive: Arc<AtomicBool>,
}

impl Accepted {
    /// Most accepted connections open at once.
    pub const MAX_TOTAL: usize = 4096;
    /// Most accepted connections open at once from one IP address.
    pub const MAX_PER_IP: usize = 512;

    /// An empty set with these bounds (total, per IP address).
    pub fn with_limits(max_total: usize, max_per_ip: usize) -> Self {
        Self {
            conns: Arc::default(),
            max_total,
            max_per_ip,
        }
    }

    /// Live connections now.
    pub fn open(&self) -> usize {
        let mut conns = self.conns.lock().expect("accepted connections lock");
        conns.retain(|_, c| c.alive.load(Ordering::Acquire));
        conns.len()
    }

    /// Queues `bytes` on the open connection from `dest`. Gives them back when there is no
    /// (live) connection from `dest`, for the caller to send another way.
    pub fn send(&self, dest: SocketAddr, bytes: Vec<u8>) -> Result<(), Vec<u8>> {
        let mut conns = self.conns.lock().expect("accepted connections lock");
        let Some(c) = conns.get(&dest) else {
            return Err(bytes);
        };
        if !c.alive.load(Ordering::Acquire) {
            conns.remove(&dest);
            return Err(bytes);
        }
        c.writer.send(bytes).map_err(|e| e.0)
    }

    /// Accepts connections on `listener` until the task is aborted; each one's messages go to
    /// `inbound` with the phone's address as source.
    pub fn serve(
        &self,
        listener: tokio::net::TcpListener,
        inbound: mpsc::UnboundedSender<Received>,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, peer)) => {
                        let (total, from_ip) = {
                            let mut conns = me.conns.lock().expect("accepted connections lock");
                            conns.retain(|_, c| c.alive.load(Ordering::Acquire));
                            let from_ip = conns.keys().filter(|a| a.ip() == peer.ip()).count();
                            (conns.len(), from_ip)
                        };
                        if total >= me.max_total || from_ip >= me.max_per_ip {
                            tracing::warn!(%peer, total, from_ip, "SIP TCP connection refused: too many open");
                            drop(stream);
                            continue;
                        }
                        match run_stream(stream, inbound.clone(), "phone") {
                            Ok((writer, alive)) => {
                                tracing::debug!(%peer, "SIP TCP connection accepted");
                                let mut conns = me.conns.lock().expect("accepted connections lock");
                                conns.insert(peer, Conn { writer, alive });
                            }
                            Err(e) => {
                                tracing::warn!(%peer, error = %e, "SIP TCP connection failed")
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "SIP TCP accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
        })
    }
}

/// A UDP socket bound on `bind` (port 0 picks a free one), with receive and send buffers of
/// [`UDP_BUFFER`] bytes (the kernel caps them at `net.core.rmem_max`/`wmem_max`).
pub async fn udp_socket(bind: SocketAddr) -> io::Result<Arc<UdpSocket>> {
    let domain = socket2::Domain::for_address(bind);
    let sock = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if let Err(e) = sock.set_recv_buffer_size(UDP_BUFFER) {
        tracing::debug!(error = %e, "could not enlarge the SIP receive buffer");
    }
    if let Err(e) = sock.set_send_buffer_size(UDP_BUFFER) {
        tracing::debug!(error = %e, "could not enlarge the SIP send buffer");
    }
    if let Err(e) = enable_recv_err(&sock, bind.is_ipv6()) {
        tracing::debug!(error = %e, "could not ask for ICMP errors on the SIP socket");
    }
    sock.set_nonblocking(true)?;
    sock.bind(&bind.into())?;
    Ok(Arc::new(UdpSocket::from_std(sock.into())?))
}

/// Sends one datagram on a socket with `IP_RECVERR`: the kernel reports a pending ICMP error
/// of an *earlier* datagram (to any destination) by failing the next send with it, and that
/// datagram is not sent. Such an error (connection refused, host or network unreachable) is
/// consumed by the failed call, so the send is tried once more; the refused destination
/// itself is read from the error queue ([`take_unreachable`]).
pub async fn send_udp(sock: &UdpSocket, dest: SocketAddr, bytes: &[u8]) -> io::Result<()> {
    match sock.send_to(bytes, dest).await {
        Ok(_) => Ok(()),
        Err(e) if is_icmp_error(&e) => sock.send_to(bytes, dest).await.map(|_| ()),
        Err(e) => Err(e),
    }
}

/// True for the errors an ICMP report turns into on a UDP socket.
fn is_icmp_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNREFUSED | libc::EHOSTUNREACH | libc::ENETUNREACH)
    )
}

/// Asks the kernel to report ICMP errors (port or host unreachable) for datagrams sent from
/// this unconnected socket: `IP_RECVERR` / `IPV6_RECVERR` (ip(7), ipv6(7)). They are queued
/// on the socket's error queue, read by [`take_unreachable`]. Errors: the `setsockopt`'s.
fn enable_recv_err(sock: &socket2::Socket, v6: bool) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    let (level, name) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVERR)
    } else {
        (libc::IPPROTO_IP, libc::IP_RECVERR)
    };
    // SAFETY: a valid socket descriptor, and a pointer to a c_int with its exact size.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Drains the UDP socket's error queue (`MSG_ERRQUEUE`, filled because of
/// `IP_RECVERR`): the original destinations of the datagrams the network refused, in order,
/// at most 1,024 per call. Clears the socket's error readiness once the queue is empty.
pub fn take_unreachable(sock: &UdpSocket) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 256];
    let raw = socket2::SockRef::from(sock);
    while out.len() < 1024 {
        match raw.recv_from_with_flags(&mut buf, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) {
            Ok((_, from)) => {
                if let Some(a) = from.as_socket() {
                    out.push(a);
                }
            }
            // Empty (EAGAIN), or an error of the socket itself: nothing more to read.
            Err(_) => break,
        }
    }
    // The queue is drained: clear the error readiness, or the next wait returns at once.
    let _ = sock.try_io(tokio::io::Interest::ERROR, || {
        Err::<(), _>(io::Error::from(io::ErrorKind::WouldBlock))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connections beyond the per-IP bound are closed at once; the ones inside stay open.
    #[tokio::test]
    async fn accepted_connections_are_bounded() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Accepted::with_limits(100, 3);
        let (tx, _rx) = mpsc::unbounded_channel();
        let task = accepted.serve(listener, tx);
        let mut streams = Vec::new();
        for _ in 0..5 {
            streams.push(TcpStream::connect(addr).await.unwrap());
        }
        // Every connection has been accepted (or refused) once `open` reports them.
        let t0 = std::time::Instant::now();
        while accepted.open() < 3 && t0.elapsed() < std::time::Duration::from_secs(5) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // The two beyond the bound (accepted last) see their connection closed: EOF.
        for s in &mut streams[3..] {
            let mut b = [0u8; 1];
            let r = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut b)).await;
            assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "{r:?}");
        }
        // The first three stay open.
        for s in &mut streams[..3] {
            let mut b = [0u8; 1];
            let r =
                tokio::time::timeout(std::time::Duration::from_millis(100), s.read(&mut b)).await;
            assert!(r.is_err(), "closed: {r:?}");
        }
        assert_eq!(accepted.open(), 3);
        task.abort();
    }
}
