//! nimbus's object store against the `object_store` crate's
//! LocalFileSystem and plain `std::fs` files, in one run, subjects
//! alternating, median of the repetitions. Prints a Markdown table and
//! writes it into benches/README.md between `<!-- objects:begin -->` and
//! `<!-- objects:end -->`.
//!
//! ```sh
//! cargo run --release --manifest-path benches/peers/Cargo.toml --bin objects
//! OBJECTS_QUICK=1 cargo run ...      # small sizes, prints only
//! ```
//!
//! Environment: `OBJECTS_REPS` (default 5), `OBJECTS_SMALL_OPS` (4 KiB
//! operations per repetition, default 20,000), `OBJECTS_SYNC_OPS` (durable
//! 4 KiB puts per repetition, default 2,000), `OBJECTS_THREADS` (writers of
//! the durable workload, default 16), `OBJECTS_LARGE_MIB` (default 64),
//! `OBJECTS_VERSIONS` (dedup data set, default 20), `OBJECTS_DIR`,
//! `OBJECTS_QUICK`, `OBJECTS_WRITE` (0: do not touch the README).
//!
//! Like with like: non-durable rows compare nimbus `Buffered` with peers
//! that never fsync (object_store's LocalFileSystem does not; plain files
//! are written to a temporary name and renamed, as object stores do).
//! Durable rows compare nimbus `Sync` with plain files fsynced
//! (`fdatasync` before the rename) per object. Large bodies are fsynced by
//! nimbus in both modes (a chunk is synced before a committed row names
//! it), so the large-PUT rows also show plain files with an fsync.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hdrhistogram::Histogram;
use nimbus::objects::BucketVersioningStatus;
use nimbus::storage::Durability;
use nimbus::{Database, DatabaseOptions};
use object_store::ObjectStore as _;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

struct Config {
    quick: bool,
    reps: usize,
    small_ops: usize,
    sync_ops: usize,
    threads: usize,
    large_bytes: usize,
    versions: usize,
    dir: PathBuf,
    write: bool,
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

impl Config {
    fn from_env() -> Self {
        let quick = std::env::var("OBJECTS_QUICK").is_ok_and(|v| v != "0");
        let pick = |full: usize, small: usize| if quick { small } else { full };
        Self {
            quick,
            reps: env_or("OBJECTS_REPS", pick(5, 3)),
            small_ops: env_or("OBJECTS_SMALL_OPS", pick(20_000, 3_000)),
            sync_ops: env_or("OBJECTS_SYNC_OPS", pick(2_000, 400)),
            threads: env_or("OBJECTS_THREADS", 16),
            large_bytes: env_or("OBJECTS_LARGE_MIB", pick(64, 8)) << 20,
            versions: env_or("OBJECTS_VERSIONS", pick(20, 5)),
            dir: std::env::var_os("OBJECTS_DIR").map_or_else(std::env::temp_dir, PathBuf::from),
            write: !quick && std::env::var("OBJECTS_WRITE").map_or(true, |v| v != "0"),
        }
    }
}

/// An object store under test.
trait Subject: Send + Sync {
    fn put(&self, key: &str, body: Bytes) -> Result<()>;
    /// Reads the whole body into memory; returns its length.
    fn get(&self, key: &str) -> Result<usize>;
    fn head(&self, key: &str) -> Result<u64>;
    fn delete(&self, key: &str) -> Result<()>;
    /// Streams the body through `buf` (reused); `None` if the subject has
    /// no blocking streaming read.
    fn stream(&self, _key: &str, _buf: &mut [u8]) -> Result<Option<usize>> {
        Ok(None)
    }
}

struct Nimbus {
    db: Database,
    _dir: tempfile::TempDir,
}

impl Nimbus {
    fn open(root: &Path, durability: Durability, versioned: bool) -> Result<Self> {
        let dir = tempfile::tempdir_in(root)?;
        let db = Database::open_with(dir.path(), DatabaseOptions::default().durability(durability))?;
        db.objects().create_bucket("bench").send()?;
        if versioned {
            db.objects()
                .put_bucket_versioning("bench")
                .status(BucketVersioningStatus::Enabled)
                .send()?;
        }
        Ok(Self { db, _dir: dir })
    }
}

impl Subject for Nimbus {
    fn put(&self, key: &str, body: Bytes) -> Result<()> {
        self.db.objects().put_object("bench", key).body(body).send()?;
        Ok(())
    }
    fn get(&self, key: &str) -> Result<usize> {
        let body = self.db.objects().get_object("bench", key).send()?.body.collect()?;
        Ok(body.len())
    }
    fn head(&self, key: &str) -> Result<u64> {
        Ok(self.db.objects().head_object("bench", key).send()?.content_length)
    }
    fn delete(&self, key: &str) -> Result<()> {
        self.db.objects().delete_object("bench", key).send()?;
        Ok(())
    }
    fn stream(&self, key: &str, buf: &mut [u8]) -> Result<Option<usize>> {
        use std::io::Read;
        let mut body = self.db.objects().get_object("bench", key).send()?.body;
        let mut total = 0;
        loop {
            match body.read(buf)? {
                0 => return Ok(Some(total)),
                read => total += read,
            }
        }
    }
}

struct Local {
    store: object_store::local::LocalFileSystem,
    _dir: tempfile::TempDir,
}

impl Local {
    fn open(root: &Path) -> Result<Self> {
        let dir = tempfile::tempdir_in(root)?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir.path())?;
        Ok(Self { store, _dir: dir })
    }
}

impl Subject for Local {
    fn put(&self, key: &str, body: Bytes) -> Result<()> {
        let path = object_store::path::Path::from(key);
        futures::executor::block_on(self.store.put(&path, body.into()))?;
        Ok(())
    }
    fn get(&self, key: &str) -> Result<usize> {
        let path = object_store::path::Path::from(key);
        let bytes = futures::executor::block_on(async { self.store.get(&path).await?.bytes().await })?;
        Ok(bytes.len())
    }
    fn head(&self, key: &str) -> Result<u64> {
        let path = object_store::path::Path::from(key);
        Ok(futures::executor::block_on(self.store.head(&path))?.size)
    }
    fn delete(&self, key: &str) -> Result<()> {
        let path = object_store::path::Path::from(key);
        futures::executor::block_on(self.store.delete(&path))?;
        Ok(())
    }
}

/// One file per object: written to a temporary name, optionally
/// `fdatasync`ed, then renamed over the key's name.
struct Files {
    dir: tempfile::TempDir,
    fsync: bool,
}

impl Files {
    fn open(root: &Path, fsync: bool) -> Result<Self> {
        Ok(Self {
            dir: tempfile::tempdir_in(root)?,
            fsync,
        })
    }
}

impl Subject for Files {
    fn put(&self, key: &str, body: Bytes) -> Result<()> {
        use std::io::Write;
        let tmp = self.dir.path().join(format!("{key}.tmp.{:?}", std::thread::current().id()));
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&body)?;
        if self.fsync {
            file.sync_data()?;
        }
        std::fs::rename(&tmp, self.dir.path().join(key))?;
        Ok(())
    }
    fn get(&self, key: &str) -> Result<usize> {
        Ok(std::fs::read(self.dir.path().join(key))?.len())
    }
    fn head(&self, key: &str) -> Result<u64> {
        Ok(std::fs::metadata(self.dir.path().join(key))?.len())
    }
    fn delete(&self, key: &str) -> Result<()> {
        match std::fs::remove_file(self.dir.path().join(key)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
    fn stream(&self, key: &str, buf: &mut [u8]) -> Result<Option<usize>> {
        use std::io::Read;
        let mut file = std::fs::File::open(self.dir.path().join(key))?;
        let mut total = 0;
        loop {
            match file.read(buf)? {
                0 => return Ok(Some(total)),
                read => total += read,
            }
        }
    }
}

fn random_bytes(len: usize, rng: &mut StdRng) -> Bytes {
    let mut data = vec![0u8; len];
    rng.fill_bytes(&mut data);
    Bytes::from(data)
}

fn key(i: usize) -> String {
    format!("obj{i:07}")
}

/// A figure per subject per repetition; the report prints medians.
#[derive(Default)]
struct Figures(Vec<(String, String, f64)>);

impl Figures {
    fn add(&mut self, row: &str, subject: &str, value: f64) {
        self.0.push((row.to_owned(), subject.to_owned(), value));
    }

    fn median(&self, row: &str, subject: &str) -> Option<f64> {
        let mut values: Vec<f64> = self
            .0
            .iter()
            .filter(|(r, s, _)| r == row && s == subject)
            .map(|(_, _, v)| *v)
            .collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        Some(values[values.len() / 2])
    }
}

fn histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, 100_000_000_000, 3) {
        Ok(h) => h,
        Err(e) => panic!("histogram bounds: {e}"),
    }
}

/// Runs `op` for every index; returns ops/s and p50/p99 latency in µs.
fn timed(count: usize, mut op: impl FnMut(usize) -> Result<()>) -> Result<(f64, f64, f64)> {
    let mut latencies = histogram();
    let started = Instant::now();
    for i in 0..count {
        let t = Instant::now();
        op(i)?;
        latencies.saturating_record(t.elapsed().as_nanos() as u64);
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    Ok((
        rate,
        latencies.value_at_quantile(0.5) as f64 / 1000.0,
        latencies.value_at_quantile(0.99) as f64 / 1000.0,
    ))
}

fn small_workloads(cfg: &Config, figures: &mut Figures, rep: usize) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(rep as u64);
    let bodies: Vec<Bytes> = (0..64).map(|_| random_bytes(4096, &mut rng)).collect();
    let mut subjects: Vec<(&str, Box<dyn Subject>)> = vec![
        ("nimbus", Box::new(Nimbus::open(&cfg.dir, Durability::Buffered, false)?)),
        ("object_store", Box::new(Local::open(&cfg.dir)?)),
        ("std::fs", Box::new(Files::open(&cfg.dir, false)?)),
    ];
    subjects.rotate_left(rep % 3);
    for (name, subject) in &subjects {
        let (rate, p50, p99) = timed(cfg.small_ops, |i| subject.put(&key(i), bodies[i % 64].clone()))?;
        figures.add("put4k", name, rate);
        figures.add("put4k_p50", name, p50);
        figures.add("put4k_p99", name, p99);
        let mut order: Vec<usize> = (0..cfg.small_ops).collect();
        order.sort_by_key(|i| (i * 7919) % cfg.small_ops);
        let (rate, p50, p99) = timed(cfg.small_ops, |i| {
            let len = subject.get(&key(order[i]))?;
            assert_eq!(len, 4096);
            Ok(())
        })?;
        figures.add("get4k", name, rate);
        figures.add("get4k_p50", name, p50);
        figures.add("get4k_p99", name, p99);
        // A warp-like mix over the loaded keys: GET 45 %, HEAD 30 %, PUT 15 %, DELETE 10 %.
        let mut mix_rng = StdRng::seed_from_u64(99 + rep as u64);
        let keys = cfg.small_ops;
        let mut present = vec![true; keys];
        let (rate, _, _) = timed(cfg.small_ops, |i| {
            let k = mix_rng.random_range(0..keys);
            let roll = mix_rng.random_range(0..100);
            // An absent key is written whatever the roll, so every GET,
            // HEAD and DELETE finds its object.
            if !present[k] || (75..90).contains(&roll) {
                present[k] = true;
                return subject.put(&key(k), bodies[i % 64].clone());
            }
            match roll {
                0..45 => subject.get(&key(k)).map(drop),
                45..75 => subject.head(&key(k)).map(drop),
                _ => {
                    present[k] = false;
                    subject.delete(&key(k))
                }
            }
        })?;
        figures.add("mix4k", name, rate);
    }
    Ok(())
}

fn durable_small(cfg: &Config, figures: &mut Figures, rep: usize) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(1000 + rep as u64);
    let bodies: Arc<Vec<Bytes>> = Arc::new((0..64).map(|_| random_bytes(4096, &mut rng)).collect());
    let mut subjects: Vec<(&str, Arc<dyn Subject>)> = vec![
        ("nimbus", Arc::new(Nimbus::open(&cfg.dir, Durability::Sync, false)?)),
        ("std::fs+fsync", Arc::new(Files::open(&cfg.dir, true)?)),
    ];
    subjects.rotate_left(rep % 2);
    for (name, subject) in &subjects {
        for threads in [1, cfg.threads] {
            let per_thread = cfg.sync_ops / threads;
            let started = Instant::now();
            std::thread::scope(|scope| -> Result<()> {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let subject = Arc::clone(subject);
                        let bodies = Arc::clone(&bodies);
                        scope.spawn(move || -> Result<()> {
                            for i in 0..per_thread {
                                subject.put(&key(t * per_thread + i), bodies[i % 64].clone())?;
                            }
                            Ok(())
                        })
                    })
                    .collect();
                for handle in handles {
                    handle.join().map_err(|_| "a writer panicked")??;
                }
                Ok(())
            })?;
            let rate = (per_thread * threads) as f64 / started.elapsed().as_secs_f64();
            figures.add(&format!("put4k_sync_t{threads}"), name, rate);
        }
    }
    Ok(())
}

/// `body` with 8 bytes of every 64 KiB rewritten, so no chunk is shared
/// with earlier puts (dedup must not turn the PUT into a no-op).
fn fresh(body: &Bytes, salt: u64) -> Bytes {
    let mut data = body.to_vec();
    for (index, chunk) in data.chunks_mut(64 * 1024).enumerate() {
        chunk[..8].copy_from_slice(&(salt * 1_000_003 + index as u64).to_le_bytes());
    }
    Bytes::from(data)
}

fn large_workloads(cfg: &Config, figures: &mut Figures, rep: usize) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(2000 + rep as u64);
    let base = random_bytes(cfg.large_bytes, &mut rng);
    let mut subjects: Vec<(&str, Box<dyn Subject>)> = vec![
        ("nimbus", Box::new(Nimbus::open(&cfg.dir, Durability::Sync, false)?)),
        ("object_store", Box::new(Local::open(&cfg.dir)?)),
        ("std::fs", Box::new(Files::open(&cfg.dir, false)?)),
        ("std::fs+fsync", Box::new(Files::open(&cfg.dir, true)?)),
    ];
    subjects.rotate_left(rep % 4);
    let mb = cfg.large_bytes as f64 / 1e6;
    for (name, subject) in &subjects {
        let puts = 3;
        let mut put_secs = 0.0;
        for p in 0..puts {
            let body = fresh(&base, (rep * 10 + p) as u64);
            let t = Instant::now();
            subject.put("large", body)?;
            put_secs += t.elapsed().as_secs_f64();
        }
        figures.add("put_large", name, mb * puts as f64 / put_secs);
        let gets = 5;
        subject.get("large")?;
        let t = Instant::now();
        for _ in 0..gets {
            assert_eq!(subject.get("large")?, cfg.large_bytes);
        }
        figures.add("get_large", name, mb * gets as f64 / t.elapsed().as_secs_f64());
        let mut buf = vec![0u8; 1 << 20];
        if subject.stream("large", &mut buf)?.is_some() {
            let t = Instant::now();
            for _ in 0..gets {
                assert_eq!(subject.stream("large", &mut buf)?, Some(cfg.large_bytes));
            }
            figures.add("stream_large", name, mb * gets as f64 / t.elapsed().as_secs_f64());
        }
    }
    Ok(())
}

/// Versions of one file, each with 1 % of its bytes rewritten in one run
/// at a random offset; stored bytes (pack files) against one version's
/// size, and the ingest rate, for nimbus with its default chunking (1 MiB
/// average; changed chunks stored as differences from the previous
/// version) and for one fsynced file per version.
fn dedup(cfg: &Config, figures: &mut Figures, rep: usize) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(3000 + rep as u64);
    let mut version = random_bytes(cfg.large_bytes, &mut rng).to_vec();
    let nimbus = Nimbus::open(&cfg.dir, Durability::Sync, true)?;
    let files = Files::open(&cfg.dir, true)?;
    let mut nimbus_secs = 0.0;
    let mut files_secs = 0.0;
    for v in 0..cfg.versions {
        if v > 0 {
            let run = cfg.large_bytes / 100;
            let at = rng.random_range(0..cfg.large_bytes - run);
            rng.fill_bytes(&mut version[at..at + run]);
        }
        let body = Bytes::from(version.clone());
        let t = Instant::now();
        nimbus.put("file", body.clone())?;
        nimbus_secs += t.elapsed().as_secs_f64();
        let t = Instant::now();
        files.put(&format!("file.v{v}"), body)?;
        files_secs += t.elapsed().as_secs_f64();
    }
    let stored = nimbus.db.objects().verify()?.pack_bytes as f64;
    let ingested_mb = (cfg.large_bytes * cfg.versions) as f64 / 1e6;
    figures.add("dedup_ratio", "nimbus", stored / cfg.large_bytes as f64);
    figures.add("dedup_ingest", "nimbus", ingested_mb / nimbus_secs);
    figures.add("dedup_ratio", "std::fs+fsync", cfg.versions as f64);
    figures.add("dedup_ingest", "std::fs+fsync", ingested_mb / files_secs);
    Ok(())
}

fn fmt(value: Option<f64>) -> String {
    match value {
        None => "–".into(),
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

fn table(cfg: &Config, figures: &Figures) -> String {
    let subjects = ["nimbus", "object_store", "std::fs", "std::fs+fsync"];
    let durable = format!("put4k_sync_t{}", cfg.threads);
    let durable_label = format!(
        "durable PUT 4 KiB, {} threads, ops/s (nimbus Sync, group commit; files fsync)",
        cfg.threads
    );
    // (metric, label, peer of the ratio, higher is better)
    let rows: Vec<(&str, &str, &str, bool)> = vec![
        ("put4k", "PUT 4 KiB, ops/s (nimbus Buffered; peers no fsync)", "std::fs", true),
        ("put4k_p50", "PUT 4 KiB p50, µs", "std::fs", false),
        ("put4k_p99", "PUT 4 KiB p99, µs", "std::fs", false),
        ("get4k", "GET 4 KiB, ops/s", "std::fs", true),
        ("get4k_p50", "GET 4 KiB p50, µs", "std::fs", false),
        ("get4k_p99", "GET 4 KiB p99, µs", "std::fs", false),
        ("mix4k", "warp-like mix 4 KiB (GET 45 / HEAD 30 / PUT 15 / DELETE 10), ops/s", "std::fs", true),
        ("put4k_sync_t1", "durable PUT 4 KiB, 1 thread, ops/s (nimbus Sync; files fsync)", "std::fs+fsync", true),
        (&durable, &durable_label, "std::fs+fsync", true),
        ("put_large", "PUT large, MB/s (nimbus Sync: chunks and log fsynced)", "std::fs+fsync", true),
        ("get_large", "GET large (page cache, into a new buffer), MB/s", "std::fs", true),
        ("stream_large", "GET large streamed through a 1 MiB buffer (page cache), MB/s", "std::fs", true),
        ("dedup_ratio", "versions with 1 % rewritten: stored bytes / one version (default chunking, 1 MiB avg)", "std::fs+fsync", false),
        ("dedup_ingest", "ingest of those versions, MB/s (durable)", "std::fs+fsync", true),
    ];
    let mut out = String::from(
        "| workload | nimbus | object_store | std::fs | std::fs+fsync | nimbus / peer |\n\
         |---|---|---|---|---|---|\n",
    );
    for (metric, label, peer, higher_better) in rows {
        let values: Vec<Option<f64>> = subjects.iter().map(|s| figures.median(metric, s)).collect();
        if values.iter().all(Option::is_none) {
            continue;
        }
        let ratio = match (figures.median(metric, "nimbus"), figures.median(metric, peer)) {
            (Some(n), Some(p)) if p > 0.0 => format!(
                "{:.2}× vs {peer}{}",
                n / p,
                if higher_better { "" } else { " (lower is better)" }
            ),
            _ => "–".into(),
        };
        out.push_str(&format!(
            "| {label} | {} | {} | {} | {} | {ratio} |\n",
            fmt(values[0]),
            fmt(values[1]),
            fmt(values[2]),
            fmt(values[3])
        ));
    }
    out
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

fn write_readme(text: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let begin = "<!-- objects:begin -->";
    let end = "<!-- objects:end -->";
    let current = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
    let body = format!("{begin}\n{text}{end}");
    let updated = match (current.find(begin), current.find(end)) {
        (Some(b), Some(e)) if b < e => format!("{}{body}{}", &current[..b], &current[e + end.len()..]),
        _ => format!(
            "{}\n\n## The object store against object_store and plain files\n\n\
             `cargo run --release --manifest-path benches/peers/Cargo.toml --bin objects` \
             regenerates this section; `OBJECTS_QUICK=1` prints a smaller run without \
             writing it. See the binary's doc for the method.\n\n{body}\n",
            current.trim_end()
        ),
    };
    match std::fs::write(&path, updated) {
        Ok(()) => eprintln!("objects: table written to {}", path.display()),
        Err(e) => eprintln!("objects: cannot write {}: {e}", path.display()),
    }
}

fn main() -> Result<()> {
    let cfg = Config::from_env();
    let started = Instant::now();
    let mut figures = Figures::default();
    for rep in 0..cfg.reps {
        eprintln!("objects: repetition {} of {}", rep + 1, cfg.reps);
        small_workloads(&cfg, &mut figures, rep)?;
        durable_small(&cfg, &mut figures, rep)?;
        large_workloads(&cfg, &mut figures, rep)?;
        if rep < 3 {
            // The data set is large; three repetitions bound the run time.
            dedup(&cfg, &mut figures, rep)?;
        }
    }
    let text = format!(
        "Machine: {}. Median of {} repetitions{}, subjects alternating; {} small operations \
         per repetition, large objects of {} MiB, {} versions in the dedup data set (3 \
         repetitions). object_store 0.12 LocalFileSystem; std::fs writes a temporary file and \
         renames it. Took {:.0} s.\n\n{}",
        machine(),
        cfg.reps,
        if cfg.quick { " (quick mode)" } else { "" },
        cfg.small_ops,
        cfg.large_bytes >> 20,
        cfg.versions,
        started.elapsed().as_secs_f64(),
        table(&cfg, &figures)
    );
    println!("{text}");
    if cfg.write {
        write_readme(&text);
    }
    Ok(())
}
