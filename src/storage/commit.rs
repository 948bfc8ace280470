//! The commit pipeline: group commit of write batches through the log.
//!
//! Writers call [`CommitPipeline::commit`] with a batch and an optional
//! durability override. Concurrent writers form groups (see [`queue`]): the
//! leader of a group assigns consecutive sequence numbers, appends one
//! record per batch with a single write, syncs once if any batch of the
//! group asked for [`Durability::Sync`], calls the engine's apply callback
//! for the whole group (which inserts into the memtable), publishes the last
//! visible sequence number, and only then are the group's writers answered.
//! So a write is visible and (if `Sync`) durable before `commit` returns,
//! and visibility follows sequence-number order.
//!
//! A failed write, sync, log switch or apply puts the pipeline in a
//! terminal state: that caller and every later one gets
//! [`StorageError::PreviousIo`]. Nothing is retried — after a failed fsync
//! the OS may already have dropped the dirty pages.
//!
//! This module must never hold a lock other than the single log writer's
//! across disk I/O, and never acknowledges a `Sync` write before its fsync.

#![cfg_attr(any(not(test), loom), allow(dead_code))]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use super::batch::{BATCH_BYTES_MAX, WriteBatch};
use super::error::{Result, StorageError};
use super::fs::FileSystem;
use super::types::{FileNumber, MAX_SEQUENCE_NUMBER, SequenceNumber};

mod background;
mod log;
mod queue;

use background::BackgroundSync;
use log::LogFiles;
use queue::{GroupQueue, LeaderPanicked};

/// The default bound on the bytes of one commit group (RocksDB's 1 MiB):
/// large enough to amortise an fsync over many writers, small enough that a
/// follower does not wait behind a huge write.
pub(crate) const GROUP_BYTES_MAX_DEFAULT: usize = 1 << 20;

/// The longest a `Sync` group's leader gathers concurrent writers (see
/// [`queue`]); it gathers for at most half the recent sync time, so the wait
/// stays small next to the sync it lets writers share.
const GATHER_MAX: Duration = Duration::from_millis(1);

/// How long a follower of a group that does not sync (`Buffered`,
/// `InMemory`) yields before it sleeps: such a group takes microseconds,
/// while a sleeping follower's wake-up takes tens of them on a VM (RocksDB
/// yields up to 100 µs, `write_thread_max_yield_usec`).
const FOLLOWER_YIELD: Duration = Duration::from_micros(100);

/// The default interval of the background sync of `Buffered` writes.
pub(crate) const BACKGROUND_SYNC_INTERVAL_DEFAULT: Duration = Duration::from_millis(100);

/// The longest allowed background sync interval: the loss window of a
/// `Buffered` write on power failure stays bounded.
pub(crate) const BACKGROUND_SYNC_INTERVAL_MAX: Duration = Duration::from_secs(60);

/// When a committed write is safe from loss.
///
/// A database has one durability; each write may override it:
/// - on a database opened `InMemory` no file is ever written, so every
///   write is `InMemory` whatever it asks for;
/// - on a file-backed database, `Sync` makes that write (and, since the log
///   is sequential, every write before it) durable before `commit` returns;
///   `Buffered` acknowledges after write(2); an `InMemory` override is
///   treated as `Buffered`: the batch is still logged, because a batch
///   missing from the log would leave a hole that recovery could not tell
///   from lost data, and a later `Sync` write would make everything before
///   it durable anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Acknowledged after the log is fsynced (`fdatasync`).
    #[default]
    Sync,
    /// Acknowledged after write(2): survives a process crash; on power loss
    /// at most the last background sync interval is lost.
    Buffered,
    /// No files at all; everything is lost when the process ends (tests).
    InMemory,
}

/// How a pipeline is configured.
#[derive(Debug, Clone)]
pub(crate) struct CommitOptions {
    /// The database's durability.
    pub(crate) durability: Durability,
    /// How often `Buffered` writes are synced in the background.
    pub(crate) background_sync_interval: Duration,
    /// The most batch bytes one group commits (a larger batch commits alone).
    pub(crate) group_bytes_max: usize,
    /// Each new log file is extended with zeros to this many bytes (0:
    /// not at all), so appends overwrite in place; see `docs/format-wal.md`.
    pub(crate) log_preallocate_bytes: u64,
    /// How many obsolete logs are kept to be reused as later logs (0: every
    /// log is a new file); see [`CommitPipeline::recycle_log`].
    pub(crate) log_recycle_files: usize,
}

impl Default for CommitOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Sync,
            background_sync_interval: BACKGROUND_SYNC_INTERVAL_DEFAULT,
            group_bytes_max: GROUP_BYTES_MAX_DEFAULT,
            log_preallocate_bytes: 0,
            log_recycle_files: 0,
        }
    }
}

/// A batch after commit: its first sequence number and its operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommittedBatch {
    /// The sequence number of the batch's first entry (entry `i` has
    /// `first_seq + i`).
    pub(crate) first_seq: SequenceNumber,
    /// The operations.
    pub(crate) batch: WriteBatch,
}

/// The engine's callback that makes a committed group visible (inserts it
/// into the memtable). Called by one leader at a time, in sequence order.
/// An error is terminal for the pipeline.
pub(crate) type ApplyFn = Box<dyn Fn(&[CommittedBatch]) -> Result<()> + Send + Sync>;

/// The replication hook: called by the leader with each group after its
/// local append (and sync) and *before* the apply callback makes it
/// visible, so a write that must be acknowledged by standbys is never read
/// before they have acknowledged it (lossless semi-sync, MySQL's
/// AFTER_SYNC). An error stops the pipeline: the group is in the local log
/// but its outcome is unknown, so no later group may be made visible on top
/// of it. Also called for replicated groups on a replica, which is how a
/// replica forwards to replicas of its own (chains).
pub(crate) type ReplicateFn = Arc<dyn Fn(&[CommittedBatch]) -> Result<()> + Send + Sync>;

/// Group commit through the write-ahead log.
pub(crate) struct CommitPipeline {
    shared: Arc<Shared>,
    syncer: Mutex<Option<BackgroundSync>>,
}

impl std::fmt::Debug for CommitPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitPipeline")
            .field("durability", &self.shared.durability)
            .field("last_visible", &self.last_visible_sequence())
            .finish_non_exhaustive()
    }
}

struct Shared {
    queue: GroupQueue<Submission, Result<SequenceNumber>>,
    backing: Backing,
    durability: Durability,
    apply: ApplyFn,
    /// The next sequence number to assign; only the group leader writes it.
    next_seq: AtomicU64,
    /// Everything up to this sequence number is applied and readable.
    last_visible: AtomicU64,
    /// A moving average of how long a synced group's append and sync take,
    /// in nanoseconds: bounds how long a leader gathers.
    sync_nanos: AtomicU64,
    /// Groups committed, and how many of them synced the log.
    groups: AtomicU64,
    synced_groups: AtomicU64,
    /// Set once: the error that stopped the pipeline, or `Closed`.
    terminal: Mutex<Option<StorageError>>,
    /// The group being committed, reused from group to group so a group
    /// allocates nothing here (only the leader locks it, so it never waits).
    committed: Mutex<GroupScratch>,
    /// The replication hook, if the engine ships its log.
    replicate: RwLock<Option<ReplicateFn>>,
    /// A read replica: only [`CommitPipeline::commit_replicated`] writes.
    local_writes_refused: std::sync::atomic::AtomicBool,
    /// Held by a leader from its append through its apply, and by
    /// [`CommitPipeline::with_commits_paused`], so work done under it falls
    /// exactly between two groups.
    gate: Mutex<()>,
}

enum Backing {
    Memory { number: Mutex<FileNumber> },
    Files(Box<LogFiles>),
}

struct Submission {
    batch: WriteBatch,
    sync: bool,
    /// A replicated batch: the sequence number the primary gave its first
    /// entry, which it must get here too.
    at: Option<SequenceNumber>,
}

/// What a leader fills while committing a group, reused between groups.
#[derive(Default)]
struct GroupScratch {
    committed: Vec<CommittedBatch>,
    /// Submissions answered without being committed (a replicated batch
    /// already applied, or out of order), by position in the group.
    early: Vec<(usize, Result<SequenceNumber>)>,
}

impl CommitPipeline {
    /// Starts a pipeline whose first log is `log_number` in `dir` (created
    /// now; it must not exist) and whose next batch gets sequence number
    /// `last_sequence + 1`. An `InMemory` pipeline creates no file.
    pub(crate) fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        log_number: FileNumber,
        last_sequence: SequenceNumber,
        options: CommitOptions,
        apply: ApplyFn,
    ) -> Result<Self> {
        let interval = options.background_sync_interval;
        if interval.is_zero() || interval > BACKGROUND_SYNC_INTERVAL_MAX {
            return Err(StorageError::InvalidArgument(format!(
                "background sync interval {interval:?} must be in (0, {BACKGROUND_SYNC_INTERVAL_MAX:?}]"
            )));
        }
        if last_sequence >= MAX_SEQUENCE_NUMBER {
            return Err(StorageError::InvalidArgument(format!(
                "last sequence number {last_sequence} leaves no room"
            )));
        }
        let backing = match options.durability {
            Durability::InMemory => Backing::Memory {
                number: Mutex::new(log_number),
            },
            Durability::Sync | Durability::Buffered => {
                Backing::Files(Box::new(LogFiles::create(fs, dir, log_number, &options)?))
            }
        };
        let shared = Arc::new(Shared {
            queue: GroupQueue::new(options.group_bytes_max).with_follower_yield(FOLLOWER_YIELD),
            backing,
            durability: options.durability,
            apply,
            next_seq: AtomicU64::new(last_sequence + 1),
            last_visible: AtomicU64::new(last_sequence),
            sync_nanos: AtomicU64::new(0),
            groups: AtomicU64::new(0),
            synced_groups: AtomicU64::new(0),
            terminal: Mutex::new(None),
            committed: Mutex::new(GroupScratch::default()),
            replicate: RwLock::new(None),
            local_writes_refused: std::sync::atomic::AtomicBool::new(false),
            gate: Mutex::new(()),
        });
        let syncer = match shared.backing {
            Backing::Memory { .. } => None,
            Backing::Files(_) => {
                let round_shared = Arc::clone(&shared);
                Some(BackgroundSync::start(
                    interval,
                    Box::new(move || {
                        // The error is latched in the terminal state.
                        let _ = round_shared.sync_log();
                    }),
                )?)
            }
        };
        Ok(Self {
            shared,
            syncer: Mutex::new(syncer),
        })
    }

    /// Commits `batch` with the database's durability or `durability`
    /// (see [`Durability`] for what an override means). Returns the
    /// sequence number of the batch's last entry; once this returns, a read
    /// at that sequence number sees the whole batch. An empty batch writes
    /// nothing and returns the last visible sequence number.
    pub(crate) fn commit(
        &self,
        batch: WriteBatch,
        durability: Option<Durability>,
    ) -> Result<SequenceNumber> {
        self.shared.check_terminal()?;
        if self.shared.local_writes_refused.load(Ordering::Acquire) {
            return Err(StorageError::ReadOnlyReplica);
        }
        self.submit(batch, durability, None)
    }

    /// Commits a batch a primary committed with first sequence number
    /// `first_seq`, under that same number (a replica's apply path). A
    /// batch already committed here is answered without writing anything
    /// (applying a frame twice is harmless); one that does not continue the
    /// sequence exactly is refused with `InvalidArgument` and changes
    /// nothing. Returns the batch's last sequence number.
    pub(crate) fn commit_replicated(
        &self,
        first_seq: SequenceNumber,
        batch: WriteBatch,
        sync: bool,
    ) -> Result<SequenceNumber> {
        self.shared.check_terminal()?;
        if batch.is_empty() || first_seq == 0 || first_seq > MAX_SEQUENCE_NUMBER {
            return Err(StorageError::InvalidArgument(format!(
                "a replicated batch needs entries and a valid first sequence number (got {first_seq})"
            )));
        }
        let durability = if sync {
            Durability::Sync
        } else {
            Durability::Buffered
        };
        self.submit(batch, Some(durability), Some(first_seq))
    }

    /// Installs (or removes) the replication hook; see [`ReplicateFn`].
    pub(crate) fn set_replication_hook(&self, hook: Option<ReplicateFn>) {
        *self.shared.replicate.write() = hook;
    }

    /// Refuses (or again accepts) local commits: a read replica only takes
    /// [`commit_replicated`](Self::commit_replicated) batches.
    pub(crate) fn refuse_local_writes(&self, refuse: bool) {
        self.shared
            .local_writes_refused
            .store(refuse, Ordering::Release);
    }

    /// Whether local commits are refused (a read replica).
    pub(crate) fn local_writes_refused(&self) -> bool {
        self.shared.local_writes_refused.load(Ordering::Acquire)
    }

    fn submit(
        &self,
        batch: WriteBatch,
        durability: Option<Durability>,
        at: Option<SequenceNumber>,
    ) -> Result<SequenceNumber> {
        if batch.encoded_len() > BATCH_BYTES_MAX {
            return Err(StorageError::InvalidArgument(format!(
                "batch of {} bytes exceeds the limit of {BATCH_BYTES_MAX}",
                batch.encoded_len()
            )));
        }
        if batch.is_empty() {
            return Ok(self.last_visible_sequence());
        }
        let sync = durability.unwrap_or(self.shared.durability) == Durability::Sync;
        let bytes = batch.encoded_len();
        let submission = Submission { batch, sync, at };
        let shared = &self.shared;
        let gather = if sync {
            Duration::from_nanos(shared.sync_nanos.load(Ordering::Relaxed) / 2).min(GATHER_MAX)
        } else {
            Duration::ZERO
        };
        match shared
            .queue
            .submit(submission, bytes, gather, |group, results| {
                shared.lead(group, results);
            }) {
            Ok(result) => result,
            Err(LeaderPanicked) => Err(shared.fail(StorageError::io(
                "commit",
                shared.dir(),
                std::io::Error::other("a commit group leader panicked"),
            ))),
        }
    }

    /// Everything up to this sequence number is committed and readable.
    pub(crate) fn last_visible_sequence(&self) -> SequenceNumber {
        self.shared.last_visible.load(Ordering::Acquire)
    }

    /// How many groups were committed, and how many of them synced the log
    /// (a `Sync` batch costs an fsync only through its group).
    pub(crate) fn group_counts(&self) -> (u64, u64) {
        (
            self.shared.groups.load(Ordering::Relaxed),
            self.shared.synced_groups.load(Ordering::Relaxed),
        )
    }

    /// The number of the log currently written.
    pub(crate) fn log_number(&self) -> FileNumber {
        match &self.shared.backing {
            Backing::Memory { number } => *number.lock(),
            Backing::Files(files) => files.number(),
        }
    }

    /// The current log's number and how many bytes were appended to it
    /// (`None` for `InMemory`). A copy of that many bytes holds every
    /// batch committed before this call.
    pub(crate) fn log_written(&self) -> Option<(FileNumber, u64)> {
        match &self.shared.backing {
            Backing::Memory { .. } => None,
            Backing::Files(files) => Some(files.written()),
        }
    }

    /// Makes every write so far durable (a no-op for `InMemory`).
    pub(crate) fn sync_log(&self) -> Result<()> {
        self.shared.check_terminal()?;
        self.shared.sync_log()
    }

    /// Offers obsolete log `number` (older than the current log, and no
    /// longer needed by recovery or by any checkpoint) for reuse as a later
    /// log instead of deleting it. True if the pipeline keeps it (the
    /// caller must then leave the file alone); false if it should be
    /// deleted. Asking again about a kept log answers true.
    pub(crate) fn recycle_log(&self, number: FileNumber) -> bool {
        match &self.shared.backing {
            Backing::Memory { .. } => false,
            Backing::Files(files) => files.recycle(number),
        }
    }

    /// Switches to a new log file `number` (greater than the current one)
    /// and returns the previous number. The previous log is synced first.
    /// Groups committed before the switch are in the old log, groups after
    /// it in the new one; calling it from inside the apply callback makes
    /// the boundary fall exactly after that group.
    pub(crate) fn switch_log(&self, number: FileNumber) -> Result<FileNumber> {
        self.shared.check_terminal()?;
        match &self.shared.backing {
            Backing::Memory { number: current } => {
                let mut current = current.lock();
                if number <= *current {
                    return Err(StorageError::InvalidArgument(format!(
                        "new log number {number} must exceed the current {current}"
                    )));
                }
                Ok(std::mem::replace(&mut *current, number))
            }
            Backing::Files(files) => files.switch(number).map_err(|e| match e {
                StorageError::InvalidArgument(_) => e,
                other => self.shared.fail(other),
            }),
        }
    }

    /// Runs `f` while no group is between its append and its apply, so a
    /// [`switch_log`](Self::switch_log) inside `f` puts the log boundary
    /// exactly where the memtable boundary is (the engine's forced rotation).
    /// `f` must not commit.
    pub(crate) fn with_commits_paused<R>(&self, f: impl FnOnce() -> R) -> R {
        let _gate = self.shared.gate.lock();
        f()
    }

    /// Runs one background sync round now and waits for it (tests use this
    /// instead of waiting for the interval). A no-op for `InMemory`.
    pub(crate) fn run_background_sync(&self) {
        if let Some(syncer) = self.syncer.lock().as_ref() {
            syncer.sync_and_wait();
        }
    }

    /// Stops accepting commits, stops the background syncer and syncs the
    /// log. Later calls return [`StorageError::Closed`] (or the earlier
    /// failure).
    pub(crate) fn close(&self) -> Result<()> {
        let terminal = self.shared.set_terminal(StorageError::Closed);
        let stopped = match self.syncer.lock().take() {
            Some(mut syncer) => syncer.stop(),
            None => Ok(()),
        };
        if let StorageError::PreviousIo { .. } = terminal {
            return Err(terminal);
        }
        if let Backing::Files(files) = &self.shared.backing {
            // Under the writer lock: a group in flight finishes its append
            // first, and later groups see the terminal state.
            files.writer().sync().map_err(|e| self.shared.fail(e))?;
        }
        stopped
    }
}

impl Shared {
    fn dir(&self) -> &Path {
        match &self.backing {
            Backing::Memory { .. } => Path::new(""),
            Backing::Files(files) => files.dir(),
        }
    }

    fn check_terminal(&self) -> Result<()> {
        match &*self.terminal.lock() {
            None => Ok(()),
            Some(e) => Err(e.clone()),
        }
    }

    /// Latches `error` as terminal (unless something already is) and
    /// returns what callers see from now on.
    fn fail(&self, error: StorageError) -> StorageError {
        self.set_terminal(StorageError::PreviousIo {
            cause: Arc::new(error),
        })
    }

    fn set_terminal(&self, error: StorageError) -> StorageError {
        self.terminal.lock().get_or_insert(error).clone()
    }

    /// Syncs whatever is appended but not durable; failures are terminal.
    fn sync_log(&self) -> Result<()> {
        if let Some(StorageError::PreviousIo { .. }) = &*self.terminal.lock() {
            return Ok(());
        }
        match &self.backing {
            Backing::Memory { .. } => Ok(()),
            Backing::Files(files) => files.sync_pending().map_err(|e| self.fail(e)),
        }
    }

    /// Folds one synced group's append-and-sync time into the average
    /// (weight 1/8, like TCP's smoothed round-trip time).
    fn record_sync_time(&self, elapsed: Duration) {
        let sample = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let old = self.sync_nanos.load(Ordering::Relaxed);
        let average = if old == 0 {
            sample
        } else {
            old - old / 8 + sample / 8
        };
        self.sync_nanos.store(average, Ordering::Relaxed);
    }

    /// Runs one group as its leader: takes every submission out of
    /// `group` and pushes one result per batch, in order, onto `results`.
    fn lead(&self, group: &mut Vec<Submission>, results: &mut Vec<Result<SequenceNumber>>) {
        let count = group.len();
        let mut scratch = self.committed.lock();
        let GroupScratch { committed, early } = &mut *scratch;
        // Empty unless a leader panicked mid-group (then no group follows).
        committed.clear();
        early.clear();
        let outcome = self.commit_group(group, committed, early);
        let mut committed_results = committed
            .iter()
            .map(|c| Ok(c.first_seq + u64::from(c.batch.count()) - 1));
        let mut early_results = early.drain(..).peekable();
        for position in 0..count {
            if early_results.peek().is_some_and(|(p, _)| *p == position) {
                if let Some((_, result)) = early_results.next() {
                    results.push(result);
                }
                continue;
            }
            match &outcome {
                Ok(()) => results.extend(committed_results.next()),
                Err(e) => results.push(Err(e.clone())),
            }
        }
        drop(committed_results);
        // Drops the batches but keeps the vector's room for the next group.
        committed.clear();
    }

    /// Numbers the group's batches (moving them into `committed`), appends
    /// and syncs them, applies them and publishes them.
    fn commit_group(
        &self,
        group: &mut Vec<Submission>,
        committed: &mut Vec<CommittedBatch>,
        early: &mut Vec<(usize, Result<SequenceNumber>)>,
    ) -> Result<()> {
        let terminal = self.check_terminal();
        let first = self.next_seq.load(Ordering::Acquire);
        let mut next = first;
        let mut sync = false;
        for (position, submission) in group.drain(..).enumerate() {
            if let Some(at) = submission.at {
                let last = at + u64::from(submission.batch.count()) - 1;
                if last < next {
                    // Already committed here: a duplicate frame.
                    early.push((position, Ok(last)));
                    continue;
                }
                if at != next {
                    early.push((
                        position,
                        Err(StorageError::InvalidArgument(format!(
                            "replicated batch {at}..={last} does not continue at sequence {next}"
                        ))),
                    ));
                    continue;
                }
            }
            let first_seq = next;
            next += u64::from(submission.batch.count());
            sync |= submission.sync;
            committed.push(CommittedBatch {
                first_seq,
                batch: submission.batch,
            });
        }
        terminal?;
        if committed.is_empty() {
            return Ok(());
        }
        assert!(
            next - 1 <= MAX_SEQUENCE_NUMBER,
            "sequence numbers exhausted: group {first}..{next}"
        );
        let _gate = self.gate.lock();
        if let Backing::Files(files) = &self.backing {
            let mut writer = files.writer();
            // Checked again under the writer lock: once `close` has synced
            // under this lock, no group may append after it.
            self.check_terminal()?;
            let records = committed.iter().map(|c| (c.first_seq, &c.batch));
            // Only synced groups are timed: unsynced ones skip the clock.
            let started = sync.then(Instant::now);
            writer
                .append_group(records, sync)
                .map_err(|e| self.fail(e))?;
            if let Some(started) = started {
                self.record_sync_time(started.elapsed());
                self.synced_groups.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.groups.fetch_add(1, Ordering::Relaxed);
        self.next_seq.store(next, Ordering::Release);
        let hook = self.replicate.read().clone();
        if let Some(hook) = hook
            && let Err(e) = hook(committed)
        {
            // The group is logged but must not become visible; nothing may
            // be made visible after it either.
            self.set_terminal(StorageError::PreviousIo {
                cause: Arc::new(e.clone()),
            });
            return Err(e);
        }
        (self.apply)(committed).map_err(|e| self.fail(e))?;
        self.last_visible.store(next - 1, Ordering::Release);
        Ok(())
    }
}

impl Drop for CommitPipeline {
    fn drop(&mut self) {
        if let Some(mut syncer) = self.syncer.lock().take() {
            // Drop cannot report; `close` is the way to see errors.
            let _ = syncer.stop();
        }
    }
}

#[cfg(test)]
#[cfg(not(loom))]
mod tests;
