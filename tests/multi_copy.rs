//! Table copies of multi-active tables: a replica that joins a group whose
//! outboxes no longer hold the group's history, or that lost its state,
//! receives every replicated table (items with their versions, tombstones
//! as deletes) and then follows the outboxes, under message loss,
//! duplication and reordering, concurrent writes and a restart mid-copy.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use nimbus::replication::multi::{
    COPY_PAGE_ITEMS_MAX, ItemVersion, NetworkFaults, ReplicaConfig, ReplicaId, SimNetwork,
};
use nimbus::time::ManualClock;
use nimbus::{AttributeValue, Database, DatabaseOptions, Item, ScalarType, item};

const TABLE: &str = "Orders";
/// A second replicated table, so copies cross a table boundary.
const OTHER: &str = "Users";
const START_SECS: u64 = 1_800_000_000;

struct Replica {
    id: u64,
    clock: ManualClock,
    db: Database,
}

fn options(clock: &ManualClock) -> DatabaseOptions {
    DatabaseOptions::default()
        .clock(clock.clone())
        .background_threads(false)
}

fn create_tables(db: &Database) {
    db.create_table(TABLE)
        .partition_key("pk", ScalarType::S)
        .sort_key("sk", ScalarType::N)
        .send()
        .unwrap();
    db.create_table(OTHER)
        .partition_key("id", ScalarType::S)
        .send()
        .unwrap();
}

/// Configures `db` as replica `me` of a group of `ids` on `network`.
fn link(db: &Database, me: u64, ids: &[u64], network: &Arc<SimNetwork>) {
    let peers = ids.iter().copied().filter(|p| *p != me).map(ReplicaId);
    let multi = db.multi_active();
    multi
        .configure(ReplicaConfig::new(ReplicaId(me), peers))
        .unwrap();
    multi.replicate_table(TABLE).unwrap();
    multi.replicate_table(OTHER).unwrap();
    multi.connect(network.clone());
}

fn replica(id: u64, ids: &[u64], network: &Arc<SimNetwork>, at: Duration) -> Replica {
    let clock = ManualClock::at(UNIX_EPOCH + at);
    let db = Database::memory_with(options(&clock)).unwrap();
    create_tables(&db);
    link(&db, id, ids, network);
    Replica { id, clock, db }
}

fn start() -> Duration {
    Duration::from_secs(START_SECS)
}

fn put(db: &Database, pk: &str, sk: u64, v: u64) {
    db.put_item(TABLE)
        .item(item! { "pk" => pk, "sk" => sk, "v" => v })
        .send()
        .unwrap();
}

fn delete(db: &Database, pk: &str, sk: u64) {
    db.delete_item(TABLE)
        .key(item! { "pk" => pk, "sk" => sk })
        .send()
        .unwrap();
}

/// Every item of both tables with its version, keyed by table and key.
fn contents(db: &Database) -> BTreeMap<(String, String), (Item, ItemVersion)> {
    let mut out = BTreeMap::new();
    for (table, names) in [(TABLE, &["pk", "sk"][..]), (OTHER, &["id"][..])] {
        for item in db.scan(table).items() {
            let item = item.unwrap();
            let key: Item = names
                .iter()
                .map(|n| ((*n).to_owned(), item.get(*n).unwrap().clone()))
                .collect();
            let version = db
                .multi_active()
                .item_version(table, &key)
                .unwrap()
                .expect("a live replicated item has a version");
            assert!(!version.tombstone, "{key:?} is live under a tombstone");
            out.insert((table.to_owned(), format!("{key:?}")), (item, version));
        }
    }
    out
}

struct Group {
    network: Arc<SimNetwork>,
    replicas: Vec<Replica>,
}

impl Group {
    fn new(ids: &[u64], seed: u64) -> Self {
        let network = Arc::new(SimNetwork::new(seed));
        let replicas = ids
            .iter()
            .map(|&id| replica(id, ids, &network, start()))
            .collect();
        Self { network, replicas }
    }

    fn db(&self, id: u64) -> &Database {
        &self.replicas.iter().find(|r| r.id == id).unwrap().db
    }

    fn advance(&self, millis: u64) {
        for r in &self.replicas {
            r.clock.advance(Duration::from_millis(millis));
        }
    }

    fn step_all(&self) {
        for r in &self.replicas {
            r.db.multi_active().step().unwrap();
        }
        self.network.tick();
    }

    /// Steps until no outbox holds anything, no copy is running and no
    /// peer is behind, for two heartbeats in a row; panics if it never
    /// quiesces.
    fn settle(&self) {
        let mut quiet_rounds = 0;
        for _ in 0..2_000 {
            self.advance(20);
            self.step_all();
            // Heartbeats keep a few messages in flight; the state is what
            // must be settled.
            let quiet = self.replicas.iter().all(|r| {
                let stats = r.db.multi_active().stats();
                stats.outbox_entries == 0
                    && stats.copying_from.is_empty()
                    && stats.peers_behind_retention.is_empty()
            });
            quiet_rounds = if quiet { quiet_rounds + 1 } else { 0 };
            if quiet_rounds > 2 * nimbus::replication::multi::HEARTBEAT_EVERY_STEPS {
                return;
            }
        }
        let stats: Vec<_> = self
            .replicas
            .iter()
            .map(|r| r.db.multi_active().stats())
            .collect();
        panic!("the group never quiesced: {stats:#?}");
    }

    fn assert_converged(&self) {
        let first = contents(&self.replicas[0].db);
        for r in &self.replicas[1..] {
            let other = contents(&r.db);
            assert_eq!(
                other.len(),
                first.len(),
                "replica {} holds {} items, replica {} holds {}",
                r.id,
                other.len(),
                self.replicas[0].id,
                first.len()
            );
            assert!(other == first, "replica {} diverged", r.id);
        }
    }

    /// Adds replica `id` to every member's peers and creates it.
    fn join(&mut self, id: u64) {
        let mut ids: Vec<u64> = self.replicas.iter().map(|r| r.id).collect();
        ids.push(id);
        for r in &self.replicas {
            let peers = ids.iter().copied().filter(|p| *p != r.id).map(ReplicaId);
            r.db.multi_active()
                .configure(ReplicaConfig::new(ReplicaId(r.id), peers))
                .unwrap();
        }
        let now = self.replicas[0].clock.now_since_epoch();
        self.replicas.push(replica(id, &ids, &self.network, now));
    }
}

trait SinceEpoch {
    fn now_since_epoch(&self) -> Duration;
}

impl SinceEpoch for ManualClock {
    fn now_since_epoch(&self) -> Duration {
        use nimbus::time::Clock;
        self.since_epoch()
    }
}

/// Writes `n` items over a few partitions (every seventh deleted again)
/// and a few users.
fn fill(db: &Database, n: u64, value: u64) {
    for i in 0..n {
        put(db, &format!("p{}", i % 5), i, value);
    }
    for i in (0..n).step_by(7) {
        delete(db, &format!("p{}", i % 5), i);
    }
    for i in 0..3 {
        db.put_item(OTHER)
            .item(item! { "id" => format!("u{i}"), "v" => value })
            .send()
            .unwrap();
    }
}

#[test]
fn a_replica_that_joins_a_group_with_data_receives_every_item_and_version() {
    let mut g = Group::new(&[1, 2], 1);
    let n = 3 * COPY_PAGE_ITEMS_MAX as u64 + 17;
    fill(g.db(1), n, 1);
    // Replica 2 overwrites some of replica 1's items: the copy must carry
    // the third replica's version, not the copier's.
    for i in 0..20 {
        g.advance(1);
        put(g.db(2), &format!("p{}", i % 5), i, 2);
    }
    g.settle();
    assert_eq!(g.db(1).multi_active().stats().outbox_entries, 0);
    g.join(3);
    g.settle();
    g.assert_converged();
    let stats = g.db(3).multi_active().stats();
    assert_eq!(
        (stats.copies_started, stats.copies_finished),
        (2, 2),
        "{stats:?}"
    );
    assert!(stats.items_copied >= n - n.div_ceil(7) + 3, "{stats:?}");
    let overwritten = g
        .db(3)
        .multi_active()
        .item_version(TABLE, &item! { "pk" => "p1", "sk" => 1 })
        .unwrap()
        .unwrap();
    assert_eq!(overwritten.version.replica, ReplicaId(2));
    // A deleted item's tombstone (or its absence) came along too.
    let deleted = g
        .db(3)
        .get_item(TABLE)
        .key(item! { "pk" => "p1", "sk" => 21 })
        .send()
        .unwrap();
    assert_eq!(deleted.item, None);
    // And the newcomer now follows the outboxes both ways.
    put(g.db(3), "new", 1, 3);
    put(g.db(1), "new", 2, 1);
    g.settle();
    g.assert_converged();
    assert_eq!(contents(g.db(2)).len(), contents(g.db(3)).len());
}

#[test]
fn a_wiped_replica_rejoins_and_its_new_writes_reach_every_peer() {
    let mut g = Group::new(&[1, 2, 3], 2);
    fill(g.db(1), 2 * COPY_PAGE_ITEMS_MAX as u64, 1);
    fill(g.db(2), 40, 2);
    fill(g.db(3), 10, 3);
    g.settle();
    // Replica 2 comes back empty under the same id, and writes before it
    // hears from anyone: its outbox starts at 1 again, below what its
    // peers applied of its old one.
    let now = g.replicas[0].clock.now_since_epoch() + Duration::from_secs(2);
    for r in &g.replicas {
        r.clock.set(UNIX_EPOCH + now);
    }
    g.replicas[1] = replica(2, &[1, 2, 3], &g.network, now);
    put(g.db(2), "after-wipe", 1, 9);
    g.db(2)
        .put_item(OTHER)
        .item(item! { "id" => "after-wipe" })
        .send()
        .unwrap();
    g.settle();
    g.assert_converged();
    let got = g
        .db(3)
        .get_item(TABLE)
        .key(item! { "pk" => "after-wipe", "sk" => 1 })
        .send()
        .unwrap();
    assert_eq!(
        got.item,
        Some(item! { "pk" => "after-wipe", "sk" => 1, "v" => 9 })
    );
    let wiped = g.db(2).multi_active().stats();
    assert_eq!(wiped.outbox_restarts, 1, "{wiped:?}");
    assert_eq!(wiped.copies_finished, 2, "{wiped:?}");
    // Its peers copied its tables, new writes included.
    assert!(g.db(1).multi_active().stats().copies_finished >= 1);
    // Later writes flow through the outbox again.
    put(g.db(2), "later", 1, 9);
    g.settle();
    g.assert_converged();
}

#[test]
fn copies_converge_under_loss_duplication_reordering_and_concurrent_writes() {
    for seed in 0..6 {
        let mut g = Group::new(&[1, 2], 100 + seed);
        fill(g.db(1), COPY_PAGE_ITEMS_MAX as u64 + 40, 1);
        fill(g.db(2), 30, 2);
        g.settle();
        g.network.set_faults(NetworkFaults {
            drop_per_mille: 200,
            duplicate_per_mille: 150,
            delay_ticks_max: 3,
            reorder: true,
        });
        g.join(3);
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for round in 0..300u64 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let writer = [1, 2, 3][(rng % 3) as usize];
            let pk = format!("p{}", (rng >> 8) % 5);
            let sk = (rng >> 16) % 200;
            if (rng >> 24).is_multiple_of(4) {
                delete(g.db(writer), &pk, sk);
            } else {
                put(g.db(writer), &pk, sk, 1_000 + round);
            }
            g.advance(1 + (rng >> 32) % 3);
            g.step_all();
        }
        g.network.set_faults(NetworkFaults::default());
        g.settle();
        g.assert_converged();
        let stats = g.db(3).multi_active().stats();
        assert!(stats.copies_finished >= 1, "seed {seed}: {stats:?}");
        assert!(g.network.stats().dropped > 0 && g.network.stats().duplicated > 0);
    }
}

#[test]
fn a_receiver_restarted_mid_copy_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let path: &Path = dir.path();
    let g = Group::new(&[1], 3);
    let n = 5 * COPY_PAGE_ITEMS_MAX as u64;
    for i in 0..n {
        put(g.db(1), &format!("p{}", i % 5), i, 1);
    }
    g.settle();
    // Replica 2 joins on disk.
    g.db(1)
        .multi_active()
        .configure(ReplicaConfig::new(ReplicaId(1), [ReplicaId(2)]))
        .unwrap();
    let clock = g.replicas[0].clock.clone();
    let open = || {
        let db = Database::open_with(path, options(&clock)).unwrap();
        db.multi_active().connect(g.network.clone());
        db
    };
    let db = open();
    create_tables(&db);
    link(&db, 2, &[1, 2], &g.network);
    // Two pages in, it stops.
    let mut rounds = 0;
    while db.multi_active().stats().items_copied < 2 * COPY_PAGE_ITEMS_MAX as u64 {
        g.db(1).multi_active().step().unwrap();
        db.multi_active().step().unwrap();
        rounds += 1;
        assert!(rounds < 100, "the copy does not progress");
    }
    assert_eq!(db.multi_active().stats().copying_from.len(), 1);
    db.close().unwrap();
    drop(db);
    let db = open();
    assert_eq!(
        db.multi_active().stats().copying_from,
        [ReplicaId(1)].into_iter().collect(),
        "the copy is still under way after the restart"
    );
    for _ in 0..200 {
        g.db(1).multi_active().step().unwrap();
        db.multi_active().step().unwrap();
        if db.multi_active().stats().copies_finished == 1 {
            break;
        }
    }
    let stats = db.multi_active().stats();
    assert_eq!(stats.copies_finished, 1, "{stats:?}");
    // Only the pages after the restart were copied again.
    assert!(
        stats.items_copied <= n - 2 * COPY_PAGE_ITEMS_MAX as u64,
        "{stats:?}"
    );
    assert_eq!(contents(&db), contents(g.db(1)));
    assert_eq!(stats.copies_started, 0, "no new copy was started");
    // The finished copy hands over to the outbox.
    put(g.db(1), "after", 1, 2);
    for _ in 0..4 {
        g.db(1).multi_active().step().unwrap();
        db.multi_active().step().unwrap();
    }
    let got = db
        .get_item(TABLE)
        .key(item! { "pk" => "after", "sk" => 1 })
        .send()
        .unwrap();
    assert_eq!(
        got.item.map(|i| i["v"].clone()),
        Some(AttributeValue::from(2))
    );
}

/// Brings back replica `id` of `g` empty under its id, two seconds on (a
/// restore takes longer than the clock skew bound).
fn wipe(g: &mut Group, id: u64) {
    let ids: Vec<u64> = g.replicas.iter().map(|r| r.id).collect();
    let now = g.replicas[0].clock.now_since_epoch() + Duration::from_secs(2);
    for r in &g.replicas {
        r.clock.set(UNIX_EPOCH + now);
    }
    let at = g.replicas.iter().position(|r| r.id == id).unwrap();
    g.replicas[at] = replica(id, &ids, &g.network, now);
}

fn get(db: &Database, pk: &str, sk: u64) -> Option<Item> {
    db.get_item(TABLE)
        .key(item! { "pk" => pk, "sk" => sk })
        .send()
        .unwrap()
        .item
}

/// Seed 5604 of the long simulation, first half: a wiped replica numbers
/// its outbox from 1 again and, cut off, issues more positions than its
/// earlier life had. Its peers must not take its first new writes for the
/// earlier life's (they did while positions had no incarnation).
#[test]
fn a_wiped_replica_issuing_more_positions_than_its_earlier_life_before_any_peer_answers_loses_none()
{
    let mut g = Group::new(&[1, 2, 3], 3);
    for i in 0..3 {
        put(g.db(2), "old", i, 1);
    }
    g.settle();
    wipe(&mut g, 2);
    g.network.partition(ReplicaId(2), ReplicaId(1));
    g.network.partition(ReplicaId(2), ReplicaId(3));
    for i in 0..8 {
        g.advance(1);
        put(g.db(2), "new", i, 2);
    }
    for _ in 0..3 * nimbus::replication::multi::HEARTBEAT_EVERY_STEPS {
        g.step_all();
    }
    assert!(get(g.db(1), "new", 0).is_none(), "no peer heard of it yet");
    g.network.heal();
    g.settle();
    g.assert_converged();
    for id in [1, 3] {
        for i in 0..8 {
            let got = get(g.db(id), "new", i);
            assert_eq!(got, Some(item! { "pk" => "new", "sk" => i, "v" => 2 }));
        }
        assert_eq!(g.db(id).multi_active().stats().peer_rebirths, 1);
    }
    // Its earlier life's writes, which only its peers kept, came back.
    assert!(get(g.db(2), "old", 2).is_some());
    assert!(g.db(2).multi_active().incarnation() > g.db(1).multi_active().incarnation());
}

/// Seed 5604, second half: replica 3 deletes an item; the acknowledgement
/// of the delete comes from replica 2's earlier life only, and replica 1,
/// cut off, still holds the item. The restored replica 2 must not copy the
/// item from replica 1 while replica 3 counts the earlier life's
/// acknowledgement and removes the tombstone: it copies nothing before
/// every peer knows its new incarnation.
#[test]
fn a_stale_acknowledgement_of_a_delete_does_not_let_a_restored_replica_keep_the_item() {
    let mut g = Group::new(&[1, 2, 3], 4);
    put(g.db(1), "gone", 1, 1);
    g.settle();
    g.network.partition(ReplicaId(1), ReplicaId(3));
    delete(g.db(3), "gone", 1);
    // Replica 2 applies and acknowledges the delete; time passes (more than
    // `STABLE_ADVANCE_MILLIS`), so every stable timestamp passes it.
    for _ in 0..3 * nimbus::replication::multi::HEARTBEAT_EVERY_STEPS {
        g.advance(50);
        g.step_all();
    }
    assert!(get(g.db(2), "gone", 1).is_none());
    assert!(get(g.db(1), "gone", 1).is_some());
    wipe(&mut g, 2);
    // The restored replica reaches only replica 1 (which still holds the
    // item); then replica 1 hears of the delete, while 3 cannot reach 2.
    g.network.partition(ReplicaId(2), ReplicaId(3));
    for _ in 0..2 * nimbus::replication::multi::HEARTBEAT_EVERY_STEPS {
        g.advance(20);
        g.step_all();
    }
    let restored = g.db(2).multi_active().stats();
    assert_eq!(restored.copies_finished, 0, "{restored:?}");
    assert!(get(g.db(2), "gone", 1).is_none(), "nothing copied yet");
    g.network.heal();
    g.network.partition(ReplicaId(2), ReplicaId(3));
    for _ in 0..3 * nimbus::replication::multi::HEARTBEAT_EVERY_STEPS {
        g.advance(20);
        g.step_all();
    }
    assert!(get(g.db(1), "gone", 1).is_none());
    // Replica 3 removed its tombstone on the earlier life's acknowledgement
    // (it has not heard of the new one): without the wait for every peer
    // to know the new incarnation, replica 2 would have copied the item
    // from replica 1 above and kept it.
    let tombstone = g
        .db(3)
        .multi_active()
        .item_version(TABLE, &item! { "pk" => "gone", "sk" => 1 })
        .unwrap();
    assert_eq!(tombstone, None);
    g.network.heal();
    g.settle();
    g.assert_converged();
    for id in [1, 2, 3] {
        assert!(get(g.db(id), "gone", 1).is_none(), "replica {id} kept it");
    }
}
