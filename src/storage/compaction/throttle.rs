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
