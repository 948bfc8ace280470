//! Failover: manual promotion is [`ReplicationNode::promote`]; this module
//! drives it automatically from a pluggable [`FailureDetector`] (leases by
//! default) and a [`FailoverCoordinator`] that must agree.
//!
//! A two-node pair cannot fail over automatically on its own: when the
//! standby stops hearing the primary it cannot tell a dead primary from a
//! partition, and promoting in a partition makes two primaries. So a
//! promotion needs a *third voter* — the coordinator — that hands out each
//! epoch to at most one candidate. [`Witness`] is the in-process one (a
//! witness node's single vote, like RDS Multi-AZ's observer or a Patroni
//! DCS); an openraft-backed coordinator (three voters: two data nodes and
//! a witness, storing only `{epoch, primary}`) fits the same trait later.
//! The epoch a coordinator grants is the fencing token the new primary
//! stamps on everything it sends, so the old primary, if alive, is fenced
//! as soon as anyone at the new epoch answers it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::error::{ReplicationError, Result};
use super::frame::NodeId;
use super::node::{ReplicationNode, Role};

/// Decides when a node is considered failed.
pub trait FailureDetector: Send {
    /// Records that `node` was last heard at `heard_micros`.
    fn observe(&mut self, node: NodeId, heard_micros: u64);
    /// Whether `node` is suspected failed at `now_micros`.
    fn suspects(&self, node: NodeId, now_micros: u64) -> bool;
}

/// A lease: a node is suspected once it has not been heard for longer
/// than the lease.
#[derive(Debug, Clone)]
pub struct LeaseDetector {
    lease: Duration,
    heard: BTreeMap<NodeId, u64>,
}

impl LeaseDetector {
    /// A detector with the given lease.
    pub fn new(lease: Duration) -> Self {
        Self {
            lease,
            heard: BTreeMap::new(),
        }
    }
}

impl FailureDetector for LeaseDetector {
    fn observe(&mut self, node: NodeId, heard_micros: u64) {
        let slot = self.heard.entry(node).or_insert(heard_micros);
        *slot = (*slot).max(heard_micros);
    }

    fn suspects(&self, node: NodeId, now_micros: u64) -> bool {
        let lease = u64::try_from(self.lease.as_micros()).unwrap_or(u64::MAX);
        self.heard
            .get(&node)
            .is_some_and(|&heard| now_micros.saturating_sub(heard) > lease)
    }
}

/// The voter(s) a promotion needs: grants a new epoch to at most one
/// candidate.
pub trait FailoverCoordinator: Send + Sync {
    /// `candidate` (at `candidate_epoch`, having applied up to
    /// `last_sequence`) asks to replace `failed`. Returns the epoch to
    /// promote to, or `None` to refuse.
    fn request_promotion(
        &self,
        candidate: NodeId,
        failed: NodeId,
        candidate_epoch: u64,
        last_sequence: u64,
    ) -> Option<u64>;
}

/// An in-process third voter: grants each epoch once, always above every
/// epoch granted before, and only to a candidate that has seen the latest
/// granted epoch (so a stale standby cannot take over).
#[derive(Debug, Default)]
pub struct Witness {
    granted: Mutex<BTreeMap<u64, NodeId>>,
}

impl Witness {
    /// A witness that has granted nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every grant: epoch → node.
    pub fn grants(&self) -> BTreeMap<u64, NodeId> {
        self.granted.lock().clone()
    }
}

impl FailoverCoordinator for Witness {
    fn request_promotion(
        &self,
        candidate: NodeId,
        _failed: NodeId,
        candidate_epoch: u64,
        _last_sequence: u64,
    ) -> Option<u64> {
        let mut granted = self.granted.lock();
        let latest = granted.keys().next_back().copied().unwrap_or(0);
        if candidate_epoch < latest {
            return None;
        }
        let epoch = latest.max(candidate_epoch) + 1;
        granted.insert(epoch, candidate);
        Some(epoch)
    }
}

/// Automatic failover of one standby: on each tick it feeds the detector
/// with when the standby last heard its source, and when the source is
/// suspected asks the coordinator and promotes to the granted epoch.
pub struct AutoFailover {
    standby: ReplicationNode,
    detector: Box<dyn FailureDetector>,
    coordinator: Arc<dyn FailoverCoordinator>,
}

impl std::fmt::Debug for AutoFailover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutoFailover")
            .field("standby", &self.standby)
            .finish_non_exhaustive()
    }
}

impl AutoFailover {
    /// Watches `standby`'s source with `detector`; promotions go through
    /// `coordinator`.
    pub fn new(
        standby: ReplicationNode,
        detector: Box<dyn FailureDetector>,
        coordinator: Arc<dyn FailoverCoordinator>,
    ) -> Self {
        Self {
            standby,
            detector,
            coordinator,
        }
    }

    /// Checks once at `now_micros` (the transport's clock). Returns the new
    /// epoch if the standby was promoted.
    pub fn tick(&mut self, now_micros: u64) -> Result<Option<u64>> {
        let Role::Replica { source } = self.standby.role() else {
            return Ok(None);
        };
        self.detector
            .observe(source, self.standby.source_heard_micros());
        if !self.detector.suspects(source, now_micros) {
            return Ok(None);
        }
        let Some(epoch) = self.coordinator.request_promotion(
            self.standby.id(),
            source,
            self.standby.epoch(),
            self.standby.last_sequence(),
        ) else {
            return Err(ReplicationError::PromotionRefused {
                node: self.standby.id(),
                reason: "the coordinator refused".into(),
            });
        };
        self.standby.promote_to(Some(epoch)).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_expires_only_after_silence_longer_than_it() {
        let mut detector = LeaseDetector::new(Duration::from_millis(100));
        assert!(!detector.suspects(1, 1_000_000), "never heard: no opinion");
        detector.observe(1, 1_000);
        assert!(!detector.suspects(1, 101_000));
        assert!(detector.suspects(1, 101_001));
        detector.observe(1, 50_000);
        assert!(!detector.suspects(1, 101_001));
    }

    #[test]
    fn a_witness_grants_each_epoch_once_and_never_to_a_stale_candidate() {
        let witness = Witness::new();
        assert_eq!(witness.request_promotion(2, 1, 1, 10), Some(2));
        // A second candidate that saw only epoch 1 is refused: no two
        // primaries in one epoch, and no stale one in a later epoch.
        assert_eq!(witness.request_promotion(3, 1, 1, 12), None);
        assert_eq!(witness.request_promotion(3, 2, 2, 12), Some(3));
        assert_eq!(witness.grants().len(), 2);
    }
}
