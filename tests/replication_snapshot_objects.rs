//! Replication snapshots carry the object store's pack files: a replica
//! too far behind the retained log installs a snapshot and serves every
//! object body the primary stored, from packs equal byte for byte (same
//! numbers, so every chunk location in the catalogue names the same bytes)
//! to the primary's; a node that had packs of its own ends with exactly the
//! primary's. Real directories, the in-process network.
// Test code: a failed unwrap is a failed test, with the reason in the panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use nimbus::objects::{Error as ObjectError, ObjectStoreOptions, VerifyReport};
use nimbus::replication::{Faults, MemoryNetwork, NodeOptions, ReplicationNode, Transport};
use nimbus::storage::fs::{FileSystem, OsFileSystem};
use nimbus::storage::sim::SimRng;
use nimbus::time::ManualClock;
use nimbus::{Database, DatabaseOptions};

const PRIMARY: u64 = 0;
const REPLICA: u64 = 1;
const BUCKET: &str = "media";

fn clock() -> ManualClock {
    ManualClock::at(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

fn database_options(clock: &ManualClock) -> DatabaseOptions {
    DatabaseOptions::default()
        .background_threads(false)
        .clock(clock.clone())
}

fn node_options(id: u64, clock: &ManualClock) -> NodeOptions {
    let mut options = NodeOptions::new(id);
    options.database = database_options(clock);
    // A handful of frames: the primary's object writes outrun them, so a
    // new replica can only start from a snapshot.
    options.retained_frames = 4;
    options.snapshot_chunk_bytes = 64 << 10;
    options
}

fn disk() -> Arc<dyn FileSystem> {
    Arc::new(OsFileSystem::default())
}

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; len];
    SimRng::new(seed).fill(&mut data);
    data
}

/// A primary whose bodies live in packs (each far above the inline
/// limit), after a delete and a GC that freed the deleted body's chunks
/// and rewrote the mostly dead pack into a new one (so the packs it holds
/// are not numbered from 1). Returns the bodies it serves, by key.
fn primary_with_objects(
    dir: &Path,
    net: &Arc<MemoryNetwork>,
    clock: &ManualClock,
) -> (ReplicationNode, BTreeMap<String, Vec<u8>>) {
    let node = ReplicationNode::open_primary(
        disk(),
        dir,
        Arc::clone(net) as Arc<dyn Transport>,
        node_options(PRIMARY, clock),
    )
    .unwrap();
    let db = node.database().unwrap();
    let s3 = db.objects();
    s3.set_options(ObjectStoreOptions {
        gc_grace: Duration::from_secs(60),
        ..ObjectStoreOptions::default()
    })
    .unwrap();
    s3.create_bucket(BUCKET).send().unwrap();
    let mut bodies = BTreeMap::new();
    for (n, len) in [300 << 10, 2 << 20, 400 << 10, 350 << 10]
        .into_iter()
        .enumerate()
    {
        let key = format!("clip-{n}");
        let body = random_bytes(len, n as u64 + 1);
        s3.put_object(BUCKET, &key)
            .body(body.clone())
            .send()
            .unwrap();
        bodies.insert(key, body);
    }
    s3.delete_object(BUCKET, "clip-1").send().unwrap();
    bodies.remove("clip-1");
    clock.advance(Duration::from_secs(3_600));
    let report = s3.gc().unwrap();
    assert!(
        report.chunks_freed > 0 && report.packs_removed > 0,
        "{report:?}"
    );
    // Written after the rewrite, into the rewrite's pack.
    let late = random_bytes(600 << 10, 9);
    s3.put_object(BUCKET, "late")
        .body(late.clone())
        .send()
        .unwrap();
    bodies.insert("late".into(), late);
    (node, bodies)
}

fn open_replica(dir: &Path, net: &Arc<MemoryNetwork>, clock: &ManualClock) -> ReplicationNode {
    ReplicationNode::open_replica(
        disk(),
        dir,
        Arc::clone(net) as Arc<dyn Transport>,
        node_options(REPLICA, clock),
        PRIMARY,
    )
    .unwrap()
}

/// Ticks both nodes and delivers until the network is quiet.
fn settle(net: &MemoryNetwork, nodes: &[&ReplicationNode]) {
    for _ in 0..50 {
        for node in nodes {
            node.tick();
        }
        net.run_until_idle(100_000);
        net.advance(5_000);
    }
}

/// Every pack file under `<dir>/objects/`, by name, with its bytes.
fn packs(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir.join("objects"))
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            (name, std::fs::read(entry.path()).unwrap())
        })
        .collect()
}

fn verify(node: &ReplicationNode) -> VerifyReport {
    node.database().unwrap().objects().verify().unwrap()
}

/// `node` serves exactly `bodies` from its bucket, from packs equal to
/// the primary's, and its store verifies like the primary's.
fn assert_serves_like(
    node: &ReplicationNode,
    primary: &ReplicationNode,
    bodies: &BTreeMap<String, Vec<u8>>,
) {
    let db = node.database().unwrap();
    let s3 = db.objects();
    for (key, body) in bodies {
        let got = s3
            .get_object(BUCKET, key)
            .send()
            .unwrap()
            .body
            .collect()
            .unwrap();
        assert!(got.as_ref() == body.as_slice(), "body of {key} differs");
    }
    assert!(matches!(
        s3.get_object(BUCKET, "clip-1").send(),
        Err(ObjectError::NoSuchKey { .. })
    ));
    let report = verify(node);
    assert!(report.missing_chunks.is_empty(), "{report:?}");
    assert!(report.damaged_entries.is_empty(), "{report:?}");
    assert!(report.is_consistent(), "{report:?}");
    assert_eq!(report, verify(primary));
    assert_eq!(packs(db.path()), packs(primary.database().unwrap().path()));
}

#[test]
fn a_replica_past_the_retained_log_installs_the_packs_and_serves_every_body() {
    let dir = tempfile::tempdir().unwrap();
    let net = MemoryNetwork::new(31, Faults::NONE);
    let clock = clock();
    let (primary, bodies) = primary_with_objects(&dir.path().join("primary"), &net, &clock);
    let replica = open_replica(&dir.path().join("replica"), &net, &clock);
    primary.add_replica(REPLICA);
    settle(&net, &[&primary, &replica]);

    assert_eq!(
        replica.stats().snapshots_installed,
        1,
        "{:?}",
        replica.events()
    );
    assert_eq!(replica.last_sequence(), primary.last_sequence());
    let primary_packs = packs(&dir.path().join("primary"));
    assert!(
        !primary_packs.contains_key("000001.pack"),
        "the GC removed the first pack: {:?}",
        primary_packs.keys()
    );
    assert_serves_like(&replica, &primary, &bodies);
    // The install is complete: a restart finds nothing left to redo.
    replica.close().unwrap();
    let replica = open_replica(&dir.path().join("replica"), &net, &clock);
    settle(&net, &[&primary, &replica]);
    assert_eq!(replica.stats().snapshots_installed, 0);
    assert_serves_like(&replica, &primary, &bodies);
}

#[test]
fn a_node_with_packs_of_its_own_ends_with_exactly_the_primarys() {
    let dir = tempfile::tempdir().unwrap();
    let net = MemoryNetwork::new(32, Faults::NONE);
    let clock = clock();
    // The replica's directory first holds a database of its own: each
    // session writes a new pack, so it has more packs than the primary,
    // under the same numbers and others.
    let own = dir.path().join("replica");
    for session in 0..3u64 {
        let db = Database::open_with(&own, database_options(&clock)).unwrap();
        let s3 = db.objects();
        if session == 0 {
            s3.create_bucket("own").send().unwrap();
        }
        s3.put_object("own", format!("old-{session}"))
            .body(random_bytes(200 << 10, 100 + session))
            .send()
            .unwrap();
        db.close().unwrap();
    }
    assert_eq!(packs(&own).len(), 3);
    let (primary, bodies) = primary_with_objects(&dir.path().join("primary"), &net, &clock);
    let replica = open_replica(&own, &net, &clock);
    primary.add_replica(REPLICA);
    settle(&net, &[&primary, &replica]);

    assert_eq!(
        replica.stats().snapshots_installed,
        1,
        "replica {:?} {:?}; primary {:?} {:?}",
        replica.stats(),
        replica.events(),
        primary.stats(),
        primary.events()
    );
    assert_serves_like(&replica, &primary, &bodies);
    let db = replica.database().unwrap();
    assert!(matches!(
        db.objects().get_object("own", "old-0").send(),
        Err(ObjectError::NoSuchBucket { .. })
    ));
}
