//! Multi-active propagation latency, nimbus alone: two in-process replicas
//! (`Buffered` databases in temporary directories, linked by a reliable
//! `SimNetwork`, each with its background replication thread) under
//! sustained writes — a writer thread puts 1 KB items into replica 1 at a
//! steady rate — while a probe puts an item into replica 1 and spins on
//! replica 2 until it is visible. Prints p50/p99 over 2,000 probes and
//! reports a criterion mean. Run with `cargo bench --bench multi_active`.
// `criterion_group!` defines undocumented public functions, and a bench
// that cannot set up has nothing to measure, so it may panic.
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use nimbus::replication::multi::{DEFAULT_STEP_INTERVAL, ReplicaConfig, ReplicaId, SimNetwork};
use nimbus::storage::Durability;
use nimbus::{Database, DatabaseOptions, ScalarType, item};

const TABLE: &str = "Events";
const PROBES: usize = 2_000;
/// The background load on replica 1.
const BACKGROUND_WRITES_PER_SECOND: u64 = 1_000;
const ITEM_BYTES: usize = 1024;

struct Pair {
    dbs: Vec<Database>,
    _dirs: Vec<tempfile::TempDir>,
    stop: Arc<AtomicBool>,
    writer: Option<std::thread::JoinHandle<u64>>,
}

fn pair() -> Pair {
    let network = Arc::new(SimNetwork::new(1));
    let mut dbs = Vec::new();
    let mut dirs = Vec::new();
    for me in 1..=2u64 {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open_with(
            dir.path(),
            DatabaseOptions::default().durability(Durability::Buffered),
        )
        .unwrap();
        db.create_table(TABLE)
            .partition_key("id", ScalarType::S)
            .send()
            .unwrap();
        let multi = db.multi_active();
        multi
            .configure(ReplicaConfig::new(ReplicaId(me), [ReplicaId(3 - me)]))
            .unwrap();
        multi.replicate_table(TABLE).unwrap();
        multi.connect(network.clone());
        multi.start(DEFAULT_STEP_INTERVAL);
        dbs.push(db);
        dirs.push(dir);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (dbs[0].clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let payload = "x".repeat(ITEM_BYTES);
            let pause = Duration::from_micros(1_000_000 / BACKGROUND_WRITES_PER_SECOND);
            let start = Instant::now();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                db.put_item(TABLE)
                    .item(
                        item! { "id" => format!("load{}", n % 10_000), "body" => payload.as_str() },
                    )
                    .send()
                    .unwrap();
                n += 1;
                // Paced against the start, so a slow write does not lower
                // the rate.
                let due = start + pause * n as u32;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            n
        })
    };
    Pair {
        dbs,
        _dirs: dirs,
        stop,
        writer: Some(writer),
    }
}

impl Pair {
    /// Puts one probe item at replica 1 and returns how long it took to
    /// become visible at replica 2.
    fn probe(&self, n: usize) -> Duration {
        let id = format!("probe{n}");
        let start = Instant::now();
        self.dbs[0]
            .put_item(TABLE)
            .item(item! { "id" => id.as_str(), "body" => "p" })
            .send()
            .unwrap();
        loop {
            let got = self.dbs[1]
                .get_item(TABLE)
                .key(item! { "id" => id.as_str() })
                .send()
                .unwrap();
            if got.item.is_some() {
                return start.elapsed();
            }
            std::thread::yield_now();
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let written = self.writer.take().map(|w| w.join().unwrap()).unwrap_or(0);
        for db in &self.dbs {
            db.close().unwrap();
        }
        written
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn propagation(c: &mut Criterion) {
    let pair = pair();
    let started = Instant::now();
    let mut samples: Vec<Duration> = (0..PROBES).map(|n| pair.probe(n)).collect();
    let elapsed = started.elapsed();
    samples.sort();
    println!(
        "multi_active_propagation over {PROBES} probes (background load {BACKGROUND_WRITES_PER_SECOND} \
         writes/s of {ITEM_BYTES} B, Buffered, 2 replicas): p50 {:?} p99 {:?} max {:?}",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples[samples.len() - 1],
    );
    let mut n = PROBES;
    c.bench_function("multi_active_propagation", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                total += pair.probe(n);
                n += 1;
            }
            total
        })
    });
    let written = pair.finish();
    let seconds = started.elapsed().as_secs_f64().max(elapsed.as_secs_f64());
    println!(
        "background writer: {written} writes in {seconds:.1} s ({:.0}/s)",
        written as f64 / seconds
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(5));
    targets = propagation
}
criterion_main!(benches);
