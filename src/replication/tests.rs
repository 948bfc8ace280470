//! Behaviour of log shipping on the in-process network and simulated
//! disks: synchronous commits and their ack levels, timeouts and the
//! degrade opt-in, read replicas (kv tables included), chains, catch-up
//! from the retained log and by snapshot, epochs, fencing and rejoin.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::failover::{AutoFailover, LeaseDetector, Witness};
use super::*;
use crate::storage::StorageError;
use crate::storage::fs::FileSystem;
use crate::storage::sim::SimFileSystem;
use crate::{DatabaseOptions, ScalarType, item};

/// A replication group on one in-process network, each node on its own
/// simulated disk.
struct Group {
    net: Arc<MemoryNetwork>,
    disks: Vec<Arc<SimFileSystem>>,
}

impl Group {
    fn new(seed: u64, faults: Faults, nodes: usize) -> Self {
        Self {
            net: MemoryNetwork::new(seed, faults),
            disks: (0..nodes).map(|_| Arc::new(SimFileSystem::new())).collect(),
        }
    }

    fn options(id: NodeId, sync: Option<SyncPolicy>) -> NodeOptions {
        let mut options = NodeOptions::new(id);
        options.database = DatabaseOptions::default().background_threads(false);
        options.sync = sync;
        options
    }

    fn fs(&self, id: NodeId) -> Arc<dyn FileSystem> {
        Arc::clone(&self.disks[id as usize]) as Arc<dyn FileSystem>
    }

    fn primary(&self, id: NodeId, sync: Option<SyncPolicy>) -> ReplicationNode {
        ReplicationNode::open_primary(
            self.fs(id),
            Path::new("/db"),
            Arc::clone(&self.net) as Arc<dyn Transport>,
            Self::options(id, sync),
        )
        .unwrap()
    }

    fn replica(&self, id: NodeId, source: NodeId, options: NodeOptions) -> ReplicationNode {
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
    fn settle(&self, nodes: &[&ReplicationNode]) {
        for _ in 0..50 {
            for node in nodes {
                node.tick();
            }
            self.net.run_until_idle(100_000);
            self.net.advance(5_000);
        }
    }
}

fn sync_policy() -> SyncPolicy {
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
        assert!(lag[0].progress.durable >= primary.last_sequence(), "{lag:?}");
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
    assert!(db.create_table("T").partition_key("K", ScalarType::S).send().is_err());
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
    assert!(read.get_item("Music").key(item! { "Artist" => "Acme" }).send().is_err());
}
