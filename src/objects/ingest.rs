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

use super::error::{Error, Result};
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
const PIPELINE_DEPTH: usize = 16;

/// A request body: bytes in memory or any reader.
pub struct ByteStream {
    source: Source,
}

enum Source {
    Bytes(Bytes),
    Reader(Box<dyn Read + Send>),
}

impl std::fmt::Debug for ByteStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            Source::Bytes(bytes) => write!(f, "ByteStream({} bytes)", bytes.len()),
            Source::Reader(_) => f.write_str("ByteStream(reader)"),
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
pub(crate) struct IngestPlan {
    pub(crate) tier: Tier,
    /// Whether a small body may be stored inline (parts never are).
    pub(crate) allow_inline: bool,
    pub(crate) want_md5: bool,
    pub(crate) max_bytes: u64,
}

/// Accumulates chunks while a body is ingested.
struct ChunkSink<'s> {
    store: &'s StoreInner,
    plan: IngestPlan,
    chunks: Vec<ChunkRef>,
    seen: HashSet<ChunkHash>,
    new_locations: Vec<(ChunkHash, ChunkLocation)>,
    appended: Vec<Appended>,
    md5: Option<Md5>,
    manifest_hash: blake3::Hasher,
    size: u64,
}

impl ChunkSink<'_> {
    fn push(&mut self, data: &[u8]) -> Result<()> {
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
        self.chunks.push(ChunkRef {
            hash,
            len: data.len() as u32,
        });
        if self.seen.insert(hash)
            && self
                .store
                .engine
                .get(&keys::chunk(self.plan.tier, &hash))?
                .is_none()
        {
            let (location, appended) = self.store.packs.append(self.plan.tier, &hash, data)?;
            self.new_locations.push((hash, location));
            match self
                .appended
                .iter_mut()
                .find(|known| known.pack == appended.pack)
            {
                Some(known) => known.end = known.end.max(appended.end),
                None => self.appended.push(appended),
            }
        }
        Ok(())
    }

    fn finish(self) -> Ingested {
        let md5 = self.md5.map(|md5| md5.finalize().into());
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
    pub(crate) fn ingest(&self, stream: ByteStream, plan: IngestPlan) -> Result<Ingested> {
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
            Source::Reader(mut reader) => {
                let mut buf = Vec::new();
                let eof = fill(&mut reader, &mut buf, inline_max + 1)?;
                if plan.allow_inline && eof && buf.len() <= inline_max {
                    return self.inline(Bytes::from(buf), plan);
                }
                self.ingest_reader(reader, buf, eof, plan)
            }
        }
    }

    fn sink(&self, plan: IngestPlan) -> ChunkSink<'_> {
        ChunkSink {
            store: self,
            plan,
            chunks: Vec::new(),
            seen: HashSet::new(),
            new_locations: Vec::new(),
            appended: Vec::new(),
            md5: plan.want_md5.then(Md5::new),
            manifest_hash: blake3::Hasher::new(),
            size: 0,
        }
    }

    fn inline(&self, bytes: Bytes, plan: IngestPlan) -> Result<Ingested> {
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
    /// while this one hashes and appends the chunks: cutting and hashing
    /// cost about the same, so the pipeline nearly doubles the ingest rate
    /// on two cores.
    fn ingest_bytes(&self, data: &[u8], plan: IngestPlan) -> Result<Ingested> {
        let chunker = self.chunker();
        let mut sink = self.sink(plan);
        if data.len() < PIPELINE_BYTES_MIN {
            let mut rest = data;
            while !rest.is_empty() {
                let len = chunker.cut(rest);
                sink.push(&rest[..len])?;
                rest = &rest[len..];
            }
            return Ok(sink.finish());
        }
        let (cuts, received) = mpsc::sync_channel::<(usize, usize)>(PIPELINE_DEPTH);
        let chunker = &*chunker;
        std::thread::scope(|scope| -> Result<()> {
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
            Ok(())
        })?;
        Ok(sink.finish())
    }

    /// Chunks a body read from `reader` (after the `buf` already read):
    /// a second thread reads and cuts, this one hashes and appends.
    fn ingest_reader(
        &self,
        mut reader: Box<dyn Read + Send>,
        mut buf: Vec<u8>,
        mut eof: bool,
        plan: IngestPlan,
    ) -> Result<Ingested> {
        let chunker = self.chunker();
        let mut sink = self.sink(plan);
        let (chunks, received) = mpsc::sync_channel::<Result<Vec<u8>>>(PIPELINE_DEPTH);
        let cutter = &*chunker;
        std::thread::scope(|scope| -> Result<()> {
            scope.spawn(move || {
                loop {
                    if !eof && buf.len() < cutter.max() {
                        match fill(&mut reader, &mut buf, cutter.max()) {
                            Ok(ended) => eof = ended,
                            Err(error) => {
                                let _ = chunks.send(Err(error));
                                return;
                            }
                        }
                    }
                    if buf.is_empty() {
                        return;
                    }
                    let len = cutter.cut(&buf);
                    let rest = buf.split_off(len);
                    if chunks.send(Ok(std::mem::replace(&mut buf, rest))).is_err() {
                        return;
                    }
                }
            });
            for chunk in received {
                sink.push(&chunk?)?;
            }
            Ok(())
        })?;
        Ok(sink.finish())
    }

    /// Makes the packs holding an ingest's new chunks durable.
    pub(crate) fn sync_ingested(&self, ingested: &Ingested) -> Result<()> {
        for appended in &ingested.appended {
            self.packs.sync_through(*appended)?;
        }
        Ok(())
    }
}

/// Reads from `reader` until `buf` holds `target` bytes or the reader
/// ends; returns whether it ended.
fn fill(reader: &mut dyn Read, buf: &mut Vec<u8>, target: usize) -> Result<bool> {
    while buf.len() < target {
        let start = buf.len();
        buf.resize(target, 0);
        match reader.read(&mut buf[start..]) {
            Ok(0) => {
                buf.truncate(start);
                return Ok(true);
            }
            Ok(read) => buf.truncate(start + read),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => buf.truncate(start),
            Err(error) => return Err(Error::Body(error.to_string())),
        }
    }
    Ok(false)
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
