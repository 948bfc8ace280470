//! The single-item write path every PutItem, UpdateItem and DeleteItem
//! (and BatchWriteItem request) takes: lock the item, read what is stored,
//! check the condition, compute the new item, commit one batch, account.
//!
//! Later layers (indexes, streams) add their rows to the same batch here,
//! so an item and everything derived from it commit atomically.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use parking_lot::RwLockReadGuard;

use super::catalogue::TableHandle;
use super::error::{Error, Result};
use super::expr::Condition;
use super::request::ReturnValuesOnConditionCheckFailure;
use crate::db::DatabaseInner;
use crate::storage::WriteBatch;
use crate::value::{Item, encode_item, item_size};

/// What a write did: the item before and after (`None`: absent).
#[derive(Debug)]
pub(crate) struct Written {
    pub(crate) old: Option<Item>,
    pub(crate) new: Option<Item>,
}

/// Reads and decodes the item at `row_key`.
pub(crate) fn read_item(db: &DatabaseInner, row_key: &[u8]) -> Result<Option<Item>> {
    super::views::read_item_at(db, row_key, None)
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

/// Adds the change from `old` to `new` of the item at `row_key` to `batch`
/// (nothing when both are absent).
pub(crate) fn stage(
    batch: &mut WriteBatch,
    row_key: &[u8],
    old: Option<&Item>,
    new: Option<&Item>,
) {
    match new {
        Some(item) => {
            // The encoding is a little larger than DynamoDB's size of the
            // item (tags and lengths); sizing from it avoids regrowth.
            let mut bytes = Vec::with_capacity(item_size(item) + 16 + 4 * item.len());
            encode_item(item, &mut bytes);
            batch.put(row_key, &bytes);
        }
        None if old.is_some() => batch.delete(row_key),
        None => {}
    }
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
/// held, and may fail without anything being written.
pub(crate) fn write_item(
    db: &DatabaseInner,
    table: &TableHandle,
    row_key: &[u8],
    condition: Option<&Condition>,
    on_failure: ReturnValuesOnConditionCheckFailure,
    change: impl FnOnce(Option<&Item>) -> Result<Option<Item>>,
) -> Result<Written> {
    let _gate = table.gate.read();
    if table.dropped.load(Ordering::Acquire) {
        return Err(Error::table_not_found(&table.definition().name));
    }
    let _lock = db.kv.locks.lock(row_key);
    let old = read_item(db, row_key)?;
    if !check_condition(condition, old.as_ref()) {
        let item = match on_failure {
            ReturnValuesOnConditionCheckFailure::AllOld => old,
            ReturnValuesOnConditionCheckFailure::None => None,
        };
        return Err(Error::ConditionalCheckFailed { item });
    }
    let new = change(old.as_ref())?;
    let mut batch = WriteBatch::new();
    stage(&mut batch, row_key, old.as_ref(), new.as_ref());
    if !batch.is_empty() {
        db.engine.write(batch)?;
    }
    table.account(old.as_ref().map(item_size), new.as_ref().map(item_size));
    Ok(Written { old, new })
}
