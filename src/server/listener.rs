//! The server: a listener thread that accepts connections and one thread
//! per connection that reads requests, dispatches them and writes the
//! answers (keep-alive). The kv API is synchronous, so a thread per
//! connection runs each request straight on the engine without handing it
//! between an async reactor and a blocking pool. Connections are bounded
//! ([`ServerOptions::connections_max`]); idle ones time out; shutdown stops
//! accepting, lets running requests answer, and joins every thread.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufReader};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use super::error::WireError;
use super::http::{ReadError, Request, Response, read_request, write_response};
use super::ops::{Context, find};
use super::sigv4;
use crate::Database;

/// DynamoDB's largest request (a BatchWriteItem of 16 MB) plus room for
/// the JSON around it.
pub const BODY_BYTES_MAX_DEFAULT: usize = 17 * 1024 * 1024;

/// How the server listens and what it accepts.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Where to listen (`127.0.0.1:0` picks a free port).
    pub address: SocketAddr,
    /// The largest request body; larger ones get HTTP 413.
    pub body_bytes_max: usize,
    /// The most open connections; more are answered with HTTP 503.
    pub connections_max: usize,
    /// How long a connection may sit idle between requests.
    pub idle_timeout: Duration,
    /// Access key -> secret key. Empty (the default) accepts any
    /// credentials; otherwise every request's SigV4 signature is verified.
    pub credentials: BTreeMap<String, String>,
    /// Whether to log one line per request to stderr.
    pub log_requests: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            address: SocketAddr::from((Ipv4Addr::LOCALHOST, 8000)),
            body_bytes_max: BODY_BYTES_MAX_DEFAULT,
            connections_max: 1024,
            idle_timeout: Duration::from_secs(60),
            credentials: BTreeMap::new(),
            log_requests: false,
        }
    }
}

/// An open connection: a handle on its socket (to close it at shutdown)
/// and its thread (to join it).
type Connection = (TcpStream, Option<JoinHandle<()>>);

/// State shared by the listener and connection threads.
struct Shared {
    context: Context,
    options: ServerOptions,
    stopping: AtomicBool,
    open_connections: AtomicUsize,
    next_connection: AtomicU64,
    next_request: AtomicU64,
    request_id_seed: u64,
    /// Open connections, so shutdown can wake the idle ones.
    connections: Mutex<HashMap<u64, Connection>>,
}

/// A running DynamoDB-compatible endpoint over a [`Database`].
///
/// ```
/// use nimbus::Database;
/// use nimbus::server::{Server, ServerOptions};
///
/// let options = ServerOptions { address: "127.0.0.1:0".parse().unwrap(), ..Default::default() };
/// let server = Server::start(Database::memory()?, options)?;
/// println!("listening on {}", server.local_addr());
/// server.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Server {
    shared: Arc<Shared>,
    address: SocketAddr,
    listener: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `options.address` and starts serving `db`.
    pub fn start(db: Database, options: ServerOptions) -> io::Result<Self> {
        let listener = TcpListener::bind(options.address)?;
        let address = listener.local_addr()?;
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let shared = Arc::new(Shared {
            context: Context {
                db,
                endpoint: address.to_string(),
            },
            options,
            stopping: AtomicBool::new(false),
            open_connections: AtomicUsize::new(0),
            next_connection: AtomicU64::new(0),
            next_request: AtomicU64::new(0),
            request_id_seed: xxhash_rust::xxh3::xxh3_64(&seed.to_le_bytes()),
            connections: Mutex::new(HashMap::new()),
        });
        let accepting = Arc::clone(&shared);
        let listener = std::thread::Builder::new()
            .name("nimbus-listener".into())
            .spawn(move || accept_loop(&accepting, &listener))?;
        Ok(Self {
            shared,
            address,
            listener: Some(listener),
        })
    }

    /// The address the server listens on (with the port picked for `:0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Stops accepting, lets requests being served answer, closes idle
    /// connections and joins every thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if self.shared.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the listener blocked in accept().
        let mut wake = self.address;
        if wake.ip().is_unspecified() {
            wake.set_ip(Ipv4Addr::LOCALHOST.into());
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        if let Some(listener) = self.listener.take() {
            let _ = listener.join();
        }
        let connections: Vec<Connection> = self
            .shared
            .connections
            .lock()
            .drain()
            .map(|(_, c)| c)
            .collect();
        for (stream, thread) in connections {
            // A thread waiting for the next request sees end of stream; a
            // thread running a request has read it whole and still answers.
            let _ = stream.shutdown(Shutdown::Read);
            if let Some(thread) = thread {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else {
            // Out of file descriptors and the like: keep serving the
            // connections already open.
            continue;
        };
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(shared.options.idle_timeout));
        let _ = stream.set_write_timeout(Some(shared.options.idle_timeout));
        if shared.open_connections.load(Ordering::SeqCst) >= shared.options.connections_max {
            let mut stream = stream;
            let _ = write_response(
                &mut stream,
                &error_response(shared, &WireError::unavailable()),
                true,
            );
            continue;
        }
        let Ok(registered) = stream.try_clone() else {
            continue;
        };
        let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
        shared.open_connections.fetch_add(1, Ordering::SeqCst);
        let mut connections = shared.connections.lock();
        let serving = Arc::clone(shared);
        let thread = std::thread::Builder::new()
            .name("nimbus-connection".into())
            .spawn(move || {
                serve_connection(&serving, stream);
                serving.open_connections.fetch_sub(1, Ordering::SeqCst);
                // Stopping drains the map itself and joins this thread.
                if !serving.stopping.load(Ordering::SeqCst) {
                    serving.connections.lock().remove(&id);
                }
            });
        match thread {
            Ok(thread) => {
                connections.insert(id, (registered, Some(thread)));
            }
            Err(_) => {
                shared.open_connections.fetch_sub(1, Ordering::SeqCst);
            }
        }
        // Forget the handles of threads that already finished.
        connections.retain(|_, (_, thread)| thread.as_ref().is_some_and(|t| !t.is_finished()));
    }
}

fn serve_connection(shared: &Shared, stream: TcpStream) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let peer = stream.peer_addr().ok();
    let mut reader = BufReader::with_capacity(16 * 1024, read_half);
    let mut writer = stream;
    loop {
        let request = read_request(&mut reader, &mut writer, shared.options.body_bytes_max);
        let (response, close) = match request {
            Ok(request) => {
                let response = handle(shared, &request, peer);
                (
                    response,
                    request.close || shared.stopping.load(Ordering::SeqCst),
                )
            }
            Err(ReadError::Closed) => return,
            Err(ReadError::Io(kind)) => {
                // An idle keep-alive connection timing out is routine.
                if shared.options.log_requests
                    && !matches!(kind, io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
                {
                    eprintln!(
                        "{} connection error: {kind}",
                        peer.map_or_else(|| "-".to_owned(), |p| p.to_string())
                    );
                }
                return;
            }
            Err(ReadError::Malformed(why)) => (
                error_response(
                    shared,
                    &WireError::serialization(format!("Malformed HTTP request: {why}")),
                ),
                true,
            ),
            Err(ReadError::TooLarge { limit_bytes }) => (
                error_response(shared, &WireError::request_too_large(limit_bytes)),
                true,
            ),
        };
        if write_response(&mut writer, &response, close).is_err() || close {
            return;
        }
    }
}

/// A DynamoDB-style request id: 52 upper-case alphanumerics.
fn request_id(shared: &Shared) -> String {
    let n = shared.next_request.fetch_add(1, Ordering::Relaxed);
    let a = xxhash_rust::xxh3::xxh3_64_with_seed(&n.to_le_bytes(), shared.request_id_seed);
    let b = xxhash_rust::xxh3::xxh3_64_with_seed(&a.to_le_bytes(), shared.request_id_seed);
    let c = xxhash_rust::xxh3::xxh3_64_with_seed(&b.to_le_bytes(), shared.request_id_seed);
    format!("{a:016X}{b:016X}{c:016X}{:04X}", n & 0xFFFF)
}

fn json_response(shared: &Shared, status: u16, body: Vec<u8>) -> Response {
    Response {
        status,
        headers: vec![
            ("Content-Type", "application/x-amz-json-1.0".to_owned()),
            ("x-amzn-RequestId", request_id(shared)),
            ("x-amz-crc32", crc32fast::hash(&body).to_string()),
        ],
        body,
    }
}

fn error_response(shared: &Shared, error: &WireError) -> Response {
    json_response(shared, error.status, error.body())
}

/// Runs one request: health check, routing, authentication, the operation.
fn handle(shared: &Shared, request: &Request, peer: Option<SocketAddr>) -> Response {
    let started = Instant::now();
    if request.method == "GET" && request.target == "/" {
        // Load balancers and `curl` probe the root, as DynamoDB answers it.
        let body = b"healthy: nimbus".to_vec();
        return Response {
            status: 200,
            headers: vec![
                ("Content-Type", "text/plain".to_owned()),
                ("x-amz-crc32", crc32fast::hash(&body).to_string()),
            ],
            body,
        };
    }
    let (operation, result) = dispatch(shared, request);
    let response = match result {
        Ok(body) => json_response(shared, 200, body),
        Err(error) => error_response(shared, &error),
    };
    if shared.options.log_requests {
        let outcome = if response.status == 200 {
            String::new()
        } else {
            serde_json::from_slice::<serde_json::Value>(&response.body)
                .ok()
                .and_then(|v| v["__type"].as_str().map(|t| format!(" {t}")))
                .unwrap_or_default()
        };
        eprintln!(
            "{} {} {} {}{} {}us {}B",
            peer.map_or_else(|| "-".to_owned(), |p| p.to_string()),
            operation,
            response.headers.get(1).map_or("-", |(_, id)| id.as_str()),
            response.status,
            outcome,
            started.elapsed().as_micros(),
            request.body.len(),
        );
    }
    response
}

fn dispatch(shared: &Shared, request: &Request) -> (&'static str, Result<Vec<u8>, WireError>) {
    if request.method != "POST" {
        return ("-", Err(WireError::unknown_operation()));
    }
    let Some((operation, handler)) = request.header("x-amz-target").and_then(find) else {
        return ("-", Err(WireError::unknown_operation()));
    };
    if !shared.options.credentials.is_empty() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if let Err(error) = sigv4::verify(request, &shared.options.credentials, now) {
            return (operation, Err(error));
        }
    }
    // A panic in an operation is a bug, but it must cost one request a
    // 500, not the connection or the server.
    let result = catch_unwind(AssertUnwindSafe(|| handler(&shared.context, &request.body)))
        .unwrap_or_else(|_| Err(WireError::internal()));
    (operation, result)
}
