//! Object lock: per-version retention (governance or compliance) and legal
//! hold, the bucket default applied at PUT, and the rule that permanently
//! deleting a protected version is refused while delete markers are still
//! allowed (S3 "Using S3 Object Lock").

use std::time::SystemTime;

use super::Objects;
use super::error::{Error, Result};
use super::limits::RETENTION_YEARS_MAX;
use super::record::{BucketRecord, ObjectRecord, VersionKind};
use super::store::{StoreInner, nanos_of, system_time};
use super::types::{ObjectLockMode, ObjectLockRetention};
use super::versions::{KeyChange, StoredVersion, days_nanos, parse_version_id};

/// The lock parameters of a write.
#[derive(Debug, Clone, Default)]
pub(crate) struct LockRequest {
    pub(crate) mode: Option<ObjectLockMode>,
    pub(crate) retain_until: Option<SystemTime>,
    pub(crate) legal_hold: bool,
}

/// The object-lock setters of a request that creates a version (put,
/// copy, multipart upload), on a builder with a `lock: LockRequest` field.
macro_rules! lock_setters {
    () => {
        /// The new version's retention mode (with
        /// `object_lock_retain_until_date`).
        pub fn object_lock_mode(mut self, mode: $crate::objects::ObjectLockMode) -> Self {
            self.lock.mode = Some(mode);
            self
        }

        /// Until when the new version is retained.
        pub fn object_lock_retain_until_date(mut self, until: std::time::SystemTime) -> Self {
            self.lock.retain_until = Some(until);
            self
        }

        /// Places a legal hold on the new version.
        pub fn object_lock_legal_hold(mut self, on: bool) -> Self {
            self.lock.legal_hold = on;
            self
        }
    };
}

pub(crate) use lock_setters;

/// The retention and legal hold a new version gets: the request's, or the
/// bucket's default retention.
pub(crate) fn resolve_new_lock(
    bucket: &BucketRecord,
    request: &LockRequest,
    now_nanos: u64,
) -> Result<(Option<(ObjectLockMode, u64)>, bool)> {
    let asked = request.mode.is_some() || request.retain_until.is_some() || request.legal_hold;
    if asked && !bucket.object_lock {
        return Err(Error::InvalidRequest(
            "the bucket has no object lock configuration".into(),
        ));
    }
    let retention = match (request.mode, request.retain_until) {
        (Some(mode), Some(until)) => {
            let until = nanos_of(until);
            check_future(until, now_nanos)?;
            Some((mode, until))
        }
        (None, None) => bucket.default_retention.map(|default| {
            (
                default.mode,
                now_nanos.saturating_add(days_nanos(default.period.days())),
            )
        }),
        _ => {
            return Err(Error::InvalidArgument(
                "object lock mode and retain-until date must be given together".into(),
            ));
        }
    };
    Ok((retention, request.legal_hold))
}

fn check_future(until_nanos: u64, now_nanos: u64) -> Result<()> {
    if until_nanos <= now_nanos {
        return Err(Error::InvalidArgument(
            "the retain-until date must be in the future".into(),
        ));
    }
    let max = now_nanos.saturating_add(days_nanos(u64::from(RETENTION_YEARS_MAX) * 365));
    if until_nanos > max {
        return Err(Error::InvalidArgument(format!(
            "the retain-until date is more than {RETENTION_YEARS_MAX} years ahead"
        )));
    }
    Ok(())
}

/// Refuses the permanent removal of a protected version.
pub(crate) fn check_removal(
    object: &ObjectRecord,
    now_nanos: u64,
    bypass_governance: bool,
) -> Result<()> {
    if object.attributes.legal_hold {
        return Err(Error::AccessDenied {
            reason: "the version is under a legal hold".into(),
        });
    }
    match object.attributes.retention {
        Some((ObjectLockMode::Compliance, until)) if until > now_nanos => {
            Err(Error::AccessDenied {
                reason: "the version is under compliance retention".into(),
            })
        }
        Some((ObjectLockMode::Governance, until)) if until > now_nanos && !bypass_governance => {
            Err(Error::AccessDenied {
                reason: "the version is under governance retention (bypass not requested)".into(),
            })
        }
        _ => Ok(()),
    }
}

/// Whether a version is protected from removal right now (lifecycle skips
/// such versions).
pub(crate) fn is_protected(object: &ObjectRecord, now_nanos: u64) -> bool {
    check_removal(object, now_nanos, false).is_err()
}

/// Checks a retention change on a version whose current retention is
/// `current`.
fn check_retention_change(
    current: Option<(ObjectLockMode, u64)>,
    next: Option<(ObjectLockMode, u64)>,
    now_nanos: u64,
    bypass_governance: bool,
) -> Result<()> {
    let Some((mode, until)) = current.filter(|(_, until)| *until > now_nanos) else {
        return Ok(());
    };
    let weakens = match next {
        None => true,
        Some((next_mode, next_until)) => {
            next_until < until || (mode == ObjectLockMode::Compliance && next_mode != mode)
        }
    };
    if !weakens {
        return Ok(());
    }
    match mode {
        ObjectLockMode::Compliance => Err(Error::AccessDenied {
            reason: "compliance retention can only be extended".into(),
        }),
        ObjectLockMode::Governance if !bypass_governance => Err(Error::AccessDenied {
            reason: "shortening governance retention needs bypass_governance_retention".into(),
        }),
        ObjectLockMode::Governance => Ok(()),
    }
}

/// Loads the version a lock operation names (the current one without a
/// version id); delete markers have no lock.
pub(crate) fn lock_target(
    change: &KeyChange<'_>,
    key: &str,
    version_id: Option<&str>,
) -> Result<StoredVersion> {
    let version = match version_id {
        Some(id) => change
            .find(parse_version_id(id)?)?
            .ok_or_else(|| Error::NoSuchVersion {
                key: key.to_owned(),
                version_id: id.to_owned(),
            })?,
        None => change.current()?.ok_or_else(|| Error::no_such_key(key))?,
    };
    if version.record.is_delete_marker() {
        return Err(Error::MethodNotAllowed {
            version_id: version.version_id(),
            last_modified: system_time(version.record.last_modified_nanos),
        });
    }
    Ok(version)
}

/// `put_object_retention` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct PutObjectRetention<'a> {
    store: &'a StoreInner,
    bucket: String,
    key: String,
    version_id: Option<String>,
    retention: Option<ObjectLockRetention>,
    bypass_governance: bool,
}

impl PutObjectRetention<'_> {
    /// The version (default: the current one).
    pub fn version_id(mut self, version_id: impl Into<String>) -> Self {
        self.version_id = Some(version_id.into());
        self
    }

    /// The new retention (without one, the retention is removed, which a
    /// governance retention allows only with bypass).
    pub fn retention(mut self, retention: ObjectLockRetention) -> Self {
        self.retention = Some(retention);
        self
    }

    /// Allows shortening or removing a governance retention.
    pub fn bypass_governance_retention(mut self, bypass: bool) -> Self {
        self.bypass_governance = bypass;
        self
    }

    /// Sets the retention.
    pub fn send(self) -> Result<()> {
        let store = self.store;
        let _gate = store.gate.read();
        let bucket = store.bucket(&self.bucket)?;
        if !bucket.object_lock {
            return Err(Error::InvalidRequest(
                "the bucket has no object lock configuration".into(),
            ));
        }
        let _key_lock = store.lock_key(bucket.id, &self.key);
        let mut change = KeyChange::load(store, &bucket, &self.bucket, &self.key)?;
        let mut version = lock_target(&change, &self.key, self.version_id.as_deref())?;
        let now = change.now_nanos;
        let next = match self.retention {
            Some(retention) => {
                let until = nanos_of(retention.retain_until_date);
                check_future(until, now)?;
                Some((retention.mode, until))
            }
            None => None,
        };
        if let VersionKind::Object(object) = &mut version.record.kind {
            check_retention_change(
                object.attributes.retention,
                next,
                now,
                self.bypass_governance,
            )?;
            object.attributes.retention = next;
        }
        change.rewrite(&version);
        change.commit()
    }
}

/// `get_object_retention` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct GetObjectRetention<'a> {
    store: &'a StoreInner,
    bucket: String,
    key: String,
    version_id: Option<String>,
}

impl GetObjectRetention<'_> {
    /// The version (default: the current one).
    pub fn version_id(mut self, version_id: impl Into<String>) -> Self {
        self.version_id = Some(version_id.into());
        self
    }

    /// The version's retention, if any.
    pub fn send(self) -> Result<Option<ObjectLockRetention>> {
        let (_, object) = read_lock_target(
            self.store,
            &self.bucket,
            &self.key,
            self.version_id.as_deref(),
        )?;
        Ok(object
            .attributes
            .retention
            .map(|(mode, until)| ObjectLockRetention {
                mode,
                retain_until_date: system_time(until),
            }))
    }
}

/// `put_object_legal_hold` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct PutObjectLegalHold<'a> {
    store: &'a StoreInner,
    bucket: String,
    key: String,
    version_id: Option<String>,
    on: bool,
}

impl PutObjectLegalHold<'_> {
    /// The version (default: the current one).
    pub fn version_id(mut self, version_id: impl Into<String>) -> Self {
        self.version_id = Some(version_id.into());
        self
    }

    /// Whether the hold is on (`ON`) or off (`OFF`).
    pub fn status(mut self, on: bool) -> Self {
        self.on = on;
        self
    }

    /// Sets the hold.
    pub fn send(self) -> Result<()> {
        let store = self.store;
        let _gate = store.gate.read();
        let bucket = store.bucket(&self.bucket)?;
        if !bucket.object_lock {
            return Err(Error::InvalidRequest(
                "the bucket has no object lock configuration".into(),
            ));
        }
        let _key_lock = store.lock_key(bucket.id, &self.key);
        let mut change = KeyChange::load(store, &bucket, &self.bucket, &self.key)?;
        let mut version = lock_target(&change, &self.key, self.version_id.as_deref())?;
        if let VersionKind::Object(object) = &mut version.record.kind {
            object.attributes.legal_hold = self.on;
        }
        change.rewrite(&version);
        change.commit()
    }
}

/// `get_object_legal_hold` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct GetObjectLegalHold<'a> {
    store: &'a StoreInner,
    bucket: String,
    key: String,
    version_id: Option<String>,
}

impl GetObjectLegalHold<'_> {
    /// The version (default: the current one).
    pub fn version_id(mut self, version_id: impl Into<String>) -> Self {
        self.version_id = Some(version_id.into());
        self
    }

    /// Whether the version is under a legal hold.
    pub fn send(self) -> Result<bool> {
        let (_, object) = read_lock_target(
            self.store,
            &self.bucket,
            &self.key,
            self.version_id.as_deref(),
        )?;
        Ok(object.attributes.legal_hold)
    }
}

pub(crate) fn read_lock_target(
    store: &StoreInner,
    bucket_name: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<(StoredVersion, ObjectRecord)> {
    let bucket = store.bucket(bucket_name)?;
    let change = KeyChange::load(store, &bucket, bucket_name, key)?;
    let version = lock_target(&change, key, version_id)?;
    let object = version
        .record
        .object()
        .cloned()
        .ok_or_else(|| Error::no_such_key(key))?;
    Ok((version, object))
}

impl<'a> Objects<'a> {
    /// Sets a version's retention.
    pub fn put_object_retention(
        &self,
        bucket: impl Into<String>,
        key: impl Into<String>,
    ) -> PutObjectRetention<'a> {
        PutObjectRetention {
            store: self.store,
            bucket: bucket.into(),
            key: key.into(),
            version_id: None,
            retention: None,
            bypass_governance: false,
        }
    }

    /// Reads a version's retention.
    pub fn get_object_retention(
        &self,
        bucket: impl Into<String>,
        key: impl Into<String>,
    ) -> GetObjectRetention<'a> {
        GetObjectRetention {
            store: self.store,
            bucket: bucket.into(),
            key: key.into(),
            version_id: None,
        }
    }

    /// Sets or clears a version's legal hold.
    pub fn put_object_legal_hold(
        &self,
        bucket: impl Into<String>,
        key: impl Into<String>,
    ) -> PutObjectLegalHold<'a> {
        PutObjectLegalHold {
            store: self.store,
            bucket: bucket.into(),
            key: key.into(),
            version_id: None,
            on: false,
        }
    }

    /// Reads a version's legal hold.
    pub fn get_object_legal_hold(
        &self,
        bucket: impl Into<String>,
        key: impl Into<String>,
    ) -> GetObjectLegalHold<'a> {
        GetObjectLegalHold {
            store: self.store,
            bucket: bucket.into(),
            key: key.into(),
            version_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compliance_only_extends_and_governance_needs_bypass() {
        let now = 100;
        let c = Some((ObjectLockMode::Compliance, 200));
        assert!(
            check_retention_change(c, Some((ObjectLockMode::Compliance, 300)), now, false).is_ok()
        );
        assert!(
            check_retention_change(c, Some((ObjectLockMode::Compliance, 150)), now, true).is_err()
        );
        assert!(check_retention_change(c, None, now, true).is_err());
        assert!(
            check_retention_change(c, Some((ObjectLockMode::Governance, 300)), now, true).is_err()
        );
        let g = Some((ObjectLockMode::Governance, 200));
        assert!(
            check_retention_change(g, Some((ObjectLockMode::Governance, 150)), now, false).is_err()
        );
        assert!(
            check_retention_change(g, Some((ObjectLockMode::Governance, 150)), now, true).is_ok()
        );
        assert!(
            check_retention_change(g, Some((ObjectLockMode::Compliance, 250)), now, false).is_ok()
        );
        assert!(check_retention_change(g, None, now, true).is_ok());
        // An expired retention can be changed freely.
        assert!(
            check_retention_change(Some((ObjectLockMode::Compliance, 50)), None, now, false)
                .is_ok()
        );
    }
}
