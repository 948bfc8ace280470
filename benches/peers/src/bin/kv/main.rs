//! nimbus's kv layer against raw fjall 3, in one run: the six item
//! workloads of issue 4 (PutItem of 1 KB items, GetItem, UpdateItem
//! `ADD n :one`, Query of the 100 items of one partition, Scan pages of
//! 1,000 items, TransactWriteItems of 4 puts) with 1 and 2 threads, p50/p99
//! latency (HdrHistogram) and throughput, median of the repetitions,
//! engines alternating. Prints a Markdown table and writes it into
//! benches/README.md between `<!-- kv:begin -->` and `<!-- kv:end -->`.
//!
//! ```sh
//! cargo run --release --manifest-path benches/peers/Cargo.toml --bin kv
//! KV_QUICK=1 cargo run ...        # small sizes, one repetition, prints only
//! ```
//!
//! Environment: `KV_REPS` (default 5), `KV_ITEMS` (items loaded by the
//! PutItem phase, default 100,000), `KV_GETS`, `KV_UPDATES`, `KV_QUERIES`,
//! `KV_SCAN_PAGES`, `KV_TRANSACTS` (operations per thread), `KV_THREADS`
//! (default `1,2`), `KV_ENGINES` (default `nimbus,fjall`; one alone, e.g.
//! under `perf record`), `KV_DIR` (where the databases go, default the system
//! temporary directory), `KV_QUICK`, `KV_WRITE` (0: do not touch the README),
//! `KV_STATS` (print nimbus's engine stats after its compaction).
//!
//! The peer shows what the item layer costs: fjall stores the *same bytes*
//! nimbus stores (`nimbus::value::encode_item` of the same 1 KB item) under
//! keys of the same shape (`4-byte keyspace | 8-byte token of the encoded
//! partition key | encoded partition key | encoded sort key`), so a fjall
//! put is what a PutItem would cost with no request parsing, validation,
//! item lock, read of the old item, encoding or accounting, and a fjall get
//! or prefix scan what a GetItem or Query would cost without key validation
//! and decoding. UpdateItem and TransactWriteItems have no raw equivalent
//! and are nimbus only.
//!
//! Each run (one engine, one thread count) is a fresh directory: the
//! PutItem phase loads the table in a shuffled order (thread `t` of `T`
//! writes the partitions `p` with `p % T == t`), then both engines flush
//! and compact, and the read phases read that data (every key read
//! exists); UpdateItem and TransactWriteItems then write the items of the
//! thread's own partitions, so two threads never wait for one item. The
//! PutItem items and GetItem keys (and fjall's encoded bytes and keys) are
//! each built just before their op, outside its timing, as a caller builds
//! what it sends; the other requests' inputs are built before the timed
//! loop. The same for both engines, from the same seeds.

mod data;
mod engines;
mod report;

use std::path::PathBuf;
use std::time::Instant;

use engines::{run_fjall, run_nimbus};
use report::{micros, rate, table, write_readme};

const TABLE: &str = "Bench";
/// Items per partition: a Query reads one whole partition.
const SORT_KEYS: u64 = 100;
/// DynamoDB size of every item (names plus values).
const ITEM_BYTES: usize = 1024;
const SCAN_PAGE: usize = 1000;
/// A transaction's actions.
const TRANSACT_ITEMS: usize = 4;
/// nimbus's default memory budgets, given to fjall too.
const MEMTABLE_BYTES: u64 = 64 << 20;
const CACHE_BYTES: u64 = 32 << 20;
/// The fjall keys' stand-in for nimbus's keyspace id.
const KEYSPACE: [u8; 4] = [0, 0, 0, 20];

/// The workloads, in table order.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    Put,
    Get,
    Update,
    Query,
    Scan,
    Transact,
}

const WORKLOADS: [Workload; 6] = [
    Workload::Put,
    Workload::Get,
    Workload::Update,
    Workload::Query,
    Workload::Scan,
    Workload::Transact,
];

impl Workload {
    fn label(self) -> &'static str {
        match self {
            Workload::Put => "PutItem (1 KB)",
            Workload::Get => "GetItem",
            Workload::Update => "UpdateItem `ADD n :one`",
            Workload::Query => "Query, 100 items of a partition",
            Workload::Scan => "Scan, a page of 1,000 items",
            Workload::Transact => "TransactWriteItems, 4 puts",
        }
    }

    fn index(self) -> usize {
        WORKLOADS.iter().position(|w| *w == self).unwrap_or(0)
    }

    /// What fjall does instead, if anything.
    fn peer(self) -> Option<&'static str> {
        match self {
            Workload::Put => Some("`insert` of the encoded item"),
            Workload::Get => Some("`get`"),
            Workload::Query => Some("`prefix` scan of the partition's 100 rows"),
            Workload::Scan => Some("`range` of 1,000 rows"),
            Workload::Update | Workload::Transact => None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Engine {
    Nimbus,
    Fjall,
}

struct Config {
    reps: usize,
    items: u64,
    gets: usize,
    updates: usize,
    queries: usize,
    scan_pages: usize,
    transacts: usize,
    threads: Vec<usize>,
    engines: Vec<Engine>,
    dir: PathBuf,
    write: bool,
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

impl Config {
    fn from_env() -> Self {
        let quick = std::env::var("KV_QUICK").is_ok_and(|v| v != "0");
        let scale = |full: usize| if quick { full / 10 } else { full };
        let items = env_number("KV_ITEMS", scale(100_000)) as u64;
        Self {
            reps: env_number("KV_REPS", if quick { 1 } else { 5 }).max(1),
            // Whole partitions, at least two (one per thread).
            items: (items / SORT_KEYS).max(2) * SORT_KEYS,
            gets: env_number("KV_GETS", scale(200_000)),
            updates: env_number("KV_UPDATES", scale(50_000)),
            queries: env_number("KV_QUERIES", scale(5_000)),
            scan_pages: env_number("KV_SCAN_PAGES", scale(100)),
            transacts: env_number("KV_TRANSACTS", scale(10_000)),
            threads: std::env::var("KV_THREADS")
                .unwrap_or_else(|_| "1,2".to_owned())
                .split(',')
                .filter_map(|t| t.trim().parse().ok())
                .filter(|&t| t >= 1)
                .collect(),
            engines: {
                let wanted = std::env::var("KV_ENGINES").unwrap_or_else(|_| "nimbus,fjall".into());
                [(Engine::Nimbus, "nimbus"), (Engine::Fjall, "fjall")]
                    .into_iter()
                    .filter(|(_, name)| wanted.split(',').any(|w| w.trim() == *name))
                    .map(|(engine, _)| engine)
                    .collect()
            },
            dir: std::env::var_os("KV_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir),
            write: !quick && std::env::var("KV_WRITE").map_or(true, |v| v != "0"),
        }
    }

    fn partitions(&self) -> u64 {
        self.items / SORT_KEYS
    }
}

fn main() {
    let config = Config::from_env();
    let started = Instant::now();
    let mut results = Vec::new();
    for rep in 0..config.reps {
        let order = if rep % 2 == 0 {
            [Engine::Nimbus, Engine::Fjall]
        } else {
            [Engine::Fjall, Engine::Nimbus]
        };
        for &threads in &config.threads {
            for engine in order.into_iter().filter(|e| config.engines.contains(e)) {
                let began = Instant::now();
                let samples = match engine {
                    Engine::Nimbus => run_nimbus(&config, threads),
                    Engine::Fjall => run_fjall(&config, threads),
                };
                let brief: Vec<String> = WORKLOADS
                    .iter()
                    .filter_map(|w| {
                        samples[w.index()].map(|s| {
                            format!(
                                "{:?} p50 {}, {}",
                                w.label(),
                                micros(s.p50_ns),
                                rate(s.ops_per_s)
                            )
                        })
                    })
                    .collect();
                eprintln!(
                    "kv: rep {rep} {engine:?} {threads} thread(s) in {:.1} s: {}",
                    began.elapsed().as_secs_f64(),
                    brief.join("; ")
                );
                results.push((threads, engine, samples));
            }
        }
    }
    let table = table(&config, &results, started.elapsed().as_secs_f64());
    println!("{table}");
    if config.write {
        write_readme(&table);
    }
}
