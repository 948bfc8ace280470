//! nimbus's storage engine against fjall 3 and redb 4 on the same
//! workloads, in one process, engines alternating, median of the
//! repetitions; prints a Markdown table on stdout (progress on stderr).
//!
//! Run it with `benches/peers/run` (which writes the table into
//! `benches/README.md`); `PEERS_QUICK=1` for a quick development run.
//! Every size is an environment variable, see [`Config::from_env`].

mod data;
mod raw;
mod report;
mod stats;
mod stores;

use std::path::{Path, PathBuf};
use std::time::Instant;

use data::{KEY_BYTES, Key, VALUE_BYTES, Value, key, value};
use stats::{Latencies, Samples};
use stores::{Kind, Store};

/// Every error ends the run: a benchmark that cannot do its work must not
/// print a figure.
pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The run's sizes.
#[derive(Debug, Clone)]
pub struct Config {
    /// Quick development mode (smaller defaults).
    pub quick: bool,
    /// Repetitions of every workload on every engine.
    pub reps: usize,
    /// Workload 1: random unsynced writes, one per commit.
    pub writes: u64,
    /// Workloads 5–7: keys of the bulk-loaded read dataset.
    pub keys: u64,
    /// Keys per batch of the bulk load.
    pub load_batch: usize,
    /// Point reads per pass (uniform and Zipf each).
    pub reads: usize,
    /// Range scans per pass.
    pub scans: usize,
    /// Pairs per range scan.
    pub scan_len: usize,
    /// Workload 2a: synced commits of one write.
    pub sync_commits: usize,
    /// Workload 2b: synced commits of 100 writes.
    pub batch_commits: usize,
    /// Writes per commit in workload 2b.
    pub batch_size: usize,
    /// Workload 3: synced commits per thread.
    pub conc_commits: usize,
    /// Where the engines' temporary directories are made.
    pub dir: PathBuf,
    /// The phases to run (`raw`, `sync`, `writes`, `dataset`); all by
    /// default. For profiling one workload.
    pub phases: Vec<String>,
    /// The engines to run; all by default.
    pub engines: Vec<Kind>,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(s) => s
            .replace('_', "")
            .parse()
            .map_err(|_| format!("{name}={s}: not a number").into()),
        Err(_) => Ok(default),
    }
}

impl Config {
    /// Reads `PEERS_QUICK`, `PEERS_REPS`, `PEERS_WRITES`, `PEERS_KEYS`,
    /// `PEERS_LOAD_BATCH`, `PEERS_READS`, `PEERS_SCANS`,
    /// `PEERS_SYNC_COMMITS`, `PEERS_BATCH_COMMITS`, `PEERS_CONC_COMMITS`
    /// and `PEERS_DIR` (default: the system temporary directory); for
    /// profiling, `PEERS_PHASES` (comma-separated subset of
    /// `raw,sync,writes,dataset`) and `PEERS_ENGINES` (subset of
    /// `nimbus,fjall,redb`).
    pub fn from_env() -> Result<Self> {
        let quick = std::env::var("PEERS_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let q = |full: u64, quick_value: u64| if quick { quick_value } else { full };
        Ok(Self {
            quick,
            reps: env_or("PEERS_REPS", q(5, 1) as usize)?,
            writes: env_or("PEERS_WRITES", q(1_000_000, 50_000))?,
            keys: env_or("PEERS_KEYS", q(3_000_000, 200_000))?,
            load_batch: env_or("PEERS_LOAD_BATCH", 1000)?,
            reads: env_or("PEERS_READS", q(500_000, 50_000) as usize)?,
            scans: env_or("PEERS_SCANS", q(200_000, 20_000) as usize)?,
            scan_len: 10,
            sync_commits: env_or("PEERS_SYNC_COMMITS", q(2000, 200) as usize)?,
            batch_commits: env_or("PEERS_BATCH_COMMITS", q(500, 50) as usize)?,
            batch_size: 100,
            conc_commits: env_or("PEERS_CONC_COMMITS", q(1000, 100) as usize)?,
            dir: std::env::var_os("PEERS_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir),
            phases: list_env("PEERS_PHASES", "raw,sync,writes,dataset"),
            engines: list_env("PEERS_ENGINES", "nimbus,fjall,redb")
                .iter()
                .map(|name| {
                    ENGINES
                        .into_iter()
                        .find(|k| k.name() == name)
                        .ok_or_else(|| format!("PEERS_ENGINES: unknown engine {name}"))
                })
                .collect::<std::result::Result<_, _>>()?,
        })
    }

    fn runs(&self, phase: &str) -> bool {
        self.phases.iter().any(|p| p == phase)
    }
}

fn list_env(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

const ENGINES: [Kind; 3] = [Kind::Nimbus, Kind::Fjall, Kind::Redb];

fn main() {
    if let Err(e) = run() {
        eprintln!("peers: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let cfg = Config::from_env()?;
    std::fs::create_dir_all(&cfg.dir)?;
    eprintln!("peers: {cfg:?}");
    let started = Instant::now();

    let sorted = data::sorted_keys(cfg.keys);
    let uniform = data::uniform_indexes(cfg.keys, cfg.reads, 1);
    let zipf = data::zipf_indexes(cfg.keys, 0.99, cfg.reads, 2);
    let scan_starts = data::uniform_indexes(cfg.keys, cfg.scans, 3);
    let warm = data::uniform_indexes(cfg.keys, (cfg.reads / 5).max(1), 4);
    let reads = ReadSet {
        keys: &sorted,
        uniform: &uniform,
        zipf: &zipf,
        scan_starts: &scan_starts,
        warm: &warm,
    };

    let mut samples = Samples::default();
    for rep in 0..cfg.reps {
        eprintln!("peers: repetition {}/{}", rep + 1, cfg.reps);
        // The sync phase alternates the raw floor with the engines.
        let mut order: Vec<Option<Kind>> = Vec::new();
        if cfg.runs("raw") {
            order.push(None);
        }
        if cfg.runs("sync") {
            order.extend(cfg.engines.iter().copied().map(Some));
        }
        let n = order.len().max(1);
        order.rotate_left(rep % n);
        for entry in order {
            match entry {
                None => raw_phase(&cfg, &mut samples)?,
                Some(kind) => sync_phase(kind, &cfg, &mut samples)?,
            }
        }
        for kind in rotated(&cfg.engines, rep) {
            if cfg.runs("writes") {
                write_phase(kind, &cfg, &mut samples)?;
            }
        }
        for kind in rotated(&cfg.engines, rep) {
            if cfg.runs("dataset") {
                dataset_phase(kind, &cfg, &reads, &mut samples)?;
            }
        }
        eprintln!("peers: {:.0} s so far", started.elapsed().as_secs_f64());
    }

    let machine = report::Machine::probe(&cfg.dir);
    print!(
        "{}",
        report::markdown(&cfg, &samples, &machine, started.elapsed())
    );
    Ok(())
}

/// The engines, rotated by `rep` so each goes first in turn.
fn rotated(engines: &[Kind], rep: usize) -> Vec<Kind> {
    let mut order = engines.to_vec();
    order.rotate_left(rep % engines.len().max(1));
    order
}

fn fresh_dir(cfg: &Config, kind: &str) -> Result<tempfile::TempDir> {
    Ok(tempfile::Builder::new()
        .prefix(&format!("peers-{kind}-"))
        .tempdir_in(&cfg.dir)?)
}

fn pair<'a>(k: &'a Key, v: &'a Value) -> (&'a [u8], &'a [u8]) {
    (&k[..], &v[..])
}

/// Workload 4: the raw fsync floor.
fn raw_phase(cfg: &Config, samples: &mut Samples) -> Result<()> {
    let dir = fresh_dir(cfg, "raw")?;
    let (lat, ops) = raw::append(dir.path(), cfg.sync_commits)?;
    let append_p50 = lat.quantile_us(0.5);
    samples.add_latencies("raw_append", "raw", &lat);
    samples.add("raw_append_ops", "raw", ops);

    let blocks = 1024; // 4 MiB per region
    let file = raw::prewritten(dir.path(), "raw-overwrite", 2 * blocks * raw::BLOCK)?;
    let (lat, ops1) = raw::overwrite(&file, 0, blocks, cfg.sync_commits)?;
    let overwrite_p50 = lat.quantile_us(0.5);
    samples.add_latencies("raw_overwrite", "raw", &lat);
    samples.add("raw_overwrite_ops", "raw", ops1);
    let ops2 = raw::overwrite_two_threads(&file, blocks, cfg.conc_commits)?;
    samples.add("raw_overwrite2_ops", "raw", ops2);
    samples.add("raw_scaling", "raw", ops2 / ops1);
    eprintln!(
        "  raw: append p50 {append_p50:.0} µs, overwrite p50 {overwrite_p50:.0} µs, 1T {ops1:.0}/s, 2T {ops2:.0}/s"
    );
    Ok(())
}

/// Workloads 2 and 3: synced commits, latency and throughput.
fn sync_phase(kind: Kind, cfg: &Config, samples: &mut Samples) -> Result<()> {
    let name = kind.name();
    let dir = fresh_dir(cfg, name)?;
    let store = stores::open(kind, dir.path(), true)?;
    let mut next = 0u64;

    // 2a: one write per commit.
    let mut lat = Latencies::new();
    let start = Instant::now();
    for _ in 0..cfg.sync_commits {
        let (k, v) = (key(next), value(next));
        next += 1;
        let t = Instant::now();
        store.commit(&[pair(&k, &v)], true)?;
        lat.record(t.elapsed());
    }
    let cps1 = cfg.sync_commits as f64 / start.elapsed().as_secs_f64();
    let p50 = lat.quantile_us(0.5);
    samples.add_latencies("sync1", name, &lat);
    samples.add("sync1_cps", name, cps1);

    // 2b: 100 writes per commit.
    let mut lat = Latencies::new();
    let mut elapsed = 0.0;
    for _ in 0..cfg.batch_commits {
        let owned: Vec<(Key, Value)> = (next..next + cfg.batch_size as u64)
            .map(|i| (key(i), value(i)))
            .collect();
        next += cfg.batch_size as u64;
        let pairs: Vec<(&[u8], &[u8])> = owned.iter().map(|(k, v)| pair(k, v)).collect();
        let t = Instant::now();
        store.commit(&pairs, true)?;
        let d = t.elapsed();
        elapsed += d.as_secs_f64();
        lat.record(d);
    }
    let cps100 = cfg.batch_commits as f64 / elapsed;
    samples.add_latencies("sync100", name, &lat);
    samples.add("sync100_cps", name, cps100);

    // 3: one committer, then two at once.
    let one = committers(&*store, 1, cfg.conc_commits, next)?;
    next += cfg.conc_commits as u64;
    let two = committers(&*store, 2, cfg.conc_commits, next)?;
    samples.add("conc1_cps", name, one);
    samples.add("conc2_cps", name, two);
    samples.add("conc_scaling", name, two / one);
    eprintln!(
        "  {name}: sync 1 write p50 {p50:.0} µs ({cps1:.0}/s), 100 writes {cps100:.0}/s, 1T {one:.0}/s, 2T {two:.0}/s"
    );
    store.close()?;
    Ok(())
}

/// `threads` threads each doing `commits` synced one-write commits;
/// returns the combined commits per second.
fn committers(store: &dyn Store, threads: usize, commits: usize, base: u64) -> Result<f64> {
    let start = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || -> Result<()> {
                    let first = base + (t * commits) as u64;
                    for i in first..first + commits as u64 {
                        let (k, v) = (key(i), value(i));
                        store.commit(&[pair(&k, &v)], true)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for handle in handles {
            match handle.join() {
                Ok(result) => result?,
                Err(_) => return Err("committer thread panicked".into()),
            }
        }
        Ok(())
    })?;
    Ok((threads * commits) as f64 / start.elapsed().as_secs_f64())
}

/// Workload 1: random unsynced writes, one per commit, then one sync.
fn write_phase(kind: Kind, cfg: &Config, samples: &mut Samples) -> Result<()> {
    let name = kind.name();
    let dir = fresh_dir(cfg, name)?;
    let store = stores::open(kind, dir.path(), true)?;
    let start = Instant::now();
    for i in 0..cfg.writes {
        let (k, v) = (key(i), value(i));
        store.commit(&[pair(&k, &v)], false)?;
    }
    store.sync()?;
    let ops = cfg.writes as f64 / start.elapsed().as_secs_f64();
    samples.add("writes_ops", name, ops);
    eprintln!("  {name}: random writes {ops:.0}/s; {}", store.describe());
    store.close()?;
    Ok(())
}

/// The dataset and the read sequences (indexes into `keys`).
struct ReadSet<'a> {
    keys: &'a [Key],
    uniform: &'a [u32],
    zipf: &'a [u32],
    scan_starts: &'a [u32],
    warm: &'a [u32],
}

/// Workloads 7, 5 and 6: bulk load, settle, point reads and scans.
fn dataset_phase(
    kind: Kind,
    cfg: &Config,
    reads: &ReadSet<'_>,
    samples: &mut Samples,
) -> Result<()> {
    let name = kind.name();
    let dir = fresh_dir(cfg, name)?;
    let store = stores::open(kind, dir.path(), true)?;

    let start = Instant::now();
    let mut values: Vec<Value> = Vec::with_capacity(cfg.load_batch);
    let mut index = 0u64;
    for chunk in reads.keys.chunks(cfg.load_batch) {
        values.clear();
        values.extend((index..index + chunk.len() as u64).map(value));
        index += chunk.len() as u64;
        let pairs: Vec<(&[u8], &[u8])> =
            chunk.iter().zip(&values).map(|(k, v)| pair(k, v)).collect();
        store.commit(&pairs, false)?;
    }
    store.sync()?;
    let load = cfg.keys as f64 / start.elapsed().as_secs_f64();
    samples.add("load_kps", name, load);

    let start = Instant::now();
    store.settle()?;
    let settle = start.elapsed().as_secs_f64();
    samples.add("settle_s", name, settle);
    eprintln!(
        "  {name}: bulk load {load:.0} keys/s, settle {settle:.1} s; {}",
        store.describe()
    );

    read_passes(&*store, name, reads, samples)?;
    if kind == Kind::Nimbus {
        // The same files read with pread and the block cache.
        store.close()?;
        let store = stores::open(kind, dir.path(), false)?;
        read_passes(&*store, "nimbus-pread", reads, samples)?;
        store.close()?;
    } else {
        store.close()?;
    }
    Ok(())
}

fn read_passes(
    store: &dyn Store,
    name: &str,
    reads: &ReadSet<'_>,
    samples: &mut Samples,
) -> Result<()> {
    let mut reader = store.reader()?;
    get_pass(&mut *reader, reads.keys, reads.warm)?;
    let (rps_u, lat) = get_pass(&mut *reader, reads.keys, reads.uniform)?;
    samples.add("get_uniform_rps", name, rps_u);
    samples.add_latencies("get_uniform", name, &lat);
    let (rps_z, lat) = get_pass(&mut *reader, reads.keys, reads.zipf)?;
    samples.add("get_zipf_rps", name, rps_z);
    samples.add_latencies("get_zipf", name, &lat);

    let start = Instant::now();
    let mut bytes = 0usize;
    for &i in reads.scan_starts {
        let got = reader.scan(&reads.keys[i as usize], 10)?;
        if got == 0 {
            return Err(format!("{name}: empty scan").into());
        }
        bytes += got;
    }
    let sps = reads.scan_starts.len() as f64 / start.elapsed().as_secs_f64();
    std::hint::black_box(bytes);
    samples.add("scan_sps", name, sps);
    eprintln!("  {name}: uniform {rps_u:.0}/s, zipf {rps_z:.0}/s, scans {sps:.0}/s");
    Ok(())
}

/// Point reads of `keys[i]` for every `i` in `indexes`, each of which must
/// hit; returns reads per second and the latencies.
fn get_pass(
    reader: &mut dyn stores::Reader,
    keys: &[Key],
    indexes: &[u32],
) -> Result<(f64, Latencies)> {
    let mut lat = Latencies::new();
    let start = Instant::now();
    for &i in indexes {
        let t = Instant::now();
        let got = reader.get(&keys[i as usize])?;
        lat.record(t.elapsed());
        if got != Some(VALUE_BYTES) {
            return Err(format!("key #{i} read back {got:?}").into());
        }
    }
    let rps = indexes.len() as f64 / start.elapsed().as_secs_f64();
    Ok((rps, lat))
}

/// Bytes of one pair of the dataset (key + value, no overhead).
pub const PAIR_BYTES: usize = KEY_BYTES + VALUE_BYTES;

/// The directory's mount: (device, file system type), from
/// `/proc/self/mounts` (longest matching mount point).
pub fn mount_of(dir: &Path) -> Option<(String, String)> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (dev, point, fs) = (f.next()?, f.next()?, f.next()?);
            dir.starts_with(point)
                .then(|| (point.len(), dev.to_owned(), fs.to_owned()))
        })
        .max_by_key(|(len, _, _)| *len)
        .map(|(_, dev, fs)| (dev, fs))
}
