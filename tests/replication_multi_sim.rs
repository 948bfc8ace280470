//! Deterministic simulation of multi-active tables: two or three replicas
//! take random puts, updates, deletes and conditional writes while the
//! network loses, repeats, delays and reorders messages and partitions
//! replicas, and (on some seeds) replicas crash and reopen from a
//! simulated disk, a third replica joins the group late (its peers'
//! outboxes no longer hold their history: it copies their tables), or a
//! replica loses its state at any point and rejoins empty under its id, a
//! new incarnation (it copies theirs, they copy its; its writes that no
//! peer held when it was wiped may be lost). A replica that joined or was wiped takes writes
//! only once it follows every peer (`synced_with`), as a DynamoDB replica
//! that is still being created takes none. After a heal phase every
//! replica must hold the same table, and each item must be what the write
//! with the greatest version left (so no acknowledged write is lost to a
//! wrong winner and no deleted item comes back).
//!
//! `NIMBUS_SIM_SEEDS=n` runs n seeds (default 1,000); `NIMBUS_SEED=s` runs
//! one seed and prints its trace.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed run must stop loudly.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use nimbus::kv::{Error as KvError, StreamSpecification, StreamViewType};
use nimbus::replication::multi::{
    InjectedBug, ItemVersion, NetworkFaults, ReplicaConfig, ReplicaId, SimNetwork, Version,
};
use nimbus::storage::Durability;
use nimbus::storage::fs::FileSystem;
use nimbus::storage::sim::SimFileSystem;
use nimbus::time::ManualClock;
use nimbus::{AttributeValue, Database, DatabaseOptions, Item, ScalarType, item};

const TABLE: &str = "Accounts";
const KEYS: u64 = 6;
const OPS_PER_SEED: usize = 120;
const START_MILLIS: u64 = 1_800_000_000_000;

/// splitmix64, seeded per run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

struct Node {
    id: ReplicaId,
    /// Joined late or was wiped, and does not follow every peer yet.
    catching_up: bool,
    peers: Vec<ReplicaId>,
    clock: ManualClock,
    skew_millis: u64,
    disk: Option<SimFileSystem>,
    db: Database,
}

/// One acknowledged write: the item's version and content right after it.
struct Acked {
    key: String,
    version: Version,
    item: Option<Item>,
    /// The writer was wiped while no other replica held this write (or a
    /// later one of the key): it may be lost, or still arrive from a
    /// message in flight.
    at_risk: bool,
}

/// What the runs exercised, summed over seeds.
#[derive(Debug, Default)]
struct Totals {
    acked_writes: u64,
    crashes: u64,
    dropped: u64,
    duplicated: u64,
    conflicts: u64,
    rejected_clock_skew: u64,
    tombstones_collected: u64,
    joins: u64,
    wipes: u64,
    /// Writes the wiped replica alone held when it was wiped.
    at_risk: u64,
    /// Times a replica heard a peer under a newer incarnation.
    peer_rebirths: u64,
    copies_finished: u64,
}

struct Sim {
    crashes: u64,
    joins: u64,
    wipes: u64,
    /// The replica that joins late, and the op at which it joins.
    late: Option<(ReplicaId, usize)>,
    /// The op from which a replica is wiped (at the first chance).
    wipe_from: Option<usize>,
    /// Each replica's clock offset, by id.
    skews: Vec<u64>,
    rng: Rng,
    network: Arc<SimNetwork>,
    nodes: Vec<Node>,
    now_millis: u64,
    acked: Vec<Acked>,
    bug: Option<InjectedBug>,
    trace: bool,
}

fn options(clock: &ManualClock) -> DatabaseOptions {
    let mut options = DatabaseOptions::default()
        .clock(clock.clone())
        .background_threads(false)
        .durability(Durability::Sync);
    // A small log keeps the simulated disk's crash images cheap.
    options.engine.log_preallocate_bytes = 0;
    options
}

fn open(node_disk: Option<&SimFileSystem>, clock: &ManualClock) -> Database {
    match node_disk {
        Some(fs) => {
            let fs: Arc<dyn FileSystem> = Arc::new(fs.session());
            Database::open_on(fs, Path::new("/replica"), options(clock)).unwrap()
        }
        None => Database::memory_with(options(clock)).unwrap(),
    }
}

impl Sim {
    fn new(seed: u64, bug: Option<InjectedBug>, trace: bool) -> Self {
        let mut rng = Rng(seed);
        let replicas = 2 + rng.below(2);
        let on_disk = seed.is_multiple_of(10);
        let network = Arc::new(SimNetwork::new(rng.next()));
        network.set_faults(NetworkFaults {
            drop_per_mille: rng.below(300) as u32,
            duplicate_per_mille: rng.below(200) as u32,
            delay_ticks_max: rng.below(4),
            reorder: rng.chance(50),
        });
        // Skews within and beyond the bound, so some changes are refused.
        let same_clock = rng.chance(50);
        let skews: Vec<u64> = (0..replicas)
            .map(|_| if same_clock { 0 } else { rng.below(300) })
            .collect();
        // The third replica joins late on some seeds; on others one
        // replica is wiped.
        let late = (replicas == 3 && rng.chance(30)).then(|| {
            (
                ReplicaId(3),
                20 + rng.below(OPS_PER_SEED as u64 / 2) as usize,
            )
        });
        let wipe_from = rng
            .chance(20)
            .then(|| rng.below(OPS_PER_SEED as u64) as usize);
        let first: Vec<ReplicaId> = (1..=replicas)
            .map(ReplicaId)
            .filter(|id| late.is_none_or(|(late, _)| *id != late))
            .collect();
        let mut sim = Self {
            crashes: 0,
            joins: 0,
            wipes: 0,
            late,
            wipe_from,
            skews,
            rng,
            network,
            nodes: Vec::new(),
            now_millis: START_MILLIS,
            acked: Vec::new(),
            bug,
            trace,
        };
        for &id in &first {
            let node = sim.new_node(id, &first, on_disk);
            sim.nodes.push(node);
        }
        sim
    }

    /// A fresh replica `id` of a group of `ids`, its clock at the sim's
    /// time plus its skew.
    fn new_node(&self, id: ReplicaId, ids: &[ReplicaId], on_disk: bool) -> Node {
        let skew_millis = self.skews[(id.0 - 1) as usize];
        let clock = ManualClock::at(UNIX_EPOCH + Duration::from_millis(self.now_millis));
        clock.advance(Duration::from_millis(skew_millis));
        let disk = on_disk.then(SimFileSystem::new);
        let db = open(disk.as_ref(), &clock);
        db.create_table(TABLE)
            .partition_key("pk", ScalarType::S)
            .stream_specification(StreamSpecification {
                stream_enabled: true,
                stream_view_type: Some(StreamViewType::NewAndOldImages),
            })
            .send()
            .unwrap();
        let peers: Vec<ReplicaId> = ids.iter().copied().filter(|p| *p != id).collect();
        let multi = db.multi_active();
        multi
            .configure(
                ReplicaConfig::new(id, peers.clone()).max_clock_skew(Duration::from_millis(200)),
            )
            .unwrap();
        multi.replicate_table(TABLE).unwrap();
        multi.connect(self.network.clone());
        multi.inject_bug(self.bug);
        Node {
            id,
            catching_up: false,
            peers,
            clock,
            skew_millis,
            disk,
            db,
        }
    }

    /// The late replica joins: every member adds it to its peers.
    fn join(&mut self) {
        let Some((id, _)) = self.late.take() else {
            return;
        };
        let mut ids: Vec<ReplicaId> = self.nodes.iter().map(|n| n.id).collect();
        ids.push(id);
        for node in &mut self.nodes {
            node.peers = ids.iter().copied().filter(|p| *p != node.id).collect();
            node.db
                .multi_active()
                .configure(
                    ReplicaConfig::new(node.id, node.peers.clone())
                        .max_clock_skew(Duration::from_millis(200)),
                )
                .unwrap();
        }
        let on_disk = self.nodes[0].disk.is_some();
        let mut node = self.new_node(id, &ids, on_disk);
        node.catching_up = true;
        if self.trace {
            println!("{id} joins");
        }
        self.nodes.push(node);
        self.joins += 1;
    }

    /// Replica `n` loses its state and comes back empty under its id, at
    /// any point (its writes no peer holds yet are at risk); restoring
    /// takes a second, longer than the clock skew bound (see the limits in
    /// `multi/mod.rs`).
    fn wipe(&mut self, n: usize) {
        let id = self.nodes[n].id;
        if self.trace {
            println!("{id} is wiped");
        }
        for acked in &mut self.acked {
            if acked.version.replica != id || acked.at_risk {
                continue;
            }
            let held = self.nodes.iter().filter(|node| node.id != id).any(|node| {
                node.db
                    .multi_active()
                    .item_version(TABLE, &item! { "pk" => acked.key.as_str() })
                    .unwrap()
                    .is_some_and(|stored| stored.version >= acked.version)
            });
            acked.at_risk = !held;
        }
        self.advance(1_000);
        let ids: Vec<ReplicaId> = self.nodes.iter().map(|n| n.id).collect();
        let on_disk = self.nodes[n].disk.is_some();
        let mut node = self.new_node(id, &ids, on_disk);
        node.catching_up = true;
        self.nodes[n] = node;
        self.wipes += 1;
    }

    fn advance(&mut self, millis: u64) {
        self.now_millis += millis;
        for node in &self.nodes {
            node.clock
                .set(UNIX_EPOCH + Duration::from_millis(self.now_millis + node.skew_millis));
        }
    }

    fn write(&mut self, n: usize) {
        let key = format!("k{}", self.rng.below(KEYS));
        if self.nodes[n].catching_up {
            let stats = self.nodes[n].db.multi_active().stats();
            if stats.synced_with.len() < self.nodes[n].peers.len() {
                return;
            }
            self.nodes[n].catching_up = false;
        }
        let db = self.nodes[n].db.clone();
        let value = self.rng.below(1000);
        let kind = self.rng.below(5);
        let result = match kind {
            0 => db
                .put_item(TABLE)
                .item(item! { "pk" => key.as_str(), "v" => value })
                .send()
                .map(|_| ()),
            1 => db
                .update_item(TABLE)
                .key(item! { "pk" => key.as_str() })
                .update_expression("ADD n :one SET v = :v")
                .value(":one", 1)
                .value(":v", value)
                .send()
                .map(|_| ()),
            2 => db
                .delete_item(TABLE)
                .key(item! { "pk" => key.as_str() })
                .send()
                .map(|_| ()),
            3 => db
                .put_item(TABLE)
                .item(item! { "pk" => key.as_str(), "v" => value, "fresh" => true })
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .map(|_| ()),
            _ => db
                .update_item(TABLE)
                .key(item! { "pk" => key.as_str() })
                .update_expression("SET v = :v")
                .condition_expression("attribute_exists(pk) AND v < :limit")
                .value(":v", value)
                .value(":limit", 500)
                .send()
                .map(|_| ()),
        };
        match result {
            Ok(()) => {}
            Err(KvError::ConditionalCheckFailed { .. }) => return,
            Err(other) => panic!("write failed: {other}"),
        }
        let item = db
            .get_item(TABLE)
            .key(item! { "pk" => key.as_str() })
            .send()
            .unwrap()
            .item;
        let version = db
            .multi_active()
            .item_version(TABLE, &item! { "pk" => key.as_str() })
            .unwrap();
        match version {
            Some(ItemVersion { version, .. }) => {
                if self.trace {
                    println!(
                        "{} write#{kind} {key} at {version:?}: {item:?}",
                        self.nodes[n].id
                    );
                }
                self.acked.push(Acked {
                    key,
                    version,
                    item,
                    at_risk: false,
                });
            }
            // A delete of an absent item changes nothing and has no version.
            None => assert!(item.is_none(), "an item without a version"),
        }
    }

    fn crash_restart(&mut self, n: usize) {
        let seed = self.rng.next();
        let node = &mut self.nodes[n];
        let Some(disk) = &node.disk else { return };
        if self.trace {
            println!("{} crashes", node.id);
        }
        disk.crash(seed);
        self.crashes += 1;
        let db = open(Some(disk), &node.clock);
        let multi = db.multi_active();
        multi.connect(self.network.clone());
        multi.inject_bug(self.bug);
        assert_eq!(multi.replicated_tables(), vec![TABLE.to_owned()]);
        node.db = db;
    }

    fn run(&mut self) {
        for op in 0..OPS_PER_SEED {
            if self.late.is_some_and(|(_, at)| at == op) {
                self.join();
            }
            if self.wipe_from == Some(op) {
                let n = self.rng.below(self.nodes.len() as u64) as usize;
                self.wipe(n);
                self.wipe_from = None;
            }
            let n = self.rng.below(self.nodes.len() as u64) as usize;
            match self.rng.below(100) {
                0..=44 => self.write(n),
                45..=79 => {
                    self.nodes[n].db.multi_active().step().unwrap();
                }
                80..=87 => self.network.tick(),
                88..=91 => {
                    let a = self.nodes[n].id;
                    let b = self.nodes[n].peers[0];
                    self.network.partition(a, b);
                }
                92..=94 => self.network.heal(),
                95..=96 => self.crash_restart(n),
                _ => {
                    let millis = self.rng.below(4);
                    self.advance(millis);
                }
            }
            if self.rng.chance(30) {
                self.advance(1);
            }
        }
    }

    /// Removes every fault and steps every replica until all changes are
    /// acknowledged everywhere (or gives up).
    fn heal(&mut self) -> Result<(), String> {
        self.network.heal();
        self.network.set_faults(NetworkFaults::default());
        for round in 0..400 {
            self.advance(50);
            for node in &self.nodes {
                node.db.multi_active().step().map_err(|e| e.to_string())?;
            }
            self.network.tick();
            let quiet = self.network.in_flight() == 0
                && self.nodes.iter().all(|n| {
                    let stats = n.db.multi_active().stats();
                    stats.outbox_entries == 0
                        && stats.copying_from.is_empty()
                        && stats.peers_behind_retention.is_empty()
                });
            if quiet && round > nimbus::replication::multi::HEARTBEAT_EVERY_STEPS as usize + 2 {
                return Ok(());
            }
        }
        let stats: Vec<_> = self
            .nodes
            .iter()
            .map(|n| n.db.multi_active().stats())
            .collect();
        Err(format!(
            "replicas did not quiesce after the heal phase: {} messages in flight, {stats:?}",
            self.network.in_flight()
        ))
    }

    fn table_of(&self, node: &Node) -> BTreeMap<String, Item> {
        node.db
            .scan(TABLE)
            .items()
            .map(|item| {
                let item = item.unwrap();
                let key = match item.get("pk") {
                    Some(AttributeValue::S(s)) => s.clone(),
                    other => panic!("bad key {other:?}"),
                };
                (key, item)
            })
            .collect()
    }

    fn check(&self) -> Result<(), String> {
        let tables: Vec<_> = self.nodes.iter().map(|n| self.table_of(n)).collect();
        for (node, table) in self.nodes.iter().zip(&tables).skip(1) {
            if *table != tables[0] {
                return Err(format!(
                    "{} diverged from {}:\n{table:?}\nvs\n{:?}",
                    node.id, self.nodes[0].id, tables[0]
                ));
            }
        }
        // Per key: the last writer among the writes some replica held, and
        // the writes at risk after it (any of them may have survived).
        let mut expected: BTreeMap<&str, &Acked> = BTreeMap::new();
        for acked in self.acked.iter().filter(|a| !a.at_risk) {
            let entry = expected.entry(&acked.key).or_insert(acked);
            if acked.version > entry.version {
                *entry = acked;
            }
        }
        let keys: std::collections::BTreeSet<&str> =
            self.acked.iter().map(|a| a.key.as_str()).collect();
        for key in keys {
            let got = tables[0].get(key);
            let winner = expected.get(key);
            let mut allowed: Vec<&Acked> = winner.into_iter().copied().collect();
            allowed.extend(self.acked.iter().filter(|a| {
                a.at_risk && a.key == key && winner.is_none_or(|w| a.version > w.version)
            }));
            let stored = self.nodes[0]
                .db
                .multi_active()
                .item_version(TABLE, &item! { "pk" => key })
                .unwrap();
            let ok = match stored {
                Some(stored) => allowed
                    .iter()
                    .any(|a| a.version == stored.version && a.item.as_ref() == got),
                // A collected tombstone, or no surviving write at all.
                // (A delete after the last writer held, collected.)
                None => {
                    got.is_none()
                        && winner.is_none_or(|w| {
                            w.item.is_none()
                                || allowed.iter().any(|a| a.at_risk && a.item.is_none())
                        })
                }
            };
            if !ok {
                return Err(format!(
                    "{key}: the last writer {:?} left {:?} (at risk after it: {:?}), replicas hold {got:?} at {stored:?}",
                    winner.map(|w| w.version),
                    winner.map(|w| &w.item),
                    allowed
                        .iter()
                        .filter(|a| a.at_risk)
                        .map(|a| (a.version, &a.item))
                        .collect::<Vec<_>>()
                ));
            }
        }
        Ok(())
    }
}

fn run_seed(seed: u64, bug: Option<InjectedBug>, trace: bool) -> Result<(), String> {
    run_seed_counting(seed, bug, trace, &mut Totals::default())
}

fn run_seed_counting(
    seed: u64,
    bug: Option<InjectedBug>,
    trace: bool,
    totals: &mut Totals,
) -> Result<(), String> {
    let mut sim = Sim::new(seed, bug, trace);
    sim.run();
    let network = sim.network.stats();
    sim.heal()?;
    if trace {
        for node in &sim.nodes {
            println!("{} {:?}", node.id, node.db.multi_active().stats());
            for k in 0..KEYS {
                let key = format!("k{k}");
                println!(
                    "  {key}: {:?}",
                    node.db
                        .multi_active()
                        .item_version(TABLE, &item! { "pk" => key.as_str() })
                        .unwrap()
                );
            }
        }
    }
    sim.check()?;
    totals.acked_writes += sim.acked.len() as u64;
    totals.crashes += sim.crashes;
    totals.joins += sim.joins;
    totals.wipes += sim.wipes;
    totals.at_risk += sim.acked.iter().filter(|a| a.at_risk).count() as u64;
    totals.dropped += network.dropped;
    totals.duplicated += network.duplicated;
    for node in &sim.nodes {
        let stats = node.db.multi_active().stats();
        let table = node.db.multi_active().table_stats(TABLE);
        totals.conflicts += table.conflicts;
        totals.tombstones_collected += table.tombstones_collected;
        totals.rejected_clock_skew += stats.rejected_clock_skew;
        totals.copies_finished += stats.copies_finished;
        totals.peer_rebirths += stats.peer_rebirths;
    }
    Ok(())
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn replicas_converge_to_the_last_writer_under_faults() {
    if let Some(seed) = env_u64("NIMBUS_SEED") {
        run_seed(seed, None, true).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        return;
    }
    let seeds = env_u64("NIMBUS_SIM_SEEDS").unwrap_or(1_000);
    let mut totals = Totals::default();
    for seed in 0..seeds {
        if let Err(error) = run_seed_counting(seed, None, false, &mut totals) {
            panic!("seed {seed} failed (rerun with NIMBUS_SEED={seed}): {error}");
        }
    }
    println!("{seeds} seeds: {totals:?}");
    // The runs must have met every fault they claim to survive (counters
    // reset at a crash, so these are lower bounds).
    if seeds >= 100 {
        assert!(totals.crashes > 0 && totals.dropped > 0 && totals.duplicated > 0);
        assert!(totals.conflicts > 0 && totals.rejected_clock_skew > 0);
        assert!(totals.tombstones_collected > 0);
        assert!(totals.joins > 0 && totals.wipes > 0 && totals.copies_finished > 0);
        assert!(totals.peer_rebirths > 0 && totals.at_risk > 0);
    }
}

#[test]
fn the_simulation_catches_a_missing_replica_tie_break() {
    let caught = (0..200)
        .find(|&seed| run_seed(seed, Some(InjectedBug::IgnoreReplicaTieBreak), false).is_err());
    println!("injected bug caught by seed {caught:?}");
    assert!(caught.is_some(), "no seed caught the injected bug");
}

#[test]
fn the_simulation_catches_tombstones_collected_too_early() {
    let caught = (0..200)
        .find(|&seed| run_seed(seed, Some(InjectedBug::CollectTombstonesEagerly), false).is_err());
    println!("injected bug caught by seed {caught:?}");
    assert!(caught.is_some(), "no seed caught the injected bug");
}
