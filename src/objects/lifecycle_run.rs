//! The lifecycle runner: applies every bucket's rules at the database
//! clock's "now", as S3 does about once a day.
//!
//! Timing follows S3: a rule's days count from the version's creation
//! (noncurrent days from its successor's creation, when it became
//! noncurrent) and the result is rounded up to the next midnight UTC.
//! Each key is decided and changed under its lock, in one batch, so the
//! runner never acts on a state that changed under it. Conflicts resolve
//! as in S3: a permanent deletion wins over a transition, a transition
//! over a delete-marker creation never arises (expiration of a current
//! version skips its transitions), and the coldest due class wins among
//! transitions. Versions under object lock are never removed.

use super::Objects;
use super::error::Result;
use super::events::{EventType, PendingEvent};
use super::ingest::hex;
use super::keys;
use super::lifecycle::{LifecycleExpiration, LifecycleRule, TransitionTiming};
use super::limits::TRANSITION_OBJECT_BYTES_MIN;
use super::lock::is_protected;
use super::record::{Body, BucketRecord, UploadRecord, VersionKind};
use super::store::{StoreInner, nanos_of};
use super::types::{StorageClass, Versioning};
use super::versions::{KeyChange, StoredVersion, days_nanos, next_midnight_nanos};
use crate::storage::Direction;

/// What one lifecycle run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LifecycleReport {
    /// Current versions expired (removed, or hidden by a delete marker).
    pub current_versions_expired: u64,
    /// Noncurrent versions (and delete markers) removed for good.
    pub noncurrent_versions_expired: u64,
    /// Lone delete markers removed.
    pub delete_markers_removed: u64,
    /// Versions moved to another storage class.
    pub transitions: u64,
    /// Incomplete multipart uploads aborted.
    pub uploads_aborted: u64,
}

/// When a rule's "days after `start`" falls due.
fn due_after(start_nanos: u64, days: u32) -> u64 {
    next_midnight_nanos(start_nanos.saturating_add(days_nanos(u64::from(days))))
}

/// The transition due for a version created (or made noncurrent) at
/// `start`: the coldest class among the due ones.
fn due_transition<'r>(
    rules: impl Iterator<Item = &'r LifecycleRule>,
    start: u64,
    now: u64,
    noncurrent_rank: Option<u32>,
) -> Option<StorageClass> {
    let mut best: Option<StorageClass> = None;
    let mut consider = |class: StorageClass| {
        if best.is_none_or(|b| class.coldness() > b.coldness()) {
            best = Some(class);
        }
    };
    for rule in rules {
        match noncurrent_rank {
            None => {
                for transition in &rule.transitions {
                    let due = match transition.timing {
                        TransitionTiming::Days(days) => due_after(start, days),
                        TransitionTiming::Date(date) => nanos_of(date),
                    };
                    if due <= now {
                        consider(transition.storage_class);
                    }
                }
            }
            Some(rank) => {
                for transition in &rule.noncurrent_version_transitions {
                    let kept = transition.newer_noncurrent_versions.unwrap_or(0);
                    if rank >= kept && due_after(start, transition.noncurrent_days) <= now {
                        consider(transition.storage_class);
                    }
                }
            }
        }
    }
    best
}

/// Whether a rule may transition an object of `size` (S3 skips objects
/// under 128 KB unless the rule filters on size explicitly).
fn may_transition(rule: &LifecycleRule, size: u64) -> bool {
    size >= TRANSITION_OBJECT_BYTES_MIN || rule.filter.object_size_greater_than.is_some()
}

impl StoreInner {
    pub(crate) fn run_lifecycle(&self) -> Result<LifecycleReport> {
        let mut report = LifecycleReport::default();
        let buckets = self.all_buckets();
        for (name, bucket) in buckets {
            let rules: Vec<LifecycleRule> = self
                .lifecycle_rules(bucket.id)?
                .into_iter()
                .filter(|rule| rule.enabled)
                .collect();
            if rules.is_empty() {
                continue;
            }
            let _gate = self.gate.read();
            // Re-read under the gate: the bucket may have changed or gone.
            let Some(bucket) = self.find_bucket(&name)? else {
                continue;
            };
            self.lifecycle_versions(&bucket, &name, &rules, &mut report)?;
            self.lifecycle_uploads(&bucket, &rules, &mut report)?;
        }
        Ok(report)
    }

    fn lifecycle_versions(
        &self,
        bucket: &BucketRecord,
        name: &str,
        rules: &[LifecycleRule],
        report: &mut LifecycleReport,
    ) -> Result<()> {
        let mut previous: Option<String> = None;
        for row in self.engine.prefix(
            &keys::versions_of_bucket(bucket.id),
            Direction::Forward,
            None,
        )? {
            let (row_key, _) = row?;
            let (key, _) = keys::parse_version(&row_key)?;
            if previous.as_deref() == Some(key.as_str()) {
                continue;
            }
            previous = Some(key.clone());
            if rules.iter().any(|rule| rule.filter.matches_key(&key)) {
                self.lifecycle_key(bucket, name, &key, rules, report)?;
            }
        }
        Ok(())
    }

    fn lifecycle_key(
        &self,
        bucket: &BucketRecord,
        name: &str,
        key: &str,
        rules: &[LifecycleRule],
        report: &mut LifecycleReport,
    ) -> Result<()> {
        let _key_lock = self.lock_key(bucket.id, key);
        let mut change = KeyChange::load(self, bucket, name, key)?;
        let versions = self.versions_of(bucket.id, key)?;
        let Some(current) = versions.first() else {
            return Ok(());
        };
        let now = change.now_nanos;
        let rules: Vec<&LifecycleRule> =
            rules.iter().filter(|r| r.filter.matches_key(key)).collect();
        let mut changed = false;
        match current.record.object() {
            Some(object) => {
                let applicable: Vec<&LifecycleRule> = rules
                    .iter()
                    .copied()
                    .filter(|r| {
                        r.filter
                            .matches_object(&object.attributes.tags, object.size)
                    })
                    .collect();
                let created = current.record.last_modified_nanos;
                let expired = applicable.iter().any(|rule| match rule.expiration {
                    Some(LifecycleExpiration::Days(days)) => due_after(created, days) <= now,
                    Some(LifecycleExpiration::Date(date)) => nanos_of(date) <= now,
                    _ => false,
                });
                if expired {
                    changed |= self.expire_current_in(&mut change, bucket, key, current)?;
                    if changed {
                        report.current_versions_expired += 1;
                    }
                } else if let Some(class) = due_transition(
                    applicable
                        .iter()
                        .copied()
                        .filter(|r| may_transition(r, object.size)),
                    created,
                    now,
                    None,
                ) && class.coldness() > object.attributes.storage_class.coldness()
                {
                    self.transition_in(&mut change, key, current, class)?;
                    report.transitions += 1;
                    changed = true;
                }
            }
            None => {
                let lone_marker = versions.len() == 1
                    && rules.iter().any(|r| {
                        r.expiration == Some(LifecycleExpiration::ExpiredObjectDeleteMarker)
                    });
                if lone_marker {
                    change.remove(current);
                    change.event(lifecycle_event(
                        EventType::LifecycleExpirationDelete,
                        key,
                        current,
                    ));
                    report.delete_markers_removed += 1;
                    changed = true;
                }
            }
        }
        for (index, version) in versions.iter().enumerate().skip(1) {
            let since = versions[index - 1].record.last_modified_nanos;
            let rank = (index - 1) as u32;
            let (tags, size) = match version.record.object() {
                Some(object) => (object.attributes.tags.as_slice(), object.size),
                None => (&[][..], 0),
            };
            let applicable: Vec<&LifecycleRule> = rules
                .iter()
                .copied()
                .filter(|r| r.filter.matches_object(tags, size))
                .collect();
            let expire = applicable.iter().any(|rule| {
                rule.noncurrent_version_expiration
                    .is_some_and(|expiration| {
                        rank >= expiration.newer_noncurrent_versions.unwrap_or(0)
                            && due_after(since, expiration.noncurrent_days) <= now
                    })
            });
            let protected = version
                .record
                .object()
                .is_some_and(|o| is_protected(o, now));
            if expire && !protected {
                change.remove(version);
                change.event(lifecycle_event(
                    EventType::LifecycleExpirationDelete,
                    key,
                    version,
                ));
                report.noncurrent_versions_expired += 1;
                changed = true;
                continue;
            }
            if let Some(object) = version.record.object()
                && let Some(class) = due_transition(
                    applicable
                        .iter()
                        .copied()
                        .filter(|r| may_transition(r, size)),
                    since,
                    now,
                    Some(rank),
                )
                && class.coldness() > object.attributes.storage_class.coldness()
            {
                self.transition_in(&mut change, key, version, class)?;
                report.transitions += 1;
                changed = true;
            }
        }
        if changed {
            change.commit()?;
        }
        Ok(())
    }

    /// Expires the current version as a DELETE without version id would.
    /// Returns whether anything changed.
    fn expire_current_in(
        &self,
        change: &mut KeyChange<'_>,
        bucket: &BucketRecord,
        key: &str,
        current: &StoredVersion,
    ) -> Result<bool> {
        match bucket.versioning {
            Versioning::Unversioned => {
                change.remove(current);
                change.event(lifecycle_event(
                    EventType::LifecycleExpirationDelete,
                    key,
                    current,
                ));
            }
            Versioning::Enabled | Versioning::Suspended => {
                let id = if bucket.versioning == Versioning::Enabled {
                    Some(self.new_id8())
                } else {
                    if let Some(null) = change.null_version()? {
                        if null
                            .record
                            .object()
                            .is_some_and(|o| is_protected(o, change.now_nanos))
                        {
                            return Ok(false);
                        }
                        change.remove(&null);
                    }
                    None
                };
                let marker = change.add(id, VersionKind::DeleteMarker);
                change.event(lifecycle_event(
                    EventType::LifecycleExpirationDeleteMarkerCreated,
                    key,
                    &marker,
                ));
            }
        }
        Ok(true)
    }

    /// Moves a version to `class`, copying its chunks to the class's tier
    /// if that differs (synced before the batch commits).
    fn transition_in(
        &self,
        change: &mut KeyChange<'_>,
        key: &str,
        version: &StoredVersion,
        class: StorageClass,
    ) -> Result<()> {
        let mut moved = version.clone();
        let VersionKind::Object(object) = &mut moved.record.kind else {
            return Ok(());
        };
        let tier = class.tier()?;
        if let Body::Chunked(list) = &object.body
            && list.tier != tier
        {
            let ingested = self.retier(list, tier)?;
            self.sync_ingested(&ingested)?;
            self.add_locations(&mut change.batch, tier, &ingested.new_locations);
            if let Body::Chunked(new_list) = &ingested.body {
                self.add_refs(&mut change.batch, new_list);
            }
            self.release_refs(&mut change.batch, list, change.now_nanos);
            object.body = ingested.body;
        }
        object.attributes.storage_class = class;
        object.restored_until = None;
        change.rewrite(&moved);
        change.event(lifecycle_event(EventType::LifecycleTransition, key, &moved));
        Ok(())
    }

    fn lifecycle_uploads(
        &self,
        bucket: &BucketRecord,
        rules: &[LifecycleRule],
        report: &mut LifecycleReport,
    ) -> Result<()> {
        let now = self.now_nanos();
        let mut due = Vec::new();
        for row in self.engine.prefix(
            &keys::uploads_of_bucket(bucket.id),
            Direction::Forward,
            None,
        )? {
            let (row_key, value) = row?;
            let (key, id) = keys::parse_upload(&row_key)?;
            let upload = UploadRecord::decode(&value)?;
            let expired = rules.iter().any(|rule| {
                rule.filter.matches_key(&key)
                    && rule.abort_incomplete_multipart_upload.is_some_and(|abort| {
                        due_after(upload.initiated_nanos, abort.days_after_initiation) <= now
                    })
            });
            if expired {
                due.push((key, hex(&id)));
            }
        }
        for (key, upload_id) in due {
            match self.abort_upload(bucket, &key, &upload_id) {
                Ok(()) => report.uploads_aborted += 1,
                // Completed or aborted since it was read.
                Err(super::error::Error::NoSuchUpload { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

fn lifecycle_event(event_type: EventType, key: &str, version: &StoredVersion) -> PendingEvent {
    PendingEvent {
        event_type,
        key: key.to_owned(),
        version_id: Some(version.version_id()),
        size: version.record.object().map(|o| o.size),
        e_tag: version.record.object().map(|o| o.e_tag.clone()),
    }
}

impl Objects<'_> {
    /// Applies every bucket's lifecycle rules now (by the database clock).
    /// S3 runs lifecycle about once a day; call this on the schedule you
    /// want (tests move a `ManualClock` by days and call it).
    pub fn run_lifecycle(&self) -> Result<LifecycleReport> {
        self.store.run_lifecycle()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_up_to_the_next_midnight() {
        let day = 86_400 * 1_000_000_000u64;
        // Replaced 10:30 on day 14 with 3 days: due at midnight starting day 18.
        let replaced = 14 * day + day * 105 / 240;
        assert_eq!(due_after(replaced, 3), 18 * day);
        assert_eq!(due_after(14 * day, 3), 17 * day);
    }
}
