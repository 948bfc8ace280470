//! One round of the protocol ([`step`]): receive and apply peers' changes
//! and acknowledge them, ship this replica's unacknowledged outbox to each
//! peer, then collect what every peer has passed — outbox entries they all
//! acknowledged, and tombstones older than every peer's stable timestamp.
//!
//! A peer's tombstone also waits until that peer announced that every
//! replica applied the delete (`Changes::acknowledged`; see `copy.rs`).
//!
//! Why tombstones wait for stability: a delete's tombstone keeps the
//! item's version so that an older write arriving later loses. A peer's
//! stable timestamp `s` promises that this replica has applied every write
//! that peer made with a timestamp up to `s`, and any later one will be
//! newer; so once a tombstone is older than every peer's stable timestamp,
//! nothing older can still arrive and it can go without resurrection.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use super::apply::{Outcome, Refusal, apply_change};
use super::clock::{ReplicaId, Timestamp};
use super::copy::{self, Page, Requests};
use super::error::Result;
use super::hook::read_stored;
use super::incarnation::{self, Seen};
use super::rows::{self, Change, Cursor};
use super::state::{Config, InjectedBug, MultiActiveState};
use super::transport::{Message, Transport};
use crate::db::DatabaseInner;
use crate::storage::{Direction, Durability, WriteBatch};

/// Messages taken from the transport per step.
pub const RECEIVE_MESSAGES_MAX: usize = 256;
/// Outbox entries per `Changes` message.
pub const SEND_CHANGES_MAX: usize = 512;
/// Every this many steps, each peer is sent a `Changes` message even if
/// nothing changed (it carries the stable timestamp and an implicit ask for
/// an acknowledgement).
pub const HEARTBEAT_EVERY_STEPS: u64 = 16;
/// Tombstones examined per step.
pub const COLLECT_TOMBSTONES_MAX: usize = 1024;

/// What one step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepReport {
    /// Messages received.
    pub received: usize,
    /// Remote changes applied (newer than the stored version).
    pub applied: usize,
    /// Remote changes that lost to a newer stored version.
    pub conflicts: usize,
    /// Local changes sent (repeats included).
    pub changes_sent: usize,
    /// Outbox entries removed (acknowledged by every peer).
    pub outbox_collected: usize,
    /// Tombstones removed.
    pub tombstones_collected: usize,
    /// Copied items applied (newer than the stored version).
    pub copied: usize,
}

/// Runs one round; does nothing until the replica is configured and
/// connected to a transport.
pub(crate) fn step(db: &DatabaseInner) -> Result<StepReport> {
    let state = &db.multi_active;
    let _one_at_a_time = state.step_lock.lock();
    let Some(config) = state.config.read().clone() else {
        return Ok(StepReport::default());
    };
    let Some(transport) = state.transport.read().clone() else {
        return Ok(StepReport::default());
    };
    let mut report = StepReport::default();
    receive(db, &config, transport.as_ref(), &mut report)?;
    send(db, &config, transport.as_ref(), &mut report)?;
    collect_outbox(db, &config, &mut report)?;
    collect_tombstones(db, &config, &mut report)?;
    Ok(report)
}

pub(super) fn cursor_of(db: &DatabaseInner, origin: ReplicaId) -> Result<Cursor> {
    let state = &db.multi_active;
    if let Some(cursor) = state.peers.lock().get(&origin).and_then(|p| p.cursor) {
        return Ok(cursor);
    }
    let cursor = match db.engine.get(&rows::cursor_key(origin))? {
        Some(bytes) => rows::decode_cursor(&bytes)?,
        None => Cursor::default(),
    };
    state.peers.lock().entry(origin).or_default().cursor = Some(cursor);
    Ok(cursor)
}

fn receive(
    db: &DatabaseInner,
    config: &Config,
    transport: &dyn Transport,
    report: &mut StepReport,
) -> Result<()> {
    let state = &db.multi_active;
    let messages = transport.receive(config.replica, RECEIVE_MESSAGES_MAX);
    report.received = messages.len();
    state.stats.lock().messages_received += messages.len() as u64;
    let me = state.incarnation();
    // Per origin: the position acknowledged and the origin's incarnation.
    let mut acks: BTreeMap<ReplicaId, (u64, u64)> = BTreeMap::new();
    let mut requests = Requests::default();
    let mut wrote = false;
    for message in messages {
        if !config.peers.contains(&message.from()) || message.to() != config.replica {
            continue;
        }
        match message {
            Message::Ack {
                from,
                incarnation,
                origin_incarnation,
                applied_through,
                ..
            } => {
                // An acknowledgement of an earlier life of this replica, or
                // from an earlier life of the peer, means nothing now.
                if origin_incarnation != me
                    || incarnation::observe(db, config, from, incarnation)? == Seen::Stale
                {
                    continue;
                }
                let mut peers = state.peers.lock();
                peers.entry(from).or_default().knows_me = true;
                let progress = peers.entry(from).or_default();
                progress.acked = Some(
                    progress
                        .acked
                        .map_or(applied_through, |a| a.max(applied_through)),
                );
            }
            Message::Changes {
                from,
                after,
                through,
                stable,
                incarnation,
                acknowledged,
                changes,
                ..
            } => {
                if incarnation::observe(db, config, from, incarnation)? == Seen::Stale {
                    continue;
                }
                {
                    let mut peers = state.peers.lock();
                    let known = &mut peers.entry(from).or_default().acknowledged;
                    if known.is_none_or(|k| acknowledged > k) {
                        *known = Some(acknowledged);
                        state.tombstones_dirty.store(true, Ordering::Relaxed);
                    }
                }
                let cursor = cursor_of(db, from)?;
                if after > cursor.applied_through {
                    // The origin no longer keeps what this replica lacks.
                    copy::start(db, config, from, true)?;
                }
                let copying = state.copies.lock().contains_key(&from);
                if !copying {
                    set_synced(db, from, true);
                }
                observe_stable(db, config, stable);
                // New positions, or (a heartbeat) a later stable timestamp
                // over positions already applied; none while a copy from
                // the origin runs (it covers them).
                let news = through > cursor.applied_through
                    || (through == cursor.applied_through && stable > cursor.stable);
                let cursor = if !copying && after <= cursor.applied_through && news {
                    wrote = true;
                    apply_range(db, from, cursor, through, stable, &changes, report)?
                } else {
                    cursor
                };
                acks.insert(from, (cursor.applied_through, incarnation));
            }
            Message::CopyRequest {
                from,
                copy_id,
                table,
                after,
                ..
            } => requests.add(from, copy_id, table, after),
            Message::Copy {
                from,
                copy_id,
                table,
                after,
                next,
                through,
                stable,
                incarnation,
                items,
                ..
            } => {
                // A page of an earlier life is stale; the first page of a
                // newer one restarts the copy (and does not answer it).
                if incarnation::observe(db, config, from, incarnation)? != Seen::Current {
                    continue;
                }
                wrote = true;
                let page = Page {
                    copy_id,
                    table,
                    after,
                    next,
                    through,
                    stable,
                    items,
                };
                if let Some(cursor) = copy::receive_page(db, config, from, page, report)? {
                    acks.insert(from, (cursor.applied_through, incarnation));
                }
            }
        }
    }
    requests.serve(db, config, transport)?;
    // An acknowledgement promises durability: the applied changes must
    // survive a crash, or the origin could collect entries still needed.
    if wrote && db.engine.durability() != Durability::Sync {
        db.engine.sync()?;
    }
    for (origin, (applied_through, origin_incarnation)) in acks {
        transport.send(Message::Ack {
            from: config.replica,
            to: origin,
            incarnation: me,
            origin_incarnation,
            applied_through,
        });
        state.stats.lock().messages_sent += 1;
    }
    Ok(())
}

/// Records whether this replica follows `peer`'s outbox.
pub(super) fn set_synced(db: &DatabaseInner, peer: ReplicaId, synced: bool) {
    let state = &db.multi_active;
    state.peers.lock().entry(peer).or_default().synced = synced;
    let mut stats = state.stats.lock();
    if synced {
        stats.synced_with.insert(peer);
    } else {
        stats.synced_with.remove(&peer);
    }
}

/// Moves the clock up to a peer's stable timestamp (unless it is beyond
/// the skew bound), so this replica's next writes order after everything
/// that peer did, deletes whose tombstones it already collected included:
/// what a replica that joins or lost its state needs before it writes.
pub(super) fn observe_stable(db: &DatabaseInner, config: &Config, stable: Timestamp) {
    let now_millis = u64::try_from(db.clock.since_epoch().as_millis()).unwrap_or(u64::MAX);
    // A refusal leaves the clock as it was; the next message tries again.
    let _ =
        db.multi_active
            .log
            .state
            .lock()
            .clock
            .observe(now_millis, stable, config.max_clock_skew);
}

/// Applies the changes of `(cursor, through]` in order, stopping at the
/// first that cannot be applied now; returns the new cursor.
fn apply_range(
    db: &DatabaseInner,
    origin: ReplicaId,
    mut cursor: Cursor,
    through: u64,
    stable: Timestamp,
    changes: &[Change],
    report: &mut StepReport,
) -> Result<Cursor> {
    let state = &db.multi_active;
    let mut ordered: Vec<&Change> = changes
        .iter()
        .filter(|c| c.seq > cursor.applied_through && c.seq <= through)
        .collect();
    ordered.sort_by_key(|c| c.seq);
    for change in ordered {
        let next = Cursor {
            applied_through: change.seq,
            ..cursor
        };
        let cursor_row = (rows::cursor_key(origin), rows::encode_cursor(next));
        match apply_change(db, change, Some((&cursor_row.0, &cursor_row.1))) {
            Ok(outcome) => {
                let now_millis =
                    u64::try_from(db.clock.since_epoch().as_millis()).unwrap_or(u64::MAX);
                let latency = now_millis.saturating_sub(change.version.timestamp.wall_millis);
                state.count(&change.table, |s| match outcome {
                    Outcome::Applied => {
                        s.applied += 1;
                        s.last_replication_latency_millis = Some(latency);
                    }
                    Outcome::Conflict => s.conflicts += 1,
                    Outcome::Duplicate => s.duplicates += 1,
                });
                match outcome {
                    Outcome::Applied => report.applied += 1,
                    Outcome::Conflict => report.conflicts += 1,
                    Outcome::Duplicate => {}
                }
                cursor = next;
            }
            Err(refusal) => {
                let mut stats = state.stats.lock();
                match refusal {
                    Refusal::ClockSkew => stats.rejected_clock_skew += 1,
                    Refusal::WaitingForTable => stats.waiting_for_table += 1,
                    Refusal::Failed(error) => {
                        stats.apply_errors += 1;
                        stats.last_error = Some(error.to_string());
                    }
                }
                drop(stats);
                state.peers.lock().entry(origin).or_default().cursor = Some(cursor);
                return Ok(cursor);
            }
        }
    }
    // The whole range is in: the origin's promise about `stable` holds.
    let done = Cursor {
        applied_through: through,
        stable: cursor.stable.max(stable),
        ..cursor
    };
    let mut batch = WriteBatch::new();
    batch.put(&rows::cursor_key(origin), &rows::encode_cursor(done));
    db.engine.write(batch)?;
    state.peers.lock().entry(origin).or_default().cursor = Some(done);
    Ok(done)
}

/// Where to start for a peer whose progress is not known: just before
/// the first outbox position still stored.
fn outbox_floor(db: &DatabaseInner, safe_seq: u64) -> u64 {
    (*db.multi_active.collected_through.lock()).min(safe_seq)
}

fn read_outbox(db: &DatabaseInner, after: u64, through: u64) -> Result<Vec<Change>> {
    let mut changes = Vec::new();
    if through <= after {
        return Ok(changes);
    }
    let range = rows::outbox_key(after + 1)..rows::outbox_key(through.saturating_add(1));
    for row in db.engine.range(range, Direction::Forward, None)? {
        let (key, value) = row?;
        let seq = rows::parse_outbox_key(&key)?;
        changes.push(rows::decode_entry(seq, &value)?);
        if changes.len() >= SEND_CHANGES_MAX {
            break;
        }
    }
    Ok(changes)
}

fn send(
    db: &DatabaseInner,
    config: &Config,
    transport: &dyn Transport,
    report: &mut StepReport,
) -> Result<()> {
    let state = &db.multi_active;
    let now_millis = u64::try_from(db.clock.since_epoch().as_millis()).unwrap_or(u64::MAX);
    state.log.advance_idle(now_millis);
    incarnation::announce_rebirth(db, config)?;
    let (safe_seq, stable) = state.log.safe_point();
    // `stable` may come from a peer's timestamp this replica observed; it
    // is a promise about this replica's future writes, so the clock must
    // not restart below it after a crash.
    {
        let mut persisted = state.persisted_clock.lock();
        if stable > *persisted {
            let mut batch = WriteBatch::new();
            batch.put(&rows::clock_key(), &state.log.clock_row());
            db.engine.write(batch)?;
            *persisted = stable;
        }
    }
    // A shipped entry must survive a crash here, or its position could be
    // reused for another write after the restart.
    if db.engine.durability() == Durability::Buffered {
        db.engine.sync()?;
    }
    // What every peer applied of this replica's writes; nothing while it is
    // not caught up (its tables may lack what it is to copy) or owes its
    // peers a copy of its tables.
    let acknowledged = if *state.rebirth_owed.lock() || !state.copies.lock().is_empty() {
        Timestamp::default()
    } else {
        own_acknowledged(db, config)?
    };
    let floor = outbox_floor(db, safe_seq);
    let heartbeat = {
        let mut steps = state.steps.lock();
        *steps += 1;
        (*steps).is_multiple_of(HEARTBEAT_EVERY_STEPS)
    };
    let mut behind = std::collections::BTreeSet::new();
    for &peer in &config.peers {
        let acked = state.peers.lock().get(&peer).and_then(|p| p.acked);
        let after = match acked {
            Some(acked) if acked < floor => {
                // Either the peer needs entries already collected (it is
                // new or lost its state: shipping the rest would skip them
                // silently), or this is a stale acknowledgement that
                // arrived after this replica restarted and forgot the later
                // ones. Report it, and probe from the floor: a peer that
                // has everything up to the floor applies and acknowledges
                // past it, one that does not sees a range starting after
                // its cursor and copies this replica's tables (`copy.rs`).
                behind.insert(peer);
                floor
            }
            Some(acked) => acked,
            None => floor,
        };
        if after > safe_seq {
            // The peer acknowledged positions this replica has not issued.
            // Not expected: acknowledgements of earlier incarnations are
            // dropped on receipt, and a shipped position survives a crash.
            // Reported, and nothing is shipped on its word.
            behind.insert(peer);
            continue;
        }
        // Send what is new; repeat what is unacknowledged only with the
        // periodic heartbeat (which also carries stability past a lost
        // message), so replicas do not wake each other in a loop.
        let last_sent = state.peers.lock().get(&peer).and_then(|p| p.last_sent);
        let news = last_sent != Some((safe_seq, stable, acknowledged));
        if !news && !heartbeat {
            continue;
        }
        let changes = if after < safe_seq {
            read_outbox(db, after, safe_seq)?
        } else {
            Vec::new()
        };
        let (through, stable) = match changes.last() {
            Some(last) if changes.len() >= SEND_CHANGES_MAX => (last.seq, last.version.timestamp),
            _ => (safe_seq, stable),
        };
        state.peers.lock().entry(peer).or_default().last_sent =
            Some((through, stable, acknowledged));
        report.changes_sent += changes.len();
        transport.send(Message::Changes {
            from: config.replica,
            to: peer,
            after,
            through,
            stable,
            incarnation: state.incarnation(),
            acknowledged,
            changes,
        });
        state.stats.lock().messages_sent += 1;
    }
    state.stats.lock().peers_behind_retention = behind;
    copy::request(db, config, transport, heartbeat);
    Ok(())
}

fn collect_outbox(db: &DatabaseInner, config: &Config, report: &mut StepReport) -> Result<()> {
    let state = &db.multi_active;
    let (safe_seq, _) = state.log.safe_point();
    let acked = {
        let peers = state.peers.lock();
        let mut lowest = Some(safe_seq);
        for peer in &config.peers {
            // An acknowledgement beyond the positions issued is not trusted
            // (see `send`): nothing is collected on its word.
            lowest = match (lowest, peers.get(peer).and_then(|p| p.acked)) {
                (Some(low), Some(acked)) if acked <= safe_seq => Some(low.min(acked)),
                _ => None,
            };
        }
        lowest
    };
    let collected_through = *state.collected_through.lock();
    if let Some(acked) = acked
        && acked > collected_through
    {
        let mut batch = WriteBatch::new();
        let range = rows::outbox_key(collected_through + 1)..rows::outbox_key(acked + 1);
        for row in db.engine.range(range, Direction::Forward, None)? {
            let (key, _) = row?;
            batch.delete(&key);
            report.outbox_collected += 1;
        }
        // Collecting the newest entries removes the clock row's backstop
        // on reopen, so the clock row is rewritten with them.
        batch.put(&rows::clock_key(), &state.log.clock_row());
        db.engine.write(batch)?;
        *state.collected_through.lock() = acked;
    }
    let collected_through = *state.collected_through.lock();
    // Positions, not entries: an abandoned write's position counts too.
    state.stats.lock().outbox_entries = safe_seq.saturating_sub(collected_through);
    Ok(())
}

/// The timestamp below which every peer has sent everything, if every
/// peer has told it.
fn stable_everywhere(db: &DatabaseInner, config: &Config) -> Result<Option<Timestamp>> {
    if config.peers.is_empty() {
        return Ok(Some(Timestamp {
            wall_millis: u64::MAX,
            logical: u32::MAX,
        }));
    }
    let mut lowest: Option<Timestamp> = None;
    for &peer in &config.peers {
        let cursor = cursor_of(db, peer)?;
        if cursor.stable == Timestamp::default() {
            return Ok(None);
        }
        lowest = Some(lowest.map_or(cursor.stable, |low| low.min(cursor.stable)));
    }
    Ok(lowest)
}

fn collect_tombstones(db: &DatabaseInner, config: &Config, report: &mut StepReport) -> Result<()> {
    let state: &MultiActiveState = &db.multi_active;
    let horizon = if state.injected_bug() == Some(InjectedBug::CollectTombstonesEagerly) {
        Some(Timestamp {
            wall_millis: u64::MAX,
            logical: u32::MAX,
        })
    } else {
        stable_everywhere(db, config)?
    };
    let Some(horizon) = horizon else {
        return Ok(());
    };
    let own = if state.injected_bug() == Some(InjectedBug::CollectTombstonesEagerly) {
        horizon
    } else {
        own_acknowledged(db, config)?
    };
    // Nothing to do unless a tombstone was written or a horizon moved.
    let dirty = state
        .tombstones_dirty
        .swap(false, std::sync::atomic::Ordering::Relaxed);
    {
        let mut last = state.tombstone_horizon.lock();
        if !dirty && *last == Some((horizon, own)) {
            return Ok(());
        }
        *last = Some((horizon, own));
    }
    let eager = state.injected_bug() == Some(InjectedBug::CollectTombstonesEagerly);
    let announced: BTreeMap<ReplicaId, Timestamp> = state
        .peers
        .lock()
        .iter()
        .filter_map(|(&peer, progress)| progress.acknowledged.map(|a| (peer, a)))
        .collect();
    let mut candidates = Vec::new();
    for row in db
        .engine
        .prefix(&rows::tombstones_prefix(), Direction::Forward, None)?
    {
        let (key, _) = row?;
        let (version, row_key) = rows::parse_tombstone_key(&key)?;
        if version.timestamp >= horizon {
            break;
        }
        if !eager
            && config.peers.contains(&version.replica)
            && announced
                .get(&version.replica)
                .is_none_or(|&acknowledged| version.timestamp > acknowledged)
        {
            // A peer's delete that not every replica has applied yet: if
            // the peer lost its state, this tombstone is all that is left
            // of the delete (`incarnation.rs`).
            continue;
        }
        if version.replica == config.replica && version.timestamp > own {
            // A delete of this replica's own: a peer may learn of it only
            // from a table copy (`copy.rs`), which carries it only while
            // its tombstone is here; so it stays until every peer has
            // acknowledged its outbox entry.
            continue;
        }
        if candidates.len() >= COLLECT_TOMBSTONES_MAX {
            // The rest waits for the next step.
            state
                .tombstones_dirty
                .store(true, std::sync::atomic::Ordering::Relaxed);
            break;
        }
        candidates.push((key.to_vec(), version, row_key));
    }
    for (key, version, row_key) in candidates {
        let _lock = db.kv.locks.lock(&row_key);
        let mut batch = WriteBatch::new();
        batch.delete(&key);
        let stored = read_stored(&db.engine, &row_key)?;
        let still_current = stored.is_some_and(|s| s.tombstone && s.version == version);
        if still_current {
            batch.delete(&rows::version_key(&row_key));
        }
        db.engine.write(batch)?;
        if still_current {
            report.tombstones_collected += 1;
            let table = table_of_row(db, &row_key);
            if let Some(table) = table {
                state.count(&table, |s| s.tombstones_collected += 1);
            }
        }
    }
    Ok(())
}

/// The timestamp up to which every peer has acknowledged this replica's
/// own writes: the outbox is in timestamp order, so it is just before the
/// first entry still in it (or this replica's stable timestamp if none is),
/// provided every peer's acknowledgement reaches the collected floor
/// (after an outbox restart the entries before it were dropped, not
/// acknowledged, and after a reopen acknowledgements are not known yet).
fn own_acknowledged(db: &DatabaseInner, config: &Config) -> Result<Timestamp> {
    let state = &db.multi_active;
    let (safe_seq, stable) = state.log.safe_point();
    let collected_through = *state.collected_through.lock();
    {
        let peers = state.peers.lock();
        let all_acked = config.peers.iter().all(|peer| {
            peers
                .get(peer)
                .and_then(|p| p.acked)
                .is_some_and(|acked| acked >= collected_through && acked <= safe_seq)
        });
        if !all_acked {
            return Ok(Timestamp::default());
        }
    }
    let first = rows::outbox_key(collected_through.saturating_add(1));
    let end = rows::outbox_key(safe_seq.saturating_add(1));
    if let Some(row) = db
        .engine
        .range(first..end, Direction::Forward, None)?
        .next()
    {
        let (key, value) = row?;
        let entry = rows::decode_entry(rows::parse_outbox_key(&key)?, &value)?;
        return Ok(entry.version.timestamp.predecessor());
    }
    Ok(stable)
}

/// The name of the table whose keyspace `row_key` is in (for counting).
fn table_of_row(db: &DatabaseInner, row_key: &[u8]) -> Option<String> {
    let keyspace = u32::from_be_bytes(row_key.get(..4)?.try_into().ok()?);
    db.kv
        .handles()
        .into_iter()
        .map(|handle| handle.definition())
        .find(|definition| definition.keyspace == keyspace)
        .map(|definition| definition.name.clone())
}
