//! The three engines behind one interface, each configured with the same
//! memory budget and its own idiomatic calls.

use std::path::Path;

use crate::Result;

/// The memory budget of every engine: write buffer plus cache.
pub const MEMORY_BUDGET_BYTES: usize = 64 << 20;
/// The write buffer (memtable) of the LSM engines; the rest of the budget
/// is their block cache. redb has no separate write buffer and gets the
/// whole budget as its cache.
pub const MEMTABLE_BYTES: usize = 16 << 20;
/// The LSM engines' block cache.
pub const CACHE_BYTES: usize = MEMORY_BUDGET_BYTES - MEMTABLE_BYTES;

/// Which engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// nimbus's `storage::Engine`.
    Nimbus,
    /// fjall 3.
    Fjall,
    /// redb 4.
    Redb,
}

impl Kind {
    /// The column name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Nimbus => "nimbus",
            Kind::Fjall => "fjall",
            Kind::Redb => "redb",
        }
    }
}

/// One engine, open on one directory.
pub trait Store: Send + Sync {
    /// Commits `pairs` atomically as one batch/transaction; with `sync`,
    /// durable (fsync) before returning, otherwise not fsynced.
    fn commit(&self, pairs: &[(&[u8], &[u8])], sync: bool) -> Result<()>;
    /// Makes every commit so far durable.
    fn sync(&self) -> Result<()>;
    /// Flushes memtables and compacts as far as the engine lets a user ask.
    fn settle(&self) -> Result<()>;
    /// A reader for point reads and scans.
    fn reader(&self) -> Result<Box<dyn Reader + '_>>;
    /// A line about the engine's shape, for the log.
    fn describe(&self) -> String;
    /// Closes the engine.
    fn close(self: Box<Self>) -> Result<()>;
}

/// Point reads and scans.
pub trait Reader {
    /// The length of the value of `key`, if present.
    fn get(&mut self, key: &[u8]) -> Result<Option<usize>>;
    /// Reads up to `n` pairs from `start` on; returns the bytes read.
    fn scan(&mut self, start: &[u8], n: usize) -> Result<usize>;
}

/// Opens `kind` in `dir` (which must exist and be empty, or hold a
/// database of that kind). `mmap` only matters to nimbus.
pub fn open(kind: Kind, dir: &Path, mmap: bool) -> Result<Box<dyn Store>> {
    Ok(match kind {
        Kind::Nimbus => Box::new(NimbusStore::open(dir, mmap)?),
        Kind::Fjall => Box::new(FjallStore::open(dir)?),
        Kind::Redb => Box::new(RedbStore::open(dir)?),
    })
}

// ---------------------------------------------------------------- nimbus

use nimbus::storage::{Direction, Durability, Engine, EngineOptions, WriteBatch};

/// nimbus: `memtable_bytes_max` 16 MiB + `block_cache_bytes` 48 MiB;
/// every other option at its default.
pub struct NimbusStore {
    engine: Engine,
}

impl NimbusStore {
    fn open(dir: &Path, mmap: bool) -> Result<Self> {
        let options = EngineOptions {
            durability: Durability::Buffered,
            memtable_bytes_max: MEMTABLE_BYTES,
            block_cache_bytes: CACHE_BYTES,
            mmap,
            ..EngineOptions::default()
        };
        Ok(Self {
            engine: Engine::open(dir, options)?,
        })
    }
}

impl Store for NimbusStore {
    fn commit(&self, pairs: &[(&[u8], &[u8])], sync: bool) -> Result<()> {
        let mut batch = WriteBatch::new();
        for (k, v) in pairs {
            batch.put(k, v);
        }
        let durability = if sync {
            Durability::Sync
        } else {
            Durability::Buffered
        };
        self.engine.write_with(batch, durability)?;
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(self.engine.sync()?)
    }

    fn settle(&self) -> Result<()> {
        Ok(self.engine.compact()?)
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>> {
        Ok(Box::new(NimbusReader(&self.engine)))
    }

    fn describe(&self) -> String {
        let s = self.engine.stats();
        let levels: Vec<String> = s
            .levels
            .iter()
            .map(|l| format!("{}f/{}MB", l.files, l.bytes >> 20))
            .collect();
        format!(
            "levels [{}], write amp {:.2}, read amp {:.2}, slowdowns {} ({} ms), stops {}, flushes {}, compactions {} (+{} moves)",
            levels.join(" "),
            s.write_amplification(),
            s.read_amplification(),
            s.write_slowdowns,
            s.write_slowdown_us / 1000,
            s.write_stops,
            s.flushes,
            s.compactions,
            s.trivial_moves,
        )
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(self.engine.close()?)
    }
}

struct NimbusReader<'a>(&'a Engine);

impl Reader for NimbusReader<'_> {
    fn get(&mut self, key: &[u8]) -> Result<Option<usize>> {
        Ok(self.0.get(key)?.map(|v| v.len()))
    }

    fn scan(&mut self, start: &[u8], n: usize) -> Result<usize> {
        let mut bytes = 0;
        for pair in self.0.range(start.., Direction::Forward, None)?.take(n) {
            let (k, v) = pair?;
            bytes += k.len() + v.len();
        }
        Ok(bytes)
    }
}

// ----------------------------------------------------------------- fjall

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

/// fjall: `cache_size` 48 MiB, keyspace `max_memtable_size` 16 MiB; every
/// other option at its default (LZ4 blocks, 2 worker threads here).
/// Unsynced writes are its default (`manual_journal_persist = false`: each
/// write is flushed to the OS, not fsynced); synced commits are a
/// `WriteBatch` with `PersistMode::SyncData`.
pub struct FjallStore {
    db: Database,
    ks: Keyspace,
}

impl FjallStore {
    fn open(dir: &Path) -> Result<Self> {
        let db = Database::builder(dir)
            .cache_size(CACHE_BYTES as u64)
            .open()?;
        let ks = db.keyspace("bench", || {
            KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES as u64)
        })?;
        Ok(Self { db, ks })
    }
}

impl Store for FjallStore {
    fn commit(&self, pairs: &[(&[u8], &[u8])], sync: bool) -> Result<()> {
        if let ([(k, v)], false) = (pairs, sync) {
            self.ks.insert(*k, *v)?;
            return Ok(());
        }
        let mode = if sync {
            PersistMode::SyncData
        } else {
            PersistMode::Buffer
        };
        let mut batch = self.db.batch().durability(Some(mode));
        for (k, v) in pairs {
            batch.insert(&self.ks, *k, *v);
        }
        batch.commit()?;
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(self.db.persist(PersistMode::SyncData)?)
    }

    fn settle(&self) -> Result<()> {
        // Both are public but `#[doc(hidden)]` in fjall 3: the only way
        // to ask for a flush and a full compaction.
        self.ks.rotate_memtable_and_wait()?;
        self.ks.major_compact()?;
        Ok(())
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>> {
        Ok(Box::new(FjallReader(&self.ks)))
    }

    fn describe(&self) -> String {
        format!(
            "tables {}, L0 tables {}, compactions {}",
            self.ks.table_count(),
            self.ks.l0_table_count(),
            self.db.compactions_completed(),
        )
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }
}

struct FjallReader<'a>(&'a Keyspace);

impl Reader for FjallReader<'_> {
    fn get(&mut self, key: &[u8]) -> Result<Option<usize>> {
        Ok(self.0.get(key)?.map(|v| v.len()))
    }

    fn scan(&mut self, start: &[u8], n: usize) -> Result<usize> {
        let mut bytes = 0;
        for guard in self.0.range(start..).take(n) {
            let (k, v) = guard.into_inner()?;
            bytes += k.len() + v.len();
        }
        Ok(bytes)
    }
}

// ------------------------------------------------------------------ redb

use redb::{ReadableDatabase, TableDefinition};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bench");

/// redb: `set_cache_size` 64 MiB (its cache holds reads and dirty pages);
/// unsynced commits are `Durability::None`, synced ones the default
/// `Durability::Immediate`.
pub struct RedbStore {
    db: redb::Database,
}

impl RedbStore {
    fn open(dir: &Path) -> Result<Self> {
        let db = redb::Builder::new()
            .set_cache_size(MEMORY_BUDGET_BYTES)
            .create(dir.join("bench.redb"))?;
        let txn = db.begin_write()?;
        txn.open_table(TABLE)?;
        txn.commit()?;
        Ok(Self { db })
    }
}

impl Store for RedbStore {
    fn commit(&self, pairs: &[(&[u8], &[u8])], sync: bool) -> Result<()> {
        let mut txn = self.db.begin_write()?;
        if !sync {
            txn.set_durability(redb::Durability::None)?;
        }
        {
            let mut table = txn.open_table(TABLE)?;
            for (k, v) in pairs {
                table.insert(*k, *v)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        // An empty `Immediate` commit makes the `None` ones before it durable.
        let txn = self.db.begin_write()?;
        txn.commit()?;
        Ok(())
    }

    fn settle(&self) -> Result<()> {
        // A B-tree: nothing to flush or compact once committed durably.
        Ok(())
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(TABLE)?;
        Ok(Box::new(RedbReader { table }))
    }

    fn describe(&self) -> String {
        String::new()
    }

    fn close(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

/// One read transaction per reader (per measured pass), as an application
/// serving reads from a static dataset would hold one.
struct RedbReader {
    table: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
}

impl Reader for RedbReader {
    fn get(&mut self, key: &[u8]) -> Result<Option<usize>> {
        Ok(self.table.get(key)?.map(|v| v.value().len()))
    }

    fn scan(&mut self, start: &[u8], n: usize) -> Result<usize> {
        let mut bytes = 0;
        for pair in self.table.range::<&[u8]>(start..)?.take(n) {
            let (k, v) = pair?;
            bytes += k.value().len() + v.value().len();
        }
        Ok(bytes)
    }
}
