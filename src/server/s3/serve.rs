//! [`S3Server`]: binds a TCP listener, runs the S3 service on a small tokio
//! runtime of its own (so an embedding program needs no async runtime),
//! and shuts down gracefully — the accept loop stops, open connections
//! finish the request they are serving, then the runtime ends.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use s3s::service::S3ServiceBuilder;
use tokio::sync::watch;

use super::access::{Access, Keys, S3User, VirtualHosts};
use super::service::NimbusS3;
use super::transport;
use crate::Database;

/// Reactor threads of the endpoint's runtime by default: they only parse
/// HTTP and move bytes; the store's work runs on the blocking pool.
pub const WORKER_THREADS_DEFAULT: usize = 2;

/// Threads of the blocking pool at most (each runs one store operation).
pub const BLOCKING_THREADS_MAX: usize = 64;

/// How long shutdown waits for open connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How the S3 endpoint listens and whom it lets in.
#[derive(Debug, Clone)]
pub struct S3ServerOptions {
    /// The address to bind (port 0 picks a free one).
    pub address: SocketAddr,
    /// The access keys whose SigV4 signatures are accepted. Empty: no
    /// signature is checked and every request acts as one local owner
    /// (like the DynamoDB endpoint without credentials).
    pub users: Vec<S3User>,
    /// Base domains for virtual-host-style addressing
    /// (`bucket.<domain>`); path-style requests always work.
    pub virtual_host_domains: Vec<String>,
    /// The region reported by `GetBucketLocation` and expected in
    /// signatures' scope.
    pub region: String,
    /// Reactor threads (see [`WORKER_THREADS_DEFAULT`]).
    pub worker_threads: usize,
}

impl Default for S3ServerOptions {
    fn default() -> Self {
        Self {
            address: SocketAddr::from(([127, 0, 0, 1], 9000)),
            users: Vec::new(),
            virtual_host_domains: vec!["localhost".to_owned()],
            region: "us-east-1".to_owned(),
            worker_threads: WORKER_THREADS_DEFAULT,
        }
    }
}

/// A running S3 endpoint; [`S3Server::shutdown`] (or drop) stops it.
#[derive(Debug)]
pub struct S3Server {
    address: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl S3Server {
    /// Binds `options.address` and starts serving `db.objects()`.
    pub fn start(db: Database, options: S3ServerOptions) -> io::Result<Self> {
        let listener = TcpListener::bind(options.address)?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.worker_threads.max(1))
            .max_blocking_threads(BLOCKING_THREADS_MAX)
            .thread_name("nimbus-s3")
            .enable_io()
            .enable_time()
            .build()?;
        let keys = Keys::new(&options.users);
        let hosts = VirtualHosts::new(&options.virtual_host_domains)?;
        let s3 = NimbusS3::new(db.clone(), keys.clone(), options.region.clone());
        let mut builder = S3ServiceBuilder::new(s3);
        builder.set_host(hosts);
        if !keys.is_empty() {
            builder.set_auth(keys.clone());
            builder.set_access(Access::new(db, keys));
        }
        let service = builder.build();
        let (stop, stopped) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("nimbus-s3-accept".into())
            .spawn(move || {
                runtime.block_on(accept_loop(listener, service, stopped));
                runtime.shutdown_timeout(SHUTDOWN_GRACE);
            })?;
        Ok(Self {
            address,
            stop,
            thread: Some(thread),
        })
    }

    /// The address the endpoint listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Stops accepting, lets open connections finish their request, and
    /// waits for the runtime to end.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

async fn accept_loop(
    listener: TcpListener,
    service: s3s::service::S3Service,
    mut stopped: watch::Receiver<bool>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("nimbus-s3: cannot register the listener: {error}");
            return;
        }
    };
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let service = service.clone();
                let mut stopped = stopped.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let service = service.clone();
                        async move { transport::serve(&service, request).await }
                    });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::pin!(connection);
                    tokio::select! {
                        _ = connection.as_mut() => {}
                        _ = stopped.changed() => {
                            connection.as_mut().graceful_shutdown();
                            let _ = connection.await;
                        }
                    }
                });
            }
            _ = stopped.changed() => break,
        }
        // Reap finished connections so the set stays bounded by the open ones.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}
