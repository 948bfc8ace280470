//! Global and local secondary indexes: where their entries live, what they
//! store, how writes maintain them (in the same atomic batch as the base
//! item, so an index is never behind its table), how a new global index is
//! backfilled, and the item collection sizes of tables with local indexes.
//!
//! An index entry is one engine row:
//!
//! ```text
//! index keyspace | token(index pk) | index pk | index sk | table pk | table sk
//! ```
//!
//! every part in the order-preserving key encoding, so a partition of the
//! index is one key range, sorted by the index sort key and then — for
//! ties — by the base item's key. The value is the projected item (the
//! table's and the index's key attributes plus the projected ones) in the
//! item encoding: a Query on an index reads only the index.

mod backfill;
mod collection;
mod maintain;

pub(crate) use backfill::{resume_backfills, start_backfill};
pub(crate) use collection::{Collections, collection_id};
pub(crate) use maintain::{Image, IndexWrite, stage_entries};

use parking_lot::Mutex;

use crate::kv::expr::Projection;
use crate::kv::{Error, IndexProjection, IndexStatus, KeyDefinition, ProjectionType, Result};
use crate::partition::{KeyspaceId, keyspace_prefix};
use crate::value::{AttributeValue, Item, KeyRole, ScalarType, encode_key_value};

/// Bytes of `keyspace | token` at the front of every row key.
const ROW_KEY_HEADER: usize = 12;

/// Whether an index is local (the table's partition key) or global.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IndexKind {
    /// A local secondary index.
    Local,
    /// A global secondary index.
    Global,
}

/// One index of a table definition, whichever its kind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexView<'d> {
    pub(crate) name: &'d str,
    pub(crate) kind: IndexKind,
    pub(crate) key: &'d KeyDefinition,
    pub(crate) keyspace: KeyspaceId,
    pub(crate) projection: &'d IndexProjection,
    pub(crate) status: IndexStatus,
}

/// Every index of `definition`, local ones first.
pub(crate) fn indexes(
    definition: &crate::kv::TableDefinition,
) -> impl Iterator<Item = IndexView<'_>> {
    let local = definition.local_indexes.iter().map(|i| IndexView {
        name: &i.index.index_name,
        kind: IndexKind::Local,
        key: &i.key,
        keyspace: i.keyspace,
        projection: &i.index.projection,
        status: IndexStatus::Active,
    });
    let global = definition.global_indexes.iter().map(|i| IndexView {
        name: &i.index.index_name,
        kind: IndexKind::Global,
        key: &i.key,
        keyspace: i.keyspace,
        projection: &i.index.projection,
        status: i.status,
    });
    local.chain(global)
}

/// The index called `name`, with DynamoDB's error when there is none.
pub(crate) fn find<'d>(
    definition: &'d crate::kv::TableDefinition,
    name: &str,
) -> Result<IndexView<'d>> {
    indexes(definition).find(|i| i.name == name).ok_or_else(|| {
        Error::validation(format!(
            "The table does not have the specified index: {name}"
        ))
    })
}

/// The live state of one index: its entry count and size, and the
/// progress of its backfill while it is being built.
#[derive(Debug, Default)]
pub(crate) struct IndexState {
    pub(crate) counts: crate::kv::Counts,
    pub(crate) backfill: Mutex<Option<Progress>>,
}

impl IndexState {
    pub(crate) fn new(items: i64, bytes: i64) -> Self {
        Self {
            counts: crate::kv::Counts::new(items, bytes),
            backfill: Mutex::new(None),
        }
    }
}

/// How far a backfill has come.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// The last base row key processed (`None`: not started). Writes keep
    /// the entries of items at or before it; the backfill adds the rest.
    pub(crate) cursor: Option<Vec<u8>>,
    /// Base items examined.
    pub(crate) scanned: u64,
    /// Items left out for a bad index key.
    pub(crate) skipped: u64,
}

impl Progress {
    /// Whether the backfill has already processed the item at `row_key`.
    pub(crate) fn covers(&self, row_key: &[u8]) -> bool {
        self.cursor.as_deref().is_some_and(|c| row_key <= c)
    }
}

/// Why an item has no entry in an index.
#[derive(Debug)]
pub(crate) enum NotIndexed {
    /// An index key attribute is missing: the index is sparse.
    Missing,
    /// An index key attribute is of the wrong type, empty or too long.
    Invalid(Error),
}

/// DynamoDB's message for an index key value of the wrong type, or empty.
fn invalid_index_key(
    index: &str,
    name: &str,
    expected: ScalarType,
    value: &AttributeValue,
) -> Option<Error> {
    let actual = value.attribute_type();
    if actual != expected.attribute_type() {
        return Some(Error::validation(format!(
            "One or more parameter values were invalid: Type mismatch for Index Key {name} \
             Expected: {expected} Actual: {actual} IndexName: {index}"
        )));
    }
    let empty = match value {
        AttributeValue::S(s) => s.is_empty().then_some("string"),
        AttributeValue::B(b) => b.is_empty().then_some("binary"),
        _ => None,
    };
    empty.map(|kind| {
        Error::validation(format!(
            "One or more parameter values are not valid. A value specified for a secondary \
             index key is not supported. The AttributeValue for a key attribute cannot contain \
             an empty {kind} value. IndexName: {index}, IndexKey: {name}"
        ))
    })
}

/// Encodes one index key attribute of `item` onto `out`.
fn encode_part(
    index: &IndexView<'_>,
    (name, scalar): (&str, ScalarType),
    role: KeyRole,
    item: &Item,
    out: &mut Vec<u8>,
) -> std::result::Result<(), NotIndexed> {
    let value = item.get(name).ok_or(NotIndexed::Missing)?;
    if let Some(error) = invalid_index_key(index.name, name, scalar, value) {
        return Err(NotIndexed::Invalid(error));
    }
    crate::value::validate_key_value(name, role, scalar, value)
        .map_err(|e| NotIndexed::Invalid(e.into()))?;
    encode_key_value(value, out).map_err(|e| NotIndexed::Invalid(e.into()))
}

/// The row key of `item`'s entry in `index`, given the item's own row key.
pub(crate) fn entry_key(
    index: &IndexView<'_>,
    item: &Item,
    base_row_key: &[u8],
) -> std::result::Result<Vec<u8>, NotIndexed> {
    // Composite keys concatenate their attributes' encodings; each is
    // self-delimiting, so entries sort by the first, then the second. The
    // key is built in place (one allocation): the header's token is filled
    // in once the partition key's encoding is there to hash.
    let base_suffix = base_row_key.get(ROW_KEY_HEADER..).unwrap_or_default();
    let mut key = Vec::with_capacity(ROW_KEY_HEADER + 2 * base_suffix.len() + 32);
    key.extend_from_slice(&keyspace_prefix(index.keyspace));
    key.extend_from_slice(&[0; 8]);
    for attribute in index.key.partition_attributes() {
        encode_part(index, attribute, KeyRole::Partition, item, &mut key)?;
    }
    let token = crate::partition::token(key.get(ROW_KEY_HEADER..).unwrap_or_default());
    key[4..ROW_KEY_HEADER].copy_from_slice(&token.to_be_bytes());
    for attribute in index.key.sort_attributes() {
        encode_part(index, attribute, KeyRole::Sort, item, &mut key)?;
    }
    key.extend_from_slice(base_suffix);
    Ok(key)
}

/// Whether `name` is stored in `index`'s entries (keys always are).
pub(crate) fn projects(index: &IndexView<'_>, table_key: &KeyDefinition, name: &str) -> bool {
    match index.projection.projection_type {
        ProjectionType::All => true,
        projection => {
            table_key.names().any(|n| n == name)
                || index.key.names().any(|n| n == name)
                || (projection == ProjectionType::Include
                    && index
                        .projection
                        .non_key_attributes
                        .iter()
                        .any(|n| n == name))
        }
    }
}

/// The entry `index` stores for `item`: the attributes it projects.
pub(crate) fn project(index: &IndexView<'_>, table_key: &KeyDefinition, item: &Item) -> Item {
    if index.projection.projection_type == ProjectionType::All {
        return item.clone();
    }
    item.iter()
        .filter(|(name, _)| projects(index, table_key, name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// Whether every attribute a read needs is stored in `index` (`None`: the
/// read wants every attribute).
pub(crate) fn covers(
    index: &IndexView<'_>,
    table_key: &KeyDefinition,
    wanted: Option<&[&str]>,
) -> bool {
    match wanted {
        None => index.projection.projection_type == ProjectionType::All,
        Some(names) => names.iter().all(|n| projects(index, table_key, n)),
    }
}

/// The top-level attribute names a projection expression reads.
pub(crate) fn projection_names(projection: &Projection) -> Vec<&str> {
    projection
        .paths()
        .iter()
        .map(|p| p.top_level_name())
        .collect()
}
