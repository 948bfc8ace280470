//! Where reads are served from. A consistent read (and every read by
//! default) sees the latest committed state. With
//! `DatabaseOptions::eventual_read_staleness` set, an eventually consistent
//! read may instead be served from a shared snapshot at most that old —
//! what a read replica would serve — which readers reuse instead of each
//! taking their own.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::error::Result;
use crate::db::DatabaseInner;
use crate::storage::Snapshot;
use crate::value::{Item, decode_item};

/// The shared snapshot of eventually consistent reads.
#[derive(Debug, Default)]
pub(crate) struct EventualView {
    /// The snapshot and when (wall clock, since the epoch) it was taken.
    current: Mutex<Option<(Duration, Arc<Snapshot>)>>,
}

impl EventualView {
    /// The snapshot an eventually consistent read may use now, or `None`
    /// to read the latest state.
    pub(crate) fn snapshot(
        &self,
        db: &DatabaseInner,
        consistent: bool,
    ) -> Result<Option<Arc<Snapshot>>> {
        let bound = db.eventual_read_staleness;
        if consistent || bound.is_zero() {
            return Ok(None);
        }
        let now = db.clock.since_epoch();
        let mut current = self.current.lock();
        if let Some((taken, snapshot)) = current.as_ref()
            && now.saturating_sub(*taken) <= bound
        {
            return Ok(Some(Arc::clone(snapshot)));
        }
        let snapshot = Arc::new(db.engine.snapshot()?);
        *current = Some((now, Arc::clone(&snapshot)));
        Ok(Some(snapshot))
    }
}

/// Reads and decodes the item at `row_key`, now or as of `snapshot`.
pub(crate) fn read_item_at(
    db: &DatabaseInner,
    row_key: &[u8],
    snapshot: Option<&Snapshot>,
) -> Result<Option<Item>> {
    let bytes = match snapshot {
        Some(snapshot) => db.engine.get_at(snapshot, row_key)?,
        None => db.engine.get(row_key)?,
    };
    match bytes {
        Some(bytes) => Ok(Some(decode_item(&bytes)?)),
        None => Ok(None),
    }
}
