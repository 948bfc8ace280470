//! GetItem alone, at the size of issue 4's target: 100,000 items of 1 KB in
//! 1,000 partitions of 100, loaded into a `Buffered` database, flushed and
//! compacted, then warmed (one scan and one read of every item). It times
//! each read alone and prints p50/p99 of, alternating, `Database::get_item`
//! and the raw `Engine::get` of the same rows (what the item layer adds),
//! median of the repetitions. Each read's key (the key map, or the row key
//! for the engine) is built just before it, outside the timing. Run with
//! `cargo bench --bench kv_get` (about a minute); `KV_GET_ITEMS`,
//! `KV_GET_READS`, `KV_GET_REPS` and `KV_GET_ONLY=item|engine` (for
//! `perf record`) change the sizes. The same items and keys as the peers
//! `kv` bench (`benches/peers/src/bin/kv`), without the peer.
// A bench that cannot set up has nothing to measure, so it may panic.
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use nimbus::storage::Durability;
use nimbus::value::{decode_item, item_size};
use nimbus::{AttributeValue, Database, DatabaseOptions, Item, ScalarType, item};

#[path = "common/data.rs"]
mod data;
use data::{incompressible_text, mix};

const TABLE: &str = "Bench";
const SORT_KEYS: u64 = 100;
/// The DynamoDB size of every item.
const ITEM_BYTES: usize = 1024;

fn partition_key(p: u64) -> String {
    format!("user#{p:06}")
}

/// A 1 KB item whose payload does not compress (as `benches/kv.rs`).
fn full_item(p: u64, s: u64) -> Item {
    let mut item = item! { "pk" => partition_key(p), "sk" => s, "n" => 0, "kind" => "event" };
    let room = ITEM_BYTES - item_size(&item) - "payload".len();
    let payload = incompressible_text(room, (p << 32) | s);
    item.insert("payload".to_owned(), AttributeValue::S(payload));
    item
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// p50 and p99 of `samples` (nanoseconds), sorting them.
fn quantiles(samples: &mut [u64]) -> (u64, u64) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    (at(0.5), at(0.99))
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; a filter that names another bench
    // skips this one.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"kv_get".contains(a.as_str()))
    {
        return;
    }
    let items = env_number("KV_GET_ITEMS", 100_000).max(SORT_KEYS);
    let reads = env_number("KV_GET_READS", 200_000) as usize;
    let reps = env_number("KV_GET_REPS", 5).max(1);
    let only = std::env::var("KV_GET_ONLY").unwrap_or_default();
    let partitions = items / SORT_KEYS;

    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let options = DatabaseOptions::default().durability(Durability::Buffered);
    let db = Database::open_with(dir.path(), options).expect("open");
    db.create_table(TABLE)
        .partition_key("pk", ScalarType::S)
        .sort_key("sk", ScalarType::N)
        .send()
        .expect("create table");
    let began = Instant::now();
    // A shuffled load, as the peers bench does: order by a hash of the key.
    let mut order: Vec<(u64, u64)> = (0..partitions)
        .flat_map(|p| (0..SORT_KEYS).map(move |s| (p, s)))
        .collect();
    order.sort_by_key(|&(p, s)| mix((p << 32) | s));
    for &(p, s) in &order {
        db.put_item(TABLE)
            .item(full_item(p, s))
            .send()
            .expect("load");
    }
    db.engine().compact().expect("compact");
    // The rows as the engine stores them, to time the raw engine on the
    // same keys: every row whose value decodes to an item with a payload.
    let mut rows: Vec<(Item, Bytes)> = Vec::with_capacity(items as usize);
    for pair in db
        .engine()
        .range::<&[u8]>(.., nimbus::storage::Direction::Forward, None)
        .expect("scan")
    {
        let (row_key, value) = pair.expect("scan row");
        if let Ok(item) = decode_item(&value)
            && item.contains_key("payload")
        {
            let key: Item = ["pk", "sk"]
                .iter()
                .filter_map(|name| Some(((*name).to_owned(), item.get(*name)?.clone())))
                .collect();
            rows.push((key, row_key));
        }
    }
    assert_eq!(rows.len() as u64, items, "every item is a row");
    for (key, _) in &rows {
        db.get_item(TABLE).key(key.clone()).send().expect("warm-up");
    }
    eprintln!(
        "kv_get: {items} items loaded, compacted and warmed in {:.1} s; {:?}",
        began.elapsed().as_secs_f64(),
        db.engine().stats()
    );

    let picks: Vec<usize> = (0..reads as u64)
        .map(|n| (mix(n ^ 0x5eed) % items) as usize)
        .collect();
    let (mut item_p50, mut item_p99, mut raw_p50, mut raw_p99) = (vec![], vec![], vec![], vec![]);
    let mut samples = vec![0u64; reads];
    for rep in 0..reps {
        let item_first = rep % 2 == 0;
        for path in if item_first { [0, 1] } else { [1, 0] } {
            if path == 0 && only != "engine" {
                for (sample, &i) in samples.iter_mut().zip(&picks) {
                    // Built just before its read, outside the timing, as a
                    // caller builds the key it sends (a key built long
                    // before would leave the CPU caches, and the request
                    // would pay for reading and freeing it cold).
                    // (A fresh map: cloning an `Item` would share the
                    // stored one.)
                    let key: Item = rows[i]
                        .0
                        .iter()
                        .map(|(n, v)| (n.clone(), v.clone()))
                        .collect();
                    let start = Instant::now();
                    let item = db.get_item(TABLE).key(key).send().expect("get").item;
                    *sample = start.elapsed().as_nanos() as u64;
                    assert!(black_box(item).is_some(), "every key read exists");
                }
                let (p50, p99) = quantiles(&mut samples);
                item_p50.push(p50);
                item_p99.push(p99);
            }
            if path == 1 && only != "item" {
                let engine = db.engine();
                for (sample, &i) in samples.iter_mut().zip(&picks) {
                    let row_key = rows[i].1.to_vec();
                    let start = Instant::now();
                    let value = engine.get(&row_key).expect("engine get");
                    *sample = start.elapsed().as_nanos() as u64;
                    assert!(black_box(value).is_some(), "every row read exists");
                }
                let (p50, p99) = quantiles(&mut samples);
                raw_p50.push(p50);
                raw_p99.push(p99);
            }
        }
    }
    let show = |name: &str, p50: Vec<u64>, p99: Vec<u64>| {
        if !p50.is_empty() {
            println!(
                "kv_get {name:<28} p50 {:>6} ns  p99 {:>6} ns  (p50 of each repetition: {p50:?})",
                median(p50.clone()),
                median(p99)
            );
        }
    };
    show("Database::get_item", item_p50, item_p99);
    show("Engine::get (same rows)", raw_p50, raw_p99);
    db.close().expect("close");
}
