//! Index maintenance on writes: the entry changes one item's change
//! implies, added to the item's own batch, with DynamoDB's validation of
//! index key attributes.

use super::{IndexKind, IndexView, NotIndexed, entry_key, indexes, project};
use crate::kv::{ProjectionType, Result, TableDefinition, TableHandle};
use crate::partition::KeyspaceId;
use crate::storage::ValueRef;
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

/// One image of the written item: the item, its size, and (for the new
/// image) its encoding, which an ALL projection stores as is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Image<'a> {
    pub(crate) item: &'a Item,
    pub(crate) size: usize,
    pub(crate) encoded: Option<&'a [u8]>,
}

/// The entry of an image in an index: its row key, and its projected
/// item unless the projection is ALL (then the entry is the image).
struct Entry {
    key: Vec<u8>,
    projected: Option<Item>,
    size: usize,
}

/// The entry of `image` in `index`, if it has one. A bad index key value
/// is an error when `strict`, else means no entry.
fn entry_of(
    index: &IndexView<'_>,
    definition: &TableDefinition,
    image: Option<Image<'_>>,
    row_key: &[u8],
    strict: bool,
) -> Result<Option<Entry>> {
    let Some(image) = image else {
        return Ok(None);
    };
    let key = match entry_key(index, image.item, row_key) {
        Ok(key) => key,
        Err(NotIndexed::Missing) => return Ok(None),
        Err(NotIndexed::Invalid(error)) if strict => return Err(error),
        Err(NotIndexed::Invalid(_)) => return Ok(None),
    };
    Ok(Some(
        if index.projection.projection_type == ProjectionType::All {
            Entry {
                key,
                projected: None,
                size: image.size,
            }
        } else {
            let projected = project(index, &definition.key, image.item);
            Entry {
                key,
                size: item_size(&projected),
                projected: Some(projected),
            }
        },
    ))
}

/// Adds to `batch` the index entry changes of the item at `row_key` going
/// from `old` to `new`, and reports them in `writes`. Fails — before
/// anything is staged — when `new` gives an index key attribute the wrong
/// type or an empty value. An index still being backfilled is maintained
/// only for items its backfill has passed; it adds the others itself.
/// ALL-projection entries share the new item's encoding through `shared`
/// (see [`WriteBatch::put_shared`]).
pub(crate) fn stage_entries(
    (batch, shared): (&mut WriteBatch, &mut Option<ValueRef>),
    table: &TableHandle,
    definition: &TableDefinition,
    row_key: &[u8],
    old: Option<Image<'_>>,
    new: Option<Image<'_>>,
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
    let unit = crate::kv::write_units;
    // Whether the whole item is unchanged: compared at most once, however
    // many ALL-projection indexes ask.
    let mut items_equal: Option<bool> = None;
    for (index, before, after) in changes {
        let mut write = IndexWrite {
            keyspace: index.keyspace,
            name: index.name.to_owned(),
            kind: index.kind,
            old: before.as_ref().map(|e| e.size),
            new: after.as_ref().map(|e| e.size),
            units: 0.0,
        };
        match (&before, &after) {
            (None, None) => continue,
            (Some(b), Some(a)) if b.key == a.key => {
                let unchanged = match (&b.projected, &a.projected) {
                    (Some(b), Some(a)) => b == a,
                    _ => *items_equal
                        .get_or_insert_with(|| old.map(|i| i.item) == new.map(|i| i.item)),
                };
                if unchanged {
                    continue;
                }
                write.units = unit(a.size.max(b.size));
            }
            _ => {
                if let Some(b) = &before {
                    batch.delete(&b.key);
                    write.units += unit(b.size);
                }
                if let Some(a) = &after {
                    write.units += unit(a.size);
                }
            }
        }
        if let Some(a) = &after {
            match (&a.projected, new.and_then(|i| i.encoded)) {
                // The entry is the item's encoding: written once per batch.
                (None, Some(encoded)) => batch.put_shared(&a.key, encoded, shared),
                (projected, _) => {
                    let entry = projected.as_ref().or(new.map(|i| i.item));
                    let mut bytes = Vec::with_capacity(a.size + 16);
                    if let Some(entry) = entry {
                        encode_item(entry, &mut bytes);
                    }
                    batch.put(&a.key, &bytes);
                }
            }
        }
        writes.push(write);
    }
    Ok(())
}
