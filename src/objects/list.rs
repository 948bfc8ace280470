//! `list_objects_v2` and `list_object_versions`: walks of the version rows
//! of a bucket in key order (UTF-8 byte order), then newest first within a
//! key, with prefix, delimiter roll-up into common prefixes (each counts
//! against `max_keys`), and paging by continuation token or key and
//! version-id markers.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;

use super::Objects;
use super::error::{Error, Result};
use super::keys;
use super::limits::LIST_PAGE_MAX;
use super::record::VersionRecord;
use super::store::{StoreInner, system_time};
use super::types::StorageClass;
use super::versions::{VersionIdArg, parse_version_id, version_id_string};
use crate::storage::{Direction, EngineIter};

/// A forward walk over catalogue rows that can jump ahead.
struct RowCursor<'s> {
    store: &'s StoreInner,
    end: Option<Vec<u8>>,
    iter: EngineIter,
}

impl<'s> RowCursor<'s> {
    fn new(store: &'s StoreInner, start: Vec<u8>, end: Option<Vec<u8>>) -> Result<Self> {
        let iter = Self::open(store, start, end.clone())?;
        Ok(Self { store, end, iter })
    }

    fn open(store: &StoreInner, start: Vec<u8>, end: Option<Vec<u8>>) -> Result<EngineIter> {
        use std::ops::Bound;
        let upper = match end {
            Some(end) => Bound::Excluded(end),
            None => Bound::Unbounded,
        };
        Ok(store
            .engine
            .range((Bound::Included(start), upper), Direction::Forward, None)?)
    }

    /// Restarts the walk at `start`.
    fn seek(&mut self, start: Vec<u8>) -> Result<()> {
        self.iter = Self::open(self.store, start, self.end.clone())?;
        Ok(())
    }

    fn next(&mut self) -> Result<Option<(Bytes, Bytes)>> {
        self.iter.next().transpose().map_err(Error::from)
    }
}

/// The bounds of a walk over the keys of `bucket_id` starting with `prefix`.
fn prefix_bounds(bucket_id: u64, prefix: &str) -> (Vec<u8>, Option<Vec<u8>>) {
    let start = keys::versions_with_prefix(bucket_id, prefix);
    let end = keys::prefix_successor(&start);
    (start, end)
}

/// The first row after every row of keys starting with `prefix`.
fn after_prefix(bucket_id: u64, prefix: &str) -> Option<Vec<u8>> {
    keys::prefix_successor(&keys::versions_with_prefix(bucket_id, prefix))
}

/// The first row of the first key greater than `key`.
fn after_key(bucket_id: u64, key: &str) -> Option<Vec<u8>> {
    keys::prefix_successor(&keys::versions_of_key(bucket_id, key))
}

/// The common prefix `key` rolls up into, if any.
fn common_prefix<'k>(key: &'k str, prefix: &str, delimiter: Option<&str>) -> Option<&'k str> {
    let delimiter = delimiter.filter(|d| !d.is_empty())?;
    let rest = key.get(prefix.len()..)?;
    let at = rest.find(delimiter)?;
    key.get(..prefix.len() + at + delimiter.len())
}

fn page_size(max_keys: Option<usize>) -> usize {
    max_keys.unwrap_or(LIST_PAGE_MAX).min(LIST_PAGE_MAX)
}

/// One object of a `list_objects_v2` page.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Object {
    /// The key.
    pub key: String,
    /// When the current version was created.
    pub last_modified: SystemTime,
    /// Its ETag.
    pub e_tag: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its storage class.
    pub storage_class: StorageClass,
}

/// `list_objects_v2` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct ListObjectsV2<'a> {
    store: &'a StoreInner,
    bucket: String,
    prefix: String,
    delimiter: Option<String>,
    max_keys: Option<usize>,
    start_after: Option<String>,
    continuation_token: Option<String>,
}

/// `list_objects_v2` response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListObjectsV2Output {
    /// The objects of this page, in key order.
    pub contents: Vec<Object>,
    /// The rolled-up prefixes of this page, in order.
    pub common_prefixes: Vec<String>,
    /// Objects plus common prefixes returned.
    pub key_count: usize,
    /// Whether more follow.
    pub is_truncated: bool,
    /// Pass to `continuation_token` for the next page.
    pub next_continuation_token: Option<String>,
}

impl ListObjectsV2<'_> {
    /// Only keys starting with `prefix`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Rolls keys up to the first `delimiter` after the prefix.
    pub fn delimiter(mut self, delimiter: impl Into<String>) -> Self {
        self.delimiter = Some(delimiter.into());
        self
    }

    /// At most this many objects and prefixes (at most 1000, the default).
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = Some(max_keys);
        self
    }

    /// Only keys after `key`.
    pub fn start_after(mut self, key: impl Into<String>) -> Self {
        self.start_after = Some(key.into());
        self
    }

    /// Continues a truncated listing.
    pub fn continuation_token(mut self, token: impl Into<String>) -> Self {
        self.continuation_token = Some(token.into());
        self
    }

    /// Lists one page.
    pub fn send(self) -> Result<ListObjectsV2Output> {
        let store = self.store;
        let bucket = store.bucket(&self.bucket)?;
        let delimiter = self.delimiter.as_deref();
        let (mut start, end) = prefix_bounds(bucket.id, &self.prefix);
        let mut resume: Vec<Option<Vec<u8>>> = Vec::new();
        if let Some(after) = &self.start_after {
            resume.push(after_key(bucket.id, after));
        }
        if let Some(token) = &self.continuation_token {
            resume.push(match decode_token(token)? {
                Token::AfterKey(key) => after_key(bucket.id, &key),
                Token::AfterPrefix(prefix) => after_prefix(bucket.id, &prefix),
            });
        }
        for bound in resume {
            match bound {
                Some(bound) => start = start.max(bound),
                None => return Ok(empty_page()),
            }
        }
        let limit = page_size(self.max_keys);
        if limit == 0 {
            return Ok(empty_page());
        }
        let mut cursor = RowCursor::new(store, start, end)?;
        let mut page = ListObjectsV2Output {
            contents: Vec::new(),
            common_prefixes: Vec::new(),
            key_count: 0,
            is_truncated: false,
            next_continuation_token: None,
        };
        let mut last: Option<Token> = None;
        let mut previous_key: Option<String> = None;
        while let Some((row_key, value)) = cursor.next()? {
            let (key, _) = keys::parse_version(&row_key)?;
            if previous_key.as_deref() == Some(key.as_str()) {
                continue;
            }
            previous_key = Some(key.clone());
            // A key whose current version is a delete marker is not
            // listed, and does not make a common prefix appear either.
            let record = VersionRecord::decode(&value)?;
            let Some(object) = record.object() else {
                continue;
            };
            if let Some(rolled) = common_prefix(&key, &self.prefix, delimiter) {
                if page.key_count == limit {
                    page.is_truncated = true;
                    break;
                }
                let rolled = rolled.to_owned();
                match after_prefix(bucket.id, &rolled) {
                    Some(next) => cursor.seek(next)?,
                    None => cursor = RowCursor::new(store, Vec::new(), Some(Vec::new()))?,
                }
                page.common_prefixes.push(rolled.clone());
                page.key_count += 1;
                last = Some(Token::AfterPrefix(rolled));
                continue;
            }
            if page.key_count == limit {
                page.is_truncated = true;
                break;
            }
            page.contents.push(Object {
                key: key.clone(),
                last_modified: system_time(record.last_modified_nanos),
                e_tag: object.e_tag.clone(),
                size: object.size,
                storage_class: object.attributes.storage_class,
            });
            page.key_count += 1;
            last = Some(Token::AfterKey(key));
        }
        if page.is_truncated {
            page.next_continuation_token = last.as_ref().map(encode_token);
        }
        Ok(page)
    }
}

fn empty_page() -> ListObjectsV2Output {
    ListObjectsV2Output {
        contents: Vec::new(),
        common_prefixes: Vec::new(),
        key_count: 0,
        is_truncated: false,
        next_continuation_token: None,
    }
}

/// Where a listing resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    AfterKey(String),
    AfterPrefix(String),
}

fn encode_token(token: &Token) -> String {
    let (kind, text) = match token {
        Token::AfterKey(key) => (b'k', key),
        Token::AfterPrefix(prefix) => (b'p', prefix),
    };
    let mut raw = Vec::with_capacity(text.len() + 1);
    raw.push(kind);
    raw.extend_from_slice(text.as_bytes());
    URL_SAFE_NO_PAD.encode(raw)
}

fn decode_token(token: &str) -> Result<Token> {
    let invalid = || Error::InvalidArgument("the continuation token is not valid".into());
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let (&kind, text) = raw.split_first().ok_or_else(invalid)?;
    let text = String::from_utf8(text.to_vec()).map_err(|_| invalid())?;
    match kind {
        b'k' => Ok(Token::AfterKey(text)),
        b'p' => Ok(Token::AfterPrefix(text)),
        _ => Err(invalid()),
    }
}

/// One entry of `list_object_versions`: a version or a delete marker.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VersionEntry {
    /// The key.
    pub key: String,
    /// The version id (`"null"` for the null version).
    pub version_id: String,
    /// Whether this is the key's current version.
    pub is_latest: bool,
    /// When it was created.
    pub last_modified: SystemTime,
    /// Whether it is a delete marker (then the fields below are empty).
    pub delete_marker: bool,
    /// The ETag of an object version.
    pub e_tag: Option<String>,
    /// The size of an object version.
    pub size: Option<u64>,
    /// The storage class of an object version.
    pub storage_class: Option<StorageClass>,
}

/// `list_object_versions` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct ListObjectVersions<'a> {
    store: &'a StoreInner,
    bucket: String,
    prefix: String,
    delimiter: Option<String>,
    max_keys: Option<usize>,
    key_marker: Option<String>,
    version_id_marker: Option<String>,
}

/// `list_object_versions` response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListObjectVersionsOutput {
    /// Versions and delete markers interleaved: key ascending, then newest
    /// first (the order S3's XML carries).
    pub entries: Vec<VersionEntry>,
    /// The rolled-up prefixes of this page.
    pub common_prefixes: Vec<String>,
    /// Whether more follow.
    pub is_truncated: bool,
    /// Pass to `key_marker` for the next page.
    pub next_key_marker: Option<String>,
    /// Pass to `version_id_marker` for the next page.
    pub next_version_id_marker: Option<String>,
}

impl ListObjectVersionsOutput {
    /// The object versions (S3's `Versions`).
    pub fn versions(&self) -> impl Iterator<Item = &VersionEntry> {
        self.entries.iter().filter(|entry| !entry.delete_marker)
    }

    /// The delete markers (S3's `DeleteMarkers`).
    pub fn delete_markers(&self) -> impl Iterator<Item = &VersionEntry> {
        self.entries.iter().filter(|entry| entry.delete_marker)
    }
}

impl ListObjectVersions<'_> {
    /// Only keys starting with `prefix`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Rolls keys up to the first `delimiter` after the prefix.
    pub fn delimiter(mut self, delimiter: impl Into<String>) -> Self {
        self.delimiter = Some(delimiter.into());
        self
    }

    /// At most this many entries and prefixes (at most 1000, the default).
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = Some(max_keys);
        self
    }

    /// Starts after this key (or, with `version_id_marker`, after that
    /// version of it).
    pub fn key_marker(mut self, key: impl Into<String>) -> Self {
        self.key_marker = Some(key.into());
        self
    }

    /// Starts after this version of `key_marker`.
    pub fn version_id_marker(mut self, version_id: impl Into<String>) -> Self {
        self.version_id_marker = Some(version_id.into());
        self
    }

    fn start_row(&self, store: &StoreInner, bucket_id: u64) -> Result<Option<Vec<u8>>> {
        let (start, _) = prefix_bounds(bucket_id, &self.prefix);
        let Some(marker) = &self.key_marker else {
            if self.version_id_marker.is_some() {
                return Err(Error::InvalidArgument(
                    "a version-id marker needs a key marker".into(),
                ));
            }
            return Ok(Some(start));
        };
        let resume = match &self.version_id_marker {
            None => {
                let delimiter = self.delimiter.as_deref().filter(|d| !d.is_empty());
                match delimiter {
                    Some(d) if marker.ends_with(d) && marker.starts_with(&self.prefix) => {
                        after_prefix(bucket_id, marker)
                    }
                    _ => after_key(bucket_id, marker),
                }
            }
            Some(version_id) => {
                let seq = match parse_version_id(version_id)? {
                    VersionIdArg::Id { seq, .. } => seq,
                    VersionIdArg::Null => store
                        .key_head(bucket_id, marker)?
                        .and_then(|head| head.null_seq)
                        .ok_or_else(|| {
                            Error::InvalidArgument("the version-id marker names no version".into())
                        })?,
                };
                keys::prefix_successor(&keys::version(bucket_id, marker, seq))
            }
        };
        Ok(resume.map(|resume| resume.max(start)))
    }

    /// Lists one page.
    pub fn send(self) -> Result<ListObjectVersionsOutput> {
        let store = self.store;
        let bucket = store.bucket(&self.bucket)?;
        let mut page = ListObjectVersionsOutput {
            entries: Vec::new(),
            common_prefixes: Vec::new(),
            is_truncated: false,
            next_key_marker: None,
            next_version_id_marker: None,
        };
        let Some(start) = self.start_row(store, bucket.id)? else {
            return Ok(page);
        };
        let (_, end) = prefix_bounds(bucket.id, &self.prefix);
        let limit = page_size(self.max_keys);
        if limit == 0 {
            return Ok(page);
        }
        let delimiter = self.delimiter.as_deref();
        let mut cursor = RowCursor::new(store, start, end)?;
        // Whether the first row seen is the newest of its key depends on
        // whether the walk began mid-key.
        let mut previous_key: Option<String> =
            self.version_id_marker.as_ref().and(self.key_marker.clone());
        let mut count = 0usize;
        while let Some((row_key, value)) = cursor.next()? {
            let (key, seq) = keys::parse_version(&row_key)?;
            let is_latest = previous_key.as_deref() != Some(key.as_str());
            previous_key = Some(key.clone());
            if let Some(rolled) = common_prefix(&key, &self.prefix, delimiter) {
                if count == limit {
                    page.is_truncated = true;
                    break;
                }
                let rolled = rolled.to_owned();
                match after_prefix(bucket.id, &rolled) {
                    Some(next) => cursor.seek(next)?,
                    None => cursor = RowCursor::new(store, Vec::new(), Some(Vec::new()))?,
                }
                page.next_key_marker = Some(rolled.clone());
                page.next_version_id_marker = None;
                page.common_prefixes.push(rolled);
                count += 1;
                continue;
            }
            if count == limit {
                page.is_truncated = true;
                break;
            }
            let record = VersionRecord::decode(&value)?;
            let version_id = version_id_string(seq, record.id);
            let object = record.object();
            page.next_key_marker = Some(key.clone());
            page.next_version_id_marker = Some(version_id.clone());
            page.entries.push(VersionEntry {
                key,
                version_id,
                is_latest,
                last_modified: system_time(record.last_modified_nanos),
                delete_marker: object.is_none(),
                e_tag: object.map(|o| o.e_tag.clone()),
                size: object.map(|o| o.size),
                storage_class: object.map(|o| o.attributes.storage_class),
            });
            count += 1;
        }
        if !page.is_truncated {
            page.next_key_marker = None;
            page.next_version_id_marker = None;
        }
        Ok(page)
    }
}

impl<'a> Objects<'a> {
    /// Lists the current objects of a bucket, a page at a time.
    pub fn list_objects_v2(&self, bucket: impl Into<String>) -> ListObjectsV2<'a> {
        ListObjectsV2 {
            store: self.store,
            bucket: bucket.into(),
            prefix: String::new(),
            delimiter: None,
            max_keys: None,
            start_after: None,
            continuation_token: None,
        }
    }

    /// Lists every version and delete marker of a bucket, a page at a time.
    pub fn list_object_versions(&self, bucket: impl Into<String>) -> ListObjectVersions<'a> {
        ListObjectVersions {
            store: self.store,
            bucket: bucket.into(),
            prefix: String::new(),
            delimiter: None,
            max_keys: None,
            key_marker: None,
            version_id_marker: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefixes_roll_up_at_the_first_delimiter() {
        assert_eq!(common_prefix("a/b/c", "", Some("/")), Some("a/"));
        assert_eq!(common_prefix("a/b/c", "a/", Some("/")), Some("a/b/"));
        assert_eq!(common_prefix("a/b", "a/", Some("/")), None);
        assert_eq!(common_prefix("a/b", "", None), None);
        assert_eq!(common_prefix("a--b--c", "", Some("--")), Some("a--"));
    }

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        for token in [
            Token::AfterKey("k/ü".into()),
            Token::AfterPrefix("p/".into()),
        ] {
            assert_eq!(decode_token(&encode_token(&token)).unwrap(), token);
        }
        assert!(decode_token("!!").is_err());
        assert!(decode_token("").is_err());
        assert!(decode_token(&URL_SAFE_NO_PAD.encode(b"xabc")).is_err());
    }
}
