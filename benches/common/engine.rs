//! Where a write bench's bytes and background time go: the engine's
//! counters (bytes written by users, flushed, compacted; slowdowns and
//! stops) and the CPU time of the process's threads by name (the flush and
//! compaction thread is `nimbus-compacti`, Linux truncating names to 15
//! bytes), read before and after a measured span and printed per put, so a
//! criterion group's latency can be set against the background work it
//! caused.

use std::collections::BTreeMap;

use nimbus::Database;
use nimbus::storage::EngineStats;

/// One reading of the engine's counters, of CPU time per thread name and
/// of the calling thread's CPU time.
#[derive(Debug, Clone)]
pub struct Reading {
    stats: EngineStats,
    threads: BTreeMap<String, u64>,
    caller: u64,
}

/// Nanoseconds on a CPU of the calling thread (0 where unknown).
fn caller_nanos() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Nanoseconds on a CPU of each thread of this process, summed by name
/// (empty where `/proc` is not available).
fn thread_nanos() -> BTreeMap<String, u64> {
    let mut by_name = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by_name;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let nanos = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
        *by_name.entry(name.trim().to_owned()).or_insert(0) += nanos;
    }
    by_name
}

impl Reading {
    /// Reads `db`'s engine counters and the threads' CPU time now.
    pub fn now(db: &Database) -> Self {
        Self {
            stats: db.engine().stats(),
            threads: thread_nanos(),
            caller: caller_nanos(),
        }
    }

    /// Prints, per put, what happened since `self`: bytes written by the
    /// user, flushed and compacted (and the resulting write
    /// amplification), compactions and trivial moves, slowdowns and stops,
    /// the CPU µs of the calling (putting) thread, of the background
    /// thread and of the log's sync thread, and their sum — what a put
    /// costs the machine, whatever else runs on it — under `label`. Call
    /// it from the thread that read `self` and did the puts.
    pub fn report(&self, db: &Database, label: &str, puts: u64) {
        let now = Self::now(db);
        let (a, b) = (&self.stats, &now.stats);
        let puts_f = puts.max(1) as f64;
        let per_put = |x: u64, y: u64| y.saturating_sub(x) as f64 / puts_f;
        let written = b.write_bytes.saturating_sub(a.write_bytes);
        let flushed = b.flush_bytes.saturating_sub(a.flush_bytes);
        let compacted = b
            .compaction_write_bytes
            .saturating_sub(a.compaction_write_bytes);
        let amplification = if written == 0 {
            0.0
        } else {
            (flushed + compacted) as f64 / written as f64
        };
        let background_us = |name: &str| {
            let before = self.threads.get(name).copied().unwrap_or(0);
            let after = now.threads.get(name).copied().unwrap_or(0);
            after.saturating_sub(before) as f64 / 1e3 / puts_f
        };
        let caller_us = caller_nanos().saturating_sub(self.caller) as f64 / 1e3 / puts_f;
        let (background, sync) = (
            background_us("nimbus-compacti"),
            background_us("nimbus-wal-sync"),
        );
        let levels: Vec<String> = b
            .levels
            .iter()
            .map(|l| format!("{}/{:.0}M", l.files, l.bytes as f64 / (1u64 << 20) as f64))
            .collect();
        println!(
            "engine {label}: {puts} puts; per put: written {:.0} B, flushed {:.0} B, compacted {:.0} B \
             (write amplification {amplification:.2}); flushes {}, compactions {}, trivial moves {}; \
             slowdowns {} ({:.0} ms), stops {}; CPU us/put: putting thread {caller_us:.2}, \
             background {background:.2}, wal-sync {sync:.2}, total {:.2}; levels {}",
            per_put(a.write_bytes, b.write_bytes),
            per_put(a.flush_bytes, b.flush_bytes),
            per_put(a.compaction_write_bytes, b.compaction_write_bytes),
            b.flushes - a.flushes,
            b.compactions - a.compactions,
            b.trivial_moves - a.trivial_moves,
            b.write_slowdowns - a.write_slowdowns,
            (b.write_slowdown_us - a.write_slowdown_us) as f64 / 1e3,
            b.write_stops - a.write_stops,
            caller_us + background + sync,
            levels.join(" "),
        );
    }
}
