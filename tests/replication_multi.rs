//! Behaviour of multi-active tables through the public API: propagation,
//! last-writer-wins with the replica tie-break, conflict counting, hidden
//! versions, no echo, clock skew refusal, tombstones, the background
//! thread, persistence across reopen, and configuration errors.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use nimbus::kv::{ShardIteratorType, StreamSpecification, StreamViewType};
use nimbus::replication::multi::{
    DEFAULT_STEP_INTERVAL, Error, HEARTBEAT_EVERY_STEPS, Message, ReplicaConfig, ReplicaId,
    SimNetwork, Transport,
};
use nimbus::time::ManualClock;
use nimbus::{Database, DatabaseOptions, Item, ScalarType, item};

const TABLE: &str = "Users";

struct Group {
    network: Arc<SimNetwork>,
    clocks: Vec<ManualClock>,
    dbs: Vec<Database>,
}

fn create_table(db: &Database) {
    db.create_table(TABLE)
        .partition_key("id", ScalarType::S)
        .stream_specification(StreamSpecification {
            stream_enabled: true,
            stream_view_type: Some(StreamViewType::NewAndOldImages),
        })
        .send()
        .unwrap();
}

fn link(db: &Database, me: u64, count: u64, network: &Arc<SimNetwork>, skew: Duration) {
    let peers = (1..=count).filter(|p| *p != me).map(ReplicaId);
    let multi = db.multi_active();
    multi
        .configure(ReplicaConfig::new(ReplicaId(me), peers).max_clock_skew(skew))
        .unwrap();
    multi.replicate_table(TABLE).unwrap();
    multi.connect(network.clone());
}

fn group(count: u64) -> Group {
    let network = Arc::new(SimNetwork::new(1));
    let mut clocks = Vec::new();
    let mut dbs = Vec::new();
    for me in 1..=count {
        let clock = ManualClock::at(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        let db = Database::memory_with(
            DatabaseOptions::default()
                .clock(clock.clone())
                .background_threads(false),
        )
        .unwrap();
        create_table(&db);
        link(&db, me, count, &network, Duration::from_millis(500));
        clocks.push(clock);
        dbs.push(db);
    }
    Group {
        network,
        clocks,
        dbs,
    }
}

impl Group {
    fn settle(&self) {
        for _ in 0..4 {
            for db in &self.dbs {
                db.multi_active().step().unwrap();
            }
        }
    }

    fn get(&self, n: usize, id: &str) -> Option<Item> {
        self.dbs[n]
            .get_item(TABLE)
            .key(item! { "id" => id })
            .send()
            .unwrap()
            .item
    }

    fn advance(&self, by: Duration) {
        for clock in &self.clocks {
            clock.advance(by);
        }
    }
}

#[test]
fn writes_at_every_replica_reach_every_other() {
    let g = group(3);
    g.dbs[0]
        .put_item(TABLE)
        .item(item! { "id" => "a", "n" => 1 })
        .send()
        .unwrap();
    g.advance(Duration::from_millis(1));
    g.dbs[2]
        .put_item(TABLE)
        .item(item! { "id" => "b", "n" => 2 })
        .send()
        .unwrap();
    g.settle();
    g.dbs[1]
        .update_item(TABLE)
        .key(item! { "id" => "a" })
        .update_expression("ADD n :one")
        .value(":one", 1)
        .send()
        .unwrap();
    g.settle();
    for n in 0..3 {
        assert_eq!(g.get(n, "a"), Some(item! { "id" => "a", "n" => 2 }));
        assert_eq!(g.get(n, "b"), Some(item! { "id" => "b", "n" => 2 }));
    }
}

#[test]
fn concurrent_writes_converge_on_the_higher_replica_at_equal_timestamps_and_count_a_conflict() {
    let g = group(2);
    // The new replicas first copy each other's (empty) tables: writes made
    // before that are settled by the copies, without a change to lose.
    g.settle();
    // Both clocks read the same millisecond: the replica id decides.
    for (n, db) in g.dbs.iter().enumerate() {
        db.put_item(TABLE)
            .item(item! { "id" => "x", "from" => n as u64 + 1 })
            .send()
            .unwrap();
    }
    g.settle();
    for n in 0..2 {
        assert_eq!(g.get(n, "x"), Some(item! { "id" => "x", "from" => 2 }));
    }
    let conflicts: u64 = g
        .dbs
        .iter()
        .map(|db| db.multi_active().table_stats(TABLE).conflicts)
        .sum();
    assert_eq!(conflicts, 1, "the losing write is counted once");
    assert_eq!(g.dbs[1].multi_active().table_stats(TABLE).conflicts, 1);
}

#[test]
fn the_later_write_wins_whichever_replica_made_it() {
    let g = group(2);
    g.dbs[1]
        .put_item(TABLE)
        .item(item! { "id" => "x", "v" => "old" })
        .send()
        .unwrap();
    g.advance(Duration::from_millis(5));
    g.dbs[0]
        .put_item(TABLE)
        .item(item! { "id" => "x", "v" => "new" })
        .send()
        .unwrap();
    g.settle();
    for n in 0..2 {
        assert_eq!(g.get(n, "x"), Some(item! { "id" => "x", "v" => "new" }));
    }
}

#[test]
fn versions_are_invisible_to_reads_and_streams() {
    let g = group(2);
    let written = item! { "id" => "u", "name" => "Ann" };
    g.dbs[0]
        .put_item(TABLE)
        .item(written.clone())
        .send()
        .unwrap();
    g.settle();
    for n in 0..2 {
        assert_eq!(g.get(n, "u"), Some(written.clone()));
        let scanned: Vec<Item> = g.dbs[n].scan(TABLE).items().map(|i| i.unwrap()).collect();
        assert_eq!(scanned, vec![written.clone()]);
        // Each replica's stream records the change, local or replicated.
        let db = &g.dbs[n];
        let arn = db
            .describe_table(TABLE)
            .send()
            .unwrap()
            .table
            .latest_stream_arn
            .unwrap();
        let shard = db
            .describe_stream(&arn)
            .send()
            .unwrap()
            .stream_description
            .shards[0]
            .shard_id
            .clone();
        let iterator = db
            .get_shard_iterator(&arn, &shard, ShardIteratorType::TrimHorizon)
            .send()
            .unwrap()
            .shard_iterator;
        let records = db.get_records(&iterator).send().unwrap().records;
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].dynamodb.new_image, Some(written.clone()));
    }
    assert!(
        g.dbs[1]
            .multi_active()
            .item_version(TABLE, &item! { "id" => "u" })
            .unwrap()
            .is_some()
    );
}

#[test]
fn applied_changes_are_not_echoed_back() {
    let g = group(2);
    g.dbs[0]
        .put_item(TABLE)
        .item(item! { "id" => "e" })
        .send()
        .unwrap();
    g.settle();
    assert_eq!(g.dbs[1].multi_active().table_stats(TABLE).applied, 1);
    assert_eq!(g.dbs[1].multi_active().table_stats(TABLE).local_writes, 0);
    assert_eq!(g.dbs[0].multi_active().table_stats(TABLE).applied, 0);
    assert_eq!(g.dbs[0].multi_active().table_stats(TABLE).duplicates, 0);
}

#[test]
fn a_timestamp_too_far_ahead_is_refused_then_applied_when_time_catches_up() {
    let g = group(2);
    g.clocks[0].advance(Duration::from_secs(2));
    g.dbs[0]
        .put_item(TABLE)
        .item(item! { "id" => "f" })
        .send()
        .unwrap();
    g.settle();
    assert_eq!(g.get(1, "f"), None);
    assert!(g.dbs[1].multi_active().stats().rejected_clock_skew >= 1);
    g.clocks[1].advance(Duration::from_secs(2));
    for _ in 0..HEARTBEAT_EVERY_STEPS {
        g.settle();
    }
    assert_eq!(g.get(1, "f"), Some(item! { "id" => "f" }));
}

#[test]
fn a_tombstone_beats_an_older_write_and_is_collected_once_every_peer_passed_it() {
    let g = group(2);
    g.dbs[0]
        .put_item(TABLE)
        .item(item! { "id" => "t", "v" => 1 })
        .send()
        .unwrap();
    // Cut the link: the older write at replica 2 stays in flight.
    g.network.partition(ReplicaId(1), ReplicaId(2));
    g.settle();
    g.advance(Duration::from_millis(5));
    g.dbs[0]
        .delete_item(TABLE)
        .key(item! { "id" => "t" })
        .send()
        .unwrap();
    let tomb = g.dbs[0]
        .multi_active()
        .item_version(TABLE, &item! { "id" => "t" })
        .unwrap()
        .unwrap();
    assert!(tomb.tombstone);
    g.network.heal();
    for _ in 0..HEARTBEAT_EVERY_STEPS {
        g.settle();
    }
    assert_eq!(g.get(0, "t"), None);
    assert_eq!(g.get(1, "t"), None);
    // Later writes move every replica's stable timestamp past the delete.
    g.advance(Duration::from_millis(5));
    for (n, db) in g.dbs.iter().enumerate() {
        db.put_item(TABLE)
            .item(item! { "id" => format!("later{n}") })
            .send()
            .unwrap();
    }
    for _ in 0..HEARTBEAT_EVERY_STEPS {
        g.settle();
    }
    let collected: u64 = g
        .dbs
        .iter()
        .map(|db| db.multi_active().table_stats(TABLE).tombstones_collected)
        .sum();
    assert_eq!(collected, 2);
    for db in &g.dbs {
        assert_eq!(
            db.multi_active()
                .item_version(TABLE, &item! { "id" => "t" })
                .unwrap(),
            None
        );
    }
}

#[test]
fn the_background_thread_propagates_and_stops_on_close() {
    let network = Arc::new(SimNetwork::new(3));
    let dbs: Vec<Database> = (1..=2)
        .map(|me| {
            let db = Database::memory().unwrap();
            create_table(&db);
            link(&db, me, 2, &network, Duration::from_secs(1));
            db.multi_active().start(DEFAULT_STEP_INTERVAL);
            db
        })
        .collect();
    dbs[0]
        .put_item(TABLE)
        .item(item! { "id" => "bg" })
        .send()
        .unwrap();
    // A few rounds: the replicas' first steps exchange their birth copies
    // (empty here), and changes from a peer wait for its copy to finish.
    let mut got = None;
    for _ in 0..200 {
        assert!(dbs[0].multi_active().wait_for_step());
        assert!(dbs[1].multi_active().wait_for_step());
        got = dbs[1]
            .get_item(TABLE)
            .key(item! { "id" => "bg" })
            .send()
            .unwrap()
            .item;
        if got.is_some() {
            break;
        }
    }
    assert_eq!(got, Some(item! { "id" => "bg" }));
    for db in &dbs {
        assert!(db.multi_active().is_running());
        db.close().unwrap();
        assert!(!db.multi_active().is_running());
    }
}

#[test]
fn configuration_and_unshipped_changes_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let network = Arc::new(SimNetwork::new(4));
    let a = Database::open(dir.path()).unwrap();
    create_table(&a);
    link(&a, 1, 2, &network, Duration::from_secs(1));
    let b = Database::memory().unwrap();
    create_table(&b);
    link(&b, 2, 2, &network, Duration::from_secs(1));
    a.put_item(TABLE)
        .item(item! { "id" => "durable" })
        .send()
        .unwrap();
    a.close().unwrap();
    drop(a);
    let a = Database::open(dir.path()).unwrap();
    assert_eq!(a.multi_active().replicated_tables(), vec![TABLE.to_owned()]);
    a.multi_active().connect(network.clone());
    // b's copies of a new database wait a round trip for a to know its
    // incarnation.
    for _ in 0..5 {
        a.multi_active().step().unwrap();
        b.multi_active().step().unwrap();
    }
    let got = b
        .get_item(TABLE)
        .key(item! { "id" => "durable" })
        .send()
        .unwrap()
        .item;
    assert_eq!(got, Some(item! { "id" => "durable" }));
    assert_eq!(a.multi_active().stats().outbox_entries, 0);
}

/// Seed 14300 of the 100,000-seed simulation: an acknowledgement delayed
/// past the origin's restart (which forgot the later ones) must not make
/// the origin stop shipping to a peer that is in fact up to date.
#[test]
fn a_stale_acknowledgement_after_a_restart_does_not_stall_a_peer() {
    let dir = tempfile::tempdir().unwrap();
    let network = Arc::new(SimNetwork::new(5));
    let a = Database::open(dir.path()).unwrap();
    create_table(&a);
    link(&a, 1, 2, &network, Duration::from_secs(1));
    let b = Database::memory().unwrap();
    create_table(&b);
    link(&b, 2, 2, &network, Duration::from_secs(1));
    let step_both = |a: &Database| {
        // b's copies of a new database wait a round trip for a to know its
        // incarnation.
        for _ in 0..5 {
            a.multi_active().step().unwrap();
            b.multi_active().step().unwrap();
        }
    };
    for id in ["one", "two", "three"] {
        a.put_item(TABLE).item(item! { "id" => id }).send().unwrap();
    }
    step_both(&a);
    assert_eq!(
        a.multi_active().stats().outbox_entries,
        0,
        "b acknowledged all"
    );
    a.close().unwrap();
    drop(a);
    let a = Database::open(dir.path()).unwrap();
    a.multi_active().connect(network.clone());
    // An acknowledgement b sent before the three changes arrived, delivered
    // late.
    network.send(Message::Ack {
        from: ReplicaId(2),
        to: ReplicaId(1),
        incarnation: b.multi_active().incarnation().unwrap(),
        origin_incarnation: a.multi_active().incarnation().unwrap(),
        applied_through: 0,
    });
    a.put_item(TABLE)
        .item(item! { "id" => "four" })
        .send()
        .unwrap();
    step_both(&a);
    let got = b
        .get_item(TABLE)
        .key(item! { "id" => "four" })
        .send()
        .unwrap();
    assert_eq!(got.item, Some(item! { "id" => "four" }));
    let stats = a.multi_active().stats();
    assert!(stats.peers_behind_retention.is_empty(), "{stats:?}");
    assert_eq!(stats.outbox_entries, 0);
}

#[test]
fn bad_configurations_are_refused_and_change_nothing() {
    let db = Database::memory().unwrap();
    let multi = db.multi_active();
    assert!(matches!(
        multi.replicate_table(TABLE),
        Err(Error::Kv(nimbus::kv::Error::ResourceNotFound(_)))
    ));
    create_table(&db);
    assert!(matches!(
        multi.replicate_table(TABLE),
        Err(Error::NotConfigured)
    ));
    assert!(matches!(
        multi.configure(ReplicaConfig::new(ReplicaId(1), [ReplicaId(1)])),
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        multi.configure(ReplicaConfig::new(
            ReplicaId(1),
            [ReplicaId(2), ReplicaId(2)]
        )),
        Err(Error::Validation(_))
    ));
    assert_eq!(multi.stats().replica, None);
    multi
        .configure(ReplicaConfig::new(ReplicaId(1), [ReplicaId(2)]))
        .unwrap();
    assert!(matches!(
        multi.configure(ReplicaConfig::new(ReplicaId(3), [ReplicaId(2)])),
        Err(Error::ReplicaIdMismatch { .. })
    ));
    assert_eq!(multi.stats().replica, Some(ReplicaId(1)));
}

#[test]
fn two_replicas_converge_over_tcp_loopback() {
    use nimbus::replication::multi::TcpTransport;
    let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    // Bind both first, then tell each the other's address.
    let listeners: Vec<std::net::SocketAddr> = (0..2)
        .map(|_| {
            let probe = std::net::TcpListener::bind(any).unwrap();
            probe.local_addr().unwrap()
        })
        .collect();
    let dbs: Vec<Database> = (1..=2u64)
        .map(|me| {
            let db = Database::memory().unwrap();
            create_table(&db);
            let peer = 3 - me;
            let transport = TcpTransport::bind(
                ReplicaId(me),
                listeners[me as usize - 1],
                [(ReplicaId(peer), listeners[peer as usize - 1])],
            )
            .unwrap();
            let multi = db.multi_active();
            multi
                .configure(ReplicaConfig::new(ReplicaId(me), [ReplicaId(peer)]))
                .unwrap();
            multi.replicate_table(TABLE).unwrap();
            multi.connect(transport);
            multi.start(DEFAULT_STEP_INTERVAL);
            db
        })
        .collect();
    dbs[0]
        .put_item(TABLE)
        .item(item! { "id" => "tcp", "n" => 1 })
        .send()
        .unwrap();
    dbs[1]
        .put_item(TABLE)
        .item(item! { "id" => "pct", "n" => 2 })
        .send()
        .unwrap();
    // Steps are asynchronous over TCP: wait for rounds until both arrive
    // (bounded, so a broken link fails instead of hanging).
    let converged = (0..2_000).any(|_| {
        for db in &dbs {
            db.multi_active().wait_for_step();
        }
        dbs.iter().all(|db| db.scan(TABLE).items().count() == 2)
    });
    assert!(converged, "replicas did not converge over TCP");
    for db in &dbs {
        db.close().unwrap();
    }
}

#[test]
fn idle_replicas_collect_tombstones_as_time_passes() {
    let g = group(3);
    g.dbs[1]
        .put_item(TABLE)
        .item(item! { "id" => "gone" })
        .send()
        .unwrap();
    g.settle();
    g.dbs[2]
        .delete_item(TABLE)
        .key(item! { "id" => "gone" })
        .send()
        .unwrap();
    g.settle();
    g.advance(Duration::from_millis(
        2 * nimbus::replication::multi::STABLE_ADVANCE_MILLIS,
    ));
    for _ in 0..HEARTBEAT_EVERY_STEPS {
        g.settle();
    }
    for (n, db) in g.dbs.iter().enumerate() {
        assert_eq!(g.get(n, "gone"), None);
        assert_eq!(db.multi_active().table_stats(TABLE).tombstones_collected, 1);
        assert_eq!(
            db.multi_active()
                .item_version(TABLE, &item! { "id" => "gone" })
                .unwrap(),
            None
        );
    }
    let latency = g.dbs[0]
        .multi_active()
        .table_stats(TABLE)
        .last_replication_latency_millis;
    assert_eq!(
        latency,
        Some(0),
        "the manual clocks did not move between write and apply"
    );
}

/// Positions count within one incarnation: a `Changes` from an earlier
/// life of a peer (delivered late) is ignored, and one from a newer life
/// restarts the peer's positions here instead of being taken for ones
/// already applied.
#[test]
fn changes_of_an_earlier_incarnation_are_ignored_and_a_newer_one_restarts_positions() {
    let network = Arc::new(SimNetwork::new(6));
    let a = Database::memory().unwrap();
    create_table(&a);
    link(&a, 1, 2, &network, Duration::from_secs(1));
    let b = Database::memory().unwrap();
    create_table(&b);
    link(&b, 2, 2, &network, Duration::from_secs(1));
    for id in ["one", "two"] {
        b.put_item(TABLE).item(item! { "id" => id }).send().unwrap();
    }
    for _ in 0..6 {
        a.multi_active().step().unwrap();
        b.multi_active().step().unwrap();
    }
    let b_life = b.multi_active().incarnation().unwrap();
    let forged = |incarnation: u64, id: &str, seq: u64| {
        let version = b
            .multi_active()
            .item_version(TABLE, &item! { "id" => "two" })
            .unwrap()
            .unwrap()
            .version;
        Message::Changes {
            from: ReplicaId(2),
            to: ReplicaId(1),
            after: seq - 1,
            through: seq,
            stable: version.timestamp,
            incarnation,
            acknowledged: Default::default(),
            changes: vec![nimbus::replication::multi::Change {
                seq,
                table: TABLE.into(),
                key: item! { "id" => id },
                version: nimbus::replication::multi::Version {
                    timestamp: nimbus::replication::multi::Timestamp {
                        logical: version.timestamp.logical + 1,
                        ..version.timestamp
                    },
                    ..version
                },
                item: Some(item! { "id" => id }),
            }],
        }
    };
    let has = |id: &str| {
        a.get_item(TABLE)
            .key(item! { "id" => id })
            .send()
            .unwrap()
            .item
            .is_some()
    };
    // Position 3 of an earlier life: ignored, though it follows the cursor.
    network.send(forged(b_life - 1, "stale", 3));
    a.multi_active().step().unwrap();
    assert!(!has("stale"));
    // Position 1 of a newer life: applied, though position 1 of the
    // current life was applied already.
    network.send(forged(b_life + 1, "reborn", 1));
    a.multi_active().step().unwrap();
    assert!(has("reborn"));
    assert_eq!(a.multi_active().stats().peer_rebirths, 1);
    assert!(has("one") && has("two"));
}
