//! Time a bench loop spends three ways: wall clock, CPU time of the calling
//! thread (the request path itself, immune to being descheduled on a
//! loaded machine) and CPU time of the whole process (background flushes
//! and compactions included). Linux's `schedstat` files give CPU time in
//! nanoseconds; elsewhere the CPU figures are `None`.

use std::time::{Duration, Instant};

/// One reading of the three clocks.
#[derive(Debug, Clone, Copy)]
pub struct Clocks {
    wall: Instant,
    thread_cpu: Option<u64>,
    process_cpu: Option<u64>,
}

/// What a span between two readings cost.
#[derive(Debug, Clone, Copy)]
pub struct Spent {
    pub wall: Duration,
    pub thread_cpu: Option<Duration>,
    pub process_cpu: Option<Duration>,
}

/// The first field of a `schedstat` file: nanoseconds on a CPU.
fn schedstat_nanos(path: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn process_nanos() -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path().join("schedstat");
        total += schedstat_nanos(path.to_str()?).unwrap_or(0);
    }
    Some(total)
}

impl Clocks {
    /// Reads the clocks now.
    pub fn now() -> Self {
        Self {
            thread_cpu: schedstat_nanos("/proc/thread-self/schedstat"),
            process_cpu: process_nanos(),
            wall: Instant::now(),
        }
    }

    /// What was spent since `self`.
    pub fn spent(&self) -> Spent {
        let now = Self::now();
        let delta =
            |a: Option<u64>, b: Option<u64>| Some(Duration::from_nanos(b?.saturating_sub(a?)));
        Spent {
            wall: now.wall - self.wall,
            thread_cpu: delta(self.thread_cpu, now.thread_cpu),
            process_cpu: delta(self.process_cpu, now.process_cpu),
        }
    }
}

/// The median of `values` (sorted in place); `NaN` when empty.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// How many alternating repetitions the overhead benches run: 5, or
/// `NIMBUS_BENCH_REPETITIONS` (more give steadier medians on a loaded
/// machine).
pub fn repetitions() -> usize {
    std::env::var("NIMBUS_BENCH_REPETITIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(5)
}
