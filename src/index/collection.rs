//! Item collection sizes of tables with local secondary indexes: the
//! bytes of a partition key's items plus their local index entries,
//! limited (10 GB by default, `DatabaseOptions::item_collection_size_limit`)
//! as DynamoDB limits them, and reported by `ReturnItemCollectionMetrics`.
//!
//! Sizes live in memory. A collection's size is computed by one scan of its
//! rows the first time a write touches it after open, then kept exact:
//! writes reserve their change before committing (refused if it would pass
//! the limit and grows the collection) and give it back if the commit fails.

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::db::DatabaseInner;
use crate::kv::{Error, Result, TableDefinition};
use crate::partition::keyspace_prefix;
use crate::storage::Direction;
use crate::value::{decode_item, decode_key_value, item_size};

/// Sizes of the item collections touched since open, by `token | pk`.
#[derive(Debug, Default)]
pub(crate) struct Collections {
    sizes: Mutex<HashMap<Vec<u8>, u64>>,
}

/// The `token | encoded partition key` part of a base row key.
pub(crate) fn collection_id(definition: &TableDefinition, row_key: &[u8]) -> Result<Vec<u8>> {
    let rest = row_key.get(12..).unwrap_or_default();
    let (_, used) = decode_key_value(definition.key.partition_key.1, rest)?;
    Ok(row_key[4..12 + used].to_vec())
}

/// The size of a collection, by scanning its rows in the table and in
/// every local index.
fn measure(db: &DatabaseInner, definition: &TableDefinition, id: &[u8]) -> Result<u64> {
    let mut total = 0u64;
    let keyspaces = std::iter::once(definition.keyspace)
        .chain(definition.local_indexes.iter().map(|i| i.keyspace));
    for keyspace in keyspaces {
        let mut prefix = keyspace_prefix(keyspace).to_vec();
        prefix.extend_from_slice(id);
        for row in db.engine.prefix(&prefix, Direction::Forward, None)? {
            let (_, value) = row?;
            total += item_size(&decode_item(&value)?) as u64;
        }
    }
    Ok(total)
}

impl Collections {
    /// Applies `delta` bytes to collection `id`, unless that grows it past
    /// `limit`; returns the new size.
    pub(crate) fn reserve(
        &self,
        db: &DatabaseInner,
        definition: &TableDefinition,
        id: &[u8],
        delta: i64,
        limit: u64,
    ) -> Result<u64> {
        let mut sizes = self.sizes.lock();
        let size = match sizes.get(id) {
            Some(size) => *size,
            None => {
                let size = measure(db, definition, id)?;
                sizes.insert(id.to_vec(), size);
                size
            }
        };
        let after = size.saturating_add_signed(delta);
        if delta > 0 && after > limit {
            return Err(Error::ItemCollectionSizeLimitExceeded(
                "Item collection size limit exceeded".into(),
            ));
        }
        sizes.insert(id.to_vec(), after);
        Ok(after)
    }

    /// Gives back a reservation whose write did not commit.
    pub(crate) fn release(&self, id: &[u8], delta: i64) {
        if let Some(size) = self.sizes.lock().get_mut(id) {
            *size = size.saturating_add_signed(-delta);
        }
    }
}
