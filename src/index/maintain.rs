//! Index maintenance on writes: the entry changes one item's change
//! implies, added to the item's own batch, with DynamoDB's validation of
//! index key attributes.

use super::{IndexKind, IndexView, NotIndexed, entry_key, indexes, project};
use crate::kv::{Result, TableDefinition, TableHandle};
use crate::partition::KeyspaceId;
use crate::storage::WriteBatch;
use crate::value::{Item, encode_item, item_size};

/// What one item's write did to one index.
#[derive(Debug, Clone)]
pub(crate) struct IndexWrite {
    /// The index's keyspace.
    pub(crate) keyspace: KeyspaceId,
    /// The index's name.
    pub(crate) name: String,
    /// Local or global.
    pub(crate) kind: IndexKind,
    /// The entry's size before and after (`None`: no entry).
    pub(crate) old: Option<usize>,
    pub(crate) new: Option<usize>,
    /// Write units the index consumed (1 KB each per entry written or
    /// deleted, DynamoDB's GSI write cost).
    pub(crate) units: f64,
}

/// The entry of `item` in `index`, if it has one: (row key, projected
/// item). A bad index key value is an error when `strict`, else no entry.
fn entry_of(
    index: &IndexView<'_>,
    definition: &TableDefinition,
    item: Option<&Item>,
    row_key: &[u8],
    strict: bool,
) -> Result<Option<(Vec<u8>, Item)>> {
    let Some(item) = item else {
        return Ok(None);
    };
    match entry_key(index, item, row_key) {
        Ok(key) => Ok(Some((key, project(index, &definition.key, item)))),
        Err(NotIndexed::Missing) => Ok(None),
        Err(NotIndexed::Invalid(error)) if strict => Err(error),
        Err(NotIndexed::Invalid(_)) => Ok(None),
    }
}

/// Adds to `batch` the index entry changes of the item at `row_key` going
/// from `old` to `new`, and reports them in `writes`. Fails — before
/// anything is staged — when `new` gives an index key attribute the wrong
/// type or an empty value. An index still being backfilled is maintained
/// only for items its backfill has passed; it adds the others itself.
pub(crate) fn stage_entries(
    batch: &mut WriteBatch,
    table: &TableHandle,
    definition: &TableDefinition,
    row_key: &[u8],
    old: Option<&Item>,
    new: Option<&Item>,
    writes: &mut Vec<IndexWrite>,
) -> Result<()> {
    let mut changes = Vec::new();
    for index in indexes(definition) {
        if index.status == crate::kv::IndexStatus::Creating
            && !table
                .index_state(index.keyspace)
                .backfill
                .lock()
                .as_ref()
                .is_some_and(|p| p.covers(row_key))
        {
            // Still check the new item, so bad values are refused at once.
            entry_of(&index, definition, new, row_key, true)?;
            continue;
        }
        let before = entry_of(&index, definition, old, row_key, false)?;
        let after = entry_of(&index, definition, new, row_key, true)?;
        changes.push((index, before, after));
    }
    for (index, before, after) in changes {
        let mut write = IndexWrite {
            keyspace: index.keyspace,
            name: index.name.to_owned(),
            kind: index.kind,
            old: before.as_ref().map(|(_, e)| item_size(e)),
            new: after.as_ref().map(|(_, e)| item_size(e)),
            units: 0.0,
        };
        let unit = crate::kv::write_units;
        match (&before, &after) {
            (None, None) => continue,
            (Some((old_key, old_entry)), Some((new_key, new_entry))) if old_key == new_key => {
                if old_entry == new_entry {
                    continue;
                }
                write.units = unit(item_size(new_entry).max(item_size(old_entry)));
            }
            _ => {
                if let Some((old_key, old_entry)) = &before {
                    batch.delete(old_key);
                    write.units += unit(item_size(old_entry));
                }
                if let Some((_, new_entry)) = &after {
                    write.units += unit(item_size(new_entry));
                }
            }
        }
        if let Some((new_key, new_entry)) = &after {
            let mut bytes = Vec::with_capacity(item_size(new_entry) + 16);
            encode_item(new_entry, &mut bytes);
            batch.put(new_key, &bytes);
        }
        writes.push(write);
    }
    Ok(())
}
