//! `restore_object`: makes an archived (GLACIER, DEEP_ARCHIVE) version
//! readable for a number of days. S3 restores asynchronously, in minutes
//! to hours; here the chunks are local, so the restore completes at once
//! and only the expiry (rounded up to midnight UTC, as in S3) is recorded.

use super::Objects;
use super::error::{Error, Result};
use super::events::{EventType, PendingEvent};
use super::record::VersionKind;
use super::store::{StoreInner, system_time};
use super::versions::{KeyChange, days_nanos, next_midnight_nanos, parse_version_id};

/// `restore_object` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct RestoreObject<'a> {
    store: &'a StoreInner,
    bucket: String,
    key: String,
    version_id: Option<String>,
    days: u32,
}

impl RestoreObject<'_> {
    /// The version (default: the current one).
    pub fn version_id(mut self, version_id: impl Into<String>) -> Self {
        self.version_id = Some(version_id.into());
        self
    }

    /// How many days the restored copy stays readable (default 1).
    pub fn days(mut self, days: u32) -> Self {
        self.days = days;
        self
    }

    /// Restores; returns until when the object is readable. Restoring a
    /// restored object again moves the expiry.
    pub fn send(self) -> Result<std::time::SystemTime> {
        if self.days == 0 {
            return Err(Error::InvalidArgument(
                "a restore lasts at least one day".into(),
            ));
        }
        let store = self.store;
        let _gate = store.gate.read();
        let bucket = store.bucket(&self.bucket)?;
        let _key_lock = store.lock_key(bucket.id, &self.key);
        let mut change = KeyChange::load(store, &bucket, &self.bucket, &self.key)?;
        let mut version = match &self.version_id {
            Some(id) => {
                change
                    .find(parse_version_id(id)?)?
                    .ok_or_else(|| Error::NoSuchVersion {
                        key: self.key.clone(),
                        version_id: id.clone(),
                    })?
            }
            None => change
                .current()?
                .ok_or_else(|| Error::no_such_key(&self.key))?,
        };
        let now = change.now_nanos;
        let until = next_midnight_nanos(now.saturating_add(days_nanos(u64::from(self.days))));
        let VersionKind::Object(object) = &mut version.record.kind else {
            return Err(Error::MethodNotAllowed {
                version_id: version.version_id(),
                last_modified: system_time(version.record.last_modified_nanos),
            });
        };
        if !object.attributes.storage_class.is_archive() {
            return Err(Error::InvalidObjectState {
                storage_class: object.attributes.storage_class.to_string(),
            });
        }
        object.restored_until = Some(until);
        let size = object.size;
        change.rewrite(&version);
        change.event(PendingEvent {
            event_type: EventType::ObjectRestoreCompleted,
            key: self.key.clone(),
            version_id: Some(version.version_id()),
            size: Some(size),
            e_tag: None,
        });
        change.commit()?;
        Ok(system_time(until))
    }
}

impl<'a> Objects<'a> {
    /// Restores an archived object for reading.
    pub fn restore_object(
        &self,
        bucket: impl Into<String>,
        key: impl Into<String>,
    ) -> RestoreObject<'a> {
        RestoreObject {
            store: self.store,
            bucket: bucket.into(),
            key: key.into(),
            version_id: None,
            days: 1,
        }
    }
}
