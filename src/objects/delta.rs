//! A new version stored as its difference from the key's previous one.
//!
//! Content-defined chunking alone stores an edit as the whole chunks
//! around it: about the edit's length plus one average chunk (1 MiB by
//! default) per edited place. So when a chunk of a new body is not stored
//! yet and the key has a current version, the chunk is compared with that
//! version's bytes where the two bodies line up. The longest common prefix
//! and suffix become pieces of the previous version's stored chunks
//! (manifest entries with an offset, [`ChunkRef`]), and only the bytes
//! between them are stored, as a chunk of their own. Twenty versions of a
//! 64 MiB body with 1 % rewritten each then store about 1 % each again.
//!
//! Alignment: a chunk of the new body that equals a whole chunk of the
//! previous version fixes where the two bodies line up; the next changed
//! chunk's prefix is compared from there, and its suffix against the
//! previous version's piece boundaries near its end (an insertion or a
//! deletion inside it moves that end), which realigns the chunks after it.
//!
//! Comparisons read the previous version's stored bytes without checking
//! their hashes: a damaged byte can only end a match early, and every read
//! of the new version checks the hash of each chunk its pieces come from.
//! Compressed (cold-tier) bodies are never compared. Nothing here can make
//! a body wrong — the pieces are chosen by comparing bytes — only larger.
//!
//! The ETag does not change: it hashes the chunks as the chunker cut them,
//! not the pieces they are stored as.

use std::collections::HashMap;

use bytes::Bytes;

use super::error::Result;
use super::keys::{self, ChunkHash};
use super::record::{ChunkList, ChunkLocation, ChunkRef};
use super::store::StoreInner;
use super::types::Tier;

/// Changed chunks shorter than this are stored whole: comparing costs more
/// than the few bytes it could save.
const DELTA_CHUNK_BYTES_MIN: usize = 16 << 10;

/// A changed chunk is stored as pieces only if at least this fraction
/// (1 / n) of it matches the previous version.
const MATCH_FRACTION_MIN: usize = 8;

/// Bytes compared first at a candidate suffix alignment, before the rest.
const PROBE_BYTES: usize = 64;

/// Suffix alignments tried per changed chunk (the previous version's
/// piece boundaries nearest to where the chunk would end unshifted).
const SUFFIX_CANDIDATES_MAX: usize = 16;

/// Occurrences of a searched tail considered per entry (bytes that repeat,
/// like runs of zeros, match everywhere; any occurrence is correct).
const MATCHES_PER_ENTRY_MAX: usize = 64;

/// Stored chunks of the previous version kept while comparing.
const CACHED_CHUNKS: usize = 4;

/// How a changed chunk of the new body is stored: `prefix` bytes from the
/// previous version at `prefix_start`, the middle as a chunk of its own,
/// `suffix` bytes from the previous version ending at `suffix_end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Splice {
    pub(super) prefix_start: u64,
    pub(super) prefix: usize,
    pub(super) suffix_end: u64,
    pub(super) suffix: usize,
}

/// The previous version's body, laid out for comparisons.
pub(super) struct Base {
    entries: Vec<ChunkRef>,
    /// Where each entry starts in the previous body, and its length last.
    starts: Vec<u64>,
    /// Whole stored chunks of the previous body: hash → (start, length).
    whole: HashMap<ChunkHash, (u64, u32)>,
    cache: Vec<(ChunkHash, Option<Bytes>)>,
}

impl Base {
    /// The comparison view of `list`, or `None` if it cannot be compared
    /// (cold tier, or empty).
    pub(super) fn new(list: &ChunkList) -> Option<Self> {
        if list.tier != Tier::Hot || list.chunks.is_empty() {
            return None;
        }
        let mut starts = Vec::with_capacity(list.chunks.len() + 1);
        let mut whole = HashMap::with_capacity(list.chunks.len());
        let mut at = 0u64;
        for entry in &list.chunks {
            starts.push(at);
            if entry.offset == 0 {
                whole.entry(entry.hash).or_insert((at, entry.len));
            }
            at += u64::from(entry.len);
        }
        starts.push(at);
        Some(Self {
            entries: list.chunks.clone(),
            starts,
            whole,
            cache: Vec::with_capacity(CACHED_CHUNKS),
        })
    }

    fn total(&self) -> u64 {
        self.starts.last().copied().unwrap_or(0)
    }

    /// The alignment (previous offset − new offset) a chunk of the new body
    /// at `new_start` gives if it is a whole chunk of the previous body.
    pub(super) fn alignment(&self, hash: &ChunkHash, len: usize, new_start: u64) -> Option<i64> {
        let (start, whole_len) = *self.whole.get(hash)?;
        (whole_len as usize == len).then(|| start as i64 - new_start as i64)
    }

    /// How to store the changed chunk `data`, found at `new_start` of the
    /// new body while the bodies line up at `alignment`; `None` if too
    /// little of it matches the previous version.
    ///
    /// `search` allows looking for the chunk's last bytes anywhere near
    /// where it would end (an insertion or deletion the chunker did not
    /// resynchronise after): worth it only while the bodies have been
    /// matching, so the caller passes whether the previous chunk matched.
    pub(super) fn splice(
        &mut self,
        store: &StoreInner,
        data: &[u8],
        new_start: u64,
        alignment: i64,
        search: bool,
    ) -> Result<Option<Splice>> {
        if data.len() < DELTA_CHUNK_BYTES_MIN {
            return Ok(None);
        }
        let total = self.total();
        let aligned = i128::from(new_start) + i128::from(alignment);
        let (prefix_start, prefix) = match u64::try_from(aligned) {
            Ok(start) if start < total => (start, self.common_prefix(store, data, start)?),
            _ => (0, 0),
        };
        let rest = &data[prefix..];
        let mut best = (0u64, 0usize);
        if !rest.is_empty() {
            let expected = aligned + data.len() as i128;
            for end in self.suffix_candidates(expected, data.len() as u64) {
                let probe = PROBE_BYTES.min(rest.len()).min(end as usize);
                let tail = &rest[rest.len() - probe..];
                if probe == 0 || self.common_suffix(store, tail, end)? < probe {
                    continue;
                }
                let suffix = self.common_suffix(store, rest, end)?;
                if suffix > best.1 {
                    best = (end, suffix);
                }
            }
            if best.1 == 0
                && search
                && rest.len() >= PROBE_BYTES
                && let Some(end) = self.find_tail(
                    store,
                    &rest[rest.len() - PROBE_BYTES..],
                    expected,
                    data.len(),
                )?
            {
                best = (end, self.common_suffix(store, rest, end)?);
            }
        }
        let (suffix_end, suffix) = best;
        if (prefix + suffix) * MATCH_FRACTION_MIN < data.len() {
            return Ok(None);
        }
        Ok(Some(Splice {
            prefix_start,
            prefix,
            suffix_end,
            suffix,
        }))
    }

    /// The previous body's bytes `from..to` as pieces of its stored chunks.
    pub(super) fn pieces(&self, from: u64, to: u64, out: &mut Vec<ChunkRef>) {
        if from >= to {
            return;
        }
        let mut index = self.entry_at(from).unwrap_or(self.entries.len());
        while index < self.entries.len() && self.starts[index] < to {
            let entry = self.entries[index];
            let start = self.starts[index];
            let end = self.starts[index + 1];
            let (lo, hi) = (from.max(start), to.min(end));
            out.push(ChunkRef {
                hash: entry.hash,
                offset: entry.offset + (lo - start) as u32,
                len: (hi - lo) as u32,
            });
            index += 1;
        }
    }

    /// Where the chunk would end in the previous body: unshifted first,
    /// then the nearest piece boundaries within one chunk length of it.
    fn suffix_candidates(&self, expected: i128, len: u64) -> Vec<u64> {
        let total = self.total();
        let mut candidates: Vec<u64> = Vec::new();
        if let Ok(end) = u64::try_from(expected)
            && end > 0
            && end <= total
        {
            candidates.push(end);
        }
        let lo = u64::try_from(expected - i128::from(len)).unwrap_or(0);
        let hi = u64::try_from(expected + i128::from(len)).unwrap_or(0);
        let first = self.starts.partition_point(|start| *start < lo.max(1));
        let mut near: Vec<u64> = self.starts[first..]
            .iter()
            .copied()
            .take_while(|start| *start <= hi)
            .filter(|start| !candidates.contains(start))
            .collect();
        near.sort_by_key(|start| (i128::from(*start) - expected).unsigned_abs());
        candidates.extend(near.into_iter().take(SUFFIX_CANDIDATES_MAX));
        candidates
    }

    /// Where in the previous body, within two chunk lengths of `expected`,
    /// the bytes `needle` end (the occurrence nearest to `expected`).
    fn find_tail(
        &mut self,
        store: &StoreInner,
        needle: &[u8],
        expected: i128,
        len: usize,
    ) -> Result<Option<u64>> {
        let reach = 2 * len as i128;
        let total = self.total();
        let lo = u64::try_from(expected - reach).unwrap_or(0);
        let hi = u64::try_from(expected + reach).unwrap_or(0).min(total);
        let Some(mut index) = self.entry_at(lo) else {
            return Ok(None);
        };
        let finder = memchr::memmem::Finder::new(needle);
        let mut best: Option<u64> = None;
        let mut consider = |end: u64| {
            let distance = |at: u64| (i128::from(at) - expected).unsigned_abs();
            if best.is_none_or(|known| distance(end) < distance(known)) {
                best = Some(end);
            }
        };
        // The previous entry's last bytes, for a needle across two entries.
        let mut carry: Vec<u8> = Vec::new();
        while index < self.entries.len() && self.starts[index] < hi {
            let start = self.starts[index];
            let Some(bytes) = self.entry_bytes(store, index)? else {
                carry.clear();
                index += 1;
                continue;
            };
            let from = lo.saturating_sub(start) as usize;
            let to = ((hi - start) as usize).min(bytes.len());
            let region = &bytes[from.min(to)..to];
            let region_start = start + from.min(to) as u64;
            if !carry.is_empty() {
                let mut joined = std::mem::take(&mut carry);
                let carried = joined.len();
                joined.extend_from_slice(&region[..region.len().min(needle.len() - 1)]);
                for at in finder.find_iter(&joined).take(MATCHES_PER_ENTRY_MAX) {
                    if at + needle.len() > carried {
                        consider(region_start + (at + needle.len() - carried) as u64);
                    }
                }
            }
            for at in finder.find_iter(region).take(MATCHES_PER_ENTRY_MAX) {
                consider(region_start + (at + needle.len()) as u64);
            }
            carry = region[region.len().saturating_sub(needle.len() - 1)..].to_vec();
            index += 1;
        }
        Ok(best)
    }

    /// The index of the entry holding byte `at` of the previous body.
    fn entry_at(&self, at: u64) -> Option<usize> {
        (at < self.total()).then(|| self.starts.partition_point(|start| *start <= at) - 1)
    }

    /// How many leading bytes of `data` equal the previous body from `start`.
    fn common_prefix(&mut self, store: &StoreInner, data: &[u8], start: u64) -> Result<usize> {
        let mut matched = 0;
        let Some(mut index) = self.entry_at(start) else {
            return Ok(0);
        };
        let mut skip = (start - self.starts[index]) as usize;
        while matched < data.len() && index < self.entries.len() {
            let Some(old) = self.entry_bytes(store, index)? else {
                break;
            };
            let old = &old[skip..];
            let new = &data[matched..];
            let same = common_prefix_len(old, new);
            matched += same;
            if same < old.len().min(new.len()) {
                break;
            }
            skip = 0;
            index += 1;
        }
        Ok(matched)
    }

    /// How many trailing bytes of `data` equal the previous body ending at
    /// `end`.
    fn common_suffix(&mut self, store: &StoreInner, data: &[u8], end: u64) -> Result<usize> {
        let mut matched = 0;
        let Some(mut index) = end.checked_sub(1).and_then(|last| self.entry_at(last)) else {
            return Ok(0);
        };
        let mut keep = (end - self.starts[index]) as usize;
        while matched < data.len() {
            let Some(old) = self.entry_bytes(store, index)? else {
                break;
            };
            let old = &old[..keep];
            let new = &data[..data.len() - matched];
            let same = common_suffix_len(old, new);
            matched += same;
            if same < old.len().min(new.len()) || index == 0 {
                break;
            }
            index -= 1;
            keep = self.entries[index].len as usize;
        }
        Ok(matched)
    }

    /// Entry `index`'s bytes, unverified, or `None` if they cannot be
    /// compared (compressed, moved, damaged).
    fn entry_bytes(&mut self, store: &StoreInner, index: usize) -> Result<Option<Bytes>> {
        let entry = self.entries[index];
        let stored = match self.cache.iter().find(|(hash, _)| *hash == entry.hash) {
            Some((_, stored)) => stored.clone(),
            None => {
                let stored = match store.engine.get(&keys::chunk(Tier::Hot, &entry.hash))? {
                    Some(row) => match ChunkLocation::decode(&row) {
                        Ok(location) => store.packs.read_unverified(&location, &entry.hash)?,
                        Err(_) => None,
                    },
                    None => None,
                };
                if self.cache.len() == CACHED_CHUNKS {
                    self.cache.remove(0);
                }
                self.cache.push((entry.hash, stored.clone()));
                stored
            }
        };
        let (start, end) = (entry.offset as usize, (entry.offset + entry.len) as usize);
        Ok(stored
            .filter(|bytes| end <= bytes.len())
            .map(|bytes| bytes.slice(start..end)))
    }
}

/// The length of the common prefix of `a` and `b`, compared a block at a
/// time (a slice comparison is a `memcmp`).
fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    const BLOCK: usize = 256;
    let len = a.len().min(b.len());
    let mut at = 0;
    while at + BLOCK <= len && a[at..at + BLOCK] == b[at..at + BLOCK] {
        at += BLOCK;
    }
    at + a[at..len]
        .iter()
        .zip(&b[at..len])
        .take_while(|(x, y)| x == y)
        .count()
}

/// The length of the common suffix of `a` and `b`.
fn common_suffix_len(a: &[u8], b: &[u8]) -> usize {
    const BLOCK: usize = 256;
    let len = a.len().min(b.len());
    let (a, b) = (&a[a.len() - len..], &b[b.len() - len..]);
    let mut at = len;
    while at >= BLOCK && a[at - BLOCK..at] == b[at - BLOCK..at] {
        at -= BLOCK;
    }
    len - at
        + a[..at]
            .iter()
            .rev()
            .zip(b[..at].iter().rev())
            .take_while(|(x, y)| x == y)
            .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_lengths_cross_block_edges() {
        let a: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        for cut in [0, 1, 255, 256, 257, 511, 999] {
            let mut b = a.clone();
            b[cut] ^= 1;
            assert_eq!(common_prefix_len(&a, &b), cut, "{cut}");
            assert_eq!(common_suffix_len(&a, &b), 999 - cut, "{cut}");
        }
        assert_eq!(common_prefix_len(&a, &a[..700]), 700);
        assert_eq!(common_suffix_len(&a, &a[300..]), 700);
        assert_eq!(common_prefix_len(&a, &[]), 0);
    }

    fn list(entries: &[(u8, u32, u32)]) -> ChunkList {
        ChunkList {
            body_id: [0; 16],
            tier: Tier::Hot,
            chunks: entries
                .iter()
                .map(|&(hash, offset, len)| ChunkRef {
                    hash: [hash; 32],
                    offset,
                    len,
                })
                .collect(),
        }
    }

    #[test]
    fn pieces_cut_entries_at_both_ends() {
        let base = Base::new(&list(&[(1, 0, 100), (2, 10, 50), (3, 0, 100)])).unwrap();
        let mut out = Vec::new();
        base.pieces(90, 170, &mut out);
        assert_eq!(
            out,
            vec![
                ChunkRef {
                    hash: [1; 32],
                    offset: 90,
                    len: 10
                },
                ChunkRef {
                    hash: [2; 32],
                    offset: 10,
                    len: 50
                },
                ChunkRef {
                    hash: [3; 32],
                    offset: 0,
                    len: 20
                },
            ]
        );
        out.clear();
        base.pieces(120, 130, &mut out);
        assert_eq!(
            out,
            vec![ChunkRef {
                hash: [2; 32],
                offset: 30,
                len: 10
            }]
        );
        out.clear();
        base.pieces(250, 250, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn only_whole_chunks_align() {
        let base = Base::new(&list(&[(1, 0, 100), (2, 10, 50), (3, 0, 40)])).unwrap();
        assert_eq!(base.alignment(&[3; 32], 40, 100), Some(50));
        assert_eq!(
            base.alignment(&[2; 32], 50, 0),
            None,
            "a piece, not a chunk"
        );
        assert_eq!(base.alignment(&[1; 32], 99, 0), None, "another length");
        assert!(
            Base::new(&ChunkList {
                tier: Tier::Cold,
                ..list(&[(1, 0, 1)])
            })
            .is_none()
        );
    }

    #[test]
    fn suffix_candidates_start_unshifted_then_nearest() {
        let base = Base::new(&list(&[(1, 0, 100), (2, 0, 100), (3, 0, 100)])).unwrap();
        assert_eq!(base.suffix_candidates(150, 60), vec![150, 100, 200]);
        assert_eq!(base.suffix_candidates(400, 60), Vec::<u64>::new());
        assert_eq!(base.suffix_candidates(300, 10), vec![300]);
    }
}
