//! A snapshot transfer cut by a replica's crash: after the restart the
//! chunks already staged are not fetched again and the replica ends equal
//! to the primary (its object bodies too, when the cut fell inside a pack
//! file); a transfer the source no longer serves starts over.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;

use super::transport::Endpoint;
use super::*;
use crate::DatabaseOptions;
use crate::storage::fs::FileSystem;
use crate::storage::sim::SimFileSystem;

/// The network, with every snapshot chunk request a node sends recorded,
/// and the name of every file a source sent chunks of, by index.
#[derive(Debug)]
struct CountingRequests {
    net: Arc<MemoryNetwork>,
    requests: Mutex<Vec<(u64, u32, u64)>>,
    names: Mutex<BTreeMap<u32, String>>,
}

impl Transport for CountingRequests {
    fn register(&self, id: NodeId, endpoint: Weak<dyn Endpoint>) {
        self.net.register(id, endpoint);
    }

    fn send(&self, from: NodeId, to: NodeId, message: Message) {
        if let Message::SnapshotRequest { id, file, offset } = message {
            self.requests.lock().push((id, file, offset));
        }
        if let Message::SnapshotChunk { file, name, .. } = &message {
            self.names.lock().insert(*file, name.clone());
        }
        self.net.send(from, to, message);
    }

    fn wait_until(&self, done: &mut dyn FnMut() -> bool, timeout: Duration) -> bool {
        self.net.wait_until(done, timeout)
    }

    fn now_micros(&self) -> u64 {
        self.net.now_micros()
    }
}

fn options(id: NodeId) -> NodeOptions {
    let mut options = NodeOptions::new(id);
    options.database = DatabaseOptions::default()
        .background_threads(false)
        // Small, so the 300 writes flush to several segment files.
        .memtable_bytes(8 << 10);
    options.database.engine.log_preallocate_bytes = 0;
    options.retained_frames = 10;
    options.snapshot_chunk_bytes = 512;
    options
}

struct Setup {
    net: Arc<MemoryNetwork>,
    counting: Arc<CountingRequests>,
    primary_disk: Arc<SimFileSystem>,
    replica_disk: SimFileSystem,
    primary: ReplicationNode,
}

impl Setup {
    /// A primary with 300 writes its replica (node 1) missed: far more
    /// than the retained log, so the replica needs a snapshot of many
    /// 512-byte chunks.
    fn new(seed: u64) -> (Self, ReplicationNode) {
        Self::with_missed_writes(seed, |_| {})
    }

    /// `new`, with `more` also written on the primary while the replica's
    /// link is cut.
    fn with_missed_writes(
        seed: u64,
        more: impl FnOnce(&ReplicationNode),
    ) -> (Self, ReplicationNode) {
        let net = MemoryNetwork::new(seed, Faults::NONE);
        let counting = Arc::new(CountingRequests {
            net: Arc::clone(&net),
            requests: Mutex::new(Vec::new()),
            names: Mutex::new(BTreeMap::new()),
        });
        let primary_disk = Arc::new(SimFileSystem::new());
        let primary = ReplicationNode::open_primary(
            Arc::clone(&primary_disk) as Arc<dyn FileSystem>,
            "/db",
            Arc::clone(&counting) as Arc<dyn Transport>,
            options(0),
        )
        .unwrap();
        let setup = Self {
            net,
            counting,
            primary_disk,
            replica_disk: SimFileSystem::new(),
            primary,
        };
        let replica = setup.open_replica();
        setup.primary.add_replica(1);
        setup.settle(&replica);
        setup.net.partition(0, 1, true);
        for i in 0..300 {
            let value = format!("{i:0>100}");
            put(&setup.primary, &format!("k{i:04}"), &value);
        }
        more(&setup.primary);
        // Lost while the link is cut (the network drops at delivery).
        setup.net.run_until_idle(100_000);
        setup.net.partition(0, 1, false);
        (setup, replica)
    }

    fn open_replica(&self) -> ReplicationNode {
        ReplicationNode::open_replica(
            Arc::new(self.replica_disk.session()) as Arc<dyn FileSystem>,
            Path::new("/db"),
            Arc::clone(&self.counting) as Arc<dyn Transport>,
            options(1),
            0,
        )
        .unwrap()
    }

    fn settle(&self, replica: &ReplicationNode) {
        for _ in 0..50 {
            self.primary.tick();
            replica.tick();
            self.net.run_until_idle(100_000);
            self.net.advance(5_000);
        }
    }

    /// Delivers one message at a time, without ticks (so no request is
    /// repeated), until the replica's chunk requests satisfy `enough`.
    fn deliver_until(&self, enough: impl Fn(&[(u64, u32, u64)]) -> bool) {
        self.primary.tick();
        while !enough(&self.counting.requests.lock()) {
            assert!(
                self.net.step_next(),
                "the transfer stalled: {:?}",
                self.counting.requests.lock()
            );
        }
    }

    /// Power loss of the replica: in-flight messages and unsynced bytes go.
    fn crash_replica(&self, replica: ReplicationNode) {
        self.net.set_down(1, true);
        drop(replica);
        self.replica_disk.crash(77);
        self.net.set_down(1, false);
    }
}

fn put(node: &ReplicationNode, key: &str, value: &str) {
    node.database()
        .unwrap()
        .engine()
        .put(key.as_bytes(), value.as_bytes())
        .unwrap();
}

fn contents(node: &ReplicationNode) -> Vec<(Vec<u8>, Vec<u8>)> {
    node.database()
        .unwrap()
        .engine()
        .prefix(b"k", crate::storage::Direction::Forward, None)
        .unwrap()
        .map(|row| row.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
        .collect()
}

#[test]
fn a_replica_restarted_mid_snapshot_fetches_only_the_chunks_it_lacks() {
    let (setup, replica) = Setup::new(21);
    // Into the second file, with a few chunks of it received: complete
    // files and a partial one are staged when the power goes.
    setup.deliver_until(|requests| requests.last().is_some_and(|r| r.1 >= 1 && r.2 > 512));
    assert_eq!(replica.stats().snapshots_installed, 0, "not halfway yet");
    // Every request but the last was answered and its chunk staged.
    let before = setup.counting.requests.lock().clone();
    let (received, outstanding) = before.split_at(before.len() - 1);
    let id = outstanding[0].0;
    assert!(received.iter().all(|r| r.0 == id), "{before:?}");
    let files_begun = received.iter().map(|r| r.1).max().unwrap_or(0);
    assert!(files_begun >= 1, "a multi-file snapshot: {before:?}");

    setup.crash_replica(replica);
    setup.counting.requests.lock().clear();
    let replica = setup.open_replica();
    assert_eq!(replica.stats().snapshots_resumed, 1);
    setup.settle(&replica);

    let after = setup.counting.requests.lock().clone();
    assert_eq!(
        after.first(),
        Some(&outstanding[0]),
        "resumed where it stopped"
    );
    for request in &after {
        assert_eq!(request.0, id, "the same snapshot: {after:?}");
        assert!(
            !received.contains(request),
            "chunk {request:?} was fetched before the crash and again after it"
        );
    }
    assert_eq!(
        replica.stats().snapshots_installed,
        1,
        "{:?}",
        replica.events()
    );
    assert_eq!(replica.last_sequence(), setup.primary.last_sequence());
    assert_eq!(contents(&replica), contents(&setup.primary));
    assert_eq!(contents(&replica).len(), 300);
    // Installed: nothing is left to resume at the next restart.
    setup.crash_replica(replica);
    let replica = setup.open_replica();
    assert_eq!(replica.stats().snapshots_resumed, 0);
    setup.settle(&replica);
    assert_eq!(contents(&replica), contents(&setup.primary));
}

#[test]
fn a_transfer_the_source_no_longer_serves_starts_over_after_the_restart() {
    let (setup, replica) = Setup::new(22);
    setup.deliver_until(|requests| requests.len() >= 20);
    let id = setup.counting.requests.lock()[0].0;
    setup.crash_replica(replica);
    // The primary restarts too: the snapshots it served are gone.
    setup.primary.close().unwrap();
    let primary = ReplicationNode::open_primary(
        Arc::clone(&setup.primary_disk) as Arc<dyn FileSystem>,
        "/db",
        Arc::clone(&setup.net) as Arc<dyn Transport>,
        options(0),
    )
    .unwrap();
    primary.add_replica(1);
    let setup = Setup { primary, ..setup };
    setup.counting.requests.lock().clear();
    let replica = setup.open_replica();
    assert_eq!(replica.stats().snapshots_resumed, 1);
    setup.settle(&replica);
    let after = setup.counting.requests.lock().clone();
    assert_eq!(
        after.first().map(|r| r.0),
        Some(id),
        "tried to resume first"
    );
    let fresh = after.iter().find(|r| r.0 != id).copied();
    assert_eq!(
        fresh.map(|r| (r.1, r.2)),
        Some((0, 0)),
        "then a new snapshot from the start"
    );
    assert_eq!(
        replica.stats().snapshots_installed,
        1,
        "{:?}",
        replica.events()
    );
    assert_eq!(contents(&replica), contents(&setup.primary));
    // The abandoned transfer's staged files were removed (the emptied
    // directories may stay).
    let stale = transfer::staging_dir(Path::new("/db"), id);
    assert_eq!(
        staged_files(&setup.replica_disk, &stale),
        Vec::<String>::new()
    );
}

/// Every file in `dir` and in its packs directory.
fn staged_files(disk: &SimFileSystem, dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for name in disk.list_dir(dir).unwrap_or_default() {
        match disk.list_dir(&dir.join(&name)) {
            Ok(inner) => files.extend(inner.into_iter().map(|file| format!("{name}/{file}"))),
            Err(_) => files.push(name),
        }
    }
    files
}

fn body(node: &ReplicationNode, key: &str) -> Vec<u8> {
    node.database()
        .unwrap()
        .objects()
        .get_object("media", key)
        .send()
        .unwrap()
        .body
        .collect()
        .unwrap()
        .to_vec()
}

#[test]
fn a_replica_restarted_inside_a_pack_file_resumes_it_and_serves_the_body() {
    let mut clip = vec![0u8; 40 << 10];
    crate::storage::sim::SimRng::new(5).fill(&mut clip);
    let (setup, replica) = Setup::with_missed_writes(23, |primary| {
        let db = primary.database().unwrap();
        let s3 = db.objects();
        s3.create_bucket("media").send().unwrap();
        // Far above the inline limit: its chunks go to a pack.
        s3.put_object("media", "clip")
            .body(clip.clone())
            .send()
            .unwrap();
    });
    // Some chunks into the pack file when the power goes.
    let names = &setup.counting.names;
    setup.deliver_until(|requests| {
        requests.last().is_some_and(|&(_, file, offset)| {
            offset > 1_024
                && names
                    .lock()
                    .get(&file)
                    .is_some_and(|n| n.starts_with("objects/"))
        })
    });
    let before = setup.counting.requests.lock().clone();
    let (received, outstanding) = before.split_at(before.len() - 1);
    let pack = names.lock()[&outstanding[0].1].clone();
    assert!(
        super::snapshot::pack_name(&pack),
        "cut inside {pack}: {:?}",
        names.lock()
    );

    setup.crash_replica(replica);
    setup.counting.requests.lock().clear();
    let replica = setup.open_replica();
    assert_eq!(replica.stats().snapshots_resumed, 1);
    setup.settle(&replica);

    let after = setup.counting.requests.lock().clone();
    assert_eq!(after.first(), Some(&outstanding[0]), "resumed in the pack");
    for request in &after {
        assert!(!received.contains(request), "{request:?} fetched twice");
    }
    assert_eq!(
        replica.stats().snapshots_installed,
        1,
        "{:?}",
        replica.events()
    );
    assert_eq!(body(&replica, "clip"), clip);
    assert_eq!(contents(&replica), contents(&setup.primary));
    let report = replica.database().unwrap().objects().verify().unwrap();
    assert!(report.is_consistent(), "{report:?}");
    assert_eq!(report.packs, 1, "{report:?}");
}
