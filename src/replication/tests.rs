//! Behaviour of log shipping on the in-process network and simulated
//! disks: synchronous commits and their ack levels, timeouts and the
//! degrade opt-in, read replicas (kv tables included), chains, catch-up
//! from the retained log and by snapshot, epochs, fencing and rejoin.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::failover::{self, AutoFailover, LeaseDetector, Witness};
use super::transport::Endpoint as _;
use super::*;
use crate::storage::StorageError;
use crate::storage::fs::FileSystem;
use crate::storage::sim::SimFileSystem;
use crate::{Database, DatabaseOptions, ScalarType, item};

/// A replication group on one in-process network, each node on its own
/// simulated disk.
pub(super) struct Group {
    pub(super) net: Arc<MemoryNetwork>,
    disks: Vec<Arc<SimFileSystem>>,
}

impl Group {
    pub(super) fn new(seed: u64, faults: Faults, nodes: usize) -> Self {
        Self {
            net: MemoryNetwork::new(seed, faults),
            disks: (0..nodes).map(|_| Arc::new(SimFileSystem::new())).collect(),
        }
    }

    pub(super) fn options(id: NodeId, sync: Option<SyncPolicy>) -> NodeOptions {
        let mut options = NodeOptions::new(id);
        options.database = DatabaseOptions::default()
            .background_threads(false)
            .memtable_bytes(64 << 10);
        options.database.engine.log_preallocate_bytes = 0;
        options.sync = sync;
        options
    }

    pub(super) fn fs(&self, id: NodeId) -> Arc<dyn FileSystem> {
        Arc::clone(&self.disks[id as usize]) as Arc<dyn FileSystem>
    }

    pub(super) fn primary(&self, id: NodeId, sync: Option<SyncPolicy>) -> ReplicationNode {
        ReplicationNode::open_primary(
            self.fs(id),
            Path::new("/db"),
            Arc::clone(&self.net) as Arc<dyn Transport>,
            Self::options(id, sync),
        )
        .unwrap()
    }

    pub(super) fn replica(
        &self,
        id: NodeId,
        source: NodeId,
        options: NodeOptions,
    ) -> ReplicationNode {
        ReplicationNode::open_replica(
            self.fs(id),
            Path::new("/db"),
            Arc::clone(&self.net) as Arc<dyn Transport>,
            options,
            source,
        )
        .unwrap()
    }

    /// Ticks every node and delivers until the network is quiet.
    pub(super) fn settle(&self, nodes: &[&ReplicationNode]) {
        for _ in 0..50 {
            for node in nodes {
                node.tick();
            }
            self.net.run_until_idle(100_000);
            self.net.advance(5_000);
        }
    }
}

pub(super) fn sync_policy() -> SyncPolicy {
    SyncPolicy {
        timeout: Duration::from_millis(200),
        ..SyncPolicy::default()
    }
}

fn put(node: &ReplicationNode, key: &str, value: &str) -> Result<u64, StorageError> {
    node.database()
        .unwrap()
        .engine()
        .put(key.as_bytes(), value.as_bytes())
}

fn get(node: &ReplicationNode, key: &str) -> Option<Vec<u8>> {
    node.database()
        .unwrap()
        .engine()
        .get(key.as_bytes())
        .unwrap()
        .map(|b| b.to_vec())
}

#[test]
fn a_sync_commit_returns_only_after_the_standby_made_it_durable() {
    let group = Group::new(1, Faults::NONE, 2);
    let primary = group.primary(0, Some(sync_policy()));
    let standby = group.replica(1, 0, Group::options(1, None));
    primary.add_standby(1);
    group.settle(&[&primary, &standby]);
    for i in 0..20 {
        put(&primary, &format!("k{i}"), "v").unwrap();
        // No settling: the commit itself waited for the standby.
        assert_eq!(get(&standby, &format!("k{i}")), Some(b"v".to_vec()));
        let lag = primary.lag();
        assert!(
            lag[0].progress.durable >= primary.last_sequence(),
            "{lag:?}"
        );
    }
    assert_eq!(standby.last_sequence(), primary.last_sequence());
}

#[test]
fn a_replica_refuses_writes() {
    let group = Group::new(2, Faults::NONE, 2);
    let primary = group.primary(0, None);
    let replica = group.replica(1, 0, Group::options(1, None));
    group.settle(&[&primary, &replica]);
    assert!(matches!(
        put(&replica, "k", "v"),
        Err(StorageError::ReadOnlyReplica)
    ));
    let db = replica.database().unwrap();
    assert!(
        db.create_table("T")
            .partition_key("K", ScalarType::S)
            .send()
            .is_err()
    );
    // Closing writes nothing on a replica, so it succeeds.
    drop(db);
    replica.close().unwrap();
    primary.close().unwrap();
}

#[test]
fn a_replica_serves_tables_created_on_the_primary() {
    let group = Group::new(3, Faults::NONE, 2);
    let primary = group.primary(0, None);
    let replica = group.replica(1, 0, Group::options(1, None));
    primary.add_replica(1);
    let db = primary.database().unwrap();
    db.create_table("Music")
        .partition_key("Artist", ScalarType::S)
        .send()
        .unwrap();
    db.put_item("Music")
        .item(item! { "Artist" => "Acme", "Plays" => 3 })
        .send()
        .unwrap();
    group.settle(&[&primary, &replica]);
    let read = replica.database().unwrap();
    let got = read
        .get_item("Music")
        .key(item! { "Artist" => "Acme" })
        .send()
        .unwrap();
    assert_eq!(got.item, Some(item! { "Artist" => "Acme", "Plays" => 3 }));
    assert!(
        read.put_item("Music")
            .item(item! { "Artist" => "B" })
            .send()
            .is_err()
    );
    db.delete_table("Music").send().unwrap();
    group.settle(&[&primary, &replica]);
    assert!(
        read.get_item("Music")
            .key(item! { "Artist" => "Acme" })
            .send()
            .is_err()
    );
}

#[test]
fn without_an_ack_a_sync_commit_times_out_and_nothing_becomes_visible() {
    let group = Group::new(4, Faults::NONE, 2);
    let primary = group.primary(0, Some(sync_policy()));
    let standby = group.replica(1, 0, Group::options(1, None));
    primary.add_standby(1);
    group.settle(&[&primary, &standby]);
    put(&primary, "before", "v").unwrap();
    group.net.partition(0, 1, true);
    let err = put(&primary, "lost", "v").unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::ReplicationTimeout {
                acknowledged: 0,
                required: 1,
                ..
            }
        ),
        "{err:?}"
    );
    // Not visible, and the primary takes no more commits (outcome unknown).
    assert_eq!(get(&primary, "lost"), None);
    assert_eq!(get(&primary, "before"), Some(b"v".to_vec()));
    assert!(matches!(
        put(&primary, "after", "v"),
        Err(StorageError::PreviousIo { .. })
    ));
}

#[test]
fn degrading_to_async_is_opt_in_and_reported_and_sync_resumes() {
    let group = Group::new(5, Faults::NONE, 2);
    let policy = SyncPolicy {
        degrade_to_async: true,
        ..sync_policy()
    };
    let primary = group.primary(0, Some(policy));
    let standby = group.replica(1, 0, Group::options(1, None));
    primary.add_standby(1);
    group.settle(&[&primary, &standby]);
    group.net.partition(0, 1, true);
    put(&primary, "a", "1").unwrap();
    put(&primary, "b", "2").unwrap();
    assert_eq!(
        primary.stats().degraded_commits,
        1,
        "the second commit did not wait"
    );
    assert!(
        primary
            .events()
            .iter()
            .any(|e| matches!(e, ReplicationEvent::DegradedToAsync { .. }))
    );
    group.net.heal();
    group.settle(&[&primary, &standby]);
    assert!(
        primary
            .events()
            .iter()
            .any(|e| matches!(e, ReplicationEvent::SyncRestored { .. }))
    );
    assert_eq!(get(&standby, "b"), Some(b"2".to_vec()));
    group.net.partition(0, 1, true);
    assert!(put(&primary, "c", "3").is_ok());
    assert_eq!(
        primary.stats().degraded_commits,
        2,
        "sync was restored, so it waited again"
    );
}

#[test]
fn quorum_all_waits_for_every_standby_and_any_for_k() {
    for (quorum, cut_one_ok) in [(Quorum::All, false), (Quorum::Any(2), true)] {
        let group = Group::new(6, Faults::NONE, 4);
        let policy = SyncPolicy {
            quorum,
            level: AckLevel::Applied,
            ..sync_policy()
        };
        let primary = group.primary(0, Some(policy));
        let standbys: Vec<_> = (1..4)
            .map(|id| group.replica(id, 0, Group::options(id, None)))
            .collect();
        for id in 1..4 {
            primary.add_standby(id);
        }
        let mut all: Vec<&ReplicationNode> = standbys.iter().collect();
        all.push(&primary);
        group.settle(&all);
        put(&primary, "k", "v").unwrap();
        group.net.partition(0, 3, true);
        assert_eq!(put(&primary, "k2", "v").is_ok(), cut_one_ok, "{quorum:?}");
    }
}

#[test]
fn fifteen_replicas_and_a_chain_three_deep_converge_and_report_lag() {
    let group = Group::new(7, Faults::NONE, 20);
    let primary = group.primary(0, None);
    let mut nodes = Vec::new();
    for id in 1..=15 {
        primary.add_replica(id);
        nodes.push(group.replica(id, 0, Group::options(id, None)));
    }
    // 16 follows 15, 17 follows 16, 18 follows 17.
    for id in 16..=18 {
        nodes.push(group.replica(id, id - 1, Group::options(id, None)));
        nodes[(id - 2) as usize].add_replica(id);
    }
    for i in 0..50 {
        put(&primary, &format!("k{i}"), &format!("v{i}")).unwrap();
    }
    let lag = primary.lag();
    assert_eq!(lag.len(), 15);
    assert!(
        lag.iter().all(|l| l.sequence_lag > 0),
        "nothing delivered yet: {lag:?}"
    );
    let mut all: Vec<&ReplicationNode> = nodes.iter().collect();
    all.push(&primary);
    group.settle(&all);
    for node in &nodes {
        assert_eq!(
            node.last_sequence(),
            primary.last_sequence(),
            "node {}",
            node.id()
        );
        assert_eq!(get(node, "k49"), Some(b"v49".to_vec()));
    }
    assert!(
        primary
            .lag()
            .iter()
            .all(|l| l.sequence_lag == 0 && l.time_lag.is_zero())
    );
    assert_eq!(nodes[16].lag()[0].node, 18);
    // Every node, down the chain too, adopted the primary's lineage while
    // streaming (a chain's middle passes on the one it learns after it
    // welcomed its own follower), so none needed a snapshot.
    let lineage = |id: NodeId| {
        super::epoch::EpochRecord::load(group.fs(id).as_ref(), Path::new("/db"))
            .unwrap()
            .lineage
    };
    assert_ne!(lineage(0), 0);
    for node in &nodes {
        assert_eq!(lineage(node.id()), lineage(0), "node {}", node.id());
        assert_eq!(node.stats().snapshots_installed, 0, "node {}", node.id());
    }
}

#[test]
fn a_replica_behind_catches_up_from_the_retained_log_or_by_snapshot() {
    let group = Group::new(8, Faults::NONE, 3);
    let mut options = Group::options(0, None);
    options.retained_frames = 10;
    options.snapshot_chunk_bytes = 512;
    let primary = ReplicationNode::open_primary(
        group.fs(0),
        "/db",
        Arc::clone(&group.net) as Arc<dyn Transport>,
        options,
    )
    .unwrap();
    let near = group.replica(1, 0, Group::options(1, None));
    let far = group.replica(2, 0, Group::options(2, None));
    primary.add_replica(1);
    primary.add_replica(2);
    group.settle(&[&primary, &near, &far]);
    group.net.partition(0, 1, true);
    group.net.partition(0, 2, true);
    for i in 0..5 {
        put(&primary, &format!("a{i}"), "v").unwrap();
    }
    group.net.partition(0, 1, false);
    group.settle(&[&primary, &near]);
    assert_eq!(near.last_sequence(), primary.last_sequence());
    assert_eq!(near.stats().snapshots_installed, 0);
    for i in 0..40 {
        put(&primary, &format!("b{i}"), "v").unwrap();
    }
    // Lose some chunks on the way: the transfer resumes where it stopped.
    group.net.set_faults(Faults {
        drop_per_mille: 200,
        duplicate_per_mille: 100,
        delay_max_micros: 2_000,
    });
    group.net.partition(0, 2, false);
    group.settle(&[&primary, &near, &far]);
    group.net.set_faults(Faults::NONE);
    group.settle(&[&primary, &near, &far]);
    assert_eq!(far.stats().snapshots_installed, 1, "{:?}", far.events());
    assert_eq!(far.last_sequence(), primary.last_sequence());
    assert_eq!(get(&far, "b39"), Some(b"v".to_vec()));
    assert_eq!(get(&far, "a0"), Some(b"v".to_vec()));
    put(&primary, "after", "v").unwrap();
    group.settle(&[&primary, &near, &far]);
    assert_eq!(get(&far, "after"), Some(b"v".to_vec()));
}

#[test]
fn promotion_fences_the_old_primary_which_rejoins_after_a_snapshot() {
    let group = Group::new(9, Faults::NONE, 3);
    let primary = group.primary(0, None);
    let standby = group.replica(1, 0, Group::options(1, None));
    let reader = group.replica(2, 0, Group::options(2, None));
    primary.add_replica(1);
    primary.add_replica(2);
    put(&primary, "shared", "v").unwrap();
    group.settle(&[&primary, &standby, &reader]);
    // The old primary writes something nobody receives.
    group.net.partition(0, 1, true);
    group.net.partition(0, 2, true);
    put(&primary, "orphan", "v").unwrap();
    let epoch = standby.promote().unwrap();
    assert_eq!(epoch, 2);
    assert_eq!(standby.role(), Role::Primary);
    standby.add_replica(2);
    standby.add_replica(0);
    reader.set_source(1).unwrap();
    put(&standby, "new", "v").unwrap();
    group.net.heal();
    // The old primary hears epoch 2 and stops taking writes.
    group.settle(&[&primary, &standby, &reader]);
    assert_eq!(primary.role(), Role::Fenced { newer: 2 });
    assert!(put(&primary, "x", "v").is_err());
    // A frame of the old epoch is rejected by the new lineage.
    let stale = Frame::new(1, 999, &crate::storage::WriteBatch::new(), None);
    reader.inner.receive(0, Message::Frame(stale));
    primary.rejoin(1).unwrap();
    group.settle(&[&primary, &standby, &reader]);
    assert!(
        primary
            .events()
            .iter()
            .any(|e| matches!(e, ReplicationEvent::SnapshotInstalled { .. }))
    );
    assert!(
        standby
            .events()
            .iter()
            .any(|e| matches!(e, ReplicationEvent::Diverged { follower: 0, .. }))
    );
    for node in [&primary, &reader] {
        assert_eq!(get(node, "orphan"), None, "node {}", node.id());
        assert_eq!(get(node, "new"), Some(b"v".to_vec()));
        assert_eq!(node.epoch(), 2);
    }
}

#[test]
fn a_frame_applied_twice_is_harmless_and_a_gap_is_refilled() {
    let group = Group::new(10, Faults::NONE, 2);
    let primary = group.primary(0, None);
    let replica = group.replica(1, 0, Group::options(1, None));
    primary.add_replica(1);
    group.settle(&[&primary, &replica]);
    let mut batch = crate::storage::WriteBatch::new();
    batch.put(b"k", b"v");
    let seq = primary.last_sequence() + 1;
    put(&primary, "k", "v").unwrap();
    group.settle(&[&primary, &replica]);
    let frame = Frame::new(1, seq, &batch, None);
    let before = replica.stats();
    replica.inner.receive(0, Message::Frame(frame.clone()));
    replica.inner.receive(0, Message::Frame(frame));
    assert_eq!(
        replica.stats().duplicates_ignored,
        before.duplicates_ignored + 2
    );
    assert_eq!(replica.stats().frames_applied, before.frames_applied);
    assert_eq!(replica.last_sequence(), primary.last_sequence());
    // Heavy loss, duplication and reordering still converge.
    group.net.set_faults(Faults {
        drop_per_mille: 300,
        duplicate_per_mille: 300,
        delay_max_micros: 5_000,
    });
    for i in 0..100 {
        put(&primary, &format!("r{i}"), &format!("{i}")).unwrap();
    }
    group.settle(&[&primary, &replica]);
    group.net.set_faults(Faults::NONE);
    group.settle(&[&primary, &replica]);
    assert_eq!(replica.last_sequence(), primary.last_sequence());
    for i in 0..100 {
        assert_eq!(
            get(&replica, &format!("r{i}")),
            Some(format!("{i}").into_bytes())
        );
    }
}

#[test]
fn automatic_failover_promotes_once_the_lease_expires_with_the_witness_vote() {
    let group = Group::new(11, Faults::NONE, 2);
    let primary = group.primary(0, None);
    let standby = group.replica(1, 0, Group::options(1, None));
    primary.add_replica(1);
    group.settle(&[&primary, &standby]);
    let witness = Arc::new(Witness::new());
    let mut failover = AutoFailover::new(
        standby.clone(),
        Box::new(LeaseDetector::new(Duration::from_millis(100))),
        Arc::clone(&witness) as Arc<dyn failover::FailoverCoordinator>,
    );
    assert_eq!(failover.tick(group.net.now_micros()).unwrap(), None);
    group.net.set_down(0, true);
    group.net.advance(50_000);
    assert_eq!(
        failover.tick(group.net.now_micros()).unwrap(),
        None,
        "lease still held"
    );
    group.net.advance(100_000);
    assert_eq!(failover.tick(group.net.now_micros()).unwrap(), Some(2));
    assert_eq!(standby.role(), Role::Primary);
    assert_eq!(witness.grants().get(&2), Some(&1));
    put(&standby, "k", "v").unwrap();
}

#[test]
fn a_replica_slightly_behind_a_restarted_primary_catches_up_from_the_log() {
    let group = Group::new(11, Faults::NONE, 2);
    let primary = group.primary(0, None);
    let replica = group.replica(1, 0, Group::options(1, None));
    primary.add_replica(1);
    for i in 0..20 {
        put(&primary, &format!("a{i}"), "v").unwrap();
    }
    group.settle(&[&primary, &replica]);
    assert_eq!(replica.last_sequence(), primary.last_sequence());
    // The replica misses a few writes, then the primary restarts (and
    // loses power after its clean close).
    group.net.partition(0, 1, true);
    for i in 0..5 {
        put(&primary, &format!("b{i}"), "v").unwrap();
    }
    group.net.run_until_idle(100_000);
    group.net.partition(0, 1, false);
    primary.close().unwrap();
    group.disks[0].crash(5);
    let primary = group.primary(0, None);
    primary.add_replica(1);
    group.settle(&[&primary, &replica]);
    assert_eq!(replica.last_sequence(), primary.last_sequence());
    assert_eq!(get(&replica, "b4"), Some(b"v".to_vec()));
    assert_eq!(
        primary.stats().snapshots_served,
        0,
        "{:?}",
        primary.events()
    );
    assert_eq!(replica.stats().snapshots_installed, 0);
}

#[test]
fn a_replica_opened_on_another_database_is_resynchronised_by_snapshot() {
    let group = Group::new(21, Faults::NONE, 2);
    // The replica's directory first holds a database of its own, with
    // fewer writes than the primary will have: its last sequence number
    // falls inside the primary's retained log, so positions alone would
    // stream it the primary's later frames on top of its own data.
    let foreign = Database::open_on(
        group.fs(1),
        Path::new("/db"),
        Group::options(1, None).database,
    )
    .unwrap();
    for i in 0..4 {
        foreign
            .engine()
            .put(format!("own{i}").as_bytes(), b"x")
            .unwrap();
    }
    let foreign_last = foreign.engine().last_sequence().unwrap();
    foreign.close().unwrap();

    let primary = group.primary(0, None);
    for i in 0..10 {
        put(&primary, &format!("p{i}"), "v").unwrap();
    }
    assert!(primary.last_sequence() > foreign_last);
    let replica = group.replica(1, 0, Group::options(1, None));
    primary.add_replica(1);
    group.settle(&[&primary, &replica]);

    assert_eq!(
        replica.stats().snapshots_installed,
        1,
        "{:?}",
        replica.events()
    );
    assert_eq!(replica.last_sequence(), primary.last_sequence());
    for i in 0..10 {
        assert_eq!(get(&replica, &format!("p{i}")), Some(b"v".to_vec()), "p{i}");
    }
    assert_eq!(
        get(&replica, "own0"),
        None,
        "the other database's data is gone"
    );
    // It now shares the primary's lineage: after a restart it streams.
    replica.close().unwrap();
    put(&primary, "later", "v").unwrap();
    let replica = group.replica(1, 0, Group::options(1, None));
    group.settle(&[&primary, &replica]);
    assert_eq!(replica.stats().snapshots_installed, 0);
    assert_eq!(get(&replica, "later"), Some(b"v".to_vec()));
}

#[test]
fn an_empty_replica_streams_from_the_start_and_adopts_the_lineage() {
    let group = Group::new(22, Faults::NONE, 2);
    let primary = group.primary(0, None);
    put(&primary, "k", "v").unwrap();
    let replica = group.replica(1, 0, Group::options(1, None));
    primary.add_replica(1);
    group.settle(&[&primary, &replica]);
    assert_eq!(replica.stats().snapshots_installed, 0);
    assert_eq!(get(&replica, "k"), Some(b"v".to_vec()));
    let lineage = |id: NodeId| {
        super::epoch::EpochRecord::load(group.fs(id).as_ref(), Path::new("/db"))
            .unwrap()
            .lineage
    };
    assert_ne!(lineage(0), 0);
    assert_eq!(lineage(1), lineage(0));
}
