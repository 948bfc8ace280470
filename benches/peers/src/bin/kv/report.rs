//! The Markdown table: medians of the repetitions, ratios, the issue's
//! targets, the machine line, and its place in benches/README.md.

use crate::data::warm_up_keys;
use crate::engines::{CONFLICTS, Sample, Samples};
use crate::{Config, Engine, SORT_KEYS, WORKLOADS, Workload};

pub(crate) fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[values.len() / 2])
}

/// Per-metric medians of the repetitions of one workload.
pub(crate) fn summarize(samples: &[Sample]) -> Option<Sample> {
    Some(Sample {
        p50_ns: median(samples.iter().map(|s| s.p50_ns).collect())?,
        p99_ns: median(samples.iter().map(|s| s.p99_ns).collect())?,
        ops_per_s: median(samples.iter().map(|s| s.ops_per_s).collect())?,
    })
}

pub(crate) fn micros(ns: f64) -> String {
    let us = ns / 1000.0;
    if us < 10.0 {
        format!("{us:.2} µs")
    } else if us < 100.0 {
        format!("{us:.1} µs")
    } else {
        format!("{us:.0} µs")
    }
}

pub(crate) fn rate(ops: f64) -> String {
    let ops = ops.round() as u64;
    let digits = ops.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out}/s")
}

pub(crate) fn check(ok: bool) -> &'static str {
    if ok { "✓" } else { "✗" }
}

/// The targets that apply to a row, with a verdict each.
pub(crate) fn targets(
    workload: Workload,
    threads: usize,
    nimbus: Sample,
    fjall: Option<Sample>,
) -> String {
    let mut parts = Vec::new();
    if threads == 1 && workload == Workload::Get {
        parts.push(format!("p50 ≤ 2 µs {}", check(nimbus.p50_ns <= 2000.0)));
    }
    if threads == 1 && workload == Workload::Put {
        parts.push(format!(
            "≥ 300,000/s {}",
            check(nimbus.ops_per_s >= 300_000.0)
        ));
    }
    if let Some(fjall) = fjall {
        let overhead = fjall.ops_per_s / nimbus.ops_per_s;
        parts.push(format!(
            "overhead {overhead:.2}× ≤ 1.5× {}",
            check(overhead <= 1.5)
        ));
    }
    if parts.is_empty() {
        "—".to_owned()
    } else {
        parts.join("; ")
    }
}

pub(crate) fn machine() -> String {
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
    format!("{cores} cores (`nproc`), {cpu}, Linux {kernel}")
}

pub(crate) fn now_utc() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

pub(crate) fn table(config: &Config, results: &[(usize, Engine, Samples)], seconds: f64) -> String {
    let mut out = format!(
        "Generated {} by `cargo run --release --manifest-path benches/peers/Cargo.toml --bin kv` \
         ({seconds:.0} s). Machine: {}.\n\n\
         Median of {} repetitions, engines alternating (each repetition rotates which goes \
         first), each run in a fresh directory. nimbus `Durability::Buffered` (acknowledged \
         after write(2), fdatasync every 100 ms in the background); fjall 3 with its default \
         journal (each write handed to the OS, never fsynced by the write). Both with 64 MiB \
         memtables and a 32 MiB block cache (nimbus's defaults; nimbus reads segments by \
         `mmap`). Overhead = fjall ops/s ÷ nimbus ops/s: the time per op of the item layer \
         over the raw engine storing the same bytes (target ≤ 1.5×).\n\n\
         | workload | threads | nimbus p50 | nimbus p99 | nimbus ops/s | fjall (same bytes) | \
         fjall p50 | fjall p99 | fjall ops/s | nimbus / fjall p50 | nimbus / fjall ops/s | \
         targets (1 thread: GetItem p50 ≤ 2 µs, PutItem ≥ 300k/s; overhead ≤ 1.5×) |\n\
         |---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|\n",
        now_utc(),
        machine(),
        config.reps
    );
    for workload in WORKLOADS {
        for &threads in &config.threads {
            let pick = |engine: Engine| {
                let samples: Vec<Sample> = results
                    .iter()
                    .filter(|(t, e, _)| *t == threads && *e == engine)
                    .filter_map(|(_, _, s)| s[workload.index()])
                    .collect();
                summarize(&samples)
            };
            let (Some(nimbus), fjall) = (pick(Engine::Nimbus), pick(Engine::Fjall)) else {
                continue;
            };
            let dash = || "—".to_owned();
            out.push_str(&format!(
                "| {} | {threads} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                workload.label(),
                micros(nimbus.p50_ns),
                micros(nimbus.p99_ns),
                rate(nimbus.ops_per_s),
                workload.peer().unwrap_or("—"),
                fjall.map_or_else(dash, |f| micros(f.p50_ns)),
                fjall.map_or_else(dash, |f| micros(f.p99_ns)),
                fjall.map_or_else(dash, |f| rate(f.ops_per_s)),
                fjall.map_or_else(dash, |f| format!("{:.2}×", nimbus.p50_ns / f.p50_ns)),
                fjall.map_or_else(dash, |f| format!("{:.2}×", nimbus.ops_per_s / f.ops_per_s)),
                targets(workload, threads, nimbus, fjall),
            ));
        }
    }
    out.push_str(&format!(
        "\nReference, the closest Rust peer (an embedded DynamoDB emulator on SQLite, as \
         reported by its authors, not measured here): GetItem p50 9–15 µs, about 52,000 \
         PutItem/s.\n\n\
         Data: {} items of 1 KB (DynamoDB size) in {} partitions of {SORT_KEYS}, string \
         partition key, number sort key, a counter `n` and an incompressible string payload \
         filling the item to exactly 1,024 bytes; fjall \
         stores `encode_item` of the same items. Per thread: PutItem loads the table \
         (shuffled; thread t of T writes partitions p % T = t), then both engines flush and \
         compact, scan the whole table and read {} random items untimed (a warm-up); {} GetItems of uniform random existing keys, {} Queries of random \
         partitions, {} Scan pages (with 2 threads each thread scans its own segment: \
         `segment`/`total_segments` for nimbus, that share of the token range for fjall), {} \
         UpdateItems and {} 4-put TransactWriteItems on random items of the thread's own \
         partitions. Each PutItem's item and GetItem's key (fjall: its bytes and key) is built just \
         before its op, outside the timing, as a caller builds what it sends (built long before, \
         it would be read and freed cold); the other requests' inputs are built before the \
         timed loop. Each op is timed \
         alone (HdrHistogram, 3 digits), ops/s is all threads' ops over the slowest thread's \
         time in its ops (its ops' times summed: descheduling counted, building inputs not). \
         TransactWriteItems cancelled with `TransactionConflict` only (two \
         transactions whose items share one of the 4,096 lock stripes, one waiting more than \
         50 ms) are retried inside the timed op, as a client would: {} over the whole run.\n",
        config.items,
        config.partitions(),
        warm_up_keys(config).len(),
        config.gets,
        config.queries,
        config.scan_pages,
        config.updates,
        config.transacts,
        CONFLICTS.load(std::sync::atomic::Ordering::Relaxed),
    ));
    out
}

pub(crate) fn write_readme(table: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let begin = "<!-- kv:begin -->";
    let end = "<!-- kv:end -->";
    let current = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".to_owned());
    let body = format!("{begin}\n{table}{end}");
    let updated = match (current.find(begin), current.find(end)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{body}{}", &current[..b], &current[e + end.len()..])
        }
        _ => format!(
            "{}\n\n## kv: items against raw fjall\n\n\
             `cargo run --release --manifest-path benches/peers/Cargo.toml --bin kv` regenerates \
             this section; `KV_QUICK=1` prints a smaller run without writing it.\n\n{body}\n",
            current.trim_end()
        ),
    };
    match std::fs::write(&path, updated) {
        Ok(()) => eprintln!("kv: table written to {}", path.display()),
        Err(e) => eprintln!("kv: cannot write {}: {e}", path.display()),
    }
}
