//! Table tags: `tag_resource`, `untag_resource`, `list_tags_of_resource`
//! and `create_table`'s tags, with DynamoDB's limits and messages.
//!
//! Tags are part of the table's definition in the catalogue, so they
//! persist with it, go when it is deleted, and are not restored from a
//! backup (DynamoDB asks users to set them again on a restored table).
//! A resource is named by its ARN (`TableDescription::table_arn`).

use std::collections::BTreeMap;

use super::catalogue::KvState;
use super::error::{Error, Result};
use crate::Database;
use crate::storage::WriteBatch;

/// The most tags one resource may carry.
pub const TAGS_PER_RESOURCE_MAX: usize = 50;
/// The longest tag key, in characters.
pub const TAG_KEY_CHARS_MAX: usize = 128;
/// The longest tag value, in characters.
pub const TAG_VALUE_CHARS_MAX: usize = 256;
/// The longest resource ARN DynamoDB accepts.
const RESOURCE_ARN_BYTES_MAX: usize = 1283;

/// One tag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tag {
    /// The key.
    pub key: String,
    /// The value (may be empty).
    pub value: String,
}

fn constraint(value: &str, field: &str, rule: &str) -> Error {
    Error::validation(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy \
         constraint: {rule}"
    ))
}

/// Checks each tag's key and value lengths.
pub(crate) fn check_tags(tags: &[Tag]) -> Result<()> {
    for tag in tags {
        if tag.key.is_empty() {
            return Err(constraint(
                &tag.key,
                "tags.member.key",
                "Member must have length greater than or equal to 1",
            ));
        }
        if tag.key.chars().count() > TAG_KEY_CHARS_MAX {
            return Err(constraint(
                &tag.key,
                "tags.member.key",
                "Member must have length less than or equal to 128",
            ));
        }
        if tag.value.chars().count() > TAG_VALUE_CHARS_MAX {
            return Err(constraint(
                &tag.value,
                "tags.member.value",
                "Member must have length less than or equal to 256",
            ));
        }
    }
    Ok(())
}

/// `current` with `tags` added (a key given again takes the new value),
/// or the limit error.
pub(crate) fn merged(
    current: &BTreeMap<String, String>,
    tags: Vec<Tag>,
) -> Result<BTreeMap<String, String>> {
    check_tags(&tags)?;
    let mut merged = current.clone();
    merged.extend(tags.into_iter().map(|tag| (tag.key, tag.value)));
    if merged.len() > TAGS_PER_RESOURCE_MAX {
        return Err(Error::validation(
            "One or more parameter values were invalid: The number of tags exceeds the limit of 50",
        ));
    }
    Ok(merged)
}

/// The name of the table `arn` names, after DynamoDB's checks.
fn table_of(arn: &str) -> Result<&str> {
    if arn.is_empty() || arn.len() > RESOURCE_ARN_BYTES_MAX {
        return Err(constraint(
            arn,
            "resourceArn",
            "Member must have length greater than or equal to 1",
        ));
    }
    arn.rsplit_once(":table/")
        .map(|(_, name)| name)
        .filter(|name| !name.is_empty() && !name.contains('/'))
        .ok_or_else(|| {
            Error::validation(format!(
                "Invalid TableArn: Invalid ResourceArn provided as input {arn}"
            ))
        })
}

/// Changes the tags of the table `arn` names by `change`, durably.
fn retag(
    db: &Database,
    arn: &str,
    change: impl FnOnce(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>>,
) -> Result<()> {
    let inner = &db.inner;
    let name = table_of(arn)?;
    let _ddl = inner.kv.ddl.lock();
    let handle = inner.kv.table(name).map_err(|_| not_found(arn))?;
    let mut definition = (*handle.definition()).clone();
    if definition.table_arn() != arn {
        return Err(not_found(arn));
    }
    let tags = change(&definition.tags)?;
    if tags == definition.tags {
        return Ok(());
    }
    definition.tags = tags;
    let mut batch = WriteBatch::new();
    KvState::put_definition(&mut batch, &definition)?;
    inner.engine.write(batch)?;
    let _gate = handle.gate.write();
    handle.set_definition(definition);
    Ok(())
}

fn not_found(arn: &str) -> Error {
    Error::ResourceNotFound(format!(
        "Requested resource not found: ResourceArn: {arn} not found"
    ))
}

/// A `tag_resource` request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct TagResource {
    db: Database,
    arn: String,
    tags: Vec<Tag>,
}

impl TagResource {
    /// Adds (or replaces) the tag `key`.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.push(Tag {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Runs the request.
    pub fn send(self) -> Result<()> {
        if self.tags.is_empty() {
            return Err(constraint(
                "[]",
                "tags",
                "Member must have length greater than or equal to 1",
            ));
        }
        let tags = self.tags;
        retag(&self.db, &self.arn, |current| merged(current, tags))
    }
}

/// An `untag_resource` request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct UntagResource {
    db: Database,
    arn: String,
    keys: Vec<String>,
}

impl UntagResource {
    /// Removes the tag `key` (absent keys are ignored, as in DynamoDB).
    pub fn tag_key(mut self, key: impl Into<String>) -> Self {
        self.keys.push(key.into());
        self
    }

    /// Runs the request.
    pub fn send(self) -> Result<()> {
        let keys = self.keys;
        retag(&self.db, &self.arn, |current| {
            let mut tags = current.clone();
            for key in &keys {
                tags.remove(key);
            }
            Ok(tags)
        })
    }
}

/// A `list_tags_of_resource` request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct ListTagsOfResource {
    db: Database,
    arn: String,
}

impl ListTagsOfResource {
    /// Runs the request: every tag, by key (at most 50, so one page).
    pub fn send(self) -> Result<Vec<Tag>> {
        let name = table_of(&self.arn)?;
        let handle = self
            .db
            .inner
            .kv
            .table(name)
            .map_err(|_| not_found(&self.arn))?;
        let definition = handle.definition();
        if definition.table_arn() != self.arn {
            return Err(not_found(&self.arn));
        }
        Ok(definition
            .tags
            .iter()
            .map(|(key, value)| Tag {
                key: key.clone(),
                value: value.clone(),
            })
            .collect())
    }
}

impl Database {
    /// Starts a `TagResource` request on the table with ARN `arn`.
    pub fn tag_resource(&self, arn: impl Into<String>) -> TagResource {
        TagResource {
            db: self.clone(),
            arn: arn.into(),
            tags: Vec::new(),
        }
    }

    /// Starts an `UntagResource` request on the table with ARN `arn`.
    pub fn untag_resource(&self, arn: impl Into<String>) -> UntagResource {
        UntagResource {
            db: self.clone(),
            arn: arn.into(),
            keys: Vec::new(),
        }
    }

    /// Starts a `ListTagsOfResource` request on the table with ARN `arn`.
    pub fn list_tags_of_resource(&self, arn: impl Into<String>) -> ListTagsOfResource {
        ListTagsOfResource {
            db: self.clone(),
            arn: arn.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(key: &str, value: &str) -> Tag {
        Tag {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn limits_are_dynamodbs() {
        assert!(check_tags(&[tag(&"k".repeat(128), &"v".repeat(256))]).is_ok());
        assert!(check_tags(&[tag(&"k".repeat(129), "")]).is_err());
        assert!(check_tags(&[tag("k", &"v".repeat(257))]).is_err());
        assert!(check_tags(&[tag("", "v")]).is_err());
        let fifty: Vec<Tag> = (0..50).map(|n| tag(&format!("k{n}"), "v")).collect();
        let full = merged(&BTreeMap::new(), fifty).unwrap();
        assert!(
            merged(&full, vec![tag("k0", "new")]).is_ok(),
            "a replaced key adds none"
        );
        let error = merged(&full, vec![tag("k50", "v")]).unwrap_err();
        assert!(
            error.to_string().contains("exceeds the limit of 50"),
            "{error}"
        );
    }

    #[test]
    fn arns_name_tables() {
        assert_eq!(
            table_of("arn:nimbus:dynamodb:local:000000000000:table/Music").unwrap(),
            "Music"
        );
        assert!(table_of("arn:aws:s3:::bucket").is_err());
        assert!(table_of("arn:x:table/Music/index/ByArtist").is_err());
        assert!(table_of("").is_err());
    }
}
