//! Object lock: default retention at PUT, governance and compliance
//! rules, legal hold, and delete markers still allowed on locked objects.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nimbus::objects::{
    BucketVersioningStatus, DefaultRetention, Error, ObjectIdentifier, ObjectLockMode,
    ObjectLockRetention, RetentionPeriod,
};
use nimbus::time::{Clock, ManualClock};
use nimbus::{Database, DatabaseOptions};

const DAY: Duration = Duration::from_secs(86_400);

fn setup() -> (Database, ManualClock) {
    let clock = ManualClock::at(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let db = Database::memory_with(DatabaseOptions::default().clock(clock.clone())).unwrap();
    db.objects()
        .create_bucket("vault")
        .object_lock_enabled_for_bucket(true)
        .send()
        .unwrap();
    (db, clock)
}

fn retention(mode: ObjectLockMode, until: SystemTime) -> ObjectLockRetention {
    ObjectLockRetention {
        mode,
        retain_until_date: until,
    }
}

#[test]
fn compliance_retention_blocks_deletes_until_it_ends() {
    let (db, clock) = setup();
    let s3 = db.objects();
    let until = clock.now() + 10 * DAY;
    let v1 = s3
        .put_object("vault", "k")
        .body("secret")
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(until)
        .send()
        .unwrap()
        .version_id
        .unwrap();
    let head = s3.head_object("vault", "k").send().unwrap();
    assert_eq!(head.object_lock_mode, Some(ObjectLockMode::Compliance));
    assert!(matches!(
        s3.delete_object("vault", "k")
            .version_id(&v1)
            .bypass_governance_retention(true)
            .send(),
        Err(Error::AccessDenied { .. })
    ));
    // Shortening or switching to governance is refused; extending is fine.
    let set = |r: ObjectLockRetention, bypass: bool| {
        s3.put_object_retention("vault", "k")
            .version_id(&v1)
            .retention(r)
            .bypass_governance_retention(bypass)
            .send()
    };
    assert!(matches!(
        set(retention(ObjectLockMode::Compliance, until - DAY), true),
        Err(Error::AccessDenied { .. })
    ));
    assert!(matches!(
        set(retention(ObjectLockMode::Governance, until + DAY), true),
        Err(Error::AccessDenied { .. })
    ));
    set(retention(ObjectLockMode::Compliance, until + DAY), false).unwrap();
    // A delete without version id still adds a delete marker.
    let marker = s3.delete_object("vault", "k").send().unwrap();
    assert!(marker.delete_marker);
    assert_eq!(
        s3.get_object("vault", "k")
            .version_id(&v1)
            .send()
            .unwrap()
            .body
            .collect()
            .unwrap(),
        &b"secret"[..]
    );
    // The marker itself can be removed.
    s3.delete_object("vault", "k")
        .version_id(marker.version_id.unwrap())
        .send()
        .unwrap();
    // After the period, the version can go.
    clock.advance(12 * DAY);
    s3.delete_object("vault", "k")
        .version_id(&v1)
        .send()
        .unwrap();
    assert!(matches!(
        s3.head_object("vault", "k").send(),
        Err(Error::NoSuchKey { .. })
    ));
}

#[test]
fn governance_retention_yields_to_bypass() {
    let (db, clock) = setup();
    let s3 = db.objects();
    let until = clock.now() + 5 * DAY;
    let v1 = s3
        .put_object("vault", "g")
        .body("x")
        .object_lock_mode(ObjectLockMode::Governance)
        .object_lock_retain_until_date(until)
        .send()
        .unwrap()
        .version_id
        .unwrap();
    assert!(matches!(
        s3.delete_object("vault", "g").version_id(&v1).send(),
        Err(Error::AccessDenied { .. })
    ));
    assert!(matches!(
        s3.put_object_retention("vault", "g")
            .version_id(&v1)
            .retention(retention(ObjectLockMode::Governance, until - DAY))
            .send(),
        Err(Error::AccessDenied { .. })
    ));
    s3.put_object_retention("vault", "g")
        .version_id(&v1)
        .retention(retention(ObjectLockMode::Governance, until - DAY))
        .bypass_governance_retention(true)
        .send()
        .unwrap();
    let read = s3
        .get_object_retention("vault", "g")
        .version_id(&v1)
        .send()
        .unwrap()
        .unwrap();
    assert_eq!(read.retain_until_date, until - DAY);
    s3.delete_object("vault", "g")
        .version_id(&v1)
        .bypass_governance_retention(true)
        .send()
        .unwrap();
}

#[test]
fn legal_hold_is_independent_of_retention() {
    let (db, _clock) = setup();
    let s3 = db.objects();
    let v1 = s3
        .put_object("vault", "h")
        .body("x")
        .object_lock_legal_hold(true)
        .send()
        .unwrap()
        .version_id
        .unwrap();
    assert!(s3.get_object_legal_hold("vault", "h").send().unwrap());
    assert!(matches!(
        s3.delete_object("vault", "h")
            .version_id(&v1)
            .bypass_governance_retention(true)
            .send(),
        Err(Error::AccessDenied { .. })
    ));
    // delete_objects reports the refusal per key and deletes the rest.
    s3.put_object("vault", "free").body("y").send().unwrap();
    let free_versions = s3
        .list_object_versions("vault")
        .prefix("free")
        .send()
        .unwrap();
    let free_id = free_versions.entries[0].version_id.clone();
    let out = s3
        .delete_objects("vault")
        .object(ObjectIdentifier::with_version("h", &v1))
        .object(ObjectIdentifier::with_version("free", &free_id))
        .send()
        .unwrap();
    assert_eq!(out.deleted.len(), 1);
    assert_eq!(out.errors.len(), 1);
    assert!(matches!(out.errors[0].error, Error::AccessDenied { .. }));
    s3.put_object_legal_hold("vault", "h")
        .version_id(&v1)
        .status(false)
        .send()
        .unwrap();
    s3.delete_object("vault", "h")
        .version_id(&v1)
        .send()
        .unwrap();
}

#[test]
fn default_retention_applies_to_new_versions() {
    let (db, clock) = setup();
    let s3 = db.objects();
    s3.put_object_lock_configuration("vault")
        .default_retention(DefaultRetention {
            mode: ObjectLockMode::Governance,
            period: RetentionPeriod::Days(3),
        })
        .send()
        .unwrap();
    let config = s3.get_object_lock_configuration("vault").send().unwrap();
    assert_eq!(
        config.default_retention.unwrap().period,
        RetentionPeriod::Days(3)
    );
    let put = s3.put_object("vault", "d").body("x").send().unwrap();
    let head = s3.head_object("vault", "d").send().unwrap();
    assert_eq!(head.object_lock_mode, Some(ObjectLockMode::Governance));
    assert_eq!(
        head.object_lock_retain_until_date,
        Some(clock.now() + 3 * DAY)
    );
    assert!(matches!(
        s3.delete_object("vault", "d")
            .version_id(put.version_id.unwrap())
            .send(),
        Err(Error::AccessDenied { .. })
    ));
}

#[test]
fn lock_needs_a_lock_enabled_versioned_bucket() {
    let clock = ManualClock::at(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let db = Database::memory_with(DatabaseOptions::default().clock(clock.clone())).unwrap();
    let s3 = db.objects();
    s3.create_bucket("plain").send().unwrap();
    assert!(matches!(
        s3.put_object("plain", "k")
            .object_lock_legal_hold(true)
            .send(),
        Err(Error::InvalidRequest(_))
    ));
    assert!(matches!(
        s3.put_object_lock_configuration("plain").send(),
        Err(Error::InvalidBucketState { .. })
    ));
    assert!(matches!(
        s3.get_object_lock_configuration("plain").send(),
        Err(Error::NoSuchConfiguration { .. })
    ));
    // Lock can be enabled later on a versioned bucket.
    s3.put_bucket_versioning("plain")
        .status(BucketVersioningStatus::Enabled)
        .send()
        .unwrap();
    s3.put_object_lock_configuration("plain").send().unwrap();
    assert!(matches!(
        s3.put_bucket_versioning("plain")
            .status(BucketVersioningStatus::Suspended)
            .send(),
        Err(Error::InvalidBucketState { .. })
    ));
    // A retain-until date in the past, or a mode without a date, is refused.
    assert!(matches!(
        s3.put_object("plain", "k")
            .object_lock_mode(ObjectLockMode::Governance)
            .object_lock_retain_until_date(clock.now() - DAY)
            .send(),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        s3.put_object("plain", "k")
            .object_lock_mode(ObjectLockMode::Governance)
            .send(),
        Err(Error::InvalidArgument(_))
    ));
}
