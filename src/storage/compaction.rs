//! Compaction policy: when to compact, which files, and how hard to push
//! back on writers. The engine executes what this module decides; nothing
//! here reads or writes files.
//!
//! The policy is leveled compaction as in LevelDB and RocksDB:
//! - L0 is compacted into L1 once it holds
//!   [`CompactionOptions::l0_compaction_trigger_files`] files;
//! - level `n >= 1` has a target size of `level_base_bytes ×
//!   level_size_multiplier^(n-1)` and is compacted into `n + 1` when it
//!   exceeds it;
//! - the level with the highest score (L0: file count ÷ trigger; Ln: size ÷
//!   target) is compacted first, when its score reaches 1;
//! - within a level, compaction proceeds round-robin through the key space
//!   from the level's compaction pointer, so every key range is rewritten in
//!   turn.
//!
//! `docs/format-manifest.md` derives the read- and space-amplification bounds
//! this gives. The engine runs one compaction at a time: two concurrent ones
//! could write overlapping outputs into the same level.

// Nothing uses this module until the engine is assembled; the re-exports
// below are its interface.
#![cfg_attr(not(test), allow(dead_code, unused_imports))]

mod picker;
#[cfg(test)]
mod tests;
mod throttle;

pub(crate) use picker::{
    Compaction, compaction_scores, estimate_pending_compaction_bytes, l0_depth, level_target_bytes,
    pick_compaction,
};
pub(crate) use throttle::{WriteControl, memtable_delay_us, write_control};

use crate::storage::error::{Result, StorageError};

/// One mebibyte, for readable defaults.
const MIB: u64 = 1 << 20;

/// One gibibyte, for readable defaults.
const GIB: u64 = 1 << 30;

/// The knobs of the compaction policy and of write throttling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionOptions {
    /// L0 is compacted once it holds this many files. Default 4 (LevelDB,
    /// RocksDB, fjall). Each L0 file is one more probe per point read.
    pub l0_compaction_trigger_files: usize,
    /// Target size of L1 in bytes. Default 64 MiB.
    pub level_base_bytes: u64,
    /// Each level below L1 targets this many times the level above. Default
    /// 10, which bounds space amplification near 1.11×.
    pub level_size_multiplier: u64,
    /// The size at which the engine cuts compaction output files. Default
    /// 8 MiB (so L1 holds about 8 files and one Ln file overlaps about 10
    /// files of Ln+1).
    pub target_file_size_bytes: u64,
    /// The picker stops adding optional inputs (more L0 files) once a
    /// compaction reads this many bytes, and refuses a trivial move whose
    /// file overlaps more than this in the level below its destination
    /// (such a move would make a later compaction that large). A compaction
    /// always includes what correctness requires, even beyond this.
    /// Default 25 × the target file size (LevelDB's expansion limit).
    pub compaction_input_bytes_max: u64,
    /// From this many L0 files on, writes are delayed. Default 20 (RocksDB).
    pub l0_slowdown_writes_files: usize,
    /// At this many L0 files, writes stop until compaction catches up.
    /// Default 36 (RocksDB).
    pub l0_stop_writes_files: usize,
    /// From this many estimated pending compaction bytes on, writes are
    /// delayed. Default 64 GiB (RocksDB's soft limit).
    pub pending_compaction_slowdown_bytes: u64,
    /// At this many estimated pending compaction bytes, writes stop.
    /// Default 256 GiB (RocksDB's hard limit).
    pub pending_compaction_stop_bytes: u64,
    /// The delay per write batch just below a stop threshold; the delay
    /// rises from 0 at a slowdown threshold to this. Default 10 000 µs.
    pub write_delay_max_us: u64,
    /// The slowest pace, in memtable bytes per second, that waiting
    /// flushes slow writers to. Once the last immutable memtable allowed
    /// waits for its flush and the active one is half full, each batch is
    /// delayed in proportion to its bytes so that, as the active memtable
    /// fills, the writer is held to the measured flush rate (the time each
    /// memtable took to drain) — or to this rate, if that is higher or no
    /// flush was measured yet. Default 4 MiB/s.
    pub memtable_slowdown_bytes_per_s: u64,
}

impl Default for CompactionOptions {
    fn default() -> Self {
        let target_file_size_bytes = 8 * MIB;
        Self {
            l0_compaction_trigger_files: 4,
            level_base_bytes: 64 * MIB,
            level_size_multiplier: 10,
            target_file_size_bytes,
            compaction_input_bytes_max: 25 * target_file_size_bytes,
            l0_slowdown_writes_files: 20,
            l0_stop_writes_files: 36,
            pending_compaction_slowdown_bytes: 64 * GIB,
            pending_compaction_stop_bytes: 256 * GIB,
            write_delay_max_us: 10_000,
            memtable_slowdown_bytes_per_s: 4 * MIB,
        }
    }
}

impl CompactionOptions {
    /// Checks that the options describe a working policy: every size
    /// positive, and compaction triggered before writes slow, slowed before
    /// they stop.
    pub(crate) fn validate(&self) -> Result<()> {
        let invalid = |reason: &str| Err(StorageError::InvalidArgument(reason.to_owned()));
        if self.l0_compaction_trigger_files == 0 {
            return invalid("l0_compaction_trigger_files must be at least 1");
        }
        if self.level_base_bytes == 0 || self.target_file_size_bytes == 0 {
            return invalid("level_base_bytes and target_file_size_bytes must be positive");
        }
        if self.level_size_multiplier < 2 {
            return invalid("level_size_multiplier must be at least 2");
        }
        if self.compaction_input_bytes_max < self.target_file_size_bytes {
            return invalid("compaction_input_bytes_max must be at least target_file_size_bytes");
        }
        if self.l0_slowdown_writes_files < self.l0_compaction_trigger_files {
            return invalid(
                "l0_slowdown_writes_files must be at least l0_compaction_trigger_files",
            );
        }
        if self.l0_stop_writes_files <= self.l0_slowdown_writes_files {
            return invalid("l0_stop_writes_files must exceed l0_slowdown_writes_files");
        }
        if self.memtable_slowdown_bytes_per_s == 0 {
            return invalid("memtable_slowdown_bytes_per_s must be positive");
        }
        if self.pending_compaction_stop_bytes <= self.pending_compaction_slowdown_bytes {
            return invalid(
                "pending_compaction_stop_bytes must exceed pending_compaction_slowdown_bytes",
            );
        }
        Ok(())
    }
}
