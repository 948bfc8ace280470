//! The simulator's directory tree, with durable and pending entries.
//!
//! Entries are keyed by (directory id, name) rather than by path, as a real
//! file system keys them by directory inode: an operation recorded in a
//! directory stays with that directory when the directory is renamed, and
//! `sync_dir` makes durable exactly the operations that touched it.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::{Component, Path};

use super::rng::SimRng;

/// The identity of a directory (its "inode number").
pub(super) type DirId = u64;

/// The root directory, which always exists.
pub(super) const ROOT: DirId = 0;

/// What a name refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Node {
    /// A file, by inode number.
    File(u64),
    /// A directory.
    Dir(DirId),
}

/// A name within a directory.
pub(super) type EntryKey = (DirId, String);

type Entries = BTreeMap<EntryKey, Node>;

/// A namespace change not yet made durable by `sync_dir`.
#[derive(Debug, Clone)]
enum DirOp {
    Insert { at: EntryKey, node: Node },
    Remove { at: EntryKey },
    Rename { from: EntryKey, to: EntryKey },
}

impl DirOp {
    /// Whether `sync_dir` of `dir` makes this operation durable.
    fn touches(&self, dir: DirId) -> bool {
        match self {
            Self::Insert { at, .. } | Self::Remove { at } => at.0 == dir,
            Self::Rename { from, to } => from.0 == dir || to.0 == dir,
        }
    }

    /// Applies the operation to an image; an operation whose source vanished
    /// (because an earlier operation was lost in a crash) does nothing.
    fn apply(&self, entries: &mut Entries) {
        match self {
            Self::Insert { at, node } => {
                entries.insert(at.clone(), *node);
            }
            Self::Remove { at } => {
                entries.remove(at);
            }
            Self::Rename { from, to } => {
                if let Some(node) = entries.remove(from) {
                    entries.insert(to.clone(), node);
                }
            }
        }
    }
}

/// The directory tree as operations see it and as a crash would leave it.
#[derive(Debug, Default)]
pub(super) struct Namespace {
    volatile: Entries,
    /// May hold entries of directories that are not durably reachable yet;
    /// a crash drops whatever the root cannot reach.
    durable: Entries,
    pending: Vec<DirOp>,
    last_dir: DirId,
}

fn invalid(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{}: {why}", path.display()),
    )
}

pub(super) fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file or directory", path.display()),
    )
}

/// The names along `path`, from the root.
fn names(path: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for component in path.components() {
        match component {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            Component::ParentDir => return Err(invalid(path, "`..` is not supported")),
            Component::Normal(name) => match name.to_str() {
                Some(name) => out.push(name.to_owned()),
                None => return Err(invalid(path, "names must be UTF-8")),
            },
        }
    }
    Ok(out)
}

impl Namespace {
    /// What `path` names now, if anything.
    pub(super) fn get(&self, path: &Path) -> io::Result<Option<Node>> {
        let mut node = Node::Dir(ROOT);
        for name in names(path)? {
            let Node::Dir(dir) = node else {
                return Ok(None);
            };
            match self.volatile.get(&(dir, name)) {
                Some(next) => node = *next,
                None => return Ok(None),
            }
        }
        Ok(Some(node))
    }

    /// The directory holding `path` and the final name; the directory must exist.
    pub(super) fn parent_and_name(&self, path: &Path) -> io::Result<EntryKey> {
        let mut all = names(path)?;
        let name = all
            .pop()
            .ok_or_else(|| invalid(path, "the root has no name"))?;
        let mut dir = ROOT;
        for part in all {
            match self.volatile.get(&(dir, part)) {
                Some(Node::Dir(next)) => dir = *next,
                _ => return Err(not_found(path.parent().unwrap_or(path))),
            }
        }
        Ok((dir, name))
    }

    /// The directory `path` names, which must exist.
    pub(super) fn dir(&self, path: &Path) -> io::Result<DirId> {
        match self.get(path)? {
            Some(Node::Dir(dir)) => Ok(dir),
            Some(Node::File(_)) => Err(invalid(path, "not a directory")),
            None => Err(not_found(path)),
        }
    }

    /// Records a new entry.
    pub(super) fn insert(&mut self, at: EntryKey, node: Node) {
        self.record(DirOp::Insert { at, node });
    }

    /// Records a new, empty directory at `at` and returns its id.
    pub(super) fn insert_dir(&mut self, at: EntryKey) -> DirId {
        self.last_dir += 1;
        let dir = self.last_dir;
        self.insert(at, Node::Dir(dir));
        dir
    }

    /// Records the removal of an entry.
    pub(super) fn remove(&mut self, at: EntryKey) {
        self.record(DirOp::Remove { at });
    }

    /// Records a rename, replacing the target.
    pub(super) fn rename(&mut self, from: EntryKey, to: EntryKey) {
        if from != to {
            self.record(DirOp::Rename { from, to });
        }
    }

    /// The node an entry refers to now.
    pub(super) fn entry(&self, at: &EntryKey) -> Option<Node> {
        self.volatile.get(at).copied()
    }

    /// The sorted names in directory `dir`.
    pub(super) fn list(&self, dir: DirId) -> Vec<String> {
        self.volatile
            .range((dir, String::new())..)
            .take_while(|((parent, _), _)| *parent == dir)
            .map(|((_, name), _)| name.clone())
            .collect()
    }

    fn record(&mut self, op: DirOp) {
        op.apply(&mut self.volatile);
        self.pending.push(op);
    }

    /// Makes every pending operation that touched `dir` durable.
    pub(super) fn sync(&mut self, dir: DirId) {
        let (now, later): (Vec<DirOp>, Vec<DirOp>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|op| op.touches(dir));
        for op in &now {
            op.apply(&mut self.durable);
        }
        self.pending = later;
    }

    /// Simulates power loss: each pending operation is independently kept
    /// or lost. Returns the inodes still reachable from the root.
    pub(super) fn crash(&mut self, rng: &mut SimRng) -> HashSet<u64> {
        let mut entries = std::mem::take(&mut self.durable);
        for op in std::mem::take(&mut self.pending) {
            if rng.coin() {
                op.apply(&mut entries);
            }
        }
        let (entries, files) = reachable(entries);
        self.volatile = entries.clone();
        self.durable = entries;
        files
    }
}

/// The entries reachable from the root, and the files among them.
fn reachable(entries: Entries) -> (Entries, HashSet<u64>) {
    let mut dirs: HashSet<DirId> = HashSet::from([ROOT]);
    let mut queue = vec![ROOT];
    while let Some(dir) = queue.pop() {
        for ((parent, _), node) in entries.range((dir, String::new())..) {
            if *parent != dir {
                break;
            }
            if let Node::Dir(child) = node {
                // A directory reachable twice (impossible without directory
                // hard links) is visited once.
                if dirs.insert(*child) {
                    queue.push(*child);
                }
            }
        }
    }
    let kept: Entries = entries
        .into_iter()
        .filter(|((parent, _), _)| dirs.contains(parent))
        .collect();
    let files = kept
        .values()
        .filter_map(|node| match node {
            Node::File(ino) => Some(*ino),
            Node::Dir(_) => None,
        })
        .collect();
    (kept, files)
}
