//! Listings: ListObjectsV2, ListObjects (v1, on the same store listing
//! with the marker as start-after), ListObjectVersions (unversioned
//! objects appear with version id `null`). Keys are URL-encoded when the
//! client asks (`encoding-type=url`, which boto3 always sends).

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use super::access::{Keys, LOCAL_OWNER_ID, bucket_acl};
use super::convert::{e_tag, timestamp};
use super::error::{invalid_argument, to_s3};
use super::service::NimbusS3;

/// The most keys one page returns (S3's limit and default).
const LIST_KEYS_MAX: usize = 1000;

fn max_keys(value: Option<i32>) -> S3Result<usize> {
    match value {
        None => Ok(LIST_KEYS_MAX),
        Some(n) => usize::try_from(n)
            .map(|n| n.min(LIST_KEYS_MAX))
            .map_err(|_| invalid_argument("max-keys must not be negative")),
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters and `/`.
fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Encodes keys and prefixes when `encoding-type=url` was asked for.
#[derive(Clone, Copy)]
struct Encoder(bool);

impl Encoder {
    fn new(encoding: Option<&EncodingType>) -> S3Result<Self> {
        match encoding.map(EncodingType::as_str) {
            None => Ok(Self(false)),
            Some(EncodingType::URL) => Ok(Self(true)),
            Some(other) => Err(invalid_argument(format!("unknown encoding type {other:?}"))),
        }
    }

    fn key(self, key: String) -> String {
        if self.0 { url_encode(&key) } else { key }
    }

    fn prefixes(self, prefixes: Vec<String>) -> Option<Vec<CommonPrefix>> {
        (!prefixes.is_empty()).then(|| {
            prefixes
                .into_iter()
                .map(|prefix| CommonPrefix {
                    prefix: Some(self.key(prefix)),
                })
                .collect()
        })
    }
}

fn class(class: crate::objects::StorageClass) -> String {
    class.as_str().to_owned()
}

fn to_i32(value: usize) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// The owner to show in listings of `bucket`.
fn bucket_owner(keys: &Keys, db: &crate::Database, bucket: &str) -> S3Result<Owner> {
    let owner = bucket_acl(db, bucket)
        .map_err(to_s3)?
        .and_then(|acl| acl.owner)
        .unwrap_or_else(|| LOCAL_OWNER_ID.to_owned());
    Ok(Owner {
        display_name: Some(keys.display_name(&owner)),
        id: Some(owner),
    })
}

impl NimbusS3 {
    pub(super) async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let limit = max_keys(input.max_keys)?;
        let encoder = Encoder::new(input.encoding_type.as_ref())?;
        let query = (
            input.bucket.clone(),
            input.prefix.clone(),
            input.delimiter.clone(),
            input.start_after.clone(),
            input.continuation_token.clone(),
        );
        let fetch_owner = input.fetch_owner == Some(true);
        let keys = self.keys.clone();
        let (page, owner) = self
            .blocking(move |db| {
                let (bucket, prefix, delimiter, start_after, token) = query;
                let mut list = db
                    .objects()
                    .list_objects_v2(bucket.as_str())
                    .max_keys(limit);
                if let Some(prefix) = prefix {
                    list = list.prefix(prefix);
                }
                if let Some(delimiter) = delimiter {
                    list = list.delimiter(delimiter);
                }
                if let Some(start_after) = start_after {
                    list = list.start_after(start_after);
                }
                if let Some(token) = token {
                    list = list.continuation_token(token);
                }
                let page = list.send().map_err(to_s3)?;
                let owner = if fetch_owner {
                    Some(bucket_owner(&keys, db, &bucket)?)
                } else {
                    None
                };
                Ok((page, owner))
            })
            .await?;
        let contents: Vec<Object> = page
            .contents
            .into_iter()
            .map(|object| Object {
                key: Some(encoder.key(object.key)),
                last_modified: Some(timestamp(object.last_modified)),
                e_tag: Some(e_tag(object.e_tag)),
                size: i64::try_from(object.size).ok(),
                storage_class: Some(ObjectStorageClass::from(class(object.storage_class))),
                owner: owner.clone(),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(input.bucket),
            prefix: Some(encoder.key(input.prefix.unwrap_or_default())),
            delimiter: input.delimiter.map(|d| encoder.key(d)),
            max_keys: Some(to_i32(limit)),
            key_count: Some(to_i32(page.key_count)),
            is_truncated: Some(page.is_truncated),
            continuation_token: input.continuation_token,
            next_continuation_token: page.next_continuation_token,
            start_after: input.start_after.map(|s| encoder.key(s)),
            contents: Some(contents),
            common_prefixes: encoder.prefixes(page.common_prefixes),
            encoding_type: input.encoding_type,
            request_charged: None,
        }))
    }

    pub(super) async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let input = req.input;
        let limit = max_keys(input.max_keys)?;
        let encoder = Encoder::new(input.encoding_type.as_ref())?;
        let query = (
            input.bucket.clone(),
            input.prefix.clone(),
            input.delimiter.clone(),
            input.marker.clone(),
        );
        let keys = self.keys.clone();
        let (page, owner) = self
            .blocking(move |db| {
                let (bucket, prefix, delimiter, marker) = query;
                let mut list = db
                    .objects()
                    .list_objects_v2(bucket.as_str())
                    .max_keys(limit);
                if let Some(prefix) = prefix {
                    list = list.prefix(prefix);
                }
                if let Some(delimiter) = delimiter {
                    list = list.delimiter(delimiter);
                }
                if let Some(marker) = marker.filter(|m| !m.is_empty()) {
                    list = list.start_after(marker);
                }
                let page = list.send().map_err(to_s3)?;
                let owner = bucket_owner(&keys, db, &bucket)?;
                Ok((page, owner))
            })
            .await?;
        // V1's NextMarker: the last key or common prefix of the page.
        let last_key = page.contents.last().map(|o| o.key.clone());
        let last_prefix = page.common_prefixes.last().cloned();
        let next_marker = page
            .is_truncated
            .then(|| last_key.into_iter().chain(last_prefix).max())
            .flatten();
        let contents: Vec<Object> = page
            .contents
            .into_iter()
            .map(|object| Object {
                key: Some(encoder.key(object.key)),
                last_modified: Some(timestamp(object.last_modified)),
                e_tag: Some(e_tag(object.e_tag)),
                size: i64::try_from(object.size).ok(),
                storage_class: Some(ObjectStorageClass::from(class(object.storage_class))),
                owner: Some(owner.clone()),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(input.bucket),
            prefix: Some(encoder.key(input.prefix.unwrap_or_default())),
            marker: Some(encoder.key(input.marker.unwrap_or_default())),
            delimiter: input.delimiter.map(|d| encoder.key(d)),
            max_keys: Some(to_i32(limit)),
            is_truncated: Some(page.is_truncated),
            next_marker: next_marker.map(|m| encoder.key(m)),
            contents: Some(contents),
            common_prefixes: encoder.prefixes(page.common_prefixes),
            encoding_type: input.encoding_type,
            request_charged: None,
        }))
    }

    pub(super) async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let input = req.input;
        let limit = max_keys(input.max_keys)?;
        let encoder = Encoder::new(input.encoding_type.as_ref())?;
        let query = (
            input.bucket.clone(),
            input.prefix.clone(),
            input.delimiter.clone(),
            input.key_marker.clone(),
            input.version_id_marker.clone(),
        );
        let keys = self.keys.clone();
        let (page, owner) = self
            .blocking(move |db| {
                let (bucket, prefix, delimiter, key_marker, version_marker) = query;
                let mut list = db
                    .objects()
                    .list_object_versions(bucket.as_str())
                    .max_keys(limit);
                if let Some(prefix) = prefix {
                    list = list.prefix(prefix);
                }
                if let Some(delimiter) = delimiter {
                    list = list.delimiter(delimiter);
                }
                if let Some(marker) = key_marker.filter(|m| !m.is_empty()) {
                    list = list.key_marker(marker);
                }
                if let Some(marker) = version_marker.filter(|m| !m.is_empty()) {
                    list = list.version_id_marker(marker);
                }
                let page = list.send().map_err(to_s3)?;
                let owner = bucket_owner(&keys, db, &bucket)?;
                Ok((page, owner))
            })
            .await?;
        let mut versions = Vec::new();
        let mut markers = Vec::new();
        for entry in page.entries {
            if entry.delete_marker {
                markers.push(DeleteMarkerEntry {
                    key: Some(encoder.key(entry.key)),
                    version_id: Some(entry.version_id),
                    is_latest: Some(entry.is_latest),
                    last_modified: Some(timestamp(entry.last_modified)),
                    owner: Some(owner.clone()),
                });
            } else {
                versions.push(ObjectVersion {
                    key: Some(encoder.key(entry.key)),
                    version_id: Some(entry.version_id),
                    is_latest: Some(entry.is_latest),
                    last_modified: Some(timestamp(entry.last_modified)),
                    e_tag: entry.e_tag.map(e_tag),
                    size: entry.size.and_then(|s| i64::try_from(s).ok()),
                    storage_class: entry
                        .storage_class
                        .map(|c| ObjectVersionStorageClass::from(class(c))),
                    owner: Some(owner.clone()),
                    ..Default::default()
                });
            }
        }
        Ok(S3Response::new(ListObjectVersionsOutput {
            name: Some(input.bucket),
            prefix: Some(encoder.key(input.prefix.unwrap_or_default())),
            delimiter: input.delimiter.map(|d| encoder.key(d)),
            key_marker: Some(encoder.key(input.key_marker.unwrap_or_default())),
            version_id_marker: Some(input.version_id_marker.unwrap_or_default()),
            max_keys: Some(to_i32(limit)),
            is_truncated: Some(page.is_truncated),
            next_key_marker: page.next_key_marker.map(|k| encoder.key(k)),
            next_version_id_marker: page.next_version_id_marker,
            versions: (!versions.is_empty()).then_some(versions),
            delete_markers: (!markers.is_empty()).then_some(markers),
            common_prefixes: encoder.prefixes(page.common_prefixes),
            encoding_type: input.encoding_type,
            request_charged: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_keeps_unreserved_and_slash() {
        assert_eq!(url_encode("a/b c+é"), "a/b%20c%2B%C3%A9");
        assert_eq!(url_encode("AZaz09-_.~"), "AZaz09-_.~");
    }

    #[test]
    fn max_keys_caps_at_a_thousand() {
        assert_eq!(max_keys(None).unwrap(), 1000);
        assert_eq!(max_keys(Some(5000)).unwrap(), 1000);
        assert_eq!(max_keys(Some(0)).unwrap(), 0);
        assert!(max_keys(Some(-1)).is_err());
    }
}
