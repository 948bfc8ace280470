//! The engine's replication hooks: the callback through which the commit
//! leader ships each group before making it visible, the apply path of a
//! replica (a primary's batch committed under the primary's sequence
//! numbers), and the read-replica switch that refuses local writes.
//!
//! The replication layer (`crate::replication`) owns framing, transports
//! and acknowledgements; this file only opens the engine to it.

use super::Engine;
use crate::storage::batch::WriteBatch;
use crate::storage::commit::ReplicateFn;
use crate::storage::error::Result;
use crate::storage::types::SequenceNumber;

impl Engine {
    /// Installs (or with `None` removes) the hook the commit leader calls
    /// with every group after its local append and before it is visible.
    pub(crate) fn set_replication_hook(&self, hook: Option<ReplicateFn>) -> Result<()> {
        self.shared().pipeline()?.set_replication_hook(hook);
        Ok(())
    }

    /// Commits a batch the primary numbered from `first_seq` under the same
    /// numbers, to this engine's own log (fsynced if `sync`) and memtable.
    /// A batch already here is a no-op; one that leaves a gap is refused
    /// with `InvalidArgument` and changes nothing. Returns its last sequence
    /// number.
    pub(crate) fn apply_replicated(
        &self,
        first_seq: SequenceNumber,
        batch: WriteBatch,
        sync: bool,
    ) -> Result<SequenceNumber> {
        let shared = self.shared();
        shared.check()?;
        let committed = shared.pipeline()?.commit_replicated(first_seq, batch, sync);
        shared.latch(committed)
    }

    /// `Ok` unless a failed write or fsync has stopped the engine (then the
    /// error every later call returns). A replica that failed to apply a
    /// frame may hold more on disk than it knows of — the frame may have
    /// reached the file before its fsync failed — so it must not take part
    /// in replication again until it is reopened and has recounted.
    pub(crate) fn healthy(&self) -> Result<()> {
        self.shared().check()
    }

    /// Makes this engine a read replica (`true`): every local write fails
    /// with [`StorageError::ReadOnlyReplica`](crate::storage::StorageError::ReadOnlyReplica)
    /// and only [`apply_replicated`](Self::apply_replicated) writes. `false`
    /// accepts local writes again (a promotion).
    pub(crate) fn refuse_local_writes(&self, refuse: bool) -> Result<()> {
        self.shared().pipeline()?.refuse_local_writes(refuse);
        Ok(())
    }

    /// Whether this engine is a read replica.
    pub fn is_read_only(&self) -> bool {
        self.shared()
            .pipeline()
            .is_ok_and(|p| p.local_writes_refused())
    }

    /// The last sequence number whose batch is committed and visible.
    pub fn last_sequence(&self) -> Result<SequenceNumber> {
        Ok(self.shared().pipeline()?.last_visible_sequence())
    }
}
