//! Durable consumer checkpoints (catalogue tag 08) and the shard order
//! every consumer follows: a shard is read only once its parent is
//! finished (or trimmed away), so an item's records are seen in order
//! across splits.
//!
//! ```text
//! 00000000 08 <name> 00 <stream keyspace BE> <shard BE>   next sequence (u64 BE), finished (u8)
//! ```

use std::collections::HashMap;

use crate::db::DatabaseInner;
use crate::kv::catalogue::catalogue_key;
use crate::kv::error::{Error, Result};
use crate::kv::stream::{StreamDescriptorView, StreamLog};
use crate::partition::KeyspaceId;
use crate::storage::{Direction, StorageError, WriteBatch};

/// The catalogue tag of checkpoint rows.
pub(crate) const CHECKPOINT_TAG: u8 = 8;
/// The longest consumer name.
const NAME_BYTES_MAX: usize = 64;

/// Where a consumer is in one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    /// The next sequence number to deliver.
    pub(crate) next: u64,
    /// The shard is closed and every record of it was delivered.
    pub(crate) finished: bool,
}

/// Checks a consumer name: 1 to 64 of `[A-Za-z0-9_.-]`.
pub(crate) fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= NAME_BYTES_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::validation(format!(
            "Invalid consumer name '{name}': 1 to 64 characters of [A-Za-z0-9_.-]"
        )))
    }
}

fn prefix(name: &str, keyspace: KeyspaceId) -> Vec<u8> {
    let mut rest = name.as_bytes().to_vec();
    rest.push(0);
    rest.extend_from_slice(&keyspace.to_be_bytes());
    catalogue_key(CHECKPOINT_TAG, &rest)
}

fn key(name: &str, keyspace: KeyspaceId, shard: u32) -> Vec<u8> {
    let mut key = prefix(name, keyspace);
    key.extend_from_slice(&shard.to_be_bytes());
    key
}

/// Every checkpoint of consumer `name` in the stream in `keyspace`.
pub(crate) fn load(
    db: &DatabaseInner,
    name: &str,
    keyspace: KeyspaceId,
) -> Result<HashMap<u32, Checkpoint>> {
    let bad = || StorageError::corruption("checkpoint", 0, "bad checkpoint row");
    let prefix = prefix(name, keyspace);
    let mut checkpoints = HashMap::new();
    for row in db.engine.prefix(&prefix, Direction::Forward, None)? {
        let (key, value) = row?;
        let shard = key
            .get(prefix.len()..)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
            .ok_or_else(bad)?;
        let next = value
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or_else(bad)?;
        let finished = *value.get(8).ok_or_else(bad)? != 0;
        checkpoints.insert(shard, Checkpoint { next, finished });
    }
    Ok(checkpoints)
}

/// Saves one checkpoint durably (as durable as the database's writes).
pub(crate) fn save(
    db: &DatabaseInner,
    name: &str,
    keyspace: KeyspaceId,
    shard: u32,
    checkpoint: Checkpoint,
) -> Result<()> {
    let mut value = checkpoint.next.to_be_bytes().to_vec();
    value.push(u8::from(checkpoint.finished));
    let mut batch = WriteBatch::new();
    batch.put(&key(name, keyspace, shard), &value);
    db.engine.write(batch)?;
    Ok(())
}

/// Where a consumer starts in a stream it has no checkpoint for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StartingPosition {
    /// The oldest record still kept.
    TrimHorizon,
    /// Only records written after the consumer was created.
    #[default]
    Latest,
}

/// Loads the checkpoints of `name` in `log`'s stream; on first use with
/// [`StartingPosition::Latest`], saves checkpoints that skip every record
/// written so far.
pub(crate) fn start(
    db: &DatabaseInner,
    name: &str,
    log: &StreamLog,
    position: StartingPosition,
) -> Result<HashMap<u32, Checkpoint>> {
    let mut checkpoints = load(db, name, log.keyspace)?;
    if checkpoints.is_empty() && position == StartingPosition::Latest {
        let bound = log.visible_bound();
        let descriptor = log.descriptor();
        for shard in &descriptor.shards {
            let checkpoint = match shard.ending_sequence {
                Some(_) => Checkpoint {
                    next: bound,
                    finished: true,
                },
                None => Checkpoint {
                    next: bound.max(shard.starting_sequence),
                    finished: false,
                },
            };
            save(db, name, log.keyspace, shard.number, checkpoint)?;
            checkpoints.insert(shard.number, checkpoint);
        }
    }
    Ok(checkpoints)
}

/// The shards a consumer may read now, in order: not finished, and whose
/// parent is finished or no longer listed.
pub(crate) fn ready_shards(
    descriptor: &StreamDescriptorView,
    checkpoints: &HashMap<u32, Checkpoint>,
) -> Vec<u32> {
    let finished = |number: u32| checkpoints.get(&number).is_some_and(|c| c.finished);
    descriptor
        .shards
        .iter()
        .filter(|s| !finished(s.number))
        .filter(|s| {
            s.parent
                .is_none_or(|p| finished(p) || !descriptor.shards.iter().any(|x| x.number == p))
        })
        .map(|s| s.number)
        .collect()
}

/// Where reading shard `number` starts when it has no checkpoint.
pub(crate) fn initial(log: &StreamLog, number: u32) -> Checkpoint {
    let floor = log.shard_trimmed_through(number) + 1;
    let start = log
        .descriptor()
        .shards
        .iter()
        .find(|s| s.number == number)
        .map_or(floor, |s| s.starting_sequence);
    Checkpoint {
        next: start.max(floor),
        finished: false,
    }
}
