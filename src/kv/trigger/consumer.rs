//! The pull consumer (the KCL pattern): the caller asks for the next batch
//! of some ready shard, processes it, and checkpoints it durably; a
//! consumer opened later under the same name resumes after the last
//! checkpoint (at-least-once: batches taken but not checkpointed are
//! delivered again).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::checkpoint::{self, Checkpoint, StartingPosition};
use crate::Database;
use crate::kv::error::{Error, Result};
use crate::kv::stream::{Position, Record, StreamLog, read_shard};

/// A `stream_consumer` request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `open` is called"]
pub struct OpenStreamConsumer {
    db: Database,
    table: String,
    name: String,
    starting_position: StartingPosition,
}

/// A durable, pull-style reader of a table's stream.
#[derive(Debug)]
pub struct StreamConsumer {
    db: Database,
    name: String,
    log: Arc<StreamLog>,
    state: Mutex<ConsumerState>,
}

#[derive(Debug, Default)]
struct ConsumerState {
    /// What is saved (the resume point after a reopen).
    saved: HashMap<u32, Checkpoint>,
    /// How far batches were handed out.
    taken: HashMap<u32, u64>,
    /// Where the round-robin over ready shards continues.
    turn: usize,
}

/// Records of one shard handed out by [`StreamConsumer::next_batch`].
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerBatch {
    /// The shard they come from.
    pub shard_id: String,
    /// The records, in order (never empty).
    pub records: Vec<Record>,
    shard: u32,
    /// The position after the batch (`None`: the shard is drained).
    next: Option<u64>,
}

impl OpenStreamConsumer {
    pub(crate) fn new(db: Database, table: String, name: String) -> Self {
        Self {
            db,
            table,
            name,
            starting_position: StartingPosition::default(),
        }
    }

    /// Where a consumer without checkpoints starts (default `Latest`).
    pub fn starting_position(mut self, position: StartingPosition) -> Self {
        self.starting_position = position;
        self
    }

    /// Opens the consumer (resuming from its checkpoints, if any).
    pub fn open(self) -> Result<StreamConsumer> {
        checkpoint::check_name(&self.name)?;
        let log = current_stream(&self.db, &self.table)?;
        let saved = checkpoint::start(&self.db.inner, &self.name, &log, self.starting_position)?;
        Ok(StreamConsumer {
            db: self.db,
            name: self.name,
            log,
            state: Mutex::new(ConsumerState {
                saved,
                ..ConsumerState::default()
            }),
        })
    }
}

/// The current stream of `table`.
pub(crate) fn current_stream(db: &Database, table: &str) -> Result<Arc<StreamLog>> {
    let keyspace = db
        .inner
        .kv
        .table(table)?
        .definition()
        .stream_keyspace
        .ok_or_else(|| Error::validation(format!("Table {table} has no enabled stream")))?;
    db.inner
        .streams
        .get(keyspace)
        .ok_or_else(|| Error::table_not_found(table))
}

impl StreamConsumer {
    /// The next records of a ready shard (shards take turns), up to
    /// `limit` (1..=1000); `None` when no shard has records now.
    pub fn next_batch(&self, limit: usize) -> Result<Option<ConsumerBatch>> {
        let mut state = self.state.lock();
        let descriptor = self.log.descriptor();
        let ready = checkpoint::ready_shards(&descriptor, &state.saved);
        for offset in 0..ready.len() {
            let shard = ready[(state.turn + offset) % ready.len()];
            let saved = state
                .saved
                .get(&shard)
                .copied()
                .unwrap_or_else(|| checkpoint::initial(&self.log, shard));
            let from = state.taken.get(&shard).copied().unwrap_or(saved.next);
            let position = Position {
                keyspace: self.log.keyspace,
                shard,
                next: from,
                issued_millis: 0,
            };
            let (records, next) = read_shard(&self.db, &self.log, position, limit)?;
            if records.is_empty() {
                match next {
                    Some(next) => {
                        state.taken.insert(shard, next);
                    }
                    // Drained, and everything handed out was saved.
                    None if saved.next >= from => {
                        let done = Checkpoint {
                            next: from,
                            finished: true,
                        };
                        checkpoint::save(
                            &self.db.inner,
                            &self.name,
                            self.log.keyspace,
                            shard,
                            done,
                        )?;
                        state.saved.insert(shard, done);
                    }
                    None => {}
                }
                continue;
            }
            state.turn = (state.turn + offset + 1) % ready.len().max(1);
            if let Some(next) = next {
                state.taken.insert(shard, next);
            } else {
                let last = records
                    .last()
                    .and_then(|r| crate::kv::stream::parse_sequence(&r.dynamodb.sequence_number))
                    .unwrap_or(from);
                state.taken.insert(shard, last + 1);
            }
            let shard_id = descriptor
                .shards
                .iter()
                .find(|s| s.number == shard)
                .map(|s| descriptor.shard_id(s))
                .unwrap_or_default();
            return Ok(Some(ConsumerBatch {
                shard_id,
                records,
                shard,
                next,
            }));
        }
        Ok(None)
    }

    /// Saves that `batch` (and everything before it in its shard) was
    /// processed; a later consumer of this name resumes after it.
    pub fn checkpoint(&self, batch: &ConsumerBatch) -> Result<()> {
        let mut state = self.state.lock();
        let checkpoint = match batch.next {
            Some(next) => Checkpoint {
                next,
                finished: false,
            },
            None => Checkpoint {
                next: state.taken.get(&batch.shard).copied().unwrap_or(0),
                finished: true,
            },
        };
        checkpoint::save(
            &self.db.inner,
            &self.name,
            self.log.keyspace,
            batch.shard,
            checkpoint,
        )?;
        state.saved.insert(batch.shard, checkpoint);
        Ok(())
    }

    /// The consumer's name (its checkpoints' key).
    pub fn name(&self) -> &str {
        &self.name
    }
}
