//! Item locks: a fixed table of mutex stripes indexed by a hash of the row
//! key. A single-item write holds its item's stripe from reading the old
//! item until its batch is applied, so a conditional check and the write
//! it guards are atomic (ARCHITECTURE.md, "Concurrency"); a transaction
//! takes its items' stripes in ascending order, so two transactions never
//! deadlock, and gives up with `TransactionConflict` when a stripe stays
//! held by another writer.
//!
//! A stripe is held across the commit (for `Sync` durability, the fsync):
//! the next writer of the same item must see this write before deciding
//! its own condition. Writers of other stripes are not held up, and group
//! commit still merges their batches into one fsync.

use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// The number of stripes: enough that unrelated items rarely share one.
const STRIPES: usize = 4096;

/// Seed of the stripe hash, distinct from the partition token's.
const STRIPE_SEED: u64 = 0x6e69_6d62_7573_6c6b;

/// The stripe table.
pub(crate) struct KeyLocks {
    stripes: Box<[Mutex<()>]>,
}

impl std::fmt::Debug for KeyLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLocks")
            .field("stripes", &self.stripes.len())
            .finish()
    }
}

/// The locks a transaction holds, released when dropped.
pub(crate) struct HeldLocks<'a> {
    _guards: Vec<MutexGuard<'a, ()>>,
}

impl KeyLocks {
    pub(crate) fn new() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// The stripe of a row key.
    pub(crate) fn stripe_of(&self, row_key: &[u8]) -> usize {
        (xxh3_64_with_seed(row_key, STRIPE_SEED) % STRIPES as u64) as usize
    }

    /// Locks one row key's stripe, waiting as long as it takes.
    pub(crate) fn lock(&self, row_key: &[u8]) -> MutexGuard<'_, ()> {
        self.stripes[self.stripe_of(row_key)].lock()
    }

    fn sorted_stripes<'k>(&self, row_keys: impl IntoIterator<Item = &'k [u8]>) -> Vec<usize> {
        let mut stripes: Vec<usize> = row_keys.into_iter().map(|k| self.stripe_of(k)).collect();
        stripes.sort_unstable();
        stripes.dedup();
        stripes
    }

    /// Locks the stripes of `row_keys` in ascending order, waiting as long
    /// as it takes (ordered acquisition cannot deadlock).
    pub(crate) fn lock_all<'k>(
        &self,
        row_keys: impl IntoIterator<Item = &'k [u8]>,
    ) -> HeldLocks<'_> {
        let guards = self
            .sorted_stripes(row_keys)
            .into_iter()
            .map(|stripe| self.stripes[stripe].lock())
            .collect();
        HeldLocks { _guards: guards }
    }

    /// Locks the stripes of `row_keys` in ascending order, waiting at most
    /// `patience` for each. A stripe that stayed held is a conflict:
    /// `Err(stripe)`.
    pub(crate) fn try_lock_all<'k>(
        &self,
        row_keys: impl IntoIterator<Item = &'k [u8]>,
        patience: Duration,
    ) -> Result<HeldLocks<'_>, usize> {
        let stripes = self.sorted_stripes(row_keys);
        let mut guards = Vec::with_capacity(stripes.len());
        for stripe in stripes {
            guards.push(self.stripes[stripe].try_lock_for(patience).ok_or(stripe)?);
        }
        Ok(HeldLocks { _guards: guards })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_stripe_makes_a_transaction_give_up_and_a_free_one_succeeds() {
        let locks = KeyLocks::new();
        let held = locks.lock(b"a");
        let conflict = locks.try_lock_all([&b"a"[..]], Duration::from_millis(1));
        assert_eq!(conflict.err(), Some(locks.stripe_of(b"a")));
        drop(held);
        let keys = [&b"a"[..], &b"b"[..], &b"a"[..]];
        let both = locks.try_lock_all(keys, Duration::from_millis(1));
        assert!(both.is_ok(), "duplicate keys share one stripe guard");
    }
}
