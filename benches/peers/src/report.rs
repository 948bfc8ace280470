//! The Markdown report: the ratio table, the physical floor, the machine
//! and the exact configuration.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::stats::Samples;
use crate::stores::{CACHE_BYTES, MEMORY_BUDGET_BYTES, MEMTABLE_BYTES};
use crate::{Config, PAIR_BYTES};

/// Which way a figure is better.
#[derive(Clone, Copy)]
enum Better {
    Higher,
    Lower,
}

/// How a figure is printed.
#[derive(Clone, Copy)]
enum Unit {
    PerSecond,
    Micros,
    Seconds,
    Times,
}

struct Row {
    label: &'static str,
    metric: &'static str,
    unit: Unit,
    better: Better,
    /// The engine key of the nimbus column (`nimbus` or `nimbus-pread`).
    nimbus: &'static str,
    /// Whether the row gets a ratio (not for informational rows).
    ratio: bool,
}

const fn row(label: &'static str, metric: &'static str, unit: Unit, better: Better) -> Row {
    Row {
        label,
        metric,
        unit,
        better,
        nimbus: "nimbus",
        ratio: true,
    }
}

const fn info(label: &'static str, metric: &'static str, unit: Unit) -> Row {
    Row {
        label,
        metric,
        unit,
        better: Better::Lower,
        nimbus: "nimbus",
        ratio: false,
    }
}

const fn pread(label: &'static str, metric: &'static str, unit: Unit, better: Better) -> Row {
    Row {
        label,
        metric,
        unit,
        better,
        nimbus: "nimbus-pread",
        ratio: true,
    }
}

use Better::{Higher, Lower};
use Unit::{Micros, PerSecond, Seconds, Times};

const ROWS: &[Row] = &[
    row(
        "1. random writes, 1 per commit, unsynced — ops/s",
        "writes_ops",
        PerSecond,
        Higher,
    ),
    row(
        "2a. sync commit of 1 write — p50",
        "sync1_p50",
        Micros,
        Lower,
    ),
    row(
        "2a. sync commit of 1 write — p99",
        "sync1_p99",
        Micros,
        Lower,
    ),
    row(
        "2a. sync commit of 1 write — commits/s",
        "sync1_cps",
        PerSecond,
        Higher,
    ),
    row(
        "2b. sync commit of 100 writes — p50",
        "sync100_p50",
        Micros,
        Lower,
    ),
    row(
        "2b. sync commit of 100 writes — p99",
        "sync100_p99",
        Micros,
        Lower,
    ),
    row(
        "2b. sync commit of 100 writes — commits/s",
        "sync100_cps",
        PerSecond,
        Higher,
    ),
    row(
        "3. sync commits of 1 write, 1 thread — commits/s",
        "conc1_cps",
        PerSecond,
        Higher,
    ),
    row(
        "3. sync commits of 1 write, 2 threads — commits/s",
        "conc2_cps",
        PerSecond,
        Higher,
    ),
    row("3. 2 threads / 1 thread", "conc_scaling", Times, Higher),
    row(
        "5. point reads, uniform — reads/s",
        "get_uniform_rps",
        PerSecond,
        Higher,
    ),
    row(
        "5. point reads, uniform — p50",
        "get_uniform_p50",
        Micros,
        Lower,
    ),
    row(
        "5. point reads, uniform — p99",
        "get_uniform_p99",
        Micros,
        Lower,
    ),
    row(
        "5. point reads, Zipf(0.99) — reads/s",
        "get_zipf_rps",
        PerSecond,
        Higher,
    ),
    row(
        "5. point reads, Zipf(0.99) — p50",
        "get_zipf_p50",
        Micros,
        Lower,
    ),
    row(
        "5. point reads, Zipf(0.99) — p99",
        "get_zipf_p99",
        Micros,
        Lower,
    ),
    row(
        "6. 10-item range scans — scans/s",
        "scan_sps",
        PerSecond,
        Higher,
    ),
    pread(
        "5. point reads, uniform — reads/s (nimbus `mmap: false`)",
        "get_uniform_rps",
        PerSecond,
        Higher,
    ),
    pread(
        "5. point reads, uniform — p50 (nimbus `mmap: false`)",
        "get_uniform_p50",
        Micros,
        Lower,
    ),
    pread(
        "5. point reads, uniform — p99 (nimbus `mmap: false`)",
        "get_uniform_p99",
        Micros,
        Lower,
    ),
    pread(
        "5. point reads, Zipf(0.99) — reads/s (nimbus `mmap: false`)",
        "get_zipf_rps",
        PerSecond,
        Higher,
    ),
    pread(
        "5. point reads, Zipf(0.99) — p50 (nimbus `mmap: false`)",
        "get_zipf_p50",
        Micros,
        Lower,
    ),
    pread(
        "5. point reads, Zipf(0.99) — p99 (nimbus `mmap: false`)",
        "get_zipf_p99",
        Micros,
        Lower,
    ),
    pread(
        "6. 10-item range scans — scans/s (nimbus `mmap: false`)",
        "scan_sps",
        PerSecond,
        Higher,
    ),
    row(
        "7. bulk load, sorted, 1,000 per batch, to durable — keys/s",
        "load_kps",
        PerSecond,
        Higher,
    ),
    info(
        "7. then flush + compact (informational) — seconds",
        "settle_s",
        Seconds,
    ),
];

const RAW_ROWS: &[(&str, &str, Unit)] = &[
    (
        "4a. append 4 KiB + fdatasync — p50",
        "raw_append_p50",
        Micros,
    ),
    (
        "4a. append 4 KiB + fdatasync — p99",
        "raw_append_p99",
        Micros,
    ),
    (
        "4a. append 4 KiB + fdatasync — writes/s",
        "raw_append_ops",
        PerSecond,
    ),
    (
        "4b. overwrite 4 KiB in place + fdatasync — p50",
        "raw_overwrite_p50",
        Micros,
    ),
    (
        "4b. overwrite 4 KiB in place + fdatasync — p99",
        "raw_overwrite_p99",
        Micros,
    ),
    (
        "4b. overwrite 4 KiB in place + fdatasync — writes/s",
        "raw_overwrite_ops",
        PerSecond,
    ),
    (
        "4c. 2 threads each doing 4b on their own region — writes/s",
        "raw_overwrite2_ops",
        PerSecond,
    ),
    (
        "4c. 2 threads / 1 thread (the device's concurrency ceiling)",
        "raw_scaling",
        Times,
    ),
];

fn fmt(value: Option<f64>, unit: Unit) -> String {
    let Some(v) = value else {
        return "—".to_owned();
    };
    match unit {
        Unit::PerSecond => format!("{}/s", thousands(v.round() as u64)),
        Unit::Micros if v >= 100.0 => format!("{v:.0} µs"),
        Unit::Micros => format!("{v:.1} µs"),
        Unit::Seconds => format!("{v:.2} s"),
        Unit::Times => format!("{v:.2}×"),
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What the report says about the machine.
pub struct Machine {
    nproc: usize,
    cpu: String,
    kernel: String,
    memory: String,
    dir: String,
    mount: String,
}

impl Machine {
    /// Reads `/proc` for the machine the run is on; `dir` is where the
    /// engines wrote.
    pub fn probe(dir: &Path) -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let memory = read("/proc/meminfo")
            .lines()
            .find_map(|l| {
                let kb: u64 = l
                    .strip_prefix("MemTotal:")?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()?;
                Some(format!("{:.1} GiB", kb as f64 / (1 << 20) as f64))
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let mount = crate::mount_of(dir)
            .map(|(dev, fs)| format!("{dev} ({fs})"))
            .unwrap_or_else(|| "unknown".to_owned());
        Self {
            nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            memory,
            dir: dir.display().to_string(),
            mount,
        }
    }
}

/// The whole report.
pub fn markdown(cfg: &Config, samples: &Samples, machine: &Machine, took: Duration) -> String {
    let mut out = String::new();
    let reps = cfg.reps;
    let _ = writeln!(
        out,
        "Median of {reps} repetitions, engines alternating (each repetition rotates which engine goes first), \
         each engine in a fresh directory. Ratio = nimbus / best peer: for rows marked *higher* a ratio above 1 \
         means nimbus is faster; for rows marked *lower* (latencies, seconds) a ratio below 1 means nimbus is faster.\n"
    );
    let _ = writeln!(
        out,
        "| workload | nimbus | fjall 3 | redb 4 | nimbus / best peer |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|");
    for r in ROWS {
        let nimbus = samples.median(r.metric, r.nimbus);
        let fjall = samples.median(r.metric, "fjall");
        let redb = samples.median(r.metric, "redb");
        let best = match r.better {
            Higher => max_opt(fjall, redb),
            Lower => min_opt(fjall, redb),
        };
        let ratio = match (nimbus, best) {
            _ if !r.ratio => "— (informational)".to_owned(),
            (Some(n), Some(b)) if b > 0.0 => format!(
                "{:.2} ({})",
                n / b,
                match r.better {
                    Higher => "higher is better",
                    Lower => "lower is better",
                }
            ),
            _ => "—".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            r.label,
            fmt(nimbus, r.unit),
            fmt(fjall, r.unit),
            fmt(redb, r.unit),
            ratio
        );
    }

    let _ = writeln!(out, "\nPhysical floor, same run, same disk:\n");
    let _ = writeln!(out, "| raw I/O | figure |");
    let _ = writeln!(out, "|---|---:|");
    for (label, metric, unit) in RAW_ROWS {
        let _ = writeln!(
            out,
            "| {label} | {} |",
            fmt(samples.median(metric, "raw"), *unit)
        );
    }
    let vs = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "—".to_owned(),
    };
    let sync_p50 = samples.median("sync1_p50", "nimbus");
    let _ = writeln!(
        out,
        "| nimbus sync commit of 1 write p50 / 4a p50 (target ≤ 1.2) | {} |",
        vs(sync_p50, samples.median("raw_append_p50", "raw"))
    );
    let _ = writeln!(
        out,
        "| nimbus sync commit of 1 write p50 / 4b p50 | {} |",
        vs(sync_p50, samples.median("raw_overwrite_p50", "raw"))
    );
    let _ = writeln!(
        out,
        "| nimbus 2-thread scaling (row 3, target ≥ 1.6) / device's (4c) | {} / {} |",
        fmt(samples.median("conc_scaling", "nimbus"), Times),
        fmt(samples.median("raw_scaling", "raw"), Times),
    );

    let dataset_bytes = cfg.keys as f64 * PAIR_BYTES as f64;
    let budget = MEMORY_BUDGET_BYTES as f64;
    let _ = writeln!(out, "\nSetup:\n");
    let _ = writeln!(
        out,
        "- Machine: {} cores (`nproc`), {}, kernel {}, {} RAM; {}.",
        machine.nproc,
        machine.cpu,
        machine.kernel,
        machine.memory,
        env!("PEERS_RUSTC_VERSION")
    );
    let _ = writeln!(
        out,
        "- Disk: every engine and the raw floor write under `{}`, on {}.",
        machine.dir, machine.mount
    );
    let _ = writeln!(
        out,
        "- Data: 16-byte keys (8 scattered bytes + a big-endian counter), 100-byte incompressible values, \
         the same bytes for every engine. Workload 1: {} random writes. Workloads 2–3: {} commits of 1 write, \
         {} of 100 writes, then {} commits per thread with 1 and 2 threads, in one fresh database per engine. \
         Workload 4: {} writes each (4c: {} per thread).",
        thousands(cfg.writes),
        thousands(cfg.sync_commits as u64),
        thousands(cfg.batch_commits as u64),
        thousands(cfg.conc_commits as u64),
        thousands(cfg.sync_commits as u64),
        thousands(cfg.conc_commits as u64),
    );
    let _ = writeln!(
        out,
        "- Read dataset (workloads 5–6 read what workload 7 loaded): {} keys = {:.0} MB of keys and values, \
         {:.1}× the {} MiB memory budget{}. {} point reads per pass after an untimed warm-up of {}; \
         Zipf ranks scattered over the key space; {} scans of 10 pairs from uniform random existing keys.",
        thousands(cfg.keys),
        dataset_bytes / 1e6,
        dataset_bytes / budget,
        MEMORY_BUDGET_BYTES >> 20,
        if dataset_bytes >= 3.0 * budget {
            ""
        } else {
            " — **below 3×: not a valid out-of-cache figure**"
        },
        thousands(cfg.reads as u64),
        thousands((cfg.reads / 5).max(1) as u64),
        thousands(cfg.scans as u64),
    );
    let _ = writeln!(
        out,
        "- Memory budget {} MiB per engine: nimbus `memtable_bytes_max` {} MiB + `block_cache_bytes` {} MiB; \
         fjall keyspace `max_memtable_size` {} MiB + `cache_size` {} MiB; redb `set_cache_size` {} MiB \
         (one cache for reads and dirty pages). Both LSMs may hold a few sealed memtables while they flush. \
         All three also read through the OS page cache, which is not limited and holds the whole dataset here: \
         nimbus by `mmap` (default) or, in the `mmap: false` rows, by `pread` + its block cache; fjall and redb by `pread`. \
         So the reads measure in-memory lookup paths beyond each engine's own cache, not disk reads.",
        MEMORY_BUDGET_BYTES >> 20,
        MEMTABLE_BYTES >> 20,
        CACHE_BYTES >> 20,
        MEMTABLE_BYTES >> 20,
        CACHE_BYTES >> 20,
        MEMORY_BUDGET_BYTES >> 20,
    );
    let _ = writeln!(
        out,
        "- Unsynced (workloads 1, 7): nimbus `Durability::Buffered` (acknowledged after write(2), background \
         fdatasync every 100 ms); fjall's default (`manual_journal_persist = false`: each commit is written to the OS, \
         never fsynced by the commit; single writes with `Keyspace::insert`, batches with `WriteBatch` + `PersistMode::Buffer`); \
         redb `Durability::None` (not persisted until a later `Immediate` commit). One final sync is inside the timing: \
         nimbus `Engine::sync`, fjall `Database::persist(SyncData)`, redb an empty `Durability::Immediate` commit."
    );
    let _ = writeln!(
        out,
        "- Synced (workloads 2, 3): nimbus `Durability::Sync` (fdatasync of the log, group commit); fjall \
         `WriteBatch` with `PersistMode::SyncData` (fdatasync); redb default `Durability::Immediate` (fdatasync \
         of the B-tree pages and header, its default 1-phase commit)."
    );
    let _ = writeln!(
        out,
        "- Before reading: nimbus `Engine::compact` (flush, then compact until no level is over its target); \
         fjall `rotate_memtable_and_wait` + `major_compact` (both `#[doc(hidden)]` but public); redb nothing (a B-tree). \
         nimbus is then closed and reopened with `mmap: false` for its second set of read rows. Every read must hit. \
         redb reads hold one read transaction per pass; nimbus and fjall take a fresh view per call."
    );
    let _ = writeln!(
        out,
        "- Regenerate: `benches/peers/run` (this run took {:.0} s{}).",
        took.as_secs_f64(),
        if cfg.quick { ", **quick mode**" } else { "" }
    );
    out
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn min_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
