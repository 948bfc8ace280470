//! The deterministic replication simulator (test-only), after
//! FoundationDB's and TigerBeetle's: one seed fixes everything — fault
//! rates, the order of every message (the in-process network delivers on
//! the test's thread), which disk writes survive a power loss, and the
//! workload. A run drives a primary, a synchronous standby and an
//! asynchronous replica (plus one chained behind it) through writes,
//! message loss/duplication/reordering, partitions, crash-restarts of any
//! node, power loss of primary and standby together, fsync failures and
//! failovers (promote the standby, fence and rejoin the old primary).
//!
//! A record of every acknowledged write is kept; after every step no two
//! nodes are primary in one epoch, and after every failover every
//! acknowledged write is on the new primary (sync replication loses
//! none). At the end a heal phase removes every fault and the replicas
//! must converge to the primary's state.
//!
//! `NIMBUS_SEED=<n>` reruns one seed; `NIMBUS_SIM_SEEDS=<n>` runs n seeds;
//! `NIMBUS_SIM_TRACE=1` prints every step, crash and heal.
//! The injected bug (followers acknowledge `Durable` before they fsync) is
//! switched on per thread by the mutation test, which must see it caught.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::failover::{FailoverCoordinator, Witness};
use super::frame::NodeId;
use super::node::{NodeOptions, ReplicationNode, Role, SyncPolicy};
use super::transport::{Faults, MemoryNetwork, Transport};
use crate::DatabaseOptions;
use crate::storage::fs::FileSystem;
use crate::storage::sim::{SimFileSystem, SimRng};

thread_local! {
    /// The injected bug: followers acknowledge `Durable` before they fsync.
    static ACK_BEFORE_FSYNC: Cell<bool> = const { Cell::new(false) };
}

/// Whether the injected "ack before fsync" bug is on (in this thread).
pub(crate) fn ack_before_fsync() -> bool {
    ACK_BEFORE_FSYNC.with(Cell::get)
}

/// Steps of one run.
const STEPS: usize = 60;

/// The primary, the synchronous standby, an asynchronous replica of the
/// primary, and a replica chained behind that one.
const NODES: NodeId = 4;

/// What a run found wrong.
#[derive(Debug)]
pub(crate) struct Violation {
    seed: u64,
    step: usize,
    what: String,
}

/// What a run did (for the report of the many-seed test).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Report {
    acknowledged: usize,
    failovers: usize,
    crashes: usize,
    snapshots: u64,
    /// Snapshot transfers a restarted replica took up where it stopped.
    resumed: u64,
}

struct Sim {
    seed: u64,
    rng: SimRng,
    net: Arc<MemoryNetwork>,
    disks: Vec<SimFileSystem>,
    nodes: Vec<Option<ReplicationNode>>,
    primary: NodeId,
    standby: NodeId,
    /// Acknowledged writes: key → value.
    acknowledged: BTreeMap<String, String>,
    /// Every (epoch, node) seen as primary.
    primaries: BTreeMap<u64, BTreeSet<NodeId>>,
    next_key: u64,
    report: Report,
    witness: Witness,
}

fn options(id: NodeId) -> NodeOptions {
    let mut options = NodeOptions::new(id);
    options.database = DatabaseOptions::default()
        .background_threads(false)
        .memtable_bytes(64 << 10);
    // A simulated disk keeps whole files in memory: no 64 MiB log
    // preallocation to copy at every crash and checkpoint.
    options.database.engine.log_preallocate_bytes = 0;
    options.sync = Some(SyncPolicy {
        timeout: Duration::from_millis(30),
        ..SyncPolicy::default()
    });
    options.retained_frames = 16;
    options.snapshot_chunk_bytes = 4096;
    options
}

impl Sim {
    fn new(seed: u64) -> Self {
        let mut rng = SimRng::new(seed);
        let faults = Faults {
            drop_per_mille: rng.below(60) as u32,
            duplicate_per_mille: rng.below(60) as u32,
            delay_max_micros: rng.below(3_000),
        };
        Self {
            seed,
            net: MemoryNetwork::new(rng.next_u64(), faults),
            rng,
            disks: (0..NODES).map(|_| SimFileSystem::new()).collect(),
            nodes: (0..NODES).map(|_| None).collect(),
            primary: 0,
            standby: 1,
            acknowledged: BTreeMap::new(),
            primaries: BTreeMap::new(),
            next_key: 0,
            report: Report::default(),
            witness: Witness::new(),
        }
    }

    fn fail(&self, step: usize, what: impl Into<String>) -> Violation {
        Violation {
            seed: self.seed,
            step,
            what: what.into(),
        }
    }

    /// Where node `id` follows from when (re)started as a replica.
    fn source_of(&self, id: NodeId) -> NodeId {
        match id {
            3 => 2,
            _ => self.primary,
        }
    }

    fn open(&mut self, id: NodeId, as_primary: bool) -> Result<(), String> {
        let fs = Arc::new(self.disks[id as usize].session()) as Arc<dyn FileSystem>;
        let transport = Arc::clone(&self.net) as Arc<dyn Transport>;
        let node = if as_primary {
            ReplicationNode::open_primary(fs, Path::new("/db"), transport, options(id))
        } else {
            let source = self.source_of(id);
            ReplicationNode::open_replica(fs, Path::new("/db"), transport, options(id), source)
        }
        .map_err(|e| format!("open node {id}: {e}"))?;
        self.report.resumed += node.stats().snapshots_resumed;
        self.net.set_down(id, false);
        self.nodes[id as usize] = Some(node);
        self.wire();
        Ok(())
    }

    /// Tells the primary and the chain's middle who follows them.
    fn wire(&self) {
        if let Some(primary) = &self.nodes[self.primary as usize] {
            for id in 0..NODES {
                if id == self.primary || id == 3 {
                    continue;
                }
                if id == self.standby {
                    primary.add_standby(id);
                } else {
                    primary.add_replica(id);
                }
            }
        }
        if let Some(middle) = &self.nodes[2]
            && self.primary != 2
        {
            middle.add_replica(3);
        }
    }

    fn node(&self, id: NodeId) -> Option<&ReplicationNode> {
        self.nodes[id as usize].as_ref()
    }

    /// Power loss of node `id`: unsynced writes may vanish.
    fn crash(&mut self, id: NodeId) {
        if std::env::var_os("NIMBUS_SIM_TRACE").is_some() {
            eprintln!(
                "crash {id}: events {:?} files {:?}",
                self.node(id).map(|n| n.events()),
                self.disks[id as usize].list_dir(Path::new("/db"))
            );
        }
        self.net.set_down(id, true);
        let seed = self.rng.next_u64();
        self.disks[id as usize].crash(seed);
        self.nodes[id as usize] = None;
        self.report.crashes += 1;
    }

    fn write(&mut self) {
        let Some(primary) = self.node(self.primary) else {
            return;
        };
        let Ok(db) = primary.database() else { return };
        let key = format!("w{:06}", self.next_key);
        let value = format!("v{}", self.rng.next_u64());
        self.next_key += 1;
        if db.engine().put(key.as_bytes(), value.as_bytes()).is_ok() {
            self.acknowledged.insert(key, value);
        }
    }

    fn deliver(&mut self, steps: usize) {
        for _ in 0..steps {
            if !self.net.step_next() {
                break;
            }
        }
        self.net.advance(self.rng.below(2_000));
        for node in self.nodes.iter().flatten() {
            node.tick();
        }
    }

    /// Promotes the standby (the primary is gone), fences the old one and
    /// brings it back as a replica; then checks no acknowledged write
    /// was lost.
    fn failover(&mut self, step: usize) -> Result<(), Violation> {
        let old = self.primary;
        self.crash(old);
        if self.node(self.standby).is_none() {
            self.open(self.standby, false)
                .map_err(|e| self.fail(step, e))?;
        }
        let standby = self.standby;
        let Some(candidate) = self.node(standby).cloned() else {
            return Ok(());
        };
        // The third voter hands out each epoch once, and only to a
        // standby that has seen the latest: without it two promotions
        // could pick the same epoch.
        let granted = self.witness.request_promotion(
            standby,
            old,
            candidate.epoch(),
            candidate.last_sequence(),
        );
        let Some(epoch) = granted.filter(|_| candidate.role() != Role::Primary) else {
            // Refused: the old primary restarts instead.
            return self.open(old, true).map_err(|e| self.fail(step, e));
        };
        candidate
            .promote_to(Some(epoch))
            .map_err(|e| self.fail(step, format!("promote: {e}")))?;
        self.report.failovers += 1;
        self.primary = standby;
        self.standby = old;
        self.check_acknowledged(step, standby)?;
        for id in [2, 3] {
            if let Some(node) = self.node(id)
                && id != self.primary
            {
                let _ = node.set_source(self.source_of(id));
            }
        }
        self.open(old, false).map_err(|e| self.fail(step, e))?;
        Ok(())
    }

    /// Every acknowledged write is readable on node `id`.
    fn check_acknowledged(&self, step: usize, id: NodeId) -> Result<(), Violation> {
        let Some(node) = self.node(id) else {
            return Ok(());
        };
        let db = node
            .database()
            .map_err(|e| self.fail(step, format!("database: {e}")))?;
        for (key, value) in &self.acknowledged {
            let got = db
                .engine()
                .get(key.as_bytes())
                .map_err(|e| self.fail(step, format!("read {key} on {id}: {e}")))?;
            if got.as_deref() != Some(value.as_bytes()) {
                return Err(self.fail(
                    step,
                    format!("acknowledged write {key} lost on node {id} (got {got:?})"),
                ));
            }
        }
        Ok(())
    }

    /// No two nodes are primary in one epoch.
    fn check_primaries(&mut self, step: usize) -> Result<(), Violation> {
        for node in self.nodes.iter().flatten() {
            if node.role() == Role::Primary {
                self.primaries
                    .entry(node.epoch())
                    .or_default()
                    .insert(node.id());
            }
        }
        match self.primaries.iter().find(|(_, ids)| ids.len() > 1) {
            Some((epoch, ids)) => {
                Err(self.fail(step, format!("epoch {epoch} has primaries {ids:?}")))
            }
            None => Ok(()),
        }
    }

    /// Whether the primary accepts a write (a probe outside the workload's keys).
    fn primary_works(&self) -> bool {
        self.node(self.primary).is_some_and(|p| {
            p.database()
                .is_ok_and(|db| db.engine().put(b"probe", b"").is_ok())
        })
    }

    /// Delivers and ticks until the group is quiet.
    fn settle(&mut self) {
        for _ in 0..20 {
            self.deliver(10_000);
            self.net.advance(10_000);
        }
    }

    fn step(&mut self, step: usize) -> Result<(), Violation> {
        match self.rng.below(100) {
            0..=44 => self.write(),
            45..=69 => {
                let steps = self.rng.below_usize(200);
                self.deliver(steps);
            }
            70..=76 => {
                let (a, b) = (self.rng.below(NODES), self.rng.below(NODES));
                if a != b {
                    let cut = self.rng.coin();
                    self.net.partition(a, b, cut);
                }
            }
            77..=80 => self.net.heal(),
            81..=86 => {
                // Crash-restart a replica (not the primary: that is a failover).
                let id = 2 + self.rng.below(NODES - 2);
                if id != self.primary {
                    self.crash(id);
                    self.open(id, false).map_err(|e| self.fail(step, e))?;
                }
            }
            87..=89 => {
                // An fsync of the asynchronous replica fails; it stops
                // applying until it is restarted.
                if self.primary != 2 {
                    self.disks[2].fail_nth_data_sync(1 + self.rng.below(3));
                }
            }
            90..=92 => {
                // Power loss of primary and standby together: with
                // durable acknowledgements nothing acknowledged is lost.
                let standby = self.standby;
                self.crash(standby);
                self.open(standby, false).map_err(|e| self.fail(step, e))?;
                self.failover(step)?;
            }
            _ => self.failover(step)?,
        }
        // A stopped primary (a timed-out commit) is replaced.
        if !self.primary_works() {
            self.failover(step)?;
        }
        self.check_primaries(step)
    }

    fn run(mut self) -> Result<Report, Violation> {
        for id in 0..NODES {
            self.open(id, id == 0).map_err(|e| self.fail(0, e))?;
        }
        let trace = std::env::var_os("NIMBUS_SIM_TRACE").is_some();
        for step in 1..=STEPS {
            let started = std::time::Instant::now();
            self.step(step)?;
            if trace {
                eprintln!(
                    "step {step} took {:?} primary {} net {:?} acked {}",
                    started.elapsed(),
                    self.primary,
                    self.net,
                    self.acknowledged.len()
                );
            }
        }
        self.heal(STEPS + 1)
    }

    /// Removes every fault, restarts every node that stopped, lets the
    /// group settle, then checks convergence.
    fn heal(mut self, step: usize) -> Result<Report, Violation> {
        self.net.heal();
        self.net.set_faults(Faults::NONE);
        for disk in &self.disks {
            disk.clear_faults();
        }
        for id in 0..NODES {
            let stopped = self.node(id).is_none_or(|n| {
                !n.database()
                    .is_ok_and(|db| db.engine().last_sequence().is_ok())
                    || n.events()
                        .iter()
                        .any(|e| matches!(e, super::node::ReplicationEvent::ApplyFailed { .. }))
            });
            if stopped && id != self.primary {
                self.crash(id);
                self.open(id, false).map_err(|e| self.fail(step, e))?;
            }
        }
        let started = std::time::Instant::now();
        self.settle();
        if !self.primary_works() {
            // A primary stopped by a timed-out commit restarts.
            let primary = self.primary;
            self.crash(primary);
            self.open(primary, true).map_err(|e| self.fail(step, e))?;
            self.settle();
        }
        // Liveness: with every fault gone a write is acknowledged.
        let before = self.acknowledged.len();
        self.write();
        if self.acknowledged.len() == before {
            return Err(self.fail(step, "no write is acknowledged after the heal"));
        }
        self.settle();
        if std::env::var_os("NIMBUS_SIM_TRACE").is_some() {
            eprintln!("heal took {:?}", started.elapsed());
        }
        self.check_acknowledged(step, self.primary)?;
        let Some(primary) = self.node(self.primary) else {
            return Err(self.fail(step, "no primary"));
        };
        let expected = contents(primary);
        for id in 0..NODES {
            let Some(node) = self.node(id) else { continue };
            if id == self.primary {
                continue;
            }
            if node.last_sequence() != primary.last_sequence() || contents(node) != expected {
                if std::env::var_os("NIMBUS_SIM_TRACE").is_some() {
                    self.trace_difference(id, &expected);
                }
                return Err(self.fail(
                    step,
                    format!(
                        "node {id} did not converge: at {} of {} ({:?})",
                        node.last_sequence(),
                        primary.last_sequence(),
                        node.events().last()
                    ),
                ));
            }
        }
        self.report.acknowledged = self.acknowledged.len();
        self.report.snapshots = self
            .nodes
            .iter()
            .flatten()
            .map(|n| n.stats().snapshots_installed)
            .sum();
        Ok(self.report)
    }
}

impl Sim {
    /// Prints how node `id` differs from the primary's `expected` rows, and
    /// both nodes' epoch records and events (for `NIMBUS_SIM_TRACE`).
    fn trace_difference(&self, id: NodeId, expected: &[(Vec<u8>, Vec<u8>)]) {
        let Some(node) = self.node(id) else { return };
        let actual = contents(node);
        let show = |rows: &[(Vec<u8>, Vec<u8>)]| -> Vec<String> {
            rows.iter()
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        String::from_utf8_lossy(k),
                        String::from_utf8_lossy(v)
                    )
                })
                .collect()
        };
        let (expected, actual) = (show(expected), show(&actual));
        let missing: Vec<_> = expected.iter().filter(|r| !actual.contains(r)).collect();
        let extra: Vec<_> = actual.iter().filter(|r| !expected.contains(r)).collect();
        eprintln!("node {id}: missing {missing:?} extra {extra:?}");
        for n in [id, self.primary] {
            eprintln!(
                "node {n}: epochs {:?} events {:?}",
                super::epoch::EpochRecord::load(&self.disks[n as usize], Path::new("/db")),
                self.node(n).map(|x| x.events())
            );
        }
    }
}

/// The simulated workload's keys and values on a node.
fn contents(node: &ReplicationNode) -> Vec<(Vec<u8>, Vec<u8>)> {
    let Ok(db) = node.database() else {
        return Vec::new();
    };
    let Ok(rows) = db
        .engine()
        .prefix(b"w", crate::storage::Direction::Forward, None)
    else {
        return Vec::new();
    };
    rows.filter_map(Result::ok)
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

/// Runs one seed.
pub(crate) fn run(seed: u64) -> Result<Report, Violation> {
    Sim::new(seed).run()
}

/// The seeds to run: `NIMBUS_SEED` alone, or `NIMBUS_SIM_SEEDS` (default
/// `default_count`) from 0.
fn seeds(default_count: u64) -> Vec<u64> {
    if let Some(seed) = std::env::var("NIMBUS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return vec![seed];
    }
    let count = std::env::var("NIMBUS_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_count);
    (0..count).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seeds in the default test run.
    const DEFAULT_SEEDS: u64 = 1_000;

    /// Seeds the long run failed on, run every time. 8089: a replica's
    /// apply wrote an old epoch's frame and then failed its fsync; the
    /// replica went on to adopt the new primary's history, the frame
    /// survived its crash, and it then vouched for it (a lost write).
    /// 1410: a replica re-offered a snapshot it had taken before its own
    /// history was replaced, labelled with the new history; the follower
    /// installed the old lineage's write at 70 and passed every later
    /// divergence check (a lost write).
    const REGRESSION_SEEDS: [u64; 2] = [8089, 1410];

    #[test]
    fn seeds_the_long_run_failed_on_now_pass() {
        for seed in REGRESSION_SEEDS {
            if let Err(violation) = run(seed) {
                panic!("seed {seed} failed again: {violation:?}");
            }
        }
    }

    #[test]
    fn replication_survives_every_seeded_fault_schedule() {
        let mut total = Report::default();
        for seed in seeds(DEFAULT_SEEDS) {
            match run(seed) {
                Ok(report) => {
                    total.acknowledged += report.acknowledged;
                    total.failovers += report.failovers;
                    total.crashes += report.crashes;
                    total.snapshots += report.snapshots;
                    total.resumed += report.resumed;
                }
                Err(v) => panic!(
                    "seed {} failed at step {}: {} (rerun: NIMBUS_SEED={} cargo test --lib replication::sim)",
                    v.seed, v.step, v.what, v.seed
                ),
            }
        }
        assert!(total.acknowledged > 0 && total.failovers > 0, "{total:?}");
        println!("replication simulation: {total:?}");
    }

    #[test]
    fn the_simulator_catches_acknowledging_before_the_fsync() {
        ACK_BEFORE_FSYNC.with(|bug| bug.set(true));
        let caught = (0..200).find_map(|seed| run(seed).err());
        ACK_BEFORE_FSYNC.with(|bug| bug.set(false));
        let violation = caught.expect("the injected bug went unnoticed in 200 seeds");
        assert!(violation.what.contains("lost"), "{violation:?}");
    }
}
