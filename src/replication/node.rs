//! [`ReplicationNode`]: one database taking part in log shipping, as the
//! primary, a (synchronous or asynchronous) follower, or a fenced former
//! primary — with the public API: open, followers, promote, rejoin, tick,
//! lag, events and statistics.
//!
//! A node is an [`Endpoint`] of a [`Transport`]. Its state sits behind one
//! short lock that is never held across I/O or a wait: the commit leader's
//! replication hook (`source`), the message handlers (`follower`,
//! `snapshot`) and the API all take it briefly. A replica forwards every
//! batch it applies to followers of its own through the same hook, which
//! is how chains of replicas work.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use super::bodies::BodyState;
use super::epoch::EpochRecord;
use super::error::{ReplicationError, Result};
use super::frame::{AckLevel, Frame, Message, NodeId, Progress};
use super::retained::RetainedLog;
use super::snapshot::{Incoming, Served};
use super::transport::{Endpoint, Transport};
use crate::storage::fs::FileSystem;
use crate::{Database, DatabaseOptions};

/// The default number of frames a source keeps for followers that fall
/// behind; one further behind gets a snapshot (etcd's
/// `SnapshotCatchUpEntries` and openraft's `replication_lag_threshold`).
pub const RETAINED_FRAMES_DEFAULT: usize = 5_000;

/// The default snapshot chunk: large enough to amortise a round trip,
/// small enough that a lost chunk costs little to resend.
pub const SNAPSHOT_CHUNK_BYTES_DEFAULT: usize = 256 << 10;

/// The most out-of-order frames a follower buffers while it waits for a gap
/// to be filled; beyond it frames are dropped and re-asked for.
pub(crate) const PENDING_FRAMES_MAX: usize = 4_096;

/// The most events kept for [`ReplicationNode::events`].
const EVENTS_MAX: usize = 1_024;

/// Which standbys must acknowledge a synchronous commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quorum {
    /// Any `k` of the synchronous standbys (PostgreSQL `ANY k`).
    Any(usize),
    /// Every synchronous standby.
    All,
}

/// When a commit on the primary is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncPolicy {
    /// What a standby must have done with the batch; default `Durable`.
    pub level: AckLevel,
    /// How many standbys; default `Any(1)`.
    pub quorum: Quorum,
    /// How long a commit waits before failing with
    /// `StorageError::ReplicationTimeout`; default 10 s.
    pub timeout: Duration,
    /// Instead of failing, fall back to asynchronous replication after a
    /// timeout, emitting [`ReplicationEvent::DegradedToAsync`] and counting
    /// it (MySQL semi-sync's behaviour, opt-in here); sync resumes once a
    /// standby catches up. Default false.
    pub degrade_to_async: bool,
}

impl Default for SyncPolicy {
    fn default() -> Self {
        Self {
            level: AckLevel::Durable,
            quorum: Quorum::Any(1),
            timeout: Duration::from_secs(10),
            degrade_to_async: false,
        }
    }
}

/// How a node is configured.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// The node's identity on the transport.
    pub id: NodeId,
    /// The database's options.
    pub database: DatabaseOptions,
    /// The commit policy while this node is primary (`None`: asynchronous).
    pub sync: Option<SyncPolicy>,
    /// Frames kept for followers that fall behind (in memory, and in at
    /// most two segment files of this many frames beside the database, so
    /// they outlive a restart).
    pub retained_frames: usize,
    /// Bytes per snapshot chunk.
    pub snapshot_chunk_bytes: usize,
    /// Whether a follower fsyncs every batch it applies even when the
    /// source does not ask for it (default true: its `durable` position
    /// then follows `applied`).
    pub apply_durably: bool,
}

impl NodeOptions {
    /// Options for node `id` with default database options.
    pub fn new(id: NodeId) -> Self {
        Self {
            id,
            database: DatabaseOptions::default(),
            sync: None,
            retained_frames: RETAINED_FRAMES_DEFAULT,
            snapshot_chunk_bytes: SNAPSHOT_CHUNK_BYTES_DEFAULT,
            apply_durably: true,
        }
    }
}

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Accepts writes and ships them.
    Primary,
    /// Applies what `source` ships; serves reads; refuses writes.
    Replica {
        /// The node it follows (the primary or another replica).
        source: NodeId,
    },
    /// A former primary that saw a newer epoch: refuses writes until it
    /// [rejoins](ReplicationNode::rejoin) as a replica.
    Fenced {
        /// The newer epoch it saw.
        newer: u64,
    },
}

/// Something worth telling an operator, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicationEvent {
    /// A synchronous commit timed out and the primary fell back to
    /// asynchronous replication (opt-in).
    DegradedToAsync {
        /// The last sequence number of the commit that timed out.
        sequence: u64,
    },
    /// A synchronous standby caught up: commits wait for it again.
    SyncRestored {
        /// The sequence it caught up to.
        sequence: u64,
    },
    /// This node was promoted.
    Promoted {
        /// The new epoch.
        epoch: u64,
        /// Its first sequence number.
        first_sequence: u64,
    },
    /// This (primary) node saw a newer epoch and stopped accepting writes.
    Fenced {
        /// Its epoch.
        epoch: u64,
        /// The newer one.
        newer: u64,
    },
    /// A follower's log diverged from this source's (an old primary's
    /// unacknowledged tail): it is sent a snapshot.
    Diverged {
        /// The follower.
        follower: NodeId,
        /// Its epoch and last sequence number.
        epoch: u64,
        /// Its last sequence number.
        last_sequence: u64,
    },
    /// A follower was too far behind the retained log: it is sent a snapshot.
    SnapshotStarted {
        /// The follower.
        follower: NodeId,
        /// The snapshot.
        id: u64,
    },
    /// This node installed a snapshot.
    SnapshotInstalled {
        /// Its last sequence number.
        sequence: u64,
    },
    /// A message from an older epoch was rejected.
    StaleRejected {
        /// The sender.
        from: NodeId,
        /// Its epoch.
        epoch: u64,
    },
    /// Applying a replicated batch failed (the follower stops applying).
    ApplyFailed {
        /// The error.
        error: String,
    },
}

/// Counters of a node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicationStats {
    /// Frames sent to followers (including re-sends).
    pub frames_sent: u64,
    /// Frames applied here.
    pub frames_applied: u64,
    /// Frames received again after they were applied (harmless).
    pub duplicates_ignored: u64,
    /// Frames or acknowledgements from an older epoch rejected.
    pub stale_rejected: u64,
    /// Synchronous commits that timed out and degraded to asynchronous.
    pub degraded_commits: u64,
    /// Snapshots served to followers.
    pub snapshots_served: u64,
    /// Snapshots installed here.
    pub snapshots_installed: u64,
    /// Snapshot transfers taken up again after a restart of this node
    /// (from the chunks already staged, not from the start).
    pub snapshots_resumed: u64,
    /// Object chunks sent ahead of the frames naming them.
    pub chunks_sent: u64,
    /// Object chunks written here, as shipped.
    pub chunks_placed: u64,
    /// Frames held back because a chunk they name had not arrived (the
    /// follower subscribed again to have it re-sent).
    pub frames_awaiting_chunks: u64,
}

/// One follower's position as its source sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerLag {
    /// The follower.
    pub node: NodeId,
    /// Whether commits wait for it.
    pub synchronous: bool,
    /// Its acknowledged positions.
    pub progress: Progress,
    /// Sequence numbers shipped but not yet applied there.
    pub sequence_lag: u64,
    /// How long ago the oldest batch it has not applied was shipped
    /// (zero when caught up).
    pub time_lag: Duration,
    /// Whether it is receiving a snapshot rather than frames.
    pub snapshotting: bool,
}

/// A frame kept for catch-up, with when it was shipped.
#[derive(Debug, Clone)]
pub(crate) struct Retained {
    pub(crate) frame: Frame,
    pub(crate) shipped_micros: u64,
}

/// A follower as its source tracks it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Follower {
    pub(crate) synchronous: bool,
    pub(crate) progress: Progress,
    /// Subscribed and caught up to the retained log: new frames go to it.
    pub(crate) streaming: bool,
    pub(crate) snapshot: Option<u64>,
}

/// A node's mutable state (behind `NodeInner::state`).
#[derive(Debug)]
pub(crate) struct NodeState {
    pub(crate) role: Role,
    pub(crate) epochs: EpochRecord,
    pub(crate) followers: BTreeMap<NodeId, Follower>,
    pub(crate) retained: VecDeque<Retained>,
    /// The last sequence number framed (a source) or applied (a replica).
    pub(crate) last_sequence: u64,
    /// The checksum of the frame ending at `last_sequence`, if known.
    pub(crate) last_checksum: Option<u64>,
    /// The position fsynced here (a replica not applying durably lags).
    pub(crate) durable_sequence: u64,
    /// A synchronous primary that timed out and degraded.
    pub(crate) degraded: bool,
    /// The database is opening: its own bookkeeping writes are framed
    /// but not waited for (no standby can have subscribed yet).
    pub(crate) opening: bool,
    /// Out-of-order frames waiting for a gap to fill, by sequence.
    pub(crate) pending: BTreeMap<u64, Frame>,
    /// The gap start a Subscribe was last sent for (to not repeat it).
    pub(crate) asked_from: Option<u64>,
    /// A snapshot being received.
    pub(crate) incoming: Option<Incoming>,
    /// Snapshots being served, by id.
    pub(crate) served: BTreeMap<u64, Served>,
    pub(crate) next_snapshot_id: u64,
    /// When the source was last heard from (transport micros).
    pub(crate) source_heard_micros: u64,
    /// Replicated batches touched the kv catalogue since the last refresh.
    pub(crate) catalogue_dirty: bool,
    pub(crate) stats: ReplicationStats,
    pub(crate) events: VecDeque<ReplicationEvent>,
}

impl NodeState {
    pub(crate) fn event(&mut self, event: ReplicationEvent) {
        if self.events.len() == EVENTS_MAX {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }
}

/// A database taking part in replication. Cheap to clone.
#[derive(Clone)]
pub struct ReplicationNode {
    pub(crate) inner: Arc<NodeInner>,
}

impl std::fmt::Debug for ReplicationNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicationNode")
            .field("id", &self.inner.options.id)
            .field("role", &self.role())
            .finish_non_exhaustive()
    }
}

/// What every clone of a node shares.
pub(crate) struct NodeInner {
    pub(crate) options: NodeOptions,
    pub(crate) fs: Arc<dyn FileSystem>,
    pub(crate) path: PathBuf,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) db: RwLock<Option<Database>>,
    pub(crate) state: Mutex<NodeState>,
    /// Serialises applying replicated frames (never held with `state`
    /// across the apply's I/O... `state` is taken briefly inside).
    pub(crate) apply: Mutex<()>,
    /// What a follower keeps about shipped object chunks (`bodies`).
    pub(crate) bodies: Mutex<BodyState>,
    /// The retained frames' copy on disk (see `retained`); `None` until
    /// the database is open.
    pub(crate) retained_log: Mutex<Option<RetainedLog>>,
    pub(crate) weak: Weak<NodeInner>,
}

impl ReplicationNode {
    /// Opens the database in `path` on `fs` as the primary (after a
    /// restart too) and registers it on `transport`.
    pub fn open_primary(
        fs: Arc<dyn FileSystem>,
        path: impl AsRef<Path>,
        transport: Arc<dyn Transport>,
        options: NodeOptions,
    ) -> Result<Self> {
        Self::open(fs, path.as_ref(), transport, options, Role::Primary)
    }

    /// Opens the database in `path` on `fs` as a replica of `source`: it
    /// refuses writes, subscribes, and catches up (from the retained log or
    /// a snapshot).
    pub fn open_replica(
        fs: Arc<dyn FileSystem>,
        path: impl AsRef<Path>,
        transport: Arc<dyn Transport>,
        options: NodeOptions,
        source: NodeId,
    ) -> Result<Self> {
        Self::open(
            fs,
            path.as_ref(),
            transport,
            options,
            Role::Replica { source },
        )
    }

    fn open(
        fs: Arc<dyn FileSystem>,
        path: &Path,
        transport: Arc<dyn Transport>,
        options: NodeOptions,
        role: Role,
    ) -> Result<Self> {
        validate(&options)?;
        let read_only = !matches!(role, Role::Primary);
        let inner = Arc::new_cyclic(|weak| NodeInner {
            options,
            fs,
            path: path.to_path_buf(),
            transport: Arc::clone(&transport),
            db: RwLock::new(None),
            state: Mutex::new(NodeState {
                role,
                epochs: EpochRecord::default(),
                followers: BTreeMap::new(),
                retained: VecDeque::new(),
                last_sequence: 0,
                last_checksum: None,
                durable_sequence: 0,
                opening: true,
                degraded: false,
                pending: BTreeMap::new(),
                asked_from: None,
                incoming: None,
                served: BTreeMap::new(),
                next_snapshot_id: 1,
                source_heard_micros: transport.now_micros(),
                catalogue_dirty: false,
                stats: ReplicationStats::default(),
                events: VecDeque::new(),
            }),
            apply: Mutex::new(()),
            bodies: Mutex::new(BodyState::default()),
            retained_log: Mutex::new(None),
            weak: weak.clone(),
        });
        inner.open_database(read_only)?;
        let endpoint: Weak<dyn Endpoint> = Arc::downgrade(&inner) as Weak<dyn Endpoint>;
        transport.register(inner.options.id, endpoint);
        let node = Self { inner };
        // A snapshot transfer cut by a restart continues where it stopped
        // (the source answers `SnapshotGone` if it no longer serves it).
        node.inner.restore_incoming();
        if let Role::Replica { source } = role
            && !node.inner.resume_snapshot(source)
        {
            node.inner.subscribe(source);
        }
        Ok(node)
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.inner.options.id
    }

    /// The database: reads on any node; writes only on the primary (a
    /// replica's fail with `StorageError::ReadOnlyReplica`). After a
    /// snapshot is installed or the node rejoins, the database is a new
    /// one: take it again.
    pub fn database(&self) -> Result<Database> {
        self.inner
            .db
            .read()
            .clone()
            .ok_or(ReplicationError::Storage(
                crate::storage::StorageError::Closed,
            ))
    }

    /// The node's role.
    pub fn role(&self) -> Role {
        self.inner.state.lock().role
    }

    /// The node's epoch.
    pub fn epoch(&self) -> u64 {
        self.inner.state.lock().epochs.epoch
    }

    /// The last sequence number framed (primary) or applied (replica).
    pub fn last_sequence(&self) -> u64 {
        self.inner.state.lock().last_sequence
    }

    /// Adds a synchronous standby: commits wait for it per the policy.
    pub fn add_standby(&self, id: NodeId) {
        self.add_follower(id, true);
    }

    /// Adds an asynchronous follower (a read replica). Followers that
    /// subscribe without being added are added as asynchronous ones.
    pub fn add_replica(&self, id: NodeId) {
        self.add_follower(id, false);
    }

    fn add_follower(&self, id: NodeId, synchronous: bool) {
        let heartbeat = {
            let mut state = self.inner.state.lock();
            state.followers.entry(id).or_default().synchronous = synchronous;
            heartbeat_of(&state)
        };
        self.inner.transport.send(self.id(), id, heartbeat);
    }

    /// Stops shipping to `id`.
    pub fn remove_follower(&self, id: NodeId) {
        self.inner.state.lock().followers.remove(&id);
        self.inner.transport.notify();
    }

    /// Points this replica at another source (after a failover, or to
    /// build a chain) and subscribes to it.
    pub fn set_source(&self, source: NodeId) -> Result<()> {
        {
            let mut state = self.inner.state.lock();
            if !matches!(state.role, Role::Replica { .. }) {
                return Err(ReplicationError::NotReplica { node: self.id() });
            }
            state.role = Role::Replica { source };
            state.pending.clear();
            state.asked_from = None;
            // A transfer from the old source cannot be resumed from another.
            self.inner.discard_incoming(&mut state);
        }
        self.inner.subscribe(source);
        Ok(())
    }

    /// Makes this replica the primary of a new epoch (one above any it has
    /// seen), persisted before it takes effect; frames and acknowledgements
    /// of older epochs are rejected from then on. Returns the new epoch.
    pub fn promote(&self) -> Result<u64> {
        self.promote_to(None)
    }

    /// [`promote`](Self::promote) to an epoch an outside authority issued
    /// (a lease store's fencing token, a consensus coordinator); it must be
    /// above this node's.
    pub fn promote_to(&self, epoch: Option<u64>) -> Result<u64> {
        let (epoch, first, heartbeat, followers) = {
            let mut state = self.inner.state.lock();
            if !matches!(state.role, Role::Replica { .. }) {
                return Err(ReplicationError::NotReplica { node: self.id() });
            }
            let epoch = epoch.unwrap_or(state.epochs.epoch + 1);
            if epoch <= state.epochs.epoch {
                return Err(ReplicationError::PromotionRefused {
                    node: self.id(),
                    reason: format!("epoch {epoch} is not above {}", state.epochs.epoch),
                });
            }
            let first = state.last_sequence + 1;
            let mut epochs = state.epochs.clone();
            epochs.begin(epoch, first);
            // A replica that never adopted a lineage starts one.
            epochs.ensure_lineage();
            epochs.store(self.inner.fs.as_ref(), &self.inner.path)?;
            state.epochs = epochs;
            state.role = Role::Primary;
            state.pending.clear();
            self.inner.discard_incoming(&mut state);
            for follower in state.followers.values_mut() {
                follower.streaming = false;
            }
            state.event(ReplicationEvent::Promoted {
                epoch,
                first_sequence: first,
            });
            let followers: Vec<NodeId> = state.followers.keys().copied().collect();
            (epoch, first, heartbeat_of(&state), followers)
        };
        let _ = first;
        self.database()?.engine().refuse_local_writes(false)?;
        for id in followers {
            self.inner.transport.send(self.id(), id, heartbeat.clone());
        }
        Ok(epoch)
    }

    /// Makes this node (a fenced or restarted former primary, or any node)
    /// a replica of `source`: the database is reopened read-only and
    /// subscribes with its epoch and position; if its log diverged from the
    /// new lineage the source sends a snapshot that replaces it. Until
    /// then its reads may include the old primary's unacknowledged tail.
    pub fn rejoin(&self, source: NodeId) -> Result<()> {
        let old = self.inner.db.write().take();
        if let Some(db) = old {
            // A fenced engine may have stopped; its close error changes nothing.
            let _ = db.close();
        }
        {
            let mut state = self.inner.state.lock();
            state.role = Role::Replica { source };
            self.inner.discard_incoming(&mut state);
        }
        self.inner.open_database(true)?;
        {
            let mut state = self.inner.state.lock();
            let last = state.last_sequence;
            state.last_checksum = state
                .retained
                .iter()
                .find(|r| r.frame.last_sequence == last)
                .map(|r| r.frame.checksum);
        }
        self.inner.subscribe(source);
        Ok(())
    }

    /// Periodic work (call it every few milliseconds of the transport's
    /// clock): a source sends heartbeats, so followers that lost frames ask
    /// again; a follower re-requests a stalled snapshot chunk and fsyncs
    /// if it does not apply durably.
    pub fn tick(&self) {
        self.inner.tick();
    }

    /// Every follower's lag, by node id.
    pub fn lag(&self) -> Vec<FollowerLag> {
        let now = self.inner.transport.now_micros();
        let state = self.inner.state.lock();
        state
            .followers
            .iter()
            .map(|(&node, f)| {
                let applied = f.progress.applied;
                let oldest = state
                    .retained
                    .iter()
                    .find(|r| r.frame.last_sequence > applied)
                    .map(|r| r.shipped_micros);
                FollowerLag {
                    node,
                    synchronous: f.synchronous,
                    progress: f.progress,
                    sequence_lag: state.last_sequence.saturating_sub(applied),
                    time_lag: Duration::from_micros(oldest.map_or(0, |t| now.saturating_sub(t))),
                    snapshotting: f.snapshot.is_some(),
                }
            })
            .collect()
    }

    /// The events so far (oldest first; the last 1,024 are kept).
    pub fn events(&self) -> Vec<ReplicationEvent> {
        self.inner.state.lock().events.iter().cloned().collect()
    }

    /// The node's counters.
    pub fn stats(&self) -> ReplicationStats {
        self.inner.state.lock().stats
    }

    /// When the source was last heard from, in transport microseconds
    /// (what a failure detector's lease is measured against).
    pub fn source_heard_micros(&self) -> u64 {
        self.inner.state.lock().source_heard_micros
    }

    /// Closes the database (and makes the retained log durable, so a
    /// restart serves followers from it).
    pub fn close(&self) -> Result<()> {
        if let Some(db) = self.inner.db.write().take() {
            db.close()?;
        }
        if let Some(log) = self.inner.retained_log.lock().as_mut() {
            log.sync();
        }
        Ok(())
    }
}

/// The heartbeat a source sends.
pub(crate) fn heartbeat_of(state: &NodeState) -> Message {
    Message::Heartbeat {
        epoch: state.epochs.epoch,
        last_sequence: state.last_sequence,
    }
}

fn validate(options: &NodeOptions) -> Result<()> {
    if options.retained_frames == 0 || options.snapshot_chunk_bytes == 0 {
        return Err(ReplicationError::InvalidConfiguration(
            "retained_frames and snapshot_chunk_bytes must be positive".into(),
        ));
    }
    if let Some(SyncPolicy {
        quorum: Quorum::Any(0),
        ..
    }) = options.sync
    {
        return Err(ReplicationError::InvalidConfiguration(
            "a synchronous quorum of Any(0) waits for nobody: use sync: None".into(),
        ));
    }
    Ok(())
}

impl NodeInner {
    /// Opens (or reopens) the node's database, read-only (a replica: no
    /// local write, not even the bookkeeping opening a database does) or
    /// not, with the replication hook installed *before* the services
    /// load, so a primary's own writes while opening are framed too and a
    /// replica's position and epoch record are read afresh.
    pub(crate) fn open_database(&self, read_only: bool) -> Result<()> {
        let options = &self.options.database;
        super::snapshot::finish_install(self.fs.as_ref(), &self.path)?;
        let engine = crate::storage::Engine::open_with(
            Arc::clone(&self.fs),
            &self.path,
            crate::db::engine_options(options),
        )?;
        engine.refuse_local_writes(read_only)?;
        let mut epochs = EpochRecord::load(self.fs.as_ref(), &self.path)?;
        // A primary's writes begin (or continue) a lineage of its own.
        if !read_only && epochs.ensure_lineage() {
            epochs.store(self.fs.as_ref(), &self.path)?;
        }
        let last = engine.last_sequence()?;
        // The frames retained before a restart, so followers slightly
        // behind still catch up from the log.
        let (log, frames) = RetainedLog::open(
            Arc::clone(&self.fs),
            &self.path,
            last,
            self.options.retained_frames,
        );
        *self.retained_log.lock() = Some(log);
        {
            let mut state = self.state.lock();
            let now = self.transport.now_micros();
            state.retained = frames
                .into_iter()
                .map(|frame| Retained {
                    frame,
                    shipped_micros: now,
                })
                .collect();
            state.epochs = epochs;
            state.last_sequence = last;
            state.durable_sequence = last;
            state.last_checksum = None;
            state.pending.clear();
            state.asked_from = None;
            state.degraded = false;
            state.opening = true;
        }
        self.install_hook_on(&engine)?;
        let opened = Database::assemble(engine, Arc::clone(&self.fs), &self.path, options.clone());
        self.state.lock().opening = false;
        *self.db.write() = Some(opened?);
        Ok(())
    }
}
