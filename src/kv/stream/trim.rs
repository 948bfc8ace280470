//! Stream retention: records older than the retention period (24 h by
//! default, `DatabaseOptions::stream_retention`) are deleted, and a
//! disabled stream is forgotten once its last records are that old.
//!
//! Trimming keeps one invariant readers rely on: every record with a
//! sequence number at most the stream's trim floor is gone, and every
//! record above it is still there. So the trimmer deletes, across all
//! shards, only records below the first one it keeps in *any* shard, then
//! raises the floor in the same batch. Deleted rows become tombstones that
//! compaction reclaims. Sequence numbers are the stream's, not a shard's,
//! so each shard also keeps the highest number of its own records
//! trimmed: a reader of a shard that lost nothing past its position is not
//! told its data was trimmed because another shard's was.

use std::collections::HashMap;
use std::time::Duration;

use super::record::{created_millis, sequence_of_key, shard_prefix};
use super::shard::{StreamDescriptor, StreamLog, TrimFloors, trimmed_row_key};
use crate::db::DatabaseInner;
use crate::kv::catalogue::{KvState, purge_keyspace};
use crate::kv::error::Result;
use crate::storage::{Direction, StorageError, WriteBatch};

/// How long stream records are kept by default: 24 hours, as in DynamoDB.
pub const DEFAULT_STREAM_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// The most records one trim step deletes per stream (bounds the batch).
const TRIM_BATCH_ROWS: usize = 4096;

/// Trims every stream until nothing older than the retention is left.
pub(crate) fn trim_streams(db: &DatabaseInner) -> Result<()> {
    for log in db.streams.all() {
        while trim_step(db, &log)? {}
    }
    Ok(())
}

/// One bounded trim step of one stream; whether more may be left.
fn trim_step(db: &DatabaseInner, log: &StreamLog) -> Result<bool> {
    let _quiet = db.kv.quiesce.read();
    if db.kv.is_closed() {
        return Ok(false);
    }
    let now = db.clock.since_epoch().as_millis() as u64;
    let retention = db.stream_retention.as_millis() as u64;
    let cutoff = now.saturating_sub(retention);
    let descriptor = log.descriptor();
    if descriptor
        .disabled_millis
        .is_some_and(|disabled| disabled.saturating_add(retention) <= now)
    {
        forget(db, &descriptor)?;
        return Ok(false);
    }
    let bound = log.visible_bound();
    // Records at or past `keep` stay (in some shard, one at `keep` is too
    // young, or was not looked at).
    let mut keep = bound;
    let mut old: Vec<(u32, u64, Vec<u8>)> = Vec::new();
    for shard in &descriptor.shards {
        let prefix = shard_prefix(descriptor.keyspace, shard.number);
        for (taken, row) in db
            .engine
            .prefix(&prefix, Direction::Forward, None)?
            .enumerate()
        {
            let (key, value) = row?;
            let sequence = sequence_of_key(&key).ok_or_else(|| bad("record key"))?;
            let created = created_millis(&value).ok_or_else(|| bad("record time"))?;
            if sequence >= bound || created >= cutoff {
                keep = keep.min(sequence);
                break;
            }
            if taken == TRIM_BATCH_ROWS {
                keep = keep.min(sequence);
                break;
            }
            old.push((shard.number, sequence, key.to_vec()));
        }
    }
    old.retain(|(_, sequence, _)| *sequence < keep);
    let Some(through) = old.iter().map(|(_, s, _)| *s).max() else {
        return Ok(false);
    };
    let mut shards = HashMap::new();
    for &(number, sequence, _) in &old {
        let floor = shards.entry(number).or_insert(0);
        *floor = sequence.max(*floor);
    }
    let floors = log.floors_after(&TrimFloors {
        through,
        shards: Some(shards),
    });
    let mut batch = WriteBatch::new();
    for (_, _, key) in &old {
        batch.delete(key);
    }
    batch.put(&trimmed_row_key(descriptor.keyspace), &floors.encode());
    db.engine.write(batch)?;
    if let Some(descriptor) = log.advance_trim(&floors) {
        let mut batch = WriteBatch::new();
        descriptor.put(&mut batch)?;
        db.engine.write(batch)?;
    }
    Ok(old.len() >= TRIM_BATCH_ROWS)
}

/// Removes a disabled stream past retention: its catalogue rows go and
/// its keyspace is purged (resumed at the next open after a crash).
fn forget(db: &DatabaseInner, descriptor: &StreamDescriptor) -> Result<()> {
    let keyspace = descriptor.keyspace;
    let mut batch = WriteBatch::new();
    batch.delete(&StreamDescriptor::row_key(keyspace));
    batch.delete(&trimmed_row_key(keyspace));
    KvState::mark_dropped(&mut batch, keyspace);
    db.engine.write(batch)?;
    db.streams.remove(keyspace);
    purge_keyspace(&db.engine, keyspace)?;
    Ok(())
}

fn bad(what: &str) -> StorageError {
    StorageError::corruption("stream record", 0, what.to_owned())
}
