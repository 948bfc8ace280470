//! Applying one change from a peer: last-writer-wins by version. Under the
//! item's lock, the incoming version is compared with the stored one; a
//! newer change is written like any other (indexes, stream record) but
//! with the peer's version and no outbox entry; an older one is discarded
//! and counted as a conflict. The receiver's cursor for the origin commits
//! in the same batch, so after a crash a change is neither lost nor
//! applied (and counted) twice. Items of a table copy (`copy.rs`) take the
//! same path, without a cursor row (re-applying one is harmless).

use std::cmp::Ordering;

use super::clock::Version;
use super::error::Error;
use super::hook::read_stored;
use super::rows::Change;
use super::state::InjectedBug;
use crate::db::DatabaseInner;
use crate::storage::WriteBatch;

/// What became of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It was newer and is now the item's state.
    Applied,
    /// It lost to a newer stored version.
    Conflict,
    /// The same version was already stored.
    Duplicate,
}

/// Why a change was not applied now (it will be retried).
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Its timestamp is too far ahead of local time.
    ClockSkew,
    /// The table is missing here or not replicated.
    WaitingForTable,
    /// Anything else (a failed write, a key that does not fit the schema).
    Failed(Error),
}

impl<E: Into<Error>> From<E> for Refusal {
    fn from(error: E) -> Self {
        Self::Failed(error.into())
    }
}

/// Orders an incoming version against the stored one: `Greater` wins.
pub(crate) fn compare(incoming: Version, stored: Version, bug: Option<InjectedBug>) -> Ordering {
    if bug == Some(InjectedBug::IgnoreReplicaTieBreak) && incoming.replica != stored.replica {
        return match incoming.timestamp.cmp(&stored.timestamp) {
            Ordering::Equal => Ordering::Greater,
            other => other,
        };
    }
    incoming.cmp(&stored)
}

/// Applies `change`, writing `progress` (a row: the origin's cursor) in
/// the same batch whatever the outcome.
pub(crate) fn apply_change(
    db: &DatabaseInner,
    change: &Change,
    progress: Option<(&[u8], &[u8])>,
) -> Result<Outcome, Refusal> {
    let state = &db.multi_active;
    let (max_clock_skew, replicated) = match state.config.read().as_ref() {
        Some(config) => (config.max_clock_skew, config.tables.contains(&change.table)),
        None => return Err(Refusal::Failed(Error::NotConfigured)),
    };
    if !replicated {
        return Err(Refusal::WaitingForTable);
    }
    let now_millis = u64::try_from(db.clock.since_epoch().as_millis()).unwrap_or(u64::MAX);
    state
        .log
        .state
        .lock()
        .clock
        .observe(now_millis, change.version.timestamp, max_clock_skew)
        .map_err(|_| Refusal::ClockSkew)?;
    let Ok(table) = db.kv.table(&change.table) else {
        return Err(Refusal::WaitingForTable);
    };
    let outcome = {
        let _gate = table.gate.read();
        if table.dropped.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Refusal::WaitingForTable);
        }
        let definition = table.definition();
        let row_key =
            crate::kv::key_from_key_map(&definition.key, &change.key)?.row_key(definition.keyspace);
        let _lock = db.kv.locks.lock(&row_key);
        let stored = read_stored(&db.engine, &row_key)?;
        let ordering = match stored {
            Some(stored) => compare(change.version, stored.version, state.injected_bug()),
            None => Ordering::Greater,
        };
        if ordering != Ordering::Greater {
            if let Some((key, value)) = progress {
                let mut batch = WriteBatch::new();
                batch.put(key, value);
                db.engine.write(batch)?;
            }
            if ordering == Ordering::Equal {
                Outcome::Duplicate
            } else {
                Outcome::Conflict
            }
        } else {
            let old = crate::kv::read_item(db, &row_key)?;
            let mut staging = crate::kv::Staging::new(db);
            staging.multi_active.remote = Some(change.version);
            staging.stage(
                &table,
                &definition,
                &row_key,
                old.as_ref(),
                change.item.as_ref(),
            )?;
            if let Some((key, value)) = progress {
                staging.batch.put(key, value);
            }
            staging.commit()?;
            Outcome::Applied
        }
    };
    crate::kv::run_pending_splits(db, &table);
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::multi::{ReplicaId, Timestamp};

    fn version(wall_millis: u64, logical: u32, replica: u64) -> Version {
        Version {
            timestamp: Timestamp {
                wall_millis,
                logical,
            },
            replica: ReplicaId(replica),
        }
    }

    #[test]
    fn the_later_timestamp_wins_whatever_the_replica() {
        assert_eq!(
            compare(version(10, 1, 1), version(10, 0, 9), None),
            Ordering::Greater
        );
        assert_eq!(
            compare(version(9, 5, 9), version(10, 0, 1), None),
            Ordering::Less
        );
    }

    #[test]
    fn equal_timestamps_are_broken_by_the_higher_replica_id() {
        assert_eq!(
            compare(version(10, 0, 2), version(10, 0, 1), None),
            Ordering::Greater
        );
        assert_eq!(
            compare(version(10, 0, 1), version(10, 0, 2), None),
            Ordering::Less
        );
    }

    #[test]
    fn the_same_version_is_a_duplicate() {
        assert_eq!(
            compare(version(10, 0, 2), version(10, 0, 2), None),
            Ordering::Equal
        );
    }

    #[test]
    fn the_injected_bug_lets_either_side_win_a_tie() {
        let bug = Some(InjectedBug::IgnoreReplicaTieBreak);
        assert_eq!(
            compare(version(10, 0, 1), version(10, 0, 2), bug),
            Ordering::Greater
        );
        assert_eq!(
            compare(version(10, 0, 2), version(10, 0, 1), bug),
            Ordering::Greater
        );
    }
}
