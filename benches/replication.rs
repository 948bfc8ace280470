//! Log shipping's costs, nimbus alone: the latency of a `Sync` commit with
//! no replication and with a synchronous standby (ack level `Durable`) on
//! the in-process transport and on loopback TCP (two `TcpTransport`s in
//! this process, so the standby's apply and fsync run on its own threads),
//! and the lag of 5 asynchronous replicas under
//! sustained writes (time from a commit on the primary until all 5 have
//! applied it, p50 and p99), in process and over loopback TCP. Every node is on the real disk in a temporary
//! directory. Run with `cargo bench --bench replication`.
// `criterion_group!` defines undocumented public functions, and a bench
// that cannot set up has nothing to measure, so it may panic.
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use nimbus::DatabaseOptions;
use nimbus::replication::{
    Faults, MemoryNetwork, NodeOptions, ReplicationNode, SyncPolicy, TcpTransport, Transport,
};
use nimbus::storage::fs::{FileSystem, OsFileSystem};

const VALUE_BYTES: usize = 100;

struct Cluster {
    _dirs: Vec<tempfile::TempDir>,
    net: Arc<MemoryNetwork>,
    primary: ReplicationNode,
    replicas: Vec<ReplicationNode>,
}

fn options(id: u64, sync: Option<SyncPolicy>) -> NodeOptions {
    let mut options = NodeOptions::new(id);
    options.database = DatabaseOptions::default().background_threads(false);
    options.sync = sync;
    options
}

/// A primary and `replicas` followers (synchronous standbys if `sync`).
fn cluster(replicas: u64, sync: Option<SyncPolicy>) -> Cluster {
    let net = MemoryNetwork::new(1, Faults::NONE);
    let fs: Arc<dyn FileSystem> = Arc::new(OsFileSystem::new(true));
    let mut dirs = Vec::new();
    let mut dir = || {
        let d = tempfile::tempdir().expect("temp dir");
        let path = d.path().join("db");
        dirs.push(d);
        path
    };
    let transport = Arc::clone(&net) as Arc<dyn Transport>;
    let primary = ReplicationNode::open_primary(
        Arc::clone(&fs),
        dir(),
        Arc::clone(&transport),
        options(0, sync),
    )
    .expect("primary");
    let replicas: Vec<_> = (1..=replicas)
        .map(|id| {
            if sync.is_some() {
                primary.add_standby(id);
            } else {
                primary.add_replica(id);
            }
            ReplicationNode::open_replica(
                Arc::clone(&fs),
                dir(),
                Arc::clone(&transport),
                options(id, None),
                0,
            )
            .expect("replica")
        })
        .collect();
    net.run_until_idle(1_000_000);
    Cluster {
        _dirs: dirs,
        net,
        primary,
        replicas,
    }
}

/// A primary and one synchronous standby, each on its own TCP transport
/// on 127.0.0.1 (ephemeral ports).
struct TcpPair {
    _dirs: Vec<tempfile::TempDir>,
    _transports: Vec<Arc<TcpTransport>>,
    primary: ReplicationNode,
    _standby: ReplicationNode,
}

fn tcp_pair() -> TcpPair {
    let fs: Arc<dyn FileSystem> = Arc::new(OsFileSystem::new(true));
    let dirs = vec![
        tempfile::tempdir().expect("temp dir"),
        tempfile::tempdir().expect("temp dir"),
    ];
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let ta = TcpTransport::bind(loopback).expect("bind");
    let tb = TcpTransport::bind(loopback).expect("bind");
    ta.add_peer(1, tb.local_addr());
    tb.add_peer(0, ta.local_addr());
    let primary = ReplicationNode::open_primary(
        Arc::clone(&fs),
        dirs[0].path().join("db"),
        Arc::clone(&ta) as Arc<dyn Transport>,
        options(0, Some(SyncPolicy::default())),
    )
    .expect("primary");
    primary.add_standby(1);
    let standby = ReplicationNode::open_replica(
        Arc::clone(&fs),
        dirs[1].path().join("db"),
        Arc::clone(&tb) as Arc<dyn Transport>,
        options(1, None),
        0,
    )
    .expect("standby");
    TcpPair {
        _dirs: dirs,
        _transports: vec![ta, tb],
        primary,
        _standby: standby,
    }
}

fn commit_latency(c: &mut Criterion) {
    let mut group = c.benchmark_group("replication_commit");
    group.measurement_time(Duration::from_secs(5));
    let value = vec![7u8; VALUE_BYTES];
    for (name, replicas, sync) in [
        ("sync_commit_no_replication", 0, None),
        (
            "sync_commit_sync_standby_in_process",
            1,
            Some(SyncPolicy::default()),
        ),
    ] {
        let cluster = cluster(replicas, sync);
        let db = cluster.primary.database().expect("db");
        let mut n = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                db.engine().put(&n.to_be_bytes(), &value).expect("put");
            });
        });
        drop(cluster);
    }
    let pair = tcp_pair();
    let db = pair.primary.database().expect("db");
    let mut n = 0u64;
    group.bench_function("sync_commit_sync_standby_loopback_tcp", |b| {
        b.iter(|| {
            n += 1;
            db.engine().put(&n.to_be_bytes(), &value).expect("put");
        });
    });
    drop(pair);
    group.finish();
}

/// Sustained writes with 5 asynchronous replicas: the time from each
/// commit until every replica applied it, delivered by the in-process
/// transport on this thread; prints p50/p99 in the bench output.
fn replica_lag(c: &mut Criterion) {
    let cluster = cluster(5, None);
    let db = cluster.primary.database().expect("db");
    let value = vec![7u8; VALUE_BYTES];
    let mut lags = Vec::new();
    for n in 0..2_000u64 {
        let started = Instant::now();
        let seq = db.engine().put(&n.to_be_bytes(), &value).expect("put");
        while cluster.replicas.iter().any(|r| r.last_sequence() < seq) {
            if !cluster.net.step_next() {
                break;
            }
        }
        lags.push(started.elapsed());
    }
    lags.sort();
    let p = |q: f64| lags[((lags.len() as f64 * q) as usize).min(lags.len() - 1)];
    println!(
        "replica_lag_5_replicas_in_process: p50 {:?} p99 {:?} over {} writes",
        p(0.50),
        p(0.99),
        lags.len()
    );
    let mut n = 10_000u64;
    c.bench_function("replication_write_and_apply_on_5_replicas", |b| {
        b.iter(|| {
            n += 1;
            let seq = db.engine().put(&n.to_be_bytes(), &value).expect("put");
            while cluster.replicas.iter().any(|r| r.last_sequence() < seq) {
                if !cluster.net.step_next() {
                    break;
                }
            }
        });
    });
}

/// The same measure over loopback TCP: a primary and 5 asynchronous
/// replicas, each on its own `TcpTransport` (so every replica applies and
/// fsyncs on its own threads); this thread writes one item at a time and
/// waits until all 5 report it applied. Prints p50/p99/max.
fn replica_lag_tcp(_: &mut Criterion) {
    const REPLICAS: u64 = 5;
    let fs: Arc<dyn FileSystem> = Arc::new(OsFileSystem::new(true));
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let dirs: Vec<_> = (0..=REPLICAS)
        .map(|_| tempfile::tempdir().expect("temp dir"))
        .collect();
    let transports: Vec<_> = (0..=REPLICAS)
        .map(|_| TcpTransport::bind(loopback).expect("bind"))
        .collect();
    for id in 1..=REPLICAS {
        transports[0].add_peer(id, transports[id as usize].local_addr());
        transports[id as usize].add_peer(0, transports[0].local_addr());
    }
    let primary = ReplicationNode::open_primary(
        Arc::clone(&fs),
        dirs[0].path().join("db"),
        Arc::clone(&transports[0]) as Arc<dyn Transport>,
        options(0, None),
    )
    .expect("primary");
    let replicas: Vec<_> = (1..=REPLICAS)
        .map(|id| {
            primary.add_replica(id);
            ReplicationNode::open_replica(
                Arc::clone(&fs),
                dirs[id as usize].path().join("db"),
                Arc::clone(&transports[id as usize]) as Arc<dyn Transport>,
                options(id, None),
                0,
            )
            .expect("replica")
        })
        .collect();
    let db = primary.database().expect("db");
    let value = vec![7u8; VALUE_BYTES];
    let caught_up = |seq: u64| replicas.iter().all(|r| r.last_sequence() >= seq);
    // Until every replica subscribed and streams.
    let seq = db.engine().put(b"warm-up", &value).expect("put");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !caught_up(seq) && Instant::now() < deadline {
        primary.tick();
        replicas.iter().for_each(ReplicationNode::tick);
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut lags = Vec::new();
    for n in 0..2_000u64 {
        let started = Instant::now();
        let seq = db.engine().put(&n.to_be_bytes(), &value).expect("put");
        while !caught_up(seq) {
            std::thread::yield_now();
        }
        lags.push(started.elapsed());
    }
    lags.sort();
    let p = |q: f64| lags[((lags.len() as f64 * q) as usize).min(lags.len() - 1)];
    println!(
        "replica_lag_5_replicas_loopback_tcp: p50 {:?} p99 {:?} max {:?} over {} writes",
        p(0.50),
        p(0.99),
        lags[lags.len() - 1],
        lags.len()
    );
}

criterion_group!(benches, commit_latency, replica_lag, replica_lag_tcp);
criterion_main!(benches);
