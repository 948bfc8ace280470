//! Multipart upload: create, upload parts (any order, 1..=10,000, a
//! re-upload replaces), abort, and complete (listing is in
//! `multipart_list`).
//!
//! Parts are stored as chunk lists like any body; completing an upload
//! validates the list (InvalidPart, InvalidPartOrder, EntityTooSmall) and
//! concatenates the parts' chunk lists into the new version's manifest in
//! one batch, moving the references from the parts to the version. No body
//! byte is copied. Every change to an upload runs under its key's lock, so
//! a part upload racing an abort either lands before it (and is freed with
//! it) or fails with `NoSuchUpload`.

use md5::{Digest, Md5};

use super::Objects;
use super::error::{Error, Result};
use super::events::EventType;
use super::ingest::{ByteStream, IngestPlan, hex};
use super::keys;
use super::limits::{PART_BYTES_MAX, PART_NUMBER_MAX};
use super::lock::{LockRequest, resolve_new_lock};
use super::names::{normalize_metadata, validate_key, validate_tags};
use super::put::{WriteConditions, e_tag_matches};
use super::record::{
    BucketRecord, ChunkList, ObjectAttributes, ObjectRecord, PartRecord, UploadRecord,
};
use super::store::StoreInner;
use super::types::StorageClass;
use super::versions::KeyChange;
use crate::storage::{Direction, WriteBatch};

pub(crate) fn parse_upload_id(text: &str) -> Result<[u8; 16]> {
    let invalid = || Error::NoSuchUpload {
        upload_id: text.to_owned(),
    };
    if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    let mut id = [0u8; 16];
    for (index, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * index..2 * index + 2], 16).map_err(|_| invalid())?;
    }
    Ok(id)
}

impl StoreInner {
    /// The upload row, or `NoSuchUpload`.
    pub(crate) fn upload(
        &self,
        bucket: &BucketRecord,
        key: &str,
        upload_id: &str,
    ) -> Result<([u8; 16], UploadRecord)> {
        let id = parse_upload_id(upload_id)?;
        match self.engine.get(&keys::upload(bucket.id, key, &id))? {
            Some(bytes) => Ok((id, UploadRecord::decode(&bytes)?)),
            None => Err(Error::NoSuchUpload {
                upload_id: upload_id.to_owned(),
            }),
        }
    }

    /// Every part of an upload, by part number.
    pub(crate) fn parts(&self, upload_id: &[u8; 16]) -> Result<Vec<(u32, PartRecord)>> {
        let mut parts = Vec::new();
        for row in
            self.engine
                .prefix(&keys::parts_of_upload(upload_id), Direction::Forward, None)?
        {
            let (key, value) = row?;
            parts.push((keys::parse_part(&key)?, PartRecord::decode(&value)?));
        }
        Ok(parts)
    }
}

/// `create_multipart_upload` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct CreateMultipartUpload<'a> {
    store: &'a StoreInner,
    bucket: String,
    key: String,
    attributes: ObjectAttributes,
    metadata: Vec<(String, String)>,
    lock: LockRequest,
}

/// `create_multipart_upload` response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreateMultipartUploadOutput {
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// The id that names the upload in later calls.
    pub upload_id: String,
}

impl CreateMultipartUpload<'_> {
    /// The `Content-Type` of the object.
    pub fn content_type(mut self, value: impl Into<String>) -> Self {
        self.attributes.content_type = Some(value.into());
        self
    }

    /// Adds a user metadata entry.
    pub fn metadata(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((name.into(), value.into()));
        self
    }

    /// Adds a tag.
    pub fn tagging(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.tags.push((key.into(), value.into()));
        self
    }

    /// The storage class of the object (and of its parts' chunks).
    pub fn storage_class(mut self, class: StorageClass) -> Self {
        self.attributes.storage_class = class;
        self
    }

    super::lock::lock_setters!();

    /// Starts the upload.
    pub fn send(self) -> Result<CreateMultipartUploadOutput> {
        validate_key(&self.key)?;
        validate_tags(&self.attributes.tags)?;
        self.attributes.storage_class.tier()?;
        let mut attributes = self.attributes;
        attributes.metadata = normalize_metadata(self.metadata)?;
        let store = self.store;
        let _gate = store.gate.read();
        let bucket = store.bucket(&self.bucket)?;
        let now = store.now_nanos();
        (attributes.retention, attributes.legal_hold) = resolve_new_lock(&bucket, &self.lock, now)?;
        // Time first, so uploads of one key list in initiation order.
        let mut id = store.new_id16();
        id[..8].copy_from_slice(&now.to_be_bytes());
        let record = UploadRecord {
            initiated_nanos: now,
            attributes,
        };
        store
            .engine
            .put(&keys::upload(bucket.id, &self.key, &id), &record.encode())?;
        Ok(CreateMultipartUploadOutput {
            bucket: self.bucket,
            key: self.key,
            upload_id: hex(&id),
        })
    }
}

/// `upload_part` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct UploadPart<'a> {
    store: &'a StoreInner,
    bucket: String,
    key: String,
    upload_id: Option<String>,
    part_number: Option<u32>,
    body: ByteStream,
}

/// `upload_part` response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadPartOutput {
    /// The part's ETag, to list in `complete_multipart_upload`.
    pub e_tag: String,
}

impl UploadPart<'_> {
    /// The upload (required).
    pub fn upload_id(mut self, upload_id: impl Into<String>) -> Self {
        self.upload_id = Some(upload_id.into());
        self
    }

    /// The part number, 1 to 10,000 (required).
    pub fn part_number(mut self, part_number: u32) -> Self {
        self.part_number = Some(part_number);
        self
    }

    /// The part's bytes.
    pub fn body(mut self, body: impl Into<ByteStream>) -> Self {
        self.body = body.into();
        self
    }

    /// Stores the part (replacing an earlier upload of the same number).
    pub fn send(self) -> Result<UploadPartOutput> {
        let upload_id = self
            .upload_id
            .ok_or_else(|| Error::InvalidArgument("upload_part needs an upload id".into()))?;
        let part_number = self.part_number.unwrap_or(0);
        if !(1..=PART_NUMBER_MAX).contains(&part_number) {
            return Err(Error::InvalidArgument(format!(
                "part numbers run from 1 to {PART_NUMBER_MAX}, not {part_number}"
            )));
        }
        let store = self.store;
        let _gate = store.gate.read();
        let bucket = store.bucket(&self.bucket)?;
        let (id, upload) = store.upload(&bucket, &self.key, &upload_id)?;
        let ingested = store.ingest(
            self.body,
            IngestPlan {
                tier: upload.attributes.storage_class.tier()?,
                allow_inline: false,
                want_md5: bucket.md5_etags,
                max_bytes: PART_BYTES_MAX,
                base: None,
            },
        )?;
        store.sync_ingested(&ingested)?;
        let e_tag = ingested.e_tag(bucket.md5_etags);
        let Some(chunks) = ingested.body.chunk_list().cloned() else {
            return Err(Error::corrupt_row("a part was stored inline"));
        };
        let part = PartRecord {
            last_modified_nanos: store.now_nanos(),
            e_tag: e_tag.clone(),
            md5: ingested.md5,
            chunks,
        };
        let _key_lock = store.lock_key(bucket.id, &self.key);
        // The upload may have been aborted or completed meanwhile.
        store.upload(&bucket, &self.key, &upload_id)?;
        let mut batch = WriteBatch::new();
        let part_key = keys::part(&id, part_number);
        if let Some(old) = store.engine.get(&part_key)? {
            store.release_refs(
                &mut batch,
                &PartRecord::decode(&old)?.chunks,
                part.last_modified_nanos,
            );
        }
        store.add_locations(&mut batch, part.chunks.tier, &ingested.new_locations);
        store.add_refs(&mut batch, &part.chunks);
        batch.put(&part_key, &part.encode());
        store.engine.write(batch)?;
        Ok(UploadPartOutput { e_tag })
    }
}

/// One part named in `complete_multipart_upload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    /// The part number.
    pub part_number: u32,
    /// The ETag `upload_part` returned.
    pub e_tag: String,
}

impl CompletedPart {
    /// A part by number and ETag.
    pub fn new(part_number: u32, e_tag: impl Into<String>) -> Self {
        Self {
            part_number,
            e_tag: e_tag.into(),
        }
    }
}

/// `complete_multipart_upload` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct CompleteMultipartUpload<'a> {
    store: &'a StoreInner,
    bucket: String,
    key: String,
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
    conditions: WriteConditions,
}

/// `complete_multipart_upload` response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompleteMultipartUploadOutput {
    /// The object's ETag (`…-N` for N parts).
    pub e_tag: String,
    /// The new version's id.
    pub version_id: Option<String>,
    /// The object's size.
    pub size: u64,
}

impl CompleteMultipartUpload<'_> {
    /// The upload (required).
    pub fn upload_id(mut self, upload_id: impl Into<String>) -> Self {
        self.upload_id = Some(upload_id.into());
        self
    }

    /// Adds a part to the object, in ascending part-number order.
    pub fn part(mut self, part: CompletedPart) -> Self {
        self.parts.push(part);
        self
    }

    /// Adds parts to the object, in ascending part-number order.
    pub fn parts(mut self, parts: impl IntoIterator<Item = CompletedPart>) -> Self {
        self.parts.extend(parts);
        self
    }

    /// `"*"`: complete only if the key has no current object.
    pub fn if_none_match(mut self, value: impl Into<String>) -> Self {
        self.conditions.if_none_match = Some(value.into());
        self
    }

    /// Complete only if the current object has this ETag.
    pub fn if_match(mut self, e_tag: impl Into<String>) -> Self {
        self.conditions.if_match = Some(e_tag.into());
        self
    }

    /// Validates the part list and commits the object.
    pub fn send(self) -> Result<CompleteMultipartUploadOutput> {
        self.conditions.validate()?;
        let upload_id = self
            .upload_id
            .ok_or_else(|| Error::InvalidArgument("complete needs an upload id".into()))?;
        if self.parts.is_empty() {
            return Err(Error::InvalidRequest("the part list is empty".into()));
        }
        if self
            .parts
            .windows(2)
            .any(|pair| pair[0].part_number >= pair[1].part_number)
        {
            return Err(Error::InvalidPartOrder);
        }
        let store = self.store;
        let _gate = store.gate.read();
        let bucket = store.bucket(&self.bucket)?;
        let _key_lock = store.lock_key(bucket.id, &self.key);
        let (id, upload) = store.upload(&bucket, &self.key, &upload_id)?;
        let stored = store.parts(&id)?;
        let chosen = select_parts(&stored, &self.parts, store.options().min_part_bytes)?;
        let mut change = KeyChange::load(store, &bucket, &self.bucket, &self.key)?;
        self.conditions
            .check(&self.key, change.current()?.as_ref())?;
        let object = assemble(store, &bucket, upload, &chosen);
        let (e_tag, size) = (object.e_tag.clone(), object.size);
        // The chosen parts' references move to the version (no candidate:
        // the chunks stay referenced); the others are released.
        for (number, part) in &stored {
            if chosen
                .iter()
                .any(|(chosen_number, _)| chosen_number == number)
            {
                for (hash, _) in part.chunks.reference_counts() {
                    change.batch.delete(&keys::chunk_ref(
                        part.chunks.tier,
                        &hash,
                        &part.chunks.body_id,
                    ));
                }
            } else {
                store.release_refs(&mut change.batch, &part.chunks, change.now_nanos);
            }
            change.batch.delete(&keys::part(&id, *number));
        }
        change
            .batch
            .delete(&keys::upload(bucket.id, &self.key, &id));
        let version_id = store.install_version(
            &mut change,
            &bucket,
            &self.key,
            object,
            EventType::ObjectCreatedCompleteMultipartUpload,
        )?;
        change.commit()?;
        Ok(CompleteMultipartUploadOutput {
            e_tag,
            version_id,
            size,
        })
    }
}

/// Checks the completion list against the stored parts.
fn select_parts<'p>(
    stored: &'p [(u32, PartRecord)],
    listed: &[CompletedPart],
    min_part_bytes: u64,
) -> Result<Vec<(u32, &'p PartRecord)>> {
    let mut chosen = Vec::with_capacity(listed.len());
    for (index, wanted) in listed.iter().enumerate() {
        let part = stored
            .iter()
            .find(|(number, _)| *number == wanted.part_number)
            .map(|(_, part)| part)
            .ok_or_else(|| Error::InvalidPart {
                reason: format!("part {} was not uploaded", wanted.part_number),
            })?;
        if !e_tag_matches(&wanted.e_tag, &part.e_tag)
            || wanted.e_tag.trim().trim_matches('"') == "*"
        {
            return Err(Error::InvalidPart {
                reason: format!("part {} has ETag {:?}", wanted.part_number, part.e_tag),
            });
        }
        let last = index + 1 == listed.len();
        if !last && part.size() < min_part_bytes {
            return Err(Error::EntityTooSmall {
                part_number: wanted.part_number,
                size: part.size(),
                minimum: min_part_bytes,
            });
        }
        chosen.push((wanted.part_number, part));
    }
    Ok(chosen)
}

/// The object a completion creates: the parts' chunk lists concatenated.
fn assemble(
    store: &StoreInner,
    bucket: &BucketRecord,
    upload: UploadRecord,
    chosen: &[(u32, &PartRecord)],
) -> ObjectRecord {
    let tier = chosen
        .first()
        .map_or(super::types::Tier::Hot, |(_, part)| part.chunks.tier);
    let mut chunks = Vec::new();
    let mut part_sizes = Vec::with_capacity(chosen.len());
    let mut manifest = blake3::Hasher::new();
    let mut md5s = Md5::new();
    let mut all_md5 = true;
    for (_, part) in chosen {
        part_sizes.push(part.size());
        for chunk in &part.chunks.chunks {
            manifest.update(&chunk.hash);
        }
        chunks.extend_from_slice(&part.chunks.chunks);
        match &part.md5 {
            Some(md5) => md5s.update(md5),
            None => all_md5 = false,
        }
    }
    let digest = if bucket.md5_etags && all_md5 {
        hex(&md5s.finalize())
    } else {
        hex(manifest.finalize().as_bytes())
    };
    let list = ChunkList {
        body_id: store.new_id16(),
        tier,
        chunks,
    };
    ObjectRecord {
        size: list.total_len(),
        e_tag: format!("{digest}-{}", chosen.len()),
        attributes: upload.attributes,
        restored_until: None,
        part_sizes,
        body: super::record::Body::Chunked(list),
    }
}

/// `abort_multipart_upload` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct AbortMultipartUpload<'a> {
    store: &'a StoreInner,
    bucket: String,
    key: String,
    upload_id: Option<String>,
}

impl AbortMultipartUpload<'_> {
    /// The upload (required).
    pub fn upload_id(mut self, upload_id: impl Into<String>) -> Self {
        self.upload_id = Some(upload_id.into());
        self
    }

    /// Aborts the upload and frees its parts.
    pub fn send(self) -> Result<()> {
        let upload_id = self
            .upload_id
            .ok_or_else(|| Error::InvalidArgument("abort needs an upload id".into()))?;
        let store = self.store;
        let _gate = store.gate.read();
        let bucket = store.bucket(&self.bucket)?;
        store.abort_upload(&bucket, &self.key, &upload_id)
    }
}

impl StoreInner {
    pub(crate) fn abort_upload(
        &self,
        bucket: &BucketRecord,
        key: &str,
        upload_id: &str,
    ) -> Result<()> {
        let _key_lock = self.lock_key(bucket.id, key);
        let (id, _) = self.upload(bucket, key, upload_id)?;
        let mut batch = WriteBatch::new();
        self.drop_parts(&mut batch, &id, self.now_nanos())?;
        batch.delete(&keys::upload(bucket.id, key, &id));
        self.engine.write(batch)?;
        Ok(())
    }
}

impl<'a> Objects<'a> {
    /// Starts a multipart upload.
    pub fn create_multipart_upload(
        &self,
        bucket: impl Into<String>,
        key: impl Into<String>,
    ) -> CreateMultipartUpload<'a> {
        CreateMultipartUpload {
            store: self.store,
            bucket: bucket.into(),
            key: key.into(),
            attributes: ObjectAttributes::default(),
            metadata: Vec::new(),
            lock: LockRequest::default(),
        }
    }

    /// Uploads one part.
    pub fn upload_part(&self, bucket: impl Into<String>, key: impl Into<String>) -> UploadPart<'a> {
        UploadPart {
            store: self.store,
            bucket: bucket.into(),
            key: key.into(),
            upload_id: None,
            part_number: None,
            body: ByteStream::empty(),
        }
    }

    /// Completes an upload from its parts.
    pub fn complete_multipart_upload(
        &self,
        bucket: impl Into<String>,
        key: impl Into<String>,
    ) -> CompleteMultipartUpload<'a> {
        CompleteMultipartUpload {
            store: self.store,
            bucket: bucket.into(),
            key: key.into(),
            upload_id: None,
            parts: Vec::new(),
            conditions: WriteConditions::default(),
        }
    }

    /// Aborts an upload.
    pub fn abort_multipart_upload(
        &self,
        bucket: impl Into<String>,
        key: impl Into<String>,
    ) -> AbortMultipartUpload<'a> {
        AbortMultipartUpload {
            store: self.store,
            bucket: bucket.into(),
            key: key.into(),
            upload_id: None,
        }
    }
}
