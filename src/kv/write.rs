//! The single-item write path every PutItem, UpdateItem and DeleteItem
//! (and BatchWriteItem request) takes: lock the item, read what is stored,
//! check the condition, compute the new item, commit one batch, account.
//!
//! [`Staging`] gathers the rows of one atomic write: each item's row and
//! everything derived from it (index entries, the stream record), so an
//! item and its derivatives commit together or not at all.

use std::cell::{Cell, OnceCell};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use parking_lot::RwLockReadGuard;

use super::catalogue::TableHandle;
use super::error::{Error, Result};
use super::expr::Condition;
use super::request::ReturnValuesOnConditionCheckFailure;
use super::schema::TableDefinition;
use super::throttle::Target;
use super::write_units;
use crate::db::DatabaseInner;
use crate::index::{Image, IndexKind, IndexWrite, stage_entries};
use crate::storage::WriteBatch;
use crate::value::{AttributeValue, Item, decode_item, encode_item, encoded_item_size, item_size};

/// What a write did: the item before and after (`None`: absent), its index
/// entry changes, and its item collection's size (tables with local
/// indexes).
#[derive(Debug)]
pub(crate) struct Written {
    pub(crate) old: Option<StoredItem>,
    pub(crate) new: Option<Item>,
    pub(crate) effects: Effects,
}

/// What one item's write did beyond its own row.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// Index entries written or removed.
    pub(crate) indexes: Vec<IndexWrite>,
    /// The partition key value and the size after the write of the item
    /// collection it belongs to (tables with local indexes only).
    pub(crate) collection: Option<(Item, u64)>,
}

/// Reads and decodes the item at `row_key`.
pub(crate) fn read_item(db: &DatabaseInner, row_key: &[u8]) -> Result<Option<Item>> {
    super::views::read_item_at(db, row_key, None)
}

/// Reads the stored encoding of the item at `row_key`, which a write
/// decodes only if it needs the item's attributes.
pub(crate) fn read_stored_item(db: &DatabaseInner, row_key: &[u8]) -> Result<Option<StoredItem>> {
    Ok(db.engine.get(row_key)?.map(StoredItem::new))
}

/// The item stored at a row a write replaces: its encoding as read, and the
/// item decoded from it the first time something needs its attributes (a
/// condition, an update, index entries, returned values). A plain
/// overwrite needs only its size, read from the encoding, and a stream
/// record's old image reuses the encoding as it is: decoding a 1 KB item
/// is a third of the instructions of an overwriting PutItem.
#[derive(Debug)]
pub(crate) struct StoredItem {
    encoded: Bytes,
    item: OnceCell<Item>,
    size: OnceCell<usize>,
}

impl StoredItem {
    fn new(encoded: Bytes) -> Self {
        Self {
            encoded,
            item: OnceCell::new(),
            size: OnceCell::new(),
        }
    }

    /// The item, decoded on the first call.
    pub(crate) fn item(&self) -> Result<&Item> {
        if let Some(item) = self.item.get() {
            return Ok(item);
        }
        let item = decode_item(&self.encoded)?;
        Ok(self.item.get_or_init(|| item))
    }

    /// The item's DynamoDB size, read from the encoding unless the item
    /// is decoded already.
    pub(crate) fn size(&self) -> Result<usize> {
        if let Some(&size) = self.size.get() {
            return Ok(size);
        }
        let size = match self.item.get() {
            Some(item) => item_size(item),
            None => encoded_item_size(&self.encoded)?,
        };
        Ok(*self.size.get_or_init(|| size))
    }

    /// The item, decoding it unless that was done.
    pub(crate) fn into_item(self) -> Result<Item> {
        match self.item.into_inner() {
            Some(item) => Ok(item),
            None => Ok(decode_item(&self.encoded)?),
        }
    }
}

/// The item a staged write replaces, as its writer has it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Old<'a> {
    /// Decoded (transactions, batches and the service's deletes read it
    /// so).
    Item(&'a Item),
    /// As read from its row by the single-item write path.
    Stored(&'a StoredItem),
}

impl<'a> Old<'a> {
    /// The item, decoding a stored one.
    pub(crate) fn item(self) -> Result<&'a Item> {
        match self {
            Old::Item(item) => Ok(item),
            Old::Stored(stored) => stored.item(),
        }
    }

    /// The item if it is decoded, without decoding it.
    pub(crate) fn decoded(self) -> Option<&'a Item> {
        match self {
            Old::Item(item) => Some(item),
            Old::Stored(stored) => stored.item.get(),
        }
    }

    /// The item's DynamoDB size.
    pub(crate) fn size(self) -> Result<usize> {
        match self {
            Old::Item(item) => Ok(item_size(item)),
            Old::Stored(stored) => stored.size(),
        }
    }

    /// The item's stored encoding, when the writer read it.
    pub(crate) fn encoded(self) -> Option<&'a [u8]> {
        match self {
            Old::Item(_) => None,
            Old::Stored(stored) => Some(&stored.encoded),
        }
    }

    /// Whether the item is `new`, whose encoding is `new_encoded`: the
    /// encodings are compared when both are at hand (an item has exactly
    /// one encoding, so equal items have equal bytes and the reverse),
    /// the items otherwise.
    pub(crate) fn is(self, new: &Item, new_encoded: &[u8]) -> Result<bool> {
        match self.encoded() {
            Some(encoded) => Ok(encoded == new_encoded),
            None => Ok(self.item()? == new),
        }
    }
}

/// Whether a write from `old` to `new` (encoded as `new_encoded`)
/// changes nothing: both absent, or the same item.
pub(crate) fn unchanged(
    old: Option<Old<'_>>,
    new: Option<&Item>,
    new_encoded: Option<&[u8]>,
) -> Result<bool> {
    match (old, new, new_encoded) {
        (None, None, _) => Ok(true),
        (Some(old), Some(new), Some(encoded)) => old.is(new, encoded),
        (Some(old), Some(new), None) => Ok(old.item()? == new),
        _ => Ok(false),
    }
}

/// Checks `condition` against the stored item (an empty item when there is
/// none, so `attribute_not_exists` holds and comparisons fail).
pub(crate) fn check_condition(condition: Option<&Condition>, old: Option<&Item>) -> bool {
    let Some(condition) = condition else {
        return true;
    };
    match old {
        Some(item) => condition.evaluate(item),
        None => condition.evaluate(&Item::new()),
    }
}

/// One item of a [`Staging`].
#[derive(Debug)]
struct Staged {
    table: Arc<TableHandle>,
    /// The item's token: which partition its counts go to.
    token: u64,
    old: Option<usize>,
    new: Option<usize>,
    effects: Effects,
    /// The item collection's id and how much this write changes its size.
    collection: Option<(Vec<u8>, i64)>,
}

/// The rows of one atomic write of one or more items.
#[derive(Debug)]
pub(crate) struct Staging<'d> {
    db: &'d DatabaseInner,
    /// Every row to write; callers may add their own (idempotency tokens).
    pub(crate) batch: WriteBatch,
    staged: Vec<Staged>,
    /// Stream sequence numbers reserved by the staged records, released
    /// when the staging ends (committed or not).
    reservations: super::stream::Reservations,
    /// The changes are the service's own (TTL deletes).
    service: bool,
    /// Multi-active replication's part: a peer's version, or the outbox
    /// positions local changes reserved.
    pub(crate) multi_active: crate::replication::multi::MultiStaging,
}

impl<'d> Staging<'d> {
    pub(crate) fn new(db: &'d DatabaseInner) -> Self {
        Self {
            db,
            batch: WriteBatch::new(),
            staged: Vec::new(),
            reservations: Default::default(),
            service: false,
            multi_active: Default::default(),
        }
    }

    /// Marks the changes as made by the service itself (TTL deletes): their
    /// stream records carry its identity.
    pub(crate) fn by_service(&mut self) {
        self.service = true;
    }

    /// Adds the change from `old` to `new` of the item at `row_key`, with
    /// its index entries. Fails, staging nothing of this item, when `new`
    /// gives an index key attribute a bad value.
    pub(crate) fn stage(
        &mut self,
        table: &Arc<TableHandle>,
        definition: &TableDefinition,
        row_key: &[u8],
        old: Option<&Item>,
        new: Option<&Item>,
    ) -> Result<()> {
        self.stage_old(table, definition, row_key, old.map(Old::Item), new)
    }

    /// [`Staging::stage`] of an old item as the writer has it: one read
    /// from its row ([`read_stored_item`]) is decoded only if an index, an
    /// item collection or a removal's stream record needs its attributes,
    /// and a stream record's old image reuses its stored bytes.
    pub(crate) fn stage_old(
        &mut self,
        table: &Arc<TableHandle>,
        definition: &TableDefinition,
        row_key: &[u8],
        old: Option<Old<'_>>,
        new: Option<&Item>,
    ) -> Result<()> {
        let mut effects = Effects::default();
        let old_size = old.map(Old::size).transpose()?;
        let new_size = new.map(item_size);
        // The encoding is a little larger than DynamoDB's size of the item
        // (tags and lengths); sizing from it avoids regrowth.
        let encoded_buffer = new.map(|item| {
            let mut bytes = EncodeBuffer::take();
            bytes.reserve(new_size.unwrap_or(0) + 16 + 4 * item.len());
            encode_item(item, &mut bytes);
            bytes
        });
        let encoded: Option<&[u8]> = encoded_buffer.as_ref().map(|bytes| bytes.as_slice());
        let has_indexes =
            !definition.local_indexes.is_empty() || !definition.global_indexes.is_empty();
        self.batch.reserve(batch_bytes_estimate(
            definition,
            row_key.len(),
            encoded.map_or(0, <[u8]>::len),
            old.and_then(Old::encoded)
                .map_or(old_size.unwrap_or(0), <[u8]>::len),
        ));
        // Whether the write changes nothing, asked at most once, and only
        // by a stream, point-in-time recovery or multi-active replication.
        let unchanged = OnceCell::new();
        let is_unchanged = || -> Result<bool> {
            if let Some(&answer) = unchanged.get() {
                return Ok(answer);
            }
            let answer = self::unchanged(old, new, encoded)?;
            Ok(*unchanged.get_or_init(|| answer))
        };
        // Where the new item's encoding first went into the batch: its
        // row and ALL-projection index entries share those bytes.
        let mut shared = None;
        // The stream record goes in first (no record for a write that
        // changes nothing, as in DynamoDB Streams): a new image in it is
        // the first copy of the new item's encoding, and the index entries
        // and the row that follow are copies of it, which the memtable
        // keeps as slices of the record rather than a second arena copy
        // joined from a record that refers back to the row. A reservation
        // made for a write that then fails validation is released when
        // the staging is dropped.
        if definition.stream_keyspace.is_some()
            && !is_unchanged()?
            && let Some((reserved, new_image_at)) = super::stream::stage_record(
                self.db,
                definition,
                row_key,
                super::stream::Change {
                    old: match (old, old_size) {
                        (Some(old), Some(size)) => {
                            if new.is_none() {
                                // A removal's record names the old item's
                                // keys: decoded here, read there.
                                old.item()?;
                            }
                            Some((old, size))
                        }
                        _ => None,
                    },
                    new: match (new, new_size, encoded) {
                        (Some(item), Some(size), Some(bytes)) => Some((item, size, bytes)),
                        _ => None,
                    },
                },
                self.service,
                &mut self.batch,
            )
        {
            self.reservations.push(reserved);
            shared = new_image_at;
        }
        if has_indexes {
            let old_image = match (old, old_size) {
                (Some(old), Some(size)) => Some(Image {
                    item: old.item()?,
                    size,
                    encoded: None,
                }),
                _ => None,
            };
            let new_image = new.zip(new_size).map(|(item, size)| Image {
                item,
                size,
                encoded,
            });
            stage_entries(
                (&mut self.batch, &mut shared),
                table,
                definition,
                row_key,
                old_image,
                new_image,
                &mut effects.indexes,
            )?;
        }
        let collection = if definition.local_indexes.is_empty() {
            None
        } else {
            let mut delta = new_size.unwrap_or(0) as i64 - old_size.unwrap_or(0) as i64;
            for write in &effects.indexes {
                if write.kind == IndexKind::Local {
                    delta += write.new.unwrap_or(0) as i64 - write.old.unwrap_or(0) as i64;
                }
            }
            let pk = &definition.key.partition_key.0;
            let item = match (new, old) {
                (Some(new), _) => Some(new),
                (None, Some(old)) => Some(old.item()?),
                (None, None) => None,
            };
            let value: Option<&AttributeValue> = item.and_then(|item| item.get(pk));
            effects.collection = value.map(|v| (Item::new().with(pk.clone(), v.clone()), 0));
            Some((crate::index::collection_id(definition, row_key)?, delta))
        };
        match encoded {
            Some(bytes) => self.batch.put_shared(row_key, bytes, &mut shared),
            None if old.is_some() => self.batch.delete(row_key),
            None => {}
        }
        if definition.point_in_time_recovery.is_some() && !is_unchanged()? {
            super::pitr::stage_change(self.db, definition, row_key, encoded, &mut self.batch);
        }
        if crate::replication::multi::involves(self.db, &self.multi_active, definition) {
            let old = match old {
                Some(old) => Some(old.item()?),
                None => None,
            };
            crate::replication::multi::stage_version(
                self.db,
                &mut self.multi_active,
                definition,
                row_key,
                (old, new),
                encoded,
                is_unchanged()?,
                &mut self.batch,
            )?;
        }
        self.staged.push(Staged {
            table: Arc::clone(table),
            token: super::partitions::row_token(row_key),
            old: old_size,
            new: new_size,
            effects,
            collection,
        });
        Ok(())
    }

    /// The index entry changes staged so far (their capacity is checked
    /// before the commit).
    pub(crate) fn index_writes(&self) -> impl Iterator<Item = &IndexWrite> {
        self.staged.iter().flat_map(|s| s.effects.indexes.iter())
    }

    /// Commits every staged row in one batch and accounts the changes;
    /// returns each staged item's effects, in staging order. Fails, writing
    /// nothing, if a write would grow an item collection past its limit.
    pub(crate) fn commit(self) -> Result<Vec<Effects>> {
        let db = self.db;
        let limit = db.item_collection_size_limit;
        let mut reserved: Vec<(&Staged, u64)> = Vec::new();
        let release = |reserved: &[(&Staged, u64)]| {
            for (staged, _) in reserved {
                if let Some((id, delta)) = &staged.collection {
                    staged.table.collections.release(id, *delta);
                }
            }
        };
        for staged in &self.staged {
            if let Some((id, delta)) = &staged.collection {
                let definition = staged.table.definition();
                match staged
                    .table
                    .collections
                    .reserve(db, &definition, id, *delta, limit)
                {
                    Ok(size) => reserved.push((staged, size)),
                    Err(error) => {
                        release(&reserved);
                        return Err(error);
                    }
                }
            }
        }
        if !self.batch.is_empty()
            && let Err(error) = db.engine.write(self.batch)
        {
            release(&reserved);
            return Err(error.into());
        }
        let sizes: Vec<u64> = reserved.iter().map(|(_, size)| *size).collect();
        let mut sizes = sizes.into_iter();
        let mut effects = Vec::with_capacity(self.staged.len());
        for mut staged in self.staged {
            staged.table.account(staged.old, staged.new);
            staged.table.partitions.account(
                staged.token,
                staged.old,
                staged.new,
                db.partition_options.split_bytes,
            );
            for write in &staged.effects.indexes {
                staged
                    .table
                    .index_state(write.keyspace)
                    .counts
                    .account(write.old, write.new);
            }
            if staged.collection.is_some() {
                let size = sizes.next().unwrap_or(0);
                if let Some((_, total)) = &mut staged.effects.collection {
                    *total = size;
                }
            }
            effects.push(staged.effects);
        }
        Ok(effects)
    }
}

/// The batch bytes one item's change is likely to add: its row, one entry
/// per index (an ALL projection's entry is the item again; others are
/// smaller, so this errs on the large side) and a stream record with the
/// images its view type carries. Reserving it up front makes the batch one
/// allocation instead of one regrowth (and copy) per derived row.
fn batch_bytes_estimate(
    definition: &TableDefinition,
    key_bytes: usize,
    new_bytes: usize,
    old_bytes: usize,
) -> usize {
    // Index and record keys are longer than the row key; lengths and tags.
    let entry = |value: usize| WriteBatch::entry_bytes(2 * key_bytes + 16, value);
    let indexes = definition.local_indexes.len() + definition.global_indexes.len();
    let mut bytes = entry(new_bytes) + indexes * entry(new_bytes.max(16));
    if definition.stream_keyspace.is_some() {
        use super::StreamViewType as View;
        let view = definition
            .stream_specification
            .and_then(|s| s.stream_view_type);
        bytes += 64 + entry(2 * key_bytes);
        if matches!(view, Some(View::NewImage | View::NewAndOldImages)) {
            bytes += new_bytes;
        }
        if matches!(view, Some(View::OldImage | View::NewAndOldImages)) {
            bytes += old_bytes;
        }
    }
    bytes
}

/// Enters the gates of the tables a multi-item write touches (each once),
/// failing if one was dropped meanwhile. Writes hold the guards until they
/// are applied.
pub(crate) fn enter_tables<'t>(
    tables: impl IntoIterator<Item = &'t Arc<TableHandle>>,
) -> Result<Vec<RwLockReadGuard<'t, ()>>> {
    let mut unique: Vec<&Arc<TableHandle>> = Vec::new();
    for table in tables {
        if !unique.iter().any(|t| Arc::ptr_eq(t, table)) {
            unique.push(table);
        }
    }
    let gates = unique.iter().map(|t| t.gate.read()).collect();
    if let Some(dropped) = unique.iter().find(|t| t.dropped.load(Ordering::Acquire)) {
        return Err(Error::table_not_found(&dropped.definition().name));
    }
    Ok(gates)
}

/// Writes one item atomically. `change` maps the stored item to the new
/// one (`None` deletes); it runs under the item's lock after the condition
/// held, and may fail without anything being written. The stored item is
/// decoded only when the condition, `change` or the table's indexes
/// read it. In provisioned mode
/// the write is refused, with no effect, when its capacity is spent.
/// Then applies any partition split the write asked for.
pub(crate) fn write_item(
    db: &DatabaseInner,
    table: &Arc<TableHandle>,
    row_key: &[u8],
    condition: Option<&Condition>,
    on_failure: ReturnValuesOnConditionCheckFailure,
    change: impl FnOnce(Option<&StoredItem>) -> Result<Option<Item>>,
) -> Result<Written> {
    let written = write_item_gated(db, table, row_key, condition, on_failure, change);
    super::partitions::run_pending(db, table);
    written
}

fn write_item_gated(
    db: &DatabaseInner,
    table: &Arc<TableHandle>,
    row_key: &[u8],
    condition: Option<&Condition>,
    on_failure: ReturnValuesOnConditionCheckFailure,
    change: impl FnOnce(Option<&StoredItem>) -> Result<Option<Item>>,
) -> Result<Written> {
    let _gate = table.gate.read();
    if table.dropped.load(Ordering::Acquire) {
        return Err(Error::table_not_found(&table.definition().name));
    }
    // Read under the gate: index changes swap definitions holding it.
    let definition = table.definition();
    let _lock = db.kv.locks.lock(row_key);
    let old = read_stored_item(db, row_key)?;
    let token = super::partitions::row_token(row_key);
    let partition = table.partitions.partition(token);
    let target = Target {
        db,
        table,
        definition: &definition,
        partition: Some((&partition, token)),
        index: None,
    };
    let old_size = old.as_ref().map(StoredItem::size).transpose()?.unwrap_or(0);
    let holds = match (condition, &old) {
        (Some(condition), Some(old)) => check_condition(Some(condition), Some(old.item()?)),
        (condition, _) => check_condition(condition, None),
    };
    if !holds {
        // DynamoDB charges a failed condition: the stored item's size, or
        // one unit when there is none.
        target.charge_write(write_units(old_size));
        let item = match on_failure {
            ReturnValuesOnConditionCheckFailure::AllOld => {
                old.map(StoredItem::into_item).transpose()?
            }
            ReturnValuesOnConditionCheckFailure::None => None,
        };
        return Err(Error::ConditionalCheckFailed { item });
    }
    let new = change(old.as_ref())?;
    let mut staging = Staging::new(db);
    staging.stage_old(
        table,
        &definition,
        row_key,
        old.as_ref().map(Old::Stored),
        new.as_ref(),
    )?;
    let size = old_size.max(new.as_ref().map_or(0, item_size));
    let mut units = write_units(size);
    let mut global: Vec<(&str, f64)> = Vec::new();
    for write in staging.index_writes() {
        match write.kind {
            IndexKind::Local => units += write.units,
            IndexKind::Global => global.push((&write.name, write.units)),
        }
    }
    target.admit_write(units, &global)?;
    drop(global);
    let effects = staging.commit()?.pop().unwrap_or_default();
    Ok(Written { old, new, effects })
}

thread_local! {
    /// The buffer each thread encodes the items it writes into, kept between
    /// writes: a fresh `Vec` of an item's size per write cost about a tenth
    /// of a 1 KB PutItem in glibc's malloc, which consolidates its fast bins
    /// before serving any request over 1 KiB.
    static ENCODE_BUFFER: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// The largest encode buffer a thread keeps (an item is at most 400 KB).
const ENCODE_BUFFER_KEEP_BYTES: usize = 1 << 20;

/// The thread's encode buffer, taken for one staged item and handed back
/// (emptied) when dropped.
struct EncodeBuffer(Vec<u8>);

impl EncodeBuffer {
    fn take() -> Self {
        let mut bytes = ENCODE_BUFFER.with(Cell::take);
        bytes.clear();
        Self(bytes)
    }
}

impl std::ops::Deref for EncodeBuffer {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl std::ops::DerefMut for EncodeBuffer {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Drop for EncodeBuffer {
    fn drop(&mut self) {
        if self.0.capacity() <= ENCODE_BUFFER_KEEP_BYTES {
            let bytes = std::mem::take(&mut self.0);
            // During thread teardown the slot may be gone: then it is freed.
            let _ = ENCODE_BUFFER.try_with(|slot| slot.set(bytes));
        }
    }
}
