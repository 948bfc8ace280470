//! The catalogue's row values: buckets, key heads, versions (the object
//! manifest: metadata plus inline body or chunk list), uploads, parts and
//! chunk locations, with their encoders and checked decoders.
//!
//! Every value starts with a format byte so a later release can change a
//! layout without guessing. Decoders validate every length and cross-check
//! sizes (chunk lengths add up to the object size), so a damaged row is
//! `Corruption`, never a panic; `fuzz/fuzz_targets/objects_manifest.rs`
//! holds them to it.

use bytes::Bytes;

use super::codec::{Reader, Writer};
use super::error::{Error, Result};
use super::keys::ChunkHash;
use super::limits::{CHUNK_BYTES_LIMIT_MAX, CHUNKS_PER_OBJECT_MAX, PART_NUMBER_MAX};
use super::types::{
    DefaultRetention, ObjectLockMode, RetentionPeriod, StorageClass, Tier, Versioning,
};

const FORMAT: u8 = 1;

fn check_format(reader: &mut Reader<'_>, what: &str) -> Result<()> {
    match reader.u8()? {
        FORMAT => Ok(()),
        other => Err(Error::corrupt_row(format!(
            "{what}: unknown format {other}"
        ))),
    }
}

/// A bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BucketRecord {
    /// The id its rows are stored under (never reused, so a deleted
    /// bucket's leftovers can never appear in a new one of the same name).
    pub(crate) id: u64,
    pub(crate) created_nanos: u64,
    pub(crate) versioning: Versioning,
    pub(crate) object_lock: bool,
    pub(crate) default_retention: Option<DefaultRetention>,
    /// ETags are S3-style MD5s instead of BLAKE3 content hashes.
    pub(crate) md5_etags: bool,
}

impl BucketRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(32);
        w.u8(FORMAT)
            .varint(self.id)
            .varint(self.created_nanos)
            .u8(self.versioning as u8)
            .bool(self.object_lock)
            .bool(self.md5_etags);
        match self.default_retention {
            None => w.u8(0),
            Some(DefaultRetention { mode, period }) => {
                let (kind, amount) = match period {
                    RetentionPeriod::Days(days) => (1, days),
                    RetentionPeriod::Years(years) => (2, years),
                };
                w.u8(kind).u8(mode.to_byte()).varint(u64::from(amount))
            }
        };
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "bucket record");
        check_format(&mut r, "bucket record")?;
        let id = r.varint()?;
        let created_nanos = r.varint()?;
        let versioning = Versioning::from_byte(r.u8()?)
            .ok_or_else(|| Error::corrupt_row("bucket record: unknown versioning state"))?;
        let object_lock = r.bool()?;
        let md5_etags = r.bool()?;
        let default_retention = match r.u8()? {
            0 => None,
            kind @ (1 | 2) => {
                let mode = ObjectLockMode::from_byte(r.u8()?)
                    .ok_or_else(|| Error::corrupt_row("bucket record: unknown lock mode"))?;
                let amount = u32::try_from(r.varint()?)
                    .map_err(|_| Error::corrupt_row("bucket record: retention out of range"))?;
                let period = if kind == 1 {
                    RetentionPeriod::Days(amount)
                } else {
                    RetentionPeriod::Years(amount)
                };
                Some(DefaultRetention { mode, period })
            }
            _ => return Err(Error::corrupt_row("bucket record: unknown retention kind")),
        };
        r.finish()?;
        Ok(Self {
            id,
            created_nanos,
            versioning,
            object_lock,
            default_retention,
            md5_etags,
        })
    }
}

/// Per-key bookkeeping: the next sequence number, where the null version
/// is (S3 keeps at most one null version per key) and how many versions
/// the key has (the head row goes when the last version does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct KeyHead {
    pub(crate) next_seq: u64,
    pub(crate) null_seq: Option<u64>,
    pub(crate) count: u64,
}

impl KeyHead {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(16);
        w.u8(FORMAT)
            .varint(self.next_seq)
            .opt_varint(self.null_seq)
            .varint(self.count);
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "key head");
        check_format(&mut r, "key head")?;
        let head = Self {
            next_seq: r.varint()?,
            null_seq: r.opt_varint()?,
            count: r.varint()?,
        };
        r.finish()?;
        Ok(head)
    }
}

/// One piece of a body: `len` bytes of the stored chunk `hash`, starting
/// `offset` bytes into it. Most pieces are whole chunks (offset 0, the
/// chunk's length); a version stored as its difference from the previous
/// one also names parts of that version's chunks (see `delta.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkRef {
    pub(crate) hash: ChunkHash,
    pub(crate) offset: u32,
    pub(crate) len: u32,
}

impl ChunkRef {
    /// A whole stored chunk of `len` bytes.
    pub(crate) fn whole(hash: ChunkHash, len: u32) -> Self {
        Self {
            hash,
            offset: 0,
            len,
        }
    }

    /// This piece's bytes out of its stored chunk's verified bytes, or
    /// `Corruption` if the chunk is shorter than the manifest says.
    pub(crate) fn cut(&self, chunk: &Bytes) -> Result<Bytes> {
        let start = self.offset as usize;
        let end = start + self.len as usize;
        if end > chunk.len() {
            return Err(Error::corrupt_row(
                "a stored chunk is shorter than its manifest says",
            ));
        }
        Ok(chunk.slice(start..end))
    }
}

/// A body stored in pack files: the chunk list, the tier its chunks live
/// in, and the unique id its reference rows are stored under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChunkList {
    pub(crate) body_id: [u8; 16],
    pub(crate) tier: Tier,
    pub(crate) chunks: Vec<ChunkRef>,
}

impl ChunkList {
    pub(crate) fn total_len(&self) -> u64 {
        self.chunks.iter().map(|chunk| u64::from(chunk.len)).sum()
    }

    /// How often each distinct chunk occurs, in first-occurrence order.
    pub(crate) fn reference_counts(&self) -> Vec<(ChunkHash, u32)> {
        let mut counts: Vec<(ChunkHash, u32)> = Vec::new();
        let mut index: std::collections::HashMap<ChunkHash, usize> =
            std::collections::HashMap::new();
        for chunk in &self.chunks {
            match index.get(&chunk.hash) {
                Some(&at) => counts[at].1 += 1,
                None => {
                    index.insert(chunk.hash, counts.len());
                    counts.push((chunk.hash, 1));
                }
            }
        }
        counts
    }
}

/// Where a body's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// In the row itself (tiny objects).
    Inline(Bytes),
    /// In pack files, by chunk.
    Chunked(ChunkList),
}

impl Body {
    pub(crate) fn len(&self) -> u64 {
        match self {
            Self::Inline(bytes) => bytes.len() as u64,
            Self::Chunked(list) => list.total_len(),
        }
    }

    pub(crate) fn chunk_list(&self) -> Option<&ChunkList> {
        match self {
            Self::Inline(_) => None,
            Self::Chunked(list) => Some(list),
        }
    }

    fn encode(&self, w: &mut Writer) {
        match self {
            Self::Inline(bytes) => {
                w.u8(0).bytes(bytes);
            }
            Self::Chunked(list) => {
                // Kind 1 (whole chunks only) keeps the rows of bodies
                // without pieces readable by releases before kind 2.
                let pieces = list.chunks.iter().any(|chunk| chunk.offset != 0);
                w.u8(if pieces { 2 } else { 1 })
                    .raw(&list.body_id)
                    .u8(list.tier as u8)
                    .varint(list.chunks.len() as u64);
                for chunk in &list.chunks {
                    w.raw(&chunk.hash).varint(u64::from(chunk.len));
                    if pieces {
                        w.varint(u64::from(chunk.offset));
                    }
                }
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        match r.u8()? {
            0 => Ok(Self::Inline(Bytes::copy_from_slice(r.bytes()?))),
            kind @ (1 | 2) => {
                let body_id = r.array::<16>()?;
                let tier = Tier::from_byte(r.u8()?)
                    .ok_or_else(|| Error::corrupt_row("manifest: unknown tier"))?;
                // Each chunk takes at least 33 bytes, which bounds the count.
                let count = r.len(CHUNKS_PER_OBJECT_MAX.min(r.remaining() / 33))?;
                let mut chunks = Vec::with_capacity(count);
                for _ in 0..count {
                    let hash = r.array::<32>()?;
                    let len = r.len(CHUNK_BYTES_LIMIT_MAX)?;
                    if len == 0 {
                        return Err(Error::corrupt_row("manifest: an empty chunk"));
                    }
                    let offset = if kind == 2 {
                        r.len(CHUNK_BYTES_LIMIT_MAX - len)?
                    } else {
                        0
                    };
                    chunks.push(ChunkRef {
                        hash,
                        offset: offset as u32,
                        len: len as u32,
                    });
                }
                if kind == 2 && chunks.iter().all(|chunk| chunk.offset == 0) {
                    // Kind 2 is written only for bodies with pieces: one
                    // encoding per body.
                    return Err(Error::corrupt_row("manifest: a piece list without pieces"));
                }
                Ok(Self::Chunked(ChunkList {
                    body_id,
                    tier,
                    chunks,
                }))
            }
            _ => Err(Error::corrupt_row("manifest: unknown body kind")),
        }
    }
}

/// What a writer sets on an object besides its body (shared by PUT,
/// multipart uploads and copies).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ObjectAttributes {
    pub(crate) content_type: Option<String>,
    pub(crate) content_encoding: Option<String>,
    pub(crate) content_disposition: Option<String>,
    pub(crate) cache_control: Option<String>,
    pub(crate) metadata: Vec<(String, String)>,
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) storage_class: StorageClass,
    /// Retention mode and until-time (nanoseconds since the epoch).
    pub(crate) retention: Option<(ObjectLockMode, u64)>,
    pub(crate) legal_hold: bool,
}

impl ObjectAttributes {
    fn encode(&self, w: &mut Writer) {
        w.opt_str(self.content_type.as_deref())
            .opt_str(self.content_encoding.as_deref())
            .opt_str(self.content_disposition.as_deref())
            .opt_str(self.cache_control.as_deref())
            .pairs(&self.metadata)
            .pairs(&self.tags)
            .u8(self.storage_class.to_byte());
        match self.retention {
            None => w.u8(0),
            Some((mode, until)) => w.u8(mode.to_byte()).varint(until),
        };
        w.bool(self.legal_hold);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let content_type = r.opt_string()?;
        let content_encoding = r.opt_string()?;
        let content_disposition = r.opt_string()?;
        let cache_control = r.opt_string()?;
        let metadata = r.pairs()?;
        let tags = r.pairs()?;
        let storage_class = StorageClass::from_byte(r.u8()?)
            .ok_or_else(|| Error::corrupt_row("manifest: unknown storage class"))?;
        let retention = match r.u8()? {
            0 => None,
            byte => {
                let mode = ObjectLockMode::from_byte(byte)
                    .ok_or_else(|| Error::corrupt_row("manifest: unknown lock mode"))?;
                Some((mode, r.varint()?))
            }
        };
        let legal_hold = r.bool()?;
        Ok(Self {
            content_type,
            content_encoding,
            content_disposition,
            cache_control,
            metadata,
            tags,
            storage_class,
            retention,
            legal_hold,
        })
    }
}

/// An object version's data (not a delete marker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectRecord {
    pub(crate) size: u64,
    pub(crate) e_tag: String,
    pub(crate) attributes: ObjectAttributes,
    /// Until when an archived object is readable (restore), in nanoseconds.
    pub(crate) restored_until: Option<u64>,
    /// The part sizes of a multipart object, in part order (empty for a
    /// single PUT).
    pub(crate) part_sizes: Vec<u64>,
    pub(crate) body: Body,
}

/// A version: an object or a delete marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VersionKind {
    DeleteMarker,
    Object(Box<ObjectRecord>),
}

/// One version row (the "object manifest").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VersionRecord {
    /// The random half of the version id; `None` for the null version.
    pub(crate) id: Option<[u8; 8]>,
    pub(crate) last_modified_nanos: u64,
    pub(crate) kind: VersionKind,
}

impl VersionRecord {
    pub(crate) fn object(&self) -> Option<&ObjectRecord> {
        match &self.kind {
            VersionKind::Object(object) => Some(object),
            VersionKind::DeleteMarker => None,
        }
    }

    pub(crate) fn is_delete_marker(&self) -> bool {
        matches!(self.kind, VersionKind::DeleteMarker)
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let capacity = match &self.kind {
            VersionKind::Object(object) => match &object.body {
                Body::Inline(bytes) => 96 + bytes.len(),
                Body::Chunked(list) => 96 + 36 * list.chunks.len(),
            },
            VersionKind::DeleteMarker => 24,
        };
        let mut w = Writer::with_capacity(capacity);
        let marker = self.is_delete_marker();
        w.u8(FORMAT)
            .u8(u8::from(marker) | (u8::from(self.id.is_some()) << 1));
        if let Some(id) = &self.id {
            w.raw(id);
        }
        w.varint(self.last_modified_nanos);
        if let VersionKind::Object(object) = &self.kind {
            w.varint(object.size).str(&object.e_tag);
            object.attributes.encode(&mut w);
            w.opt_varint(object.restored_until)
                .varint(object.part_sizes.len() as u64);
            for size in &object.part_sizes {
                w.varint(*size);
            }
            object.body.encode(&mut w);
        }
        w.finish()
    }

    /// Decodes a version row, checking that its sizes agree.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "manifest");
        check_format(&mut r, "manifest")?;
        let flags = r.u8()?;
        if flags > 3 {
            return Err(Error::corrupt_row("manifest: unknown flags"));
        }
        let id = if flags & 2 != 0 {
            Some(r.array::<8>()?)
        } else {
            None
        };
        let last_modified_nanos = r.varint()?;
        let kind = if flags & 1 != 0 {
            VersionKind::DeleteMarker
        } else {
            let size = r.varint()?;
            let e_tag = r.string()?;
            let attributes = ObjectAttributes::decode(&mut r)?;
            let restored_until = r.opt_varint()?;
            let parts = r.len((PART_NUMBER_MAX as usize).min(r.remaining()))?;
            let mut part_sizes = Vec::with_capacity(parts);
            for _ in 0..parts {
                part_sizes.push(r.varint()?);
            }
            let body = Body::decode(&mut r)?;
            if body.len() != size {
                return Err(Error::corrupt_row(
                    "manifest: the body length differs from the size",
                ));
            }
            if !part_sizes.is_empty()
                && part_sizes
                    .iter()
                    .try_fold(0u64, |sum, part| sum.checked_add(*part))
                    != Some(size)
            {
                return Err(Error::corrupt_row(
                    "manifest: the part sizes differ from the size",
                ));
            }
            VersionKind::Object(Box::new(ObjectRecord {
                size,
                e_tag,
                attributes,
                restored_until,
                part_sizes,
                body,
            }))
        };
        r.finish()?;
        Ok(Self {
            id,
            last_modified_nanos,
            kind,
        })
    }
}

/// An in-progress multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UploadRecord {
    pub(crate) initiated_nanos: u64,
    pub(crate) attributes: ObjectAttributes,
}

impl UploadRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64);
        w.u8(FORMAT).varint(self.initiated_nanos);
        self.attributes.encode(&mut w);
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "upload record");
        check_format(&mut r, "upload record")?;
        let record = Self {
            initiated_nanos: r.varint()?,
            attributes: ObjectAttributes::decode(&mut r)?,
        };
        r.finish()?;
        Ok(record)
    }
}

/// One uploaded part. Parts are always chunked (never inline), so that
/// completing an upload only concatenates chunk lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartRecord {
    pub(crate) last_modified_nanos: u64,
    pub(crate) e_tag: String,
    /// The part's MD5, kept for the multipart `md5(part md5s)-N` ETag.
    pub(crate) md5: Option<[u8; 16]>,
    pub(crate) chunks: ChunkList,
}

impl PartRecord {
    pub(crate) fn size(&self) -> u64 {
        self.chunks.total_len()
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64 + 36 * self.chunks.chunks.len());
        w.u8(FORMAT)
            .varint(self.last_modified_nanos)
            .str(&self.e_tag);
        match &self.md5 {
            Some(md5) => w.u8(1).raw(md5),
            None => w.u8(0),
        };
        Body::Chunked(self.chunks.clone()).encode(&mut w);
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "part record");
        check_format(&mut r, "part record")?;
        let last_modified_nanos = r.varint()?;
        let e_tag = r.string()?;
        let md5 = match r.bool()? {
            true => Some(r.array::<16>()?),
            false => None,
        };
        let chunks = match Body::decode(&mut r)? {
            Body::Chunked(list) => list,
            Body::Inline(_) => return Err(Error::corrupt_row("part record: an inline body")),
        };
        r.finish()?;
        Ok(Self {
            last_modified_nanos,
            e_tag,
            md5,
            chunks,
        })
    }
}

/// How a chunk is stored in its pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    Raw = 0,
    Lz4 = 1,
}

/// Where a chunk lives: pack, offset of its entry header, stored and raw
/// lengths, codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkLocation {
    pub(crate) pack: u64,
    pub(crate) offset: u64,
    pub(crate) stored_len: u32,
    pub(crate) raw_len: u32,
    pub(crate) codec: Codec,
}

impl ChunkLocation {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(24);
        w.u8(FORMAT)
            .varint(self.pack)
            .varint(self.offset)
            .varint(u64::from(self.stored_len))
            .varint(u64::from(self.raw_len))
            .u8(self.codec as u8);
        w.finish()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "chunk location");
        check_format(&mut r, "chunk location")?;
        let pack = r.varint()?;
        let offset = r.varint()?;
        let stored_len = r.len(CHUNK_BYTES_LIMIT_MAX + CHUNK_BYTES_LIMIT_MAX / 8)? as u32;
        let raw_len = r.len(CHUNK_BYTES_LIMIT_MAX)? as u32;
        let codec = match r.u8()? {
            0 => Codec::Raw,
            1 => Codec::Lz4,
            _ => return Err(Error::corrupt_row("chunk location: unknown codec")),
        };
        r.finish()?;
        Ok(Self {
            pack,
            offset,
            stored_len,
            raw_len,
            codec,
        })
    }
}

/// The value of a reference row: how often the body uses the chunk.
pub(crate) fn encode_ref_count(count: u32) -> Vec<u8> {
    let mut w = Writer::with_capacity(6);
    w.u8(FORMAT).varint(u64::from(count));
    w.finish()
}

pub(crate) fn decode_ref_count(bytes: &[u8]) -> Result<u32> {
    let mut r = Reader::new(bytes, "chunk reference");
    check_format(&mut r, "chunk reference")?;
    let count = u32::try_from(r.varint()?)
        .map_err(|_| Error::corrupt_row("chunk reference: count out of range"))?;
    r.finish()?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_object(body: Body) -> VersionRecord {
        VersionRecord {
            id: Some([1; 8]),
            last_modified_nanos: 123,
            kind: VersionKind::Object(Box::new(ObjectRecord {
                size: body.len(),
                e_tag: "abc".into(),
                attributes: ObjectAttributes {
                    content_type: Some("text/plain".into()),
                    metadata: vec![("k".into(), "v".into())],
                    tags: vec![("t".into(), "u".into())],
                    storage_class: StorageClass::Glacier,
                    retention: Some((ObjectLockMode::Compliance, 99)),
                    legal_hold: true,
                    ..ObjectAttributes::default()
                },
                restored_until: Some(5),
                part_sizes: vec![],
                body,
            })),
        }
    }

    #[test]
    fn versions_round_trip() {
        let inline = sample_object(Body::Inline(Bytes::from_static(b"hello")));
        assert_eq!(VersionRecord::decode(&inline.encode()).unwrap(), inline);
        let chunked = sample_object(Body::Chunked(ChunkList {
            body_id: [3; 16],
            tier: Tier::Cold,
            chunks: vec![ChunkRef::whole([4; 32], 10), ChunkRef::whole([5; 32], 7)],
        }));
        let encoded = chunked.encode();
        assert_eq!(VersionRecord::decode(&encoded).unwrap(), chunked);
        // Pieces of chunks (a body stored as a difference) use body kind 2;
        // whole chunks keep kind 1, so older rows and readers still agree.
        let pieces = sample_object(Body::Chunked(ChunkList {
            body_id: [3; 16],
            tier: Tier::Hot,
            chunks: vec![
                ChunkRef::whole([4; 32], 10),
                ChunkRef {
                    hash: [5; 32],
                    offset: 3,
                    len: 4,
                },
            ],
        }));
        let encoded_pieces = pieces.encode();
        assert_eq!(VersionRecord::decode(&encoded_pieces).unwrap(), pieces);
        assert_eq!(
            encoded_pieces.len(),
            encoded.len() + 2,
            "one offset byte each"
        );
        let marker = VersionRecord {
            id: None,
            last_modified_nanos: 9,
            kind: VersionKind::DeleteMarker,
        };
        assert_eq!(VersionRecord::decode(&marker.encode()).unwrap(), marker);
    }

    #[test]
    fn every_truncation_of_a_manifest_is_an_error() {
        let record = sample_object(Body::Chunked(ChunkList {
            body_id: [3; 16],
            tier: Tier::Hot,
            chunks: vec![ChunkRef {
                hash: [4; 32],
                offset: 1,
                len: 10,
            }],
        }));
        let bytes = record.encode();
        for len in 0..bytes.len() {
            assert!(VersionRecord::decode(&bytes[..len]).is_err(), "{len}");
        }
    }

    #[test]
    fn inconsistent_sizes_are_corruption() {
        let mut record = sample_object(Body::Inline(Bytes::from_static(b"hello")));
        if let VersionKind::Object(object) = &mut record.kind {
            object.size = 6;
        }
        assert!(VersionRecord::decode(&record.encode()).is_err());
    }

    #[test]
    fn other_records_round_trip() {
        let bucket = BucketRecord {
            id: 7,
            created_nanos: 1,
            versioning: Versioning::Suspended,
            object_lock: true,
            default_retention: Some(DefaultRetention {
                mode: ObjectLockMode::Governance,
                period: RetentionPeriod::Years(2),
            }),
            md5_etags: true,
        };
        assert_eq!(BucketRecord::decode(&bucket.encode()).unwrap(), bucket);
        let head = KeyHead {
            next_seq: 5,
            null_seq: Some(2),
            count: 3,
        };
        assert_eq!(KeyHead::decode(&head.encode()).unwrap(), head);
        let part = PartRecord {
            last_modified_nanos: 1,
            e_tag: "e".into(),
            md5: Some([2; 16]),
            chunks: ChunkList {
                body_id: [1; 16],
                tier: Tier::Hot,
                chunks: vec![ChunkRef::whole([0; 32], 3)],
            },
        };
        assert_eq!(PartRecord::decode(&part.encode()).unwrap(), part);
        let location = ChunkLocation {
            pack: 3,
            offset: 16,
            stored_len: 10,
            raw_len: 20,
            codec: Codec::Lz4,
        };
        assert_eq!(ChunkLocation::decode(&location.encode()).unwrap(), location);
        assert_eq!(decode_ref_count(&encode_ref_count(3)).unwrap(), 3);
    }
}
