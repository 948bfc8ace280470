//! Single-flight loading: while one caller runs the loader for a key, other
//! callers missing on the same key wait for its outcome instead of loading
//! again.
//!
//! A [`Flight`] is registered in the key's shard (under the shard's write
//! lock) by the caller that becomes the loader, and removed by it when it
//! lands, or by its unwind guard if the loader panics; then the outcome is
//! published and every waiter woken. Lock order: shard, then flight; a
//! waiter holds no shard lock while it waits.
//!
//! A write to the key (`insert*`, `remove`, `invalidate_all`) while the
//! load runs marks the flight stale: the loaded value is still returned to
//! the callers but not cached, so a load never overwrites a newer write.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::sync::{AtomicBool, Condvar, Mutex};

/// A loader error, type-erased so that waiters with the same error type can
/// take a clone of it.
pub(crate) type SharedError = Arc<dyn Any + Send + Sync>;

/// Where a load stands.
#[derive(Debug)]
pub(crate) enum Outcome<V> {
    /// The loader is running.
    Loading,
    /// The loader returned a value, or `None` for "absent".
    Loaded(Option<V>),
    /// The loader returned an error (not cached).
    Failed(SharedError),
    /// The loader panicked; waiters retry.
    Abandoned,
}

impl<V: Clone> Clone for Outcome<V> {
    fn clone(&self) -> Self {
        match self {
            Self::Loading => Self::Loading,
            Self::Loaded(value) => Self::Loaded(value.clone()),
            Self::Failed(error) => Self::Failed(Arc::clone(error)),
            Self::Abandoned => Self::Abandoned,
        }
    }
}

/// One load in flight.
#[derive(Debug)]
pub(crate) struct Flight<V> {
    outcome: Mutex<Outcome<V>>,
    landed: Condvar,
    stale: AtomicBool,
}

impl<V: Clone> Flight<V> {
    /// A load that has just started.
    pub(crate) fn new() -> Self {
        Self {
            outcome: Mutex::new(Outcome::Loading),
            landed: Condvar::new(),
            stale: AtomicBool::new(false),
        }
    }

    /// Marks the load stale: its result must not be cached. Called under
    /// the shard's write lock.
    pub(crate) fn mark_stale(&self) {
        self.stale.store(true, Ordering::Release);
    }

    /// Whether a write overtook the load. Read under the shard's write lock.
    pub(crate) fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Acquire)
    }

    /// Publishes the outcome and wakes every waiter.
    pub(crate) fn land(&self, outcome: Outcome<V>) {
        *self.outcome.lock() = outcome;
        self.landed.notify_all();
    }

    /// Waits until the load lands and returns its outcome (never
    /// [`Outcome::Loading`]).
    pub(crate) fn wait(&self) -> Outcome<V> {
        let mut outcome = self.outcome.lock();
        while matches!(*outcome, Outcome::Loading) {
            outcome = self.landed.wait(outcome);
        }
        outcome.clone()
    }
}
