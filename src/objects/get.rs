//! `get_object` and `head_object`: version resolution (delete markers give
//! `NoSuchKey` with the marker flag, or `MethodNotAllowed` when named by
//! id), conditional reads, byte ranges and part numbers, archived objects.
//! The body is an [`ObjectBody`] that reads chunk by chunk and checks each
//! chunk's BLAKE3 hash before returning any of its bytes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::Objects;
use super::error::{Error, Result};
use super::keys::{self, ChunkHash};
use super::put::e_tag_matches;
use super::record::{Body, ChunkLocation, ChunkRef, ObjectRecord};
use super::store::{StoreInner, system_time};
use super::types::{ObjectLockMode, StorageClass, Tier};
use super::versions::{StoredVersion, parse_version_id};

/// The read preconditions of a GET or HEAD (RFC 9110 §13 as S3 applies it).
#[derive(Debug, Clone, Default)]
struct ReadConditions {
    if_match: Option<String>,
    if_none_match: Option<String>,
    if_modified_since: Option<SystemTime>,
    if_unmodified_since: Option<SystemTime>,
}

fn seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

impl ReadConditions {
    /// If-Match wins over If-Unmodified-Since, If-None-Match over
    /// If-Modified-Since; dates compare at HTTP's one-second resolution.
    fn check(&self, object: &ObjectRecord, last_modified: SystemTime) -> Result<()> {
        let modified = seconds(last_modified);
        if let Some(expected) = &self.if_match {
            if !e_tag_matches(expected, &object.e_tag) {
                return Err(Error::precondition("if_match: the ETag differs"));
            }
        } else if let Some(since) = self.if_unmodified_since
            && modified > seconds(since)
        {
            return Err(Error::precondition("if_unmodified_since: modified since"));
        }
        let not_modified = || Error::NotModified {
            e_tag: object.e_tag.clone(),
            last_modified,
        };
        if let Some(tags) = &self.if_none_match {
            if e_tag_matches(tags, &object.e_tag) {
                return Err(not_modified());
            }
        } else if let Some(since) = self.if_modified_since
            && modified <= seconds(since)
        {
            return Err(not_modified());
        }
        Ok(())
    }
}

/// Parses an HTTP `Range` header value against an object of `size` bytes,
/// returning the half-open byte range. One range only, as in S3.
pub(crate) fn parse_range(spec: &str, size: u64) -> Result<(u64, u64)> {
    let malformed = || Error::InvalidArgument(format!("malformed range {spec:?}"));
    let unsatisfiable = || Error::InvalidRange {
        range: spec.to_owned(),
        size,
    };
    let body = spec.trim().strip_prefix("bytes=").ok_or_else(malformed)?;
    let (first, last) = body.split_once('-').ok_or_else(malformed)?;
    let number = |text: &str| -> Result<u64> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        text.parse().map_err(|_| malformed())
    };
    if first.is_empty() {
        let suffix = number(last)?;
        if suffix == 0 || size == 0 {
            return Err(unsatisfiable());
        }
        return Ok((size.saturating_sub(suffix), size));
    }
    let start = number(first)?;
    let end = if last.is_empty() {
        size
    } else {
        let last = number(last)?;
        if last < start {
            return Err(malformed());
        }
        last.saturating_add(1).min(size)
    };
    if start >= size {
        return Err(unsatisfiable());
    }
    Ok((start, end))
}

macro_rules! object_headers {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[non_exhaustive]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            /// The bytes returned (the range's length for a ranged read).
            pub content_length: u64,
            /// `bytes start-end/size` for a ranged or part read.
            pub content_range: Option<String>,
            /// The version's ETag.
            pub e_tag: String,
            /// The version id (`None` in a never-versioned bucket).
            pub version_id: Option<String>,
            /// When the version was created.
            pub last_modified: SystemTime,
            /// The `Content-Type`.
            pub content_type: Option<String>,
            /// The `Content-Encoding`.
            pub content_encoding: Option<String>,
            /// The `Content-Disposition`.
            pub content_disposition: Option<String>,
            /// The `Cache-Control`.
            pub cache_control: Option<String>,
            /// User metadata (names lowercased).
            pub metadata: BTreeMap<String, String>,
            /// The storage class.
            pub storage_class: StorageClass,
            /// The number of parts of a multipart object.
            pub parts_count: Option<u32>,
            /// The number of tags.
            pub tag_count: usize,
            /// The retention mode, if any.
            pub object_lock_mode: Option<ObjectLockMode>,
            /// The retention end, if any.
            pub object_lock_retain_until_date: Option<SystemTime>,
            /// Whether a legal hold is on.
            pub object_lock_legal_hold: bool,
            /// Until when an archived object is restored.
            pub restore_expiry_date: Option<SystemTime>,
        }
    };
}

object_headers! {
    /// `head_object` response.
    #[derive(Debug, Clone, PartialEq, Eq)]
    HeadObjectOutput {}
}

object_headers! {
    /// `get_object` response.
    #[derive(Debug)]
    GetObjectOutput {
        /// The body, read as it is consumed.
        body: ObjectBody,
    }
}

/// Which bytes a read returns.
#[derive(Debug, Clone, Default)]
struct Selection {
    range: Option<String>,
    part_number: Option<u32>,
}

impl Selection {
    /// The half-open range to return and the `Content-Range`, if partial.
    fn resolve(&self, object: &ObjectRecord) -> Result<((u64, u64), Option<String>)> {
        let size = object.size;
        let (start, end) = match (&self.range, self.part_number) {
            (Some(_), Some(_)) => {
                return Err(Error::InvalidRequest(
                    "a range and a part number cannot be combined".into(),
                ));
            }
            (Some(spec), None) => parse_range(spec, size)?,
            (None, Some(part)) => part_range(object, part)?,
            (None, None) => return Ok(((0, size), None)),
        };
        let content_range = format!("bytes {}-{}/{size}", start, end.saturating_sub(1));
        Ok(((start, end), Some(content_range)))
    }
}

fn part_range(object: &ObjectRecord, part: u32) -> Result<(u64, u64)> {
    if object.part_sizes.is_empty() {
        return match part {
            1 => Ok((0, object.size)),
            _ => Err(Error::InvalidRange {
                range: format!("part {part}"),
                size: object.size,
            }),
        };
    }
    let index = part.checked_sub(1).map(|index| index as usize);
    let Some(index) = index.filter(|index| *index < object.part_sizes.len()) else {
        return Err(Error::InvalidRange {
            range: format!("part {part}"),
            size: object.size,
        });
    };
    let start: u64 = object.part_sizes[..index].iter().sum();
    Ok((start, start + object.part_sizes[index]))
}

/// Resolves the version a read names.
fn resolve(
    store: &StoreInner,
    bucket_id: u64,
    key: &str,
    version_id: Option<&str>,
) -> Result<StoredVersion> {
    match version_id {
        Some(id) => {
            let version = store
                .find_version(bucket_id, key, parse_version_id(id)?)?
                .ok_or_else(|| Error::NoSuchVersion {
                    key: key.to_owned(),
                    version_id: id.to_owned(),
                })?;
            if version.record.is_delete_marker() {
                return Err(Error::MethodNotAllowed {
                    version_id: version.version_id(),
                    last_modified: system_time(version.record.last_modified_nanos),
                });
            }
            Ok(version)
        }
        None => {
            let version = store
                .current_version(bucket_id, key)?
                .ok_or_else(|| Error::no_such_key(key))?;
            if version.record.is_delete_marker() {
                return Err(Error::NoSuchKey {
                    key: key.to_owned(),
                    delete_marker: true,
                    version_id: Some(version.version_id()),
                });
            }
            Ok(version)
        }
    }
}

/// The shared part of GET and HEAD.
#[derive(Debug)]
struct ReadRequest {
    bucket: String,
    key: String,
    version_id: Option<String>,
    conditions: ReadConditions,
    selection: Selection,
}

struct Resolved {
    headers: HeadObjectOutput,
    object: ObjectRecord,
    range: (u64, u64),
}

impl ReadRequest {
    fn new(bucket: String, key: String) -> Self {
        Self {
            bucket,
            key,
            version_id: None,
            conditions: ReadConditions::default(),
            selection: Selection::default(),
        }
    }

    fn run(&self, store: &StoreInner) -> Result<Resolved> {
        let bucket = store.bucket(&self.bucket)?;
        let version = resolve(store, bucket.id, &self.key, self.version_id.as_deref())?;
        let Some(object) = version.record.object() else {
            return Err(Error::no_such_key(&self.key));
        };
        let last_modified = system_time(version.record.last_modified_nanos);
        self.conditions.check(object, last_modified)?;
        let (range, content_range) = self.selection.resolve(object)?;
        let attributes = &object.attributes;
        let headers = HeadObjectOutput {
            content_length: range.1 - range.0,
            content_range,
            e_tag: object.e_tag.clone(),
            version_id: match bucket.versioning {
                super::types::Versioning::Unversioned if version.record.id.is_none() => None,
                _ => Some(version.version_id()),
            },
            last_modified,
            content_type: attributes.content_type.clone(),
            content_encoding: attributes.content_encoding.clone(),
            content_disposition: attributes.content_disposition.clone(),
            cache_control: attributes.cache_control.clone(),
            metadata: attributes.metadata.iter().cloned().collect(),
            storage_class: attributes.storage_class,
            parts_count: (!object.part_sizes.is_empty()).then_some(object.part_sizes.len() as u32),
            tag_count: attributes.tags.len(),
            object_lock_mode: attributes.retention.map(|(mode, _)| mode),
            object_lock_retain_until_date: attributes
                .retention
                .map(|(_, until)| system_time(until)),
            object_lock_legal_hold: attributes.legal_hold,
            restore_expiry_date: object.restored_until.map(system_time),
        };
        Ok(Resolved {
            headers,
            object: object.clone(),
            range,
        })
    }
}

macro_rules! read_setters {
    () => {
        /// Reads this version instead of the current one.
        pub fn version_id(mut self, version_id: impl Into<String>) -> Self {
            self.request.version_id = Some(version_id.into());
            self
        }

        /// An HTTP range: `bytes=a-b`, `bytes=a-` or `bytes=-n` (suffix).
        pub fn range(mut self, range: impl Into<String>) -> Self {
            self.request.selection.range = Some(range.into());
            self
        }

        /// Reads one part of a multipart object (1-based).
        pub fn part_number(mut self, part_number: u32) -> Self {
            self.request.selection.part_number = Some(part_number);
            self
        }

        /// Fails with `PreconditionFailed` unless the ETag matches.
        pub fn if_match(mut self, e_tag: impl Into<String>) -> Self {
            self.request.conditions.if_match = Some(e_tag.into());
            self
        }

        /// Fails with `NotModified` if the ETag matches.
        pub fn if_none_match(mut self, e_tag: impl Into<String>) -> Self {
            self.request.conditions.if_none_match = Some(e_tag.into());
            self
        }

        /// Fails with `NotModified` unless modified after `time`.
        pub fn if_modified_since(mut self, time: SystemTime) -> Self {
            self.request.conditions.if_modified_since = Some(time);
            self
        }

        /// Fails with `PreconditionFailed` if modified after `time`.
        pub fn if_unmodified_since(mut self, time: SystemTime) -> Self {
            self.request.conditions.if_unmodified_since = Some(time);
            self
        }
    };
}

/// `head_object` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct HeadObject<'a> {
    store: &'a StoreInner,
    request: ReadRequest,
}

impl HeadObject<'_> {
    read_setters!();

    /// Reads the metadata.
    pub fn send(self) -> Result<HeadObjectOutput> {
        Ok(self.request.run(self.store)?.headers)
    }
}

/// `get_object` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct GetObject<'a> {
    store: &'a Arc<StoreInner>,
    request: ReadRequest,
}

impl GetObject<'_> {
    read_setters!();

    /// Reads the object. Archived objects (GLACIER, DEEP_ARCHIVE) must be
    /// restored first (`InvalidObjectState`).
    pub fn send(self) -> Result<GetObjectOutput> {
        let resolved = self.request.run(self.store)?;
        let object = &resolved.object;
        if object.attributes.storage_class.is_archive()
            && object
                .restored_until
                .is_none_or(|until| until <= self.store.now_nanos())
        {
            return Err(Error::InvalidObjectState {
                storage_class: object.attributes.storage_class.to_string(),
            });
        }
        let body = ObjectBody::new(Arc::clone(self.store), &object.body, resolved.range);
        let h = resolved.headers;
        Ok(GetObjectOutput {
            body,
            content_length: h.content_length,
            content_range: h.content_range,
            e_tag: h.e_tag,
            version_id: h.version_id,
            last_modified: h.last_modified,
            content_type: h.content_type,
            content_encoding: h.content_encoding,
            content_disposition: h.content_disposition,
            cache_control: h.cache_control,
            metadata: h.metadata,
            storage_class: h.storage_class,
            parts_count: h.parts_count,
            tag_count: h.tag_count,
            object_lock_mode: h.object_lock_mode,
            object_lock_retain_until_date: h.object_lock_retain_until_date,
            object_lock_legal_hold: h.object_lock_legal_hold,
            restore_expiry_date: h.restore_expiry_date,
        })
    }
}

/// An object's body, read lazily: each chunk is loaded and its BLAKE3
/// hash checked before any of its bytes are returned, so damaged data is
/// an error, never data. Implements [`std::io::Read`]; [`ObjectBody::next_bytes`]
/// hands out whole verified chunks without a copy.
pub struct ObjectBody {
    store: Option<Arc<StoreInner>>,
    tier: Tier,
    /// Chunks still to read, in reverse order (popped from the back).
    pending: Vec<ChunkRef>,
    /// Bytes to skip at the start of the next chunk.
    skip: usize,
    /// Bytes still to return.
    remaining: u64,
    current: Bytes,
}

impl std::fmt::Debug for ObjectBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectBody")
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

impl ObjectBody {
    pub(crate) fn new(store: Arc<StoreInner>, body: &Body, (start, end): (u64, u64)) -> Self {
        let remaining = end - start;
        match body {
            Body::Inline(bytes) => Self {
                store: None,
                tier: Tier::Hot,
                pending: Vec::new(),
                skip: 0,
                remaining,
                current: bytes.slice(start as usize..end as usize),
            },
            Body::Chunked(list) => {
                let mut pending = Vec::new();
                let mut offset = 0u64;
                let mut skip = 0usize;
                for chunk in &list.chunks {
                    let chunk_end = offset + u64::from(chunk.len);
                    if chunk_end > start && offset < end {
                        if pending.is_empty() {
                            skip = (start - offset) as usize;
                        }
                        pending.push(*chunk);
                    }
                    offset = chunk_end;
                }
                pending.reverse();
                Self {
                    store: Some(store),
                    tier: list.tier,
                    pending,
                    skip,
                    remaining,
                    current: Bytes::new(),
                }
            }
        }
    }

    /// The bytes not yet returned.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The next verified piece of the body (a whole chunk, or the part of
    /// it inside the range), or `None` at the end.
    pub fn next_bytes(&mut self) -> Option<Result<Bytes>> {
        if !self.current.is_empty() {
            let piece = std::mem::take(&mut self.current);
            self.remaining -= piece.len() as u64;
            return Some(Ok(piece));
        }
        if self.remaining == 0 {
            return None;
        }
        let chunk = self.pending.pop()?;
        let store = self.store.as_ref()?;
        match store
            .read_chunk(self.tier, &chunk.hash)
            .and_then(|stored| chunk.cut(&stored))
        {
            Ok(bytes) => {
                let start = std::mem::take(&mut self.skip).min(bytes.len());
                let take = (bytes.len() - start).min(self.remaining as usize);
                let piece = bytes.slice(start..start + take);
                self.remaining -= piece.len() as u64;
                Some(Ok(piece))
            }
            Err(error) => {
                self.pending.clear();
                self.remaining = 0;
                Some(Err(error))
            }
        }
    }

    /// Reads the whole (remaining) body into memory. Large bodies are read
    /// and verified by two threads, each filling its half of the buffer
    /// (hash checking, not copying, is the cost of a read from the page
    /// cache).
    pub fn collect(mut self) -> Result<Bytes> {
        if self.current.is_empty()
            && self.remaining >= PARALLEL_COLLECT_BYTES_MIN
            && self.pending.len() >= 2
            && let Some(store) = self.store.clone()
        {
            return self.collect_parallel(&store);
        }
        let first = match self.next_bytes() {
            None => return Ok(Bytes::new()),
            Some(first) => first?,
        };
        if self.remaining == 0 {
            return Ok(first);
        }
        let mut all = Vec::with_capacity(first.len() + self.remaining as usize);
        all.extend_from_slice(&first);
        while let Some(piece) = self.next_bytes() {
            all.extend_from_slice(&piece?);
        }
        Ok(Bytes::from(all))
    }
}

/// Bodies at least this large are collected by two threads.
const PARALLEL_COLLECT_BYTES_MIN: u64 = 4 << 20;

/// One chunk's share of a collected body.
struct Piece {
    chunk: ChunkRef,
    /// Where the share starts in the chunk.
    from: usize,
    len: usize,
}

impl ObjectBody {
    fn collect_parallel(mut self, store: &StoreInner) -> Result<Bytes> {
        let mut pieces = Vec::with_capacity(self.pending.len());
        let mut left = self.remaining as usize;
        let mut skip = std::mem::take(&mut self.skip);
        while let Some(chunk) = self.pending.pop() {
            let from = skip.min(chunk.len as usize);
            skip = 0;
            let len = (chunk.len as usize - from).min(left);
            left -= len;
            pieces.push(Piece { chunk, from, len });
        }
        let mut out = vec![0u8; self.remaining as usize];
        // Split at the piece where half the bytes are reached.
        let half = out.len() / 2;
        let mut split = 0;
        let mut bytes_before = 0;
        for piece in &pieces {
            if bytes_before >= half {
                break;
            }
            bytes_before += piece.len;
            split += 1;
        }
        let (first_pieces, second_pieces) = pieces.split_at(split);
        let (first_out, second_out) = out.split_at_mut(bytes_before);
        let tier = self.tier;
        let fill = |pieces: &[Piece], mut out: &mut [u8]| -> Result<()> {
            for piece in pieces {
                let bytes = piece
                    .chunk
                    .cut(&store.read_chunk(tier, &piece.chunk.hash)?)?;
                let source = bytes
                    .get(piece.from..piece.from + piece.len)
                    .ok_or_else(|| {
                        Error::corrupt_row("a stored chunk is shorter than its manifest says")
                    })?;
                let (target, rest) = out.split_at_mut(piece.len);
                target.copy_from_slice(source);
                out = rest;
            }
            Ok(())
        };
        std::thread::scope(|scope| {
            let second = scope.spawn(|| fill(second_pieces, second_out));
            let first = fill(first_pieces, first_out);
            let second = second
                .join()
                .unwrap_or_else(|_| Err(Error::Body("a reader thread panicked".into())));
            first.and(second)
        })?;
        self.remaining = 0;
        Ok(Bytes::from(out))
    }
}

impl std::io::Read for ObjectBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.current.is_empty() {
            match self.next_bytes() {
                None => return Ok(0),
                Some(Ok(piece)) => {
                    // next_bytes counted the whole piece as returned; give
                    // back what this call does not copy out.
                    self.remaining += piece.len() as u64;
                    self.current = piece;
                }
                Some(Err(error)) => return Err(std::io::Error::other(error)),
            }
        }
        let len = buf.len().min(self.current.len());
        buf[..len].copy_from_slice(&self.current[..len]);
        let _ = self.current.split_to(len);
        self.remaining -= len as u64;
        Ok(len)
    }
}

impl StoreInner {
    /// The location of a chunk, or `Corruption` if the catalogue lost it.
    pub(crate) fn chunk_location(&self, tier: Tier, hash: &ChunkHash) -> Result<ChunkLocation> {
        match self.engine.get(&keys::chunk(tier, hash))? {
            Some(bytes) => ChunkLocation::decode(&bytes),
            None => Err(Error::corrupt_row(format!(
                "chunk {} is referenced but not stored",
                super::ingest::hex(hash)
            ))),
        }
    }

    /// A chunk's verified bytes.
    pub(crate) fn read_chunk(&self, tier: Tier, hash: &ChunkHash) -> Result<Bytes> {
        let location = self.chunk_location(tier, hash)?;
        match self.packs.read(&location, hash) {
            // A pack rewrite may have moved the chunk since its location
            // was read: look it up once more.
            Err(Error::Storage(_)) => {
                let moved = self.chunk_location(tier, hash)?;
                self.packs.read(&moved, hash)
            }
            other => other,
        }
    }
}

impl<'a> Objects<'a> {
    /// Reads an object (or one version, a range, a part).
    pub fn get_object(&self, bucket: impl Into<String>, key: impl Into<String>) -> GetObject<'a> {
        GetObject {
            store: self.store,
            request: ReadRequest::new(bucket.into(), key.into()),
        }
    }

    /// Reads an object's metadata.
    pub fn head_object(&self, bucket: impl Into<String>, key: impl Into<String>) -> HeadObject<'a> {
        HeadObject {
            store: self.store,
            request: ReadRequest::new(bucket.into(), key.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_http() {
        assert_eq!(parse_range("bytes=0-9", 100).unwrap(), (0, 10));
        assert_eq!(parse_range("bytes=90-", 100).unwrap(), (90, 100));
        assert_eq!(parse_range("bytes=-10", 100).unwrap(), (90, 100));
        assert_eq!(parse_range("bytes=-500", 100).unwrap(), (0, 100));
        assert_eq!(parse_range("bytes=50-500", 100).unwrap(), (50, 100));
        assert!(matches!(
            parse_range("bytes=100-", 100),
            Err(Error::InvalidRange { .. })
        ));
        assert!(matches!(
            parse_range("bytes=-0", 100),
            Err(Error::InvalidRange { .. })
        ));
        assert!(matches!(
            parse_range("bytes=0-0", 0),
            Err(Error::InvalidRange { .. })
        ));
        for bad in ["0-9", "bytes=a-b", "bytes=5-3", "bytes=-", "bytes=1-2,4-5"] {
            assert!(
                matches!(parse_range(bad, 100), Err(Error::InvalidArgument(_))),
                "{bad}"
            );
        }
    }
}
