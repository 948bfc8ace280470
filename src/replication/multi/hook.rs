//! The one call the kv write path makes into multi-active replication
//! ([`stage_version`], from `kv::write::Staging::stage`): it adds, to the
//! same engine batch as the item's change, the item's new version row
//! (and tombstone index row for a delete) and, for a local write, the
//! outbox entry that ships it to peers. So an item, its version and its
//! outbox entry commit together or not at all, and a change applied from a
//! peer (which carries its version in) gets no outbox entry: it never
//! echoes back.

use std::sync::Arc;

use super::clock::Version;
use super::error::Error;
use super::rows::{self, StoredVersion};
use super::state::OutboxLog;
use crate::db::DatabaseInner;
use crate::kv::TableDefinition;
use crate::storage::{Engine, WriteBatch};
use crate::value::Item;

/// The replication side of one `Staging`: the version of a change applied
/// from a peer, and the outbox positions reserved by local changes, held
/// until the batch commits or is abandoned (so outbox readers never skip a
/// position that may still commit).
#[derive(Debug, Default)]
pub(crate) struct MultiStaging {
    /// Set by the apply path: the change is a peer's, at this version.
    pub(crate) remote: Option<Version>,
    reserved: Vec<u64>,
    log: Option<Arc<OutboxLog>>,
}

impl Drop for MultiStaging {
    fn drop(&mut self) {
        if let Some(log) = &self.log {
            log.release(&self.reserved);
        }
    }
}

/// Reads the stored version of the item at `row_key`.
pub(crate) fn read_stored(engine: &Engine, row_key: &[u8]) -> Result<Option<StoredVersion>, Error> {
    match engine.get(&rows::version_key(row_key))? {
        Some(bytes) => Ok(Some(rows::decode_stored(&bytes)?)),
        None => Ok(None),
    }
}

/// Whether a write to a table of `definition` has replication rows to
/// stage: it applies a peer's change, or the table is replicated.
pub(crate) fn involves(
    db: &DatabaseInner,
    staging: &MultiStaging,
    definition: &TableDefinition,
) -> bool {
    staging.remote.is_some() || db.multi_active.replicates(&definition.name)
}

/// Stages the replication rows of the change from `old` to `new` of the
/// item at `row_key` (`encoded_new`: `new` in the item encoding;
/// `unchanged`: whether `old` and `new` are the same). Does nothing for
/// tables that are not replicated, or for a local write that changes
/// nothing. Callers hold the item's lock.
#[allow(clippy::too_many_arguments)]
pub(crate) fn stage_version(
    db: &DatabaseInner,
    staging: &mut MultiStaging,
    definition: &TableDefinition,
    row_key: &[u8],
    (old, new): (Option<&Item>, Option<&Item>),
    encoded_new: Option<&[u8]>,
    unchanged: bool,
    batch: &mut WriteBatch,
) -> Result<(), Error> {
    let state = &db.multi_active;
    let remote = staging.remote.take();
    if remote.is_none() && (unchanged || !state.replicates(&definition.name)) {
        return Ok(());
    }
    let stored = read_stored(&db.engine, row_key)?;
    let version = match remote {
        Some(version) => version,
        None => {
            let Some(replica) = state.config.read().as_ref().map(|c| c.replica) else {
                return Ok(());
            };
            let Some(item) = new.or(old) else {
                return Ok(());
            };
            let key = crate::kv::key_map_of(&definition.key, item);
            let now_millis = u64::try_from(db.clock.since_epoch().as_millis()).unwrap_or(u64::MAX);
            let (seq, timestamp) = state
                .log
                .reserve(now_millis, stored.map(|s| s.version.timestamp));
            staging.reserved.push(seq);
            staging.log.get_or_insert_with(|| Arc::clone(&state.log));
            let version = Version { timestamp, replica };
            batch.put(
                &rows::outbox_key(seq),
                &rows::encode_entry(&definition.name, &key, version, encoded_new),
            );
            batch.put(&rows::clock_key(), &rows::encode_clock(timestamp, seq + 1));
            state.count(&definition.name, |s| s.local_writes += 1);
            version
        }
    };
    if let Some(stored) = stored
        && stored.tombstone
    {
        batch.delete(&rows::tombstone_key(stored.version, row_key));
    }
    let tombstone = new.is_none();
    batch.put(
        &rows::version_key(row_key),
        &rows::encode_stored(StoredVersion { version, tombstone }),
    );
    if tombstone {
        batch.put(&rows::tombstone_key(version, row_key), &[]);
        state
            .tombstones_dirty
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(())
}
