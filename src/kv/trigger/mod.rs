//! Consumers of a table's stream that keep durable checkpoints: the
//! event-source mapping (a handler called with batches, Lambda's trigger
//! in process) and the pull consumer (the KCL pattern).
//!
//! Both read shards parents first, each shard in order, and save a
//! checkpoint per shard in the catalogue (tag 08) after each acknowledged
//! batch, so a consumer recreated under the same name after a crash or a
//! restart resumes after the last acknowledged batch: at-least-once,
//! never skipping. A name belongs to one running mapping at a time (two
//! sharing checkpoints would each deliver every record, and resume from
//! each other's positions); stopping a mapping frees its name.
//!
//! ```
//! use std::sync::mpsc;
//! use nimbus::kv::{StartingPosition, StreamSpecification, StreamViewType};
//! use nimbus::{Database, ScalarType, item};
//!
//! let db = Database::memory()?;
//! db.create_table("Users")
//!     .partition_key("id", ScalarType::S)
//!     .stream_specification(StreamSpecification {
//!         stream_enabled: true,
//!         stream_view_type: Some(StreamViewType::NewImage),
//!     })
//!     .send()?;
//! let (tx, rx) = mpsc::channel();
//! let tx = std::sync::Mutex::new(tx);
//! let mapping = db
//!     .create_event_source_mapping("Users", move |records| {
//!         for record in records {
//!             tx.lock().unwrap().send(record.dynamodb.keys.clone())?;
//!         }
//!         Ok(())
//!     })
//!     .starting_position(StartingPosition::TrimHorizon)
//!     .send()?;
//! db.put_item("Users").item(item! { "id" => "u1" }).send()?;
//! assert_eq!(rx.recv().unwrap(), item! { "id" => "u1" });
//! mapping.stop();
//! # Ok::<(), nimbus::kv::Error>(())
//! ```

mod checkpoint;
mod consumer;
mod mapping;

pub use checkpoint::StartingPosition;
pub use consumer::{ConsumerBatch, OpenStreamConsumer, StreamConsumer};
pub use mapping::{
    BATCH_SIZE_MAX, BATCHING_WINDOW_MAX, CreateEventSourceMapping, EventSourceMapping, FailedBatch,
    FailureReason, Handler, HandlerError, OnFailure, RECORD_AGE_MAX, RETRY_ATTEMPTS_MAX,
};

use std::sync::Arc;

use crate::Database;
use crate::kv::stream::Record;

/// Implements the stream consumers on [`Database`].
impl Database {
    /// Starts a `CreateEventSourceMapping` request: `handler` is called
    /// with batches of `table`'s stream records.
    pub fn create_event_source_mapping(
        &self,
        table: impl Into<String>,
        handler: impl Fn(&[Record]) -> Result<(), HandlerError> + Send + Sync + 'static,
    ) -> CreateEventSourceMapping {
        CreateEventSourceMapping::new(self.clone(), table.into(), Arc::new(handler))
    }

    /// Starts opening a pull consumer of `table`'s stream whose
    /// checkpoints are saved under `name`.
    pub fn stream_consumer(
        &self,
        table: impl Into<String>,
        name: impl Into<String>,
    ) -> OpenStreamConsumer {
        OpenStreamConsumer::new(self.clone(), table.into(), name.into())
    }
}
