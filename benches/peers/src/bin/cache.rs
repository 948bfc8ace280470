//! nimbus's `Cache` against moka, quick_cache and lru, in one run: hit
//! ratios on the ARC traces (shared/traces) and on LIRS-style loop and
//! zigzag patterns, get/insert throughput under Zipf(0.99) with 1 and 2
//! threads, and hit latency. Prints a Markdown table and writes it into
//! benches/README.md between `<!-- cache:begin -->` and `<!-- cache:end -->`.
//!
//! ```sh
//! cargo run --release --manifest-path benches/peers/Cargo.toml --bin cache
//! CACHE_QUICK=1 cargo run ...        # small sizes, prints only
//! ```
//!
//! Environment: `CACHE_TRACES` (directory of OLTP.lis.zst and P3.lis.zst,
//! default `../shared/traces` beside the repository), `CACHE_REPS`
//! (throughput repetitions, default 5), `CACHE_OPS` (operations per thread,
//! default 2,000,000), `CACHE_HIT_REPS` (caches per hit-ratio cell, whose
//! median is reported; default 3), `CACHE_PHASES` (`hit,throughput,latency`),
//! `CACHE_THREADS` (thread counts of the throughput phase, default `1,2`),
//! `CACHE_SUBJECTS` (comma-separated subset of the names below),
//! `CACHE_QUICK`, `CACHE_WRITE` (0: do not touch the README).
//!
//! Capacities are entry counts. moka, quick_cache and lru get them directly
//! (every entry weighs 1); nimbus, which budgets bytes, gets a weigher
//! charging 16 bytes (a `u64` key and value) plus its 64-byte per-entry
//! overhead, and a budget of exactly `entries × 80` bytes, so every cache
//! holds at most the same number of entries.

use std::io::{BufRead, BufReader};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use nimbus::cache::{ENTRY_OVERHEAD_BYTES, Policy};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};

/// What nimbus's weigher charges per `u64` key and value.
const PAYLOAD_BYTES: u64 = 16;
/// Keys of the Zipf workload.
const ZIPF_KEYS: u64 = 1_000_000;
/// Cache capacity of the throughput workload, in entries.
const ZIPF_CAPACITY: usize = 100_000;
/// Resident entries of the hit-latency workload.
const LATENCY_KEYS: u64 = 50_000;
/// Gets timed together in the latency workload (a single get is shorter
/// than the clock's resolution and cost).
const LATENCY_BATCH: usize = 16;

/// A cache under test, keyed and valued by `u64`.
trait Subject: Sync {
    fn get(&self, key: u64) -> Option<u64>;
    fn insert(&self, key: u64, value: u64);
    /// Finishes deferred work (moka's pending tasks).
    fn settle(&self) {}
}

struct Nimbus(nimbus::cache::Cache<u64, u64>);
struct Moka(moka::sync::Cache<u64, u64>);
struct Quick(quick_cache::sync::Cache<u64, u64>);
struct Lru(Mutex<lru::LruCache<u64, u64>>);

impl Subject for Nimbus {
    fn get(&self, key: u64) -> Option<u64> {
        self.0.get(&key)
    }
    fn insert(&self, key: u64, value: u64) {
        // Every entry weighs the same and fits, so this cannot fail.
        let _ = self.0.insert(key, value);
    }
}

impl Subject for Moka {
    fn get(&self, key: u64) -> Option<u64> {
        self.0.get(&key)
    }
    fn insert(&self, key: u64, value: u64) {
        self.0.insert(key, value);
    }
    fn settle(&self) {
        self.0.run_pending_tasks();
    }
}

impl Subject for Quick {
    fn get(&self, key: u64) -> Option<u64> {
        self.0.get(&key)
    }
    fn insert(&self, key: u64, value: u64) {
        self.0.insert(key, value);
    }
}

impl Subject for Lru {
    fn get(&self, key: u64) -> Option<u64> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .copied()
    }
    fn insert(&self, key: u64, value: u64) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(key, value);
    }
}

/// The subjects, in table order.
const SUBJECTS: [&str; 5] = ["nimbus", "nimbus-lru", "moka", "quick_cache", "lru"];

fn build(name: &str, entries: usize) -> Box<dyn Subject> {
    let nimbus = |policy| {
        Box::new(Nimbus(
            nimbus::cache::Cache::builder()
                .max_bytes(entries as u64 * (PAYLOAD_BYTES + ENTRY_OVERHEAD_BYTES))
                .weigher(|_: &u64, _: &u64| PAYLOAD_BYTES)
                .policy(policy)
                .build(),
        )) as Box<dyn Subject>
    };
    match name {
        "nimbus" => nimbus(Policy::Adaptive),
        "nimbus-lru" => nimbus(Policy::Lru),
        "moka" => Box::new(Moka(
            moka::sync::Cache::builder()
                .max_capacity(entries as u64)
                .build(),
        )),
        "quick_cache" => Box::new(Quick(quick_cache::sync::Cache::new(entries))),
        "lru" => Box::new(Lru(Mutex::new(lru::LruCache::new(
            NonZeroUsize::new(entries.max(1)).unwrap_or(NonZeroUsize::MIN),
        )))),
        other => panic!("unknown subject {other}"),
    }
}

struct Config {
    traces: PathBuf,
    reps: usize,
    hit_reps: usize,
    ops: usize,
    phases: Vec<String>,
    /// Thread counts of the throughput phase.
    threads: Vec<usize>,
    subjects: Vec<&'static str>,
    quick: bool,
    write: bool,
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

impl Config {
    fn from_env() -> Self {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let quick = std::env::var("CACHE_QUICK").is_ok_and(|v| v != "0");
        let wanted = env_list("CACHE_SUBJECTS", &SUBJECTS.join(","));
        Self {
            traces: std::env::var_os("CACHE_TRACES")
                .map(PathBuf::from)
                .unwrap_or_else(|| manifest.join("../../../shared/traces")),
            reps: env_number("CACHE_REPS", if quick { 1 } else { 5 }),
            hit_reps: env_number("CACHE_HIT_REPS", if quick { 1 } else { 3 }).max(1),
            ops: env_number("CACHE_OPS", if quick { 200_000 } else { 2_000_000 }),
            phases: env_list("CACHE_PHASES", "hit,throughput,latency"),
            threads: env_list("CACHE_THREADS", "1,2")
                .iter()
                .map(|t| t.parse().unwrap_or_else(|e| panic!("CACHE_THREADS {t}: {e}")))
                .collect(),
            subjects: SUBJECTS
                .into_iter()
                .filter(|s| wanted.iter().any(|w| w == s))
                .collect(),
            quick,
            write: !quick && std::env::var("CACHE_WRITE").map_or(true, |v| v != "0"),
        }
    }

    fn has(&self, subject: &str) -> bool {
        self.subjects.contains(&subject)
    }
}

/// Reads an ARC `.lis.zst` trace: `start count _ _` per line stands for
/// `count` consecutive blocks from `start`.
fn read_arc_trace(path: &Path) -> Vec<u64> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let decoder = zstd::Decoder::new(file).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut keys = Vec::new();
    for line in BufReader::new(decoder).lines() {
        let line = line.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut fields = line.split_whitespace();
        let (Some(start), Some(count)) = (fields.next(), fields.next()) else {
            continue;
        };
        let (Ok(start), Ok(count)) = (start.parse::<u64>(), count.parse::<u64>()) else {
            continue;
        };
        keys.extend(start..start + count);
    }
    keys
}

/// LIRS's "loop": the same `len` keys in the same order, `rounds` times.
fn loop_pattern(len: u64, rounds: u64) -> Vec<u64> {
    (0..rounds).flat_map(|_| 0..len).collect()
}

/// LIRS's "zigzag": `len` keys forward, then backward, `passes` times.
fn zigzag_pattern(len: u64, passes: u64) -> Vec<u64> {
    (0..passes)
        .flat_map(|pass| {
            let keys: Vec<u64> = if pass % 2 == 0 {
                (0..len).collect()
            } else {
                (0..len).rev().collect()
            };
            keys
        })
        .collect()
}

/// Hit ratio (%) of `subject` on `trace`: get, and insert on a miss.
fn hit_ratio(subject: &dyn Subject, trace: &[u64]) -> f64 {
    let mut hits = 0u64;
    for &key in trace {
        if subject.get(key).is_some() {
            hits += 1;
        } else {
            subject.insert(key, key);
        }
    }
    100.0 * hits as f64 / trace.len() as f64
}

struct HitRow {
    name: String,
    ratios: Vec<Option<f64>>,
}

fn hit_ratio_rows(config: &Config) -> Vec<HitRow> {
    let mut workloads: Vec<(String, Vec<u64>, Vec<usize>)> = Vec::new();
    let oltp = config.traces.join("OLTP.lis.zst");
    let p3 = config.traces.join("P3.lis.zst");
    workloads.push((
        "OLTP".into(),
        read_arc_trace(&oltp),
        vec![250, 500, 1000, 2000],
    ));
    if !config.quick {
        workloads.push(("P3".into(), read_arc_trace(&p3), vec![20_000, 160_000]));
    }
    workloads.push((
        "loop (1,000 keys × 500)".into(),
        loop_pattern(1000, 500),
        vec![512, 768],
    ));
    workloads.push((
        "zigzag (2,000 keys × 26)".into(),
        zigzag_pattern(2000, 26),
        vec![512, 768],
    ));
    let mut rows = Vec::new();
    for (name, trace, capacities) in &workloads {
        for &capacity in capacities {
            let ratios = SUBJECTS
                .iter()
                .map(|&subject| {
                    config.has(subject).then(|| {
                        // nimbus and moka seed their hashers randomly, which
                        // moves loop and zigzag rows by up to 2 pp between
                        // runs: report the median of several caches.
                        let ratios = (0..config.hit_reps)
                            .map(|_| hit_ratio(build(subject, capacity).as_ref(), trace))
                            .collect();
                        median(ratios).unwrap_or(0.0)
                    })
                })
                .collect();
            let row = HitRow {
                name: format!("{name} @ {capacity}"),
                ratios,
            };
            eprintln!("cache: {} {:?}", row.name, row.ratios);
            rows.push(row);
        }
    }
    rows
}

#[derive(Clone, Copy)]
enum Op {
    Get(u64),
    Insert(u64),
}

fn zipf_ops(count: usize, seed: u64) -> Vec<Op> {
    let mut rng = StdRng::seed_from_u64(seed);
    let zipf = Zipf::new(ZIPF_KEYS as f64, 0.99).unwrap_or_else(|e| panic!("zipf: {e}"));
    (0..count)
        .map(|_| {
            // Zipf ranks start at 1; scramble them so hot keys spread over shards.
            let key = (zipf.sample(&mut rng) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            if rng.random_bool(0.9) {
                Op::Get(key)
            } else {
                Op::Insert(key)
            }
        })
        .collect()
}

fn run_ops(subject: &dyn Subject, ops: &[Op]) -> u64 {
    let mut found = 0u64;
    for op in ops {
        match *op {
            Op::Get(key) => found += u64::from(subject.get(key).is_some()),
            Op::Insert(key) => subject.insert(key, key),
        }
    }
    found
}

/// Median ops/s of `subject` with `threads` threads over `reps` repetitions.
fn throughput(config: &Config, threads: usize) -> Vec<Option<f64>> {
    let warmup = zipf_ops(config.ops, 1);
    let per_thread: Vec<Vec<Op>> = (0..threads)
        .map(|t| zipf_ops(config.ops, 100 + t as u64))
        .collect();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); SUBJECTS.len()];
    for _ in 0..config.reps {
        for (index, &name) in SUBJECTS.iter().enumerate() {
            if !config.has(name) {
                continue;
            }
            let cache = build(name, ZIPF_CAPACITY);
            run_ops(cache.as_ref(), &warmup);
            cache.settle();
            let barrier = Barrier::new(threads);
            let cache = cache.as_ref();
            let elapsed: Vec<Duration> = std::thread::scope(|scope| {
                let handles: Vec<_> = per_thread
                    .iter()
                    .map(|ops| {
                        let barrier = &barrier;
                        scope.spawn(move || {
                            barrier.wait();
                            let start = Instant::now();
                            std::hint::black_box(run_ops(cache, ops));
                            start.elapsed()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|_| panic!("worker panicked")))
                    .collect()
            });
            let wall = elapsed.iter().max().copied().unwrap_or_default();
            samples[index].push((threads * config.ops) as f64 / wall.as_secs_f64());
        }
    }
    samples.into_iter().map(median).collect()
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[values.len() / 2])
}

/// Hit latency (ns): p50 and p99 over batches of [`LATENCY_BATCH`] gets of
/// resident keys, median over the repetitions.
fn hit_latency(config: &Config) -> Vec<Option<(f64, f64)>> {
    let mut rng = StdRng::seed_from_u64(7);
    let keys: Vec<u64> = (0..config.ops)
        .map(|_| {
            rng.random_range(0..LATENCY_KEYS)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        })
        .collect();
    let mut samples: Vec<Vec<(f64, f64)>> = vec![Vec::new(); SUBJECTS.len()];
    for _ in 0..config.reps {
        for (index, &name) in SUBJECTS.iter().enumerate() {
            if !config.has(name) {
                continue;
            }
            let cache = build(name, 2 * LATENCY_KEYS as usize);
            for key in 0..LATENCY_KEYS {
                let key = key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                cache.insert(key, key);
            }
            cache.settle();
            let mut batches = Vec::with_capacity(keys.len() / LATENCY_BATCH);
            let mut missing = 0u64;
            for batch in keys.chunks_exact(LATENCY_BATCH) {
                let start = Instant::now();
                for &key in batch {
                    missing += u64::from(std::hint::black_box(cache.get(key)).is_none());
                }
                batches.push(start.elapsed().as_nanos() as f64 / LATENCY_BATCH as f64);
            }
            assert_eq!(missing, 0, "{name}: resident keys missed");
            batches.sort_by(f64::total_cmp);
            let at = |q: f64| batches[((batches.len() - 1) as f64 * q) as usize];
            samples[index].push((at(0.5), at(0.99)));
        }
    }
    samples
        .into_iter()
        .map(|s| {
            let p50 = median(s.iter().map(|x| x.0).collect())?;
            let p99 = median(s.iter().map(|x| x.1).collect())?;
            Some((p50, p99))
        })
        .collect()
}

fn fmt_opt(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.digits$}"))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown kernel".to_owned());
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    format!("{cores} cores, {cpu}, Linux {kernel}")
}

fn index_of(name: &str) -> usize {
    SUBJECTS.iter().position(|s| *s == name).unwrap_or(0)
}

fn hit_table(rows: &[HitRow]) -> String {
    let mut out = String::from(
        "| workload @ entries | nimbus | nimbus LRU | moka | quick_cache | lru | nimbus − best(moka, quick_cache) |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let nimbus = row.ratios[index_of("nimbus")];
        let best = [
            row.ratios[index_of("moka")],
            row.ratios[index_of("quick_cache")],
        ]
        .into_iter()
        .flatten()
        .reduce(f64::max);
        let delta = nimbus.zip(best).map(|(n, b)| n - b);
        let cells: Vec<String> = row.ratios.iter().map(|r| fmt_opt(*r, 2)).collect();
        let verdict = match delta {
            Some(d) if d >= -0.5 => format!("{d:+.2} pp ✓"),
            Some(d) => format!("{d:+.2} pp ✗"),
            None => "—".to_owned(),
        };
        out.push_str(&format!(
            "| {} | {} | {verdict} |\n",
            row.name,
            cells.join(" | ")
        ));
    }
    out
}

fn throughput_table(rows: &[(usize, Vec<Option<f64>>)]) -> String {
    let mut out = String::from(
        "| threads | nimbus | nimbus LRU | moka | quick_cache | lru | nimbus / quick_cache | nimbus / moka |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (threads, values) in rows {
        let nimbus = values[index_of("nimbus")];
        let ratio = |peer: &str| {
            nimbus
                .zip(values[index_of(peer)])
                .map_or_else(|| "—".to_owned(), |(n, p)| format!("{:.2}×", n / p))
        };
        let cells: Vec<String> = values
            .iter()
            .map(|v| fmt_opt(v.map(|x| x / 1e6), 2))
            .collect();
        out.push_str(&format!(
            "| {threads} | {} | {} | {} |\n",
            cells.join(" | "),
            ratio("quick_cache"),
            ratio("moka")
        ));
    }
    out
}

fn latency_table(values: &[Option<(f64, f64)>]) -> String {
    let mut out = String::from(
        "| hit latency (ns) | nimbus | nimbus LRU | moka | quick_cache | lru |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for (label, pick) in [("p50", 0), ("p99", 1)] {
        let cells: Vec<String> = values
            .iter()
            .map(|v| fmt_opt(v.map(|(p50, p99)| if pick == 0 { p50 } else { p99 }), 1))
            .collect();
        out.push_str(&format!("| {label} | {} |\n", cells.join(" | ")));
    }
    out
}

fn write_readme(table: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let begin = "<!-- cache:begin -->";
    let end = "<!-- cache:end -->";
    let current = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
    let body = format!("{begin}\n{table}{end}");
    let updated = match (current.find(begin), current.find(end)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{body}{}", &current[..b], &current[e + end.len()..])
        }
        _ => format!(
            "{}\n\n## The cache against moka, quick_cache and lru\n\n\
             `cargo run --release --manifest-path benches/peers/Cargo.toml --bin cache` \
             (about 3 minutes) regenerates this section; `CACHE_QUICK=1` prints a \
             smaller run without writing it. See the binary's doc for the method.\n\n{body}\n",
            current.trim_end()
        ),
    };
    if let Err(e) = std::fs::write(&path, updated) {
        eprintln!("cache: cannot write {}: {e}", path.display());
    } else {
        eprintln!("cache: table written to {}", path.display());
    }
}

fn main() {
    let config = Config::from_env();
    let mut table = format!(
        "Machine: {}. Peers: moka 0.12 (sync), quick_cache 0.7, lru 0.16 behind a `Mutex`.\n\n",
        machine()
    );
    if config.phases.iter().any(|p| p == "hit") {
        let rows = hit_ratio_rows(&config);
        table.push_str(&format!(
            "Hit ratio (%), one thread: get each key, insert it on a miss; median of {} caches \
                 per cell (nimbus and moka seed their hashers randomly: loop and zigzag rows move \
                 by up to 2 pp between caches). OLTP and P3 are the ARC traces (Megiddo and \
                 Modha, FAST '03); loop and zigzag are LIRS-style patterns. Target: nimbus ≥ best \
                 of moka and quick_cache − 0.5 pp.\n\n",
            config.hit_reps
        ));
        table.push_str(&hit_table(&rows));
        table.push('\n');
    }
    if config.phases.iter().any(|p| p == "throughput") {
        let rows: Vec<(usize, Vec<Option<f64>>)> = config
            .threads
            .iter()
            .map(|&t| (t, throughput(&config, t)))
            .collect();
        table.push_str(&format!(
            "Throughput (M ops/s, median of {} runs, caches alternating): Zipf(0.99) over {} keys, \
             capacity {} entries, 90% get / 10% insert, {} ops per thread after {} warm-up ops. \
             Target: ≥ 1.0× quick_cache and ≥ 3× moka.\n\n",
            config.reps, ZIPF_KEYS, ZIPF_CAPACITY, config.ops, config.ops
        ));
        table.push_str(&throughput_table(&rows));
        table.push('\n');
    }
    if config.phases.iter().any(|p| p == "latency") {
        let values = hit_latency(&config);
        table.push_str(&format!(
            "Hit latency (ns per get, from batches of {LATENCY_BATCH} timed together; median of {} \
             runs): {LATENCY_KEYS} resident entries, uniform random keys, one thread. \
             Target: nimbus p50 ≤ 100 ns.\n\n",
            config.reps
        ));
        table.push_str(&latency_table(&values));
    }
    println!("{table}");
    if config.write {
        write_readme(&table);
    }
}
