//! A token bucket of capacity units: how provisioned throughput is
//! enforced per table, per partition and per global index.
//!
//! Units accrue at `rate` per second up to `capacity` (300 s of the rate
//! for a table: DynamoDB's burst capacity; one second for a partition's
//! hard ceiling). Time is passed in by the caller (nanoseconds of the
//! database's clock), so tests drive it with a manual clock. A clock that
//! steps backwards adds nothing rather than draining the bucket.

/// Seconds of unused capacity a table retains as burst credit, as DynamoDB
/// does ("up to 300 seconds").
pub const BURST_SECONDS: f64 = 300.0;

/// Units per second, with a bounded balance of unused units.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TokenBucket {
    rate: f64,
    capacity: f64,
    balance: f64,
    updated_nanos: u64,
}

impl TokenBucket {
    /// A bucket filling at `rate` units/s up to `capacity`, holding one
    /// second of its rate (at most `capacity`) at `now_nanos`: a new table
    /// can serve its provisioned rate at once, but has no burst credit yet.
    pub(crate) fn new(rate: f64, capacity: f64, now_nanos: u64) -> Self {
        Self {
            rate,
            capacity,
            balance: rate.min(capacity),
            updated_nanos: now_nanos,
        }
    }

    fn refill(&mut self, now_nanos: u64) {
        let elapsed = now_nanos.saturating_sub(self.updated_nanos) as f64 / 1e9;
        self.balance = (self.balance + elapsed * self.rate).min(self.capacity);
        self.updated_nanos = self.updated_nanos.max(now_nanos);
    }

    /// Whether `units` may be spent now: the balance covers them, or the
    /// bucket is full (so a request larger than the whole bucket is not
    /// refused forever; it leaves the balance negative instead).
    pub(crate) fn allows(&mut self, units: f64, now_nanos: u64) -> bool {
        self.refill(now_nanos);
        self.balance >= units || self.balance >= self.capacity
    }

    /// Spends `units` (the balance may go negative: reads are charged
    /// after they are served, and later requests wait for the debt).
    pub(crate) fn spend(&mut self, units: f64, now_nanos: u64) {
        self.refill(now_nanos);
        self.balance -= units;
    }

    /// The units that may be spent now.
    pub(crate) fn balance(&mut self, now_nanos: u64) -> f64 {
        self.refill(now_nanos);
        self.balance
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn a_bucket_starts_with_one_second_and_banks_up_to_its_capacity() {
        let mut bucket = TokenBucket::new(5.0, 5.0 * BURST_SECONDS, 0);
        assert!(bucket.allows(5.0, 0));
        assert!(!bucket.allows(5.5, 0));
        bucket.spend(5.0, 0);
        assert!(!bucket.allows(1.0, 0));
        assert!(bucket.allows(1.0, SECOND / 5));
        // Ten idle minutes bank only 300 s of the rate.
        assert_eq!(bucket.balance(600 * SECOND), 1500.0);
    }

    #[test]
    fn a_full_bucket_admits_a_request_larger_than_itself_once() {
        let mut bucket = TokenBucket::new(2.0, 2.0, 0);
        assert!(bucket.allows(10.0, 0));
        bucket.spend(10.0, 0);
        assert_eq!(bucket.balance(0), -8.0);
        assert!(!bucket.allows(1.0, 4 * SECOND));
        assert!(bucket.allows(1.0, 5 * SECOND));
    }

    #[test]
    fn a_clock_stepping_back_adds_nothing() {
        let mut bucket = TokenBucket::new(1.0, 10.0, 10 * SECOND);
        bucket.spend(1.0, 10 * SECOND);
        assert_eq!(bucket.balance(5 * SECOND), 0.0);
        assert_eq!(bucket.balance(11 * SECOND), 1.0);
    }
}
