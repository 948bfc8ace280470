//! Time to live: `update_time_to_live` / `describe_time_to_live`, and the
//! sweeper that deletes expired items.
//!
//! An item expires when its TTL attribute is a top-level Number of epoch
//! seconds at most the current time (by the database's clock); values more
//! than five years in the past, and other types, are ignored, as DynamoDB
//! does. The sweep deletes each expired item through `Staging` under the
//! item's lock, after checking again that it is still expired, so indexes
//! and streams are maintained and a concurrent update that extends the
//! TTL wins. Its deletes consume no capacity (they never go through the
//! request path that accounts it) and their stream records carry the
//! service identity.
//!
//! The sweep scans each TTL-enabled table; its cost is a scan of the table
//! per sweep (an expiry index would make it proportional to the expired
//! items; not built yet).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::catalogue::{KvState, TableHandle};
use super::error::{Error, Result};
use super::schema::{TableDefinition, constraint_error};
use super::write::{Staging, read_item};
use crate::Database;
use crate::db::DatabaseInner;
use crate::partition::keyspace_prefix;
use crate::storage::{Direction, WriteBatch};
use crate::value::{AttributeValue, Item, decode_item};

/// TTL values further in the past than this are ignored: five years (of
/// 365.2425 days), as DynamoDB does.
pub const TTL_IGNORED_AFTER: Duration = Duration::from_secs(157_784_760);
/// How often the background sweep runs by default (the bound on how late
/// an expired item is deleted): 1 second.
pub const DEFAULT_TTL_SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// The most items one sweep deletes per table (the rest wait for the next).
const SWEEP_ITEMS_MAX: usize = 10_000;
/// The longest TTL attribute name: 255 bytes.
const ATTRIBUTE_NAME_BYTES_MAX: usize = 255;

/// A table's TTL setting.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimeToLiveSpecification {
    /// The attribute holding each item's expiry (epoch seconds).
    pub attribute_name: String,
    /// Whether expired items are deleted.
    pub enabled: bool,
}

/// Whether TTL is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeToLiveStatus {
    /// Being enabled (never reported: changes are immediate here).
    Enabling,
    /// Being disabled (never reported).
    Disabling,
    /// Expired items are deleted.
    Enabled,
    /// Nothing expires.
    Disabled,
}

/// `describe_time_to_live`'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeToLiveDescription {
    /// Whether TTL is on.
    pub time_to_live_status: TimeToLiveStatus,
    /// The TTL attribute, when enabled.
    pub attribute_name: Option<String>,
}

/// An `update_time_to_live` request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct UpdateTimeToLive {
    db: Database,
    table: String,
    attribute_name: Option<String>,
    enabled: Option<bool>,
}

/// What `update_time_to_live` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateTimeToLiveOutput {
    /// The setting as applied.
    pub time_to_live_specification: TimeToLiveSpecification,
}

impl UpdateTimeToLive {
    pub(crate) fn new(db: Database, table: String) -> Self {
        Self {
            db,
            table,
            attribute_name: None,
            enabled: None,
        }
    }

    /// The TTL attribute (required; when disabling, the current one).
    pub fn attribute_name(mut self, name: impl Into<String>) -> Self {
        self.attribute_name = Some(name.into());
        self
    }

    /// Enables or disables TTL (required).
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = Some(enabled);
        self
    }

    /// Runs the request.
    pub fn send(self) -> Result<UpdateTimeToLiveOutput> {
        let (Some(name), Some(enabled)) = (self.attribute_name, self.enabled) else {
            return Err(Error::validation(
                "TimeToLiveSpecification requires both AttributeName and Enabled",
            ));
        };
        if name.is_empty() || name.len() > ATTRIBUTE_NAME_BYTES_MAX {
            return Err(constraint_error(
                &name,
                "timeToLiveSpecification.attributeName",
                "Member must have length less than or equal to 255",
            ));
        }
        let inner = &self.db.inner;
        let _ddl = inner.kv.ddl.lock();
        let handle = inner.kv.table(&self.table)?;
        let mut definition = (*handle.definition()).clone();
        let current = definition.time_to_live.as_ref().filter(|t| t.enabled);
        match (current, enabled) {
            (Some(_), true) => return Err(Error::validation("TimeToLive is already enabled")),
            (None, false) => return Err(Error::validation("TimeToLive is already disabled")),
            (Some(current), false) if current.attribute_name != name => {
                return Err(Error::validation(format!(
                    "TimeToLive is active on a different AttributeName: current AttributeName \
                     is {}",
                    current.attribute_name
                )));
            }
            _ => {}
        }
        let specification = TimeToLiveSpecification {
            attribute_name: name,
            enabled,
        };
        definition.time_to_live = Some(specification.clone());
        let mut batch = WriteBatch::new();
        KvState::put_definition(&mut batch, &definition)?;
        inner.engine.write(batch)?;
        {
            let _gate = handle.gate.write();
            handle.set_definition(definition);
        }
        Ok(UpdateTimeToLiveOutput {
            time_to_live_specification: specification,
        })
    }
}

/// A `describe_time_to_live` request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct DescribeTimeToLive {
    db: Database,
    table: String,
}

/// What `describe_time_to_live` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeTimeToLiveOutput {
    /// The setting.
    pub time_to_live_description: TimeToLiveDescription,
}

impl DescribeTimeToLive {
    pub(crate) fn new(db: Database, table: String) -> Self {
        Self { db, table }
    }

    /// Runs the request.
    pub fn send(self) -> Result<DescribeTimeToLiveOutput> {
        let handle = self.db.inner.kv.table(&self.table)?;
        let definition = handle.definition();
        let enabled = definition.time_to_live.as_ref().filter(|t| t.enabled);
        Ok(DescribeTimeToLiveOutput {
            time_to_live_description: TimeToLiveDescription {
                time_to_live_status: if enabled.is_some() {
                    TimeToLiveStatus::Enabled
                } else {
                    TimeToLiveStatus::Disabled
                },
                attribute_name: enabled.map(|t| t.attribute_name.clone()),
            },
        })
    }
}

/// Whether `item` has expired at `now` (seconds since the epoch) by its
/// attribute `name`.
pub(crate) fn is_expired(item: &Item, name: &str, now: Duration) -> bool {
    let Some(AttributeValue::N(number)) = item.get(name) else {
        return false;
    };
    let expiry = number.to_f64();
    let now = now.as_secs_f64();
    expiry <= now && expiry >= now - TTL_IGNORED_AFTER.as_secs_f64()
}

/// The rule hiding expired-but-unswept items from reads, when the
/// database was opened with `ttl_hide_expired_items(true)`.
#[derive(Debug, Clone)]
pub(crate) struct Expiry {
    attribute: String,
    now: Duration,
}

impl Expiry {
    /// The rule for `definition`'s reads now (`None`: nothing is hidden).
    pub(crate) fn of(db: &DatabaseInner, definition: &TableDefinition) -> Option<Self> {
        if !db.ttl_hide_expired_items {
            return None;
        }
        let ttl = definition.time_to_live.as_ref().filter(|t| t.enabled)?;
        Some(Self {
            attribute: ttl.attribute_name.clone(),
            now: db.clock.since_epoch(),
        })
    }

    /// Whether `item` is hidden (an index entry that does not project the
    /// TTL attribute cannot tell, and is shown).
    pub(crate) fn hides(&self, item: &Item) -> bool {
        is_expired(item, &self.attribute, self.now)
    }
}

/// Whether a read of `table` hides `item` as expired.
pub(crate) fn hides(db: &DatabaseInner, table: &str, item: &Item) -> bool {
    db.ttl_hide_expired_items
        && db
            .kv
            .table(table)
            .ok()
            .and_then(|handle| Expiry::of(db, &handle.definition()))
            .is_some_and(|expiry| expiry.hides(item))
}

/// Deletes the expired items of every TTL-enabled table; returns how many.
pub(crate) fn sweep_expired(db: &DatabaseInner) -> Result<usize> {
    let mut deleted = 0;
    for handle in db.kv.handles() {
        let definition = handle.definition();
        let Some(ttl) = definition.time_to_live.as_ref().filter(|t| t.enabled) else {
            continue;
        };
        deleted += sweep_table(db, &handle, &ttl.attribute_name)?;
    }
    Ok(deleted)
}

fn sweep_table(db: &DatabaseInner, handle: &Arc<TableHandle>, name: &str) -> Result<usize> {
    let _quiet = db.kv.quiesce.read();
    if db.kv.is_closed() {
        return Ok(0);
    }
    let now = db.clock.since_epoch();
    let keyspace = handle.definition().keyspace;
    let mut expired = Vec::new();
    for row in db
        .engine
        .prefix(&keyspace_prefix(keyspace), Direction::Forward, None)?
    {
        let (key, value) = row?;
        let item = decode_item(&value).map_err(|e| {
            Error::Storage(crate::storage::StorageError::corruption(
                "item row",
                0,
                e.to_string(),
            ))
        })?;
        if is_expired(&item, name, now) {
            expired.push(key.to_vec());
            if expired.len() == SWEEP_ITEMS_MAX {
                break;
            }
        }
    }
    let mut deleted = 0;
    for row_key in expired {
        if delete_if_expired(db, handle, &row_key, name, now)? {
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// Deletes the item at `row_key` if it is (still) expired, as the service.
fn delete_if_expired(
    db: &DatabaseInner,
    table: &Arc<TableHandle>,
    row_key: &[u8],
    name: &str,
    now: Duration,
) -> Result<bool> {
    let _gate = table.gate.read();
    if table.dropped.load(Ordering::Acquire) {
        return Ok(false);
    }
    let definition = table.definition();
    let _lock = db.kv.locks.lock(row_key);
    let Some(old) = read_item(db, row_key)? else {
        return Ok(false);
    };
    if !is_expired(&old, name, now) {
        return Ok(false);
    }
    let mut staging = Staging::new(db);
    staging.by_service();
    staging.stage(table, &definition, row_key, Some(&old), None)?;
    staging.commit()?;
    Ok(true)
}

/// Implements the TTL operations on [`Database`].
impl Database {
    /// Starts an `UpdateTimeToLive` request.
    pub fn update_time_to_live(&self, table: impl Into<String>) -> UpdateTimeToLive {
        UpdateTimeToLive::new(self.clone(), table.into())
    }

    /// Starts a `DescribeTimeToLive` request.
    pub fn describe_time_to_live(&self, table: impl Into<String>) -> DescribeTimeToLive {
        DescribeTimeToLive::new(self.clone(), table.into())
    }

    /// Runs the TTL sweep now (the background sweep runs it every
    /// `DatabaseOptions::ttl_sweep_interval`); returns how many expired
    /// items it deleted.
    pub fn run_ttl_sweep_now(&self) -> Result<usize> {
        sweep_expired(&self.inner)
    }

    /// Waits until the background sweeper has run a whole round that
    /// started after this call (tests use it instead of sleeping); false if
    /// background threads are off.
    #[doc(hidden)]
    pub fn wait_for_background_sweep(&self) -> bool {
        self.inner.sweeper.wait_for_round()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item;

    #[test]
    fn only_recent_past_numbers_expire() {
        let now = Duration::from_secs(1_700_000_000);
        let five_years = TTL_IGNORED_AFTER.as_secs();
        let cases = [
            (item! { "t" => 1_700_000_000 }, true),
            (item! { "t" => 1_699_999_999 }, true),
            (item! { "t" => 1_700_000_001 }, false),
            (item! { "t" => 1_700_000_000 - five_years }, true),
            (item! { "t" => 1_700_000_000 - five_years - 1 }, false),
            (item! { "t" => "1600000000" }, false),
            (item! { "other" => 1 }, false),
        ];
        for (item, expired) in cases {
            assert_eq!(is_expired(&item, "t", now), expired, "{item:?}");
        }
    }
}
