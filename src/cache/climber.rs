//! The hill climber that sizes the probation queue (Caffeine's adaptive
//! window, "Adaptive Software Cache Management", Middleware '18).
//!
//! Every sample period (ten times the resident entry count, in lookups) it
//! compares the hit ratio with the previous period's: if it improved, it
//! steps the probation share further the same way, else it turns back. The
//! step decays so the share settles, and jumps back to full size when the
//! hit ratio moves a lot (the workload changed). Recency-heavy traces grow
//! the probation queue (more LRU-like); frequency-heavy and looping traces
//! shrink it (more TinyLFU-like).

/// The smallest probation share, in thousandths.
pub(crate) const SMALL_PERMILLE_MIN: u32 = 10;
/// The largest probation share, in thousandths.
pub(crate) const SMALL_PERMILLE_MAX: u32 = 800;
/// The starting probation share (Caffeine's 1 %), in thousandths; S3-FIFO's
/// 10 % start lost 2 to 3 pp on the loop pattern and P3 in benches/peers.
pub(crate) const SMALL_PERMILLE_START: u32 = 10;

/// A full step, in thousandths of the cache (Caffeine's 6.25 % overshot
/// on the small traces of benches/peers; 2 % did best of 2, 6.25 and 12 %).
const STEP_PERMILLE: f64 = 20.0;
/// Each step is this fraction of the previous one.
const STEP_DECAY: f64 = 0.98;
/// A hit-ratio change this large restarts with full steps.
const RESTART_THRESHOLD: f64 = 0.05;
/// The shortest sample period, in lookups.
const SAMPLE_LOOKUPS_MIN: u64 = 1_000;

/// The climber's memory between samples.
#[derive(Debug)]
pub(crate) struct Climber {
    small_permille: f64,
    step: f64,
    previous_ratio: f64,
    sample_hits: u64,
    sample_lookups: u64,
}

impl Default for Climber {
    fn default() -> Self {
        Self {
            small_permille: f64::from(SMALL_PERMILLE_START),
            step: STEP_PERMILLE,
            previous_ratio: 0.0,
            sample_hits: 0,
            sample_lookups: 0,
        }
    }
}

impl Climber {
    /// Offers the cache's cumulative counters; returns a new probation
    /// share (thousandths) when a sample period has ended.
    pub(crate) fn sample(&mut self, hits: u64, lookups: u64, entries: u64) -> Option<u32> {
        let period = (10 * entries).max(SAMPLE_LOOKUPS_MIN);
        let lookups_delta = lookups.saturating_sub(self.sample_lookups);
        if lookups_delta < period {
            return None;
        }
        let hits_delta = hits.saturating_sub(self.sample_hits);
        self.sample_hits = hits;
        self.sample_lookups = lookups;
        let ratio = hits_delta as f64 / lookups_delta as f64;
        let change = ratio - self.previous_ratio;
        self.previous_ratio = ratio;
        let amount = if change >= 0.0 { self.step } else { -self.step };
        self.step = if change.abs() >= RESTART_THRESHOLD {
            STEP_PERMILLE.copysign(amount)
        } else {
            STEP_DECAY * amount
        };
        self.small_permille = (self.small_permille + amount)
            .clamp(f64::from(SMALL_PERMILLE_MIN), f64::from(SMALL_PERMILLE_MAX));
        Some(self.small_permille.round() as u32)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn keeps_climbing_while_the_hit_ratio_improves_and_turns_when_it_drops() {
        let mut climber = Climber::default();
        let (mut hits, mut lookups) = (0, 0);
        let mut shares = Vec::new();
        for ratio in [0.10, 0.12, 0.14, 0.13] {
            hits += (ratio * 1000.0) as u64;
            lookups += 1000;
            shares.extend(climber.sample(hits, lookups, 10));
        }
        assert_eq!(shares.len(), 4);
        assert!(shares[0] > SMALL_PERMILLE_START);
        assert!(shares[1] > shares[0] && shares[2] > shares[1], "{shares:?}");
        assert!(
            shares[3] < shares[2],
            "a worse period turns back: {shares:?}"
        );
    }

    #[test]
    fn waits_for_a_full_sample_period() {
        let mut climber = Climber::default();
        assert_eq!(climber.sample(10, 500, 10), None);
        assert_eq!(
            climber.sample(10, 4_000, 1_000),
            None,
            "period is 10 × entries"
        );
        assert!(climber.sample(10, 10_000, 1_000).is_some());
    }
}
