//! Writes: throttling, the commit pipeline, and memtable rotation.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Engine;
use super::state::{ImmutableMemtable, ReadState, Shared, backlog_control};
use crate::storage::batch::WriteBatch;
use crate::storage::commit::Durability;
use crate::storage::compaction::{WriteControl, memtable_delay_us};
use crate::storage::error::Result;
use crate::storage::memtable::{ENTRY_OVERHEAD_BYTES, Memtable};
use crate::storage::types::SequenceNumber;

impl Engine {
    /// Writes `batch` atomically with the engine's durability and returns
    /// the sequence number of its last entry; the whole batch is visible to
    /// reads once this returns.
    pub fn write(&self, batch: WriteBatch) -> Result<SequenceNumber> {
        self.shared().write(batch, None)
    }

    /// Writes `batch` with `durability` instead of the engine's.
    pub fn write_with(&self, batch: WriteBatch, durability: Durability) -> Result<SequenceNumber> {
        self.shared().write(batch, Some(durability))
    }

    /// Sets `key` to `value`.
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<SequenceNumber> {
        let mut batch = WriteBatch::new();
        batch.put(key, value);
        self.write(batch)
    }

    /// Deletes `key`.
    pub fn delete(&self, key: &[u8]) -> Result<SequenceNumber> {
        let mut batch = WriteBatch::new();
        batch.delete(key);
        self.write(batch)
    }
}

impl Shared {
    fn write(&self, batch: WriteBatch, durability: Option<Durability>) -> Result<SequenceNumber> {
        self.check()?;
        let bytes = batch.encoded_len() as u64;
        // What the batch adds to the memtable, as the memtable counts it.
        let memtable_bytes = batch.encoded_len() + batch.len() * ENTRY_OVERHEAD_BYTES;
        self.throttle(memtable_bytes)?;
        let seq = self.pipeline()?.commit(batch, durability);
        let seq = self.latch(seq)?;
        self.counters.write_batches.fetch_add(1, Ordering::Relaxed);
        self.counters
            .write_bytes
            .fetch_add(bytes, Ordering::Relaxed);
        if !self.unthrottled.load(Ordering::Acquire) && !self.read_state().immutable.is_empty() {
            self.notify();
        }
        Ok(seq)
    }

    /// Delays or stops the writer while compaction or flushing is behind:
    /// the delay grows smoothly from zero at the slowdown thresholds (L0
    /// files, pending compaction bytes, and the last memtable allowed
    /// waiting for its flush while the active one fills), and only at the
    /// stop thresholds (or with too many memtables waiting) does the writer
    /// wait for the background to make progress.
    fn throttle(&self, memtable_bytes: usize) -> Result<()> {
        if self.unthrottled.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut stopped = false;
        loop {
            self.check()?;
            let state = self.read_state();
            let options = &self.options.compaction;
            let control = if state.immutable.len() >= super::IMMUTABLE_MEMTABLES_MAX {
                WriteControl::Stop
            } else {
                let drain_bytes_per_s = self
                    .flush_rate_bytes_per_s
                    .load(Ordering::Relaxed)
                    .max(options.memtable_slowdown_bytes_per_s);
                let memtable_delay_us = memtable_delay_us(
                    state.immutable.len(),
                    super::IMMUTABLE_MEMTABLES_MAX,
                    state.active.approximate_memory_bytes(),
                    self.options.memtable_bytes_max,
                    memtable_bytes,
                    drain_bytes_per_s,
                );
                match backlog_control(&state.version, options) {
                    WriteControl::Stop => WriteControl::Stop,
                    backlog => {
                        let delay_us = backlog.delay_us().unwrap_or(0).max(memtable_delay_us);
                        if delay_us == 0 {
                            WriteControl::Normal
                        } else {
                            WriteControl::SlowDown { delay_us }
                        }
                    }
                }
            };
            drop(state);
            match control {
                WriteControl::Normal => return Ok(()),
                WriteControl::SlowDown { delay_us } => {
                    self.counters
                        .write_slowdowns
                        .fetch_add(1, Ordering::Relaxed);
                    self.counters
                        .write_slowdown_us
                        .fetch_add(delay_us, Ordering::Relaxed);
                    self.pay_delay(delay_us);
                    return Ok(());
                }
                WriteControl::Stop => {
                    if !stopped {
                        self.counters.write_stops.fetch_add(1, Ordering::Relaxed);
                        stopped = true;
                    }
                    self.wait_for_progress()?;
                }
            }
        }
    }

    /// Adds `delay_us` to the writers' delay debt and sleeps it off once
    /// it reaches [`SLOWDOWN_SLEEP_US_MIN`]: a sleep shorter than that
    /// costs a timer slack's worth (about 50 µs on Linux) whatever is
    /// asked, so tiny per-batch delays would slow small batches far more
    /// than intended.
    fn pay_delay(&self, delay_us: u64) {
        let debt = self
            .slowdown_debt_us
            .fetch_add(delay_us, Ordering::AcqRel)
            .saturating_add(delay_us);
        if debt >= SLOWDOWN_SLEEP_US_MIN {
            let owed = self.slowdown_debt_us.swap(0, Ordering::AcqRel);
            std::thread::sleep(Duration::from_micros(owed));
        }
    }

    /// Waits until the background does some work, or does it here when
    /// the engine runs no background thread.
    fn wait_for_progress(&self) -> Result<()> {
        if !self.options.background_threads {
            self.run_pending_flushes()?;
            return self.run_one_compaction().map(|_| ());
        }
        self.notify();
        let mut woken = self.progress_lock.lock();
        // Bounded so a missed notification costs a short delay, not a hang.
        self.progress
            .wait_for(&mut woken, Duration::from_millis(PROGRESS_WAIT_MS));
        Ok(())
    }

    /// Rotates the active memtable if it holds anything. Must run where no
    /// group is between its append and its apply: inside the apply
    /// callback or under [`CommitPipeline::with_commits_paused`].
    pub(super) fn rotate_locked(&self) -> Result<()> {
        // Only rotation replaces the active memtable, and rotations are
        // serialized by the commit gate, so it cannot change under us.
        let active = self.read_state().active.clone();
        if active.is_empty() {
            return Ok(());
        }
        let next_log_number = self.versions.new_file_number();
        self.pipeline()?.switch_log(next_log_number)?;
        let mut current = self.read_state.lock();
        let mut immutable = current.immutable.clone();
        immutable.push(Arc::new(ImmutableMemtable {
            memtable: active,
            next_log_number,
            rotated_at: std::time::Instant::now(),
        }));
        let next = ReadState {
            active: Memtable::with_pool(Arc::clone(&self.arena_pool)),
            immutable,
            version: Arc::clone(&current.version),
        };
        self.publish_read_state(&mut current, next);
        drop(current);
        self.notify();
        Ok(())
    }

    /// Rotates the active memtable now, between two commit groups.
    pub(super) fn rotate_now(&self) -> Result<()> {
        let pipeline = self.pipeline()?;
        let rotated = pipeline.with_commits_paused(|| self.rotate_locked());
        self.latch(rotated)
    }
}

/// The longest a stopped writer waits for one notification, in milliseconds.
const PROGRESS_WAIT_MS: u64 = 10;

/// Write delays are accumulated and slept in pieces of at least this many
/// microseconds (see `Shared::pay_delay`).
const SLOWDOWN_SLEEP_US_MIN: u64 = 1_000;
