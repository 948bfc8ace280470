//! What a database keeps in memory for multi-active replication: its
//! configuration, the outbox log's clock and reservations, what it knows of
//! each peer, and its counters. Loaded from the hidden rows at open.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use super::clock::{HybridClock, ReplicaId, Timestamp};
use super::rows::{self, CopyProgress, Cursor, StoredConfig};
use super::runner::Runner;
use super::transport::{Transport, Waker};
use crate::storage::{Direction, Engine, StorageError};

/// How far ahead of local time a remote timestamp may be (default): the
/// upper end of the 100 ms–1 s range HLC implementations use (uhlc's
/// `DELTA_MS` is 100 ms), since a refused change is only retried later.
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_millis(500);

/// How far wall time must pass an idle replica's clock before the clock
/// (and the stable timestamp it advertises) follows it.
pub const STABLE_ADVANCE_MILLIS: u64 = 1_000;

/// A deliberately wrong rule, switched on by the simulation to prove that
/// it catches the bug (never set outside tests).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum InjectedBug {
    /// Equal timestamps: the incoming write wins, whatever its replica id.
    IgnoreReplicaTieBreak = 1,
    /// Tombstones are collected as soon as they are written.
    CollectTombstonesEagerly = 2,
}

/// The configuration in force (persisted in the config and table rows).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) replica: ReplicaId,
    pub(crate) peers: Vec<ReplicaId>,
    pub(crate) max_clock_skew: Duration,
    pub(crate) tables: BTreeSet<String>,
}

/// The outbox's clock and reservations: timestamps and sequence numbers
/// are handed out together, under one lock, so the outbox is in timestamp
/// order too.
#[derive(Debug)]
pub(crate) struct LogState {
    pub(crate) clock: HybridClock,
    pub(crate) next_seq: u64,
    /// Reserved and not yet committed or abandoned: seq -> timestamp.
    pub(crate) in_flight: BTreeMap<u64, Timestamp>,
}

/// The outbox log, shared with the write path's reservations.
#[derive(Default)]
pub(crate) struct OutboxLog {
    pub(crate) state: Mutex<LogState>,
    /// Wakes the background thread when a local change commits.
    pub(crate) waker: RwLock<Option<Waker>>,
}

impl std::fmt::Debug for OutboxLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxLog")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Default for LogState {
    fn default() -> Self {
        Self {
            clock: HybridClock::default(),
            next_seq: 1,
            in_flight: BTreeMap::new(),
        }
    }
}

impl OutboxLog {
    /// Reserves the next sequence number and a timestamp later than
    /// `after` for a local write at wall time `now_millis`.
    pub(crate) fn reserve(&self, now_millis: u64, after: Option<Timestamp>) -> (u64, Timestamp) {
        let mut state = self.state.lock();
        let timestamp = state.clock.tick(now_millis, after);
        let seq = state.next_seq;
        state.next_seq += 1;
        state.in_flight.insert(seq, timestamp);
        (seq, timestamp)
    }

    /// Lets an idle clock catch up with wall time, at most once per
    /// [`STABLE_ADVANCE_MILLIS`] (each advance costs a clock row write).
    pub(crate) fn advance_idle(&self, now_millis: u64) {
        let mut state = self.state.lock();
        if state.in_flight.is_empty()
            && now_millis >= state.clock.last().wall_millis + STABLE_ADVANCE_MILLIS
        {
            state.clock.advance_to(now_millis);
        }
    }

    /// Ends reservations (their writes committed or were abandoned).
    pub(crate) fn release(&self, seqs: &[u64]) {
        {
            let mut state = self.state.lock();
            for seq in seqs {
                state.in_flight.remove(seq);
            }
        }
        if let Some(waker) = self.waker.read().clone() {
            waker();
        }
    }

    /// The last outbox position readers may ship, and the timestamp up to
    /// which every local write is at or before it: the positions before the
    /// oldest write still in flight, or everything.
    pub(crate) fn safe_point(&self) -> (u64, Timestamp) {
        let state = self.state.lock();
        match state.in_flight.iter().next() {
            Some((&seq, timestamp)) => (seq - 1, timestamp.predecessor()),
            None => (state.next_seq - 1, state.clock.last()),
        }
    }

    /// The clock row's value now.
    pub(crate) fn clock_row(&self) -> Vec<u8> {
        let state = self.state.lock();
        rows::encode_clock(state.clock.last(), state.next_seq)
    }
}

/// What this replica knows of one peer.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PeerProgress {
    /// How far the peer acknowledged this replica's outbox (unknown after
    /// a restart until it answers).
    pub(crate) acked: Option<u64>,
    /// How far this replica applied the peer's outbox (cached cursor row).
    pub(crate) cursor: Option<Cursor>,
    /// The `(through, stable, acknowledged)` of the last `Changes` sent to
    /// the peer.
    pub(crate) last_sent: Option<(u64, Timestamp, Timestamp)>,
    /// The peer's last announced `acknowledged` timestamp (every replica
    /// applied its writes up to it) in its current incarnation; unknown
    /// after a restart until it tells again.
    pub(crate) acknowledged: Option<Timestamp>,
    /// This replica follows the peer's outbox: since open it received a
    /// range from it that starts within what it applied, or finished
    /// copying its tables.
    pub(crate) synced: bool,
    /// Since open, the peer acknowledged this replica's current
    /// incarnation (so it counts no acknowledgement of an earlier life any
    /// more); copies are asked for only once every peer has.
    pub(crate) knows_me: bool,
}

/// A table copy this replica receives from one origin.
#[derive(Debug, Clone)]
pub(crate) struct CopyState {
    /// Its durable progress (the copy row).
    pub(crate) progress: CopyProgress,
    /// Whether the page at `progress` was asked for (it is asked again
    /// with the heartbeat, in case the request or the page was lost).
    pub(crate) requested: bool,
}

/// Per-table counters (since the database was opened).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Local writes recorded for peers (counted when staged: a write that
    /// then fails to commit counts too).
    pub local_writes: u64,
    /// Remote writes applied (they were newer than the stored version).
    pub applied: u64,
    /// Remote writes that lost last-writer-wins to a newer stored version
    /// and were discarded. DynamoDB drops these silently; here they count.
    pub conflicts: u64,
    /// Remote writes already applied (a repeat of the same version).
    pub duplicates: u64,
    /// Tombstones removed after every peer passed them.
    pub tombstones_collected: u64,
    /// Replication latency of the last applied change: local wall time at
    /// apply minus the change's timestamp (DynamoDB's `ReplicationLatency`;
    /// includes the clock offset between the replicas).
    pub last_replication_latency_millis: Option<u64>,
}

/// Counters of one replica (since the database was opened).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaStats {
    /// The replica's id, once configured.
    pub replica: Option<ReplicaId>,
    /// Remote changes refused because their timestamp was too far ahead of
    /// local time (retried later; counted at each refusal).
    pub rejected_clock_skew: u64,
    /// Remote changes held back because the table is missing here or not
    /// replicated (retried later).
    pub waiting_for_table: u64,
    /// Remote changes that failed to apply for another reason (retried).
    pub apply_errors: u64,
    /// The last such failure.
    pub last_error: Option<String>,
    /// Messages sent and received.
    pub messages_sent: u64,
    /// Messages received and handled.
    pub messages_received: u64,
    /// Peers that need changes this replica already collected (they lost
    /// their state): they need a full copy of the tables.
    pub peers_behind_retention: BTreeSet<ReplicaId>,
    /// Local changes not yet acknowledged by every peer.
    pub outbox_entries: u64,
    /// Peers whose outbox this replica follows (since open, it heard a
    /// range from them that starts within what it applied, or finished
    /// copying their tables). A replica that joined or lost its state has
    /// the group's data once every peer is here.
    pub synced_with: BTreeSet<ReplicaId>,
    /// Peers this replica is receiving a table copy from (it lacks changes
    /// they no longer keep); restored at open from the progress rows.
    pub copying_from: BTreeSet<ReplicaId>,
    /// Table copies started here (as the receiver).
    pub copies_started: u64,
    /// Table copies finished here (as the receiver).
    pub copies_finished: u64,
    /// Copied items applied (newer than the stored version; also counted
    /// in [`TableStats::applied`]).
    pub items_copied: u64,
    /// Copied items skipped because this replica had already applied
    /// their write (its own, or a peer's up to that peer's stable
    /// timestamp). Other copied items count in [`TableStats`] like changes
    /// (applied, conflicts, duplicates).
    pub copy_items_skipped: u64,
    /// Copy pages served to peers (repeats included).
    pub copy_pages_served: u64,
    /// Times this replica, restored under its old id, skipped an outbox
    /// position so that its peers copy its tables (they may lack writes of
    /// its earlier life that reached only some of them).
    pub outbox_restarts: u64,
    /// Times a peer was heard from under a newer incarnation (it was
    /// restored under its id): its positions restarted here.
    pub peer_rebirths: u64,
    /// Per replicated table.
    pub tables: BTreeMap<String, TableStats>,
}

/// The multi-active state every clone of a database shares.
#[derive(Debug, Default)]
pub(crate) struct MultiActiveState {
    pub(crate) config: RwLock<Option<Config>>,
    pub(crate) log: Arc<OutboxLog>,
    pub(crate) peers: Mutex<HashMap<ReplicaId, PeerProgress>>,
    pub(crate) stats: Mutex<ReplicaStats>,
    pub(crate) transport: RwLock<Option<Arc<dyn Transport>>>,
    pub(crate) runner: Runner,
    /// One step at a time (the thread and explicit `step()` calls).
    pub(crate) step_lock: Mutex<()>,
    /// Steps run since open (paces heartbeats).
    pub(crate) steps: Mutex<u64>,
    /// Every outbox position up to here is collected (or never existed).
    pub(crate) collected_through: Mutex<u64>,
    /// A tombstone was written since the last tombstone collection.
    pub(crate) tombstones_dirty: std::sync::atomic::AtomicBool,
    /// The clock value known to be in the clock row (or the outbox).
    pub(crate) persisted_clock: Mutex<Timestamp>,
    /// The horizons (every peer's, and of this replica's own acknowledged
    /// writes) of the last tombstone collection.
    pub(crate) tombstone_horizon: Mutex<Option<(Timestamp, Timestamp)>>,
    /// Table copies in progress here, by origin (see `copy.rs`).
    pub(crate) copies: Mutex<BTreeMap<ReplicaId, CopyState>>,
    /// The last copy id handed out.
    pub(crate) last_copy_id: Mutex<u64>,
    /// When this database was first configured (zero if before the birth
    /// row existed): its own writes are at or after it.
    pub(crate) birth: Mutex<Timestamp>,
    /// A copy into this new database showed writes of an earlier life
    /// under its id: once caught up it makes its peers copy its tables
    /// (persisted in the rebirth row; see `incarnation.rs`).
    pub(crate) rebirth_owed: Mutex<bool>,
    injected_bug: AtomicU8,
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> StorageError {
    StorageError::corruption(what, 0, error.to_string())
}

impl MultiActiveState {
    /// Loads the configuration, replicated tables and clock from the
    /// hidden rows (nothing if the database was never configured).
    pub(crate) fn load(engine: &Engine) -> Result<Self, StorageError> {
        let state = Self::default();
        let Some(bytes) = engine.get(&rows::config_key())? else {
            return Ok(state);
        };
        let stored = rows::decode_config(&bytes).map_err(|e| corrupt("replica config", e))?;
        let mut tables = BTreeSet::new();
        for row in engine.prefix(&rows::tables_prefix(), Direction::Forward, None)? {
            let (key, _) = row?;
            let name = key
                .get(5..)
                .and_then(|name| std::str::from_utf8(name).ok())
                .ok_or_else(|| corrupt("replicated table row", "bad table name"))?;
            tables.insert(name.to_owned());
        }
        let mut first_seq = None;
        if let Some(row) = engine
            .prefix(&rows::outbox_prefix(), Direction::Forward, None)?
            .next()
        {
            let (key, _) = row?;
            first_seq = Some(rows::parse_outbox_key(&key).map_err(|e| corrupt("outbox key", e))?);
        }
        let (mut last, mut next_seq) = match engine.get(&rows::clock_key())? {
            Some(bytes) => rows::decode_clock(&bytes).map_err(|e| corrupt("replica clock", e))?,
            None => (Timestamp::default(), 1),
        };
        // A write committed after a later one may have left an older clock
        // row: the newest outbox entry has the true high-water mark.
        if let Some(row) = engine
            .prefix(&rows::outbox_prefix(), Direction::Reverse, None)?
            .next()
        {
            let (key, value) = row?;
            let seq = rows::parse_outbox_key(&key).map_err(|e| corrupt("outbox key", e))?;
            let change = rows::decode_entry(seq, &value).map_err(|e| corrupt("outbox entry", e))?;
            next_seq = next_seq.max(seq + 1);
            last = last.max(change.version.timestamp);
        }
        *state.collected_through.lock() = first_seq.map_or(next_seq - 1, |first| first - 1);
        state.tombstones_dirty.store(true, Ordering::Relaxed);
        *state.persisted_clock.lock() = last;
        if let Some(bytes) = engine.get(&rows::birth_key())? {
            *state.birth.lock() =
                rows::decode_birth(&bytes).map_err(|e| corrupt("replica birth", e))?;
        }
        *state.rebirth_owed.lock() = engine.get(&rows::rebirth_key())?.is_some();
        *state.log.state.lock() = LogState {
            clock: HybridClock::starting_after(last),
            next_seq,
            in_flight: BTreeMap::new(),
        };
        {
            let mut copies = state.copies.lock();
            for row in engine.prefix(&rows::copies_prefix(), Direction::Forward, None)? {
                let (key, value) = row?;
                let origin = rows::parse_copy_key(&key).map_err(|e| corrupt("copy key", e))?;
                let progress = rows::decode_copy(&value).map_err(|e| corrupt("copy", e))?;
                copies.insert(
                    origin,
                    CopyState {
                        progress,
                        requested: false,
                    },
                );
            }
            let mut stats = state.stats.lock();
            stats.copying_from = copies.keys().copied().collect();
            stats.replica = Some(stored.replica);
        }
        *state.config.write() = Some(Config {
            replica: stored.replica,
            peers: stored.peers,
            max_clock_skew: Duration::from_millis(stored.max_clock_skew_millis),
            tables,
        });
        Ok(state)
    }

    /// Whether local writes to `table` are replicated.
    pub(crate) fn replicates(&self, table: &str) -> bool {
        self.config
            .read()
            .as_ref()
            .is_some_and(|config| config.tables.contains(table))
    }

    /// The configuration row's value for `config`.
    pub(crate) fn config_row(config: &Config) -> Vec<u8> {
        rows::encode_config(&StoredConfig {
            replica: config.replica,
            max_clock_skew_millis: u64::try_from(config.max_clock_skew.as_millis())
                .unwrap_or(u64::MAX),
            peers: config.peers.clone(),
        })
    }

    /// This replica's incarnation id: the wall millis of its birth (zero
    /// for a database configured before the birth row existed). A replica
    /// restored empty under its id is born later, so its id is larger.
    pub(crate) fn incarnation(&self) -> u64 {
        self.birth.lock().wall_millis
    }

    pub(crate) fn injected_bug(&self) -> Option<InjectedBug> {
        match self.injected_bug.load(Ordering::Relaxed) {
            1 => Some(InjectedBug::IgnoreReplicaTieBreak),
            2 => Some(InjectedBug::CollectTombstonesEagerly),
            _ => None,
        }
    }

    pub(crate) fn set_injected_bug(&self, bug: Option<InjectedBug>) {
        self.injected_bug
            .store(bug.map_or(0, |b| b as u8), Ordering::Relaxed);
    }

    /// Counts on `table`'s statistics.
    pub(crate) fn count(&self, table: &str, update: impl FnOnce(&mut TableStats)) {
        let mut stats = self.stats.lock();
        match stats.tables.get_mut(table) {
            Some(entry) => update(entry),
            None => update(stats.tables.entry(table.to_owned()).or_default()),
        }
    }
}
