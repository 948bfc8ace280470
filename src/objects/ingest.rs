//! Turning a request body into a stored body: inline for tiny bodies,
//! otherwise content-defined chunks, each addressed by its BLAKE3 hash and
//! appended to a pack only if the store does not hold it yet (dedup).
//!
//! ETags: by default the BLAKE3 hash of the body's ordered chunk hashes (a
//! one-level hash tree over the content; an inline body counts as one
//! chunk), so equal content written to one store has equal ETags and no
//! second pass over the bytes is needed. Buckets created with MD5 ETags
//! get S3's MD5 of the body instead, computed in the same pass.

use std::collections::HashSet;
use std::io::Read;
use std::sync::mpsc;

use bytes::Bytes;
use md5::{Digest, Md5};

use super::delta::Base;
use super::error::{Error, Result};
use super::ingest_stream::{Pieces, ReaderPieces};
use super::keys::{self, ChunkHash};
use super::limits::CHUNKS_PER_OBJECT_MAX;
use super::pack::Appended;
use super::record::{Body, ChunkList, ChunkLocation, ChunkRef};
use super::store::StoreInner;
use super::types::Tier;

/// Bodies at least this large are cut on a second thread (below it, the
/// thread costs more than it saves).
const PIPELINE_BYTES_MIN: usize = 4 << 20;

/// Chunk boundaries (or chunks) in flight between the cutting thread and
/// the hashing one.
pub(super) const PIPELINE_DEPTH: usize = 16;

/// A request body: bytes in memory or any reader.
pub struct ByteStream {
    source: Source,
}

enum Source {
    Bytes(Bytes),
    Reader(Box<dyn Read + Send>),
    Pieces(Pieces),
}

impl std::fmt::Debug for ByteStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            Source::Bytes(bytes) => write!(f, "ByteStream({} bytes)", bytes.len()),
            Source::Reader(_) => f.write_str("ByteStream(reader)"),
            Source::Pieces(_) => f.write_str("ByteStream(pieces)"),
        }
    }
}

impl ByteStream {
    /// A body read from `reader` until its end.
    pub fn from_reader(reader: impl Read + Send + 'static) -> Self {
        Self {
            source: Source::Reader(Box::new(reader)),
        }
    }

    /// A body that arrives as a sequence of pieces (the frames of an HTTP
    /// body, say): pieces are chunked and hashed as they come, without
    /// being gathered or copied into a reader's buffer first. An `Err`
    /// piece ends the body and fails the request before anything is
    /// committed.
    pub fn from_pieces(
        pieces: impl Iterator<Item = std::io::Result<Bytes>> + Send + 'static,
    ) -> Self {
        Self {
            source: Source::Pieces(Box::new(pieces)),
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self::from(Bytes::new())
    }
}

impl Default for ByteStream {
    fn default() -> Self {
        Self::empty()
    }
}

impl From<Bytes> for ByteStream {
    fn from(bytes: Bytes) -> Self {
        Self {
            source: Source::Bytes(bytes),
        }
    }
}

impl From<Vec<u8>> for ByteStream {
    fn from(bytes: Vec<u8>) -> Self {
        Self::from(Bytes::from(bytes))
    }
}

impl From<&'static [u8]> for ByteStream {
    fn from(bytes: &'static [u8]) -> Self {
        Self::from(Bytes::from_static(bytes))
    }
}

impl<const N: usize> From<&'static [u8; N]> for ByteStream {
    fn from(bytes: &'static [u8; N]) -> Self {
        Self::from(Bytes::from_static(bytes))
    }
}

impl From<&'static str> for ByteStream {
    fn from(text: &'static str) -> Self {
        Self::from(Bytes::from_static(text.as_bytes()))
    }
}

impl From<String> for ByteStream {
    fn from(text: String) -> Self {
        Self::from(Bytes::from(text))
    }
}

/// What ingesting a body produced, before it is committed.
#[derive(Debug)]
pub(crate) struct Ingested {
    pub(crate) body: Body,
    pub(crate) md5: Option<[u8; 16]>,
    /// BLAKE3 of the ordered chunk hashes.
    pub(crate) content_hash: [u8; 32],
    /// Chunks this ingest appended to packs (the rest were already stored).
    pub(crate) new_locations: Vec<(ChunkHash, ChunkLocation)>,
    appended: Vec<Appended>,
}

impl Ingested {
    pub(crate) fn size(&self) -> u64 {
        self.body.len()
    }

    /// The ETag in the bucket's mode.
    pub(crate) fn e_tag(&self, md5_etags: bool) -> String {
        match (md5_etags, &self.md5) {
            (true, Some(md5)) => hex(md5),
            _ => hex(&self.content_hash),
        }
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes.len());
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 15)]));
    }
    out
}

/// How a body is to be stored.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IngestPlan<'a> {
    pub(crate) tier: Tier,
    /// Whether a small body may be stored inline (parts never are).
    pub(crate) allow_inline: bool,
    pub(crate) want_md5: bool,
    pub(crate) max_bytes: u64,
    /// The key's current body, which changed chunks are stored as
    /// differences from (`delta.rs`).
    pub(crate) base: Option<&'a ChunkList>,
}

/// Accumulates chunks while a body is ingested.
pub(super) struct ChunkSink<'s> {
    store: &'s StoreInner,
    plan: IngestPlan<'s>,
    chunks: Vec<ChunkRef>,
    /// Chunks known to be stored (in the catalogue or appended here).
    seen: HashSet<ChunkHash>,
    /// The previous version, when changed chunks are stored as differences.
    base: Option<Base>,
    /// Where the new body lines up with the previous one (old − new offset).
    alignment: i64,
    /// Whether the last chunk matched the previous version (as a whole
    /// chunk of it or in part): searching for a lost alignment pays then.
    matching: bool,
    new_locations: Vec<(ChunkHash, ChunkLocation)>,
    appended: Vec<Appended>,
    /// The body's MD5, when this thread computes it (small bodies).
    md5: Option<Md5>,
    manifest_hash: blake3::Hasher,
    size: u64,
}

impl ChunkSink<'_> {
    /// Adds the next chunk of the body: hashed, and appended to a pack
    /// unless the store holds it already.
    pub(super) fn push(&mut self, data: &[u8]) -> Result<()> {
        let start = self.size;
        self.size += data.len() as u64;
        if self.size > self.plan.max_bytes {
            return Err(Error::EntityTooLarge {
                reason: format!("the body is larger than {} bytes", self.plan.max_bytes),
            });
        }
        if self.chunks.len() >= CHUNKS_PER_OBJECT_MAX {
            return Err(Error::EntityTooLarge {
                reason: format!("the body has more than {CHUNKS_PER_OBJECT_MAX} chunks"),
            });
        }
        if let Some(md5) = &mut self.md5 {
            md5.update(data);
        }
        let hash = *blake3::hash(data).as_bytes();
        self.manifest_hash.update(&hash);
        if self.is_stored(&hash)? {
            let alignment = self
                .base
                .as_ref()
                .and_then(|base| base.alignment(&hash, data.len(), start));
            if let Some(alignment) = alignment {
                self.alignment = alignment;
            }
            self.matching = alignment.is_some();
        } else if !self.store_as_difference(data, start)? {
            self.append(&hash, data)?;
        } else {
            return Ok(());
        }
        self.chunks.push(ChunkRef::whole(hash, data.len() as u32));
        Ok(())
    }

    /// Whether the store holds chunk `hash` (or this ingest appended it).
    fn is_stored(&mut self, hash: &ChunkHash) -> Result<bool> {
        if self.seen.contains(hash) {
            return Ok(true);
        }
        let stored = self
            .store
            .engine
            .get(&keys::chunk(self.plan.tier, hash))?
            .is_some();
        if stored {
            self.seen.insert(*hash);
        }
        Ok(stored)
    }

    /// Appends chunk `hash` to a pack.
    fn append(&mut self, hash: &ChunkHash, data: &[u8]) -> Result<()> {
        let (location, appended) = self.store.packs.append(self.plan.tier, hash, data)?;
        self.seen.insert(*hash);
        self.new_locations.push((*hash, location));
        match self
            .appended
            .iter_mut()
            .find(|known| known.pack == appended.pack)
        {
            Some(known) => known.end = known.end.max(appended.end),
            None => self.appended.push(appended),
        }
        Ok(())
    }

    /// Stores the changed chunk `data` (at `start` of the body) as pieces
    /// of the previous version plus the bytes between them, if enough of it
    /// matches; false if it must be stored whole.
    fn store_as_difference(&mut self, data: &[u8], start: u64) -> Result<bool> {
        let Some(mut base) = self.base.take() else {
            return Ok(false);
        };
        let stored = self.splice(&mut base, data, start);
        self.base = Some(base);
        stored
    }

    fn splice(&mut self, base: &mut Base, data: &[u8], start: u64) -> Result<bool> {
        let spliced = base.splice(self.store, data, start, self.alignment, self.matching)?;
        self.matching = spliced.is_some();
        let Some(splice) = spliced else {
            return Ok(false);
        };
        let mut pieces = Vec::new();
        let prefix_end = splice.prefix_start + splice.prefix as u64;
        base.pieces(splice.prefix_start, prefix_end, &mut pieces);
        let middle = &data[splice.prefix..data.len() - splice.suffix];
        let mut suffix_pieces = Vec::new();
        base.pieces(
            splice.suffix_end - splice.suffix as u64,
            splice.suffix_end,
            &mut suffix_pieces,
        );
        let entries = pieces.len() + usize::from(!middle.is_empty()) + suffix_pieces.len();
        if self.chunks.len() + entries > CHUNKS_PER_OBJECT_MAX {
            return Ok(false);
        }
        if !middle.is_empty() {
            let hash = *blake3::hash(middle).as_bytes();
            if !self.is_stored(&hash)? {
                self.append(&hash, middle)?;
            }
            pieces.push(ChunkRef::whole(hash, middle.len() as u32));
        }
        pieces.append(&mut suffix_pieces);
        for piece in pieces {
            match self.chunks.last_mut() {
                // The next bytes of the same stored chunk: one piece.
                Some(last) if last.hash == piece.hash && last.offset + last.len == piece.offset => {
                    last.len += piece.len;
                }
                _ => self.chunks.push(piece),
            }
        }
        if splice.suffix > 0 {
            self.alignment = splice.suffix_end as i64 - (start + data.len() as u64) as i64;
        }
        Ok(true)
    }

    /// The ingested body; `md5` is the body's MD5 if another thread
    /// computed it.
    pub(super) fn finish(self, md5: Option<[u8; 16]>) -> Ingested {
        let md5 = md5.or_else(|| self.md5.map(|md5| md5.finalize().into()));
        Ingested {
            body: Body::Chunked(ChunkList {
                body_id: self.store.new_id16(),
                tier: self.plan.tier,
                chunks: self.chunks,
            }),
            md5,
            content_hash: *self.manifest_hash.finalize().as_bytes(),
            new_locations: self.new_locations,
            appended: self.appended,
        }
    }
}

impl StoreInner {
    /// Stores `stream` as `plan` says. Chunks are appended to packs but not
    /// synced or referenced yet: [`StoreInner::sync_ingested`], then a
    /// commit, do that.
    pub(crate) fn ingest(&self, stream: ByteStream, plan: IngestPlan<'_>) -> Result<Ingested> {
        let inline_max = if plan.allow_inline {
            self.options().inline_bytes_max
        } else {
            0
        };
        match stream.source {
            Source::Bytes(bytes) => {
                if plan.allow_inline && bytes.len() <= inline_max {
                    return self.inline(bytes, plan);
                }
                self.ingest_bytes(&bytes, plan)
            }
            Source::Reader(reader) => {
                self.ingest_pieces(Box::new(ReaderPieces::new(reader)), plan, inline_max)
            }
            Source::Pieces(pieces) => self.ingest_pieces(pieces, plan, inline_max),
        }
    }

    /// A sink for a body; `md5_here` makes it compute the MD5 itself (if
    /// the plan wants one) rather than leave it to another thread.
    pub(super) fn sink<'s>(&'s self, plan: IngestPlan<'s>, md5_here: bool) -> ChunkSink<'s> {
        ChunkSink {
            store: self,
            plan,
            chunks: Vec::new(),
            seen: HashSet::new(),
            base: plan
                .base
                .filter(|base| base.tier == plan.tier)
                .and_then(Base::new),
            alignment: 0,
            matching: true,
            new_locations: Vec::new(),
            appended: Vec::new(),
            md5: (plan.want_md5 && md5_here).then(Md5::new),
            manifest_hash: blake3::Hasher::new(),
            size: 0,
        }
    }

    pub(super) fn inline(&self, bytes: Bytes, plan: IngestPlan<'_>) -> Result<Ingested> {
        if bytes.len() as u64 > plan.max_bytes {
            return Err(Error::EntityTooLarge {
                reason: format!("the body is larger than {} bytes", plan.max_bytes),
            });
        }
        let mut manifest_hash = blake3::Hasher::new();
        if !bytes.is_empty() {
            manifest_hash.update(blake3::hash(&bytes).as_bytes());
        }
        Ok(Ingested {
            md5: plan.want_md5.then(|| Md5::digest(&bytes).into()),
            content_hash: *manifest_hash.finalize().as_bytes(),
            body: Body::Inline(bytes),
            new_locations: Vec::new(),
            appended: Vec::new(),
        })
    }

    /// Chunks an in-memory body. Large bodies are cut on a second thread
    /// while this one hashes and appends the chunks (cutting and hashing
    /// cost about the same), and their MD5, which costs more than both
    /// together, is computed on a third.
    pub(super) fn ingest_bytes(&self, data: &[u8], plan: IngestPlan<'_>) -> Result<Ingested> {
        let chunker = self.chunker();
        if data.len() < PIPELINE_BYTES_MIN {
            let mut sink = self.sink(plan, true);
            let mut rest = data;
            while !rest.is_empty() {
                let len = chunker.cut(rest);
                sink.push(&rest[..len])?;
                rest = &rest[len..];
            }
            return Ok(sink.finish(None));
        }
        let mut sink = self.sink(plan, false);
        let (cuts, received) = mpsc::sync_channel::<(usize, usize)>(PIPELINE_DEPTH);
        let chunker = &*chunker;
        let md5 = std::thread::scope(|scope| -> Result<Option<[u8; 16]>> {
            let md5 = plan
                .want_md5
                .then(|| scope.spawn(move || -> [u8; 16] { Md5::digest(data).into() }));
            scope.spawn(move || {
                let mut offset = 0;
                while offset < data.len() {
                    let len = chunker.cut(&data[offset..]);
                    // A closed channel means the consumer failed: stop.
                    if cuts.send((offset, len)).is_err() {
                        return;
                    }
                    offset += len;
                }
            });
            for (offset, len) in received {
                sink.push(&data[offset..offset + len])?;
            }
            md5.map(|thread| thread.join())
                .transpose()
                .map_err(|_| Error::Body("the MD5 thread panicked".into()))
        })?;
        Ok(sink.finish(md5))
    }

    /// Makes the packs holding an ingest's new chunks durable.
    pub(crate) fn sync_ingested(&self, ingested: &Ingested) -> Result<()> {
        for appended in &ingested.appended {
            self.packs.sync_through(*appended)?;
        }
        Ok(())
    }
}

impl StoreInner {
    /// Stores the chunks of `list` in `tier` (a storage-class change),
    /// keeping the chunk boundaries, so the copy deduplicates like the
    /// original. Chunks already stored in `tier` are not rewritten.
    pub(crate) fn retier(&self, list: &ChunkList, tier: Tier) -> Result<Ingested> {
        let mut new_locations = Vec::new();
        let mut appended: Vec<Appended> = Vec::new();
        let mut seen = HashSet::new();
        let mut manifest_hash = blake3::Hasher::new();
        for chunk in &list.chunks {
            manifest_hash.update(&chunk.hash);
            if !seen.insert(chunk.hash)
                || self.engine.get(&keys::chunk(tier, &chunk.hash))?.is_some()
            {
                continue;
            }
            let raw = self.read_chunk(list.tier, &chunk.hash)?;
            let (location, mark) = self.packs.append(tier, &chunk.hash, &raw)?;
            new_locations.push((chunk.hash, location));
            match appended.iter_mut().find(|known| known.pack == mark.pack) {
                Some(known) => known.end = known.end.max(mark.end),
                None => appended.push(mark),
            }
        }
        Ok(Ingested {
            body: Body::Chunked(ChunkList {
                body_id: self.new_id16(),
                tier,
                chunks: list.chunks.clone(),
            }),
            md5: None,
            content_hash: *manifest_hash.finalize().as_bytes(),
            new_locations,
            appended,
        })
    }

    /// A new reference to an existing body (a copy in the same tier): the
    /// same chunks under a fresh body id, nothing written to packs.
    pub(crate) fn share(&self, body: &Body) -> Ingested {
        let (body, content_hash) = match body {
            Body::Inline(bytes) => {
                let mut manifest_hash = blake3::Hasher::new();
                if !bytes.is_empty() {
                    manifest_hash.update(blake3::hash(bytes).as_bytes());
                }
                (Body::Inline(bytes.clone()), manifest_hash.finalize())
            }
            Body::Chunked(list) => {
                let mut manifest_hash = blake3::Hasher::new();
                for chunk in &list.chunks {
                    manifest_hash.update(&chunk.hash);
                }
                let shared = ChunkList {
                    body_id: self.new_id16(),
                    tier: list.tier,
                    chunks: list.chunks.clone(),
                };
                (Body::Chunked(shared), manifest_hash.finalize())
            }
        };
        Ingested {
            body,
            md5: None,
            content_hash: *content_hash.as_bytes(),
            new_locations: Vec::new(),
            appended: Vec::new(),
        }
    }
}
