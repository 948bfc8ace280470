//! Latency histograms and the per-repetition samples behind each figure.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Latencies in nanoseconds, HdrHistogram with 3 significant digits.
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    /// An empty histogram from 1 ns to 100 s.
    pub fn new() -> Self {
        match Histogram::new_with_bounds(1, 100_000_000_000, 3) {
            Ok(h) => Self(h),
            Err(e) => panic!("histogram bounds: {e}"),
        }
    }

    /// Records one operation.
    pub fn record(&mut self, elapsed: Duration) {
        let ns = (elapsed.as_nanos() as u64).clamp(1, 100_000_000_000);
        self.0.saturating_record(ns);
    }

    /// The `q` quantile in microseconds.
    pub fn quantile_us(&self, q: f64) -> f64 {
        self.0.value_at_quantile(q) as f64 / 1000.0
    }
}

/// Every repetition's value of every (metric, engine) pair.
#[derive(Default)]
pub struct Samples(BTreeMap<(String, String), Vec<f64>>);

impl Samples {
    /// Adds one repetition's `value` of `metric` for `engine`.
    pub fn add(&mut self, metric: &str, engine: &str, value: f64) {
        self.0
            .entry((metric.to_owned(), engine.to_owned()))
            .or_default()
            .push(value);
    }

    /// Adds p50 and p99 (µs) under `metric_p50` and `metric_p99`.
    pub fn add_latencies(&mut self, metric: &str, engine: &str, lat: &Latencies) {
        self.add(&format!("{metric}_p50"), engine, lat.quantile_us(0.50));
        self.add(&format!("{metric}_p99"), engine, lat.quantile_us(0.99));
    }

    /// The median over repetitions, if any were recorded.
    pub fn median(&self, metric: &str, engine: &str) -> Option<f64> {
        let values = self.0.get(&(metric.to_owned(), engine.to_owned()))?;
        median(values)
    }
}

/// The median of `values` (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}
