//! Table copies: how a replica that lacks changes a peer no longer keeps
//! in its outbox (it is new to the group, or it lost its state) is brought
//! up to date, as DynamoDB backfills a new replica of a global table.
//!
//! # Protocol (the receiver pulls)
//!
//! - **Trigger.** A `Changes` message whose range starts after the
//!   receiver's cursor for its origin can only mean that the origin
//!   collected entries the receiver never applied: an origin starts a
//!   range at an acknowledged position, or at its collected floor, which
//!   every peer once acknowledged, and a receiver's cursor never moves
//!   back while it keeps its state. So the receiver starts a copy from that
//!   origin (once; a durable copy row, `09 08 <origin>`, records it).
//! - **A new database copies its first peers.** A database configured for
//!   the first time (new to the group, or restored empty) owes a copy from
//!   every peer of that configuration, even one whose outbox is complete:
//!   that outbox may still hold an old change that a delete at a third
//!   replica superseded, a delete whose tombstone that replica collected
//!   before the newcomer was in the group; applied raw, the change would
//!   bring the item back. The peer's table already reflects the delete,
//!   and the copy moves the cursor past the old entry. While a copy from
//!   an origin runs, its raw changes are not applied. (Peers added to an
//!   existing replica later are followed through their outboxes: they
//!   bring their own writes only.) In a group linked before its first
//!   write these copies are of empty tables.
//! - **Pages.** The receiver asks for its replicated tables in name order,
//!   a page at a time ([`Message::CopyRequest`]: table, last row received).
//!   The origin answers with the next [`COPY_PAGE_ITEMS_MAX`] items of its
//!   table in row order ([`Message::Copy`]), read from its version rows so
//!   tombstones come too (as deletes), each with its stored version, and
//!   its outbox position `through` read *before* the items. The origin
//!   keeps no state per copy: any page, repeated or not, can be served
//!   again.
//! - **Apply.** Each copied item goes through the same last-writer-wins
//!   path as a change (`apply.rs`) and is counted like one in
//!   [`TableStats`](super::TableStats): an item written by a third replica
//!   keeps that replica's version, and one older than the stored version
//!   loses and counts as a conflict (it is a write that lost, whichever way
//!   it came). An item whose write the receiver already applied — its own
//!   since its birth, a peer's up to the stable timestamp of its cursor
//!   (a write of the peer's earlier life, before its current incarnation,
//!   only up to the stable timestamp reached with that life, `before`) —
//!   is skipped without comparison (counted in
//!   [`ReplicaStats::copy_items_skipped`]): if its key has no version here,
//!   a newer delete's tombstone was collected, and the copier, which may
//!   not have seen that delete yet, must not bring it back. Only in a copy
//!   into an established replica: a new or restored one has collected
//!   nothing (it collects no tombstone before every peer's cursor has a
//!   stable timestamp, so not before its copies end), and a peer restored
//!   under its old id advertises stable timestamps that do not cover the
//!   writes of its earlier life, which a copy from a third replica brings.
//!   Re-applying a page is harmless, so a page's items are applied without a cursor and
//!   only then is the copy row moved past the page (one write).
//! - **Tombstones wait for every acknowledgement.** A replica removes the
//!   tombstone of its own delete only once every peer acknowledged the
//!   delete's outbox entry (`step.rs`): a peer that takes the entry's
//!   position from a copy learns of the delete only from the tombstone.
//!   It removes a peer's only below what that peer announced every replica
//!   applied (`Changes::acknowledged`): if the peer is wiped first, the
//!   tombstones of its deletes are all that is left of them, and its new
//!   life copies them (`incarnation.rs`).
//! - **Incarnations.** Pages carry the origin's incarnation; a page of an
//!   earlier life is ignored, and one of a newer life restarts the copy
//!   (`incarnation.rs`). A replica asks for pages only once every peer
//!   knows its current incarnation.
//! - **Finish.** The first page applied fixes the copy's `through`: every
//!   later page is read after it (the receiver asks for the next page only
//!   once it applied the previous), so the whole copy reflects every outbox
//!   entry of the origin up to `through`. When the last page of the last
//!   table is applied, the receiver's cursor for the origin moves to
//!   `through` (never back) in the same batch that removes the copy row,
//!   and it acknowledges; the origin goes on shipping its outbox from
//!   there.
//! - **Loss, repeats, reorder, restarts.** A page that does not answer the
//!   copy's current position (another copy id, table or row) is ignored;
//!   a lost request or page is asked again with the heartbeat; a restarted
//!   receiver resumes from its copy row (the page after the last applied
//!   one), a restarted origin serves it as before.
//!
//! # An origin that lost its state
//!
//! A replica restored empty under its old id is a new incarnation: its
//! peers reset their cursors for it, it copies their tables once every
//! peer knows its new incarnation, and if those copies show writes of its
//! earlier life it then makes every peer copy its tables in turn (see
//! `incarnation.rs`).

use std::collections::BTreeMap;
use std::ops::Bound;

use super::apply::{Outcome, Refusal, apply_change};
use super::clock::{ReplicaId, Timestamp};
use super::error::{Error, Result};
use super::rows::{self, Change, CopyProgress, Cursor};
use super::state::{Config, CopyState};
use super::step::StepReport;
use super::transport::{Message, Transport};
use crate::db::DatabaseInner;
use crate::kv::TableDefinition;
use crate::partition::{keyspace_prefix, prefix_successor};
use crate::storage::{Direction, Durability, WriteBatch};
use crate::value::{Item, decode_key_value};

/// Items per copy page: at most 400 KB each, so a page stays far below the
/// TCP transport's frame bound.
pub const COPY_PAGE_ITEMS_MAX: usize = 128;
/// Copy pages a replica serves per step (further requests wait for their
/// repeat, so a copy never starves the replica's own work).
pub const COPY_PAGES_SERVED_PER_STEP_MAX: usize = 8;

/// A page of a copy, as it arrived.
pub(crate) struct Page {
    pub(crate) copy_id: u64,
    pub(crate) table: String,
    pub(crate) after: Vec<u8>,
    pub(crate) next: Option<Vec<u8>>,
    pub(crate) through: u64,
    pub(crate) stable: Timestamp,
    pub(crate) items: Vec<Change>,
}

/// Adds to `batch` the copies a database owes at its first configuration
/// (one from each peer); returns them, to be registered once the batch
/// committed.
pub(crate) fn owed_at_birth(
    db: &DatabaseInner,
    peers: &[ReplicaId],
    batch: &mut WriteBatch,
) -> Vec<(ReplicaId, CopyProgress)> {
    peers
        .iter()
        .map(|&peer| {
            // The table is chosen when the copy is first asked for (the
            // replicated tables are usually set after the configuration).
            let progress = CopyProgress {
                copy_id: next_copy_id(db),
                skip_applied: false,
                through: None,
                table: String::new(),
                after: Vec::new(),
            };
            batch.put(&rows::copy_key(peer), &rows::encode_copy(&progress));
            (peer, progress)
        })
        .collect()
}

/// Registers copies whose rows committed.
pub(crate) fn register(db: &DatabaseInner, copies: Vec<(ReplicaId, CopyProgress)>) {
    let state = &db.multi_active;
    for (origin, progress) in copies {
        state.copies.lock().insert(
            origin,
            CopyState {
                progress,
                requested: false,
            },
        );
        let mut stats = state.stats.lock();
        stats.copies_started += 1;
        stats.copying_from.insert(origin);
    }
}

pub(crate) fn next_copy_id(db: &DatabaseInner) -> u64 {
    let now_millis = u64::try_from(db.clock.since_epoch().as_millis()).unwrap_or(u64::MAX);
    let mut last = db.multi_active.last_copy_id.lock();
    *last = now_millis.max(*last + 1);
    *last
}

/// Starts a copy from `origin` unless one is in progress: a range from it
/// started after this replica's cursor.
pub(crate) fn start(
    db: &DatabaseInner,
    config: &Config,
    origin: ReplicaId,
    skip_applied: bool,
) -> Result<()> {
    let state = &db.multi_active;
    if state.copies.lock().contains_key(&origin) {
        return Ok(());
    }
    let copy_id = next_copy_id(db);
    // No replicated table: the copy still fetches the origin's position.
    let table = config.tables.iter().next().cloned().unwrap_or_default();
    let progress = CopyProgress {
        copy_id,
        skip_applied,
        through: None,
        table,
        after: Vec::new(),
    };
    let mut batch = WriteBatch::new();
    batch.put(&rows::copy_key(origin), &rows::encode_copy(&progress));
    db.engine.write(batch)?;
    state.copies.lock().insert(
        origin,
        CopyState {
            progress,
            requested: false,
        },
    );
    super::step::set_synced(db, origin, false);
    let mut stats = state.stats.lock();
    stats.copies_started += 1;
    stats.copying_from.insert(origin);
    Ok(())
}

/// Whether this replica follows every peer's outbox and copies nothing.
pub(crate) fn caught_up(db: &DatabaseInner, config: &Config) -> bool {
    let state = &db.multi_active;
    if !state.copies.lock().is_empty() {
        return false;
    }
    let peers = state.peers.lock();
    config
        .peers
        .iter()
        .all(|peer| peers.get(peer).is_some_and(|p| p.synced))
}

/// Asks each origin being copied from for the page at the copy's position,
/// if not asked yet or with the heartbeat.
pub(crate) fn request(
    db: &DatabaseInner,
    config: &Config,
    transport: &dyn Transport,
    heartbeat: bool,
) {
    let state = &db.multi_active;
    // Pages are asked for only once every peer knows this replica's
    // current incarnation (`incarnation.rs`).
    {
        let peers = state.peers.lock();
        if !config
            .peers
            .iter()
            .all(|peer| peers.get(peer).is_some_and(|p| p.knows_me))
        {
            return;
        }
    }
    let mut requests = Vec::new();
    for (&origin, copy) in state.copies.lock().iter_mut() {
        if copy.requested && !heartbeat {
            continue;
        }
        copy.requested = true;
        if copy.progress.through.is_none() && copy.progress.after.is_empty() {
            // Not begun: it starts at the first table replicated now.
            copy.progress.table = config.tables.iter().next().cloned().unwrap_or_default();
        }
        requests.push(Message::CopyRequest {
            from: config.replica,
            to: origin,
            copy_id: copy.progress.copy_id,
            table: copy.progress.table.clone(),
            after: copy.progress.after.clone(),
        });
    }
    let sent = requests.len() as u64;
    for message in requests {
        transport.send(message);
    }
    state.stats.lock().messages_sent += sent;
}

/// Answers a copy request of `peer` with one page of `table`.
pub(crate) fn serve(
    db: &DatabaseInner,
    config: &Config,
    transport: &dyn Transport,
    peer: ReplicaId,
    copy_id: u64,
    table: String,
    after: Vec<u8>,
) -> Result<()> {
    let state = &db.multi_active;
    // `through` before the items: every entry up to it has committed, so
    // the items read next reflect it.
    let (through, stable) = state.log.safe_point();
    let (items, next) = if config.tables.contains(&table) {
        match db.kv.table(&table) {
            Ok(handle) => read_page(db, &handle.definition(), &table, &after)?,
            Err(_) => (Vec::new(), None),
        }
    } else {
        // Not replicated here: nothing to copy, and the page still carries
        // the position.
        (Vec::new(), None)
    };
    // The peer will hold these items and claim the entries up to
    // `through`: both must survive a crash here.
    if db.engine.durability() == Durability::Buffered {
        db.engine.sync()?;
    }
    transport.send(Message::Copy {
        from: config.replica,
        to: peer,
        copy_id,
        table,
        after,
        next,
        through,
        stable,
        incarnation: state.incarnation(),
        items,
    });
    let mut stats = state.stats.lock();
    stats.messages_sent += 1;
    stats.copy_pages_served += 1;
    Ok(())
}

/// The items of `table` after the row `after` (keyspace id stripped), up
/// to a page, and where the next page starts if any is left.
fn read_page(
    db: &DatabaseInner,
    definition: &TableDefinition,
    table: &str,
    after: &[u8],
) -> Result<(Vec<Change>, Option<Vec<u8>>)> {
    let keyspace = keyspace_prefix(definition.keyspace);
    let prefix = rows::version_key(&keyspace);
    let mut start = prefix.clone();
    start.extend_from_slice(after);
    let start = if after.is_empty() {
        Bound::Included(start)
    } else {
        Bound::Excluded(start)
    };
    let end = match prefix_successor(&prefix) {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    };
    let mut items = Vec::new();
    let mut last = Vec::new();
    for row in db.engine.range((start, end), Direction::Forward, None)? {
        let (key, value) = row?;
        if items.len() >= COPY_PAGE_ITEMS_MAX {
            return Ok((items, Some(last)));
        }
        let row_key = key
            .get(prefix.len() - keyspace.len()..)
            .ok_or_else(|| Error::corruption("item version", "short key"))?;
        let stored = rows::decode_stored(&value)?;
        // A version row without its item (a tombstone) copies as a delete.
        let item = crate::kv::read_item(db, row_key)?;
        items.push(Change {
            seq: 0,
            table: table.to_owned(),
            key: key_of_row(definition, row_key)?,
            version: stored.version,
            item,
        });
        last = row_key[keyspace.len()..].to_vec();
    }
    Ok((items, None))
}

/// The key attributes of the item at `row_key` (`keyspace | token |
/// partition key | sort key`), decoded: a tombstone has no item to take
/// them from.
fn key_of_row(definition: &TableDefinition, row_key: &[u8]) -> Result<Item> {
    let bad = |reason: &str| Error::corruption("item row key", reason.to_owned());
    let mut rest = row_key.get(12..).ok_or_else(|| bad("short key"))?;
    let key = &definition.key;
    let mut out = Item::default();
    let (name, scalar) = &key.partition_key;
    let (value, used) =
        decode_key_value(*scalar, rest).map_err(|e| bad(&format!("partition key: {e}")))?;
    out.insert(name.clone(), value);
    rest = &rest[used..];
    if let Some((name, scalar)) = &key.sort_key {
        let (value, used) =
            decode_key_value(*scalar, rest).map_err(|e| bad(&format!("sort key: {e}")))?;
        out.insert(name.clone(), value);
        rest = &rest[used..];
    }
    if !rest.is_empty() {
        return Err(bad("trailing bytes"));
    }
    Ok(out)
}

/// Applies a page from `origin` if it answers the copy's position;
/// returns the new cursor when it finished the copy.
pub(crate) fn receive_page(
    db: &DatabaseInner,
    config: &Config,
    origin: ReplicaId,
    page: Page,
    report: &mut StepReport,
) -> Result<Option<Cursor>> {
    let state = &db.multi_active;
    let Some(mut progress) = state
        .copies
        .lock()
        .get(&origin)
        .map(|copy| copy.progress.clone())
    else {
        return Ok(None);
    };
    if page.copy_id != progress.copy_id
        || page.table != progress.table
        || page.after != progress.after
        || page.items.iter().any(|item| item.table != page.table)
    {
        return Ok(None);
    }
    let birth = *state.birth.lock();
    if !progress.skip_applied
        && page
            .items
            .iter()
            .any(|item| item.version.replica == config.replica && item.version.timestamp < birth)
    {
        // A write of this id from before this database's birth: it had an
        // earlier life (`incarnation.rs`).
        super::incarnation::note_earlier_life(db)?;
    }
    for item in &page.items {
        if progress.skip_applied && already_applied(db, config, item)? {
            state.stats.lock().copy_items_skipped += 1;
            continue;
        }
        match apply_change(db, item, None) {
            Ok(outcome) => {
                // Counted like a change: a copied write that loses to a
                // newer stored one lost a conflict all the same.
                state.count(&item.table, |s| match outcome {
                    Outcome::Applied => s.applied += 1,
                    Outcome::Conflict => s.conflicts += 1,
                    Outcome::Duplicate => s.duplicates += 1,
                });
                if outcome == Outcome::Applied {
                    state.stats.lock().items_copied += 1;
                    report.copied += 1;
                }
            }
            Err(refusal) => {
                // The page is asked again with the heartbeat; what was
                // applied of it is skipped then.
                let mut stats = state.stats.lock();
                match refusal {
                    Refusal::ClockSkew => stats.rejected_clock_skew += 1,
                    Refusal::WaitingForTable => stats.waiting_for_table += 1,
                    Refusal::Failed(error) => {
                        stats.apply_errors += 1;
                        stats.last_error = Some(error.to_string());
                    }
                }
                return Ok(None);
            }
        }
    }
    super::step::observe_stable(db, config, page.stable);
    let (through, stable) = *progress.through.get_or_insert((page.through, page.stable));
    match page.next {
        Some(next) => progress.after = next,
        None => {
            let next_table = config
                .tables
                .range::<String, _>((Bound::Excluded(&progress.table), Bound::Unbounded))
                .next();
            match next_table {
                Some(table) => {
                    progress.table = table.clone();
                    progress.after = Vec::new();
                }
                None => return finish(db, origin, through, stable).map(Some),
            }
        }
    }
    let mut batch = WriteBatch::new();
    batch.put(&rows::copy_key(origin), &rows::encode_copy(&progress));
    db.engine.write(batch)?;
    state.copies.lock().insert(
        origin,
        CopyState {
            progress,
            requested: false,
        },
    );
    Ok(None)
}

/// Whether this replica already applied the copied item's write (or saw
/// it superseded): its own writes since its birth, and a peer's up to the
/// stable timestamp of its cursor. Such an item is skipped without a
/// comparison. If no version is stored for its key, a newer write
/// superseded it and its tombstone was collected: the copier may not have
/// seen that delete yet, and stable timestamps promise nothing about the
/// third-party versions a copy carries, so applied, the item would come
/// back. (And a replica's own writes never echo back through a copy.)
fn already_applied(db: &DatabaseInner, config: &Config, item: &Change) -> Result<bool> {
    let writer = item.version.replica;
    let timestamp = item.version.timestamp;
    Ok(if writer == config.replica {
        // An own version from before its birth is from an earlier life
        // under the same id (before it lost its state).
        timestamp >= *db.multi_active.birth.lock()
    } else if config.peers.contains(&writer) {
        let cursor = super::step::cursor_of(db, writer)?;
        match cursor.incarnation {
            // A write of an earlier life of the peer (before its current
            // birth): its current stable timestamp says nothing of it.
            Some(incarnation) if timestamp.wall_millis < incarnation => timestamp <= cursor.before,
            _ => timestamp <= cursor.stable,
        }
    } else {
        false
    })
}

/// Ends the copy from `origin`: its cursor moves to `through` (never
/// back) as the copy row goes.
fn finish(
    db: &DatabaseInner,
    origin: ReplicaId,
    through: u64,
    stable: Timestamp,
) -> Result<Cursor> {
    let state = &db.multi_active;
    let current = super::step::cursor_of(db, origin)?;
    let cursor = Cursor {
        applied_through: current.applied_through.max(through),
        stable: current.stable.max(stable),
        ..current
    };
    let mut batch = WriteBatch::new();
    batch.put(&rows::cursor_key(origin), &rows::encode_cursor(cursor));
    batch.delete(&rows::copy_key(origin));
    db.engine.write(batch)?;
    state.peers.lock().entry(origin).or_default().cursor = Some(cursor);
    state.copies.lock().remove(&origin);
    super::step::set_synced(db, origin, true);
    let mut stats = state.stats.lock();
    stats.copies_finished += 1;
    stats.copying_from.remove(&origin);
    Ok(cursor)
}

/// The copy requests of one step, at most one per peer and
/// [`COPY_PAGES_SERVED_PER_STEP_MAX`] in all (the rest are repeated).
#[derive(Debug, Default)]
pub(crate) struct Requests(BTreeMap<ReplicaId, (u64, String, Vec<u8>)>);

impl Requests {
    /// Notes a request (the latest from a peer wins).
    pub(crate) fn add(&mut self, peer: ReplicaId, copy_id: u64, table: String, after: Vec<u8>) {
        self.0.insert(peer, (copy_id, table, after));
    }

    /// Serves the requests noted.
    pub(crate) fn serve(
        self,
        db: &DatabaseInner,
        config: &Config,
        transport: &dyn Transport,
    ) -> Result<()> {
        for (peer, (copy_id, table, after)) in
            self.0.into_iter().take(COPY_PAGES_SERVED_PER_STEP_MAX)
        {
            serve(db, config, transport, peer, copy_id, table, after)?;
        }
        Ok(())
    }
}
