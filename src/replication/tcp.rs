//! [`TcpTransport`]: log shipping between processes over TCP (std::net).
//!
//! Each process binds one listener. Every message travels as one frame — a
//! u32 big-endian length, then the message as `wire` encodes it — on a
//! connection the *sender* opens to the receiver's listener on first use
//! (so each direction of a pair has its own connection, and a node never
//! needs to know who will connect to it). A failed connect or write drops
//! the message and the connection; the next send reconnects, after a short
//! back-off so a dead peer costs little. That is the delivery the protocol
//! already expects from [`MemoryNetwork`](super::MemoryNetwork): messages
//! may be lost, and what is unacknowledged is sent again.
//!
//! Received messages are handed to the registered endpoints by one
//! dispatcher thread, in arrival order, never on the thread of a reader or
//! a sender — the same "receive is never re-entered from send" the
//! in-process network gives. A frame longer than [`MAX_FRAME_BYTES`] or
//! that does not decode closes the connection it came on, nothing else;
//! a frame's buffer grows with the bytes that arrive (`read_frame`), so a
//! forged length costs no more memory than the bytes actually sent.
//! Waiters ([`Transport::wait_until`]) sleep on a condition variable that
//! every delivery and [`Transport::notify`] signal.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use super::frame::{Message, NodeId};
use super::transport::{Endpoint, Transport};
use super::wire;

/// The largest frame accepted or sent: a WAL batch or a snapshot chunk
/// (256 KiB by default) is far smaller.
pub const MAX_FRAME_BYTES: usize = 64 << 20;
/// How long a send waits to connect to a peer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a send waits for a peer that does not read.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// After a failed connect, messages to that peer are dropped for this long
/// before the next attempt.
pub const RECONNECT_BACKOFF: Duration = Duration::from_millis(20);

/// How often idle threads look at the stop flag, and the longest a waiter
/// sleeps between looks at its condition (a safety net: deliveries signal).
const POLL: Duration = Duration::from_millis(20);

/// A message on its way to the dispatcher.
type Delivery = (NodeId, NodeId, Message);

/// One peer's outgoing side.
#[derive(Default)]
struct Peer {
    addr: Option<SocketAddr>,
    stream: Option<TcpStream>,
    /// No connect before this instant (back-off after a failure).
    retry_at: Option<Instant>,
}

/// What the transport's threads share with it.
struct Shared {
    stopped: AtomicBool,
    endpoints: RwLock<HashMap<NodeId, Weak<dyn Endpoint>>>,
    /// Bumped on every delivery and `notify`; waiters sleep on `signal`.
    generation: Mutex<u64>,
    signal: Condvar,
    /// Open accepted connections by number, so shutdown can close them;
    /// each reader removes its own when it ends.
    inbound: Mutex<HashMap<u64, TcpStream>>,
    delivered: std::sync::atomic::AtomicU64,
    rejected: std::sync::atomic::AtomicU64,
}

impl Shared {
    fn wake(&self) {
        *self.generation.lock() += 1;
        self.signal.notify_all();
    }
}

/// The protocol's messages over TCP between processes (or between
/// transports of one process) at known addresses.
pub struct TcpTransport {
    shared: Arc<Shared>,
    local: SocketAddr,
    peers: RwLock<HashMap<NodeId, Arc<Mutex<Peer>>>>,
    /// Local deliveries (to nodes registered on this transport) and the
    /// readers' deliveries share the dispatcher's queue.
    queue: Mutex<Sender<Delivery>>,
    started: Instant,
    /// Joined on shutdown, so the listening port is free when it returns.
    accept_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpTransport")
            .field("local", &self.local)
            .field("peers", &self.peers.read().len())
            .field("delivered", &self.delivered())
            .finish_non_exhaustive()
    }
}

impl TcpTransport {
    /// Listens on `listen` (port 0 picks a free port: see
    /// [`Self::local_addr`]) and starts the accept and dispatch threads.
    pub fn bind(listen: SocketAddr) -> io::Result<Arc<Self>> {
        let listener = TcpListener::bind(listen)?;
        let local = listener.local_addr()?;
        let shared = Arc::new(Shared {
            stopped: AtomicBool::new(false),
            endpoints: RwLock::new(HashMap::new()),
            generation: Mutex::new(0),
            signal: Condvar::new(),
            inbound: Mutex::new(HashMap::new()),
            delivered: Default::default(),
            rejected: Default::default(),
        });
        let (sender, receiver) = mpsc::channel();
        let dispatching = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("nimbus-repl-tcp-dispatch".into())
            .spawn(move || dispatch_loop(&receiver, &dispatching))?;
        let accepting = Arc::clone(&shared);
        let readers = sender.clone();
        let accept_thread = std::thread::Builder::new()
            .name("nimbus-repl-tcp-accept".into())
            .spawn(move || accept_loop(&listener, &accepting, &readers))?;
        Ok(Arc::new(Self {
            shared,
            local,
            peers: RwLock::new(HashMap::new()),
            queue: Mutex::new(sender),
            started: Instant::now(),
            accept_thread: Mutex::new(Some(accept_thread)),
        }))
    }

    /// The address this transport listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Sends node `id`'s messages to `addr` from now on (replacing an older
    /// address drops the connection to it).
    pub fn add_peer(&self, id: NodeId, addr: SocketAddr) {
        let peer = Arc::clone(self.peers.write().entry(id).or_default());
        let mut peer = peer.lock();
        if peer.addr != Some(addr) {
            peer.addr = Some(addr);
            if let Some(stream) = peer.stream.take() {
                let _ = stream.shutdown(Shutdown::Both);
            }
            peer.retry_at = None;
        }
    }

    /// Forgets node `id`'s address and closes the connection to it.
    pub fn remove_peer(&self, id: NodeId) {
        if let Some(peer) = self.peers.write().remove(&id)
            && let Some(stream) = peer.lock().stream.take()
        {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Messages handed to an endpoint so far.
    pub fn delivered(&self) -> u64 {
        self.shared.delivered.load(Ordering::Relaxed)
    }

    /// Connections closed for an oversized or malformed frame so far.
    pub fn rejected(&self) -> u64 {
        self.shared.rejected.load(Ordering::Relaxed)
    }

    /// Stops accepting, reading and dispatching and closes every
    /// connection (also on drop); the listening address is free for a new
    /// bind when it returns. Sends afterwards are dropped.
    pub fn shutdown(&self) {
        if self.shared.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        // Wakes the accept loop so it sees the flag, and waits for it to
        // drop the listener (only if the wake-up got through: otherwise
        // the join could wait forever; the thread then ends on its next
        // connection).
        let woken = TcpStream::connect_timeout(&self.local, CONNECT_TIMEOUT).is_ok();
        if let Some(thread) = self.accept_thread.lock().take()
            && woken
        {
            let _ = thread.join();
        }
        for (_, stream) in self.shared.inbound.lock().drain() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        for peer in self.peers.read().values() {
            if let Some(stream) = peer.lock().stream.take() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        self.shared.wake();
    }

    /// Writes one frame to `peer`, connecting first if needed; any failure
    /// drops the message and the connection.
    fn write_to(peer: &mut Peer, frame: &[u8]) {
        if peer.stream.is_none() {
            let Some(addr) = peer.addr else { return };
            if peer.retry_at.is_some_and(|at| Instant::now() < at) {
                return;
            }
            match connect(addr) {
                Ok(stream) => {
                    peer.stream = Some(stream);
                    peer.retry_at = None;
                }
                Err(_) => {
                    peer.retry_at = Some(Instant::now() + RECONNECT_BACKOFF);
                    return;
                }
            }
        }
        if let Some(stream) = peer.stream.as_mut()
            && stream.write_all(frame).is_err()
            && let Some(stream) = peer.stream.take()
        {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    // Small messages (acks, heartbeats) must not wait for Nagle: a
    // synchronous commit waits on them.
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    Ok(stream)
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, queue: &Sender<Delivery>) {
    for (number, stream) in (0u64..).zip(listener.incoming()) {
        if shared.stopped.load(Ordering::Acquire) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let Ok(copy) = stream.try_clone() else {
            continue;
        };
        shared.inbound.lock().insert(number, copy);
        let reading = Arc::clone(shared);
        let queue = queue.clone();
        let spawned = std::thread::Builder::new()
            .name("nimbus-repl-tcp-read".into())
            .spawn(move || {
                read_loop(stream, &reading, &queue);
                reading.inbound.lock().remove(&number);
            });
        if spawned.is_err() {
            // No thread to read it: the connection is closed; the sender
            // reconnects later.
            if let Some(stream) = shared.inbound.lock().remove(&number) {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }
}

/// What [`read_frame`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FrameRead {
    /// One whole frame's bytes (without its length).
    Frame(Vec<u8>),
    /// The declared length is above the limit: nothing more was read.
    Oversized,
    /// The stream ended or failed, possibly inside a frame.
    Ended,
}

/// The first allocation for a frame's bytes, and the most a frame's buffer
/// grows ahead of the bytes that actually arrived.
const READ_STEP_BYTES: usize = 64 << 10;

/// Reads one frame (a u32 big-endian length, then that many bytes) of at
/// most `max_bytes`. The buffer grows with the bytes received (at most
/// doubling, from [`READ_STEP_BYTES`]), never to the declared length up
/// front: a peer that declares 64 MiB and sends 4 bytes costs 64 KiB, not
/// 64 MiB. Shared by the multi-active transport.
pub(crate) fn read_frame(reader: &mut impl Read, max_bytes: usize) -> FrameRead {
    let mut length = [0u8; 4];
    if reader.read_exact(&mut length).is_err() {
        return FrameRead::Ended;
    }
    let len = u32::from_be_bytes(length) as usize;
    if len > max_bytes {
        return FrameRead::Oversized;
    }
    let mut frame = Vec::new();
    while frame.len() < len {
        let start = frame.len();
        let step = (len - start).min(start.max(READ_STEP_BYTES));
        frame.resize(start + step, 0);
        if reader.read_exact(&mut frame[start..]).is_err() {
            return FrameRead::Ended;
        }
    }
    FrameRead::Frame(frame)
}

/// Reads frames until the connection ends or carries something that is
/// not a message (then it is closed: the sender reconnects).
fn read_loop(mut stream: TcpStream, shared: &Shared, queue: &Sender<Delivery>) {
    while !shared.stopped.load(Ordering::Acquire) {
        let frame = match read_frame(&mut stream, MAX_FRAME_BYTES) {
            FrameRead::Frame(frame) => frame,
            FrameRead::Oversized => {
                shared.rejected.fetch_add(1, Ordering::Relaxed);
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
            FrameRead::Ended => return,
        };
        let Ok(delivery) = wire::decode(&frame) else {
            shared.rejected.fetch_add(1, Ordering::Relaxed);
            let _ = stream.shutdown(Shutdown::Both);
            return;
        };
        if queue.send(delivery).is_err() {
            return;
        }
    }
}

/// Hands messages to their endpoints one at a time, in arrival order.
fn dispatch_loop(queue: &Receiver<Delivery>, shared: &Shared) {
    while !shared.stopped.load(Ordering::Acquire) {
        let (from, to, message) = match queue.recv_timeout(POLL) {
            Ok(delivery) => delivery,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        // A message for a node not registered here (a stale address) is
        // dropped, as the in-process network drops one for a down node.
        let endpoint = shared.endpoints.read().get(&to).and_then(Weak::upgrade);
        if let Some(endpoint) = endpoint {
            endpoint.receive(from, message);
            shared.delivered.fetch_add(1, Ordering::Relaxed);
        }
        shared.wake();
    }
}

impl Transport for TcpTransport {
    fn register(&self, id: NodeId, endpoint: Weak<dyn Endpoint>) {
        self.shared.endpoints.write().insert(id, endpoint);
    }

    fn send(&self, from: NodeId, to: NodeId, message: Message) {
        if self.shared.stopped.load(Ordering::Acquire) {
            return;
        }
        if self.shared.endpoints.read().contains_key(&to) {
            // A node on this transport: no socket, same dispatcher.
            let _ = self.queue.lock().send((from, to, message));
            return;
        }
        let Some(peer) = self.peers.read().get(&to).cloned() else {
            return;
        };
        let mut frame = vec![0u8; 4];
        wire::encode(from, to, &message, &mut frame);
        let len = frame.len() - 4;
        let Ok(len32) = u32::try_from(len) else {
            return;
        };
        if len > MAX_FRAME_BYTES {
            // The receiver would refuse it; the protocol resends smaller
            // pieces (snapshot chunks) or fails the commit by timeout.
            return;
        }
        frame[..4].copy_from_slice(&len32.to_be_bytes());
        Self::write_to(&mut peer.lock(), &frame);
    }

    fn wait_until(&self, done: &mut dyn FnMut() -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            // The generation is read before the check so a delivery between
            // the check and the sleep is not slept through.
            let seen = *self.shared.generation.lock();
            if done() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let mut generation = self.shared.generation.lock();
            if *generation == seen {
                let _ = self
                    .shared
                    .signal
                    .wait_for(&mut generation, (deadline - now).min(POLL));
            }
        }
    }

    fn notify(&self) {
        self.shared.wake();
    }

    fn now_micros(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
#[path = "tcp_tests.rs"]
mod tests;
