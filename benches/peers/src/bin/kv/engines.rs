//! The timed loop and the two engines' runs: each run opens a fresh
//! directory, loads the table and times every workload the engine has.

use std::ops::Bound;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fjall::{KeyspaceCreateOptions, PersistMode};
use hdrhistogram::Histogram;
use nimbus::kv::{TransactPut, TransactWriteItems};
use nimbus::storage::Durability;
use nimbus::{Database, DatabaseOptions, Item, ScalarType};

use crate::data::{
    full_item, key, partition_key, peer_key, peer_prefix, peer_segment, peer_value, put_order,
    random_items, transactions, warm_up_keys,
};
use crate::{CACHE_BYTES, Config, MEMTABLE_BYTES, SCAN_PAGE, SORT_KEYS, TABLE, Workload};

/// TransactWriteItems cancelled with only `TransactionConflict` reasons and
/// retried, over the whole process. The threads' items are disjoint, but
/// item locks are 4,096 stripes of a hash of the row key, so two
/// transactions may share a stripe; the one that waits gives up after
/// `TRANSACTION_LOCK_PATIENCE` (50 ms), which a lock holder preempted on a
/// busy machine can exceed. A client retries such a cancellation.
pub(crate) static CONFLICTS: AtomicU64 = AtomicU64::new(0);

/// One phase's figures.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    pub(crate) p50_ns: f64,
    pub(crate) p99_ns: f64,
    pub(crate) ops_per_s: f64,
}

pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).unwrap_or_else(|e| panic!("hdr: {e}"))
}

/// Runs each thread's inputs through the op its `make` builds (one per
/// thread, so it may keep state such as a scan cursor), all threads
/// starting together; every op is timed. Throughput is all ops over the
/// time the slowest thread spent in its ops (the sum of its ops' times,
/// descheduling included, building inputs excluded).
pub(crate) fn timed<I, F>(inputs: Vec<Vec<I>>, make: impl Fn(usize) -> F + Sync) -> Sample
where
    I: Send,
    F: FnMut(I),
{
    timed_built(inputs, |input| input, make)
}

/// [`timed`], with each op's input built from its seed by `build` just
/// before the op, outside the timing: as a caller builds the item or key it
/// sends, so the op reads it from the CPU caches (inputs all built before
/// the loop would have left them, and the op would pay for reading and
/// freeing them cold).
pub(crate) fn timed_built<S, I, F>(
    inputs: Vec<Vec<S>>,
    build: impl Fn(S) -> I + Sync,
    make: impl Fn(usize) -> F + Sync,
) -> Sample
where
    S: Send,
    F: FnMut(I),
{
    let barrier = Barrier::new(inputs.len());
    let total: usize = inputs.iter().map(Vec::len).sum();
    let results: Vec<(Histogram<u64>, Duration)> = std::thread::scope(|scope| {
        let handles: Vec<_> = inputs
            .into_iter()
            .enumerate()
            .map(|(t, list)| {
                let (barrier, make, build) = (&barrier, &make, &build);
                scope.spawn(move || {
                    let (mut op, build) = (make(t), &build);
                    let mut hist = histogram();
                    barrier.wait();
                    let mut busy = Duration::ZERO;
                    for seed in list {
                        let input = build(seed);
                        let began = Instant::now();
                        op(input);
                        let took = began.elapsed();
                        busy += took;
                        hist.saturating_record(took.as_nanos() as u64);
                    }
                    (hist, busy)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| panic!("worker panicked")))
            .collect()
    });
    let mut all = histogram();
    let mut wall = Duration::ZERO;
    for (hist, elapsed) in results {
        all.add(hist).unwrap_or_else(|e| panic!("hdr: {e}"));
        wall = wall.max(elapsed);
    }
    Sample {
        p50_ns: all.value_at_quantile(0.5) as f64,
        p99_ns: all.value_at_quantile(0.99) as f64,
        ops_per_s: total as f64 / wall.as_secs_f64(),
    }
}

pub(crate) fn map2<A, B>(lists: Vec<Vec<A>>, f: impl Fn(A) -> B) -> Vec<Vec<B>> {
    lists
        .into_iter()
        .map(|list| list.into_iter().map(&f).collect())
        .collect()
}

pub(crate) type Samples = [Option<Sample>; 6];

pub(crate) fn run_nimbus(config: &Config, threads: usize) -> Samples {
    let dir = tempfile::tempdir_in(&config.dir).unwrap_or_else(|e| panic!("temp dir: {e}"));
    let options = DatabaseOptions::default().durability(Durability::Buffered);
    let db = Database::open_with(dir.path(), options).unwrap_or_else(|e| panic!("open: {e}"));
    db.create_table(TABLE)
        .partition_key("pk", ScalarType::S)
        .sort_key("sk", ScalarType::N)
        .send()
        .unwrap_or_else(|e| panic!("create table: {e}"));
    let mut out: Samples = [None; 6];
    let db = &db;

    let items = put_order(config, threads);
    out[Workload::Put.index()] = Some(timed_built(items, |(p, s)| full_item(p, s), |_| {
        move |item: Item| {
            db.put_item(TABLE)
                .item(item)
                .send()
                .unwrap_or_else(|e| panic!("put: {e}"));
        }
    }));
    db.engine()
        .compact()
        .unwrap_or_else(|e| panic!("compact: {e}"));
    if std::env::var_os("KV_STATS").is_some() {
        eprintln!("kv: nimbus after compact: {:?}", db.engine().stats());
    }
    // Untimed: one pass over the table and a round of reads, so the reads
    // below do not pay for first touches of the new segments' pages.
    for item in db.scan(TABLE).items() {
        item.unwrap_or_else(|e| panic!("warm-up scan: {e}"));
    }
    for (p, s) in warm_up_keys(config) {
        db.get_item(TABLE)
            .key(key(p, s))
            .send()
            .unwrap_or_else(|e| panic!("warm-up: {e}"));
    }

    let keys = random_items(config, threads, config.gets, 2, false);
    out[Workload::Get.index()] = Some(timed_built(keys, |(p, s)| key(p, s), |_| {
        move |key: Item| {
            let item = db
                .get_item(TABLE)
                .key(key)
                .send()
                .unwrap_or_else(|e| panic!("get: {e}"));
            assert!(item.item.is_some(), "every key read exists");
        }
    }));

    let pks = map2(
        random_items(config, threads, config.queries, 3, false),
        |(p, _)| partition_key(p),
    );
    out[Workload::Query.index()] = Some(timed(pks, |_| {
        move |pk: String| {
            let page = db
                .query(TABLE)
                .key_condition_expression("pk = :p")
                .value(":p", pk)
                .send()
                .unwrap_or_else(|e| panic!("query: {e}"));
            assert_eq!(page.count, SORT_KEYS as usize);
        }
    }));

    let pages = vec![vec![(); config.scan_pages]; threads];
    out[Workload::Scan.index()] = Some(timed(pages, |t| {
        let mut start: Option<Item> = None;
        move |()| {
            let mut scan = db.scan(TABLE).limit(SCAN_PAGE);
            if threads > 1 {
                scan = scan.segment(t as u32).total_segments(threads as u32);
            }
            if let Some(key) = start.take() {
                scan = scan.exclusive_start_key(key);
            }
            let page = scan.send().unwrap_or_else(|e| panic!("scan: {e}"));
            assert!(page.count > 0 || page.last_evaluated_key.is_none());
            start = page.last_evaluated_key;
        }
    }));

    let keys = map2(
        random_items(config, threads, config.updates, 4, true),
        |(p, s)| key(p, s),
    );
    out[Workload::Update.index()] = Some(timed(keys, |_| {
        move |key: Item| {
            db.update_item(TABLE)
                .key(key)
                .update_expression("ADD n :one")
                .value(":one", 1)
                .send()
                .unwrap_or_else(|e| panic!("update: {e}"));
        }
    }));

    // Each request comes with a spare copy for a retry (see `CONFLICTS`).
    let transacts = map2(transactions(config, threads), |picks| {
        let mut request = db.transact_write_items();
        for (p, s) in picks {
            request = request.item(TransactPut::new(TABLE, full_item(p, s)));
        }
        (request.clone(), request)
    });
    out[Workload::Transact.index()] = Some(timed(transacts, |_| {
        move |(request, spare): (TransactWriteItems, TransactWriteItems)| {
            let mut result = request.send();
            while let Err(nimbus::kv::Error::TransactionCanceled { reasons }) = &result {
                let conflict_only = reasons
                    .iter()
                    .all(|r| r.code == "None" || r.code == "TransactionConflict");
                if !conflict_only {
                    break;
                }
                CONFLICTS.fetch_add(1, Ordering::Relaxed);
                result = spare.clone().send();
            }
            result.unwrap_or_else(|e| panic!("transact: {e}"));
        }
    }));

    db.close().unwrap_or_else(|e| panic!("close: {e}"));
    out
}

pub(crate) fn run_fjall(config: &Config, threads: usize) -> Samples {
    let dir = tempfile::tempdir_in(&config.dir).unwrap_or_else(|e| panic!("temp dir: {e}"));
    let db = fjall::Database::builder(dir.path())
        .cache_size(CACHE_BYTES)
        .open()
        .unwrap_or_else(|e| panic!("fjall open: {e}"));
    let ks = db
        .keyspace("bench", || {
            KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
        })
        .unwrap_or_else(|e| panic!("fjall keyspace: {e}"));
    let mut out: Samples = [None; 6];
    let ks = &ks;

    let pairs = put_order(config, threads);
    let build = |(p, s)| (peer_key(p, s), peer_value(p, s));
    out[Workload::Put.index()] = Some(timed_built(pairs, build, |_| {
        move |(key, value): (Vec<u8>, Vec<u8>)| {
            ks.insert(key.as_slice(), value.as_slice())
                .unwrap_or_else(|e| panic!("fjall insert: {e}"));
        }
    }));
    // Public but `#[doc(hidden)]` in fjall 3: the only way to ask for a
    // flush and a full compaction.
    ks.rotate_memtable_and_wait()
        .unwrap_or_else(|e| panic!("fjall flush: {e}"));
    ks.major_compact()
        .unwrap_or_else(|e| panic!("fjall compact: {e}"));
    // The same untimed warm-up as nimbus's.
    for guard in ks.iter() {
        guard
            .into_inner()
            .unwrap_or_else(|e| panic!("fjall warm-up scan: {e}"));
    }
    for (p, s) in warm_up_keys(config) {
        ks.get(peer_key(p, s))
            .unwrap_or_else(|e| panic!("fjall warm-up: {e}"));
    }

    let keys = random_items(config, threads, config.gets, 2, false);
    out[Workload::Get.index()] = Some(timed_built(keys, |(p, s)| peer_key(p, s), |_| {
        move |key: Vec<u8>| {
            let value = ks.get(&key).unwrap_or_else(|e| panic!("fjall get: {e}"));
            assert!(value.is_some(), "every key read exists");
        }
    }));

    let prefixes = map2(
        random_items(config, threads, config.queries, 3, false),
        |(p, _)| peer_prefix(p),
    );
    out[Workload::Query.index()] = Some(timed(prefixes, |_| {
        move |prefix: Vec<u8>| {
            let mut rows = Vec::with_capacity(SORT_KEYS as usize);
            for guard in ks.prefix(&prefix).take(SORT_KEYS as usize) {
                rows.push(
                    guard
                        .into_inner()
                        .unwrap_or_else(|e| panic!("fjall scan: {e}")),
                );
            }
            assert_eq!(rows.len(), SORT_KEYS as usize);
        }
    }));

    let pages = vec![vec![(); config.scan_pages]; threads];
    out[Workload::Scan.index()] = Some(timed(pages, |t| {
        let (first, end) = peer_segment(t, threads);
        let mut start: Option<Vec<u8>> = None;
        move |()| {
            let from = match start.take() {
                Some(last) => Bound::Excluded(last),
                None => Bound::Included(first.clone()),
            };
            let mut rows = Vec::with_capacity(SCAN_PAGE);
            for guard in ks
                .range::<Vec<u8>, _>((from, Bound::Excluded(end.clone())))
                .take(SCAN_PAGE)
            {
                rows.push(
                    guard
                        .into_inner()
                        .unwrap_or_else(|e| panic!("fjall scan: {e}")),
                );
            }
            // A full page continues after its last key; a short one ends
            // the segment, and the next page starts it over.
            if rows.len() == SCAN_PAGE {
                start = rows.last().map(|(k, _)| k.to_vec());
            }
        }
    }));

    db.persist(PersistMode::SyncAll)
        .unwrap_or_else(|e| panic!("fjall persist: {e}"));
    out
}
