//! Write throttling: slowing writers smoothly when compaction falls behind,
//! so they are delayed long before they are ever stopped.
//!
//! Two signals measure the backlog: the number of L0 files (each one more
//! probe per point read) and the estimated pending compaction bytes (see
//! `estimate_pending_compaction_bytes`). For each signal `x` with a slowdown
//! threshold `slow` and a stop threshold `stop`, the pressure is
//! `p = (x - slow) / (stop - slow)`; the larger pressure wins. Below `slow`
//! writes run freely; from `slow` to `stop` each write batch waits
//! `write_delay_max_us × p²` — zero at `slow` and with zero slope there, so
//! the delay fades in without a step; at `stop` writes wait for compaction.
//!
//! Memtables waiting for their flush are a third signal
//! ([`memtable_delay_us`]): once one more rotation would stop writers, each
//! batch is delayed in proportion to its bytes, to the square of the
//! active memtable's fill past half, and inversely to the measured flush
//! rate, so a writer outrunning the flushes slows to their pace before it
//! fills the memtable that would stop it.

use super::CompactionOptions;

/// What a writer must do before its next batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteControl {
    /// Write at full speed.
    Normal,
    /// Sleep this long before writing the batch.
    SlowDown {
        /// The delay in microseconds.
        delay_us: u64,
    },
    /// Wait until compaction lowers the backlog below the stop thresholds.
    Stop,
}

impl WriteControl {
    /// The delay before the next batch, or `None` when writes are stopped.
    pub(crate) fn delay_us(self) -> Option<u64> {
        match self {
            Self::Normal => Some(0),
            Self::SlowDown { delay_us } => Some(delay_us),
            Self::Stop => None,
        }
    }
}

/// The control for a backlog of `l0_files` L0 files and
/// `pending_compaction_bytes` estimated bytes to compact.
pub(crate) fn write_control(
    l0_files: usize,
    pending_compaction_bytes: u64,
    options: &CompactionOptions,
) -> WriteControl {
    let l0 = pressure(
        l0_files as f64,
        options.l0_slowdown_writes_files as f64,
        options.l0_stop_writes_files as f64,
    );
    let bytes = pressure(
        pending_compaction_bytes as f64,
        options.pending_compaction_slowdown_bytes as f64,
        options.pending_compaction_stop_bytes as f64,
    );
    let pressure = l0.max(bytes);
    if pressure >= 1.0 {
        return WriteControl::Stop;
    }
    let delay_us = (options.write_delay_max_us as f64 * pressure * pressure).round() as u64;
    if delay_us == 0 {
        WriteControl::Normal
    } else {
        WriteControl::SlowDown { delay_us }
    }
}

/// How full the active memtable must be before a waiting flush slows
/// writers: most flushes end while the next memtable is in its first half,
/// and those should cost the writer nothing.
pub(crate) const MEMTABLE_SLOWDOWN_FILL_START: f64 = 0.5;

/// The delay, in microseconds, for a batch that adds `batch_bytes` to the
/// active memtable when `immutable_memtables` memtables wait for their
/// flush, the active one holds `active_bytes` of `memtable_bytes_max`, and
/// writers stop at `immutable_memtables_max` waiting memtables.
///
/// Zero until the last memtable allowed waits (one more rotation would
/// stop writers) and the active one is [`MEMTABLE_SLOWDOWN_FILL_START`]
/// full; then `batch_bytes × p² / drain_bytes_per_s`, where `p` goes from
/// 0 there to 1 at a full memtable and `drain_bytes_per_s` is how fast
/// flushes empty memtables: the delay fades in without a step, slows many
/// small batches and few large ones alike, and just before the stop holds
/// the writer to the flushes' pace, so the flush thread always has the
/// next memtable ready but the writer does not overtake it. A flush that
/// finishes first resets it.
pub(crate) fn memtable_delay_us(
    immutable_memtables: usize,
    immutable_memtables_max: usize,
    active_bytes: usize,
    memtable_bytes_max: usize,
    batch_bytes: usize,
    drain_bytes_per_s: u64,
) -> u64 {
    if immutable_memtables + 1 != immutable_memtables_max
        || memtable_bytes_max == 0
        || drain_bytes_per_s == 0
    {
        return 0;
    }
    let fill = (active_bytes as f64 / memtable_bytes_max as f64).min(1.0);
    let pressure = pressure(fill, MEMTABLE_SLOWDOWN_FILL_START, 1.0);
    let seconds = batch_bytes as f64 * pressure * pressure / drain_bytes_per_s as f64;
    (seconds * 1e6).round() as u64
}

/// How far `value` is from `slow` (0) towards `stop` (1); 0 below `slow`.
fn pressure(value: f64, slow: f64, stop: f64) -> f64 {
    if value >= stop {
        return 1.0;
    }
    if value <= slow || stop <= slow {
        return 0.0;
    }
    (value - slow) / (stop - slow)
}
