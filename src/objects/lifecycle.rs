//! Lifecycle configuration: the rule model (S3's `LifecycleRule`), its
//! validation (S3's limits and minimum-days rules), its encoding, and the
//! put/get/delete operations. The runner that applies the rules is in
//! `lifecycle_run`.

use std::time::SystemTime;

use super::Objects;
use super::codec::{Reader, Writer};
use super::error::{Error, Result};
use super::keys;
use super::limits::{LIFECYCLE_RULE_ID_CHARS_MAX, LIFECYCLE_RULES_MAX};
use super::store::{StoreInner, nanos_of, system_time};
use super::types::StorageClass;
use super::versions::next_midnight_nanos;

pub use super::lifecycle_run::LifecycleReport;

/// Which objects a rule applies to (all conditions must hold).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LifecycleFilter {
    /// Keys starting with this prefix (empty: all keys).
    pub prefix: String,
    /// Objects carrying every one of these tags.
    pub tags: Vec<(String, String)>,
    /// Objects larger than this many bytes.
    pub object_size_greater_than: Option<u64>,
    /// Objects smaller than this many bytes.
    pub object_size_less_than: Option<u64>,
}

impl LifecycleFilter {
    /// A filter on a key prefix.
    pub fn prefix(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            ..Self::default()
        }
    }

    pub(crate) fn matches_key(&self, key: &str) -> bool {
        key.starts_with(&self.prefix)
    }

    pub(crate) fn matches_object(&self, tags: &[(String, String)], size: u64) -> bool {
        self.tags.iter().all(|tag| tags.contains(tag))
            && self.object_size_greater_than.is_none_or(|min| size > min)
            && self.object_size_less_than.is_none_or(|max| size < max)
    }
}

/// When the current version expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleExpiration {
    /// This many days after creation (rounded up to midnight UTC).
    Days(u32),
    /// At this date (midnight UTC).
    Date(SystemTime),
    /// Remove a delete marker that has no versions left behind it.
    ExpiredObjectDeleteMarker,
}

/// When a transition happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransitionTiming {
    /// This many days after creation (rounded up to midnight UTC).
    Days(u32),
    /// At this date (midnight UTC).
    Date(SystemTime),
}

/// A move of current versions to another storage class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// When.
    pub timing: TransitionTiming,
    /// To which class.
    pub storage_class: StorageClass,
}

impl Transition {
    /// A transition `days` after creation.
    pub fn after_days(days: u32, storage_class: StorageClass) -> Self {
        Self {
            timing: TransitionTiming::Days(days),
            storage_class,
        }
    }
}

/// Removal of noncurrent versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoncurrentVersionExpiration {
    /// Days after a version became noncurrent (its successor's creation).
    pub noncurrent_days: u32,
    /// How many of the newest noncurrent versions to keep regardless.
    pub newer_noncurrent_versions: Option<u32>,
}

/// A move of noncurrent versions to another storage class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoncurrentVersionTransition {
    /// Days after a version became noncurrent.
    pub noncurrent_days: u32,
    /// To which class.
    pub storage_class: StorageClass,
    /// How many of the newest noncurrent versions to leave in place.
    pub newer_noncurrent_versions: Option<u32>,
}

/// Abort of forgotten multipart uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortIncompleteMultipartUpload {
    /// Days after the upload was created.
    pub days_after_initiation: u32,
}

/// One lifecycle rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LifecycleRule {
    /// The rule's id (at most 255 characters, unique in the configuration).
    pub id: String,
    /// Whether the rule applies (S3's `Status: Enabled`).
    pub enabled: bool,
    /// Which objects it applies to.
    pub filter: LifecycleFilter,
    /// Expiration of current versions or of lone delete markers.
    pub expiration: Option<LifecycleExpiration>,
    /// Transitions of current versions.
    pub transitions: Vec<Transition>,
    /// Removal of noncurrent versions.
    pub noncurrent_version_expiration: Option<NoncurrentVersionExpiration>,
    /// Transitions of noncurrent versions.
    pub noncurrent_version_transitions: Vec<NoncurrentVersionTransition>,
    /// Abort of incomplete multipart uploads.
    pub abort_incomplete_multipart_upload: Option<AbortIncompleteMultipartUpload>,
}

impl LifecycleRule {
    /// An enabled rule with `id` and `filter` and no action yet.
    pub fn new(id: impl Into<String>, filter: LifecycleFilter) -> Self {
        Self {
            id: id.into(),
            enabled: true,
            filter,
            ..Self::default()
        }
    }

    fn validate(&self) -> Result<()> {
        let invalid = |reason: String| {
            Err(Error::InvalidArgument(format!(
                "lifecycle rule {:?}: {reason}",
                self.id
            )))
        };
        if self.id.chars().count() > LIFECYCLE_RULE_ID_CHARS_MAX {
            return invalid(format!(
                "the id has more than {LIFECYCLE_RULE_ID_CHARS_MAX} characters"
            ));
        }
        if self.expiration.is_none()
            && self.transitions.is_empty()
            && self.noncurrent_version_expiration.is_none()
            && self.noncurrent_version_transitions.is_empty()
            && self.abort_incomplete_multipart_upload.is_none()
        {
            return invalid("a rule needs at least one action".into());
        }
        if let (Some(min), Some(max)) = (
            self.filter.object_size_greater_than,
            self.filter.object_size_less_than,
        ) && max <= min
        {
            return invalid("object_size_less_than must exceed object_size_greater_than".into());
        }
        match self.expiration {
            Some(LifecycleExpiration::Days(0)) => {
                return invalid("expiration days must be positive".into());
            }
            Some(LifecycleExpiration::Date(date)) => check_midnight(date).or_else(&invalid)?,
            Some(LifecycleExpiration::ExpiredObjectDeleteMarker)
                if !self.filter.tags.is_empty() =>
            {
                return invalid(
                    "ExpiredObjectDeleteMarker cannot be used with a tag filter".into(),
                );
            }
            _ => {}
        }
        for transition in &self.transitions {
            check_target(transition.storage_class).or_else(&invalid)?;
            match transition.timing {
                TransitionTiming::Days(days)
                    if days < transition.storage_class.transition_days_min() =>
                {
                    return invalid(format!(
                        "days in a transition to {} must be at least {}",
                        transition.storage_class,
                        transition.storage_class.transition_days_min()
                    ));
                }
                TransitionTiming::Date(date) => check_midnight(date).or_else(&invalid)?,
                TransitionTiming::Days(_) => {}
            }
        }
        if let Some(expiration) = self.noncurrent_version_expiration {
            if expiration.noncurrent_days == 0 {
                return invalid("noncurrent days must be positive".into());
            }
            check_newer(expiration.newer_noncurrent_versions).or_else(&invalid)?;
        }
        for transition in &self.noncurrent_version_transitions {
            check_target(transition.storage_class).or_else(&invalid)?;
            check_newer(transition.newer_noncurrent_versions).or_else(&invalid)?;
            if transition.noncurrent_days < transition.storage_class.transition_days_min() {
                return invalid(format!(
                    "noncurrent days in a transition to {} must be at least {}",
                    transition.storage_class,
                    transition.storage_class.transition_days_min()
                ));
            }
        }
        if let Some(abort) = self.abort_incomplete_multipart_upload {
            if abort.days_after_initiation == 0 {
                return invalid("days after initiation must be positive".into());
            }
            if !self.filter.tags.is_empty() {
                return invalid("aborting uploads cannot be filtered by tags".into());
            }
        }
        Ok(())
    }
}

fn check_midnight(date: SystemTime) -> std::result::Result<(), String> {
    let nanos = nanos_of(date);
    if next_midnight_nanos(nanos) == nanos {
        Ok(())
    } else {
        Err("a lifecycle date must be midnight UTC".into())
    }
}

fn check_target(class: StorageClass) -> std::result::Result<(), String> {
    match class {
        StorageClass::StandardIa
        | StorageClass::OnezoneIa
        | StorageClass::IntelligentTiering
        | StorageClass::GlacierIr
        | StorageClass::Glacier
        | StorageClass::DeepArchive => Ok(()),
        other => Err(format!("{other} is not a transition target")),
    }
}

fn check_newer(newer: Option<u32>) -> std::result::Result<(), String> {
    match newer {
        Some(count) if !(1..=100).contains(&count) => {
            Err("newer noncurrent versions must be 1 to 100".into())
        }
        _ => Ok(()),
    }
}

fn validate(rules: &[LifecycleRule]) -> Result<()> {
    if rules.is_empty() || rules.len() > LIFECYCLE_RULES_MAX {
        return Err(Error::InvalidArgument(format!(
            "a lifecycle configuration has 1 to {LIFECYCLE_RULES_MAX} rules"
        )));
    }
    for (index, rule) in rules.iter().enumerate() {
        rule.validate()?;
        if !rule.id.is_empty() && rules[..index].iter().any(|other| other.id == rule.id) {
            return Err(Error::InvalidArgument(format!(
                "the rule id {:?} is used twice",
                rule.id
            )));
        }
    }
    Ok(())
}

fn encode_class(w: &mut Writer, class: StorageClass) {
    w.u8(class.to_byte());
}

fn decode_class(r: &mut Reader<'_>) -> Result<StorageClass> {
    StorageClass::from_byte(r.u8()?).ok_or_else(|| Error::corrupt_row("lifecycle: unknown class"))
}

fn encode_newer(w: &mut Writer, newer: Option<u32>) {
    w.opt_varint(newer.map(u64::from));
}

fn decode_u32(r: &mut Reader<'_>) -> Result<u32> {
    u32::try_from(r.varint()?)
        .map_err(|_| Error::corrupt_row("lifecycle: a number is out of range"))
}

fn decode_newer(r: &mut Reader<'_>) -> Result<Option<u32>> {
    r.opt_varint()?
        .map(|value| {
            u32::try_from(value)
                .map_err(|_| Error::corrupt_row("lifecycle: a number is out of range"))
        })
        .transpose()
}

pub(crate) fn encode_rules(rules: &[LifecycleRule]) -> Vec<u8> {
    let mut w = Writer::with_capacity(64 * rules.len());
    w.u8(1).varint(rules.len() as u64);
    for rule in rules {
        w.str(&rule.id)
            .bool(rule.enabled)
            .str(&rule.filter.prefix)
            .pairs(&rule.filter.tags);
        w.opt_varint(rule.filter.object_size_greater_than)
            .opt_varint(rule.filter.object_size_less_than);
        match rule.expiration {
            None => w.u8(0),
            Some(LifecycleExpiration::Days(days)) => w.u8(1).varint(u64::from(days)),
            Some(LifecycleExpiration::Date(date)) => w.u8(2).varint(nanos_of(date)),
            Some(LifecycleExpiration::ExpiredObjectDeleteMarker) => w.u8(3),
        };
        w.varint(rule.transitions.len() as u64);
        for transition in &rule.transitions {
            match transition.timing {
                TransitionTiming::Days(days) => w.u8(1).varint(u64::from(days)),
                TransitionTiming::Date(date) => w.u8(2).varint(nanos_of(date)),
            };
            encode_class(&mut w, transition.storage_class);
        }
        match rule.noncurrent_version_expiration {
            None => w.u8(0),
            Some(expiration) => {
                w.u8(1).varint(u64::from(expiration.noncurrent_days));
                encode_newer(&mut w, expiration.newer_noncurrent_versions);
                &mut w
            }
        };
        w.varint(rule.noncurrent_version_transitions.len() as u64);
        for transition in &rule.noncurrent_version_transitions {
            w.varint(u64::from(transition.noncurrent_days));
            encode_class(&mut w, transition.storage_class);
            encode_newer(&mut w, transition.newer_noncurrent_versions);
        }
        w.opt_varint(
            rule.abort_incomplete_multipart_upload
                .map(|abort| u64::from(abort.days_after_initiation)),
        );
    }
    w.finish()
}

pub(crate) fn decode_rules(bytes: &[u8]) -> Result<Vec<LifecycleRule>> {
    let mut r = Reader::new(bytes, "lifecycle configuration");
    if r.u8()? != 1 {
        return Err(Error::corrupt_row("lifecycle: unknown format"));
    }
    let count = r.len(LIFECYCLE_RULES_MAX)?;
    let mut rules = Vec::with_capacity(count);
    for _ in 0..count {
        let id = r.string()?;
        let enabled = r.bool()?;
        let filter = LifecycleFilter {
            prefix: r.string()?,
            tags: r.pairs()?,
            object_size_greater_than: r.opt_varint()?,
            object_size_less_than: r.opt_varint()?,
        };
        let expiration = match r.u8()? {
            0 => None,
            1 => Some(LifecycleExpiration::Days(decode_u32(&mut r)?)),
            2 => Some(LifecycleExpiration::Date(system_time(r.varint()?))),
            3 => Some(LifecycleExpiration::ExpiredObjectDeleteMarker),
            _ => return Err(Error::corrupt_row("lifecycle: unknown expiration")),
        };
        let transitions_count = r.len(r.remaining())?;
        let mut transitions = Vec::with_capacity(transitions_count);
        for _ in 0..transitions_count {
            let timing = match r.u8()? {
                1 => TransitionTiming::Days(decode_u32(&mut r)?),
                2 => TransitionTiming::Date(system_time(r.varint()?)),
                _ => return Err(Error::corrupt_row("lifecycle: unknown timing")),
            };
            transitions.push(Transition {
                timing,
                storage_class: decode_class(&mut r)?,
            });
        }
        let noncurrent_version_expiration = match r.u8()? {
            0 => None,
            1 => Some(NoncurrentVersionExpiration {
                noncurrent_days: decode_u32(&mut r)?,
                newer_noncurrent_versions: decode_newer(&mut r)?,
            }),
            _ => {
                return Err(Error::corrupt_row(
                    "lifecycle: unknown noncurrent expiration",
                ));
            }
        };
        let noncurrent_count = r.len(r.remaining())?;
        let mut noncurrent_version_transitions = Vec::with_capacity(noncurrent_count);
        for _ in 0..noncurrent_count {
            noncurrent_version_transitions.push(NoncurrentVersionTransition {
                noncurrent_days: decode_u32(&mut r)?,
                storage_class: decode_class(&mut r)?,
                newer_noncurrent_versions: decode_newer(&mut r)?,
            });
        }
        let abort_incomplete_multipart_upload = r
            .opt_varint()?
            .map(|days| {
                u32::try_from(days)
                    .map(|days_after_initiation| AbortIncompleteMultipartUpload {
                        days_after_initiation,
                    })
                    .map_err(|_| Error::corrupt_row("lifecycle: a number is out of range"))
            })
            .transpose()?;
        rules.push(LifecycleRule {
            id,
            enabled,
            filter,
            expiration,
            transitions,
            noncurrent_version_expiration,
            noncurrent_version_transitions,
            abort_incomplete_multipart_upload,
        });
    }
    r.finish()?;
    Ok(rules)
}

impl StoreInner {
    /// The lifecycle rules of a bucket (empty if it has none).
    pub(crate) fn lifecycle_rules(&self, bucket_id: u64) -> Result<Vec<LifecycleRule>> {
        match self.engine.get(&keys::lifecycle(bucket_id))? {
            Some(bytes) => decode_rules(&bytes),
            None => Ok(Vec::new()),
        }
    }
}

/// `put_bucket_lifecycle_configuration` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct PutBucketLifecycleConfiguration<'a> {
    store: &'a StoreInner,
    bucket: String,
    rules: Vec<LifecycleRule>,
}

impl PutBucketLifecycleConfiguration<'_> {
    /// Adds a rule.
    pub fn rule(mut self, rule: LifecycleRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Replaces the bucket's lifecycle configuration.
    pub fn send(self) -> Result<()> {
        validate(&self.rules)?;
        let bucket = self.store.bucket(&self.bucket)?;
        self.store
            .engine
            .put(&keys::lifecycle(bucket.id), &encode_rules(&self.rules))?;
        Ok(())
    }
}

/// `get_bucket_lifecycle_configuration` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct GetBucketLifecycleConfiguration<'a> {
    store: &'a StoreInner,
    bucket: String,
}

impl GetBucketLifecycleConfiguration<'_> {
    /// The rules; `NoSuchConfiguration` if the bucket has none.
    pub fn send(self) -> Result<Vec<LifecycleRule>> {
        let bucket = self.store.bucket(&self.bucket)?;
        let rules = self.store.lifecycle_rules(bucket.id)?;
        if rules.is_empty() {
            return Err(Error::NoSuchConfiguration {
                what: "lifecycle configuration".into(),
            });
        }
        Ok(rules)
    }
}

impl<'a> Objects<'a> {
    /// Sets a bucket's lifecycle rules.
    pub fn put_bucket_lifecycle_configuration(
        &self,
        bucket: impl Into<String>,
    ) -> PutBucketLifecycleConfiguration<'a> {
        PutBucketLifecycleConfiguration {
            store: self.store,
            bucket: bucket.into(),
            rules: Vec::new(),
        }
    }

    /// Reads a bucket's lifecycle rules.
    pub fn get_bucket_lifecycle_configuration(
        &self,
        bucket: impl Into<String>,
    ) -> GetBucketLifecycleConfiguration<'a> {
        GetBucketLifecycleConfiguration {
            store: self.store,
            bucket: bucket.into(),
        }
    }

    /// Removes a bucket's lifecycle rules.
    pub fn delete_bucket_lifecycle(&self, bucket: &str) -> Result<()> {
        let bucket = self.store.bucket(bucket)?;
        self.store.engine.delete(&keys::lifecycle(bucket.id))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn full_rule() -> LifecycleRule {
        LifecycleRule {
            id: "all".into(),
            enabled: true,
            filter: LifecycleFilter {
                prefix: "logs/".into(),
                tags: vec![("t".into(), "v".into())],
                object_size_greater_than: Some(10),
                object_size_less_than: Some(1000),
            },
            expiration: Some(LifecycleExpiration::Days(5)),
            transitions: vec![Transition::after_days(30, StorageClass::StandardIa)],
            noncurrent_version_expiration: Some(NoncurrentVersionExpiration {
                noncurrent_days: 3,
                newer_noncurrent_versions: Some(2),
            }),
            noncurrent_version_transitions: vec![NoncurrentVersionTransition {
                noncurrent_days: 40,
                storage_class: StorageClass::Glacier,
                newer_noncurrent_versions: None,
            }],
            abort_incomplete_multipart_upload: None,
        }
    }

    #[test]
    fn rules_round_trip() {
        let rules = vec![
            full_rule(),
            LifecycleRule {
                expiration: Some(LifecycleExpiration::Date(
                    UNIX_EPOCH + Duration::from_secs(86_400 * 100),
                )),
                abort_incomplete_multipart_upload: Some(AbortIncompleteMultipartUpload {
                    days_after_initiation: 7,
                }),
                ..LifecycleRule::new("b", LifecycleFilter::default())
            },
        ];
        assert_eq!(decode_rules(&encode_rules(&rules)).unwrap(), rules);
        validate(&rules).unwrap();
    }

    #[test]
    fn invalid_rules_are_refused() {
        let mut too_soon = full_rule();
        too_soon.transitions = vec![Transition::after_days(29, StorageClass::OnezoneIa)];
        assert!(validate(&[too_soon]).is_err());
        let mut no_action = LifecycleRule::new("x", LifecycleFilter::default());
        assert!(validate(std::slice::from_ref(&no_action)).is_err());
        no_action.expiration = Some(LifecycleExpiration::Date(
            UNIX_EPOCH + Duration::from_secs(5),
        ));
        assert!(validate(&[no_action]).is_err());
        assert!(validate(&[full_rule(), full_rule()]).is_err());
        let mut to_standard = full_rule();
        to_standard.transitions = vec![Transition::after_days(40, StorageClass::Standard)];
        assert!(validate(&[to_standard]).is_err());
        assert!(validate(&[]).is_err());
    }
}
