//! Object bodies on standbys and replicas (`bodies`): a synchronous
//! standby holds every acknowledged PUT's body and serves it after a
//! promotion; lost, repeated and reordered chunk messages are sent again;
//! late replicas and chains catch up; a primary's GC is followed.

use std::collections::BTreeMap;
use std::time::Duration;

use super::tests::{Group, sync_policy};
use super::*;
use crate::objects::ObjectStoreOptions;
use crate::storage::sim::SimRng;

const BUCKET: &str = "media";

/// Small chunks, so bodies of a few hundred KiB span several pack entries;
/// no grace period, so a GC frees at once.
fn store_options() -> ObjectStoreOptions {
    ObjectStoreOptions {
        chunk_bytes_min: 8 << 10,
        chunk_bytes_avg: 16 << 10,
        chunk_bytes_max: 64 << 10,
        gc_grace: Duration::ZERO,
        ..ObjectStoreOptions::default()
    }
}

fn body(seed: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    SimRng::new(seed).fill(&mut bytes);
    bytes
}

fn setup(primary: &ReplicationNode) {
    let db = primary.database().unwrap();
    db.objects().set_options(store_options()).unwrap();
    db.objects().create_bucket(BUCKET).send().unwrap();
}

fn put_object(node: &ReplicationNode, key: &str, body: &[u8]) {
    node.database()
        .unwrap()
        .objects()
        .put_object(BUCKET, key)
        .body(body.to_vec())
        .send()
        .unwrap();
}

fn read(node: &ReplicationNode, key: &str) -> Option<Vec<u8>> {
    let db = node.database().unwrap();
    let got = db.objects().get_object(BUCKET, key).send().ok()?;
    Some(got.body.collect().unwrap().to_vec())
}

/// Every object in `expected` reads back whole from `node`, whose store
/// verifies clean (no chunk missing or damaged).
fn assert_holds(node: &ReplicationNode, expected: &BTreeMap<String, Vec<u8>>) {
    for (key, want) in expected {
        let got = read(node, key);
        assert!(
            got.as_deref() == Some(want.as_slice()),
            "node {} object {key}: {:?} bytes, want {}",
            node.id(),
            got.map(|g| g.len()),
            want.len()
        );
    }
    let report = node.database().unwrap().objects().verify().unwrap();
    assert!(report.is_consistent(), "node {}: {report:?}", node.id());
}

#[test]
fn a_sync_standby_holds_every_acknowledged_body_and_serves_it_after_promotion() {
    let group = Group::new(7, Faults::NONE, 2);
    let primary = group.primary(0, Some(sync_policy()));
    let standby = group.replica(1, 0, Group::options(1, None));
    primary.add_standby(1);
    group.settle(&[&primary, &standby]);
    setup(&primary);
    let mut expected = BTreeMap::new();
    for i in 0..6u64 {
        let key = format!("clip-{i}");
        let data = body(i, 100_000 + 40_000 * i as usize);
        put_object(&primary, &key, &data);
        // No settling: the acknowledged PUT is on the standby already.
        assert_eq!(read(&standby, &key).as_deref(), Some(data.as_slice()));
        expected.insert(key, data);
    }
    let stats = standby.stats();
    assert!(stats.chunks_placed >= 6, "{stats:?}");
    assert_eq!(stats.frames_awaiting_chunks, 0, "{stats:?}");
    assert!(primary.stats().chunks_sent >= stats.chunks_placed);

    // The primary is lost; the standby takes over with every body.
    drop(primary);
    standby.promote().unwrap();
    assert_holds(&standby, &expected);
    // It writes new bodies into packs of its own numbers, next to the
    // shipped ones, and reads both.
    let later = body(99, 300_000);
    put_object(&standby, "after-failover", &later);
    expected.insert("after-failover".into(), later);
    assert_holds(&standby, &expected);
}

#[test]
fn lost_repeated_and_reordered_chunks_are_sent_again() {
    let faults = Faults {
        drop_per_mille: 150,
        duplicate_per_mille: 100,
        delay_max_micros: 3_000,
    };
    let group = Group::new(11, faults, 3);
    let primary = group.primary(0, None);
    let replica = group.replica(1, 0, Group::options(1, None));
    let chained = group.replica(2, 1, Group::options(2, None));
    primary.add_replica(1);
    replica.add_replica(2);
    group.settle(&[&primary, &replica, &chained]);
    setup(&primary);
    let mut expected = BTreeMap::new();
    for i in 0..12u64 {
        let key = format!("doc-{i}");
        let data = body(100 + i, 20_000 + 30_000 * (i as usize % 5));
        put_object(&primary, &key, &data);
        expected.insert(key, data);
        if i % 4 == 3 {
            group.settle(&[&primary, &replica, &chained]);
        }
    }
    // Overwrites and deletes travel too.
    let replaced = body(500, 150_000);
    put_object(&primary, "doc-0", &replaced);
    expected.insert("doc-0".into(), replaced);
    let db = primary.database().unwrap();
    db.objects().delete_object(BUCKET, "doc-1").send().unwrap();
    expected.remove("doc-1");
    for _ in 0..6 {
        group.settle(&[&primary, &replica, &chained]);
    }
    assert_eq!(
        replica.last_sequence(),
        primary.last_sequence(),
        "{:?} {:?} {:?}",
        replica.stats(),
        replica.events(),
        primary.stats()
    );
    assert_eq!(chained.last_sequence(), primary.last_sequence());
    assert_holds(&replica, &expected);
    assert_holds(&chained, &expected);
    assert_eq!(read(&replica, "doc-1"), None);
    // The faults did bite: some frame waited for a chunk sent again.
    let waited = replica.stats().frames_awaiting_chunks + chained.stats().frames_awaiting_chunks;
    assert!(waited > 0, "{:?} {:?}", replica.stats(), chained.stats());
}

#[test]
fn a_replica_added_later_catches_up_bodies_from_the_retained_log() {
    let group = Group::new(3, Faults::NONE, 2);
    let primary = group.primary(0, None);
    setup(&primary);
    let mut expected = BTreeMap::new();
    for i in 0..5u64 {
        let key = format!("early-{i}");
        let data = body(200 + i, 120_000);
        put_object(&primary, &key, &data);
        expected.insert(key, data);
    }
    let replica = group.replica(1, 0, Group::options(1, None));
    primary.add_replica(1);
    group.settle(&[&primary, &replica]);
    assert_eq!(replica.last_sequence(), primary.last_sequence());
    assert_holds(&replica, &expected);
    // The bucket list a replica keeps in memory followed the log too.
    let buckets = replica
        .database()
        .unwrap()
        .objects()
        .list_buckets()
        .send()
        .unwrap();
    assert_eq!(buckets.buckets.len(), 1);
}

#[test]
fn a_replica_follows_its_primarys_gc_and_drops_emptied_packs() {
    let group = Group::new(5, Faults::NONE, 2);
    let primary = group.primary(0, None);
    let replica = group.replica(1, 0, Group::options(1, None));
    primary.add_replica(1);
    group.settle(&[&primary, &replica]);
    setup(&primary);
    let mut expected = BTreeMap::new();
    for i in 0..8u64 {
        let key = format!("log-{i}");
        let data = body(300 + i, 90_000);
        put_object(&primary, &key, &data);
        expected.insert(key, data);
    }
    group.settle(&[&primary, &replica]);
    let db = primary.database().unwrap();
    for i in 0..6 {
        db.objects()
            .delete_object(BUCKET, format!("log-{i}"))
            .send()
            .unwrap();
        expected.remove(&format!("log-{i}"));
    }
    let gc = db.objects().gc().unwrap();
    assert!(gc.chunks_freed > 0 && gc.packs_removed > 0, "{gc:?}");
    group.settle(&[&primary, &replica]);
    assert_holds(&replica, &expected);
    let packs = |node: &ReplicationNode| node.database().unwrap().objects().verify().unwrap().packs;
    assert_eq!(packs(&replica), packs(&primary));
}
