//! Read-through loading with single-flight: [`Cache::get_or_load`] and
//! [`Cache::get_or_load_optional`] (see `flight` for the protocol).

use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use super::flight::{Flight, Outcome};
use super::shard::Slot;
use super::sharded::{Cache, Lookup};
use super::stats::Counter;

/// What a kind of load returns, and how it maps to and from cache entries.
trait LoadOutput<V>: Sized {
    /// The output a cached value (`Some`) or cached absence (`None`) gives,
    /// or `None` if this kind of load cannot use it.
    fn from_cached(found: Option<V>) -> Option<Self>;
    /// What to cache for this output: a value or an absence (`None`).
    fn to_cached(&self) -> Option<V>;
}

/// `get_or_load`: a value is required; a cached absence does not count.
struct Required<V>(V);

/// `get_or_load_optional`: a value or an absence.
struct Optional<V>(Option<V>);

impl<V: Clone> LoadOutput<V> for Required<V> {
    fn from_cached(found: Option<V>) -> Option<Self> {
        found.map(Required)
    }

    fn to_cached(&self) -> Option<V> {
        Some(self.0.clone())
    }
}

impl<V: Clone> LoadOutput<V> for Optional<V> {
    fn from_cached(found: Option<V>) -> Option<Self> {
        Some(Optional(found))
    }

    fn to_cached(&self) -> Option<V> {
        self.0.clone()
    }
}

/// Cleans up after the loader of a flight: on the normal path `land`
/// removes the flight and publishes the outcome; if the loader panics, the
/// drop does the same with [`Outcome::Abandoned`] so waiters retry instead
/// of waiting forever.
struct Landing<'a, K, V>
where
    K: Hash + Eq + Clone + Send + Sync,
    V: Clone + Send + Sync,
{
    cache: &'a Cache<K, V>,
    shard: usize,
    key: &'a K,
    flight: Arc<Flight<V>>,
    landed: bool,
}

impl<K, V> Landing<'_, K, V>
where
    K: Hash + Eq + Clone + Send + Sync,
    V: Clone + Send + Sync,
{
    fn land(mut self, outcome: Outcome<V>) {
        self.landed = true;
        self.finish(outcome);
    }

    fn finish(&self, outcome: Outcome<V>) {
        let mut shard = self.cache.shards[self.shard].write();
        if shard
            .flights
            .get(self.key)
            .is_some_and(|registered| Arc::ptr_eq(registered, &self.flight))
        {
            shard.flights.remove(self.key);
        }
        drop(shard);
        self.flight.land(outcome);
    }
}

impl<K, V> Drop for Landing<'_, K, V>
where
    K: Hash + Eq + Clone + Send + Sync,
    V: Clone + Send + Sync,
{
    fn drop(&mut self) {
        if !self.landed {
            self.finish(Outcome::Abandoned);
        }
    }
}

impl<K, V> Cache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync,
    V: Clone + Send + Sync,
{
    /// The cached value of `key`, or the value `load` returns, which is then
    /// cached with the cache's TTL. Concurrent misses on one key run one
    /// loader; the others wait and share its value or its error (waiters
    /// with a different error type load for themselves). Errors are not
    /// cached. A write to `key` while the loader runs wins: the loaded value
    /// is returned but not cached; so is a value too large for the cache.
    /// A cached absence does not satisfy this call: the loader runs.
    pub fn get_or_load<E, F>(&self, key: K, load: F) -> Result<V, E>
    where
        F: FnOnce(&K) -> Result<V, E>,
        E: Clone + Send + Sync + 'static,
    {
        self.load_through(&key, |key| load(key).map(Required))
            .map(|Required(value)| value)
    }

    /// Like [`get_or_load`](Self::get_or_load) for a loader that may find
    /// nothing: its `Ok(None)` is cached as a negative entry for the
    /// negative TTL, and a cached absence answers `Ok(None)` without loading.
    pub fn get_or_load_optional<E, F>(&self, key: K, load: F) -> Result<Option<V>, E>
    where
        F: FnOnce(&K) -> Result<Option<V>, E>,
        E: Clone + Send + Sync + 'static,
    {
        self.load_through(&key, |key| load(key).map(Optional))
            .map(|Optional(value)| value)
    }

    fn load_through<T, E, F>(&self, key: &K, load: F) -> Result<T, E>
    where
        T: LoadOutput<V>,
        F: FnOnce(&K) -> Result<T, E>,
        E: Clone + Send + Sync + 'static,
    {
        let hash = self.hash_key(key);
        let shard_index = self.shard_of(hash);
        let mut counted = false;
        let flight = loop {
            if let Some(output) = settle::<T, V>(self.probe(hash, key)) {
                if !counted {
                    self.count(hash, Counter::Hit);
                }
                return Ok(output);
            }
            if !counted {
                self.count(hash, Counter::Miss);
                counted = true;
            }
            let mut shard = self.shards[shard_index].write();
            // A load may have landed between the probe and the lock.
            if let Some(output) = settle::<T, V>(self.peek_locked(&shard, hash, key)) {
                return Ok(output);
            }
            let Some(existing) = shard.flights.get(key).map(Arc::clone) else {
                let flight = Arc::new(Flight::new());
                shard.flights.insert(key.clone(), Arc::clone(&flight));
                break flight;
            };
            drop(shard);
            match existing.wait() {
                Outcome::Loaded(found) => {
                    if let Some(output) = T::from_cached(found) {
                        return Ok(output);
                    }
                }
                Outcome::Failed(error) => {
                    if let Some(error) = error.downcast_ref::<E>() {
                        return Err(error.clone());
                    }
                }
                Outcome::Loading | Outcome::Abandoned => {}
            }
        };
        let landing = Landing {
            cache: self,
            shard: shard_index,
            key,
            flight,
            landed: false,
        };
        self.counters.add(Counter::Load, 1);
        match load(key) {
            Ok(output) => {
                let cached = output.to_cached();
                let (slot, ttl): (Slot<V>, Option<Duration>) = match &cached {
                    Some(value) => (Slot::Present(value.clone()), self.ttl()),
                    None => (Slot::Absent, self.negative_ttl()),
                };
                // A value too large to cache is still returned.
                let _ = self.insert_with(key.clone(), slot, ttl, Some(&landing.flight));
                landing.land(Outcome::Loaded(cached));
                Ok(output)
            }
            Err(error) => {
                self.counters.add(Counter::LoadError, 1);
                landing.land(Outcome::Failed(Arc::new(error.clone())));
                Err(error)
            }
        }
    }
}

/// The output a lookup settles, if any.
fn settle<T: LoadOutput<V>, V>(found: Lookup<V>) -> Option<T> {
    match found {
        Lookup::Hit(value) => T::from_cached(Some(value)),
        Lookup::Absent => T::from_cached(None),
        Lookup::Miss => None,
    }
}
