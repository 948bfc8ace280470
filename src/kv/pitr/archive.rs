//! The archived change log of point-in-time recovery: one record per item
//! change of a PITR-enabled table, staged by `kv::write::Staging` in the
//! same engine batch as the change itself, so the archive holds exactly
//! the committed changes, none lost and none extra.
//!
//! Record rows (in the table's archive keyspace, see docs/format-kv.md):
//!
//! ```text
//! key:   <archive keyspace u32 BE> <time ms u64 BE> <counter u64 BE>
//! value: <tag u8> <row suffix length u32 BE> <row suffix> [<encoded item>]
//!        tag 0 = the item was deleted, 1 = the item's new image follows,
//!        2 = a base snapshot was taken at this time (no suffix, no item)
//! ```
//!
//! The row suffix is the item's row key without its keyspace prefix
//! (token, partition key, sort key), so a restore rebases it onto any
//! keyspace. What this module must never do: write an item row.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::kv::schema::TableDefinition;
use crate::partition::{KeyspaceId, keyspace_prefix};
use crate::storage::{Direction, Engine, StorageError, WriteBatch};

/// Archive rows deleted per batch when retention reclaims them.
const RECLAIM_BATCH_ROWS: usize = 1024;

const TAG_DELETE: u8 = 0;
const TAG_PUT: u8 = 1;
const TAG_SNAPSHOT: u8 = 2;

/// The time and order stamps of archive records, shared by every table.
///
/// Times are the database clock's milliseconds, made monotone: a record's
/// time is never below an earlier record's, so per item (whose writes are
/// serialised by its lock) the order of (time, counter) is commit order
/// even if the wall clock steps back. [`ArchiveClock::seal`] draws a line:
/// every record stamped before it has a time ≤ the returned time, every
/// record stamped after it a greater one.
#[derive(Debug, Default)]
pub(crate) struct ArchiveClock {
    /// The greatest time stamped so far.
    last_millis: AtomicU64,
    /// The least time the next stamp may have (one past the last seal).
    floor_millis: AtomicU64,
    /// The next record's counter (unique across the database).
    counter: AtomicU64,
}

impl ArchiveClock {
    /// Recovers the stamps from the newest record of every archive, so
    /// records written after a reopen sort after every earlier one.
    pub(crate) fn recover<'d>(
        engine: &Engine,
        definitions: impl IntoIterator<Item = &'d TableDefinition>,
    ) -> Result<Self, StorageError> {
        let clock = Self::default();
        for definition in definitions {
            let Some(pitr) = &definition.point_in_time_recovery else {
                continue;
            };
            let prefix = keyspace_prefix(pitr.archive_keyspace);
            if let Some(row) = engine.prefix(&prefix, Direction::Reverse, None)?.next() {
                let (key, _) = row?;
                let (time, counter) = parse_key(&key)
                    .ok_or_else(|| StorageError::corruption("pitr archive", 0, "record key"))?;
                clock.last_millis.fetch_max(time, Ordering::AcqRel);
                // Strictly after: a snapshot sealed at `time` holds every
                // record stamped at it.
                clock.floor_millis.fetch_max(time + 1, Ordering::AcqRel);
                clock.counter.fetch_max(counter + 1, Ordering::AcqRel);
            }
        }
        Ok(clock)
    }

    /// The (time, counter) of a new record at wall time `now_millis`.
    fn stamp(&self, now_millis: u64) -> (u64, u64) {
        let time = now_millis.max(self.floor_millis.load(Ordering::Acquire));
        let previous = self.last_millis.fetch_max(time, Ordering::AcqRel);
        let counter = self.counter.fetch_add(1, Ordering::AcqRel);
        (time.max(previous), counter)
    }

    /// Draws the line described on the type and returns its time. The
    /// caller holds the table's gate exclusively, so no change of the
    /// table is between its stamp and its commit.
    pub(crate) fn seal(&self, now_millis: u64) -> u64 {
        let sealed = self.latest(now_millis);
        self.floor_millis.fetch_max(sealed + 1, Ordering::AcqRel);
        sealed
    }

    /// The latest time a restore can target now: no record stamped so far
    /// is later.
    pub(crate) fn latest(&self, now_millis: u64) -> u64 {
        now_millis
            .max(self.last_millis.load(Ordering::Acquire))
            .max(self.floor_millis.load(Ordering::Acquire).saturating_sub(1))
    }
}

/// A record's key.
fn record_key(archive: KeyspaceId, time_millis: u64, counter: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(20);
    key.extend_from_slice(&keyspace_prefix(archive));
    key.extend_from_slice(&time_millis.to_be_bytes());
    key.extend_from_slice(&counter.to_be_bytes());
    key
}

/// The first key of the records at `time_millis` or later.
fn time_bound(archive: KeyspaceId, time_millis: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(12);
    key.extend_from_slice(&keyspace_prefix(archive));
    key.extend_from_slice(&time_millis.to_be_bytes());
    key
}

/// (time, counter) of a record key.
fn parse_key(key: &[u8]) -> Option<(u64, u64)> {
    let time = u64::from_be_bytes(key.get(4..12)?.try_into().ok()?);
    let counter = u64::from_be_bytes(key.get(12..20)?.try_into().ok()?);
    (key.len() == 20).then_some((time, counter))
}

/// Adds the archive record of a change of the item at `row_key` to
/// `encoded` (the new item's encoding; `None`: deleted) to `batch`, if the
/// table has point-in-time recovery. The caller skips writes that change
/// nothing.
pub(crate) fn stage_change(
    db: &crate::db::DatabaseInner,
    definition: &TableDefinition,
    row_key: &[u8],
    encoded: Option<&[u8]>,
    batch: &mut WriteBatch,
) {
    let Some(pitr) = &definition.point_in_time_recovery else {
        return;
    };
    let now = db.clock.since_epoch().as_millis() as u64;
    let (time, counter) = db.kv.pitr.stamp(now);
    let suffix = row_key.get(4..).unwrap_or_default();
    let image = encoded.unwrap_or_default();
    let mut value = Vec::with_capacity(5 + suffix.len() + image.len());
    value.push(if encoded.is_some() {
        TAG_PUT
    } else {
        TAG_DELETE
    });
    value.extend_from_slice(&(suffix.len() as u32).to_be_bytes());
    value.extend_from_slice(suffix);
    value.extend_from_slice(image);
    batch.put(&record_key(pitr.archive_keyspace, time, counter), &value);
}

/// Adds the marker of a base snapshot sealed at `time_millis` to `batch`:
/// it keeps the archive clock past the snapshot across a reopen.
pub(super) fn stage_snapshot_marker(
    db: &crate::db::DatabaseInner,
    archive: KeyspaceId,
    time_millis: u64,
    batch: &mut WriteBatch,
) {
    let counter = db.kv.pitr.counter.fetch_add(1, Ordering::AcqRel);
    let mut value = vec![TAG_SNAPSHOT];
    value.extend_from_slice(&0u32.to_be_bytes());
    batch.put(&record_key(archive, time_millis, counter), &value);
}

/// The last change of each item changed in `(after, through]` (times in
/// ms): row suffix -> new encoded image, or `None` if deleted.
pub(super) fn changes_between(
    engine: &Engine,
    archive: KeyspaceId,
    after_millis: u64,
    through_millis: u64,
) -> Result<BTreeMap<Vec<u8>, Option<Vec<u8>>>, StorageError> {
    let mut changes = BTreeMap::new();
    if through_millis <= after_millis {
        return Ok(changes);
    }
    let range = (
        Bound::Included(time_bound(archive, after_millis + 1)),
        Bound::Excluded(time_bound(archive, through_millis.saturating_add(1))),
    );
    let corrupt = |what: &str| StorageError::corruption("pitr archive", 0, what.to_owned());
    for row in engine.range(range, Direction::Forward, None)? {
        let (_, value) = row?;
        let tag = *value.first().ok_or_else(|| corrupt("empty record"))?;
        let length = value
            .get(1..5)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
            .ok_or_else(|| corrupt("record length"))? as usize;
        let suffix = value
            .get(5..5 + length)
            .ok_or_else(|| corrupt("record row key"))?;
        let image = value.get(5 + length..).unwrap_or_default();
        match tag {
            TAG_PUT => changes.insert(suffix.to_vec(), Some(image.to_vec())),
            TAG_DELETE => changes.insert(suffix.to_vec(), None),
            TAG_SNAPSHOT => None,
            _ => return Err(corrupt("record tag")),
        };
    }
    Ok(changes)
}

/// Deletes the records older than `before_millis`; returns how many rows
/// and bytes (keys and values) it removed.
pub(super) fn reclaim_before(
    engine: &Engine,
    archive: KeyspaceId,
    before_millis: u64,
) -> Result<(u64, u64), StorageError> {
    let (mut rows, mut bytes) = (0u64, 0u64);
    let start = keyspace_prefix(archive).to_vec();
    let end = time_bound(archive, before_millis);
    loop {
        let mut batch = WriteBatch::new();
        let mut in_batch = 0;
        let range = (Bound::Included(start.clone()), Bound::Excluded(end.clone()));
        for row in engine.range(range, Direction::Forward, None)? {
            let (key, value) = row?;
            batch.delete(&key);
            bytes += (key.len() + value.len()) as u64;
            in_batch += 1;
            if in_batch == RECLAIM_BATCH_ROWS {
                break;
            }
        }
        if in_batch == 0 {
            return Ok((rows, bytes));
        }
        rows += in_batch as u64;
        engine.write(batch)?;
    }
}

/// The archive's record count and bytes (keys and values).
pub(super) fn size(engine: &Engine, archive: KeyspaceId) -> Result<(u64, u64), StorageError> {
    let (mut rows, mut bytes) = (0u64, 0u64);
    for row in engine.prefix(&keyspace_prefix(archive), Direction::Forward, None)? {
        let (key, value) = row?;
        rows += 1;
        bytes += (key.len() + value.len()) as u64;
    }
    Ok((rows, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_monotone_and_a_seal_separates_before_from_after() {
        let clock = ArchiveClock::default();
        let (t1, c1) = clock.stamp(1_000);
        // The wall clock steps back: the stamp does not.
        let (t2, c2) = clock.stamp(900);
        assert_eq!((t1, t2), (1_000, 1_000));
        assert!(c2 > c1);
        let sealed = clock.seal(1_000);
        assert_eq!(sealed, 1_000);
        let (t3, _) = clock.stamp(1_000);
        assert!(t3 > sealed, "a record after the seal is later than it");
        assert_eq!(clock.latest(500), t3);
    }

    #[test]
    fn record_keys_parse_back() {
        let key = record_key(42, 7, 9);
        assert_eq!(parse_key(&key), Some((7, 9)));
        assert_eq!(parse_key(&key[..19]), None);
    }
}
