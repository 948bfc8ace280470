//! Multi-active tables (DynamoDB global tables): two or more databases
//! accept writes to the same table and converge, resolving conflicts
//! last-writer-wins.
//!
//! # How it works
//!
//! - **Versions.** Every write of a replicated table gets a [`Version`]: a
//!   hybrid logical clock [`Timestamp`] (wall time from the database's
//!   injectable clock plus a logical counter) and the writer's
//!   [`ReplicaId`], which breaks ties. The winner's version is stored in a
//!   hidden *metadata keyspace* (keyspace 9, see `rows.rs`), in the same
//!   engine batch as the item. A keyspace rather than a hidden attribute:
//!   get, query, scan, streams, exports and item sizes read only the
//!   table's keyspace, so users can never see, project, filter on or be
//!   billed for the version, and no read path needs to strip it.
//! - **Change feed.** A local write also stages an *outbox* entry (table,
//!   key, version, new item) in the same batch. Changes applied from a peer
//!   carry their version in and stage no outbox entry, so they never echo
//!   back. Each replica ships its own outbox to every peer (a full mesh).
//!   The table's DynamoDB stream still records every change, local or
//!   replicated, as each DynamoDB replica's stream does.
//! - **Apply.** A peer's change is applied under the item's lock if its
//!   version is newer than the stored one; otherwise it is discarded and
//!   counted in [`TableStats::conflicts`] (DynamoDB drops them silently).
//!   A change whose timestamp is more than `max_clock_skew` ahead of local
//!   time is refused, counted in [`ReplicaStats::rejected_clock_skew`], and
//!   retried later (so a fast clock delays its writes rather than pulling
//!   every replica's clock into the future).
//! - **Delivery.** Messages may be lost, repeated or reordered. A receiver
//!   keeps a durable cursor per origin (committed with each applied change)
//!   and acknowledges it; a sender repeats unacknowledged entries, and
//!   removes entries every peer acknowledged. Transports: [`SimNetwork`]
//!   (in-process, deterministic, with fault injection) and [`TcpTransport`]
//!   (std::net, for replicas in separate processes).
//! - **Tombstones.** A delete keeps the item's version as a tombstone, so
//!   an older write arriving later loses. It is removed only once every
//!   peer has shipped everything it wrote up to a timestamp past the
//!   tombstone (see `step.rs`), and every replica applied the delete (its
//!   writer announces that, or counts the acknowledgements if it is this
//!   replica; see `copy.rs`).
//! - **Table copies.** A new database (first configured: new to the group
//!   or restored empty) copies every peer's replicated tables, and so does
//!   a replica that lacks changes a peer already collected from its outbox
//!   (it notices a range that starts after its cursor): page by page, items
//!   with their versions and tombstones as deletes, through the same
//!   last-writer-wins apply; then its cursor moves to the outbox position
//!   the copy covers and the outbox takes over. Progress is durable, so a
//!   restart resumes the copy (see `copy.rs`).
//! - **Incarnations.** A replica restored empty under its old id is a new
//!   *incarnation* (the wall millis of its first configuration, kept in
//!   its birth row): `Changes`, `Ack` and `Copy` carry it, and each
//!   receiver records it with its cursor. A newer incarnation resets the
//!   cursor (positions restart), acknowledgements of an earlier life are
//!   ignored on both sides, the new life copies its peers' tables only once
//!   every peer knows it, and if they hold writes of its earlier life it
//!   then makes every peer copy its tables (see `incarnation.rs`).
//!
//! # Use
//!
//! ```
//! use std::sync::Arc;
//! use nimbus::replication::multi::{ReplicaConfig, ReplicaId, SimNetwork};
//! use nimbus::{Database, ScalarType, item};
//!
//! let network = Arc::new(SimNetwork::new(7));
//! let replicas: Vec<Database> = (1..=2).map(|_| Database::memory().unwrap()).collect();
//! for (n, db) in replicas.iter().enumerate() {
//!     let me = ReplicaId(n as u64 + 1);
//!     let peer = ReplicaId(2 - n as u64);
//!     db.create_table("Users").partition_key("id", ScalarType::S).send()?;
//!     let multi = db.multi_active();
//!     multi.configure(ReplicaConfig::new(me, [peer]))?;
//!     multi.replicate_table("Users")?;
//!     multi.connect(network.clone());
//! }
//! replicas[0].put_item("Users").item(item! { "id" => "u1", "name" => "Ann" }).send()?;
//! for _ in 0..3 {
//!     for db in &replicas {
//!         db.multi_active().step()?;
//!     }
//! }
//! let got = replicas[1].get_item("Users").key(item! { "id" => "u1" }).send()?;
//! assert_eq!(got.item, Some(item! { "id" => "u1", "name" => "Ann" }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Limits
//!
//! - A replica added to a group, or restored empty, takes part at once,
//!   but holds the group's earlier data only once its copies finish
//!   ([`ReplicaStats::synced_with`] holds every peer; its peers may report
//!   it in [`ReplicaStats::peers_behind_retention`] until then). Like a
//!   DynamoDB replica that is still `CREATING`, it should not take writes
//!   before:
//!   a write it takes earlier may carry a timestamp below a delete whose
//!   tombstone the group already collected (its clock has not yet seen the
//!   group's), and then the write survives where the delete should win.
//!   Every replica still ends up with the same items.
//! - A copy adds and overwrites, it never deletes: a replica that rejoins
//!   with *stale* data (not empty) keeps items whose deletes' tombstones
//!   the others collected while it was away. Rejoin empty.
//! - Items written before `replicate_table` have no version and are
//!   neither shipped nor copied.
//! - A replica restored empty under its old id (a wipe) loses the writes
//!   no peer had applied yet (they were only in its outbox); the others
//!   survive at the peers that applied them and reach every replica through
//!   its new life's copies. Its incarnation is the wall time of its
//!   restore, so the restore must come later, by wall clock, than its
//!   earlier life's birth. Its clock starts from wall time: if its clock
//!   had run ahead of wall time before (by at most `max_clock_skew`), its
//!   first writes may order before writes it had already promised to be
//!   later than, so restore it after more than `max_clock_skew` (what the
//!   simulation does; any real restore takes longer), and let it catch up
//!   ([`ReplicaStats::synced_with`] holds every peer) before it writes.
//!   A peer copying the restored replica's tables back applies the
//!   earlier life's writes it never had by last-writer-wins, without the
//!   stable-timestamp skip; if a page read before the restored replica
//!   applied a later delete of such an item arrives after the peer
//!   removed that delete's tombstone, the item comes back at that peer (a
//!   narrow race the simulation has not met).
//! - Items replicate one by one: a transaction's items may arrive at a
//!   peer in separate batches (as in DynamoDB).
//! - A peer's changes apply in its outbox order: one that is refused (clock
//!   skew, a table not created or not replicated here yet, a failed write)
//!   holds back that peer's later changes until it goes in; the refusal is
//!   counted in [`ReplicaStats`].
//! - Deleting a table leaves its items' hidden version rows behind (its
//!   keyspace id is never reused, so they are never read again).
//! - Counters are in memory, since the database was opened.

mod apply;
mod clock;
mod copy;
mod error;
mod hook;
mod incarnation;
mod rows;
mod runner;
mod state;
mod step;
pub(in crate::replication) mod tcp;
mod transport;

use std::sync::Arc;
use std::time::Duration;

pub use clock::{ClockSkew, ReplicaId, Timestamp, Version};
pub use copy::{COPY_PAGE_ITEMS_MAX, COPY_PAGES_SERVED_PER_STEP_MAX};
pub use error::{Error, Result};
pub(crate) use hook::{MultiStaging, involves, stage_version};
pub use rows::Change;
#[doc(hidden)]
pub use state::InjectedBug;
pub(crate) use state::MultiActiveState;
pub use state::{DEFAULT_MAX_CLOCK_SKEW, ReplicaStats, STABLE_ADVANCE_MILLIS, TableStats};
pub use step::{
    COLLECT_TOMBSTONES_MAX, HEARTBEAT_EVERY_STEPS, RECEIVE_MESSAGES_MAX, SEND_CHANGES_MAX,
    StepReport,
};
pub use tcp::{CONNECT_TIMEOUT, MAX_FRAME_BYTES, TcpTransport};
pub use transport::{Message, NetworkFaults, NetworkStats, SimNetwork, Transport, Waker};

use crate::Database;
use crate::storage::WriteBatch;
use crate::value::Item;
use state::Config;

/// How the background thread paces itself when idle (default).
pub const DEFAULT_STEP_INTERVAL: Duration = Duration::from_millis(5);

/// Who this replica is and who its peers are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaConfig {
    /// This replica's id (fixed for the life of the database).
    pub replica: ReplicaId,
    /// Every other replica of the group.
    pub peers: Vec<ReplicaId>,
    /// How far ahead of local time a remote timestamp may be
    /// (default [`DEFAULT_MAX_CLOCK_SKEW`]).
    pub max_clock_skew: Duration,
}

impl ReplicaConfig {
    /// Replica `replica` of a group with `peers`.
    pub fn new(replica: ReplicaId, peers: impl IntoIterator<Item = ReplicaId>) -> Self {
        Self {
            replica,
            peers: peers.into_iter().collect(),
            max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
        }
    }

    /// Sets the bound on remote timestamps ahead of local time.
    pub fn max_clock_skew(mut self, bound: Duration) -> Self {
        self.max_clock_skew = bound;
        self
    }
}

/// The version stored for one item: the last writer's, and whether that
/// write deleted it (a tombstone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemVersion {
    /// The winning write's version.
    pub version: Version,
    /// Whether the winning write was a delete.
    pub tombstone: bool,
}

/// A database's multi-active replication endpoint
/// ([`Database::multi_active`]).
#[derive(Debug, Clone)]
pub struct MultiActive {
    db: Database,
}

impl Database {
    /// This database's multi-active replication endpoint.
    pub fn multi_active(&self) -> MultiActive {
        MultiActive { db: self.clone() }
    }
}

impl MultiActive {
    fn state(&self) -> &MultiActiveState {
        &self.db.inner.multi_active
    }

    /// Sets (durably) this replica's id, peers and clock skew bound. The id
    /// cannot change once set.
    pub fn configure(&self, config: ReplicaConfig) -> Result<()> {
        let mut peers = config.peers.clone();
        peers.sort();
        peers.dedup();
        if peers.len() != config.peers.len() {
            return Err(Error::Validation("a peer is listed twice".into()));
        }
        if peers.contains(&config.replica) {
            return Err(Error::Validation(format!(
                "{} cannot be its own peer",
                config.replica
            )));
        }
        let state = self.state();
        let mut current = state.config.write();
        if let Some(existing) = current.as_ref()
            && existing.replica != config.replica
        {
            return Err(Error::ReplicaIdMismatch {
                stored: existing.replica,
                requested: config.replica,
            });
        }
        let next = Config {
            replica: config.replica,
            peers,
            max_clock_skew: config.max_clock_skew,
            tables: current
                .as_ref()
                .map(|c| c.tables.clone())
                .unwrap_or_default(),
        };
        let mut batch = WriteBatch::new();
        batch.put(&rows::config_key(), &MultiActiveState::config_row(&next));
        let birth = current.is_none().then(|| {
            let now_millis =
                u64::try_from(self.db.inner.clock.since_epoch().as_millis()).unwrap_or(u64::MAX);
            // Every local write's timestamp is at or after the wall time
            // it was made at, so at or after this.
            Timestamp {
                wall_millis: now_millis,
                logical: 0,
            }
        });
        let mut owed = Vec::new();
        if let Some(birth) = birth {
            batch.put(&rows::birth_key(), &rows::encode_birth(birth));
            owed = copy::owed_at_birth(&self.db.inner, &next.peers, &mut batch);
        }
        self.db.inner.engine.write(batch)?;
        if let Some(birth) = birth {
            *state.birth.lock() = birth;
        }
        copy::register(&self.db.inner, owed);
        *current = Some(next);
        state.stats.lock().replica = Some(config.replica);
        Ok(())
    }

    /// Replicates `table` from now on (durably). The table must exist, with
    /// the same name and key schema at every replica.
    pub fn replicate_table(&self, table: &str) -> Result<()> {
        self.db.inner.kv.table(table)?;
        let state = self.state();
        let mut current = state.config.write();
        let Some(config) = current.as_mut() else {
            return Err(Error::NotConfigured);
        };
        let mut batch = WriteBatch::new();
        batch.put(&rows::table_key(table), &[]);
        self.db.inner.engine.write(batch)?;
        config.tables.insert(table.to_owned());
        Ok(())
    }

    /// The tables replicated here.
    pub fn replicated_tables(&self) -> Vec<String> {
        self.state()
            .config
            .read()
            .as_ref()
            .map(|c| c.tables.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Connects this replica to `transport` (again after every open: a
    /// transport is not persisted).
    pub fn connect(&self, transport: Arc<dyn Transport>) {
        let state = self.state();
        if let Some(config) = state.config.read().as_ref() {
            transport.set_waker(config.replica, state.runner.waker());
        }
        *state.transport.write() = Some(transport);
    }

    /// Runs one round of the protocol: apply what peers sent, acknowledge
    /// it, ship unacknowledged local changes, collect what every peer has
    /// passed. Simulations drive replicas with this; the background thread
    /// ([`Self::start`]) calls it too.
    pub fn step(&self) -> Result<StepReport> {
        step::step(&self.db.inner)
    }

    /// Starts the background thread that steps whenever a local change
    /// commits or a message arrives, and at least every `interval`. The
    /// database owns it: `close()` or dropping the last clone stops it.
    pub fn start(&self, interval: Duration) {
        let state = self.state();
        *state.log.waker.write() = Some(state.runner.waker());
        if let (Some(config), Some(transport)) = (
            state.config.read().as_ref(),
            state.transport.read().as_ref(),
        ) {
            transport.set_waker(config.replica, state.runner.waker());
        }
        runner::Runner::start(&self.db.inner, interval);
    }

    /// Waits until the background thread has run a step that started after
    /// this call (so everything committed or received before it is
    /// handled); false if no thread runs.
    pub fn wait_for_step(&self) -> bool {
        self.state().runner.wait_for_step()
    }

    /// Whether the background thread runs.
    pub fn is_running(&self) -> bool {
        self.state().runner.is_running()
    }

    /// This replica's incarnation id: the wall millis of its first
    /// configuration (`None` before it). A database restored empty under an
    /// old id has a larger one, which tells its peers that its outbox
    /// positions restarted (see the limits above for the clock it needs).
    pub fn incarnation(&self) -> Option<u64> {
        let state = self.state();
        state.config.read().is_some().then(|| state.incarnation())
    }

    /// The replica's counters.
    pub fn stats(&self) -> ReplicaStats {
        self.state().stats.lock().clone()
    }

    /// The counters of `table` (zero if nothing happened yet).
    pub fn table_stats(&self, table: &str) -> TableStats {
        self.state()
            .stats
            .lock()
            .tables
            .get(table)
            .copied()
            .unwrap_or_default()
    }

    /// The version stored for the item of `table` with key attributes
    /// `key` (`None`: never written, or its tombstone was collected).
    pub fn item_version(&self, table: &str, key: &Item) -> Result<Option<ItemVersion>> {
        let handle = self.db.inner.kv.table(table)?;
        let definition = handle.definition();
        let row_key =
            crate::kv::key_from_key_map(&definition.key, key)?.row_key(definition.keyspace);
        Ok(
            hook::read_stored(&self.db.inner.engine, &row_key)?.map(|stored| ItemVersion {
                version: stored.version,
                tombstone: stored.tombstone,
            }),
        )
    }

    /// Switches on a deliberately wrong rule (simulation tests prove they
    /// catch it). Never use outside tests.
    #[doc(hidden)]
    pub fn inject_bug(&self, bug: Option<InjectedBug>) {
        self.state().set_injected_bug(bug);
    }
}

/// Stops the background thread (from `Database::close`).
pub(crate) fn stop_background(db: &crate::db::DatabaseInner) {
    db.multi_active.runner.stop();
}
