//! The block index of an open segment, laid out for point reads.
//!
//! A point read binary-searches the index for the first block whose last
//! entry is at or after the target. Searching a `Vec` of entries with their
//! keys in separate allocations costs a cache miss per probe once the index
//! outgrows the CPU caches (a 64 MiB segment of 4 KiB blocks has 16,000
//! entries), and the eight-byte key prefix that the entries carry is mostly
//! the keyspace id every key of a table shares, so ties send most probes to
//! the key bytes. So the index keeps, beside the entries:
//!
//! - `shared_len`: the length of the prefix common to every index key and
//!   to the segment's smallest and largest keys (a table's keyspace id and
//!   more). Every key between the smallest and the largest starts with it.
//! - `suffix_prefixes`: each entry's eight key bytes *after* that shared
//!   prefix, in one dense array (8 bytes an entry) that the search walks
//!   first; it stays in cache.
//! - `sampled`: every `FANOUT`-th of those, so the search reads one small
//!   array that stays in cache and then one cache line of the dense one
//!   (a two-level B+-tree in effect).
//! - `second_prefixes`: each entry's next eight key bytes, likewise. The
//!   entries whose suffix prefixes tie with the key's are a partition's
//!   blocks (its rows share the token after the keyspace id), dozens for a
//!   large partition; these narrow them to the few whose partition and
//!   sort key bytes also begin alike, reading a few dense cache lines
//!   instead of a full key per probe.
//! - the entries' keys in one contiguous arena with their end offsets, so
//!   the few full-key probes among entries whose second prefixes tie too
//!   touch neighbouring bytes and no `IndexEntry`.
//!
//! The search answers exactly what a binary search over the entries in
//! internal order answers (a test checks this on random keys); it never
//! reads the file.

use std::cmp::Ordering;

use bytes::Bytes;

use super::footer::BlockHandle;
use crate::storage::types::{SequenceNumber, key_prefix};

/// Suffix prefixes per sample: 8 of 8 bytes fill one cache line.
const FANOUT: usize = 8;

/// One data block as the index describes it.
#[derive(Debug, Clone)]
pub(super) struct IndexEntry {
    /// The user key of the block's last entry.
    pub(super) last_key: Bytes,
    /// The sequence number of the block's last entry.
    pub(super) last_seq: SequenceNumber,
    /// Where the block is.
    pub(super) handle: BlockHandle,
    /// `last_key`'s first eight bytes, so most binary-search probes compare
    /// without following the pointer to the key.
    key_prefix: u64,
}

impl IndexEntry {
    /// The entry for the block ending with `(last_key, last_seq)` at `handle`.
    pub(super) fn new(last_key: Bytes, last_seq: SequenceNumber, handle: BlockHandle) -> Self {
        Self {
            key_prefix: key_prefix(&last_key),
            last_key,
            last_seq,
            handle,
        }
    }

    /// Orders `last_key` against `key`, whose [`key_prefix`] is `prefix`.
    pub(super) fn cmp_key(&self, key: &[u8], prefix: u64) -> Ordering {
        // See `key_prefix` for why differing prefixes decide the order.
        match self.key_prefix.cmp(&prefix) {
            Ordering::Equal => self.last_key.as_ref().cmp(key),
            order => order,
        }
    }
}

/// The block index: entries in internal order plus the point-read search
/// structures described in the module doc.
#[derive(Debug)]
pub(super) struct BlockIndex {
    entries: Vec<IndexEntry>,
    /// Bytes every index key and every key in `[smallest, largest]` share.
    shared_len: usize,
    /// `key_prefix(&entry.last_key[shared_len..])`, entry by entry;
    /// non-decreasing because the entries are in order and share
    /// `shared_len` bytes.
    suffix_prefixes: Vec<u64>,
    /// `suffix_prefixes[i * FANOUT]` for every `i`.
    sampled: Vec<u64>,
    /// `key_prefix(&entry.last_key[shared_len + 8..])`, entry by entry;
    /// non-decreasing within every run of equal `suffix_prefixes` (see
    /// [`BlockIndex::narrow`]).
    second_prefixes: Vec<u64>,
    /// Every entry's key, back to back.
    arena: Bytes,
    /// Where each entry's key ends in `arena` (it starts where the previous
    /// one ends).
    key_ends: Vec<usize>,
}

impl BlockIndex {
    /// Builds the index of `entries` (already checked to be in strictly
    /// increasing internal order) of a segment whose keys lie in
    /// `[smallest, largest]`. Copies the keys into one arena.
    pub(super) fn new(entries: Vec<IndexEntry>, smallest: &[u8], largest: &[u8]) -> Self {
        let mut shared_len = common_prefix_len(smallest, largest);
        let mut arena = Vec::with_capacity(entries.iter().map(|e| e.last_key.len()).sum());
        for entry in &entries {
            shared_len = shared_len.min(common_prefix_len(smallest, &entry.last_key));
            arena.extend_from_slice(&entry.last_key);
        }
        let arena = Bytes::from(arena);
        let mut key_ends = Vec::with_capacity(entries.len());
        let mut start = 0;
        let entries: Vec<IndexEntry> = entries
            .into_iter()
            .map(|entry| {
                let end = start + entry.last_key.len();
                let last_key = arena.slice(start..end);
                key_ends.push(end);
                start = end;
                IndexEntry { last_key, ..entry }
            })
            .collect();
        let suffix_prefixes: Vec<u64> = entries
            .iter()
            .map(|entry| key_prefix(entry.last_key.get(shared_len..).unwrap_or_default()))
            .collect();
        let sampled = suffix_prefixes.iter().step_by(FANOUT).copied().collect();
        let second_prefixes = entries
            .iter()
            .map(|entry| key_prefix(entry.last_key.get(shared_len + 8..).unwrap_or_default()))
            .collect();
        Self {
            entries,
            shared_len,
            suffix_prefixes,
            sampled,
            second_prefixes,
            arena,
            key_ends,
        }
    }

    /// The entries, in internal order.
    pub(super) fn entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    /// The position of the first entry at or after `(key, seq)` in internal
    /// order (`entries().len()` if none). `key` must lie within the
    /// segment's `[smallest, largest]`, as the reader checks first: only such
    /// keys are sure to start with the shared prefix.
    pub(super) fn find(&self, key: &[u8], seq: SequenceNumber) -> usize {
        let Some(suffix) = key.get(self.shared_len..) else {
            // Unreachable for a key in range; the plain search is still right.
            return self.before_count(0, self.entries.len(), key, seq);
        };
        let target = key_prefix(suffix);
        // Entries whose suffix prefix is smaller sort before the key, larger
        // after it (see `key_prefix`): only a tie needs the key bytes.
        let low = self.prefix_partition(|p| p < target);
        let high = self.prefix_partition(|p| p <= target);
        let (low, high) = self.narrow(low, high, suffix);
        self.before_count(low, high, key, seq)
    }

    /// Narrows `low..high`, entries whose suffix prefixes equal the key's
    /// (`suffix`: the key after the shared prefix), to those whose second
    /// prefixes also do: an entry whose second prefix is smaller sorts
    /// before the key, a larger one after it.
    ///
    /// Why that holds: if the key and an entry both have eight bytes after
    /// the shared prefix, a tie means those bytes are equal, and the rest
    /// orders them as its prefix does (see `key_prefix`). Otherwise the
    /// shorter of the two is a proper prefix of the other (the tie padded
    /// it with zeros the other holds), so it sorts first, and its second
    /// prefix is 0, at most the other's: smaller decides rightly, a tie
    /// falls to the full comparison. The same argument shows the entries'
    /// second prefixes do not decrease within `low..high`.
    fn narrow(&self, low: usize, high: usize, suffix: &[u8]) -> (usize, usize) {
        if high.saturating_sub(low) < 2 {
            return (low, high);
        }
        let target = key_prefix(suffix.get(8..).unwrap_or_default());
        let run = self.second_prefixes.get(low..high).unwrap_or_default();
        (
            low + run.partition_point(|&p| p < target),
            low + run.partition_point(|&p| p <= target),
        )
    }

    /// `suffix_prefixes.partition_point(holds)`, reading `sampled` and then
    /// one run of `FANOUT` suffix prefixes.
    fn prefix_partition(&self, holds: impl Fn(u64) -> bool) -> usize {
        let groups = self.sampled.partition_point(|&p| holds(p));
        let Some(group) = groups.checked_sub(1) else {
            return 0;
        };
        // Group `group` starts with a prefix that holds and the next (if
        // any) with one that does not: the boundary is inside this group.
        let start = group * FANOUT;
        let end = (start + FANOUT).min(self.suffix_prefixes.len());
        let run = self.suffix_prefixes.get(start..end).unwrap_or_default();
        start + run.partition_point(|&p| holds(p))
    }

    /// `low` plus the number of entries of `low..high` that sort before
    /// `(key, seq)` in internal order (user key ascending, then newer —
    /// larger — sequence numbers first).
    fn before_count(&self, low: usize, high: usize, key: &[u8], seq: SequenceNumber) -> usize {
        let (mut low, mut high) = (low, high.min(self.entries.len()));
        while low < high {
            let mid = low + (high - low) / 2;
            let start = mid.checked_sub(1).map_or(0, |i| self.key_ends[i]);
            let last_key = self
                .arena
                .get(start..self.key_ends[mid])
                .unwrap_or_default();
            let before = match last_key.cmp(key) {
                // Newer versions first: a larger sequence number sorts before.
                Ordering::Equal => self.entries[mid].last_seq > seq,
                order => order == Ordering::Less,
            };
            if before {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        low
    }
}

fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// splitmix64, for seeded keys.
    fn mix(n: u64) -> u64 {
        let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Keys shaped like a table's rows: a shared keyspace id, a token shared
    /// by a partition's rows, then varying lengths of partition and sort key.
    fn row_key(n: u64) -> Vec<u8> {
        let partition = mix(n / 7) % 50;
        let mut key = vec![0, 0, 0, 9];
        key.extend_from_slice(&(mix(partition) & 0xffff_0000_0000_0000).to_be_bytes());
        key.extend_from_slice(format!("p{partition}").as_bytes());
        key.extend_from_slice(&mix(n).to_be_bytes()[..(n % 9) as usize]);
        key
    }

    /// Keys of a few large partitions: a full eight-byte token, then long
    /// partition keys that differ only at their end, then sort keys of
    /// varying lengths (some ending where the second prefix begins).
    fn large_partition_key(n: u64) -> Vec<u8> {
        let partition = mix(n / 300) % 5;
        let mut key = vec![0, 0, 0, 9];
        key.extend_from_slice(&mix(partition).to_be_bytes());
        key.extend_from_slice(format!("customer#0000{partition}").as_bytes());
        let sort_key = [mix(n).to_be_bytes(), mix(!n).to_be_bytes()].concat();
        key.extend_from_slice(&sort_key[..(n % 12) as usize]);
        key
    }

    fn index_of(mut keys: Vec<(Vec<u8>, SequenceNumber)>) -> BlockIndex {
        keys.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(&a.1)));
        keys.dedup();
        let smallest = keys.first().map(|k| k.0.clone()).unwrap_or_default();
        let largest = keys.last().map(|k| k.0.clone()).unwrap_or_default();
        let entries = keys
            .into_iter()
            .enumerate()
            .map(|(i, (key, seq))| {
                let handle = BlockHandle {
                    offset: i as u64 * 100,
                    len: 90,
                };
                IndexEntry::new(Bytes::from(key), seq, handle)
            })
            .collect();
        BlockIndex::new(entries, &smallest, &largest)
    }

    #[test]
    fn find_agrees_with_a_plain_search_over_the_entries() {
        find_agrees_with_a_plain_search(row_key);
        find_agrees_with_a_plain_search(large_partition_key);
        // Keys no longer than the shared prefix plus a few bytes: the
        // second prefixes are mostly padding.
        find_agrees_with_a_plain_search(|n| {
            let mut key = row_key(n);
            key.truncate(4 + (n % 14) as usize);
            key
        });
    }

    fn find_agrees_with_a_plain_search(row_key: impl Fn(u64) -> Vec<u8>) {
        let keys: Vec<_> = (0..2_000).map(|n| (row_key(n), mix(n) % 5)).collect();
        let index = index_of(keys);
        assert!(index.shared_len >= 4, "the keyspace id is shared");
        let (smallest, largest) = (
            index.entries()[0].last_key.clone(),
            index.entries().last().unwrap().last_key.clone(),
        );
        let mut checked = 0;
        for n in 0..20_000u64 {
            // Existing keys, their neighbours and new keys, at several seqs.
            let mut key = row_key(n % 2_500);
            if n % 3 == 1 {
                key.push((n % 256) as u8);
            }
            if key.as_slice() < smallest.as_ref() || key.as_slice() > largest.as_ref() {
                continue;
            }
            let seq = mix(n ^ 77) % 6;
            let expected = index.entries().partition_point(|e| {
                e.last_key
                    .as_ref()
                    .cmp(&key)
                    .then_with(|| seq.cmp(&e.last_seq))
                    == Ordering::Less
            });
            assert_eq!(index.find(&key, seq), expected, "key {key:?} seq {seq}");
            checked += 1;
        }
        assert!(checked > 10_000, "most probes were in range: {checked}");
    }

    #[test]
    fn keys_live_in_one_arena_in_order() {
        let index = index_of((0..100).map(|n| (row_key(n), 1)).collect());
        let entries = index.entries();
        for pair in entries.windows(2) {
            let end = pair[0].last_key.as_ptr() as usize + pair[0].last_key.len();
            assert_eq!(end, pair[1].last_key.as_ptr() as usize);
        }
    }

    #[test]
    fn a_single_key_segment_and_keys_that_are_prefixes_of_each_other() {
        let index = index_of(vec![(b"abc".to_vec(), 3)]);
        assert_eq!(index.shared_len, 3);
        assert_eq!(index.find(b"abc", 5), 0);
        assert_eq!(index.find(b"abc", 3), 0);
        assert_eq!(index.find(b"abc", 2), 1);

        let keys = [&b"a"[..], b"ab", b"abc", b"abcd", b"abd", b"b"];
        let index = index_of(keys.iter().map(|k| (k.to_vec(), 1)).collect());
        assert_eq!(index.shared_len, 0);
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(index.find(key, 1), i);
            assert_eq!(index.find(key, 0), i + 1);
        }
    }
}
