//! Incarnation ids: telling one life of a replica from the next when it is
//! restored empty under its old id (a wipe).
//!
//! A replica's *incarnation* is the wall millis of its birth (the first
//! `configure`, stored in the birth row): a restored replica is born later,
//! so its incarnation is larger. Outbox positions count within one life.
//!
//! - **Messages carry it.** `Changes` and `Copy` carry the sender's
//!   incarnation; `Ack` carries the acknowledging replica's and the one of
//!   the origin whose positions it acknowledges.
//! - **Receivers record it** in the cursor row of each origin
//!   ([`observe`]). A message of an older incarnation is ignored: its
//!   positions and acknowledgements belong to a life that is gone. One of
//!   a newer incarnation *resets* the cursor: positions restart at 0
//!   (nothing of the new life was applied here, and the new life collects
//!   nothing until this replica acknowledges it under its new
//!   incarnation), the stable timestamp reached with the earlier lives is
//!   kept as `before` (copies skip earlier-life writes only up to it), the
//!   origin's acknowledgements of this replica's outbox are forgotten (they
//!   were the earlier life's: counting them would collect entries and own
//!   tombstones the new life never saw), and a copy from the origin in
//!   progress starts again (its position counted in the old numbering).
//!   The reset does not start a copy from the new life: its tables are not
//!   complete until its own copies end; the new life asks for that itself
//!   (below).
//! - **A sender ignores acknowledgements of its earlier lives**, so a
//!   restored replica that issues more positions than its earlier life had
//!   is never taken to have them applied, and never mistakes such an
//!   acknowledgement for a peer ahead of it.
//! - **A new life copies only once every peer knows it.** A new database
//!   asks for copy pages only after every peer acknowledged its current
//!   incarnation (`knows_me`): from then on no peer counts an earlier
//!   life's acknowledgement, so a peer that collected one of its deletes'
//!   tombstones on such an acknowledgement did so before, when every peer
//!   had applied the delete, and the pages read after reflect it.
//! - **Rebirth.** A copy page into a new database that holds a write of its
//!   own id older than its birth proves an earlier life whose writes may
//!   have reached only some peers (they are in no outbox any more). The
//!   replica notes it durably (the rebirth row) and, once its copies end,
//!   skips one outbox position ([`announce_rebirth`]): every peer then
//!   sees a range starting after its cursor and copies this replica's
//!   tables, which by then hold every peer's.

use super::clock::ReplicaId;
use super::error::Result;
use super::rows::{self, CopyProgress, Cursor};
use super::state::{Config, CopyState};
use super::step::{cursor_of, set_synced};
use crate::db::DatabaseInner;
use crate::storage::{Direction, WriteBatch};

/// How a message's incarnation of its sender compares with the one known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// An earlier life of the sender: ignore the message.
    Stale,
    /// The life known here (or the first one heard of, now adopted).
    Current,
    /// A newer life: the cursor was reset.
    Newer,
}

/// Compares `incarnation` of `peer` with its cursor's, adopting it if none
/// is recorded and resetting the cursor if it is newer.
pub(crate) fn observe(
    db: &DatabaseInner,
    config: &Config,
    peer: ReplicaId,
    incarnation: u64,
) -> Result<Seen> {
    let cursor = cursor_of(db, peer)?;
    match cursor.incarnation {
        Some(known) if incarnation < known => Ok(Seen::Stale),
        Some(known) if incarnation == known => Ok(Seen::Current),
        None => {
            let adopted = Cursor {
                incarnation: Some(incarnation),
                ..cursor
            };
            write_cursor(db, peer, adopted, None)?;
            Ok(Seen::Current)
        }
        Some(_) => {
            reset(db, config, peer, cursor, incarnation)?;
            Ok(Seen::Newer)
        }
    }
}

fn write_cursor(
    db: &DatabaseInner,
    peer: ReplicaId,
    cursor: Cursor,
    copy: Option<&CopyProgress>,
) -> Result<()> {
    let mut batch = WriteBatch::new();
    batch.put(&rows::cursor_key(peer), &rows::encode_cursor(cursor));
    if let Some(progress) = copy {
        batch.put(&rows::copy_key(peer), &rows::encode_copy(progress));
    }
    db.engine.write(batch)?;
    db.multi_active.peers.lock().entry(peer).or_default().cursor = Some(cursor);
    Ok(())
}

/// `peer` was restored under its id (see the module doc).
fn reset(
    db: &DatabaseInner,
    config: &Config,
    peer: ReplicaId,
    cursor: Cursor,
    incarnation: u64,
) -> Result<()> {
    let state = &db.multi_active;
    let reset = Cursor {
        applied_through: 0,
        stable: cursor.stable,
        incarnation: Some(incarnation),
        before: cursor.before.max(cursor.stable),
    };
    let restarted = state.copies.lock().get(&peer).map(|copy| CopyProgress {
        copy_id: super::copy::next_copy_id(db),
        skip_applied: copy.progress.skip_applied,
        through: None,
        table: config.tables.iter().next().cloned().unwrap_or_default(),
        after: Vec::new(),
    });
    write_cursor(db, peer, reset, restarted.as_ref())?;
    if let Some(progress) = restarted {
        state.copies.lock().insert(
            peer,
            CopyState {
                progress,
                requested: false,
            },
        );
    }
    {
        let mut peers = state.peers.lock();
        let progress = peers.entry(peer).or_default();
        progress.acked = None;
        progress.last_sent = None;
        progress.knows_me = false;
        progress.acknowledged = None;
    }
    set_synced(db, peer, false);
    state.stats.lock().peer_rebirths += 1;
    Ok(())
}

/// Notes (durably, once) that a copy showed a write of this replica's id
/// from before its birth: it had an earlier life.
pub(crate) fn note_earlier_life(db: &DatabaseInner) -> Result<()> {
    let state = &db.multi_active;
    let mut owed = state.rebirth_owed.lock();
    if !*owed {
        let mut batch = WriteBatch::new();
        batch.put(&rows::rebirth_key(), &[]);
        db.engine.write(batch)?;
        *owed = true;
    }
    Ok(())
}

/// Skips one outbox position, once this replica owes a rebirth and its
/// copies ended, so every peer's next range starts after its cursor and it
/// copies this replica's tables (see the module doc). The entries up to the
/// skipped position go: the copies cover them. Waits while a local write
/// holds a reserved position.
pub(crate) fn announce_rebirth(db: &DatabaseInner, config: &Config) -> Result<()> {
    let state = &db.multi_active;
    if !*state.rebirth_owed.lock() || !super::copy::caught_up(db, config) {
        return Ok(());
    }
    let floor = {
        let mut log = state.log.state.lock();
        if !log.in_flight.is_empty() {
            return Ok(());
        }
        let floor = log.next_seq;
        log.next_seq = floor + 1;
        floor
    };
    let collected_through = *state.collected_through.lock();
    let mut batch = WriteBatch::new();
    let range = rows::outbox_key(collected_through + 1)..rows::outbox_key(floor + 1);
    for row in db.engine.range(range, Direction::Forward, None)? {
        let (key, _) = row?;
        batch.delete(&key);
    }
    batch.put(&rows::clock_key(), &state.log.clock_row());
    batch.delete(&rows::rebirth_key());
    db.engine.write(batch)?;
    *state.collected_through.lock() = floor;
    *state.rebirth_owed.lock() = false;
    for progress in state.peers.lock().values_mut() {
        progress.last_sent = None;
    }
    state.stats.lock().outbox_restarts += 1;
    Ok(())
}
