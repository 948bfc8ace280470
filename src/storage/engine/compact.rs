//! Executing the compactions `compaction::pick_compaction` chooses: a
//! trivial move is a manifest edit alone; otherwise the inputs are merged
//! through a `CompactionIter` (which keeps every version a registered
//! snapshot can see) into output files cut by `should_roll_before`, and
//! the outputs replace the inputs in one manifest edit. Memtables waiting
//! for a flush are flushed between two output files.

use std::sync::atomic::Ordering;

use super::flush::segment_options;
use super::state::{Shared, file_meta};
use crate::storage::compaction::{Compaction, pick_compaction};
use crate::storage::error::{Result, StorageError};
use crate::storage::merge::{CompactionIter, EntryIter};
use crate::storage::range::{Direction, KeyRange};
use crate::storage::segment::SegmentWriter;
use crate::storage::version::FileMeta;

impl Shared {
    /// Runs compactions in this thread until none is due.
    pub(super) fn run_pending_compactions(&self) -> Result<()> {
        while self.run_one_compaction()? {}
        Ok(())
    }

    /// Runs the most urgent compaction, if one is due; returns whether one ran.
    pub(super) fn run_one_compaction(&self) -> Result<bool> {
        self.check()?;
        let work = self.work.lock();
        let version = self.versions.current();
        let Some(compaction) = pick_compaction(&version, &self.options.compaction) else {
            return Ok(false);
        };
        drop(version);
        let ran = self.execute(&compaction);
        drop(compaction);
        let ran = ran.and_then(|()| self.delete_obsolete_files());
        self.latch(ran)?;
        drop(work);
        self.progressed();
        Ok(true)
    }

    fn execute(&self, compaction: &Compaction) -> Result<()> {
        if compaction.trivial_move {
            let version = self
                .versions
                .log_and_apply(&compaction.trivial_move_edit())?;
            self.install_version(version, None);
            self.counters.trivial_moves.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let mut sources: Vec<EntryIter> = Vec::new();
        for file in compaction.all_inputs() {
            let reader = self.segment(file.number())?;
            sources.push(Box::new(reader.iter(KeyRange::all(), Direction::Forward)));
        }
        let oldest_snapshot = self.oldest_snapshot()?;
        let merged = CompactionIter::new(sources, oldest_snapshot, compaction.bottommost);
        let outputs = self.write_outputs(merged, compaction.output_level)?;
        let written: u64 = outputs.iter().map(|f| f.size_bytes).sum();
        let version = self.versions.log_and_apply(&compaction.edit(outputs))?;
        self.raise_horizon(oldest_snapshot);
        self.install_version(version, None);
        self.counters.compactions.fetch_add(1, Ordering::Relaxed);
        self.counters
            .compaction_read_bytes
            .fetch_add(compaction.input_bytes(), Ordering::Relaxed);
        self.counters
            .compaction_write_bytes
            .fetch_add(written, Ordering::Relaxed);
        Ok(())
    }

    /// Flushes the memtables that wait for it, between two output files of
    /// a compaction (which holds the work lock), so writers are never held
    /// up by more than one output file's worth of compaction.
    ///
    /// Safe because a flush only adds an L0 file holding data newer than
    /// everything the compaction reads, and the compaction's edit only
    /// removes its inputs and adds its outputs: applied after the flush's
    /// edit it still names exactly the files it replaces. L0 is ordered by
    /// sequence number, not file number, so the flushed file reads first.
    fn flush_between_outputs(&self) -> Result<()> {
        while self.flush_oldest_locked()? {
            self.progressed();
        }
        Ok(())
    }

    /// Writes the merged entries to output files of `level`, starting a new
    /// file where `should_roll_before` says so. Every output is synced and
    /// its name made durable before this returns.
    fn write_outputs(&self, merged: CompactionIter, level: usize) -> Result<Vec<FileMeta>> {
        let options = segment_options(&self.options);
        let mut outputs = Vec::new();
        let mut writer: Option<SegmentWriter> = None;
        for entry in merged {
            let entry = entry?;
            let split = self.options.segment_split_prefix_bytes;
            if let Some(current) = writer.take_if(|w| {
                w.should_roll_before(&entry.key)
                    || w.last_key()
                        .is_some_and(|last| super::crosses_split_prefix(split, last, &entry.key))
            }) {
                outputs.push(current.finish()?);
                self.flush_between_outputs()?;
            }
            let current = match &mut writer {
                Some(current) => current,
                None => {
                    let number = self.versions.new_file_number();
                    let path = super::segment_file_path(&self.dir, number);
                    writer.insert(SegmentWriter::create(
                        self.fs.as_ref(),
                        &path,
                        number,
                        options,
                    )?)
                }
            };
            current.add(&entry.key, entry.seq, entry.kind, &entry.value)?;
        }
        if let Some(current) = writer {
            outputs.push(current.finish()?);
        }
        if !outputs.is_empty() {
            self.fs
                .sync_dir(&self.dir)
                .map_err(|e| StorageError::io("fsync_dir", &self.dir, e))?;
        }
        Ok(outputs.iter().map(|meta| file_meta(meta, level)).collect())
    }
}
